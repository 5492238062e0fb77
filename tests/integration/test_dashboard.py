"""The web dashboard over plain HTTP (curl): its files are served at / and /dashboard/ with their
types and a strict Content-Security-Policy; signing in with an admin account's password or a
full-access API key gives a session cookie (HttpOnly, SameSite=Strict, Path=/, Secure on TLS);
the cookie stands in for an API key on the JSON API, but a change made with it needs the session's
CSRF token; failed sign-ins are delayed as SMTP AUTH's are; logout ends the session; `[api]
dashboard = no` turns it all off."""
import json
import os
import re
import subprocess
import time

import pytest

from apifixture import Api, parse_http
from conftest import DOMAIN, Server, free_port
from mtafixture import wait_for

ADMIN = "boss@" + DOMAIN
ADMIN_PASSWORD = "correct horse battery staple"
PLAIN = "plain@" + DOMAIN
PLAIN_PASSWORD = "not an admin at all"


def add_user(server, address, password, *flags):
    server.cli("user", "add", address, "--password-stdin", *flags, input=password + "\n")


@pytest.fixture(scope="module")
def dash(tmp_path_factory):
    https_port = free_port()
    s = Server(tmp_path_factory.mktemp("dash"), overrides=["api.rate_limit=none",
                                                          "listen.https=127.0.0.1:%d" % https_port])
    add_user(s, ADMIN, ADMIN_PASSWORD, "--admin")
    add_user(s, PLAIN, PLAIN_PASSWORD)
    s.start()
    a = Api(s, s.cli("apikey", "create", "tests", "--quiet").stdout.strip())
    a.https = "https://127.0.0.1:%d" % https_port
    yield a
    s.stop()


def req(api, method, path, body=None, cookie=None, csrf=None, base=None, headers=(), source=None):
    """A request without an API key: curl -i, with the session cookie and CSRF token if given, from
    the loopback address source if given."""
    args = ["curl", "-s", "-i", "-k", "--path-as-is", "--max-time", "30", "-X", method]
    if source:
        args += ["--interface", source]
    for h in headers:
        args += ["-H", h]
    if cookie:
        args += ["-H", "Cookie: mailwerk_session=" + cookie]
    if csrf:
        args += ["-H", "X-CSRF-Token: " + csrf]
    data = None
    if body is not None:
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        args += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
    p = subprocess.run(args + [(base or api.base) + path], input=data, capture_output=True, timeout=60)
    return parse_http(p.stdout)


def set_cookie(reply):
    """The Set-Cookie field's name=value and its attributes, lower-cased ({"httponly": True, ...})."""
    raw = reply.headers.get("set-cookie", "")
    parts = [p.strip() for p in raw.split(";")]
    name, _, value = parts[0].partition("=")
    attrs = {}
    for p in parts[1:]:
        k, _, v = p.partition("=")
        attrs[k.lower()] = v if v else True
    return name, value, attrs


def login(api, body, base=None):
    r = req(api, "POST", "/dashboard/session", body, base=base)
    assert r.status == 200, r
    name, token, attrs = set_cookie(r)
    assert name == "mailwerk_session" and re.fullmatch(r"[0-9a-f]{64}", token), r.headers
    return token, r.json["csrf_token"], attrs, r


def test_files_are_served_with_their_types_and_a_strict_policy(dash):
    for path, ctype in (("/", "text/html; charset=utf-8"), ("/dashboard/app.js", "text/javascript; charset=utf-8"),
                        ("/dashboard/app.css", "text/css; charset=utf-8"), ("/dashboard/icon.svg", "image/svg+xml")):
        r = req(dash, "GET", path)
        assert r.status == 200, (path, r)
        assert r.headers["content-type"] == ctype, (path, r.headers)
        csp = dict(d.strip().split(" ", 1) for d in r.headers["content-security-policy"].split(";"))
        assert csp["default-src"] == "'self'" and csp["script-src"] == "'self'", csp
        assert csp["frame-ancestors"] == "'none'" and csp["object-src"] == "'none'" and csp["base-uri"] == "'none'"
        assert "unsafe-inline" not in csp["script-src"] and "unsafe-eval" not in r.headers["content-security-policy"]
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["x-frame-options"] == "DENY"
    page = req(dash, "GET", "/").raw.decode()
    # no inline script anywhere: the policy would refuse it
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page) is None, page
    assert '<html lang="en">' in page and 'name="viewport"' in page
    missing = req(dash, "GET", "/dashboard/nothing.js")
    assert missing.status == 404 and missing.headers["x-content-type-options"] == "nosniff"
    assert req(dash, "POST", "/").status == 405
    # the API is where it was
    assert req(dash, "GET", "/healthz").status == 200


def test_password_login_gives_a_strict_cookie_and_a_full_access_caller(dash):
    token, csrf, attrs, r = login(dash, {"email": ADMIN, "password": ADMIN_PASSWORD})
    assert attrs.get("httponly") is True and attrs.get("samesite") == "Strict" and attrs.get("path") == "/", attrs
    assert "secure" not in attrs, "Secure on a plain-HTTP listener would lose the cookie"
    assert 0 < int(attrs["max-age"]) <= 12 * 3600
    assert r.headers["cache-control"] == "no-store"
    assert r.json["user"] == ADMIN and r.json["kind"] == "account" and re.fullmatch(r"[0-9a-f]{64}", csrf)
    assert csrf != token
    who = req(dash, "GET", "/dashboard/session", cookie=token)
    assert who.status == 200 and who.json["csrf_token"] == csrf and who.json["user"] == ADMIN
    # the JSON API takes the cookie instead of a key: reading needs no token
    lst = req(dash, "GET", "/emails", cookie=token)
    assert lst.status == 200 and lst.json["object"] == "list", lst
    keys = req(dash, "GET", "/api-keys", cookie=token)
    assert keys.status == 200 and any(k["name"] == "tests" for k in keys.json["data"]), keys
    # a wrong or made-up cookie is no caller
    assert req(dash, "GET", "/emails", cookie="0" * 64).status == 401
    assert req(dash, "GET", "/emails", cookie=token[:-1]).status == 401


def test_secure_cookie_on_tls(dash):
    _, _, attrs, _ = login(dash, {"email": ADMIN, "password": ADMIN_PASSWORD}, base=dash.https)
    assert attrs.get("secure") is True and attrs.get("httponly") is True and attrs.get("samesite") == "Strict"


def test_a_change_needs_the_csrf_token(dash):
    token, csrf, _, _ = login(dash, {"email": ADMIN, "password": ADMIN_PASSWORD})
    target = "csrf-target@example.net"
    for bad in (None, "", "0" * 64, csrf[:-1], csrf.upper() if csrf != csrf.upper() else "f" * 64):
        r = req(dash, "POST", "/suppressions", {"email": target}, cookie=token, csrf=bad)
        assert r.status == 403 and r.json["name"] == "invalid_csrf_token", (bad, r)
    assert req(dash, "GET", "/suppressions/" + target, cookie=token).status == 404, "a refused change was made"
    ok = req(dash, "POST", "/suppressions", {"email": target}, cookie=token, csrf=csrf)
    assert ok.status in (200, 201), ok
    assert req(dash, "GET", "/suppressions/" + target, cookie=token).status == 200
    # DELETE and PATCH too
    assert req(dash, "DELETE", "/suppressions/" + target, cookie=token).status == 403
    assert req(dash, "DELETE", "/suppressions/" + target, cookie=token, csrf=csrf).status == 200
    # another session's token does not do
    _, other_csrf, _, _ = login(dash, {"email": ADMIN, "password": ADMIN_PASSWORD})
    assert req(dash, "POST", "/domains", {"name": "csrf.test"}, cookie=token, csrf=other_csrf).status == 403
    # a key in the Authorization field needs no token: no browser sends it on its own
    assert dash.curl("POST", "/suppressions", {"email": target}).status in (200, 201)


def test_logout_ends_the_session(dash):
    token, csrf, _, _ = login(dash, {"email": ADMIN, "password": ADMIN_PASSWORD})
    assert req(dash, "DELETE", "/dashboard/session", cookie=token).status == 403  # without the token
    assert req(dash, "GET", "/emails", cookie=token).status == 200
    out = req(dash, "DELETE", "/dashboard/session", cookie=token, csrf=csrf)
    assert out.status == 204, out
    name, value, attrs = set_cookie(out)
    assert name == "mailwerk_session" and value == "" and attrs["max-age"] == "0"
    assert req(dash, "GET", "/emails", cookie=token).status == 401
    assert req(dash, "GET", "/dashboard/session", cookie=token).status == 401


def test_who_may_sign_in(dash):
    r = req(dash, "POST", "/dashboard/session", {"email": PLAIN, "password": PLAIN_PASSWORD})
    assert r.status == 403 and r.json["name"] == "not_admin" and "set-cookie" not in r.headers, r
    r = req(dash, "POST", "/dashboard/session", {"email": ADMIN, "password": "wrong"})
    assert r.status == 401 and "set-cookie" not in r.headers, r
    r = req(dash, "POST", "/dashboard/session", {"email": "nobody@" + DOMAIN, "password": "x"})
    assert r.status == 401
    # a full-access key signs in; a sending key does not
    token, _, _, ok = login(dash, {"api_key": dash.key})
    assert ok.json["kind"] == "api_key" and "tests" in ok.json["user"]
    sending = dash.key_create("send-only", "--permission", "sending_access")
    r = req(dash, "POST", "/dashboard/session", {"api_key": sending})
    assert r.status == 401 and "set-cookie" not in r.headers
    # malformed sign-ins
    for body in ('{"email": "a@b"}', '{"api_key": 5}', '{"email": "%s", "password": "x", "extra": 1}' % ADMIN,
                 '{"api_key": "k", "password": "x"}', "[]", "{", ""):
        r = req(dash, "POST", "/dashboard/session", body)
        assert r.status in (400, 422), (body, r)
    r = req(dash, "POST", "/dashboard/session", headers=["Content-Type: text/plain"])
    assert r.status == 415
    # a session made with a key ends when the key is revoked
    extra = dash.key_create("short-lived")
    token, _, _, _ = login(dash, {"api_key": extra})
    assert req(dash, "GET", "/emails", cookie=token).status == 200
    key_id = [k["id"] for k in dash.curl("GET", "/api-keys").json["data"] if k["name"] == "short-lived"][0]
    assert dash.curl("DELETE", "/api-keys/" + key_id).status == 200
    assert req(dash, "GET", "/emails", cookie=token).status == 401


def test_admin_flag_from_the_cli_decides(dash):
    s = dash.server
    s.cli("user", "admin", PLAIN, "yes")
    token, _, _, _ = login(dash, {"email": PLAIN, "password": PLAIN_PASSWORD})
    assert req(dash, "GET", "/emails", cookie=token).status == 200
    s.cli("user", "admin", PLAIN, "no")
    # taking the flag away ends the sessions it made
    assert req(dash, "GET", "/emails", cookie=token).status == 401
    bad = s.cli("user", "admin", PLAIN, "maybe", check=False)
    assert bad.returncode == 2 and "yes or no" in bad.stderr
    bad = s.cli("user", "passwd", PLAIN, "--admin", check=False)
    assert bad.returncode == 2


def test_failed_logins_are_delayed_more_each_time(dash):
    """server/login.c, at the test servers' scale (100 ms doubling up to 400 ms; the defaults are
    2 s to 15 s): from an address and for an account that have not failed yet in this module."""
    times, who = [], "guesser@" + DOMAIN
    for password in ("guess-1", "guess-2", "guess-3", "guess-3"):
        t0 = time.monotonic()
        r = req(dash, "POST", "/dashboard/session", {"email": who, "password": password}, source="127.0.0.9",
                headers=["X-Forwarded-For: 192.0.2.1"])  # ignored: the client is its address
        times.append(time.monotonic() - t0)
        assert r.status == 401
    assert times[0] >= 0.1 - 0.02 and times[1] >= 0.2 - 0.02 and times[2] >= 0.4 - 0.02, times
    fails = re.findall(r"event=login result=fail user=guesser@\S+ client=127\.0\.0\.9 failures=(\d+) delay_ms=(\d+)",
                       dash.server.log_text())
    # the same wrong password again costs the delay reached and is not counted
    assert fails == [("1", "100"), ("2", "200"), ("3", "400"), ("3", "400")], fails
    for _ in range(2):
        r = req(dash, "POST", "/dashboard/session", {"api_key": "re_" + "x" * 43})
        assert r.status == 401
    assert "event=login result=fail user=api-key" in dash.server.log_text()
    assert ADMIN_PASSWORD not in dash.server.log_text()


def test_queue_list_retry_and_delete(dash):
    token, csrf, _, _ = login(dash, {"email": ADMIN, "password": ADMIN_PASSWORD})
    # DNS never answers here: mail to another domain waits in the queue
    dash.send(to=["someone@example.net"], subject="waiting", text="x")
    assert req(dash, "GET", "/dashboard/queue").status == 401
    def queued():
        r = req(dash, "GET", "/dashboard/queue", cookie=token)
        assert r.status == 200, r
        return [m for m in r.json["data"] if any(x["address"] == "someone@example.net" for x in m["recipients"])]
    msgs = wait_for(queued, 20)
    assert len(msgs) == 1, msgs
    m = msgs[0]
    assert m["id"] in {e["id"] for e in dash.server.queue()}
    assert m["recipients"][0]["state"] in ("pending", "deferred", "in_flight") and m["size"] > 0, m
    assert req(dash, "POST", "/dashboard/queue/retry", {}, cookie=token).status == 403
    r = req(dash, "POST", "/dashboard/queue/retry", {}, cookie=token, csrf=csrf)
    assert r.status == 200 and r.json["retried"] >= 1, r
    assert req(dash, "DELETE", "/dashboard/queue/" + m["id"], cookie=token).status == 403
    assert m["id"] in {e["id"] for e in dash.server.queue()}
    r = req(dash, "DELETE", "/dashboard/queue/" + m["id"], cookie=token, csrf=csrf)
    assert r.status == 200 and r.json["deleted"] is True, r
    assert m["id"] not in {e["id"] for e in dash.server.queue()}
    assert req(dash, "DELETE", "/dashboard/queue/" + m["id"], cookie=token, csrf=csrf).status == 404
    assert req(dash, "DELETE", "/dashboard/queue/not-an-id", cookie=token, csrf=csrf).status == 404


def test_accounts_and_aliases_with_the_session(dash):
    """The accounts page is the API's /users and /aliases, called with the cookie."""
    token, csrf, _, _ = login(dash, {"email": ADMIN, "password": ADMIN_PASSWORD})
    s = dash.server
    r = req(dash, "GET", "/users", cookie=token)
    assert r.status == 200, r
    got = {u["address"]: u for u in r.json["data"]}
    assert got[ADMIN]["admin"] is True and got[PLAIN]["admin"] is False
    new = "carol@" + DOMAIN
    body = {"address": new, "password": "a fine password"}
    assert req(dash, "POST", "/users", body, cookie=token).status == 403
    assert new not in s.cli("user", "list").stdout.split()
    assert req(dash, "POST", "/users", body, cookie=token, csrf=csrf).status in (200, 201)
    assert new in s.cli("user", "list").stdout.split()
    assert req(dash, "POST", "/dashboard/session", {"email": new, "password": "a fine password"}).status == 403
    path = "/users/" + new.replace("@", "%40")
    assert req(dash, "PATCH", path, {"admin": True}, cookie=token).status == 403
    assert req(dash, "PATCH", path, {"admin": True}, cookie=token, csrf=csrf).status == 200
    assert req(dash, "POST", "/dashboard/session", {"email": new, "password": "a fine password"}).status == 200
    assert req(dash, "DELETE", path, cookie=token).status == 403
    assert req(dash, "DELETE", path, cookie=token, csrf=csrf).status == 200
    assert new not in s.cli("user", "list").stdout.split()
    alias = {"address": "team@" + DOMAIN, "targets": [ADMIN, "someone@example.net"]}
    assert req(dash, "POST", "/aliases", alias, cookie=token).status == 403
    assert req(dash, "POST", "/aliases", alias, cookie=token, csrf=csrf).status in (200, 201)
    assert "team@" + DOMAIN in s.cli("alias", "list").stdout
    assert req(dash, "DELETE", "/aliases/team%40" + DOMAIN, cookie=token, csrf=csrf).status == 200


def test_dkim_rotation_with_the_session(dash):
    """The domain page's DKIM keys are the API's /domains/{id}/dkim-keys, called with the cookie."""
    token, csrf, _, _ = login(dash, {"email": ADMIN, "password": ADMIN_PASSWORD})
    path = "/domains/%s/dkim-keys" % DOMAIN
    r = req(dash, "GET", path, cookie=token)
    assert r.status == 200, r
    (old,) = r.json["data"]  # the key mailwerk init made
    assert old["active"] is True and old["value"].startswith("v=DKIM1; k=rsa; p=")
    assert req(dash, "POST", path, {"selector": "next"}, cookie=token).status == 403
    assert not os.path.exists(os.path.join(dash.server.dir, "dkim", DOMAIN, "next.pem"))
    r = req(dash, "POST", path, {"selector": "next"}, cookie=token, csrf=csrf)
    assert r.status == 201 and r.json["active"] is False, r
    assert req(dash, "POST", path + "/next/activate", {}, cookie=token).status == 403
    r = req(dash, "POST", path + "/next/activate", {}, cookie=token, csrf=csrf)
    assert r.status == 200 and r.json["active"] is True, r
    keys = {k["selector"]: k["active"] for k in req(dash, "GET", path, cookie=token).json["data"]}
    assert keys == {"next": True, old["selector"]: False}, keys
    assert req(dash, "POST", path + "/%s/activate" % old["selector"], {}, cookie=token, csrf=csrf).status == 200


def test_dashboard_can_be_turned_off(tmp_path):
    s = Server(tmp_path, overrides=["api.dashboard=no"]).start()
    try:
        api = Api(s, None)
        assert req(api, "GET", "/").status == 404
        assert req(api, "GET", "/dashboard/app.js").status == 404
        assert req(api, "POST", "/dashboard/session", {"api_key": "x"}).status == 404
        assert req(api, "GET", "/healthz").status == 200
    finally:
        s.stop()
