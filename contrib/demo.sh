#!/bin/sh
# demo.sh: shoal as a replicated cluster, in a few minutes.
#
#   contrib/demo.sh            the demo; the cluster keeps running (Ctrl-C stops it)
#   contrib/demo.sh --no-wait  stop the cluster at the end (for scripts; exit 0
#                              when the whole story ran)
#
# It builds shoal (contrib/lib.sh, in build/release/), starts three nodes on
# 127.0.0.1 with contrib/cluster.sh (node I on base port 747 + I: client API
# 127.0.0.1:7472, 7482, 7492, REST 7473, 7483, 7493; SHOAL_DEMO_BASE moves
# them; data and logs in build/demo/), loads a sample (5,000 points of 16
# dimensions in 10 clusters, with payloads, made here from a fixed seed),
# shows the leader and the voters, searches on a follower at each
# consistency level, writes a point with its token on one node and reads it
# back at read_your_writes on another, kills the leader with kill -9 and
# times the new leader's first write, restarts the old leader and shows it
# catch up, and runs `shoalctl cluster verify`.  With Debian's
# dataset-fashion-mnist installed it then loads Fashion-MNIST (10,000 images)
# through `shoalctl bench` (not with --no-wait).
#
# SHOAL_BUILD=DIR uses the programs of that build directory instead of
# building (the tests do); SHOAL_DEMO_DIR moves the data.
set -eu

wait_at_end=yes
for arg in "$@"; do
	case "$arg" in
	--no-wait) wait_at_end=no ;;
	-h | --help) sed -n '2,23p' "$0"; exit 0 ;;
	*) echo "demo.sh: unknown option $arg (see demo.sh --help)" >&2; exit 2 ;;
	esac
done
src=$(cd "$(dirname "$0")/.." && pwd)
base=${SHOAL_DEMO_BASE:-747}
demo=${SHOAL_DEMO_DIR:-$src/build/demo}
if [ -z "${SHOAL_BUILD:-}" ]; then
	"$src/contrib/deps.sh"
	# shellcheck source=contrib/lib.sh
	. "$src/contrib/lib.sh"
	echo "demo.sh: building shoal in build/release/ (a first build takes a few minutes)"
	(shoal_build release)
	SHOAL_BUILD=$src/build/release
fi
SHOAL_BUILD=$(cd "$SHOAL_BUILD" && pwd)
SHOAL_CLUSTER_DIR=$demo SHOAL_CLUSTER_BASE=$base
export SHOAL_BUILD SHOAL_CLUSTER_DIR SHOAL_CLUSTER_BASE
cluster="$src/contrib/cluster.sh"
shoalctl=$SHOAL_BUILD/src/client/shoalctl

say() { printf '\n== %s\n' "$*"; }
show() { printf '$ %s\n' "$*"; }
# ctl I ARGS: shoalctl against node I.
ctl() { i=$1; shift; "$shoalctl" --addr "127.0.0.1:$(((base + i) * 10 + 2))" "$@"; }
rest() { echo "127.0.0.1:$(((base + $1) * 10 + 3))"; }
now_ms() { date +%s%3N; }
# field JSON KEY: a string or number field of a one-line JSON object.
field() { printf '%s' "$1" | sed -n "s/.*\"$2\":\"\{0,1\}\([^\",]*\).*/\1/p"; }
# leader_of I: the number of the node that node I names as leader ("" if none).
leader_of() {
	a=$(field "$(ctl "$1" --json --timeout 1000 status 2>/dev/null || true)" leader_address)
	[ -n "$a" ] && echo $((${a##*:} / 10 - base))
}

stopped=no
stop_cluster() {
	[ $stopped = yes ] && return
	stopped=yes
	"$cluster" stop
}

"$cluster" stop >/dev/null 2>&1 || true
rm -rf "$demo"
say "Starting three shoald nodes (n0, n1, n2); they find each other by gossip and elect a leader"
"$cluster" start 3
trap 'stop_cluster' EXIT
trap 'stop_cluster; exit 0' INT TERM

leader=$(leader_of 0)
[ -n "$leader" ] || { echo "demo.sh: no leader" >&2; exit 1; }
f=$(((leader + 1) % 3)) g=$(((leader + 2) % 3))
say "The leader is n$leader; n$f and n$g follow it.  The voters, as the leader sees them:"
show "shoalctl cluster voters"
ctl 0 cluster voters

say "Loading a sample through n$f, a follower: it forwards every write to the leader"
awk 'BEGIN {
	srand(7); split("red green blue", colors, " ")
	for (c = 0; c < 10; c++) for (d = 0; d < 16; d++) centre[c, d] = rand() * 10
	for (i = 0; i < 5000; i++) {
		c = i % 10; v = ""
		for (d = 0; d < 16; d++) v = v (d ? "," : "") sprintf("%.3f", centre[c, d] + rand() - 0.5)
		printf "{\"id\": %d, \"vector\": [%s], \"payload\": {\"cluster\": %d, \"color\": \"%s\", \"price\": %d}}\n",
			i, v, c, colors[i % 3 + 1], i % 100
	}
}' >"$demo/sample.jsonl"
show "shoalctl collection create sample --dim 16"
ctl $f collection create sample --dim 16
show "shoalctl upsert sample --jsonl $demo/sample.jsonl"
ctl $f upsert sample --jsonl "$demo/sample.jsonl"
q=$(sed -n 1p "$demo/sample.jsonl" | sed 's/.*"vector": \[\([^]]*\)\].*/\1/')

say "Searching on follower n$g at each consistency level (the nearest points to point 0)"
echo "eventual: what n$g has applied now (it may trail the leader by the replication lag)"
show "shoalctl --consistency eventual search sample --vector <point 0> -k 3"
ctl $g --consistency eventual search sample --vector "$q" -k 3
echo "strong: linearizable; n$g asks the leader for its commit index and applies up to it first"
show "shoalctl --consistency strong search sample --vector <point 0> -k 3 --filter <blue, price < 50>"
ctl $g --consistency strong search sample --vector "$q" -k 3 \
	--filter '{"must": [{"key": "color", "match": {"value": "blue"}}, {"key": "price", "range": {"lt": 50}}]}'
echo "quorum: linearizable through a read index that a majority confirmed"
show "shoalctl --consistency quorum count sample"
ctl $g --consistency quorum count sample

say "Writing point 9999 on n$f, then reading it back on n$g at read_your_writes with the write's token"
show "curl -X PUT $(rest $f)/collections/sample/points -d '{\"points\": [{\"id\": 9999, ...}]}'"
w=$(curl -s -X PUT "$(rest $f)/collections/sample/points" \
	-d "{\"points\": [{\"id\": 9999, \"vector\": [$q], \"payload\": {\"note\": \"written on n$f\"}}]}")
echo "$w"
term=$(printf '%s' "$w" | sed -n 's/.*"term":\([0-9]*\).*/\1/p')
index=$(printf '%s' "$w" | sed -n 's/.*"index":\([0-9]*\).*/\1/p')
[ -n "$term" ] && [ -n "$index" ] || { echo "demo.sh: the write returned no token" >&2; exit 1; }
show "curl '$(rest $g)/collections/sample/points/9999?consistency=read_your_writes&token=$term:$index'"
r=$(curl -s "$(rest $g)/collections/sample/points/9999?consistency=read_your_writes&token=$term:$index")
echo "$r" | cut -c1-160
case "$r" in *"written on n$f"*) echo "n$g waited until it had applied entry $index, then answered" ;;
*) echo "demo.sh: n$g did not return the point" >&2; exit 1 ;; esac

say "Killing the leader n$leader with kill -9"
old=$leader
"$cluster" kill "$old"
t0=$(now_ms)
echo "writing through n$f until a new leader takes the write ..."
until ctl $f --timeout 500 upsert sample --id 10000 --vector "$q" >/dev/null 2>&1; do
	[ $(($(now_ms) - t0)) -lt 30000 ] || { echo "demo.sh: no new leader within 30 s" >&2; exit 1; }
	sleep 0.05
done
t1=$(now_ms)
leader=$(leader_of $f)
echo "n$leader leads now; it took the first write $((t1 - t0)) ms after the kill"
show "shoalctl status   (on n$leader)"
ctl "$leader" status

say "Restarting n$old from its data directory; it rejoins as a follower and catches up"
"$cluster" restart "$old"
target=$(field "$(ctl "$leader" --json status)" commit_index)
first=$(field "$(ctl "$old" --json status)" applied_index)
t0=$(now_ms)
until [ "$(field "$(ctl "$old" --json status)" applied_index)" -ge "$target" ]; do
	[ $(($(now_ms) - t0)) -lt 30000 ] || { echo "demo.sh: n$old did not catch up" >&2; exit 1; }
	sleep 0.05
done
echo "n$old answered at applied index $first and reached the leader's commit index $target" \
	"$(($(now_ms) - t0)) ms later"
for i in 0 1 2; do
	j=$(ctl $i --json status)
	echo "n$i: role $(field "$j" role), applied index $(field "$j" applied_index), digest $(field "$j" digest)"
done

say "Verifying that every replica holds the same state"
show "shoalctl cluster verify"
ctl 0 cluster verify
show "contrib/cluster.sh status"
"$cluster" status

if [ $wait_at_end = no ]; then
	say "Done; stopping the cluster (--no-wait)"
	exit 0
fi
if [ -r /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
	say "Loading Fashion-MNIST (10,000 images) and measuring searches"
	show "shoalctl bench --dataset fashion --n 10000 --nq 200 --concurrency 2 --depth 4"
	ctl 0 bench --dataset fashion --n 10000 --nq 200 --concurrency 2 --depth 4 || true
fi
say "The cluster runs; Ctrl-C stops it"
cat <<EOF
  status page   http://$(rest 0)/ui   (each node serves it)
  client API    127.0.0.1:$((base * 10 + 2)), $(((base + 1) * 10 + 2)), $(((base + 2) * 10 + 2))
  REST          http://$(rest 0)/cluster, /readyz, /metrics, ...
  try           $shoalctl --addr 127.0.0.1:$((base * 10 + 2)) cluster voters
                SHOAL_CLUSTER_DIR=$demo SHOAL_CLUSTER_BASE=$base SHOAL_BUILD=$SHOAL_BUILD \\
                  contrib/cluster.sh status    (or kill 1, restart 1: from another terminal)
EOF
while :; do sleep 1; done
