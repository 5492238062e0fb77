"""Headless Chromium for the dashboard tests, from Debian's packages (chromium, chromium-driver)
driven by python3-selenium: never a browser downloaded at test time. Each test's browser saves a
screenshot when the test fails, into the artifacts directory ($MAILWERK_ARTIFACTS, else
"artifacts" under pytest's base temporary directory); axe-core (tests/node, pinned by its
lockfile) is injected into a page to check its accessibility."""
import os
import re
import shutil

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "node")
AXE = os.path.join(NODE_DIR, "node_modules", "axe-core", "axe.min.js")
DESKTOP = (1280, 900)
PHONE = (390, 844)


def artifacts_dir(tmp_path_factory):
    d = os.environ.get("MAILWERK_ARTIFACTS") or os.path.join(str(tmp_path_factory.getbasetemp()), "artifacts")
    os.makedirs(d, exist_ok=True)
    return d


def new_browser():
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    driver_bin = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
              "--disable-extensions", "--window-size=%d,%d" % DESKTOP):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver_bin), options=opts)


class Browser:
    """One Chromium on one server's dashboard."""

    def __init__(self, driver, base, artifacts):
        self.d = driver
        self.base = base
        self.artifacts = artifacts

    def open(self, hash_path=""):
        """Loads the application afresh (from the same URL a get would only change the hash)."""
        self.d.get("about:blank")
        self.d.get(self.base + "/" + hash_path)

    def go(self, hash_path):
        """Another page of the application, by its hash route (no reload)."""
        self.d.execute_script("location.hash = arguments[0]", hash_path)

    def wait(self, cond, timeout=30):
        # a page that re-renders replaces the elements a condition was looking at: look again
        return WebDriverWait(self.d, timeout, poll_frequency=0.1,
                             ignored_exceptions=[StaleElementReferenceException]).until(cond)

    def el(self, css, timeout=30):
        return self.wait(EC.presence_of_element_located((By.CSS_SELECTOR, css)), timeout)

    def visible(self, css, timeout=30):
        return self.wait(EC.visibility_of_element_located((By.CSS_SELECTOR, css)), timeout)

    def text_in(self, css, text, timeout=30):
        return self.wait(EC.text_to_be_present_in_element((By.CSS_SELECTOR, css), text), timeout)

    def heading(self, text, timeout=30):
        return self.text_in("main h1", text, timeout)

    def fill(self, css, value):
        e = self.visible(css)
        e.clear()
        e.send_keys(value)
        return e

    def login(self, email, password):
        self.open("#/login")
        self.fill("#login-password input[name=email]", email)
        self.fill("#login-password input[name=password]", password)
        self.d.find_element(By.CSS_SELECTOR, "#login-password button[type=submit]").click()
        self.heading("Overview")

    def screenshot(self, name):
        path = os.path.join(self.artifacts, re.sub(r"[^A-Za-z0-9_.-]+", "_", name) + ".png")
        self.d.save_screenshot(path)
        return path

    def axe_violations(self):
        """axe-core's serious and critical violations on the page as it is now."""
        with open(AXE) as f:
            source = f.read()
        # run by the driver, not by the page: the page's policy allows no injected script
        self.d.execute_script(source + "\n;window.axe = axe;")
        found = self.d.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "window.axe.run(document, {resultTypes: ['violations']})"
            ".then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
            " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))))"
            ".catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));")
        return [v for v in found if v["impact"] in ("serious", "critical")]


@pytest.fixture
def browser_for(request, tmp_path_factory):
    """browser_for(base_url) -> Browser; a screenshot is saved if the test fails."""
    made = []
    artifacts = artifacts_dir(tmp_path_factory)
    failed_before = request.session.testsfailed

    def make(base):
        b = Browser(new_browser(), base, artifacts)
        made.append(b)
        return b

    yield make
    failed = request.session.testsfailed > failed_before
    for i, b in enumerate(made):
        try:
            if failed:
                b.screenshot("FAILED-%s-%d" % (request.node.name, i))
        finally:
            b.d.quit()
