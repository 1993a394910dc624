#!/bin/sh
# deps.sh: install the Debian packages shoal needs to build and test, when
# any is missing (doc/dependencies.md says why each is needed).  Uses sudo
# when not run as root.  Prints nothing when everything is there.
#
#   deps.sh            build and test
#   deps.sh --fuzzing  also clang and its libFuzzer runtime
#   deps.sh --bench    also what the benchmarks compare with (redis)
#   deps.sh --ui       also Debian's chromium, for t/ui.sh (the status page
#                      in a headless browser; the test skips without it)
set -eu

PKGS="build-essential autoconf automake libtool pkg-config xz-utils curl
libevent-dev libprotobuf-c-dev protobuf-c-compiler libjansson-dev libjemalloc-dev
libsystemd-dev libssl-dev openssl clang-format
python3 python3-protobuf python3-numpy python3-pytest protobuf-compiler"
# node and npm (for t/qdrant_js.sh) may come from elsewhere than Debian (the
# NodeSource package bundles npm and conflicts with Debian's npm package):
# install Debian's only when the commands are missing.
command -v node >/dev/null || PKGS="$PKGS nodejs"
command -v npm >/dev/null || PKGS="$PKGS npm"
for arg in "$@"; do
	case "$arg" in
	--fuzzing) PKGS="$PKGS clang libclang-rt-14-dev" ;;
	--bench) PKGS="$PKGS redis-server redis-tools dataset-fashion-mnist" ;;
	--ui) PKGS="$PKGS chromium" ;;
	*) echo "deps.sh: unknown option $arg" >&2; exit 2 ;;
	esac
done

missing=
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

echo "deps.sh: installing missing packages:$missing"
sudo=
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || { echo "deps.sh: not root and no sudo: install$missing" >&2; exit 1; }
	sudo=sudo
fi
$sudo apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
