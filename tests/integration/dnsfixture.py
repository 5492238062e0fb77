"""A small authoritative DNS server for tests, on 127.0.0.1 (UDP and TCP on the same free port;
DNSServer(host="::1") for IPv6; DNSServer(host="127.0.0.53", port=53) for a client that only knows
port 53), built on dnslib. Point mailwerk at it with `[dns] resolver = 127.0.0.1@PORT` (server.resolver).

    from dnsfixture import dns_server  # the pytest fixture; or DNSServer(...) directly

    def test_x(dns_server):
        dns_server.load({
            "example.test": {"MX": ["10 mx1.example.test.", "20 mx2.example.test."],
                             "TXT": "v=spf1 -all"},
            "mx1.example.test": {"A": "192.0.2.1", "AAAA": "2001:db8::1"},
            "alias.example.test": {"CNAME": "example.test."},
            "nomail.example.test": {"MX": "0 ."},             # RFC 7505 null MX
        })
        dns_server.load('''
            zone.test.  60 IN MX 5 mx.zone.test.
            mx.zone.test. 60 IN A 192.0.2.9
        ''')                                                   # zone-file text works too
        dns_server.servfail("broken.example.test")           # answers SERVFAIL, every type
        dns_server.drop("silent.example.test")               # never answers (a timeout)
        dns_server.truncate("big.example.test")              # TC=1 over UDP: the client must use TCP
        dns_server.delay("slow.example.test", 2.0)           # answers after 2 s
        dns_server.stop(); ...; dns_server.restart()          # gone (port closed), then back on its port
        anchor = dns_server.sign("test.")                     # DNSSEC: see sign()
        dns_server.bogus("mx.test", "expired")               # its answers fail validation: see bogus()
        ... run mailwerk with "-o", "dns.resolver=" + dns_server.resolver ...
        assert ("example.test", "MX") in dns_server.asked()

Names are case-insensitive and absolute (a trailing dot is optional in load()). A name with no
records but with records below it is an empty non-terminal (NODATA); any other unknown name is
NXDOMAIN. Negative answers carry an SOA in the authority section (RFC 2308 §2). CNAMEs are
followed within the served data, as an authoritative server does for in-zone targets. A value may
also be a dnslib RR, e.g. RR("x.test", QTYPE.MX, rdata=RD(b"\\x00")) to serve hostile rdata.
"""
import base64
import selectors
import socket
import struct
import threading
import time

import pytest
from dnslib import CLASS, EDNS0, QTYPE, RCODE, RD, RR, SOA, TXT, DNSLabel, DNSRecord
from dnslib.label import DNSBuffer

UDP_PLAIN_MAX = 512  # RFC 1035 §4.2.1 without EDNS
EDNS_PAYLOAD = 1232  # what we advertise (RFC 6891 §6.2.5; the DNS flag day 2020 value)


def _fqdn(name):
    name = str(name).strip().lower()
    return name if name.endswith(".") else name + "."


def _txt_rdata(value):
    """A TXT value as Python text: split into <character-string>s of at most 255 octets."""
    data = value.encode() if isinstance(value, str) else bytes(value)
    chunks = [data[i:i + 255] for i in range(0, len(data), 255)] or [b""]
    return TXT(chunks)


def _name_wire(name):
    """An absolute name in wire format, lower-case, uncompressed (RFC 4034 §6.2)."""
    out = b""
    for label in _fqdn(name).rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


class _NoCompressBuffer(DNSBuffer):
    def encode_name(self, name):
        self.encode_name_nocompress(name)


def _canonical_rdata(rr):
    rdata = rr.rdata
    if rr.rtype in (QTYPE.MX, QTYPE.CNAME, QTYPE.NS, QTYPE.PTR):
        return (struct.pack("!H", rdata.preference) if rr.rtype == QTYPE.MX else b"") + _name_wire(str(rdata.label))
    buf = _NoCompressBuffer()
    rdata.pack(buf)
    return bytes(buf.data)


def _key_tag(rdata):
    """RFC 4034 Appendix B."""
    ac = 0
    for i, b in enumerate(rdata):
        ac += b << 8 if i % 2 == 0 else b
    ac += (ac >> 16) & 0xFFFF
    return ac & 0xFFFF


def _type_bitmap(types):
    """RFC 4034 §4.1.2: the NSEC type bitmap, window blocks of up to 32 octets, the most significant
    bit of the first octet standing for type 0 of the window."""
    out = b""
    for window in sorted({t >> 8 for t in types}):
        bits = bytearray(32)
        for t in types:
            if t >> 8 == window:
                bits[(t & 0xFF) >> 3] |= 0x80 >> (t & 7)
        used = max(i for i, b in enumerate(bits) if b) + 1
        out += bytes([window, used]) + bytes(bits[:used])
    return out


def _dnssec_ok(request):
    """RFC 3225: the DO bit of the EDNS OPT record."""
    return any(ar.rtype == QTYPE.OPT and ar.ttl & 0x8000 for ar in request.ar)


class DNSServer:
    """Serves the records it has been given; answers every query with AA set."""

    def __init__(self, zone=None, origin=".", ttl=60, host="127.0.0.1", port=0):
        self.host = host
        self.want_port = port  # 0: any free port; else this one (e.g. 53, for clients that cannot be told a port)
        self.ttl = ttl
        self.origin = _fqdn(origin) if origin != "." else "."
        self._lock = threading.Lock()
        self._records = {}  # fqdn -> [RR]
        self._servfail = set()
        self._drop = set()
        self._truncate = set()
        self._delay = {}
        self._signer = None  # (apex, private key, DNSKEY rdata, key tag)
        self._bogus = {}  # fqdn -> how its answers are broken ("expired", "stripped", "badsig")
        self._queries = []  # (qname without the dot, qtype name, "udp"/"tcp")
        self._thread = None
        self._stop = threading.Event()
        self.port = None
        if zone is not None:
            self.load(zone)

    # ---- data ----

    def load(self, zone):
        """Adds records from a dict {name: {TYPE: value or [values]}} / {name: [(TYPE, value)]} or
        from zone-file text. Values are zone-file rdata ("10 mx.example.test.", "192.0.2.1"); TXT
        values are plain text (split into 255-octet strings); dnslib RR objects are taken as they are."""
        rrs = []
        if isinstance(zone, str):
            rrs = RR.fromZone(zone, origin=self.origin if self.origin != "." else "", ttl=self.ttl)
        else:
            for name, spec in zone.items():
                items = spec.items() if isinstance(spec, dict) else spec
                for item in items:
                    if isinstance(item, RR):
                        rrs.append(item)
                        continue
                    rtype, values = item
                    if isinstance(values, (str, bytes, RR)):
                        values = [values]
                    for v in values:
                        rrs.append(self._rr(name, rtype, v))
        with self._lock:
            for rr in rrs:
                self._records.setdefault(_fqdn(rr.rname), []).append(rr)
        return self

    def _rr(self, name, rtype, value):
        if isinstance(value, RR):
            return value
        rtype = rtype.upper()
        if rtype == "TXT":
            return RR(_fqdn(name), QTYPE.TXT, ttl=self.ttl, rdata=_txt_rdata(value))
        return RR.fromZone("%s %d IN %s %s" % (_fqdn(name), self.ttl, rtype, value))[0]

    def clear(self):
        with self._lock:
            self._records.clear()
            self._servfail.clear()
            self._drop.clear()
            self._truncate.clear()
            self._delay.clear()
            self._signer = None
            self._bogus.clear()
            self._queries.clear()

    def servfail(self, *names):
        with self._lock:
            self._servfail.update(_fqdn(n) for n in names)
        return self

    def drop(self, *names):
        with self._lock:
            self._drop.update(_fqdn(n) for n in names)
        return self

    def truncate(self, *names):
        with self._lock:
            self._truncate.update(_fqdn(n) for n in names)
        return self

    def delay(self, name, seconds):
        with self._lock:
            self._delay[_fqdn(name)] = float(seconds)
        return self

    def sign(self, apex="test."):
        """Signs every answer at or below apex with a fresh Ed25519 key (RFC 8080, algorithm 15)
        and serves its DNSKEY at apex. Returns the trust anchor, one line for a file named by
        [dns] trust_anchor (ds_anchor() gives it as a DS record). Names outside apex stay unsigned:
        a validating resolver with only this anchor sees them as insecure.

        Negative answers are signed too, the way large signed zones answer today ("black lies",
        RFC 9824): NXDOMAIN and NODATA both come back as NOERROR/NODATA with the apex's SOA and an
        NSEC record at the name itself whose next name is the name's immediate successor and whose
        type bitmap holds only the types the name has (RFC 4034 §4.1), so that the absence of a
        type, a TLSA record say, is proven (RFC 4035 §3.1.3.1) without walking the zone."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        apex = _fqdn(apex)
        key = Ed25519PrivateKey.generate()
        pub = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        rdata = struct.pack("!HBB", 257, 3, 15) + pub  # RFC 4034 §2.1: SEP key, protocol 3
        with self._lock:
            self._signer = (apex, key, rdata, _key_tag(rdata))
            self._records.setdefault(apex, []).append(RR(apex, QTYPE.DNSKEY, ttl=self.ttl, rdata=RD(rdata)))
        return "%s IN DNSKEY 257 3 15 %s" % (apex, base64.b64encode(pub).decode())

    def ds_anchor(self, wrong=False):
        """The trust anchor as a DS record (RFC 4509: SHA-256 over the owner and the DNSKEY rdata);
        wrong=True gives one whose digest matches no key, so the whole zone is bogus."""
        import hashlib
        apex, _, rdata, tag = self._signer
        digest = bytearray(hashlib.sha256(_name_wire(apex) + rdata).digest())
        if wrong:
            digest[0] ^= 0xFF
        return "%s IN DS %d 15 2 %s" % (apex, tag, digest.hex().upper())

    def bogus(self, name, how="expired"):
        """Breaks the signatures of name's answers (positive and negative) so that a validating
        resolver finds them bogus (RFC 4035 §5.5): "expired" (inception and expiration in the
        past), "stripped" (no RRSIG at all, as an upstream that drops them would pass it on) or
        "badsig" (a signature that does not verify)."""
        if how not in ("expired", "stripped", "badsig"):
            raise ValueError(how)
        with self._lock:
            self._bogus[_fqdn(name)] = how
        return self

    def _signs(self, name):
        return self._signer is not None and (name == self._signer[0] or name.endswith("." + self._signer[0]))

    def _rrsig(self, rrset, how=None):
        """RFC 4034 §3.1.8.1: the signature over the RRSIG rdata (without the signature) and the
        RRset in canonical form (§6.2: lower-case names, no compression; §6.3: sorted rdata)."""
        apex, key, _, tag = self._signer
        owner = _fqdn(rrset[0].rname)
        labels = len([x for x in owner.split(".") if x])
        now = int(time.time())
        # long past: validators allow clock skew of up to a tenth of the validity period (unbound:
        # val-sig-skew-min 1 h, max 24 h)
        expire, incept = (now - 10 * 86400, now - 20 * 86400) if how == "expired" else (now + 86400, now - 3600)
        head = struct.pack("!HBBIIIH", rrset[0].rtype, 15, labels, self.ttl, expire & 0xFFFFFFFF,
                           incept & 0xFFFFFFFF, tag) + _name_wire(apex)
        rdatas = sorted(_canonical_rdata(rr) for rr in rrset)
        data = head
        for rd in rdatas:
            data += _name_wire(owner) + struct.pack("!HHIH", rrset[0].rtype, CLASS.IN, self.ttl, len(rd)) + rd
        sig = bytearray(key.sign(data))
        if how == "badsig":
            sig[0] ^= 0xFF
        return RR(owner, QTYPE.RRSIG, ttl=self.ttl, rdata=RD(head + bytes(sig)))

    def _signed(self, rrs):
        """RRSIGs for rrs, one per RRset (name, type) in the signed zone, as name's bogus mode says."""
        groups = {}
        for rr in rrs:
            name = _fqdn(rr.rname)
            if self._signs(name):
                groups.setdefault((name, rr.rtype), []).append(rr)
        out = []
        for (name, _), rrset in groups.items():
            how = self._bogus.get(name)
            if how != "stripped":
                out.append(self._rrsig(rrset, how))
        return out

    def _sign_answer(self, reply):
        for sig in self._signed(list(reply.rr)):
            reply.add_answer(sig)

    def _deny(self, reply, name, rrs, request):
        """A negative answer for name (rrs: the records it has, None if it has none): NXDOMAIN or
        NODATA with the SOA (RFC 2308 §2), or, in the signed zone and for a client that asked for
        DNSSEC, the black-lies NODATA proof described in sign()."""
        if not (self._signs(name) and _dnssec_ok(request)):
            if rrs is None and not self._exists_below(name):
                reply.header.rcode = RCODE.NXDOMAIN  # RFC 6604: after a CNAME too
            reply.add_auth(self._soa())
            return
        # RFC 4034 §4.1.1: the next owner name; "\000.name" is the first name after name in the
        # canonical order (§6.1), so the NSEC covers nothing but name itself
        nxt = b"\x01\x00" + _name_wire(name)
        types = {rr.rtype for rr in rrs or []} | {QTYPE.RRSIG, QTYPE.NSEC}
        nsec = RR(name, QTYPE.NSEC, ttl=self.ttl, rdata=RD(nxt + _type_bitmap(types)))
        soa = self._soa(self._signer[0])
        self._sign_answer(reply)  # a CNAME that led here
        for rr in [soa, nsec] + self._signed([soa, nsec]):
            reply.add_auth(rr)

    def asked(self):
        """[(name, TYPE)] of every query so far, in order (name lower-case, no trailing dot)."""
        with self._lock:
            return [(n, t) for n, t, _ in self._queries]

    def queries(self):
        """[(name, TYPE, "udp"|"tcp")] of every query so far."""
        with self._lock:
            return list(self._queries)

    @property
    def resolver(self):
        return "%s@%d" % (self.host, self.port)

    # ---- answering ----

    def _soa(self, zone=None):
        zone = zone or self.origin
        return RR(zone, QTYPE.SOA, ttl=self.ttl,
                  rdata=SOA("ns.fixture.invalid.", "hostmaster.fixture.invalid.", (1, 3600, 600, 86400, self.ttl)))

    def _exists_below(self, name):
        return any(k.endswith("." + name) or (name == "." and k != ".") for k in self._records)

    def answer(self, request):
        """The reply to a parsed request, or None to stay silent; the second value is a delay."""
        q = request.q
        qname = _fqdn(q.qname)
        qtype = q.qtype
        reply = request.reply(ra=1, aa=1)
        with self._lock:
            self._queries.append((qname.rstrip(".") or ".", QTYPE.get(qtype), None))
            name = qname
            seen = set()
            delay = self._delay.get(name, 0.0)
            while True:
                if name in self._drop:
                    return None, 0.0
                if name in self._servfail:
                    reply.header.rcode = RCODE.SERVFAIL
                    return reply, delay
                rrs = self._records.get(name)
                if rrs is None:
                    self._deny(reply, name, None, request)
                    break
                match = [rr for rr in rrs if rr.rtype == qtype or qtype == QTYPE.ANY]
                if match:
                    for rr in match:
                        reply.add_answer(rr)
                    if self._signer is not None and _dnssec_ok(request):
                        self._sign_answer(reply)
                    break
                cnames = [rr for rr in rrs if rr.rtype == QTYPE.CNAME]
                if cnames and qtype != QTYPE.CNAME and name not in seen and len(seen) < 16:
                    seen.add(name)
                    reply.add_answer(cnames[0])
                    name = _fqdn(cnames[0].rdata.label)
                    continue
                self._deny(reply, name, rrs, request)  # NODATA (RFC 2308 §2.2)
                break
        return reply, delay

    def _wire(self, request, reply, udp):
        edns = [ar for ar in request.ar if ar.rtype == QTYPE.OPT]
        if edns:
            reply.add_ar(EDNS0(udp_len=EDNS_PAYLOAD))
        data = reply.pack()
        if udp:
            limit = max(UDP_PLAIN_MAX, min(edns[0].rclass, EDNS_PAYLOAD)) if edns else UDP_PLAIN_MAX
            with self._lock:
                forced = _fqdn(request.q.qname) in self._truncate
            if forced or len(data) > limit:
                # RFC 2181 §9: TC set, and nothing partial that could be mistaken for the whole set
                cut = request.reply(ra=1, aa=1)
                cut.header.tc = 1
                if edns:
                    cut.add_ar(EDNS0(udp_len=EDNS_PAYLOAD))
                data = cut.pack()
        return data

    def _handle(self, data, udp):
        try:
            request = DNSRecord.parse(data)
        except Exception:
            return None, 0.0
        if not request.questions:
            return None, 0.0
        reply, delay = self.answer(request)
        with self._lock:
            n, t, _ = self._queries[-1]
            self._queries[-1] = (n, t, "udp" if udp else "tcp")
        if reply is None:
            return None, 0.0
        return self._wire(request, reply, udp), delay

    # ---- serving ----

    def start(self):
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        for _ in range(1 if self.want_port else 50):
            udp = socket.socket(family, socket.SOCK_DGRAM)
            udp.bind((self.host, self.want_port))
            port = udp.getsockname()[1]
            tcp = socket.socket(family, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind((self.host, port))
            except OSError:
                udp.close()
                tcp.close()
                if self.want_port:
                    raise
                continue
            tcp.listen(16)
            break
        else:
            raise RuntimeError("no free port for both UDP and TCP")
        self.port = port
        self._udp, self._tcp = udp, tcp
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name="dnsfixture", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=5)
        self._thread = None
        self._udp.close()
        self._tcp.close()

    def restart(self):
        """Starts again after stop(), on the same port: a server that was gone and is back where its
        clients were told it is."""
        if self.port is not None:
            self.want_port = self.port
        return self.start()

    def __enter__(self):
        return self if self._thread is not None else self.start()

    def __exit__(self, *exc):
        self.stop()

    def _send_udp(self, data, addr):
        try:
            self._udp.sendto(data, addr)
        except OSError:
            pass

    def _serve(self):
        sel = selectors.DefaultSelector()
        sel.register(self._udp, selectors.EVENT_READ, "udp")
        sel.register(self._tcp, selectors.EVENT_READ, "tcp")
        while not self._stop.is_set():
            for key, _ in sel.select(timeout=0.1):
                if key.data == "udp":
                    try:
                        data, addr = self._udp.recvfrom(65535)
                    except OSError:
                        continue
                    out, delay = self._handle(data, True)
                    if out is None:
                        continue
                    if delay > 0:
                        threading.Timer(delay, self._send_udp, (out, addr)).start()
                    else:
                        self._send_udp(out, addr)
                else:
                    try:
                        conn, _ = self._tcp.accept()
                    except OSError:
                        continue
                    threading.Thread(target=self._serve_tcp, args=(conn,), daemon=True).start()
        sel.close()

    def _serve_tcp(self, conn):
        """RFC 1035 §4.2.2 / RFC 7766: two-octet length, then the message; several per connection."""
        conn.settimeout(10)
        with conn:
            while not self._stop.is_set():
                try:
                    head = self._recv_exact(conn, 2)
                    if head is None:
                        return
                    data = self._recv_exact(conn, struct.unpack("!H", head)[0])
                    if data is None:
                        return
                except OSError:
                    return
                out, delay = self._handle(data, False)
                if out is None:
                    continue  # silent: the client times out
                if delay > 0:
                    time.sleep(delay)
                try:
                    conn.sendall(struct.pack("!H", len(out)) + out)
                except OSError:
                    return

    @staticmethod
    def _recv_exact(conn, n):
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf


def fixture_txt(dns, name):
    """The TXT record at name as a DNS client gets it from the fixture, strings joined; None if none."""
    name = name.decode() if isinstance(name, bytes) else name
    reply = DNSRecord.parse(DNSRecord.question(name.rstrip("."), "TXT").send(dns.host, dns.port, timeout=5))
    for rr in reply.rr:
        if rr.rtype == QTYPE.TXT:
            return b"".join(rr.rdata.data)
    return None


@pytest.fixture
def dns_server():
    """A started DNSServer with no records; load() what the test needs. Stopped afterwards."""
    server = DNSServer().start()
    try:
        yield server
    finally:
        server.stop()


__all__ = ["DNSServer", "dns_server", "RR", "RD", "QTYPE", "CLASS", "DNSLabel"]
