/*
 * hist: client histories of a shoal cluster and their checker (issue 10;
 * doc/consistency.md says what each level promises, this checks it).
 *
 * Clients record every operation they make: a write (an upsert of one
 * point whose payload carries a version unique in the whole history), a
 * delete, or a read of one point by id at a consistency level, with the
 * times it was invoked and answered, its outcome and, for writes, the token
 * (term, index) the cluster returned.  The point ids are the registers: a
 * write sets the register to its version, a delete to "absent" (0), a read
 * observes it.  The simulator (t/sim/node_world.c) records in memory; the
 * real-process test (t/cluster_history.sh) writes one text line per
 * operation and checks the file with t/hist/histcheck.
 *
 * hist_check() verifies, per register:
 *
 *   linearizable  writes acknowledged at quorum or all (committed before
 *                 the answer), writes acknowledged at leader or one and
 *                 writes whose outcome is unknown (these may take effect
 *                 at any time after they were invoked, or never), and reads
 *                 answered OK at strong or quorum, have one legal order
 *                 that respects real time (Wing & Gong's search with
 *                 Lowe's memoisation; the per-register split is sound
 *                 because linearizability is local — Herlihy & Wing);
 *   no ghost      no read at any level observes a version that no write
 *                 wrote, a write that failed (a failure is definite: the
 *                 write was not and will never be applied), or a write
 *                 invoked after the read was answered;
 *   RYW           a read at read_your_writes carrying token (t, i) observes
 *                 the register as of some log index >= i: with the truth
 *                 (the committed log, when the recorder knows it), exactly;
 *                 without it, against the tokens the writes were given;
 *   lost          a "lost" answer (the token's entry was replaced) only for
 *                 a token whose entry is not in the committed log (with the
 *                 truth), or whose write nobody ever observed (without);
 *   durable       with the truth: every write acknowledged at quorum or all
 *                 is in the committed log at its token.
 *
 * Times are microseconds on one clock shared by every client (simulated
 * time, or CLOCK_MONOTONIC of the machine that runs every real client).
 * An operation A precedes B when A was answered strictly before B was
 * invoked; equal times count as concurrent.
 *
 * Not thread-safe: one recorder at a time.
 */
#ifndef SHOAL_T_HIST_H
#define SHOAL_T_HIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define HIST_NEVER UINT64_MAX /* complete: not answered (unknown outcome) */

enum hist_kind { HIST_WRITE = 1, HIST_DELETE, HIST_READ };

/* Levels, as node.h numbers them. */
enum hist_ack { HIST_ACK_LEADER = 1, HIST_ACK_ONE, HIST_ACK_QUORUM, HIST_ACK_ALL };
enum hist_read { HIST_EVENTUAL = 1, HIST_RYW, HIST_STRONG, HIST_QUORUM };

enum hist_outcome {
	HIST_OK = 1,  /* answered with success */
	HIST_FAIL,    /* answered with a definite failure: not applied, never will be */
	HIST_UNKNOWN, /* timed out, connection lost, crashed: may or may not apply */
	HIST_LOST,    /* a read_your_writes read told the token's write was lost */
};

struct hist_op {
	uint32_t client;
	uint8_t kind;    /* enum hist_kind */
	uint8_t level;   /* writes: enum hist_ack; reads: enum hist_read */
	uint8_t outcome; /* enum hist_outcome */
	uint64_t key;    /* the point id */
	/* writes: the version written (unique, nonzero); deletes: a unique
	 * nonzero tag; reads: the version observed, 0 for absent */
	uint64_t value;
	uint64_t invoke, complete; /* complete: HIST_NEVER when unknown */
	/* writes and deletes answered OK: their token; RYW reads: the token
	 * they carried */
	uint64_t term, index;
	uint32_t node; /* the node asked (for messages only) */
};

/* One committed log entry (the truth). */
struct hist_entry {
	uint64_t index, term;
	uint8_t kind;   /* HIST_WRITE, HIST_DELETE, or 0: touches no register */
	uint64_t key;   /* writes and deletes */
	uint64_t value; /* writes: the version written */
};

struct hist;

struct hist *hist_new(void);
void hist_free(struct hist *h);

/* Record an operation (copied); returns its number, or -1 when out of
 * memory.  hist_set_outcome completes one recorded before with complete =
 * HIST_NEVER (a client records the invocation first, then the answer). */
long hist_add(struct hist *h, const struct hist_op *op);
void hist_complete(struct hist *h, long i, uint64_t complete, uint8_t outcome, uint64_t value,
		   uint64_t term, uint64_t index);
size_t hist_count(const struct hist *h);
const struct hist_op *hist_get(const struct hist *h, size_t i);

/* The truth: the committed log, every entry from index 1 on in order (a
 * write entry of several points is added once per point, with the same
 * index), so that RYW, "lost" and durability are judged exactly.
 * Returns 0, or -1 when out of memory or out of order. */
int hist_truth_add(struct hist *h, const struct hist_entry *e);

/* Text form, one operation per line (the real-process test's files):
 *
 *   op CLIENT KIND KEY VALUE LEVEL INVOKE COMPLETE OUTCOME TERM INDEX NODE
 *
 * KIND w|d|r, LEVEL a name (leader one quorum all eventual ryw strong
 * quorum), COMPLETE "-" when never answered, OUTCOME ok|fail|unknown|lost.
 * Lines starting with '#' are comments.  Returns 0, or -1 with a message
 * naming the line. */
int hist_write_op(FILE *f, const struct hist_op *op);
int hist_load(struct hist *h, FILE *f, char *why, size_t size);

struct hist_stats {
	size_t ops, keys, linearized_ops, violations;
	uint64_t search_steps;
};

/* Check everything above.  Returns the number of violations found (0:
 * the history is correct); each one is described on `out` (may be NULL)
 * with the operations involved.  A register whose search exceeds
 * max_steps (0: a default) counts as a violation ("inconclusive"), so
 * that a workload that makes the check too costly is noticed. */
size_t hist_check(const struct hist *h, uint64_t max_steps, FILE *out, struct hist_stats *st);

/* Names for messages. */
const char *hist_level_name(uint8_t kind, uint8_t level);
const char *hist_outcome_name(uint8_t outcome);

#endif
