"""Upgrading a running server to the binary on disk (SIGUSR2, or `mailwerk serve --upgrade`): the
parent executes the new binary in its own place, keeping its pid and the listening sockets, starts
a new worker from it beside the old one and only then lets the old one drain. A client connecting
in a tight loop across the upgrade is greeted every time, never refused or reset; mail acknowledged
meanwhile is all there afterwards, delivered once. Each worker has its own DKIM signer: the new
one gets a new signer, the old one keeps its own until it has drained, and then that signer goes
too. An upgrade that cannot happen (no binary, a configuration the new binary refuses, a new worker
that dies before it is ready) leaves the old worker serving, with its signer, and says why."""
import hashlib
import json
import os
import poplib
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import threading
import time

import pytest

import conftest
from conftest import DOMAIN, Server, wait_gone
from dnsfixture import dns_server  # noqa: F401 (a fixture)
from mtafixture import insecure_context as insecure, submit
from test_auth import dkim_fields, dkimpy_verify, own_records, tag
from test_service import NotifySocket
from test_signer import body as signed_body, signed_copy

# a client connects in a tight loop across the upgrade and the drain is timed: alone, where no other
# test adds load
pytestmark = pytest.mark.serial

# the loop's bounds: it stops a second after the upgrade, or at these
LOOP_MAX_CONNECTIONS = 20000
LOOP_MAX_SECONDS = 90


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """A copy of the binary at a path of its own, which the server is started from (as from
    /usr/bin/mailwerk); the tests replace it there as a package would."""
    path = str(tmp_path / "bin" / "mailwerk")
    os.makedirs(os.path.dirname(path))
    shutil.copy2(conftest.BIN, path)
    monkeypatch.setattr(conftest, "BIN", path)
    return path


def install_new(path, marker):
    """Puts a different copy at path: another file (a new inode, the old one deleted once unused)
    with other content (octets after the ELF image change nothing it runs)."""
    tmp = path + ".new"
    shutil.copy2(path, tmp)
    with open(tmp, "ab") as f:
        f.write(b"\0mailwerk-test-build " + marker.encode())
    os.rename(tmp, path)
    return os.stat(path).st_ino


def exe_inode(pid):
    return os.stat("/proc/%d/exe" % pid).st_ino


def parent_of(pid):
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def status(s, binary=None):
    p = subprocess.run([binary or conftest.BIN, "status", "--json", "--no-dns", "-c", s.conf], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def upgrade(s, binary=None):
    """`mailwerk serve --upgrade -c CONF`, from binary (default: the one the server runs)."""
    return subprocess.run([binary or conftest.BIN, "serve", "--upgrade", "-c", s.conf], capture_output=True, text=True,
                          timeout=200)


def wait_log(s, pattern, timeout=30.0, after=0):
    deadline = time.monotonic() + timeout
    while True:
        m = re.compile(pattern).search(s.log_text(), after)
        if m:
            return m
        assert time.monotonic() < deadline, "no %r in:\n%s" % (pattern, s.log_text()[-4000:])
        time.sleep(0.01)


def greet_quit(port):
    """One connection: the greeting must be a 220; then QUIT. Raises on anything else."""
    c = socket.create_connection(("127.0.0.1", port), timeout=20)
    try:
        f = c.makefile("rb")
        line = f.readline()
        if not line.startswith(b"220 "):
            raise AssertionError("greeting %r" % line)
        c.sendall(b"QUIT\r\n")
        line = f.readline()
        if not line.startswith(b"221 "):
            raise AssertionError("QUIT answered %r" % line)
    finally:
        c.close()


class ConnectLoop:
    """A client connecting to port in a tight loop, one connection after the other, each greeted
    and closed with QUIT; every failure is kept with what it was."""

    def __init__(self, port):
        self.port = port
        self.count = 0
        self.failures = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        deadline = time.monotonic() + LOOP_MAX_SECONDS
        while not self.stop.is_set() and self.count < LOOP_MAX_CONNECTIONS and time.monotonic() < deadline:
            try:
                greet_quit(self.port)
            except (OSError, AssertionError) as e:  # refused, reset, timed out, or not greeted
                self.failures.append("%s: %s" % (type(e).__name__, e))
            self.count += 1


class MailLoop:
    """A client sending one message per connection in a loop; the queue ids of the 250s."""

    def __init__(self, port, subject):
        self.port = port
        self.subject = subject
        self.acked = []
        self.failures = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        n = 0
        while not self.stop.is_set() and n < 5000:
            n += 1
            try:
                with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as m:
                    self.acked.append(send_one(m, b"%s %d" % (self.subject, n)))
            except (smtplib.SMTPException, OSError) as e:
                self.failures.append("%s: %s" % (type(e).__name__, e))


def send_one(m, subject):
    """One message on an open session: its queue id from the 250."""
    m.ehlo_or_helo_if_needed()
    m.mail("a@example.org")
    m.rcpt("demo@mailwerk.test")
    code, text = m.data(b"Subject: " + subject + b"\r\n\r\nbody\r\n")
    assert code == 250, (code, text)
    return re.search(rb"queued as (\S+)", text).group(1).decode()


def deliveries(s):
    """Queue id -> how many copies of it are in the Maildirs."""
    counts = {}
    for root, _, files in os.walk(os.path.join(s.dir, "mail")):
        if os.path.basename(root) not in ("new", "cur"):
            continue
        for name in files:
            m = re.search(rb"\bid ([0-9A-Z]{20})\b", open(os.path.join(root, name), "rb").read())
            if m:
                counts[m.group(1).decode()] = counts.get(m.group(1).decode(), 0) + 1
    return counts


def wait_delivered(s, ids, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        got = deliveries(s)
        if all(i in got for i in ids):
            return got
        assert time.monotonic() < deadline, "not delivered: %s" % sorted(set(ids) - set(got))[:10]
        time.sleep(0.1)


def signers_of(parent):
    """The DKIM signers running as children of parent (a zombie has no command line)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if parent_of(int(name)) != parent:
                continue
            with open("/proc/%s/cmdline" % name, "rb") as f:
                if b"--role=signer" in f.read().split(b"\0"):
                    found.append(int(name))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return sorted(found)


def signer_of(s, worker, timeout=30.0):
    """The pid of the signer the parent started for worker."""
    m = wait_log(s, r"event=signer_started pid=(\d+) worker=%d\b" % worker, timeout=timeout)
    return int(m.group(1))


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def submission_session(s):
    """An authenticated submission session (STARTTLS) as the demo user, open."""
    m = smtplib.SMTP(s.host("submission"), s.submission_port, timeout=30)
    m.ehlo("client.test")
    m.starttls(context=insecure())
    m.ehlo("client.test")
    m.login(s.user, s.password)
    return m


def submit_on(m, s, subject):
    """One message to the demo user on an open submission session."""
    code, reply = m.mail(s.user)
    assert code == 250, (code, reply)
    code, reply = m.rcpt("demo@" + DOMAIN)
    assert code == 250, (code, reply)
    code, reply = m.data(signed_body(subject))
    assert code == 250, (code, reply)


def assert_signed(s, dns, subject):
    raw = signed_copy(s, subject)
    assert raw is not None, "%r not delivered:\n%s" % (subject, s.log_text()[-3000:])
    fields = dkim_fields(raw)
    assert [tag(f, "d") for f in fields] == [DOMAIN], fields
    assert dkimpy_verify(raw, dns) == [True]


def test_upgrade_under_a_connection_loop_refuses_nothing(installed, tmp_path):
    s = Server(tmp_path).start()
    parent = s.proc.pid
    old_worker = s.worker_pid()
    old_inode = exe_inode(old_worker)
    assert old_inode == os.stat(installed).st_ino
    # a session open on the old worker before the upgrade, used again after it
    held = smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=30)
    acked = [send_one(held, b"held before")]
    loop = ConnectLoop(s.smtp_port)
    mail = MailLoop(s.smtp_port, b"during")
    loop.thread.start()
    mail.thread.start()
    time.sleep(1.0)
    new_inode = install_new(installed, "two")
    assert new_inode != old_inode
    before = loop.count
    p = upgrade(s)
    assert p.returncode == 0, p.stdout + p.stderr + s.log_text()[-4000:]
    m = re.match(r"upgraded: worker (\d+) \(was (\d+)\), parent (\d+)", p.stdout)
    assert m, p.stdout
    new_worker = int(m.group(1))
    assert int(m.group(2)) == old_worker and int(m.group(3)) == parent
    during = loop.count - before
    time.sleep(1.0)
    loop.stop.set()
    mail.stop.set()
    loop.thread.join(60)
    mail.thread.join(60)
    print("\nupgrade: %d connections in the loop (%d while the upgrade ran), %d refused, reset or not greeted; "
          "%d messages acknowledged meanwhile" % (loop.count, during, len(loop.failures), len(mail.acked)))
    assert loop.failures == [], loop.failures[:10]
    assert mail.failures == [], mail.failures[:10]
    assert during > 0 and loop.count > 100
    # the held session is still served, by the old worker, which drains with it
    acked.append(send_one(held, b"held after"))
    held.quit()
    acked += mail.acked

    # the same parent, a new worker of the binary now on disk; the old worker is gone
    assert s.proc.poll() is None and s.proc.pid == parent
    assert new_worker != old_worker and parent_of(new_worker) == parent
    assert exe_inode(new_worker) == new_inode and exe_inode(parent) == new_inode
    assert hashlib.sha256(open("/proc/%d/exe" % new_worker, "rb").read()).digest() == \
        hashlib.sha256(open(installed, "rb").read()).digest()
    wait_gone(old_worker, timeout=30)
    st = status(s)
    assert st["pid"] == new_worker and st["parent_pid"] == parent
    assert st["upgrade"]["result"] == "done" and st["upgrade"]["seq"] == 1, st
    log = s.log_text()
    assert re.search(r"event=upgrade_done seq=1 worker=%d old_worker=%d" % (new_worker, old_worker), log)
    assert re.search(r"event=worker_drained pid=%d status=0" % old_worker, log), log[-3000:]
    # delivery is one worker's at a time: every acknowledged message once in the mailbox
    got = wait_delivered(s, acked)
    assert [i for i in acked if got[i] != 1] == []
    # the new worker serves, stops cleanly (exit 0, no sanitizer report)
    with smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=30) as c:
        send_one(c, b"after")
    s.stop()


def test_the_new_worker_has_its_own_signer_and_the_old_one_goes_with_its_worker(installed, tmp_path, dns_server):
    s = Server(tmp_path)
    own_records(s, dns_server)
    s.start()
    parent, old_worker = s.proc.pid, s.worker_pid()
    old_signer = signer_of(s, old_worker)
    assert signers_of(parent) == [old_signer]
    # a session on the old worker, which it keeps while it drains
    held = submission_session(s)
    new_inode = install_new(installed, "signer")
    mark = len(s.log_text())
    p = upgrade(s)
    assert p.returncode == 0, p.stdout + p.stderr + s.log_text()[-4000:]
    new_worker = int(re.match(r"upgraded: worker (\d+)", p.stdout).group(1))
    # the pid of the old worker's signer crossed the execve with the worker's
    wait_log(s, r"event=upgrade_resumed seq=1 .*old_worker=%d old_signer=%d " % (old_worker, old_signer), after=mark)
    # the new worker got a signer of the new binary, started like any worker's (after its listeners)
    new_signer = signer_of(s, new_worker)
    assert new_signer != old_signer and parent_of(new_signer) == parent
    if os.geteuid() == 0:  # it is not dumpable: only root reads where its exe link points
        assert exe_inode(new_signer) == new_inode
    log = s.log_text()[mark:]
    assert log.index("event=worker_started pid=%d" % new_worker) < log.index("event=signer_started pid=%d" % new_signer)
    # the new worker's mail is signed, by its signer
    submit(s, ["demo@" + DOMAIN], signed_body(b"new worker"), implicit_tls=False)
    assert_signed(s, dns_server, b"new worker")
    # the old worker drains with its own signer still there: its session's mail is signed too
    assert alive(old_worker) and alive(old_signer), s.log_text()[-3000:]
    assert signers_of(parent) == sorted([old_signer, new_signer])
    submit_on(held, s, b"old worker draining")
    assert_signed(s, dns_server, b"old worker draining")
    held.quit()
    # its last session over, the old worker exits, and its signer after it
    wait_gone(old_worker, timeout=30)
    wait_gone(old_signer, timeout=30)
    wait_log(s, r"event=old_signer_stopped pid=%d status=0" % old_signer, after=mark)
    # neither taken for the current signer dying nor restarted: one signer, the new worker's
    log = s.log_text()[mark:]
    assert "event=signer_died" not in log and "event=signer_restart" not in log, log[-3000:]
    assert signers_of(parent) == [new_signer]
    assert status(s)["pid"] == new_worker
    submit(s, ["demo@" + DOMAIN], signed_body(b"after the drain"), implicit_tls=False)
    assert_signed(s, dns_server, b"after the drain")
    assert signers_of(parent) == [new_signer]
    s.stop()
    assert not alive(new_signer)


def test_a_stop_during_the_drain_waits_for_the_old_signer(installed, tmp_path):
    """A stop while the old worker drains ends both workers and both signers, and the parent
    exits 0 once every one has gone."""
    s = Server(tmp_path).start()
    parent, old_worker = s.proc.pid, s.worker_pid()
    old_signer = signer_of(s, old_worker)
    held = socket.create_connection(("127.0.0.1", s.smtp_port), timeout=30)
    f = held.makefile("rb")
    assert f.readline().startswith(b"220 ")
    p = upgrade(s)
    assert p.returncode == 0, p.stderr
    new_signer = signer_of(s, int(re.match(r"upgraded: worker (\d+)", p.stdout).group(1)))
    assert alive(old_worker) and alive(old_signer)
    s.stop()  # exit 0: every child reaped, none of them killed for staying
    held.close()
    for pid in (old_worker, old_signer, new_signer):
        assert not alive(pid)
    log = s.log_text()
    assert re.search(r"event=old_signer_stopped pid=%d " % old_signer, log), log[-3000:]
    assert "stop_forced" not in log


def test_a_handover_naming_processes_that_are_not_its_children_touches_none(tmp_path):
    """The pids of the hand-over are taken only when they are the parent's own live children: a
    parent started with a forged one neither waits for nor signals those processes."""
    strangers = [subprocess.Popen(["sleep", "120"]) for _ in range(2)]
    try:
        s = Server(tmp_path)
        s.env = dict(os.environ, MAILWERK_UPGRADE="v1 seq=1 worker=%d signer=%d ipc=3" %
                     (strangers[0].pid, strangers[1].pid))
        s.start()
        log = s.log_text()
        assert "event=upgrade_old_worker_gone pid=%d" % strangers[0].pid in log, log[-3000:]
        assert "event=upgrade_old_signer_gone pid=%d" % strangers[1].pid in log, log[-3000:]
        assert re.search(r"event=upgrade_failed seq=1 reason=bad_handover", log)
        # a start like any other: one worker, one signer of its own
        assert signers_of(s.proc.pid) == [signer_of(s, s.worker_pid())]
        with smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=30) as c:
            send_one(c, b"served")
        s.stop()
        assert [p.poll() for p in strangers] == [None, None]
    finally:
        for p in strangers:
            p.kill()
            p.wait()


def test_upgrade_to_a_missing_binary_fails_and_the_old_worker_serves(installed, tmp_path):
    s = Server(tmp_path).start()
    parent, worker = s.proc.pid, s.worker_pid()
    keep = installed + ".kept"
    os.rename(installed, keep)
    p = upgrade(s, binary=keep)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "upgrade failed" in p.stderr and "No such file" in p.stderr, p.stderr
    assert re.search(r"event=upgrade_failed seq=1 reason=no_binary", s.log_text())
    st = status(s, binary=keep)
    assert st["pid"] == worker and st["parent_pid"] == parent
    assert st["upgrade"]["result"] == "failed" and st["upgrade"]["seq"] == 1
    with smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=30) as c:
        send_one(c, b"still served")
    # the binary back: the next upgrade goes through, numbered on
    os.rename(keep, installed)
    p = upgrade(s)
    assert p.returncode == 0, p.stdout + p.stderr
    assert status(s)["upgrade"] == {"seq": 2, "result": "done", "at": status(s)["upgrade"]["at"]}
    assert s.proc.pid == parent
    s.stop()


def test_a_binary_that_refuses_the_configuration_is_not_executed(installed, tmp_path):
    s = Server(tmp_path).start()
    worker = s.worker_pid()
    good = open(s.conf).read()
    with open(s.conf, "a") as f:
        f.write("\n[smtp]\nno_such_key = 1\n")
    mark = len(s.log_text())
    # the CLI would refuse the file itself; the parent is asked directly
    os.kill(s.proc.pid, signal.SIGUSR2)
    m = wait_log(s, r"event=upgrade_failed seq=1 reason=check_failed worker=\d+ error=(.*)", after=mark)
    assert "refused to start (exit 1" in m.group(1), m.group(0)
    log = s.log_text()[mark:]
    assert "event=upgrade_exec" not in log and "no_such_key = 1: unknown key" in log  # the check said why
    with open(s.conf, "w") as f:
        f.write(good)
    st = status(s)
    assert st["pid"] == worker and st["upgrade"]["result"] == "failed", st
    with smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=30) as c:
        send_one(c, b"still served")
    s.stop()


def test_a_new_worker_that_dies_before_it_is_ready_leaves_the_old_one_serving(installed, tmp_path, dns_server):
    s = Server(tmp_path)
    own_records(s, dns_server)
    s.start()
    parent, worker = s.proc.pid, s.worker_pid()
    old_signer = signer_of(s, worker)
    mark = len(s.log_text())
    os.kill(parent, signal.SIGUSR2)  # the signal itself, as `systemctl kill -s USR2` sends it
    new = int(wait_log(s, r"event=worker_started pid=(\d+)", after=mark).group(1))
    os.kill(new, signal.SIGSTOP)  # before it can be ready (its start takes a good part of a second)
    assert "event=worker_ready pid=%d" % new not in s.log_text()
    os.kill(new, signal.SIGKILL)
    wait_log(s, r"event=upgrade_failed seq=1 reason=worker_died", after=mark)
    assert s.proc.pid == parent and s.proc.poll() is None
    deadline = time.monotonic() + 10
    while status(s).get("upgrade") is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    st = status(s)
    assert st["pid"] == worker and st["upgrade"]["result"] == "failed", st
    assert "killed by signal 9" in st["upgrade"]["reason"]
    with smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=30) as c:
        send_one(c, b"still served")
    # its signer is the current one again; the dead worker's signer has followed it out
    new_signer = signer_of(s, new)
    wait_gone(new_signer, timeout=30)
    assert signers_of(parent) == [old_signer]
    submit(s, ["demo@" + DOMAIN], signed_body(b"signed as before"), implicit_tls=False)
    assert_signed(s, dns_server, b"signed as before")
    assert signers_of(parent) == [old_signer]
    # the old worker is the supervised one again: it reloaded with the listeners the new program
    # bound, a reload (SIGHUP) reaches it, a stop ends it
    first = wait_log(s, r"event=reload result=ok", after=mark)
    s.proc.send_signal(signal.SIGHUP)
    wait_log(s, r"event=reload result=ok", after=first.end())
    s.stop()


def test_upgrade_tells_the_service_manager(installed, tmp_path):
    name = str(tmp_path / "notify")
    n = NotifySocket(name)
    s = Server(tmp_path)
    s.env = dict(os.environ, NOTIFY_SOCKET=name)
    try:
        s.start()
        assert n.next()["READY"] == "1"
        install_new(installed, "notify")
        p = upgrade(s)
        assert p.returncode == 0, p.stderr
        reloading = n.next()
        assert reloading["RELOADING"] == "1" and int(reloading["MONOTONIC_USEC"]) > 0, reloading
        # the program executed in the parent's place speaks for it: same pid
        ready = n.next()
        while "upgraded" not in ready.get("STATUS", ""):
            ready = n.next()
        assert ready["READY"] == "1" and ready["MAINPID"] == str(s.proc.pid), ready
        s.stop()
    finally:
        if s.proc is not None:
            s.stop()
        n.close()


def test_the_drain_deadline_ends_an_idle_session_on_the_old_worker(installed, tmp_path):
    s = Server(tmp_path, overrides=["server.drain_timeout=1s"]).start()
    old = s.worker_pid()
    c = socket.create_connection(("127.0.0.1", s.smtp_port), timeout=30)
    f = c.makefile("rb")
    assert f.readline().startswith(b"220 ")
    p = upgrade(s)
    assert p.returncode == 0, p.stderr
    # the session is left alone for the deadline, then ended as at a stop
    start = time.monotonic()
    assert f.readline().startswith(b"421 4.3.2"), "no 421"
    assert 0.5 < time.monotonic() - start < 15
    c.close()
    wait_gone(old, timeout=20)
    assert re.search(r"event=drain_over sessions=1", s.log_text())
    s.stop()


def test_a_mailbox_held_on_the_old_worker_is_in_use_for_the_new_one(installed, tmp_path):
    """RFC 1939's exclusive lock holds across the two workers of an upgrade."""
    s = Server(tmp_path).start()
    with smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=30) as c:
        wait_delivered(s, [send_one(c, b"to fetch")])

    def pop3():
        p = poplib.POP3("127.0.0.1", s.pop3_port, timeout=20)
        p.stls(context=insecure())
        p.user(s.user)
        return p

    first = pop3()
    first.pass_(s.password)
    p = upgrade(s)
    assert p.returncode == 0, p.stderr
    second = pop3()
    with pytest.raises(poplib.error_proto, match=r"IN-USE"):
        second.pass_(s.password)
    second.quit()
    assert first.stat()[0] >= 1
    first.quit()  # the old worker's last session: it exits
    third = pop3()
    third.pass_(s.password)
    third.quit()
    s.stop()


def test_upgrade_without_a_server(tmp_path):
    s = Server(tmp_path)
    p = upgrade(s)
    assert p.returncode == 3 and "not running" in p.stderr, p.stderr
