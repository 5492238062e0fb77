"""mailwerk under a service manager: the sd_notify protocol a Type=notify unit relies on (READY=1
once it accepts, RELOADING=1 then READY=1 around a SIGHUP, STOPPING=1 on SIGTERM), to a datagram
socket this test holds as systemd would, at a path or in the abstract namespace."""
import os
import re
import signal
import smtplib
import socket

import pytest

from conftest import Server


class NotifySocket:
    """A datagram socket that collects what the server tells the manager."""

    def __init__(self, address):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(20)

    def next(self):
        """One message as a dict of its KEY=VALUE lines."""
        data = self.sock.recv(4096).decode()
        return dict(line.split("=", 1) for line in data.split("\n") if line)

    def close(self):
        self.sock.close()


@pytest.mark.parametrize("where", ["path", "abstract"])
def test_ready_reloading_stopping(tmp_path, where):
    name = str(tmp_path / "notify") if where == "path" else "\0mailwerk-test-%d" % os.getpid()
    n = NotifySocket(name)
    s = Server(tmp_path)
    s.env = dict(os.environ, NOTIFY_SOCKET=name if where == "path" else "@" + name[1:])
    try:
        s.start()
        ready = n.next()
        assert ready["READY"] == "1" and ready["MAINPID"] == str(s.proc.pid), ready
        # READY=1 comes when mail is accepted
        with smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=10) as c:
            assert c.noop()[0] == 250

        s.proc.send_signal(signal.SIGHUP)
        reloading = n.next()
        assert reloading["RELOADING"] == "1" and int(reloading["MONOTONIC_USEC"]) > 0, reloading
        again = n.next()
        assert again["READY"] == "1" and "reloaded" in again["STATUS"], again

        # a configuration the reload refuses: ready again, on the old one, and it says so
        with open(s.conf, "a") as f:
            f.write("\n[smtp]\nno_such_key = 1\n")
        s.proc.send_signal(signal.SIGHUP)
        assert n.next()["RELOADING"] == "1"
        refused = n.next()
        assert refused["READY"] == "1" and "refused" in refused["STATUS"], refused

        s.proc.send_signal(signal.SIGTERM)
        stopping = n.next()
        assert stopping["STOPPING"] == "1", stopping
        assert s.proc.wait(timeout=30) == 0
        s.proc = None
        s.log.close()
    finally:
        if s.proc is not None:
            s.stop()
        n.close()
    assert "notify_socket_unusable" not in s.log_text()


def test_unusable_notify_socket_is_logged_and_ignored(tmp_path):
    s = Server(tmp_path)
    s.env = dict(os.environ, NOTIFY_SOCKET="relative/path")
    s.start()
    try:
        assert re.search(r"event=notify_socket_unusable error=\"NOTIFY_SOCKET=relative/path", s.log_text())
        with smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=10) as c:
            assert c.noop()[0] == 250
    finally:
        s.stop()
