"""make install and the service it installs: the files land under PREFIX and DESTDIR; systemd's
own tools accept the unit (systemd-analyze verify), rate its hardening (systemd-analyze security:
an exposure of at most 2.5, where maddy's unit scores 3.7), and create the user and directories
from the sysusers.d and tmpfiles.d snippets in a scratch root. Then the installed layout is run:
mailwerk init with --config in an /etc-like directory and --user, the server as that user,
reading its configuration again on SIGHUP."""
import grp
import os
import pwd
import re
import shutil
import signal
import smtplib
import stat
import subprocess
import tempfile
import time

import pytest

from conftest import BIN, DNS_BLACKHOLE, free_port, wait_port

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
# systemd-analyze security's exposure, 0 (locked down) to 10: ours, and what maddy's unit scores
# with the same systemd (its dist/systemd/maddy.service: 3.7). The points left are for starting as
# root (to bind ports below 1024 and switch users), using the network, and reading other users'
# files before the switch; a unit starting as the user would score lower but could not read the
# TLS key root owns.
MAX_EXPOSURE = 2.5


def make_install(**vars):
    build = os.path.dirname(os.path.abspath(BIN))
    args = ["make", "-s", "-C", ROOT, "install", "BUILD=" + build] + ["%s=%s" % kv for kv in vars.items()]
    p = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return p


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_destdir_layout(tmp_path):
    dest = str(tmp_path / "dest")
    make_install(DESTDIR=dest, PREFIX="/usr")
    files = {os.path.relpath(os.path.join(d, f), dest) for d, _, fs in os.walk(dest) for f in fs}
    assert files == {"usr/bin/mailwerk", "usr/lib/systemd/system/mailwerk.service",
                     "usr/lib/sysusers.d/mailwerk.conf", "usr/lib/tmpfiles.d/mailwerk.conf",
                     "usr/share/man/man1/mailwerk.1", "usr/share/man/man8/mailwerk.8",
                     "usr/share/mailwerk/fail2ban/mailwerk.conf"}, files
    assert mode(os.path.join(dest, "usr/bin/mailwerk")) == 0o755
    unit = open(os.path.join(dest, "usr/lib/systemd/system/mailwerk.service")).read()
    assert "ExecStart=/usr/bin/mailwerk serve -c /etc/mailwerk/mailwerk.conf" in unit
    assert subprocess.run([os.path.join(dest, "usr/bin/mailwerk"), "--help"], capture_output=True).returncode == 0


def test_manual_pages_say_what_the_readme_says(tmp_path):
    """groff reads both pages without a warning; mailwerk(1) has every command of the README's CLI
    reference, mailwerk(8) every key of its configuration reference and the signals."""
    dest = str(tmp_path / "dest")
    make_install(DESTDIR=dest, PREFIX="/usr")
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    pages = {}
    for n in ("1", "8"):
        path = os.path.join(dest, "usr/share/man/man%s/mailwerk.%s" % (n, n))
        p = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", path], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0 and p.stderr == "", p.stderr
        p = subprocess.run(["groff", "-man", "-Tascii", "-P-cbou", path], capture_output=True, text=True, timeout=60)
        pages[n] = " ".join(p.stdout.split())  # words, whatever the line breaks
    cli = readme.split("## CLI reference", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^\| `(mailwerk [a-z-]+(?: [a-z]+)?)", cli, re.M)
    assert len(commands) > 20
    for c in commands:
        assert c in pages["1"], c
    conf = readme.split("## Configuration reference", 1)[1].split("\n## ", 1)[0]
    keys = re.findall(r"^\| `(\[[a-z_]+\] [a-z_]+)`", conf, re.M)
    assert len(keys) > 30
    for k in keys:
        assert k in pages["8"], k
    assert "SIGHUP" in pages["8"] and "SIGTERM" in pages["8"] and "mailwerk serve" in pages["8"]


def test_systemd_accepts_the_unit_and_rates_it(tmp_path):
    prefix = str(tmp_path / "prefix")  # no DESTDIR: ExecStart names a binary that exists, as verify wants
    make_install(PREFIX=prefix)
    unit = os.path.join(prefix, "lib/systemd/system/mailwerk.service")
    # verify runs man(1) for the unit's Documentation=man: pages, which are installed under PREFIX
    env = dict(os.environ, MANPATH=os.path.join(prefix, "share/man") + ":")
    p = subprocess.run(["systemd-analyze", "verify", unit], capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 0 and p.stderr.strip() == "", p.stderr
    p = subprocess.run(["systemd-analyze", "security", "--offline=yes", unit], capture_output=True, text=True,
                       timeout=60)
    score = float(re.search(r"Overall exposure level for mailwerk\.service: ([0-9.]+)", p.stdout).group(1))
    assert score <= MAX_EXPOSURE, p.stdout
    for want in ("Type=notify", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_SETUID CAP_SETGID",
                 "SystemCallFilter=@system-service", "SystemCallArchitectures=native", "ProtectProc=invisible",
                 "PrivateIPC=yes", "LimitNOFILE=131072", "ExecReload=/bin/kill -HUP $MAINPID"):
        assert want in open(unit).read(), want

    # the user and the directories, made by systemd's own tools in a scratch root
    root = str(tmp_path / "root")
    os.makedirs(os.path.join(root, "etc"))
    p = subprocess.run(["systemd-sysusers", "--root=" + root, os.path.join(prefix, "lib/sysusers.d/mailwerk.conf")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    entry = [l for l in open(os.path.join(root, "etc/passwd")) if l.startswith("mailwerk:")]
    assert entry and entry[0].rstrip().split(":")[5] == "/var/lib/mailwerk", entry
    uid = int(entry[0].split(":")[2])
    p = subprocess.run(["systemd-tmpfiles", "--root=" + root, "--create",
                        os.path.join(prefix, "lib/tmpfiles.d/mailwerk.conf")], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    data = os.stat(os.path.join(root, "var/lib/mailwerk"))
    assert (data.st_uid, stat.S_IMODE(data.st_mode)) == (uid, 0o750)
    etc = os.stat(os.path.join(root, "etc/mailwerk"))
    assert (etc.st_uid, etc.st_gid, stat.S_IMODE(etc.st_mode)) == (0, uid, 0o750)


def test_installed_layout_runs_as_its_user(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    nobody = pwd.getpwnam("nobody")
    base = tempfile.mkdtemp(prefix="mailwerk-install-", dir="/var/tmp")  # pytest's tmp dirs are 0700
    os.chmod(base, 0o755)
    proc = None
    try:
        make_install(DESTDIR=base, PREFIX="/usr")
        binary = os.path.join(base, "usr/bin/mailwerk")
        etc, data = os.path.join(base, "etc/mailwerk"), os.path.join(base, "var/lib/mailwerk")
        os.makedirs(etc)
        os.makedirs(os.path.dirname(data))
        for d in ("etc", "var", "var/lib"):  # as on a real system: anyone may pass through
            os.chmod(os.path.join(base, d), 0o755)
        os.chown(etc, 0, nobody.pw_gid)
        os.chmod(etc, 0o750)  # as the tmpfiles.d snippet makes it
        conf = os.path.join(etc, "mailwerk.conf")
        p = subprocess.run([binary, "init", "--dir", data, "--config", conf, "--user", "nobody",
                            "--domain", "example.test", "--hostname", "mx.example.test"],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert "data_dir = " + data in open(conf).read() and not os.path.exists(os.path.join(data, "mailwerk.conf"))
        st = os.stat(conf)
        # root's, readable by the user's group, by nobody else
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, nobody.pw_gid, 0o640)
        assert os.stat(data).st_uid == nobody.pw_uid

        ports = {name: free_port() for name in ("smtp", "submission", "submissions", "pop3", "pop3s", "http")}
        args = [binary, "serve", "-c", conf, "-o", "dns.resolver=" + DNS_BLACKHOLE, "-o", "smtp.auth_checks=no"]
        for name, port in ports.items():
            args += ["-o", "listen.%s=127.0.0.1:%d" % (name, port)]
        log_path = os.path.join(base, "serve.log")
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(args, stdout=log, stderr=log)
        wait_port(ports["smtp"], proc)
        deadline = time.monotonic() + 15
        while "event=started" not in open(log_path).read() and time.monotonic() < deadline:
            time.sleep(0.05)
        worker = int(re.findall(r"event=worker_started pid=(\d+)", open(log_path).read())[-1])
        uids = [l for l in open("/proc/%d/status" % worker) if l.startswith("Uid:")][0].split()[1:]
        assert uids == [str(nobody.pw_uid)] * 4
        with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=10) as c:
            assert c.noop()[0] == 250
        # a reload reads /etc/mailwerk/mailwerk.conf again, as the user, through its group
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "event=reload" not in open(log_path).read() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "event=reload result=ok" in open(log_path).read(), open(log_path).read()[-2000:]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        proc = None
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        shutil.rmtree(base)
    assert grp.getgrgid(nobody.pw_gid)  # the group the configuration was given to exists
