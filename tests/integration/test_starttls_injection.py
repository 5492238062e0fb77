"""STARTTLS command injection (CVE-2011-0411, RFC 3207 §4.2) and the TLS listeners as seen by
openssl s_client: AUTH over STARTTLS and implicit TLS, and no TLS below 1.2."""
import base64
import os
import re
import select
import time
import smtplib
import socket
import ssl
import subprocess

import pytest

from smtpwire import Raw

OPENSSL = "openssl"


def tls_context(server):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(cafile=server.cert)  # the server's own self-signed certificate
    return ctx


def listener_port(server, name):
    return {"smtp": server.smtp_port, "submission": server.submission_port}[name]


@pytest.mark.parametrize("listener", ["smtp", "submission"])
@pytest.mark.parametrize("injected", [
    pytest.param(b"RSET\r\n", id="rset"),
    pytest.param(b"MAIL FROM:<a@b>\r\n", id="mail"),
    pytest.param(b"NOOP\r\nNOOP\r\nQUIT\r\n", id="noop-quit"),
])
def test_starttls_plaintext_injection_discarded(server, listener, injected):
    c = Raw(listener_port(server, listener))
    try:
        c.expect(220)
        ehlo = c.expect(250, "EHLO x\r\n")
        assert "250-STARTTLS" in ehlo, ehlo
        c.send(b"STARTTLS\r\n" + injected)  # one send: the injected bytes travel with STARTTLS
        c.expect(220)
        c.starttls(tls_context(server))
        c.send("EHLO y\r\n")
        code, lines = c.reply()
        # the first reply after the handshake answers our EHLO, not an injected command
        assert code == 250 and len(lines) > 1 and lines[0] == "250-mx.mailwerk.test", lines
        assert "250-STARTTLS" not in lines, lines  # no STARTTLS offered inside TLS
        c.expect(250, "NOOP\r\n")  # and nothing more is queued behind it
        c.expect(221, "QUIT\r\n")
    finally:
        c.close()


@pytest.mark.parametrize("listener", ["smtp", "submission"])
def test_starttls_resets_session(server, listener):
    """RFC 3207 §4.2: after the handshake the client must start again with EHLO."""
    c = Raw(listener_port(server, listener))
    try:
        c.expect(220)
        c.expect(250, "EHLO x\r\n")
        c.expect(220, "STARTTLS\r\n")
        c.starttls(tls_context(server))
        lines = c.expect(503, "MAIL FROM:<a@example.org>\r\n")
        assert lines[0].startswith("503 5.5.1"), lines
        ehlo = c.expect(250, "EHLO y\r\n")
        assert "250-AUTH PLAIN LOGIN" in ehlo, ehlo  # offered now that TLS is on
        lines = c.expect(503, "STARTTLS\r\n")  # TLS already active
        c.expect(221, "QUIT\r\n")
    finally:
        c.close()


def test_starttls_resets_mail_transaction(server):
    """STARTTLS is refused inside a transaction; after RSET and the handshake nothing of it remains."""
    c = Raw(server.smtp_port)
    try:
        c.expect(220)
        c.expect(250, "EHLO x\r\n")
        c.expect(250, "MAIL FROM:<a@example.org>\r\n")
        c.expect(503, "STARTTLS\r\n")  # not in the middle of a transaction
        c.expect(250, "RSET\r\n")
        c.expect(220, "STARTTLS\r\n")
        c.starttls(tls_context(server))
        c.expect(503, "RCPT TO:<demo@mailwerk.test>\r\n")
        c.expect(221, "QUIT\r\n")
    finally:
        c.close()


@pytest.mark.parametrize("listener", ["smtp", "submission"])
def test_starttls_injection_in_a_later_segment(server, listener):
    """Plaintext sent right behind STARTTLS, but in its own segment, before the 220 was read: the
    server either drops it or fails the handshake on it; it never runs it as a command."""
    c = Raw(listener_port(server, listener))
    try:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.expect(220)
        c.expect(250, "EHLO x\r\n")
        c.send("STARTTLS\r\n")
        c.send("RSET\r\n")
        c.expect(220)
        try:
            c.starttls(tls_context(server))
        except (ssl.SSLError, OSError):
            pass  # the handshake failed on the plaintext: acceptable
        else:
            c.send("EHLO y\r\n")
            code, lines = c.reply()
            assert code == 250 and lines[0] == "250-mx.mailwerk.test", lines
            c.expect(221, "QUIT\r\n")
    finally:
        c.close()
    with smtplib.SMTP("127.0.0.1", listener_port(server, listener), timeout=15) as s2:
        assert s2.noop()[0] == 250


def auth_plain_line(server):
    token = base64.b64encode(b"\0" + server.user.encode() + b"\0" + server.password.encode()).decode()
    return "AUTH PLAIN %s" % token


def s_client(args, stdin, timeout=30):
    """Runs openssl s_client as a well-behaved SMTP client: each stdin line is written only after the
    reply to the previous one (RFC 2920: no sending ahead without PIPELINING). With -starttls,
    s_client itself consumes the greeting; otherwise the greeting is awaited first."""
    p = subprocess.Popen([OPENSSL, "s_client", *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    out = b""

    def await_reply():
        nonlocal out
        start = len(out)
        while not re.search(rb"(^|\n)\d{3} [^\n]*\n", out[start:]):
            ready, _, _ = select.select([p.stdout], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(p.stdout.fileno(), 65536) if ready else b""
            if not chunk:
                return False
            out += chunk
        return True

    alive = "-starttls" in args or await_reply()
    for line in stdin.splitlines():
        if not alive:
            break
        try:
            p.stdin.write(line.encode() + b"\n")
            p.stdin.flush()
        except BrokenPipeError:
            break
        alive = await_reply()
    try:
        p.stdin.close()
    except BrokenPipeError:
        pass
    while True:  # whatever is left, up to EOF
        ready, _, _ = select.select([p.stdout], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(p.stdout.fileno(), 65536) if ready else b""
        if not chunk:
            break
        out += chunk
    try:
        p.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    err = p.stderr.read()
    p.stdout.close()
    p.stderr.close()
    return p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def reply_codes(out):
    return [ln[:4] for ln in out.replace("\r", "").split("\n") if len(ln) >= 4 and ln[:3].isdigit()]


def test_openssl_starttls_auth(server):
    stdin = "EHLO client.example\n%s\nQUIT\n" % auth_plain_line(server)
    rc, out, err = s_client(["-starttls", "smtp", "-connect", "127.0.0.1:%d" % server.submission_port,
                             "-crlf", "-quiet", "-CAfile", server.cert, "-verify_return_error"], stdin)
    assert "235 2.7.0" in out, (rc, out, err)
    assert "221 2.0.0" in out, (rc, out, err)


def test_openssl_implicit_tls_auth(server):
    stdin = "EHLO client.example\n%s\nQUIT\n" % auth_plain_line(server)
    rc, out, err = s_client(["-connect", "127.0.0.1:%d" % server.submissions_port,
                             "-crlf", "-quiet", "-CAfile", server.cert, "-verify_return_error"], stdin)
    codes = reply_codes(out)
    assert codes[:1] == ["220 "], (rc, out, err)
    assert "235 2.7.0" in out, (rc, out, err)
    assert "221 2.0.0" in out, (rc, out, err)


def test_openssl_wrong_password_refused(server):
    token = base64.b64encode(b"\0" + server.user.encode() + b"\0not-the-password").decode()
    stdin = "EHLO client.example\nAUTH PLAIN %s\nQUIT\n" % token
    rc, out, err = s_client(["-connect", "127.0.0.1:%d" % server.submissions_port, "-crlf", "-quiet"], stdin)
    assert "535 5.7.8" in out, (rc, out, err)
    assert "235 " not in reply_codes(out), (rc, out, err)


def test_implicit_tls_tls12_works(server):
    """The positive control for the TLS 1.1 test below: the same s_client call with TLS 1.2."""
    rc, out, err = s_client(["-connect", "127.0.0.1:%d" % server.submissions_port, "-tls1_2",
                             "-crlf", "-quiet"], "QUIT\n")
    assert reply_codes(out) == ["220 ", "221 "], (rc, out, err)


@pytest.mark.parametrize("starttls", [False, True], ids=["implicit", "starttls"])
def test_tls11_refused(server, starttls):
    # OpenSSL 3 at its default security level will not even offer TLS 1.1; SECLEVEL=0 lets it try,
    # so that it is the server that refuses.
    args = ["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", "-crlf", "-quiet"]
    if starttls:
        args += ["-starttls", "smtp", "-connect", "127.0.0.1:%d" % server.submission_port]
    else:
        args += ["-connect", "127.0.0.1:%d" % server.submissions_port]
    rc, out, err = s_client(args, "EHLO client.example\nQUIT\n")
    assert rc != 0, (rc, out, err)
    codes = reply_codes(out)
    # s_client prints only what it reads after the handshake: nothing may come through over TLS 1.1
    assert "220 " not in codes and "250 " not in codes and "221 " not in codes, (rc, out, err)
    # the server is still fine, and speaks TLS 1.2 or newer
    c = Raw(server.submissions_port)
    try:
        c.sock = tls_context(server).wrap_socket(c.sock, server_hostname="mx.mailwerk.test")
        assert c.sock.version() in ("TLSv1.2", "TLSv1.3")
        c.expect(220)
        c.expect(221, "QUIT\r\n")
    finally:
        c.close()


@pytest.mark.parametrize("port_name", ["submissions_port", "submission_port"])
def test_tls_close_notify_after_quit(server, port_name):
    c = Raw(getattr(server, port_name))
    try:
        ctx = tls_context(server)
        ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF  # Python sets it by default; we want to see the EOF
        if port_name == "submission_port":
            c.expect(220)
            c.expect(250, "EHLO x\r\n")
            c.expect(220, "STARTTLS\r\n")
        c.starttls(ctx)
        if port_name == "submissions_port":
            c.expect(220)
        c.send("QUIT\r\n")
        # a clean TLS close (close_notify) reads as b""; a bare TCP close raises SSLError here
        data = b""
        for _ in range(100):
            chunk = c.sock.recv(4096)
            if not chunk:
                break
            data += chunk
        assert data.startswith(b"221 "), data
    finally:
        c.close()
