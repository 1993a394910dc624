/*
 * hnsw_impl: the index's internal structures, shared by the hnsw*.c files
 * (hnsw.c: life cycle, slots, lists, id map, epochs, versions;
 * hnsw_search.c: Alg. 2 and 5; hnsw_insert.c: Alg. 1 and 4; hnsw_delete.c:
 * deletion and repair; hnsw_reach.c: reachability; hnsw_verify.c: the
 * invariants; hnsw_io.c: the stream format; hnsw_reorder.c: renumbering).
 * Nothing outside src/index/ includes it.  Every name it shares carries the
 * module's prefix (hnsw__ for the internal ones).
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
 * capacity, its entries first, then HNSW_NO_SLOT up to the end.  Writers
 * change a node's lists holding the node's spinlock and keep the entries
 * compact; readers take no lock and stop at the first HNSW_NO_SLOT, so they
 * see each entry either before or after a change, never torn, and every
 * slot they see is complete (its records were written before the first link
 * to it).  The entry point (level and slot) is one atomic word.
 *
 * Versions.  A point is written into a new slot in state NEW, linked into
 * the graph, and only then published (LIVE, in the id map; the entry point
 * only ever names a published point).  An upsert of an existing id keeps
 * the old slot a result until the new one is linked, then switches in one
 * step: new->state = LIVE, old->next = new, the id map entry replaced in
 * place, inside an odd value of the `switches` sequence count; then the old
 * slot is deleted as any other.  A reader maps whatever slot it met to the
 * current version of its point with hnsw__current(): through next to the
 * newer version, from a NEW slot back to the version it replaces (prev).
 * So a search meets an updated point as its old version or its new one,
 * never neither and, after the results are resolved and deduplicated,
 * never both.  A replaced version counts as a result only for searches
 * that began before its switch (node.switched): later ones find the new
 * version, linked before the switch, as any other point, and the old one
 * only routes, as a deleted point does.
 *
 * Reachability.  Every live point is reachable at level 0 from the entry
 * point (through deleted points not yet repaired, as searches go), and a
 * search at level 0 starts from the entry point as well as from where the
 * greedy descent ended, so a search with ef >= count finds every point.
 * HNSW does not keep that by itself: shrinking a full list (Alg. 4) or
 * re-linking around a deletion can drop a point's last in-link.  The
 * writer restores it (hnsw__reconnect) after each write that dropped links
 * in a small graph, and in larger ones every so many dropped links, after
 * each batch of repairs and after a build.  In between, and inside every
 * write, it keeps every live point but the entry point with a level-0
 * in-link from a live point (counted per slot: hnsw_reach.c,
 * "In-degrees"), so that only a closed island can be cut off.
 */
#ifndef SHOAL_INDEX_HNSW_IMPL_H
#define SHOAL_INDEX_HNSW_IMPL_H

#include <pthread.h>
#include <stdatomic.h>

#include "index/hnsw.h"
#include "index/quant.h"
#include "util/rand.h"

#define HNSW_ARENA_SHIFT     10 /* chunk 0 holds 1024 slots */
#define HNSW_ARENA_CHUNKS    23 /* chunks 0..22 hold 1024 * (2^23 - 1) > 2^32 slots */
#define HNSW_NO_SLOT         UINT32_MAX
#define HNSW_EP_EMPTY        UINT64_MAX
#define HNSW_MAX_LEVEL       31
#define HNSW_QUANT_TRAIN     1024 /* points needed before the int8 quantizer is trained */
#define HNSW_RECONNECT_SMALL 1024
/* The visited set of a search starts with at most this many entries (256
 * KiB) and grows on demand; a pooled one larger than that is freed when
 * its search ends, so idle scratch memory stays small whatever ef was. */
#define HNSW_VISITED_START_BITS 16
#define HNSW_VISITED_START      (1u << HNSW_VISITED_START_BITS)

enum hnsw_slot_state {
	HNSW_SLOT_FREE = 0,    /* not in the graph (never used, or reclaimed) */
	HNSW_SLOT_LIVE = 1,    /* a point */
	HNSW_SLOT_DELETED = 2, /* deleted; links to it may remain until repaired */
	HNSW_SLOT_RETIRED = 3, /* deleted and unlinked; reused once no search can hold it */
	HNSW_SLOT_NEW = 4,     /* written, being linked, not yet published: not a result */
};

struct hnsw_arena {
	size_t stride; /* bytes per record */
	char *_Atomic chunk[HNSW_ARENA_CHUNKS];
	unsigned chunks; /* allocated so far (writer only) */
};

/* Node metadata: one per slot (32 bytes: two per cache line). */
struct hnsw_node {
	uint64_t id;
	_Atomic uint32_t *_Atomic upper; /* levels 1..level, m slots each */
	_Atomic uint32_t next; /* the version that replaced this one (an upsert), or NO_SLOT */
	uint32_t prev;         /* the version a NEW slot replaces, or NO_SLOT; set before linking */
	_Atomic uint32_t switched; /* the (odd) value of h->switches when next was set */
	_Atomic uint8_t state;
	uint8_t level;
	_Atomic uint8_t lock;
};

/* A candidate: distance and slot. */
struct hnsw_cand {
	float d;
	uint32_t slot;
};

/* Per-search scratch, pooled so searches do not allocate. */
struct hnsw_scratch {
	uint32_t *vset; /* slots seen in this search: open addressing, HNSW_NO_SLOT empty */
	unsigned vbits; /* the set holds 1 << vbits entries */
	size_t vcount;
	uint32_t skip;  /* insertion: the slot of the version being replaced, never a neighbour */
	uint32_t start; /* search: h->switches when it began (hnsw__visible) */
	struct hnsw_cand *cands; /* min-heap of candidates to expand */
	size_t ccap;
	struct hnsw_cand *res; /* max-heap of the best results so far */
	size_t rcap;
	float *qvec;           /* the query, normalized for cosine */
	uint8_t *qcode;        /* the query's int8 code */
	struct hnsw_cand *sel; /* neighbour selection scratch */
	size_t selcap;
	uint32_t *ids; /* unvisited neighbours of one expansion */
	size_t idcap;
};

struct hnsw_scratch_pool {
	pthread_mutex_t lock;
	struct hnsw_scratch **free;
	size_t n, cap;
};

/* id -> slot, open addressing with linear probing; entries hold only the
 * slot (the id is read from the node), HNSW_NO_SLOT when empty. */
struct hnsw_idmap {
	uint32_t *slots;
	size_t cap;      /* a power of two */
	size_t n;        /* entries */
	size_t reserved; /* room promised to inserts in flight (write_lock) */
};

struct hnsw {
	struct hnsw_params p;
	uint32_t m0; /* level-0 capacity: 2m */
	double ml;   /* level multiplier 1 / ln(m) (paper section 4.1) */
	const struct dist_kernels *k;
	dist_fn kern; /* l2sq or dot */
	bool negate;  /* distance = bias - kern() (dot, cosine) */
	float bias;

	/* indeg: per slot, its level-0 in-links from LIVE and NEW points
	 * (hnsw_reach.c, "In-degrees") */
	struct hnsw_arena nodes, links, vecs, codes, indeg;
	_Atomic uint32_t n_slots;  /* slots handed out so far (high-water mark) */
	_Atomic uint64_t ep;       /* level << 32 | slot, or HNSW_EP_EMPTY */
	_Atomic size_t count;      /* live points */
	_Atomic size_t dead;       /* DELETED + RETIRED slots: a search may meet one */
	_Atomic uint64_t switches; /* odd while an upsert switches versions (module comment) */
	_Atomic size_t dropped;    /* links dropped from lists since the last hnsw__reconnect */
	struct sh_rand rng;
	pthread_mutex_t write_lock; /* parallel build: slot allocation, entry point */

	pthread_rwlock_t map_lock; /* readers: hnsw_get; the writer: changes */
	struct hnsw_idmap map;

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

	struct hnsw_scratch_pool pool;
	_Atomic size_t upper_bytes; /* memory of upper link blocks */
	_Atomic uint64_t dist_calls;
	_Atomic uint64_t fallbacks; /* graph searches that fell back to a scan */
};

/* Which points a traversal may take as results (besides a filter). */
enum hnsw__accept {
	HNSW__ACCEPT_ALL,    /* any: nothing hidden can be met, or hnsw__current sorts it out */
	HNSW__ACCEPT_QUERY,  /* points that have a current version (hnsw__visible) */
	HNSW__ACCEPT_INSERT, /* neighbours for an insert: LIVE or NEW, and not s->skip */
};

/* ------------------------------------------------------------ records */

/* Readers change only synchronization state (epoch counters, the scratch
 * pool, statistics) of an index they otherwise treat as const. */
static inline struct hnsw *hnsw__mut(const struct hnsw *h)
{
	return (struct hnsw *)(uintptr_t)h;
}

static inline struct hnsw_node *hnsw__node_mut(const struct hnsw_node *n)
{
	return (struct hnsw_node *)(uintptr_t)n;
}

/* Chunk k holds slots [(2^k - 1) << HNSW_ARENA_SHIFT, (2^(k+1) - 1) << HNSW_ARENA_SHIFT). */
static inline unsigned hnsw__arena_chunk_of(uint32_t slot, uint32_t *off)
{
	uint64_t t = ((uint64_t)slot >> HNSW_ARENA_SHIFT) + 1;
	unsigned k = 63u - (unsigned)__builtin_clzll(t);

	*off = slot - (uint32_t)(((1ull << k) - 1) << HNSW_ARENA_SHIFT);
	return k;
}

static inline void *hnsw__arena_at(const struct hnsw_arena *a, uint32_t slot)
{
	uint32_t off;
	unsigned k = hnsw__arena_chunk_of(slot, &off);
	char *c = atomic_load_explicit(&a->chunk[k], memory_order_acquire);

	return c + (size_t)off * a->stride;
}

static inline struct hnsw_node *hnsw__node_at(const struct hnsw *h, uint32_t slot)
{
	return hnsw__arena_at(&h->nodes, slot);
}

static inline const float *hnsw__vec_at(const struct hnsw *h, uint32_t slot)
{
	return hnsw__arena_at(&h->vecs, slot);
}

static inline const uint8_t *hnsw__code_at(const struct hnsw *h, uint32_t slot)
{
	return hnsw__arena_at(&h->codes, slot);
}

/* The link list of slot at level: hnsw__max_links(level) entries, HNSW_NO_SLOT after
 * the last one. */
static inline _Atomic uint32_t *hnsw__links_at(const struct hnsw *h, uint32_t slot, int level)
{
	_Atomic uint32_t *up;

	if (level == 0)
		return hnsw__arena_at(&h->links, slot);
	up = atomic_load_explicit(&hnsw__node_at(h, slot)->upper, memory_order_acquire);
	return up + (size_t)(level - 1) * h->p.m;
}

static inline _Atomic uint32_t *hnsw__indeg_at(const struct hnsw *h, uint32_t slot)
{
	return hnsw__arena_at(&h->indeg, slot);
}

static inline bool hnsw__holds(const uint32_t *v, size_t n, uint32_t x)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == x)
			return true;
	return false;
}

static inline uint32_t hnsw__link_get(_Atomic uint32_t *l, uint32_t i)
{
	return atomic_load_explicit(&l[i], memory_order_acquire);
}

static inline uint32_t hnsw__max_links(const struct hnsw *h, int level)
{
	return level == 0 ? h->m0 : h->p.m;
}

/* Entries in a list (writer side: the list does not change under it). */
static inline uint32_t hnsw__links_len(_Atomic uint32_t *l, uint32_t cap)
{
	uint32_t n = 0;

	while (n < cap && atomic_load_explicit(&l[n], memory_order_relaxed) != HNSW_NO_SLOT)
		n++;
	return n;
}

/* Replace a list (holding its node's lock): the new entries, then HNSW_NO_SLOT
 * over what remains of the old ones. */
static inline void hnsw__links_set(_Atomic uint32_t *l, uint32_t cap, const uint32_t *ids,
				   uint32_t n)
{
	uint32_t old = hnsw__links_len(l, cap);

	for (uint32_t i = 0; i < n; i++)
		atomic_store_explicit(&l[i], ids[i], memory_order_release);
	for (uint32_t i = n; i < old; i++)
		atomic_store_explicit(&l[i], HNSW_NO_SLOT, memory_order_release);
}

/* Replace slot nb's list at level by ids[0..n) (nb's lock held), keeping
 * every entry that stays where it is and writing the new ones into the
 * places of those that go: a search reading the list meanwhile sees every
 * entry that stays — except when the list gets shorter: then entries move
 * from its end into the gaps, and a search that read a gap before the move
 * and the end after it misses the moved entry in that one read of the
 * list (a rarer route, not a lost point: ids and exact search do not read
 * links, and t/update_threads.c compares ANN misses with a run without
 * updates). */
void hnsw__links_write(struct hnsw *h, uint32_t nb, int level, const uint32_t *ids, uint32_t n);

static inline float hnsw__dist_vec(const struct hnsw *h, const float *a, const float *b)
{
	float d = h->kern(a, b, h->p.dim);

	return h->negate ? h->bias - d : d;
}

static inline float hnsw__dist_slot(const struct hnsw *h, const float *q, uint32_t slot)
{
	return hnsw__dist_vec(h, q, hnsw__vec_at(h, slot));
}

static inline void hnsw__node_lock(struct hnsw_node *n)
{
	while (atomic_exchange_explicit(&n->lock, 1, memory_order_acquire))
		while (atomic_load_explicit(&n->lock, memory_order_relaxed))
			__builtin_ia32_pause();
}

static inline void hnsw__node_unlock(struct hnsw_node *n)
{
	atomic_store_explicit(&n->lock, 0, memory_order_release);
}

/* May a search that began at switches = start take n's point as a result,
 * to be resolved by hnsw__current?  A published point; a NEW slot that
 * replaces a version (it stands for that version until the switch); a
 * version replaced since the search began (its successor stands for it).
 * Not a deleted point, a version replaced before, nor a new id in flight. */
static inline bool hnsw__visible(const struct hnsw_node *n, uint32_t start)
{
	struct hnsw_node *w = hnsw__node_mut(n);
	uint8_t st = atomic_load_explicit(&w->state, memory_order_acquire);

	if (st == HNSW_SLOT_LIVE)
		return true;
	if (st == HNSW_SLOT_NEW)
		return n->prev != HNSW_NO_SLOT;
	if (atomic_load_explicit(&w->next, memory_order_acquire) == HNSW_NO_SLOT)
		return false;
	return (int32_t)(atomic_load_explicit(&w->switched, memory_order_acquire) - start) >= 0;
}

/* Is n its point's current version (hnsw__current would stay on it)? */
static inline bool hnsw__is_current(const struct hnsw_node *n)
{
	struct hnsw_node *w = hnsw__node_mut(n);

	return atomic_load_explicit(&w->next, memory_order_acquire) == HNSW_NO_SLOT &&
	       atomic_load_explicit(&w->state, memory_order_acquire) == HNSW_SLOT_LIVE;
}

static inline uint64_t hnsw__ep_pack(int level, uint32_t slot)
{
	return (uint64_t)level << 32 | slot;
}

/* ------------------------------------------------------------ hnsw.c */

int hnsw__arena_reserve(struct hnsw_arena *a, uint32_t slots);
/* Every arena of h holds at least slots records. */
int hnsw__arenas_reserve(struct hnsw *h, uint32_t slots);
/* Bytes of records for slots [0, n). */
size_t hnsw__arena_used(const struct hnsw_arena *a, uint32_t n);
/* A slot for a new point: a free one, or the next; its records reset. */
int hnsw__slot_alloc(struct hnsw *h, uint32_t *slot);
/* Reset slot's metadata and level-0 list (FREE, no links). */
void hnsw__slot_init(struct hnsw *h, uint32_t slot);
/* Give back a slot that was never linked (a failed insert). */
void hnsw__slot_unclaim(struct hnsw *h, uint32_t slot);
void hnsw__slot_release_upper(struct hnsw *h, struct hnsw_node *n);
/* Promise room in the id map for one more id (write_lock held), so that
 * publishing an insert cannot fail; hnsw__idmap_unreserve gives it back. */
int hnsw__idmap_reserve(struct hnsw *h);
void hnsw__idmap_unreserve(struct hnsw *h);
/* Map the id of slot's node (already written) to slot, in reserved room or
 * growing the map (which may fail). */
int hnsw__idmap_put(struct hnsw *h, uint32_t slot, bool reserved);
/* Point old's id at new instead, in place (no moment without an entry). */
void hnsw__idmap_replace(struct hnsw *h, uint32_t old, uint32_t new);
uint32_t hnsw__idmap_get(const struct hnsw *h, uint64_t id);
void hnsw__idmap_del(struct hnsw *h, uint64_t id);
/* Validate and prepare a vector (copy, normalize for cosine) into out. */
int hnsw__prepare_vector(const struct hnsw *h, const float *in, float *out, struct sh_err *err);
void hnsw__epoch_enter(const struct hnsw *h, int *parity);
void hnsw__epoch_exit(const struct hnsw *h, int parity);
void hnsw__epoch_retire(struct hnsw *h, uint32_t slot);
void hnsw__epoch_try_reclaim(struct hnsw *h);
/* The slot of the current version of slot's point, or NO_SLOT when the
 * point is deleted (or not yet published): follows next to newer versions
 * and goes from a NEW slot back to the version it replaces.  Readers call
 * it inside an epoch; every slot on the way is safe to read (a version is
 * retired only after the one that replaced it was published). */
uint32_t hnsw__current(const struct hnsw *h, uint32_t slot);

/* ------------------------------------------------------------ hnsw_search.c */

struct hnsw_scratch *hnsw__scratch_get(const struct hnsw *h);
/* Start a new traversal: an empty visited set. */
void hnsw__scratch_begin(struct hnsw_scratch *s);
/* Grow the visited set (it is over half full); false when out of memory. */
bool hnsw__scratch_grow_visited(struct hnsw_scratch *s);

/* Mark slot visited; true when it was not yet.  A per-search hash set rather
 * than a tag per slot: it stays in L1 whatever the size of the index (16 KiB
 * at ef 40), where tags for a million points take 2 MiB of random access. */
static inline bool hnsw__visit(struct hnsw_scratch *s, uint32_t slot)
{
	size_t mask = ((size_t)1 << s->vbits) - 1;
	size_t i = (size_t)((slot * 0x9e3779b1u) >> (32 - s->vbits));
	uint32_t v;

	while ((v = s->vset[i]) != HNSW_NO_SLOT) {
		if (v == slot)
			return false;
		i = (i + 1) & mask;
	}
	s->vset[i] = slot;
	if (++s->vcount * 2 > mask && !hnsw__scratch_grow_visited(s))
		return false; /* out of memory: treat as seen, which stays correct */
	return true;
}
/* Room for n entries in s->sel. */
int hnsw__scratch_sel(struct hnsw_scratch *s, size_t n);
void hnsw__scratch_put(const struct hnsw *h, struct hnsw_scratch *s);
void hnsw__scratch_free(struct hnsw_scratch *s);
/* Room for a search of width ef in h.  The visited set starts at what such
 * a search usually sees (ef * m0), at most HNSW_VISITED_START entries and
 * twice the slots of h, and grows on demand (hnsw__visit). */
int hnsw__scratch_fit(const struct hnsw *h, struct hnsw_scratch *s, size_t ef);
/* Alg. 2 at one level from ep; fills s->res (a max-heap) with up to ef
 * entries and returns their number.  mode and filter (may be NULL) decide
 * which points may be results; other points are still traversed. */
size_t hnsw__search_layer(const struct hnsw *h, struct hnsw_scratch *s, const float *q, uint32_t ep,
			  float ep_d, size_t ef, int level, hnsw_filter_fn filter, void *arg,
			  enum hnsw__accept mode);
/* Greedy descent from level top to level stop + 1 (Alg. 5, ef = 1) for the
 * float vector in s->qvec. */
uint32_t hnsw__greedy_descend(const struct hnsw *h, const struct hnsw_scratch *s, uint32_t ep,
			      int top, int stop, float *ep_d);

/* ------------------------------------------------------------ hnsw_insert.c */

/* Insert the vector prepared in s->qvec (Alg. 1).  Thread-safe against other
 * hnsw__insert_point calls (hnsw_build), which never replace.  When id is
 * present: SH_EEXIST, or with replace its point is replaced by a new
 * version, atomically for readers (module comment); on failure it stays. */
int hnsw__insert_point(struct hnsw *h, uint64_t id, int level, bool replace,
		       struct hnsw_scratch *s);
int hnsw__random_level(struct hnsw *h);
/* Alg. 4: keep from cands[0..n) (sorted nearest first, distances to base)
 * at most max entries that are closer to base than to any kept one. */
size_t hnsw__select_heuristic(const struct hnsw *h, struct hnsw_cand *cands, size_t n, size_t max);
/* The same, with cands[0..*kept) kept already (not checked, not sorted)
 * and cands[kept..n) sorted; then up to fill entries in all: the nearest
 * of those Alg. 4 pruned (its keepPrunedConnections, bounded), so that a
 * list repaired around deleted points keeps as many links as it had.  The
 * entries chosen end up in cands[0..returned), those Alg. 4 kept in
 * cands[0..*kept) (the fill after them). */
size_t hnsw__select_fill(const struct hnsw *h, struct hnsw_cand *cands, size_t *kept, size_t n,
			 size_t max, size_t fill);
/* Add the link owner -> slot at level when owner's list has room (nothing
 * is dropped); whether it was added. */
bool hnsw__link_back_room(struct hnsw *h, uint32_t owner, uint32_t slot, int level);
void hnsw__sort_cands(struct hnsw_cand *c, size_t n);

/* ------------------------------------------------------------ hnsw_delete.c */

/* Mark slot deleted, re-link its neighbours, queue it for repair.  The id
 * map and the count are the caller's (an upsert keeps both). */
void hnsw__delete_slot(struct hnsw *h, uint32_t slot);
void hnsw__repair_pending(struct hnsw *h);

/* ------------------------------------------------------------ hnsw_reach.c */

/* Make every live point reachable from the entry point at level 0 again
 * (module comment, "Reachability"): breadth-first from it, and each live
 * point not reached gets in-links from its nearest reached points.  The
 * writer only; out of memory, it does nothing (retried later). */
void hnsw__reconnect(struct hnsw *h);
/* In-degrees (hnsw_reach.c): a level-0 link to slot was added, by a
 * LIVE or NEW point. */
static inline void hnsw__indeg_add(struct hnsw *h, uint32_t slot)
{
	atomic_fetch_add_explicit(hnsw__indeg_at(h, slot), 1, memory_order_relaxed);
}
/* Does from's list at level name to? */
static inline bool hnsw__links_to(const struct hnsw *h, uint32_t from, int level, uint32_t to)
{
	_Atomic uint32_t *l = hnsw__links_at(h, from, level);
	uint32_t cap = hnsw__max_links(h, level), e;

	for (uint32_t i = 0; i < cap && (e = hnsw__link_get(l, i)) != HNSW_NO_SLOT; i++)
		if (e == to)
			return true;
	return false;
}
/* Does slot's state count in in-degrees (LIVE or NEW: hnsw_reach.c)? */
static inline bool hnsw__indeg_counted(const struct hnsw *h, uint32_t slot)
{
	uint8_t st = atomic_load_explicit(&hnsw__node_at(h, slot)->state, memory_order_acquire);

	return st == HNSW_SLOT_LIVE || st == HNSW_SLOT_NEW;
}
/* May a level-0 link to slot, from a LIVE or NEW point, go?  True (and
 * counted) unless slot is a live point it is the last in-link of, or the
 * last but one of a closed pair (hnsw__indeg_pair_only); call before
 * removing the link. */
bool hnsw__indeg_drop(struct hnsw *h, uint32_t slot);
/* Has slot, with one in-link left, a live partner that links to it and
 * has at most one in-link itself (slot's, maybe): a pair that would be
 * closed off once slot's other in-links went? */
bool hnsw__indeg_pair_only(const struct hnsw *h, uint32_t slot);
/* Give the live point x, which has no in-link left (hnsw__indeg_at 0),
 * one from a live point near it that a search from ep reaches. */
void hnsw__rescue(struct hnsw *h, struct hnsw_scratch *s, uint32_t x, uint64_t ep);
/* Count the in-degrees again (a loaded or renumbered graph) and rescue
 * each live point, but the entry point, that has none. */
void hnsw__indeg_recount(struct hnsw *h);
/* The same from ep (packed level and slot), an entry point about to be
 * stored: so that searches never start from one that does not reach every
 * point (the old one still routes meanwhile).  With live_only, through live
 * points only: afterwards every live point is reachable without the deleted
 * ones, which can then be retired. */
void hnsw__reconnect_at(struct hnsw *h, uint64_t ep, bool live_only);
/* After a write: hnsw__reconnect if links were dropped, at once in a
 * graph of up to HNSW_RECONNECT_SMALL points, else once they add up to an
 * eighth of the count (amortized: a few link reads per dropped link). */
void hnsw__maybe_reconnect(struct hnsw *h);

/* ------------------------------------------------------------ tests */

/* Called (when set) by a single writer after each neighbour list it
 * changes and each point it publishes, while the write is not done:
 * t/hnsw_cut.c and t/write_path.c check there that no live point is cut
 * off meanwhile (module comment, "Reachability").  NULL outside tests. */
extern void (*hnsw__midwrite_hook)(const struct hnsw *h);

static inline void hnsw__midwrite(const struct hnsw *h)
{
	if (hnsw__midwrite_hook != NULL)
		hnsw__midwrite_hook(h);
}
/* Is every live slot reachable at level 0 from the entry point (through
 * deleted ones, as searches go)?  0, or SH_ECORRUPT naming one that is
 * not (hnsw_verify.c). */
int hnsw__check_reach(const struct hnsw *h, struct sh_err *err);

#endif
