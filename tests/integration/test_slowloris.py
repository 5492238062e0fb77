"""Slow clients cannot hold sessions: a command line trickled a byte at a time is cut at the command
deadline (SMTP, POP3), message content below [smtp] min_data_rate is cut with 421 and not queued,
a session that keeps busy with NOOPs meets its session deadline, overload mode shortens the limits
of new sessions while most of max_connections is in use, and an HTTP request that trickles in is cut
at [api] request_timeout. On the implicit-TLS listeners (https, submissions, pop3s) a ClientHello
that trickles in, or a handshake that never ends, is cut at the deadline that starts with the
connection, and holds its place in the connection limits until then. Small configured limits keep
each test to seconds; the upper bounds leave room for a loaded machine."""
import contextlib
import http.client
import json
import poplib
import re
import select
import smtplib
import socket
import ssl
import threading
import time

import pytest

import conftest

from smtpwire import Raw, in_data

# deadlines measured to within SLACK: alone, where other tests cannot add to them
pytestmark = pytest.mark.serial

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


# ---- TLS handshakes on the implicit-TLS listeners ----

def tls_hello():
    """A TLS client's first flight, a whole ClientHello, as Python's ssl module sends it."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=conftest.HOST)
    with contextlib.suppress(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = outgoing.read()
    assert hello[:1] == b"\x16" and len(hello) > 100, hello[:20]  # a handshake record
    return hello


def insecure():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def status(s):
    return json.loads(s.cli("status", "--json", "--no-dns").stdout)


def wait_sessions(s, role, n, timeout=10.0):
    deadline = time.monotonic() + timeout
    while status(s)["sessions"][role] != n:
        assert time.monotonic() < deadline, status(s)["sessions"]
        time.sleep(0.05)


def https_answer(port):
    """GET /healthz over a full handshake: its status."""
    c = http.client.HTTPSConnection("127.0.0.1", port, timeout=15, context=insecure())
    try:
        c.request("GET", "/healthz")
        return c.getresponse().status
    finally:
        c.close()


def test_trickled_client_hello_is_cut_on_every_implicit_tls_listener(tmp_path):
    """An octet of ClientHello every 0.3 s restarts any idle timer: the handshake must be done
    within the deadline that starts with the connection ([api] request_timeout on https; on
    submissions and pop3s the first command's, which runs through the handshake). Meanwhile the
    connections count as sessions, and other clients complete their handshakes and are answered."""
    https = conftest.free_port()
    with started(tmp_path, "listen.https=127.0.0.1:%d" % https, "api.request_timeout=3s", "api.keepalive_timeout=1h",
                 "smtp.command_timeout=3s", "pop3.idle_timeout=3s") as s:
        hello = tls_hello()
        limit = 3 + SLACK + 10  # a bounded wait, far past the deadline
        results, threads = {}, []
        for role, port in (("https", https), ("submissions", s.submissions_port), ("pop3s", s.pop3s_port)):
            sock = socket.create_connection(("127.0.0.1", port), timeout=15)
            sock.sendall(hello[:5])  # the record header: the handshake has begun

            def run(role=role, sock=sock):
                with sock:
                    results[role] = trickle(sock, hello[5:-1], limit=limit)
            threads.append(threading.Thread(target=run))
        for t in threads:
            t.start()
        try:
            for role in ("https", "submissions", "pop3s"):
                wait_sessions(s, role, 1)
            assert https_answer(https) == 200
            with smtplib.SMTP_SSL("127.0.0.1", s.submissions_port, timeout=15, context=insecure()) as m:
                assert m.ehlo("client.test")[0] == 250
            p = poplib.POP3_SSL("127.0.0.1", s.pop3s_port, timeout=15, context=insecure())
            assert p.getwelcome().startswith(b"+OK")
            p.quit()
        finally:
            for t in threads:
                t.join(limit + 5)
        for role in ("https", "submissions", "pop3s"):
            out, took, sent = results[role]
            assert out == b"", (role, out[:100])  # nothing before a ClientHello is whole
            assert took < limit, "%s: the trickled handshake was not cut (%d octets sent)" % (role, sent)
            assert sent < len(hello) - 5
        assert s.log_text().count("reason=tls_timeout") == 3, s.log_text()[-3000:]
        wait_sessions(s, "https", 0)


def refused(port, source):
    """What a new connection from source gets before the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=15, source_address=(source, 0)) as c:
        out = b""
        while True:
            chunk = c.recv(4096)
            if not chunk:
                return out
            out += chunk


def test_hanging_handshakes_count_against_the_connection_limits(tmp_path):
    """Four connections that never finish their handshake fill max_connections_per_ip for their
    client and then max_connections, so that others are refused while they hang; at the deadline
    they are gone and a normal client is served again."""
    https = conftest.free_port()
    with started(tmp_path, "listen.https=127.0.0.1:%d" % https, "api.request_timeout=4s", "api.keepalive_timeout=1h",
                 "server.max_connections=4", "server.max_connections_per_ip=2") as s:
        hello = tls_hello()
        held = []

        def hang(source):
            c = socket.create_connection(("127.0.0.1", https), timeout=15, source_address=(source, 0))
            c.sendall(hello[:10])
            held.append(c)
        per_ip = s.log_text().count("reason=max_connections_per_ip")  # the start-up's own probes
        try:
            hang("127.0.0.1")
            hang("127.0.0.1")
            wait_sessions(s, "https", 2)
            # that client is full, on every listener; another one is not
            assert refused(https, "127.0.0.1").startswith(b"HTTP/1.1 503 ")
            assert refused(s.submissions_port, "127.0.0.1").startswith(b"421 4.7.0")
            assert s.log_text().count("reason=max_connections_per_ip") == per_ip + 2
            hang("127.0.0.2")
            hang("127.0.0.2")
            wait_sessions(s, "https", 4)
            # and now the server is
            assert refused(https, "127.0.0.3").startswith(b"HTTP/1.1 503 ")
            assert "reason=max_connections client=127.0.0.3" in s.log_text()
            # the deadline frees them all (a bounded wait)
            deadline = time.monotonic() + 4 + SLACK + 10
            while s.log_text().count("reason=tls_timeout") < 4:
                assert time.monotonic() < deadline, s.log_text()[-3000:]
                time.sleep(0.05)
            for c in held:
                c.settimeout(5)
                assert c.recv(4096) == b"", "a hanging handshake got an answer"
        finally:
            for c in held:
                c.close()
        wait_sessions(s, "https", 0)
        assert https_answer(https) == 200


def test_overload_shortens_the_handshake_deadline(tmp_path):
    """While overloaded, a new https connection gets a quarter of [api] request_timeout for its
    handshake, as new SMTP and POP3 sessions get a quarter of theirs."""
    https = conftest.free_port()
    with started(tmp_path, "listen.https=127.0.0.1:%d" % https, "server.max_connections=10",
                 "api.request_timeout=40s", "api.keepalive_timeout=1h", "smtp.command_timeout=60s") as s:
        held = []
        try:
            for _ in range(9):
                held.append(greeted(s.smtp_port, timeout=60))
            wait_log(s, "event=overload state=on")
            hello = tls_hello()
            with socket.create_connection(("127.0.0.1", https), timeout=30) as c:
                out, took, sent = trickle(c, hello[:-1], limit=10 + SLACK + 10)  # far less than 40 s
            assert out == b"" and took < 10 + SLACK + 10, (out[:100], took, sent)
            assert "reason=tls_timeout" in s.log_text()
        finally:
            for h in held:
                h.close()
