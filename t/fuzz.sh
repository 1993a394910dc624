#!/bin/sh
# The fuzz targets (t/fuzz/): in a --enable-fuzzing build each runs under
# libFuzzer for FUZZ_SECONDS (default 3) starting from a copy of its corpus
# in t/fuzz/corpus/; in other builds the corpus is replayed through the same
# entry points (a regression test that runs everywhere, also under ASan).
. "${top_srcdir:-.}/t/tap.sh"
. "${top_srcdir:-.}/t/lib.sh"

secs=${FUZZ_SECONDS:-3}
for t in frame request rest_json peer wal snapshot gossip; do
	bin=$top_builddir/t/fuzz/fuzz_$t
	corpus=$top_srcdir/t/fuzz/corpus/$t
	if [ "${SHOAL_FUZZING:-no}" = yes ]; then
		mkdir -p "$TESTDIR/$t" "$TESTDIR/$t.art"
		cp "$corpus"/* "$TESTDIR/$t/"
		"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
			-artifact_prefix="$TESTDIR/$t.art/" "$TESTDIR/$t" >"$TESTDIR/$t.log" 2>&1
		rc=$?
		runs=$(grep -o 'Done [0-9]* runs' "$TESTDIR/$t.log" | tail -1)
		ok $rc "fuzz_$t: libFuzzer for ${secs}s from $(ls "$corpus" | wc -l) seeds (${runs:-no summary})" ||
			{ tail -30 "$TESTDIR/$t.log" | while read -r l; do diag "$l"; done
			  ls "$TESTDIR/$t.art" | while read -r l; do diag "artifact: $l"; done; }
	else
		out=$("$bin" "$corpus" 2>&1)
		ok $? "fuzz_$t: corpus replayed ($out)"
	fi
done
done_testing
