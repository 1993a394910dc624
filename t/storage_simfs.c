/*
 * The storage on simfs (t/sim/simfs.h), a disk with POSIX crash semantics
 * and a quota: what t/wal.c and t/datadir.c cannot make a real disk do.
 *
 *   - a run killed between a segment's rename and the fsync of its
 *     directory: the next run appends to that segment and reports the
 *     records durable, so a power loss must not take the segment away;
 *   - a nearly full disk: zeros written ahead fail once, and appends go
 *     on without them, not trying again at each append;
 *   - a cut (Raft's truncation) whose flush failed: the records it cut
 *     must not come back after the next run's records;
 *   - directories: a data dir made with its parents, and a log directory
 *     an earlier run made without making it durable, survive a power
 *     loss with what was synced in them.
 */
#include "build.h"

#include "sim/simfs.h"
#include "storage/datadir.h"
#include "storage/wal.h"
#include "tap.h"
#include "util/log.h"

#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>

#define TOP SIMFS_ROOT "/n1"
#define DIR TOP "/wal"

static struct sh_rand rnd;

static struct wal *open_log_ahead(uint64_t seg_bytes, uint64_t ahead)
{
	struct wal_opts o = {seg_bytes, ahead};
	struct wal *w = NULL;
	struct sh_err err;

	if (wal_open(DIR, &o, &w, NULL, &err) != 0)
		bail_out("wal_open: %s", err.msg);
	return w;
}

static struct wal *open_log(uint64_t seg_bytes)
{
	return open_log_ahead(seg_bytes, WAL_AHEAD_DEFAULT);
}

/* n records of body bytes (term 1) from the next index, and a sync when
 * asked; 0 or the error's code. */
static int append_term(struct wal *w, uint64_t term, size_t n, size_t body, bool sync)
{
	struct wal_buf *b = wal_buf_new(0);
	uint64_t next = wal_last_index(w) + 1;
	struct sh_err err;
	int rv;

	for (size_t i = 0; i < n; i++) {
		unsigned char *p = wal_buf_add(b, term, next + i, WAL_NOOP, body);

		if (p == NULL)
			bail_out("wal_buf_add failed");
		memset(p, (int)((next + i) & 0xff), body);
	}
	rv = wal_append(w, &b, 1, &err);
	if (rv == 0 && sync)
		rv = wal_sync(w, &err);
	wal_buf_unref(b);
	return rv;
}

static int append(struct wal *w, size_t n, size_t body, bool sync)
{
	return append_term(w, 1, n, body, sync);
}

/* The process dies: nothing of the instance's I/O lands any more. */
static void stop(struct wal *w, bool power_loss)
{
	if (power_loss)
		simfs_crash(TOP);
	else
		simfs_kill(TOP);
	wal_close(w);
	simfs_thaw(TOP);
}

/* One round: the segment made by a run that died before its directory's
 * fsync receives records the next run syncs; a power loss keeps them. */
static bool renamed_segment_round(uint64_t seed)
{
	struct wal *w;
	uint64_t synced, after;

	sh_rand_seed(&rnd, seed);
	simfs_reset();
	simfs_set_rand(&rnd);
	simfs_mkdir_durable(TOP);
	w = open_log(WAL_MIN_SEG);
	for (int i = 0; i < 7; i++) /* past 64 KiB: the next append rolls */
		if (append(w, 10, 1000, true) != 0)
			bail_out("append %d failed", i);
	simfs_fail_dir_fsync(TOP, 1); /* the roll's directory fsync */
	if (append(w, 10, 1000, true) == 0)
		bail_out("the roll's failed directory fsync went unnoticed");
	stop(w, false);
	w = open_log(WAL_MIN_SEG);
	if (append(w, 10, 1000, true) != 0)
		bail_out("append after the restart failed");
	synced = wal_synced_index(w);
	stop(w, true);
	w = open_log(WAL_MIN_SEG);
	after = wal_last_index(w);
	wal_close(w);
	if (synced != 80 || after < synced)
		diag("seed %" PRIu64 ": synced up to %" PRIu64 ", the log ends at %" PRIu64
		     " after a power loss",
		     seed, synced, after);
	return synced == 80 && after >= synced;
}

/* Rounds first..first + n - 1 of round() that hold. */
static int rounds_kept(bool (*round)(uint64_t), uint64_t first, int n)
{
	int kept = 0;

	for (int i = 0; i < n; i++)
		kept += round(first + (uint64_t)i);
	return kept;
}

static void test_renamed_segment_survives(void)
{
	is_int(rounds_kept(renamed_segment_round, 1, 24), 24,
	       "a power loss keeps the 80 records synced by the run after an unsynced rename");
}

static void test_nearly_full_disk(void)
{
	struct simfs_stats st0, st1;
	struct wal *w;

	simfs_reset();
	simfs_set_rand(&rnd);
	simfs_mkdir_durable(TOP);
	w = open_log(4u << 20);
	simfs_set_quota(TOP, simfs_used(TOP) + (256u << 10));
	simfs_stats(&st0);
	for (int i = 0; i < 100; i++)
		if (append(w, 1, 1000, true) != 0)
			bail_out("append %d failed", i);
	simfs_stats(&st1);
	is_int((int)(st1.enospc - st0.enospc), 1,
	       "zeros ahead that do not fit: one failed write, not one per append");
	is_int(wal_last_index(w), 100, "every append made it");
	ok(simfs_used(TOP) < (200u << 10),
	   "the file holds the records, no zeros (%" PRIu64 " bytes)", simfs_used(TOP));
	stop(w, true);
	simfs_set_quota(TOP, 0);
	w = open_log(4u << 20);
	is_int(wal_last_index(w), 100, "a power loss keeps them");
	wal_close(w);
}

/* One round: a cut whose flush fails may stay off the disk (the page
 * cache shows it, the disk's file is as long as before); the next run
 * writes a new record where the first cut one was: a power loss must not
 * bring the others back after it.  No zeros ahead: they would hide it. */
static bool failed_cut_round(uint64_t seed)
{
	struct wal *w;
	struct sh_err err;
	uint64_t last, term;

	sh_rand_seed(&rnd, seed);
	simfs_reset();
	simfs_set_rand(&rnd);
	simfs_mkdir_durable(TOP);
	w = open_log_ahead(4u << 20, 0);
	if (append(w, 10, 100, true) != 0)
		bail_out("append failed");
	simfs_fail_fsync(TOP, 1);
	if (wal_truncate(w, 7, &err) == 0)
		bail_out("the cut's failed flush went unnoticed");
	stop(w, false);
	w = open_log_ahead(4u << 20, 0);
	if (wal_last_index(w) != 7 || append_term(w, 2, 1, 100, true) != 0)
		bail_out("reopened after the cut: last %" PRIu64 ", or the append failed",
			 wal_last_index(w));
	stop(w, true);
	if (wal_open(DIR, &(struct wal_opts){4u << 20, 0}, &w, NULL, &err) != 0) {
		diag("seed %" PRIu64 ": %s", seed, err.msg);
		return false;
	}
	last = wal_last_index(w);
	if (wal_term(w, last, &term, NULL) != 0)
		term = 0;
	wal_close(w);
	if (last != 8 || term != 2)
		diag("seed %" PRIu64 ": the log ends at %" PRIu64 " (term %" PRIu64
		     "), not at the new record 8",
		     seed, last, term);
	return last == 8 && term == 2;
}

static void test_failed_cut_stays_cut(void)
{
	is_int(rounds_kept(failed_cut_round, 100, 16), 16,
	       "records cut by a cut whose flush failed never come back");
}

/* One round: the log's directory exists in the page cache only (a run
 * made it and died before its parent's fsync, as `shoald restore` did);
 * the next run's synced records survive a power loss. */
static bool cached_dir_round(uint64_t seed)
{
	struct wal *w;
	uint64_t last;

	sh_rand_seed(&rnd, seed);
	simfs_reset();
	simfs_set_rand(&rnd);
	simfs_mkdir_durable(TOP);
	if (mkdir(DIR, 0750) != 0)
		bail_out("mkdir %s failed", DIR);
	w = open_log(4u << 20);
	if (append(w, 100, 100, true) != 0)
		bail_out("append failed");
	stop(w, true);
	w = open_log(4u << 20);
	last = wal_last_index(w);
	wal_close(w);
	return last == 100;
}

/* One round: a data dir made with its parents, its node id written; a
 * power loss keeps the id.  The first parent exists already, in the page
 * cache only (an earlier run made it and died). */
static bool datadir_round(uint64_t seed)
{
	struct sh_datadir *d;
	struct sh_err err;
	uint64_t id;

	sh_rand_seed(&rnd, seed);
	simfs_reset();
	simfs_set_rand(&rnd);
	simfs_mkdir_durable(TOP);
	if (mkdir(TOP "/var", 0750) != 0)
		bail_out("mkdir %s/var failed", TOP);
	if (sh_datadir_open(TOP "/var/lib/shoal", &d, &err) != 0)
		bail_out("datadir: %s", err.msg);
	id = sh_datadir_node_id(d);
	simfs_crash(TOP);
	sh_datadir_close(d);
	simfs_thaw(TOP);
	if (sh_datadir_open(TOP "/var/lib/shoal/", &d, &err) != 0)
		bail_out("datadir after the power loss: %s", err.msg);
	if (sh_datadir_node_id(d) != id)
		diag("seed %" PRIu64 ": node id %016" PRIx64 " became %016" PRIx64, seed, id,
		     sh_datadir_node_id(d));
	id = id == sh_datadir_node_id(d);
	sh_datadir_close(d);
	return id;
}

static void test_directories_durable(void)
{
	is_int(rounds_kept(cached_dir_round, 200, 24), 24,
	       "a log directory left in the page cache: made durable at open");
	is_int(rounds_kept(datadir_round, 300, 24), 24,
	       "a data dir made with its parents: its node id survives");
}

int main(void)
{
	sh_log_set_level(SH_LOG_OFF); /* the crashed instances complain */
	test_renamed_segment_survives();
	test_nearly_full_disk();
	test_failed_cut_stays_cut();
	test_directories_durable();
	simfs_reset();
	return done_testing();
}
