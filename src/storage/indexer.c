/*
 * indexer: see indexer.h.
 *
 * One thread, at nice 10 (below everything else the node does) and
 * giving the CPU way after each point (sh_thread_give_way), takes
 * collections from a FIFO queue and runs one step
 * (coll_index, up to INDEXER_BATCH entries) at a time, putting the
 * collection back at the end while it has more: collections take turns.
 * hnsw_build spreads a step's new points over `threads` threads.  `mu`
 * guards the queue and the counters; `work` wakes the thread, `progress`
 * the apply thread waiting in indexer_throttle.
 *
 * Deferring to apply.  Nice 10 does not keep the indexer off the cores: on
 * two cores shared by three nodes, the indexers took a fifth to a quarter
 * of the CPU during a burst of writes while each node's apply thread
 * waited ~500 ms of 760 on the run queue, so that followers made points
 * searchable up to 300 ms after their acknowledgement (doc/benchmarks.md).
 * So while apply has entries to apply, and for APPLY_QUIET_MS after, a
 * step does not start, and a running one ends at its next point
 * (apply_busy is coll_index's yield flag) — as long as the collection's
 * fresh set is under half its bound and its oldest entry younger than
 * DEFER_MAX_AGE_MS.  Past either, indexing runs whatever apply does: the
 * bound (where apply waits for the indexer) is never reached by deferring,
 * and no point stays out of the graph for long because writes go on.
 */
#include "build.h"

#include "storage/indexer.h"

#include "util/alloc.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/thread.h"

#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RETRY_MS         100  /* after a failed step (out of memory) */
#define INDEXER_NICE     10   /* the indexer's threads' nice value (Linux: per thread) */
#define SLACK_DIV        4    /* a follower's bound: max_fresh_bytes * (1 + 1/SLACK_DIV) */
#define DEFER_MAX_AGE_MS 1000 /* a step defers to apply while the oldest fresh entry is younger */
#define APPLY_QUIET_MS   20   /* ... and until apply has been idle this long */
#define DEFER_POLL_MS    5

struct item {
	struct coll *c;
	struct item *next;
};

struct indexer {
	struct indexer_opts o;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t work, progress;
	struct item *head, *tail;
	bool stop;
	bool follower; /* apply waits at the bound plus its slack */
	struct indexer_stats st;
	_Atomic bool apply_busy;        /* set by apply (indexer_apply_busy) */
	_Atomic uint64_t apply_idle_ms; /* when it last went idle */
	struct coll *defer_c;           /* mu: the collection of the next step, */
	uint64_t defer_oldest_ms;       /* its oldest fresh entry's time, */
	uint64_t wait_t0_ms;            /* since when that step waits (0: not) */
};

static bool queued(const struct indexer *ix, const struct coll *c)
{
	for (const struct item *i = ix->head; i != NULL; i = i->next)
		if (i->c == c)
			return true;
	return false;
}

/* mu held.  Takes over the reference held by `it`'s caller. */
static void push(struct indexer *ix, struct item *it)
{
	it->next = NULL;
	if (ix->tail != NULL)
		ix->tail->next = it;
	else
		ix->head = it;
	ix->tail = it;
	ix->st.queued++;
	pthread_cond_signal(&ix->work);
}

void indexer_kick(struct indexer *ix, struct coll *c)
{
	struct item *it;

	pthread_mutex_lock(&ix->mu);
	if (!queued(ix, c) && (it = sh_malloc(sizeof *it)) != NULL) {
		it->c = coll_ref(c);
		push(ix, it);
	} /* out of memory: the next write's kick queues it */
	pthread_mutex_unlock(&ix->mu);
}

static void wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, unsigned ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	ts.tv_sec += ms / 1000 + ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	pthread_cond_timedwait(cv, mu, &ts);
}

/* mu held: may a step on c defer to apply (the conditions above)? */
static bool may_defer(struct indexer *ix, struct coll *c, uint64_t now)
{
	struct coll_index_stats st;

	if (ix->st.throttling || coll_fresh(c) == 0 || coll_retired(c))
		return false; /* apply waits for indexing, or the step is short */
	if (ix->o.max_fresh_bytes != 0 && coll_fresh_bytes(c) > ix->o.max_fresh_bytes / 2)
		return false;
	if (ix->defer_c != c) { /* the age once per collection and step */
		coll_index_stats(c, &st);
		ix->defer_c = c;
		ix->defer_oldest_ms = now - st.oldest_fresh_ms;
	}
	return now - ix->defer_oldest_ms < DEFER_MAX_AGE_MS;
}

/* mu held: should the step on c wait for apply now? */
static bool defer(struct indexer *ix, struct coll *c)
{
	uint64_t now = sh_clock_mono_ms();
	bool active = atomic_load(&ix->apply_busy) ||
		      now - atomic_load(&ix->apply_idle_ms) < APPLY_QUIET_MS;

	if (!active || !may_defer(ix, c, now))
		return false;
	if (ix->wait_t0_ms == 0) {
		ix->wait_t0_ms = now;
		ix->st.deferred++;
	}
	return true;
}

/* mu held: the head defers; a queued collection over half its bound may
 * not (review: one deferring head held it back until it reached its
 * bound): moved to the head, it steps now.  False when there is none. */
static bool urgent_first(struct indexer *ix)
{
	size_t half = ix->o.max_fresh_bytes / 2;

	for (struct item *prev = ix->head, *i = prev->next; half > 0 && i != NULL;
	     prev = i, i = i->next) {
		if (coll_fresh_bytes(i->c) <= half || coll_retired(i->c))
			continue;
		prev->next = i->next; /* unlink, then in front */
		if (ix->tail == i)
			ix->tail = prev;
		i->next = ix->head;
		ix->head = i;
		return true;
	}
	return false;
}

/* mu held on entry and exit; one step on the head of the queue. */
static void step(struct indexer *ix)
{
	struct item *it = ix->head;
	uint64_t now = sh_clock_mono_ms();
	const _Atomic bool *yield = may_defer(ix, it->c, now) ? &ix->apply_busy : NULL;
	struct sh_err err = {0};
	size_t done;
	int rv;

	if (ix->wait_t0_ms != 0)
		ix->st.deferred_ms += now - ix->wait_t0_ms;
	ix->wait_t0_ms = 0;
	ix->head = it->next;
	if (ix->head == NULL)
		ix->tail = NULL;
	ix->st.queued--;
	pthread_mutex_unlock(&ix->mu);
	if (coll_retired(it->c)) /* dropped, or replaced by a snapshot */
		rv = 0;
	else
		rv = coll_index(it->c, INDEXER_BATCH, ix->o.threads, yield, &done, &err);
	if (rv != 0)
		LOG_WARN("index", "%s (retrying in %d ms)", err.msg, RETRY_MS);
	pthread_mutex_lock(&ix->mu);
	ix->defer_c = NULL; /* the next step reads the age again */
	ix->st.steps++;
	ix->st.errors += rv != 0;
	pthread_cond_broadcast(&ix->progress);
	if (coll_fresh(it->c) > 0 && !coll_retired(it->c) && !queued(ix, it->c) && !ix->stop) {
		push(ix, it);
	} else {
		pthread_mutex_unlock(&ix->mu);
		coll_unref(it->c);
		sh_free(it);
		pthread_mutex_lock(&ix->mu);
	}
	if (rv != 0 && !ix->stop)
		wait_ms(&ix->work, &ix->mu, RETRY_MS);
}

static void *run(void *arg)
{
	struct indexer *ix = arg;

	int e;

	sh_thread_name("shoal-index");
	/* Below apply, acknowledgements and searches: indexing is what may
	 * wait, and gives way after each point (hnsw_build's threads inherit
	 * both). */
	if ((e = sh_thread_background(true, INDEXER_NICE)) != 0)
		LOG_DEBUG("index", "cannot lower the indexer's priority: %s", strerror(e));
	pthread_mutex_lock(&ix->mu);
	while (!ix->stop) {
		if (ix->head == NULL)
			pthread_cond_wait(&ix->work, &ix->mu);
		else if (defer(ix, ix->head->c) && !urgent_first(ix))
			wait_ms(&ix->work, &ix->mu, DEFER_POLL_MS);
		else
			step(ix);
	}
	pthread_mutex_unlock(&ix->mu);
	return NULL;
}

int indexer_new(const struct indexer_opts *o, struct indexer **out, struct sh_err *err)
{
	struct indexer *ix = sh_calloc(1, sizeof *ix);
	pthread_condattr_t ca;

	if (ix == NULL)
		return sh_err_set(err, SH_ENOMEM, "indexer: out of memory");
	ix->o = *o;
	if (ix->o.threads == 0)
		ix->o.threads = 1;
	pthread_mutex_init(&ix->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ix->work, &ca);
	pthread_cond_init(&ix->progress, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&ix->thread, NULL, run, ix) != 0) {
		pthread_cond_destroy(&ix->work);
		pthread_cond_destroy(&ix->progress);
		pthread_mutex_destroy(&ix->mu);
		sh_free(ix);
		return sh_err_set(err, SH_ENOMEM, "indexer: cannot start its thread");
	}
	*out = ix;
	return 0;
}

void indexer_stop(struct indexer *ix)
{
	if (ix == NULL)
		return;
	pthread_mutex_lock(&ix->mu);
	ix->stop = true;
	pthread_cond_broadcast(&ix->work);
	pthread_cond_broadcast(&ix->progress);
	pthread_mutex_unlock(&ix->mu);
}

void indexer_free(struct indexer *ix)
{
	struct item *it;

	if (ix == NULL)
		return;
	indexer_stop(ix);
	pthread_join(ix->thread, NULL);
	while ((it = ix->head) != NULL) {
		ix->head = it->next;
		coll_unref(it->c);
		sh_free(it);
	}
	pthread_cond_destroy(&ix->work);
	pthread_cond_destroy(&ix->progress);
	pthread_mutex_destroy(&ix->mu);
	sh_free(ix);
}

void indexer_set_leading(struct indexer *ix, bool leading)
{
	pthread_mutex_lock(&ix->mu);
	ix->follower = !leading;
	pthread_cond_broadcast(&ix->progress);
	pthread_mutex_unlock(&ix->mu);
}

/* mu held. */
static bool over(const struct indexer *ix, struct coll *c)
{
	size_t b = ix->o.max_fresh_bytes;

	return coll_fresh_bytes(c) > b + (ix->follower ? b / SLACK_DIV : 0);
}

void indexer_throttle(struct indexer *ix, struct coll *c)
{
	uint64_t t0;

	if (ix->o.max_fresh_bytes == 0 || coll_fresh_bytes(c) <= ix->o.max_fresh_bytes)
		return;
	t0 = sh_clock_mono_ms();
	pthread_mutex_lock(&ix->mu);
	if (!over(ix, c)) {
		pthread_mutex_unlock(&ix->mu);
		return;
	}
	ix->st.throttled++;
	ix->st.throttling = true;
	/* apply waits for the indexer now: nothing defers to it */
	atomic_store(&ix->apply_busy, false);
	atomic_store(&ix->apply_idle_ms, 0);
	while (!ix->stop && over(ix, c)) {
		struct item *it;

		if (!queued(ix, c) && (it = sh_malloc(sizeof *it)) != NULL) {
			it->c = coll_ref(c); /* a kick lost to lack of memory */
			push(ix, it);
		}
		wait_ms(&ix->progress, &ix->mu, RETRY_MS);
	}
	ix->st.throttling = false;
	ix->st.throttled_ms += sh_clock_mono_ms() - t0;
	pthread_mutex_unlock(&ix->mu);
}

void indexer_apply_busy(struct indexer *ix, bool busy)
{
	if (ix == NULL || atomic_load(&ix->apply_busy) == busy)
		return;
	if (!busy)
		atomic_store(&ix->apply_idle_ms, sh_clock_mono_ms());
	atomic_store(&ix->apply_busy, busy);
}

void indexer_stats(struct indexer *ix, struct indexer_stats *st)
{
	pthread_mutex_lock(&ix->mu);
	*st = ix->st;
	if (ix->wait_t0_ms != 0) /* a wait in progress counts so far */
		st->deferred_ms += sh_clock_mono_ms() - ix->wait_t0_ms;
	pthread_mutex_unlock(&ix->mu);
}
