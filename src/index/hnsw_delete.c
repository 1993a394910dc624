/*
 * hnsw_delete: deleting points without leaving tombstones in the graph.
 *
 * The HNSW paper does not delete.  hnswlib marks deleted points and can
 * only overwrite them with later inserts; their links stay.  Here a deleted
 * point is repaired away in two steps, in the spirit of FreshDiskANN's
 * delete consolidation (Singh et al., 2021):
 *
 *  1. at once (delete_slot): the point stops being a result, leaves the id
 *     map, and each of its out-neighbours that links back to it gets a new
 *     list chosen by Alg. 4 from its other links plus the deleted point's
 *     links ("relink") — in HNSW most links are mutual, so this reconnects
 *     most of the neighbourhood immediately;
 *  2. in batches (repair_pending), once enough deletions are pending: every
 *     live point is scanned and any list still naming a deleted point is
 *     relinked the same way.  After that no live list names a pending point,
 *     so their slots go to limbo (hnsw.c) and are reused once no search can
 *     still hold them.
 *
 * Until step 2, deleted points still route searches (their links are
 * intact), which keeps the graph navigable in between.  The writer only.
 */
#include "build.h"

#include "index/hnsw_impl.h"

#include "util/alloc.h"

static bool is_deleted(const struct hnsw *h, uint32_t slot)
{
	return atomic_load_explicit(&node_at(h, slot)->state, memory_order_acquire) != SLOT_LIVE;
}

/* Add slot e to the candidates s->sel[0..*n) unless seen; distance to v. */
static void add_cand(struct hnsw *h, struct scratch *s, const float *v, uint32_t e, size_t *n)
{
	if (is_deleted(h, e) || !visit(s, e))
		return;
	if (scratch_sel(s, *n + 1) != 0)
		return; /* out of memory: fewer candidates, still a valid list */
	s->sel[(*n)++] = (struct cand){dist_vec(h, v, vec_at(h, e)), e};
}

/* Give nb at level a new list without deleted points: its live links plus
 * the live links of its deleted links, selected by Alg. 4. */
static void relink(struct hnsw *h, struct scratch *s, uint32_t nb, int level)
{
	uint32_t cap = max_links(h, level), e, f, ids[2 * HNSW_MAX_M];
	_Atomic uint32_t *l = links_at(h, nb, level);
	const float *v = vec_at(h, nb);
	size_t nc = 0;

	scratch_begin(s);
	visit(s, nb);
	for (uint32_t i = 0; i < cap && (e = link_get(l, i)) != NO_SLOT; i++) {
		if (is_deleted(h, e)) {
			_Atomic uint32_t *el = links_at(h, e, level);

			for (uint32_t j = 0; j < cap && (f = link_get(el, j)) != NO_SLOT; j++)
				add_cand(h, s, v, f, &nc);
		} else {
			add_cand(h, s, v, e, &nc);
		}
	}
	sort_cands(s->sel, nc);
	nc = select_heuristic(h, s->sel, nc, cap);
	for (size_t i = 0; i < nc; i++)
		ids[i] = s->sel[i].slot;
	node_lock(node_at(h, nb));
	links_set(l, cap, ids, (uint32_t)nc);
	node_unlock(node_at(h, nb));
}

static bool links_to(const struct hnsw *h, uint32_t from, int level, uint32_t to)
{
	_Atomic uint32_t *l = links_at(h, from, level);
	uint32_t cap = max_links(h, level), e;

	for (uint32_t i = 0; i < cap && (e = link_get(l, i)) != NO_SLOT; i++)
		if (e == to)
			return true;
	return false;
}

static bool has_deleted_link(const struct hnsw *h, uint32_t from, int level)
{
	_Atomic uint32_t *l = links_at(h, from, level);
	uint32_t cap = max_links(h, level), e;

	for (uint32_t i = 0; i < cap && (e = link_get(l, i)) != NO_SLOT; i++)
		if (is_deleted(h, e))
			return true;
	return false;
}

/* A live point of the highest level, preferring the deleted entry point's
 * own neighbours (no scan); EP_EMPTY when no point is live. */
static uint64_t new_entry(const struct hnsw *h, uint32_t old, int top)
{
	uint32_t n = atomic_load(&mut(h)->n_slots), best = NO_SLOT, e;
	int best_level = -1;

	for (int level = top; level >= 0; level--) {
		_Atomic uint32_t *l = links_at(h, old, level);

		for (uint32_t i = 0; i < max_links(h, level) && (e = link_get(l, i)) != NO_SLOT;
		     i++)
			if (!is_deleted(h, e) && node_at(h, e)->level == top)
				return ep_pack(top, e);
	}
	for (uint32_t s = 0; s < n; s++) {
		if (!is_deleted(h, s) && node_at(h, s)->level > best_level) {
			best = s;
			best_level = node_at(h, s)->level;
		}
	}
	return best == NO_SLOT ? EP_EMPTY : ep_pack(best_level, best);
}

static void fix_entry(struct hnsw *h)
{
	uint64_t ep = atomic_load(&h->ep);

	if (ep != EP_EMPTY && is_deleted(h, (uint32_t)ep))
		atomic_store(&h->ep, new_entry(h, (uint32_t)ep, (int)(ep >> 32)));
}

static int writer_scratch(struct hnsw *h, struct scratch **s)
{
	*s = scratch_get(h);
	if (*s == NULL || scratch_fit(*s, h->m0, h->p.dim, h->m0) != 0) {
		scratch_put(h, *s);
		return SH_ENOMEM;
	}
	return 0;
}

void repair_pending(struct hnsw *h)
{
	uint32_t n = atomic_load(&h->n_slots);
	struct scratch *s;

	if (h->n_pending == 0 || writer_scratch(h, &s) != 0)
		return;
	for (uint32_t slot = 0; slot < n; slot++) {
		if (is_deleted(h, slot))
			continue;
		for (int level = node_at(h, slot)->level; level >= 0; level--)
			if (has_deleted_link(h, slot, level))
				relink(h, s, slot, level);
	}
	scratch_put(h, s);
	fix_entry(h);
	for (size_t i = 0; i < h->n_pending; i++)
		epoch_retire(h, h->pending[i]);
	h->n_pending = 0;
}

static void queue_pending(struct hnsw *h, uint32_t slot)
{
	if (h->n_pending == h->pending_cap) {
		size_t cap = h->pending_cap ? h->pending_cap * 2 : 256;
		uint32_t *p = sh_reallocarray(h->pending, cap, sizeof *p);

		if (p == NULL) {
			repair_pending(h); /* no room to queue: repair now instead */
			if (h->n_pending == h->pending_cap)
				return; /* the slot stays deleted, never reused: safe */
		} else {
			h->pending = p;
			h->pending_cap = cap;
		}
	}
	h->pending[h->n_pending++] = slot;
}

void delete_slot(struct hnsw *h, uint32_t slot)
{
	struct node *n = node_at(h, slot);
	struct scratch *s;
	size_t live;

	atomic_fetch_add(&h->dead, 1); /* before the state: readers check it first */
	atomic_store_explicit(&n->state, SLOT_DELETED, memory_order_release);
	idmap_del(h, n->id);
	live = atomic_fetch_sub(&h->count, 1) - 1;
	if (writer_scratch(h, &s) == 0) {
		for (int level = n->level; level >= 0; level--) {
			_Atomic uint32_t *l = links_at(h, slot, level);
			uint32_t nb;

			for (uint32_t i = 0;
			     i < max_links(h, level) && (nb = link_get(l, i)) != NO_SLOT; i++)
				if (!is_deleted(h, nb) && links_to(h, nb, level, slot))
					relink(h, s, nb, level);
		}
		scratch_put(h, s);
	}
	fix_entry(h);
	queue_pending(h, slot);
	if (h->n_pending >= 256 && h->n_pending >= live / 10)
		repair_pending(h);
}

int hnsw_delete(struct hnsw *h, uint64_t id)
{
	uint32_t slot = idmap_get(h, id);

	if (slot == NO_SLOT)
		return SH_ENOTFOUND;
	delete_slot(h, slot);
	epoch_try_reclaim(h);
	return 0;
}

void hnsw_compact(struct hnsw *h)
{
	repair_pending(h);
	epoch_try_reclaim(h);
	epoch_try_reclaim(h);
}
