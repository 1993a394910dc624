#!/bin/sh
# demo.sh: build shoal, start one shoald, load a sample dataset with
# shoalctl and search it.
#
#   contrib/demo.sh            the demo; shoald keeps running (Ctrl-C stops it)
#   contrib/demo.sh --no-wait  stop shoald after the searches (for scripts)
#
# Data in build/demo/n1; client API on 127.0.0.1:7472, REST on 7473 (base
# port 747; SHOAL_DEMO_BASE=748 moves them).  The sample: 5,000 points of 16
# dimensions in 10 clusters, with payloads, made here from a fixed seed.
# With Debian's dataset-fashion-mnist installed it also loads
# Fashion-MNIST (10,000 images) through `shoalctl bench` and reports QPS
# and recall.
set -eu

wait_at_end=yes
[ "${1:-}" = "--no-wait" ] && wait_at_end=no
src=$(cd "$(dirname "$0")/.." && pwd)
base=${SHOAL_DEMO_BASE:-747}
"$src/contrib/deps.sh"
cd "$src"
if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt configure ]; then
	./autogen.sh >/dev/null
fi
mkdir -p build/release build/demo
cd build/release
[ -f Makefile ] && [ Makefile -nt "$src/configure" ] || "$src/configure" -q
make -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
bin=$PWD/src
demo=$src/build/demo
ctl() { "$bin/client/shoalctl" --addr "127.0.0.1:${base}2" "$@"; }

echo "demo.sh: starting shoald (data in $demo/n1, log in $demo/n1.log)"
"$bin/server/shoald" --config "$src/etc/shoald.toml" --node-name n1 \
	--node-data-dir "$demo/n1" --listen-base-port "$base" 2>"$demo/n1.log" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT INT TERM
i=0
until ctl status >/dev/null 2>&1; do
	i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 $pid 2>/dev/null; then
		echo "demo.sh: shoald did not start:" >&2; tail -5 "$demo/n1.log" >&2; exit 1
	fi
	sleep 0.1
done

echo "demo.sh: making a sample dataset ($demo/sample.jsonl)"
awk 'BEGIN {
	srand(7); split("red green blue", colors, " ")
	for (c = 0; c < 10; c++) for (d = 0; d < 16; d++) centre[c, d] = rand() * 10
	for (i = 0; i < 5000; i++) {
		c = i % 10; v = ""
		for (d = 0; d < 16; d++) v = v (d ? "," : "") sprintf("%.3f", centre[c, d] + rand() - 0.5)
		printf "{\"id\": %d, \"vector\": [%s], \"payload\": {\"cluster\": %d, \"color\": \"%s\", \"price\": %d}}\n",
			i, v, c, colors[i % 3 + 1], i % 100
	}
}' >"$demo/sample.jsonl"

ctl collection drop sample >/dev/null 2>&1 || true
echo "\$ shoalctl collection create sample --dim 16"
ctl collection create sample --dim 16
echo "\$ shoalctl upsert sample --jsonl $demo/sample.jsonl"
ctl upsert sample --jsonl "$demo/sample.jsonl"
q=$(sed -n 1p "$demo/sample.jsonl" | sed 's/.*"vector": \[\([^]]*\)\].*/\1/')
# strong: see every write acknowledged before (an acknowledged write is
# searchable once applied, which may come a moment later)
echo "\$ shoalctl --consistency strong search sample --vector <point 0> -k 5"
ctl --consistency strong search sample --vector "$q" -k 5
echo "\$ shoalctl --consistency strong search sample --vector <point 0> -k 5 --filter '{\"must\": [{\"key\": \"color\", \"match\": {\"value\": \"blue\"}}, {\"key\": \"price\", \"range\": {\"lt\": 50}}]}'"
ctl --consistency strong search sample --vector "$q" -k 5 \
	--filter '{"must": [{"key": "color", "match": {"value": "blue"}}, {"key": "price", "range": {"lt": 50}}]}'
echo "\$ curl -s -X POST 127.0.0.1:${base}3/collections/sample/points/count -d '{\"filter\": ...}'"
if command -v curl >/dev/null; then
	curl -s -X POST "127.0.0.1:${base}3/collections/sample/points/count?consistency=strong" \
		-d '{"filter": {"must": [{"key": "cluster", "match": {"any": [1, 2]}}]}}'
fi
if [ -r /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
	echo "\$ shoalctl bench --dataset fashion --n 10000 --nq 200 --concurrency 2 --depth 4"
	ctl bench --dataset fashion --n 10000 --nq 200 --concurrency 2 --depth 4
fi
echo "\$ shoalctl status"
ctl status
if [ $wait_at_end = yes ]; then
	echo "demo.sh: shoald is running (client 127.0.0.1:${base}2, REST 127.0.0.1:${base}3); Ctrl-C stops it"
	wait $pid
fi
