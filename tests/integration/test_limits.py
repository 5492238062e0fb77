"""Connection and session limits: max_connections_per_ip, max_connections, max_errors and the
command/data timeouts, each on a server of its own started with -o overrides."""
import contextlib
import socket
import time

import conftest

from smtpwire import Raw

RCPT = "demo@mailwerk.test"


@contextlib.contextmanager
def limited_server(tmp_path, *overrides):
    s = conftest.Server(tmp_path, overrides=list(overrides)).start()
    try:
        yield s
    finally:
        s.stop()


def greeted(port):
    c = Raw(port)
    c.expect(220)
    return c


def held_conn(port):
    """A connection that counts towards the limits. Right after start() the probe connections of
    conftest.wait_port may still be counted (they are freed asynchronously), so retry a refusal."""
    return wait_accepted(port)


def assert_refused(port, text):
    c = Raw(port)
    try:
        ln = c.line()
        assert ln is not None and ln.startswith("421 4.7.0 ") and text in ln, ln
        assert c.line() is None, "the refused connection stayed open"
    finally:
        c.close()


def wait_accepted(port, timeout=10.0):
    """A freed slot is released asynchronously: retry (bounded) until a connection is greeted."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        c = Raw(port)
        ln = c.line()
        if ln is not None and ln.startswith("220 "):
            return c
        c.close()
        last = ln
        time.sleep(0.05)
    raise AssertionError("no connection accepted after a slot was freed; last reply %r" % last)


def test_max_connections_per_ip(tmp_path):
    with limited_server(tmp_path, "server.max_connections_per_ip=3") as s:
        held = [held_conn(s.smtp_port), held_conn(s.submission_port), held_conn(s.smtp_port)]
        try:
            assert_refused(s.smtp_port, "from your address")
            assert_refused(s.submission_port, "from your address")  # counted across listeners
            assert_refused(s.submissions_port, "from your address")
            # the held sessions are unaffected
            for c in held:
                c.expect(250, "NOOP\r\n")
            held.pop().close()
            held.append(wait_accepted(s.smtp_port))
            held[-1].expect(250, "EHLO x.example\r\n")
            assert_refused(s.smtp_port, "from your address")
        finally:
            for c in held:
                c.close()
        assert "event=refused reason=max_connections_per_ip" in s.log_text()


def test_max_connections(tmp_path):
    with limited_server(tmp_path, "server.max_connections=2") as s:
        held = [held_conn(s.smtp_port), held_conn(s.submission_port)]
        try:
            assert_refused(s.smtp_port, "Too many connections")
            assert_refused(s.submission_port, "Too many connections")
            for c in held:
                c.expect(250, "NOOP\r\n")
            held[0].expect(221, "QUIT\r\n")
            assert held[0].line() is None
            held[0].close()
            held[0] = wait_accepted(s.smtp_port)
            assert_refused(s.submissions_port, "Too many connections")
        finally:
            for c in held:
                c.close()
        assert "event=refused reason=max_connections " in s.log_text()


def test_max_errors_same_command(tmp_path):
    with limited_server(tmp_path, "smtp.max_errors=3") as s:
        c = greeted(s.smtp_port)
        try:
            c.expect(250, "EHLO x.example\r\n")
            c.expect(500, "FOO\r\n")
            c.expect(500, "FOO\r\n")
            c.send("FOO\r\n")
            assert c.reply()[0] == 500
            code, lines = c.reply()
            assert code == 421 and lines[0].startswith("421 4.7.0"), lines
            assert c.line() is None, "the connection stayed open after 421"
        finally:
            c.close()


def test_max_errors_mixed_mistakes(tmp_path):
    with limited_server(tmp_path, "smtp.max_errors=3") as s:
        c = greeted(s.smtp_port)
        try:
            c.expect(250, "EHLO x.example\r\n")
            c.expect(503, "RCPT TO:<%s>\r\n" % RCPT)         # no MAIL yet
            c.expect(250, "NOOP\r\n")                         # a good command in between
            c.expect(553, "MAIL FROM:not-an-address\r\n")     # bad sender syntax
            c.send("RCPT TO:<someone@elsewhere.example>\r\n")  # 503 again: still no MAIL
            assert c.reply()[0] == 503
            code, lines = c.reply()
            assert code == 421 and lines[0].startswith("421 4.7.0"), lines
            assert c.line() is None
        finally:
            c.close()
        # other clients are unaffected
        c = greeted(s.smtp_port)
        try:
            c.expect(250, "EHLO y.example\r\n")
            c.expect(221, "QUIT\r\n")
        finally:
            c.close()


def test_command_timeout(tmp_path):
    with limited_server(tmp_path, "smtp.command_timeout=2s") as s:
        idle = greeted(s.smtp_port)  # idle right after the greeting
        mid = greeted(s.smtp_port)   # idle inside a transaction
        try:
            mid.expect(250, "EHLO x.example\r\n")
            mid.expect(250, "MAIL FROM:<a@example.org>\r\n")
            for c in (idle, mid):
                code, lines = c.reply()  # bounded by the 15 s socket timeout
                assert code == 421 and lines[0].startswith("421 4.4.2"), lines
                assert c.line() is None, "the connection stayed open after the timeout"
        finally:
            idle.close()
            mid.close()
        assert s.log_text().count("reason=timeout") == 2


def test_data_timeout(tmp_path):
    with limited_server(tmp_path, "smtp.data_timeout=2s") as s:
        c = greeted(s.smtp_port)
        try:
            c.expect(250, "EHLO x.example\r\n")
            c.expect(250, "MAIL FROM:<a@example.org>\r\n")
            c.expect(250, "RCPT TO:<%s>\r\n" % RCPT)
            c.expect(354, "DATA\r\n")
            c.send("Subject: stalled\r\n\r\nhalf a message\r\n")
            code, lines = c.reply()
            assert code == 421 and lines[0].startswith("421 4.4.2"), lines
            assert c.line() is None
        finally:
            c.close()
        assert s.messages() == {}
