"""Outbound delivery to other domains' MX hosts (RFC 5321 §5.1 and §4.5.4): mailwerk resolves MX
records through the DNS fixture and delivers over SMTP to receiving MTAs (mtafixture.py, or a
second mailwerk) on 127.0.0.x, all on one port, which [delivery] remote_port points at. Retries,
DSNs (RFC 3464), opportunistic STARTTLS (RFC 3207), null MX (RFC 7505), throttling and delivery
again after a crash (at-least-once)."""
import re

from conftest import DOMAIN, HOST
from dnsfixture import dns_server  # noqa: F401 (a fixture)
from mtafixture import (delivered, free_port_on, holds_for, log_events, maildir, message, mtas,  # noqa: F401
                        mx_records, no_bounces, port_open, queue_rcpts, report_parts, reports, send_inbound,
                        start_sender, submit, wait_for, wait_queue_empty)

SENDER = "demo@" + DOMAIN
TIMEOUT = 20.0  # the longest wait for one outcome; every wait below is bounded by it or less


# ---- MX selection ----

def test_delivered_to_the_preferred_mx(dns_server, mtas, servers):
    port = free_port_on("127.0.0.2", "127.0.0.3")
    # the preferred host has the higher address: nothing here is "first" by accident
    mx_records(dns_server, "pref.test", (20, "mx2.pref.test", "127.0.0.2"), (10, "mx1.pref.test", "127.0.0.3"))
    backup = mtas.start("127.0.0.2", port)
    primary = mtas.start("127.0.0.3", port)
    s = start_sender(servers, dns_server, port)
    qid = submit(s, ["bob@pref.test"], message("pref-1"))
    tx = primary.wait_transactions(1, TIMEOUT)
    assert len(tx) == 1, s.log_text()[-3000:]
    tx = tx[0]
    assert tx.mail_from == SENDER and tx.rcpts == ["bob@pref.test"]
    assert tx.ehlo == HOST
    assert b"body of pref-1\r\n.leading dot\r\n" in tx.data  # dot-stuffed on the wire, unstuffed here
    ev = delivered(s, "bob@pref.test")
    assert ev["queue_id"] == qid
    assert ev["relay"] == "mx1.pref.test[127.0.0.3]:%d" % port
    assert ev["reply"].startswith("250"), ev
    assert backup.connections == [] and backup.transactions == []
    wait_queue_empty(s)
    no_bounces(s)


def test_refused_connection_goes_to_the_next_mx(dns_server, mtas, servers):
    port = free_port_on("127.0.0.2", "127.0.0.3")
    mx_records(dns_server, "refuse.test", (10, "mx1.refuse.test", "127.0.0.2"), (20, "mx2.refuse.test", "127.0.0.3"))
    second = mtas.start("127.0.0.3", port)
    assert not port_open("127.0.0.2", port)  # nobody listens on the first: connection refused
    s = start_sender(servers, dns_server, port)
    submit(s, ["bob@refuse.test"], message("refuse-1"))
    assert second.wait_transactions(1, TIMEOUT), s.log_text()[-3000:]
    ev = delivered(s, "bob@refuse.test")
    assert ev["relay"] == "mx2.refuse.test[127.0.0.3]:%d" % port
    assert len(second.accepted()) == 1
    wait_queue_empty(s)
    no_bounces(s)


def test_4xx_greeting_goes_to_the_next_mx(dns_server, mtas, servers):
    port = free_port_on("127.0.0.2", "127.0.0.3")
    mx_records(dns_server, "busy.test", (10, "mx1.busy.test", "127.0.0.2"), (20, "mx2.busy.test", "127.0.0.3"))
    busy = mtas.start("127.0.0.2", port, greeting="421 4.3.2 too busy, try another")
    second = mtas.start("127.0.0.3", port)
    s = start_sender(servers, dns_server, port)
    submit(s, ["bob@busy.test"], message("busy-1"))
    assert second.wait_transactions(1, TIMEOUT), s.log_text()[-3000:]
    ev = delivered(s, "bob@busy.test")
    assert ev["relay"] == "mx2.busy.test[127.0.0.3]:%d" % port
    assert busy.connections, "the preferred host was not tried first"
    assert busy.transactions == []
    wait_queue_empty(s)


def test_no_mx_means_the_domain_itself(dns_server, mtas, servers):
    port = free_port_on("127.0.0.2")
    dns_server.load({"implicit.test": {"A": "127.0.0.2"}})  # RFC 5321 §5.1: the implicit MX
    mta = mtas.start("127.0.0.2", port)
    s = start_sender(servers, dns_server, port)
    submit(s, ["bob@implicit.test"], message("implicit-1"))
    assert mta.wait_transactions(1, TIMEOUT), s.log_text()[-3000:]
    assert delivered(s, "bob@implicit.test")["relay"] == "implicit.test[127.0.0.2]:%d" % port
    assert ("implicit.test", "MX") in dns_server.asked()
    wait_queue_empty(s)


# ---- per-recipient outcomes ----

def test_4xx_is_retried_on_the_schedule(dns_server, mtas, servers):
    port = free_port_on("127.0.0.2")
    mx_records(dns_server, "later.test", (10, "mx.later.test", "127.0.0.2"))
    mta = mtas.start("127.0.0.2", port, data_replies=["451 4.3.0 try again later"])
    s = start_sender(servers, dns_server, port)
    qid = submit(s, ["bob@later.test"], message("later-1"))
    assert mta.wait_transactions(1, TIMEOUT), s.log_text()[-3000:]
    ev = delivered(s, "bob@later.test")
    assert ev["queue_id"] == qid
    tries = [t for t in mta.transactions if t.data is not None]
    assert [t.reply[:3] for t in tries] == ["451", "250"], tries
    assert tries[0].data == tries[1].data and b"body of later-1" in tries[1].data
    deferred = log_events(s, "deferred", rcpt="bob@later.test")
    assert deferred and "451" in deferred[0]["error"], s.log_text()[-3000:]
    wait_queue_empty(s)
    no_bounces(s)


def test_5xx_fails_the_recipient_with_one_dsn(dns_server, mtas, servers):
    port = free_port_on("127.0.0.2")
    mx_records(dns_server, "perm.test", (10, "mx.perm.test", "127.0.0.2"))
    refusal = "550 5.1.1 <nobody@perm.test>: no such user here"
    mta = mtas.start("127.0.0.2", port, rcpt_replies={"nobody@perm.test": refusal})
    s = start_sender(servers, dns_server, port)
    qid = submit(s, ["ok@perm.test", "nobody@perm.test"], message("perm-1"))
    txs = mta.wait_transactions(1, TIMEOUT)
    assert txs and txs[0].rcpts == ["ok@perm.test"], txs
    assert txs[0].rcpts_tried == ["ok@perm.test", "nobody@perm.test"]
    delivered(s, "ok@perm.test")
    dsns = wait_for(lambda: reports(s.dir, DOMAIN, "demo"), TIMEOUT)
    assert len(dsns) == 1, s.log_text()[-4000:]
    dsn = dsns[0]
    assert dsn.get_content_type() == "multipart/report"
    assert dsn.get_param("report-type") == "delivery-status"
    assert [a.addr_spec for a in dsn["To"].addresses] == [SENDER]
    assert dsn["From"].addresses[0].username == "MAILER-DAEMON"
    per_message, per_rcpt = report_parts(dsn)
    assert per_message["X-Mailwerk-Queue-ID"] in (None, qid)
    assert len(per_rcpt) == 1  # only the failed recipient; ok@ was delivered
    r = per_rcpt[0]
    assert r["Final-Recipient"] == "rfc822; nobody@perm.test"
    assert r["Action"] == "failed"
    assert r["Status"] == "5.1.1"
    assert str(r["Remote-MTA"]).startswith("dns; mx.perm.test"), r["Remote-MTA"]
    assert r["Diagnostic-Code"] == "smtp; " + refusal
    raw = maildir(s.dir, DOMAIN, "demo")[0]
    assert raw.startswith(b"Return-Path: <>\r\n")
    assert b"Subject: perm-1" in raw and b"body of perm-1" not in raw  # headers only
    failed = log_events(s, "failed", rcpt="nobody@perm.test")
    assert failed and "550" in failed[0]["error"], s.log_text()[-3000:]
    bounce = log_events(s, "bounce", queue_id=qid)
    assert len(bounce) == 1 and bounce[0]["to"] == SENDER
    assert len(mta.accepted()) == 1  # the failure is not retried
    wait_queue_empty(s)


def test_null_mx_fails_at_once_with_5_1_10(dns_server, mtas, servers):
    port = free_port_on("127.0.0.2")
    dns_server.load({"nullmx.test": {"MX": "0 .", "A": "127.0.0.2"}})
    mta = mtas.start("127.0.0.2", port)  # would take the mail if the null MX were ignored
    s = start_sender(servers, dns_server, port)
    qid = submit(s, ["bob@nullmx.test"], message("nullmx-1"))
    dsns = wait_for(lambda: reports(s.dir, DOMAIN, "demo"), TIMEOUT)
    assert len(dsns) == 1, s.log_text()[-4000:]
    _, per_rcpt = report_parts(dsns[0])
    assert [(r["Final-Recipient"], r["Action"], r["Status"]) for r in per_rcpt] == [
        ("rfc822; bob@nullmx.test", "failed", "5.1.10")]
    assert log_events(s, "failed", rcpt="bob@nullmx.test", queue_id=qid)
    assert log_events(s, "deferred", rcpt="bob@nullmx.test") == []  # at once, not after retries
    assert mta.connections == []
    wait_queue_empty(s)


def test_dns_servfail_defers_and_never_bounces(dns_server, mtas, servers):
    port = free_port_on("127.0.0.2")
    dns_server.servfail("broken.test")
    s = start_sender(servers, dns_server, port)
    qid = submit(s, ["bob@broken.test"], message("servfail-1"))
    # deferred, and tried again on the 1 s schedule: still deferred, never failed
    r = wait_for(lambda: [r for r in queue_rcpts(s).values()
                          if r["state"] == "deferred" and r["attempts"] >= 2], TIMEOUT)
    assert r, (s.queue(), s.log_text()[-3000:])
    r = r[0]
    assert r["address"] == "bob@broken.test"
    assert r["last_error"] and re.search(r"4\.4\.3|SERVFAIL|DNS", r["last_error"], re.I), r
    text = s.cli("queue", "list").stdout
    assert qid in text and "deferred" in text, text
    assert log_events(s, "deferred", rcpt="bob@broken.test")
    assert log_events(s, "failed", rcpt="bob@broken.test") == []
    no_bounces(s)
    assert ("broken.test", "MX") in dns_server.asked()
    assert [e["id"] for e in s.queue()] == [qid]


def test_queue_list_shows_state_attempts_and_last_error(dns_server, mtas, servers):
    port = free_port_on("127.0.0.2")
    mx_records(dns_server, "slow.test", (10, "mx.slow.test", "127.0.0.2"))
    mta = mtas.start("127.0.0.2", port, rcpt_replies={"busy@slow.test": "450 4.2.1 mailbox busy, try later"})
    s = start_sender(servers, dns_server, port, **{"delivery.retry_schedule": "1h"})
    qid = submit(s, ["busy@slow.test", "ok@slow.test"], message("slow-1"))
    r = wait_for(lambda: [r for r in queue_rcpts(s).values() if r["state"] == "deferred"], TIMEOUT)
    assert r, (s.queue(), s.log_text()[-3000:])
    entry = s.queue()[0]
    assert entry["id"] == qid and entry["sender"] == SENDER
    states = {r["address"]: r for r in entry["recipients"]}
    busy = states["busy@slow.test"]
    assert busy["state"] == "deferred" and busy["attempts"] == 1, busy
    assert "450 4.2.1 mailbox busy" in busy["last_error"], busy
    assert busy["next_attempt"]
    assert wait_for(lambda: queue_rcpts(s)["ok@slow.test"]["state"] == "delivered", TIMEOUT), s.queue()
    assert [t.rcpts for t in mta.accepted()] == [["ok@slow.test"]]
    text = s.cli("queue", "list").stdout
    assert qid in text and "deferred" in text and "delivered" in text, text
    show = s.cli("queue", "show", qid).stdout
    assert "busy@slow.test" in show and "450 4.2.1 mailbox busy" in show, show
    ev = log_events(s, "deferred", rcpt="busy@slow.test")
    assert ev and "450 4.2.1" in ev[0]["error"], s.log_text()[-3000:]
    no_bounces(s)


def test_delay_warning_once_while_still_retrying(dns_server, mtas, servers):
    port = free_port_on("127.0.0.2")
    mx_records(dns_server, "delay.test", (10, "mx.delay.test", "127.0.0.2"))
    mtas.start("127.0.0.2", port, rcpt_replies={"bob@delay.test": "450 4.2.1 mailbox busy, try later"})
    s = start_sender(servers, dns_server, port, **{"delivery.delay_warning_time": "2s"})
    qid = submit(s, ["bob@delay.test"], message("delay-1"))
    warnings = wait_for(lambda: reports(s.dir, DOMAIN, "demo"), TIMEOUT)
    assert len(warnings) == 1, s.log_text()[-3000:]
    _, per_rcpt = report_parts(warnings[0])
    assert [(r["Final-Recipient"], r["Action"]) for r in per_rcpt] == [("rfc822; bob@delay.test", "delayed")]
    assert str(per_rcpt[0]["Status"]).startswith("4."), per_rcpt[0]["Status"]
    # still in the queue and retried, and warned only once
    attempts = queue_rcpts(s)["bob@delay.test"]["attempts"]
    assert wait_for(lambda: queue_rcpts(s)["bob@delay.test"]["attempts"] >= attempts + 2, TIMEOUT), s.queue()
    assert len(reports(s.dir, DOMAIN, "demo")) == 1
    assert [e["id"] for e in s.queue()] == [qid]
    assert log_events(s, "failed") == []


def test_connections_per_domain_are_limited(dns_server, mtas, servers):
    port = free_port_on("127.0.0.2")
    mx_records(dns_server, "limit.test", (10, "mx.limit.test", "127.0.0.2"))
    mta = mtas.start("127.0.0.2", port, data_delay=0.3)  # slow enough that messages overlap
    s = start_sender(servers, dns_server, port, **{"delivery.max_connections_per_domain": "1"})
    for i in range(4):
        submit(s, ["bob@limit.test"], message("limit-%d" % i))
    assert len(mta.wait_transactions(4, TIMEOUT)) == 4, s.log_text()[-3000:]
    assert mta.max_open == 1, mta.connections
    wait_queue_empty(s)


# ---- TLS ----

def test_receiver_without_starttls_gets_plain_text(dns_server, mtas, servers):
    port = free_port_on("127.0.0.2")
    mx_records(dns_server, "plain.test", (10, "mx.plain.test", "127.0.0.2"))
    mta = mtas.start("127.0.0.2", port)
    s = start_sender(servers, dns_server, port)
    submit(s, ["bob@plain.test"], message("plain-1"))
    tx = mta.wait_transactions(1, TIMEOUT)
    assert tx, s.log_text()[-3000:]
    assert tx[0].tls is None and not tx[0].conn.starttls
    assert delivered(s, "bob@plain.test")["tls"] == "none"
    wait_queue_empty(s)


def test_receiver_with_starttls_gets_tls(dns_server, mtas, servers):
    port = free_port_on("127.0.0.2")
    mx_records(dns_server, "tls.test", (10, "mx.tls.test", "127.0.0.2"))
    mta = mtas.start("127.0.0.2", port, starttls=True)  # self-signed: opportunistic TLS takes it
    s = start_sender(servers, dns_server, port)
    submit(s, ["bob@tls.test"], message("tls-1"))
    tx = mta.wait_transactions(1, TIMEOUT)
    assert tx, s.log_text()[-3000:]
    assert tx[0].tls is not None and tx[0].tls.startswith("TLSv1."), tx
    assert tx[0].ehlo == HOST  # EHLO again after the handshake (RFC 3207 §4.2)
    assert delivered(s, "bob@tls.test")["tls"] == tx[0].tls
    wait_queue_empty(s)


def test_broken_starttls_is_retried_in_plain_text(dns_server, mtas, servers):
    port = free_port_on("127.0.0.2")
    mx_records(dns_server, "badtls.test", (10, "mx.badtls.test", "127.0.0.2"))
    mta = mtas.start("127.0.0.2", port, broken_tls=True)  # 220 to STARTTLS, then no TLS at all
    s = start_sender(servers, dns_server, port)  # delivery.tls defaults to opportunistic
    submit(s, ["bob@badtls.test"], message("badtls-1"))
    tx = mta.wait_transactions(1, TIMEOUT)
    assert tx, s.log_text()[-3000:]
    assert tx[0].tls is None and not tx[0].conn.starttls
    assert b"body of badtls-1" in tx[0].data
    conns = mta.connections
    assert conns[0].starttls and conns[0] is not tx[0].conn, conns
    assert delivered(s, "bob@badtls.test")["tls"] == "none"
    assert len(mta.accepted()) == 1
    wait_queue_empty(s)
    no_bounces(s)


def test_tls_required_without_starttls_defers_and_sends_nothing(dns_server, mtas, servers):
    port = free_port_on("127.0.0.2")
    mx_records(dns_server, "notls.test", (10, "mx.notls.test", "127.0.0.2"))
    mta = mtas.start("127.0.0.2", port)  # offers no STARTTLS
    s = start_sender(servers, dns_server, port, **{"delivery.tls": "required"})
    submit(s, ["bob@notls.test"], message("notls-1"))
    r = wait_for(lambda: [r for r in queue_rcpts(s).values() if r["state"] == "deferred"], TIMEOUT)
    assert r and r[0]["last_error"], (s.queue(), s.log_text()[-3000:])
    assert mta.connections  # it did connect, saw no STARTTLS ...
    assert mta.transactions == []  # ... and sent nothing in the clear
    no_bounces(s)


# ---- envelopes ----

def test_two_domains_are_two_transactions(dns_server, mtas, servers):
    port = free_port_on("127.0.0.2")
    # both domains on one host: the split is by domain, not by host
    dns_server.load({"one.test": {"MX": "10 mx.shared.test."}, "two.test": {"MX": "10 mx.shared.test."},
                     "mx.shared.test": {"A": "127.0.0.2"}})
    mta = mtas.start("127.0.0.2", port)
    s = start_sender(servers, dns_server, port)
    submit(s, ["a@one.test", "c@two.test", "b@one.test"], message("split-1"))
    txs = mta.wait_transactions(2, TIMEOUT)
    assert len(txs) == 2, (txs, s.log_text()[-3000:])
    assert sorted(sorted(t.rcpts) for t in txs) == [["a@one.test", "b@one.test"], ["c@two.test"]]
    for t in txs:
        assert t.mail_from == SENDER and b"body of split-1" in t.data
    for rcpt in ("a@one.test", "b@one.test", "c@two.test"):
        delivered(s, rcpt)
    wait_queue_empty(s)
    assert len(mta.accepted()) == 2


def test_mailwerk_as_the_receiving_mta(dns_server, servers):
    port = free_port_on("127.0.0.4")
    rx = servers.make("receiver", {"server.hostname": "mx.remote.test"}, listen={"smtp": ("127.0.0.4", port)})
    rx.cli("domain", "add", "remote.test")
    rx.cli("user", "add", "bob@remote.test", "--password-stdin", input="bob-password\n")
    rx.start()
    mx_records(dns_server, "remote.test", (10, "mx.remote.test", "127.0.0.4"))
    s = start_sender(servers, dns_server, port)
    qid = submit(s, ["bob@remote.test"], message("peer-1"))
    got = wait_for(lambda: maildir(rx.dir, "remote.test", "bob"), TIMEOUT)
    assert len(got) == 1, (s.log_text()[-3000:], rx.log_text()[-3000:])
    assert got[0].startswith(b"Return-Path: <%s>\r\nDelivered-To: bob@remote.test\r\n" % SENDER.encode())
    assert b"Subject: peer-1" in got[0] and got[0].endswith(b"body of peer-1\r\n.leading dot\r\n")
    ev = delivered(s, "bob@remote.test")
    assert ev["queue_id"] == qid
    assert ev["relay"] == "mx.remote.test[127.0.0.4]:%d" % port
    assert ev["tls"].startswith("TLSv1."), ev  # mailwerk offers STARTTLS on its MX listener
    accepted = log_events(rx, "accepted")
    assert len(accepted) == 1 and accepted[0]["from"] == "<%s>" % SENDER and accepted[0]["tls"] == ev["tls"]
    wait_queue_empty(s)
    wait_queue_empty(rx)


# ---- durability and pacing ----

def test_killed_during_delivery_delivers_again_after_restart(dns_server, mtas, servers):
    port = free_port_on("127.0.0.2")
    mx_records(dns_server, "crash.test", (10, "mx.crash.test", "127.0.0.2"))
    mta = mtas.start("127.0.0.2", port, stall=1)  # takes the content, never answers the first "."
    s = start_sender(servers, dns_server, port)
    qid = submit(s, ["bob@crash.test"], message("crash-1"))
    stalled = mta.wait_stalled(TIMEOUT)
    assert stalled is not None and b"body of crash-1" in (stalled.data or b""), s.log_text()[-3000:]
    s.kill()  # SIGKILL while the recipient's outcome is unknown
    mta.release()
    assert not log_events(s, "delivered", rcpt="bob@crash.test")
    s.start()
    txs = wait_for(lambda: [t for t in mta.accepted() if b"body of crash-1" in t.data], TIMEOUT)
    assert txs, s.log_text()[-3000:]
    assert txs[0].rcpts == ["bob@crash.test"] and txs[0].mail_from == SENDER
    assert delivered(s, "bob@crash.test")["queue_id"] == qid
    wait_queue_empty(s)
    no_bounces(s)


def test_throttle_holds_the_rest_without_refusing(dns_server, mtas, servers):
    port = free_port_on("127.0.0.2")
    mx_records(dns_server, "paced.test", (10, "mx.paced.test", "127.0.0.2"))
    mta = mtas.start("127.0.0.2", port)
    s = start_sender(servers, dns_server, port, **{"throttle.paced.test": "2/m"})
    ids = [submit(s, ["bob@paced.test"], message("paced-%d" % i)) for i in range(5)]  # all accepted
    assert len(set(ids)) == 5
    assert mta.wait_transactions(1, TIMEOUT), s.log_text()[-3000:]
    # the burst goes at once; then nothing more for a while (the next token is 30 s away), over
    # several rounds of the 1 s retry schedule
    assert holds_for(lambda: len(mta.accepted()) <= 2, 4.0), mta.accepted()
    sent = len(mta.accepted())
    assert 1 <= sent <= 2
    queued = s.queue()
    assert len(queued) == 5 - sent, queued
    for e in queued:
        assert [r["state"] for r in e["recipients"]] in (["pending"], ["deferred"]), e
    assert log_events(s, "failed") == []
    no_bounces(s)


def test_no_dsn_about_a_dsn(dns_server, mtas, servers):
    """A message from <> that fails just fails; and a DSN that itself fails is not reported."""
    port = free_port_on("127.0.0.2")
    dns_server.load({"bounce.test": {"MX": "10 mx.bounce.test."}, "origin.test": {"MX": "10 mx.bounce.test."},
                     "mx.bounce.test": {"A": "127.0.0.2"}})
    mta = mtas.start("127.0.0.2", port, rcpt_replies={"far@bounce.test": "550 5.1.1 gone",
                                                      "sender@origin.test": "550 5.1.1 gone too"})
    s = servers.make("sender", {"dns.resolver": dns_server.resolver, "delivery.remote_port": str(port),
                                "delivery.retry_schedule": "1s"})
    s.cli("alias", "add", "fwd@" + DOMAIN, "far@bounce.test")
    s.start()
    # 1: from <>, forwarded to a remote address that refuses it: failed, no DSN
    q1 = send_inbound(s, "", ["fwd@" + DOMAIN], message("null-1"))
    assert wait_for(lambda: log_events(s, "failed", queue_id=q1), TIMEOUT), s.log_text()[-3000:]
    assert log_events(s, "bounce", queue_id=q1) == []
    # 2: from a remote sender: its failure makes a DSN, which goes to origin.test and fails too
    q2 = send_inbound(s, "sender@origin.test", ["fwd@" + DOMAIN], message("null-2"))
    bounce = wait_for(lambda: log_events(s, "bounce", queue_id=q2), TIMEOUT)
    assert len(bounce) == 1 and bounce[0]["to"] == "sender@origin.test", s.log_text()[-3000:]
    dsn_id = bounce[0]["dsn_id"]
    assert wait_for(lambda: log_events(s, "failed", queue_id=dsn_id, rcpt="sender@origin.test"), TIMEOUT), \
        s.log_text()[-3000:]
    wait_queue_empty(s)  # nothing left that could still produce a DSN
    assert [b["queue_id"] for b in log_events(s, "bounce")] == [q2]
    dsn_tries = [t for t in mta.transactions if "sender@origin.test" in t.rcpts_tried]
    assert dsn_tries and all(t.mail_from == "" for t in dsn_tries)  # RFC 5321 §4.5.5: DSNs from <>
    assert mta.accepted() == []
