/* Concurrency of index/hnsw: reader threads search without pause while one
 * writer upserts, deletes and compacts, then a parallel build.  Checks the
 * contract (a point deleted before a search starts is never returned; every
 * result is a point that exists; a bulk build is published whole; a build
 * told to stop ends early with a prefix of its points in) here, and the absence of data
 * races when built with --enable-tsan (contrib/test.sh --tsan runs it under ThreadSanitizer, which
 * fails the test on any report). */
#include "build.h"

#include "index/hnsw.h"
#include "tap.h"
#include "util/alloc.h"
#include "util/rand.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#define DIM     16
#define BASE    3000
#define EXTRA   1500
#define READERS 3

static float *data;
static struct hnsw *h;
static _Atomic uint64_t writes;                   /* deletes completed so far */
static _Atomic uint64_t deleted_at[BASE + EXTRA]; /* writes when id was deleted, 0 = live */
static _Atomic int stop;
static _Atomic long violations, searches, results;

static void *reader(void *arg)
{
	struct sh_rand r;
	struct hnsw_result res[10];

	sh_rand_seed(&r, (uint64_t)(uintptr_t)arg);
	while (!atomic_load(&stop)) {
		uint64_t start = atomic_load(&writes);
		size_t n = 0, q = sh_rand_below(&r, BASE + EXTRA);

		if (hnsw_search(h, data + q * DIM, 10, 32, NULL, NULL, res, &n, NULL) != 0)
			atomic_fetch_add(&violations, 1);
		for (size_t i = 0; i < n; i++) {
			uint64_t at;

			if (res[i].id >= BASE + EXTRA) {
				atomic_fetch_add(&violations, 1);
				continue;
			}
			at = atomic_load(&deleted_at[res[i].id]);
			if (at != 0 && at <= start)
				atomic_fetch_add(&violations, 1);
		}
		atomic_fetch_add(&searches, 1);
		atomic_fetch_add(&results, (long)n);
	}
	return NULL;
}

static void writer(void)
{
	struct sh_rand r;

	sh_rand_seed(&r, 5);
	for (uint64_t id = BASE; id < BASE + EXTRA; id++) {
		uint64_t victim = sh_rand_below(&r, BASE);

		hnsw_upsert(h, id, data + id * DIM, NULL);
		if (atomic_load(&deleted_at[victim]) == 0 && hnsw_delete(h, victim) == 0)
			atomic_store(&deleted_at[victim], atomic_fetch_add(&writes, 1) + 1);
		if (id % 500 == 0)
			hnsw_compact(h);
		if (id % 7 == 0) /* replace a vector in place */
			hnsw_upsert(h, id - 1, data + (id - 2) * DIM, NULL);
	}
}

/* hnsw_build_prepared told to stop (a snapshot waits for the graph):
 * already stopped, it inserts nothing; stopped midway from another thread,
 * it ends early with exactly the first *built points in. */
static _Atomic bool build_stop;
static struct hnsw *g;

static void *stopper(void *arg)
{
	(void)arg;
	for (int i = 0; i < 20000 && hnsw_count(g) < 200; i++) {
		struct timespec ts = {0, 1000000};

		nanosleep(&ts, NULL);
	}
	atomic_store(&build_stop, true);
	return NULL;
}

static void test_build_stops(const float *vecs, uint64_t *ids, size_t n)
{
	struct hnsw_params p = {DIM, SH_METRIC_L2, 16, 200, 7, HNSW_QUANT_NONE};
	struct sh_err err;
	size_t built = 1, in = 0, out = 0;
	pthread_t t;

	if (hnsw_new(&p, &g, &err) != 0)
		bail_out("%s", err.msg);
	hnsw_upsert(g, 1u << 30, vecs, &err); /* not empty: built in place */
	atomic_store(&build_stop, true);
	is_int(hnsw_build_prepared(g, ids, vecs, n, 2, &build_stop, NULL, &built, &err), 0,
	       "a build told to stop before it starts");
	ok(built == 0 && hnsw_count(g) == 1, "inserts nothing");
	is_int(hnsw_build_prepared(g, ids, vecs, n, 2, NULL, &build_stop, &built, &err), 0,
	       "a build told to yield (its second flag) before it starts");
	ok(built == 0 && hnsw_count(g) == 1, "inserts nothing either");
	atomic_store(&build_stop, false);
	pthread_create(&t, NULL, stopper, NULL);
	is_int(hnsw_build_prepared(g, ids, vecs, n, 2, &build_stop, NULL, &built, &err), 0,
	       "a build stopped midway");
	pthread_join(t, NULL);
	ok(built >= 200 && built < n, "ends early: %zu of %zu points", built, n);
	for (size_t i = 0; i < built; i++)
		in += hnsw_contains(g, ids[i]);
	for (size_t i = built; i < n; i++)
		out += hnsw_contains(g, ids[i]);
	ok(in == built && out == 0 && hnsw_count(g) == built + 1,
	   "with exactly the first %zu in (%zu), none after (%zu)", built, in, out);
	hnsw_free(g);
}

int main(void)
{
	struct hnsw_params p = {DIM, SH_METRIC_L2, 8, 64, 1, HNSW_QUANT_INT8};
	pthread_t t[READERS];
	uint64_t *ids = sh_malloc(BASE * sizeof *ids);
	struct sh_rand r;
	struct sh_err err;

	data = sh_malloc((BASE + EXTRA) * DIM * sizeof *data);
	sh_rand_seed(&r, 9);
	for (size_t i = 0; i < (BASE + EXTRA) * DIM; i++)
		data[i] = (float)sh_rand_normal(&r);
	for (uint64_t i = 0; i < BASE; i++)
		ids[i] = i;
	if (hnsw_new(&p, &h, &err) != 0)
		bail_out("%s", err.msg);
	/* the readers start first: they search the empty index while the bulk
	 * build runs aside, and see it all at once when it is published */
	for (long i = 0; i < READERS; i++)
		pthread_create(&t[i], NULL, reader, (void *)(i + 1));
	is_int(hnsw_build(h, ids, data, BASE, 2, &err), 0, "parallel build of %d points", BASE);
	writer();
	atomic_store(&stop, 1);
	for (int i = 0; i < READERS; i++)
		pthread_join(t[i], NULL);
	ok(atomic_load(&searches) > 0, "%ld searches ran alongside %llu deletions and %d inserts",
	   atomic_load(&searches), (unsigned long long)atomic_load(&writes), EXTRA);
	ok(atomic_load(&results) > 0, "and returned %ld results", atomic_load(&results));
	is_int(atomic_load(&violations), 0, "no search returned a point deleted before it began");
	is_int(hnsw_count(h), BASE + EXTRA - atomic_load(&writes), "the count adds up");
	hnsw_free(h);
	test_build_stops(data, ids, BASE);
	sh_free(ids);
	sh_free(data);
	return done_testing();
}
