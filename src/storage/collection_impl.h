/*
 * collection_impl: the collection's fields, shared by collection.c (life,
 * checks, writes, reads) and collection_io.c (snapshots).  Nothing outside
 * src/storage/collection*.c includes it.
 */
#ifndef SHOAL_STORAGE_COLLECTION_IMPL_H
#define SHOAL_STORAGE_COLLECTION_IMPL_H

#include <pthread.h>
#include <stdatomic.h>

#include "storage/collection.h"
#include "storage/fresh.h"
#include "storage/idtree.h"

/* A payload: its canonical JSON text. */
struct blob {
	uint32_t len;
	char data[];
};

/* The id tree's value per point. */
struct pv {
	struct digest hash;
	struct blob *payload; /* NULL: none */
};

/* Locks.  `lock` guards the tree, payloads and digest; `fresh_lock` the
 * fresh set (writer-preferring: apply and the indexer never starve behind
 * searches, so nobody holds it long: a search takes it per graph result it
 * checks and per chunk of the fresh set it scans); `graph_lock` makes the
 * indexer the graph's one writer and lets a snapshot hold it still.
 * Order: graph_lock, fresh_lock, lock.  Apply changes a point under
 * fresh_lock and lock together, and coll_get reads a vector and a payload
 * under both, so that they are one write's; a search's filter takes
 * `lock` (coll_get without a vector, which takes no fresh_lock) while the
 * search may hold fresh_lock. */
struct coll {
	struct coll_params p;
	_Atomic unsigned refs;
	struct hnsw *h;
	pthread_rwlock_t lock; /* tree, payloads, digest */
	struct idtree *tree;   /* id -> struct pv */
	struct digest digest;  /* collection hash + point hashes */
	size_t payload_bytes;
	_Atomic size_t count; /* points in the tree */
	_Atomic bool retired; /* dropped or replaced: the indexer skips it */
	pthread_rwlock_t fresh_lock;
	struct fresh *fresh;
	/* for readers that take no lock: entries, the bytes they use, memory */
	_Atomic size_t fresh_n, fresh_bytes, fresh_memory;
	pthread_mutex_t graph_lock;
	_Atomic bool hold; /* a snapshot waits for graph_lock: the indexer's step ends early */
	_Atomic uint64_t indexed_total; /* entries the indexer wrote into the graph */
	/* the indexing rate, over windows of at least RATE_WINDOW_MS: the
	 * window's start (under graph_lock) and the last window's rate */
	uint64_t rate_t0_ms, rate_total0;
	_Atomic uint64_t rate_per_s, rate_at_ms;
	_Atomic size_t graph_bytes; /* hnsw_memory, as the indexer last saw it */
	/* Searches of the fresh set register in searching[gen & 1]; the
	 * indexer removes entries only after a grace period (collection_fresh.c) */
	_Atomic uint64_t search_gen;
	_Atomic long searching[2];
};

/* Under fresh_lock for writing: publish the fresh set's size. */
void coll__fresh_sizes(struct coll *c);
/* id's stored vector (from the fresh set, else the graph; for cosine
 * normalized, bit for bit as the graph stores it) into vec; SH_ENOTFOUND.
 * fresh_lock held (either way). */
int coll__vector(const struct coll *c, uint64_t id, float *vec);

/* An empty collection around index h (taken over; NULL: create one). */
int coll_make(const struct coll_params *p, struct hnsw *h, struct coll **out, struct sh_err *err);
struct blob *blob_new(const char *data, size_t len);

#endif
