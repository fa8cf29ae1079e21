#!/usr/bin/python3
"""tests/e2e/smtpc.py - scripted SMTP sessions for the lifecycle tests.

  smtpc.py PORT hold N ADDR OUT     open N sessions (XCLIENT ADDR, EHLO) and
                                    keep them open; then each does MAIL and
                                    RCPT; writes one line per session to OUT:
                                    "<code> <reply text>" of RCPT (or of the
                                    first command refused), then QUITs.
  smtpc.py PORT pause ADDR GATE OUT one session: XCLIENT, EHLO, MAIL, RCPT;
                                    writes "ready" to OUT, waits until the
                                    file GATE exists, then RCPT #2, DATA; writes
                                    the replies to OUT.
Loopback only.
"""
import os
import smtplib
import sys
import time


def session(port, addr):
    s = smtplib.SMTP("127.0.0.1", port, timeout=30)
    s.ehlo("mx.example.test")
    code, msg = s.docmd("XCLIENT", "ADDR=%s NAME=mx.example.test" % addr)
    if code != 220:
        raise RuntimeError("XCLIENT: %d %s" % (code, msg))
    s.ehlo("mx.example.test")
    return s


def hold(port, n, addr, out):
    sessions = []
    for _ in range(n):
        try:
            sessions.append(session(port, addr))
        except Exception as e:  # noqa: BLE001 - report any failure
            sessions.append(e)
    lines = []
    for s in sessions:
        if isinstance(s, Exception):
            lines.append("ERR %s" % s)
            continue
        try:
            code, msg = s.docmd("MAIL", "FROM:<a@example.com>")
            if code == 250:
                code, msg = s.docmd("RCPT", "TO:<b@corp.example>")
            lines.append("%d %s" % (code, msg.decode(errors="replace")))
        except Exception as e:  # noqa: BLE001
            lines.append("ERR %s" % e)
    for s in sessions:
        if not isinstance(s, Exception):
            try:
                s.quit()
            except Exception:  # noqa: BLE001
                pass
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")


def pause(port, addr, gate, out):
    s = session(port, addr)
    res = []
    code, msg = s.docmd("MAIL", "FROM:<a@example.com>")
    res.append("MAIL %d" % code)
    code, msg = s.docmd("RCPT", "TO:<b@corp.example>")
    res.append("RCPT1 %d" % code)
    with open(out, "w") as f:
        f.write("ready\n")
    deadline = time.time() + 60
    while not os.path.exists(gate) and time.time() < deadline:
        time.sleep(0.05)
    code, msg = s.docmd("RCPT", "TO:<c@corp.example>")
    res.append("RCPT2 %d" % code)
    code, msg = s.docmd("DATA")
    if code == 354:
        s.send(b"Subject: in flight\r\n\r\nbody\r\n.\r\n")
        code, msg = s.getreply()
    res.append("DATA %d %s" % (code, msg.decode(errors="replace")))
    try:
        s.quit()
    except Exception:  # noqa: BLE001
        pass
    with open(out, "a") as f:
        f.write("\n".join(res) + "\n")


def main():
    port = int(sys.argv[1])
    if sys.argv[2] == "hold":
        hold(port, int(sys.argv[3]), sys.argv[4], sys.argv[5])
    elif sys.argv[2] == "pause":
        pause(port, sys.argv[3], sys.argv[4], sys.argv[5])
    else:
        sys.exit("unknown mode")


if __name__ == "__main__":
    main()
