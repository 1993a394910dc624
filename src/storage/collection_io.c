/*
 * collection_io: a collection's part of a snapshot (doc/storage-format.md,
 * "Snapshots"): its parameters, the HNSW stream, the fresh set (format 3
 * on), then every point's id, hash and payload in id order, and its
 * digest.
 *
 * Loading trusts nothing: each field is checked against its limit before
 * it is used, ids must rise, every id must be a fresh vector or in the
 * graph, every graph id must be a point or have a tombstone, and the
 * digest recomputed from the hashes must equal the stored one.
 */
#include "build.h"

#include "storage/collection_impl.h"

#include "storage/le.h"
#include "util/alloc.h"
#include "util/clock.h"

#include <inttypes.h>
#include <math.h>
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

/* A tombstone of an id the graph does not hold hides nothing (the indexer
 * is held still meanwhile): it is not written. */
static bool worth_saving(const struct coll *c, uint32_t i)
{
	struct fresh_entry e;

	fresh_at(c->fresh, i, &e, NULL);
	return !e.tomb || hnsw_contains(c->h, e.id);
}

/* The fresh set: a count, then per entry its id, 1 for a tombstone or 0
 * and its vector (dim floats, as stored: prepared). */
static void put_fresh(struct out *o, const struct coll *c, float *vec)
{
	size_t n = fresh_count(c->fresh), saved = 0;

	for (uint32_t i = 0; i < n; i++)
		saved += worth_saving(c, i);
	put64(o, saved);
	for (uint32_t i = 0; i < n && o->rv == 0; i++) {
		struct fresh_entry e;
		unsigned char tomb;

		if (!worth_saving(c, i))
			continue;
		fresh_at(c->fresh, i, &e, vec);
		tomb = e.tomb;
		put64(o, e.id);
		put(o, &tomb, 1);
		if (!e.tomb)
			put(o, vec, c->p.dim * sizeof *vec);
	}
}

static int save(const struct coll *c, hnsw_write_fn write, void *ctx, float *vec,
		struct sh_err *err)
{
	struct out o = {write, ctx, 0};
	struct idtree_iter it;
	uint64_t id;
	void *v;
	int rv;

	put_params(&o, &c->p, idtree_count(c->tree));
	if (o.rv == 0 && (rv = hnsw_save(c->h, write, ctx, err)) != 0)
		return sh_err_wrap(err, rv, "collection '%s'", c->p.name);
	put_fresh(&o, c, vec);
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

void coll_hold(struct coll *c)
{
	atomic_store(&c->hold, true); /* the indexer's step ends at its next point */
	pthread_mutex_lock(&c->graph_lock);
	pthread_rwlock_rdlock(&c->fresh_lock);
}

void coll_unhold(struct coll *c)
{
	atomic_store(&c->hold, false); /* first: the indexer waiting for the lock has a step */
	pthread_rwlock_unlock(&c->fresh_lock);
	pthread_mutex_unlock(&c->graph_lock);
}

int coll_save_held(const struct coll *c, hnsw_write_fn write, void *ctx, struct sh_err *err)
{
	float *vec = sh_malloc(c->p.dim * sizeof *vec);
	int rv;

	if (vec == NULL)
		return sh_err_set(err, SH_ENOMEM, "collection '%s': out of memory", c->p.name);
	rv = save(c, write, ctx, vec, err);
	sh_free(vec);
	return rv;
}

/* The indexer is held still while the graph and the fresh set are written:
 * they must agree. */
int coll_save(const struct coll *c, hnsw_write_fn write, void *ctx, struct sh_err *err)
{
	struct coll *m = (struct coll *)(uintptr_t)c;
	int rv;

	coll_hold(m);
	rv = coll_save_held(c, write, ctx, err);
	coll_unhold(m);
	return rv;
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
static int check_index(struct in *r, const struct coll_params *p, const struct hnsw *h)
{
	const struct hnsw_params *hp = hnsw_params(h);

	if (hp->dim != p->dim || hp->metric != p->metric || hp->m != p->m ||
	    hp->ef_construction != p->ef_construction || hp->seed != p->seed)
		return sh_err_set(r->err, SH_ECORRUPT,
				  "the index's parameters differ from the collection's");
	return 0;
}

/* What loading counts to check that the graph, the fresh set and the
 * points agree. */
struct tally {
	uint64_t in_graph;     /* graph ids seen: points and tombstones */
	uint64_t fresh_points; /* points whose vector is fresh */
};

/* A fresh vector as the graph would store it: finite, bounded, and under
 * cosine of unit length (prepared). */
static int check_fresh_vector(struct in *r, const struct coll *c, uint64_t id, const float *vec)
{
	double norm = 0;

	if (hnsw_check_vector(vec, c->p.dim, c->p.metric, "vector", r->err) != 0)
		return sh_err_wrap(r->err, SH_ECORRUPT, "fresh entry %" PRIu64, id);
	for (uint32_t i = 0; i < c->p.dim && c->p.metric == SH_METRIC_COSINE; i++)
		norm += (double)vec[i] * (double)vec[i];
	if (c->p.metric == SH_METRIC_COSINE && (norm < 0.999 || norm > 1.001))
		return sh_err_set(r->err, SH_ECORRUPT,
				  "fresh entry %" PRIu64 ": a cosine vector of norm %g, not 1", id,
				  sqrt(norm));
	return 0;
}

static int load_entry(struct in *r, struct coll *c, float *vec, struct tally *t)
{
	uint64_t id;
	unsigned char tomb;
	int rv;

	if ((rv = get64(r, &id, "a fresh id")) != 0 ||
	    (rv = get(r, &tomb, 1, "a fresh entry")) != 0)
		return rv;
	if (tomb > 1)
		return sh_err_set(r->err, SH_ECORRUPT, "fresh entry %" PRIu64 ": kind %u", id,
				  tomb);
	if (tomb && !hnsw_contains(c->h, id))
		return sh_err_set(r->err, SH_ECORRUPT,
				  "fresh entry %" PRIu64 ": a tombstone of no point of the index",
				  id);
	if (!tomb && ((rv = get(r, vec, c->p.dim * sizeof *vec, "a fresh vector")) != 0 ||
		      (rv = check_fresh_vector(r, c, id, vec)) != 0))
		return rv;
	if (fresh_find(c->fresh, id) != FRESH_NONE)
		return sh_err_set(r->err, SH_ECORRUPT, "fresh entry %" PRIu64 " twice", id);
	if (fresh_put(c->fresh, id, tomb ? NULL : vec, sh_clock_mono_ms()) != 0)
		return sh_err_set(r->err, SH_ENOMEM, "out of memory");
	t->in_graph += tomb;
	return 0;
}

/* The fresh set (format 3).  Its size is bounded by what the stream holds:
 * a vector takes dim floats of it, a tombstone a graph id. */
static int load_fresh(struct in *r, struct coll *c, float *vec, struct tally *t)
{
	uint64_t n;
	int rv;

	if ((rv = get64(r, &n, "the fresh set's size")) != 0)
		return rv;
	if (n > HNSW_MAX_POINTS)
		return sh_err_set(r->err, SH_ECORRUPT, "a fresh set of %" PRIu64 " entries", n);
	for (uint64_t i = 0; i < n; i++)
		if ((rv = load_entry(r, c, vec, t)) != 0)
			return rv;
	coll__fresh_sizes(c);
	return 0;
}

/* Where point id's vector is: fresh (not a tombstone) or in the graph. */
static int place_point(struct in *r, struct coll *c, uint64_t id, struct tally *t)
{
	struct fresh_entry fe;
	uint32_t pos = fresh_find(c->fresh, id);

	if (pos != FRESH_NONE) {
		fresh_at(c->fresh, pos, &fe, NULL);
		if (fe.tomb)
			return sh_err_set(r->err, SH_ECORRUPT, "point %" PRIu64 " has a tombstone",
					  id);
		t->fresh_points++;
	} else if (!hnsw_contains(c->h, id)) {
		return sh_err_set(r->err, SH_ECORRUPT, "point %" PRIu64 " is not in the index", id);
	}
	t->in_graph += hnsw_contains(c->h, id);
	return 0;
}

static int load_point(struct in *r, struct coll *c, uint64_t i, uint64_t *prev, struct tally *t)
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
	if ((rv = place_point(r, c, id, t)) != 0)
		return rv;
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

/* Every graph id must be a point or have a tombstone, every fresh vector
 * a point's. */
static int check_tally(struct in *r, const struct coll *c, const struct tally *t)
{
	size_t vectors = fresh_count(c->fresh) - fresh_tombstones(c->fresh);

	if (t->in_graph != hnsw_count(c->h))
		return sh_err_set(r->err, SH_ECORRUPT,
				  "the index holds %zu points, the collection %" PRIu64 " of them",
				  hnsw_count(c->h), t->in_graph);
	if (t->fresh_points != vectors)
		return sh_err_set(r->err, SH_ECORRUPT,
				  "the fresh set holds %zu vectors, of %" PRIu64 " points", vectors,
				  t->fresh_points);
	return 0;
}

static int load_points(struct in *r, struct coll *c, uint64_t points, struct tally *t)
{
	struct digest want;
	uint64_t prev = 0;
	int rv;

	for (uint64_t i = 0; i < points; i++)
		if ((rv = load_point(r, c, i, &prev, t)) != 0)
			return rv;
	if ((rv = check_tally(r, c, t)) != 0)
		return rv;
	atomic_store(&c->count, idtree_count(c->tree));
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

static int load_rest(struct in *r, struct coll *c, uint64_t points, bool with_fresh)
{
	float *vec = sh_malloc(c->p.dim * sizeof *vec);
	struct tally t = {0, 0};
	int rv;

	if (vec == NULL)
		return sh_err_set(r->err, SH_ENOMEM, "out of memory");
	if ((!with_fresh || (rv = load_fresh(r, c, vec, &t)) == 0))
		rv = load_points(r, c, points, &t);
	sh_free(vec);
	return rv;
}

int coll_load(hnsw_read_fn read, void *ctx, bool with_fresh, struct coll **out, struct sh_err *err)
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
	if ((rv = check_index(&r, &p, h)) != 0) {
		hnsw_free(h);
		return sh_err_wrap(err, rv, "collection '%s'", p.name);
	}
	if ((rv = coll_make(&p, h, &c, err)) != 0) /* takes h over, even when it fails */
		return sh_err_wrap(err, rv, "collection '%s'", p.name);
	if ((rv = load_rest(&r, c, points, with_fresh)) != 0) {
		coll_unref(c);
		return sh_err_wrap(err, rv, "collection '%s'", p.name);
	}
	*out = c;
	return 0;
}
