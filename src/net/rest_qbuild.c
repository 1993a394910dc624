/*
 * rest_qbuild: Qdrant's request bodies (doc/qdrant.md) turned into the
 * binary protocol's request messages, in the op's arena.  Fields are read
 * strictly: an unknown field is an error, and a Qdrant field shoal does
 * not serve is refused by name, never ignored when it would change the
 * answer.  Loop thread (pure functions of their inputs).
 */
#include "build.h"

#include "net/japi.h"
#include "net/rest_impl.h"
#include "util/alloc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static int nomem(struct sh_err *err)
{
	return sh_err_set(err, SH_ENOMEM, "out of memory");
}

static char *name_of(struct op *op, const struct rest_call *c)
{
	return arena_strndup(&op->arena, c->name, strlen(c->name));
}

int rest_refuse(const json_t *o, const char *const *pairs, const char *where, struct sh_err *err)
{
	for (size_t i = 0; pairs[i] != NULL; i += 2) {
		const json_t *v = json_object_get(o, pairs[i]);

		if (v != NULL && !json_is_null(v))
			return sh_err_set(err, SH_EINVAL,
					  "%s%s%s: %s is not supported (doc/qdrant.md)", where,
					  where[0] ? "." : "", pairs[i], pairs[i + 1]);
	}
	return 0;
}

static int field_uint(const json_t *o, const char *key, uint64_t max, uint64_t *out,
		      const char *where, struct sh_err *err)
{
	const json_t *v = json_object_get(o, key);

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) > max)
		return sh_err_set(err, SH_EINVAL, "%s%s%s: must be an integer 0..%" PRIu64, where,
				  where[0] ? "." : "", key, max);
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int field_bool(const json_t *o, const char *key, bool *out, const char *where,
		      struct sh_err *err)
{
	const json_t *v = json_object_get(o, key);

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return sh_err_set(err, SH_EINVAL, "%s%s%s: must be true or false", where,
				  where[0] ? "." : "", key);
	*out = json_is_true(v);
	return 0;
}

/* ------------------------------------------------------------ options */

/* "T:I", decimal digits only. */
static int token_of(const char *s, uint64_t *t, uint64_t *i)
{
	const char *colon = strchr(s, ':');
	char *end;

	if (colon == NULL || strspn(s, "0123456789") != (size_t)(colon - s) || colon == s ||
	    colon[1] == '\0' || strspn(colon + 1, "0123456789") != strlen(colon + 1))
		return -1;
	errno = 0;
	*t = strtoull(s, &end, 10);
	*i = strtoull(colon + 1, &end, 10);
	return errno != 0 ? -1 : 0;
}

/* consistency: shoal's levels, or Qdrant's (a number of replicas,
 * majority, quorum, all; doc/qdrant.md, "Consistency"). */
static int level_of(const char *v, int *level, struct sh_err *err)
{
	static const char *const names[][2] = {
		{"eventual", "1"}, {"read_your_writes", "2"}, {"strong", "3"},
		{"quorum", "4"},   {"majority", "4"},         {"all", "4"},
	};

	*level = 0;
	if (v == NULL)
		return 0;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(v, names[i][0]) == 0) {
			*level = names[i][1][0] - '0';
			return 0;
		}
	if (v[0] >= '0' && v[0] <= '9' && strspn(v, "0123456789") == strlen(v) && strlen(v) < 6) {
		*level = atoi(v) <= 1 ? SHOAL__CONSISTENCY__CONSISTENCY_EVENTUAL
				      : SHOAL__CONSISTENCY__CONSISTENCY_QUORUM;
		return 0;
	}
	return sh_err_set(err, SH_EINVAL,
			  "consistency: unknown value '%.40s' (eventual, read_your_writes, strong, "
			  "quorum; or Qdrant's: a number, majority, all)",
			  v);
}

int rest_read_opts(struct op *op, const struct rest_call *c, Shoal__ReadOptions **out,
		   struct sh_err *err)
{
	Shoal__ReadOptions *ro = arena_alloc(&op->arena, sizeof *ro);
	uint64_t t = 0, i = 0;
	int level, rv;

	if (ro == NULL)
		return nomem(err);
	shoal__read_options__init(ro);
	if ((rv = level_of(c->q.consistency, &level, err)) != 0)
		return rv;
	ro->consistency = (Shoal__Consistency)level;
	if (c->q.token != NULL && token_of(c->q.token, &t, &i) != 0)
		return sh_err_set(err, SH_EINVAL,
				  "token: must be T:I (decimal digits), the term "
				  "and index of a write");
	if (c->q.token != NULL) {
		if ((ro->token = arena_alloc(&op->arena, sizeof *ro->token)) == NULL)
			return nomem(err);
		shoal__token__init(ro->token);
		ro->token->term = t;
		ro->token->index = i;
	}
	*out = ro;
	return 0;
}

int rest_write_opts(struct op *op, const struct rest_call *c, Shoal__WriteOptions **out,
		    struct sh_err *err)
{
	static const char *const acks[] = {"", "leader", "one", "quorum", "all"};
	static const char *const orderings[] = {"weak", "medium", "strong"};
	Shoal__WriteOptions *wo = arena_alloc(&op->arena, sizeof *wo);
	bool known = c->q.ordering == NULL;

	if (wo == NULL)
		return nomem(err);
	shoal__write_options__init(wo);
	for (int i = 0; i < 3 && !known; i++)
		known = strcmp(c->q.ordering, orderings[i]) == 0;
	if (!known)
		return sh_err_set(err, SH_EINVAL,
				  "ordering: unknown value '%.40s' (weak, medium, "
				  "strong)",
				  c->q.ordering);
	if (c->q.wait != NULL && strcmp(c->q.wait, "true") != 0 && strcmp(c->q.wait, "false") != 0)
		return sh_err_set(err, SH_EINVAL, "wait: must be true or false, not '%.40s'",
				  c->q.wait);
	for (int i = 1; c->q.ack != NULL && i < 5; i++)
		if (strcmp(c->q.ack, acks[i]) == 0)
			wo->ack = (Shoal__Ack)i;
	if (c->q.ack != NULL && wo->ack == 0)
		return sh_err_set(err, SH_EINVAL,
				  "ack: unknown value '%.40s' (leader, one, quorum, all)",
				  c->q.ack);
	*out = wo;
	return rest_idempotency(op, c, wo, err);
}

/* ------------------------------------------------------------ collections */

static int hnsw_of(const json_t *h, const char *where, uint32_t *m, uint32_t *efc,
		   struct sh_err *err)
{
	static const char *const keys[] = {"m",       "ef_construct",         "full_scan_threshold",
					   "on_disk", "max_indexing_threads", "payload_m",
					   NULL};
	uint64_t v;
	int rv;

	if (h == NULL || json_is_null(h))
		return 0;
	if (!json_is_object(h))
		return sh_err_set(err, SH_EINVAL, "%s: must be an object", where);
	if ((rv = japi_only_keys(h, keys, where, err)) != 0)
		return rv;
	v = *m;
	if ((rv = field_uint(h, "m", 128, &v, where, err)) != 0)
		return rv;
	*m = (uint32_t)v;
	v = *efc;
	if ((rv = field_uint(h, "ef_construct", 4096, &v, where, err)) != 0)
		return rv;
	*efc = (uint32_t)v;
	return 0;
}

static int vectors(const json_t *v, Shoal__CreateCollectionRequest *r, struct sh_err *err)
{
	static const char *const keys[] = {
		"size",    "distance", "hnsw_config",        "quantization_config",
		"on_disk", "datatype", "multivector_config", NULL};
	static const char *const refused[] = {"quantization_config", "quantization",
					      "multivector_config", "multivectors", NULL};
	static const char *const dist[][2] = {{"Euclid", "1"}, {"Cosine", "2"}, {"Dot", "3"}};
	const json_t *d = json_object_get(v, "distance"), *dt = json_object_get(v, "datatype");
	uint64_t size = 0;
	int rv;

	if (!json_is_object(v))
		return sh_err_set(err, SH_EINVAL,
				  "vectors: must be {\"size\": N, \"distance\": D}");
	if (json_object_get(v, "size") == NULL && json_object_get(v, "distance") == NULL)
		return sh_err_set(err, SH_EINVAL,
				  "vectors: named vectors are not supported (doc/qdrant.md): "
				  "one unnamed vector {\"size\": N, \"distance\": D}");
	if ((rv = japi_only_keys(v, keys, "vectors", err)) != 0 ||
	    (rv = rest_refuse(v, refused, "vectors", err)) != 0 ||
	    (rv = field_uint(v, "size", 65536, &size, "vectors", err)) != 0 ||
	    (rv = hnsw_of(json_object_get(v, "hnsw_config"), "vectors.hnsw_config", &r->m,
			  &r->ef_construction, err)) != 0)
		return rv;
	if (dt != NULL && !json_is_null(dt) &&
	    (!json_is_string(dt) || strcmp(json_string_value(dt), "float32") != 0))
		return sh_err_set(err, SH_EINVAL,
				  "vectors.datatype: only float32 is supported (doc/qdrant.md)");
	if (size == 0)
		return sh_err_set(err, SH_EINVAL, "vectors.size: required, 1 to 65536");
	r->dim = (uint32_t)size;
	for (int i = 0; i < 3; i++)
		if (json_is_string(d) && strcmp(json_string_value(d), dist[i][0]) == 0)
			r->metric = (Shoal__Metric)(dist[i][1][0] - '0');
	if (r->metric == 0)
		return sh_err_set(
			err, SH_EINVAL, "vectors.distance: must be Cosine, Euclid or Dot%s",
			json_is_string(d) && strcmp(json_string_value(d), "Manhattan") == 0
				? " (Manhattan is not supported)"
				: "");
	return 0;
}

int rest_build_create(struct op *op, const struct rest_call *c, struct sh_err *err)
{
	static const char *const keys[] = {"vectors",
					   "shard_number",
					   "sharding_method",
					   "replication_factor",
					   "write_consistency_factor",
					   "on_disk_payload",
					   "hnsw_config",
					   "wal_config",
					   "optimizers_config",
					   "quantization_config",
					   "sparse_vectors",
					   "strict_mode_config",
					   "init_from",
					   "metadata",
					   NULL};
	static const char *const refused[] = {
		"quantization_config",
		"quantization",
		"sparse_vectors",
		"sparse vectors",
		"init_from",
		"copying a collection (init_from)",
		"replication_factor",
		"replication_factor (every shoal node holds every collection)",
		"write_consistency_factor",
		"write_consistency_factor (shoal's writes take ack)",
		NULL};
	Shoal__CreateCollectionRequest *r =
		api_new_msg(op, &shoal__create_collection_request__descriptor);
	const json_t *sn = json_object_get(c->body, "shard_number");
	const json_t *sm = json_object_get(c->body, "sharding_method");
	int rv;

	if (r == NULL)
		return nomem(err);
	op->req = &r->base;
	if ((rv = japi_only_keys(c->body, keys, "body", err)) != 0 ||
	    (rv = rest_refuse(c->body, refused, "", err)) != 0)
		return rv;
	if (sn != NULL && !json_is_null(sn) &&
	    !(json_is_integer(sn) && json_integer_value(sn) == 1))
		return sh_err_set(err, SH_EINVAL,
				  "shard_number: only 1 (shoal does not shard: every node holds "
				  "the whole collection)");
	if (sm != NULL && !json_is_null(sm) &&
	    !(json_is_string(sm) && strcmp(json_string_value(sm), "auto") == 0))
		return sh_err_set(err, SH_EINVAL,
				  "sharding_method: custom sharding is not supported");
	if (json_object_get(c->body, "vectors") == NULL)
		return sh_err_set(err, SH_EINVAL,
				  "vectors: required ({\"size\": N, \"distance\": D})");
	if ((rv = hnsw_of(json_object_get(c->body, "hnsw_config"), "hnsw_config", &r->m,
			  &r->ef_construction, err)) != 0 ||
	    (rv = vectors(json_object_get(c->body, "vectors"), r, err)) != 0 ||
	    (rv = rest_write_opts(op, c, &r->write, err)) != 0)
		return rv;
	return (r->name = name_of(op, c)) ? 0 : nomem(err);
}

/* ------------------------------------------------------------ points */

int rest_payload_text(struct op *op, const json_t *pl, const char *uuid, const char *where,
		      ProtobufCBinaryData *out, struct sh_err *err)
{
	json_t *o;
	char *text;

	if ((pl == NULL || json_is_null(pl)) && uuid[0] == '\0')
		return 0;
	if (pl != NULL && !json_is_null(pl) && !json_is_object(pl))
		return sh_err_set(err, SH_EINVAL, "%s.payload: payload must be a JSON object",
				  where);
	if (json_object_get(pl, REST_UUID_KEY) != NULL)
		return sh_err_set(err, SH_EINVAL,
				  "%s.payload: the key " REST_UUID_KEY " is reserved (it keeps a "
				  "point's UUID, doc/qdrant.md)",
				  where);
	o = uuid[0] ? json_copy((json_t *)(uintptr_t)(pl && json_is_object(pl) ? pl : NULL)) : NULL;
	if (uuid[0] && o == NULL)
		o = json_object();
	if (uuid[0] && (o == NULL || json_object_set_new(o, REST_UUID_KEY, json_string(uuid))))
		return json_decref(o), nomem(err);
	text = json_dumps(o ? o : pl, JSON_COMPACT);
	json_decref(o);
	if (text == NULL)
		return nomem(err);
	out->len = strlen(text);
	out->data = (uint8_t *)arena_strndup(&op->arena, text, out->len);
	sh_free(text); /* jansson allocates through sh_malloc */
	return out->data ? 0 : nomem(err);
}

static int vector_of(struct op *op, const json_t *v, const char *where, float **out, size_t *n,
		     struct sh_err *err)
{
	if (json_is_object(v))
		return sh_err_set(err, SH_EINVAL,
				  "%s: named or sparse vectors are not supported (doc/qdrant.md): "
				  "an array of numbers",
				  where);
	return japi_vector(v, &op->arena, where, out, n, err);
}

static int point_of(struct op *op, const json_t *id, const json_t *vec, const json_t *pl,
		    const char *where, Shoal__Point **out, struct sh_err *err)
{
	Shoal__Point *p = api_new_msg(op, &shoal__point__descriptor);
	char uuid[JAPI_UUID_LEN + 1], w[64];
	int rv;

	if (p == NULL)
		return nomem(err);
	japi_path(w, sizeof w, "%s.id", where);
	if ((rv = japi_point_id(id, w, &p->id, uuid, err)) != 0)
		return rv;
	japi_path(w, sizeof w, "%s.vector", where);
	if ((rv = vector_of(op, vec, w, &p->vector, &p->n_vector, err)) != 0 ||
	    (rv = rest_payload_text(op, pl, uuid, where, &p->payload, err)) != 0)
		return rv;
	*out = p;
	return 0;
}

static int points_list(struct op *op, const json_t *pts, Shoal__UpsertRequest *r,
		       struct sh_err *err)
{
	static const char *const keys[] = {"id", "vector", "payload", NULL};
	char where[48];
	int rv;

	if (!json_is_array(pts) || json_array_size(pts) == 0)
		return sh_err_set(err, SH_EINVAL, "points: must be a non-empty array");
	if ((r->points = arena_calloc(&op->arena, json_array_size(pts), sizeof *r->points)) == NULL)
		return nomem(err);
	for (size_t i = 0; i < json_array_size(pts); i++, r->n_points++) {
		const json_t *p = json_array_get(pts, i);

		japi_path(where, sizeof where, "points[%zu]", i);
		if (!json_is_object(p))
			return sh_err_set(err, SH_EINVAL, "%s: must be an object", where);
		if ((rv = japi_only_keys(p, keys, where, err)) != 0 ||
		    (rv = point_of(op, json_object_get(p, "id"), json_object_get(p, "vector"),
				   json_object_get(p, "payload"), where, &r->points[i], err)) != 0)
			return rv;
	}
	return 0;
}

static int points_batch(struct op *op, const json_t *b, Shoal__UpsertRequest *r, struct sh_err *err)
{
	static const char *const keys[] = {"ids", "vectors", "payloads", NULL};
	const json_t *ids = json_object_get(b, "ids"), *vecs = json_object_get(b, "vectors");
	const json_t *pls = json_object_get(b, "payloads");
	size_t n = json_array_size(ids);
	char where[48];
	int rv;

	if (!json_is_object(b) || (rv = japi_only_keys(b, keys, "batch", err)) != 0)
		return json_is_object(b) ? SH_EINVAL
					 : sh_err_set(err, SH_EINVAL, "batch: must be an object");
	if (!json_is_array(ids) || n == 0 || !json_is_array(vecs) || json_array_size(vecs) != n ||
	    (pls != NULL && !json_is_null(pls) && json_array_size(pls) != n))
		return sh_err_set(
			err, SH_EINVAL,
			"batch: ids, vectors (and payloads) must be arrays of one length");
	if ((r->points = arena_calloc(&op->arena, n, sizeof *r->points)) == NULL)
		return nomem(err);
	for (size_t i = 0; i < n; i++, r->n_points++) {
		japi_path(where, sizeof where, "batch[%zu]", i);
		if ((rv = point_of(op, json_array_get(ids, i), json_array_get(vecs, i),
				   json_array_get(pls, i), where, &r->points[i], err)) != 0)
			return rv;
	}
	return 0;
}

int rest_build_upsert(struct op *op, const struct rest_call *c, struct sh_err *err)
{
	static const char *const keys[] = {"points",        "batch",       "shard_key",
					   "update_filter", "update_mode", NULL};
	static const char *const refused[] = {"shard_key", "shard keys", "update_filter",
					      "a conditional upsert (update_filter)", NULL};
	const json_t *mode = json_object_get(c->body, "update_mode");
	Shoal__UpsertRequest *r = api_new_msg(op, &shoal__upsert_request__descriptor);
	int rv;

	if (r == NULL)
		return nomem(err);
	op->req = &r->base;
	if ((rv = japi_only_keys(c->body, keys, "body", err)) != 0 ||
	    (rv = rest_refuse(c->body, refused, "", err)) != 0 ||
	    (rv = rest_write_opts(op, c, &r->write, err)) != 0)
		return rv;
	if (mode != NULL && !json_is_null(mode) &&
	    !(json_is_string(mode) && strcmp(json_string_value(mode), "upsert") == 0))
		return sh_err_set(err, SH_EINVAL, "update_mode: only upsert is supported");
	if ((json_object_get(c->body, "points") != NULL) ==
	    (json_object_get(c->body, "batch") != NULL))
		return sh_err_set(err, SH_EINVAL, "body: needs exactly one of points and batch");
	if (json_object_get(c->body, "points") != NULL)
		rv = points_list(op, json_object_get(c->body, "points"), r, err);
	else
		rv = points_batch(op, json_object_get(c->body, "batch"), r, err);
	if (rv != 0)
		return rv;
	return (r->collection = name_of(op, c)) ? 0 : nomem(err);
}

/* ------------------------------------------------------------ selectors */

static int keys_array(const json_t *a, const char *where, struct sh_err *err)
{
	size_t i;
	json_t *k;

	if (!json_is_array(a))
		return sh_err_set(err, SH_EINVAL, "%s: must be an array of payload keys", where);
	json_array_foreach(a, i, k)
	{
		if (!json_is_string(k))
			return sh_err_set(err, SH_EINVAL, "%s[%zu]: must be a string", where, i);
	}
	return 0;
}

int rest_selector(const json_t *j, const char *where, json_t **sel, struct sh_err *err)
{
	const json_t *in, *ex;
	char w[64];

	json_decref(*sel);
	*sel = NULL;
	if (j == NULL || json_is_null(j))
		return 0;
	if (json_is_boolean(j)) {
		*sel = json_incref((json_t *)(uintptr_t)j);
		return 0;
	}
	in = json_is_array(j) ? j : json_object_get(j, "include");
	ex = json_is_object(j) ? json_object_get(j, "exclude") : NULL;
	if (!json_is_array(j) && (!json_is_object(j) || json_object_size(j) != 1 || (!in && !ex)))
		return sh_err_set(err, SH_EINVAL,
				  "%s: must be true, false, an array of keys, {\"include\": [...]} "
				  "or {\"exclude\": [...]}",
				  where);
	japi_path(w, sizeof w, "%s%s", where, json_is_array(j) ? "" : in ? ".include" : ".exclude");
	if (keys_array(in ? in : ex, w, err) != 0)
		return SH_EINVAL;
	*sel = json_is_array(j) ? json_pack("{s:O}", "include", j)
				: json_incref((json_t *)(uintptr_t)j);
	return *sel ? 0 : nomem(err);
}

int rest_with_vector(const json_t *j, const char *where, bool dflt, bool *out, struct sh_err *err)
{
	*out = dflt;
	if (j == NULL || json_is_null(j))
		return 0;
	if (json_is_array(j))
		return sh_err_set(
			err, SH_EINVAL,
			"%s: named vectors are not supported (doc/qdrant.md): true or false",
			where);
	if (!json_is_boolean(j))
		return sh_err_set(err, SH_EINVAL, "%s: must be true or false", where);
	*out = json_is_true(j);
	return 0;
}

/* ------------------------------------------------------------ reads */

static int ids_of(struct op *op, const json_t *a, const char *where, uint64_t **ids, size_t *n,
		  struct sh_err *err)
{
	char w[48];
	int rv;

	if (!json_is_array(a))
		return sh_err_set(err, SH_EINVAL, "%s: must be an array of point ids", where);
	if ((*ids = arena_calloc(&op->arena, json_array_size(a) + 1, sizeof **ids)) == NULL)
		return nomem(err);
	for (*n = 0; *n < json_array_size(a); (*n)++) {
		japi_path(w, sizeof w, "%s[%zu]", where, *n);
		if ((rv = japi_id(json_array_get(a, *n), w, &(*ids)[*n], err)) != 0)
			return rv;
	}
	return 0;
}

int rest_build_get(struct op *op, struct rest_call *c, struct sh_err *err)
{
	static const char *const keys[] = {"ids", "with_payload", "with_vector", "shard_key", NULL};
	static const char *const refused[] = {"shard_key", "shard keys", NULL};
	Shoal__GetRequest *r = api_new_msg(op, &shoal__get_request__descriptor);
	json_t *one = NULL;
	int rv;

	if (r == NULL)
		return nomem(err);
	op->req = &r->base;
	r->with_payload = 1; /* a UUID lives in the payload */
	if (c->route == ROUTE_GET_ONE) {
		c->want_vec = true;
		if ((one = json_pack("[s]", c->id)) == NULL)
			return nomem(err);
		/* an integer in the path is digits: japi_id takes those */
		rv = ids_of(op, one, "id", &r->ids, &r->n_ids, err);
		json_decref(one);
		if (rv != 0)
			return sh_err_set(err, SH_EINVAL,
					  "point id '%.60s': an unsigned integer or a UUID", c->id);
		if ((c->sel = json_true()) == NULL)
			return nomem(err);
	} else if ((rv = japi_only_keys(c->body, keys, "body", err)) != 0 ||
		   (rv = rest_refuse(c->body, refused, "", err)) != 0 ||
		   (rv = ids_of(op, json_object_get(c->body, "ids"), "ids", &r->ids, &r->n_ids,
				err)) != 0 ||
		   (rv = rest_with_vector(json_object_get(c->body, "with_vector"), "with_vector",
					  false, &c->want_vec, err)) != 0 ||
		   (rv = rest_selector(json_object_get(c->body, "with_payload"), "with_payload",
				       &c->sel, err)) != 0) {
		return rv;
	} else if (c->sel == NULL && (c->sel = json_true()) == NULL) {
		return nomem(err);
	}
	r->with_vector = c->want_vec;
	if ((rv = rest_read_opts(op, c, &r->read, err)) != 0)
		return rv;
	return (r->collection = name_of(op, c)) ? 0 : nomem(err);
}

/* SearchParams: hnsw_ef, exact; quantization and indexed_only change
 * nothing here (no quantization, every point searched). */
static int params(const json_t *p, const char *where, Shoal__SearchRequest *r, struct sh_err *err)
{
	static const char *const keys[] = {"hnsw_ef",      "exact", "quantization",
					   "indexed_only", "acorn", NULL};
	static const char *const refused[] = {"quantization", "quantization", "acorn", "ACORN",
					      NULL};
	uint64_t ef = 0;
	bool exact = false;
	int rv;

	if (p == NULL || json_is_null(p))
		return 0;
	if (!json_is_object(p))
		return sh_err_set(err, SH_EINVAL, "%s: must be an object", where);
	if ((rv = japi_only_keys(p, keys, where, err)) != 0 ||
	    (rv = rest_refuse(p, refused, where, err)) != 0 ||
	    (rv = field_uint(p, "hnsw_ef", HNSW_MAX_EF, &ef, where, err)) != 0 ||
	    (rv = field_bool(p, "exact", &exact, where, err)) != 0)
		return rv;
	r->ef = (uint32_t)ef;
	r->exact = exact;
	return 0;
}

/* The vector of a query: [..] or {"nearest": [..]}. */
static const json_t *query_vector(const json_t *q, const char *where, struct sh_err *err)
{
	const json_t *n = json_object_get(q, "nearest");

	if (json_is_array(q))
		return q;
	if (json_is_object(q) && n != NULL && json_object_size(q) == 1 && json_is_array(n))
		return n;
	if (q == NULL || json_is_null(q))
		sh_err_set(err, SH_EINVAL,
			   "%s.query: required (listing points through query is not supported: "
			   "use scroll)",
			   where);
	else if (json_is_object(q) && n != NULL && json_object_get(q, "mmr") != NULL)
		sh_err_set(err, SH_EINVAL, "%s.query.mmr: MMR is not supported (doc/qdrant.md)",
			   where);
	else if (json_is_object(q) && json_object_size(q) == 1)
		sh_err_set(err, SH_EINVAL,
			   "%s.query.%s: this query is not supported (doc/qdrant.md): a vector or "
			   "{\"nearest\": vector}",
			   where, json_object_iter_key(json_object_iter((json_t *)(uintptr_t)q)));
	else
		sh_err_set(err, SH_EINVAL,
			   "%s.query: a point id, a sparse, multi or named vector is not supported "
			   "(doc/qdrant.md): a vector or {\"nearest\": vector}",
			   where);
	return NULL;
}

int rest_build_search(struct op *op, struct rest_call *c, const json_t *b, bool query,
		      const char *where, struct sh_err *err)
{
	static const char *const skeys[] = {
		"vector",       "filter",      "params",          "limit",     "offset",
		"with_payload", "with_vector", "score_threshold", "shard_key", NULL};
	static const char *const qkeys[] = {
		"query",           "prefetch",  "using",  "filter",      "params",
		"score_threshold", "limit",     "offset", "with_vector", "with_payload",
		"lookup_from",     "shard_key", NULL};
	static const char *const refused[] = {"prefetch",    "prefetch (hybrid queries)",
					      "lookup_from", "lookup_from",
					      "shard_key",   "shard keys",
					      NULL};
	Shoal__SearchRequest *r = api_new_msg(op, &shoal__search_request__descriptor);
	const json_t *using = json_object_get(b, "using"), *vec;
	uint64_t limit = 10, offset = 0;
	bool vecs;
	char w[96];
	int rv;

	if (r == NULL)
		return nomem(err);
	op->req = &r->base;
	if (!json_is_object(b))
		return sh_err_set(err, SH_EINVAL, "%s: must be an object", where);
	if ((rv = japi_only_keys(b, query ? qkeys : skeys, where, err)) != 0 ||
	    (rv = rest_refuse(b, refused, where, err)) != 0)
		return rv;
	if (using != NULL && !json_is_null(using) &&
	    !(json_is_string(using) && json_string_length(using) == 0))
		return sh_err_set(err, SH_EINVAL, "%s.using: named vectors are not supported",
				  where);
	if ((vec = query ? query_vector(json_object_get(b, "query"), where, err)
			 : json_object_get(b, "vector")) == NULL &&
	    query)
		return SH_EINVAL;
	japi_path(w, sizeof w, "%s.%s", where, query ? "query" : "vector");
	if ((rv = vector_of(op, vec, w, &r->vector, &r->n_vector, err)) != 0 ||
	    (rv = field_uint(b, "limit", API_MAX_K, &limit, where, err)) != 0 ||
	    (rv = field_uint(b, "offset", API_MAX_K, &offset, where, err)) != 0)
		return rv;
	japi_path(w, sizeof w, "%s.filter", where);
	if ((rv = japi_filter(json_object_get(b, "filter"), &op->arena, w, &r->filter, err)) != 0)
		return rv;
	japi_path(w, sizeof w, "%s.params", where);
	if ((rv = params(json_object_get(b, "params"), w, r, err)) != 0)
		return rv;
	japi_path(w, sizeof w, "%s.with_vector", where);
	if ((rv = rest_with_vector(json_object_get(b, "with_vector"), w, false, &vecs, err)) != 0)
		return rv;
	if (json_object_get(b, "score_threshold") != NULL &&
	    !json_is_number(json_object_get(b, "score_threshold")) &&
	    !json_is_null(json_object_get(b, "score_threshold")))
		return sh_err_set(err, SH_EINVAL, "%s.score_threshold: must be a number", where);
	if (limit + offset > API_MAX_K || limit == 0)
		return sh_err_set(err, SH_EINVAL,
				  "%s: limit + offset = %" PRIu64 " is outside 1..%d", where,
				  limit + offset, API_MAX_K);
	r->k = (uint32_t)(limit + offset);
	if (r->ef != 0 && r->ef < r->k)
		r->ef = r->k;
	r->with_vector = vecs;
	r->with_payload = 1; /* a UUID lives in the payload */
	if ((rv = rest_read_opts(op, c, &r->read, err)) != 0)
		return rv;
	return (r->collection = name_of(op, c)) ? 0 : nomem(err);
}

int rest_build_scroll(struct op *op, struct rest_call *c, struct sh_err *err)
{
	static const char *const keys[] = {"offset",      "limit",    "filter",    "with_payload",
					   "with_vector", "order_by", "shard_key", NULL};
	static const char *const refused[] = {"order_by", "order_by (points come in id order)",
					      "shard_key", "shard keys", NULL};
	Shoal__ScrollRequest *r = api_new_msg(op, &shoal__scroll_request__descriptor);
	const json_t *off = json_object_get(c->body, "offset");
	uint64_t limit = 10;
	int rv;

	if (r == NULL)
		return nomem(err);
	op->req = &r->base;
	if ((rv = japi_only_keys(c->body, keys, "body", err)) != 0 ||
	    (rv = rest_refuse(c->body, refused, "", err)) != 0 ||
	    (off != NULL && !json_is_null(off) && (rv = japi_id(off, "offset", &r->offset, err))) ||
	    (rv = field_uint(c->body, "limit", API_MAX_LIMIT, &limit, "", err)) != 0 ||
	    (rv = japi_filter(json_object_get(c->body, "filter"), &op->arena, "filter", &r->filter,
			      err)) != 0 ||
	    (rv = rest_with_vector(json_object_get(c->body, "with_vector"), "with_vector", false,
				   &c->want_vec, err)) != 0 ||
	    (rv = rest_selector(json_object_get(c->body, "with_payload"), "with_payload", &c->sel,
				err)) != 0 ||
	    (rv = rest_read_opts(op, c, &r->read, err)) != 0)
		return rv;
	if (limit == 0)
		return sh_err_set(err, SH_EINVAL, "limit: must be 1..%d", API_MAX_LIMIT);
	if (c->sel == NULL && (c->sel = json_true()) == NULL)
		return nomem(err);
	r->limit = (uint32_t)limit + 1; /* the next page's first point names it */
	r->with_payload = 1;
	r->with_vector = c->want_vec;
	return (r->collection = name_of(op, c)) ? 0 : nomem(err);
}

int rest_build_count(struct op *op, const struct rest_call *c, struct sh_err *err)
{
	static const char *const keys[] = {"filter", "exact", "shard_key", NULL};
	static const char *const refused[] = {"shard_key", "shard keys", NULL};
	Shoal__CountRequest *r = api_new_msg(op, &shoal__count_request__descriptor);
	bool exact = true;
	int rv;

	if (r == NULL)
		return nomem(err);
	op->req = &r->base;
	if ((rv = japi_only_keys(c->body, keys, "body", err)) != 0 ||
	    (rv = rest_refuse(c->body, refused, "", err)) != 0 ||
	    (rv = field_bool(c->body, "exact", &exact, "", err)) != 0 ||
	    (rv = japi_filter(json_object_get(c->body, "filter"), &op->arena, "filter", &r->filter,
			      err)) != 0 ||
	    (rv = rest_read_opts(op, c, &r->read, err)) != 0)
		return rv;
	return (r->collection = name_of(op, c)) ? 0 : nomem(err);
}

/* ------------------------------------------------------------ changes */

static int key_list(struct op *op, const json_t *a, const char *where, char ***out, size_t *n,
		    struct sh_err *err)
{
	if (keys_array(a, where, err) != 0)
		return SH_EINVAL;
	if ((*out = arena_calloc(&op->arena, json_array_size(a) + 1, sizeof **out)) == NULL)
		return nomem(err);
	for (*n = 0; *n < json_array_size(a); (*n)++) {
		const json_t *k = json_array_get(a, *n);

		if (strcmp(json_string_value(k), REST_UUID_KEY) == 0)
			return sh_err_set(err, SH_EINVAL,
					  "%s: the key " REST_UUID_KEY " is reserved", where);
		(*out)[*n] = arena_strndup(&op->arena, json_string_value(k), json_string_length(k));
		if ((*out)[*n] == NULL)
			return nomem(err);
	}
	return 0;
}

/* The payload change of a route (set, overwrite, delete keys, clear). */
static int payload_change(struct op *op, const struct rest_call *c, Shoal__SetPayloadRequest *r,
			  struct sh_err *err)
{
	static char uuid_key[] = REST_UUID_KEY;
	static char *keep[] = {uuid_key};
	const json_t *pl = json_object_get(c->body, "payload"),
		     *key = json_object_get(c->body, "key");
	char *text;

	switch (c->route) {
	case ROUTE_SET_PAYLOAD: r->op = SHOAL__PAYLOAD_OP__PAYLOAD_SET; break;
	case ROUTE_OVERWRITE: r->op = SHOAL__PAYLOAD_OP__PAYLOAD_OVERWRITE; break;
	case ROUTE_DELETE_KEYS: r->op = SHOAL__PAYLOAD_OP__PAYLOAD_DELETE_KEYS; break;
	default: r->op = SHOAL__PAYLOAD_OP__PAYLOAD_CLEAR; break;
	}
	r->keep = keep;
	r->n_keep = 1;
	if (c->route == ROUTE_DELETE_KEYS)
		return key_list(op, json_object_get(c->body, "keys"), "keys", &r->keys, &r->n_keys,
				err);
	if (c->route == ROUTE_CLEAR)
		return 0;
	if (key != NULL && !json_is_null(key)) {
		if (!json_is_string(key) || c->route == ROUTE_OVERWRITE ||
		    strchr(json_string_value(key), '[') != NULL)
			return sh_err_set(err, SH_EINVAL,
					  "key: a dotted path of objects (set payload only; "
					  "array paths are not supported)");
		r->key = arena_strndup(&op->arena, json_string_value(key), json_string_length(key));
	}
	if (!json_is_object(pl))
		return sh_err_set(err, SH_EINVAL, "payload: required, a JSON object");
	if (json_object_get(pl, REST_UUID_KEY) != NULL)
		return sh_err_set(err, SH_EINVAL, "payload: the key " REST_UUID_KEY " is reserved");
	if ((text = json_dumps(pl, JSON_COMPACT)) == NULL)
		return nomem(err);
	r->payload.len = strlen(text);
	r->payload.data = (uint8_t *)arena_strndup(&op->arena, text, r->payload.len);
	sh_free(text);
	return r->payload.data ? 0 : nomem(err);
}

int rest_build_change(struct op *op, struct rest_call *c, Shoal__Filter **filter,
		      struct sh_err *err)
{
	static const char *const keys[] = {"points", "filter",    "payload", "key",
					   "keys",   "shard_key", NULL};
	static const char *const refused[] = {"shard_key", "shard keys", NULL};
	const json_t *pts = json_object_get(c->body, "points"),
		     *f = json_object_get(c->body, "filter");
	uint64_t **ids;
	size_t *n;
	int rv;

	*filter = NULL;
	if ((rv = japi_only_keys(c->body, keys, "body", err)) != 0 ||
	    (rv = rest_refuse(c->body, refused, "", err)) != 0)
		return rv;
	if (c->route == ROUTE_DELETE) {
		Shoal__DeleteRequest *r = api_new_msg(op, &shoal__delete_request__descriptor);

		if (r == NULL || (r->collection = name_of(op, c)) == NULL)
			return nomem(err);
		op->req = &r->base;
		ids = &r->ids, n = &r->n_ids;
		rv = rest_write_opts(op, c, &r->write, err);
	} else {
		Shoal__SetPayloadRequest *r =
			api_new_msg(op, &shoal__set_payload_request__descriptor);

		if (r == NULL || (r->collection = name_of(op, c)) == NULL)
			return nomem(err);
		op->req = &r->base;
		ids = &r->ids, n = &r->n_ids;
		if ((rv = payload_change(op, c, r, err)) == 0)
			rv = rest_write_opts(op, c, &r->write, err);
	}
	if (rv != 0)
		return rv;
	if ((pts != NULL && !json_is_null(pts)) == (f != NULL && !json_is_null(f)))
		return sh_err_set(err, SH_EINVAL, "body: needs exactly one of points and filter");
	if (f != NULL && !json_is_null(f))
		return japi_filter(f, &op->arena, "filter", filter, err) != 0 ? SH_EINVAL
		       : *filter != NULL                                      ? 0
					 : sh_err_set(err, SH_EINVAL, "filter: must be an object");
	return ids_of(op, pts, "points", ids, n, err);
}
