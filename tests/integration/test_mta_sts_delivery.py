"""MTA-STS (RFC 8461) in outbound delivery: the recipient domain's policy, fetched over HTTPS from a
policy host with a certificate of a CA made for the test, decides per MX host (delivery/tls_decide.h):
enforce → only hosts the policy lists, only with a verified certificate; testing → delivered as
before; a policy failure defers (4.7.5) and never goes out unverified; and before a recipient fails
at max_queue_lifetime the _mta-sts TXT record is asked again (§5.1): a new policy is fetched and
used, and only an unchanged id lets the recipient fail."""
import pytest

from dnsfixture import dns_server  # noqa: F401 (a fixture)
from mtafixture import (delivered, free_port_on, log_events, message, mtas, no_bounces,  # noqa: F401
                        queue_rcpts, self_signed_cert, start_sender, submit, wait_for)
from stsfixture import PolicyHost, ThrowawayCA
from test_tlsrpt import report_of, rua_https  # noqa: F401 (a fixture)

TIMEOUT = 30
DOMAINS = ["a", "b", "c", "d", "e", "f", "g", "h"]


def policy(domain, mode="enforce", mx=None):
    lines = ["version: STSv1", "mode: " + mode] + ["mx: " + m for m in (mx or ["mx." + domain])]
    return ("\r\n".join(lines + ["max_age: 86400"]) + "\r\n").encode()


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return ThrowawayCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def host(ca):
    with PolicyHost(ca, ["mta-sts.%s.sts.test" % d for d in DOMAINS]) as h:
        yield h


def publish(dns, host, name, txt_id, ip, body=None, **kw):
    """name.sts.test with one MX, mx.name.sts.test at ip, and its policy (enforce for that MX)."""
    domain = name + ".sts.test"
    dns.load({domain: {"MX": "10 mx.%s." % domain}, "mx." + domain: {"A": ip},
              "mta-sts." + domain: {"A": host.addr}, "_mta-sts." + domain: {"TXT": "v=STSv1; id=%s;" % txt_id}})
    host.serve(domain, body=body if body is not None else policy(domain), **kw)
    return domain


def sender(servers, dns, ca, port, **keys):
    return start_sender(servers, dns, port, **{
        "delivery.ca_file": ca.path, "delivery.mta_sts_ca_file": ca.path, "delivery.mta_sts_allow_private": "yes",
        "delivery.mta_sts_budget": "10s", **keys})


def last_policy(server, host):
    lines = wait_for(lambda: log_events(server, "tls_policy", host=host), TIMEOUT)
    assert lines, server.log_text()[-3000:]
    return lines[-1]


def deferred_with(server, rcpt, text):
    found = wait_for(lambda: [r for a, r in queue_rcpts(server).items() if a == rcpt and r["state"] == "deferred"
                              and text in (r["last_error"] or "")], TIMEOUT)
    assert found, (server.queue(), server.log_text()[-4000:])
    return found[0]


def test_enforce_delivers_only_verified_to_listed_hosts(dns_server, mtas, servers, ca, host):  # noqa: F811
    port = free_port_on("127.0.0.2", "127.0.0.3")
    d = publish(dns_server, host, "a", "a1", "127.0.0.2")
    mx = mtas.start("127.0.0.2", port, starttls=True, tls_cert=ca.issue(["mx." + d], stem="mx-a"))
    s = sender(servers, dns_server, ca, port)
    submit(s, ["bob@" + d], message("sts-enforce"))
    tx = mx.wait_transactions(1, TIMEOUT)
    assert tx and tx[0].tls, s.log_text()[-3000:]
    p = last_policy(s, "mx." + d)
    assert (p["action"], p["reason"], p["policy"], p["sts"]) == ("verify", "sts_enforce", "sts", "a1"), p
    tls = log_events(s, "smtp_out_tls", host="mx." + d)[-1]
    assert tls["verified"] == "yes", tls
    (sts,) = log_events(s, "mta_sts", domain=d)
    assert (sts["state"], sts["mode"], sts["id"]) == ("policy", "enforce", "a1"), sts
    delivered(s, "bob@" + d)
    # `tls check` shows the same decision for the host, from the same cache
    p = s.cli("tls", "check", d, "-o", "dns.resolver=" + dns_server.resolver, "-o", "delivery.mta_sts_ca_file=" + ca.path,
              "-o", "delivery.mta_sts_allow_private=yes", check=False)
    assert "decision: action=verify reason=sts_enforce policy=sts" in p.stdout, p.stdout + p.stderr
    assert p.returncode == 0, p.stdout + p.stderr

    # an MX host the policy does not list is not used at all (§4.1): 4.7.5, and no bounce
    b = publish(dns_server, host, "b", "b1", "127.0.0.3", body=policy("b.sts.test", mx=["other.b.sts.test"]))
    unlisted = mtas.start("127.0.0.3", port, starttls=True, tls_cert=ca.issue(["mx." + b], stem="mx-b"))
    submit(s, ["bob@" + b], message("sts-unlisted"))
    r = deferred_with(s, "bob@" + b, "4.7.5")
    assert "MTA-STS" in r["last_error"] or "policy" in r["last_error"], r
    assert last_policy(s, "mx." + b)["reason"] == "sts_mx_mismatch"
    assert unlisted.connections == []
    no_bounces(s)


def test_enforce_refuses_an_unverified_certificate(dns_server, mtas, servers, ca, host, tmp_path):  # noqa: F811
    port = free_port_on("127.0.0.2")
    d = publish(dns_server, host, "c", "c1", "127.0.0.2")
    # a certificate for the right name, from no CA anyone trusts
    mx = mtas.start("127.0.0.2", port, starttls=True, tls_cert=self_signed_cert(tmp_path / "self", "mx." + d))
    s = sender(servers, dns_server, ca, port)
    submit(s, ["bob@" + d], message("sts-untrusted"))
    deferred_with(s, "bob@" + d, "4.7")
    assert mx.connections and mx.transactions == []  # a handshake, never the message
    no_bounces(s)


def test_testing_mode_delivers_as_before(dns_server, mtas, servers, ca, host):  # noqa: F811
    port = free_port_on("127.0.0.2")
    d = publish(dns_server, host, "d", "d1", "127.0.0.2", body=policy("d.sts.test", mode="testing",
                                                                      mx=["other.d.sts.test"]))
    mx = mtas.start("127.0.0.2", port, starttls=True, tls_cert=ca.issue(["mx." + d], stem="mx-d"))
    s = sender(servers, dns_server, ca, port)
    submit(s, ["bob@" + d], message("sts-testing"))
    assert mx.wait_transactions(1, TIMEOUT), s.log_text()[-3000:]
    p = last_policy(s, "mx." + d)
    assert p["action"] == "may" and p["policy"] == "sts", p
    delivered(s, "bob@" + d)


def test_new_policy_found_before_failing_at_lifetime(dns_server, mtas, servers, ca, host):  # noqa: F811
    port = free_port_on("127.0.0.2")
    dns_server.ttl = 1  # the TXT record's TTL: a changed id is seen once the resolver's copy expires
    # the cached policy (id e1) does not list the MX; a new one (id e2) is published, but its host
    # fails at first, so that only §5.1's recheck, which waits for its fetch, can find it
    d = publish(dns_server, host, "e", "e1", "127.0.0.2", body=policy("e.sts.test", mx=["old.e.sts.test"]))
    mx = mtas.start("127.0.0.2", port, starttls=True, tls_cert=ca.issue(["mx." + d], stem="mx-e"))
    s = sender(servers, dns_server, ca, port, **{"delivery.max_queue_lifetime": "200s"})
    submit(s, ["bob@" + d], message("sts-recheck"))
    deferred_with(s, "bob@" + d, "4.7.5")
    assert wait_for(lambda: log_events(s, "mta_sts_recheck", domain=d, id_changed="no"), TIMEOUT), s.log_text()[-3000:]
    dns_server.clear()
    publish(dns_server, host, "e", "e2", "127.0.0.2", body=b"broken", status=500)
    assert wait_for(lambda: log_events(s, "mta_sts_recheck", domain=d, id_changed="yes", action="fail"), TIMEOUT), \
        s.log_text()[-3000:]
    host.serve(d, body=policy(d))  # e2 lists the MX
    assert wait_for(lambda: log_events(s, "mta_sts_recheck", domain=d, id_changed="yes", action="retry"), TIMEOUT), \
        s.log_text()[-3000:]
    assert mx.wait_transactions(1, TIMEOUT), s.log_text()[-3000:]
    assert last_policy(s, "mx." + d)["sts"] == "e2"
    delivered(s, "bob@" + d)
    no_bounces(s)


def test_unchanged_policy_fails_at_lifetime_after_the_recheck(dns_server, mtas, servers, ca, host):  # noqa: F811
    port = free_port_on("127.0.0.2")
    d = publish(dns_server, host, "f", "f1", "127.0.0.2", body=policy("f.sts.test", mx=["old.f.sts.test"]))
    s = sender(servers, dns_server, ca, port, **{"delivery.max_queue_lifetime": "3s"})
    submit(s, ["bob@" + d], message("sts-expire"))
    assert wait_for(lambda: log_events(s, "bounce"), TIMEOUT), s.log_text()[-3000:]
    checks = log_events(s, "mta_sts_recheck", domain=d)
    assert checks and all(c["id_changed"] == "no" for c in checks), checks
    lines = s.log_text().splitlines()
    first_check = next(i for i, line in enumerate(lines) if "event=mta_sts_recheck" in line)
    bounce = next(i for i, line in enumerate(lines) if "event=bounce" in line)
    assert first_check < bounce


@pytest.mark.serial
def test_sessions_under_a_policy_are_reported_as_sts(dns_server, mtas, servers, ca, host, rua_https):  # noqa: F811
    """TLS-RPT (RFC 8460 §4.4): a session under an MTA-STS policy goes into the report as policy-type
    "sts" with the policy's lines and mx patterns; mode testing reports the mismatch it did not
    enforce (RFC 8461 §5) while the mail went."""
    rua, rua_ca, rua_port = rua_https
    url = "https://rua.tlsrpt.example:%d/tlsrpt" % rua_port
    port = free_port_on("127.0.0.2", "127.0.0.3")
    g = publish(dns_server, host, "g", "g1", "127.0.0.2")
    h = publish(dns_server, host, "h", "h1", "127.0.0.3", body=policy("h.sts.test", mode="testing",
                                                                      mx=["other.h.sts.test"]))
    dns_server.load({"_smtp._tls." + g: {"TXT": "v=TLSRPTv1; rua=" + url},
                     "_smtp._tls." + h: {"TXT": "v=TLSRPTv1; rua=" + url}, "rua.tlsrpt.example": {"A": "127.0.0.6"}})
    mtas.start("127.0.0.2", port, starttls=True, tls_cert=ca.issue(["mx." + g], stem="mx-g"))
    mtas.start("127.0.0.3", port, starttls=True, tls_cert=ca.issue(["mx." + h], stem="mx-h"))
    s = sender(servers, dns_server, ca, port, **{
        "tlsrpt.reports": "yes", "tlsrpt.report_interval": "3s", "tlsrpt.ca_file": rua_ca,
        "tlsrpt.report_from": "tls-reports@mailwerk.test", "webhooks.allow_private": "yes"})
    submit(s, ["bob@" + g], message("sts-rpt-enforce"))
    submit(s, ["bob@" + h], message("sts-rpt-testing"))
    delivered(s, "bob@" + g)
    delivered(s, "bob@" + h)

    def policies():
        out = {}
        for p in rua.ok_posts():
            for pol in report_of(p["body"])["policies"]:
                out.setdefault(pol["policy"]["policy-domain"], []).append(pol)
        return out
    assert wait_for(lambda: g in policies() and h in policies(), TIMEOUT), s.log_text()[-3000:]
    (pg,) = policies()[g]
    assert pg["policy"]["policy-type"] == "sts", pg
    assert pg["policy"]["policy-string"] == ["version: STSv1", "mode: enforce", "mx: mx." + g, "max_age: 86400"], pg
    assert pg["policy"]["mx-host"] == ["mx." + g], pg
    assert pg["summary"] == {"total-successful-session-count": 1, "total-failure-session-count": 0}, pg
    (ph,) = policies()[h]
    assert ph["policy"]["policy-type"] == "sts" and "mode: testing" in ph["policy"]["policy-string"], ph
    assert ph["summary"]["total-failure-session-count"] == 1, ph
    assert [f["result-type"] for f in ph["failure-details"]] == ["validation-failure"], ph
