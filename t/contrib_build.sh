#!/bin/sh
# contrib_build.sh: contrib/test.sh and contrib/demo.sh build out of tree in
# build/FLAVOR/ from a fresh checkout, and also after the README's "Building
# by hand" (./configure && make in the source tree), where automake refuses
# a second, VPATH build ("source directory already configured").
#
# Runs the real contrib/test.sh and contrib/lib.sh (demo.sh's build step) on
# stub source trees in a temporary directory: their configure refuses as
# automake's does and writes a Makefile whose all, check and distdir targets
# stand in for the real ones, so nothing is compiled and it takes a second.
. "$top_srcdir/t/tap.sh"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/shoal-t-XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
log=$tmp/configure.log
# The outer make's flags (jobserver, TESTS=...) are not for the stub's make.
unset MAKEFLAGS MFLAGS MAKELEVEL

# make_tree DIR: a stub source tree with the real contrib/test.sh and lib.sh.
make_tree() {
	mkdir -p "$1/contrib"
	for f in test.sh lib.sh; do
		[ -f "$top_srcdir/contrib/$f" ] && cp "$top_srcdir/contrib/$f" "$1/contrib/$f"
	done
	printf '#!/bin/sh\n' >"$1/contrib/deps.sh"
	printf '#!/bin/sh\n' >"$1/autogen.sh"
	echo 'int x = 1;' >"$1/source.c"
	touch "$1/configure.ac" "$1/Makefile.am"
	# configure: automake's check (AM_INIT_AUTOMAKE), a line in the log per
	# run, and a Makefile.
	cat >"$1/configure" <<EOF
#!/bin/sh
srcdir=\$(cd "\$(dirname "\$0")" && pwd)
if [ "\$srcdir" != "\$(pwd)" ] && [ -f "\$srcdir/config.status" ]; then
	echo 'configure: error: source directory already configured; run "make distclean" there first' >&2
	exit 1
fi
echo "\$(pwd) from \$srcdir" >>"$log"
{
	echo "abs_top_srcdir = \$srcdir"
	echo 'all:'
	printf '\\t@echo "\$(abs_top_srcdir)" >built-from\\n'
	echo 'check:'
	printf '\\t@mkdir -p t && echo ":test-result: PASS" >t/stub.trs\\n'
	echo 'distdir:'
	printf '\\t@rm -rf "\$(distdir)" && mkdir "\$(distdir)" && cd "\$(abs_top_srcdir)" && cp -pR configure configure.ac Makefile.am autogen.sh source.c contrib "\$(distdir)"\\n'
} >Makefile
touch config.status
EOF
	chmod +x "$1/configure" "$1/autogen.sh" "$1/contrib/deps.sh"
}

# test_sh TREE WHAT: runs contrib/test.sh, which must end "1 passed, 0 failed".
test_sh() {
	out=$(sh "$1/contrib/test.sh" 2>&1)
	ok $? "contrib/test.sh $2"
	is "$(printf '%s\n' "$out" | tail -1)" "1 passed, 0 failed" "contrib/test.sh $2: its summary" ||
		diag "$out"
}

# built_from TREE FLAVOR: the source directory build/FLAVOR was built from.
built_from() {
	cat "$1/build/$2/built-from" 2>/dev/null
}

# 1. The README's "Building by hand", then the scripts (issue 12).
tree=$tmp/by-hand
make_tree "$tree"
(cd "$tree" && ./configure && make) >/dev/null 2>&1
ok $? "a tree configured and built in place (./configure && make)"
test_sh "$tree" "after ./configure && make in the tree"
is "$(built_from "$tree" werror)" "$tree/build/source" \
	"build/werror/ is built from a copy of the tree, build/source/"
cmp -s "$tree/source.c" "$tree/build/source/source.c"
ok $? "the copy holds the tree's sources"
[ -f "$tree/config.status" ] && [ "$(cat "$tree/built-from")" = "$tree" ]
ok $? "the in-tree build is left as it was"
echo 'int x = 2;' >"$tree/source.c"
test_sh "$tree" "again, after a change in the tree"
cmp -s "$tree/source.c" "$tree/build/source/source.c"
ok $? "the copy follows the tree"
is "$(grep -c "^$tree/build/werror from" "$log")" 1 "build/werror/ was not configured again" ||
	diag "$(cat "$log")"
# demo.sh builds by the same function, in build/release/.
(
	set -eu
	src=$tree
	. "$tree/contrib/lib.sh"
	shoal_build release
) >/dev/null 2>&1
ok $? "lib.sh's shoal_build release (contrib/demo.sh's build step)"
is "$(built_from "$tree" release)" "$tree/build/source" "build/release/ is built from the copy too"

# 2. A fresh tree; then configured in place after the scripts built it.
tree=$tmp/fresh
make_tree "$tree"
test_sh "$tree" "in a fresh tree"
is "$(built_from "$tree" werror)" "$tree" "a fresh tree: build/werror/ is built from the tree itself"
(cd "$tree" && ./configure && make) >/dev/null 2>&1
test_sh "$tree" "in a tree configured in place since"
is "$(built_from "$tree" werror)" "$tree/build/source" \
	"build/werror/ is started over from the copy (no VPATH build beside in-tree objects)"
(cd "$tree" && rm config.status Makefile built-from)
test_sh "$tree" "once the in-tree configuration is gone again (make distclean)"
is "$(built_from "$tree" werror)" "$tree" "build/werror/ is built from the tree again"
is "$(grep -c "^$tree/build/werror from" "$log")" 3 \
	"build/werror/ was configured three times: from the tree, the copy, the tree" ||
	diag "$(cat "$log")"

done_testing
