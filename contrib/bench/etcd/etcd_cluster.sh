#!/bin/sh
# etcd_cluster.sh: a 3-member etcd cluster on 127.0.0.1, the reference of the
# replication benchmark (contrib/bench/etcd/README.md, doc/benchmarks.md).
#
#   etcd_cluster.sh start DIR           start m0, m1, m2 on free ports; data and logs in DIR
#   etcd_cluster.sh stop DIR            SIGTERM (then SIGKILL after 10 s) every member
#   etcd_cluster.sh endpoints DIR       the client URLs, comma-separated
#   etcd_cluster.sh leader DIR          "NAME CLIENT_URL PID" of the leader
#   etcd_cluster.sh kill-leader DIR     kill -9 the leader; prints its PID
#   etcd_cluster.sh restart MEMBER DIR  start MEMBER again from its data dir, wait until healthy
#   etcd_cluster.sh status DIR          one line per member: name, URL, PID or "down", leader or not
#
# Every member is its own etcd process with etcd's defaults (heartbeat
# 100 ms, election timeout 1000 ms, fsync of the WAL on every commit); the
# client and peer ports are chosen among 31100..32699 (below the kernel's
# ephemeral range, above the ports t/lib.sh gives shoald) and are free when
# picked.  DIR/cluster.env records them, DIR/NAME.pid each member's PID,
# DIR/NAME.log its log (appended to on a restart), DIR/NAME.etcd its data.
# A PID is signalled only if /proc says it is still the etcd this script
# started for that member (same --name and --data-dir), so a recycled PID is
# never hit.  Every wait is bounded: a member that does not come up in time
# is an error, with the end of its log.
set -eu

ETCD=${ETCD:-etcd}
ETCDCTL=${ETCDCTL:-etcdctl}
export ETCDCTL_API=3
NAMES="m0 m1 m2"
UP_TIMEOUT=${ETCD_UP_TIMEOUT:-30}       # seconds for a member to report healthy
LEADER_TIMEOUT=${ETCD_LEADER_TIMEOUT:-15} # seconds for a leader to be found

die() {
	echo "etcd_cluster.sh: $*" >&2
	exit 1
}

usage() {
	echo "usage: etcd_cluster.sh start|stop|endpoints|leader|kill-leader|status DIR" >&2
	echo "       etcd_cluster.sh restart MEMBER DIR" >&2
	exit 2
}

now_ms() {
	date +%s%3N
}

# used_ports: every local TCP port that has a socket (IPv4 or IPv6).
used_ports() {
	for f in /proc/net/tcp /proc/net/tcp6; do
		[ -r "$f" ] && awk 'NR > 1 { n = split($2, a, ":"); print a[n] }' "$f"
	done | sort -u | while read -r h; do echo $((0x$h)); done
}

# pick_base: set $base so that base..base+5 are all free.
pick_base() {
	used=" $(used_ports | tr '\n' ' ') "
	tries=0
	while [ $tries -lt 50 ]; do
		tries=$((tries + 1))
		b=$((31100 + ($(od -An -N2 -tu2 /dev/urandom) % 200) * 8))
		clash=no
		for k in 0 1 2 3 4 5; do
			case "$used" in *" $((b + k)) "*) clash=yes ;; esac
		done
		[ $clash = no ] && { base=$b; return 0; }
	done
	die "no 6 free ports found in 31100..32699 after 50 tries"
}

load_env() {
	[ -r "$dir/cluster.env" ] || die "$dir/cluster.env: no cluster there (run start first)"
	# shellcheck disable=SC1091 # written by cmd_start
	. "$dir/cluster.env"
}

member_index() {
	case "$1" in
	m0) echo 0 ;; m1) echo 1 ;; m2) echo 2 ;;
	*) die "unknown member '$1' (m0, m1 or m2)" ;;
	esac
}

client_url() {
	echo "http://127.0.0.1:$((BASE + 2 * $(member_index "$1")))"
}

peer_url() {
	echo "http://127.0.0.1:$((BASE + 2 * $(member_index "$1") + 1))"
}

# ours NAME PID: PID is alive and is the etcd started for NAME in this DIR.
ours() {
	[ -n "$2" ] && [ -r "/proc/$2/cmdline" ] || return 1
	cmd=" $(tr '\0' ' ' <"/proc/$2/cmdline" 2>/dev/null) "
	case "$cmd" in
	*" --name $1 --data-dir $dir/$1.etcd "*) return 0 ;;
	*) return 1 ;;
	esac
}

# member_pid NAME: the recorded PID if it is still ours, else nothing.
member_pid() {
	p=$(cat "$dir/$1.pid" 2>/dev/null || true)
	if ours "$1" "$p"; then echo "$p"; fi
}

show_log() {
	echo "--- end of $dir/$1.log ---" >&2
	tail -n 20 "$dir/$1.log" >&2 || true
	echo "---" >&2
}

# launch NAME STATE: start one member in the background (its own session,
# so that the caller's terminal signals do not reach it); records its PID.
launch() {
	name=$1
	cluster=
	for n in $NAMES; do
		cluster="$cluster${cluster:+,}$n=$(peer_url "$n")"
	done
	rm -f "$dir/$name.pid"
	# setsid forks when it is a process group leader: the shell it runs
	# writes its own PID, which exec makes etcd's.
	# shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
	setsid sh -c 'echo $$ >"$0"; exec "$@"' "$dir/$name.pid" \
		"$ETCD" --name "$name" --data-dir "$dir/$name.etcd" \
		--listen-client-urls "$(client_url "$name")" \
		--advertise-client-urls "$(client_url "$name")" \
		--listen-peer-urls "$(peer_url "$name")" \
		--initial-advertise-peer-urls "$(peer_url "$name")" \
		--initial-cluster "$cluster" --initial-cluster-token "$TOKEN" \
		--initial-cluster-state "$2" \
		--logger zap --log-outputs stderr \
		</dev/null >>"$dir/$name.log" 2>&1 &
	i=0
	while [ ! -s "$dir/$name.pid" ]; do
		[ $i -lt 50 ] || die "$name: no PID written after 5 s"
		sleep 0.1
		i=$((i + 1))
	done
}

# wait_healthy NAME...: every NAME answers `endpoint health`, within UP_TIMEOUT.
wait_healthy() {
	deadline=$(($(now_ms) + UP_TIMEOUT * 1000))
	for name in "$@"; do
		while ! "$ETCDCTL" --endpoints="$(client_url "$name")" --dial-timeout=1s \
			--command-timeout=2s endpoint health >/dev/null 2>&1; do
			p=$(cat "$dir/$name.pid")
			if ! ours "$name" "$p"; then
				show_log "$name"
				return 1
			fi
			if [ "$(now_ms)" -ge "$deadline" ]; then
				echo "etcd_cluster.sh: $name not healthy after ${UP_TIMEOUT} s" >&2
				show_log "$name"
				return 1
			fi
			sleep 0.1
		done
	done
}

# stop_member NAME: SIGTERM, up to 10 s for it to exit, then SIGKILL.
stop_member() {
	p=$(member_pid "$1")
	if [ -n "$p" ]; then
		kill -TERM "$p" 2>/dev/null || true
		i=0
		while ours "$1" "$p" && [ $i -lt 100 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		if ours "$1" "$p"; then
			echo "etcd_cluster.sh: $1 (pid $p) still running 10 s after SIGTERM: SIGKILL" >&2
			kill -KILL "$p" 2>/dev/null || true
		fi
	fi
	rm -f "$dir/$1.pid"
}

# find_leader: sets $leader to the leader's name, within LEADER_TIMEOUT.
# Asks every member that is up; a leader is accepted only when it says so
# itself (a follower may still name a leader that was just killed).
find_leader() {
	deadline=$(($(now_ms) + LEADER_TIMEOUT * 1000))
	while :; do
		leader=
		for name in $NAMES; do
			[ -n "$(member_pid "$name")" ] || continue
			line=$("$ETCDCTL" --endpoints="$(client_url "$name")" --dial-timeout=1s \
				--command-timeout=2s endpoint status 2>/dev/null || true)
			# URL, ID, VERSION, DB SIZE, IS LEADER, IS LEARNER, RAFT TERM, ...
			[ "$(echo "$line" | awk -F', ' '{ print $5 }')" = true ] && leader=$name
		done
		[ -n "$leader" ] && return 0
		[ "$(now_ms)" -ge "$deadline" ] && die "no leader after ${LEADER_TIMEOUT} s"
		sleep 0.1
	done
}

cmd_start() {
	command -v "$ETCD" >/dev/null || die "no $ETCD (apt-get install etcd-server etcd-client)"
	command -v "$ETCDCTL" >/dev/null || die "no $ETCDCTL (apt-get install etcd-client)"
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	if [ -r "$dir/cluster.env" ]; then
		# shellcheck disable=SC1091 # written by an earlier start
		. "$dir/cluster.env"
		for name in $NAMES; do
			[ -z "$(member_pid "$name")" ] || die "$dir: $name is already running"
		done
		die "$dir: holds a stopped cluster; start wants a new (or empty) directory"
	fi
	pick_base
	BASE=$base
	TOKEN=shoal-bench-$base-$$
	printf 'BASE=%s\nTOKEN=%s\n' "$BASE" "$TOKEN" >"$dir/cluster.env"
	for name in $NAMES; do
		launch "$name" new
	done
	# shellcheck disable=SC2086 # one word per member
	if ! wait_healthy $NAMES; then
		for name in $NAMES; do stop_member "$name"; done
		die "start failed (ports $BASE..$((BASE + 5)))"
	fi
	ver=$("$ETCD" --version | awk '/etcd Version/ { print $3 }')
	# zap logs the settings of raft timing once at start
	hb=$(grep -o '"heartbeat-interval":"[^"]*"' "$dir/m0.log" | head -n 1 | cut -d'"' -f4)
	el=$(grep -o '"election-timeout":"[^"]*"' "$dir/m0.log" | head -n 1 | cut -d'"' -f4)
	echo "etcd $ver: heartbeat-interval ${hb:-?}, election-timeout ${el:-?}, data in $dir"
	for name in $NAMES; do
		echo "$name $(client_url "$name") pid $(cat "$dir/$name.pid")"
	done
}

cmd_stop() {
	load_env
	for name in $NAMES; do
		stop_member "$name"
	done
}

cmd_endpoints() {
	load_env
	urls=
	for name in $NAMES; do
		urls="$urls${urls:+,}$(client_url "$name")"
	done
	echo "$urls"
}

cmd_leader() {
	load_env
	find_leader
	echo "$leader $(client_url "$leader") $(member_pid "$leader")"
}

cmd_kill_leader() {
	load_env
	find_leader
	p=$(member_pid "$leader")
	[ -n "$p" ] || die "leader $leader has no live PID of ours"
	kill -KILL "$p"
	i=0
	while ours "$leader" "$p" && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	ours "$leader" "$p" && die "$leader (pid $p) still there 5 s after SIGKILL"
	rm -f "$dir/$leader.pid"
	echo "$p"
}

cmd_restart() {
	load_env
	member_index "$member" >/dev/null
	stop_member "$member"
	launch "$member" existing
	wait_healthy "$member" || die "restart of $member failed"
	echo "$member $(client_url "$member") $(cat "$dir/$member.pid")"
}

cmd_status() {
	load_env
	for name in $NAMES; do
		p=$(member_pid "$name")
		if [ -z "$p" ]; then
			echo "$name $(client_url "$name") down"
			continue
		fi
		line=$("$ETCDCTL" --endpoints="$(client_url "$name")" --dial-timeout=1s \
			--command-timeout=2s endpoint status 2>/dev/null || true)
		role=$(echo "$line" | awk -F', ' '{ print ($5 == "true") ? "leader" : \
			($5 == "false") ? "follower" : "no-answer" }')
		echo "$name $(client_url "$name") pid $p ${role:-no-answer}"
	done
}

[ $# -ge 2 ] || usage
cmd=$1
case "$cmd" in
restart)
	[ $# -eq 3 ] || usage
	member=$2
	dir=$3
	;;
*)
	[ $# -eq 2 ] || usage
	dir=$2
	;;
esac
if [ "$cmd" != start ]; then
	[ -d "$dir" ] || die "$dir: no such directory"
	dir=$(cd "$dir" && pwd)
fi
case "$cmd" in
start) cmd_start ;;
stop) cmd_stop ;;
endpoints) cmd_endpoints ;;
leader) cmd_leader ;;
kill-leader) cmd_kill_leader ;;
restart) cmd_restart ;;
status) cmd_status ;;
*) usage ;;
esac
