"""DANE for outbound SMTP (RFC 7672): a DNSSEC-signed zone from the DNS fixture, validated inside
mailwerk by libunbound with [dns] trust_anchor, TLSA records at _PORT._tcp.MX, and aiosmtpd
receivers with certificates made at test time. Every TLS-policy failure defers (4.7.x) and tries
the next MX host; nothing is bounced and nothing goes out in the clear."""
import hashlib
import os

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from conftest import DOMAIN  # noqa: F401
from dnsfixture import dns_server  # noqa: F401 (a fixture)
from mtafixture import (ca_signed_cert, delivered, free_port_on, log_events, make_ca, message, mtas,  # noqa: F401
                        no_bounces, queue_rcpts, report_parts, reports, self_signed_cert, start_sender, submit,
                        wait_for)

TIMEOUT = 30


def spki_sha256(cert_path):
    """The TLSA "x 1 1" association data of a certificate: SHA-256 of its SubjectPublicKeyInfo."""
    with open(cert_path, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


def signed_sender(servers, dns, tmp_path, port, **keys):
    """The mailwerk under test, validating dane.test with the fixture's key."""
    anchor = tmp_path / "anchor.key"
    anchor.write_text(dns.sign("dane.test.") + "\n")
    return start_sender(servers, dns, port, **{"dns.trust_anchor": str(anchor), **keys})


def deferred(server, rcpt):
    found = wait_for(lambda: [r for a, r in queue_rcpts(server).items() if a == rcpt and r["state"] == "deferred"
                              and r["last_error"]], TIMEOUT)
    assert found, (server.queue(), server.log_text()[-4000:])
    return found[0]


def policy(server, host):
    lines = log_events(server, "tls_policy", host=host)
    assert lines, server.log_text()[-3000:]
    return lines[-1]


def test_dane_ee_match_is_delivered_authenticated(dns_server, mtas, servers, tmp_path):
    port = free_port_on("127.0.0.2")
    # DANE-EE(3) ignores the names in the certificate (RFC 7672 §3.1.1): this one names another host
    cert = self_signed_cert(tmp_path / "c", "elsewhere.example")
    dns_server.load({"a.dane.test": {"MX": "10 mx.a.dane.test."}, "mx.a.dane.test": {"A": "127.0.0.2"},
                     "_%d._tcp.mx.a.dane.test" % port: {"TLSA": "3 1 1 " + spki_sha256(cert[0])}})
    mta = mtas.start("127.0.0.2", port, starttls=True, tls_cert=cert)
    s = signed_sender(servers, dns_server, tmp_path, port)
    submit(s, ["bob@a.dane.test"], message("dane-ee"))
    tx = mta.wait_transactions(1, TIMEOUT)
    assert tx and tx[0].tls, s.log_text()[-3000:]
    p = policy(s, "mx.a.dane.test")
    assert p["action"] == "dane" and p["reason"] == "dane" and p["policy"] == "tlsa", p
    tls = log_events(s, "smtp_out_tls", host="mx.a.dane.test")[-1]
    assert tls["verified"] == "yes" and tls["policy"] == "dane", tls
    assert tls["dane"].startswith("3 1 1 " + spki_sha256(cert[0])[:32]), tls
    delivered(s, "bob@a.dane.test")


def test_dane_ta_at_a_private_ca(dns_server, mtas, servers, tmp_path):
    port = free_port_on("127.0.0.2")
    ca = make_ca(tmp_path / "ca")
    leaf, key = ca_signed_cert(tmp_path / "ca", ca, "mx.b.dane.test")
    chain = tmp_path / "chain.pem"  # DANE-TA(2): the server sends its trust anchor in its chain
    chain.write_bytes(open(leaf, "rb").read() + open(ca[0], "rb").read())
    dns_server.load({"b.dane.test": {"MX": "10 mx.b.dane.test."}, "mx.b.dane.test": {"A": "127.0.0.2"},
                     "_%d._tcp.mx.b.dane.test" % port: {"TLSA": "2 1 1 " + spki_sha256(ca[0])}})
    mta = mtas.start("127.0.0.2", port, starttls=True, tls_cert=(str(chain), key))
    s = signed_sender(servers, dns_server, tmp_path, port)
    submit(s, ["bob@b.dane.test"], message("dane-ta"))
    assert mta.wait_transactions(1, TIMEOUT), s.log_text()[-3000:]
    tls = log_events(s, "smtp_out_tls", host="mx.b.dane.test")[-1]
    assert tls["verified"] == "yes" and tls["dane"].startswith("2 1 1 "), tls
    delivered(s, "bob@b.dane.test")


def test_mismatch_goes_to_the_next_mx_then_defers(dns_server, mtas, servers, tmp_path):
    port = free_port_on("127.0.0.2", "127.0.0.3")
    good = self_signed_cert(tmp_path / "good", "mx2.c.dane.test")
    bad = self_signed_cert(tmp_path / "bad", "mx1.c.dane.test")
    dns_server.load({"c.dane.test": {"MX": ["10 mx1.c.dane.test.", "20 mx2.c.dane.test."]},
                     "mx1.c.dane.test": {"A": "127.0.0.2"}, "mx2.c.dane.test": {"A": "127.0.0.3"},
                     # mx1's record is for another key: its handshake fails, mx2's matches
                     "_%d._tcp.mx1.c.dane.test" % port: {"TLSA": "3 1 1 " + spki_sha256(good[0])},
                     "_%d._tcp.mx2.c.dane.test" % port: {"TLSA": "3 1 1 " + spki_sha256(good[0])}})
    mx1 = mtas.start("127.0.0.2", port, starttls=True, tls_cert=bad)
    mx2 = mtas.start("127.0.0.3", port, starttls=True, tls_cert=good)
    s = signed_sender(servers, dns_server, tmp_path, port)
    submit(s, ["bob@c.dane.test"], message("dane-next"))
    assert mx2.wait_transactions(1, TIMEOUT), s.log_text()[-3000:]
    assert mx1.connections and mx1.transactions == []  # it got a handshake, never the message
    delivered(s, "bob@c.dane.test")

    # with mx2 gone from the MX set, the mismatch alone defers with 4.7.5, nothing sent, no bounce
    dns_server.load({"d.dane.test": {"MX": "10 mx1.c.dane.test."}})
    submit(s, ["bob@d.dane.test"], message("dane-mismatch"))
    r = deferred(s, "bob@d.dane.test")
    assert "4.7.5" in r["last_error"], r
    assert mx1.transactions == []
    no_bounces(s)


def test_secure_absence_of_tlsa_is_opportunistic(dns_server, mtas, servers, tmp_path):
    port = free_port_on("127.0.0.2")
    dns_server.load({"e.dane.test": {"MX": "10 mx.e.dane.test."}, "mx.e.dane.test": {"A": "127.0.0.2"}})
    mta = mtas.start("127.0.0.2", port, starttls=True)
    s = signed_sender(servers, dns_server, tmp_path, port)
    submit(s, ["bob@e.dane.test"], message("dane-none"))
    assert mta.wait_transactions(1, TIMEOUT), s.log_text()[-3000:]
    p = policy(s, "mx.e.dane.test")
    assert p["action"] == "may" and p["reason"] == "opportunistic", p
    assert ("_%d._tcp.mx.e.dane.test" % port, "TLSA") in dns_server.asked()
    delivered(s, "bob@e.dane.test")


def test_unusable_records_mean_encryption_without_authentication(dns_server, mtas, servers, tmp_path):
    port = free_port_on("127.0.0.2")
    dns_server.load({"f.dane.test": {"MX": "10 mx.f.dane.test."}, "mx.f.dane.test": {"A": "127.0.0.2"},
                     # PKIX-EE(1) is not for SMTP (RFC 7672 §3.1.3)
                     "_%d._tcp.mx.f.dane.test" % port: {"TLSA": "1 1 1 " + "ab" * 32}})
    mta = mtas.start("127.0.0.2", port, starttls=True)
    s = signed_sender(servers, dns_server, tmp_path, port)
    submit(s, ["bob@f.dane.test"], message("dane-unusable"))
    tx = mta.wait_transactions(1, TIMEOUT)
    assert tx and tx[0].tls, s.log_text()[-3000:]
    p = policy(s, "mx.f.dane.test")
    assert p["action"] == "encrypt" and p["reason"] == "tlsa_unusable", p
    delivered(s, "bob@f.dane.test")

    # the same host without STARTTLS: no delivery in the clear, a deferral
    plain = mtas.start("127.0.0.3", port)
    dns_server.load({"g.dane.test": {"MX": "10 mx.g.dane.test."}, "mx.g.dane.test": {"A": "127.0.0.3"},
                     "_%d._tcp.mx.g.dane.test" % port: {"TLSA": "0 0 1 " + "ab" * 32}})
    submit(s, ["bob@g.dane.test"], message("dane-unusable-plain"))
    r = deferred(s, "bob@g.dane.test")
    assert "4.7.4" in r["last_error"], r
    assert plain.transactions == []


def test_tlsa_lookup_failure_or_bogus_defers_without_connecting(dns_server, mtas, servers, tmp_path):
    port = free_port_on("127.0.0.2")
    dns_server.load({"h.dane.test": {"MX": "10 mx.h.dane.test."}, "mx.h.dane.test": {"A": "127.0.0.2"},
                     "i.dane.test": {"MX": "10 mx.i.dane.test."}, "mx.i.dane.test": {"A": "127.0.0.2"},
                     "_%d._tcp.mx.i.dane.test" % port: {"TLSA": "3 1 1 " + "cd" * 32}})
    dns_server.servfail("_%d._tcp.mx.h.dane.test" % port)
    dns_server.bogus("_%d._tcp.mx.i.dane.test" % port, "badsig")
    mta = mtas.start("127.0.0.2", port, starttls=True)
    s = signed_sender(servers, dns_server, tmp_path, port)
    submit(s, ["bob@h.dane.test", "bob@i.dane.test"], message("dane-servfail"))
    for rcpt, host in (("bob@h.dane.test", "mx.h.dane.test"), ("bob@i.dane.test", "mx.i.dane.test")):
        r = deferred(s, rcpt)
        assert "4.7.5" in r["last_error"], r
        assert policy(s, host)["reason"] == "tlsa_lookup_error"
    assert mta.connections == []
    no_bounces(s)


def test_insecure_mx_asks_no_tlsa_and_override_dane_only(dns_server, mtas, servers, tmp_path):
    port = free_port_on("127.0.0.2")
    # outside the signed zone: insecure, so TLSA is not consulted at all (RFC 7672 §2.2)
    dns_server.load({"plain.example": {"MX": "10 mx.plain.example."}, "mx.plain.example": {"A": "127.0.0.2"},
                     "strict.example": {"MX": "10 mx.plain.example."}})
    mta = mtas.start("127.0.0.2", port, starttls=True)
    s = signed_sender(servers, dns_server, tmp_path, port, **{"tls_policy.strict.example": "dane-only"})
    submit(s, ["bob@plain.example"], message("insecure"))
    assert mta.wait_transactions(1, TIMEOUT), s.log_text()[-3000:]
    assert policy(s, "mx.plain.example")["action"] == "may"
    assert not [q for q in dns_server.asked() if q[1] == "TLSA"], dns_server.asked()
    # [tls_policy] dane-only: without DANE nothing goes, a deferral
    submit(s, ["bob@strict.example"], message("strict"))
    r = deferred(s, "bob@strict.example")
    assert "4.7.5" in r["last_error"], r
    assert len(mta.transactions) == 1
    no_bounces(s)


def requiretls_report(server, marker):
    """The failure report of a REQUIRETLS message: 5.7.30, and nothing of the message in it."""
    local, domain = server.user.split("@")
    found = wait_for(lambda: reports(server.dir, domain, local), TIMEOUT)
    assert found, server.log_text()[-3000:]
    dsn = found[-1]
    assert [p.get_content_type() for p in dsn.iter_parts()] == ["text/plain", "message/delivery-status"]
    assert marker.encode() not in dsn.as_bytes()  # neither its Subject nor its body (RFC 8689 §5)
    _, (rcpt,) = report_parts(dsn)
    assert rcpt["Action"] == "failed" and rcpt["Status"] == "5.7.30", rcpt
    return dsn


def test_requiretls_needs_a_server_that_offers_it(dns_server, mtas, servers, tmp_path):
    port = free_port_on("127.0.0.2")
    cert = self_signed_cert(tmp_path / "c", "mx.r.dane.test")
    dns_server.load({"r.dane.test": {"MX": "10 mx.r.dane.test."}, "mx.r.dane.test": {"A": "127.0.0.2"},
                     "_%d._tcp.mx.r.dane.test" % port: {"TLSA": "3 1 1 " + spki_sha256(cert[0])}})
    # authenticated by DANE, but aiosmtpd does not offer REQUIRETLS: the message must not go on
    # without it (RFC 8689 §4.2.1), and no other MX host is left, so it is returned
    mta = mtas.start("127.0.0.2", port, starttls=True, tls_cert=cert)
    s = signed_sender(servers, dns_server, tmp_path, port)
    submit(s, ["bob@r.dane.test"], message("rtls-not-offered"), mail_options=["REQUIRETLS"])
    requiretls_report(s, "rtls-not-offered")
    assert mta.connections and mta.transactions == []
    out = log_events(s, "requiretls_unmet", domain="r.dane.test")
    assert out, s.log_text()[-3000:]

    # an MX host authenticated neither by DNSSEC nor by MTA-STS (an unsigned zone): returned too,
    # without a connection
    dns_server.load({"unsigned.test": {"MX": "10 mx.unsigned.test."}, "mx.unsigned.test": {"A": "127.0.0.3"}})
    plain = mtas.start("127.0.0.3", port, starttls=True, tls_cert=cert)
    submit(s, ["bob@unsigned.test"], message("rtls-insecure"), mail_options=["REQUIRETLS"])
    assert wait_for(lambda: log_events(s, "requiretls_unmet", domain="unsigned.test"), TIMEOUT), s.log_text()[-3000:]
    p = policy(s, "mx.unsigned.test")
    assert (p["action"], p["reason"]) == ("skip", "requiretls_unmet"), p
    assert plain.connections == []
