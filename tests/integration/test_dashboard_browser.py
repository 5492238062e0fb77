"""The web dashboard in headless Chromium (browserfixture.py): signing in, adding a domain,
publishing its records in the DNS fixture and verifying it, following an email sent through the
API until it is delivered and opening its timeline, adding a webhook and seeing it delivered to,
suppressing an address, routing an address to the applications and reading what it received;
the email body's frame runs no script; the overview warns of a certificate about to expire; the
emails list's filters (tag, status, search) are the server's and an email's page lists its header
fields; a domain's page and the list follow checks they did not start; every page at desktop and
phone widths, saved as screenshots, with no serious or critical axe-core violation."""
import json
import os
import re
import smtplib
import subprocess

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from apifixture import Api, SENDER
from browserfixture import DESKTOP, PHONE, browser_for  # noqa: F401 - the fixture
from conftest import DOMAIN, Server
from dnsfixture import DNSServer
from mtafixture import wait_for
from test_api_domains import publish
from test_reload import conf_value
from test_webhooks import Receiver

# headless Chromium waits at most 30 s for each step: beside three other test files on two cores it
# sometimes does not get there, so it runs alone
pytestmark = pytest.mark.serial

ADMIN = "boss@" + DOMAIN
ADMIN_PASSWORD = "correct horse battery staple"
NEW_DOMAIN = "shop.test"


@pytest.fixture(scope="module")
def dns():
    d = DNSServer(ttl=0).start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def dash(tmp_path_factory, dns):
    s = Server(tmp_path_factory.mktemp("dashb"), overrides=["api.rate_limit=none", "dns.resolver=" + dns.resolver])
    with open(s.conf, "a") as f:  # the webhook receiver is on loopback
        f.write("\n[webhooks]\nallow_private = yes\n")
    s.cli("user", "add", ADMIN, "--admin", "--password-stdin", input=ADMIN_PASSWORD + "\n")
    s.start()
    yield Api(s, s.cli("apikey", "create", "tests", "--quiet").stdout.strip())
    s.stop()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def row_with(b, table_css, text):
    """The table row under table_css that holds text, once there is one."""
    def find(_):
        for tr in b.d.find_elements(By.CSS_SELECTOR, table_css + " tbody tr"):
            if text in tr.text:
                return tr
        return False
    return b.wait(find)


def test_sign_in_domain_email_webhook_suppression(dash, dns, browser_for, receiver, tmp_path):
    b = browser_for(dash.base)
    b.open()
    b.heading("Sign in")
    # a wrong password is refused on the page
    b.fill("#login-password input[name=email]", ADMIN)
    b.fill("#login-password input[name=password]", "wrong")
    b.d.find_element(By.CSS_SELECTOR, "#login-password button[type=submit]").click()
    b.text_in("main [role=alert]", "not right")
    b.login(ADMIN, ADMIN_PASSWORD)
    assert b.el("#who-name").text == ADMIN
    # the cookie is out of the page's reach (HttpOnly)
    assert "mailwerk_session" not in b.d.execute_script("return document.cookie")
    cookie = [c for c in b.d.get_cookies() if c["name"] == "mailwerk_session"][0]
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict" and cookie["path"] == "/"

    # a domain: add it, publish what the page lists, verify
    b.go("#/domains")
    b.heading("Domains")
    b.fill("#domain-add input", NEW_DOMAIN)
    b.d.find_element(By.CSS_SELECTOR, "#domain-add button[type=submit]").click()
    b.heading(NEW_DOMAIN)
    b.el("#domain table")
    d = [x for x in dash.curl("GET", "/domains").json["data"] if x["name"] == NEW_DOMAIN][0]
    records = dash.curl("GET", "/domains/" + d["id"]).json["records"]
    shown = b.el("#domain table").text
    for r in records:
        assert r["value"] in shown, r
    publish(dns, NEW_DOMAIN, records)
    b.el("#verify").click()
    b.text_in("#domain-status", "verified", timeout=40)
    assert "partially" not in b.el("#domain-status").text
    b.wait(lambda _: all(x.text == "verified" for x in b.d.find_elements(By.CSS_SELECTOR, "#domain td .badge")) or None)

    # an email sent through the API moves to delivered in the list; its page has the timeline
    b.go("#/emails")
    b.heading("Emails")
    id = dash.send(to=[SENDER], subject="watch me", text="hello", html="<p>hello</p>")
    row = row_with(b, "#email-list", "watch me")
    b.wait(lambda _: "delivered" in row_with(b, "#email-list", "watch me").text or None, timeout=40)
    # search and filter
    b.fill("main input[type=search]", "watch")
    b.wait(lambda _: all("watch me" in r.text for r in b.d.find_elements(By.CSS_SELECTOR, "#email-list tbody tr")) or None)
    Select(b.el("main form select")).select_by_value("bounced")
    b.text_in("#email-list", "No email matches")
    Select(b.el("main form select")).select_by_value("delivered")
    row_with(b, "#email-list", "watch me").find_element(By.CSS_SELECTOR, "a").click()
    b.heading("watch me")
    assert id in b.el("main").text
    timeline = b.el(".recipient").text
    assert SENDER in timeline and "delivered" in timeline and "sent" in timeline, timeline
    assert b.d.find_elements(By.CSS_SELECTOR, ".recipient li.event[data-type=delivered]")

    # a webhook added on the page gets the next email's events
    b.go("#/webhooks")
    b.heading("Webhooks")
    b.fill("#webhook-add input[type=url]", receiver.url)
    b.d.find_element(By.CSS_SELECTOR, "#webhook-add button[type=submit]").click()
    secret = b.el("#webhook-secret").text
    assert secret.startswith("whsec_")
    row_with(b, "#webhook-list", receiver.url)
    id2 = dash.send(to=[SENDER], subject="hooked", text="x")
    got = wait_for(lambda: [r for r in receiver.requests if json.loads(r["body"])["data"].get("email_id") == id2
                            and json.loads(r["body"])["type"] == "email.delivered"], 30)
    assert got, receiver.requests
    # the page shows the delivery with the endpoint's answer, and posts it again on request
    row_with(b, "#webhook-list", receiver.url).find_element(By.XPATH, ".//button[text()='Deliveries']").click()
    b.wait(lambda _: "success" in row_with(b, "#webhook-deliveries", "email.delivered").text or
           (b.el("#webhook-deliveries button").click() and None), timeout=30)
    row = [r for r in b.d.find_elements(By.CSS_SELECTOR, "#webhook-deliveries tbody tr")
           if "email.delivered" in r.text.split("\n")[0] and r.find_elements(By.XPATH, ".//button[text()='Attempts']")][0]
    row.find_element(By.XPATH, ".//button[text()='Attempts']").click()
    b.text_in("#webhook-deliveries .attempts", "HTTP 200")
    assert id2 in b.el("#webhook-deliveries .attempts").text
    before = len(receiver.requests)
    [r for r in b.d.find_elements(By.CSS_SELECTOR, "#webhook-deliveries tbody tr")
     if "email.delivered" in r.text][0].find_element(By.XPATH, ".//button[text()='Replay']").click()
    again = wait_for(lambda: [r for r in receiver.requests[before:] if json.loads(r["body"])["type"] == "email.delivered"
                              and json.loads(r["body"])["data"].get("email_id") == id2], 30)
    assert again, receiver.requests[before:]

    # an address suppressed on the page is on the list
    b.go("#/suppressions")
    b.heading("Suppressions")
    b.fill("#suppression-add input[type=email]", "gone@example.net")
    b.d.find_element(By.CSS_SELECTOR, "#suppression-add button[type=submit]").click()
    row_with(b, "#suppression-list", "gone@example.net")
    assert dash.curl("GET", "/suppressions/gone@example.net").status == 200
    # a CSV file imports its first column (the header line is skipped)
    csv = tmp_path / "list.csv"
    csv.write_text('email,name\r\n"one@example.net",One\r\ntwo@example.net,Two\r\n')
    b.el("#suppression-import input[type=file]").send_keys(str(csv))
    b.d.find_element(By.CSS_SELECTOR, "#suppression-import button[type=submit]").click()
    row_with(b, "#suppression-list", "two@example.net")
    for a in ("one@example.net", "two@example.net"):
        assert dash.curl("GET", "/suppressions/" + a).status == 200, a
    assert dash.curl("GET", "/suppressions/email").status == 404
    # search narrows the list
    b.fill("input[type=search]", "nomatch")
    b.text_in("#suppression-list", "No address matches")

    # sign out: the API no longer takes the browser
    b.el("#logout").click()
    b.heading("Sign in")
    status = b.d.execute_async_script(
        "const done = arguments[0]; fetch('/emails', {credentials: 'same-origin'}).then(r => done(r.status));")
    assert status == 401


def test_email_body_frame_runs_no_script(dash, browser_for):
    html = ('<p id="x">inert</p><script>document.getElementById("x").textContent = "RAN";'
            'try { parent.document.title = "owned"; } catch (e) {}</script>'
            '<img src="x" onerror="document.getElementById(\'x\').textContent = \'RAN\'">'
            '<img id="remote" src="https://192.0.2.1/pixel.png">')
    id = dash.send(to=[SENDER], subject="hostile", html=html)
    b = browser_for(dash.base)
    b.login(ADMIN, ADMIN_PASSWORD)
    b.go("#/emails/" + id)
    b.heading("hostile")
    frame = b.el("iframe#email-body")
    sandbox = frame.get_attribute("sandbox").split()
    assert "allow-scripts" not in sandbox and "allow-same-origin" not in sandbox, sandbox
    assert frame.get_attribute("srcdoc").startswith("<!doctype html>")
    assert "default-src 'none'" in frame.get_attribute("srcdoc") and "img-src data:\"" in frame.get_attribute("srcdoc")
    b.d.switch_to.frame(frame)
    try:
        b.wait(lambda d: d.find_element(By.ID, "x"))
        assert b.d.find_element(By.ID, "x").text == "inert"
        # the remote image was not loaded (the frame's policy blocks it until asked)
        assert b.d.execute_script("return document.getElementById('remote').naturalWidth") == 0
    finally:
        b.d.switch_to.default_content()
    assert b.d.title != "owned" and "hostile" in b.d.title
    # asking for remote images changes the frame's policy, not the sandbox
    b.el("#remote-images").click()
    frame = b.el("iframe#email-body")
    assert "img-src data: https:" in frame.get_attribute("srcdoc")
    assert "allow-scripts" not in frame.get_attribute("sandbox")


def test_inbound_route_and_received_mail(dash, browser_for):
    b = browser_for(dash.base)
    b.login(ADMIN, ADMIN_PASSWORD)
    b.go("#/inbound")
    b.heading("Inbound")
    b.fill("#route-add input[type=text]", "inbox@" + DOMAIN)
    b.d.find_element(By.CSS_SELECTOR, "#route-add button[type=submit]").click()
    row_with(b, "#route-list", "inbox@" + DOMAIN)
    assert any(r["address"] == "inbox@" + DOMAIN for r in dash.curl("GET", "/inbound/routes").json["data"])
    msg = ("From: Alice <alice@example.net>\r\nTo: inbox@%s\r\nSubject: routed here\r\nMessage-ID: <r1@example.net>\r\n"
           "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello, application.\r\n") % DOMAIN
    with smtplib.SMTP("127.0.0.1", dash.server.smtp_port, timeout=30) as c:
        c.sendmail("alice@example.net", ["inbox@" + DOMAIN], msg.encode())
    b.wait(lambda _: "routed here" in b.el("#received-list").text or (b.el("#received-refresh").click() and None), timeout=30)
    row_with(b, "#received-list", "routed here").find_element(By.CSS_SELECTOR, "a").click()
    b.heading("routed here")
    assert "alice@example.net" in b.el("main").text and "Hello, application." in b.el("#body-box").text
    b.el("#received-headers summary").click()
    assert "<r1@example.net>" in b.el("#received-headers").text


def test_accounts_page(dash, browser_for):
    b = browser_for(dash.base)
    b.login(ADMIN, ADMIN_PASSWORD)
    b.go("#/accounts")
    b.heading("Accounts")
    row_with(b, "#user-list", ADMIN)
    b.fill("#user-add input[type=email]", "dave@" + DOMAIN)
    b.fill("#user-add input[type=password]", "dave's password")
    b.d.find_element(By.CSS_SELECTOR, "#user-add input[type=checkbox]").click()
    b.d.find_element(By.CSS_SELECTOR, "#user-add button[type=submit]").click()
    assert "admin" in row_with(b, "#user-list", "dave@" + DOMAIN).text
    assert "dave@" + DOMAIN in dash.server.cli("user", "list").stdout.split()
    b2 = browser_for(dash.base)
    b2.login("dave@" + DOMAIN, "dave's password")


def test_dkim_rotation_page(dash, browser_for):
    domain = [x for x in dash.curl("GET", "/domains").json["data"] if x["name"] == DOMAIN][0]["id"]
    b = browser_for(dash.base)
    b.login(ADMIN, ADMIN_PASSWORD)
    b.go("#/domains/" + domain)
    b.heading(DOMAIN)
    b.fill("#dkim-add input[type=text]", "rotated")
    b.d.find_element(By.CSS_SELECTOR, "#dkim-add button[type=submit]").click()
    row = row_with(b, "#dkim-keys", "rotated")
    assert "v=DKIM1; k=rsa; p=" in row.text and "active" not in row.text
    row.find_element(By.XPATH, ".//button[text()='Activate']").click()
    b.wait(lambda d: d.switch_to.alert).accept()
    b.wait(lambda _: "active" in row_with(b, "#dkim-keys", "rotated").text or None)
    keys = {k["selector"]: k["active"] for k in dash.curl("GET", "/domains/%s/dkim-keys" % domain).json["data"]}
    assert keys["rotated"] is True and sum(keys.values()) == 1, keys


def test_overview_counts_and_warns_of_a_failing_webhook(dash, browser_for, receiver):
    receiver.fail(1000)
    hook = dash.curl("POST", "/webhooks", {"endpoint": receiver.url, "events": ["email.sent"]}).json["id"]
    try:
        dash.send(to=[SENDER], subject="to a failing hook", text="x")
        events = "/webhooks/%s/events" % hook
        assert wait_for(lambda: [e for e in dash.curl("GET", events).json["data"] if e["status"] == "attempting"], 30)
        b = browser_for(dash.base)
        b.login(ADMIN, ADMIN_PASSWORD)
        b.text_in("main", "is failing")
        assert receiver.url in b.el("main").text
        delivered = int(b.el("#chart-24h [data-kind=delivered]").text)
        assert delivered >= 1 and int(b.el("#chart-24h [data-kind=sent]").text) >= delivered
        # the certificate mailwerk init made is good for long: shown, not warned of
        assert "valid until" in b.el("#tls-certificate").text
        assert not b.d.find_elements(By.CSS_SELECTOR, "#cert-warning")
    finally:
        dash.curl("DELETE", "/webhooks/" + hook)


def test_overview_warns_of_an_expiring_certificate(tmp_path, browser_for):
    """A certificate with five days left (renewal has failed) is a warning on the overview."""
    s = Server(tmp_path, overrides=["api.rate_limit=none"])
    # written over the files mailwerk init made, before the server starts
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "5", "-subj", "/CN=soon.example", "-keyout", conf_value(s, "tls", "key"), "-out", s.cert],
                   capture_output=True, timeout=60, check=True)
    s.cli("user", "add", ADMIN, "--admin", "--password-stdin", input=ADMIN_PASSWORD + "\n")
    s.start()
    try:
        b = browser_for("http://127.0.0.1:%d" % s.http_port)
        b.login(ADMIN, ADMIN_PASSWORD)
        warning = b.el("#cert-warning").text
        assert "soon.example" in warning and re.search(r"expires in [45] days", warning), warning
        assert "soon.example" in b.el("#tls-certificate").text
        assert not b.axe_violations()
    finally:
        s.stop()


def test_email_list_filters_on_the_server_and_email_headers(dash, browser_for):
    """Tag, status and text filters go to GET /emails; an email's page lists its header fields."""
    alpha = dash.send(to=[SENDER], subject="filter alpha", text="a", tags=[{"name": "campaign", "value": "alpha"}])
    beta = dash.send(to=[SENDER], subject="filter beta", text="b", tags=[{"name": "campaign", "value": "beta"}])
    for id in (alpha, beta):
        dash.wait_event(id, "delivered")
    b = browser_for(dash.base)
    b.login(ADMIN, ADMIN_PASSWORD)
    b.go("#/emails")
    b.heading("Emails")
    tag = b.d.find_element(By.XPATH, "//label[text()='Tag']/following-sibling::input")
    tag.send_keys("campaign:alpha")

    def rows():
        return [r.text for r in b.d.find_elements(By.CSS_SELECTOR, "#email-list tbody tr")]
    b.wait(lambda _: rows() and all("filter alpha" in r for r in rows()) or None)
    assert "campaign:alpha" in rows()[0]
    assert b.el("#older").get_attribute("disabled") is not None and b.el("#newer").get_attribute("disabled") is not None
    tag.clear()
    tag.send_keys("campaign")
    b.wait(lambda _: len([r for r in rows() if "filter " in r]) == 2 or None)
    Select(b.el("main form select")).select_by_value("bounced")
    b.text_in("#email-list", "No email matches")
    Select(b.el("main form select")).select_by_value("delivered")
    search = b.el("main input[type=search]")
    search.send_keys("beta")
    b.wait(lambda _: rows() and all("filter beta" in r for r in rows()) or None)
    row_with(b, "#email-list", "filter beta").find_element(By.CSS_SELECTOR, "a").click()
    b.heading("filter beta")
    b.el("#sent-headers summary").click()
    fields = b.el("#sent-headers").text
    for name in ("Subject", "Message-ID", "DKIM-Signature", "Received"):
        assert name in fields, fields
    assert "filter beta" in fields


def test_domain_status_follows_the_server(dash, dns, browser_for):
    """A check the page did not start (here through the API) shows on the open domain page and list."""
    d = dash.curl("POST", "/domains", {"name": "live.test"}).json
    b = browser_for(dash.base)
    b.login(ADMIN, ADMIN_PASSWORD)
    b.go("#/domains/" + d["id"])
    b.heading("live.test")
    assert "verified" not in b.el("#domain-status").text
    # the keyboard on a copy button: the statuses change in place around it
    copy = b.el("#domain td.mono + td button")
    b.d.execute_script("arguments[0].focus()", copy)
    publish(dns, "live.test", dash.curl("GET", "/domains/" + d["id"]).json["records"])
    assert dash.curl("POST", "/domains/%s/verify" % d["id"]).status == 200
    b.text_in("#domain-status", "verified", timeout=40)
    assert "partially" not in b.el("#domain-status").text
    b.wait(lambda _: all(x.text == "verified" for x in b.d.find_elements(By.CSS_SELECTOR, "#domain td.record-status .badge"))
           or None)
    assert b.d.switch_to.active_element == copy
    b.wait(lambda _: "The domain is now verified" in b.el("#status").get_attribute("textContent") or None)
    # the list follows too: the DKIM record disappears, the server's check finds it gone
    b.go("#/domains")
    row_with(b, "#domain-list", "live.test")
    publish(dns, "live.test", dash.curl("GET", "/domains/" + d["id"]).json["records"], leave_out=("DKIM",))
    assert dash.curl("POST", "/domains/%s/verify" % d["id"]).status == 200
    b.wait(lambda _: "verified" not in row_with(b, "#domain-list", "live.test").text.replace("partially verified", "")
           or None, timeout=40)
    dash.curl("DELETE", "/domains/" + d["id"])


PAGES = [("#/overview", "Overview"), ("#/emails", "Emails"), ("#/domains", "Domains"), ("#/api-keys", "API keys"),
         ("#/webhooks", "Webhooks"), ("#/suppressions", "Suppressions"), ("#/queue", "Queue"),
         ("#/inbound", "Inbound"), ("#/accounts", "Accounts")]


def test_every_page_at_desktop_and_phone_width_is_accessible(dash, browser_for):
    id = dash.send(to=[SENDER], subject="for the screenshot", html="<h1>Hello</h1><p>An email.</p>")
    dash.wait_event(id, "delivered")
    domain = [x for x in dash.curl("GET", "/domains").json["data"] if x["name"] == DOMAIN][0]["id"]
    b = browser_for(dash.base)
    pages = [("#/login", "Sign in")] + PAGES + [("#/emails/" + id, "for the screenshot"), ("#/domains/" + domain, DOMAIN)]
    problems = {}
    for width, height in (DESKTOP, PHONE):
        b.d.set_window_size(width, height)
        b.d.delete_all_cookies()
        for hash_path, title in pages:
            if hash_path == "#/login":
                b.open("#/login")
            else:
                if not b.d.get_cookies():
                    b.login(ADMIN, ADMIN_PASSWORD)
                b.go(hash_path)
            b.heading(title)
            b.wait(lambda d: not [e for e in d.find_elements(By.CSS_SELECTOR, "main p.muted") if e.text == "Loading…"] or None)
            # keyboard: the page's heading has the focus (the sign-in page's: its first field), and
            # Tab reaches a control
            focused = b.d.execute_script("return document.activeElement.tagName")
            assert focused == ("INPUT" if hash_path == "#/login" else "H1"), hash_path
            b.d.switch_to.active_element.send_keys(Keys.TAB)
            assert b.d.execute_script("return document.activeElement.tagName") in ("A", "BUTTON", "INPUT", "SELECT", "SUMMARY")
            # nothing wider than the screen but the tables' own scrolling boxes
            assert b.d.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1"), \
                (hash_path, width)
            b.screenshot("%s-%dx%d" % (hash_path.strip("#/").replace("/", "_") or "root", width, height))
            v = b.axe_violations()
            if v:
                problems["%s@%d" % (hash_path, width)] = v
    assert not problems, json.dumps(problems, indent=1)
    shots = os.listdir(b.artifacts)
    assert sum(1 for f in shots if f.endswith("-390x844.png")) >= len(pages)


def test_dark_mode(dash, browser_for):
    b = browser_for(dash.base)
    b.d.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    b.login(ADMIN, ADMIN_PASSWORD)
    bg = b.d.execute_script("return getComputedStyle(document.body).backgroundColor")
    assert bg == "rgb(18, 20, 23)", bg
    b.screenshot("overview-dark")
    assert not b.axe_violations()
