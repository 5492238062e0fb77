"""A raw SMTP client for byte-exact dialogues that smtplib would normalise away. Every read is
bounded by the socket timeout; replies keep their codes: (code, ["250-first", "250 last"])."""
import socket
import ssl
import time


def insecure_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Raw:
    def __init__(self, port, timeout=10.0, tls=False):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls:
            self.sock = insecure_context().wrap_socket(self.sock)
        self.buf = b""
        self.eof = False

    def close(self):
        self.sock.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def starttls(self, ctx=None):
        """Starts TLS after the server's 220 to STARTTLS was read."""
        assert self.buf == b"", "the server sent more than the 220 before the handshake: %r" % self.buf
        self.sock = (ctx or insecure_context()).wrap_socket(self.sock, server_hostname="mx.mailwerk.test")

    def _fill(self):
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, ssl.SSLError):
            chunk = b""
        if not chunk:
            self.eof = True
        self.buf += chunk

    def line(self):
        """One reply line (without CRLF), or None at EOF."""
        for _ in range(10000):
            i = self.buf.find(b"\r\n")
            if i >= 0:
                ln, self.buf = self.buf[:i], self.buf[i + 2:]
                return ln.decode("utf-8", "replace")
            if self.eof:
                return None
            self._fill()
        raise AssertionError("no reply line")

    def reply(self):
        """One complete (possibly multi-line) reply: (code, [lines]); (None, lines) at EOF."""
        lines = []
        for _ in range(200):
            ln = self.line()
            if ln is None:
                return None, lines
            lines.append(ln)
            if len(ln) < 4 or ln[3] != "-":
                return int(ln[:3]), lines
        raise AssertionError("reply too long: %r" % lines)

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def expect(self, code, data=None):
        if data is not None:
            self.send(data)
        got, lines = self.reply()
        assert got == code, "expected %d after %r, got %r" % (code, data, lines)
        return lines

    def read_until_close(self, timeout=15.0):
        """Every reply line until the server closes the connection."""
        deadline = time.monotonic() + timeout
        lines = []
        while time.monotonic() < deadline:
            ln = self.line()
            if ln is None:
                return lines
            lines.append(ln)
        raise AssertionError("server did not close the connection; got %r" % lines)

    def closed(self, timeout=5.0):
        """True when the server closes the connection within timeout (after any pending data)."""
        self.sock.settimeout(timeout)
        try:
            self.read_until_close(timeout)
            return True
        except (socket.timeout, AssertionError):
            return False


def in_data(port, rcpt, helo="client.example", sender="a@example.org", timeout=60.0):
    """A session that has had its 354 to DATA: the next bytes sent are message content."""
    c = Raw(port, timeout=timeout)
    c.expect(220)
    c.expect(250, "EHLO %s\r\n" % helo)
    c.expect(250, "MAIL FROM:<%s>\r\n" % sender)
    c.expect(250, "RCPT TO:<%s>\r\n" % rcpt)
    c.expect(354, "DATA\r\n")
    return c
