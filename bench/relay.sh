#!/usr/bin/env bash
# bench/relay.sh — remote delivery throughput: how fast mailwerk empties a queue of messages for a
# remote domain into an SMTP server, against a private Postfix doing the same, in the same run and
# on 127.0.0.0/8 only. The remote server is Postfix's smtp-sink (accepts and discards) on
# 127.0.0.2, found by mailwerk through MX sink.test on a loopback DNS server. Acceptance is kept
# out of the figure: each server first queues every message while smtp-sink is down (all are
# deferred), then smtp-sink starts, the queue is flushed, and the time until the queue is empty is
# what is measured. See bench/README.md, "Remote delivery throughput".
#
# Environment:
#   MAILWERK=PATH            mailwerk binary (default: build/mailwerk of this checkout)
#   MAILWERK_SKIP=1          measure only Postfix
#   BENCH_RELAY_MSGS=N       messages queued and delivered by each server (default 5000)
#   BENCH_RELAY_SIZE=BYTES   body size of each message (default 1024; headers come on top)
#   BENCH_RELAY_CONNS=N      parallel submission connections that queue mailwerk's messages (default 8)
#   BENCH_RELAY_TIMEOUT=S    limit of every wait: queueing, deferral, draining (default 300)
#   BENCH_RELAY_MW_OPTS="section.key=value ..."   more `serve -o` overrides for mailwerk, e.g.
#                            "delivery.max_connections_per_domain=20" (default none: the defaults)
#   BENCH_TMPDIR=DIR         where the work dir is made (default /var/tmp; tmpfs is refused)
#   BENCH_KEEP=1             keep the work dir (logs, queues) instead of deleting it
set -euo pipefail
export LC_ALL=C # a decimal point in EPOCHREALTIME and in awk's numbers

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"

MAILWERK=${MAILWERK:-$ROOT/build/mailwerk}
MAILWERK_SKIP=${MAILWERK_SKIP:-0}
MSGS=${BENCH_RELAY_MSGS:-5000}
SIZE=${BENCH_RELAY_SIZE:-1024}
CONNS=${BENCH_RELAY_CONNS:-8}
LIMIT=${BENCH_RELAY_TIMEOUT:-300}
read -r -a MW_OPTS <<<"${BENCH_RELAY_MW_OPTS:-}"
BENCH_TMPDIR=${BENCH_TMPDIR:-/var/tmp}
PY=/usr/bin/python3           # python3-dnslib is installed for this interpreter
PF_SESSIONS=20                 # smtp-source sessions that queue Postfix's messages
SINK_ADDR=127.0.0.2            # smtp-sink, the remote MX (mx.sink.test)
SINK_BACKLOG=1000
RCPT=rcpt@sink.test
POLL=0.05                      # seconds between two looks at a draining queue

for v in MSGS SIZE CONNS LIMIT; do
	[[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive number (got '${!v}')"
done
[ "$MSGS" -le 100000 ] || die "BENCH_RELAY_MSGS: at most 100000"
[ "$CONNS" -le 50 ] || die "BENCH_RELAY_CONNS: at most 50 (mailwerk's default limit per client address)"
if [ "$SIZE" -lt 64 ] || [ "$SIZE" -gt 10485760 ]; then die "BENCH_RELAY_SIZE must be 64..10485760"; fi

# ---- preconditions -------------------------------------------------------------------------------
[ "$(id -u)" -eq 0 ] || die "must run as root (a private Postfix instance and 'smtp-sink -u nobody' need it)"
for tool in postfix postconf postqueue smtp-source smtp-sink sqlite3 "$PY" timeout awk; do
	command -v "$tool" >/dev/null || die "$tool not found (scripts/deps.sh installs postfix, sqlite3 and python3-dnslib)"
done
"$PY" -c 'import dnslib' 2>/dev/null || die "python3-dnslib is missing for $PY (scripts/deps.sh installs it)"
[ -r "$ROOT/tests/integration/dnsfixture.py" ] || die "no tests/integration/dnsfixture.py (the DNS server) in $ROOT"
if [ "$MAILWERK_SKIP" != 1 ]; then
	if [ ! -x "$MAILWERK" ] || [ -d "$MAILWERK" ]; then
		die "mailwerk binary not found or not executable: $MAILWERK
  build it (cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMAILWERK_TESTS=OFF && cmake --build build),
  set MAILWERK=/path/to/mailwerk, or set MAILWERK_SKIP=1 to measure only Postfix"
	fi
	MAILWERK=$(realpath "$MAILWERK")
fi
"$PY" -c 'import socket, sys; s = socket.socket(); s.bind((sys.argv[1], 0)); s.close()' "$SINK_ADDR" 2>/dev/null ||
	die "cannot bind $SINK_ADDR (the remote MX address on the loopback interface)"

# ---- work dir and cleanup ------------------------------------------------------------------------
WORK=$(bench_workdir mailwerk-relay) || exit 1

MW_PID=
DNS_PID=
SINK_PID=
CL_PID=
# shellcheck disable=SC2034 # read by pf_stop in lib.sh
PF_STARTED=0
bench_cleanup_pid CL_PID client
bench_cleanup_pid MW_PID mailwerk
bench_cleanup_pid SINK_PID smtp-sink
bench_cleanup_pid DNS_PID "DNS server"
bench_cleanup_call pf_stop
bench_cleanup_dir WORK
bench_on_exit

# bg_run SECONDS OUT CMD...: runs CMD under timeout in the background (so the trap can stop it),
# stdout and stderr to OUT; returns its exit status (124: timed out)
bg_run() {
	local secs=$1 out=$2 rc=0
	shift 2
	timeout "$secs" "$@" >"$out" 2>&1 &
	CL_PID=$!
	wait "$CL_PID" || rc=$?
	CL_PID=
	return "$rc"
}

# free_port_on ADDR: a TCP port nobody listens on at ADDR right now
free_port_on() {
	"$PY" -c 'import socket, sys; s = socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1]); s.close()' "$1"
}

# ticks PID...: CPU time (user + system, with reaped children) of the processes, in clock ticks
ticks() {
	local p sum=0 t
	for p in "$@"; do
		t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$p/stat" 2>/dev/null) || t=0
		sum=$((sum + ${t:-0}))
	done
	echo "$sum"
}
HZ=$(getconf CLK_TCK)
cpu_s() { awk -v a="$1" -v b="$2" -v hz="$HZ" 'BEGIN { printf "%.1f", (b - a) / hz }'; }
# pf_procs: the Postfix master and its children (every Postfix daemon is one)
pf_procs() {
	local m
	m=$(pf_master_pid) || return 0
	echo "$m"
	ps -o pid= --ppid "$m" 2>/dev/null || true
}

# ---- smtp-sink: the remote MX ----------------------------------------------------------------------
# sink_start PORT NAME: smtp-sink on SINK_ADDR:PORT, printing its counters (-c) to $WORK/sink-NAME.log
sink_start() {
	SINK_LOG=$WORK/sink-$2.log
	smtp-sink -c -u nobody "$SINK_ADDR:$1" "$SINK_BACKLOG" >"$SINK_LOG" 2>&1 &
	SINK_PID=$!
	local i
	for ((i = 0; i < 100; i++)); do
		(exec 3<>"/dev/tcp/$SINK_ADDR/$1") 2>/dev/null && return 0
		kill -0 "$SINK_PID" 2>/dev/null || break
		sleep 0.1
	done
	die "smtp-sink did not accept on $SINK_ADDR:$1: $(tr '\r' '\n' <"$SINK_LOG" | tail -n 3)"
}
# sink_stop -> "SESSIONS MESSAGES" from smtp-sink's last counter line (minus the probe connection)
sink_stop() {
	stop_pid "$SINK_PID" smtp-sink
	SINK_PID=
	tr '\r' '\n' <"$SINK_LOG" | awk -F'[= ]' '/^sess=/ { s = $2; m = $6 } END { printf "%d %d\n", s - 1, m }'
}

# ---- drain timing --------------------------------------------------------------------------------
# drain COUNTFN T0 SERIES: polls COUNTFN (messages still queued) until it says 0, at most LIMIT s
# after T0 (an EPOCHREALTIME). Sets T_FIRST (first time fewer than MSGS were left), T_EMPTY (empty,
# or empty when it never emptied) and LEFT (what the last look counted). Every look goes to SERIES
# as "SECONDS_SINCE_T0 LEFT".
drain() {
	local fn=$1 t0=$2 series=$3 n t
	T_FIRST=
	T_EMPTY=
	LEFT=$MSGS
	: >"$series"
	while :; do
		n=$($fn)
		t=$EPOCHREALTIME
		[[ "$n" =~ ^[0-9]+$ ]] || { LEFT="? ($n)"; return 1; }
		LEFT=$n
		echo "$t $n" >>"$series"
		[ -n "$T_FIRST" ] || [ "$n" -ge "$MSGS" ] || T_FIRST=$t
		if [ "$n" -eq 0 ]; then
			T_EMPTY=$t
			break
		fi
		[ "${t%.*}" -le "$((${t0%.*} + LIMIT))" ] || break
		sleep "$POLL"
	done
	# the series as seconds since T0
	awk -v a="$t0" '{ printf "%.3f %d\n", $1 - a, $2 }' "$series" >"$series.tmp" && mv "$series.tmp" "$series"
	[ -n "$T_EMPTY" ]
}
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
# steady -> MSGS / (T_EMPTY - T_FIRST), "-" when the queue emptied between two looks
steady() { if [ "$T_FIRST" = "$T_EMPTY" ]; then echo "-"; else rate "$MSGS" "$T_FIRST" "$T_EMPTY"; fi; }

# ---- header --------------------------------------------------------------------------------------
echo "mailwerk remote delivery benchmark — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
bench_machine "$WORK"
echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews every figure)"
echo "$MSGS messages of $SIZE body bytes each to $RCPT; MX 10 mx.sink.test = smtp-sink on $SINK_ADDR"
echo "peer: Postfix $(postconf -dh mail_version 2>/dev/null) (private instance, smtp(8) to [$SINK_ADDR]:PORT), default_destination_concurrency_limit $(postconf -dh default_destination_concurrency_limit) (default)"
if [ "$MAILWERK_SKIP" = 1 ]; then
	echo "MAILWERK_SKIP=1: measuring only Postfix"
else
	rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "?")
	[ -z "$(git -C "$ROOT" status --porcelain -- src CMakeLists.txt 2>/dev/null)" ] || rev="$rev + uncommitted changes in src/"
	echo "mailwerk: $MAILWERK (checkout at $rev)"
fi
echo

declare -A RES # RES[target] = "messages seconds rate first_s steady_rate cpu_s sink_sess sink_msgs"
declare -A NA  # NA[target] = why it was not measured

# ==== mailwerk ====================================================================================
MW_DIR=$WORK/mailwerk
MW_CONF=$MW_DIR/mailwerk.conf
MW_LOG=$WORK/mailwerk.serve.log

# mw_remaining -> messages in mailwerk's queue: a read-only COUNT on queue.db (cheap enough to poll
# often); `queue list --json` when that fails
mw_remaining() {
	local n
	if n=$(sqlite3 -readonly -cmd '.timeout 2000' "$MW_DIR/queue.db" 'SELECT count(*) FROM messages' 2>/dev/null) &&
		[[ "$n" =~ ^[0-9]+$ ]]; then
		echo "$n"
		return
	fi
	"$MAILWERK" queue list -c "$MW_CONF" --json 2>/dev/null | "$PY" -c 'import json, sys; print(len(json.load(sys.stdin)))' 2>&1 | tail -n 1
}
# mw_states -> "MESSAGES pending=N deferred=N delivered=N failed=N attempted=N" from queue list --json
# [--errors: then the most frequent last_error, with its count, on a second line]
mw_states() {
	"$MAILWERK" queue list -c "$MW_CONF" --json 2>&1 | "$PY" -c '
import collections, json, sys
try:
    d = json.load(sys.stdin)
except ValueError as e:
    print("queue list --json is not JSON: %s" % e)
    sys.exit(0)
c = collections.Counter()
for m in d:
    for r in m["recipients"]:
        c[r["state"]] += 1
        c["attempted"] += r["attempts"] > 0
print(len(d), " ".join("%s=%d" % (k, c[k]) for k in ("pending", "deferred", "delivered", "failed", "attempted")))
if len(sys.argv) > 1:
    e = collections.Counter(r["last_error"] for m in d for r in m["recipients"] if r["last_error"])
    print("%d x %s" % e.most_common(1)[0][::-1] if e else "no last_error")
' "$@" 2>&1 | tail -n 2
}
# mw_setting KEY -> the value of [delivery] KEY: from BENCH_RELAY_MW_OPTS, else from the
# configuration file, else "default"
mw_setting() {
	local o v=
	for o in "${MW_OPTS[@]}"; do [[ "$o" != "delivery.$1="* ]] || v="${o#*=} (override)"; done
	[ -n "$v" ] || v=$(awk -v k="$1" '/^\[/ { s = $0 } s == "[delivery]" && $1 == k && $2 == "=" { print $3; f = 1 } END { if (!f) print "default" }' "$MW_CONF")
	echo "$v"
}

mw_run() {
	local dns_port sub_port sink_port out states t0 c0 c1 s0 s1 ss sm pass res i n t o
	"$MAILWERK" init --dir "$MW_DIR" --domain bench.test --hostname mx.bench.test >"$WORK/mailwerk.init.log" 2>&1 ||
		die "mailwerk init failed: $(cat "$WORK/mailwerk.init.log")"
	pass=$(awk '$1 == "Password:" { print $2; exit }' "$WORK/mailwerk.init.log")
	[ -n "$pass" ] || die "mailwerk init printed no 'Password:' line: $(cat "$WORK/mailwerk.init.log")"

	# the DNS server: tests/integration/dnsfixture.py's, serving sink.test's MX and its address
	cat >"$WORK/dns.py" <<'EOF'
import signal, sys, time
sys.path.insert(0, sys.argv[1])
from dnsfixture import DNSServer
server = DNSServer(ttl=3600).start()
server.load({"sink.test": {"MX": "10 mx.sink.test."}, "mx.sink.test": {"A": sys.argv[2]}})
print(server.port, flush=True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while True:
    time.sleep(3600)
EOF
	"$PY" "$WORK/dns.py" "$ROOT/tests/integration" "$SINK_ADDR" >"$WORK/dns.port" 2>"$WORK/dns.log" &
	DNS_PID=$!
	for ((i = 0; i < 100; i++)); do
		dns_port=$(head -n 1 "$WORK/dns.port")
		[ -z "$dns_port" ] || break
		kill -0 "$DNS_PID" 2>/dev/null || break
		sleep 0.1
	done
	[[ "$dns_port" =~ ^[0-9]+$ ]] || die "the DNS server did not start: $(tail -n 3 "$WORK/dns.log")"
	if ! out=$(timeout 20 "$MAILWERK" resolve sink.test --resolver "127.0.0.1@$dns_port" --timeout 5s 2>&1) ||
		[[ "$out" != *"mx.sink.test $SINK_ADDR"* ]]; then
		NA[mailwerk]="mailwerk resolve sink.test via 127.0.0.1@$dns_port did not find mx.sink.test $SINK_ADDR: $(tr '\n' ' ' <<<"$out")"
		return 1
	fi
	log "DNS on 127.0.0.1@$dns_port; mailwerk resolve sink.test: $(tr '\n' ' ' <<<"$out")"

	sub_port=$(free_port)
	sink_port=$(free_port_on "$SINK_ADDR")
	# submission without TLS: allow_insecure_auth is honoured on a loopback listener only;
	# dkim.sign=no: the Postfix it is compared with does not sign (no OpenDKIM milter)
	local args=(-c "$MW_CONF" -o "listen.submission=127.0.0.1:$sub_port" -o listen.smtp= -o listen.submissions=
		-o listen.pop3= -o listen.pop3s= -o smtp.allow_insecure_auth=yes -o "dns.resolver=127.0.0.1@$dns_port"
		-o dkim.sign=no
		-o "delivery.remote_port=$sink_port" -o delivery.retry_schedule=1h)
	for o in "${MW_OPTS[@]}"; do args+=(-o "$o"); done
	"$MAILWERK" serve "${args[@]}" >"$MW_LOG" 2>&1 &
	MW_PID=$!
	if ! wait_port "$sub_port" 15 "$MW_PID"; then
		NA[mailwerk]="serve did not start: $(grep -v 'level=info' "$MW_LOG" | tail -n 2 | tr '\n' ' ')"
		stop_pid "$MW_PID" mailwerk
		MW_PID=
		return 1
	fi
	for ((i = 0; i < 150; i++)); do
		grep -q 'event=started' "$MW_LOG" && break
		sleep 0.1
	done
	log "mailwerk serve: submission on 127.0.0.1:$sub_port, remote port $sink_port (smtp-sink not running yet)"
	echo "mailwerk: [delivery] max_connections = $(mw_setting max_connections), max_connections_per_domain = $(mw_setting max_connections_per_domain) (defaults: 100 and 10)"
	[ ${#MW_OPTS[@]} -eq 0 ] || echo "mailwerk: with the overrides ${MW_OPTS[*]}"

	# queue the messages: authenticated submission over CONNS persistent connections
	cat >"$WORK/submit.py" <<'EOF'
import os, smtplib, sys, threading, time
port, user, rcpt, count, conns, size = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
password = os.environ["BENCH_PASS"]
body, rest = b"", size  # lines of at most 64 octets with CRLF, size octets in all
while rest > 0:
    n = min(64, rest)
    n -= rest - n == 1  # never leave a single octet for the last line
    body += b"x" * (n - 2) + b"\r\n"
    rest -= n
errors, done = [], [0]
lock = threading.Lock()

def worker(k, n):
    try:
        s = smtplib.SMTP("127.0.0.1", port, "client.bench.example", timeout=60)
        s.ehlo()
        s.login(user, password)
        for i in range(n):
            seq = "%d.%d" % (k, i)
            head = ("From: <%s>\r\nTo: <%s>\r\nSubject: relay bench %s\r\nMessage-ID: <%s@client.bench.example>\r\n"
                    "Date: Sun, 22 Nov 2026 00:00:00 +0000\r\n\r\n" % (user, rcpt, seq, seq)).encode()
            s.sendmail(user, [rcpt], head + body)
            with lock:
                done[0] += 1
        s.quit()
    except Exception as e:
        with lock:
            errors.append("connection %d: %r" % (k, e))

t0 = time.monotonic()
threads = [threading.Thread(target=worker, args=(k, count // conns + (k < count % conns))) for k in range(conns)]
for t in threads:
    t.start()
for t in threads:
    t.join()
dt = time.monotonic() - t0
print("%d %.3f" % (done[0], dt))
for e in errors[:5]:
    print("error: " + e)
sys.exit(1 if errors or done[0] != count else 0)
EOF
	log "mailwerk: queueing $MSGS messages over $CONNS authenticated submission connections"
	res=0
	BENCH_PASS=$pass bg_run "$LIMIT" "$WORK/submit.out" "$PY" "$WORK/submit.py" "$sub_port" demo@bench.test "$RCPT" \
		"$MSGS" "$CONNS" "$SIZE" || res=$?
	if [ "$res" != 0 ]; then
		NA[mailwerk]="submission failed ($([ "$res" = 124 ] && echo "timed out after $LIMIT s" || echo "exit $res")): $(tail -n 3 "$WORK/submit.out" | tr '\n' ' ')"
		return 1
	fi
	read -r n t <<<"$(head -n 1 "$WORK/submit.out")"
	log "mailwerk: $n messages accepted in $t s ($(awk -v n="$n" -v t="$t" 'BEGIN { printf "%.0f", n / t }') msg/s); waiting until all are deferred"

	# every message must be deferred (smtp-sink is down) before the clock starts
	t0=$EPOCHREALTIME
	while :; do
		states=$(mw_states)
		[[ "$states" == "$MSGS pending=0 deferred=$MSGS delivered=0 failed=0 "* ]] && break
		if awk -v a="$t0" -v b="$EPOCHREALTIME" -v l="$LIMIT" 'BEGIN { exit !(b - a > l) }'; then
			NA[mailwerk]="the messages were not all deferred within $LIMIT s: queue list says $states"
			return 1
		fi
		sleep 1
	done
	log "mailwerk: all deferred after $(secs "$t0" "$EPOCHREALTIME") s ($states; last error: $(mw_states --errors | tail -n 1))"
	log "mailwerk: starting smtp-sink and flushing"

	sink_start "$sink_port" mailwerk
	c0=$(ticks "$MW_PID")
	s0=$(ticks "$SINK_PID")
	t0=$EPOCHREALTIME
	out=$("$MAILWERK" queue flush -c "$MW_CONF" 2>&1) || { NA[mailwerk]="queue flush failed: $out"; return 1; }
	drain mw_remaining "$t0" "$WORK/drain-mailwerk.txt" || true
	c1=$(ticks "$MW_PID")
	s1=$(ticks "$SINK_PID")
	log "mailwerk: queue flush said: $(tr '\n' ' ' <<<"$out")"
	# stop the server first: every connection it had open has then ended and smtp-sink counts it
	kill -0 "$MW_PID" 2>/dev/null || warn "mailwerk died during the run: $(tail -n 3 "$MW_LOG")"
	stop_pid "$MW_PID" mailwerk
	MW_PID=
	read -r ss sm <<<"$(sink_stop)"
	if [ -z "$T_EMPTY" ]; then
		NA[mailwerk]="the queue was not empty $LIMIT s after the flush ($LEFT of $MSGS left: $(mw_states))"
		return 1
	fi
	RES[mailwerk]="$MSGS $(secs "$t0" "$T_EMPTY") $(rate "$MSGS" "$t0" "$T_EMPTY") $(secs "$t0" "$T_FIRST") $(steady) $(cpu_s "$c0" "$c1") $(cpu_s "$s0" "$s1") $ss $sm"
	states=$(mw_states)
	[ "$states" = "0 pending=0 deferred=0 delivered=0 failed=0 attempted=0" ] || warn "mailwerk: queue list after the drain: $states"
	[ "$sm" = "$MSGS" ] || warn "mailwerk: smtp-sink received $sm messages, not $MSGS — run INVALID"
	n=$(grep -c 'event=delivered' "$MW_LOG" || true)
	[ "$n" = "$MSGS" ] || warn "mailwerk: $n event=delivered lines in its log, not $MSGS"
	n=$(grep -c 'level=error' "$MW_LOG" || true)
	[ "$n" = 0 ] || warn "mailwerk: $n error line(s) in its log, first: $(grep -m 1 'level=error' "$MW_LOG")"
	return 0
}

if [ "$MAILWERK_SKIP" = 1 ]; then
	NA[mailwerk]="skipped (MAILWERK_SKIP=1)"
else
	mw_run || true
	stop_pid "$MW_PID" mailwerk
	MW_PID=
	stop_pid "$SINK_PID" smtp-sink
	SINK_PID=
	stop_pid "$DNS_PID" "DNS server"
	DNS_PID=
	[ -n "${NA[mailwerk]:-}" ] && warn "mailwerk not measured: ${NA[mailwerk]}"
fi

# ==== Postfix =====================================================================================
# A private instance (bench/lib.sh pf_setup; the traps are those of bench/postfix/): accepts from
# 127.0.0.0/8 and sends everything for sink.test with smtp(8) to smtp-sink, without DNS.
pf_templates() {
	local dir=$WORK/postfix-relay-templates
	mkdir -p "$dir"
	cat >"$dir/main.cf.in" <<EOF
# main.cf of the private Postfix instance that bench/relay.sh runs as its peer: accepts mail from
# 127.0.0.0/8 and relays mail for sink.test with smtp(8) to smtp-sink at [$SINK_ADDR]:$1, no DNS.
compatibility_level = 3.6
config_directory = @CONF_DIR@
queue_directory = @QUEUE_DIR@
data_directory = @DATA_DIR@
mail_owner = postfix
setgid_group = postdrop
maillog_file = @LOG_FILE@
maillog_file_prefixes = @WORK_DIR@
syslog_name = postfix-bench

myhostname = bench.example
mydomain = bench.example
myorigin = \$myhostname
mydestination =
relay_domains =
local_recipient_maps =
alias_maps =
alias_database =
biff = no
append_dot_mydomain = no

inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_peername_lookup = no
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination

# The one destination: sink.test, by smtp(8), to smtp-sink (the brackets: no MX lookup).
# Concurrency, connection caching and retry settings are Postfix's defaults.
transport_maps = inline:{ sink.test=smtp:[$SINK_ADDR]:$1 }
smtp_dns_support_level = disabled
default_transport = error:bench instance relays only to sink.test
relay_transport = error:bench instance relays only to sink.test
local_transport = error:bench instance has no local delivery
EOF
	cat >"$dir/master.cf.in" <<'EOF'
# master.cf of the private Postfix instance that bench/relay.sh runs as its peer: smtpd, the queue
# services, smtp(8) for delivery, showq for postqueue -p, pickup (postqueue -f checks that it is
# there to tell whether the mail system is up); chroot "n" everywhere (no etc/ in the private
# queue directory).
# service    type       private unpriv  chroot  wakeup  maxproc command
@LISTEN@     inet       n       -       n       -       -       smtpd
pickup       unix       n       -       n       60      1       pickup
cleanup      unix       n       -       n       -       0       cleanup
qmgr         unix       n       -       n       300     1       qmgr
rewrite      unix       -       -       n       -       -       trivial-rewrite
bounce       unix       -       -       n       -       0       bounce
defer        unix       -       -       n       -       0       bounce
trace        unix       -       -       n       -       0       bounce
verify       unix       -       -       n       -       1       verify
flush        unix       n       -       n       1000?   0       flush
showq        unix       n       -       n       -       -       showq
smtp         unix       -       -       n       -       -       smtp
error        unix       -       -       n       -       -       error
retry        unix       -       -       n       -       -       error
proxymap     unix       -       -       n       -       -       proxymap
anvil        unix       -       -       n       -       1       anvil
scache       unix       -       -       n       -       1       scache
postlog      unix-dgram n       -       n       -       1       postlogd
EOF
	echo "$dir"
}
pf_count() { find "$PF_QUEUE/$1" -type f 2>/dev/null | wc -l; }
# pf_remaining -> messages anywhere in Postfix's queue but hold
pf_remaining() { find "$PF_QUEUE/maildrop" "$PF_QUEUE/incoming" "$PF_QUEUE/active" "$PF_QUEUE/deferred" -type f 2>/dev/null | wc -l; }

pf_run() {
	local port sink_port tdir out t0 c0 c1 s0 s1 ss sm res n
	port=$(free_port)
	sink_port=$(free_port_on "$SINK_ADDR")
	tdir=$(pf_templates "$sink_port")
	pf_setup "$WORK" "$port" "$tdir"
	pf_start
	log "postfix on 127.0.0.1:$port (config $PF_CONF), relaying sink.test to [$SINK_ADDR]:$sink_port (smtp-sink not running yet)"

	log "postfix: queueing $MSGS messages with smtp-source -s $PF_SESSIONS -d"
	res=0
	t0=$EPOCHREALTIME
	bg_run "$LIMIT" "$WORK/source.out" smtp-source -d -s "$PF_SESSIONS" -m "$MSGS" -l "$SIZE" -f sender@bench.example \
		-t "$RCPT" -M client.bench.example "inet:127.0.0.1:$port" || res=$?
	if [ "$res" != 0 ] || [ -s "$WORK/source.out" ]; then
		NA[postfix]="smtp-source failed ($([ "$res" = 124 ] && echo "timed out after $LIMIT s" || echo "exit $res")): $(head -n 3 "$WORK/source.out" | tr '\n' ' ')"
		return 1
	fi
	log "postfix: $MSGS messages accepted in $(secs "$t0" "$EPOCHREALTIME") s; waiting until all are deferred"

	t0=$EPOCHREALTIME
	while :; do
		n=$(pf_count deferred)
		[ "$n" -eq "$MSGS" ] && [ "$(pf_remaining)" -eq "$MSGS" ] && break
		if grep -q 'status=bounced' "$PF_LOG"; then
			NA[postfix]="messages bounced instead of being deferred: $(grep -m 1 'status=bounced' "$PF_LOG")"
			return 1
		fi
		if awk -v a="$t0" -v b="$EPOCHREALTIME" -v l="$LIMIT" 'BEGIN { exit !(b - a > l) }'; then
			NA[postfix]="the messages were not all deferred within $LIMIT s: $n deferred, $(pf_remaining) queued"
			return 1
		fi
		sleep 1
	done
	log "postfix: all $n deferred after $(secs "$t0" "$EPOCHREALTIME") s (most frequent reason: $(grep 'status=deferred' "$PF_LOG" |
		sed -e 's/.*status=deferred //' | sort | uniq -c | sort -rn | head -n 1 | awk '{ $1 = $1 " x"; print }'))"
	log "postfix: starting smtp-sink and flushing"

	sink_start "$sink_port" postfix
	# shellcheck disable=SC2046
	c0=$(ticks $(pf_procs))
	s0=$(ticks "$SINK_PID")
	t0=$EPOCHREALTIME
	out=$(postqueue -c "$PF_CONF" -f 2>&1) || { NA[postfix]="postqueue -f failed: $out"; return 1; }
	drain pf_remaining "$t0" "$WORK/drain-postfix.txt" || true
	# shellcheck disable=SC2046
	c1=$(ticks $(pf_procs))
	s1=$(ticks "$SINK_PID")
	out=$(postqueue -c "$PF_CONF" -p 2>&1 || true)
	# stop Postfix first: its cached connections have then ended and smtp-sink counts them
	pf_stop
	read -r ss sm <<<"$(sink_stop)"
	if [ -z "$T_EMPTY" ]; then
		NA[postfix]="the queue was not empty $LIMIT s after postqueue -f ($LEFT of $MSGS left)"
		return 1
	fi
	RES[postfix]="$MSGS $(secs "$t0" "$T_EMPTY") $(rate "$MSGS" "$t0" "$T_EMPTY") $(secs "$t0" "$T_FIRST") $(steady) $(cpu_s "$c0" "$c1") $(cpu_s "$s0" "$s1") $ss $sm"
	[[ "$out" == *"Mail queue is empty"* ]] || warn "postfix: postqueue -p after the drain: $(head -n 2 <<<"$out" | tr '\n' ' ')"
	[ "$sm" = "$MSGS" ] || warn "postfix: smtp-sink received $sm messages, not $MSGS — run INVALID"
	n=$(grep -c 'status=sent' "$PF_LOG" || true)
	[ "$n" = "$MSGS" ] || warn "postfix: $n status=sent lines in its log, not $MSGS"
	return 0
}
pf_run || true
pf_stop
stop_pid "$SINK_PID" smtp-sink
SINK_PID=
[ -n "${NA[postfix]:-}" ] && warn "postfix not measured: ${NA[postfix]}"

# ==== report ======================================================================================
echo
echo "Remote delivery: $MSGS queued messages of $SIZE body bytes, all deferred while smtp-sink was down;"
echo "then smtp-sink starts and the queue is flushed (mailwerk queue flush / postqueue -f). seconds = from"
echo "the flush command to the queue found empty (polled every ${POLL}s); first = from the flush to the"
echo "first message gone from the queue; steady msg/s = messages / (empty - first). CPU = user+system"
echo "seconds of the server's processes (Postfix: master and all its children) and of smtp-sink over the"
echo "drain. conns/msgs = what smtp-sink counted: SMTP sessions (read after the server was stopped, so"
echo "each one has ended) and messages received."
echo
row() { printf '   %-18s %9s %9s %9s %9s %13s %9s %9s %13s\n' "$@"; }
row "" "messages" "seconds" "msg/s" "first s" "steady msg/s" "CPU s" "sink CPU" "conns/msgs"
for t in mailwerk postfix; do
	if [ -z "${RES[$t]:-}" ]; then
		row "$t" "-" "-" "-" "-" "-" "-" "-" "-"
		continue
	fi
	read -r m s r f st cpu scpu ss sm <<<"${RES[$t]}"
	row "$t" "$m" "$s" "$r" "$f" "$st" "$cpu" "$scpu" "$ss/$sm"
done
mw_r=$(awk '{ print $3 }' <<<"${RES[mailwerk]:-}")
pf_r=$(awk '{ print $3 }' <<<"${RES[postfix]:-}")
mw_st=$(awk '{ print $5 }' <<<"${RES[mailwerk]:-}")
pf_st=$(awk '{ print $5 }' <<<"${RES[postfix]:-}")
x=$(ratio "$mw_r" "$pf_r")
row "mailwerk/postfix" "" "" "$x" "" "$(ratio "$mw_st" "$pf_st")" "" "" ""
echo
echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "${NA[mailwerk]:-}" ]; then
	echo "mailwerk/postfix remote delivery: not measured (mailwerk: ${NA[mailwerk]}); postfix ${pf_r:--} msg/s"
else
	met=$(awk -v v="$x" 'BEGIN { print (v != "-" && v + 0 >= 2) ? "met" : "NOT met" }')
	echo "mailwerk/postfix remote delivery: ${x}x (target >= 2x) $met (${mw_r:--} vs ${pf_r:--} msg/s)"
fi

if [ ${#WARNINGS[@]} -gt 0 ]; then
	echo
	echo "WARNING: ${#WARNINGS[@]} problem(s); figures from those runs are missing or INVALID:"
	printf '  - %s\n' "${WARNINGS[@]}"
	exit 1
fi
