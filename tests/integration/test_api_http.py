"""The HTTP API's wire with curl and raw sockets: every error status in Resend's shape
({"statusCode", "name", "message"}), the limits that refuse before buffering, idempotency,
header injection, keep-alive and pipelining, TLS, the per-key rate limit and a full disk."""
import json
import re
import socket
import ssl
import subprocess
import time

import pytest

from apifixture import Api, SENDER
from conftest import Server

GOOD = {"from": SENDER, "to": SENDER, "subject": "s", "text": "t"}


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("apihttp"),
               overrides=["api.rate_limit=none", "smtp.max_message_size=65536",
                          "api.request_timeout=3s"]).start()
    a = Api(s, s.cli("apikey", "create", "tests", "--quiet").stdout.strip())
    yield a
    s.stop()


def error_of(r, status, name):
    assert r.status == status, r
    assert r.json == {"statusCode": status, "name": name, "message": r.json["message"]}, r
    assert r.headers["content-type"] == "application/json"
    return r.json["message"]


def raw_exchange(port, data, timeout=10.0):
    """Sends data on a new connection and reads until the server closes it (bounded)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as c:
        c.sendall(data)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = c.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
        return out


def test_healthz_needs_no_key(api):
    r = api.curl("GET", "/healthz", key=None)
    assert r.status == 200 and r.json == {"status": "ok"}


def test_missing_key_is_401(api):
    msg = error_of(api.curl("POST", "/emails", GOOD, key=None), 401, "missing_api_key")
    assert "Authorization: Bearer" in msg


def test_invalid_key_is_403(api):
    error_of(api.curl("POST", "/emails", GOOD, key="re_" + "x" * 43), 403, "invalid_api_key")
    error_of(api.curl("POST", "/emails", GOOD, key="nonsense"), 403, "invalid_api_key")
    r = api.curl("POST", "/emails", GOOD, key=None, headers=["Authorization: Basic Zm9vOmJhcg=="])
    error_of(r, 403, "invalid_api_key")


def test_sending_key_cannot_read(api):
    token = api.key_create("send-only", "--permission", "sending_access")
    error_of(api.curl("GET", "/emails", key=token), 403, "restricted_api_key")
    assert api.curl("POST", "/emails", GOOD, key=token).status == 200


def test_malformed_json_is_400(api):
    msg = error_of(api.curl("POST", "/emails", b'{"from": '), 400, "validation_error")
    assert "line 1" in msg
    error_of(api.curl("POST", "/emails", b'{"from": "a", "from": "b"}'), 400, "validation_error")
    error_of(api.curl("POST", "/emails", b"[" * 5000 + b"]" * 5000), 400, "validation_error")


def test_invalid_fields_are_422_naming_the_field(api):
    msg = error_of(api.curl("POST", "/emails", {"from": SENDER, "subject": "s", "text": "t"}), 422,
                   "missing_required_field")
    assert "`to`" in msg
    error_of(api.curl("POST", "/emails", dict(GOOD, **{"from": "not an address"})), 422, "invalid_from_address")
    msg = error_of(api.curl("POST", "/emails", dict(GOOD, tags=[{"name": "bad name!", "value": "x"}])), 422,
                   "validation_error")
    assert "tags[0].name" in msg
    msg = error_of(api.curl("POST", "/emails", dict(GOOD, to=["a%d@x.test" % i for i in range(51)])), 422,
                   "validation_error")
    assert "50" in msg
    error_of(api.curl("POST", "/emails", dict(GOOD, attachments=[{"filename": "a", "content": "!!!"}])), 422,
             "invalid_attachment")


def test_header_injection_is_refused(api):
    for body in (dict(GOOD, headers={"X-Ok": "a\r\nBcc: victim@x.test"}),
                 dict(GOOD, headers={"X-Bad\r\nBcc": "victim@x.test"}),
                 dict(GOOD, subject="hi\r\nBcc: victim@x.test"),
                 dict(GOOD, headers={"Bcc": "victim@x.test"})):
        error_of(api.curl("POST", "/emails", body), 422, "validation_error")
    assert not any(b"victim@x.test" in m["data"] for m in api.server.messages().values())


def test_unknown_path_404_and_wrong_method_405(api):
    error_of(api.curl("GET", "/nothing"), 404, "not_found")
    error_of(api.curl("GET", "/emails/00000000-0000-4000-8000-000000000000"), 404, "not_found")
    r = api.curl("DELETE", "/emails")
    error_of(r, 405, "method_not_allowed")
    assert "GET" in r.headers["allow"] and "POST" in r.headers["allow"]


def test_idempotency_same_body_same_id_other_body_409(api):
    before = len(api.server.messages())
    body = dict(GOOD, subject="idem-curl")
    a = api.curl("POST", "/emails", body, headers=["Idempotency-Key: k-1"])
    b = api.curl("POST", "/emails", body, headers=["Idempotency-Key: k-1"])
    assert a.status == 200 and b.status == 200 and a.json == b.json, (a, b)
    error_of(api.curl("POST", "/emails", dict(body, text="other"), headers=["Idempotency-Key: k-1"]), 409,
             "invalid_idempotent_request")
    error_of(api.curl("POST", "/emails", body, headers=["Idempotency-Key: " + "k" * 257]), 400,
             "invalid_idempotency_key")
    found = [m for m in api.server.messages().values() if b"Subject: idem-curl" in m["data"]]
    assert len(found) == 1 and len(api.server.messages()) == before + 1


def test_oversized_body_refused_before_it_is_read(api):
    # the limit is [smtp] max_message_size in base64 plus room for the JSON: about 1.1 MB here
    head = ("POST /emails HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"
            "Content-Length: 50000000\r\n\r\n" % api.key).encode()
    out = raw_exchange(api.server.http_port, head)  # not one octet of the body is sent
    assert out.startswith(b"HTTP/1.1 413 "), out[:200]
    assert json.loads(out.split(b"\r\n\r\n", 1)[1])["name"] == "validation_error"


def test_chunked_body_is_411_and_smuggling_is_400(api):
    out = raw_exchange(api.server.http_port, b"POST /emails HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                             b"0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 411 "), out[:200]
    out = raw_exchange(api.server.http_port, b"POST /emails HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                                             b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400 "), out[:200]
    out = raw_exchange(api.server.http_port, b"POST /emails HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                                             b"Content-Length: 5\r\n\r\nabcde")
    assert out.startswith(b"HTTP/1.1 400 "), out[:200]


def test_malformed_heads_are_400_and_close(api):
    for head in (b"GET /healthz HTTP/1.1\nHost: x\n\n",            # bare LF
                 b"GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n",      # space before the colon
                 b"GET /healthz HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
                 b"GET /healthz HTTP/1.1\r\n\r\n",                   # no Host
                 b"GET healthz HTTP/1.1\r\nHost: x\r\n\r\n"):
        out = raw_exchange(api.server.http_port, head)
        assert out.startswith(b"HTTP/1.1 400 "), (head, out[:200])
        assert b"Connection: close" in out
    out = raw_exchange(api.server.http_port, b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 505 ")
    out = raw_exchange(api.server.http_port, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 414 ")
    out = raw_exchange(api.server.http_port, b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 200 + b"\r\n")
    assert out.startswith(b"HTTP/1.1 431 ")


def test_keep_alive_and_pipelining_answer_in_order(api):
    req = ("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
           "GET /emails/none HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n"
           "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % api.key).encode()
    out = raw_exchange(api.server.http_port, req)
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", out)
    assert statuses == [b"200", b"404", b"200"], out
    # many pipelined requests on one connection: answered, in order, without the server recursing
    many = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 3000 + b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    out = raw_exchange(api.server.http_port, many, timeout=30)
    assert out.count(b"HTTP/1.1 200 OK") == 3001


def test_expect_100_continue(api):
    r = api.curl("POST", "/emails", GOOD, headers=["Expect: 100-continue"])
    assert r.status == 200 and "id" in r.json


def test_slow_request_gets_408(api):
    with socket.create_connection(("127.0.0.1", api.server.http_port), timeout=15) as c:
        c.sendall(b"GET /healthz HTTP/1.1\r\n")
        start = time.monotonic()
        out = b""
        while time.monotonic() - start < 12:
            try:
                c.sendall(b"X-Slow: 1\r\n")  # a field now and then keeps any idle timer from firing
            except OSError:
                break
            c.settimeout(1)
            try:
                chunk = c.recv(4096)
                if not chunk:
                    break
                out += chunk
            except socket.timeout:
                pass
            except OSError:  # reset once the server has stopped lingering
                break
            if out:
                break
        assert out.startswith(b"HTTP/1.1 408 "), out[:200]


def test_https_listener(tmp_path):
    s = Server(tmp_path, overrides=["api.rate_limit=none"])
    s.https_port = s.http_port
    s.overrides += ["listen.https=127.0.0.1:%d" % s.http_port, "listen.http="]
    orig = s.listen_lines
    s.listen_lines = lambda: {k: v for k, v in orig().items() if k != "http"}
    s.start()
    try:
        key = s.cli("apikey", "create", "tls", "--quiet").stdout.strip()
        p = subprocess.run(["curl", "-s", "-k", "-H", "Authorization: Bearer " + key, "-H",
                            "Content-Type: application/json", "--data-binary", json.dumps(GOOD),
                            "https://127.0.0.1:%d/emails" % s.http_port], capture_output=True, timeout=30)
        assert "id" in json.loads(p.stdout), p
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", s.http_port), timeout=10) as raw:
            with ctx.wrap_socket(raw) as t:
                t.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                assert t.recv(4096).startswith(b"HTTP/1.1 200 ")
        log = s.log_text()
        assert "with HTTPS" in "".join(m["data"].decode("latin-1") for m in s.messages().values())
        assert "proto=http role=https" in log
    finally:
        s.stop()


def test_rate_limit_429_with_headers(tmp_path):
    s = Server(tmp_path, overrides=["api.rate_limit=2/m"]).start()
    try:
        a = Api(s, s.cli("apikey", "create", "rl", "--quiet").stdout.strip())
        codes = [a.curl("GET", "/emails").status for _ in range(3)]
        assert codes == [200, 200, 429], codes
        r = a.curl("GET", "/emails")
        error_of(r, 429, "rate_limit_exceeded")
        assert int(r.headers["retry-after"]) >= 1
        assert r.headers["ratelimit-limit"] == "2" and r.headers["ratelimit-remaining"] == "0"
        assert int(r.headers["ratelimit-reset"]) >= 1
        # another key has its own bucket
        b = Api(s, s.cli("apikey", "create", "rl2", "--quiet").stdout.strip())
        assert b.curl("GET", "/emails").status == 200
    finally:
        s.stop()


def test_full_disk_is_503_and_nothing_is_queued(tmp_path):
    s = Server(tmp_path, overrides=["server.min_free_space=1000000G"]).start()
    try:
        a = Api(s, s.cli("apikey", "create", "full", "--quiet").stdout.strip())
        r = a.curl("POST", "/emails", GOOD)
        error_of(r, 503, "internal_server_error")
        assert "retry-after" in r.headers
        assert s.messages() == {}
        assert a.curl("GET", "/emails").json["data"] == []
    finally:
        s.stop()


def test_raw_message_is_checked_completed_and_signed(api):
    from apifixture import delivered_message, dkim_ok, parse
    raw = ("From: Demo <%s>\nTo: someone <%s>\nSubject: built by the app\nMIME-Version: 1.0\n"
           "Content-Type: text/plain; charset=utf-8\n\nHello from my own MIME.\n" % (SENDER, SENDER))
    r = api.curl("POST", "/emails/raw", {"raw": raw, "to": [SENDER]})
    assert r.status == 200, r
    e = api.wait_event(r.json["id"], "delivered")
    assert e["subject"] == "built by the app" and e["to"] == [SENDER]
    got = delivered_message(api.server, e["message_id"])
    m = parse(got)
    assert m["Date"] and m["Message-ID"] == "<%s>" % e["message_id"]  # added: the app gave none
    assert b"\r\nHello from my own MIME.\r\n" in got  # LF lines made CRLF
    assert dkim_ok(api.server, got)
    for bad, why in ((raw.replace("From: Demo <%s>\n" % SENDER, ""), "From"),
                     ("From: a@elsewhere.example\n\nx\n", None),
                     (raw.replace("Subject:", "Bcc: hidden@x.test\nSubject:"), "Bcc"),
                     (raw + "x" * 1200 + "\n", "998"),
                     (raw.replace("\n", "\r", 1), "bare CR")):
        r = api.curl("POST", "/emails/raw", {"raw": bad, "to": [SENDER]})
        assert r.status in (403, 422), (why, r)
        if why:
            assert why in r.json["message"], (why, r)
    assert api.curl("POST", "/emails/raw", {"raw": raw}).status == 422  # no envelope


def test_connection_limits_answer_in_http(tmp_path):
    s = Server(tmp_path, overrides=["server.max_connections_per_ip=2"]).start()
    try:
        held = [socket.create_connection(("127.0.0.1", s.http_port), timeout=10) for _ in range(2)]
        time.sleep(0.3)  # both counted in
        out = raw_exchange(s.http_port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 503 "), out[:200]
        assert b"Retry-After: 5" in out and json.loads(out.split(b"\r\n\r\n", 1)[1])["statusCode"] == 503
        for c in held:
            c.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            out = raw_exchange(s.http_port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            if out.startswith(b"HTTP/1.1 200 "):
                break
            time.sleep(0.1)
        assert out.startswith(b"HTTP/1.1 200 "), out[:200]
    finally:
        s.stop()
