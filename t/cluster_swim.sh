#!/bin/sh
# Membership with real processes: five shoald on 127.0.0.1 (profile local)
# find each other from one seed; kill -9 of one is reported dead by the
# others; SIGSTOP of one until the others declare it dead, then SIGCONT:
# it refutes and is alive again; the killed node restarted from its data
# dir rejoins with a higher incarnation; SIGTERM leaves gracefully (left,
# not dead).  State is read from each node's log lines.
. "${top_srcdir:-.}/t/tap.sh"
. "${top_srcdir:-.}/t/lib.sh"

N=5
T=20 # seconds to wait for one observation (times SHOAL_TIMEOUT_SCALE)
free_base_port $N || bail_out "no free ports"
seed=127.0.0.1:$((base * 10 + 1))
diag "base ports $base..$((base + N - 1)), seed $seed"

start_node() {
	start_shoald "$TESTDIR/n$1.log" --node-name "n$1" --node-data-dir "$TESTDIR/d$1" \
		--listen-base-port $((base + $1)) --membership-profile local \
		--cluster-seeds "$seed"
	eval "pid$1=\$pid"
}

log() { cat "$TESTDIR/n$1.log"; }

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

# kill -9 ----------------------------------------------------------------------
kill -9 "$pid4"
all_see "0 1 2 3" "swim: member n4 (id [0-9a-f]*) at [^ ]* is dead"
ok $? "kill -9 of n4: the four others report it dead"

# SIGSTOP past the suspicion timeout, SIGCONT ------------------------------------
kill -STOP "$pid3"
all_see "0 1 2" "swim: member n3 (id [0-9a-f]*) at [^ ]* is dead"
ok $? "SIGSTOP of n3: the others declare it dead"
kill -CONT "$pid3"
wait_for "$TESTDIR/n3.log" "swim: refuted being suspected or declared dead: incarnation now" $T
ok $? "after SIGCONT n3 refutes"
all_see "0 1 2" "swim: member n3 (id [0-9a-f]*) at [^ ]* \(joined\|is alive again\) (incarnation [1-9]"
ok $? "and the others hold it alive again, at a higher incarnation"

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
