#!/bin/sh
# cluster.sh: a local shoal cluster of N nodes on 127.0.0.1, as Redis's
# create-cluster does for Redis.
#
#   contrib/cluster.sh start N     start nodes 0..N-1 (3 when N is left out) and wait
#                                  until they have a leader and are ready
#   contrib/cluster.sh status      each node: pid, role, term, indexes, ready
#   contrib/cluster.sh kill I      kill -9 node I (by its PID)
#   contrib/cluster.sh restart I   start node I again from its data dir (stops it first
#                                  if it runs) and wait until it is ready
#   contrib/cluster.sh stop        SIGTERM every node, wait for them to exit
#   contrib/cluster.sh clean       stop, then remove the cluster's directory
#
# Node I is named nI and has base port B + I (DESIGN.md section 10: it listens
# on (B+I)1 for the cluster, (B+I)2 for the client API, (B+I)3 for REST), with
# B = $SHOAL_CLUSTER_BASE or 747: node 0 answers where a lone shoald would
# (127.0.0.1:7472, :7473).  Every node lists every node as a seed and starts
# with bootstrap_expect N, membership profile "local".  Data, logs and PIDs
# are in $SHOAL_CLUSTER_DIR (default build/cluster/ in the source tree):
# nI/ (data dir), nI.log, nI.pid, and `cluster` (N and B).
#
# The programs: $SHOAL_BUILD/src/server/shoald and .../src/client/shoalctl
# when SHOAL_BUILD names a build directory (the tests use this), else this
# tree is built first in build/release/ (contrib/lib.sh; missing Debian
# packages installed by contrib/deps.sh).  SHOAL_CLUSTER_WAIT (seconds,
# default 30) bounds each wait.  Exit status 0 on success, 1 on a failure
# (said on stderr), 2 on a usage error.
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
dir=${SHOAL_CLUSTER_DIR:-$src/build/cluster}
wait_s=${SHOAL_CLUSTER_WAIT:-30}
me=cluster.sh

die() { echo "$me: $*" >&2; exit 1; }
usage() { sed -n '2,17p' "$0" >&2; exit 2; }

programs() {
	if [ -n "${SHOAL_BUILD:-}" ]; then
		build=$(cd "$SHOAL_BUILD" && pwd)
	else
		"$src/contrib/deps.sh"
		# shellcheck source=contrib/lib.sh
		. "$src/contrib/lib.sh"
		(shoal_build release)
		build=$src/build/release
	fi
	shoald=$build/src/server/shoald
	shoalctl=$build/src/client/shoalctl
	[ -x "$shoald" ] && [ -x "$shoalctl" ] || die "no shoald or shoalctl in $build"
}

# The cluster's size and base port, from `cluster.sh start`.
load() {
	[ -f "$dir/cluster" ] || die "no cluster in $dir (start one: $me start N)"
	. "$dir/cluster"
}

node_ok() { case "$1" in '' | *[!0-9]*) return 1 ;; esac; [ "$1" -lt "$n" ]; }
addr() { echo "127.0.0.1:$(((base + $1) * 10 + 2))"; }
pid_of() { cat "$dir/n$1.pid" 2>/dev/null || true; }
# alive PID: it runs (a zombie no one reaped yet does not)
alive() { kill -0 "$1" 2>/dev/null && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null; }
running() { p=$(pid_of "$1"); [ -n "$p" ] && alive "$p"; }
ctl() { i=$1; shift; "$shoalctl" --addr "$(addr "$i")" --timeout 2000 "$@"; }

start_node() {
	i=$1 seeds='' k=0
	while [ $k -lt "$n" ]; do
		seeds="$seeds${seeds:+,}127.0.0.1:$(((base + k) * 10 + 1))"
		k=$((k + 1))
	done
	# setsid: the node is a daemon of its own, not killed with this shell
	setsid "$shoald" --node-name "n$i" --node-data-dir "$dir/n$i" \
		--listen-base-port $((base + i)) --membership-profile local \
		--cluster-bootstrap-expect "$n" --cluster-seeds "$seeds" \
		>>"$dir/n$i.log" 2>&1 </dev/null &
	echo $! >"$dir/n$i.pid"
}

# wait_ready I...: until each node answers, knows a leader and is ready.
wait_ready() {
	deadline=$(($(date +%s) + wait_s))
	for i in "$@"; do
		until ctl "$i" status 2>/dev/null | grep -q '^ready: yes'; do
			running "$i" || die "node n$i exited; the end of $dir/n$i.log:
$(tail -5 "$dir/n$i.log")"
			[ "$(date +%s)" -lt $deadline ] || die "node n$i not ready after ${wait_s}s:
$(ctl "$i" status 2>&1 | grep -E '^(node|ready)')"
			sleep 0.1
		done
	done
}

status() {
	printf '%-4s %-8s %-8s %-9s %5s %8s %8s  %s\n' NODE PID STATE ROLE TERM APPLIED COMMIT READY
	i=0
	while [ $i -lt "$n" ]; do
		if ! running $i; then
			printf '%-4s %-8s %-8s\n' "n$i" "$(pid_of $i)" down
		elif j=$(ctl $i --json status 2>/dev/null); then
			f() { printf '%s' "$j" | sed -n "s/.*\"$1\":\"\{0,1\}\([^\",]*\).*/\1/p"; }
			printf '%-4s %-8s %-8s %-9s %5s %8s %8s  %s\n' "n$i" "$(pid_of $i)" running \
				"$(f role)" "$(f term)" "$(f applied_index)" "$(f commit_index)" \
				"$(f ready)$( [ "$(f ready)" = true ] || echo " ($(f ready_reason))")"
		else
			printf '%-4s %-8s %-8s (not answering on %s)\n' "n$i" "$(pid_of $i)" running \
				"$(addr $i)"
		fi
		i=$((i + 1))
	done
	echo "data and logs in $dir; client API of node I on 127.0.0.1:(B+I)2, REST on (B+I)3, B = $base"
}

stop_node() {
	p=$(pid_of "$1")
	[ -n "$p" ] && kill -TERM "$p" 2>/dev/null || return 0
	k=0
	while alive "$p"; do
		k=$((k + 1))
		[ $k -lt 200 ] || { kill -9 "$p" 2>/dev/null; break; }
		sleep 0.05
	done
}

cmd=${1:-}
[ $# -ge 1 ] && shift
case "$cmd" in
start)
	n=${1:-3}
	base=${SHOAL_CLUSTER_BASE:-747}
	case "$n" in '' | *[!0-9]* | 0) usage ;; esac
	[ "$n" -le 63 ] || die "at most 63 nodes"
	if [ -f "$dir/cluster" ]; then
		(. "$dir/cluster"; i=0; while [ $i -lt "$n" ]; do
			p=$(cat "$dir/n$i.pid" 2>/dev/null || true)
			[ -n "$p" ] && alive "$p" && exit 1; i=$((i + 1)); done; exit 0) ||
			die "a cluster already runs in $dir (stop it first: $me stop)"
	fi
	programs
	mkdir -p "$dir"
	printf 'n=%s\nbase=%s\n' "$n" "$base" >"$dir/cluster"
	echo "$me: starting $n nodes (base ports $base..$((base + n - 1))) in $dir"
	i=0
	while [ $i -lt "$n" ]; do start_node $i; i=$((i + 1)); done
	wait_ready $(seq 0 $((n - 1)))
	status
	;;
status) load; programs; status ;;
kill)
	load; node_ok "${1:-}" || usage
	p=$(pid_of "$1")
	running "$1" || die "node n$1 is not running"
	kill -9 "$p"
	echo "$me: killed n$1 (pid $p) with SIGKILL"
	;;
restart)
	load; node_ok "${1:-}" || usage
	programs
	stop_node "$1"
	start_node "$1"
	echo "$me: restarted n$1 (pid $(pid_of "$1")), log in $dir/n$1.log"
	wait_ready "$1"
	;;
stop)
	load
	i=0
	while [ $i -lt "$n" ]; do stop_node $i; i=$((i + 1)); done
	echo "$me: stopped; data and logs stay in $dir"
	;;
clean)
	if [ -f "$dir/cluster" ]; then
		load
		i=0
		while [ $i -lt "$n" ]; do stop_node $i; i=$((i + 1)); done
	fi
	rm -rf "$dir"
	echo "$me: removed $dir"
	;;
*) usage ;;
esac
