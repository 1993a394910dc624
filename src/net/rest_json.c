/*
 * rest_json: REST bodies to request messages and response messages to
 * JSON (doc/protocol.md, "REST").  Top-level fields are checked strictly
 * (an unknown field is an error), like filters.  Builders run on the loop
 * and allocate in the op's arena; results are new jansson values.
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

uint16_t rest_method(enum rest_route r)
{
	static const uint16_t m[] = {
		[ROUTE_LIST] = SHOAL__METHOD__METHOD_LIST_COLLECTIONS,
		[ROUTE_CREATE] = SHOAL__METHOD__METHOD_CREATE_COLLECTION,
		[ROUTE_DESCRIBE] = SHOAL__METHOD__METHOD_DESCRIBE_COLLECTION,
		[ROUTE_DROP] = SHOAL__METHOD__METHOD_DROP_COLLECTION,
		[ROUTE_UPSERT] = SHOAL__METHOD__METHOD_UPSERT,
		[ROUTE_GET] = SHOAL__METHOD__METHOD_GET,
		[ROUTE_GET_ONE] = SHOAL__METHOD__METHOD_GET,
		[ROUTE_DELETE] = SHOAL__METHOD__METHOD_DELETE,
		[ROUTE_SEARCH] = SHOAL__METHOD__METHOD_SEARCH,
		[ROUTE_SCROLL] = SHOAL__METHOD__METHOD_SCROLL,
		[ROUTE_COUNT] = SHOAL__METHOD__METHOD_COUNT,
		[ROUTE_CLUSTER] = SHOAL__METHOD__METHOD_CLUSTER_STATUS,
		[ROUTE_MEMBERS] = SHOAL__METHOD__METHOD_CLUSTER_STATUS,
	};
	return r < sizeof m / sizeof m[0] ? m[r] : 0;
}

/* ------------------------------------------------------------ fields */

static int field_uint(const json_t *body, const char *key, uint64_t max, uint64_t *out,
		      struct sh_err *err)
{
	const json_t *v = json_object_get(body, key);

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) > max)
		return sh_err_set(err, SH_EINVAL, "%s: must be an integer 0..%" PRIu64, key, max);
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int field_u32(const json_t *body, const char *key, uint32_t *out, struct sh_err *err)
{
	uint64_t v = *out;
	int rv = field_uint(body, key, UINT32_MAX, &v, err);

	*out = (uint32_t)v;
	return rv;
}

static int field_bool(const json_t *body, const char *key, protobuf_c_boolean *out,
		      struct sh_err *err)
{
	const json_t *v = json_object_get(body, key);

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return sh_err_set(err, SH_EINVAL, "%s: must be true or false", key);
	*out = json_is_true(v);
	return 0;
}

static const char *field_str(const json_t *body, const char *key, const char *fallback)
{
	const json_t *v = json_object_get(body, key);

	return json_is_string(v) ? json_string_value(v) : fallback;
}

/* name among names[1..] -> its index; 0 for NULL. */
static int pick(const char *v, const char *const *names, int n, const char *what, int *out,
		struct sh_err *err)
{
	if (v == NULL)
		return 0;
	for (int i = 1; i < n; i++)
		if (strcmp(v, names[i]) == 0) {
			*out = i;
			return 0;
		}
	return sh_err_set(err, SH_EINVAL, "%s: unknown value '%s'", what, v);
}

static int read_opts(struct op *op, const struct rest_in *in, Shoal__ReadOptions **out,
		     struct sh_err *err)
{
	static const char *const levels[] = {"", "eventual", "read_your_writes", "strong",
					     "quorum"};
	Shoal__ReadOptions *ro = arena_alloc(&op->arena, sizeof *ro);
	const json_t *tok = json_object_get(in->body, "token");
	const char *lv = field_str(in->body, "consistency", in->q_consistency);
	int level = 0, rv;
	uint64_t t = 0, i = 0;

	if (ro == NULL)
		return nomem(err);
	shoal__read_options__init(ro);
	if ((rv = pick(lv, levels, 5, "consistency", &level, err)) != 0)
		return rv;
	ro->consistency = (Shoal__Consistency)level;
	if (json_is_object(tok)) {
		if ((rv = field_uint(tok, "term", UINT64_MAX, &t, err)) != 0 ||
		    (rv = field_uint(tok, "index", UINT64_MAX, &i, err)) != 0)
			return sh_err_wrap(err, rv, "token");
	} else if (tok != NULL || in->q_token != NULL) {
		const char *s = in->q_token ? in->q_token : "";

		if (sscanf(s, "%" SCNu64 ":%" SCNu64, &t, &i) != 2)
			return sh_err_set(err, SH_EINVAL,
					  "token: must be {\"term\": T, \"index\": I} or T:I");
	}
	if (t != 0 || i != 0) {
		if ((ro->token = arena_alloc(&op->arena, sizeof *ro->token)) == NULL)
			return nomem(err);
		shoal__token__init(ro->token);
		ro->token->term = t;
		ro->token->index = i;
	}
	*out = ro;
	return 0;
}

static int write_opts(struct op *op, const struct rest_in *in, Shoal__WriteOptions **out,
		      struct sh_err *err)
{
	static const char *const acks[] = {"", "leader", "one", "quorum", "all"};
	Shoal__WriteOptions *wo = arena_alloc(&op->arena, sizeof *wo);
	int ack = 0, rv;

	if (wo == NULL)
		return nomem(err);
	shoal__write_options__init(wo);
	if ((rv = pick(field_str(in->body, "ack", in->q_ack), acks, 5, "ack", &ack, err)) != 0)
		return rv;
	wo->ack = (Shoal__Ack)ack;
	*out = wo;
	return 0;
}

static char *name_of(struct op *op, const struct rest_in *in)
{
	return arena_strndup(&op->arena, in->name, strlen(in->name));
}

/* ------------------------------------------------------------ builders */

static int build_create(struct op *op, const struct rest_in *in, struct sh_err *err)
{
	static const char *const keys[] = {"dim", "metric", "m", "ef_construction", "ack", NULL};
	static const char *const metrics[] = {"", "l2", "cosine", "dot"};
	Shoal__CreateCollectionRequest *r = arena_alloc(&op->arena, sizeof *r);
	int metric = 0, rv;

	if (r == NULL)
		return nomem(err);
	shoal__create_collection_request__init(r);
	op->req = &r->base;
	if ((rv = japi_only_keys(in->body, keys, "body", err)) != 0 ||
	    (rv = field_u32(in->body, "dim", &r->dim, err)) != 0 ||
	    (rv = field_u32(in->body, "m", &r->m, err)) != 0 ||
	    (rv = field_u32(in->body, "ef_construction", &r->ef_construction, err)) != 0 ||
	    (rv = pick(field_str(in->body, "metric", NULL), metrics, 4, "metric", &metric, err)) ||
	    (rv = write_opts(op, in, &r->write, err)) != 0)
		return rv;
	if (json_object_get(in->body, "dim") == NULL)
		return sh_err_set(err, SH_EINVAL, "dim: required");
	r->metric = (Shoal__Metric)metric;
	return (r->name = name_of(op, in)) ? 0 : nomem(err);
}

static int build_point(struct op *op, const json_t *j, size_t i, Shoal__Point **out,
		       struct sh_err *err)
{
	static const char *const keys[] = {"id", "vector", "payload", NULL};
	Shoal__Point *p = arena_alloc(&op->arena, sizeof *p);
	const json_t *pl;
	char where[64];
	int rv;

	snprintf(where, sizeof where, "points[%zu]", i);
	if (p == NULL)
		return nomem(err);
	shoal__point__init(p);
	if (!json_is_object(j))
		return sh_err_set(err, SH_EINVAL, "%s: must be an object", where);
	if ((rv = japi_only_keys(j, keys, where, err)) != 0)
		return rv;
	if ((rv = japi_id(json_object_get(j, "id"), where, &p->id, err)) != 0 ||
	    (rv = japi_vector(json_object_get(j, "vector"), &op->arena, where, &p->vector,
			      &p->n_vector, err)) != 0)
		return rv;
	pl = json_object_get(j, "payload");
	if (pl != NULL && !json_is_null(pl)) {
		char *text = json_dumps(pl, JSON_COMPACT | JSON_ENCODE_ANY);

		if (text == NULL)
			return nomem(err);
		p->payload.len = strlen(text);
		p->payload.data = (uint8_t *)arena_strndup(&op->arena, text, p->payload.len);
		sh_free(text); /* jansson allocates through sh_malloc */
		if (p->payload.data == NULL)
			return nomem(err);
	}
	*out = p;
	return 0;
}

static int build_upsert(struct op *op, const struct rest_in *in, struct sh_err *err)
{
	static const char *const keys[] = {"points", "ack", NULL};
	Shoal__UpsertRequest *r = arena_alloc(&op->arena, sizeof *r);
	const json_t *pts = json_object_get(in->body, "points");
	int rv;

	if (r == NULL)
		return nomem(err);
	shoal__upsert_request__init(r);
	op->req = &r->base;
	if ((rv = japi_only_keys(in->body, keys, "body", err)) != 0 ||
	    (rv = write_opts(op, in, &r->write, err)) != 0)
		return rv;
	if (!json_is_array(pts) || json_array_size(pts) == 0)
		return sh_err_set(err, SH_EINVAL, "points: must be a non-empty array");
	r->points = arena_calloc(&op->arena, json_array_size(pts), sizeof *r->points);
	if (r->points == NULL || (r->collection = name_of(op, in)) == NULL)
		return nomem(err);
	for (size_t i = 0; i < json_array_size(pts); i++, r->n_points++)
		if ((rv = build_point(op, json_array_get(pts, i), i, &r->points[i], err)) != 0)
			return rv;
	return 0;
}

static int ids_of(struct op *op, const struct rest_in *in, uint64_t **ids, size_t *n,
		  struct sh_err *err)
{
	const json_t *a = json_object_get(in->body, "ids");
	char where[32];
	int rv;

	if (in->route == ROUTE_GET_ONE) {
		json_t *s = json_string(in->id);

		if ((*ids = arena_alloc(&op->arena, sizeof **ids)) == NULL || s == NULL) {
			json_decref(s);
			return nomem(err);
		}
		*n = 1;
		rv = japi_id(s, "id", *ids, err);
		json_decref(s);
		return rv;
	}
	if (!json_is_array(a))
		return sh_err_set(err, SH_EINVAL, "ids: must be an array of ids");
	if ((*ids = arena_calloc(&op->arena, json_array_size(a) + 1, sizeof **ids)) == NULL)
		return nomem(err);
	for (*n = 0; *n < json_array_size(a); (*n)++) {
		snprintf(where, sizeof where, "ids[%zu]", *n);
		if ((rv = japi_id(json_array_get(a, *n), where, &(*ids)[*n], err)) != 0)
			return rv;
	}
	return 0;
}

static int build_get(struct op *op, const struct rest_in *in, struct sh_err *err)
{
	static const char *const keys[] = {"ids",         "with_payload", "with_vector",
					   "consistency", "token",        NULL};
	Shoal__GetRequest *r = arena_alloc(&op->arena, sizeof *r);
	int rv;

	if (r == NULL)
		return nomem(err);
	shoal__get_request__init(r);
	op->req = &r->base;
	r->with_payload = r->with_vector = in->route == ROUTE_GET_ONE;
	if ((rv = japi_only_keys(in->body, keys, "body", err)) != 0 ||
	    (rv = ids_of(op, in, &r->ids, &r->n_ids, err)) != 0 ||
	    (rv = field_bool(in->body, "with_payload", &r->with_payload, err)) != 0 ||
	    (rv = field_bool(in->body, "with_vector", &r->with_vector, err)) != 0 ||
	    (rv = read_opts(op, in, &r->read, err)) != 0)
		return rv;
	return (r->collection = name_of(op, in)) ? 0 : nomem(err);
}

static int build_delete(struct op *op, const struct rest_in *in, struct sh_err *err)
{
	static const char *const keys[] = {"ids", "ack", NULL};
	Shoal__DeleteRequest *r = arena_alloc(&op->arena, sizeof *r);
	int rv;

	if (r == NULL)
		return nomem(err);
	shoal__delete_request__init(r);
	op->req = &r->base;
	if ((rv = japi_only_keys(in->body, keys, "body", err)) != 0 ||
	    (rv = ids_of(op, in, &r->ids, &r->n_ids, err)) != 0 ||
	    (rv = write_opts(op, in, &r->write, err)) != 0)
		return rv;
	return (r->collection = name_of(op, in)) ? 0 : nomem(err);
}

static int build_search(struct op *op, const struct rest_in *in, struct sh_err *err)
{
	static const char *const keys[] = {"vector",       "k",           "ef",    "filter",
					   "with_payload", "with_vector", "exact", "consistency",
					   "token",        NULL};
	Shoal__SearchRequest *r = arena_alloc(&op->arena, sizeof *r);
	int rv;

	if (r == NULL)
		return nomem(err);
	shoal__search_request__init(r);
	op->req = &r->base;
	r->k = 10;
	if ((rv = japi_only_keys(in->body, keys, "body", err)) != 0 ||
	    (rv = japi_vector(json_object_get(in->body, "vector"), &op->arena, "vector", &r->vector,
			      &r->n_vector, err)) != 0 ||
	    (rv = field_u32(in->body, "k", &r->k, err)) != 0 ||
	    (rv = field_u32(in->body, "ef", &r->ef, err)) != 0 ||
	    (rv = japi_filter(json_object_get(in->body, "filter"), &op->arena, "filter", &r->filter,
			      err)) != 0 ||
	    (rv = field_bool(in->body, "with_payload", &r->with_payload, err)) != 0 ||
	    (rv = field_bool(in->body, "with_vector", &r->with_vector, err)) != 0 ||
	    (rv = field_bool(in->body, "exact", &r->exact, err)) != 0 ||
	    (rv = read_opts(op, in, &r->read, err)) != 0)
		return rv;
	return (r->collection = name_of(op, in)) ? 0 : nomem(err);
}

static int build_scroll(struct op *op, const struct rest_in *in, struct sh_err *err)
{
	static const char *const keys[] = {"offset",      "limit",       "filter", "with_payload",
					   "with_vector", "consistency", "token",  NULL};
	Shoal__ScrollRequest *r = arena_alloc(&op->arena, sizeof *r);
	const json_t *off = json_object_get(in->body, "offset");
	int rv;

	if (r == NULL)
		return nomem(err);
	shoal__scroll_request__init(r);
	op->req = &r->base;
	r->with_payload = 1;
	if ((rv = japi_only_keys(in->body, keys, "body", err)) != 0 ||
	    (off != NULL && !json_is_null(off) &&
	     (rv = japi_id(off, "offset", &r->offset, err)) != 0) ||
	    (rv = field_u32(in->body, "limit", &r->limit, err)) != 0 ||
	    (rv = japi_filter(json_object_get(in->body, "filter"), &op->arena, "filter", &r->filter,
			      err)) != 0 ||
	    (rv = field_bool(in->body, "with_payload", &r->with_payload, err)) != 0 ||
	    (rv = field_bool(in->body, "with_vector", &r->with_vector, err)) != 0 ||
	    (rv = read_opts(op, in, &r->read, err)) != 0)
		return rv;
	return (r->collection = name_of(op, in)) ? 0 : nomem(err);
}

static int build_count(struct op *op, const struct rest_in *in, struct sh_err *err)
{
	static const char *const keys[] = {"filter", "consistency", "token", NULL};
	Shoal__CountRequest *r = arena_alloc(&op->arena, sizeof *r);
	int rv;

	if (r == NULL)
		return nomem(err);
	shoal__count_request__init(r);
	op->req = &r->base;
	if ((rv = japi_only_keys(in->body, keys, "body", err)) != 0 ||
	    (rv = japi_filter(json_object_get(in->body, "filter"), &op->arena, "filter", &r->filter,
			      err)) != 0 ||
	    (rv = read_opts(op, in, &r->read, err)) != 0)
		return rv;
	return (r->collection = name_of(op, in)) ? 0 : nomem(err);
}

/* The routes without a body of their own. */
static int build_simple(struct op *op, const struct rest_in *in, struct sh_err *err)
{
	const ProtobufCMessageDescriptor *d = api_request_desc(rest_method(in->route));
	ProtobufCMessage *m = arena_alloc(&op->arena, d->sizeof_message);
	int rv = 0;

	if (m == NULL)
		return nomem(err);
	d->message_init(m);
	op->req = m;
	switch (in->route) {
	case ROUTE_LIST:
		return read_opts(op, in, &((Shoal__ListCollectionsRequest *)(void *)m)->read, err);
	case ROUTE_DESCRIBE: {
		Shoal__DescribeCollectionRequest *r = (void *)m;

		rv = read_opts(op, in, &r->read, err);
		return rv ? rv : (r->name = name_of(op, in)) ? 0 : nomem(err);
	}
	case ROUTE_DROP: {
		Shoal__DropCollectionRequest *r = (void *)m;

		rv = write_opts(op, in, &r->write, err);
		return rv ? rv : (r->name = name_of(op, in)) ? 0 : nomem(err);
	}
	default: return 0;
	}
}

int rest_build(struct op *op, const struct rest_in *in, struct sh_err *err)
{
	switch (in->route) {
	case ROUTE_CREATE: return build_create(op, in, err);
	case ROUTE_UPSERT: return build_upsert(op, in, err);
	case ROUTE_GET:
	case ROUTE_GET_ONE: return build_get(op, in, err);
	case ROUTE_DELETE: return build_delete(op, in, err);
	case ROUTE_SEARCH: return build_search(op, in, err);
	case ROUTE_SCROLL: return build_scroll(op, in, err);
	case ROUTE_COUNT: return build_count(op, in, err);
	default: return build_simple(op, in, err);
	}
}

/* ------------------------------------------------------------ results */

static json_t *floats(const float *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < n; i++)
		json_array_append_new(a, json_real((double)v[i]));
	return a;
}

static json_t *point_json(uint64_t id, const float *v, size_t n, const ProtobufCBinaryData *pl,
			  bool vec, bool payload)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", japi_id_json(id));
	if (vec)
		json_object_set_new(o, "vector", floats(v, n));
	if (payload)
		json_object_set_new(o, "payload",
				    pl->len ? json_loadb((const char *)pl->data, pl->len, 0, NULL)
					    : json_null());
	return o;
}

static json_t *token_json(const Shoal__WriteResponse *w)
{
	return json_pack("{s:{s:I,s:I},s:I}", "token", "term", (json_int_t)w->token->term, "index",
			 (json_int_t)w->token->index, "affected", (json_int_t)w->affected);
}

static json_t *info_json(const Shoal__CollectionInfo *i)
{
	static const char *const metrics[] = {"l2", "l2", "cosine", "dot"};

	return json_pack("{s:s,s:I,s:s,s:I,s:I,s:I,s:I}", "name", i->name, "dim",
			 (json_int_t)i->dim, "metric", metrics[i->metric & 3], "m",
			 (json_int_t)i->m, "ef_construction", (json_int_t)i->ef_construction,
			 "count", (json_int_t)i->count, "memory_bytes",
			 (json_int_t)i->memory_bytes);
}

static json_t *points_json(Shoal__Point **p, size_t n, bool vec, bool payload)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, point_json(p[i]->id, p[i]->vector, p[i]->n_vector,
						    &p[i]->payload, vec, payload));
	return a;
}

static json_t *search_json(const Shoal__SearchRequest *r, const Shoal__SearchResponse *s)
{
	json_t *a = json_array();

	for (size_t i = 0; i < s->n_points; i++) {
		const Shoal__ScoredPoint *p = s->points[i];
		json_t *o = point_json(p->id, p->vector, p->n_vector, &p->payload, r->with_vector,
				       r->with_payload);

		json_object_set_new(o, "distance", json_real((double)p->distance));
		json_array_append_new(a, o);
	}
	return json_pack("{s:o,s:b}", "points", a, "exact", s->exact);
}

static json_t *hex_id(uint64_t id)
{
	char buf[17];

	snprintf(buf, sizeof buf, "%016" PRIx64, id);
	return json_string(buf);
}

static const char *member_state_name(Shoal__MemberState s)
{
	switch (s) {
	case SHOAL__MEMBER_STATE__MEMBER_ALIVE: return "alive";
	case SHOAL__MEMBER_STATE__MEMBER_SUSPECT: return "suspect";
	case SHOAL__MEMBER_STATE__MEMBER_DEAD: return "dead";
	case SHOAL__MEMBER_STATE__MEMBER_LEFT: return "left";
	default: return "unknown";
	}
}

static json_t *member_json(const Shoal__Member *m)
{
	json_t *o = json_pack("{s:s,s:s,s:I,s:s,s:s,s:s,s:I,s:I}", "name", m->name, "state",
			      member_state_name(m->state), "incarnation",
			      (json_int_t)m->incarnation, "cluster_address", m->cluster_address,
			      "client_address", m->client_address, "rest_address", m->rest_address,
			      "state_age_ms", (json_int_t)m->state_age_ms, "last_heard_ms",
			      (json_int_t)m->last_heard_ms);

	json_object_set_new(o, "node_id", hex_id(m->node_id));
	json_object_set_new(o, "role", json_string(m->role));
	json_object_set_new(o, "voter", json_boolean(m->voter));
	json_object_set_new(o, "applied_index", json_integer((json_int_t)m->applied_index));
	json_object_set_new(o, "commit_index", json_integer((json_int_t)m->commit_index));
	json_object_set_new(o, "lag", json_integer((json_int_t)m->lag));
	json_object_set_new(o, "match_index", json_integer((json_int_t)m->match_index));
	json_object_set_new(o, "lag_ms", json_integer((json_int_t)m->lag_ms));
	return o;
}

static json_t *ids_json(const uint64_t *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, hex_id(v[i]));
	return a;
}

/* The replication fields of a cluster status. */
static void raft_json(json_t *o, const Shoal__ClusterStatusResponse *s)
{
	json_object_set_new(o, "cluster_id", hex_id(s->cluster_id));
	json_object_set_new(o, "leader_address", json_string(s->leader_address));
	json_object_set_new(o, "durable_index", json_integer((json_int_t)s->durable_index));
	json_object_set_new(o, "first_index", json_integer((json_int_t)s->first_index));
	json_object_set_new(o, "snapshot_index", json_integer((json_int_t)s->snapshot_index));
	json_object_set_new(o, "pending_writes", json_integer((json_int_t)s->pending_writes));
	json_object_set_new(o, "elections", json_integer((json_int_t)s->elections));
	json_object_set_new(o, "leader_changes", json_integer((json_int_t)s->leader_changes));
	json_object_set_new(o, "voters", ids_json(s->voters, s->n_voters));
	json_object_set_new(o, "learners", ids_json(s->learners, s->n_learners));
}

static json_t *members_json(const Shoal__ClusterStatusResponse *s)
{
	json_t *members = json_array();

	for (size_t i = 0; i < s->n_members; i++)
		json_array_append_new(members, member_json(s->members[i]));
	return members;
}

static json_t *cluster_json(const Shoal__ClusterStatusResponse *s)
{
	json_t *o = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:s,s:I,s:I,s:s}", "node_name",
			      s->node_name, "role", s->role, "term", (json_int_t)s->term,
			      "commit_index", (json_int_t)s->commit_index, "applied_index",
			      (json_int_t)s->applied_index, "last_index", (json_int_t)s->last_index,
			      "digest", s->digest, "collections", (json_int_t)s->collections,
			      "points", (json_int_t)s->points, "version", s->version);

	json_object_set_new(o, "node_id", hex_id(s->node_id));
	json_object_set_new(o, "leader_id", hex_id(s->leader_id));
	raft_json(o, s);
	json_object_set_new(o, "members", members_json(s));
	return o;
}

json_t *rest_result(const struct op *op, enum rest_route r, bool *not_found)
{
	const void *m = op->resp;

	*not_found = false;
	switch (r) {
	case ROUTE_CREATE:
	case ROUTE_DROP:
	case ROUTE_UPSERT:
	case ROUTE_DELETE: return token_json(m);
	case ROUTE_DESCRIBE: return info_json(m);
	case ROUTE_LIST: {
		const Shoal__ListCollectionsResponse *l = m;
		json_t *a = json_array();

		for (size_t i = 0; i < l->n_collections; i++)
			json_array_append_new(a, info_json(l->collections[i]));
		return json_pack("{s:o}", "collections", a);
	}
	case ROUTE_GET: {
		const Shoal__GetRequest *q = (const void *)op->req;
		const Shoal__PointsResponse *p = m;

		return json_pack(
			"{s:o}", "points",
			points_json(p->points, p->n_points, q->with_vector, q->with_payload));
	}
	case ROUTE_GET_ONE: {
		const Shoal__PointsResponse *p = m;

		if (p->n_points == 0) {
			*not_found = true;
			return NULL;
		}
		return point_json(p->points[0]->id, p->points[0]->vector, p->points[0]->n_vector,
				  &p->points[0]->payload, true, true);
	}
	case ROUTE_SEARCH: return search_json((const void *)op->req, m);
	case ROUTE_SCROLL: {
		const Shoal__ScrollRequest *q = (const void *)op->req;
		const Shoal__ScrollResponse *s = m;

		return json_pack(
			"{s:o,s:o}", "points",
			points_json(s->points, s->n_points, q->with_vector, q->with_payload),
			"next_offset", s->has_next ? japi_id_json(s->next_offset) : json_null());
	}
	case ROUTE_COUNT:
		return json_pack("{s:I}", "count",
				 (json_int_t)((const Shoal__CountResponse *)m)->count);
	case ROUTE_CLUSTER: return cluster_json(m);
	case ROUTE_MEMBERS: return json_pack("{s:o}", "members", members_json(m));
	default: return json_object();
	}
}
