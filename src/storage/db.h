/*
 * db: a node's durable storage engine — the log, the applied state and
 * recovery (doc/storage-format.md, "Recovery"; DESIGN.md sections 2 and 6).
 *
 * The log is written by the log writer thread (group commit) and applied,
 * up to the *apply limit*, by the apply thread, which reads the entries
 * back from the log.  Two ways to drive it:
 *
 *   standalone (o.raft false; tools and tests): db_submit() checks a write
 *            against the applied state, makes it the next entry, and
 *            completes it once applied; whatever is durable may be applied.
 *   raft     (o.raft true; the node): the caller owns the log's content —
 *            db_prepare() makes an entry at the (term, index) Raft gave it,
 *            db_append() writes entries that follow the log, db_truncate()
 *            and db_reset() cut it — and says with db_commit() what is
 *            committed; entries are applied once committed and durable
 *            here.  Nothing is applied at open beyond o.replay_upto.
 *
 *   restart: db_open() loads the latest snapshot, verifies the log (cutting
 *            a torn tail) and applies the entries after the snapshot up to
 *            the end of the log (standalone) or o.replay_upto (raft).
 *   compact: after snapshot_entries entries or snapshot_bytes bytes of log
 *            since the last snapshot (or on demand), a child process the
 *            apply thread forks writes a snapshot while the apply goes on
 *            (db_snap.c); then the apply thread deletes older ones and the
 *            log before it but the last log_keep entries.
 *
 * Durability follows the fsync policy: "durable" is fsynced under `always`
 * and written under `interval` and `never`.
 *
 * Threads.  Everything here is called from one thread, the owner's
 * (shoald's event loop), except db_store() and the store's readers, which
 * any thread may use at any time.  Completions come back through db_fd(),
 * an eventfd the loop watches; db_process() runs them.  Nothing the owner
 * calls waits on the disk except the blocking wrappers db_write and
 * db_snapshot (and db_read, which reads the log, normally from the page
 * cache).
 *
 * Manual mode (o.manual; the deterministic simulator, t/sim): no log
 * writer thread, no apply thread, no eventfd (db_fd() is -1).  The work
 * those threads would do waits until the owner runs it on its own thread:
 * db_pending() says what is queued, db_run() does it — the same code the
 * threads run, so every call above means what it means with threads — and
 * db_process() then takes the completions as usual.  Until db_run(),
 * nothing submitted is written (let alone durable) and nothing is applied.
 * A simulator's step is typically
 *
 *	while ((w = db_pending(db)) != 0) {
 *		db_run(db, w);
 *		db_process(db);
 *	}
 *
 * or one db_run of one kind at a time, to interleave the disk and the apply
 * thread with everything else in its own order.  The blocking wrappers
 * (db_write, db_snapshot) run the work inline.  Nothing in manual mode
 * reads the clock or a random source except the `interval` fsync policy
 * (and the durations in log lines).
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
	uint64_t wal_ahead_bytes;  /* wal_opts.ahead_bytes */
	uint64_t snapshot_entries; /* 0: not by count */
	uint64_t snapshot_bytes;   /* 0: not by size */
	uint64_t log_keep;         /* entries kept in the log behind a snapshot */
	size_t max_payload_bytes;
	uint64_t term;        /* standalone: of new entries; 0 means 1 */
	bool raft;            /* the caller owns the log (see above) */
	uint64_t replay_upto; /* raft: apply at open up to here (a commit hint) */
	bool manual;          /* no threads: the owner calls db_run (see above) */
	/* Background indexing (doc/write-path.md): threads inserting into the
	 * graphs, 0 to index on the apply thread right after each write
	 * (always so in manual mode); the bound of a collection's fresh set
	 * in bytes (0: none), over which apply waits. */
	unsigned index_threads;
	size_t max_fresh_bytes;
	/* Optional, for the simulator's checks: called for every entry
	 * applied (replays included), right after it, on the thread that
	 * applies, with the store holding the state after it; rv is its
	 * outcome (0, or the rejection every replica makes). */
	void (*on_apply)(void *arg, const struct store *st, const struct wal_rec *r, int rv);
	void *on_apply_arg;
};

/* What db_open found. */
struct db_recovery {
	uint64_t snap_index, snap_term; /* 0: no snapshot */
	uint64_t replayed;              /* log entries applied after it */
	uint64_t rejected;              /* of which did not apply (as when written) */
	uint64_t first_index;           /* of the log */
	uint64_t last_index;
	uint64_t cut_bytes; /* torn tail */
	size_t collections, points;
	struct digest digest;
	uint64_t ms;
};

/* The outcome of one entry: rv 0 and its (term, index), or an error. */
typedef void (*db_done_fn)(void *arg, int rv, const struct sh_err *err, uint64_t term,
			   uint64_t index, size_t affected);

struct db;

int db_open(const struct db_opts *o, struct db **out, struct db_recovery *rec, struct sh_err *err);
/* Finish the appends in flight, stop the threads, flush and close; the
 * entries waiting to be applied complete with SH_ESHUTDOWN.  NULL is a
 * no-op. */
void db_close(struct db *db);

/* Readable when db_process() has something to do. */
int db_fd(const struct db *db);
/* Take what the threads finished: durability, applied entries, their
 * callbacks.  Never blocks. */
void db_process(struct db *db);

/* ------------------------------------------------------------ manual mode */

/* Work queued, for db_pending and db_run. */
enum {
	DB_WORK_WRITE = 1u << 0, /* log writer ops (appends, truncations, resets) */
	DB_WORK_APPLY = 1u << 1, /* entries up to the apply limit, an install, a snapshot */
	DB_WORK_DONE = 1u << 2,  /* completions for db_process (the eventfd's part) */
};

/* What is queued now (DB_WORK_* bits; 0 when idle).  Manual mode only. */
unsigned db_pending(const struct db *db);
/* Do the work of the kinds in `what` on this thread, as the threads would:
 * DB_WORK_WRITE every queued writer op (group commit: the appends written
 * together, then one fdatasync under `always`); DB_WORK_APPLY apply up to
 * the limit (with the snapshot that falls due), a requested install, an
 * on-demand snapshot.  Completions wait for db_process().  Manual mode
 * only. */
void db_run(struct db *db, unsigned what);

/* ------------------------------------------------------------ standalone */

/* Queue a write.  A write that cannot apply to the current state fails
 * here (nothing queued, done not called); otherwise done(arg, ...) is
 * called from db_process() once it is applied (or failed to apply, as it
 * will on every replay). */
int db_submit(struct db *db, const struct entry *e, db_done_fn done, void *arg, struct sh_err *err);
/* Submit and wait: the blocking wrapper, for tests and tools. */
int db_write(struct db *db, const struct entry *e, uint64_t *index, size_t *affected,
	     struct sh_err *err);

/* ------------------------------------------------------------ raft */

/* Check e against the applied state and encode it as record (term, index)
 * into a new buffer (*out, one reference).  *affected: the points it would
 * change now (upserts: all; deletes: those that exist). */
int db_prepare(struct db *db, const struct entry *e, uint64_t term, uint64_t index,
	       struct wal_buf **out, size_t *affected, struct sh_err *err);
/* Write the records of b (sealed here), which must start at
 * db_last_index() + 1.  db holds its own reference until written. */
int db_append(struct db *db, struct wal_buf *b, struct sh_err *err);
/* Drop the entries after index (index >= the apply limit).  Watches on
 * them complete with SH_EUNAVAIL. */
void db_truncate(struct db *db, uint64_t index);
/* Entries up to index are committed. */
void db_commit(struct db *db, uint64_t index);
/* done(arg, ...) once entry index is applied, with its outcome; SH_EUNAVAIL
 * when it is truncated first, SH_ESHUTDOWN at close.  Indexes at or below
 * the applied index complete at the next db_process with rv 0. */
int db_watch(struct db *db, uint64_t index, db_done_fn done, void *arg, struct sh_err *err);
/* Read entries from the log from index `from` (see wal_read). */
int db_read(struct db *db, uint64_t from, size_t max_records, size_t max_bytes,
	    struct wal_buf **out, struct sh_err *err);
/* The term of entry index when it is in the log, else 0. */
uint64_t db_term_at(struct db *db, uint64_t index);

/* Install the snapshot received from the leader at index (by snap_recv_*
 * into db_snap_dir(): DIR/snap/INDEX.recv) as the applied state (index
 * beyond the applied index); done(arg, rv, err, term, index, 0) from
 * db_process once it is in place.  It becomes DIR/snap/INDEX.snap only
 * once it loaded; one that fails (rv != 0) is deleted and changes
 * nothing.  The log is left alone: cut it with db_reset() when it does not
 * hold entry index. */
int db_install(struct db *db, uint64_t index, db_done_fn done, void *arg, struct sh_err *err);
/* The voter configuration (VoterConfig body, len 0: none) of the last
 * snapshot installed; valid until the next install completes. */
void db_installed_voters(const struct db *db, const unsigned char **voters, size_t *len);
/* Empty the log; the next entry is next_index. */
void db_reset(struct db *db, uint64_t next_index);

/* ------------------------------------------------------------ both */

/* Take a snapshot now and wait for it. */
int db_snapshot(struct db *db, struct sh_err *err);

/* Set when the storage failed for good (a failed flush, out of memory while
 * applying, in raft mode any failed write): writes are refused and the node
 * must restart. */
bool db_failed(const struct db *db, struct sh_err *err);
/* Raft: the last append found no room (SH_ENOSPC, in err): the log ends
 * before it (db_last_index), and its entries and every one after are the
 * owner's to append again; false again once an append succeeds.  Owner's
 * thread. */
bool db_full(const struct db *db, struct sh_err *err);
/* Raft: the owner has nothing left to append again: let the next append
 * find out whether there is room. */
void db_full_clear(struct db *db);

struct store *db_store(struct db *db);
/* The log: first index still held, last index appended (queued to the
 * writer), durable up to. */
uint64_t db_first_index(const struct db *db);
uint64_t db_last_index(const struct db *db);
uint64_t db_durable_index(const struct db *db);
/* Applied up to (the store's applied index). */
uint64_t db_applied_index(const struct db *db);
/* The apply thread is taking a snapshot: it applies nothing until done
 * (the owner is woken when it starts).  With threads that is the fork of
 * the process that writes it (milliseconds); in manual mode, or when fork
 * fails, the whole write. */
bool db_snapshotting(const struct db *db);
/* Test hooks.  A snapshot writer (the child process) reads one byte from
 * fd once its temporary file is open, before the content (fd < 0: it does
 * not): a test holds it mid-snapshot.  db_test_snap_writer: its pid while
 * one runs, else 0. */
void db_test_snap_gate(int fd);
long db_test_snap_writer(const struct db *db);
/* Snapshots written since open, and the latest one's index (0: none). */
uint64_t db_snapshots(const struct db *db);
struct indexer_stats;
/* The node leads, or not: apply waits for the indexer at
 * index.max_fresh_bytes when leading, at 1.25 times it otherwise
 * (indexer.h; nothing with inline indexing). */
void db_set_leading(struct db *db, bool leading);
/* The background indexer's counters (all 0 when indexing is inline). */
void db_index_stats(const struct db *db, struct indexer_stats *st);
uint64_t db_snapshot_index(const struct db *db);
const char *db_snap_dir(const struct db *db);
/* The snapshot db_open loaded (index 0: none): its term and the voter
 * configuration it holds (a VoterConfig body, len 0: none). */
void db_boot_snapshot(const struct db *db, uint64_t *index, uint64_t *term,
		      const unsigned char **voters, size_t *len);

#endif
