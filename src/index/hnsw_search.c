/*
 * hnsw_search: searching the graph — SEARCH-LAYER (Alg. 2), the greedy
 * descent of K-NN-SEARCH (Alg. 5), exact brute force, and the pool of
 * per-search scratch memory.
 *
 * Readers take no lock: they enter an epoch (hnsw.c) and read links with
 * acquire loads.  Deleted points are traversed (their links still help
 * navigation until repaired) but never returned.  Every result is mapped to
 * the current version of its point at the end (hnsw__current: an upsert in
 * flight or just done), then deduplicated, so that a search meets an
 * updated point as its old or its new version, once.
 *
 * With int8 quantization trained, the traversal compares 8-bit codes and the
 * ef best candidates are re-scored with float32 vectors before the k best
 * are returned.
 */
#include "build.h"

#include "index/hnsw_impl.h"

#include "util/alloc.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------ heaps */

static inline void sift_up_min(struct hnsw_cand *h, size_t i)
{
	struct hnsw_cand c = h[i];

	while (i > 0 && h[(i - 1) / 2].d > c.d) {
		h[i] = h[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h[i] = c;
}

static inline void sift_down_min(struct hnsw_cand *h, size_t n, size_t i)
{
	struct hnsw_cand c = h[i];

	for (;;) {
		size_t l = 2 * i + 1, m;

		if (l >= n)
			break;
		m = (l + 1 < n && h[l + 1].d < h[l].d) ? l + 1 : l;
		if (h[m].d >= c.d)
			break;
		h[i] = h[m];
		i = m;
	}
	h[i] = c;
}

static inline void sift_up_max(struct hnsw_cand *h, size_t i)
{
	struct hnsw_cand c = h[i];

	while (i > 0 && h[(i - 1) / 2].d < c.d) {
		h[i] = h[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h[i] = c;
}

static inline void sift_down_max(struct hnsw_cand *h, size_t n, size_t i)
{
	struct hnsw_cand c = h[i];

	for (;;) {
		size_t l = 2 * i + 1, m;

		if (l >= n)
			break;
		m = (l + 1 < n && h[l + 1].d > h[l].d) ? l + 1 : l;
		if (h[m].d <= c.d)
			break;
		h[i] = h[m];
		i = m;
	}
	h[i] = c;
}

static void heap_push_max(struct hnsw_cand *heap, size_t *n, struct hnsw_cand c)
{
	heap[*n] = c;
	sift_up_max(heap, (*n)++);
}

/* ------------------------------------------------------------ scratch */

void hnsw__scratch_free(struct hnsw_scratch *s)
{
	if (s == NULL)
		return;
	sh_free(s->vset);
	sh_free(s->cands);
	sh_free(s->res);
	sh_free(s->qvec);
	sh_free(s->qcode);
	sh_free(s->sel);
	sh_free(s->ids);
	sh_free(s);
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
	void *q;

	if (*cap >= need)
		return 0;
	q = sh_reallocarray(*p, need, size);
	if (q == NULL)
		return SH_ENOMEM;
	*p = q;
	*cap = need;
	return 0;
}

int hnsw__scratch_fit(const struct hnsw *h, struct hnsw_scratch *s, size_t ef)
{
	size_t dim = h->p.dim, m0 = h->m0, want = 2 * ef * m0;
	size_t slots = atomic_load_explicit(&hnsw__mut(h)->n_slots, memory_order_relaxed);
	unsigned bits = 10;

	if (want > 2 * slots + 2)
		want = 2 * slots + 2; /* a search cannot see more points than there are */
	while (((size_t)1 << bits) < want && bits < HNSW_VISITED_START_BITS)
		bits++;
	if (s->vset == NULL || s->vbits != bits) {
		uint32_t *v = sh_realloc(s->vset, ((size_t)1 << bits) * sizeof *v);

		if (v == NULL)
			return SH_ENOMEM;
		s->vset = v;
		s->vbits = bits;
	}
	if (grow((void **)&s->res, &s->rcap, ef + 1, sizeof(struct hnsw_cand)) != 0 ||
	    grow((void **)&s->cands, &s->ccap, 2 * ef + m0 + 1, sizeof(struct hnsw_cand)) != 0 ||
	    grow((void **)&s->sel, &s->selcap, ef + m0 + 2, sizeof(struct hnsw_cand)) != 0 ||
	    grow((void **)&s->ids, &s->idcap, m0 + 1, sizeof(uint32_t)) != 0)
		return SH_ENOMEM;
	if (s->qvec == NULL) {
		s->qvec = sh_aligned_alloc(64, (dim * sizeof(float) + 63) & ~(size_t)63);
		s->qcode = sh_aligned_alloc(64, (dim + 63) & ~(size_t)63);
		if (s->qvec == NULL || s->qcode == NULL)
			return SH_ENOMEM;
	}
	return 0;
}

bool hnsw__scratch_grow_visited(struct hnsw_scratch *s)
{
	size_t cap = (size_t)1 << s->vbits;
	uint32_t *old = s->vset, *v = sh_malloc(2 * cap * sizeof *v);

	if (v == NULL || s->vbits >= 30) {
		sh_free(v);
		return false;
	}
	memset(v, 0xff, 2 * cap * sizeof *v);
	s->vset = v;
	s->vbits++;
	s->vcount = 0;
	for (size_t i = 0; i < cap; i++)
		if (old[i] != HNSW_NO_SLOT)
			hnsw__visit(s, old[i]);
	sh_free(old);
	return true;
}

struct hnsw_scratch *hnsw__scratch_get(const struct hnsw *h)
{
	struct hnsw_scratch_pool *pool = &hnsw__mut(h)->pool;
	struct hnsw_scratch *s = NULL;

	pthread_mutex_lock(&pool->lock);
	if (pool->n > 0)
		s = pool->free[--pool->n];
	pthread_mutex_unlock(&pool->lock);
	if (s == NULL && (s = sh_calloc(1, sizeof *s)) != NULL)
		s->skip = HNSW_NO_SLOT;
	return s;
}

void hnsw__scratch_put(const struct hnsw *h, struct hnsw_scratch *s)
{
	struct hnsw_scratch_pool *pool = &hnsw__mut(h)->pool;

	if (s == NULL)
		return;
	if (s->vbits > HNSW_VISITED_START_BITS) { /* grown by a wide search: not kept */
		sh_free(s->vset);
		s->vset = NULL;
		s->vbits = 0;
	}
	pthread_mutex_lock(&pool->lock);
	if (pool->n == pool->cap) {
		size_t cap = pool->cap ? pool->cap * 2 : 8;
		struct hnsw_scratch **f = sh_reallocarray(pool->free, cap, sizeof *f);

		if (f == NULL) {
			pthread_mutex_unlock(&pool->lock);
			hnsw__scratch_free(s);
			return;
		}
		pool->free = f;
		pool->cap = cap;
	}
	pool->free[pool->n++] = s;
	pthread_mutex_unlock(&pool->lock);
}

int hnsw__scratch_sel(struct hnsw_scratch *s, size_t n)
{
	return grow((void **)&s->sel, &s->selcap, n, sizeof(struct hnsw_cand));
}

void hnsw__scratch_begin(struct hnsw_scratch *s)
{
	memset(s->vset, 0xff, ((size_t)1 << s->vbits) * sizeof *s->vset);
	s->vcount = 0;
}

/* ------------------------------------------------------------ distances */

static inline __attribute__((always_inline)) float
dist_q(const struct hnsw *h, const struct hnsw_scratch *s, uint32_t slot, bool quant)
{
	const struct quant *q = &h->quant;
	const uint8_t *c;
	float d;

	if (!quant)
		return hnsw__dist_slot(h, s->qvec, slot);
	c = hnsw__code_at(h, slot);
	if (h->p.metric == SH_METRIC_L2)
		return q->scale * q->scale * (float)h->k->u8_l2sq(s->qcode, c, h->p.dim);
	d = q->scale * q->scale *
	    (float)h->k->s8_dot((const int8_t *)s->qcode, (const int8_t *)c, h->p.dim);
	return h->bias - d;
}

static inline const void *point_data(const struct hnsw *h, uint32_t slot, bool quant)
{
	return quant ? (const void *)hnsw__code_at(h, slot) : (const void *)hnsw__vec_at(h, slot);
}

/* May slot be a result?  ACCEPT_ALL when no hidden point can be met (no
 * deletion pending when the search began), which spares a random read of
 * the node per candidate; the results are resolved at the end anyway. */
static inline bool accept(const struct hnsw *h, const struct hnsw_scratch *s, uint32_t slot,
			  hnsw_filter_fn filter, void *arg, enum hnsw__accept mode)
{
	const struct hnsw_node *n;
	uint8_t st;

	if (mode == HNSW__ACCEPT_ALL && filter == NULL)
		return true;
	n = hnsw__node_at(h, slot);
	if (mode == HNSW__ACCEPT_QUERY && !hnsw__visible(n, s->start))
		return false;
	if (mode == HNSW__ACCEPT_INSERT) {
		st = atomic_load_explicit(&hnsw__node_mut(n)->state, memory_order_acquire);
		if (slot == s->skip || (st != HNSW_SLOT_LIVE && st != HNSW_SLOT_NEW))
			return false;
	}
	return filter == NULL || filter(n->id, arg);
}

/* Prefetch a point's data: every cache line of it, up to 8 (the hardware
 * prefetcher streams the rest of a long vector). */
static inline void prefetch_point(const void *p, size_t bytes)
{
	const char *c = p;

	for (size_t off = 0; off < bytes && off < 512; off += 64)
		__builtin_prefetch(c + off);
}

/* ------------------------------------------------------------ Alg. 2 */

/* Collect the unvisited neighbours of slot at level into s->ids and prefetch
 * their data; returns how many. */
static inline __attribute__((always_inline)) size_t
unvisited(const struct hnsw *h, struct hnsw_scratch *s, uint32_t slot, int level, bool quant)
{
	_Atomic uint32_t *l = hnsw__links_at(h, slot, level);
	uint32_t cap = hnsw__max_links(h, level), e;
	size_t n = 0;

	for (uint32_t i = 0; i < cap && (e = hnsw__link_get(l, i)) != HNSW_NO_SLOT; i++)
		if (hnsw__visit(s, e))
			s->ids[n++] = e;
	return n;
}

/* A result *e met as a version that is not current (an upsert in flight or
 * switched during this search): take the current version instead, as a
 * candidate of its own, unless this search has seen it already; so that
 * versions of one point, switched again and again while a search waits,
 * do not crowd others out of its ef results.  False: nothing to add. */
static bool take_current(const struct hnsw *h, struct hnsw_scratch *s, uint32_t *e, float *d,
			 size_t *nc, bool quant)
{
	uint32_t cur = hnsw__current(h, *e);

	if (cur == HNSW_NO_SLOT || !hnsw__visit(s, cur))
		return false;
	if (*nc == s->ccap &&
	    grow((void **)&s->cands, &s->ccap, 2 * s->ccap, sizeof *s->cands) != 0)
		return false;
	*e = cur;
	*d = dist_q(h, s, cur, quant);
	s->cands[*nc] = (struct hnsw_cand){*d, cur};
	sift_up_min(s->cands, (*nc)++);
	return true;
}

/* Neighbours' data are fetched PREFETCH_AHEAD entries ahead of use: enough
 * to hide the latency, few enough not to fill the CPU's miss buffers. */
#define PREFETCH_AHEAD 4

static inline __attribute__((always_inline)) size_t
search_layer_impl(const struct hnsw *h, struct hnsw_scratch *s, uint32_t ep, float ep_d,
		  uint32_t ep2, size_t ef, int level, hnsw_filter_fn filter, void *arg,
		  enum hnsw__accept mode, bool quant)
{
	struct hnsw_cand *cands = s->cands, *res = s->res;
	size_t nc = 0, nr = 0, stride = quant ? h->codes.stride : h->vecs.stride;
	uint64_t calls = 0;

	hnsw__scratch_begin(s);
	hnsw__visit(s, ep);
	cands[nc++] = (struct hnsw_cand){ep_d, ep};
	if (accept(h, s, ep, filter, arg, mode))
		res[nr++] = (struct hnsw_cand){ep_d, ep};
	if (ep2 != HNSW_NO_SLOT && hnsw__visit(s, ep2)) { /* a second way in */
		struct hnsw_cand c = {dist_q(h, s, ep2, quant), ep2};

		cands[nc] = c;
		sift_up_min(cands, nc++);
		if (accept(h, s, ep2, filter, arg, mode))
			heap_push_max(res, &nr, c);
	}
	while (nc > 0) {
		struct hnsw_cand c = cands[0];
		size_t n;

		if (nr >= ef && c.d > res[0].d)
			break; /* the nearest candidate is farther than the worst result */
		cands[0] = cands[--nc];
		sift_down_min(cands, nc, 0);
		if (nc > 0 && level == 0) /* the next one to expand, most likely */
			__builtin_prefetch(hnsw__links_at(h, cands[0].slot, 0));
		n = unvisited(h, s, c.slot, level, quant);
		calls += n;
		for (size_t i = 0; i < n && i < PREFETCH_AHEAD; i++)
			prefetch_point(point_data(h, s->ids[i], quant), stride);
		for (size_t i = 0; i < n; i++) {
			uint32_t e = s->ids[i];
			float d;

			if (i + PREFETCH_AHEAD < n)
				prefetch_point(point_data(h, s->ids[i + PREFETCH_AHEAD], quant),
					       stride);
			d = dist_q(h, s, e, quant);

			if (nr >= ef && d >= res[0].d)
				continue;
			if (nc == s->ccap &&
			    grow((void **)&s->cands, &s->ccap, 2 * s->ccap, sizeof *cands) != 0)
				continue; /* out of memory: drop this candidate, stay correct */
			cands = s->cands;
			cands[nc] = (struct hnsw_cand){d, e};
			sift_up_min(cands, nc++);
			if (!accept(h, s, e, filter, arg, mode))
				continue;
			if (mode == HNSW__ACCEPT_QUERY && !hnsw__is_current(hnsw__node_at(h, e))) {
				bool took = take_current(h, s, &e, &d, &nc, quant);

				cands = s->cands; /* it may have grown */
				if (!took)
					continue;
			}
			if (nr >= ef && d >= res[0].d)
				continue;
			if (nr < ef) {
				res[nr] = (struct hnsw_cand){d, e};
				sift_up_max(res, nr++);
			} else {
				res[0] = (struct hnsw_cand){d, e};
				sift_down_max(res, nr, 0);
			}
		}
	}
	atomic_fetch_add_explicit(&hnsw__mut(h)->dist_calls, calls, memory_order_relaxed);
	return nr;
}

static size_t search_layer_f(const struct hnsw *h, struct hnsw_scratch *s, uint32_t ep, float ep_d,
			     uint32_t ep2, size_t ef, int level, hnsw_filter_fn filter, void *arg,
			     enum hnsw__accept mode)
{
	return search_layer_impl(h, s, ep, ep_d, ep2, ef, level, filter, arg, mode, false);
}

static size_t search_layer_q(const struct hnsw *h, struct hnsw_scratch *s, uint32_t ep, float ep_d,
			     uint32_t ep2, size_t ef, int level, hnsw_filter_fn filter, void *arg,
			     enum hnsw__accept mode)
{
	return search_layer_impl(h, s, ep, ep_d, ep2, ef, level, filter, arg, mode, true);
}

size_t hnsw__search_layer(const struct hnsw *h, struct hnsw_scratch *s, const float *q, uint32_t ep,
			  float ep_d, size_t ef, int level, hnsw_filter_fn filter, void *arg,
			  enum hnsw__accept mode)
{
	if (q != s->qvec)
		memcpy(s->qvec, q, h->p.dim * sizeof(float));
	return search_layer_f(h, s, ep, ep_d, HNSW_NO_SLOT, ef, level, filter, arg, mode);
}

/* Alg. 5 lines 1-5: from the top level down to stop + 1, move to the
 * nearest neighbour until no neighbour is nearer (SEARCH-LAYER with ef = 1). */
static uint32_t greedy(const struct hnsw *h, const struct hnsw_scratch *s, uint32_t ep, int top,
		       int stop, float *ep_d, bool quant)
{
	float best = *ep_d;

	for (int level = top; level > stop; level--) {
		bool moved = true;

		while (moved) {
			_Atomic uint32_t *l = hnsw__links_at(h, ep, level);
			uint32_t e;

			moved = false;
			for (uint32_t i = 0;
			     i < h->p.m && (e = hnsw__link_get(l, i)) != HNSW_NO_SLOT; i++) {
				float d = dist_q(h, s, e, quant);

				if (d < best) {
					best = d;
					ep = e;
					moved = true;
				}
			}
		}
	}
	*ep_d = best;
	return ep;
}

uint32_t hnsw__greedy_descend(const struct hnsw *h, const struct hnsw_scratch *s, uint32_t ep,
			      int top, int stop, float *ep_d)
{
	return greedy(h, s, ep, top, stop, ep_d, false);
}

/* ------------------------------------------------------------ k-NN */

static int prepare_query(const struct hnsw *h, struct hnsw_scratch *s, const float *query,
			 bool quant, struct sh_err *err)
{
	int rv = hnsw__prepare_vector(h, query, s->qvec, err);

	if (rv != 0)
		return sh_err_wrap(err, rv, "query");
	if (quant)
		quant_encode(&h->quant, s->qvec, h->p.dim, s->qcode);
	return 0;
}

/* ------------------------------------------------------------ results */

/* The heap s->res[0..nr) to a list, nearest first; re-scored in float32
 * first when the traversal used codes. */
static void sort_results(const struct hnsw *h, struct hnsw_scratch *s, size_t nr, bool quant)
{
	if (quant) {
		/* all the float vectors at once: their cache misses overlap */
		for (size_t i = 0; i < nr; i++)
			prefetch_point(hnsw__vec_at(h, s->res[i].slot), h->vecs.stride);
		for (size_t i = 0; i < nr; i++)
			s->res[i].d = hnsw__dist_slot(h, s->qvec, s->res[i].slot);
	}
	hnsw__sort_cands(s->res, nr);
}

/* Map every candidate to the current version of its point (hnsw__current),
 * re-scoring those that moved and dropping deleted ones (to the end, at
 * an infinite distance); again when an upsert switched versions meanwhile,
 * so that all of them are resolved against one state.  False when that did
 * not settle (a writer updating without pause): ids may then repeat. */
static bool resolve_all(const struct hnsw *h, struct hnsw_scratch *s, size_t nr)
{
	struct hnsw *w = hnsw__mut(h);

	for (int tries = 0; tries < 4; tries++) {
		uint64_t seq = atomic_load_explicit(&w->switches, memory_order_acquire);

		for (size_t i = 0; i < nr; i++) {
			struct hnsw_cand *c = &s->res[i];
			uint32_t cur =
				c->slot == HNSW_NO_SLOT ? c->slot : hnsw__current(h, c->slot);

			if (cur == c->slot)
				continue;
			if (cur == HNSW_NO_SLOT)
				*c = (struct hnsw_cand){HUGE_VALF, HNSW_NO_SLOT};
			else
				*c = (struct hnsw_cand){hnsw__dist_slot(h, s->qvec, cur), cur};
		}
		if ((seq & 1) == 0 &&
		    atomic_load_explicit(&w->switches, memory_order_acquire) == seq)
			return true;
	}
	return false;
}

static bool has_id(const struct hnsw_result *out, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (out[i].id == id)
			return true;
	return false;
}

/* The sorted candidates s->res[0..nr) to out: at most k, each point once,
 * as its current version.  When the k nearest are all current and no
 * upsert switched versions meanwhile, they are the answer as they are (the
 * common case: k node reads); otherwise every candidate is resolved first,
 * and a point met as two versions then shows as the same slot twice, at
 * the same distance, next to each other. */
static size_t finish(const struct hnsw *h, struct hnsw_scratch *s, size_t nr, size_t k,
		     struct hnsw_result *out)
{
	struct hnsw *w = hnsw__mut(h);
	uint64_t seq = atomic_load_explicit(&w->switches, memory_order_acquire);
	size_t n = nr < k ? nr : k, kept = 0;
	bool plain = (seq & 1) == 0, settled = true;

	for (size_t i = 0; i < n && plain; i++)
		plain = hnsw__is_current(hnsw__node_at(h, s->res[i].slot));
	if (!plain || atomic_load_explicit(&w->switches, memory_order_acquire) != seq) {
		settled = resolve_all(h, s, nr);
		hnsw__sort_cands(s->res, nr);
	}
	for (size_t i = 0; i < nr && kept < k; i++) {
		struct hnsw_cand c = s->res[i];
		uint64_t id;

		if (c.slot == HNSW_NO_SLOT)
			break; /* deleted ones sort last */
		if (i > 0 && c.slot == s->res[i - 1].slot)
			continue;
		id = hnsw__node_at(h, c.slot)->id;
		if (!settled && has_id(out, kept, id))
			continue;
		out[kept++] = (struct hnsw_result){id, c.d};
	}
	return kept;
}

/* ------------------------------------------------------------ k-NN */

static int check_k(size_t k, size_t *ef, struct sh_err *err)
{
	if (k < 1 || k > HNSW_MAX_EF)
		return sh_err_set(err, SH_EINVAL, "k = %zu is outside 1..%d", k, HNSW_MAX_EF);
	if (*ef == 0)
		*ef = k > 40 ? k : 40;
	if (*ef < k || *ef > HNSW_MAX_EF)
		return sh_err_set(err, SH_EINVAL, "ef = %zu is outside k..%d (k = %zu)", *ef,
				  HNSW_MAX_EF, k);
	return 0;
}

static int knn(const struct hnsw *h, struct hnsw_scratch *s, const float *query, size_t k,
	       size_t ef, hnsw_filter_fn filter, void *arg, struct hnsw_result *out, size_t *n_out,
	       struct sh_err *err)
{
	uint64_t ep = atomic_load_explicit(&hnsw__mut(h)->ep, memory_order_acquire);
	bool quant = atomic_load_explicit(&hnsw__mut(h)->quant_ready, memory_order_acquire);
	uint32_t cur;
	float d;
	size_t nr;
	enum hnsw__accept mode;
	int rv;

	if (ep == HNSW_EP_EMPTY)
		return 0;
	rv = hnsw__scratch_fit(h, s, ef);
	if (rv != 0)
		return sh_err_set(err, rv, "search: out of memory");
	if ((rv = prepare_query(h, s, query, quant, err)) != 0)
		return rv;
	s->start = (uint32_t)atomic_load_explicit(&hnsw__mut(h)->switches, memory_order_acquire);
	cur = (uint32_t)ep;
	d = dist_q(h, s, cur, quant);
	cur = greedy(h, s, cur, (int)(ep >> 32), 0, &d, quant);
	mode = atomic_load(&hnsw__mut(h)->dead) > 0 ? HNSW__ACCEPT_QUERY : HNSW__ACCEPT_ALL;
	/* from where the descent ended, and from the entry point, from which
	 * every point is reachable (hnsw_impl.h, "Reachability") */
	nr = quant ? search_layer_q(h, s, cur, d, (uint32_t)ep, ef, 0, filter, arg, mode)
		   : search_layer_f(h, s, cur, d, (uint32_t)ep, ef, 0, filter, arg, mode);
	sort_results(h, s, nr, quant);
	*n_out = finish(h, s, nr, k, out);
	return 0;
}

/* ------------------------------------------------------------ exact */

/* Room for n results in s->res. */
static int res_room(struct hnsw_scratch *s, size_t n)
{
	return grow((void **)&s->res, &s->rcap, n + 1, sizeof(struct hnsw_cand));
}

/* Every visible point (hnsw__visible) in slot order, the nearest kept in
 * s->res.  A point met twice (as two versions, or as a version and the one
 * it resolves to) takes one more place, so that k distinct points remain
 * after finish(): one for each slot met that is not its point's current
 * version, and one for each upsert that switched versions during the scan. */
static size_t scan_all(const struct hnsw *h, struct hnsw_scratch *s, size_t k,
		       hnsw_filter_fn filter, void *arg)
{
	struct hnsw *w = hnsw__mut(h);
	uint32_t n = atomic_load_explicit(&w->n_slots, memory_order_acquire);
	uint64_t seq0 = atomic_load_explicit(&w->switches, memory_order_acquire);
	size_t nr = 0, cap = k, extra = seq0 & 1;

	s->start = (uint32_t)seq0;
	for (uint32_t slot = 0; slot < n; slot++) {
		float d;

		if (!accept(h, s, slot, filter, arg, HNSW__ACCEPT_QUERY))
			continue;
		if (!hnsw__is_current(hnsw__node_at(h, slot)))
			extra++;
		d = hnsw__dist_slot(h, s->qvec, slot);
		if (nr == cap) { /* whatever d: duplicates could push out a farther point */
			uint64_t sw =
				atomic_load_explicit(&w->switches, memory_order_relaxed) - seq0;
			size_t want = k + extra + (size_t)((sw + 1) / 2);

			if (want > cap && res_room(s, want) == 0)
				cap = want;
		}
		if (nr < cap) {
			heap_push_max(s->res, &nr, (struct hnsw_cand){d, slot});
		} else if (d < s->res[0].d) {
			s->res[0] = (struct hnsw_cand){d, slot};
			sift_down_max(s->res, nr, 0);
		}
	}
	return nr;
}

static int exact(const struct hnsw *h, struct hnsw_scratch *s, const float *query, size_t k,
		 hnsw_filter_fn filter, void *arg, struct hnsw_result *out, size_t *n_out,
		 struct sh_err *err)
{
	size_t nr;
	int rv = hnsw__scratch_fit(h, s, k);

	if (rv != 0)
		return sh_err_set(err, rv, "search: out of memory");
	if ((rv = prepare_query(h, s, query, false, err)) != 0)
		return rv;
	nr = scan_all(h, s, k, filter, arg);
	sort_results(h, s, nr, false);
	*n_out = finish(h, s, nr, k, out);
	return 0;
}

/* ------------------------------------------------------------ entry points */

int hnsw_search(const struct hnsw *h, const float *query, size_t k, size_t ef,
		hnsw_filter_fn filter, void *arg, struct hnsw_result *out, size_t *n_out,
		struct sh_err *err)
{
	struct hnsw_scratch *s;
	int parity, rv;

	*n_out = 0;
	if ((rv = check_k(k, &ef, err)) != 0)
		return rv;
	if ((s = hnsw__scratch_get(h)) == NULL)
		return sh_err_set(err, SH_ENOMEM, "search: out of memory");
	hnsw__epoch_enter(h, &parity);
	rv = knn(h, s, query, k, ef, filter, arg, out, n_out, err);
	if (rv == 0 && filter == NULL && *n_out < k && *n_out < hnsw_count(h)) {
		/* the graph missed points it holds: answer right, and count it */
		atomic_fetch_add_explicit(&hnsw__mut(h)->fallbacks, 1, memory_order_relaxed);
		rv = exact(h, s, query, k, NULL, NULL, out, n_out, err);
	}
	hnsw__epoch_exit(h, parity);
	hnsw__scratch_put(h, s);
	return rv;
}

int hnsw_search_exact(const struct hnsw *h, const float *query, size_t k, hnsw_filter_fn filter,
		      void *arg, struct hnsw_result *out, size_t *n_out, struct sh_err *err)
{
	size_t ef = k;
	struct hnsw_scratch *s;
	int parity, rv;

	*n_out = 0;
	if ((rv = check_k(k, &ef, err)) != 0)
		return rv;
	if ((s = hnsw__scratch_get(h)) == NULL)
		return sh_err_set(err, SH_ENOMEM, "search: out of memory");
	hnsw__epoch_enter(h, &parity);
	rv = exact(h, s, query, k, filter, arg, out, n_out, err);
	hnsw__epoch_exit(h, parity);
	hnsw__scratch_put(h, s);
	return rv;
}
