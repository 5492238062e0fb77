"""DSN format cross-check: the notifications that tests/unit/test_bounce.c composes are read back by
Python's own email parser (policy.default), which nobody here wrote.

The unit test binary writes each DSN it builds to $MAILWERK_DSN_DUMP/<name>.eml; this suite runs it
with that set and checks every file as RFC 6522 multipart/report with an RFC 3464
message/delivery-status part, and some of them field by field against the values the unit test
passed in."""
import email
import email.policy
import email.utils
import os
import re
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("MAILWERK_BIN", os.path.join(HERE, "../../build-asan/mailwerk"))
TEST_BOUNCE = os.environ.get("MAILWERK_TEST_BOUNCE", os.path.join(os.path.dirname(BIN), "test_bounce"))

T0 = 1795320306  # the "now" of the unit test: Sun, 22 Nov 2026 04:05:06 +0000

PER_MESSAGE = {"original-envelope-id", "reporting-mta", "dsn-gateway", "received-from-mta", "arrival-date",
               "x-mailwerk-queue-id"}
PER_RECIPIENT = {"original-recipient", "final-recipient", "action", "status", "remote-mta", "diagnostic-code",
                 "last-attempt-date", "final-log-id", "will-retry-until"}
STATUS_RE = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$")


@pytest.fixture(scope="module")
def dsns(tmp_path_factory):
    if not os.path.exists(TEST_BOUNCE):
        pytest.fail("%s is missing: build with cmake --build build-asan" % TEST_BOUNCE)
    out = tmp_path_factory.mktemp("dsn")
    p = subprocess.run([TEST_BOUNCE], env={**os.environ, "MAILWERK_DSN_DUMP": str(out)}, capture_output=True,
                       timeout=300)
    assert p.returncode == 0, (p.stdout + p.stderr).decode(errors="replace")
    files = {f.stem: f.read_bytes() for f in sorted(out.glob("*.eml"))}
    assert len(files) >= 15, sorted(files)
    return files


def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.default)


def unxtext(s):
    """RFC 6533 §3 utf-8-addr-xtext back to the address."""
    return re.sub(r"\\x\{([0-9A-F]{2,6})\}", lambda m: chr(int(m.group(1), 16)), s)


def report(msg):
    """The three parts and the delivery-status blocks: (text, per-message, [per-recipient], headers)."""
    assert msg.is_multipart()
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    parts = msg.get_payload()
    assert len(parts) == 3
    text, status, headers = parts
    assert text.get_content_type() == "text/plain"
    assert status.get_content_type() == "message/delivery-status"
    # the header section, or the whole message for RET=FULL (RFC 3461 §4.3)
    assert headers.get_content_type() in ("text/rfc822-headers", "message/global-headers", "message/rfc822")
    blocks = status.get_payload()
    assert isinstance(blocks, list) and len(blocks) >= 2
    return text, blocks[0], blocks[1:], headers


def returned_headers(part):
    """The returned header section as a parsed message (headers only)."""
    if part.get_content_type() == "message/rfc822":
        return part.get_content()
    if part.get_content_type() == "message/global-headers":
        inner = part.get_payload()
        assert isinstance(inner, list) and len(inner) == 1
        return inner[0]
    return email.message_from_string(part.get_content(), policy=email.policy.default)


def test_every_dump_is_a_wellformed_report(dsns):
    for name, raw in dsns.items():
        # CRLF only and RFC 5322 §2.1.1 line lengths, checked here independently of the C test
        assert b"\x00" not in raw, name
        lines = raw.split(b"\r\n")
        assert lines[-1] == b"", name
        for line in lines:
            assert b"\r" not in line and b"\n" not in line, name
            assert len(line) <= 998, name
        assert b"SECRET-BODY-TEXT" not in raw, name  # the unit test's RET=FULL originals have none

        msg = parse(raw)
        text, per_message, per_rcpt, headers = report(msg)
        assert [(p.get_content_type(), p.defects) for p in msg.walk() if p.defects] == [], name
        assert msg["Auto-Submitted"] == "auto-replied", name
        assert msg["MIME-Version"] == "1.0", name
        frm = msg["From"].addresses
        assert len(frm) == 1 and frm[0].username == "MAILER-DAEMON", name
        assert frm[0].display_name == "Mail Delivery System", name
        assert msg["Subject"] in ("Undelivered Mail Returned to Sender", "Delayed Mail (still being retried)",
                                  "Successful Mail Delivery Report"), name
        assert email.utils.parsedate_to_datetime(str(msg["Date"])).timestamp() == T0, name
        assert re.fullmatch(r"<[^<>@\s]+\.dsn(-delay|-success\.\d+)?@[^<>\s]+>", str(msg["Message-ID"])), name
        boundary = msg.get_boundary()
        assert boundary and 1 <= len(boundary) <= 70, name
        assert raw.count(boundary.encode()) == 5, name

        # RFC 3464 §2.2 / §2.3: known fields only, each recipient with the required three
        assert str(per_message["Reporting-MTA"]).startswith("dns; "), name
        assert set(k.lower() for k in per_message.keys()) <= PER_MESSAGE, (name, per_message.keys())
        for block in per_rcpt:
            keys = [k.lower() for k in block.keys()]
            assert set(keys) <= PER_RECIPIENT, (name, keys)
            assert len(keys) == len(set(keys)), (name, keys)
            assert re.match(r"^(rfc822|utf-8); \S", str(block["Final-Recipient"])), name
            assert block["Action"] in ("failed", "delayed", "delivered", "relayed"), name
            assert STATUS_RE.match(str(block["Status"])), name
            assert str(block["Status"])[0] == ("4" if block["Action"] == "delayed" else str(block["Status"])[0])
            # RFC 3464 §2.3.4: success actions carry a 2.X.X status, the others never do
            assert (str(block["Status"])[0] == "2") == (block["Action"] in ("delivered", "relayed")), name
            if block["Will-Retry-Until"] is not None:
                assert block["Action"] == "delayed", name
        body = text.get_content()
        assert "mail delivery system" in body, name
        returned_headers(headers)


def test_failure_values(dsns):
    msg = parse(dsns["failure"])
    text, per_message, per_rcpt, headers = report(msg)
    assert msg["Subject"] == "Undelivered Mail Returned to Sender"
    assert msg["To"].addresses[0].addr_spec == "alice@example.org"
    assert msg["Message-ID"] == "<0123456789ABCDEFGHJK.dsn@mx.example.org>"
    assert per_message["Reporting-MTA"] == "dns; mx.example.org"
    assert per_message["X-Mailwerk-Queue-ID"] == "0123456789ABCDEFGHJK"
    assert email.utils.parsedate_to_datetime(str(per_message["Arrival-Date"])).timestamp() == T0 - 3600
    assert len(per_rcpt) == 1
    r = per_rcpt[0]
    assert r["Final-Recipient"] == "rfc822; bob@example.net"
    assert r["Original-Recipient"] is None
    assert r["Action"] == "failed"
    assert r["Status"] == "5.1.1"
    assert r["Remote-MTA"] == "dns; mx.example.net"
    assert r["Diagnostic-Code"] == "smtp; 550 5.1.1 <bob@example.net>: user unknown"
    assert email.utils.parsedate_to_datetime(str(r["Last-Attempt-Date"])).timestamp() == T0 - 60
    assert text.get_content_charset() == "us-ascii"
    assert "<bob@example.net>: could not be delivered" in text.get_content()
    assert headers.get_content_type() == "text/rfc822-headers"
    h = returned_headers(headers)
    assert h["Subject"] == "lunch"
    assert h["Message-ID"] == "<m1@example.org>"
    assert h.get_payload() == ""


def test_delay_values(dsns):
    msg = parse(dsns["delay"])
    text, per_message, per_rcpt, _ = report(msg)
    assert msg["Subject"] == "Delayed Mail (still being retried)"
    assert msg["Message-ID"] == "<0123456789ABCDEFGHJK.dsn-delay@mx.example.org>"
    assert per_message["Original-Envelope-Id"] == "env-42"
    assert [(r["Final-Recipient"], r["Action"], r["Status"]) for r in per_rcpt] == [
        ("rfc822; bob@example.net", "delayed", "4.4.1"),
        ("rfc822; carol@example.net", "delayed", "4.0.0"),
    ]
    assert per_rcpt[0]["Original-Recipient"] is None
    assert per_rcpt[1]["Original-Recipient"] == "rfc822; Carol@Example.NET"
    for r in per_rcpt:
        assert email.utils.parsedate_to_datetime(str(r["Will-Retry-Until"])).timestamp() == T0 + 5 * 86400
    assert "not delivered yet" in text.get_content()


def test_many_recipients(dsns):
    _, _, per_rcpt, _ = report(parse(dsns["many_rcpts"]))
    assert [str(r["Final-Recipient"]) for r in per_rcpt] == ["rfc822; user%d@example.net" % i for i in range(300)]
    assert all(r["Action"] == "failed" and r["Status"] == "5.2.2" for r in per_rcpt)
    assert all(r["Diagnostic-Code"] == "smtp; 552 5.2.2 mailbox full" for r in per_rcpt)


def test_hostile_diagnostic(dsns):
    _, _, per_rcpt, _ = report(parse(dsns["hostile_diagnostic"]))
    assert len(per_rcpt) == 1
    r = per_rcpt[0]
    assert r["Final-Recipient"] == "rfc822; bob@example.net"
    assert set(k.lower() for k in r.keys()) == {"final-recipient", "action", "status", "remote-mta", "diagnostic-code"}
    diag = str(r["Diagnostic-Code"])
    assert diag.startswith("smtp; 550-5.1.1 first line 550-5.1.1 second line 550-Injected: field ")
    assert diag.endswith("...")
    assert all(0x20 <= ord(c) < 0x7F for c in diag)
    assert r["Remote-MTA"] == "dns; mx.example.net X-Evil: 1"


def test_utf8_headers_and_addresses(dsns):
    raw = dsns["folded_8bit_headers"]
    msg = parse(raw)
    text, _, per_rcpt, headers = report(msg)
    assert headers.get_content_type() == "message/global-headers"
    assert text.get_content_charset() == "utf-8"
    assert "<jörg@bü ro.example>: could not be delivered" in text.get_content()
    r = per_rcpt[0]
    ftype, _, faddr = str(r["Final-Recipient"]).partition("; ")
    assert ftype == "utf-8" and unxtext(faddr) == "jörg@bü ro.example"
    otype, _, oaddr = str(r["Original-Recipient"]).partition("; ")
    assert otype == "utf-8" and unxtext(oaddr) == "jörg+x=y@bü ro.example"
    # the returned header section, read from the raw bytes as UTF-8 (RFC 6532)
    h = email.message_from_bytes(raw.split(b"Content-Type: message/global-headers\r\n", 1)[1].split(b"\r\n\r\n", 1)[1],
                                 policy=email.policy.SMTPUTF8)
    assert " ".join(str(h["Subject"]).split()) == "Grüße aus Köln, folded onto a second line and a third"
    assert h["X-Bad-Octet"] == "??? end"
    assert str(h["From"]) == "Jörg <joerg@example.org>"


def test_boundary_avoids_content(dsns):
    msg = parse(dsns["boundary_collision"])
    report(msg)
    assert msg.get_boundary() == "mailwerk-dsn-00112233445566778899aabbccddeeff-00000003"


@pytest.mark.parametrize("name,expect", [
    ("original_no_separator", [("Subject", "x"), ("From", "a@b")]),
    ("original_no_separator_body", [("Subject", "x")]),
    ("original_bare_lf", [("Subject", "a"), ("X-A", "bcd")]),
    ("original_cr_cr_lf", [("Subject", "a")]),
    ("original_blank_continuation", [("Subject", "a"), ("To", "b")]),
    ("original_empty", []),
    ("original_null", []),
    ("original_body_only", []),
    ("original_leading_continuation", []),
    ("original_mbox_from", []),
])
def test_returned_header_section(dsns, name, expect):
    _, _, _, headers = report(parse(dsns[name]))
    assert headers.get_content_type() == "text/rfc822-headers"
    h = returned_headers(headers)
    assert [(k, str(v)) for k, v in h.items()] == expect
    assert h.get_payload() == ""


def test_success_values(dsns):
    """NOTIFY=SUCCESS reports (RFC 3461 §4.1): delivered and relayed, with ENVID and ORCPT."""
    msg = parse(dsns["success"])
    assert msg["Subject"] == "Successful Mail Delivery Report"
    _, per_message, per_rcpt, headers = report(msg)
    assert per_message["Original-Envelope-Id"] == "ENV 314"
    assert [(str(b["Final-Recipient"]), str(b["Action"]), str(b["Status"])) for b in per_rcpt] == [
        ("rfc822; bob@example.net", "delivered", "2.0.0"), ("rfc822; carol@example.com", "relayed", "2.0.0")]
    assert str(per_rcpt[0]["Original-Recipient"]) == "rfc822; old+bob@example.org"
    assert str(per_rcpt[1]["Remote-MTA"]) == "dns; mx.example.com"
    assert headers.get_content_type() == "text/rfc822-headers"  # RET=FULL is for failures only


def test_ret_full_returns_the_message(dsns):
    msg = parse(dsns["ret_full"])
    _, _, per_rcpt, returned = report(msg)
    assert returned.get_content_type() == "message/rfc822"
    inner = returned.get_content()
    assert inner["Subject"] == "lunch"
    assert inner.get_content().replace("\r\n", "\n") == "see you at noon\n--not-a-boundary\n"
    # too long a line: the header section only
    _, _, _, returned = report(parse(dsns["ret_full_refused"]))
    assert returned.get_content_type() == "text/rfc822-headers"
