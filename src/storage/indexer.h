/*
 * indexer: a node's background indexing (doc/write-path.md).  Apply puts
 * points in a collection's fresh set and kicks the indexer, whose thread
 * moves them into the HNSW graph (coll_index), inserting new points on
 * `threads` threads at once.  Apply waits (indexer_throttle) while a
 * collection's fresh set is over its bound: back-pressure that slows
 * acknowledgements to what the node indexes, and is counted.  A
 * follower's bound is a quarter higher than the leader's: the leader,
 * whose apply paces the acknowledgements, is the one that waits, and a
 * follower whose indexer runs a little slower keeps applying at once
 * (doc/write-path.md, "Back-pressure").
 *
 * Threads.  indexer_kick and indexer_throttle from the apply thread (any
 * thread may call them); the indexer's own thread does the rest.  The
 * queue holds a reference to each collection in it.
 */
#ifndef SHOAL_STORAGE_INDEXER_H
#define SHOAL_STORAGE_INDEXER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/collection.h"
#include "util/err.h"

#define INDEXER_BATCH             4096         /* fresh entries per step */
#define INDEXER_DEFAULT_MAX_FRESH (256u << 20) /* bytes per collection */

struct indexer_opts {
	unsigned threads;       /* inserting threads (>= 1) */
	size_t max_fresh_bytes; /* per collection; 0: no bound */
};

struct indexer_stats {
	uint64_t steps, errors;
	uint64_t throttled;    /* times apply waited */
	uint64_t throttled_ms; /* and for how long in all */
	bool throttling;       /* apply is waiting now */
	uint64_t deferred;     /* times indexing waited for apply */
	uint64_t deferred_ms;  /* and for how long in all */
	size_t queued;         /* collections waiting for the thread */
};

struct indexer;

int indexer_new(const struct indexer_opts *o, struct indexer **out, struct sh_err *err);
/* Stop indexing (the thread ends after its current step) and let
 * indexer_throttle return: a closing node applies what is left without
 * waiting for the graph. */
void indexer_stop(struct indexer *ix);
/* indexer_stop, wait for the thread, drop the queue. */
void indexer_free(struct indexer *ix);
/* c has fresh entries: queue it unless it is queued. */
void indexer_kick(struct indexer *ix, struct coll *c);
/* Wait while c's fresh set is over the bound (or until indexer_free). */
void indexer_throttle(struct indexer *ix, struct coll *c);
/* The apply thread has committed entries to apply (busy), or none left:
 * indexing defers to it within limits (indexer.c, "Deferring to apply").
 * The apply thread only; NULL ix: nothing. */
void indexer_apply_busy(struct indexer *ix, bool busy);
/* This node leads (the plain bound) or follows (the bound and a quarter);
 * leading until told otherwise (a node says at every role change). */
void indexer_set_leading(struct indexer *ix, bool leading);
void indexer_stats(struct indexer *ix, struct indexer_stats *st);

#endif
