#!/bin/sh
# shoald and its storage, as processes: a fresh data dir recovers nothing;
# a data dir written by a writer killed with SIGKILL (t/storage_writer) is
# recovered and logged; a damaged record in the middle of the log stops
# shoald with the file and offset; a torn tail is cut with a warning.
. "${top_srcdir:-.}/t/tap.sh"
. "${top_srcdir:-.}/t/lib.sh"

WRITER=$top_builddir/t/storage_writer

start_shoald "$TESTDIR/a.log" --node-data-dir "$TESTDIR/a" --node-name a
wait_for "$TESTDIR/a.log" "started" 10
ok $? "shoald starts on a fresh data dir"
like "$(cat "$TESTDIR/a.log")" \
	"storage: recovered snapshot at index 0 (term 0), replayed 0 entries up to index 0: 0 collections, 0 points" \
	"and logs that it recovered nothing"
like "$(cat "$TESTDIR/a.log")" "client API listening on 127.0.0.1:${node_base}2" \
	"and serves clients"
kill -TERM "$pid"
wait_exit "$pid" 2000
is "$status" 0 "SIGTERM: exit status 0"

# a data dir left by a writer killed in the middle of its work
"$WRITER" "$TESTDIR/b" 7 >"$TESTDIR/w.out" 2>"$TESTDIR/w.err" &
w=$!
started_pids="$started_pids $w"
acks() { n=$(grep -c ack "$TESTDIR/w.out" 2>/dev/null); echo "${n:-0}"; }
i=0
while [ "$(acks)" -lt 60 ] && [ $i -lt $((200 * SCALE)) ]; do
	sleep 0.05; i=$((i + 1))
done
kill -9 "$w"
wait "$w" 2>/dev/null
acked=$(acks)
ok "$([ "$acked" -ge 60 ]; echo $?)" "the writer acknowledged $acked batches before SIGKILL"

start_shoald "$TESTDIR/b.log" --node-data-dir "$TESTDIR/b" --node-name b
wait_for "$TESTDIR/b.log" "started" 10
ok $? "shoald starts on the writer's data dir"
line=$(grep "storage: recovered" "$TESTDIR/b.log")
like "$line" ": 1 collections, " "it recovered the collection"
last=$(echo "$line" | sed 's/.* up to index \([0-9]*\):.*/\1/')
ok "$([ "$last" -ge $((acked + 1)) ]; echo $?)" \
	"and the log up to index $last (every acknowledged batch: $acked + the create)"
kill -TERM "$pid"
wait_exit "$pid" 2000
is "$status" 0 "SIGTERM: exit status 0"

# damage the first record of the oldest segment: corruption before the tail
seg=$(ls "$TESTDIR/b/wal" | head -1)
cp "$TESTDIR/b/wal/$seg" "$TESTDIR/seg.orig"
printf '\336\255\276\357' | dd of="$TESTDIR/b/wal/$seg" bs=1 seek=36 conv=notrunc 2>/dev/null
start_shoald "$TESTDIR/c.log" --node-data-dir "$TESTDIR/b" --node-name b
wait_exit "$pid" $((10000 * SCALE))
is "$status" 1 "a damaged record in the middle of the log: shoald refuses to start"
like "$(cat "$TESTDIR/c.log")" \
	"cannot start: storage: wal: segment '$TESTDIR/b/wal/$seg': corrupt record at offset 32: checksum mismatch (stored efbeadde" \
	"naming the file and the offset"
cp "$TESTDIR/seg.orig" "$TESTDIR/b/wal/$seg"

# cut the last segment inside its last record: a torn tail.  A last
# segment that holds no record yet (the writer was killed just after it
# started one) goes first, as if the crash had come before it.
last_seg=$(ls "$TESTDIR/b/wal" | tail -1)
while [ "$(wc -c <"$TESTDIR/b/wal/$last_seg")" -le 80 ] && [ "$(ls "$TESTDIR/b/wal" | wc -l)" -gt 1 ]; do
	rm "$TESTDIR/b/wal/$last_seg"
	last_seg=$(ls "$TESTDIR/b/wal" | tail -1)
done
size=$(wc -c <"$TESTDIR/b/wal/$last_seg")
truncate -s $((size - 7)) "$TESTDIR/b/wal/$last_seg"
start_shoald "$TESTDIR/d.log" --node-data-dir "$TESTDIR/b" --node-name b
wait_for "$TESTDIR/d.log" "started" 10
ok $? "a segment cut mid-record: shoald starts"
like "$(cat "$TESTDIR/d.log")" "WARN  b wal: segment '$TESTDIR/b/wal/$last_seg': cut a torn tail of " \
	"with a warning naming the segment"
like "$(cat "$TESTDIR/d.log")" "(record body cut short); the log now ends at index $((last - 1))" \
	"saying why and where the log ends"
kill -TERM "$pid"
wait_exit "$pid" 2000
is "$status" 0 "SIGTERM: exit status 0"
done_testing
