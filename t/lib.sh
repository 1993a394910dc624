# lib.sh: running real shoald processes from shell tests.
#
# Every daemon gets a watchdog that SIGKILLs it after $WATCHDOG seconds, so a
# hung test cannot hang CI; every process a test starts is recorded and
# killed by PID at exit.  (Not timeout(1): signals sent to it are re-sent to
# its whole process group, and its PID is not the daemon's.)
# Timeouts scale with SHOAL_TIMEOUT_SCALE (the sanitizer build sets it).
# KEEP_TESTDIR=1 keeps the test's directory (logs, data dirs) for a look.

: "${top_builddir:=.}"
: "${top_srcdir:=.}"
SHOALD=$top_builddir/src/server/shoald
SCALE=${SHOAL_TIMEOUT_SCALE:-1}
# Under the sanitizers every process runs several times slower: the raft
# timers scale too (doc/replication.md, "Timeouts"); 1: the defaults.
RAFT_ARGS=
[ "$SCALE" -gt 1 ] &&
	RAFT_ARGS="--raft-election-timeout-ms $((400 * SCALE)) --raft-heartbeat-ms $((40 * SCALE))"
WATCHDOG=$((120 * SCALE))

TESTDIR=$(mktemp -d "${TMPDIR:-/tmp}/shoal-t-XXXXXX") || exit 1
started_pids=

# Only processes still ours are killed: a recorded PID whose process
# ended long ago may name another process by now (PIDs wrap at 32768 on a
# busy machine: SIGKILLed strangers were seen ending other tests without
# their plan line).  A child of this shell (alive, or a zombie not yet
# waited for) keeps its PID: its parent in /proc/PID/stat is this shell.
kill_ours() {
	for p in $started_pids; do
		st=$(cat "/proc/$p/stat" 2>/dev/null) || continue
		set -- ${st##*) }
		[ "$2" = "$$" ] && kill -9 "$p" 2>/dev/null
	done
}
cleanup() {
	kill_ours
	if [ -n "${KEEP_TESTDIR:-}" ]; then echo "# kept $TESTDIR"; else rm -rf "$TESTDIR"; fi
}
trap cleanup EXIT

# start_shoald LOGFILE ARGS...: start in the background on a free base port
# that t/freeport found by binding (ARGS may override it: a later
# --listen-base-port wins); sets $pid and $node_base (leaves $base alone).
start_shoald() {
	log=$1; shift
	node_base=$("$top_builddir/t/freeport") || node_base=747
	"$SHOALD" --listen-base-port "$node_base" "$@" >"$log.out" 2>"$log" &
	pid=$!
	watch_pid "$pid"
}

# watch_pid PID: kill PID at exit, and with SIGKILL after $WATCHDOG seconds.
watch_pid() {
	(i=0; while [ $i -lt "$WATCHDOG" ] && kill -0 "$1"; do sleep 1; i=$((i + 1)); done
	 [ $i -ge "$WATCHDOG" ] && kill -9 "$1") >/dev/null 2>&1 &
	started_pids="$started_pids $1 $!"
}

# wait_for FILE PATTERN SECONDS: wait until FILE contains PATTERN.
wait_for() {
	deadline=$(( $(date +%s) + $3 * SCALE ))
	while ! grep -q -- "$2" "$1" 2>/dev/null; do
		[ "$(date +%s)" -ge "$deadline" ] && return 1
		sleep 0.05
	done
}

# wait_exit PID MILLISECONDS: wait for PID to exit; sets $status; fails on timeout.
wait_exit() {
	i=0
	limit=$(( $2 / 20 * SCALE ))
	while kill -0 "$1" 2>/dev/null; do
		i=$((i + 1))
		[ "$i" -gt "$limit" ] && return 1
		sleep 0.02
	done
	wait "$1"
	status=$?
}

# used_ports: every local port that has a socket (TCP or UDP, IPv4 or IPv6).
used_ports() {
	for f in /proc/net/tcp /proc/net/tcp6 /proc/net/udp /proc/net/udp6; do
		[ -r "$f" ] && awk 'NR > 1 { n = split($2, a, ":"); print a[n] }' "$f"
	done | sort -u | while read -r h; do echo $((0x$h)); done
}

# free_base_port COUNT: set $base to a listen.base_port B such that the
# cluster, client and REST ports of B, B+1, ..., B+COUNT-1 are all free.
# B is random in 1100..3099, so that the ports (11001..31033) stay below the
# kernel's ephemeral range and parallel tests rarely draw the same one.
free_base_port() {
	used=" $(used_ports | tr '\n' ' ') "
	tries=0
	while [ $tries -lt 50 ]; do
		tries=$((tries + 1))
		b=$((1100 + $(od -An -N2 -tu2 /dev/urandom) % 2000))
		i=0
		clash=no
		while [ $i -lt "$1" ]; do
			for k in 1 2 3; do
				case "$used" in *" $(((b + i) * 10 + k)) "*) clash=yes ;; esac
			done
			i=$((i + 1))
		done
		[ $clash = no ] && { base=$b; return 0; }
	done
	return 1
}
