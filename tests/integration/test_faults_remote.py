"""Faults of the world outside, for outbound delivery: the DNS server mailwerk is configured with
gone (its port closed) or answering SERVFAIL, and a receiving MX that answers one octet per
second. Temporary trouble defers, never bounces (RFC 5321 §4.5.4.1); every wait for a remote
server is bounded by a [delivery] timeout (RFC 5321 §4.5.3.2), and one slow destination holds up
no other."""
import select
import socket
import threading
import time

import pytest

from dnsfixture import dns_server  # noqa: F401 (a fixture)
from mtafixture import (delivered, free_port_on, log_events, message, mtas, mx_records,  # noqa: F401
                        no_bounces, queue_rcpts, start_sender, submit, wait_for, wait_queue_empty)

# timeouts of a few seconds are what is tested: alone, where no other test adds load
pytestmark = pytest.mark.serial

SLOW_TIMEOUT = 5  # seconds: the [delivery] timeout the slow MX meets, a few of its octets long
ATTEMPTS = 3  # deferred attempts seen before the fault ends: several retries, none of them final
# Generous bounds for "eventually": each covers many times what the step takes on a quiet machine
# (a DNS failure is known in well under a second to unbound's own give-up of about 17 s).
DEFERRALS_WAIT = 120.0
RECOVERY_WAIT = 90.0
CUT_WAIT = 60.0  # for the slow MX's attempt to end, cut at SLOW_TIMEOUT


def deferred_attempts(server, rcpt):
    """The queue entry of rcpt while it is deferred after ATTEMPTS attempts or more, else None."""
    r = queue_rcpts(server).get(rcpt)
    return r if r is not None and r["state"] == "deferred" and r["attempts"] >= ATTEMPTS else None


# ---- the DNS server gone ----

@pytest.mark.parametrize("fault", ["stopped", "servfail"])
def test_dns_gone_defers_and_never_bounces_until_it_is_back(fault, dns_server, mtas, servers):  # noqa: F811
    """The configured resolver does not answer (stopped: its port is closed) or answers SERVFAIL
    for every name of the destination: each attempt defers the recipient with a temporary reason, on
    the 1 s retry schedule, and nothing fails or bounces however often it is tried. Once DNS answers
    again the mail is delivered."""
    port = free_port_on("127.0.0.2")
    mta = mtas.start("127.0.0.2", port)
    mx_records(dns_server, "far.test", (10, "mx.far.test", "127.0.0.2"))
    s = start_sender(servers, dns_server, port)
    if fault == "stopped":
        dns_server.stop()
    else:
        dns_server.servfail("far.test", "mx.far.test")
    rcpt = "bob@far.test"
    qid = submit(s, [rcpt], message("dns-gone-" + fault))

    r = wait_for(lambda: deferred_attempts(s, rcpt), DEFERRALS_WAIT)
    assert r, (s.queue(), s.log_text()[-3000:])
    assert r["last_error"].startswith("temporary DNS failure"), r
    deferrals = log_events(s, "deferred", rcpt=rcpt, queue_id=qid)
    assert len(deferrals) >= ATTEMPTS, s.log_text()[-3000:]
    for ev in deferrals:  # a temporary reason every time, never a verdict on the address
        assert ev["error"].startswith("temporary DNS failure") and ev["relay"] == "none", ev
    assert log_events(s, "failed") == []
    no_bounces(s)
    assert mta.connections == []  # no address, so no connection
    assert [e["id"] for e in s.queue()] == [qid]

    # DNS is back: the next attempt delivers, once, and nothing was bounced on the way
    if fault == "stopped":
        dns_server.restart()
    else:
        dns_server.clear()
        mx_records(dns_server, "far.test", (10, "mx.far.test", "127.0.0.2"))
    ev = delivered(s, rcpt, timeout=RECOVERY_WAIT)
    assert ev["queue_id"] == qid
    assert ev["relay"] == "mx.far.test[127.0.0.2]:%d" % port, ev
    txs = mta.wait_transactions(1)
    assert [t.rcpts for t in txs] == [[rcpt]], txs
    assert b"body of dns-gone-" + fault.encode() in txs[0].data
    wait_queue_empty(s)
    assert log_events(s, "failed") == []
    no_bounces(s)


# ---- a receiving MX that answers one octet per second ----

class TrickleConn:
    """What the slow MX saw of one connection."""

    def __init__(self, peer, total):
        self.peer = peer
        self.total = total  # octets of the text it was trickling
        self.sent = 0  # ... sent so far
        self.cut = False  # the client closed before the text was whole
        self.closed = False

    def __repr__(self):
        return "<TrickleConn %s sent=%d/%d cut=%s closed=%s>" % (self.peer, self.sent, self.total, self.cut,
                                                                self.closed)


class TrickleMX:
    """An MX on ip:port that answers one octet per interval: its 220 greeting (mode "greeting"), or,
    after a greeting at once, its reply to EHLO (mode "ehlo"). Whole, either text would take over a
    minute. Each connection has a thread, which ends when the client closes, when the text is all
    sent, or at stop(); nothing else is ever answered."""

    GREETING = b"220 slow.fixture.test ESMTP, answering one octet per second, please hold\r\n"
    EHLO = b"250-slow.fixture.test hello, eventually\r\n250-PIPELINING\r\n250 8BITMIME\r\n"

    def __init__(self, ip, port, mode, interval=1.0):
        assert mode in ("greeting", "ehlo")
        self.ip, self.port, self.mode, self.interval = ip, port, mode, interval
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._conns = []
        self._threads = []
        self._sock = None

    def start(self):
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((self.ip, self.port))
        self._sock.listen(16)
        self._sock.settimeout(0.1)
        t = threading.Thread(target=self._accept, name="trickle-accept", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self):
        self._stop.set()
        for t in list(self._threads):
            t.join(timeout=10)
        if self._sock is not None:
            self._sock.close()

    @property
    def connections(self):
        with self._lock:
            return list(self._conns)

    def open_connections(self):
        """Connections being trickled to now: sent some, neither cut nor done."""
        return [c for c in self.connections if c.sent > 0 and not c.closed]

    def _accept(self):
        while not self._stop.is_set():
            try:
                conn, peer = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            text = self.GREETING if self.mode == "greeting" else self.EHLO
            rec = TrickleConn(peer, len(text))
            with self._lock:
                self._conns.append(rec)
            t = threading.Thread(target=self._serve, args=(conn, rec, text), name="trickle", daemon=True)
            t.start()
            self._threads.append(t)

    def _client_closed(self, conn, seconds):
        """Waits up to seconds for the client; True once it has closed (or reset) the connection."""
        readable, _, _ = select.select([conn], [], [], seconds)
        if not readable:
            return False
        try:
            return conn.recv(4096) == b""  # anything else it sends is not answered
        except OSError:
            return True

    def _serve(self, conn, rec, text):
        try:
            if self.mode == "ehlo":
                conn.sendall(b"220 slow.fixture.test ESMTP\r\n")
                line = b""
                deadline = time.monotonic() + 30
                while not line.endswith(b"\n") and len(line) < 1000 and time.monotonic() < deadline:
                    if self._stop.is_set() or not select.select([conn], [], [], 0.1)[0]:
                        continue
                    chunk = conn.recv(1000)
                    if not chunk:
                        rec.cut = True
                        return
                    line += chunk
                if not line.upper().startswith((b"EHLO", b"HELO")):
                    return
            for i in range(len(text)):
                if self._stop.is_set():
                    return
                try:
                    conn.sendall(text[i:i + 1])
                except OSError:
                    rec.cut = True
                    return
                rec.sent += 1
                if self._client_closed(conn, self.interval):
                    rec.cut = rec.sent < rec.total
                    return
        except OSError:
            rec.cut = True
        finally:
            rec.closed = True
            conn.close()


@pytest.fixture
def trickle_mxs():
    started = []

    def start(ip, port, mode):
        m = TrickleMX(ip, port, mode).start()
        started.append(m)
        return m
    try:
        yield start
    finally:
        for m in started:
            m.stop()


@pytest.mark.parametrize("mode,key,waiting_for", [
    ("greeting", "delivery.greeting_timeout", "the greeting"),
    ("ehlo", "delivery.command_timeout", "EHLO"),
])
def test_slow_mx_is_cut_by_its_timeout_and_holds_up_no_other_domain(mode, key, waiting_for, dns_server, mtas,  # noqa: F811
                                                                     servers, trickle_mxs):
    """slow.test's MX trickles its greeting (or its reply to EHLO) an octet per second; fast.test's
    is a normal MTA. Mail for fast.test is delivered while the attempt at slow.test still hangs;
    that attempt is cut by the configured timeout long before the text would be whole (the timeout
    bounds the whole reply, not each read), and its recipient is deferred, never bounced."""
    port = free_port_on("127.0.0.2", "127.0.0.3")
    slow = trickle_mxs("127.0.0.2", port, mode)
    fast = mtas.start("127.0.0.3", port)
    mx_records(dns_server, "slow.test", (10, "mx.slow.test", "127.0.0.2"))
    mx_records(dns_server, "fast.test", (10, "mx.fast.test", "127.0.0.3"))
    s = start_sender(servers, dns_server, port, **{key: "%ds" % SLOW_TIMEOUT})

    slow_rcpt, fast_rcpt = "ann@slow.test", "bob@fast.test"
    q_slow = submit(s, [slow_rcpt], message("slow-" + mode))
    hanging = wait_for(slow.open_connections, CUT_WAIT)
    assert hanging, (slow.connections, s.log_text()[-3000:])
    first = hanging[0]

    # another domain meanwhile: delivered at once, while the slow attempt is still under way
    q_fast = submit(s, [fast_rcpt], message("fast-" + mode))
    ev = delivered(s, fast_rcpt)
    assert ev["queue_id"] == q_fast and ev["relay"] == "mx.fast.test[127.0.0.3]:%d" % port, ev
    assert not first.closed, "the slow attempt ended before the other domain's mail was delivered: %r" % first
    assert log_events(s, "smtp_out", queue_id=q_slow) == []
    assert [t.rcpts for t in fast.accepted()] == [[fast_rcpt]]

    # the slow attempt is cut by the timeout, well before the reply would have been whole
    out = wait_for(lambda: log_events(s, "smtp_out", queue_id=q_slow), CUT_WAIT)
    assert out, (slow.connections, s.log_text()[-3000:])
    assert out[0]["error"] == "timeout", out[0]
    assert "timeout while waiting for the reply to %s" % waiting_for in out[0]["why"], out[0]
    assert wait_for(lambda: first.closed, CUT_WAIT), first
    assert first.cut and 0 < first.sent < first.total, first

    # deferred with a temporary reason, never failed nor bounced
    deferred = wait_for(lambda: log_events(s, "deferred", rcpt=slow_rcpt), CUT_WAIT)
    assert deferred and deferred[0]["error"].startswith("451 4.4.2") and "timeout" in deferred[0]["error"], deferred
    r = queue_rcpts(s)[slow_rcpt]
    assert r["state"] == "deferred" and "timeout" in r["last_error"], r
    assert [e["id"] for e in s.queue()] == [q_slow]
    assert log_events(s, "failed") == []
    no_bounces(s)
    assert [t.rcpts for t in fast.accepted()] == [[fast_rcpt]]  # nothing of slow.test went elsewhere
