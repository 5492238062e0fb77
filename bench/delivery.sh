#!/usr/bin/env bash
# bench/delivery.sh — local delivery latency (SMTP 250 -> file in the Maildir's new/) against a
# private Postfix delivering to a Maildir, and POP3 RETR throughput against a private Dovecot, all
# on 127.0.0.1 with the same clients (bench/delivery.py). See bench/README.md, "Delivery latency
# and POP3 RETR throughput".
#
# Environment:
#   MAILWERK=PATH          mailwerk binary (default: ./build-release/mailwerk of this checkout,
#                          built or rebuilt here when missing or older than the sources)
#   MAILWERK_SKIP=1        measure only the peers (Postfix and Dovecot)
#   QUICK=1                fewer messages (< 60 s)
#   BENCH_LAT_MSGS=N       timed messages of the latency test (default 1000, QUICK 200)
#   BENCH_POP3_MSGS=N      messages in the mailbox for the RETR test (default 1000, QUICK 200)
#   BENCH_SIZE=BYTES       message size (default 10240)
#   BENCH_WARMUP=N         untimed messages before the timed latency run (default 20, at least 1)
#   BENCH_LAT_GAP_MS=N     pause after each file appears before the next message (default 0)
#   BENCH_POP3_REPEAT=N    timed POP3 sessions after the untimed first one; the median is shown
#                          (default 3, QUICK 1)
#   BENCH_POP3_WINDOW=N    most RETR commands outstanding when the server advertises PIPELINING
#                          (default 32; 1 = no pipelining)
#   BENCH_TMPDIR=DIR       where the work dir is made (default /var/tmp; tmpfs is refused)
#   BENCH_KEEP=1           keep the work dir (server logs, samples) instead of deleting it
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"

MAILWERK_SKIP=${MAILWERK_SKIP:-0}
QUICK=${QUICK:-0}
BENCH_TMPDIR=${BENCH_TMPDIR:-/var/tmp}
SIZE=${BENCH_SIZE:-10240}
WARMUP=${BENCH_WARMUP:-20}
WINDOW=${BENCH_POP3_WINDOW:-32}
GAP_MS=${BENCH_LAT_GAP_MS:-0}
if [ "$QUICK" = 1 ]; then
	LAT_MSGS=${BENCH_LAT_MSGS:-200}
	POP3_MSGS=${BENCH_POP3_MSGS:-200}
	POP3_REPEAT=${BENCH_POP3_REPEAT:-1}
else
	LAT_MSGS=${BENCH_LAT_MSGS:-1000}
	POP3_MSGS=${BENCH_POP3_MSGS:-1000}
	POP3_REPEAT=${BENCH_POP3_REPEAT:-3}
fi
TARGET_P50_MS=5 # the issue's target for mailwerk's p50 delivery latency
PY=/usr/bin/python3
CLIENT=$BENCH_DIR/delivery.py
MSG_TIMEOUT=10 # seconds the latency client waits for one reply or one file

for v in LAT_MSGS POP3_MSGS SIZE WARMUP WINDOW POP3_REPEAT; do
	[[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive number (got '${!v}')"
done
[[ "$GAP_MS" =~ ^[0-9]{1,4}$ ]] || die "BENCH_LAT_GAP_MS must be 0..9999"
if [ "$SIZE" -lt 1024 ] || [ "$SIZE" -gt 10485760 ]; then die "BENCH_SIZE must be 1024..10485760"; fi
if [ "$LAT_MSGS" -gt 100000 ] || [ "$POP3_MSGS" -gt 100000 ]; then die "at most 100000 messages"; fi
[ "$POP3_REPEAT" -le 99 ] || die "BENCH_POP3_REPEAT must be 1..99"

# ---- packages: postfix (delivery peer), dovecot-pop3d (POP3 peer), python3 (clients) -------------
bash "$(dirname "$0")/../scripts/deps.sh" bench || die "cannot install the benchmark's packages"
[ "$(id -u)" -eq 0 ] || die "must run as root (private Postfix and Dovecot instances need it)"
for tool in postfix postconf dovecot "$PY" timeout awk; do
	command -v "$tool" >/dev/null || die "$tool not found"
done

# ---- the mailwerk binary -------------------------------------------------------------------------
BUILD_NOTE=
if [ "$MAILWERK_SKIP" != 1 ]; then
	if [ -z "${MAILWERK:-}" ]; then
		MAILWERK=$ROOT/build-release/mailwerk
		stale=
		if [ -x "$MAILWERK" ]; then
			stale=$(find "$ROOT/src" "$ROOT/CMakeLists.txt" -newer "$MAILWERK" -print -quit 2>/dev/null || true)
		fi
		if [ ! -x "$MAILWERK" ] || [ -n "$stale" ]; then
			log "building $MAILWERK ($([ -n "$stale" ] && echo "older than $stale" || echo missing))"
			blog=$(mktemp /tmp/mailwerk-delivery-build.XXXXXX)
			if (cd "$ROOT" && timeout 900 cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DMAILWERK_TESTS=OFF &&
				timeout 900 cmake --build build-release) >"$blog" 2>&1; then
				rm -f "$blog"
			elif [ -x "$MAILWERK" ]; then
				BUILD_NOTE="the build failed ($(grep -m 1 -E 'error|Error' "$blog" || tail -n 1 "$blog")); measuring the older binary"
				rm -f "$blog"
			else
				tail -n 20 "$blog" >&2
				rm -f "$blog"
				die "building mailwerk failed (cmake --build build-release)"
			fi
		fi
	fi
	if [ ! -x "$MAILWERK" ] || [ -d "$MAILWERK" ]; then die "mailwerk binary not found or not executable: $MAILWERK"; fi
	MAILWERK=$(realpath "$MAILWERK")
fi

# ---- work dir and cleanup ------------------------------------------------------------------------
WORK=$(bench_workdir mailwerk-delivery) || exit 1
chmod 755 "$WORK" # Postfix's virtual agent and Dovecot's mail process (nobody) reach their Maildirs

MW_PID=
DV_PID=
CL_PID=
# shellcheck disable=SC2034 # read by pf_stop in lib.sh
PF_STARTED=0
bench_cleanup_pid CL_PID client
bench_cleanup_pid MW_PID mailwerk
bench_cleanup_pid DV_PID dovecot
bench_cleanup_call pf_stop
bench_cleanup_dir WORK
bench_on_exit

# client OUT SECONDS ARGS... : runs bench/delivery.py in the background (so the trap can stop it),
# its JSON to OUT; returns its exit status (2: it reported an error, 124: timed out).
client() {
	local out=$1 secs=$2 rc=0
	shift 2
	timeout "$secs" "$PY" "$CLIENT" "$@" >"$out" 2>"$out.err" &
	CL_PID=$!
	wait "$CL_PID" || rc=$?
	CL_PID=
	return "$rc"
}
# jget FILE EXPR -> a field of the client's JSON, e.g. jget f 'd["reply_to_file_ms"]["p50"]'
jget() { "$PY" -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
# client_error OUT RC -> one line saying why the client failed
client_error() {
	local out=$1 rc=$2
	if [ "$rc" = 124 ]; then
		echo "the client timed out"
	elif [ -s "$out" ] && grep -q '"error"' "$out"; then
		jget "$out" 'd["error"]'
	else
		echo "the client exited $rc: $(tail -n 3 "$out.err" 2>/dev/null | tr '\n' ' ')"
	fi
}

# ---- mailwerk ------------------------------------------------------------------------------------
MW_N=0
MW_DIR=
MW_RCPT=
MW_PASS=
# mw_init: a fresh data dir; sets MW_DIR, MW_RCPT (the demo user init prints) and MW_PASS
mw_init() {
	MW_N=$((MW_N + 1))
	MW_DIR=$WORK/mailwerk-$MW_N
	"$MAILWERK" init --dir "$MW_DIR" --domain bench.test --hostname mx.bench.test >"$MW_DIR.init.log" 2>&1 ||
		die "mailwerk init failed: $(cat "$MW_DIR.init.log")"
	MW_RCPT=$(grep -oE '[A-Za-z0-9._%+-]+@bench\.test' "$MW_DIR.init.log" | head -n 1 || true)
	[ -n "$MW_RCPT" ] || die "mailwerk init printed no user at bench.test: $(cat "$MW_DIR.init.log")"
	MW_PASS=$(awk '$1 == "Password:" { print $2; exit }' "$MW_DIR.init.log")
}
# mw_maildir -> DATA_DIR/mail/DOMAIN/LOCAL of the demo user
mw_maildir() { echo "$MW_DIR/mail/${MW_RCPT#*@}/${MW_RCPT%@*}"; }
# mw_serve PORT_SMTP [PORT_POP3]: starts serve with only those listeners; false (and MW_PID empty)
# when it exits or does not accept within 10 s; the log is $MW_DIR.serve.log
mw_serve() {
	local smtp=$1 pop3=${2:-}
	# smtp.auth_checks=no: Postfix and Dovecot, the peers, run no SPF/DKIM/DMARC checks either
	local args=(-c "$MW_DIR/mailwerk.conf" -o "listen.smtp=127.0.0.1:$smtp" -o listen.submission= -o listen.submissions=
		-o listen.pop3s= -o smtp.auth_checks=no)
	if [ -n "$pop3" ]; then
		# plain-text USER/PASS: allowed by mailwerk only with this, and only on a loopback listener
		args+=(-o "listen.pop3=127.0.0.1:$pop3" -o smtp.allow_insecure_auth=yes)
	else
		args+=(-o listen.pop3=)
	fi
	"$MAILWERK" serve "${args[@]}" >"$MW_DIR.serve.log" 2>&1 &
	MW_PID=$!
	if wait_port "$smtp" 10 "$MW_PID" && { [ -z "$pop3" ] || wait_port "$pop3" 10 "$MW_PID"; }; then
		return 0
	fi
	mw_stop
	return 1
}
mw_stop() {
	stop_pid "$MW_PID" mailwerk
	MW_PID=
}
# mw_log_errors NAME: a warning for every level=error line in the serve log
mw_log_errors() {
	local n
	n=$(grep -c 'level=error' "$MW_DIR.serve.log" || true)
	[ "$n" = 0 ] || warn "mailwerk ($1): $n error line(s) in its log, first: $(grep -m 1 'level=error' "$MW_DIR.serve.log")"
}

# ---- header --------------------------------------------------------------------------------------
echo "mailwerk delivery benchmark — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
bench_machine "$WORK"
echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews every figure)"
dsync=$( { dd if=/dev/zero of="$WORK/dsync-probe" bs=4k count=500 oflag=dsync 2>&1 >/dev/null || true; } | awk '/copied/ { for (i = 1; i < NF; i++) if ($i == "s,") print $(i - 1) }')
rm -f "$WORK/dsync-probe"
echo "disk: $(awk -v t="$dsync" 'BEGIN { if (t > 0) printf "%.0f", 500 / t; else print "?" }') synchronous 4 KiB writes/s (dd oflag=dsync)"
echo "peers: Postfix $(postconf -dh mail_version 2>/dev/null) (virtual(8) into a Maildir), Dovecot $(dovecot --version 2>/dev/null | cut -d' ' -f1) (POP3); clients: bench/delivery.py ($($PY -V 2>&1))"
if [ "$MAILWERK_SKIP" = 1 ]; then
	echo "MAILWERK_SKIP=1: measuring only the peers"
else
	if [ "$MAILWERK" = "$(realpath -m "$ROOT/build-release/mailwerk")" ]; then
		rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "?")
		[ -z "$(git -C "$ROOT" status --porcelain -- src CMakeLists.txt 2>/dev/null)" ] || rev="$rev + uncommitted changes in src/"
		echo "mailwerk: $MAILWERK (built from the checkout, $rev)"
	else
		echo "mailwerk: $MAILWERK"
	fi
	[ -z "$BUILD_NOTE" ] || warn "$BUILD_NOTE"
fi
[ "$QUICK" = 1 ] && echo "QUICK mode: $LAT_MSGS latency messages, $POP3_MSGS POP3 messages, $POP3_REPEAT timed POP3 session(s) (noisier)"
echo

# ==== 1. local delivery latency ===================================================================
declare -A LAT # LAT[target] = the client's JSON file, when the run was valid
lat_run() {
	local target=$1 port=$2 rcpt=$3 newdir=$4 out=$WORK/latency-$1.json rc=0
	log "$target: $WARMUP warm-up + $LAT_MSGS timed messages of $SIZE bytes, one at a time, to $rcpt"
	client "$out" $((60 + LAT_MSGS * (2 + GAP_MS / 1000))) latency --port "$port" --rcpt "$rcpt" --maildir-new "$newdir" \
		--count "$LAT_MSGS" --warmup "$WARMUP" --size "$SIZE" --timeout "$MSG_TIMEOUT" \
		--samples "$WORK/latency-$target.samples" --gap-ms "$GAP_MS" || rc=$?
	if [ "$rc" = 0 ]; then
		LAT[$target]=$out
		log "$target: p50 $(jget "$out" 'd["reply_to_file_ms"]["p50"]') ms, max $(jget "$out" 'd["reply_to_file_ms"]["max"]') ms (250 -> new/)"
	else
		warn "$target, delivery latency: $(client_error "$out" "$rc") — run INVALID"
	fi
}

if [ "$MAILWERK_SKIP" != 1 ]; then
	mw_init
	port=$(free_port)
	if mw_serve "$port"; then
		lat_run mailwerk "$port" "$MW_RCPT" "$(mw_maildir)/new"
		kill -0 "$MW_PID" 2>/dev/null || warn "mailwerk died during the latency run: $(tail -n 3 "$MW_DIR.serve.log")"
		mw_stop
		mw_log_errors "latency"
	else
		warn "mailwerk serve did not accept on 127.0.0.1:$port: $(tail -n 3 "$MW_DIR.serve.log")"
	fi
fi

PF_PORT=$(free_port)
mkdir -p "$WORK/postfix-mail"
chown 65534:65534 "$WORK/postfix-mail" # virtual(8) writes as virtual_uid_maps (nobody)
pf_setup "$WORK" "$PF_PORT" "$BENCH_DIR/postfix-delivery"
pf_start
log "postfix listening on 127.0.0.1:$PF_PORT (config $PF_CONF)"
lat_run postfix "$PF_PORT" "${MW_RCPT:-demo@bench.test}" "$WORK/postfix-mail/Maildir/new"
pf_stop
n=$(find "$PF_QUEUE/incoming" "$PF_QUEUE/active" "$PF_QUEUE/deferred" "$PF_QUEUE/hold" -type f 2>/dev/null | wc -l)
[ "$n" = 0 ] || warn "postfix: $n message(s) left in its queue after the latency run (see $PF_LOG)"

# ==== 2. POP3 RETR throughput =====================================================================
STAGE=$WORK/stage
client "$WORK/fill.json" 300 fill --dir "$STAGE" --count "$POP3_MSGS" --size "$SIZE" ||
	die "writing the messages failed: $(client_error "$WORK/fill.json" $?)"
log "$POP3_MSGS message files of $SIZE bytes (CRLF line ends, named the Maildir way) in $STAGE"

declare -A POP # POP[target] = the client's JSON file, when the run was valid
MW_POP3_NA= # why mailwerk's POP3 could not be measured
pop_run() {
	local target=$1 port=$2 user=$3 pass=$4 out=$WORK/pop3-$1.json rc=0
	log "$target: POP3 USER/PASS, RETR 1..$POP3_MSGS, QUIT; 1 untimed + $POP3_REPEAT timed session(s)"
	BENCH_POP3_PASS=$pass client "$out" $((120 + POP3_MSGS * (1 + POP3_REPEAT) / 10)) retr --port "$port" --user "$user" \
		--src "$STAGE" --count "$POP3_MSGS" --passes $((1 + POP3_REPEAT)) --window "$WINDOW" || rc=$?
	if [ "$rc" = 0 ]; then
		POP[$target]=$out
	else
		warn "$target, POP3 RETR: $(client_error "$out" "$rc") — run INVALID"
	fi
}
# fill_maildir DIR: DIR/{tmp,new,cur} with the staged files in new/ (same names, same mtimes)
fill_maildir() {
	mkdir -p "$1/tmp" "$1/new" "$1/cur"
	chmod 700 "$1" "$1/tmp" "$1/new" "$1/cur"
	cp -pR "$STAGE/." "$1/new/"
}

if [ "$MAILWERK_SKIP" = 1 ]; then
	MW_POP3_NA="skipped (MAILWERK_SKIP=1)"
elif [ ! -f "$ROOT/src/pop3/session.c" ]; then
	MW_POP3_NA="no src/pop3/session.c in $ROOT"
else
	mw_init
	[ -n "$MW_PASS" ] || die "mailwerk init printed no 'Password:' line: $(cat "$MW_DIR.init.log")"
	fill_maildir "$(mw_maildir)"
	sport=$(free_port)
	pport=$(free_port)
	if ! mw_serve "$sport" "$pport"; then
		MW_POP3_NA="serve does not run a pop3 listener: $(grep -v '^ts=.*level=info' "$MW_DIR.serve.log" | tail -n 2 | tr '\n' ' ')"
	elif ! greet=$(timeout 5 "$PY" -c 'import socket, sys; s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=4); print(s.makefile("rb").readline().decode(errors="replace").strip())' "$pport" 2>&1) ||
		[[ "$greet" != "+OK"* ]]; then
		MW_POP3_NA="the pop3 listener does not greet with +OK (got: ${greet:0:100})"
		mw_stop
	else
		pop_run mailwerk "$pport" "$MW_RCPT" "$MW_PASS"
		kill -0 "$MW_PID" 2>/dev/null || warn "mailwerk died during the POP3 run: $(tail -n 3 "$MW_DIR.serve.log")"
		mw_stop
		mw_log_errors "POP3"
	fi
fi
[ -z "$MW_POP3_NA" ] || [ "$MAILWERK_SKIP" = 1 ] || log "mailwerk POP3: not available ($MW_POP3_NA)"

# Dovecot: a private instance, its own config, run dir, state dir and log in the work dir
DV=$WORK/dovecot
DV_PORT=$(free_port)
DV_PASS=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
mkdir -p "$DV/run" "$DV/state" "$WORK/dovecot-mail"
# the password as mailwerk stores its users' passwords: yescrypt at libxcrypt's default cost, so
# both servers pay the same hash computation per login (Dovecot's CRYPT scheme calls crypt(3))
DV_HASH=$(BENCH_POP3_PASS=$DV_PASS "$PY" "$CLIENT" hash) || die "making a yescrypt hash failed: $DV_HASH"
echo "demo@bench.test:{CRYPT}$DV_HASH:65534:65534::$WORK/dovecot-mail::" >"$DV/passwd"
chmod 644 "$DV/passwd" # read by the auth process (unprivileged)
fill_maildir "$WORK/dovecot-mail/Maildir"
chown -R 65534:65534 "$WORK/dovecot-mail"
sed -e "s|@PORT@|$DV_PORT|g" -e "s|@RUN_DIR@|$DV/run|" -e "s|@STATE_DIR@|$DV/state|" -e "s|@LOG_FILE@|$DV/dovecot.log|" \
	-e "s|@PASSWD_FILE@|$DV/passwd|" -e "s|@MAILDIR@|$WORK/dovecot-mail/Maildir|" "$BENCH_DIR/dovecot/dovecot.conf.in" >"$DV/dovecot.conf"
dovecot -c "$DV/dovecot.conf" -n >"$DV/config-check.log" 2>&1 || die "dovecot rejects its configuration: $(tail -n 3 "$DV/config-check.log")"
dovecot -F -c "$DV/dovecot.conf" >"$DV/stdout.log" 2>&1 &
DV_PID=$!
wait_port "$DV_PORT" 15 "$DV_PID" || die "dovecot did not accept on 127.0.0.1:$DV_PORT: $(tail -n 3 "$DV/dovecot.log" "$DV/stdout.log" 2>/dev/null)"
log "dovecot listening on 127.0.0.1:$DV_PORT (config $DV/dovecot.conf)"
pop_run dovecot "$DV_PORT" demo@bench.test "$DV_PASS"
kill -0 "$DV_PID" 2>/dev/null || warn "dovecot died during the POP3 run: $(tail -n 3 "$DV/dovecot.log")"
stop_pid "$DV_PID" dovecot
DV_PID=
n=$(grep -c -E 'Error|Fatal|Panic' "$DV/dovecot.log" || true)
[ "$n" = 0 ] || warn "dovecot: $n error line(s) in its log, first: $(grep -m 1 -E 'Error|Fatal|Panic' "$DV/dovecot.log")"

# ==== report =======================================================================================
# lat TARGET KEY PCT -> a latency figure in ms with 3 decimals, "-" when not measured
lat() {
	local f=${LAT[$1]:-}
	[ -n "$f" ] || { echo "-"; return; }
	awk -v v="$(jget "$f" "d[\"$2\"][\"$3\"]")" 'BEGIN { printf "%.3f", v }'
}
echo
echo "1. Local delivery latency: $LAT_MSGS messages of $SIZE bytes sent one at a time over one SMTP connection"
echo "   (after $WARMUP untimed), each sent only once the previous one is in new/$([ "$GAP_MS" = 0 ] || echo " and $GAP_MS ms more"). Milliseconds from the client"
echo "   reading the final 250 of DATA to the file appearing in the Maildir's new/ (inotify, same process and"
echo "   clock; nearest-rank percentiles). Both servers fsync the message before their 250."
echo
row() { printf '   %-26s %9s %9s %9s %9s\n' "$@"; }
row "" "p50" "p90" "p99" "max"
for t in mailwerk postfix; do
	if [ "$t" = mailwerk ] && [ "$MAILWERK_SKIP" = 1 ]; then
		row "mailwerk" "skipped" "" "" ""
		continue
	fi
	row "$t" "$(lat "$t" reply_to_file_ms p50)" "$(lat "$t" reply_to_file_ms p90)" "$(lat "$t" reply_to_file_ms p99)" "$(lat "$t" reply_to_file_ms max)"
done
rat=()
for p in p50 p90 p99 max; do rat+=("$(ratio "$(lat mailwerk reply_to_file_ms "$p")" "$(lat postfix reply_to_file_ms "$p")")"); done
row "mailwerk/postfix" "${rat[@]}"
echo
echo "   For context, the whole path: end of DATA sent -> file in new/ (includes the server's durable accept):"
for t in mailwerk postfix; do
	[ -n "${LAT[$t]:-}" ] || continue
	row "$t" "$(lat "$t" dot_to_file_ms p50)" "$(lat "$t" dot_to_file_ms p90)" "$(lat "$t" dot_to_file_ms p99)" "$(lat "$t" dot_to_file_ms max)"
done
for t in mailwerk postfix; do
	[ -n "${LAT[$t]:-}" ] || continue
	b=$(jget "${LAT[$t]}" 'd["file_before_reply"]')
	[ "$b" = 0 ] || echo "   note: $t: in $b of $LAT_MSGS messages the file was in new/ before the client read the 250 (negative latency)"
	q=$(jget "${LAT[$t]}" 'd["queued_as"]')
	[ "$q" = "$((WARMUP - 1 + LAT_MSGS))" ] || echo "   note: $t: $q of $((WARMUP - 1 + LAT_MSGS)) final replies said \"queued as\" (last: $(jget "${LAT[$t]}" 'd["reply_example"]'))"
done

# pop TARGET -> "msgs/s MiB/s first_s login_ms total_s quit_ms pipelining window retr_only_msgs/s"
# (medians over the timed sessions)
pop() {
	local f=${POP[$1]:-}
	[ -n "$f" ] || return 1
	"$PY" - "$f" <<'EOF'
import json, statistics, sys
d = json.load(open(sys.argv[1]))
n = d["messages"]
first, timed = d["passes"][0], d["passes"][1:]
t = statistics.median(p["total_s"] for p in timed)
b = statistics.median(p["bytes"] for p in timed)
r = statistics.median(p["retr_s"] for p in timed)
print("%.0f %.1f %.3f %.1f %.3f %.1f %s %d %.0f" % (n / t, b / t / 1048576, first["total_s"], 1000 * statistics.median(p["login_s"] for p in timed),
      t, 1000 * statistics.median(p["quit_s"] for p in timed), "yes" if first["pipelining"] else "no", first["window"], n / r))
EOF
}
echo
echo "2. POP3 RETR throughput: one session logs in (USER/PASS), RETRs all $POP3_MSGS messages of $SIZE bytes"
echo "   (no DELE), then QUIT. Time from connecting to the last RETR response read, median of $POP3_REPEAT timed"
echo "   session(s) after an untimed first one (which moves new/ to cur/ and builds any index). Both servers"
echo "   check a yescrypt hash at login. RETR only = from the first RETR sent to the last response read."
echo "   Every session's messages are checked byte for byte against the files."
echo
prow() { printf '   %-26s %9s %9s %13s %10s %16s %10s %12s\n' "$@"; }
prow "" "msgs/s" "MiB/s" "first sess s" "login ms" "RETR only msg/s" "QUIT ms" "pipelined"
declare -A PR
for t in mailwerk dovecot; do
	if [ "$t" = mailwerk ] && [ "$MAILWERK_SKIP" = 1 ]; then
		prow "mailwerk" "skipped" "" "" "" "" "" ""
		continue
	elif [ "$t" = mailwerk ] && [ -n "$MW_POP3_NA" ]; then
		echo "   mailwerk POP3: not available ($MW_POP3_NA)"
		continue
	fi
	if r=$(pop "$t"); then
		PR[$t]=$r
		read -r mps mibs first login _tot quit pl win ronly <<<"$r"
		prow "$t" "$mps" "$mibs" "$first" "$login" "$ronly" "$quit" "$([ "$pl" = yes ] && echo "yes ($win)" || echo "no")"
	else
		prow "$t" "-" "-" "-" "-" "-" "-" "-"
	fi
done
mw_mps=$(awk '{ print $1 }' <<<"${PR[mailwerk]:-}")
dv_mps=$(awk '{ print $1 }' <<<"${PR[dovecot]:-}")
mw_mib=$(awk '{ print $2 }' <<<"${PR[mailwerk]:-}")
dv_mib=$(awk '{ print $2 }' <<<"${PR[dovecot]:-}")
mw_ro=$(awk '{ print $9 }' <<<"${PR[mailwerk]:-}")
dv_ro=$(awk '{ print $9 }' <<<"${PR[dovecot]:-}")
prow "mailwerk/dovecot" "$(ratio "$mw_mps" "$dv_mps")" "$(ratio "$mw_mib" "$dv_mib")" "" "" "$(ratio "$mw_ro" "$dv_ro")" "" ""

# ---- summary -------------------------------------------------------------------------------------
echo
if [ "$MAILWERK_SKIP" = 1 ]; then
	echo "mailwerk delivery latency p50: skipped (MAILWERK_SKIP=1)"
else
	p50=$(lat mailwerk reply_to_file_ms p50)
	met=$(awk -v v="$p50" -v t="$TARGET_P50_MS" 'BEGIN { print (v != "-" && v + 0 < t) ? "met" : "NOT met" }')
	echo "mailwerk delivery latency p50 (250 -> new/): $p50 ms (target < $TARGET_P50_MS ms) $met; mailwerk/postfix ${rat[0]}x"
fi
if [ "$MAILWERK_SKIP" = 1 ]; then
	echo "POP3 RETR mailwerk/dovecot: skipped (MAILWERK_SKIP=1); dovecot ${dv_mps:--} msgs/s"
elif [ -n "$MW_POP3_NA" ]; then
	echo "mailwerk POP3: not available ($MW_POP3_NA); dovecot ${dv_mps:--} msgs/s"
else
	echo "POP3 RETR mailwerk/dovecot: $(ratio "$mw_mps" "$dv_mps")x messages/s per session (${mw_mps:--} vs ${dv_mps:--}); RETR phase alone $(ratio "$mw_ro" "$dv_ro")x (${mw_ro:--} vs ${dv_ro:--})"
fi

if [ ${#WARNINGS[@]} -gt 0 ]; then
	echo
	echo "WARNING: ${#WARNINGS[@]} problem(s); figures from those runs are missing or INVALID:"
	printf '  - %s\n' "${WARNINGS[@]}"
	exit 1
fi
