"""Inbound mail for applications end to end: routes made over the API (curl) and the CLI, mail sent
by smtplib to the MX listener, the email.received webhook checked by the standardwebhooks package
(tests/node/verify.mjs), and the received email read back through the official Resend SDK's
emails.receiving.* calls, its signed download URLs fetched by curl without a key. Also: 8-bit
ISO-8859-1 mail decoded to UTF-8, an endpoint that is down (the mail is kept and the webhook
retried), a route that keeps the mailbox and one that replaces it, and SPF/DKIM/DMARC results
kept with the mail when the MX checks them. Every wait is bounded."""
import base64
import email
import email.policy
import json
import smtplib
import subprocess
from email.message import EmailMessage

import pytest

from apifixture import SENDER, Api, delivered_message, parse
from conftest import DOMAIN, Server
from dnsfixture import DNSServer
from mtafixture import wait_for
from test_webhooks import Receiver, assert_verified, create

RETRY = "webhooks.retry_schedule=1s,1s,1s"
APP = "app@" + DOMAIN


@pytest.fixture(scope="module")
def dns():
    # the sender's domain passes SPF from loopback and publishes a DMARC policy; the server's own
    # domain is there so that nothing waits for an answer
    d = DNSServer({
        "sender.test": {"TXT": "v=spf1 ip4:127.0.0.0/8 -all", "MX": "10 mx.sender.test."},
        "_dmarc.sender.test": {"TXT": "v=DMARC1; p=none"},
        "mx.sender.test": {"A": "127.0.0.1"},
    }, ttl=0).start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def api(tmp_path_factory, dns):
    s = Server(tmp_path_factory.mktemp("inbound"),
               overrides=["api.rate_limit=none", RETRY, "dns.resolver=" + dns.resolver, "smtp.auth_checks=yes"])
    s.overrides.append("api.public_url=http://127.0.0.1:%d" % s.http_port)  # where the download URLs point
    with open(s.conf, "a") as f:
        f.write("\n[webhooks]\nallow_private = yes\n")
    s.start()
    a = Api(s, s.cli("apikey", "create", "tests", "--quiet").stdout.strip())
    r = a.curl("POST", "/inbound/routes", body={"address": APP})
    assert r.status == 201, r
    yield a
    s.stop()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def smtp_send(server, msg, rcpts, sender="alice@sender.test"):
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30) as c:
        c.ehlo("mx.sender.test")
        data = msg if isinstance(msg, bytes) else msg.as_bytes(policy=email.policy.SMTP)
        refused = c.sendmail(sender, rcpts, data)
        assert refused == {}


def received_events(receiver, subject):
    found = []
    with receiver.lock:
        for r in receiver.requests:
            p = json.loads(r["body"])
            if p["type"] == "email.received" and p["data"]["subject"] == subject:
                found.append((r, p))
    return found


def curl_get(url):
    p = subprocess.run(["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "--max-time", "30", url],
                       capture_output=True, timeout=60)
    body, _, code = p.stdout.rpartition(b"\n")
    return int(code), body


def a_message(subject, to=APP):
    m = EmailMessage()
    m["From"] = "Alice <alice@sender.test>"
    m["To"] = to
    m["Cc"] = "Bob <bob@sender.test>"
    m["Subject"] = subject
    m["Message-ID"] = "<%s@sender.test>" % subject.replace(" ", "-")
    m.set_content("Hello in text.\n")
    m.add_alternative('<p>Hello <img src="cid:logo@sender.test"> in html.</p>', subtype="html")
    m.get_payload()[1].add_related(b"\x89PNG\r\n\x1a\nfake", maintype="image", subtype="png", cid="<logo@sender.test>")
    m.add_attachment(b"col1,col2\n1,2\n", maintype="text", subtype="csv", filename="report.csv")
    return m


def test_routed_mail_arrives_as_a_signed_webhook_and_reads_back_through_the_sdk(api, receiver):
    wh, secret = create(api, receiver.url, ["email.received"])
    msg = a_message("routed one")
    smtp_send(api.server, msg, [APP])
    wait_for(lambda: received_events(receiver, "routed one"), timeout=20)
    (req, event), = received_events(receiver, "routed one")
    assert_verified(secret, [req])
    d = event["data"]
    assert d["from"] == "Alice <alice@sender.test>"
    assert d["to"] == [APP] and d["cc"] == ["Bob <bob@sender.test>"] and d["bcc"] == []
    assert d["received_for"] == [APP]
    assert d["message_id"] == "<routed-one@sender.test>"
    names = sorted((a["content_type"], a["filename"], a["content_disposition"]) for a in d["attachments"])
    assert names == [("image/png", None, "inline"), ("text/csv", "report.csv", "attachment")], d["attachments"]
    # the MX's checks are kept with it: SPF passes from loopback, nothing signed it
    assert d["authentication"] == {"spf": "pass", "dkim": "none", "dmarc": "pass"}, d["authentication"]
    rid = d["email_id"]

    got, listed, atts = api.sdk(("emails.receiving.get", rid), ("emails.receiving.list", {"limit": 10}),
                                ("emails.receiving.attachments.list", {"emailId": rid}))
    assert got["error"] is None, got
    e = got["data"]
    assert e["object"] == "email" and e["id"] == rid and e["subject"] == "routed one"
    assert e["text"] == "Hello in text.\n"
    # Resend's default: the inline image is in the html as a data: URI
    assert "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode() in e["html"]
    assert e["headers"]["Message-ID"] == "<routed-one@sender.test>"
    assert e["headers"]["Delivered-To"] == APP
    assert listed["error"] is None and rid in [x["id"] for x in listed["data"]["data"]]
    assert "html" not in listed["data"]["data"][0]
    (cid_form,) = api.sdk(("emails.receiving.get", rid, {"html_format": "cid"}))
    assert 'src="cid:logo@sender.test"' in cid_form["data"]["html"]

    # the raw message, by its signed URL and without a key
    code, raw = curl_get(e["raw"]["download_url"])
    assert code == 200
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"] == "routed one" and parsed["Return-Path"] == "<alice@sender.test>"
    # a URL whose signature is changed, or that names another file, gets nothing
    assert curl_get(e["raw"]["download_url"][:-2] + "AA")[0] == 403
    assert curl_get(e["raw"]["download_url"].replace("/raw?", "/attachments/x/content?"))[0] == 403

    assert atts["error"] is None, atts
    csv = [a for a in atts["data"]["data"] if a.get("filename") == "report.csv"][0]
    (one,) = api.sdk(("emails.receiving.attachments.get", {"emailId": rid, "id": csv["id"]}))
    assert one["error"] is None and one["data"]["object"] == "attachment" and one["data"]["size"] == 14
    code, body = curl_get(one["data"]["download_url"])
    assert code == 200 and body == b"col1,col2\n1,2\n"

    # the SDK's forward runs in the client: it reads the email and its raw message by the signed
    # URL, then sends it on through POST /emails
    (fwd,) = api.sdk(("emails.receiving.forward", {"emailId": rid, "to": SENDER, "from": SENDER}))
    assert fwd["error"] is None, fwd
    sent = api.email(fwd["data"]["id"])
    assert sent["subject"] == "routed one" and sent["to"] == [SENDER]

    (missing,) = api.sdk(("emails.receiving.get", "00000000-0000-4000-8000-000000000000"))
    assert missing["error"]["statusCode"] == 404


def test_a_reply_through_the_api_threads(api):
    raw = ("From: Alice <alice@sender.test>\r\nTo: %s\r\nSubject: question\r\n"
           "Message-ID: <q2@sender.test>\r\nIn-Reply-To: <q1@sender.test>\r\n"
           "References: <q0@sender.test> <q1@sender.test>\r\n\r\nA question.\r\n" % APP).encode()
    smtp_send(api.server, raw, [APP])

    def find():
        (r,) = api.sdk(("emails.receiving.list", {"limit": 20}))
        return [x for x in r["data"]["data"] if x["message_id"] == "<q2@sender.test>"]
    (item,) = wait_for(find, timeout=20)
    assert item["in_reply_to"] == "<q1@sender.test>"
    # the reply names the received email by its id, in the headers the SDK passes on: the server
    # sets both fields from it
    (sent,) = api.sdk(("emails.send", {"from": "Demo <%s>" % SENDER, "to": [SENDER], "subject": "Re: question",
                                       "text": "An answer.", "headers": {"In-Reply-To": item["id"]}}))
    assert sent["error"] is None, sent
    got = parse(delivered_message(api.server, api.email(sent["data"]["id"])["message_id"]))
    assert got["In-Reply-To"] == "<q2@sender.test>"
    assert got["References"] == "<q0@sender.test> <q1@sender.test> <q2@sender.test>"
    # over HTTP, mailwerk's own fields: by id, and by Message-ID with the references given
    r = api.curl("POST", "/emails", body={"from": SENDER, "to": SENDER, "subject": "Re: q", "text": "a",
                                          "in_reply_to": item["id"]})
    assert r.status == 200, r
    got = parse(delivered_message(api.server, api.email(r.json["id"])["message_id"]))
    assert got["In-Reply-To"] == "<q2@sender.test>" and got["References"].endswith("<q2@sender.test>")
    r = api.curl("POST", "/emails", body={"from": SENDER, "to": SENDER, "subject": "Re: x", "text": "y",
                                          "in_reply_to": "<p@x.test>", "references": ["<o@x.test>", "<p@x.test>"]})
    assert r.status == 200, r
    got = parse(delivered_message(api.server, api.email(r.json["id"])["message_id"]))
    assert got["In-Reply-To"] == "<p@x.test>" and got["References"] == "<o@x.test> <p@x.test>"
    for bad in ({"in_reply_to": "not a message id"}, {"in_reply_to": "00000000-0000-4000-8000-000000000000"},
                {"references": ["<a@b.test>", "nope"]},
                {"in_reply_to": "<p@x.test>", "headers": {"In-Reply-To": "<p@x.test>"}}):
        r = api.curl("POST", "/emails", body=dict({"from": SENDER, "to": SENDER, "subject": "s", "text": "t"}, **bad))
        assert r.status == 422, (bad, r)


def test_iso_8859_1_mail_comes_back_as_utf8(api):
    raw = ("From: =?iso-8859-1?q?J=FCrgen?= <juergen@sender.test>\r\n"
           "To: %s\r\n"
           "Subject: =?iso-8859-1?q?Gr=FC=DFe_aus_K=F6ln?=\r\n"
           "Message-ID: <latin1@sender.test>\r\n"
           "MIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=iso-8859-1\r\n"
           "Content-Transfer-Encoding: 8bit\r\n"
           "\r\n" % APP).encode("ascii") + "Grüße aus Köln, schön!\r\n".encode("iso-8859-1")
    smtp_send(api.server, raw, [APP])

    def find():
        (r,) = api.sdk(("emails.receiving.list", {"limit": 20}))
        return [x for x in r["data"]["data"] if x["message_id"] == "<latin1@sender.test>"]
    (item,) = wait_for(find, timeout=20)
    assert item["subject"] == "Grüße aus Köln"
    assert item["from"] == "Jürgen <juergen@sender.test>"
    (got,) = api.sdk(("emails.receiving.get", item["id"]))
    assert got["data"]["text"] == "Grüße aus Köln, schön!\n"


def test_an_endpoint_that_is_down_gets_the_mail_later(api, receiver):
    receiver.fail(2)
    wh, secret = create(api, receiver.url, ["email.received"])
    smtp_send(api.server, a_message("while down"), [APP])
    # kept at once, whatever the endpoint says
    def listed():
        (r,) = api.sdk(("emails.receiving.list", {"limit": 20}))
        return [x for x in r["data"]["data"] if x["subject"] == "while down"]
    wait_for(listed, timeout=20)
    wait_for(lambda: len(received_events(receiver, "while down")) == 3, timeout=30)
    tries = received_events(receiver, "while down")
    assert len({r["headers"]["webhook-id"] for r, _ in tries}) == 1  # the same message, retried
    assert_verified(secret, [tries[-1][0]])


def test_routes_replace_or_keep_the_mailbox(api):
    s = api.server
    s.cli("user", "add", "keep@" + DOMAIN, "--password-stdin", input="pw-keep-1234\n")
    s.cli("user", "add", "only@" + DOMAIN, "--password-stdin", input="pw-only-1234\n")
    r = api.curl("POST", "/inbound/routes", body={"address": "keep@" + DOMAIN, "mailbox": True})
    assert r.status == 201 and r.json["mailbox"] is True, r
    s.cli("route", "add", "only@" + DOMAIN)
    smtp_send(s, a_message("to both", to="keep@%s, only@%s" % (DOMAIN, DOMAIN)), ["keep@" + DOMAIN, "only@" + DOMAIN])

    def received():
        (r,) = api.sdk(("emails.receiving.list", {"limit": 50}))
        return sorted(x["received_for"][0] for x in r["data"]["data"] if x["subject"] == "to both")
    wait_for(lambda: received() == ["keep@" + DOMAIN, "only@" + DOMAIN], timeout=20)

    def boxes():
        return sorted(r for m in s.messages().values() if b"Subject: to both" in m["data"] for r in m["rcpts"])
    wait_for(lambda: boxes() == ["keep@" + DOMAIN], timeout=20)
    assert boxes() == ["keep@" + DOMAIN]  # only@ had its mail taken by the route


def test_a_domain_route_takes_every_address_nobody_else_has(api):
    s = api.server
    s.cli("domain", "add", "reply." + DOMAIN)
    with smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=30) as c:
        c.ehlo("mx.sender.test")
        c.mail("alice@sender.test")
        assert c.rcpt("anything@reply." + DOMAIN)[0] == 550  # no route yet: nobody
    r = api.curl("POST", "/inbound/routes", body={"address": "*@reply." + DOMAIN})
    assert r.status == 201 and r.json["address"] == "*@reply." + DOMAIN, r
    smtp_send(s, a_message("domain wide", to="t-1234@reply." + DOMAIN), ["t-1234@reply." + DOMAIN])

    def found():
        (r,) = api.sdk(("emails.receiving.list", {"limit": 50}))
        return [x for x in r["data"]["data"] if x["subject"] == "domain wide"]
    (item,) = wait_for(found, timeout=20)
    assert item["received_for"] == ["t-1234@reply." + DOMAIN]
    # the domain's receiving switched off: the route stops, so the address has nobody again
    (d,) = api.sdk(("domains.get", "reply." + DOMAIN))
    assert api.curl("PATCH", "/domains/" + d["data"]["id"], body={"capabilities": {"receiving": "disabled"}}).status == 200
    with smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=30) as c:
        c.ehlo("mx.sender.test")
        c.mail("alice@sender.test")
        assert c.rcpt("other@reply." + DOMAIN)[0] == 550


def test_routes_crud_and_validation(api):
    r = api.curl("POST", "/inbound/routes", body={"address": "crud@" + DOMAIN})
    assert r.status == 201 and r.json["object"] == "inbound_route" and r.json["mailbox"] is False, r
    rid = r.json["id"]
    assert api.curl("POST", "/inbound/routes", body={"address": "crud@" + DOMAIN.upper()}).status == 409
    assert api.curl("POST", "/inbound/routes", body={"address": "crud@" + DOMAIN}).status == 409
    assert api.curl("POST", "/inbound/routes", body={"address": "x@not-local.test"}).status == 422
    assert api.curl("POST", "/inbound/routes", body={"address": "not an address"}).status == 422
    assert api.curl("POST", "/inbound/routes", body={"address": "a@" + DOMAIN, "mailbox": "yes"}).status == 422
    assert api.curl("POST", "/inbound/routes", body={}).status == 422
    assert api.curl("GET", "/inbound/routes/" + rid).json["address"] == "crud@" + DOMAIN
    assert api.curl("PATCH", "/inbound/routes/" + rid, body={"mailbox": True}).json["mailbox"] is True
    listed = api.curl("GET", "/inbound/routes?limit=100").json
    assert listed["object"] == "list" and rid in [x["id"] for x in listed["data"]]
    assert api.curl("DELETE", "/inbound/routes/" + rid).json == {"object": "inbound_route", "id": rid, "deleted": True}
    assert api.curl("GET", "/inbound/routes/" + rid).status == 404
    # the CLI sees the same store
    out = api.server.cli("route", "add", "cli@" + DOMAIN, "--mailbox").stdout
    assert "cli@" + DOMAIN in out
    assert "cli@" + DOMAIN in api.server.cli("route", "list").stdout
    api.server.cli("route", "set", "cli@" + DOMAIN, "--no-mailbox")
    assert api.curl("GET", "/inbound/routes/cli@" + DOMAIN).json["mailbox"] is False
    api.server.cli("route", "del", "cli@" + DOMAIN)
    assert "cli@" not in api.server.cli("route", "list").stdout
    p = api.server.cli("route", "add", "x@elsewhere.test", check=False)
    assert p.returncode != 0 and "not local" in p.stderr


def test_kill9_after_acceptance_loses_nothing(tmp_path, receiver):
    s = Server(tmp_path, overrides=["api.rate_limit=none", RETRY])
    with open(s.conf, "a") as f:
        f.write("\n[webhooks]\nallow_private = yes\n")
    s.start()
    a = Api(s, s.cli("apikey", "create", "tests", "--quiet").stdout.strip())
    s.cli("route", "add", APP)
    receiver.hang()  # the post is in flight when the server dies
    create(a, receiver.url, ["email.received"])
    smtp_send(s, a_message("before the kill"), [APP])
    wait_for(lambda: received_events(receiver, "before the kill"), timeout=20)
    s.kill()
    receiver.release()
    s.start()
    wait_for(lambda: len(received_events(receiver, "before the kill")) >= 2, timeout=30)
    (r,) = a.sdk(("emails.receiving.list", {}))
    assert [x["subject"] for x in r["data"]["data"]].count("before the kill") == 1
    s.stop()


def test_a_full_disk_defers_the_copy_and_loses_nothing(tmp_path, receiver):
    """The copy of a routed message cannot be written while the disk is full: the delivery is
    deferred (the message stays queued), and once there is room it is stored and announced once."""
    from test_durability import small_disk
    from test_reload import sighup_and_wait
    with small_disk(tmp_path, "24m") as (disk, started):
        s = Server(disk, overrides=["api.rate_limit=none", RETRY, "server.min_free_space=0",
                                    "delivery.retry_schedule=1s"])
        with open(s.conf, "a") as f:
            f.write("\n[webhooks]\nallow_private = yes\n\n[delivery]\nhold = yes\n")
        started.append(s.start())
        a = Api(s, s.cli("apikey", "create", "tests", "--quiet").stdout.strip())
        s.cli("route", "add", APP)
        create(a, receiver.url, ["email.received"])
        smtp_send(s, a_message("on a full disk"), [APP])  # queued, held
        filler = disk / "filler"
        subprocess.run(["dd", "if=/dev/zero", "of=%s" % filler, "bs=64k"], capture_output=True)
        text = open(s.conf).read().replace("hold = yes", "hold = no")
        with open(s.conf, "w") as f:
            f.write(text)
        sighup_and_wait(s, "ok")
        assert wait_for(lambda: "event=deferred" in s.log_text(), 20), s.log_text()[-3000:]
        assert "the copy cannot be stored" in s.log_text(), s.log_text()[-3000:]
        assert received_events(receiver, "on a full disk") == []
        assert len(s.queue()) == 1  # kept
        filler.unlink()
        wait_for(lambda: received_events(receiver, "on a full disk"), 30)
        assert len(received_events(receiver, "on a full disk")) == 1
        (r,) = a.sdk(("emails.receiving.list", {}))
        assert [x["subject"] for x in r["data"]["data"]] == ["on a full disk"]
        assert wait_for(lambda: s.queue() == [], 10)
        s.stop()
