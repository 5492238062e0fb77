"""Inbound MTA-STS (RFC 8461 §3.2): the HTTP listener serves the policy of [mta_sts] for each local
domain, chosen by the Host field, to curl; `dns records` prints the _mta-sts TXT record with the id
of exactly that text (its SHA-256, cut) and the mta-sts host record; `dns check` verifies both
against a DNS fixture, and says so when the published id is not the one served."""
import hashlib
import re
import subprocess

from conftest import DOMAIN, HOST, Server
from dnsfixture import dns_server  # noqa: F401 (the fixture)
from test_auth import SERVER_IP, zone_lines

STS_CONF = "\n[mta_sts]\nmode = enforce\nmax_age = 14d\nmx = mx2.%s, *.backup.%s\n" % (DOMAIN, DOMAIN)


def curl(port, host, path="/.well-known/mta-sts.txt"):
    p = subprocess.run(["curl", "-sS", "-i", "--max-time", "10", "-H", "Host: " + host,
                        "http://127.0.0.1:%d%s" % (port, path)], capture_output=True, timeout=20)
    assert p.returncode == 0, p.stderr
    head, _, body = p.stdout.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in
               (line.decode().partition(":") for line in head.split(b"\r\n")[1:])}
    return status, headers, body


def test_policy_served_and_published(tmp_path, dns_server):  # noqa: F811
    s = Server(tmp_path)
    with open(s.conf, "a") as f:
        f.write(STS_CONF)
    s.cli("domain", "add", "second.test")
    s.start()
    try:
        status, headers, body = curl(s.http_port, "mta-sts." + DOMAIN)
        assert status == 200, body
        assert headers["content-type"].startswith("text/plain"), headers
        assert body == ("version: STSv1\r\nmode: enforce\r\nmx: %s\r\nmx: mx2.%s\r\nmx: *.backup.%s\r\n"
                        "max_age: 1209600\r\n" % (HOST, DOMAIN, DOMAIN)).encode(), body
        # the Host field chooses the domain: any local one, with a port and in any case
        assert curl(s.http_port, "MTA-STS.Second.Test:443")[2] == body
        # not a local domain, or not the policy host: no policy
        assert curl(s.http_port, "mta-sts.elsewhere.test")[0] == 404
        assert curl(s.http_port, DOMAIN)[0] == 404
        assert curl(s.http_port, "mta-sts." + DOMAIN, "/.well-known/mta-sts.txt.bak")[0] == 404
    finally:
        s.stop()

    policy_id = hashlib.sha256(body).hexdigest()[:32]
    out = s.cli("dns", "records", "--domain", DOMAIN, "--ip", SERVER_IP).stdout
    records = zone_lines(out)
    assert '_mta-sts.%s. IN TXT ( "v=STSv1; id=%s" )' % (DOMAIN, policy_id) in records, out
    assert "mta-sts.%s. IN CNAME %s." % (DOMAIN, HOST) in records, out

    def check():
        p = s.cli("dns", "check", "--domain", DOMAIN, "--ip", SERVER_IP, "--resolver", dns_server.resolver,
                  check=False)
        return p.stdout.splitlines()

    dns_server.load("\n".join(records))
    lines = check()
    assert "ok      MTA-STS at _mta-sts.%s, id=%s (the policy served)" % (DOMAIN, policy_id) in lines, lines
    assert "ok      MTA-STS policy host mta-sts.%s resolves to %s" % (DOMAIN, SERVER_IP) in lines, lines

    # a published id that is not the policy's: the sender would keep an old policy
    dns_server.clear()
    dns_server.load("\n".join(r for r in records if not r.startswith("_mta-sts.")))
    dns_server.load({"_mta-sts." + DOMAIN: {"TXT": "v=STSv1; id=20200101"}})
    lines = check()
    assert any(re.match(r"missing MTA-STS at _mta-sts\.%s " % re.escape(DOMAIN), line) for line in lines), lines
    assert "        MTA-STS at _mta-sts.%s: id=20200101, but the policy served has id=%s (publish the new id)" % (
        DOMAIN, policy_id) in lines, lines

    # a change of the policy settings changes the id
    with open(s.conf) as f:
        text = f.read()
    with open(s.conf, "w") as f:
        f.write(text.replace("mode = enforce", "mode = testing"))
    out2 = s.cli("dns", "records", "--domain", DOMAIN, "--ip", SERVER_IP).stdout
    assert policy_id not in out2
    assert re.search(r'_mta-sts\.%s\. IN TXT \( "v=STSv1; id=[0-9a-f]{32}"' % re.escape(DOMAIN), out2), out2


def test_own_policy_fetched_over_https(tmp_path, dns_server):  # noqa: F811
    """The whole way round: our HTTPS listener on 443 of a loopback address, with a certificate for
    mta-sts.DOMAIN from a CA made now, serves the policy; `tls check` (delivery's own fetcher and
    cache) finds our published TXT record, fetches the policy through the DNS fixture and takes it."""
    from stsfixture import ThrowawayCA, worker_address
    ca = ThrowawayCA(tmp_path)
    cert, key = ca.issue([HOST, "mta-sts." + DOMAIN], stem="own")
    addr = worker_address(3)
    s = Server(tmp_path, overrides=["tls.cert=" + cert, "tls.key=" + key, "listen.https=%s:443" % addr])
    with open(s.conf, "a") as f:
        f.write(STS_CONF)
    records = zone_lines(s.cli("dns", "records", "--domain", DOMAIN, "--ip", addr).stdout)
    dns_server.load("\n".join(r for r in records if " PTR " not in r))
    dns_server.load({HOST: {"A": addr}})
    s.start()
    try:
        p = s.cli("tls", "check", DOMAIN, "--budget", "10000", "-o", "dns.resolver=" + dns_server.resolver,
                  "-o", "delivery.mta_sts_ca_file=" + ca.path, "-o", "delivery.mta_sts_allow_private=yes",
                  check=False)
        # dns check fetches it too, the way senders do, and finds our host in it
        sts_opts = ("-o", "delivery.mta_sts_ca_file=" + ca.path, "-o", "delivery.mta_sts_allow_private=yes")
        c = s.cli("dns", "check", "--domain", DOMAIN, "--ip", addr, "--resolver", dns_server.resolver, *sts_opts,
                  check=False)
        # without the test CA the certificate is not trusted: senders would get no policy
        c2 = s.cli("dns", "check", "--domain", DOMAIN, "--ip", addr, "--resolver", dns_server.resolver,
                   "-o", "delivery.mta_sts_allow_private=yes", check=False)
        # a check for another host name: the policy served does not name it (an enforce policy that
        # leaves out the MX would hold senders' mail back)
        c3 = s.cli("dns", "check", "--domain", DOMAIN, "--ip", addr, "--resolver", dns_server.resolver, *sts_opts,
                   "-o", "server.hostname=other." + DOMAIN, check=False)
    finally:
        s.stop()
    url = "https://mta-sts.%s/.well-known/mta-sts.txt" % DOMAIN
    assert ("ok      MTA-STS policy at %s: mode enforce, max_age 1209600, names %s (the policy this server serves)"
            % (url, HOST)) in c.stdout, c.stdout
    assert "missing MTA-STS policy at %s (recommended): " % url in c2.stdout, c2.stdout
    assert c.returncode == c2.returncode  # recommended: a policy that cannot be fetched is not "wrong"
    assert "WRONG   MTA-STS policy" in c3.stdout, c3.stdout
    assert ("WRONG   MTA-STS policy at %s (mode enforce) does not name other.%s: senders that honour it do not "
            "deliver to this server" % (url, DOMAIN)) in c3.stdout, c3.stdout
    assert "fix: add other.%s to [mta_sts] mx" % DOMAIN in c3.stdout
    assert p.returncode == 0, p.stdout + p.stderr
    assert re.search(r"^lookup: state=policy reason=fetched ", p.stdout, re.M), p.stdout
    assert "mode=enforce max_age=1209600 source=fetched" in p.stdout, p.stdout
    assert "  policy mx: *.backup.%s" % DOMAIN in p.stdout
    assert "MX %s: matches: TLS with a verified certificate required" % HOST in p.stdout, p.stdout
