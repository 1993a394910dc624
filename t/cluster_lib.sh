# cluster_lib.sh: clusters of real shoald processes for shell tests
# (t/cluster_raft.sh, t/cluster_history.sh); source t/tap.sh and t/lib.sh
# first.
#
# Node I of the current cluster ($N nodes, names $PFX$I, data dirs
# $TESTDIR/$PFX$I) listens on 127.0.0.1 at base port $base + I, or, once
# netns_setup has run, in its own network namespace ${NS}nI at
# 10.77.(I+1).2, base port 747.  The namespaces hang off a hub namespace
# ${NS}h that routes between them (each node on its own /24, the hub at
# .1 of each): a command run in the hub (`hub CMD`) reaches every node
# whatever partition is in place, and partitions are policy rules in the
# hub's routing (`block A B` drops A's packets to B silently, one way), or a
# node's link taken down.  Only root can make namespaces; tests skip what
# needs them otherwise, saying why.
#
# EXTRA holds more shoald options for the nodes of the current cluster.
# T is the longest wait for one observation, in seconds.

SHOALCTL=$top_builddir/src/client/shoalctl
: "${T:=$((20 * SCALE))}"
NS_PREFIX=
EXTRA=

now_ms() { date +%s%3N; }

host() { if [ -n "$NS_PREFIX" ]; then echo "10.77.$(($1 + 1)).2"; else echo 127.0.0.1; fi; }
bport() { if [ -n "$NS_PREFIX" ]; then echo 747; else echo $((base + $1)); fi; }
client_addr() { echo "$(host "$1"):$(($(bport "$1") * 10 + 2))"; }
rest_addr() { echo "$(host "$1"):$(($(bport "$1") * 10 + 3))"; }
# at NODE CMD...: run CMD where NODE can be reached (its namespace, if any).
at() {
	n=$1; shift
	if [ -n "$NS_PREFIX" ]; then ip netns exec "${NS_PREFIX}n$n" "$@"; else "$@"; fi
}
# hub CMD...: run CMD where every node can be reached whatever the partitions.
hub() {
	if [ -n "$NS_PREFIX" ]; then ip netns exec "${NS_PREFIX}h" "$@"; else "$@"; fi
}

# cluster_json NODE: its GET /cluster (without the members list), asked
# from its own namespace (reachable even when its link is down).
cluster_json() {
	at "$1" curl -s --max-time 2 "http://$(rest_addr "$1")/cluster" | sed 's/,"members":\[.*//'
}
# jf JSON KEY: a string or number field of a cluster_json.
jf() { printf '%s' "$1" | sed -n "s/.*\"$2\":\"\{0,1\}\([^\",]*\).*/\1/p"; }
voters() { printf '%s' "$1" | sed -n 's/.*"voters":\[\([^]]*\)\].*/\1/p' | tr ',' '\n' | grep -c .; }

# start_node I: start node I of the current cluster (bootstrap expect $N,
# seed node 0); a restart reuses its data dir.  Each start has its own
# log: n1.log, then n1.1.log, n1.2.log, ...; sets $pid_I and $log_I.
start_node() {
	eval "k=\${starts_$PFX$1:-0}"
	lg=$TESTDIR/$PFX$1.log
	[ "$k" -gt 0 ] && lg=$TESTDIR/$PFX$1.$k.log
	eval "starts_$PFX$1=$((k + 1)); log_$1=\$lg"
	if [ -n "$NS_PREFIX" ]; then
		# shellcheck disable=SC2086
		ip netns exec "${NS_PREFIX}n$1" "$SHOALD" --node-name "$PFX$1" \
			--node-data-dir "$TESTDIR/$PFX$1" --listen-address "$(host "$1")" \
			--listen-base-port 747 --membership-profile local \
			--cluster-seeds "$(host 0):7471" --cluster-bootstrap-expect "$N" $RAFT_ARGS $EXTRA \
			>>"$TESTDIR/$PFX$1.out" 2>"$lg" &
		pid=$!
		watch_pid "$pid"
	else
		# shellcheck disable=SC2086
		start_shoald "$lg" --node-name "$PFX$1" \
			--node-data-dir "$TESTDIR/$PFX$1" --listen-base-port $((base + $1)) \
			--membership-profile local --cluster-seeds "127.0.0.1:$((base * 10 + 1))" \
			--cluster-bootstrap-expect "$N" $RAFT_ARGS $EXTRA
	fi
	eval "pid_$1=\$pid"
}

nodes_all() { seq 0 $((N - 1)) | tr '\n' ' ' | sed 's/ $//'; }
# without LIST NODE...: LIST without the NODEs.
without() {
	l=$1; shift
	for x in "$@"; do l=$(echo "$l" | tr ' ' '\n' | grep -vx "$x" | tr '\n' ' '); done
	echo "$l" | sed 's/ *$//'
}

# wait_leader NODES [OLD_ID]: every node of NODES answers, one of them is
# leader, all name it, and it is not OLD_ID; sets $leader (node number)
# and $leader_id.  Fails after T seconds.
wait_leader() {
	deadline=$(($(date +%s) + T))
	while :; do
		leader='' leader_id='' agree=yes lids=''
		for i in $1; do
			j=$(cluster_json "$i")
			lid=$(jf "$j" leader_id)
			[ -n "$lid" ] || { agree=no; break; }
			lids="$lids $lid"
			if [ "$(jf "$j" role)" = leader ]; then
				[ -n "$leader" ] && agree=no
				leader=$i leader_id=$(jf "$j" node_id)
			fi
		done
		if [ $agree = yes ] && [ -n "$leader" ] && [ "$leader_id" != "${2:-}" ]; then
			for lid in $lids; do [ "$lid" = "$leader_id" ] || agree=no; done
			[ $agree = yes ] && return 0
		fi
		[ "$(date +%s)" -ge $deadline ] && { leader=; return 1; }
		sleep 0.05
	done
}

# node_line NODE: "applied commit last digest points role term" of NODE.
node_line() {
	j=$(cluster_json "$1")
	echo "$(jf "$j" applied_index) $(jf "$j" commit_index) $(jf "$j" last_index)" \
		"$(jf "$j" digest) $(jf "$j" points) $(jf "$j" role) $(jf "$j" term)"
}

# wait_converged NODES: all NODES report the same applied, commit and last
# index, digest and point count (and applied = commit), twice in a row
# 100 ms apart; sets $conv.  Fails after T seconds, printing what differs.
wait_converged() {
	deadline=$(($(date +%s) + T))
	prev=
	while :; do
		conv='' same=yes lines=''
		for i in $1; do
			l=$(node_line "$i")
			lines="$lines
$PFX$i: $l"
			k=$(echo "$l" | cut -d' ' -f1-5)
			set -- "$1" $l # $2 applied, $3 commit
			[ -n "$2" ] && [ "$2" = "$3" ] || same=no
			if [ -z "$conv" ]; then conv=$k; elif [ "$conv" != "$k" ]; then same=no; fi
		done
		if [ $same = yes ]; then
			[ "$prev" = "$conv" ] && return 0
			prev=$conv
		else
			prev=
		fi
		[ "$(date +%s)" -ge $deadline ] && { diag "not converged:$lines"; return 1; }
		sleep 0.1
	done
}

# check_converged NODES WHAT: they converge, and shoalctl cluster verify agrees.
check_converged() {
	t0=$(now_ms)
	wait_converged "$1"
	ok $? "$2: all nodes reach the same applied index and digest" &&
		diag "converged in $(($(now_ms) - t0)) ms: applied/commit/last/digest/points $conv"
	first=$(echo "$1" | cut -d' ' -f1)
	# again while a node just restarted has not heard of every voter in
	# membership yet ("unknown to membership": a seed restarted alone
	# learns the others from their gossip); a divergence stays
	deadline=$(($(date +%s) + T))
	while :; do
		out=$(at "$first" "$SHOALCTL" --addr "$(client_addr "$first")" --timeout 10000 \
			cluster verify 2>&1)
		st=$?
		[ $st = 0 ] || [ "$(date +%s)" -ge $deadline ] && break
		sleep 0.5
	done
	ok $st "$2: shoalctl cluster verify agrees" || diag "$out"
}

# ------------------------------------------------------------ a writer
# t/cluster_writer upserts one point per request into collection $COLL
# (create it first) and records every acknowledged id.

WRITER=$top_builddir/t/cluster_writer
: "${COLL:=c}"

WRITER=$top_builddir/t/cluster_writer

# start_writer NODES FIRST_ID [NS_NODE]: a writer over the client addresses
# of NODES, ids from FIRST_ID, run in NS_NODE's namespace if given.
start_writer() {
	addrs=
	for i in $1; do addrs="$addrs${addrs:+,}$(client_addr "$i")"; done
	wdir=$TESTDIR/w$2
	mkdir -p "$wdir"
	if [ -n "${3:-}" ]; then
		at "$3" "$WRITER" write "$addrs" $COLL "$wdir/acks" --first-id "$2" \
			--stop "$wdir/stop" --max-seconds $((100 * SCALE)) >"$wdir/out" 2>"$wdir/err" &
	else
		"$WRITER" write "$addrs" $COLL "$wdir/acks" --first-id "$2" \
			--stop "$wdir/stop" --max-seconds $((100 * SCALE)) >"$wdir/out" 2>"$wdir/err" &
	fi
	wpid=$!
	started_pids="$started_pids $wpid"
}

# stop_writer: stop it (it finishes its request in flight) and report.
stop_writer() {
	touch "$wdir/stop"
	wait_exit "$wpid" 15000
	ok $? "the writer stops" || return 1
	summary=$(cat "$wdir/out")
	diag "writer: $summary"
	f=$(sed -n 's/.*node [0-9]*: \([A-Z_]*\): .*/\1/p' "$wdir/err" | sort | uniq -c |
		tr '\n' ' ' | tr -s ' ')
	[ -n "$f" ] && diag "writer failures by status:$f"
	grep "took" "$wdir/err" | head -n 5 | while read -r l; do diag "slow: $l"; done
	acked=$(echo "$summary" | sed -n 's/^acked \([0-9]*\) .*/\1/p')
	ok $([ "${acked:-0}" -ge 20 ]; echo $?) "the writer had ${acked:-0} writes acknowledged (>= 20)"
}

# check_acked NODES WHAT: every acknowledged id of the last writer is on
# every node of NODES, asked one at a time at consistency strong.
check_acked() {
	bad=
	for i in $1; do
		out=$(at "$i" "$WRITER" check "$(client_addr "$i")" $COLL "$wdir/acks" 2>&1) ||
			{ bad="$bad $PFX$i"; diag "$PFX$i: $out"; }
	done
	is "$bad" "" "$2: every acknowledged id ($(wc -l <"$wdir/acks")) is on every node"
}

stop_cluster() {
	for i in $(nodes_all); do eval "kill -CONT \$pid_$i; kill -TERM \$pid_$i"; done 2>/dev/null
	st=0
	for i in $(nodes_all); do eval "wait_exit \$pid_$i 10000" || st=1; done
	ok $st "the $N nodes stop on SIGTERM"
}

# ------------------------------------------------------------ namespaces

netns_cleanup() {
	[ -n "${NS:-}" ] || return 0
	for n in h n0 n1 n2 n3 n4 n5 n6; do ip netns del "$NS$n" 2>/dev/null; done
}

# netns_setup COUNT: the hub ${NS}h and COUNT node namespaces ${NS}n0..;
# sets NS and $why when it fails (not root, no ip netns).  Does not switch
# the nodes into them: set NS_PREFIX=$NS for that.
netns_setup() {
	NS=shoalt$$
	[ "$(id -u)" = 0 ] || { why="not root"; return 1; }
	command -v ip >/dev/null || { why="no ip(8)"; return 1; }
	trap 'cleanup; netns_cleanup' EXIT
	trap 'exit 1' HUP INT TERM # so that the namespaces go too
	ip netns add "${NS}h" 2>/dev/null || { why="ip netns add failed"; return 1; }
	why="setting up the namespaces failed"
	ip -n "${NS}h" link set lo up &&
		ip netns exec "${NS}h" sh -c 'echo 1 >/proc/sys/net/ipv4/ip_forward' || return 1
	i=0
	while [ $i -lt "$1" ]; do
		ip netns add "${NS}n$i" &&
			ip -n "${NS}h" link add "v$i" type veth peer name eth0 netns "${NS}n$i" &&
			ip -n "${NS}h" addr add "10.77.$((i + 1)).1/24" dev "v$i" &&
			ip -n "${NS}h" link set "v$i" up &&
			ip -n "${NS}n$i" link set lo up &&
			ip -n "${NS}n$i" addr add "10.77.$((i + 1)).2/24" dev eth0 &&
			ip -n "${NS}n$i" link set eth0 up &&
			ip -n "${NS}n$i" route add default via "10.77.$((i + 1)).1" || return 1
		i=$((i + 1))
	done
}

# block A B: node A's packets to node B are dropped (one way); heal_all
# undoes every cut.
block() {
	ip -n "${NS}h" rule add from "$(host "$1")" to "$(host "$2")" blackhole pref 100
}
heal_all() {
	while ip -n "${NS}h" rule del pref 100 2>/dev/null; do :; done
}
