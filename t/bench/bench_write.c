/*
 * bench_write: the write path on one node, in process (doc/write-path.md;
 * figures in doc/benchmarks.md, "Write path").  On the gauss set (128
 * dimensions, N points, default 100,000):
 *
 *   apply     coll_upsert of all N points in batches of 1,000: points/s
 *             (a copy each: the apply rate of a follower);
 *   fresh     searches (k = 10, one thread) with all N points fresh:
 *             latency p50/p99 and recall@10 (the int8 prefilter with a
 *             float rerank, fresh.c);
 *   index     the indexer's steps until the graph holds them all, on
 *             THREADS threads: points/s;
 *   rest      the same searches at ef 64 at rest: latency and recall;
 *   backlog   a collection half indexed, half fresh (the second half
 *             applied after the first was indexed): recall at ef 16, 32
 *             and 64 (below 1.0 at the lower ones) and latency, against
 *             the same at rest once it is all indexed.
 *
 *   bench_write [--n N] [--nq Q] [--threads T] [--cache DIR]
 */
#include "build.h"

#include "bench_data.h"
#include "storage/collection.h"
#include "util/alloc.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t n = 100000, nq = 1000;
static unsigned threads = 2;
static const char *cache = "bench-cache";

static struct coll *make(void)
{
	struct coll_params p = {"bench", 128, SH_METRIC_L2, 16, 200, 1};
	struct coll *c;
	struct sh_err err;

	if (coll_new(&p, &c, &err) != 0) {
		fprintf(stderr, "bench_write: %s\n", err.msg);
		exit(1);
	}
	return c;
}

static double apply(struct coll *c, const struct dataset *d, size_t from, size_t to)
{
	struct coll_point *pts = sh_calloc(1000, sizeof *pts);
	struct sh_err err;
	double t0 = now_sec();

	for (size_t i = from; i < to; i += 1000) {
		size_t m = to - i < 1000 ? to - i : 1000;

		for (size_t j = 0; j < m; j++)
			pts[j] = (struct coll_point){i + j, d->base + (i + j) * d->dim,
						     (uint32_t)d->dim, NULL, 0};
		if (coll_upsert(c, pts, m, &err) != 0) {
			fprintf(stderr, "bench_write: %s\n", err.msg);
			exit(1);
		}
	}
	sh_free(pts);
	return (double)(to - from) / (now_sec() - t0);
}

static double index_all(struct coll *c)
{
	struct sh_err err;
	size_t done, total = coll_fresh(c);
	double t0 = now_sec();

	while (coll_fresh(c) > 0)
		if (coll_index(c, 4096, threads, NULL, &done, &err) != 0) {
			fprintf(stderr, "bench_write: %s\n", err.msg);
			exit(1);
		}
	return (double)total / (now_sec() - t0);
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Searches of every query; prints latency p50/p99 (ms) and recall@10
 * against the ground truth over the first `upto` points. */
static void searches(const char *what, struct coll *c, const struct dataset *d, size_t ef)
{
	double *ms = sh_malloc(d->nq * sizeof *ms);
	struct hnsw_result res[10];
	struct sh_err err;
	size_t hits = 0;

	for (size_t q = 0; q < d->nq; q++) {
		double t0 = now_sec();
		size_t m;

		coll_search(c, d->queries + q * d->dim, 10, ef, false, res, &m, &err);
		ms[q] = (now_sec() - t0) * 1000;
		for (size_t i = 0; i < m; i++)
			for (size_t j = 0; j < 10; j++)
				hits += res[i].id == d->truth[q * d->k + j];
	}
	qsort(ms, d->nq, sizeof *ms, by_value);
	printf("%-44s p50 %6.3f ms  p99 %6.3f ms  recall@10 %.4f\n", what, ms[d->nq / 2],
	       ms[d->nq * 99 / 100], (double)hits / (double)(d->nq * 10));
	sh_free(ms);
}

static void options(int argc, char **argv)
{
	static const struct option opts[] = {{"n", 1, NULL, 'n'},
					     {"nq", 1, NULL, 'q'},
					     {"threads", 1, NULL, 't'},
					     {"cache", 1, NULL, 'c'},
					     {NULL, 0, NULL, 0}};
	int ch;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'n': n = strtoull(optarg, NULL, 10); break;
		case 'q': nq = strtoull(optarg, NULL, 10); break;
		case 't': threads = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'c': cache = optarg; break;
		default:
			fprintf(stderr, "usage: bench_write [--n N] [--nq Q] [--threads T] "
					"[--cache DIR]\n");
			exit(2);
		}
	}
}

int main(int argc, char **argv)
{
	struct dataset d;
	struct coll *c;
	char what[64];

	options(argc, argv);
	if (data_gauss(&d, n, nq) != 0 || data_truth(&d, 10, cache, threads) != 0)
		return 1;
	printf("# bench_write: %s, %zu dims, %zu queries, k 10, m 16, ef_construction 200, "
	       "%u indexing threads\n",
	       d.name, d.dim, d.nq, threads);
	c = make();
	printf("apply (a copy per point)                     %.0f points/s\n", apply(c, &d, 0, n));
	snprintf(what, sizeof what, "search, all %zu fresh (int8 + rerank)", n);
	searches(what, c, &d, 64);
	printf("indexing (%u threads)                         %.0f points/s\n", threads,
	       index_all(c));
	searches("search at rest, ef 64", c, &d, 64);
	coll_unref(c);

	c = make();
	apply(c, &d, 0, n / 2);
	index_all(c);
	apply(c, &d, n / 2, n);
	for (size_t ef = 16; ef <= 64; ef *= 2) {
		snprintf(what, sizeof what, "search, %zu indexed + %zu fresh, ef %zu", n / 2,
			 n - n / 2, ef);
		searches(what, c, &d, ef);
	}
	index_all(c);
	for (size_t ef = 16; ef <= 64; ef *= 2) {
		snprintf(what, sizeof what, "the same collection at rest, ef %zu", ef);
		searches(what, c, &d, ef);
	}
	coll_unref(c);
	data_free(&d);
	return 0;
}
