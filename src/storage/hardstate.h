/*
 * hardstate: Raft's durable state — the current term and the vote cast in
 * it (Raft dissertation §3.8: both must be on stable storage before the
 * node answers an RPC) — and a commit index hint, in DIR/raft.state
 * (doc/storage-format.md, "raft.state").
 *
 * The file has two fixed 512-byte slots, each a checksummed record with a
 * sequence number.  A save overwrites, in place, the slot that does not
 * hold the newest durable record, so a torn write can only damage a record
 * that nothing depends on yet: one write and one fdatasync per synced save,
 * no rename.  Loading takes the valid slot with the highest sequence.  The
 * file is created by the first save (synced, whatever it asks) through a
 * temporary file and a rename, so an existing file always holds a valid
 * record, and one that does not is damage (SH_ECORRUPT), never a crash.
 *
 * Threads.  Not thread-safe: one thread (the one that runs Raft's I/O)
 * owns a struct hardstate.  A synced save blocks for one fdatasync.
 *
 * Ownership.  The caller owns h (hardstate_close) and the data directory,
 * which must stay open while h lives.
 */
#ifndef SHOAL_STORAGE_HARDSTATE_H
#define SHOAL_STORAGE_HARDSTATE_H

#include <stdbool.h>
#include <stdint.h>

#include "storage/datadir.h"
#include "util/err.h"

#define HARDSTATE_FILE  "raft.state"
#define HARDSTATE_SLOT  512
#define HARDSTATE_SIZE  (2 * HARDSTATE_SLOT)
#define HARDSTATE_MAGIC "SHOALHST"

struct hardstate;

/* Load DIR/raft.state: the valid slot with the highest sequence (the other
 * slot, torn or damaged, is ignored with a debug line), fdatasynced so that
 * what was read is durable; a missing file is the zero state (term 0, no
 * vote, commit 0).  SH_ECORRUPT, naming the file and what is wrong with
 * each slot, when the file exists but holds no valid record or is not
 * HARDSTATE_SIZE bytes.  Deletes a raft.state.tmp left by a crash. */
int hardstate_open(struct sh_datadir *d, struct hardstate **out, struct sh_err *err);
/* NULL is a no-op. */
void hardstate_close(struct hardstate *h);

/* The state last loaded or saved. */
uint64_t hardstate_term(const struct hardstate *h);
/* The node id voted for in hardstate_term(), 0 for none. */
uint64_t hardstate_vote(const struct hardstate *h);
uint64_t hardstate_commit(const struct hardstate *h);
/* The sequence number of the current record (0: nothing saved yet). */
uint64_t hardstate_seq(const struct hardstate *h);

/* Save (term, vote, commit); with sync, durable when it returns 0.  A
 * change of term or vote must be synced (Raft votes on it), a new commit
 * hint need not be (a lost one is only a later start of replay).  Refused
 * with SH_EINVAL: a term lower than the saved one, another vote in the
 * saved term, an unsynced change of term or vote.  After a failed
 * fdatasync every further save fails (the kernel may have dropped the
 * page): the node must stop and reload.  A failed write changes nothing
 * durable and may be retried. */
int hardstate_save(struct hardstate *h, uint64_t term, uint64_t vote, uint64_t commit, bool sync,
		   struct sh_err *err);

#endif
