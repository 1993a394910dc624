/*
 * node_full: a disk too full for the log to grow (doc/operations.md, "Disk
 * full").
 *
 * When an append finds no room, the storage cuts the log back to before it
 * and says so (db_full).  The entries it could not write stay in the
 * memory log (node_log.c keeps every entry that is not durable), and so do
 * the ones that arrive meanwhile: the node writes nothing new.  It stands
 * by (raft_set_standby: no election; a leader hands over to the voter with
 * the longest log), refuses client writes with SH_ENOSPC and serves reads.
 * Every RETRY_MS it appends the entries from the end of the durable log
 * on again; once one such append succeeds the storage is no longer full
 * and the node takes writes again.  Nothing acknowledged rests on the
 * unwritten entries: they are not durable here, so this node neither told
 * its leader it holds them nor counted itself for them as leader.
 *
 * What stays bounded: a follower keeps receiving entries while full; once
 * the unwritten ones take more than MAX_UNWRITTEN bytes of memory, the node
 * fails (node_fail) as before this mode existed: a restart recovers the
 * durable log, and the node catches up once there is room.
 */
#include "build.h"

#include "cluster/node_impl.h"

#include "storage/db.h"
#include "storage/wal.h"
#include "util/log.h"

#include <inttypes.h>

#define RETRY_MS      500
#define MAX_UNWRITTEN (256u << 20)

static void enter(struct node *n, uint64_t now, const struct sh_err *why)
{
	n->full = true;
	n->full_since = now;
	n->full_retry = now + RETRY_MS;
	n->full_episodes++;
	raft_set_standby(n->raft, now, true);
	LOG_WARN("storage",
		 "disk full (%s): this node is read-only — it refuses writes, serves reads, "
		 "stands in no election and, as leader, hands leadership over; it tries to "
		 "write its log again every %d ms",
		 why->msg, RETRY_MS);
}

static void leave(struct node *n, uint64_t now)
{
	n->full = false;
	raft_set_standby(n->raft, now, false);
	LOG_INFO("storage", "the disk has room again after %" PRIu64 " ms: this node takes writes",
		 now - n->full_since);
}

/* The storage's state into the node's, after every db_process. */
void node_full_check(struct node *n)
{
	struct sh_err why;
	bool full = db_full(n->o.db, &why);
	uint64_t now = node_now();

	if (full && !n->full)
		enter(n, now, &why);
	else if (!full && n->full && db_last_index(n->o.db) >= node_log_last(n))
		leave(n, now);
}

/* Nothing is left to write.  A follower lets the next append find out
 * whether there is room; a leader proposes a no-op for that, so that a
 * lone voter, which stays leader while full, refuses writes with
 * SH_ENOSPC instead of taking them in and waiting. */
static void probe(struct node *n, uint64_t now)
{
	uint64_t index, term;
	struct sh_err err;

	if (raft_role(n->raft) != RAFT_LEADER) {
		db_full_clear(n->o.db);
		leave(n, now);
	} else if (raft_propose(n->raft, now, RAFT_ENTRY_NOOP, 0, &index, &term) == 0 &&
		   node_log_append_own(n, term, index, WAL_NOOP, NULL, 0, &err) != 0) {
		node_fail(n, &err);
	}
}

void node_full_tick(struct node *n, uint64_t now)
{
	struct sh_err err;

	if (!n->full || now < n->full_retry)
		return;
	n->full_retry = now + RETRY_MS;
	if (node_log_unwritten_bytes(n) > MAX_UNWRITTEN) {
		sh_err_set(&err, SH_ENOSPC,
			   "disk full: %zu bytes of entries this node could not write are "
			   "waiting in memory (at most %u)",
			   node_log_unwritten_bytes(n), MAX_UNWRITTEN);
		node_fail(n, &err);
		return;
	}
	if (db_last_index(n->o.db) >= node_log_last(n)) {
		if (!db_full(n->o.db, NULL)) {
			leave(n, now);
			return;
		}
		probe(n, now);
	}
	if (n->full && node_log_rewrite(n, db_last_index(n->o.db) + 1, &err) != 0)
		node_fail(n, &err);
}
