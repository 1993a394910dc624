#!/bin/sh
# Cluster operations with real processes (issue 12).  On a three-node
# cluster (profile local):
#   - a rolling restart, SIGTERM then start, node after node, under a write
#     load: three voters all along, no acknowledged write lost;
#   - all three stopped, then started again in another order: one cluster
#     again, three voters, the same state;
#   - a node of another cluster given our seeds is refused, with a log line
#     on both sides, and never becomes a member;
#   - a copy of a follower's data dir (a second node with its id) exits
#     saying why, the cluster logs it, the follower is unaffected;
#   - `shoalctl cluster remove` keeps an alive node out until `cluster add`;
#   - a write at ack all with a voter down is refused at once, the same way
#     on the binary protocol and on REST;
#   - `shoalctl cluster leave` takes the node asked out of the voters.
. "${top_srcdir:-.}/t/tap.sh"
. "${top_srcdir:-.}/t/lib.sh"
. "${top_srcdir:-.}/t/cluster_lib.sh"

COLL=c
ctl() { cn=$1; shift; "$SHOALCTL" --addr "$(client_addr "$cn")" --timeout $((10000 * SCALE)) "$@"; }
name_id() { jf "$(cluster_json "$1")" node_id; }
# in_conf NODE ID: voter, learner or out, as NODE's /cluster says.
in_conf() {
	j=$(cluster_json "$1")
	if printf '%s' "$j" | sed -n 's/.*"voters":\[\([^]]*\)\].*/\1/p' | grep -q "$2"; then
		echo voter
	elif printf '%s' "$j" | sed -n 's/.*"learners":\[\([^]]*\)\].*/\1/p' | grep -q "$2"; then
		echo learner
	else
		echo out
	fi
}
# wait_conf NODE ID WANT: until in_conf says WANT (T seconds).
wait_conf() {
	deadline=$(($(date +%s) + T))
	while [ "$(in_conf "$1" "$2")" != "$3" ]; do
		[ "$(date +%s)" -ge $deadline ] && return 1
		sleep 0.1
	done
}
# voters_everywhere NODES: the voter count each of NODES reports.
voters_everywhere() {
	v=
	for vn in $1; do v="$v $(voters "$(cluster_json "$vn")")"; done
	echo "$v" | sed 's/^ //'
}

plan 44

N=3
PFX=n
free_base_port 6 || bail_out "no free ports"
b0=$base
for i in 0 1 2; do start_node $i; done
wait_leader "0 1 2"
ok $? "three nodes elect a leader" || bail_out "no leader"
out=$(ctl 0 --ack quorum collection create $COLL --dim 3 2>&1)
ok $? "collection created" || diag "$out"

# ------------------------------------------------------------ rolling restart
start_writer "0 1 2" 1000000
min_voters=3
rolled=0
# (loop variables are not i: the helpers use it)
for rn in 0 1 2; do
	sleep 1
	eval "p=\$pid_$rn"
	kill -TERM "$p"
	wait_exit "$p" 10000 || diag "$PFX$rn did not stop on SIGTERM"
	others=$(without "0 1 2" "$rn")
	wait_leader "$others" || diag "no leader among $others with $PFX$rn stopped"
	sleep 0.5
	for o in $others; do
		v=$(voters "$(cluster_json "$o")")
		[ "${v:-0}" -lt $min_voters ] && min_voters=${v:-0}
	done
	start_node "$rn"
	wait_leader "0 1 2" && rolled=$((rolled + 1))
done
sleep 1
stop_writer
is "$rolled" 3 "rolling restart: each node stopped by SIGTERM and started again rejoins"
is "$min_voters" 3 "rolling restart: the others list 3 voters while one is stopped"
is "$(voters_everywhere "0 1 2")" "3 3 3" "rolling restart: 3 voters afterwards"
check_converged "0 1 2" "after the rolling restart"
check_acked "0 1 2" "after the rolling restart"

# ------------------------------------------------------------ full stop
digest=$(jf "$(cluster_json 0)" digest)
for rn in 0 1 2; do eval "kill -TERM \$pid_$rn"; done
st=0
for rn in 0 1 2; do eval "wait_exit \$pid_$rn 10000" || st=1; done
ok $st "all three stop on SIGTERM"
for rn in 2 0 1; do start_node $rn; sleep 0.7; done
wait_leader "0 1 2"
ok $? "started again in the order n2 n0 n1 they form the cluster again"
is "$(voters_everywhere "0 1 2")" "3 3 3" "with 3 voters"
wait_converged "0 1 2"
is "$(jf "$(cluster_json 1)" digest)" "$digest" "and the state they had"

# ------------------------------------------------------------ another cluster
base=$((b0 + 3))
start_shoald "$TESTDIR/o0.log" --node-name o0 --node-data-dir "$TESTDIR/o0" \
	--listen-base-port "$base" --membership-profile local
opid=$pid
base=$b0
ok $(wait_for "$TESTDIR/o0.log" "bootstrapped a cluster" 10; echo $?) \
	"a single node bootstraps a cluster of its own"
kill -TERM $opid
wait_exit $opid 10000
start_shoald "$TESTDIR/o0.1.log" --node-name o0 --node-data-dir "$TESTDIR/o0" \
	--listen-base-port $((b0 + 3)) --membership-profile local \
	--cluster-seeds "127.0.0.1:$((b0 * 10 + 1))"
opid=$pid
eval "lg0=\$log_0"
ok $(wait_for "$lg0" "of another cluster: from 127.0.0.1:$(((b0 + 3) * 10 + 1))" 10; echo $?) \
	"restarted with our seeds, it is refused: n0 says so"
ok $(wait_for "$TESTDIR/o0.1.log" "of another cluster" 10; echo $?) \
	"and the refused node says so too"
sleep 1
members=$(curl -s "http://$(rest_addr "$leader")/cluster/members")
case "$members" in *'"o0"'*) r=1 ;; *) r=0 ;; esac
ok $r "it is not a member of our cluster"
is "$(voters_everywhere "0 1 2")" "3 3 3" "the configuration is unchanged"
kill -TERM $opid
wait_exit $opid 10000

# ------------------------------------------------------------ duplicate id
wait_leader "0 1 2"
f=$(without "0 1 2" "$leader" | cut -d' ' -f1)
fid=$(name_id "$f")
eval "fpid=\$pid_$f"
cp -r "$TESTDIR/n$f" "$TESTDIR/dup"
rm -f "$TESTDIR/dup/LOCK"
start_shoald "$TESTDIR/dup.log" --node-name dup --node-data-dir "$TESTDIR/dup" \
	--listen-base-port $((b0 + 4)) --membership-profile local \
	--cluster-seeds "127.0.0.1:$((b0 * 10 + 1))"
dpid=$pid
wait_exit $dpid $((10000 * SCALE))
ok $? "a copy of $PFX$f's data dir (its node id) started with our seeds exits"
is "${status:-}" 1 "with status 1"
like "$(cat "$TESTDIR/dup.log")" "already uses node id $fid" "saying that its id is in use"
grep -Eq "announces the id $fid of member|a copy of this node \(node id $fid\)" "$TESTDIR"/n*.log
ok $? "the cluster logs a second node with that id"
kill -0 "$fpid"
ok $? "$PFX$f is still running"
sleep 1
is "$(voters_everywhere "0 1 2")" "3 3 3" "the cluster still has its 3 voters"
ok $(ctl "$f" --ack all upsert $COLL --id 5 --vector 1,2,3 >/dev/null 2>&1; echo $?) \
	"$PFX$f still takes part: a write at ack all succeeds"

# ------------------------------------------------------------ remove, add
wait_leader "0 1 2"
r=$(without "0 1 2" "$leader" | cut -d' ' -f2)
rid=$(name_id "$r")
out=$(ctl "$leader" cluster remove "$PFX$r" 2>&1)
ok $? "cluster remove $PFX$r (alive)" || diag "$out"
wait_conf "$leader" "$rid" out
ok $? "it leaves the configuration"
sleep 3
is "$(in_conf "$leader" "$rid")" out "3 s later it is still out (the leader does not add it back)"
out=$(ctl "$leader" cluster add "$PFX$r" 2>&1)
ok $? "cluster add $PFX$r" || diag "$out"
wait_conf "$leader" "$rid" voter
ok $? "it comes back, and is a voter again once caught up"

# ------------------------------------------------------------ ack all, a voter down
wait_leader "0 1 2"
d=$(without "0 1 2" "$leader" | cut -d' ' -f1)
a=$(without "0 1 2" "$leader" | cut -d' ' -f2)
eval "dpid=\$pid_$d"
kill -TERM "$dpid"
wait_exit "$dpid" 10000
sleep 1.5
t0=$(now_ms)
bin=$(ctl "$a" --ack all upsert $COLL --id 6 --vector 1,2,3 2>&1)
bst=$?
bms=$(($(now_ms) - t0))
is "$bst" 6 "binary: a write at ack all with $PFX$d down fails UNAVAILABLE (exit 6)"
ok $([ $bms -lt $((2000 * SCALE)) ]; echo $?) "  at once ($bms ms)"
t0=$(now_ms)
rest=$(curl -s -w ' %{http_code}' -X PUT -H 'Content-Type: application/json' \
	-d '{"points": [{"id": 6, "vector": [1, 2, 3]}]}' \
	"http://$(rest_addr "$a")/collections/$COLL/points?ack=all&wait=true")
rms=$(($(now_ms) - t0))
like "$rest" '"code":"UNAVAILABLE"' "REST: the same write fails UNAVAILABLE"
like "$rest" " 503" "  with HTTP 503"
ok $([ $rms -lt $((2000 * SCALE)) ]; echo $?) "  at once ($rms ms)"
bmsg=$(echo "$bin" | sed -n 's/^shoalctl: upsert: UNAVAILABLE: //p' | sed 's/ (.*//' | head -n 1)
like "$rest" "${bmsg:-no message}" "  with the binary protocol's message ($bmsg)"
start_node "$d"
wait_leader "0 1 2"
ok $? "$PFX$d restarted follows again"

# ------------------------------------------------------------ leave
wait_leader "0 1 2"
l=$(without "0 1 2" "$leader" | cut -d' ' -f1)
lid=$(name_id "$l")
out=$(ctl "$l" cluster leave 2>&1)
ok $? "cluster leave on $PFX$l" || diag "$out"
wait_conf "$leader" "$lid" out
ok $? "$PFX$l is out of the configuration"
eval "lpid=\$pid_$l"
kill -TERM "$lpid"
wait_exit "$lpid" 10000
ok $? "it can then be stopped"
sleep 2
is "$(voters "$(cluster_json "$leader")")" 2 "the others go on with 2 voters"
ok $(ctl "$leader" --ack quorum upsert $COLL --id 7 --vector 1,2,3 >/dev/null 2>&1; echo $?) \
	"and take writes"

for rn in $(without "0 1 2" "$l"); do eval "kill -TERM \$pid_$rn"; done
st=0
for rn in $(without "0 1 2" "$l"); do eval "wait_exit \$pid_$rn 10000" || st=1; done
ok $st "the nodes stop on SIGTERM"
done_testing
