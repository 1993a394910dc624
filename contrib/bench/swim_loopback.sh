#!/bin/sh
# swim_loopback.sh: membership figures from real shoald processes on
# 127.0.0.1 (doc/benchmarks.md, "Membership").
#
#   contrib/bench/swim_loopback.sh [-n NODES] [-b BASE_PORT] [-s STEADY_S] [-p PROFILE] [-B BUILDDIR]
#
# Starts NODES shoald (node 0 first, then the others joining it), reports
# the time until every node logged every other as joined, lets the cluster
# run STEADY_S seconds, kills the last node with SIGKILL and reports the
# time until each other node logged it dead (from the log timestamps),
# then stops the rest with SIGTERM and reports the traffic per node per
# second from their "swim: traffic" lines.  Ports BASE*10+1.. must be free.
set -eu
n=8 base=3400 steady=30 profile=lan build=build/dev
while getopts n:b:s:p:B: o; do
	case $o in
	n) n=$OPTARG ;; b) base=$OPTARG ;; s) steady=$OPTARG ;; p) profile=$OPTARG ;;
	B) build=$OPTARG ;; *) exit 2 ;;
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

t0=$(ms)
i=0
while [ $i -lt "$n" ]; do
	"$shoald" --node-name "b$i" --node-data-dir "$dir/d$i" --listen-base-port $((base + i)) \
		--membership-profile "$profile" --cluster-seeds "127.0.0.1:$((base * 10 + 1))" \
		>/dev/null 2>"$dir/b$i.log" &
	pids="$pids $!"
	i=$((i + 1))
done
# convergence: each log has n-1 "joined" lines
while :; do
	done_=yes
	for f in "$dir"/b*.log; do
		[ "$(grep -c ' joined (incarnation' "$f")" -ge $((n - 1)) ] || done_=no
	done
	[ $done_ = yes ] && break
	sleep 0.01
done
echo "shoald n=$n profile=$profile: all started and converged $(( $(ms) - t0 )) ms after the first start"
sleep "$steady"
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
# traffic: sum over the surviving nodes, per node per second of their life
now=$(ms)
awk -v life=$(( (now - t0) / 1000 )) -v n=$victim '
	/swim: traffic: sent/ {
		for (i = 1; i <= NF; i++) {
			if ($i == "datagrams" && $(i-2) == "sent") { d += $(i-1); b += substr($(i+1), 2) }
			if ($i == "streams" && $(i-2) == "and" && $(i+2) == "bytes);") { s += substr($(i+1), 2) }
		}
	}
	END { printf "traffic: %.1f datagrams, %.0f UDP bytes, %.0f TCP bytes per node per s (over %d s)\n",
	      d / n / life, b / n / life, s / n / life, life }' "$dir"/b*.log
