/*
 * db: the owner's side (see db.h) — entries to the log writer, durability
 * back from it, the apply limit, watches; the apply thread is in
 * db_apply.c, opening and recovery in db_open.c.
 *
 * Every writer op (append, truncate, reset) is a struct pend.  The writer
 * completes them in submission order; db_process() takes them, and the
 * durable index moves to the end of each completed op of the current
 * *generation*.  A cut of the log (truncate, reset, or in standalone mode
 * a failed append) starts a new generation: ops submitted before it may
 * still complete, but they speak of entries that are gone or about to be,
 * so they move nothing.  The writer runs ops in order, so when an op of
 * the new generation completes, everything before it is settled.
 *
 * Standalone: the apply limit is the durable index, and a write is a watch
 * on its entry.  Raft: the apply limit is min(commit, durable).  In
 * standalone mode the writes from a failed one on fail and later writes
 * may succeed (disk full, then room again).  In raft mode an append that
 * found no room (SH_ENOSPC) cuts the log back to before it as well, but
 * its entries stay the core's: db_full() says so until an append succeeds
 * again, and the owner writes them again (node_full.c); any other failed
 * write fails the storage for good (Raft's log must be what the core
 * believes it is), and so does a failed flush (wal_broken) in both modes.
 */
#include "build.h"

#include "storage/db_impl.h"
#include "storage/indexer.h"

#include "util/alloc.h"
#include "util/log.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

void db_wake_owner(struct db *db)
{
	uint64_t one = 1;

	if (db->efd < 0)
		atomic_store(&db->woken, true);
	else if (write(db->efd, &one, sizeof one) < 0 && errno != EAGAIN)
		LOG_ERROR("storage", "cannot signal the event loop: %s", strerror(errno));
}

void db_fail(struct db *db, const struct sh_err *why)
{
	if (atomic_load(&db->failed))
		return;
	db->fail_err = *why;
	atomic_store(&db->failed, true);
	LOG_ERROR("storage", "storage failed, writes are refused until restart: %s", why->msg);
	db_wake_owner(db);
}

bool db_failed(const struct db *db, struct sh_err *err)
{
	bool failed = atomic_load(&((struct db *)(uintptr_t)db)->failed);

	if (failed && err != NULL)
		*err = db->fail_err;
	return failed;
}

bool db_full(const struct db *db, struct sh_err *err)
{
	if (db->full && err != NULL)
		*err = db->full_err;
	return db->full;
}

void db_full_clear(struct db *db)
{
	db->full = false;
}

/* ------------------------------------------------------------ watches */

static void run_watch(struct watch *w)
{
	w->done(w->arg, w->rv, &w->err, w->term, w->index, w->affected);
	sh_free(w);
}

/* Add w in index order (lock held). */
static void watch_insert(struct db *db, struct watch *w)
{
	struct watch **p = &db->wq_head;

	while (*p != NULL && (*p)->index <= w->index)
		p = &(*p)->next;
	w->next = *p;
	*p = w;
	if (w->next == NULL)
		db->wq_tail = w;
}

/* Take the waiting watches with from <= index <= to out of the list. */
static struct watch *watch_take(struct db *db, uint64_t from, uint64_t to)
{
	struct watch *out = NULL, **tail = &out, **p;

	pthread_mutex_lock(&db->lock);
	for (p = &db->wq_head; *p != NULL;) {
		struct watch *w = *p;

		if (w->index >= from && w->index <= to) {
			*p = w->next;
			w->next = NULL;
			*tail = w;
			tail = &w->next;
		} else {
			p = &w->next;
		}
	}
	db->wq_tail = NULL;
	for (struct watch *w = db->wq_head; w != NULL; w = w->next)
		db->wq_tail = w;
	pthread_mutex_unlock(&db->lock);
	return out;
}

/* Complete a list of watches with rv (0: applied). */
static void watch_fail(struct watch *list, int rv, const char *why)
{
	for (struct watch *w = list, *next; w != NULL; w = next) {
		next = w->next;
		w->rv = rv;
		if (rv != 0)
			sh_err_set(&w->err, rv, "entry %" PRIu64 ": %s", w->index, why);
		run_watch(w);
	}
}

void db_drop_watch(struct db *db, uint64_t index, int rv, const char *why)
{
	watch_fail(watch_take(db, index, index), rv, why);
}

int db_watch(struct db *db, uint64_t index, db_done_fn done, void *arg, struct sh_err *err)
{
	struct watch *w = sh_calloc(1, sizeof *w);

	if (w == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	*w = (struct watch){.index = index, .done = done, .arg = arg};
	pthread_mutex_lock(&db->lock);
	if (index <= store_applied_index(db->store)) {
		w->next = NULL;
		if (db->dq_tail != NULL)
			db->dq_tail->next = w;
		else
			db->dq_head = w;
		db->dq_tail = w;
		db_wake_owner(db);
	} else {
		watch_insert(db, w);
	}
	pthread_mutex_unlock(&db->lock);
	return 0;
}

/* ------------------------------------------------------------ writer ops */

static struct pend *pend_new(struct db *db, enum wal_op_type type, struct sh_err *err)
{
	struct pend *p = sh_calloc(1, sizeof *p);

	if (p == NULL) {
		sh_err_set(err, SH_ENOMEM, "out of memory");
		return NULL;
	}
	p->op = (struct wal_op){.type = type, .notify = true, .data = p};
	p->gen = db->gen;
	return p;
}

static void pend_submit(struct db *db, struct pend *p)
{
	db->outstanding++;
	wal_writer_submit(db->ww, &p->op);
}

/* Where the log stands once op is done. */
static uint64_t op_end(const struct wal_op *op)
{
	switch (op->type) {
	case WAL_OP_APPEND: return op->buf->n ? op->buf->last : 0;
	case WAL_OP_TRUNCATE: return op->index;
	case WAL_OP_RESET: return op->index - 1;
	}
	return 0;
}

/* A standalone append failed: it and its watch fail; the log goes on
 * from its index. */
static void standalone_failed(struct db *db, struct pend *p)
{
	if (p->gen == db->gen) {
		db->gen++;
		db->next_index = p->op.buf->first;
	}
	for (struct watch *w = watch_take(db, p->index, p->index), *next; w != NULL; w = next) {
		next = w->next;
		w->rv = p->op.rv;
		w->err = p->op.err;
		run_watch(w);
	}
}

/* A raft append found no room: the log ends before it (the log writer
 * cut it back), so it goes on from its first entry, which the owner
 * appends again (db_full); nothing from there on is durable, whatever a
 * truncation queued after it says.  Appends submitted after it speak of a
 * log that no longer is: a new generation, in which they settle nothing. */
static void raft_full(struct db *db, struct pend *p)
{
	uint64_t first = p->op.buf->first;

	db->gen++;
	db->next_index = first;
	if (db->durable >= first)
		db->durable = first - 1;
	if (!db->full)
		LOG_WARN("storage",
			 "the log cannot grow (%s): entries from %" PRIu64
			 " are kept in memory and written again once there is room",
			 p->op.err.msg, first);
	db->full = true;
	db->full_err = p->op.err;
}

/* Raft: a failed append that fails nothing for good — one that found no
 * room, or one that no longer followed the log because an earlier one
 * failed (of an older generation, and beyond where the log now ends). */
static bool raft_benign(struct db *db, const struct pend *p)
{
	if (p->op.type != WAL_OP_APPEND || wal_broken(db->wal, NULL))
		return false;
	if (p->op.rv == SH_ENOSPC)
		return true;
	return p->op.rv == SH_EINVAL && p->gen != db->gen && p->op.buf->first >= db->next_index;
}

static void op_done(struct db *db, struct pend *p)
{
	struct wal_op *op = &p->op;

	db->outstanding--;
	if (op->rv != 0 && db->o.raft && raft_benign(db, p)) {
		/* of this generation, or of an older one whose entries the log
		 * still counts on: a truncation after it kept them (hostile
		 * review: durable passed the log's end, a false ack) */
		if (op->rv == SH_ENOSPC && op->buf->first < db->next_index)
			raft_full(db, p);
	} else if (op->rv != 0 && (db->o.raft || wal_broken(db->wal, NULL))) {
		db_fail(db, &op->err); /* raft: any other failure; both: a failed flush */
	}
	if (op->rv != 0 && !db->o.raft)
		standalone_failed(db, p);
	else if (op->rv == 0 && p->gen == db->gen && op_end(op) > db->durable)
		db->durable = op_end(op);
	if (op->rv == 0 && p->gen == db->gen && op->type == WAL_OP_APPEND && db->full) {
		LOG_INFO("storage", "the log grows again (from %" PRIu64 ")", op->buf->first);
		db->full = false;
	}
	if (op->type == WAL_OP_APPEND)
		wal_buf_unref(op->buf);
	sh_free(p);
}

static void set_limit(struct db *db)
{
	uint64_t limit = db->durable;

	if (db->o.raft && db->commit < limit)
		limit = db->commit;
	pthread_mutex_lock(&db->lock);
	if (limit > db->limit) {
		db->limit = limit;
		pthread_cond_signal(&db->cond);
	}
	pthread_mutex_unlock(&db->lock);
}

/* ------------------------------------------------------------ processing */

static void take_written(struct db *db)
{
	struct wal_op *op;

	while (db->ww != NULL && (op = wal_writer_done(db->ww)) != NULL)
		op_done(db, op->data);
}

/* The applied watches and the installed snapshot: their callbacks. */
static void take_applied(struct db *db)
{
	struct watch *list;
	struct install *in;

	pthread_mutex_lock(&db->lock);
	list = db->dq_head;
	db->dq_head = db->dq_tail = NULL;
	in = db->installed;
	db->installed = NULL;
	pthread_mutex_unlock(&db->lock);
	for (struct watch *w = list, *next; w != NULL; w = next) {
		next = w->next;
		run_watch(w);
	}
	if (in == NULL)
		return;
	/* the entries the snapshot covers are applied */
	watch_fail(watch_take(db, 0, store_applied_index(db->store)), 0, NULL);
	if (in->rv == 0) {
		sh_free(db->inst_voters);
		db->inst_voters = in->voters;
		db->inst_voters_len = in->voters_len;
		in->voters = NULL;
	}
	in->done(in->arg, in->rv, &in->err, in->term, in->index, 0);
	sh_free(in->voters);
	sh_free(in);
}

void db_process(struct db *db)
{
	uint64_t v;

	if (db->efd < 0)
		atomic_store(&db->woken, false);
	else if (read(db->efd, &v, sizeof v) < 0 && errno != EAGAIN)
		LOG_ERROR("storage", "eventfd: %s", strerror(errno));
	take_written(db);
	set_limit(db);
	take_applied(db);
}

int db_fd(const struct db *db)
{
	return db->efd;
}

/* ------------------------------------------------------------ raft */

int db_append(struct db *db, struct wal_buf *b, struct sh_err *err)
{
	struct pend *p;

	if (db_failed(db, err))
		return sh_err_wrap(err, SH_ESHUTDOWN, "storage failed");
	if (b->n == 0 || b->first != db->next_index)
		return sh_err_set(err, SH_EINVAL,
				  "append of entries from %" PRIu64
				  " does not follow the log (next %" PRIu64 ")",
				  b->first, db->next_index);
	if ((p = pend_new(db, WAL_OP_APPEND, err)) == NULL)
		return err->code;
	p->op.buf = wal_buf_ref(b);
	p->index = b->first;
	db->next_index = b->last + 1;
	pend_submit(db, p);
	return 0;
}

/* A cut of the log at `keep` (entries after it gone): a new generation. */
static void cut(struct db *db, enum wal_op_type type, uint64_t keep)
{
	struct sh_err err;
	struct pend *p;

	db->gen++;
	db->next_index = keep + 1;
	if (db->durable > keep)
		db->durable = keep;
	watch_fail(watch_take(db, keep + 1, UINT64_MAX), SH_EUNAVAIL,
		   "replaced in the log (a new leader's entries)");
	if ((p = pend_new(db, type, &err)) == NULL) {
		db_fail(db, &err);
		return;
	}
	p->op.index = type == WAL_OP_RESET ? keep + 1 : keep;
	pend_submit(db, p);
}

void db_truncate(struct db *db, uint64_t index)
{
	if (index + 1 < db->next_index)
		cut(db, WAL_OP_TRUNCATE, index);
}

void db_reset(struct db *db, uint64_t next_index)
{
	cut(db, WAL_OP_RESET, next_index - 1);
	atomic_store(&db->first_index, next_index);
}

void db_commit(struct db *db, uint64_t index)
{
	if (index > db->commit) {
		db->commit = index;
		set_limit(db);
	}
}

int db_install(struct db *db, uint64_t index, db_done_fn done, void *arg, struct sh_err *err)
{
	struct install *in = sh_calloc(1, sizeof *in);

	if (in == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	*in = (struct install){.index = index, .done = done, .arg = arg};
	pthread_mutex_lock(&db->lock);
	if (db->install != NULL || db->installed != NULL) {
		pthread_mutex_unlock(&db->lock);
		sh_free(in);
		return sh_err_set(err, SH_EBUSY, "a snapshot is being installed already");
	}
	db->install = in;
	pthread_cond_signal(&db->cond);
	pthread_mutex_unlock(&db->lock);
	return 0;
}

void db_installed_voters(const struct db *db, const unsigned char **voters, size_t *len)
{
	*voters = db->inst_voters;
	*len = db->inst_voters_len;
}

int db_read(struct db *db, uint64_t from, size_t max_records, size_t max_bytes,
	    struct wal_buf **out, struct sh_err *err)
{
	return wal_read(db->wal, from, max_records, max_bytes, out, err);
}

uint64_t db_term_at(struct db *db, uint64_t index)
{
	uint64_t term = 0;
	struct sh_err err;

	if (index == 0 || wal_term(db->wal, index, &term, &err) != 0)
		return 0;
	return term;
}

/* ------------------------------------------------------------ the rest */

struct store *db_store(struct db *db)
{
	return db->store;
}

uint64_t db_first_index(const struct db *db)
{
	return atomic_load(&((struct db *)(uintptr_t)db)->first_index);
}

uint64_t db_last_index(const struct db *db)
{
	return db->next_index - 1;
}

uint64_t db_durable_index(const struct db *db)
{
	return db->durable;
}

bool db_snapshotting(const struct db *db)
{
	return atomic_load(&((struct db *)(uintptr_t)db)->snapshotting);
}

uint64_t db_applied_index(const struct db *db)
{
	return store_applied_index(db->store);
}

void db_set_leading(struct db *db, bool leading)
{
	if (db->ix != NULL)
		indexer_set_leading(db->ix, leading);
}

void db_index_stats(const struct db *db, struct indexer_stats *st)
{
	memset(st, 0, sizeof *st);
	if (db->ix != NULL)
		indexer_stats(db->ix, st);
}

uint64_t db_snapshots(const struct db *db)
{
	return atomic_load(&((struct db *)(uintptr_t)db)->snapshots);
}

uint64_t db_snapshot_index(const struct db *db)
{
	return atomic_load(&((struct db *)(uintptr_t)db)->last_snap);
}

void db_boot_snapshot(const struct db *db, uint64_t *index, uint64_t *term,
		      const unsigned char **voters, size_t *len)
{
	*index = db->boot_snap_index;
	*term = db->boot_snap_term;
	*voters = db->boot_voters;
	*len = db->boot_voters_len;
}

const char *db_snap_dir(const struct db *db)
{
	return db->snap_dir;
}

void db_free(struct db *db)
{
	wal_close(db->wal);
	if (db->store != NULL)
		store_set_indexer(db->store, NULL);
	indexer_free(db->ix);
	store_free(db->store);
	if (db->efd >= 0)
		close(db->efd);
	pthread_cond_destroy(&db->snap_cond);
	pthread_cond_destroy(&db->cond);
	pthread_mutex_destroy(&db->lock);
	sh_free(db->boot_voters);
	sh_free(db->dir);
	sh_free(db->wal_dir);
	sh_free(db->snap_dir);
	sh_free(db->inst_voters);
	sh_free(db);
}

void db_close(struct db *db)
{
	if (db == NULL)
		return;
	if (db->ww != NULL) {
		wal_writer_quiesce(db->ww); /* every queued op is done */
		take_written(db);
		wal_writer_stop(db->ww);
		db->ww = NULL;
		set_limit(db);
	}
	indexer_stop(db->ix); /* apply must not wait for the graph now */
	db_stop_applier(db);  /* standalone: applies up to the limit first */
	take_applied(db);
	watch_fail(watch_take(db, 0, UINT64_MAX), SH_ESHUTDOWN, "not applied: the storage closed");
	db_free(db);
}
