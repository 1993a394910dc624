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
 * point links to it.  Changing another point's list takes its spinlock.
 * write_lock serializes slot allocation, the id map and the entry point; an
 * insert that raises the top level holds it throughout, as in hnswlib, so
 * that the entry point never names a half-linked point.
 */
#include "build.h"

#include "index/hnsw_impl.h"

#include "util/alloc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Paper section 4.1: l = floor(-ln(unif(0..1)) * mL). */
int random_level(struct hnsw *h)
{
	double u = 1.0 - sh_rand_double(&h->rng); /* (0, 1] */
	double l = floor(-log(u) * h->ml);

	return l > MAX_LEVEL ? MAX_LEVEL : (int)l;
}

static inline bool cand_less(struct cand a, struct cand b)
{
	return a.d < b.d || (a.d == b.d && a.slot < b.slot); /* a fixed order for ties */
}

static void sift_down(struct cand *c, size_t n, size_t i)
{
	struct cand x = c[i];

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
void sort_cands(struct cand *c, size_t n)
{
	if (n > 32) {
		for (size_t i = n / 2; i-- > 0;)
			sift_down(c, n, i);
		for (size_t end = n - 1; end > 0; end--) {
			struct cand t = c[0];

			c[0] = c[end];
			c[end] = t;
			sift_down(c, end, 0);
		}
		return;
	}
	for (size_t i = 1; i < n; i++) {
		struct cand x = c[i];
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
size_t select_heuristic(const struct hnsw *h, struct cand *cands, size_t n, size_t max)
{
	size_t kept = 0;

	if (n <= max)
		return n;
	for (size_t i = 0; i < n && kept < max; i++) {
		const float *v = vec_at(h, cands[i].slot);
		bool good = true;

		for (size_t j = 0; j < kept && good; j++)
			good = dist_vec(h, v, vec_at(h, cands[j].slot)) >= cands[i].d;
		if (good)
			cands[kept++] = cands[i];
	}
	return kept;
}

static void write_links(_Atomic uint32_t *l, uint32_t cap, const struct cand *c, size_t n)
{
	uint32_t ids[2 * HNSW_MAX_M];

	for (size_t i = 0; i < n; i++)
		ids[i] = c[i].slot;
	links_set(l, cap, ids, (uint32_t)n);
}

/* Add a link nb -> slot at level; a full list is shrunk by Alg. 4 over its
 * links and the new one. */
static void link_back(struct hnsw *h, uint32_t nb, uint32_t slot, int level)
{
	struct node *n = node_at(h, nb);
	_Atomic uint32_t *l = links_at(h, nb, level);
	struct cand c[2 * HNSW_MAX_M + 1];
	uint32_t cnt, max = max_links(h, level);
	const float *v = vec_at(h, nb);

	node_lock(n);
	cnt = links_len(l, max);
	for (uint32_t i = 0; i < cnt; i++)
		if (atomic_load_explicit(&l[i], memory_order_relaxed) == slot)
			goto out;
	if (cnt < max) {
		atomic_store_explicit(&l[cnt], slot, memory_order_release);
		goto out;
	}
	for (uint32_t i = 0; i < cnt; i++) {
		c[i].slot = atomic_load_explicit(&l[i], memory_order_relaxed);
		c[i].d = dist_vec(h, v, vec_at(h, c[i].slot));
	}
	c[cnt] = (struct cand){dist_vec(h, v, vec_at(h, slot)), slot};
	sort_cands(c, cnt + 1);
	write_links(l, max, c, select_heuristic(h, c, cnt + 1, max));
out:
	node_unlock(n);
}

/* Alg. 1 lines 5-16 at one level: choose neighbours among the ef_construction
 * nearest, link both ways; returns the nearest found (the next entry). */
static struct cand link_level(struct hnsw *h, struct scratch *s, uint32_t slot, struct cand ep,
			      int level)
{
	struct node *n = node_at(h, slot);
	size_t nr = search_layer(h, s, s->qvec, ep.slot, ep.d, h->p.ef_construction, level, NULL,
				 NULL, atomic_load(&h->dead) > 0);
	struct cand next;
	size_t kept;

	if (nr == 0)
		return ep; /* nothing live reachable here: keep descending from ep */
	memcpy(s->sel, s->res, nr * sizeof *s->sel);
	sort_cands(s->sel, nr);
	next = s->sel[0];
	kept = select_heuristic(h, s->sel, nr, h->p.m);
	node_lock(n);
	write_links(links_at(h, slot, level), max_links(h, level), s->sel, kept);
	node_unlock(n);
	for (size_t i = 0; i < kept; i++)
		link_back(h, s->sel[i].slot, slot, level);
	return next;
}

/* Write the point's record; the point is not reachable yet. */
static int write_record(struct hnsw *h, uint32_t slot, uint64_t id, int level, const float *v)
{
	struct node *n = node_at(h, slot);
	size_t up = (size_t)level * h->p.m * sizeof(uint32_t);

	n->id = id;
	n->level = (uint8_t)level;
	if (level > 0) {
		_Atomic uint32_t *u = sh_malloc(up);

		if (u == NULL)
			return SH_ENOMEM;
		for (size_t i = 0; i < (size_t)level * h->p.m; i++)
			atomic_init(&u[i], NO_SLOT);
		atomic_store_explicit(&n->upper, u, memory_order_release);
		atomic_fetch_add(&h->upper_bytes, up);
	}
	memcpy(arena_at(&h->vecs, slot), v, h->p.dim * sizeof(float));
	if (atomic_load_explicit(&h->quant_ready, memory_order_acquire))
		quant_encode(&h->quant, v, h->p.dim, arena_at(&h->codes, slot));
	atomic_store_explicit(&n->state, SLOT_LIVE, memory_order_release);
	return 0;
}

/* Under write_lock: a slot for a new id, its record, and its map entry. */
/* Under write_lock: a slot for id, its record, and its map entry.  With
 * replace, id's current point is deleted once the new record is complete:
 * a failure before that leaves it untouched, and the map entry it frees
 * means the map needs no room to grow. */
static int claim_slot(struct hnsw *h, uint64_t id, int level, const float *v, bool replace,
		      uint32_t *slot)
{
	uint32_t old = idmap_get(h, id);
	int rv;

	if (old != NO_SLOT && !replace)
		return SH_EEXIST;
	if ((rv = slot_alloc(h, slot)) != 0)
		return rv;
	if ((rv = write_record(h, *slot, id, level, v)) != 0) {
		slot_unclaim(h, *slot);
		return rv;
	}
	if (old != NO_SLOT)
		delete_slot(h, old);
	if ((rv = idmap_put(h, *slot)) != 0) {
		slot_unclaim(h, *slot);
		return rv;
	}
	return 0;
}

int insert_point(struct hnsw *h, uint64_t id, int level, bool replace, struct scratch *s)
{
	uint32_t slot;
	uint64_t ep;
	int top, rv;
	bool hold;
	struct cand cur;

	pthread_mutex_lock(&h->write_lock);
	if ((rv = claim_slot(h, id, level, s->qvec, replace, &slot)) != 0) {
		pthread_mutex_unlock(&h->write_lock);
		return rv;
	}
	ep = atomic_load(&h->ep);
	if (ep == EP_EMPTY) {
		atomic_store(&h->ep, ep_pack(level, slot));
		atomic_fetch_add(&h->count, 1);
		pthread_mutex_unlock(&h->write_lock);
		return 0;
	}
	top = (int)(ep >> 32);
	hold = level > top;
	if (!hold)
		pthread_mutex_unlock(&h->write_lock);
	cur.slot = (uint32_t)ep;
	cur.d = dist_slot(h, s->qvec, cur.slot);
	cur.slot = greedy_descend(h, s, cur.slot, top, level, &cur.d);
	for (int lc = level < top ? level : top; lc >= 0; lc--)
		cur = link_level(h, s, slot, cur, lc);
	if (hold) {
		atomic_store(&h->ep, ep_pack(level, slot));
		pthread_mutex_unlock(&h->write_lock);
	}
	atomic_fetch_add(&h->count, 1);
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

		if (atomic_load(&node_at(h, slot)->state) == SLOT_LIVE)
			sample[n++] = vec_at(h, slot)[sh_rand_below(&r, h->p.dim)];
	}
	if (n > 0) {
		quant_train(&h->quant, sample, n, h->p.metric != SH_METRIC_L2);
		for (uint32_t s = 0; s < slots; s++)
			if (atomic_load(&node_at(h, s)->state) != SLOT_FREE)
				quant_encode(&h->quant, vec_at(h, s), h->p.dim,
					     arena_at(&h->codes, s));
		atomic_store_explicit(&h->quant_ready, true, memory_order_release);
	}
	sh_free(sample);
}

static void maybe_train(struct hnsw *h)
{
	if (h->p.quant == HNSW_QUANT_INT8 && !atomic_load(&h->quant_ready) &&
	    atomic_load(&h->count) >= QUANT_TRAIN)
		quant_setup(h);
}

/* ------------------------------------------------------------ public */

int hnsw_upsert(struct hnsw *h, uint64_t id, const float *vec, struct sh_err *err)
{
	struct scratch *s = scratch_get(h);
	int rv;

	if (s == NULL || scratch_fit(s, h->p.ef_construction, h->p.dim, h->m0) != 0) {
		scratch_put(h, s);
		return sh_err_set(err, SH_ENOMEM, "hnsw: out of memory");
	}
	if ((rv = prepare_vector(h, vec, s->qvec, err)) != 0)
		goto out;
	rv = insert_point(h, id, random_level(h), true, s);
	if (rv != 0)
		sh_err_set(err, rv, "hnsw: cannot insert point %llu: %s", (unsigned long long)id,
			   sh_strerror(rv));
	maybe_train(h);
	epoch_try_reclaim(h);
out:
	scratch_put(h, s);
	return rv;
}

struct build_job {
	struct hnsw *h;
	const uint64_t *ids;
	const float *vecs;
	const uint8_t *levels;
	size_t n;
	_Atomic size_t next;
	_Atomic int rv;
	_Atomic size_t failed_at;
	struct sh_err err;
};

static void *build_worker(void *arg)
{
	struct build_job *j = arg;
	struct hnsw *h = j->h;
	struct scratch *s = scratch_get(h);
	size_t i;

	while (s != NULL && atomic_load(&j->rv) == 0 &&
	       (i = atomic_fetch_add(&j->next, 1)) < j->n) {
		int rv = scratch_fit(s, h->p.ef_construction, h->p.dim, h->m0);
		struct sh_err e;

		if (rv == 0)
			rv = prepare_vector(h, j->vecs + i * h->p.dim, s->qvec, &e);
		else
			sh_err_set(&e, rv, "out of memory");
		if (rv == 0 && (rv = insert_point(h, j->ids[i], j->levels[i], false, s)) != 0)
			sh_err_set(&e, rv, "%s",
				   rv == SH_EEXIST ? "id already present" : sh_strerror(rv));
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
	scratch_put(h, s);
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

static int build_into(struct hnsw *h, const uint64_t *ids, const float *vecs, size_t n,
		      unsigned threads, struct sh_err *err)
{
	struct build_job j = {.h = h, .ids = ids, .vecs = vecs, .n = n};
	uint8_t *levels = sh_malloc(n ? n : 1);
	pthread_t tids[256];
	unsigned t, started = 0;

	if (levels == NULL)
		return sh_err_set(err, SH_ENOMEM, "hnsw: out of memory");
	for (size_t i = 0; i < n; i++)
		levels[i] = (uint8_t)random_level(h); /* drawn in order: deterministic */
	j.levels = levels;
	threads = build_threads(threads, n);
	for (t = 1; t < threads; t++)
		if (pthread_create(&tids[started], NULL, build_worker, &j) == 0)
			started++;
	build_worker(&j);
	for (t = 0; t < started; t++)
		pthread_join(tids[t], NULL);
	sh_free(levels);
	maybe_train(h);
	if (atomic_load(&j.rv) != 0)
		return sh_err_set(err, atomic_load(&j.rv), "hnsw: build: point %zu (id %llu): %s",
				  atomic_load(&j.failed_at),
				  (unsigned long long)ids[atomic_load(&j.failed_at)], j.err.msg);
	return 0;
}

static void adopt_arena(struct arena *to, struct arena *from)
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
	struct idmap map;

	adopt_arena(&to->nodes, &from->nodes);
	adopt_arena(&to->links, &from->links);
	adopt_arena(&to->vecs, &from->vecs);
	adopt_arena(&to->codes, &from->codes);
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
int hnsw_build(struct hnsw *h, const uint64_t *ids, const float *vecs, size_t n, unsigned threads,
	       struct sh_err *err)
{
	struct hnsw *tmp = NULL;
	int rv;

	if (atomic_load(&h->n_slots) != 0 || hnsw_new(&h->p, &tmp, NULL) != 0)
		return build_into(h, ids, vecs, n, threads, err);
	tmp->rng = h->rng;
	rv = build_into(tmp, ids, vecs, n, threads, err);
	hnsw_reorder(tmp); /* out of memory: the order stays as built */
	adopt(h, tmp);
	return rv;
}
