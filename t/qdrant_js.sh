#!/bin/sh
# Qdrant's official JavaScript REST client against shoald (issue 16): the
# client (@qdrant/js-client-rest, the version below) is installed by npm
# into $top_builddir/t/qdrant-js (once; kept for the next run), then
# t/qdrant_js.cjs runs its calls — create a collection, upsert 10,000
# points with payloads, search with filters, recall against exact search,
# scroll, count, payload changes, delete by filter, get by ids, refused
# features — against one shoald, and against a follower of a three-node
# cluster at consistency strong.  Skips, saying why, without node and npm
# or when the registry cannot be reached.
. "${top_srcdir:-.}/t/tap.sh"
. "${top_srcdir:-.}/t/lib.sh"

CLIENT_VERSION=1.17.0
JSDIR=$top_builddir/t/qdrant-js
T=$((20 * SCALE))

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	echo "1..0 # SKIP node and npm are missing (contrib/deps.sh installs them)"
	exit 0
fi
if [ ! -f "$JSDIR/node_modules/@qdrant/js-client-rest/package.json" ] ||
	! grep -q "\"version\": \"$CLIENT_VERSION\"" \
		"$JSDIR/node_modules/@qdrant/js-client-rest/package.json"; then
	mkdir -p "$JSDIR"
	[ -f "$JSDIR/package.json" ] || echo '{"name": "shoal-qdrant-js-test", "private": true}' \
		>"$JSDIR/package.json"
	if ! (cd "$JSDIR" && timeout 300 npm install --no-audit --no-fund --loglevel=error \
		"@qdrant/js-client-rest@$CLIENT_VERSION") >"$TESTDIR/npm.log" 2>&1; then
		echo "1..0 # SKIP npm could not install @qdrant/js-client-rest@$CLIENT_VERSION: $(tail -1 "$TESTDIR/npm.log")"
		exit 0
	fi
fi

# js URL [CONSISTENCY]: the client's run, its TAP lines as diagnostics.
js() {
	NODE_PATH=$JSDIR/node_modules timeout $((300 * SCALE)) node "$top_srcdir/t/qdrant_js.cjs" "$@" \
		>"$TESTDIR/js.out" 2>&1
	st=$?
	sed 's/^/  /' "$TESTDIR/js.out" | grep -v '^  ok ' | sed 's/^/# /'
	passed=$(grep -c '^ok ' "$TESTDIR/js.out")
	notok=$(grep -c '^not ok ' "$TESTDIR/js.out")
	return $st
}

# One shoald.
start_shoald "$TESTDIR/one.log" --node-name one --node-data-dir "$TESTDIR/one"
wait_for "$TESTDIR/one.log" "started: node" $T || bail_out "shoald did not start: $(cat "$TESTDIR/one.log")"
js "http://127.0.0.1:$((node_base * 10 + 3))"
ok $? "one shoald: $passed checks of the Qdrant JS client passed, $notok failed"
ok "$([ "$passed" -gt 40 ]; echo $?)" "  ran them all ($passed)"
kill "$pid"

# Three nodes; the client talks to a follower's REST port at strong.
free_base_port 3 || bail_out "no free base port"
seed=127.0.0.1:$((base * 10 + 1))
for i in 0 1 2; do
	# shellcheck disable=SC2086
	start_shoald "$TESTDIR/n$i.log" --node-name "n$i" --node-data-dir "$TESTDIR/n$i" \
		--listen-base-port $((base + i)) --membership-profile local \
		--cluster-bootstrap-expect 3 --cluster-seeds "$seed" $RAFT_ARGS
done
leader=
deadline=$(($(date +%s) + T))
while [ -z "$leader" ] && [ "$(date +%s)" -lt "$deadline" ]; do
	for i in 0 1 2; do
		if curl -s --max-time 2 "http://127.0.0.1:$(((base + i) * 10 + 3))/cluster" |
			grep -q '"role":"leader"'; then leader=$i; fi
	done
	sleep 0.2
done
[ -n "$leader" ] || bail_out "no leader: $(cat "$TESTDIR"/n*.log | tail -20)"
f=$(((leader + 1) % 3))
diag "leader n$leader; the client talks to follower n$f"
js "http://127.0.0.1:$(((base + f) * 10 + 3))" strong
ok $? "three nodes, through follower n$f at strong: $passed checks passed, $notok failed"
ok "$([ "$passed" -gt 40 ]; echo $?)" "  ran them all ($passed)"
done_testing
