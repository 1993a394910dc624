/*
 * hnsw_reorder: renumber the slots of an index in breadth-first order of its
 * level-0 graph, so that the neighbours of a point sit next to each other in
 * memory and a search reads short runs instead of scattered records (graph
 * reordering; Coleman et al., "Graph Reordering for Cache-Efficient Near
 * Neighbor Search", NeurIPS 2022, find BFS-like orders give most of the gain).
 *
 * Needs exclusive access: no search, no writer (hnsw_build calls it on a
 * private index before publishing it).  Free and retired slots go last.
 * Records are permuted in place, so memory use does not double; the only
 * allocations (the order, a bitmap) happen before anything changes.
 */
#include "build.h"

#include "index/hnsw_impl.h"

#include "util/alloc.h"

#include <string.h>

/* order[i] = old slot placed at new slot i; BFS from the entry point, then
 * every point BFS did not reach, then everything else. */
static int bfs_order(struct hnsw *h, uint32_t n, uint32_t *order, uint32_t *newpos)
{
	uint64_t ep = atomic_load(&h->ep);
	uint32_t head = 0, tail = 0, e;

	memset(newpos, 0xff, (size_t)n * sizeof *newpos);
	for (uint32_t start = ep == HNSW_EP_EMPTY ? 0 : (uint32_t)ep, k = 0; k <= n; k++) {
		uint32_t root = k == 0 ? start : k - 1;
		uint8_t st;

		if (root >= n || newpos[root] != HNSW_NO_SLOT)
			continue;
		st = atomic_load(&hnsw__node_at(h, root)->state);
		if (st != HNSW_SLOT_LIVE && st != HNSW_SLOT_DELETED)
			continue;
		newpos[root] = tail;
		order[tail++] = root;
		while (head < tail) {
			_Atomic uint32_t *l = hnsw__links_at(h, order[head++], 0);

			for (uint32_t i = 0;
			     i < h->m0 && (e = hnsw__link_get(l, i)) != HNSW_NO_SLOT; i++) {
				if (newpos[e] != HNSW_NO_SLOT)
					continue;
				newpos[e] = tail;
				order[tail++] = e;
			}
		}
	}
	for (uint32_t s = 0; s < n; s++) /* free slots keep relative order at the end */
		if (newpos[s] == HNSW_NO_SLOT) {
			newpos[s] = tail;
			order[tail++] = s;
		}
	return 0;
}

/* Permute one arena in place by following the cycles of order (new slot j
 * takes the record of old slot order[j]): no second copy of the records,
 * one record of scratch.  done is a bitmap of n bits, cleared here. */
static void permute_arena(struct hnsw_arena *a, uint32_t n, const uint32_t *order, uint64_t *done,
			  char *tmp)
{
	if (a->stride == 0)
		return;
	memset(done, 0, ((size_t)n + 63) / 64 * sizeof *done);
	for (uint32_t start = 0; start < n; start++) {
		uint32_t j = start;

		if (done[start / 64] >> (start % 64) & 1)
			continue;
		memcpy(tmp, hnsw__arena_at(a, start), a->stride);
		for (;;) {
			uint32_t src = order[j];

			done[j / 64] |= 1ull << (j % 64);
			if (src == start) {
				memcpy(hnsw__arena_at(a, j), tmp, a->stride);
				break;
			}
			memcpy(hnsw__arena_at(a, j), hnsw__arena_at(a, src), a->stride);
			j = src;
		}
	}
}

static int permute(struct hnsw *h, uint32_t n, const uint32_t *order)
{
	struct hnsw_arena *arenas[5] = {&h->nodes, &h->links, &h->vecs, &h->codes, &h->indeg};
	uint64_t *done = sh_malloc(((size_t)n + 63) / 64 * sizeof *done + 8);
	char *tmp = sh_malloc(h->vecs.stride > h->links.stride ? h->vecs.stride : h->links.stride);

	if (done == NULL || tmp == NULL) {
		sh_free(done);
		sh_free(tmp);
		return SH_ENOMEM;
	}
	for (int i = 0; i < 5; i++)
		permute_arena(arenas[i], n, order, done, tmp);
	sh_free(done);
	sh_free(tmp);
	return 0;
}

static void remap_list(_Atomic uint32_t *l, uint32_t cap, const uint32_t *newpos)
{
	uint32_t e;

	for (uint32_t i = 0; i < cap && (e = atomic_load(&l[i])) != HNSW_NO_SLOT; i++)
		atomic_store(&l[i], newpos[e]);
}

static void remap_slots(uint32_t *v, size_t n, const uint32_t *newpos)
{
	for (size_t i = 0; i < n; i++)
		v[i] = newpos[v[i]];
}

int hnsw_reorder(struct hnsw *h)
{
	uint32_t n = atomic_load(&h->n_slots);
	uint32_t *order = sh_malloc((size_t)(n ? n : 1) * sizeof *order);
	uint32_t *newpos = sh_malloc((size_t)(n ? n : 1) * sizeof *newpos);
	uint64_t ep = atomic_load(&h->ep);
	int rv = SH_ENOMEM;

	if (order == NULL || newpos == NULL || bfs_order(h, n, order, newpos) != 0)
		goto out;
	if (permute(h, n, order) != 0)
		goto out;
	for (uint32_t s = 0; s < n; s++) {
		struct hnsw_node *nd = hnsw__node_at(h, s);
		uint32_t next = atomic_load(&nd->next);

		if (next != HNSW_NO_SLOT) /* a replaced version pending deletion */
			atomic_store(&nd->next, newpos[next]);
		nd->prev = HNSW_NO_SLOT; /* only a NEW slot uses it, and none exists here */
		remap_list(hnsw__links_at(h, s, 0), h->m0, newpos);
		for (int l = 1; l <= nd->level && atomic_load(&nd->upper) != NULL; l++)
			remap_list(hnsw__links_at(h, s, l), h->p.m, newpos);
	}
	for (size_t i = 0; i < h->map.cap; i++)
		if (h->map.slots[i] != HNSW_NO_SLOT)
			h->map.slots[i] = newpos[h->map.slots[i]];
	remap_slots(h->pending, h->n_pending, newpos);
	remap_slots(h->free_slots, h->n_free, newpos);
	remap_slots(h->limbo[0], h->n_limbo[0], newpos);
	remap_slots(h->limbo[1], h->n_limbo[1], newpos);
	if (ep != HNSW_EP_EMPTY)
		atomic_store(&h->ep, (ep & ~(uint64_t)UINT32_MAX) | newpos[(uint32_t)ep]);
	rv = 0;
out:
	sh_free(order);
	sh_free(newpos);
	return rv;
}
