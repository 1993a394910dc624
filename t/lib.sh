# lib.sh: running real shoald processes from shell tests.
#
# Every daemon gets a watchdog that SIGKILLs it after $WATCHDOG seconds, so a
# hung test cannot hang CI; every process a test starts is recorded and
# killed by PID at exit.  (Not timeout(1): signals sent to it are re-sent to
# its whole process group, and its PID is not the daemon's.)
# Timeouts scale with SHOAL_TIMEOUT_SCALE (the sanitizer build sets it).

: "${top_builddir:=.}"
: "${top_srcdir:=.}"
SHOALD=$top_builddir/src/server/shoald
SCALE=${SHOAL_TIMEOUT_SCALE:-1}
WATCHDOG=$((120 * SCALE))

TESTDIR=$(mktemp -d "${TMPDIR:-/tmp}/shoal-t-XXXXXX") || exit 1
started_pids=

cleanup() {
	for p in $started_pids; do kill -9 "$p" 2>/dev/null; done
	rm -rf "$TESTDIR"
}
trap cleanup EXIT

# free_base_port: a base port whose listeners B1..B3 are free (t/freeport).
free_base_port() { "$top_builddir/t/freeport"; }

# start_shoald LOGFILE ARGS...: start in the background on a free base port
# (ARGS may override it); sets $pid and $base.
start_shoald() {
	log=$1; shift
	base=$(free_base_port) || base=747
	"$SHOALD" --listen-base-port "$base" "$@" >"$log.out" 2>"$log" &
	pid=$!
	(i=0; while [ $i -lt "$WATCHDOG" ] && kill -0 "$pid"; do sleep 1; i=$((i + 1)); done
	 kill -9 "$pid") >/dev/null 2>&1 &
	started_pids="$started_pids $pid $!"
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
