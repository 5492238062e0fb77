"""Outbound MTA-STS (RFC 8461) through `mailwerk tls check`, which runs delivery's own policy cache
(delivery/mtasts_cache.h) against a DNS fixture and a policy host on 443 of a loopback address with
a certificate from a CA made for the test: a policy fetched and cached in reports.db, the refusals
(redirect, text/html, 65 KiB, two TXT records, a slow body past the deadline, a private address),
the cache rules (same id: no fetch; new id: a fetch; a failed fetch keeps the cached policy; TXT
gone: cached policy kept; mode none clears), the cache across processes, and the budget: the first
answer comes within it while the fetch goes on."""
import os
import re
import sqlite3
import time

import pytest

from conftest import Server, run_cli
from dnsfixture import dns_server  # noqa: F401 (the fixture)
from stsfixture import PolicyHost, ThrowawayCA

DOMAINS = ["good", "html", "moved", "big", "two", "slow", "change", "gone", "budget", "keep", "none", "private",
           "restart"]


def policy(mode="enforce", mx=("mx.%s",), max_age=86400, domain="x.test"):
    lines = ["version: STSv1", "mode: " + mode] + ["mx: " + (m % domain if "%s" in m else m) for m in mx]
    return ("\r\n".join(lines + ["max_age: %d" % max_age]) + "\r\n").encode()


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return ThrowawayCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def host(ca):
    with PolicyHost(ca, ["mta-sts.%s.test" % d for d in DOMAINS]) as h:
        yield h


@pytest.fixture
def setup(tmp_path, dns_server, ca, host):  # noqa: F811
    srv = Server(tmp_path)

    def check(domain, *extra, private=True, timeout=20):
        args = ["tls", "check", domain, "-c", srv.conf, "-o", "dns.resolver=" + dns_server.resolver,
                "-o", "delivery.mta_sts_ca_file=" + ca.path]
        if private:
            args += ["-o", "delivery.mta_sts_allow_private=yes"]
        started = time.monotonic()
        p = run_cli(*args, *extra, check=False)
        p.seconds = time.monotonic() - started
        return p

    srv.check = check
    return srv


def publish(dns_server, host, name, txt_id, body=None, **kw):  # noqa: F811
    domain = name + ".test"
    records = {"mta-sts." + domain: {"A": host.addr}, domain: {"MX": "10 mx.%s." % domain}}
    if txt_id is not None:
        records["_mta-sts." + domain] = {"TXT": "v=STSv1; id=%s;" % txt_id}
    dns_server.load(records)
    if body is not None or kw:
        host.serve(domain, body=body if body is not None else policy(domain=domain), **kw)
    return domain


def rows(srv, domain):
    db = sqlite3.connect(os.path.join(srv.dir, "reports.db"))
    try:
        return db.execute("SELECT id, mode, mx, policy, fetched, expires FROM mta_sts_policies WHERE domain = ?",
                          (domain,)).fetchall()
    finally:
        db.close()


def first(out, label="lookup"):
    if os.environ.get("STS_SHOW"):
        print("-----\n" + out)
    m = re.search(r"^%s: state=(\S+) reason=(\S+) elapsed_ms=(\d+)" % label, out, re.M)
    assert m, out
    return m.group(1), m.group(2), int(m.group(3))


def test_policy_fetched_and_cached(setup, dns_server, host):  # noqa: F811
    d = publish(dns_server, host, "good", "20261207a", policy(domain="good.test", mx=("mx.%s", "*.good.test")))
    p = setup.check(d, "--budget", "10000")
    assert p.returncode == 0, p.stdout + p.stderr
    assert first(p.stdout)[:2] == ("policy", "fetched")
    assert "policy: id=20261207a mode=enforce max_age=86400 source=fetched" in p.stdout
    assert "MX mx.good.test: matches: TLS with a verified certificate required" in p.stdout
    assert "MTA-STS TXT: v=STSv1; id=20261207a;" in p.stdout
    (r,) = rows(setup, d)
    assert r[0] == "20261207a" and r[1] == "enforce"
    assert r[2] == "mx.good.test\n*.good.test\n"
    assert r[3].startswith("version: STSv1\r\n")
    assert r[5] - r[4] == 86400
    # the same id again: answered from the cache, no second fetch
    asked = host.asked(d)
    p = setup.check(d)
    assert first(p.stdout)[:2] == ("policy", "cached"), p.stdout
    assert "source=cache" in p.stdout
    assert host.asked(d) == asked


def failed(setup, d, why):
    p = setup.check(d, "--budget", "10000")
    assert p.returncode == 1, p.stdout + p.stderr
    state, reason, _ = first(p.stdout)
    assert (state, reason) == ("failed", "fetch_failed"), p.stdout
    assert re.search(why, p.stdout), p.stdout
    assert "policy: none known" in p.stdout
    assert rows(setup, d) == []
    return p


def test_redirect_refused(setup, dns_server, host):  # noqa: F811
    d = publish(dns_server, host, "moved", "r1", b"moved", status=301,
                headers={"Location": "https://mta-sts.good.test/.well-known/mta-sts.txt"})
    failed(setup, d, r"answered 301 \(a redirect")
    assert host.asked(d) == 1


def test_html_refused(setup, dns_server, host):  # noqa: F811
    d = publish(dns_server, host, "html", "h1", policy(domain="html.test"), ctype="text/html; charset=utf-8")
    failed(setup, d, r'came as "text/html; charset=utf-8", not text/plain')


def test_text_plain_with_parameters_taken(setup, dns_server, host):  # noqa: F811
    d = publish(dns_server, host, "keep", "k1", policy(domain="keep.test", mode="testing"),
                ctype="Text/Plain; charset=us-ascii")
    p = setup.check(d, "--budget", "10000")
    assert first(p.stdout)[:2] == ("policy", "fetched"), p.stdout
    assert "matches (testing: verified and reported, not enforced)" in p.stdout


def test_65k_body_refused(setup, dns_server, host):  # noqa: F811
    body = policy(domain="big.test")
    body += b"".join(b"pad%05d: x\r\n" % i for i in range(65 * 1024 // 12 + 1))
    assert len(body) > 65 * 1024
    d = publish(dns_server, host, "big", "b1", body)
    failed(setup, d, r"larger than 65536 octets")


def test_two_txt_records_no_policy(setup, dns_server, host):  # noqa: F811
    d = publish(dns_server, host, "two", None, policy(domain="two.test"))
    dns_server.load({"_mta-sts.two.test": {"TXT": ["v=STSv1; id=one1", "v=STSv1; id=two2"]}})
    p = setup.check(d)
    assert p.returncode == 1
    assert first(p.stdout)[:2] == ("none", "txt_none"), p.stdout
    assert host.asked(d) == 0  # RFC 8461 §3.1: no policy, so nothing to fetch


def test_slow_body_hits_deadline(setup, dns_server, host):  # noqa: F811
    d = publish(dns_server, host, "slow", "s1", policy(domain="slow.test"), delay=6)
    p = setup.check(d, "--budget", "10000", "-o", "delivery.mta_sts_fetch_timeout=1500ms")
    state, reason, elapsed = first(p.stdout)
    assert (state, reason) == ("failed", "fetch_failed"), p.stdout
    assert 1200 <= elapsed < 4500, p.stdout
    assert re.search(r"longer than 1500 ms|imeout|timed out", p.stdout), p.stdout
    assert rows(setup, d) == []


def test_private_address_refused_without_setting(setup, dns_server, host):  # noqa: F811
    d = publish(dns_server, host, "private", "p1", policy(domain="private.test"))
    p = setup.check(d, "--budget", "10000", private=False)
    assert first(p.stdout)[:2] == ("failed", "fetch_failed"), p.stdout
    assert "only addresses that are not public" in p.stdout
    assert host.asked(d) == 0


def test_id_change_refetches_and_failed_fetch_keeps(setup, dns_server, host):  # noqa: F811
    d = publish(dns_server, host, "change", "c1", policy(domain="change.test"))
    assert first(setup.check(d, "--budget", "10000").stdout)[:2] == ("policy", "fetched")
    # a new id with a new policy: fetched again (RFC 8461 §3.3)
    dns_server.clear()
    publish(dns_server, host, "change", "c2", policy(domain="change.test", mode="testing", max_age=3600))
    p = setup.check(d, "--budget", "10000")
    assert first(p.stdout)[:2] == ("policy", "fetched"), p.stdout
    assert rows(setup, d)[0][:2] == ("c2", "testing")
    assert host.asked(d) == 2
    # a newer id whose fetch fails: the cached policy stays (§3.3)
    dns_server.clear()
    publish(dns_server, host, "change", "c3", b"oops", status=500)
    p = setup.check(d, "--budget", "10000")
    assert first(p.stdout)[:2] == ("failed", "fetch_failed"), p.stdout
    assert "policy: id=c2 mode=testing" in p.stdout and "source=cache" in p.stdout
    assert "answered 500" in p.stdout
    assert rows(setup, d)[0][:2] == ("c2", "testing")
    # the recheck before a message fails (§5.1) sees the changed id
    p = setup.check(d, "--recheck", "--budget", "10000")
    assert "id_changed=yes" in p.stdout, p.stdout


def test_txt_removed_cache_kept(setup, dns_server, host):  # noqa: F811
    d = publish(dns_server, host, "gone", "g1", policy(domain="gone.test"))
    assert first(setup.check(d, "--budget", "10000").stdout)[:2] == ("policy", "fetched")
    dns_server.clear()
    publish(dns_server, host, "gone", None)
    p = setup.check(d)
    assert p.returncode == 0
    assert first(p.stdout)[:2] == ("policy", "txt_none"), p.stdout
    assert "policy: id=g1 mode=enforce" in p.stdout and "source=cache" in p.stdout
    assert rows(setup, d)[0][0] == "g1"


def test_mode_none_clears(setup, dns_server, host):  # noqa: F811
    d = publish(dns_server, host, "none", "n1", policy(domain="none.test"))
    assert first(setup.check(d, "--budget", "10000").stdout)[:2] == ("policy", "fetched")
    assert len(rows(setup, d)) == 1
    dns_server.clear()
    publish(dns_server, host, "none", "n2", policy(domain="none.test", mode="none", mx=()))
    p = setup.check(d, "--budget", "10000")
    assert first(p.stdout)[:2] == ("none", "mode_none"), p.stdout
    assert rows(setup, d) == []


def test_restart_keeps_cache(setup, dns_server, host, ca):  # noqa: F811
    d = publish(dns_server, host, "restart", "x1", policy(domain="restart.test"))
    assert first(setup.check(d, "--budget", "10000").stdout)[:2] == ("policy", "fetched")
    # the policy host is gone now; a new process loads the policy from reports.db
    host.serve(d, b"gone", status=503)
    asked = host.asked(d)
    p = setup.check(d)
    assert first(p.stdout)[:2] == ("policy", "cached"), p.stdout
    assert "source=cache" in p.stdout
    assert host.asked(d) == asked
    # the server loads the same cache when it starts
    setup.start()
    try:
        assert "event=mta_sts_cache_loaded policies=1 " in setup.log_text() + " ", setup.log_text()[-2000:]
    finally:
        setup.stop()


@pytest.mark.serial
def test_first_lookup_within_budget_while_fetch_is_slow(setup, dns_server, host):  # noqa: F811
    d = publish(dns_server, host, "budget", "u1", policy(domain="budget.test"), delay=3)
    p = setup.check(d, "--budget", "300")
    state, reason, elapsed = first(p.stdout)
    assert (state, reason) == ("pending", "pending"), p.stdout
    assert elapsed < 1500, p.stdout
    # the fetch went on in the background and its policy was cached
    state, reason, _ = first(p.stdout, "after the fetch")
    assert (state, reason) == ("policy", "cached"), p.stdout
    assert rows(setup, d)[0][0] == "u1"


def test_certificate_for_another_name_refused(setup, dns_server, host):  # noqa: F811
    # the policy host's certificate names other hosts only (RFC 8461 §3.3: it must be valid for
    # mta-sts.DOMAIN)
    d = publish(dns_server, host, "wrongname", "w1", policy(domain="wrongname.test"))
    p = failed(setup, d, r"SSL|certificate|subject")
    assert host.asked(d) == 0


def test_certificate_needs_the_ca(setup, dns_server, host, tmp_path):  # noqa: F811
    # without the test CA file only the system's trust store counts, which never heard of it
    d = publish(dns_server, host, "good", "t1", policy(domain="good.test"))
    other = ThrowawayCA(tmp_path)
    p = setup.check(d, "--budget", "10000", "-o", "delivery.mta_sts_ca_file=" + other.path)
    assert first(p.stdout)[:2] == ("failed", "fetch_failed"), p.stdout
    assert re.search(r"SSL|certificate", p.stdout), p.stdout
