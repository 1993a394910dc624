/*
 * store: a node's applied state — its collections, the voter
 * configuration, the applied index and term — and the state machine that
 * applies log entries to it (doc/storage-format.md, "Entries").
 *
 * Threads.  One writer (the apply thread, or the recovery before it
 * starts) calls store_apply, store_adopt and store_load; any thread may
 * check entries and read at the same time.  A rwlock guards the collection
 * list; collections guard themselves (collection.h).  store_save and
 * store_voters must not run alongside store_apply or store_adopt (the
 * apply thread calls them all).
 *
 * Ownership.  store_get() returns a reference the caller drops with
 * coll_unref().
 */
#ifndef SHOAL_STORAGE_STORE_H
#define SHOAL_STORAGE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/collection.h"
#include "storage/digest.h"
#include "storage/entry.h"
#include "storage/wal.h"
#include "util/err.h"

#define STORE_MAX_COLLECTIONS 100000
#define STORE_MAX_TERMS       (1u << 24) /* terms in a snapshot's history */

struct store;

int store_new(struct store **out, struct sh_err *err);
void store_free(struct store *s);

/* Would e apply to the current state?  SH_EEXIST for a create of an
 * existing name, SH_ENOTFOUND for an unknown collection, SH_EINVAL (with
 * the point) for bad parameters, vectors or payloads.  Entries in flight
 * may still conflict; store_apply checks again. */
int store_check(struct store *s, const struct entry *e, struct sh_err *err);

/* Apply record r (its index must be the applied index + 1).  An entry that
 * does not apply (see store_check) changes nothing and returns its error
 * code — the same on every replica; the applied index moves on in both
 * cases.  *fatal is set when the state may now differ from the log (out of
 * memory): the caller must stop.  *affected: points upserted or deleted. */
int store_apply(struct store *s, const struct wal_rec *r, size_t *affected, bool *fatal,
		struct sh_err *err);

/* A write whose session (session.h) the applied state already holds the
 * answer to — a duplicate of a write applied, or a mismatch: true when it
 * must not be proposed, *rv and err its answer (0 and *res the original
 * result for a duplicate of a write that applied, else the refusal);
 * false for one to propose (applying judges it).  Any thread. */
bool store_session_known(struct store *s, const struct session_req *r, struct session_result *res,
			 int *rv, struct sh_err *err);
/* What applying entry index (a write with session r) did, while the store
 * remembers it (its last few thousand such entries): *rv and err the
 * answer, *res the result answered with (a duplicate's: the first
 * copy's, its token).  False when it is not remembered.  Any thread. */
bool store_session_verdict(struct store *s, uint64_t index, const struct session_req *r,
			   struct session_result *res, int *rv, struct sh_err *err);
/* The log time of the applied state (session.h). */
uint64_t store_log_time(const struct store *s);
/* Client sessions held; writes a session stopped from applying again. */
size_t store_sessions(const struct store *s);
uint64_t store_sessions_skipped(const struct store *s);

uint64_t store_applied_index(const struct store *s);
uint64_t store_applied_term(const struct store *s);
/* The term of applied entry index (the store keeps the first index of
 * every term it applied, and snapshots carry that history); 0 beyond the
 * applied index.  Any thread. */
uint64_t store_term_at(const struct store *s, uint64_t index);
/* Digest of the whole state: the sum of the collections' digests. */
struct digest store_digest(const struct store *s);

struct coll *store_get(struct store *s, const char *name);
size_t store_collections(const struct store *s);
/* Every collection, in name order: *out (sh_free) holds *n references the
 * caller drops with coll_unref().  SH_ENOMEM when out of memory. */
int store_list(struct store *s, struct coll ***out, size_t *n);
size_t store_points(const struct store *s);
/* The last voter configuration applied (VoterConfig body), or len 0;
 * valid until the next store_apply or store_adopt (writer thread only). */
const unsigned char *store_voters(const struct store *s, size_t *len);
/* Forget the voter configuration (a backup seeding a new cluster, whose
 * voters are not the old one's; writer thread only). */
void store_forget_voters(struct store *s);

/* Replace everything s holds by what from holds — collections, voter
 * configuration, applied index and term, and so the digest — and free
 * from: how a follower installs a snapshot from the leader (store_load
 * into from, then adopt) while searches run.  Atomic for readers: under
 * s's write lock, so a call that reads s (store_get, store_list,
 * store_digest, ...) sees the old state or the new, never a mix (the
 * applied index, read without the lock, changes inside it too).  The
 * collections s held stay alive while readers hold references to them.
 * from must be the caller's alone (no reader may know it).  Cannot fail. */
void store_adopt(struct store *s, struct store *from);

struct indexer;
/* Index in the background with ix (storage/indexer.h; the caller keeps
 * it, and clears it with NULL before freeing it), or with NULL right after
 * each write on the applying thread — deterministic, as the simulator
 * needs.  ix queues the collections that hold fresh entries (with NULL
 * they wait for their next write).  Writer thread. */
void store_set_indexer(struct store *s, struct indexer *ix);

/* The snapshot content (doc/storage-format.md, "Snapshots").  store_load
 * sets the applied index and term to (index, term). */
int store_save(struct store *s, hnsw_write_fn write, void *ctx, struct sh_err *err);
/* store_save in two parts (coll_hold): store_hold holds every collection
 * still (the indexer and the fresh sets) until store_unhold;
 * store_save_held, between the two or in a process forked meanwhile,
 * writes the content taking no lock another thread may hold.  Writer
 * thread. */
void store_hold(struct store *s);
void store_unhold(struct store *s);
int store_save_held(struct store *s, hnsw_write_fn write, void *ctx, struct sh_err *err);
int store_load(hnsw_read_fn read, void *ctx, uint64_t index, uint64_t term, struct store **out,
	       struct sh_err *err);

#endif
