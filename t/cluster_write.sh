#!/bin/sh
# The write path with real processes (issue 13, doc/write-path.md): three
# nodes take a bulk load (20,000 points of 32 dimensions, m 32,
# ef_construction 400, so that indexing takes a while), and at once, while
# their graphs are still behind, searches on every node find every
# acknowledged point of a sample by its own vector: at strong at once, and
# at eventual as soon as the node has applied the load (at once on the
# leader, whose apply the acknowledgement waits for; a follower applies it
# a moment later, never after indexing).  Then the graphs catch up: points_fresh
# reaches 0 everywhere, the same searches still find the points, and the
# nodes agree (cluster verify).
. "${top_srcdir:-.}/t/tap.sh"
. "${top_srcdir:-.}/t/lib.sh"
. "${top_srcdir:-.}/t/cluster_lib.sh"

ctl() { n=$1; shift; "$SHOALCTL" --addr "$(client_addr "$n")" --timeout $((30000 * SCALE)) "$@"; }
coll_field() { # coll_field NODE KEY: a number of NODE's GET /collections/w
	curl -s --max-time 5 "http://$(rest_addr "$1")/collections/w" |
		sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p" | head -1
}
vec_of() { # vec_of ID: point ID's vector, as the load file has it
	sed -n "s/^{\"id\": $1, \"vector\": \[\([^]]*\)\].*/\1/p" "$TESTDIR/w.jsonl"
}
# finds NODE LEVEL: every sampled point is its own nearest neighbour on NODE
finds() {
	miss=0
	for id in $SAMPLE; do
		got=$("$SHOALCTL" --addr "$(client_addr "$1")" --timeout $((10000 * SCALE)) \
			--consistency "$2" search w --vector "$(vec_of "$id")" -k 1 --no-payload 2>&1 |
			awk 'NR == 1 { print $1 }')
		[ "$got" = "$id" ] || { miss=$((miss + 1)); diag "node $1 $2: point $id: got '$got'"; }
	done
	return $miss
}

plan 16

free_base_port 3 || bail_out "no free ports"
N=3
PFX=w
for i in 0 1 2; do start_node $i; done
wait_leader "0 1 2"
ok $? "three nodes elect a leader" || bail_out "no leader"
ctl 0 collection create w --dim 32 --m 32 --ef-construction 400 >/dev/null
ok $? "a collection of 32 dimensions (m 32, ef_construction 400)"
awk 'BEGIN { srand(11); for (i = 1; i <= 20000; i++) {
	printf "{\"id\": %d, \"vector\": [", i
	for (d = 0; d < 32; d++) printf "%s%.5f", d ? "," : "", rand() - 0.5
	printf "]}\n" } }' >"$TESTDIR/w.jsonl"
SAMPLE=$(awk 'BEGIN { srand(5); for (k = 0; k < 25; k++) print 1 + int(rand() * 20000) }' | sort -n | uniq)
SAMPLE="1 $SAMPLE 20000"

t0=$(now_ms)
out=$(ctl 1 --ack quorum upsert w --jsonl "$TESTDIR/w.jsonl" --batch 1000 2>&1)
ok $? "20,000 points acknowledged at quorum through a follower" || diag "$out"
diag "acknowledged in $(($(now_ms) - t0)) ms"
# a quorum acknowledgement waits for the leader's apply (doc/replication.md,
# "Writes and acks"): the leader finds the last point at eventual at once
wait_leader "0 1 2"
SAMPLE_ALL=$SAMPLE SAMPLE=20000
finds "$leader" eventual
ok $? "the leader (n$leader), eventual, at once: the last acknowledged point is found"
SAMPLE=$SAMPLE_ALL
fresh=""
for i in 0 1 2; do fresh="$fresh $(coll_field $i points_fresh)"; done
diag "points waiting for the graph on n0 n1 n2 right after the load:$fresh"

for i in 0 1 2; do
	finds $i strong
	ok $? "node $i, strong, at once: every sampled point is found by its vector"
done
# eventual: once the node has applied the load (points_count 20,000)
for i in 0 1 2; do
	deadline=$(($(now_ms) + 10000 * SCALE))
	until [ "$(coll_field $i points_count)" = 20000 ] || [ "$(now_ms)" -gt $deadline ]; do
		sleep 0.05
	done
	fresh=$(coll_field $i points_fresh)
	finds $i eventual
	ok $? "node $i, eventual, once applied ($fresh fresh then): every sampled point is found"
done

# the graphs catch up
deadline=$(($(now_ms) + 300000 * SCALE))
rate=0 status_line=""
while :; do
	f=0
	for i in 0 1 2; do f=$((f + $(coll_field $i points_fresh || echo 1))); done
	r=$(coll_field 2 indexing_rate)
	[ "${r:-0}" -gt $rate ] && rate=$r
	[ -n "$status_line" ] || [ "${f:-0}" = 0 ] ||
		status_line=$(ctl 2 status | grep '^collection w: ')
	[ $f = 0 ] || [ "$(now_ms)" -gt $deadline ] && break
	sleep 0.2
done
is "$f" 0 "every graph caught up (points_fresh 0 on every node, $(($(now_ms) - t0)) ms after the load began)"
[ $rate -gt 0 ]
ok $? "meanwhile n2 said how fast it indexed (at most $rate points/s)"
case "$status_line" in
"collection w: 20000 points, "*" fresh (oldest "*" ms), indexing "*" points/s") ok 0 "shoalctl status shows the write path: $status_line" ;;
*) ok 1 "shoalctl status shows the write path: '$status_line'" ;;
esac
finds 2 eventual
ok $? "then the points are found in the graph as well"
check_converged "0 1 2" "after indexing"
