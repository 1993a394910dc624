# tap.sh: TAP output for shell tests (the shell counterpart of t/tap.h).
# Source it; call plan/ok/is/like/...; end with done_testing.

tap_n=0
tap_failed=0
tap_planned=

plan() { tap_planned=$1; echo "1..$1"; }

diag() { printf '%s\n' "$*" | sed 's/^/# /'; }

# ok STATUS DESCRIPTION: STATUS 0 passes (a command's exit status).
ok() {
	tap_n=$((tap_n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $tap_n - $2"
	else
		echo "not ok $tap_n - $2"
		tap_failed=$((tap_failed + 1))
	fi
	return "$1"
}

# is GOT WANT DESCRIPTION
is() {
	if [ "$1" = "$2" ]; then ok 0 "$3"; else
		ok 1 "$3"; diag "     got: '$1'" "expected: '$2'"; return 1; fi
}

# like GOT SUBSTRING DESCRIPTION
like() {
	case "$1" in
	*"$2"*) ok 0 "$3" ;;
	*) ok 1 "$3"; diag "got: '$1'"; diag "expected to contain: '$2'"; return 1 ;;
	esac
}

pass() { ok 0 "$1"; }
fail() { ok 1 "$1"; }

# skip REASON: a test point not run, and why.
skip() { tap_n=$((tap_n + 1)); echo "ok $tap_n # skip $*"; }

bail_out() { echo "Bail out! $*"; exit 255; }

done_testing() {
	[ -z "$tap_planned" ] && echo "1..$tap_n"
	[ "$tap_failed" -gt 0 ] && diag "failed $tap_failed of $tap_n"
	exit $((tap_failed > 254 ? 254 : tap_failed))
}
