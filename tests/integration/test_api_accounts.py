"""Mail users and aliases over the API (mailwerk's /users and /aliases, what `mailwerk user` and
`mailwerk alias` do): a user made with a password, or given one made by the server, logs in
with poplib and reads the mail smtplib sent it; the admin flag and the quota change; an alias
delivers to its targets; removal ends both. Errors for what is refused."""
import smtplib

import pytest

from apifixture import Api
from conftest import DOMAIN, Server
from mtafixture import wait_for
from test_pop3 import pop_login


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("accounts"), overrides=["api.rate_limit=none"]).start()
    yield Api(s, s.cli("apikey", "create", "t", "--quiet").stdout.strip())
    s.stop()


def send(server, rcpt, subject):
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30) as c:
        c.sendmail("someone@elsewhere.test", [rcpt], ("From: someone@elsewhere.test\r\nTo: %s\r\nSubject: %s\r\n\r\nhi\r\n"
                                                       % (rcpt, subject)).encode())


def mailbox_count(server, user, password):
    p = pop_login(server, user=user, password=password)
    try:
        return p.stat()[0]
    finally:
        p.quit()


def test_users_and_aliases(api):
    s = api.server
    r = api.curl("POST", "/users", body={"address": "ann@" + DOMAIN, "password": "correct horse battery"})
    assert r.status == 201 and r.json == {"object": "user", "address": "ann@" + DOMAIN, "admin": False, "quota": None}, r
    gen = api.curl("POST", "/users", body={"address": "bob@" + DOMAIN, "admin": True})
    assert gen.status == 201 and gen.json["admin"] is True and len(gen.json["password"]) >= 16, gen
    send(s, "ann@" + DOMAIN, "to ann")
    assert wait_for(lambda: mailbox_count(s, "ann@" + DOMAIN, "correct horse battery") == 1, 20)
    assert mailbox_count(s, "bob@" + DOMAIN, gen.json["password"]) == 0  # the password shown once works

    assert api.curl("POST", "/users", body={"address": "ann@" + DOMAIN, "password": "another one"}).status == 409
    for bad in ({"address": "x@not-local.test"}, {"address": "y@" + DOMAIN, "password": "short"}, {},
                {"address": "z@" + DOMAIN, "admin": "yes"}):
        assert api.curl("POST", "/users", body=bad).status == 422, bad

    r = api.curl("PATCH", "/users/ann@" + DOMAIN, body={"password": "a new passphrase", "admin": True, "quota": 1000000})
    assert r.status == 200 and r.json["admin"] is True and r.json["quota"] == 1000000, r
    assert mailbox_count(s, "ann@" + DOMAIN, "a new passphrase") == 1
    listed = api.curl("GET", "/users").json["data"]
    assert {"ann@" + DOMAIN, "bob@" + DOMAIN} <= {u["address"] for u in listed}
    assert api.curl("PATCH", "/users/nobody@" + DOMAIN, body={"admin": True}).status == 404

    a = api.curl("POST", "/aliases", body={"address": "team@" + DOMAIN, "targets": ["ann@" + DOMAIN, "bob@" + DOMAIN]})
    assert a.status == 201 and a.json["targets"] == ["ann@" + DOMAIN, "bob@" + DOMAIN], a
    send(s, "team@" + DOMAIN, "to the team")
    assert wait_for(lambda: mailbox_count(s, "bob@" + DOMAIN, gen.json["password"]) == 1, 20)
    assert "team@" + DOMAIN in [x["address"] for x in api.curl("GET", "/aliases").json["data"]]
    assert api.curl("POST", "/aliases", body={"address": "t2@" + DOMAIN, "targets": []}).status == 422
    assert api.curl("DELETE", "/aliases/team@" + DOMAIN).json["deleted"] is True
    assert api.curl("DELETE", "/aliases/team@" + DOMAIN).status == 404
    with smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=30) as c:
        c.ehlo("client.elsewhere.test")
        c.mail("someone@elsewhere.test")
        assert c.rcpt("team@" + DOMAIN)[0] == 550

    assert api.curl("DELETE", "/users/bob@" + DOMAIN).json == {"object": "user", "address": "bob@" + DOMAIN,
                                                              "deleted": True}
    assert api.curl("DELETE", "/users/bob@" + DOMAIN).status == 404
    assert "bob@" + DOMAIN not in s.cli("user", "list").stdout
    sending = api.key_create("s", "--permission", "sending_access")
    assert api.curl("GET", "/users", key=sending).status == 403
