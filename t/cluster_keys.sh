#!/bin/sh
# Gossip keyring with real processes (issue 14; doc/security.md, "Gossip
# keyring").  Three shoald on 127.0.0.1 share a keyring file: their gossip
# is sealed (AES-256-GCM) and their peer links run in TLS keyed by it; they
# elect a leader and replicate.  Then
#   - a node without a keyring and a node with another key, both seeded
#     with the cluster, never become members, never change the term, and
#     the cluster counts their packets as dropped;
#   - a plaintext peer link (the preamble, as a node without keys sends
#     it) is refused before any frame is read;
#   - `shoalctl cluster keys use` of a key not installed everywhere
#     changes nothing; install, use, remove rotate the key on the live
#     cluster with no member declared dead and writes going on; a node
#     restarted afterwards reads its rewritten keyring file and rejoins;
#   - keys commands to a node without a keyring: FAILED_PRECONDITION.
. "${top_srcdir:-.}/t/tap.sh"
. "${top_srcdir:-.}/t/lib.sh"
. "${top_srcdir:-.}/t/cluster_lib.sh"

COLL=c
N=3
PFX=n
free_base_port 5 || bail_out "no free ports"
diag "base ports $base..$((base + 4))"

newkey() { head -c 32 /dev/urandom | base64; }
K1=$(newkey)
K2=$(newkey)
K3=$(newkey)
K4=$(newkey)

# keyring_for NODE KEY: NODE's own keyring file (each node rewrites its own).
keyring_for() {
	mkdir -p "$TESTDIR/k$1"
	f=$TESTDIR/k$1/ring
	(umask 077; printf '# test keyring\n%s\n' "$2" >"$f")
	echo "$f"
}

ctl_at() { n=$1; shift; "$SHOALCTL" --addr "$(client_addr "$n")" --timeout 5000 "$@"; }
metric() { curl -s "http://$(rest_addr "$1")/metrics" | awk -v m="$2" '$1 == m { print $2 }'; }
alive_members() { ctl_at "$1" members 2>/dev/null | grep -c " alive "; }
term_of() { jf "$(cluster_json "$1")" term; }

for i in 0 1 2; do
	EXTRA="--security-gossip-keyring-file $(keyring_for $i "$K1")"
	start_node $i
done
EXTRA=
wait_leader "0 1 2"
ok $? "three nodes with one keyring elect a leader" || bail_out "no leader: $(cat "$TESTDIR"/n0.log)"
like "$(cat "$TESTDIR/n0.log")" "gossip sealed and peer links in TLS with the keyring" \
	"the node logs that its gossip is sealed"
ctl_at 0 collection create $COLL --dim 3 >/dev/null
for i in 1 2 3 4 5; do
	ctl_at $((i % 3)) upsert $COLL --id "$i" --vector "$i,1,2" >/dev/null
done
wait_converged "0 1 2"
ok $? "writes replicate over the TLS peer links"
is "$(alive_members 0)" 3 "node 0 sees three members alive"

# ------------------------------------------------------------ intruders
term0=$(term_of 0)
drops0=$(metric 0 shoal_gossip_unsealed_dropped_total)
start_shoald "$TESTDIR/n3.log" --node-name n3 --node-data-dir "$TESTDIR/n3" \
	--listen-base-port $((base + 3)) --membership-profile local \
	--cluster-seeds "127.0.0.1:$((base * 10 + 1))" --cluster-bootstrap-expect 3
pid_3=$pid
start_shoald "$TESTDIR/n4.log" --node-name n4 --node-data-dir "$TESTDIR/n4" \
	--listen-base-port $((base + 4)) --membership-profile local \
	--cluster-seeds "127.0.0.1:$((base * 10 + 1))" --cluster-bootstrap-expect 3 \
	--security-gossip-keyring-file "$(keyring_for 4 "$K2")"
pid_4=$pid
wait_for "$TESTDIR/n0.log" "no gossip key opens" 10
ok $? "the cluster drops the intruders' gossip, and says so"
sleep 3
is "$(alive_members 0)" 3 "after 3 s node 0 still has three members"
seen=
for i in 0 1 2; do seen="$seen$(ctl_at $i members 2>/dev/null | grep -c -E '^n[34] ')"; done
is "$seen" "000" "neither n3 nor n4 is a member on any node"
is "$(term_of 0)" "$term0" "the term did not change"
drops=$(metric 0 shoal_gossip_unsealed_dropped_total)
ok $([ "${drops:-0}" -gt "${drops0:-0}" ]; echo $?) \
	"shoal_gossip_unsealed_dropped_total counts them (${drops0:-?} -> ${drops:-?})"
is "$(grep -c "swim: member .* joined" "$TESTDIR/n4.log")" 0 \
	"the node with another key learned of no member"
ctl_at 3 cluster keys list >"$TESTDIR/nokeys.out" 2>&1
is $? 5 "keys list on a node without a keyring: exit 5"
like "$(cat "$TESTDIR/nokeys.out")" "FAILED_PRECONDITION" "... FAILED_PRECONDITION"
kill -TERM "$pid_3" "$pid_4"
wait_exit "$pid_3" 10000
wait_exit "$pid_4" 10000

# A plaintext peer link: the preamble a node without keys sends, then a
# frame; refused on sight.
cport=$((base * 10 + 1))
timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$cport &&
	printf 'SHOALPR1\\001\\0\\0\\0\\0\\0\\0\\0\\001\\0\\0\\0\\0\\0\\0\\0\\006\\0\\0\\0\\001hello' >&3 &&
	sleep 1" 2>/dev/null
wait_for "$TESTDIR/n0.log" "a plaintext link, but this node's links need TLS" 5
ok $? "a plaintext peer link is refused before any frame is read"

# ------------------------------------------------------------ rotation
ctl_at 0 cluster keys use "$K2" >"$TESTDIR/use.out" 2>&1
is $? 5 "keys use of a key no member has: refused (exit 5)"
like "$(cat "$TESTDIR/use.out")" "not installed" "... saying it is not installed"
out=$(ctl_at 0 cluster keys list)
is "$(echo "$out" | grep -c "(primary)")" 3 "... and every member keeps its primary"

start_writer "0 1 2" 1000
t0=$(date +%s)
out=$(printf '%s\n' "$K2" | ctl_at 1 cluster keys install -)
is $? 0 "keys install (key from stdin): exit 0"
like "$out" "3 of 3 member" "... on three of three members"
out=$(ctl_at 2 cluster keys use "$K2")
is $? 0 "keys use: exit 0"
fp2=$(ctl_at 0 --json cluster keys list | sed -n 's/.*"keys":\["\([0-9a-f]*\)".*/\1/p' | head -n 1)
is "$(ctl_at 0 cluster keys list | grep -c "$fp2 (primary)")" 3 "the new key is every member's primary"
sleep 2
out=$(ctl_at 0 cluster keys remove "$K1")
is $? 0 "keys remove of the old key: exit 0"
is "$(ctl_at 0 cluster keys list | grep -c ": $fp2 (primary)\$")" 3 \
	"every member holds only the new key"
sleep 3
dead=$(cat "$TESTDIR"/n0.log "$TESTDIR"/n1.log "$TESTDIR"/n2.log | grep -c "is dead")
is "$dead" 0 "no member was declared dead during the rotation ($(($(date +%s) - t0)) s)"
is "$(alive_members 1)" 3 "three members alive after the rotation"
grep -q -F "$K1" "$TESTDIR/k1/ring"
is $? 1 "node 1's keyring file was rewritten without the old key"
like "$(ls -l "$TESTDIR/k1/ring")" "-rw------- " "... with mode 600"
stop_writer
check_acked "0 1 2" "rotation"
like "$(cat "$TESTDIR/n0.log")" "closed" "a node closes its peer links after a key is removed"

# A node restarted reads its rewritten keyring and rejoins.
kill -TERM "$pid_1"
wait_exit "$pid_1" 10000
EXTRA="--security-gossip-keyring-file $TESTDIR/k1/ring"
start_node 1
EXTRA=
wait_leader "0 1 2"
ok $? "node 1 restarted with the new key follows the leader"
check_converged "0 1 2" "after the restart"

# Connections that start a TLS handshake and never finish it cannot keep
# the nodes' own links out: 300 of them held while node 2 restarts.
bash -c "for i in \$(seq 1 300); do exec {fd}<>/dev/tcp/127.0.0.1/$cport || break
	printf '\\026\\003\\001\\000' >&\$fd; done; sleep 15" 2>/dev/null &
holder=$!
started_pids="$started_pids $holder"
sleep 1
kill -TERM "$pid_2"
wait_exit "$pid_2" 10000
EXTRA="--security-gossip-keyring-file $TESTDIR/k2/ring"
start_node 2
EXTRA=
wait_leader "0 1 2"
ok $? "with 300 handshakes held open against node 0, node 2 restarts and follows the leader"
check_converged "0 1 2" "while the handshakes are held"
refused=$(metric 0 shoal_peer_links_refused_total)
ok $([ "${refused:-0}" -ge 1 ]; echo $?) \
	"node 0 counts the unfinished handshakes it closed (shoal_peer_links_refused_total ${refused:-?})"
kill "$holder" 2>/dev/null

# A rotation left half done: node 2 cannot write its keyring file (a
# directory where its temporary file goes), so `use` fails there; `remove`
# of the key node 2 still seals with is then refused, changing nothing.
sleep 2
dead0=$(cat "$TESTDIR"/n[0-2]*.log | grep -c "is dead")
printf '%s\n' "$K3" | ctl_at 0 cluster keys install - >/dev/null
is $? 0 "install a third key"
mkdir "$TESTDIR/k2/ring.tmp"
ctl_at 0 cluster keys use "$K3" >"$TESTDIR/use3.out" 2>&1
isnt_ok=$?
ok $([ $isnt_ok != 0 ]; echo $?) "keys use with node 2 unable to save: fails (exit $isnt_ok)"
like "$(cat "$TESTDIR/use3.out")" "cannot write" "... naming the reason"
ctl_at 0 cluster keys remove "$K2" >"$TESTDIR/rm2.out" 2>&1
is $? 5 "keys remove of the key node 2 still seals with: refused (exit 5)"
like "$(cat "$TESTDIR/rm2.out")" "n2 the key is its primary" "... naming node 2"
is "$(ctl_at 1 cluster keys list | grep -c " (primary)")" 3 "every member still answers"
rmdir "$TESTDIR/k2/ring.tmp"
ctl_at 0 cluster keys use "$K3" >/dev/null && ctl_at 0 cluster keys remove "$K2" >/dev/null
is $? 0 "once node 2 can save: use and remove complete"
sleep 2
is "$(cat "$TESTDIR"/n[0-2]*.log | grep -c "is dead")" "$dead0" \
	"no member was declared dead meanwhile"

# A key never installed cannot be removed; the primary cannot be removed.
ctl_at 0 cluster keys remove "$K4" >/dev/null 2>&1
is $? 3 "keys remove of a key not installed: exit 3 (NOT_FOUND)"
ctl_at 0 cluster keys remove "$K3" >"$TESTDIR/rm.out" 2>&1
is $? 5 "keys remove of the primary: refused (exit 5)"
like "$(cat "$TESTDIR/rm.out")" "primary" "... saying it is the primary"
stop_cluster
done_testing
