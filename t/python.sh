#!/bin/sh
# The Python client (python/shoal, doc/python.md): t/python/test_client.py
# under pytest against real shoald processes (one node; three with kill -9
# and SIGSTOP of the leader), each pytest test one TAP line.  Skipped, with
# the reason, when configure found no Python with google.protobuf and numpy
# (contrib/deps.sh installs them) or pytest is missing.
. "${top_srcdir:-.}/t/tap.sh"
. "${top_srcdir:-.}/t/lib.sh"

if [ -z "${PYTHON:-}" ] || [ ! -f "$top_builddir/gen/python/shoal/shoal_pb2.py" ]; then
	echo "1..0 # skip the Python client is not built (configure: --with-python; contrib/deps.sh installs python3-protobuf python3-numpy protobuf-compiler)"
	exit 0
fi
if ! "$PYTHON" -c 'import pytest' 2>/dev/null; then
	echo "1..0 # skip pytest is missing for $PYTHON (Debian: python3-pytest; contrib/deps.sh installs it)"
	exit 0
fi
export SHOALD PYTHONPATH="$top_builddir/gen/python" PYTHONDONTWRITEBYTECODE=1
out=$TESTDIR/pytest.out
(cd "$TESTDIR" && "$PYTHON" -m pytest -v -p no:cacheprovider -o console_output_style=classic \
	"$top_srcdir/t/python/test_client.py") >"$out" 2>&1
rc=$?
grep -E '::[A-Za-z0-9_]+ (PASSED|FAILED|ERROR|SKIPPED)' "$out" |
	sed 's/^.*::\([A-Za-z0-9_]*\) \([A-Z]*\).*/\2 \1/' >"$TESTDIR/results"
[ -s "$TESTDIR/results" ] || { cat "$out" >&2; bail_out "pytest ran no test (exit $rc)"; }
while read -r what name; do
	case $what in
	PASSED) ok 0 "$name" ;;
	SKIPPED) skip "$name" ;;
	*) ok 1 "$name" ;;
	esac
done <"$TESTDIR/results"
[ "$tap_failed" -gt 0 ] && sed 's/^/# /' "$out"
done_testing
