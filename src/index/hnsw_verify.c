/*
 * hnsw_verify: check the graph's invariants (hnsw_verify in hnsw.h), for
 * tests and debugging.  Reads everything; no writer may run meanwhile
 * (searches may).  Allocates a bitmap and a queue of one word per slot.
 *
 * Checked:
 *  - states: no NEW slot (no insert in flight); count = LIVE slots; dead =
 *    DELETED + RETIRED slots; pending = DELETED slots;
 *  - id map: as many entries as LIVE slots, each LIVE id mapped to its slot;
 *  - lists (of LIVE and DELETED slots, at each of their levels): at most
 *    the level's capacity, no link to the slot itself, none twice, each to
 *    a LIVE or DELETED slot whose level reaches the list's;
 *  - the entry point: empty exactly when no point is live, else a LIVE
 *    slot of the highest level among LIVE slots, stored with that level;
 *  - in-degrees: each LIVE slot's count is its level-0 in-links from LIVE
 *    slots, at least one but for the entry point (hnsw_reach.c);
 *  - reachability: breadth-first from the entry point over level-0 links
 *    (through deleted slots too, as searches go) reaches every LIVE slot.
 */
#include "build.h"

#include "index/hnsw_impl.h"

#include "util/alloc.h"

#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

static int bad(struct sh_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(struct sh_err *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sh_err_setv(err, SH_ECORRUPT, fmt, ap);
	va_end(ap);
	return SH_ECORRUPT;
}

static bool linkable(const struct hnsw *h, uint32_t slot)
{
	uint8_t st = atomic_load(&hnsw__node_at(h, slot)->state);

	return st == HNSW_SLOT_LIVE || st == HNSW_SLOT_DELETED;
}

static int check_list(const struct hnsw *h, uint32_t slot, int level, struct sh_err *err)
{
	_Atomic uint32_t *l = hnsw__links_at(h, slot, level);
	uint32_t cap = hnsw__max_links(h, level), n = hnsw__links_len(l, cap);
	uint32_t slots = atomic_load(&hnsw__mut(h)->n_slots);

	for (uint32_t i = 0; i < n; i++) {
		uint32_t e = hnsw__link_get(l, i);

		if (e == slot)
			return bad(err, "slot %" PRIu32 " links to itself at level %d", slot,
				   level);
		if (e >= slots || !linkable(h, e))
			return bad(err,
				   "slot %" PRIu32 " links to slot %" PRIu32
				   " at level %d, which is no point",
				   slot, e, level);
		if (hnsw__node_at(h, e)->level < level)
			return bad(err,
				   "slot %" PRIu32 " links at level %d to slot %" PRIu32
				   " of level %d",
				   slot, level, e, hnsw__node_at(h, e)->level);
		for (uint32_t j = 0; j < i; j++)
			if (hnsw__link_get(l, j) == e)
				return bad(err,
					   "slot %" PRIu32 " links twice to slot %" PRIu32
					   " at level %d",
					   slot, e, level);
	}
	return 0;
}

/* States, counts, lists and the id map; *top the highest live level. */
static int check_slots(const struct hnsw *h, int *top, struct sh_err *err)
{
	uint32_t slots = atomic_load(&hnsw__mut(h)->n_slots);
	size_t live = 0, deleted = 0, retired = 0;
	int rv;

	*top = -1;
	for (uint32_t s = 0; s < slots; s++) {
		const struct hnsw_node *n = hnsw__node_at(h, s);
		uint8_t st = atomic_load(&hnsw__node_mut(n)->state);

		if (st == HNSW_SLOT_NEW)
			return bad(err, "slot %" PRIu32 " is still being inserted", s);
		if (st == HNSW_SLOT_FREE || st == HNSW_SLOT_RETIRED) {
			retired += st == HNSW_SLOT_RETIRED;
			continue;
		}
		for (int level = 0; level <= n->level; level++)
			if ((rv = check_list(h, s, level, err)) != 0)
				return rv;
		if (st == HNSW_SLOT_DELETED) {
			deleted++;
			continue;
		}
		live++;
		if (n->level > *top)
			*top = n->level;
		if (hnsw__idmap_get(h, n->id) != s)
			return bad(err, "id %" PRIu64 " of slot %" PRIu32 " maps to slot %" PRIu32,
				   n->id, s, hnsw__idmap_get(h, n->id));
	}
	if (live != hnsw_count(h) || live != h->map.n)
		return bad(err, "%zu live slots, count %zu, %zu ids mapped", live, hnsw_count(h),
			   h->map.n);
	if (deleted != h->n_pending || deleted + retired != atomic_load(&hnsw__mut(h)->dead))
		return bad(err, "%zu deleted and %zu retired slots, %zu pending, dead %zu", deleted,
			   retired, h->n_pending, atomic_load(&hnsw__mut(h)->dead));
	return 0;
}

static bool is_live(const struct hnsw *h, uint32_t slot)
{
	return atomic_load(&hnsw__node_at(h, slot)->state) == HNSW_SLOT_LIVE;
}

/* Every LIVE slot's in-degree (hnsw__indeg_at) against the lists. */
static int check_indeg(const struct hnsw *h, uint32_t ep, struct sh_err *err)
{
	uint32_t slots = atomic_load(&hnsw__mut(h)->n_slots), e, got;
	uint32_t *count = sh_calloc((size_t)slots + 1, sizeof *count);
	int rv = 0;

	if (count == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	for (uint32_t s = 0; s < slots; s++) {
		_Atomic uint32_t *l = hnsw__links_at(h, s, 0);

		for (uint32_t i = 0;
		     is_live(h, s) && i < h->m0 && (e = hnsw__link_get(l, i)) != HNSW_NO_SLOT; i++)
			count[e]++;
	}
	for (uint32_t s = 0; s < slots && rv == 0; s++) {
		if (!is_live(h, s))
			continue;
		got = atomic_load(hnsw__indeg_at(h, s));
		if (got != count[s])
			rv = bad(err, "slot %" PRIu32 " counts %" PRIu32 " in-links, has %" PRIu32,
				 s, got, count[s]);
		else if (got == 0 && s != ep)
			rv = bad(err,
				 "slot %" PRIu32 " (id %" PRIu64 ") has no in-link from a "
				 "live point",
				 s, hnsw__node_at(h, s)->id);
	}
	sh_free(count);
	return rv;
}

/* Breadth-first over level-0 links from the entry point. */
static int check_reach(const struct hnsw *h, uint32_t ep, struct sh_err *err)
{
	uint32_t slots = atomic_load(&hnsw__mut(h)->n_slots), head = 0, tail = 0, e;
	uint32_t *queue = sh_malloc(((size_t)slots + 1) * sizeof *queue);
	uint64_t *seen = sh_calloc((size_t)slots / 64 + 1, sizeof *seen);
	int rv = 0;

	if (queue == NULL || seen == NULL) {
		rv = sh_err_set(err, SH_ENOMEM, "out of memory");
		goto out;
	}
	queue[tail++] = ep;
	seen[ep / 64] |= 1ull << (ep % 64);
	while (head < tail) {
		_Atomic uint32_t *l = hnsw__links_at(h, queue[head++], 0);

		for (uint32_t i = 0; i < h->m0 && (e = hnsw__link_get(l, i)) != HNSW_NO_SLOT; i++)
			if (!(seen[e / 64] >> (e % 64) & 1)) {
				seen[e / 64] |= 1ull << (e % 64);
				queue[tail++] = e;
			}
	}
	for (uint32_t s = 0; s < slots && rv == 0; s++)
		if (atomic_load(&hnsw__node_at(h, s)->state) == HNSW_SLOT_LIVE &&
		    !(seen[s / 64] >> (s % 64) & 1))
			rv = bad(err,
				 "slot %" PRIu32 " (id %" PRIu64 ") is not reachable from the "
				 "entry point %" PRIu32 " at level 0",
				 s, hnsw__node_at(h, s)->id, ep);
out:
	sh_free(queue);
	sh_free(seen);
	return rv;
}

int hnsw__check_reach(const struct hnsw *h, struct sh_err *err)
{
	uint64_t ep = atomic_load(&hnsw__mut(h)->ep);

	return ep == HNSW_EP_EMPTY ? 0 : check_reach(h, (uint32_t)ep, err);
}

int hnsw_verify(const struct hnsw *h, struct sh_err *err)
{
	uint64_t ep = atomic_load(&hnsw__mut(h)->ep);
	uint32_t slot = (uint32_t)ep;
	int top, rv = check_slots(h, &top, err);

	if (rv != 0)
		return rv;
	if (ep == HNSW_EP_EMPTY)
		return top < 0 ? 0 : bad(err, "no entry point, but live points");
	if (slot >= atomic_load(&hnsw__mut(h)->n_slots) ||
	    atomic_load(&hnsw__node_at(h, slot)->state) != HNSW_SLOT_LIVE)
		return bad(err, "the entry point %" PRIu32 " is not a live point", slot);
	if ((int)(ep >> 32) != top || hnsw__node_at(h, slot)->level != top)
		return bad(err,
			   "the entry point %" PRIu32 " of level %d (stored %d) is not at the "
			   "top level %d",
			   slot, hnsw__node_at(h, slot)->level, (int)(ep >> 32), top);
	if ((rv = check_indeg(h, slot, err)) != 0)
		return rv;
	return check_reach(h, slot, err);
}
