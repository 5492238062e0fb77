"""DANE for our own receiving side (RFC 7672, RFC 7671): `mailwerk dns records` prints the TLSA
3 1 1 record of the key the SMTP listener serves (and of a staged next key), OpenSSL's own DANE
client verifies our listener against exactly that printed record, and `mailwerk dns check` judges
the TLSA RRset published in a DNSSEC-signed zone of the DNS fixture (validated inside mailwerk by
libunbound with [dns] trust_anchor)."""
import hashlib
import re
import subprocess

import pytest

from conftest import DOMAIN, HOST, Server, run_cli
from dnsfixture import dns_server  # noqa: F401 (a fixture)
from mtafixture import self_signed_cert

TLSA_NAME = "_25._tcp.%s" % HOST
RECORD = re.compile(r"^_25\._tcp\.%s\. IN TLSA (3 1 1 [0-9a-f]{64})(   ; next key)?$" % re.escape(HOST), re.M)


def tlsa_printed(srv, *overrides):
    """{"current": "3 1 1 HEX", "next": ... or None} as `dns records` prints them."""
    args = sum((["-o", o] for o in overrides), [])
    out = srv.cli("dns", "records", "--domain", DOMAIN, *args).stdout
    found = {"current": None, "next": None}
    for rr, nxt in RECORD.findall(out):
        key = "next" if nxt else "current"
        assert found[key] is None, out
        found[key] = rr
    assert found["current"] is not None, out
    return found


def s_client(port, rrdata):
    """OpenSSL's DANE client (RFC 7672 §3.1.1: no name checks for DANE-EE) against our STARTTLS."""
    r = subprocess.run(["openssl", "s_client", "-starttls", "smtp", "-connect", "127.0.0.1:%d" % port,
                        "-servername", HOST, "-dane_tlsa_domain", HOST, "-dane_tlsa_rrdata", rrdata,
                        "-dane_ee_no_namechecks", "-verify_return_error"],
                       input=b"QUIT\r\n", capture_output=True, timeout=30)
    return r.returncode, r.stdout.decode("utf-8", "replace") + r.stderr.decode("utf-8", "replace")


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("own")).start()
    yield s
    s.stop()


def test_openssl_dane_client_verifies_the_printed_record(srv):
    rr = tlsa_printed(srv)["current"]
    rc, out = s_client(srv.smtp_port, rr)
    assert rc == 0, out
    assert "Verification: OK" in out, out
    # OpenSSL names the record by the end of its data
    assert "DANE TLSA 3 1 1 ...%s matched EE certificate at depth 0" % rr[-24:] in out, out
    # one hex digit off: OpenSSL refuses the same listener
    digit = rr[-1]
    wrong = rr[:-1] + ("0" if digit != "0" else "1")
    rc, out = s_client(srv.smtp_port, wrong)
    assert rc != 0, out
    assert "Verification: OK" not in out
    assert "Verification error" in out or "verify error" in out, out


def test_next_key_is_printed_beside_the_current_one(srv, tmp_path):
    _, key = self_signed_cert(tmp_path / "next", HOST)
    out = subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-outform", "DER"], capture_output=True,
                         check=True).stdout
    want = "3 1 1 " + hashlib.sha256(out).hexdigest()
    found = tlsa_printed(srv, "tls.next_key=" + key)
    assert found["next"] == want and found["current"] != want
    assert tlsa_printed(srv)["next"] is None
    # validated at load: a file that is no key is named with what is wrong
    bad = tmp_path / "bad.pem"
    bad.write_text("nothing\n")
    r = srv.cli("dns", "records", "--domain", DOMAIN, "-o", "tls.next_key=%s" % bad, check=False)
    assert r.returncode != 0 and "is not a PEM private key" in r.stderr, r.stderr
    # and a path that leads nowhere
    r = srv.cli("dns", "records", "--domain", DOMAIN, "-o", "tls.next_key=/nonexistent/key.pem", check=False)
    assert r.returncode != 0 and "cannot open /nonexistent/key.pem" in r.stderr
    # in the file: its name and line
    text = open(srv.conf).read() + "\n[tls]\nnext_key = %s\n" % bad
    conf = tmp_path / "bad.conf"
    conf.write_text(text)
    r = run_cli("dns", "records", "--domain", DOMAIN, "-c", str(conf), check=False)
    line = text.count("\n")
    assert r.returncode != 0, r.stdout
    assert "%s:%d: [tls] next_key = %s: %s is not a PEM private key" % (conf, line, bad, bad) in r.stderr, r.stderr


def check(srv, dns, *overrides):
    """`dns check` through the fixture: (exit code, the TLSA lines with their fix/note lines,
    needed items wrong)."""
    args = ["-o", "dns.resolver=" + dns.resolver] + sum((["-o", o] for o in overrides), [])
    r = srv.cli("dns", "check", "--domain", DOMAIN, "--ip", "127.0.0.1", *args, check=False)
    lines, take = [], False
    for line in r.stdout.splitlines():
        if not line.startswith(" "):
            take = "TLSA" in line
        if take:
            lines.append(line)
    bad = int(re.search(r"(\d+) needed items? wrong", r.stdout).group(1))
    return r.returncode, "\n".join(lines), bad


def signed_zone(dns, tmp_path, tlsa=None):
    """The fixture serving a signed mailwerk.test. with our host, its MX, and the TLSA records
    given; returns the -o setting of its trust anchor (a fresh key each time)."""
    dns.clear()
    anchor = tmp_path / "anchor.key"
    anchor.write_text(dns.sign("mailwerk.test.") + "\n")
    zone = {HOST: {"A": "127.0.0.1"}, DOMAIN: {"MX": "10 %s." % HOST}}
    if tlsa is not None:
        zone[TLSA_NAME] = {"TLSA": tlsa}
    dns.load(zone)
    return "dns.trust_anchor=%s" % anchor


def test_dns_check_judges_the_tlsa_rrset(srv, dns_server, tmp_path):  # noqa: F811
    rr = tlsa_printed(srv)["current"]

    # none published: missing (recommended), and proven absent in the signed zone
    rc, out, bad0 = check(srv, dns_server, signed_zone(dns_server, tmp_path))
    assert out.startswith("missing DANE TLSA at %s" % TLSA_NAME), out
    assert "not DNSSEC-validated" not in out

    # the printed record, signed: ok, no note
    rc, out, bad = check(srv, dns_server, signed_zone(dns_server, tmp_path, rr))
    assert out.startswith("ok      TLSA at %s: 3 1 1 matches the key the SMTP listener serves" % TLSA_NAME), out
    assert "note:" not in out and bad == bad0

    # a record of another key: wrong (DANE senders would defer), with the fix
    rc, out, bad = check(srv, dns_server, signed_zone(dns_server, tmp_path, "3 1 1 " + "ab" * 32))
    assert out.startswith("WRONG   TLSA at %s: 1 record (3 1 1 abababababababab...), none matching" % TLSA_NAME), out
    assert "fix: publish" in out and ("%s. IN TLSA %s" % (TLSA_NAME, rr)) in out, out
    assert bad == bad0 + 1 and rc != 0

    # DANE-TA or a whole-certificate hash: not compared, said so
    rc, out, bad = check(srv, dns_server, signed_zone(dns_server, tmp_path, "2 0 1 " + "cd" * 32))
    assert out.startswith("ok      TLSA at %s: 1 record of a kind this check does not compare" % TLSA_NAME), out
    assert "not checked" in out and bad == bad0

    # bogus (a signature that does not verify): wrong, the fix is in the zone's DNSSEC
    ta = signed_zone(dns_server, tmp_path, rr)
    dns_server.bogus(TLSA_NAME, "badsig")
    rc, out, bad = check(srv, dns_server, ta)
    assert out.startswith("WRONG   TLSA at %s: the answer failed DNSSEC validation" % TLSA_NAME), out
    assert "fix: repair the zone's DNSSEC signatures" in out and bad == bad0 + 1

    # the right record, but without a trust anchor nothing is validated: ok, with the note
    signed_zone(dns_server, tmp_path, rr)
    rc, out, bad = check(srv, dns_server)
    assert out.startswith("ok      TLSA at %s" % TLSA_NAME), out
    assert "note: the answer was not DNSSEC-validated (no [dns] trust_anchor is set" in out, out


def test_dns_check_next_key_record(srv, dns_server, tmp_path):  # noqa: F811
    _, key = self_signed_cert(tmp_path / "next", HOST)
    found = tlsa_printed(srv, "tls.next_key=" + key)
    nk = "tls.next_key=" + key
    rc, out, _ = check(srv, dns_server, signed_zone(dns_server, tmp_path, found["current"]), nk)
    assert "ok      TLSA at %s: 3 1 1 matches the key" % TLSA_NAME in out
    assert "missing the next key's TLSA at %s" % TLSA_NAME in out
    assert "none for the next key yet" in out, out
    rc, out, _ = check(srv, dns_server, signed_zone(dns_server, tmp_path, [found["current"], found["next"]]), nk)
    assert "ok      TLSA at %s: 3 1 1 matches the next key (ready for the rollover)" % TLSA_NAME in out, out
