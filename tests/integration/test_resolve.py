"""`mailwerk resolve` against a real DNS server (dnsfixture.py): the MX rules of RFC 5321 §5.1
(preference order, shuffled ties, implicit MX, CNAMEs), RFC 7505 null MX, NXDOMAIN, and that every
temporary DNS trouble (SERVFAIL, silence, DNSSEC bogus) is a temporary failure, never a bounce."""
import os
import subprocess
import time

import pytest

from conftest import BIN
from dnsfixture import QTYPE, RD, RR, DNSServer, dns_server  # noqa: F401 (dns_server is a fixture)

CONF = """[server]
hostname = mx.mailwerk.test
data_dir = {dir}
[tls]
cert = {dir}/cert.pem
key = {dir}/key.pem
[dns]
{dns}
"""


def resolve(*args, server=None, timeout=60, cwd=None):
    """Runs `mailwerk resolve ARGS` (against server unless args name a resolver or a config);
    returns (exit code, target lines as lists of words, note lines, whole stdout)."""
    argv = [BIN, "resolve"]
    if server is not None:
        argv += ["--resolver", server.resolver]
    argv += args
    start = time.monotonic()
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    elapsed = time.monotonic() - start
    for bad in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
        assert bad not in p.stderr, p.stderr
    lines = [line for line in p.stdout.splitlines() if line.strip()]
    targets = [line.split() for line in lines if not line.startswith(";")]
    notes = [line for line in lines if line.startswith(";")]
    return p.returncode, targets, notes, p.stdout + p.stderr, elapsed


ZONE = {
    "example.test": {"MX": ["30 mx3.example.test.", "10 mx1.example.test.", "20 mx2.example.test."]},
    "mx1.example.test": {"A": "192.0.2.1", "AAAA": "2001:db8::1"},
    "mx2.example.test": {"AAAA": "2001:db8::2"},
    "mx3.example.test": {"A": ["192.0.2.3", "192.0.2.33"]},
}


def test_preference_order(dns_server):
    dns_server.load(ZONE)
    rc, targets, notes, out, _ = resolve("example.test", server=dns_server)
    assert rc == 0, out
    assert targets[:2] == [
        ["10", "mx1.example.test", "192.0.2.1", "2001:db8::1"],  # A first, then AAAA
        ["20", "mx2.example.test", "2001:db8::2"],
    ], out
    # the order inside an RRset is the resolver's (it may rotate it)
    assert targets[2][:2] == ["30", "mx3.example.test"] and sorted(targets[2][2:]) == ["192.0.2.3", "192.0.2.33"]
    assert len(targets) == 3, out
    assert not any("implicit" in n for n in notes)
    # case and a trailing dot do not matter
    rc2, targets2, _, out2, _ = resolve("EXAMPLE.test.", server=dns_server)
    assert rc2 == 0 and [t[:2] for t in targets2] == [t[:2] for t in targets], out2


def test_equal_preference_is_shuffled(dns_server):
    dns_server.load({
        "tie.test": {"MX": ["10 a.tie.test.", "10 b.tie.test.", "5 first.tie.test.", "20 last.tie.test."]},
        "a.tie.test": {"A": "192.0.2.10"},
        "b.tie.test": {"A": "192.0.2.11"},
        "first.tie.test": {"A": "192.0.2.5"},
        "last.tie.test": {"A": "192.0.2.20"},
    })
    orders = set()
    # each run has a 1/2 chance of either order: 40 runs miss one with probability 2^-39
    for _ in range(40):
        rc, targets, _, out, _ = resolve("tie.test", server=dns_server)
        assert rc == 0, out
        hosts = [t[1] for t in targets]
        assert hosts[0] == "first.tie.test" and hosts[3] == "last.tie.test", out
        assert [t[0] for t in targets] == ["5", "10", "10", "20"]
        orders.add(tuple(hosts[1:3]))
        if len(orders) == 2:
            break
    assert orders == {("a.tie.test", "b.tie.test"), ("b.tie.test", "a.tie.test")}


def test_implicit_mx(dns_server):
    dns_server.load({"implicit.test": {"A": "192.0.2.40", "AAAA": "2001:db8::40"},
                     "v6only.test": {"AAAA": "2001:db8::41"}})
    rc, targets, notes, out, _ = resolve("implicit.test", server=dns_server)
    assert rc == 0, out
    assert targets == [["0", "implicit.test", "192.0.2.40", "2001:db8::40"]]
    assert any("implicit MX" in n for n in notes), out
    rc, targets, _, out, _ = resolve("v6only.test", server=dns_server)
    assert rc == 0 and targets == [["0", "v6only.test", "2001:db8::41"]], out


def test_cname_followed(dns_server):
    dns_server.load(ZONE)
    dns_server.load({
        "alias.test": {"CNAME": "example.test."},
        "www.alias.test": {"CNAME": "host.other.test."},  # implicit MX through a CNAME
        "host.other.test": {"A": "192.0.2.50"},
        "loop1.test": {"CNAME": "loop2.test."},
        "loop2.test": {"CNAME": "loop1.test."},
    })
    rc, targets, _, out, _ = resolve("alias.test", server=dns_server)
    assert rc == 0, out
    assert [t[1] for t in targets] == ["mx1.example.test", "mx2.example.test", "mx3.example.test"]
    rc, targets, _, out, _ = resolve("www.alias.test", server=dns_server)
    assert rc == 0, out
    # RFC 5321 §5.1: the name a CNAME leads to is processed as if it were the initial name
    assert targets == [["0", "host.other.test", "192.0.2.50"]], out
    rc, targets, _, out, _ = resolve("loop1.test", server=dns_server)
    assert rc == 1 and targets[0][:3] == ["temporary", "DNS", "failure"], out


def test_null_mx(dns_server):
    dns_server.load({"nomail.test": {"MX": "0 .", "A": "192.0.2.60"}})
    rc, targets, _, out, _ = resolve("nomail.test", server=dns_server)
    assert rc == 1
    assert out.strip() == "null MX: nomail.test accepts no mail (RFC 7505) (5.1.10)"
    # the A record is never used, nor even asked for
    assert ("nomail.test", "A") not in dns_server.asked()


def test_null_mx_mixed_with_hosts_uses_the_hosts(dns_server):
    # RFC 7505 §3 forbids the mix; the real hosts are the better guess than bouncing
    dns_server.load({"mixed.test": {"MX": ["0 .", "10 mx.mixed.test."]}, "mx.mixed.test": {"A": "192.0.2.61"}})
    rc, targets, _, out, _ = resolve("mixed.test", server=dns_server)
    assert rc == 0 and targets == [["10", "mx.mixed.test", "192.0.2.61"]], out


def test_nxdomain(dns_server):
    dns_server.load(ZONE)
    rc, targets, _, out, _ = resolve("nosuch.test", server=dns_server)
    assert rc == 1
    assert out.strip() == "no such domain: nosuch.test (5.1.2)"


def test_servfail_is_temporary(dns_server):
    dns_server.servfail("broken.test")
    rc, _, _, out, _ = resolve("broken.test", server=dns_server)
    assert rc == 1
    assert out.startswith("temporary DNS failure"), out
    assert "SERVFAIL" in out and out.strip().endswith("(4.4.3)"), out


def test_timeout_is_temporary_with_our_timer(dns_server):
    dns_server.drop("silent.test")
    rc, _, _, out, elapsed = resolve("silent.test", "--timeout", "2", server=dns_server, timeout=30)
    assert rc == 1
    assert out.startswith("temporary DNS failure") and "within 2 s" in out, out
    assert elapsed < 15


def test_timeout_is_temporary_with_unbounds_own(dns_server):
    """Without --timeout, unbound gives up on a silent server by itself (about 17 s here), well
    before our 30 s limit; either way the outcome is a deferral, and the wait is bounded."""
    dns_server.drop("silent.test")
    rc, _, _, out, elapsed = resolve("silent.test", server=dns_server, timeout=90)
    assert rc == 1
    assert out.startswith("temporary DNS failure"), out
    assert elapsed < 60


def test_mx_hosts_without_addresses(dns_server):
    dns_server.load({
        "gone.test": {"MX": ["10 nx1.gone.test.", "20 nx2.gone.test."]},
        "part.test": {"MX": ["10 broken.part.test.", "20 ok.part.test."]},
        "ok.part.test": {"A": "192.0.2.70"},
        "allbroken.test": {"MX": ["10 broken.part.test.", "20 nx1.gone.test."]},
        "empty.test": {"TXT": "no mail here"},
    })
    dns_server.servfail("broken.part.test")
    # every host is NXDOMAIN: permanent, RFC 3463 X.4.4 unable to route
    rc, _, _, out, _ = resolve("gone.test", server=dns_server)
    assert rc == 1 and "none of the 2 MX hosts of gone.test has an address (5.4.4)" in out, out
    # one host fails temporarily, another works: deliverable, with a note
    rc, targets, notes, out, _ = resolve("part.test", server=dns_server)
    assert rc == 0 and targets == [["20", "ok.part.test", "192.0.2.70"]], out
    assert any("temporary" in n for n in notes), out
    # no host has an address, one of them for a temporary reason: defer, never bounce
    rc, _, _, out, _ = resolve("allbroken.test", server=dns_server)
    assert rc == 1 and out.startswith("temporary DNS failure") and "(4.4.3)" in out, out
    # the domain exists without MX, A or AAAA
    rc, _, _, out, _ = resolve("empty.test", server=dns_server)
    assert rc == 1 and out.strip() == "empty.test has no MX, A or AAAA records (RFC 5321 §5.1) (5.1.2)", out


def test_limits(dns_server):
    dns_server.load({
        "many.test": {"MX": ["%d mx%02d.many.test." % (i, i) for i in range(20)]},
        "wide.test": {"MX": "10 mx.wide.test."},
        "mx.wide.test": {"A": ["192.0.2.%d" % i for i in range(1, 11)], "AAAA": "2001:db8::99"},
    })
    for i in range(20):
        dns_server.load({"mx%02d.many.test" % i: {"A": "192.0.2.%d" % (100 + i)}})
    rc, targets, _, out, _ = resolve("many.test", server=dns_server)
    assert rc == 0, out
    assert [t[1] for t in targets] == ["mx%02d.many.test" % i for i in range(16)]  # at most 16 hosts
    rc, targets, _, out, _ = resolve("wide.test", server=dns_server)
    assert rc == 0 and len(targets) == 1 and len(targets[0]) == 2 + 8, out  # at most 8 addresses


def test_truncated_answer_falls_back_to_tcp(dns_server):
    dns_server.load(ZONE)
    dns_server.truncate("example.test")
    rc, targets, _, out, _ = resolve("example.test", server=dns_server)
    assert rc == 0 and len(targets) == 3, out
    assert ("example.test", "MX", "tcp") in dns_server.queries()


def test_hostile_records(dns_server):
    """Malformed MX rdata and MX exchanges that are no host names: never a crash, never used."""
    dns_server.load({
        "bad.test": [RR("bad.test.", QTYPE.MX, ttl=60, rdata=RD(b"\x00"))],
        "weird.test": {"MX": ["10 under_score.weird.test.", "20 ok.weird.test."]},
        "ok.weird.test": {"A": "192.0.2.80"},
        "under_score.weird.test": {"A": "192.0.2.81"},
    })
    rc, _, _, out, _ = resolve("bad.test", server=dns_server)
    assert rc == 1 and out.startswith("temporary DNS failure"), out
    rc, targets, _, out, _ = resolve("weird.test", server=dns_server)
    assert rc == 0 and targets == [["20", "ok.weird.test", "192.0.2.80"]], out


def test_address_literal(dns_server):
    rc, targets, _, out, _ = resolve("[192.0.2.1]", server=dns_server)
    assert rc == 0 and targets == [["0", "[192.0.2.1]", "192.0.2.1"]], out
    rc, targets, _, out, _ = resolve("[IPv6:2001:db8::1]", server=dns_server)
    assert rc == 0 and targets == [["0", "[IPv6:2001:db8::1]", "2001:db8::1"]], out
    rc, _, _, out, _ = resolve("[mytag:abc]", server=dns_server)
    assert rc == 1 and "(5.1.2)" in out, out
    assert dns_server.asked() == []  # literals skip DNS


def test_bad_domain(dns_server):
    for bad in ("under_score.test", "a..b.test", "-x.test", "x" * 64 + ".test", "caf\u00e9.test"):
        rc, _, _, out, _ = resolve("--", bad, server=dns_server)
        if not bad.isascii():
            assert rc == 1 and "internationalized domain names are not supported yet (5.1.2)" in out, out
            continue
        assert rc == 1 and "not a valid domain name (5.1.2)" in out, out
    assert dns_server.asked() == []


def test_config_file(dns_server, tmp_path):
    dns_server.load(ZONE)
    conf = tmp_path / "mailwerk.conf"
    conf.write_text(CONF.format(dir=tmp_path, dns="resolver = " + dns_server.resolver))
    rc, targets, _, out, _ = resolve("example.test", "-c", str(conf))
    assert rc == 0 and len(targets) == 3, out
    # --resolver wins over the file
    other = DNSServer({"example.test": {"MX": "7 only.example.test."}, "only.example.test": {"A": "192.0.2.7"}})
    with other:
        rc, targets, _, out, _ = resolve("example.test", "-c", str(conf), "--resolver", other.resolver)
        assert rc == 0 and targets == [["7", "only.example.test", "192.0.2.7"]], out
    # the default ./var/mailwerk.conf is used when it exists
    os.makedirs(tmp_path / "var")
    (tmp_path / "var" / "mailwerk.conf").write_text(conf.read_text())
    rc, targets, _, out, _ = resolve("example.test", cwd=str(tmp_path))
    assert rc == 0 and len(targets) == 3, out
    # a bad [dns] value is an error that names file and line
    conf.write_text(CONF.format(dir=tmp_path, dns="resolver = ns.example.org"))
    rc, _, _, out, _ = resolve("example.test", "-c", str(conf))
    assert rc == 1 and "[dns] resolver = ns.example.org" in out and ":8:" in out, out
    conf.write_text(CONF.format(dir=tmp_path, dns="trust_anchor = root.key"))
    rc, _, _, out, _ = resolve("example.test", "-c", str(conf))
    assert rc == 1 and "must be an absolute path" in out, out


def test_ipv6_resolver():
    try:
        server = DNSServer(ZONE, host="::1").start()
    except OSError:
        pytest.skip("no IPv6 loopback")
    with server:
        assert server.resolver.startswith("::1@")
        rc, targets, _, out, _ = resolve("example.test", server=server)
        assert rc == 0 and len(targets) == 3, out


def test_dnssec(dns_server, tmp_path):
    """With a trust anchor, signed answers are secure and a chain that cannot be built is bogus,
    which defers (RFC 4035 §5.5) rather than bounces."""
    dns_server.load({"signed.test": {"MX": "10 mx.signed.test."},
                     "mx.signed.test": {"A": "192.0.2.90", "AAAA": "2001:db8::90"}})
    anchor = tmp_path / "anchor.key"
    anchor.write_text(dns_server.sign("test.") + "\n")
    conf = tmp_path / "mailwerk.conf"
    conf.write_text(CONF.format(dir=tmp_path, dns="resolver = %s\ntrust_anchor = %s" % (dns_server.resolver, anchor)))
    rc, targets, notes, out, _ = resolve("signed.test", "-c", str(conf))
    assert rc == 0 and targets == [["10", "mx.signed.test", "192.0.2.90", "2001:db8::90"]], out
    assert "; DNSSEC: MX answer secure" in notes, out
    assert "; DNSSEC: addresses of mx.signed.test secure" in notes, out

    # a proven absence is secure too: no MX at mx.signed.test (an NSEC record says so), so its own
    # address is the implicit MX, and the AAAA it lacks is proven absent as well
    rc, targets, notes, out, _ = resolve("mx.signed.test", "-c", str(conf))
    assert rc == 0 and "; DNSSEC: MX answer secure" in notes, out

    # the same anchor as a DS record works; one whose digest matches no key makes everything bogus
    anchor.write_text(dns_server.ds_anchor() + "\n")
    rc, _, notes, out, _ = resolve("signed.test", "-c", str(conf))
    assert rc == 0 and "; DNSSEC: MX answer secure" in notes, out
    anchor.write_text(dns_server.ds_anchor(wrong=True) + "\n")
    rc, _, _, out, _ = resolve("signed.test", "-c", str(conf), "--timeout", "10")
    assert rc == 1 and "DNSSEC" in out, out

    # signatures long expired, missing or not verifying: bogus, a temporary failure (RFC 4035 §5.5)
    anchor.write_text(dns_server.ds_anchor() + "\n")
    for how in ("expired", "stripped", "badsig"):
        dns_server.bogus("mx.signed.test", how)
        rc, _, _, out, _ = resolve("signed.test", "-c", str(conf), "--timeout", "10")
        assert rc == 1 and out.startswith("temporary DNS failure") and "DNSSEC" in out, (how, out)

    # an anchor for a key the zone does not have: every answer is bogus
    anchor.write_text("test. IN DNSKEY 257 3 15 l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4=\n")
    rc, _, _, out, _ = resolve("signed.test", "-c", str(conf), "--timeout", "10")
    assert rc == 1 and out.startswith("temporary DNS failure") and "DNSSEC" in out, out

    # an unreadable anchor stops the command
    conf.write_text(CONF.format(dir=tmp_path, dns="trust_anchor = %s/missing.key" % tmp_path))
    rc, _, _, out, _ = resolve("signed.test", "-c", str(conf))
    assert rc == 1 and "trust anchor" in out, out


def test_no_setup_needed(tmp_path):
    """Without -c and without ./var/mailwerk.conf the system's resolvers are used; an address
    literal needs no DNS at all, so this works on any machine."""
    rc, targets, _, out, _ = resolve("[192.0.2.1]", cwd=str(tmp_path))
    assert rc == 0 and targets == [["0", "[192.0.2.1]", "192.0.2.1"]], out
    # a name goes to the system's resolvers: whatever they say, the command answers, exit 0 or 1
    rc, _, _, out, _ = resolve("nosuch.invalid", "--timeout", "5", cwd=str(tmp_path))
    assert rc in (0, 1) and out.strip(), out


def test_usage():
    for args in ([], ["a.test", "b.test"], ["--resolver", "not-an-ip", "a.test"], ["--timeout", "0", "a.test"],
                 ["--bogus", "a.test"]):
        p = subprocess.run([BIN, "resolve", *args], capture_output=True, text=True, timeout=30)
        assert p.returncode == 2, (args, p.stdout, p.stderr)
    p = subprocess.run([BIN, "resolve", "--help"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and "usage: mailwerk resolve" in p.stdout
    p = subprocess.run([BIN, "--help"], capture_output=True, text=True, timeout=30)
    assert "resolve" in p.stdout
