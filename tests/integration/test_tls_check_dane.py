"""`mailwerk tls check DOMAIN` and its DANE part (RFC 7672): per MX host the DNSSEC state, the TLSA
records with their usability, the decision delivery takes (the same host_tls_decide), and with
--probe a live STARTTLS to aiosmtpd receivers whose certificates are checked against the records
by OpenSSL's DANE API. The zone is signed by the DNS fixture and validated inside mailwerk."""
import hashlib
import re

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from conftest import Server
from dnsfixture import dns_server  # noqa: F401 (a fixture)
from mtafixture import free_port_on, mtas, self_signed_cert  # noqa: F401


def spki_sha256(cert_path):
    with open(cert_path, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    return hashlib.sha256(cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).hexdigest()


def host_block(out, host):
    """The lines of `DANE MX host` up to the next host."""
    m = re.search(r"^DANE MX %s .*?(?=^DANE MX |\Z)" % re.escape(host), out, re.M | re.S)
    assert m, out
    return m.group(0)


def tls_check(srv, dns, port, anchor, domain, *extra):
    return srv.cli("tls", "check", domain, "--no-wait", "-o", "dns.resolver=" + dns.resolver,
                   "-o", "dns.trust_anchor=%s" % anchor, "-o", "delivery.remote_port=%d" % port, *extra, check=False)


def test_tls_check_dane_probe_match_and_mismatch(dns_server, mtas, tmp_path):  # noqa: F811
    port = free_port_on("127.0.0.2", "127.0.0.3")
    good = self_signed_cert(tmp_path / "good", "elsewhere.example")  # DANE-EE: names not checked
    bad = self_signed_cert(tmp_path / "bad", "mx2.t.dane.test")
    anchor = tmp_path / "anchor.key"
    anchor.write_text(dns_server.sign("dane.test.") + "\n")
    dns_server.load({
        "t.dane.test": {"MX": ["10 mx1.t.dane.test.", "20 mx2.t.dane.test."]},
        "mx1.t.dane.test": {"A": "127.0.0.2"},
        "mx2.t.dane.test": {"A": "127.0.0.3"},
        "_%d._tcp.mx1.t.dane.test" % port: {"TLSA": "3 1 1 " + spki_sha256(good[0])},
        # a record of the good key at mx2, whose server has another: a mismatch
        "_%d._tcp.mx2.t.dane.test" % port: {"TLSA": ["3 1 1 " + spki_sha256(good[0]), "1 1 1 " + "ab" * 32]},
    })
    mtas.start("127.0.0.2", port, starttls=True, tls_cert=good)
    mtas.start("127.0.0.3", port, starttls=True, tls_cert=bad)
    srv = Server(tmp_path / "mw")

    # without --probe: the DNS part, and exit 0 since every MX host gets DANE
    r = tls_check(srv, dns_server, port, anchor, "t.dane.test")
    assert "DANE: MX answer secure" in r.stdout, r.stdout
    b1 = host_block(r.stdout, "mx1.t.dane.test")
    assert "127.0.0.2 address=secure" in b1
    assert re.search(r"TLSA _%d\._tcp\.mx1\.t\.dane\.test: ok secure" % port, b1), b1
    assert "TLSA 3 1 1 %s: usable" % spki_sha256(good[0]) in b1
    assert "decision: action=dane reason=dane policy=tlsa tlsa=1" in b1
    b2 = host_block(r.stdout, "mx2.t.dane.test")
    assert "TLSA 1 1 1 " + "ab" * 32 + ": unusable (PKIX usages" in b2, b2
    assert "decision: action=dane reason=dane policy=tlsa tlsa=1" in b2
    assert r.returncode == 0, r.stdout + r.stderr

    # --probe: mx1's chain matches its record, mx2's does not (delivery would defer 4.7.5 there)
    r = tls_check(srv, dns_server, port, anchor, "t.dane.test", "--probe")
    b1 = host_block(r.stdout, "mx1.t.dane.test")
    assert "probe 127.0.0.2 port %d:" % port in b1
    assert re.search(r"probe: TLS TLSv1\.[23] ", b1), b1
    assert 'probe: verified=yes dane="3 1 1 %s..."' % spki_sha256(good[0])[:32] in b1, b1
    assert re.search(r"names=\"elsewhere\.example\" .*not_after=\S+Z days_left=[01]$", b1, re.M), b1
    b2 = host_block(r.stdout, "mx2.t.dane.test")
    assert "probe: verified=no" in b2 and "matches no usable TLSA record" in b2, b2
    assert 'names="mx2.t.dane.test"' in b2
    assert r.returncode == 1, r.stdout


def test_tls_check_insecure_and_unsigned(dns_server, mtas, tmp_path):  # noqa: F811
    """Outside the signed zone the MX answer is insecure: no TLSA lookup, the opportunistic
    decision; without a trust anchor nothing is validated at all."""
    port = free_port_on("127.0.0.2")
    anchor = tmp_path / "anchor.key"
    anchor.write_text(dns_server.sign("dane.test.") + "\n")
    dns_server.load({"plain.example": {"MX": "10 mx.plain.example."}, "mx.plain.example": {"A": "127.0.0.2"}})
    mtas.start("127.0.0.2", port, starttls=True)
    srv = Server(tmp_path / "mw")
    r = tls_check(srv, dns_server, port, anchor, "plain.example", "--probe")
    assert "DANE: MX answer insecure" in r.stdout, r.stdout
    b = host_block(r.stdout, "mx.plain.example")
    assert "address=insecure" in b and "TLSA: not looked up (the MX answer is not secure" in b, b
    assert "decision: action=may reason=opportunistic" in b, b
    assert "probe: certificate not checked" in b, b
    assert r.returncode == 1  # neither MTA-STS nor DANE
    r = srv.cli("tls", "check", "plain.example", "--no-wait", "-o", "dns.resolver=" + dns_server.resolver,
                "-o", "delivery.remote_port=%d" % port, check=False)
    assert "DANE: MX answer not validated (no [dns] trust_anchor)" in r.stdout, r.stdout
    assert "TLSA: not looked up (the resolver does not validate DNSSEC" in r.stdout


def test_tls_check_probe_without_starttls(dns_server, mtas, tmp_path):  # noqa: F811
    """A DANE host that offers no STARTTLS: the probe fails (delivery would defer, never send in the
    clear), and the exit status says so; records that are all unusable mean encrypt, unchecked."""
    port = free_port_on("127.0.0.2", "127.0.0.3")
    anchor = tmp_path / "anchor.key"
    anchor.write_text(dns_server.sign("dane.test.") + "\n")
    dns_server.load({
        "u.dane.test": {"MX": "10 mx.u.dane.test."}, "mx.u.dane.test": {"A": "127.0.0.2"},
        "_%d._tcp.mx.u.dane.test" % port: {"TLSA": "3 1 1 " + "ab" * 32},
        "v.dane.test": {"MX": "10 mx.v.dane.test."}, "mx.v.dane.test": {"A": "127.0.0.3"},
        "_%d._tcp.mx.v.dane.test" % port: {"TLSA": "0 0 1 " + "ab" * 32},
    })
    mtas.start("127.0.0.2", port, starttls=False)
    mtas.start("127.0.0.3", port, starttls=True)
    srv = Server(tmp_path / "mw")
    r = tls_check(srv, dns_server, port, anchor, "u.dane.test", "--probe")
    b = host_block(r.stdout, "mx.u.dane.test")
    assert "decision: action=dane" in b and "probe: failed: STARTTLS is not offered" in b, b
    assert r.returncode == 1
    r = tls_check(srv, dns_server, port, anchor, "v.dane.test", "--probe")
    b = host_block(r.stdout, "mx.v.dane.test")
    assert "unusable (PKIX usages" in b, b
    assert "decision: action=encrypt reason=tlsa_unusable" in b, b
    assert "probe: certificate not checked" in b, b
    assert r.returncode == 1  # encrypt is neither DANE nor an MTA-STS policy


def test_tls_check_bogus_answers(dns_server, tmp_path):  # noqa: F811
    """Answers that fail validation are told apart from insecure ones: a bogus MX answer, and a host
    whose address answers are bogus (delivery defers both)."""
    port = free_port_on("127.0.0.2")
    anchor = tmp_path / "anchor.key"
    anchor.write_text(dns_server.sign("dane.test.") + "\n")
    dns_server.load({"w.dane.test": {"MX": "10 mx.w.dane.test."}, "mx.w.dane.test": {"A": "127.0.0.2"},
                     "y.dane.test": {"MX": "10 mx.y.dane.test."}, "mx.y.dane.test": {"A": "127.0.0.2"},
                     "z.dane.test": {"MX": "10 mx.z.dane.test."}, "mx.z.dane.test": {"A": "127.0.0.2"}})
    dns_server.bogus("w.dane.test", "badsig")
    dns_server.bogus("mx.z.dane.test", "expired")
    srv = Server(tmp_path / "mw")
    r = tls_check(srv, dns_server, port, anchor, "w.dane.test")
    assert re.search(r"^DANE: MX answer bogus, tempfail: temporary DNS failure looking up the MX records", r.stdout,
                     re.M), r.stdout
    assert "DANE MX" not in r.stdout
    assert r.returncode == 1
    r = tls_check(srv, dns_server, port, anchor, "y.dane.test")
    assert "DANE: MX answer secure" in r.stdout, r.stdout
    b = host_block(r.stdout, "mx.y.dane.test")
    assert "address=secure (A secure, AAAA secure)" in b, b
    r = tls_check(srv, dns_server, port, anchor, "z.dane.test")
    assert "DANE: MX answer secure, tempfail: " in r.stdout and "mx.z.dane.test" in r.stdout, r.stdout
    assert r.returncode == 1
