/*
 * db_submit: making entries — checking a write against the applied state
 * and encoding it (db_prepare, both modes), the standalone write path
 * (db_submit, db_write) and on-demand snapshots (see db.h).
 */
#include "build.h"

#include "storage/db_impl.h"

#include "util/alloc.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <string.h>

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

/* The points e would change in the applied state now. */
static size_t estimate(struct db *db, const struct entry *e)
{
	struct coll *c;
	size_t n = 0;

	if (e->type == WAL_UPSERT)
		return e->n;
	if ((e->type != WAL_DELETE && e->type != WAL_SET_PAYLOAD) ||
	    (c = store_get(db->store, e->collection)) == NULL)
		return 0;
	for (size_t i = 0; i < e->n; i++)
		n += coll_get(c, e->ids[i], NULL, NULL, NULL) == 0;
	coll_unref(c);
	return n;
}

int db_prepare(struct db *db, const struct entry *in, uint64_t term, uint64_t index,
	       struct wal_buf **out, size_t *affected, struct sh_err *err)
{
	struct entry e = *in;
	struct coll_point *pts = NULL;
	char *text = NULL;
	int rv = 0;

	*out = NULL;
	if (e.type == WAL_UPSERT && e.n == 0)
		return sh_err_set(err, SH_EINVAL, "an upsert needs at least one point");
	if (e.type == WAL_CREATE) {
		e.params.m = e.params.m ? e.params.m : COLL_DEFAULT_M;
		e.params.ef_construction =
			e.params.ef_construction ? e.params.ef_construction : COLL_DEFAULT_EFC;
		e.params.seed = e.params.seed ? e.params.seed : index;
	}
	if (e.type == WAL_UPSERT && e.collection != NULL) {
		rv = canon_points(db, &e, &pts, err);
		e.points = pts;
	}
	if (e.type == WAL_SET_PAYLOAD && e.change.payload_len > 0) {
		rv = coll_payload_canon(e.change.payload, e.change.payload_len,
					db->o.max_payload_bytes, &text, &e.change.payload_len, err);
		e.change.payload = text;
		if (rv != 0)
			sh_err_wrap(err, rv, "collection '%s'", e.collection);
	}
	if (rv == 0)
		rv = store_check(db->store, &e, err);
	if (rv == 0 && affected != NULL)
		*affected = estimate(db, &e);
	if (rv == 0 && (*out = wal_buf_new(256)) == NULL)
		rv = sh_err_set(err, SH_ENOMEM, "out of memory");
	if (rv == 0 && (rv = entry_encode(&e, *out, term, index, err)) != 0) {
		wal_buf_unref(*out);
		*out = NULL;
	}
	free_points(pts, e.type == WAL_UPSERT ? e.n : 0);
	sh_free(text);
	return rv;
}

/* ------------------------------------------------------------ standalone */

int db_submit(struct db *db, const struct entry *e, db_done_fn done, void *arg, struct sh_err *err)
{
	struct wal_buf *b = NULL;
	uint64_t index = db->next_index;
	int rv;

	if (db->o.raft)
		return sh_err_set(err, SH_EINVAL, "db_submit: the log belongs to Raft here");
	if (db_failed(db, err))
		return sh_err_wrap(err, SH_ESHUTDOWN, "storage failed");
	if ((rv = db_prepare(db, e, db->term, index, &b, NULL, err)) != 0)
		return rv;
	/* the watch can come second: nothing applies before db_process */
	if ((rv = db_append(db, b, err)) == 0 && (rv = db_watch(db, index, done, arg, err)) != 0)
		db_fail(db, err);
	wal_buf_unref(b);
	return rv;
}

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

/* Wait for the threads to finish something (manual mode: do it), then
 * take it.  Once the storage failed, or (manual mode) nothing is left to
 * run, the entry at index will not complete: its watch fails now, so
 * that nothing refers to the waiter after db_write returns. */
static int wait_step(struct db *db, uint64_t index, struct sh_err *err)
{
	struct pollfd p = {db->efd, POLLIN, 0};
	unsigned what = 0;

	if (db_failed(db, NULL)) {
		db_process(db); /* what was applied before the failure */
		db_drop_watch(db, index, SH_ESHUTDOWN, "not applied: the storage failed");
	} else if (db->o.manual && (what = db_pending(db)) == 0) {
		db_drop_watch(db, index, SH_EIO, "not applied: nothing left to run");
	} else if (db->o.manual) {
		db_run(db, what);
		db_process(db);
	} else if (poll(&p, 1, -1) < 0 && errno != EINTR) {
		return sh_err_sys(err, errno, "poll");
	} else {
		db_process(db);
	}
	return 0;
}

int db_write(struct db *db, const struct entry *e, uint64_t *index, size_t *affected,
	     struct sh_err *err)
{
	struct waiter w = {0};
	uint64_t at = db->next_index;
	int rv = db_submit(db, e, wake_waiter, &w, err);

	while (rv == 0 && !w.done)
		rv = wait_step(db, at, err);
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

	uint64_t ticket;

	pthread_mutex_lock(&db->lock);
	ticket = ++db->snap_req; /* a snapshot started before this call does not answer it */
	db->snap_wanted = true;
	pthread_cond_signal(&db->cond);
	if (db->o.manual) {
		pthread_mutex_unlock(&db->lock);
		db_run_apply(db);
		pthread_mutex_lock(&db->lock);
	}
	while (db->snap_served < ticket)
		pthread_cond_wait(&db->snap_cond, &db->lock);
	rv = db->snap_rv;
	if (rv != 0 && err != NULL)
		*err = db->snap_err;
	pthread_mutex_unlock(&db->lock);
	return rv;
}
