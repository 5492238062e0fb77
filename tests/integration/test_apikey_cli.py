"""`mailwerk apikey create|list|revoke`: the token is printed once and easy to capture, never
stored or listed; wrong input fails with one clear line and the usage exit code."""
import json
import os
import re

import pytest

from conftest import Server

TOKEN_RE = re.compile(r"^re_[A-Za-z0-9_-]{43}$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A setup made by `mailwerk init`; no server is needed: the CLI works on the data directory."""
    return Server(tmp_path_factory.mktemp("apikey"))


def apikey(s, *args, check=False):
    return s.cli("apikey", *args, check=check)


def one_error_line(p, rc, *words):
    assert p.returncode == rc, (p.returncode, p.stdout, p.stderr)
    assert p.stderr.startswith("mailwerk: ") and p.stderr.count("\n") == 1, p.stderr
    for w in words:
        assert w in p.stderr, (w, p.stderr)


def listed(s):
    return [json.loads(line) for line in apikey(s, "list", "--json", check=True).stdout.splitlines()]


def db_bytes(s):
    data = b""
    for suffix in ("", "-wal", "-shm"):
        path = os.path.join(s.dir, "api.db" + suffix)
        if os.path.exists(path):
            data += open(path, "rb").read()
    return data


def test_help(setup):
    p = apikey(setup, "--help")
    assert p.returncode == 0 and "usage" in p.stdout.lower()
    assert "create" in p.stdout and "revoke" in p.stdout


def test_create_list_revoke(setup):
    p = apikey(setup, "create", "ci deploy", check=True)
    lines = p.stdout.splitlines()
    token = lines[0]
    assert TOKEN_RE.match(token), lines[0]
    assert len(token) == 46
    m = re.search(r"^id\s+(\S+)$", p.stdout, re.M)
    assert m and UUID_RE.match(m.group(1)), p.stdout
    key_id = m.group(1)
    assert "only" in p.stdout and "once" in p.stdout  # the warning that it is not shown again
    assert token not in p.stdout[len(token):]

    text = apikey(setup, "list", check=True).stdout
    row = [line for line in text.splitlines() if line.startswith(key_id)]
    assert len(row) == 1, text
    assert "ci deploy" in row[0] and "full_access" in row[0] and "never" in row[0]
    assert re.search(r"\s\*\s", row[0]), row[0]  # any domain
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row[0]), row[0]
    assert text.splitlines()[0].split()[:2] == ["ID", "NAME"]
    assert token not in text and token[3:] not in text

    entries = {e["id"]: e for e in listed(setup)}
    e = entries[key_id]
    assert e["name"] == "ci deploy" and e["permission"] == "full_access"
    assert e["domain"] is None and e["last_used_at"] is None
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", e["created_at"])
    assert token not in json.dumps(list(entries.values()))

    p = apikey(setup, "revoke", key_id, check=True)
    assert key_id in p.stdout
    assert key_id not in apikey(setup, "list", check=True).stdout
    assert key_id not in {e["id"] for e in listed(setup)}
    one_error_line(apikey(setup, "revoke", key_id), 1, "no API key", key_id)


def test_quiet_prints_only_the_token(setup):
    p = apikey(setup, "create", "--quiet", "scripted", check=True)
    assert TOKEN_RE.match(p.stdout.rstrip("\n")) and p.stdout.count("\n") == 1, p.stdout
    assert p.stderr == ""
    token = p.stdout.strip()
    # the key exists, and its token is nowhere else
    assert any(e["name"] == "scripted" for e in listed(setup))
    assert token.encode() not in db_bytes(setup)


def test_newest_first(setup):
    ids = []
    for name in ("order-1", "order-2", "order-3"):
        p = apikey(setup, "create", name, check=True)
        ids.append(re.search(r"^id\s+(\S+)$", p.stdout, re.M).group(1))
    order = [e["id"] for e in listed(setup) if e["id"] in ids]
    assert order == ids[::-1]


def test_domain_limited_key(setup):
    # --domain alone means sending_access (a domain limit on full access is refused)
    p = apikey(setup, "create", "eu sender", "--domain", "Mail.Example.ORG", check=True)
    assert TOKEN_RE.match(p.stdout.splitlines()[0])
    key_id = re.search(r"^id\s+(\S+)$", p.stdout, re.M).group(1)
    e = {x["id"]: x for x in listed(setup)}[key_id]
    assert e["permission"] == "sending_access" and e["domain"] == "mail.example.org"
    row = [line for line in apikey(setup, "list", check=True).stdout.splitlines() if line.startswith(key_id)]
    assert "mail.example.org" in row[0] and "sending_access" in row[0]
    p = apikey(setup, "create", "explicit", "-p", "sending_access", "-d", "example.net", check=True)
    assert TOKEN_RE.match(p.stdout.splitlines()[0])


def test_bad_input(setup):
    before = listed(setup)
    one_error_line(apikey(setup, "create", "x", "--permission", "admin"), 2, "permission", "admin")
    one_error_line(apikey(setup, "create", "x", "--permission", "full_access", "--domain", "example.com"), 2,
                   "a key limited to a domain can only have sending_access")
    one_error_line(apikey(setup, "create", "x", "--domain", "not a domain"), 2, "invalid domain")
    one_error_line(apikey(setup, "create", "x", "--domain", "[192.0.2.1]"), 2, "literal")
    one_error_line(apikey(setup, "create", "n" * 51), 2, "50")
    one_error_line(apikey(setup, "create", ""), 2, "empty")
    one_error_line(apikey(setup, "create", "tab\there"), 2, "control")
    one_error_line(apikey(setup, "create"), 2, "NAME")
    one_error_line(apikey(setup, "create", "a", "b"), 2, "unexpected")
    one_error_line(apikey(setup, "list", "--quiet"), 2, "create only")
    one_error_line(apikey(setup, "revoke", "x", "--json"), 2, "list only")
    one_error_line(apikey(setup, "revoke", "not-an-id"), 2, "not an API key id")
    one_error_line(apikey(setup, "revoke", "00000000-0000-4000-8000-000000000000"), 1, "no API key")
    one_error_line(apikey(setup, "frobnicate"), 2, "unknown command")
    one_error_line(apikey(setup), 2, "missing command")
    one_error_line(apikey(setup, "list", "--bogus"), 2, "--bogus")
    assert listed(setup) == before  # nothing was made


def test_revoke_takes_upper_case_id(setup):
    p = apikey(setup, "create", "shouty", check=True)
    key_id = re.search(r"^id\s+(\S+)$", p.stdout, re.M).group(1)
    assert apikey(setup, "revoke", key_id.upper(), check=True).returncode == 0
    assert key_id not in {e["id"] for e in listed(setup)}


def test_db_holds_no_token(setup):
    tokens = [apikey(setup, "create", "secret-%d" % i, "--quiet", check=True).stdout.strip() for i in range(3)]
    data = db_bytes(setup)
    assert data, "api.db is missing"
    for t in tokens:
        assert t.encode() not in data
        assert t[3:].encode() not in data
    # private to the server's user: it holds the hashes
    assert oct(os.stat(os.path.join(setup.dir, "api.db")).st_mode & 0o777) == "0o600"
