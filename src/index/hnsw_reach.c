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
 *
 * In-degrees.  The walk mends after the fact; searches run inside writes.
 * So at every moment every live point but the entry point keeps a level-0
 * in-link from a LIVE or NEW point: each slot counts those (h->indeg),
 * a link is added then counted, counted out then removed, and
 * hnsw__indeg_drop never takes a live point's count below one (a
 * compare-and-swap: two builders cannot drop its last two links at once).
 * A list that would drop a last in-link keeps it (insert's shrink, batch
 * repair, link_spare); a point left with none — a new point every
 * neighbour refused, one whose only in-link was a deleted point's, an
 * entry point that stops being one — gets one from the nearest live point
 * with room that a search finds (hnsw__rescue), or a spared link.  A
 * closed island (points linking only to each other) has in-links and is
 * not seen: the walk links it back (doc/index.md, "Reachability").
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
static bool link_room(struct hnsw *h, uint32_t nb, uint32_t slot)
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
		hnsw__indeg_add(h, slot);
		added = true;
	}
out:
	hnsw__node_unlock(n);
	hnsw__midwrite(h);
	return added;
}

/* Replace in nb's full level-0 list its farthest link that can go — not a
 * tree link of the walk (parent, NULL outside one), nor a point's last
 * in-link — by one to slot; false when no link can be spared. */
static bool link_spare(struct hnsw *h, const uint32_t *parent, uint32_t nb, uint32_t slot)
{
	struct hnsw_node *n = hnsw__node_at(h, nb);
	_Atomic uint32_t *l = hnsw__links_at(h, nb, 0);
	const float *v = hnsw__vec_at(h, nb);
	struct hnsw_cand c[2 * HNSW_MAX_M];
	uint32_t e, nc = 0, at = HNSW_NO_SLOT;

	hnsw__node_lock(n);
	for (uint32_t i = 0; i < h->m0 && (e = hnsw__link_get(l, i)) != HNSW_NO_SLOT; i++) {
		if (e == slot) {
			nc = 0; /* already linked: nothing to do */
			break;
		}
		if (parent == NULL || parent[e] != nb) /* d, and the position in slot */
			c[nc++] = (struct hnsw_cand){hnsw__dist_vec(h, v, hnsw__vec_at(h, e)), i};
	}
	hnsw__sort_cands(c, nc);
	for (uint32_t k = nc; k-- > 0 && at == HNSW_NO_SLOT;)
		if (hnsw__indeg_drop(h, hnsw__link_get(l, c[k].slot)))
			at = c[k].slot;
	if (at != HNSW_NO_SLOT) {
		atomic_store_explicit(&l[at], slot, memory_order_release);
		hnsw__indeg_add(h, slot);
	}
	hnsw__node_unlock(n);
	hnsw__midwrite(h);
	return at != HNSW_NO_SLOT;
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
		if (link_room(h, s->sel[i].slot, slot) && first == HNSW_NO_SLOT)
			first = s->sel[i].slot;
	if (first != HNSW_NO_SLOT)
		return first;
	memcpy(s->sel, s->res, nr * sizeof *s->sel); /* Alg. 4 dropped some: all again */
	hnsw__sort_cands(s->sel, nr);
	for (size_t i = 0; i < nr; i++)
		if (link_spare(h, w->parent, s->sel[i].slot, slot))
			return s->sel[i].slot;
	for (int spare = 0; spare < 2; spare++)
		for (uint32_t i = 0; i < w->tail; i++) {
			uint32_t nb = w->queue[i];

			if (atomic_load(&hnsw__node_at(h, nb)->state) == HNSW_SLOT_LIVE &&
			    (spare ? link_spare(h, w->parent, nb, slot) : link_room(h, nb, slot)))
				return nb;
		}
	return HNSW_NO_SLOT;
}

/* The points near slot's vector that a level-0 search from the entry
 * point ep finds (from ep itself when the greedy descent ends at a point
 * `from_ep` refuses), into s->res; returns how many. */
static size_t search_near(struct hnsw *h, struct hnsw_scratch *s, uint32_t slot, uint64_t ep,
			  const struct walk *w)
{
	struct hnsw_cand cur = {0, (uint32_t)ep};
	size_t nr;

	memcpy(s->qvec, hnsw__vec_at(h, slot), h->p.dim * sizeof(float));
	cur.d = hnsw__dist_slot(h, s->qvec, cur.slot);
	cur.slot = hnsw__greedy_descend(h, s, cur.slot, (int)(ep >> 32), 0, &cur.d);
	if ((w != NULL && !seen(w, cur.slot)) || cur.slot == slot) {
		/* upper levels may lead where level 0 does not; and a search
		 * for slot's neighbours does not start from slot itself */
		cur.slot = (uint32_t)ep;
		cur.d = hnsw__dist_slot(h, s->qvec, cur.slot);
	}
	s->skip = slot;
	nr = hnsw__search_layer(h, s, s->qvec, cur.slot, cur.d, h->p.ef_construction, 0, NULL, NULL,
				HNSW__ACCEPT_INSERT);
	s->skip = HNSW_NO_SLOT;
	memcpy(s->sel, s->res, nr * sizeof *s->sel);
	return nr;
}

/* In-links for slot, which the walk did not reach, from its nearest
 * reached points (module comment); returns its parent, or NO_SLOT. */
static uint32_t link_in(struct hnsw *h, struct hnsw_scratch *s, struct walk *w, uint32_t slot,
			uint64_t ep)
{
	return find_parent(h, s, w, slot, search_near(h, s, slot, ep, w));
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

/* ------------------------------------------------------------ in-degrees */

bool hnsw__indeg_pair_only(const struct hnsw *h, uint32_t slot)
{
	_Atomic uint32_t *l = hnsw__links_at(h, slot, 0);
	uint32_t f;

	for (uint32_t i = 0; i < h->m0 && (f = hnsw__link_get(l, i)) != HNSW_NO_SLOT; i++)
		if (atomic_load_explicit(hnsw__indeg_at(h, f), memory_order_relaxed) <= 1 &&
		    atomic_load_explicit(&hnsw__node_at(h, f)->state, memory_order_relaxed) ==
			    HNSW_SLOT_LIVE &&
		    hnsw__links_to(h, f, 0, slot))
			return true;
	return false;
}

bool hnsw__indeg_drop(struct hnsw *h, uint32_t slot)
{
	_Atomic uint32_t *d = hnsw__indeg_at(h, slot);
	uint32_t v = atomic_load_explicit(d, memory_order_relaxed);

	if (!hnsw__indeg_counted(h, slot))
		return true; /* a deleted point's count is not kept */
	do                   /* not the last in-link, nor the last but one of a closed pair */
		if (v <= 1 || (v == 2 && hnsw__indeg_pair_only(h, slot)))
			return false;
	while (!atomic_compare_exchange_weak_explicit(d, &v, v - 1, memory_order_relaxed,
						      memory_order_relaxed));
	return true;
}

/* May y give x an in-link?  Not the version x replaces (about to go),
 * nor a point whose only in-link may be x's own (the search can reach it
 * through x: the two would form a closed pair). */
static bool may_rescue(const struct hnsw *h, uint32_t y, uint32_t x)
{
	return y != hnsw__node_at(h, x)->prev &&
	       atomic_load(&hnsw__node_at(h, y)->state) == HNSW_SLOT_LIVE &&
	       !(atomic_load(hnsw__indeg_at(h, y)) <= 1 && hnsw__links_to(h, x, 0, y));
}

void hnsw__rescue(struct hnsw *h, struct hnsw_scratch *s, uint32_t x, uint64_t ep)
{
	size_t nr = search_near(h, s, x, ep, NULL);

	hnsw__sort_cands(s->sel, nr);
	for (size_t i = 0; i < nr; i++)
		if (may_rescue(h, s->sel[i].slot, x) && link_room(h, s->sel[i].slot, x))
			return;
	for (size_t i = 0; i < nr; i++)
		if (may_rescue(h, s->sel[i].slot, x) && link_spare(h, NULL, s->sel[i].slot, x))
			return;
	atomic_fetch_add(&h->dropped, 1); /* none could: the next walk links it in */
}

void hnsw__indeg_recount(struct hnsw *h)
{
	uint32_t n = atomic_load(&h->n_slots), e;
	uint64_t ep = atomic_load(&h->ep);
	struct hnsw_scratch *s;

	for (uint32_t slot = 0; slot < n; slot++)
		atomic_store(hnsw__indeg_at(h, slot), 0);
	for (uint32_t slot = 0; slot < n; slot++) {
		_Atomic uint32_t *l = hnsw__links_at(h, slot, 0);

		if (!hnsw__indeg_counted(h, slot))
			continue;
		for (uint32_t i = 0; i < h->m0 && (e = hnsw__link_get(l, i)) != HNSW_NO_SLOT; i++)
			hnsw__indeg_add(h, e);
	}
	s = hnsw__scratch_get(h);
	if (ep == HNSW_EP_EMPTY || s == NULL || hnsw__scratch_fit(h, s, h->p.ef_construction) != 0)
		goto out; /* out of memory: the walks still link them in */
	for (uint32_t slot = 0; slot < n; slot++)
		if (slot != (uint32_t)ep &&
		    atomic_load(&hnsw__node_at(h, slot)->state) == HNSW_SLOT_LIVE &&
		    atomic_load(hnsw__indeg_at(h, slot)) == 0)
			hnsw__rescue(h, s, slot, ep);
out:
	hnsw__scratch_put(h, s);
}
