"""Slow clients cannot hold sessions: a command line trickled a byte at a time is cut at the command
deadline (SMTP, POP3), message content below [smtp] min_data_rate is cut with 421 and not queued,
a session that keeps busy with NOOPs meets its session deadline, overload mode shortens the limits
of new sessions while most of max_connections is in use, and an HTTP request that trickles in is cut
at [api] request_timeout. Small configured limits keep each test to seconds; the upper bounds leave
room for a loaded machine."""
import contextlib
import re
import select
import socket
import threading
import time

import conftest

from smtpwire import Raw, in_data

RCPT = "demo@mailwerk.test"
SLACK = 3.0  # seconds a loaded 2-core machine may add to any deadline


@contextlib.contextmanager
def started(tmp_path, *overrides):
    s = conftest.Server(tmp_path, overrides=list(overrides)).start()
    try:
        yield s
    finally:
        s.stop()


def trickle(sock, data, every=0.3, limit=30.0):
    """Sends data one octet per `every` seconds until the server says something or closes; returns
    (what it said, seconds from the first octet, octets sent)."""
    start = time.monotonic()
    sent = 0
    out = b""
    while time.monotonic() - start < limit:
        if sent < len(data):
            try:
                sock.sendall(data[sent:sent + 1])
                sent += 1
            except OSError:
                break
        r, _, _ = select.select([sock], [], [], every)
        if r:
            try:
                chunk = sock.recv(4096)
            except OSError:
                chunk = b""
            out += chunk
            if not chunk or b"\n" in out:
                break
    return out, time.monotonic() - start, sent


def wait_log(s, text, timeout=10.0):
    deadline = time.monotonic() + timeout
    while text not in s.log_text():
        assert time.monotonic() < deadline, "no %r in the log:\n%s" % (text, s.log_text()[-3000:])
        time.sleep(0.05)


def greeted(port, timeout=15.0):
    """A greeted SMTP connection; a slot freed a moment ago may still be counted: retry a refusal."""
    deadline = time.monotonic() + 10
    while True:
        c = Raw(port, timeout=timeout)
        ln = c.line()
        if ln is not None and ln.startswith("220 "):
            return c
        c.close()
        assert time.monotonic() < deadline, "not greeted: %r" % ln
        time.sleep(0.05)


def test_smtp_command_trickle_is_cut_at_the_command_deadline(tmp_path):
    """A byte every 0.3 s resets any per-read timer; the whole line must arrive within
    command_timeout (RFC 5321 §4.5.3.2.7) of the greeting."""
    with started(tmp_path, "smtp.command_timeout=3s") as s:
        c = greeted(s.smtp_port)
        try:
            out, took, sent = trickle(c.sock, b"EHLO a-rather-long-name-that-trickles.example.org\r\n")
            assert out.startswith(b"421 4.4.2 "), out
            assert 2.5 <= took < 3 + SLACK, took
            assert sent < 30, "the line arrived whole: %d octets" % sent
            assert c.closed(), "the connection stayed open after 421"
        finally:
            c.close()
        # a client that answers in time is not affected: each command gets its own 3 s
        c = greeted(s.smtp_port)
        try:
            for _ in range(3):
                time.sleep(2)
                c.expect(250, "NOOP\r\n")
            c.expect(221, "QUIT\r\n")
        finally:
            c.close()
        assert "reason=timeout" in s.log_text()


def test_pop3_command_trickle_is_cut_at_the_autologout_timer(tmp_path):
    with started(tmp_path, "pop3.idle_timeout=3s") as s:
        with socket.create_connection(("127.0.0.1", s.pop3_port), timeout=15) as c:
            assert c.recv(4096).startswith(b"+OK")
            out, took, sent = trickle(c, b"USER demo-with-a-long-name@mailwerk.test\r\n")
            assert out.startswith(b"-ERR [SYS/TEMP] Autologout"), out
            assert 2.5 <= took < 3 + SLACK, took
            assert sent < 30


def slow_data_client(port, result):
    """In a thread: a transaction whose content comes at about 10 octets/s."""
    try:
        c = in_data(port, RCPT, timeout=30)
        result["in_data"] = time.monotonic()
        body = b"Subject: slow\r\n\r\n" + b"x" * 400 + b"\r\n.\r\n"
        out, took, _ = trickle(c.sock, body, every=0.1)
        result["reply"] = out
        result["took"] = took
        result["closed"] = c.closed()
        c.close()
    except Exception as e:  # noqa: BLE001 - reported by the main thread
        result["error"] = e


def test_slow_data_is_cut_and_not_queued_while_others_are_served(tmp_path):
    """Postfix's smtpd_min_data_rate: 500 octets/s over 1 s windows after 1 s of grace."""
    with started(tmp_path, "smtp.min_data_rate=500", "smtp.min_data_rate_window=1s") as s:
        result = {}
        t = threading.Thread(target=slow_data_client, args=(s.smtp_port, result))
        t.start()
        try:
            deadline = time.monotonic() + 15
            while "in_data" not in result and "error" not in result:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            # meanwhile another client is greeted at once and its message is taken
            start = time.monotonic()
            c = Raw(s.smtp_port, timeout=15)
            c.expect(220)
            assert time.monotonic() - start < 1.0
            c.expect(250, "EHLO fast.example\r\n")
            c.expect(250, "MAIL FROM:<fast@example.org>\r\n")
            c.expect(250, "RCPT TO:<%s>\r\n" % RCPT)
            c.expect(354, "DATA\r\n")
            lines = c.expect(250, "Subject: fast\r\n\r\nquick\r\n.\r\n")
            fast_id = re.search(r"queued as (\S+)", lines[0]).group(1)
            c.expect(221, "QUIT\r\n")
            c.close()
        finally:
            t.join(30)
        assert "error" not in result, result.get("error")
        assert result["reply"].startswith(b"421 4.4.2 ") and b"too slow" in result["reply"], result
        assert result["took"] < 2 + SLACK, result["took"]
        assert result["closed"]
        assert list(s.messages()) == [fast_id], "the slow message was queued"
        assert "reason=too_slow" in s.log_text()


def test_slow_bdat_chunks_are_cut(tmp_path):
    """One-octet BDAT chunks, each on time for the command deadline, are still content below the
    rate: measured from the first BDAT over the whole message."""
    with started(tmp_path, "smtp.min_data_rate=500", "smtp.min_data_rate_window=1s") as s:
        c = greeted(s.smtp_port)
        try:
            c.expect(250, "EHLO x.example\r\n")
            c.expect(250, "MAIL FROM:<a@example.org>\r\n")
            c.expect(250, "RCPT TO:<%s>\r\n" % RCPT)
            start = time.monotonic()
            code, lines, chunks = 250, [], 0
            while code == 250 and time.monotonic() - start < 2 + SLACK + 5:
                c.send("BDAT 1\r\nx")
                code, lines = c.reply()
                chunks += 1
                time.sleep(0.3)
            took = time.monotonic() - start
            assert code == 421 and lines[0].startswith("421 4.4.2 ") and "too slow" in lines[0], lines
            assert chunks > 3 and took < 2 + SLACK, (chunks, took)
            assert c.closed()
        finally:
            c.close()


def test_session_deadline_cuts_a_noop_loop(tmp_path):
    with started(tmp_path, "smtp.session_timeout=4s", "pop3.session_timeout=3s") as s:
        c = greeted(s.smtp_port)
        start = time.monotonic()
        try:
            c.expect(250, "EHLO busy.example\r\n")
            code, lines = 250, []
            while code == 250 and time.monotonic() - start < 4 + SLACK + 5:
                time.sleep(0.5)
                code, lines = c.cmd("NOOP")
            took = time.monotonic() - start
            assert code == 421 and lines[0].startswith("421 4.4.2 ") and "session time limit" in lines[0], lines
            assert 3.5 <= took < 4 + SLACK, took
            assert c.closed()
        finally:
            c.close()
        assert "reason=session_timeout" in s.log_text()
        with socket.create_connection(("127.0.0.1", s.pop3_port), timeout=15) as p:
            f = p.makefile("rb")
            assert f.readline().startswith(b"+OK")
            start = time.monotonic()
            while time.monotonic() - start < 3 + SLACK + 5:
                time.sleep(0.5)
                p.sendall(b"CAPA\r\n")
                ln = f.readline()
                if not ln.startswith(b"+OK"):
                    break
                while f.readline() not in (b".\r\n", b""):
                    pass
            assert ln.startswith(b"-ERR [SYS/TEMP] Session time limit"), ln
            assert 2.5 <= time.monotonic() - start < 3 + SLACK


def metrics_overload(s):
    import urllib.request
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % s.http_port, timeout=10) as r:
        text = r.read().decode()
    return int(re.search(r"^mailwerk_overload (\d)$", text, re.M).group(1))


def test_overload_mode_shortens_new_sessions(tmp_path):
    with started(tmp_path, "server.max_connections=10", "smtp.command_timeout=20s", "smtp.max_errors=8") as s:
        assert metrics_overload(s) == 0
        held = []
        try:
            for _ in range(9):
                held.append(greeted(s.smtp_port, timeout=60))
            wait_log(s, "event=overload state=on sessions=9 limit=10")
            assert s.log_text().count("event=overload state=on") == 1
            # a new idle session gets a quarter of command_timeout: 5 s, not 20
            c = greeted(s.smtp_port)
            start = time.monotonic()
            code, lines = c.reply()
            took = time.monotonic() - start
            c.close()
            assert code == 421 and lines[0].startswith("421 4.4.2 "), lines
            assert 4 <= took < 5 + SLACK, took
            # and a quarter of max_errors: 2, not 8
            c = greeted(s.smtp_port)
            c.expect(500, "FOO\r\n")
            c.send("FOO\r\n")
            assert c.reply()[0] == 500
            code, lines = c.reply()
            assert code == 421 and lines[0].startswith("421 4.7.0"), lines
            c.close()
            # the held sessions, started before the mode, keep their limits and still answer
            for h in held:
                h.expect(250, "NOOP\r\n")
            assert metrics_overload(s) == 1
        finally:
            for h in held:
                h.close()
        wait_log(s, "event=overload state=off")
        assert s.log_text().count("event=overload state=off") == 1
        assert s.log_text().count("event=overload state=on") == 1
        assert metrics_overload(s) == 0
        # new sessions have their full limits again
        c = greeted(s.smtp_port)
        for _ in range(3):
            c.expect(500, "FOO\r\n")
        c.expect(221, "QUIT\r\n")
        c.close()


def test_http_head_trickle_is_cut_at_the_request_timeout(tmp_path):
    with started(tmp_path, "api.request_timeout=3s") as s:
        with socket.create_connection(("127.0.0.1", s.http_port), timeout=15) as c:
            out, took, sent = trickle(c, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100 + b"\r\n\r\n")
            assert out.startswith(b"HTTP/1.1 408 "), out[:200]
            assert 2.5 <= took < 3 + SLACK, took
            assert sent < 30
        # a body that trickles too, after a head that came at once
        with socket.create_connection(("127.0.0.1", s.http_port), timeout=15) as c:
            c.sendall(b"POST /emails HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 100\r\n\r\n")
            out, took, sent = trickle(c, b"{" + b" " * 98 + b"}")
            assert out.startswith(b"HTTP/1.1 408 "), out[:200]
            assert 2.5 <= took < 3 + SLACK, took
        assert "event=http_timeout" in s.log_text()
