#!/usr/bin/python3
"""Stand-in internal MTA for recipient-verification callout tests
(standard library only; loopback by default).

Usage: mta.py --port P [--host 127.0.0.1] --users FILE --log FILE
              [--mode normal|tempfail|hang|garbage|multiline]
              [--rcpt-delay SECONDS] [--pidfile F] [--port-file F]

Answers like a Postfix that knows the addresses listed in FILE (one a line,
case-insensitive; blank lines and "#" comments ignored; the file is read
again whenever its mtime, size or inode changes):

  greeting  "220 mta.test ESMTP stand-in"
  EHLO/HELO 250            MAIL 250 2.1.0 Ok       RSET 250     NOOP 250
  RCPT      known: "250 2.1.5 Ok"; unknown: "550 5.1.1 <addr>: Recipient
            address rejected: User unknown"; before MAIL: 503 5.5.1
  QUIT      221, then close                       anything else: 502

Modes: normal; tempfail (RCPT gets "450 4.2.0 try later"); hang (accepts
connections and never sends a byte); garbage (RCPT gets the malformed line
"25x what"); multiline (a 3-line 220 greeting and a multi-line EHLO reply).
--rcpt-delay waits that long before each RCPT reply.

The log FILE gets one flushed line per event: "CONNECT <peer-port>",
"EHLO <name>", "HELO <name>", "MAIL <arg>", "RCPT <addr> <code>", "RSET",
"QUIT", "CLOSE".  Port 0 picks a free port; the bound port goes to
--port-file (written atomically once connections are accepted); --pidfile
is written at the same point.  SIGTERM or SIGINT: clean exit (status 0),
pidfile removed.
"""

import argparse
import os
import signal
import socket
import socketserver
import sys
import threading
import time

MAX_LINE = 4096
GREETING = "220 mta.test ESMTP stand-in"
MULTI_GREETING = ["220-mta.test ESMTP stand-in", "220-for callout tests only",
                  "220 mta.test ready"]
MULTI_EHLO = ["250-mta.test", "250-PIPELINING", "250-SIZE 10240000",
              "250-8BITMIME", "250 SMTPUTF8"]


class Log:
    """One line per event, flushed at once; shared by every connection."""

    def __init__(self, path):
        self.lock = threading.Lock()
        self.f = open(path, "a", encoding="utf-8", errors="replace")

    def event(self, text):
        with self.lock:
            if self.f is not None:
                self.f.write(text + "\n")
                self.f.flush()

    def close(self):
        with self.lock:
            self.f.close()
            self.f = None


class Users:
    """The users file, read again when it changes."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.sig = None
        self.users = frozenset()

    def _signature(self):
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def known(self, addr):
        with self.lock:
            sig = self._signature()
            if sig != self.sig:
                users = set()
                try:
                    with open(self.path, encoding="utf-8",
                              errors="replace") as f:
                        for line in f:
                            line = line.split("#", 1)[0].strip()
                            if line:
                                users.add(line.lower())
                except OSError:
                    pass
                self.users = frozenset(users)
                self.sig = sig
            return addr.lower() in self.users


def path_of(arg):
    """The address in "<addr> params" (or a bare "addr")."""
    arg = arg.strip()
    if arg.startswith("<"):
        end = arg.find(">")
        return arg[1:end] if end != -1 else arg[1:]
    return arg.split(" ", 1)[0]


class Handler(socketserver.StreamRequestHandler):
    timeout = 300

    def send(self, *lines):
        self.wfile.write("".join(l + "\r\n" for l in lines).encode())
        self.wfile.flush()

    def handle(self):
        srv = self.server
        log = srv.log
        log.event("CONNECT %d" % self.client_address[1])
        try:
            if srv.mode == "hang":
                while self.rfile.read1(MAX_LINE):
                    pass
                return
            if srv.mode == "multiline":
                self.send(*MULTI_GREETING)
            else:
                self.send(GREETING)
            self.dialogue(srv, log)
        except (OSError, ValueError):
            pass
        finally:
            log.event("CLOSE")

    def dialogue(self, srv, log):
        mail = False
        while True:
            raw = self.rfile.readline(MAX_LINE)
            if not raw:
                return
            if not raw.endswith(b"\n") and len(raw) >= MAX_LINE:
                self.send("500 5.5.0 Line too long")
                continue
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb = line.split(" ", 1)[0].upper()
            rest = line[len(verb):].strip()
            if verb == "EHLO":
                log.event("EHLO %s" % rest)
                mail = False
                if srv.mode == "multiline":
                    self.send(*MULTI_EHLO)
                else:
                    self.send("250 mta.test")
            elif verb == "HELO":
                log.event("HELO %s" % rest)
                mail = False
                self.send("250 mta.test")
            elif line[:10].upper() == "MAIL FROM:":
                log.event("MAIL %s" % line[10:].strip())
                mail = True
                self.send("250 2.1.0 Ok")
            elif line[:8].upper() == "RCPT TO:":
                addr = path_of(line[8:])
                if srv.rcpt_delay > 0:
                    time.sleep(srv.rcpt_delay)
                if not mail:
                    reply = "503 5.5.1 Error: need MAIL command"
                elif srv.mode == "tempfail":
                    reply = "450 4.2.0 try later"
                elif srv.mode == "garbage":
                    reply = "25x what"
                elif srv.users.known(addr):
                    reply = "250 2.1.5 Ok"
                else:
                    reply = ("550 5.1.1 <%s>: Recipient address rejected: "
                             "User unknown" % addr)
                log.event("RCPT %s %s" % (addr, reply[:3]))
                self.send(reply)
            elif verb == "RSET":
                log.event("RSET")
                mail = False
                self.send("250 2.0.0 Ok")
            elif verb == "NOOP":
                self.send("250 2.0.0 Ok")
            elif verb == "QUIT":
                log.event("QUIT")
                self.send("221 2.0.0 Bye")
                return
            else:
                self.send("502 5.5.2 Error: command not recognized")


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def main():
    ap = argparse.ArgumentParser(description="stand-in MTA for callouts")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--users", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--mode", default="normal",
                    choices=["normal", "tempfail", "hang", "garbage",
                             "multiline"])
    ap.add_argument("--rcpt-delay", type=float, default=0.0)
    ap.add_argument("--pidfile")
    ap.add_argument("--port-file")
    a = ap.parse_args()

    if ":" in a.host:
        Server.address_family = socket.AF_INET6
    srv = Server((a.host, a.port), Handler)
    srv.mode = a.mode
    srv.rcpt_delay = a.rcpt_delay
    srv.users = Users(a.users)
    srv.log = Log(a.log)

    def stop(signum, frame):
        # shutdown() waits for serve_forever() to return: not from here
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if a.pidfile:
        write_atomic(a.pidfile, "%d\n" % os.getpid())
    if a.port_file:
        write_atomic(a.port_file, "%d\n" % srv.server_address[1])
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.server_close()
        srv.log.close()
        if a.pidfile:
            try:
                os.unlink(a.pidfile)
            except OSError:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
