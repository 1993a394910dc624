/*
 * db: a node's durable storage engine — the single-node write path and
 * recovery (doc/storage-format.md, "Recovery"; DESIGN.md sections 2 and 6).
 *
 *   write:   db_submit() checks the write against the applied state, turns
 *            it into a log entry (payloads made canonical) and queues it
 *            to the log writer thread; the writer appends and flushes
 *            (group commit) and reports it durable; the apply thread
 *            applies it to the store; db_process() then calls the
 *            request's callback — the write is visible from then on.
 *   restart: db_open() loads the latest snapshot, verifies the log (cutting
 *            a torn tail) and applies the entries after the snapshot.
 *   compact: after snapshot_entries entries or snapshot_bytes bytes of log
 *            since the last snapshot (or on demand), the apply thread
 *            writes a snapshot, deletes older ones and the log before it.
 *
 * Threads.  db_submit, db_process, db_write, db_snapshot and db_close are
 * called from one thread, the owner's (shoald's event loop).  Completions
 * come back through db_fd(), an eventfd the loop watches; nothing the
 * owner calls waits on the disk except the blocking wrappers db_write and
 * db_snapshot.  Readers (db_store() and the store's readers) may run on
 * any thread at any time.
 *
 * Ownership.  Callers own their entries; db_submit copies what it needs.
 */
#ifndef SHOAL_STORAGE_DB_H
#define SHOAL_STORAGE_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/digest.h"
#include "storage/entry.h"
#include "storage/store.h"
#include "storage/wal.h"
#include "util/err.h"

struct db_opts {
	const char *dir; /* the data dir: DIR/wal and DIR/snap */
	enum wal_fsync fsync;
	uint32_t fsync_interval_ms;
	uint64_t segment_bytes;
	uint64_t snapshot_entries; /* 0: not by count */
	uint64_t snapshot_bytes;   /* 0: not by size */
	size_t max_payload_bytes;
	uint64_t term; /* of new entries; 0 means 1 (a single node) */
};

/* What db_open found. */
struct db_recovery {
	uint64_t snap_index, snap_term; /* 0: no snapshot */
	uint64_t replayed;              /* log entries applied after it */
	uint64_t rejected;              /* of which did not apply (as when written) */
	uint64_t last_index;
	uint64_t cut_bytes; /* torn tail */
	size_t collections, points;
	struct digest digest;
	uint64_t ms;
};

/* The outcome of one write: rv 0 and its (term, index), or an error. */
typedef void (*db_done_fn)(void *arg, int rv, const struct sh_err *err, uint64_t term,
			   uint64_t index, size_t affected);

struct db;

int db_open(const struct db_opts *o, struct db **out, struct db_recovery *rec, struct sh_err *err);
/* Finish the writes in flight (their callbacks run), stop the threads,
 * flush and close.  NULL is a no-op. */
void db_close(struct db *db);

/* Queue a write.  A write that cannot apply to the current state fails
 * here (nothing queued, done not called); otherwise done(arg, ...) is
 * called later from db_process(). */
int db_submit(struct db *db, const struct entry *e, db_done_fn done, void *arg, struct sh_err *err);
/* Readable when db_process() has something to do. */
int db_fd(const struct db *db);
/* Complete what the threads finished: run the callbacks. Never blocks. */
void db_process(struct db *db);
/* Submit and wait: the blocking wrapper, for tests and tools. */
int db_write(struct db *db, const struct entry *e, uint64_t *index, size_t *affected,
	     struct sh_err *err);
/* Take a snapshot now and wait for it. */
int db_snapshot(struct db *db, struct sh_err *err);

/* Set when the storage failed for good (a failed flush, out of memory while
 * applying): writes are refused and the node must restart. */
bool db_failed(const struct db *db, struct sh_err *err);

struct store *db_store(struct db *db);
uint64_t db_last_index(const struct db *db);
/* Snapshots written since open. */
uint64_t db_snapshots(const struct db *db);

#endif
