#!/bin/sh
# run.sh: the etcd reference of the replication benchmark, end to end
# (README.md here; the figures go to doc/benchmarks.md, "Replication: the
# etcd reference").
#
#   contrib/bench/etcd/run.sh
#
# Builds etcd_load into a temporary directory, starts a 3-member etcd
# cluster (etcd_cluster.sh) in another, runs put at each concurrency of
# $CONCURRENCIES for $DURATION s (after $WARMUP s of warm-up) once against
# every member and once against the leader only, then failover with $ROUNDS
# rounds, and prints the figures.  The cluster is stopped on every way out
# (trap), by the PIDs etcd_cluster.sh recorded; the temporary directories
# are removed unless KEEP=1.  Every step runs under timeout(1); all traffic
# is on 127.0.0.1.
#
# Settings (environment): CONCURRENCIES ("1 16 64"), DURATION (10),
# WARMUP (1), TARGETS ("all leader"), ROUNDS (10), RATE (150 puts/s during
# failover), CC (cc), TMPDIR (where both directories go; must not be a
# tmpfs, or fsync costs nothing), KEEP (0).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
CONCURRENCIES=${CONCURRENCIES:-1 16 64}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-1}
TARGETS=${TARGETS:-all leader}
ROUNDS=${ROUNDS:-10}
RATE=${RATE:-150}
CC=${CC:-cc}
KEEP=${KEEP:-0}
script=$here/etcd_cluster.sh

bin=
data=
cleanup() {
	rc=$?
	trap - EXIT INT TERM
	if [ -n "$data" ] && [ -r "$data/cluster.env" ]; then
		timeout 60 "$script" stop "$data" || echo "run.sh: stopping the cluster failed" >&2
	fi
	if [ "$KEEP" = 1 ]; then
		echo "run.sh: kept $bin and $data" >&2
	else
		[ -z "$bin" ] || rm -rf "$bin"
		[ -z "$data" ] || rm -rf "$data"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bin=$(mktemp -d "${TMPDIR:-/tmp}/etcd-bench-bin.XXXXXX")
data=$(mktemp -d "${TMPDIR:-/tmp}/etcd-bench-data.XXXXXX")

fstype=$(stat -f -c %T "$data")
case "$fstype" in
tmpfs | ramfs)
	echo "run.sh: $data is on $fstype, where fsync is free: set TMPDIR to a real disk" >&2
	exit 1
	;;
esac

echo "== build"
"$CC" -O2 -Wall -Wextra -Werror -o "$bin/etcd_load" "$here/etcd_load.c" -levent
load=$bin/etcd_load

echo "== machine"
echo "nproc: $(nproc)"
echo "cpu: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
dev=$(df --output=source "$data" | tail -n 1)
blk=$(basename "$dev")
rot=$(cat "/sys/block/$blk/queue/rotational" 2>/dev/null || echo "?")
echo "data dir: $data ($fstype on $dev, rotational=$rot)"
# what one synchronous 4 KiB write costs there (etcd fsyncs its WAL per batch)
probe=$(timeout 60 dd if=/dev/zero of="$data/fsync-probe" bs=4k count=200 oflag=dsync 2>&1 |
	awk '/copied/ { for (i = 1; i <= NF; i++) if ($i ~ /^s,?$/) print $(i - 1) }' | tr ',' '.')
rm -f "$data/fsync-probe"
[ -n "$probe" ] && echo "fsync probe: 200 x 4 KiB O_DSYNC writes in $probe s" \
	"($(awk -v t="$probe" 'BEGIN { printf "%.2f", t * 1000 / 200 }') ms each)"
echo "etcd: $(etcd --version | awk '/etcd Version/ { print $3 }'), $(etcd --version |
	awk '/Go Version/ { print $3 }')"

echo "== cluster"
timeout 120 "$script" start "$data"
echo "leader: $(timeout 30 "$script" leader "$data")"

results=$bin/results
: >"$results"
# record CMD...: run CMD, show its output and append it to $results; stop
# the script if CMD fails (a pipe into tee would hide its status)
record() {
	rm -f "$bin/rc"
	{
		st=0
		"$@" || st=$?
		echo "$st" >"$bin/rc"
	} | tee -a "$results"
	st=$(cat "$bin/rc" 2>/dev/null || echo 1)
	if [ "$st" != 0 ]; then
		echo "run.sh: failed ($st): $*" >&2
		exit 1
	fi
}
echo "== put: ${DURATION} s per run after ${WARMUP} s of warm-up"
for c in $CONCURRENCIES; do
	for t in $TARGETS; do
		case "$t" in
		all) opt= ;;
		leader) opt=--leader-only ;;
		*)
			echo "run.sh: unknown target '$t' (all, leader)" >&2
			exit 1
			;;
		esac
		# shellcheck disable=SC2086 # $opt is empty or one word
		record timeout $((DURATION + WARMUP + 60)) "$load" put --cluster "$data" \
			--script "$script" --concurrency "$c" --duration "$DURATION" \
			--warmup "$WARMUP" $opt
	done
done
echo "leader after the put runs: $(timeout 30 "$script" leader "$data")"

echo "== failover: $ROUNDS rounds"
# etcd_load bounds each round itself (settle, 30 s for the ack, 90 s per
# script call); this is the watchdog over all of them
record timeout $((ROUNDS * 300)) "$load" failover --cluster "$data" --script "$script" \
	--rounds "$ROUNDS" --rate "$RATE"
timeout 30 "$script" status "$data"

echo "== figures"
awk '
/^put / {
	for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
	printf "put   C=%-3s %-6s %9s puts/s  p50 %7s ms  p99 %7s ms  errors %s\n",
		f["concurrency"], f["target"], f["ops_per_s"], f["p50_ms"], f["p99_ms"],
		f["errors"]
}
/^failover [0-9]+\/[0-9]+:/ {
	for (i = 1; i <= NF; i++) if ($i == "acknowledged") v = v sep $(i + 1)
	sep = " "
}
/^failover rounds=/ {
	for (i = 2; i <= NF; i++) { split($i, kv, "="); g[kv[1]] = kv[2] }
	printf "failover: median %s ms over %s rounds (min %s, max %s)\n",
		g["median_ms"], g["rounds"], g["min_ms"], g["max_ms"]
	printf "failover rounds, ms: %s\n", v
}' "$results"
