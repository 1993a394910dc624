/*
 * hnsw_search: searching the graph — SEARCH-LAYER (Alg. 2), the greedy
 * descent of K-NN-SEARCH (Alg. 5), exact brute force, and the pool of
 * per-search scratch memory.
 *
 * Readers take no lock: they enter an epoch (hnsw.c) and read links with
 * acquire loads.  Deleted points are traversed (their links still help
 * navigation until repaired) but never returned.
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

static inline void sift_up_min(struct cand *h, size_t i)
{
	struct cand c = h[i];

	while (i > 0 && h[(i - 1) / 2].d > c.d) {
		h[i] = h[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h[i] = c;
}

static inline void sift_down_min(struct cand *h, size_t n, size_t i)
{
	struct cand c = h[i];

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

static inline void sift_up_max(struct cand *h, size_t i)
{
	struct cand c = h[i];

	while (i > 0 && h[(i - 1) / 2].d < c.d) {
		h[i] = h[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h[i] = c;
}

static inline void sift_down_max(struct cand *h, size_t n, size_t i)
{
	struct cand c = h[i];

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

void heap_push_max(struct cand *heap, size_t *n, struct cand c)
{
	heap[*n] = c;
	sift_up_max(heap, (*n)++);
}

struct cand heap_pop_max(struct cand *heap, size_t *n)
{
	struct cand top = heap[0];

	if (--*n > 0) {
		heap[0] = heap[*n];
		sift_down_max(heap, *n, 0);
	}
	return top;
}

/* ------------------------------------------------------------ scratch */

void scratch_free(struct scratch *s)
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

/* Room for a search of width ef: the visited set sized for the ~ef * m0
 * slots such a search sees (it grows if that is not enough). */
int scratch_fit(struct scratch *s, size_t ef, size_t dim, size_t m0)
{
	unsigned bits = 10;

	while (((size_t)1 << bits) < 2 * ef * m0 && bits < 30)
		bits++;
	if (s->vset == NULL || s->vbits != bits) {
		uint32_t *v = sh_realloc(s->vset, ((size_t)1 << bits) * sizeof *v);

		if (v == NULL)
			return SH_ENOMEM;
		s->vset = v;
		s->vbits = bits;
	}
	if (grow((void **)&s->res, &s->rcap, ef + 1, sizeof(struct cand)) != 0 ||
	    grow((void **)&s->cands, &s->ccap, 2 * ef + m0 + 1, sizeof(struct cand)) != 0 ||
	    grow((void **)&s->sel, &s->selcap, ef + m0 + 2, sizeof(struct cand)) != 0 ||
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

bool scratch_grow_visited(struct scratch *s)
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
		if (old[i] != NO_SLOT)
			visit(s, old[i]);
	sh_free(old);
	return true;
}

struct scratch *scratch_get(const struct hnsw *h)
{
	struct scratch_pool *pool = &mut(h)->pool;
	struct scratch *s = NULL;

	pthread_mutex_lock(&pool->lock);
	if (pool->n > 0)
		s = pool->free[--pool->n];
	pthread_mutex_unlock(&pool->lock);
	return s != NULL ? s : sh_calloc(1, sizeof *s);
}

void scratch_put(const struct hnsw *h, struct scratch *s)
{
	struct scratch_pool *pool = &mut(h)->pool;

	if (s == NULL)
		return;
	pthread_mutex_lock(&pool->lock);
	if (pool->n == pool->cap) {
		size_t cap = pool->cap ? pool->cap * 2 : 8;
		struct scratch **f = sh_reallocarray(pool->free, cap, sizeof *f);

		if (f == NULL) {
			pthread_mutex_unlock(&pool->lock);
			scratch_free(s);
			return;
		}
		pool->free = f;
		pool->cap = cap;
	}
	pool->free[pool->n++] = s;
	pthread_mutex_unlock(&pool->lock);
}

int scratch_sel(struct scratch *s, size_t n)
{
	return grow((void **)&s->sel, &s->selcap, n, sizeof(struct cand));
}

void scratch_begin(struct scratch *s)
{
	memset(s->vset, 0xff, ((size_t)1 << s->vbits) * sizeof *s->vset);
	s->vcount = 0;
}

/* ------------------------------------------------------------ distances */

static inline __attribute__((always_inline)) float
dist_q(const struct hnsw *h, const struct scratch *s, uint32_t slot, bool quant)
{
	const struct quant *q = &h->quant;
	const uint8_t *c;
	float d;

	if (!quant)
		return dist_slot(h, s->qvec, slot);
	c = code_at(h, slot);
	if (h->p.metric == SH_METRIC_L2)
		return q->scale * q->scale * (float)h->k->u8_l2sq(s->qcode, c, h->p.dim);
	d = q->scale * q->scale *
	    (float)h->k->s8_dot((const int8_t *)s->qcode, (const int8_t *)c, h->p.dim);
	return h->bias - d;
}

static inline const void *point_data(const struct hnsw *h, uint32_t slot, bool quant)
{
	return quant ? (const void *)code_at(h, slot) : (const void *)vec_at(h, slot);
}

/* May slot be a result?  live_only is false when no deleted point can be
 * met (hnsw.dead was 0 when the search began), which spares a random read
 * of the node per candidate. */
static inline bool accept(const struct hnsw *h, uint32_t slot, hnsw_filter_fn filter, void *arg,
			  bool live_only)
{
	const struct node *n;

	if (!live_only && filter == NULL)
		return true;
	n = node_at(h, slot);
	if (live_only &&
	    atomic_load_explicit(&node_mut(n)->state, memory_order_acquire) != SLOT_LIVE)
		return false;
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
unvisited(const struct hnsw *h, struct scratch *s, uint32_t slot, int level, bool quant)
{
	_Atomic uint32_t *l = links_at(h, slot, level);
	uint32_t cap = max_links(h, level), e;
	size_t n = 0;

	for (uint32_t i = 0; i < cap && (e = link_get(l, i)) != NO_SLOT; i++)
		if (visit(s, e))
			s->ids[n++] = e;
	return n;
}

/* Neighbours' data are fetched PREFETCH_AHEAD entries ahead of use: enough
 * to hide the latency, few enough not to fill the CPU's miss buffers. */
#define PREFETCH_AHEAD 4

static inline __attribute__((always_inline)) size_t
search_layer_impl(const struct hnsw *h, struct scratch *s, uint32_t ep, float ep_d, size_t ef,
		  int level, hnsw_filter_fn filter, void *arg, bool live_only, bool quant)
{
	struct cand *cands = s->cands, *res = s->res;
	size_t nc = 0, nr = 0, stride = quant ? h->codes.stride : h->vecs.stride;
	uint64_t calls = 0;

	scratch_begin(s);
	visit(s, ep);
	cands[nc++] = (struct cand){ep_d, ep};
	if (accept(h, ep, filter, arg, live_only))
		res[nr++] = (struct cand){ep_d, ep};
	while (nc > 0) {
		struct cand c = cands[0];
		size_t n;

		if (nr >= ef && c.d > res[0].d)
			break; /* the nearest candidate is farther than the worst result */
		cands[0] = cands[--nc];
		sift_down_min(cands, nc, 0);
		if (nc > 0 && level == 0) /* the next one to expand, most likely */
			__builtin_prefetch(links_at(h, cands[0].slot, 0));
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
			cands[nc] = (struct cand){d, e};
			sift_up_min(cands, nc++);
			if (!accept(h, e, filter, arg, live_only))
				continue;
			if (nr < ef) {
				res[nr] = (struct cand){d, e};
				sift_up_max(res, nr++);
			} else {
				res[0] = (struct cand){d, e};
				sift_down_max(res, nr, 0);
			}
		}
	}
	atomic_fetch_add_explicit(&mut(h)->dist_calls, calls, memory_order_relaxed);
	return nr;
}

static size_t search_layer_f(const struct hnsw *h, struct scratch *s, uint32_t ep, float ep_d,
			     size_t ef, int level, hnsw_filter_fn filter, void *arg, bool live_only)
{
	return search_layer_impl(h, s, ep, ep_d, ef, level, filter, arg, live_only, false);
}

static size_t search_layer_q(const struct hnsw *h, struct scratch *s, uint32_t ep, float ep_d,
			     size_t ef, int level, hnsw_filter_fn filter, void *arg, bool live_only)
{
	return search_layer_impl(h, s, ep, ep_d, ef, level, filter, arg, live_only, true);
}

size_t search_layer(const struct hnsw *h, struct scratch *s, const float *q, uint32_t ep,
		    float ep_d, size_t ef, int level, hnsw_filter_fn filter, void *arg,
		    bool live_only)
{
	if (q != s->qvec)
		memcpy(s->qvec, q, h->p.dim * sizeof(float));
	return search_layer_f(h, s, ep, ep_d, ef, level, filter, arg, live_only);
}

/* Alg. 5 lines 1-5: from the top level down to stop + 1, move to the
 * nearest neighbour until no neighbour is nearer (SEARCH-LAYER with ef = 1). */
static uint32_t greedy(const struct hnsw *h, const struct scratch *s, uint32_t ep, int top,
		       int stop, float *ep_d, bool quant)
{
	float best = *ep_d;

	for (int level = top; level > stop; level--) {
		bool moved = true;

		while (moved) {
			_Atomic uint32_t *l = links_at(h, ep, level);
			uint32_t e;

			moved = false;
			for (uint32_t i = 0; i < h->p.m && (e = link_get(l, i)) != NO_SLOT; i++) {
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

uint32_t greedy_descend(const struct hnsw *h, const struct scratch *s, uint32_t ep, int top,
			int stop, float *ep_d)
{
	return greedy(h, s, ep, top, stop, ep_d, false);
}

/* ------------------------------------------------------------ k-NN */

static int prepare_query(const struct hnsw *h, struct scratch *s, const float *query, bool quant,
			 struct sh_err *err)
{
	int rv = prepare_vector(h, query, s->qvec, err);

	if (rv != 0)
		return sh_err_wrap(err, rv, "query");
	if (quant)
		quant_encode(&h->quant, s->qvec, h->p.dim, s->qcode);
	return 0;
}

/* Results s->res[0..nr) (a max-heap) to out, nearest first, at most k;
 * re-scored in float32 first when the traversal used codes. */
static size_t emit(const struct hnsw *h, struct scratch *s, size_t nr, size_t k, bool quant,
		   struct hnsw_result *out)
{
	size_t n;

	if (quant) {
		/* all the float vectors at once: their cache misses overlap */
		for (size_t i = 0; i < nr; i++)
			prefetch_point(vec_at(h, s->res[i].slot), h->vecs.stride);
		for (size_t i = 0; i < nr; i++)
			s->res[i].d = dist_slot(h, s->qvec, s->res[i].slot);
		for (size_t i = nr / 2; i-- > 0;)
			sift_down_max(s->res, nr, i);
	}
	while (nr > k)
		heap_pop_max(s->res, &nr);
	n = nr;
	while (nr > 0) {
		struct cand c = heap_pop_max(s->res, &nr);

		out[nr].id = node_at(h, c.slot)->id;
		out[nr].distance = c.d;
	}
	return n;
}

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

static int knn(const struct hnsw *h, struct scratch *s, const float *query, size_t k, size_t ef,
	       hnsw_filter_fn filter, void *arg, struct hnsw_result *out, size_t *n_out,
	       struct sh_err *err)
{
	uint64_t ep = atomic_load_explicit(&mut(h)->ep, memory_order_acquire);
	bool quant = atomic_load_explicit(&mut(h)->quant_ready, memory_order_acquire);
	uint32_t cur;
	float d;
	size_t nr;
	bool live;
	int rv;

	if (ep == EP_EMPTY)
		return 0;
	rv = scratch_fit(s, ef, h->p.dim, h->m0);
	if (rv != 0)
		return sh_err_set(err, rv, "search: out of memory");
	if ((rv = prepare_query(h, s, query, quant, err)) != 0)
		return rv;
	cur = (uint32_t)ep;
	d = dist_q(h, s, cur, quant);
	cur = greedy(h, s, cur, (int)(ep >> 32), 0, &d, quant);
	live = atomic_load(&mut(h)->dead) > 0;
	nr = quant ? search_layer_q(h, s, cur, d, ef, 0, filter, arg, live)
		   : search_layer_f(h, s, cur, d, ef, 0, filter, arg, live);
	*n_out = emit(h, s, nr, k, quant, out);
	return 0;
}

int hnsw_search(const struct hnsw *h, const float *query, size_t k, size_t ef,
		hnsw_filter_fn filter, void *arg, struct hnsw_result *out, size_t *n_out,
		struct sh_err *err)
{
	struct scratch *s;
	int parity, rv;

	*n_out = 0;
	if ((rv = check_k(k, &ef, err)) != 0)
		return rv;
	if ((s = scratch_get(h)) == NULL)
		return sh_err_set(err, SH_ENOMEM, "search: out of memory");
	epoch_enter(h, &parity);
	rv = knn(h, s, query, k, ef, filter, arg, out, n_out, err);
	epoch_exit(h, parity);
	scratch_put(h, s);
	return rv;
}

/* ------------------------------------------------------------ exact */

static size_t scan_all(const struct hnsw *h, struct scratch *s, size_t k, hnsw_filter_fn filter,
		       void *arg)
{
	uint32_t n = atomic_load_explicit(&mut(h)->n_slots, memory_order_acquire);
	size_t nr = 0;

	for (uint32_t slot = 0; slot < n; slot++) {
		float d;

		if (!accept(h, slot, filter, arg, true))
			continue;
		d = dist_slot(h, s->qvec, slot);
		if (nr < k) {
			heap_push_max(s->res, &nr, (struct cand){d, slot});
		} else if (d < s->res[0].d) {
			s->res[0] = (struct cand){d, slot};
			sift_down_max(s->res, nr, 0);
		}
	}
	return nr;
}

int hnsw_search_exact(const struct hnsw *h, const float *query, size_t k, hnsw_filter_fn filter,
		      void *arg, struct hnsw_result *out, size_t *n_out, struct sh_err *err)
{
	size_t ef = k;
	struct scratch *s;
	int parity, rv;

	*n_out = 0;
	if ((rv = check_k(k, &ef, err)) != 0)
		return rv;
	if ((s = scratch_get(h)) == NULL)
		return sh_err_set(err, SH_ENOMEM, "search: out of memory");
	epoch_enter(h, &parity);
	rv = scratch_fit(s, k, h->p.dim, h->m0);
	if (rv != 0)
		sh_err_set(err, rv, "search: out of memory");
	else if ((rv = prepare_query(h, s, query, false, err)) == 0)
		*n_out = emit(h, s, scan_all(h, s, k, filter, arg), k, false, out);
	epoch_exit(h, parity);
	scratch_put(h, s);
	return rv;
}
