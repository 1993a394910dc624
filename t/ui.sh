#!/bin/sh
# The status page, GET /ui, in headless Chromium against a three-node
# cluster (contrib/cluster.sh): the page loads, fetches the JSON endpoints
# of every node and shows three members with their SWIM state, one leader,
# the voters and the collection with its count.  Keeps the page as Chromium
# rendered it (t/ui.dom.html) and a screenshot (t/ui.png) in the build's t/.
# Skips when Debian's chromium is not installed (contrib/deps.sh --ui
# installs it; contrib/test.sh tries).
. "${top_srcdir:-.}/t/tap.sh"
. "${top_srcdir:-.}/t/lib.sh"

CLUSTER=$top_srcdir/contrib/cluster.sh
SHOALCTL=$top_builddir/src/client/shoalctl
CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
if [ -z "$CHROMIUM" ]; then
	echo "1..0 # SKIP chromium is not installed (contrib/deps.sh --ui installs Debian's chromium)"
	exit 0
fi
SHOAL_BUILD=$top_builddir SHOAL_CLUSTER_DIR=$TESTDIR/cluster
SHOAL_CLUSTER_WAIT=$((30 * SCALE))
export SHOAL_BUILD SHOAL_CLUSTER_DIR SHOAL_CLUSTER_WAIT
free_base_port 3 || bail_out "no free base port"
SHOAL_CLUSTER_BASE=$base
export SHOAL_CLUSTER_BASE
trap '"$CLUSTER" clean >/dev/null 2>&1; cleanup' EXIT
out=$top_builddir/t

# chromium URL ARGS...: headless, a fresh profile, nothing fetched but URL's
# node and its peers; virtual time lets the page's timers run 6 s.
chromium() {
	url=$1; shift
	rm -rf "$TESTDIR/profile"
	timeout $((60 * SCALE)) "$CHROMIUM" --headless --no-sandbox --disable-gpu \
		--disable-background-networking --disable-component-update --disable-sync \
		--no-first-run --user-data-dir="$TESTDIR/profile" --virtual-time-budget=6000 \
		"$@" "$url" 2>>"$TESTDIR/chromium.log"
}

"$CLUSTER" start 3 >"$TESTDIR/start.out" 2>&1
ok $? "a three-node cluster" || diag "$(cat "$TESTDIR/start.out")"
"$SHOALCTL" --addr "127.0.0.1:$((base * 10 + 2))" collection create sample --dim 3 >/dev/null &&
	"$SHOALCTL" --addr "127.0.0.1:$((base * 10 + 2))" upsert sample --id 7 --vector 1,2,3 \
		>/dev/null
ok $? "a collection with one point"

# A follower serves the page (the leader's view then comes from its peer).
url=http://127.0.0.1:$(((base + 1) * 10 + 3))/ui
chromium "$url" --dump-dom >"$out/ui.dom.html"
ok $? "chromium loads $url" || diag "$(tail -5 "$TESTDIR/chromium.log")"
dom=$(cat "$out/ui.dom.html")
loaded=$(printf '%s' "$dom" | sed -n 's/.*<body data-loaded="\([0-9]*\)".*/\1/p')
ok "$([ "${loaded:-0}" -ge 1 ]; echo $?)" "the page refreshed itself ($loaded times) from the JSON endpoints"
is "$(printf '%s' "$dom" | grep -o '<tr class="member"' | wc -l)" 3 "three members"
is "$(printf '%s' "$dom" | grep -o 'data-state="alive"' | wc -l)" 3 "  all alive (SWIM state)"
is "$(printf '%s' "$dom" | grep -o 'data-role="leader"' | wc -l)" 1 "  one leader"
is "$(printf '%s' "$dom" | grep -o 'data-role="voter"' | wc -l)" 2 "  two other voters"
like "$dom" '<b id="nvoters">3</b>' "three voters in the header"
like "$dom" '<b id="term">' "the term"
ok "$(printf '%s' "$dom" | grep -q '<b id="leader">n[0-2]</b>'; echo $?)" "the leader's name"
like "$dom" '<tr class="collection" data-name="sample" data-count="1">' "the collection and its count"
like "$dom" 'class="election"' "the elections seen"
ok "$(printf '%s' "$dom" | grep -q 'class="ready-yes">yes<'; echo $?)" "each replica's readiness"
ok "$(printf '%s' "$dom" | grep -qE '(src|href)="[a-z]+:'; [ $? -ne 0 ]; echo $?)" \
	"nothing loaded from elsewhere (no src or href with a URL)"

chromium "$url" --window-size=1280,720 --screenshot="$out/ui.png" >/dev/null
ok "$([ -s "$out/ui.png" ]; echo $?)" "a screenshot: $out/ui.png"
"$CLUSTER" stop >/dev/null
done_testing
