"""MTA-STS policy hosts for tests: a throwaway CA made at test time (python3-cryptography), a
certificate for every mta-sts.DOMAIN a test names, and a small HTTPS server (http.server + ssl) on
port 443 of a loopback address of this pytest worker's own (127.88.N.x: the policy URL has no
port, so the server must listen on 443, and workers running at once must not share an address).
Each domain's answer is scripted: status, Content-Type, body, headers, a delay before the body.

    ca = ThrowawayCA(tmp_path)
    with PolicyHost(ca, ["mta-sts.good.test"]) as host:
        host.serve("good.test", body=POLICY)                     # 200 text/plain
        host.serve("html.test", body=POLICY, ctype="text/html")
        host.serve("moved.test", status=301, headers={"Location": "https://x/"})
        host.serve("slow.test", body=POLICY, delay=5)            # headers at once, the body later
        dns_server.load({"mta-sts.good.test": {"A": host.addr}})
"""
import datetime
import http.server
import os
import socket
import ssl
import threading
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def worker_address(n=1):
    """A loopback address of this pytest worker's own: 127.88.<worker>.<n>."""
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:])
    return "127.88.%d.%d" % (worker, n)


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class ThrowawayCA:
    """A CA of its own, made now; issue() gives a key and certificate for some names."""

    def __init__(self, directory):
        self.dir = str(directory)
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(_name("mailwerk test CA")).issuer_name(_name("mailwerk test CA"))
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                     .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                  content_commitment=False, key_encipherment=False,
                                                  data_encipherment=False, key_agreement=False,
                                                  encipher_only=False, decipher_only=False), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.path = os.path.join(self.dir, "sts-ca.pem")
        with open(self.path, "wb") as f:
            f.write(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, names, stem="sts"):
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(_name(names[0])).issuer_name(self.cert.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .sign(self.key, hashes.SHA256()))
        cert_path = os.path.join(self.dir, stem + "-cert.pem")
        key_path = os.path.join(self.dir, stem + "-key.pem")
        with open(cert_path, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(key_path, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        return cert_path, key_path


class PolicyHost:
    """HTTPS on addr:443 answering /.well-known/mta-sts.txt by the Host field's domain."""

    def __init__(self, ca, names, addr=None, port=443):
        self.addr = addr or worker_address()
        self.port = port
        self.answers = {}  # domain -> dict(status, ctype, body, headers, delay)
        self.requests = []  # (host, path)
        self.lock = threading.Lock()
        self.cert, self.key = ca.issue(list(names), stem="sts-" + self.addr)
        host = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                name = (self.headers.get("Host") or "").split(":")[0].lower()
                domain = name[len("mta-sts."):] if name.startswith("mta-sts.") else ""
                with host.lock:
                    host.requests.append((name, self.path))
                    a = host.answers.get(domain)
                if a is None or self.path != "/.well-known/mta-sts.txt":
                    a = {"status": 404, "ctype": "text/plain", "body": b"not here", "headers": {}, "delay": 0}
                body = a["body"] if isinstance(a["body"], bytes) else a["body"].encode()
                try:
                    self.send_response(a["status"])
                    if a["ctype"] is not None:
                        self.send_header("Content-Type", a["ctype"])
                    for k, v in a["headers"].items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.flush()
                    if a["delay"]:
                        # headers now, the body after the delay: a slow body, not a slow connect
                        self.wfile.write(body[:1])
                        self.wfile.flush()
                        time.sleep(a["delay"])
                        self.wfile.write(body[1:])
                    else:
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                    pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.httpd = Server((self.addr, self.port), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def serve(self, domain, body=b"", status=200, ctype="text/plain", headers=None, delay=0):
        with self.lock:
            self.answers[domain] = {"status": status, "ctype": ctype, "body": body, "headers": headers or {},
                                    "delay": delay}

    def asked(self, domain):
        with self.lock:
            return sum(1 for name, _ in self.requests if name == "mta-sts." + domain)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
