#!/usr/bin/python3
"""Tiny SMTP capture sink for portero end-to-end tests (standard library only).

Listens on 127.0.0.1 only. Every accepted message is written to OUTDIR as
  NNNN.raw  exact DATA bytes after dot-unstuffing (CRLF line ends, as sent)
  NNNN.eml  the same with LF line ends (convenient for grep)
  NNNN.env  the envelope: one "MAIL FROM:<...> [params]" line, then one
            "RCPT TO:<...> [params]" line per recipient
The .eml file is renamed into place last, so counting *.eml is race-free.

Usage: sink.py --dir OUTDIR [--port N] [--port-file FILE]
Port 0 (default) picks a free port; the bound port is written to --port-file
(atomically) once the server accepts connections.

Test knobs (optional): a file OUTDIR/reply-rcpt may hold an SMTP reply such as
"550 5.1.1 no such user" used for every RCPT (removed => back to 250); likewise
OUTDIR/reply-data for the reply to the end of DATA.
"""

import argparse
import os
import socket
import socketserver
import sys
import threading

LOCK = threading.Lock()
STATE = {"seq": 0}
MAX_LINE = 1 << 20


def override(outdir, name):
    try:
        with open(os.path.join(outdir, name), "r") as f:
            line = f.read().strip()
        return line or None
    except OSError:
        return None


def store(outdir, env_lines, data):
    with LOCK:
        STATE["seq"] += 1
        seq = STATE["seq"]
    base = os.path.join(outdir, "%04d" % seq)
    with open(base + ".raw", "wb") as f:
        f.write(data)
    with open(base + ".env", "w") as f:
        f.write("".join(l + "\n" for l in env_lines))
    tmp = base + ".eml.tmp"
    with open(tmp, "wb") as f:
        f.write(data.replace(b"\r\n", b"\n"))
    os.rename(tmp, base + ".eml")
    return seq


class Handler(socketserver.StreamRequestHandler):
    timeout = 120

    def reply(self, text):
        self.wfile.write(text.encode() + b"\r\n")
        self.wfile.flush()

    def readline(self):
        line = self.rfile.readline(MAX_LINE)
        if not line:
            return None
        return line

    def handle(self):
        outdir = self.server.outdir
        try:
            self.reply("220 sink.portero.test ESMTP capture sink")
            mail_from = None
            rcpts = []
            while True:
                raw = self.readline()
                if raw is None:
                    return
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                verb = line.split(" ", 1)[0].upper()
                if verb == "EHLO":
                    self.wfile.write(b"250-sink.portero.test\r\n250-PIPELINING\r\n"
                                     b"250-8BITMIME\r\n250-SMTPUTF8\r\n"
                                     b"250 SIZE 104857600\r\n")
                    self.wfile.flush()
                elif verb == "HELO":
                    self.reply("250 sink.portero.test")
                elif line[:10].upper() == "MAIL FROM:":
                    if mail_from is not None:
                        self.reply("503 5.5.1 nested MAIL command")
                        continue
                    mail_from = "MAIL FROM:" + line[10:].strip()
                    rcpts = []
                    self.reply("250 2.1.0 ok")
                elif line[:8].upper() == "RCPT TO:":
                    if mail_from is None:
                        self.reply("503 5.5.1 need MAIL first")
                        continue
                    r = override(outdir, "reply-rcpt")
                    if r and not r.startswith("2"):
                        self.reply(r)
                        continue
                    rcpts.append("RCPT TO:" + line[8:].strip())
                    self.reply("250 2.1.5 ok")
                elif verb == "DATA":
                    if mail_from is None or not rcpts:
                        self.reply("503 5.5.1 need RCPT first")
                        continue
                    self.reply("354 go ahead")
                    chunks = []
                    while True:
                        d = self.readline()
                        if d is None:
                            return
                        if d in (b".\r\n", b".\n"):
                            break
                        if d.startswith(b"."):
                            d = d[1:]
                        chunks.append(d)
                    r = override(outdir, "reply-data")
                    if r and not r.startswith("2"):
                        self.reply(r)
                    else:
                        seq = store(outdir, [mail_from] + rcpts, b"".join(chunks))
                        self.reply("250 2.0.0 ok stored as %04d" % seq)
                    mail_from = None
                    rcpts = []
                elif verb == "RSET":
                    mail_from = None
                    rcpts = []
                    self.reply("250 2.0.0 ok")
                elif verb == "NOOP":
                    self.reply("250 2.0.0 ok")
                elif verb == "QUIT":
                    self.reply("221 2.0.0 bye")
                    return
                else:
                    self.reply("502 5.5.2 command not implemented")
        except (OSError, socket.timeout):
            return


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    # continue numbering if the directory already holds messages
    for n in os.listdir(a.dir):
        if n.endswith(".eml") and n[:-4].isdigit():
            STATE["seq"] = max(STATE["seq"], int(n[:-4]))
    srv = Server(("127.0.0.1", a.port), Handler)
    srv.outdir = a.dir
    port = srv.server_address[1]
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, a.port_file)
    else:
        print(port, flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
