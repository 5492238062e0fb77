"""Who mail at a local domain is for: users, aliases, plus-addresses, catch-alls; unknown users are
refused at RCPT with 550 5.1.1, never bounced later."""
import re
import smtplib

import pytest

from conftest import Server


@pytest.fixture(scope="module")
def rs(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("rcpt"))
    s.cli("user", "add", "alice@mailwerk.test", "--password-stdin", input="pw-alice\n")
    s.cli("domain", "add", "catch.example")
    s.cli("alias", "add", "team@mailwerk.test", "alice@mailwerk.test,", "demo@mailwerk.test", "friend@example.org")
    s.cli("alias", "add", "nested@mailwerk.test", "team@mailwerk.test")
    s.cli("alias", "add", "@catch.example", "alice@mailwerk.test")
    s.cli("alias", "add", "loop1@mailwerk.test", "loop2@mailwerk.test")
    s.cli("alias", "add", "loop2@mailwerk.test", "loop1@mailwerk.test")
    s.start()
    yield s
    s.stop()


def send(s, rcpts):
    """RCPT each address; returns ({address: (code, text)}, queue entry or None)."""
    replies = {}
    with smtplib.SMTP("127.0.0.1", s.smtp_port) as m:
        m.ehlo("client.example")
        m.mail("sender@example.org")
        for r in rcpts:
            replies[r] = m.rcpt(r)
        if not any(code == 250 for code, _ in replies.values()):
            return replies, None
        code, text = m.data(b"Subject: r\r\n\r\nx\r\n")
        if code != 250:
            return replies, (code, text)
        qid = re.search(r"queued as (\S+)", text.decode()).group(1)
    return replies, s.message(qid)


def addresses(entry):
    return sorted(entry["rcpts"])


def test_unknown_user_refused_at_rcpt(rs):
    replies, entry = send(rs, ["nobody@mailwerk.test", "demo@mailwerk.test"])
    code, text = replies["nobody@mailwerk.test"]
    assert (code, text[:5]) == (550, b"5.1.1")
    assert addresses(entry) == ["demo@mailwerk.test"]


def test_alias_expands_to_its_targets(rs):
    replies, entry = send(rs, ["nested@mailwerk.test", "Alice@mailwerk.test"])
    assert all(code == 250 for code, _ in replies.values())
    # nested -> team -> alice, demo, friend@example.org; alice named twice is queued once
    assert addresses(entry) == ["alice@mailwerk.test", "demo@mailwerk.test", "friend@example.org"]


def test_plus_address_is_the_user_and_keeps_its_tag(rs):
    replies, entry = send(rs, ["alice+news@mailwerk.test", "nobody+x@mailwerk.test"])
    assert replies["alice+news@mailwerk.test"][0] == 250
    assert replies["nobody+x@mailwerk.test"][0] == 550
    assert addresses(entry) == ["alice+news@mailwerk.test"]


def test_catch_all(rs):
    replies, entry = send(rs, ["anything@catch.example"])
    assert replies["anything@catch.example"][0] == 250
    assert addresses(entry) == ["alice@mailwerk.test"]


def test_postmaster_exists_for_the_init_domain(rs):
    replies, entry = send(rs, ["postmaster@mailwerk.test"])
    assert replies["postmaster@mailwerk.test"][0] == 250
    assert addresses(entry) == ["demo@mailwerk.test"]


def test_alias_loop_is_refused_not_queued(rs):
    replies, result = send(rs, ["loop1@mailwerk.test"])
    assert replies["loop1@mailwerk.test"][0] == 250
    code, text = result
    assert (code, text[:5]) == (550, b"5.4.6")


def test_alias_cli(rs):
    out = rs.cli("alias", "list").stdout
    assert "team@mailwerk.test -> alice@mailwerk.test,demo@mailwerk.test,friend@example.org" in out
    assert "@catch.example -> alice@mailwerk.test" in out
    p = rs.cli("alias", "add", "alice@mailwerk.test", "demo@mailwerk.test", check=False)
    assert p.returncode == 1 and "is a user" in p.stderr
    p = rs.cli("alias", "add", "x@not-local.example", "demo@mailwerk.test", check=False)
    assert p.returncode == 1 and "not local" in p.stderr
    p = rs.cli("alias", "add", "y@mailwerk.test", "not an address", check=False)
    assert p.returncode == 1 and "invalid target" in p.stderr
    p = rs.cli("domain", "del", "catch.example", check=False)
    assert p.returncode == 1 and "alias" in p.stderr
    rs.cli("alias", "add", "tmp@mailwerk.test", "demo@mailwerk.test")
    rs.cli("alias", "del", "tmp@mailwerk.test")
    assert rs.cli("alias", "del", "tmp@mailwerk.test", check=False).returncode == 1


def test_user_quota_cli(rs):
    assert "quota 10485760 octets" in rs.cli("user", "quota", "alice@mailwerk.test", "10M").stdout
    assert "no quota" in rs.cli("user", "quota", "alice@mailwerk.test", "none").stdout
    assert rs.cli("user", "quota", "alice@mailwerk.test", "lots", check=False).returncode == 2
    assert rs.cli("user", "quota", "ghost@mailwerk.test", "1M", check=False).returncode == 1
