"""Failed logins in Dovecot's auth-penalty shape (server/login.c), with real clients: smtplib for
SMTP AUTH on the submissions listener, poplib for POP3, curl for the dashboard's sign-in. Clients
are told apart by their loopback source address (127.0.0.2, 127.0.0.3, ...).

- per client: 2 s after the first failure, doubled per further one up to 15 s; the same wrong
  password again costs the delay reached but does not count (one test on the real defaults, the
  others on a smaller scale of the same shape, set through -o);
- per account: failures from every client add up, so a new address against the same account
  waits too, but the right password is always accepted, after at most auth_delay_max;
- bans: auth_ban_failures failures from one client refuse its next connections (421 4.7.0,
  -ERR [SYS/TEMP], HTTP 429) until auth_ban_time is over or `mailwerk auth unban` lifts it, which a
  running server notices within seconds; bans survive a restart.

Each wall-clock check is a lower bound the delay itself guarantees (less a small slack) and an upper
bound generous enough for a loaded machine; what the server decided is read from its log
(failures=, delay_ms=)."""
import json
import poplib
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

from conftest import DOMAIN, Server
from mtafixture import log_events, wait_for

# each delay is measured to within LOADED: alone, where other tests cannot add to it
pytestmark = pytest.mark.serial

SLACK = 0.1   # the timer may fire a little early against time.monotonic()
LOADED = 3.0  # what a busy machine may add to one answer (hashing, scheduling)


def tls():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def smtps(s, source="127.0.0.1"):
    c = smtplib.SMTP_SSL("127.0.0.1", s.submissions_port, context=tls(), timeout=60, source_address=(source, 0))
    c.ehlo("client.example")
    return c


def auth_plain(c, user, password):
    """One AUTH PLAIN (smtplib's login() would try LOGIN as well): (reply code, seconds it took)."""
    c.user, c.password = user, password
    t0 = time.monotonic()
    try:
        code, _ = c.auth("PLAIN", c.auth_plain)
    except smtplib.SMTPAuthenticationError as e:
        code = e.smtp_code
    return code, time.monotonic() - t0


def logins(s, **match):
    """The event=login lines (dicts), in order."""
    return log_events(s, "login", **match)


def last_login(s, **match):
    found = logins(s, **match)
    assert found, s.log_text()[-3000:]
    return found[-1]


def pop3_fail(s, password):
    p = poplib.POP3_SSL("127.0.0.1", s.pop3s_port, timeout=60, context=tls())
    p.user(s.user)
    t0 = time.monotonic()
    with pytest.raises(poplib.error_proto) as e:
        p.pass_(password)
    took = time.monotonic() - t0
    assert b"[AUTH]" in e.value.args[0]
    p.quit()
    return took


class POP3From(poplib.POP3):
    """poplib from a given source address."""

    def __init__(self, host, port, source):
        self.source = source
        super().__init__(host, port, timeout=30)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=(self.source, 0))


def http_from(s, source, path="/healthz"):
    """curl from source: (status, body)."""
    p = subprocess.run(["curl", "-s", "--max-time", "30", "--interface", source, "-o", "-", "-w", "\n%{http_code}",
                        "http://127.0.0.1:%d%s" % (s.http_port, path)], capture_output=True, text=True, timeout=60)
    body, _, status = p.stdout.rpartition("\n")
    return int(status or 0), body


def smtp_greeting(s, source):
    """The first reply a new SMTP connection from source gets (plain submission port)."""
    try:
        with smtplib.SMTP("127.0.0.1", s.submission_port, timeout=30, source_address=(source, 0)):
            return 220  # smtplib raises for any other greeting
    except smtplib.SMTPConnectError as e:
        return e.smtp_code, e.smtp_error.decode()


def test_defaults_wait_2_then_4_seconds_and_a_repeat_does_not_grow(tmp_path):
    """The one test on the real defaults ([server] auth_delay_initial = 2s, auth_delay_max = 15s)."""
    s = Server(tmp_path, auth_defaults=True).start()
    try:
        with smtps(s) as c:
            code, took = auth_plain(c, s.user, "wrong-1")
            assert code == 535 and 2 - SLACK <= took < 2 + LOADED, took
            code, took = auth_plain(c, s.user, "wrong-2")
            assert code == 535 and 4 - SLACK <= took < 4 + LOADED, took
            # the first wrong password again: the delay reached (4 s), not the next one (8 s)
            code, took = auth_plain(c, s.user, "wrong-1")
            assert code == 535 and 4 - SLACK <= took < 8 - SLACK, took
        fails = logins(s, result="fail")
        assert [(f["failures"], f["delay_ms"]) for f in fails] == [("1", "2000"), ("2", "4000"), ("2", "4000")], fails
        # the right password gets in: this client's own failures cost it nothing, and are forgotten
        with smtps(s) as c:
            code, took = auth_plain(c, s.user, s.password)
            assert code == 235, code
        assert last_login(s, result="ok")["delay_ms"] == "0"
        with smtps(s) as c:
            code, took = auth_plain(c, s.user, "wrong-3")
            assert code == 535 and 2 - SLACK <= took < 2 + LOADED, took
        assert last_login(s, result="fail")["failures"] == "1"
    finally:
        s.stop()
    log = s.log_text()
    assert "wrong-1" not in log and s.password not in log


def test_account_counter_across_addresses_never_locks_the_owner_out(tmp_path):
    """200 ms doubling to 1.6 s: the shape, smaller. One count for SMTP, POP3 and the dashboard."""
    s = Server(tmp_path, overrides=["server.auth_delay_initial=200ms", "server.auth_delay_max=1600ms"]).start()
    try:
        with smtps(s) as c:
            code, took = auth_plain(c, s.user, "guess-1")
            assert code == 535 and took >= 0.2 - SLACK
        assert pop3_fail(s, "guess-2") >= 0.4 - SLACK
        t0 = time.monotonic()
        p = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "30",
                            "-H", "Content-Type: application/json", "--data-binary",
                            json.dumps({"email": s.user, "password": "guess-3"}),
                            "http://127.0.0.1:%d/dashboard/session" % s.http_port],
                           capture_output=True, text=True, timeout=60)
        assert p.stdout == "401" and time.monotonic() - t0 >= 0.8 - SLACK, p.stdout
        assert [f["failures"] for f in logins(s, result="fail")] == ["1", "2", "3"]

        # a new address against the same account: its own first failure would cost 0.2 s, the
        # account's fourth costs 1.6 s
        with smtps(s, "127.0.0.2") as c:
            code, took = auth_plain(c, s.user, "guess-4")
            assert code == 535 and 1.6 - SLACK <= took < 1.6 + LOADED, took
        f = last_login(s, result="fail", client="127.0.0.2")
        assert (f["failures"], f["delay_ms"]) == ("1", "1600"), f
        # another account from another address: only its own count
        with smtps(s, "127.0.0.3") as c:
            code, took = auth_plain(c, "nobody@" + DOMAIN, "guess-1")
            assert code == 535 and took >= 0.2 - SLACK
        assert last_login(s, result="fail", client="127.0.0.3")["delay_ms"] == "200"

        # the owner, from an address new to the account: the right password is accepted, after the
        # account's delay, which is bounded by auth_delay_max however many failures it has
        with smtps(s, "127.0.0.4") as c:
            code, took = auth_plain(c, s.user, s.password)
            assert code == 235 and 1.6 - SLACK <= took < 1.6 + LOADED, (code, took)
        assert last_login(s, result="ok", client="127.0.0.4")["delay_ms"] == "1600"
        # from there, the account's count no longer holds it up, nor its own typo
        with smtps(s, "127.0.0.4") as c:
            assert auth_plain(c, s.user, s.password)[0] == 235
        assert last_login(s, result="ok", client="127.0.0.4")["delay_ms"] == "0"
        with smtps(s, "127.0.0.4") as c:
            assert auth_plain(c, s.user, "typo")[0] == 535
        assert last_login(s, result="fail", client="127.0.0.4")["delay_ms"] == "200"
        # the client that failed before gets in too, its own failure not held against it
        with smtps(s, "127.0.0.2") as c:
            assert auth_plain(c, s.user, s.password)[0] == 235
        assert last_login(s, result="ok", client="127.0.0.2")["delay_ms"] == "1600"  # 5 failures, 1 its own
    finally:
        s.stop()


BAN = ["server.auth_delay_initial=50ms", "server.auth_delay_max=100ms", "server.auth_ban_failures=3"]


def fail_times(s, source, *passwords):
    with smtps(s, source) as c:
        return [auth_plain(c, s.user, p)[0] for p in passwords]


def refused_everywhere(s, source):
    assert smtp_greeting(s, source) == (421, "4.7.0 Too many failed logins from your address, try again later")
    with pytest.raises(poplib.error_proto) as e:
        POP3From("127.0.0.1", s.pop3_port, source)
    assert e.value.args[0].startswith(b"-ERR [SYS/TEMP] Too many failed logins"), e.value.args
    status, body = http_from(s, source)
    assert status == 429, (status, body)
    err = json.loads(body)
    assert err["statusCode"] == 429 and err["name"] == "rate_limit_exceeded" and err["message"], err


def bans(s):
    return [json.loads(line) for line in s.cli("auth", "bans", "--json").stdout.splitlines()]


def test_ban_refuses_survives_a_restart_and_unban_lifts_it(tmp_path):
    s = Server(tmp_path, overrides=BAN).start()
    try:
        early = smtps(s, "127.0.0.2")  # open before the ban
        # a repeated password does not count towards the ban; three different ones do
        assert fail_times(s, "127.0.0.2", "w1", "w2", "w1") == [535, 535, 535]
        assert log_events(s, "auth_ban") == []
        assert fail_times(s, "127.0.0.2", "w3") == [535]
        ban = wait_for(lambda: log_events(s, "auth_ban"), 10)
        assert ban and ban[0]["client"] == "127.0.0.2" and ban[0]["failures"] == "3" and ban[0]["until"], ban
        refused_everywhere(s, "127.0.0.2")
        assert log_events(s, "refused", reason="auth_ban", client="127.0.0.2")
        assert smtp_greeting(s, "127.0.0.1") == 220  # another client is not touched
        # a session opened before the ban gets no more checks, even with the right password
        assert auth_plain(early, s.user, s.password)[0] == 535
        early.close()
        assert log_events(s, "login", result="ok", client="127.0.0.2") == []

        listed = wait_for(lambda: bans(s), 10)  # written to the store on a worker
        assert len(listed) == 1 and listed[0]["client"] == "127.0.0.2" and listed[0]["failures"] == 3, listed
        since, until = listed[0]["since"], listed[0]["until"]
        assert since.endswith("Z") and until > since, listed
        table = s.cli("auth", "bans").stdout.splitlines()
        assert table[0].split() == ["CLIENT", "SINCE", "UNTIL", "FAILURES"] and table[1].split() == \
            ["127.0.0.2", since, until, "3"], table

        s.stop()
        s.start()  # the ban is in mailwerk.db: still refused after a restart
        refused_everywhere(s, "127.0.0.2")

        p = s.cli("auth", "unban", "127.0.0.2")
        assert "127.0.0.2" in p.stdout
        t0 = time.monotonic()
        assert wait_for(lambda: smtp_greeting(s, "127.0.0.2") == 220, 15, 0.2), s.log_text()[-2000:]
        assert time.monotonic() - t0 < 2 + 1 + LOADED  # one refresh (2 s) and a margin
        assert log_events(s, "auth_unban", client="127.0.0.2", reason="removed")
        assert bans(s) == [] and s.cli("auth", "bans").stdout.strip() == "no bans"
        status, _ = http_from(s, "127.0.0.2")
        assert status == 200
        # the client starts afresh: one failure is one, not a fourth
        assert fail_times(s, "127.0.0.2", "w4") == [535]
        assert last_login(s, result="fail", client="127.0.0.2")["failures"] == "1"
        # nothing to lift; not an address
        p = s.cli("auth", "unban", "127.0.0.2", check=False)
        assert p.returncode == 1 and "no ban for 127.0.0.2" in p.stderr, p.stderr
        for bad in ("localhost", "127.0.0.2/32", "::1/200", ""):
            p = s.cli("auth", "unban", bad, check=False)
            assert p.returncode == 2 and p.stderr.count("\n") == 1, (bad, p.stderr)
        for args in (("auth",), ("auth", "unban"), ("auth", "unban", "--all", "127.0.0.2"), ("auth", "bans", "--all"),
                     ("auth", "unban", "127.0.0.2", "--json"), ("auth", "ban")):
            p = s.cli(*args, check=False)
            assert p.returncode == 2 and p.stderr.startswith("mailwerk: "), (args, p.stderr)

        # --all
        for source in ("127.0.0.3", "127.0.0.4"):
            fail_times(s, source, "a", "b", "c")
        assert wait_for(lambda: len(bans(s)) == 2, 10), bans(s)
        assert s.cli("auth", "unban", "--all").stdout.strip() == "lifted 2 bans"
        assert wait_for(lambda: smtp_greeting(s, "127.0.0.3") == 220 and smtp_greeting(s, "127.0.0.4") == 220, 15, 0.2)
        assert len(log_events(s, "auth_unban", reason="removed")) == 3
    finally:
        s.stop()


def test_bans_expire(tmp_path):
    s = Server(tmp_path, overrides=BAN + ["server.auth_ban_time=2s"]).start()
    try:
        fail_times(s, "127.0.0.2", "x", "y", "z")
        assert smtp_greeting(s, "127.0.0.2")[0] == 421
        assert wait_for(lambda: smtp_greeting(s, "127.0.0.2") == 220, 15, 0.2)
        assert wait_for(lambda: log_events(s, "auth_unban", client="127.0.0.2", reason="expired"), 10)
    finally:
        s.stop()
