#!/bin/sh
# Disk full with real processes (issue 12; doc/operations.md, "Disk
# full").  Each node's data dir is a small tmpfs of its own (root only:
# the test skips, saying why, elsewhere).
#
# Three nodes under t/cluster_writer's quorum writes: the leader's tmpfs is
# filled to the last byte.  Its log cannot grow: it turns read-only — it
# hands leadership to another voter, refuses a write sent to it with
# RESOURCE_EXHAUSTED (REST: 429), still answers reads, and says so in
# GET /cluster (disk_full) and /metrics (shoal_storage_disk_full 1) —
# while the other two go on taking writes.  Then room comes back: it writes
# what it kept in memory, takes writes again, and all three converge with
# every acknowledged write on every node; and again after its restart.
#
# One node alone: full, it stays leader, refuses writes and serves reads;
# with room again it takes writes, and a restart recovers every
# acknowledged one.
. "${top_srcdir:-.}/t/tap.sh"
. "${top_srcdir:-.}/t/lib.sh"
. "${top_srcdir:-.}/t/cluster_lib.sh"

WRITER=$top_builddir/t/cluster_writer
COLL=c
mounts=

if [ "$(id -u)" != 0 ]; then
	echo "1..0 # SKIP not root: the test mounts a small tmpfs per node"
	exit 0
fi

umount_all() { for m in $mounts; do umount -l "$m" 2>/dev/null; done; }
trap 'cleanup_all' EXIT
cleanup_all() {
	kill_ours
	sleep 0.2
	umount_all
	cleanup
}

# tmpfs_dir DIR: DIR becomes a 24 MiB tmpfs.
tmpfs_dir() {
	mkdir -p "$1"
	mount -t tmpfs -o size=24m tmpfs "$1" || return 1
	mounts="$mounts $1"
}

# fill DIR: take every free byte of DIR's file system (DIR/filler).
fill() {
	dd if=/dev/zero of="$1/filler" bs=64k >/dev/null 2>&1
	dd if=/dev/zero of="$1/filler2" bs=4k >/dev/null 2>&1
	dd if=/dev/zero of="$1/filler3" bs=512 >/dev/null 2>&1
	return 0
}

rest() { curl -s --max-time 5 "$@"; }

# start_writer NODES FIRST_ID (as in t/cluster_raft.sh)
start_writer() {
	addrs=
	for i in $1; do addrs="$addrs${addrs:+,}$(client_addr "$i")"; done
	wdir=$TESTDIR/w$2
	mkdir -p "$wdir"
	"$WRITER" write "$addrs" $COLL "$wdir/acks" --first-id "$2" --timeout 2000 \
		--stop "$wdir/stop" --max-seconds $((100 * SCALE)) >"$wdir/out" 2>"$wdir/err" &
	wpid=$!
	started_pids="$started_pids $wpid"
}

stop_writer() {
	touch "$wdir/stop"
	wait_exit "$wpid" 15000
	ok $? "the writer stops"
	diag "writer: $(cat "$wdir/out")"
	f=$(sed -n 's/.*node [0-9]*: \([A-Z_]*\): .*/\1/p' "$wdir/err" | sort | uniq -c |
		tr '\n' ' ' | tr -s ' ')
	[ -n "$f" ] && diag "writer failures by status:$f"
}

# check_acked NODES WHAT: every id the writers acknowledged is on every node.
check_acked() {
	bad=
	cat "$TESTDIR"/w*/acks >"$TESTDIR/all.acks"
	for i in $1; do
		out=$("$WRITER" check "$(client_addr "$i")" $COLL "$TESTDIR/all.acks" 2>&1) ||
			{ bad="$bad $PFX$i"; diag "$PFX$i: $out"; }
	done
	is "$bad" "" "$2: every acknowledged id ($(wc -l <"$TESTDIR/all.acks")) is on every node"
}

# wait_json NODE KEY VALUE: GET /cluster of NODE has KEY = VALUE, within T s.
wait_json() {
	deadline=$(($(date +%s) + T))
	until [ "$(jf "$(cluster_json "$1")" "$2")" = "$3" ]; do
		[ "$(date +%s)" -ge $deadline ] && return 1
		sleep 0.1
	done
}

# upsert NODE ID: one point through NODE's REST port; prints the HTTP code.
upsert() {
	rest -o "$TESTDIR/up.json" -w '%{http_code}' -X PUT \
		"http://$(rest_addr "$1")/collections/$COLL/points?ack=quorum&timeout_ms=2000" \
		-H 'content-type: application/json' \
		-d "{\"points\":[{\"id\":$2,\"vector\":[1,2,3]}]}"
}

# ==================================================================== 3 nodes
N=3
PFX=d
free_base_port 4 || bail_out "no free ports"
for i in 0 1 2; do
	tmpfs_dir "$TESTDIR/$PFX$i" || { echo "1..0 # SKIP cannot mount a tmpfs"; exit 0; }
done
for i in 0 1 2; do start_node $i; done
wait_leader "0 1 2"
ok $? "three nodes elect a leader" || bail_out "no leader: $(tail -n 5 "$TESTDIR"/d*.log)"
"$SHOALCTL" --addr "$(client_addr 0),$(client_addr 1),$(client_addr 2)" --ack quorum \
	collection create $COLL --dim 3 >/dev/null 2>&1
ok $? "collection create"

start_writer "0 1 2" 1000000
sleep 1
full=$leader full_id=$leader_id
others=$(without "0 1 2" "$full")
fill "$TESTDIR/$PFX$full"
diag "filled $PFX$full's file system: $(df -k "$TESTDIR/$PFX$full" | tail -n 1)"
wait_json "$full" disk_full true
ok $? "the full leader $PFX$full reports disk_full in GET /cluster"
eval "lg=\$log_$full"
like "$(grep 'storage: disk full' "$lg")" "No space left on device" "and logs why"
like "$(cat "$lg")" "): this node is read-only — it refuses writes, serves reads" \
	"and what it does"
wait_leader "0 1 2" "$full_id"
ok $? "it hands leadership to another voter ($PFX$leader leads)"
is "$(jf "$(cluster_json "$full")" role)" follower "the full node follows"
code=$(upsert "$full" 1)
is "$code" 429 "a write sent to the full node is refused (HTTP 429)"
like "$(cat "$TESTDIR/up.json")" '"code":"RESOURCE_EXHAUSTED"' "with RESOURCE_EXHAUSTED"
like "$(cat "$TESTDIR/up.json")" "disk is full: it is read-only" "saying why"
out=$("$SHOALCTL" --addr "$(client_addr "$full")" get $COLL 1000000 2>&1)
ok $? "the full node serves reads (get at eventual)" || diag "$out"
like "$(rest "http://$(rest_addr "$full")/metrics")" "shoal_storage_disk_full 1" \
	"/metrics: shoal_storage_disk_full 1"
like "$("$SHOALCTL" --addr "$(client_addr "$full")" status 2>&1)" "ALARM: disk full" \
	"shoalctl status raises the alarm"
a0=$(wc -l <"$wdir/acks")
sleep 1.5
a1=$(wc -l <"$wdir/acks")
ok "$([ "$a1" -gt "$a0" ]; echo $?)" \
	"the other two go on taking writes ($((a1 - a0)) acknowledged in 1.5 s)"

rm -f "$TESTDIR/$PFX$full"/filler*
wait_json "$full" disk_full false
ok $? "room again: $PFX$full is no longer full"
like "$(cat "$lg")" "ms: this node takes writes" "and logs it"
sleep 1
stop_writer
code=$(upsert "$full" 2)
is "$code" 200 "it takes writes again" || diag "$(cat "$TESTDIR/up.json")"
check_converged "0 1 2" "after the full disk"
check_acked "0 1 2" "after the full disk"

eval "kill -TERM \$pid_$full; wait_exit \$pid_$full 10000"
start_node "$full"
wait_leader "0 1 2"
ok $? "$PFX$full restarted: all three follow one leader"
check_converged "0 1 2" "after its restart"
check_acked "0 1 2" "after its restart"
stop_cluster

# ==================================================================== 1 node
N=1
PFX=s
rm -rf "$TESTDIR"/w*
tmpfs_dir "$TESTDIR/s0" || bail_out "cannot mount"
start_node 0
wait_leader "0"
ok $? "one node leads"
"$SHOALCTL" --addr "$(client_addr 0)" collection create $COLL --dim 3 >/dev/null 2>&1
start_writer "0" 1000000
sleep 1
fill "$TESTDIR/s0"
wait_json 0 disk_full true
ok $? "alone and full: disk_full"
sleep 1
is "$(jf "$(cluster_json 0)" role)" leader "a lone voter stays leader"
is "$(upsert 0 1)" 429 "and refuses writes (HTTP 429)"
out=$("$SHOALCTL" --addr "$(client_addr 0)" --consistency strong get $COLL 1000000 2>&1)
ok $? "and serves reads at strong" || diag "$out"
rm -f "$TESTDIR/s0"/filler*
wait_json 0 disk_full false
ok $? "room again: not full"
sleep 1
stop_writer
is "$(upsert 0 2)" 200 "it takes writes again"
check_acked "0" "alone"
kill -TERM "$pid_0"
wait_exit "$pid_0" 10000
start_node 0
wait_leader "0"
check_acked "0" "alone, after a restart"
kill -TERM "$pid_0"
wait_exit "$pid_0" 10000
ok $? "it stops"
done_testing
