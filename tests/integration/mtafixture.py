"""A receiving MTA for tests of outbound delivery, built on aiosmtpd (the 1.4 API of Debian 12's
python3-aiosmtpd). Each MTA listens on one address (127.0.0.x) and port in a thread of its own and
records what it was sent; several MTAs on 127.0.0.2, 127.0.0.3, ... share one port, so the sending
server tells them apart by address only.

    from mtafixture import mtas, free_port_on   # `mtas` is the pytest fixture

    def test_x(mtas):
        port = free_port_on("127.0.0.2", "127.0.0.3")
        mx1 = mtas.start("127.0.0.2", port)                        # no STARTTLS offered
        mx2 = mtas.start("127.0.0.3", port, starttls=True,        # a throwaway self-signed certificate
                         rcpt_replies={"nobody@x.test": "550 5.1.1 no such user"},
                         data_replies=["451 4.3.0 try again later"])  # the first DATA end; then 250
        ... send mail through mailwerk ...
        tx = mx2.wait_transactions(1)[0]
        tx.mail_from, tx.rcpts, tx.data, tx.tls, tx.ehlo, tx.reply

Scripting (each may also be changed on a running MTA, e.g. mta.rcpt_replies[...] = ...):
    greeting="421 4.3.2 busy"   the greeting instead of 220; after 421 the connection closes, after
                                any other code every command but QUIT gets 503 (RFC 5321 §3.1)
    starttls=True               offers STARTTLS with a fresh self-signed certificate
    broken_tls=True             offers STARTTLS and answers 220 to it, then sends octets that are not
                                TLS and closes: the client's handshake fails
    mail_replies={addr: reply}  the reply to MAIL FROM:<addr> ("" for the null sender)
    rcpt_replies={addr: reply}  the reply to RCPT TO:<addr> (case-insensitive); otherwise 250
    data_replies=[reply, ...]   replies to the first DATA ends, in order; then "250 2.0.0 Ok: queued"
    stall=N                     the first N DATA ends are recorded, then not answered until
                                release() (or until the client goes away); see wait_stalled()
    data_delay=S                every DATA end is answered S seconds late (a slow receiver);
                                max_open then tells how many connections were open at once

Certificates are made at test time with the openssl command (self_signed_cert, make_ca,
ca_signed_cert) and live only in the test's tmp_path.

At the end, helpers for the sending side: submit() a message as an authenticated user, set up the
sender and its MX records (start_sender, mx_records), read the server's key=value log (log_events,
delivered), its queue (queue_rcpts), its users' Maildirs and the DSNs in them (reports,
report_parts, no_bounces), and wait_for()/holds_for() to poll with a time limit.

Every wait is bounded; nothing here sleeps for a fixed time to hope something happened.
"""
import asyncio
import os
import re
import socket
import ssl
import subprocess
import threading
import time

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from conftest import free_port

OK_DATA = "250 2.0.0 Ok: queued"


# ---- certificates (made at test time, never kept) ----

def _openssl(*args, cwd=None):
    p = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60, cwd=cwd)
    if p.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (" ".join(args), p.stderr))


def self_signed_cert(directory, name="mx.fixture.test"):
    """A throwaway P-256 self-signed certificate for name: returns (cert path, key path)."""
    directory = str(directory)
    os.makedirs(directory, exist_ok=True)
    cert = os.path.join(directory, name + ".self.pem")
    key = os.path.join(directory, name + ".self.key")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
             "-keyout", key, "-out", cert, "-subj", "/CN=" + name, "-addext", "subjectAltName=DNS:" + name)
    os.chmod(key, 0o600)
    return cert, key


def make_ca(directory, name="mailwerk test CA"):
    """A throwaway certificate authority: returns (CA certificate path, CA key path)."""
    directory = str(directory)
    os.makedirs(directory, exist_ok=True)
    cert = os.path.join(directory, "ca.pem")
    key = os.path.join(directory, "ca.key")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
             "-keyout", key, "-out", cert, "-subj", "/CN=" + name,
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    os.chmod(key, 0o600)
    return cert, key


def ca_signed_cert(directory, ca, name):
    """A server certificate for name (subjectAltName DNS:name) signed by ca = (cert, key) from
    make_ca(): returns (certificate path, key path)."""
    directory = str(directory)
    os.makedirs(directory, exist_ok=True)
    cert = os.path.join(directory, name + ".pem")
    key = os.path.join(directory, name + ".key")
    csr = os.path.join(directory, name + ".csr")
    ext = os.path.join(directory, name + ".ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:%s\n" % name)
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", key, "-out", csr, "-subj", "/CN=" + name)
    _openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-set_serial",
             str(int.from_bytes(os.urandom(8), "big")), "-days", "1", "-extfile", ext, "-out", cert)
    os.chmod(key, 0o600)
    return cert, key


# ---- ports ----

def free_port_on(*ips):
    """A TCP port that is free on every one of ips (e.g. "127.0.0.2", "127.0.0.3") at once."""
    return free_port(*ips)


def port_open(ip, port, timeout=0.5):
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return True
    except OSError:
        return False


# ---- what the MTA saw ----

class Connection:
    def __init__(self, peer, local):
        self.peer = peer  # (ip, port) of the client
        self.local = local  # (ip, port) it connected to
        self.ehlo = None  # the last EHLO/HELO name
        self.starttls = False  # the client sent STARTTLS
        self.tls = None  # the TLS version once a handshake completed ("TLSv1.3"), else None
        self.closed = False
        self.counted = False  # recorded (not the controller's own check at start)

    def __repr__(self):
        return "<Connection %s ehlo=%s starttls=%s tls=%s>" % (self.peer, self.ehlo, self.starttls, self.tls)


class Transaction:
    """One transaction, from an accepted MAIL FROM on."""

    def __init__(self, conn, mail_from):
        self.conn = conn
        self.peer = conn.peer
        self.ehlo = conn.ehlo
        self.tls = conn.tls  # at MAIL FROM
        self.mail_from = mail_from  # "" for the null sender
        self.rcpts = []  # accepted recipients, in order
        self.rcpts_tried = []  # every RCPT TO address, in order
        self.data = None  # the message content (dot-unstuffed, CRLF) once DATA ended
        self.reply = None  # what the end of DATA was answered with (None: not answered)
        self.stalled = False

    def __repr__(self):
        return "<Transaction from=%r rcpts=%r tls=%s reply=%r size=%s>" % (
            self.mail_from, self.rcpts, self.tls, self.reply, None if self.data is None else len(self.data))


# ---- the server ----

class _Session(SMTP):
    """aiosmtpd's SMTP with the few things its handler hooks cannot do: another greeting, a broken
    STARTTLS, and a record of each connection."""

    def __init__(self, mta, *args, **kwargs):
        self.mta = mta
        self.record = None
        super().__init__(*args, **kwargs)

    def connection_made(self, transport):
        first = self.record is None
        super().connection_made(transport)
        if first:
            peer = transport.get_extra_info("peername")
            local = transport.get_extra_info("sockname")
            self.record = Connection(tuple(peer[:2]) if peer else None, tuple(local[:2]) if local else None)
            self.mta._add_connection(self.record)
        elif self.session.ssl is not None:
            obj = self.session.ssl.get("ssl_object")
            self.record.tls = obj.version() if obj is not None else "unknown"

    def connection_lost(self, error):
        if self.record is not None and not self.record.closed:
            self.record.closed = True
            self.mta._connection_closed(self.record)
        super().connection_lost(error)

    async def _handle_client(self):
        greeting = self.mta.greeting
        if not greeting or greeting.startswith("220"):
            return await super()._handle_client()
        try:
            await self.push(greeting)
            if greeting.startswith("421"):
                self.transport.close()
                return
            deadline = time.monotonic() + 30
            while self.transport is not None and time.monotonic() < deadline:
                line = await asyncio.wait_for(self._reader.readuntil(b"\n"), timeout=30)
                if line.strip().upper() == b"QUIT":
                    await self.push("221 2.0.0 Bye")
                    break
                await self.push("503 5.5.1 No service here")
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError, asyncio.LimitOverrunError):
            pass
        if self.transport is not None:
            self.transport.close()

    async def smtp_STARTTLS(self, arg):
        self.record.starttls = True
        if not self.mta.broken_tls:
            return await super().smtp_STARTTLS(arg)
        await self.push("220 2.0.0 Ready to start TLS")
        self.transport.write(b"this is not a TLS record, and it never will be\r\n" * 4)
        self.transport.close()


class _Handler:
    def __init__(self, mta):
        self.mta = mta

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        server.record.ehlo = hostname
        session.host_name = hostname
        return responses

    async def handle_HELO(self, server, session, envelope, hostname):
        server.record.ehlo = hostname
        session.host_name = hostname
        return "250 %s" % server.hostname

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        sender = "" if address == "<>" else address  # aiosmtpd hands the null sender over as "<>"
        reply = self.mta.mail_replies.get(sender.lower(), "250 2.1.0 Ok")
        if reply.startswith("2"):
            envelope.mail_from = address
            envelope.mail_options.extend(mail_options)
            envelope.fixture_tx = Transaction(server.record, sender)
            self.mta._add_transaction(envelope.fixture_tx)
        return reply

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        tx = getattr(envelope, "fixture_tx", None)
        if tx is not None:
            tx.rcpts_tried.append(address)
        reply = self.mta._rcpt_reply(address)
        if reply.startswith("2"):
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(rcpt_options)
            if tx is not None:
                tx.rcpts.append(address)
        return reply

    async def handle_DATA(self, server, session, envelope):
        tx = getattr(envelope, "fixture_tx", None)
        if tx is None:  # cannot happen after a 2xx to MAIL, but never answer 250 blindly
            return "451 4.3.0 fixture lost the transaction"
        tx.data = bytes(envelope.original_content)
        reply, stall = self.mta._data_reply(tx)
        if self.mta.data_delay > 0:
            await asyncio.sleep(self.mta.data_delay)
        if stall:
            tx.stalled = True
            deadline = time.monotonic() + self.mta.stall_timeout
            while not self.mta._released.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)  # cancelled when the client goes away
        tx.reply = reply
        return reply


class MTA:
    def __init__(self, ip, port, tls_cert=None, starttls=False, broken_tls=False, greeting=None,
                 mail_replies=None, rcpt_replies=None, data_replies=None, stall=0, hostname=None,
                 stall_timeout=60.0, data_delay=0.0):
        self.ip = ip
        self.port = port
        self.hostname = hostname or "mta-%s.fixture.test" % ip.replace(".", "-")
        self.greeting = greeting
        self.broken_tls = broken_tls
        self.mail_replies = {k.lower(): v for k, v in (mail_replies or {}).items()}
        self.rcpt_replies = {k.lower(): v for k, v in (rcpt_replies or {}).items()}
        self.data_replies = list(data_replies or [])
        self.stall = stall
        self.stall_timeout = stall_timeout
        self.data_delay = data_delay
        self.max_open = 0  # the most connections open at the same time
        self._open = 0
        self._released = threading.Event()
        self._lock = threading.Lock()
        self._connections = []
        self._transactions = []
        self._data_ends = 0
        self._recording = False
        self.tls_context = None
        if starttls or broken_tls:
            if tls_cert is None:
                raise ValueError("STARTTLS needs tls_cert=(cert, key)")
            self.tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls_context.load_cert_chain(*tls_cert)
        handler = _Handler(self)
        mta = self

        class _Controller(Controller):
            def factory(self):
                return _Session(mta, self.handler, **self.SMTP_kwargs)

        self._controller = _Controller(handler, hostname=ip, port=port, server_hostname=self.hostname,
                                       tls_context=self.tls_context, require_starttls=False,
                                       auth_require_tls=True, decode_data=False, enable_SMTPUTF8=True,
                                       ready_timeout=10)

    # ---- life ----

    def start(self):
        self._controller.start()
        # Controller.start() connects once to make sure the server is up: that one is not recorded
        with self._lock:
            self._connections.clear()
            self._recording = True
        return self

    def stop(self):
        self._released.set()
        if self._controller._thread is not None:
            self._controller.stop()

    # ---- scripting at run time ----

    def release(self):
        """Lets stalled DATA ends be answered (and every later one go through at once)."""
        self._released.set()

    def _rcpt_reply(self, address):
        with self._lock:
            return self.rcpt_replies.get(address.lower(), "250 2.1.5 Ok")

    def _data_reply(self, tx):
        with self._lock:
            n = self._data_ends
            self._data_ends += 1
            reply = self.data_replies[n] if n < len(self.data_replies) else OK_DATA
            return reply, n < self.stall and not self._released.is_set()

    def _add_transaction(self, tx):
        with self._lock:
            self._transactions.append(tx)

    def _add_connection(self, conn):
        with self._lock:
            if self._recording:
                self._connections.append(conn)
                conn.counted = True
                self._open += 1
                self.max_open = max(self.max_open, self._open)

    def _connection_closed(self, conn):
        with self._lock:
            if conn.counted:
                self._open -= 1

    # ---- what it saw ----

    @property
    def transactions(self):
        """Every transaction whose MAIL FROM was accepted, in order: refused at every RCPT (rcpts
        empty, rcpts_tried not), still in DATA (data None), stalled, refused or accepted."""
        with self._lock:
            return list(self._transactions)

    def accepted(self):
        """The transactions this MTA answered with 2xx at the end of DATA."""
        return [t for t in self.transactions if t.reply is not None and t.reply.startswith("2")]

    @property
    def connections(self):
        with self._lock:
            return list(self._connections)

    def _wait(self, cond, timeout):
        deadline = time.monotonic() + timeout
        while True:
            value = cond()
            if value or time.monotonic() >= deadline:
                return value
            time.sleep(0.02)

    def wait_transactions(self, n=1, timeout=15.0, accepted=True):
        """At least n transactions (those answered 2xx at the end of DATA unless accepted=False),
        or what there is after timeout."""
        pick = self.accepted if accepted else (lambda: self.transactions)
        got = self._wait(lambda: pick() if len(pick()) >= n else None, timeout)
        return got if got is not None else pick()

    def wait_stalled(self, timeout=15.0):
        """The first transaction held by stall, once its content has arrived (None after timeout)."""
        return self._wait(lambda: next((t for t in self.transactions if t.stalled), None), timeout)

    def wait_connections(self, n=1, timeout=15.0):
        got = self._wait(lambda: self.connections if len(self.connections) >= n else None, timeout)
        return got if got is not None else self.connections


class MTAs:
    """Starts MTAs for one test and stops them all at its end; makes one certificate on demand."""

    def __init__(self, directory):
        self.directory = str(directory)
        self._cert = None
        self.started = []

    def cert(self):
        if self._cert is None:
            self._cert = self_signed_cert(os.path.join(self.directory, "mta-tls"))
        return self._cert

    def start(self, ip, port, **kw):
        if (kw.get("starttls") or kw.get("broken_tls")) and "tls_cert" not in kw:
            kw["tls_cert"] = self.cert()
        m = MTA(ip, port, **kw).start()
        self.started.append(m)
        return m

    def stop_all(self):
        for m in self.started:
            m.stop()
        self.started.clear()


@pytest.fixture
def mtas(tmp_path):
    f = MTAs(tmp_path)
    try:
        yield f
    finally:
        f.stop_all()


# ---- sending through mailwerk and watching what it does ----

def wait_for(cond, timeout=15.0, interval=0.05):
    """cond()'s first truthy value, polled until timeout; then its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(interval)
    return cond()


def holds_for(cond, seconds, interval=0.05):
    """True when cond() stays true for the whole of seconds (a bounded watch, for "nothing more
    happens" checks); False at the first time it does not."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not cond():
            return False
        time.sleep(interval)
    return bool(cond())


def insecure_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def message(marker, extra=b""):
    """A small message that can be recognised anywhere by marker."""
    m = marker.encode() if isinstance(marker, str) else marker
    return (b"From: <demo@mailwerk.test>\r\nSubject: " + m + b"\r\nMessage-ID: <" + m + b"@client.test>\r\n"
            + extra + b"\r\nbody of " + m + b"\r\n.leading dot\r\n")


def _queued_id(reply):
    found = re.search(rb"queued as ([0-9A-Z]+)", reply)
    assert found, "no queue id in %r" % reply
    return found.group(1).decode()


def submit(server, rcpts, body, sender=None, user=None, password=None, implicit_tls=True, mail_options=()):
    """Sends a message as an authenticated user (the server's demo user unless told) through
    submissions (implicit TLS) or submission (STARTTLS), with mail_options on MAIL FROM; returns
    its queue id."""
    import smtplib
    user = user or server.user
    password = password or server.password
    sender = user if sender is None else sender
    if implicit_tls:
        m = smtplib.SMTP_SSL(server.host("submissions"), server.submissions_port, context=insecure_context(),
                             timeout=30)
    else:
        m = smtplib.SMTP(server.host("submission"), server.submission_port, timeout=30)
    with m:
        m.ehlo("client.test")
        if not implicit_tls:
            m.starttls(context=insecure_context())
            m.ehlo("client.test")
        m.login(user, password)
        code, reply = m.mail(sender, list(mail_options))
        assert code == 250, (code, reply)
        for r in rcpts:
            code, reply = m.rcpt(r)
            assert code == 250, (r, code, reply)
        code, reply = m.data(body)
        assert code == 250, (code, reply)
        return _queued_id(reply)


def send_inbound(server, sender, rcpts, body):
    """Sends a message to the server's inbound (MX) listener, no authentication; returns its queue id."""
    import smtplib
    with smtplib.SMTP(server.host("smtp"), server.smtp_port, timeout=30) as m:
        m.ehlo("client.test")
        code, reply = m.mail(sender)
        assert code == 250, (code, reply)
        for r in rcpts:
            code, reply = m.rcpt(r)
            assert code == 250, (r, code, reply)
        code, reply = m.data(body)
        assert code == 250, (code, reply)
        return _queued_id(reply)


DELIVERY_WAIT = 20.0  # the longest wait for one outcome of outbound delivery in the helpers below


def mx_records(dns, domain, *hosts):
    """MX records for domain in the DNS fixture dns: hosts are (preference, host name, IPv4 address
    or None for a host without one)."""
    dns.load({domain: {"MX": ["%d %s." % (pref, name) for pref, name, _ in hosts]}})
    for _, name, ip in hosts:
        if ip is not None:
            dns.load({name: {"A": ip}})


def start_sender(servers, dns, port, **keys):
    """The mailwerk under test (made by the conftest `servers` fixture), resolving through the DNS
    fixture dns, delivering to port on every MX host and retrying every second; keys are more -o
    settings given as **{"section.key": value}."""
    overrides = {"dns.resolver": dns.resolver, "delivery.remote_port": str(port),
                 "delivery.retry_schedule": "1s"}
    overrides.update(keys)
    return servers.make("sender", overrides).start()


def delivered(server, rcpt, timeout=DELIVERY_WAIT):
    """The event=delivered log line for rcpt, waiting for it."""
    found = wait_for(lambda: log_events(server, "delivered", rcpt=rcpt), timeout)
    assert found, "no event=delivered rcpt=%s in the log:\n%s" % (rcpt, server.log_text()[-4000:])
    return found[-1]


def queue_rcpts(server):
    """{address: recipient entry of `queue list --json`} over every queued message."""
    return {r["address"]: r for e in server.queue() for r in e["recipients"]}


def wait_queue_empty(server, timeout=DELIVERY_WAIT):
    assert wait_for(lambda: server.queue() == [], timeout), server.queue()


def no_bounces(server):
    """No DSN was made: none logged, none in the sending user's Maildir."""
    assert log_events(server, "bounce") == [], server.log_text()[-3000:]
    local, domain = server.user.split("@")
    assert reports(server.dir, domain, local) == []


_FIELD = re.compile(r'([A-Za-z_][\w.-]*)=("(?:[^"\\]|\\.)*"|\S*)')


_ESCAPE = re.compile(r"\\x([0-9a-fA-F]{2})|\\(.)")


def parse_log_line(line):
    """A logfmt line as a dict: quoted values unquoted, and the escapes the server writes inside
    quotes (\\" and \\\\, \\xNN for a control octet or one that is not UTF-8) turned back."""
    out = {}
    for key, value in _FIELD.findall(line):
        # logfmt: a bare value is literal, escapes live only inside quotes
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)) if m.group(1) else m.group(2), value[1:-1])
        out[key] = value
    return out


def log_events(server, event=None, **match):
    """The server's log lines with event=event (any event when None) whose fields equal match, as
    dicts in order. A field name that is a Python keyword can be given with a trailing _ (from_)."""
    found = []
    for line in server.log_text().splitlines():
        if "event=" not in line:
            continue
        f = parse_log_line(line)
        if event is not None and f.get("event") != event:
            continue
        if all(f.get(k.rstrip("_")) == v for k, v in match.items()):
            found.append(f)
    return found


def maildir(data_dir, domain, user):
    """The messages in new/ of a local user's Maildir under data_dir, oldest name first, as bytes."""
    import glob
    paths = sorted(glob.glob(os.path.join(data_dir, "mail", domain, user, "new", "*")))
    out = []
    for path in paths:
        try:
            with open(path, "rb") as f:
                out.append(f.read())
        except FileNotFoundError:  # moved to cur/ meanwhile
            pass
    return out


def reports(data_dir, domain, user):
    """The DSNs (multipart/report) in a local user's Maildir, parsed by Python's email package."""
    import email
    import email.policy
    out = []
    for raw in maildir(data_dir, domain, user):
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        if msg.get_content_type() == "multipart/report":
            out.append(msg)
    return out


def report_parts(dsn):
    """(per-message fields, [per-recipient fields]) of a DSN's message/delivery-status part."""
    status = [p for p in dsn.iter_parts() if p.get_content_type() == "message/delivery-status"]
    assert len(status) == 1, dsn.as_string()[:2000]
    blocks = status[0].get_payload()
    assert isinstance(blocks, list) and len(blocks) >= 2, dsn.as_string()[:2000]
    return blocks[0], blocks[1:]


__all__ = ["MTA", "MTAs", "mtas", "free_port_on", "port_open", "self_signed_cert", "make_ca", "ca_signed_cert",
           "Transaction", "Connection", "OK_DATA", "wait_for", "holds_for", "insecure_context", "message", "submit",
           "send_inbound", "parse_log_line", "log_events", "maildir", "reports", "report_parts", "DELIVERY_WAIT",
           "mx_records", "start_sender", "delivered", "queue_rcpts", "wait_queue_empty", "no_bounces"]
