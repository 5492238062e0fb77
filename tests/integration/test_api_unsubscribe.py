"""RFC 8058 one-click unsubscribe: API mail that asks for it carries List-Unsubscribe with a
signed URL on our HTTP listener and List-Unsubscribe-Post, both covered by the DKIM signature;
a POST to the URL (as Gmail and Yahoo send it) suppresses the recipient for the sending domain,
a GET changes nothing, and a tampered URL is refused with 403."""
import re
import subprocess

import pytest

from apifixture import Api, SENDER, delivered_message, dkim_ok, parse
from conftest import Server


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("unsub"), overrides=["api.rate_limit=none"])
    s.overrides.append("api.public_url=http://127.0.0.1:%d/" % s.http_port)
    s.start()
    a = Api(s, s.cli("apikey", "create", "t", "--quiet").stdout.strip())
    yield a
    s.stop()


def post(url, data=b"List-Unsubscribe=One-Click"):
    p = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "--data-binary", data,
                        "-H", "Content-Type: application/x-www-form-urlencoded", url],
                       capture_output=True, text=True, timeout=30)
    return int(p.stdout)


def test_one_click_unsubscribe(api):
    r = api.curl("POST", "/emails", {"from": SENDER, "to": SENDER, "subject": "news", "text": "hello",
                                     "one_click_unsubscribe": True})
    assert r.status == 200, r
    id = r.json["id"]
    e = api.wait_event(id, "delivered")
    raw = delivered_message(api.server, e["message_id"])
    m = parse(raw)
    url = re.fullmatch(r"<(http://127\.0\.0\.1:\d+/unsubscribe/[A-Za-z0-9_.-]+)>", m["List-Unsubscribe"]).group(1)
    assert m["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    sig = re.sub(r"\s+", "", m["DKIM-Signature"])
    h = re.search(r"h=([^;]+)", sig).group(1).lower().split(":")
    assert "list-unsubscribe" in h and "list-unsubscribe-post" in h
    assert dkim_ok(api.server, raw)

    # a link checker's GET shows the page and changes nothing
    page = subprocess.run(["curl", "-s", url], capture_output=True, text=True, timeout=30).stdout
    assert "<form method=post>" in page
    assert api.sdk(("suppressions.list",))[0]["data"]["data"] == []
    # a tampered signature, a tampered payload: 403
    payload, mac = url.rsplit("/", 1)[1].split(".")
    base = url.rsplit("/", 1)[0]
    flipped = mac[:-2] + ("A" if mac[-2] != "A" else "B") + mac[-1]
    assert post("%s/%s.%s" % (base, payload, flipped)) == 403
    assert post("%s/%s.%s" % (base, "x" + payload[1:], mac)) == 403
    assert post(base + "/nonsense") == 403
    assert api.sdk(("suppressions.list",))[0]["data"]["data"] == []

    assert post(url) == 200
    (lst,) = api.sdk(("suppressions.list",))
    entries = [(x["email"], x["origin"], x["domain"], x["source_id"]) for x in lst["data"]["data"]]
    assert entries == [(SENDER, "unsubscribe", "mailwerk.test", id)], lst
    events = [ev["type"] for ev in api.email(id)["recipients"][0]["events"]]
    assert events[-1] == "unsubscribed" and api.email(id)["last_event"] == "delivered"
    assert post(url) == 200  # again: nothing new, no error
    # the next mail to that address from that domain is not sent
    again = api.send(subject="more news", text="x")
    assert api.email(again)["last_event"] == "suppressed"


def test_needs_exactly_one_recipient(api):
    r = api.curl("POST", "/emails", {"from": SENDER, "to": [SENDER, "other@mailwerk.test"], "subject": "s",
                                     "text": "t", "one_click_unsubscribe": True})
    assert r.status == 422 and "one_click_unsubscribe" in r.json["message"], r
