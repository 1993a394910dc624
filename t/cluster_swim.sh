#!/bin/sh
# Membership with real processes: five shoald on 127.0.0.1 (profile local)
# find each other from one seed; kill -9 of one is reported dead by the
# others; SIGSTOP of one until the others declare it dead, then SIGCONT:
# it refutes and is alive again; the killed node restarted from its data
# dir rejoins with a higher incarnation; SIGTERM with
# cluster.leave_on_terminate leaves gracefully (left, not dead).  State is read from each node's log lines, and from
# `shoalctl members` and GET /cluster/members, which must agree with them.
. "${top_srcdir:-.}/t/tap.sh"
. "${top_srcdir:-.}/t/lib.sh"

N=5
T=20 # seconds to wait for one observation (times SHOAL_TIMEOUT_SCALE)
free_base_port $N || bail_out "no free ports"
seed=127.0.0.1:$((base * 10 + 1))
diag "base ports $base..$((base + N - 1)), seed $seed"

# Every node leaves on SIGTERM (cluster.leave_on_terminate; by default a
# stopped node stays a member and is seen dead).
start_node() {
	start_shoald "$TESTDIR/n$1.log" --node-name "n$1" --node-data-dir "$TESTDIR/d$1" \
		--listen-base-port $((base + $1)) --membership-profile local \
		--cluster-leave-on-terminate true \
		--cluster-seeds "$seed"
	eval "pid$1=\$pid"
}

log() { cat "$TESTDIR/n$1.log"; }

SHOALCTL=$top_builddir/src/client/shoalctl
# members NODE: NODE's `shoalctl members` table.
members() { "$SHOALCTL" --addr "127.0.0.1:$(((base + $1) * 10 + 2))" members; }
# member_field NODE WHO COLUMN: a column of WHO's row in NODE's table.
member_field() { members "$1" | awk -v w="$2" -v c="$3" '$1 == w { print $c }'; }
# rest_member NODE WHO: WHO's object in NODE's GET /cluster/members.
rest_member() {
	curl -s "http://127.0.0.1:$(((base + $1) * 10 + 3))/cluster/members" |
		sed 's/},{/}\n{/g' | grep "\"name\":\"$2\""
}

# all_see NODES PATTERN: every node in NODES logs PATTERN within T seconds.
all_see() {
	for i in $1; do
		wait_for "$TESTDIR/n$i.log" "$2" $T || { diag "n$i never logged: $2"; return 1; }
	done
}

# incarnation NODE WHO WHAT: the incarnation in NODE's last "member WHO ... WHAT" line.
incarnation() {
	sed -n "s/.*swim: member $2 (id [0-9a-f]*) at [^ ]* $3 (incarnation \([0-9]*\)).*/\1/p" \
		"$TESTDIR/n$1.log" | tail -n 1
}

i=0
while [ $i -lt $N ]; do start_node $i; i=$((i + 1)); done
all_see "0 1 2 3 4" "swim: membership on" || bail_out "a node did not start: $(cat "$TESTDIR"/n*.log)"
pass "five shoald started"

missing=0
for i in 0 1 2 3 4; do
	for j in 0 1 2 3 4; do
		[ $i = $j ] && continue
		[ $missing = 0 ] || break
		wait_for "$TESTDIR/n$i.log" "swim: member n$j (id [0-9a-f]*) at 127.0.0.1:$(((base + j) * 10 + 1)) joined" $T ||
			{ missing=$((missing + 1)); diag "n$i does not see n$j"; }
	done
done
is "$missing" 0 "every node sees the other four, at their advertised addresses"

table=$(members 0)
is "$(echo "$table" | awk 'NR > 1 && $3 == "alive"' | wc -l)" 5 \
	"shoalctl members on n0 lists five members, all alive" || diag "$table"
is "$(echo "$table" | awk 'NR == 2 { print $1, $5 }')" "n0 self" "the node asked comes first"
p=$(((base + 2) * 10))
is "$(echo "$table" | awk '$1 == "n2" { print $7, $8, $9 }')" \
	"127.0.0.1:$((p + 1)) 127.0.0.1:$((p + 2)) 127.0.0.1:$((p + 3))" \
	"with each member's cluster, client and REST addresses"
# n0 may know n1 from gossip alone until one of them probes the other
# (random order): wait for a packet from it, bounded.
k=0
while heard=$(member_field 0 n1 5) && [ "$heard" = never ] && [ $k -lt $((T * SCALE * 10)) ]; do
	sleep 0.1
	k=$((k + 1))
done
is "$(echo "$heard" | grep -c '^[0-9]\.[0-9]s$')" 1 "n0 hears from n1 within $T s, less than 10 s ago ($heard)"
# (again: n1 may know n3 from gossip alone for a while)
k=0
while j=$(rest_member 1 n3) && echo "$j" | grep -q '"last_heard_ms":-1' &&
	[ $k -lt $((T * SCALE * 10)) ]; do
	sleep 0.1
	k=$((k + 1))
done
like "$j" '"state":"alive","incarnation":0,' "GET /cluster/members on n1: n3 alive, incarnation 0"
is "$(echo "$j" | grep -c '"last_heard_ms":[0-9]')" 1 "with the time since last heard"

# kill -9 ----------------------------------------------------------------------
kill -9 "$pid4"
all_see "0 1 2 3" "swim: member n4 (id [0-9a-f]*) at [^ ]* is dead"
ok $? "kill -9 of n4: the four others report it dead"
is "$(member_field 1 n4 3)" dead "shoalctl members on n1 shows n4 dead"
like "$(rest_member 2 n4)" '"state":"dead"' "and so does GET /cluster/members on n2"

# SIGSTOP past the suspicion timeout, SIGCONT ------------------------------------
kill -STOP "$pid3"
all_see "0 1 2" "swim: member n3 (id [0-9a-f]*) at [^ ]* is dead"
ok $? "SIGSTOP of n3: the others declare it dead"
kill -CONT "$pid3"
wait_for "$TESTDIR/n3.log" "swim: refuted being suspected or declared dead: incarnation now" $T
ok $? "after SIGCONT n3 refutes"
all_see "0 1 2" "swim: member n3 (id [0-9a-f]*) at [^ ]* \(joined\|is alive again\) (incarnation [1-9]"
ok $? "and the others hold it alive again, at a higher incarnation"
inc=$(member_field 0 n3 4)
is "$(member_field 0 n3 3)" alive "shoalctl members on n0: n3 alive again"
ok $([ "${inc:-0}" -ge 1 ]; echo $?) "at incarnation $inc (>= 1)"

# restart ------------------------------------------------------------------------
dead_inc=$(incarnation 0 n4 "is dead")
start_node 4
back=no
deadline=$(($(date +%s) + T * SCALE))
while [ "$(date +%s)" -lt $deadline ]; do
	inc=$(incarnation 0 n4 joined)
	[ -n "$inc" ] && [ "$inc" -gt "${dead_inc:-0}" ] && { back=yes; break; }
	sleep 0.1
done
is "$back" yes "restarted n4 rejoins with a higher incarnation (died at ${dead_inc:-?}, back at ${inc:-?})"
like "$(log 4)" "refuted being suspected or declared dead" "it raised its incarnation itself"
all_see "1 2 3" "swim: member n4 (id [0-9a-f]*) at [^ ]* joined (incarnation [1-9]"
ok $? "every other node sees it back"

# graceful leave -----------------------------------------------------------------
kill -TERM "$pid2"
wait_exit "$pid2" $((5000))
ok $? "SIGTERM: n2 leaves and stops within 5 s"
is "$status" 0 "exit status 0"
like "$(log 2)" "swim: left the cluster" "n2 logs that it left"
all_see "0 1 3 4" "swim: member n2 (id [0-9a-f]*) at [^ ]* left"
ok $? "the others see n2 left"
is "$(member_field 0 n2 3)" left "shoalctl members on n0 shows n2 left"
sleep 1
! grep -q "swim: member n2 (id [0-9a-f]*) at [^ ]* is dead" "$TESTDIR"/n[0134].log
ok $? "n2 is not declared dead"

kill -USR1 "$pid0"
wait_for "$TESTDIR/n0.log" "swim: traffic: sent [1-9][0-9]* datagrams" $T
ok $? "SIGUSR1 logs the traffic counters"
for p in "$pid0" "$pid1" "$pid3" "$pid4"; do kill -TERM "$p"; done
for p in "$pid0" "$pid1" "$pid3" "$pid4"; do wait_exit "$p" 5000; done
is "$(grep -c 'swim: traffic: sent' "$TESTDIR/n0.log")" 2 "a stopping node logs its traffic again"

done_testing
