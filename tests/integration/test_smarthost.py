"""Delivery through a smarthost ([relay] host): all remote mail goes to it, authenticated (AUTH over
STARTTLS on a submission port, or over implicit TLS, RFC 8314), and its certificate is verified
against the name in relay.host with relay.ca_file. The smarthost is a second mailwerk with a
certificate from a throwaway test CA; the DNS fixture maps smarthost.test to its address."""
import os
import re

import pytest

from conftest import DOMAIN
from dnsfixture import dns_server  # noqa: F401 (a fixture)
from mtafixture import (ca_signed_cert, free_port_on, log_events, make_ca, maildir, message, reports,
                        self_signed_cert, submit, wait_for)

SH_IP = "127.0.0.5"
SH_NAME = "smarthost.test"
RELAY_USER = "relay@far.test"
RELAY_PASSWORD = "relay-s3cret-pass"
TIMEOUT = 20.0


class Setup:
    def __init__(self, tmp_path, dns, servers, cert="ca"):
        """cert: "ca" (signed by the CA for smarthost.test), "self" (self-signed, not by the CA),
        "wrong-name" (signed by the CA, for another name)."""
        self.tmp = tmp_path
        self.dns = dns
        self.servers = servers
        self.ca = make_ca(tmp_path / "ca")
        if cert == "ca":
            self.cert = ca_signed_cert(tmp_path / "sh-tls", self.ca, SH_NAME)
        elif cert == "self":
            self.cert = self_signed_cert(tmp_path / "sh-tls", SH_NAME)
        elif cert == "wrong-name":
            self.cert = ca_signed_cert(tmp_path / "sh-tls", self.ca, "other.test")
        else:
            raise ValueError(cert)
        self.submission_port = free_port_on(SH_IP)
        self.submissions_port = free_port_on(SH_IP)
        while self.submissions_port == self.submission_port:
            self.submissions_port = free_port_on(SH_IP)
        dns.load({SH_NAME: {"A": SH_IP}})
        # mail for far.test would go to 127.0.0.6 if the smarthost were bypassed: nothing listens
        dns.load({"far.test": {"MX": "10 mx.far.test."}, "mx.far.test": {"A": "127.0.0.6"}})

    def start_smarthost(self):
        sh = self.servers.make("smarthost", {"server.hostname": SH_NAME, "tls.cert": self.cert[0],
                                             "tls.key": self.cert[1]},
                               listen={"submission": (SH_IP, self.submission_port),
                                       "submissions": (SH_IP, self.submissions_port)})
        sh.cli("domain", "add", "far.test")
        sh.cli("user", "add", RELAY_USER, "--password-stdin", input=RELAY_PASSWORD + "\n")
        sh.cli("user", "add", "bob@far.test", "--password-stdin", input="bob-password\n")
        self.sh = sh.start()
        return self.sh

    def start_sender(self, port, password=RELAY_PASSWORD, **keys):
        pwfile = os.path.join(str(self.tmp), "relay-password")
        with open(pwfile, "w") as f:
            f.write(password + "\n")
        os.chmod(pwfile, 0o600)
        overrides = {"dns.resolver": self.dns.resolver, "delivery.retry_schedule": "1s",
                     "relay.host": "%s:%d" % (SH_NAME, port), "relay.auth_user": RELAY_USER,
                     "relay.auth_password_file": pwfile, "relay.ca_file": self.ca[0]}
        overrides.update(keys)
        self.s = self.servers.make("sender", overrides).start()
        return self.s

    def inbox(self):
        return maildir(self.sh.dir, "far.test", "bob")


def check_relayed(st, qid, port):
    got = wait_for(st.inbox, TIMEOUT)
    assert len(got) == 1, (st.s.log_text()[-3000:], st.sh.log_text()[-3000:])
    assert got[0].startswith(b"Return-Path: <demo@%s>\r\nDelivered-To: bob@far.test\r\n" % DOMAIN.encode())
    assert b"body of relay-1\r\n.leading dot\r\n" in got[0]
    ev = wait_for(lambda: log_events(st.s, "delivered", rcpt="bob@far.test"), TIMEOUT)
    assert ev, st.s.log_text()[-3000:]
    assert ev[0]["queue_id"] == qid
    assert ev[0]["relay"] == "%s[%s]:%d" % (SH_NAME, SH_IP, port)
    assert ev[0]["tls"].startswith("TLSv1."), ev
    # the smarthost took it from an authenticated session inside TLS
    acc = log_events(st.sh, "accepted", auth=RELAY_USER)
    assert len(acc) == 1 and acc[0]["from"] == "<demo@%s>" % DOMAIN and acc[0]["tls"].startswith("TLSv1."), \
        st.sh.log_text()[-3000:]
    assert log_events(st.sh, "login", result="ok", user=RELAY_USER)
    assert ("far.test", "MX") not in st.dns.asked()  # the smarthost takes everything: no MX lookups
    assert wait_for(lambda: st.s.queue() == [], TIMEOUT), st.s.queue()


def test_starttls_and_auth_by_default(tmp_path, dns_server, servers):
    st = Setup(tmp_path, dns_server, servers)
    st.start_smarthost()
    # no relay.tls: a port other than 465 means STARTTLS
    st.start_sender(st.submission_port)
    qid = submit(st.s, ["bob@far.test"], message("relay-1"))
    check_relayed(st, qid, st.submission_port)  # that port speaks plain text until STARTTLS


def test_implicit_tls(tmp_path, dns_server, servers):
    st = Setup(tmp_path, dns_server, servers)
    st.start_smarthost()
    st.start_sender(st.submissions_port, **{"relay.tls": "implicit"})
    qid = submit(st.s, ["bob@far.test"], message("relay-1"))
    check_relayed(st, qid, st.submissions_port)  # that port speaks nothing but TLS


def test_wrong_password_defers_and_keeps_the_message(tmp_path, dns_server, servers):
    st = Setup(tmp_path, dns_server, servers)
    st.start_smarthost()
    st.start_sender(st.submission_port, password="not-the-password")
    qid = submit(st.s, ["bob@far.test"], message("relay-1"))
    r = wait_for(lambda: [r for e in st.s.queue() for r in e["recipients"] if r["state"] == "deferred"], TIMEOUT)
    assert r, (st.s.queue(), st.s.log_text()[-3000:])
    assert r[0]["address"] == "bob@far.test"
    assert r[0]["last_error"] and re.search(r"535|auth", r[0]["last_error"], re.I), r
    assert log_events(st.sh, "login", result="fail", user=RELAY_USER), st.sh.log_text()[-3000:]
    assert log_events(st.sh, "accepted") == [] and st.inbox() == []
    assert [e["id"] for e in st.s.queue()] == [qid]  # not lost, not bounced
    assert log_events(st.s, "failed") == [] and log_events(st.s, "bounce") == []
    assert reports(st.s.dir, DOMAIN, "demo") == []
    text = st.s.cli("queue", "list").stdout
    assert qid in text and "deferred" in text, text


@pytest.mark.parametrize("cert", ["self", "wrong-name"])
def test_unverified_certificate_defers_and_sends_nothing(tmp_path, dns_server, servers, cert):
    st = Setup(tmp_path, dns_server, servers, cert=cert)
    st.start_smarthost()
    st.start_sender(st.submission_port)
    qid = submit(st.s, ["bob@far.test"], message("relay-1"))
    r = wait_for(lambda: [r for e in st.s.queue() for r in e["recipients"] if r["state"] == "deferred"], TIMEOUT)
    assert r, (st.s.queue(), st.s.log_text()[-3000:])
    assert r[0]["last_error"] and re.search(r"certificate|verif|TLS|handshake", r[0]["last_error"], re.I), r
    # stopped at the handshake: no password sent, no message
    assert log_events(st.sh, "login") == []
    assert log_events(st.sh, "accepted") == [] and st.inbox() == []
    assert [e["id"] for e in st.s.queue()] == [qid]
    assert log_events(st.s, "delivered") == [] and log_events(st.s, "bounce") == []
