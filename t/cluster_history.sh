#!/bin/sh
# The real-process history test (issue 10; doc/consistency.md, "Checked on
# real processes").  A cluster of 3, then of 5 shoald processes with small
# snapshot thresholds (logs are compacted every 200 entries, so a follower
# that was down gets the leader's snapshot), and t/cluster_client's
# sessions writing (every ack level), deleting and reading (every
# consistency level) one point at a time over libshoal and REST, each
# operation recorded with its times and outcome.  Two phases per cluster,
# each on a collection of its own (registers start empty):
#   crash      kill -9 of the leader, restarted from its data dir; kill -9
#              of a random follower while 600 more points are written
#              through the others (they compact past it), restarted (it
#              installs the leader's snapshot); SIGSTOP of the leader until
#              the others have elected another (longer than the election
#              timeout), SIGCONT; the binary calls of this phase retry
#              (--retries 4: a write whose attempt may have applied is
#              sent again with its client session, and must apply once —
#              doc/clients.md, "Exactly-once writes");
#   partition  (network namespaces, root) the leader (and, of five, one
#              follower with it) cut off the others both ways; the
#              leader's packets to the others dropped (one way); the
#              others' packets to the leader dropped (one way); each until
#              the others elect a leader, then healed.  The clients run in
#              the hub namespace and reach every node throughout.
# After each phase every key is read at strong from every node, into the
# history too, and t/hist/histcheck checks the history: TAP "ok" only with
# 0 violations.  At the end the replicas must converge to equal digests
# (shoalctl cluster verify), and a follower must have installed the
# leader's snapshot.
#
# HISTORY_ROUNDS=R runs each phase's faults R times (default 1);
# HISTORY_NODES="3 5" the cluster sizes; HISTORY_SESSIONS the client
# sessions (default 6 for 3 nodes, 8 for 5); HISTORY_SEED the clients'
# seed.  The histories, the clients' output and the node logs of a run
# with a failure or a violation are kept in t/cluster_history.out/ of the
# build directory.
. "${top_srcdir:-.}/t/tap.sh"
. "${top_srcdir:-.}/t/lib.sh"
. "${top_srcdir:-.}/t/cluster_lib.sh"

CLIENT=$top_builddir/t/cluster_client
HISTCHECK=$top_builddir/t/hist/histcheck
OUTDIR=$top_builddir/t/cluster_history.out
ROUNDS=${HISTORY_ROUNDS:-1}
SIZES=${HISTORY_NODES:-3 5}
SEED=${HISTORY_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
WATCHDOG=$(((150 + 150 * ROUNDS) * SCALE))
EXTRA="--storage-snapshot-entries 200 --storage-log-keep 50 --storage-segment-bytes 64KiB"
rm -rf "$OUTDIR"
awk 'BEGIN { p = sprintf("%512s", ""); gsub(/ /, "x", p)
	for (i = 1; i <= 600; i++)
		printf "{\"id\": %d, \"vector\": [%d, 1, 2], \"payload\": {\"pad\": \"%s\"}}\n", i % 50 + 1, i, p
}' >"$TESTDIR/filler.jsonl"

if netns_setup 5; then
	NS_PREFIX=$NS
	partitions=yes
else
	netns_cleanup
	partitions=no
	diag "no network namespaces ($why): nodes on 127.0.0.1, no partitions"
fi

# --------------------------------------------------------------- faults

# new_leader WHAT NODES OLD_ID: NODES elect a leader other than OLD_ID.
new_leader() {
	wait_leader "$2" "$3"
	ok $? "$1: $(echo "$2" | wc -w) nodes elect a new leader" &&
		diag "$1: $PFX$leader leads after $(($(now_ms) - t0)) ms"
}

# all_follow WHAT: every node is back and follows one leader.
all_follow() {
	t1=$(now_ms)
	wait_leader "$all"
	ok $? "$1: all $N nodes follow one leader" &&
		diag "$1: all follow $PFX$leader after $(($(now_ms) - t1)) ms"
	if [ $(($(now_ms) - t1)) -gt $((5000 * SCALE)) ]; then
		keep=yes # slow: the logs may say why
	fi
}

# current_leader WHAT: sets $old, $old_id and $others; fails without one.
current_leader() {
	wait_leader "$all" || { ok 1 "$1: a leader before the fault"; return 1; }
	old=$leader old_id=$leader_id others=$(without "$all" "$leader")
}

# filler NODES: 600 points of 512 bytes written at quorum through NODES
# into a collection of their own (no register of the history): the leader
# takes a few snapshots and compacts its log.
filler() {
	hub "$SHOALCTL" --addr "$(addrs_of client_addr "$1")" --ack quorum --timeout 10000 \
		upsert filler --jsonl "$TESTDIR/filler.jsonl" --batch 1 --depth 8 >/dev/null 2>&1 ||
		diag "the filler load through $1 failed"
}

fault_kill_leader() {
	w="round $1: kill -9 of the leader"
	current_leader "$w" || return
	t0=$(now_ms)
	eval "kill -9 \$pid_$old; wait_exit \$pid_$old 5000"
	new_leader "$w $PFX$old" "$others" "$old_id"
	sleep 1
	start_node "$old"
	all_follow "$w: $PFX$old restarted from its data dir"
}

# A random follower, down while the leader writes enough to compact its
# log past it: back, it must install the leader's snapshot.
fault_kill_follower() {
	w="round $1: kill -9 of a follower"
	current_leader "$w" || return
	set -- "$1" $others
	shift $(($(od -An -N1 -tu1 /dev/urandom) % ($# - 1) + 1))
	f=$1
	eval "kill -9 \$pid_$f; wait_exit \$pid_$f 5000"
	filler "$others"
	sleep 1
	start_node "$f"
	all_follow "$w: $PFX$f restarted from its data dir"
}

fault_stop_leader() {
	w="round $1: SIGSTOP of the leader"
	current_leader "$w" || return
	t0=$(now_ms)
	eval "kill -STOP \$pid_$old"
	new_leader "$w $PFX$old" "$others" "$old_id"
	sleep 0.5
	eval "kill -CONT \$pid_$old"
	diag "$w: $PFX$old stopped for $(($(now_ms) - t0)) ms"
	all_follow "$w: $PFX$old continued"
}

# partition WHAT SIDE: SIDE cut off the others both ways.
fault_partition() {
	w="round $1: partition"
	current_leader "$w" || return
	side=$old
	[ "$N" -ge 5 ] && side="$old $(echo "$others" | cut -d' ' -f1)"
	rest=$(without "$all" $side)
	t0=$(now_ms)
	for a in $side; do for b in $rest; do block "$a" "$b" && block "$b" "$a"; done; done
	new_leader "$w of leader $PFX$old with {$side} | {$rest}" "$rest" "$old_id"
	sleep 2 # the clients go on on both sides
	heal_all
	all_follow "$w healed"
}

fault_oneway() {
	w="round $1: one-way partition, $2"
	current_leader "$w" || return
	t0=$(now_ms)
	for b in $others; do if [ "$2" = out ]; then block "$old" "$b"; else block "$b" "$old"; fi; done
	new_leader "$w of leader $PFX$old" "$others" "$old_id"
	sleep 1
	heal_all
	all_follow "$w healed"
}

crash_round() {
	fault_kill_leader "$1"
	fault_kill_follower "$1"
	fault_stop_leader "$1"
}

partition_round() {
	fault_partition "$1"
	fault_oneway "$1" out
	fault_oneway "$1" in
}

# --------------------------------------------------------------- a run

# addrs_of FN [NODES]: FN (client_addr, rest_addr) of NODES (all), comma-separated.
addrs_of() {
	l=
	for i in ${2:-$all}; do l="$l${l:+,}$($1 "$i")"; done
	echo "$l"
}

# client_ok SUMMARY: OK writes at every ack level and OK reads at every
# consistency level, over both frontends.
client_ok() {
	w=$(echo "$1" | sed -n 's/.*writes ok leader\/one\/quorum\/all \([0-9/]*\).*/\1/p')
	r=$(echo "$1" | sed -n 's/.*reads ok eventual\/ryw\/strong\/quorum \([0-9/]*\).*/\1/p')
	rest=$(echo "$1" | sed -n 's/.* rest \([0-9]*\) .*/\1/p')
	ops=$(echo "$1" | sed -n 's/.*ops \([0-9]*\) .*/\1/p')
	case "/$w/$r/" in */0/*|//) return 1 ;; esac
	[ "${rest:-0}" -gt 0 ] && [ "${rest:-0}" -lt "${ops:-0}" ]
}

# histcheck FILE WHAT: check FILE; on violations print them and keep it.
histcheck() {
	out=$("$HISTCHECK" "$1" 2>&1)
	st=$?
	ok $st "$2: histcheck finds no violation ($(echo "$out" | tail -n 1 | sed 's/^histcheck: //'))" &&
		return
	keep=yes
	echo "$out" | head -n 80 | while IFS= read -r l; do diag "$l"; done
}

# run_phase NAME: the clients on collection NAME (keys from 1, an empty
# register each) through NAME's fault rounds, then the final reads and
# the history checks.
run_phase() {
	ph=$1
	hist=$TESTDIR/history-$N-$ph.txt
	stopf=$TESTDIR/stop-$N-$ph
	out=$(hub "$SHOALCTL" --addr "$(addrs_of client_addr)" --ack quorum --timeout 10000 \
		collection create "$ph" --dim 3 2>&1)
	ok $? "$N nodes, $ph: collection create at ack quorum" || diag "$out"
	# the crash phase's binary calls retry (sessions: applied once)
	retries=0
	[ "$ph" = crash ] && retries=4
	hub "$CLIENT" run "$(addrs_of client_addr)" "$(addrs_of rest_addr)" "$ph" "$hist" \
		--sessions "$sessions" --seconds $((ROUNDS * 200 * SCALE)) --stop "$stopf" \
		--timeout $((1500 * SCALE)) --seed "$SEED" --pad 512 --retries $retries \
		>"$TESTDIR/client-$N-$ph.out" 2>"$TESTDIR/client-$N-$ph.err" &
	cpid=$!
	started_pids="$started_pids $cpid"
	sleep 2
	r=1
	while [ $r -le "$ROUNDS" ]; do "${ph}_round" $r; r=$((r + 1)); done
	sleep 1
	touch "$stopf"
	wait_exit "$cpid" $((5000 * SCALE))
	ok $? "$N nodes, $ph: the clients stop"
	summary=$(cat "$TESTDIR/client-$N-$ph.out")
	diag "$N nodes, $ph: $summary"
	cut -d' ' -f6- "$TESTDIR/client-$N-$ph.err" | sed 's/[0-9][0-9]*/N/g' | sort | uniq -c |
		sort -rn | head -n 12 | while IFS= read -r l; do diag "  $l"; done
	client_ok "$summary"
	ok $? "$N nodes, $ph: OK writes at every ack level, OK reads at every level, both frontends"
	all_follow "$N nodes, $ph, at the end"
	out=$(hub "$CLIENT" final "$(addrs_of client_addr)" "$(addrs_of rest_addr)" "$ph" "$hist" \
		--first-client 1000 --timeout $((3000 * SCALE)) --seconds $((60 * SCALE)) 2>&1)
	ok $? "$N nodes, $ph: every key read at strong from every node" || diag "$out"
	diag "$(echo "$out" | tail -n 1)"
	histcheck "$hist" "$N nodes, $ph"
	diag "$N nodes, $ph: retried writes answered from their sessions by the leaders /" \
		"entries skipped as duplicates by the replicas (since each node's start):" \
		"$(session_metric shoal_session_retries_answered_total) /" \
		"$(session_metric shoal_session_entries_skipped_total)"
}

# session_metric NAME: NAME summed over the nodes' /metrics
session_metric() {
	s=0
	for i in $all; do
		v=$(hub curl -s --max-time 5 "http://$(rest_addr "$i")/metrics" |
			awk -v m="$1" '$1 == m { print $2 }')
		s=$((s + ${v:-0}))
	done
	echo $s
}

run_cluster() {
	N=$1
	PFX=c${N}n
	all=$(nodes_all)
	sessions=${HISTORY_SESSIONS:-$((N < 5 ? 6 : 8))}
	if [ -z "$NS_PREFIX" ]; then free_base_port "$N" || bail_out "no free ports"; fi
	t_start=$(now_ms)
	for i in $all; do start_node "$i"; done
	wait_leader "$all"
	ok $? "$N nodes elect a leader" || { stop_cluster; return; }
	out=$(hub "$SHOALCTL" --addr "$(addrs_of client_addr "$all")" --ack quorum --timeout 10000 \
		collection create filler --dim 3 2>&1)
	ok $? "$N nodes: collection create filler" || diag "$out"
	run_phase crash
	if [ $partitions = yes ]; then
		run_phase partition
	else
		skip "$N nodes: partitions in network namespaces: $why"
	fi
	check_converged "$all" "$N nodes"
	taken=$(cat "$TESTDIR/$PFX"*.log | grep -c 'snapshot at index')
	installed=$(cat "$TESTDIR/$PFX"*.log | grep -c "installed the leader's snapshot")
	ok $([ "$installed" -gt 0 ]; echo $?) \
		"$N nodes: logs compacted ($taken snapshots), followers installed the leader's snapshot ($installed)"
	stop_cluster
	diag "$N nodes: the run took $(($(now_ms) - t_start)) ms"
}

keep=no
for n in $SIZES; do run_cluster "$n"; done

if [ "$tap_failed" -gt 0 ] || [ $keep = yes ]; then
	mkdir -p "$OUTDIR"
	cp "$TESTDIR"/*.log "$TESTDIR"/*.txt "$TESTDIR"/client-* "$OUTDIR" 2>/dev/null
	diag "kept the histories, the clients' output and the node logs in $OUTDIR"
fi
done_testing
