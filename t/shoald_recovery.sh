#!/bin/sh
# Startup recovery says what it does (issue 12): a node whose data dir
# takes a moment to recover logs that it replays the log (or applies the
# committed entries after it), with progress lines — entries done of the
# total, points indexed, rate, time left — at most one a second; then the
# snapshot it loads, with its size.  The state after the restart is the
# state before it.
. "${top_srcdir:-.}/t/tap.sh"
. "${top_srcdir:-.}/t/lib.sh"

SHOALCTL=$top_builddir/src/client/shoalctl
DIR=$TESTDIR/d
# --node-name r, one node, everything kept in the log (no snapshot); apply
# indexes (index.background = false) so that the replay takes a moment: in
# the background, it takes a fraction of a second (doc/write-path.md)
start() {
	start_shoald "$TESTDIR/$1" --node-name r --node-data-dir "$DIR" \
		--listen-base-port "${fixed_base:-0}" --storage-snapshot-entries 100000000 \
		--index-background false
	[ -n "${fixed_base:-}" ] || fixed_base=$node_base
}
ctl() { "$SHOALCTL" --addr "127.0.0.1:$((fixed_base * 10 + 2))" --timeout $((60000 * SCALE)) "$@"; }
status_of() { ctl status 2>/dev/null | sed -n "s/.*$1 \([0-9a-f]*\).*/\1/p" | head -n 1; }
applied_of() { ctl status 2>/dev/null | sed -n 's/.*applied \([0-9]*\),.*/\1/p'; }
commit_of() { ctl status 2>/dev/null | sed -n 's/.*commit \([0-9]*\),.*/\1/p'; }
# wait_applied N: the node's applied index reaches N (N empty: its commit
# index, which it reports).
wait_applied() {
	deadline=$(($(date +%s) + 120 * SCALE))
	while :; do
		a=$(applied_of)
		want=${1:-$(commit_of)}
		[ -n "$a" ] && [ -n "$want" ] && [ "$a" -ge "$want" ] && return 0
		[ "$(date +%s)" -ge $deadline ] && return 1
		sleep 0.2
	done
}
# progress_lines LOG: the progress lines of a log.
progress_lines() { grep -E "storage: (replaying the log|applying committed entries): " "$1"; }

plan 12

fixed_base=$("$top_builddir/t/freeport") || bail_out "no free port"
start r1.log
wait_for "$TESTDIR/r1.log" "elected leader" 10 || bail_out "the node does not start"
ctl collection create v --dim 96 --m 32 --ef-construction 400 >/dev/null ||
	bail_out "cannot create a collection"
awk 'BEGIN { srand(7); for (i = 1; i <= 12000; i++) {
	printf "{\"id\": %d, \"vector\": [", i
	for (d = 0; d < 96; d++) printf "%s%.3f", d ? "," : "", rand()
	printf "], \"payload\": {\"i\": %d}}\n", i } }' >"$TESTDIR/pts.jsonl"
t0=$(date +%s%3N)
out=$(ctl upsert v --jsonl "$TESTDIR/pts.jsonl" --batch 50 2>&1)
ok $? "12000 points (dim 96) loaded in 240 entries" || diag "$out"
diag "acknowledged in $(($(date +%s%3N) - t0)) ms"
wait_applied || diag "not all applied"
diag "applied in $(($(date +%s%3N) - t0)) ms"
applied=$(applied_of)
digest=$(status_of digest)
kill -TERM $pid
wait_exit $pid 20000
ok $? "the node stops"

start r2.log
wait_applied "$applied"
ok $? "restarted, it applies the whole log again (index $applied)"
is "$(status_of digest)" "$digest" "with the digest it had"
lines=$(progress_lines "$TESTDIR/r2.log")
diag "$lines"
like "$(cat "$TESTDIR/r2.log")" "storage: replaying " "it says that it replays the log"
n=$(printf '%s\n' "$lines" | grep -c .)
ok $([ "$n" -ge 1 ]; echo $?) "with $n progress line(s) while it takes a moment"
like "$lines" "points indexed" "a line says the points indexed"
printf '%s\n' "$lines" | grep -Eq '[0-9]+ of [0-9]+ entries \([0-9]+%\), [0-9]+ points indexed, [0-9]+ entries/s, about [0-9]+ s left'
ok $? "and entries done of the total, the rate and the time left"
# at most one a second: consecutive lines of one kind are >= 0.9 s apart
gaps=$(printf '%s\n' "$lines" | awk '{
	split(substr($1, 12, 12), t, ":"); ms = (t[1] * 3600 + t[2] * 60 + t[3]) * 1000
	k = $0 ~ /replaying/ ? "r" : "a"
	if (k in last && ms - last[k] < 900) bad++
	last[k] = ms } END { print bad + 0 }')
is "$gaps" 0 "at most one progress line a second"

ctl snapshot save "$TESTDIR/s.snap" >/dev/null
ok $? "a snapshot taken (shoalctl snapshot save)"
kill -TERM $pid
wait_exit $pid 20000
start r3.log
wait_applied "$applied"
like "$(cat "$TESTDIR/r3.log")" "storage: loading the snapshot at index" \
	"the next start says it loads the snapshot, with its size"
kill -TERM $pid
wait_exit $pid 20000
ok $? "the node stops"
done_testing
