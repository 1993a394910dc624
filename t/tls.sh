#!/bin/sh
# TLS on the client and REST ports (doc/security.md, "TLS for clients"),
# with certificates from contrib/tls/make-certs.sh, against single-node
# shoald on 127.0.0.1:
#   - make-certs.sh: a CA and leaves that verify, keys mode 600, an expired
#     leaf, a CA reused for a later NAME;
#   - shoald refuses a key readable by others, a missing certificate, a key
#     that is not the certificate's;
#   - a TLS node: status, create, upsert, search over TLS (TLS 1.3, 1.2 too);
#     refused, with exit 6 and a message naming TLS or the certificate: a
#     plaintext client, a client trusting another CA, a certificate expired,
#     a server name the certificate does not hold; a TLS client against a
#     plaintext node;
#   - REST over https with curl; http:// to the TLS port and another CA fail;
#   - security.tls_client_ca_file: clients without a certificate, or with one
#     of another CA, are refused; shoalctl and curl with one get in;
#   - SIGHUP re-reads the certificate (a new CA's now); a garbage file is
#     NOT reloaded and the running certificate stays;
#   - 1 MB of random bytes at the TLS ports harms nothing;
#   - every node stops on SIGTERM.
# Skips, saying why, without openssl; the REST checks without curl.
. "${top_srcdir:-.}/t/tap.sh"
. "${top_srcdir:-.}/t/lib.sh"

SHOALCTL=$top_builddir/src/client/shoalctl
MKCERTS=$top_srcdir/contrib/tls/make-certs.sh
T=$((20 * SCALE))
unset SHOAL_TLS_CA SHOAL_ADDR

if ! command -v openssl >/dev/null; then
	echo "1..0 # SKIP the openssl command is missing (Debian package openssl)"
	exit 0
fi
have_curl=no
command -v curl >/dev/null && have_curl=yes

free_base_port 5 || bail_out "no free base port"
A=$base         # TLS; its certificate is reloaded on SIGHUP
E=$((base + 1)) # an expired certificate
P=$((base + 2)) # no TLS
M=$((base + 3)) # client certificates required
X=$((base + 4)) # the nodes that must not start
diag "base ports $base..$((base + 4))"

# ctl BASE ARGS...: shoalctl at BASE's client port, its stdout and stderr
# in $out, its exit status in $st.
ctl() {
	b=$1; shift
	out=$(timeout $((30 * SCALE)) "$SHOALCTL" --addr "127.0.0.1:$((b * 10 + 2))" \
		--timeout $((5000 * SCALE)) "$@" 2>&1)
	st=$?
}
# code BASE PATH CURL-ARGS...: the HTTP status of https://BASE's REST
# port/PATH ("000" when there is no answer); the body in $TESTDIR/body.
code() {
	b=$1; p=$2; shift 2
	curl -s --max-time $((5 * SCALE)) -o "$TESTDIR/body" -w '%{http_code}' "$@" \
		"https://127.0.0.1:$((b * 10 + 3))$p"
}
alive() { kill -0 "$1" 2>/dev/null; echo $?; }
# refused WHAT [WANT NAMES]: the last ctl exited 6 and, given WANT, its
# message has WANT (the test says the message names NAMES).
refused() {
	is "$st" 6 "$1: exit 6" || diag "$out"
	[ -z "${2:-}" ] || like "$out" "$2" "  the message names $3"
}
# start NAME BASE ARGS...: a single node (its PID in $pid); waits until it
# is leader (fails at once if it exits).
start() {
	n=$1; b=$2; shift 2
	start_shoald "$TESTDIR/$n.log" --node-name "$n" --node-data-dir "$TESTDIR/$n" \
		--listen-base-port "$b" --membership-profile local "$@"
	deadline=$(($(date +%s) + T))
	while ! grep -q "elected leader" "$TESTDIR/$n.log"; do
		kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt $deadline ] || return 1
		sleep 0.05
	done
}
# stop PID NAME: SIGTERM, and it exits with status 0 within 5 s.
stop() {
	kill -TERM "$1"
	wait_exit "$1" 5000
	ok $? "node $2 stops on SIGTERM" && is "$status" 0 "  exit status 0"
}

# ------------------------------------------------------------ make-certs.sh
C=$TESTDIR/certs
"$MKCERTS" "$C" node client >"$TESTDIR/mk.out" 2>&1
ok $? "make-certs.sh DIR node client" || bail_out "make-certs.sh: $(cat "$TESTDIR/mk.out")"
like "$(cat "$TESTDIR/mk.out")" "$C/node.pem" "  says what it made"
out=$(openssl verify -CAfile "$C/ca.pem" "$C/node.pem" "$C/client.pem" 2>&1)
is "$(echo "$out" | grep -c ': OK$')" 2 "  node.pem and client.pem verify against ca.pem" || diag "$out"
like "$(ls -l "$C/node.key")" "-rw------- " "  node.key has mode 600"
like "$(ls -ld "$C")" "drwx------ " "  the directory has mode 700"
out=$(openssl x509 -in "$C/node.pem" -noout -text)
like "$out" "DNS:node, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1" \
	"  node.pem's names: node, localhost, 127.0.0.1, ::1"
like "$out" "TLS Web Server Authentication, TLS Web Client Authentication" \
	"  for servers and clients"
like "$out" "NIST CURVE: P-256" "  an EC P-256 key"
ca_before=$(cat "$C/ca.pem")
SHOAL_CERT_SANS="IP:10.0.0.5,DNS:db1.example" "$MKCERTS" "$C" later >"$TESTDIR/mk.out" 2>&1
ok $? "make-certs.sh again, for another NAME"
is "$(cat "$C/ca.pem")" "$ca_before" "  the CA is reused"
like "$(openssl verify -CAfile "$C/ca.pem" "$C/later.pem" 2>&1)" ": OK" "  and signs the new NAME"
like "$(openssl x509 -in "$C/later.pem" -noout -ext subjectAltName)" \
	"IP Address:10.0.0.5, DNS:db1.example" "  SHOAL_CERT_SANS adds names"
"$MKCERTS" "$TESTDIR/other" >/dev/null 2>&1 &&
	"$MKCERTS" --expired "$TESTDIR/expired" >"$TESTDIR/mk.out" 2>&1
ok $? "make-certs.sh: another CA, and an expired certificate" ||
	bail_out "make-certs.sh: $(cat "$TESTDIR/mk.out")"
like "$(openssl verify -CAfile "$TESTDIR/expired/ca.pem" "$TESTDIR/expired/node.pem" 2>&1)" \
	"certificate has expired" "  openssl verify: the certificate has expired"

# ------------------------------------------------------------ refusals at start
# bad NAME ARGS...: shoald with ARGS exits (not 0, not killed after 10 s).
bad() {
	n=$1; shift
	out=$(timeout $((10 * SCALE)) "$SHOALD" --node-name x --node-data-dir "$TESTDIR/x" \
		--listen-base-port "$X" --membership-profile local "$@" 2>&1)
	st=$?
	ok "$([ "$st" -ne 0 ] && [ "$st" -ne 124 ]; echo $?)" "$n: shoald refuses to start ($st)" ||
		diag "$out"
}
cp "$C/node.key" "$TESTDIR/loose.key"
chmod 644 "$TESTDIR/loose.key"
bad "a key file with mode 644" --security-tls-cert-file "$C/node.pem" \
	--security-tls-key-file "$TESTDIR/loose.key"
like "$out" "loose.key" "  and names the key file"
bad "a certificate file that is missing" --security-tls-cert-file "$TESTDIR/missing.pem" \
	--security-tls-key-file "$C/node.key"
like "$out" "missing.pem" "  and names it"
bad "a key that is not the certificate's" --security-tls-cert-file "$C/node.pem" \
	--security-tls-key-file "$C/client.key"
like "$out" "client.key" "  and names the key file"

# ------------------------------------------------------------ a TLS node
# node A's certificate and key where SIGHUP re-reads them
mkdir -p "$TESTDIR/a-tls"
cp -p "$C/node.pem" "$C/node.key" "$TESTDIR/a-tls/"
start a "$A" --security-tls-cert-file "$TESTDIR/a-tls/node.pem" \
	--security-tls-key-file "$TESTDIR/a-tls/node.key"
ok $? "a node with TLS starts" || bail_out "node a did not start: $(cat "$TESTDIR/a.log")"
pid_a=$pid
wait_for "$TESTDIR/a.log" "TLS on the client and REST ports" 5
ok $? "  it logs: TLS on the client and REST ports"

ctl "$A" --tls-ca "$C/ca.pem" status
is "$st" 0 "shoalctl --tls-ca status: exit 0" || diag "$out"
like "$out" "role leader" "  the node answers"
ctl "$A" --tls-ca "$C/ca.pem" collection create c --dim 3
is "$st" 0 "collection create over TLS" || diag "$out"
ctl "$A" --tls-ca "$C/ca.pem" upsert c --id 1 --vector 1,2,3
is "$st" 0 "upsert over TLS" || diag "$out"
ctl "$A" --tls-ca "$C/ca.pem" search c --vector 1,2,3 -k 1
is "$st" 0 "search over TLS" || diag "$out"
is "$(printf '%s\n' "$out" | awk 'NR == 1 { print $1 }')" 1 "  finds point 1"
out=$(SHOAL_TLS_CA=$C/ca.pem timeout $((30 * SCALE)) "$SHOALCTL" \
	--addr "127.0.0.1:$((A * 10 + 2))" count c 2>&1)
is "$?" 0 "SHOAL_TLS_CA=ca.pem instead of --tls-ca" || diag "$out"

# the protocol versions, as openssl s_client sees them
s_client() {
	timeout $((10 * SCALE)) openssl s_client -connect "127.0.0.1:$((A * 10 + 2))" \
		-CAfile "$C/ca.pem" -verify_return_error "$@" </dev/null 2>&1
}
# negotiated S_CLIENT-OUTPUT: the protocol of the session, "none" when the
# handshake failed (s_client prints no session for TLS 1.3 before a ticket
# comes: then the version of the cipher, TLS 1.3's own)
negotiated() {
	case $1 in
	*"Cipher is (NONE)"*) echo none ;;
	*"Protocol  : "*) printf '%s\n' "$1" | sed -n 's/^ *Protocol *: *//p' | head -n 1 ;;
	*) printf '%s\n' "$1" | sed -n 's/^New, \([^,]*\),.*/\1/p' | head -n 1 ;;
	esac
}
is "$(negotiated "$(s_client)")" TLSv1.3 "TLS 1.3 is negotiated when the client offers it"
is "$(negotiated "$(s_client -tls1_2)")" TLSv1.2 "TLS 1.2 is accepted"
out=$(s_client -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0')
case $out in
*"no protocols available"*) skip "this openssl cannot offer TLS 1.1" ;;
*) is "$(negotiated "$out")" none "TLS 1.1 is refused" || diag "$out" ;;
esac

ctl "$A" status
refused "a plaintext client at the TLS port" "TLS" "TLS"
ctl "$A" --tls-ca "$C/ca.pem" status
is "$st" 0 "  the node still answers over TLS"

ctl "$A" --tls-ca "$TESTDIR/other/ca.pem" status
refused "a client trusting another CA" "certificate" "the certificate"
ctl "$A" --tls-ca "$C/ca.pem" status
is "$st" 0 "  the node still answers over TLS"

ctl "$A" --tls-ca "$C/ca.pem" --tls-server-name wrong.example status
refused "--tls-server-name wrong.example (not in the certificate)"
ok "$(echo "$out" | grep -q -i "hostname\|certificate"; echo $?)" \
	"  the message names the certificate or the host name" || diag "$out"
ctl "$A" --tls-ca "$C/ca.pem" --tls-server-name localhost status
is "$st" 0 "--tls-server-name localhost (in the certificate): exit 0" || diag "$out"
ctl "$A" --tls-ca "$C/ca.pem" --tls-server-name localhost --read-addr "127.0.0.1:$((A * 10 + 2))" \
	collection list
is "$st" 0 "reads over a second connection (--read-addr) keep the CA and the server name" ||
	diag "$out"

# ------------------------------------------------------------ expired, plaintext
start e "$E" --security-tls-cert-file "$TESTDIR/expired/node.pem" \
	--security-tls-key-file "$TESTDIR/expired/node.key"
ok $? "a node with an expired certificate starts" || diag "$(cat "$TESTDIR/e.log")"
pid_e=$pid
ctl "$E" --tls-ca "$TESTDIR/expired/ca.pem" status
refused "a client at the node with the expired certificate" "expired" "the expiry"
stop "$pid_e" e

start p "$P"
ok $? "a node without TLS starts" || diag "$(cat "$TESTDIR/p.log")"
pid_p=$pid
ctl "$P" --tls-ca "$C/ca.pem" status
refused "a TLS client at a plaintext port" "TLS" "TLS"
ctl "$P" status
is "$st" 0 "  a plaintext client there: exit 0" || diag "$out"
stop "$pid_p" p

# ------------------------------------------------------------ REST
if [ $have_curl = yes ]; then
	is "$(code "$A" /healthz --cacert "$C/ca.pem")" 200 "REST: https /healthz with ca.pem: 200"
	is "$(code "$A" /collections --cacert "$C/ca.pem")" 200 "REST: https /collections: 200"
	like "$(cat "$TESTDIR/body")" '"name":"c"' "  lists collection c"
	r=$(curl -s --max-time $((5 * SCALE)) -o /dev/null -w '%{http_code}' \
		"http://127.0.0.1:$((A * 10 + 3))/healthz")
	ok "$([ "$r" != 200 ]; echo $?)" "REST: http:// to the TLS port fails ($r)"
	r=$(code "$A" /healthz --cacert "$TESTDIR/other/ca.pem")
	ok "$([ "$r" != 200 ]; echo $?)" "REST: https trusting another CA fails ($r)"
	r=$(curl -s --max-time $((5 * SCALE)) -o /dev/null -w '%{http_code}' --cacert "$C/ca.pem" \
		--resolve "localhost:$((A * 10 + 3)):127.0.0.1" "https://localhost:$((A * 10 + 3))/healthz")
	is "$r" 200 "REST: https://localhost (a name in the certificate): 200"
else
	skip "curl is missing: no REST checks"
fi

# ------------------------------------------------------------ client certificates
start m "$M" --security-tls-cert-file "$C/node.pem" --security-tls-key-file "$C/node.key" \
	--security-tls-client-ca-file "$C/ca.pem"
ok $? "a node requiring client certificates starts" || diag "$(cat "$TESTDIR/m.log")"
pid_m=$pid
ctl "$M" --tls-ca "$C/ca.pem" status
refused "a client without a certificate"
ctl "$M" --tls-ca "$C/ca.pem" --tls-cert "$TESTDIR/other/node.pem" \
	--tls-key "$TESTDIR/other/node.key" status
refused "a client with a certificate of another CA"
ctl "$M" --tls-ca "$C/ca.pem" collection create w --dim 3
is "$st" 6 "a write without a certificate: exit 6 (refused, not 'may have been applied')" ||
	diag "$out"
like "$out" "refused this client's certificate" "  saying the node refused the certificate"
ctl "$M" --tls-cert "$C/client.pem" --tls-key "$C/client.key" status
is "$st" 5 "TLS options without --tls-ca: exit 5, nothing sent in clear" || diag "$out"
ctl "$M" --tls-ca "$C/ca.pem" --tls-cert "$C/client.pem" --tls-key "$C/client.key" status
is "$st" 0 "a client with a certificate of the CA: exit 0" || diag "$out"
if [ $have_curl = yes ]; then
	is "$(code "$M" /healthz --cacert "$C/ca.pem" --cert "$C/client.pem" --key "$C/client.key")" \
		200 "REST: curl with a client certificate: 200"
	r=$(code "$M" /healthz --cacert "$C/ca.pem")
	ok "$([ "$r" != 200 ]; echo $?)" "REST: curl without one fails ($r)"
else
	skip "curl is missing: no REST checks"
fi
ok "$(alive "$pid_m")" "  the node is still up"

# ------------------------------------------------------------ SIGHUP
"$MKCERTS" "$TESTDIR/new" >/dev/null 2>&1
ok $? "make-certs.sh: a new CA and certificate"
cp "$TESTDIR/new/node.pem" "$TESTDIR/a-tls/node.pem"
cp "$TESTDIR/new/node.key" "$TESTDIR/a-tls/node.key"
kill -HUP "$pid_a"
wait_for "$TESTDIR/a.log" "TLS certificate[^N]*reloaded" 10
ok $? "SIGHUP: the certificate is reloaded" || diag "$(tail -5 "$TESTDIR/a.log")"
ctl "$A" --tls-ca "$TESTDIR/new/ca.pem" status
is "$st" 0 "  a client trusting the new CA: exit 0" || diag "$out"
ctl "$A" --tls-ca "$C/ca.pem" status
refused "  a client trusting only the old CA" "certificate" "the certificate"
if [ $have_curl = yes ]; then
	is "$(code "$A" /healthz --cacert "$TESTDIR/new/ca.pem")" 200 "  REST with the new CA: 200"
else
	skip "curl is missing: no REST check"
fi
echo "not a certificate" >"$TESTDIR/a-tls/node.pem"
kill -HUP "$pid_a"
wait_for "$TESTDIR/a.log" "TLS certificate NOT reloaded" 10
ok $? "SIGHUP with a garbage certificate: NOT reloaded" || diag "$(tail -5 "$TESTDIR/a.log")"
ctl "$A" --tls-ca "$TESTDIR/new/ca.pem" status
is "$st" 0 "  the certificate loaded before stays in use" || diag "$out"

# ------------------------------------------------------------ hostile bytes
if command -v bash >/dev/null; then
	head -c 1048576 /dev/urandom >"$TESTDIR/junk"
	# a TLS handshake record header claiming 65535 bytes, then junk
	{ printf '\026\003\001\377\377'; head -c 65536 /dev/urandom; } >"$TESTDIR/junk2"
	for port in $((A * 10 + 2)) $((A * 10 + 3)); do
		for f in junk junk2; do
			# shellcheck disable=SC2016 # bash expands them
			timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && cat "$2" >&3 && sleep 0.2' \
				_ "$port" "$TESTDIR/$f" >/dev/null 2>&1
		done
	done
	ok "$(alive "$pid_a")" "1 MB of random bytes at the client and REST ports: the node is up"
	ctl "$A" --tls-ca "$TESTDIR/new/ca.pem" status
	is "$st" 0 "  and answers over TLS" || diag "$out"
	# inside a TLS session: a frame header announcing 1 GiB, random frames,
	# a garbled HTTP request (the decoders behind TLS are the same ones
	# t/server_bad.t and t/server_rest.t attack in plaintext)
	for port in $((A * 10 + 2)) $((A * 10 + 3)); do
		{ printf '\377\377\377\177'; head -c 262144 /dev/urandom
		  printf 'GET /%s HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n' \
			"$(head -c 3000 /dev/zero | tr '\0' a)"; } |
			timeout 5 openssl s_client -quiet -connect "127.0.0.1:$port" \
				-CAfile "$TESTDIR/new/ca.pem" >/dev/null 2>&1
	done
	ok "$(alive "$pid_a")" "random frames and a garbled request inside TLS sessions: the node is up"
	ctl "$A" --tls-ca "$TESTDIR/new/ca.pem" status
	is "$st" 0 "  and answers over TLS" || diag "$out"
else
	skip "bash is missing: no random bytes through /dev/tcp"
fi

# ------------------------------------------------------------ stop
stop "$pid_a" a
stop "$pid_m" m
done_testing
