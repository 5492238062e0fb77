"""Webhooks end to end: a receiver in this process (http.server on 127.0.0.1, recording every
request, scriptable to fail or hang), webhooks made through the official Resend SDK, mail sent
through it, and every request checked the way a receiver written for Resend checks it: by
tests/node/verify.mjs with the Standard Webhooks library and with resend.webhooks.verify (a wrong
secret must fail). Also: retries until the receiver accepts, kill -9 while a post is in flight,
disabled webhooks, the SSRF rule, the CRUD routes, the CLI. Every wait is bounded."""
import http.server
import json
import os
import re
import ssl
import subprocess
import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from apifixture import NODE_DIR, SENDER, Api
from conftest import Server
from mtafixture import holds_for, wait_for

RETRY = "webhooks.retry_schedule=1s,1s,1s"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class Receiver:
    """An HTTP endpoint that records what it is sent. fail(n) answers the next n requests 500;
    hang() keeps requests waiting (unanswered) until release()."""

    def __init__(self, tls=None):
        self.requests = []
        self.lock = threading.Lock()
        self.failures = 0
        self.answer = (500, b"try later")  # what a failure is answered with
        self.hanging = threading.Event()
        self.released = threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as libcurl reuses connections

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                entry = {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                         "body": body.decode("utf-8"), "at": time.time()}
                with receiver.lock:
                    receiver.requests.append(entry)
                    fail = receiver.failures > 0
                    if fail:
                        receiver.failures -= 1
                if receiver.hanging.is_set():
                    receiver.released.wait(60)  # bounded: the server is killed long before
                    self.close_connection = True
                    return
                status, text = receiver.answer if fail else (200, b"ok")
                try:
                    self.send_response(status)
                    if status in (301, 302, 307, 308):
                        self.send_header("Location", "/elsewhere")
                    self.send_header("Content-Length", str(len(text)))
                    self.end_headers()
                    self.wfile.write(text)
                except OSError:
                    pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        scheme = "http"
        if tls is not None:  # (cert, key)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.url = "%s://127.0.0.1:%d/hook" % (scheme, self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def fail(self, n, status=500, body=b"try later"):
        with self.lock:
            self.failures = n
            self.answer = (status, body)

    def hang(self):
        self.released.clear()
        self.hanging.set()

    def release(self):
        self.hanging.clear()
        self.released.set()

    def of(self, email_id, type=None):
        """The requests about one email (optionally of one type), in arrival order."""
        with self.lock:
            found = []
            for r in self.requests:
                p = json.loads(r["body"])
                if p["data"].get("email_id") == email_id and (type is None or p["type"] == type):
                    found.append(r)
            return found

    def close(self):
        self.release()
        self.httpd.shutdown()
        self.httpd.server_close()


def verify(secret, requests, wrong_secret=None):
    """verify.mjs's verdict on each request (see its header)."""
    payload = {"secret": secret, "wrong_secret": wrong_secret,
               "requests": [{"body": r["body"], "headers": r["headers"]} for r in requests]}
    p = subprocess.run(["node", os.path.join(NODE_DIR, "verify.mjs")], input=json.dumps(payload),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def assert_verified(secret, requests):
    for v in verify(secret, requests, wrong_secret="whsec_" + "A" * 43 + "="):
        assert v["standard"] is True and v["svix"] is True and v["resend"] is True, v
        assert v["wrong"] is True, v


def create(api, endpoint, events):
    (r,) = api.sdk(("webhooks.create", {"endpoint": endpoint, "events": events}))
    assert r["error"] is None, r
    assert r["data"]["object"] == "webhook" and set(r["data"]) == {"object", "id", "signing_secret"}, r
    return r["data"]["id"], r["data"]["signing_secret"]


def remove(api, id):
    (r,) = api.sdk(("webhooks.remove", id))
    assert r["error"] is None, r


def log(server, id):
    out = server.cli("webhook", "log", id, "--json").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("webhooks"), overrides=["api.rate_limit=none", RETRY])
    # in the file, not as -o: the CLI (webhook add, test) reads the same setting
    with open(s.conf, "a") as f:
        f.write("\n[webhooks]\nallow_private = yes\n")
    s.start()
    a = Api(s, s.cli("apikey", "create", "tests", "--quiet").stdout.strip())
    yield a
    s.stop()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_sent_and_delivered_arrive_signed_in_resends_shape(api, receiver):
    wh, secret = create(api, receiver.url, ["email.sent", "email.delivered"])
    assert re.match(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", wh)
    assert secret.startswith("whsec_")
    id = api.send(subject="hooked", text="hi", tags=[{"name": "campaign", "value": "spring"}])
    got = wait_for(lambda: len(receiver.of(id)) >= 2 and receiver.of(id), 20)
    assert got, receiver.requests
    assert holds_for(lambda: len(receiver.of(id)) == 2, 1.0)  # nothing else: queued is not posted
    assert_verified(secret, got)
    email = api.email(id)
    bodies = [json.loads(r["body"]) for r in got]
    assert sorted(b["type"] for b in bodies) == ["email.delivered", "email.sent"]
    for r, b in zip(got, bodies):
        h = r["headers"]
        assert r["path"] == "/hook"
        assert h["content-type"] == "application/json"
        assert h["webhook-id"].startswith("msg_") and h["webhook-id"] == h["svix-id"]
        assert h["webhook-timestamp"] == h["svix-timestamp"] and abs(int(h["webhook-timestamp"]) - time.time()) < 60
        assert h["webhook-signature"].startswith("v1,") and h["webhook-signature"] == h["svix-signature"]
        assert set(b) == {"type", "created_at", "data"} and ISO.match(b["created_at"]), b
        d = b["data"]
        assert d["email_id"] == id and d["from"] == "Demo <%s>" % SENDER and d["to"] == [SENDER]
        assert d["subject"] == "hooked" and d["tags"] == {"campaign": "spring"}
        assert d["created_at"] == email["created_at"] and d["message_id"] == email["message_id"]
        assert d["recipient"] == SENDER
    assert len({r["headers"]["webhook-id"] for r in got}) == 2
    delivered = next(b for b in bodies if b["type"] == "email.delivered")
    assert "reply" in delivered["data"]  # local delivery: our own (empty) reply
    remove(api, wh)


def test_failing_receiver_gets_the_event_again_until_it_accepts(api, receiver):
    wh, secret = create(api, receiver.url, ["email.delivered"])
    receiver.fail(3)
    id = api.send(subject="retried", text="hi")
    got = wait_for(lambda: len(receiver.of(id)) >= 4 and receiver.of(id), 30)
    assert got, receiver.requests
    assert holds_for(lambda: len(receiver.of(id)) == 4, 2.5)  # accepted: no fifth
    # the same message each time (Standard Webhooks: one webhook-id across retries), signed afresh
    assert len({r["headers"]["webhook-id"] for r in got}) == 1
    assert len({r["body"] for r in got}) == 1
    assert all(b["at"] - a["at"] >= 0.9 for a, b in zip(got, got[1:]))  # the 1s waits of the schedule
    assert_verified(secret, got)
    entries = wait_for(lambda: [e for e in log(api.server, wh) if e["state"] == "delivered"], 5)
    assert len(entries) == 1, log(api.server, wh)
    e = entries[0]
    assert e["event"] == "email.delivered" and e["email_id"] == id and e["attempts"] == 4 and e["status"] == 200
    assert e["msg_id"] == got[0]["headers"]["webhook-id"]
    text = api.server.cli("webhook", "log", wh).stdout
    assert "email.delivered" in text and "delivered" in text
    remove(api, wh)


def test_events_attempts_and_replay_through_the_sdk(api, receiver):
    wh, secret = create(api, receiver.url, ["email.delivered"])
    receiver.fail(1)
    id = api.send(subject="followed", text="hi")
    wait_for(lambda: len(receiver.of(id)) >= 2, 30)
    (listed,) = api.sdk(("webhooks.events.list", {"webhookId": wh}))
    assert listed["error"] is None, listed
    (ev,) = listed["data"]["data"]
    assert ev["type"] == "email.delivered" and ISO.match(ev["created_at"])
    assert ev["id"] == receiver.of(id)[0]["headers"]["webhook-id"]
    assert wait_for(lambda: api.sdk(("webhooks.events.get", {"webhookId": wh, "eventId": ev["id"]}))[0]["data"]["status"]
                    == "success", 10)
    got, attempts = api.sdk(("webhooks.events.get", {"webhookId": wh, "eventId": ev["id"]}),
                            ("webhooks.events.attempts.list", {"webhookId": wh, "eventId": ev["id"]}))
    assert got["data"]["object"] == "webhook_event" and got["data"]["next_attempt_at"] is None
    assert got["data"]["payload"]["data"]["email_id"] == id
    codes = [a["http_status_code"] for a in attempts["data"]["data"]]
    assert codes == [200, 500], attempts  # newest first, with what the receiver said
    assert attempts["data"]["data"][1]["response"] == "try later"
    # a replay posts the same payload again as a new message
    (replayed,) = api.sdk(("webhooks.events.replay", {"webhookId": wh, "eventId": ev["id"]}))
    assert replayed["error"] is None and replayed["data"]["object"] == "webhook_event", replayed
    assert replayed["data"]["id"] != ev["id"]
    again = wait_for(lambda: len(receiver.of(id)) >= 3 and receiver.of(id), 20)
    assert again[-1]["headers"]["webhook-id"] == replayed["data"]["id"] and again[-1]["body"] == again[0]["body"]
    assert_verified(secret, [again[-1]])
    (missing,) = api.sdk(("webhooks.events.get", {"webhookId": wh, "eventId": "msg_" + "0" * 32}))
    assert missing["error"]["statusCode"] == 404
    remove(api, wh)


def test_a_receiver_that_never_accepts_is_given_up(api, receiver):
    wh, _ = create(api, receiver.url, ["email.sent"])
    receiver.fail(100)
    id = api.send(subject="doomed", text="hi")
    entries = wait_for(lambda: [e for e in log(api.server, wh) if e["state"] == "failed"], 30)
    assert entries, log(api.server, wh)
    assert entries[0]["attempts"] == 4 and entries[0]["status"] == 500 and "try later" in entries[0]["error"]
    assert len(receiver.of(id)) == 4
    remove(api, wh)


def test_redirects_are_not_followed_and_long_answers_are_cut(api, receiver):
    wh, _ = create(api, receiver.url, ["email.sent"])
    receiver.fail(1, status=302, body=b"moved")
    id = api.send(subject="moved", text="hi")
    assert wait_for(lambda: len(receiver.of(id)) >= 2, 20)  # the 302 counts as a failure; then 200
    assert [r["path"] for r in receiver.requests] == ["/hook", "/hook"]  # never /elsewhere
    # 2xx with an answer far over the 64 KiB read: delivered all the same
    receiver.fail(1, status=200, body=b"x" * (1 << 20))
    id2 = api.send(subject="chatty", text="hi")
    assert wait_for(lambda: receiver.of(id2), 20)
    entries = wait_for(lambda: [e for e in log(api.server, wh) if e["email_id"] == id2 and e["state"] == "delivered"],
                       10)
    assert entries and entries[0]["attempts"] == 1 and entries[0]["status"] == 200, log(api.server, wh)
    assert len(receiver.of(id2)) == 1
    first = [e for e in log(api.server, wh) if e["email_id"] == id]
    assert first[0]["state"] == "delivered" and first[0]["attempts"] == 2, first
    remove(api, wh)


def test_https_certificates_are_verified(api):
    # the server's own self-signed certificate: no client that checks certificates accepts it
    tls = Receiver(tls=(api.server.cert, os.path.join(api.server.dir, "tls", "key.pem")))
    try:
        wh, _ = create(api, tls.url, ["email.sent"])
        api.send(subject="tls", text="hi")
        entries = wait_for(lambda: [e for e in log(api.server, wh) if e["error"]], 20)
        assert entries and "certificate" in entries[0]["error"].lower(), log(api.server, wh)
        assert not tls.requests
        remove(api, wh)
    finally:
        tls.close()


def test_disabled_webhook_gets_nothing(api):
    on, off = Receiver(), Receiver()
    try:
        wh_on, _ = create(api, on.url, ["email.sent", "email.delivered"])
        wh_off, _ = create(api, off.url, ["email.sent", "email.delivered"])
        (r,) = api.sdk(("webhooks.update", wh_off, {"status": "disabled"}))
        assert r["error"] is None and r["data"] == {"object": "webhook", "id": wh_off}, r
        id = api.send(subject="quiet", text="hi")
        assert wait_for(lambda: len(on.of(id)) >= 2, 20)
        assert holds_for(lambda: not off.requests, 1.0)
        # enabled again, it hears of what happens from then on only
        (r,) = api.sdk(("webhooks.update", wh_off, {"status": "enabled"}))
        assert r["error"] is None, r
        id2 = api.send(subject="loud", text="hi")
        assert wait_for(lambda: len(off.of(id2)) >= 2, 20)
        assert not off.of(id)
        remove(api, wh_on)
        remove(api, wh_off)
    finally:
        on.close()
        off.close()


def test_webhooks_crud_through_the_sdk(api):
    a, _ = create(api, "https://hooks.example/a", ["email.sent"])
    b, secret_b = create(api, "https://hooks.example/b", ["email.delivered", "email.bounced"])
    (listed, got, page) = api.sdk(("webhooks.list",), ("webhooks.get", b), ("webhooks.list", {"limit": 1}))
    assert listed["error"] is None and listed["data"]["object"] == "list", listed
    ids = [w["id"] for w in listed["data"]["data"]]
    assert ids.index(b) < ids.index(a)  # newest first
    item = next(w for w in listed["data"]["data"] if w["id"] == b)
    assert set(item) == {"id", "endpoint", "created_at", "status", "events"}, item
    assert item["endpoint"] == "https://hooks.example/b" and item["status"] == "enabled"
    assert item["events"] == ["email.delivered", "email.bounced"] and ISO.match(item["created_at"])
    assert got["error"] is None, got
    assert got["data"] == dict(item, object="webhook", signing_secret=secret_b), got
    assert page["data"]["has_more"] is True and len(page["data"]["data"]) == 1

    (upd, after, rot, after2) = api.sdk(
        ("webhooks.update", b, {"endpoint": "https://hooks.example/b2", "events": ["email.failed"], "status": "disabled"}),
        ("webhooks.get", b), ("webhooks.rotateSigningSecret", b), ("webhooks.get", b))
    assert upd["data"] == {"object": "webhook", "id": b}, upd
    d = after["data"]
    assert d["endpoint"] == "https://hooks.example/b2" and d["events"] == ["email.failed"] and d["status"] == "disabled"
    assert rot["error"] is None and rot["data"]["object"] == "webhook" and rot["data"]["id"] == b, rot
    assert rot["data"]["signing_secret"].startswith("whsec_") and rot["data"]["signing_secret"] != secret_b
    assert after2["data"]["signing_secret"] == rot["data"]["signing_secret"]

    (rm, gone, rm_again) = api.sdk(("webhooks.remove", b), ("webhooks.get", b), ("webhooks.remove", b))
    assert rm["error"] is None and rm["data"] == {"object": "webhook", "id": b, "deleted": True}, rm
    assert gone["data"] is None and gone["error"]["statusCode"] == 404 and gone["error"]["name"] == "not_found", gone
    assert rm_again["error"]["statusCode"] == 404
    remove(api, a)


@pytest.mark.parametrize("body,field,name", [
    ({"events": ["email.sent"]}, "endpoint", "missing_required_field"),
    ({"endpoint": "https://hooks.example/"}, "events", "missing_required_field"),
    ({"endpoint": "ftp://hooks.example/", "events": ["email.sent"]}, "endpoint", "validation_error"),
    ({"endpoint": "https://user:pw@hooks.example/", "events": ["email.sent"]}, "endpoint", "validation_error"),
    ({"endpoint": "https://hooks.example/" + "x" * 2100, "events": ["email.sent"]}, "endpoint", "validation_error"),
    ({"endpoint": 7, "events": ["email.sent"]}, "endpoint", "validation_error"),
    ({"endpoint": "https://hooks.example/", "events": []}, "events", "validation_error"),
    ({"endpoint": "https://hooks.example/", "events": ["email.queued"]}, "events", "validation_error"),
    ({"endpoint": "https://hooks.example/", "events": "email.sent"}, "events", "validation_error"),
])
def test_create_is_validated(api, body, field, name):
    r = api.curl("POST", "/webhooks", body=body)
    assert r.status == 422 and r.json["name"] == name and field in r.json["message"], r


def test_only_full_access_keys(api):
    sending = api.key_create("sender", "--permission", "sending_access")
    r = api.curl("GET", "/webhooks", key=sending)
    assert r.status == 403 and r.json["name"] == "restricted_api_key", r
    r = api.curl("POST", "/webhooks", body={"endpoint": "https://h.example/", "events": ["email.sent"]}, key=sending)
    assert r.status == 403
    assert api.curl("GET", "/webhooks", key=None).status == 401
    assert api.curl("GET", "/webhooks/not-a-uuid").status == 404
    r = api.curl("PATCH", "/webhooks/00000000-0000-4000-8000-000000000000", body={"status": "paused"})
    assert r.status == 422 and "status" in r.json["message"], r


def test_cli_add_list_test_log_del(api, receiver):
    out = api.server.cli("webhook", "add", receiver.url, "--events", "email.delivered,email.sent").stdout
    wh = re.search(r"^id\s+(\S+)$", out, re.M).group(1)
    secret = re.search(r"^secret\s+(whsec_\S+)$", out, re.M).group(1)
    listed = [json.loads(line) for line in api.server.cli("webhook", "list", "--json").stdout.splitlines()]
    mine = next(w for w in listed if w["id"] == wh)
    assert mine["endpoint"] == receiver.url and mine["events"] == ["email.delivered", "email.sent"]
    assert mine["status"] == "enabled"
    t = api.server.cli("webhook", "test", wh)
    assert "HTTP 200" in t.stdout, t.stdout
    (req,) = [r for r in receiver.requests if json.loads(r["body"])["data"]["subject"] == "mailwerk webhook test"]
    assert json.loads(req["body"])["type"] == "email.sent"
    assert_verified(secret, [req])
    assert log(api.server, wh) == []  # a test is not recorded
    receiver.fail(1)
    bad = api.server.cli("webhook", "test", wh, check=False)
    assert bad.returncode == 1 and "HTTP 500" in bad.stdout
    assert "deleted webhook %s" % wh in api.server.cli("webhook", "del", wh).stdout
    assert api.server.cli("webhook", "del", wh, check=False).returncode == 1
    assert api.server.cli("webhook", "add", "gopher://x/", check=False).returncode == 2
    assert api.server.cli("webhook", "add", receiver.url, "--events", "email.nope", check=False).returncode == 2


def test_kill9_while_the_post_is_in_flight(tmp_path):
    """The event is recorded and its post is under way when the server dies: after the restart
    it is posted again (same webhook-id), and the receiver, healthy now, takes it."""
    receiver = Receiver()
    s = Server(tmp_path, overrides=["api.rate_limit=none", "webhooks.allow_private=yes", RETRY,
                                    "webhooks.timeout=60s"]).start()
    try:
        api = Api(s, s.cli("apikey", "create", "tests", "--quiet").stdout.strip())
        wh, secret = create(api, receiver.url, ["email.delivered"])
        receiver.hang()
        id = api.send(subject="crash", text="hi")
        api.wait_event(id, "delivered")
        assert wait_for(lambda: receiver.of(id), 20)  # the post arrived and waits for its answer
        (pending,) = log(s, wh)
        assert pending["state"] == "pending" and pending["attempts"] == 0
        s.kill()
        receiver.release()
        s.start()
        assert wait_for(lambda: len(receiver.of(id)) >= 2, 20), receiver.requests
        got = receiver.of(id)
        assert got[0]["headers"]["webhook-id"] == got[1]["headers"]["webhook-id"]
        assert_verified(secret, got[1:])
        entries = wait_for(lambda: [e for e in log(s, wh) if e["state"] == "delivered"], 10)
        assert entries and entries[0]["attempts"] == 1, log(s, wh)
        assert holds_for(lambda: len(receiver.of(id)) == 2, 1.5)
    finally:
        if s.proc is not None:
            s.stop()
        receiver.close()


def metrics(api):
    """GET /metrics through the Prometheus client library's parser: {(name, labels): value}."""
    r = api.curl("GET", "/metrics", key=None)
    assert r.status == 200, r
    return {(x.name, frozenset(x.labels.items())): x.value
            for f in text_string_to_metric_families(r.raw.decode()) for x in f.samples}


def test_metrics_backlog_and_failures(tmp_path):
    """mailwerk_webhook_backlog counts a delivery while its post hangs; a receiver that never
    accepts is given up after the one retry of the schedule, and that shows in
    mailwerk_webhook_failures_total and the attempts by result, with the backlog back at 0."""
    receiver = Receiver()
    s = Server(tmp_path, overrides=["api.rate_limit=none", "webhooks.allow_private=yes",
                                    "webhooks.retry_schedule=1s", "webhooks.timeout=60s"]).start()
    try:
        api = Api(s, s.cli("apikey", "create", "tests", "--quiet").stdout.strip())

        def attempts(m, result):
            return m.get(("mailwerk_webhook_attempts_total", frozenset({("result", result)})))

        m = metrics(api)
        assert m[("mailwerk_webhook_backlog", frozenset())] == 0
        assert m[("mailwerk_webhook_failures_total", frozenset())] == 0
        wh, _ = create(api, receiver.url, ["email.delivered"])
        receiver.hang()
        id = api.send(subject="stuck", text="hi")
        assert wait_for(lambda: receiver.of(id), 20)  # posted, and waiting for its answer
        m = metrics(api)
        assert m[("mailwerk_webhook_backlog", frozenset())] >= 1
        assert attempts(m, "retry") == 0 and attempts(m, "failed") == 0  # nothing recorded yet
        # the hung post is closed unanswered (a failed attempt), the retry is answered 500: given up
        receiver.fail(100)
        receiver.release()
        m = wait_for(lambda: (lambda m: m if m[("mailwerk_webhook_failures_total", frozenset())] >= 1
                              else None)(metrics(api)), 20)
        assert m, log(s, wh)
        assert m[("mailwerk_webhook_failures_total", frozenset())] == 1
        assert attempts(m, "failed") == 1 and attempts(m, "retry") == 1 and attempts(m, "delivered") == 0
        assert m[("mailwerk_webhook_backlog", frozenset())] == 0
        assert [e["state"] for e in log(s, wh)] == ["failed"]
        assert len(receiver.of(id)) == 2
    finally:
        s.stop()
        receiver.close()


def test_private_endpoints_refused_without_allow_private(tmp_path):
    receiver = Receiver()
    s = Server(tmp_path, overrides=["api.rate_limit=none", RETRY]).start()
    try:
        api = Api(s, s.cli("apikey", "create", "tests", "--quiet").stdout.strip())
        port = receiver.httpd.server_address[1]
        for endpoint, kind in [("http://127.0.0.1:%d/hook" % port, "loopback"), ("http://[::1]/hook", "loopback"),
                               ("http://169.254.169.254/latest", "link-local"), ("https://10.1.2.3/", "private"),
                               ("http://100.64.0.1/", "CGNAT"), ("http://[fd00::1]/", "unique-local"),
                               ("http://[::ffff:127.0.0.1]/", "loopback"), ("http://0.0.0.0/", "unspecified"),
                               ("http://2130706433/", "IPv4")]:
            r = api.curl("POST", "/webhooks", body={"endpoint": endpoint, "events": ["email.sent"]})
            assert r.status == 422 and r.json["name"] == "validation_error", (endpoint, r)
            assert "endpoint" in r.json["message"] and kind in r.json["message"], (endpoint, r)
        (r,) = api.sdk(("webhooks.create", {"endpoint": "http://127.0.0.1:%d/" % port, "events": ["email.sent"]}))
        assert r["error"]["statusCode"] == 422, r
        # a name is judged when connecting, after DNS: localhost is 127.0.0.1, so nothing is sent
        wh, _ = create(api, "http://localhost:%d/hook" % port, ["email.sent"])
        id = api.send(subject="ssrf", text="hi")
        entries = wait_for(lambda: [e for e in log(s, wh) if e["error"]], 20)
        assert entries, log(s, wh)
        assert "refused to connect" in entries[0]["error"] and "loopback" in entries[0]["error"], entries
        assert not receiver.requests
        assert s.cli("webhook", "add", "http://127.0.0.1:%d/" % port, check=False).returncode == 2
        assert api.email(id)["last_event"] in ("sent", "delivered")
    finally:
        s.stop()
        receiver.close()
