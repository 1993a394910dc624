#!/bin/sh
# run.sh: the replication benchmark of doc/benchmarks.md ("Replication"):
# a 3-node shoal cluster on 127.0.0.1 (fsync always, the defaults
# otherwise), measured the way contrib/bench/etcd/run.sh measures etcd.
#
#   contrib/bench/cluster/run.sh [BUILD_DIR]     (default build/release)
#   BENCH_PARTS="1 2" contrib/bench/cluster/run.sh ...   only those parts
#   BENCH_KEEP=1 ...   keep the data dirs and the nodes' logs (else removed)
#   BENCH_SHOALD_ARGS="--storage-snapshot-entries 20" ...   more flags per node
#   BENCH_REQUESTS_X=10 ...   part 2 sends ten times as many requests (runs
#                             of about 10 s, as etcd's reference does)
#
#   0. catch-up, on the fresh cluster: a follower is killed, 100,000
#      single-point writes go in (8-dim vectors, so that HNSW insertion
#      does not hide replication), the follower restarts; the time until
#      it has applied them all;
#   1. failover, BENCH_FAILOVER_ROUNDS rounds (default 20), on a small
#      collection: kill -9 of the leader, then one write at ack quorum by
#      a client that knows only the seed list (every node, the dead one
#      included; one shoalctl, timeout 10 s: its retries find the new
#      leader, doc/clients.md); the time from the kill to its
#      acknowledgement, and the median and maximum; the node is restarted
#      and caught up before the next round;
#   2. writes at ack quorum, one 128-dim float vector (512 bytes) per
#      request, a new id each, C connections with one request in flight
#      each, spread over the three nodes (followers forward to the leader):
#      C = 1, 16, 64; requests/s, p50, p99;
#   3. batched upserts (1000 points a request, 4 connections x depth 4),
#      a burst of 100,000 points of 128 dims (doc/write-path.md): points
#      acknowledged per second; per replica the searchable lag of every
#      acknowledged request (`shoalctl bench --lag`: from the ack until the
#      replica has applied it, when an eventual search there finds it) as
#      p50/p99/max, and the time from the last ack until the replica's graph
#      holds every point (points_fresh 0); search latency (REST, k = 10,
#      eventual) on a replica while its fresh set is full, and at rest;
#   4. sustained load: the same requests for BENCH_SUSTAIN_S seconds
#      (default 60) into another collection, as fast as they are
#      acknowledged (above the indexing rate: the fresh sets reach their
#      bound, index.max_fresh_bytes, and apply waits for the indexer):
#      acknowledged points/s, the searchable lag per replica (its p99 over
#      each half of the run: a lag that grows shows there), and each
#      node's throttling counters.
#
# Every wait is bounded; only the processes this script started are
# signalled, by PID; every node listens on 127.0.0.1.
set -eu

BUILD=${1:-build/release}
SHOALD=$BUILD/src/server/shoald
CTL=$BUILD/src/client/shoalctl
[ -x "$SHOALD" ] && [ -x "$CTL" ] || {
	echo "run.sh: no shoald/shoalctl in $BUILD (build first)" >&2
	exit 2
}
DIR=$(mktemp -d /tmp/shoal-bench.XXXXXX)
BASE=${BENCH_BASE_PORT:-811}
N=3
PARTS=${BENCH_PARTS:-0 1 2 3 4}
SUSTAIN=${BENCH_SUSTAIN_S:-60}
PIDS=""
want() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }

now_ms() { date +%s%3N; }

cleanup() {
	for p in $PIDS; do kill -9 "$p" 2>/dev/null || true; done
	if [ -n "${BENCH_KEEP:-}" ]; then echo "run.sh: kept $DIR (the nodes' logs)"; else rm -rf "$DIR"; fi
}
trap cleanup EXIT INT TERM

client() { echo "127.0.0.1:$((($BASE + $1) * 10 + 2))"; }
ALL="$(client 1),$(client 2),$(client 3)"

start() {
	"$SHOALD" --node-name "n$1" --node-data-dir "$DIR/d$1" --listen-base-port $((BASE + $1)) \
		--membership-profile local --cluster-bootstrap-expect $N \
		--cluster-seeds "127.0.0.1:$(((BASE + 1) * 10 + 1))" ${BENCH_SHOALD_ARGS:-} \
		>>"$DIR/n$1.log" 2>&1 &
	eval "pid$1=$!"
	PIDS="$PIDS $!"
}

field() { # field NODE KEY: a number or string of NODE's GET /cluster (not of its members)
	curl -s "http://127.0.0.1:$((($BASE + $1) * 10 + 3))/cluster" | sed 's/"members":.*//' |
		sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"]*\).*/\1/p" | head -1
}

leader_node() { # the node (1..3) that leads, as node 1..3 sees it
	for i in 1 2 3; do
		r=$(field "$i" role 2>/dev/null || true)
		[ "$r" = leader ] && { echo "$i"; return 0; }
	done
	return 1
}

wait_leader() {
	for _ in $(seq 1 200); do
		leader_node >/dev/null && return 0
		sleep 0.05
	done
	echo "run.sh: no leader" >&2
	exit 1
}

# all_applied [SECONDS]: every node has applied the leader's last index
# (default 60 s at most).
all_applied() {
	l=$(leader_node) || return 1
	last=$(field "$l" last_index)
	for _ in $(seq 1 $((${1:-60} * 20))); do
		ok=1
		for i in 1 2 3; do
			a=$(field "$i" applied_index 2>/dev/null || echo 0)
			[ "${a:-0}" -ge "$last" ] || ok=0
		done
		[ $ok = 1 ] && return 0
		sleep 0.05
	done
	return 1
}

# 128-dim random vectors (512 bytes each) as .fvecs
perl -e 'srand(7); for (1..10000) { print pack("l<", 128), pack("f<128", map { rand() } 1..128) }' \
	>"$DIR/v128.fvecs"
perl -e 'srand(8); for (1..10000) { print pack("l<", 8), pack("f<8", map { rand() } 1..8) }' \
	>"$DIR/v8.fvecs"

for i in 1 2 3; do start "$i"; done
wait_leader
echo "# shoal $("$SHOALD" --version | head -1), 3 nodes on 127.0.0.1, fsync always"
echo "# machine: $(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
"$CTL" --addr "$ALL" collection create bench --dim 128 >/dev/null

if want 0; then
	echo "## 0. catch-up of a restarted follower after 100,000 entries"
	l=$(leader_node)
	f=$((l % 3 + 1))
	eval "victim=\$pid$f"
	kill -9 "$victim"
	"$CTL" --addr "$(client "$l")" collection create small --dim 8 >/dev/null
	"$CTL" --addr "$(client "$l")" --ack quorum bench --mode upsert --dataset "$DIR/v8.fvecs" \
		--collection small --no-load --concurrency 4 --depth 16 --requests 100000
	t0=$(now_ms)
	start "$f"
	all_applied 600 || echo "did not catch up within 600 s"
	t1=$(now_ms)
	echo "catch-up: $((t1 - t0)) ms from the restart to all 100,000 entries applied" \
		"(snapshot index on the follower: $(field "$f" snapshot_index))"
fi

if want 1; then
	echo "## 1. failover: kill -9 of the leader to the acknowledgement of a write sent right after it"
	: >"$DIR/failover"
	for r in $(seq 1 "${BENCH_FAILOVER_ROUNDS:-20}"); do
		l=$(leader_node)
		eval "victim=\$pid$l"
		vec=$(seq -s, 1 128)
		kill -9 "$victim"
		t0=$(now_ms)
		if "$CTL" --addr "$ALL" --timeout 10000 --ack quorum upsert bench \
			--id $((900000000 + r)) --vector "$vec" >"$DIR/failover.out" 2>&1; then
			t1=$(now_ms)
			echo "round $r: $((t1 - t0)) ms"
			echo $((t1 - t0)) >>"$DIR/failover"
		else
			echo "round $r: failed: $(cat "$DIR/failover.out")"
		fi
		start "$l"
		wait_leader
		all_applied || echo "round $r: the restarted node did not catch up"
	done
	sort -n "$DIR/failover" | awk '{ v[NR] = $1 } END { if (NR) printf "failover: %d rounds, median %d ms, max %d ms\n", NR, v[int((NR + 1) / 2)], v[NR] }'
fi

# terms: the term of the leader as node 1..3 see it; an election under
# load shows as a term that moved during a part
terms() { echo "$(field 1 term) $(field 2 term) $(field 3 term)"; }

if want 2; then
	echo "terms before part 2: $(terms)"
	echo "## 2. writes at ack quorum, 1 point (512 B) per request, depth 1, spread over the nodes"
	for c in 1 16 64; do
		"$CTL" --addr "$ALL" --ack quorum bench --mode upsert --dataset "$DIR/v128.fvecs" \
			--collection bench --no-load --concurrency "$c" --depth 1 \
			--requests $(((c == 1 ? 3000 : c * 400) * ${BENCH_REQUESTS_X:-1}))
	done
	all_applied 300 || echo "replicas did not catch up"
	echo "terms after part 2: $(terms)"
fi

# coll_field NODE KEY: a number of NODE's GET /collections/bench
coll_field() {
	curl -s "http://127.0.0.1:$((($BASE + $1) * 10 + 3))/collections/bench" |
		sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p" | head -1
}

# search_ms NODE N: N REST searches (k 10, eventual) on NODE, one at a
# time; prints "p50 p99 max" in ms
search_ms() {
	for _ in $(seq 1 "$2"); do
		curl -s -o /dev/null -w '%{time_total}\n' -X POST \
			"http://127.0.0.1:$((($BASE + $1) * 10 + 3))/collections/bench/points/search" \
			-d "{\"vector\": [$(seq -s, 1 128)], \"limit\": 10}"
	done | sort -n | awk '{ v[NR] = $1 * 1000 } END {
		printf "%.1f %.1f %.1f", v[int(NR * 0.5 + 0.5)], v[int(NR * 0.99 + 0.5)], v[NR] }'
}

# wait_each KEY_TEST VAR: poll until KEY_TEST N succeeds for every node N,
# setting VARN to the ms since t1 when it first did (600 s at most)
wait_each() {
	for i in 1 2 3; do eval "$2$i="; done
	for _ in $(seq 1 30000); do
		done_all=1
		for i in 1 2 3; do
			eval "x=\$$2$i"
			[ -n "$x" ] && continue
			if $1 "$i"; then eval "$2$i=$(($(now_ms) - t1))"; else done_all=0; fi
		done
		[ $done_all = 1 ] && return 0
		sleep 0.02
	done
}
applied_all() { [ "$(field "$1" applied_index)" -ge "$last" ] 2>/dev/null; }
indexed_all() { [ "$(coll_field "$1" points_fresh)" = 0 ]; }

if want 3; then
	echo "terms before part 3: $(terms)"
	echo "## 3. batched: 1000 points a request, 4 connections x depth 4 (a burst of 100,000)"
	t0=$(now_ms)
	"$CTL" --addr "$ALL" --ack quorum bench --mode upsert --dataset random:128 --n 100000 \
		--collection bench --no-load --concurrency 4 --depth 4 --per-request 1000 --requests 100 \
		--lag "$ALL"
	t1=$(now_ms)
	l=$(leader_node)
	last=$(field "$l" commit_index)
	wait_each applied_all applied
	f=$((l % 3 + 1))
	fresh=$(coll_field "$f" points_fresh)
	echo "search on follower n$f with ${fresh:-?} points fresh: p50/p99/max $(search_ms "$f" 50) ms"
	wait_each indexed_all indexed
	echo "acknowledged: $((100000 * 1000 / (t1 - t0))) points/s ($((t1 - t0)) ms)"
	for i in 1 2 3; do
		eval "echo \"n$i: searchable (applied) \${applied$i:-?} ms after the last ack," \
			"graph complete \${indexed$i:-?} ms after it\""
	done
	echo "search on n$f at rest: p50/p99/max $(search_ms "$f" 50) ms"
fi

# metric NODE NAME: the sum of NAME's samples in NODE's /metrics
metric() {
	curl -s "http://127.0.0.1:$((($BASE + $1) * 10 + 3))/metrics" |
		awk -v m="$2" '$1 == m || index($1, m "{") == 1 { s += $2 } END { print s + 0 }'
}

if want 4; then
	echo "## 4. sustained: 1000 points a request, 4 connections x depth 4, for $SUSTAIN s"
	"$CTL" --addr "$ALL" collection create sustained --dim 128 >/dev/null
	"$CTL" --addr "$ALL" --ack quorum bench --mode upsert --dataset random:128 --n 1000000 \
		--collection sustained --no-load --concurrency 4 --depth 4 --per-request 1000 \
		--requests 100000000 --duration "$SUSTAIN" --lag "$ALL"
	for i in 1 2 3; do
		echo "n$i: throttled $(metric "$i" shoal_index_throttled_total) times," \
			"$(metric "$i" shoal_index_throttled_ms_total) ms in all;" \
			"$(metric "$i" shoal_collection_points_fresh) points fresh now"
	done
	echo "terms after part 4: $(terms)"
fi
