/*
 * session: client sessions of the replicated state machine — what makes a
 * retried write apply once (Raft dissertation, section 6.3; doc/clients.md,
 * "Exactly-once writes").
 *
 * A write may carry a session: a client id (16 random bytes a client draws
 * once), the write's sequence number in it (from 1), the lowest number
 * whose outcome the client does not know yet (done_below: every write
 * below it is answered, or given up), whether this copy repeats one whose
 * outcome the client does not know (retry), the log time (stamped by the
 * leader that proposed the entry) and optionally a hash of the request.
 * The table remembers, per client, the results of the writes it applied
 * that the client may still ask about (seq >= done_below), and judges
 * every write before it is applied:
 *
 *   SESSION_NEW        never applied: apply it, then session_record();
 *   SESSION_DUPLICATE  applied before: *res is the result it had; not
 *                      applied again;
 *   SESSION_STALE      below the session's done_below and not remembered:
 *                      the client gave it up, has its answer, or the
 *                      result was forgotten; not applied (a late copy must
 *                      not overwrite newer writes) — whether an earlier
 *                      copy applied is not known;
 *   SESSION_MISMATCH   this seq was applied with a different request hash
 *                      (an Idempotency-Key reused for another request);
 *   SESSION_EXPIRED    the client is not in the table and this write
 *                      cannot open a session: only a first attempt whose
 *                      client knows every earlier outcome (done_below ==
 *                      seq, not a retry) does — nothing else of the
 *                      session can be in flight — and a session's very
 *                      first write (seq 1) even when retried.  Else its
 *                      session expired or was dropped and an earlier copy
 *                      may have applied: not applied — the client starts
 *                      a new session (Raft dissertation §6.3: a session
 *                      that expired is an error, never a second
 *                      application).  That a dropped session's seq 1
 *                      would be taken for a new one is why no session
 *                      written within SESSION_MIN_IDLE_MS of log time is
 *                      dropped for the count.
 *
 * Everything here is a function of the entries applied, in log order,
 * never of local clocks or settings, so every replica holds the same
 * table (its digest is part of the state digest, its content part of
 * snapshots).  Sessions expire deterministically: one whose last write is
 * more than SESSION_TTL_MS of log time old is dropped at the next write of
 * any session, and beyond SESSION_MAX sessions the least recently written
 * one goes if idle for SESSION_MIN_IDLE_MS (else the table holds more for
 * that long, up to SESSION_HARD_MAX: beyond, the least recently written
 * goes whatever its age — 1,700 new sessions a second for ten minutes).  Results are bounded too: a
 * session keeps its last SESSION_MAX_RESULTS (an older one is forgotten: its done_below moves past
 * it), the table SESSION_MAX_ALL_RESULTS (beyond, the least recently written sessions forget all of
 * theirs).  Forgetting only ever turns a later copy into STALE or EXPIRED, never into a second
 * application.  The log time is the largest time of any entry applied, so it never goes back
 * whatever the leaders stamp.
 *
 * Threads.  One writer (the apply thread) calls session_begin,
 * session_record and session_load's result adoption; any thread may call
 * session_lookup, session_digest and session_count at the same time (a
 * rwlock; a snapshot writer forked by the writer reads without it).
 */
#ifndef SHOAL_STORAGE_SESSION_H
#define SHOAL_STORAGE_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "index/hnsw.h"
#include "storage/digest.h"
#include "util/err.h"

#define SESSION_ID_BYTES        16
#define SESSION_TTL_MS          (60ull * 60 * 1000) /* of log time since the last write */
#define SESSION_MAX             100000              /* sessions held (idle ones) */
#define SESSION_MIN_IDLE_MS     (10ull * 60 * 1000) /* none dropped for the count before */
#define SESSION_HARD_MAX        1000000             /* sessions held, idle or not */
#define SESSION_MAX_RESULTS     1024                /* results held per session */
#define SESSION_MAX_ALL_RESULTS (1u << 20)          /* results held in the table */

/* A write's place in its client's session; set false: none. */
struct session_req {
	bool set;
	unsigned char client[SESSION_ID_BYTES];
	uint64_t seq;        /* 1.. */
	uint64_t done_below; /* 1..seq */
	uint64_t time_ms;    /* the log time: set by the leader when it proposes */
	uint64_t hash;       /* of the request; 0: not checked */
	bool retry;          /* this copy repeats one of unknown outcome (informative) */
};

/* What a write did when it was applied. */
struct session_result {
	uint64_t seq;
	uint64_t hash;
	uint64_t index, term; /* its entry */
	uint64_t affected;
	int32_t rv; /* 0, or the SH_E* code it was refused with */
};

enum session_verdict {
	SESSION_NEW,
	SESSION_DUPLICATE,
	SESSION_STALE,
	SESSION_MISMATCH,
	SESSION_EXPIRED,
};

struct session_table;

int session_table_new(struct session_table **out, struct sh_err *err);
void session_table_free(struct session_table *t);
/* Exchange the contents of a and b (a snapshot installed: store_adopt);
 * atomic for readers of a. */
void session_table_swap(struct session_table *a, struct session_table *b);

/* Is r well formed?  seq >= 1, 1 <= done_below <= seq, a client id not
 * all zero.  SH_EINVAL saying what is wrong. */
int session_check(const struct session_req *r, struct sh_err *err);

/* At apply, before the entry (writer): move the log time to r->time_ms
 * when later, expire sessions, find r's session (a new one for an unknown
 * client's write that may open one; none for the others: SESSION_EXPIRED),
 * move its done_below up to r->done_below (dropping the results below it)
 * and judge r (above).  SH_ENOMEM (fatal: the table may differ
 * from the log's) is returned as a negative value; verdicts are >= 0. */
int session_begin(struct session_table *t, const struct session_req *r, struct session_result *res);
/* After applying an entry judged SESSION_NEW: remember its result
 * (res->seq is r->seq).  SH_ENOMEM is fatal, as above. */
int session_record(struct session_table *t, const struct session_req *r,
		   const struct session_result *res);

/* What session_begin would answer now, changing nothing (the leader, to
 * answer a retried write from the applied state without proposing it
 * again): as session_begin judges (an unknown client: NEW for seq 1,
 * else EXPIRED; an unapplied seq: NEW or STALE).  Any thread. */
enum session_verdict session_lookup(const struct session_table *t, const struct session_req *r,
				    struct session_result *res);

/* The answer to a write judged v (not SESSION_NEW) with the result res
 * session_begin or session_lookup gave: 0 with res's affected count for
 * a duplicate of a write that applied, else the SH_E* code, with err
 * saying why — the code it was refused with the first time (duplicate),
 * SH_ESTALE (stale), SH_EINVAL (mismatch), SH_ESESSION (expired). */
int session_answer(enum session_verdict v, const struct session_req *r,
		   const struct session_result *res, struct sh_err *err);

/* Sessions held; the log time. */
size_t session_count(const struct session_table *t);
uint64_t session_log_time(const struct session_table *t);
/* The table's share of the state digest: 0 for an empty table at log
 * time 0 (so a state without sessions digests as before they existed). */
struct digest session_digest(const struct session_table *t);

/* The snapshot section (doc/storage-format.md, "Snapshots", format 4):
 * u64 log time, u32 sessions, then per session, least recently written
 * first: the client id, u64 last write's log time, u64 done_below, u32
 * results, per result u64 seq, hash, index, term, affected and i32 rv.
 * session_load checks every count and order and fills an empty table. */
int session_save(const struct session_table *t, hnsw_write_fn write, void *ctx);
int session_load(struct session_table *t, hnsw_read_fn read, void *ctx, struct sh_err *err);

#endif
