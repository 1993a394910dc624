#!/bin/sh
# readme_paths.sh: every file and directory of the source tree that README.md
# names is there, in a checkout and (under make distcheck) in the release
# tarball.  README.md once sent readers to DESIGN.md and STYLE.md, which
# were not in the repository, and to doc/consistency.md, which the tarball
# lacked.
#
# Names are the README's words that start with a top-level source directory
# (doc/, contrib/, etc/, include/, proto/, src/, t/) or are a top-level
# NAME.md; paths inside other paths (build/release/src/...) and absolute ones
# (/usr/local/etc/...) are not the source tree's.  A test program t/NAME.t
# is built from t/NAME.c.
. "$top_srcdir/t/tap.sh"

names=$(grep -oE '(^|[^A-Za-z0-9_./$-])((doc|contrib|etc|include|proto|src|t)/[A-Za-z0-9_./-]*|[A-Z]+\.md)' \
	"$top_srcdir/README.md" | sed -E 's/^[^A-Za-z]//; s/\.$//' | sort -u)
n=0
for name in $names; do
	case "$name" in
	t/*.t) path=${name%.t}.c ;;
	*) path=$name ;;
	esac
	[ -e "$top_srcdir/$path" ]
	ok $? "README.md names $name, which is in the source tree"
	n=$((n + 1))
done
for doc in DESIGN.md STYLE.md; do
	printf '%s\n' "$names" | grep -qx "$doc"
	ok $? "README.md points at $doc"
done
[ "$n" -ge 10 ]
ok $? "README.md names source paths ($n found; is the pattern still right?)"

done_testing
