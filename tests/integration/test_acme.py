"""Certificates by ACME (RFC 8555) against Debian's pebble on loopback, with real validation: pebble
resolves the names through the DNS fixture and fetches HTTP-01 answers from mailwerk's http listener
or makes TLS-ALPN-01 (RFC 8737) handshakes with its https listener. The served certificate is read
with Python's ssl module and checked against pebble's root from its management interface."""
import hashlib
import json
import os
import re
import signal
import smtplib
import socket
import ssl
import stat
import subprocess
import time

import pytest

from acmefixture import AcmeSetup
from conftest import BIN, HOST, Server, free_port
from dnsfixture import dns_server  # noqa: F401  (the fixture)


def served_cert(port, name=HOST, cadata=None):
    """The leaf certificate the TLS listener on port presents for name (DER), verified against
    cadata when given."""
    if cadata is None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context(cadata=cadata)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=name) as s:
            return s.getpeercert(binary_form=True)


def serial_of(der):
    out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-serial"], input=der,
                         capture_output=True, check=True).stdout.decode()
    return out.strip().split("=", 1)[1].lower().lstrip("0")  # as pebble's management API writes it


def issuer_of(der):
    return subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-issuer"], input=der,
                          capture_output=True, check=True).stdout.decode().strip()


def wait_log(srv, pattern, count=1, timeout=60.0):
    deadline = time.monotonic() + timeout
    while True:
        found = re.findall(pattern, srv.log_text())
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise AssertionError("no %d× %r in the log:\n%s" % (count, pattern, srv.log_text()[-5000:]))
        time.sleep(0.1)


@pytest.fixture
def setup(tmp_path, dns_server):  # noqa: F811
    made = []

    def make(**kw):
        s = AcmeSetup(tmp_path, dns_server, **kw)
        made.append(s)
        return s.start()
    yield make
    for s in made:
        s.stop()


def test_issue_http01(setup):
    s = setup()
    srv = s.srv
    wait_log(srv, r"event=acme_installed")
    root = s.pebble.roots()
    der = served_cert(s.https_port, cadata=root)  # verifies the chain to pebble's root and the name
    assert "Pebble Intermediate CA" in issuer_of(der)
    assert s.pebble.cert_status(serial_of(der))["Status"] == "Valid"
    # the same on the implicit-TLS submission listener: every listener serves it
    assert served_cert(srv.submissions_port, cadata=root) == der
    # real validation: pebble fetched the challenge from our http listener
    assert "event=acme_challenge name=%s type=http-01" % HOST in srv.log_text()
    # the files are the server's alone
    for name in ("account.pem", "cert.pem"):
        mode = stat.S_IMODE(os.stat(os.path.join(srv.dir, "acme", name)).st_mode)
        assert mode == 0o600, (name, oct(mode))
    # a restart serves the stored certificate at once, without asking again
    srv.stop()
    srv.start()
    assert served_cert(s.https_port, cadata=root) == der
    assert "event=acme_certificate_loaded" in srv.log_text()
    status = json.loads(srv.cli("status", "--json", "--no-dns").stdout)
    assert status["certificates"][0]["config"] == "[acme]"
    assert status["certificates"][0]["file"].endswith("/acme/cert.pem")
    assert status["acme"]["failures"] == 0 and status["acme"]["last_error"] is None
    assert status["acme"]["next_attempt"] > "2030"  # two thirds of pebble's five years
    assert "acme:        next attempt" in srv.cli("status", "--no-dns").stdout
    # another name in [acme] names: the stored certificate does not cover it, a new one is asked at once
    s.dns.load({"smtp.mailwerk.test": {"A": "127.0.0.1"}})
    srv.stop()
    srv.overrides.append("acme.names=%s, smtp.mailwerk.test" % HOST)
    srv.start()
    wait_log(srv, r"event=acme_names_changed")
    wait_log(srv, r"event=acme_installed names=%s,smtp.mailwerk.test" % re.escape(HOST))
    assert served_cert(s.https_port, name="smtp.mailwerk.test", cadata=root) != der


def test_reload_keeps_the_acme_certificate_and_mta_sts_names(setup):
    """A reload (SIGHUP) goes on serving the ACME certificate, not [tls] cert; with
    [acme] mta_sts_names the policy host of each local domain is in the next certificate."""
    s = setup()
    srv = s.srv
    wait_log(srv, r"event=acme_installed")
    root = s.pebble.roots()
    der = served_cert(s.https_port, cadata=root)
    srv.proc.send_signal(signal.SIGHUP)
    wait_log(srv, r"event=reload result=ok")
    assert served_cert(s.https_port, cadata=root) == der
    s.dns.load({"mta-sts.mailwerk.test": {"A": "127.0.0.1"}})
    srv.stop()
    srv.overrides.append("acme.mta_sts_names=yes")
    srv.start()
    srv.cli("acme", "renew")
    wait_log(srv, r"event=acme_installed names=%s,mta-sts.mailwerk.test " % re.escape(HOST))
    assert served_cert(s.https_port, name="mta-sts.mailwerk.test", cadata=root) != der


def test_tls_alpn01(setup):
    s = setup(challenge="tls-alpn-01")
    wait_log(s.srv, r"event=acme_installed")
    der = served_cert(s.https_port, cadata=s.pebble.roots())
    assert s.pebble.cert_status(serial_of(der))["Status"] == "Valid"
    # pebble's validation handshake reached the https listener and got the acmeIdentifier certificate
    assert "event=acme_tls_alpn name=%s" % HOST in s.srv.log_text()
    assert "acme-challenge" not in s.srv.log_text()  # nothing over HTTP-01


def test_alpn_without_challenge_is_refused(setup):
    """acme-tls/1 for a name with no challenge under way: the handshake is refused (RFC 8737 §3),
    and an ordinary handshake on the same listener still works."""
    s = setup(challenge="tls-alpn-01")
    wait_log(s.srv, r"event=acme_installed")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["acme-tls/1"])
    with socket.create_connection(("127.0.0.1", s.https_port), timeout=10) as raw:
        with pytest.raises(ssl.SSLError):
            ctx.wrap_socket(raw, server_hostname=HOST)
    assert served_cert(s.https_port, cadata=s.pebble.roots())


@pytest.mark.serial
def test_renew_keeps_open_sessions(setup):
    """A certificate of 24 s is renewed at two thirds of its lifetime; a session opened before keeps
    going over the old one, new connections get the new one."""
    s = setup(validity=24)
    srv = s.srv
    wait_log(srv, r"event=acme_installed")
    root = s.pebble.roots()
    first = served_cert(srv.submissions_port, cadata=root)
    ctx = ssl.create_default_context(cadata=root)
    ctx.check_hostname = False  # smtplib names the address in SNI; served_cert checked the name
    old = smtplib.SMTP_SSL("127.0.0.1", srv.submissions_port, context=ctx, timeout=30)
    try:
        old.ehlo("client.test")
        assert old.sock.getpeercert(binary_form=True) == first
        wait_log(srv, r"event=acme_installed", count=2, timeout=40)
        second = served_cert(srv.submissions_port, cadata=root)
        assert second != first
        assert serial_of(second) != serial_of(first)
        # the open session was not dropped
        assert old.noop()[0] == 250
        assert old.sock.getpeercert(binary_form=True) == first
    finally:
        old.quit()
    assert "event=acme_failed" not in srv.log_text()


def test_failed_challenge_keeps_the_certificate_and_retries(setup):
    s = setup()
    srv = s.srv
    wait_log(srv, r"event=acme_installed")
    root = s.pebble.roots()
    first = served_cert(s.https_port, cadata=root)
    # the name now leads pebble to an address where nothing listens: validation fails for real
    s.dns.clear()
    s.dns.load({HOST: {"A": "127.0.0.9"}})
    out = srv.cli("acme", "renew", "--force").stdout
    assert "started" in out
    wait_log(srv, r"event=acme_failed step=\S+ reason=challenge_failed failures=1 retry_in=1 certificate_kept=yes")
    assert served_cert(s.https_port, cadata=root) == first  # the old one is kept
    st = json.loads(srv.cli("status", "--json", "--no-dns").stdout)["acme"]
    assert st["failures"] >= 1 and st["last_error"]
    wait_log(srv, r"event=acme_failed .*failures=2 retry_in=2", timeout=30)  # retried, with backoff
    s.dns.clear()
    s.dns.load({HOST: {"A": "127.0.0.1"}})
    wait_log(srv, r"event=acme_installed", count=2, timeout=30)
    second = served_cert(s.https_port, cadata=root)
    assert second != first
    assert s.pebble.cert_status(serial_of(second))["Status"] == "Valid"


def test_revoke_and_reissue(setup):
    s = setup()
    srv = s.srv
    wait_log(srv, r"event=acme_installed")
    root = s.pebble.roots()
    first = served_cert(s.https_port, cadata=root)
    srv.cli("acme", "revoke")
    wait_log(srv, r"event=acme_revoked")
    wait_log(srv, r"event=acme_installed", count=2)
    assert s.pebble.cert_status(serial_of(first))["Status"] == "Revoked"
    second = served_cert(s.https_port, cadata=root)
    assert second != first
    assert s.pebble.cert_status(serial_of(second))["Status"] == "Valid"


def test_acme_cli_without_server(tmp_path):
    srv = Server(tmp_path)
    r = srv.cli("acme", "renew", check=False)
    assert r.returncode == 3
    assert "no server is running" in r.stderr


def test_init_acme_writes_the_section(tmp_path):
    d = str(tmp_path / "var")
    subprocess.run([BIN, "init", "--dir", d, "--acme", "--acme-contact", "ops@mailwerk.test", "--hostname", HOST,
                    "--domain", "mailwerk.test"], check=True, capture_output=True)
    show = subprocess.run([BIN, "config", "show", "--non-default", "-c", d + "/mailwerk.conf"], check=True,
                          capture_output=True).stdout.decode()
    assert "[acme] directory = https://acme-v02.api.letsencrypt.org/directory" in show
    assert "[acme] contact = ops@mailwerk.test" in show
    # without --acme (make run): no ACME, the self-signed certificate alone
    d2 = str(tmp_path / "plain")
    subprocess.run([BIN, "init", "--dir", d2], check=True, capture_output=True)
    assert "[acme]" not in open(d2 + "/mailwerk.conf").read()
    r = subprocess.run([BIN, "init", "--dir", str(tmp_path / "x"), "--acme", "--acme-directory", "http://ca.test/dir"],
                       capture_output=True)
    assert r.returncode == 2 and b"--acme-directory" in r.stderr


def test_config_errors(tmp_path):
    d = str(tmp_path / "var")
    subprocess.run([BIN, "init", "--dir", d], check=True, capture_output=True)
    conf = d + "/mailwerk.conf"
    with open(conf, "a") as f:
        f.write("\n[acme]\ndirectory = http://ca.test/dir\nnames = mx.test, bad_name!\nchallenge = dns-01\n")
    r = subprocess.run([BIN, "config", "check", "-c", conf], capture_output=True)
    err = r.stderr.decode()
    assert r.returncode == 1
    lines = open(conf).read().splitlines()
    for key, why in (("directory", "https"), ("names", ""), ("challenge", "http-01 or tls-alpn-01")):
        n = next(i + 1 for i, l in enumerate(lines) if l.startswith(key + " ="))
        assert re.search(r"%s:%d: \[acme\] %s = .*%s" % (re.escape(conf), n, key, re.escape(why)), err), err
    # a challenge needs its listener (checked once every line is right)
    with open(conf, "w") as f:
        f.write("\n".join(lines[:-5]) + "\n")
    r = subprocess.run([BIN, "config", "check", "-c", conf, "-o", "acme.directory=https://ca.test/dir",
                        "-o", "acme.challenge=tls-alpn-01", "-o", "listen.submissions=",
                        "-o", "listen.pop3s="], capture_output=True)
    assert b"tls-alpn-01 needs an implicit-TLS listener" in r.stderr, r.stderr


def test_private_addresses_only_for_the_directory_host(tmp_path, dns_server):  # noqa: F811
    """The directory's host may be on loopback because the operator named it; a URL in its answer
    that leads to another host on a private address is refused as webhooks' are (SSRF)."""
    import http.server
    import json as _json
    import threading
    from acmefixture import Pebble
    ca = Pebble(tmp_path, 0, 0, dns_server)  # only for its throwaway CA and 127.0.0.1/localhost certificate
    ca._certs()
    port = free_port()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = _json.dumps({"newNonce": "https://localhost:%d/nonce" % port,
                                "newAccount": "https://localhost:%d/acct" % port,
                                "newOrder": "https://localhost:%d/order" % port}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_HEAD(self):
            self.send_response(200)
            self.send_header("Replay-Nonce", "abc")
            self.end_headers()
            asked.append(self.path)

        def log_message(self, *a):
            pass

    asked = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(ca.dir, "cert.pem"), os.path.join(ca.dir, "key.pem"))
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    srv = Server(tmp_path, overrides=["acme.directory=https://127.0.0.1:%d/dir" % port,
                                      "acme.ca_file=" + ca.ca_file, "acme.retry_schedule=1h"])
    try:
        srv.start()
        line = wait_log(srv, r"event=acme_failed [^\n]*")[0]
        assert "step=directory" not in line  # the directory itself was read (its host is allowed)
        assert "reason=unreachable" in line and "a loopback address" in line, line
        assert "ACME at a host other than [acme] directory's is off" in line, line
        assert asked == []  # nothing reached the other name
    finally:
        srv.stop()
        httpd.shutdown()


def spki_sha256(der=None, key_pem_path=None):
    """SHA-256 of the SubjectPublicKeyInfo (TLSA selector 1, matching type 1) of a DER certificate
    or of a PEM private key, by openssl."""
    if der is not None:
        pub = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-pubkey"], input=der,
                             capture_output=True, check=True).stdout
        spki = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub,
                              capture_output=True, check=True).stdout
    else:
        spki = subprocess.run(["openssl", "pkey", "-in", key_pem_path, "-pubout", "-outform", "DER"],
                              capture_output=True, check=True).stdout
    return hashlib.sha256(spki).hexdigest()


def tlsa_records(s):
    """(current, next) 3 1 1 data that `dns records` prints for the MX host (next None when none)."""
    out = s.srv.cli("dns", "records", "--domain", "mailwerk.test", *sum((["-o", o] for o in s.srv.overrides), [])).stdout
    cur = re.findall(r"^_25\._tcp\.%s\. IN TLSA 3 1 1 ([0-9a-f]{64})$" % re.escape(HOST), out, re.M)
    nxt = re.findall(r"^_25\._tcp\.%s\. IN TLSA 3 1 1 ([0-9a-f]{64})   ; next key$" % re.escape(HOST), out, re.M)
    assert len(cur) == 1 and len(nxt) <= 1, out
    return cur[0], nxt[0] if nxt else None


def test_renewal_uses_the_staged_next_key(setup):
    """RFC 7671 §8.1 rollover with ACME: the key of the next certificate is made and stored before
    it is used, `dns records` prints its TLSA 3 1 1 beside the current one, and a renewal installs
    a certificate with exactly that key (so a record published ahead matches), then stages another."""
    s = setup()
    srv = s.srv
    wait_log(srv, r"event=acme_installed")
    wait_log(srv, r"event=acme_next_key_staged \S+ reason=installed")
    assert re.search(r"event=acme_next_key_staged \S+ reason=first_start", srv.log_text())
    assert "event=acme_key key=staged" in srv.log_text()
    root = s.pebble.roots()
    next_path = os.path.join(srv.dir, "acme", "next_key.pem")
    assert stat.S_IMODE(os.stat(next_path).st_mode) == 0o600
    first = served_cert(s.https_port, cadata=root)
    cur, nxt = tlsa_records(s)
    assert cur == spki_sha256(der=first)  # the record of the key the listeners serve
    assert nxt is not None and nxt != cur and nxt == spki_sha256(key_pem_path=next_path)

    srv.cli("acme", "renew", "--force")
    wait_log(srv, r"event=acme_installed", count=2)
    wait_log(srv, r"event=acme_next_key_staged \S+ reason=installed", count=2)
    second = served_cert(s.https_port, cadata=root)
    assert second != first
    assert spki_sha256(der=second) == nxt  # the renewed certificate has the staged key
    cur2, nxt2 = tlsa_records(s)
    assert cur2 == nxt
    assert nxt2 is not None and nxt2 not in (cur, nxt)

    # a restart keeps the staged key (it may be published already)
    srv.stop()
    srv.start()
    assert "event=acme_next_key_loaded" in srv.log_text()
    assert tlsa_records(s) == (cur2, nxt2)
    # a staged key that is unreadable is replaced, and said so
    srv.stop()
    with open(next_path, "w") as f:
        f.write("not a key\n")
    srv.start()
    wait_log(srv, r"event=acme_next_key_staged \S+ reason=unreadable")
    cur3, nxt3 = tlsa_records(s)
    assert cur3 == cur2 and nxt3 not in (None, cur2, nxt2)
