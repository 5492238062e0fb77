"""Connection and session limits: max_connections_per_ip, max_connections, max_errors and the
command/data timeouts, each on a server of its own started with -o overrides."""
import contextlib
import os
import socket
import subprocess
import sys
import time

import pytest

import conftest
from conftest import rss_kib

from smtpwire import Raw, in_data

RCPT = "demo@mailwerk.test"


@contextlib.contextmanager
def limited_server(tmp_path, *overrides):
    s = conftest.Server(tmp_path, overrides=list(overrides)).start()
    try:
        yield s
    finally:
        s.stop()


def greeted(port):
    c = Raw(port)
    c.expect(220)
    return c


def held_conn(port):
    """A connection that counts towards the limits, greeted (a refusal is retried: the slot of a
    connection that closed just before is freed asynchronously)."""
    return wait_accepted(port)


def assert_refused(port, text):
    c = Raw(port)
    try:
        ln = c.line()
        assert ln is not None and ln.startswith("421 4.7.0 ") and text in ln, ln
        assert c.line() is None, "the refused connection stayed open"
    finally:
        c.close()


def wait_accepted(port, timeout=10.0):
    """A freed slot is released asynchronously: retry (bounded) until a connection is greeted."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        c = Raw(port)
        ln = c.line()
        if ln is not None and ln.startswith("220 "):
            return c
        c.close()
        last = ln
        time.sleep(0.05)
    raise AssertionError("no connection accepted after a slot was freed; last reply %r" % last)


def test_max_connections_per_ip(tmp_path):
    with limited_server(tmp_path, "server.max_connections_per_ip=3") as s:
        held = [held_conn(s.smtp_port), held_conn(s.submission_port), held_conn(s.smtp_port)]
        try:
            assert_refused(s.smtp_port, "from your address")
            assert_refused(s.submission_port, "from your address")  # counted across listeners
            assert_refused(s.submissions_port, "from your address")
            # the held sessions are unaffected
            for c in held:
                c.expect(250, "NOOP\r\n")
            held.pop().close()
            held.append(wait_accepted(s.smtp_port))
            held[-1].expect(250, "EHLO x.example\r\n")
            assert_refused(s.smtp_port, "from your address")
        finally:
            for c in held:
                c.close()
        assert "event=refused reason=max_connections_per_ip" in s.log_text()


# An IPv6 network of our own: one server address and clients in two /64s, on the loopback of a
# network namespace the test makes (nothing of the machine's network is touched).
NETNS_SERVER = "fd00:6d77::1"
NETNS_CLIENTS = ["fd00:6d77::%x" % i for i in range(0x10, 0x16)] + ["fd00:6d77:0:1::10"]


def ipv6_greeting(src, port):
    """The first line a connection from src gets, and the socket (left open: it counts)."""
    c = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    c.settimeout(10)
    c.bind((src, 0))
    c.connect((NETNS_SERVER, port))
    line = c.makefile("rb").readline().decode()
    return line, c


def test_ipv6_client_counted_by_its_prefix(tmp_path):
    """A client rotating addresses inside its /64 is one client for max_connections_per_ip; an
    address in the next /64 is another."""
    if os.environ.get("MAILWERK_NETNS") != "1":
        if os.geteuid() != 0:
            pytest.skip("a network namespace needs root")
        setup = ["ip link set lo up", "ip -6 addr add %s/64 dev lo nodad" % NETNS_SERVER]
        setup += ["ip -6 addr add %s/64 dev lo nodad" % a for a in NETNS_CLIENTS]
        script = " && ".join(setup) + ' && exec "$@"'
        p = subprocess.run(["unshare", "--net", "sh", "-c", script, "sh", sys.executable, "-m", "pytest", "-q",
                            "-p", "no:cacheprovider", "%s::test_ipv6_client_counted_by_its_prefix" % __file__],
                           env=dict(os.environ, MAILWERK_NETNS="1"), capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
        return
    s = conftest.Server(tmp_path, overrides=["server.max_connections_per_ip=3"],
                        listen={"smtp": (NETNS_SERVER, conftest.free_port())}).start()
    held = []
    try:
        line, c = ipv6_greeting(NETNS_CLIENTS[0], s.smtp_port)
        held.append(c)
        assert line.startswith("220 "), line
        for src in NETNS_CLIENTS[1:3]:  # new addresses, same /64
            line, c = ipv6_greeting(src, s.smtp_port)
            held.append(c)
            assert line.startswith("220 "), (src, line)
        for src in NETNS_CLIENTS[3:6]:
            line, c = ipv6_greeting(src, s.smtp_port)
            c.close()
            assert line.startswith("421 4.7.0 ") and "from your address" in line, (src, line)
        line, c = ipv6_greeting(NETNS_CLIENTS[6], s.smtp_port)  # the next /64: another client
        held.append(c)
        assert line.startswith("220 "), line
    finally:
        for c in held:
            c.close()
        s.stop()
    assert "event=refused reason=max_connections_per_ip client=fd00:6d77::13" in s.log_text()


def test_max_connections(tmp_path):
    with limited_server(tmp_path, "server.max_connections=2") as s:
        held = [held_conn(s.smtp_port), held_conn(s.submission_port)]
        try:
            assert_refused(s.smtp_port, "Too many connections")
            assert_refused(s.submission_port, "Too many connections")
            for c in held:
                c.expect(250, "NOOP\r\n")
            held[0].expect(221, "QUIT\r\n")
            assert held[0].line() is None
            held[0].close()
            held[0] = wait_accepted(s.smtp_port)
            assert_refused(s.submissions_port, "Too many connections")
        finally:
            for c in held:
                c.close()
        assert "event=refused reason=max_connections " in s.log_text()


def test_max_errors_same_command(tmp_path):
    with limited_server(tmp_path, "smtp.max_errors=3") as s:
        c = greeted(s.smtp_port)
        try:
            c.expect(250, "EHLO x.example\r\n")
            c.expect(500, "FOO\r\n")
            c.expect(500, "FOO\r\n")
            c.send("FOO\r\n")
            assert c.reply()[0] == 500
            code, lines = c.reply()
            assert code == 421 and lines[0].startswith("421 4.7.0"), lines
            assert c.line() is None, "the connection stayed open after 421"
        finally:
            c.close()


def test_max_errors_mixed_mistakes(tmp_path):
    with limited_server(tmp_path, "smtp.max_errors=3") as s:
        c = greeted(s.smtp_port)
        try:
            c.expect(250, "EHLO x.example\r\n")
            c.expect(503, "RCPT TO:<%s>\r\n" % RCPT)         # no MAIL yet
            c.expect(250, "NOOP\r\n")                         # a good command in between
            c.expect(553, "MAIL FROM:not-an-address\r\n")     # bad sender syntax
            c.send("RCPT TO:<someone@elsewhere.example>\r\n")  # 503 again: still no MAIL
            assert c.reply()[0] == 503
            code, lines = c.reply()
            assert code == 421 and lines[0].startswith("421 4.7.0"), lines
            assert c.line() is None
        finally:
            c.close()
        # other clients are unaffected
        c = greeted(s.smtp_port)
        try:
            c.expect(250, "EHLO y.example\r\n")
            c.expect(221, "QUIT\r\n")
        finally:
            c.close()


def test_command_timeout(tmp_path):
    with limited_server(tmp_path, "smtp.command_timeout=2s") as s:
        idle = greeted(s.smtp_port)  # idle right after the greeting
        mid = greeted(s.smtp_port)   # idle inside a transaction
        try:
            mid.expect(250, "EHLO x.example\r\n")
            mid.expect(250, "MAIL FROM:<a@example.org>\r\n")
            for c in (idle, mid):
                code, lines = c.reply()  # bounded by the 15 s socket timeout
                assert code == 421 and lines[0].startswith("421 4.4.2"), lines
                assert c.line() is None, "the connection stayed open after the timeout"
        finally:
            idle.close()
            mid.close()
        assert s.log_text().count("reason=timeout") == 2


def test_data_timeout(tmp_path):
    with limited_server(tmp_path, "smtp.data_timeout=2s") as s:
        c = greeted(s.smtp_port)
        try:
            c.expect(250, "EHLO x.example\r\n")
            c.expect(250, "MAIL FROM:<a@example.org>\r\n")
            c.expect(250, "RCPT TO:<%s>\r\n" % RCPT)
            c.expect(354, "DATA\r\n")
            c.send("Subject: stalled\r\n\r\nhalf a message\r\n")
            code, lines = c.reply()
            assert code == 421 and lines[0].startswith("421 4.4.2"), lines
            assert c.line() is None
        finally:
            c.close()
        assert s.messages() == {}


@pytest.mark.serial  # the worker's RSS is measured
def test_memory_in_flight_is_bounded(tmp_path, monkeypatch):
    """Many sessions each sending a large message without its final dot cannot make the server hold
    more than [server] max_memory_in_flight: past it, content is dropped and the message answered
    452 4.3.1 (try later), a new DATA is refused with 452 4.3.1, and once the sessions are answered
    the memory is free again for the next message."""
    # freed memory is not kept back by the sanitizer's quarantine, so the RSS shows what is held
    monkeypatch.setenv("ASAN_OPTIONS", os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=4")
    # 168 MiB asked for, 24 allowed: three messages fit, and then less than an eighth is left
    budget_mib, sessions, each_mib = 24, 24, 7
    with limited_server(tmp_path, "server.max_memory_in_flight=%dM" % budget_mib) as s:
        c = Raw(s.smtp_port)
        c.expect(220)
        c.expect(250, "EHLO warm.example\r\n")
        base = rss_kib(s.worker_pid())
        clients = []
        try:
            line = b"x" * 998 + b"\r\n"
            chunk = line * 1049  # a little over 1 MiB
            for i in range(sessions):
                k = in_data(s.smtp_port, RCPT, helo="c%d.example" % i)
                # no empty line: a header section that never ends stays in memory (a body would go to the spool)
                k.send(b"Subject: big %d\r\n" % i)
                clients.append(k)
            fit = budget_mib // each_mib
            for k in clients[:fit]:  # these fill the budget ...
                for _ in range(each_mib):
                    k.send(chunk)
            time.sleep(0.5)
            # ... so another client's new message meets a full budget
            c.expect(250, "MAIL FROM:<a@example.org>\r\n")
            c.expect(250, "RCPT TO:<%s>\r\n" % RCPT)
            lines = c.expect(452, "DATA\r\n")
            assert lines[0].startswith("452 4.3.1 "), lines
            c.expect(250, "RSET\r\n")
            for _ in range(each_mib):  # and the messages already begun find no room, a MiB at a time
                for k in clients[fit:]:
                    k.send(chunk)
            # the server has read everything it was sent (sendall returned; give it a moment)
            time.sleep(1.0)
            held_kib = rss_kib(s.worker_pid()) - base
            codes = []
            for k in clients:
                code, lines = k.cmd("\r\n.")
                codes.append((code, lines[0][:9]))
        finally:
            for k in clients:
                k.close()
        accepted = sum(1 for code, _ in codes if code == 250)
        refused = [x for x in codes if x[0] != 250]
        assert all(x == (452, "452 4.3.1") for x in refused), codes
        assert accepted == budget_mib // each_mib, codes  # those that fit; the rest come back later
        # what the sessions held stayed within the budget (plus the server's own working memory)
        assert held_kib < (budget_mib + 40) * 1024, "RSS grew by %d KiB" % held_kib
        # answered and freed: the next message fits again
        c.expect(250, "MAIL FROM:<a@example.org>\r\n")
        c.expect(250, "RCPT TO:<%s>\r\n" % RCPT)
        c.expect(354, "DATA\r\n")
        c.expect(250, b"Subject: after\r\n" + chunk + b".\r\n")
        c.close()
        assert "event=refused reason=max_memory_in_flight" in s.log_text()


@pytest.mark.serial  # the worker's RSS is measured
def test_large_messages_go_to_the_spool_not_memory(tmp_path, monkeypatch):
    """200 sessions each sending 20 MB without the final dot: past 256 KiB each body goes on into a
    spool file, so the server's memory does not grow with them (none is refused for memory); the
    ones that finish are stored whole, the ones that leave take their spool with them, and no spool
    file ever has a name."""
    import shutil
    monkeypatch.setenv("ASAN_OPTIONS", os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=4")
    sessions, finished = 200, 5
    # 20 MB each where the disk has room for the spools (twice over); less on a small disk
    free_mib = shutil.disk_usage(str(tmp_path)).free // (1024 * 1024)
    each_mib = min(20, free_mib // (2 * sessions))
    if each_mib < 2:
        pytest.skip("%d MiB free: too little for %d spooled messages" % (free_mib, sessions))
    with limited_server(tmp_path, "server.max_memory_in_flight=64M", "delivery.hold=yes",
                        "server.max_connections_per_ip=0") as s:
        c = Raw(s.smtp_port)
        c.expect(220)
        c.expect(250, "EHLO warm.example\r\n")
        base = rss_kib(s.worker_pid())
        clients = []
        chunk = (b"y" * 998 + b"\r\n") * 1049
        try:
            for i in range(sessions):
                k = in_data(s.smtp_port, RCPT, helo="c%d.example" % i)
                k.send(b"Subject: spooled %d\r\n\r\n" % i)
                clients.append(k)
            for _ in range(each_mib):
                for k in clients:
                    k.send(chunk)
            time.sleep(1.0)
            held_kib = rss_kib(s.worker_pid()) - base
            # the spool files have no names: nothing in the directory even while they are written
            assert os.listdir(os.path.join(s.dir, "spool")) == []
            codes = [k.cmd("\r\n.")[0] for k in clients[:finished]]
        finally:
            for k in clients:
                k.close()
        assert codes == [250] * finished, codes
        assert held_kib < 64 * 1024, "RSS grew by %d KiB with %d x %d MiB in flight" % (held_kib, sessions, each_mib)
        sizes = [len(m["data"]) for m in s.messages().values()]
        assert len(sizes) == finished and min(sizes) > each_mib * 1024 * 1024, sizes
        c.expect(250, "NOOP\r\n")  # the server is well
        c.close()


def nofile_limit(soft, hard):
    """A preexec_fn that starts serve with these descriptor limits."""
    import resource
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def open_files_limit(pid):
    """(soft, hard) of the running process, from /proc."""
    for line in open("/proc/%d/limits" % pid):
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no Max open files line")


def test_descriptor_limit_is_raised_to_the_hard_limit(tmp_path):
    s = conftest.Server(tmp_path)
    s.preexec = nofile_limit(256, 4096)
    s.start()
    try:
        assert open_files_limit(s.worker_pid()) == (4096, 4096)
        assert "event=nofile_raised from=256 to=4096" in s.log_text()
    finally:
        s.stop()


def test_out_of_descriptors_refuses_and_recovers(tmp_path):
    """With every descriptor in use, a new client is told the server is busy and closed at once,
    rather than left in the backlog while the loop spins on a listener it cannot empty; once the
    sessions end, clients are served again."""
    s = conftest.Server(tmp_path, overrides=["server.max_connections=0", "server.max_connections_per_ip=0"])
    s.preexec = nofile_limit(128, 128)
    s.start()
    clients = []
    try:
        greeted_count = refused = 0
        for _ in range(160):  # more than the server has descriptors for
            c = Raw(s.smtp_port)
            clients.append(c)
            ln = c.line()
            if ln is not None and ln.startswith("220 "):
                greeted_count += 1
            else:
                assert ln is not None and ln.startswith("421 4.7.0 "), ln
                assert c.line() is None, "a refused connection stayed open"
                refused += 1
        assert greeted_count > 10 and refused > 10, (greeted_count, refused)
        assert "reason=out_of_descriptors" in s.log_text()
        # the sessions it holds still work
        clients[0].expect(250, "NOOP\r\n")
    finally:
        for c in clients:
            c.close()
    wait_accepted(s.smtp_port).close()
    s.stop()
