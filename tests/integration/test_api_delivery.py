"""The fate of API mail sent to other domains, through the DNS fixture and receiving MTAs on
127.0.0.x: delivered with the receiver's reply and MX host, delayed by a 4xx, bounced by a 5xx
with Resend's classification, and a hard bounce putting the address on the suppression list so
that the next send to it is suppressed, not attempted. The suppression list through the SDK
and the CLI."""
import os

from apifixture import Api, SENDER
from dnsfixture import dns_server  # noqa: F401 (a fixture)
from mtafixture import free_port_on, holds_for, mtas, wait_for  # noqa: F401

TIMEOUT = 20.0


def start(servers, dns, port, **keys):
    overrides = {"dns.resolver": dns.resolver, "delivery.remote_port": str(port), "delivery.retry_schedule": "1s",
                 "api.rate_limit": "none"}
    overrides.update(keys)
    s = servers.make("sender", overrides).start()
    return Api(s, s.cli("apikey", "create", "t", "--quiet").stdout.strip())


def mx(dns, domain, ip):
    dns.load({domain: {"MX": ["10 mx.%s." % domain]}, "mx." + domain: {"A": ip}})


def rcpt_events(email, i=0):
    return email["recipients"][i]["events"]


def test_delivered_event_has_the_reply_and_mx(dns_server, mtas, servers):
    port = free_port_on("127.0.0.2")
    mx(dns_server, "ok.test", "127.0.0.2")
    mta = mtas.start("127.0.0.2", port)
    api = start(servers, dns_server, port)
    id = api.send(to=["bob@ok.test"], subject="remote", text="hi")
    assert mta.wait_transactions(1, TIMEOUT)
    e = api.wait_event(id, "delivered")
    ev = rcpt_events(e)
    assert [x["type"] for x in ev] == ["queued", "sent", "delivered"], ev
    assert ev[-1]["reply"].startswith("250") and ev[-1]["mx"] == "mx.ok.test", ev
    # VERP: the return path names the email, so that a later bounce finds it
    assert mta.transactions[0].mail_from == "bounces+%s@bounces.mailwerk.test" % id
    assert mta.transactions[0].rcpts == ["bob@ok.test"]


def test_4xx_is_delivery_delayed_then_delivered(dns_server, mtas, servers):
    port = free_port_on("127.0.0.2")
    mx(dns_server, "slow.test", "127.0.0.2")
    mtas.start("127.0.0.2", port, data_replies=["451 4.3.0 try again later"])
    api = start(servers, dns_server, port)
    id = api.send(to=["bob@slow.test"], subject="later", text="hi")
    e = api.wait_event(id, "delivered", timeout=TIMEOUT)
    types = [x["type"] for x in rcpt_events(e)]
    assert types == ["queued", "sent", "delivery_delayed", "delivered"], types
    delayed = rcpt_events(e)[2]
    assert delayed["reply"].startswith("451") and delayed["status"] == "4.3.0", delayed


def test_5xx_bounce_classified_and_next_send_suppressed(dns_server, mtas, servers):
    port = free_port_on("127.0.0.2")
    mx(dns_server, "gone.test", "127.0.0.2")
    mta = mtas.start("127.0.0.2", port, rcpt_replies={"nobody@gone.test": "550 5.1.1 no such user here"})
    api = start(servers, dns_server, port)
    id = api.send(to=["nobody@gone.test"], subject="bounce me", text="x")
    e = api.wait_event(id, "bounced")
    ev = rcpt_events(e)[-1]
    assert ev["type"] == "bounced" and ev["bounce"] == {"type": "Permanent", "subType": "NoEmail",
                                                         "message": ev["reply"]}, ev
    assert "550" in ev["reply"] and ev["mx"] == "mx.gone.test"
    # no DSN to the sender: API mail is followed by its events
    assert holds_for(lambda: not any(b"Subject: Undelivered" in m["data"] for m in api.server.messages().values()), 1)

    (lst,) = api.sdk(("suppressions.list",))
    entries = lst["data"]["data"]
    assert [(x["email"], x["origin"], x["source_id"], x["domain"]) for x in entries] == \
        [("nobody@gone.test", "bounce", id, "mailwerk.test")], lst
    before = len(mta.transactions)
    again = api.send(to=["nobody@gone.test", "bob@gone.test"], subject="again", text="x")
    e2 = api.wait_event(again, "delivered")
    by = {r["email"]: r for r in e2["recipients"]}
    assert by["nobody@gone.test"]["state"] == "suppressed"
    assert by["nobody@gone.test"]["events"][0]["suppressed"]["type"] == "bounce"
    assert by["bob@gone.test"]["state"] == "delivered"
    assert wait_for(lambda: len(mta.transactions) == before + 1, TIMEOUT)
    assert mta.transactions[-1].rcpts == ["bob@gone.test"]
    # all recipients suppressed: recorded, nothing queued
    only = api.send(to=["nobody@gone.test"], subject="only", text="x")
    assert api.email(only)["last_event"] == "suppressed"
    assert holds_for(lambda: len(mta.transactions) == before + 1, 1.5)


def test_suppressions_through_the_sdk_and_cli(tmp_path):
    from conftest import Server
    s = Server(tmp_path, overrides=["api.rate_limit=none"]).start()
    try:
        api = Api(s, s.cli("apikey", "create", "t", "--quiet").stdout.strip())
        added, got, lst = api.sdk(("suppressions.add", {"email": "Blocked@Example.org"}),
                                  ("suppressions.get", "blocked@example.org"),
                                  ("suppressions.list", {"limit": 10}))
        assert added["error"] is None and added["data"]["object"] == "suppression", added
        assert got["data"]["id"] == added["data"]["id"] and got["data"]["email"] == "blocked@example.org"
        assert got["data"]["origin"] == "manual" and got["data"]["domain"] is None
        assert [x["id"] for x in lst["data"]["data"]] == [added["data"]["id"]]
        (batch,) = api.sdk(("suppressions.batch.add", {"emails": ["a@x.test", "b@x.test"]}))
        assert len(batch["data"]["data"]) == 2, batch
        out = s.cli("suppression", "list").stdout
        assert "a@x.test" in out and "blocked@example.org" in out
        listfile = os.path.join(str(tmp_path), "list.txt")
        with open(listfile, "w") as f:
            f.write("# imported\nc@x.test\n\nd@x.test\na@x.test\n")
        assert "2 added, 1 already" in s.cli("suppression", "import", listfile).stdout
        bad = os.path.join(str(tmp_path), "bad.txt")
        with open(bad, "w") as f:
            f.write("e@x.test\nnot an address\n")
        p = s.cli("suppression", "import", bad, check=False)
        assert p.returncode == 2 and "bad.txt:2" in p.stderr
        assert "e@x.test" not in s.cli("suppression", "list").stdout  # all or nothing
        (removed,) = api.sdk(("suppressions.remove", "blocked@example.org"))
        assert removed["data"]["deleted"] is True, removed
        (gone,) = api.sdk(("suppressions.get", "blocked@example.org"))
        assert gone["error"]["statusCode"] == 404
        assert "removed" in s.cli("suppression", "del", "c@x.test").stdout
        # a suppressed local address gets no mail
        s.cli("suppression", "add", SENDER, "--domain", "mailwerk.test")
        id = api.send(subject="to a suppressed one", text="x")
        assert api.email(id)["last_event"] == "suppressed"
    finally:
        s.stop()


def dsn(rcpt, status, diagnostic, original_headers):
    """An RFC 3464 DSN as a remote MTA sends it days later (RFC 6522 multipart/report)."""
    return ("From: MAILER-DAEMON@mx.far.test\r\nTo: postmaster\r\nSubject: Undelivered Mail\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status;\r\n"
            "\tboundary=\"b0undary\"\r\n\r\nThis is a MIME report.\r\n\r\n"
            "--b0undary\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\r\n"
            "--b0undary\r\nContent-Type: message/delivery-status\r\n\r\n"
            "Reporting-MTA: dns; mx.far.test\r\n\r\n"
            "Final-Recipient: rfc822; %s\r\nAction: failed\r\nStatus: %s\r\n"
            "Remote-MTA: dns; inbox.far.test\r\nDiagnostic-Code: smtp; %s\r\n\r\n"
            "--b0undary\r\nContent-Type: text/rfc822-headers\r\n\r\n%s\r\n"
            "--b0undary--\r\n" % (rcpt, status, diagnostic, original_headers)).encode()


def arf(rcpt, message_id):
    """An RFC 5965 abuse report as a mailbox provider's feedback loop sends it."""
    return ("From: fbl@provider.test\r\nTo: fbl@mailwerk.test\r\nSubject: complaint\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/report; report-type=feedback-report; boundary=\"arf\"\r\n\r\n"
            "--arf\r\nContent-Type: text/plain\r\n\r\nA complaint.\r\n"
            "--arf\r\nContent-Type: message/feedback-report\r\n\r\n"
            "Feedback-Type: abuse\r\nUser-Agent: ProviderFBL/1.0\r\nVersion: 1\r\n"
            "Original-Rcpt-To: <%s>\r\n\r\n"
            "--arf\r\nContent-Type: message/rfc822\r\n\r\n"
            "From: demo@mailwerk.test\r\nTo: %s\r\nMessage-ID: <%s>\r\nSubject: hi\r\n\r\nbody\r\n"
            "--arf--\r\n" % (rcpt, rcpt, message_id)).encode()


def smtp_in(server, rcpt, data):
    import smtplib
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=20) as c:
        c.sendmail("MAILER-DAEMON@mx.far.test" if b"delivery-status" in data else "fbl@provider.test", [rcpt], data)


def test_async_dsn_becomes_a_bounce_and_arf_a_complaint(dns_server, mtas, servers):
    port = free_port_on("127.0.0.2")
    mx(dns_server, "far.test", "127.0.0.2")
    mtas.start("127.0.0.2", port)
    api = start(servers, dns_server, port, **{"api.complaint_address": "fbl@mailwerk.test"})
    id = api.send(to=["alice@far.test", "carol@far.test"], subject="late bounce", text="x")
    e = api.wait_event(id, "delivered")
    # days later: the far side's inbox refuses alice, and says so to the return path
    smtp_in(api.server, "bounces+%s@bounces.mailwerk.test" % id,
            dsn("alice@far.test", "5.1.1", "550 5.1.1 mailbox gone", "Message-ID: <%s>" % e["message_id"]))
    e = api.wait_event(id, "bounced")
    by = {r["email"]: r for r in e["recipients"]}
    last = by["alice@far.test"]["events"][-1]
    assert last["type"] == "bounced" and last["bounce"]["type"] == "Permanent", last
    assert last["bounce"]["subType"] == "NoEmail" and last["mx"] == "inbox.far.test"
    assert "mailbox gone" in last["reply"]
    assert by["carol@far.test"]["state"] == "delivered"
    # carol complains through her provider's feedback loop
    smtp_in(api.server, "fbl@mailwerk.test", arf("carol@far.test", e["message_id"]))
    e = api.wait_event(id, "complained")
    assert {r["email"]: r["state"] for r in e["recipients"]} == {"alice@far.test": "bounced",
                                                                  "carol@far.test": "complained"}
    (lst,) = api.sdk(("suppressions.list",))
    assert sorted((x["email"], x["origin"]) for x in lst["data"]["data"]) == \
        [("alice@far.test", "bounce"), ("carol@far.test", "complaint")]
    # an auto-reply to the return path is taken and changes nothing
    smtp_in(api.server, "bounces+%s@bounces.mailwerk.test" % id,
            b"From: alice@far.test\r\nSubject: Out of office\r\n\r\nBack on Monday.\r\n")
    assert api.email(id)["last_event"] == "complained"
    # a made-up id: taken, nothing recorded; a return path of a domain not ours: refused
    smtp_in(api.server, "bounces+00000000-0000-4000-8000-000000000000@bounces.mailwerk.test",
            dsn("x@far.test", "5.1.1", "550 no", ""))
    import smtplib
    with smtplib.SMTP("127.0.0.1", api.server.smtp_port, timeout=20) as c:
        c.ehlo("far.test")
        c.mail("MAILER-DAEMON@mx.far.test")
        code, _ = c.rcpt("bounces+%s@bounces.other.test" % id)
        assert code == 554
        # reports travel alone
        assert c.rcpt("bounces+%s@bounces.mailwerk.test" % id)[0] == 250
        assert c.rcpt("demo@mailwerk.test")[0] == 452
