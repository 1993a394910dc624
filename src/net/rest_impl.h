/*
 * rest_impl: shared by rest.c (the HTTP side: routing, replies), the
 * Qdrant dialect — rest_call.c (what each route runs), rest_qbuild.c
 * (Qdrant's bodies to request messages), rest_qresult.c (response
 * messages to Qdrant's JSON) — rest_guard.c (evhttp's own error replies
 * as JSON), rest_metrics.c (GET /metrics) and rest_ui.c (the status page).
 *
 * A struct rest_call lives from the handler to the reply, owned by rest.c
 * (sh_malloc); its ops are the api's, each freed when it completes.  Loop
 * thread only.
 */
#ifndef SHOAL_NET_REST_IMPL_H
#define SHOAL_NET_REST_IMPL_H

#include <jansson.h>
#include <stdbool.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>

#include "net/api.h"

/* The routes: Qdrant's REST API (doc/qdrant.md) and shoal's own paths. */
enum rest_route {
	ROUTE_NONE,
	ROUTE_ROOT,         /* GET / */
	ROUTE_LIST,         /* GET /collections */
	ROUTE_CREATE,       /* PUT /collections/{name} */
	ROUTE_DESCRIBE,     /* GET /collections/{name} */
	ROUTE_DROP,         /* DELETE /collections/{name} */
	ROUTE_EXISTS,       /* GET /collections/{name}/exists */
	ROUTE_UPSERT,       /* PUT /collections/{name}/points */
	ROUTE_GET,          /* POST /collections/{name}/points */
	ROUTE_GET_ONE,      /* GET /collections/{name}/points/{id} */
	ROUTE_DELETE,       /* POST .../points/delete */
	ROUTE_SET_PAYLOAD,  /* POST .../points/payload */
	ROUTE_OVERWRITE,    /* PUT .../points/payload */
	ROUTE_DELETE_KEYS,  /* POST .../points/payload/delete */
	ROUTE_CLEAR,        /* POST .../points/payload/clear */
	ROUTE_SEARCH,       /* POST .../points/search */
	ROUTE_SEARCH_BATCH, /* POST .../points/search/batch */
	ROUTE_QUERY,        /* POST .../points/query */
	ROUTE_QUERY_BATCH,  /* POST .../points/query/batch */
	ROUTE_SCROLL,       /* POST .../points/scroll */
	ROUTE_COUNT,        /* POST .../points/count */
	ROUTE_INDEX,        /* PUT /collections/{name}/index */
	ROUTE_INDEX_DROP,   /* DELETE /collections/{name}/index/{field} */
	ROUTE_ALIASES,      /* GET /aliases, GET /collections/{name}/aliases */
	ROUTE_CLUSTER,      /* GET /cluster */
	ROUTE_MEMBERS,      /* GET /cluster/members */
	ROUTE_REFUSED,      /* a path of Qdrant's that shoal does not serve */
};

/* The payload key where a point written with a UUID keeps it (removed
 * from what the API returns; doc/qdrant.md, "Point ids"). */
#define REST_UUID_KEY "__shoal_uuid"

/* The query parameters a route reads (NULL: absent). */
struct rest_query {
	const char *consistency, *token, *ack, *wait, *ordering;
};

/* A request being answered: the route, its parsed body and the ops it
 * runs (one, several at once for a batch, or one after another). */
struct rest_call;
typedef void (*rest_step_fn)(struct rest_call *c, struct op *op);

struct rest_call {
	struct rest *r;
	struct evhttp_request *req;
	enum rest_route route;
	uint64_t t0_ns;
	uint32_t timeout_ms;
	json_t *body;  /* never NULL */
	bool unparsed; /* an upsert's body, not yet read (body is {}) */
	char name[72];
	char *id; /* ROUTE_GET_ONE: the path's id */
	struct rest_query q;
	int pending;       /* ops in flight */
	bool sent;         /* replied */
	rest_step_fn step; /* what an op's completion does */
	int status;        /* the first error (Shoal__StatusCode), 0 none */
	struct sh_err err;
	uint64_t leader;
	char leader_address[80];
	json_t *result; /* built so far */
	json_t *sel;    /* with_payload selector of the request */
	bool want_vec;  /* with_vector */
	/* writes by filter: page after page */
	struct op *model; /* the write, its ids filled per page */
	uint64_t cursor;
	uint64_t affected, term, index;
	bool wait;
};

/* rest.c: send j (taken over) with code; the HTTP code of a status; an
 * error body in Qdrant's shape ({"status": {"error": msg, "code": NAME},
 * "time": seconds}). */
void rest_send_json(struct rest *r, struct evhttp_request *req, int code, json_t *j);
/* req's body parsed into *out (an object; {} when empty): 0, or -1 with
 * what is wrong in msg. */
int rest_parse_body(struct evhttp_request *req, json_t **out, char *msg, size_t size);
int rest_http_code(int status);
/* rest_auth.c: the role a route needs; whether req's key (Authorization:
 * Bearer, or api-key) has it: 0, or the status to answer with msg. */
enum auth_role rest_route_role(enum rest_route route);
int rest_authorize(struct api *a, struct evhttp_request *req, enum auth_role need, const char *what,
		   char *msg, size_t size);
/* The API key a request carries (Authorization: Bearer, or api-key),
 * "" without one. */
const char *rest_api_key(struct evkeyvalq *h);
json_t *rest_error_body(int status, const char *msg, double seconds);
/* A read's staleness headers (doc/protocol.md, "Health and readiness"). */
void rest_read_headers(struct evhttp_request *req, const struct health_view *v);

struct api *rest_api(struct rest *r);
/* Free c (rest.c; once replied and no op in flight). */
void rest_call_free(struct rest_call *c);

/* rest_call.c.  Start c (filled by rest.c, which hands it over). */
void rest_call_start(struct rest_call *c);
/* Answer 200 with {"result": result, "status": "ok", "time": ...}. */
void rest_call_reply(struct rest_call *c, json_t *result);
/* Keep the first error; it is the reply once no op is in flight. */
void rest_call_fail(struct rest_call *c, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A new op of c for method, its owner c; NULL (and c failed) on ENOMEM. */
struct op *rest_call_op(struct rest_call *c, uint16_t method);

/* rest_qbuild.c: the Qdrant bodies as request messages in op's arena;
 * SH_EINVAL with what was wrong in err. */
int rest_read_opts(struct op *op, const struct rest_call *c, Shoal__ReadOptions **out,
		   struct sh_err *err);
int rest_write_opts(struct op *op, const struct rest_call *c, Shoal__WriteOptions **out,
		    struct sh_err *err);
/* rest_idem.c: the Idempotency-Key header into wo (a client session of
 * one write); nothing without the header. */
int rest_idempotency(struct op *op, const struct rest_call *c, Shoal__WriteOptions *wo,
		     struct sh_err *err);
int rest_build_create(struct op *op, const struct rest_call *c, struct sh_err *err);
int rest_build_upsert(struct op *op, const struct rest_call *c, struct sh_err *err);
/* A point's payload (NULL, null or an object) as the text it is stored as,
 * with the point's UUID (uuid, "" for none) kept under REST_UUID_KEY. */
int rest_payload_text(struct op *op, const json_t *pl, const char *uuid, const char *where,
		      ProtobufCBinaryData *out, struct sh_err *err);

/* rest_fastup.c: the body of an upsert in the common shape
 * {"points": [{"id": .., "vector": [..], "payload": {..}}, ..]} read into
 * op's request without a jansson tree for it — the same request
 * rest_build_upsert builds from the parsed body.  REST_FAST_DECLINED for
 * any other body (another shape, or one with an error to name): the
 * caller parses it and calls rest_build_upsert. */
#define REST_FAST_DECLINED 1
int rest_fast_upsert(struct op *op, const struct rest_call *c, const char *text, size_t len,
		     struct sh_err *err);
int rest_build_get(struct op *op, struct rest_call *c, struct sh_err *err);
/* A search from a SearchRequest (query: false) or QueryRequest (true). */
int rest_build_search(struct op *op, struct rest_call *c, const json_t *body, bool query,
		      const char *where, struct sh_err *err);
int rest_build_scroll(struct op *op, struct rest_call *c, struct sh_err *err);
int rest_build_count(struct op *op, const struct rest_call *c, struct sh_err *err);
/* A delete or payload change; *filter the selector's filter when it
 * selects by filter (the ids come later, page by page). */
int rest_build_change(struct op *op, struct rest_call *c, Shoal__Filter **filter,
		      struct sh_err *err);
/* with_payload: true, false, [keys], {"include": [...]}, {"exclude": [...]}. */
int rest_selector(const json_t *j, const char *where, json_t **sel, struct sh_err *err);
int rest_with_vector(const json_t *j, const char *where, bool dflt, bool *out, struct sh_err *err);
/* "field: <feature> is not supported (doc/qdrant.md)" for the first of
 * names present in o (NULL-terminated pairs: name, feature). */
int rest_refuse(const json_t *o, const char *const *pairs, const char *where, struct sh_err *err);

/* rest_qresult.c: response messages as Qdrant's JSON (new references). */
json_t *rest_update_result(uint64_t index, uint64_t term, bool completed);
json_t *rest_collection_info(const Shoal__CollectionInfo *i);
json_t *rest_collections(const Shoal__ListCollectionsResponse *l);
/* A record; NULL when want_uuid is set and the point does not hold it. */
json_t *rest_record(const Shoal__Point *p, const json_t *sel, bool vec, const char *want_uuid);
json_t *rest_scored(const Shoal__SearchResponse *s, int metric, size_t offset,
		    const Shoal__SearchRequest *q, const json_t *sel, bool vec,
		    const double *threshold);
json_t *rest_cluster(const Shoal__ClusterStatusResponse *s);
json_t *rest_members(const Shoal__ClusterStatusResponse *s);
/* The id as the client wrote it: a UUID kept in payload, else the number. */
json_t *rest_point_id(uint64_t id, const ProtobufCBinaryData *payload);

/* rest_guard.c.  One per REST listener; rest.c sets `ours` while it
 * writes a reply of its own, so that any other output is evhttp's. */
struct rest_guard {
	bool ours;
	bool busy;            /* rewriting: our own changes are ignored */
	struct evbuffer *buf; /* the output where evhttp's reply started, or NULL */
	size_t start;         /* ... at this offset */
	size_t max_body;      /* for the 413 message */
};
/* evhttp_set_bevcb's callback; arg is the struct rest_guard. */
struct bufferevent *rest_guard_bev(struct event_base *base, void *arg);

/* rest.c: a reply streamed in chunks (GET /snapshot): the headers with
 * code 200 and type, each chunk (cb once it left the output buffer), the
 * end; the guard knows them as ours. */
void rest_stream_start(struct rest *r, struct evhttp_request *req, const char *type);
void rest_stream_chunk(struct rest *r, struct evhttp_request *req, struct evbuffer *b,
		       void (*cb)(struct evhttp_connection *, void *), void *arg);
void rest_stream_end(struct rest *r, struct evhttp_request *req);

/* rest_snap.c: GET /snapshot, a backup streamed from this node. */
void rest_snapshot(struct rest *r, struct evhttp_request *req);

/* rest_metrics.c: the Prometheus text of GET /metrics; self is this node. */
void rest_metrics(struct api *a, uint64_t self, struct evbuffer *out);

/* rest_ui.c: the status page, GET /ui (HTML with its CSS and JS). */
extern const char rest_ui_page[];

#endif
