"""A tiny raw SMTP client for byte-exact dialogues that smtplib would normalise away."""
import socket
import ssl


class Wire:
    def __init__(self, port, host="127.0.0.1", timeout=10.0, tls=False):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        if tls:
            self.sock = insecure_context().wrap_socket(self.sock)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed; unread: %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def reply(self):
        """One whole reply: (code, [text lines])."""
        lines = []
        while True:
            line = self._line()
            lines.append(line[4:])
            if len(line) < 4 or line[3] != "-":
                return int(line[:3]), lines

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def starttls(self):
        code, _ = self.cmd("STARTTLS")
        assert code == 220
        self.sock = insecure_context().wrap_socket(self.sock)
        self.buf = b""

    def closed(self, timeout=5.0):
        """True when the server has closed the connection (after any pending data)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, ssl.SSLError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


def insecure_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx
