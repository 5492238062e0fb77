"""The mailwerk command line: exit codes, error lines, and each command doing what it says."""
import json
import os
import re
import smtplib
import subprocess

import pytest

from conftest import BIN, Server, run_cli


def cli(*args, input=None):
    return subprocess.run([BIN, *args], input=input, capture_output=True, text=True, timeout=60)


def test_version_help_and_usage_errors():
    p = cli("--version")
    assert p.returncode == 0 and re.match(r"mailwerk \d+\.\d+\.\d+", p.stdout)
    assert cli("--help").returncode == 0
    for cmd in ("init", "serve", "user", "domain", "queue"):
        p = cli(cmd, "--help")
        assert p.returncode == 0, cmd
        assert "usage" in p.stdout.lower(), cmd
    p = cli("frobnicate")
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and p.stderr.startswith("mailwerk: ")
    assert cli("queue", "--no-such-option").returncode == 2
    assert cli().returncode == 2


def test_init_refuses_to_overwrite(tmp_path):
    d = str(tmp_path / "setup")
    p = cli("init", "--dir", d, "--domain", "example.test")
    assert p.returncode == 0, p.stderr
    assert "demo@example.test" in p.stdout
    conf = open(os.path.join(d, "mailwerk.conf")).read()
    # absolute paths, every listener spelled out
    assert re.search(r"^data_dir = /", conf, re.M)
    for name in ("smtp", "submission", "submissions"):
        assert re.search(r"^%s = 127\.0\.0\.1:\d+$" % name, conf, re.M)
    assert oct(os.stat(os.path.join(d, "tls", "key.pem")).st_mode & 0o777) == "0o600"
    before = open(os.path.join(d, "mailwerk.conf")).read()
    p = cli("init", "--dir", d)
    assert p.returncode == 1 and "exists" in p.stderr
    assert open(os.path.join(d, "mailwerk.conf")).read() == before


def test_users_and_domains(tmp_path):
    s = Server(tmp_path)
    c = ["-c", s.conf]
    assert cli("domain", "list", *c).stdout.split() == ["mailwerk.test"]
    assert cli("domain", "add", "Example.ORG", *c).returncode == 0
    assert cli("domain", "add", "example.org", *c).returncode == 1  # duplicate, case-insensitively
    assert cli("domain", "add", "not a domain", *c).returncode == 2
    # options after positionals work too
    p = cli("user", "add", "alice@example.org", "--password-stdin", *c, input="s3cret-pass\n")
    assert p.returncode == 0, p.stderr
    assert cli("user", "add", "bob@elsewhere.example", "--password-stdin", *c, input="x\n").returncode == 1
    assert cli(*c[0:0], "user", "add", "not-an-address", "--password-stdin", "-c", s.conf, input="x\n").returncode == 2
    users = cli("user", "list", *c).stdout.split()
    assert "alice@example.org" in users and "demo@mailwerk.test" in users
    assert cli("domain", "del", "example.org", *c).returncode == 1  # still has users
    # a hash imported from another system ($6$ made here, no stored secrets)
    h = subprocess.run(["openssl", "passwd", "-6", "imported-pass"], capture_output=True, text=True,
                       check=True).stdout.strip()
    assert cli("user", "add", "carol@example.org", "--password-hash", h, *c).returncode == 0
    assert cli("user", "add", "dave@example.org", "--password-hash", "$1$abc$def", *c).returncode == 2
    p = cli("user", "add", "erin@example.org", *c, input="")  # no tty, no flag: a generated password
    assert p.returncode == 0 and re.search(r"password: \S{20}", p.stdout)
    s.start()
    try:
        for user, pw in (("alice@example.org", "s3cret-pass"), ("carol@example.org", "imported-pass")):
            with smtplib.SMTP_SSL("127.0.0.1", s.submissions_port, context=_insecure()) as m:
                m.ehlo("client.example")
                assert m.login(user, pw)[0] == 235
        assert cli("user", "passwd", "alice@example.org", "--password-stdin", *c, input="new-pass\n").returncode == 0
        with smtplib.SMTP_SSL("127.0.0.1", s.submissions_port, context=_insecure()) as m:
            m.ehlo("client.example")
            assert m.login("alice@example.org", "new-pass")[0] == 235
        assert cli("user", "del", "alice@example.org", *c).returncode == 0
        assert cli("user", "del", "alice@example.org", *c).returncode == 1
        # a domain added while the server runs is local at once
        assert cli("domain", "add", "late.example", *c).returncode == 0
        assert cli("alias", "add", "@late.example", "demo@mailwerk.test", *c).returncode == 0
        with smtplib.SMTP("127.0.0.1", s.smtp_port) as m:
            m.ehlo("client.example")
            m.mail("a@example.net")
            assert m.rcpt("x@late.example")[0] == 250
    finally:
        s.stop()


def _insecure():
    from smtpwire import insecure_context
    return insecure_context()


def test_queue_commands(tmp_path):
    server = Server(tmp_path)
    # a file where the demo Maildir should be: deliveries fail and the messages wait in the queue
    blocker = os.path.join(server.dir, "mail", "mailwerk.test", "demo")
    os.makedirs(os.path.dirname(blocker))
    open(blocker, "w").close()
    server.start()
    try:
        _queue_commands(server)
    finally:
        server.stop()


def _queue_commands(server):
    with smtplib.SMTP("127.0.0.1", server.smtp_port) as m:
        m.ehlo("client.example")
        ids = []
        for i in range(3):
            m.mail("s%d@example.org" % i)
            m.rcpt("demo@mailwerk.test")
            m.rcpt("demo+other@mailwerk.test")
            code, text = m.data(b"Subject: q\r\n\r\nx\r\n")
            ids.append(re.search(r"queued as (\S+)", text.decode()).group(1))
    entries = {e["id"]: e for e in server.queue()}
    for qid in ids:
        e = entries[qid]
        assert e["size"] > 0 and e["client_ip"] == "127.0.0.1"
        assert {r["state"] for r in e["recipients"]} <= {"pending", "deferred"}
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", e["arrival"])
    shown = server.cli("queue", "show", ids[0]).stdout
    assert ids[0] in shown and "demo+other@mailwerk.test" in shown and "s0@example.org" in shown
    assert server.cli("queue", "list").stdout.strip().endswith("messages")
    flush = server.cli("queue", "flush")
    assert flush.returncode == 0
    assert server.cli("queue", "delete", ids[1]).returncode == 0
    assert ids[1] not in {e["id"] for e in server.queue()}
    p = run_cli("queue", "delete", ids[1], "-c", server.conf, check=False)
    assert p.returncode == 1 and "no message" in p.stderr
    p = run_cli("queue", "show", "not-an-id", "-c", server.conf, check=False)
    assert p.returncode == 2


def test_config_errors_name_file_and_line(tmp_path):
    s = Server(tmp_path)
    with open(s.conf, "a") as f:
        f.write("\n[smtp]\nmax_recipients = many\n")
    nlines = open(s.conf).read().count("\n")
    p = cli("serve", "-c", s.conf)
    assert p.returncode == 1
    assert p.stderr.strip() == "mailwerk: %s:%d: [smtp] max_recipients = many: expected a whole number" % (s.conf, nlines)
    p = cli("serve", "-c", s.conf + ".missing")
    assert p.returncode == 1 and "cannot open" in p.stderr
    p = cli("queue", "list", "-c", s.conf)  # every command reads the same config and says the same
    assert p.returncode == 1 and ":%d:" % nlines in p.stderr


def test_config_check_and_show(tmp_path):
    """config check reports every problem at once where serve stops at the first; config show
    prints what serve would use, --non-default only what the file or -o changed."""
    s = Server(tmp_path)
    p = cli("config", "check", "-c", s.conf)
    assert p.returncode == 0 and p.stdout.strip() == s.conf + ": ok", p
    shown = cli("config", "show", "--non-default", "-c", s.conf, "-o", "smtp.max_message_size=10M")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "[server] hostname = mx.mailwerk.test" in lines and "[smtp] max_message_size = 10M" in lines
    assert not [l for l in lines if l.startswith("[smtp] max_recipients")]  # at its default
    everything = cli("config", "show", "-c", s.conf).stdout.splitlines()
    assert "[smtp] max_recipients = 100" in everything and len(everything) > len(lines)
    # the values shown are the ones serve takes: fed back as overrides they change nothing
    again = cli("config", "show", "--non-default", "-c", s.conf, *[a for l in lines for a in
                                                                    ("-o", re.sub(r"^\[(\w+)\] (\S+) = ", r"\1.\2=", l))])
    assert again.stdout.splitlines() == lines

    base = open(s.conf).read().count("\n")
    with open(s.conf, "a") as f:
        f.write("[smtp]\nmax_recipients = many\nno such line\nbogus = 1\n")
    p = cli("config", "check", "-c", s.conf, "-o", "smtp.max_message_size=huge")
    assert p.returncode == 1
    problems = p.stderr.splitlines()
    assert problems[0] == "%s:%d: [smtp] max_recipients = many: expected a whole number" % (s.conf, base + 2)
    assert problems[1] == "%s:%d: not a valid line (expected [section] or key = value)" % (s.conf, base + 3)
    assert problems[2] == "%s:%d: [smtp] bogus = 1: unknown key" % (s.conf, base + 4)
    assert problems[3].startswith("-o smtp.max_message_size=huge: ")
    assert problems[4] == "mailwerk: %s: 4 problems" % s.conf
    p = cli("config", "show", "-c", s.conf)
    assert p.returncode == 1 and ":%d:" % (base + 2) in p.stderr  # the first problem, as serve says it
    assert cli("config", "frobnicate", "-c", s.conf).returncode == 2


def test_serve_override_errors(tmp_path):
    s = Server(tmp_path)
    p = cli("serve", "-c", s.conf, "-o", "listen.smtp=127.0.0.1")
    assert p.returncode == 1
    assert "-o listen.smtp=127.0.0.1: expected address:port" in p.stderr
    p = cli("serve", "-c", s.conf, "-o", "nosuch")
    assert p.returncode == 1 and "section.key=value" in p.stderr


def test_serve_runs_as_the_configured_user():
    """init --user gives the setup to an unprivileged user; serve binds as root, then becomes that
    user, and every file the server or the CLI creates afterwards belongs to it."""
    import pwd
    import shutil
    import signal
    import tempfile
    import time
    if os.geteuid() != 0:
        pytest.skip("needs root")
    nobody = pwd.getpwnam("nobody")
    base = tempfile.mkdtemp(prefix="mailwerk-user-", dir="/var/tmp")  # pytest's tmp dirs are 0700
    os.chmod(base, 0o755)
    s = Server(base, init_args=["--user", "nobody"])
    try:
        assert "user = nobody" in open(s.conf).read()
        s.start()
        # the worker serves as the user; the parent, which binds the listeners, stays root
        uids = [l for l in open("/proc/%d/status" % s.worker_pid()) if l.startswith("Uid:")][0].split()[1:]
        assert uids == [str(nobody.pw_uid)] * 4
        parent_uids = [l for l in open("/proc/%d/status" % s.proc.pid) if l.startswith("Uid:")][0].split()[1:]
        assert parent_uids == ["0"] * 4
        with smtplib.SMTP("127.0.0.1", s.smtp_port) as m:
            m.ehlo("client.example")
            m.sendmail("a@example.org", ["demo@mailwerk.test"], b"Subject: as nobody\r\n\r\nx\r\n")
        assert len(s.messages()) == 1
        # the CLI, run as root, acts as the data's owner; read once: the message may leave the queue
        # between two reads
        assert len(s.queue()) in (0, 1)
        assert cli("domain", "add", "other.example", "-c", s.conf).returncode == 0
        for name in os.listdir(s.dir):
            assert os.stat(os.path.join(s.dir, name)).st_uid == nobody.pw_uid, name
        s.proc.send_signal(signal.SIGHUP)  # the user can read the config and key again
        deadline = time.monotonic() + 10
        while "event=reload" not in s.log_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "event=reload result=ok" in s.log_text()
        s.stop()
    finally:
        if s.proc is not None:
            s.kill()
        shutil.rmtree(base)
