/*
 * storage_writer: the process the crash test (t/storage_crash.c) kills.
 *
 *   storage_writer DIR SEED
 *
 * Opens the storage in DIR with fsync = always (small segments, a snapshot
 * every 25 entries), prints "ready LAST DIGEST POINTS" with what it
 * recovered, creates the collection if it is missing, then writes the
 * batches of crash_batch.h from the one after the last recovered, keeping
 * up to 4 in flight, and prints "ack B" for batch B as soon as its write
 * completed (durable and applied).  Runs until killed; SIGTERM stops it
 * cleanly.
 */
#include "build.h"

#include "crash_batch.h"

#include "storage/db.h"
#include "util/log.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#define IN_FLIGHT 4

static volatile sig_atomic_t stop;
static uint64_t next_batch, acked;
static int failed;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static void on_done(void *arg, int rv, const struct sh_err *err, uint64_t term, uint64_t index,
		    size_t affected)
{
	uint64_t b = (uint64_t)(uintptr_t)arg;

	(void)term;
	(void)affected;
	if (rv != 0 || index != b + 2) {
		fprintf(stderr, "writer: batch %" PRIu64 " at index %" PRIu64 ": %s\n", b, index,
			rv ? err->msg : "unexpected index");
		failed = 1;
		return;
	}
	printf("ack %" PRIu64 "\n", b);
	fflush(stdout);
	acked++;
}

static int submit(struct db *db, uint64_t seed)
{
	static struct crash_batch cb;
	struct sh_err err;

	crash_batch(&cb, seed, next_batch);
	if (db_submit(db, &cb.e, on_done, (void *)(uintptr_t)next_batch, &err) != 0) {
		fprintf(stderr, "writer: submit %" PRIu64 ": %s\n", next_batch, err.msg);
		return -1;
	}
	next_batch++;
	return 0;
}

static int run(struct db *db, uint64_t seed, uint64_t first)
{
	while (!stop && !failed) {
		struct pollfd p = {db_fd(db), POLLIN, 0};

		while (next_batch - first - acked < IN_FLIGHT)
			if (submit(db, seed) != 0)
				return 1;
		if (poll(&p, 1, 1000) < 0 && errno != EINTR)
			return 1;
		db_process(db);
	}
	return failed;
}

int main(int argc, char **argv)
{
	struct db_opts o = {.fsync = WAL_FSYNC_ALWAYS,
			    .segment_bytes = 64 << 10,
			    .wal_ahead_bytes = 16 << 10, /* kill -9 leaves zeros ahead */
			    .snapshot_entries = 25,
			    .max_payload_bytes = 1024,
			    .term = 1};
	struct db_recovery rec;
	struct entry create;
	struct sh_err err;
	struct db *db;
	uint64_t seed;
	char hex[33];
	int rv;

	if (argc != 3)
		return fprintf(stderr, "usage: storage_writer DIR SEED\n"), 2;
	o.dir = argv[1];
	seed = strtoull(argv[2], NULL, 10);
	sh_log_set_level(SH_LOG_WARN);
	signal(SIGTERM, on_term);
	if (db_open(&o, &db, &rec, &err) != 0)
		return fprintf(stderr, "writer: %s\n", err.msg), 1;
	digest_hex(rec.digest, hex);
	printf("ready %" PRIu64 " %s %zu\n", rec.last_index, hex, rec.points);
	fflush(stdout);
	crash_create(&create);
	if (rec.last_index == 0 && db_write(db, &create, NULL, NULL, &err) != 0)
		return fprintf(stderr, "writer: create: %s\n", err.msg), 1;
	next_batch = rec.last_index > 0 ? rec.last_index - 1 : 0;
	rv = run(db, seed, next_batch);
	db_close(db);
	return rv;
}
