# lib.sh: the build step that contrib/demo.sh and contrib/test.sh share.
# Source it with $src set to the source tree, under set -e.
#
# shoal_build FLAVOR [CONFIGURE-ARG...]
#   Builds in build/FLAVOR/, out of tree: runs ./autogen.sh when configure is
#   missing or older than configure.ac or Makefile.am, configures with the
#   arguments when build/FLAVOR/ has no Makefile yet or configure changed,
#   runs make, and leaves $build set to build/FLAVOR/ (the current directory).
#
# A source tree configured in place (the README's "Building by hand": a
# ./configure at the top) cannot also be built out of tree: automake's
# configure refuses ("source directory already configured"), because make
# would take the tree's objects for the build's own.  The build is then made
# from a clean copy of the sources, build/source/, which the tree's own
# `make distdir` writes before every build (the release tarball's files, with
# their timestamps, so that make rebuilds only what changed); the in-tree
# build is left as it is.  A build directory configured from the other
# source directory is removed and configured again.
# shellcheck shell=sh disable=SC2154,SC3013
shoal_build() {
	flavor=$1
	shift
	if [ ! -x "$src/configure" ] || [ "$src/configure.ac" -nt "$src/configure" ] ||
		[ "$src/Makefile.am" -nt "$src/configure" ]; then
		(cd "$src" && ./autogen.sh >/dev/null)
	fi
	srcdir=$src
	if [ -f "$src/config.status" ]; then
		srcdir=$src/build/source
		echo "${0##*/}: the source tree is configured in place: building" \
			"build/$flavor/ from a copy of it, build/source/" >&2
		mkdir -p "$src/build"
		make -s -C "$src" distdir distdir="$srcdir" >/dev/null
	fi
	build=$src/build/$flavor
	was=$(sed -n 's/^abs_top_srcdir = //p' "$build/Makefile" 2>/dev/null || true)
	if [ -n "$was" ] && [ "$(cd "$was" 2>/dev/null && pwd)" != "$srcdir" ]; then
		rm -rf "$build"
	fi
	mkdir -p "$build"
	cd "$build" || return
	if [ ! -f Makefile ] || [ "$srcdir/configure" -nt Makefile ]; then
		"$srcdir/configure" -q "$@"
	fi
	make -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
}
