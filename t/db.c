/* Tests of storage/db: the write path (blocking and pipelined), writes
 * refused before they reach the log, a conflict found only when applying,
 * restart by replay, snapshots (on demand and by entry count) with the log
 * prefix dropped, snapshot + replay giving bit-identical search results and
 * digest to the node that never restarted, damaged snapshots refused with
 * file and offset, snapshot chunks, a log that starts after the snapshot
 * (refused) or ends before it (reset); a snapshot written by a child
 * process beside the apply (held, killed); the raft mode (entries applied once
 * committed and durable, truncation, install of a snapshot, reset).  Each
 * runs twice: with the db's threads and in manual mode (db_run on this
 * thread); and in manual mode nothing is written, durable or applied until
 * db_run. */
#include "build.h"

#include "storage/db.h"
#include "storage/diskio.h"
#include "storage/snapshot.h"
#include "tap.h"
#include "util/alloc.h"
#include "util/rand.h"

#include "storage_util.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#define DIM 16

static char root[480];
static char dir[600];
static bool manual; /* the mode of this round */

static struct db_opts opts(const char *name)
{
	snprintf(dir, sizeof dir, "%s/%s", root, name);
	mkdir(dir, 0750);
	return (struct db_opts){.dir = dir,
				.fsync = WAL_FSYNC_ALWAYS,
				.segment_bytes = WAL_MIN_SEG,
				.max_payload_bytes = 1024,
				.term = 1,
				.manual = manual};
}

/* Manual mode: run everything queued and take the completions, until
 * idle.  Returns whether there was anything. */
static bool drain(struct db *db)
{
	unsigned what;
	bool any = false;

	while ((what = db_pending(db)) != 0) {
		db_run(db, what);
		db_process(db);
		any = true;
	}
	return any;
}

/* Take what the db did: wait for its eventfd (threads) or run it
 * (manual).  False when nothing came. */
static bool settle(struct db *db, int ms)
{
	struct pollfd p = {db_fd(db), POLLIN, 0};

	if (manual)
		return drain(db);
	if (poll(&p, 1, ms) <= 0)
		return false;
	db_process(db);
	return true;
}

static struct db *open_ok(const struct db_opts *o, struct db_recovery *rec)
{
	struct db *db;
	struct sh_err err;

	if (db_open(o, &db, rec, &err) != 0)
		bail_out("db_open: %s", err.msg);
	return db;
}

static void create(struct db *db, const char *name)
{
	struct entry e = {.type = WAL_CREATE};
	struct sh_err err;

	snprintf(e.params.name, sizeof e.params.name, "%s", name);
	e.params.dim = DIM;
	e.params.metric = SH_METRIC_L2;
	e.params.m = 8;
	e.params.ef_construction = 40;
	if (db_write(db, &e, NULL, NULL, &err) != 0)
		bail_out("create: %s", err.msg);
}

/* Deterministic points: id i has a vector from seed i and, for odd i, a
 * payload. */
static void point(uint64_t id, unsigned gen, float *v, char *payload, struct coll_point *p)
{
	struct sh_rand r;

	sh_rand_seed(&r, id * 1000 + gen);
	for (int j = 0; j < DIM; j++)
		v[j] = (float)sh_rand_normal(&r);
	snprintf(payload, 64, "{\"id\": %" PRIu64 ", \"gen\": %u}", id, gen);
	*p = (struct coll_point){id, v, DIM, id % 2 ? payload : NULL, id % 2 ? strlen(payload) : 0};
}

/* Upsert ids [first, first + n) in one entry. */
static void upsert_range(struct db *db, uint64_t first, size_t n, unsigned gen)
{
	static float v[512][DIM];
	static char pl[512][64];
	struct coll_point p[512];
	struct entry e = {.type = WAL_UPSERT, .collection = "c", .points = p, .n = n};
	struct sh_err err;

	for (size_t i = 0; i < n; i++)
		point(first + i, gen, v[i], pl[i], &p[i]);
	if (db_write(db, &e, NULL, NULL, &err) != 0)
		bail_out("upsert: %s", err.msg);
}

static void delete_ids(struct db *db, uint64_t from, uint64_t step, size_t n)
{
	uint64_t ids[256];
	struct entry e = {.type = WAL_DELETE, .collection = "c", .ids = ids, .n = n};
	struct sh_err err;

	for (size_t i = 0; i < n; i++)
		ids[i] = from + i * step;
	if (db_write(db, &e, NULL, NULL, &err) != 0)
		bail_out("delete: %s", err.msg);
}

/* Search results of 40 fixed queries, as raw bytes. */
static void results(struct db *db, struct hnsw_result *out)
{
	struct coll *c = store_get(db_store(db), "c");
	struct sh_rand r;
	struct sh_err err;

	sh_rand_seed(&r, 99);
	for (int q = 0; q < 40; q++) {
		float v[DIM];
		size_t n = 0;

		for (int j = 0; j < DIM; j++)
			v[j] = (float)sh_rand_normal(&r);
		memset(out + q * 10, 0, 10 * sizeof *out);
		coll_search(c, v, 10, 32, false, out + q * 10, &n, &err);
	}
	coll_unref(c);
}

static void test_write_restart(void)
{
	struct db_opts o = opts("basic");
	struct db_recovery rec;
	struct db *db = open_ok(&o, &rec);
	struct digest d;
	struct sh_err err;
	struct coll *c;
	uint64_t index;
	size_t affected;
	struct entry bad = {.type = WAL_DELETE, .collection = "nope", .ids = &index, .n = 1};

	is_int(rec.snap_index + rec.replayed + rec.last_index, 0,
	       "a new data dir: nothing to recover");
	create(db, "c");
	upsert_range(db, 0, 100, 0);
	delete_ids(db, 0, 10, 10);
	is_int(db_last_index(db), 3, "three entries");
	is_int(db_write(db, &bad, &index, &affected, &err), SH_ENOTFOUND, "unknown collection");
	is_str(err.msg, "collection 'nope' does not exist", "says which");
	is_int(db_last_index(db), 3, "the refused write never reached the log");
	c = store_get(db_store(db), "c");
	is_int(coll_count(c), 90, "90 points visible once the writes returned");
	coll_unref(c);
	d = store_digest(db_store(db));
	db_close(db);

	db = open_ok(&o, &rec);
	is_int(rec.replayed, 3, "restart: 3 entries replayed");
	is_int(rec.points, 90, "90 points");
	is_int(rec.collections, 1, "one collection");
	ok(digest_equal(rec.digest, d), "the same digest");
	upsert_range(db, 1000, 1, 0);
	is_int(db_last_index(db), 4, "writes go on after the replayed log");
	db_close(db);
}

struct tally {
	size_t done, ok;
	uint64_t last_index;
	int in_order;
	int rv_last;
	char msg[SH_ERRMSG_SIZE];
};

static void count_done(void *arg, int rv, const struct sh_err *err, uint64_t term, uint64_t index,
		       size_t affected)
{
	struct tally *t = arg;

	(void)term;
	(void)affected;
	t->done++;
	t->ok += rv == 0;
	t->in_order &= rv != 0 || index > t->last_index;
	if (rv == 0)
		t->last_index = index;
	t->rv_last = rv;
	if (rv != 0)
		snprintf(t->msg, sizeof t->msg, "%s", err->msg);
}

static void wait_all(struct db *db, struct tally *t, size_t n)
{
	while (t->done < n && settle(db, 10000))
		;
}

static void test_pipelined(void)
{
	struct db_opts o = opts("pipe");
	struct db *db = open_ok(&o, NULL);
	static float v[200][DIM];
	static char pl[200][64];
	struct coll_point p[200];
	struct tally t = {.in_order = 1};
	struct sh_err err;
	struct entry e;
	int submitted = 0;

	create(db, "c");
	for (int i = 0; i < 200; i++) {
		point((uint64_t)i, 1, v[i], pl[i], &p[i]);
		e = (struct entry){.type = WAL_UPSERT, .collection = "c", .points = &p[i], .n = 1};
		submitted += db_submit(db, &e, count_done, &t, &err) == 0;
	}
	is_int(submitted, 200, "200 writes queued without waiting");
	wait_all(db, &t, 200);
	is_int(t.ok, 200, "all 200 completed");
	ok(t.in_order, "in index order");
	is_int(t.last_index, 201, "the last at index 201");

	/* two creates of one name in flight: the second fails when applied */
	e = (struct entry){.type = WAL_CREATE};
	snprintf(e.params.name, sizeof e.params.name, "twice");
	e.params.dim = 3;
	e.params.metric = SH_METRIC_DOT;
	t = (struct tally){.in_order = 1};
	is_int(db_submit(db, &e, count_done, &t, &err), 0, "first create queued");
	is_int(db_submit(db, &e, count_done, &t, &err), 0, "second create queued too");
	wait_all(db, &t, 2);
	is_int(t.ok, 1, "one succeeded");
	is_int(t.rv_last, SH_EEXIST, "the other found the name taken when applied");
	is_str(t.msg, "entry 203 (create): collection 'twice' already exists", "with the entry");

	{
		char big[2000];
		struct entry u = {.type = WAL_UPSERT, .collection = "c", .points = p, .n = 1};

		memset(big, ' ', sizeof big);
		memcpy(big, "{\"a\":\"", 6);
		memset(big + 6, 'x', 1200);
		memcpy(big + 1206, "\"}", 2);
		p[0].payload = big;
		p[0].payload_len = 1208;
		is_int(db_submit(db, &u, count_done, &t, &err), SH_ETOOBIG,
		       "a payload over the limit");
		is_str(err.msg,
		       "collection 'c': point 0 (id 0): payload of 1208 bytes is over the limit of "
		       "1024",
		       "is refused with the sizes");
	}
	db_close(db);
	db = open_ok(&o, NULL);
	is_int(db_last_index(db), 203, "after restart: the log ends at 203");
	is_int(store_collections(db_store(db)), 2, "and the replay rejected the same create");
	db_close(db);
}

/* Writes, a snapshot, more writes: the node that restarts (snapshot +
 * replay) answers exactly as the one that did not. */
static void test_snapshot_replay_identical(void)
{
	static struct hnsw_result before[400], after[400];
	struct db_opts o = opts("identical");
	struct db_recovery rec;
	struct db *db = open_ok(&o, NULL);
	struct digest d;
	struct sh_err err;

	create(db, "c");
	for (int b = 0; b < 8; b++)
		upsert_range(db, (uint64_t)b * 250, 250, 0);
	delete_ids(db, 3, 7, 200);
	upsert_range(db, 100, 200, 1); /* replacements */
	is_int(db_snapshot(db, &err), 0, "snapshot on demand");
	delete_ids(db, 5, 11, 150);
	upsert_range(db, 2000, 300, 0);
	upsert_range(db, 400, 100, 2);
	results(db, before);
	d = store_digest(db_store(db));
	db_close(db);

	db = open_ok(&o, &rec);
	is_int(rec.snap_index, 11, "restart from the snapshot at index 11");
	is_int(rec.replayed, 3, "and 3 log entries after it");
	results(db, after);
	ok(memcmp(before, after, sizeof before) == 0,
	   "search results are bit-identical to the node that did not restart");
	ok(digest_equal(d, store_digest(db_store(db))), "and so is the digest");
	db_close(db);
}

static int count_files(const char *d, const char *suffix)
{
	DIR *dd = opendir(d);
	struct dirent *e;
	int n = 0;

	while (dd != NULL && (e = readdir(dd)) != NULL)
		n += strstr(e->d_name, suffix) != NULL;
	if (dd != NULL)
		closedir(dd);
	return n;
}

/* Wait (threads) until db has written n snapshots; false after 20 s. */
static bool snapshots_reach(struct db *db, uint64_t n)
{
	for (int i = 0; i < 2000 && db_snapshots(db) < n; i++)
		poll(NULL, 0, 10);
	return db_snapshots(db) >= n;
}

static void test_auto_snapshots(void)
{
	struct db_opts o = opts("auto");
	struct db_recovery rec;
	struct db *db;
	char sub[700];

	o.snapshot_entries = 40;
	db = open_ok(&o, NULL);
	create(db, "c");
	for (int i = 0; i < 99; i++)
		upsert_range(db, (uint64_t)i * 10, 10, 0);
	ok(manual ? db_snapshots(db) == 2 : snapshots_reach(db, 2),
	   "%" PRIu64 " snapshots after 100 entries, one per 40", db_snapshots(db));
	snprintf(sub, sizeof sub, "%s/snap", dir);
	is_int(count_files(sub, ".snap"), 1, "only the latest snapshot is kept");
	snprintf(sub, sizeof sub, "%s/wal", dir);
	ok(count_files(sub, ".seg") < 5, "the log before it was removed (%d segments left)",
	   count_files(sub, ".seg"));
	db_close(db);
	db = open_ok(&o, &rec);
	/* with threads, a snapshot that falls due while the one before is
	 * still being written waits for it: at 80 or a little later */
	ok(manual ? rec.snap_index == 80 : rec.snap_index >= 80 && rec.snap_index < 100,
	   "restart from the snapshot at %" PRIu64 " (80%s)", rec.snap_index,
	   manual ? "" : " or a little later");
	is_int(rec.replayed, 100 - rec.snap_index, "replaying the entries after it");
	is_int(rec.points, 990, "all 990 points");
	db_close(db);
}

struct snap_call {
	pthread_t t;
	struct db *db;
	int rv;
	uint64_t index; /* the db's snapshot when the call returned */
};

static void *call_snapshot(void *arg)
{
	struct snap_call *c = arg;
	struct sh_err err;

	c->rv = db_snapshot(c->db, &err);
	c->index = db_snapshot_index(c->db);
	return NULL;
}

/* Two db_snapshot calls from other threads (backups run on the search
 * pool): the second, made after an entry the first's snapshot does not
 * hold was applied, is answered by a snapshot that holds it, not by the
 * first's (threads only). */
static void test_snapshot_tickets(void)
{
	struct db_opts o = opts("tickets");
	struct snap_call a = {0}, b = {0};
	struct db *db = open_ok(&o, NULL);
	int gate[2];

	if (pipe(gate) != 0)
		bail_out("pipe: %s", strerror(errno));
	db_test_snap_gate(gate[0]);
	create(db, "c");
	upsert_range(db, 0, 10, 0); /* 2 */
	a.db = b.db = db;
	pthread_create(&a.t, NULL, call_snapshot, &a);
	for (int i = 0; i < 2000 && db_test_snap_writer(db) == 0; i++)
		poll(NULL, 0, 10);
	ok(db_test_snap_writer(db) != 0, "the first call's writer is held at index 2");
	upsert_range(db, 100, 10, 0); /* 3, applied beside it */
	pthread_create(&b.t, NULL, call_snapshot, &b);
	poll(NULL, 0, 200); /* b asks while a's writer is held (if not yet: passes anyway) */
	if (write(gate[1], "xy", 2) != 2)
		bail_out("write: %s", strerror(errno));
	pthread_join(a.t, NULL);
	pthread_join(b.t, NULL);
	ok(a.rv == 0 && a.index >= 2, "the first call: a snapshot at %" PRIu64, a.index);
	ok(b.rv == 0 && b.index == 3,
	   "the second: one that holds the entry applied before it asked (at %" PRIu64 ")",
	   b.index);
	db_test_snap_gate(-1);
	db_close(db);
	close(gate[0]);
	close(gate[1]);
}

/* A snapshot is written by a child process while the apply goes on: held
 * mid-write (db_test_snap_gate), it lets later entries apply, the file it
 * leaves holds the state at the fork, and a writer killed leaves no file
 * and the log whole, and the next snapshot works (threads only). */
static void test_snapshot_beside_apply(void)
{
	struct db_opts o = opts("beside");
	struct db_recovery rec;
	struct sh_err err;
	struct db *db;
	int gate[2];
	char sub[700];

	if (pipe(gate) != 0)
		bail_out("pipe: %s", strerror(errno));
	o.snapshot_entries = 10;
	db = open_ok(&o, NULL);
	db_test_snap_gate(gate[0]);
	create(db, "c");
	for (int i = 0; i < 9; i++) /* entries 2..10: the snapshot at 10 is due */
		upsert_range(db, (uint64_t)i * 10, 10, 0);
	upsert_range(db, 1000, 10, 0); /* 11: applied after the fork */
	ok(db_test_snap_writer(db) != 0, "a child writes the snapshot at 10");
	for (int i = 0; i < 5; i++)
		upsert_range(db, 2000 + (uint64_t)i * 10, 10, 0);
	is_int(db_applied_index(db), 16, "entries 11..16 applied while it is held");
	is_int(db_snapshots(db), 0, "and it is not written yet");
	if (write(gate[1], "x", 1) != 1)
		bail_out("write: %s", strerror(errno));
	ok(snapshots_reach(db, 1), "let go, it is written");
	is_int(db_snapshot_index(db), 10, "holding the state at the fork (index 10)");
	upsert_range(db, 3000, 10, 0); /* 17 */
	for (int i = 0; i < 200 && db_test_snap_writer(db) == 0; i++)
		upsert_range(db, 4000 + (uint64_t)i, 1, 0); /* until the next is due */
	ok(db_test_snap_writer(db) != 0, "the next snapshot's writer runs");
	kill((pid_t)db_test_snap_writer(db), SIGKILL);
	for (int i = 0; i < 2000 && db_test_snap_writer(db) != 0; i++)
		poll(NULL, 0, 10);
	is_int(db_snapshots(db), 1, "a writer killed: no snapshot counted");
	snprintf(sub, sizeof sub, "%s/snap", dir);
	is_int(count_files(sub, ".tmp"), 0, "and no temporary file left");
	db_test_snap_gate(-1);
	is_int(db_snapshot(db, &err), 0, "the next snapshot is written");
	is_int(db_snapshot_index(db), db_applied_index(db), "at the applied index");
	db_close(db);
	db = open_ok(&o, &rec);
	is_int(rec.snap_index + rec.replayed, rec.last_index, "restart: snapshot and log agree");
	db_close(db);
	close(gate[0]);
	close(gate[1]);
}

static void test_snapshot_bytes(void)
{
	struct db_opts o = opts("bytes");
	struct db *db;

	o.snapshot_bytes = 100 << 10;
	db = open_ok(&o, NULL);
	create(db, "c");
	for (int i = 0; i < 30; i++)
		upsert_range(db, (uint64_t)i * 100, 100, 0); /* about 12 KB of log each */
	ok(manual ? db_snapshots(db) >= 2 : snapshots_reach(db, 2),
	   "%" PRIu64 " snapshots after ~360 KB of log, one per 100 KB", db_snapshots(db));
	db_close(db);
}

static void make_snapshot_dir(const char *name, size_t points)
{
	struct db_opts o = opts(name);
	struct db *db = open_ok(&o, NULL);
	struct sh_err err;

	create(db, "c");
	for (size_t i = 0; i < points; i += 500)
		upsert_range(db, i, 500, 0);
	if (db_snapshot(db, &err) != 0)
		bail_out("snapshot: %s", err.msg);
	db_close(db);
}

static int open_fails(const char *name, struct sh_err *err)
{
	struct db_opts o = opts(name);
	struct db *db;
	int rv = db_open(&o, &db, NULL, err);

	if (rv == 0)
		db_close(db);
	return rv;
}

static void test_damaged_snapshot(void)
{
	struct sh_err err;
	char snap[800], want[1200];
	long long size, frame;

	make_snapshot_dir("dmg", 20000); /* about 2 MiB of content: 3 frames */
	snprintf(snap, sizeof snap, "%s/snap/%016x.snap", dir, 41);
	size = file_size(snap);
	ok(size > 2 * SNAP_FRAME_MAX, "a snapshot of %lld bytes", size);

	flip_byte(snap, 40 + 8 + SNAP_FRAME_MAX + 8 + 1234, 0x04);
	is_int(open_fails("dmg", &err), SH_ECORRUPT, "a byte flipped in the second frame: refused");
	snprintf(want, sizeof want,
		 "storage: snapshot: '%s': frame 1 at offset %d: checksum mismatch (stored ", snap,
		 40 + 8 + SNAP_FRAME_MAX);
	like(err.msg, want, "names the file, the frame and its offset");
	flip_byte(snap, 40 + 8 + SNAP_FRAME_MAX + 8 + 1234, 0x04);

	flip_byte(snap, 30, 0x01);
	is_int(open_fails("dmg", &err), SH_ECORRUPT, "a byte flipped in the header: refused");
	snprintf(want, sizeof want, "storage: snapshot: '%s': bad header: header checksum mismatch",
		 snap);
	is_str(err.msg, want, "exact message");
	flip_byte(snap, 30, 0x01);

	cut_file(snap, size - 100);
	is_int(open_fails("dmg", &err), SH_ECORRUPT, "a snapshot cut short: refused");
	frame = (size - 100 - SNAP_HDR) / (SNAP_FRAME_MAX + SNAP_FRAME_HDR);
	snprintf(want, sizeof want,
		 "storage: snapshot: '%s': cut short in frame %lld at offset %lld", snap, frame,
		 SNAP_HDR + frame * (SNAP_FRAME_MAX + SNAP_FRAME_HDR));
	is_str(err.msg, want, "says which frame, where");

	{
		struct db *db;
		struct db_opts o = opts("dmg");

		cut_file(snap, 0);
		unlink(snap);
		is_int(db_open(&o, &db, NULL, &err), SH_ECORRUPT,
		       "without its snapshot, a log missing its start is refused");
		like(err.msg, "the log starts at index", "as a gap");
	}
}

static void test_chunks(void)
{
	struct snap_chunks *c;
	struct sh_err err;
	char snap[800];
	const void *data;
	size_t len, n = 0;
	uint64_t off, expect = 0;
	unsigned char *whole, *copy;
	long long size;
	FILE *f;
	int good = 1;

	make_snapshot_dir("chunks", 12000);
	snprintf(snap, sizeof snap, "%s/snap", dir);
	is_int(snap_chunks_open(snap, 25, &c, &err), 0, "open the snapshot as chunks: %s", err.msg);
	snprintf(snap, sizeof snap, "%s/snap/%016x.snap", dir, 25);
	size = file_size(snap);
	whole = sh_malloc((size_t)size);
	copy = sh_malloc((size_t)size);
	f = fopen(snap, "r");
	ok(fread(whole, 1, (size_t)size, f) == (size_t)size, "read the file");
	fclose(f);
	while (snap_chunks_next(c, &data, &len, &off, &err) == 0 && len > 0) {
		good &= off == expect && off + len <= (uint64_t)size;
		if (good)
			memcpy(copy + off, data, len);
		expect += len;
		n++;
	}
	snap_chunks_close(c);
	ok(good && expect == (uint64_t)size, "%zu chunks cover the file in order", n);
	ok(memcmp(whole, copy, (size_t)size) == 0, "and are its bytes");
	flip_byte(snap, size - 20, 0x80);
	snprintf(snap, sizeof snap, "%s/snap", dir);
	snap_chunks_open(snap, 25, &c, &err);
	while (snap_chunks_next(c, &data, &len, &off, &err) == 0 && len > 0)
		;
	like(err.msg, "checksum mismatch", "a damaged frame stops the stream");
	snap_chunks_close(c);
	sh_free(whole);
	sh_free(copy);
}

static void test_log_shorter_than_snapshot(void)
{
	struct db_opts o = opts("short");
	struct db_recovery rec;
	struct db *db = open_ok(&o, NULL);
	struct sh_err err;
	char seg[800];

	create(db, "c");
	upsert_range(db, 0, 10, 0);
	db_snapshot(db, &err);
	db_close(db);
	/* as if a machine crash under fsync = never lost the log's end */
	snprintf(seg, sizeof seg, "%s/wal/%016x.seg", dir, 1);
	cut_file(seg, WAL_SEG_HDR);
	log_capture(root);
	db = open_ok(&o, &rec);
	like(log_text(), "the log ends at index 0, before the snapshot at 2", "warns");
	is_int(rec.points, 10, "the snapshot's points are there");
	upsert_range(db, 100, 1, 0);
	is_int(db_last_index(db), 3, "writes go on after the snapshot");
	db_close(db);
	sh_log_close();
}

/* A failed flush fails the write that waited for it and the storage for
 * good, in standalone mode too: a later flush could succeed without the
 * pages the kernel dropped. */
static void test_flush_fails(void)
{
	struct db_opts o = opts("flushfail");
	struct db_recovery rec;
	struct db *db = open_ok(&o, NULL);
	float v[DIM];
	char pl[64];
	struct coll_point p;
	struct entry e = {.type = WAL_UPSERT, .collection = "c", .points = &p, .n = 1};
	struct sh_err err;

	create(db, "c");
	upsert_range(db, 0, 10, 0);
	point(100, 0, v, pl, &p);
	diskio_fail_after(0, EIO);
	is_int(db_write(db, &e, NULL, NULL, &err), SH_EIO, "the write whose flush fails fails");
	diskio_fail_after(-1, 0);
	like(err.msg, "fdatasync failed: Input/output error", "saying so");
	ok(db_failed(db, &err), "the storage failed");
	is_int(db_write(db, &e, NULL, NULL, &err), SH_ESHUTDOWN, "later writes are refused");
	db_close(db);
	db = open_ok(&o, &rec);
	ok(rec.points == 10 || rec.points == 11, "a restart finds the 10 acknowledged points (%zu)",
	   rec.points);
	db_close(db);
}

/* ------------------------------------------------------------ raft mode */

#define WAIT_FOR(db, cond)                                                                         \
	do {                                                                                       \
		for (int i_ = 0; i_ < 1000 && !(cond); i_++)                                       \
			settle((db), 10);                                                          \
	} while (0)

/* Prepare e as (term, index) and append it. */
static void raft_append(struct db *db, const struct entry *e, uint64_t term, uint64_t index)
{
	struct wal_buf *b;
	struct sh_err err;

	if (db_prepare(db, e, term, index, &b, NULL, &err) != 0 || db_append(db, b, &err) != 0)
		bail_out("append %" PRIu64 ": %s", index, err.msg);
	wal_buf_unref(b);
}

static struct entry create_entry(const char *name)
{
	struct entry e = {.type = WAL_CREATE};

	snprintf(e.params.name, sizeof e.params.name, "%s", name);
	e.params.dim = DIM;
	e.params.metric = SH_METRIC_L2;
	e.params.m = 8;
	e.params.ef_construction = 40;
	return e;
}

static struct entry upsert_entry(uint64_t id, unsigned gen, float *v, char *pl,
				 struct coll_point *p)
{
	point(id, gen, v, pl, p);
	return (struct entry){.type = WAL_UPSERT, .collection = "c", .points = p, .n = 1};
}

static void test_raft(void)
{
	struct db_opts o = opts("raft");
	struct entry cr = create_entry("c"), e;
	struct tally t = {.in_order = 1};
	struct db_recovery rec;
	float v[4][DIM];
	char pl[4][64];
	struct coll_point p[4];
	struct sh_err err;
	struct db *db;

	o.raft = true;
	db = open_ok(&o, NULL);
	raft_append(db, &cr, 1, 1);
	db_commit(db, 1); /* entries are checked against the applied state */
	WAIT_FOR(db, db_applied_index(db) == 1);
	for (uint64_t i = 2; i <= 4; i++) {
		e = upsert_entry(i, 0, v[i - 1], pl[i - 1], &p[i - 1]);
		raft_append(db, &e, 1, i);
	}
	db_watch(db, 3, count_done, &t, &err);
	db_watch(db, 4, count_done, &t, &err);
	WAIT_FOR(db, db_durable_index(db) == 4);
	is_int(db_durable_index(db), 4, "raft: 4 entries durable");
	is_int(db_applied_index(db), 1, "none applied before they are committed");
	db_commit(db, 2);
	WAIT_FOR(db, db_applied_index(db) == 2);
	is_int(db_applied_index(db), 2, "committed up to 2: applied up to 2");
	db_truncate(db, 2);
	settle(db, 10);
	is_int(t.done, 2, "the watches on the entries cut complete");
	is_int(t.rv_last, SH_EUNAVAIL, "as replaced");
	e = upsert_entry(3, 1, v[2], pl[2], &p[2]);
	raft_append(db, &e, 2, 3);
	db_commit(db, 3);
	WAIT_FOR(db, db_applied_index(db) == 3);
	is_int(db_applied_index(db), 3, "the new entry 3 applied once committed");
	is_int(db_term_at(db, 3), 2, "with its term");
	is_int(db_last_index(db), 3, "the log ends there");
	db_close(db);
	o.replay_upto = 2;
	db = open_ok(&o, &rec);
	is_int(rec.last_index, 3, "reopen: the log holds 3 entries");
	is_int(db_applied_index(db), 2, "applied up to the commit hint only");
	db_commit(db, 3);
	WAIT_FOR(db, db_applied_index(db) == 3);
	is_int(db_applied_index(db), 3, "and the rest once committed");
	db_close(db);
}

static void copy_snapshot(const char *from_dir, uint64_t index, const char *to_dir)
{
	struct snap_chunks *c;
	struct snap_recv *r;
	struct sh_err err;
	const void *data;
	size_t len;
	uint64_t off;

	if (snap_chunks_open(from_dir, index, &c, &err) != 0 ||
	    snap_recv_open(to_dir, index, snap_chunks_term(c), &r, &err) != 0)
		bail_out("snapshot transfer: %s", err.msg);
	while (snap_chunks_next(c, &data, &len, &off, &err) == 0 && len > 0)
		if (snap_recv_chunk(r, off, data, len, &err) != 0)
			bail_out("chunk: %s", err.msg);
	snap_chunks_close(c);
	if (snap_recv_finish(r, &err) != 0)
		bail_out("finish: %s", err.msg);
}

struct installed {
	bool done;
	int rv;
	uint64_t index;
	char msg[SH_ERRMSG_SIZE];
};

static void on_installed(void *arg, int rv, const struct sh_err *err, uint64_t term, uint64_t index,
			 size_t affected)
{
	struct installed *in = arg;

	(void)term;
	(void)affected;
	in->done = true;
	in->rv = rv;
	in->index = index;
	snprintf(in->msg, sizeof in->msg, "%s", rv ? err->msg : "");
}

/* A leader's snapshot (a standalone db: create + 3 upserts, snapshot at 4)
 * installed in a raft follower that holds one entry, then the log reset
 * after it and written on. */
static void test_install(void)
{
	struct db_opts lo = opts("leader"), fo;
	struct entry cr = create_entry("c"), e;
	struct installed in = {0};
	struct digest d;
	struct sh_err err;
	struct db *leader, *db;
	char from[800], to[800];
	float v[DIM];
	char pl[64];
	struct coll_point p;

	leader = open_ok(&lo, NULL);
	create(leader, "c");
	for (uint64_t b = 0; b < 3; b++)
		upsert_range(leader, b * 100, 100, 0);
	if (db_snapshot(leader, &err) != 0)
		bail_out("snapshot: %s", err.msg);
	d = store_digest(db_store(leader));
	snprintf(from, sizeof from, "%s", db_snap_dir(leader));
	fo = opts("follower");
	fo.raft = true;
	db = open_ok(&fo, NULL);
	raft_append(db, &cr, 1, 1);
	snprintf(to, sizeof to, "%s", db_snap_dir(db));
	copy_snapshot(from, 4, to);
	db_close(leader);
	is_int(db_install(db, 4, on_installed, &in, &err), 0, "install requested");
	WAIT_FOR(db, in.done);
	is_int(in.rv, 0, "the snapshot at 4 is installed: %s", in.msg);
	is_int(db_applied_index(db), 4, "applied index 4");
	ok(digest_equal(store_digest(db_store(db)), d), "with the leader's digest");
	db_reset(db, 5);
	e = upsert_entry(1000, 0, v, pl, &p);
	raft_append(db, &e, 1, 5);
	db_commit(db, 5);
	WAIT_FOR(db, db_applied_index(db) == 5);
	is_int(db_applied_index(db), 5, "the log goes on after it");
	is_int(store_points(db_store(db)), 301, "with the new point");
	db_close(db);
	db = open_ok(&fo, NULL);
	is_int(db_snapshot_index(db), 4, "reopen: from the installed snapshot");
	db_close(db);
}

/* Content that frames soundly but is not a state: a collection count
 * and then nothing. */
static int save_garbage(void *arg, hnsw_write_fn write, void *wctx, struct sh_err *err)
{
	unsigned char junk[64] = {1};

	(void)arg;
	(void)err;
	return write(wctx, junk, sizeof junk);
}

/* A received snapshot whose content does not load: the install fails, the
 * node goes on with its state, and the data dir is as it was — a restart
 * starts from it (the bad snapshot must not be the newest INDEX.snap). */
static void test_install_bad(void)
{
	struct db_opts lo = opts("badleader"), fo;
	struct entry cr = create_entry("c");
	struct installed in = {0};
	struct db_recovery rec;
	struct sh_err err;
	struct db *db;
	char from[800], to[800];
	uint64_t latest = 0;

	snprintf(from, sizeof from, "%s/snap", dir);
	mkdir(from, 0750);
	if (snap_write(from, 7, 1, save_garbage, NULL, NULL, &err) != 0)
		bail_out("snap_write: %s", err.msg);
	(void)lo;
	fo = opts("badfollower");
	fo.raft = true;
	db = open_ok(&fo, NULL);
	raft_append(db, &cr, 1, 1);
	db_commit(db, 1);
	WAIT_FOR(db, db_applied_index(db) == 1);
	snprintf(to, sizeof to, "%s", db_snap_dir(db));
	copy_snapshot(from, 7, to);
	is_int(db_install(db, 7, on_installed, &in, &err), 0,
	       "install of a bad snapshot requested");
	WAIT_FOR(db, in.done);
	is_int(in.rv, SH_ECORRUPT, "it fails to load");
	like(in.msg, "snapshot: '", "naming the file: %s", in.msg);
	ok(!db_failed(db, NULL), "the node goes on");
	is_int(db_applied_index(db), 1, "with its own state");
	is_int(snap_latest(to, &latest, &err), 0, "the snapshot dir");
	is_int(latest, 0, "holds no snapshot: the bad one was not kept");
	db_close(db);
	fo.replay_upto = 1;
	if (!is_int(db_open(&fo, &db, &rec, &err), 0, "a restart works: %s", err.msg))
		return;
	is_int(rec.snap_index, 0, "from the log alone");
	is_int(db_applied_index(db), 1, "at index 1");
	db_close(db);
}

/* ------------------------------------------------------------ manual mode */

static long long seg_bytes(void)
{
	char seg[800];

	snprintf(seg, sizeof seg, "%s/wal/%016x.seg", dir, 1);
	return file_size(seg);
}

/* Manual mode: a write is not written, durable or applied, nor its
 * callback run, until the owner runs each step. */
static void test_manual_nothing_until_run(void)
{
	struct db_opts o;
	struct entry cr = create_entry("c");
	struct tally t = {.in_order = 1};
	struct sh_err err;
	struct db *db;

	manual = true;
	o = opts("manual-steps");
	db = open_ok(&o, NULL);
	is_int(db_fd(db), -1, "manual mode: no eventfd");
	is_int(db_pending(db), 0, "nothing pending after open");
	is_int(db_submit(db, &cr, count_done, &t, &err), 0, "a write submitted");
	is_int(db_pending(db), DB_WORK_WRITE, "a write op pending");
	db_process(db);
	db_run(db, DB_WORK_APPLY);
	db_process(db);
	is_int(seg_bytes(), WAL_SEG_HDR, "nothing written to the log");
	is_int(db_durable_index(db), 0, "nothing durable");
	db_run(db, DB_WORK_WRITE);
	ok(seg_bytes() > WAL_SEG_HDR, "db_run(WRITE) writes it");
	is_int(db_durable_index(db), 0, "durable once db_process takes it");
	is_int(db_pending(db), DB_WORK_DONE, "which is pending");
	db_process(db);
	is_int(db_durable_index(db), 1, "durable now");
	is_int(db_applied_index(db), 0, "not applied");
	is_int(db_pending(db), DB_WORK_APPLY, "applying is pending");
	db_run(db, DB_WORK_WRITE);
	is_int(db_applied_index(db), 0, "db_run(WRITE) does not apply");
	db_run(db, DB_WORK_APPLY);
	is_int(db_applied_index(db), 1, "db_run(APPLY) applies");
	is_int(store_collections(db_store(db)), 1, "the collection exists");
	is_int(t.done, 0, "the callback waits for db_process");
	db_process(db);
	is_int(t.done, 1, "and runs in it");
	is_int(t.ok, 1, "successfully");
	is_int(db_pending(db), 0, "idle");
	is_int(db_snapshot(db, &err), 0, "db_snapshot runs inline");
	is_int(db_snapshot_index(db), 1, "a snapshot at 1");
	db_close(db);
	manual = false;
}

/* Manual mode, raft: entries become durable, and then applied once
 * committed, each at its db_run; a truncation is a write op too. */
static void test_manual_raft_gating(void)
{
	struct db_opts o;
	struct entry cr = create_entry("c"), e;
	float v[DIM];
	char pl[64];
	struct coll_point p;
	struct db *db;

	manual = true;
	o = opts("manual-raft");
	o.raft = true;
	db = open_ok(&o, NULL);
	raft_append(db, &cr, 1, 1);
	db_commit(db, 1);
	is_int(db_pending(db), DB_WORK_WRITE, "committed but not written: only a write pending");
	drain(db);
	is_int(db_applied_index(db), 1, "applied once written");
	e = upsert_entry(1, 0, v, pl, &p);
	raft_append(db, &e, 1, 2);
	db_commit(db, 2);
	drain(db);
	is_int(db_applied_index(db), 2, "entry 2 too");
	raft_append(db, &e, 1, 3);
	db_run(db, DB_WORK_WRITE);
	db_process(db);
	is_int(db_durable_index(db), 3, "entry 3 durable");
	is_int(db_pending(db), 0, "but not committed: nothing to apply");
	db_truncate(db, 2);
	is_int(db_durable_index(db), 2, "truncated");
	is_int(db_pending(db), DB_WORK_WRITE, "the cut is a write op");
	drain(db);
	is_int(db_last_index(db), 2, "the log ends at 2");
	db_close(db);
	manual = false;
}

int main(void)
{
	const char *top = make_tmpdir("db");

	for (int round = 0; round < 2; round++) {
		manual = round == 1;
		diag("---- %s", manual ? "manual mode (db_run on this thread)" : "with threads");
		if (snprintf(root, sizeof root, "%.400s/%s", top, manual ? "manual" : "threads") <
		    0)
			bail_out("no room");
		mkdir(root, 0750);
		test_write_restart();
		test_pipelined();
		test_snapshot_replay_identical();
		test_auto_snapshots();
		test_snapshot_bytes();
		test_damaged_snapshot();
		test_chunks();
		test_log_shorter_than_snapshot();
		test_flush_fails();
		test_raft();
		test_install();
		test_install_bad();
		if (!manual) {
			test_snapshot_beside_apply();
			test_snapshot_tickets();
		}
	}
	test_manual_nothing_until_run();
	test_manual_raft_gating();
	rm_rf(top);
	return done_testing();
}
