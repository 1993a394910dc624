#!/bin/sh
# test.sh: build shoal and run the whole test suite, the way CI does.
#
#   contrib/test.sh               warnings are errors (-Werror), build/werror/
#   contrib/test.sh --sanitizers  also ASan + UBSan, build/sanitizers/
#   contrib/test.sh --tsan        the threaded tests under ThreadSanitizer, build/tsan/
#   contrib/test.sh --fuzzing     the fuzz targets under libFuzzer (clang), build/fuzzing/,
#                                 FUZZ_SECONDS each (default 20)
#   contrib/test.sh --distcheck   also `make distcheck` (tarball builds and passes)
#
# Installs missing Debian packages first (contrib/deps.sh).  Ends with one
# line "N passed, N failed", counting assertions (TAP test points) over every
# test program; a program that crashes or breaks its plan counts as failed.
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
flavor=werror
cfg="--enable-werror"
distcheck=no
for arg in "$@"; do
	case "$arg" in
	--sanitizers) flavor=sanitizers; cfg="--enable-werror --enable-sanitizers"
		SHOAL_TIMEOUT_SCALE=${SHOAL_TIMEOUT_SCALE:-3}; export SHOAL_TIMEOUT_SCALE ;;
	--tsan) flavor=tsan; cfg="--enable-werror --enable-tsan"
		SHOAL_TIMEOUT_SCALE=${SHOAL_TIMEOUT_SCALE:-5}; export SHOAL_TIMEOUT_SCALE ;;
	--fuzzing) flavor=fuzzing; cfg="--enable-fuzzing" ;;
	--distcheck) distcheck=yes ;;
	-h|--help) sed -n '2,15p' "$0"; exit 0 ;;
	*) echo "test.sh: unknown option $arg" >&2; exit 2 ;;
	esac
done

if [ $flavor = fuzzing ]; then "$src/contrib/deps.sh" --fuzzing; else "$src/contrib/deps.sh"; fi
# chromium for t/ui.sh: worth trying, not worth failing for (the test skips
# with the reason when it is missing)
if [ $flavor = werror ] && ! command -v chromium >/dev/null; then
	"$src/contrib/deps.sh" --ui || echo "test.sh: chromium could not be installed; t/ui.sh will skip"
fi
jobs=$(nproc 2>/dev/null || echo 2)

. "$src/contrib/lib.sh"
# shellcheck disable=SC2086
shoal_build "$flavor" $cfg

rc=0
target=check
[ $flavor = tsan ] && target=check-tsan
[ $flavor = fuzzing ] && target="check-fuzz FUZZ_SECONDS=${FUZZ_SECONDS:-20}"
# shellcheck disable=SC2086
make -j"$jobs" $target || rc=$?
[ $rc -ne 0 ] && [ -f test-suite.log ] && cat test-suite.log

if [ $rc -eq 0 ] && [ $distcheck = yes ]; then
	make -j"$jobs" distcheck >/dev/null || rc=$?
	[ $rc -eq 0 ] && echo "make distcheck: ok" || echo "make distcheck: FAILED"
	# The tarball's build is left behind on failure: show what failed there.
	if [ $rc -ne 0 ]; then
		for log in shoal-*/_build/sub/test-suite.log; do
			if [ -f "$log" ]; then cat "$log"; fi
		done
	fi
fi

# Count every test point of every program (automake writes one
# ":test-result:" line per TAP result, plus ERROR for a crash or bad plan).
set -- $(cat t/*.trs 2>/dev/null | awk '
	/^:test-result: (PASS|XFAIL)/ { p++ }
	/^:test-result: (FAIL|XPASS|ERROR)/ { f++ }
	/^:test-result: SKIP/ { s++ }
	END { print p + 0, f + 0, s + 0 }')
programs=$(ls t/*.trs 2>/dev/null | wc -l)
echo "$programs test programs ($flavor build), $3 assertions skipped"
[ $rc -ne 0 ] && [ "$2" -eq 0 ] && set -- "$1" 1 "$3"   # a build or distcheck failure
echo "$1 passed, $2 failed"
exit $rc
