"""Attachments given by URL (`attachments[].path`) through the official Resend SDK: with
[api] fetch_attachment_urls on, mailwerk fetches them from a small HTTP server on 127.0.0.1 (which
needs [webhooks] allow_private, loopback being private) and the delivered message carries them byte
for byte; a 404, a file over what [smtp] max_message_size leaves, too many redirects, a slow server
and a loopback address without allow_private are 422 invalid_attachment naming the attachment and
the reason; with fetching off the refusal names the setting to change."""
import http.server
import os
import threading
import time

import pytest

from apifixture import Api, SENDER, b64, delivered_message, dkim_ok, parse
from conftest import Server

PDF = b"%PDF-1.4\n" + os.urandom(20000)
PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(3000)
BIG = os.urandom(200 * 1024)
LATIN1 = "Grüße aus Köln\r\n".encode("iso-8859-1")
SLOW_SECONDS = 6


class Files(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        p = self.path
        try:
            if p == "/files/report.pdf":
                self.send(200, PDF, [("Content-Type", "application/pdf")])
            elif p == "/blob":  # no extension: the answer's type is taken
                self.send(200, PNG, [("Content-Type", "Image/PNG; foo=bar")])
            elif p == "/docs/r%C3%A9sum%C3%A9.txt":  # a UTF-8 name, percent-encoded (RFC 3986 §2.5)
                self.send(200, LATIN1, [("Content-Type", "text/plain; charset=iso-8859-1")])
            elif p == "/docs/bad%FFname.txt":  # not UTF-8: no name taken from it
                self.send(200, LATIN1, [("Content-Type", "text/plain; charset")])
            elif p == "/big.bin":
                self.send(200, BIG, [("Content-Type", "application/octet-stream")])
            elif p == "/stream.bin":  # no Content-Length: the limit is found while reading
                self.send_response(200)
                self.end_headers()
                for i in range(0, len(BIG), 8192):
                    self.wfile.write(BIG[i:i + 8192])
            elif p == "/to-pdf":
                self.send(302, b"moved", [("Location", "/files/report.pdf")])
            elif p.startswith("/loop"):
                n = int(p[5:] or "0")
                self.send(302, headers=[("Location", "/loop%d" % (n + 1))])
            elif p == "/slow":
                time.sleep(SLOW_SECONDS)
                self.send(200, PDF)
            elif p == "/slower":  # past the server's stop grace (10s)
                time.sleep(15)
                self.send(200, PDF)
            else:
                self.send(404, b"not here")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading: what the limits are for


@pytest.fixture(scope="module")
def files():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Files)
    httpd.daemon_threads = True
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield "http://127.0.0.1:%d" % httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def start(tmp_path_factory, name, *overrides):
    s = Server(tmp_path_factory.mktemp(name), overrides=["api.rate_limit=none"] + list(overrides)).start()
    return Api(s, s.cli("apikey", "create", "tests", "--quiet").stdout.strip())


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    a = start(tmp_path_factory, "fetch", "api.fetch_attachment_urls=yes", "webhooks.allow_private=yes",
              "smtp.max_message_size=65536", "api.request_timeout=3s")
    yield a
    a.server.stop()


def send(api, attachments, **fields):
    fields = dict({"from": "Demo <%s>" % SENDER, "to": [SENDER], "subject": "by url", "text": "see attached",
                   "attachments": attachments}, **fields)
    (r,) = api.sdk(("emails.send", fields))
    return r


def refused(r, *words):
    assert r["data"] is None, r
    e = r["error"]
    assert e["statusCode"] == 422 and e["name"] == "invalid_attachment", r
    for w in words:
        assert w in e["message"], e["message"]
    return e["message"]


def delivered(api, id):
    e = api.wait_event(id, "delivered")
    return parse_raw(api, e)


def parse_raw(api, e):
    raw = delivered_message(api.server, e["message_id"])
    return raw, parse(raw)


def test_path_attachment_arrives_byte_exact(api, files):
    r = send(api, [{"path": files + "/files/report.pdf", "filename": "x.pdf"},
                   {"content": b64(b"inline part"), "filename": "note.bin"}])
    assert r["error"] is None, r
    raw, m = delivered(api, r["data"]["id"])
    parts = {p.get_filename(): p for p in m.iter_attachments()}
    assert parts["x.pdf"].get_content() == PDF
    assert parts["x.pdf"].get_content_type() == "application/pdf"
    assert parts["note.bin"].get_content() == b"inline part"
    assert dkim_ok(api.server, raw)


def test_redirect_followed_and_type_and_name_from_the_answer(api, files):
    r = send(api, [{"path": files + "/to-pdf", "filename": "moved.pdf"}, {"path": files + "/blob"}])
    assert r["error"] is None, r
    _, m = delivered(api, r["data"]["id"])
    parts = {p.get_filename(): p for p in m.iter_attachments()}
    assert parts["moved.pdf"].get_content() == PDF
    # no filename given: the URL's last segment; no extension: the answer's media type
    assert parts["blob"].get_content() == PNG
    assert parts["blob"].get_content_type() == "image/png"


def test_404_is_422(api, files):
    refused(send(api, [{"path": files + "/files/report.pdf", "filename": "a.pdf"},
                       {"path": files + "/nothing.pdf", "filename": "b.pdf"}]),
            "attachments[1].path", "answered 404")


@pytest.mark.parametrize("path", ["/big.bin", "/stream.bin"])
def test_larger_than_the_limit_is_422(api, files, path):
    refused(send(api, [{"path": files + path, "filename": "big.bin"}]), "attachments[0].path", "larger than the limit")


def test_too_many_redirects_is_422(api, files):
    refused(send(api, [{"path": files + "/loop", "filename": "l.bin"}]), "attachments[0].path", "redirected more")


@pytest.mark.serial  # the answer is timed to within 3 s of the request timeout
def test_slow_server_times_out(api, files):
    t = time.monotonic()
    refused(send(api, [{"path": files + "/slow", "filename": "s.pdf"}]), "attachments[0].path")
    assert time.monotonic() - t < SLOW_SECONDS  # [api] request_timeout (3s) bounds the fetching


def test_client_gone_while_fetching(api, files):
    body = {"from": SENDER, "to": SENDER, "subject": "s", "text": "t",
            "attachments": [{"path": files + "/slow", "filename": "s.pdf"}]}
    r = api.curl("POST", "/emails", body, extra=["--max-time", "1"])
    assert r.status == 0  # curl gave up; the server frees the request when its fetch ends
    time.sleep(3.5)
    assert api.curl("GET", "/healthz", key=None).status == 200


def test_batch_strict_and_permissive(api, files):
    good = {"from": SENDER, "to": [SENDER], "subject": "b", "text": "x",
            "attachments": [{"path": files + "/files/report.pdf", "filename": "r.pdf"}]}
    bad = dict(good, attachments=[{"path": files + "/gone", "filename": "g.pdf"}])
    plain = {"from": SENDER, "to": [SENDER], "subject": "b", "text": "no attachment"}
    (r,) = api.sdk(("batch.send", [plain, good]))
    assert r["error"] is None and len(r["data"]["data"]) == 2, r
    (r,) = api.sdk(("batch.send", [good, bad]))
    assert r["data"] is None and r["error"]["statusCode"] == 422, r
    assert "emails[1]: attachments[0].path" in r["error"]["message"] and "404" in r["error"]["message"], r
    r = api.curl("POST", "/emails/batch", [good, bad], headers=["x-batch-validation: permissive"])
    assert r.status == 200, r
    assert len(r.json["data"]) == 1 and r.json["errors"][0]["index"] == 1, r.json
    assert "answered 404" in r.json["errors"][0]["message"]
    _, m = parse_raw(api, api.wait_event(r.json["data"][0]["id"], "delivered"))
    assert [p.get_content() for p in m.iter_attachments()] == [PDF]


def test_loopback_refused_without_allow_private(tmp_path_factory, files):
    a = start(tmp_path_factory, "private", "api.fetch_attachment_urls=yes")
    try:
        msg = refused(send(a, [{"path": files + "/files/report.pdf", "filename": "x.pdf"}]),
                      "attachments[0].path", "refused")
        assert "loopback" in msg and "allow_private" in msg
    finally:
        a.server.stop()


def test_refused_when_fetching_is_off(tmp_path_factory, files):
    a = start(tmp_path_factory, "nofetch")
    try:
        refused(send(a, [{"path": files + "/files/report.pdf", "filename": "x.pdf"}]),
                "set [api] fetch_attachment_urls = yes")
    finally:
        a.server.stop()


def test_stop_while_fetching(tmp_path_factory, files):
    """A fetch still running when the server's stop grace ends is cancelled and freed (ASan checks at
    stop)."""
    a = start(tmp_path_factory, "stop", "api.fetch_attachment_urls=yes", "webhooks.allow_private=yes",
              "api.request_timeout=60s")
    body = {"from": SENDER, "to": SENDER, "subject": "s", "text": "t",
            "attachments": [{"path": files + "/slower", "filename": "s.pdf"}]}
    t = threading.Thread(target=a.curl, args=("POST", "/emails", body))
    t.start()
    time.sleep(1)
    a.server.stop()
    t.join()


def test_utf8_name_from_the_url_and_the_answers_charset_kept(api, files):
    r = send(api, [{"path": files + "/docs/r%C3%A9sum%C3%A9.txt"}, {"path": files + "/docs/bad%FFname.txt"}])
    assert r["error"] is None, r
    _, m = delivered(api, r["data"]["id"])
    (named, unnamed) = list(m.iter_attachments())
    assert named.get_filename() == "résumé.txt"
    assert named.get_content_type() == "text/plain"
    assert named.get_content_charset() == "iso-8859-1", named.as_string()[:400]
    assert named.get_payload(decode=True) == LATIN1
    assert named.get_content() == LATIN1.decode("iso-8859-1")
    # a name that is not UTF-8 is not invented; a malformed field keeps only its media type
    assert unnamed.get_filename() is None
    assert unnamed.get_content_type() == "text/plain" and unnamed.get_content_charset() is None
    assert unnamed.get_payload(decode=True) == LATIN1
