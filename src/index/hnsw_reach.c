/*
 * hnsw_reach: keeping every live point reachable from the entry point at
 * level 0 (hnsw_impl.h, "Reachability"), which HNSW does not do by itself.
 *
 * A point loses its in-links when the lists that named it are shrunk by
 * the neighbour-selection heuristic (Alg. 4: a full list takes a new link
 * and drops the one it now occludes), re-chosen around a deleted point, or
 * when the deleted points that routed to it are retired; and the set of
 * points reachable changes with the entry point.  On small graphs that
 * happens all the time (t/hnsw_model.c found unreachable points in about
 * one in ten of 1,000 random sequences, most with m of 2-4 but some at
 * m = 16): such a point is never found by a search again.
 *
 * hnsw__reconnect walks level 0 breadth-first from the entry point,
 * through deleted points not yet repaired (searches go through them too),
 * remembering for each point reached the link it was reached by (its
 * parent): those links form a tree that reaches every point reached.  Each
 * live point not reached gets in-links without changing its own lists: a
 * search from the entry point (which meets only reached points) finds its
 * nearest, and those that Alg. 4 would select and whose list has room link
 * to it.  When none has room, the nearest point that can spare a link
 * gives up its farthest link that is not a tree link, which cuts nobody
 * off (a plain shrink of the list could: two points near each other then
 * push each other out, round after round).  The walk then goes on from the
 * point, so that an island comes back whole, its links joining the tree.
 * One walk settles it; a second one checks (at most RECONNECT_ROUNDS).
 *
 * The writer only (hnsw_upsert, hnsw_delete, repairs, the end of a build);
 * searches may run.  Costs one bit and two words per slot, and a walk of
 * the level-0 lists.
 */
#include "build.h"

#include "index/hnsw_impl.h"

#include "util/alloc.h"

#include <string.h>

#define RECONNECT_ROUNDS 4

struct walk {
	const struct hnsw *h;
	uint64_t *seen;
	uint32_t *queue;
	uint32_t *parent; /* the point a reached point was reached from */
	bool live_only;   /* route through live points only */
	uint32_t head, tail;
};

static bool routes(const struct walk *w, uint32_t slot)
{
	uint8_t st = atomic_load_explicit(&hnsw__node_at(w->h, slot)->state, memory_order_relaxed);

	return st == HNSW_SLOT_LIVE || (st == HNSW_SLOT_DELETED && !w->live_only);
}

static bool seen(const struct walk *w, uint32_t slot)
{
	return w->seen[slot / 64] >> (slot % 64) & 1;
}

static void mark(struct walk *w, uint32_t slot, uint32_t parent)
{
	w->seen[slot / 64] |= 1ull << (slot % 64);
	w->parent[slot] = parent;
	w->queue[w->tail++] = slot;
}

/* Mark slot reached from parent and walk on from it. */
static void reach(struct walk *w, uint32_t slot, uint32_t parent)
{
	uint32_t e;

	if (!seen(w, slot))
		mark(w, slot, parent);
	while (w->head < w->tail) {
		uint32_t from = w->queue[w->head++];
		_Atomic uint32_t *l = hnsw__links_at(w->h, from, 0);

		for (uint32_t i = 0; i < w->h->m0 && (e = hnsw__link_get(l, i)) != HNSW_NO_SLOT;
		     i++)
			if (!seen(w, e) && routes(w, e))
				mark(w, e, from);
	}
}

/* Append slot to nb's level-0 list if it has room (and lacks it). */
static bool link_room(struct hnsw *h, struct walk *w, uint32_t nb, uint32_t slot)
{
	struct hnsw_node *n = hnsw__node_at(h, nb);
	_Atomic uint32_t *l = hnsw__links_at(h, nb, 0);
	uint32_t len;
	bool added = false;

	hnsw__node_lock(n);
	len = hnsw__links_len(l, h->m0);
	if (len < h->m0) {
		for (uint32_t i = 0; i < len; i++)
			if (hnsw__link_get(l, i) == slot)
				goto out;
		atomic_store_explicit(&l[len], slot, memory_order_release);
		added = true;
	}
out:
	hnsw__node_unlock(n);
	return added;
}

/* Replace in nb's full level-0 list its farthest link that is not a tree
 * link by one to slot; false when no link can be spared. */
static bool link_spare(struct hnsw *h, struct walk *w, uint32_t nb, uint32_t slot)
{
	struct hnsw_node *n = hnsw__node_at(h, nb);
	_Atomic uint32_t *l = hnsw__links_at(h, nb, 0);
	const float *v = hnsw__vec_at(h, nb);
	uint32_t e, worst = HNSW_NO_SLOT;
	float wd = -1;

	hnsw__node_lock(n);
	for (uint32_t i = 0; i < h->m0 && (e = hnsw__link_get(l, i)) != HNSW_NO_SLOT; i++) {
		float d = hnsw__dist_vec(h, v, hnsw__vec_at(h, e));

		if (e == slot) {
			worst = HNSW_NO_SLOT; /* already linked: nothing to do */
			break;
		}
		if (w->parent[e] != nb && d > wd) {
			wd = d;
			worst = i;
		}
	}
	if (worst != HNSW_NO_SLOT)
		atomic_store_explicit(&l[worst], slot, memory_order_release);
	hnsw__node_unlock(n);
	return worst != HNSW_NO_SLOT;
}

/* A point that can link to slot: among its nearest as Alg. 4 selects
 * them, with room; else among its nearest, one that can spare a link; else
 * any reached live point (a small ef_construction, many ties).  Returns
 * it, or NO_SLOT. */
static uint32_t find_parent(struct hnsw *h, struct hnsw_scratch *s, struct walk *w, uint32_t slot,
			    size_t nr)
{
	size_t kept;
	uint32_t first = HNSW_NO_SLOT;

	hnsw__sort_cands(s->sel, nr);
	kept = hnsw__select_heuristic(h, s->sel, nr, h->p.m);
	for (size_t i = 0; i < kept; i++)
		if (link_room(h, w, s->sel[i].slot, slot) && first == HNSW_NO_SLOT)
			first = s->sel[i].slot;
	if (first != HNSW_NO_SLOT)
		return first;
	memcpy(s->sel, s->res, nr * sizeof *s->sel); /* Alg. 4 dropped some: all again */
	hnsw__sort_cands(s->sel, nr);
	for (size_t i = 0; i < nr; i++)
		if (link_spare(h, w, s->sel[i].slot, slot))
			return s->sel[i].slot;
	for (int spare = 0; spare < 2; spare++)
		for (uint32_t i = 0; i < w->tail; i++) {
			uint32_t nb = w->queue[i];

			if (atomic_load(&hnsw__node_at(h, nb)->state) == HNSW_SLOT_LIVE &&
			    (spare ? link_spare(h, w, nb, slot) : link_room(h, w, nb, slot)))
				return nb;
		}
	return HNSW_NO_SLOT;
}

/* In-links for slot, which the walk did not reach, from its nearest
 * reached points (module comment); returns its parent, or NO_SLOT. */
static uint32_t link_in(struct hnsw *h, struct hnsw_scratch *s, struct walk *w, uint32_t slot,
			uint64_t ep)
{
	struct hnsw_cand cur = {0, (uint32_t)ep};
	size_t nr;

	memcpy(s->qvec, hnsw__vec_at(h, slot), h->p.dim * sizeof(float));
	cur.d = hnsw__dist_slot(h, s->qvec, cur.slot);
	cur.slot = hnsw__greedy_descend(h, s, cur.slot, (int)(ep >> 32), 0, &cur.d);
	if (!seen(w, cur.slot)) { /* upper levels may lead where level 0 does not */
		cur.slot = (uint32_t)ep;
		cur.d = hnsw__dist_slot(h, s->qvec, cur.slot);
	}
	s->skip = slot;
	nr = hnsw__search_layer(h, s, s->qvec, cur.slot, cur.d, h->p.ef_construction, 0, NULL, NULL,
				HNSW__ACCEPT_INSERT);
	s->skip = HNSW_NO_SLOT;
	memcpy(s->sel, s->res, nr * sizeof *s->sel);
	return find_parent(h, s, w, slot, nr);
}

/* One walk, linking in what it misses; the number of points linked in. */
static size_t walk_and_fix(struct hnsw *h, struct hnsw_scratch *s, struct walk *w, uint64_t ep)
{
	uint32_t n = atomic_load(&h->n_slots), parent;
	size_t fixed = 0;

	memset(w->seen, 0, ((size_t)n / 64 + 1) * sizeof *w->seen);
	memset(w->parent, 0xff, (size_t)n * sizeof *w->parent);
	w->head = w->tail = 0;
	reach(w, (uint32_t)ep, HNSW_NO_SLOT);
	for (uint32_t slot = 0; slot < n; slot++) {
		if (seen(w, slot) || atomic_load(&hnsw__node_at(h, slot)->state) != HNSW_SLOT_LIVE)
			continue;
		if ((parent = link_in(h, s, w, slot, ep)) == HNSW_NO_SLOT)
			continue; /* nothing can link to it (cannot happen): the next walk retries
				   */
		reach(w, slot, parent);
		fixed++;
	}
	return fixed;
}

void hnsw__reconnect_at(struct hnsw *h, uint64_t ep, bool live_only)
{
	uint32_t n = atomic_load(&h->n_slots);
	struct walk w = {h, NULL, NULL, NULL, live_only, 0, 0};
	struct hnsw_scratch *s = NULL;

	if (ep == HNSW_EP_EMPTY)
		goto out;
	w.seen = sh_malloc(((size_t)n / 64 + 1) * sizeof *w.seen);
	w.queue = sh_malloc(((size_t)n + 1) * sizeof *w.queue);
	w.parent = sh_malloc(((size_t)n + 1) * sizeof *w.parent);
	s = hnsw__scratch_get(h);
	if (w.seen == NULL || w.queue == NULL || w.parent == NULL || s == NULL ||
	    hnsw__scratch_fit(h, s, h->p.ef_construction) != 0)
		goto out; /* out of memory: dropped stays set, so it is tried again */
	for (int round = 0; round < RECONNECT_ROUNDS; round++)
		if (walk_and_fix(h, s, &w, ep) == 0)
			break;
	atomic_store(&h->dropped, 0);
out:
	hnsw__scratch_put(h, s);
	sh_free(w.seen);
	sh_free(w.queue);
	sh_free(w.parent);
}

void hnsw__reconnect(struct hnsw *h)
{
	hnsw__reconnect_at(h, atomic_load(&h->ep), false);
}

void hnsw__maybe_reconnect(struct hnsw *h)
{
	size_t dropped = atomic_load(&h->dropped), n = hnsw_count(h);

	if (dropped > 0 && (n <= HNSW_RECONNECT_SMALL || dropped >= n / 8))
		hnsw__reconnect(h);
}
