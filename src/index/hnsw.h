/*
 * hnsw: the vector index — Hierarchical Navigable Small World graphs
 * (Malkov & Yashunin, "Efficient and robust approximate nearest neighbor
 * search using Hierarchical Navigable Small World graphs", TPAMI 2018;
 * algorithms cited below as "Alg. N").
 *
 * The index stores, per point, its uint64 id, its vector and its links; it
 * is the collection's vector store as well as its search structure.
 *
 * Threads.  Any number of threads may call hnsw_search(), hnsw_search_exact(),
 * hnsw_get() and the read-only accessors at any time.  Writes (hnsw_upsert,
 * hnsw_delete, hnsw_build, hnsw_compact) must be serialized by the caller:
 * one writer at a time, which runs alongside the readers without blocking
 * them.  hnsw_build() is itself one writer that inserts on several threads.
 * Readers never see a partly written point: a point becomes a result only
 * after its vector and links are complete, and a deleted point is never
 * returned once hnsw_delete() has returned.  An upsert of an existing id is
 * atomic for readers: a search running meanwhile finds the point as its
 * old version or its new one, never neither and never both (by id, by
 * exact search, and by graph search as far as the graph finds the point at
 * all).  The memory of removed points is reused only after every search
 * that might still see it has finished (epoch-based reclamation).
 *
 * Determinism.  Levels come from a xoshiro256** stream seeded by
 * params.seed, so the same seed and the same sequence of single-threaded
 * writes build the same graph, bit for bit.  hnsw_build() with more than one
 * thread does not.
 *
 * Ownership.  Vectors passed in are copied; results are written to
 * caller-owned arrays.  All allocation goes through sh_malloc (util/alloc.h).
 */
#ifndef SHOAL_INDEX_HNSW_H
#define SHOAL_INDEX_HNSW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "index/distance.h"
#include "util/err.h"

#define HNSW_MAX_DIM     65536
#define HNSW_MIN_M       2
#define HNSW_MAX_M       128
#define HNSW_MAX_EF      10000            /* ef, k and ef_construction (see hnsw_search) */
#define HNSW_MAX_POINTS  (UINT32_MAX - 1) /* slots are 32-bit */
#define HNSW_DEFAULT_M   16
#define HNSW_DEFAULT_EFC 200
/* Vectors (points and queries): finite values and a Euclidean norm of at
 * most HNSW_MAX_NORM, so that no distance overflows float32 in any order of
 * summation (|a - b|^2 <= 4e36 and |a . b| <= 1e36, against FLT_MAX ~3.4e38);
 * under cosine, a norm of at least HNSW_MIN_NORM. */
#define HNSW_MAX_NORM 1e18
#define HNSW_MIN_NORM 1e-18

enum hnsw_quant {
	HNSW_QUANT_NONE = 0,
	HNSW_QUANT_INT8 = 1, /* traverse on 8-bit codes, re-score candidates in float32 */
};

struct hnsw_params {
	uint32_t dim;
	enum sh_metric metric;
	uint32_t m;               /* links per point per level; level 0 holds 2m */
	uint32_t ef_construction; /* candidate list size while inserting */
	uint64_t seed;            /* level assignment */
	enum hnsw_quant quant;
};

struct hnsw_result {
	uint64_t id;
	float distance; /* l2: squared L2; cosine: 1 - cos; dot: -(a . b) */
};

/* Return true to accept id as a result; called from the searching thread. */
typedef bool (*hnsw_filter_fn)(uint64_t id, void *arg);

struct hnsw;

/* Validate params (dim 1..HNSW_MAX_DIM, m HNSW_MIN_M..HNSW_MAX_M,
 * ef_construction >= 1) and create an empty index. */
int hnsw_new(const struct hnsw_params *params, struct hnsw **out, struct sh_err *err);
void hnsw_free(struct hnsw *h);

const struct hnsw_params *hnsw_params(const struct hnsw *h);

/* Is v (dim floats) a valid vector for metric?  SH_EINVAL otherwise, with a
 * message that begins with what ("vector", "query vector"): NaN or
 * infinity, a norm over HNSW_MAX_NORM, and for cosine a zero vector or a
 * norm under HNSW_MIN_NORM. */
int hnsw_check_vector(const float *v, uint32_t dim, enum sh_metric metric, const char *what,
		      struct sh_err *err);

/* Insert id, or replace its vector when present (Alg. 1).  The vector must
 * pass hnsw_check_vector (else SH_EINVAL).  Replacing a vector by the very
 * same one changes nothing.  On any error the index is as before (a replaced point keeps its
 * old vector). */
int hnsw_upsert(struct hnsw *h, uint64_t id, const float *vec, struct sh_err *err);

/* Insert n points on `threads` threads (0 = one per online CPU).  Ids must
 * not be present yet nor repeat; on error, the points inserted so far stay.
 * Into an empty index (a bulk load) the points are built aside, renumbered
 * so that graph neighbours are near each other in memory (hnsw_reorder),
 * and appear to searches all at once when the call returns. */
int hnsw_build(struct hnsw *h, const uint64_t *ids, const float *vecs, size_t n, unsigned threads,
	       struct sh_err *err);

/* vec (dim floats) as the index stores it, into out: checked
 * (hnsw_check_vector) and, for cosine, normalized (dist_normalize).  The
 * _prepared variants below take vectors prepared so and store them as they
 * are (normalizing twice could change their last bits). */
int hnsw_prepare(const struct hnsw *h, const float *in, float *out, struct sh_err *err);
/* hnsw_prepare of a vector that passed hnsw_check_vector already (apply's
 * points, checked before their entry applies): the same out, unchecked. */
void hnsw_prepare_checked(const struct hnsw *h, const float *in, float *out);
int hnsw_upsert_prepared(struct hnsw *h, uint64_t id, const float *vec, struct sh_err *err);
/* hnsw_build of prepared vectors that ends early once *stop or *yield
 * (each NULL: never) is true: each thread finishes the point it is
 * inserting and takes no more.  *built: points 0 .. *built-1 were inserted
 * (all of them but on error), the rest were not. */
int hnsw_build_prepared(struct hnsw *h, const uint64_t *ids, const float *vecs, size_t n,
			unsigned threads, const _Atomic bool *stop, const _Atomic bool *yield,
			size_t *built, struct sh_err *err);

/* Remove id: SH_ENOTFOUND when absent.  The point stops being returned at
 * once; its neighbours are re-linked around it, and its slot is reclaimed
 * once no link points to it (hnsw_compact() finishes what is pending). */
int hnsw_delete(struct hnsw *h, uint64_t id);

/* Finish every pending repair of deletions now (normally done in batches as
 * deletions accumulate). */
void hnsw_compact(struct hnsw *h);

/* The k nearest points to query (1 <= k <= ef <= HNSW_MAX_EF, else
 * SH_EINVAL).  ef = 0 means max(k, 40).  filter may be NULL.  Writes up to k
 * results, nearest first, each id once, and their count to *n_out.  Without
 * a filter, a graph search that finds fewer than min(k, count) points falls
 * back to an exact scan (counted in hnsw_stats.fallbacks): the graph should
 * never need it. */
int hnsw_search(const struct hnsw *h, const float *query, size_t k, size_t ef,
		hnsw_filter_fn filter, void *arg, struct hnsw_result *out, size_t *n_out,
		struct sh_err *err);

/* The same by brute force over every point: exact, for exact=true and for
 * measuring recall. */
int hnsw_search_exact(const struct hnsw *h, const float *query, size_t k, hnsw_filter_fn filter,
		      void *arg, struct hnsw_result *out, size_t *n_out, struct sh_err *err);

/* Copy id's stored vector to out (dim floats; for cosine: normalized).
 * SH_ENOTFOUND when absent. */
int hnsw_get(const struct hnsw *h, uint64_t id, float *out);
bool hnsw_contains(const struct hnsw *h, uint64_t id);

/* Live points. */
size_t hnsw_count(const struct hnsw *h);

/* Bytes held by the index (vectors, links, maps, pools). */
size_t hnsw_memory(const struct hnsw *h);

struct hnsw_stats {
	size_t count;   /* live points */
	size_t slots;   /* slots ever used (live + deleted + free) */
	size_t deleted; /* deleted, links not yet repaired everywhere */
	size_t free;    /* reclaimed slots waiting for reuse */
	int max_level;
	size_t memory;
	bool quantized;          /* int8 codes are trained and used */
	uint64_t distance_calls; /* since creation, approximate (not synchronized) */
	uint64_t fallbacks;      /* unfiltered graph searches that fell back to a scan */
};

void hnsw_stats(const struct hnsw *h, struct hnsw_stats *st);
/* The mean number of level-0 links of the live points: a walk over every
 * slot, for tests and benchmarks (the writer, or no writer running). */
double hnsw_mean_degree0(const struct hnsw *h);

/* Check the graph's invariants (for tests and debugging; no writer may run):
 * counts, id map and states agree; every list holds distinct links to
 * points (live, or deleted and pending repair) of a high enough level, never
 * to itself; the entry point is a live point of the highest level; and
 * every live point is reachable from it at level 0.  SH_ECORRUPT with a
 * message naming the first violation. */
int hnsw_verify(const struct hnsw *h, struct sh_err *err);

/* Renumber slots so that graph neighbours are near each other in memory
 * (faster searches).  Needs exclusive access: no search and no writer may
 * run.  On SH_ENOMEM the index is unchanged. */
int hnsw_reorder(struct hnsw *h);

/* Serialization: the whole index (parameters, points, links, quantizer) as
 * one checksummed stream (doc/storage-format.md, "Index stream").  write
 * and read return 0 or a negative SH_E* code; read must fill exactly len
 * bytes or fail. */
typedef int (*hnsw_write_fn)(void *ctx, const void *buf, size_t len);
typedef int (*hnsw_read_fn)(void *ctx, void *buf, size_t len);

int hnsw_save(const struct hnsw *h, hnsw_write_fn write, void *ctx, struct sh_err *err);
/* Malformed input (bad magic, version, checksum, sizes over the limits
 * above, links to missing points) is SH_ECORRUPT with a message saying
 * what and where; nothing is allocated beyond what the stream has shown. */
int hnsw_load(hnsw_read_fn read, void *ctx, struct hnsw **out, struct sh_err *err);

#endif
