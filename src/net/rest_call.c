/*
 * rest_call: what each route of the Qdrant dialect runs (doc/qdrant.md):
 * one op for most; a write then, with wait=true, a read_your_writes
 * barrier on this node so that the write is applied here when the reply
 * leaves (Qdrant's "changes are actual"); a batch of searches at once; a
 * delete or payload change by filter as pages of matching ids (a scroll at
 * `strong` unless the request says otherwise), each page one write.
 *
 * Every op is c's: c->pending counts those in flight, and c is freed
 * once it replied and none is (an op may complete inside api_start, so a
 * start holds a count of its own).  Loop thread only.
 */
#include "build.h"

#include "net/japi.h"
#include "net/rest_impl.h"
#include "util/alloc.h"
#include "util/clock.h"

#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#include <event2/http.h>

/* The version of Qdrant's API this dialect follows (GET /). */
#define QDRANT_API_VERSION "1.17.0"
#define PAGE_IDS           API_MAX_LIMIT

static double seconds(const struct rest_call *c)
{
	return (double)(sh_clock_mono_ns() - c->t0_ns) / 1e9;
}

static void maybe_free(struct rest_call *c)
{
	if (c->sent && c->pending == 0)
		rest_call_free(c);
}

void rest_call_reply(struct rest_call *c, json_t *result)
{
	if (c->sent) {
		json_decref(result);
		return;
	}
	c->sent = true;
	rest_send_json(c->r, c->req, 200,
		       result ? json_pack("{s:o,s:s,s:f}", "result", result, "status", "ok", "time",
					  seconds(c))
			      : NULL);
}

static void send_error(struct rest_call *c)
{
	json_t *j = rest_error_body(c->status, c->err.msg, seconds(c));
	char id[17];

	if (j != NULL && c->leader != 0) {
		json_t *st = json_object_get(j, "status");

		snprintf(id, sizeof id, "%016" PRIx64, c->leader);
		json_object_set_new(st, "leader_id", json_string(id));
		json_object_set_new(st, "leader_address", json_string(c->leader_address));
	}
	c->sent = true;
	rest_send_json(c->r, c->req, rest_http_code(c->status), j);
}

void rest_call_fail(struct rest_call *c, int status, const char *fmt, ...)
{
	va_list ap;

	if (c->status == 0) {
		c->status = status;
		va_start(ap, fmt);
		sh_err_setv(&c->err, SH_EINVAL, fmt, ap);
		va_end(ap);
	}
	if (c->pending == 0 && !c->sent)
		send_error(c);
}

static bool is_read(uint16_t method)
{
	return method != SHOAL__METHOD__METHOD_CLUSTER_STATUS && api_request_desc(method) != NULL &&
	       (method == SHOAL__METHOD__METHOD_LIST_COLLECTIONS ||
		method == SHOAL__METHOD__METHOD_DESCRIBE_COLLECTION ||
		method == SHOAL__METHOD__METHOD_GET || method == SHOAL__METHOD__METHOD_COUNT ||
		method == SHOAL__METHOD__METHOD_SCROLL || method == SHOAL__METHOD__METHOD_SEARCH);
}

static bool headers_set(struct rest_call *c)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);

	return evhttp_find_header(h, "X-Shoal-Applied-Index") != NULL;
}

static bool is_batch(enum rest_route r)
{
	return r == ROUTE_SEARCH_BATCH || r == ROUTE_QUERY_BATCH;
}

static void on_done(struct op *op)
{
	struct rest_call *c = op->owner;
	bool ok = op->status == SHOAL__STATUS_CODE__OK && op->resp != NULL;

	if (ok && is_read(op->method) && !headers_set(c))
		rest_read_headers(c->req, &op->rs);
	if (ok || (c->route == ROUTE_EXISTS && op->status == SHOAL__STATUS_CODE__NOT_FOUND)) {
		if (c->status == 0)
			c->step(c, op);
	} else if (c->status == 0) {
		c->status = op->status ? op->status : SHOAL__STATUS_CODE__INTERNAL;
		c->err = op->err;
		c->leader = op->leader;
		snprintf(c->leader_address, sizeof c->leader_address, "%s", op->leader_address);
	}
	api_op_free(op);
	c->pending--;
	if (c->pending == 0 && !c->sent && c->status != 0)
		send_error(c);
	else if (c->pending == 0 && !c->sent && is_batch(c->route))
		rest_call_reply(c, json_incref(c->result));
	maybe_free(c);
}

struct op *rest_call_op(struct rest_call *c, uint16_t method)
{
	struct op *op = api_op_new(rest_api(c->r), method, METRICS_REST, c->timeout_ms);

	if (op == NULL) {
		rest_call_fail(c, SHOAL__STATUS_CODE__RESOURCE_EXHAUSTED, "out of memory");
		return NULL;
	}
	op->done = on_done;
	op->owner = c;
	c->pending++;
	return op;
}

/* Start op, or answer it with the builder's error (rv). */
static void run(struct op *op, int rv, const struct sh_err *err)
{
	if (rv != 0)
		api_fail(op, api_status_of(rv), "%s", err->msg);
	else
		api_start(op);
}

/* A new op of method with a request built by build(op, c, err). */
static void start_op(struct rest_call *c, uint16_t method,
		     int (*build)(struct op *, struct rest_call *, struct sh_err *))
{
	struct op *op = rest_call_op(c, method);
	struct sh_err err;

	if (op != NULL)
		run(op, build(op, c, &err), &err);
}

/* ------------------------------------------------------------ writes */

static void step_applied(struct rest_call *c, struct op *op)
{
	(void)op;
	rest_call_reply(c, rest_update_result(c->index, c->term, true));
}

/* Wait until this node applied the write (a read_your_writes barrier). */
static void barrier(struct rest_call *c)
{
	struct op *op = rest_call_op(c, SHOAL__METHOD__METHOD_LIST_COLLECTIONS);
	Shoal__ListCollectionsRequest *r;

	if (op == NULL)
		return;
	r = api_new_msg(op, &shoal__list_collections_request__descriptor);
	if (r == NULL || (r->read = api_new_msg(op, &shoal__read_options__descriptor)) == NULL ||
	    (r->read->token = api_new_msg(op, &shoal__token__descriptor)) == NULL)
		return api_fail(op, SHOAL__STATUS_CODE__RESOURCE_EXHAUSTED, "out of memory");
	op->req = &r->base;
	r->read->consistency = SHOAL__CONSISTENCY__CONSISTENCY_READ_YOUR_WRITES;
	r->read->token->term = c->term;
	r->read->token->index = c->index;
	c->step = step_applied;
	api_start(op);
}

static void finish_write(struct rest_call *c)
{
	if (c->wait)
		return barrier(c);
	if (c->route == ROUTE_CREATE || c->route == ROUTE_DROP)
		return rest_call_reply(c, json_true());
	rest_call_reply(c, rest_update_result(c->index, c->term, false));
}

static void step_written(struct rest_call *c, struct op *op)
{
	const Shoal__WriteResponse *w = (const void *)op->resp;

	c->affected += w->affected;
	c->term = w->token ? w->token->term : 0;
	c->index = w->token ? w->token->index : 0;
	finish_write(c);
}

static void step_ddl_applied(struct rest_call *c, struct op *op)
{
	(void)op;
	rest_call_reply(c, json_true());
}

static void step_ddl(struct rest_call *c, struct op *op)
{
	step_written(c, op);
	if (c->wait)
		c->step = step_ddl_applied;
}

/* ------------------------------------------------------------ writes by filter */

static void scan_page(struct rest_call *c);

static void pages_done(struct rest_call *c)
{
	if (c->index == 0) /* nothing matched: nothing written */
		return rest_call_reply(
			c, json_pack("{s:n,s:s}", "operation_id", "status", "completed"));
	finish_write(c);
}

static void step_page_written(struct rest_call *c, struct op *op)
{
	const Shoal__WriteResponse *w = (const void *)op->resp;

	c->affected += w->affected;
	c->term = w->token ? w->token->term : c->term;
	c->index = w->token ? w->token->index : c->index;
	if (c->cursor != UINT64_MAX)
		return scan_page(c);
	pages_done(c);
}

static int change_of(struct op *op, struct rest_call *c, struct sh_err *err)
{
	Shoal__Filter *f;

	return rest_build_change(op, c, &f, err);
}

static void step_page(struct rest_call *c, struct op *op)
{
	const Shoal__ScrollResponse *s = (const void *)op->resp;
	uint16_t m = c->route == ROUTE_DELETE ? SHOAL__METHOD__METHOD_DELETE
					      : SHOAL__METHOD__METHOD_SET_PAYLOAD;
	struct op *w;
	struct sh_err err;
	uint64_t *ids;
	int rv;

	c->cursor = s->has_next ? s->next_offset : UINT64_MAX;
	if (s->n_points == 0)
		return pages_done(c);
	if ((w = rest_call_op(c, m)) == NULL)
		return;
	rv = change_of(w, c, &err);
	ids = rv == 0 ? arena_calloc(&w->arena, s->n_points, sizeof *ids) : NULL;
	if (rv == 0 && ids == NULL)
		rv = sh_err_set(&err, SH_ENOMEM, "out of memory");
	for (size_t i = 0; rv == 0 && i < s->n_points; i++)
		ids[i] = s->points[i]->id;
	if (rv == 0 && m == SHOAL__METHOD__METHOD_DELETE) {
		((Shoal__DeleteRequest *)(void *)w->req)->ids = ids;
		((Shoal__DeleteRequest *)(void *)w->req)->n_ids = s->n_points;
	} else if (rv == 0) {
		((Shoal__SetPayloadRequest *)(void *)w->req)->ids = ids;
		((Shoal__SetPayloadRequest *)(void *)w->req)->n_ids = s->n_points;
	}
	c->step = step_page_written;
	run(w, rv, &err);
}

static int build_page(struct op *op, struct rest_call *c, struct sh_err *err)
{
	Shoal__ScrollRequest *r = api_new_msg(op, &shoal__scroll_request__descriptor);
	int rv;

	if (r == NULL ||
	    (r->collection = arena_strndup(&op->arena, c->name, strlen(c->name))) == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	op->req = &r->base;
	r->offset = c->cursor;
	r->limit = PAGE_IDS;
	if ((rv = japi_filter(json_object_get(c->body, "filter"), &op->arena, "filter", &r->filter,
			      err)) != 0 ||
	    (rv = rest_read_opts(op, c, &r->read, err)) != 0)
		return rv;
	if (r->read->consistency == SHOAL__CONSISTENCY__CONSISTENCY_DEFAULT)
		r->read->consistency = SHOAL__CONSISTENCY__CONSISTENCY_STRONG;
	return 0;
}

static void scan_page(struct rest_call *c)
{
	c->step = step_page;
	start_op(c, SHOAL__METHOD__METHOD_SCROLL, build_page);
}

/* A delete or payload change: by ids (one write) or by filter (pages). */
static void start_change(struct rest_call *c)
{
	uint16_t m = c->route == ROUTE_DELETE ? SHOAL__METHOD__METHOD_DELETE
					      : SHOAL__METHOD__METHOD_SET_PAYLOAD;
	struct op *op = rest_call_op(c, m);
	Shoal__Filter *f = NULL;
	struct sh_err err;
	int rv;

	if (op == NULL)
		return;
	rv = rest_build_change(op, c, &f, &err);
	if (rv != 0 || f == NULL) {
		c->step = step_written;
		return run(op, rv, &err);
	}
	api_op_free(op); /* checked: the writes come page by page */
	c->pending--;
	c->cursor = 0;
	scan_page(c);
}

/* ------------------------------------------------------------ reads */

static void step_list(struct rest_call *c, struct op *op)
{
	rest_call_reply(c, rest_collections((const void *)op->resp));
}

static void step_describe(struct rest_call *c, struct op *op)
{
	bool found = op->status == SHOAL__STATUS_CODE__OK;

	switch (c->route) {
	case ROUTE_EXISTS: return rest_call_reply(c, json_pack("{s:b}", "exists", found));
	case ROUTE_ALIASES: return rest_call_reply(c, json_pack("{s:[]}", "aliases"));
	case ROUTE_INDEX:
	case ROUTE_INDEX_DROP:
		return rest_call_reply(
			c, json_pack("{s:n,s:s}", "operation_id", "status", "completed"));
	default: return rest_call_reply(c, rest_collection_info((const void *)op->resp));
	}
}

static void step_get(struct rest_call *c, struct op *op)
{
	const Shoal__PointsResponse *p = (const void *)op->resp;
	const json_t *ids = json_object_get(c->body, "ids");
	char uuid[JAPI_UUID_LEN + 1];
	json_t *a = json_array(), *rec;
	size_t k = 0;
	uint64_t id;
	struct sh_err err;

	/* points come in request order; a UUID asked for must be the one held */
	for (size_t i = 0; a != NULL && i < p->n_points; i++) {
		uuid[0] = '\0';
		if (c->route == ROUTE_GET_ONE) {
			json_t *s = json_string(c->id);

			japi_point_id(s, "id", &id, uuid, &err);
			json_decref(s);
		}
		for (; c->route != ROUTE_GET_ONE && k < json_array_size(ids); k++)
			if (japi_point_id(json_array_get(ids, k), "id", &id, uuid, &err) == 0 &&
			    id == p->points[i]->id)
				break;
		if ((rec = rest_record(p->points[i], c->sel, c->want_vec, uuid)) != NULL)
			json_array_append_new(a, rec);
	}
	if (c->route != ROUTE_GET_ONE)
		return rest_call_reply(c, a);
	if (json_array_size(a) == 0) {
		json_decref(a);
		return rest_call_fail(c, SHOAL__STATUS_CODE__NOT_FOUND,
				      "point %.60s not found in collection '%s'", c->id, c->name);
	}
	rest_call_reply(c, json_incref(json_array_get(a, 0)));
	json_decref(a);
}

static void step_scroll(struct rest_call *c, struct op *op)
{
	const Shoal__ScrollResponse *s = (const void *)op->resp;
	const Shoal__ScrollRequest *q = (const void *)op->req;
	size_t limit = q->limit - 1, n = s->n_points < limit ? s->n_points : limit;
	json_t *a = json_array(), *next = json_null();

	for (size_t i = 0; a != NULL && i < n; i++)
		json_array_append_new(a, rest_record(s->points[i], c->sel, c->want_vec, NULL));
	if (s->n_points > limit) {
		json_decref(next);
		next = rest_point_id(s->points[limit]->id, &s->points[limit]->payload);
	}
	rest_call_reply(c, json_pack("{s:o,s:o}", "points", a, "next_page_offset", next));
}

static void step_count(struct rest_call *c, struct op *op)
{
	rest_call_reply(
		c, json_pack("{s:I}", "count",
			     (json_int_t)((const Shoal__CountResponse *)(void *)op->resp)->count));
}

static void step_cluster(struct rest_call *c, struct op *op)
{
	rest_call_reply(c, c->route == ROUTE_CLUSTER ? rest_cluster((const void *)op->resp)
						     : rest_members((const void *)op->resp));
}

/* ------------------------------------------------------------ searches */

/* The search body of op (the body, or its searches[op->id]). */
static const json_t *search_body(const struct rest_call *c, const struct op *op)
{
	return is_batch(c->route) ? json_array_get(json_object_get(c->body, "searches"), op->id)
				  : c->body;
}

static json_t *scored(struct rest_call *c, struct op *op)
{
	const json_t *b = search_body(c, op), *t = json_object_get(b, "score_threshold");
	const json_t *off = json_object_get(b, "offset");
	const Shoal__SearchResponse *s = (const void *)op->resp;
	double threshold = json_number_value(t);
	json_t *sel = NULL, *r;
	struct sh_err err;

	rest_selector(json_object_get(b, "with_payload"), "with_payload", &sel, &err);
	r = rest_scored(s, s->metric, json_is_integer(off) ? (size_t)json_integer_value(off) : 0,
			(const void *)op->req, sel, true, json_is_number(t) ? &threshold : NULL);
	json_decref(sel);
	if (c->route == ROUTE_QUERY || c->route == ROUTE_QUERY_BATCH)
		r = json_pack("{s:o}", "points", r);
	return r;
}

static void step_search(struct rest_call *c, struct op *op)
{
	json_t *r = scored(c, op);

	if (is_batch(c->route))
		json_array_set_new(c->result, op->id, r);
	else
		rest_call_reply(c, r);
}

static void start_search(struct rest_call *c)
{
	bool query = c->route == ROUTE_QUERY || c->route == ROUTE_QUERY_BATCH;
	const json_t *all = json_object_get(c->body, "searches");
	size_t n = is_batch(c->route) ? json_array_size(all) : 1;
	struct sh_err err;
	char where[48];

	c->step = step_search;
	if (is_batch(c->route) &&
	    (!json_is_array(all) ||
	     japi_only_keys(c->body, (const char *const[]){"searches", NULL}, "body", &err) != 0))
		return rest_call_fail(
			c, SHOAL__STATUS_CODE__INVALID_ARGUMENT, "%s",
			json_is_array(all) ? err.msg : "searches: must be an array of requests");
	if (is_batch(c->route) && (c->result = json_array()) == NULL)
		return rest_call_fail(c, SHOAL__STATUS_CODE__RESOURCE_EXHAUSTED, "out of memory");
	for (size_t i = 0; is_batch(c->route) && i < n; i++)
		json_array_append_new(c->result, json_null());
	for (size_t i = 0; i < n && c->status == 0; i++) {
		struct op *op = rest_call_op(c, SHOAL__METHOD__METHOD_SEARCH);

		if (op == NULL)
			return;
		op->id = i;
		if (is_batch(c->route))
			japi_path(where, sizeof where, "searches[%zu]", i);
		else
			japi_path(where, sizeof where, "body");
		run(op,
		    rest_build_search(op, c, is_batch(c->route) ? json_array_get(all, i) : c->body,
				      query, where, &err),
		    &err);
	}
}

/* ------------------------------------------------------------ start */

static int build_list(struct op *op, struct rest_call *c, struct sh_err *err)
{
	Shoal__ListCollectionsRequest *r =
		api_new_msg(op, &shoal__list_collections_request__descriptor);

	if (r == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	op->req = &r->base;
	return rest_read_opts(op, c, &r->read, err);
}

static int build_describe(struct op *op, struct rest_call *c, struct sh_err *err)
{
	Shoal__DescribeCollectionRequest *r =
		api_new_msg(op, &shoal__describe_collection_request__descriptor);

	if (r == NULL || (r->name = arena_strndup(&op->arena, c->name, strlen(c->name))) == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	op->req = &r->base;
	if (c->route == ROUTE_INDEX) {
		static const char *const keys[] = {"field_name", "field_schema", NULL};
		const json_t *s = json_object_get(c->body, "field_schema"),
			     *t = json_object_get(s, "type");
		const char *name = json_is_string(s) ? json_string_value(s) : json_string_value(t);
		int rv = japi_only_keys(c->body, keys, "body", err);

		if (rv != 0)
			return rv;
		if (!json_is_string(json_object_get(c->body, "field_name")))
			return sh_err_set(err, SH_EINVAL, "field_name: required, a string");
		if (name != NULL && (strcmp(name, "text") == 0 || strcmp(name, "geo") == 0))
			return sh_err_set(
				err, SH_EINVAL,
				"field_schema: %s indexes are not supported (doc/qdrant.md)", name);
	}
	return rest_read_opts(op, c, &r->read, err);
}

static int build_drop(struct op *op, struct rest_call *c, struct sh_err *err)
{
	Shoal__DropCollectionRequest *r =
		api_new_msg(op, &shoal__drop_collection_request__descriptor);

	if (r == NULL || (r->name = arena_strndup(&op->arena, c->name, strlen(c->name))) == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	op->req = &r->base;
	return rest_write_opts(op, c, &r->write, err);
}

static int build_create(struct op *op, struct rest_call *c, struct sh_err *err)
{
	return rest_build_create(op, c, err);
}

/* The common shape read directly; any other body parsed, then built. */
static int build_upsert(struct op *op, struct rest_call *c, struct sh_err *err)
{
	struct evbuffer *b;
	json_t *body;
	char msg[200];
	size_t len;
	int rv;

	if (c->unparsed) {
		c->unparsed = false;
		b = evhttp_request_get_input_buffer(c->req);
		len = evbuffer_get_length(b);
		rv = len == 0 ? REST_FAST_DECLINED
			      : rest_fast_upsert(op, c, (const char *)evbuffer_pullup(b, -1), len,
						 err);
		if (rv != REST_FAST_DECLINED)
			return rv;
		if (rest_parse_body(c->req, &body, msg, sizeof msg) != 0)
			return sh_err_set(err, SH_EINVAL, "%s", msg);
		json_decref(c->body);
		c->body = body;
	}
	return rest_build_upsert(op, c, err);
}

static int build_count(struct op *op, struct rest_call *c, struct sh_err *err)
{
	return rest_build_count(op, c, err);
}

static int build_status(struct op *op, struct rest_call *c, struct sh_err *err)
{
	(void)c;
	if ((op->req = api_new_msg(op, &shoal__cluster_status_request__descriptor)) == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	return 0;
}

static void start_route(struct rest_call *c)
{
	switch (c->route) {
	case ROUTE_ROOT: /* Qdrant's VersionInfo, without the envelope */
		c->sent = true;
		return rest_send_json(c->r, c->req, 200,
				      json_pack("{s:s,s:s,s:s}", "title",
						"shoal - a distributed vector database "
						"speaking Qdrant's REST API",
						"version", QDRANT_API_VERSION, "shoal_version",
						PACKAGE_VERSION));
	case ROUTE_ALIASES:
		if (c->name[0] == '\0')
			return rest_call_reply(c, json_pack("{s:[]}", "aliases"));
		__attribute__((fallthrough)); /* the collection must exist */
	case ROUTE_DESCRIBE:
	case ROUTE_EXISTS:
	case ROUTE_INDEX:
	case ROUTE_INDEX_DROP:
		c->step = step_describe;
		return start_op(c, SHOAL__METHOD__METHOD_DESCRIBE_COLLECTION, build_describe);
	case ROUTE_LIST:
		c->step = step_list;
		return start_op(c, SHOAL__METHOD__METHOD_LIST_COLLECTIONS, build_list);
	case ROUTE_CREATE:
	case ROUTE_DROP:
		c->wait = true; /* Qdrant answers once the collection is there (or gone) */
		c->step = step_ddl;
		return start_op(c,
				c->route == ROUTE_CREATE ? SHOAL__METHOD__METHOD_CREATE_COLLECTION
							 : SHOAL__METHOD__METHOD_DROP_COLLECTION,
				c->route == ROUTE_CREATE ? build_create : build_drop);
	case ROUTE_UPSERT:
		c->step = step_written;
		return start_op(c, SHOAL__METHOD__METHOD_UPSERT, build_upsert);
	case ROUTE_GET:
	case ROUTE_GET_ONE:
		c->step = step_get;
		return start_op(c, SHOAL__METHOD__METHOD_GET, rest_build_get);
	case ROUTE_DELETE:
	case ROUTE_SET_PAYLOAD:
	case ROUTE_OVERWRITE:
	case ROUTE_DELETE_KEYS:
	case ROUTE_CLEAR: return start_change(c);
	case ROUTE_SEARCH:
	case ROUTE_SEARCH_BATCH:
	case ROUTE_QUERY:
	case ROUTE_QUERY_BATCH: return start_search(c);
	case ROUTE_SCROLL:
		c->step = step_scroll;
		return start_op(c, SHOAL__METHOD__METHOD_SCROLL, rest_build_scroll);
	case ROUTE_COUNT:
		c->step = step_count;
		return start_op(c, SHOAL__METHOD__METHOD_COUNT, build_count);
	case ROUTE_CLUSTER:
	case ROUTE_MEMBERS:
		c->step = step_cluster;
		return start_op(c, SHOAL__METHOD__METHOD_CLUSTER_STATUS, build_status);
	default: return rest_call_fail(c, SHOAL__STATUS_CODE__INVALID_ARGUMENT, "no such route");
	}
}

void rest_call_start(struct rest_call *c)
{
	c->wait = c->q.wait != NULL && strcmp(c->q.wait, "true") == 0;
	c->pending++; /* the start's own: an op may complete inside api_start */
	start_route(c);
	c->pending--;
	if (c->pending == 0 && !c->sent && c->status != 0)
		send_error(c);
	else if (c->pending == 0 && !c->sent && is_batch(c->route))
		rest_call_reply(c, json_incref(c->result));
	maybe_free(c);
}
