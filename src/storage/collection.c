/*
 * collection: see collection.h.  Snapshot I/O is in collection_io.c.
 *
 * Invariant: the index and the id tree hold the same ids; the digest is the
 * collection's hash plus the hash of every point in the tree.  Both change
 * together under the write lock.
 */
#include "build.h"

#include "storage/collection_impl.h"

#include "util/alloc.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------ checks */

int coll_check_name(const char *name, size_t len, struct sh_err *err)
{
	if (len == 0 || len > COLL_NAME_MAX)
		return sh_err_set(err, SH_EINVAL,
				  "collection name must be 1 to %d characters, not %zu",
				  COLL_NAME_MAX, len);
	for (size_t i = 0; i < len; i++) {
		char ch = name[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
			return sh_err_set(err, SH_EINVAL,
					  "collection name '%.*s' has a character other than "
					  "A-Z, a-z, 0-9, '_' and '-' at position %zu",
					  (int)len, name, i);
	}
	return 0;
}

int coll_check_params(const struct coll_params *p, struct sh_err *err)
{
	int rv = coll_check_name(p->name, strnlen(p->name, sizeof p->name), err);

	if (rv != 0)
		return rv;
	if (p->dim < 1 || p->dim > HNSW_MAX_DIM)
		return sh_err_set(err, SH_EINVAL,
				  "collection '%s': dim %" PRIu32 " is not in 1..%d", p->name,
				  p->dim, HNSW_MAX_DIM);
	if (p->metric != SH_METRIC_L2 && p->metric != SH_METRIC_COSINE &&
	    p->metric != SH_METRIC_DOT)
		return sh_err_set(err, SH_EINVAL, "collection '%s': unknown metric %d", p->name,
				  (int)p->metric);
	if (p->m < HNSW_MIN_M || p->m > HNSW_MAX_M)
		return sh_err_set(err, SH_EINVAL, "collection '%s': m %" PRIu32 " is not in %d..%d",
				  p->name, p->m, HNSW_MIN_M, HNSW_MAX_M);
	if (p->ef_construction < 1 || p->ef_construction > COLL_MAX_EF_BUILD)
		return sh_err_set(err, SH_EINVAL,
				  "collection '%s': ef_construction %" PRIu32 " is not in 1..%d",
				  p->name, p->ef_construction, COLL_MAX_EF_BUILD);
	return 0;
}

static const char *json_kind(const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER:
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

/* Parse and require an object; *out the parsed value. */
static int parse_object(const char *json, size_t len, json_t **out, struct sh_err *err)
{
	json_error_t je;
	json_t *j = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);

	if (j == NULL)
		return sh_err_set(err, SH_EINVAL,
				  "payload is not valid JSON: %s (line %d, column %d)", je.text,
				  je.line, je.column);
	if (!json_is_object(j)) {
		sh_err_set(err, SH_EINVAL, "payload must be a JSON object, not %s", json_kind(j));
		json_decref(j);
		return SH_EINVAL;
	}
	*out = j;
	return 0;
}

int coll_payload_canon(const char *json, size_t len, size_t limit, char **out, size_t *out_len,
		       struct sh_err *err)
{
	json_t *j;
	char *text;
	int rv;

	if (len > COLL_MAX_PAYLOAD)
		return sh_err_set(err, SH_ETOOBIG, "payload of %zu bytes is over the limit of %zu",
				  len, limit);
	if ((rv = parse_object(json, len, &j, err)) != 0)
		return rv;
	text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	if (text == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	*out_len = strlen(text);
	if (*out_len > limit) {
		sh_err_set(err, SH_ETOOBIG, "payload of %zu bytes is over the limit of %zu",
			   *out_len, limit);
		sh_free(text); /* jansson allocates through sh_malloc (sh_alloc_hook_libs) */
		return SH_ETOOBIG;
	}
	*out = text;
	return 0;
}

static int check_point(const struct coll *c, const struct coll_point *pt, struct sh_err *err)
{
	json_t *j;
	double norm = 0;

	if (pt->dim != c->p.dim)
		return sh_err_set(err, SH_EINVAL,
				  "vector has %" PRIu32
				  " values, the collection's dimension is %" PRIu32,
				  pt->dim, c->p.dim);
	for (uint32_t i = 0; i < pt->dim; i++) {
		if (!isfinite(pt->vec[i]))
			return sh_err_set(err, SH_EINVAL, "vector value %" PRIu32 " is %s", i,
					  isnan(pt->vec[i]) ? "NaN" : "infinite");
		norm += (double)pt->vec[i] * (double)pt->vec[i];
	}
	if (c->p.metric == SH_METRIC_COSINE && norm == 0)
		return sh_err_set(err, SH_EINVAL, "a zero vector has no direction (metric cosine)");
	if (pt->payload_len > COLL_MAX_PAYLOAD)
		return sh_err_set(err, SH_ETOOBIG, "payload of %zu bytes is over the limit of %u",
				  pt->payload_len, COLL_MAX_PAYLOAD);
	if (pt->payload_len > 0) {
		int rv = parse_object(pt->payload, pt->payload_len, &j, err);

		if (rv != 0)
			return rv;
		json_decref(j);
	}
	return 0;
}

int coll_check_points(const struct coll *c, const struct coll_point *pts, size_t n,
		      struct sh_err *err)
{
	for (size_t i = 0; i < n; i++) {
		int rv = check_point(c, &pts[i], err);

		if (rv != 0)
			return sh_err_wrap(err, rv, "point %zu (id %" PRIu64 ")", i, pts[i].id);
	}
	return 0;
}

/* ------------------------------------------------------------ life */

struct blob *blob_new(const char *data, size_t len)
{
	struct blob *b = sh_malloc(sizeof *b + len);

	if (b != NULL) {
		b->len = (uint32_t)len;
		memcpy(b->data, data, len);
	}
	return b;
}

int coll_make(const struct coll_params *p, struct hnsw *h, struct coll **out, struct sh_err *err)
{
	struct hnsw_params hp = {p->dim,  p->metric,      p->m, p->ef_construction,
				 p->seed, HNSW_QUANT_NONE};
	struct coll *c = sh_calloc(1, sizeof *c);
	int rv;

	if (c == NULL || (c->tree = idtree_new(sizeof(struct pv))) == NULL) {
		sh_free(c);
		hnsw_free(h);
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	}
	c->p = *p;
	c->h = h;
	if (h == NULL && (rv = hnsw_new(&hp, &c->h, err)) != 0) {
		idtree_free(c->tree);
		sh_free(c);
		return rv;
	}
	atomic_init(&c->refs, 1);
	pthread_rwlock_init(&c->lock, NULL);
	c->digest = digest_collection(p->name, p->dim, (uint32_t)p->metric, p->m,
				      p->ef_construction, p->seed);
	*out = c;
	return 0;
}

int coll_new(const struct coll_params *p, struct coll **out, struct sh_err *err)
{
	int rv = coll_check_params(p, err);

	return rv != 0 ? rv : coll_make(p, NULL, out, err);
}

struct coll *coll_ref(struct coll *c)
{
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
	return c;
}

void coll_unref(struct coll *c)
{
	struct idtree_iter it;
	uint64_t id;
	void *v;

	if (c == NULL || atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
		return;
	idtree_seek(c->tree, 0, &it);
	while (idtree_next(&it, &id, &v))
		sh_free(((struct pv *)v)->payload);
	idtree_free(c->tree);
	hnsw_free(c->h);
	pthread_rwlock_destroy(&c->lock);
	sh_free(c);
}

const struct coll_params *coll_params(const struct coll *c)
{
	return &c->p;
}

const char *coll_name(const struct coll *c)
{
	return c->p.name;
}

/* ------------------------------------------------------------ writes */

static struct coll *mut(const struct coll *c)
{
	return (struct coll *)(uintptr_t)c;
}

/* Forget id's tree entry (lock held): its hash and payload go. */
static void forget(struct coll *c, uint64_t id)
{
	struct pv old;

	if (!idtree_del(c->tree, id, &old))
		return;
	digest_sub(&c->digest, old.hash);
	if (old.payload != NULL)
		c->payload_bytes -= old.payload->len;
	sh_free(old.payload);
}

static int upsert_one(struct coll *c, const struct coll_point *pt, struct sh_err *err)
{
	struct digest hash =
		digest_point(c->p.name, pt->id, pt->vec, pt->dim, pt->payload, pt->payload_len);
	struct blob *b = NULL;
	struct pv *v;
	bool existed;
	int rv;

	if (pt->payload_len > 0 && (b = blob_new(pt->payload, pt->payload_len)) == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	pthread_rwlock_wrlock(&c->lock);
	if ((rv = idtree_put(c->tree, pt->id, (void **)&v, &existed)) != 0) {
		sh_err_set(err, rv, "out of memory");
	} else if ((rv = hnsw_upsert(c->h, pt->id, pt->vec, err)) != 0) {
		if (!existed || !hnsw_contains(c->h, pt->id))
			forget(c, pt->id);
	} else {
		if (existed) {
			digest_sub(&c->digest, v->hash);
			if (v->payload != NULL)
				c->payload_bytes -= v->payload->len;
			sh_free(v->payload);
		}
		*v = (struct pv){hash, b};
		digest_add(&c->digest, hash);
		c->payload_bytes += pt->payload_len;
		b = NULL;
	}
	pthread_rwlock_unlock(&c->lock);
	sh_free(b);
	return rv;
}

int coll_upsert(struct coll *c, const struct coll_point *pts, size_t n, struct sh_err *err)
{
	for (size_t i = 0; i < n; i++) {
		int rv = upsert_one(c, &pts[i], err);

		if (rv != 0)
			return sh_err_wrap(err, rv, "collection '%s': point %" PRIu64, c->p.name,
					   pts[i].id);
	}
	return 0;
}

size_t coll_delete(struct coll *c, const uint64_t *ids, size_t n)
{
	size_t deleted = 0;

	for (size_t i = 0; i < n; i++) {
		pthread_rwlock_wrlock(&c->lock);
		if (hnsw_delete(c->h, ids[i]) == 0) {
			forget(c, ids[i]);
			deleted++;
		}
		pthread_rwlock_unlock(&c->lock);
	}
	return deleted;
}

/* ------------------------------------------------------------ reads */

size_t coll_count(const struct coll *c)
{
	return hnsw_count(c->h);
}

size_t coll_memory(const struct coll *c)
{
	size_t m;

	pthread_rwlock_rdlock(&mut(c)->lock);
	m = sizeof *c + hnsw_memory(c->h) + idtree_memory(c->tree) + c->payload_bytes +
	    idtree_count(c->tree) * sizeof(struct blob);
	pthread_rwlock_unlock(&mut(c)->lock);
	return m;
}

struct digest coll_digest(const struct coll *c)
{
	struct digest d;

	pthread_rwlock_rdlock(&mut(c)->lock);
	d = c->digest;
	pthread_rwlock_unlock(&mut(c)->lock);
	return d;
}

int coll_get(const struct coll *c, uint64_t id, float *vec, char **payload, size_t *payload_len)
{
	const struct pv *v;
	int rv = 0;

	pthread_rwlock_rdlock(&mut(c)->lock);
	v = idtree_get(c->tree, id);
	if (v == NULL)
		rv = SH_ENOTFOUND;
	else if (vec != NULL)
		rv = hnsw_get(c->h, id, vec);
	if (rv == 0 && payload != NULL) {
		*payload = NULL;
		*payload_len = 0;
		if (v->payload != NULL &&
		    (*payload = sh_strndup(v->payload->data, v->payload->len)) == NULL)
			rv = SH_ENOMEM;
		else if (v->payload != NULL)
			*payload_len = v->payload->len;
	}
	pthread_rwlock_unlock(&mut(c)->lock);
	return rv;
}

void coll_scroll(const struct coll *c, uint64_t from, size_t limit, uint64_t *ids, size_t *n,
		 uint64_t *next, bool *more)
{
	struct idtree_iter it;
	uint64_t id;
	void *v;

	*n = 0;
	*more = false;
	*next = from;
	pthread_rwlock_rdlock(&mut(c)->lock);
	idtree_seek(c->tree, from, &it);
	while (idtree_next(&it, &id, &v)) {
		if (*n == limit) {
			*more = true;
			*next = id;
			break;
		}
		ids[(*n)++] = id;
	}
	pthread_rwlock_unlock(&mut(c)->lock);
}

int coll_search(const struct coll *c, const float *query, size_t k, size_t ef, bool exact,
		struct hnsw_result *out, size_t *n, struct sh_err *err)
{
	if (exact)
		return hnsw_search_exact(c->h, query, k, NULL, NULL, out, n, err);
	return hnsw_search(c->h, query, k, ef, NULL, NULL, out, n, err);
}

int coll_search_filter(const struct coll *c, const float *query, size_t k, size_t ef, bool exact,
		       hnsw_filter_fn filter, void *arg, struct hnsw_result *out, size_t *n,
		       struct sh_err *err)
{
	if (exact)
		return hnsw_search_exact(c->h, query, k, filter, arg, out, n, err);
	return hnsw_search(c->h, query, k, ef, filter, arg, out, n, err);
}
