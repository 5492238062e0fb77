"""make deb: the Debian package. It is built once for this module (dpkg-buildpackage over the CMake
build, into a scratch DEB_OUT); dpkg-deb reads back its files and fields; dpkg installs it into a
scratch root with its maintainer scripts run outside a chroot (DPKG_ROOT), where they create the
mailwerk user and its directories with systemd-sysusers and systemd-tmpfiles and leave the unit
disabled; the installed binary runs and mailwerk init fills the package's directories; purging
removes the files and keeps the data. lintian finds no error (its warnings are shown)."""
import gzip
import os
import re
import shutil
import stat
import subprocess
import time
import warnings

import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")

# what make install puts under PREFIX=/usr, with the unit where Debian 12's dh_installsystemd
# takes it (/lib/systemd/system), and what every package has in /usr/share/doc
FILES = {
    "usr/bin/mailwerk": 0o755,
    "usr/share/man/man1/mailwerk.1.gz": 0o644,
    "usr/share/man/man8/mailwerk.8.gz": 0o644,
    "lib/systemd/system/mailwerk.service": 0o644,
    "usr/lib/sysusers.d/mailwerk.conf": 0o644,
    "usr/lib/tmpfiles.d/mailwerk.conf": 0o644,
    "usr/share/mailwerk/fail2ban/mailwerk.conf": 0o644,
    "usr/share/doc/mailwerk/copyright": 0o644,
    "usr/share/doc/mailwerk/changelog.gz": 0o644,
}
# the packaged files that are the project's own, byte for byte
SAME_AS = {
    "lib/systemd/system/mailwerk.service": "packaging/mailwerk.service",
    "usr/lib/sysusers.d/mailwerk.conf": "packaging/mailwerk.sysusers",
    "usr/lib/tmpfiles.d/mailwerk.conf": "packaging/mailwerk.tmpfiles",
    "usr/share/mailwerk/fail2ban/mailwerk.conf": "packaging/fail2ban/mailwerk.conf",
}


def project_version():
    cmake = open(os.path.join(ROOT, "CMakeLists.txt")).read()
    return re.search(r"project\(mailwerk VERSION ([0-9.]+)", cmake).group(1)


def run(*args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=kw.pop("timeout", 120), **kw)


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    if shutil.which("dpkg-buildpackage") is None:
        pytest.skip("dpkg-buildpackage is missing (dpkg-dev; scripts/deps.sh installs it)")
    out = tmp_path_factory.mktemp("deb-out")
    parent = os.path.join(ROOT, "..")
    before = set(os.listdir(parent))
    started = time.monotonic()
    p = run("make", "-s", "-C", ROOT, "deb", "DEB_OUT=%s" % out, timeout=900)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    print("make deb: %.1f s" % (time.monotonic() - started))
    arch = run("dpkg", "--print-architecture").stdout.strip()
    path = os.path.join(str(out), "mailwerk_%s_%s.deb" % (project_version(), arch))
    assert p.stdout.strip().endswith(os.path.basename(path)) and os.path.isfile(path), (p.stdout, os.listdir(out))
    # nothing was written to the checkout's parent directory, nothing was left in debian/
    assert not [f for f in set(os.listdir(parent)) - before if f.startswith(("mailwerk_", "mailwerk-dbgsym_"))]
    assert not os.path.exists(os.path.join(ROOT, "debian", "mailwerk"))
    assert not os.path.exists(os.path.join(ROOT, "debian", "build"))
    return path


def test_contents(deb, tmp_path):
    p = run("dpkg-deb", "-c", deb)
    assert p.returncode == 0, p.stderr
    files = {}
    for line in p.stdout.splitlines():
        perms, owner, _size, _date, _time, name = line.split(None, 5)
        assert owner == "root/root", line
        if not perms.startswith("d"):
            files[name[2:]] = perms
    assert set(files) == set(FILES), files
    for name, mode in FILES.items():
        want = "-" + "".join(c if mode & (1 << (8 - i)) else "-" for i, c in enumerate("rwxrwxrwx"))
        assert files[name] == want, (name, files[name])

    root = str(tmp_path / "x")
    assert run("dpkg-deb", "-x", deb, root).returncode == 0
    for packaged, source in SAME_AS.items():
        assert open(os.path.join(root, packaged), "rb").read() == open(os.path.join(ROOT, source), "rb").read(), packaged
    for n in ("1", "8"):
        page = gzip.open(os.path.join(root, "usr/share/man/man%s/mailwerk.%s.gz" % (n, n)), "rt").read()
        assert page.startswith(".TH MAILWERK %s " % n) or "\n.TH MAILWERK %s " % n in page, page[:200]
    # the binary from the package runs here, its shared libraries the system's
    p = run(os.path.join(root, "usr/bin/mailwerk"), "--version")
    assert p.returncode == 0 and p.stdout.strip() == "mailwerk " + project_version(), p.stdout + p.stderr
    p = run(os.path.join(root, "usr/bin/mailwerk"), "help")
    assert p.returncode == 0 and "serve" in p.stdout, p.stdout + p.stderr


def test_fields(deb):
    p = run("dpkg-deb", "-f", deb)
    assert p.returncode == 0, p.stderr
    fields = dict(re.findall(r"^([A-Za-z-]+): (.*(?:\n .*)*)", p.stdout, re.M))
    assert fields["Package"] == "mailwerk"
    assert fields["Version"] == project_version()
    assert fields["Architecture"] == run("dpkg", "--print-architecture").stdout.strip()
    assert fields["Section"] == "mail"
    depends = [d.strip() for d in fields["Depends"].split(",")]
    names = {re.match(r"[a-z0-9.+-]+", d).group(0) for d in depends}
    # ${shlibs:Depends}: the libraries the binary links; ${misc:Depends}: systemd-sysusers for the postinst
    for lib in ("libc6", "libevent-core-2.1-7", "libevent-openssl-2.1-7", "libsqlite3-0", "libunbound8",
                "libjansson4", "libgmime-3.0-0", "libcurl4", "libinih1", "libcrypt1"):
        assert lib in names, (lib, depends)
    assert any(re.match(r"libssl3", n) for n in names), depends
    assert "systemd | systemd-standalone-sysusers | systemd-sysusers" in depends, depends
    p = run("dpkg-deb", "-I", deb)
    assert p.returncode == 0 and re.search(r"^\s+\d+ bytes,\s+\d+ lines\s+\*\s+postinst\s", p.stdout, re.M), p.stdout


def test_install_into_a_scratch_root(deb, tmp_path):
    """dpkg --root installs into a directory that is no system: --force-script-chrootless runs the
    maintainer scripts here with DPKG_ROOT set, which systemd-sysusers, systemd-tmpfiles and
    deb-systemd-helper honour (--force-depends: the scratch root's dpkg database is empty)."""
    if os.geteuid() != 0:
        pytest.skip("needs root (dpkg installs files owned by root, systemd-tmpfiles gives them away)")
    root = str(tmp_path / "root")
    for d in ("etc", "var/lib/dpkg/info", "var/lib/dpkg/updates"):
        os.makedirs(os.path.join(root, d))
    open(os.path.join(root, "var/lib/dpkg/status"), "w").close()
    # systemctl and deb-systemd-invoke act on the running system whatever DPKG_ROOT says: on a
    # machine booted with systemd the scripts would call them, so stand-ins take the calls
    stubs = str(tmp_path / "stubs")
    os.makedirs(stubs)
    calls = os.path.join(stubs, "calls")
    for name in ("systemctl", "deb-systemd-invoke"):
        with open(os.path.join(stubs, name), "w") as f:
            f.write('#!/bin/sh\necho "%s $*" >> %s\n' % (name, calls))
        os.chmod(os.path.join(stubs, name), 0o755)
    env = dict(os.environ, PATH=stubs + ":" + os.environ["PATH"])
    dpkg = ["dpkg", "--root=" + root, "--force-script-chrootless", "--force-depends", "--force-unsafe-io",
            "--log=/dev/null"]

    p = run(*dpkg, "-i", deb, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Setting up mailwerk (%s)" % project_version() in p.stdout, p.stdout
    # the postinst made the user from the sysusers.d snippet, in the scratch root's /etc only
    entry = [l.rstrip("\n").split(":") for l in open(os.path.join(root, "etc/passwd")) if l.startswith("mailwerk:")]
    assert entry and entry[0][5] == "/var/lib/mailwerk" and entry[0][6] == "/usr/sbin/nologin", entry
    uid, gid = int(entry[0][2]), int(entry[0][3])
    assert ["mailwerk", str(gid)] in [l.split(":")[0:3:2] for l in open(os.path.join(root, "etc/group"))]
    # ... and the directories from the tmpfiles.d snippet
    data = os.stat(os.path.join(root, "var/lib/mailwerk"))
    assert (data.st_uid, data.st_gid, stat.S_IMODE(data.st_mode)) == (uid, gid, 0o750)
    etc = os.stat(os.path.join(root, "etc/mailwerk"))
    assert (etc.st_uid, etc.st_gid, stat.S_IMODE(etc.st_mode)) == (0, gid, 0o750)
    # the unit is known to deb-systemd-helper (purge cleans up after it) but not enabled
    assert os.path.exists(os.path.join(root, "var/lib/systemd/deb-systemd-helper-enabled/mailwerk.service.dsh-also"))
    assert not os.path.exists(os.path.join(root, "etc/systemd/system/multi-user.target.wants/mailwerk.service"))
    if os.path.exists(calls):
        assert "enable" not in open(calls).read() and " start" not in open(calls).read(), open(calls).read()

    binary = os.path.join(root, "usr/bin/mailwerk")
    p = run(binary, "--version")
    assert p.returncode == 0 and p.stdout.strip() == "mailwerk " + project_version(), p.stdout + p.stderr
    # the operator's next step, into the directories the package made
    conf = os.path.join(root, "etc/mailwerk/mailwerk.conf")
    p = run(binary, "init", "--dir", os.path.join(root, "var/lib/mailwerk"), "--config", conf,
            "--domain", "example.test", "--hostname", "mx.example.test")
    assert p.returncode == 0, p.stderr
    assert os.path.exists(os.path.join(root, "var/lib/mailwerk/mailwerk.db")) and os.path.exists(conf)

    # purge removes the package's files and keeps the mail, the keys and the configuration
    p = run(*dpkg, "--purge", "mailwerk", env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    for name in FILES:
        assert not os.path.exists(os.path.join(root, name)), name
    assert os.path.exists(os.path.join(root, "var/lib/mailwerk/mailwerk.db")) and os.path.exists(conf)


def test_lintian(deb):
    if shutil.which("lintian") is None:
        pytest.fail("lintian is missing (scripts/deps.sh installs it)")
    p = run("lintian", "--tag-display-limit", "0", deb, timeout=300)
    lines = p.stdout.splitlines()
    for line in lines:
        if line.startswith("W: "):
            warnings.warn("lintian: " + line)
    errors = [l for l in lines if l.startswith("E: ")]
    assert not errors, "\n".join(lines)
    assert p.returncode == 0, p.stdout + p.stderr
