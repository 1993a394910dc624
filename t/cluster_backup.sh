#!/bin/sh
# Backup and restore with real processes (issue 12).  A three-node cluster
# is loaded (a cosine and an l2 collection, payloads, deletes); then
#   - `shoalctl snapshot save` from a follower writes a file whose digest
#     is the follower's, and GET /snapshot on the other follower streams
#     the same state;
#   - `shoald --restore` refuses a corrupted file, a truncated one, a file
#     that is no snapshot, and a data dir that is not empty, each with a
#     clear error and nothing written;
#   - a fresh single node restored from the file, and a fresh three-node
#     cluster whose nodes are each restored from it, start with the same
#     digest and point count (shoalctl cluster verify agrees) and take
#     writes; the REST download restores to the same digest too.
. "${top_srcdir:-.}/t/tap.sh"
. "${top_srcdir:-.}/t/lib.sh"
. "${top_srcdir:-.}/t/cluster_lib.sh"

ctl() { n=$1; shift; "$SHOALCTL" --addr "$(client_addr "$n")" --timeout $((20000 * SCALE)) "$@"; }
digest_of() { jf "$(cluster_json "$1")" digest; }
points_of() { jf "$(cluster_json "$1")" points; }

plan 40

free_base_port 10 || bail_out "no free ports"
b0=$base

# ------------------------------------------------------------ the source
N=3
PFX=n
for i in 0 1 2; do start_node $i; done
all_pids="$pid_0 $pid_1 $pid_2"
wait_leader "0 1 2"
ok $? "three nodes elect a leader" || bail_out "no leader"
ctl 0 collection create cos --dim 8 --metric cosine >/dev/null &&
	ctl 0 collection create flat --dim 3 >/dev/null
ok $? "two collections created"
awk 'BEGIN { for (i = 1; i <= 3000; i++) {
	printf "{\"id\": %d, \"vector\": [", i
	for (d = 0; d < 8; d++) printf "%s%.4f", d ? "," : "", sin(i * (d + 1)) + 0.01
	printf "], \"payload\": {\"n\": %d, \"tag\": \"t%d\"}}\n", i, i % 7 } }' >"$TESTDIR/cos.jsonl"
ctl 1 upsert cos --jsonl "$TESTDIR/cos.jsonl" >/dev/null 2>&1 &&
	ctl 2 upsert flat --id 7 --vector 1,2,3 --payload '{"x": [1, 2]}' >/dev/null &&
	ctl 0 delete cos 10 11 12 >/dev/null
ok $? "3000 points upserted through followers, 3 deleted"
check_converged "0 1 2" "loaded"
src_digest=$(digest_of 0)
src_points=$(points_of 0)
is "$src_points" 2998 "the cluster holds 2998 points"

wait_leader "0 1 2"
f1=$(without "0 1 2" "$leader" | cut -d' ' -f1)
f2=$(without "0 1 2" "$leader" | cut -d' ' -f2)
out=$(ctl "$f1" snapshot save "$TESTDIR/b.snap" 2>&1)
ok $? "shoalctl snapshot save from follower $PFX$f1" || diag "$out"
diag "$out"
like "$out" "digest $src_digest" "the file holds the follower's digest"
[ -f "$TESTDIR/b.snap" ] && [ ! -e "$TESTDIR/b.snap.tmp" ]
ok $? "the file is in place, no temporary file left"
code=$(curl -s -o "$TESTDIR/rest.snap" -w '%{http_code}' "http://$(rest_addr "$f2")/snapshot")
is "$code" 200 "GET /snapshot on follower $PFX$f2 answers 200"
# Not byte for byte the binary one: each replica's graph and fresh set are
# its own (doc/write-path.md); the restore from it below checks its digest.
is "$(head -c 8 "$TESTDIR/rest.snap")" "SHOALSNP" \
	"the REST download is a snapshot file ($(wc -c <"$TESTDIR/rest.snap") bytes, the binary one $(wc -c <"$TESTDIR/b.snap"))"
out=$(curl -s -X POST "http://$(rest_addr "$f2")/snapshot")
like "$out" "method not allowed" "POST /snapshot is refused (405)"
out=$(curl -s "http://$(rest_addr "$f2")/snapshots")
like "$out" "GET /snapshot" "Qdrant's /snapshots is refused, pointing at GET /snapshot"

# ------------------------------------------------------------ bad files
# restore FILE DIR: shoald --restore, its stderr in $out, status in $st.
restore() {
	out=$("$SHOALD" --restore "$1" --node-data-dir "$2" 2>&1)
	st=$?
}
size=$(wc -c <"$TESTDIR/b.snap")
cp "$TESTDIR/b.snap" "$TESTDIR/bad.snap"
printf 'Z' | dd of="$TESTDIR/bad.snap" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
restore "$TESTDIR/bad.snap" "$TESTDIR/x1"
is "$st" 1 "a corrupted file: shoald --restore exits 1"
like "$out" "checksum mismatch" "... saying which frame's checksum does not match"
[ ! -e "$TESTDIR/x1" ]
ok $? "... and writes nothing"
head -c $((size - 100)) "$TESTDIR/b.snap" >"$TESTDIR/cut.snap"
restore "$TESTDIR/cut.snap" "$TESTDIR/x1"
is "$st" 1 "a truncated file is refused"
like "$out" "cut short" "... as cut short"
printf 'not a snapshot at all, but long enough to hold a header' >"$TESTDIR/junk.snap"
restore "$TESTDIR/junk.snap" "$TESTDIR/x1"
like "$out" "bad header: not a snapshot" "a file that is no snapshot is refused"
restore "$TESTDIR/b.snap" "$TESTDIR/n0"
is "$st" 1 "a data dir in use is refused"
like "$out" "is not empty" "... as not empty"

# ------------------------------------------------------------ one node
base=$((b0 + 3))
N=1
PFX=s
restore "$TESTDIR/b.snap" "$TESTDIR/s0"
is "$st" 0 "shoald --restore seeds a fresh data dir" || diag "$out"
like "$out" "digest $src_digest" "... and says the digest it restored"
start_node 0
wait_leader "0"
ok $? "the restored node starts and leads a cluster of its own"
is "$(digest_of 0)" "$src_digest" "its digest is the source's"
is "$(points_of 0)" "$src_points" "... and so is its point count"
out=$(ctl 0 search cos --vector 1,1,1,1,1,1,1,1 -k 3 2>&1)
ok $? "it answers searches" || diag "$out"
ctl 0 upsert flat --id 8 --vector 3,2,1 >/dev/null
ok $? "it takes writes"
all_pids="$all_pids $pid_0"
sid=$(jf "$(cluster_json 0)" cluster_id)
nid=$(base=$b0; jf "$(cluster_json 0)" cluster_id)
[ -n "$sid" ] && [ -n "$nid" ] && [ "$sid" != "$nid" ]
ok $? "its cluster id is a new one ($sid, the source's $nid)"

# ------------------------------------------------------------ three nodes
base=$((b0 + 5))
N=3
PFX=r
st_all=0
for i in 0 1 2; do
	src=$TESTDIR/b.snap
	[ $i = 2 ] && src=$TESTDIR/rest.snap
	restore "$src" "$TESTDIR/r$i" || st_all=1
	[ "$st" = 0 ] || { st_all=1; diag "$out"; }
done
ok $st_all "three fresh data dirs restored (one from the REST download)"
for i in 0 1 2; do start_node $i; done
all_pids="$all_pids $pid_0 $pid_1 $pid_2"
wait_leader "0 1 2"
ok $? "the three restored nodes bootstrap a cluster and elect a leader"
check_converged "0 1 2" "restored cluster"
is "$(digest_of 1)" "$src_digest" "the restored cluster's digest is the source's"
is "$(voters "$(cluster_json 0)")" 3 "it has three voters"
ctl 1 upsert flat --id 9 --vector 1,1,1 >/dev/null
ok $? "it takes writes (through a follower)"
check_converged "0 1 2" "after a write"
is "$(points_of 2)" $((src_points + 1)) "every node holds the new point"

# ------------------------------------------------------------ stop
for p in $all_pids; do kill -TERM "$p" 2>/dev/null; done
st_all=0
for p in $all_pids; do wait_exit "$p" 10000 || st_all=1; done
ok $st_all "every node stops on SIGTERM"
done_testing
