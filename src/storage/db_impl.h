/*
 * db_impl: the engine's fields, shared by db.c (the owner's side), db_apply.c
 * (the apply thread) and db_open.c (recovery).  Nothing outside
 * src/storage/db*.c includes it.
 *
 * `lock` guards the apply limit, the watch lists, the install request and
 * the snapshot request; the owner's fields are touched by the owner's
 * thread only; the apply thread's by it alone (or by recovery before it
 * starts).
 */
#ifndef SHOAL_STORAGE_DB_IMPL_H
#define SHOAL_STORAGE_DB_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "storage/db.h"

/* A log writer op in flight (append, truncate or reset). */
struct pend {
	struct wal_op op;
	uint64_t gen;   /* db->gen when submitted */
	uint64_t index; /* standalone append: the entry (its watch) */
};

/* Someone waiting for an entry to be applied. */
struct watch {
	uint64_t index;
	db_done_fn done;
	void *arg;
	int rv;
	struct sh_err err;
	uint64_t term;
	size_t affected;
	struct watch *next;
};

/* A snapshot received from the leader, to install. */
struct install {
	uint64_t index;
	db_done_fn done;
	void *arg;
	int rv;
	struct sh_err err;
	uint64_t term;
	unsigned char *voters; /* the snapshot's voter configuration */
	size_t voters_len;
};

struct db {
	struct db_opts o;
	char *dir, *wal_dir, *snap_dir;
	struct wal *wal;
	struct wal_writer *ww;
	struct store *store;
	struct indexer *ix; /* NULL: inline indexing (manual mode, index_threads 0) */
	int efd;            /* -1 in manual mode */
	_Atomic bool woken; /* manual mode: what efd would say (db_process to run) */
	/* the snapshot loaded at open: index, term, voter configuration */
	uint64_t boot_snap_index, boot_snap_term;
	unsigned char *boot_voters;
	size_t boot_voters_len;
	/* the owner's thread */
	uint64_t term;       /* standalone: of new entries */
	uint64_t next_index; /* of the next entry appended */
	uint64_t gen;        /* bumped by every cut of the log */
	uint64_t durable;    /* the log is durable up to here (this generation) */
	uint64_t commit;     /* raft: committed up to here */
	size_t outstanding;  /* writer ops in flight */
	bool full;           /* raft: an append found no room (db_full) */
	struct sh_err full_err;
	/* shared, under lock */
	pthread_mutex_t lock;
	pthread_cond_t cond;             /* to the apply thread */
	pthread_cond_t snap_cond;        /* from it: an on-demand snapshot is done */
	uint64_t limit;                  /* apply up to here */
	struct watch *wq_head, *wq_tail; /* waiting, by increasing index */
	struct watch *dq_head, *dq_tail; /* applied, to complete */
	struct install *install, *installed;
	unsigned char *inst_voters; /* of the last snapshot installed (owner) */
	size_t inst_voters_len;
	bool stop, snap_wanted;
	/* db_snapshot's tickets: the last one taken, the last one answered (a
	 * call is answered by a snapshot started after it asked) */
	uint64_t snap_req, snap_served;
	int snap_rv;
	struct sh_err snap_err;
	/* the apply thread */
	pthread_t applier;
	bool applier_started;
	uint64_t since_entries, since_bytes;
	_Atomic uint64_t last_snap;
	_Atomic uint64_t first_index; /* of the log, after the last prefix removal */
	_Atomic uint64_t snapshots;
	_Atomic bool stopping; /* raft: leave the rest unapplied */
	_Atomic bool failed;
	_Atomic bool snapshotting; /* the apply thread takes a snapshot (applies nothing) */
	/* a snapshot a child process writes (db_snap.c): 0 when none */
	_Atomic pid_t snap_pid;          /* read by db_test_snap_writer */
	struct snap_report *snap_report; /* its result (a shared page) */
	uint64_t snap_index, snap_t0, snap_held_ms;
	uint64_t snap_serving;  /* the db_snapshot ticket it answers (0: none) */
	struct sh_err fail_err; /* written once, before failed is set */
};

/* Start the log writer and the apply thread (db_apply.c; manual mode:
 * the writer without its thread, no apply thread). */
int db_start(struct db *db, struct sh_err *err);
/* Stop the apply thread (db_apply.c; manual mode: do what it would have
 * done before stopping). */
void db_stop_applier(struct db *db);
/* Manual mode: the apply thread's work, until none is left (db_apply.c). */
void db_run_apply(struct db *db);
/* Apply the records of b from *pos (0: its start) up to `upto` to the
 * store, completing watches; *pos is left at the first record not applied
 * (lock not held; db_apply.c).  Returns a fatal error's code, else 0. */
int db_apply_buf(struct db *db, const struct wal_buf *b, size_t *pos, uint64_t upto,
		 uint64_t *rejected);

/* Snapshots (db_snap.c; the apply thread's).  db_snap_due takes one when
 * snapshot_entries or snapshot_bytes say so, db_snap_demand for
 * db_snapshot's calls up to `ticket` (answering them at the end) — unless
 * db_snap_busy: a child writes one.  db_snap_poll finishes a child that
 * ended (true when it did), db_snap_wait waits for it. */
void db_snap_due(struct db *db);
void db_snap_demand(struct db *db, uint64_t ticket);
bool db_snap_busy(const struct db *db);
bool db_snap_poll(struct db *db);
void db_snap_wait(struct db *db);

/* Progress of a long recovery or catch-up, in entries (db_open.c): a line
 * "WHAT: D of T entries (P%), N points indexed, R entries/s, about S s
 * left" at most once a second, none in the first second. */
struct db_progress {
	const char *what;
	const char *unit; /* "entries", "MiB" */
	uint64_t scale;   /* done and total are divided by it in the line */
	uint64_t t0, next, total;
	const struct store *st; /* points indexed so far; NULL: not counted */
	bool wake;              /* the apply thread's: wake the owner after a slice */
	uint64_t woke_ns;       /* ... at most once a millisecond */
};
void db_progress_start(struct db_progress *p, const char *what, uint64_t total,
		       const struct store *st);
void db_progress_note(struct db_progress *p, uint64_t done);
/* db_apply_buf of b up to upto, REPLAY_SLICE entries at a time, with a
 * progress note after each slice (done: entries from `first`); when
 * p->wake (the apply thread), a slice is one entry and the owner is woken
 * after it, at most once a millisecond (what waits for the apply,
 * acknowledgements and reads, need not wait for the whole batch). */
int db_apply_sliced(struct db *db, const struct wal_buf *b, uint64_t upto, uint64_t *rejected,
		    struct db_progress *p, uint64_t first);
/* Complete the watches on entry index with rv and why, now (db.c). */
void db_drop_watch(struct db *db, uint64_t index, int rv, const char *why);
/* Mark the storage failed for good (db.c). */
void db_fail(struct db *db, const struct sh_err *why);
void db_wake_owner(struct db *db);
/* Free everything db holds; threads must be stopped (db.c). */
void db_free(struct db *db);

/* db_open.c, shared with the install of db_apply.c: snap_read's loader
 * into a struct store **arg, and a copy of a store's voter configuration
 * (*out NULL when it has none; SH_ENOMEM). */
int db_load_fn(void *arg, hnsw_read_fn read, void *rctx, uint64_t index, uint64_t term,
	       struct sh_err *err);
int db_copy_voters(const struct store *s, unsigned char **out, size_t *len);

#endif
