/*
 * restore: `shoald --restore FILE` — seed a new data dir from a backup
 * (doc/shoald.8, "BACKUP AND RESTORE"; doc/storage-format.md, "Backups").
 *
 * The file is untrusted: it is read and checked whole before anything is
 * written — every frame's CRC bound to its position, the end frame with
 * the content length, nothing after it, every count against its limit
 * before allocating, the HNSW streams, and the digests summed from the
 * points against the stored ones (snap_read_path + store_load: what a
 * start checks in its own snapshot).  The data dir must not exist or be
 * empty: a restore makes a new node, never overwrites one.
 *
 * Then, in the new data dir: the node id; raft.state with the backup's
 * term (so that this node's terms, and the entries it writes, never go
 * below the term of the state it holds); an empty log starting after the
 * backup's index; and last, as the commit point,
 * the state written as snap/INDEX.snap — without the old cluster's voter
 * configuration, which names nodes of another cluster: the node
 * bootstraps a new cluster over it (cluster/node_auto.c), every founder
 * restored from the same file, or joins one that was.
 *
 * main() calls it alone, before anything else runs; single-threaded.
 */
#include "build.h"

#include "server/restore.h"

#include "storage/datadir.h"
#include "storage/digest.h"
#include "storage/diskio.h"
#include "storage/hardstate.h"
#include "storage/snapshot.h"
#include "storage/store.h"
#include "storage/wal.h"
#include "util/log.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static int load(void *arg, hnsw_read_fn read, void *rctx, uint64_t index, uint64_t term,
		struct sh_err *err)
{
	return store_load(read, rctx, index, term, arg, err);
}

static int save(void *arg, hnsw_write_fn write, void *wctx, struct sh_err *err)
{
	return store_save(arg, write, wctx, err);
}

/* The data dir does not exist, or holds nothing. */
static int check_empty(const char *dir, struct sh_err *err)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int rv = 0;

	if (d == NULL)
		return errno == ENOENT ? 0
				       : sh_err_sys(err, errno, "cannot open data dir '%s'", dir);
	while (rv == 0 && (e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			rv = sh_err_set(err, SH_EEXIST,
					"data dir '%s' is not empty (it holds '%s'): a restore "
					"seeds a new node and never overwrites one; move the "
					"directory away or give another node.data_dir",
					dir, e->d_name);
	closedir(d);
	return rv;
}

/* An empty log that starts after the snapshot (else the start would take
 * the missing entries for a crash's loss, and say so). */
static int empty_log(const char *dir, uint64_t index, struct sh_err *err)
{
	char wal_dir[4200];
	struct wal_opts o = {.segment_bytes = WAL_MIN_SEG};
	struct wal *w;
	int rv;

	snprintf(wal_dir, sizeof wal_dir, "%s/wal", dir);
	if ((rv = wal_open(wal_dir, &o, &w, NULL, err)) != 0)
		return rv;
	rv = wal_reset(w, index + 1, err);
	wal_close(w);
	return rv;
}

/* Node id, hard state (term), the log, then the snapshot: the commit point. */
static int seed(const char *dir, struct store *st, uint64_t index, struct sh_err *err)
{
	struct sh_datadir *dd = NULL;
	struct hardstate *hs = NULL;
	char snap_dir[4200];
	int rv;

	if ((rv = sh_datadir_open(dir, &dd, err)) != 0 || (rv = hardstate_open(dd, &hs, err)) != 0)
		goto out;
	if ((rv = hardstate_save(hs, store_applied_term(st), 0, index, true, err)) != 0)
		goto out;
	if ((rv = empty_log(dir, index, err)) != 0)
		goto out;
	snprintf(snap_dir, sizeof snap_dir, "%s/snap", dir);
	if ((rv = diskio_mkdir(snap_dir, err)) != 0)
		goto out;
	store_forget_voters(st);
	rv = snap_write(snap_dir, index, store_applied_term(st), save, st, NULL, err);
out:
	hardstate_close(hs);
	sh_datadir_close(dd);
	return rv;
}

int restore_run(const char *file, const char *dir, struct sh_err *err)
{
	struct store *st = NULL;
	struct stat sb;
	uint64_t index = 0;
	char hex[33];
	int rv;

	if (stat(file, &sb) != 0)
		return sh_err_sys(err, errno, "restore: cannot read '%s'", file);
	if (!S_ISREG(sb.st_mode))
		return sh_err_set(err, SH_EINVAL, "restore: '%s' is not a regular file", file);
	if ((rv = check_empty(dir, err)) != 0)
		return sh_err_wrap(err, rv, "restore");
	LOG_INFO("restore", "checking '%s'", file);
	if ((rv = snap_read_path(file, load, &st, &index, err)) != 0) {
		store_free(st);
		return sh_err_wrap(err, rv, "restore: '%s' is not a sound backup, nothing written",
				   file);
	}
	digest_hex(store_digest(st), hex);
	LOG_INFO("restore",
		 "'%s' is sound: index %" PRIu64 " (term %" PRIu64
		 "), %zu collections, %zu points, digest %s",
		 file, index, store_applied_term(st), store_collections(st), store_points(st), hex);
	rv = seed(dir, st, index, err);
	store_free(st);
	if (rv != 0)
		return sh_err_wrap(err, rv,
				   "restore: seeding data dir '%s' (delete it before trying again)",
				   dir);
	LOG_INFO("restore",
		 "data dir '%s' seeded from '%s' at index %" PRIu64
		 ", digest %s; start shoald on it: it bootstraps a new cluster over this state "
		 "(every founder restored from the same file) or joins one",
		 dir, file, index, hex);
	return 0;
}
