/* Tests of index/hnsw: parameters and input validation; recall against an
 * independent brute force for each metric (5,000 x 32, seeded); exact search;
 * the same seed builds the same graph; upsert, delete and slot reuse; recall
 * after deleting 20% and inserting as many; filters; the parallel build;
 * int8 quantization; save/load round trip; malformed streams. */
#include "build.h"

#include "index/hnsw.h"
#include "tap.h"
#include "util/alloc.h"
#include "util/rand.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define N   5000
#define DIM 32
#define NQ  200
#define K   10

static float *data, *queries;

/* A Gaussian mixture: 20 centres, unit noise. */
static void gen(float *out, size_t n, uint64_t seed)
{
	struct sh_rand r, rc;
	float centres[20][DIM];

	sh_rand_seed(&rc, 777);
	for (int c = 0; c < 20; c++)
		for (int d = 0; d < DIM; d++)
			centres[c][d] = (float)(sh_rand_normal(&rc) * 4.0);
	sh_rand_seed(&r, seed);
	for (size_t i = 0; i < n; i++) {
		int c = (int)sh_rand_below(&r, 20);

		for (int d = 0; d < DIM; d++)
			out[i * DIM + d] = centres[c][d] + (float)sh_rand_normal(&r);
	}
}

static double ref_dist(enum sh_metric m, const float *a, const float *b)
{
	double s = 0, na = 0, nb = 0;

	for (int d = 0; d < DIM; d++) {
		double x = a[d], y = b[d];

		s += m == SH_METRIC_L2 ? (x - y) * (x - y) : x * y;
		na += x * x;
		nb += y * y;
	}
	if (m == SH_METRIC_L2)
		return s;
	if (m == SH_METRIC_DOT)
		return -s;
	return 1.0 - s / sqrt(na * nb);
}

/* Brute-force top K ids over points [0, n) with ids = index + base; skip
 * ids for which skip(id) is true. */
static void truth(enum sh_metric m, const float *q, size_t n, uint64_t *ids,
		  bool (*excluded)(uint64_t), uint64_t *out)
{
	double best[K];
	int nb = 0;

	for (size_t i = 0; i < n; i++) {
		double d = ref_dist(m, q, data + i * DIM);
		int j;

		if (excluded != NULL && excluded(ids[i]))
			continue;
		if (nb == K && d >= best[K - 1])
			continue;
		j = nb < K ? nb++ : K - 1;
		while (j > 0 && best[j - 1] > d) {
			best[j] = best[j - 1];
			out[j] = out[j - 1];
			j--;
		}
		best[j] = d;
		out[j] = ids[i];
	}
}

static double recall(struct hnsw *h, enum sh_metric m, size_t n, uint64_t *ids, size_t ef,
		     bool (*excluded)(uint64_t))
{
	size_t hits = 0;

	for (int qi = 0; qi < NQ; qi++) {
		uint64_t want[K];
		struct hnsw_result res[K];
		size_t got = 0;

		truth(m, queries + qi * DIM, n, ids, excluded, want);
		hnsw_search(h, queries + qi * DIM, K, ef, NULL, NULL, res, &got, NULL);
		for (size_t i = 0; i < got; i++)
			for (int j = 0; j < K; j++)
				hits += res[i].id == want[j];
	}
	return (double)hits / (NQ * K);
}

static struct hnsw *make(enum sh_metric m, enum hnsw_quant quant, uint64_t seed)
{
	struct hnsw_params p = {DIM, m, 16, 100, seed, quant};
	struct hnsw *h = NULL;
	struct sh_err err;

	if (hnsw_new(&p, &h, &err) != 0)
		bail_out("hnsw_new: %s", err.msg);
	return h;
}

static uint64_t *seq_ids(size_t n, uint64_t base)
{
	uint64_t *ids = sh_malloc(n * sizeof *ids);

	for (size_t i = 0; i < n; i++)
		ids[i] = base + i;
	return ids;
}

static void insert_all(struct hnsw *h, size_t n, const uint64_t *ids)
{
	struct sh_err err;
	int bad = 0;

	for (size_t i = 0; i < n; i++)
		bad += hnsw_upsert(h, ids[i], data + i * DIM, &err) != 0;
	is_int(bad, 0, "%zu upserts succeed", n);
}

static void test_params(void)
{
	struct hnsw_params p = {DIM, SH_METRIC_L2, 16, 100, 1, HNSW_QUANT_NONE};
	struct hnsw *h = NULL;
	struct sh_err err;
	float v[DIM] = {0};
	struct hnsw_result res[1];
	size_t n;

	p.dim = 0;
	is_int(hnsw_new(&p, &h, &err), SH_EINVAL, "dim 0 refused");
	like(err.msg, "dim 0 is outside 1..65536", "with the range");
	p.dim = DIM;
	p.m = 1;
	is_int(hnsw_new(&p, &h, &err), SH_EINVAL, "m 1 refused");
	p.m = 16;
	p.metric = (enum sh_metric)9;
	is_int(hnsw_new(&p, &h, &err), SH_EINVAL, "unknown metric refused");
	p.metric = SH_METRIC_COSINE;
	is_int(hnsw_new(&p, &h, &err), 0, "valid parameters accepted");
	is_int(hnsw_upsert(h, 1, v, &err), SH_EINVAL, "cosine: zero vector refused");
	like(err.msg, "zero vector", "and says why");
	v[3] = NAN;
	is_int(hnsw_upsert(h, 1, v, &err), SH_EINVAL, "NaN refused");
	like(err.msg, "vector value 3 is NaN", "with the value");
	v[3] = INFINITY;
	is_int(hnsw_upsert(h, 1, v, &err), SH_EINVAL, "infinity refused");
	is_int(hnsw_count(h), 0, "nothing was inserted");
	/* issue 11, item 6: a subnormal direction used to normalize to Inf */
	v[3] = 0;
	v[0] = v[1] = 1e-40f;
	is_int(hnsw_upsert(h, 1, v, &err), SH_EINVAL, "cosine: a subnormal vector refused");
	like(err.msg, "vector norm 1.41e-40 is under the limit of 1e-18 for metric cosine",
	     "and says why");
	v[0] = v[1] = 0;
	v[3] = 1;
	is_int(hnsw_search(h, v, 1, 0, NULL, NULL, res, &n, &err), 0, "search of an empty index");
	is_int(n, 0, "finds nothing");
	is_int(hnsw_search(h, v, 0, 0, NULL, NULL, res, &n, &err), SH_EINVAL, "k = 0 refused");
	is_int(hnsw_search(h, v, 5, 3, NULL, NULL, res, &n, &err), SH_EINVAL, "ef < k refused");
	is_int(hnsw_delete(h, 42), SH_ENOTFOUND, "deleting a missing id");
	hnsw_free(h);
}

/* Issue 11, item 6: finite values whose distances overflow float (to
 * infinity, and NaN once subtracted) are refused, points and queries; at
 * the limit, every distance stays finite. */
static void test_huge_vectors(void)
{
	struct hnsw_params p = {2, SH_METRIC_L2, 4, 16, 1, HNSW_QUANT_NONE};
	struct hnsw *l2 = NULL, *dot = NULL;
	float huge[2] = {3e38f, 3e38f}, a[2] = {6e17f, 8e17f}, b[2] = {-6e17f, -8e17f};
	struct hnsw_result res[2];
	struct sh_err err;
	size_t n = 0;
	bool finite = true;

	hnsw_new(&p, &l2, NULL);
	p.metric = SH_METRIC_DOT;
	hnsw_new(&p, &dot, NULL);
	is_int(hnsw_upsert(l2, 1, huge, &err), SH_EINVAL, "l2: a vector of norm 4e38 refused");
	like(err.msg, "vector norm 4.24e+38 is over the limit of 1e+18", "and says why");
	is_int(hnsw_upsert(dot, 1, huge, &err), SH_EINVAL, "dot: refused too");
	is_int(hnsw_upsert(l2, 1, a, &err) | hnsw_upsert(l2, 2, b, &err) |
		       hnsw_upsert(dot, 1, a, &err) | hnsw_upsert(dot, 2, b, &err),
	       0, "vectors of norm 1e18 accepted");
	is_int(hnsw_search(l2, huge, 2, 0, NULL, NULL, res, &n, &err), SH_EINVAL,
	       "a query of norm 4e38 refused");
	like(err.msg, "query: vector norm 4.24e+38 is over the limit", "and named a query");
	for (int i = 0; i < 2; i++) {
		struct hnsw *h = i ? dot : l2;

		hnsw_search(h, a, 2, 0, NULL, NULL, res, &n, NULL);
		for (size_t j = 0; j < n; j++)
			finite = finite && isfinite(res[j].distance);
		hnsw_search_exact(h, b, 2, NULL, NULL, res, &n, NULL);
		for (size_t j = 0; j < n; j++)
			finite = finite && isfinite(res[j].distance);
	}
	ok(finite, "distances between vectors at the limit are finite (l2 %g)",
	   (double)res[0].distance);
	hnsw_free(l2);
	hnsw_free(dot);
}

static void test_recall(enum sh_metric m)
{
	struct hnsw *h = make(m, HNSW_QUANT_NONE, 1);
	uint64_t *ids = seq_ids(N, 1000);
	double r;
	int exact_ok = 0;

	insert_all(h, N, ids);
	is_int(hnsw_count(h), N, "%s: count", sh_metric_name(m));
	r = recall(h, m, N, ids, 64, NULL);
	ok(r >= 0.95, "%s: recall@10 at ef=64 is %.4f (>= 0.95)", sh_metric_name(m), r);
	for (int qi = 0; qi < 50; qi++) {
		uint64_t want[K];
		struct hnsw_result res[K];
		size_t got = 0, same = 0;

		truth(m, queries + qi * DIM, N, ids, NULL, want);
		hnsw_search_exact(h, queries + qi * DIM, K, NULL, NULL, res, &got, NULL);
		for (size_t i = 0; i < got; i++)
			same += res[i].id == want[i];
		exact_ok += same == K;
	}
	is_int(exact_ok, 50, "%s: exact search equals brute force on 50 queries",
	       sh_metric_name(m));
	sh_free(ids);
	hnsw_free(h);
}

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

static struct buf save(struct hnsw *h)
{
	struct buf b = {0};
	struct sh_err err;

	if (hnsw_save(h, buf_write, &b, &err) != 0)
		bail_out("save: %s", err.msg);
	return b;
}

static bool same_results(struct hnsw *a, struct hnsw *b, size_t ef)
{
	for (int qi = 0; qi < NQ; qi++) {
		struct hnsw_result ra[K], rb[K];
		size_t na = 0, nb = 0;

		hnsw_search(a, queries + qi * DIM, K, ef, NULL, NULL, ra, &na, NULL);
		hnsw_search(b, queries + qi * DIM, K, ef, NULL, NULL, rb, &nb, NULL);
		if (na != nb)
			return false;
		for (size_t i = 0; i < na; i++)
			if (ra[i].id != rb[i].id || ra[i].distance != rb[i].distance)
				return false;
	}
	return true;
}

static void test_determinism(void)
{
	struct hnsw *a = make(SH_METRIC_L2, HNSW_QUANT_NONE, 99);
	struct hnsw *b = make(SH_METRIC_L2, HNSW_QUANT_NONE, 99);
	uint64_t *ids = seq_ids(N, 0);
	struct buf sa, sb;

	insert_all(a, N, ids);
	insert_all(b, N, ids);
	sa = save(a);
	sb = save(b);
	ok(sa.n == sb.n && memcmp(sa.p, sb.p, sa.n) == 0,
	   "the same seed and inserts give a byte-identical graph (%zu bytes)", sa.n);
	ok(same_results(a, b, 40), "and identical search results");
	sh_free(sa.p);
	sh_free(sb.p);
	sh_free(ids);
	hnsw_free(a);
	hnsw_free(b);
}

static bool odd(uint64_t id)
{
	return id % 2 == 1;
}

static bool even_only(uint64_t id, void *arg)
{
	(void)arg;
	return id % 2 == 0;
}

static void test_filter(void)
{
	struct hnsw *h = make(SH_METRIC_L2, HNSW_QUANT_NONE, 3);
	uint64_t *ids = seq_ids(N, 0);
	int wrong = 0, exact_ok = 0;
	size_t hits = 0;

	insert_all(h, N, ids);
	for (int qi = 0; qi < NQ; qi++) {
		struct hnsw_result res[K], ex[K];
		uint64_t want[K];
		size_t got = 0, nex = 0;

		hnsw_search(h, queries + qi * DIM, K, 64, even_only, NULL, res, &got, NULL);
		hnsw_search_exact(h, queries + qi * DIM, K, even_only, NULL, ex, &nex, NULL);
		truth(SH_METRIC_L2, queries + qi * DIM, N, ids, odd, want);
		for (size_t i = 0; i < got; i++) {
			wrong += res[i].id % 2 != 0;
			for (int j = 0; j < K; j++)
				hits += res[i].id == want[j];
		}
		for (size_t i = 0; i < nex; i++)
			exact_ok += ex[i].id == want[i];
	}
	is_int(wrong, 0, "a filter excludes every rejected id");
	ok((double)hits / (NQ * K) >= 0.95, "filtered recall@10 %.4f (>= 0.95)",
	   (double)hits / (NQ * K));
	is_int(exact_ok, NQ * K, "filtered exact search equals brute force");
	sh_free(ids);
	hnsw_free(h);
}

static void test_upsert_delete(void)
{
	struct hnsw *h = make(SH_METRIC_L2, HNSW_QUANT_NONE, 5);
	uint64_t *ids = seq_ids(N, 0);
	float got[DIM];
	struct hnsw_result res[K];
	size_t n, returned_deleted = 0;
	struct hnsw_stats st;

	insert_all(h, N, ids);
	is_int(hnsw_upsert(h, 7, data + 100 * DIM, NULL), 0, "upsert an existing id");
	is_int(hnsw_count(h), N, "count unchanged");
	is_int(hnsw_get(h, 7, got), 0, "get it");
	ok(memcmp(got, data + 100 * DIM, sizeof got) == 0, "get returns the new vector");
	hnsw_search(h, data + 7 * DIM, 1, 64, NULL, NULL, res, &n, NULL);
	ok(n == 1 && res[0].id != 7, "the old vector no longer finds id 7");
	hnsw_search(h, data + 100 * DIM, 2, 64, NULL, NULL, res, &n, NULL);
	ok(n == 2 && (res[0].id == 7 || res[1].id == 7) && res[0].distance == 0.0f,
	   "the new vector finds id 7 at distance 0");
	{
		int torn = 0, failed = 0;

		/* an upsert that runs out of memory leaves the old point as it was */
		for (long fail = 0; fail < 400; fail++) {
			const float *want;
			int rv;

			hnsw_get(h, 9, got);
			want = memcmp(got, data + 9 * DIM, sizeof got) == 0 ? data + 300 * DIM
									    : data + 9 * DIM;
			sh_alloc_fail_after(fail % 4);
			rv = hnsw_upsert(h, 9, want, NULL);
			sh_alloc_fail_after(-1);
			failed += rv != 0;
			if (hnsw_get(h, 9, got) != 0 ||
			    (rv == 0) != (memcmp(got, want, sizeof got) == 0))
				torn++;
		}
		ok(failed > 0, "allocation failures were injected into upserts (%d of 400)",
		   failed);
		is_int(torn, 0, "an upsert failing for memory keeps the old point");
		is_int(hnsw_count(h), N, "and the count");
	}
	for (uint64_t id = 0; id < N; id += 5)
		hnsw_delete(h, id);
	is_int(hnsw_count(h), N - N / 5, "deleting 20%% lowers the count");
	is_int(hnsw_get(h, 10, got), SH_ENOTFOUND, "a deleted id is not found");
	ok(!hnsw_contains(h, 10) && hnsw_contains(h, 11), "contains() agrees");
	is_int(hnsw_delete(h, 10), SH_ENOTFOUND, "deleting it again: not found");
	for (int qi = 0; qi < NQ; qi++) {
		hnsw_search(h, queries + qi * DIM, K, 64, NULL, NULL, res, &n, NULL);
		for (size_t i = 0; i < n; i++)
			returned_deleted += res[i].id % 5 == 0;
	}
	is_int(returned_deleted, 0, "no deleted id is ever returned");
	hnsw_compact(h);
	hnsw_stats(h, &st);
	is_int(st.deleted, 0, "compact repairs every pending deletion");
	/* the upserts of ids 7 and 9 above freed slots and took new ones */
	ok(st.free >= N / 5 + 1, "and reclaims their slots (%zu free)", st.free);
	{
		size_t before = st.slots;

		for (uint64_t id = 0; id < N; id += 5)
			hnsw_upsert(h, N + id, data + id * DIM, NULL);
		hnsw_stats(h, &st);
		is_int(st.slots, before, "%d new points reuse reclaimed slots (no new slots)",
		       N / 5);
	}
	sh_free(ids);
	hnsw_free(h);
}

/* Issue 11, item 1: 10 points of 4 dimensions, each upserted again with a
 * new vector, round after round.  Upserting the entry point's id used to
 * make the new, still unlinked slot the entry point, cutting every older
 * point off: a search with k = 10 then found 1 of the 10. */
static void test_upsert_rounds(void)
{
	struct hnsw_params p = {4, SH_METRIC_L2, 16, 200, 7, HNSW_QUANT_NONE};
	struct hnsw *h = NULL;
	struct sh_rand r;
	float v[10][4];
	int short_rounds = 0, first_bad = -1;
	size_t worst = 10;
	struct hnsw_stats st;
	struct sh_err err;

	hnsw_new(&p, &h, NULL);
	sh_rand_seed(&r, 11);
	for (int round = 0; round < 200; round++) {
		for (uint64_t id = 0; id < 10; id++) {
			for (int d = 0; d < 4; d++)
				v[id][d] = (float)sh_rand_normal(&r);
			hnsw_upsert(h, id, v[id], NULL);
		}
		for (int id = 0; id < 10; id++) {
			struct hnsw_result res[10];
			size_t n = 0;

			hnsw_search(h, v[id], 10, 0, NULL, NULL, res, &n, NULL);
			if (n < 10) {
				short_rounds++;
				worst = n < worst ? n : worst;
				if (first_bad < 0)
					first_bad = round;
				break;
			}
		}
	}
	is_int(short_rounds, 0,
	       "10 points upserted again 200 rounds: every k = 10 search finds all 10 "
	       "(first short round %d, worst %zu of 10)",
	       first_bad, worst);
	hnsw_stats(h, &st);
	is_int(st.fallbacks, 0, "the graph found them itself (no fallback to a scan)");
	sh_err_clear(&err);
	is_int(hnsw_verify(h, &err), 0, "the graph's invariants hold %s", err.msg);
	hnsw_free(h);
}

/* Recall@10 at ef of h against truth (RW_Q queries, ids = rows). */
#define RW_N   3000
#define RW_DIM 32
#define RW_Q   300

static double rw_recall(struct hnsw *h, const float *q, const uint64_t *truth, size_t ef)
{
	size_t hits = 0;

	for (int i = 0; i < RW_Q; i++) {
		struct hnsw_result res[K];
		size_t n = 0;

		hnsw_search(h, q + i * RW_DIM, K, ef, NULL, NULL, res, &n, NULL);
		for (size_t j = 0; j < n; j++)
			for (int t = 0; t < K; t++)
				hits += res[j].id == truth[i * K + t];
	}
	return (double)hits / (RW_Q * K);
}

/* Brute-force top K rows of set for each query. */
static void rw_truth(const float *set, const float *q, uint64_t *truth)
{
	for (int i = 0; i < RW_Q; i++) {
		double best[K];
		int nb = 0;

		for (size_t r = 0; r < RW_N; r++) {
			double d = 0;
			int j;

			for (int k = 0; k < RW_DIM; k++) {
				double x = (double)set[r * RW_DIM + k] - (double)q[i * RW_DIM + k];

				d += x * x;
			}
			if (nb == K && d >= best[K - 1])
				continue;
			j = nb < K ? nb++ : K - 1;
			while (j > 0 && best[j - 1] > d) {
				best[j] = best[j - 1];
				truth[i * K + j] = truth[i * K + j - 1];
				j--;
			}
			best[j] = d;
			truth[i * K + j] = r;
		}
	}
}

/* Issue 11: updating every point again and again never lowers recall.  Two
 * sets A and B of 3,000 Gaussian points in 32 dimensions (hard data, so
 * that recall at a small ef is sensitive); an index built on A one upsert
 * at a time is rewritten 4 times, every point moving to B and back; after
 * each pass its recall@10 at ef 16 is compared with an index built fresh
 * on the same set.  Before: re-linking around deleted points thinned the
 * lists, and recall fell by ~0.06. */
static void test_rewrite_recall(void)
{
	struct hnsw_params p = {RW_DIM, SH_METRIC_L2, 16, 100, 5, HNSW_QUANT_NONE};
	float *set[2], *q = sh_malloc(RW_Q * RW_DIM * sizeof *q);
	uint64_t *truth[2];
	struct hnsw *fresh[2], *h;
	double base[2], worst = 1, deg[2], thin = 1e9;
	struct sh_rand r;

	sh_rand_seed(&r, 404);
	for (int s = 0; s < 2; s++) {
		set[s] = sh_malloc(RW_N * RW_DIM * sizeof *set[s]);
		for (size_t i = 0; i < RW_N * RW_DIM; i++)
			set[s][i] = (float)sh_rand_normal(&r);
	}
	for (size_t i = 0; i < RW_Q * RW_DIM; i++)
		q[i] = (float)sh_rand_normal(&r);
	for (int s = 0; s < 2; s++) {
		truth[s] = sh_malloc(RW_Q * K * sizeof *truth[s]);
		rw_truth(set[s], q, truth[s]);
		hnsw_new(&p, &fresh[s], NULL);
		for (uint64_t i = 0; i < RW_N; i++)
			hnsw_upsert(fresh[s], i, set[s] + i * RW_DIM, NULL);
		base[s] = rw_recall(fresh[s], q, truth[s], 16);
		deg[s] = hnsw_mean_degree0(fresh[s]);
	}
	hnsw_new(&p, &h, NULL);
	for (uint64_t i = 0; i < RW_N; i++)
		hnsw_upsert(h, i, set[0] + i * RW_DIM, NULL);
	for (int pass = 1; pass <= 4; pass++) {
		int s = pass % 2;
		double got;

		for (uint64_t i = 0; i < RW_N; i++)
			hnsw_upsert(h, i, set[s] + i * RW_DIM, NULL);
		hnsw_compact(h); /* the batch repair, as a quiet moment would run it */
		got = rw_recall(h, q, truth[s], 16);
		diag("rewrite %d: recall@10 at ef 16 %.4f, built fresh %.4f; level-0 degree %.1f, "
		     "fresh %.1f",
		     pass, got, base[s], hnsw_mean_degree0(h), deg[s]);
		worst = got - base[s] < worst ? got - base[s] : worst;
		if (hnsw_mean_degree0(h) - deg[s] < thin)
			thin = hnsw_mean_degree0(h) - deg[s];
	}
	ok(worst >= 0, "4 full rewrites never lower recall@10 below a fresh build's (worst %+.4f)",
	   worst);
	/* repairs that added no back-links thinned the lists pass after pass
	 * (level-0 degree 14.3 -> 12.1 on 200,000 x 128 after one rewrite) */
	ok(thin >= 0, "nor the level-0 degree (worst %+.2f)", thin);
	for (int s = 0; s < 2; s++) {
		hnsw_free(fresh[s]);
		sh_free(set[s]);
		sh_free(truth[s]);
	}
	sh_free(q);
	hnsw_free(h);
}

/* Delete 20% and insert as many new points: recall at a fixed ef may drop
 * by at most 0.01 against an index built on the final set directly. */
static void test_delete_recall(void)
{
	struct hnsw *h = make(SH_METRIC_L2, HNSW_QUANT_NONE, 11);
	struct hnsw *fresh = make(SH_METRIC_L2, HNSW_QUANT_NONE, 11);
	uint64_t *ids = seq_ids(N, 0), *final = sh_malloc(N * sizeof *final);
	float *save_data = data;
	double r_churn, r_fresh;
	size_t m = N - N / 5;

	/* points [0, m) stay, [m, N) are deleted, then [N, N + N/5) arrive;
	 * data for the arrivals comes from a second generator */
	float *all = sh_malloc((N + N / 5) * DIM * sizeof *all);

	memcpy(all, data, N * DIM * sizeof *all);
	gen(all + N * DIM, N / 5, 4242);
	data = all;
	insert_all(h, N, ids);
	for (size_t i = m; i < N; i++)
		hnsw_delete(h, i);
	for (size_t i = N; i < N + N / 5; i++)
		hnsw_upsert(h, i, all + i * DIM, NULL);
	for (size_t i = 0; i < N; i++)
		final[i] = i < m ? i : i + N / 5;
	/* the final set, laid out contiguously for the brute force */
	data = sh_malloc(N * DIM * sizeof *data);
	for (size_t i = 0; i < N; i++)
		memcpy(data + i * DIM, all + final[i] * DIM, DIM * sizeof *data);
	for (size_t i = 0; i < N; i++)
		hnsw_upsert(fresh, final[i], data + i * DIM, NULL);
	r_churn = recall(h, SH_METRIC_L2, N, final, 32, NULL);
	r_fresh = recall(fresh, SH_METRIC_L2, N, final, 32, NULL);
	ok(r_churn >= r_fresh - 0.01,
	   "after deleting 20%% and inserting as many, recall@10 at ef=32 is %.4f "
	   "(built fresh: %.4f; may drop at most 0.01)",
	   r_churn, r_fresh);
	sh_free(data);
	data = save_data;
	sh_free(all);
	sh_free(ids);
	sh_free(final);
	hnsw_free(h);
	hnsw_free(fresh);
}

static void test_build_parallel(void)
{
	struct hnsw *h = make(SH_METRIC_L2, HNSW_QUANT_NONE, 21);
	uint64_t *ids = seq_ids(N, 0);
	struct sh_err err, verr = {0};
	double r;

	is_int(hnsw_build(h, ids, data, N, 2, &err), 0, "parallel build on 2 threads");
	is_int(hnsw_count(h), N, "every point inserted");
	r = recall(h, SH_METRIC_L2, N, ids, 64, NULL);
	ok(r >= 0.95, "recall@10 after the parallel build %.4f (>= 0.95)", r);
	ok(hnsw_verify(h, &verr) == 0,
	   "and the graph verifies (in-degrees counted right by "
	   "concurrent inserts)%s%s",
	   verr.msg[0] ? ": " : "", verr.msg);
	is_int(hnsw_build(h, ids, data, 1, 1, &err), SH_EEXIST, "building an existing id fails");
	like(err.msg, "point 0 (id 0): id already present", "and names it");
	sh_free(ids);
	hnsw_free(h);
}

static void test_quant(void)
{
	struct hnsw *h = make(SH_METRIC_L2, HNSW_QUANT_INT8, 31);
	struct hnsw *c = make(SH_METRIC_COSINE, HNSW_QUANT_INT8, 31);
	uint64_t *ids = seq_ids(N, 0);
	struct hnsw_stats st;
	double r;

	insert_all(h, N, ids);
	hnsw_stats(h, &st);
	ok(st.quantized, "int8 codes are trained and used");
	r = recall(h, SH_METRIC_L2, N, ids, 64, NULL);
	ok(r >= 0.95, "l2 + int8: recall@10 at ef=64 is %.4f (>= 0.95)", r);
	insert_all(c, N, ids);
	r = recall(c, SH_METRIC_COSINE, N, ids, 64, NULL);
	ok(r >= 0.95, "cosine + int8: recall@10 at ef=64 is %.4f (>= 0.95)", r);
	sh_free(ids);
	hnsw_free(h);
	hnsw_free(c);
}

static void test_io(void)
{
	struct hnsw *h = make(SH_METRIC_COSINE, HNSW_QUANT_INT8, 41), *back = NULL;
	uint64_t *ids = seq_ids(N, 0);
	struct buf b, b2, t;
	struct sh_err err;
	int crashes = 0, accepted = 0;

	insert_all(h, N, ids);
	for (uint64_t id = 0; id < 300; id += 3)
		hnsw_delete(h, id); /* some pending deletions travel too */
	b = save(h);
	b.pos = 0;
	sh_err_clear(&err);
	is_int(hnsw_load(buf_read, &b, &back, &err), 0, "load what was saved %s", err.msg);
	is_int(hnsw_count(back), hnsw_count(h), "same count");
	ok(same_results(h, back, 50), "identical search results after the round trip");
	b2 = save(back);
	ok(b2.n == b.n && memcmp(b2.p, b.p, b.n) == 0, "saving again gives the same bytes");
	hnsw_free(back);

	t = b;
	for (size_t cut = 0; cut < b.n; cut += b.n / 97 + 1) {
		t.n = cut;
		t.pos = 0;
		crashes += hnsw_load(buf_read, &t, &back, &err) != SH_ECORRUPT;
	}
	is_int(crashes, 0, "every truncation is refused as corrupt");
	like(err.msg, "stream ends in", "and says where the stream ended");
	for (size_t off = 0; off < b.n; off += b.n / 61 + 1) {
		b.p[off] ^= 0x5a;
		b.pos = 0;
		if (hnsw_load(buf_read, &b, &back, &err) == 0) {
			accepted++;
			hnsw_free(back);
		}
		b.p[off] ^= 0x5a;
	}
	is_int(accepted, 0, "every flipped byte is refused (checksum or validation)");
	b.pos = 0;
	b.p[0] = 'X';
	is_int(hnsw_load(buf_read, &b, &back, &err), SH_ECORRUPT, "bad magic refused");
	like(err.msg, "bad magic", "and named");
	b.p[0] = 'S';
	/* n_slots (header offset 36, doc/storage-format.md) set to 2^32 - 1:
	 * refused when the stream runs out, with no giant allocation first */
	memset(b.p + 36, 0xff, 4);
	b.pos = 0;
	is_int(hnsw_load(buf_read, &b, &back, &err), SH_ECORRUPT, "absurd sizes refused");
	sh_free(b.p);
	sh_free(b2.p);
	sh_free(ids);
	hnsw_free(h);
}

/* The points test_reorder leaves deleted. */
static bool gone_after_reorder(uint64_t id)
{
	return (id % 11 == 2 || id % 13 == 3) && id % 7 != 1;
}

/* Renumbering changes nothing a caller can see, with pending deletions and
 * free slots, and the index goes on working afterwards. */
static void test_reorder(void)
{
	struct hnsw *h = make(SH_METRIC_L2, HNSW_QUANT_NONE, 61), *copy = NULL;
	uint64_t *ids = seq_ids(N, 0);
	struct buf b;
	float v[DIM];
	double r;

	insert_all(h, N, ids);
	for (uint64_t id = 1; id < N; id += 7)
		hnsw_delete(h, id);
	hnsw_compact(h); /* some reclaimed (free) slots */
	for (uint64_t id = 2; id < N; id += 11)
		hnsw_delete(h, id); /* and some pending deletions */
	b = save(h);
	b.pos = 0;
	hnsw_load(buf_read, &b, &copy, NULL);
	is_int(hnsw_reorder(h), 0, "reorder an index with deletions and free slots");
	ok(same_results(h, copy, 50), "search results are the same after renumbering");
	ok(hnsw_get(h, 700, v) == 0 && memcmp(v, data + 700 * DIM, sizeof v) == 0,
	   "get finds the same vector");
	is_int(hnsw_count(h), hnsw_count(copy), "same count");
	for (uint64_t id = 3; id < N; id += 13)
		hnsw_delete(h, id);
	for (uint64_t id = 1; id < N; id += 7)
		hnsw_upsert(h, id, data + id * DIM, NULL);
	hnsw_compact(h);
	r = recall(h, SH_METRIC_L2, N, ids, 64, gone_after_reorder);
	ok(r >= 0.95, "after more deletes and upserts, recall@10 %.4f (>= 0.95)", r);
	sh_free(b.p);
	sh_free(ids);
	hnsw_free(h);
	hnsw_free(copy);
}

#define HNSW_VISITED_GROWS 32768 /* half of the visited set's first size */

static bool one_in_500(uint64_t id, void *arg)
{
	(void)arg;
	return id % 500 == 0;
}

/* Issue 11, item 7: a search's visited set was sized for ef * 2m up front
 * (256 MiB at ef 100,000 and m 128) and kept in the pool.  Now ef is at
 * most HNSW_MAX_EF = 10,000, the set starts at most at twice the slots (and
 * 256 KiB), grows on demand, and a grown one is not kept. */
static void test_wide_search(void)
{
	struct hnsw_params p = {2, SH_METRIC_L2, 128, 16, 1, HNSW_QUANT_NONE};
	struct hnsw *h = NULL;
	struct hnsw_result res[K], ex[K];
	struct sh_rand r;
	struct sh_err err;
	size_t n = 0, nex = 0, before, same = 0;
	struct hnsw_stats st;
	uint64_t calls;
	float v[2];

	hnsw_new(&p, &h, NULL);
	sh_rand_seed(&r, 71);
	for (uint64_t id = 0; id < 200; id++) {
		v[0] = (float)sh_rand_normal(&r);
		v[1] = (float)sh_rand_normal(&r);
		hnsw_upsert(h, id, v, NULL);
	}
	is_int(hnsw_search(h, v, K, HNSW_MAX_EF + 1, NULL, NULL, res, &n, &err), SH_EINVAL,
	       "ef over %d refused", HNSW_MAX_EF);
	like(err.msg, "ef = 10001 is outside k..10000", "and says the cap");
	before = hnsw_memory(h);
	is_int(hnsw_search(h, v, K, HNSW_MAX_EF, NULL, NULL, res, &n, &err), 0,
	       "a search at ef %d (m = 128)", HNSW_MAX_EF);
	ok(hnsw_memory(h) < before + (1u << 20),
	   "leaves less than 1 MiB of scratch behind (%zu bytes more)", hnsw_memory(h) - before);
	hnsw_free(h);

	/* 40,000 points: a search at ef 10,000 under a filter that matches 80 of
	 * them traverses all, more than half the 65,536 entries the visited set
	 * starts with, and the set grows */
	p.m = 4;
	p.ef_construction = 16;
	hnsw_new(&p, &h, NULL);
	for (uint64_t id = 0; id < 40000; id++) {
		v[0] = (float)sh_rand_normal(&r);
		v[1] = (float)sh_rand_normal(&r);
		hnsw_upsert(h, id, v, NULL);
	}
	before = hnsw_memory(h);
	hnsw_stats(h, &st);
	calls = st.distance_calls;
	hnsw_search(h, v, K, HNSW_MAX_EF, one_in_500, NULL, res, &n, NULL);
	hnsw_stats(h, &st);
	ok(st.distance_calls - calls > HNSW_VISITED_GROWS,
	   "the search saw %llu points (the set grew past %d)",
	   (unsigned long long)(st.distance_calls - calls), HNSW_VISITED_GROWS);
	hnsw_search_exact(h, v, K, one_in_500, NULL, ex, &nex, NULL);
	for (size_t i = 0; i < n && i < nex; i++)
		same += res[i].id == ex[i].id;
	is_int(same, K, "a search whose visited set grows finds the exact %d nearest", K);
	ok(hnsw_memory(h) < before + (1u << 20), "and its grown set is not kept (%zu bytes more)",
	   hnsw_memory(h) - before);
	hnsw_free(h);
}

static void test_memory(void)
{
	struct hnsw *h = make(SH_METRIC_L2, HNSW_QUANT_NONE, 51);
	uint64_t *ids = seq_ids(N, 0);
	size_t raw = (size_t)N * DIM * sizeof(float), mem;

	insert_all(h, N, ids);
	mem = hnsw_memory(h);
	ok(mem > raw && mem < raw * 4, "memory %zu bytes for %zu bytes of vectors", mem, raw);
	sh_free(ids);
	hnsw_free(h);
}

int main(void)
{
	data = sh_malloc((size_t)N * DIM * sizeof *data);
	queries = sh_malloc((size_t)NQ * DIM * sizeof *queries);
	gen(data, N, 1);
	gen(queries, NQ, 2);
	test_params();
	test_huge_vectors();
	test_recall(SH_METRIC_L2);
	test_recall(SH_METRIC_COSINE);
	test_recall(SH_METRIC_DOT);
	test_determinism();
	test_filter();
	test_upsert_delete();
	test_upsert_rounds();
	test_delete_recall();
	test_rewrite_recall();
	test_build_parallel();
	test_quant();
	test_io();
	test_reorder();
	test_memory();
	test_wide_search();
	sh_free(data);
	sh_free(queries);
	return done_testing();
}
