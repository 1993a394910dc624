#!/bin/sh
# Build and run the memberlist reference (main.go) with Debian's Go and
# memberlist packages, offline (GOPATH mode over /usr/share/gocode).
#   contrib/bench/memberlist/run.sh -n 8 [-loss 0.1] [-local] [-steady 30s]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
for p in golang-go golang-github-hashicorp-memberlist-dev; do
	dpkg -s "$p" >/dev/null 2>&1 || { echo "run.sh: install $p (apt-get install $p)" >&2; exit 2; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src/memberlist-bench"
cp "$here/main.go" "$work/src/memberlist-bench/"
cd "$work/src/memberlist-bench"
GO111MODULE=off GOPATH="$work:/usr/share/gocode" GOCACHE="$work/cache" GOFLAGS=-mod=mod \
	go build -o "$work/memberlist-bench" . 2>&1 | grep -v '^go: ' >&2 || true
[ -x "$work/memberlist-bench" ] || { echo "run.sh: build failed" >&2; exit 1; }
"$work/memberlist-bench" "$@"
