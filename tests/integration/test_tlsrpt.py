"""TLS reporting (RFC 8460): mailwerk delivers to aiosmtpd receivers (DANE with a signed zone from
the DNS fixture, STARTTLS and plain ones), counts each session's outcome, and after the period
([tlsrpt] report_interval, seconds here instead of a day) sends each domain that publishes
_smtp._tls its report: gzip'd JSON POSTed to an HTTPS receiver (http.server + ssl with a throwaway
CA) and mailed, DKIM-signed, to an aiosmtpd sink. The JSON is checked against the RFC 8460 §4
schema (python3-jsonschema) and the signature with dkimpy."""
import email
import email.policy
import gzip
import hashlib
import http.server
import json
import ssl
import threading
import time

import dkim
import jsonschema
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from conftest import DOMAIN, HOST  # noqa: F401
from dnsfixture import dns_server, fixture_txt  # noqa: F401 (a fixture)
from mtafixture import (ca_signed_cert, delivered, free_port_on, log_events, make_ca, message, mtas,  # noqa: F401
                        self_signed_cert, start_sender, submit, wait_for)

TIMEOUT = 40
INTERVAL = "3s"

# RFC 8460 §4 as a JSON Schema: the fields and types of §4.1-§4.4 (required ones required; a
# report MUST have policies as an array, §4), the result types of §4.3, RFC 3339 date-times
RESULT_TYPES = ["starttls-not-supported", "certificate-host-mismatch", "certificate-expired",
                "certificate-not-trusted", "validation-failure", "tlsa-invalid", "dnssec-invalid",
                "dane-required", "sts-policy-fetch-error", "sts-policy-invalid", "sts-webpki-invalid"]
RFC3339 = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
SCHEMA = {
    "type": "object",
    "required": ["organization-name", "date-range", "contact-info", "report-id", "policies"],
    "properties": {
        "organization-name": {"type": "string", "minLength": 1},
        "date-range": {
            "type": "object", "required": ["start-datetime", "end-datetime"],
            "properties": {"start-datetime": {"type": "string", "pattern": RFC3339},
                           "end-datetime": {"type": "string", "pattern": RFC3339}},
        },
        "contact-info": {"type": "string", "minLength": 1},
        "report-id": {"type": "string", "minLength": 1},
        "policies": {
            "type": "array", "minItems": 1,
            "items": {
                "type": "object", "required": ["policy", "summary"],
                "properties": {
                    "policy": {
                        "type": "object", "required": ["policy-type", "policy-domain"],
                        "properties": {
                            "policy-type": {"enum": ["tlsa", "sts", "no-policy-found"]},
                            "policy-string": {"type": "array", "items": {"type": "string"}},
                            "policy-domain": {"type": "string", "minLength": 1},
                            "mx-host": {"type": "array", "items": {"type": "string"}},
                        },
                        "additionalProperties": False,
                    },
                    "summary": {
                        "type": "object",
                        "required": ["total-successful-session-count", "total-failure-session-count"],
                        "properties": {"total-successful-session-count": {"type": "integer", "minimum": 0},
                                       "total-failure-session-count": {"type": "integer", "minimum": 0}},
                        "additionalProperties": False,
                    },
                    "failure-details": {
                        "type": "array",
                        "items": {
                            "type": "object", "required": ["result-type", "failed-session-count"],
                            "properties": {
                                "result-type": {"enum": RESULT_TYPES},
                                "sending-mta-ip": {"type": "string"},
                                "receiving-mx-hostname": {"type": "string"},
                                "receiving-mx-helo": {"type": "string"},
                                "receiving-ip": {"type": "string"},
                                "failed-session-count": {"type": "integer", "minimum": 1},
                                "additional-information": {"type": "string", "format": "uri"},
                                "failure-reason-code": {"type": "string"},
                            },
                            "additionalProperties": False,
                        },
                    },
                },
                "additionalProperties": False,
            },
        },
    },
    "additionalProperties": False,
}


def spki_sha256(cert_path):
    with open(cert_path, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    return hashlib.sha256(cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).hexdigest()


class RuaServer:
    """An HTTPS report receiver: keeps each POST (path, headers, body); answers `status` (a list is
    used up one answer per request, then 200)."""

    def __init__(self, addr, port, cert):
        self.posts = []
        self.statuses = []
        self.lock = threading.Lock()
        rua = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                with rua.lock:
                    status = rua.statuses.pop(0) if rua.statuses else 200
                    rua.posts.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                      "status": status})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.httpd = Server((addr, port), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*cert)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def ok_posts(self):
        with self.lock:
            return [p for p in self.posts if p["status"] == 200]

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def rua_https(tmp_path):
    """(RuaServer on 127.0.0.6 as rua.tlsrpt.example, its CA file, its port)."""
    ca = make_ca(tmp_path / "rua-ca")
    cert = ca_signed_cert(tmp_path / "rua-ca", ca, "rua.tlsrpt.example")
    port = free_port_on("127.0.0.6")
    srv = RuaServer("127.0.0.6", port, cert)
    yield srv, ca[0], port
    srv.stop()


def report_of(body):
    """The gunzip'd, schema-checked report."""
    doc = json.loads(gzip.decompress(body))
    jsonschema.validate(doc, SCHEMA, format_checker=jsonschema.FormatChecker())
    return doc


def counts(reports):
    """{(policy-type, result-type or "success"): sessions} over reports."""
    out = {}
    for doc in reports:
        for p in doc["policies"]:
            t = p["policy"]["policy-type"]
            out[(t, "success")] = out.get((t, "success"), 0) + p["summary"]["total-successful-session-count"]
            fails = sum(f["failed-session-count"] for f in p.get("failure-details", []))
            assert fails == p["summary"]["total-failure-session-count"], p
            for f in p.get("failure-details", []):
                k = (t, f["result-type"])
                out[k] = out.get(k, 0) + f["failed-session-count"]
    return {k: v for k, v in out.items() if v}


def publish_dkim(server, dns):
    """The sender's DKIM key records from `dns records`, into the fixture (for dkimpy)."""
    out = server.cli("dns", "records", "--domain", DOMAIN, "--ip", "127.0.0.1").stdout
    lines = [line for line in out.splitlines() if "._domainkey." in line and not line.lstrip().startswith(";")]
    assert lines, out
    dns.load("\n".join(lines))


def sender(servers, dns, tmp_path, port, ca_file, **keys):
    anchor = tmp_path / "anchor.key"
    anchor.write_text(dns.sign("dane.test.") + "\n")
    return start_sender(servers, dns, port, **{
        "dns.trust_anchor": str(anchor), "tlsrpt.reports": "yes", "tlsrpt.report_interval": INTERVAL,
        "tlsrpt.ca_file": ca_file, "tlsrpt.report_from": "tls-reports@" + DOMAIN,
        "webhooks.allow_private": "yes", **keys})


@pytest.mark.serial
def test_reports_by_https_and_mail(dns_server, mtas, servers, tmp_path, rua_https):
    rua, ca_file, rua_port = rua_https
    port = free_port_on("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5")
    good = self_signed_cert(tmp_path / "good", "mx2.t1.dane.test")
    bad = self_signed_cert(tmp_path / "bad", "mx1.t1.dane.test")
    plain_cert = self_signed_cert(tmp_path / "plain", "mx.ok.example")
    url = "https://rua.tlsrpt.example:%d/tlsrpt" % rua_port
    dns_server.load({
        # DANE: mx1's TLSA is for another key (tlsa-invalid, then the next MX), mx2's matches
        "t1.dane.test": {"MX": ["10 mx1.t1.dane.test.", "20 mx2.t1.dane.test."]},
        "mx1.t1.dane.test": {"A": "127.0.0.2"}, "mx2.t1.dane.test": {"A": "127.0.0.3"},
        "_%d._tcp.mx1.t1.dane.test" % port: {"TLSA": "3 1 1 " + spki_sha256(good[0])},
        "_%d._tcp.mx2.t1.dane.test" % port: {"TLSA": "3 1 1 " + spki_sha256(good[0])},
        "_smtp._tls.t1.dane.test": {"TXT": "v=TLSRPTv1; rua=" + url},
        # no policy: a receiver without STARTTLS (starttls-not-supported, delivered in clear) and
        # one with it (a success); reports by mail and HTTPS
        "open.example": {"MX": ["10 mx.open.example."]}, "mx.open.example": {"A": "127.0.0.4"},
        "ok.example": {"MX": ["10 mx.ok.example."]}, "mx.ok.example": {"A": "127.0.0.5"},
        "_smtp._tls.open.example": {"TXT": ["v=spf1 -all", "v=TLSRPTv1; rua=mailto:tlsrpt@sink.dane.test,%s" % url]},
        # the sink of the report mail is mx1, whose DANE fails: report mail says TLS-Required: No
        # and must get through anyway (§5.3.1), where other mail is deferred
        "sink.dane.test": {"MX": ["10 mx1.t1.dane.test."]},
        # two TLS-RPT records: no report (§3)
        "_smtp._tls.ok.example": {"TXT": ["v=TLSRPTv1; rua=" + url, "v=TLSRPTv1; rua=mailto:x@sink.dane.test"]},
        "rua.tlsrpt.example": {"A": "127.0.0.6"},
    })
    mx1 = mtas.start("127.0.0.2", port, starttls=True, tls_cert=bad)
    mx2 = mtas.start("127.0.0.3", port, starttls=True, tls_cert=good)
    plain = mtas.start("127.0.0.4", port)
    ok = mtas.start("127.0.0.5", port, starttls=True, tls_cert=plain_cert)
    s = sender(servers, dns_server, tmp_path, port, ca_file)
    publish_dkim(s, dns_server)
    submit(s, ["bob@t1.dane.test"], message("rpt-dane"))
    submit(s, ["bob@open.example", "carol@open.example"], message("rpt-open"))  # one session
    submit(s, ["bob@ok.example"], message("rpt-ok"))
    for rcpt in ("bob@t1.dane.test", "bob@open.example", "carol@open.example", "bob@ok.example"):
        delivered(s, rcpt)
    assert not [tx for tx in mx1.transactions if b"rpt-dane" in (tx.data or b"")] and mx2.transactions
    assert plain.transactions

    # HTTPS: t1.dane.test and open.example post to the receiver
    def by_domain():
        out = {}
        for p in rua.ok_posts():
            doc = report_of(p["body"])
            out.setdefault(doc["policies"][0]["policy"]["policy-domain"], []).append((p, doc))
        return out
    want_dane = {("tlsa", "success"): 1, ("tlsa", "tlsa-invalid"): 1}
    # (the two sessions may fall into two periods, so into two reports)
    assert wait_for(lambda: "open.example" in by_domain() and
                    counts([doc for _, doc in by_domain().get("t1.dane.test", [])]) == want_dane, TIMEOUT), \
        (rua.posts, s.log_text()[-4000:])
    posts = by_domain()
    for p, doc in posts["t1.dane.test"] + posts["open.example"]:
        assert p["headers"]["Content-Type"] == "application/tlsrpt+gzip", p["headers"]
        assert p["path"] == "/tlsrpt"
        assert doc["organization-name"] == HOST and doc["contact-info"] == "tls-reports@" + DOMAIN
    dane = [doc for _, doc in posts["t1.dane.test"]]
    assert counts(dane) == want_dane, dane
    for doc in dane:
        for pol in doc["policies"]:
            assert pol["policy"]["policy-string"] == ["3 1 1 " + spki_sha256(good[0])], pol
            assert pol["policy"]["mx-host"][0] in ("mx1.t1.dane.test", "mx2.t1.dane.test"), pol
            for f in pol.get("failure-details", []):
                assert f["receiving-mx-hostname"] == "mx1.t1.dane.test" and f["receiving-ip"] == "127.0.0.2", f
                assert f["sending-mta-ip"] == "127.0.0.1", f
    opened = [doc for _, doc in posts["open.example"]]
    assert counts(opened) == {("no-policy-found", "starttls-not-supported"): 1}, opened

    # mail: the same report for open.example to the sink, signed, TLS-Required: No
    def report_mails():
        out = []
        for tx in mx1.transactions:
            if "tlsrpt@sink.dane.test" in tx.rcpts and tx.data:
                out.append(tx.data)
        return out
    assert wait_for(report_mails, TIMEOUT), s.log_text()[-4000:]
    raw = report_mails()[0]
    d = dkim.DKIM(raw, minkey=1024)
    assert d.verify(dnsfunc=lambda name, timeout=5: fixture_txt(dns_server, name)), raw[:1500]
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["TLS-Report-Domain"] == "open.example"
    assert msg["TLS-Report-Submitter"] == HOST
    assert msg["TLS-Required"] == "No"
    assert msg.get_content_type() == "multipart/report" and msg.get_param("report-type") == "tlsrpt"
    atts = [p for p in msg.iter_attachments() if p.get_content_type() == "application/tlsrpt+gzip"]
    assert len(atts) == 1, [p.get_content_type() for p in msg.iter_parts()]
    doc = report_of(atts[0].get_payload(decode=True))
    name = atts[0].get_filename()
    parts = name[:-len(".json.gz")].split("!")
    assert name.endswith(".json.gz") and parts[0] == HOST and parts[1] == "open.example", name
    assert int(parts[2]) < int(parts[3]), name
    subject = " ".join(str(msg["Subject"]).split())
    assert subject == "Report Domain: open.example Submitter: %s Report-ID: <%s>" % (HOST, doc["report-id"]), subject
    assert doc["report-id"] in [d2["report-id"] for d2 in opened]  # the same report both ways
    signature = str(msg["DKIM-Signature"]).replace(" ", "")
    assert ";l=" not in signature and "d=" + DOMAIN in signature, signature

    # ok.example publishes two records: no report, its counts dropped with a log line
    assert wait_for(lambda: log_events(s, "tlsrpt_report_dropped", domain="ok.example"), TIMEOUT), s.log_text()[-3000:]
    assert "ok.example" not in by_domain()
    sent = log_events(s, "tlsrpt_report_sent")
    assert {e["domain"] for e in sent} >= {"t1.dane.test", "open.example"}, sent
    status = json.loads(s.cli("status", "--json", "--no-dns").stdout)["tlsrpt"]
    assert status["last_sent"] and status["last_sent_domain"] in {e["domain"] for e in sent}, status
    assert "tls reports: last sent " in s.cli("status", "--no-dns").stdout


@pytest.mark.serial
def test_failing_receiver_keeps_the_report_for_a_retry(dns_server, mtas, servers, tmp_path, rua_https):
    rua, ca_file, rua_port = rua_https
    rua.statuses = [500, 500]
    port = free_port_on("127.0.0.4")
    dns_server.load({"retry.example": {"MX": ["10 mx.retry.example."]}, "mx.retry.example": {"A": "127.0.0.4"},
                     "_smtp._tls.retry.example": {"TXT": "v=TLSRPTv1;rua=https://rua.tlsrpt.example:%d/r" % rua_port},
                     "rua.tlsrpt.example": {"A": "127.0.0.6"}})
    mtas.start("127.0.0.4", port)
    s = sender(servers, dns_server, tmp_path, port, ca_file)
    submit(s, ["u%d@retry.example" % i for i in range(3)], message("retry"))
    for i in range(3):
        delivered(s, "u%d@retry.example" % i)
    assert wait_for(lambda: rua.ok_posts(), TIMEOUT), (rua.posts, s.log_text()[-4000:])
    failed = log_events(s, "tlsrpt_report_failed", domain="retry.example")
    assert len(failed) >= 2 and all("500" in e["error"] for e in failed[:2]), failed
    assert [p["status"] for p in rua.posts[:3]] == [500, 500, 200], rua.posts
    docs = [report_of(p["body"]) for p in rua.posts]
    # the report sent again is the same report, and no session is lost or counted twice
    assert docs[0]["report-id"] == docs[2]["report-id"]
    assert counts([report_of(p["body"]) for p in rua.ok_posts()]) == {
        ("no-policy-found", "starttls-not-supported"): 1}
    assert wait_for(lambda: log_events(s, "tlsrpt_report_sent", domain="retry.example"), TIMEOUT)


@pytest.mark.serial
def test_kill_between_recording_and_reporting_loses_no_count(dns_server, mtas, servers, tmp_path, rua_https):
    rua, ca_file, rua_port = rua_https
    port = free_port_on("127.0.0.4")
    n = 4  # domains, one session each (a connection is reused only within a destination)
    zone = {"mx.kill.example": {"A": "127.0.0.4"}, "rua.tlsrpt.example": {"A": "127.0.0.6"}}
    for i in range(n):
        zone["k%d.example" % i] = {"MX": ["10 mx.kill.example."]}
        zone["_smtp._tls.k%d.example" % i] = {"TXT": "v=TLSRPTv1;rua=https://rua.tlsrpt.example:%d/k" % rua_port}
    dns_server.load(zone)
    mtas.start("127.0.0.4", port)
    # a longer period, so that the kill comes before it ends
    s = sender(servers, dns_server, tmp_path, port, ca_file, **{"tlsrpt.report_interval": "20s"})
    for i in range(n):
        submit(s, ["bob@k%d.example" % i], message("kill-%d" % i))
    for i in range(n):
        delivered(s, "bob@k%d.example" % i)
    reported_before = len(rua.ok_posts())
    s.kill()
    s.start()

    def reported():
        return {report_of(p["body"])["policies"][0]["policy"]["policy-domain"] for p in rua.ok_posts()}
    assert wait_for(lambda: len(reported()) == n, 60), (reported(), s.log_text()[-4000:])
    got = counts([report_of(p["body"]) for p in rua.ok_posts()])
    assert got == {("no-policy-found", "starttls-not-supported"): n}, got
    assert reported_before < n  # some counts were only in the store when it was killed


@pytest.mark.serial
def test_certificate_and_dnssec_failures_are_reported(dns_server, mtas, servers, tmp_path, rua_https):
    rua, ca_file, rua_port = rua_https
    port = free_port_on("127.0.0.2", "127.0.0.3")
    rec = {"TXT": "v=TLSRPTv1; rua=https://rua.tlsrpt.example:%d/f" % rua_port}
    dns_server.load({
        # [tls_policy] verify, and a self-signed certificate: certificate-not-trusted
        "verify.example": {"MX": ["10 mx.verify.example."]}, "mx.verify.example": {"A": "127.0.0.2"},
        "_smtp._tls.verify.example": rec,
        # a bogus TLSA answer: the host is skipped before any connection, dnssec-invalid
        "bogus.dane.test": {"MX": ["10 mx.bogus.dane.test."]}, "mx.bogus.dane.test": {"A": "127.0.0.3"},
        "_%d._tcp.mx.bogus.dane.test" % port: {"TLSA": "3 1 1 " + "cd" * 32},
        "_smtp._tls.bogus.dane.test": rec,
        "rua.tlsrpt.example": {"A": "127.0.0.6"},
    })
    dns_server.bogus("_%d._tcp.mx.bogus.dane.test" % port, "badsig")
    mtas.start("127.0.0.2", port, starttls=True, tls_cert=self_signed_cert(tmp_path / "v", "mx.verify.example"))
    skipped = mtas.start("127.0.0.3", port, starttls=True, tls_cert=self_signed_cert(tmp_path / "b", "x"))
    s = sender(servers, dns_server, tmp_path, port, ca_file, **{"tls_policy.verify.example": "verify"})
    submit(s, ["bob@verify.example", "bob@bogus.dane.test"], message("failures"))

    def got(domain):
        return counts([report_of(p["body"]) for p in rua.ok_posts()
                       if report_of(p["body"])["policies"][0]["policy"]["policy-domain"] == domain])
    # both stay deferred and are tried every second: each attempt is a session
    assert wait_for(lambda: got("verify.example").get(("no-policy-found", "certificate-not-trusted"), 0) >= 1 and
                    got("bogus.dane.test").get(("no-policy-found", "dnssec-invalid"), 0) +
                    got("bogus.dane.test").get(("tlsa", "dnssec-invalid"), 0) >= 1, TIMEOUT), \
        (got("verify.example"), got("bogus.dane.test"), s.log_text()[-4000:])
    assert set(got("verify.example")) == {("no-policy-found", "certificate-not-trusted")}
    assert {k[1] for k in got("bogus.dane.test")} == {"dnssec-invalid"}
    assert skipped.connections == []
    for p in rua.ok_posts():
        for pol in report_of(p["body"])["policies"]:
            for f in pol.get("failure-details", []):
                if f["result-type"] == "dnssec-invalid":
                    assert "receiving-ip" not in f and f["receiving-mx-hostname"] == "mx.bogus.dane.test", f
                else:
                    assert f["receiving-ip"] == "127.0.0.2" and "self-signed" in f.get("failure-reason-code", ""), f
