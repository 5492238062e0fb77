"""The HTTP API through the official Resend Node SDK (RESEND_BASE_URL pointed at mailwerk): what
the SDK sends arrives, parsed back by Python's email package, with the same content, attachments
byte for byte, and a DKIM signature python3-dkim verifies; batch, get, list with cursors,
reschedule and cancel, API keys. The messages go to the local demo user (delivered at once)."""
import os

import pytest

from apifixture import Api, SENDER, b64, delivered_message, dkim_ok, parse
from conftest import DOMAIN, Server


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("api"), overrides=["api.rate_limit=none"]).start()
    a = Api(s, s.cli("apikey", "create", "tests", "--quiet").stdout.strip())
    yield a
    s.stop()


def text(part):
    """A text part's content with the wire's CRLF as newlines, trailing line ends dropped."""
    return part.get_content().replace("\r\n", "\n").rstrip("\n")


def delivered(api, id):
    e = api.wait_event(id, "delivered")
    return e, delivered_message(api.server, e["message_id"])


def test_text_email_arrives_signed(api):
    id = api.send(subject="plain", text="Hello from the SDK.\nSecond line.")
    e, raw = delivered(api, id)
    m = parse(raw)
    assert m["Subject"] == "plain"
    assert m["From"] == "Demo <%s>" % SENDER
    assert m.get_content_type() == "text/plain"
    assert text(m) == "Hello from the SDK.\nSecond line."
    assert dkim_ok(api.server, raw)
    assert e["object"] == "email" and e["id"] == id and e["to"] == [SENDER]
    assert e["text"] == "Hello from the SDK.\nSecond line." and e["html"] is None
    events = [ev["type"] for ev in e["recipients"][0]["events"]]
    assert events == ["queued", "sent", "delivered"], e


def test_html_only_gets_a_text_part(api):
    id = api.send(subject="html", html="<h1>Title</h1><p>Body with <a href=\"https://example.org/x\">a link</a>.</p>")
    _, raw = delivered(api, id)
    m = parse(raw)
    assert m.get_content_type() == "multipart/alternative"
    plain = text(m.get_body(preferencelist=("plain",)))
    html = m.get_body(preferencelist=("html",)).get_content()
    assert "Title" in plain and "a link (https://example.org/x)" in plain
    assert "<h1>Title</h1>" in html
    assert dkim_ok(api.server, raw)


def test_text_and_html_non_ascii_names_and_subject(api):
    id = api.send(**{"from": "Jürgen Müller <%s>" % SENDER, "to": ["\"Doe, Jane\" <%s>" % SENDER],
                     "subject": "Grüße aus Köln – ✓", "text": "Grüße!", "html": "<p>Grüße!</p>",
                     "headers": {"X-Campaign": "Frühling"}, "tags": [{"name": "kind", "value": "welcome_1"}]})
    e, raw = delivered(api, id)
    m = parse(raw)
    assert m["Subject"] == "Grüße aus Köln – ✓"
    assert m["From"].addresses[0].display_name == "Jürgen Müller"
    assert m["To"].addresses[0].display_name == "Doe, Jane"
    assert m["X-Campaign"] == "Frühling"
    assert text(m.get_body(preferencelist=("plain",))) == "Grüße!"
    assert dkim_ok(api.server, raw)
    assert e["tags"] == [{"name": "kind", "value": "welcome_1"}]
    assert e["subject"] == "Grüße aus Köln – ✓"


def test_attachments_byte_exact_and_inline_image(api):
    blob = os.urandom(70000)
    png = b"\x89PNG\r\n\x1a\n" + os.urandom(500)
    id = api.send(subject="files", html="<p>logo: <img src=\"cid:logo1\"></p>", text="see attached",
                  attachments=[{"filename": "data.bin", "content": {"$buffer": b64(blob)}},
                               {"filename": "Überweisung März.pdf", "content": b64(b"%PDF-1.4 fake")},
                               {"filename": "logo.png", "content": {"$buffer": b64(png)}, "contentId": "logo1"}])
    _, raw = delivered(api, id)
    m = parse(raw)
    assert m.get_content_type() == "multipart/mixed"
    parts = {p.get_filename(): p for p in m.iter_attachments()}
    assert parts["data.bin"].get_content() == blob
    assert parts["Überweisung März.pdf"].get_content() == b"%PDF-1.4 fake"
    assert parts["Überweisung März.pdf"].get_content_type() == "application/pdf"
    related = [p for p in m.walk() if p.get_content_type() == "multipart/related"]
    assert related, raw[:2000]
    logo = [p for p in m.walk() if p.get("Content-ID") == "<logo1>"]
    assert logo and logo[0].get_content() == png
    assert dkim_ok(api.server, raw)


def test_batch_and_list_with_cursors(api):
    emails = [{"from": SENDER, "to": [SENDER], "subject": "batch %d" % i, "text": "n%d" % i} for i in range(3)]
    (r,) = api.sdk(("batch.send", emails))
    assert r["error"] is None, r
    ids = [d["id"] for d in r["data"]["data"]]
    assert len(ids) == 3 and len(set(ids)) == 3
    for id in ids:
        api.wait_event(id, "delivered")
    page1, page2, back = api.sdk(("emails.list", {"limit": 2}))[0], None, None
    assert page1["error"] is None and page1["data"]["object"] == "list"
    assert page1["data"]["has_more"] is True
    first = [e["id"] for e in page1["data"]["data"]]
    assert first == [ids[2], ids[1]]  # newest first
    (page2,) = api.sdk(("emails.list", {"limit": 2, "after": first[-1]}))
    assert page2["data"]["data"][0]["id"] == ids[0]
    (back,) = api.sdk(("emails.list", {"limit": 2, "before": ids[0]}))
    assert [e["id"] for e in back["data"]["data"]] == first


def test_batch_strict_refuses_all(api):
    before = len(api.sdk(("emails.list", {"limit": 100}))[0]["data"]["data"])
    emails = [{"from": SENDER, "to": [SENDER], "subject": "ok", "text": "x"},
              {"from": SENDER, "to": ["not an address"], "subject": "bad", "text": "x"}]
    (r,) = api.sdk(("batch.send", emails))
    assert r["data"] is None and r["error"]["statusCode"] == 422, r
    assert "emails[1]" in r["error"]["message"]
    after = len(api.sdk(("emails.list", {"limit": 100}))[0]["data"]["data"])
    assert after == before


def test_batch_permissive_sends_the_valid_ones(api):
    emails = [{"from": SENDER, "to": [SENDER], "subject": "ok", "text": "x"},
              {"from": SENDER, "to": ["not an address"], "subject": "bad", "text": "x"}]
    (r,) = api.sdk(("batch.send", emails, {"batchValidation": "permissive"}))
    assert r["error"] is None, r
    assert len(r["data"]["data"]) == 1
    assert r["data"]["errors"][0]["index"] == 1


def test_scheduled_update_and_cancel(api):
    id = api.send(subject="later", text="x", scheduledAt="in 10 min")
    e = api.email(id)
    assert e["last_event"] == "scheduled" and e["scheduled_at"] is not None
    (u,) = api.sdk(("emails.update", {"id": id, "scheduledAt": "2099-01-01T00:00:00.000Z"}))
    assert u["error"] is None and u["data"] == {"object": "email", "id": id}, u
    assert api.email(id)["scheduled_at"].startswith("2099-01-01T00:00:00")
    (c,) = api.sdk(("emails.cancel", id))
    assert c["error"] is None and c["data"]["id"] == id, c
    assert api.email(id)["last_event"] == "canceled"
    assert not any(b"Subject: later" in m["data"] for m in api.server.messages().values())
    (again,) = api.sdk(("emails.cancel", id))
    assert again["error"]["statusCode"] == 422


def test_api_keys_create_list_remove(api):
    created, listed = api.sdk(("apiKeys.create", {"name": "sdk-made", "permission": "sending_access"}),
                              ("apiKeys.list",))
    assert created["error"] is None, created
    token = created["data"]["token"]
    assert token.startswith("re_") and len(token) == 46
    names = [k["name"] for k in listed["data"]["data"]]
    assert "sdk-made" in names
    # the new key sends, but may not read
    (sent,) = api.sdk(("emails.send", {"from": SENDER, "to": SENDER, "subject": "k", "text": "k"}), key=token)
    assert sent["error"] is None, sent
    (read,) = api.sdk(("emails.list",), key=token)
    assert read["error"]["name"] == "restricted_api_key" and read["error"]["statusCode"] == 403
    (removed,) = api.sdk(("apiKeys.remove", created["data"]["id"]))
    assert removed["error"] is None and removed["data"]["deleted"] is True, removed
    (gone,) = api.sdk(("emails.send", {"from": SENDER, "to": SENDER, "subject": "k", "text": "k"}), key=token)
    assert gone["error"]["name"] == "invalid_api_key"


def test_key_limited_to_another_domain_cannot_send(api):
    api.server.cli("domain", "add", "other.test")
    token = api.key_create("other-only", "--permission", "sending_access", "--domain", "other.test")
    (r,) = api.sdk(("emails.send", {"from": SENDER, "to": SENDER, "subject": "x", "text": "x"}), key=token)
    assert r["error"]["statusCode"] == 403 and r["error"]["name"] == "restricted_api_key", r


def test_sender_domain_must_be_ours_and_have_a_key(api):
    (r,) = api.sdk(("emails.send", {"from": "a@elsewhere.example", "to": SENDER, "subject": "x", "text": "x"}))
    assert r["error"]["statusCode"] == 403 and "mailwerk domain add" in r["error"]["message"], r
    api.server.cli("domain", "add", "nokey.test")
    (r,) = api.sdk(("emails.send", {"from": "a@nokey.test", "to": SENDER, "subject": "x", "text": "x"}))
    assert r["error"]["statusCode"] == 403 and "DKIM" in r["error"]["message"], r


def test_idempotency_key_through_the_sdk(api):
    fields = {"from": SENDER, "to": SENDER, "subject": "idem", "text": "once"}
    a, b = api.sdk(("emails.send", fields, {"idempotencyKey": "order-42"}),
                   ("emails.send", fields, {"idempotencyKey": "order-42"}))
    assert a["error"] is None and b["data"] == a["data"], (a, b)
    other = dict(fields, text="twice")
    (c,) = api.sdk(("emails.send", other, {"idempotencyKey": "order-42"}))
    assert c["error"]["statusCode"] == 409 and c["error"]["name"] == "invalid_idempotent_request", c
    subjects = [e["subject"] for e in api.sdk(("emails.list", {"limit": 100}))[0]["data"]["data"]]
    assert subjects.count("idem") == 1


def test_authenticated_submission_is_tracked_too(api):
    import smtplib
    import ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    msg = ("From: Demo <%s>\r\nTo: %s\r\nSubject: =?utf-8?q?=C3=BCber_SMTP?=\r\nMessage-ID: <smtp-1@client.test>\r\n"
           "\r\nsent by submission\r\n" % (SENDER, SENDER)).encode()
    with smtplib.SMTP_SSL("127.0.0.1", api.server.submissions_port, context=ctx, timeout=20) as c:
        c.login(api.server.user, api.server.password)
        c.sendmail(SENDER, [SENDER], msg)
    found = None
    for _ in range(100):
        (lst,) = api.sdk(("emails.list", {"limit": 10}))
        found = [e for e in lst["data"]["data"] if e["message_id"] == "smtp-1@client.test"]
        if found:
            break
    assert found, lst
    e = api.wait_event(found[0]["id"], "delivered")
    assert e["subject"] == "über SMTP" and e["from"] == "Demo <%s>" % SENDER and e["to"] == [SENDER]
    assert [x["type"] for x in e["recipients"][0]["events"]] == ["queued", "sent", "delivered"]
    # its header section as queued: ours on top (the trace field, the signature), the client's below
    names = [h["name"] for h in e["headers"]]
    assert set(names[:2]) == {"Received", "DKIM-Signature"}, names
    assert {"name": "Message-ID", "value": "<smtp-1@client.test>"} in e["headers"]
    assert {"name": "Subject", "value": "=?utf-8?q?=C3=BCber_SMTP?="} in e["headers"]


def test_list_filters_tags_and_headers(api):
    """GET /emails filters (mailwerk's: status, domain, recipient, tag, q, since, until) and
    carries each email's tags; GET /emails/{id} shows the header section as it was sent."""
    import urllib.parse
    token = "flt%d" % os.getpid()
    welcome = api.send(subject="welcome " + token, text="hi", tags=[{"name": "category", "value": "welcome"}])
    invoice = api.send(subject="invoice " + token, text="hi", tags=[{"name": "category", "value": "billing"}])
    for id in (welcome, invoice):
        api.wait_event(id, "delivered")

    def listed(**query):
        r = api.curl("GET", "/emails?" + urllib.parse.urlencode(dict(query, q=token)))
        assert r.status == 200, r
        return r.json

    everything = listed()
    assert [e["id"] for e in everything["data"]] == [invoice, welcome]
    assert everything["data"][1]["tags"] == [{"name": "category", "value": "welcome"}]
    assert [e["id"] for e in listed(tag="category:welcome")["data"]] == [welcome]
    assert [e["id"] for e in listed(tag="category")["data"]] == [invoice, welcome]
    assert listed(tag="category:none")["data"] == [] and listed(tag="welcome")["data"] == []
    assert len(listed(status="delivered")["data"]) == 2 and listed(status="bounced")["data"] == []
    assert len(listed(recipient=SENDER.upper())["data"]) == 2 and listed(recipient="x@y.test")["data"] == []
    assert len(listed(domain=DOMAIN.upper())["data"]) == 2 and listed(domain="other.test")["data"] == []
    created = {e["id"]: e["created_at"] for e in everything["data"]}
    assert [e["id"] for e in listed(since=created[invoice])["data"]] == [invoice]
    assert [e["id"] for e in listed(until=created[invoice])["data"]] == [welcome]
    # a page of a filtered list, and the next one
    first = listed(limit=1)
    assert first["has_more"] is True and [e["id"] for e in first["data"]] == [invoice]
    rest = listed(limit=1, after=invoice)
    assert rest["has_more"] is False and [e["id"] for e in rest["data"]] == [welcome]
    # nonsense is refused, naming the parameter
    for bad, name in (("status=lost", "status"), ("since=yesterday", "since"), ("until=2026-13-01T00:00:00Z", "until")):
        r = api.curl("GET", "/emails?" + bad)
        assert r.status == 422 and r.json["name"] == "validation_error" and "`%s`" % name in r.json["message"], r

    e = api.email(welcome)
    fields = {h["name"]: h["value"] for h in e["headers"]}
    assert [h["name"] for h in e["headers"]][0] == "Received"
    assert fields["Subject"] == "welcome " + token and fields["Message-ID"] == "<%s>" % e["message_id"]
    assert "d=" + DOMAIN in fields["DKIM-Signature"].replace(" ", "") and "\r" not in fields["DKIM-Signature"]
