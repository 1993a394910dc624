/*
 * hnsw_delete: deleting points without leaving tombstones in the graph.
 *
 * The HNSW paper does not delete.  hnswlib marks deleted points and can
 * only overwrite them with later inserts; their links stay.  Here a deleted
 * point is repaired away in two steps, in the spirit of FreshDiskANN's
 * delete consolidation (Singh et al., 2021):
 *
 *  1. at once (hnsw__delete_slot): the point stops being a result, leaves
 *     the id map (hnsw_delete), and each of its out-neighbours that links
 *     back to it has its link to it replaced, in place, from the live links
 *     of its deleted links (Alg. 4 with its live links as kept ones); links
 *     to other deleted points stay until step 2, as routes — in HNSW most
 *     links are mutual, so this reconnects most of the neighbourhood
 *     immediately, and cheaply;
 *  2. in batches (hnsw__repair_pending), once enough deletions are pending:
 *     every live point is scanned and any list still naming a deleted point
 *     is chosen again, from its live links, those of its deleted links and
 *     the nearest points a search from the point itself finds
 *     (ef_construction wide, as an insert).  After that no live list names
 *     a pending point, so their slots go to limbo (hnsw.c) and are reused
 *     once no search can still hold them.
 *
 * Either way a list keeps as many links as it had (Alg. 4, then the nearest
 * of the candidates it pruned: hnsw__select_fill), and each point Alg. 4
 * newly chose (not the fill) gets the back-link an insert would give it,
 * where its list has room (hnsw__link_back_room: nothing is dropped).  All three come
 * from rewriting every point of an index again and again (issue 11):
 * choosing only among old links and the deleted points' links, with Alg. 4
 * alone, lists thinned out (level-0 degree 19.3 -> 16.3 at m = 16) and
 * recall@10 at ef 20 on 32-d Gaussian data fell from 0.773 to 0.71; with
 * the search and the fill but no back-links, the points a repaired list
 * chose never got back the in-links the deleted points had given them,
 * and the degree still fell (14.3 -> 12.1 on 200,000 x 128 after one
 * rewrite, recall@10 at ef 20 0.998 -> 0.995); with them it stays at
 * about 15.1 and recall at or above a fresh build's, with fewer distance
 * computations per query (t/hnsw.c test_rewrite_recall; doc/benchmarks.md;
 * back-linking the fill too overshot to 20.8).  The search costs
 * about an insert per point repaired in a batch.
 *
 * Searches run alongside, and the writer does not make a point disappear
 * from them: a repair never drops a live link at deletion (only the link
 * to the deleted point is replaced, in place); the points whose only
 * in-link from a live point was the deleted point's get one at once, while
 * it still routes (rescue_orphans); a batch never drops a point's last
 * in-link (hnsw__indeg_drop), writes every list in place
 * (hnsw__links_write), and makes every live point reachable through live
 * points alone (hnsw__reconnect_at) before the deleted ones stop routing
 * (doc/index.md, "Reachability"; t/hnsw_cut.c checks after every list).
 *
 * Until step 2, deleted points still route searches (their links are
 * intact), which keeps the graph navigable in between.  The writer only.
 */
#include "build.h"

#include "index/hnsw_impl.h"

#include "util/alloc.h"

static bool is_deleted(const struct hnsw *h, uint32_t slot)
{
	return atomic_load_explicit(&hnsw__node_at(h, slot)->state, memory_order_acquire) !=
	       HNSW_SLOT_LIVE;
}

/* Add slot e to the candidates s->sel[0..*n) unless seen; distance to v. */
static void add_cand(struct hnsw *h, struct hnsw_scratch *s, const float *v, uint32_t e, size_t *n)
{
	if (is_deleted(h, e) || !hnsw__visit(s, e))
		return;
	if (hnsw__scratch_sel(s, *n + 1) != 0)
		return; /* out of memory: fewer candidates, still a valid list */
	s->sel[(*n)++] = (struct hnsw_cand){hnsw__dist_vec(h, v, hnsw__vec_at(h, e)), e};
}

/* Write the new entries ids[0..n) into nb's list l in place of its link
 * to `gone` (the point being deleted), position by position: a live link
 * never moves nor goes away, so a search reading the list meanwhile sees
 * every live link, and the link to gone as it was or replaced.  Links to
 * other deleted points stay: they still route, and may be the only way to
 * a live point whose live in-links are all gone (every version that
 * linked to it replaced: t/write_path.c, test_midwrite_reach); the batch
 * repair drops them, and reconnects once its scan is done
 * (hnsw__reconnect_at).  A link to gone left over (no candidate) is
 * removed by moving the last entry into its place.  Returns how many of
 * ids it wrote (counted in: hnsw__indeg_add). */
static size_t replace_deleted(struct hnsw *h, uint32_t nb, _Atomic uint32_t *l, uint32_t cap,
			      uint32_t gone, const uint32_t *ids, size_t n)
{
	uint32_t len = hnsw__links_len(l, cap), e;
	size_t next = 0;

	hnsw__node_lock(hnsw__node_at(h, nb));
	for (uint32_t i = 0; i < len; i++)
		if (hnsw__link_get(l, i) == gone && next < n) {
			atomic_store_explicit(&l[i], ids[next], memory_order_release);
			if (l == hnsw__links_at(h, nb, 0))
				hnsw__indeg_add(h, ids[next]);
			next++;
		}
	/* a deleted point still routes until retired: a link to it can be the
	 * only way to some point */
	atomic_fetch_add_explicit(&h->dropped, next, memory_order_relaxed);
	for (uint32_t i = 0; i < len;) {
		if (hnsw__link_get(l, i) != gone) {
			i++;
			continue;
		}
		e = hnsw__link_get(l, --len);
		atomic_store_explicit(&l[i], e, memory_order_release);
		atomic_store_explicit(&l[len], HNSW_NO_SLOT, memory_order_release);
		atomic_fetch_add_explicit(&h->dropped, 1, memory_order_relaxed);
	}
	hnsw__node_unlock(hnsw__node_at(h, nb));
	hnsw__midwrite(h);
	return next;
}

/* The candidates for nb's list at level into s->sel: its live links first
 * (*kept of them), then the points of `found` search results in s->res,
 * then the live links of its deleted links; returns how many in all. */
static size_t gather(struct hnsw *h, struct hnsw_scratch *s, uint32_t nb, int level, size_t found,
		     size_t *kept)
{
	uint32_t cap = hnsw__max_links(h, level), e, f;
	_Atomic uint32_t *l = hnsw__links_at(h, nb, level);
	const float *v = hnsw__vec_at(h, nb);
	size_t nc = 0;

	hnsw__scratch_begin(s);
	hnsw__visit(s, nb);
	for (uint32_t i = 0; i < cap && (e = hnsw__link_get(l, i)) != HNSW_NO_SLOT; i++)
		add_cand(h, s, v, e, &nc); /* the live ones */
	*kept = nc;
	for (size_t i = 0; i < found; i++)
		add_cand(h, s, v, s->res[i].slot, &nc);
	for (uint32_t i = 0; i < cap && (e = hnsw__link_get(l, i)) != HNSW_NO_SLOT; i++) {
		if (!is_deleted(h, e))
			continue;
		_Atomic uint32_t *el = hnsw__links_at(h, e, level);

		for (uint32_t j = 0; j < cap && (f = hnsw__link_get(el, j)) != HNSW_NO_SLOT; j++)
			add_cand(h, s, v, f, &nc);
	}
	return nc;
}

/* At deletion, cheap: nb's live links stay (as kept ones for Alg. 4) and
 * its link to gone is replaced, in place, from the live links of its
 * deleted links; the list keeps its length (module comment). */
static void relink(struct hnsw *h, struct hnsw_scratch *s, uint32_t nb, uint32_t gone, int level)
{
	uint32_t cap = hnsw__max_links(h, level), ids[2 * HNSW_MAX_M];
	_Atomic uint32_t *l = hnsw__links_at(h, nb, level);
	size_t kept, had = hnsw__links_len(l, cap), nc = gather(h, s, nb, level, 0, &kept), n;
	size_t chosen, written;

	hnsw__sort_cands(s->sel + kept, nc - kept);
	chosen = kept;
	n = hnsw__select_fill(h, s->sel, &chosen, nc, had, had);
	for (size_t i = kept; i < n; i++)
		ids[i - kept] = s->sel[i].slot;
	written = replace_deleted(h, nb, l, cap, gone, ids, n - kept);
	/* back-links for the new links Alg. 4 chose (not the fill) */
	for (size_t i = 0; i < written && i < chosen - kept; i++)
		hnsw__link_back_room(h, ids[i], nb, level);
}

/* Keep in ids[0..*n) (nb's new level-0 list) every point of its old one
 * that cannot lose this in-link (hnsw__indeg_drop: its last one), in place
 * of the farthest new entries; the others are counted out. */
static void keep_last_links(struct hnsw *h, _Atomic uint32_t *l, uint32_t cap, uint32_t *ids,
			    size_t *n)
{
	uint32_t old[2 * HNSW_MAX_M], len = hnsw__links_len(l, cap), e;
	size_t last = *n;

	for (uint32_t i = 0; i < len; i++)
		old[i] = hnsw__link_get(l, i);
	for (uint32_t i = 0; i < len; i++) {
		e = old[i];
		if (hnsw__holds(ids, *n, e) || hnsw__indeg_drop(h, e))
			continue;
		while (last > 0 && hnsw__holds(old, len, ids[last - 1]))
			last--; /* the farthest entry that is new to the list */
		if (last > 0)
			ids[--last] = e;
		else
			ids[(*n)++] = e; /* room: e is not among ids, old ones all */
	}
}

/* In a batch repair: nb's list at level chosen again from its live links,
 * those of its deleted links and what a search from nb finds, as many as
 * it had; at level 0, without dropping a point's last in-link (indeg, may
 * be NULL); written in place (hnsw__links_write). */
static void relink_search(struct hnsw *h, struct hnsw_scratch *s, uint32_t nb, int level)
{
	uint32_t cap = hnsw__max_links(h, level), ids[2 * HNSW_MAX_M], old[2 * HNSW_MAX_M],
		 heur[2 * HNSW_MAX_M];
	_Atomic uint32_t *l = hnsw__links_at(h, nb, level);
	const float *v = hnsw__vec_at(h, nb);
	size_t kept, had = hnsw__links_len(l, cap), nc, n, found, chosen = 0;

	s->skip = nb; /* the results stay in s->res while the candidates gather */
	found = hnsw__search_layer(h, s, v, nb, hnsw__dist_vec(h, v, v), h->p.ef_construction,
				   level, NULL, NULL, HNSW__ACCEPT_INSERT);
	s->skip = HNSW_NO_SLOT;
	nc = gather(h, s, nb, level, found, &kept);
	hnsw__sort_cands(s->sel, nc);
	n = hnsw__select_fill(h, s->sel, &chosen, nc, cap, had);
	for (size_t i = 0; i < n; i++)
		ids[i] = s->sel[i].slot;
	for (size_t i = 0; i < chosen; i++)
		heur[i] = ids[i];
	if (level == 0)
		keep_last_links(h, l, cap, ids, &n);
	for (uint32_t i = 0; i < had; i++)
		old[i] = hnsw__link_get(l, i);
	hnsw__node_lock(hnsw__node_at(h, nb));
	hnsw__links_write(h, nb, level, ids, (uint32_t)n);
	hnsw__node_unlock(hnsw__node_at(h, nb));
	for (size_t i = 0; i < n && level == 0; i++)
		if (!hnsw__holds(old, had, ids[i]))
			hnsw__indeg_add(h, ids[i]);
	hnsw__midwrite(h);
	/* and, for the points Alg. 4 chose (not the fill), the back-link an
	 * insert would add, where there is room (module comment) */
	for (size_t i = 0; i < chosen; i++)
		if (!hnsw__holds(old, had, heur[i]) && hnsw__holds(ids, n, heur[i]))
			hnsw__link_back_room(h, heur[i], nb, level);
}

static bool has_deleted_link(const struct hnsw *h, uint32_t from, int level)
{
	_Atomic uint32_t *l = hnsw__links_at(h, from, level);
	uint32_t cap = hnsw__max_links(h, level), e;

	for (uint32_t i = 0; i < cap && (e = hnsw__link_get(l, i)) != HNSW_NO_SLOT; i++)
		if (is_deleted(h, e))
			return true;
	return false;
}

/* A live point of the highest level, preferring the deleted entry point's
 * own neighbours (no scan); HNSW_EP_EMPTY when no point is live. */
static uint64_t new_entry(const struct hnsw *h, uint32_t old, int top)
{
	uint32_t n = atomic_load(&hnsw__mut(h)->n_slots), best = HNSW_NO_SLOT, e;
	int best_level = -1;

	for (int level = top; level >= 0; level--) {
		_Atomic uint32_t *l = hnsw__links_at(h, old, level);

		for (uint32_t i = 0;
		     i < hnsw__max_links(h, level) && (e = hnsw__link_get(l, i)) != HNSW_NO_SLOT;
		     i++)
			if (!is_deleted(h, e) && hnsw__node_at(h, e)->level == top)
				return hnsw__ep_pack(top, e);
	}
	for (uint32_t s = 0; s < n; s++) {
		if (!is_deleted(h, s) && hnsw__node_at(h, s)->level > best_level) {
			best = s;
			best_level = hnsw__node_at(h, s)->level;
		}
	}
	return best == HNSW_NO_SLOT ? HNSW_EP_EMPTY : hnsw__ep_pack(best_level, best);
}

/* A new entry point when the current one is deleted, made to reach every
 * live point before searches start from it (live_only: hnsw__reconnect_at). */
static void fix_entry(struct hnsw *h, bool live_only)
{
	uint64_t ep = atomic_load(&h->ep), next;

	if (ep == HNSW_EP_EMPTY || !is_deleted(h, (uint32_t)ep))
		return;
	next = new_entry(h, (uint32_t)ep, (int)(ep >> 32));
	if (next != HNSW_EP_EMPTY)
		hnsw__reconnect_at(h, next, live_only);
	atomic_store(&h->ep, next);
}

static int writer_scratch(struct hnsw *h, struct hnsw_scratch **s)
{
	*s = hnsw__scratch_get(h);
	if (*s == NULL || hnsw__scratch_fit(h, *s, h->p.ef_construction) != 0) {
		hnsw__scratch_put(h, *s);
		return SH_ENOMEM;
	}
	return 0;
}

/* Searches run meanwhile: no list drops a point's last in-link from a live
 * point, every list is written in place, and before the deleted points are
 * retired (no longer routing) every live point is made reachable through
 * live points alone. */
void hnsw__repair_pending(struct hnsw *h)
{
	uint32_t n = atomic_load(&h->n_slots);
	struct hnsw_scratch *s;

	if (h->n_pending == 0 || writer_scratch(h, &s) != 0)
		return;
	for (uint32_t slot = 0; slot < n; slot++) {
		if (is_deleted(h, slot))
			continue;
		for (int level = hnsw__node_at(h, slot)->level; level >= 0; level--)
			if (has_deleted_link(h, slot, level))
				relink_search(h, s, slot, level);
	}
	hnsw__scratch_put(h, s);
	fix_entry(h, true);
	hnsw__reconnect_at(h, atomic_load(&h->ep), true);
	for (size_t i = 0; i < h->n_pending; i++)
		hnsw__epoch_retire(h, h->pending[i]);
	h->n_pending = 0;
}

static void queue_pending(struct hnsw *h, uint32_t slot)
{
	if (h->n_pending == h->pending_cap) {
		size_t cap = h->pending_cap ? h->pending_cap * 2 : 256;
		uint32_t *p = sh_reallocarray(h->pending, cap, sizeof *p);

		if (p == NULL) {
			hnsw__repair_pending(h); /* no room to queue: repair now instead */
			if (h->n_pending == h->pending_cap)
				return; /* the slot stays deleted, never reused: safe */
		} else {
			h->pending = p;
			h->pending_cap = cap;
		}
	}
	h->pending[h->n_pending++] = slot;
}

/* The deleted slot's level-0 links stop counting as in-links; each live
 * point that had no other (but the entry point), or one from a closed
 * pair, gets one from a live point at once, while the deleted point still
 * routes to it. */
static void rescue_orphans(struct hnsw *h, struct hnsw_scratch *s, uint32_t slot)
{
	_Atomic uint32_t *l = hnsw__links_at(h, slot, 0);
	uint32_t e, orphans[2 * HNSW_MAX_M], n = 0;
	uint64_t ep = atomic_load(&h->ep);

	for (uint32_t i = 0; i < h->m0 && (e = hnsw__link_get(l, i)) != HNSW_NO_SLOT; i++)
		if (hnsw__indeg_counted(h, e) && atomic_fetch_sub(hnsw__indeg_at(h, e), 1) <= 2 &&
		    e != (uint32_t)ep)
			orphans[n++] = e;
	for (uint32_t i = 0; i < n; i++) /* none left, or one from a closed pair */
		if (atomic_load(hnsw__indeg_at(h, orphans[i])) == 0 ||
		    (atomic_load(hnsw__indeg_at(h, orphans[i])) == 1 &&
		     hnsw__indeg_pair_only(h, orphans[i])))
			hnsw__rescue(h, s, orphans[i], ep);
}

void hnsw__delete_slot(struct hnsw *h, uint32_t slot)
{
	struct hnsw_node *n = hnsw__node_at(h, slot);
	struct hnsw_scratch *s;

	atomic_fetch_add(&h->dead, 1); /* before the state: readers check it first */
	atomic_store_explicit(&n->state, HNSW_SLOT_DELETED, memory_order_release);
	if (writer_scratch(h, &s) == 0) {
		rescue_orphans(h, s, slot);
		for (int level = n->level; level >= 0; level--) {
			_Atomic uint32_t *l = hnsw__links_at(h, slot, level);
			uint32_t nb;

			for (uint32_t i = 0; i < hnsw__max_links(h, level) &&
					     (nb = hnsw__link_get(l, i)) != HNSW_NO_SLOT;
			     i++)
				if (!is_deleted(h, nb) && hnsw__links_to(h, nb, level, slot))
					relink(h, s, nb, slot, level);
		}
		hnsw__scratch_put(h, s);
	}
	fix_entry(h, false);
	queue_pending(h, slot);
	if (h->n_pending >= 256 && h->n_pending >= hnsw_count(h) / 10)
		hnsw__repair_pending(h);
}

int hnsw_delete(struct hnsw *h, uint64_t id)
{
	uint32_t slot = hnsw__idmap_get(h, id);

	if (slot == HNSW_NO_SLOT)
		return SH_ENOTFOUND;
	hnsw__idmap_del(h, id);
	atomic_fetch_sub(&h->count, 1);
	hnsw__delete_slot(h, slot);
	hnsw__maybe_reconnect(h);
	hnsw__epoch_try_reclaim(h);
	return 0;
}

void hnsw_compact(struct hnsw *h)
{
	if (h->n_pending > 0)
		hnsw__repair_pending(h);
	else
		hnsw__reconnect(h);
	hnsw__epoch_try_reclaim(h);
	hnsw__epoch_try_reclaim(h);
}
