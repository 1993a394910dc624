/*
 * db_open: opening the storage — the latest snapshot, the log verified and
 * replayed after it, then the threads started (doc/storage-format.md,
 * "Recovery").  Runs on the owner's thread before anything else uses the
 * db.  A long recovery says what it does: a line when it starts loading
 * the snapshot and replaying the log, then progress at most every
 * PROGRESS_MS (done, total, rate, time left; the points indexed so far).
 */
#include "build.h"

#include "storage/db_impl.h"
#include "storage/diskio.h"
#include "storage/indexer.h"

#include "storage/snapshot.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>

#define REPLAY_RECORDS 4096
#define REPLAY_BYTES   (64u << 20)
#define REPLAY_SLICE   8    /* entries applied between two looks at the clock */
#define PROGRESS_MS    1000 /* at most one progress line per second */

/* ------------------------------------------------------------ progress */

void db_progress_start(struct db_progress *p, const char *what, uint64_t total,
		       const struct store *st)
{
	*p = (struct db_progress){what, "entries", 1, sh_clock_mono_ms(), 0, total, st};
	p->next = p->t0 + PROGRESS_MS;
}

void db_progress_note(struct db_progress *p, uint64_t done)
{
	uint64_t now = sh_clock_mono_ms(), el = now - p->t0, rate, left;
	char points[48] = "";

	if (now < p->next || el == 0)
		return;
	p->next = now + PROGRESS_MS;
	rate = done * 1000 / el;
	left = rate > 0 && p->total > done ? (p->total - done) / rate : 0;
	if (p->st != NULL)
		snprintf(points, sizeof points, ", %zu points indexed", store_points(p->st));
	LOG_INFO("storage",
		 "%s: %" PRIu64 " of %" PRIu64 " %s (%" PRIu64 "%%)%s, %" PRIu64
		 " %s/s, about %" PRIu64 " s left",
		 p->what, done / p->scale, p->total / p->scale, p->unit,
		 p->total ? done * 100 / p->total : 100, points, rate / p->scale, p->unit, left);
}

int db_apply_sliced(struct db *db, const struct wal_buf *b, uint64_t upto, uint64_t *rejected,
		    struct db_progress *p, uint64_t first)
{
	uint64_t to = store_applied_index(db->store);
	size_t pos = 0;
	int rv;

	/* a stop (raft: the rest stays unapplied) need not wait for the
	 * whole batch: a catch-up of big entries took 20 s to stop */
	uint64_t slice = p->wake ? 1 : REPLAY_SLICE;

	while (to < b->last && to < upto && !atomic_load(&db->stopping)) {
		to = to + slice < upto ? to + slice : upto;
		if ((rv = db_apply_buf(db, b, &pos, to, rejected)) != 0)
			return rv;
		db_progress_note(p, store_applied_index(db->store) - first + 1);
		if (p->wake && sh_clock_mono_ns() - p->woke_ns >= 1000000) {
			p->woke_ns = sh_clock_mono_ns();
			db_wake_owner(db);
		}
	}
	return 0;
}

/* snap_read's reader, counting the bytes of content read. */
struct counted {
	hnsw_read_fn read;
	void *rctx;
	uint64_t bytes;
	struct db_progress *p;
	struct store **out;
};

static int counted_read(void *ctx, void *buf, size_t len)
{
	struct counted *c = ctx;

	c->bytes += len;
	db_progress_note(c->p, c->bytes);
	return c->read(c->rctx, buf, len);
}

static int boot_load_fn(void *arg, hnsw_read_fn read, void *rctx, uint64_t index, uint64_t term,
			struct sh_err *err)
{
	struct counted *c = arg;

	c->read = read;
	c->rctx = rctx;
	return store_load(counted_read, c, index, term, c->out, err);
}

static char *join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = sh_malloc(n);

	if (p != NULL)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

int db_load_fn(void *arg, hnsw_read_fn read, void *rctx, uint64_t index, uint64_t term,
	       struct sh_err *err)
{
	return store_load(read, rctx, index, term, arg, err);
}

int db_copy_voters(const struct store *s, unsigned char **out, size_t *len)
{
	const unsigned char *v = store_voters(s, len);

	*out = NULL;
	if (*len == 0)
		return 0;
	if ((*out = sh_malloc(*len)) == NULL) {
		*len = 0;
		return SH_ENOMEM;
	}
	memcpy(*out, v, *len);
	return 0;
}

/* snap_read into db->store, saying how far it got. */
static int load_with_progress(struct db *db, uint64_t index, struct sh_err *err)
{
	char path[4200], what[64];
	struct stat sb;
	struct db_progress p;
	struct counted c = {.p = &p, .out = &db->store};

	snap_path(path, sizeof path, db->snap_dir, index);
	snprintf(what, sizeof what, "loading the snapshot at index %" PRIu64, index);
	db_progress_start(&p, what, stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0, NULL);
	p.unit = "MiB";
	p.scale = 1u << 20;
	LOG_INFO("storage", "%s (%" PRIu64 " MiB)", what, p.total >> 20);
	return snap_read(db->snap_dir, index, boot_load_fn, &c, err);
}

static int load_snapshot(struct db *db, struct db_recovery *rec, struct sh_err *err)
{
	uint64_t index;
	int rv = snap_latest(db->snap_dir, &index, err);

	if (rv != 0)
		return rv;
	if (index == 0)
		return store_new(&db->store, err);
	if ((rv = load_with_progress(db, index, err)) != 0)
		return rv;
	rec->snap_index = db->boot_snap_index = index;
	rec->snap_term = db->boot_snap_term = store_applied_term(db->store);
	if (db_copy_voters(db->store, &db->boot_voters, &db->boot_voters_len) != 0)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	atomic_store(&db->last_snap, index);
	return snap_prune(db->snap_dir, index, err);
}

/* Apply the log entries from..last. */
static int replay(struct db *db, uint64_t from, uint64_t last, struct db_recovery *rec,
		  struct sh_err *err)
{
	const uint64_t first = from;
	struct db_progress p;

	db_progress_start(&p, "replaying the log", last - from + 1, db->store);
	if (from <= last)
		LOG_INFO("storage",
			 "replaying %" PRIu64 " entries of the log (%" PRIu64 "..%" PRIu64 ")",
			 last - from + 1, from, last);
	while (from <= last) {
		struct wal_buf *b;
		uint64_t n = last - from + 1 < REPLAY_RECORDS ? last - from + 1 : REPLAY_RECORDS;
		int rv = wal_read(db->wal, from, n, REPLAY_BYTES, &b, err);

		if (rv != 0)
			return sh_err_wrap(err, rv, "replay");
		if ((rv = db_apply_sliced(db, b, last, &rec->rejected, &p, first)) != 0) {
			db_failed(db, err);
			wal_buf_unref(b);
			return sh_err_wrap(err, rv, "replay");
		}
		rec->replayed += b->last - from + 1;
		from = b->last + 1;
		wal_buf_unref(b);
	}
	return 0;
}

/* Line the log up with the snapshot, then replay it. */
static int reconcile(struct db *db, struct db_recovery *rec, struct sh_err *err)
{
	uint64_t s = store_applied_index(db->store);
	uint64_t first = wal_first_index(db->wal), last = wal_last_index(db->wal);

	if (last < s) {
		LOG_WARN("storage",
			 "the log ends at index %" PRIu64 ", before the snapshot at %" PRIu64
			 " (entries lost in a machine crash under fsync = interval or never): "
			 "starting the log again after the snapshot",
			 last, s);
		return wal_reset(db->wal, s + 1, err);
	}
	if (first > s + 1)
		return sh_err_set(err, SH_ECORRUPT,
				  "the log starts at index %" PRIu64
				  " but the snapshot covers only "
				  "up to %" PRIu64 ": entries %" PRIu64 "..%" PRIu64 " are missing",
				  first, s, s + 1, first - 1);
	if (db->o.raft && db->o.replay_upto < last)
		last = db->o.replay_upto > s ? db->o.replay_upto : s;
	return replay(db, s + 1, last, rec, err);
}

/* The log as found is durable (fsynced now) and applied up to the store. */
static int settle(struct db *db, struct sh_err *err)
{
	int rv = wal_sync(db->wal, err);

	db->next_index = wal_last_index(db->wal) + 1;
	db->durable = db->next_index - 1;
	db->limit = db->commit = store_applied_index(db->store);
	atomic_store(&db->first_index, wal_first_index(db->wal));
	return rv;
}

static void init_cond_monotonic(pthread_cond_t *c)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
}

static int alloc_db(const struct db_opts *o, struct db **out, struct sh_err *err)
{
	struct db *db = sh_calloc(1, sizeof *db);
	int rv;

	if (db == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	db->o = *o;
	db->efd = o->manual ? -1 : eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	pthread_mutex_init(&db->lock, NULL);
	init_cond_monotonic(&db->cond); /* the apply thread's timed waits */
	pthread_cond_init(&db->snap_cond, NULL);
	db->dir = sh_strdup(o->dir);
	db->wal_dir = join(o->dir, "wal");
	db->snap_dir = join(o->dir, "snap");
	*out = db;
	if (db->efd < 0 && !o->manual)
		return sh_err_sys(err, errno, "cannot create an eventfd");
	if ((rv = diskio_mkdir(o->dir, err)) != 0)
		return rv;
	if (db->dir == NULL || db->wal_dir == NULL || db->snap_dir == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	return 0;
}

static void log_recovery(const struct db_recovery *rec)
{
	char hex[33];

	digest_hex(rec->digest, hex);
	LOG_INFO("storage",
		 "recovered snapshot at index %" PRIu64 " (term %" PRIu64 "), replayed %" PRIu64
		 " entries up to index %" PRIu64 ": %zu collections, %zu points, digest %s, in "
		 "%" PRIu64 " ms",
		 rec->snap_index, rec->snap_term, rec->replayed, rec->last_index, rec->collections,
		 rec->points, hex, rec->ms);
}

/* Background indexing (storage/indexer.h) unless manual or inline. */
static int start_indexer(struct db *db, struct sh_err *err)
{
	struct indexer_opts io = {db->o.index_threads, db->o.max_fresh_bytes};
	int rv;

	if (db->o.manual || db->o.index_threads == 0)
		return 0;
	if ((rv = indexer_new(&io, &db->ix, err)) != 0)
		return rv;
	store_set_indexer(db->store, db->ix);
	return 0;
}

int db_open(const struct db_opts *o, struct db **out, struct db_recovery *rec, struct sh_err *err)
{
	struct wal_opts wo = {o->segment_bytes, o->wal_ahead_bytes};
	struct wal_open_info info;
	struct db_recovery dummy;
	uint64_t t0 = sh_clock_mono_ms();
	struct db *db = NULL;
	int rv;

	rec = rec != NULL ? rec : &dummy;
	memset(rec, 0, sizeof *rec);
	if ((rv = alloc_db(o, &db, err)) != 0 || db == NULL ||
	    (rv = load_snapshot(db, rec, err)) != 0 || (rv = start_indexer(db, err)) != 0 ||
	    (rv = wal_open(db->wal_dir, &wo, &db->wal, &info, err)) != 0 ||
	    (rv = reconcile(db, rec, err)) != 0)
		goto fail;
	rec->cut_bytes = info.cut_bytes;
	db->term = o->term ? o->term : 1;
	if (wal_last_term(db->wal) > db->term)
		db->term = wal_last_term(db->wal);
	if ((rv = settle(db, err)) != 0 || (rv = db_start(db, err)) != 0)
		goto fail;
	rec->first_index = wal_first_index(db->wal);
	rec->last_index = db->next_index - 1;
	rec->collections = store_collections(db->store);
	rec->points = store_points(db->store);
	rec->digest = store_digest(db->store);
	rec->ms = sh_clock_mono_ms() - t0;
	log_recovery(rec);
	*out = db;
	return 0;
fail:
	if (db != NULL)
		db_close(db);
	return sh_err_wrap(err, rv, "storage");
}
