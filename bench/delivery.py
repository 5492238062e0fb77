#!/usr/bin/python3
"""bench/delivery.py — the clients of bench/delivery.sh (see bench/README.md, "Delivery latency and
POP3 RETR throughput"). Standard library only. Every wait is bounded.

  latency  sends messages one at a time over one SMTP connection and times, for each, the moment
           the client reads the final 250 of DATA against the moment the message's file appears in
           the Maildir's new/ (seen with inotify, in the same poll loop: one clock, no thread).
  fill     writes N message files, named the Maildir way, into a staging directory.
  hash     prints a yescrypt hash of $BENCH_POP3_PASS at libxcrypt's default cost (what mailwerk
           stores), for the Dovecot peer's passwd-file: both servers then pay the same hash per login.
  retr     logs in over POP3 (USER/PASS) and RETRs every message (no DELE), pipelining the RETRs
           when the server advertises PIPELINING; checks that what came back is what the files hold.

Results go to stdout as one JSON object; a failure prints {"error": "..."} and exits 2.
"""

import argparse
import ctypes
import ctypes.util
import errno
import hashlib
import json
import os
import select
import socket
import struct
import sys
import time

IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_Q_OVERFLOW = 0x00004000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
EVENT_HEAD = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of NUL-padded name


class BenchError(Exception):
    pass


def now_ns():
    return time.perf_counter_ns()  # CLOCK_MONOTONIC


def fail(msg):
    print(json.dumps({"error": msg}))
    sys.exit(2)


def percentile(sorted_vals, p):
    """Nearest rank: the smallest value with at least p% of the values at or below it."""
    if not sorted_vals:
        return None
    k = max(1, -(-len(sorted_vals) * p // 100))  # ceil(n * p / 100), at least 1
    return sorted_vals[int(k) - 1]


# ---- inotify through libc ------------------------------------------------------------------------
class Inotify:
    def __init__(self, path):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self.fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self.fd < 0:
            raise BenchError("inotify_init1: " + os.strerror(ctypes.get_errno()))
        wd = libc.inotify_add_watch(self.fd, os.fsencode(path), IN_CREATE | IN_MOVED_TO)
        if wd < 0:
            raise BenchError("inotify_add_watch %s: %s" % (path, os.strerror(ctypes.get_errno())))

    def read(self):
        """The names that appeared (created or moved in) since the last read; [] when none."""
        names = []
        while True:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                return names
            off = 0
            while off + EVENT_HEAD.size <= len(buf):
                _wd, mask, _cookie, ln = EVENT_HEAD.unpack_from(buf, off)
                name = buf[off + EVENT_HEAD.size : off + EVENT_HEAD.size + ln].rstrip(b"\0")
                off += EVENT_HEAD.size + ln
                if mask & IN_Q_OVERFLOW:
                    raise BenchError("inotify queue overflow: events were lost")
                if mask & (IN_CREATE | IN_MOVED_TO) and name:
                    names.append(name.decode("utf-8", "replace"))


# ---- SMTP, by hand (the poll loop must see the reply's arrival, which smtplib hides) -------------
class Smtp:
    def __init__(self, host, port, timeout):
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def reply_ready(self):
        """A complete reply in the buffer: (code, text) and consumes it; else None."""
        lines = []
        pos = 0
        while True:
            eol = self.buf.find(b"\r\n", pos)
            if eol < 0:
                return None
            line = self.buf[pos:eol]
            lines.append(line)
            pos = eol + 2
            if len(line) < 4 or line[3:4] != b"-":
                self.buf = self.buf[pos:]
                try:
                    code = int(line[:3])
                except ValueError:
                    raise BenchError("not an SMTP reply: %r" % line[:200])
                return code, b" | ".join(lines).decode("utf-8", "replace")

    def feed(self):
        data = self.sock.recv(65536)
        if not data:
            raise BenchError("the server closed the SMTP connection")
        self.buf += data

    def reply(self):
        deadline = time.monotonic() + self.timeout
        while True:
            r = self.reply_ready()
            if r is not None:
                return r
            if time.monotonic() > deadline:
                raise BenchError("no SMTP reply within %s s" % self.timeout)
            self.feed()

    def cmd(self, line, want):
        self.sock.sendall(line.encode() + b"\r\n")
        code, text = self.reply()
        if code != want:
            raise BenchError("%s -> %s (wanted %d)" % (line, text, want))
        return text


def fit(msg, size):
    """msg cut or kept to exactly `size` octets, still ending in CRLF (no bare CR at the cut)."""
    m = msg[: size - 2]
    if m.endswith(b"\r"):
        m = m[:-1] + b"x"
    return m + b"\r\n"


def make_message(seq, size, run_id, rcpt, extra_header=b"", first_body_line=b""):
    """A message of exactly `size` octets as sent (CRLF line ends, before the final dot)."""
    head = (
        b"From: <bench@example.org>\r\n"
        b"To: <" + rcpt.encode() + b">\r\n"
        b"Subject: delivery benchmark message " + str(seq).encode() + b"\r\n"
        b"Message-ID: <" + str(seq).encode() + b"." + run_id.encode() + b"@bench.example>\r\n"
        b"X-Bench-Seq: " + str(seq).encode() + b"\r\n" + extra_header + b"\r\n" + first_body_line
    )
    if len(head) + 2 > size:
        raise BenchError("message size %d is smaller than its headers" % size)
    body = bytearray()
    line_no = 0
    while len(head) + len(body) < size:
        body += b"%05d %d the quick brown fox jumps over the lazy dog 0123456789 abcdefghij\r\n" % (line_no, seq)
        line_no += 1
    return fit(head + bytes(body), size)


# ---- latency -------------------------------------------------------------------------------------
def cmd_latency(a):
    run_id = "%d.%d" % (os.getpid(), time.time_ns())
    newdir = a.maildir_new
    smtp = Smtp("127.0.0.1", a.port, a.timeout)
    code, text = smtp.reply()
    if code != 220:
        raise BenchError("greeting: " + text)
    smtp.cmd("EHLO client.bench.example", 250)
    watch = None
    seen = []  # (name, t_ns) in arrival order, not yet matched to a message
    results = []  # per timed message: (reply_to_file, dot_to_file, dot_to_reply) in microseconds
    replies = []
    total = a.warmup + a.count
    for i in range(total):
        timed = i >= a.warmup
        msg = make_message(i, a.size, run_id, a.rcpt)
        smtp.cmd("MAIL FROM:<bench@example.org>", 250)
        smtp.cmd("RCPT TO:<%s>" % a.rcpt, 250)
        smtp.cmd("DATA", 354)
        if seen:
            raise BenchError("message %d: a file appeared in new/ before it was sent: %s" % (i, seen[0][0]))
        smtp.sock.sendall(msg + b".\r\n")
        t_dot = now_ns()
        t_reply = t_file = None
        name = None
        deadline = time.monotonic() + a.timeout
        if watch is None:
            # the first message creates the Maildir: poll for it (untimed), then watch new/
            r = smtp.reply()
            if r[0] != 250:
                raise BenchError("message %d: end of DATA -> %s" % (i, r[1]))
            while not (os.path.isdir(newdir) and os.listdir(newdir)):
                if time.monotonic() > deadline:
                    raise BenchError("message %d: no file in %s within %s s of the 250" % (i, newdir, a.timeout))
                time.sleep(0.005)
            watch = Inotify(newdir)
            names = os.listdir(newdir)
            if len(names) != 1:
                raise BenchError("after the first message %s holds %d files, not 1" % (newdir, len(names)))
            continue
        poller = select.poll()
        poller.register(smtp.sock.fileno(), select.POLLIN)
        poller.register(watch.fd, select.POLLIN)
        while t_reply is None or t_file is None:
            left = deadline - time.monotonic()
            if left <= 0:
                what = "the 250" if t_reply is None else "its file in new/"
                raise BenchError("message %d: no %s within %s s" % (i, what, a.timeout))
            ready = poller.poll(left * 1000)
            t = now_ns()  # one timestamp for everything this wake-up brought
            for fd, _ev in ready:
                if fd == watch.fd:
                    for n in watch.read():
                        seen.append((n, t))
                else:
                    smtp.feed()
                    r = smtp.reply_ready()
                    if r is not None:
                        if r[0] != 250:
                            raise BenchError("message %d: end of DATA -> %s" % (i, r[1]))
                        if smtp.buf:
                            raise BenchError("message %d: unexpected data after the 250: %r" % (i, smtp.buf[:200]))
                        t_reply = t
                        replies.append(r[1])
            if t_file is None and seen:
                name, t_file = seen.pop(0)
        if seen:
            raise BenchError("message %d: more than one file appeared in new/: %s" % (i, [n for n, _ in seen]))
        # the file is this message (read after the timestamps: not timed)
        try:
            with open(os.path.join(newdir, name), "rb") as f:
                head = f.read(4096)
        except OSError as e:
            raise BenchError("message %d: cannot read %s: %s" % (i, name, e))
        if b"X-Bench-Seq: %d\r\n" % i not in head and b"X-Bench-Seq: %d\n" % i not in head:
            raise BenchError("message %d: the file %s that appeared is not this message" % (i, name))
        if a.gap_ms > 0:
            time.sleep(a.gap_ms / 1000.0)  # let the server finish what follows the delivery
        if timed:
            results.append(((t_file - t_reply) / 1000.0, (t_file - t_dot) / 1000.0, (t_reply - t_dot) / 1000.0))
    try:
        smtp.cmd("QUIT", 221)
    except (BenchError, OSError):
        pass
    files = len(os.listdir(newdir))
    if files != total:
        raise BenchError("%s holds %d files after %d messages" % (newdir, files, total))
    if a.samples:
        with open(a.samples, "w") as f:
            f.write("# seq reply_to_file_us dot_to_file_us dot_to_reply_us\n")
            for k, (x, y, z) in enumerate(results):
                f.write("%d %.1f %.1f %.1f\n" % (a.warmup + k, x, y, z))

    def summary(vals):
        s = sorted(vals)
        return {p: round(percentile(s, n) / 1000.0, 3) for p, n in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))} | {
            "min": round(s[0] / 1000.0, 3)
        }

    out = {
        "count": len(results),
        "warmup": a.warmup,
        "reply_to_file_ms": summary([r[0] for r in results]),
        "dot_to_file_ms": summary([r[1] for r in results]),
        "dot_to_reply_ms": summary([r[2] for r in results]),
        "file_before_reply": sum(1 for r in results if r[0] < 0),
        "reply_example": replies[-1] if replies else "",
        "queued_as": sum(1 for r in replies if "queued as" in r),
    }
    print(json.dumps(out))


# ---- fill ----------------------------------------------------------------------------------------
def cmd_fill(a):
    os.makedirs(a.dir, exist_ok=True)
    base = int(time.time()) - a.count - 60
    total = wtotal = 0
    host = "bench.example"
    for i in range(a.count):
        msg = make_message(
            i + 1,
            a.size,
            "fill",
            "demo@bench.test",
            extra_header=b"X-Bench-Note: filled by bench/delivery.py\r\n",
            # a line that starts with a dot: the server must dot-stuff it (RFC 1939 section 3)
            first_body_line=b".a line that starts with a dot\r\n",
        )
        wsize = len(msg)
        if a.eol == "lf":
            msg = msg.replace(b"\r\n", b"\n")
        size = len(msg)
        # time.M<usec>P<pid>Q<n>.host,S=<octets in the file>,W=<octets with CRLF line ends>
        name = "%d.M%06dP%dQ%d.%s,S=%d,W=%d" % (base + i, i, os.getpid(), i + 1, host, size, wsize)
        path = os.path.join(a.dir, name)
        with open(path, "wb") as f:
            f.write(msg)
        os.utime(path, (base + i, base + i))  # delivery order = file order, for both servers
        total += size
        wtotal += wsize
    print(json.dumps({"files": a.count, "bytes": total, "crlf_bytes": wtotal}))


# ---- retr ----------------------------------------------------------------------------------------
class Pop3:
    def __init__(self, port, timeout):
        self.timeout = timeout
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.pos = 0  # start of what is not parsed yet

    def fill(self):
        data = self.sock.recv(1 << 20)
        if not data:
            raise BenchError("the server closed the POP3 connection")
        self.buf += data

    def line(self):
        if self.pos > (1 << 20):  # drop what was parsed (only here, between responses)
            del self.buf[: self.pos]
            self.pos = 0
        while True:
            eol = self.buf.find(b"\r\n", self.pos)
            if eol >= 0:
                line = bytes(self.buf[self.pos : eol])
                self.pos = eol + 2
                return line
            self.fill()

    def cmd(self, text, shown=None):
        self.sock.sendall(text.encode() + b"\r\n")
        line = self.line()
        if not line.startswith(b"+OK"):
            raise BenchError("%s -> %s" % (shown or text, line.decode("utf-8", "replace")))
        return line

    def multiline(self):
        """The body of a multi-line response whose status line was just read: dot-stuffed, as sent."""
        start = self.pos
        scan = start - 2  # an empty body: the status line's CRLF, then ".\r\n"
        while True:
            end = self.buf.find(b"\r\n.\r\n", scan)
            if end >= 0:
                self.pos = end + 5
                return bytes(self.buf[start : end + 2]) if end >= start else b""
            scan = max(scan, len(self.buf) - 4)
            self.fill()


def unstuff(body):
    if body.startswith(b".."):
        body = body[1:]
    return body.replace(b"\r\n..", b"\r\n.")


def cmd_retr(a):
    password = os.environ.get("BENCH_POP3_PASS")
    if not password:
        raise BenchError("BENCH_POP3_PASS is not set")
    expected = []
    expected_bytes = 0
    for name in sorted(os.listdir(a.src)):
        with open(os.path.join(a.src, name), "rb") as f:
            data = f.read()
        if b"\r\n" not in data:
            data = data.replace(b"\n", b"\r\n")
        expected.append(hashlib.sha1(data).hexdigest())
        expected_bytes += len(data)
    expected.sort()
    if len(expected) != a.count:
        raise BenchError("%s holds %d files, not %d" % (a.src, len(expected), a.count))
    passes = []
    for p in range(a.passes):
        t0 = now_ns()
        c = Pop3(a.port, a.timeout)
        greet = c.line()
        if not greet.startswith(b"+OK"):
            raise BenchError("greeting: %r" % greet[:200])
        c.sock.sendall(b"CAPA\r\n")
        capa = []
        if c.line().startswith(b"+OK"):
            capa = [ln.split(b" ")[0].upper() for ln in c.multiline().split(b"\r\n") if ln]
        pipelining = b"PIPELINING" in capa and a.window > 1
        window = a.window if pipelining else 1
        c.cmd("USER " + a.user)
        c.cmd("PASS " + password, "PASS ****")
        stat = c.cmd("STAT").split()
        if len(stat) < 3 or int(stat[1]) != a.count:
            raise BenchError("STAT says %s, expected %d messages" % (b" ".join(stat).decode(), a.count))
        t_login = now_ns()
        bodies = []
        sent = 0
        n = a.count
        while len(bodies) < n:
            if sent < n and sent - len(bodies) < window:
                k = min(n, len(bodies) + window)
                c.sock.sendall(b"".join(b"RETR %d\r\n" % (j + 1) for j in range(sent, k)))
                sent = k
            status = c.line()
            if not status.startswith(b"+OK"):
                raise BenchError("RETR %d -> %s" % (len(bodies) + 1, status.decode("utf-8", "replace")))
            bodies.append(c.multiline())
        t_retr = now_ns()
        c.sock.sendall(b"QUIT\r\n")
        q = c.line()
        t_quit = now_ns()
        c.sock.close()
        if not q.startswith(b"+OK"):
            raise BenchError("QUIT -> %s" % q.decode("utf-8", "replace"))
        # check, untimed: every file came back once, byte for byte (CRLF line ends, dots unstuffed)
        got = sorted(hashlib.sha1(unstuff(b)).hexdigest() for b in bodies)
        got_bytes = sum(len(unstuff(b)) for b in bodies)
        if got != expected:
            missing = len(set(expected) - set(got))
            raise BenchError(
                "pass %d: the %d messages RETR returned differ from the files: %d of the files not among them; "
                "%d octets received (unstuffed), %d expected" % (p + 1, n, missing, got_bytes, expected_bytes)
            )
        passes.append(
            {
                "login_s": (t_login - t0) / 1e9,
                "retr_s": (t_retr - t_login) / 1e9,
                "total_s": (t_retr - t0) / 1e9,
                "quit_s": (t_quit - t_retr) / 1e9,
                "bytes": got_bytes,
                "wire_bytes": sum(len(b) for b in bodies),
                "pipelining": pipelining,
                "window": window,
            }
        )
    print(json.dumps({"passes": passes, "messages": a.count}))


# ---- hash ----------------------------------------------------------------------------------------
def cmd_hash(_a):
    password = os.environ.get("BENCH_POP3_PASS")
    if not password:
        raise BenchError("BENCH_POP3_PASS is not set")
    lib = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1", use_errno=True)
    lib.crypt_gensalt_rn.restype = ctypes.c_char_p
    lib.crypt_gensalt_rn.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    salt = ctypes.create_string_buffer(256)
    # count 0: libxcrypt's default cost; no random bytes given: it reads them from the kernel
    if not lib.crypt_gensalt_rn(b"$y$", 0, None, 0, salt, len(salt)):
        raise BenchError("crypt_gensalt_rn($y$) failed")
    out = lib.crypt(password.encode(), salt.value)
    if not out or out.startswith(b"*"):
        raise BenchError("crypt() with a yescrypt salt failed")
    print(out.decode())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    p = sub.add_parser("latency")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--rcpt", required=True)
    p.add_argument("--maildir-new", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--size", type=int, default=10240)
    p.add_argument("--timeout", type=float, default=10.0, help="per message and per reply, seconds")
    p.add_argument("--samples", help="write every timed sample here")
    p.add_argument("--gap-ms", type=float, default=0.0, help="pause after each file appears, before the next message")
    p = sub.add_parser("fill")
    p.add_argument("--dir", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--size", type=int, default=10240)
    p.add_argument("--eol", choices=("crlf", "lf"), default="crlf")
    sub.add_parser("hash")
    p = sub.add_parser("retr")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--src", required=True, help="the files the mailbox was filled with")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--passes", type=int, default=1)
    p.add_argument("--window", type=int, default=32, help="most RETRs outstanding when pipelining")
    p.add_argument("--timeout", type=float, default=30.0)
    a = ap.parse_args()
    if getattr(a, "warmup", 1) < 1:
        fail("--warmup must be at least 1 (the first message creates the Maildir and is never timed)")
    try:
        {"latency": cmd_latency, "fill": cmd_fill, "hash": cmd_hash, "retr": cmd_retr}[a.what](a)
    except BenchError as e:
        fail(str(e))
    except (OSError, socket.timeout) as e:
        fail("%s: %s" % (type(e).__name__, e))


if __name__ == "__main__":
    main()
