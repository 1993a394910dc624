/*
 * db_impl: the engine's fields, shared by db.c (the write path and the
 * apply thread) and db_open.c (recovery).  Nothing outside
 * src/storage/db*.c includes it.
 *
 * `lock` guards the apply queue (aq), the applied queue (dq) and the
 * snapshot request; the loop-thread fields (next_index, gen, outstanding)
 * are touched by the owner's thread only.
 */
#ifndef SHOAL_STORAGE_DB_IMPL_H
#define SHOAL_STORAGE_DB_IMPL_H

#include <pthread.h>
#include <stdatomic.h>

#include "storage/db.h"

/* One write in flight: the log writer's op, then the apply thread's. */
struct req {
	struct wal_op op; /* op.buf: the entry as a record */
	db_done_fn done;
	void *arg;
	uint64_t gen; /* db->gen when submitted */
	int rv;
	struct sh_err err;
	size_t affected;
	struct req *next;
};

struct db {
	struct db_opts o;
	char *dir, *wal_dir, *snap_dir;
	struct wal *wal;
	struct wal_writer *ww;
	struct store *store;
	int efd;
	/* the owner's thread */
	uint64_t term, next_index, gen;
	size_t outstanding;
	/* the apply thread */
	pthread_t applier;
	bool applier_started;
	pthread_mutex_t lock;
	pthread_cond_t cond;      /* to the apply thread */
	pthread_cond_t snap_cond; /* from it: an on-demand snapshot is done */
	struct req *aq_head, *aq_tail;
	struct req *dq_head, *dq_tail;
	bool stop, snap_wanted, snap_done;
	int snap_rv;
	struct sh_err snap_err;
	uint64_t since_entries, since_bytes, last_snap;
	_Atomic uint64_t snapshots;
	_Atomic bool failed;
	struct sh_err fail_err; /* written once, before failed is set */
};

/* Start the log writer and the apply thread (db.c). */
int db_start(struct db *db, struct sh_err *err);
/* Free everything db holds; threads must be stopped (db.c). */
void db_free(struct db *db);

#endif
