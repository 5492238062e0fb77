"""Load: 10,000 idle SMTP sessions held open at once (and 300 idle implicit-TLS ones), then 1,000
sessions each sending a message at the same time, while a normal client still gets its greeting and
sends. The worker's memory per idle session is printed (this build's figure: the sanitizer build
used by the tests weighs more than the release build the README's figures come from)."""
import asyncio
import resource
import socket
import ssl
import time

import pytest

from conftest import DOMAIN, Server, rss_kib

# thousands of sessions and the worker's memory: alone, or other tests share the machine's load
pytestmark = pytest.mark.serial

IDLE = 10000
IDLE_TLS = 300
ACTIVE = 1000


def settled_rss(pid, seconds=1.0):
    """The RSS once it has stopped growing for a moment, or after 5 s. Under ASan it never quite
    stops: the quarantine keeps what the idle worker's timers free, about 0.5 MiB a second, so a
    longer wait would only add that creep to the figures printed (nothing asserts on them)."""
    last = rss_kib(pid)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        time.sleep(seconds)
        now = rss_kib(pid)
        if abs(now - last) < 256:
            return now
        last = now
    return last


def read_greetings(socks, timeout=60):
    """Reads the greeting line of every socket (non-blocking, all at once); how many were 220."""
    import selectors
    sel = selectors.DefaultSelector()
    pending = {}
    for sk in socks:
        sk.setblocking(False)
        sel.register(sk, selectors.EVENT_READ)
        pending[sk] = b""
    ok = 0
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1):
            sk = key.fileobj
            try:
                data = sk.recv(512)
            except (BlockingIOError, ssl.SSLWantReadError):
                continue
            pending[sk] += data
            if b"\n" in pending[sk] or not data:
                ok += pending[sk].startswith(b"220 ")
                sel.unregister(sk)
                del pending[sk]
    sel.close()
    return ok


async def one_transaction(port, n):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    try:
        async def reply():
            while True:
                line = await r.readline()
                if not line or line[3:4] != b"-":
                    return line
        assert (await reply()).startswith(b"220")
        w.write(b"EHLO load%d.example\r\n" % n)
        assert (await reply()).startswith(b"250")
        w.write(b"MAIL FROM:<load%d@example.org>\r\nRCPT TO:<demo@%s>\r\nDATA\r\n" % (n, DOMAIN.encode()))
        for expect in (b"250", b"250", b"354"):
            line = await reply()
            assert line.startswith(expect), line
        w.write(b"Subject: load %d\r\n\r\nactive session %d\r\n.\r\nQUIT\r\n" % (n, n))
        line = await reply()
        assert line.startswith(b"250"), line
        return True
    finally:
        w.close()


async def active_sessions(port, count):
    results = await asyncio.gather(*(one_transaction(port, n) for n in range(count)), return_exceptions=True)
    return [r for r in results if r is not True]


def test_10000_idle_and_1000_active_sessions(tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = IDLE + IDLE_TLS + ACTIVE + 500
    if hard < need:
        pytest.skip("the descriptor hard limit (%d) is below the %d this test holds" % (hard, need))
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # a budget these sessions fill to less than 80%: the overload mode's shorter timeouts stay off
    s = Server(tmp_path, overrides=["server.max_connections=%d" % (2 * need), "server.max_connections_per_ip=0"]).start()
    idle, tls_idle = [], []
    try:
        worker = s.worker_pid()
        # warm: the first sessions allocate what every later one reuses
        warm = [socket.create_connection(("127.0.0.1", s.smtp_port)) for _ in range(50)]
        assert read_greetings(warm) == 50
        for sk in warm:
            sk.close()
        base = settled_rss(worker)
        for _ in range(IDLE):
            idle.append(socket.create_connection(("127.0.0.1", s.smtp_port), timeout=30))
        assert read_greetings(idle) == IDLE
        plain = settled_rss(worker)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        for _ in range(IDLE_TLS):
            tls_idle.append(ctx.wrap_socket(socket.create_connection(("127.0.0.1", s.submissions_port), timeout=30)))
        assert read_greetings(tls_idle) == IDLE_TLS
        with_tls = settled_rss(worker)
        # a normal client is served at once while all of them are held
        t0 = time.monotonic()
        c = socket.create_connection(("127.0.0.1", s.smtp_port), timeout=30)
        assert c.recv(512).startswith(b"220 ")
        greeting_s = time.monotonic() - t0
        c.close()
        failures = asyncio.run(active_sessions(s.smtp_port, ACTIVE))
        assert not failures, failures[:5]
        assert s.log_text().count("event=accepted") >= ACTIVE
        print("load: %d idle plain sessions %.1f KiB each, %d idle TLS %.1f KiB each (worker RSS %d -> %d -> %d KiB);"
              " a new client's greeting in %.3f s; %d active sessions all accepted"
              % (IDLE, (plain - base) / IDLE, IDLE_TLS, (with_tls - plain) / IDLE_TLS, base, plain, with_tls,
                 greeting_s, ACTIVE))
    finally:
        for sk in idle + tls_idle:
            sk.close()
        s.stop()
