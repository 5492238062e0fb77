#!/usr/bin/python3
"""bench/checks.py — the client, the DNS server and the checkers that bench/checks.sh (the cost of
inbound SPF/DKIM/DMARC checks) runs:

    checks.py make DIR COUNT MIN MAX DOMAIN SELECTOR FROM RCPT --spf RECORD --dmarc RECORD
        An RSA-2048 DKIM key and COUNT messages of about MIN..MAX octets, each DKIM-signed (dkimpy,
        rsa-sha256, relaxed/relaxed) by DOMAIN with that key, From: FROM, To: RCPT, into
        DIR/messages.bin (4-octet length, then the message; CRLF lines); DOMAIN's SPF and DMARC
        records and the key's record into DIR/records.json. Prints the sizes as JSON.
    checks.py dns HOST PORT DIR FIXTURE_DIR
        The DNS server of FIXTURE_DIR/dnsfixture.py (tests/integration) on HOST:PORT, UDP and TCP,
        serving DIR/records.json. Prints "ready" when it answers; on SIGUSR1 writes the queries it
        has answered so far to DIR/dns-queries.json; stops on SIGTERM, or by itself after
        --lifetime seconds.
    checks.py send HOST PORT SESSIONS COUNT DIR --mail-from A --rcpt B [--timeout S] [--barrier]
        Sends COUNT of the messages over SESSIONS persistent SMTP sessions (MAIL, RCPT, DATA; no
        pipelining, as smtp-source) and prints one JSON line: messages/s and the latency of the
        end of DATA (from writing the message and its final "." to reading the reply) and of the
        whole transaction (from writing MAIL FROM), nearest-rank p50/p90/p99.
        Stops by itself after --timeout seconds, whatever the server does. --barrier (warm-ups):
        no session sends its second message before every session has had its first answered.
    checks.py verify MAILDIR COUNT AUTHSERV [--methods spf,dkim,dmarc] [--delete]
        Counts the messages in MAILDIR/new and MAILDIR/cur and those whose Authentication-Results
        fields of AUTHSERV say pass for every one of --methods (an empty list: that carry no such
        field at all). Prints one JSON line; exits 1 unless all COUNT are there and pass. --delete
        removes the files it read.
    checks.py cpu PID[,PID...][:COMM]...
        For each group, the CPU clock ticks the processes and all their descendants have used (only
        those whose name is COMM, when given).

Only the standard library, python3-dkim and python3-cryptography (scripts/deps.sh)."""
import argparse
import asyncio
import json
import os
import random
import re
import signal
import struct
import sys
import threading
import time

# ---- make: the key and the signed messages ---------------------------------------------------

WORDS = ("the", "of", "mail", "server", "check", "lunch", "quarterly", "report", "meeting", "draft",
         "invoice", "shipment", "tomorrow", "please", "attached", "review", "thanks", "regards", "budget")


def body_of(rng, size):
    """Plain text lines of up to 76 octets, about size octets in all; some lines start with a dot,
    so that every server un-stuffs what the client stuffs."""
    lines, total = [], 0
    while total < size:
        words, n = [], 0
        while n < 60:
            w = rng.choice(WORDS)
            words.append(w)
            n += len(w) + 1
        line = " ".join(words)
        if rng.random() < 0.03:
            line = "." + line
        lines.append(line)
        total += len(line) + 2
    return ("\r\n".join(lines) + "\r\n").encode()


def cmd_make(a):
    import dkim
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    import base64

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    record = "v=DKIM1; k=rsa; p=" + base64.b64encode(spki).decode()
    rng = random.Random(a.seed)
    sizes = []
    with open(os.path.join(a.dir, "messages.bin"), "wb") as out:
        for i in range(a.count):
            size = rng.randint(a.min, a.max)
            head = ("From: Alice Sender <%s>\r\n"
                    "To: <%s>\r\n"
                    "Subject: inbound checks benchmark, message %d\r\n"
                    "Date: Sun, 22 Nov 2026 08:00:00 +0000\r\n"
                    "Message-ID: <bench-%d-%d@%s>\r\n"
                    "MIME-Version: 1.0\r\n"
                    "Content-Type: text/plain; charset=us-ascii\r\n"
                    "\r\n" % (a.sender, a.rcpt, i, a.seed, i, a.domain)).encode()
            msg = head + body_of(rng, max(64, size - len(head) - 600))  # ~600: the signature and rounding
            sig = dkim.sign(msg, a.selector.encode(), a.domain.encode(), pem,
                            canonicalize=(b"relaxed", b"relaxed"), signature_algorithm=b"rsa-sha256",
                            include_headers=[b"from", b"to", b"subject", b"date", b"message-id",
                                             b"mime-version", b"content-type"])
            msg = sig + msg
            sizes.append(len(msg))
            out.write(struct.pack("!I", len(msg)) + msg)
    with open(os.path.join(a.dir, "records.json"), "w") as f:
        json.dump({a.domain: {"TXT": a.spf}, "_dmarc." + a.domain: {"TXT": a.dmarc},
                   "%s._domainkey.%s" % (a.selector, a.domain): {"TXT": record}}, f, indent=1)
    sizes.sort()
    print(json.dumps({"messages": a.count, "min": sizes[0], "median": sizes[len(sizes) // 2],
                      "max": sizes[-1], "mean": round(sum(sizes) / len(sizes))}))


def load_messages(d):
    msgs = []
    with open(os.path.join(d, "messages.bin"), "rb") as f:
        data = f.read()
    i = 0
    while i < len(data):
        (n,) = struct.unpack_from("!I", data, i)
        msgs.append(data[i + 4:i + 4 + n])
        i += 4 + n
    return msgs


# ---- dns: the fixture with the sender domain's records ------------------------------------------

def cmd_dns(a):
    sys.path.insert(0, a.fixture_dir)
    from dnsfixture import DNSServer

    with open(os.path.join(a.dir, "records.json")) as f:
        records = json.load(f)
    server = DNSServer(host=a.host, port=a.port, ttl=3600)
    server.load(records)
    try:
        server.start()
    except OSError as e:
        print("cannot serve DNS on %s:%d: %s" % (a.host, a.port, e), file=sys.stderr)
        return 1

    def dump(*_):
        counts = {}
        for name, qtype in server.asked():
            key = "%s %s" % (name, qtype)
            counts[key] = counts.get(key, 0) + 1
        tmp = os.path.join(a.dir, "dns-queries.json.tmp")
        with open(tmp, "w") as f:
            json.dump({"total": sum(counts.values()), "by": counts}, f)
        os.replace(tmp, os.path.join(a.dir, "dns-queries.json"))

    done = threading.Event()
    signal.signal(signal.SIGUSR1, dump)
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    print("ready", flush=True)
    done.wait(a.lifetime)
    server.stop()


# ---- send: the SMTP client ----------------------------------------------------------------------

class Failed(Exception):
    pass


def stuff(msg):
    """RFC 5321 §4.5.2: a line that starts with a dot gets one more; then the end-of-data line."""
    if msg.startswith(b"."):
        msg = b"." + msg
    msg = msg.replace(b"\r\n.", b"\r\n..")
    if not msg.endswith(b"\r\n"):
        msg += b"\r\n"
    return msg + b".\r\n"


async def reply(reader, timeout):
    """One SMTP reply (multi-line too): (code, last line)."""
    while True:
        line = await asyncio.wait_for(reader.readline(), timeout)
        if not line:
            raise Failed("connection closed by the server")
        if len(line) < 4 or not line[:3].isdigit():
            raise Failed("bad reply line %r" % line[:80])
        if line[3:4] != b"-":
            return int(line[:3]), line.decode("latin-1").rstrip()


async def run_sessions(a, msgs):
    eod, txn, errors, codes = [], [], [], {}
    next_index = [0]
    # --barrier: no session sends its second message before every session has had its first
    # answered, so that the server has had to serve all of them at once (a warm-up that leaves
    # Postfix one smtpd, and policyd-spf, per session)
    at_barrier = [0]
    all_there = asyncio.Event()

    def arrive(counted):
        if not counted[0]:
            counted[0] = True
            at_barrier[0] += 1
            if at_barrier[0] >= a.sessions:
                all_there.set()

    mail_from = b"MAIL FROM:<%s>\r\n" % a.mail_from.encode()
    rcpt_to = b"RCPT TO:<%s>\r\n" % a.rcpt.encode()

    async def command(reader, writer, cmd, want):
        writer.write(cmd)
        code, line = await reply(reader, a.reply_timeout)
        if code != want:
            raise Failed("%s: %s" % (cmd.split(b":")[0].strip().decode(), line))

    async def session(k):
        writer = None
        counted = [False]
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(a.host, a.port), a.reply_timeout)
            code, line = await reply(reader, a.reply_timeout)
            if code != 220:
                raise Failed("greeting: " + line)
            await command(reader, writer, b"EHLO " + a.helo.encode() + b"\r\n", 250)
            while next_index[0] < a.count:
                i = next_index[0]
                next_index[0] += 1
                t0 = time.perf_counter()
                await command(reader, writer, mail_from, 250)
                await command(reader, writer, rcpt_to, 250)
                await command(reader, writer, b"DATA\r\n", 354)
                t1 = time.perf_counter()
                writer.write(msgs[i % len(msgs)])
                code, line = await reply(reader, a.reply_timeout)
                t2 = time.perf_counter()
                eod.append(t2 - t1)
                txn.append(t2 - t0)
                codes[code] = codes.get(code, 0) + 1
                if code != 250:
                    errors.append("message %d: %s" % (i, line))
                    await command(reader, writer, b"RSET\r\n", 250)
                if not counted[0]:
                    arrive(counted)
                    if a.barrier:
                        await asyncio.wait_for(all_there.wait(), a.timeout)
            await command(reader, writer, b"QUIT\r\n", 221)
        except (Failed, OSError, asyncio.TimeoutError) as e:
            errors.append("session %d: %s" % (k, e if str(e) else type(e).__name__))
        finally:
            arrive(counted)  # a session that ends early must not hold the others back
            if writer is not None:
                writer.close()
                try:
                    await asyncio.wait_for(writer.wait_closed(), 5)
                except (OSError, asyncio.TimeoutError):
                    pass

    t0 = time.perf_counter()
    tasks = [asyncio.ensure_future(session(k)) for k in range(a.sessions)]
    done, pending = await asyncio.wait(tasks, timeout=a.timeout)
    for t in pending:
        t.cancel()
    if pending:
        errors.append("stopped after %s s: %d sessions still running" % (a.timeout, len(pending)))
        await asyncio.wait(pending, timeout=5)
    elapsed = time.perf_counter() - t0
    return eod, txn, errors, codes, elapsed


def pct(sorted_values, p):
    """Nearest rank (p in 0..100) of sorted values, in milliseconds."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, int(-(-p * len(sorted_values) // 100)) - 1))
    return round(sorted_values[k] * 1000, 2)


def cmd_send(a):
    msgs = [stuff(m) for m in load_messages(a.dir)]
    cpu0 = time.process_time()
    eod, txn, errors, codes, elapsed = asyncio.run(run_sessions(a, msgs))
    cpu = time.process_time() - cpu0
    ok = codes.get(250, 0)
    eod.sort()
    txn.sort()
    print(json.dumps({
        "sessions": a.sessions, "count": a.count, "accepted": ok, "replies": {str(k): v for k, v in codes.items()},
        "seconds": round(elapsed, 4), "rate": round(ok / elapsed, 1) if elapsed > 0 else None,
        "eod_p50_ms": pct(eod, 50), "eod_p90_ms": pct(eod, 90), "eod_p99_ms": pct(eod, 99), "eod_max_ms": pct(eod, 100),
        "txn_p50_ms": pct(txn, 50), "txn_p99_ms": pct(txn, 99),
        "client_cpu_s": round(cpu, 2), "errors": errors[:5], "error_count": len(errors)}))
    return 0 if ok == a.count and not errors else 1


# ---- cpu: what a set of processes and their descendants have used -------------------------------

def cmd_cpu(a):
    """Prints, for each group PID[,PID...][:COMM], the clock ticks (user + system, with reaped
    children) of those processes and all their descendants, only those named COMM when given: a
    process that exits is counted in its parent once reaped."""
    parent, ticks, comm = {}, {}, {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                head, rest = f.read().rsplit(")", 1)
        except OSError:
            continue
        fields = rest.split()
        parent[int(pid)] = int(fields[1])
        ticks[int(pid)] = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        comm[int(pid)] = head.split("(", 1)[1]
    children = {}
    for pid, ppid in parent.items():
        children.setdefault(ppid, []).append(pid)
    out = []
    for group in a.groups:
        pids, _, name = group.partition(":")
        seen, todo = set(), [int(p) for p in pids.split(",") if p.isdigit() and int(p) in ticks]
        while todo:
            p = todo.pop()
            if p not in seen:
                seen.add(p)
                todo += children.get(p, [])
        out.append(sum(ticks[p] for p in seen if not name or comm[p] == name))
    print(" ".join(str(n) for n in out))


# ---- verify: what arrived, and what the checks said ---------------------------------------------

def header_fields(raw, name):
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    pat = rb"(?im)^" + re.escape(name) + rb":([^\n]*(?:\n[ \t][^\n]*)*)"
    return [re.sub(rb"\r?\n[ \t]+", b" ", f).decode("latin-1").strip() for f in re.findall(pat, head)]


def strip_comments(value):
    out, depth, quoted = "", 0, False
    for ch in value:
        if quoted:
            out += ch
            quoted = ch != '"'
        elif ch == '"' and depth == 0:
            quoted = True
            out += ch
        elif ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
        elif depth == 0:
            out += ch
    return out


def results_of(raw, authserv):
    """{method: [result, ...]} from every Authentication-Results field whose authserv-id is ours."""
    found = {}
    for field in header_fields(raw, b"Authentication-Results"):
        parts = [p.strip() for p in strip_comments(field).split(";")]
        words = parts[0].split()
        if not words or words[0].lower() != authserv.lower():  # RFC 8601 §2.2: authserv-id [version]
            continue
        for p in parts[1:]:
            m = re.match(r"([A-Za-z0-9-]+)\s*=\s*([A-Za-z0-9-]+)", p)
            if m:
                found.setdefault(m.group(1).lower(), []).append(m.group(2).lower())
    return found


def cmd_verify(a):
    methods = [m for m in a.methods.split(",") if m]
    files = []
    for sub in ("new", "cur"):
        d = os.path.join(a.maildir, sub)
        if os.path.isdir(d):
            files += [os.path.join(d, f) for f in os.listdir(d)]
    passed, with_results, example, outcomes = 0, 0, None, {}
    for path in files:
        with open(path, "rb") as f:
            raw = f.read()
        r = results_of(raw, a.authserv)
        if r:
            with_results += 1
        key = " ".join("%s=%s" % (m, ",".join(r[m])) for m in sorted(r)) or "no Authentication-Results of ours"
        outcomes[key] = outcomes.get(key, 0) + 1
        if all(r.get(m) and all(v == "pass" for v in r[m]) for m in methods):
            passed += 1
        elif example is None:
            example = header_fields(raw, b"Authentication-Results")
        if a.delete:
            os.unlink(path)
    print(json.dumps({"messages": len(files), "expected": a.count, "passed": passed, "with_results": with_results,
                      "outcomes": outcomes, "example_not_passing": example}))
    return 0 if len(files) == a.count and passed == a.count and (methods or not with_results) else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("dir")
    m.add_argument("count", type=int)
    m.add_argument("min", type=int)
    m.add_argument("max", type=int)
    m.add_argument("domain")
    m.add_argument("selector")
    m.add_argument("sender")
    m.add_argument("rcpt")
    m.add_argument("--spf", required=True)
    m.add_argument("--dmarc", required=True)
    m.add_argument("--seed", type=int, default=1)
    d = sub.add_parser("dns")
    d.add_argument("host")
    d.add_argument("port", type=int)
    d.add_argument("dir")
    d.add_argument("fixture_dir")
    d.add_argument("--lifetime", type=float, default=7200, help="stop by itself after this many seconds")
    s = sub.add_parser("send")
    s.add_argument("host")
    s.add_argument("port", type=int)
    s.add_argument("sessions", type=int)
    s.add_argument("count", type=int)
    s.add_argument("dir")
    s.add_argument("--mail-from", required=True)
    s.add_argument("--rcpt", required=True)
    s.add_argument("--helo", default="client.bench.example")
    s.add_argument("--timeout", type=float, default=300, help="the whole run stops after this many seconds")
    s.add_argument("--reply-timeout", type=float, default=60, help="the longest wait for one reply")
    s.add_argument("--barrier", action="store_true",
                   help="every session has its first message answered before any sends a second")
    c = sub.add_parser("cpu")
    c.add_argument("groups", nargs="+", metavar="PID[,PID...][:COMM]")
    v = sub.add_parser("verify")
    v.add_argument("maildir")
    v.add_argument("count", type=int)
    v.add_argument("authserv")
    v.add_argument("--methods", default="spf,dkim,dmarc",
                   help="methods that must say pass; empty: the message must carry no results of ours")
    v.add_argument("--delete", action="store_true")
    a = p.parse_args()
    if a.cmd == "make":
        if not (1 <= a.count <= 100000 and 256 <= a.min <= a.max <= 1048576):
            p.error("make: COUNT 1..100000, 256 <= MIN <= MAX <= 1 MiB")
        return cmd_make(a)
    if a.cmd == "dns":
        return cmd_dns(a)
    if a.cmd == "send":
        if not (1 <= a.sessions <= 1000 and 1 <= a.count <= 1000000):
            p.error("send: SESSIONS 1..1000, COUNT 1..1000000")
        return cmd_send(a)
    if a.cmd == "cpu":
        return cmd_cpu(a)
    return cmd_verify(a)


if __name__ == "__main__":
    sys.exit(main() or 0)
