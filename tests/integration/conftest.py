"""Fixtures for the integration tests: a real mailwerk server (the binary from $MAILWERK_BIN) with a
fresh setup made by `mailwerk init`, on free loopback ports. Real clients talk to it."""
import os
import re
import signal
import socket
import subprocess
import time

import pytest

BIN = os.environ.get("MAILWERK_BIN", os.path.join(os.path.dirname(__file__), "../../build-asan/mailwerk"))
DOMAIN = "mailwerk.test"
HOST = "mx.mailwerk.test"


def _port_block():
    """The ports this test process hands out: a share of those below the kernel's ephemeral range
    (ip_local_port_range), one share per pytest-xdist worker. The kernel never picks a port there
    for bind(0) or for a client's connect(), and no two workers share one, so a port picked here
    stays free until its server binds it, even while other tests run at the same time."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = map(int, f.read().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    first, last = max((10000, low - 1), (high + 1, 65535), key=lambda r: r[1] - r[0])
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:])
    size = (last - first + 1) // workers
    if size < 500:
        return None  # too few outside the ephemeral range: let the kernel choose
    return first + worker * size, first + (worker + 1) * size - 1


_port_range = _port_block()
_port_next = None
_ports_given = set()

# Failed logins wait 2 s, 4 s, 8 s, then 15 s on the defaults (server/login.c), and ten ban the
# client: a test server keeps that shape at a twentieth of it and bans nobody, so that the suite's
# wrong passwords cost little, unless a test sets these itself or asks for auth_defaults.
AUTH_FAST = (("server.auth_delay_initial", "100ms"), ("server.auth_delay_max", "400ms"),
             ("server.auth_ban_failures", "0"))


def _bindable(port, hosts):
    socks = []
    try:
        for host in hosts:
            s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
            socks.append(s)
            s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


def free_port(*hosts):
    """A TCP port free on every one of hosts (default 127.0.0.1; "127.0.0.2", "127.0.0.3" for MTAs
    sharing one), never one handed out before in this run: the kernel may give a just-closed port
    again, and a server's ports are all picked before it binds any of them."""
    global _port_next
    hosts = hosts or ("127.0.0.1",)
    if _port_range is None:
        for _ in range(200):
            with socket.socket(socket.AF_INET6 if ":" in hosts[0] else socket.AF_INET) as s:
                s.bind((hosts[0], 0))
                port = s.getsockname()[1]
            if port not in _ports_given and _bindable(port, hosts):
                _ports_given.add(port)
                return port
        raise RuntimeError("no port free on all of %s" % (hosts,))
    first, last = _port_range
    if _port_next is None:
        # from a random place in the block: another run of the suite on the machine may use it too
        _port_next = first + int.from_bytes(os.urandom(4), "big") % (last - first + 1)
    for _ in range(last - first + 1):
        port = _port_next
        _port_next = first if port == last else port + 1
        if port not in _ports_given and _bindable(port, hosts):
            _ports_given.add(port)
            return port
    raise RuntimeError("no port left in %d-%d free on all of %s" % (first, last, hosts))


# A UDP port that is bound and never read: the default resolver of test servers, so that no test
# depends on the machine's DNS. Lookups through it time out; remote mail stays queued.
_blackhole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
_blackhole.bind(("127.0.0.1", 0))
DNS_BLACKHOLE = "127.0.0.1@%d" % _blackhole.getsockname()[1]


def wait_port(port, proc, timeout=15.0, host="127.0.0.1"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("mailwerk exited early with %s" % proc.returncode)
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port %s:%d did not open" % (host, port))


def wait_gone(pid, timeout=15.0):
    """Until process pid has exited: gone, or a zombie whose descriptors are closed. Its main thread
    is a zombie as soon as it has exited, while other threads may still be exiting with the
    descriptors open: a zombie counts once it is the only thread left."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open("/proc/%d/stat" % pid) as f:
                zombie = f.read().rsplit(")", 1)[1].split()[0] == "Z"
            if zombie and os.listdir("/proc/%d/task" % pid) in ([], [str(pid)]):
                return
        except (FileNotFoundError, ProcessLookupError):
            return
        time.sleep(0.02)
    raise RuntimeError("process %d did not exit" % pid)


def rss_kib(pid):
    """The resident memory of process pid, in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def run_cli(*args, input=None, check=True):
    p = subprocess.run([BIN, *args], input=input, capture_output=True, text=True, timeout=60)
    if check and p.returncode != 0:
        raise AssertionError("mailwerk %s failed (%d): %s" % (" ".join(args), p.returncode, p.stderr))
    return p


class Server:
    """One mailwerk setup; start() may be called again after stop()/kill() on the same data."""

    def __init__(self, root, overrides=(), listen_in_file=False, init_args=(), listen=None, auth_defaults=False):
        self.dir = os.path.join(str(root), "var")
        out = run_cli("init", "--dir", self.dir, "--domain", DOMAIN, "--hostname", HOST, *init_args).stdout
        self.password = re.search(r"^Password:\s+(\S+)", out, re.M).group(1)
        self.user = "demo@" + DOMAIN
        self.conf = os.path.join(self.dir, "mailwerk.conf")
        self.cert = os.path.join(self.dir, "tls", "cert.pem")
        self.smtp_port = free_port()
        self.submission_port = free_port()
        self.submissions_port = free_port()
        self.pop3_port = free_port()
        self.pop3s_port = free_port()
        self.http_port = free_port()
        # listen={"smtp": ("127.0.0.5", 2525)} puts a listener on another loopback address or a
        # given port (e.g. a second server as the MX of a test domain); the others stay on 127.0.0.1
        self.hosts = {}
        for name, (host, port) in (listen or {}).items():
            self.hosts[name] = host
            setattr(self, name + "_port", port)
        self.overrides = list(overrides)
        self.auth_defaults = auth_defaults  # True: the real failed-login delays and bans (AUTH_FAST)
        # listen_in_file: write the ports into mailwerk.conf instead of passing -o, so that a reload
        # can change listeners (-o values are applied again on reload and would win)
        self.listen_in_file = listen_in_file
        self.proc = None
        self.env = None  # the environment serve runs with (None: the tests' own)
        self.preexec = None  # run in the child before serve starts (resource limits)
        self.log_path = os.path.join(str(root), "serve.log")

    def host(self, name):
        """The address the listener name ("smtp", "submission", ...) is on."""
        return self.hosts.get(name, "127.0.0.1")

    def listen_lines(self):
        return {name: ("[%s]:%d" if ":" in self.host(name) else "%s:%d") % (self.host(name), getattr(self, name + "_port"))
                for name in ("smtp", "submission", "submissions", "pop3", "pop3s", "http")}

    def set_listen(self, **values):
        """Rewrites [listen] name = value lines in mailwerk.conf."""
        text = open(self.conf).read()
        for name, value in values.items():
            text = re.sub(r"^%s = .*$" % name, "%s = %s" % (name, value), text, flags=re.M)
        with open(self.conf, "w") as f:
            f.write(text)

    def start(self):
        args = [BIN, "serve", "-c", self.conf]
        if self.listen_in_file:
            self.set_listen(**self.listen_lines())
        else:
            for name, value in self.listen_lines().items():
                args += ["-o", "listen.%s=%s" % (name, value)]
        if not any(o.startswith("dns.resolver=") for o in self.overrides):
            # hermetic by default: mail for other domains waits in the queue, as DNS never answers
            args += ["-o", "dns.resolver=" + DNS_BLACKHOLE]
            if not any(o.startswith("smtp.auth_checks=") for o in self.overrides):
                # SPF/DKIM/DMARC would wait for that DNS until their deadline on every message;
                # the tests of the checks give a DNS fixture
                args += ["-o", "smtp.auth_checks=no"]
        for key, value in () if self.auth_defaults else AUTH_FAST:
            if not any(o.startswith(key + "=") for o in self.overrides):
                args += ["-o", "%s=%s" % (key, value)]
        for o in self.overrides:
            args += ["-o", o]
        self.log = open(self.log_path, "ab")
        since = self.log.tell()
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log, env=self.env,
                                     preexec_fn=self.preexec)
        # the worker logs event=started once every listener is open and every store (the parent
        # binds the ports before that). Nothing connects to find out: a probe connection would
        # count against max_connections_per_ip until the worker has seen it close, and after a
        # kill could reach the old worker's sockets, not yet closed
        deadline = time.monotonic() + 30
        while "event=started" not in self.log_text(since):
            if self.proc.poll() is not None:
                raise RuntimeError("mailwerk exited early with %s:\n%s"
                                   % (self.proc.returncode, self.log_text()[-3000:]))
            if time.monotonic() > deadline:
                raise RuntimeError("mailwerk did not start:\n" + self.log_text()[-3000:])
            time.sleep(0.02)
        return self

    def stop(self):
        """SIGTERM; the server must exit 0 with no sanitizer report."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=30)
        self.proc = None
        self.log.close()
        assert rc == 0, "mailwerk exited with %d; log:\n%s" % (rc, self.log_text()[-4000:])
        self.assert_clean_log()

    def kill(self):
        """SIGKILL to the parent: its worker is killed with it (PR_SET_PDEATHSIG); waits for both,
        so that the ports and the stores are free for the next start."""
        worker = self.worker_pid()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None
        self.log.close()
        if worker is not None:
            wait_gone(worker)

    def worker_pid(self):
        """The pid of the worker process serving now (the parent logs each one it starts)."""
        found = re.findall(r"event=worker_started pid=(\d+)", self.log_text())
        return int(found[-1]) if found else None

    def log_text(self, since=0):
        """The server's log (from byte offset since)."""
        with open(self.log_path, "rb") as f:
            f.seek(since)
            return f.read().decode("utf-8", "replace")

    def assert_clean_log(self):
        text = self.log_text()
        for bad in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
            assert bad not in text, "sanitizer report in the server log:\n" + text[-6000:]

    def cli(self, *args, **kw):
        return run_cli(*args, "-c", self.conf, **kw)

    def queue(self):
        import json
        return json.loads(self.cli("queue", "list", "--json").stdout)

    def messages(self):
        """Every accepted message that still exists, wherever it is now: {queue id: {"sender",
        "rcpts", "data"}}. Queued ones come from queue.db (data as stored); delivered ones from the
        Maildirs, without the Return-Path and Delivered-To lines local delivery puts in front, one
        entry per message with all the recipients it reached."""
        import glob
        import sqlite3
        found = {}
        db = sqlite3.connect(os.path.join(self.dir, "queue.db"))
        try:
            for qid, sender, data in db.execute("SELECT id, sender, data FROM messages"):
                rcpts = [r for (r,) in db.execute("SELECT addr FROM recipients WHERE msg_id = ? AND state != 1", (qid,))]
                found[qid] = {"sender": sender, "rcpts": rcpts, "data": bytes(data)}
        finally:
            db.close()
        for path in glob.glob(os.path.join(self.dir, "mail", "*", "*", "*", "*")):
            if os.path.basename(os.path.dirname(path)) not in ("new", "cur"):
                continue
            raw = open(path, "rb").read()
            m = re.match(rb"Return-Path: <([^>]*)>\r\nDelivered-To: ([^\r]*)\r\n", raw)
            qid = re.search(rb"\bid ([0-9A-Z]{20})\b", raw)
            if not m or not qid:
                continue
            entry = found.setdefault(qid.group(1).decode(), {"sender": m.group(1).decode("utf-8"), "rcpts": [],
                                                             "data": raw[m.end():]})
            rcpt = m.group(2).decode("utf-8")
            if rcpt not in entry["rcpts"]:  # read from the queue a moment before it was delivered
                entry["rcpts"].append(rcpt)
        return found

    def message(self, qid, timeout=10.0):
        """The accepted message qid (see messages()); waits briefly while it moves to a mailbox."""
        deadline = time.monotonic() + timeout
        while True:
            m = self.messages().get(qid)
            if m is not None or time.monotonic() > deadline:
                return m
            time.sleep(0.05)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("mw")).start()
    yield s
    s.stop()


@pytest.fixture
def fresh_server(tmp_path):
    """A server of its own, for tests that restart, reload or kill it."""
    s = Server(tmp_path)
    yield s
    if s.proc is not None:
        s.stop()


class Servers:
    """Several servers in one test (a sender and its peers); every one still running is stopped at
    the end, which checks its exit code and its log for sanitizer reports."""

    def __init__(self, root):
        self.root = root
        self.all = []

    def make(self, name, overrides=(), listen=None):
        """A set-up server in its own directory under the test's tmp_path, not started."""
        import pathlib
        root = pathlib.Path(str(self.root)) / name
        root.mkdir()
        if isinstance(overrides, dict):
            overrides = ["%s=%s" % kv for kv in overrides.items()]
        s = Server(root, overrides=overrides, listen=listen)
        self.all.append(s)
        return s

    def stop_all(self):
        errors = []
        for s in reversed(self.all):
            if s.proc is not None:
                try:
                    s.stop()
                except Exception as e:  # noqa: BLE001 - every server is stopped, then the first error raised
                    errors.append(e)
        if errors:
            raise errors[0]


@pytest.fixture
def servers(tmp_path):
    s = Servers(tmp_path)
    yield s
    s.stop_all()
