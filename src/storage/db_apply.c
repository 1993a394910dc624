/*
 * db_apply: the apply thread (see db.h) — it applies the log up to the
 * apply limit, reading the entries back from the log (the page cache,
 * normally: they were just written), completes the watches on them, has
 * snapshots taken (db_snap.c) and installs the ones received from a leader.
 *
 * Entries up to the apply limit are committed and durable here, so the
 * owner never truncates them: reading them while the log writer appends
 * and cuts later entries is safe.
 *
 * In manual mode there is no thread: db_run() calls work() on the owner's
 * thread, the same function the thread loops on (db.h, "Manual mode").
 */
#include "build.h"

#include "storage/db_impl.h"

#include "storage/indexer.h"
#include "storage/snapshot.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/thread.h"

#include <inttypes.h>
#include <string.h>
#include <time.h>

#define APPLY_RECORDS 4096
#define APPLY_BYTES   (64u << 20)
#define SNAP_POLL_MS  5 /* how often the idle thread looks for a snapshot's end */

/* Append w to the list (head, tail) (lock held). */
static void push(struct watch **head, struct watch **tail, struct watch *w)
{
	w->next = NULL;
	if (*tail != NULL)
		(*tail)->next = w;
	else
		*head = w;
	*tail = w;
}

/* Entry index was applied with this outcome: its watches (and any before
 * it) are done. */
static void watches_done(struct db *db, uint64_t index, uint64_t term, int rv,
			 const struct sh_err *err, size_t affected)
{
	struct watch *w;

	pthread_mutex_lock(&db->lock);
	while ((w = db->wq_head) != NULL && w->index <= index) {
		if ((db->wq_head = w->next) == NULL)
			db->wq_tail = NULL;
		if (w->index == index) {
			w->rv = rv;
			if (rv != 0)
				w->err = *err;
			w->term = term;
			w->affected = affected;
		}
		push(&db->dq_head, &db->dq_tail, w);
	}
	pthread_mutex_unlock(&db->lock);
}

int db_apply_buf(struct db *db, const struct wal_buf *b, size_t *pos, uint64_t upto,
		 uint64_t *rejected)
{
	struct wal_rec rec;
	struct sh_err why;
	size_t at = *pos, affected;
	bool fatal;
	int rv;

	while (wal_buf_next(b, &at, &rec) && rec.index <= upto) {
		*pos = at;
		if (rec.index <= store_applied_index(db->store))
			continue; /* covered by an installed snapshot */
		affected = 0;
		rv = store_apply(db->store, &rec, &affected, &fatal, &why);
		if (rv != 0 && fatal) {
			db_fail(db, &why);
			return rv;
		}
		if (rv != 0) {
			LOG_DEBUG("storage", "did not apply (as on every replica): %s", why.msg);
			if (rejected != NULL)
				(*rejected)++;
		}
		if (db->o.on_apply != NULL)
			db->o.on_apply(db->o.on_apply_arg, db->store, &rec, rv);
		watches_done(db, rec.index, rec.term, rv, &why, affected);
		db->since_entries++;
		db->since_bytes += WAL_REC_HDR + rec.len;
	}
	return 0;
}

/* Apply entries applied+1 .. upto, reading them from the log; a long run
 * (a restart or a follower catching up on many committed entries) says
 * how far it got, at most once a second. */
static void apply_range(struct db *db, uint64_t upto)
{
	uint64_t from, first = store_applied_index(db->store) + 1;
	struct wal_buf *b;
	struct sh_err err;
	struct db_progress p;

	db_progress_start(&p, "applying committed entries", upto - first + 1, db->store);
	p.wake = true; /* and a slice is one entry */
	while ((from = store_applied_index(db->store) + 1) <= upto && !atomic_load(&db->failed) &&
	       !atomic_load(&db->stopping)) {
		uint64_t n = upto - from + 1;

		if (wal_read(db->wal, from, n < APPLY_RECORDS ? n : APPLY_RECORDS, APPLY_BYTES, &b,
			     &err) != 0) {
			sh_err_wrap(&err, err.code, "apply: reading entry %" PRIu64, from);
			db_fail(db, &err);
			break;
		}
		db_apply_sliced(db, b, upto, NULL, &p, first);
		wal_buf_unref(b);
		db_wake_owner(db);
	}
}

/* ------------------------------------------------------------ installing */

/* Load the received snapshot at in->index (with a copy of its voter
 * configuration for the owner) and, only once that all worked and it is
 * beyond the applied state, make it the node's newest snapshot (a
 * snapshot that does not load must not be the one the next start reads:
 * a failed install leaves the data dir as it was).  *fresh the state. */
static int load_received(struct db *db, struct install *in, struct store **fresh)
{
	int rv = snap_read_received(db->snap_dir, in->index, db_load_fn, fresh, &in->err);

	if (rv == 0 && store_applied_index(*fresh) <= store_applied_index(db->store))
		rv = sh_err_set(&in->err, SH_EINVAL,
				"snapshot at %" PRIu64 " is not beyond the applied index %" PRIu64,
				in->index, store_applied_index(db->store));
	if (rv == 0 && db_copy_voters(*fresh, &in->voters, &in->voters_len) != 0)
		rv = sh_err_set(&in->err, SH_ENOMEM, "snapshot at %" PRIu64 ": out of memory",
				in->index);
	if (rv == 0)
		rv = snap_accept_received(db->snap_dir, in->index, &in->err);
	if (rv != 0) {
		snap_drop_received(db->snap_dir, in->index);
		store_free(*fresh);
		*fresh = NULL;
	}
	return rv;
}

/* Replace the applied state by the snapshot received at in->index. */
static void do_install(struct db *db, struct install *in)
{
	struct store *fresh = NULL;
	uint64_t t0 = sh_clock_mono_ms();

	if ((in->rv = load_received(db, in, &fresh)) != 0)
		return;
	in->term = store_applied_term(fresh);
	store_adopt(db->store, fresh);
	atomic_store(&db->last_snap, in->index);
	db->since_entries = db->since_bytes = 0;
	if ((in->rv = snap_prune(db->snap_dir, in->index, &in->err)) != 0)
		return;
	LOG_INFO("storage",
		 "installed the leader's snapshot at index %" PRIu64 " (term %" PRIu64
		 ") in %" PRIu64 " ms: %zu collections, %zu points",
		 in->index, in->term, sh_clock_mono_ms() - t0, store_collections(db->store),
		 store_points(db->store));
}

/* ------------------------------------------------------------ the thread */

/* Entries waiting that make apply "busy" for the indexer (indexer.c,
 * "Deferring to apply"): a backlog, not the one entry a steady stream
 * brings at a time. */
#define APPLY_BACKLOG 2

/* One piece of work, lock held on entry and exit; false when there is none. */
static bool work(struct db *db)
{
	struct install *in;
	uint64_t upto = db->limit;
	bool done;

	if (db_snap_busy(db)) {
		pthread_mutex_unlock(&db->lock);
		done = db_snap_poll(db);
		pthread_mutex_lock(&db->lock);
		if (done)
			return true;
	}
	if ((in = db->install) != NULL) {
		db->install = NULL;
		pthread_mutex_unlock(&db->lock);
		db_snap_wait(db); /* the snapshot being written is of the state replaced */
		do_install(db, in);
		pthread_mutex_lock(&db->lock);
		db->installed = in;
		db_wake_owner(db);
		return true;
	}
	if (upto > store_applied_index(db->store) && !atomic_load(&db->failed) &&
	    !atomic_load(&db->stopping)) {
		pthread_mutex_unlock(&db->lock);
		if (upto - store_applied_index(db->store) >= APPLY_BACKLOG)
			indexer_apply_busy(db->ix, true); /* the indexer defers (indexer.c) */
		apply_range(db, upto);
		db_snap_due(db);
		pthread_mutex_lock(&db->lock);
		return true;
	}
	if (db->snap_wanted && !db_snap_busy(db)) { /* else after that one */
		uint64_t ticket = db->snap_req;

		db->snap_wanted = false;
		pthread_mutex_unlock(&db->lock);
		db_snap_demand(db, ticket);
		pthread_mutex_lock(&db->lock);
		return true;
	}
	return false;
}

/* pthread_cond_wait for at most ms (lock held). */
static void wait_ms(struct db *db, unsigned ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts); /* db->cond's clock (db_open.c) */
	ts.tv_nsec += (long)ms * 1000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	pthread_cond_timedwait(&db->cond, &db->lock, &ts);
}

static void *apply_main(void *arg)
{
	struct db *db = arg;

	sh_thread_name("shoal-apply");
	pthread_mutex_lock(&db->lock);
	for (;;) {
		if (work(db))
			continue;
		indexer_apply_busy(db->ix, false);
		if (db->stop && !db_snap_busy(db))
			break;
		if (db_snap_busy(db))
			wait_ms(db, SNAP_POLL_MS); /* for its end, as for work */
		else
			pthread_cond_wait(&db->cond, &db->lock);
	}
	pthread_mutex_unlock(&db->lock);
	return NULL;
}

int db_start(struct db *db, struct sh_err *err)
{
	struct wal_writer_opts wo = {db->o.fsync, db->o.fsync_interval_ms, db->efd, db->o.manual};
	int rv;

	if ((rv = wal_writer_start(db->wal, &wo, &db->ww, err)) != 0)
		return rv;
	if (db->o.manual) {
		db->applier_started = true; /* its work runs in db_run */
		return 0;
	}
	if (pthread_create(&db->applier, NULL, apply_main, db) != 0)
		return sh_err_set(err, SH_EIO, "cannot start the apply thread");
	db->applier_started = true;
	return 0;
}

void db_run_apply(struct db *db)
{
	pthread_mutex_lock(&db->lock);
	while (work(db))
		;
	pthread_mutex_unlock(&db->lock);
}

void db_stop_applier(struct db *db)
{
	if (!db->applier_started)
		return;
	if (db->o.raft) /* committed entries stay in the log, applied after restart */
		atomic_store(&db->stopping, true);
	if (db->o.manual) { /* what the thread would do before it stops */
		db_run_apply(db);
		db->applier_started = false;
		return;
	}
	pthread_mutex_lock(&db->lock);
	db->stop = true;
	pthread_cond_signal(&db->cond);
	pthread_mutex_unlock(&db->lock);
	pthread_join(db->applier, NULL);
	db->applier_started = false;
}

/* ------------------------------------------------------------ manual mode */

unsigned db_pending(const struct db *cdb)
{
	struct db *db = (struct db *)(uintptr_t)cdb;
	unsigned what = 0;

	if (!db->o.manual) /* the threads do it all (and own the writer's state) */
		return 0;
	if (db->ww != NULL && wal_writer_pending(db->ww))
		what |= DB_WORK_WRITE;
	pthread_mutex_lock(&db->lock);
	if (db->install != NULL || db->snap_wanted ||
	    (db->limit > store_applied_index(db->store) && !atomic_load(&db->failed) &&
	     !atomic_load(&db->stopping)))
		what |= DB_WORK_APPLY;
	pthread_mutex_unlock(&db->lock);
	if (atomic_load(&db->woken))
		what |= DB_WORK_DONE;
	return what;
}

void db_run(struct db *db, unsigned what)
{
	if (!db->o.manual)
		return;
	if ((what & DB_WORK_WRITE) && db->ww != NULL && wal_writer_pending(db->ww)) {
		wal_writer_run(db->ww);
		db_wake_owner(db); /* the writer's completions, as its eventfd would */
	}
	if (what & DB_WORK_APPLY)
		db_run_apply(db);
}
