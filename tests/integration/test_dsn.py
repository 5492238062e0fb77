"""Delivery status notifications on the wire (RFC 3461) and REQUIRETLS on receipt (RFC 8689 §4.1),
with real clients: smtplib sends NOTIFY/ORCPT on RCPT and RET/ENVID/REQUIRETLS on MAIL; the
parameters are seen in the queue (`queue list --json`), in the DSNs mailwerk sends back (parsed by
Python's email package), on the wire to a receiver that offers DSN (Postfix, which then reports
success itself) and not to one that does not (aiosmtpd, which refuses unknown parameters), where
mailwerk sends the "relayed" report itself."""
import hashlib
import os
import re
import smtplib

from conftest import DOMAIN
from dnsfixture import dns_server  # noqa: F401 (a fixture)
from mtafixture import (delivered, free_port_on, holds_for, log_events, maildir, message, mtas,  # noqa: F401
                        mx_records, report_parts, reports, start_sender, wait_for, wait_queue_empty)
from postfixfixture import postfix  # noqa: F401 (a fixture)
from smtpwire import Raw, insecure_context

SENDER = "demo@" + DOMAIN
TIMEOUT = 20.0
QUEUED = re.compile(rb"queued as ([0-9A-Z]{20})")


def send(server, rcpts, body, mail_options=(), rcpt_options=None, sender=SENDER, login=True):
    """Sends one message with smtplib: authenticated on submissions (implicit TLS), or without
    authentication on the MX listener. rcpt_options maps a recipient to its RCPT parameters.
    Returns the queue id."""
    if login:
        m = smtplib.SMTP_SSL(server.host("submissions"), server.submissions_port, context=insecure_context(),
                             timeout=30)
    else:
        m = smtplib.SMTP(server.host("smtp"), server.smtp_port, timeout=30)
    with m:
        m.ehlo("client.test")
        assert "dsn" in m.esmtp_features
        if login:
            m.login(server.user, server.password)
        code, reply = m.mail(sender, list(mail_options))
        assert code == 250, (code, reply)
        for r in rcpts:
            code, reply = m.rcpt(r, list((rcpt_options or {}).get(r, ())))
            assert code == 250, (r, code, reply)
        code, reply = m.data(body)
        assert code == 250, (code, reply)
        return QUEUED.search(reply).group(1).decode()


def held_server(servers):
    """A server that keeps everything queued ([delivery] hold), to look at what was stored."""
    return servers.make("held", {"delivery.hold": "yes"}).start()


def dsn_parts(dsn):
    """The three parts of an RFC 6522 report: text, delivery-status, returned message or headers."""
    assert dsn.get_content_type() == "multipart/report", dsn.as_string()[:2000]
    assert dsn.get_param("report-type") == "delivery-status"
    parts = list(dsn.iter_parts())
    assert len(parts) == 3, [p.get_content_type() for p in parts]
    return parts


# ---- receiving: EHLO, syntax, what is stored ----

def test_ehlo_offers_dsn_and_requiretls_only_over_tls(servers):
    s = held_server(servers)
    with smtplib.SMTP(s.host("smtp"), s.smtp_port, timeout=30) as m:
        m.ehlo("client.test")
        assert "dsn" in m.esmtp_features
        assert "requiretls" not in m.esmtp_features  # RFC 8689 §2: not in clear
        code, text = m.docmd("MAIL FROM:<a@example.org> REQUIRETLS")
        assert (code, text[:6]) == (530, b"5.7.10"), (code, text)
        m.starttls(context=insecure_context())
        m.ehlo("client.test")
        assert "requiretls" in m.esmtp_features and "dsn" in m.esmtp_features
        code, _ = m.mail("a@example.org", ["REQUIRETLS"])
        assert code == 250
        assert m.rcpt(SENDER)[0] == 250
        code, reply = m.data(message("requiretls-1"))
        assert code == 250
        qid_tls = QUEUED.search(reply).group(1).decode()
        # the same session, a message without it
        assert m.mail("a@example.org")[0] == 250
        assert m.rcpt(SENDER)[0] == 250
        code, reply = m.data(message("plain-1"))
        qid_plain = QUEUED.search(reply).group(1).decode()
    # implicit TLS (RFC 8314) offers it from the start
    with smtplib.SMTP_SSL(s.host("submissions"), s.submissions_port, context=insecure_context(), timeout=30) as m:
        m.ehlo("client.test")
        assert "requiretls" in m.esmtp_features
    queued = {e["id"]: e for e in s.queue()}
    assert queued[qid_tls]["requiretls"] is True, queued[qid_tls]
    assert queued[qid_plain]["requiretls"] is False
    assert queued[qid_tls]["tls_required_no"] is False


def test_tls_required_no_counts_from_authenticated_senders_only(servers):
    s = held_server(servers)
    body = message("tls-no-1", b"TLS-Required: No\r\n")
    qid_auth = send(s, ["bob@remote.test"], body)
    qid_anon = send(s, [SENDER], message("tls-no-2", b"TLS-Required:  no \r\n"), sender="x@example.org", login=False)
    qid_req = send(s, ["bob@remote.test"], message("tls-no-3", b"TLS-Required: No\r\n"), mail_options=["REQUIRETLS"])
    queued = {e["id"]: e for e in s.queue()}
    assert queued[qid_auth]["tls_required_no"] is True
    assert queued[qid_anon]["tls_required_no"] is False  # a stranger cannot relax our TLS policy
    # RFC 8689: with REQUIRETLS in the same message, the relaxation does not apply
    assert (queued[qid_req]["requiretls"], queued[qid_req]["tls_required_no"]) == (True, False)


def test_dsn_parameters_are_stored(servers):
    s = held_server(servers)
    qid = send(s, ["bob@remote.test", "carol@remote.test", SENDER],
               message("stored-1"), mail_options=["RET=HDRS", "ENVID=env+2B1+3Dx"],
               rcpt_options={"bob@remote.test": ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;orig+2Bbob@example.org"],
                             SENDER: ["NOTIFY=NEVER"]})
    other = send(s, [SENDER], message("stored-2"), mail_options=["RET=FULL"])
    queued = {e["id"]: e for e in s.queue()}
    e = queued[qid]
    assert (e["ret"], e["envid"]) == ("HDRS", "env+1=x")
    rc = {r["address"]: r for r in e["recipients"]}
    assert (rc["bob@remote.test"]["notify"], rc["bob@remote.test"]["orcpt"]) == ("SUCCESS,FAILURE",
                                                                                 "rfc822;orig+bob@example.org")
    assert (rc["carol@remote.test"]["notify"], rc["carol@remote.test"]["orcpt"]) == (None, None)
    assert rc[SENDER]["notify"] == "NEVER"
    assert (queued[other]["ret"], queued[other]["envid"]) == ("FULL", None)
    assert all(r["notify"] is None for r in queued[other]["recipients"])


def test_dsn_parameter_syntax(server):
    w = Raw(server.smtp_port)
    assert w.reply()[0] == 220
    assert w.cmd("EHLO client.example")[0] == 250
    for cmd, want in [
        ("MAIL FROM:<a@example.org> RET=FULL RET=HDRS", 501),  # RFC 3461 §4: once each
        ("MAIL FROM:<a@example.org> RET=BODY", 501),
        ("MAIL FROM:<a@example.org> ENVID=" + "x" * 101, 501),  # §4.4: 100 at most
        ("MAIL FROM:<a@example.org> ENVID=a+0D+0ABcc:+20evil@example.org", 501),  # no CRLF by xtext
        ("MAIL FROM:<a@example.org> NOTIFY=NEVER", 555),  # a RCPT parameter
    ]:
        code, text = w.cmd(cmd)
        assert code == want, (cmd, code, text)
        assert text[0][4:9] == "5.5.4", text
    w.cmd("QUIT")
    w.close()
    # a session of its own: the errors above count towards [smtp] max_errors
    w = Raw(server.smtp_port)
    assert w.reply()[0] == 220
    assert w.cmd("EHLO client.example")[0] == 250
    assert w.cmd("MAIL FROM:<a@example.org> RET=HDRS ENVID=" + "e" * 100)[0] == 250
    for cmd, want in [
        ("RCPT TO:<%s> NOTIFY=NEVER,SUCCESS" % SENDER, 501),  # §4.1: NEVER alone
        ("RCPT TO:<%s> NOTIFY=SUCCESS NOTIFY=FAILURE" % SENDER, 501),
        ("RCPT TO:<%s> NOTIFY=SOMETIMES" % SENDER, 501),
        ("RCPT TO:<%s> ORCPT=noseparator" % SENDER, 501),
        ("RCPT TO:<%s> ORCPT=rfc822;%s" % (SENDER, "x" * 494), 501),  # §4.2: 500 at most
        ("RCPT TO:<%s> RET=FULL" % SENDER, 555),
    ]:
        code, text = w.cmd(cmd)
        assert code == want, (cmd, code, text)
    # a RCPT line past 512 octets is fine with ORCPT (RFC 3461 §4); other commands keep 512
    long_orcpt = "rfc822;" + "o" * 480 + "@example.org"
    line = "RCPT TO:<%s> NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=%s" % (SENDER, long_orcpt)
    assert len(line) + 2 > 512
    assert w.cmd(line)[0] == 250
    assert w.cmd("NOOP " + "n" * 600)[0] == 500
    w.cmd("QUIT")
    w.close()


# ---- reports ----

def test_success_dsn_after_local_delivery(servers):
    s = servers.make("local").start()
    qid = send(s, [SENDER], message("success-local-1"), mail_options=["RET=FULL", "ENVID=QQ314159"],
               rcpt_options={SENDER: ["NOTIFY=SUCCESS", "ORCPT=rfc822;Demo+2Bold@example.org"]})
    dsns = wait_for(lambda: reports(s.dir, DOMAIN, "demo"), TIMEOUT)
    assert len(dsns) == 1, s.log_text()[-3000:]
    dsn = dsns[0]
    assert dsn["Subject"] == "Successful Mail Delivery Report"
    assert [a.addr_spec for a in dsn["To"].addresses] == [SENDER]
    text, status, returned = dsn_parts(dsn)
    per_message, per_rcpt = report_parts(dsn)
    assert per_message["Original-Envelope-Id"] == "QQ314159"  # RFC 3464 §2.2.1
    assert per_message["X-Mailwerk-Queue-ID"] == qid
    assert len(per_rcpt) == 1
    r = per_rcpt[0]
    assert r["Action"] == "delivered"  # RFC 3461 §5.2.3
    assert r["Status"] == "2.0.0"
    assert r["Original-Recipient"] == "rfc822; Demo+old@example.org"  # RFC 3464 §2.3.1, decoded
    assert r["Final-Recipient"] == "rfc822; " + SENDER
    # RFC 3461 §4.3: RET=FULL is for failures; a success report returns the header section
    assert returned.get_content_type() == "text/rfc822-headers"
    assert "Subject: success-local-1" in returned.get_content()
    assert "body of success-local-1" not in dsn.as_string()
    assert len(log_events(s, "success_dsn", queue_id=qid)) == 1


def test_no_success_dsn_without_notify_success(servers):
    s = servers.make("local").start()
    qid = send(s, [SENDER], message("plain-local-1"), rcpt_options={SENDER: ["NOTIFY=FAILURE,DELAY"]})
    assert wait_for(lambda: any(b"plain-local-1" in m for m in maildir(s.dir, DOMAIN, "demo")), TIMEOUT)
    assert holds_for(lambda: reports(s.dir, DOMAIN, "demo") == [], 1.5), "a success DSN nobody asked for"
    assert log_events(s, "success_dsn", queue_id=qid) == []


def test_failure_reports_follow_notify_and_ret(dns_server, mtas, servers):
    port = free_port_on("127.0.0.2")
    mx_records(dns_server, "fail.test", (10, "mx.fail.test", "127.0.0.2"))
    refusal = "550 5.1.1 no such user here"
    mtas.start("127.0.0.2", port, rcpt_replies={a: refusal for a in
                                                ("never@fail.test", "onlysuccess@fail.test", "plain@fail.test",
                                                 "full@fail.test")})
    s = start_sender(servers, dns_server, port)
    qid = send(s, ["never@fail.test", "onlysuccess@fail.test", "plain@fail.test"], message("fail-1"),
               mail_options=["RET=HDRS", "ENVID=fail-env"],
               rcpt_options={"never@fail.test": ["NOTIFY=NEVER"],
                             "onlysuccess@fail.test": ["NOTIFY=SUCCESS", "ORCPT=rfc822;x@example.org"],
                             "plain@fail.test": ["ORCPT=rfc822;plain+2Borig@example.org"]})
    full = send(s, ["full@fail.test"], message("fail-2"), mail_options=["RET=FULL"])
    dsns = wait_for(lambda: len(reports(s.dir, DOMAIN, "demo")) >= 2 and reports(s.dir, DOMAIN, "demo"), TIMEOUT)
    assert dsns and len(dsns) == 2, s.log_text()[-4000:]
    by_qid = {report_parts(d)[0]["X-Mailwerk-Queue-ID"]: d for d in dsns}
    # NEVER and a NOTIFY without FAILURE: not in the report (RFC 3461 §4.1); the recipient without
    # NOTIFY is, as before
    dsn = by_qid[qid]
    per_message, per_rcpt = report_parts(dsn)
    assert [(r["Final-Recipient"], r["Action"]) for r in per_rcpt] == [("rfc822; plain@fail.test", "failed")]
    assert per_rcpt[0]["Original-Recipient"] == "rfc822; plain+orig@example.org"
    assert per_message["Original-Envelope-Id"] == "fail-env"
    _, _, returned = dsn_parts(dsn)
    assert returned.get_content_type() == "text/rfc822-headers"  # RET=HDRS
    assert "body of fail-1" not in dsn.as_string()
    # RET=FULL: the whole message comes back
    _, _, returned = dsn_parts(by_qid[full])
    assert returned.get_content_type() == "message/rfc822"
    inner = returned.get_content()
    assert inner["Subject"] == "fail-2"
    assert "body of fail-2" in inner.get_content()
    # all four failed for good, reported or not
    wait_queue_empty(s)
    assert {e["rcpt"] for e in log_events(s, "failed")} >= {"never@fail.test", "onlysuccess@fail.test",
                                                           "plain@fail.test", "full@fail.test"}


def test_delay_warning_only_for_notify_delay(dns_server, mtas, servers):
    port = free_port_on("127.0.0.2")
    mx_records(dns_server, "slow.test", (10, "mx.slow.test", "127.0.0.2"))
    busy = "450 4.2.1 mailbox busy"
    mtas.start("127.0.0.2", port, rcpt_replies={"a@slow.test": busy, "b@slow.test": busy, "c@slow.test": busy})
    s = start_sender(servers, dns_server, port, **{"delivery.delay_warning_time": "2s"})
    send(s, ["a@slow.test", "b@slow.test", "c@slow.test"], message("slow-1"),
         rcpt_options={"a@slow.test": ["NOTIFY=FAILURE"], "b@slow.test": ["NOTIFY=DELAY"]})
    warnings = wait_for(lambda: reports(s.dir, DOMAIN, "demo"), TIMEOUT)
    assert warnings and len(warnings) == 1, s.log_text()[-3000:]
    _, per_rcpt = report_parts(warnings[0])
    assert sorted((str(r["Final-Recipient"]), str(r["Action"])) for r in per_rcpt) == [
        ("rfc822; b@slow.test", "delayed"), ("rfc822; c@slow.test", "delayed")]


def test_relayed_dsn_when_the_receiver_has_no_dsn(dns_server, mtas, servers):
    port = free_port_on("127.0.0.2")
    mx_records(dns_server, "nodsn.test", (10, "mx.nodsn.test", "127.0.0.2"))
    # aiosmtpd offers no DSN and answers 555 to a parameter it does not know: the transaction
    # getting through shows that none was sent
    mta = mtas.start("127.0.0.2", port)
    s = start_sender(servers, dns_server, port)
    qid = send(s, ["bob@nodsn.test", "carol@nodsn.test"], message("relay-1"), mail_options=["ENVID=relay-env"],
               rcpt_options={"bob@nodsn.test": ["NOTIFY=SUCCESS", "ORCPT=rfc822;bob+40old@example.org"]})
    tx = mta.wait_transactions(1, TIMEOUT)
    assert tx and tx[0].rcpts == ["bob@nodsn.test", "carol@nodsn.test"], s.log_text()[-3000:]
    delivered(s, "bob@nodsn.test")
    dsns = wait_for(lambda: reports(s.dir, DOMAIN, "demo"), TIMEOUT)
    assert dsns and len(dsns) == 1, s.log_text()[-3000:]
    per_message, per_rcpt = report_parts(dsns[0])
    assert per_message["Original-Envelope-Id"] == "relay-env"
    assert len(per_rcpt) == 1  # carol asked for nothing
    r = per_rcpt[0]
    # RFC 3461 §5.2.2: relayed to a server without DSN, so we report it, as "relayed"
    assert (r["Final-Recipient"], r["Action"], r["Status"]) == ("rfc822; bob@nodsn.test", "relayed", "2.0.0")
    assert r["Original-Recipient"] == "rfc822; bob@old@example.org"
    assert str(r["Remote-MTA"]) == "dns; mx.nodsn.test"
    assert str(r["Diagnostic-Code"]).startswith("smtp; 250")
    assert dsns[0]["Subject"] == "Successful Mail Delivery Report"
    assert len(log_events(s, "success_dsn", queue_id=qid)) == 1


def test_postfix_gets_the_parameters_and_reports_success_itself(dns_server, postfix, servers):
    """End to end with Postfix as the receiving peer: it offers DSN, so NOTIFY/ORCPT/RET/ENVID go on
    the wire (RFC 3461 §5.2.1) and the success report comes from Postfix, back to our return path,
    carrying our ENVID and ORCPT; mailwerk sends none of its own."""
    port = free_port_on("127.0.0.7")
    mx_records(dns_server, "pf.test", (10, "mx.pf.test", "127.0.0.7"))
    s = start_sender(servers, dns_server, port)
    pf = postfix.start("127.0.0.7", port, domains=["pf.test"], routes={DOMAIN: ("127.0.0.1", s.smtp_port)})
    qid = send(s, ["bob@pf.test", "carol@pf.test"], message("pf-1"), mail_options=["RET=HDRS", "ENVID=pf+2Benv"],
               rcpt_options={"bob@pf.test": ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;bob+2Borig@example.org"],
                             "carol@pf.test": ["NOTIFY=NEVER"]})
    delivered(s, "bob@pf.test")
    # what Postfix's smtpd received, from its log of the dialogue: the parameters as xtext again
    cmds = pf.received_commands()
    mail = [c for c in cmds if c.startswith("MAIL FROM:")]
    assert mail and mail[0].startswith("MAIL FROM:<%s>" % SENDER), cmds
    assert " RET=HDRS" in mail[0] and " ENVID=pf+2Benv" in mail[0], mail
    rcpt = [c for c in cmds if c.startswith("RCPT TO:")]
    assert "RCPT TO:<bob@pf.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob+2Borig@example.org" in rcpt, rcpt
    assert "RCPT TO:<carol@pf.test> NOTIFY=NEVER" in rcpt, rcpt
    # Postfix delivered both
    assert wait_for(lambda: len(pf.wait_log("status=sent", 0)) >= 2, TIMEOUT), pf.log_text()[-3000:]
    assert any("pf-1" in m.decode(errors="replace") for m in pf.maildir())
    # its success report ("sender delivery status notification") comes back to our return path
    assert pf.wait_log("sender delivery status notification"), pf.log_text()[-3000:]
    dsns = wait_for(lambda: reports(s.dir, DOMAIN, "demo"), TIMEOUT)
    assert dsns and len(dsns) == 1, (s.log_text()[-3000:], pf.log_text()[-3000:])
    dsn = dsns[0]
    per_message, per_rcpt = report_parts(dsn)
    assert str(per_message["Reporting-MTA"]) == "dns; pf.fixture.test"  # Postfix's, not ours
    assert per_message["Original-Envelope-Id"] == "pf+env"
    assert len(per_rcpt) == 1  # carol: NOTIFY=NEVER went on too
    r = per_rcpt[0]
    assert str(r["Action"]) == "delivered"
    # Postfix writes "rfc822;addr" without the space ours has; both are RFC 3464 §2.3.1
    assert re.sub(r";\s*", "; ", str(r["Original-Recipient"])) == "rfc822; bob+orig@example.org"
    assert re.sub(r";\s*", "; ", str(r["Final-Recipient"])) == "rfc822; bob@pf.test"
    # RET=HDRS went on: Postfix returned the header section only
    assert "Subject: pf-1" in dsn.as_string() and "body of pf-1" not in dsn.as_string()
    # and mailwerk sent no report of its own
    assert log_events(s, "success_dsn", queue_id=qid) == []


def test_mailwerk_to_mailwerk_passes_dsn_and_requiretls(dns_server, servers):
    """A second mailwerk as the receiving MTA offers DSN, and REQUIRETLS after STARTTLS: what the
    sender's client put on MAIL and RCPT is what the receiver stored."""
    port = free_port_on("127.0.0.4")
    rx = servers.make("receiver", {"server.hostname": "mx.remote.test", "delivery.hold": "yes"},
                      listen={"smtp": ("127.0.0.4", port)})
    rx.cli("domain", "add", "remote.test")
    rx.cli("user", "add", "bob@remote.test", "--password-stdin", input="bob-password\n")
    rx.start()
    mx_records(dns_server, "remote.test", (10, "mx.remote.test", "127.0.0.4"))
    # REQUIRETLS goes only to an authenticated host (RFC 8689 §4.2.1): here by DANE, the zone
    # signed and the receiver's key in a TLSA 3 1 1 record
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    with open(rx.cert, "rb") as f:
        spki = x509.load_pem_x509_certificate(f.read()).public_key().public_bytes(
            Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    dns_server.load({"_%d._tcp.mx.remote.test" % port: {"TLSA": "3 1 1 " + hashlib.sha256(spki).hexdigest()}})
    anchor = os.path.join(rx.dir, "..", "remote-anchor.key")
    with open(anchor, "w") as f:
        f.write(dns_server.sign("remote.test.") + "\n")
    s = start_sender(servers, dns_server, port, **{"dns.trust_anchor": os.path.abspath(anchor)})
    send(s, ["bob@remote.test"], message("peer-dsn-1"), mail_options=["RET=FULL", "ENVID=peer+2Benv", "REQUIRETLS"],
         rcpt_options={"bob@remote.test": ["NOTIFY=SUCCESS,DELAY", "ORCPT=rfc822;bob+2Bold@example.org"]})
    ev = delivered(s, "bob@remote.test")
    assert ev["tls"].startswith("TLSv1."), ev
    got = wait_for(lambda: rx.queue(), TIMEOUT)
    assert got and len(got) == 1, rx.log_text()[-3000:]
    e = got[0]
    assert (e["ret"], e["envid"], e["requiretls"]) == ("FULL", "peer+env", True), e
    assert [(r["address"], r["notify"], r["orcpt"]) for r in e["recipients"]] == [
        ("bob@remote.test", "SUCCESS,DELAY", "rfc822;bob+old@example.org")]
    # the receiver offers DSN: the success report is its job, not the sender's
    wait_queue_empty(s)
    assert log_events(s, "success_dsn") == []
