#!/usr/bin/env python3
"""The Python client's throughput and latency (issue 15's goals,
doc/benchmarks.md "Python client"): batched upserts of N random vectors of
DIM dimensions (batches of 1,000, ack leader), then Q single searches
(k = 10) one at a time, their latency percentiles.  Compare the search
latency with `shoalctl bench --mode search --concurrency 1` on the same
collection.

    PYTHONPATH=build/gen/python contrib/bench/python_client.py ADDR [N] [DIM] [Q]
"""

import sys
import time

import numpy as np

import shoal


def main():
    addr = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:7472"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
    dim = int(sys.argv[3]) if len(sys.argv) > 3 else 128
    nq = int(sys.argv[4]) if len(sys.argv) > 4 else 2000
    c = shoal.Client(addr, timeout=120)
    try:
        c.drop_collection("pybench")
    except shoal.NotFound:
        pass
    c.create_collection("pybench", dim=dim)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((n, dim)).astype(np.float32)
    t0 = time.perf_counter()
    c.upsert("pybench", np.arange(n), X, batch=1000, ack="leader")
    dt = time.perf_counter() - t0
    print("upsert: %d points of %d dims in %.2f s: %.0f points/s" % (n, dim, dt, n / dt))
    Q = rng.standard_normal((nq, dim)).astype(np.float32)
    for q in Q[:100]:  # warm-up
        c.search("pybench", q, k=10, with_payload=False)
    lat = []
    for q in Q:
        t = time.perf_counter()
        c.search("pybench", q, k=10, with_payload=False)
        lat.append(time.perf_counter() - t)
    lat = np.array(lat) * 1e6
    print("search: %d queries, k 10, concurrency 1: p50 %.0f us, p99 %.0f us, mean %.0f us, "
          "%.0f QPS" % (nq, np.percentile(lat, 50), np.percentile(lat, 99), lat.mean(),
                        1e6 / lat.mean()))


if __name__ == "__main__":
    main()
