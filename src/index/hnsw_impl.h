/*
 * hnsw_impl: the index's internal structures, shared by the hnsw*.c files
 * (hnsw.c: life cycle, slots, id map, epochs; hnsw_search.c: Alg. 2 and 5;
 * hnsw_insert.c: Alg. 1 and 4; hnsw_delete.c: deletion and repair;
 * hnsw_io.c: the stream format).  Nothing outside src/index/ includes it.
 *
 * Memory layout.  A point lives in a slot (uint32).  Per slot, arenas hold
 * fixed-size records: node metadata (id, level, state, lock), level-0 links,
 * the vector and, with quantization, its int8 code.  Each kind has its own
 * arena so that a search touches only what it needs: a link list is exactly
 * m0 slots (128 bytes, two cache lines, for m = 16) and a 128-d code is two
 * cache lines.  An arena grows by chunks that double in size (chunk k holds
 * ARENA_BASE << k slots), so a fixed table of chunk pointers covers every
 * slot and no record ever moves: a reader may follow a link while the writer
 * grows the index.  Chunks of 2 MiB and more ask for transparent huge pages.
 * A node of level L > 0 also owns a block of L upper link lists (m each).
 *
 * Link lists hold no count: a list is an array of _Atomic uint32_t of fixed
 * capacity, its entries first, then NO_SLOT up to the end.  Writers change a
 * node's lists holding the node's spinlock and keep the entries compact;
 * readers take no lock and stop at the first NO_SLOT, so they see each entry
 * either before or after a change, never torn, and every slot they see is
 * complete (its records were written before the first link to it).  The
 * entry point (level and slot) is one atomic word.
 */
#ifndef SHOAL_INDEX_HNSW_IMPL_H
#define SHOAL_INDEX_HNSW_IMPL_H

#include <pthread.h>
#include <stdatomic.h>

#include "index/hnsw.h"
#include "index/quant.h"
#include "util/rand.h"

#define ARENA_SHIFT  10 /* chunk 0 holds 1024 slots */
#define ARENA_CHUNKS 23 /* chunks 0..22 hold 1024 * (2^23 - 1) > 2^32 slots */
#define NO_SLOT      UINT32_MAX
#define EP_EMPTY     UINT64_MAX
#define MAX_LEVEL    31
#define QUANT_TRAIN  1024 /* points needed before the int8 quantizer is trained */

enum slot_state {
	SLOT_FREE = 0,    /* not in the graph (never used, or reclaimed) */
	SLOT_LIVE = 1,    /* a point */
	SLOT_DELETED = 2, /* deleted; links to it may remain until repaired */
	SLOT_RETIRED = 3, /* deleted and unlinked; reused once no search can hold it */
};

struct arena {
	size_t stride; /* bytes per record */
	char *_Atomic chunk[ARENA_CHUNKS];
	unsigned chunks; /* allocated so far (writer only) */
};

/* Node metadata: one per slot. */
struct node {
	uint64_t id;
	_Atomic uint32_t *_Atomic upper; /* levels 1..level, m slots each */
	_Atomic uint8_t state;
	uint8_t level;
	_Atomic uint8_t lock;
};

/* A candidate: distance and slot. */
struct cand {
	float d;
	uint32_t slot;
};

/* Per-search scratch, pooled so searches do not allocate. */
struct scratch {
	uint32_t *vset; /* slots seen in this search: open addressing, NO_SLOT empty */
	unsigned vbits; /* the set holds 1 << vbits entries */
	size_t vcount;
	struct cand *cands; /* min-heap of candidates to expand */
	size_t ccap;
	struct cand *res; /* max-heap of the best results so far */
	size_t rcap;
	float *qvec;      /* the query, normalized for cosine */
	uint8_t *qcode;   /* the query's int8 code */
	struct cand *sel; /* neighbour selection scratch */
	size_t selcap;
	uint32_t *ids; /* unvisited neighbours of one expansion */
	size_t idcap;
};

struct scratch_pool {
	pthread_mutex_t lock;
	struct scratch **free;
	size_t n, cap;
};

/* id -> slot, open addressing with linear probing; entries hold only the
 * slot (the id is read from the node), NO_SLOT when empty. */
struct idmap {
	uint32_t *slots;
	size_t cap; /* a power of two */
	size_t n;
};

struct hnsw {
	struct hnsw_params p;
	uint32_t m0; /* level-0 capacity: 2m */
	double ml;   /* level multiplier 1 / ln(m) (paper section 4.1) */
	const struct dist_kernels *k;
	dist_fn kern; /* l2sq or dot */
	bool negate;  /* distance = bias - kern() (dot, cosine) */
	float bias;

	struct arena nodes, links, vecs, codes;
	_Atomic uint32_t n_slots; /* slots handed out so far (high-water mark) */
	_Atomic uint64_t ep;      /* level << 32 | slot, or EP_EMPTY */
	_Atomic size_t count;     /* live points */
	_Atomic size_t dead;      /* DELETED + RETIRED slots: a search may meet one */
	struct sh_rand rng;
	pthread_mutex_t write_lock; /* parallel build: slot allocation, entry point */

	pthread_rwlock_t map_lock; /* readers: hnsw_get; the writer: changes */
	struct idmap map;

	/* slots deleted but maybe still linked; repaired in batches */
	uint32_t *pending;
	size_t n_pending, pending_cap;
	/* reclamation: slots unlinked in epoch e wait in limbo[e & 1] */
	_Atomic uint64_t epoch;
	_Atomic long readers[2];
	uint32_t *limbo[2];
	size_t n_limbo[2], limbo_cap[2];
	uint32_t *free_slots; /* reusable */
	size_t n_free, free_cap;

	struct quant quant;
	_Atomic bool quant_ready;

	struct scratch_pool pool;
	_Atomic size_t upper_bytes; /* memory of upper link blocks */
	_Atomic uint64_t dist_calls;
};

/* ------------------------------------------------------------ records */

/* Readers change only synchronization state (epoch counters, the scratch
 * pool, statistics) of an index they otherwise treat as const. */
static inline struct hnsw *mut(const struct hnsw *h)
{
	return (struct hnsw *)(uintptr_t)h;
}

static inline struct node *node_mut(const struct node *n)
{
	return (struct node *)(uintptr_t)n;
}

/* Chunk k holds slots [(2^k - 1) << ARENA_SHIFT, (2^(k+1) - 1) << ARENA_SHIFT). */
static inline unsigned arena_chunk_of(uint32_t slot, uint32_t *off)
{
	uint64_t t = ((uint64_t)slot >> ARENA_SHIFT) + 1;
	unsigned k = 63u - (unsigned)__builtin_clzll(t);

	*off = slot - (uint32_t)(((1ull << k) - 1) << ARENA_SHIFT);
	return k;
}

static inline void *arena_at(const struct arena *a, uint32_t slot)
{
	uint32_t off;
	unsigned k = arena_chunk_of(slot, &off);
	char *c = atomic_load_explicit(&a->chunk[k], memory_order_acquire);

	return c + (size_t)off * a->stride;
}

static inline struct node *node_at(const struct hnsw *h, uint32_t slot)
{
	return arena_at(&h->nodes, slot);
}

static inline const float *vec_at(const struct hnsw *h, uint32_t slot)
{
	return arena_at(&h->vecs, slot);
}

static inline const uint8_t *code_at(const struct hnsw *h, uint32_t slot)
{
	return arena_at(&h->codes, slot);
}

/* The link list of slot at level: max_links(level) entries, NO_SLOT after
 * the last one. */
static inline _Atomic uint32_t *links_at(const struct hnsw *h, uint32_t slot, int level)
{
	_Atomic uint32_t *up;

	if (level == 0)
		return arena_at(&h->links, slot);
	up = atomic_load_explicit(&node_at(h, slot)->upper, memory_order_acquire);
	return up + (size_t)(level - 1) * h->p.m;
}

static inline uint32_t link_get(_Atomic uint32_t *l, uint32_t i)
{
	return atomic_load_explicit(&l[i], memory_order_acquire);
}

static inline uint32_t max_links(const struct hnsw *h, int level)
{
	return level == 0 ? h->m0 : h->p.m;
}

/* Entries in a list (writer side: the list does not change under it). */
static inline uint32_t links_len(_Atomic uint32_t *l, uint32_t cap)
{
	uint32_t n = 0;

	while (n < cap && atomic_load_explicit(&l[n], memory_order_relaxed) != NO_SLOT)
		n++;
	return n;
}

/* Replace a list (holding its node's lock): the new entries, then NO_SLOT
 * over what remains of the old ones. */
static inline void links_set(_Atomic uint32_t *l, uint32_t cap, const uint32_t *ids, uint32_t n)
{
	uint32_t old = links_len(l, cap);

	for (uint32_t i = 0; i < n; i++)
		atomic_store_explicit(&l[i], ids[i], memory_order_release);
	for (uint32_t i = n; i < old; i++)
		atomic_store_explicit(&l[i], NO_SLOT, memory_order_release);
}

static inline float dist_vec(const struct hnsw *h, const float *a, const float *b)
{
	float d = h->kern(a, b, h->p.dim);

	return h->negate ? h->bias - d : d;
}

static inline float dist_slot(const struct hnsw *h, const float *q, uint32_t slot)
{
	return dist_vec(h, q, vec_at(h, slot));
}

static inline void node_lock(struct node *n)
{
	while (atomic_exchange_explicit(&n->lock, 1, memory_order_acquire))
		while (atomic_load_explicit(&n->lock, memory_order_relaxed))
			__builtin_ia32_pause();
}

static inline void node_unlock(struct node *n)
{
	atomic_store_explicit(&n->lock, 0, memory_order_release);
}

static inline uint64_t ep_pack(int level, uint32_t slot)
{
	return (uint64_t)level << 32 | slot;
}

/* ------------------------------------------------------------ hnsw.c */

int arena_reserve(struct arena *a, uint32_t slots);
/* Bytes of records for slots [0, n). */
size_t arena_used(const struct arena *a, uint32_t n);
/* A slot for a new point: a free one, or the next; its records reset. */
int slot_alloc(struct hnsw *h, uint32_t *slot);
/* Reset slot's metadata and level-0 list (FREE, no links). */
void slot_init(struct hnsw *h, uint32_t slot);
/* Give back a slot that was never linked (a failed insert). */
void slot_unclaim(struct hnsw *h, uint32_t slot);
void slot_release_upper(struct hnsw *h, struct node *n);
/* Map the id of slot's node (already written) to slot. */
int idmap_put(struct hnsw *h, uint32_t slot);
uint32_t idmap_get(const struct hnsw *h, uint64_t id);
void idmap_del(struct hnsw *h, uint64_t id);
/* Validate and prepare a vector (copy, normalize for cosine) into out. */
int prepare_vector(const struct hnsw *h, const float *in, float *out, struct sh_err *err);
void epoch_enter(const struct hnsw *h, int *parity);
void epoch_exit(const struct hnsw *h, int parity);
void epoch_retire(struct hnsw *h, uint32_t slot);
void epoch_try_reclaim(struct hnsw *h);

/* ------------------------------------------------------------ hnsw_search.c */

struct scratch *scratch_get(const struct hnsw *h);
/* Start a new traversal: an empty visited set. */
void scratch_begin(struct scratch *s);
/* Grow the visited set (it is over half full); false when out of memory. */
bool scratch_grow_visited(struct scratch *s);

/* Mark slot visited; true when it was not yet.  A per-search hash set rather
 * than a tag per slot: it stays in L1 whatever the size of the index (16 KiB
 * at ef 40), where tags for a million points take 2 MiB of random access. */
static inline bool visit(struct scratch *s, uint32_t slot)
{
	size_t mask = ((size_t)1 << s->vbits) - 1;
	size_t i = (size_t)((slot * 0x9e3779b1u) >> (32 - s->vbits));
	uint32_t v;

	while ((v = s->vset[i]) != NO_SLOT) {
		if (v == slot)
			return false;
		i = (i + 1) & mask;
	}
	s->vset[i] = slot;
	if (++s->vcount * 2 > mask && !scratch_grow_visited(s))
		return false; /* out of memory: treat as seen, which stays correct */
	return true;
}
/* Room for n entries in s->sel. */
int scratch_sel(struct scratch *s, size_t n);
void scratch_put(const struct hnsw *h, struct scratch *s);
void scratch_free(struct scratch *s);
int scratch_fit(struct scratch *s, size_t ef, size_t dim, size_t m0);
/* Alg. 2 at one level from ep; fills s->res (a max-heap) with up to ef
 * entries, *n_res their number.  accept (may be NULL) decides which points
 * may be results; other points are still traversed. */
size_t search_layer(const struct hnsw *h, struct scratch *s, const float *q, uint32_t ep,
		    float ep_d, size_t ef, int level, hnsw_filter_fn filter, void *arg,
		    bool live_only);
/* Greedy descent from level top to level stop + 1 (Alg. 5, ef = 1) for the
 * float vector in s->qvec. */
uint32_t greedy_descend(const struct hnsw *h, const struct scratch *s, uint32_t ep, int top,
			int stop, float *ep_d);
void heap_push_max(struct cand *heap, size_t *n, struct cand c);
struct cand heap_pop_max(struct cand *heap, size_t *n);

/* ------------------------------------------------------------ hnsw_insert.c */

/* Insert the vector prepared in s->qvec (Alg. 1).  Thread-safe against other
 * insert_point calls (hnsw_build).  When id is present: SH_EEXIST, or with
 * replace its point is replaced (atomically: on failure it stays). */
int insert_point(struct hnsw *h, uint64_t id, int level, bool replace, struct scratch *s);
int random_level(struct hnsw *h);
/* Alg. 4: keep from cands[0..n) (sorted nearest first, distances to base)
 * at most max entries that are closer to base than to any kept one. */
size_t select_heuristic(const struct hnsw *h, struct cand *cands, size_t n, size_t max);
void sort_cands(struct cand *c, size_t n);

/* ------------------------------------------------------------ hnsw_delete.c */

/* Mark slot deleted, re-link its neighbours, queue it for repair. */
void delete_slot(struct hnsw *h, uint32_t slot);
void repair_pending(struct hnsw *h);

#endif
