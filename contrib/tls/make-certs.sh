#!/bin/sh
# make-certs.sh: a CA and node certificates for TLS on shoald's client and
# REST ports, made with the openssl command-line tool.
#
#   contrib/tls/make-certs.sh [OPTIONS] DIR [NAME...]
#
# In DIR (created with mode 700 if missing):
#   ca.pem, ca.key      a cluster CA: EC P-256, valid 10 years, CN "shoal test CA"
#   NAME.pem, NAME.key  for each NAME (default: node), a certificate signed by
#                       the CA: EC P-256, valid --days days, for both serverAuth
#                       and clientAuth, with the subject alternative names
#                       DNS:NAME, DNS:localhost, IP:127.0.0.1, IP:::1 and those
#                       of $SHOAL_CERT_SANS (e.g. "IP:10.0.0.5,DNS:db1.example");
#                       NAME.key has mode 600
#
#   --days N    validity of the NAME certificates in days (default 365)
#   --expired   make the NAME certificates already expired (valid only on
#               2020-01-01), to test that clients refuse them
#   --force     replace an existing CA in DIR by a new one (the certificates the
#               old one signed stop verifying against the new ca.pem)
#
# An existing CA in DIR (ca.pem and ca.key) is reused to sign the NAMEs, so
# NAMEs can be added later; an existing NAME.pem/NAME.key is replaced.
#
# For tests and local clusters only: keys are unencrypted, the CA key sits
# next to the certificates, nothing revokes.  Production should use its own
# PKI.  Give shoald security.tls_cert_file NAME.pem and tls_key_file NAME.key
# (and tls_client_ca_file ca.pem to require client certificates); give
# shoalctl --tls-ca ca.pem (and --tls-cert/--tls-key for a client NAME).
#
# Options may come before or after DIR; '--' ends them.
# Exit status 0 on success, 1 on a failure (said on stderr), 2 on a usage error.
set -eu

me=make-certs.sh
die() { printf '%s: %s\n' "$me" "$*" >&2; exit 1; }
usage() { sed -n '5,20s/^# \{0,1\}//p' "$0" >&2; exit 2; }
usage_error() {
	printf '%s: %s\n' "$me" "$*" >&2
	printf 'usage: %s [--days N | --expired] [--force] DIR [NAME...]  (--help for more)\n' "$0" >&2
	exit 2
}

days=365
days_given=no
expired=no
force=no
dir=
names=
ended=no # 'yes' after --
# check_name NAME: a host name (it names files and goes in the certificate)
check_name() {
	case $1 in
	'' | [!A-Za-z0-9]* | *[!A-Za-z0-9.-]* | *.)
		usage_error "NAME '$1': use letters, digits, '.' and '-' (a host name)" ;;
	ca) usage_error "NAME 'ca' would overwrite the CA's files" ;;
	esac
}
[ $# -gt 0 ] || usage
while [ $# -gt 0 ]; do
	case $ended$1 in
	no--days)
		[ $# -ge 2 ] || usage_error "--days needs a number of days"
		days=$2; days_given=yes; shift 2; continue ;;
	no--days=*) days=${1#--days=}; days_given=yes ;;
	no--expired) expired=yes ;;
	no--force) force=yes ;;
	no-h | no--help) sed -n '2,32s/^# \{0,1\}//p' "$0"; exit 0 ;;
	no--) ended=yes ;;
	no-*) usage_error "unknown option '$1'" ;;
	*)
		if [ -z "$dir" ]; then
			[ -n "$1" ] || usage_error "the directory is an empty string"
			dir=$1
		else
			check_name "$1"
			names="$names $1"
		fi ;;
	esac
	shift
done
[ -n "$dir" ] || usage_error "no directory given"
# shellcheck disable=SC2086 # the NAMEs were checked: no spaces, no globs
set -- ${names:-node}

case $days in
'' | *[!0-9]* | 0*) usage_error "--days: '$days' is not a positive number of days" ;;
esac
[ "$days" -le 36500 ] || usage_error "--days: $days is more than 100 years"
[ "$days_given" = yes ] && [ "$expired" = yes ] &&
	usage_error "--days and --expired do not go together"

# $SHOAL_CERT_SANS: TYPE:VALUE items, comma-separated, checked here so that a
# mistake gets a clear message (and nothing reaches the openssl config but
# SAN items).
extra_sans=
if [ -n "${SHOAL_CERT_SANS:-}" ]; then
	case $SHOAL_CERT_SANS in
	*'
'*) die "SHOAL_CERT_SANS: has a line break" ;;
	esac
	old_ifs=$IFS
	IFS=,
	set -f
	for s in $SHOAL_CERT_SANS; do
		s=$(printf '%s' "$s" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//')
		case $s in
		'') continue ;;
		DNS:*)
			v=${s#DNS:}
			case $v in
			'' | *[!A-Za-z0-9.*-]*)
				die "SHOAL_CERT_SANS: '$s': a DNS name has letters, digits, '.', '-' (and '*')" ;;
			esac ;;
		IP:*)
			v=${s#IP:}
			case $v in
			'' | *[!0-9A-Fa-f.:]*) die "SHOAL_CERT_SANS: '$s': not an IPv4 or IPv6 address" ;;
			esac ;;
		URI:?* | email:?*)
			case $s in *[[:space:]\"\$\\]*) die "SHOAL_CERT_SANS: '$s': has a space, quote, '\$' or '\\'" ;; esac ;;
		*) die "SHOAL_CERT_SANS: '$s': expected DNS:NAME, IP:ADDRESS, URI:... or email:..." ;;
		esac
		extra_sans="$extra_sans,$s"
	done
	set +f
	IFS=$old_ifs
fi

command -v openssl >/dev/null 2>&1 ||
	die "the openssl command is not installed (Debian package openssl)"

# DIR, mode 700 when we create it; everything in it made under umask 077.
umask 077
if [ ! -d "$dir" ]; then
	[ ! -e "$dir" ] || die "$dir exists and is not a directory"
	mkdir -p "$dir" || die "cannot create $dir"
	chmod 700 "$dir"
fi
[ -w "$dir" ] || die "cannot write in $dir"

# A working directory inside DIR (same file system: files are renamed into
# place whole; no key material in /tmp), removed on every exit.
tmp=$(mktemp -d "$dir/.make-certs.XXXXXX") || die "cannot make a temporary directory in $dir"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
: >"$tmp/openssl.log"

# run WHAT CMD...: run CMD, its output in the log; on a failure say WHAT and
# show openssl's messages.
run() {
	what=$1; shift
	if ! "$@" >>"$tmp/openssl.log" 2>&1; then
		sed 's/^/  /' "$tmp/openssl.log" >&2
		die "$what failed ($(openssl version 2>/dev/null || echo 'openssl version ?'))"
	fi
}

newkey() {
	run "making an EC P-256 key" openssl genpkey -algorithm EC \
		-pkeyopt ec_paramgen_curve:P-256 -pkeyopt ec_param_enc:named_curve -out "$1"
	chmod 600 "$1"
}

# One config for req (the CA and the requests) and for ca (signing).
# SAN for one leaf comes from the environment variable MC_SAN, so the file is
# written once.
cat >"$tmp/openssl.cnf" <<EOF
[ req ]
distinguished_name = req_dn
prompt = no
utf8 = yes
string_mask = utf8only
[ req_dn ]
CN = unused
[ ca_ext ]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ leaf_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
subjectAltName = \${ENV::MC_SAN}
[ ca ]
default_ca = shoal_ca
[ shoal_ca ]
dir = $tmp
database = \$dir/index.txt
new_certs_dir = \$dir
certificate = \$dir/ca.pem
private_key = \$dir/ca.key
rand_serial = yes
default_md = sha256
policy = policy_any
unique_subject = no
email_in_dn = no
copy_extensions = none
preserve = yes
[ policy_any ]
organizationName = optional
organizationalUnitName = optional
commonName = supplied
EOF
MC_SAN=DNS:unused
export MC_SAN

# The CA: reused when DIR has one, else (or with --force) made.
ca_new=no
if [ -e "$dir/ca.key" ] || [ -e "$dir/ca.pem" ]; then
	if [ "$force" = yes ]; then
		ca_new=yes
	else
		[ -f "$dir/ca.key" ] || die "$dir/ca.pem exists without ca.key: cannot sign with it (--force makes a new CA)"
		[ -f "$dir/ca.pem" ] || die "$dir/ca.key exists without ca.pem (--force makes a new CA)"
		[ -r "$dir/ca.key" ] || die "cannot read $dir/ca.key"
		run "reading $dir/ca.pem" openssl x509 -in "$dir/ca.pem" -noout -pubkey -out "$tmp/ca.pub1"
		run "reading $dir/ca.key" openssl pkey -in "$dir/ca.key" -pubout -out "$tmp/ca.pub2"
		cmp -s "$tmp/ca.pub1" "$tmp/ca.pub2" ||
			die "$dir/ca.key is not the key of $dir/ca.pem (--force makes a new CA)"
		cp "$dir/ca.pem" "$tmp/ca.pem"
		cp "$dir/ca.key" "$tmp/ca.key"
	fi
else
	ca_new=yes
fi
if [ $ca_new = yes ]; then
	newkey "$tmp/ca.key"
	# a random OU tells two test CAs apart in error messages
	caid=$(openssl rand -hex 4)
	run "making the CA certificate" openssl req -config "$tmp/openssl.cnf" -new -x509 \
		-key "$tmp/ca.key" -sha256 -days 3650 -set_serial "0x$(openssl rand -hex 16)" \
		-subj "/O=shoal/OU=test CA $caid/CN=shoal test CA" -extensions ca_ext \
		-out "$tmp/ca.pem"
	chmod 644 "$tmp/ca.pem"
	mv -f "$tmp/ca.key" "$dir/ca.key"
	mv -f "$tmp/ca.pem" "$dir/ca.pem"
	cp "$dir/ca.pem" "$tmp/ca.pem"
	cp "$dir/ca.key" "$tmp/ca.key"
	echo "$me: made a new CA in $dir/ca.pem and $dir/ca.key (OU \"test CA $caid\"," \
		"$(openssl x509 -in "$dir/ca.pem" -noout -enddate | sed 's/notAfter=/until /'))"
else
	echo "$me: signing with the existing CA in $dir/ca.pem" \
		"($(openssl x509 -in "$dir/ca.pem" -noout -subject | sed 's/^subject= *//'))"
fi

for n in "$@"; do
	case $n in
	*[!0-9.]*) san="DNS:$n" ;;
	*) san="IP:$n" ;; # an IPv4 address as NAME
	esac
	[ "$n" = localhost ] || san="$san,DNS:localhost"
	[ "$n" = 127.0.0.1 ] || san="$san,IP:127.0.0.1"
	san="$san,IP:::1$extra_sans"
	MC_SAN=$san

	newkey "$tmp/$n.key"
	run "making the request for $n" openssl req -config "$tmp/openssl.cnf" -new \
		-key "$tmp/$n.key" -subj "/O=shoal/CN=$n" -out "$tmp/$n.csr"
	: >"$tmp/index.txt"
	if [ $expired = yes ]; then
		validity="-startdate 20200101000000Z -enddate 20200102000000Z"
	else
		validity="-days $days"
	fi
	# shellcheck disable=SC2086 # $validity: two options and their values
	run "signing $n's certificate" openssl ca -config "$tmp/openssl.cnf" -batch -notext \
		-extensions leaf_ext $validity -in "$tmp/$n.csr" -out "$tmp/$n.pem"
	# what openssl made is what was asked for
	openssl x509 -in "$tmp/$n.pem" -noout -text >"$tmp/$n.txt" 2>>"$tmp/openssl.log" ||
		die "$n.pem: openssl cannot read the certificate it made"
	grep -q "Public-Key: (256 bit)" "$tmp/$n.txt" || die "$n.pem: not a 256-bit key"
	grep -q "TLS Web Server Authentication, TLS Web Client Authentication" "$tmp/$n.txt" ||
		die "$n.pem: no serverAuth and clientAuth"
	if [ $expired = no ]; then
		run "verifying $n's certificate" openssl verify -CAfile "$tmp/ca.pem" "$tmp/$n.pem"
	fi
	chmod 644 "$tmp/$n.pem"
	chmod 600 "$tmp/$n.key"
	mv -f "$tmp/$n.key" "$dir/$n.key"
	mv -f "$tmp/$n.pem" "$dir/$n.pem"
	if [ $expired = yes ]; then
		when="EXPIRED: valid only 2020-01-01 to 2020-01-02"
	else
		when=$(openssl x509 -in "$dir/$n.pem" -noout -enddate | sed 's/notAfter=/until /')
	fi
	echo "$me: made $dir/$n.pem and $dir/$n.key ($when; $(echo "$san" | sed 's/,/, /g'))"
done
