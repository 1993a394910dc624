/*
 * shoalctl bench --lag: the searchable lag of acknowledged writes, per
 * replica (doc/shoalctl.1, "BENCH"; doc/write-path.md).
 *
 * The upsert workers record every acknowledgement: when it arrived and the
 * highest log index acknowledged so far on that connection (so at least
 * the acknowledged entry's), and a point of the request.  One probe thread
 * per replica reads that replica at `eventual` about once a millisecond: a
 * get, whose reply tells the replica's applied index, and every 50th time
 * a search (k 10) for a vector of the run, timed: search latency during
 * the backlog.  A replica's lag for an acknowledgement is the time from it
 * until the first probe reply showing an applied index at or above its
 * index (an upper bound: the reply's arrival; 0 if a reply before the
 * acknowledgement showed it).  A read on a replica sees exactly its
 * applied state (doc/write-path.md, "Searches"; t/write_path.c), so that
 * is when the point became searchable there.
 *
 * At the end, once every replica has applied every acknowledged write,
 * each is asked for every recorded point at `eventual`: one missing fails
 * the run.
 */
#include "build.h"

#include "client/shoalctl.h"
#include "client/shoalctl_lag.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROBE_PAUSE_NS 1000000 /* between two probes of one replica */
#define SEARCH_EVERY   50      /* probes per timed search */
#define MAX_SEARCHES   100000

struct lag_ack {
	double t;
	uint64_t index, id;
	const float *vec;
};

struct lag_sample {
	double t;
	uint64_t applied;
};

struct lag_probe {
	struct lag *l;
	char addr[256];
	pthread_t th;
	struct lag_sample *s;
	size_t n, cap;
	size_t gets, searches, missing;
	double search_s[MAX_SEARCHES]; /* latencies of the timed searches */
	int status;
	char msg[256];
};

struct lag {
	pthread_mutex_t mu;
	struct lag_ack *acks;
	size_t n, cap;
	bool failed; /* out of memory recording */
	const char *coll;
	uint32_t dim;
	struct shoal_options o;
	double stop_at; /* probes stop then, or once `until` is applied */
	uint64_t until; /* 0 while the writes run */
	struct lag_probe *p;
	size_t np;
};

void lag_ack(struct lag *l, struct shoal_token tok, uint64_t id, const float *vec)
{
	pthread_mutex_lock(&l->mu);
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4096;
		struct lag_ack *a = realloc(l->acks, cap * sizeof *a);

		if (a == NULL) {
			l->failed = true;
			pthread_mutex_unlock(&l->mu);
			return;
		}
		l->acks = a, l->cap = cap;
	}
	l->acks[l->n++] = (struct lag_ack){ctl_now(), tok.index, id, vec};
	pthread_mutex_unlock(&l->mu);
}

static bool newest(struct lag *l, struct lag_ack *out, uint64_t *until, double *stop_at)
{
	bool any;

	pthread_mutex_lock(&l->mu);
	any = l->n > 0;
	if (any)
		*out = l->acks[l->n - 1];
	*until = l->until;
	*stop_at = l->stop_at;
	pthread_mutex_unlock(&l->mu);
	return any;
}

static int record(struct lag_probe *p, uint64_t applied)
{
	if (p->n > 0 && p->s[p->n - 1].applied >= applied)
		return 0;
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 4096;
		struct lag_sample *s = realloc(p->s, cap * sizeof *s);

		if (s == NULL)
			return -1;
		p->s = s, p->cap = cap;
	}
	p->s[p->n++] = (struct lag_sample){ctl_now(), applied};
	return 0;
}

/* One probe: a get of a's point, and every SEARCH_EVERY-th time a search
 * for its vector, timed. */
static int probe_once(struct lag_probe *p, shoal *c, const struct lag_ack *a)
{
	struct shoal_results r = {0};
	double t0 = ctl_now();
	int rv;

	if (++p->gets % SEARCH_EVERY == 0) {
		struct shoal_search q = {a->vec, p->l->dim, 10, 0, NULL, 0};

		rv = shoal_search(c, p->l->coll, &q, &r);
		if (rv == SHOAL_OK && p->searches < MAX_SEARCHES)
			p->search_s[p->searches++] = ctl_now() - t0;
	} else {
		rv = shoal_get(c, p->l->coll, &a->id, 1, 0, &r);
	}
	shoal_results_free(&r);
	if (rv != SHOAL_OK)
		return rv;
	return record(p, shoal_read_state(c).applied_index) == 0 ? SHOAL_OK
								 : SHOAL_RESOURCE_EXHAUSTED;
}

static void *probe_main(void *arg)
{
	struct lag_probe *p = arg;
	struct timespec pause = {0, PROBE_PAUSE_NS};
	struct lag_ack a;
	uint64_t until;
	double stop_at;
	shoal *c;

	p->status = shoal_open(p->addr, &p->l->o, &c);
	if (p->status == SHOAL_OK)
		shoal_set_consistency(c, SHOAL_CONSISTENCY_EVENTUAL);
	while (p->status == SHOAL_OK) {
		bool any = newest(p->l, &a, &until, &stop_at);

		if (until != 0 &&
		    ((p->n > 0 && p->s[p->n - 1].applied >= until) || ctl_now() > stop_at))
			break;
		if (any)
			p->status = probe_once(p, c, &a);
		nanosleep(&pause, NULL);
	}
	if (p->status != SHOAL_OK && c != NULL)
		snprintf(p->msg, sizeof p->msg, "%s", shoal_errmsg(c));
	shoal_close(c);
	return NULL;
}

struct lag *lag_start(const char *addrs, const struct shoal_options *o, const char *coll,
		      uint32_t dim)
{
	struct lag *l = calloc(1, sizeof *l);
	size_t np = 1;

	for (const char *q = addrs; *q; q++)
		np += *q == ',';
	if (l == NULL || (l->p = calloc(np, sizeof *l->p)) == NULL) {
		free(l);
		return NULL;
	}
	pthread_mutex_init(&l->mu, NULL);
	l->coll = coll, l->dim = dim, l->o = *o, l->np = np;
	for (size_t i = 0; i < np; i++) {
		size_t len = strcspn(addrs, ",");

		l->p[i].l = l;
		snprintf(l->p[i].addr, sizeof l->p[i].addr, "%.*s", (int)len, addrs);
		addrs += len + (addrs[len] == ',');
		pthread_create(&l->p[i].th, NULL, probe_main, &l->p[i]);
	}
	return l;
}

/* The lag of ack a on probe p in seconds, or -1 if never seen applied. */
static double lag_of(const struct lag_probe *p, const struct lag_ack *a)
{
	size_t lo = 0, hi = p->n;

	while (lo < hi) { /* the first sample with applied >= a->index */
		size_t mid = (lo + hi) / 2;

		if (p->s[mid].applied >= a->index)
			hi = mid;
		else
			lo = mid + 1;
	}
	if (lo == p->n)
		return -1;
	return p->s[lo].t > a->t ? p->s[lo].t - a->t : 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double at(const double *v, size_t n, double q)
{
	size_t i = (size_t)(q * (double)(n - 1) + 0.5);

	return n ? v[i < n ? i : n - 1] * 1e3 : 0;
}

/* p99 of the lags of acks [from, to) on p, in ms. */
static double p99_of(const struct lag *l, const struct lag_probe *p, size_t from, size_t to,
		     double *v)
{
	size_t k = 0;

	for (size_t i = from; i < to; i++) {
		double d = lag_of(p, &l->acks[i]);

		if (d >= 0)
			v[k++] = d;
	}
	qsort(v, k, sizeof *v, cmp_double);
	return at(v, k, 0.99);
}

/* How many of the recorded points replica p lacks, read at eventual in
 * gets of up to 1,000 ids; -1 if it could not be asked. */
static long missing_on(const struct lag *l, const struct lag_probe *p)
{
	uint64_t ids[1000];
	long missing = 0;
	shoal *c;
	int rv = shoal_open(p->addr, &l->o, &c);

	if (rv == SHOAL_OK)
		shoal_set_consistency(c, SHOAL_CONSISTENCY_EVENTUAL);
	for (size_t i = 0; rv == SHOAL_OK && i < l->n; i += 1000) {
		struct shoal_results r = {0};
		size_t k = l->n - i < 1000 ? l->n - i : 1000;

		for (size_t j = 0; j < k; j++)
			ids[j] = l->acks[i + j].id;
		if ((rv = shoal_get(c, l->coll, ids, k, 0, &r)) == SHOAL_OK)
			missing += (long)(k - r.n);
		shoal_results_free(&r);
	}
	if (rv != SHOAL_OK)
		fprintf(stderr, "shoalctl: bench: lag: reading back from %s: %s\n", p->addr,
			c != NULL ? shoal_errmsg(c) : "out of memory");
	shoal_close(c);
	return rv == SHOAL_OK ? missing : -1;
}

static void report_probe(const struct lag *l, struct lag_probe *p, bool json, double *v,
			 long missing)
{
	size_t k = 0, unseen = 0;
	double first = p99_of(l, p, 0, l->n / 2, v), second = p99_of(l, p, l->n / 2, l->n, v);
	double s50, s99;

	qsort(p->search_s, p->searches, sizeof *p->search_s, cmp_double);
	s50 = at(p->search_s, p->searches, 0.5), s99 = at(p->search_s, p->searches, 0.99);
	for (size_t i = 0; i < l->n; i++) {
		double d = lag_of(p, &l->acks[i]);

		if (d < 0)
			unseen++;
		else
			v[k++] = d;
	}
	qsort(v, k, sizeof *v, cmp_double);
	if (json)
		printf("{\"kind\":\"lag\",\"replica\":\"%s\",\"acks\":%zu,\"unseen\":%zu,"
		       "\"p50_ms\":%.1f,\"p99_ms\":%.1f,\"max_ms\":%.1f,\"p99_first_half_ms\":%.1f,"
		       "\"p99_second_half_ms\":%.1f,\"probes\":%zu,\"searches\":%zu,"
		       "\"search_p50_ms\":%.2f,\"search_p99_ms\":%.2f,\"missing\":%ld}\n",
		       p->addr, l->n, unseen, at(v, k, 0.5), at(v, k, 0.99), at(v, k, 1), first,
		       second, p->gets, p->searches, s50, s99, missing);
	else
		printf("lag     %-21s searchable after an ack: p50 %7.1f ms  p99 %7.1f ms  max "
		       "%7.1f ms  (p99 first half %.1f, second half %.1f; %zu acks, %zu never "
		       "applied; %zu probes; searches meanwhile p50 %.2f ms p99 %.2f ms; "
		       "%ld points missing at the end)\n",
		       p->addr, at(v, k, 0.5), at(v, k, 0.99), at(v, k, 1), first, second, l->n,
		       unseen, p->gets, s50, s99, missing);
}

/* Stop the probes once every replica has applied every acknowledged write
 * (at most timeout_s). */
static void stop_probes(struct lag *l, double timeout_s)
{
	pthread_mutex_lock(&l->mu);
	for (size_t i = 0; i < l->n; i++)
		l->until = l->acks[i].index > l->until ? l->acks[i].index : l->until;
	l->until += l->until == 0; /* no ack: stop at once */
	l->stop_at = ctl_now() + timeout_s;
	pthread_mutex_unlock(&l->mu);
	for (size_t i = 0; i < l->np; i++)
		pthread_join(l->p[i].th, NULL);
}

int lag_finish(struct lag *l, bool json, bool verify, double timeout_s)
{
	double *v = calloc(l->n + 1, sizeof *v);
	int rv = l->failed || v == NULL ? -1 : 0;

	stop_probes(l, timeout_s);
	if (rv != 0)
		fprintf(stderr, "shoalctl: bench: lag: out of memory recording\n");
	for (size_t i = 0; i < l->np && v != NULL; i++) {
		struct lag_probe *p = &l->p[i];
		long missing = verify && p->status == SHOAL_OK ? missing_on(l, p) : 0;

		if (p->status != SHOAL_OK)
			fprintf(stderr, "shoalctl: bench: lag probe of %s: %s\n", p->addr, p->msg);
		else
			report_probe(l, p, json, v, missing);
		if (missing > 0)
			fprintf(stderr,
				"shoalctl: bench: lag: %ld acknowledged points missing on %s\n",
				missing, p->addr);
		rv = p->status != SHOAL_OK || missing != 0 ? -1 : rv;
	}
	for (size_t i = 0; i < l->np; i++)
		free(l->p[i].s);
	free(v);
	free(l->acks);
	free(l->p);
	pthread_mutex_destroy(&l->mu);
	free(l);
	return rv;
}
