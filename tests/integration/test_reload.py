"""SIGHUP reload: existing sessions carry on, new sessions see the new configuration and TLS
certificate, listeners follow the file, and a broken configuration is refused with the old one kept."""
import os
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

from dnsfixture import dns_server  # noqa: F401 (a fixture)
from mtafixture import mtas  # noqa: F401 (a fixture)

RCPT = "demo@mailwerk.test"
DEFAULT_SIZE = 25 * 1024 * 1024


def reload_count(server, result):
    return server.log_text().count("event=reload result=%s" % result)


def sighup_and_wait(server, result):
    """SIGHUP, then wait (bounded) until the log reports a reload with this result."""
    ok0, failed0 = reload_count(server, "ok"), reload_count(server, "failed")
    server.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        ok, failed = reload_count(server, "ok"), reload_count(server, "failed")
        if ok > ok0 or failed > failed0:
            assert (ok > ok0, failed > failed0) == (result == "ok", result == "failed"), server.log_text()[-2000:]
            return
        assert server.proc.poll() is None, "the server exited on SIGHUP:\n" + server.log_text()[-4000:]
        time.sleep(0.05)
    raise AssertionError("no reload logged after SIGHUP:\n" + server.log_text()[-2000:])


def set_conf(server, section, key, value):
    """Sets key in [section] of the INI file (the key must already be there)."""
    with open(server.conf) as f:
        text = f.read()
    pattern = re.compile(r"(\[%s\][^\[]*?^%s[ \t]*=)[^\n]*$" % (re.escape(section), re.escape(key)), re.M | re.S)
    new, n = pattern.subn(lambda m: m.group(1) + " " + value, text, count=1)
    assert n == 1, "no %s.%s in %s" % (section, key, server.conf)
    with open(server.conf, "w") as f:
        f.write(new)


def conf_value(server, section, key):
    with open(server.conf) as f:
        text = f.read()
    pattern = r"\[%s\][^\[]*?^%s[ \t]*=[ \t]*([^\n]*)$" % (re.escape(section), re.escape(key))
    m = re.search(pattern, text, re.M | re.S)
    assert m, "no %s.%s" % (section, key)
    return m.group(1).strip()


def ehlo_size(port):
    with smtplib.SMTP("127.0.0.1", port, timeout=15) as c:
        c.ehlo("size.example")
        return int(c.esmtp_features["size"])


def send(c, marker):
    assert c.mail("reload@example.org")[0] == 250
    assert c.rcpt(RCPT)[0] == 250
    code, msg = c.data(("Subject: %s\r\n\r\n%s\r\n" % (marker, marker)).encode())
    assert code == 250, msg
    return msg


def no_verify_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def der_subject(der):
    p = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject"], input=der,
                       capture_output=True, timeout=30, check=True)
    return p.stdout.decode().strip()


def file_subject(path):
    p = subprocess.run(["openssl", "x509", "-noout", "-subject", "-in", path], capture_output=True, text=True,
                       timeout=30, check=True)
    return p.stdout.strip()


def implicit_tls_subject(server):
    with socket.create_connection(("127.0.0.1", server.submissions_port), timeout=15) as raw:
        with no_verify_context().wrap_socket(raw, server_hostname="mx.mailwerk.test") as t:
            return der_subject(t.getpeercert(binary_form=True))


def starttls_subject(server):
    with smtplib.SMTP("127.0.0.1", server.submission_port, timeout=15) as c:
        c.ehlo("x.example")
        c.starttls(context=no_verify_context())
        return der_subject(c.sock.getpeercert(binary_form=True))


def test_session_survives_reload(fresh_server):
    s = fresh_server.start()
    with smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=15) as c:
        c.ehlo("before.example")
        send(c, "before reload")
        assert c.mail("reload@example.org")[0] == 250  # a transaction open across the reload
        sighup_and_wait(s, "ok")
        assert c.rcpt(RCPT)[0] == 250
        code, msg = c.data(b"Subject: across\r\n\r\nacross the reload\r\n")
        assert code == 250, msg
        send(c, "after reload")
        assert c.noop()[0] == 250
    # the listeners are all still there
    for port in (s.smtp_port, s.submission_port):
        with smtplib.SMTP("127.0.0.1", port, timeout=15) as c:
            assert c.noop()[0] == 250
    assert len(s.messages()) == 3


def test_max_message_size_reload(fresh_server):
    s = fresh_server.start()
    assert ehlo_size(s.smtp_port) == DEFAULT_SIZE
    old = smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=15)
    try:
        old.ehlo("old.example")
        set_conf(s, "smtp", "max_message_size", "10M")
        sighup_and_wait(s, "ok")
        assert ehlo_size(s.smtp_port) == 10485760
        assert ehlo_size(s.submission_port) == 10485760
        # a session keeps the configuration it started with
        old.ehlo("old-again.example")
        assert int(old.esmtp_features["size"]) == DEFAULT_SIZE
        assert old.noop()[0] == 250
    finally:
        old.close()
    # and the new limit is enforced for a MAIL SIZE= declaration
    with smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=15) as c:
        c.ehlo("new.example")
        code, msg = c.mail("big@example.org", ["SIZE=%d" % (10485760 + 1)])
        assert code == 552, msg
        assert c.rset()[0] == 250
        assert c.mail("ok@example.org", ["SIZE=%d" % 10485760])[0] == 250


@pytest.mark.parametrize("breakage", ["unknown_key", "bad_value", "missing_cert", "data_dir"])
def test_broken_config_keeps_old(fresh_server, breakage):
    s = fresh_server.start()
    with open(s.conf) as f:
        good = f.read()
    set_conf(s, "smtp", "max_message_size", "10M")  # must not take effect: the file is broken
    if breakage == "unknown_key":
        with open(s.conf, "a") as f:
            f.write("no_such_key = 1\n")
    elif breakage == "bad_value":
        set_conf(s, "smtp", "max_errors", "many")
    elif breakage == "missing_cert":
        set_conf(s, "tls", "cert", s.cert + ".does-not-exist")
    else:  # valid on its own, but data_dir cannot change while running
        set_conf(s, "server", "data_dir", s.dir + "-elsewhere")
    live = smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=15)
    try:
        live.ehlo("live.example")
        sighup_and_wait(s, "failed")
        assert s.proc.poll() is None
        assert re.search(r"level=error event=reload result=failed error=\"[^\"]+\"", s.log_text())
        send(live, "during a failed reload")
    finally:
        live.close()
    assert ehlo_size(s.smtp_port) == DEFAULT_SIZE
    assert implicit_tls_subject(s) == file_subject(s.cert)
    # once the file is good again, a reload works
    with open(s.conf, "w") as f:
        f.write(good)
    set_conf(s, "smtp", "max_message_size", "10M")
    sighup_and_wait(s, "ok")
    assert ehlo_size(s.smtp_port) == 10485760


def file_not_after(path):
    """The certificate's notAfter as unix seconds, as openssl reads it."""
    import calendar
    p = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in", path], capture_output=True, text=True,
                       timeout=30, check=True)
    when = p.stdout.strip().split("=", 1)[1]  # "Dec  7 06:00:00 2027 GMT"
    return calendar.timegm(time.strptime(when, "%b %d %H:%M:%S %Y %Z"))


def certificate_seen(api):
    """What GET /server and the metrics say of the certificate: (certificate, gauge value)."""
    r = api.curl("GET", "/server")
    assert r.status == 200 and r.json["object"] == "server", r
    metrics = api.curl("GET", "/metrics", key=None).raw.decode()
    m = re.search(r"^mailwerk_tls_certificate_expiry_timestamp_seconds (\d+)$", metrics, re.M)
    assert m, metrics[:2000]
    return r.json["certificate"], int(m.group(1))


def test_certificate_reload(fresh_server, tmp_path):
    from apifixture import Api
    s = fresh_server.start()
    api = Api(s, s.cli("apikey", "create", "reload", "--quiet").stdout.strip())
    old_subject = file_subject(s.cert)
    assert "new.example" not in old_subject
    assert implicit_tls_subject(s) == old_subject
    # GET /server and the gauge report the certificate in use (mailwerk init's own, for a year or more)
    cert, gauge = certificate_seen(api)
    assert gauge == file_not_after(s.cert)
    assert cert["subject"] in old_subject and cert["expires_in_days"] > 300 and cert["expired"] is False, cert
    assert cert["not_after"].endswith("Z") and cert["names"], cert

    # a TLS session opened before the reload, with the old certificate
    old = smtplib.SMTP_SSL("127.0.0.1", s.submissions_port, timeout=15, context=no_verify_context())
    try:
        old.ehlo("old.example")
        assert der_subject(old.sock.getpeercert(binary_form=True)) == old_subject
        old.login(s.user, s.password)

        key, cert = str(tmp_path / "new-key.pem"), str(tmp_path / "new-cert.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-days", "2", "-subj", "/CN=new.example", "-keyout", key, "-out", cert],
                       capture_output=True, timeout=60, check=True)
        key_path = conf_value(s, "tls", "key")
        for src, dst in ((key, key_path), (cert, s.cert)):
            with open(src, "rb") as f:
                data = f.read()
            with open(dst, "wb") as f:  # in place: the key keeps its mode
                f.write(data)
        new_subject = file_subject(s.cert)
        assert "new.example" in new_subject

        sighup_and_wait(s, "ok")
        assert implicit_tls_subject(s) == new_subject
        # the new one, due to expire in two days: what the dashboard's overview warns of
        cert, gauge = certificate_seen(api)
        assert gauge == file_not_after(s.cert)
        assert cert["subject"] == "new.example" and cert["expires_in_days"] in (1, 2) and not cert["expired"], cert
        assert cert["issuer"] == "new.example" and cert["names"] == [], cert
        assert starttls_subject(s) == new_subject
        # the old session goes on, still authenticated, and can send
        assert old.noop()[0] == 250
        send(old, "old tls session after the certificate reload")
    finally:
        old.close()
    # a new session authenticates over the new certificate too
    with smtplib.SMTP_SSL("127.0.0.1", s.submissions_port, timeout=15, context=no_verify_context()) as c:
        c.login(s.user, s.password)
        send(c, "new tls session")


def test_listeners_follow_the_file(tmp_path):
    """A listener removed from the file stops listening, an added one starts, and a session on a
    removed listener carries on (the server is started with [listen] in the file, not -o)."""
    from conftest import Server, free_port
    s = Server(tmp_path, listen_in_file=True).start()
    try:
        held = smtplib.SMTP("127.0.0.1", s.submission_port)
        held.ehlo("client.example")
        extra = free_port()
        s.set_listen(smtp="127.0.0.1:%d, 127.0.0.1:%d" % (s.smtp_port, extra), submission="")
        sighup_and_wait(s, "ok")
        with smtplib.SMTP("127.0.0.1", extra) as m:
            assert m.ehlo("client.example")[0] == 250
        with smtplib.SMTP("127.0.0.1", s.smtp_port) as m:
            assert m.noop()[0] == 250
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", s.submission_port), timeout=5).close()
        assert held.noop()[0] == 250  # the session on the closed listener goes on
        held.quit()
    finally:
        s.stop()


def test_reload_applies_to_outbound_delivery(tmp_path, dns_server, mtas):
    """[delivery] remote_port changed in the file: connections after the SIGHUP go to the new port."""
    from conftest import Server
    from mtafixture import free_port_on, log_events, message, submit, wait_for
    port = free_port_on("127.0.0.2")
    closed = free_port_on("127.0.0.2")
    while closed == port:
        closed = free_port_on("127.0.0.2")
    mta = mtas.start("127.0.0.2", port)
    dns_server.load({"far.test": {"MX": "10 mx.far.test."}, "mx.far.test": {"A": "127.0.0.2"}})
    server = Server(tmp_path, overrides=["dns.resolver=" + dns_server.resolver, "delivery.retry_schedule=1s"])
    with open(server.conf, "a") as f:
        f.write("\n[delivery]\nremote_port = %d\n" % closed)
    server.start()
    try:
        submit(server, ["someone@far.test"], message("reload"))
        assert wait_for(lambda: log_events(server, "deferred", rcpt="someone@far.test")), server.log_text()[-3000:]
        set_conf(server, "delivery", "remote_port", str(port))
        sighup_and_wait(server, "ok")
        tx = mta.wait_transactions(1)[0]
        assert tx.rcpts == ["someone@far.test"]
        assert wait_for(lambda: server.queue() == [])
    finally:
        server.stop()


def test_delivery_hold_keeps_mail_queued_until_released(tmp_path):
    """[delivery] hold = yes: mail is accepted and kept in the queue, nothing reaches the mailbox;
    a reload with hold = no delivers what waited."""
    from conftest import Server
    server = Server(tmp_path)
    with open(server.conf, "a") as f:
        f.write("\n[delivery]\nhold = yes\n")
    server.start()
    try:
        with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=15) as c:
            for i in range(5):
                c.sendmail("a@example.org", [RCPT], b"Subject: held %d\r\n\r\nwait\r\n" % i)
        time.sleep(1.0)  # long enough for local delivery, were it allowed (milliseconds)
        assert len(server.queue()) == 5
        maildir_new = os.path.join(server.dir, "mail", "mailwerk.test", "demo", "new")
        delivered = lambda: len(os.listdir(maildir_new)) if os.path.isdir(maildir_new) else 0
        assert delivered() == 0
        set_conf(server, "delivery", "hold", "no")
        sighup_and_wait(server, "ok")
        deadline = time.monotonic() + 15
        while (server.queue() or delivered() < 5) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.queue() == [] and delivered() == 5
    finally:
        server.stop()
