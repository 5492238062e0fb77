"""Local delivery: SMTP in, Maildir out. Failures are deferred and retried on the schedule, never
dropped; the queue entry goes once every recipient has the message."""
import glob
import re
import os
import shutil
import smtplib
import time

import pytest

from conftest import Server


def maildir_files(s, user="demo"):
    return sorted(glob.glob(os.path.join(s.dir, "mail", "mailwerk.test", user, "new", "*")))


def wait_for(cond, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    return cond()


def send(s, rcpts, body=b"Subject: hi\r\n\r\nhello\r\n"):
    with smtplib.SMTP("127.0.0.1", s.smtp_port) as m:
        m.ehlo("client.example")
        m.sendmail("sender@example.org", rcpts, body)


@pytest.fixture
def ds(tmp_path):
    s = Server(tmp_path, overrides=["delivery.retry_schedule=1s"])
    yield s
    if s.proc is not None:
        s.stop()


def test_delivered_into_maildir_with_trace_headers(ds):
    ds.start()
    body = b"Subject: local\r\n\r\nline\r\n.leading dot\r\n\xc3\xbc 8-bit\r\n"
    send(ds, ["demo+tag@mailwerk.test"], body)
    files = wait_for(lambda: maildir_files(ds))
    assert len(files) == 1
    data = open(files[0], "rb").read()
    assert data.startswith(b"Return-Path: <sender@example.org>\r\nDelivered-To: demo+tag@mailwerk.test\r\nReceived: ")
    assert data.endswith(body)
    assert ",S=%d" % len(data) in files[0]
    assert wait_for(lambda: ds.queue() == [])  # every recipient done: the entry is gone
    assert "event=delivered" in ds.log_text()


def test_failure_is_deferred_and_retried(ds):
    ds.start()
    blocker = os.path.join(ds.dir, "mail", "mailwerk.test", "demo")
    os.makedirs(os.path.dirname(blocker))
    open(blocker, "w").close()  # a file where the Maildir should be: delivery cannot succeed
    send(ds, ["demo@mailwerk.test"])
    entry = wait_for(lambda: [e for e in ds.queue() if e["recipients"][0]["state"] == "deferred"])
    assert entry, ds.log_text()[-2000:]
    r = entry[0]["recipients"][0]
    assert r["attempts"] >= 1 and r["last_error"]
    os.unlink(blocker)
    assert wait_for(lambda: maildir_files(ds)), ds.log_text()[-2000:]
    assert wait_for(lambda: ds.queue() == [])


def test_over_quota_waits_in_the_queue(ds):
    ds.cli("user", "quota", "demo@mailwerk.test", "1K")
    ds.start()
    send(ds, ["demo@mailwerk.test"], b"Subject: big\r\n\r\n" + b"x" * 900 + b"\r\n" + b"y" * 900 + b"\r\n")
    entry = wait_for(lambda: [e for e in ds.queue() if e["recipients"][0]["state"] == "deferred"])
    assert "quota" in entry[0]["recipients"][0]["last_error"]
    assert maildir_files(ds) == []
    ds.cli("user", "quota", "demo@mailwerk.test", "none")
    assert wait_for(lambda: maildir_files(ds))


def test_restart_delivers_what_was_waiting(ds):
    ds.start()
    blocker = os.path.join(ds.dir, "mail", "mailwerk.test", "demo")
    os.makedirs(os.path.dirname(blocker))
    open(blocker, "w").close()
    send(ds, ["demo@mailwerk.test"])
    assert wait_for(lambda: [e for e in ds.queue() if e["recipients"][0]["state"] == "deferred"])
    ds.kill()
    os.unlink(blocker)
    ds.start()
    assert wait_for(lambda: maildir_files(ds))
    assert wait_for(lambda: ds.queue() == [])


def test_remote_recipients_wait_for_outbound_delivery(ds):
    ds.cli("alias", "add", "fwd@mailwerk.test", "demo@mailwerk.test,", "far@example.org")
    ds.start()
    send(ds, ["fwd@mailwerk.test"])
    assert wait_for(lambda: maildir_files(ds))
    entry = wait_for(lambda: [e for e in ds.queue()
                              if {r["address"]: r["state"] for r in e["recipients"]}.get("demo@mailwerk.test") == "delivered"])
    states = {r["address"]: r["state"] for r in entry[0]["recipients"]}
    assert states == {"demo@mailwerk.test": "delivered", "far@example.org": "pending"}


def test_many_messages_from_parallel_clients_all_arrive(ds):
    import threading
    ds.start()
    errors = []

    def client(n):
        try:
            with smtplib.SMTP("127.0.0.1", ds.smtp_port) as m:
                m.ehlo("client.example")
                for i in range(20):
                    m.sendmail("s@example.org", ["demo@mailwerk.test"], b"Subject: %d-%d\r\n\r\nx\r\n" % (n, i))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert wait_for(lambda: len(maildir_files(ds)) == 200, timeout=30), len(maildir_files(ds))
    assert wait_for(lambda: ds.queue() == [])


def dsn_for(s, user="alice"):
    """The DSNs in a local user's mailbox, parsed."""
    import email
    import email.policy
    out = []
    for path in maildir_files(s, user):
        msg = email.message_from_bytes(open(path, "rb").read(), policy=email.policy.default)
        if msg.get_content_type() == "multipart/report":
            out.append(msg)
    return out


def delivery_status(dsn):
    """{Final-Recipient address: Status} from the message/delivery-status part."""
    part = [p for p in dsn.iter_parts() if p.get_content_type() == "message/delivery-status"][0]
    text = part.as_bytes().decode()
    recipients = re.findall(r"Final-Recipient: *rfc822; *(\S+)", text, re.I)
    statuses = re.findall(r"^Status: *(\S+)", text, re.I | re.M)
    return dict(zip(recipients, statuses))


def test_permanent_failure_sends_one_dsn_to_the_sender(ds):
    ds.cli("user", "add", "alice@mailwerk.test", "--password-stdin", input="pw\n")
    blocker = os.path.join(ds.dir, "mail", "mailwerk.test", "demo")
    os.makedirs(os.path.dirname(blocker))
    open(blocker, "w").close()
    ds.start()
    with smtplib.SMTP("127.0.0.1", ds.smtp_port) as m:
        m.ehlo("client.example")
        m.sendmail("alice@mailwerk.test", ["demo@mailwerk.test"], b"Subject: doomed\r\n\r\nbody text\r\n")
    assert wait_for(lambda: [e for e in ds.queue() if e["recipients"][0]["state"] == "deferred"])
    ds.cli("user", "del", "demo@mailwerk.test")  # gone before the retry: a permanent failure
    dsns = wait_for(lambda: dsn_for(ds))
    assert len(dsns) == 1, ds.log_text()[-2000:]
    dsn = dsns[0]
    assert dsn["From"].addresses[0].username == "MAILER-DAEMON"
    assert dsn.get_param("report-type") == "delivery-status"
    assert delivery_status(dsn) == {"demo@mailwerk.test": "5.1.1"}
    raw = open(maildir_files(ds, "alice")[0], "rb").read()
    assert raw.startswith(b"Return-Path: <>\r\n")  # RFC 5321 §4.5.5: sent with the null sender
    assert b"Subject: doomed" in raw and b"body text" not in raw  # headers only, never the body
    assert wait_for(lambda: ds.queue() == [])  # every recipient is done: failed and reported


def test_deferred_past_the_queue_lifetime_fails_with_a_dsn(tmp_path):
    s = Server(tmp_path, overrides=["delivery.retry_schedule=1s", "delivery.max_queue_lifetime=2s"])
    s.cli("user", "add", "alice@mailwerk.test", "--password-stdin", input="pw\n")
    s.cli("user", "quota", "demo@mailwerk.test", "1K")
    s.start()
    try:
        with smtplib.SMTP("127.0.0.1", s.smtp_port) as m:
            m.ehlo("client.example")
            m.sendmail("alice@mailwerk.test", ["demo@mailwerk.test"],
                       b"Subject: big\r\n\r\n" + (b"z" * 900 + b"\r\n") * 3)
        dsns = wait_for(lambda: dsn_for(s))
        assert dsns, s.log_text()[-2000:]
        assert delivery_status(dsns[0]) == {"demo@mailwerk.test": "4.2.2"}  # mailbox full, given up
        assert maildir_files(s, "demo") == []
        assert wait_for(lambda: s.queue() == [])
        # a bounce is never bounced: the null sender gets no DSN (nothing left in the queue)
    finally:
        s.stop()
