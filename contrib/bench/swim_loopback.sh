#!/bin/sh
# swim_loopback.sh: membership figures from real shoald processes on
# 127.0.0.1 (doc/benchmarks.md, "Membership").
#
#   contrib/bench/swim_loopback.sh [-n NODES] [-b BASE_PORT] [-s STEADY_S] [-p PROFILE] [-B BUILDDIR] [-k]
#
# -k: the nodes share a gossip keyring made for the run (membership sealed
# with AES-256-GCM, peer links in TLS; doc/security.md), to compare with
# the same run without.
# Starts NODES shoald (node 0 first, then the others joining it), reports
# the time until every node logged every other as joined, measures the
# traffic per node per second over STEADY_S seconds (SIGUSR1 makes each node
# log its counters, at the start and the end of the window), then kills the
# last node with SIGKILL and reports the time until each other node logged
# it dead (from the log timestamps).  Ports BASE*10+1.. must be free.
set -eu
n=8 base=3400 steady=30 profile=lan build=build/dev keyed=no
while getopts n:b:s:p:B:k o; do
	case $o in
	n) n=$OPTARG ;; b) base=$OPTARG ;; s) steady=$OPTARG ;; p) profile=$OPTARG ;;
	B) build=$OPTARG ;; k) keyed=yes ;; *) exit 2 ;;
	esac
done
shoald=$build/src/server/shoald
[ -x "$shoald" ] || { echo "no $shoald: build first" >&2; exit 2; }
dir=$(mktemp -d)
pids=
trap 'for p in $pids; do kill -9 $p 2>/dev/null; done; rm -rf "$dir"' EXIT
ms() { date +%s%3N; }
# log_ms FILE PATTERN: the time (ms since the epoch) of the first line with PATTERN.
log_ms() {
	t=$(grep -m1 -- "$2" "$1" | cut -c1-23)
	[ -n "$t" ] && date -d "$t" +%s%3N
}

keyring=
if [ $keyed = yes ]; then
	(umask 077; head -c 32 /dev/urandom | base64 >"$dir/keyring")
	keyring="--security-gossip-keyring-file $dir/keyring"
fi
t0=$(ms)
i=0
while [ $i -lt "$n" ]; do
	# shellcheck disable=SC2086
	"$shoald" --node-name "b$i" --node-data-dir "$dir/d$i" --listen-base-port $((base + i)) \
		--membership-profile "$profile" --cluster-seeds "127.0.0.1:$((base * 10 + 1))" \
		$keyring >/dev/null 2>"$dir/b$i.log" &
	pids="$pids $!"
	i=$((i + 1))
done
# convergence: each log has n-1 "joined" lines
while :; do
	done_=yes
	i=0
	while [ $i -lt "$n" ]; do
		[ "$(grep -c ' joined (incarnation' "$dir/b$i.log" 2>/dev/null)" -ge $((n - 1)) ] ||
			done_=no
		i=$((i + 1))
	done
	[ $done_ = yes ] && break
	sleep 0.01
done
echo "shoald n=$n profile=$profile keyring=$keyed: all started and converged $(( $(ms) - t0 )) ms after the first start"
sleep 2
for p in $pids; do kill -USR1 "$p"; done
sleep "$steady"
for p in $pids; do kill -USR1 "$p"; done
sleep 1
# the first two traffic lines of each log bound the steady window
awk -v n="$n" -v secs="$steady" '
	/swim: traffic: sent/ {
		k[FILENAME]++
		if (k[FILENAME] > 2) next
		sign = k[FILENAME] == 1 ? -1 : 1
		for (i = 1; i <= NF; i++) {
			if ($i == "datagrams" && $(i-2) == "sent") { d += sign * $(i-1); b += sign * substr($(i+1), 2) }
			if ($i == "streams" && $(i-2) == "and" && $(i+2) == "bytes);") { s += sign * substr($(i+1), 2) }
		}
	}
	END { printf "steady %d s: %.2f datagrams, %.0f UDP bytes, %.0f TCP bytes per node per s\n",
	      secs, d / n / secs, b / n / secs, s / n / secs }' "$dir"/b*.log
victim=$((n - 1))
vpid=$(echo $pids | awk -v k=$n '{print $k}')
tk=$(ms)
kill -9 "$vpid"
last=0 first=
i=0
while [ $i -lt $victim ]; do
	while ! grep -q "member b$victim .* is dead" "$dir/b$i.log"; do sleep 0.01; done
	t=$(( $(log_ms "$dir/b$i.log" "member b$victim .* is dead") - tk ))
	[ $t -gt $last ] && last=$t
	[ -z "$first" ] || [ $t -lt "$first" ] && first=$t
	i=$((i + 1))
done
echo "kill -9: first node declared it dead after $first ms, all $victim after $last ms"
for p in $pids; do [ "$p" = "$vpid" ] || kill -TERM "$p"; done
wait 2>/dev/null || true
