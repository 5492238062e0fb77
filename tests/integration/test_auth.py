"""SPF, DKIM and DMARC against implementations nobody here wrote, and through DNS served by the
fixture (dnsfixture.py):

- DKIM (RFC 6376, RFC 8463 Ed25519): python3-dkim (dkimpy) and OpenDKIM's opendkim-testmsg verify
  what `mailwerk dkim sign` makes; `mailwerk dkim verify` checks what dkimpy signs and the RFC 8463
  Appendix A vectors; `dkim list` compares the keys with DNS, `dkim activate` rotates.
- SPF (RFC 7208) through `mailwerk spf check`; the setup's records through `mailwerk dns records`
  and `dns check`.
- The MX listener's checks end to end (smtplib as the sending client): Authentication-Results
  (RFC 8601), DMARC (RFC 9989) policies p / sp / np / t=y, enforce and report.
- Submission signing (Ed25519 above RSA), and two mailwerk servers on two loopback addresses, one
  sending to the other, with SPF, DKIM and DMARC all passing at the receiver.

Keys are made at test time and live only in the test's tmp_path."""
import base64
import glob
import os
import re
import shutil
import smtplib
import subprocess

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from dnslib import QTYPE, RR

from conftest import BIN, DOMAIN, HOST, Server
from dnsfixture import DNSServer, dns_server, fixture_txt  # noqa: F401 (a fixture)
from mtafixture import free_port_on, log_events, maildir, mtas, submit, wait_for  # noqa: F401

TESTDATA = os.environ.get("MAILWERK_TESTDATA",
                          os.path.join(os.path.dirname(__file__), "../../../shared/testdata"))
RFC8463 = os.path.join(TESTDATA, "dkim", "rfc8463")
TIMEOUT = 20.0  # the longest wait for one outcome

# A message with what canonicalization has to get right: a folded header, a header name in another
# case, runs of spaces and tabs, trailing white space, and empty lines at the end of the body.
MESSAGE = (b"From: Alice Example <alice@%(d)s>\r\n"
           b"To: Bob <bob@example.test>\r\n"
           b"Subject: DKIM interop,\r\n\tfolded  over two lines\r\n"
           b"date: Sun, 22 Nov 2026 07:00:00 +0000\r\n"
           b"Message-ID: <interop-1@%(d)s>\r\n"
           b"\r\n"
           b"Hello Bob,  \r\n"
           b"\twhat\t about  lunch? \r\n"
           b"\r\n"
           b"Alice\r\n"
           b"\r\n"
           b"\r\n")


def message_for(domain):
    return MESSAGE % {b"d": domain.encode()}


# ---- running the CLI ----

def mw(*args, input=None, conf=None, cwd=None):
    """mailwerk ARGS [-c conf], bytes in and out. cwd: a directory without ./var, so that commands
    that read ./var/mailwerk.conf when it exists find none."""
    cmd = [BIN, *args] + (["-c", conf] if conf else [])
    return subprocess.run(cmd, input=input, capture_output=True, timeout=120, cwd=cwd)


def zone_lines(text):
    """The record lines of a command's zone-file output (not the ; comments, not empty lines)."""
    return [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith(";")]


def keygen(server, domain, selector, algorithm="rsa"):
    """`dkim keygen`; returns (its output, the TXT record line it prints)."""
    out = server.cli("dkim", "keygen", "--domain", domain, "--selector", selector, "--algorithm", algorithm).stdout
    lines = zone_lines(out)
    assert len(lines) == 1 and lines[0].startswith("%s._domainkey.%s. IN TXT" % (selector, domain)), out
    return out, lines[0]


# ---- keys for the other side (dkimpy signs with them) ----

def rsa_key(bits=2048):
    """(PKCS#1 PEM private key as dkimpy takes it, the DKIM key record)."""
    k = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                          serialization.NoEncryption())
    spki = k.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, "v=DKIM1; k=rsa; p=" + base64.b64encode(spki).decode()


def ed25519_key():
    """(base64 of the 32-octet seed, as dkimpy takes it, the DKIM key record, RFC 8463 §4)."""
    k = ed25519.Ed25519PrivateKey.generate()
    seed = k.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    pub = k.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(seed), "v=DKIM1; k=ed25519; p=" + base64.b64encode(pub).decode()


def dkimpy_sign(msg, domain, selector, key, algorithm="rsa", canon=(b"relaxed", b"relaxed")):
    field = dkim.sign(msg, selector.encode(), domain.encode(), key, canonicalize=canon,
                      signature_algorithm=b"ed25519-sha256" if algorithm == "ed25519" else b"rsa-sha256")
    return field + msg


# ---- dkimpy as the verifier, its key lookups answered by the DNS fixture over the wire ----

def dkim_fields(msg):
    head = msg.split(b"\r\n\r\n", 1)[0]
    return re.findall(rb"(?im)^DKIM-Signature:[^\r\n]*(?:\r\n[ \t][^\r\n]*)*", head)


def dkimpy_verify(msg, dns):
    """dkimpy's verdict on each DKIM-Signature of msg, in order."""
    d = dkim.DKIM(msg, minkey=1024)
    results = []
    for i in range(len(dkim_fields(msg))):
        try:
            results.append(bool(d.verify(idx=i, dnsfunc=lambda name, timeout=5: fixture_txt(dns, name))))
        except dkim.DKIMException:
            results.append(False)
    return results


def tag(field, name):
    """A tag's value in a DKIM-Signature field (white space removed)."""
    flat = re.sub(rb"\s+", b"", field.split(b":", 1)[1]).decode()
    for item in flat.split(";"):
        if item.startswith(name + "="):
            return item[len(name) + 1:]
    return None


# ---- mailwerk dkim verify ----

def mw_verify(msg, dns, cwd):
    p = mw("dkim", "verify", "--resolver", dns.resolver, input=msg, cwd=cwd)
    return p.returncode, p.stdout.decode().splitlines(), p.stderr.decode()


# ======== 1. DKIM interop with python3-dkim, and the RFC 8463 vectors ========

@pytest.mark.parametrize("algorithm", ["rsa", "ed25519"])
def test_python_dkim_verifies_what_mailwerk_signs(tmp_path, dns_server, algorithm):
    s = Server(tmp_path)  # a setup (mailwerk init), not running
    _, record = keygen(s, "signer.test", "k1", algorithm)
    dns_server.load(record)
    msg = message_for("signer.test")
    p = mw("dkim", "sign", "--domain", "signer.test", "--selector", "k1", input=msg, conf=s.conf)
    assert p.returncode == 0, p.stderr
    signed = p.stdout
    assert signed.endswith(msg)  # the message itself is unchanged, the field goes on top
    fields = dkim_fields(signed)
    assert len(fields) == 1 and signed.startswith(fields[0])
    assert tag(fields[0], "a") == algorithm + "-sha256"
    assert (tag(fields[0], "d"), tag(fields[0], "s"), tag(fields[0], "c")) == ("signer.test", "k1", "relaxed/relaxed")
    assert dkimpy_verify(signed, dns_server) == [True]
    assert ("k1._domainkey.signer.test", "TXT") in dns_server.asked()
    # the same verifier says no to an altered copy, so the pass above means something
    assert dkimpy_verify(signed.replace(b"about  lunch", b"about  dinner"), dns_server) == [False]
    assert dkimpy_verify(signed.replace(b"DKIM interop,", b"DKIM interop!"), dns_server) == [False]
    # and to the right signature under a key record that is not this key's
    dns_server.clear()
    dns_server.load({"k1._domainkey.signer.test": {"TXT": (rsa_key() if algorithm == "rsa" else ed25519_key())[1]}})
    assert dkimpy_verify(signed, dns_server) == [False]


@pytest.mark.parametrize("algorithm,canon", [
    ("rsa", (b"relaxed", b"simple")),
    ("rsa", (b"simple", b"simple")),
    ("rsa", (b"relaxed", b"relaxed")),
    ("ed25519", (b"relaxed", b"relaxed")),
    ("ed25519", (b"simple", b"relaxed")),
], ids=["rsa-relaxed-simple", "rsa-simple-simple", "rsa-relaxed-relaxed", "ed25519-relaxed-relaxed",
        "ed25519-simple-relaxed"])
def test_mailwerk_verifies_what_python_dkim_signs(tmp_path, dns_server, algorithm, canon):
    key, record = rsa_key() if algorithm == "rsa" else ed25519_key()
    dns_server.load({"py1._domainkey.py.test": {"TXT": record}})
    signed = dkimpy_sign(message_for("py.test"), "py.test", "py1", key, algorithm, canon)
    assert tag(dkim_fields(signed)[0], "c") == "%s/%s" % (canon[0].decode(), canon[1].decode())
    rc, lines, err = mw_verify(signed, dns_server, tmp_path)
    assert rc == 0, (lines, err)
    assert len(lines) == 1 and lines[0].startswith("pass d=py.test s=py1 a=%s-sha256" % algorithm), lines
    # body tampering
    rc, lines, _ = mw_verify(signed.replace(b"about  lunch", b"about  dinner"), dns_server, tmp_path)
    assert rc == 1 and len(lines) == 1 and lines[0].startswith("fail d=py.test s=py1"), lines
    # Subject tampering (a signed header field)
    rc, lines, _ = mw_verify(signed.replace(b"folded  over", b"folded  under"), dns_server, tmp_path)
    assert rc == 1 and len(lines) == 1 and lines[0].startswith("fail d=py.test s=py1"), lines


def test_mailwerk_verify_reports_none_for_an_unsigned_message(tmp_path, dns_server):
    rc, lines, err = mw_verify(message_for("py.test"), dns_server, tmp_path)
    assert rc == 1, (lines, err)
    assert lines and lines[0].startswith("none"), lines
    assert dns_server.asked() == []  # nothing to look up


def rfc8463_fixture(dns):
    with open(os.path.join(RFC8463, "dns-records.zone")) as f:
        dns.load(f.read())  # A.2 verbatim: the RSA record as four strings


def read_vector(*parts):
    with open(os.path.join(TESTDATA, "dkim", *parts), "rb") as f:
        return f.read()


@pytest.mark.parametrize("path,expected", [
    (("rfc8463", "signed-message.eml"), [("brisbane", "ed25519-sha256"), ("test", "rsa-sha256")]),
    (("rfc8463", "signed-message-ed25519-only.eml"), [("brisbane", "ed25519-sha256")]),
    (("rfc8463", "signed-message-rsa-only.eml"), [("test", "rsa-sha256")]),
    (("dkimpy", "rfc8463-keys-simple-simple-signed.eml"), None),  # simple/simple, same keys
], ids=["both", "ed25519-only", "rsa-only", "simple-simple"])
def test_rfc8463_vectors_verify(tmp_path, dns_server, path, expected):
    rfc8463_fixture(dns_server)
    msg = read_vector(*path)
    rc, lines, err = mw_verify(msg, dns_server, tmp_path)
    assert rc == 0, (lines, err)
    assert all(line.startswith("pass d=football.example.com ") for line in lines), lines
    got = [(re.search(r" s=(\S+)", line).group(1), re.search(r" a=(\S+)", line).group(1)) for line in lines]
    if expected is not None:
        assert got == expected, lines
    else:
        assert sorted(s for s, _ in got) == ["brisbane", "test"], lines
    # RFC 8463 A.3 signs From, Subject and Date twice: a second Subject on top breaks every signature
    forged = msg.replace(b"From: Joe SixPack", b"Subject: Free money\r\nFrom: Joe SixPack", 1)
    rc, lines, _ = mw_verify(forged, dns_server, tmp_path)
    assert rc == 1 and lines and all(line.startswith("fail ") for line in lines), lines
    rc, lines, _ = mw_verify(msg.replace(b"We lost the game", b"We won the game"), dns_server, tmp_path)
    assert rc == 1 and lines and all(line.startswith("fail ") for line in lines), lines


# ======== 2. OpenDKIM as a second verifier ========

OPENDKIM_NS = "127.0.0.153"  # the fixture's address inside opendkim-testmsg's view of /etc/resolv.conf


def opendkim_env(tmp_path):
    """opendkim-testmsg has no option for a key or a name server: libopendkim asks the system
    resolver (res_nquery: /etc/resolv.conf, port 53). It runs here in a private mount namespace
    whose /etc/resolv.conf names a DNS fixture on OPENDKIM_NS:53 (and whose /var/tmp, where it
    leaves its temporary copy, is the test's). Returns the command prefix, or skips with why."""
    if shutil.which("opendkim-testmsg") is None:
        pytest.skip("opendkim-testmsg is not installed (Debian package opendkim-tools, scripts/deps.sh)")
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("opendkim-testmsg can only be pointed at the DNS fixture from a private mount "
                    "namespace (unshare --mount), which needs root")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver %s\noptions timeout:2 attempts:2\n" % OPENDKIM_NS)
    vartmp = tmp_path / "var-tmp"
    vartmp.mkdir()
    prefix = ["unshare", "--mount", "sh", "-c",
              'mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /var/tmp && shift 2 && exec "$@"',
              "sh", str(resolv), str(vartmp)]
    probe = subprocess.run(prefix + ["cat", "/etc/resolv.conf"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0 or probe.stdout != resolv.read_text():
        pytest.skip("no private mount namespace for opendkim-testmsg's resolv.conf: %s" % probe.stderr.strip())
    return prefix


def test_opendkim_verifies_what_mailwerk_signs(tmp_path):
    prefix = opendkim_env(tmp_path)
    try:
        dns = DNSServer(host=OPENDKIM_NS, port=53).start()
    except OSError as e:
        pytest.skip("cannot serve DNS on %s:53 for opendkim-testmsg: %s" % (OPENDKIM_NS, e))
    try:
        s = Server(tmp_path / "setup")
        for selector, algorithm in (("od-rsa", "rsa"), ("od-ed", "ed25519")):
            dns.load(keygen(s, "od.test", selector, algorithm)[1])
        msg = message_for("od.test")
        for selector, algorithm in (("od-rsa", "rsa"), ("od-ed", "ed25519")):
            p = mw("dkim", "sign", "--domain", "od.test", "--selector", selector, input=msg, conf=s.conf)
            assert p.returncode == 0, p.stderr
            signed = p.stdout
            asked = len(dns.asked())
            ok = subprocess.run(prefix + ["opendkim-testmsg"], input=signed, capture_output=True, timeout=60)
            assert ok.returncode == 0, (algorithm, ok.stderr)
            assert ("%s._domainkey.od.test" % selector, "TXT") in dns.asked()[asked:]  # it did look the key up
            bad = subprocess.run(prefix + ["opendkim-testmsg"], input=signed.replace(b"about  lunch", b"about  tea"),
                                 capture_output=True, timeout=60)
            assert bad.returncode != 0 and b"signature" in bad.stderr.lower(), (algorithm, bad.returncode, bad.stderr)
    finally:
        dns.stop()


# ======== 3. dkim list and dkim activate ========

def test_dkim_list_compares_keys_with_dns(tmp_path, dns_server):
    s = Server(tmp_path)
    _, good = keygen(s, "list.test", "good", "rsa")           # the first RSA key: active
    keygen(s, "list.test", "absent", "rsa")                   # never published
    _, swapped = keygen(s, "list.test", "swapped", "ed25519")  # the first Ed25519 key: active
    _, other = keygen(s, "list.test", "other", "ed25519")
    dns_server.load(good)
    dns_server.load(other)
    # at swapped's name, the record of another key (other's)
    dns_server.load(other.replace("other._domainkey", "swapped._domainkey", 1))
    p = s.cli("dkim", "list", "--domain", "list.test", "--resolver", dns_server.resolver, check=False)
    assert p.stdout.splitlines() == [
        "list.test absent rsa 2048 inactive dns=missing",
        "list.test good rsa 2048 active dns=match",
        "list.test other ed25519 256 inactive dns=match",
        "list.test swapped ed25519 256 active dns=mismatch",
    ], p.stdout
    assert p.returncode == 1  # a key that signs is not what DNS publishes
    s.cli("dkim", "activate", "--domain", "list.test", "--selector", "other")
    p = s.cli("dkim", "list", "--domain", "list.test", "--resolver", dns_server.resolver, check=False)
    assert p.stdout.splitlines() == [
        "list.test absent rsa 2048 inactive dns=missing",
        "list.test good rsa 2048 active dns=match",
        "list.test other ed25519 256 active dns=match",
        "list.test swapped ed25519 256 inactive dns=mismatch",
    ], p.stdout
    assert p.returncode == 0, p.stdout  # only keys that do not sign are off now


def stored(server, marker, folder=""):
    """The message with Subject marker in demo's Maildir (folder "" the inbox, ".Junk"), waiting
    for local delivery; None if it does not come."""
    def find():
        for path in glob.glob(os.path.join(server.dir, "mail", DOMAIN, "demo", folder, "new", "*")):
            with open(path, "rb") as f:
                raw = f.read()
            if re.search(rb"(?m)^Subject: " + re.escape(marker.encode()) + rb"\r?$", raw):
                return raw
        return None
    return wait_for(find, TIMEOUT)


def own_records(server, dns, domain=DOMAIN):
    """Publishes the DKIM records of domain's active keys, as `dns records` prints them."""
    out = server.cli("dns", "records", "--domain", domain, "--ip", "127.0.0.1").stdout
    lines = [line for line in zone_lines(out) if "._domainkey." in line]
    assert lines, out
    dns.load("\n".join(lines))
    return lines


def test_dkim_activate_changes_the_key_that_signs(servers, dns_server):
    s = servers.make("rot", {"dns.resolver": dns_server.resolver})
    first = [line.split()[1] for line in s.cli("dkim", "list", "--domain", DOMAIN, "--no-dns").stdout.splitlines()]
    assert len(first) == 1, first  # init made the domain's first key
    out, record = keygen(s, DOMAIN, "next", "rsa")
    assert "not signing yet" in out  # not the first RSA key of the domain
    dns_server.load(record)
    own_records(s, dns_server)
    s.start()
    submit(s, ["demo@" + DOMAIN], b"From: <demo@mailwerk.test>\r\nSubject: before\r\n\r\nrotate 1\r\n",
           implicit_tls=False)
    before = stored(s, "before")
    assert before is not None, s.log_text()[-3000:]
    assert [tag(f, "s") for f in dkim_fields(before)] == [first[0]]
    assert dkimpy_verify(before.split(b"\r\n", 2)[2], dns_server) == [True]  # without Return-Path, Delivered-To
    s.cli("dkim", "activate", "--domain", DOMAIN, "--selector", "next")
    submit(s, ["demo@" + DOMAIN], b"From: <demo@mailwerk.test>\r\nSubject: after\r\n\r\nrotate 2\r\n",
           implicit_tls=False)
    after = stored(s, "after")
    assert after is not None, s.log_text()[-3000:]
    assert [tag(f, "s") for f in dkim_fields(after)] == ["next"], s.log_text()[-2000:]
    assert dkimpy_verify(after.split(b"\r\n", 2)[2], dns_server) == [True]


# ======== 4. spf check ========

SPF_ZONE = {
    "pass.test": {"TXT": "v=spf1 ip4:127.0.0.0/29 -all"},
    "fail.test": {"TXT": "v=spf1 ip4:192.0.2.1 -all"},
    "soft.test": {"TXT": "v=spf1 ip4:192.0.2.1 ~all"},
    "neutral.test": {"TXT": "v=spf1 ?all"},
    "two.test": {"TXT": ["v=spf1 ip4:127.0.0.1 -all", "v=spf1 -all"]},  # RFC 7208 §4.5: permerror
    "loop.test": {"TXT": "v=spf1 include:loop.test -all"},              # §4.6.4: past 10 lookups
    # RFC 7208 §4.6.4: at most 10 terms that cause DNS lookups; the 11th is a permerror
    "ten.test": {"TXT": "v=spf1 " + " ".join("a:a%d.chain.test" % i for i in range(1, 11)) + " ip4:127.0.0.1 -all"},
    "eleven.test": {"TXT": "v=spf1 " + " ".join("a:a%d.chain.test" % i for i in range(1, 12)) + " ip4:127.0.0.1 -all"},
    "nospf.test": {"TXT": "google-site-verification=abc", "A": "192.0.2.9"},
    "broken.test": {"TXT": "v=spf1 ip4:127.0.0.1 bogus:thing -all"},
}
for _i in range(1, 12):
    SPF_ZONE["a%d.chain.test" % _i] = {"A": "192.0.2.%d" % (100 + _i)}


@pytest.mark.parametrize("domain,result", [
    ("pass.test", "pass"),
    ("fail.test", "fail"),
    ("soft.test", "softfail"),
    ("neutral.test", "neutral"),
    ("two.test", "permerror"),
    ("loop.test", "permerror"),
    ("ten.test", "pass"),         # 10 a: lookups, then ip4 matches
    ("eleven.test", "permerror"), # the 11th a: is past the limit, before ip4 is reached
    ("broken.test", "permerror"),
    ("nospf.test", "none"),
    ("nxdomain.test", "none"),
])
def test_spf_check_results(tmp_path, dns_server, domain, result):
    dns_server.load(SPF_ZONE)
    p = mw("spf", "check", "--ip", "127.0.0.1", "--sender", "someone@" + domain, "--helo", "client.test",
           "--resolver", dns_server.resolver, cwd=tmp_path)
    lines = p.stdout.decode().splitlines()
    assert lines and lines[0] == result, (lines, p.stderr)
    assert p.returncode == (0 if result == "pass" else 1), (p.returncode, lines)
    assert (domain, "TXT") in dns_server.asked()


def test_spf_check_null_sender_checks_postmaster_at_helo(tmp_path, dns_server):
    dns_server.load({"helo-ok.test": {"TXT": "v=spf1 ip4:127.0.0.1 -all"},
                     "helo-bad.test": {"TXT": "v=spf1 -all"}})
    p = mw("spf", "check", "--ip", "127.0.0.1", "--sender", "", "--helo", "helo-ok.test",
           "--resolver", dns_server.resolver, cwd=tmp_path)
    lines = p.stdout.decode().splitlines()
    assert p.returncode == 0 and lines[0] == "pass", (lines, p.stderr)
    assert "sender: postmaster@helo-ok.test" in lines and "domain: helo-ok.test" in lines, lines
    p = mw("spf", "check", "--ip", "127.0.0.1", "--sender", "", "--helo", "helo-bad.test",
           "--resolver", dns_server.resolver, cwd=tmp_path)
    lines = p.stdout.decode().splitlines()
    assert p.returncode == 1 and lines[0] == "fail", lines
    assert "sender: postmaster@helo-bad.test" in lines, lines


# ======== 5. dns records, then dns check ========

# The address the server sends from, as --ip gives it: one that libunbound does not answer itself.
# Its default local zones (RFC 6303 and friends: 127.in-addr.arpa, the private ranges, the
# documentation ranges 192.0.2/24, 198.51.100/24, 203.0.113/24) never reach the fixture, so the
# PTR of 127.0.0.1 is always "localhost" to mailwerk. 198.18.0.0/15 (RFC 2544) is not among them.
SERVER_IP = "198.18.0.25"
SERVER_PTR = "25.0.18.198.in-addr.arpa."


def rr_key(line):
    rr = RR.fromZone(line)[0]
    return str(rr.rname).lower(), QTYPE.get(rr.rtype)


def dns_check(server, dns):
    p = server.cli("dns", "check", "--domain", DOMAIN, "--ip", SERVER_IP, "--resolver", dns.resolver, check=False)
    return p.returncode, p.stdout.splitlines()


def test_dns_records_then_check(tmp_path, dns_server):
    s = Server(tmp_path)
    keygen(s, DOMAIN, "ed1", "ed25519")               # a second active key: Ed25519 besides init's RSA
    _, spare = keygen(s, DOMAIN, "spare", "rsa")      # inactive: another RSA key, for a wrong record
    out = s.cli("dns", "records", "--domain", DOMAIN, "--ip", SERVER_IP).stdout
    records = zone_lines(out)
    kinds = [rr_key(line) for line in records]
    active_rsa = [line.split()[1] for line in s.cli("dkim", "list", "--domain", DOMAIN, "--no-dns").stdout.splitlines()
                  if " rsa " in line and " active " in line]
    assert len(active_rsa) == 1
    rsa_name = "%s._domainkey.%s." % (active_rsa[0], DOMAIN)
    for want in [(DOMAIN + ".", "MX"), (HOST + ".", "A"), (DOMAIN + ".", "TXT"), (rsa_name, "TXT"),
                 ("ed1._domainkey.%s." % DOMAIN, "TXT"), ("_dmarc.%s." % DOMAIN, "TXT"),
                 (SERVER_PTR, "PTR")]:
        assert want in kinds, (want, out)
    assert ("spare._domainkey.%s." % DOMAIN, "TXT") not in kinds  # only keys that sign

    def publish(lines):
        dns_server.clear()
        dns_server.load("\n".join(lines))

    publish(records)
    rc, lines = dns_check(s, dns_server)
    assert rc == 0, lines
    assert lines[-1].startswith("ready: 0 needed items wrong"), lines
    assert not [line for line in lines if line.startswith("WRONG")], lines
    for start in ("ok      MX of %s points at %s" % (DOMAIN, HOST),
                  "ok      SPF of %s authorizes %s" % (DOMAIN, SERVER_IP),
                  "ok      DKIM %s" % rsa_name.rstrip("."),
                  "ok      DKIM ed1._domainkey.%s" % DOMAIN,
                  "ok      DMARC of %s: p=quarantine" % DOMAIN,
                  "ok      PTR of %s names %s" % (SERVER_IP, HOST)):
        assert any(line.startswith(start) for line in lines), (start, lines)

    def without(name, rtype):
        return [line for line, k in zip(records, kinds) if k != (name, rtype)]

    def replaced(name, rtype, line):
        return without(name, rtype) + [line]

    spare_at_rsa = spare.replace("spare._domainkey.%s." % DOMAIN, rsa_name, 1)
    cases = [
        (without("_dmarc.%s." % DOMAIN, "TXT"), "WRONG   DMARC of %s: missing" % DOMAIN),
        (replaced(DOMAIN + ".", "TXT", '%s. IN TXT "v=spf1 ip4:192.0.2.1 -all"' % DOMAIN),
         "WRONG   SPF of %s does not authorize %s (result fail" % (DOMAIN, SERVER_IP)),
        (replaced(rsa_name, "TXT", spare_at_rsa),
         "WRONG   DKIM %s: does not match our private key" % rsa_name.rstrip(".")),
        (replaced(DOMAIN + ".", "MX", "%s. IN MX 10 mx.elsewhere.test." % DOMAIN),
         "WRONG   MX of %s does not point at %s" % (DOMAIN, HOST)),
        (without(SERVER_PTR, "PTR"), "WRONG   PTR of %s: missing" % SERVER_IP),
        (without(HOST + ".", "A"), "WRONG   PTR of %s names %s, but %s does not resolve to %s"
         % (SERVER_IP, HOST, HOST, SERVER_IP)),
    ]
    for zone, expected in cases:
        publish(zone)
        rc, lines = dns_check(s, dns_server)
        wrong = [line for line in lines if line.startswith("WRONG")]
        assert rc == 1, (expected, lines)
        assert len(wrong) == 1 and wrong[0].startswith(expected), (expected, lines)
        assert lines[-1].startswith("not ready: 1 needed item wrong"), lines
        fix = lines[lines.index(wrong[0]) + 1]
        assert fix.startswith("        fix: "), lines


def test_dns_check_return_path(tmp_path, dns_server):
    """The return path of API mail ([api] return_path_label, "bounces" by default) needs its own MX
    and SPF: `dns check` judges both, and without the SPF record the domain is not ready."""
    s = Server(tmp_path)
    rp = "bounces." + DOMAIN
    records = zone_lines(s.cli("dns", "records", "--domain", DOMAIN, "--ip", SERVER_IP).stdout)
    assert (rp + ".", "MX") in [rr_key(line) for line in records] and (rp + ".", "TXT") in [rr_key(line) for line in records]
    dns_server.load("\n".join(records))
    rc, lines = dns_check(s, dns_server)
    assert rc == 0, lines
    assert "ok      MX of %s points at %s" % (rp, HOST) in lines, lines
    assert any(line.startswith("ok      SPF of %s authorizes %s" % (rp, SERVER_IP)) for line in lines), lines

    dns_server.clear()
    dns_server.load("\n".join(line for line in records if rr_key(line) != (rp + ".", "TXT")))
    rc, lines = dns_check(s, dns_server)
    wrong = [line for line in lines if line.startswith("WRONG")]
    assert rc == 1, lines
    assert wrong == ["WRONG   SPF of %s: missing" % rp], lines
    fix = lines[lines.index(wrong[0]) + 1]
    assert fix.startswith('        fix: %s. IN TXT "v=spf1 ip4:%s -all"' % (rp, SERVER_IP)), lines
    assert lines[-1].startswith("not ready: 1 needed item wrong"), lines


# ======== 6. The MX listener's checks, end to end ========

SENDER_IP = "127.0.0.1"  # smtplib connects from here


def mx_server(servers, dns, **keys):
    """A mailwerk whose MX listener checks SPF/DKIM/DMARC ([smtp] auth_checks is on by default) with
    the fixture as its DNS."""
    overrides = {"dns.resolver": dns.resolver}
    overrides.update(keys)
    return servers.make("mx", overrides).start()


def inbound(author, subject, envelope_domain=None, extra=b""):
    return (b"From: Sender <" + author.encode() + b">\r\n"
            b"To: <demo@mailwerk.test>\r\n"
            b"Subject: " + subject.encode() + b"\r\n"
            b"Date: Sun, 22 Nov 2026 08:00:00 +0000\r\n"
            b"Message-ID: <" + subject.encode() + b"@sender.example>\r\n" + extra +
            b"\r\n"
            b"body of " + subject.encode() + b"\r\n")


def send(server, mail_from, data, helo="client.test"):
    """Sends data to demo@ on the MX listener with smtplib; (code, reply) of the end of DATA."""
    with smtplib.SMTP(server.host("smtp"), server.smtp_port, timeout=90) as m:
        m.ehlo(helo)
        code, reply = m.mail(mail_from)
        assert code == 250, (code, reply)
        code, reply = m.rcpt("demo@" + DOMAIN)
        assert code == 250, (code, reply)
        code, reply = m.data(data)
        return code, reply.decode()


def authres_fields(raw):
    """Every Authentication-Results field value of a stored message, unfolded, in order. They must
    be ASCII: the message may be 7-bit, and RFC 8601 values are RFC 2045 tokens or quoted-strings."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    fields = re.findall(rb"(?im)^Authentication-Results:([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)", head)
    out = []
    for f in fields:
        assert all(b < 0x80 for b in f), f
        out.append(re.sub(r"\r\n[ \t]+", " ", f.decode("ascii")).strip())
    return out


def split_authres(value):
    """RFC 8601 §2.2: (authserv-id, [(method, result, {property: value})]); comments dropped,
    quoted strings kept whole."""
    out, depth, quoted, i = "", 0, False, 0
    while i < len(value):  # drop comments, keep quoted strings
        ch = value[i]
        if quoted:
            out += ch
            if ch == "\\" and i + 1 < len(value):
                out += value[i + 1]
                i += 1
            elif ch == '"':
                quoted = False
        elif ch == '"' and depth == 0:
            quoted = True
            out += ch
        elif ch == "(":
            depth += 1
        elif ch == ")" and depth > 0:
            depth -= 1
        elif depth == 0:
            out += ch
        i += 1
    parts = re.findall(r'(?:[^;"]|"(?:[^"\\]|\\.)*")+', out)
    authserv = parts[0].strip()
    results = []
    for part in parts[1:]:
        words = re.findall(r'[^\s=]+=(?:"(?:[^"\\]|\\.)*"|\S+)|\S+', part.strip())
        if not words:
            continue
        method, result = words[0].split("=", 1)
        props = dict(w.split("=", 1) for w in words[1:] if "=" in w)
        results.append((method, result, props))
    return authserv, results


def our_results(raw, hostname=HOST):
    """The results of the one Authentication-Results field of hostname, which must be the first
    field after what local delivery adds (Return-Path, Delivered-To)."""
    fields = authres_fields(raw)
    ours = [f for f in fields if split_authres(f)[0].lower() == hostname.lower()]
    assert len(ours) == 1, fields
    after_delivery = raw.split(b"\r\n", 2)[2]
    assert after_delivery.startswith(b"Authentication-Results: " + hostname.encode() + b";"), raw[:600]
    results = split_authres(ours[0])[1]
    by_method = {}
    for method, result, props in results:
        by_method.setdefault(method, []).append((result, props))
    return by_method


def checked(server):
    events = wait_for(lambda: log_events(server, "checked"), TIMEOUT)
    assert events, server.log_text()[-3000:]
    return events[-1]


def test_inbound_all_pass_and_forged_results_removed(servers, dns_server):
    key, record = rsa_key()
    dns_server.load({"sender.test": {"TXT": "v=spf1 ip4:127.0.0.1 -all"},
                     "_dmarc.sender.test": {"TXT": "v=DMARC1; p=reject"},
                     "s1._domainkey.sender.test": {"TXT": record}})
    s = mx_server(servers, dns_server)
    forged = (b"Authentication-Results: " + HOST.encode() + b"; spf=pass smtp.mailfrom=sender.test;\r\n"
              b"\tdkim=pass header.d=sender.test; dmarc=pass header.from=sender.test\r\n"
              b"Authentication-Results: (claims to be us) MX.Mailwerk.TEST; dkim=pass\r\n"
              b"Authentication-Results: relay.other.example; spf=fail smtp.mailfrom=x@other.example\r\n")
    msg = dkimpy_sign(inbound("alice@sender.test", "all-pass", extra=forged), "sender.test", "s1", key)
    code, reply = send(s, "alice@sender.test", msg)
    assert code == 250, reply
    raw = stored(s, "all-pass")
    assert raw is not None, s.log_text()[-3000:]
    r = our_results(raw)
    assert r["spf"] == [("pass", {"smtp.mailfrom": "alice@sender.test"})], r
    assert len(r["dkim"]) == 1 and r["dkim"][0][0] == "pass", r
    assert r["dkim"][0][1]["header.d"] == "sender.test" and r["dkim"][0][1]["header.s"] == "s1", r
    assert r["dmarc"] == [("pass", {"header.from": "sender.test"})], r
    fields = authres_fields(raw)
    assert len(fields) == 2, fields  # ours, and the one another server added
    assert split_authres(fields[1]) == ("relay.other.example",
                                        [("spf", "fail", {"smtp.mailfrom": "x@other.example"})]), fields
    ev = checked(s)
    assert (ev["spf"], ev["dkim"], ev["dmarc"], ev["verdict"]) == ("pass", "pass", "pass", "accept"), ev
    # the signature still verifies for anyone after us: our field went on top, nothing inside changed
    assert dkimpy_verify(raw.split(b"\r\n", 2)[2], dns_server) == [True]


def test_inbound_dmarc_reject_refuses_with_550(servers, dns_server):
    dns_server.load({"strict.test": {"TXT": "v=spf1 ip4:192.0.2.1 -all"},
                     "_dmarc.strict.test": {"TXT": "v=DMARC1; p=reject"}})
    s = mx_server(servers, dns_server)
    code, reply = send(s, "alice@strict.test", inbound("alice@strict.test", "rejected"))
    assert code == 550 and reply.startswith("5.7.1 "), (code, reply)
    ev = checked(s)
    assert (ev["spf"], ev["dkim"], ev["dmarc"], ev["verdict"]) == ("fail", "none", "fail", "reject"), ev
    assert s.messages() == {} and s.queue() == []
    for folder in ("new", ".Junk/new"):  # not in the inbox, nor quarantined
        assert glob.glob(os.path.join(s.dir, "mail", DOMAIN, "demo", folder, "*")) == []
    assert log_events(s, "accepted") == []


def test_inbound_dmarc_reject_after_dns_trouble_is_temporary(servers, dns_server):
    """A DMARC failure that an SPF lookup failure may have caused is not final: 451, so the sender
    retries, instead of a 550 that would bounce good mail."""
    dns_server.load({"_dmarc.flaky.test": {"TXT": "v=DMARC1; p=reject"}})
    dns_server.servfail("flaky.test")
    s = mx_server(servers, dns_server)
    code, reply = send(s, "alice@flaky.test", inbound("alice@flaky.test", "dns-trouble"))
    assert code == 451 and reply.startswith("4.4.3 "), (code, reply)
    ev = checked(s)
    assert (ev["spf"], ev["dmarc"], ev["verdict"]) == ("temperror", "fail", "tempfail"), ev
    assert s.messages() == {} and s.queue() == []


def test_inbound_dmarc_quarantine_goes_to_junk(servers, dns_server):
    dns_server.load({"q.test": {"TXT": "v=spf1 -all"},
                     "_dmarc.q.test": {"TXT": "v=DMARC1; p=quarantine"}})
    s = mx_server(servers, dns_server)
    code, reply = send(s, "alice@q.test", inbound("alice@q.test", "quarantined"))
    assert code == 250, reply
    raw = stored(s, "quarantined", ".Junk")
    assert raw is not None, s.log_text()[-3000:]
    r = our_results(raw)
    assert r["spf"][0][0] == "fail" and r["dkim"][0][0] == "none" and r["dmarc"][0][0] == "fail", r
    assert checked(s)["verdict"] == "quarantine"
    assert maildir(s.dir, DOMAIN, "demo") == []  # not in the inbox


def test_inbound_dmarc_none_policy_delivers_with_fail(servers, dns_server):
    dns_server.load({"mon.test": {"TXT": "v=spf1 -all"},
                     "_dmarc.mon.test": {"TXT": "v=DMARC1; p=none; rua=mailto:d@mon.test"}})
    s = mx_server(servers, dns_server)
    code, reply = send(s, "alice@mon.test", inbound("alice@mon.test", "monitored"))
    assert code == 250, reply
    raw = stored(s, "monitored")
    assert raw is not None, s.log_text()[-3000:]
    r = our_results(raw)
    assert r["dmarc"][0][0] == "fail" and r["dmarc"][0][1]["header.from"] == "mon.test", r
    assert checked(s)["verdict"] == "accept"
    assert glob.glob(os.path.join(s.dir, "mail", DOMAIN, "demo", ".Junk", "new", "*")) == []


def test_inbound_testing_flag_quarantines_instead_of_rejecting(servers, dns_server):
    dns_server.load({"ty.test": {"TXT": "v=spf1 -all"},
                     "_dmarc.ty.test": {"TXT": "v=DMARC1; p=reject; t=y"}})
    s = mx_server(servers, dns_server)
    code, reply = send(s, "alice@ty.test", inbound("alice@ty.test", "testing-mode"))
    assert code == 250, reply  # RFC 9989 §4.7: t=y, one level below: quarantine
    raw = stored(s, "testing-mode", ".Junk")
    assert raw is not None, s.log_text()[-3000:]
    assert our_results(raw)["dmarc"][0][0] == "fail"
    assert checked(s)["verdict"] == "quarantine"


def test_inbound_report_mode_accepts_with_fail(servers, dns_server):
    dns_server.load({"strict.test": {"TXT": "v=spf1 ip4:192.0.2.1 -all"},
                     "_dmarc.strict.test": {"TXT": "v=DMARC1; p=reject"}})
    s = mx_server(servers, dns_server, **{"smtp.dmarc_action": "report"})
    code, reply = send(s, "alice@strict.test", inbound("alice@strict.test", "reported"))
    assert code == 250, reply
    raw = stored(s, "reported")  # the inbox: report only writes the result down
    assert raw is not None, s.log_text()[-3000:]
    r = our_results(raw)
    assert r["spf"][0][0] == "fail" and r["dmarc"][0][0] == "fail", r
    assert checked(s)["verdict"] == "accept"


def test_inbound_dkim_alignment_alone_passes(servers, dns_server):
    key, record = ed25519_key()
    dns_server.load({"dk.test": {"TXT": "v=spf1 -all"},  # SPF fails for the envelope domain
                     "_dmarc.dk.test": {"TXT": "v=DMARC1; p=reject"},
                     "e1._domainkey.dk.test": {"TXT": record}})
    s = mx_server(servers, dns_server)
    msg = dkimpy_sign(inbound("alice@dk.test", "dkim-aligned"), "dk.test", "e1", key, "ed25519")
    code, reply = send(s, "bounce@dk.test", msg)
    assert code == 250, reply
    raw = stored(s, "dkim-aligned")
    assert raw is not None, s.log_text()[-3000:]
    r = our_results(raw)
    assert r["spf"][0][0] == "fail" and r["dkim"][0][0] == "pass" and r["dmarc"][0][0] == "pass", r
    assert r["dkim"][0][1]["header.d"] == "dk.test" and r["dkim"][0][1]["header.s"] == "e1", r


@pytest.mark.parametrize("author,mail_from,record,outcome", [
    ("alice@sp.test", "alice@sp.test", "v=DMARC1; p=reject", "pass"),
    # relaxed alignment (the default): the envelope domain shares the author's Organizational Domain
    ("alice@news.sp.test", "bounce@sp.test", "v=DMARC1; p=reject", "pass"),
    # strict SPF alignment: the same two domains no longer align
    ("alice@news.sp.test", "bounce@sp.test", "v=DMARC1; p=reject; aspf=s", "reject"),
], ids=["same-domain", "relaxed", "strict"])
def test_inbound_spf_alignment_alone(servers, dns_server, author, mail_from, record, outcome):
    dns_server.load({"sp.test": {"TXT": "v=spf1 ip4:127.0.0.1 -all"},
                     "news.sp.test": {"A": "192.0.2.50"},
                     "_dmarc.sp.test": {"TXT": record}})
    s = mx_server(servers, dns_server)
    code, reply = send(s, mail_from, inbound(author, "spf-aligned"))
    ev = checked(s)
    assert ev["spf"] == "pass" and ev["dkim"] == "none", ev
    if outcome == "pass":
        assert code == 250, reply
        raw = stored(s, "spf-aligned")
        assert raw is not None, s.log_text()[-3000:]
        r = our_results(raw)
        assert r["dmarc"] == [("pass", {"header.from": author.split("@")[1]})], r
        assert r["spf"] == [("pass", {"smtp.mailfrom": mail_from})], r
    else:
        assert code == 550 and reply.startswith("5.7.1"), (code, reply)
        assert ev["dmarc"] == "fail" and ev["verdict"] == "reject", ev


@pytest.mark.parametrize("author,outcome", [
    ("alice@org.test", "inbox"),          # p=none
    ("alice@sub.org.test", "junk"),       # an existing subdomain: sp=quarantine
    ("alice@ghost.org.test", "reject"),   # a subdomain that does not exist: np=reject
])
def test_inbound_subdomain_and_nonexistent_policies(servers, dns_server, author, outcome):
    dns_server.load({"org.test": {"TXT": "v=spf1 -all"},
                     "sub.org.test": {"TXT": "v=spf1 -all", "A": "192.0.2.60"},
                     "_dmarc.org.test": {"TXT": "v=DMARC1; p=none; sp=quarantine; np=reject"}})
    s = mx_server(servers, dns_server)
    code, reply = send(s, author, inbound(author, "policy-" + outcome))
    ev = checked(s)
    assert ev["dmarc"] == "fail", ev
    if outcome == "reject":
        assert code == 550 and reply.startswith("5.7.1"), (code, reply)
        assert ev["verdict"] == "reject" and s.queue() == []
        return
    assert code == 250, reply
    raw = stored(s, "policy-" + outcome, ".Junk" if outcome == "junk" else "")
    assert raw is not None, (outcome, s.log_text()[-3000:])
    result, props = our_results(raw)["dmarc"][0]
    assert (result, props["header.from"]) == ("fail", author.split("@")[1]), props
    if outcome == "junk":
        assert "policy quarantine at _dmarc.org.test (sp)" in props["reason"], props
    else:
        assert "policy none at _dmarc.org.test" in props["reason"], props
    assert ev["verdict"] == ("quarantine" if outcome == "junk" else "accept"), ev


def test_inbound_dkim_key_lookup_failure_is_temperror(servers, dns_server):
    key, _ = rsa_key()
    dns_server.load({"tf.test": {"TXT": "v=spf1 ip4:127.0.0.1 -all"},
                     "_dmarc.tf.test": {"TXT": "v=DMARC1; p=reject"}})
    dns_server.servfail("s1._domainkey.tf.test")
    s = mx_server(servers, dns_server)
    msg = dkimpy_sign(inbound("alice@tf.test", "key-servfail"), "tf.test", "s1", key)
    code, reply = send(s, "alice@tf.test", msg)
    assert code == 250, reply
    raw = stored(s, "key-servfail")
    assert raw is not None, s.log_text()[-3000:]
    r = our_results(raw)
    # RFC 6376 §6.1.2: a key that cannot be fetched for now is a temporary failure, not a fail
    assert [(res, p["header.d"], p["header.s"]) for res, p in r["dkim"]] == [("temperror", "tf.test", "s1")], r
    assert r["spf"][0][0] == "pass" and r["dmarc"][0][0] == "pass", r  # SPF alone aligns


def test_inbound_checks_at_most_dkim_max_signatures(servers, dns_server):
    msg = inbound("alice@many.test", "many-signatures")
    for selector in ("k1", "k2", "k3"):
        key, record = ed25519_key()
        dns_server.load({"%s._domainkey.many.test" % selector: {"TXT": record}})
        msg = dkimpy_sign(msg, "many.test", selector, key, "ed25519")
    dns_server.load({"many.test": {"TXT": "v=spf1 -all"}, "_dmarc.many.test": {"TXT": "v=DMARC1; p=reject"}})
    s = mx_server(servers, dns_server, **{"smtp.dkim_max_signatures": "2"})
    code, reply = send(s, "alice@many.test", msg)
    assert code == 250, reply
    raw = stored(s, "many-signatures")
    assert raw is not None, s.log_text()[-3000:]
    r = our_results(raw)
    assert len(r["dkim"]) == 2 and all(res == "pass" for res, _ in r["dkim"]), r
    assert len({p["header.s"] for _, p in r["dkim"]}) == 2, r
    assert r["dmarc"][0][0] == "pass", r
    assert not [k for k in dns_server.asked() if k[1] == "TXT" and k[0].endswith("._domainkey.many.test")][2:], \
        dns_server.asked()  # the third key was never looked up


def test_inbound_silent_dns_gives_temperror_and_accepts(servers, dns_server):
    """The one slow test: the DNS server stops answering, and the checks' 20 s deadline (or the
    resolver giving up first) turns what is unfinished into temperror; the mail is not refused."""
    dns_server.drop("silent.test", "_dmarc.silent.test")
    s = mx_server(servers, dns_server)
    code, reply = send(s, "alice@silent.test", inbound("alice@silent.test", "silent-dns"))
    assert code == 250, reply
    raw = stored(s, "silent-dns")
    assert raw is not None, s.log_text()[-3000:]
    r = our_results(raw)
    assert r["spf"][0][0] == "temperror" and r["dmarc"][0][0] == "temperror", r
    ev = checked(s)
    assert (ev["spf"], ev["dmarc"], ev["verdict"]) == ("temperror", "temperror", "accept"), ev
    assert ("silent.test", "TXT") in dns_server.asked()


# ======== 7. Signing on submission ========

def test_submission_signs_ed25519_then_rsa(servers, dns_server, mtas):
    port = free_port_on("127.0.0.2")
    dns_server.load({"remote.test": {"MX": "10 mx.remote.test."}, "mx.remote.test": {"A": "127.0.0.2"}})
    mta = mtas.start("127.0.0.2", port)
    s = servers.make("signer", {"dns.resolver": dns_server.resolver, "delivery.remote_port": str(port)})
    out, record = keygen(s, DOMAIN, "ed1", "ed25519")
    assert "signing now" in out  # the domain's first Ed25519 key
    own_records(s, dns_server)   # init's RSA key and ed1, as `dns records` prints them
    s.start()
    qid = submit(s, ["bob@remote.test"], b"From: Demo <demo@mailwerk.test>\r\nTo: <bob@remote.test>\r\n"
                 b"Subject: signed twice\r\n\r\nbody  with  spaces \r\n\r\n", implicit_tls=False)
    txs = mta.wait_transactions(1, TIMEOUT)
    assert len(txs) == 1, s.log_text()[-3000:]
    data = txs[0].data
    fields = dkim_fields(data)
    assert [tag(f, "a") for f in fields] == ["ed25519-sha256", "rsa-sha256"], fields
    assert data.startswith(fields[0]) and data.index(fields[0]) < data.index(fields[1])
    assert [tag(f, "d") for f in fields] == [DOMAIN, DOMAIN]
    assert tag(fields[0], "s") == "ed1"
    assert dkimpy_verify(data, dns_server) == [True, True]
    assert log_events(s, "dkim_signed", queue_id=qid, domain=DOMAIN)
    # From at a domain without keys: out unsigned (MAIL FROM is still the user's)
    qid2 = submit(s, ["bob@remote.test"], b"From: <someone@nokeys.test>\r\nTo: <bob@remote.test>\r\n"
                  b"Subject: not ours\r\n\r\nunsigned\r\n", implicit_tls=False)
    txs = mta.wait_transactions(2, TIMEOUT)
    assert len(txs) == 2, s.log_text()[-3000:]
    assert b"Subject: not ours" in txs[1].data and dkim_fields(txs[1].data) == [], txs[1].data[:800]
    assert log_events(s, "dkim_signed", queue_id=qid2) == []


# ======== 8. Two mailwerk servers: A sends, B checks ========

def test_mailwerk_to_mailwerk_spf_dkim_dmarc_pass(servers, dns_server):
    port = free_port_on("127.0.0.5")
    b = servers.make("b", {"server.hostname": "mx.b.test", "dns.resolver": dns_server.resolver},
                     listen={"smtp": ("127.0.0.5", port)})
    b.cli("domain", "add", "b.test")
    b.cli("user", "add", "bob@b.test", "--password-stdin", input="bob-password\n")
    a = servers.make("a", {"server.hostname": "mx.a.test", "dns.resolver": dns_server.resolver,
                           "delivery.remote_port": str(port)})
    a.cli("domain", "add", "a.test")
    a.cli("user", "add", "alice@a.test", "--password-stdin", input="alice-password\n")
    out, record = keygen(a, "a.test", "a1", "rsa")
    assert "signing now" in out  # a.test's first key
    # A connects to 127.0.0.5 from 127.0.0.1 (the source address Linux picks on lo)
    dns_server.load({"a.test": {"MX": "10 mx.a.test.", "TXT": "v=spf1 ip4:127.0.0.1 -all"},
                     "mx.a.test": {"A": "127.0.0.1"},
                     "_dmarc.a.test": {"TXT": "v=DMARC1; p=reject"},
                     "b.test": {"MX": "10 mx.b.test."},
                     "mx.b.test": {"A": "127.0.0.5"}})
    dns_server.load(record)
    b.start()
    a.start()
    submit(a, ["bob@b.test"], b"From: Alice <alice@a.test>\r\nTo: Bob <bob@b.test>\r\nSubject: a to b\r\n\r\n"
           b"Hello from a.test\r\n", user="alice@a.test", password="alice-password", implicit_tls=False)
    got = wait_for(lambda: maildir(b.dir, "b.test", "bob"), TIMEOUT)
    assert len(got) == 1, (a.log_text()[-3000:], b.log_text()[-3000:])
    accepted = log_events(b, "accepted")
    assert len(accepted) == 1 and accepted[0]["client"] == "127.0.0.1", accepted
    raw = got[0]
    fields = authres_fields(raw)
    assert len(fields) == 1, fields
    r = our_results(raw, "mx.b.test")
    assert r["spf"] == [("pass", {"smtp.mailfrom": "alice@a.test"})], r
    assert [(res, p["header.d"], p["header.s"]) for res, p in r["dkim"]] == [("pass", "a.test", "a1")], r
    assert r["dmarc"] == [("pass", {"header.from": "a.test"})], r
    ev = checked(b)
    assert (ev["spf"], ev["dkim"], ev["dmarc"], ev["verdict"]) == ("pass", "pass", "pass", "accept"), ev


# ---- DMARC aggregate reports (RFC 9990) ----

def report_messages(server):
    """Every message in demo's inbox that is a DMARC aggregate report, parsed."""
    import email
    import email.policy
    out = []
    for path in glob.glob(os.path.join(server.dir, "mail", DOMAIN, "demo", "new", "*")):
        with open(path, "rb") as f:
            msg = email.message_from_binary_file(f, policy=email.policy.default)
        if str(msg.get("Subject", "")).startswith("Report Domain:"):
            out.append(msg)
    return out


def test_dmarc_aggregate_report_reaches_the_rua_mailbox(servers, dns_server):
    import gzip
    import xml.etree.ElementTree as ET
    dns_server.load({"rep.test": {"TXT": "v=spf1 ip4:127.0.0.1 -all"},
                     "_dmarc.rep.test": {"TXT": "v=DMARC1; p=none; rua=mailto:demo@" + DOMAIN},
                     # RFC 9990 §4: mailwerk.test agrees to take rep.test's reports
                     "rep.test._report._dmarc." + DOMAIN: {"TXT": "v=DMARC1"}})
    s = mx_server(servers, dns_server, **{"dmarc.reports": "yes", "dmarc.report_interval": "3s"})
    assert send(s, "alice@rep.test", inbound("alice@rep.test", "rep-pass"))[0] == 250
    assert send(s, "bob@other.test", inbound("bob@rep.test", "rep-fail"))[0] == 250
    reports = wait_for(lambda: report_messages(s), TIMEOUT)
    assert reports, s.log_text()[-3000:]
    msg = reports[0]
    subject = str(msg["Subject"])
    assert subject.startswith("Report Domain: rep.test Submitter: " + HOST + " Report-ID: "), subject
    assert str(msg["From"]) == "dmarc-reports@" + HOST
    parts = [p for p in msg.iter_attachments() if p.get_content_type() == "application/gzip"]
    assert len(parts) == 1, [p.get_content_type() for p in msg.iter_parts()]
    name = parts[0].get_filename()
    assert name.startswith(HOST + "!rep.test!") and name.endswith(".xml.gz"), name
    root = ET.fromstring(gzip.decompress(parts[0].get_payload(decode=True)))
    ns = {"d": root.tag[1:].split("}")[0]} if root.tag.startswith("{") else {"d": ""}
    q = (lambda path: path.replace("/", "/d:") if ns["d"] else path)
    assert root.find("d:" + q("policy_published/domain") if ns["d"] else "policy_published/domain", ns).text == "rep.test"
    records = root.findall("d:record" if ns["d"] else "record", ns)
    counts = {}
    for rec in records:
        get = lambda p: rec.find("d:" + q(p) if ns["d"] else p, ns).text  # noqa: E731
        assert get("row/source_ip") == "127.0.0.1"
        assert get("identifiers/header_from") == "rep.test"
        key = get("row/policy_evaluated/spf")
        counts[key] = counts.get(key, 0) + int(get("row/count"))
    assert counts == {"pass": 1, "fail": 1}, counts  # one aligned message, one not
    # its rows are gone from the store: the next period reports only new mail
    assert wait_for(lambda: log_events(s, "dmarc_reports"), TIMEOUT)


def test_dmarc_report_needs_the_external_destination_record(servers, dns_server):
    dns_server.load({"norep.test": {"TXT": "v=spf1 ip4:127.0.0.1 -all"},
                     "_dmarc.norep.test": {"TXT": "v=DMARC1; p=none; rua=mailto:demo@" + DOMAIN}})
    s = mx_server(servers, dns_server, **{"dmarc.reports": "yes", "dmarc.report_interval": "2s"})
    assert send(s, "alice@norep.test", inbound("alice@norep.test", "norep"))[0] == 250
    dropped = wait_for(lambda: log_events(s, "dmarc_report_dropped"), TIMEOUT)
    assert dropped and dropped[0]["reason"] == "no_verified_destination", s.log_text()[-3000:]
    assert report_messages(s) == []
    assert ("norep.test._report._dmarc." + DOMAIN, "TXT") in dns_server.asked()


# ---- large messages: the body arrives in a spool file, DKIM reads it from there ----

def large_body(mib):
    line = b"a line of a large message, with  double  spaces and a tab\there " + b"x" * 900 + b"\r\n"
    return line * (mib * 1024 * 1024 // len(line))


def test_inbound_large_message_dkim_verified_from_the_spool(servers, dns_server):
    """A 4 MiB message (past the 256 KiB kept in memory) signed by dkimpy: mailwerk's verification
    reads the body back from the spool and passes; the stored message is byte-exact."""
    key, record = rsa_key()
    dns_server.load({"sender.test": {"TXT": "v=spf1 ip4:127.0.0.1 -all"},
                     "_dmarc.sender.test": {"TXT": "v=DMARC1; p=reject"},
                     "s1._domainkey.sender.test": {"TXT": record}})
    s = mx_server(servers, dns_server)
    head = inbound("alice@sender.test", "large-signed").split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    msg = dkimpy_sign(head + large_body(4), "sender.test", "s1", key)
    code, reply = send(s, "alice@sender.test", msg)
    assert code == 250, reply
    raw = stored(s, "large-signed")
    assert raw is not None, s.log_text()[-3000:]
    r = our_results(raw)
    assert len(r["dkim"]) == 1 and r["dkim"][0][0] == "pass", r
    assert r["dmarc"] == [("pass", {"header.from": "sender.test"})], r
    assert raw.endswith(msg[msg.index(b"\r\n\r\n"):])  # the body, byte for byte
    assert dkimpy_verify(raw.split(b"\r\n", 2)[2], dns_server) == [True]
    # nothing is left in the spool directory: its files never have a name
    assert os.listdir(os.path.join(s.dir, "spool")) == []


def test_submission_signs_a_large_message_from_the_spool(servers, dns_server, mtas):
    """A 3 MiB submission is signed (Ed25519 and RSA) with its body read from the spool, and dkimpy
    verifies both signatures on what the receiving MTA got."""
    port = free_port_on("127.0.0.2")
    dns_server.load({"remote.test": {"MX": "10 mx.remote.test."}, "mx.remote.test": {"A": "127.0.0.2"}})
    mta = mtas.start("127.0.0.2", port)
    s = servers.make("bigsigner", {"dns.resolver": dns_server.resolver, "delivery.remote_port": str(port)})
    keygen(s, DOMAIN, "ed1", "ed25519")
    own_records(s, dns_server)
    s.start()
    body = large_body(3)
    submit(s, ["bob@remote.test"], b"From: Demo <demo@mailwerk.test>\r\nTo: <bob@remote.test>\r\n"
           b"Subject: large and signed\r\n\r\n" + body, implicit_tls=False)
    txs = mta.wait_transactions(1, TIMEOUT)
    assert len(txs) == 1, s.log_text()[-3000:]
    data = txs[0].data
    assert [tag(f, "a") for f in dkim_fields(data)] == ["ed25519-sha256", "rsa-sha256"]
    assert dkimpy_verify(data, dns_server) == [True, True]
    assert data.endswith(b"\r\n\r\n" + body)
