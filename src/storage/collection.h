/*
 * collection: a named set of points — an ordered id tree with each point's
 * digest hash and payload, the HNSW graph (which stores ids and vectors),
 * the fresh set of points applied but not yet in the graph
 * (doc/write-path.md), and the collection's digest (doc/storage-format.md,
 * "State digest").
 *
 * Applying a write costs a copy: coll_upsert and coll_delete put the
 * point's new version (or a tombstone) in the fresh set, and coll_index,
 * called by the indexer (storage/indexer.h) or right after apply, moves
 * fresh entries into the graph.  Every search sees exactly what was
 * applied: the graph (hiding what the fresh set holds newer) merged with
 * an exact scan of the fresh set.
 *
 * Threads.  One writer (the apply thread) calls coll_upsert/coll_delete/
 * coll_set_payload; one indexer at a time calls coll_index (it serializes
 * itself against snapshots); any number of readers call the rest at the
 * same time.  A reader may see part of a batch that is being applied.
 *
 * Ownership.  A collection is reference-counted: the store holds one
 * reference, and a reader that looked it up holds another until it calls
 * coll_unref(), so dropping a collection never pulls it from under a
 * search.  Inputs are copied; outputs are caller-owned (sh_free).
 */
#ifndef SHOAL_STORAGE_COLLECTION_H
#define SHOAL_STORAGE_COLLECTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "index/hnsw.h"
#include "storage/digest.h"
#include "util/err.h"

#define COLL_NAME_MAX     64
#define COLL_MAX_PAYLOAD  (64u << 20) /* hard limit; the configured one is lower */
#define COLL_DEFAULT_M    HNSW_DEFAULT_M
#define COLL_DEFAULT_EFC  HNSW_DEFAULT_EFC
#define COLL_MAX_EF_BUILD 4096

struct coll_params {
	char name[COLL_NAME_MAX + 1];
	uint32_t dim;
	enum sh_metric metric;
	uint32_t m, ef_construction;
	uint64_t seed;
};

/* A point to upsert: vec holds dim floats (checked against the
 * collection's); payload is canonical JSON (coll_payload_canon) or NULL. */
struct coll_point {
	uint64_t id;
	const float *vec;
	uint32_t dim;
	const char *payload;
	size_t payload_len;
};

struct coll;

/* [A-Za-z0-9_-]{1,64}. */
int coll_check_name(const char *name, size_t len, struct sh_err *err);
/* Name, dim 1..65536, metric, m 2..128, ef_construction 1..4096. */
int coll_check_params(const struct coll_params *p, struct sh_err *err);
/* Parse JSON text, require an object no longer than limit bytes once
 * canonical (compact, keys sorted), and return that text (*out, sh_free). */
int coll_payload_canon(const char *json, size_t len, size_t limit, char **out, size_t *out_len,
		       struct sh_err *err);

int coll_new(const struct coll_params *p, struct coll **out, struct sh_err *err);
struct coll *coll_ref(struct coll *c);
void coll_unref(struct coll *c);

const struct coll_params *coll_params(const struct coll *c);
const char *coll_name(const struct coll *c);

/* Check a whole batch before any of it is applied: dimension, vectors
 * (hnsw_check_vector: finite values, a norm of at most 1e18, under cosine
 * at least 1e-18), payloads that parse as JSON objects.  Errors say which point ("point 3 (id 17):
 * ..."). */
int coll_check_points(const struct coll *c, const struct coll_point *pts, size_t n,
		      struct sh_err *err);
/* Apply a checked batch; later points with the same id win.  Fails only
 * for lack of memory. */
int coll_upsert(struct coll *c, const struct coll_point *pts, size_t n, struct sh_err *err);
/* Delete ids (absent ones are skipped); *deleted: how many were.  Fails
 * only for lack of memory (SH_ENOMEM: then the state is not the log's). */
int coll_delete(struct coll *c, const uint64_t *ids, size_t n, size_t *deleted);
/* Replace point id's payload by canonical text (NULL, len 0: none), its
 * vector untouched; the point's hash then covers the stored vector.
 * SH_ENOTFOUND when absent, SH_ENOMEM. */
int coll_set_payload(struct coll *c, uint64_t id, const char *text, size_t len);

size_t coll_count(const struct coll *c);

/* Move up to max fresh entries into the graph (new points inserted on
 * `threads` threads when there are many: hnsw_build); *indexed: entries
 * that left the fresh set.  An error (out of memory) leaves the rest for
 * the next call, as does *yield (NULL: never) turning true: the step ends
 * at its next point. */
int coll_index(struct coll *c, size_t max, unsigned threads, const _Atomic bool *yield,
	       size_t *indexed, struct sh_err *err);
/* The collection was dropped or replaced (a snapshot installed): nothing
 * will search it again, the indexer leaves it. */
void coll_retire(struct coll *c);
bool coll_retired(const struct coll *c);
/* Fresh entries (tombstones included) and the bytes they use (what
 * index.max_fresh_bytes bounds); no lock taken. */
size_t coll_fresh(const struct coll *c);
size_t coll_fresh_bytes(const struct coll *c);

struct coll_index_stats {
	size_t points;            /* coll_count */
	size_t indexed;           /* of which in the graph (points - fresh) */
	size_t fresh;             /* of which waiting in the fresh set */
	size_t tombstones;        /* deletions the graph has not seen yet */
	size_t fresh_bytes;       /* bytes its entries use */
	uint64_t oldest_fresh_ms; /* age of its oldest entry, 0 when empty */
	uint64_t indexed_total;   /* entries moved into the graph since load */
	uint64_t indexing_rate;   /* entries a second over the last window of >= 1 s;
				     0 after 10 s without a step */
};
void coll_index_stats(const struct coll *c, struct coll_index_stats *st);
size_t coll_memory(const struct coll *c);
struct digest coll_digest(const struct coll *c);

/* Point id: its stored vector into vec (dim floats; for cosine, normalized;
 * NULL to skip) and a copy of its payload (*payload NULL when it has none;
 * payload may be NULL to skip).  SH_ENOTFOUND when absent. */
int coll_get(const struct coll *c, uint64_t id, float *vec, char **payload, size_t *payload_len);
/* (Vector and payload are one write's.) */
/* Up to limit ids >= from, in order, into ids; *n their number, *next the
 * cursor to continue from, *more whether any id follows. */
void coll_scroll(const struct coll *c, uint64_t from, size_t limit, uint64_t *ids, size_t *n,
		 uint64_t *next, bool *more);
/* k nearest (exact: brute force); see hnsw_search. */
int coll_search(const struct coll *c, const float *query, size_t k, size_t ef, bool exact,
		struct hnsw_result *out, size_t *n, struct sh_err *err);
/* The same with a filter on ids (hnsw_filter_fn; may be NULL), applied
 * during the traversal.  The filter may call coll_get (it runs without the
 * collection's lock). */
int coll_search_filter(const struct coll *c, const float *query, size_t k, size_t ef, bool exact,
		       hnsw_filter_fn filter, void *arg, struct hnsw_result *out, size_t *n,
		       struct sh_err *err);

/* Snapshots (doc/storage-format.md, "Snapshots"): the collection's part of
 * the content.  The writer (apply) must not run meanwhile; the indexer
 * waits. */
int coll_save(const struct coll *c, hnsw_write_fn write, void *ctx, struct sh_err *err);
/* coll_save in two parts, for a snapshot written by another process
 * (db_snap.c): coll_hold stops the indexer (its step ends at the next
 * point: a few milliseconds at most) and the fresh set's changes, until
 * coll_unhold; coll_save_held, between the two or in a child forked
 * meanwhile, takes no lock.  Only the apply thread holds. */
void coll_hold(struct coll *c);
void coll_unhold(struct coll *c);
int coll_save_held(const struct coll *c, hnsw_write_fn write, void *ctx, struct sh_err *err);
/* with_fresh: the stream holds the fresh set (snapshot format 3 on). */
int coll_load(hnsw_read_fn read, void *ctx, bool with_fresh, struct coll **out, struct sh_err *err);

#endif
