/*
 * collection_fresh: what the fresh set changes in a collection
 * (doc/write-path.md) — searches over the graph and the fresh set, the
 * indexer's step that moves fresh entries into the graph, and the
 * counters behind the status and the metrics.
 *
 * A search registers (search_enter), searches the graph hiding every id
 * with a fresh entry (looked up under fresh_lock, one at a time), then
 * scans the fresh set in chunks (fresh_lock per chunk).  The indexer
 * removes entries it wrote into the graph only after every search that
 * was running when it wrote them has ended (a grace period): a search
 * that hid a point from the graph finds it in the fresh set, a point is
 * found as one version or the other, never neither; and entries do not
 * move under a chunked scan.  The step writes under graph_lock, the
 * graph's one writer.
 */
#include "build.h"

#include "storage/collection_impl.h"

#include "util/alloc.h"
#include "util/clock.h"
#include "util/thread.h"

#include <inttypes.h>
#include <string.h>
#include <unistd.h>

/* Fresh entries a search scans per hold of fresh_lock */
#define SCAN_CHUNK 4096

/* Fewer new points than this go in one by one: hnsw_build ends with a
 * walk of the whole level-0 graph (hnsw_reach.c), worth it for a batch. */
#define BUILD_MIN      256
#define RATE_WINDOW_MS 1000  /* the indexing rate's window, at least */
#define RATE_STALE_MS  10000 /* no window closed for this long: rate 0 */

static struct coll *mut(const struct coll *c)
{
	return (struct coll *)(uintptr_t)c;
}

int coll__vector(const struct coll *c, uint64_t id, float *vec)
{
	struct fresh_entry e;
	uint32_t pos = fresh_find(c->fresh, id);

	if (pos == FRESH_NONE) /* the indexer changes no graph point without an entry */
		return hnsw_get(c->h, id, vec);
	fresh_at(c->fresh, pos, &e, vec);
	return e.tomb ? SH_ENOTFOUND : 0; /* stored prepared, as in the graph */
}

/* ------------------------------------------------------------ searches */

struct hide {
	const struct coll *c;
	uint64_t gen; /* the search's */
	hnsw_filter_fn filter;
	void *arg;
};

/* The graph's results: ids without a fresh entry (newer or deleted there)
 * that the caller's filter accepts. */
static bool visible(uint64_t id, void *arg)
{
	const struct hide *h = arg;
	bool fresh;

	pthread_rwlock_rdlock(&mut(h->c)->fresh_lock);
	fresh = fresh_hides(h->c->fresh, id, h->gen);
	pthread_rwlock_unlock(&mut(h->c)->fresh_lock);
	return !fresh && (h->filter == NULL || h->filter(id, h->arg));
}

/* A search registers with the current generation (its fresh_mark view). */
static uint64_t search_enter(const struct coll *c)
{
	struct coll *m = mut(c);

	for (;;) {
		uint64_t g = atomic_load(&m->search_gen);

		atomic_fetch_add(&m->searching[g & 1], 1);
		if (atomic_load(&m->search_gen) == g)
			return g;
		atomic_fetch_sub(&m->searching[g & 1], 1); /* the indexer moved on */
	}
}

static void search_exit(const struct coll *c, uint64_t gen)
{
	atomic_fetch_sub(&mut(c)->searching[gen & 1], 1);
}

static bool has_id(const struct hnsw_result *r, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (r[i].id == id)
			return true;
	return false;
}

/* a[0..na) (the graph's) and b[0..nb) (the fresh set's), each nearest
 * first, into a: the k nearest.  An id in both (written while the search
 * ran) is taken from b, the newer. */
static int merge(struct hnsw_result *a, size_t *na, const struct hnsw_result *b, size_t nb,
		 size_t k)
{
	struct hnsw_result *m = sh_malloc((k ? k : 1) * sizeof *m);
	size_t i = 0, j = 0, n = 0;

	if (m == NULL)
		return SH_ENOMEM;
	while (n < k && (i < *na || j < nb)) {
		bool take_a = j == nb ||
			      (i < *na && (a[i].distance < b[j].distance ||
					   (a[i].distance == b[j].distance && a[i].id < b[j].id)));

		if (take_a && has_id(b, nb, a[i].id)) {
			i++;
			continue;
		}
		m[n++] = take_a ? a[i++] : b[j++];
	}
	memcpy(a, m, n * sizeof *m);
	*na = n;
	sh_free(m);
	return 0;
}

static int graph_search(const struct coll *c, const float *query, size_t k, size_t ef, bool exact,
			hnsw_filter_fn filter, void *arg, struct hnsw_result *out, size_t *n,
			struct sh_err *err)
{
	if (exact)
		return hnsw_search_exact(c->h, query, k, filter, arg, out, n, err);
	return hnsw_search(c->h, query, k, ef, filter, arg, out, n, err);
}

/* The fresh set's k nearest into fr, a chunk at a time. */
static int scan_fresh(const struct coll *c, const float *query, size_t k, bool exact, uint64_t gen,
		      hnsw_filter_fn filter, void *arg, struct hnsw_result *fr, size_t *nf)
{
	struct coll *m = mut(c);
	struct fresh_query *fq;
	uint32_t end = UINT32_MAX;
	int rv;

	pthread_rwlock_rdlock(&m->fresh_lock);
	rv = fresh_query_new(c->fresh, query, k, exact, gen, &fq);
	pthread_rwlock_unlock(&m->fresh_lock);
	if (rv != 0)
		return rv;
	do {
		pthread_rwlock_rdlock(&m->fresh_lock);
		end = fresh_query_scan(fq, c->fresh, end, SCAN_CHUNK, filter, arg);
		if (end == 0)
			fresh_query_finish(fq, c->fresh, fr, nf);
		pthread_rwlock_unlock(&m->fresh_lock);
	} while (end > 0);
	fresh_query_free(fq);
	return 0;
}

/* The graph, hiding what the fresh set holds, and the fresh set; the
 * search is registered with its generation throughout, so that the
 * indexer keeps every fresh entry it hides until it is done. */
static int both(const struct coll *c, const float *query, size_t k, size_t ef, bool exact,
		hnsw_filter_fn filter, void *arg, struct hnsw_result *out, size_t *n,
		struct sh_err *err)
{
	uint64_t gen = search_enter(c);
	struct hide h = {c, gen, filter, arg};
	struct hnsw_result *fr = NULL;
	size_t nf = 0;
	int rv = graph_search(c, query, k, ef, exact, visible, &h, out, n, err);

	if (rv == 0 && ((fr = sh_malloc(k * sizeof *fr)) == NULL ||
			scan_fresh(c, query, k, exact, gen, filter, arg, fr, &nf) != 0 ||
			merge(out, n, fr, nf, k) != 0))
		rv = sh_err_set(err, SH_ENOMEM, "out of memory");
	sh_free(fr);
	search_exit(c, gen);
	return rv;
}

int coll_search_filter(const struct coll *c, const float *query, size_t k, size_t ef, bool exact,
		       hnsw_filter_fn filter, void *arg, struct hnsw_result *out, size_t *n,
		       struct sh_err *err)
{
	/* an empty fresh set has nothing to hide nor to lose: the graph
	 * alone, unregistered (a point written meanwhile is concurrent with
	 * this search, which may or may not see it) */
	if (atomic_load(&c->fresh_n) == 0)
		return graph_search(c, query, k, ef, exact, filter, arg, out, n, err);
	return both(c, query, k, ef, exact, filter, arg, out, n, err);
}

int coll_search(const struct coll *c, const float *query, size_t k, size_t ef, bool exact,
		struct hnsw_result *out, size_t *n, struct sh_err *err)
{
	return coll_search_filter(c, query, k, ef, exact, NULL, NULL, out, n, err);
}

/* ------------------------------------------------------------ indexing */

struct batch {
	size_t n, nb;          /* entries taken; of which new ids to build */
	struct fresh_entry *e; /* n */
	float *vecs;           /* n * dim */
	bool *done;            /* n: written into the graph */
	uint64_t *bids;        /* nb: new ids ... */
	float *bvecs;          /* ... and their vectors */
	size_t *bat;           /* ... and their place in e */
};

static void batch_free(struct batch *b)
{
	sh_free(b->e);
	sh_free(b->vecs);
	sh_free(b->done);
	sh_free(b->bids);
	sh_free(b->bvecs);
	sh_free(b->bat);
}

/* Copy up to max entries out of the fresh set (fresh_take: round the set,
 * so that none waits for ever under a steady stream of writes). */
static int take(struct coll *c, size_t max, struct batch *b)
{
	size_t dim = c->p.dim;

	pthread_rwlock_rdlock(&c->fresh_lock); /* fresh_take's cursor is the indexer's */
	b->n = fresh_count(c->fresh) < max ? fresh_count(c->fresh) : max;
	b->e = sh_malloc((b->n + 1) * sizeof *b->e);
	b->vecs = sh_malloc((b->n * dim + 1) * sizeof *b->vecs);
	b->done = sh_calloc(b->n + 1, sizeof *b->done);
	b->bids = sh_malloc((b->n + 1) * sizeof *b->bids);
	b->bvecs = sh_malloc((b->n * dim + 1) * sizeof *b->bvecs);
	b->bat = sh_malloc((b->n + 1) * sizeof *b->bat);
	if (b->e && b->vecs && b->done && b->bids && b->bvecs && b->bat)
		fresh_take(c->fresh, b->n, b->e, b->vecs);
	pthread_rwlock_unlock(&c->fresh_lock);
	if (b->e && b->vecs && b->done && b->bids && b->bvecs && b->bat)
		return 0;
	b->n = 0;
	return SH_ENOMEM;
}

/* Deletions and updates one by one; new ids gathered for a build.  A
 * snapshot that wants the graph (c->hold) or *yield ends the step early:
 * what is left stays fresh. */
static int write_each(struct coll *c, struct batch *b, bool gather, const _Atomic bool *yield,
		      struct sh_err *err)
{
	size_t dim = c->p.dim;

	for (size_t i = 0;
	     i < b->n && !atomic_load(&c->hold) && (yield == NULL || !atomic_load(yield)); i++) {
		const float *v = b->vecs + i * dim;
		int rv;

		if (b->e[i].tomb) {
			rv = hnsw_delete(c->h, b->e[i].id);
			rv = rv == SH_ENOTFOUND ? 0 : rv;
		} else if (gather && !hnsw_contains(c->h, b->e[i].id)) {
			b->bids[b->nb] = b->e[i].id;
			memcpy(b->bvecs + b->nb * dim, v, dim * sizeof *v);
			b->bat[b->nb++] = i;
			continue;
		} else {
			rv = hnsw_upsert_prepared(c->h, b->e[i].id, v, err);
		}
		if (rv != 0)
			return sh_err_set(err, rv, "point %" PRIu64 ": %s", b->e[i].id,
					  sh_strerror(rv));
		b->done[i] = true;
		sh_thread_give_way(); /* the indexer's thread (util/thread.h) */
	}
	return 0;
}

static size_t release(struct coll *c, struct batch *b)
{
	size_t removed = 0, left = 0;

	pthread_rwlock_wrlock(&c->fresh_lock);
	for (size_t i = 0; i < b->n; i++)
		if (b->done[i])
			removed += fresh_remove_if(c->fresh, b->e[i].id, b->e[i].seq);
		else
			left++;
	fresh_rewind(c->fresh, left); /* a step cut short: those first next time */
	coll__fresh_sizes(c);
	pthread_rwlock_unlock(&c->fresh_lock);
	return removed;
}

/* The entries the step wrote into the graph count as indexed from the
 * next generation on; wait until the searches of this one (which may have
 * hidden them from the graph) have ended, then they may go. */
static void grace(struct coll *c, const struct batch *b)
{
	uint64_t g;

	pthread_rwlock_wrlock(&c->fresh_lock);
	g = atomic_load(&c->search_gen);
	for (size_t i = 0; i < b->n; i++)
		if (b->done[i])
			fresh_mark(c->fresh, b->e[i].id, b->e[i].seq, g + 1);
	atomic_store(&c->search_gen, g + 1);
	pthread_rwlock_unlock(&c->fresh_lock);
	while (atomic_load(&c->searching[g & 1]) != 0)
		usleep(200);
}

/* graph_lock held: close the rate's window once it is RATE_WINDOW_MS long. */
static void note_rate(struct coll *c)
{
	uint64_t now = sh_clock_mono_ms(), total = atomic_load(&c->indexed_total);

	if (c->rate_t0_ms != 0 && now - c->rate_t0_ms < RATE_WINDOW_MS)
		return;
	if (c->rate_t0_ms != 0) {
		atomic_store(&c->rate_per_s,
			     (total - c->rate_total0) * 1000 / (now - c->rate_t0_ms));
		atomic_store(&c->rate_at_ms, now);
	}
	c->rate_t0_ms = now, c->rate_total0 = total;
}

/* Enough new ids in the batch for one hnsw_build on several threads? */
static bool worth_building(const struct coll *c, const struct batch *b, unsigned threads)
{
	size_t fresh_ids = 0;

	for (size_t i = 0; i < b->n && threads > 1; i++)
		fresh_ids += !b->e[i].tomb && !hnsw_contains(c->h, b->e[i].id);
	return fresh_ids >= BUILD_MIN;
}

int coll_index(struct coll *c, size_t max, unsigned threads, const _Atomic bool *yield,
	       size_t *indexed, struct sh_err *err)
{
	struct batch b = {0};
	size_t built;
	int rv;

	*indexed = 0;
	if (yield != NULL && atomic_load(yield))
		return 0; /* nothing copied for a step that would end at once */
	pthread_mutex_lock(&c->graph_lock);
	if ((rv = take(c, max, &b)) != 0) {
		sh_err_set(err, rv, "out of memory");
	} else if ((rv = write_each(c, &b, worth_building(c, &b, threads), yield, err)) == 0 &&
		   b.nb > 0 && (yield == NULL || !atomic_load(yield)) &&
		   (rv = hnsw_build_prepared(c->h, b.bids, b.bvecs, b.nb, threads, &c->hold, yield,
					     &built, err)) == 0) {
		for (size_t i = 0; i < built; i++)
			b.done[b.bat[i]] = true;
	}
	atomic_store(&c->graph_bytes, hnsw_memory(c->h)); /* coll_memory's (the graph's writer) */
	pthread_mutex_unlock(&c->graph_lock);
	/* what reached the graph leaves the fresh set, even after an error,
	 * once the searches that might have hidden it from the graph ended */
	grace(c, &b);
	*indexed = release(c, &b);
	atomic_fetch_add(&c->indexed_total, *indexed);
	pthread_mutex_lock(&c->graph_lock); /* the window's fields are the graph writer's */
	note_rate(c);
	pthread_mutex_unlock(&c->graph_lock);
	batch_free(&b);
	if (rv != 0)
		return sh_err_wrap(err, rv, "collection '%s': indexing", c->p.name);
	return 0;
}

void coll_retire(struct coll *c)
{
	atomic_store(&c->retired, true);
}

bool coll_retired(const struct coll *c)
{
	return atomic_load(&c->retired);
}

size_t coll_fresh(const struct coll *c)
{
	return atomic_load(&c->fresh_n);
}

size_t coll_fresh_bytes(const struct coll *c)
{
	return atomic_load(&c->fresh_bytes);
}

void coll_index_stats(const struct coll *c, struct coll_index_stats *st)
{
	uint64_t oldest;

	pthread_rwlock_rdlock(&mut(c)->fresh_lock);
	st->fresh = fresh_count(c->fresh) - fresh_tombstones(c->fresh);
	st->tombstones = fresh_tombstones(c->fresh);
	st->fresh_bytes = fresh_used_bytes(c->fresh);
	oldest = fresh_oldest_ms(c->fresh);
	pthread_rwlock_unlock(&mut(c)->fresh_lock);
	st->points = coll_count(c);
	st->indexed = st->points > st->fresh ? st->points - st->fresh : 0;
	st->oldest_fresh_ms = oldest == 0 ? 0 : sh_clock_mono_ms() - oldest;
	st->indexed_total = atomic_load(&c->indexed_total);
	/* a window not closed for RATE_STALE_MS: the indexer has been idle */
	st->indexing_rate = sh_clock_mono_ms() - atomic_load(&c->rate_at_ms) > RATE_STALE_MS
				    ? 0
				    : atomic_load(&c->rate_per_s);
}
