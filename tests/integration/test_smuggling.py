"""SMTP smuggling (inbound side): the byte sequences of shared/testdata/smtp/smuggling.md rows
1-10 must never end DATA, bare CR/LF are refused in data and in commands, BDAT content is counted
and never scanned for commands, and legitimate pipelining (RFC 2920) still works."""
import os
import re
import socket
import time

import pytest

from smtpwire import Raw

RCPT = "demo@mailwerk.test"
SMUGGLED_SENDER = b"smuggled@example.org"
SMUGGLED_TX = (b"MAIL FROM:<smuggled@example.org>\r\n"
               b"RCPT TO:<demo@mailwerk.test>\r\n"
               b"DATA\r\n"
               b"From: smuggled@example.org\r\n\r\nsmuggled\r\n.\r\n")

# smuggling.md, inbound table, rows 1-10
SEQUENCES = [
    pytest.param(b"\n.\n", id="01-lf-dot-lf"),
    pytest.param(b"\n.\r\n", id="02-lf-dot-crlf"),
    pytest.param(b"\r\n.\n", id="03-crlf-dot-lf"),
    pytest.param(b"\r.\r", id="04-cr-dot-cr"),
    pytest.param(b"\r.\n", id="05-cr-dot-lf"),
    pytest.param(b"\n.\r", id="06-lf-dot-cr"),
    pytest.param(b"\r.\r\n", id="07-cr-dot-crlf"),
    pytest.param(b"\r\n.\r", id="08-crlf-dot-cr"),
    pytest.param(b"\r\n\x00.\r\n", id="09-nul-before-dot"),
    pytest.param(b"\r\n.\x00\r\n", id="10-nul-after-dot"),
]


def has_bare_cr_or_lf(b):
    return re.search(rb"\r(?!\n)|(?<!\r)\n", b) is not None


def queue_ids(server):
    """Ids of every accepted message, queued or already delivered."""
    return set(server.messages())


def stored(server, ids):
    """{id: (sender, data)} of accepted messages, wherever they are now."""
    out = {}
    for i in ids:
        m = server.message(i)
        if m is not None:
            out[i] = (m["sender"], m["data"])
    return out


def smuggled_sender_rows(server):
    return [qid for qid, m in server.messages().items() if m["sender"] == SMUGGLED_SENDER.decode()]


def open_transaction(server, ehlo="client.example"):
    c = Raw(server.smtp_port)
    c.expect(220)
    c.expect(250, "EHLO %s\r\n" % ehlo)
    c.expect(250, "MAIL FROM:<sender@example.org>\r\n")
    c.expect(250, "RCPT TO:<%s>\r\n" % RCPT)
    return c


def assert_no_smuggled_acceptance(lines):
    for ln in lines:
        assert not ln.startswith("250 2.1.0"), "a smuggled MAIL was accepted: %r" % lines
        assert not ln.startswith("250 2.1.5"), "a smuggled RCPT was accepted: %r" % lines
        assert not ln.startswith("354"), "a smuggled DATA was accepted: %r" % lines


@pytest.mark.parametrize("seq", SEQUENCES)
def test_smuggling_sequence_in_data(server, seq):
    before = queue_ids(server)
    c = open_transaction(server)
    try:
        c.expect(354, "DATA\r\n")
        c.send(b"Subject: smuggling test\r\n\r\nbody line" + seq + SMUGGLED_TX + b"\r\n.\r\n" + b"QUIT\r\n")
        lines = c.read_until_close()
    finally:
        c.close()
    assert_no_smuggled_acceptance(lines)
    new = queue_ids(server) - before
    assert len(new) <= 1, "one connection produced %d messages: %r" % (len(new), lines)
    assert smuggled_sender_rows(server) == []
    queued = [ln for ln in lines if ln.startswith("250 2.0.0 Ok: queued as ")]
    assert len(queued) == len(new), (lines, new)
    if has_bare_cr_or_lf(seq):
        # the documented behaviour: refuse the message and close
        assert lines and lines[0].startswith("550 5.5.2"), lines
        assert not new
    if new:
        (sender, data), = stored(server, new).values()
        assert sender == "sender@example.org"
        assert b"MAIL FROM:<smuggled@example.org>" in data and b"smuggled" in data, data
    else:
        assert lines and lines[0].startswith("550 "), "the message was neither stored nor refused: %r" % lines


@pytest.mark.parametrize("seq", SEQUENCES)
def test_smuggling_sequence_in_bdat(server, seq):
    """BDAT content is counted, never scanned: the smuggled commands inside it are not commands."""
    before = queue_ids(server)
    content = b"Subject: smuggling test\r\n\r\nbody line" + seq + SMUGGLED_TX + b"\r\n.\r\n"
    c = open_transaction(server)
    try:
        c.send(b"BDAT %d\r\n" % len(content) + content + b"BDAT 0 LAST\r\nQUIT\r\n")
        lines = c.read_until_close()
    finally:
        c.close()
    assert_no_smuggled_acceptance(lines)
    # exactly one reply per command we sent: the chunk, BDAT LAST, QUIT
    assert len(lines) == 3, lines
    assert lines[0] == "250 2.0.0 %d octets received" % len(content), lines
    if has_bare_cr_or_lf(seq):
        assert lines[1].startswith("550 5.5.2"), lines
    else:
        assert lines[1].startswith("550 "), lines  # NUL octet
    assert lines[2].startswith("221"), lines
    assert queue_ids(server) - before == set()
    assert smuggled_sender_rows(server) == []


@pytest.mark.parametrize("body", [
    pytest.param(b"line1\nline2\r\n", id="bare-lf"),
    pytest.param(b"line1\rline2\r\n", id="bare-cr"),
    pytest.param(b"line1\r\r\n", id="cr-before-crlf"),
    pytest.param(b"line1\n\r\n", id="lf-before-crlf"),
])
def test_bare_eol_inside_data_line_refused(server, body):
    before = queue_ids(server)
    c = open_transaction(server)
    try:
        c.expect(354, "DATA\r\n")
        c.send(b"Subject: bare\r\n\r\n" + body + b"more\r\n.\r\nQUIT\r\n")
        lines = c.read_until_close()
    finally:
        c.close()
    assert lines and lines[0].startswith("550 5.5.2"), lines
    assert not any(ln.startswith("250") for ln in lines), lines
    assert queue_ids(server) - before == set()


@pytest.mark.parametrize("first,rest", [
    pytest.param(b"EHLO x\n", b"", id="ehlo-lf"),
    pytest.param(b"EHLO x\rNOOP\r\n", b"", id="ehlo-cr"),
    pytest.param(b"EHLO x\r\r\n", b"", id="ehlo-cr-crlf"),
    pytest.param(b"EHLO x\r\n", b"MAIL FROM:<a@b>\n", id="mail-lf"),
    pytest.param(b"EHLO x\r\n", b"MAIL FROM:<a@b>\rRCPT TO:<demo@mailwerk.test>\r\n", id="mail-cr"),
])
def test_bare_eol_in_command_refused(server, first, rest):
    before = queue_ids(server)
    c = Raw(server.smtp_port)
    try:
        c.expect(220)
        tail = (b"RCPT TO:<demo@mailwerk.test>\r\nDATA\r\nSubject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n")
        if rest:
            c.expect(250, first)
            c.send(rest + tail)
        else:
            c.send(first + b"MAIL FROM:<a@example.org>\r\n" + tail)
        lines = c.read_until_close()
    finally:
        c.close()
    assert lines and lines[0].startswith("500 5.5.2"), lines
    assert len(lines) == 1, "commands after the bare line end were read: %r" % lines
    assert queue_ids(server) - before == set()


def test_pipelined_transaction(server):
    """RFC 2920: MAIL, RCPT, DATA in one send, then the body; the replies come in order."""
    c = Raw(server.smtp_port)
    try:
        c.expect(220)
        ehlo = c.expect(250, "EHLO client.example\r\n")
        assert any(ln[4:] == "PIPELINING" for ln in ehlo), ehlo
        c.send("MAIL FROM:<pipe@example.org>\r\nRCPT TO:<demo@mailwerk.test>\r\n"
               "RCPT TO:<demo+other@mailwerk.test>\r\nDATA\r\n")
        got = [c.reply() for _ in range(4)]
        assert [g[0] for g in got] == [250, 250, 250, 354], got
        assert got[0][1][0].startswith("250 2.1.0") and got[1][1][0].startswith("250 2.1.5"), got
        c.send(b"Subject: pipelined\r\n\r\npipelined body\r\n.\r\nQUIT\r\n")
        lines = c.read_until_close()
    finally:
        c.close()
    assert len(lines) == 2, lines
    m = re.fullmatch(r"250 2\.0\.0 Ok: queued as (\S+)", lines[0])
    assert m and len(m.group(1)) == 20, lines
    assert lines[1].startswith("221 2.0.0"), lines
    qid = m.group(1)
    (sender, data), = stored(server, [qid]).values()
    assert sender == "pipe@example.org"
    assert data.endswith(b"Subject: pipelined\r\n\r\npipelined body\r\n"), data
    assert sorted(server.message(qid)["rcpts"]) == ["demo+other@mailwerk.test", "demo@mailwerk.test"]


def test_pipelined_commands_after_end_of_data(server):
    """Commands in the same send as the EOD are a second, legitimate transaction: each reply once, in
    order, and the two bodies stay apart."""
    before = queue_ids(server)
    c = open_transaction(server)
    try:
        c.expect(354, "DATA\r\n")
        c.send(b"Subject: first\r\n\r\nfirst body\r\n.\r\n"
               b"MAIL FROM:<second@example.org>\r\nRCPT TO:<demo@mailwerk.test>\r\nDATA\r\n"
               b"Subject: second\r\n\r\nsecond body\r\n.\r\nQUIT\r\n")
        lines = c.read_until_close()
    finally:
        c.close()
    assert len(lines) == 6, lines
    assert lines[0].startswith("250 2.0.0 Ok: queued as "), lines
    assert lines[1].startswith("250 2.1.0") and lines[2].startswith("250 2.1.5"), lines
    assert lines[3].startswith("354"), lines
    assert lines[4].startswith("250 2.0.0 Ok: queued as "), lines
    assert lines[5].startswith("221"), lines
    ids = [lines[0].split()[-1], lines[4].split()[-1]]
    assert set(ids) == queue_ids(server) - before
    rows = stored(server, ids)
    assert rows[ids[0]][0] == "sender@example.org"
    assert rows[ids[0]][1].endswith(b"Subject: first\r\n\r\nfirst body\r\n")
    assert rows[ids[1]][0] == "second@example.org"
    assert rows[ids[1]][1].endswith(b"Subject: second\r\n\r\nsecond body\r\n")


def test_dot_unstuffing(server):
    """RFC 5321 §4.5.2 receiver side: the first '.' of a line is removed; only '.' alone ends DATA."""
    c = open_transaction(server)
    try:
        c.expect(354, "DATA\r\n")
        c.send(b"Subject: dots\r\n\r\n..\r\n..foo\r\n.foo\r\n. \r\nend\r\n.\r\nQUIT\r\n")
        lines = c.read_until_close()
    finally:
        c.close()
    assert len(lines) == 2 and lines[0].startswith("250 2.0.0 Ok: queued as "), lines
    (sender, data), = stored(server, [lines[0].split()[-1]]).values()
    assert data.endswith(b"Subject: dots\r\n\r\n.\r\n.foo\r\nfoo\r\n \r\nend\r\n"), data


def test_pipelining_refused_without_ehlo(server):
    """smuggling.md: pipelined commands are processed only if PIPELINING was advertised and EHLO was used
    (Postfix: smtpd_forbid_unauth_pipelining). After HELO, a whole transaction in one send must not be
    accepted as if each command had waited for its reply."""
    before = queue_ids(server)
    c = Raw(server.smtp_port)
    try:
        c.expect(220)
        c.expect(250, "HELO client.example\r\n")
        c.send(b"MAIL FROM:<unauth-pipe@example.org>\r\nRCPT TO:<demo@mailwerk.test>\r\nDATA\r\n"
               b"Subject: unauthorised pipelining\r\n\r\nhi\r\n.\r\nQUIT\r\n")
        lines = c.read_until_close()
    finally:
        c.close()
    assert queue_ids(server) - before == set(), "a message was queued from unauthorised pipelining: %r" % lines
    assert any(ln.startswith("5") for ln in lines), lines


@pytest.mark.parametrize("split", [False, True], ids=["one-send", "split-send"])
@pytest.mark.parametrize("seq", SEQUENCES)
def test_smuggling_sequence_after_overlong_data_line(server, seq, split):
    """The same sequences right after a data line longer than 1000 octets, which the server drops
    while it looks for the line's end: dropping must not loosen the CRLF rule."""
    before = queue_ids(server)
    c = open_transaction(server)
    try:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.expect(354, "DATA\r\n")
        head = b"Subject: overlong\r\n\r\n" + b"A" * 1500
        tail = seq + SMUGGLED_TX + b"\r\n.\r\nQUIT\r\n"
        if split:
            c.send(head)
            c.send(tail)
        else:
            c.send(head + tail)
        lines = c.read_until_close()
    finally:
        c.close()
    assert_no_smuggled_acceptance(lines)
    assert lines and lines[0][:1] == "5", lines  # bare line end, over-long line or NUL: refused
    if has_bare_cr_or_lf(seq):
        assert lines[0].startswith("550 5.5.2"), lines
    assert queue_ids(server) - before == set()
    assert smuggled_sender_rows(server) == []


def test_data_byte_by_byte(server):
    """Line ends split across reads are still CRLF: a message sent one octet per send is accepted and
    stored exactly."""
    c = open_transaction(server)
    try:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.expect(354, "DATA\r\n")
        body = b"Subject: slow\r\n\r\nline one\r\n..dot\r\n\r\nlast\r\n"
        for b in body + b".\r\n":
            c.send(bytes([b]))
        c.send(b"QUIT\r\n")
        lines = c.read_until_close()
    finally:
        c.close()
    assert len(lines) == 2 and lines[0].startswith("250 2.0.0 Ok: queued as "), lines
    (_, data), = stored(server, [lines[0].split()[-1]]).values()
    assert data.endswith(b"Subject: slow\r\n\r\nline one\r\n.dot\r\n\r\nlast\r\n"), data


@pytest.mark.parametrize("seq", [s for s in SEQUENCES if has_bare_cr_or_lf(s.values[0])])
def test_smuggling_sequence_byte_by_byte(server, seq):
    before = queue_ids(server)
    c = open_transaction(server)
    try:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.expect(354, "DATA\r\n")
        c.send(b"Subject: slow smuggling\r\n\r\nbody line")
        for b in seq + b"MAIL FROM:<smuggled@example.org>\r\n":
            try:
                c.send(bytes([b]))
            except (BrokenPipeError, ConnectionResetError):
                break  # the server has already refused and closed
        lines = c.read_until_close()
    finally:
        c.close()
    assert lines and lines[0].startswith("550 5.5.2"), lines
    assert_no_smuggled_acceptance(lines)
    assert queue_ids(server) - before == set()


def test_empty_body(server):
    """smuggling.md: '.' right after the 354 ends an empty message."""
    c = open_transaction(server)
    try:
        c.expect(354, "DATA\r\n")
        c.send(b".\r\nQUIT\r\n")
        lines = c.read_until_close()
    finally:
        c.close()
    assert len(lines) == 2 and lines[0].startswith("250 2.0.0 Ok: queued as "), lines
    (_, data), = stored(server, [lines[0].split()[-1]]).values()
    assert data.startswith(b"Received: ") and data.endswith(b"\r\n"), data


@pytest.mark.parametrize("first,second,ok", [
    pytest.param(b"Subject: split\r\n\r\nline\r", b"\nmore\r\n", True, id="crlf-across-chunks"),
    pytest.param(b"Subject: split\r\n\r\nline\r", b"more\r\n", False, id="cr-then-text"),
    pytest.param(b"Subject: split\r\n\r\nline", b"\nmore\r\n", False, id="lf-opens-chunk"),
    pytest.param(b"Subject: split\r\n\r\nline\r\n", b"last\r", False, id="cr-at-end"),
])
def test_bdat_line_end_across_chunks(server, first, second, ok):
    before = queue_ids(server)
    c = open_transaction(server)
    try:
        c.send(b"BDAT %d\r\n" % len(first) + first + b"BDAT %d LAST\r\n" % len(second) + second + b"QUIT\r\n")
        lines = c.read_until_close()
    finally:
        c.close()
    assert len(lines) == 3, lines
    assert lines[0] == "250 2.0.0 %d octets received" % len(first), lines
    assert lines[2].startswith("221"), lines
    new = queue_ids(server) - before
    if ok:
        assert lines[1].startswith("250 2.0.0 Ok: queued as "), lines
        (_, data), = stored(server, new).values()
        assert data.endswith(first + second), data
    else:
        assert lines[1].startswith("550 5.5.2"), lines
        assert not new


@pytest.mark.parametrize("split", [False, True], ids=["one-send", "split-send"])
def test_overlong_command_line_ending_in_bare_lf(server, split):
    """RFC 5321 §2.3.8: a bare LF is never a line end, not even for a line being dropped as too long.
    Expected (as for short lines): 500 5.5.2 and close; at least the bytes after the LF are no command."""
    c = Raw(server.smtp_port)
    try:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.expect(220)
        c.expect(250, "EHLO client.example\r\n")
        head, tail = b"NOOP " + b"A" * 600, b"\nRSET\r\nMAIL FROM:<smuggled@example.org>\r\nQUIT\r\n"
        if split:
            c.send(head)
            c.send(tail)
        else:
            c.send(head + tail)
        lines = c.read_until_close()
    finally:
        c.close()
    assert lines and lines[0].startswith("500 5.5.2"), lines
    assert not any(ln.startswith("250") for ln in lines), "commands after the bare LF were run: %r" % lines
