/*
 * db_open: opening the storage — the latest snapshot, the log verified and
 * replayed after it, then the threads started (doc/storage-format.md,
 * "Recovery").  Runs on the owner's thread before anything else uses the
 * db.
 */
#include "build.h"

#include "storage/db_impl.h"

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

#define REPLAY_RECORDS 4096
#define REPLAY_BYTES   (64u << 20)

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

int db_copy_voters(struct db *db, unsigned char **out, size_t *len)
{
	const unsigned char *v = store_voters(db->store, len);

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

static int load_snapshot(struct db *db, struct db_recovery *rec, struct sh_err *err)
{
	uint64_t index;
	int rv = snap_latest(db->snap_dir, &index, err);

	if (rv != 0)
		return rv;
	if (index == 0)
		return store_new(&db->store, err);
	if ((rv = snap_read(db->snap_dir, index, db_load_fn, &db->store, err)) != 0)
		return rv;
	rec->snap_index = db->boot_snap_index = index;
	rec->snap_term = db->boot_snap_term = store_applied_term(db->store);
	if (db_copy_voters(db, &db->boot_voters, &db->boot_voters_len) != 0)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	atomic_store(&db->last_snap, index);
	return snap_prune(db->snap_dir, index, err);
}

/* Apply the log entries from..last. */
static int replay(struct db *db, uint64_t from, uint64_t last, struct db_recovery *rec,
		  struct sh_err *err)
{
	while (from <= last) {
		struct wal_buf *b;
		uint64_t n = last - from + 1 < REPLAY_RECORDS ? last - from + 1 : REPLAY_RECORDS;
		int rv = wal_read(db->wal, from, n, REPLAY_BYTES, &b, err);

		if (rv != 0)
			return sh_err_wrap(err, rv, "replay");
		if ((rv = db_apply_buf(db, b, last, &rec->rejected)) != 0) {
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

static int alloc_db(const struct db_opts *o, struct db **out, struct sh_err *err)
{
	struct db *db = sh_calloc(1, sizeof *db);

	if (db == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	db->o = *o;
	db->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	pthread_mutex_init(&db->lock, NULL);
	pthread_cond_init(&db->cond, NULL);
	pthread_cond_init(&db->snap_cond, NULL);
	db->dir = sh_strdup(o->dir);
	db->wal_dir = join(o->dir, "wal");
	db->snap_dir = join(o->dir, "snap");
	*out = db;
	if (db->efd < 0)
		return sh_err_sys(err, errno, "cannot create an eventfd");
	if (mkdir(o->dir, 0750) != 0 && errno != EEXIST)
		return sh_err_sys(err, errno, "cannot create directory '%s'", o->dir);
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

int db_open(const struct db_opts *o, struct db **out, struct db_recovery *rec, struct sh_err *err)
{
	struct wal_opts wo = {o->segment_bytes};
	struct wal_open_info info;
	struct db_recovery dummy;
	uint64_t t0 = sh_clock_mono_ms();
	struct db *db = NULL;
	int rv;

	rec = rec != NULL ? rec : &dummy;
	memset(rec, 0, sizeof *rec);
	if ((rv = alloc_db(o, &db, err)) != 0 || db == NULL ||
	    (rv = load_snapshot(db, rec, err)) != 0 ||
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
