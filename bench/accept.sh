#!/usr/bin/env bash
# bench/accept.sh — how fast mailwerk durably accepts mail over SMTP, against a private Postfix
# (same durability: fsync before the 250) and smtp-sink (accepts and discards: the no-disk ceiling),
# all on 127.0.0.1, driven by the same client (Postfix's smtp-source). See bench/README.md.
#
# Environment:
#   MAILWERK=PATH        mailwerk binary (default ./build-release/mailwerk)
#   MAILWERK_SKIP=1      run only the peers (Postfix and smtp-sink)
#   QUICK=1              fewer cases and messages (< 60 s)
#   BENCH_TMPDIR=DIR     where the work dir is made (default /var/tmp; tmpfs is refused)
#   BENCH_KEEP=1         keep the work dir (logs, queues) instead of deleting it
#   BENCH_MSGS=N         timed messages per run for every case and target (default: at least
#                        count_for, more when the warm-up shows a run would be shorter than
#                        BENCH_SECONDS)
#   BENCH_SECONDS=N      the shortest timed run wanted (default 3, QUICK 2)
#   BENCH_SIZES, BENCH_SESSIONS, BENCH_MODES   space-separated subsets, e.g. BENCH_SESSIONS="50"
#                        (sizes in bytes; modes: conn = one message per connection, persist = -d)
#                        Large messages: BENCH_SIZES="102400 1048576" BENCH_SESSIONS=50 runs 100 KiB
#                        and 1 MiB; a 1 MiB case starts from 500 timed messages (not 2000), within
#                        the 1 GiB of bodies a run may send, and each mailwerk data dir is removed
#                        after its run (unless BENCH_KEEP=1), so the disk holds one run's queue.
#   BENCH_DELIVERY="accept deliver"   what the servers do with what they accept (default both):
#                        accept  = hold it: mailwerk with [delivery] hold = yes, Postfix with a HOLD
#                                  rule; counted back from the queues (smtp-sink discards, for the
#                                  ceiling);
#                        deliver = deliver it into a Maildir: mailwerk locally, Postfix with
#                                  virtual(8); counted back from the Maildirs once the queues are
#                                  empty, with the time until the last file lands.
#                        A run is INVALID only when a message is missing (queue + delivered != sent).
#   BENCH_REPEAT=N       runs per target and case; the table shows the median (default 1)
#   BENCH_WARMUP=N       untimed messages before each timed run (default 300)
#   BENCH_RCPT=ADDR      recipient (default: the demo user mailwerk init prints, else user@bench.test)
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"

MAILWERK=${MAILWERK:-./build-release/mailwerk}
MAILWERK_SKIP=${MAILWERK_SKIP:-0}
QUICK=${QUICK:-0}
BENCH_TMPDIR=${BENCH_TMPDIR:-/var/tmp}
BENCH_REPEAT=${BENCH_REPEAT:-1}
SENDER=any@example.org
SOURCE_TIMEOUT=120 # seconds, per smtp-source run
WARMUP=${BENCH_WARMUP:-300} # untimed messages sent before each timed run
MAX_BYTES=$((1024 * 1024 * 1024)) # cap on the body bytes of one timed run

# ---- preconditions -----------------------------------------------------------------------------
if [ "$MAILWERK_SKIP" != 1 ]; then
	if [ ! -x "$MAILWERK" ] || [ -d "$MAILWERK" ]; then
		die "mailwerk binary not found or not executable: $MAILWERK
  build it (make bench builds ./build-release/mailwerk), or set MAILWERK=/path/to/mailwerk,
  or set MAILWERK_SKIP=1 to measure only the peers (Postfix and smtp-sink)"
	fi
	MAILWERK=$(realpath "$MAILWERK")
fi
[ "$(id -u)" -eq 0 ] || die "must run as root (a private Postfix instance and 'smtp-sink -u nobody' need it)"
for tool in postfix postsuper smtp-source smtp-sink python3 timeout awk; do
	command -v "$tool" >/dev/null || die "$tool not found (scripts/deps.sh installs postfix, which has smtp-source and smtp-sink)"
done
[[ "$BENCH_REPEAT" =~ ^[1-9][0-9]?$ ]] || die "BENCH_REPEAT must be 1..99"
[[ "$WARMUP" =~ ^[0-9]+$ ]] || die "BENCH_WARMUP must be a number"
if [ "$QUICK" = 1 ]; then RUN_SECONDS=${BENCH_SECONDS:-2}; else RUN_SECONDS=${BENCH_SECONDS:-3}; fi
[[ "$RUN_SECONDS" =~ ^[1-9][0-9]?$ ]] || die "BENCH_SECONDS must be 1..99"
[[ "${BENCH_MSGS:-1}" =~ ^[1-9][0-9]*$ ]] || die "BENCH_MSGS must be a positive number"

# ---- cases -------------------------------------------------------------------------------------
if [ "$QUICK" = 1 ]; then
	read -r -a SIZES <<<"${BENCH_SIZES:-1024}"
	read -r -a SESSIONS <<<"${BENCH_SESSIONS:-50}"
	read -r -a MODES <<<"${BENCH_MODES:-conn persist}"
else
	read -r -a SIZES <<<"${BENCH_SIZES:-1024 102400}"
	read -r -a SESSIONS <<<"${BENCH_SESSIONS:-1 10 50}"
	read -r -a MODES <<<"${BENCH_MODES:-conn persist}"
fi
for v in "${SIZES[@]}" "${SESSIONS[@]}"; do [[ "$v" =~ ^[1-9][0-9]*$ ]] || die "not a positive number: $v"; done
for v in "${MODES[@]}"; do [[ "$v" =~ ^(conn|persist)$ ]] || die "BENCH_MODES: conn or persist, not $v"; done
read -r -a DELIVERIES <<<"${BENCH_DELIVERY:-accept deliver}"
for v in "${DELIVERIES[@]}"; do [[ "$v" =~ ^(accept|deliver)$ ]] || die "BENCH_DELIVERY: accept or deliver, not $v"; done
DRAIN_TIMEOUT=300 # seconds a deliver run may take to empty its queue into the Maildir
DELIVERY=accept   # of the runs under way

# count_for SIZE SESSIONS -> the least number of timed messages per run
count_for() {
	if [ -n "${BENCH_MSGS:-}" ]; then
		echo "$BENCH_MSGS"
	elif [ "$QUICK" = 1 ]; then
		echo 1000
	elif [ "$1" -ge 1048576 ]; then
		echo 500 # 1 MiB messages: 2000 would be 2 GiB of bodies, twice the cap of a run
	elif [ "$1" -ge 65536 ] && [ "$2" -eq 1 ]; then
		echo 500 # one session of 100 KiB messages: 2000 would take minutes on the peer
	else
		echo 2000
	fi
}

size_label() {
	if [ $(($1 % 1048576)) -eq 0 ]; then echo "$(($1 / 1048576))MiB"
	elif [ $(($1 % 1024)) -eq 0 ]; then echo "$(($1 / 1024))KiB"
	else echo "${1}B"; fi
}
mode_label() { if [ "$1" = persist ]; then echo "persistent connections (-d)"; else echo "one message per connection"; fi; }

# ---- work dir and cleanup ----------------------------------------------------------------------
WORK=$(bench_workdir mailwerk-bench) || exit 1

MW_PID=
SINK_PID=
SRC_PID=
# shellcheck disable=SC2034 # read by pf_stop in lib.sh
PF_STARTED=0
bench_cleanup_pid SRC_PID smtp-source
bench_cleanup_pid MW_PID mailwerk
bench_cleanup_pid SINK_PID smtp-sink
bench_cleanup_call pf_stop
bench_cleanup_dir WORK
bench_on_exit

# ---- mailwerk ----------------------------------------------------------------------------------
MW_N=0
MW_PERIP=0 # server.max_connections_per_ip: 0 = unlimited, else the fallback below
MW_CONF=
MW_PORT=
RCPT=${BENCH_RCPT:-}

# mw_start: a fresh data dir (empty queue), then `serve` in the background on a fresh port.
mw_start() {
	MW_N=$((MW_N + 1))
	local dir=$WORK/mailwerk-$MW_N try
	if ! "$MAILWERK" init --dir "$dir" --domain bench.test --hostname mx.bench.test >"$dir.init.log" 2>&1; then
		die "mailwerk init failed: $(cat "$dir.init.log")"
	fi
	MW_CONF=$dir/mailwerk.conf
	[ -r "$MW_CONF" ] || die "mailwerk init did not write $MW_CONF"
	if [ -z "$RCPT" ]; then
		# the demo user init creates (its password, also printed, is not needed)
		RCPT=$(grep -oE '[A-Za-z0-9._%+-]+@bench\.test' "$dir.init.log" | head -n 1 || true)
		RCPT=${RCPT:-user@bench.test}
		log "recipient: $RCPT"
	fi
	# accept only: keep everything queued, as the Postfix it is compared with does (HOLD)
	local hold=()
	[ "$DELIVERY" = accept ] && hold=(-o delivery.hold=yes)
	for try in 1 2; do
		MW_PORT=$(free_port)
		# smtp.auth_checks=no: the Postfix it is compared with runs no SPF/DKIM/DMARC checks either
		"$MAILWERK" serve -c "$MW_CONF" -o "listen.smtp=127.0.0.1:$MW_PORT" -o listen.submission= \
			-o listen.submissions= -o "server.max_connections_per_ip=$MW_PERIP" -o smtp.auth_checks=no \
			"${hold[@]}" >"$dir.serve.log" 2>&1 &
		MW_PID=$!
		wait_port "$MW_PORT" 10 "$MW_PID" && return 0
		if ! kill -0 "$MW_PID" 2>/dev/null; then
			wait "$MW_PID" 2>/dev/null || true
			MW_PID=
			if [ "$try" = 1 ] && [ "$MW_PERIP" = 0 ] && grep -q 'max_connections_per_ip' "$dir.serve.log"; then
				log "mailwerk refused server.max_connections_per_ip=0 ($(head -n 1 "$dir.serve.log")); using 10000"
				MW_PERIP=10000
				continue
			fi
			die "mailwerk serve exited before accepting on 127.0.0.1:$MW_PORT: $(tail -n 5 "$dir.serve.log")"
		fi
		die "mailwerk serve (pid $MW_PID) did not accept on 127.0.0.1:$MW_PORT within 10 s: $(tail -n 5 "$dir.serve.log")"
	done
}

mw_stop() {
	stop_pid "$MW_PID" mailwerk
	MW_PID=
}

# mw_count -> number of queue entries, or a sentence on failure (not a number)
mw_count() {
	local out
	out=$("$MAILWERK" queue list -c "$MW_CONF" --json 2>&1) || { echo "queue list failed: $(head -c 300 <<<"$out")"; return; }
	python3 -c 'import json, sys
d = json.load(sys.stdin)
print(len(d) if isinstance(d, list) else "queue list --json is not a JSON array")' <<<"$out" 2>&1 | tail -n 1
}

# files_in DIR -> the number of files in DIR (0 when it does not exist)
files_in() { if [ -d "$1" ]; then find "$1" -type f | wc -l; else echo 0; fi; }
# last_mtime DIR -> the latest modification time (epoch seconds, fractional) of a file in DIR
last_mtime() { find "$1" -type f -printf '%T@\n' | sort -g | tail -n 1; }
mw_maildir_new() { echo "$WORK/mailwerk-$MW_N/mail/bench.test/${RCPT%@*}/new"; }
PF_MAILDIR_NEW=

# drain TARGET STORED -> waits (bounded) until the target's queue is empty and STORED files are in its
# Maildir; sets DRAIN_QUEUED and DRAIN_FILES (what was where at the end) and DRAIN_LAST (the newest
# file's mtime, empty when not drained)
drain() {
	local target=$1 stored=$2 deadline q f dir
	deadline=$(awk -v t="$(now)" -v d="$DRAIN_TIMEOUT" 'BEGIN { print t + d }')
	if [ "$target" = mailwerk ]; then dir=$(mw_maildir_new); else dir=$PF_MAILDIR_NEW; fi
	DRAIN_LAST=
	while :; do
		f=$(files_in "$dir")
		if [ "$f" -ge "$stored" ]; then
			if [ "$target" = mailwerk ]; then q=$(mw_count); else q=$(pf_other_count); fi
			if [ "$q" = 0 ]; then
				DRAIN_LAST=$(last_mtime "$dir")
				break
			fi
		fi
		if awk -v t="$(now)" -v d="$deadline" 'BEGIN { exit !(t > d) }'; then
			if [ "$target" = mailwerk ]; then q=$(mw_count); else q=$(pf_other_count); fi
			break
		fi
		sleep 0.1
	done
	DRAIN_QUEUED=$q
	DRAIN_FILES=$(files_in "$dir")
}

# ---- one smtp-source run -----------------------------------------------------------------------
# run_source PORT SIZE SESSIONS MODE COUNT LOG -> sets ELAPSED_T0, ELAPSED_T1, SRC_RC
run_source() {
	local port=$1 size=$2 sessions=$3 mode=$4 count=$5 logf=$6
	local args=(-A -f "$SENDER" -t "$RCPT" -M client.bench.example -l "$size" -s "$sessions" -m "$count")
	[ "$mode" = persist ] && args+=(-d)
	ELAPSED_T0=$(now)
	timeout "$SOURCE_TIMEOUT" smtp-source "${args[@]}" "inet:127.0.0.1:$port" >"$logf" 2>&1 &
	SRC_PID=$!
	SRC_RC=0
	wait "$SRC_PID" || SRC_RC=$?
	ELAPSED_T1=$(now)
	SRC_PID=
}

# check_source TARGET CASE LOG: a non-zero exit (124: timed out) or any output is a failure
check_source() {
	local target=$1 label=$2 logf=$3
	if [ "$SRC_RC" -eq 124 ]; then
		warn "$target, $label: smtp-source timed out after $SOURCE_TIMEOUT s — run INVALID"
		return 1
	elif [ "$SRC_RC" -ne 0 ] || [ -s "$logf" ]; then
		warn "$target, $label: smtp-source exit $SRC_RC, $(wc -l <"$logf") lines of errors, first: $(head -n 1 "$logf") — run INVALID"
		return 1
	fi
	return 0
}

# timed_count BASE SIZE T0 T1 -> BASE, or more when the warm-up (WARMUP messages between T0 and T1)
# shows that BASE messages would take less than RUN_SECONDS; at most MAX_BYTES of bodies. The
# warm-up's rate undershoots the steady rate (it includes the sessions' ramp-up, and a fast server
# finishes it in a fraction of a second), so the count aims at twice RUN_SECONDS at that rate.
timed_count() {
	if [ -n "${BENCH_MSGS:-}" ] || [ "$WARMUP" -eq 0 ]; then
		echo "$1"
		return
	fi
	awk -v base="$1" -v size="$2" -v a="$3" -v b="$4" -v w="$WARMUP" -v secs="$RUN_SECONDS" -v maxb="$MAX_BYTES" 'BEGIN {
		d = b - a; if (d <= 0) d = 1e-3
		n = int(2 * w / d * secs / 100 + 1) * 100   # rounded up to hundreds
		if (n < base) n = base
		if (n * size > maxb) n = int(maxb / size)
		if (n < base) n = base
		print n
	}'
}

# run_target TARGET SIZE SESSIONS MODE BASECOUNT -> sets RUN_RATE (msg/s), RUN_VALID (1/0) and
# RUN_COUNT (timed messages sent). Runs in this shell (not in $(...)): it starts and stops servers
# whose PIDs the cleanup trap needs.
run_target() {
	local target=$1 size=$2 sessions=$3 mode=$4 count=$5
	local label valid=1 port logf got r stored=0
	label="$(size_label "$size") s=$sessions $mode"
	logf=$WORK/source-$target-$size-$sessions-$mode-$RUN_N.log
	RUN_N=$((RUN_N + 1))
	case $target in
	mailwerk) mw_start; port=$MW_PORT ;;
	postfix)
		pf_reset
		[ -z "$PF_MAILDIR_NEW" ] || [ ! -d "$PF_MAILDIR_NEW" ] || find "$PF_MAILDIR_NEW" -type f -delete
		port=$PF_PORT
		;;
	sink) port=$SINK_PORT ;;
	esac
	if [ "$WARMUP" -gt 0 ]; then
		# untimed warm-up of the same shape: no server is timed cold, and its rate sizes the timed
		# run; its messages stay in the queue and are counted below
		run_source "$port" "$size" "$sessions" "$mode" "$WARMUP" "$logf.warmup"
		check_source "$target" "$label (warm-up)" "$logf.warmup" || valid=0
		count=$(timed_count "$count" "$size" "$ELAPSED_T0" "$ELAPSED_T1")
	fi
	run_source "$port" "$size" "$sessions" "$mode" "$count" "$logf"
	r=$(rate "$count" "$ELAPSED_T0" "$ELAPSED_T1")
	check_source "$target" "$label" "$logf" || valid=0
	stored=$((WARMUP + count))
	RUN_DRATE=-
	RUN_LAST=-
	if [ "$DELIVERY" = deliver ] && [ "$target" != sink ]; then
		drain "$target" "$stored"
		if [ $((DRAIN_QUEUED + DRAIN_FILES)) -ne "$stored" ]; then
			warn "$target, $label (deliver): sent $WARMUP + $count messages but $DRAIN_QUEUED are queued and $DRAIN_FILES delivered — run INVALID (messages lost)"
			valid=0
		elif [ -z "$DRAIN_LAST" ]; then
			warn "$target, $label (deliver): $DRAIN_QUEUED of $stored messages still queued after $DRAIN_TIMEOUT s (none lost): no delivery rate"
		else
			RUN_LAST=$(awk -v a="$ELAPSED_T1" -v b="$DRAIN_LAST" 'BEGIN { d = b - a; if (d < 0) d = 0; printf "%.2f", d }')
			RUN_DRATE=$(rate "$count" "$ELAPSED_T0" "$DRAIN_LAST")
		fi
	fi
	case $target in
	mailwerk)
		if [ "$DELIVERY" = deliver ]; then
			got=$stored # counted above, queue and Maildir together
		else
			got=$(mw_count)
		fi
		if [ "$got" != "$stored" ]; then
			warn "mailwerk, $label: sent $WARMUP + $count messages but 'queue list --json' has $got entries — run INVALID (messages lost or not queued)"
			valid=0
		fi
		if [ "$size" = 1024 ] && [ "$sessions" = 50 ] && [ "$DELIVERY" = accept ]; then
			MEM_MW[$mode]=$(python3 "$BENCH_DIR/memstat.py" proc "$MW_PID")
		fi
		kill -0 "$MW_PID" 2>/dev/null || { warn "mailwerk, $label: the server died during the run ($(tail -n 3 "$WORK/mailwerk-$MW_N.serve.log"))"; valid=0; }
		mw_stop
		# its queue is counted: free the disk for the next run (the .init.log and .serve.log beside it stay)
		[ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$WORK/mailwerk-$MW_N"
		;;
	postfix)
		if [ "$DELIVERY" = accept ]; then
			got=$(pf_hold_count)
			if [ "$got" -ne "$stored" ]; then
				warn "postfix, $label: sent $WARMUP + $count messages but the hold queue has $got — run INVALID"
				valid=0
			fi
			if [ "$(pf_other_count)" -ne 0 ]; then
				warn "postfix, $label: messages outside the hold queue ($(pf_other_count)): the HOLD rule did not apply"
				valid=0
			fi
		fi
		if [ "$size" = 1024 ] && [ "$sessions" = 50 ] && [ "$DELIVERY" = accept ]; then
			MEM_PF[$mode]=$(python3 "$BENCH_DIR/memstat.py" postfix "$PF_QUEUE")
		fi
		;;
	sink)
		kill -0 "$SINK_PID" 2>/dev/null || { warn "smtp-sink died during the run"; valid=0; }
		;;
	esac
	log "$(printf '%-8s %-16s %-7s %6d msgs in %7.2f s = %9s msg/s%s%s' "$target" "$label" "$DELIVERY" "$count" \
		"$(awk -v a="$ELAPSED_T0" -v b="$ELAPSED_T1" 'BEGIN { print b - a }')" "$r" \
		"$([ "$RUN_DRATE" = - ] || echo "; delivered $RUN_DRATE msg/s, last file $RUN_LAST s after the last 250")" \
		"$([ $valid = 1 ] || echo ' INVALID')")"
	RUN_RATE=$r
	RUN_VALID=$valid
	RUN_COUNT=$count
}

# ---- start ----------------------------------------------------------------------------------------
echo "mailwerk accept benchmark — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
bench_machine "$WORK"
echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews every figure)"
dsync=$( { dd if=/dev/zero of="$WORK/dsync-probe" bs=4k count=500 oflag=dsync 2>&1 >/dev/null || true; } | awk '/copied/ { for (i = 1; i < NF; i++) if ($i == "s,") print $(i - 1) }')
rm -f "$WORK/dsync-probe"
echo "disk: $(awk -v t="$dsync" 'BEGIN { if (t > 0) printf "%.0f", 500 / t; else print "?" }') synchronous 4 KiB writes/s (dd oflag=dsync): the ceiling of one fsync per message"
echo "peers: Postfix $(postconf -dh mail_version 2>/dev/null) (private instance: HOLD to accept only, virtual(8) to deliver) and smtp-sink; client: smtp-source (no pipelining)"
if [ "$QUICK" = 1 ]; then
	echo "QUICK mode: fewer cases, at least $(count_for 1024 50) messages and $RUN_SECONDS s per run (short runs are noisier)"
fi
if [ "$MAILWERK_SKIP" = 1 ]; then
	echo "MAILWERK_SKIP=1: measuring only the peers"
else
	echo "mailwerk: $MAILWERK"
fi

# pf_use accept|deliver: sets up (stopped) the private Postfix for that kind of run: a HOLD rule that
# keeps every message queued, or virtual(8) delivering into one Maildir
pf_use() {
	pf_stop
	if [ "$1" = accept ]; then
		mkdir -p "$WORK/pf-hold"
		pf_setup "$WORK/pf-hold" "$PF_PORT" "$BENCH_DIR/postfix"
		PF_MAILDIR_NEW=
	else
		mkdir -p "$WORK/pf-deliver/postfix-mail"
		chown 65534:65534 "$WORK/pf-deliver/postfix-mail" # virtual(8) writes as virtual_uid_maps (nobody)
		pf_setup "$WORK/pf-deliver" "$PF_PORT" "$BENCH_DIR/postfix-delivery"
		PF_MAILDIR_NEW=$WORK/pf-deliver/postfix-mail/Maildir/new
	fi
}
chmod 755 "$WORK" # Postfix's virtual agent (nobody) reaches its Maildir
PF_PORT=$(free_port)
pf_use "${DELIVERIES[0]}"
pf_start
log "postfix listening on 127.0.0.1:$PF_PORT (config $PF_CONF)"

SINK_PORT=$(free_port)
smtp-sink -u nobody "127.0.0.1:$SINK_PORT" 256 >"$WORK/smtp-sink.log" 2>&1 &
SINK_PID=$!
wait_port "$SINK_PORT" 10 "$SINK_PID" || die "smtp-sink did not accept on 127.0.0.1:$SINK_PORT: $(cat "$WORK/smtp-sink.log")"
log "smtp-sink listening on 127.0.0.1:$SINK_PORT"

if [ "$MAILWERK_SKIP" = 1 ]; then
	TARGETS=(postfix sink)
	RCPT=${RCPT:-user@bench.test}
else
	TARGETS=(mailwerk postfix sink)
fi
if [ -n "$RCPT" ]; then
	echo "sender $SENDER, recipient $RCPT; $BENCH_REPEAT run(s) per cell, median shown"
else
	echo "sender $SENDER, recipient: the demo user mailwerk init prints (else user@bench.test); $BENCH_REPEAT run(s) per cell, median shown"
fi
echo

declare -A RES      # RES[target|case] = "rate valid least" of the accept runs
declare -A RESD     # RESD[target|case] = "rate valid least delivered-rate last-file-seconds" of the deliver runs
CASES_D=()
declare -A MEM_MW   # by mode: memstat output for mailwerk after the 50-session 1 KiB run
declare -A MEM_PF   # by mode: Postfix total after the same case
CASES=()
RUN_N=0
for DELIVERY in "${DELIVERIES[@]}"; do
	pf_use "$DELIVERY"
	for size in "${SIZES[@]}"; do
		for sessions in "${SESSIONS[@]}"; do
			for mode in "${MODES[@]}"; do
				count=$(count_for "$size" "$sessions")
				key="$size|$sessions|$mode|$count"
				if [ "$DELIVERY" = accept ]; then CASES+=("$key"); else CASES_D+=("$key"); fi
				# a fresh Postfix per case: its process pool (and the memory figure) reflects this case only
				pf_stop
				pf_start
				for target in "${TARGETS[@]}"; do
					[ "$DELIVERY" = accept ] || [ "$target" != sink ] || continue # the sink delivers nothing
					rates=()
					drates=()
					lasts=()
					allvalid=1
					least=
					for ((rep = 0; rep < BENCH_REPEAT; rep++)); do
						run_target "$target" "$size" "$sessions" "$mode" "$count"
						rates+=("$RUN_RATE")
						[ "$RUN_DRATE" = - ] || drates+=("$RUN_DRATE")
						[ "$RUN_LAST" = - ] || lasts+=("$RUN_LAST")
						[ "$RUN_VALID" = 1 ] || allvalid=0
						if [ -z "$least" ] || [ "$RUN_COUNT" -lt "$least" ]; then least=$RUN_COUNT; fi
					done
					if [ "$DELIVERY" = accept ]; then
						RES["$target|$key"]="$(median "${rates[@]}") $allvalid $least"
					else
						d=-
						l=-
						# a delivery rate only when every repeat emptied its queue
						if [ ${#drates[@]} -eq "$BENCH_REPEAT" ]; then d=$(median "${drates[@]}"); l=$(median "${lasts[@]}"); fi
						RESD["$target|$key"]="$(median "${rates[@]}") $allvalid $least $d $l"
					fi
				done
			done
		done
	done
done

# ---- report ------------------------------------------------------------------------------------
# cell TARGET KEY -> the median rate, with "!" when a run of that cell was invalid; "-" when not run
cell() {
	local v=${RES["$1|$2"]:-}
	[ -n "$v" ] || { echo "-"; return; }
	local r ok
	read -r r ok _ <<<"$v"
	if [ "$ok" = 1 ]; then echo "$r"; else echo "$r!"; fi
}
num() { echo "${1%!}"; }

if [ ${#CASES[@]} -gt 0 ]; then
echo
echo "1. Accept only: messages per second, each durably stored before its 250 and then held (mailwerk:"
echo "[delivery] hold = yes; Postfix: a HOLD rule), counted back from the queues; smtp-sink discards."
echo "Each timed run follows $WARMUP untimed warm-up messages and sends at least the base count, more"
echo "when the warm-up shows it would last under $RUN_SECONDS s. msgs = timed messages per run for"
echo "mailwerk/postfix/sink (the least over repeats). ! = invalid run (see WARNING lines)."
echo
# msgs_of TARGET KEY -> the least timed count of that cell, "-" when not run
msgs_of() {
	local v=${RES["$1|$2"]:-} n
	[ -n "$v" ] || { echo "-"; return; }
	read -r _ _ n <<<"$v"
	echo "$n"
}
row() { printf '%-28s %19s %14s %14s %17s %12s %18s %17s\n' "$@"; }
row "case" "msgs" "mailwerk msg/s" "postfix msg/s" "mailwerk/postfix" "sink msg/s" "mailwerk % of sink" "postfix % of sink"
row "----" "----" "--------------" "-------------" "----------------" "----------" "------------------" "-----------------"
for key in "${CASES[@]}"; do
	IFS='|' read -r size sessions mode count <<<"$key"
	mw=$(cell mailwerk "$key")
	pf=$(cell postfix "$key")
	sk=$(cell sink "$key")
	label="$(size_label "$size"), $sessions sess, $([ "$mode" = persist ] && echo "persistent" || echo "1 msg/conn")"
	row "$label" "$(msgs_of mailwerk "$key")/$(msgs_of postfix "$key")/$(msgs_of sink "$key")" "$mw" "$pf" "$(ratio "$(num "$mw")" "$(num "$pf")")" "$sk" \
		"$(percent "$(num "$mw")" "$(num "$sk")")" "$(percent "$(num "$pf")" "$(num "$sk")")"
done
fi

# cell_d TARGET KEY FIELD -> field 1 (accept rate), 4 (delivered rate) or 5 (last file, s) of a
# deliver cell, with "!" when a run of it was invalid; "-" when not run or not measured
cell_d() {
	local v=${RESD["$1|$2"]:-} f ok
	[ -n "$v" ] || { echo "-"; return; }
	f=$(awk -v i="$3" '{ print $i }' <<<"$v")
	ok=$(awk '{ print $2 }' <<<"$v")
	if [ "$ok" = 1 ] || [ "$f" = - ]; then echo "$f"; else echo "$f!"; fi
}
if [ ${#CASES_D[@]} -gt 0 ]; then
	echo
	echo "2. Accept + local delivery: both servers deliver into a Maildir (mailwerk locally, Postfix with"
	echo "virtual(8)) while they accept. accepted = messages per second from the first connection to the"
	echo "last 250; delivered = timed messages per second from the first connection until the last file"
	echo "landed in new/; last file = seconds from the last 250 to the last file. Counted back from the"
	echo "Maildirs once the queues are empty. ! = invalid run (a message missing)."
	echo
	rowd() { printf '%-28s %9s %9s %7s %10s %10s %7s %10s %10s\n' "$@"; }
	rowd "case" "accepted" "" "" "delivered" "" "" "last file" ""
	rowd "" "mailwerk" "postfix" "ratio" "mailwerk" "postfix" "ratio" "mailwerk" "postfix"
	rowd "----" "--------" "-------" "-----" "---------" "-------" "-----" "---------" "-------"
	for key in "${CASES_D[@]}"; do
		IFS='|' read -r size sessions mode count <<<"$key"
		label="$(size_label "$size"), $sessions sess, $([ "$mode" = persist ] && echo "persistent" || echo "1 msg/conn")"
		ma=$(cell_d mailwerk "$key" 1)
		pa=$(cell_d postfix "$key" 1)
		md=$(cell_d mailwerk "$key" 4)
		pd=$(cell_d postfix "$key" 4)
		rowd "$label" "$ma" "$pa" "$(ratio "$(num "$ma")" "$(num "$pa")")" "$md" "$pd" "$(ratio "$(num "$md")" "$(num "$pd")")" \
			"$(cell_d mailwerk "$key" 5)" "$(cell_d postfix "$key" 5)"
	done
fi
for size in "${SIZES[@]}"; do
	for sessions in "${SESSIONS[@]}"; do
		count=$(count_for "$size" "$sessions")
		if [ "$count" -lt 2000 ] && [ -z "${BENCH_MSGS:-}" ] && [ "$QUICK" != 1 ]; then
			echo "note: $(size_label "$size") with $sessions session(s) starts from $count messages per run, not 2000 (to keep the run short)"
		fi
	done
done

echo
for mode in "${MODES[@]}"; do
	[ -n "${MEM_MW[$mode]:-}${MEM_PF[$mode]:-}" ] || continue
	echo "memory at the end of the 50-session 1 KiB run, $(mode_label "$mode"):"
	if [ -n "${MEM_MW[$mode]:-}" ]; then
		read -r a b c <<<"${MEM_MW[$mode]}"
		echo "  mailwerk: peak RSS (VmHWM) ${a#hwm=} KiB; at that moment RSS ${b#rss=} KiB, Pss ${c#pss=} KiB"
	fi
	if [ -n "${MEM_PF[$mode]:-}" ]; then
		read -r a b c <<<"${MEM_PF[$mode]}"
		echo "  postfix:  total Pss ${a#pss=} KiB over ${c#procs=} processes (master and its children; sum of RSS ${b#rss=} KiB)"
	fi
done

# summary: the 50-session 1 KiB case in each connection mode that was run
echo
for mode in "${MODES[@]}"; do
	key="1024|50|$mode|$(count_for 1024 50)"
	[[ " ${CASES[*]} " == *" $key "* ]] || continue
	tag=""
	[ "$mode" = persist ] && tag="   [persistent connections, -d]"
	[ "$mode" = conn ] && tag="   [one message per connection]"
	if [ "$MAILWERK_SKIP" = 1 ]; then
		echo "mailwerk/postfix at 50 sessions 1KiB: skipped (MAILWERK_SKIP=1)$tag"
		echo "mailwerk vs smtp-sink ceiling: skipped (MAILWERK_SKIP=1); postfix is $(percent "$(num "$(cell postfix "$key")")" "$(num "$(cell sink "$key")")")% of smtp-sink$tag"
		continue
	fi
	mw=$(cell mailwerk "$key")
	pf=$(cell postfix "$key")
	sk=$(cell sink "$key")
	x=$(ratio "$(num "$mw")" "$(num "$pf")")
	p=$(percent "$(num "$mw")" "$(num "$sk")")
	invalid=""
	[[ "$mw$pf$sk" == *'!'* ]] && invalid=" INVALID: a run lost or refused messages"
	met_x=$(awk -v v="$x" 'BEGIN { print (v != "-" && v + 0 >= 3) ? "met" : "NOT met" }')
	met_p=$(awk -v v="$p" 'BEGIN { print (v != "-" && v + 0 >= 40) ? "met" : "NOT met" }')
	echo "mailwerk/postfix at 50 sessions 1KiB: ${x}x (target >= 3x) $met_x$invalid$tag"
	echo "mailwerk vs smtp-sink ceiling: ${p}% (target >= 40%) $met_p$invalid$tag"
done

if [ ${#WARNINGS[@]} -gt 0 ]; then
	echo
	echo "WARNING: ${#WARNINGS[@]} problem(s); the cells marked ! are INVALID:"
	printf '  - %s\n' "${WARNINGS[@]}"
	exit 1
fi
