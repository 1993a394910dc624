/* Tests of storage/db: the write path (blocking and pipelined), writes
 * refused before they reach the log, a conflict found only when applying,
 * restart by replay, snapshots (on demand and by entry count) with the log
 * prefix dropped, snapshot + replay giving bit-identical search results and
 * digest to the node that never restarted, damaged snapshots refused with
 * file and offset, snapshot chunks, a log that starts after the snapshot
 * (refused) or ends before it (reset). */
#include "build.h"

#include "storage/db.h"
#include "storage/snapshot.h"
#include "tap.h"
#include "util/alloc.h"
#include "util/rand.h"

#include "storage_util.h"

#include <dirent.h>
#include <inttypes.h>
#include <poll.h>

#define DIM 16

static const char *root;
static char dir[600];

static struct db_opts opts(const char *name)
{
	snprintf(dir, sizeof dir, "%s/%s", root, name);
	mkdir(dir, 0750);
	return (struct db_opts){.dir = dir,
				.fsync = WAL_FSYNC_ALWAYS,
				.segment_bytes = WAL_MIN_SEG,
				.max_payload_bytes = 1024,
				.term = 1};
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
	while (t->done < n) {
		struct pollfd p = {db_fd(db), POLLIN, 0};

		if (poll(&p, 1, 10000) <= 0)
			break;
		db_process(db);
	}
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
	ok(db_snapshots(db) >= 2, "%" PRIu64 " snapshots after 100 entries, one per 40",
	   db_snapshots(db));
	snprintf(sub, sizeof sub, "%s/snap", dir);
	is_int(count_files(sub, ".snap"), 1, "only the latest snapshot is kept");
	snprintf(sub, sizeof sub, "%s/wal", dir);
	ok(count_files(sub, ".seg") < 5, "the log before it was removed (%d segments left)",
	   count_files(sub, ".seg"));
	db_close(db);
	db = open_ok(&o, &rec);
	is_int(rec.snap_index, 80, "restart from the snapshot at 80");
	is_int(rec.replayed, 20, "replaying 81..100");
	is_int(rec.points, 990, "all 990 points");
	db_close(db);
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
	ok(db_snapshots(db) >= 2, "%" PRIu64 " snapshots after ~360 KB of log, one per 100 KB",
	   db_snapshots(db));
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

int main(void)
{
	root = make_tmpdir("db");
	test_write_restart();
	test_pipelined();
	test_snapshot_replay_identical();
	test_auto_snapshots();
	test_snapshot_bytes();
	test_damaged_snapshot();
	test_chunks();
	test_log_shorter_than_snapshot();
	rm_rf(root);
	return done_testing();
}
