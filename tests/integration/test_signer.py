"""The DKIM signer: a third process that alone reads the private keys. The worker hashes each
message and the signer signs the digest; it runs under its own user and its own seccomp allow-list,
has no network, and is restarted by the parent when it dies, while the mail that waits for it is
signed by the next one (or, if none answers in time, refused with a 4xx and sent again by the
client)."""
import glob
import json
import os
import platform
import pwd
import re
import shutil
import signal
import smtplib
import subprocess
import tempfile
import time
import urllib.request

import pytest

from conftest import DOMAIN, Server
from dnsfixture import dns_server  # noqa: F401 (a fixture)
from mtafixture import insecure_context, submit, wait_for
from test_auth import dkim_fields, dkimpy_verify, own_records, tag

# gdb attaches to the signer, and a stopped signer is timed against the worker's 15 s wait: alone
pytestmark = pytest.mark.serial

SYS_EXECVE = 59  # x86-64
TIMEOUT = 30.0


def signer_pid(s, after=0):
    """The pid of the newest signer the parent started (after the first `after` of them)."""
    found = re.findall(r"event=signer_started pid=(\d+) worker=", s.log_text())
    return int(found[-1]) if len(found) > after else None


def status(pid):
    return dict(l.split(":", 1) for l in open("/proc/%d/status" % pid) if ":" in l)


def inbox(s):
    d = os.path.join(s.dir, "mail", DOMAIN, "demo", "new")
    return [open(os.path.join(d, n), "rb").read() for n in sorted(os.listdir(d))] if os.path.isdir(d) else []


def signed_copy(s, subject):
    """The delivered copy of the message with this subject, once it is in demo's inbox."""
    def find():
        for raw in inbox(s):
            if b"Subject: " + subject + b"\r\n" in raw:
                return raw
        return None
    return wait_for(find, TIMEOUT)


def body(subject):
    return b"From: Demo <demo@" + DOMAIN.encode() + b">\r\nTo: <demo@" + DOMAIN.encode() + b">\r\nSubject: " + \
        subject + b"\r\n\r\nsigned elsewhere\r\n"


def test_signer_is_a_third_process_that_signs(fresh_server, dns_server):
    s = fresh_server
    own_records(s, dns_server)
    s.start()
    pid = wait_for(lambda: signer_pid(s), TIMEOUT)
    assert pid is not None, s.log_text()[-3000:]
    # the parent's child, executed again with its role, under its own filter
    stat = open("/proc/%d/stat" % pid).read()
    assert int(stat.rsplit(")", 1)[1].split()[1]) == s.proc.pid
    assert b"--role=signer" in open("/proc/%d/cmdline" % pid, "rb").read().split(b"\0")
    st = status(pid)
    assert st["Seccomp"].strip() == "2" and st["NoNewPrivs"].strip() == "1", st
    # no network: its only socket is the one to the worker
    sockets = [os.readlink("/proc/%d/fd/%s" % (pid, fd)) for fd in os.listdir("/proc/%d/fd" % pid)]
    assert len([t for t in sockets if t.startswith("socket:")]) == 1, sockets
    submit(s, ["demo@" + DOMAIN], body(b"signed by the signer"), implicit_tls=False)
    raw = signed_copy(s, b"signed by the signer")
    assert raw is not None, s.log_text()[-3000:]
    fields = dkim_fields(raw)
    assert [tag(f, "d") for f in fields] == [DOMAIN], fields
    assert dkimpy_verify(raw, dns_server) == [True]
    assert "event=dkim_signed" in s.log_text()


def test_worker_cannot_read_the_keys_and_mail_is_still_signed(dns_server):
    """[server] user = nobody serves, [server] signer_user = daemon signs: the parent gives the key
    files to daemon, mode 0600, so the worker could not read them if it tried; the mail it hands on
    is signed all the same, and the API still shows and makes keys (the signer makes them)."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    nobody, daemon = pwd.getpwnam("nobody"), pwd.getpwnam("daemon")
    base = tempfile.mkdtemp(prefix="mailwerk-signer-", dir="/var/tmp")  # pytest's tmp dirs are 0700
    os.chmod(base, 0o755)
    s = Server(base, init_args=["--user", "nobody"], overrides=["server.signer_user=daemon"])
    try:
        s.start()
        pid = wait_for(lambda: signer_pid(s), TIMEOUT)
        assert status(pid)["Uid"].split() == [str(daemon.pw_uid)] * 4
        assert status(s.worker_pid())["Uid"].split() == [str(nobody.pw_uid)] * 4
        # not dumpable: its /proc files stay root's although it runs as daemon
        assert os.stat("/proc/%d/environ" % pid).st_uid == 0
        # the parent gave it the store: private keys daemon's alone, their public halves for all
        pems = glob.glob(os.path.join(s.dir, "dkim", "*", "*.pem"))
        assert pems and all(os.stat(p).st_uid == daemon.pw_uid and os.stat(p).st_mode & 0o777 == 0o600 for p in pems)
        pubs = glob.glob(os.path.join(s.dir, "dkim", "*", "*.pub"))
        assert len(pubs) == len(pems) and all(os.stat(p).st_mode & 0o777 == 0o644 for p in pubs)
        # the worker's user cannot read a private key, but can read its public half
        def as_nobody(path):
            return subprocess.run(["cat", path], capture_output=True,
                                  preexec_fn=lambda: (os.setgroups([]), os.setgid(nobody.pw_gid), os.setuid(nobody.pw_uid)))
        assert as_nobody(pems[0]).returncode != 0
        assert b"BEGIN PUBLIC KEY" in as_nobody(pubs[0]).stdout
        # a key made over the API is made by the signer, in daemon's store
        token = s.cli("apikey", "create", "t", "--quiet").stdout.strip()
        req = urllib.request.Request("http://127.0.0.1:%d/domains/%s/dkim-keys" % (s.http_port, DOMAIN),
                                     data=json.dumps({"selector": "ed1", "algorithm": "ed25519"}).encode(),
                                     headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
        made = json.loads(urllib.request.urlopen(req, timeout=30).read())
        assert made["selector"] == "ed1" and made["active"] is True and made["value"].startswith("v=DKIM1; k=ed25519")
        ed = os.path.join(s.dir, "dkim", DOMAIN, "ed1.pem")
        assert os.stat(ed).st_uid == daemon.pw_uid and os.stat(ed).st_mode & 0o777 == 0o600
        assert "event=dkim_key_made domain=%s selector=ed1" % DOMAIN in s.log_text()
        published = own_records(s, dns_server)
        assert len(published) == 2, published
        submit(s, ["demo@" + DOMAIN], body(b"keys out of reach"), implicit_tls=False)
        raw = signed_copy(s, b"keys out of reach")
        assert raw is not None and dkim_fields(raw), s.log_text()[-3000:]
        assert dkimpy_verify(raw, dns_server) == [True, True]  # Ed25519, then RSA
        s.stop()
    finally:
        if s.proc is not None:
            s.kill()
        shutil.rmtree(base)


def test_killed_signer_is_restarted_and_waiting_mail_is_signed(fresh_server, dns_server):
    s = fresh_server
    own_records(s, dns_server)
    s.start()
    first = wait_for(lambda: signer_pid(s), TIMEOUT)
    os.kill(first, signal.SIGKILL)
    # at once: the message waits for the next signer rather than going out unsigned
    submit(s, ["demo@" + DOMAIN], body(b"while the signer restarts"), implicit_tls=False)
    raw = signed_copy(s, b"while the signer restarts")
    assert raw is not None, s.log_text()[-3000:]
    assert dkimpy_verify(raw, dns_server) == [True]
    log = s.log_text()
    assert re.search(r"event=signer_died pid=%d signal=9" % first, log), log[-3000:]
    assert signer_pid(s) != first
    s.stop()


def test_unanswered_signing_is_a_temporary_failure(fresh_server, dns_server):
    """A signer that does not answer (stopped) for longer than the worker waits: the message is
    refused with 451, never sent unsigned; once the signer answers again, mail is signed."""
    s = fresh_server
    own_records(s, dns_server)
    s.start()
    pid = wait_for(lambda: signer_pid(s), TIMEOUT)
    os.kill(pid, signal.SIGSTOP)
    try:
        with smtplib.SMTP(s.host("submission"), s.submission_port, timeout=60) as m:
            m.ehlo("client.test")
            m.starttls(context=insecure_context())
            m.ehlo("client.test")
            m.login(s.user, s.password)
            m.mail(s.user)
            m.rcpt("demo@" + DOMAIN)
            code, reply = m.data(body(b"never unsigned"))
        assert code == 451 and b"signed" in reply, (code, reply)
        assert "event=dkim_sign_deferred" in s.log_text()
    finally:
        os.kill(pid, signal.SIGCONT)
    assert all(b"never unsigned" not in raw for raw in inbox(s))
    submit(s, ["demo@" + DOMAIN], body(b"answered again"), implicit_tls=False)
    raw = signed_copy(s, b"answered again")
    assert raw is not None and dkimpy_verify(raw, dns_server) == [True]
    s.stop()


def test_signer_forbidden_call_kills_it_and_it_is_restarted(fresh_server, dns_server, tmp_path):
    if platform.machine() != "x86_64":
        pytest.skip("the test names execve by its x86-64 number")
    s = fresh_server
    own_records(s, dns_server)
    s.start()
    pid = wait_for(lambda: signer_pid(s), TIMEOUT)
    gdb = subprocess.run(["gdb", "-p", str(pid), "-batch", "-nx",
                          "-ex", 'call (long)syscall(%d, "/bin/true", 0, 0)' % SYS_EXECVE],
                         capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    died = wait_for(lambda: re.search(r"event=signer_died pid=%d signal=%d" % (pid, signal.SIGSYS), s.log_text()),
                    TIMEOUT)
    assert died, gdb.stdout + gdb.stderr + s.log_text()[-3000:]
    assert wait_for(lambda: signer_pid(s, after=1), TIMEOUT)
    submit(s, ["demo@" + DOMAIN], body(b"after SIGSYS"), implicit_tls=False)
    raw = signed_copy(s, b"after SIGSYS")
    assert raw is not None and dkimpy_verify(raw, dns_server) == [True]
    s.stop()
