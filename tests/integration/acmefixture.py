"""Debian's pebble (the ACME test server) on loopback, for tests/integration/test_acme.py.

    pebble = Pebble(tmp_path, http_port=server.http_port, tls_port=https_port, dns=dns_server).start()
    pebble.directory   # https://127.0.0.1:PORT/dir
    pebble.ca_file     # the throwaway CA pebble's own HTTPS certificate chains to ([acme] ca_file)
    pebble.roots()     # PEM of the root that issued certificates chain to (management interface)
    pebble.cert_status(serial_hex)  # {"Status": "Valid"|"Revoked", ...}

The package ships no test certificates, so a throwaway CA and a certificate for 127.0.0.1 are made
here with openssl(1) for pebble's HTTPS listener. Validation is real (PEBBLE_VA_ALWAYS_VALID unset):
pebble resolves the names through the DNS fixture (-dnsserver) and connects to httpPort / tlsPort
on the address it finds. PEBBLE_VA_NOSLEEP=1 drops its random waits; PEBBLE_WFE_NONCEREJECT is set
so that a good share of nonces are refused and the client's badNonce retry is exercised."""
import json
import os
import ssl
import subprocess
import time
import urllib.request

from conftest import HOST, Server, free_port

PEBBLE = "/usr/bin/pebble"


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


class Pebble:
    def __init__(self, root, http_port, tls_port, dns, validity=None, nonce_reject=30):
        self.dir = os.path.join(str(root), "pebble")
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.mgmt_port = free_port()
        self.http_port = http_port
        self.tls_port = tls_port
        self.dns = dns
        self.validity = validity
        self.nonce_reject = nonce_reject
        self.proc = None
        self.log_path = os.path.join(self.dir, "pebble.log")

    @property
    def directory(self):
        return "https://127.0.0.1:%d/dir" % self.port

    @property
    def ca_file(self):
        return os.path.join(self.dir, "ca.pem")

    def _certs(self):
        d = self.dir
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=pebble test CA", "-days", "2", cwd=d)
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", "key.pem", "-out", "req.pem", "-subj", "/CN=127.0.0.1", cwd=d)
        with open(os.path.join(d, "ext.cnf"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        _openssl("x509", "-req", "-in", "req.pem", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", "cert.pem", "-days", "2", "-extfile", "ext.cnf", cwd=d)

    def start(self):
        self._certs()
        conf = {"pebble": {
            "listenAddress": "127.0.0.1:%d" % self.port,
            "managementListenAddress": "127.0.0.1:%d" % self.mgmt_port,
            "certificate": os.path.join(self.dir, "cert.pem"),
            "privateKey": os.path.join(self.dir, "key.pem"),
            "httpPort": self.http_port,
            "tlsPort": self.tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }}
        if self.validity is not None:
            conf["pebble"]["certificateValidityPeriod"] = self.validity
        path = os.path.join(self.dir, "pebble.json")
        with open(path, "w") as f:
            json.dump(conf, f)
        # no reuse of valid authorizations: every order is validated again (a failure test needs it)
        env = dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT=str(self.nonce_reject),
                   PEBBLE_AUTHZREUSE="0")
        env.pop("PEBBLE_VA_ALWAYS_VALID", None)
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([PEBBLE, "-config", path, "-dnsserver", "127.0.0.1:%d" % self.dns.port],
                                     stdout=self.log, stderr=self.log, env=env, cwd=self.dir)
        deadline = time.monotonic() + 20
        while "ACME directory available at" not in self.log_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("pebble did not start:\n" + self.log_text()[-3000:])
            time.sleep(0.05)
        return self

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def _mgmt(self, path):
        ctx = ssl.create_default_context(cafile=self.ca_file)
        with urllib.request.urlopen("https://127.0.0.1:%d%s" % (self.mgmt_port, path), context=ctx,
                                    timeout=10) as r:
            return r.read().decode()

    def roots(self):
        return self._mgmt("/roots/0")

    def cert_status(self, serial_hex):
        return json.loads(self._mgmt("/cert-status-by-serial/" + serial_hex))

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None
            self.log.close()


class AcmeSetup:
    """A mailwerk server with an https listener, pebble pointed at its ports, DNS for its name."""

    def __init__(self, tmp_path, dns, challenge="http-01", validity=None, extra=()):
        self.dns = dns
        dns.load({HOST: {"A": "127.0.0.1"}})
        self.https_port = free_port()
        self.srv = Server(tmp_path)
        self.pebble = Pebble(tmp_path, http_port=self.srv.http_port, tls_port=self.https_port, dns=dns,
                             validity=validity).start()
        self.srv.overrides += [
            "listen.https=127.0.0.1:%d" % self.https_port,
            "acme.directory=" + self.pebble.directory,
            "acme.ca_file=" + self.pebble.ca_file,
            "acme.contact=postmaster@mailwerk.test",
            "acme.challenge=" + challenge,
            "acme.retry_schedule=1s,2s",
            *extra,
        ]

    def start(self):
        self.srv.start()
        return self

    def stop(self):
        if self.srv.proc is not None:
            self.srv.stop()
        self.pebble.stop()
