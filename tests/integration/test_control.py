"""The control socket (data_dir/control.sock) and the commands that use it: `mailwerk status` against
a running server and without one (exit 3), hostile records on the socket, and `queue hold`,
`queue release` and `queue bounce`, through the running server and on queue.db with it stopped. Held
mail waits across a restart; a bounce reaches the sender as an RFC 3464 report."""
import datetime
import json
import os
import re
import signal
import smtplib
import socket
import ssl
import stat
import struct
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import DOMAIN, HOST, Server, run_cli
from dnsfixture import dns_server  # noqa: F401 (a fixture)
from mtafixture import (free_port_on, holds_for, log_events, message, mtas, report_parts,  # noqa: F401
                        reports, start_sender, submit, wait_for)

SENDER = "demo@" + DOMAIN
TIMEOUT = 20.0
HEADER = struct.Struct("<IIQ")  # type, payload length, request id (src/ipc/ipc.h)
REQ_STATUS, REPLY_OK, REPLY_ERROR = 1, 64, 65


def status(server):
    p = server.cli("status", "--json", "--no-dns")  # DNS only where it is the point
    return json.loads(p.stdout)


def sock_path(server):
    return os.path.join(server.dir, "control.sock")


def control_socket(server):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(5)
    s.connect(sock_path(server))
    return s


def answer(s):
    """The reply's (type, id, payload), or None when the server closed without one."""
    try:
        rec = s.recv(1 << 17)
    except ConnectionResetError:
        return None
    if not rec:
        return None
    t, n, rid = HEADER.unpack_from(rec)
    assert n == len(rec) - HEADER.size
    return t, rid, rec[HEADER.size:]


def closed(s):
    """True once the server has closed s (after any reply)."""
    try:
        while True:
            if not s.recv(1 << 17):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


# ---- status ----

def test_status_of_a_running_server(fresh_server):
    s = fresh_server.start()
    st = status(s)
    assert st["version"] == run_cli("--version").stdout.split()[1]
    assert st["pid"] == s.worker_pid() and st["parent_pid"] == s.proc.pid
    assert 0 <= st["uptime_seconds"] < 60
    assert st["sandbox"] is True
    assert st["last_reload"] is None
    listeners = {(l["role"], l["address"]) for l in st["listeners"]}
    assert ("smtp", "127.0.0.1:%d" % s.smtp_port) in listeners
    assert ("pop3", "127.0.0.1:%d" % s.pop3_port) in listeners
    assert set(st["sessions"]) >= {"smtp", "submission", "pop3", "http"}
    assert st["sessions"]["smtp"] == 0 and st["sessions_total"] == 0
    assert st["queue"] == {"messages": 0, "held": 0, "recipients_due": 0, "recipients_deferred": 0,
                           "oldest_age_seconds": None}
    assert st["delivery"]["connections"] == 0 and st["delivery"]["max_connections"] > 0
    none = {"local": {"delivered": 0, "deferred": 0, "failed": 0}, "remote": {"delivered": 0, "deferred": 0, "failed": 0}}
    assert st["deliveries"] == {"last_minute": none, "last_hour": none}
    # a client connects: one smtp session more, and none once it has gone
    with smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=10) as m:
        m.ehlo("client.test")
        st = status(s)
        assert st["sessions"]["smtp"] == 1 and st["sessions_total"] == 1
    assert wait_for(lambda: status(s)["sessions"]["smtp"] == 0, 10)
    # the text form says the same
    text = s.cli("status", "--no-dns").stdout
    assert "worker:      pid %d" % s.worker_pid() in text
    assert "smtp 127.0.0.1:%d" % s.smtp_port in text and "sandbox:     on" in text
    assert "last reload: never" in text
    # a reload is shown with its time
    s.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: "event=reload result=ok" in s.log_text(), 10)
    assert wait_for(lambda: status(s)["last_reload"] is not None, 10)
    assert "last reload: never" not in s.cli("status", "--no-dns").stdout


def test_status_counts_the_deliveries_of_the_last_minute_and_hour(dns_server, mtas, servers):
    """Every recipient's outcome once recorded: delivered, deferred (tried again later) and failed
    (for good), local and remote, in both windows; the text form says the same."""
    port = free_port_on("127.0.0.2")
    dns_server.load({"out.test": {"MX": "10 mx.out.test."}, "mx.out.test": {"A": "127.0.0.2"}})
    mta = mtas.start("127.0.0.2", port, rcpt_replies={"gone@out.test": "550 5.1.1 no such user"},
                     data_replies=["451 4.3.0 try again later"])
    s = start_sender(servers, dns_server, port)
    submit(s, ["ok@out.test"], message("recent-1"))   # 451 at the first DATA end, then delivered
    assert mta.wait_transactions(1, TIMEOUT), s.log_text()[-3000:]
    submit(s, ["gone@out.test"], message("recent-2"))  # refused for good: a report to demo, locally
    submit(s, [SENDER], message("recent-3"))           # delivered locally
    assert wait_for(lambda: s.queue() == [], TIMEOUT), s.log_text()[-3000:]
    assert wait_for(lambda: len(reports(s.dir, DOMAIN, "demo")) == 1, TIMEOUT)
    want = {"local": {"delivered": 2, "deferred": 0, "failed": 0},
            "remote": {"delivered": 1, "deferred": 1, "failed": 1}}
    st = status(s)["deliveries"]
    assert st == {"last_minute": want, "last_hour": want}, st
    # the same outcomes as the log's
    assert len(log_events(s, "deferred")) == 1 and len(log_events(s, "failed", rcpt="gone@out.test")) == 1
    assert len(log_events(s, "delivered")) == 3
    text = s.cli("status", "--no-dns").stdout
    assert "last minute: local 2 delivered, 0 deferred, 0 failed; remote 1 delivered, 1 deferred, 1 failed" in text
    assert "last hour:   local 2 delivered, 0 deferred, 0 failed; remote 1 delivered, 1 deferred, 1 failed" in text


def write_cert(cert_path, key_path, name, not_after):
    """A self-signed P-256 certificate for name, valid until not_after (a datetime, UTC)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_after - datetime.timedelta(days=30)).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name), x509.DNSName("alt." + name)]), False)
            .sign(key, hashes.SHA256()))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))


def served_cert(server):
    """The certificate the submissions listener presents, as DER (after a whole SMTP session)."""
    with smtplib.SMTP_SSL("127.0.0.1", server.submissions_port, context=ssl._create_unverified_context(),
                          timeout=10) as m:
        m.ehlo("client.test")
        return m.sock.getpeercert(binary_form=True)


def test_status_shows_the_certificate_served_until_a_reload(fresh_server):
    """Days to expiry of what the listeners present: a certificate replaced on disk shows only once
    the server has loaded it (SIGHUP), and an expired one has negative days."""
    s = fresh_server.start()
    on_disk = x509.load_pem_x509_certificate(open(s.cert, "rb").read())
    now = time.time()
    (c,) = status(s)["certificates"]
    assert c["config"] == "[tls] cert" and c["file"] == s.cert
    assert c["subject"] == HOST and c["names"] == [HOST] and c["issuer"] == HOST
    assert c["not_after"] == on_disk.not_valid_after.strftime("%Y-%m-%dT%H:%M:%SZ")
    left = on_disk.not_valid_after.replace(tzinfo=datetime.timezone.utc).timestamp() - now
    assert c["days_left"] == int(left // 86400) and c["days_left"] > 300 and c["expired"] is False
    assert "certificate: %s (%s), until %s, %d days left" % (HOST, HOST, c["not_after"], c["days_left"]) in \
        s.cli("status", "--no-dns").stdout
    # replaced on disk by one that expired three days ago (less an hour): not served yet, not shown
    expired_at = datetime.datetime.utcnow().replace(microsecond=0) - datetime.timedelta(days=3, hours=-1)
    write_cert(s.cert, os.path.join(s.dir, "tls", "key.pem"), "old.mailwerk.test", expired_at)
    assert status(s)["certificates"] == [c]
    assert served_cert(s) == on_disk.public_bytes(serialization.Encoding.DER)
    s.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: "event=reload result=ok" in s.log_text(), 10)
    (c,) = status(s)["certificates"]
    assert c["subject"] == "old.mailwerk.test" and c["names"] == ["old.mailwerk.test", "alt.old.mailwerk.test"]
    assert c["not_after"] == expired_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert c["days_left"] == -3 and c["expired"] is True
    assert served_cert(s) == x509.load_pem_x509_certificate(open(s.cert, "rb").read()).public_bytes(
        serialization.Encoding.DER)
    assert "certificate: old.mailwerk.test (old.mailwerk.test, alt.old.mailwerk.test), until %s, EXPIRED" % \
        c["not_after"] in s.cli("status", "--no-dns").stdout


def test_status_shows_the_free_space_in_data_dir(fresh_server):
    """statvfs(2) of data_dir: what the server may still write and the file system's size, and
    whether that is below [server] min_free_space, where new mail is refused (452 4.3.1)."""
    s = fresh_server.start()
    d = status(s)["disk"]
    v = os.statvfs(s.dir)
    assert d["path"] == s.dir and d["total_bytes"] == v.f_blocks * v.f_frsize
    assert abs(d["free_bytes"] - v.f_bavail * v.f_frsize) < 256 << 20  # others write meanwhile
    assert d["min_free_space"] == 100 << 20 and d["below_min_free_space"] is False
    assert "error" not in d
    assert re.search(r"^disk: +[0-9.]+ [KMGTP]iB free of [0-9.]+ [KMGTP]iB in %s \(min_free_space 100\.0 MiB\)$"
                     % re.escape(s.dir), s.cli("status", "--no-dns").stdout, re.M)
    # more than the file system holds: below it, and SMTP says so too
    s.stop()
    s.overrides.append("server.min_free_space=1000000G")
    s.start()
    d = status(s)["disk"]
    assert d["min_free_space"] == 1000000 << 30 and d["below_min_free_space"] is True
    assert ", BELOW min_free_space 976.6 TiB: new mail is refused" in s.cli("status", "--no-dns").stdout
    with smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=10) as m:
        m.ehlo("client.test")
        assert m.mail("a@example.org")[0] == 452


def keygen(server, domain, selector, algorithm="rsa"):
    """`dkim keygen`; returns the zone-file line of its TXT record."""
    out = server.cli("dkim", "keygen", "--domain", domain, "--selector", selector, "--algorithm", algorithm).stdout
    (line,) = [l for l in out.splitlines() if l.strip() and not l.startswith(";")]
    return line


def test_status_checks_the_dkim_keys_in_dns(dns_server, fresh_server):
    """Every active key of every local domain against its SELECTOR._domainkey record, as
    `dkim list` compares them: match, missing, mismatch, or error when the lookup fails; inactive
    keys and the keys of domains that are not local are not shown. --no-dns asks nothing."""
    s = fresh_server
    (mine,) = [l.split()[1] for l in s.cli("dkim", "list", "--no-dns").stdout.splitlines()]  # made by init
    for d in ("second.test", "broken.test"):
        s.cli("domain", "add", d)
    dns_server.load(keygen(s, DOMAIN, "spare"))                      # inactive (the second RSA key)
    keygen(s, "second.test", "absent")                               # never published
    keygen(s, "second.test", "swapped", "ed25519")
    dns_server.load(keygen(s, "second.test", "other", "ed25519").replace("other._domainkey", "swapped._domainkey"))
    keygen(s, "broken.test", "k1")
    keygen(s, "notlocal.test", "n1")                                 # a key for a domain not served
    dns_server.servfail("k1._domainkey.broken.test")
    s.start()
    # the key init made is published with its record, as `dns records` prints it
    (rec,) = [l for l in s.cli("dns", "records", "--domain", DOMAIN).stdout.splitlines()
              if l.startswith("%s._domainkey." % mine)]
    dns_server.load(rec)
    p = s.cli("status", "--json", "--resolver", dns_server.resolver)
    dk = json.loads(p.stdout)["dkim"]
    assert dk["more"] is False and "error" not in dk
    got = [(k["domain"], k["selector"], k["algorithm"], k["bits"], k["dns"]) for k in dk["keys"]]
    assert got == [
        ("broken.test", "k1", "rsa", 2048, "error"),
        (DOMAIN, mine, "rsa", 2048, "match"),
        ("second.test", "absent", "rsa", 2048, "missing"),
        ("second.test", "swapped", "ed25519", 256, "mismatch"),
    ], got
    notes = {k["selector"]: k["dns_note"] for k in dk["keys"]}
    assert notes[mine] is None and notes["absent"] is None and notes["swapped"] is None
    assert notes["k1"], notes
    text = s.cli("status", "--resolver", dns_server.resolver).stdout
    assert "dkim:        broken.test k1 rsa 2048: dns error (" in text, text
    assert "\n             %s %s rsa 2048: dns match\n" % (DOMAIN, mine) in text, text
    assert "\n             second.test absent rsa 2048: dns missing\n" in text
    assert "\n             second.test swapped ed25519 256: dns mismatch\n" in text
    # --no-dns: listed, not looked up
    asked = len(dns_server.asked())
    dk = json.loads(s.cli("status", "--json", "--no-dns").stdout)["dkim"]
    assert [(k["selector"], k["dns"], k["dns_note"]) for k in dk["keys"]] == [
        ("k1", None, None), (mine, None, None), ("absent", None, None), ("swapped", None, None)]
    assert "second.test absent rsa 2048: dns not checked" in s.cli("status", "--no-dns").stdout
    assert len(dns_server.asked()) == asked
    # the record fixed, and a key activated: seen at the next status, no restart needed
    dns_server.load(keygen(s, "second.test", "fixed"))
    s.cli("dkim", "activate", "--domain", "second.test", "--selector", "fixed")
    dk = json.loads(s.cli("status", "--json", "--resolver", dns_server.resolver).stdout)["dkim"]
    assert [(k["selector"], k["dns"]) for k in dk["keys"] if k["domain"] == "second.test"] == [
        ("fixed", "match"), ("swapped", "mismatch")]


def test_status_lists_dkim_keys_within_bounds(fresh_server):
    """More keys than fit in the answer (a record of at most 64 KiB with the rest): those that fit,
    in order, and more=true."""
    s = fresh_server
    keygen(s, "model.test", "m1", "ed25519")
    model = os.path.join(s.dir, "dkim", "model.test")
    domains = ["d%02d.%s.%s.test" % (i, "a" * 60, "b" * 60) for i in range(12)]
    selectors = ["s%d%s" % (i, "x" * 61) for i in range(8)]  # 63 octets, the most a selector may have
    for d in domains:
        s.cli("domain", "add", d)
        os.makedirs(os.path.join(s.dir, "dkim", d))
        for sel in selectors:
            for ext in ("pem", "pub"):
                with open(os.path.join(model, "m1." + ext), "rb") as src, \
                        open(os.path.join(s.dir, "dkim", d, sel + "." + ext), "wb") as dst:
                    dst.write(src.read())
        with open(os.path.join(s.dir, "dkim", d, "active"), "w") as f:
            f.write("".join(sel + "\n" for sel in selectors))
    s.start()
    p = s.cli("status", "--json", "--no-dns")
    dk = json.loads(p.stdout)["dkim"]
    assert dk["more"] is True
    listed = [(k["domain"], k["selector"]) for k in dk["keys"]]
    assert 40 < len(listed) < 12 * 8
    # by domain then selector; these domains sort before mailwerk.test, whose key is left out
    assert listed == sorted((d, sel) for d in domains for sel in selectors)[:len(listed)], listed[:3]
    assert "... more keys, not listed (mailwerk dkim list shows them all)" in s.cli("status", "--no-dns").stdout


def test_status_without_a_server(tmp_path):
    s = Server(tmp_path)
    p = s.cli("status", check=False)
    assert p.returncode == 3 and p.stdout == ""
    assert "not running" in p.stderr and p.stderr.count("\n") == 1
    assert s.cli("status", "--json", check=False).returncode == 3
    # a socket left behind by a killed server, which no one listens on, is "not running" too
    s.start()
    s.kill()
    assert os.path.exists(sock_path(s))
    assert s.cli("status", check=False).returncode == 3


def test_socket_mode_stale_socket_and_clean_stop(fresh_server):
    s = fresh_server.start()
    st = os.lstat(sock_path(s))
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == os.stat("/proc/%d" % s.worker_pid()).st_uid  # the server user's
    s.kill()
    assert os.path.exists(sock_path(s))  # stale: replaced at the next start
    s.start()
    assert "event=control_stale_removed" in s.log_text()
    assert status(s)["pid"] == s.worker_pid()
    s.stop()
    assert not os.path.exists(sock_path(s))


# ---- hostile input ----

def test_hostile_records_get_an_error_or_a_close(fresh_server):
    s = fresh_server.start()
    qid20 = b"01HZX3K9QF7M2N4P6R8T"
    cases = [
        b"garbage",                                         # shorter than a header
        HEADER.pack(REQ_STATUS, 0, 0),                      # no request id
        HEADER.pack(REQ_STATUS, 20, 5) + b"short",          # half a record: the header promises more
        HEADER.pack(99, 0, 5),                              # no such request
        HEADER.pack(REPLY_OK, 2, 5) + b"{}",                # a reply is no request
        HEADER.pack(2, 3, 5) + b"../",                      # hold of something that is no queue id
        HEADER.pack(4, 1, 5) + b"*",                        # bounce of every message
        HEADER.pack(2, 70000, 5) + b"A" * 70000,            # over every limit
        HEADER.pack(2, 200, 5) + b"A" * 200,                # over the request limit
        b"\x00" * 16,
    ]
    for rec in cases:
        c = control_socket(s)
        try:
            c.send(rec)
        except OSError:  # refused by the kernel as too large for the socket: fine as well
            c.close()
            continue
        got = answer(c)
        assert got is None or got[0] == REPLY_ERROR, (rec[:40], got)
        if got is not None:
            assert got[2] and all(32 <= b <= 126 for b in got[2]), got
        assert closed(c), rec[:40]
        c.close()
    # a well-formed request still gets its answer, with its id; twice on one connection
    c = control_socket(s)
    for rid in (7, 8):
        c.send(HEADER.pack(REQ_STATUS, 0, rid))
        t, got_id, body = answer(c)
        assert t == REPLY_OK and got_id == rid and json.loads(body)["pid"] == s.worker_pid()
    # a hold of an id not in the queue: an error sentence, the connection stays usable
    c2 = control_socket(s)
    c2.send(HEADER.pack(2, len(qid20), 9) + qid20)
    t, rid, body = answer(c2)
    assert t == REPLY_ERROR and rid == 9 and b"no message" in body
    c2.close()
    c.close()
    # more connections than allowed at once: the extra one is refused, the others keep working
    time.sleep(0.3)  # the closes above are seen first
    held = [control_socket(s) for _ in range(8)]
    extra = control_socket(s)
    got = answer(extra)
    assert got is not None and got[0] == REPLY_ERROR and b"too many" in got[2]
    extra.close()
    for h in held:
        h.close()
    assert wait_for(lambda: s.cli("status", "--no-dns", check=False).returncode == 0, 10)
    # the server kept serving: mail is still accepted, and the worker never died
    with smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=10) as m:
        m.ehlo("client.test")
        m.sendmail("a@example.org", [SENDER], b"Subject: still here\r\n\r\nx\r\n")
    assert "event=worker_died" not in s.log_text()


# ---- hold, release, bounce ----

def deferred_once(server, rcpt):
    assert wait_for(lambda: log_events(server, "deferred", rcpt=rcpt), TIMEOUT), server.log_text()[-3000:]


def held(server, qid):
    return {e["id"]: e.get("held") for e in server.queue()}.get(qid)


def test_hold_keeps_remote_mail_until_release_and_across_a_restart(dns_server, mtas, servers):
    port = free_port_on("127.0.0.2")
    dns_server.load({"held.test": {"MX": "10 mx.held.test."}, "mx.held.test": {"A": "127.0.0.2"}})
    s = start_sender(servers, dns_server, port)
    qid = submit(s, ["bob@held.test"], message("held-1"))
    deferred_once(s, "bob@held.test")  # no MTA yet: the connection is refused, retried every second
    p = s.cli("queue", "hold", qid)
    assert p.returncode == 0 and "held %s" % qid in p.stdout and "running server" in p.stdout
    assert held(s, qid) is True
    assert "held" in s.cli("queue", "list").stdout.splitlines()[1]
    assert "held:        yes" in s.cli("queue", "show", qid).stdout
    st = status(s)["queue"]
    assert st["messages"] == 1 and st["held"] == 1 and st["recipients_due"] == 0
    mta = mtas.start("127.0.0.2", port)
    assert holds_for(lambda: mta.transactions == [], 3.0), "delivered while held"
    # held across a restart
    s.stop()
    s.start()
    assert held(s, qid) is True
    assert holds_for(lambda: mta.transactions == [], 2.5), "delivered after a restart while held"
    p = s.cli("queue", "release", qid)
    assert p.returncode == 0 and "released %s" % qid in p.stdout
    txs = mta.wait_transactions(1, TIMEOUT)
    assert txs and txs[0].rcpts == ["bob@held.test"], s.log_text()[-3000:]
    assert wait_for(lambda: s.queue() == [], TIMEOUT)


def test_hold_all_and_release_all(dns_server, mtas, servers):
    port = free_port_on("127.0.0.2")
    dns_server.load({"many.test": {"MX": "10 mx.many.test."}, "mx.many.test": {"A": "127.0.0.2"}})
    s = start_sender(servers, dns_server, port)
    ids = [submit(s, ["r%d@many.test" % i], message("many-%d" % i)) for i in range(3)]
    for i in range(3):
        deferred_once(s, "r%d@many.test" % i)
    p = s.cli("queue", "hold", "--all")
    assert p.returncode == 0 and "held 3 messages" in p.stdout
    assert all(held(s, q) for q in ids)
    mta = mtas.start("127.0.0.2", port)
    assert holds_for(lambda: mta.transactions == [], 2.5)
    assert "released 3 messages" in s.cli("queue", "release", "--all").stdout
    assert len(mta.wait_transactions(3, TIMEOUT)) == 3
    assert s.cli("queue", "bounce", "--all", check=False).returncode == 2
    assert s.cli("queue", "hold", check=False).returncode == 2


def check_operator_dsn(s, qid, rcpt):
    dsns = wait_for(lambda: reports(s.dir, DOMAIN, "demo"), TIMEOUT)
    assert len(dsns) == 1, s.log_text()[-4000:]
    dsn = dsns[0]
    assert dsn.get_param("report-type") == "delivery-status"
    assert [a.addr_spec for a in dsn["To"].addresses] == [SENDER]
    _, per_rcpt = report_parts(dsn)
    assert [(r["Final-Recipient"], r["Action"], r["Status"]) for r in per_rcpt] == [
        ("rfc822; " + rcpt, "failed", "5.0.0")]
    assert "bounced by the operator" in str(per_rcpt[0]["Diagnostic-Code"])
    assert wait_for(lambda: qid not in {e["id"] for e in s.queue()}, TIMEOUT)


def test_bounce_sends_a_dsn_and_removes_the_message(dns_server, servers):
    port = free_port_on("127.0.0.2")
    dns_server.load({"gone.test": {"MX": "10 mx.gone.test."}, "mx.gone.test": {"A": "127.0.0.2"}})
    s = start_sender(servers, dns_server, port)
    qid = submit(s, ["bob@gone.test"], message("gone-1"))
    deferred_once(s, "bob@gone.test")
    p = s.cli("queue", "bounce", qid)
    assert p.returncode == 0 and "bounced %s: 1 recipient failed" % qid in p.stdout
    check_operator_dsn(s, qid, "bob@gone.test")
    assert log_events(s, "bounced_by_operator", queue_id=qid)
    p = s.cli("queue", "bounce", qid, check=False)
    assert p.returncode == 1 and "no message" in p.stderr


def test_commands_with_the_server_stopped(dns_server, mtas, servers):
    port = free_port_on("127.0.0.2")
    dns_server.load({"off.test": {"MX": "10 mx.off.test."}, "mx.off.test": {"A": "127.0.0.2"}})
    s = start_sender(servers, dns_server, port)
    keep = submit(s, ["keep@off.test"], message("off-1"))
    gone = submit(s, ["gone@off.test"], message("off-2"))
    deferred_once(s, "keep@off.test")
    deferred_once(s, "gone@off.test")
    s.stop()
    assert not os.path.exists(sock_path(s))
    p = s.cli("queue", "hold", keep)
    assert p.returncode == 0 and "held %s" % keep in p.stdout and "running server" not in p.stdout
    assert held(s, keep) is True and held(s, gone) is False
    p = s.cli("queue", "bounce", gone)
    assert p.returncode == 0 and "1 recipient failed" in p.stdout
    assert gone not in {e["id"] for e in s.queue()}
    assert s.cli("queue", "hold", "01HZX3K9QF7M2N4P6R8T", check=False).returncode == 1
    mta = mtas.start("127.0.0.2", port)
    s.start()
    check_operator_dsn(s, gone, "gone@off.test")  # the report queued offline is delivered locally
    assert holds_for(lambda: mta.transactions == [], 2.5), "held mail was delivered"
    s.stop()
    assert "released %s" % keep in s.cli("queue", "release", keep).stdout
    s.start()
    txs = mta.wait_transactions(1, TIMEOUT)
    assert txs and txs[0].rcpts == ["keep@off.test"]


# ---- bounce while a delivery attempt is under way ----

def test_bounce_during_an_attempt_is_refused_and_the_attempt_decides(dns_server, mtas, servers):
    """The receiver has the whole message and has not answered the final dot: whether it is
    delivered is not known yet, so a bounce now could report as failed a message that arrives.
    `queue bounce` refuses, saying so; the attempt's answer is the one outcome."""
    port = free_port_on("127.0.0.2")
    dns_server.load({"busy.test": {"MX": "10 mx.busy.test."}, "mx.busy.test": {"A": "127.0.0.2"}})
    mta = mtas.start("127.0.0.2", port, stall=1)
    s = start_sender(servers, dns_server, port)
    qid = submit(s, ["bob@busy.test"], message("busy-1"))
    assert mta.wait_stalled(TIMEOUT) is not None, s.log_text()[-3000:]
    p = s.cli("queue", "bounce", qid, check=False)
    assert p.returncode == 1 and p.stdout == "", (p.returncode, p.stdout, p.stderr)
    assert "%s is being delivered" % qid in p.stderr and "not bounced" in p.stderr, p.stderr
    assert p.stderr.count("\n") == 1
    assert [e["id"] for e in s.queue()] == [qid]  # nothing changed meanwhile
    mta.release()
    assert len(mta.wait_transactions(1, TIMEOUT)) == 1
    assert wait_for(lambda: s.queue() == [], TIMEOUT), s.log_text()[-3000:]
    assert log_events(s, "delivered", queue_id=qid, rcpt="bob@busy.test")
    # delivered once, and no report says otherwise
    assert holds_for(lambda: reports(s.dir, DOMAIN, "demo") == [], 2.0), "a DSN for a delivered message"
    assert not log_events(s, "bounced_by_operator")
    assert len(mta.transactions) == 1
    p = s.cli("queue", "bounce", qid, check=False)
    assert p.returncode == 1 and "no message" in p.stderr


def test_hold_during_an_attempt_then_bounce_once_it_has_deferred(dns_server, mtas, servers):
    """The operator's way to bounce a message that is being delivered: hold it (the attempt under
    way finishes, no new one starts), then bounce it once the attempt has ended. One outcome: a
    report, no delivery."""
    port = free_port_on("127.0.0.2")
    dns_server.load({"slow.test": {"MX": "10 mx.slow.test."}, "mx.slow.test": {"A": "127.0.0.2"}})
    mta = mtas.start("127.0.0.2", port, stall=1, data_replies=["451 4.3.0 try again later"])
    s = start_sender(servers, dns_server, port)
    qid = submit(s, ["carol@slow.test"], message("slow-1"))
    assert mta.wait_stalled(TIMEOUT) is not None, s.log_text()[-3000:]
    assert "held %s" % qid in s.cli("queue", "hold", qid).stdout
    p = s.cli("queue", "bounce", qid, check=False)
    assert p.returncode == 1 and "being delivered" in p.stderr, p.stderr
    mta.release()
    deferred_once(s, "carol@slow.test")
    p = s.cli("queue", "bounce", qid)
    assert p.returncode == 0 and "bounced %s: 1 recipient failed" % qid in p.stdout, p.stdout
    check_operator_dsn(s, qid, "carol@slow.test")
    assert mta.accepted() == [] and len(mta.transactions) == 1
    assert holds_for(lambda: len(mta.transactions) == 1, 2.0), "delivered after the bounce"
