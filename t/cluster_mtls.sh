#!/bin/sh
# Peer links in mutual TLS with certificates of a cluster CA (issue 14;
# doc/security.md, "Peer links with certificates").  Three shoald with
# node certificates that one CA signed (contrib/tls/make-certs.sh) and a
# gossip keyring elect a leader and replicate over mutual TLS.  A fourth
# node with the gossip key but a certificate of another CA becomes a
# member of the gossip, yet cannot replicate or vote: its links fail the
# handshake (counted, logged), it never applies an entry, and the term does
# not move.  A plaintext peer preamble is refused.
. "${top_srcdir:-.}/t/tap.sh"
. "${top_srcdir:-.}/t/lib.sh"
. "${top_srcdir:-.}/t/cluster_lib.sh"

if ! command -v openssl >/dev/null; then
	echo "1..0 # SKIP the openssl command is missing (Debian package openssl)"
	exit 0
fi
MKCERTS=$top_srcdir/contrib/tls/make-certs.sh
COLL=c
N=3
PFX=n
free_base_port 4 || bail_out "no free ports"
diag "base ports $base..$((base + 3))"

"$MKCERTS" "$TESTDIR/ca" n0 n1 n2 client >/dev/null 2>&1 || bail_out "make-certs.sh failed"
"$MKCERTS" "$TESTDIR/other" n3 >/dev/null 2>&1 || bail_out "make-certs.sh failed"
KEY=$(head -c 32 /dev/urandom | base64)

# flags_for NODE CA_DIR: the node's certificate flags and its own keyring.
flags_for() {
	mkdir -p "$TESTDIR/k$1"
	(umask 077; printf '%s\n' "$KEY" >"$TESTDIR/k$1/ring")
	echo "--security-gossip-keyring-file $TESTDIR/k$1/ring" \
		"--security-peer-cert-file $2/n$1.pem --security-peer-key-file $2/n$1.key" \
		"--security-peer-ca-file $2/ca.pem"
}
ctl_at() { n=$1; shift; "$SHOALCTL" --addr "$(client_addr "$n")" --timeout 5000 "$@"; }
metric() { curl -s "http://$(rest_addr "$1")/metrics" | awk -v m="$2" '$1 == m { print $2 }'; }

for i in 0 1 2; do
	EXTRA=$(flags_for $i "$TESTDIR/ca")
	start_node $i
done
EXTRA=
wait_leader "0 1 2"
ok $? "three nodes with certificates of one CA elect a leader" ||
	bail_out "no leader: $(cat "$TESTDIR"/n0.log)"
like "$(cat "$TESTDIR/n0.log")" "peer links in mutual TLS" "the node logs its peer links' mutual TLS"
ctl_at 0 collection create $COLL --dim 3 >/dev/null
for i in 1 2 3 4 5; do ctl_at $((i % 3)) upsert $COLL --id "$i" --vector "$i,1,2" >/dev/null; done
check_converged "0 1 2" "writes over mutual TLS"

term0=$(jf "$(cluster_json 0)" term)
EXTRA=$(flags_for 3 "$TESTDIR/other")
start_node 3
EXTRA=
wait_for "$TESTDIR/n3.log" "swim: member n0 .* joined" 10
ok $? "the node with another CA's certificate but the gossip key joins the gossip"
sleep 5
j=$(cluster_json 3)
is "$(jf "$j" applied_index)" 0 "it applied no entry (nothing replicated to it)"
n3id=$(jf "$j" node_id)
conf=$(curl -s "http://$(rest_addr 0)/cluster" | sed 's/,"members":\[.*//')
case "$conf" in
*"$n3id"*) fail "the leader made it a voter or learner: $conf" ;;
*) pass "the leader did not make it a voter or learner (no authenticated link to it)" ;;
esac
is "$(jf "$(cluster_json 0)" term)" "$term0" "the term did not move"
refused=0
for i in 0 1 2; do
	r=$(metric $i shoal_peer_links_refused_total)
	f=$(metric $i shoal_peer_connect_failures_total)
	refused=$((refused + ${r:-0} + ${f:-0}))
done
ok $([ "$refused" -gt 0 ]; echo $?) \
	"the cluster refused its links or failed to connect to it ($refused, counted in /metrics)"
like "$(cat "$TESTDIR"/n0.log "$TESTDIR"/n1.log "$TESTDIR"/n2.log "$TESTDIR"/n3.log)" "certificate" \
	"a log names the certificate failure"
ctl_at 0 upsert $COLL --id 9 --vector 9,1,2 >/dev/null
ok $? "the cluster still takes writes"
wait_converged "0 1 2"
ok $? "the three nodes converge with the intruder around"

eval "kill -TERM \$pid_3; wait_exit \$pid_3 10000"
sleep 1 # its last refused links counted

# le64 HEX: the 16 hex digits as 8 little-endian bytes, printf escapes.
le64() {
	i=15 out=
	while [ $i -ge 1 ]; do
		out="$out$(printf '\\%03o' $((0x$(echo "$1" | cut -c$i-$((i + 1))))))"
		i=$((i - 2))
	done
	echo "$out"
}

# A certificate the cluster CA signed for a client, not a node: its links
# claiming to be node n0 (a member) are refused once the preamble names
# n0, and the term does not move.
cid=$(ctl_at 0 status | sed -n 's/.*cluster \([0-9a-f]*\),.*/\1/p')
n0id=$(jf "$(cluster_json 0)" node_id)
term1=$(jf "$(cluster_json 0)" term)
if [ -n "$cid" ] && [ -n "$n0id" ]; then
	pre="SHOALPR1$(le64 "$n0id")$(le64 "$cid")"
	before=$(metric 1 shoal_peer_links_refused_total)
	# shellcheck disable=SC2059 # the escapes are the point
	{ printf "$pre"; sleep 3; } | timeout $((20 * SCALE)) openssl s_client -quiet \
		-connect "127.0.0.1:$((base * 10 + 11))" -cert "$TESTDIR/ca/client.pem" \
		-key "$TESTDIR/ca/client.key" -CAfile "$TESTDIR/ca/ca.pem" >/dev/null 2>&1
	after=$before
	for _ in $(seq 1 $((40 * SCALE))); do
		after=$(metric 1 shoal_peer_links_refused_total)
		[ "${after:-0}" -gt "${before:-0}" ] && break
		sleep 0.5
	done
	ok $([ "${after:-0}" -gt "${before:-0}" ]; echo $?) \
		"a client certificate of the cluster CA cannot speak for node n0 on a peer link (refused: ${before:-?} -> ${after:-?})"
	is "$(jf "$(cluster_json 0)" term)" "$term1" "  and the term did not move"
else
	skip "no cluster id or node id from the node: the forged link is not tried"
	skip "no forged link"
fi

cport=$((base * 10 + 1))
before=$(metric 0 shoal_peer_links_refused_total)
timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$cport &&
	printf 'SHOALPR1\\001\\0\\0\\0\\0\\0\\0\\0\\001\\0\\0\\0\\0\\0\\0\\0' >&3 && sleep 1" 2>/dev/null
after=$(metric 0 shoal_peer_links_refused_total)
ok $([ "${after:-0}" -gt "${before:-0}" ]; echo $?) \
	"a plaintext peer link is refused (${before:-?} -> ${after:-?})"
N=3
stop_cluster
done_testing
