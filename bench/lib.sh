# shellcheck shell=bash
# bench/lib.sh — helpers the bench/*.sh scripts share (sourced, not run). Every wait here is bounded.

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

WARNINGS=()
# A loud line on stdout, also repeated at the end: a run with lost or refused messages is invalid.
warn() {
	printf '\nWARNING: %s\n\n' "$*"
	WARNINGS+=("$*")
}

now() { date +%s.%N; }

# A fresh work directory under $BENCH_TMPDIR, refused on tmpfs, where fsync would cost nothing.
bench_workdir() {
	mkdir -p "$BENCH_TMPDIR"
	local fstype
	fstype=$(stat -f -c %T "$BENCH_TMPDIR")
	case "$fstype" in
	tmpfs | ramfs) die "$BENCH_TMPDIR is $fstype: fsync would cost nothing there; set BENCH_TMPDIR to a directory on a real disk" ;;
	esac
	mktemp -d "$BENCH_TMPDIR/$1.XXXXXX"
}

# The machine and the file system of the work directory $1, for a report's header.
bench_machine() {
	echo "machine: $(nproc) cores, $(uname -sr); work dir $1 on $(stat -f -c %T "$1") ($(df -h --output=source,size,avail "$1" | tail -n 1 | tr -s ' '))"
}

# A TCP port on 127.0.0.1 that nobody listens on right now.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# port_accepts PORT: true when a TCP connection to 127.0.0.1:PORT succeeds.
port_accepts() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_port PORT SECONDS [PID]: waits until the port accepts; fails after SECONDS, or as soon as PID
# (the server that should open it) has exited.
wait_port() {
	local port=$1 secs=$2 pid=${3:-} i
	for ((i = 0; i < secs * 10; i++)); do
		port_accepts "$port" && return 0
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
			return 1
		fi
		sleep 0.1
	done
	return 1
}

# stop_pid PID NAME: SIGTERM, up to 10 s for it to exit, then SIGKILL. Reaps it when it is our child.
stop_pid() {
	local pid=$1 name=$2 i
	[ -n "$pid" ] || return 0
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			log "$name (pid $pid) still running 10 s after SIGTERM: SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	wait "$pid" 2>/dev/null || true
}

# ---- cleanup on exit -----------------------------------------------------------------------------
# A script lists what to undo, in the order it must happen, then calls bench_on_exit once. Variables
# are named, not their values: they are read at exit, so a server restarted (or not yet started)
# under the same variable is handled as it stands then.
#   bench_cleanup_pid VAR NAME     stop_pid "$VAR" NAME, when VAR is not empty
#   bench_cleanup_pids ARRAY NAME  stop_pid of every value of the (associative) array, as "NAME (key)"
#   bench_cleanup_call FUNC        FUNC (e.g. pf_stop, which knows whether Postfix was started)
#   bench_cleanup_dir VAR          rm -rf "$VAR", or keep it and say so when BENCH_KEEP=1
BENCH_CLEANUP_KIND=()
BENCH_CLEANUP_ARG=()
BENCH_CLEANUP_NAME=()
BENCH_CLEANED=0

bench_cleanup_add() {
	BENCH_CLEANUP_KIND+=("$1")
	BENCH_CLEANUP_ARG+=("$2")
	BENCH_CLEANUP_NAME+=("${3:-}")
}
bench_cleanup_pid() { bench_cleanup_add pid "$1" "$2"; }
bench_cleanup_pids() { bench_cleanup_add pids "$1" "$2"; }
bench_cleanup_call() { bench_cleanup_add call "$1"; }
bench_cleanup_dir() { bench_cleanup_add dir "$1"; }

# bench_stop_each ARRAY NAME: stop_pid of every value of ARRAY, named "NAME (key)"
bench_stop_each() {
	local -n bench_arr=$1
	local k
	for k in "${!bench_arr[@]}"; do stop_pid "${bench_arr[$k]}" "$2 ($k)"; done
}

# The EXIT trap: runs once (an INT or TERM exits through it), with errors ignored and further signals
# held off so that a second ^C cannot leave a server running; keeps the script's exit status. Only
# the script itself cleans up: a child forked with '&' still has the traps until it execs, and one
# stopped in that moment must not remove the work dir under the script.
bench_cleanup() {
	local rc=$? i arg name
	[ "$BASHPID" = "$$" ] || return
	[ "$BENCH_CLEANED" = 1 ] && return
	BENCH_CLEANED=1
	set +e
	trap '' INT TERM
	for i in "${!BENCH_CLEANUP_KIND[@]}"; do
		arg=${BENCH_CLEANUP_ARG[$i]}
		name=${BENCH_CLEANUP_NAME[$i]}
		case ${BENCH_CLEANUP_KIND[$i]} in
		pid) [ -n "${!arg:-}" ] && stop_pid "${!arg}" "$name" ;;
		pids) bench_stop_each "$arg" "$name" ;;
		call) "$arg" ;;
		dir)
			if [ "${BENCH_KEEP:-0}" = 1 ]; then
				log "work dir kept: ${!arg}"
			else
				rm -rf "${!arg}"
			fi
			;;
		esac
	done
	exit "$rc"
}

bench_on_exit() {
	trap bench_cleanup EXIT
	trap 'log "interrupted"; exit 130' INT
	trap 'log "terminated"; exit 143' TERM
}

# rate COUNT T0 T1 -> messages per second, one decimal
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { d = b - a; if (d <= 0) d = 1e-9; printf "%.1f", n / d }'; }
# ratio A B -> A/B with two decimals, "-" when either is missing
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
# percent A B -> 100*A/B rounded, "-" when either is missing
percent() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.0f", 100 * a / b }'; }
# median of the arguments (numbers), one decimal
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) m = v[(NR + 1) / 2]; else m = (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.1f", m }'; }

# ---- private Postfix instance ------------------------------------------------------------------
# Layout under $1 (the work dir): postfix/conf (main.cf, master.cf), postfix/queue, postfix/data,
# postfix/maillog.

# pf_setup WORK PORT TEMPLATE_DIR
pf_setup() {
	local work=$1 port=$2 tdir=$3 d=$1/postfix
	PF_CONF=$d/conf
	PF_QUEUE=$d/queue
	PF_DATA=$d/data
	PF_LOG=$d/maillog
	PF_PORT=$port
	mkdir -p "$PF_CONF" "$PF_QUEUE" "$PF_DATA"
	# Postfix daemons run as the postfix user and must reach the queue through these directories.
	chmod 755 "$work" "$d"
	chown postfix "$PF_DATA" # else start-up fails on master.lock
	sed -e "s|@CONF_DIR@|$PF_CONF|" -e "s|@QUEUE_DIR@|$PF_QUEUE|" -e "s|@DATA_DIR@|$PF_DATA|" \
		-e "s|@LOG_FILE@|$PF_LOG|" -e "s|@WORK_DIR@|$work|" "$tdir/main.cf.in" >"$PF_CONF/main.cf"
	sed -e "s|@LISTEN@|127.0.0.1:$port|" "$tdir/master.cf.in" >"$PF_CONF/master.cf"
	postfix -c "$PF_CONF" check >"$d/check.log" 2>&1 || die "postfix check failed: $(cat "$d/check.log")"
}

pf_master_pid() {
	local f=$PF_QUEUE/pid/master.pid
	[ -r "$f" ] && tr -d ' \n' <"$f"
}

pf_start() {
	postfix -c "$PF_CONF" start >>"$PF_CONF/../start.log" 2>&1 || die "postfix start failed: $(cat "$PF_CONF/../start.log")"
	PF_STARTED=1
	wait_port "$PF_PORT" 15 || die "postfix did not accept on 127.0.0.1:$PF_PORT within 15 s (see $PF_LOG)"
}

pf_stop() {
	[ "${PF_STARTED:-0}" = 1 ] || return 0
	local pid i
	pid=$(pf_master_pid || true)
	postfix -c "$PF_CONF" stop >>"$PF_CONF/../start.log" 2>&1 || true
	if [ -n "$pid" ]; then
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			log "postfix master (pid $pid) still running 10 s after 'postfix stop': abort"
			postfix -c "$PF_CONF" abort >/dev/null 2>&1 || true
			sleep 1
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	PF_STARTED=0
}

pf_hold_count() { find "$PF_QUEUE/hold" -type f | wc -l; }
# every queue but hold: must stay empty (nothing is delivered or deferred)
pf_other_count() { find "$PF_QUEUE/incoming" "$PF_QUEUE/active" "$PF_QUEUE/deferred" "$PF_QUEUE/maildrop" -type f 2>/dev/null | wc -l; }

pf_reset() {
	postsuper -c "$PF_CONF" -d ALL hold >/dev/null 2>&1 || true
	local n
	n=$(pf_hold_count)
	[ "$n" -eq 0 ] || die "postsuper left $n messages in $PF_QUEUE/hold"
}
