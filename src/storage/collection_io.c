/*
 * collection_io: a collection's part of a snapshot (doc/storage-format.md,
 * "Snapshots"): its parameters, the HNSW stream, then every point's id,
 * hash and payload in id order, and its digest.
 *
 * Loading trusts nothing: each field is checked against its limit before
 * it is used, ids must rise, every id must be in the index and the index
 * must hold no other, and the digest recomputed from the hashes must equal
 * the stored one.
 */
#include "build.h"

#include "storage/collection_impl.h"

#include "storage/le.h"
#include "util/alloc.h"

#include <inttypes.h>
#include <string.h>

/* ------------------------------------------------------------ saving */

struct out {
	hnsw_write_fn write;
	void *ctx;
	int rv;
};

static void put(struct out *o, const void *p, size_t len)
{
	if (o->rv == 0 && len > 0)
		o->rv = o->write(o->ctx, p, len);
}

static void put32(struct out *o, uint32_t v)
{
	unsigned char b[4];

	le32_put(b, v);
	put(o, b, 4);
}

static void put64(struct out *o, uint64_t v)
{
	unsigned char b[8];

	le64_put(b, v);
	put(o, b, 8);
}

static void put_params(struct out *o, const struct coll_params *p, uint64_t points)
{
	unsigned char len = (unsigned char)strlen(p->name);

	put(o, &len, 1);
	put(o, p->name, len);
	put32(o, p->dim);
	put32(o, (uint32_t)p->metric);
	put32(o, p->m);
	put32(o, p->ef_construction);
	put64(o, p->seed);
	put64(o, points);
}

int coll_save(const struct coll *c, hnsw_write_fn write, void *ctx, struct sh_err *err)
{
	struct out o = {write, ctx, 0};
	struct idtree_iter it;
	uint64_t id;
	void *v;
	int rv;

	put_params(&o, &c->p, idtree_count(c->tree));
	if (o.rv == 0 && (rv = hnsw_save(c->h, write, ctx, err)) != 0)
		return sh_err_wrap(err, rv, "collection '%s'", c->p.name);
	idtree_seek(c->tree, 0, &it);
	while (o.rv == 0 && idtree_next(&it, &id, &v)) {
		const struct pv *pv = v;

		put64(&o, id);
		put64(&o, pv->hash.lo);
		put64(&o, pv->hash.hi);
		put32(&o, pv->payload ? pv->payload->len : 0);
		if (pv->payload != NULL)
			put(&o, pv->payload->data, pv->payload->len);
	}
	put64(&o, c->digest.lo);
	put64(&o, c->digest.hi);
	if (o.rv != 0)
		return sh_err_set(err, o.rv, "collection '%s': write failed: %s", c->p.name,
				  sh_strerror(o.rv));
	return 0;
}

/* ------------------------------------------------------------ loading */

struct in {
	hnsw_read_fn read;
	void *ctx;
	struct sh_err *err;
};

static int get(struct in *r, void *p, size_t len, const char *what)
{
	int rv = len > 0 ? r->read(r->ctx, p, len) : 0;

	return rv != 0 ? sh_err_set(r->err, rv, "cannot read %s", what) : 0;
}

static int get32(struct in *r, uint32_t *v, const char *what)
{
	unsigned char b[4];
	int rv = get(r, b, 4, what);

	*v = le32_get(b);
	return rv;
}

static int get64(struct in *r, uint64_t *v, const char *what)
{
	unsigned char b[8];
	int rv = get(r, b, 8, what);

	*v = le64_get(b);
	return rv;
}

static int get_params(struct in *r, struct coll_params *p, uint64_t *points)
{
	unsigned char len;
	uint32_t metric;
	int rv;

	memset(p, 0, sizeof *p);
	if ((rv = get(r, &len, 1, "a collection name")) != 0)
		return rv;
	if (len == 0 || len > COLL_NAME_MAX)
		return sh_err_set(r->err, SH_ECORRUPT, "collection name of %u bytes", len);
	if ((rv = get(r, p->name, len, "a collection name")) != 0 ||
	    (rv = get32(r, &p->dim, "a dimension")) != 0 ||
	    (rv = get32(r, &metric, "a metric")) != 0 || (rv = get32(r, &p->m, "m")) != 0 ||
	    (rv = get32(r, &p->ef_construction, "ef_construction")) != 0 ||
	    (rv = get64(r, &p->seed, "a seed")) != 0 ||
	    (rv = get64(r, points, "a point count")) != 0)
		return rv;
	p->metric = (enum sh_metric)metric;
	if ((rv = coll_check_params(p, r->err)) != 0)
		return sh_err_wrap(r->err, SH_ECORRUPT, "bad parameters");
	return 0;
}

/* The index must be the one the parameters describe. */
static int check_index(struct in *r, const struct coll_params *p, const struct hnsw *h,
		       uint64_t points)
{
	const struct hnsw_params *hp = hnsw_params(h);

	if (hp->dim != p->dim || hp->metric != p->metric || hp->m != p->m ||
	    hp->ef_construction != p->ef_construction || hp->seed != p->seed)
		return sh_err_set(r->err, SH_ECORRUPT,
				  "the index's parameters differ from the collection's");
	if (hnsw_count(h) != points)
		return sh_err_set(r->err, SH_ECORRUPT,
				  "the index holds %zu points, the collection %" PRIu64,
				  hnsw_count(h), points);
	return 0;
}

static int load_point(struct in *r, struct coll *c, uint64_t i, uint64_t *prev)
{
	uint64_t id;
	uint32_t plen;
	struct pv pv = {{0, 0}, NULL}, *slot;
	bool existed;
	int rv;

	if ((rv = get64(r, &id, "a point id")) != 0 || (rv = get64(r, &pv.hash.lo, "a hash")) ||
	    (rv = get64(r, &pv.hash.hi, "a hash")) || (rv = get32(r, &plen, "a payload length")))
		return rv;
	if (i > 0 && id <= *prev)
		return sh_err_set(r->err, SH_ECORRUPT,
				  "point ids out of order (%" PRIu64 " after %" PRIu64 ")", id,
				  *prev);
	if (!hnsw_contains(c->h, id))
		return sh_err_set(r->err, SH_ECORRUPT, "point %" PRIu64 " is not in the index", id);
	if (plen > COLL_MAX_PAYLOAD)
		return sh_err_set(r->err, SH_ECORRUPT,
				  "point %" PRIu64 ": payload of %" PRIu32 " bytes", id, plen);
	if (plen > 0 && (pv.payload = sh_malloc(sizeof *pv.payload + plen)) == NULL)
		return sh_err_set(r->err, SH_ENOMEM, "out of memory");
	if (pv.payload != NULL) {
		pv.payload->len = plen;
		if ((rv = get(r, pv.payload->data, plen, "a payload")) != 0)
			goto fail;
	}
	if ((rv = idtree_put(c->tree, id, (void **)&slot, &existed)) != 0) {
		sh_err_set(r->err, rv, "out of memory");
		goto fail;
	}
	*slot = pv;
	digest_add(&c->digest, pv.hash);
	c->payload_bytes += plen;
	*prev = id;
	return 0;
fail:
	sh_free(pv.payload);
	return rv;
}

static int load_points(struct in *r, struct coll *c, uint64_t points)
{
	struct digest want;
	uint64_t prev = 0;
	int rv;

	for (uint64_t i = 0; i < points; i++)
		if ((rv = load_point(r, c, i, &prev)) != 0)
			return rv;
	if ((rv = get64(r, &want.lo, "the digest")) != 0 ||
	    (rv = get64(r, &want.hi, "the digest")) != 0)
		return rv;
	if (!digest_equal(want, c->digest)) {
		char a[33], b[33];

		digest_hex(want, a);
		digest_hex(c->digest, b);
		return sh_err_set(r->err, SH_ECORRUPT,
				  "digest mismatch: stored %s, computed from the points %s", a, b);
	}
	return 0;
}

int coll_load(hnsw_read_fn read, void *ctx, struct coll **out, struct sh_err *err)
{
	struct in r = {read, ctx, err};
	struct coll_params p;
	struct hnsw *h = NULL;
	struct coll *c = NULL;
	uint64_t points;
	int rv;

	if ((rv = get_params(&r, &p, &points)) != 0)
		return rv;
	if ((rv = hnsw_load(read, ctx, &h, err)) != 0)
		return sh_err_wrap(err, rv, "collection '%s'", p.name);
	if ((rv = check_index(&r, &p, h, points)) != 0) {
		hnsw_free(h);
		return sh_err_wrap(err, rv, "collection '%s'", p.name);
	}
	if ((rv = coll_make(&p, h, &c, err)) != 0) /* takes h over, even when it fails */
		return sh_err_wrap(err, rv, "collection '%s'", p.name);
	if ((rv = load_points(&r, c, points)) != 0) {
		coll_unref(c);
		return sh_err_wrap(err, rv, "collection '%s'", p.name);
	}
	*out = c;
	return 0;
}
