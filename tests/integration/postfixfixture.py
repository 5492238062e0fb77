"""Postfix as a receiving peer on loopback, for tests of what mailwerk sends: a private instance (its
own config, queue and data directories, started with `postfix -c DIR start`) that accepts mail for
its virtual domains from 127.0.0.0/8 into one Maildir, and sends whatever it originates itself (its
DSNs) by smtp(8) to the hosts given in `routes`, never by DNS.

    from postfixfixture import postfix   # the pytest fixture: a factory

    def test_x(postfix):
        pf = postfix.start("127.0.0.7", port, domains=["pf.test"],
                           routes={"mailwerk.test": ("127.0.0.1", server.smtp_port)})
        ... send mail for someone@pf.test to 127.0.0.7:port ...
        pf.wait_log("status=sent")        # its maillog, polled with a time limit
        pf.received_commands()            # the SMTP commands its smtpd received (debug_peer_list)
        pf.maildir()                      # what it delivered, as bytes

The traps of running Postfix like this (a data_directory it owns, no chroot, postlogd for the log
without syslog) are those of bench/lib.sh pf_setup. scripts/deps.sh installs Postfix."""
import glob
import os
import shutil
import subprocess
import tempfile
import time

import pytest

MASTER_CF = """\
# service    type       private unpriv  chroot  wakeup  maxproc command
{listen}     inet       n       -       n       -       -       smtpd
pickup       unix       n       -       n       60      1       pickup
cleanup      unix       n       -       n       -       0       cleanup
qmgr         unix       n       -       n       300     1       qmgr
rewrite      unix       -       -       n       -       -       trivial-rewrite
bounce       unix       -       -       n       -       0       bounce
defer        unix       -       -       n       -       0       bounce
trace        unix       -       -       n       -       0       bounce
verify       unix       -       -       n       -       1       verify
flush        unix       n       -       n       1000?   0       flush
showq        unix       n       -       n       -       -       showq
smtp         unix       -       -       n       -       -       smtp
virtual      unix       -       n       n       -       -       virtual
error        unix       -       -       n       -       -       error
retry        unix       -       -       n       -       -       error
proxymap     unix       -       -       n       -       -       proxymap
anvil        unix       -       -       n       -       1       anvil
scache       unix       -       -       n       -       1       scache
postlog      unix-dgram n       -       n       -       1       postlogd
"""

MAIN_CF = """\
compatibility_level = 3.6
config_directory = {conf}
queue_directory = {queue}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
maillog_file = {log}
maillog_file_prefixes = {root}
syslog_name = postfix-fixture

myhostname = {hostname}
mydomain = {hostname}
myorigin = $myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
biff = no
append_dot_mydomain = no

# only addresses of an interface may be named here: 127.0.0.x is bound by its master.cf line
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_peername_lookup = no
smtpd_client_connection_count_limit = 0
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
# the SMTP dialogue with loopback clients goes into the log: tests read the commands as received
debug_peer_list = 127.0.0.0/8

# every recipient of its domains goes into one Maildir
virtual_mailbox_domains = {domains}
virtual_mailbox_base = {vmail}
virtual_mailbox_maps = static:Maildir/
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534

# what it sends itself (DSNs) goes only where the test says, never by DNS
smtp_dns_support_level = disabled
transport_maps = {transport}
default_transport = error:the fixture sends only to its routes
relay_transport = error:the fixture sends only to its routes
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
"""


class Postfix:
    def __init__(self, root, ip, port, domains, routes, hostname):
        self.root = root
        self.ip = ip
        self.port = port
        self.conf = os.path.join(root, "conf")
        self.queue = os.path.join(root, "queue")
        self.data = os.path.join(root, "data")
        self.vmail = os.path.join(root, "vmail")
        self.log = os.path.join(root, "maillog")
        self.hostname = hostname
        for d in (self.conf, self.queue, self.data, self.vmail):
            os.makedirs(d)
        # the daemons run as postfix (and virtual(8) as 65534) and must reach these directories
        os.chmod(root, 0o755)
        shutil.chown(self.data, "postfix")
        os.chown(self.vmail, 65534, 65534)
        transport = "inline:{ %s }" % ", ".join("%s=smtp:[%s]:%d" % (d, h, p) for d, (h, p) in routes.items()) \
            if routes else ""
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            f.write(MAIN_CF.format(conf=self.conf, queue=self.queue, data=self.data, log=self.log, root=root,
                                   hostname=hostname, ip=ip, domains=", ".join(domains), vmail=self.vmail,
                                   transport=transport))
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            f.write(MASTER_CF.format(listen="%s:%d" % (ip, port)))
        self._run("check")

    def _run(self, *args, timeout=60):
        p = subprocess.run(["postfix", "-c", self.conf, *args], capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError("postfix %s failed: %s%s\n%s" % (" ".join(args), p.stdout, p.stderr, self.log_text()))
        return p

    def start(self):
        self._run("start")
        import socket
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.ip, self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("postfix did not listen on %s:%d:\n%s" % (self.ip, self.port, self.log_text()))

    def master_pid(self):
        try:
            with open(os.path.join(self.queue, "pid", "master.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def stop(self):
        pid = self.master_pid()
        subprocess.run(["postfix", "-c", self.conf, "stop"], capture_output=True, timeout=60)
        deadline = time.monotonic() + 10
        while pid is not None and time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except OSError:
                return
            time.sleep(0.1)
        if pid is not None:  # its own master only, by its pid
            subprocess.run(["postfix", "-c", self.conf, "abort"], capture_output=True, timeout=60)

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_log(self, needle, timeout=20.0):
        """The maillog lines holding needle, waiting until there is one."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [line for line in self.log_text().splitlines() if needle in line]
            if lines or time.monotonic() > deadline:
                return lines
            time.sleep(0.1)

    def received_commands(self):
        """The command lines smtpd received, as its debug_peer_list logging shows them ("< host: CMD")."""
        out = []
        for line in self.log_text().splitlines():
            if "/smtpd[" in line and "]: < " in line:
                out.append(line.split("]: < ", 1)[1].split(": ", 1)[-1])
        return out

    def maildir(self):
        """The delivered messages (new/ of the one Maildir), as bytes."""
        out = []
        for path in sorted(glob.glob(os.path.join(self.vmail, "Maildir", "new", "*"))):
            with open(path, "rb") as f:
                out.append(f.read())
        return out


class Postfixes:
    def __init__(self):
        self.all = []

    def start(self, ip, port, domains, routes=None, hostname="pf.fixture.test"):
        root = tempfile.mkdtemp(prefix="mw-postfix-", dir="/tmp")
        pf = Postfix(root, ip, port, domains, routes or {}, hostname)
        self.all.append(pf)
        return pf.start()

    def stop_all(self):
        for pf in self.all:
            pf.stop()
            shutil.rmtree(pf.root, ignore_errors=True)


@pytest.fixture
def postfix():
    if shutil.which("postfix") is None and not os.path.exists("/usr/sbin/postfix"):
        pytest.fail("Postfix is not installed (scripts/deps.sh installs it)")
    p = Postfixes()
    yield p
    p.stop_all()


__all__ = ["Postfix", "postfix"]
