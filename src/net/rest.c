/*
 * rest: see rest.h.  Routing splits the path into at most four
 * URL-decoded segments; every error reply is JSON with the HTTP code of
 * its status.
 */
#include "build.h"

#include "net/rest.h"

#include "net/rest_impl.h"
#include "util/alloc.h"
#include "util/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <sys/queue.h>

#define MAX_SEGMENTS 5

struct rest {
	struct rest_opts o;
	struct evhttp *http;
};

static int http_code(int status)
{
	static const int codes[] = {200, 400, 404, 409, 412, 503, 504, 429, 401, 500};

	return status >= 0 && status < 10 ? codes[status] : 500;
}

static void send_json(struct evhttp_request *req, int code, json_t *j)
{
	struct evbuffer *out = evbuffer_new();
	char *text = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;

	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "application/json");
	if (out != NULL && text != NULL) {
		evbuffer_add(out, text, strlen(text));
		evbuffer_add(out, "\n", 1);
	}
	evhttp_send_reply(req, code, code == 200 ? "OK" : "Error", out);
	sh_free(text);
	json_decref(j);
	if (out != NULL)
		evbuffer_free(out);
}

static void send_error(struct evhttp_request *req, int status, const char *msg)
{
	send_json(req, http_code(status),
		  json_pack("{s:s,s:s}", "status", api_status_name(status), "message", msg));
}

/* ------------------------------------------------------------ ops */

/* An op's error, with the leader when the node knows it (UNAVAILABLE). */
static void send_op_error(struct evhttp_request *req, const struct op *op)
{
	int status = op->status ? op->status : SHOAL__STATUS_CODE__INTERNAL;
	json_t *j =
		json_pack("{s:s,s:s}", "status", api_status_name(status), "message", op->err.msg);
	char id[17];

	if (j != NULL && op->leader != 0) {
		snprintf(id, sizeof id, "%016" PRIx64, op->leader);
		json_object_set_new(j, "leader_id", json_string(id));
		json_object_set_new(j, "leader_address", json_string(op->leader_address));
	}
	send_json(req, http_code(status), j);
}

static void on_op_done(struct op *op)
{
	struct evhttp_request *req = op->owner;
	json_t *result;
	bool not_found;

	if (op->status != SHOAL__STATUS_CODE__OK || op->resp == NULL) {
		send_op_error(req, op);
	} else if ((result = rest_result(op, (enum rest_route)op->id, &not_found)) == NULL) {
		char msg[128];

		snprintf(msg, sizeof msg, "point not found in collection '%s'",
			 ((Shoal__GetRequest *)(void *)op->req)->collection);
		send_error(req,
			   not_found ? SHOAL__STATUS_CODE__NOT_FOUND
				     : SHOAL__STATUS_CODE__RESOURCE_EXHAUSTED,
			   not_found ? msg : "out of memory");
	} else {
		send_json(req, 200, json_pack("{s:s,s:o}", "status", "OK", "result", result));
	}
	api_op_free(op);
}

static uint32_t timeout_of(const char *s)
{
	return s != NULL ? (uint32_t)strtoul(s, NULL, 10) : 0;
}

static void start(struct rest *r, struct evhttp_request *req, struct rest_in *in,
		  const struct evkeyvalq *q)
{
	struct evbuffer *body = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(body);
	json_error_t je;
	json_t *j = NULL;
	struct sh_err err;
	struct op *op = api_op_new(r->o.api, rest_method(in->route), METRICS_REST,
				   timeout_of(evhttp_find_header(q, "timeout_ms")));

	if (op == NULL)
		return send_error(req, SHOAL__STATUS_CODE__RESOURCE_EXHAUSTED, "out of memory");
	op->done = on_op_done;
	op->owner = req;
	op->id = in->route;
	in->q_consistency = evhttp_find_header(q, "consistency");
	in->q_token = evhttp_find_header(q, "token");
	in->q_ack = evhttp_find_header(q, "ack");
	if (len > 0) {
		j = json_loadb((const char *)evbuffer_pullup(body, -1), len, JSON_REJECT_DUPLICATES,
			       &je);
		if (j == NULL)
			return api_fail(op, SHOAL__STATUS_CODE__INVALID_ARGUMENT,
					"body is not valid JSON: %s (line %d, column %d)", je.text,
					je.line, je.column);
		if (!json_is_object(j)) {
			json_decref(j);
			return api_fail(op, SHOAL__STATUS_CODE__INVALID_ARGUMENT,
					"body must be a JSON object");
		}
	}
	in->body = j ? j : json_object();
	if (rest_build(op, in, &err) != 0)
		api_fail(op, api_status_of(err.code), "%s", err.msg);
	else
		api_start(op);
	json_decref((json_t *)(uintptr_t)in->body);
}

/* ------------------------------------------------------------ metrics */

static void metrics_extra(struct rest *r, struct evbuffer *out)
{
	struct db *db = api_db(r->o.api);
	struct sh_alloc_stats st;
	struct coll **v = NULL;
	size_t n = 0;

	evbuffer_add_printf(out, "# TYPE shoal_collection_points gauge\n"
				 "# TYPE shoal_collection_memory_bytes gauge\n");
	if (store_list(db_store(db), &v, &n) == 0)
		for (size_t i = 0; i < n; i++) {
			evbuffer_add_printf(
				out,
				"shoal_collection_points{collection=\"%s\"} %zu\n"
				"shoal_collection_memory_bytes{collection=\"%s\"} %zu\n",
				coll_name(v[i]), coll_count(v[i]), coll_name(v[i]),
				coll_memory(v[i]));
			coll_unref(v[i]);
		}
	sh_free(v);
	sh_alloc_stats(&st);
	evbuffer_add_printf(out,
			    "# TYPE shoal_memory_allocated_bytes gauge\n"
			    "shoal_memory_allocated_bytes %" PRIu64 "\n"
			    "# TYPE shoal_memory_resident_bytes gauge\n"
			    "shoal_memory_resident_bytes %" PRIu64 "\n"
			    "# TYPE shoal_log_last_index gauge\n"
			    "shoal_log_last_index %" PRIu64 "\n"
			    "# TYPE shoal_applied_index gauge\n"
			    "shoal_applied_index %" PRIu64 "\n"
			    "# TYPE shoal_snapshots_total counter\n"
			    "shoal_snapshots_total %" PRIu64 "\n",
			    st.allocated, st.resident, db_last_index(db),
			    store_applied_index(db_store(db)), db_snapshots(db));
}

/* Replication (doc/replication.md, "Status and verification"). */
static void metrics_raft(struct rest *r, struct evbuffer *out)
{
	struct node_status st;

	node_status(api_node(r->o.api), &st);
	evbuffer_add_printf(out, "# TYPE shoal_raft_role gauge\n");
	for (const char *const *role = node_role_names; *role != NULL; role++)
		evbuffer_add_printf(out, "shoal_raft_role{role=\"%s\"} %d\n", *role,
				    strcmp(st.role, *role) == 0);
	evbuffer_add_printf(
		out,
		"# TYPE shoal_raft_term gauge\nshoal_raft_term %" PRIu64 "\n"
		"# TYPE shoal_raft_commit_index gauge\nshoal_raft_commit_index %" PRIu64 "\n"
		"# TYPE shoal_raft_durable_index gauge\nshoal_raft_durable_index %" PRIu64 "\n"
		"# TYPE shoal_raft_voters gauge\nshoal_raft_voters %u\n"
		"# TYPE shoal_raft_learners gauge\nshoal_raft_learners %u\n"
		"# TYPE shoal_raft_pending_writes gauge\nshoal_raft_pending_writes %" PRIu64 "\n"
		"# TYPE shoal_raft_elections_total counter\nshoal_raft_elections_total %" PRIu64
		"\n"
		"# TYPE shoal_raft_leader_changes_total counter\n"
		"shoal_raft_leader_changes_total %" PRIu64 "\n",
		st.term, st.commit_index, st.durable_index, st.n_voters, st.n_learners,
		st.pending_writes, st.elections, st.leader_changes);
	if (st.n_peers > 0)
		evbuffer_add_printf(out, "# TYPE shoal_raft_follower_lag_entries gauge\n"
					 "# TYPE shoal_raft_follower_lag_ms gauge\n");
	for (size_t i = 0; i < st.n_peers; i++)
		evbuffer_add_printf(
			out,
			"shoal_raft_follower_lag_entries{node=\"%016" PRIx64 "\"} %" PRIu64
			"\nshoal_raft_follower_lag_ms{node=\"%016" PRIx64 "\"} %" PRIu64 "\n",
			st.peers[i].id, st.peers[i].lag, st.peers[i].id, st.peers[i].lag_ms);
}

static void send_metrics(struct rest *r, struct evhttp_request *req)
{
	struct evbuffer *out = evbuffer_new();

	if (out == NULL)
		return send_error(req, SHOAL__STATUS_CODE__RESOURCE_EXHAUSTED, "out of memory");
	metrics_render(api_metrics(r->o.api), api_method_name, api_status_name, out);
	metrics_extra(r, out);
	metrics_raft(r, out);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "text/plain; version=0.0.4");
	evhttp_send_reply(req, 200, "OK", out);
	evbuffer_free(out);
}

/* ------------------------------------------------------------ routing */

static enum rest_route route_points(char **seg, int n, enum evhttp_cmd_type cmd)
{
	if (n == 3)
		return cmd == EVHTTP_REQ_PUT    ? ROUTE_UPSERT
		       : cmd == EVHTTP_REQ_POST ? ROUTE_GET
						: ROUTE_NONE;
	if (cmd == EVHTTP_REQ_GET)
		return ROUTE_GET_ONE;
	if (cmd != EVHTTP_REQ_POST)
		return ROUTE_NONE;
	if (strcmp(seg[3], "delete") == 0)
		return ROUTE_DELETE;
	if (strcmp(seg[3], "search") == 0)
		return ROUTE_SEARCH;
	if (strcmp(seg[3], "scroll") == 0)
		return ROUTE_SCROLL;
	if (strcmp(seg[3], "count") == 0)
		return ROUTE_COUNT;
	return ROUTE_NONE;
}

static enum rest_route route(char **seg, int n, enum evhttp_cmd_type cmd)
{
	if (n >= 1 && n <= 2 && strcmp(seg[0], "cluster") == 0) {
		if (cmd != EVHTTP_REQ_GET || (n == 2 && strcmp(seg[1], "members") != 0))
			return ROUTE_NONE;
		return n == 1 ? ROUTE_CLUSTER : ROUTE_MEMBERS;
	}
	if (n < 1 || strcmp(seg[0], "collections") != 0)
		return ROUTE_NONE;
	if (n == 1)
		return cmd == EVHTTP_REQ_GET ? ROUTE_LIST : ROUTE_NONE;
	if (n == 2)
		return cmd == EVHTTP_REQ_PUT      ? ROUTE_CREATE
		       : cmd == EVHTTP_REQ_GET    ? ROUTE_DESCRIBE
		       : cmd == EVHTTP_REQ_DELETE ? ROUTE_DROP
						  : ROUTE_NONE;
	if (strcmp(seg[2], "points") != 0 || n > 4)
		return ROUTE_NONE;
	return route_points(seg, n, cmd);
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

/* Split path into URL-decoded segments; returns their count, or -1. */
static int split(const char *path, char **seg)
{
	int n = 0;

	while (*path == '/')
		path++;
	while (*path != '\0') {
		const char *end = strchr(path, '/');
		size_t len = end ? (size_t)(end - path) : strlen(path);
		char *raw;

		if (n == MAX_SEGMENTS || (raw = sh_strndup(path, len)) == NULL)
			return -1;
		seg[n] = evhttp_uridecode(raw, 0, NULL);
		sh_free(raw);
		if (seg[n++] == NULL)
			return -1;
		path += len;
		while (*path == '/')
			path++;
	}
	return n;
}

static void dispatch(struct rest *r, struct evhttp_request *req, const char *path,
		     struct evkeyvalq *q)
{
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	char *seg[MAX_SEGMENTS] = {0};
	int n = split(path, seg);
	struct rest_in in = {0};

	if (n == 1 && strcmp(seg[0], "healthz") == 0)
		send_json(req, api_stopping(r->o.api) ? 503 : 200,
			  json_pack("{s:s}", "status",
				    api_stopping(r->o.api) ? "UNAVAILABLE" : "OK"));
	else if (n == 1 && strcmp(seg[0], "metrics") == 0 && cmd == EVHTTP_REQ_GET)
		send_metrics(r, req);
	else if (n >= 0 && (in.route = route(seg, n, cmd)) == ROUTE_NONE && path_exists(seg, n))
		send_json(
			req, 405,
			json_pack(
				"{s:s,s:s}", "status", "INVALID_ARGUMENT", "message",
				"method not allowed on this path (see doc/protocol.md, \"REST\")"));
	else if (n < 0 || in.route == ROUTE_NONE)
		send_error(req, SHOAL__STATUS_CODE__NOT_FOUND,
			   "no such path (see doc/protocol.md, \"REST\")");
	else {
		in.name = n > 1 ? seg[1] : "";
		in.id = n > 3 ? seg[3] : "";
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
		send_error(req, SHOAL__STATUS_CODE__INVALID_ARGUMENT, "malformed URI");
		return;
	}
	dispatch(arg, req, path, &q);
	evhttp_clear_headers(&q);
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
	LOG_INFO("server", "REST API listening on %s:%d", o->address, o->port);
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
