"""POP3 (RFC 1939, 2449, 2595, 5034) against real clients: Python's poplib over STLS and POP3S, curl
pop3:// and pop3s://, fetchmail, and a raw client for byte-exact dialogues (stuffing, pipelining,
STLS injection, limits). Mail is put into the demo user's Maildir the way any other program would:
a unique file written in tmp/ and renamed into new/."""
import base64
import itertools
import json
import os
import poplib
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

from conftest import DOMAIN, HOST

USER = "demo@" + DOMAIN
TESTDATA = os.environ.get("MAILWERK_TESTDATA",
                          os.path.join(os.path.dirname(__file__), "../../../shared/testdata"))


def tls_context(server):
    """Verifies the server's own self-signed certificate (its name is checked where a client can)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(cafile=server.cert)
    return ctx


# ---- the mailbox, from the outside ----

_seq = itertools.count()


def maildir(server):
    return os.path.join(server.dir, "mail", DOMAIN, "demo")


def drop(server, content, base=None):
    """Delivers content (bytes) Maildir-style; returns the base name (the UIDL). Names sort in
    delivery order: the server lists by mtime, then name."""
    md = maildir(server)
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(md, sub), exist_ok=True)
    base = base or "%d.P%dQ%d.pytest" % (time.time_ns(), os.getpid(), next(_seq))
    tmp = os.path.join(md, "tmp", base)
    with open(tmp, "wb") as f:
        f.write(content)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, os.path.join(md, "new", base))
    return base


def files(server):
    md = maildir(server)
    out = []
    for sub in ("new", "cur"):
        d = os.path.join(md, sub)
        if os.path.isdir(d):
            out += [os.path.join(d, n) for n in sorted(os.listdir(d))]
    return out


def empty(server):
    for path in files(server):
        os.unlink(path)


def crlf(content):
    """What RETR sends for content (before stuffing): bare LFs become CRLF, and the content ends in a
    line end."""
    out = re.sub(rb"(?<!\r)\n", b"\r\n", content)
    if out and not out.endswith(b"\n"):
        out += b"\n" if out.endswith(b"\r") else b"\r\n"
    return out


def message(subject, body_lines, eol=b"\r\n"):
    head = [b"From: sender@example.org", b"To: " + USER.encode(), b"Subject: " + subject.encode()]
    return eol.join(head + [b""] + body_lines) + eol


# ---- clients ----

def pop_login(server, ssl_port=False, password=None, user=USER, timeout=10.0):
    """A logged-in poplib session (STLS on the pop3 listener, or POP3S). A session that ended just
    before may still hold the mailbox for a moment: [IN-USE] is retried briefly."""
    deadline = time.monotonic() + timeout
    while True:
        if ssl_port:
            p = poplib.POP3_SSL("127.0.0.1", server.pop3s_port, context=tls_context(server), timeout=15)
        else:
            p = poplib.POP3("127.0.0.1", server.pop3_port, timeout=15)
            p.stls(tls_context(server))
        try:
            p.user(user)
            p.pass_(password or server.password)
            return p
        except poplib.error_proto as e:
            p.close()
            if b"[IN-USE]" in e.args[0] and time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            raise


def retr_bytes(p, n):
    """RETR through poplib, which un-stuffs: the content as CRLF lines."""
    resp, lines, octets = p.retr(n)
    assert resp.startswith(b"+OK"), resp
    return b"".join(line + b"\r\n" for line in lines)


class Raw:
    """A byte-exact POP3 client: every read is bounded by the socket timeout."""

    def __init__(self, port, server=None, tls=False, timeout=10.0):
        self.server = server
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls:
            self.sock = tls_context(server).wrap_socket(self.sock, server_hostname=HOST)
        self.buf = b""
        self.eof = False

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def stls(self):
        assert self.buf == b"", "the server sent more than its +OK before the handshake: %r" % self.buf
        self.sock = tls_context(self.server).wrap_socket(self.sock, server_hostname=HOST)

    def _fill(self):
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, ssl.SSLError):
            chunk = b""
        if not chunk:
            self.eof = True
        self.buf += chunk

    def line(self):
        """One line without its CRLF, or None at EOF."""
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                ln, self.buf = self.buf[:i], self.buf[i + 2:]
                return ln
            if self.eof:
                return None
            self._fill()

    def cmd(self, line):
        self.send(line + "\r\n" if isinstance(line, str) else line + b"\r\n")
        return self.line()

    def multi(self):
        """The lines of a multi-line response body up to (without) the "." line, still stuffed."""
        lines = []
        while True:
            ln = self.line()
            assert ln is not None, "connection closed inside a multi-line response: %r" % lines
            if ln == b".":
                return lines
            lines.append(ln)

    def closed(self, timeout=5.0):
        """True when the server closes the connection within timeout; the lines it sent first go to
        self.last."""
        self.sock.settimeout(timeout)
        self.last = []
        try:
            while True:
                ln = self.line()
                if ln is None:
                    return True
                self.last.append(ln)
        except socket.timeout:
            return False

    def login(self):
        assert self.cmd("USER " + USER).startswith(b"+OK")
        r = self.cmd("PASS " + self.server.password)
        assert r.startswith(b"+OK"), r


def raw_stls(server):
    c = Raw(server.pop3_port, server)
    assert c.line().startswith(b"+OK")
    assert c.cmd("STLS").startswith(b"+OK")
    c.stls()
    return c


def unstuff(lines):
    return b"".join((ln[1:] if ln.startswith(b".") else ln) + b"\r\n" for ln in lines)


def wait_unlocked(server):
    """Logs in and out once, so that the next test finds the mailbox free."""
    pop_login(server).quit()


# ---- greeting, CAPA, STLS ----

def test_greeting_and_capa_before_and_after_stls(server):
    c = Raw(server.pop3_port, server)
    try:
        greeting = c.line()
        # RFC 1939 §4; no software name or version, no APOP timestamp
        assert greeting.startswith(b"+OK ")
        assert b"mailwerk" not in greeting.lower() and b"<" not in greeting and not re.search(rb"\d\.\d", greeting)
        assert c.cmd("CAPA").startswith(b"+OK")
        before = c.multi()
        assert set(before) == {b"TOP", b"UIDL", b"RESP-CODES", b"AUTH-RESP-CODE", b"PIPELINING", b"STLS"}, before
        assert c.cmd("STLS") == b"+OK Begin TLS negotiation"
        c.stls()
        assert c.cmd("CAPA").startswith(b"+OK")
        after = c.multi()
        # credentials are offered now; STLS no longer (RFC 2595 §4); no IMPLEMENTATION
        assert set(after) == {b"TOP", b"UIDL", b"USER", b"SASL PLAIN", b"RESP-CODES", b"AUTH-RESP-CODE",
                              b"PIPELINING"}, after
        assert c.cmd("STLS").startswith(b"-ERR")  # TLS already active
        c.login()
        assert c.cmd("CAPA").startswith(b"+OK")
        assert set(c.multi()) == set(after)  # RFC 2449 §5: the same in TRANSACTION
        assert c.cmd("QUIT").startswith(b"+OK")
        assert c.closed()
    finally:
        c.close()


def test_pop3s_capa_and_no_stls(server):
    c = Raw(server.pop3s_port, server, tls=True)
    try:
        assert c.line().startswith(b"+OK")
        assert c.cmd("CAPA").startswith(b"+OK")
        capa = c.multi()
        assert b"STLS" not in capa and b"USER" in capa and b"SASL PLAIN" in capa, capa
        assert c.cmd("STLS").startswith(b"-ERR")
        assert c.cmd("QUIT").startswith(b"+OK")
    finally:
        c.close()


def test_credentials_refused_before_stls(server):
    """DESIGN.md §6: no password in the clear on the pop3 listener; the refusals carry [AUTH]."""
    c = Raw(server.pop3_port, server)
    try:
        assert c.line().startswith(b"+OK")
        assert c.cmd("USER " + USER).startswith(b"-ERR [AUTH]")
        assert c.cmd("PASS " + server.password).startswith(b"-ERR [AUTH]")
        ir = base64.b64encode(b"\0" + USER.encode() + b"\0" + server.password.encode()).decode()
        assert c.cmd("AUTH PLAIN " + ir).startswith(b"-ERR [AUTH]")
        assert c.cmd("AUTH PLAIN").startswith(b"-ERR [AUTH]")  # no "+ " continuation either
        assert c.cmd("STAT").startswith(b"-ERR")  # still AUTHORIZATION
        # the same connection can still do it properly
        assert c.cmd("STLS").startswith(b"+OK")
        c.stls()
        c.login()
        assert re.match(rb"^\+OK \d+ \d+$", c.cmd("STAT"))
        assert c.cmd("QUIT").startswith(b"+OK")
    finally:
        c.close()
    assert server.password not in server.log_text()


def test_insecure_auth_on_loopback_when_allowed(fresh_server):
    """allow_insecure_auth applies to POP3 on loopback listeners too: USER and SASL are offered and
    work without TLS; STLS is still offered."""
    s = fresh_server
    s.overrides.append("smtp.allow_insecure_auth=yes")
    s.start()
    drop(s, message("plain", [b"hello"]))
    p = poplib.POP3("127.0.0.1", s.pop3_port, timeout=15)
    caps = p.capa()
    assert "USER" in caps and caps.get("SASL") == ["PLAIN"] and "STLS" in caps, caps
    p.user(USER)
    p.pass_(s.password)
    assert p.stat()[0] == 1
    assert "STLS" not in p.capa()  # AUTHORIZATION only
    p.quit()


# ---- a full session with poplib, over STLS and over POP3S ----

def test_poplib_stls_user_pass_full_session(server):
    empty(server)
    msgs = [message("one", [b"first body"]), message("two", [b"second", b"body"], eol=b"\n"),
            message("three", [b"third"])]
    uids = [drop(server, m) for m in msgs]
    sizes = [len(crlf(m)) for m in msgs]

    p = pop_login(server)
    assert p.stat() == (3, sum(sizes))
    resp, listing, _ = p.list()
    assert resp.startswith(b"+OK")
    assert listing == [b"%d %d" % (i + 1, n) for i, n in enumerate(sizes)]
    assert p.list(2) == b"+OK 2 %d" % sizes[1]
    resp, ulines, _ = p.uidl()
    assert ulines == [b"%d %s" % (i + 1, u.encode()) for i, u in enumerate(uids)]
    assert p.uidl(3) == b"+OK 3 " + uids[2].encode()
    for i, m in enumerate(msgs):
        assert retr_bytes(p, i + 1) == crlf(m)
    resp, top, _ = p.top(2, 1)
    assert top == [b"From: sender@example.org", b"To: " + USER.encode(), b"Subject: two", b"", b"second"]
    assert p.dele(2).startswith(b"+OK")
    assert p.stat() == (2, sizes[0] + sizes[2])  # RFC 1939 §5: deleted messages are not counted
    assert [ln.split()[0] for ln in p.list()[1]] == [b"1", b"3"]
    assert [ln.split()[1] for ln in p.uidl()[1]] == [uids[0].encode(), uids[2].encode()]
    for bad in (lambda: p.list(2), lambda: p.retr(2), lambda: p.dele(2), lambda: p.top(2, 0),
                lambda: p.uidl(2), lambda: p.retr(4), lambda: p.list(0)):
        with pytest.raises(poplib.error_proto):
            bad()
    assert p.rset().startswith(b"+OK")
    assert p.stat() == (3, sum(sizes))
    assert p.dele(2).startswith(b"+OK")
    assert p.noop() == b"+OK"
    assert p.quit().startswith(b"+OK")

    # the second session, over implicit TLS, shows the deletion; the rest is unchanged
    p = pop_login(server, ssl_port=True)
    assert p.stat() == (2, sizes[0] + sizes[2])
    assert [ln.split()[1] for ln in p.uidl()[1]] == [uids[0].encode(), uids[2].encode()]
    assert retr_bytes(p, 2) == crlf(msgs[2])
    p.quit()
    assert len(files(server)) == 2


def test_auth_plain_with_and_without_initial_response(server):
    empty(server)
    drop(server, message("auth", [b"x"]))
    creds = base64.b64encode(b"\0" + USER.encode() + b"\0" + server.password.encode()).decode()

    # RFC 5034 §4: with an initial response
    p = poplib.POP3_SSL("127.0.0.1", server.pop3s_port, context=tls_context(server), timeout=15)
    assert p._shortcmd("AUTH PLAIN " + creds).startswith(b"+OK")
    assert p.stat()[0] == 1
    p.quit()

    # without: "+ " then the response line
    p = poplib.POP3("127.0.0.1", server.pop3_port, timeout=15)
    p.stls(tls_context(server))
    p._putcmd("AUTH PLAIN")
    assert p._getline()[0] == b"+ "
    assert p._shortcmd(creds).startswith(b"+OK")
    assert p.stat()[0] == 1
    p.quit()

    # "*" cancels; an unsupported mechanism, bad base64 and an empty response are refused
    p = poplib.POP3_SSL("127.0.0.1", server.pop3s_port, context=tls_context(server), timeout=15)
    p._putcmd("AUTH PLAIN")
    assert p._getline()[0] == b"+ "
    with pytest.raises(poplib.error_proto):
        p._shortcmd("*")
    for bad in ("AUTH LOGIN", "AUTH CRAM-MD5", "AUTH PLAIN !!!!", "AUTH PLAIN ="):
        with pytest.raises(poplib.error_proto):
            p._shortcmd(bad)
    assert p._shortcmd("AUTH plain " + creds).startswith(b"+OK")  # the session is still usable
    p.quit()


def test_wrong_password_is_delayed_and_refused(fresh_server):
    """Failures wait (server/login.c: the test servers' scale of Dovecot's shape, 100 ms doubling
    up to 400 ms per client address; test_auth_penalty.py has the defaults) and say [AUTH]; the
    right password works afterwards, at once. A server of its own: the failures are counted per IP."""
    s = fresh_server.start()
    c = raw_stls(s)
    try:
        assert c.cmd("USER " + USER).startswith(b"+OK")
        t0 = time.monotonic()
        r = c.cmd("PASS wrong-password")
        assert r.startswith(b"-ERR [AUTH]"), r
        assert time.monotonic() - t0 >= 0.1 - 0.02
        # an unknown user is answered the same way, and counts for the client too
        assert c.cmd("USER nobody@" + DOMAIN).startswith(b"+OK")
        t0 = time.monotonic()
        assert c.cmd("PASS " + s.password).startswith(b"-ERR [AUTH]")
        assert time.monotonic() - t0 >= 0.2 - 0.02
        bad = base64.b64encode(b"\0" + USER.encode() + b"\0nope").decode()
        t0 = time.monotonic()
        assert c.cmd("AUTH PLAIN " + bad).startswith(b"-ERR [AUTH]")
        assert time.monotonic() - t0 >= 0.4 - 0.02
        assert c.cmd("PASS " + s.password).startswith(b"-ERR")  # PASS needs a USER first
        assert c.cmd("STAT").startswith(b"-ERR")
        c.login()
        assert c.cmd("QUIT").startswith(b"+OK")
    finally:
        c.close()
    log = s.log_text()
    assert "wrong-password" not in log and s.password not in log
    fails = re.findall(r"event=login result=fail .* failures=(\d+) delay_ms=(\d+)", log)
    assert fails == [("1", "100"), ("2", "200"), ("3", "400")], fails
    assert re.search(r"event=login result=ok .* delay_ms=0", log), log[-2000:]


# ---- real clients: curl and fetchmail ----

def curl(server, url, *extra):
    port = int(re.search(r":(\d+)/", url).group(1))
    cmd = ["curl", "-sS", "--max-time", "30", "--resolve", "%s:%d:127.0.0.1" % (HOST, port),
           "--cacert", server.cert, "--user", "%s:%s" % (USER, server.password), *extra, url]
    p = subprocess.run(cmd, capture_output=True, timeout=60)
    assert p.returncode == 0, "curl failed (%d): %s" % (p.returncode, p.stderr.decode())
    return p.stdout


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed (scripts/deps.sh)")
def test_curl_pop3s_and_stls(server):
    empty(server)
    msgs = [message("curl one", [b"alpha", b".dotted", b"omega"]),
            message("curl two", [b"beta \xc3\xa4\xc3\xb6\xc3\xbc"], eol=b"\n")]
    for m in msgs:
        drop(server, m)
    # implicit TLS, the certificate verified by name: the listing, then each message
    listing = curl(server, "pop3s://%s:%d/" % (HOST, server.pop3s_port))
    assert listing == b"".join(b"%d %d\r\n" % (i + 1, len(crlf(m))) for i, m in enumerate(msgs))
    assert curl(server, "pop3s://%s:%d/1" % (HOST, server.pop3s_port)) == crlf(msgs[0])
    assert curl(server, "pop3s://%s:%d/2" % (HOST, server.pop3s_port), "--sasl-ir") == crlf(msgs[1])
    # STLS required by the client
    assert curl(server, "pop3://%s:%d/2" % (HOST, server.pop3_port), "--ssl-reqd") == crlf(msgs[1])
    # without TLS the server takes no credentials (USER is refused, so no PASS follows): curl fails
    p = subprocess.run(["curl", "-sS", "--max-time", "30", "--user", "%s:%s" % (USER, server.password),
                        "pop3://127.0.0.1:%d/1" % server.pop3_port], capture_output=True, timeout=60)
    assert p.returncode != 0
    assert len(files(server)) == 2  # curl only read


@pytest.mark.skipif(shutil.which("fetchmail") is None, reason="fetchmail not installed (scripts/deps.sh)")
def test_fetchmail_over_stls(server, tmp_path):
    empty(server)
    msgs = [message("fetch one", [b"hello from mailwerk", b".leading dot", b"..two dots", b"."]),
            message("fetch two", [b"second message \xe2\x82\xac"], eol=b"\n")]
    for m in msgs:
        drop(server, m)
    home = tmp_path / "home"
    home.mkdir()
    out = tmp_path / "mbox"
    rc = home / "fetchmailrc"
    rc.write_text(
        "set no bouncemail\nset no syslog\n"
        'poll %s via 127.0.0.1 with proto POP3 port %d\n'
        '  user "%s" there with password "%s" is "%s" here\n'
        '  options nokeep no rewrite sslproto "TLS1.2+" sslcertck sslcertfile "%s" sslcommonname "%s"\n'
        '  mda "cat >> %s"\n' % (HOST, server.pop3_port, USER, server.password,
                                 os.environ.get("USER", "root"), server.cert, HOST, out))
    rc.chmod(0o600)
    env = dict(os.environ, HOME=str(home), FETCHMAILHOME=str(home))
    p = subprocess.run(["fetchmail", "-f", str(rc), "-v", "--nodetach"], capture_output=True, env=env, timeout=60)
    transcript = p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")
    assert p.returncode == 0, transcript
    assert "POP3> STLS" in transcript, transcript
    got = out.read_bytes()
    # fetchmail hands each message to the MDA with LF line ends and its own Received: field first;
    # everything else is byte-exact
    parts = re.split(rb"(?m)^(?=Received: from 127\.0\.0\.1)", got)
    parts = [x for x in parts if x]
    assert len(parts) == 2, got
    for part, m in zip(parts, msgs):
        want = crlf(m).replace(b"\r\n", b"\n")
        assert part.endswith(want), (part, want)
        prefix = part[:-len(want)]
        assert all(ln.startswith((b"Received:", b"\t", b" ")) for ln in prefix.splitlines()), prefix
    assert files(server) == []  # --nokeep: deleted on the server


# ---- RFC 1939's own examples ----

def rfc_sized(n, subject, eol):
    """A message whose CRLF size is exactly n octets."""
    head = message(subject, [], eol=eol)
    pad = n - len(crlf(head)) - 2
    assert pad > 0
    return head + b"x" * pad + eol


def test_rfc1939_example_session(server):
    """RFC 1939 §10, mechanically from rfc1939-examples.json: two messages of 120 and 200 octets;
    the normative parts (status indicators, STAT and LIST numbers, the messages) must match."""
    path = os.path.join(TESTDATA, "pop3", "rfc1939-examples.json")
    if not os.path.exists(path):
        pytest.skip("no %s" % path)
    session = json.load(open(path))["section_10_example_session"]
    empty(server)
    msgs = [rfc_sized(120, "rfc one", b"\r\n"), rfc_sized(200, "rfc two", b"\n")]
    for m in msgs:
        drop(server, m)
    c = Raw(server.pop3s_port, server, tls=True)
    try:
        steps = [ln.strip() for ln in session]
        i = 0
        last_cmd = None
        while i < len(steps):
            ln = steps[i]
            i += 1
            if ln.startswith("S:") and "server ready" in ln:
                assert c.line().startswith(b"+OK")
            elif ln.startswith("C:") and "APOP" in ln:
                c.login()  # APOP is not offered; USER/PASS gets to the same state
                i += 1  # its "+OK maildrop has 2 messages" was checked by login()
            elif ln.startswith("C:") and not ln[2:].strip().startswith("<"):
                last_cmd = ln[2:].strip()
                got = c.cmd(last_cmd)
                want = steps[i][2:].strip()
                i += 1
                assert got.split()[0] == want.split()[0].encode(), (last_cmd, got, want)
                if last_cmd == "STAT":
                    assert got == want.encode()
                if last_cmd in ("LIST", "RETR 1", "RETR 2"):
                    body = []
                    while steps[i][2:].strip() != ".":
                        body.append(steps[i][2:].strip())
                        i += 1
                    i += 1
                    got_body = c.multi()
                    if last_cmd == "LIST":
                        assert got_body == [b.encode() for b in body]
                    else:
                        n = int(last_cmd.split()[1])
                        assert got.startswith(b"+OK %d octets" % len(crlf(msgs[n - 1])))
                        assert unstuff(got_body) == crlf(msgs[n - 1])
        assert c.closed()
    finally:
        c.close()
    assert files(server) == []


def test_rfc1939_per_command_examples(server):
    """The per-command examples of RFC 1939 that a two-message maildrop can replay."""
    empty(server)
    for m in (rfc_sized(120, "a", b"\r\n"), rfc_sized(200, "b", b"\r\n")):
        drop(server, m)
    c = Raw(server.pop3s_port, server, tls=True)
    try:
        assert c.line().startswith(b"+OK")
        c.login()
        table = [
            ("STAT", b"+OK 2 320"),
            ("LIST 2", b"+OK 2 200"),
            ("LIST 3", b"-ERR"),
            ("UIDL 3", b"-ERR"),
            ("TOP 100 3", b"-ERR"),
            ("NOOP", b"+OK"),
            ("DELE 1", b"+OK"),
            ("DELE 1", b"-ERR"),  # already deleted
            ("RSET", b"+OK"),
            ("STAT", b"+OK 2 320"),
        ]
        for cmd, want in table:
            got = c.cmd(cmd)
            assert got.startswith(want), (cmd, got)
        assert c.cmd("LIST").startswith(b"+OK")
        assert c.multi() == [b"1 120", b"2 200"]
        assert c.cmd("UIDL 2").startswith(b"+OK 2 ")
        assert c.cmd("QUIT").startswith(b"+OK")  # nothing marked: nothing removed
    finally:
        c.close()
    assert len(files(server)) == 2


# ---- content: stuffing, line ends, 8-bit, size ----

def test_dot_lines_round_trip_byte_exact(server):
    empty(server)
    body = [b".", b"..", b"...", b".leading", b"..double", b" .space first", b"mid.dle.", b"", b".", b"end ."]
    m = message("dots", body)
    drop(server, m)
    p = pop_login(server)
    assert retr_bytes(p, 1) == crlf(m)
    p.quit()
    # on the wire: every line that starts with "." carries one more, and nothing else changes
    c = Raw(server.pop3s_port, server, tls=True)
    try:
        assert c.line().startswith(b"+OK")
        c.login()
        assert c.cmd("RETR 1").startswith(b"+OK")
        wire = c.multi()
        want = crlf(m).split(b"\r\n")[:-1]
        assert wire == [(b"." + ln if ln.startswith(b".") else ln) for ln in want]
        assert c.cmd("TOP 1 2").startswith(b"+OK")
        assert c.multi() == [(b"." + ln if ln.startswith(b".") else ln) for ln in want[:4 + 2]]
        assert c.cmd("QUIT").startswith(b"+OK")
    finally:
        c.close()


def test_bare_lf_file_served_with_crlf_and_list_size_matches(server):
    """A file with LF line ends (and one without a final line end), put straight into new/ under a
    name without S=/W=: LIST gives the CRLF size, and RETR sends exactly that many octets."""
    empty(server)
    lf = b"From: x@example.org\nSubject: lf only\n\nline one\n.dot line\nline three\n"
    mixed = b"From: y@example.org\r\nSubject: mixed\n\r\nfirst\r\nsecond\nlast line without end"
    lone_cr = b"Subject: cr\n\na\rb\n"
    for m in (lf, mixed, lone_cr):
        drop(server, m)
    c = Raw(server.pop3_port, server)
    try:
        assert c.line().startswith(b"+OK")
        assert c.cmd("STLS").startswith(b"+OK")
        c.stls()
        c.login()
        assert c.cmd("LIST").startswith(b"+OK")
        sizes = [int(ln.split()[1]) for ln in c.multi()]
        assert sizes[0] == len(lf) + lf.count(b"\n")
        assert sizes[2] == len(lone_cr) + lone_cr.count(b"\n")
        for n, m in enumerate((lf, mixed, lone_cr), 1):
            assert c.cmd("RETR %d" % n) == b"+OK %d octets" % sizes[n - 1]
            raw = c.multi()
            content = unstuff(raw)
            assert content == crlf(m)
            assert b"\n" not in content.replace(b"\r\n", b"")  # no bare LF on the wire
            if m is not mixed:  # the unterminated last line gets the CRLF that ends the response
                assert len(content) == sizes[n - 1]
            else:
                assert len(content) == sizes[n - 1] + 2
        assert c.cmd("QUIT").startswith(b"+OK")
    finally:
        c.close()


def test_8bit_and_utf8_round_trip(server):
    empty(server)
    utf8 = message("=?UTF-8?B?w6TDtsO8?=", ["Grüße, 你好, 🙂 — ünïcödé".encode(), b"caf\xc3\xa9"])
    raw8 = b"Subject: raw\r\n\r\n" + bytes(range(0x80, 0x100)) + b"\r\n\xff\xfe\xfd\r\n"
    drop(server, utf8)
    drop(server, raw8)
    p = pop_login(server, ssl_port=True)
    assert retr_bytes(p, 1) == utf8
    assert retr_bytes(p, 2) == raw8
    p.quit()


def test_large_message_streams_intact(server):
    """Several pieces of a streamed RETR (the worker reads 256 KiB at a time), with stuffing all
    through it, and TOP of it."""
    empty(server)
    lines = [(b".%07d" % i if i % 7 == 0 else b"line %07d " % i + b"x" * 60) for i in range(60000)]
    big = message("big", lines, eol=b"\n")
    drop(server, big)
    p = pop_login(server)
    assert p.list(1) == b"+OK 1 %d" % len(crlf(big))
    assert retr_bytes(p, 1) == crlf(big)
    resp, top, _ = p.top(1, 3)
    assert top[-3:] == lines[:3]
    p.quit()


def test_top_n_lines(server):
    empty(server)
    body = [b"b1", b"b2", b"b3"]
    m = message("top", body)
    drop(server, m)
    headers = crlf(m).split(b"\r\n\r\n")[0].split(b"\r\n")
    p = pop_login(server)
    for n, want in ((0, []), (1, body[:1]), (2, body[:2]), (3, body), (100, body), (4294967295, body)):
        resp, got, _ = p.top(1, n)
        assert resp.startswith(b"+OK")
        assert got == headers + [b""] + want, n
    for bad in ("TOP 1", "TOP 1 -1", "TOP 1 4294967296", "TOP 0 1", "TOP 2 1", "TOP 1 1 1"):
        with pytest.raises(poplib.error_proto):
            p._shortcmd(bad)
    p.quit()


# ---- UIDL and the fixed maildrop ----

def test_uidl_stable_across_sessions_and_deletions(server):
    empty(server)
    uids = [drop(server, message("u%d" % i, [b"x"])) for i in range(4)]
    p = pop_login(server)
    first = [ln.split()[1].decode() for ln in p.uidl()[1]]
    assert first == uids  # the Maildir base names, as delivered
    p.dele(1)
    p.dele(3)
    p.quit()
    newer = drop(server, message("u-new", [b"y"]))
    p = pop_login(server, ssl_port=True)
    second = [ln.split()[1].decode() for ln in p.uidl()[1]]
    assert second == [uids[1], uids[3], newer]  # renumbered, same ids
    assert p.uidl(2) == b"+OK 2 " + uids[3].encode()
    p.quit()
    p = pop_login(server)
    assert [ln.split()[1].decode() for ln in p.uidl()[1]] == second
    p.quit()


def test_new_mail_during_a_session_appears_in_the_next(server):
    empty(server)
    drop(server, message("before", [b"1"]))
    p = pop_login(server)
    assert p.stat()[0] == 1
    later = drop(server, message("during", [b"2"]))
    assert p.stat()[0] == 1  # RFC 1939 §4: fixed at login
    assert len(p.uidl()[1]) == 1
    p.quit()
    p = pop_login(server)
    assert p.stat()[0] == 2
    assert p.uidl(2).split()[2].decode() == later
    p.quit()


# ---- locking and what ends a session ----

def test_second_session_gets_in_use(server):
    empty(server)
    drop(server, message("locked", [b"x"]))
    a = pop_login(server)
    b = poplib.POP3_SSL("127.0.0.1", server.pop3s_port, context=tls_context(server), timeout=15)
    b.user(USER)
    with pytest.raises(poplib.error_proto) as e:
        b.pass_(server.password)
    assert e.value.args[0].startswith(b"-ERR [IN-USE]")  # RFC 2449 §8.1.2
    # with AUTH too
    creds = base64.b64encode(b"\0" + USER.encode() + b"\0" + server.password.encode()).decode()
    with pytest.raises(poplib.error_proto) as e:
        b._shortcmd("AUTH PLAIN " + creds)
    assert e.value.args[0].startswith(b"-ERR [IN-USE]")
    assert a.stat()[0] == 1  # the first session is unaffected
    a.quit()
    # the lock went with the first session: the second logs in on the same connection
    deadline = time.monotonic() + 5
    while True:
        try:
            b.user(USER)
            b.pass_(server.password)
            break
        except poplib.error_proto as err:
            assert b"[IN-USE]" in err.args[0] and time.monotonic() < deadline
            time.sleep(0.05)
    assert b.stat()[0] == 1
    b.quit()


def test_domain_case_names_the_same_mailbox(server):
    """The stored address names the mailbox, whatever case the client typed: still one lock."""
    empty(server)
    drop(server, message("case", [b"x"]))
    a = pop_login(server)
    with pytest.raises(poplib.error_proto) as e:
        pop_login(server, ssl_port=True, user="demo@MAILWERK.Test", timeout=0)
    assert e.value.args[0].startswith(b"-ERR [IN-USE]")
    a.quit()
    b = pop_login(server, ssl_port=True, user="demo@MAILWERK.Test")
    assert b.stat()[0] == 1
    b.quit()


@pytest.mark.parametrize("how", ["close", "reset", "shutdown-write"])
def test_dropped_connection_deletes_nothing(server, how):
    empty(server)
    for i in range(3):
        drop(server, message("keep %d" % i, [b"x"]))
    c = raw_stls(server)
    c.login()
    for n in (1, 2, 3):
        assert c.cmd("DELE %d" % n).startswith(b"+OK")
    if how == "reset":
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.close()
    elif how == "shutdown-write":
        # the client says no more, without QUIT; a pending DELE in the same flight is answered
        c.send("DELE 1\r\n")
        # half-close the TCP connection under the TLS socket (SSLSocket.shutdown would drop TLS)
        socket.socket(fileno=os.dup(c.sock.fileno())).shutdown(socket.SHUT_WR)
        assert c.closed()
        c.close()
    else:
        c.close()
    # RFC 1939 §6: no QUIT, no UPDATE
    p = pop_login(server)
    assert p.stat()[0] == 3
    p.quit()
    assert len(files(server)) == 3


def test_quit_in_authorization_enters_no_update(server):
    c = Raw(server.pop3s_port, server, tls=True)
    try:
        assert c.line().startswith(b"+OK")
        assert c.cmd("QUIT").startswith(b"+OK")
        assert c.closed()
    finally:
        c.close()


@pytest.mark.serial  # the close is timed to within 4 s of the timer
def test_idle_timeout(fresh_server):
    """[pop3] idle_timeout: -ERR and close, in either state; an idle TRANSACTION deletes nothing."""
    s = fresh_server
    s.overrides.append("pop3.idle_timeout=2s")
    s.start()
    drop(s, message("idle", [b"x"]))
    c = Raw(s.pop3_port, s)
    t0 = time.monotonic()
    assert c.line().startswith(b"+OK")
    assert c.closed(timeout=8)
    assert 1.5 <= time.monotonic() - t0 <= 6
    assert c.last and c.last[0].startswith(b"-ERR"), c.last
    c.close()
    c = raw_stls(s)
    c.login()
    assert c.cmd("DELE 1").startswith(b"+OK")
    t0 = time.monotonic()
    assert c.closed(timeout=8)
    assert 1.5 <= time.monotonic() - t0 <= 6
    c.close()
    p = pop_login(s)
    assert p.stat()[0] == 1
    p.quit()
    assert "reason=timeout" in s.log_text()


def test_sigterm_ends_sessions_politely(fresh_server):
    s = fresh_server.start()
    drop(s, message("stop", [b"x"]))
    c = raw_stls(s)
    c.login()
    assert c.cmd("DELE 1").startswith(b"+OK")
    s.proc.send_signal(signal.SIGTERM)
    assert c.closed(timeout=10)
    assert c.last and c.last[0].startswith(b"-ERR [SYS/TEMP]"), c.last
    c.close()
    s.stop()  # exit 0, clean sanitizer log
    assert len(files(s)) == 1  # no QUIT, no UPDATE


# ---- protocol hygiene: STLS injection, pipelining, limits ----

@pytest.mark.parametrize("injected", [
    pytest.param(b"CAPA\r\n", id="capa"),
    pytest.param(b"USER demo@mailwerk.test\r\nPASS x\r\n", id="user-pass"),
    pytest.param(b"QUIT\r\n", id="quit"),
])
def test_stls_plaintext_injection_discarded(server, injected):
    """CVE-2011-0411 for POP3: what follows STLS in the same flight is dropped, not run under TLS."""
    c = Raw(server.pop3_port, server)
    try:
        assert c.line().startswith(b"+OK")
        c.send(b"STLS\r\n" + injected)
        assert c.line() == b"+OK Begin TLS negotiation"
        c.stls()
        # the first answer under TLS is to our own CAPA, and it no longer offers STLS
        assert c.cmd("CAPA").startswith(b"+OK Capability")
        capa = c.multi()
        assert b"STLS" not in capa and b"USER" in capa
        # and nothing injected is queued behind it: no half-done USER either
        assert c.cmd("PASS " + server.password).startswith(b"-ERR")
        c.login()
        assert c.cmd("QUIT").startswith(b"+OK")
        assert c.closed()
    finally:
        c.close()


def test_pipelining_answers_in_order(server):
    """RFC 2449 §6.6: everything sent in one go is answered in turn, across the waits for the
    password check, the maildrop and each RETR."""
    empty(server)
    msgs = [message("pipe %d" % i, [b"body %d" % i, b".dot"]) for i in range(3)]
    for m in msgs:
        drop(server, m)
    c = raw_stls(server)
    try:
        c.send("USER %s\r\nPASS %s\r\nSTAT\r\nRETR 1\r\nLIST\r\nRETR 2\r\nDELE 1\r\nRETR 1\r\nUIDL 3\r\n"
               "TOP 3 0\r\nNOOP\r\nRETR 3\r\nQUIT\r\n" % (USER, server.password))
        assert c.line().startswith(b"+OK")  # USER
        assert c.line().startswith(b"+OK")  # PASS
        assert c.line() == b"+OK 3 %d" % sum(len(m) for m in msgs)
        assert c.line().startswith(b"+OK") and unstuff(c.multi()) == msgs[0]
        assert c.line().startswith(b"+OK") and len(c.multi()) == 3
        assert c.line().startswith(b"+OK") and unstuff(c.multi()) == msgs[1]
        assert c.line().startswith(b"+OK")  # DELE 1
        assert c.line().startswith(b"-ERR")  # RETR 1: deleted
        assert c.line().startswith(b"+OK 3 ")
        assert c.line().startswith(b"+OK") and unstuff(c.multi()) == msgs[2].split(b"\r\n\r\n")[0] + b"\r\n\r\n"
        assert c.line() == b"+OK"
        assert c.line().startswith(b"+OK") and unstuff(c.multi()) == msgs[2]
        assert c.line().startswith(b"+OK")  # QUIT
        assert c.closed()
    finally:
        c.close()
    assert len(files(server)) == 2


def test_line_limits_unknown_commands_and_errors(server):
    c = Raw(server.pop3s_port, server, tls=True)
    try:
        assert c.line().startswith(b"+OK")
        # RFC 2449 §4: 255 octets with the CRLF are fine, 256 are not
        assert c.cmd("CAPA" + " " * 249).startswith(b"+OK")
        c.multi()
        assert c.cmd("CAPA" + " " * 250).startswith(b"-ERR")
        assert c.cmd("USER " + "u" * 5000).startswith(b"-ERR")  # dropped to its end, then we go on
        assert c.cmd("FOO").startswith(b"-ERR")
        assert c.cmd("APOP mrose c4c9334bac560ecc979e58001b3e22fb").startswith(b"-ERR")  # not offered
        assert c.cmd("STAT").startswith(b"-ERR")  # not before login
        assert c.cmd(b"CA\x00PA").startswith(b"-ERR")
        assert c.cmd("RETR +1").startswith(b"-ERR")
        assert c.cmd("QUIT").startswith(b"+OK")
        assert c.closed()
    finally:
        c.close()


@pytest.mark.parametrize("line", [b"CAPA\n", b"CAPA\rQUIT\r\n", b"CA\rPA\r\n", b"USER a\nPASS b\r\n"])
def test_bare_cr_or_lf_closes(server, line):
    """As for SMTP: a bare CR or LF is refused and the connection closed, never guessed at."""
    c = Raw(server.pop3s_port, server, tls=True)
    try:
        assert c.line().startswith(b"+OK")
        c.send(line)
        assert c.closed()
        assert c.last and c.last[-1].startswith(b"-ERR"), c.last
        assert not any(ln.startswith(b"+OK") for ln in c.last), c.last
    finally:
        c.close()


def test_too_many_errors_close_the_session(server):
    c = Raw(server.pop3s_port, server, tls=True)
    try:
        assert c.line().startswith(b"+OK")
        c.send(b"BOGUS\r\n" * 12)  # pop3.max_errors defaults to 10
        assert c.closed()
        assert len(c.last) == 11 and c.last[-1].startswith(b"-ERR"), c.last
        assert b"Too many errors" in c.last[-1]
    finally:
        c.close()


def test_log_lines(server):
    """One key=value line per event, with the connection id; never a password."""
    empty(server)
    drop(server, message("log", [b"x"]))
    p = pop_login(server)
    p.retr(1)
    p.quit()
    log = server.log_text()
    sid = re.findall(r"session=(\w+) event=retr msg=1 ", log)[-1]
    for event in ("connect proto=pop3", "login result=ok", "maildrop result=ok", "retr msg=1", "quit",
                  "disconnect reason=quit"):
        assert re.search(r"session=%s event=%s" % (sid, event), log), event
    assert server.password not in log


# ---- end to end: SMTP in, local delivery, POP3 out ----

def test_smtp_to_pop3_end_to_end(server):
    empty(server)
    token = "e2e-%d" % time.time_ns()
    body = "Subject: %s\r\nFrom: sender@example.org\r\nTo: %s\r\n\r\nend to end\r\n.leading dot\r\n" % (token, USER)
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=15) as m:
        m.sendmail("sender@example.org", [USER], body.encode())
    deadline = time.monotonic() + 10
    found = None
    while time.monotonic() < deadline and found is None:
        p = pop_login(server)
        for n in range(1, p.stat()[0] + 1):
            data = retr_bytes(p, n)
            if token.encode() in data:
                found = data
                p.dele(n)
        p.quit()
        if found is None:
            time.sleep(0.2)
    assert found is not None, "the message sent by SMTP did not reach the POP3 maildrop within 10 s"
    assert found.endswith(b"\r\n\r\nend to end\r\n.leading dot\r\n")
    assert found.startswith(b"Received: ") or b"\r\nReceived: " in found


def test_pipelined_commands_with_large_answers_are_not_stalled(server):
    """A client that sends many commands at once and only then reads: the server stops reading
    while its output is large, and once the client has taken it, answers the commands that were
    already buffered without waiting for more input (there is none)."""
    empty(server)
    uids = [drop(server, message("many %d" % i, [b"x"])) for i in range(50)]
    c = raw_stls(server)
    try:
        c.login()
        n = 4000  # about 10 MiB of answers, more than the socket buffers hold
        c.send(b"UIDL\r\n" * n + b"QUIT\r\n")
        want = [b"%d %s" % (i + 1, u.encode()) for i, u in enumerate(uids)]
        c.sock.settimeout(20)
        for _ in range(n):
            assert c.line().startswith(b"+OK")
            assert c.multi() == want
        assert c.line().startswith(b"+OK")
        assert c.closed()
    finally:
        c.close()


def test_read_ahead_serves_every_order_byte_exact(server):
    """Messages taken in order are read ahead of the client's RETRs; whatever order, interleaving
    (DELE, TOP, LIST) or size (some larger than the read-ahead window), every response is the
    message, byte-exact, and a message deleted after it was read ahead is not served."""
    empty(server)
    sizes = [200, 5000, 70000, 1200, 300000, 800, 90000, 90000, 90000, 64, 10, 2000]
    msgs = []
    for i, size in enumerate(sizes):
        lines = [(b"%d." % i) + b"x" * 70] * max(1, size // 73) + [b".dot line %d" % i]
        msgs.append(message("ahead %d" % i, lines))
        drop(server, msgs[-1])
    n = len(msgs)
    c = raw_stls(server)
    try:
        c.login()
        # in order, pipelined: the read-ahead path
        c.send(b"".join(b"RETR %d\r\n" % (i + 1) for i in range(n)))
        for i in range(n):
            assert c.line().startswith(b"+OK %d octets" % len(msgs[i]))
            assert unstuff(c.multi()) == msgs[i], i
        # in order again, one at a time, with a TOP and a LIST between two RETRs
        for i in range(n):
            assert c.cmd("RETR %d" % (i + 1)).startswith(b"+OK")
            assert unstuff(c.multi()) == msgs[i], i
            if i == 3:
                assert c.cmd("TOP 9 0").startswith(b"+OK")
                assert unstuff(c.multi()) == msgs[8].split(b"\r\n\r\n")[0] + b"\r\n\r\n"
                assert c.cmd("LIST 2").startswith(b"+OK 2 ")
        # backwards and skipping: never the wrong message
        for i in [12, 1, 2, 3, 7, 5, 6, 11, 10, 9]:
            assert c.cmd("RETR %d" % i).startswith(b"+OK")
            assert unstuff(c.multi()) == msgs[i - 1], i
        # a message read ahead and then deleted is not served
        assert c.cmd("RETR 1").startswith(b"+OK")
        c.multi()
        assert c.cmd("RETR 2").startswith(b"+OK")  # 3.. are read ahead now
        c.multi()
        assert c.cmd("DELE 3").startswith(b"+OK")
        assert c.cmd("RETR 3").startswith(b"-ERR")
        assert c.cmd("RETR 4").startswith(b"+OK")
        assert unstuff(c.multi()) == msgs[3]
        assert c.cmd("QUIT").startswith(b"+OK")
        assert c.closed()
    finally:
        c.close()
    assert len(files(server)) == n - 1


def test_read_ahead_batches_overlap_and_stay_exact(server):
    """Many small messages taken in order: batch after batch is read ahead while the one before goes
    out (and a RETR that catches up with a batch still being read waits for it), a DELE between two
    batches drops what was read ahead, and every response is still the right message."""
    empty(server)
    msgs = [message("batch %d" % i, [b"line %d of message %d" % (k, i) for k in range(30 + i % 7)])
            for i in range(150)]
    for m in msgs:
        drop(server, m)
    c = raw_stls(server)
    try:
        c.login()
        c.send(b"".join(b"RETR %d\r\n" % (i + 1) for i in range(100)))
        for i in range(100):
            assert c.line().startswith(b"+OK %d octets" % len(msgs[i])), i
            assert unstuff(c.multi()) == msgs[i], i
        for i in range(100, 120):  # one at a time: the next batch is read while these go out
            assert c.cmd("RETR %d" % (i + 1)).startswith(b"+OK"), i
            assert unstuff(c.multi()) == msgs[i], i
        assert c.cmd("DELE 122").startswith(b"+OK")
        c.send(b"RETR 121\r\nRETR 122\r\nRETR 123\r\nRETR 150\r\nRETR 124\r\n")
        assert c.line().startswith(b"+OK") and unstuff(c.multi()) == msgs[120]
        assert c.line().startswith(b"-ERR")
        for i in (123, 150, 124):
            assert c.line().startswith(b"+OK") and unstuff(c.multi()) == msgs[i - 1], i
        assert c.cmd("QUIT").startswith(b"+OK")
        assert c.closed()
    finally:
        c.close()
    assert len(files(server)) == 149
