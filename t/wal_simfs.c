/*
 * wal on simfs (t/sim/simfs.h), a disk with POSIX crash semantics and a
 * quota: what t/wal.c cannot make a real disk do.
 *
 *   - a run killed between a segment's rename and the fsync of its
 *     directory: the next run appends to that segment and reports the
 *     records durable, so a power loss must not take the segment away;
 *   - a nearly full disk: zeros written ahead fail once, and appends go
 *     on without them, not trying again at each append.
 */
#include "build.h"

#include "sim/simfs.h"
#include "storage/wal.h"
#include "tap.h"
#include "util/log.h"

#include <inttypes.h>
#include <string.h>

#define TOP SIMFS_ROOT "/n1"
#define DIR TOP "/wal"

static struct sh_rand rnd;

static struct wal *open_log(uint64_t seg_bytes)
{
	struct wal_opts o = {seg_bytes, WAL_AHEAD_DEFAULT};
	struct wal *w = NULL;
	struct sh_err err;

	if (wal_open(DIR, &o, &w, NULL, &err) != 0)
		bail_out("wal_open: %s", err.msg);
	return w;
}

/* n records of body bytes (term 1) from the next index, and a sync when
 * asked; 0 or the error's code. */
static int append(struct wal *w, size_t n, size_t body, bool sync)
{
	struct wal_buf *b = wal_buf_new(0);
	uint64_t next = wal_last_index(w) + 1;
	struct sh_err err;
	int rv;

	for (size_t i = 0; i < n; i++) {
		unsigned char *p = wal_buf_add(b, 1, next + i, WAL_NOOP, body);

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
static bool renamed_segment_round(uint64_t seed, uint64_t *synced, uint64_t *after)
{
	struct wal *w;

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
	*synced = wal_synced_index(w);
	stop(w, true);
	w = open_log(WAL_MIN_SEG);
	*after = wal_last_index(w);
	wal_close(w);
	return *after >= *synced;
}

static void test_renamed_segment_survives(void)
{
	int kept = 0, rounds = 24;
	uint64_t synced = 0, after = 0;

	for (int i = 0; i < rounds; i++) {
		bool k = renamed_segment_round((uint64_t)i + 1, &synced, &after);

		if (!k)
			diag("seed %d: synced up to %" PRIu64 ", the log ends at %" PRIu64
			     " after a power loss",
			     i + 1, synced, after);
		kept += k;
	}
	is_int(kept, rounds, "a power loss keeps what the run after an unsynced rename synced");
	is_int((int)synced, 80, "... (80 records synced in the last round)");
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

int main(void)
{
	sh_log_set_level(SH_LOG_OFF); /* the crashed instances complain */
	test_renamed_segment_survives();
	test_nearly_full_disk();
	simfs_reset();
	return done_testing();
}
