"""Durability: a 250 means the message is on disk (SIGKILL under load loses nothing acknowledged and
leaves no torn message), SIGTERM drains sessions with 421 and exits 0, and a restart keeps the queue."""
import contextlib
import os
import re
import signal
import smtplib
import socket
import subprocess
import threading
import time

import pytest

from smtpwire import Raw, in_data

RCPT = "demo@mailwerk.test"
THREADS = 20
PER_THREAD = 25
MARKER_RE = re.compile(rb"X-Load-Marker: (t\d\d-m\d\d)\r\n")


def body_for(marker):
    # a few KiB, so that a torn write would show; ends with a line naming the marker
    lines = ["Subject: load %s" % marker, "X-Load-Marker: %s" % marker, ""]
    lines += ["%s line %03d %s" % (marker, n, "x" * 60) for n in range(40)]
    lines.append("end of %s" % marker)
    return ("\r\n".join(lines) + "\r\n").encode()


def stored_rows(server):
    """{id: (sender, data)} of every accepted message, queued or already delivered."""
    return {qid: (m["sender"], m["data"]) for qid, m in server.messages().items()}


def send_one(port, marker):
    with smtplib.SMTP("127.0.0.1", port, timeout=15) as c:
        c.ehlo("restart.example")
        assert c.mail("restart@example.org")[0] == 250
        assert c.rcpt(RCPT)[0] == 250
        code, msg = c.data(body_for(marker))
        assert code == 250, msg
        return re.search(rb"queued as (\S+)", msg).group(1).decode()


def test_kill9_under_load_keeps_every_acknowledged_message(fresh_server):
    s = fresh_server.start()
    lock = threading.Lock()
    acked = {}  # queue id -> body
    errors = {}
    half = threading.Event()
    total = THREADS * PER_THREAD

    def worker(t):
        try:
            with smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=20) as c:
                c.ehlo("load%02d.example" % t)
                for i in range(PER_THREAD):
                    marker = "t%02d-m%02d" % (t, i)
                    body = body_for(marker)
                    code, msg = c.mail("load%02d@example.org" % t)
                    assert code == 250, msg
                    code, msg = c.rcpt(RCPT)
                    assert code == 250, msg
                    code, msg = c.data(body)
                    assert code == 250, msg
                    m = re.search(rb"queued as ([0-9A-Z]{20})\b", msg)
                    assert m, msg
                    with lock:
                        acked[m.group(1).decode()] = body
                        if len(acked) >= total // 2:
                            half.set()
        except (smtplib.SMTPException, OSError, AssertionError) as e:
            errors[t] = e

    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(THREADS)]
    for th in threads:
        th.start()
    try:
        assert half.wait(timeout=90), "only %d messages acknowledged; errors: %r" % (len(acked), errors)
        s.kill()
    finally:
        if s.proc is not None:
            s.kill()
        for th in threads:
            th.join(timeout=30)
    assert not any(th.is_alive() for th in threads), "client threads did not end after the kill"
    with lock:
        acked_now = dict(acked)
    assert total // 2 <= len(acked_now) < total, len(acked_now)
    # every thread that stopped early stopped because the server went away
    assert errors, "no client noticed the kill"

    s.start()
    queue = s.messages()
    missing = sorted(set(acked_now) - set(queue))
    assert not missing, "%d acknowledged messages lost after SIGKILL, e.g. %r" % (len(missing), missing[:5])
    for qid in acked_now:
        assert queue[qid]["rcpts"] == [RCPT], queue[qid]

    rows = stored_rows(s)
    assert set(rows) == set(queue)
    assert len(rows) <= total
    for qid, (sender, data) in rows.items():
        m = MARKER_RE.search(data)
        assert m, "message %s has no marker: %r" % (qid, data[:300])
        marker = m.group(1).decode()
        assert sender == "load%s@example.org" % marker[1:3], (qid, sender)
        assert data.endswith(body_for(marker)), "message %s (%s) is incomplete" % (qid, marker)
        if qid in acked_now:
            assert acked_now[qid] == body_for(marker), "message %s holds another body" % qid


def test_sigterm_mid_session_gets_421_and_exit_0(fresh_server):
    s = fresh_server.start()
    c = Raw(s.smtp_port)
    try:
        c.expect(220)
        c.expect(250, "EHLO x.example\r\n")
        c.expect(250, "MAIL FROM:<a@example.org>\r\n")
        s.proc.send_signal(signal.SIGTERM)
        code, lines = c.reply()
        assert code == 421 and lines[0].startswith("421 4.3.2"), lines
        assert c.line() is None, "the connection stayed open after 421"
    finally:
        c.close()
    s.stop()  # asserts exit status 0 and a log without sanitizer reports


def test_sigterm_mid_data_stores_nothing(fresh_server):
    s = fresh_server.start()
    c = Raw(s.smtp_port)
    try:
        c.expect(220)
        c.expect(250, "EHLO x.example\r\n")
        c.expect(250, "MAIL FROM:<half@example.org>\r\n")
        c.expect(250, "RCPT TO:<%s>\r\n" % RCPT)
        c.expect(354, "DATA\r\n")
        c.send("Subject: half\r\n\r\nthe first half\r\n")
        s.proc.send_signal(signal.SIGTERM)
        code, lines = c.reply()
        assert code == 421, lines
        assert c.line() is None
    finally:
        c.close()
    s.stop()
    assert stored_rows(s) == {}


def test_sigterm_idle_clients_on_every_listener(fresh_server):
    s = fresh_server.start()
    clients = [Raw(p) for p in (s.smtp_port, s.submission_port)]
    try:
        for c in clients:
            c.expect(220)
        s.proc.send_signal(signal.SIGTERM)
        for c in clients:
            code, lines = c.reply()
            assert code == 421, lines
            assert c.line() is None
    finally:
        for c in clients:
            c.close()
    s.stop()


def test_sigterm_with_pending_tls_handshake_exits_0(fresh_server):
    s = fresh_server.start()
    # connected to the implicit-TLS port, but no ClientHello yet
    c = socket.create_connection(("127.0.0.1", s.submissions_port), timeout=15)
    try:
        deadline = time.monotonic() + 10
        while "role=submissions" not in s.log_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        s.stop()  # SIGTERM; asserts exit 0 and no sanitizer report
    finally:
        c.close()


def test_restart_keeps_queue(fresh_server):
    s = fresh_server.start()
    ids = [send_one(s.smtp_port, "r%02d-m%02d" % (0, i)) for i in range(5)]
    before = stored_rows(s)
    assert sorted(before) == sorted(ids)
    s.stop()
    s.start()
    assert stored_rows(s) == before
    # and the restarted server still takes mail
    new = send_one(s.smtp_port, "r01-m00")
    assert s.message(new) is not None
    assert set(s.messages()) == set(ids) | {new}


@contextlib.contextmanager
def small_disk(tmp_path, size):
    """A tmpfs of size mounted in tmp_path; yields it and a list of servers to kill if the test
    leaves them running; unmounted at the end."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", str(disk)]).returncode != 0:
        pytest.skip("cannot mount a small file system here (needs root)")
    started = []
    try:
        yield disk, started
    finally:
        for s in started:
            if s.proc is not None:
                s.kill()
        subprocess.run(["umount", "-l", str(disk)])


def test_full_disk_answers_451_and_loses_nothing(tmp_path):
    """On a full disk the spool or the store fails: the client gets 451 4.3.0 (never 250), nothing
    partial is queued, the server keeps running, and once there is room again mail is accepted."""
    from conftest import Server
    # room for a 1.5 MB message three times over (queue, WAL, Maildir) and the log; the filler takes the rest
    with small_disk(tmp_path, "12m") as (disk, started):
        s = Server(disk, overrides=["server.min_free_space=0"])  # the store's own failure
        started.append(s.start())
        big = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 1500  # 1.5 MB
        with smtplib.SMTP("127.0.0.1", s.smtp_port) as m:
            m.ehlo("client.example")
            m.sendmail("a@example.org", ["demo@mailwerk.test"], b"Subject: before\r\n\r\nfits\r\n")
        before = set(s.messages())
        filler = disk / "filler"
        subprocess.run(["dd", "if=/dev/zero", "of=%s" % filler, "bs=64k"], capture_output=True)
        with smtplib.SMTP("127.0.0.1", s.smtp_port) as m:
            m.ehlo("client.example")
            m.mail("a@example.org")
            m.rcpt("demo@mailwerk.test")
            code, text = m.data(big)
            assert (code, text[:5]) == (451, b"4.3.0"), (code, text)
        log = s.log_text()
        assert "event=store_failed" in log or "event=spool_failed" in log, log[-2000:]
        filler.unlink()
        assert set(s.messages()) == before  # nothing partial
        with smtplib.SMTP("127.0.0.1", s.smtp_port) as m:
            m.ehlo("client.example")
            m.mail("a@example.org")
            m.rcpt("demo@mailwerk.test")
            code, text = m.data(big)
            assert code == 250, text
        s.stop()
        s.start()
        assert len(s.messages()) == len(before) + 1
        s.stop()


def test_low_free_space_refuses_mail_early_and_loses_nothing(tmp_path):
    """Below [server] min_free_space in data_dir, MAIL is answered 452 4.3.1 before any content is
    sent, so the disk never fills under the queue: every message answered 250 is kept, none is
    answered 451, and the server keeps running."""
    from conftest import Server
    with small_disk(tmp_path, "24m") as (disk, started):
        s = Server(disk, overrides=["server.min_free_space=12M"])
        started.append(s.start())
        body = b"Subject: m\r\n\r\n" + (b"y" * 998 + b"\r\n") * 512  # 0.5 MB: spooled
        accepted, refused = 0, 0
        with smtplib.SMTP("127.0.0.1", s.smtp_port) as m:
            m.ehlo("client.example")
            for i in range(60):  # more than 12 MB would hold
                code, text = m.mail("a@example.org")
                if code != 250:
                    assert (code, text[:5]) == (452, b"4.3.1"), (code, text)
                    refused += 1
                    m.rset()
                    continue
                m.rcpt("demo@mailwerk.test")
                code, text = m.data(body)
                assert code == 250, (code, text)  # never 451: the disk did not fill
                accepted += 1
        assert accepted > 0 and refused > 0, (accepted, refused)
        log = s.log_text()
        assert "event=refused reason=min_free_space" in log
        assert "event=store_failed" not in log and "event=spool_failed" not in log
        stored = len(s.messages())
        s.stop()
        s.start()
        assert len(s.messages()) == stored
        s.stop()


def test_kill9_with_spool_files_half_written(fresh_server):
    """kill -9 while large messages are half-way into their spool files: after the restart every
    message answered 250 is there whole (a large one too), none of the unfinished ones is, and no
    spool file is left behind (they never have a name)."""
    s = fresh_server.start()
    big = b"Subject: big and acknowledged\r\n\r\n" + (b"z" * 998 + b"\r\n") * 3000  # 3 MB: spooled
    with smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=30) as c:
        c.ehlo("client.example")
        c.mail("a@example.org")
        c.rcpt(RCPT)
        code, msg = c.data(big)
        assert code == 250, msg
    before = stored_rows(s)
    assert len(before) == 1
    unfinished = []
    for i in range(5):
        k = in_data(s.smtp_port, RCPT, helo="c%d.example" % i)
        k.send(b"Subject: never finished %d\r\n\r\n" % i + (b"q" * 998 + b"\r\n") * 2000)
        unfinished.append(k)
    time.sleep(0.5)
    s.kill()
    for k in unfinished:
        k.close()
    assert os.listdir(os.path.join(s.dir, "spool")) == []
    s.start()
    after = stored_rows(s)
    assert after == before  # the acknowledged one whole, nothing of the others
    assert next(iter(after.values()))[1].endswith(big[big.index(b"\r\n\r\n"):])
    assert os.listdir(os.path.join(s.dir, "spool")) == []
