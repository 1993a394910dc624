/* Model-based test of index/hnsw (issue 11): long seeded random sequences
 * of upserts of new and existing ids (new vectors, the same vector, a
 * vector close by), deletes (of present and absent ids), re-inserts of
 * deleted ids, compactions and snapshot round trips (hnsw_save, then
 * hnsw_load and carry on with the copy), checked after every step against
 * an exact model of what the index holds:
 *
 *  - hnsw_verify: counts, id map and states agree, no self-links, links
 *    only to points of a high enough level, the entry point a live point of
 *    the top level, every live point reachable from it at level 0;
 *  - every id's vector (hnsw_get) is the model's; no other id is present;
 *  - on collections of up to SMALL_MAX points, a search with k > n returns
 *    exactly the n live ids, by the graph alone (no fallback to a scan);
 *  - on larger ones, no search returns an id that is not live, and recall@10
 *    against brute force stays above RECALL_FLOOR over the sequence;
 *  - exact search returns the brute-force top k (up to distance ties).
 *
 * Each sequence draws its parameters (metric, dim, m, ef_construction,
 * size) from its seed; small ones, where the entry point changes often,
 * make up most of the run.  Usage:
 *
 *   t/hnsw_model.t                    the seeds 1..1000, and 20 fresh ones
 *   t/hnsw_model.t --seed S [-v]      one sequence (replays a failure; -v
 *                                     prints every step)
 *   HNSW_MODEL_SEQUENCES=N            N seeds from 1 instead of 1000
 *                                     (make check-index-long: 100,000)
 *   HNSW_MODEL_READERS=1              a thread searches each index all
 *                                     along (checking only that results are
 *                                     ids of the sequence); the default
 *                                     under ThreadSanitizer (TSAN_TESTS),
 *                                     with 200 seeds
 *
 * A failure prints its seed, step and a one-line replay command. */
#include "build.h"

#include "index/hnsw.h"
#include "tap.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/rand.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DIM      16
#define SMALL_MAX    50
#define LARGE_MAX    600
#define K            10
#define RECALL_FLOOR 0.90
#define FRESH_SEEDS  20

#if defined(__SANITIZE_THREAD__)
#define DEFAULT_SEQUENCES 200
#define DEFAULT_READERS   true
#else
#define DEFAULT_SEQUENCES 1000
#define DEFAULT_READERS   false
#endif

/* The searching thread's view: the index of the running sequence (NULL
 * between sequences), replaced under the write lock. */
static struct {
	pthread_rwlock_t lock;
	struct hnsw *h;
	uint64_t cap; /* ids of the sequence are below */
	bool on;
	_Atomic int stop;
	_Atomic long searches, bad;
} rd = {.lock = PTHREAD_RWLOCK_INITIALIZER};

static void rd_set(struct hnsw *h, uint64_t cap)
{
	pthread_rwlock_wrlock(&rd.lock);
	rd.h = h;
	rd.cap = cap;
	pthread_rwlock_unlock(&rd.lock);
}

static void *reader(void *arg)
{
	struct sh_rand r;
	struct hnsw_result res[10];
	float v[16];

	(void)arg;
	sh_rand_seed(&r, 99);
	while (!atomic_load(&rd.stop)) {
		size_t n = 0;

		pthread_rwlock_rdlock(&rd.lock);
		if (rd.h != NULL) {
			for (uint32_t d = 0; d < hnsw_params(rd.h)->dim; d++)
				v[d] = (float)sh_rand_normal(&r);
			if (sh_rand_below(&r, 4) == 0)
				hnsw_search_exact(rd.h, v, 10, NULL, NULL, res, &n, NULL);
			else
				hnsw_search(rd.h, v, 10, 0, NULL, NULL, res, &n, NULL);
			for (size_t i = 0; i < n; i++)
				atomic_fetch_add(&rd.bad, res[i].id >= rd.cap);
			atomic_fetch_add(&rd.searches, 1);
		}
		pthread_rwlock_unlock(&rd.lock);
	}
	return NULL;
}

struct model {
	size_t cap;    /* ids are 0..cap-1 */
	bool *live;    /* per id */
	float *vec;    /* per id: the vector as given */
	uint64_t *ids; /* live ids, in no order */
	size_t n;
};

struct seq {
	uint64_t seed;
	bool verbose;
	struct sh_rand r;
	struct hnsw_params p;
	struct hnsw *h;
	struct model m;
	size_t max_points, steps, step;
	const char *op;
	double hits, wanted; /* recall@10 over the sequence (large ones) */
	char why[512];       /* the first failure */
};

static bool failf(struct seq *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool failf(struct seq *q, const char *fmt, ...)
{
	va_list ap;

	if (q->why[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(q->why, sizeof q->why, fmt, ap);
		va_end(ap);
	}
	return false;
}

/* ------------------------------------------------------------ the model */

static double ref_dist(enum sh_metric metric, const float *a, const float *b, uint32_t dim)
{
	double s = 0, na = 0, nb = 0;

	for (uint32_t d = 0; d < dim; d++) {
		double x = a[d], y = b[d];

		s += metric == SH_METRIC_L2 ? (x - y) * (x - y) : x * y;
		na += x * x;
		nb += y * y;
	}
	if (metric == SH_METRIC_L2)
		return s;
	if (metric == SH_METRIC_DOT)
		return -s;
	return 1.0 - s / sqrt(na * nb);
}

static float *mvec(struct seq *q, uint64_t id)
{
	return q->m.vec + id * q->p.dim;
}

static void model_put(struct seq *q, uint64_t id, const float *v)
{
	if (!q->m.live[id]) {
		q->m.live[id] = true;
		q->m.ids[q->m.n++] = id;
	}
	memcpy(mvec(q, id), v, q->p.dim * sizeof *v);
}

static void model_del(struct seq *q, uint64_t id)
{
	for (size_t i = 0; i < q->m.n; i++)
		if (q->m.ids[i] == id) {
			q->m.ids[i] = q->m.ids[--q->m.n];
			break;
		}
	q->m.live[id] = false;
}

/* Brute-force distances of every live point to v, sorted. */
static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The k-th smallest model distance to v (k >= 1), or +inf. */
static double kth_dist(struct seq *q, const float *v, size_t k, double *all)
{
	for (size_t i = 0; i < q->m.n; i++)
		all[i] = ref_dist(q->p.metric, v, mvec(q, q->m.ids[i]), q->p.dim);
	qsort(all, q->m.n, sizeof *all, cmp_double);
	return k <= q->m.n ? all[k - 1] : HUGE_VAL;
}

/* ------------------------------------------------------------ vectors */

static void random_vec(struct seq *q, float *v)
{
	/* now and then a vector already held, to make ties */
	if (q->m.n > 0 && sh_rand_below(&q->r, 20) == 0) {
		memcpy(v, mvec(q, q->m.ids[sh_rand_below(&q->r, q->m.n)]), q->p.dim * sizeof *v);
		return;
	}
	for (uint32_t d = 0; d < q->p.dim; d++)
		v[d] = (float)sh_rand_normal(&q->r);
}

static void near_vec(struct seq *q, uint64_t id, float *v)
{
	memcpy(v, mvec(q, id), q->p.dim * sizeof *v);
	v[sh_rand_below(&q->r, q->p.dim)] += (float)(sh_rand_normal(&q->r) * 1e-3);
}

/* ------------------------------------------------------------ checks */

static bool check_points(struct seq *q)
{
	float got[MAX_DIM], want[MAX_DIM];
	struct sh_err err;

	if (hnsw_count(q->h) != q->m.n)
		return failf(q, "count %zu, the model holds %zu", hnsw_count(q->h), q->m.n);
	for (uint64_t id = 0; id < q->m.cap; id++) {
		if (hnsw_contains(q->h, id) != q->m.live[id])
			return failf(q, "id %llu is %s, the model says %s", (unsigned long long)id,
				     q->m.live[id] ? "absent" : "present",
				     q->m.live[id] ? "live" : "deleted");
		if (!q->m.live[id])
			continue;
		hnsw_get(q->h, id, got);
		memcpy(want, mvec(q, id), q->p.dim * sizeof *want);
		if (q->p.metric == SH_METRIC_COSINE)
			dist_normalize(want, q->p.dim);
		if (memcmp(got, want, q->p.dim * sizeof *got) != 0)
			return failf(q, "id %llu holds another vector", (unsigned long long)id);
	}
	sh_err_clear(&err);
	if (hnsw_verify(q->h, &err) != 0)
		return failf(q, "hnsw_verify: %s", err.msg);
	return true;
}

/* Small: a graph search with k > n finds exactly the n live ids. */
static bool check_all_found(struct seq *q, const float *v)
{
	struct hnsw_result res[SMALL_MAX + 1];
	struct hnsw_stats before, after;
	size_t n = 0, k = q->m.n + 1;

	hnsw_stats(q->h, &before);
	if (hnsw_search(q->h, v, k, 0, NULL, NULL, res, &n, NULL) != 0)
		return failf(q, "search failed");
	hnsw_stats(q->h, &after);
	if (!rd.on && after.fallbacks != before.fallbacks) /* a reader's may fall back */
		return failf(q, "the graph search found %s of %zu points: it fell back to a scan",
			     "fewer", q->m.n);
	if (n != q->m.n)
		return failf(q, "a search with k = %zu returned %zu of %zu points", k, n, q->m.n);
	for (size_t i = 0; i < n; i++) {
		if (res[i].id >= q->m.cap || !q->m.live[res[i].id])
			return failf(q, "a search returned id %llu, which is not live",
				     (unsigned long long)res[i].id);
		for (size_t j = 0; j < i; j++)
			if (res[j].id == res[i].id)
				return failf(q, "a search returned id %llu twice",
					     (unsigned long long)res[i].id);
	}
	return true;
}

/* Large: results are live, distinct; recall@10 counted (ties count as hits:
 * a result within the k-th true distance). */
static bool check_recall(struct seq *q, const float *v, double *all)
{
	struct hnsw_result res[K];
	size_t n = 0, k = q->m.n < K ? q->m.n : K;
	double kth;

	if (k == 0)
		return true;
	if (hnsw_search(q->h, v, K, 64, NULL, NULL, res, &n, NULL) != 0)
		return failf(q, "search failed");
	kth = kth_dist(q, v, k, all);
	if (n != k)
		return failf(q, "a search with k = %d returned %zu of %zu points", K, n, q->m.n);
	for (size_t i = 0; i < n; i++) {
		if (res[i].id >= q->m.cap || !q->m.live[res[i].id])
			return failf(q, "a search returned id %llu, which is not live",
				     (unsigned long long)res[i].id);
		for (size_t j = 0; j < i; j++)
			if (res[j].id == res[i].id)
				return failf(q, "a search returned id %llu twice",
					     (unsigned long long)res[i].id);
		q->hits += ref_dist(q->p.metric, v, mvec(q, res[i].id), q->p.dim) <=
			   kth + 1e-5 * (1 + fabs(kth));
	}
	q->wanted += (double)k;
	return true;
}

/* Exact search: its k-th distance is the brute force's (ties aside). */
static bool check_exact(struct seq *q, const float *v, double *all)
{
	struct hnsw_result res[K];
	size_t n = 0, k = q->m.n < K ? q->m.n : K;
	double kth, worst = -HUGE_VAL;

	if (hnsw_search_exact(q->h, v, K, NULL, NULL, res, &n, NULL) != 0)
		return failf(q, "exact search failed");
	if (n != k) {
		if (q->verbose)
			for (size_t i = 0; i < n; i++)
				diag("  exact result %zu: id %llu at %g", i,
				     (unsigned long long)res[i].id, (double)res[i].distance);
		if (q->verbose)
			for (size_t i = 0; i < q->m.n; i++)
				diag("  model id %llu at %g", (unsigned long long)q->m.ids[i],
				     ref_dist(q->p.metric, v, mvec(q, q->m.ids[i]), q->p.dim));
		return failf(q, "exact search returned %zu of %zu points", n, k);
	}
	if (k == 0)
		return true;
	kth = kth_dist(q, v, k, all);
	for (size_t i = 0; i < n; i++) {
		double d;

		if (res[i].id >= q->m.cap || !q->m.live[res[i].id])
			return failf(q, "exact search returned id %llu, which is not live",
				     (unsigned long long)res[i].id);
		d = ref_dist(q->p.metric, v, mvec(q, res[i].id), q->p.dim);
		worst = d > worst ? d : worst;
	}
	if (worst > kth + 1e-4 * (1 + fabs(kth)))
		return failf(q, "exact search's farthest of %zu is at %g, brute force's at %g", k,
			     worst, kth);
	return true;
}

static bool check(struct seq *q)
{
	float v[MAX_DIM];
	double *all = sh_malloc((q->m.n + 1) * sizeof *all);
	bool good = check_points(q);

	for (int i = 0; good && i < 2; i++) {
		if (i == 0 && q->m.n > 0) /* a stored point, then anywhere */
			memcpy(v, mvec(q, q->m.ids[sh_rand_below(&q->r, q->m.n)]),
			       q->p.dim * sizeof *v);
		else
			random_vec(q, v);
		if (q->max_points <= SMALL_MAX)
			good = check_all_found(q, v);
		else
			good = check_recall(q, v, all);
		good = good && check_exact(q, v, all);
	}
	sh_free(all);
	return good;
}

/* ------------------------------------------------------------ steps */

struct buf {
	unsigned char *p;
	size_t n, cap, pos;
};

static int buf_write(void *ctx, const void *p, size_t len)
{
	struct buf *b = ctx;

	if (b->n + len > b->cap) {
		b->cap = (b->n + len) * 2;
		b->p = sh_realloc(b->p, b->cap);
	}
	memcpy(b->p + b->n, p, len);
	b->n += len;
	return 0;
}

static int buf_read(void *ctx, void *p, size_t len)
{
	struct buf *b = ctx;

	if (b->pos + len > b->n)
		return SH_EIO;
	memcpy(p, b->p + b->pos, len);
	b->pos += len;
	return 0;
}

static bool round_trip(struct seq *q)
{
	struct buf b = {0};
	struct hnsw *copy = NULL;
	struct sh_err err;
	int rv = hnsw_save(q->h, buf_write, &b, &err);

	if (rv == 0)
		rv = hnsw_load(buf_read, &b, &copy, &err);
	sh_free(b.p);
	if (rv != 0)
		return failf(q, "save/load: %s", err.msg);
	rd_set(NULL, 0);
	hnsw_free(q->h);
	q->h = copy;
	rd_set(q->h, q->m.cap);
	return true;
}

static uint64_t pick(struct seq *q, bool live)
{
	for (;;) {
		uint64_t id = sh_rand_below(&q->r, q->m.cap);

		if (q->m.live[id] == live)
			return id;
	}
}

static bool upsert(struct seq *q, uint64_t id, const float *v)
{
	struct sh_err err;

	if (hnsw_upsert(q->h, id, v, &err) != 0)
		return failf(q, "upsert of id %llu: %s", (unsigned long long)id, err.msg);
	model_put(q, id, v);
	return true;
}

static bool step(struct seq *q)
{
	unsigned r = (unsigned)sh_rand_below(&q->r, 100);
	bool full = q->m.n >= q->max_points, empty = q->m.n == 0;
	bool none_deleted = q->m.n == q->m.cap;
	float v[MAX_DIM];
	uint64_t id;

	if (r < 30 && !full && !none_deleted) {
		q->op = "upsert a new id";
		random_vec(q, v);
		return upsert(q, pick(q, false), v);
	}
	if (empty)
		return true;
	if (r < 60) {
		q->op = "upsert an id again with a new vector";
		random_vec(q, v);
		return upsert(q, pick(q, true), v);
	}
	if (r < 66) {
		q->op = "upsert an id again with the same vector";
		id = pick(q, true);
		memcpy(v, mvec(q, id), q->p.dim * sizeof *v);
		return upsert(q, id, v);
	}
	if (r < 72) {
		q->op = "upsert an id again with a vector close by";
		id = pick(q, true);
		near_vec(q, id, v);
		return upsert(q, id, v);
	}
	if (r < 90) {
		q->op = "delete";
		id = pick(q, true);
		if (hnsw_delete(q->h, id) != 0)
			return failf(q, "delete of id %llu failed", (unsigned long long)id);
		model_del(q, id);
		return true;
	}
	if (r < 93 && !none_deleted) {
		q->op = "delete an absent id";
		id = pick(q, false);
		return hnsw_delete(q->h, id) == SH_ENOTFOUND ||
		       failf(q, "deleting absent id %llu did not say not found",
			     (unsigned long long)id);
	}
	if (r < 97) {
		q->op = "compact";
		hnsw_compact(q->h);
		return true;
	}
	q->op = "save and load";
	return round_trip(q);
}

/* ------------------------------------------------------------ sequences */

static void setup(struct seq *q, uint64_t seed, bool verbose)
{
	static const enum sh_metric metrics[3] = {SH_METRIC_L2, SH_METRIC_COSINE, SH_METRIC_DOT};
	struct sh_err err;
	bool large;

	memset(q, 0, sizeof *q);
	q->seed = seed;
	q->verbose = verbose;
	sh_rand_seed(&q->r, seed);
	large = sh_rand_below(&q->r, 10) == 0;
	q->max_points = large ? 100 + sh_rand_below(&q->r, LARGE_MAX - 99)
			      : 1 + sh_rand_below(&q->r, SMALL_MAX);
	q->steps = large ? 2 * q->max_points : 100 + sh_rand_below(&q->r, 200);
	q->p = (struct hnsw_params){
		.dim = 1 + (uint32_t)sh_rand_below(&q->r, MAX_DIM),
		.metric = metrics[sh_rand_below(&q->r, 3)],
		.m = 2 + (uint32_t)sh_rand_below(&q->r, 15),
		.ef_construction = 4 + (uint32_t)sh_rand_below(&q->r, 100),
		.seed = sh_rand_u64(&q->r),
		.quant = HNSW_QUANT_NONE,
	};
	q->m.cap = q->max_points + q->max_points / 2 + 1;
	q->m.live = sh_calloc(q->m.cap, sizeof *q->m.live);
	q->m.vec = sh_calloc(q->m.cap * q->p.dim, sizeof *q->m.vec);
	q->m.ids = sh_calloc(q->m.cap, sizeof *q->m.ids);
	if (hnsw_new(&q->p, &q->h, &err) != 0)
		bail_out("hnsw_new: %s", err.msg);
	rd_set(q->h, q->m.cap);
}

static void teardown(struct seq *q)
{
	rd_set(NULL, 0);
	hnsw_free(q->h);
	sh_free(q->m.live);
	sh_free(q->m.vec);
	sh_free(q->m.ids);
}

/* Run one sequence; false (and q->why) on the first failure. */
static bool run(struct seq *q)
{
	for (q->step = 1; q->step <= q->steps; q->step++) {
		q->op = "none";
		if (!step(q) || !check(q))
			return false;
		if (q->verbose)
			diag("step %zu: %s; %zu points", q->step, q->op, q->m.n);
	}
	if (q->wanted > 0 && q->hits / q->wanted < RECALL_FLOOR)
		return failf(q, "recall@10 over the sequence %.3f is under %.2f",
			     q->hits / q->wanted, RECALL_FLOOR);
	return true;
}

static bool run_seed(uint64_t seed, bool verbose, long *steps)
{
	struct seq q;
	bool good;

	setup(&q, seed, verbose);
	good = run(&q);
	*steps += (long)(good ? q.steps : q.step);
	if (!good) {
		diag("seed %llu: %s, %u dims, m %u, ef_construction %u, up to %zu points",
		     (unsigned long long)seed, sh_metric_name(q.p.metric), q.p.dim, q.p.m,
		     q.p.ef_construction, q.max_points);
		diag("  step %zu (%s), %zu points: %s", q.step, q.op, q.m.n, q.why);
		diag("  replay: t/hnsw_model.t --seed %llu -v", (unsigned long long)seed);
	}
	teardown(&q);
	return good;
}

int main(int argc, char **argv)
{
	const char *env = getenv("HNSW_MODEL_SEQUENCES"), *renv = getenv("HNSW_MODEL_READERS");
	long n = env != NULL ? atol(env) : DEFAULT_SEQUENCES, failed = 0, steps = 0;
	uint64_t t0 = sh_clock_mono_ms(), fresh;
	bool verbose = argc > 3 && strcmp(argv[3], "-v") == 0;
	pthread_t t;

	rd.on = renv != NULL ? atoi(renv) != 0 : DEFAULT_READERS;
	if (rd.on && pthread_create(&t, NULL, reader, NULL) != 0)
		bail_out("cannot start the reader");
	if (argc >= 3 && strcmp(argv[1], "--seed") == 0) {
		uint64_t seed = strtoull(argv[2], NULL, 10);

		ok(run_seed(seed, verbose, &steps), "seed %llu: %ld steps",
		   (unsigned long long)seed, steps);
	} else {
		for (long s = 1; s <= n; s++)
			failed += !run_seed((uint64_t)s, false, &steps);
		ok(failed == 0, "%ld seeded sequences (seeds 1..%ld, %ld steps): %ld failed", n, n,
		   steps, failed);
		fresh = 1000000 + sh_clock_wall_ns() % 1000000000000ull; /* printed, to replay */
		diag("fresh seeds from %llu", (unsigned long long)fresh);
		failed = 0;
		for (long s = 0; s < FRESH_SEEDS; s++)
			failed += !run_seed(fresh + (uint64_t)s, false, &steps);
		ok(failed == 0, "%d fresh sequences from seed %llu: %ld failed", FRESH_SEEDS,
		   (unsigned long long)fresh, failed);
	}
	if (rd.on) {
		atomic_store(&rd.stop, 1);
		pthread_join(t, NULL);
		ok(atomic_load(&rd.searches) > 0 && atomic_load(&rd.bad) == 0,
		   "%ld concurrent searches, %ld returned an id the sequence never had",
		   atomic_load(&rd.searches), atomic_load(&rd.bad));
	}
	diag("%ld steps in %.1f s", steps, (double)(sh_clock_mono_ms() - t0) / 1000.0);
	return done_testing();
}
