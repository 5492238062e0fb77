"""Helpers for the HTTP API tests: a mailwerk with its API listener and a key, the official Resend
SDK (tests/node, pinned by its lockfile) driven through tests/node/sdk.mjs, curl for the raw
status codes and headers, and the delivered messages read back from the Maildirs.

    api.sdk(("emails.send", {...}), ("emails.get", id))  -> [{"data": ..., "error": ...}, ...]
    api.curl("POST", "/emails", body=..., key=...)       -> Reply(status, headers, json, raw)
"""
import base64
import email
import email.policy
import glob
import json
import os
import re
import subprocess

import dkim
from cryptography.hazmat.primitives import serialization

from conftest import DOMAIN
from mtafixture import wait_for

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "node")
SENDER = "demo@" + DOMAIN


class Reply:
    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers
        self.raw = raw
        try:
            self.json = json.loads(raw) if raw else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return "Reply(%d, %r)" % (self.status, self.raw[:300])


class Api:
    def __init__(self, server, key):
        self.server = server
        self.key = key
        self.base = "http://127.0.0.1:%d" % server.http_port

    def key_create(self, *args):
        return self.server.cli("apikey", "create", *args, "--quiet").stdout.strip()

    def sdk(self, *calls, key=None):
        """Runs (fn, *args) calls of the Resend SDK in one Node process, in order."""
        payload = {"key": key or self.key, "calls": [{"fn": c[0], "args": list(c[1:])} for c in calls]}
        env = dict(os.environ, RESEND_BASE_URL=self.base)
        p = subprocess.run(["node", os.path.join(NODE_DIR, "sdk.mjs")], input=json.dumps(payload), env=env,
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    def send(self, **fields):
        """emails.send through the SDK; the id, asserting that it worked."""
        fields.setdefault("from", "Demo <%s>" % SENDER)
        fields.setdefault("to", [SENDER])
        (r,) = self.sdk(("emails.send", fields))
        assert r["error"] is None, r
        return r["data"]["id"]

    def curl(self, method, path, body=None, key="default", headers=(), extra=()):
        """The raw reply, through curl. body: bytes or str sent as is, or a dict/list as JSON."""
        args = ["curl", "-s", "-i", "--max-time", "30", "-X", method]
        if key == "default":
            key = self.key
        if key is not None:
            args += ["-H", "Authorization: Bearer " + key]
        for h in headers:
            args += ["-H", h]
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            data = data.encode() if isinstance(data, str) else data
            args += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
        args += list(extra) + [self.base + path]
        p = subprocess.run(args, input=data, capture_output=True, timeout=60)
        return parse_http(p.stdout)

    def email(self, id):
        (r,) = self.sdk(("emails.get", id))
        assert r["error"] is None, r
        return r["data"]

    def wait_event(self, id, event, timeout=20.0):
        """The email once its last_event is event."""
        found = wait_for(lambda: (lambda e: e if e["last_event"] == event else None)(self.email(id)), timeout)
        assert found, "email %s never reached %s: %s" % (id, event, self.email(id))
        return found


def parse_http(raw):
    """curl -i output: the last response (after any 100 Continue) as a Reply."""
    while True:
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1]) if lines and lines[0].startswith("HTTP/") else 0
        if status == 100:
            raw = rest
            continue
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return Reply(status, headers, rest)


def delivered_message(server, message_id, user="demo", timeout=20.0):
    """The message with this Message-ID in a local Maildir, as bytes (Return-Path and
    Delivered-To, which local delivery puts on top, removed)."""
    def find():
        for path in glob.glob(os.path.join(server.dir, "mail", DOMAIN, user, "*", "*")):
            try:
                raw = open(path, "rb").read()
            except FileNotFoundError:
                continue
            if ("<%s>" % message_id).encode() in raw:
                return re.sub(rb"\AReturn-Path: [^\r]*\r\nDelivered-To: [^\r]*\r\n", b"", raw)
        return None
    raw = wait_for(find, timeout)
    assert raw, "message %s not delivered" % message_id
    return raw


def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.default)


def dkim_dns(server, domain=DOMAIN):
    """A dnsfunc for python3-dkim answering the domain's selector records from its key files."""
    records = {}
    for pem in glob.glob(os.path.join(server.dir, "dkim", domain, "*.pem")):
        selector = os.path.basename(pem)[:-4]
        key = serialization.load_pem_private_key(open(pem, "rb").read(), password=None)
        pub = key.public_key()
        try:
            der = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
            kind = "rsa"
        except ValueError:
            der = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            kind = "ed25519"
        records["%s._domainkey.%s." % (selector, domain)] = (
            "v=DKIM1; k=%s; p=%s" % (kind, base64.b64encode(der).decode())).encode()
    return lambda name, timeout=5: records.get(name.decode() if isinstance(name, bytes) else name)


def dkim_ok(server, raw):
    return dkim.verify(raw, dnsfunc=dkim_dns(server))


def b64(data):
    return base64.b64encode(data).decode()
