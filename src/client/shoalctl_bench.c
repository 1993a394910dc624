/*
 * shoalctl bench: a load generator (doc/shoalctl.1, "BENCH").
 *
 * Loads a dataset (Fashion-MNIST from Debian's dataset-fashion-mnist, or
 * .fvecs files) into a collection when asked or when it is missing, then
 * runs `concurrency` connections, one thread each, with up to `depth`
 * requests in flight on each (pipelining): searches, upserts, pings or a
 * mix.  Reports throughput and p50/p99/p999 latency and, for searches,
 * recall@k against exact searches run on the server first.
 */
#include "build.h"

#include "client/shoalctl.h"
#include "client/shoalctl_lag.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"
#define CHUNK       64 /* upsert requests per pipelined call */

struct bopts {
	const char *dataset, *queries, *coll, *mode;
	size_t n, nq, requests, concurrency, depth, k, ef, batch;
	size_t per_request; /* upsert mode: points in one request */
	double duration;    /* upsert mode: stop after this many seconds (0: never) */
	const char *lag;    /* upsert mode: replicas whose searchable lag to measure */
	double search_ratio;
	int load; /* 1 always, 0 when missing, -1 never */
	bool recall;
	enum shoal_metric metric;
};

struct bdata {
	float *base, *q;
	size_t n, nq, dim;
	uint64_t *truth; /* nq x k */
};

/* ------------------------------------------------------------ datasets */

int fvecs_read(const char *path, size_t max_n, float **out, size_t *n, size_t *dim)
{
	FILE *f = fopen(path, "rb");
	float *v = NULL;
	size_t cap = 0;
	int32_t d;

	*n = 0;
	*dim = 0;
	if (f == NULL) {
		fprintf(stderr, "shoalctl: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while ((max_n == 0 || *n < max_n) && fread(&d, 4, 1, f) == 1) {
		if (d <= 0 || d > 65536 || (*dim != 0 && (size_t)d != *dim)) {
			fprintf(stderr, "shoalctl: %s: vector %zu: bad dimension %d\n", path, *n,
				d);
			goto fail;
		}
		*dim = (size_t)d;
		if (*n == cap) {
			float *g = realloc(v, (cap = cap ? 2 * cap : 1024) * *dim * sizeof *v);

			if (g == NULL)
				goto fail;
			v = g;
		}
		if (fread(v + *n * *dim, sizeof *v, *dim, f) != *dim) {
			fprintf(stderr, "shoalctl: %s: vector %zu is cut short\n", path, *n);
			goto fail;
		}
		(*n)++;
	}
	fclose(f);
	*out = v;
	return 0;
fail:
	free(v);
	fclose(f);
	return -1;
}

/* An idx3 file of images (big-endian header), through gzip -dc. */
static int idx3_read(const char *name, size_t max_n, float **out, size_t *n, size_t *dim)
{
	char cmd[512];
	uint32_t h[4];
	FILE *f;
	uint8_t *row;

	snprintf(cmd, sizeof cmd, "gzip -dc '%s/%s'", FASHION_DIR, name);
	if ((f = popen(cmd, "r")) == NULL || fread(h, 4, 4, f) != 4 || ntohl(h[0]) != 0x803) {
		fprintf(stderr,
			"shoalctl: cannot read %s/%s (install the Debian package "
			"dataset-fashion-mnist)\n",
			FASHION_DIR, name);
		if (f != NULL)
			pclose(f);
		return -1;
	}
	*n = ntohl(h[1]);
	*n = max_n && max_n < *n ? max_n : *n;
	*dim = (size_t)ntohl(h[2]) * ntohl(h[3]);
	*out = malloc(*n * *dim * sizeof **out);
	row = malloc(*dim);
	for (size_t i = 0; *out && row && i < *n; i++) {
		if (fread(row, 1, *dim, f) != *dim)
			break;
		for (size_t k = 0; k < *dim; k++)
			(*out)[i * *dim + k] = row[k];
	}
	free(row);
	pclose(f);
	return *out != NULL ? 0 : -1;
}

/* random:DIM: n vectors (--n, default 100,000) uniform in [0, 1), the
 * same ones every run (xorshift64, seed 1). */
static int random_data(const struct bopts *o, struct bdata *d)
{
	char *end;
	unsigned long dim = strtoul(o->dataset + 7, &end, 10);
	uint64_t x = 1;

	if (*end != '\0' || dim < 1 || dim > 65536) {
		fprintf(stderr, "shoalctl: bench: --dataset random:DIM wants DIM in 1..65536\n");
		return -1;
	}
	d->dim = dim, d->n = o->n ? o->n : 100000;
	if ((d->base = malloc(d->n * d->dim * sizeof *d->base)) == NULL) {
		fprintf(stderr, "shoalctl: bench: no memory for %zu vectors\n", d->n);
		return -1;
	}
	for (size_t i = 0; i < d->n * d->dim; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		d->base[i] = (float)(x >> 40) / (float)(1u << 24);
	}
	return 0;
}

static int load_data(const struct bopts *o, struct bdata *d)
{
	size_t qdim = 0;

	if (strcmp(o->dataset, "fashion") == 0)
		return idx3_read("train-images-idx3-ubyte.gz", o->n, &d->base, &d->n, &d->dim) ||
		       idx3_read("t10k-images-idx3-ubyte.gz", o->nq, &d->q, &d->nq, &qdim);
	if (strncmp(o->dataset, "random:", 7) == 0
		    ? random_data(o, d) != 0
		    : fvecs_read(o->dataset, o->n, &d->base, &d->n, &d->dim) != 0)
		return -1;
	if (o->queries == NULL) { /* queries: the first base vectors */
		d->nq = o->nq < d->n ? o->nq : d->n;
		d->q = malloc(d->nq * d->dim * sizeof *d->q);
		if (d->q != NULL)
			memcpy(d->q, d->base, d->nq * d->dim * sizeof *d->q);
		return d->q ? 0 : -1;
	}
	if (fvecs_read(o->queries, o->nq, &d->q, &d->nq, &qdim) != 0)
		return -1;
	if (qdim != d->dim) {
		fprintf(stderr, "shoalctl: queries have %zu dimensions, the base %zu\n", qdim,
			d->dim);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ loading */

static void on_load(void *arg, size_t acked)
{
	progress_update(arg, acked);
}

/* A write is acknowledged before it is indexed: wait until the node asked
 * has applied everything committed (a strong read), at most 10 minutes. */
static int wait_indexed(struct ctl *x, const struct bopts *o)
{
	uint64_t n;
	int rv = SHOAL_DEADLINE_EXCEEDED;

	shoal_set_consistency(x->c, SHOAL_CONSISTENCY_STRONG);
	for (double until = ctl_now() + 600; rv == SHOAL_DEADLINE_EXCEEDED && ctl_now() < until;)
		rv = shoal_count(x->c, o->coll, NULL, &n);
	shoal_set_consistency(x->c, x->o.consistency);
	return rv;
}

static int load_collection(struct ctl *x, const struct bopts *o, const struct bdata *d)
{
	struct shoal_collection_info info;
	struct shoal_point *pts;
	struct progress p;
	size_t acked = 0;
	int rv = shoal_describe_collection(x->c, o->coll, &info);

	if (rv == SHOAL_OK && o->load <= 0 && info.count == d->n && info.dim == d->dim) {
		fprintf(stderr, "bench: using collection '%s' (%" PRIu64 " points)\n", o->coll,
			info.count);
		return SHOAL_OK;
	}
	if (o->load < 0)
		return rv;
	if (rv == SHOAL_OK && (rv = shoal_drop_collection(x->c, o->coll, NULL)) != SHOAL_OK)
		return rv;
	if ((rv = shoal_create_collection(x->c, o->coll, (uint32_t)d->dim, o->metric, 0, 0,
					  NULL)) != SHOAL_OK)
		return rv;
	if ((pts = calloc(d->n, sizeof *pts)) == NULL)
		return SHOAL_RESOURCE_EXHAUSTED;
	for (size_t i = 0; i < d->n; i++)
		pts[i] = (struct shoal_point){i, d->base + i * d->dim, (uint32_t)d->dim, NULL, 0};
	progress_start(&p, d->n, "points loaded", 10);
	double t0 = ctl_now();
	rv = shoal_upsert_pipelined(x->c, o->coll, pts, d->n, o->batch, 8, on_load, &p, &acked,
				    NULL);
	progress_end(&p, acked);
	fprintf(stderr, "bench: loaded %zu points in %.1f s (%.0f points/s acknowledged)\n", acked,
		ctl_now() - t0, (double)acked / (ctl_now() - t0));
	free(pts);
	if (rv == SHOAL_OK && (rv = wait_indexed(x, o)) == SHOAL_OK)
		fprintf(stderr, "bench: all indexed %.1f s after the first point (%.0f points/s)\n",
			ctl_now() - t0, (double)acked / (ctl_now() - t0));
	return rv;
}

/* ------------------------------------------------------------ the run */

struct worker {
	struct ctl *x;
	const struct bopts *o;
	const struct bdata *d;
	pthread_t th;
	int kind; /* 0 search, 1 upsert, 2 ping */
	size_t first, count;
	uint64_t *lat;   /* per request */
	uint64_t *found; /* search: nq x k (shared, by query) */
	size_t errors, done;
	int status;
	char msg[256];
	bool exact;
	struct worker *base; /* ws[0]: this worker's index is this - base */
	struct lag *lag;     /* upsert: acknowledgements recorded there */
	shoal *c;
	const struct shoal_point *chunk; /* upsert: the call's points */
};

static void on_search(void *arg, size_t i, int status, const struct shoal_results *r,
		      uint64_t latency_ns)
{
	struct worker *w = arg;
	size_t q = (w->first + i) % w->d->nq;

	w->lat[w->done++] = latency_ns;
	if (status != SHOAL_OK) {
		w->errors++;
		return;
	}
	for (size_t k = 0; k < r->n && k < w->o->k && w->found; k++)
		w->found[q * w->o->k + k] = r->v[k].id + 1;
}

static void on_ping(void *arg, size_t i, int status, uint64_t latency_ns)
{
	struct worker *w = arg;

	w->lat[w->done++] = latency_ns;
	w->errors += status != SHOAL_OK;
}

static int run_search(struct worker *w, shoal *c, bool exact)
{
	struct shoal_search *qs = calloc(w->count + 1, sizeof *qs);
	int rv;

	if (qs == NULL)
		return SHOAL_RESOURCE_EXHAUSTED;
	for (size_t i = 0; i < w->count; i++) {
		size_t q = (w->first + i) % w->d->nq;

		qs[i] = (struct shoal_search){w->d->q + q * w->d->dim,
					      (uint32_t)w->d->dim,
					      (uint32_t)w->o->k,
					      (uint32_t)w->o->ef,
					      NULL,
					      exact ? SHOAL_EXACT : 0};
	}
	rv = shoal_search_pipelined(c, w->o->coll, qs, w->count, w->o->depth, on_search, w);
	free(qs);
	return rv;
}

/* The points of the worker's requests [r, r + nr): request j holds ids
 * (first + j) * k .. + k - 1, vectors taken round the dataset. */
static void fill(const struct worker *w, struct shoal_point *pts, size_t r, size_t nr)
{
	size_t k = w->o->per_request, id0 = (w->first + r) * k;

	for (size_t i = 0; i < nr * k; i++)
		pts[i] = (struct shoal_point){id0 + i, w->d->base + (id0 + i) % w->d->n * w->d->dim,
					      (uint32_t)w->d->dim, NULL, 0};
}

/* Depth 1 without --lag or --duration: one request at a time, each timed. */
static int upsert_each(struct worker *w, shoal *c, struct shoal_point *pts)
{
	int rv = SHOAL_OK;

	for (size_t i = 0; i < w->count && rv == SHOAL_OK; i++) {
		double t0 = ctl_now();

		fill(w, pts, i, 1);
		rv = shoal_upsert(c, w->o->coll, pts, w->o->per_request, NULL);
		if (rv == SHOAL_OK)
			w->lat[w->done++] = (uint64_t)((ctl_now() - t0) * 1e9);
	}
	return rv;
}

/* An upsert request acknowledged: recorded for --lag with one of its
 * points (when replies come out of order, maybe another request's of the
 * same call: a point written all the same). */
static void on_upsert_ack(void *arg, size_t acked)
{
	struct worker *w = arg;
	const struct shoal_point *p =
		w->chunk + (acked - 1) / w->o->per_request * w->o->per_request;

	lag_ack(w->lag, shoal_last_token(w->c), p->id, p->vector);
}

/* Pipelined, in calls of up to CHUNK requests (--duration: of depth
 * requests, so that the run ends soon after it, however slow the
 * acknowledgements), until the worker's requests are done or --duration
 * has passed. */
static int upsert_chunks(struct worker *w, shoal *c, struct shoal_point *pts)
{
	size_t k = w->o->per_request, acked = 0, step = w->o->duration > 0 ? w->o->depth : CHUNK;
	double until = ctl_now() + (w->o->duration > 0 ? w->o->duration : 1e12);
	int rv = SHOAL_OK;

	step = step < CHUNK ? step : CHUNK;
	for (size_t r = 0; r < w->count && rv == SHOAL_OK && ctl_now() < until; r += step) {
		size_t nr = w->count - r < step ? w->count - r : step;
		double t1 = ctl_now();

		fill(w, pts, r, nr);
		acked = 0;
		w->chunk = pts;
		rv = shoal_upsert_pipelined(c, w->o->coll, pts, nr * k, k, w->o->depth,
					    w->lag ? on_upsert_ack : NULL, w, &acked, NULL);
		/* per-request latency is not reported by the pipelined upsert:
		 * the mean of the call, times the depth */
		for (size_t i = 0; i < acked / k; i++)
			w->lat[w->done++] = (uint64_t)((ctl_now() - t1) * 1e9 /
						       (double)(acked / k) * (double)w->o->depth);
	}
	return rv;
}

static int run_upsert(struct worker *w, shoal *c)
{
	struct shoal_point *pts = calloc(CHUNK * w->o->per_request, sizeof *pts);
	int rv;

	if (pts == NULL)
		return SHOAL_RESOURCE_EXHAUSTED;
	w->c = c;
	rv = w->o->depth == 1 && w->lag == NULL && w->o->duration <= 0 ? upsert_each(w, c, pts)
								       : upsert_chunks(w, c, pts);
	free(pts);
	return rv;
}

/* The address list rotated by i: connection i starts at address i mod n,
 * so the connections spread over the nodes given. */
static void rotate_addr(const char *addr, size_t i, char *out, size_t size)
{
	size_t n = 1, skip;
	const char *p = addr;

	for (const char *q = addr; *q; q++)
		n += *q == ',';
	for (skip = i % n; skip > 0; skip--)
		p = strchr(p, ',') + 1;
	if (p == addr)
		snprintf(out, size, "%s", addr);
	else
		snprintf(out, size, "%s,%.*s", p, (int)(p - addr - 1), addr);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char addr[4096];
	shoal *c;
	int rv;

	rotate_addr(w->x->addr, (size_t)(w - w->base), addr, sizeof addr);
	rv = shoal_open(addr, &w->x->o, &c);

	if (rv == SHOAL_OK)
		rv = w->kind == 0   ? run_search(w, c, w->exact)
		     : w->kind == 1 ? run_upsert(w, c)
				    : shoal_ping_pipelined(c, w->count, w->o->depth, on_ping, w);
	w->status = rv;
	if (rv != SHOAL_OK)
		snprintf(w->msg, sizeof w->msg, "%s", shoal_errmsg(c));
	shoal_close(c);
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct(const uint64_t *v, size_t n, double p)
{
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);

	return n ? (double)v[i < n ? i : n - 1] / 1e3 : 0;
}

/* Run `kind` on every worker; returns the elapsed seconds or -1. */
static double run_workers(struct worker *ws, size_t nw)
{
	double t0 = ctl_now();

	for (size_t i = 0; i < nw; i++) {
		ws[i].base = ws;
		pthread_create(&ws[i].th, NULL, worker_main, &ws[i]);
	}
	for (size_t i = 0; i < nw; i++)
		pthread_join(ws[i].th, NULL);
	for (size_t i = 0; i < nw; i++)
		if (ws[i].status != SHOAL_OK) {
			fprintf(stderr, "shoalctl: bench: connection %zu: %s\n", i, ws[i].msg);
			return -1;
		}
	return ctl_now() - t0;
}

static void split(struct worker *ws, size_t nw, size_t total)
{
	for (size_t i = 0, first = 0; i < nw; i++) {
		ws[i].count = total / nw + (i < total % nw);
		ws[i].first = first;
		first += ws[i].count;
		ws[i].lat = calloc(ws[i].count + 1, sizeof *ws[i].lat);
	}
}

/* Exact searches on the server, pipelined: the ground truth. */
static int ground_truth(struct ctl *x, const struct bopts *o, const struct bdata *d,
			uint64_t *truth)
{
	struct worker ws[2] = {0};
	double s;

	for (int i = 0; i < 2; i++)
		ws[i] = (struct worker){.x = x, .o = o, .d = d, .found = truth, .exact = true};
	split(ws, 2, d->nq);
	fprintf(stderr, "bench: ground truth: %zu exact searches on the server...\n", d->nq);
	s = run_workers(ws, 2);
	for (int i = 0; i < 2; i++)
		free(ws[i].lat);
	return s < 0 ? -1 : 0;
}

static double recall(const struct bopts *o, const struct bdata *d, const uint64_t *found)
{
	size_t hit = 0;

	for (size_t q = 0; q < d->nq; q++)
		for (size_t i = 0; i < o->k; i++)
			for (size_t j = 0; j < o->k; j++)
				hit += found[q * o->k + i] != 0 &&
				       found[q * o->k + i] == d->truth[q * o->k + j];
	return (double)hit / (double)(d->nq * o->k);
}

static void report(struct ctl *x, const struct bopts *o, const char *kind, struct worker *ws,
		   size_t nw, double secs, double rec)
{
	size_t n = 0, errors = 0;
	uint64_t *all;

	for (size_t i = 0; i < nw; i++)
		n += ws[i].done, errors += ws[i].errors;
	all = calloc(n + 1, sizeof *all);
	for (size_t i = 0, k = 0; all && i < nw; i++)
		for (size_t j = 0; j < ws[i].done; j++)
			all[k++] = ws[i].lat[j];
	qsort(all, n, sizeof *all, cmp_u64);
	if (x->json) {
		printf("{\"kind\":\"%s\",\"requests\":%zu,\"errors\":%zu,\"seconds\":%.3f,"
		       "\"per_second\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,"
		       "\"concurrency\":%zu,\"depth\":%zu",
		       kind, n, errors, secs, (double)n / secs, pct(all, n, 0.5), pct(all, n, 0.99),
		       pct(all, n, 0.999), o->concurrency, o->depth);
		if (rec >= 0)
			printf(",\"recall\":%.4f,\"k\":%zu,\"ef\":%zu", rec, o->k, o->ef);
		printf("}\n");
	} else {
		printf("%-7s %9zu requests in %7.2f s: %10.0f/s  p50 %8.1f us  p99 %8.1f us  "
		       "p999 %8.1f us  (%zu conns x depth %zu, %zu errors)",
		       kind, n, secs, (double)n / secs, pct(all, n, 0.5), pct(all, n, 0.99),
		       pct(all, n, 0.999), o->concurrency, o->depth, errors);
		if (rec >= 0)
			printf("  recall@%zu %.4f (ef %zu)", o->k, rec, o->ef);
		if (strcmp(kind, "upsert") == 0 && o->per_request > 1)
			printf("  %.0f points/s", (double)(n * o->per_request) / secs);
		putchar('\n');
	}
	free(all);
}

/* ------------------------------------------------------------ options */

static int bench_options(int argc, char **argv, struct bopts *o)
{
	static const struct option opts[] = {{"dataset", 1, NULL, 'd'},
					     {"queries", 1, NULL, 'Q'},
					     {"collection", 1, NULL, 'c'},
					     {"mode", 1, NULL, 'M'},
					     {"n", 1, NULL, 'n'},
					     {"nq", 1, NULL, 'q'},
					     {"requests", 1, NULL, 'r'},
					     {"concurrency", 1, NULL, 'C'},
					     {"depth", 1, NULL, 'D'},
					     {"ef", 1, NULL, 'e'},
					     {"search-ratio", 1, NULL, 's'},
					     {"load", 0, NULL, 'L'},
					     {"no-load", 0, NULL, 'N'},
					     {"no-recall", 0, NULL, 'R'},
					     {"batch", 1, NULL, 'b'},
					     {"per-request", 1, NULL, 'P'},
					     {"metric", 1, NULL, 'm'},
					     {"duration", 1, NULL, 'T'},
					     {"lag", 1, NULL, 'G'},
					     {NULL, 0, NULL, 0}};
	int ch;

	*o = (struct bopts){.dataset = "fashion",
			    .coll = "bench",
			    .mode = "search",
			    .nq = 1000,
			    .concurrency = 4,
			    .depth = 1,
			    .k = 10,
			    .ef = 64,
			    .batch = 256,
			    .per_request = 1,
			    .search_ratio = 0.9,
			    .recall = true,
			    .metric = SHOAL_METRIC_L2};
	optind = 1;
	while ((ch = getopt_long(argc, argv, "k:", opts, NULL)) != -1) {
		switch (ch) {
		case 'd': o->dataset = optarg; break;
		case 'Q': o->queries = optarg; break;
		case 'c': o->coll = optarg; break;
		case 'M': o->mode = optarg; break;
		case 'n': o->n = strtoull(optarg, NULL, 10); break;
		case 'q': o->nq = strtoull(optarg, NULL, 10); break;
		case 'r': o->requests = strtoull(optarg, NULL, 10); break;
		case 'C': o->concurrency = strtoull(optarg, NULL, 10); break;
		case 'D': o->depth = strtoull(optarg, NULL, 10); break;
		case 'e': o->ef = strtoull(optarg, NULL, 10); break;
		case 'k': o->k = strtoull(optarg, NULL, 10); break;
		case 'b': o->batch = strtoull(optarg, NULL, 10); break;
		case 'P': o->per_request = strtoull(optarg, NULL, 10); break;
		case 's': o->search_ratio = strtod(optarg, NULL); break;
		case 'T': o->duration = strtod(optarg, NULL); break;
		case 'G': o->lag = optarg; break;
		case 'L': o->load = 1; break;
		case 'N': o->load = -1; break;
		case 'R': o->recall = false; break;
		case 'm':
			o->metric = strcmp(optarg, "cosine") == 0 ? SHOAL_METRIC_COSINE
				    : strcmp(optarg, "dot") == 0  ? SHOAL_METRIC_DOT
								  : SHOAL_METRIC_L2;
			break;
		default: return -1;
		}
	}
	if (o->concurrency < 1 || o->depth < 1 || o->k < 1 || o->nq < 1 || o->batch < 1 ||
	    o->per_request < 1 || o->per_request > 100000 ||
	    !(o->duration >= 0 && o->duration <= 86400) ||
	    ((o->lag != NULL || o->duration > 0) && strcmp(o->mode, "upsert") != 0) ||
	    (strcmp(o->mode, "search") && strcmp(o->mode, "upsert") && strcmp(o->mode, "ping") &&
	     strcmp(o->mode, "mix"))) {
		fprintf(stderr, "shoalctl: bench: bad options (see shoalctl(1), BENCH)\n");
		return -1;
	}
	if (o->requests == 0)
		o->requests = strcmp(o->mode, "ping") == 0 ? 200000 : o->nq;
	return 0;
}

static int bench_ping(struct ctl *x, const struct bopts *o)
{
	struct worker *ws = calloc(o->concurrency, sizeof *ws);
	double s;

	for (size_t i = 0; i < o->concurrency; i++)
		ws[i] = (struct worker){.x = x, .o = o, .kind = 2};
	split(ws, o->concurrency, o->requests);
	s = run_workers(ws, o->concurrency);
	if (s > 0)
		report(x, o, "ping", ws, o->concurrency, s, -1);
	for (size_t i = 0; i < o->concurrency; i++)
		free(ws[i].lat);
	free(ws);
	return s > 0 ? 0 : EXIT_FAILED;
}

static int bench_data(struct ctl *x, const struct bopts *o, struct bdata *d)
{
	size_t nsearch = o->concurrency, nup = 0;
	struct worker *ws = calloc(o->concurrency, sizeof *ws);
	uint64_t *found = NULL;
	struct lag *lag = NULL;
	double s, rec = -1;

	if (strcmp(o->mode, "upsert") == 0)
		nup = o->concurrency, nsearch = 0;
	else if (strcmp(o->mode, "mix") == 0)
		nsearch = (size_t)lround(o->search_ratio * (double)o->concurrency),
		nup = o->concurrency - nsearch;
	if (nsearch > 0 && o->recall) {
		d->truth = calloc(d->nq * o->k, sizeof *d->truth);
		found = calloc(d->nq * o->k, sizeof *found);
		if (ground_truth(x, o, d, d->truth) != 0)
			return EXIT_FAILED;
	}
	if (o->lag != NULL && (lag = lag_start(o->lag, &x->o, o->coll, (uint32_t)d->dim)) == NULL)
		return EXIT_FAILED;
	for (size_t i = 0; i < o->concurrency; i++)
		ws[i] = (struct worker){.x = x,
					.o = o,
					.d = d,
					.kind = i < nsearch ? 0 : 1,
					.found = found,
					.lag = lag};
	split(ws, nsearch, nsearch ? o->requests : 0);
	split(ws + nsearch, nup, nup ? o->requests : 0);
	s = run_workers(ws, o->concurrency);
	if (lag != NULL && lag_finish(lag, x->json, s > 0, 600) != 0)
		s = -1;
	if (s > 0 && found != NULL)
		rec = recall(o, d, found);
	if (s > 0 && nsearch > 0)
		report(x, o, "search", ws, nsearch, s, rec);
	if (s > 0 && nup > 0)
		report(x, o, "upsert", ws + nsearch, nup, s, -1);
	for (size_t i = 0; i < o->concurrency; i++)
		free(ws[i].lat);
	free(ws);
	free(found);
	return s > 0 ? 0 : EXIT_FAILED;
}

int cmd_bench(struct ctl *x, int argc, char **argv)
{
	struct bopts o;
	struct bdata d = {0};
	int rv;

	if (bench_options(argc, argv, &o) != 0)
		return EXIT_USAGE;
	if ((rv = ctl_connect(x)) != SHOAL_OK)
		return ctl_fail(x, rv, "bench");
	if (strcmp(o.mode, "ping") == 0)
		return bench_ping(x, &o);
	if (load_data(&o, &d) != 0)
		return EXIT_USAGE;
	fprintf(stderr, "bench: %s: %zu points, %zu queries, %zu dimensions\n", o.dataset, d.n,
		d.nq, d.dim);
	if ((rv = load_collection(x, &o, &d)) != SHOAL_OK)
		rv = ctl_fail(x, rv, "bench: loading");
	else
		rv = bench_data(x, &o, &d);
	free(d.base);
	free(d.q);
	free(d.truth);
	return rv;
}
