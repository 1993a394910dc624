/*
 * hnsw_insert: INSERT (Alg. 1) with the neighbour-selection heuristic
 * SELECT-NEIGHBORS-HEURISTIC (Alg. 4), hnsw_upsert(), the multi-threaded
 * hnsw_build(), and training the int8 quantizer.
 *
 * Like hnswlib, selection keeps at most m neighbours at every level, a
 * level-0 list may grow to m0 = 2m as other points link back, and a full
 * list is shrunk with the same heuristic (Alg. 1 lines 11-16).  Alg. 4 is
 * used without extendCandidates and keepPrunedConnections, which the paper
 * (section 4) reports as not helping on most data.
 *
 * Concurrency: a point's record and links are written before any other
 * point links to it, and it becomes a result (published) only once it is
 * linked at every level.  Changing another point's list takes its spinlock.
 * write_lock serializes slot allocation, the id map, publishing and the
 * entry point; an insert that raises the top level holds it throughout, as
 * in hnswlib, so that the entry point never names a half-linked point.
 *
 * An upsert of an existing id inserts the new version as a point of its
 * own while the old one stays a result, switches the two in one step
 * (publish), and only then deletes the old version (hnsw_impl.h,
 * "Versions"), so that searches running meanwhile find one or the other.
 */
#include "build.h"

#include "index/hnsw_impl.h"

#include "util/alloc.h"
#include "util/thread.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Paper section 4.1: l = floor(-ln(unif(0..1)) * mL). */
int hnsw__random_level(struct hnsw *h)
{
	double u = 1.0 - sh_rand_double(&h->rng); /* (0, 1] */
	double l = floor(-log(u) * h->ml);

	return l > HNSW_MAX_LEVEL ? HNSW_MAX_LEVEL : (int)l;
}

static inline bool cand_less(struct hnsw_cand a, struct hnsw_cand b)
{
	return a.d < b.d || (a.d == b.d && a.slot < b.slot); /* a fixed order for ties */
}

static void sift_down(struct hnsw_cand *c, size_t n, size_t i)
{
	struct hnsw_cand x = c[i];

	for (;;) {
		size_t l = 2 * i + 1, m;

		if (l >= n)
			break;
		m = l + 1 < n && cand_less(c[l], c[l + 1]) ? l + 1 : l;
		if (!cand_less(x, c[m]))
			break;
		c[i] = c[m];
		i = m;
	}
	c[i] = x;
}

/* Nearest first.  Insertion sort for short lists, heapsort for long ones
 * (up to ef_construction + 1); no comparator calls. */
void hnsw__sort_cands(struct hnsw_cand *c, size_t n)
{
	if (n > 32) {
		for (size_t i = n / 2; i-- > 0;)
			sift_down(c, n, i);
		for (size_t end = n - 1; end > 0; end--) {
			struct hnsw_cand t = c[0];

			c[0] = c[end];
			c[end] = t;
			sift_down(c, end, 0);
		}
		return;
	}
	for (size_t i = 1; i < n; i++) {
		struct hnsw_cand x = c[i];
		size_t j = i;

		while (j > 0 && cand_less(x, c[j - 1])) {
			c[j] = c[j - 1];
			j--;
		}
		c[j] = x;
	}
}

/* Alg. 4: walk the candidates nearest first and keep one only when it is
 * nearer to the base point than to every point kept so far. */
size_t hnsw__select_heuristic(const struct hnsw *h, struct hnsw_cand *cands, size_t n, size_t max)
{
	size_t kept = 0;

	if (n <= max)
		return n;
	for (size_t i = 0; i < n && kept < max; i++) {
		const float *v = hnsw__vec_at(h, cands[i].slot);
		bool good = true;

		for (size_t j = 0; j < kept && good; j++)
			good = hnsw__dist_vec(h, v, hnsw__vec_at(h, cands[j].slot)) >= cands[i].d;
		if (good)
			cands[kept++] = cands[i];
	}
	return kept;
}

size_t hnsw__select_fill(const struct hnsw *h, struct hnsw_cand *cands, size_t *kept_io, size_t n,
			 size_t max, size_t fill)
{
	size_t kept = *kept_io;

	if (n <= max) {
		*kept_io = n;
		return n;
	}
	for (size_t i = kept; i < n && kept < max; i++) {
		const float *v = hnsw__vec_at(h, cands[i].slot);
		struct hnsw_cand c = cands[i];
		bool good = true;

		for (size_t j = 0; j < kept && good; j++)
			good = hnsw__dist_vec(h, v, hnsw__vec_at(h, cands[j].slot)) >= c.d;
		if (!good)
			continue;
		/* move it to the kept ones, the pruned ones keep their order */
		memmove(&cands[kept + 1], &cands[kept], (i - kept) * sizeof *cands);
		cands[kept++] = c;
	}
	*kept_io = kept;
	return kept >= fill ? kept : (fill < n ? fill : n);
}

/* slot at the end of list l (cnt entries, room for max; its node's lock
 * held): 1 added, 0 there already, -1 no room. */
static int append_link(_Atomic uint32_t *l, uint32_t cnt, uint32_t max, uint32_t slot)
{
	for (uint32_t i = 0; i < cnt; i++)
		if (atomic_load_explicit(&l[i], memory_order_relaxed) == slot)
			return 0;
	if (cnt == max)
		return -1;
	atomic_store_explicit(&l[cnt], slot, memory_order_release);
	return 1;
}

/* Of a full level-0 list old[0..cnt) and the new link `slot`, Alg. 4 kept
 * c[0..kept), nearest first.  The links it drops must be able to go
 * (hnsw__indeg_drop): one that cannot stays, in place of the farthest
 * kept one that can go (slot, or an old link that is not a last in-link;
 * dropping slot first instead cost recall on dot products: 0.9525 against
 * 0.9895 in t/hnsw.t).  Returns the list's new length, or 0
 * when it cannot change (every link is some point's last in-link, and
 * slot does not get this one; its insert rescues it if need be). */
static size_t keep_last_in(struct hnsw *h, const uint32_t *old, uint32_t cnt, uint32_t slot,
			   struct hnsw_cand *c, size_t kept, uint32_t max)
{
	uint32_t stay[2 * HNSW_MAX_M], dropped[2 * HNSW_MAX_M + 1], ns = 0, nd = 0;

	for (uint32_t i = 0; i < cnt; i++) {
		bool held = false;

		for (size_t j = 0; j < kept && !held; j++)
			held = c[j].slot == old[i];
		if (!held && !hnsw__indeg_drop(h, old[i]))
			stay[ns++] = old[i];
		else if (!held)
			dropped[nd++] = old[i];
	}
	for (size_t j = kept; j-- > 0 && kept + ns > max;) {
		if (c[j].slot != slot && !hnsw__indeg_drop(h, c[j].slot))
			continue;
		if (c[j].slot != slot)
			dropped[nd++] = c[j].slot;
		memmove(&c[j], &c[j + 1], (--kept - j) * sizeof *c);
	}
	if (kept + ns > max) { /* nothing can go: undo */
		for (uint32_t i = 0; i < nd; i++)
			hnsw__indeg_add(h, dropped[i]);
		return 0;
	}
	for (uint32_t i = 0; i < ns; i++)
		c[kept++] = (struct hnsw_cand){0, stay[i]};
	return kept;
}

/* Add a link nb -> slot at level; a full list is shrunk by Alg. 4 over its
 * links and the new one (the links it drops are counted: hnsw_reach.c),
 * at level 0 without dropping a point's last in-link. */
static void link_back(struct hnsw *h, uint32_t nb, uint32_t slot, int level)
{
	struct hnsw_node *n = hnsw__node_at(h, nb);
	_Atomic uint32_t *l = hnsw__links_at(h, nb, level);
	struct hnsw_cand c[2 * HNSW_MAX_M + 1];
	uint32_t cnt, max = hnsw__max_links(h, level), ids[2 * HNSW_MAX_M + 1], old[2 * HNSW_MAX_M];
	const float *v = hnsw__vec_at(h, nb);
	size_t kept;
	bool has = false;
	int added;

	hnsw__node_lock(n);
	cnt = hnsw__links_len(l, max);
	if ((added = append_link(l, cnt, max, slot)) >= 0) {
		if (added == 1 && level == 0)
			hnsw__indeg_add(h, slot);
		goto out;
	}
	for (uint32_t i = 0; i < cnt; i++) {
		old[i] = c[i].slot = atomic_load_explicit(&l[i], memory_order_relaxed);
		c[i].d = hnsw__dist_vec(h, v, hnsw__vec_at(h, c[i].slot));
	}
	c[cnt] = (struct hnsw_cand){hnsw__dist_vec(h, v, hnsw__vec_at(h, slot)), slot};
	hnsw__sort_cands(c, cnt + 1);
	kept = hnsw__select_heuristic(h, c, cnt + 1, max);
	if (level == 0 && (kept = keep_last_in(h, old, cnt, slot, c, kept, max)) == 0)
		goto out;
	atomic_fetch_add_explicit(&h->dropped, cnt + 1 - kept, memory_order_relaxed);
	for (size_t i = 0; i < kept; i++)
		has |= (ids[i] = c[i].slot) == slot;
	hnsw__links_write(h, nb, level, ids, (uint32_t)kept); /* in place: searches run */
	if (level == 0 && has)
		hnsw__indeg_add(h, slot);
out:
	hnsw__node_unlock(n);
	hnsw__midwrite(h);
}

bool hnsw__link_back_room(struct hnsw *h, uint32_t owner, uint32_t slot, int level)
{
	struct hnsw_node *n = hnsw__node_at(h, owner);
	_Atomic uint32_t *l = hnsw__links_at(h, owner, level);
	uint32_t max = hnsw__max_links(h, level);
	int rv;

	hnsw__node_lock(n);
	rv = append_link(l, hnsw__links_len(l, max), max, slot);
	if (rv == 1 && level == 0)
		hnsw__indeg_add(h, slot);
	hnsw__node_unlock(n);
	return rv == 1;
}

/* The new point's list at level: the c[0..n) chosen, and the links other
 * inserts (a parallel build) added meanwhile, as far as they fit (one
 * that does not and cannot go — hnsw__indeg_drop — takes the farthest
 * chosen one's place); the new ones counted in. */
static void own_links(struct hnsw *h, uint32_t slot, int level, const struct hnsw_cand *c, size_t n)
{
	_Atomic uint32_t *l = hnsw__links_at(h, slot, level);
	uint32_t cap = hnsw__max_links(h, level), ids[2 * HNSW_MAX_M], old[2 * HNSW_MAX_M], len,
		 nn = (uint32_t)n, last = (uint32_t)n;

	hnsw__node_lock(hnsw__node_at(h, slot));
	len = hnsw__links_len(l, cap);
	for (uint32_t i = 0; i < len; i++)
		old[i] = hnsw__link_get(l, i);
	for (size_t i = 0; i < n; i++)
		ids[i] = c[i].slot;
	for (uint32_t i = 0; i < len; i++) {
		if (hnsw__holds(ids, nn, old[i]))
			continue;
		if (nn < cap) {
			ids[nn++] = old[i];
			continue;
		}
		if (level > 0 || hnsw__indeg_drop(h, old[i]))
			continue;
		while (last > 0 && hnsw__holds(old, len, ids[last - 1]))
			last--; /* the farthest chosen one that is new to the list */
		if (last > 0)
			ids[--last] = old[i];
	}
	hnsw__links_set(l, cap, ids, nn);
	hnsw__node_unlock(hnsw__node_at(h, slot));
	for (uint32_t i = 0; i < nn && level == 0; i++)
		if (!hnsw__holds(old, len, ids[i]))
			hnsw__indeg_add(h, ids[i]);
}

/* Alg. 1 lines 5-16 at one level: choose neighbours among the ef_construction
 * nearest, link both ways; returns the nearest found (the next entry). */
static struct hnsw_cand link_level(struct hnsw *h, struct hnsw_scratch *s, uint32_t slot,
				   struct hnsw_cand ep, int level)
{
	enum hnsw__accept mode = s->skip != HNSW_NO_SLOT || atomic_load(&h->dead) > 0
					 ? HNSW__ACCEPT_INSERT
					 : HNSW__ACCEPT_ALL;
	size_t nr = hnsw__search_layer(h, s, s->qvec, ep.slot, ep.d, h->p.ef_construction, level,
				       NULL, NULL, mode);
	struct hnsw_cand next;
	size_t kept;

	if (nr == 0)
		return ep; /* nothing live reachable here: keep descending from ep */
	memcpy(s->sel, s->res, nr * sizeof *s->sel);
	hnsw__sort_cands(s->sel, nr);
	next = s->sel[0];
	kept = hnsw__select_heuristic(h, s->sel, nr, h->p.m);
	own_links(h, slot, level, s->sel, kept);
	for (size_t i = 0; i < kept; i++)
		link_back(h, s->sel[i].slot, slot, level);
	return next;
}

/* Write the point's record, in state NEW: it is not reachable yet, and
 * not a result until published.  old: the version it replaces, or NO_SLOT. */
static int write_record(struct hnsw *h, uint32_t slot, uint64_t id, int level, const float *v,
			uint32_t old)
{
	struct hnsw_node *n = hnsw__node_at(h, slot);
	size_t up = (size_t)level * h->p.m * sizeof(uint32_t);

	n->id = id;
	n->level = (uint8_t)level;
	n->prev = old;
	if (level > 0) {
		_Atomic uint32_t *u = sh_malloc(up);

		if (u == NULL)
			return SH_ENOMEM;
		for (size_t i = 0; i < (size_t)level * h->p.m; i++)
			atomic_init(&u[i], HNSW_NO_SLOT);
		atomic_store_explicit(&n->upper, u, memory_order_release);
		atomic_fetch_add(&h->upper_bytes, up);
	}
	memcpy(hnsw__arena_at(&h->vecs, slot), v, h->p.dim * sizeof(float));
	if (atomic_load_explicit(&h->quant_ready, memory_order_acquire))
		quant_encode(&h->quant, v, h->p.dim, hnsw__arena_at(&h->codes, slot));
	atomic_store_explicit(&n->state, HNSW_SLOT_NEW, memory_order_release);
	return 0;
}

/* Under write_lock: room in the id map for a new id, a slot, and the
 * point's record.  A failure leaves everything as it was (a replaced
 * version untouched). */
static int claim_slot(struct hnsw *h, uint64_t id, int level, const float *v, uint32_t old,
		      uint32_t *slot)
{
	int rv;

	if (old == HNSW_NO_SLOT && (rv = hnsw__idmap_reserve(h)) != 0)
		return rv;
	rv = hnsw__slot_alloc(h, slot);
	if (rv == 0 && (rv = write_record(h, *slot, id, level, v, old)) != 0)
		hnsw__slot_unclaim(h, *slot);
	if (rv != 0 && old == HNSW_NO_SLOT)
		hnsw__idmap_unreserve(h);
	return rv;
}

/* Under write_lock: make the linked point in slot a result.  A new id gets
 * its (reserved) map entry and is counted; a new version takes old's place
 * in one step for readers: inside an odd `switches`, it becomes LIVE and
 * old names it as its successor (old is deleted by the caller). */
static void publish(struct hnsw *h, uint32_t slot, uint32_t old)
{
	struct hnsw_node *n = hnsw__node_at(h, slot);

	if (old == HNSW_NO_SLOT) {
		atomic_store_explicit(&n->state, HNSW_SLOT_LIVE, memory_order_release);
		hnsw__idmap_put(h, slot, true); /* reserved room: cannot fail */
		atomic_fetch_add(&h->count, 1);
		return;
	}
	atomic_store_explicit(&hnsw__node_at(h, old)->switched,
			      (uint32_t)atomic_fetch_add(&h->switches, 1) + 1,
			      memory_order_release);
	atomic_store_explicit(&n->state, HNSW_SLOT_LIVE, memory_order_release);
	atomic_store_explicit(&hnsw__node_at(h, old)->next, slot, memory_order_release);
	hnsw__idmap_replace(h, old, slot);
	atomic_fetch_add(&h->switches, 1);
}

/* Alg. 1 lines 1-16: descend from the entry point ep and link slot at
 * each of its levels, never to old (the version it replaces). */
static void link_point(struct hnsw *h, struct hnsw_scratch *s, uint32_t slot, uint32_t old,
		       int level, uint64_t ep)
{
	int top = (int)(ep >> 32);
	struct hnsw_cand cur = {0, (uint32_t)ep};

	s->skip = old;
	cur.d = hnsw__dist_slot(h, s->qvec, cur.slot);
	cur.slot = hnsw__greedy_descend(h, s, cur.slot, top, level, &cur.d);
	for (int lc = level < top ? level : top; lc >= 0; lc--)
		cur = link_level(h, s, slot, cur, lc);
	s->skip = HNSW_NO_SLOT;
}

int hnsw__insert_point(struct hnsw *h, uint64_t id, int level, bool replace, struct hnsw_scratch *s)
{
	uint32_t slot = HNSW_NO_SLOT, old;
	uint64_t ep;
	int rv;
	bool hold;

	pthread_mutex_lock(&h->write_lock);
	old = hnsw__idmap_get(h, id);
	rv = old != HNSW_NO_SLOT && !replace ? SH_EEXIST
					     : claim_slot(h, id, level, s->qvec, old, &slot);
	ep = atomic_load(&h->ep);
	if (rv != 0 || ep == HNSW_EP_EMPTY) { /* the first point is its own entry */
		if (rv == 0) {
			publish(h, slot, old);
			atomic_store(&h->ep, hnsw__ep_pack(level, slot));
		}
		pthread_mutex_unlock(&h->write_lock);
		return rv;
	}
	hold = level > (int)(ep >> 32);
	if (!hold)
		pthread_mutex_unlock(&h->write_lock);
	link_point(h, s, slot, old, level, ep);
	if (atomic_load(hnsw__indeg_at(h, slot)) == 0) /* every neighbour refused it */
		hnsw__rescue(h, s, slot, atomic_load(&h->ep));
	if (!hold)
		pthread_mutex_lock(&h->write_lock);
	publish(h, slot, old);
	hnsw__midwrite(h);
	if (hold) { /* replace: the single writer, which can walk the graph */
		if ((uint32_t)ep != old && atomic_load(hnsw__indeg_at(h, (uint32_t)ep)) == 0 &&
		    atomic_load(&hnsw__node_at(h, (uint32_t)ep)->state) == HNSW_SLOT_LIVE)
			hnsw__rescue(h, s, (uint32_t)ep, hnsw__ep_pack(level, slot));
		if (replace)
			hnsw__reconnect_at(h, hnsw__ep_pack(level, slot), false);
		else
			atomic_fetch_add(&h->dropped, 1); /* the build reconnects at its end */
		atomic_store(&h->ep, hnsw__ep_pack(level, slot));
	}
	pthread_mutex_unlock(&h->write_lock);
	if (old != HNSW_NO_SLOT)
		hnsw__delete_slot(h, old); /* the single writer: no insert runs alongside */
	return 0;
}

/* ------------------------------------------------------------ quantizer */

/* Train on up to 256k values sampled from the stored vectors (with its own
 * generator, so that quantization does not change the graph), then encode
 * every stored vector.  Called by the writer only. */
static void quant_setup(struct hnsw *h)
{
	size_t want = 262144, n = 0;
	uint32_t slots = atomic_load(&h->n_slots);
	float *sample = sh_malloc(want * sizeof *sample);
	struct sh_rand r;

	if (sample == NULL)
		return; /* stay on float32; retried at the next write */
	sh_rand_seed(&r, h->p.seed ^ 0x5155414e54ULL);
	for (size_t i = 0; i < want; i++) {
		uint32_t slot = (uint32_t)sh_rand_below(&r, slots);

		if (atomic_load(&hnsw__node_at(h, slot)->state) == HNSW_SLOT_LIVE)
			sample[n++] = hnsw__vec_at(h, slot)[sh_rand_below(&r, h->p.dim)];
	}
	if (n > 0) {
		quant_train(&h->quant, sample, n, h->p.metric != SH_METRIC_L2);
		for (uint32_t s = 0; s < slots; s++)
			if (atomic_load(&hnsw__node_at(h, s)->state) != HNSW_SLOT_FREE)
				quant_encode(&h->quant, hnsw__vec_at(h, s), h->p.dim,
					     hnsw__arena_at(&h->codes, s));
		atomic_store_explicit(&h->quant_ready, true, memory_order_release);
	}
	sh_free(sample);
}

static void maybe_train(struct hnsw *h)
{
	if (h->p.quant == HNSW_QUANT_INT8 && !atomic_load(&h->quant_ready) &&
	    atomic_load(&h->count) >= HNSW_QUANT_TRAIN)
		quant_setup(h);
}

/* ------------------------------------------------------------ public */

/* vec into out as the index stores it: prepared here, or by the caller
 * (hnsw_prepare) and copied as it is. */
static int take_vector(const struct hnsw *h, const float *vec, bool prepared, float *out,
		       struct sh_err *err)
{
	int rv;

	if (!prepared)
		return hnsw__prepare_vector(h, vec, out, err);
	if ((rv = hnsw_check_vector(vec, h->p.dim, h->p.metric, "vector", err)) == 0)
		memcpy(out, vec, h->p.dim * sizeof *out);
	return rv;
}

int hnsw_prepare(const struct hnsw *h, const float *in, float *out, struct sh_err *err)
{
	return hnsw__prepare_vector(h, in, out, err);
}

static int upsert(struct hnsw *h, uint64_t id, const float *vec, bool prepared, struct sh_err *err)
{
	struct hnsw_scratch *s = hnsw__scratch_get(h);
	uint32_t old;
	int rv;

	if (s == NULL || hnsw__scratch_fit(h, s, h->p.ef_construction) != 0) {
		hnsw__scratch_put(h, s);
		return sh_err_set(err, SH_ENOMEM, "hnsw: out of memory");
	}
	if ((rv = take_vector(h, vec, prepared, s->qvec, err)) != 0)
		goto out;
	old = hnsw__idmap_get(h, id);
	if (old != HNSW_NO_SLOT &&
	    memcmp(hnsw__vec_at(h, old), s->qvec, h->p.dim * sizeof(float)) == 0)
		goto out; /* the same vector (a payload update): nothing changes */
	rv = hnsw__insert_point(h, id, hnsw__random_level(h), true, s);
	if (rv != 0)
		sh_err_set(err, rv, "hnsw: cannot insert point %llu: %s", (unsigned long long)id,
			   sh_strerror(rv));
	hnsw__maybe_reconnect(h);
	maybe_train(h);
	hnsw__epoch_try_reclaim(h);
out:
	hnsw__scratch_put(h, s);
	return rv;
}

int hnsw_upsert(struct hnsw *h, uint64_t id, const float *vec, struct sh_err *err)
{
	return upsert(h, id, vec, false, err);
}

int hnsw_upsert_prepared(struct hnsw *h, uint64_t id, const float *vec, struct sh_err *err)
{
	return upsert(h, id, vec, true, err);
}

struct build_job {
	struct hnsw *h;
	const uint64_t *ids;
	const float *vecs;
	bool prepared;
	const uint8_t *levels;
	size_t n;
	const _Atomic bool *stop, *yield; /* each NULL: never */
	bool background;                  /* the caller's: its threads give way too */
	_Atomic size_t next;
	_Atomic int rv;
	_Atomic size_t failed_at;
	struct sh_err err;
};

static void *build_worker(void *arg)
{
	struct build_job *j = arg;
	struct hnsw *h = j->h;
	struct hnsw_scratch *s = hnsw__scratch_get(h);
	size_t i;

	while (s != NULL && atomic_load(&j->rv) == 0 &&
	       (j->stop == NULL || !atomic_load(j->stop)) &&
	       (j->yield == NULL || !atomic_load(j->yield)) &&
	       (i = atomic_fetch_add(&j->next, 1)) < j->n) {
		int rv = hnsw__scratch_fit(h, s, h->p.ef_construction);
		struct sh_err e;

		if (rv == 0)
			rv = take_vector(h, j->vecs + i * h->p.dim, j->prepared, s->qvec, &e);
		else
			sh_err_set(&e, rv, "out of memory");
		if (rv == 0 && (rv = hnsw__insert_point(h, j->ids[i], j->levels[i], false, s)) != 0)
			sh_err_set(&e, rv, "%s",
				   rv == SH_EEXIST ? "id already present" : sh_strerror(rv));
		sh_thread_give_way(); /* background builds only (util/thread.h) */
		if (rv != 0) {
			int zero = 0;

			if (atomic_compare_exchange_strong(&j->rv, &zero, rv)) {
				j->err = e;
				atomic_store(&j->failed_at, i);
			}
		}
	}
	if (s == NULL)
		atomic_store(&j->rv, SH_ENOMEM);
	hnsw__scratch_put(h, s);
	return NULL;
}

static unsigned build_threads(unsigned threads, size_t n)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (threads == 0)
		threads = cpus > 0 ? (unsigned)cpus : 1;
	if (threads > 256)
		threads = 256;
	if ((size_t)threads > n / 64 + 1)
		threads = (unsigned)(n / 64 + 1);
	return threads;
}

/* Points 0 .. *built-1 were taken (each inserted unless the build failed):
 * the workers take them in order and finish the one they took. */
/* A worker of its own (the caller's thread is one too, keeping its name). */
static void *build_thread(void *arg)
{
	sh_thread_name("shoal-build");
	sh_thread_background(((struct build_job *)arg)->background, 0);
	return build_worker(arg);
}

static int build_into(struct hnsw *h, const uint64_t *ids, const float *vecs, bool prepared,
		      size_t n, unsigned threads, const _Atomic bool *const stop[2], size_t *built,
		      struct sh_err *err)
{
	struct build_job j = {.h = h,
			      .ids = ids,
			      .vecs = vecs,
			      .prepared = prepared,
			      .n = n,
			      .stop = stop[0],
			      .yield = stop[1],
			      .background = sh_thread_is_background()};
	uint8_t *levels = sh_malloc(n ? n : 1);
	pthread_t tids[256];
	unsigned t, started = 0;

	if (levels == NULL)
		return sh_err_set(err, SH_ENOMEM, "hnsw: out of memory");
	for (size_t i = 0; i < n; i++)
		levels[i] = (uint8_t)hnsw__random_level(h); /* drawn in order: deterministic */
	j.levels = levels;
	threads = build_threads(threads, n);
	for (t = 1; t < threads; t++)
		if (pthread_create(&tids[started], NULL, build_thread, &j) == 0)
			started++;
	build_worker(&j);
	for (t = 0; t < started; t++)
		pthread_join(tids[t], NULL);
	*built = atomic_load(&j.next) < n ? atomic_load(&j.next) : n;
	sh_free(levels);
	maybe_train(h);
	if (atomic_load(&j.rv) != 0)
		return sh_err_set(err, atomic_load(&j.rv), "hnsw: build: point %zu (id %llu): %s",
				  atomic_load(&j.failed_at),
				  (unsigned long long)ids[atomic_load(&j.failed_at)], j.err.msg);
	return 0;
}

static void adopt_arena(struct hnsw_arena *to, struct hnsw_arena *from)
{
	for (unsigned k = 0; k < from->chunks; k++)
		atomic_store_explicit(&to->chunk[k], atomic_load(&from->chunk[k]),
				      memory_order_release);
	to->chunks = from->chunks;
	from->chunks = 0;
}

/* Move what the private index `from` holds into the empty index `to`, which
 * searches may be reading: they see nothing until the entry point, stored
 * last.  Frees `from`. */
static void adopt(struct hnsw *to, struct hnsw *from)
{
	struct hnsw_idmap map;

	adopt_arena(&to->nodes, &from->nodes);
	adopt_arena(&to->links, &from->links);
	adopt_arena(&to->vecs, &from->vecs);
	adopt_arena(&to->codes, &from->codes);
	adopt_arena(&to->indeg, &from->indeg);
	pthread_rwlock_wrlock(&to->map_lock);
	map = to->map;
	to->map = from->map;
	from->map = map;
	pthread_rwlock_unlock(&to->map_lock);
	to->rng = from->rng;
	to->quant = from->quant;
	atomic_store(&to->upper_bytes, atomic_exchange(&from->upper_bytes, 0));
	atomic_store(&to->count, atomic_load(&from->count));
	atomic_store_explicit(&to->n_slots, atomic_exchange(&from->n_slots, 0),
			      memory_order_release);
	atomic_store_explicit(&to->quant_ready, atomic_load(&from->quant_ready),
			      memory_order_release);
	atomic_store_explicit(&to->ep, atomic_load(&from->ep), memory_order_release);
	hnsw_free(from);
}

/* Into an empty index, the points are inserted into a private index, which
 * is then renumbered for memory locality (hnsw_reorder.c) and published all
 * at once; otherwise they are inserted in place. */
static int build(struct hnsw *h, const uint64_t *ids, const float *vecs, bool prepared, size_t n,
		 unsigned threads, const _Atomic bool *const stop[2], size_t *built,
		 struct sh_err *err)
{
	struct hnsw *tmp = NULL;
	int rv;

	if (atomic_load(&h->n_slots) != 0 || hnsw_new(&h->p, &tmp, NULL) != 0) {
		rv = build_into(h, ids, vecs, prepared, n, threads, stop, built, err);
		if (*built > 0) /* a whole-graph walk: not for a build stopped at once */
			hnsw__reconnect(h);
		return rv;
	}
	tmp->rng = h->rng;
	rv = build_into(tmp, ids, vecs, prepared, n, threads, stop, built, err);
	hnsw__reconnect(tmp);
	hnsw_reorder(tmp); /* out of memory: the order stays as built */
	adopt(h, tmp);
	return rv;
}

int hnsw_build(struct hnsw *h, const uint64_t *ids, const float *vecs, size_t n, unsigned threads,
	       struct sh_err *err)
{
	const _Atomic bool *const never[2] = {NULL, NULL};
	size_t built;

	return build(h, ids, vecs, false, n, threads, never, &built, err);
}

int hnsw_build_prepared(struct hnsw *h, const uint64_t *ids, const float *vecs, size_t n,
			unsigned threads, const _Atomic bool *stop, const _Atomic bool *yield,
			size_t *built, struct sh_err *err)
{
	const _Atomic bool *const flags[2] = {stop, yield};

	return build(h, ids, vecs, true, n, threads, flags, built, err);
}
