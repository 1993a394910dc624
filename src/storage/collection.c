/*
 * collection: see collection.h.  Snapshot I/O is in collection_io.c;
 * searches and the indexer's step in collection_fresh.c.
 *
 * Invariant: every id of the tree is either a vector in the fresh set or,
 * without an entry there, a point of the graph; every graph id not in the
 * tree has a tombstone in the fresh set.  The digest is the collection's
 * hash plus the hash of every point in the tree.
 */
#include "build.h"

#include "storage/collection_impl.h"

#include "util/alloc.h"
#include "util/clock.h"

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

/* Parse and require an object; *out the parsed value.  json_loadb()
 * returns NULL for text that is not JSON and when memory ran out; only the
 * first is a property of the payload (the same on every replica), so the
 * second is SH_ENOMEM, told apart by jansson's error code or by an
 * allocation that failed on this thread meanwhile (jansson allocates
 * through sh_malloc, sh_alloc_hook_libs). */
static int parse_object(const char *json, size_t len, json_t **out, struct sh_err *err)
{
	json_error_t je;
	unsigned long failures = sh_alloc_thread_failures();
	json_t *j = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);

	if (j == NULL && (json_error_code(&je) == json_error_out_of_memory ||
			  sh_alloc_thread_failures() != failures))
		return sh_err_set(err, SH_ENOMEM, "out of memory while parsing a payload");
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
	int rv;

	if (pt->dim != c->p.dim)
		return sh_err_set(err, SH_EINVAL,
				  "vector has %" PRIu32
				  " values, the collection's dimension is %" PRIu32,
				  pt->dim, c->p.dim);
	if ((rv = hnsw_check_vector(pt->vec, pt->dim, c->p.metric, "vector", err)) != 0)
		return rv;
	if (pt->payload_len > COLL_MAX_PAYLOAD)
		return sh_err_set(err, SH_ETOOBIG, "payload of %zu bytes is over the limit of %u",
				  pt->payload_len, COLL_MAX_PAYLOAD);
	if (pt->payload_len > 0) {
		if ((rv = parse_object(pt->payload, pt->payload_len, &j, err)) != 0)
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

static void init_locks(struct coll *c)
{
	pthread_rwlockattr_t a;

	pthread_rwlock_init(&c->lock, NULL);
	pthread_rwlockattr_init(&a);
	pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&c->fresh_lock, &a);
	pthread_rwlockattr_destroy(&a);
	pthread_mutex_init(&c->graph_lock, NULL);
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
	if ((c->fresh = fresh_new(p->dim, p->metric)) == NULL) {
		idtree_free(c->tree);
		sh_free(c);
		hnsw_free(h);
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	}
	if (h == NULL && (rv = hnsw_new(&hp, &c->h, err)) != 0) {
		fresh_free(c->fresh);
		idtree_free(c->tree);
		sh_free(c);
		return rv;
	}
	atomic_init(&c->refs, 1);
	atomic_init(&c->graph_bytes, hnsw_memory(c->h)); /* then the indexer's (graph_lock) */
	init_locks(c);
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
	fresh_free(c->fresh);
	pthread_rwlock_destroy(&c->lock);
	pthread_rwlock_destroy(&c->fresh_lock);
	pthread_mutex_destroy(&c->graph_lock);
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

void coll__fresh_sizes(struct coll *c)
{
	atomic_store(&c->fresh_n, fresh_count(c->fresh));
	atomic_store(&c->fresh_bytes, fresh_used_bytes(c->fresh));
	atomic_store(&c->fresh_memory, fresh_bytes(c->fresh));
}

/* Does the graph hold id with this very (prepared) vector and the fresh
 * set nothing for it?  Then an upsert changes its payload only, and the
 * graph stays.  (Only apply adds fresh entries, and the indexer touches no
 * graph point without one, so the answer holds until apply changes it.)
 * fresh_lock held; tmp: dim floats. */
static bool graph_has(struct coll *c, uint64_t id, const float *vec, float *tmp)
{
	return fresh_find(c->fresh, id) == FRESH_NONE && hnsw_get(c->h, id, tmp) == 0 &&
	       memcmp(tmp, vec, c->p.dim * sizeof *tmp) == 0;
}

/* Apply changes a point under both locks (collection_impl.h). */
static void lock_both(struct coll *c)
{
	pthread_rwlock_wrlock(&c->fresh_lock);
	pthread_rwlock_wrlock(&c->lock);
}

static void unlock_both(struct coll *c)
{
	coll__fresh_sizes(c);
	pthread_rwlock_unlock(&c->lock);
	pthread_rwlock_unlock(&c->fresh_lock);
}

/* The tree's part of an upsert, into v (idtree_put's). */
static void put_point(struct coll *c, const struct coll_point *pt, struct digest hash,
		      struct blob *b, struct pv *v, bool existed)
{
	if (existed) {
		digest_sub(&c->digest, v->hash);
		if (v->payload != NULL)
			c->payload_bytes -= v->payload->len;
		sh_free(v->payload);
	}
	*v = (struct pv){hash, b};
	digest_add(&c->digest, hash);
	c->payload_bytes += pt->payload_len;
	atomic_store(&c->count, idtree_count(c->tree));
}

/* One point under both locks (held): prep is its prepared vector, tmp dim
 * floats.  On success the tree owns b.  A new id needs no look at the
 * graph: the graph holds no id outside the tree without a tombstone in the
 * fresh set (the invariant), so graph_has is false for it. */
static int upsert_locked(struct coll *c, const struct coll_point *pt, struct digest hash,
			 struct blob *b, const float *prep, float *tmp, uint64_t now)
{
	struct pv *v;
	bool existed;
	int rv;

	/* the tree's room first: a failure then changes nothing */
	if ((rv = idtree_put(c->tree, pt->id, (void **)&v, &existed)) != 0)
		return rv;
	if (!(existed && graph_has(c, pt->id, prep, tmp)) &&
	    (rv = fresh_put(c->fresh, pt->id, prep, now)) != 0) {
		if (!existed)
			idtree_del(c->tree, pt->id, NULL); /* the new, zeroed entry */
		return rv;
	}
	put_point(c, pt, hash, b, v, existed);
	return 0;
}

/* Points prepared outside the locks, applied under one hold of them; one
 * allocation (a failed scratch changes nothing). */
struct upsert_buf {
	size_t cap;          /* points per hold */
	struct blob **blob;  /* cap, NULL but while a hold runs */
	struct digest *hash; /* cap */
	float *prep;         /* cap prepared vectors */
	float *tmp;          /* dim floats */
};

#define UPSERT_HOLD_POINTS 64
#define UPSERT_HOLD_BYTES  (64 * 1024) /* of prepared vectors per hold */

static int upsert_buf_init(struct upsert_buf *u, uint32_t dim, size_t n)
{
	size_t cap = UPSERT_HOLD_BYTES / ((size_t)dim * sizeof(float));
	char *p;

	cap = cap < 1 ? 1 : cap > UPSERT_HOLD_POINTS ? UPSERT_HOLD_POINTS : cap;
	u->cap = cap < n ? cap : n;
	p = sh_calloc(1, u->cap * (sizeof *u->blob + sizeof *u->hash) +
				 (u->cap + 1) * dim * sizeof *u->prep);
	if (p == NULL)
		return SH_ENOMEM;
	u->blob = (struct blob **)p;
	u->hash = (struct digest *)(p + u->cap * sizeof *u->blob);
	u->prep = (float *)(p + u->cap * (sizeof *u->blob + sizeof *u->hash));
	u->tmp = u->prep + u->cap * dim;
	return 0;
}

/* Up to u->cap points: hashed and prepared first, then applied in order
 * under one hold of both locks.  On failure *bad is the failing point's
 * index: those before it were applied, the rest not. */
static int upsert_hold(struct coll *c, const struct coll_point *pts, size_t n, struct upsert_buf *u,
		       size_t *bad, struct sh_err *err)
{
	size_t dim = c->p.dim, ready, i;
	uint64_t now = sh_clock_mono_ms();
	int rv = 0;

	for (ready = 0; ready < n; ready++) {
		const struct coll_point *pt = &pts[ready];

		u->hash[ready] = digest_point(c->p.name, pt->id, pt->vec, pt->dim, pt->payload,
					      pt->payload_len);
		/* checked before (coll_check_points) */
		hnsw_prepare_checked(c->h, pt->vec, u->prep + ready * dim);
		if (pt->payload_len > 0 &&
		    (u->blob[ready] = blob_new(pt->payload, pt->payload_len)) == NULL) {
			rv = sh_err_set(err, SH_ENOMEM, "out of memory");
			break;
		}
	}
	lock_both(c);
	for (i = 0; i < ready; i++) {
		int r = upsert_locked(c, &pts[i], u->hash[i], u->blob[i], u->prep + i * dim, u->tmp,
				      now);

		if (r != 0) {
			rv = sh_err_set(err, r, "out of memory");
			break;
		}
		u->blob[i] = NULL; /* the tree's now */
	}
	unlock_both(c);
	*bad = i;
	for (i = 0; i < ready; i++) {
		sh_free(u->blob[i]);
		u->blob[i] = NULL;
	}
	return rv;
}

int coll_upsert(struct coll *c, const struct coll_point *pts, size_t n, struct sh_err *err)
{
	struct upsert_buf u = {0};
	size_t i, bad = 0; /* on failure, the first point not applied */
	int rv = 0;

	if (n == 0)
		return 0;
	if (upsert_buf_init(&u, c->p.dim, n) != 0)
		rv = sh_err_set(err, SH_ENOMEM, "out of memory");
	for (i = 0; i < n && rv == 0; i += u.cap)
		if ((rv = upsert_hold(c, pts + i, n - i < u.cap ? n - i : u.cap, &u, &bad, err)) !=
		    0)
			bad += i;
	if (rv != 0)
		sh_err_wrap(err, rv, "collection '%s': point %" PRIu64, c->p.name, pts[bad].id);
	sh_free(u.blob);
	return rv;
}

int coll_delete(struct coll *c, const uint64_t *ids, size_t n, size_t *deleted)
{
	*deleted = 0;
	for (size_t i = 0; i < n; i++) {
		int rv = 0;

		lock_both(c);
		if (idtree_get(c->tree, ids[i]) != NULL) {
			/* the graph may hold it (or be getting it): a tombstone hides it */
			if ((rv = fresh_put(c->fresh, ids[i], NULL, sh_clock_mono_ms())) == 0) {
				forget(c, ids[i]);
				atomic_store(&c->count, idtree_count(c->tree));
				++*deleted;
			}
		}
		unlock_both(c);
		if (rv != 0)
			return rv;
	}
	return 0;
}

int coll_set_payload(struct coll *c, uint64_t id, const char *text, size_t len)
{
	float *vec = sh_malloc((size_t)c->p.dim * sizeof *vec);
	struct blob *b = len > 0 ? blob_new(text, len) : NULL;
	struct pv *v;
	bool existed;
	int rv = 0;

	if (vec == NULL || (len > 0 && b == NULL)) {
		sh_free(vec);
		sh_free(b);
		return SH_ENOMEM;
	}
	pthread_rwlock_rdlock(&c->fresh_lock);
	rv = coll__vector(c, id, vec);
	pthread_rwlock_unlock(&c->fresh_lock);
	if (rv != 0) {
		sh_free(vec);
		sh_free(b);
		return SH_ENOTFOUND;
	}
	pthread_rwlock_wrlock(&c->lock);
	if (idtree_get(c->tree, id) == NULL) {
		rv = SH_ENOTFOUND;
	} else if ((rv = idtree_put(c->tree, id, (void **)&v, &existed)) == 0) {
		digest_sub(&c->digest, v->hash);
		if (v->payload != NULL)
			c->payload_bytes -= v->payload->len;
		sh_free(v->payload);
		v->hash = digest_point(c->p.name, id, vec, c->p.dim, text, len);
		v->payload = b;
		digest_add(&c->digest, v->hash);
		c->payload_bytes += len;
		b = NULL;
	}
	pthread_rwlock_unlock(&c->lock);
	sh_free(b);
	sh_free(vec);
	return rv;
}

/* ------------------------------------------------------------ reads */

size_t coll_count(const struct coll *c)
{
	return atomic_load(&c->count);
}

size_t coll_memory(const struct coll *c)
{
	size_t m;

	pthread_rwlock_rdlock(&mut(c)->lock);
	m = sizeof *c + atomic_load(&c->graph_bytes) + idtree_memory(c->tree) + c->payload_bytes +
	    idtree_count(c->tree) * sizeof(struct blob) + atomic_load(&c->fresh_memory);
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

/* The tree's part of coll_get (lock held). */
static int get_payload(const struct coll *c, uint64_t id, char **payload, size_t *payload_len)
{
	const struct pv *v = idtree_get(c->tree, id);

	if (v == NULL)
		return SH_ENOTFOUND;
	if (payload == NULL)
		return 0;
	*payload = NULL;
	*payload_len = 0;
	if (v->payload == NULL)
		return 0;
	if ((*payload = sh_strndup(v->payload->data, v->payload->len)) == NULL)
		return SH_ENOMEM;
	*payload_len = v->payload->len;
	return 0;
}

/* With a vector, under fresh_lock and `lock` together, as apply writes:
 * vector and payload are one write's.  Without, under `lock` only (a
 * search's filter calls it holding fresh_lock). */
int coll_get(const struct coll *c, uint64_t id, float *vec, char **payload, size_t *payload_len)
{
	int rv;

	if (vec != NULL)
		pthread_rwlock_rdlock(&mut(c)->fresh_lock);
	pthread_rwlock_rdlock(&mut(c)->lock);
	if ((rv = get_payload(c, id, payload, payload_len)) == 0 && vec != NULL &&
	    (rv = coll__vector(c, id, vec)) != 0 && payload != NULL) {
		sh_free(*payload);
		*payload = NULL;
	}
	pthread_rwlock_unlock(&mut(c)->lock);
	if (vec != NULL)
		pthread_rwlock_unlock(&mut(c)->fresh_lock);
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
