/* Disk full: the storage on a small tmpfs (mounted here when the test runs
 * as root and may mount), or else under RLIMIT_FSIZE.  Writes fail with a
 * clear error once the log cannot grow; every write acknowledged before is
 * kept; a snapshot that cannot be written fails cleanly (no temporary file
 * left); when room comes back, writes work again without a restart; and a
 * restart recovers exactly what was acknowledged.  Runs twice: with the
 * db's threads, and in manual mode (db.h). */
#include "build.h"

#include "storage/db.h"
#include "tap.h"

#include "storage_util.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>

static char mnt[600], filler[700];
static bool mounted;

/* A 2 MiB tmpfs with 1.5 MiB taken by a file we can delete later. */
static bool setup_tmpfs(const char *root)
{
	FILE *f;
	static char block[64 << 10];

	snprintf(mnt, sizeof mnt, "%s/mnt", root);
	mkdir(mnt, 0750);
	if (getenv("SHOAL_DISKFULL_RLIMIT") != NULL) /* to test the other way */
		return false;
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=2m") != 0) {
		diag("cannot mount a tmpfs (%s): using RLIMIT_FSIZE", strerror(errno));
		return false;
	}
	mounted = true;
	snprintf(filler, sizeof filler, "%s/filler", mnt);
	f = fopen(filler, "w");
	for (int i = 0; f != NULL && i < 24; i++)
		fwrite(block, 1, sizeof block, f);
	if (f != NULL)
		fclose(f);
	return true;
}

static struct db_opts opts(const char *dir, bool manual)
{
	return (struct db_opts){.dir = dir,
				.fsync = WAL_FSYNC_ALWAYS,
				.segment_bytes = 1 << 20,
				.max_payload_bytes = 64 << 10,
				.term = 1,
				.manual = manual};
}

/* *.tmp files in DIR/wal and DIR/snap. */
static int count_tmp(const char *dir)
{
	const char *subs[] = {"wal", "snap"};
	char path[800];
	int n = 0;

	for (int i = 0; i < 2; i++) {
		DIR *d;
		struct dirent *e;

		snprintf(path, sizeof path, "%s/%s", dir, subs[i]);
		if ((d = opendir(path)) == NULL)
			continue;
		while ((e = readdir(d)) != NULL)
			n += strstr(e->d_name, ".tmp") != NULL;
		closedir(d);
	}
	return n;
}

static int upsert_big(struct db *db, uint64_t id, struct sh_err *err)
{
	static char payload[20000];
	float v[4] = {1, 2, 3, (float)id};
	struct coll_point p = {id, v, 4, payload, 0};
	struct entry e = {.type = WAL_UPSERT, .collection = "c", .points = &p, .n = 1};

	memset(payload, 'x', sizeof payload);
	memcpy(payload, "{\"x\":\"", 6);
	memcpy(payload + sizeof payload - 2, "\"}", 2);
	p.payload_len = sizeof payload;
	return db_write(db, &e, NULL, NULL, err);
}

static void run(bool manual)
{
	const char *root = make_tmpdir(manual ? "diskfull-manual" : "diskfull");
	char dir[700];
	struct db_opts o;
	struct db_recovery rec;
	struct entry cr = {.type = WAL_CREATE};
	struct sh_err err;
	struct db *db;
	struct digest d;
	uint64_t acked = 0;
	int rv = 0;
	bool tmpfs = setup_tmpfs(root);
	struct rlimit lim;

	snprintf(dir, sizeof dir, "%s/data", tmpfs ? mnt : root);
	mkdir(dir, 0750);
	o = opts(dir, manual);
	if (db_open(&o, &db, NULL, &err) != 0)
		bail_out("open: %s", err.msg);
	snprintf(cr.params.name, sizeof cr.params.name, "c");
	cr.params.dim = 4;
	if (db_write(db, &cr, NULL, NULL, &err) != 0)
		bail_out("create: %s", err.msg);
	if (!tmpfs) {
		signal(SIGXFSZ, SIG_IGN);
		getrlimit(RLIMIT_FSIZE, &lim);
		setrlimit(RLIMIT_FSIZE, &(struct rlimit){400 << 10, lim.rlim_max});
	}
	while (acked < 1000 && (rv = upsert_big(db, acked, &err)) == 0)
		acked++;
	ok(rv != 0 && acked > 5, "writes fail once the disk is full (after %" PRIu64 ")", acked);
	is_int(rv, tmpfs ? SH_ENOSPC : SH_ETOOBIG, "with the code for %s",
	       tmpfs ? "no space" : "file too large");
	like(err.msg, "wal: segment '", "the message names the segment");
	like(err.msg, "write failed at offset", "and the offset");
	like(err.msg, tmpfs ? "No space left on device" : "File too large", "and why");
	is_int(upsert_big(db, 5000, &err), rv, "the next write fails the same way");
	if (!tmpfs) /* the snapshot is smaller than the log: lower the limit more */
		setrlimit(RLIMIT_FSIZE, &(struct rlimit){64 << 10, lim.rlim_max});
	is_int(db_snapshot(db, &err), tmpfs ? SH_ENOSPC : SH_ETOOBIG,
	       "a snapshot cannot be written either");
	like(err.msg, "snapshot: cannot write '", "and says so");
	is_int(count_tmp(dir), 0, "no temporary file is left behind");
	is_int(store_points(db_store(db)), acked, "every acknowledged write is visible");

	if (tmpfs)
		unlink(filler);
	else
		setrlimit(RLIMIT_FSIZE, &lim);
	is_int(upsert_big(db, acked, &err), 0, "with room again, writes work without a restart");
	acked++;
	d = store_digest(db_store(db));
	db_close(db);
	if (db_open(&o, &db, &rec, &err) != 0)
		bail_out("reopen: %s", err.msg);
	is_int(rec.points, acked, "a restart recovers every acknowledged write");
	ok(digest_equal(rec.digest, d), "and nothing else");
	db_close(db);
	if (mounted && umount(mnt) != 0)
		diag("umount %s: %s", mnt, strerror(errno));
	mounted = false;
	rm_rf(root);
}

/* ------------------------------------------------------------ raft mode */

static void drain(struct db *db)
{
	unsigned what;

	while ((what = db_pending(db)) != 0) {
		db_run(db, what);
		db_process(db);
	}
}

/* Prepare an upsert of a big point as (1, index) and queue it: a buffer
 * the caller appends (again) with db_append. */
static struct wal_buf *big_entry(struct db *db, uint64_t index)
{
	static char payload[20000];
	float v[4] = {1, 2, 3, (float)index};
	struct coll_point p = {index, v, 4, payload, sizeof payload};
	struct entry e = {.type = WAL_UPSERT, .collection = "c", .points = &p, .n = 1};
	struct wal_buf *b;
	struct sh_err err;

	memset(payload, 'x', sizeof payload);
	memcpy(payload, "{\"x\":\"", 6);
	memcpy(payload + sizeof payload - 2, "\"}", 2);
	if (db_prepare(db, &e, 1, index, &b, NULL, &err) != 0)
		bail_out("prepare %" PRIu64 ": %s", index, err.msg);
	return b;
}

/* Fill the disk with entries 2.. (one per append, several queued at a
 * time); the entries it could not write stay in bufs[]. */
static uint64_t fill_log(struct db *db, struct wal_buf **bufs, size_t max, size_t *n)
{
	struct sh_err err;
	uint64_t index = 2;

	*n = 0;
	while (!db_full(db, NULL) && index < 2 + max - 3) {
		for (int k = 0; k < 3; k++, index++) {
			bufs[*n] = big_entry(db, index);
			if (db_append(db, bufs[(*n)++], &err) != 0)
				bail_out("append %" PRIu64 ": %s", index, err.msg);
		}
		db_run(db, DB_WORK_WRITE);
		db_process(db);
	}
	return index;
}

/* A raft-mode db in DIR/data of the tmpfs, with collection "c" created,
 * committed and applied. */
static struct db *raft_open(struct db_opts *o, char *dir, size_t size)
{
	struct entry cr = {.type = WAL_CREATE};
	struct sh_err err;
	struct wal_buf *b;
	struct db *db;

	snprintf(dir, size, "%s/data", mnt);
	mkdir(dir, 0750);
	*o = opts(dir, true);
	o->raft = true;
	if (db_open(o, &db, NULL, &err) != 0)
		bail_out("open: %s", err.msg);
	snprintf(cr.params.name, sizeof cr.params.name, "c");
	cr.params.dim = 4;
	if (db_prepare(db, &cr, 1, 1, &b, NULL, &err) != 0 || db_append(db, b, &err) != 0)
		bail_out("create: %s", err.msg);
	wal_buf_unref(b);
	db_commit(db, 1);
	drain(db);
	return db;
}

/* The buffers fill_log made, the tmpfs and root: gone. */
static void raft_close(const char *root, struct wal_buf **bufs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		wal_buf_unref(bufs[i]);
	if (mounted && umount(mnt) != 0)
		diag("umount %s: %s", mnt, strerror(errno));
	mounted = false;
	rm_rf(root);
}

/* Raft mode (node_full.c's storage half): an append that finds no room
 * cuts the log back and says db_full, without failing the storage; the
 * appends queued after it settle nothing; the owner appends the same
 * entries again once there is room, and db_full ends. */
static void run_raft(void)
{
	const char *root = make_tmpdir("diskfull-raft");
	struct wal_buf *bufs[400];
	struct db_opts o;
	struct db_recovery rec;
	struct sh_err err;
	struct db *db;
	char dir[700];
	size_t n;
	uint64_t end, last;

	if (!setup_tmpfs(root)) {
		skip(9, "raft mode needs a tmpfs (a file size limit fails the storage for good)");
		rm_rf(root);
		return;
	}
	db = raft_open(&o, dir, sizeof dir);
	end = fill_log(db, bufs, sizeof bufs / sizeof *bufs, &n);
	ok(db_full(db, &err), "an append that finds no room: db_full");
	like(err.msg, "No space left on device", "with the reason");
	ok(!db_failed(db, NULL), "the storage has not failed");
	last = db_last_index(db);
	ok(last >= 2 && last < end - 1,
	   "the log ends before the entry that found no room (%" PRIu64 ")", last);
	is_int(db_durable_index(db), last, "and is durable up to there");
	unlink(filler);
	for (size_t i = 0; i < n; i++) /* the owner appends the rest again */
		if (bufs[i]->first > last && (err.code = db_append(db, bufs[i], &err)) != 0)
			bail_out("append again: %s", err.msg);
	drain(db);
	ok(!db_full(db, NULL), "room again: the same entries append, db_full ends");
	is_int(db_durable_index(db), end - 1, "every entry is durable");
	db_commit(db, end - 1);
	drain(db);
	db_close(db);
	o.replay_upto = end - 1;
	if (db_open(&o, &db, &rec, &err) != 0)
		bail_out("reopen: %s", err.msg);
	is_int(rec.points, end - 2, "a restart finds every entry, each once");
	db_close(db);
	raft_close(root, bufs, n);
}

/* Take the file system's last bytes too (DIR/filler2 of the tmpfs). */
static void take_the_rest(void)
{
	char f2[800], blk[4096] = {0};
	FILE *f;

	snprintf(f2, sizeof f2, "%s/filler2", mnt);
	f = fopen(f2, "w");
	while (f != NULL && fwrite(blk, 1, sizeof blk, f) == sizeof blk && fflush(f) == 0)
		;
	if (f != NULL)
		fclose(f);
}

/* Queue entries from..from+2 (three appends); returns the first's buffer. */
static struct wal_buf *queue_rewrite(struct db *db, uint64_t from)
{
	struct wal_buf *x[3];
	struct sh_err err;

	for (int k = 0; k < 3; k++) {
		x[k] = big_entry(db, from + (uint64_t)k);
		if (db_append(db, x[k], &err) != 0)
			bail_out("rewrite: %s", err.msg);
		if (k > 0)
			wal_buf_unref(x[k]);
	}
	return x[0];
}

/* An append that finds no room, processed only after a truncation whose
 * kept prefix reaches into it (a new leader's conflict while the rewrite
 * is in flight): the truncation must not make the lost entries durable
 * (hostile review of the disk-full mode: durable became 26, the disk held
 * up to 25). */
static void run_raft_trunc(void)
{
	const char *root = make_tmpdir("diskfull-trunc");
	struct wal_buf *bufs[400], *a;
	struct db_opts o;
	struct db_recovery rec;
	struct sh_err err;
	struct db *db;
	char dir[700];
	size_t n;
	uint64_t last;

	if (!setup_tmpfs(root)) {
		skip(4, "needs a tmpfs");
		rm_rf(root);
		return;
	}
	db = raft_open(&o, dir, sizeof dir);
	fill_log(db, bufs, sizeof bufs / sizeof *bufs, &n);
	ok(db_full(db, NULL), "full");
	last = db_last_index(db);
	take_the_rest();
	a = queue_rewrite(db, last + 1); /* node_full_tick: the rewrite (disk still full) */
	/* io_truncate(from = last + 2): a new leader keeps last+1, replaces after */
	db_truncate(db, last + 1);
	db_run(db, DB_WORK_WRITE);
	db_process(db);
	ok(db_durable_index(db) <= last,
	   "durable (%" PRIu64 ") does not pass the log on disk (%" PRIu64 ")",
	   db_durable_index(db), last);
	ok(db_full(db, NULL) || db_last_index(db) <= last,
	   "the storage still says full or its log ends where the disk's does");
	wal_buf_unref(a);
	db_close(db);
	o.replay_upto = 1;
	if (db_open(&o, &db, &rec, &err) != 0)
		bail_out("reopen: %s", err.msg);
	ok(db_last_index(db) == last, "the disk holds up to %" PRIu64, last);
	db_close(db);
	raft_close(root, bufs, n);
}

int main(void)
{
	diag("---- with threads");
	run(false);
	diag("---- manual mode");
	run(true);
	diag("---- raft mode");
	run_raft();
	diag("---- raft mode: a truncation over an append that found no room");
	run_raft_trunc();
	return done_testing();
}
