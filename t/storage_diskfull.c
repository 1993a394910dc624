/* Disk full: the storage on a small tmpfs (mounted here when the test runs
 * as root and may mount), or else under RLIMIT_FSIZE.  Writes fail with a
 * clear error once the log cannot grow; every write acknowledged before is
 * kept; a snapshot that cannot be written fails cleanly (no temporary file
 * left); when room comes back, writes work again without a restart; and a
 * restart recovers exactly what was acknowledged. */
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

static struct db_opts opts(const char *dir)
{
	return (struct db_opts){.dir = dir,
				.fsync = WAL_FSYNC_ALWAYS,
				.segment_bytes = 1 << 20,
				.max_payload_bytes = 64 << 10,
				.term = 1};
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

int main(void)
{
	const char *root = make_tmpdir("diskfull");
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
	o = opts(dir);
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
	rm_rf(root);
	return done_testing();
}
