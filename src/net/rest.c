/*
 * rest: see rest.h.  The operations speak Qdrant's REST dialect
 * (doc/qdrant.md; rest_call.c and the rest_q*.c files); this file is the
 * HTTP side: routing, replies, health, metrics and the status page.
 * GET /snapshot streams a backup (rest_snap.c).
 * Routing splits the path into at most six URL-decoded segments; a segment that decodes to a NUL
 * byte and a collection name outside [A-Za-z0-9_-]{1,64} are refused before anything is looked up.
 * Every reply leaves through reply() (HEAD gets no body); every error is JSON with the HTTP code of
 * its status, evhttp's own included (rest_guard.c).
 */
#include "build.h"

#include "net/rest.h"

#include "net/rest_impl.h"
#include "net/tls.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/log.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <sys/queue.h>

#define MAX_SEGMENTS 6

struct rest {
	struct rest_opts o;
	struct evhttp *http;
	struct rest_guard guard;
};

int rest_http_code(int status)
{
	static const int codes[] = {200, 400, 404, 409, 412, 503, 504,
				    429, 401, 500, 500, 403, 409};

	return status >= 0 && status < 13 ? codes[status] : 500;
}

static const char *reason_of(int code)
{
	switch (code) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 412: return "Precondition Failed";
	case 429: return "Too Many Requests";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Error";
	}
}

/* Every reply goes out here: a HEAD request gets the headers alone, with
 * the Content-Length the body would have had (evhttp 2.1 would send the
 * body); the guard is told that this output is ours. */
static void reply(struct rest *r, struct evhttp_request *req, int code, const char *type,
		  struct evbuffer *body)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	bool head = evhttp_request_get_command(req) == EVHTTP_REQ_HEAD;
	char len[24];

	evhttp_add_header(h, "Content-Type", type);
	if (head) {
		snprintf(len, sizeof len, "%zu", body ? evbuffer_get_length(body) : 0);
		evhttp_add_header(h, "Content-Length", len);
	}
	r->guard.ours = true;
	r->guard.buf = NULL;
	evhttp_send_reply(req, code, reason_of(code), head ? NULL : body);
	r->guard.ours = false;
}

void rest_stream_start(struct rest *r, struct evhttp_request *req, const char *type)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
	r->guard.ours = true;
	r->guard.buf = NULL;
	evhttp_send_reply_start(req, 200, "OK");
	r->guard.ours = false;
}

void rest_stream_chunk(struct rest *r, struct evhttp_request *req, struct evbuffer *b,
		       void (*cb)(struct evhttp_connection *, void *), void *arg)
{
	r->guard.ours = true;
	evhttp_send_reply_chunk_with_cb(req, b, cb, arg);
	r->guard.ours = false;
}

void rest_stream_end(struct rest *r, struct evhttp_request *req)
{
	r->guard.ours = true;
	evhttp_send_reply_end(req);
	r->guard.ours = false;
}

void rest_send_json(struct rest *r, struct evhttp_request *req, int code, json_t *j)
{
	struct evbuffer *out = evbuffer_new();
	char *text = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;

	if (out != NULL && text != NULL) {
		evbuffer_add(out, text, strlen(text));
		evbuffer_add(out, "\n", 1);
	}
	reply(r, req, code, "application/json", out);
	sh_free(text);
	json_decref(j);
	if (out != NULL)
		evbuffer_free(out);
}

#define send_json rest_send_json

json_t *rest_error_body(int status, const char *msg, double seconds)
{
	return json_pack("{s:{s:s,s:s},s:f}", "status", "error", msg, "code",
			 api_status_name(status), "time", seconds);
}

static void send_error(struct rest *r, struct evhttp_request *req, int status, const char *msg)
{
	send_json(r, req, rest_http_code(status), rest_error_body(status, msg, 0));
}

/* ------------------------------------------------------------ calls */

void rest_read_headers(struct evhttp_request *req, const struct health_view *v)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	char buf[24];

	snprintf(buf, sizeof buf, "%" PRIu64, v->applied_index);
	evhttp_add_header(h, "X-Shoal-Applied-Index", buf);
	snprintf(buf, sizeof buf, "%" PRIu64, v->commit_index);
	evhttp_add_header(h, "X-Shoal-Commit-Index", buf);
	snprintf(buf, sizeof buf, "%" PRIu64, v->lag);
	evhttp_add_header(h, "X-Shoal-Lag", buf);
	snprintf(buf, sizeof buf, "%" PRIu64, v->lag_ms);
	evhttp_add_header(h, "X-Shoal-Lag-Ms", buf);
}

/* Digits only, at most max; absent is 0 (the default). */
static int number_of(const char *s, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	*out = 0;
	if (s == NULL)
		return 0;
	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end != '\0' || errno != 0 || v > max)
		return -1;
	*out = v;
	return 0;
}

/* timeout_ms (shoal's) or timeout (Qdrant's, in seconds); 0 the default. */
static int timeout_of(const struct evkeyvalq *q, uint32_t *out, char *msg, size_t size)
{
	const char *ms = evhttp_find_header(q, "timeout_ms"), *s = evhttp_find_header(q, "timeout");
	uint64_t v;

	*out = 0;
	if (number_of(ms, UINT32_MAX, &v) != 0) {
		snprintf(msg, size,
			 "timeout_ms: '%.40s' is not a number of milliseconds (0 to %" PRIu32 ")",
			 ms, UINT32_MAX);
		return -1;
	}
	*out = (uint32_t)v;
	if (ms == NULL && number_of(s, UINT32_MAX / 1000, &v) != 0) {
		snprintf(msg, size,
			 "timeout: '%.40s' is not a number of seconds (0 to %" PRIu32 ")", s,
			 UINT32_MAX / 1000);
		return -1;
	}
	if (ms == NULL)
		*out = (uint32_t)v * 1000;
	return 0;
}

int rest_parse_body(struct evhttp_request *req, json_t **out, char *msg, size_t size)
{
	struct evbuffer *body = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(body);
	json_error_t je;
	json_t *j;

	*out = NULL;
	if (len == 0 && (*out = json_object()) == NULL)
		snprintf(msg, size, "out of memory");
	if (len == 0)
		return *out ? 0 : -1;
	j = json_loadb((const char *)evbuffer_pullup(body, -1), len, JSON_REJECT_DUPLICATES, &je);
	if (j == NULL) {
		snprintf(msg, size, "body is not valid JSON: %.120s (line %d, column %d)", je.text,
			 je.line, je.column);
		return -1;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		snprintf(msg, size, "body must be a JSON object");
		return -1;
	}
	*out = j;
	return 0;
}

static char *dup_param(const struct evkeyvalq *q, const char *name)
{
	const char *v = evhttp_find_header(q, name);

	return v ? sh_strdup(v) : NULL;
}

static void call_free(struct rest_call *c)
{
	json_decref(c->body);
	json_decref(c->result);
	json_decref(c->sel);
	sh_free(c->id);
	sh_free((char *)(uintptr_t)c->q.consistency);
	sh_free((char *)(uintptr_t)c->q.token);
	sh_free((char *)(uintptr_t)c->q.ack);
	sh_free((char *)(uintptr_t)c->q.wait);
	sh_free((char *)(uintptr_t)c->q.ordering);
	sh_free(c);
}

static void start(struct rest *r, struct evhttp_request *req, struct rest_call *in,
		  const struct evkeyvalq *q)
{
	struct rest_call *c = sh_calloc(1, sizeof *c);
	char msg[200];

	if (c == NULL)
		return send_error(r, req, SHOAL__STATUS_CODE__RESOURCE_EXHAUSTED, "out of memory");
	*c = *in;
	c->r = r;
	c->req = req;
	c->t0_ns = sh_clock_mono_ns();
	c->q.consistency = dup_param(q, "consistency");
	c->q.token = dup_param(q, "token");
	c->q.ack = dup_param(q, "ack");
	c->q.wait = dup_param(q, "wait");
	c->q.ordering = dup_param(q, "ordering");
	/* an upsert's body is read when its request is built (rest_fastup.c) */
	c->unparsed = c->route == ROUTE_UPSERT;
	if (c->unparsed && (c->body = json_object()) == NULL) {
		send_error(r, req, SHOAL__STATUS_CODE__RESOURCE_EXHAUSTED, "out of memory");
		call_free(c);
		return;
	}
	if (timeout_of(q, &c->timeout_ms, msg, sizeof msg) != 0 ||
	    (!c->unparsed && rest_parse_body(req, &c->body, msg, sizeof msg) != 0)) {
		send_error(r, req, SHOAL__STATUS_CODE__INVALID_ARGUMENT, msg);
		call_free(c);
		return;
	}
	rest_call_start(c);
}

struct api *rest_api(struct rest *r)
{
	return r->o.api;
}

void rest_call_free(struct rest_call *c)
{
	call_free(c);
}

/* ------------------------------------------------------------ health */

/* /healthz and /livez: the loop answers; 503 once the node is stopping. */
static void send_live(struct rest *r, struct evhttp_request *req)
{
	bool stopping = api_stopping(r->o.api);

	send_json(r, req, stopping ? 503 : 200,
		  stopping ? json_pack("{s:s,s:s}", "status", "UNAVAILABLE", "message",
				       "the node is stopping")
			   : json_pack("{s:s}", "status", "OK"));
}

/* /readyz (doc/protocol.md, "Health and readiness"). */
static void send_ready(struct rest *r, struct evhttp_request *req)
{
	struct health_view v;
	json_t *j;

	api_health(r->o.api, &v);
	j = json_pack("{s:s,s:b,s:I,s:I,s:I,s:I}", "status", v.ready ? "OK" : "UNAVAILABLE",
		      "ready", v.ready, "applied_index", (json_int_t)v.applied_index,
		      "commit_index", (json_int_t)v.commit_index, "lag", (json_int_t)v.lag,
		      "lag_ms", (json_int_t)v.lag_ms);
	if (j != NULL && !v.ready)
		json_object_set_new(j, "message", json_string(v.reason));
	evhttp_add_header(evhttp_request_get_output_headers(req), "Access-Control-Allow-Origin",
			  "*");
	send_json(r, req, v.ready ? 200 : 503, j);
}

static void send_metrics(struct rest *r, struct evhttp_request *req)
{
	struct evbuffer *out = evbuffer_new();

	if (out == NULL)
		return send_error(r, req, SHOAL__STATUS_CODE__RESOURCE_EXHAUSTED, "out of memory");
	rest_metrics(r->o.api, r->o.node_id, out);
	reply(r, req, 200, "text/plain; version=0.0.4", out);
	evbuffer_free(out);
}

static void send_ui(struct rest *r, struct evhttp_request *req)
{
	struct evbuffer *out = evbuffer_new();

	if (out == NULL)
		return send_error(r, req, SHOAL__STATUS_CODE__RESOURCE_EXHAUSTED, "out of memory");
	evbuffer_add_reference(out, rest_ui_page, strlen(rest_ui_page), NULL, NULL);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-cache");
	reply(r, req, 200, "text/html; charset=utf-8", out);
	evbuffer_free(out);
}

/* ------------------------------------------------------------ routing */

/* The routes under /collections/{name}/points. */
static enum rest_route route_points(char **seg, int n, enum evhttp_cmd_type cmd)
{
	const char *a = n > 3 ? seg[3] : "", *b = n > 4 ? seg[4] : "";
	bool post = cmd == EVHTTP_REQ_POST;

	if (n == 3)
		return cmd == EVHTTP_REQ_PUT ? ROUTE_UPSERT : post ? ROUTE_GET : ROUTE_NONE;
	if (n == 4 && cmd == EVHTTP_REQ_GET)
		return ROUTE_GET_ONE;
	if (n == 4 && strcmp(a, "payload") == 0)
		return post                    ? ROUTE_SET_PAYLOAD
		       : cmd == EVHTTP_REQ_PUT ? ROUTE_OVERWRITE
					       : ROUTE_NONE;
	if (!post || n > 5)
		return ROUTE_NONE;
	if (n == 4) {
		static const char *const names[] = {"delete", "search", "query", "scroll", "count"};
		static const enum rest_route r[] = {ROUTE_DELETE, ROUTE_SEARCH, ROUTE_QUERY,
						    ROUTE_SCROLL, ROUTE_COUNT};

		for (int i = 0; i < 5; i++)
			if (strcmp(a, names[i]) == 0)
				return r[i];
		return ROUTE_NONE;
	}
	if (strcmp(a, "payload") == 0)
		return strcmp(b, "delete") == 0  ? ROUTE_DELETE_KEYS
		       : strcmp(b, "clear") == 0 ? ROUTE_CLEAR
						 : ROUTE_NONE;
	if (strcmp(b, "batch") == 0)
		return strcmp(a, "search") == 0  ? ROUTE_SEARCH_BATCH
		       : strcmp(a, "query") == 0 ? ROUTE_QUERY_BATCH
						 : ROUTE_NONE;
	return ROUTE_NONE;
}

static enum rest_route route_collection(char **seg, int n, enum evhttp_cmd_type cmd)
{
	if (n == 2)
		return cmd == EVHTTP_REQ_PUT      ? ROUTE_CREATE
		       : cmd == EVHTTP_REQ_GET    ? ROUTE_DESCRIBE
		       : cmd == EVHTTP_REQ_DELETE ? ROUTE_DROP
						  : ROUTE_NONE;
	if (strcmp(seg[2], "points") == 0)
		return route_points(seg, n, cmd);
	if (n == 3 && strcmp(seg[2], "exists") == 0)
		return cmd == EVHTTP_REQ_GET ? ROUTE_EXISTS : ROUTE_NONE;
	if (n == 3 && strcmp(seg[2], "aliases") == 0)
		return cmd == EVHTTP_REQ_GET ? ROUTE_ALIASES : ROUTE_NONE;
	if (n == 3 && strcmp(seg[2], "index") == 0)
		return cmd == EVHTTP_REQ_PUT ? ROUTE_INDEX : ROUTE_NONE;
	if (n == 4 && strcmp(seg[2], "index") == 0)
		return cmd == EVHTTP_REQ_DELETE ? ROUTE_INDEX_DROP : ROUTE_NONE;
	return ROUTE_NONE;
}

static enum rest_route route(char **seg, int n, enum evhttp_cmd_type cmd)
{
	if (n == 0)
		return cmd == EVHTTP_REQ_GET ? ROUTE_ROOT : ROUTE_NONE;
	if (n <= 2 && strcmp(seg[0], "cluster") == 0) {
		if (cmd != EVHTTP_REQ_GET || (n == 2 && strcmp(seg[1], "members") != 0))
			return ROUTE_NONE;
		return n == 1 ? ROUTE_CLUSTER : ROUTE_MEMBERS;
	}
	if (n == 1 && strcmp(seg[0], "aliases") == 0)
		return cmd == EVHTTP_REQ_GET ? ROUTE_ALIASES : ROUTE_NONE;
	if (strcmp(seg[0], "collections") != 0)
		return ROUTE_NONE;
	if (n == 1)
		return cmd == EVHTTP_REQ_GET ? ROUTE_LIST : ROUTE_NONE;
	return route_collection(seg, n, cmd);
}

static bool path_exists(char **seg, int n)
{
	const enum evhttp_cmd_type cmds[] = {EVHTTP_REQ_GET, EVHTTP_REQ_PUT, EVHTTP_REQ_POST,
					     EVHTTP_REQ_DELETE};

	for (int i = 0; i < 4; i++)
		if (route(seg, n, cmds[i]) != ROUTE_NONE)
			return true;
	return false;
}

/* Qdrant's paths that shoal does not serve: the feature they are, for a
 * clear refusal (doc/qdrant.md); NULL for a path that is not Qdrant's. */
static const char *refused_feature(char **seg, int n, enum evhttp_cmd_type cmd)
{
	static const char *const top[][2] = {
		{"snapshots", "full snapshots"},
		{"telemetry", "telemetry"},
		{"issues", "issues"},
		{"locks", "locks"},
		{"quotas", "quotas"},
	};
	static const char *const sub[][2] = {
		{"snapshots", "collection snapshots"},
		{"shards", "shards"},
		{"cluster", "collection cluster operations (shards)"},
		{"vectors", "named vectors"},
		{"optimizations", "optimizations"},
		{"facet", "facets"},
		{"aliases", "aliases"},
	};
	static const char *const pts[][2] = {
		{"vectors", "updating or deleting vectors alone (upsert the point)"},
		{"batch", "batch updates"},
		{"recommend", "recommendations"},
		{"discover", "discovery search"},
		{"search", "this search variant (groups, matrix)"},
		{"query", "query groups"},
	};

	if (n >= 2 && strcmp(seg[0], "cluster") == 0 &&
	    (strcmp(seg[1], "recover") == 0 || strcmp(seg[1], "peer") == 0 ||
	     strcmp(seg[1], "telemetry") == 0))
		return "Qdrant's cluster operations";
	if (n >= 1 && strcmp(seg[0], "collections") != 0) {
		for (size_t i = 0; i < sizeof top / sizeof top[0]; i++)
			if (strcmp(seg[0], top[i][0]) == 0)
				return top[i][1];
		return NULL;
	}
	if (n == 2 && cmd == EVHTTP_REQ_PATCH)
		return "changing a collection's parameters";
	if (n == 2 && strcmp(seg[1], "aliases") == 0)
		return "aliases";
	if (n >= 3 && strcmp(seg[2], "points") != 0) {
		for (size_t i = 0; i < sizeof sub / sizeof sub[0]; i++)
			if (strcmp(seg[2], sub[i][0]) == 0)
				return sub[i][1];
		return NULL;
	}
	for (size_t i = 0; n >= 4 && i < sizeof pts / sizeof pts[0]; i++)
		if (strcmp(seg[3], pts[i][0]) == 0)
			return pts[i][1];
	return NULL;
}

/* Split path into URL-decoded segments; returns their count, or -1.  A
 * segment that decodes to a NUL byte (%00) sets *nul: the C string would
 * end there and name something else. */
static int split(const char *path, char **seg, bool *nul)
{
	int n = 0;

	*nul = false;
	while (*path == '/')
		path++;
	while (*path != '\0') {
		const char *end = strchr(path, '/');
		size_t len = end ? (size_t)(end - path) : strlen(path), dlen = 0;
		char *raw;

		if (n == MAX_SEGMENTS || (raw = sh_strndup(path, len)) == NULL)
			return -1;
		seg[n] = evhttp_uridecode(raw, 0, &dlen);
		sh_free(raw);
		if (seg[n++] == NULL)
			return -1;
		*nul = *nul || strlen(seg[n - 1]) != dlen;
		path += len;
		while (*path == '/')
			path++;
	}
	return n;
}

/* A collection name in a path: [A-Za-z0-9_-]{1,64} (DESIGN.md section 5),
 * checked before anything looks it up.  0, or -1 with msg set. */
static int check_name(const char *name, char *msg, size_t size)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)name[i]) && name[i] != '_' && name[i] != '-') {
			snprintf(msg, size,
				 "collection name: byte 0x%02x at position %zu; a name is 1 to 64 "
				 "of A-Z, a-z, 0-9, '_' and '-'",
				 (unsigned char)name[i], i);
			return -1;
		}
	if (len == 0 || len > 64) {
		snprintf(msg, size,
			 "collection name: %zu bytes; a name is 1 to 64 of A-Z, a-z, "
			 "0-9, '_' and '-'",
			 len);
		return -1;
	}
	return 0;
}

static void send_not_allowed(struct rest *r, struct evhttp_request *req)
{
	send_json(r, req, 405,
		  rest_error_body(SHOAL__STATUS_CODE__INVALID_ARGUMENT,
				  "method not allowed on this path (see doc/qdrant.md)", 0));
}

/* Does req's API key allow what needs `need`?  If not, it is answered. */
static bool allowed(struct rest *r, struct evhttp_request *req, enum auth_role need,
		    const char *what)
{
	char msg[256];
	int st = rest_authorize(r->o.api, req, need, what, msg, sizeof msg);

	if (st == SHOAL__STATUS_CODE__UNAUTHENTICATED)
		evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
				  "Bearer");
	if (st != 0)
		send_error(r, req, st, msg);
	return st == 0;
}

/* The paths that are not operations: health, metrics, the status page.
 * GET or HEAD; false when path is not one of them. */
static bool dispatch_plain(struct rest *r, struct evhttp_request *req, char **seg, int n)
{
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	static const char *const names[] = {"healthz", "livez", "readyz", "metrics", "ui"};
	int k = -1;

	for (int i = 0; n == 1 && i < 5; i++)
		if (strcmp(seg[0], names[i]) == 0)
			k = i;
	if (k < 0)
		return false;
	if (k == 3 && !r->o.metrics_open && !allowed(r, req, AUTH_READ, "GET /metrics"))
		;
	else if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD)
		send_not_allowed(r, req);
	else if (k <= 1)
		send_live(r, req);
	else if (k == 2)
		send_ready(r, req);
	else if (k == 3)
		send_metrics(r, req);
	else
		send_ui(r, req);
	return true;
}

static void dispatch(struct rest *r, struct evhttp_request *req, const char *path,
		     struct evkeyvalq *q)
{
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	char *seg[MAX_SEGMENTS] = {0}, msg[200];
	bool nul;
	int n = split(path, seg, &nul);
	struct rest_call in = {0};
	const char *feature = NULL;

	if (n >= 0 && !nul && dispatch_plain(r, req, seg, n))
		;
	else if (n == 1 && !nul && strcmp(seg[0], "snapshot") == 0) {
		if (allowed(r, req, AUTH_ADMIN, "GET /snapshot"))
			cmd == EVHTTP_REQ_GET ? rest_snapshot(r, req) : send_not_allowed(r, req);
	} else if (n >= 0 && !nul && (in.route = route(seg, n, cmd)) != ROUTE_NONE &&
		   !allowed(r, req, rest_route_role(in.route), "this route"))
		;
	else if (n >= 0 && (in.route = route(seg, n, cmd)) == ROUTE_NONE && !nul &&
		 (feature = refused_feature(seg, n, cmd)) != NULL) {
		snprintf(msg, sizeof msg, "%s: not supported by shoal (%sdoc/qdrant.md)", feature,
			 strstr(feature, "snapshots")
				 ? "GET /snapshot streams a backup of the node; "
				 : "");
		send_error(r, req, SHOAL__STATUS_CODE__INVALID_ARGUMENT, msg);
	} else if (n >= 0 && in.route == ROUTE_NONE && path_exists(seg, n))
		send_not_allowed(r, req);
	else if (n < 0 || in.route == ROUTE_NONE)
		send_error(r, req, SHOAL__STATUS_CODE__NOT_FOUND,
			   "no such path (see doc/qdrant.md and doc/protocol.md, \"REST\")");
	else if (nul)
		send_error(r, req, SHOAL__STATUS_CODE__INVALID_ARGUMENT,
			   "a path segment decodes to a NUL byte (%00)");
	else if (n >= 2 && strcmp(seg[0], "collections") == 0 &&
		 check_name(seg[1], msg, sizeof msg) != 0)
		send_error(r, req, SHOAL__STATUS_CODE__INVALID_ARGUMENT, msg);
	else {
		if (n >= 2 && strcmp(seg[0], "collections") == 0)
			snprintf(in.name, sizeof in.name, "%s", seg[1]);
		if (in.route == ROUTE_GET_ONE && (in.id = sh_strdup(seg[3])) == NULL)
			in.route = ROUTE_NONE; /* out of memory: answered by start() */
		if (in.route == ROUTE_CLUSTER || in.route == ROUTE_MEMBERS)
			evhttp_add_header(evhttp_request_get_output_headers(req),
					  "Access-Control-Allow-Origin", "*");
		start(r, req, &in, q);
	}
	for (int i = 0; i < MAX_SEGMENTS; i++)
		sh_free(seg[i]); /* evhttp_uridecode allocates through sh_malloc (hooked) */
}

static void on_request(struct evhttp_request *req, void *arg)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
	struct evkeyvalq q;

	TAILQ_INIT(&q);
	if (path == NULL || (query != NULL && evhttp_parse_query_str(query, &q) != 0)) {
		send_error(arg, req, SHOAL__STATUS_CODE__INVALID_ARGUMENT, "malformed URI");
		return;
	}
	dispatch(arg, req, path, &q);
	evhttp_clear_headers(&q);
}

/* HTTPS: each connection in TLS.  evhttp's own error pages (a request it
 * cannot parse, headers or a body over the limits, an unknown method) keep
 * their HTML form then: the TLS bufferevent encrypts output as it comes,
 * before rest_guard could rewrite it (doc/security.md). */
static struct bufferevent *tls_bev(struct event_base *base, void *arg)
{
	struct bufferevent *bev = tls_server_bev(arg, base, -1), *pair[2];

	if (bev != NULL)
		return bev;
	/* Never NULL: evhttp would make a plaintext connection instead.  One
	 * end of a pair whose other end is gone: the request fails at once
	 * (out of memory only; NULL again if even this fails). */
	if (bufferevent_pair_new(base, BEV_OPT_CLOSE_ON_FREE, pair) != 0)
		return NULL;
	bufferevent_free(pair[1]);
	return pair[0];
}

int rest_new(const struct rest_opts *o, struct rest **out, struct sh_err *err)
{
	struct rest *r = sh_calloc(1, sizeof *r);
	struct timeval tv = {o->request_timeout_ms / 1000, (o->request_timeout_ms % 1000) * 1000};

	if (r == NULL || (r->http = evhttp_new(o->base)) == NULL) {
		sh_free(r);
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	}
	r->o = *o;
	r->guard.max_body = o->max_body_bytes;
	if (o->tls != NULL)
		evhttp_set_bevcb(r->http, tls_bev, o->tls);
	else
		evhttp_set_bevcb(r->http, rest_guard_bev, &r->guard);
	evhttp_set_max_body_size(r->http, (ev_ssize_t)o->max_body_bytes);
	evhttp_set_max_headers_size(r->http, 64 * 1024);
	evhttp_set_timeout_tv(r->http, &tv);
	evhttp_set_allowed_methods(r->http, EVHTTP_REQ_GET | EVHTTP_REQ_PUT | EVHTTP_REQ_POST |
						    EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH |
						    EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS);
	evhttp_set_gencb(r->http, on_request, r);
	if (evhttp_bind_socket_with_handle(r->http, o->address, (ev_uint16_t)o->port) == NULL) {
		rest_free(r);
		return sh_err_set(err, SH_EIO, "REST listener: cannot listen on %s:%d: %s",
				  o->address, o->port, strerror(errno));
	}
	LOG_INFO("server", "REST API listening on %s:%d%s", o->address, o->port,
		 o->tls != NULL ? " (HTTPS)" : "");
	*out = r;
	return 0;
}

void rest_free(struct rest *r)
{
	if (r == NULL)
		return;
	if (r->http != NULL)
		evhttp_free(r->http);
	sh_free(r);
}
