"""The fail2ban filter in packaging/fail2ban, run by fail2ban's own fail2ban-regex over a real
server's log: every failed login (SMTP AUTH, POP3, the dashboard) is one match with the client's
address and the time of the line, and nothing else matches."""
import os
import poplib
import re
import smtplib
import ssl
import subprocess
import time

import pytest

from conftest import Server

FILTER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "packaging", "fail2ban",
                      "mailwerk.conf")


def test_failed_logins_match_the_filter(tmp_path):
    s = Server(tmp_path).start()
    try:
        # the second name holds blanks and a quote: the log quotes it, the filter takes it whole
        for user in (s.user, 'odd "user" name'):
            with smtplib.SMTP("127.0.0.1", s.submission_port, timeout=30) as c:
                c.starttls()
                with pytest.raises(smtplib.SMTPAuthenticationError):
                    c.login(user, "wrong")
        with smtplib.SMTP("127.0.0.1", s.submission_port, timeout=30) as c:
            c.starttls()
            c.login(s.user, s.password)  # a success is no match
        p = poplib.POP3_SSL("127.0.0.1", s.pop3s_port, timeout=30, context=ssl._create_unverified_context())
        p.user(s.user)
        with pytest.raises(poplib.error_proto):
            p.pass_("nope")
        p.quit()
    finally:
        s.stop()
    log = s.log_text()
    failures = len(re.findall(r"event=login result=fail", log))
    # smtplib tries each mechanism the server offers (PLAIN, LOGIN): two failures a login
    assert failures == 5 and 'user="odd \\"user\\" name"' in log, log[-3000:]
    r = subprocess.run(["fail2ban-regex", "-v", s.log_path, FILTER], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"Lines: (\d+) lines, (\d+) ignored, (\d+) matched", r.stdout)
    assert m and int(m.group(3)) == failures, r.stdout
    # each match is the client's address with the time of its line
    hits = re.findall(r"^\|\s+(127\.0\.0\.1)\s+\w{3} \w{3} \d\d \d\d:\d\d:\d\d \d{4}$", r.stdout, re.M)
    assert len(hits) == failures, r.stdout


def test_ban_and_unban_lines_are_not_failures(tmp_path):
    """mailwerk's own ban (event=auth_ban client=... until=... failures=N) and its end
    (event=auth_unban client=... reason=...) are logged for an operator or another jail: the filter
    counts failed logins only, so a ban is never counted as one more."""
    s = Server(tmp_path, overrides=["server.auth_ban_failures=2"]).start()
    try:
        with smtplib.SMTP_SSL("127.0.0.1", s.submissions_port, timeout=30, source_address=("127.0.0.2", 0),
                              context=ssl._create_unverified_context()) as c:
            for password in ("wrong-1", "wrong-2"):
                with pytest.raises(smtplib.SMTPAuthenticationError):
                    c.login(s.user, password)
        s.cli("auth", "unban", "127.0.0.2")
        deadline = time.monotonic() + 15
        while "event=auth_unban" not in s.log_text() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        s.stop()
    log = s.log_text()
    assert re.search(r" event=auth_ban client=127\.0\.0\.2 until=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ failures=2$", log, re.M), log
    assert re.search(r" event=auth_unban client=127\.0\.0\.2 reason=removed$", log, re.M), log[-3000:]
    failures = len(re.findall(r"event=login result=fail", log))
    r = subprocess.run(["fail2ban-regex", "-v", s.log_path, FILTER], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"Lines: (\d+) lines, (\d+) ignored, (\d+) matched", r.stdout)
    assert m and int(m.group(3)) == failures == 4, (failures, r.stdout)
