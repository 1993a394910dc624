/*
 * db: the write path and the apply thread (see db.h); opening and recovery
 * are in db_open.c.
 *
 * A write is a struct req: db_submit() encodes it and hands its op to the
 * log writer; when the writer reports it done, db_process() (the owner's
 * thread) moves it to the apply queue or, if the append failed, completes
 * it with the error; the apply thread applies it and moves it to the
 * applied queue; db_process() completes it.  Every step that ends on
 * another thread writes the eventfd.
 *
 * A failed append: the writer fails it and every append queued after it
 * (their indexes no longer follow).  The first failure of the current
 * generation resets next_index to its index and starts a new generation;
 * failures of older generations only complete their requests.
 */
#include "build.h"

#include "storage/db_impl.h"

#include "storage/snapshot.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/log.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

static void wake_owner(struct db *db)
{
	uint64_t one = 1;

	if (write(db->efd, &one, sizeof one) < 0 && errno != EAGAIN)
		LOG_ERROR("storage", "cannot signal the event loop: %s", strerror(errno));
}

/* Append r to the list (head, tail) (lock held). */
static void push(struct req **head, struct req **tail, struct req *r)
{
	r->next = NULL;
	if (*tail != NULL)
		(*tail)->next = r;
	else
		*head = r;
	*tail = r;
}

static void fail_for_good(struct db *db, const struct sh_err *why)
{
	if (atomic_load(&db->failed))
		return;
	db->fail_err = *why;
	atomic_store(&db->failed, true);
	LOG_ERROR("storage", "storage failed, writes are refused until restart: %s", why->msg);
}

bool db_failed(const struct db *db, struct sh_err *err)
{
	bool failed = atomic_load(&((struct db *)(uintptr_t)db)->failed);

	if (failed && err != NULL)
		*err = db->fail_err;
	return failed;
}

/* ------------------------------------------------------------ snapshots */

static int save_store(void *arg, hnsw_write_fn write, void *wctx, struct sh_err *err)
{
	return store_save(arg, write, wctx, err);
}

/* On the apply thread: snapshot the store, then drop what it covers. */
static int take_snapshot(struct db *db, struct sh_err *err)
{
	uint64_t index = store_applied_index(db->store), t0 = sh_clock_mono_ms(), bytes = 0;
	int rv;

	if (index == 0 || index == db->last_snap)
		return 0;
	if ((rv = snap_write(db->snap_dir, index, store_applied_term(db->store), save_store,
			     db->store, &bytes, err)) != 0)
		return rv;
	db->last_snap = index;
	db->since_entries = db->since_bytes = 0;
	atomic_fetch_add(&db->snapshots, 1);
	if ((rv = snap_prune(db->snap_dir, index, err)) != 0 ||
	    (rv = wal_remove_prefix(db->wal, index, err)) != 0)
		return rv;
	LOG_INFO("storage",
		 "snapshot at index %" PRIu64 " written (%" PRIu64 " bytes, %" PRIu64
		 " ms); the log now starts at index %" PRIu64,
		 index, bytes, sh_clock_mono_ms() - t0, wal_first_index(db->wal));
	return 0;
}

static void maybe_snapshot(struct db *db)
{
	struct sh_err err;
	bool due = (db->o.snapshot_entries > 0 && db->since_entries >= db->o.snapshot_entries) ||
		   (db->o.snapshot_bytes > 0 && db->since_bytes >= db->o.snapshot_bytes);

	if (!due || atomic_load(&db->failed))
		return;
	if (take_snapshot(db, &err) != 0) {
		LOG_ERROR("storage", "snapshot failed (the log is kept; retried later): %s",
			  err.msg);
		db->since_entries = db->since_bytes = 0;
	}
}

/* ------------------------------------------------------------ the apply thread */

static void apply_req(struct db *db, struct req *r)
{
	struct wal_rec rec;
	size_t pos = 0, affected;
	bool fatal;

	while (r->rv == 0 && wal_buf_next(r->op.buf, &pos, &rec)) {
		if (atomic_load(&db->failed)) {
			r->rv = SH_ESHUTDOWN;
			r->err = db->fail_err;
			break;
		}
		r->rv = store_apply(db->store, &rec, &affected, &fatal, &r->err);
		r->affected += affected;
		if (fatal)
			fail_for_good(db, &r->err);
	}
	db->since_entries += r->op.buf->n;
	db->since_bytes += r->op.buf->len;
}

static void *apply_main(void *arg)
{
	struct db *db = arg;
	struct req *list, *next;

	pthread_mutex_lock(&db->lock);
	for (;;) {
		if (db->aq_head != NULL) {
			list = db->aq_head;
			db->aq_head = db->aq_tail = NULL;
			pthread_mutex_unlock(&db->lock);
			for (struct req *r = list; r != NULL; r = r->next)
				apply_req(db, r);
			pthread_mutex_lock(&db->lock);
			for (struct req *r = list; r != NULL; r = next) {
				next = r->next;
				push(&db->dq_head, &db->dq_tail, r);
			}
			wake_owner(db);
			pthread_mutex_unlock(&db->lock);
			maybe_snapshot(db);
			pthread_mutex_lock(&db->lock);
		} else if (db->snap_wanted) {
			db->snap_wanted = false;
			pthread_mutex_unlock(&db->lock);
			db->snap_rv = take_snapshot(db, &db->snap_err);
			pthread_mutex_lock(&db->lock);
			db->snap_done = true;
			pthread_cond_broadcast(&db->snap_cond);
		} else if (db->stop) {
			break;
		} else {
			pthread_cond_wait(&db->cond, &db->lock);
		}
	}
	pthread_mutex_unlock(&db->lock);
	return NULL;
}

int db_start(struct db *db, struct sh_err *err)
{
	struct wal_writer_opts wo = {db->o.fsync, db->o.fsync_interval_ms, db->efd};
	int rv;

	if ((rv = wal_writer_start(db->wal, &wo, &db->ww, err)) != 0)
		return rv;
	if (pthread_create(&db->applier, NULL, apply_main, db) != 0)
		return sh_err_set(err, SH_EIO, "cannot start the apply thread");
	db->applier_started = true;
	return 0;
}

/* ------------------------------------------------------------ the owner's side */

static void complete(struct db *db, struct req *r, int rv, const struct sh_err *err)
{
	struct wal_buf *b = r->op.buf;

	r->done(r->arg, rv, err, b->n ? db->term : 0, b->first, r->affected);
	wal_buf_unref(b);
	sh_free(r);
	db->outstanding--;
}

/* Appends the writer finished: failed ones complete, the others go on to
 * the apply thread. */
static void take_written(struct db *db)
{
	struct wal_op *op;
	struct req *r;

	while (db->ww != NULL && (op = wal_writer_done(db->ww)) != NULL) {
		r = op->data;
		if (op->rv != 0) {
			if (r->gen == db->gen) {
				db->gen++;
				db->next_index = r->op.buf->first;
			}
			complete(db, r, op->rv, &op->err);
			continue;
		}
		pthread_mutex_lock(&db->lock);
		push(&db->aq_head, &db->aq_tail, r);
		pthread_cond_signal(&db->cond);
		pthread_mutex_unlock(&db->lock);
	}
}

void db_process(struct db *db)
{
	uint64_t v;
	struct req *list, *next;

	if (read(db->efd, &v, sizeof v) < 0 && errno != EAGAIN)
		LOG_ERROR("storage", "eventfd: %s", strerror(errno));
	take_written(db);
	pthread_mutex_lock(&db->lock);
	list = db->dq_head;
	db->dq_head = db->dq_tail = NULL;
	pthread_mutex_unlock(&db->lock);
	for (struct req *r = list; r != NULL; r = next) {
		next = r->next;
		complete(db, r, r->rv, &r->err);
	}
}

int db_fd(const struct db *db)
{
	return db->efd;
}

/* ------------------------------------------------------------ submitting */

/* An upsert with canonical payloads: pts (sh_malloc) and their texts. */
static int canon_points(const struct db *db, const struct entry *e, struct coll_point **out,
			struct sh_err *err)
{
	struct coll_point *pts = sh_calloc(e->n ? e->n : 1, sizeof *pts);
	char *text;
	int rv = 0;

	if (pts == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	for (size_t i = 0; i < e->n && rv == 0; i++) {
		pts[i] = e->points[i];
		if (pts[i].payload_len == 0)
			continue;
		pts[i].payload = NULL;
		rv = coll_payload_canon(e->points[i].payload, e->points[i].payload_len,
					db->o.max_payload_bytes, &text, &pts[i].payload_len, err);
		if (rv != 0)
			sh_err_wrap(err, rv, "collection '%s': point %zu (id %" PRIu64 ")",
				    e->collection, i, pts[i].id);
		else
			pts[i].payload = text;
	}
	*out = pts;
	return rv;
}

static void free_points(struct coll_point *pts, size_t n)
{
	for (size_t i = 0; pts != NULL && i < n; i++)
		sh_free((void *)(uintptr_t)pts[i].payload);
	sh_free(pts);
}

/* Check e and encode it as the next record into *out. */
static int prepare(struct db *db, const struct entry *in, struct wal_buf **out, struct sh_err *err)
{
	struct entry e = *in;
	struct coll_point *pts = NULL;
	int rv = 0;

	*out = NULL;
	if (e.type == WAL_CREATE) {
		e.params.m = e.params.m ? e.params.m : COLL_DEFAULT_M;
		e.params.ef_construction =
			e.params.ef_construction ? e.params.ef_construction : COLL_DEFAULT_EFC;
		e.params.seed = e.params.seed ? e.params.seed : db->next_index;
	}
	if (e.type == WAL_UPSERT && e.collection != NULL) {
		rv = canon_points(db, &e, &pts, err);
		e.points = pts;
	}
	if (rv == 0)
		rv = store_check(db->store, &e, err);
	if (rv == 0 && (*out = wal_buf_new(256)) == NULL)
		rv = sh_err_set(err, SH_ENOMEM, "out of memory");
	if (rv == 0 && (rv = entry_encode(&e, *out, db->term, db->next_index, err)) != 0)
		wal_buf_unref(*out);
	free_points(pts, e.type == WAL_UPSERT ? e.n : 0);
	return rv;
}

int db_submit(struct db *db, const struct entry *e, db_done_fn done, void *arg, struct sh_err *err)
{
	struct wal_buf *b = NULL;
	struct req *r;
	int rv;

	if (db_failed(db, err))
		return sh_err_wrap(err, SH_ESHUTDOWN, "storage failed");
	if (e->type == WAL_UPSERT && e->n == 0)
		return sh_err_set(err, SH_EINVAL, "an upsert needs at least one point");
	if ((rv = prepare(db, e, &b, err)) != 0)
		return rv;
	if ((r = sh_calloc(1, sizeof *r)) == NULL) {
		wal_buf_unref(b);
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	}
	r->op = (struct wal_op){.type = WAL_OP_APPEND, .buf = b, .notify = true, .data = r};
	r->done = done;
	r->arg = arg;
	r->gen = db->gen;
	db->next_index++;
	db->outstanding++;
	wal_writer_submit(db->ww, &r->op);
	return 0;
}

/* ------------------------------------------------------------ blocking wrappers */

struct waiter {
	bool done;
	int rv;
	struct sh_err err;
	uint64_t index;
	size_t affected;
};

static void wake_waiter(void *arg, int rv, const struct sh_err *err, uint64_t term, uint64_t index,
			size_t affected)
{
	struct waiter *w = arg;

	(void)term;
	w->done = true;
	w->rv = rv;
	if (rv != 0)
		w->err = *err;
	w->index = index;
	w->affected = affected;
}

int db_write(struct db *db, const struct entry *e, uint64_t *index, size_t *affected,
	     struct sh_err *err)
{
	struct waiter w = {0};
	int rv = db_submit(db, e, wake_waiter, &w, err);

	while (rv == 0 && !w.done) {
		struct pollfd p = {db->efd, POLLIN, 0};

		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			return sh_err_sys(err, errno, "poll");
		db_process(db);
	}
	if (rv != 0)
		return rv;
	if (w.rv != 0 && err != NULL)
		*err = w.err;
	if (index != NULL)
		*index = w.index;
	if (affected != NULL)
		*affected = w.affected;
	return w.rv;
}

int db_snapshot(struct db *db, struct sh_err *err)
{
	int rv;

	pthread_mutex_lock(&db->lock);
	db->snap_wanted = true;
	db->snap_done = false;
	pthread_cond_signal(&db->cond);
	while (!db->snap_done)
		pthread_cond_wait(&db->snap_cond, &db->lock);
	rv = db->snap_rv;
	if (rv != 0 && err != NULL)
		*err = db->snap_err;
	pthread_mutex_unlock(&db->lock);
	return rv;
}

/* ------------------------------------------------------------ the rest */

struct store *db_store(struct db *db)
{
	return db->store;
}

uint64_t db_last_index(const struct db *db)
{
	return db->next_index - 1;
}

uint64_t db_snapshots(const struct db *db)
{
	return atomic_load(&((struct db *)(uintptr_t)db)->snapshots);
}

void db_free(struct db *db)
{
	wal_close(db->wal);
	store_free(db->store);
	if (db->efd >= 0)
		close(db->efd);
	pthread_cond_destroy(&db->snap_cond);
	pthread_cond_destroy(&db->cond);
	pthread_mutex_destroy(&db->lock);
	sh_free(db->dir);
	sh_free(db->wal_dir);
	sh_free(db->snap_dir);
	sh_free(db);
}

void db_close(struct db *db)
{
	if (db == NULL)
		return;
	if (db->ww != NULL) {
		wal_writer_quiesce(db->ww); /* every queued append is done */
		take_written(db);
		wal_writer_stop(db->ww);
		db->ww = NULL;
	}
	if (db->applier_started) {
		pthread_mutex_lock(&db->lock);
		db->stop = true;
		pthread_cond_signal(&db->cond);
		pthread_mutex_unlock(&db->lock);
		pthread_join(db->applier, NULL);
	}
	if (db->efd >= 0)
		db_process(db);
	db_free(db);
}
