/*
 * hnsw_io: the index as one checksummed stream (doc/storage-format.md,
 * "Index stream"), so that a restart loads the graph instead of rebuilding
 * it.  hnsw_save() must not run alongside a writer (the caller serializes
 * it with writes; searches may go on).
 *
 * Loading trusts nothing: every count is checked against its limit before
 * use, memory grows only as records arrive, every link must name a slot of
 * the stream that holds a point of a high enough level, ids must be unique,
 * and the CRC32C of the whole stream must match its trailer.
 */
#include "build.h"

#include "index/hnsw_impl.h"

#include "util/alloc.h"
#include "util/crc32c.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define STREAM_MAGIC    "SHOALHNS"
#define STREAM_VERSION  1u
#define BYTE_ORDER_MARK 0x01020304u
#define IOBUF           (64 * 1024)

struct hdr {
	char magic[8];
	uint32_t version, bom;
	uint32_t dim, metric, m, ef_construction, quant, n_slots;
	uint64_t seed, count, ep;
	uint64_t rng[4];
	float q_lo, q_scale;
	uint32_t q_ready, reserved;
};

/* ------------------------------------------------------------ writing */

struct out {
	hnsw_write_fn write;
	void *ctx;
	uint32_t crc;
	size_t n;
	int rv;
	unsigned char buf[IOBUF];
};

static void out_flush(struct out *o)
{
	if (o->rv == 0 && o->n > 0)
		o->rv = o->write(o->ctx, o->buf, o->n);
	o->n = 0;
}

static void out_put(struct out *o, const void *p, size_t len)
{
	o->crc = sh_crc32c(o->crc, p, len);
	while (len > 0 && o->rv == 0) {
		size_t k = IOBUF - o->n < len ? IOBUF - o->n : len;

		memcpy(o->buf + o->n, p, k);
		o->n += k;
		p = (const char *)p + k;
		len -= k;
		if (o->n == IOBUF)
			out_flush(o);
	}
}

static void put_list(struct out *o, _Atomic uint32_t *l, uint32_t cap)
{
	uint32_t cnt = hnsw__links_len(l, cap);

	out_put(o, &cnt, sizeof cnt);
	for (uint32_t i = 0; i < cnt; i++) {
		uint32_t e = hnsw__link_get(l, i);

		out_put(o, &e, sizeof e);
	}
}

static void put_slot(struct out *o, const struct hnsw *h, uint32_t slot)
{
	struct hnsw_node *n = hnsw__node_at(h, slot);
	uint8_t state = atomic_load(&n->state);

	if (state == HNSW_SLOT_RETIRED)
		state = HNSW_SLOT_FREE; /* unreferenced: reusable after loading */
	out_put(o, &state, 1);
	if (state == HNSW_SLOT_FREE)
		return;
	out_put(o, &n->id, sizeof n->id);
	out_put(o, &n->level, 1);
	for (int level = 0; level <= n->level; level++)
		put_list(o, hnsw__links_at(h, slot, level), hnsw__max_links(h, level));
	out_put(o, hnsw__vec_at(h, slot), h->p.dim * sizeof(float));
}

int hnsw_save(const struct hnsw *h, hnsw_write_fn write, void *ctx, struct sh_err *err)
{
	struct out *o = sh_calloc(1, sizeof *o);
	struct hdr hd = {.version = STREAM_VERSION, .bom = BYTE_ORDER_MARK};
	uint32_t crc;
	int rv;

	if (o == NULL)
		return sh_err_set(err, SH_ENOMEM, "hnsw: save: out of memory");
	o->write = write;
	o->ctx = ctx;
	memcpy(hd.magic, STREAM_MAGIC, 8);
	hd.dim = h->p.dim;
	hd.metric = (uint32_t)h->p.metric;
	hd.m = h->p.m;
	hd.ef_construction = h->p.ef_construction;
	hd.quant = (uint32_t)h->p.quant;
	hd.n_slots = atomic_load(&hnsw__mut(h)->n_slots);
	hd.seed = h->p.seed;
	hd.count = hnsw_count(h);
	hd.ep = atomic_load(&hnsw__mut(h)->ep);
	memcpy(hd.rng, h->rng.s, sizeof hd.rng);
	hd.q_lo = h->quant.lo;
	hd.q_scale = h->quant.scale;
	hd.q_ready = atomic_load(&hnsw__mut(h)->quant_ready);
	out_put(o, &hd, sizeof hd);
	for (uint32_t s = 0; s < hd.n_slots; s++)
		put_slot(o, h, s);
	crc = o->crc;
	out_put(o, &crc, sizeof crc);
	out_flush(o);
	rv = o->rv;
	sh_free(o);
	return rv != 0 ? sh_err_set(err, rv, "hnsw: save: write failed: %s", sh_strerror(rv)) : 0;
}

/* ------------------------------------------------------------ reading */

struct in {
	hnsw_read_fn read;
	void *ctx;
	uint32_t crc;
	uint64_t off; /* bytes consumed, for messages */
	struct sh_err *err;
};

static int in_get(struct in *r, void *p, size_t len, const char *what)
{
	int rv = r->read(r->ctx, p, len);

	if (rv != 0)
		return sh_err_set(r->err, SH_ECORRUPT,
				  "hnsw: load: stream ends in %s at offset %llu", what,
				  (unsigned long long)r->off);
	r->crc = sh_crc32c(r->crc, p, len);
	r->off += len;
	return 0;
}

static int bad(struct in *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(struct in *r, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return sh_err_set(r->err, SH_ECORRUPT, "hnsw: load: %s (offset %llu)", msg,
			  (unsigned long long)r->off);
}

static int read_header(struct in *r, struct hdr *hd, struct hnsw **out)
{
	struct hnsw_params p;
	int rv;

	if ((rv = in_get(r, hd, sizeof *hd, "the header")) != 0)
		return rv;
	if (memcmp(hd->magic, STREAM_MAGIC, 8) != 0)
		return bad(r, "not an index stream (bad magic)");
	if (hd->version != STREAM_VERSION)
		return bad(r, "format version %u, this build reads %u", hd->version,
			   STREAM_VERSION);
	if (hd->bom != BYTE_ORDER_MARK)
		return bad(r, "written on a machine of another byte order");
	if (hd->n_slots > HNSW_MAX_POINTS || hd->count > hd->n_slots)
		return bad(r, "absurd sizes: %llu points in %u slots",
			   (unsigned long long)hd->count, hd->n_slots);
	p = (struct hnsw_params){hd->dim,  (enum sh_metric)hd->metric, hd->m, hd->ef_construction,
				 hd->seed, (enum hnsw_quant)hd->quant};
	if ((rv = hnsw_new(&p, out, r->err)) != 0)
		return sh_err_wrap(r->err, SH_ECORRUPT, "hnsw: load: bad parameters");
	memcpy((*out)->rng.s, hd->rng, sizeof hd->rng);
	return 0;
}

static int read_list(struct in *r, struct hnsw *h, _Atomic uint32_t *l, int level, uint32_t n)
{
	uint32_t cnt, e;
	int rv;

	if ((rv = in_get(r, &cnt, sizeof cnt, "a link count")) != 0)
		return rv;
	if (cnt > hnsw__max_links(h, level))
		return bad(r, "%u links at level %d", cnt, level);
	for (uint32_t i = 0; i < cnt; i++) {
		if ((rv = in_get(r, &e, sizeof e, "a link")) != 0)
			return rv;
		if (e >= n)
			return bad(r, "link to slot %u of %u", e, n);
		atomic_store(&l[i], e);
	}
	return 0;
}

static int read_upper(struct in *r, struct hnsw *h, struct hnsw_node *nd)
{
	size_t words = (size_t)nd->level * h->p.m;
	_Atomic uint32_t *u = sh_malloc(words * sizeof *u);

	if (u == NULL)
		return sh_err_set(r->err, SH_ENOMEM, "hnsw: load: out of memory");
	for (size_t i = 0; i < words; i++)
		atomic_init(&u[i], HNSW_NO_SLOT);
	atomic_store(&nd->upper, u);
	atomic_fetch_add(&h->upper_bytes, words * sizeof *u);
	return 0;
}

static int read_slot(struct in *r, struct hnsw *h, uint32_t slot, uint32_t n)
{
	struct hnsw_node *nd;
	uint8_t state, level;
	uint64_t id;
	int rv;

	if ((rv = in_get(r, &state, 1, "a slot")) != 0)
		return rv;
	if (hnsw__arenas_reserve(h, slot + 1) != 0)
		return sh_err_set(r->err, SH_ENOMEM, "hnsw: load: out of memory");
	hnsw__slot_init(h, slot);
	atomic_store(&h->n_slots, slot + 1);
	nd = hnsw__node_at(h, slot);
	if (state == HNSW_SLOT_FREE)
		return 0;
	if (state != HNSW_SLOT_LIVE && state != HNSW_SLOT_DELETED)
		return bad(r, "slot %u has state %u", slot, state);
	if ((rv = in_get(r, &id, sizeof id, "an id")) != 0 ||
	    (rv = in_get(r, &level, 1, "a level")))
		return rv;
	if (level > HNSW_MAX_LEVEL)
		return bad(r, "slot %u has level %u", slot, level);
	nd->id = id;
	nd->level = level;
	if (level > 0 && (rv = read_upper(r, h, nd)) != 0)
		return rv;
	for (int l = 0; l <= level; l++)
		if ((rv = read_list(r, h, hnsw__links_at(h, slot, l), l, n)) != 0)
			return rv;
	if ((rv = in_get(r, hnsw__arena_at(&h->vecs, slot), h->p.dim * sizeof(float),
			 "a vector")) != 0)
		return rv;
	atomic_store(&nd->state, state);
	return 0;
}

/* Every link names a point (not a free slot) whose level reaches the list's. */
static int check_links(struct in *r, struct hnsw *h)
{
	uint32_t n = atomic_load(&h->n_slots);

	for (uint32_t s = 0; s < n; s++) {
		struct hnsw_node *nd = hnsw__node_at(h, s);

		if (atomic_load(&nd->state) == HNSW_SLOT_FREE)
			continue;
		for (int l = 0; l <= nd->level; l++) {
			_Atomic uint32_t *lst = hnsw__links_at(h, s, l);
			uint32_t e;

			for (uint32_t i = 0; i < hnsw__max_links(h, l) &&
					     (e = hnsw__link_get(lst, i)) != HNSW_NO_SLOT;
			     i++) {
				struct hnsw_node *t = hnsw__node_at(h, e);

				if (atomic_load(&t->state) == HNSW_SLOT_FREE || t->level < l)
					return bad(r, "slot %u links to an invalid slot %u", s, e);
			}
		}
	}
	return 0;
}

/* Rebuild what the stream does not carry: id map, free and pending lists,
 * count, entry point, codes. */
static int rebuild(struct in *r, struct hnsw *h, const struct hdr *hd)
{
	uint32_t n = atomic_load(&h->n_slots);
	size_t live = 0;

	for (uint32_t s = 0; s < n; s++) {
		uint8_t st = atomic_load(&hnsw__node_at(h, s)->state);

		if (st == HNSW_SLOT_LIVE) {
			if (hnsw__idmap_get(h, hnsw__node_at(h, s)->id) != HNSW_NO_SLOT)
				return bad(r, "id %llu appears twice (slot %u)",
					   (unsigned long long)hnsw__node_at(h, s)->id, s);
			if (hnsw__idmap_put(h, s, false) != 0)
				return sh_err_set(r->err, SH_ENOMEM, "hnsw: load: out of memory");
			live++;
		} else if (st == HNSW_SLOT_FREE) {
			hnsw__slot_unclaim(h, s);
		} else {
			h->n_pending++; /* counted now, queued below */
			atomic_fetch_add(&h->dead, 1);
		}
	}
	if (live != hd->count)
		return bad(r, "header says %llu points, the stream holds %zu",
			   (unsigned long long)hd->count, live);
	atomic_store(&h->count, live);
	if (hd->ep != HNSW_EP_EMPTY &&
	    ((uint32_t)hd->ep >= n ||
	     atomic_load(&hnsw__node_at(h, (uint32_t)hd->ep)->state) != HNSW_SLOT_LIVE ||
	     hnsw__node_at(h, (uint32_t)hd->ep)->level != (hd->ep >> 32)))
		return bad(r, "entry point %u is not a point of level %u", (uint32_t)hd->ep,
			   (uint32_t)(hd->ep >> 32));
	if (hd->ep == HNSW_EP_EMPTY && live > 0)
		return bad(r, "%zu points but no entry point", live);
	atomic_store(&h->ep, hd->ep);
	return 0;
}

static int queue_deleted(struct hnsw *h)
{
	uint32_t n = atomic_load(&h->n_slots);
	size_t k = 0;

	h->pending = sh_reallocarray(NULL, h->n_pending ? h->n_pending : 1, sizeof *h->pending);
	if (h->pending == NULL)
		return SH_ENOMEM;
	h->pending_cap = h->n_pending ? h->n_pending : 1;
	for (uint32_t s = 0; s < n; s++)
		if (atomic_load(&hnsw__node_at(h, s)->state) == HNSW_SLOT_DELETED)
			h->pending[k++] = s;
	return 0;
}

static int load_body(struct in *r, struct hnsw *h, const struct hdr *hd)
{
	uint32_t crc, want;
	int rv;

	for (uint32_t s = 0; s < hd->n_slots; s++)
		if ((rv = read_slot(r, h, s, hd->n_slots)) != 0)
			return rv;
	want = r->crc;
	if ((rv = in_get(r, &crc, sizeof crc, "the checksum")) != 0)
		return rv;
	if (crc != want)
		return bad(r, "checksum mismatch: stored %08x, computed %08x", crc, want);
	if ((rv = check_links(r, h)) != 0 || (rv = rebuild(r, h, hd)) != 0)
		return rv;
	if (queue_deleted(h) != 0)
		return sh_err_set(r->err, SH_ENOMEM, "hnsw: load: out of memory");
	hnsw__indeg_recount(h);
	if (hd->q_ready && hd->quant == HNSW_QUANT_INT8 && hd->q_scale > 0) {
		h->quant = (struct quant){hd->q_lo, hd->q_scale, 1.0f / hd->q_scale,
					  h->p.metric != SH_METRIC_L2};
		for (uint32_t s = 0; s < hd->n_slots; s++)
			if (atomic_load(&hnsw__node_at(h, s)->state) != HNSW_SLOT_FREE)
				quant_encode(&h->quant, hnsw__vec_at(h, s), h->p.dim,
					     hnsw__arena_at(&h->codes, s));
		atomic_store(&h->quant_ready, true);
	}
	return 0;
}

int hnsw_load(hnsw_read_fn read, void *ctx, struct hnsw **out, struct sh_err *err)
{
	struct in r = {read, ctx, 0, 0, err};
	struct hdr hd;
	struct hnsw *h = NULL;
	int rv = read_header(&r, &hd, &h);

	if (rv == 0)
		rv = load_body(&r, h, &hd);
	if (rv != 0) {
		hnsw_free(h);
		return rv;
	}
	*out = h;
	return 0;
}
