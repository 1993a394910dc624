/*
 * api: see api.h.  This file holds the op life cycle, the method table,
 * the writes and the read barriers (both through the node); the reads
 * themselves are in api_read.c.
 *
 * Invariant: every op started is answered exactly once, through
 * api_complete(), which records its metrics and calls op->done.
 */
#include "build.h"

#include "net/api.h"

#include "util/alloc.h"
#include "util/clock.h"
#include "util/log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum kind { K_NONE, K_LOOP, K_WRITE, K_READ, K_CHANGE, K_SNAP };

struct method {
	const char *name;
	const ProtobufCMessageDescriptor *req;
	enum kind kind;
};

static const struct method methods[API_MAX_METHOD + 1] = {
	[SHOAL__METHOD__METHOD_PING] = {"ping", &shoal__ping_request__descriptor, K_LOOP},
	[SHOAL__METHOD__METHOD_CREATE_COLLECTION] = {"create_collection",
						     &shoal__create_collection_request__descriptor,
						     K_WRITE},
	[SHOAL__METHOD__METHOD_DROP_COLLECTION] = {"drop_collection",
						   &shoal__drop_collection_request__descriptor,
						   K_WRITE},
	[SHOAL__METHOD__METHOD_LIST_COLLECTIONS] = {"list_collections",
						    &shoal__list_collections_request__descriptor,
						    K_READ},
	[SHOAL__METHOD__METHOD_DESCRIBE_COLLECTION] =
		{"describe_collection", &shoal__describe_collection_request__descriptor, K_READ},
	[SHOAL__METHOD__METHOD_UPSERT] = {"upsert", &shoal__upsert_request__descriptor, K_WRITE},
	[SHOAL__METHOD__METHOD_GET] = {"get", &shoal__get_request__descriptor, K_READ},
	[SHOAL__METHOD__METHOD_DELETE] = {"delete", &shoal__delete_request__descriptor, K_WRITE},
	[SHOAL__METHOD__METHOD_COUNT] = {"count", &shoal__count_request__descriptor, K_READ},
	[SHOAL__METHOD__METHOD_SCROLL] = {"scroll", &shoal__scroll_request__descriptor, K_READ},
	[SHOAL__METHOD__METHOD_SEARCH] = {"search", &shoal__search_request__descriptor, K_READ},
	[SHOAL__METHOD__METHOD_CLUSTER_STATUS] = {"cluster_status",
						  &shoal__cluster_status_request__descriptor,
						  K_LOOP},
	[SHOAL__METHOD__METHOD_CLUSTER_CHANGE] = {"cluster_change",
						  &shoal__cluster_change_request__descriptor,
						  K_CHANGE},
	[SHOAL__METHOD__METHOD_SET_PAYLOAD] = {"set_payload",
					       &shoal__set_payload_request__descriptor, K_WRITE},
	[SHOAL__METHOD__METHOD_SNAPSHOT] = {"snapshot", &shoal__snapshot_request__descriptor,
					    K_SNAP},
	[SHOAL__METHOD__METHOD_KEYRING] = {"keyring", &shoal__keyring_request__descriptor, K_LOOP},
};

struct api {
	struct api_opts o;
	char *node_name, *client_address, *rest_address;
	struct pool *pool;
	struct metrics metrics;
	const struct swim *members; /* NULL: this node alone */
	struct api_keyring keyring; /* gossip keys, .kr NULL without */
	bool stopping;
	struct health health;
	struct event *tick; /* samples the node for health every 100 ms */
	struct api_snaps *snaps;
	struct auth *auth;         /* NULL: no keys required */
	uint64_t auth_failures[3]; /* missing, invalid, denied */
};

_Static_assert(API_MAX_METHOD < METRICS_METHODS, "metrics count every method apart");
_Static_assert(SHOAL__STATUS_CODE__SESSION_EXPIRED < METRICS_STATUSES - 1,
	       "metrics count every status apart");

/* ------------------------------------------------------------ status */

int api_status_of(int code)
{
	switch (code) {
	case 0: return SHOAL__STATUS_CODE__OK;
	case SH_EINVAL:
	case SH_ERANGE:
	case SH_ETOOBIG: return SHOAL__STATUS_CODE__INVALID_ARGUMENT;
	case SH_ENOTFOUND: return SHOAL__STATUS_CODE__NOT_FOUND;
	case SH_EEXIST: return SHOAL__STATUS_CODE__ALREADY_EXISTS;
	case SH_EUNSUPPORTED: return SHOAL__STATUS_CODE__FAILED_PRECONDITION;
	case SH_ESESSION: return SHOAL__STATUS_CODE__SESSION_EXPIRED;
	case SH_EUNAVAIL:
	case SH_ESHUTDOWN:
	case SH_EBUSY: return SHOAL__STATUS_CODE__UNAVAILABLE;
	case SH_ETIMEDOUT: return SHOAL__STATUS_CODE__DEADLINE_EXCEEDED;
	case SH_EUNKNOWN:
	case SH_ESTALE: return SHOAL__STATUS_CODE__OUTCOME_UNKNOWN; /* an earlier copy? */
	case SH_ENOMEM:
	case SH_ENOSPC: return SHOAL__STATUS_CODE__RESOURCE_EXHAUSTED;
	default: return SHOAL__STATUS_CODE__INTERNAL;
	}
}

const char *api_status_name(int status)
{
	const ProtobufCEnumValue *v =
		protobuf_c_enum_descriptor_get_value(&shoal__status_code__descriptor, status);

	return v != NULL ? v->name : "UNKNOWN";
}

const char *api_method_name(uint16_t method)
{
	return method <= API_MAX_METHOD && methods[method].name ? methods[method].name : "unknown";
}

const ProtobufCMessageDescriptor *api_request_desc(uint16_t method)
{
	return method <= API_MAX_METHOD ? methods[method].req : NULL;
}

/* ------------------------------------------------------------ op life */

struct op *api_op_new(struct api *a, uint16_t method, uint8_t frontend, uint32_t timeout_ms)
{
	struct op *op = sh_malloc(sizeof *op);

	if (op == NULL)
		return NULL;
	memset(op, 0, offsetof(struct op, arena));
	arena_init(&op->arena);
	op->api = a;
	op->method = method;
	op->frontend = frontend;
	op->start_ns = sh_clock_mono_ns();
	op->deadline_ns = op->start_ns +
			  (uint64_t)(timeout_ms ? timeout_ms : a->o.request_timeout_ms) * 1000000;
	return op;
}

void api_op_free(struct op *op)
{
	if (op == NULL)
		return;
	arena_free(&op->arena);
	sh_free(op);
}

void api_complete(struct op *op)
{
	struct api *a = op->api;

	metrics_record(&a->metrics, op->frontend, op->method, op->status,
		       sh_clock_mono_ns() - op->start_ns);
	op->done(op);
}

int api_op_error(struct op *op, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sh_err_setv(&op->err, code, fmt, ap);
	va_end(ap);
	op->status = api_status_of(code);
	return code;
}

void api_fail(struct op *op, int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sh_err_setv(&op->err, SH_EINVAL, fmt, ap);
	va_end(ap);
	op->status = status;
	op->resp = NULL;
	api_complete(op);
}

static void fail_err(struct op *op, int code)
{
	op->status = api_status_of(code);
	op->resp = NULL;
	api_complete(op);
}

void *api_new_msg(struct op *op, const ProtobufCMessageDescriptor *desc)
{
	ProtobufCMessage *m = arena_alloc(&op->arena, desc->sizeof_message);

	if (m != NULL)
		desc->message_init(m);
	return m;
}

/* ------------------------------------------------------------ writes */

/* A failure from the node: its status, with the leader when known. */
static void fail_node(struct op *op, const struct node_result *r)
{
	op->err = r->err;
	op->leader = r->leader;
	if (r->leader_address != NULL)
		snprintf(op->leader_address, sizeof op->leader_address, "%s", r->leader_address);
	if (r->rv == SH_EUNAVAIL && r->leader != 0 && r->leader_address && r->leader_address[0])
		sh_err_set(&op->err, r->rv, "%s (leader: %s)", r->err.msg, r->leader_address);
	fail_err(op, r->rv);
}

static void on_written(void *arg, const struct node_result *r)
{
	struct op *op = arg;
	Shoal__WriteResponse *w;

	if (r->rv != 0)
		return fail_node(op, r);
	w = api_new_msg(op, &shoal__write_response__descriptor);
	if (w == NULL || (w->token = api_new_msg(op, &shoal__token__descriptor)) == NULL) {
		sh_err_set(&op->err, SH_ENOMEM, "out of memory");
		fail_err(op, SH_ENOMEM);
		return;
	}
	w->token->term = r->term;
	w->token->index = r->index;
	w->affected = r->affected;
	op->resp = &w->base;
	op->status = SHOAL__STATUS_CODE__OK;
	api_complete(op);
}

/* The write's client session (session.h), when it has one. */
static int session_of(const Shoal__WriteOptions *w, struct session_req *r, struct sh_err *err)
{
	if (w == NULL || w->client_id.len == 0)
		return 0;
	if (w->client_id.len != SESSION_ID_BYTES)
		return sh_err_set(err, SH_EINVAL, "write.client_id: %zu bytes, not %d",
				  w->client_id.len, SESSION_ID_BYTES);
	r->set = true;
	memcpy(r->client, w->client_id.data, SESSION_ID_BYTES);
	r->seq = w->seq;
	r->done_below = w->done_below;
	r->hash = w->request_hash;
	r->retry = w->retry;
	return session_check(r, err);
}

/* The write options of e's request: the ack level and the session. */
static int write_opts(struct op *op, const Shoal__WriteOptions *w, struct entry *e,
		      struct sh_err *err)
{
	if (w != NULL && (w->ack < 0 || w->ack > SHOAL__ACK__ACK_ALL))
		return sh_err_set(err, SH_EINVAL, "unknown ack level %d", (int)w->ack);
	op->ack = w != NULL && w->ack != 0 ? (int)w->ack : op->api->o.default_ack;
	/* a write with a session is answered with the state machine's verdict
	 * on it (a duplicate's first result, a refusal), which needs it
	 * applied: at quorum at least (doc/clients.md, "Exactly-once writes") */
	if (w != NULL && w->client_id.len > 0 && op->ack < SHOAL__ACK__ACK_QUORUM)
		op->ack = SHOAL__ACK__ACK_QUORUM;
	return session_of(w, &e->session, err);
}

static int metric_of(int m, enum sh_metric *out, struct sh_err *err)
{
	switch (m) {
	case SHOAL__METRIC__METRIC_DEFAULT:
	case SHOAL__METRIC__METRIC_L2: *out = SH_METRIC_L2; return 0;
	case SHOAL__METRIC__METRIC_COSINE: *out = SH_METRIC_COSINE; return 0;
	case SHOAL__METRIC__METRIC_DOT: *out = SH_METRIC_DOT; return 0;
	default: return sh_err_set(err, SH_EINVAL, "unknown metric %d", m);
	}
}

static int entry_create(struct op *op, struct entry *e)
{
	Shoal__CreateCollectionRequest *r = (void *)op->req;
	int rv;

	e->type = WAL_CREATE;
	if ((rv = coll_check_name(r->name, strlen(r->name), &op->err)) != 0 ||
	    (rv = metric_of(r->metric, &e->params.metric, &op->err)) != 0 ||
	    (rv = write_opts(op, r->write, e, &op->err)) != 0)
		return rv;
	memcpy(e->params.name, r->name, strlen(r->name) + 1);
	e->params.dim = r->dim;
	e->params.m = r->m;
	e->params.ef_construction = r->ef_construction;
	return 0;
}

static int entry_upsert(struct op *op, struct entry *e)
{
	Shoal__UpsertRequest *r = (void *)op->req;
	struct coll_point *pts;

	e->type = WAL_UPSERT;
	e->collection = r->collection;
	if (r->n_points == 0)
		return sh_err_set(&op->err, SH_EINVAL, "an upsert needs at least one point");
	if ((pts = arena_calloc(&op->arena, r->n_points, sizeof *pts)) == NULL)
		return sh_err_set(&op->err, SH_ENOMEM, "out of memory");
	for (size_t i = 0; i < r->n_points; i++) {
		const Shoal__Point *p = r->points[i];

		pts[i] = (struct coll_point){p->id, p->vector, (uint32_t)p->n_vector,
					     (const char *)p->payload.data, p->payload.len};
		if (p->n_vector > HNSW_MAX_DIM)
			return sh_err_set(&op->err, SH_EINVAL,
					  "point %zu (id %" PRIu64 "): %zu values is over %d", i,
					  p->id, p->n_vector, HNSW_MAX_DIM);
	}
	e->points = pts;
	e->n = r->n_points;
	return write_opts(op, r->write, e, &op->err);
}

/* Qdrant's payload operations (proto/shoal.proto, SetPayloadRequest). */
static int entry_payload(struct op *op, struct entry *e)
{
	Shoal__SetPayloadRequest *r = (void *)op->req;
	struct payload_change *ch = &e->change;

	e->type = WAL_SET_PAYLOAD;
	e->collection = r->collection;
	e->ids = r->ids;
	e->n = r->n_ids;
	if ((unsigned)r->op > PAYLOAD_OP_MAX)
		return sh_err_set(&op->err, SH_EINVAL, "unknown payload operation %d", (int)r->op);
	if ((r->op == SHOAL__PAYLOAD_OP__PAYLOAD_SET ||
	     r->op == SHOAL__PAYLOAD_OP__PAYLOAD_OVERWRITE) &&
	    r->payload.len == 0)
		return sh_err_set(&op->err, SH_EINVAL, "payload: required (a JSON object)");
	ch->op = (enum payload_op)r->op;
	ch->payload = (const char *)r->payload.data;
	ch->payload_len = r->payload.len;
	ch->key = r->key;
	ch->keys = (const char *const *)r->keys;
	ch->n_keys = r->n_keys;
	ch->keep = (const char *const *)r->keep;
	ch->n_keep = r->n_keep;
	return write_opts(op, r->write, e, &op->err);
}

static int build_entry(struct op *op, struct entry *e)
{
	memset(e, 0, sizeof *e);
	switch (op->method) {
	case SHOAL__METHOD__METHOD_CREATE_COLLECTION: return entry_create(op, e);
	case SHOAL__METHOD__METHOD_DROP_COLLECTION:
		e->type = WAL_DROP;
		e->collection = ((Shoal__DropCollectionRequest *)(void *)op->req)->name;
		return write_opts(op, ((Shoal__DropCollectionRequest *)(void *)op->req)->write, e,
				  &op->err);
	case SHOAL__METHOD__METHOD_UPSERT: return entry_upsert(op, e);
	case SHOAL__METHOD__METHOD_DELETE: {
		Shoal__DeleteRequest *r = (void *)op->req;

		e->type = WAL_DELETE;
		e->collection = r->collection;
		e->ids = r->ids;
		e->n = r->n_ids;
		return write_opts(op, r->write, e, &op->err);
	}
	case SHOAL__METHOD__METHOD_SET_PAYLOAD: return entry_payload(op, e);
	}
	return sh_err_set(&op->err, SH_EINVAL, "not a write");
}

static uint64_t deadline_ms(const struct op *op)
{
	return op->deadline_ns / 1000000;
}

/* The entry lives in the op's arena: the node holds it until it answers. */
static void start_write(struct op *op)
{
	struct entry *e = arena_calloc(&op->arena, 1, sizeof *e);
	int rv = e != NULL ? build_entry(op, e) : sh_err_set(&op->err, SH_ENOMEM, "out of memory");

	if (rv != 0)
		return fail_err(op, rv);
	node_write(op->api->o.node, e, (enum node_ack)op->ack, deadline_ms(op), on_written, op);
}

/* A configuration change, made by the leader; answered as a write. */
static void start_change(struct op *op)
{
	const Shoal__ClusterChangeRequest *r = (const void *)op->req;

	if (r->kind < SHOAL__CHANGE_KIND__CHANGE_ADD ||
	    r->kind > SHOAL__CHANGE_KIND__CHANGE_TRANSFER_LEADER)
		return api_fail(op, SHOAL__STATUS_CODE__INVALID_ARGUMENT, "unknown change %d",
				(int)r->kind);
	if (r->node_id == 0 && r->kind != SHOAL__CHANGE_KIND__CHANGE_TRANSFER_LEADER)
		return api_fail(op, SHOAL__STATUS_CODE__INVALID_ARGUMENT,
				"a change needs a node id");
	node_change(op->api->o.node, (enum node_change)r->kind, r->node_id, deadline_ms(op),
		    on_written, op);
}

/* ------------------------------------------------------------ reads */

static void read_run(struct pool_job *j)
{
	struct op *op = (struct op *)((char *)j - offsetof(struct op, job));

	if (sh_clock_mono_ns() > op->deadline_ns) {
		sh_err_set(&op->err, SH_ETIMEDOUT, "deadline exceeded before the %s ran",
			   api_method_name(op->method));
		op->status = SHOAL__STATUS_CODE__DEADLINE_EXCEEDED;
		return;
	}
	api_read_run(op);
}

/* The node's position when the read was dispatched, in the reply. */
static void add_read_state(struct op *op)
{
	Shoal__ReadState *rs = api_new_msg(op, &shoal__read_state__descriptor);
	void *r = op->resp;

	if (rs == NULL || r == NULL || op->status != SHOAL__STATUS_CODE__OK)
		return;
	rs->applied_index = op->rs.applied_index;
	rs->commit_index = op->rs.commit_index;
	rs->lag = op->rs.lag;
	rs->lag_ms = op->rs.lag_ms;
	switch (op->method) {
	case SHOAL__METHOD__METHOD_LIST_COLLECTIONS:
		((Shoal__ListCollectionsResponse *)r)->read_state = rs;
		break;
	case SHOAL__METHOD__METHOD_DESCRIBE_COLLECTION:
		((Shoal__CollectionInfo *)r)->read_state = rs;
		break;
	case SHOAL__METHOD__METHOD_GET: ((Shoal__PointsResponse *)r)->read_state = rs; break;
	case SHOAL__METHOD__METHOD_COUNT: ((Shoal__CountResponse *)r)->read_state = rs; break;
	case SHOAL__METHOD__METHOD_SCROLL: ((Shoal__ScrollResponse *)r)->read_state = rs; break;
	case SHOAL__METHOD__METHOD_SEARCH: ((Shoal__SearchResponse *)r)->read_state = rs; break;
	}
}

static void read_done(struct pool_job *j)
{
	struct op *op = (struct op *)((char *)j - offsetof(struct op, job));

	add_read_state(op);
	api_complete(op);
}

static void dispatch_read(struct op *op)
{
	api_health(op->api, &op->rs);
	op->job.run = read_run;
	op->job.done = read_done;
	pool_submit(op->api->pool, &op->job);
}

static const Shoal__ReadOptions *read_options(const struct op *op)
{
	const void *r = op->req;

	switch (op->method) {
	case SHOAL__METHOD__METHOD_LIST_COLLECTIONS:
		return ((const Shoal__ListCollectionsRequest *)r)->read;
	case SHOAL__METHOD__METHOD_DESCRIBE_COLLECTION:
		return ((const Shoal__DescribeCollectionRequest *)r)->read;
	case SHOAL__METHOD__METHOD_GET: return ((const Shoal__GetRequest *)r)->read;
	case SHOAL__METHOD__METHOD_COUNT: return ((const Shoal__CountRequest *)r)->read;
	case SHOAL__METHOD__METHOD_SCROLL: return ((const Shoal__ScrollRequest *)r)->read;
	case SHOAL__METHOD__METHOD_SEARCH: return ((const Shoal__SearchRequest *)r)->read;
	}
	return NULL;
}

static void on_barrier(void *arg, const struct node_result *r)
{
	struct op *op = arg;

	if (r->rv == SH_EINVAL)
		return api_fail(op, SHOAL__STATUS_CODE__FAILED_PRECONDITION, "%s", r->err.msg);
	if (r->rv != 0)
		return fail_node(op, r);
	dispatch_read(op);
}

/* Run a read once the node says its consistency level holds (DESIGN.md
 * section 7; node.h). */
static void start_read(struct op *op)
{
	const Shoal__ReadOptions *ro = read_options(op);
	struct api *a = op->api;
	int level = ro && ro->consistency ? (int)ro->consistency : a->o.default_consistency;

	if (level < SHOAL__CONSISTENCY__CONSISTENCY_EVENTUAL ||
	    level > SHOAL__CONSISTENCY__CONSISTENCY_QUORUM)
		return api_fail(op, SHOAL__STATUS_CODE__INVALID_ARGUMENT,
				"unknown consistency level %d", level);
	if (level == SHOAL__CONSISTENCY__CONSISTENCY_EVENTUAL)
		return dispatch_read(op);
	if (level == SHOAL__CONSISTENCY__CONSISTENCY_READ_YOUR_WRITES &&
	    (ro == NULL || ro->token == NULL))
		return api_fail(op, SHOAL__STATUS_CODE__INVALID_ARGUMENT,
				"consistency read_your_writes needs the token of a write");
	node_read(a->o.node, (enum node_read)level, ro && ro->token ? ro->token->term : 0,
		  ro && ro->token ? ro->token->index : 0, deadline_ms(op), on_barrier, op);
}

/* ------------------------------------------------------------ start */

void api_start(struct op *op)
{
	struct api *a = op->api;
	const struct method *m = op->method <= API_MAX_METHOD ? &methods[op->method] : NULL;

	if (m == NULL || m->kind == K_NONE)
		return api_fail(op, SHOAL__STATUS_CODE__INVALID_ARGUMENT, "unknown method %u",
				op->method);
	if (a->stopping)
		return api_fail(op, SHOAL__STATUS_CODE__UNAVAILABLE, "the node is stopping");
	if (sh_clock_mono_ns() > op->deadline_ns)
		return api_fail(op, SHOAL__STATUS_CODE__DEADLINE_EXCEEDED,
				"deadline exceeded on arrival");
	switch (m->kind) {
	case K_LOOP:
		if (op->method == SHOAL__METHOD__METHOD_CLUSTER_STATUS)
			api_cluster_status(op, &a->o, a->members);
		else if (op->method == SHOAL__METHOD__METHOD_KEYRING)
			api_keyring(op, &a->keyring);
		else if ((op->resp = api_new_msg(op, &shoal__ping_response__descriptor)) == NULL)
			op->status = SHOAL__STATUS_CODE__RESOURCE_EXHAUSTED;
		return api_complete(op);
	case K_WRITE: return start_write(op);
	case K_CHANGE: return start_change(op);
	case K_READ: return start_read(op);
	case K_SNAP: return api_snap_start(op, a->snaps, a->pool);
	default: break;
	}
}

/* ------------------------------------------------------------ life */

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct api *a = arg;
	struct node_status st;

	if (a->o.node == NULL)
		return;
	node_status(a->o.node, &st);
	health_sample(&a->health, sh_clock_mono_ms(), &st);
}

void api_health(struct api *a, struct health_view *v)
{
	struct node_status st;

	if (a->o.node == NULL) {
		memset(v, 0, sizeof *v);
		v->ready = !a->stopping;
		snprintf(v->reason, sizeof v->reason, "%s",
			 a->stopping ? "the node is stopping" : "");
		return;
	}
	node_status(a->o.node, &st);
	health_view(&a->health, sh_clock_mono_ms(), &st, a->stopping, v);
}

static int start_tick(struct api *a, struct sh_err *err)
{
	struct timeval tv = {0, 100 * 1000};

	health_init(&a->health, &a->o.health);
	if (a->o.base == NULL) /* inline (the simulator): sampled when asked */
		return 0;
	a->tick = event_new(a->o.base, -1, EV_PERSIST, on_tick, a);
	if (a->tick == NULL || event_add(a->tick, &tv) != 0)
		return sh_err_set(err, SH_ENOMEM, "api: cannot start the health timer");
	return 0;
}

int api_new(const struct api_opts *o, struct api **out, struct sh_err *err)
{
	struct api *a = sh_calloc(1, sizeof *a);
	int rv;

	if (a == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	a->o = *o;
	a->node_name = sh_strdup(o->node_name);
	a->client_address = sh_strdup(o->client_address ? o->client_address : "");
	a->rest_address = sh_strdup(o->rest_address ? o->rest_address : "");
	a->o.node_name = a->node_name;
	a->o.client_address = a->client_address;
	a->o.rest_address = a->rest_address;
	if (a->node_name == NULL || a->client_address == NULL || a->rest_address == NULL) {
		api_free(a);
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	}
	if (api_snaps_new(&a->snaps, sh_clock_mono_ns() ^ o->node_id) != 0) {
		api_free(a);
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	}
	if ((rv = pool_new(o->base, o->search_threads, &a->pool, err)) != 0 ||
	    (rv = start_tick(a, err)) != 0) {
		api_free(a);
		return rv;
	}
	*out = a;
	return 0;
}

void api_quiesce(struct api *a)
{
	a->stopping = true;
	if (a->tick != NULL)
		event_del(a->tick);
	pool_free(a->pool);
	a->pool = NULL;
}

void api_free(struct api *a)
{
	if (a == NULL)
		return;
	if (a->pool != NULL)
		api_quiesce(a);
	if (a->tick != NULL)
		event_free(a->tick);
	api_snaps_free(a->snaps);
	auth_free(a->auth);
	sh_free(a->node_name);
	sh_free(a->keyring.path);
	sh_free(a->client_address);
	sh_free(a->rest_address);
	sh_free(a);
}

struct metrics *api_metrics(struct api *a)
{
	return &a->metrics;
}

struct db *api_db(struct api *a)
{
	return a->o.db;
}

struct node *api_node(struct api *a)
{
	return a->o.node;
}

struct node_net *api_net(struct api *a)
{
	return a->o.net;
}

void api_ids(struct api *a, uint64_t *node_id, uint64_t *cluster_id)
{
	struct node_status st;

	*node_id = a->o.node_id;
	*cluster_id = 0;
	if (a->o.node != NULL) {
		node_status(a->o.node, &st);
		*cluster_id = st.cluster_id;
	}
}

void api_set_membership(struct api *a, const struct swim *s)
{
	a->members = s;
}

const struct swim *api_membership(const struct api *a)
{
	return a->members;
}

/* ------------------------------------------------------------ keys */

int api_set_keyring(struct api *a, const struct api_keyring *k)
{
	char *p = sh_strdup(k->path);

	if (p == NULL)
		return SH_ENOMEM;
	sh_free(a->keyring.path);
	a->keyring = *k;
	a->keyring.path = p;
	return 0;
}

struct keyring *api_keyring_of(const struct api *a)
{
	return a->keyring.kr;
}

void api_set_auth(struct api *a, struct auth *auth)
{
	auth_free(a->auth);
	a->auth = auth;
}

bool api_auth_required(const struct api *a)
{
	return a->auth != NULL;
}

int api_authorize(struct api *a, const char *key, size_t len, enum auth_role need, const char *what,
		  char *msg, size_t size)
{
	enum auth_role have;
	int st;

	if (a->auth == NULL || need == AUTH_OPEN)
		return 0;
	have = auth_role_of(a->auth, key, len);
	if ((st = auth_check(have, need, what, msg, size)) != 0)
		a->auth_failures[have == AUTH_MISSING ? 0 : have == AUTH_INVALID ? 1 : 2]++;
	return st;
}

void api_auth_failures(const struct api *a, uint64_t out[3])
{
	memcpy(out, a->auth_failures, sizeof a->auth_failures);
}

void api_set_stopping(struct api *a)
{
	a->stopping = true;
}

bool api_stopping(const struct api *a)
{
	return a->stopping;
}
