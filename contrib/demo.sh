#!/bin/sh
# demo.sh: build shoal and run it.
#
# For now this starts one shoald in the foreground with its data in
# build/demo/ (stop it with Ctrl-C).  The local cluster with a demo workload
# arrives with the server and replication releases.
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
"$src/contrib/deps.sh"
cd "$src"
if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt configure ]; then
	./autogen.sh >/dev/null
fi
mkdir -p build/release build/demo
cd build/release
[ -f Makefile ] && [ Makefile -nt "$src/configure" ] || "$src/configure" -q
make -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
echo "demo.sh: starting shoald (data in build/demo/n1); Ctrl-C stops it"
exec ./src/server/shoald --config "$src/etc/shoald.toml" --node-name n1 \
	--node-data-dir "$src/build/demo/n1" "$@"
