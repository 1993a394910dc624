/* Memory-fault injection across the storage (sh_alloc_fail_after), the
 * allocation that fails swept from the first until none does:
 *
 *   write:   a write (checked, encoded, appended to the log, applied) in a
 *            manual-mode db, so that every allocation happens on this
 *            thread in a fixed order;
 *   open:    opening a data dir with a snapshot and a log tail (the
 *            snapshot loaded, the tail replayed);
 *   install: a follower installing a received snapshot.
 *
 * Each failure must either fail cleanly — a clear "out of memory" error,
 * the db failed where it must stop (memory ran out while applying), else
 * nothing changed and the same call works when tried again — or be
 * absorbed; and after each, a reopen without faults gives the state of a
 * run without faults at the same index (no divergence, nothing half
 * published).  Leaks show under --enable-sanitizers (LeakSanitizer). */
#include "build.h"

#include "storage/db.h"
#include "storage/snapshot.h"
#include "tap.h"
#include "util/alloc.h"

#include "storage_util.h"

#include <inttypes.h>

#define DIM    4
#define WRITES 6 /* in the reference sequence */

static char root[480];
static char dir[600];
static struct digest ref[WRITES + 2]; /* state after entry i (1: the create) */

static struct db_opts opts(const char *name, bool raft)
{
	snprintf(dir, sizeof dir, "%s/%s", root, name);
	mkdir(dir, 0750);
	return (struct db_opts){.dir = dir,
				.fsync = WAL_FSYNC_ALWAYS,
				.segment_bytes = WAL_MIN_SEG,
				.max_payload_bytes = 4096,
				.term = 1,
				.raft = raft,
				.replay_upto = UINT64_MAX,
				.manual = true};
}

static void drain(struct db *db)
{
	unsigned what;

	while ((what = db_pending(db)) != 0) {
		db_run(db, what);
		db_process(db);
	}
}

/* Entry i of the reference sequence: 1 creates "c", 2 is a voter
 * configuration, the others upsert three points with payloads (ids reused,
 * so points get replaced) or, every third, delete one. */
static struct entry entry_at(int i, float v[3][DIM], char pl[3][64], struct coll_point p[3],
			     uint64_t *del)
{
	static const struct entry_voter voters[2] = {{11, "127.0.0.1:7471"},
						     {12, "127.0.0.1:7481"}};
	struct entry e = {.type = WAL_CREATE};

	if (i == 2)
		return (struct entry){.type = WAL_VOTERS, .voters = voters, .n = 2};

	if (i == 1) {
		snprintf(e.params.name, sizeof e.params.name, "c");
		e.params.dim = DIM;
		e.params.metric = SH_METRIC_COSINE;
		e.params.m = 4;
		e.params.ef_construction = 8;
		return e;
	}
	if (i % 3 == 0) {
		*del = (uint64_t)i % 5;
		return (struct entry){.type = WAL_DELETE, .collection = "c", .ids = del, .n = 1};
	}
	for (int k = 0; k < 3; k++) {
		for (int j = 0; j < DIM; j++)
			v[k][j] = (float)((i * 7 + k * 3 + j) % 11) - 4.5f;
		snprintf(pl[k], 64, "{\"i\":%d,\"k\":[%d,{\"s\":\"x%d\"}]}", i, k, i * k);
		p[k] = (struct coll_point){(uint64_t)(i + k) % 5, v[k], DIM, pl[k], strlen(pl[k])};
	}
	return (struct entry){.type = WAL_UPSERT, .collection = "c", .points = p, .n = 3};
}

static int write_at(struct db *db, int i, struct sh_err *err)
{
	float v[3][DIM];
	char pl[3][64];
	struct coll_point p[3];
	uint64_t del;
	struct entry e = entry_at(i, v, pl, p, &del);

	return db_write(db, &e, NULL, NULL, err);
}

static void write_upto(struct db *db, int last)
{
	struct sh_err err;

	for (int i = (int)db_last_index(db) + 1; i <= last; i++)
		if (write_at(db, i, &err) != 0)
			bail_out("write %d: %s", i, err.msg);
}

static void make_reference(void)
{
	struct db_opts o = opts("ref", false);
	struct db *db;
	struct sh_err err;

	if (db_open(&o, &db, NULL, &err) != 0)
		bail_out("open: %s", err.msg);
	for (int i = 1; i <= WRITES + 1; i++) {
		write_upto(db, i);
		ref[i] = store_digest(db_store(db));
	}
	db_close(db);
}

/* Open dir without faults: the log holds the reference's first entries. */
static bool reopen_matches(const struct db_opts *o, uint64_t *last, char *why, size_t whysz)
{
	struct db_recovery rec;
	struct sh_err err;
	struct db *db;
	bool same;

	if (db_open(o, &db, &rec, &err) != 0) {
		snprintf(why, whysz, "reopen: %s", err.msg);
		return false;
	}
	*last = rec.last_index;
	same = rec.last_index <= WRITES + 1 && digest_equal(rec.digest, ref[rec.last_index]) &&
	       db_applied_index(db) == rec.last_index;
	if (!same)
		snprintf(why, whysz,
			 "reopen: at index %" PRIu64 " the digest is not the reference's",
			 rec.last_index);
	db_close(db);
	return same;
}

/* ------------------------------------------------------------ a write */

/* One round: entries 1..4 without faults, then entry 5 with allocation n
 * failing.  Returns 1 when an allocation failed, 0 when none did, -1 on a
 * violation (why says which). */
static int write_round(long n, char *why, size_t whysz, int *failed_db)
{
	char name[32];
	struct db_opts o;
	struct sh_err err;
	struct db *db;
	uint64_t last;
	int rv;
	bool failed;
	unsigned long before = sh_alloc_thread_failures();

	snprintf(name, sizeof name, "write%ld", n);
	o = opts(name, false);
	if (db_open(&o, &db, NULL, &err) != 0)
		bail_out("open: %s", err.msg);
	write_upto(db, 4);
	sh_alloc_fail_after(n);
	rv = write_at(db, 5, &err);
	sh_alloc_fail_after(-1);
	failed = db_failed(db, NULL);
	*failed_db += failed;
	if (rv == 0 && !digest_equal(store_digest(db_store(db)), ref[5])) {
		snprintf(why, whysz, "the write succeeded with another state");
		rv = -100;
	} else if (rv != 0 && !failed && db_applied_index(db) != 4) {
		snprintf(why, whysz, "a clean failure moved the applied index: %s", err.msg);
		rv = -100;
	} else if (rv != 0 && !failed && !digest_equal(store_digest(db_store(db)), ref[4])) {
		snprintf(why, whysz, "a clean failure changed the state: %s", err.msg);
		rv = -100;
	} else if (rv != 0 && !failed && write_at(db, 5, &err) != 0) {
		snprintf(why, whysz, "tried again, the write fails: %s", err.msg);
		rv = -100;
	} else if (rv != 0 && failed && write_at(db, 6, &err) != SH_ESHUTDOWN) {
		snprintf(why, whysz, "a failed db takes writes");
		rv = -100;
	}
	db_close(db);
	if (rv != -100 && !reopen_matches(&o, &last, why, whysz))
		rv = -100;
	rm_rf(dir);
	return rv == -100 ? -1 : sh_alloc_thread_failures() != before;
}

static void test_write(void)
{
	char why[SH_ERRMSG_SIZE + 100] = "";
	int r = 1, failed_db = 0;
	long n;

	for (n = 0; n < 5000 && r == 1; n++)
		r = write_round(n, why, sizeof why, &failed_db);
	ok(r == 0, "a write with each of its %ld allocations failing: clean or stopped%s%s", n - 1,
	   r < 0 ? "; " : "", why);
	ok(failed_db > 0, "%d of them stopped the db (memory ran out applying)", failed_db);
}

/* ------------------------------------------------------------ opening */

static int open_round(const struct db_opts *o, long n, char *why, size_t whysz)
{
	struct db_recovery rec;
	struct sh_err err;
	struct db *db = NULL;
	uint64_t last;
	unsigned long before = sh_alloc_thread_failures();
	int rv;

	sh_alloc_fail_after(n);
	rv = db_open(o, &db, &rec, &err);
	sh_alloc_fail_after(-1);
	if (rv == 0 && !digest_equal(rec.digest, ref[WRITES + 1])) {
		snprintf(why, whysz, "opened with another state");
		rv = -100;
	} else if (rv != 0 && rv != SH_ENOMEM) {
		snprintf(why, whysz, "failed with something else than out of memory: %s", err.msg);
		rv = -100;
	}
	if (db != NULL && rv == 0)
		db_close(db);
	if (rv != -100 && (!reopen_matches(o, &last, why, whysz) || last != WRITES + 1)) {
		if (why[0] == '\0')
			snprintf(why, whysz, "the log lost entries");
		rv = -100;
	}
	return rv == -100 ? -1 : sh_alloc_thread_failures() != before;
}

static void test_open(void)
{
	struct db_opts o = opts("open", false);
	char why[SH_ERRMSG_SIZE + 100] = "";
	struct sh_err err;
	struct db *db;
	int r = 1;
	long n;

	if (db_open(&o, &db, NULL, &err) != 0)
		bail_out("open: %s", err.msg);
	write_upto(db, 4);
	if (db_snapshot(db, &err) != 0)
		bail_out("snapshot: %s", err.msg);
	write_upto(db, WRITES + 1);
	db_close(db);
	for (n = 0; n < 20000 && r == 1; n++)
		r = open_round(&o, n, why, sizeof why);
	ok(r == 0, "opening (snapshot + log) with each of its %ld allocations failing: clean%s%s",
	   n - 1, r < 0 ? "; " : "", why);
	rm_rf(dir);
}

/* ------------------------------------------------------------ installing */

struct installed {
	bool done;
	int rv;
	char msg[SH_ERRMSG_SIZE];
};

static void on_installed(void *arg, int rv, const struct sh_err *err, uint64_t term, uint64_t index,
			 size_t affected)
{
	struct installed *in = arg;

	(void)term;
	(void)index;
	(void)affected;
	in->done = true;
	in->rv = rv;
	snprintf(in->msg, sizeof in->msg, "%s", rv ? err->msg : "");
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

/* A follower with nothing installs the leader's snapshot with allocation
 * n failing: installed with the leader's state, or refused with its state
 * unchanged and the received file gone (the leader sends it again). */
static int install_round(const char *from, long n, char *why, size_t whysz)
{
	char name[32];
	struct db_opts o;
	struct installed in = {0};
	struct sh_err err;
	struct db *db;
	uint64_t latest = 0;
	unsigned long before = sh_alloc_thread_failures();
	const unsigned char *voters;
	size_t vlen = 0;
	int rv = 0;

	snprintf(name, sizeof name, "install%ld", n);
	o = opts(name, true);
	if (db_open(&o, &db, NULL, &err) != 0)
		bail_out("open: %s", err.msg);
	copy_snapshot(from, 4, db_snap_dir(db));
	sh_alloc_fail_after(n);
	if (db_install(db, 4, on_installed, &in, &err) == 0)
		drain(db);
	else
		in = (struct installed){true, err.code, ""};
	sh_alloc_fail_after(-1);
	snap_latest(db_snap_dir(db), &latest, &err);
	if (!in.done) {
		snprintf(why, whysz, "the install never completed");
		rv = -100;
	} else if (in.rv == 0 && (!digest_equal(store_digest(db_store(db)), ref[4]) ||
				  db_applied_index(db) != 4 || latest != 4)) {
		snprintf(why, whysz, "installed with another state");
		rv = -100;
	} else if (in.rv == 0 && (db_installed_voters(db, &voters, &vlen), vlen == 0)) {
		snprintf(why, whysz, "installed without its voter configuration");
		rv = -100;
	} else if (in.rv != 0 && (db_applied_index(db) != 0 || latest != 0 ||
				  store_collections(db_store(db)) != 0 || db_failed(db, NULL))) {
		snprintf(why, whysz, "a refused install changed something: %s", in.msg);
		rv = -100;
	} else if (in.rv != 0 && in.rv != SH_ENOMEM) {
		snprintf(why, whysz, "refused for something else than memory: %s", in.msg);
		rv = -100;
	}
	db_close(db);
	rm_rf(dir);
	return rv == -100 ? -1 : sh_alloc_thread_failures() != before;
}

static void test_install(void)
{
	struct db_opts o = opts("leader", false);
	char why[SH_ERRMSG_SIZE + 100] = "", from[700];
	struct sh_err err;
	struct db *db;
	int r = 1;
	long n;

	if (db_open(&o, &db, NULL, &err) != 0)
		bail_out("open: %s", err.msg);
	write_upto(db, 4);
	if (db_snapshot(db, &err) != 0)
		bail_out("snapshot: %s", err.msg);
	snprintf(from, sizeof from, "%s", db_snap_dir(db));
	db_close(db);
	for (n = 0; n < 20000 && r == 1; n++)
		r = install_round(from, n, why, sizeof why);
	ok(r == 0, "installing a snapshot with each of its %ld allocations failing: clean%s%s",
	   n - 1, r < 0 ? "; " : "", why);
}

int main(void)
{
	sh_alloc_hook_libs(); /* jansson through sh_malloc, as in shoald */
	snprintf(root, sizeof root, "%.400s", make_tmpdir("faults"));
	sh_log_set_level(SH_LOG_OFF);
	make_reference();
	test_write();
	test_open();
	test_install();
	rm_rf(root);
	return done_testing();
}
