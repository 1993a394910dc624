#!/bin/sh
# Clients that follow the cluster (issue 15, doc/clients.md): libshoal
# (through shoalctl) given a follower's address, or a list of seeds, sends
# its writes straight to the leader — no follower forwards one
# (shoal_raft_forwarded_writes_total stays 0) — and after kill -9 of the
# leader, a write given only the seed list is acknowledged once a new
# leader is elected, within its deadline, by the retries.
. "${top_srcdir:-.}/t/tap.sh"
. "${top_srcdir:-.}/t/lib.sh"
. "${top_srcdir:-.}/t/cluster_lib.sh"

forwarded() { # forwarded NODE: the node's shoal_raft_forwarded_writes_total
	curl -s --max-time 5 "http://$(rest_addr "$1")/metrics" |
		awk '$1 == "shoal_raft_forwarded_writes_total" { print $2 }'
}
forwarded_sum() { s=0; for i in $1; do s=$((s + $(forwarded "$i"))); done; echo $s; }
counts() { # counts NODE: binary count requests the node answered OK
	curl -s --max-time 5 "http://$(rest_addr "$1")/metrics" |
		awk '/^shoal_requests_total\{api="binary",method="count",status="OK"\}/ { v = $2 }
			END { print v + 0 }'
}
points() { # points N FIRST: N points of 4 dimensions from id FIRST, as JSON lines
	awk -v n="$1" -v f="$2" 'BEGIN { for (i = f; i < f + n; i++)
		printf "{\"id\": %d, \"vector\": [%d, 1, 2, 3]}\n", i, i }'
}

plan 17

free_base_port 3 || bail_out "no free ports"
N=3
PFX=c
for i in 0 1 2; do start_node $i; done
wait_leader "0 1 2"
ok $? "three nodes elect a leader" || bail_out "no leader"
follower=$(without "0 1 2" "$leader" | cut -d' ' -f1)
SEEDS="$(client_addr 0),$(client_addr 1),$(client_addr 2)"
T_MS=$((20000 * SCALE))

out=$("$SHOALCTL" --addr "$(client_addr "$follower")" --timeout $T_MS \
	collection create c --dim 4 2>&1)
ok $? "a collection created through a follower's address (n$follower)" || diag "$out"
points 300 1 >"$TESTDIR/a.jsonl"
out=$("$SHOALCTL" --addr "$(client_addr "$follower")" --timeout $T_MS --ack quorum \
	upsert c --jsonl "$TESTDIR/a.jsonl" --batch 50 2>&1)
ok $? "300 points upserted in 6 batches through it" || diag "$out"
singles=0
for id in 1001 1002 1003; do
	"$SHOALCTL" --addr "$(client_addr "$follower")" --timeout $T_MS \
		upsert c --id $id --vector "$id,1,2,3" >/dev/null 2>&1 && singles=$((singles + 1))
done
is "$singles" 3 "and 3 single upserts"
is "$(forwarded_sum "0 1 2")" 0 "no node forwarded a write: the client sent them to the leader"

# a pipelined upsert with more batches in flight than a session keeps
# results for (1,024): every batch applies (review of the sessions: they
# were refused, or at ack leader answered OK and never applied)
points 3000 5001 >"$TESTDIR/p.jsonl"
out=$("$SHOALCTL" --addr "$SEEDS" --timeout $T_MS upsert c --jsonl "$TESTDIR/p.jsonl" \
	--batch 1 --depth 2000 2>&1)
ok $? "3,000 single-point batches, 2,000 in flight" || diag "$out"
is "$("$SHOALCTL" --addr "$SEEDS" --timeout $T_MS --consistency strong count c 2>&1)" 3303 \
	"  all applied (count at strong)"

# SHOAL_ADDRS and repeated --addr
out=$(SHOAL_ADDRS=$SEEDS "$SHOALCTL" --timeout $T_MS --consistency strong count c 2>&1)
is "$out" 3303 "SHOAL_ADDRS: a list of seeds"
out=$("$SHOALCTL" --addr 127.0.0.1:1 --addr "$(client_addr "$follower")" --timeout $T_MS \
	--consistency strong count c 2>&1)
is "$out" 3303 "--addr twice: the first unreachable, the second answers"

# where reads go (doc/clients.md, "Where reads go"): to the preferred node
# (a follower) whatever the seed list says; spread over the members
before=$(counts "$follower")
lead_before=$(counts "$leader")
n=0
for k in 1 2 3 4 5; do
	"$SHOALCTL" --addr "$(client_addr "$leader"),$SEEDS" --read-addr "$(client_addr "$follower")" \
		--timeout $T_MS count c >/dev/null 2>&1 && n=$((n + 1))
done
is "$n $(($(counts "$follower") - before)) $(($(counts "$leader") - lead_before))" "5 5 0" \
	"--read-addr: 5 counts, all answered by the preferred follower n$follower, none by the leader"
for i in 0 1 2; do eval "c_$i=\$(counts $i)"; done
n=0
for k in $(seq 1 24); do
	"$SHOALCTL" --addr "$SEEDS" --read-from spread --timeout $T_MS count c >/dev/null 2>&1 &&
		n=$((n + 1))
done
served=0
for i in 0 1 2; do [ "$(counts $i)" -gt "$(eval echo "\$c_$i")" ] && served=$((served + 1)); done
is "$n" 24 "--read-from spread: 24 counts answered"
ok "$([ "$served" -ge 2 ] && echo 0 || echo 1)" "  by $served of the 3 nodes (members drawn at random per handle)"

# kill -9 of the leader: the next write, given only the seeds (the dead
# leader first), is acknowledged once a new leader is elected
old=$leader
dead_first="$(client_addr "$old"),$SEEDS"
kill -9 "$(eval echo "\$pid_$old")"
t0=$(now_ms)
out=$("$SHOALCTL" --addr "$dead_first" --timeout $T_MS --ack quorum \
	upsert c --id 2001 --vector "2001,1,2,3" 2>&1)
ok $? "a write right after kill -9 of the leader (n$old) is acknowledged" || diag "$out"
diag "kill -9 to acknowledgement: $(($(now_ms) - t0)) ms (shoalctl start included)"
rest=$(without "0 1 2" "$old")
wait_leader "$rest" "$leader_id"
ok $? "the two others have a new leader (n$leader)"
before=$(forwarded_sum "$rest")
points 200 3001 >"$TESTDIR/b.jsonl"
out=$("$SHOALCTL" --addr "$dead_first" --timeout $T_MS --ack quorum \
	upsert c --jsonl "$TESTDIR/b.jsonl" --batch 50 2>&1)
ok $? "200 more points through the seed list, the dead node first" || diag "$out"
is "$(forwarded_sum "$rest")" "$before" "and the new leader got them directly (none forwarded)"
stop_cluster
done_testing
