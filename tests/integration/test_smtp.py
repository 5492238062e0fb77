"""SMTP dialogues with real clients (smtplib, swaks) and byte-exact ones (smtpwire)."""
import base64
import re
import smtplib
import subprocess
import os

import pytest

from smtpwire import Raw, insecure_context

RCPT = "demo@mailwerk.test"
QUEUED = re.compile(r"2\.0\.0 Ok: queued as ([0-9A-Z]{20})")


def stored(server, qid):
    """The accepted bytes of message qid, queued or already delivered."""
    m = server.message(qid)
    return m["data"] if m else None


def send_raw(server, body, ehlo="client.example", sender="<a@example.org>"):
    w = Raw(server.smtp_port)
    assert w.reply()[0] == 220
    assert w.cmd("EHLO " + ehlo)[0] == 250
    assert w.cmd("MAIL FROM:" + sender)[0] == 250
    assert w.cmd("RCPT TO:<%s>" % RCPT)[0] == 250
    assert w.cmd("DATA")[0] == 354
    w.send(body)
    code, text = w.reply()
    w.cmd("QUIT")
    w.close()
    return code, text


def test_smtplib_plain_delivery_is_queued(server):
    with smtplib.SMTP("127.0.0.1", server.smtp_port) as s:
        code, banner = s.ehlo("client.example")
        assert code == 250
        feats = s.esmtp_features
        for kw in ("pipelining", "size", "8bitmime", "enhancedstatuscodes", "smtputf8", "chunking", "starttls"):
            assert kw in feats, kw
        assert "auth" not in feats  # MX role: no AUTH without TLS
        assert feats["size"] == str(25 * 1024 * 1024)
        s.mail("sender@example.org")
        s.rcpt(RCPT)
        code, text = s.data(b"Subject: hello\r\n\r\nline one\r\n.leading dot\r\n")
        assert code == 250
        qid = QUEUED.search(text.decode()).group(1)
    entry = server.message(qid)
    assert entry["sender"] == "sender@example.org"
    assert entry["rcpts"] == [RCPT]
    data = entry["data"]
    # smtplib dot-stuffs; the server must have removed exactly that dot (RFC 5321 §4.5.2)
    assert data.endswith(b"Subject: hello\r\n\r\nline one\r\n.leading dot\r\n")
    assert data.startswith(b"Received: from client.example ([127.0.0.1])\r\n\tby mx.mailwerk.test (mailwerk) with ESMTP id " + qid.encode())
    assert b"Message-ID" not in data  # only submission adds it


def test_every_reply_has_an_enhanced_code(server):
    w = Raw(server.smtp_port)
    assert w.reply() == (220, ["220 2.0.0 mx.mailwerk.test ESMTP mailwerk"])
    for cmd, want in [("HELO client.example", 250), ("NOOP", 250), ("RSET", 250), ("VRFY demo", 252),
                      ("HELP", 214), ("EXPN list", 502), ("FOO", 500), ("RCPT TO:<demo@mailwerk.test>", 503)]:
        code, text = w.cmd(cmd)
        assert code == want, (cmd, code, text)
        if cmd.startswith("HELO"):
            continue
        assert re.match(r"\d{3} [245]\.\d{1,3}\.\d{1,3} ", text[0]), (cmd, text)
    code, text = w.cmd("QUIT")
    assert code == 221 and text[0].startswith("221 2.0.0")
    assert w.closed()


def test_sequence_and_syntax_errors(server):
    w = Raw(server.smtp_port)
    w.reply()
    assert w.cmd("MAIL FROM:<a@example.org>")[0] == 503  # before EHLO
    assert w.cmd("EHLO")[0] == 501
    assert w.cmd("EHLO bad..name")[0] == 501
    assert w.cmd("EHLO client.example")[0] == 250
    assert w.cmd("DATA")[0] == 503
    code, text = w.cmd("MAIL FROM:<a@example.org> FOO=bar")
    assert (code, text[0][4:9]) == (555, "5.5.4")
    code, text = w.cmd("MAIL FROM:<a@@example.org>")
    assert code == 553 or code == 501
    assert w.cmd("MAIL FROM:<>")[0] == 250  # null sender (bounces)
    code, text = w.cmd("MAIL FROM:<b@example.org>")
    assert (code, text[0]) == (503, "503 5.5.1 Nested MAIL command")
    code, text = w.cmd("DATA")
    assert code == 554  # no recipients
    code, text = w.cmd("RCPT TO:<demo@mailwerk.test> X-UNKNOWN=1")
    assert code == 555
    code, text = w.cmd("RCPT TO:<Postmaster>")
    assert code == 250
    w.cmd("QUIT")


def test_relay_denied_without_auth(server):
    with smtplib.SMTP("127.0.0.1", server.smtp_port) as s:
        s.ehlo("client.example")
        s.mail("a@example.org")
        code, text = s.rcpt("victim@example.com")
        assert code == 554 and text.startswith(b"5.7.1")
        code, text = s.rcpt("someone@[127.0.0.1]")
        assert code == 554
        assert s.rcpt("Demo@MAILWERK.TEST")[0] == 250  # domains are case-insensitive


def test_submission_requires_tls_then_auth(server):
    with smtplib.SMTP("127.0.0.1", server.submission_port) as s:
        s.ehlo("client.example")
        assert "starttls" in s.esmtp_features
        assert "auth" not in s.esmtp_features
        code, text = s.docmd("AUTH PLAIN " + base64.b64encode(b"\0demo@mailwerk.test\0x").decode())
        assert code == 530
        code, text = s.mail("demo@mailwerk.test")
        assert (code, text[:5]) == (530, b"5.7.0")
        s.starttls(context=insecure_context())
        s.ehlo("client.example")
        assert s.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
        assert "starttls" not in s.esmtp_features
        code, _ = s.mail("demo@mailwerk.test")
        assert code == 530


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_submission_auth_relays_and_completes_headers(server, mech):
    with smtplib.SMTP("127.0.0.1", server.submission_port) as s:
        s.starttls(context=insecure_context())
        s.ehlo("laptop.example")
        s.user, s.password = server.user, server.password
        authfn = s.auth_plain if mech == "PLAIN" else s.auth_login
        code, _ = s.auth(mech, authfn, initial_response_ok=(mech == "PLAIN"))
        assert code == 235
        s.mail(server.user)
        assert s.rcpt("friend@example.org")[0] == 250  # relaying for an authenticated user
        code, text = s.data(b"From: demo@mailwerk.test\r\nSubject: out\r\n\r\nhi\r\n")
        qid = QUEUED.search(text.decode()).group(1)
    data = stored(server, qid)
    assert data is not None, (qid, list(server.messages()), server.log_text()[-3000:])
    head = data.split(b"\r\n\r\n", 1)[0]
    assert b"with ESMTPSA id " + qid.encode() in head
    assert re.search(rb"\(using TLSv1\.[23] with cipher \S+\)", head)
    assert b"(authenticated as demo@mailwerk.test)" in head
    assert b"\r\nDate: " in head  # RFC 6409 §8.3
    assert b"\r\nMessage-ID: <" + qid.encode() + b"@mx.mailwerk.test>" in head
    entry = [e for e in server.queue() if e["id"] == qid][0]
    assert entry["auth_user"] == server.user


def test_plain_without_initial_response_and_cancel(server):
    w = Raw(server.submissions_port, tls=True)
    assert w.reply()[0] == 220
    w.cmd("EHLO client.example")
    assert w.cmd("AUTH PLAIN") == (334, ["334 "])
    assert w.cmd("*")[0] == 501
    assert w.cmd("AUTH CRAM-MD5")[0] == 504
    assert w.cmd("AUTH PLAIN")[0] == 334
    assert w.cmd("not base64!")[0] == 501
    assert w.cmd("AUTH PLAIN")[0] == 334
    token = base64.b64encode(b"\0" + server.user.encode() + b"\0" + server.password.encode()).decode()
    assert w.cmd(token)[0] == 235
    assert w.cmd("AUTH PLAIN " + token)[0] == 503  # already authenticated
    w.cmd("QUIT")


def test_wrong_password_is_refused(server):
    with smtplib.SMTP_SSL("127.0.0.1", server.submissions_port, context=insecure_context()) as s:
        s.ehlo("client.example")
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            s.login(server.user, "not-the-password")
        assert e.value.smtp_code == 535
        with pytest.raises(smtplib.SMTPAuthenticationError):
            s.login("nobody@mailwerk.test", "whatever")
    assert "event=login result=fail" in server.log_text()
    assert "not-the-password" not in server.log_text()


def test_oversize_declared_and_actual(server):
    with smtplib.SMTP("127.0.0.1", server.smtp_port) as s:
        s.ehlo("client.example")
        code, text = s.docmd("MAIL FROM:<a@example.org> SIZE=%d" % (25 * 1024 * 1024 + 1))
        assert (code, text[:5]) == (552, b"5.3.4")
    big = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * (26 * 1024)  # ~26 MiB > 25 MiB
    code, text = send_raw(server, big + b".\r\n")
    assert code == 552 and text[0][4:].startswith("5.3.4")


def test_too_long_lines(server):
    code, text = send_raw(server, b"Subject: x\r\n\r\n" + b"y" * 1500 + b"\r\n.\r\n")
    assert code == 552 and text[0][4:].startswith("5.3.4")
    w = Raw(server.smtp_port)
    w.reply()
    code, text = w.cmd("EHLO " + "a" * 600)
    assert code == 500 and text[0][4:].startswith("5.5.2")
    assert w.cmd("NOOP")[0] == 250  # the session goes on after the over-long line
    w.close()


def test_too_many_recipients(server):
    with smtplib.SMTP("127.0.0.1", server.smtp_port) as s:
        s.ehlo("client.example")
        s.mail("a@example.org")
        for i in range(100):
            assert s.rcpt("demo+%d@mailwerk.test" % i)[0] == 250
        code, text = s.rcpt("demo+one-too-many@mailwerk.test")
        assert (code, text[:5]) == (452, b"4.5.3")
        code, text = s.data(b"Subject: many\r\n\r\nx\r\n")
        assert code == 250
        qid = QUEUED.search(text.decode()).group(1)
    assert len(server.message(qid)["rcpts"]) == 100


def test_bdat_chunks(server):
    w = Raw(server.smtp_port)
    w.reply()
    w.cmd("EHLO client.example")
    w.cmd("MAIL FROM:<a@example.org> BODY=8BITMIME")
    w.cmd("RCPT TO:<demo@mailwerk.test>")
    part1 = "Subject: chunked\r\n\r\nfirst ".encode()
    part2 = "part.\r\n.\r\nnot an end, ünïcode\r\n".encode()
    w.send(b"BDAT %d\r\n" % len(part1) + part1)
    assert w.reply() == (250, ["250 2.0.0 %d octets received" % len(part1)])
    assert w.cmd("DATA")[0] == 503  # RFC 3030: no DATA after BDAT
    w.send(b"BDAT %d LAST\r\n" % len(part2) + part2)
    code, text = w.reply()
    assert code == 250
    qid = QUEUED.search(text[0]).group(1)
    assert stored(server, qid).endswith(part1 + part2)
    # BDAT without a transaction: the chunk is read and refused, the session survives
    w.send(b"BDAT 5 LAST\r\nhello")
    assert w.reply()[0] == 503
    assert w.cmd("NOOP")[0] == 250
    w.cmd("QUIT")


def test_smtputf8_and_8bit(server):
    w = Raw(server.smtp_port)
    w.reply()
    w.cmd("EHLO client.example")
    code, text = w.cmd("MAIL FROM:<jörg@example.org>")
    assert code == 553 and text[0][4:].startswith("5.6.7")
    assert w.cmd("MAIL FROM:<jörg@example.org> SMTPUTF8")[0] == 250
    assert w.cmd("RCPT TO:<demo+müller@mailwerk.test>")[0] == 250
    w.cmd("DATA")
    body = "Subject: grüße\r\n\r\n8-bit body: ✓\r\n".encode()
    w.send(body + b".\r\n")
    code, text = w.reply()
    assert code == 250
    qid = QUEUED.search(text[0]).group(1)
    assert stored(server, qid).endswith(body)
    assert server.message(qid)["sender"] == "jörg@example.org"
    w.cmd("QUIT")


def test_nul_in_data_is_refused(server):
    code, text = send_raw(server, b"Subject: x\r\n\r\na\0b\r\n.\r\n")
    assert code == 550


def test_too_many_errors_closes(server):
    w = Raw(server.smtp_port)
    w.reply()
    for _ in range(9):
        assert w.cmd("BOGUS")[0] == 500
    code, text = w.cmd("BOGUS")
    assert code == 500
    code, text = w.reply()
    assert code == 421 and text[0][4:].startswith("4.7.0")
    assert w.closed()


def test_swaks_pipelining(server):
    p = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(server.smtp_port), "--pipeline",
                        "--ehlo", "swaks.example", "--from", "a@example.org", "--to", RCPT,
                        "--header", "Subject: swaks pipelined"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "queued as" in p.stdout
    qid = QUEUED.search(p.stdout).group(1)
    assert b"Subject: swaks pipelined" in stored(server, qid)


def test_swaks_starttls_auth_login(server):
    p = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(server.submission_port), "--tls",
                        "--auth", "LOGIN", "--auth-user", server.user, "--auth-password", server.password,
                        "--from", server.user, "--to", "far@example.net"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "235 2.7.0" in p.stdout and "queued as" in p.stdout


def test_ipv6_and_several_addresses_per_listener(tmp_path):
    from conftest import Server, free_port
    s = Server(tmp_path)
    p6 = free_port()
    s.overrides = ["listen.smtp=127.0.0.1:%d, [::1]:%d" % (s.smtp_port, p6)]
    s.start()
    try:
        with smtplib.SMTP("::1", p6) as m:
            m.ehlo("client.example")
            m.mail("a@example.org")
            m.rcpt(RCPT)
            code, text = m.data(b"Subject: v6\r\n\r\nx\r\n")
            assert code == 250
            qid = QUEUED.search(text.decode()).group(1)
        with smtplib.SMTP("127.0.0.1", s.smtp_port) as m:
            assert m.noop()[0] == 250
        assert b"Received: from client.example ([IPv6:::1])" in stored(s, qid)
    finally:
        s.stop()


def test_long_pipeline_is_answered_in_full(server):
    """RFC 2920: a client may send many commands before reading any reply; every one is answered,
    in order, however far the replies back up."""
    w = Raw(server.smtp_port, timeout=20)
    w.reply()
    w.cmd("EHLO client.example")
    n = 20000  # about 3 MB of replies, sent before reading any
    w.send(b"EHLO client.example\r\n" * n + b"QUIT\r\n")
    codes = [w.reply()[0] for _ in range(n + 1)]
    assert codes.count(250) == n and codes[-1] == 221
    w.close()
