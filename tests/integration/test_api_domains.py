"""Domains over the API through the official Resend SDK (domains.create/get/list/update/verify/
remove): a domain made by the API is local with a DKIM key that signs its mail at once; its
records[] are what `mailwerk dns records` names; verify checks them against a DNS server (the
fixture on 127.0.0.1) in the background, record by record, and the domain's status follows —
verified, then partially_verified when a record is taken away; errors in Resend's shape."""
import glob
import json
import os
import smtplib

import pytest

from apifixture import Api, SENDER, delivered_message, dkim_dns, parse
from conftest import HOST, Server
from dnsfixture import DNSServer
from mtafixture import holds_for, wait_for
from test_webhooks import Receiver, assert_verified, create

import dkim

NAME = "shop.test"
HOST_IP = "192.0.2.10"


@pytest.fixture(scope="module")
def dns():
    d = DNSServer(ttl=0).start()  # records change between checks: nothing is cached
    yield d
    d.stop()


@pytest.fixture(scope="module")
def api(tmp_path_factory, dns):
    s = Server(tmp_path_factory.mktemp("domains"), overrides=["api.rate_limit=none", "dns.resolver=" + dns.resolver])
    with open(s.conf, "a") as f:  # the webhook receiver is on loopback
        f.write("\n[webhooks]\nallow_private = yes\n")
    s.start()
    a = Api(s, s.cli("apikey", "create", "tests", "--quiet").stdout.strip())
    yield a
    s.stop()


def sdk1(api, fn, *args):
    (r,) = api.sdk((fn, *args))
    return r


def absolute(name, domain):
    return domain if name == "@" else name + "." + domain


def publish(dns, domain, records, leave_out=()):
    """Serves the records the API listed (TXT values as they are, MX with their priority)."""
    dns.clear()
    dns.load({HOST: {"A": HOST_IP}})
    for r in records:
        if r["record"] in leave_out:
            continue
        value = "%d %s." % (r["priority"], r["value"]) if r["type"] == "MX" else r["value"]
        dns.load({absolute(r["name"], domain): {r["type"]: value}})


def verified(api, id, want):
    """The domain once a check has ended with status want (it is pending while one runs)."""
    def check():
        r = api.curl("GET", "/domains/" + id)
        assert r.status == 200, r
        return r.json if r.json["status"] == want else None
    found = wait_for(check, 20)
    assert found, "domain %s never became %s: %s" % (id, want, api.curl("GET", "/domains/" + id).json)
    return found


def send_from(api, domain=NAME):
    return sdk1(api, "emails.send", {"from": "Shop <orders@%s>" % domain, "to": [SENDER], "subject": "first",
                                     "text": "from the new domain"})


def test_domain_lifecycle_with_the_sdk(api, dns):
    r = sdk1(api, "domains.create", {"name": "Shop.TEST"})
    assert r["error"] is None, r
    d = r["data"]
    assert d["name"] == NAME and d["status"] == "not_started" and len(d["id"]) == 36
    # it sends once its SPF and DKIM records verify ([api] verify_before_sending)
    assert d["capabilities"] == {"sending": "disabled", "receiving": "enabled"}
    recs = {(x["record"], x["name"], x["type"]): x for x in d["records"]}
    assert {k[:3] for k in recs} >= {("Receiving", "@", "MX"), ("SPF", "@", "TXT"), ("SPF", "bounces", "MX"),
                                     ("SPF", "bounces", "TXT"), ("DMARC", "_dmarc", "TXT")}
    assert all(x["status"] == "not_started" and x["ttl"] == "Auto" for x in d["records"])
    assert recs[("Receiving", "@", "MX")]["value"] == HOST and recs[("Receiving", "@", "MX")]["priority"] == 10
    dkim_recs = [x for x in d["records"] if x["record"] == "DKIM"]
    assert len(dkim_recs) == 1 and dkim_recs[0]["name"].endswith("._domainkey")
    assert dkim_recs[0]["value"].startswith("v=DKIM1; k=rsa; p=")
    # the key is the server's, as `dkim keygen` makes it, and the domain is local
    selector = dkim_recs[0]["name"].split(".")[0]
    assert os.path.exists(os.path.join(api.server.dir, "dkim", NAME, selector + ".pem"))
    assert NAME in api.server.cli("domain", "list").stdout.split()

    early = send_from(api)
    assert early["data"] is None and early["error"]["statusCode"] == 403, early
    assert early["error"]["name"] == "validation_error" and "not verified" in early["error"]["message"], early

    # get and list
    (g, lst) = api.sdk(("domains.get", d["id"]), ("domains.list",))
    assert g["error"] is None and g["data"]["object"] == "domain" and g["data"]["id"] == d["id"]
    assert g["data"]["records"] == d["records"]
    assert lst["error"] is None and lst["data"]["object"] == "list" and lst["data"]["has_more"] is False
    names = [x["name"] for x in lst["data"]["data"]]
    assert names[0] == NAME and "mailwerk.test" in names  # newest first; init's domain has an id too
    assert all(len(x["id"]) == 36 for x in lst["data"]["data"])

    # verify: every record published -> verified, record by record
    publish(dns, NAME, d["records"])
    v = sdk1(api, "domains.verify", d["id"])
    assert v["error"] is None and v["data"] == {"object": "domain", "id": d["id"]}, v
    got = verified(api, d["id"], "verified")
    assert all(x["status"] == "verified" for x in got["records"]), got["records"]
    assert got["capabilities"]["sending"] == "enabled"

    # now it sends, signed with the key the API made
    sent = send_from(api)
    assert sent["error"] is None, sent
    e = api.wait_event(sent["data"]["id"], "delivered")
    raw = delivered_message(api.server, e["message_id"])
    assert dkim.verify(raw, dnsfunc=dkim_dns(api.server, NAME))
    assert parse(raw)["DKIM-Signature"].find("d=" + NAME) >= 0

    # a record taken away later: partially verified, that record failed
    publish(dns, NAME, d["records"], leave_out=("DMARC",))
    assert sdk1(api, "domains.verify", d["id"])["error"] is None
    got = verified(api, d["id"], "partially_verified")
    st = {x["record"]: x["status"] for x in got["records"]}
    assert st["DMARC"] == "failed" and st["DKIM"] == "verified" and st["Receiving"] == "verified"
    dmarc = next(x for x in got["records"] if x["record"] == "DMARC")
    assert "DMARC" in dmarc["problem"] and "missing" in dmarc["problem"], dmarc
    assert all("problem" not in x for x in got["records"] if x["status"] == "verified")
    assert got["capabilities"]["sending"] == "enabled"  # SPF and DKIM are what sending needs

    # a lookup that fails is a temporary failure of that record, not a wrong one
    publish(dns, NAME, d["records"])
    dns.servfail("_dmarc." + NAME)
    assert sdk1(api, "domains.verify", d["id"])["error"] is None
    got = verified(api, d["id"], "partially_verified")
    assert {x["record"]: x["status"] for x in got["records"]}["DMARC"] == "temporary_failure"

    # update: capabilities
    u = sdk1(api, "domains.update", {"id": d["id"], "capabilities": {"sending": "disabled"}})
    assert u["error"] is None and u["data"] == {"object": "domain", "id": d["id"]}, u
    assert api.curl("GET", "/domains/" + d["id"]).json["capabilities"]["sending"] == "disabled"
    off = send_from(api)
    assert off["error"]["statusCode"] == 403 and "disabled" in off["error"]["message"], off

    # remove
    rm = sdk1(api, "domains.remove", d["id"])
    assert rm["error"] is None and rm["data"] == {"object": "domain", "id": d["id"], "deleted": True}, rm
    gone = sdk1(api, "domains.get", d["id"])
    assert gone["data"] is None and gone["error"]["name"] == "not_found" and gone["error"]["statusCode"] == 404
    assert NAME not in api.server.cli("domain", "list").stdout.split()


def test_domain_errors(api):
    missing = api.curl("POST", "/domains", body={})
    assert missing.status == 422 and missing.json["name"] == "missing_required_field", missing
    bad = api.curl("POST", "/domains", body={"name": "not a domain"})
    assert bad.status == 422 and bad.json["name"] == "validation_error", bad
    dup = api.curl("POST", "/domains", body={"name": "mailwerk.test"})
    assert dup.status == 409 and "exists" in dup.json["message"], dup
    for label in ("a.b", "-x", "", "x" * 64, "\u00e9"):
        rp = api.curl("POST", "/domains", body={"name": "other.test", "custom_return_path": label})
        assert rp.status == 422 and "one DNS label" in rp.json["message"], rp
    tracking = api.curl("PATCH", "/domains/mailwerk.test", body={"open_tracking": True})
    assert tracking.status == 422 and "tracking" in tracking.json["message"], tracking
    caps = api.curl("PATCH", "/domains/mailwerk.test", body={"capabilities": {"sending": "maybe"}})
    assert caps.status == 422 and "capabilities.sending" in caps.json["message"], caps
    assert api.curl("GET", "/domains/00000000-0000-4000-8000-000000000000").status == 404
    assert api.curl("POST", "/domains/nothing.test/verify").status == 404
    assert api.curl("GET", "/domains?after=00000000-0000-4000-8000-000000000000").status == 422
    # a domain with mailboxes is not deleted from under them
    busy = api.curl("DELETE", "/domains/mailwerk.test")
    assert busy.status == 409 and "user" in busy.json["message"], busy
    # a sending key may not manage domains
    sending = api.key_create("sender", "--permission", "sending_access")
    refused = api.curl("GET", "/domains", key=sending)
    assert refused.status == 403 and refused.json["name"] == "restricted_api_key", refused


def test_domain_pages(api):
    ids = []
    for i in range(3):
        r = api.curl("POST", "/domains", body={"name": "page%d.test" % i})
        assert r.status == 201, r
        ids.append(r.json["id"])
    first = api.curl("GET", "/domains?limit=2").json
    assert [x["id"] for x in first["data"]] == [ids[2], ids[1]] and first["has_more"] is True
    rest = api.curl("GET", "/domains?limit=2&after=" + ids[1]).json
    assert rest["data"][0]["id"] == ids[0]
    back = api.curl("GET", "/domains?limit=2&before=" + ids[0]).json
    assert [x["id"] for x in back["data"]] == [ids[2], ids[1]]
    for i in ids:
        assert api.curl("DELETE", "/domains/" + i).status == 200


def test_a_record_broken_later_is_noticed(tmp_path_factory):
    """[api] domain_recheck: a verified domain is checked again without being asked."""
    with DNSServer(ttl=0) as dns:
        s = Server(tmp_path_factory.mktemp("recheck"),
                   overrides=["api.rate_limit=none", "dns.resolver=" + dns.resolver, "api.domain_recheck=2s",
                              "api.verify_before_sending=no"]).start()
        try:
            api = Api(s, s.cli("apikey", "create", "tests", "--quiet").stdout.strip())
            d = api.curl("POST", "/domains", body={"name": "later.test"}).json
            assert d["capabilities"]["sending"] == "enabled"  # verify_before_sending = no: at once
            assert send_from(api, "later.test")["error"] is None
            publish(dns, "later.test", d["records"])
            assert api.curl("POST", "/domains/%s/verify" % d["id"]).status == 200
            verified(api, d["id"], "verified")
            publish(dns, "later.test", d["records"], leave_out=("DKIM",))
            got = verified(api, d["id"], "partially_verified")
            assert {x["record"]: x["status"] for x in got["records"]}["DKIM"] == "failed"
            assert got["capabilities"]["sending"] == "enabled"  # not gated: the operator chose so
            assert "event=api_domain_checked domain=later.test" in open(s.log_path).read()
        finally:
            s.stop()


def test_domain_updated_webhook(api, dns):
    """A change of a domain's status is posted as domain.updated, signed; a check that changes
    nothing posts nothing."""
    receiver = Receiver()
    try:
        wh, secret = create(api, receiver.url, ["domain.updated"])
        d = api.curl("POST", "/domains", body={"name": "hooked.test"}).json
        publish(dns, "hooked.test", d["records"])
        assert api.curl("POST", "/domains/%s/verify" % d["id"]).status == 200
        got = wait_for(lambda: receiver.requests[:] or None, 20)
        assert got and len(got) == 1, receiver.requests
        assert_verified(secret, got)
        body = json.loads(got[0]["body"])
        assert body["type"] == "domain.updated" and set(body) == {"type", "created_at", "data"}
        data = body["data"]
        assert data["id"] == d["id"] and data["name"] == "hooked.test" and data["status"] == "verified"
        assert {(r["record"], r["status"]) for r in data["records"]} == {
            ("Receiving", "verified"), ("SPF", "verified"), ("DKIM", "verified"), ("DMARC", "verified")}
        verified(api, d["id"], "verified")
        assert api.curl("POST", "/domains/%s/verify" % d["id"]).status == 200
        assert holds_for(lambda: len(receiver.requests) == 1, 2.0)
        assert api.curl("DELETE", "/webhooks/" + wh).status == 200
        assert api.curl("DELETE", "/domains/" + d["id"]).status == 200
    finally:
        receiver.close()


def test_custom_return_path(api, dns):
    """custom_return_path: the domain's records, its mail's VERP return path and the MX's bounce
    address all use its own label."""
    r = sdk1(api, "domains.create", {"name": "custom.test", "customReturnPath": "send"})
    assert r["error"] is None, r
    d = r["data"]
    names = {(x["record"], x["type"]): x["name"] for x in d["records"]}
    assert names[("SPF", "MX")] == "send" and "bounces" not in {x["name"] for x in d["records"]}
    assert "send.custom.test. IN MX 10 " + HOST in api.server.cli("dns", "records", "--domain", "custom.test").stdout
    publish(dns, "custom.test", d["records"])
    assert api.curl("POST", "/domains/%s/verify" % d["id"]).status == 200
    verified(api, d["id"], "verified")
    sent = send_from(api, "custom.test")
    assert sent["error"] is None, sent
    id = sent["data"]["id"]
    e = api.wait_event(id, "delivered")
    delivered_message(api.server, e["message_id"])  # waits for the file; local delivery put the envelope on top
    files = [open(p, "rb").read() for p in glob.glob(os.path.join(api.server.dir, "mail", "*", "demo", "*", "*"))]
    mine = [f for f in files if ("<%s>" % e["message_id"]).encode() in f]
    assert mine and mine[0].startswith(b"Return-Path: <bounces+%s@send.custom.test>\r\n" % id.encode()), mine[:1]
    # the MX takes reports to that address, and not to the server's default label for this domain
    with smtplib.SMTP("127.0.0.1", api.server.smtp_port, timeout=30) as c:
        c.ehlo("reporter.example")
        c.mail("")
        assert c.rcpt("bounces+%s@send.custom.test" % id)[0] == 250
        c.rset()
        c.mail("")
        assert c.rcpt("bounces+%s@bounces.custom.test" % id)[0] >= 550  # not ours: refused
    assert api.curl("DELETE", "/domains/" + d["id"]).status == 200


def test_dkim_rotation_over_the_api(api):
    """A rotation in three steps (RFC 6376 §3.1): a new selector whose record the API gives, the
    old key signing meanwhile, then the new one activated; python3-dkim verifies each message
    against the record the API said to publish."""
    from conftest import DOMAIN
    base = "/domains/%s/dkim-keys" % DOMAIN
    keys = api.curl("GET", base).json["data"]
    (old,) = [k for k in keys if k["active"] and k["algorithm"] == "rsa"]
    assert old["name"] == old["selector"] + "._domainkey" and old["value"].startswith("v=DKIM1;")
    r = api.curl("POST", base, body={"selector": "next"})
    assert r.status == 201, r
    new = r.json
    assert new["selector"] == "next" and new["active"] is False and new["bits"] == 2048
    assert api.curl("POST", base, body={"selector": "next"}).status == 409
    for bad in ({"algorithm": "dsa"}, {"selector": "bad selector"}, {"bits": 1024}, {"activate": "yes"}):
        assert api.curl("POST", base, body=bad).status == 422, bad
    assert api.curl("POST", "/domains/nowhere.test/dkim-keys", body={}).status == 404
    assert api.curl("POST", base + "/missing/activate").status == 404

    def records():
        keys = api.curl("GET", base).json["data"]
        table = {("%s._domainkey.%s." % (k["selector"], DOMAIN)).encode(): k["value"].encode() for k in keys}
        return lambda name, timeout=5: table.get(name if isinstance(name, bytes) else name.encode())

    def signed_by(subject):
        id = api.send(subject=subject, text="hi")
        raw = delivered_message(api.server, api.email(id)["message_id"])
        selectors = {dict(kv.strip().split("=", 1) for kv in v.replace("\r\n", "").split(";") if "=" in kv)["s"]
                     for v in parse(raw).get_all("DKIM-Signature")}
        assert dkim.verify(raw, dnsfunc=records()), subject
        return selectors

    assert signed_by("before the rotation") == {old["selector"]}
    r = api.curl("POST", base + "/next/activate")
    assert r.status == 200 and r.json["active"] is True, r
    assert signed_by("after the rotation") == {"next"}
    listed = {k["selector"]: k["active"] for k in api.curl("GET", base).json["data"]}
    assert listed[old["selector"]] is False and listed["next"] is True
    # an Ed25519 key next to it signs at once (the first of its kind), and a made-up selector is chosen
    ed = api.curl("POST", base, body={"algorithm": "ed25519"}).json
    assert ed["algorithm"] == "ed25519" and ed["active"] is True and ed["selector"].startswith("mw")
    assert signed_by("both kinds") == {"next", ed["selector"]}
