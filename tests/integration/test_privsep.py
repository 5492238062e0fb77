"""The parent and its worker: the parent binds and supervises, the worker serves. A worker killed
with SIGKILL is restarted, the listeners stay open meanwhile (a client that connects during the
restart waits in the backlog and gets its greeting), and nothing acknowledged is lost; the parent
killed takes its worker with it."""
import os
import platform
import re
import signal
import smtplib
import socket
import subprocess
import time

import pytest

from conftest import Server, wait_gone

# gdb attaches to the worker and stops it at a system call: alone, where no other test adds load
pytestmark = pytest.mark.serial

SYS_EXECVE = 59  # x86-64


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def send(port, subject):
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as m:
        m.ehlo("client.example")
        m.sendmail("a@example.org", ["demo@mailwerk.test"], b"Subject: " + subject + b"\r\n\r\nbody\r\n")


def test_two_processes_parent_binds_worker_serves(fresh_server):
    s = fresh_server.start()
    worker = s.worker_pid()
    assert worker is not None and worker != s.proc.pid
    # the worker is the parent's child, executed again with its role
    stat = open("/proc/%d/stat" % worker).read()
    assert int(stat.rsplit(")", 1)[1].split()[1]) == s.proc.pid
    cmdline = open("/proc/%d/cmdline" % worker, "rb").read().split(b"\0")
    assert b"--role=worker" in cmdline
    log = s.log_text()
    # the parent bound every listener before the worker started
    assert log.index("event=listen role=smtp") < log.index("event=worker_started")
    send(s.smtp_port, b"two processes")
    assert len(s.messages()) == 1


def test_killed_worker_is_restarted_and_loses_nothing(fresh_server):
    s = fresh_server.start()
    for i in range(5):
        send(s.smtp_port, b"before %d" % i)
    accepted = set(s.messages())
    assert len(accepted) == 5
    first = s.worker_pid()
    os.kill(first, signal.SIGKILL)
    # at once, while no worker may be there: the parent's listener holds the connection
    c = socket.create_connection(("127.0.0.1", s.smtp_port), timeout=30)
    try:
        greeting = c.recv(512)
    finally:
        c.close()
    assert greeting.startswith(b"220 "), greeting
    deadline = time.monotonic() + 20
    while s.worker_pid() == first or "event=worker_ready pid=%d" % s.worker_pid() not in s.log_text():
        assert time.monotonic() < deadline, s.log_text()[-3000:]
        time.sleep(0.05)
    log = s.log_text()
    assert re.search(r"event=worker_died pid=%d signal=9" % first, log), log[-3000:]
    assert not alive(first)
    # every message acknowledged before the kill is still there, and the new worker takes more
    assert accepted <= set(s.messages())
    send(s.smtp_port, b"after")
    assert len(s.messages()) == 6
    # and it stops cleanly, parent and worker (exit 0, no sanitizer report)
    s.stop()


def test_killed_parent_takes_its_worker(tmp_path):
    s = Server(tmp_path).start()
    worker = s.worker_pid()
    s.proc.send_signal(signal.SIGKILL)
    s.proc.wait(timeout=30)
    wait_gone(worker)
    assert not alive(worker)
    s.proc = None
    s.log.close()


def test_worker_that_cannot_start_fails_serve(tmp_path):
    """A first worker that cannot start makes `serve` fail with its reason, not restart forever."""
    s = Server(tmp_path)
    # a directory where the queue's database would be: no user can open it as one
    os.mkdir(os.path.join(s.dir, "queue.db"))
    try:
        s.start()
    except RuntimeError as e:
        assert "queue.db" in str(e)
    else:
        raise AssertionError("serve started without its queue")
    assert s.proc.wait(timeout=30) != 0
    assert "event=worker_died" in s.log_text()
    assert "event=worker_restart" not in s.log_text()
    s.proc = None
    s.log.close()


def test_worker_runs_sandboxed_and_a_forbidden_call_kills_it(fresh_server, tmp_path):
    """The worker is under its seccomp allow-list; made to call execve (gdb attaches and calls it
    inside the worker), it is killed by SIGSYS, and the parent starts a new one that still has
    every acknowledged message."""
    if platform.machine() != "x86_64":
        pytest.skip("the test names execve by its x86-64 number")
    s = fresh_server.start()
    worker = s.worker_pid()
    status = dict(l.split(":", 1) for l in open("/proc/%d/status" % worker) if ":" in l)
    assert status["Seccomp"].strip() == "2" and status["NoNewPrivs"].strip() == "1", status
    # the parent, which must still bind and start programs, is not filtered
    assert [l for l in open("/proc/%d/status" % s.proc.pid) if l.startswith("Seccomp:")][0].split()[1] == "0"
    for i in range(3):
        send(s.smtp_port, b"acknowledged %d" % i)
    accepted = set(s.messages())
    gdb = subprocess.run(["gdb", "-p", str(worker), "-batch", "-nx",
                          "-ex", 'call (long)syscall(%d, "/bin/true", 0, 0)' % SYS_EXECVE],
                         capture_output=True, text=True, timeout=120, cwd=str(tmp_path))  # any core file of gdb's there
    deadline = time.monotonic() + 30
    while not re.search(r"event=worker_died pid=%d signal=%d" % (worker, signal.SIGSYS), s.log_text()):
        assert time.monotonic() < deadline, gdb.stdout + gdb.stderr + s.log_text()[-3000:]
        time.sleep(0.05)
    while s.worker_pid() == worker or "event=worker_ready pid=%d" % s.worker_pid() not in s.log_text():
        assert time.monotonic() < deadline, s.log_text()[-3000:]
        time.sleep(0.05)
    assert accepted <= set(s.messages())
    send(s.smtp_port, b"after the kill")
    assert len(s.messages()) == 4


def test_sandbox_can_be_turned_off(tmp_path):
    s = Server(tmp_path, overrides=["server.sandbox=no"]).start()
    try:
        assert [l for l in open("/proc/%d/status" % s.worker_pid()) if l.startswith("Seccomp:")][0].split()[1] == "0"
        assert "event=sandbox" not in s.log_text()
        send(s.smtp_port, b"unsandboxed")
    finally:
        s.stop()
