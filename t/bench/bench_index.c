/*
 * bench_index: the vector index benchmark (`make bench`; doc/benchmarks.md).
 *
 * For each dataset (bench_data.h): build shoal's HNSW (float32, and with
 * int8 quantization) and hnswlib with the same M, ef_construction and data,
 * in the same process; report build time, inserts/s, index memory and peak
 * RSS; then for a sweep of ef, recall@10, QPS, p50 and p99 latency on one
 * thread and QPS on all threads; then the ratios shoal / hnswlib of the QPS
 * at recall 0.95 and 0.99, interpolated between the sweep points around the
 * target, as read off ann-benchmarks' recall/QPS curves.  With --deletes, also the recall after
 * deleting 20% of the points and inserting as many new ones.  With --rewrite R, recall and QPS
 * of an index built one upsert at a time (as a collection is loaded) after each of R full
 * rewrites (every point upserted again, moving between two disjoint sets of vectors), next to
 * indexes built fresh on the same set, all in the same run (issue 11).
 *
 * Figures, not assertions: nothing here fails on speed.
 */
#include "build.h"

#include "bench_data.h"

#include "index/hnsw.h"
#include "util/alloc.h"
#include "util/rand.h"

#ifdef HAVE_HNSWLIB_BENCH
#include "bench_hnswlib.h"
#endif

#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_EFS 32

struct opts {
	char datasets[64];
	size_t fashion_n, gauss_n, nq;
	unsigned m, efc, threads, reps;
	size_t efs[MAX_EFS], n_efs;
	int build_1thread, hnswlib, quant, deletes, reuse;
	unsigned rewrites;
	size_t rewrite_n, rw_efs[MAX_EFS], n_rw_efs;
	int rewrite_only;
	char cache[512];
};

/* ------------------------------------------------------------ systems */

struct sys {
	const char *name;
	void *(*build)(const struct dataset *d, const struct opts *o, unsigned threads, int quant);
	size_t (*search)(void *idx, const float *q, size_t k, size_t ef, uint64_t *ids);
	void (*prepare_ef)(void *idx, size_t ef);
	size_t (*memory)(void *idx);
	void (*destroy)(void *idx);
	int quant;
};

static int file_write(void *ctx, const void *buf, size_t len)
{
	return fwrite(buf, 1, len, ctx) == len ? 0 : SH_EIO;
}

static int file_read(void *ctx, void *buf, size_t len)
{
	return fread(buf, 1, len, ctx) == len ? 0 : SH_EIO;
}

/* --reuse-index: load a built index from the cache (for work on search
 * speed; the build figures are then not measured). */
static struct hnsw *cached_index(const struct dataset *d, const struct opts *o, int quant,
				 struct hnsw *save)
{
	char path[1024];
	FILE *f;
	struct hnsw *h = NULL;
	struct sh_err err;

	snprintf(path, sizeof path, "%s/index-%s-m%u-efc%u%s.bin", o->cache, d->name, o->m, o->efc,
		 quant ? "-int8" : "");
	if (save != NULL) {
		if ((f = fopen(path, "wb")) != NULL) {
			hnsw_save(save, file_write, f, &err);
			fclose(f);
		}
		return save;
	}
	if ((f = fopen(path, "rb")) == NULL)
		return NULL;
	if (hnsw_load(file_read, f, &h, &err) != 0)
		fprintf(stderr, "bench: %s: %s\n", path, err.msg);
	fclose(f);
	return h;
}

static void *shoal_build(const struct dataset *d, const struct opts *o, unsigned threads, int quant)
{
	struct hnsw_params p = {
		(uint32_t)d->dim, SH_METRIC_L2, o->m,
		o->efc,           42,           quant ? HNSW_QUANT_INT8 : HNSW_QUANT_NONE};
	struct hnsw *h = NULL;
	struct sh_err err;
	uint64_t *ids;

	if (o->reuse && (h = cached_index(d, o, quant, NULL)) != NULL)
		return h;
	ids = sh_malloc(d->n * sizeof *ids);
	for (size_t i = 0; i < d->n; i++)
		ids[i] = i;
	if (hnsw_new(&p, &h, &err) != 0 || hnsw_build(h, ids, d->base, d->n, threads, &err) != 0) {
		fprintf(stderr, "bench: shoal build failed: %s\n", err.msg);
		exit(1);
	}
	sh_free(ids);
	return o->reuse ? cached_index(d, o, quant, h) : h;
}

static size_t shoal_search(void *idx, const float *q, size_t k, size_t ef, uint64_t *ids)
{
	struct hnsw_result res[64];
	size_t n = 0;

	hnsw_search(idx, q, k, ef, NULL, NULL, res, &n, NULL);
	for (size_t i = 0; i < n; i++)
		ids[i] = res[i].id;
	return n;
}

static size_t shoal_memory(void *idx)
{
	return hnsw_memory(idx);
}

static void shoal_destroy(void *idx)
{
	hnsw_free(idx);
}

#ifdef HAVE_HNSWLIB_BENCH
struct hl_job {
	void *h;
	const struct dataset *d;
	_Atomic size_t next;
};

static void *hl_worker(void *arg)
{
	struct hl_job *j = arg;
	size_t i;

	while ((i = atomic_fetch_add(&j->next, 1)) < j->d->n)
		hl_add(j->h, j->d->base + i * j->d->dim, i);
	return NULL;
}

static void *hl_build(const struct dataset *d, const struct opts *o, unsigned threads, int quant)
{
	struct hl_job j = {hl_new((int)d->dim, 0, d->n, (int)o->m, (int)o->efc, 42), d, 0};
	pthread_t t[64];

	for (unsigned i = 1; i < threads && i < 64; i++)
		pthread_create(&t[i], NULL, hl_worker, &j);
	hl_worker(&j);
	for (unsigned i = 1; i < threads && i < 64; i++)
		pthread_join(t[i], NULL);
	return j.h;
}

static size_t hl_search_ids(void *idx, const float *q, size_t k, size_t ef, uint64_t *ids)
{
	float dist[64];

	return hl_search(idx, q, k, ids, dist);
}

static size_t hl_memory(void *idx)
{
	return 0; /* hnswlib does not say; the RSS growth stands for it */
}
#endif

/* ------------------------------------------------------------ measuring */

struct point {
	size_t ef;
	double recall, qps1, p50_us, p99_us, qpsn;
};

struct run_job {
	const struct sys *s;
	void *idx;
	const struct dataset *d;
	size_t ef;
	uint64_t *found; /* nq x k */
	double *lat;
	_Atomic size_t next;
};

static void *run_worker(void *arg)
{
	struct run_job *j = arg;
	size_t q;

	while ((q = atomic_fetch_add(&j->next, 1)) < j->d->nq) {
		double t0 = now_sec();
		size_t n = j->s->search(j->idx, j->d->queries + q * j->d->dim, j->d->k, j->ef,
					j->found + q * j->d->k);

		for (size_t i = n; i < j->d->k; i++)
			j->found[q * j->d->k + i] = UINT64_MAX;
		j->lat[q] = now_sec() - t0;
	}
	return NULL;
}

static double run(struct run_job *j, unsigned threads)
{
	pthread_t t[64];
	double t0 = now_sec();

	atomic_store(&j->next, 0);
	for (unsigned i = 1; i < threads && i < 64; i++)
		pthread_create(&t[i], NULL, run_worker, j);
	run_worker(j);
	for (unsigned i = 1; i < threads && i < 64; i++)
		pthread_join(t[i], NULL);
	return now_sec() - t0;
}

static double recall_of(const struct dataset *d, const uint64_t *found)
{
	size_t hits = 0;

	for (size_t q = 0; q < d->nq; q++)
		for (size_t i = 0; i < d->k; i++)
			for (size_t j = 0; j < d->k; j++)
				hits += found[q * d->k + i] == d->truth[q * d->k + j];
	return (double)hits / (double)(d->nq * d->k);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static struct point measure(const struct sys *s, void *idx, const struct dataset *d, size_t ef,
			    unsigned threads)
{
	struct run_job j = {s,
			    idx,
			    d,
			    ef,
			    sh_malloc(d->nq * d->k * sizeof(uint64_t)),
			    sh_malloc(d->nq * sizeof(double)),
			    0};
	struct point p = {ef, 0, 0, 0, 0, 0};
	double secs;

	if (s->prepare_ef != NULL)
		s->prepare_ef(idx, ef);
	secs = run(&j, 1);
	p.recall = recall_of(d, j.found);
	p.qps1 = (double)d->nq / secs;
	qsort(j.lat, d->nq, sizeof *j.lat, cmp_double);
	p.p50_us = j.lat[d->nq / 2] * 1e6;
	p.p99_us = j.lat[d->nq * 99 / 100] * 1e6;
	p.qpsn = (double)d->nq / run(&j, threads);
	sh_free(j.found);
	sh_free(j.lat);
	return p;
}

/* ------------------------------------------------------------ one system */

struct result {
	const char *name;
	double build_s[2]; /* 1 thread (0 if not run), all threads */
	size_t memory, rss_growth, rss_peak;
	struct point pts[MAX_EFS];
	size_t n_pts;
};

static void *timed_build(const struct sys *s, const struct dataset *d, const struct opts *o,
			 unsigned threads, double *secs, size_t *growth, size_t *peak)
{
	size_t rss0;
	double t0;
	void *idx;

	sh_alloc_purge();
	rss_peak_reset();
	rss0 = rss_bytes();
	t0 = now_sec();
	idx = s->build(d, o, threads, s->quant);
	*secs = now_sec() - t0;
	*growth = rss_bytes() - rss0;
	*peak = rss_peak_bytes() - rss0;
	return idx;
}

static void *build_sys(const struct sys *s, const struct dataset *d, const struct opts *o,
		       struct result *r)
{
	void *idx;

	memset(r, 0, sizeof *r);
	r->name = s->name;
	if (o->build_1thread) {
		idx = timed_build(s, d, o, 1, &r->build_s[0], &r->rss_growth, &r->rss_peak);
		s->destroy(idx);
	}
	idx = timed_build(s, d, o, o->threads, &r->build_s[1], &r->rss_growth, &r->rss_peak);
	r->memory = s->memory(idx);
	printf("  %-12s build %7.1f s on 1 thread, %7.1f s on %u (%.0f inserts/s); index %.1f MiB; "
	       "RSS +%.1f MiB, peak +%.1f MiB; process huge pages %.0f MiB\n",
	       s->name, r->build_s[0], r->build_s[1], o->threads, (double)d->n / r->build_s[1],
	       (double)r->memory / 1048576.0, (double)r->rss_growth / 1048576.0,
	       (double)r->rss_peak / 1048576.0, (double)huge_bytes() / 1048576.0);
	fflush(stdout);
	return idx;
}

static void keep_best(struct point *best, const struct point *p)
{
	if (p->qps1 > best->qps1) {
		best->qps1 = p->qps1;
		best->p50_us = p->p50_us;
		best->p99_us = p->p99_us;
	}
	if (p->qpsn > best->qpsn)
		best->qpsn = p->qpsn;
	best->recall = p->recall;
	best->ef = p->ef;
}

/* For each ef, measure every system in turn, o->reps times, keeping each
 * one's best: load from other processes then hurts all systems alike. */
static void sweep(const struct sys *const *s, void *const *idx, struct result *r, size_t n,
		  const struct dataset *d, const struct opts *o)
{
	for (size_t e = 0; e < o->n_efs; e++) {
		for (size_t i = 0; i < n; i++)
			r[i].pts[e] = (struct point){o->efs[e], 0, 0, 0, 0, 0};
		for (unsigned rep = 0; rep < o->reps; rep++) {
			for (size_t i = 0; i < n; i++) {
				struct point p = measure(s[i], idx[i], d, o->efs[e], o->threads);

				keep_best(&r[i].pts[e], &p);
			}
		}
		for (size_t i = 0; i < n; i++) {
			struct point *p = &r[i].pts[e];

			r[i].n_pts = e + 1;
			printf("  %-12s ef %4zu  recall@10 %.4f  1 thread: %8.0f QPS  p50 %6.0f us "
			       " "
			       "p99 %6.0f us   %u threads: %8.0f QPS\n",
			       r[i].name, p->ef, p->recall, p->qps1, p->p50_us, p->p99_us,
			       o->threads, p->qpsn);
		}
		fflush(stdout);
	}
}

/* QPS at exactly the target recall, interpolated linearly between the two
 * sweep points around it (points are in increasing ef, so in increasing
 * recall); the first point's QPS when it already reaches the target; 0 when
 * no point does. */
static double qps_at(const struct result *r, double target, int threaded, size_t *ef)
{
	for (size_t i = 0; i < r->n_pts; i++) {
		const struct point *p = &r->pts[i], *q;
		double q1 = threaded ? p->qpsn : p->qps1, q0;

		if (p->recall < target)
			continue;
		*ef = p->ef;
		if (i == 0 || p->recall <= r->pts[i - 1].recall)
			return q1;
		q = &r->pts[i - 1];
		q0 = threaded ? q->qpsn : q->qps1;
		return q0 + (q1 - q0) * (target - q->recall) / (p->recall - q->recall);
	}
	return 0;
}

static void ratio_line(const struct result *a, const struct result *b, double target, int thr,
		       unsigned threads)
{
	size_t ea = 0, eb = 0;
	double qa = qps_at(a, target, thr, &ea), qb = qps_at(b, target, thr, &eb);

	if (qa == 0 || qb == 0) {
		printf("    recall %.2f, %u thread(s): not reached by %s\n", target,
		       thr ? threads : 1, qa == 0 ? a->name : b->name);
		return;
	}
	printf("    QPS at recall %.2f, %u thread(s): %s %.0f (ef <= %zu) / %s %.0f (ef <= %zu) = "
	       "%.2fx\n",
	       target, thr ? threads : 1, a->name, qa, ea, b->name, qb, eb, qa / qb);
}

static void ratios(const struct result *a, const struct result *b, unsigned threads)
{
	printf("  ratios %s / %s:\n", a->name, b->name);
	for (int t = 0; t < 2; t++) {
		ratio_line(a, b, 0.95, t, threads);
		ratio_line(a, b, 0.99, t, threads);
	}
	if (a->build_s[0] > 0 && b->build_s[0] > 0)
		printf("    build time, 1 thread: %.2fx\n", a->build_s[0] / b->build_s[0]);
	printf("    build time, %u threads: %.2fx\n", threads, a->build_s[1] / b->build_s[1]);
	printf("    memory (RSS growth): %.2fx\n", (double)a->rss_growth / (double)b->rss_growth);
	fflush(stdout);
}

/* ------------------------------------------------------------ deletions */

/* Recall at ef of idx on f's queries; idx's ids map to f's rows via pos. */
static double recall_mapped(struct hnsw *idx, const struct dataset *f, const uint32_t *pos,
			    size_t ef)
{
	size_t hits = 0;
	struct hnsw_result res[64];

	for (size_t q = 0; q < f->nq; q++) {
		size_t n = 0;

		hnsw_search(idx, f->queries + q * f->dim, f->k, ef, NULL, NULL, res, &n, NULL);
		for (size_t i = 0; i < n; i++)
			for (size_t j = 0; j < f->k; j++)
				hits += pos[res[i].id] == f->truth[q * f->k + j];
	}
	return (double)hits / (double)(f->nq * f->k);
}

/* Build on 80% of the base, delete a fifth of it, insert as many unseen
 * points; compare recall at ef with an index built on the final set. */
static void bench_deletes(const struct dataset *d, const struct opts *o, size_t ef)
{
	size_t n0 = d->n * 4 / 5, nd = n0 / 5, nf = n0;
	struct dataset f = *d;
	uint32_t *pos = sh_malloc(d->n * sizeof *pos);
	uint64_t *ids = sh_malloc(nf * sizeof *ids);
	struct hnsw *churn = shoal_build(&(struct dataset){.dim = d->dim, .n = n0, .base = d->base},
					 o, o->threads, 0);
	struct hnsw *fresh = NULL;
	struct hnsw_params p = {(uint32_t)d->dim, SH_METRIC_L2, o->m, o->efc, 42, HNSW_QUANT_NONE};
	struct sh_rand r;
	size_t k = 0;
	double t0 = now_sec(), r_churn, r_fresh;

	memset(pos, 0xff, d->n * sizeof *pos);
	sh_rand_seed(&r, 7);
	for (size_t i = 0; i < nd; i++) /* random distinct victims among [0, n0) */
		while (hnsw_delete(churn, sh_rand_below(&r, n0)) != 0)
			;
	for (size_t i = n0; i < n0 + nd; i++)
		hnsw_upsert(churn, i, d->base + i * d->dim, NULL);
	printf("  deletes: %zu deleted and %zu inserted in %.1f s\n", nd, nd, now_sec() - t0);
	f.base = sh_malloc(nf * d->dim * sizeof(float));
	f.truth = NULL;
	f.n = nf;
	for (size_t i = 0; i < n0 + nd; i++) {
		if (i < n0 && !hnsw_contains(churn, i))
			continue;
		memcpy(f.base + k * d->dim, d->base + i * d->dim, d->dim * sizeof(float));
		pos[i] = (uint32_t)k;
		ids[k++] = i;
	}
	if (snprintf(f.name, sizeof f.name, "%.50s-churned", d->name) < 0)
		return;
	data_truth(&f, d->k, o->cache, o->threads);
	hnsw_new(&p, &fresh, NULL);
	hnsw_build(fresh, ids, f.base, nf, o->threads, NULL);
	r_churn = recall_mapped(churn, &f, pos, ef);
	r_fresh = recall_mapped(fresh, &f, pos, ef);
	printf("  deletes: recall@10 at ef %zu after deleting 20%% and inserting as many: %.4f; "
	       "built fresh on the same set: %.4f; drop %.4f (goal <= 0.01)\n",
	       ef, r_churn, r_fresh, r_fresh - r_churn);
	hnsw_free(churn);
	hnsw_free(fresh);
	sh_free(f.base);
	sh_free(f.truth);
	sh_free(pos);
	sh_free(ids);
}

/* ------------------------------------------------------------ rewrites */

/* Recall@k and QPS (1 thread) at ef of idx on f's queries (ids are f's
 * rows); *calls: distance computations per query (a cost the machine's
 * noise does not move). */
static void measure_set(struct hnsw *idx, const struct dataset *f, size_t ef, double *recall,
			double *qps, double *calls)
{
	struct hnsw_result res[64];
	struct hnsw_stats st0, st1;
	size_t hits = 0;
	double t0 = now_sec();

	hnsw_stats(idx, &st0);

	for (size_t q = 0; q < f->nq; q++) {
		size_t n = 0;

		hnsw_search(idx, f->queries + q * f->dim, f->k, ef, NULL, NULL, res, &n, NULL);
		for (size_t i = 0; i < n; i++)
			for (size_t j = 0; j < f->k; j++)
				hits += res[i].id == f->truth[q * f->k + j];
	}
	*qps = (double)f->nq / (now_sec() - t0);
	*recall = (double)hits / (double)(f->nq * f->k);
	hnsw_stats(idx, &st1);
	*calls = (double)(st1.distance_calls - st0.distance_calls) / (double)f->nq;
}

static void rewrite_line(const char *what, struct hnsw *idx, const struct dataset *f,
			 const struct opts *o)
{
	struct hnsw_stats st;

	hnsw_stats(idx, &st);
	printf("  %-40s", what);
	for (size_t e = 0; e < o->n_rw_efs; e++) {
		double recall, qps, calls, best = 0;

		for (unsigned rep = 0; rep < o->reps; rep++) {
			measure_set(idx, f, o->rw_efs[e], &recall, &qps, &calls);
			best = qps > best ? qps : best;
		}
		printf("  ef %zu: %.4f %6.0f QPS %4.0f dist/q", o->rw_efs[e], recall, best, calls);
	}
	printf("  (%zu pending, level-0 degree %.1f)\n", st.deleted, hnsw_mean_degree0(idx));
	fflush(stdout);
}

/* Set k of two disjoint sets of n rows of d: rows [k n, (k + 1) n). */
static void rewrite_set(const struct dataset *d, size_t n, int k, const struct opts *o,
			struct dataset *f)
{
	*f = *d;
	f->n = n;
	f->base = d->base + (size_t)k * n * d->dim;
	f->truth = NULL;
	snprintf(f->name, sizeof f->name, "%.30s-rows-%zu-%zu", d->name, (size_t)k * n,
		 (size_t)(k + 1) * n);
	data_truth(f, d->k, o->cache, o->threads);
}

/* n upserts of set f, ids 0..n-1, one at a time (as a collection is
 * loaded and updated); returns upserts/s. */
static double upsert_set(struct hnsw *idx, const struct dataset *f)
{
	double t0 = now_sec();

	for (size_t i = 0; i < f->n; i++)
		hnsw_upsert(idx, i, f->base + i * f->dim, NULL);
	return (double)f->n / (now_sec() - t0);
}

/* Two disjoint sets A and B of n points each.  An index built one upsert
 * at a time on A is rewritten R times, every point moving to its row of B
 * in odd passes and back to A in even ones; after each pass its recall and
 * QPS are measured next to indexes built fresh the same way on the same
 * set, and to a bulk build of A (renumbered for locality: faster for that
 * alone), all in this run. */
static void bench_rewrite(const struct dataset *d, const struct opts *o)
{
	struct hnsw_params p = {(uint32_t)d->dim, SH_METRIC_L2, o->m, o->efc, 42, HNSW_QUANT_NONE};
	size_t n = o->rewrite_n < d->n / 2 ? o->rewrite_n : d->n / 2;
	struct dataset set[2];
	struct hnsw *idx = NULL, *fresh[2] = {NULL, NULL}, *bulk = NULL;
	uint64_t *ids = sh_malloc(n * sizeof *ids);
	char what[80];
	double rate, t0;

	rewrite_set(d, n, 0, o, &set[0]);
	rewrite_set(d, n, 1, o, &set[1]);
	printf("\n%s: two sets of %zu points (A, B); one upsert at a time; %u full rewrites "
	       "A -> B -> A ...; recall@%zu and QPS (1 thread, best of %u)\n",
	       d->name, n, o->rewrites, d->k, o->reps);
	for (int k = 0; k < 2; k++) {
		hnsw_new(&p, &fresh[k], NULL);
		rate = upsert_set(fresh[k], &set[k]);
		snprintf(what, sizeof what, "%c built fresh (%.0f upserts/s)", "AB"[k], rate);
		rewrite_line(what, fresh[k], &set[k], o);
	}
	for (size_t i = 0; i < n; i++)
		ids[i] = i;
	hnsw_new(&p, &bulk, NULL);
	t0 = now_sec();
	hnsw_build(bulk, ids, set[0].base, n, o->threads, NULL);
	snprintf(what, sizeof what, "A bulk build (%.1f s, %u threads)", now_sec() - t0,
		 o->threads);
	rewrite_line(what, bulk, &set[0], o);
	hnsw_new(&p, &idx, NULL);
	upsert_set(idx, &set[0]);
	for (unsigned pass = 1; pass <= o->rewrites; pass++) {
		int k = pass % 2;

		rate = upsert_set(idx, &set[k]);
		snprintf(what, sizeof what, "%c after rewrite %u (%.0f upserts/s)", "AB"[k], pass,
			 rate);
		rewrite_line(what, idx, &set[k], o);
	}
	hnsw_free(idx);
	hnsw_free(bulk);
	for (int k = 0; k < 2; k++) {
		hnsw_free(fresh[k]);
		sh_free(set[k].truth);
	}
	sh_free(ids);
}

/* ------------------------------------------------------------ main */

static void bench_dataset(struct dataset *d, const struct opts *o)
{
	static const struct sys shoal = {
		"shoal", shoal_build, shoal_search, NULL, shoal_memory, shoal_destroy, 0};
	static const struct sys shoal_q = {
		"shoal-int8", shoal_build, shoal_search, NULL, shoal_memory, shoal_destroy, 1};
#ifdef HAVE_HNSWLIB_BENCH
	static const struct sys hl = {"hnswlib", hl_build, hl_search_ids, hl_set_ef, hl_memory,
				      hl_free,   0};
#endif
	const struct sys *s[3];
	void *idx[3];
	struct result r[3];
	size_t n = 0, hl_at = 0;

	printf("\n%s: %zu x %zu base, %zu queries, L2, M=%u, ef_construction=%u, %u threads, "
	       "best of %u\n",
	       d->name, d->n, d->dim, d->nq, o->m, o->efc, o->threads, o->reps);
	data_truth(d, 10, o->cache, o->threads);
	s[n++] = &shoal;
	if (o->quant)
		s[n++] = &shoal_q;
#ifdef HAVE_HNSWLIB_BENCH
	if (o->hnswlib) {
		hl_at = n;
		s[n++] = &hl;
	}
#endif
	if (o->rewrite_only) {
		bench_rewrite(d, o);
		return;
	}
	for (size_t i = 0; i < n; i++)
		idx[i] = build_sys(s[i], d, o, &r[i]);
	sweep(s, idx, r, n, d, o);
	for (size_t i = 0; hl_at > 0 && i < hl_at; i++)
		ratios(&r[i], &r[hl_at], o->threads);
	for (size_t i = 0; i < n; i++)
		s[i]->destroy(idx[i]);
	if (o->deletes)
		bench_deletes(d, o, o->efs[o->n_efs / 2]);
	if (o->rewrites > 0)
		bench_rewrite(d, o);
}

static void parse_efs(size_t *efs, size_t *n, char *s)
{
	*n = 0;
	for (char *t = strtok(s, ","); t != NULL && *n < MAX_EFS; t = strtok(NULL, ","))
		efs[(*n)++] = strtoul(t, NULL, 10);
}

static void usage(void)
{
	puts("usage: bench_index [--datasets fashion,gauss] [--fashion-n N] [--gauss-n N]\n"
	     "       [--queries N] [--m 16] [--efc 200] [--ef 10,20,...] [--threads T]\n"
	     "       [--build-1thread] [--no-hnswlib] [--no-quant] [--deletes] [--cache DIR]\n"
	     "       [--reps 3] [--reuse-index] [--rewrite R] [--rewrite-n 50000]\n"
	     "       [--rewrite-ef 20,40,80] [--rewrite-only]");
}

static void parse(struct opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
		{"datasets", 1, 0, 'd'},   {"fashion-n", 1, 0, 'f'}, {"gauss-n", 1, 0, 'g'},
		{"queries", 1, 0, 'q'},    {"m", 1, 0, 'm'},         {"efc", 1, 0, 'c'},
		{"ef", 1, 0, 'e'},         {"threads", 1, 0, 't'},   {"build-1thread", 0, 0, '1'},
		{"no-hnswlib", 0, 0, 'H'}, {"no-quant", 0, 0, 'Q'},  {"deletes", 0, 0, 'D'},
		{"cache", 1, 0, 'C'},      {"reps", 1, 0, 'r'},      {"reuse-index", 0, 0, 'R'},
		{"rewrite", 1, 0, 'W'},    {"rewrite-n", 1, 0, 'N'}, {"rewrite-only", 0, 0, 'O'},
		{"rewrite-ef", 1, 0, 'F'}, {"help", 0, 0, 'h'},      {0, 0, 0, 0}};
	int c;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'd': snprintf(o->datasets, sizeof o->datasets, "%s", optarg); break;
		case 'f': o->fashion_n = strtoul(optarg, NULL, 10); break;
		case 'g': o->gauss_n = strtoul(optarg, NULL, 10); break;
		case 'q': o->nq = strtoul(optarg, NULL, 10); break;
		case 'm': o->m = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'c': o->efc = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'e': parse_efs(o->efs, &o->n_efs, optarg); break;
		case 'F': parse_efs(o->rw_efs, &o->n_rw_efs, optarg); break;
		case 't': o->threads = (unsigned)strtoul(optarg, NULL, 10); break;
		case '1': o->build_1thread = 1; break;
		case 'H': o->hnswlib = 0; break;
		case 'Q': o->quant = 0; break;
		case 'D': o->deletes = 1; break;
		case 'C': snprintf(o->cache, sizeof o->cache, "%s", optarg); break;
		case 'r': o->reps = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'R': o->reuse = 1; break;
		case 'W': o->rewrites = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'N': o->rewrite_n = strtoul(optarg, NULL, 10); break;
		case 'O': o->rewrite_only = 1; break;
		default: usage(); exit(c == 'h' ? 0 : 2);
		}
	}
}

int main(int argc, char **argv)
{
	struct opts o = {.datasets = "fashion,gauss",
			 .gauss_n = 200000,
			 .nq = 10000,
			 .m = 16,
			 .efc = 200,
			 .reps = 3,
			 .hnswlib = 1,
			 .quant = 1,
			 .rewrite_n = 50000,
			 .cache = "."};
	char efs[] = "10,20,40,80,120,200,400", rw_efs[] = "20,40,80";
	struct dataset d;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	sh_alloc_hook_libs();
	parse_efs(o.efs, &o.n_efs, efs);
	parse_efs(o.rw_efs, &o.n_rw_efs, rw_efs);
	o.threads = cpus > 0 ? (unsigned)cpus : 1;
	parse(&o, argc, argv);
	printf("bench_index: kernels %s, allocator %s\n", dist_isa_name(dist_best()->isa),
	       sh_alloc_name());
	if (strstr(o.datasets, "fashion") != NULL && data_fashion(&d, o.fashion_n, o.nq) == 0) {
		bench_dataset(&d, &o);
		data_free(&d);
	}
	if (strstr(o.datasets, "gauss") != NULL && data_gauss(&d, o.gauss_n, o.nq) == 0) {
		bench_dataset(&d, &o);
		data_free(&d);
	}
	return 0;
}
