#!/bin/sh
# Raft with real processes (issue 7).  shoald nodes on 127.0.0.1 (profile
# local) form a cluster with cluster.bootstrap_expect and elect one leader;
# t/cluster_writer upserts one point per request at ack quorum, spread over
# every node's client address (followers forward), and records each
# acknowledged id, while the test
#   - kill -9s the leader, waits for a new one, restarts the killed node
#     from its data dir (three rounds, three nodes);
#   - SIGSTOPs the leader until the others elect a new one, then SIGCONTs
#     it: it steps down and catches up (two rounds);
#   - kill -9s the leader of a five-node cluster once;
#   - keeps a follower down while the others write and compact their logs:
#     back, it gets the leader's snapshot;
#   - cuts the leader of three nodes, each in its own network namespace,
#     off the others: it accepts no quorum write and serves no strong read,
#     while the majority elects a leader and accepts writes; then heals.
# After each part every node holds every acknowledged id (asked one node
# at a time at consistency strong) and all reach the same applied index
# and digest (GET /cluster).  Failover times go to the diagnostics.
. "${top_srcdir:-.}/t/tap.sh"
. "${top_srcdir:-.}/t/lib.sh"
. "${top_srcdir:-.}/t/cluster_lib.sh"

COLL=c

# kill_leader_round NODES ROUND SIGNAL: find the leader, SIGNAL it (KILL or
# STOP), wait for a new leader among the others; then restart (KILL) or
# SIGCONT (STOP) it and wait until it follows the new leader.
kill_leader_round() {
	wait_leader "$1" || { ok 1 "round $2: a leader before the $3"; return 1; }
	old=$leader old_id=$leader_id
	others=$(echo "$1" | tr ' ' '\n' | grep -vx "$old" | tr '\n' ' ' | sed 's/ $//')
	eval "victim=\$pid_$old"
	t0=$(now_ms)
	kill -"$3" "$victim"
	wait_leader "$others" "$old_id"
	ok $? "round $2: SIG$3 of leader $PFX$old: $others elect a new leader" || return 1
	ms=$(($(now_ms) - t0))
	failovers="$failovers $ms"
	diag "round $2: SIG$3 of $PFX$old -> $PFX$leader leads after $ms ms"
	sleep 0.5 # writes go on without it
	if [ "$3" = KILL ]; then
		wait_exit "$victim" 2000
		start_node "$old"
	else
		kill -CONT "$victim"
	fi
	t0=$(now_ms)
	new_id=$leader_id
	wait_leader "$1"
	ok $? "round $2: $PFX$old is back and all $(echo "$1" | wc -w) nodes follow one leader" ||
		return 1
	if [ "$3" = STOP ]; then
		is "$leader_id" "$new_id" "round $2: the stopped leader stepped down (it follows the new one)"
		eval "lg=\$log_$old"
		like "$(tail -n 30 "$lg")" "raft: leader for term" \
			"round $2: $PFX$old logs the new leader"
	fi
	diag "round $2: $PFX$old back and following after $(($(now_ms) - t0)) ms"
}

# ==================================================================== 3 nodes
N=3
PFX=n
free_base_port 8 || bail_out "no free ports"
diag "base ports $base..$((base + 7))"
t0=$(now_ms)
for i in 0 1 2; do start_node $i; done
wait_leader "0 1 2"
ok $? "three nodes with bootstrap_expect 3 elect one leader, all agree on it" ||
	bail_out "no leader: $(tail -n 5 "$TESTDIR"/n*.log)"
diag "leader $PFX$leader ($leader_id) elected $(($(now_ms) - t0)) ms after start"
nv=
for i in 0 1 2; do nv="$nv $(voters "$(cluster_json $i)")"; done
is "$nv" " 3 3 3" "each node lists 3 voters"
is "$(grep -c 'raft: elected leader for term' "$TESTDIR/n$leader.log")" 1 \
	"the leader logs its election"

out=$("$SHOALCTL" --addr "$(client_addr 0),$(client_addr 1),$(client_addr 2)" --ack quorum \
	collection create $COLL --dim 3 2>&1)
ok $? "collection create at ack quorum" || diag "$out"

# Steady state: no fault, no acknowledgement should wait anywhere near an
# election timeout (0.4 s by default).
start_writer "0 1 2" 1000000
sleep 3
stop_writer
max_ms=$(echo "$summary" | sed -n 's/.* max_ms \([0-9]*\).*/\1/p')
ok $([ "${max_ms:-99999}" -lt $((500 * SCALE)) ]; echo $?) \
	"without faults every quorum write is acknowledged within 500 ms (slowest ${max_ms:-?} ms)"
check_acked "0 1 2" "steady state"
is "$(cut -d' ' -f2 "$wdir/acks" | sort -u | tr '\n' ' ')" "0 1 2 " \
	"steady state: writes sent to each node were acknowledged (followers forward)"

# kill -9 of the leader, three rounds -------------------------------------
failovers=
start_writer "0 1 2" 2000000
for r in 1 2 3; do
	sleep 1
	kill_leader_round "0 1 2" "$r" KILL || break
done
sleep 0.5
stop_writer
diag "kill -9 failover times (ms):$failovers"
check_converged "0 1 2" "after kill -9 rounds"
check_acked "0 1 2" "after kill -9 rounds"

# SIGSTOP of the leader, two rounds ----------------------------------------
failovers=
start_writer "0 1 2" 3000000
for r in 1 2; do
	sleep 1
	kill_leader_round "0 1 2" "$r" STOP || break
done
sleep 0.5
stop_writer
diag "SIGSTOP failover times (ms):$failovers"
check_converged "0 1 2" "after SIGSTOP rounds"
check_acked "0 1 2" "after SIGSTOP rounds"
stop_cluster

# ==================================================================== 5 nodes
N=5
PFX=f
base=$((base + 3))
t0=$(now_ms)
for i in 0 1 2 3 4; do start_node $i; done
wait_leader "0 1 2 3 4"
ok $? "five nodes with bootstrap_expect 5 elect one leader, all agree on it" ||
	bail_out "no leader: $(tail -n 5 "$TESTDIR"/f*.log)"
diag "leader $PFX$leader elected $(($(now_ms) - t0)) ms after start"
nv=
for i in 0 1 2 3 4; do nv="$nv $(voters "$(cluster_json $i)")"; done
is "$nv" " 5 5 5 5 5" "each node lists 5 voters"
"$SHOALCTL" --addr "$(client_addr 0),$(client_addr 1)" --ack quorum \
	collection create $COLL --dim 3 >/dev/null 2>&1
ok $? "collection create at ack quorum"
failovers=
start_writer "0 1 2 3 4" 4000000
sleep 1
kill_leader_round "0 1 2 3 4" 1 KILL
sleep 0.5
stop_writer
diag "five nodes, kill -9 failover time (ms):$failovers"
check_converged "0 1 2 3 4" "five nodes after kill -9"
check_acked "0 1 2 3 4" "five nodes after kill -9"
stop_cluster

# ==================================================================== snapshot
# A follower down while the others write and compact their logs: on its
# return its next entry is gone, and the leader streams it the snapshot.
N=3
PFX=s
EXTRA="--storage-snapshot-entries 300 --storage-log-keep 10 --storage-segment-bytes 64KiB"
for i in 0 1 2; do start_node $i; done
wait_leader "0 1 2" || bail_out "snapshot part: no leader"
lag=$(((leader + 1) % 3))
others=$(echo "0 1 2" | tr ' ' '\n' | grep -vx "$lag" | tr '\n' ' ')
"$SHOALCTL" --addr "$(client_addr "$leader")" --ack quorum collection create $COLL --dim 3 \
	>/dev/null 2>&1
eval "kill -9 \$pid_$lag"
eval "wait_exit \$pid_$lag 2000"
awk 'BEGIN { for (i = 1; i <= 3000; i++) printf "{\"id\": %d, \"vector\": [%d, 1, 2]}\n", i, i }' \
	>"$TESTDIR/snap.jsonl"
out=$("$SHOALCTL" --addr "$(client_addr "$leader")" --ack quorum upsert $COLL \
	--jsonl "$TESTDIR/snap.jsonl" --batch 1 --depth 16 2>&1)
ok $? "snapshot part: 3000 writes acknowledged while $PFX$lag is down" || diag "$out"
# the others compact their logs in the background (slowly under the
# sanitizers): wait until the entries after the follower's are gone from
# them, or it gets entries, not the snapshot
deadline=$(($(date +%s) + T))
for i in $others; do
	while [ "$(jf "$(cluster_json "$i")" first_index)" -le 10 ] 2>/dev/null &&
		[ "$(date +%s)" -lt $deadline ]; do
		sleep 0.2
	done
done
start_node "$lag"
t0=$(now_ms)
check_converged "0 1 2" "snapshot part"
diag "$PFX$lag caught up in $(($(now_ms) - t0)) ms"
eval "lg=\$log_$lag"
if [ "$SCALE" -ge 5 ] && ! grep -q "installed the leader's snapshot at index" "$lg"; then
	# Under ThreadSanitizer (timeouts x5) the leader may still hold the
	# entries the follower lacks when it returns (compaction runs late),
	# and sends them instead: the install path is not taken; the other
	# builds assert it, and t/cluster_history.sh too
	ok 0 "snapshot part: the returning follower installed the leader's snapshot # SKIP it got entries (slow build)"
else
	like "$(cat "$lg")" "installed the leader's snapshot at index" \
		"snapshot part: the returning follower installed the leader's snapshot"
fi
n=$(at "$lag" "$SHOALCTL" --addr "$(client_addr "$lag")" --consistency strong count $COLL 2>&1)
is "$n" 3000 "snapshot part: it holds every point"
stop_cluster
EXTRA=

# ==================================================================== partition
# Three namespaces ${NS}n0..n2 routed by the hub ${NS}h (t/cluster_lib.sh);
# the leader's link to the hub goes down, then up again.
if ! netns_setup 3; then
	netns_cleanup
	skip "partition in network namespaces: $why"
	done_testing
fi

N=3
PFX=p
NS_PREFIX=$NS
for i in 0 1 2; do start_node $i; done
wait_leader "0 1 2"
ok $? "partition: three nodes in their own namespaces elect a leader" ||
	bail_out "no leader: $(tail -n 5 "$TESTDIR"/p*.log)"
at 0 "$SHOALCTL" --addr "$(client_addr 0)" --ack quorum collection create $COLL --dim 3 \
	>/dev/null 2>&1
ok $? "partition: collection create at ack quorum"

old=$leader old_id=$leader_id
maj=$(echo "0 1 2" | tr ' ' '\n' | grep -vx "$old" | tr '\n' ' ' | sed 's/ $//')
m0=$(echo "$maj" | cut -d' ' -f1)
start_writer "0 1 2" 5000000 "$m0"
sleep 1
t0=$(now_ms)
ip -n "${NS}h" link set "v$old" down
wait_leader "$maj" "$old_id"
ok $? "partition: with the leader $PFX$old cut off, $maj elect a new leader" &&
	diag "partition: $PFX$leader leads the majority after $(($(now_ms) - t0)) ms"

sleep 1 # an election timeout more: the cut-off leader has noticed
diag "partition: cut-off $PFX$old: applied/commit/last/digest/points/role/term $(node_line "$old")"
at "$m0" "$SHOALCTL" --addr "$(client_addr "$m0")" --ack quorum --timeout 3000 \
	upsert $COLL --id 77 --vector 7,7,7 >/dev/null 2>&1
is "$?" 0 "partition: the majority accepts a quorum write"
out=$(at "$old" "$SHOALCTL" --addr "$(client_addr "$old")" --ack quorum --timeout 2000 \
	upsert $COLL --id 78 --vector 8,8,8 2>&1)
st=$?
ok $([ $st = 6 ] || [ $st = 7 ]; echo $?) \
	"partition: the cut-off node accepts no quorum write (exit $st: unavailable or timeout)" ||
	diag "$out"
out=$(at "$old" "$SHOALCTL" --addr "$(client_addr "$old")" --consistency strong --timeout 2000 \
	get $COLL 77 2>&1)
st=$?
ok $([ $st = 6 ] || [ $st = 7 ]; echo $?) \
	"partition: nor a strong read of the majority's write (exit $st; 3 would be a stale read)" ||
	diag "$out"
sleep 1
ip -n "${NS}h" link set "v$old" up
t0=$(now_ms)
wait_leader "0 1 2"
ok $? "partition healed: all three follow one leader" &&
	diag "partition healed: $PFX$old follows $PFX$leader after $(($(now_ms) - t0)) ms"
stop_writer
check_converged "0 1 2" "partition healed"
echo "77 x" >>"$wdir/acks"
check_acked "0 1 2" "partition healed"
missing78=
for i in 0 1 2; do
	at "$i" "$SHOALCTL" --addr "$(client_addr "$i")" --consistency strong get $COLL 78 \
		>/dev/null 2>&1
	[ $? = 3 ] || missing78="$missing78 $PFX$i"
done
is "$missing78" "" "partition healed: the write refused on the cut-off side was not applied"

done_testing
