#!/usr/bin/env bash
# bench/checks.sh — what mailwerk's inbound SPF/DKIM/DMARC checks cost: the same DKIM-signed
# messages, from a sender domain whose SPF authorizes 127.0.0.1 and whose DMARC is p=reject, sent to
# mailwerk with its checks on, with them off, to a private Postfix checking the same with Debian's
# milters (OpenDKIM, OpenDMARC) and SPF policy server (postfix-policyd-spf-python), to that Postfix
# without them, and to smtp-sink (the client's ceiling), at a few concurrencies, in one run. Every
# server runs on 127.0.0.0/8 and resolves through one DNS server of the benchmark's own
# (tests/integration/dnsfixture.py). See bench/README.md, "Inbound checks".
#
# Environment:
#   MAILWERK=PATH              mailwerk binary (default: build/mailwerk of this checkout)
#   MAILWERK_SKIP=1            measure only the peers
#   QUICK=1                    500 messages at 10 sessions only (about a minute)
#   BENCH_CHECKS_MSGS=N        timed messages per run (default 2000)
#   BENCH_CHECKS_SESSIONS="1 10 50"   concurrencies (parallel SMTP sessions)
#   BENCH_CHECKS_MIN_SIZE=B, BENCH_CHECKS_MAX_SIZE=B   message sizes, uniform in between
#                              (default 1024 and 5120; the DKIM-Signature field included)
#   BENCH_CHECKS_WARMUP=N      untimed messages before each timed run (default 100, at least 2 per
#                              session)
#   BENCH_CHECKS_REPEAT=N      timed runs per cell; the table shows the run of median msg/s (default 1)
#   BENCH_CHECKS_TIMEOUT=S     limit of every wait: one client run, one delivery (default 300)
#   BENCH_CHECKS_DNS_ADDRS="127.0.0.154 ..."   where the DNS server may listen (port 53: the
#                              peer's resolvers know no other); the first free one is taken
#   BENCH_CHECKS_NO_NAMESPACE=1   run the peer as it would run without a private mount namespace:
#                              SPF and DMARC off (their resolvers would leave loopback), DKIM only
#   BENCH_TMPDIR=DIR           where the work dir is made (default /var/tmp; tmpfs is refused)
#   BENCH_KEEP=1               keep the work dir (logs, configurations, results)
set -euo pipefail
export LC_ALL=C

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"

MAILWERK=${MAILWERK:-$ROOT/build/mailwerk}
MAILWERK_SKIP=${MAILWERK_SKIP:-0}
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
	MSGS=${BENCH_CHECKS_MSGS:-500}
	read -r -a SESSIONS <<<"${BENCH_CHECKS_SESSIONS:-10}"
else
	MSGS=${BENCH_CHECKS_MSGS:-2000}
	read -r -a SESSIONS <<<"${BENCH_CHECKS_SESSIONS:-1 10 50}"
fi
MIN_SIZE=${BENCH_CHECKS_MIN_SIZE:-1024}
MAX_SIZE=${BENCH_CHECKS_MAX_SIZE:-5120}
WARMUP=${BENCH_CHECKS_WARMUP:-100}
REPEAT=${BENCH_CHECKS_REPEAT:-1}
LIMIT=${BENCH_CHECKS_TIMEOUT:-300}
read -r -a DNS_ADDRS <<<"${BENCH_CHECKS_DNS_ADDRS:-127.0.0.154 127.0.0.155 127.0.0.156 127.0.0.157 127.0.0.158}"
NO_NS=${BENCH_CHECKS_NO_NAMESPACE:-0}
BENCH_TMPDIR=${BENCH_TMPDIR:-/var/tmp}
PY=/usr/bin/python3 # python3-dnslib, -dkim and -cryptography are installed for this interpreter
CHECKS_PY=$BENCH_DIR/checks.py

# the sender's side: its domain, its records, the key's selector; the receiving mailbox
DOMAIN=sender.example
SELECTOR=bench
SENDER=alice@$DOMAIN
RCPT=demo@bench.test
SPF_RECORD="v=spf1 ip4:127.0.0.1 -all"
DMARC_RECORD="v=DMARC1; p=reject"
MW_AUTHSERV=mx.bench.test # the authserv-id of each server's Authentication-Results
PF_AUTHSERV=bench.example

for v in MSGS MIN_SIZE MAX_SIZE LIMIT REPEAT; do
	[[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive number (got '${!v}')"
done
[[ "$WARMUP" =~ ^[0-9]+$ ]] || die "BENCH_CHECKS_WARMUP must be a number"
[ "$MSGS" -le 100000 ] || die "BENCH_CHECKS_MSGS: at most 100000"
[ "$REPEAT" -le 9 ] || die "BENCH_CHECKS_REPEAT: at most 9"
if [ "$MIN_SIZE" -lt 1024 ] || [ "$MAX_SIZE" -lt "$MIN_SIZE" ] || [ "$MAX_SIZE" -gt 1048576 ]; then
	die "message sizes: 1024 <= BENCH_CHECKS_MIN_SIZE <= BENCH_CHECKS_MAX_SIZE <= 1048576"
fi
[ ${#SESSIONS[@]} -gt 0 ] || die "BENCH_CHECKS_SESSIONS is empty"
for s in "${SESSIONS[@]}"; do
	if ! [[ "$s" =~ ^[1-9][0-9]*$ ]] || [ "$s" -gt 200 ]; then die "BENCH_CHECKS_SESSIONS: numbers 1..200, not '$s'"; fi
done

# ---- packages and preconditions ------------------------------------------------------------------
bash "$ROOT/scripts/deps.sh" bench || die "cannot install the benchmark's packages (scripts/deps.sh bench)"
[ "$(id -u)" -eq 0 ] || die "must run as root (a private Postfix instance, smtp-sink -u nobody and the peer's private mount namespace need it)"
for tool in postfix postconf smtp-sink "$PY" timeout awk; do
	command -v "$tool" >/dev/null || die "$tool not found (scripts/deps.sh bench installs it)"
done
"$PY" -c 'import dnslib, dkim, cryptography' 2>/dev/null || die "python3-dnslib, python3-dkim or python3-cryptography is missing for $PY (scripts/deps.sh installs them)"
[ -r "$ROOT/tests/integration/dnsfixture.py" ] || die "no tests/integration/dnsfixture.py (the DNS server) in $ROOT"
if [ "$MAILWERK_SKIP" != 1 ]; then
	if [ ! -x "$MAILWERK" ] || [ -d "$MAILWERK" ]; then
		die "mailwerk binary not found or not executable: $MAILWERK
  build it (make build), set MAILWERK=/path/to/mailwerk, or set MAILWERK_SKIP=1 to measure only the peers"
	fi
	MAILWERK=$(realpath "$MAILWERK")
fi

# ---- work dir and cleanup ------------------------------------------------------------------------
WORK=$(bench_workdir mailwerk-checks) || exit 1
chmod 755 "$WORK"
SET=$WORK/set        # the messages, the records, the DNS server's query log
MIL=$WORK/milters    # the peer's milter and policy configurations and sockets, its resolv.conf
mkdir -p "$SET" "$MIL"
chmod 755 "$MIL"

declare -A MWPID MWPORT MWDIR MWLOG
DNS_PID=
MILTER_PID=
MILTER_WHY=
DKIM_PID=
DMARC_PID=
SINK_PID=
CL_PID=
# shellcheck disable=SC2034 # read by pf_stop in lib.sh
PF_STARTED=0
bench_cleanup_pid CL_PID client
bench_cleanup_pids MWPID mailwerk
bench_cleanup_call pf_stop
bench_cleanup_pid DKIM_PID opendkim
bench_cleanup_pid DMARC_PID opendmarc
bench_cleanup_pid SINK_PID smtp-sink
bench_cleanup_pid DNS_PID "DNS server"
bench_cleanup_dir WORK
bench_on_exit

# bg_run SECONDS OUT CMD...: CMD under timeout in the background (so the trap can stop it), stdout
# to OUT, stderr to OUT.err; returns its exit status (124: timed out)
bg_run() {
	local secs=$1 out=$2 rc=0
	shift 2
	timeout "$secs" "$@" >"$out" 2>"$out.err" &
	CL_PID=$!
	wait "$CL_PID" || rc=$?
	CL_PID=
	return "$rc"
}

# json FILE KEY -> the value of KEY in the one-line JSON object in FILE ("-" when null or missing)
json() { "$PY" -c 'import json, sys
v = json.load(open(sys.argv[1])).get(sys.argv[2])
print("-" if v is None else v)' "$1" "$2" 2>/dev/null || echo "-"; }

# ---- the peer's resolver: a private mount namespace ----------------------------------------------
# OpenDMARC (res_query) and policyd-spf (dnspython) have no setting for a name server:
# they read /etc/resolv.conf and ask port 53. They run, with the Postfix that spawns policyd-spf, in
# a private mount namespace whose /etc/resolv.conf names the benchmark's DNS server; the machine's
# own file is never touched. OpenDKIM (libunbound) is told its name server (Nameservers).
NS_OK=0
NS_WHY=
if [ "$NO_NS" = 1 ]; then
	NS_WHY="BENCH_CHECKS_NO_NAMESPACE=1"
elif ! command -v unshare >/dev/null; then
	NS_WHY="no unshare(1)"
else
	echo "nameserver 127.0.0.154" >"$WORK/probe.conf"
	# shellcheck disable=SC2016 # $1 is the inner shell's
	if out=$(timeout 20 unshare --mount sh -c 'mount --bind "$1" /etc/resolv.conf && cat /etc/resolv.conf' sh "$WORK/probe.conf" 2>&1) &&
		[ "$out" = "nameserver 127.0.0.154" ]; then
		NS_OK=1
	else
		NS_WHY="unshare --mount with a bind-mounted /etc/resolv.conf failed: $(head -n 1 <<<"$out")"
	fi
	rm -f "$WORK/probe.conf"
fi
# in_ns CMD...: execs CMD in a private mount namespace with the benchmark's resolv.conf, or as it
# is without one. It replaces the shell that runs it: call it as `in_ns CMD &` (then $! is CMD's
# own PID, to stop it by) or in a subshell.
in_ns() {
	if [ "$NS_OK" = 1 ]; then
		# shellcheck disable=SC2016 # $1 and $@ are the inner shell's
		exec unshare --mount sh -c 'mount --bind "$1" /etc/resolv.conf && shift && exec "$@"' sh "$MIL/resolv.conf" "$@"
	else
		exec "$@"
	fi
}

# What the peer checks: each part needs its program, and SPF and DMARC the namespace.
PEER_METHODS=()
PEER_MISSING=()
if ! command -v policyd-spf >/dev/null; then
	PEER_MISSING+=("SPF: no policyd-spf (package postfix-policyd-spf-python)")
elif [ "$NS_OK" != 1 ]; then
	PEER_MISSING+=("SPF: policyd-spf would ask the machine's resolver ($NS_WHY)")
else
	PEER_METHODS+=(spf)
fi
if command -v opendkim >/dev/null; then
	PEER_METHODS+=(dkim)
else
	PEER_MISSING+=("DKIM: no opendkim (package opendkim)")
fi
if ! command -v opendmarc >/dev/null; then
	PEER_MISSING+=("DMARC: no opendmarc (package opendmarc)")
elif [ "$NS_OK" != 1 ]; then
	PEER_MISSING+=("DMARC: opendmarc would ask the machine's resolver ($NS_WHY)")
else
	PEER_METHODS+=(dmarc)
fi
has_method() { [[ " ${PEER_METHODS[*]} " == *" $1 "* ]]; }
PEER_LIST=$(IFS=,; echo "${PEER_METHODS[*]}")

# ---- the messages and the DNS server -------------------------------------------------------------
log "signing $MSGS messages of $MIN_SIZE..$MAX_SIZE octets for $DOMAIN (dkimpy, RSA-2048)"
bg_run "$LIMIT" "$WORK/make.out" "$PY" "$CHECKS_PY" make "$SET" "$MSGS" "$MIN_SIZE" "$MAX_SIZE" "$DOMAIN" "$SELECTOR" \
	"$SENDER" "$RCPT" --spf "$SPF_RECORD" --dmarc "$DMARC_RECORD" || die "making the messages failed: $(tail -n 3 "$WORK/make.out.err")"
SIZES=$("$PY" -c 'import json, sys
d = json.load(sys.stdin)
print("%d..%d octets (median %d)" % (d["min"], d["max"], d["median"]))' <"$WORK/make.out")

DNS_ADDR=
for addr in "${DNS_ADDRS[@]}"; do
	"$PY" "$CHECKS_PY" dns "$addr" 53 "$SET" "$ROOT/tests/integration" >"$WORK/dns.out" 2>"$WORK/dns.log" &
	DNS_PID=$!
	for ((i = 0; i < 100; i++)); do
		grep -q '^ready' "$WORK/dns.out" && break
		kill -0 "$DNS_PID" 2>/dev/null || break
		sleep 0.1
	done
	if grep -q '^ready' "$WORK/dns.out"; then
		DNS_ADDR=$addr
		break
	fi
	log "no DNS server on $addr:53: $(tail -n 1 "$WORK/dns.log")"
	stop_pid "$DNS_PID" "DNS server"
	DNS_PID=
done
[ -n "$DNS_ADDR" ] || die "could not serve DNS on port 53 of any of ${DNS_ADDRS[*]} (set BENCH_CHECKS_DNS_ADDRS)"
printf 'nameserver %s\noptions timeout:2 attempts:2\n' "$DNS_ADDR" >"$MIL/resolv.conf"
log "DNS server on $DNS_ADDR:53 (pid $DNS_PID)"

# dns_queries -> how many queries the DNS server has answered so far
dns_queries() {
	local i
	rm -f "$SET/dns-queries.json"
	kill -USR1 "$DNS_PID" 2>/dev/null || { echo 0; return; }
	for ((i = 0; i < 50; i++)); do
		[ -s "$SET/dns-queries.json" ] && break
		sleep 0.1
	done
	json "$SET/dns-queries.json" total
}

# ---- mailwerk: checks on, checks off -------------------------------------------------------------
# mw_start NAME yes|no: init into its own data dir, then serve with only an MX listener
mw_start() {
	local name=$1 checks=$2 dir=$WORK/mailwerk-$1 port i
	"$MAILWERK" init --dir "$dir" --domain bench.test --hostname "$MW_AUTHSERV" >"$dir.init.log" 2>&1 ||
		die "mailwerk init failed: $(cat "$dir.init.log")"
	port=$(free_port)
	MWLOG[$name]=$dir.serve.log
	"$MAILWERK" serve -c "$dir/mailwerk.conf" -o "listen.smtp=127.0.0.1:$port" -o listen.submission= \
		-o listen.submissions= -o listen.pop3= -o listen.pop3s= -o server.max_connections_per_ip=0 \
		-o "dns.resolver=$DNS_ADDR@53" -o "smtp.auth_checks=$checks" >"${MWLOG[$name]}" 2>&1 &
	MWPID[$name]=$!
	wait_port "$port" 15 "${MWPID[$name]}" || die "mailwerk serve ($name) did not start: $(tail -n 3 "${MWLOG[$name]}")"
	for ((i = 0; i < 150; i++)); do
		grep -q 'event=started' "${MWLOG[$name]}" && break
		sleep 0.1
	done
	MWPORT[$name]=$port
	MWDIR[$name]=$dir/mail/bench.test/demo
	log "mailwerk ($name: smtp.auth_checks=$checks) on 127.0.0.1:$port, pid ${MWPID[$name]}"
}

# ---- the peer: Postfix with OpenDKIM, OpenDMARC and policyd-spf ----------------------------------
# milter_start NAME CMD...: starts the milter in the foreground (in the namespace) and waits for its
# socket; its PID in MILTER_PID. When it does not come up it is stopped, MILTER_PID is empty, and
# MILTER_WHY says why.
milter_start() {
	local name=$1 i pid
	shift
	in_ns "$@" >"$MIL/$name.log" 2>&1 &
	pid=$!
	MILTER_PID=$pid
	for ((i = 0; i < 100; i++)); do
		[ -S "$MIL/$name.sock" ] && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	stop_pid "$pid" "$name"
	MILTER_PID=
	MILTER_WHY="$name did not open its socket within 10 s: $(tail -n 2 "$MIL/$name.log" | tr '\n' ' ' | sed 's/ *$//')"
	return 1
}
# drop_method METHOD WHY: the peer goes on without that check, and the report says so
drop_method() {
	local m kept=()
	for m in "${PEER_METHODS[@]}"; do [ "$m" = "$1" ] || kept+=("$m"); done
	PEER_METHODS=("${kept[@]}")
	PEER_LIST=$(IFS=,; echo "${PEER_METHODS[*]}")
	PEER_MISSING+=("${1^^}: $2")
	warn "the peer does not check ${1^^}: $2"
}

pf_peer_start() {
	local port milters=()
	echo 192.0.2.1 >"$MIL/no-hosts" # not 127.0.0.1: both milters skip mail from their internal hosts
	echo example >"$MIL/public-suffixes"
	if has_method dkim; then
		cat >"$MIL/opendkim.conf" <<EOF
# OpenDKIM as bench/checks.sh runs it: verify only, its DNS through libunbound to the benchmark's server
Syslog no
Mode v
Socket local:$MIL/opendkim.sock
UMask 000
Nameservers $DNS_ADDR
AuthservID $PF_AUTHSERV
InternalHosts $MIL/no-hosts
MinimumKeyBits 1024
AlwaysAddARHeader yes
EOF
		if milter_start opendkim opendkim -f -x "$MIL/opendkim.conf"; then
			DKIM_PID=$MILTER_PID
			milters+=("unix:$MIL/opendkim.sock")
		else
			drop_method dkim "$MILTER_WHY"
		fi
	fi
	if has_method dmarc; then
		cat >"$MIL/opendmarc.conf" <<EOF
# OpenDMARC as bench/checks.sh runs it: the DKIM and SPF results are OpenDKIM's and policyd-spf's
# (Authentication-Results of $PF_AUTHSERV); p=reject is enforced
Syslog false
Socket local:$MIL/opendmarc.sock
UMask 000
AuthservID $PF_AUTHSERV
TrustedAuthservIDs $PF_AUTHSERV
IgnoreHosts $MIL/no-hosts
SPFSelfValidate false
SPFIgnoreResults false
RejectFailures true
PublicSuffixList $MIL/public-suffixes
FailureReports false
EOF
		if milter_start opendmarc opendmarc -f -c "$MIL/opendmarc.conf"; then
			DMARC_PID=$MILTER_PID
			milters+=("unix:$MIL/opendmarc.sock")
		else
			drop_method dmarc "$MILTER_WHY"
		fi
	fi
	cat >"$MIL/policyd-spf.conf" <<EOF
# policyd-spf as bench/checks.sh runs it: the envelope sender only, an Authentication-Results field
# for OpenDMARC; 127.0.0.0/8 is not skipped (its default), the client being 127.0.0.1
debugLevel = 0
TestOnly = 1
HELO_reject = No_Check
Mail_From_reject = Fail
PermError_reject = False
TempError_Defer = False
skip_addresses = 192.0.2.1/32
Header_Type = AR
Authserv_Id = $PF_AUTHSERV
EOF
	chmod 644 "$MIL"/*.conf

	port=$(free_port)
	PF_PLAIN_PORT=$(free_port)
	pf_setup "$WORK" "$port" "$BENCH_DIR/postfix-checks"
	sed -i "s|@WORK_DIR@|$WORK|g" "$PF_CONF/master.cf"
	# a second smtpd of the same instance, without any check: the peer's own checks-off figure
	cat >>"$PF_CONF/master.cf" <<EOF
# without checks (bench/checks.sh)
127.0.0.1:$PF_PLAIN_PORT inet n       -       n       -       -       smtpd
  -o smtpd_milters= -o smtpd_recipient_restrictions=permit_mynetworks,reject_unauth_destination
EOF
	postconf -c "$PF_CONF" -e "smtpd_milters = $(IFS=,; echo "${milters[*]}")"
	has_method spf || postconf -c "$PF_CONF" -e "smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination"
	postfix -c "$PF_CONF" check >"$WORK/postfix/check.log" 2>&1 || die "postfix check failed: $(cat "$WORK/postfix/check.log")"
	mkdir -p "$WORK/postfix-mail"
	chown 65534:65534 "$WORK/postfix-mail" # virtual(8) writes as virtual_uid_maps (nobody)
	(in_ns postfix -c "$PF_CONF" start) >>"$WORK/postfix/start.log" 2>&1 || die "postfix start failed: $(cat "$WORK/postfix/start.log")"
	# shellcheck disable=SC2034 # read by pf_stop in lib.sh
	PF_STARTED=1
	wait_port "$PF_PORT" 15 || die "postfix did not accept on 127.0.0.1:$PF_PORT within 15 s (see $PF_LOG)"
	wait_port "$PF_PLAIN_PORT" 15 || die "postfix did not accept on 127.0.0.1:$PF_PLAIN_PORT within 15 s"
	log "postfix on 127.0.0.1:$PF_PORT (checks: ${PEER_LIST:-none}) and 127.0.0.1:$PF_PLAIN_PORT (none)"
}
pf_queue_count() { find "$PF_QUEUE/incoming" "$PF_QUEUE/active" "$PF_QUEUE/deferred" "$PF_QUEUE/maildrop" -type f 2>/dev/null | wc -l; }

# ---- one run -------------------------------------------------------------------------------------
# target properties: port, Maildir, authserv-id, methods that must pass, processes whose CPU counts
t_port() {
	case $1 in
	mw-on) echo "${MWPORT[on]}" ;; mw-off) echo "${MWPORT[off]}" ;;
	pf-checks) echo "$PF_PORT" ;; pf-plain) echo "$PF_PLAIN_PORT" ;; sink) echo "$SINK_PORT" ;;
	esac
}
t_maildir() {
	case $1 in
	mw-on) echo "${MWDIR[on]}" ;; mw-off) echo "${MWDIR[off]}" ;;
	pf-checks | pf-plain) echo "$WORK/postfix-mail/Maildir" ;; sink) echo "" ;;
	esac
}
t_verify_args() {
	case $1 in
	mw-on) echo "$MW_AUTHSERV --methods spf,dkim,dmarc" ;; mw-off) echo "$MW_AUTHSERV --methods=" ;;
	pf-checks) echo "$PF_AUTHSERV --methods=$PEER_LIST" ;; pf-plain) echo "$PF_AUTHSERV --methods=" ;;
	esac
}
# t_cpu_groups TARGET: the checks.py cpu groups: the server's processes (all of them), then for the
# peer policyd-spf, opendkim and opendmarc on their own, and last the DNS server
t_cpu_groups() {
	local m
	case $1 in
	mw-on) echo "${MWPID[on]} $DNS_PID" ;; mw-off) echo "${MWPID[off]} $DNS_PID" ;;
	pf-checks | pf-plain)
		m=$(pf_master_pid)
		echo "$m,${DKIM_PID:-0},${DMARC_PID:-0} $m:policyd-spf ${DKIM_PID:-0} ${DMARC_PID:-0} $DNS_PID"
		;;
	sink) echo "$SINK_PID $DNS_PID" ;;
	esac
}
t_label() {
	case $1 in
	mw-on) echo "mailwerk, checks on" ;; mw-off) echo "mailwerk, checks off" ;;
	pf-checks) echo "postfix + milters" ;; pf-plain) echo "postfix, no checks" ;; sink) echo "smtp-sink (ceiling)" ;;
	esac
}

mail_count() { find "$1/new" "$1/cur" -type f 2>/dev/null | wc -l; }

# deliver_wait TARGET COUNT: waits until COUNT messages are in the target's Maildir (and, for
# Postfix, its queue is empty), at most LIMIT s; then verifies and removes them. Fails with a
# sentence on stdout.
deliver_wait() {
	local t=$1 count=$2 dir n t0 rc=0 args
	dir=$(t_maildir "$t")
	[ -n "$dir" ] || return 0
	t0=$EPOCHREALTIME
	while :; do
		n=$(mail_count "$dir")
		if [ "$n" -ge "$count" ]; then
			[[ "$t" != pf-* ]] || [ "$(pf_queue_count)" -eq 0 ] && break
		fi
		if awk -v a="$t0" -v b="$EPOCHREALTIME" -v l="$LIMIT" 'BEGIN { exit !(b - a > l) }'; then
			echo "only $n of $count messages delivered within $LIMIT s"
			rc=1
			break
		fi
		sleep 0.05
	done
	read -r -a args <<<"$(t_verify_args "$t")"
	"$PY" "$CHECKS_PY" verify "$dir" "$count" "${args[@]}" --delete >"$WORK/verify.out" 2>&1 || {
		echo "verify: $(cat "$WORK/verify.out")"
		return 1
	}
	return "$rc"
}

# run_one TARGET SESSIONS COUNT OUT [--barrier]: one client run; OUT gets the client's JSON,
# OUT.extra "DNS_QUERIES CPU_TICKS..." (one per t_cpu_groups group); returns 1 (with a WARNING) when
# the run is invalid. --barrier (warm-ups): all sessions are served at once before any sends its
# second message, so Postfix has started an smtpd (and a policyd-spf) for each before the timing.
RUN_N=0
run_one() {
	local t=$1 s=$2 count=$3 out=$4 extra=("${@:5}") rc=0 q0 q1 why label i got
	local groups c0 c1 ticks=()
	label="$(t_label "$t"), $s sessions"
	read -r -a groups <<<"$(t_cpu_groups "$t")"
	read -r -a c0 <<<"$("$PY" "$CHECKS_PY" cpu "${groups[@]}")"
	q0=$(dns_queries)
	bg_run "$LIMIT" "$out" "$PY" "$CHECKS_PY" send 127.0.0.1 "$(t_port "$t")" "$s" "$count" "$SET" \
		--mail-from "$SENDER" --rcpt "$RCPT" --timeout "$LIMIT" "${extra[@]}" || rc=$?
	# wait only for what was accepted: a failed run must not wait LIMIT s for messages never sent
	got=$(json "$out" accepted)
	[[ "$got" =~ ^[0-9]+$ ]] || got=0
	if ! why=$(deliver_wait "$t" "$got"); then
		warn "$label: $why — run INVALID"
		rc=1
	fi
	read -r -a c1 <<<"$("$PY" "$CHECKS_PY" cpu "${groups[@]}")"
	q1=$(dns_queries)
	for ((i = 0; i < ${#groups[@]}; i++)); do ticks+=($((${c1[$i]:-0} - ${c0[$i]:-0}))); done
	echo "$((q1 - q0)) ${ticks[*]}" >"$out.extra"
	if [ "$rc" = 124 ]; then
		warn "$label: the client was stopped after $LIMIT s — run INVALID"
	elif [ ! -s "$out" ]; then
		warn "$label: the client failed (exit $rc): $(tail -n 2 "$out.err" | tr '\n' ' ') — run INVALID"
		rc=1
	elif [ "$(json "$out" accepted)" != "$count" ] || [ "$(json "$out" error_count)" != 0 ]; then
		warn "$label: $(json "$out" accepted) of $count accepted; replies $(json "$out" replies); $(json "$out" errors) — run INVALID"
		rc=1
	fi
	if [[ "$t" == mw-* ]] && ! kill -0 "${MWPID[${t#mw-}]}" 2>/dev/null; then
		warn "$label: mailwerk died: $(tail -n 3 "${MWLOG[${t#mw-}]}")"
		rc=1
	fi
	return "$rc"
}

# ---- header --------------------------------------------------------------------------------------
echo "mailwerk inbound checks benchmark — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
bench_machine "$WORK"
echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews every figure)"
echo "messages: $MSGS per run, $SIZES, each DKIM-signed by $DOMAIN (RSA-2048, relaxed/relaxed)"
echo "sender: MAIL FROM <$SENDER> from 127.0.0.1; $DOMAIN TXT \"$SPF_RECORD\", _dmarc TXT \"$DMARC_RECORD\"; DNS: dnsfixture.py on $DNS_ADDR:53, TTL 3600"
echo "client: bench/checks.py send, persistent sessions (MAIL, RCPT, DATA; no pipelining); before each timed run a"
echo "  warm-up of max($WARMUP, 2 x sessions) messages in which every session is served before any sends its second"
# ---- start everything ----------------------------------------------------------------------------
TARGETS=()
if [ "$MAILWERK_SKIP" != 1 ]; then
	mw_start on yes
	mw_start off no
	TARGETS+=(mw-on mw-off)
fi
pf_peer_start
TARGETS+=(pf-checks pf-plain)
SINK_PORT=$(free_port)
smtp-sink -u nobody "127.0.0.1:$SINK_PORT" 256 >"$WORK/smtp-sink.log" 2>&1 &
SINK_PID=$!
wait_port "$SINK_PORT" 10 "$SINK_PID" || die "smtp-sink did not accept on 127.0.0.1:$SINK_PORT: $(cat "$WORK/smtp-sink.log")"
TARGETS+=(sink)

# what was started, and how (stdout; the peer's checks are known only now)
echo "peer: Postfix $(postconf -dh mail_version 2>/dev/null), delivering with virtual(8) into a Maildir; checks: ${PEER_LIST:-none}"
has_method dkim && echo "  DKIM: $(opendkim -V 2>&1 | head -n 1) (milter, verify mode, libunbound to $DNS_ADDR)"
has_method dmarc && echo "  DMARC: $(opendmarc -V 2>&1 | head -n 1) (milter, reads OpenDKIM's and policyd-spf's results, p=reject enforced)"
has_method spf && echo "  SPF: postfix-policyd-spf-python $(dpkg-query -W -f='${Version}' postfix-policyd-spf-python 2>/dev/null) (policy service at RCPT, envelope sender only)"
for m in "${PEER_MISSING[@]}"; do echo "  NOT checked by the peer — $m"; done
[ "$NS_OK" = 1 ] && echo "  Postfix, both milters and policyd-spf run in a private mount namespace whose /etc/resolv.conf names $DNS_ADDR"
if [ "$MAILWERK_SKIP" = 1 ]; then
	echo "MAILWERK_SKIP=1: measuring only the peers"
else
	rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "?")
	[ -z "$(git -C "$ROOT" status --porcelain -- src CMakeLists.txt 2>/dev/null)" ] || rev="$rev + uncommitted changes in src/"
	echo "mailwerk: $MAILWERK (checkout at $rev); checks on vs -o smtp.auth_checks=no, both delivering into a Maildir"
fi
echo

# ---- the runs ------------------------------------------------------------------------------------
declare -A RES # RES[target|sessions] = "rate eod50 eod99 txn50 txn99 cpu_ms_per_msg dns_per_msg valid"
HZ=$(getconf CLK_TCK)
# ms TICKS -> milliseconds of CPU per timed message
ms() { awk -v t="$1" -v hz="$HZ" -v n="$MSGS" 'BEGIN { printf "%.2f", t / hz * 1000 / n }'; }
for s in "${SESSIONS[@]}"; do
	for t in "${TARGETS[@]}"; do
		w=$((WARMUP > 2 * s ? WARMUP : 2 * s))
		valid=1
		if [ "$w" -gt 0 ]; then
			RUN_N=$((RUN_N + 1))
			run_one "$t" "$s" "$w" "$WORK/run-$RUN_N-warmup.json" --barrier || valid=0
		fi
		lines=()
		for ((r = 0; r < REPEAT; r++)); do
			RUN_N=$((RUN_N + 1))
			f=$WORK/run-$RUN_N-$t-$s.json
			run_one "$t" "$s" "$MSGS" "$f" || valid=0
			read -r -a x <"$f.extra" # DNS_QUERIES TOTAL [SPF DKIM DMARC] DNS_SERVER (ticks)
			line="$(json "$f" rate) $(json "$f" eod_p50_ms) $(json "$f" eod_p99_ms) $(json "$f" txn_p50_ms) $(json "$f" txn_p99_ms)"
			line="$line $(ms "${x[1]}") $(awk -v q="${x[0]}" -v n="$MSGS" 'BEGIN { printf "%.2f", q / n }')"
			if [ ${#x[@]} -eq 6 ]; then # the peer: Postfix alone, policyd-spf, opendkim, opendmarc
				line="$line $(ms $((x[1] - x[2] - x[3] - x[4]))) $(ms "${x[2]}") $(ms "${x[3]}") $(ms "${x[4]}")"
			else
				line="$line - - - -"
			fi
			line="$line $(ms "${x[-1]}")"
			lines+=("$line")
			read -r -a x <<<"$line"
			log "$(printf '%-22s %3d sessions: %s msg/s, end of DATA p50 %s ms p99 %s ms, txn p50 %s ms p99 %s ms, %s CPU ms/msg, %s DNS q/msg' \
				"$(t_label "$t")" "$s" "${x[@]:0:7}")"
		done
		# "VALID" and the run of median msg/s: msg/s eod50 eod99 txn50 txn99 cpu dnsq postfix spf dkim dmarc dnscpu
		RES["$t|$s"]="$valid $(printf '%s\n' "${lines[@]}" | sort -g -k1,1 | awk -v k=$(((REPEAT + 1) / 2)) 'NR == k')"
	done
done

# ---- report --------------------------------------------------------------------------------------
echo
echo "Inbound checks: $MSGS messages per run to $RCPT. msg/s = accepted messages / seconds from the"
echo "first connection to the last reply. EOD = end of DATA: from writing the message and its final"
echo "\".\" to reading the reply (mailwerk's and the milters' checks happen there); txn = the whole"
echo "transaction, from writing MAIL FROM (policyd-spf answers at RCPT). p50/p99 nearest rank, ms."
echo "CPU = user+system ms per message of the server's processes (Postfix: master and every child,"
echo "policyd-spf included, plus both milters), from the first message sent to the last one delivered."
echo "DNS = queries per message that reached the DNS server. Runs of a cell: $REPEAT (median msg/s shown)."
echo
row() { printf '   %-8s %-22s %8s %9s %9s %9s %9s %8s %7s\n' "$@"; }
row sessions target "msg/s" "EOD p50" "EOD p99" "txn p50" "txn p99" "CPU ms" "DNS q"
any_invalid=0
for s in "${SESSIONS[@]}"; do
	for t in "${TARGETS[@]}"; do
		read -r v r e50 e99 t50 t99 cpu dq _ <<<"${RES[$t|$s]:-0 - - - - - - -}"
		[ "$v" = 1 ] || { r="$r!"; any_invalid=1; }
		row "$s" "$(t_label "$t")" "$r" "$e50" "$e99" "$t50" "$t99" "$cpu" "$dq"
	done
done
[ "$any_invalid" = 0 ] || echo "   (! = a run of that cell was invalid; see the WARNING lines)"
echo
echo "Where the peer's CPU goes (ms per message; the DNS server's own CPU for comparison):"
for s in "${SESSIONS[@]}"; do
	read -r _ _ _ _ _ _ cpu _ p spf dkim dmarc dns <<<"${RES[pf-checks|$s]:-0 - - - - - - - - - - - -}"
	printf '   %3s sessions: %s in all = Postfix %s + policyd-spf %s + opendkim %s + opendmarc %s; DNS server %s\n' \
		"$s" "$cpu" "$p" "$spf" "$dkim" "$dmarc" "$dns"
done

field() { awk -v k="$(($2 + 1))" '{ print $k }' <<<"${RES[$1]:-}"; }
if [ "$MAILWERK_SKIP" != 1 ]; then
	echo
	echo "Ratios (msg/s: above 1 = mailwerk faster; latency: below 1 = mailwerk sooner):"
	rrow() { printf '   %-8s %12s %12s %12s   %12s %12s %12s   %12s\n' "$@"; }
	rrow "" "mw/postfix" "mw/postfix" "mw/postfix" "on/off" "on/off" "on - off" "postfix"
	rrow sessions "msg/s" "EOD p50" "EOD p99" "msg/s" "EOD p50" "CPU ms/msg" "milters/none"
	for s in "${SESSIONS[@]}"; do
		rrow "$s" "$(ratio "$(field "mw-on|$s" 1)" "$(field "pf-checks|$s" 1)")" \
			"$(ratio "$(field "mw-on|$s" 2)" "$(field "pf-checks|$s" 2)")" \
			"$(ratio "$(field "mw-on|$s" 3)" "$(field "pf-checks|$s" 3)")" \
			"$(ratio "$(field "mw-on|$s" 1)" "$(field "mw-off|$s" 1)")" \
			"$(ratio "$(field "mw-on|$s" 2)" "$(field "mw-off|$s" 2)")" \
			"$(awk -v a="$(field "mw-on|$s" 6)" -v b="$(field "mw-off|$s" 6)" 'BEGIN { if (a == "" || b == "") print "-"; else printf "%.2f", a - b }')" \
			"$(ratio "$(field "pf-checks|$s" 1)" "$(field "pf-plain|$s" 1)")"
	done
fi
echo
echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ ${#PEER_MISSING[@]} -gt 0 ]; then
	echo "The peer did NOT check: $(printf '%s; ' "${PEER_MISSING[@]}" | sed 's/; $//')."
fi

if [ ${#WARNINGS[@]} -gt 0 ]; then
	echo
	echo "WARNING: ${#WARNINGS[@]} problem(s); figures of the runs named are INVALID:"
	printf '  - %s\n' "${WARNINGS[@]}"
	exit 1
fi
