#!/usr/bin/env bash
# bench/api.sh — how fast mailwerk's HTTP API (POST /emails, Resend-compatible) answers {"id"} for
# a 2 KiB text email that is DKIM-signed and durably queued before the answer, driven by wrk over
# keep-alive connections; in the same run, the same size of message over SMTP (smtp-source, 32
# persistent sessions) into mailwerk and into a private Postfix, and the machine's signing ceiling
# (openssl speed, all cores) for RSA-2048 and Ed25519. Everything on 127.0.0.1.
#
# Runs, in this order (each mailwerk run in a fresh data dir, [delivery] hold = yes, removed after it
# is counted unless BENCH_KEEP=1):
#   1. openssl speed rsa2048 and ed25519 on every core: sign/s, the ceiling of one signature per send
#   2. API, the RSA-2048 key `mailwerk init` makes (the default setup)
#   3. SMTP into mailwerk's MX listener and into Postfix (HOLD), smtp-source -d -s 32 -l 2048; and
#      authenticated submission into mailwerk (bench/smtp_submit.c: AUTH PLAIN, then pipelined
#      transactions on 32 sessions), which DKIM-signs as the API does: the fair comparison
#      for "at least mailwerk's own SMTP submission rate"
#   4. API with an Ed25519 key added: both keys active, so every message gets both signatures
#   5. API with the Ed25519 key alone (a data dir whose RSA key file is removed)
# Every API run: wrk -t2 -c32 (a short untimed warm-up first), statuses counted by
# bench/api_send.lua, then the server is stopped and its queue.db counted: every 200 must be a
# queued message carrying the expected DKIM-Signature.
#
# Environment:
#   MAILWERK=PATH          mailwerk binary (default ./build-release/mailwerk)
#   BENCH_SECONDS=N        length of each timed API run, and the aim for each SMTP run (default 30)
#   BENCH_WARMUP_SECONDS=N untimed wrk run before each timed API run (default 2; 0: none)
#   BENCH_THREADS, BENCH_CONNS   wrk -t and -c (default 2 and 32); BENCH_CONNS is also smtp-source -s
#   BENCH_SIZE=N           text octets per email, smtp-source -l (default 2048)
#   BENCH_ED25519=0        skip runs 4 and 5
#   BENCH_SMTP=0           skip run 3
#   BENCH_TMPDIR=DIR       where the work dir is made (default /var/tmp; tmpfs is refused)
#   BENCH_KEEP=1           keep the work dir (logs, queues)
#   BENCH_QUIET_WAIT=N     before each measurement, wait up to N s (default 0: not at all) until
#                          the machine is idle (under 0.2 cores busy over 2 s): on a shared machine
#                          other work takes cores from the server and the client. Either way each
#                          run reports how many cores other processes used during it.
# Exit status: 0, or 1 on a set-up error or an INVALID run (a 200 whose message is not queued, or
# not signed; non-200 answers; smtp-source errors). A missed target is reported, not a failure.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"

MAILWERK=${MAILWERK:-./build-release/mailwerk}
BENCH_TMPDIR=${BENCH_TMPDIR:-/var/tmp}
SECS=${BENCH_SECONDS:-30}
WARM_SECS=${BENCH_WARMUP_SECONDS:-2}
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNS:-32}
SIZE=${BENCH_SIZE:-2048}
DO_ED=${BENCH_ED25519:-1}
DO_SMTP=${BENCH_SMTP:-1}
QUIET_WAIT=${BENCH_QUIET_WAIT:-0}
LUA=$BENCH_DIR/api_send.lua
API_FROM=demo@bench.test
API_TO=rcpt@sink.test         # remote: queued for delivery, held
SMTP_SENDER=any@example.org   # as accept.sh: the MX listener takes mail from outside
SMTP_WARMUP=1000              # untimed messages before each timed SMTP run; their rate sizes it
MAX_BYTES=$((1024 * 1024 * 1024))
TARGET_RATE=5000              # the issue's targets: sends/s, and API/Postfix
TARGET_PF_X=3

# ---- preconditions -----------------------------------------------------------------------------
if [ ! -x "$MAILWERK" ] || [ -d "$MAILWERK" ]; then
	die "mailwerk binary not found or not executable: $MAILWERK (build it, or set MAILWERK=/path/to/mailwerk)"
fi
MAILWERK=$(realpath "$MAILWERK")
[ "$(id -u)" -eq 0 ] || die "must run as root (the private Postfix instance needs it)"
for tool in wrk sqlite3 openssl python3 timeout awk getconf; do
	command -v "$tool" >/dev/null || die "$tool not found (apt-get install wrk sqlite3 openssl)"
done
if [ "$DO_SMTP" = 1 ]; then
	for tool in postfix postsuper postconf smtp-source cc; do
		command -v "$tool" >/dev/null || die "$tool not found (scripts/deps.sh installs postfix, which has smtp-source)"
	done
fi
[ -r "$LUA" ] || die "$LUA not found"
[[ "$SECS" =~ ^[1-9][0-9]{0,2}$ ]] || die "BENCH_SECONDS must be 1..999"
[[ "$WARM_SECS" =~ ^[0-9]{1,2}$ ]] || die "BENCH_WARMUP_SECONDS must be 0..99"
[[ "$THREADS" =~ ^[1-9][0-9]?$ ]] || die "BENCH_THREADS must be 1..99"
[[ "$CONNS" =~ ^[1-9][0-9]{0,3}$ ]] || die "BENCH_CONNS must be 1..9999"
[ "$CONNS" -ge "$THREADS" ] || die "BENCH_CONNS must be at least BENCH_THREADS"
[[ "$SIZE" =~ ^[1-9][0-9]{0,6}$ ]] || die "BENCH_SIZE must be 1..9999999"
[[ "$QUIET_WAIT" =~ ^[0-9]{1,4}$ ]] || die "BENCH_QUIET_WAIT must be 0..9999 (seconds)"
WRK_TIMEOUT=$((SECS + WARM_SECS + 60))   # outer bound of one wrk run
SOURCE_TIMEOUT=$((SECS * 4 + 120))       # outer bound of one smtp-source run
CLK_TCK=$(getconf CLK_TCK)
NCPU=$(nproc)

# ---- work dir and cleanup ----------------------------------------------------------------------
WORK=$(bench_workdir mailwerk-api) || exit 1
MW_PID=
WRK_PID=
SRC_PID=
# shellcheck disable=SC2034 # read by pf_stop in lib.sh
PF_STARTED=0
bench_cleanup_pid WRK_PID wrk
bench_cleanup_pid SRC_PID smtp-source
bench_cleanup_pid MW_PID mailwerk
bench_cleanup_call pf_stop
bench_cleanup_dir WORK
bench_on_exit

# ---- CPU accounting ----------------------------------------------------------------------------
# cpu_sys -> "busy total" jiffies of the whole machine (/proc/stat)
cpu_sys() { awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t; exit }' /proc/stat; }
# cpu_threads PID -> "tid ticks" for every thread of PID (utime + stime)
cpu_threads() {
	local f
	for f in /proc/"$1"/task/*/stat; do
		[ -r "$f" ] && sed -e 's/^.*) //' "$f" | awk -v f="$f" '{ split(f, p, "/"); print p[5], $12 + $13 }'
	done 2>/dev/null || true
}
# children_cpu VAR: VAR = seconds of CPU used by the children of this shell that have been waited
# for (user + system; the script's own shell, not a $(...) subshell, whose children are others)
children_cpu() {
	times >"$WORK/times"
	printf -v "$1" '%s' "$(tail -n 1 "$WORK/times" | awk '{ s = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] } printf "%.2f", s }')"
}
# cpu_report WALL SYS0 SYS1 THREADS0_FILE THREADS1_FILE CHILD0 CHILD1 CLIENT -> one line: the
# server's cores (and its busiest threads), the client's, and the machine's
cpu_report() {
	local wall=$1 s0=$2 s1=$3 t0=$4 t1=$5 c0=$6 c1=$7 client=$8
	awk -v wall="$wall" -v s0="$s0" -v s1="$s1" -v c0="$c0" -v c1="$c1" -v hz="$CLK_TCK" -v ncpu="$NCPU" -v client="$client" '
		FNR == NR { a[$1] = $2; next }
		{ d = $2 - a[$1]; if (d > 0) { th[$1] = d; tot += d } }
		END {
			split(s0, x, " "); split(s1, y, " ")
			busy = (y[2] - x[2] > 0) ? (y[1] - x[1]) / (y[2] - x[2]) * ncpu : 0
			n = 0; for (t in th) n++
			line = ""
			if (n > 0) {
				line = sprintf("mailwerk %.2f cores (busiest threads:", tot / hz / wall)
				k = 0
				while (k < 6) {
					best = ""; for (t in th) if (best == "" || th[t] > th[best]) best = t
					if (best == "" || th[best] / hz / wall < 0.01) break
					line = line sprintf(" %.2f", th[best] / hz / wall); delete th[best]; k++
				}
				line = line "), "
			}
			cl = (c1 - c0) / wall
			line = line sprintf("%s %.2f cores, machine busy %.2f of %d cores", client, cl, busy, ncpu)
			# what neither used: other processes on the machine (for Postfix: Postfix and them)
			if (n > 0) {
				o = busy - tot / hz / wall - cl
				line = line sprintf(" (other processes %.2f)", o < 0 ? 0 : o)
			}
			print line
		}' "$t0" "$t1"
}

# others_of CPU_LINE: remembers the largest "other processes" figure of the runs (OTHERS_MAX)
OTHERS_MAX=0
others_of() {
	local o
	o=$(sed -n 's/.*(other processes \([0-9.]*\)).*/\1/p' <<<"$1")
	[ -n "$o" ] || return 0
	OTHERS_MAX=$(awk -v a="$OTHERS_MAX" -v b="$o" 'BEGIN { print (b > a) ? b : a }')
}

# wait_quiet: up to QUIET_WAIT seconds until the machine is idle (< 0.2 cores busy over 2 s). The
# printf's argument is in parentheses: awk would read a bare ">" there as output to a file.
wait_quiet() {
	[ "$QUIET_WAIT" -gt 0 ] || return 0
	local start busy a b
	start=$(date +%s)
	while :; do
		a=$(cpu_sys)
		sleep 2
		b=$(cpu_sys)
		busy=$(awk -v a="$a" -v b="$b" -v n="$NCPU" 'BEGIN { split(a, x, " "); split(b, y, " "); d = y[2] - x[2]; printf "%.2f", (d > 0 ? (y[1] - x[1]) / d * n : 0) }')
		awk -v v="$busy" 'BEGIN { exit !(v < 0.2) }' && return 0
		if [ $(($(date +%s) - start)) -ge "$QUIET_WAIT" ]; then
			log "machine still busy ($busy cores) after waiting $QUIET_WAIT s: measuring anyway"
			return 0
		fi
	done
}

# ---- mailwerk ----------------------------------------------------------------------------------
MW_N=0
MW_DIR=
MW_CONF=
MW_PORT=
MW_PERIP=0

# mw_init KIND: a fresh data dir MW_DIR (config MW_CONF) with bench.test's DKIM keys as KIND says:
#   rsa  the RSA-2048 key init makes; both  that and an Ed25519 key, both active;
#   ed   the Ed25519 key alone (the RSA key file removed, the active file naming only it)
mw_init() {
	local kind=$1 f
	MW_N=$((MW_N + 1))
	MW_DIR=$WORK/mailwerk-$MW_N
	MW_CONF=$MW_DIR/mailwerk.conf
	"$MAILWERK" init --dir "$MW_DIR" --domain bench.test --hostname mx.bench.test >"$MW_DIR.init.log" 2>&1 ||
		die "mailwerk init failed: $(cat "$MW_DIR.init.log")"
	if [ "$kind" != rsa ]; then
		"$MAILWERK" dkim keygen --domain bench.test --selector ed --algorithm ed25519 -c "$MW_CONF" \
			>"$MW_DIR.keygen.log" 2>&1 || die "mailwerk dkim keygen failed: $(cat "$MW_DIR.keygen.log")"
	fi
	if [ "$kind" = ed ]; then
		# mailwerk dkim has no "deactivate": the store's layout (src/keys/dkim_store.h) is a
		# SELECTOR.pem and its SELECTOR.pub per key and an "active" file naming the signing
		# selectors, one a line
		for f in "$MW_DIR/dkim/bench.test/"*.pem "$MW_DIR/dkim/bench.test/"*.pub; do
			case "$(basename "$f")" in ed.pem | ed.pub) ;; *) rm -f "$f" ;; esac
		done
		printf 'ed\n' >"$MW_DIR/dkim/bench.test/active.tmp"
		mv "$MW_DIR/dkim/bench.test/active.tmp" "$MW_DIR/dkim/bench.test/active"
	fi
	MW_KEYS=$("$MAILWERK" dkim list --domain bench.test --no-dns -c "$MW_CONF" 2>&1 | awk '$5 == "active" { printf "%s%s %s-%s", (n++ ? ", " : ""), $2, $3, $4 }') ||
		die "mailwerk dkim list failed"
	case $kind in
	rsa) [[ "$MW_KEYS" == *rsa* && "$MW_KEYS" != *ed25519* ]] ;;
	both) [[ "$MW_KEYS" == *rsa* && "$MW_KEYS" == *ed25519* ]] ;;
	ed) [[ "$MW_KEYS" != *rsa* && "$MW_KEYS" == *ed25519* ]] ;;
	esac || die "data dir $MW_DIR: active DKIM keys are \"$MW_KEYS\", not the $kind set wanted"
}

# mw_serve LISTENER: serve MW_CONF with only that listener (http, smtp or submission) on a fresh port
# MW_PORT, with the settings in MW_EXTRA (-o pairs) besides
MW_EXTRA=()
mw_serve() {
	local which=$1 try
	for try in 1 2; do
		MW_PORT=$(free_port)
		local l
		local args=()
		for l in smtp submission submissions pop3 pop3s http https; do
			if [ "$l" = "$which" ]; then args+=(-o "listen.$l=127.0.0.1:$MW_PORT"); else args+=(-o "listen.$l="); fi
		done
		# hold: accept and keep, deliver nothing, as the Postfix peer (HOLD); no rate limit on the
		# key; smtp.auth_checks=no: the Postfix peer runs no SPF/DKIM/DMARC checks either
		"$MAILWERK" serve -c "$MW_CONF" "${args[@]}" -o delivery.hold=yes -o api.rate_limit=none \
			-o "server.max_connections_per_ip=$MW_PERIP" -o smtp.auth_checks=no "${MW_EXTRA[@]}" >"$MW_DIR.serve.log" 2>&1 &
		MW_PID=$!
		wait_port "$MW_PORT" 10 "$MW_PID" && return 0
		if ! kill -0 "$MW_PID" 2>/dev/null; then
			wait "$MW_PID" 2>/dev/null || true
			MW_PID=
			# another process may have taken the port between free_port and the bind
			if [ "$try" = 1 ] && grep -q 'in use' "$MW_DIR.serve.log"; then continue; fi
			die "mailwerk serve exited before accepting on 127.0.0.1:$MW_PORT: $(tail -n 5 "$MW_DIR.serve.log")"
		fi
		die "mailwerk serve (pid $MW_PID) did not accept on 127.0.0.1:$MW_PORT within 10 s: $(tail -n 5 "$MW_DIR.serve.log")"
	done
}

mw_stop() {
	stop_pid "$MW_PID" mailwerk
	MW_PID=
}

# mw_sql QUERY -> the answer of sqlite3 on the (stopped) server's queue.db
mw_sql() { sqlite3 -batch -noheader "$MW_DIR/queue.db" "$1"; }

mw_remove() { [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$MW_DIR"; }

# ---- one wrk run -------------------------------------------------------------------------------
# run_wrk SECONDS OUT: wrk against MW_PORT with api_send.lua; its output in OUT, bounded in time
run_wrk() {
	local secs=$1 out=$2 rc=0
	API_KEY=$MW_TOKEN API_FROM=$API_FROM API_TO=$API_TO API_TEXT_BYTES=$SIZE \
		timeout "$WRK_TIMEOUT" wrk -t"$THREADS" -c"$CONNS" -d"${secs}s" --timeout 10s --latency -s "$LUA" \
		"http://127.0.0.1:$MW_PORT/" >"$out" 2>&1 &
	WRK_PID=$!
	wait "$WRK_PID" || rc=$?
	WRK_PID=
	[ "$rc" -eq 0 ] || die "wrk exit $rc$([ "$rc" -eq 124 ] && echo " (timed out after $WRK_TIMEOUT s)"): $(tail -n 5 "$out")"
	grep -q '^api_requests ' "$out" || die "wrk printed no api_ lines (api_send.lua's done()): $(tail -n 5 "$out")"
}
# wv FILE KEY -> the value of "KEY value" in FILE, 0 when absent
wv() { awk -v k="$2" '$1 == k { v = $2 } END { print (v == "" ? 0 : v) }' "$1"; }

declare -A API  # API[label|field]
API_LABELS=()

# api_run LABEL KIND: a fresh data dir with KIND's keys (mw_init), a key, serve http, warm-up,
# the timed run, stop, count. Fills API[LABEL|...].
api_run() {
	local label=$1 kind=$2 out warm=0 s0 s1 t0 t1 c0 c1 n200 nall non200 sockerr queued signed_rsa signed_ed
	local emails valid=1 wall t_start t_end v
	API_LABELS+=("$label")
	mw_init "$kind"
	MW_TOKEN=$("$MAILWERK" apikey create bench --quiet -c "$MW_CONF" 2>"$MW_DIR.apikey.log" | head -n 1) ||
		die "mailwerk apikey create failed: $(cat "$MW_DIR.apikey.log")"
	[ -n "$MW_TOKEN" ] || die "mailwerk apikey create printed no token"
	mw_serve http
	log "API run \"$label\": keys $MW_KEYS; mailwerk pid $MW_PID on 127.0.0.1:$MW_PORT; data dir $MW_DIR"
	out=$WORK/wrk-$MW_N
	wait_quiet
	if [ "$WARM_SECS" -gt 0 ]; then
		run_wrk "$WARM_SECS" "$out.warmup"
		warm=$(wv "$out.warmup" api_status_200)
	fi
	s0=$(cpu_sys)
	cpu_threads "$MW_PID" >"$out.cpu0"
	children_cpu c0
	t_start=$(now)
	run_wrk "$SECS" "$out"
	t_end=$(now)
	children_cpu c1
	cpu_threads "$MW_PID" >"$out.cpu1"
	s1=$(cpu_sys)
	wall=$(awk -v a="$t_start" -v b="$t_end" 'BEGIN { print b - a }')
	API["$label|cpu"]=$(cpu_report "$wall" "$s0" "$s1" "$out.cpu0" "$out.cpu1" "$c0" "$c1" wrk)
	others_of "${API[$label|cpu]}"
	kill -0 "$MW_PID" 2>/dev/null || { warn "API $label: mailwerk died during the run: $(tail -n 3 "$MW_DIR.serve.log")"; valid=0; }
	# stopped before counting: every answer it still owed has been committed or dropped by then
	mw_stop
	n200=$(wv "$out" api_status_200)
	nall=$(wv "$out" api_requests)
	non200=$((nall - n200))
	sockerr=$(($(wv "$out" api_errors_connect) + $(wv "$out" api_errors_read) + $(wv "$out" api_errors_write) + $(wv "$out" api_errors_timeout)))
	[ -s "$MW_DIR/queue.db" ] || die "API $label: no $MW_DIR/queue.db after the run"
	queued=$(mw_sql 'SELECT count(*) FROM messages')
	emails=$(mw_sql 'SELECT count(*) FROM emails')
	# the DKIM-Signature fields sit near the top (under our Received:), within the first 4 KiB
	signed_rsa=$(mw_sql "SELECT count(*) FROM messages WHERE instr(CAST(substr(data, 1, 4096) AS TEXT), 'a=rsa-sha256;') > 0")
	signed_ed=$(mw_sql "SELECT count(*) FROM messages WHERE instr(CAST(substr(data, 1, 4096) AS TEXT), 'a=ed25519-sha256;') > 0")
	for v in "$queued" "$emails" "$signed_rsa" "$signed_ed" "$n200" "$nall" "$warm"; do
		[[ "$v" =~ ^[0-9]+$ ]] || die "API $label: not a count: \"$v\" (sqlite3 on $MW_DIR/queue.db, or wrk's output $out)"
	done
	local answered=$((warm + n200))
	if [ "$non200" -gt 0 ]; then
		warn "API $label: $non200 of $nall answers were not 200 ($(grep -o 'api_status_[0-9]* [0-9]*' "$out" | tr '\n' ' ')); first: $(grep '^api_first_error' "$out" | cut -d' ' -f2- | head -c 300) — run INVALID"
		valid=0
	fi
	if [ "$sockerr" -gt 0 ]; then
		warn "API $label: wrk counted $sockerr socket errors ($(grep -o 'api_errors_[a-z]* [0-9]*' "$out" | tr '\n' ' ')) — run INVALID"
		valid=0
	fi
	if [ "$queued" -lt "$answered" ]; then
		warn "API $label: LOST MESSAGES: $answered answered 200 ($warm warm-up + $n200 timed) but only $queued are in queue.db — run INVALID"
		valid=0
	fi
	local want_signed
	case $kind in
	rsa) want_signed=$signed_rsa ;;
	ed) want_signed=$signed_ed ;;
	both) want_signed=$((signed_rsa < signed_ed ? signed_rsa : signed_ed)) ;;
	esac
	if [ "$want_signed" -lt "$queued" ]; then
		warn "API $label: of $queued queued messages only $want_signed carry the expected DKIM-Signature (rsa $signed_rsa, ed25519 $signed_ed) — run INVALID"
		valid=0
	fi
	if [ "$kind" = ed ] && [ "$signed_rsa" -gt 0 ]; then
		warn "API $label: $signed_rsa messages carry an RSA signature although only the Ed25519 key is active"
		valid=0
	fi
	API["$label|keys"]=$MW_KEYS
	API["$label|rate"]=$(awk -v n="$n200" -v d="$(wv "$out" api_duration_s)" 'BEGIN { if (d <= 0) d = 1e-9; printf "%.1f", n / d }')
	API["$label|wrkrate"]=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
	API["$label|p50"]=$(wv "$out" api_lat_p50_ms)
	API["$label|p90"]=$(wv "$out" api_lat_p90_ms)
	API["$label|p99"]=$(wv "$out" api_lat_p99_ms)
	API["$label|max"]=$(wv "$out" api_lat_max_ms)
	API["$label|n200"]=$n200
	API["$label|warm"]=$warm
	API["$label|answered"]=$answered
	API["$label|queued"]=$queued
	API["$label|emails"]=$emails
	API["$label|srsa"]=$signed_rsa
	API["$label|sed"]=$signed_ed
	API["$label|valid"]=$valid
	API["$label|dur"]=$(wv "$out" api_duration_s)
	log "$(printf 'API %-22s %8d x 200 in %6.2f s = %8s/s  p50 %s ms p99 %s ms; queued %d (of %d answered 200), signed rsa %d ed25519 %d%s' \
		"$label" "$n200" "${API[$label|dur]}" "${API[$label|rate]}" "${API[$label|p50]}" "${API[$label|p99]}" "$queued" "$answered" \
		"$signed_rsa" "$signed_ed" "$([ $valid = 1 ] || echo ' INVALID')")"
	log "  CPU: ${API[$label|cpu]}"
	mw_remove
}

# ---- smtp-source ---------------------------------------------------------------------------------
SMTP_RCPT=
# run_source PORT COUNT LOG -> ELAPSED_T0, ELAPSED_T1, SRC_RC. The client is smtp-source, or with
# SMTP_AUTH="USER PASSWORD" bench/smtp_submit (built into SUBMIT_BIN), which logs in first.
SMTP_AUTH=
run_source() {
	local port=$1 count=$2 logf=$3
	ELAPSED_T0=$(now)
	if [ -n "$SMTP_AUTH" ]; then
		timeout "$SOURCE_TIMEOUT" "$SUBMIT_BIN" -s "$CONNS" -m "$count" -l "$SIZE" -u "${SMTP_AUTH% *}" \
			-p "${SMTP_AUTH#* }" -f "$SMTP_SENDER" -t "$SMTP_RCPT" "127.0.0.1:$port" >"$logf" 2>&1 &
	else
		timeout "$SOURCE_TIMEOUT" smtp-source -A -d -f "$SMTP_SENDER" -t "$SMTP_RCPT" -M client.bench.example \
			-l "$SIZE" -s "$CONNS" -m "$count" "inet:127.0.0.1:$port" >"$logf" 2>&1 &
	fi
	SRC_PID=$!
	SRC_RC=0
	wait "$SRC_PID" || SRC_RC=$?
	ELAPSED_T1=$(now)
	SRC_PID=
}
# source_ok TARGET LOG: smtp-source must exit 0 and print nothing
source_ok() {
	if [ "$SRC_RC" -ne 0 ] || [ -s "$2" ]; then
		warn "$1: $([ -n "$SMTP_AUTH" ] && echo smtp_submit || echo smtp-source) exit $SRC_RC$([ "$SRC_RC" -eq 124 ] && echo " (timed out)"), $(wc -l <"$2") lines of errors, first: $(head -n 1 "$2") — run INVALID"
		return 1
	fi
}

declare -A SMTP # SMTP[target|field]
# smtp_run TARGET PORT: warm-up, then a timed run sized to last about BENCH_SECONDS (at twice the
# warm-up's rate, which undershoots the steady one); fills SMTP[TARGET|rate], [count], [secs], [valid]; the caller counts the store
smtp_run() {
	local target=$1 port=$2 logf=$WORK/source-$1 count valid=1 s0 s1 c0 c1
	wait_quiet
	run_source "$port" "$SMTP_WARMUP" "$logf.warmup"
	source_ok "$target (warm-up)" "$logf.warmup" || valid=0
	count=$(awk -v w="$SMTP_WARMUP" -v a="$ELAPSED_T0" -v b="$ELAPSED_T1" -v secs="$SECS" -v size="$SIZE" -v maxb="$MAX_BYTES" 'BEGIN {
		d = b - a; if (d <= 0) d = 1e-3
		n = int(2 * w / d * secs / 100 + 1) * 100   # the warm-up includes the ramp-up: aim at twice its rate, as accept.sh
		if (n < 1000) n = 1000
		if (n * size > maxb) n = int(maxb / size)
		print n }')
	s0=$(cpu_sys)
	if [ "$target" != postfix ]; then cpu_threads "$MW_PID" >"$logf.cpu0"; else : >"$logf.cpu0"; fi
	children_cpu c0
	run_source "$port" "$count" "$logf"
	children_cpu c1
	if [ "$target" != postfix ]; then cpu_threads "$MW_PID" >"$logf.cpu1"; else : >"$logf.cpu1"; fi
	s1=$(cpu_sys)
	source_ok "$target" "$logf" || valid=0
	SMTP["$target|count"]=$count
	SMTP["$target|secs"]=$(awk -v a="$ELAPSED_T0" -v b="$ELAPSED_T1" 'BEGIN { printf "%.2f", b - a }')
	SMTP["$target|rate"]=$(rate "$count" "$ELAPSED_T0" "$ELAPSED_T1")
	SMTP["$target|valid"]=$valid
	local wall=${SMTP[$target|secs]}
	if [ "$target" != postfix ]; then
		SMTP["$target|cpu"]=$(cpu_report "$wall" "$s0" "$s1" "$logf.cpu0" "$logf.cpu1" "$c0" "$c1" \
			"$([ -n "$SMTP_AUTH" ] && echo smtp_submit || echo smtp-source)")
		others_of "${SMTP[$target|cpu]}"
	else
		SMTP["$target|cpu"]="postfix (all its processes) not counted apart; $(cpu_report "$wall" "$s0" "$s1" "$logf.cpu0" "$logf.cpu1" "$c0" "$c1" smtp-source)"
	fi
}

# ---- start -------------------------------------------------------------------------------------
echo "mailwerk HTTP API benchmark — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
bench_machine "$WORK"
echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews every figure)"
dsync=$( { dd if=/dev/zero of="$WORK/dsync-probe" bs=4k count=500 oflag=dsync 2>&1 >/dev/null || true; } | awk '/copied/ { for (i = 1; i < NF; i++) if ($i == "s,") print $(i - 1) }')
rm -f "$WORK/dsync-probe"
echo "disk: $(awk -v t="$dsync" 'BEGIN { if (t > 0) printf "%.0f", 500 / t; else print "?" }') synchronous 4 KiB writes/s (dd oflag=dsync)"
echo "mailwerk: $MAILWERK"
[ "$QUIET_WAIT" -eq 0 ] || echo "each measurement waits up to $QUIET_WAIT s for an idle machine (< 0.2 cores busy over 2 s)"
echo "client: $(wrk --version 2>&1 | head -n 1 | cut -d' ' -f1-2) -t$THREADS -c$CONNS -d${SECS}s --timeout 10s --latency -s bench/api_send.lua"
echo "        (${WARM_SECS} s untimed warm-up first), POST /emails {from $API_FROM, to $API_TO, subject, text of $SIZE octets},"
echo "        keep-alive; the client runs on the same $NCPU cores as the server"
if [ "$DO_SMTP" = 1 ]; then
	echo "SMTP:   smtp-source -A -d -s $CONNS -l $SIZE -m N (after $SMTP_WARMUP untimed), N sized to about $SECS s; Postfix $(postconf -dh mail_version 2>/dev/null) (private instance, HOLD)"
fi
echo

# ---- 1. signing ceilings -----------------------------------------------------------------------
# openssl_sign ALG -> sign/s over every core ("-multi": one process per core; the table line of
# the algorithm holds the sum; sign/s is its next-to-last column)
openssl_sign() {
	local alg=$1 pat=$2 out=$WORK/openssl-$1
	timeout 120 openssl speed -seconds 3 -multi "$NCPU" "$alg" >"$out" 2>&1 || { echo "-"; return; }
	awk -v p="$pat" '$0 ~ p && $NF ~ /^[0-9.]+$/ { v = $(NF - 1) } END { print (v == "" ? "-" : v) }' "$out"
}
wait_quiet
log "openssl speed -seconds 3 -multi $NCPU rsa2048"
CEIL_RSA=$(openssl_sign rsa2048 '^rsa 2048 bits')
log "openssl speed -seconds 3 -multi $NCPU ed25519"
CEIL_ED=$(openssl_sign ed25519 'Ed25519')
log "signing ceiling: RSA-2048 $CEIL_RSA sign/s, Ed25519 $CEIL_ED sign/s (all $NCPU cores)"

# ---- 2. API, RSA ---------------------------------------------------------------------------------
api_run rsa rsa

# ---- 3. SMTP -------------------------------------------------------------------------------------
if [ "$DO_SMTP" = 1 ]; then
	# smtp-source cannot AUTH, so authenticated submission is out of its reach: mailwerk is driven on
	# its MX listener with a local recipient (no DKIM signing there), as bench/accept.sh does
	mw_init rsa
	SMTP_RCPT=$(grep -oE '[A-Za-z0-9._%+-]+@bench\.test' "$MW_DIR.init.log" | head -n 1 || true)
	SMTP_RCPT=${SMTP_RCPT:-demo@bench.test}
	mw_serve smtp
	log "SMTP into mailwerk (MX listener, pid $MW_PID, 127.0.0.1:$MW_PORT), recipient $SMTP_RCPT"
	smtp_run mailwerk "$MW_PORT"
	kill -0 "$MW_PID" 2>/dev/null || { warn "mailwerk (SMTP) died during the run"; SMTP["mailwerk|valid"]=0; }
	mw_stop
	got=$(mw_sql 'SELECT count(*) FROM messages')
	n=${SMTP[mailwerk|count]}
	sent=$((SMTP_WARMUP + n))
	SMTP["mailwerk|queued"]=$got
	if [ "$got" -ne "$sent" ]; then
		warn "mailwerk (SMTP): sent $SMTP_WARMUP + ${SMTP[mailwerk|count]} messages but queue.db has $got — run INVALID"
		SMTP["mailwerk|valid"]=0
	fi
	log "$(printf 'SMTP mailwerk %8d msgs in %6s s = %8s msg/s; queued %d of %d sent' "${SMTP[mailwerk|count]}" "${SMTP[mailwerk|secs]}" "${SMTP[mailwerk|rate]}" "$got" "$sent")"
	log "  CPU: ${SMTP[mailwerk|cpu]}"
	mw_remove

	# authenticated submission: signed with the RSA key as API mail is, to a remote recipient held
	# in the queue as the API's; AUTH without TLS on loopback, as the API runs without TLS here
	SUBMIT_BIN=$WORK/smtp_submit
	cc -O2 -pthread -o "$SUBMIT_BIN" "$BENCH_DIR/smtp_submit.c" 2>"$WORK/smtp_submit.cc.log" ||
		die "cannot build bench/smtp_submit.c: $(head -n 3 "$WORK/smtp_submit.cc.log")"
	mw_init rsa
	printf 'bench-password\n' | "$MAILWERK" user add sender@bench.test --password-stdin -c "$MW_CONF" >/dev/null ||
		die "mailwerk user add failed"
	SMTP_AUTH="sender@bench.test bench-password"
	SAVED_RCPT=$SMTP_RCPT SAVED_SENDER=$SMTP_SENDER
	SMTP_RCPT=$API_TO SMTP_SENDER=$API_FROM
	MW_EXTRA=(-o smtp.allow_insecure_auth=yes)
	mw_serve submission
	log "SMTP submission into mailwerk (AUTH PLAIN, pid $MW_PID, 127.0.0.1:$MW_PORT), keys $MW_KEYS, recipient $SMTP_RCPT"
	smtp_run submission "$MW_PORT"
	kill -0 "$MW_PID" 2>/dev/null || { warn "mailwerk (submission) died during the run"; SMTP["submission|valid"]=0; }
	mw_stop
	MW_EXTRA=()
	SMTP_AUTH=
	SMTP_RCPT=$SAVED_RCPT SMTP_SENDER=$SAVED_SENDER
	got=$(mw_sql 'SELECT count(*) FROM messages')
	signed=$(mw_sql "SELECT count(*) FROM messages WHERE instr(CAST(substr(data, 1, 4096) AS TEXT), 'a=rsa-sha256;') > 0")
	sent=$((SMTP_WARMUP + ${SMTP[submission|count]}))
	SMTP["submission|queued"]=$got
	if [ "$got" -ne "$sent" ] || [ "$signed" -ne "$got" ]; then
		warn "mailwerk (submission): sent $sent messages, queue.db has $got, $signed of them RSA-signed — run INVALID"
		SMTP["submission|valid"]=0
	fi
	log "$(printf 'SMTP submission %6d msgs in %6s s = %8s msg/s; queued %d of %d sent, %d signed' "${SMTP[submission|count]}" "${SMTP[submission|secs]}" "${SMTP[submission|rate]}" "$got" "$sent" "$signed")"
	log "  CPU: ${SMTP[submission|cpu]}"
	mw_remove

	mkdir -p "$WORK/pf"
	chmod 755 "$WORK"
	PF_PORT=$(free_port)
	pf_setup "$WORK/pf" "$PF_PORT" "$BENCH_DIR/postfix"
	pf_start
	log "SMTP into Postfix (127.0.0.1:$PF_PORT, config $PF_CONF)"
	smtp_run postfix "$PF_PORT"
	got=$(pf_hold_count)
	n=${SMTP[postfix|count]}
	sent=$((SMTP_WARMUP + n))
	SMTP["postfix|queued"]=$got
	if [ "$got" -ne "$sent" ]; then
		warn "postfix: sent $SMTP_WARMUP + ${SMTP[postfix|count]} messages but its hold queue has $got — run INVALID"
		SMTP["postfix|valid"]=0
	fi
	if [ "$(pf_other_count)" -ne 0 ]; then
		warn "postfix: $(pf_other_count) messages outside the hold queue: the HOLD rule did not apply"
		SMTP["postfix|valid"]=0
	fi
	log "$(printf 'SMTP postfix  %8d msgs in %6s s = %8s msg/s; held %d of %d sent' "${SMTP[postfix|count]}" "${SMTP[postfix|secs]}" "${SMTP[postfix|rate]}" "$got" "$sent")"
	log "  CPU: ${SMTP[postfix|cpu]}"
	pf_stop
	[ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$WORK/pf"
fi

# ---- 4, 5. API with Ed25519 --------------------------------------------------------------------
if [ "$DO_ED" = 1 ]; then
	api_run "rsa+ed25519" both
	api_run ed25519 ed
fi

# ---- report ------------------------------------------------------------------------------------
# mark VALUE VALID -> VALUE, with "!" when the run was invalid
mark() { if [ "$2" = 1 ]; then echo "$1"; else echo "$1!"; fi; }
row() { printf '  %-58s %14s   %s\n' "$1" "$2" "${3:-}"; }
echo
echo "Results (one run each, same run of the script; ! = INVALID run, see the WARNING lines)"
echo
for l in "${API_LABELS[@]}"; do
	v=${API[$l|valid]}
	echo "API, DKIM keys: ${API[$l|keys]}"
	row "API 200s/s (wrk: all answers/s ${API[$l|wrkrate]})" "$(mark "${API[$l|rate]}" "$v")"
	row "API latency p50 / p90 / p99 / max (ms)" "${API[$l|p50]}" "/ ${API[$l|p90]} / ${API[$l|p99]} / ${API[$l|max]}"
	row "API 200s answered (timed + warm-up)" "$(mark "${API[$l|answered]}" "$v")" "(${API[$l|n200]} + ${API[$l|warm]})"
	row "queued in queue.db (messages / email records)" "$(mark "${API[$l|queued]}" "$v")" "/ ${API[$l|emails]}  (more than answered: requests in flight when wrk stopped)"
	row "  of them signed rsa-sha256 / ed25519-sha256" "${API[$l|srsa]}" "/ ${API[$l|sed]}"
	row "CPU during the timed run" "" "${API[$l|cpu]}"
	echo
done
API_RATE=${API[rsa|rate]}
if [ "$DO_SMTP" = 1 ]; then
	row "SMTP mailwerk msg/s (MX listener, local rcpt, unsigned; see note)" "$(mark "${SMTP[mailwerk|rate]}" "${SMTP[mailwerk|valid]}")" "(${SMTP[mailwerk|count]} msgs in ${SMTP[mailwerk|secs]} s; queued ${SMTP[mailwerk|queued]} incl. $SMTP_WARMUP warm-up)"
	row "  CPU" "" "${SMTP[mailwerk|cpu]}"
	row "SMTP submission mailwerk msg/s (AUTH, DKIM-signed RSA, remote rcpt)" "$(mark "${SMTP[submission|rate]}" "${SMTP[submission|valid]}")" "(${SMTP[submission|count]} msgs in ${SMTP[submission|secs]} s; queued ${SMTP[submission|queued]} incl. $SMTP_WARMUP warm-up)"
	row "  CPU" "" "${SMTP[submission|cpu]}"
	row "SMTP Postfix msg/s (HOLD)" "$(mark "${SMTP[postfix|rate]}" "${SMTP[postfix|valid]}")" "(${SMTP[postfix|count]} msgs in ${SMTP[postfix|secs]} s; held ${SMTP[postfix|queued]} incl. $SMTP_WARMUP warm-up)"
	row "  CPU" "" "${SMTP[postfix|cpu]}"
	X_MW=$(ratio "$API_RATE" "${SMTP[mailwerk|rate]}")
	X_SUB=$(ratio "$API_RATE" "${SMTP[submission|rate]}")
	X_PF=$(ratio "$API_RATE" "${SMTP[postfix|rate]}")
	row "API (RSA) / mailwerk SMTP (MX, unsigned)" "${X_MW}x"
	row "API (RSA) / mailwerk submission (signed)" "${X_SUB}x"
	row "API (RSA) / Postfix SMTP" "${X_PF}x"
fi
row "RSA-2048 signing ceiling (openssl speed, $NCPU cores), sign/s" "$CEIL_RSA"
row "API (RSA) / RSA ceiling" "$(percent "$API_RATE" "$CEIL_RSA")%"
if [ "$DO_ED" = 1 ]; then
	row "API, RSA + Ed25519 both signing, 200s/s" "$(mark "${API[rsa+ed25519|rate]}" "${API[rsa+ed25519|valid]}")"
	row "API, Ed25519 alone, 200s/s" "$(mark "${API[ed25519|rate]}" "${API[ed25519|valid]}")"
	row "Ed25519 signing ceiling (openssl speed, $NCPU cores), sign/s" "$CEIL_ED"
	row "API (Ed25519) / Ed25519 ceiling" "$(percent "${API[ed25519|rate]}" "$CEIL_ED")%"
fi
echo
if awk -v v="$OTHERS_MAX" 'BEGIN { exit !(v >= 0.2) }'; then
	echo "note: other processes used up to $OTHERS_MAX cores during a run (see the CPU lines): the machine was"
	echo "      shared, and every figure (the openssl ceilings too) is lower than on an idle machine."
fi
echo "note: smtp-source cannot AUTH: mailwerk's MX figure (a local recipient, as bench/accept.sh) signs"
echo "      nothing; the submission figure (bench/smtp_submit, AUTH PLAIN) signs as the API does."
echo

# ---- targets -------------------------------------------------------------------------------------
met() { awk -v v="$1" -v t="$2" 'BEGIN { print (v != "-" && v != "" && v + 0 >= t) ? "met" : "NOT met" }'; }
echo "targets (issue; this machine has $NCPU cores), API with the default RSA-2048 key:"
echo "  >= $TARGET_RATE durable DKIM-signed sends/s: $API_RATE/s — $(met "$API_RATE" "$TARGET_RATE")"
if [ "$DO_SMTP" = 1 ]; then
	echo "  >= mailwerk's own SMTP submission rate (${SMTP[submission|rate]} msg/s, signed): ${X_SUB}x — $(met "$X_SUB" 1)"
	echo "  >= ${TARGET_PF_X}x Postfix's SMTP accept (${SMTP[postfix|rate]} msg/s): ${X_PF}x — $(met "$X_PF" "$TARGET_PF_X")"
fi
if [ "$DO_ED" = 1 ]; then
	echo "  with Ed25519 alone: >= $TARGET_RATE sends/s: ${API[ed25519|rate]}/s — $(met "${API[ed25519|rate]}" "$TARGET_RATE")"
fi

if [ ${#WARNINGS[@]} -gt 0 ]; then
	echo
	echo "WARNING: ${#WARNINGS[@]} problem(s); the figures marked ! are INVALID:"
	printf '  - %s\n' "${WARNINGS[@]}"
	exit 1
fi
