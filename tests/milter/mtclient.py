#!/usr/bin/python3
"""mtclient.py - a minimal MTA side of the milter protocol (version 6).

miltertest cannot show the text of an SMTP reply given at RCPT (mt.getreply
returns only the reply command) and copies MAIL FROM arguments into a
1 KB stack buffer without a bound.  The Lua tests use this helper, through
io.popen, where they need the reply text or arbitrary bytes (NUL, 10 KB).

    mtclient.py SOCKET [PROTOCOL_FLAGS_HEX] < steps

SOCKET is "unix:/path" or "inet:PORT@HOST".  PROTOCOL_FLAGS_HEX is what
the MTA offers at negotiation (default: every SMFIP_* flag but RCPT_REJ,
as Postfix does); offering no SMFIP_NR_* flag forces a reply to every step.  One step per line, tokens
separated by single spaces; inside a token "\\xNN" stands for any byte (so
"\\x20" is a space and "\\x00" a NUL), and a lone "-" is the empty string:

    macro STAGE NAME VALUE [NAME VALUE ...]   STAGE: C H M R E (SMFIC_*)
    connect HOSTNAME FAMILY [PORT ADDRESS]    FAMILY: 4 6 L U
    helo NAME | mail ARG... | rcpt ARG... | header NAME VALUE
    eoh | body DATA | eom | abort | quit | sleep SECONDS
    timeout SECONDS                           (reply wait, default 10)

Output, one line per milter packet received (payload escaped the same way):

    NEG   <protocol flags hex> <actions hex>
    REPLY <step number> <step> <reply char> <payload>
    MOD   <step number> <step> <reply char> <payload>   (EOM actions)
    NOREPLY <step number> <step>                       (negotiated away)
    SKIP  <step number> <step>                         (SMFIP_NO* asked)

Exit status 0 when every step was sent and answered, 1 otherwise (after an
"ERR ..." line).
"""
import re
import socket
import struct
import sys
import time

SMFIP = {
    "connect": (0x1, 0x1000), "helo": (0x2, 0x2000), "mail": (0x4, 0x4000),
    "rcpt": (0x8, 0x8000), "body": (0x10, 0x80000), "header": (0x20, 0x80),
    "eoh": (0x40, 0x40000),
}
FINAL = set(b"acdrtyfs")            # replies that end a step
STAGES = {"C": b"C", "H": b"H", "M": b"M", "R": b"R", "E": b"E",
          "T": b"T", "L": b"L", "N": b"N"}
OFFER_PROTO = 0x001FFFFF & ~0x800   # everything but SMFIP_RCPT_REJ
OFFER_ACTS = 0x1FF


def unesc(tok):
    if tok == "-":
        return b""
    return re.sub(rb"\\x([0-9a-fA-F]{2})",
                  lambda m: bytes([int(m.group(1), 16)]),
                  tok.encode("latin-1"))


def esc(data):
    out = []
    for ch in data:
        if 0x21 <= ch <= 0x7e and ch != 0x5c:
            out.append(chr(ch))
        else:
            out.append("\\x%02x" % ch)
    return "".join(out) if out else "-"


class Milter:
    def __init__(self, sockname):
        if sockname.startswith(("unix:", "local:")):
            path = sockname.split(":", 1)[1]
            self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.s.connect(path)
        elif sockname.startswith("inet:"):
            port, host = sockname[5:].split("@", 1)
            self.s = socket.create_connection((host, int(port)))
        else:
            raise SystemExit("ERR bad socket " + sockname)
        self.s.settimeout(10)

    def send(self, cmd, data=b""):
        self.s.sendall(struct.pack(">I", len(data) + 1) + cmd + data)

    def recvn(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise EOFError("connection closed by the milter")
            buf += chunk
        return buf

    def recv(self):
        (n,) = struct.unpack(">I", self.recvn(4))
        if n < 1 or n > 1 << 24:
            raise EOFError("bad packet length %d" % n)
        pkt = self.recvn(n)
        return pkt[0:1], pkt[1:]


def main():
    if len(sys.argv) not in (2, 3):
        sys.stderr.write("usage: mtclient.py SOCKET [PROTO_HEX] < steps\n")
        return 2
    offer = int(sys.argv[2], 16) if len(sys.argv) == 3 else OFFER_PROTO
    try:
        m = Milter(sys.argv[1])
    except OSError as e:
        print("ERR connect: %s" % e)
        return 1
    out = sys.stdout
    try:
        m.send(b"O", struct.pack(">III", 6, OFFER_ACTS, offer))
        cmd, data = m.recv()
        if cmd != b"O" or len(data) < 12:
            print("ERR negotiation answered %r" % cmd)
            return 1
        _, acts, proto = struct.unpack(">III", data[:12])
        out.write("NEG %x %x\n" % (proto, acts))
        for num, line in enumerate(sys.stdin.read().splitlines(), 1):
            toks = line.split(" ")
            if not line or line.startswith("#"):
                continue
            step, args = toks[0], [unesc(t) for t in toks[1:]]
            if step == "sleep":
                time.sleep(float(args[0]))
                continue
            if step == "timeout":
                m.s.settimeout(float(args[0]))
                continue
            if step == "macro":
                payload = STAGES[args[0].decode()] + b"".join(
                    a + b"\0" for a in args[1:])
                m.send(b"D", payload)
                continue
            if step in ("abort", "quit"):
                m.send(b"A" if step == "abort" else b"Q")
                continue
            if step in SMFIP and proto & SMFIP[step][0]:
                out.write("SKIP %d %s\n" % (num, step))
                continue
            if step == "connect":
                payload = args[0] + b"\0" + args[1][:1]
                if args[1][:1] in (b"4", b"6", b"L"):
                    payload += struct.pack(">H", int(args[2] or b"0"))
                    payload += args[3] + b"\0"
                m.send(b"C", payload)
            elif step == "helo":
                m.send(b"H", args[0] + b"\0")
            elif step in ("mail", "rcpt"):
                m.send(b"M" if step == "mail" else b"R",
                       b"".join(a + b"\0" for a in args))
            elif step == "header":
                m.send(b"L", args[0] + b"\0" + args[1] + b"\0")
            elif step == "eoh":
                m.send(b"N")
            elif step == "body":
                m.send(b"B", args[0])
            elif step == "eom":
                m.send(b"E")
            else:
                print("ERR unknown step %r" % step)
                return 1
            if step != "eom" and step in SMFIP and proto & SMFIP[step][1]:
                out.write("NOREPLY %d %s\n" % (num, step))
                continue
            while True:
                cmd, data = m.recv()
                if cmd == b"p":
                    continue
                kind = "REPLY" if cmd[0] in FINAL else "MOD"
                out.write("%s %d %s %s %s\n" % (kind, num, step,
                                                cmd.decode("latin-1"),
                                                esc(data)))
                if kind == "REPLY":
                    break
                if step != "eom":
                    print("ERR modification %r outside EOM" % cmd)
                    return 1
        return 0
    except socket.timeout:
        print("ERR timed out")
        return 1
    except (EOFError, OSError) as e:
        print("ERR %s" % e)
        return 1
    finally:
        out.flush()


if __name__ == "__main__":
    sys.exit(main())
