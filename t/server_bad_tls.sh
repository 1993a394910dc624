#!/bin/sh
# t/server_bad.t over TLS: the hostile-input tests of the binary protocol
# and of REST against a node whose client and REST ports speak TLS (issue
# 14).  t/srv_tls.h bridges each of the test's connections into a TLS
# connection, so every malformed frame, oversize header and slow or greedy
# client reaches the node inside TLS.
. "${top_srcdir:-.}/t/tap.sh"
. "${top_srcdir:-.}/t/lib.sh"

if ! command -v openssl >/dev/null; then
	echo "1..0 # SKIP the openssl command is missing (Debian package openssl)"
	exit 0
fi
"$top_srcdir/contrib/tls/make-certs.sh" "$TESTDIR/certs" node >/dev/null 2>&1 ||
	bail_out "make-certs.sh failed"
SHOAL_TEST_TLS=$TESTDIR/certs SHOAL_TLS_CA=$TESTDIR/certs/ca.pem \
	"$top_builddir/t/server_bad.t"
rc=$?
exit $rc
