/*
 * hnsw: life cycle, slot arenas, the id map, epoch-based reclamation and the
 * public entry points that dispatch to hnsw_insert.c, hnsw_search.c and
 * hnsw_delete.c.  See hnsw.h for the contract and hnsw_impl.h for the layout.
 *
 * Epochs.  A reader brackets its search with hnsw__epoch_enter/exit, counting
 * itself in readers[epoch & 1].  A slot unlinked from the graph in epoch E
 * goes to limbo[E & 1]; hnsw__epoch_try_reclaim() moves to E + 1 only when no
 * reader of E - 1 remains, and then frees limbo[(E + 1) & 1], whose slots
 * were unlinked in E - 1: every reader that could still hold them has left.
 * The writer never waits for readers; reclamation is simply retried later.
 */
#include "build.h"

#include "index/hnsw_impl.h"

#include "util/alloc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ------------------------------------------------------------ arenas */

#define HUGE_PAGE (2u << 20)

int hnsw__arena_reserve(struct hnsw_arena *a, uint32_t slots)
{
	uint32_t off;
	unsigned need;

	if (a->stride == 0 || slots == 0)
		return 0;
	need = hnsw__arena_chunk_of(slots - 1, &off) + 1;
	while (a->chunks < need) {
		size_t bytes = ((size_t)1 << (HNSW_ARENA_SHIFT + a->chunks)) * a->stride;
		bool huge = bytes >= HUGE_PAGE;
		char *c = sh_aligned_alloc(huge ? HUGE_PAGE : 64, bytes);

		if (c == NULL)
			return SH_ENOMEM;
		if (huge) /* fewer TLB misses on random access; advice only */
			madvise(c, bytes, MADV_HUGEPAGE);
		atomic_store_explicit(&a->chunk[a->chunks++], c, memory_order_release);
	}
	return 0;
}

int hnsw__arenas_reserve(struct hnsw *h, uint32_t slots)
{
	if (hnsw__arena_reserve(&h->nodes, slots) != 0 ||
	    hnsw__arena_reserve(&h->links, slots) != 0 ||
	    hnsw__arena_reserve(&h->vecs, slots) != 0 ||
	    hnsw__arena_reserve(&h->codes, slots) != 0 ||
	    hnsw__arena_reserve(&h->indeg, slots) != 0)
		return SH_ENOMEM;
	return 0;
}

size_t hnsw__arena_used(const struct hnsw_arena *a, uint32_t n)
{
	return (size_t)n * a->stride;
}

static void arena_release(struct hnsw_arena *a)
{
	for (unsigned k = 0; k < a->chunks; k++)
		sh_free(atomic_load_explicit(&a->chunk[k], memory_order_relaxed));
}

/* ------------------------------------------------------------ slots */

static int push_u32(uint32_t **v, size_t *n, size_t *cap, uint32_t x)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		uint32_t *grown = sh_reallocarray(*v, ncap, sizeof **v);

		if (grown == NULL)
			return SH_ENOMEM;
		*v = grown;
		*cap = ncap;
	}
	(*v)[(*n)++] = x;
	return 0;
}

void hnsw__slot_init(struct hnsw *h, uint32_t slot)
{
	struct hnsw_node *n = hnsw__node_at(h, slot);
	_Atomic uint32_t *l = hnsw__links_at(h, slot, 0);

	n->id = 0;
	atomic_init(&n->upper, NULL);
	atomic_init(&n->next, HNSW_NO_SLOT);
	n->prev = HNSW_NO_SLOT;
	atomic_init(&n->state, HNSW_SLOT_FREE);
	n->level = 0;
	atomic_init(&n->lock, 0);
	atomic_init(hnsw__indeg_at(h, slot), 0);
	for (uint32_t i = 0; i < h->m0; i++)
		atomic_init(&l[i], HNSW_NO_SLOT);
}

int hnsw__slot_alloc(struct hnsw *h, uint32_t *slot)
{
	uint32_t s;

	if (h->n_free > 0) {
		*slot = h->free_slots[--h->n_free];
		hnsw__slot_init(h, *slot); /* no search can still see it (epochs) */
		return 0;
	}
	s = atomic_load_explicit(&h->n_slots, memory_order_relaxed);
	if (s >= HNSW_MAX_POINTS)
		return SH_ETOOBIG;
	if (hnsw__arenas_reserve(h, s + 1) != 0)
		return SH_ENOMEM;
	hnsw__slot_init(h, s);
	atomic_store_explicit(&h->n_slots, s + 1, memory_order_release);
	*slot = s;
	return 0;
}

void hnsw__slot_unclaim(struct hnsw *h, uint32_t slot)
{
	struct hnsw_node *n = hnsw__node_at(h, slot);

	hnsw__slot_release_upper(h, n);
	atomic_store(&n->state, HNSW_SLOT_FREE);
	if (push_u32(&h->free_slots, &h->n_free, &h->free_cap, slot) != 0)
		return; /* out of memory: the slot is never reused, which is safe */
}

void hnsw__slot_release_upper(struct hnsw *h, struct hnsw_node *n)
{
	_Atomic uint32_t *up = atomic_exchange(&n->upper, NULL);

	if (up != NULL) {
		atomic_fetch_sub(&h->upper_bytes, (size_t)n->level * h->p.m * sizeof(*up));
		sh_free((void *)(uintptr_t)up);
	}
}

/* ------------------------------------------------------------ lists */

void (*hnsw__midwrite_hook)(const struct hnsw *h);

void hnsw__links_write(struct hnsw *h, uint32_t nb, int level, const uint32_t *ids, uint32_t n)
{
	_Atomic uint32_t *l = hnsw__links_at(h, nb, level);
	uint32_t cap = hnsw__max_links(h, level), len = hnsw__links_len(l, cap), i;
	bool stays[2 * HNSW_MAX_M], placed[2 * HNSW_MAX_M];
	uint32_t old[2 * HNSW_MAX_M], next = 0;

	for (i = 0; i < len; i++) {
		old[i] = hnsw__link_get(l, i);
		stays[i] = hnsw__holds(ids, n, old[i]);
	}
	for (uint32_t j = 0; j < n; j++)
		placed[j] = hnsw__holds(old, len, ids[j]);
	for (i = 0; i < len; i++) { /* new entries into the places of those that go */
		while (next < n && placed[next])
			next++;
		if (!stays[i] && next < n) {
			atomic_store_explicit(&l[i], ids[next], memory_order_release);
			placed[next] = stays[i] = true;
		}
	}
	for (; next < n; next++) /* more than there were: at the end */
		if (!placed[next]) {
			stays[len] = true;
			atomic_store_explicit(&l[len++], ids[next], memory_order_release);
		}
	for (i = 0; i < len;) { /* fewer: the last ones move into the gaps */
		if (stays[i]) {
			i++;
			continue;
		}
		len--;
		if (len != i && stays[len]) {
			atomic_store_explicit(&l[i], hnsw__link_get(l, len), memory_order_release);
			stays[i] = true;
		}
		atomic_store_explicit(&l[len], HNSW_NO_SLOT, memory_order_release);
	}
}

/* ------------------------------------------------------------ id map */

static size_t id_hash(uint64_t id, size_t cap)
{
	id ^= id >> 33;
	id *= 0xff51afd7ed558ccdu;
	id ^= id >> 33;
	return (size_t)id & (cap - 1);
}

static uint32_t *map_find(const struct hnsw *h, uint64_t id)
{
	const struct hnsw_idmap *m = &h->map;

	if (m->cap == 0)
		return NULL;
	for (size_t i = id_hash(id, m->cap);; i = (i + 1) & (m->cap - 1)) {
		if (m->slots[i] == HNSW_NO_SLOT)
			return NULL;
		if (hnsw__node_at(h, m->slots[i])->id == id)
			return &m->slots[i];
	}
}

static void map_insert(struct hnsw *h, uint32_t *slots, size_t cap, uint32_t slot)
{
	size_t i = id_hash(hnsw__node_at(h, slot)->id, cap);

	while (slots[i] != HNSW_NO_SLOT)
		i = (i + 1) & (cap - 1);
	slots[i] = slot;
}

static int map_grow(struct hnsw *h)
{
	size_t cap = h->map.cap ? h->map.cap * 2 : 64;
	uint32_t *slots = sh_reallocarray(NULL, cap, sizeof *slots);

	if (slots == NULL)
		return SH_ENOMEM;
	memset(slots, 0xff, cap * sizeof *slots);
	for (size_t i = 0; i < h->map.cap; i++)
		if (h->map.slots[i] != HNSW_NO_SLOT)
			map_insert(h, slots, cap, h->map.slots[i]);
	sh_free(h->map.slots);
	h->map.slots = slots;
	h->map.cap = cap;
	return 0;
}

/* Room for `need` entries at a load of at most 3/4 (map_lock held). */
static int map_room(struct hnsw *h, size_t need)
{
	while (need * 4 > h->map.cap * 3)
		if (map_grow(h) != 0)
			return SH_ENOMEM;
	return 0;
}

int hnsw__idmap_reserve(struct hnsw *h)
{
	int rv;

	pthread_rwlock_wrlock(&h->map_lock);
	rv = map_room(h, h->map.n + h->map.reserved + 1);
	if (rv == 0)
		h->map.reserved++;
	pthread_rwlock_unlock(&h->map_lock);
	return rv;
}

void hnsw__idmap_unreserve(struct hnsw *h)
{
	h->map.reserved--;
}

int hnsw__idmap_put(struct hnsw *h, uint32_t slot, bool reserved)
{
	int rv = 0;

	pthread_rwlock_wrlock(&h->map_lock);
	if (reserved)
		h->map.reserved--;
	else
		rv = map_room(h, h->map.n + h->map.reserved + 1);
	if (rv == 0) {
		map_insert(h, h->map.slots, h->map.cap, slot);
		h->map.n++;
	}
	pthread_rwlock_unlock(&h->map_lock);
	return rv;
}

void hnsw__idmap_replace(struct hnsw *h, uint32_t old, uint32_t new)
{
	uint32_t *e;

	pthread_rwlock_wrlock(&h->map_lock);
	e = map_find(h, hnsw__node_at(h, old)->id);
	if (e != NULL && *e == old)
		*e = new;
	pthread_rwlock_unlock(&h->map_lock);
}

uint32_t hnsw__idmap_get(const struct hnsw *h, uint64_t id)
{
	uint32_t *e = map_find(h, id);

	return e == NULL ? HNSW_NO_SLOT : *e;
}

/* Linear probing deletion by backward shift (Knuth 6.4 Algorithm R): no
 * tombstones, so lookups stay short however many deletes there were. */
void hnsw__idmap_del(struct hnsw *h, uint64_t id)
{
	struct hnsw_idmap *m = &h->map;
	uint32_t *e;
	size_t i, j;

	pthread_rwlock_wrlock(&h->map_lock);
	e = map_find(h, id);
	if (e == NULL) {
		pthread_rwlock_unlock(&h->map_lock);
		return;
	}
	i = (size_t)(e - m->slots);
	m->slots[i] = HNSW_NO_SLOT;
	for (j = (i + 1) & (m->cap - 1); m->slots[j] != HNSW_NO_SLOT; j = (j + 1) & (m->cap - 1)) {
		size_t home = id_hash(hnsw__node_at(h, m->slots[j])->id, m->cap);

		/* move j back to i unless its home lies cyclically in (i, j] */
		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			m->slots[i] = m->slots[j];
			m->slots[j] = HNSW_NO_SLOT;
			i = j;
		}
	}
	m->n--;
	pthread_rwlock_unlock(&h->map_lock);
}

/* ------------------------------------------------------------ epochs */

void hnsw__epoch_enter(const struct hnsw *h, int *parity)
{
	struct hnsw *w = hnsw__mut(h);

	for (;;) {
		uint64_t e = atomic_load(&w->epoch);

		atomic_fetch_add(&w->readers[e & 1], 1);
		if (atomic_load(&w->epoch) == e) {
			*parity = (int)(e & 1);
			return;
		}
		atomic_fetch_sub(&w->readers[e & 1], 1);
	}
}

void hnsw__epoch_exit(const struct hnsw *h, int parity)
{
	atomic_fetch_sub(&hnsw__mut(h)->readers[parity], 1);
}

void hnsw__epoch_retire(struct hnsw *h, uint32_t slot)
{
	int p = (int)(atomic_load(&h->epoch) & 1);

	atomic_store(&hnsw__node_at(h, slot)->state, HNSW_SLOT_RETIRED);
	if (push_u32(&h->limbo[p], &h->n_limbo[p], &h->limbo_cap[p], slot) != 0)
		return; /* out of memory: the slot is leaked, never reused, still safe */
}

void hnsw__epoch_try_reclaim(struct hnsw *h)
{
	uint64_t e = atomic_load(&h->epoch);
	int old = (int)((e + 1) & 1); /* the parity of epoch e - 1 */

	if (atomic_load(&h->readers[old]) != 0)
		return;
	atomic_fetch_sub(&h->dead, h->n_limbo[old]);
	for (size_t i = 0; i < h->n_limbo[old]; i++) {
		uint32_t slot = h->limbo[old][i];
		struct hnsw_node *n = hnsw__node_at(h, slot);

		hnsw__slot_release_upper(h, n);
		atomic_store_explicit(&n->state, HNSW_SLOT_FREE, memory_order_relaxed);
		if (push_u32(&h->free_slots, &h->n_free, &h->free_cap, slot) != 0)
			break;
	}
	h->n_limbo[old] = 0;
	atomic_store(&h->epoch, e + 1);
}

/* ------------------------------------------------------------ versions */

/* A point is updated at most once per insert of the single writer, so a
 * chain is short; the bound only guards against a reader chasing a writer
 * that updates one point without pause (it then takes the version it
 * reached, which is complete). */
#define CHAIN_MAX 64

uint32_t hnsw__current(const struct hnsw *h, uint32_t slot)
{
	for (int i = 0; i < CHAIN_MAX; i++) {
		struct hnsw_node *n = hnsw__node_at(h, slot);
		uint32_t next = atomic_load_explicit(&n->next, memory_order_acquire);
		uint8_t st;

		if (next != HNSW_NO_SLOT) {
			slot = next; /* replaced: the newer version */
			continue;
		}
		st = atomic_load_explicit(&n->state, memory_order_acquire);
		if (st == HNSW_SLOT_LIVE)
			return slot;
		if (st != HNSW_SLOT_NEW || n->prev == HNSW_NO_SLOT)
			return HNSW_NO_SLOT; /* deleted, or a new id not yet published */
		slot = n->prev;              /* not yet switched: the version it replaces stands */
	}
	return slot;
}

/* ------------------------------------------------------------ life cycle */

static int check_params(const struct hnsw_params *p, struct sh_err *err)
{
	if (p->dim < 1 || p->dim > HNSW_MAX_DIM)
		return sh_err_set(err, SH_EINVAL, "hnsw: dim %u is outside 1..%d", p->dim,
				  HNSW_MAX_DIM);
	if (p->m < HNSW_MIN_M || p->m > HNSW_MAX_M)
		return sh_err_set(err, SH_EINVAL, "hnsw: m %u is outside %d..%d", p->m, HNSW_MIN_M,
				  HNSW_MAX_M);
	if (p->ef_construction < 1 || p->ef_construction > HNSW_MAX_EF)
		return sh_err_set(err, SH_EINVAL, "hnsw: ef_construction %u is outside 1..%d",
				  p->ef_construction, HNSW_MAX_EF);
	if (p->metric != SH_METRIC_L2 && p->metric != SH_METRIC_COSINE &&
	    p->metric != SH_METRIC_DOT)
		return sh_err_set(err, SH_EINVAL, "hnsw: unknown metric %d", (int)p->metric);
	if (p->quant != HNSW_QUANT_NONE && p->quant != HNSW_QUANT_INT8)
		return sh_err_set(err, SH_EINVAL, "hnsw: unknown quantization %d", (int)p->quant);
	return 0;
}

int hnsw_new(const struct hnsw_params *params, struct hnsw **out, struct sh_err *err)
{
	struct hnsw *h;
	int rv = check_params(params, err);

	if (rv != 0)
		return rv;
	h = sh_calloc(1, sizeof *h);
	if (h == NULL)
		return sh_err_set(err, SH_ENOMEM, "hnsw: out of memory");
	h->p = *params;
	h->m0 = 2 * params->m;
	h->ml = 1.0 / log((double)params->m);
	h->k = dist_best();
	h->kern = params->metric == SH_METRIC_L2 ? h->k->l2sq : h->k->dot;
	h->negate = params->metric != SH_METRIC_L2;
	h->bias = params->metric == SH_METRIC_COSINE ? 1.0f : 0.0f;
	h->nodes.stride = sizeof(struct hnsw_node);
	h->links.stride = (h->m0 * sizeof(uint32_t) + 63) & ~(size_t)63;
	h->vecs.stride = ((size_t)params->dim * sizeof(float) + 15) & ~(size_t)15;
	h->codes.stride = params->quant ? (params->dim + 63) & ~(size_t)63 : 0;
	h->indeg.stride = sizeof(_Atomic uint32_t);
	atomic_init(&h->ep, HNSW_EP_EMPTY);
	sh_rand_seed(&h->rng, params->seed);
	pthread_mutex_init(&h->write_lock, NULL);
	pthread_rwlock_init(&h->map_lock, NULL);
	pthread_mutex_init(&h->pool.lock, NULL);
	*out = h;
	return 0;
}

void hnsw_free(struct hnsw *h)
{
	uint32_t n;

	if (h == NULL)
		return;
	n = atomic_load(&h->n_slots);
	for (uint32_t s = 0; s < n; s++)
		hnsw__slot_release_upper(h, hnsw__node_at(h, s));
	for (size_t i = 0; i < h->pool.n; i++)
		hnsw__scratch_free(h->pool.free[i]);
	sh_free(h->pool.free);
	arena_release(&h->nodes);
	arena_release(&h->links);
	arena_release(&h->vecs);
	arena_release(&h->codes);
	arena_release(&h->indeg);
	sh_free(h->map.slots);
	sh_free(h->pending);
	sh_free(h->limbo[0]);
	sh_free(h->limbo[1]);
	sh_free(h->free_slots);
	pthread_mutex_destroy(&h->write_lock);
	pthread_rwlock_destroy(&h->map_lock);
	pthread_mutex_destroy(&h->pool.lock);
	sh_free(h);
}

const struct hnsw_params *hnsw_params(const struct hnsw *h)
{
	return &h->p;
}

int hnsw_check_vector(const float *v, uint32_t dim, enum sh_metric metric, const char *what,
		      struct sh_err *err)
{
	double sq = 0, norm;

	for (uint32_t i = 0; i < dim; i++) {
		if (!isfinite(v[i]))
			return sh_err_set(err, SH_EINVAL, "%s value %u is %s", what, i,
					  isnan(v[i]) ? "NaN" : "infinite");
		sq += (double)v[i] * (double)v[i];
	}
	norm = sqrt(sq);
	if (norm > HNSW_MAX_NORM)
		return sh_err_set(err, SH_EINVAL,
				  "%s norm %.3g is over the limit of %g (distances would overflow)",
				  what, norm, HNSW_MAX_NORM);
	if (metric == SH_METRIC_COSINE && norm == 0)
		return sh_err_set(err, SH_EINVAL, "a zero vector has no direction (metric cosine)");
	if (metric == SH_METRIC_COSINE && norm < HNSW_MIN_NORM)
		return sh_err_set(err, SH_EINVAL,
				  "%s norm %.3g is under the limit of %g for metric cosine (too "
				  "small to normalize)",
				  what, norm, HNSW_MIN_NORM);
	return 0;
}

void hnsw_prepare_checked(const struct hnsw *h, const float *in, float *out)
{
	memcpy(out, in, h->p.dim * sizeof *out);
	if (h->p.metric == SH_METRIC_COSINE)
		dist_normalize(out, h->p.dim);
}

int hnsw__prepare_vector(const struct hnsw *h, const float *in, float *out, struct sh_err *err)
{
	int rv = hnsw_check_vector(in, h->p.dim, h->p.metric, "vector", err);

	if (rv != 0)
		return rv;
	hnsw_prepare_checked(h, in, out);
	if (h->p.metric != SH_METRIC_COSINE)
		return 0;
	for (uint32_t i = 0; i < h->p.dim; i++)
		if (!isfinite(out[i])) /* cannot happen within the bounds above: a last guard */
			return sh_err_set(err, SH_EINVAL,
					  "vector does not normalize to finite values");
	return 0;
}

/* ------------------------------------------------------------ accessors */

int hnsw_get(const struct hnsw *h, uint64_t id, float *out)
{
	uint32_t slot;

	pthread_rwlock_rdlock(&hnsw__mut(h)->map_lock);
	slot = hnsw__idmap_get(h, id);
	if (slot != HNSW_NO_SLOT)
		memcpy(out, hnsw__vec_at(h, slot), h->p.dim * sizeof(float));
	pthread_rwlock_unlock(&hnsw__mut(h)->map_lock);
	return slot == HNSW_NO_SLOT ? SH_ENOTFOUND : 0;
}

bool hnsw_contains(const struct hnsw *h, uint64_t id)
{
	uint32_t slot;

	pthread_rwlock_rdlock(&hnsw__mut(h)->map_lock);
	slot = hnsw__idmap_get(h, id);
	pthread_rwlock_unlock(&hnsw__mut(h)->map_lock);
	return slot != HNSW_NO_SLOT;
}

size_t hnsw_count(const struct hnsw *h)
{
	return atomic_load_explicit(&hnsw__mut(h)->count, memory_order_relaxed);
}

size_t hnsw_memory(const struct hnsw *h)
{
	struct hnsw *w = hnsw__mut(h);
	uint32_t n = atomic_load(&w->n_slots);
	size_t m = sizeof *h + hnsw__arena_used(&h->nodes, n) + hnsw__arena_used(&h->links, n) +
		   hnsw__arena_used(&h->vecs, n) + hnsw__arena_used(&h->codes, n) +
		   hnsw__arena_used(&h->indeg, n) + h->map.cap * sizeof(uint32_t) +
		   atomic_load(&w->upper_bytes) +
		   (h->pending_cap + h->limbo_cap[0] + h->limbo_cap[1] + h->free_cap) *
			   sizeof(uint32_t);

	pthread_mutex_lock(&w->pool.lock);
	for (size_t i = 0; i < h->pool.n; i++) {
		const struct hnsw_scratch *s = h->pool.free[i];

		m += ((size_t)1 << s->vbits) * sizeof(uint32_t) +
		     (s->ccap + s->rcap + s->selcap) * sizeof(struct hnsw_cand) +
		     s->idcap * sizeof(uint32_t);
	}
	pthread_mutex_unlock(&w->pool.lock);
	return m;
}

void hnsw_stats(const struct hnsw *h, struct hnsw_stats *st)
{
	uint64_t ep = atomic_load(&hnsw__mut(h)->ep);

	memset(st, 0, sizeof *st);
	st->count = hnsw_count(h);
	st->slots = atomic_load(&hnsw__mut(h)->n_slots);
	st->deleted = h->n_pending;
	st->free = h->n_free + h->n_limbo[0] + h->n_limbo[1];
	st->max_level = ep == HNSW_EP_EMPTY ? -1 : (int)(ep >> 32);
	st->memory = hnsw_memory(h);
	st->quantized = atomic_load(&hnsw__mut(h)->quant_ready);
	st->distance_calls = atomic_load(&hnsw__mut(h)->dist_calls);
	st->fallbacks = atomic_load(&hnsw__mut(h)->fallbacks);
}

double hnsw_mean_degree0(const struct hnsw *h)
{
	uint32_t n = atomic_load(&hnsw__mut(h)->n_slots), e;
	size_t live = 0, links = 0;

	for (uint32_t slot = 0; slot < n; slot++) {
		_Atomic uint32_t *l = hnsw__links_at(h, slot, 0);

		if (atomic_load(&hnsw__node_at(h, slot)->state) != HNSW_SLOT_LIVE)
			continue;
		live++;
		for (uint32_t i = 0; i < h->m0 && (e = hnsw__link_get(l, i)) != HNSW_NO_SLOT; i++)
			links++;
	}
	return live ? (double)links / (double)live : 0;
}
