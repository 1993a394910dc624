/* End to end through HTTP against a real shoald: every REST path of the
 * Qdrant dialect (doc/qdrant.md) — collections, points by integer and UUID
 * ids, payload changes by ids and by filter, search, batch search, query,
 * scroll, count, refused features — errors in Qdrant's shape with the
 * right HTTP code (evhttp's own 400 and 413 included),
 * scroll paging, filters, /metrics (every family with HELP and TYPE, base
 * units), /healthz, /livez, /readyz, /cluster, HEAD without a body, paths
 * with %00 and bad names, malformed numbers in the query. */
#include "build.h"

#include "srv.h"
#include "tap.h"

#include <jansson.h>
#include <stdbool.h>

static int port;

/* Request; returns the parsed body (or NULL) and sets *code. */
static json_t *req(const char *method, const char *path, const char *body, int *code)
{
	char *resp = NULL;
	json_t *j = NULL;

	if (http(port, method, path, body, code, &resp) == 0)
		j = json_loads(resp, 0, NULL);
	if (j == NULL)
		diag("%s %s: %d %s", method, path, *code, resp ? resp : "(no reply)");
	free(resp);
	return j;
}

static const char *str_at(json_t *j, const char *k)
{
	return json_string_value(json_object_get(j, k));
}

static json_t *result(json_t *j)
{
	return json_object_get(j, "result");
}

/* "ok" for a success, the shoal status name of an error. */
static const char *status_of(json_t *j)
{
	json_t *s = json_object_get(j, "status");

	return json_is_string(s) ? json_string_value(s) : str_at(s, "code");
}

static const char *error_of(json_t *j)
{
	return str_at(json_object_get(j, "status"), "error");
}

static void expect(const char *method, const char *path, const char *body, int want_code,
		   const char *want_status, const char *want_msg)
{
	int code;
	json_t *j = req(method, path, body, &code);

	is_int(code, want_code, "%s %s: HTTP %d", method, path, want_code);
	is_str(status_of(j), want_status, "  status %s", want_status);
	if (want_msg != NULL)
		like(error_of(j), want_msg, "  message");
	if (strcmp(want_status, "ok") == 0)
		ok(json_is_number(json_object_get(j, "time")), "  time in seconds");
	json_decref(j);
}

/* Send raw bytes, read until the server closes (or 5 s); the whole reply
 * text in out (NUL-terminated).  Returns its length, or -1. */
static long raw_http(const char *request, char *out, size_t size)
{
	int fd = raw_connect(port);
	size_t len = 0;
	ssize_t n;

	out[0] = '\0';
	if (fd < 0 || raw_write(fd, request, strlen(request)) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while (len + 1 < size && (n = recv(fd, out + len, size - len - 1, 0)) > 0)
		len += (size_t)n;
	out[len] = '\0';
	close(fd);
	return (long)len;
}

/* The body of a raw reply (after the header block), or "". */
static const char *body_of(const char *reply)
{
	const char *b = strstr(reply, "\r\n\r\n");

	return b ? b + 4 : "";
}

static void test_collections(void)
{
	json_t *j;
	int code;

	j = req("GET", "/", NULL, &code);
	is_int(code, 200, "GET /");
	like(str_at(j, "version"), "1.", "  a Qdrant API version, bare (Qdrant's VersionInfo)");
	json_decref(j);
	j = req("PUT", "/collections/docs",
		"{\"vectors\": {\"size\": 3, \"distance\": \"Cosine\"}, \"hnsw_config\": {\"m\": "
		"8}}",
		&code);
	is_int(code, 200, "PUT /collections/docs");
	ok(json_is_true(result(j)), "  result true");
	json_decref(j);
	expect("PUT", "/collections/docs", "{\"vectors\": {\"size\": 3, \"distance\": \"Dot\"}}",
	       409, "ALREADY_EXISTS", "already exists");
	expect("PUT", "/collections/x",
	       "{\"vectors\": {\"size\": 3, \"distance\": \"Dot\"}, \"vector\": 1}", 400,
	       "INVALID_ARGUMENT", "unknown field 'vector'");
	expect("PUT", "/collections/x", "{\"vectors\": {\"size\": 0, \"distance\": \"Dot\"}}", 400,
	       "INVALID_ARGUMENT", "vectors.size");
	expect("PUT", "/collections/x", "{\"vectors\": {\"size\": 3, \"distance\": \"Manhattan\"}}",
	       400, "INVALID_ARGUMENT", "Manhattan is not supported");
	expect("PUT", "/collections/x",
	       "{\"vectors\": {\"a\": {\"size\": 3, \"distance\": \"Dot\"}}}", 400,
	       "INVALID_ARGUMENT", "named vectors are not supported");
	expect("PUT", "/collections/x",
	       "{\"vectors\": {\"size\": 3, \"distance\": \"Dot\"}, \"sparse_vectors\": {}}", 400,
	       "INVALID_ARGUMENT", "sparse vectors is not supported");
	expect("PUT", "/collections/x",
	       "{\"vectors\": {\"size\": 3, \"distance\": \"Dot\"}, "
	       "\"shard_number\": 3}",
	       400, "INVALID_ARGUMENT", "shard_number: only 1");
	j = req("GET", "/collections", NULL, &code);
	is_int(code, 200, "GET /collections");
	is_str(str_at(json_array_get(json_object_get(result(j), "collections"), 0), "name"), "docs",
	       "  one collection, by name");
	json_decref(j);
	j = req("GET", "/collections/docs", NULL, &code);
	is_str(str_at(result(j), "status"), "green", "GET /collections/docs: status green");
	{
		json_t *cfg = json_object_get(result(j), "config");
		json_t *v = json_object_get(json_object_get(cfg, "params"), "vectors");

		is_str(str_at(v, "distance"), "Cosine", "  distance Cosine");
		is_int(json_integer_value(json_object_get(v, "size")), 3, "  size 3");
		is_int(json_integer_value(
			       json_object_get(json_object_get(cfg, "hnsw_config"), "m")),
		       8, "  hnsw m 8");
	}
	json_decref(j);
	j = req("GET", "/collections/docs/exists", NULL, &code);
	ok(json_is_true(json_object_get(result(j), "exists")), "exists: true");
	json_decref(j);
	j = req("GET", "/collections/nope/exists", NULL, &code);
	ok(json_is_false(json_object_get(result(j), "exists")), "exists: false for another");
	json_decref(j);
	expect("GET", "/collections/nope", NULL, 404, "NOT_FOUND", "collection 'nope' not found");
	expect("GET", "/nowhere", NULL, 404, "NOT_FOUND", "no such path");
	expect("PATCH", "/collections", NULL, 405, "INVALID_ARGUMENT", "method not allowed");
	expect("PATCH", "/collections/docs", "{}", 400, "INVALID_ARGUMENT",
	       "changing a collection's parameters: not supported");
	expect("POST", "/collections/docs/points/recommend", "{}", 400, "INVALID_ARGUMENT",
	       "recommendations: not supported by shoal");
	expect("GET", "/collections/docs/snapshots", NULL, 400, "INVALID_ARGUMENT",
	       "collection snapshots: not supported");
	expect("PUT", "/collections/docs/index",
	       "{\"field_name\": \"kind\", \"field_schema\": "
	       "\"keyword\"}",
	       200, "ok", NULL);
	expect("PUT", "/collections/docs/index",
	       "{\"field_name\": \"t\", \"field_schema\": "
	       "\"text\"}",
	       400, "INVALID_ARGUMENT", "text indexes are not supported");
	expect("GET", "/aliases", NULL, 200, "ok", NULL);
}

static const char uuid[] = "550e8400-e29b-41d4-a716-446655440000";

static void test_points(void)
{
	char body[8192];
	size_t n = 0;
	json_t *j;
	int code;

	n += (size_t)snprintf(body + n, sizeof body - n, "{\"points\": [");
	for (int i = 1; i <= 40; i++)
		n += (size_t)snprintf(
			body + n, sizeof body - n,
			"%s{\"id\": %d, \"vector\": [%d, 1, %d], "
			"\"payload\": {\"i\": %d, \"kind\": \"%s\", \"m\": {\"y\": %d}}}",
			i > 1 ? "," : "", i, i, i % 5, i, i % 4 ? "a" : "b", i % 3);
	snprintf(body + n, sizeof body - n, "]}");
	j = req("PUT", "/collections/docs/points?wait=true", body, &code);
	is_int(code, 200, "PUT points?wait=true");
	is_str(str_at(result(j), "status"), "completed", "  completed");
	ok(json_integer_value(json_object_get(result(j), "operation_id")) > 0, "  an operation id");
	ok(json_integer_value(json_object_get(json_object_get(result(j), "token"), "index")) > 0,
	   "  and shoal's token");
	json_decref(j);
	snprintf(body, sizeof body,
		 "{\"batch\": {\"ids\": [\"%s\", 41], \"vectors\": [[1, 2, 3], [4, 5, 6]], "
		 "\"payloads\": [{\"i\": 100}, null]}}",
		 uuid);
	j = req("PUT", "/collections/docs/points", body, &code);
	is_int(code, 200, "PUT points as a batch, one UUID (wait=false)");
	is_str(str_at(result(j), "status"), "acknowledged", "  acknowledged");
	json_decref(j);
	expect("PUT", "/collections/docs/points?wait=true",
	       "{\"points\": [{\"id\": -4, \"vector\": [1, 2, 3]}]}", 400, "INVALID_ARGUMENT",
	       "points[0].id: a point id is an unsigned integer or a UUID");
	expect("PUT", "/collections/docs/points?wait=true",
	       "{\"points\": [{\"id\": \"not-a-uuid\", \"vector\": [1, 2, 3]}]}", 400,
	       "INVALID_ARGUMENT", "'not-a-uuid'");
	expect("PUT", "/collections/docs/points?wait=true",
	       "{\"points\": [{\"id\": 5, \"vector\": {\"text\": [1, 2, 3]}}]}", 400,
	       "INVALID_ARGUMENT", "named or sparse vectors are not supported");
	expect("PUT", "/collections/docs/points?wait=true",
	       "{\"points\": [{\"id\": 5, \"vector\": [1, 2, 3], \"payload\": {\"__shoal_uuid\": "
	       "1}}]}",
	       400, "INVALID_ARGUMENT", "reserved");
	expect("PUT", "/collections/docs/points?wait=maybe",
	       "{\"points\": [{\"id\": 5, \"vector\": [1, 2, 3]}]}", 400, "INVALID_ARGUMENT",
	       "wait: must be true or false");
	j = req("GET", "/collections/docs/points/7", NULL, &code);
	is_int(code, 200, "GET a point");
	is_int(json_integer_value(json_object_get(json_object_get(result(j), "payload"), "i")), 7,
	       "  its payload");
	is_int(json_array_size(json_object_get(result(j), "vector")), 3, "  and its vector");
	json_decref(j);
	snprintf(body, sizeof body, "/collections/docs/points/%s", uuid);
	j = req("GET", body, NULL, &code);
	is_int(code, 200, "GET a point by UUID");
	is_str(str_at(result(j), "id"), uuid, "  its id as given");
	ok(json_object_get(json_object_get(result(j), "payload"), "__shoal_uuid") == NULL,
	   "  the reserved key is not shown");
	json_decref(j);
	expect("GET", "/collections/docs/points/999", NULL, 404, "NOT_FOUND",
	       "point 999 not found");
	expect("GET", "/collections/docs/points/00000000-0000-0000-0000-000000000001", NULL, 404,
	       "NOT_FOUND", "not found");
	expect("GET", "/collections/docs/points/abc", NULL, 400, "INVALID_ARGUMENT",
	       "an unsigned integer or a UUID");
	snprintf(body, sizeof body, "{\"ids\": [3, \"%s\", 500], \"with_payload\": [\"i\"]}", uuid);
	j = req("POST", "/collections/docs/points", body, &code);
	is_int(json_array_size(result(j)), 2, "POST points: get two (500 is absent)");
	is_str(str_at(json_array_get(result(j), 1), "id"), uuid, "  a UUID as given");
	is_int(json_object_size(json_object_get(json_array_get(result(j), 0), "payload")), 1,
	       "  payload cut to the keys asked");
	json_decref(j);
	j = req("POST", "/collections/docs/points/delete?wait=true", "{\"points\": [40, 400]}",
		&code);
	is_str(str_at(result(j), "status"), "completed", "delete by ids: completed");
	json_decref(j);
	j = req("POST", "/collections/docs/points/count", "{}", &code);
	is_int(json_integer_value(json_object_get(result(j), "count")), 41, "count 41");
	json_decref(j);
	j = req("POST", "/collections/docs/points/count",
		"{\"filter\": {\"must\": [{\"key\": \"kind\", \"match\": {\"value\": \"b\"}}]}}",
		&code);
	is_int(json_integer_value(json_object_get(result(j), "count")), 9,
	       "count with a filter: 9");
	json_decref(j);
	j = req("POST", "/collections/docs/points/count",
		"{\"filter\": {\"must\": [{\"key\": \"m.y\", \"match\": {\"except\": [0, 1]}}, "
		"{\"has_id\": [2, 5, 8, 11, 12]}], \"must_not\": {\"is_empty\": {\"key\": "
		"\"i\"}}}}",
		&code);
	is_int(json_integer_value(json_object_get(result(j), "count")), 4,
	       "count with except, has_id, is_empty and a nested path: 4");
	json_decref(j);
}

static void test_payloads(void)
{
	json_t *j;
	int code;

	expect("POST", "/collections/docs/points/payload?wait=true",
	       "{\"payload\": {\"tag\": \"x\", \"i\": -1}, \"points\": [1, 2]}", 200, "ok", NULL);
	j = req("GET", "/collections/docs/points/1", NULL, &code);
	is_str(str_at(json_object_get(result(j), "payload"), "tag"), "x", "set payload: merged");
	is_str(str_at(json_object_get(result(j), "payload"), "kind"), "a", "  the rest kept");
	json_decref(j);
	expect("POST", "/collections/docs/points/payload?wait=true",
	       "{\"payload\": {\"z\": 1}, \"key\": \"m\", \"filter\": {\"must\": {\"key\": "
	       "\"tag\", "
	       "\"match\": {\"value\": \"x\"}}}}",
	       200, "ok", NULL);
	j = req("GET", "/collections/docs/points/2", NULL, &code);
	is_int(json_integer_value(json_object_get(
		       json_object_get(json_object_get(result(j), "payload"), "m"), "z")),
	       1, "set payload by filter, at key m");
	json_decref(j);
	expect("PUT", "/collections/docs/points/payload?wait=true",
	       "{\"payload\": {\"only\": true}, \"points\": [2]}", 200, "ok", NULL);
	j = req("GET", "/collections/docs/points/2", NULL, &code);
	is_int(json_object_size(json_object_get(result(j), "payload")), 1,
	       "overwrite payload: only the new keys");
	json_decref(j);
	expect("POST", "/collections/docs/points/payload/delete?wait=true",
	       "{\"keys\": [\"tag\", \"m.y\"], \"points\": [1]}", 200, "ok", NULL);
	j = req("GET", "/collections/docs/points/1", NULL, &code);
	ok(json_object_get(json_object_get(result(j), "payload"), "tag") == NULL &&
		   json_object_get(json_object_get(json_object_get(result(j), "payload"), "m"),
				   "y") == NULL,
	   "delete payload keys, a nested one too");
	json_decref(j);
	{
		char body[256], path[128];

		snprintf(body, sizeof body, "{\"points\": [\"%s\"]}", uuid);
		expect("POST", "/collections/docs/points/payload/clear?wait=true", body, 200, "ok",
		       NULL);
		snprintf(path, sizeof path, "/collections/docs/points/%s", uuid);
		j = req("GET", path, NULL, &code);
		is_int(code, 200, "clear payload of a UUID point: still found by its UUID");
		is_int(json_object_size(json_object_get(result(j), "payload")), 0,
		       "  payload empty");
		json_decref(j);
	}
	expect("POST", "/collections/docs/points/payload/delete",
	       "{\"keys\": [\"__shoal_uuid\"], \"points\": [1]}", 400, "INVALID_ARGUMENT",
	       "reserved");
	expect("POST", "/collections/docs/points/payload", "{\"payload\": {\"a\": 1}}", 400,
	       "INVALID_ARGUMENT", "exactly one of points and filter");
}

static void test_search_scroll(void)
{
	json_t *j, *pts, *off = NULL;
	int code, total = 0, pages = 0;
	char body[256];

	j = req("POST", "/collections/docs/points/search",
		"{\"vector\": [7, 1, 2], \"limit\": 3, \"with_payload\": true}", &code);
	pts = result(j);
	is_int(code, 200, "search");
	ok(json_array_size(pts) == 3 &&
		   json_is_number(json_object_get(json_array_get(pts, 0), "score")),
	   "  3 points with scores");
	ok(json_number_value(json_object_get(json_array_get(pts, 0), "score")) >=
		   json_number_value(json_object_get(json_array_get(pts, 2), "score")),
	   "  best (highest cosine) first");
	json_decref(j);
	j = req("POST", "/collections/docs/points/search",
		"{\"vector\": [7, 1, 2], \"limit\": 5, \"filter\": {\"must\": [{\"key\": \"i\", "
		"\"range\": {\"gte\": 30}}]}, \"with_payload\": true}",
		&code);
	pts = result(j);
	is_int(json_array_size(pts), 5, "filtered search: 5 results");
	ok(json_integer_value(
		   json_object_get(json_object_get(json_array_get(pts, 0), "payload"), "i")) >= 30,
	   "  matching the filter");
	json_decref(j);
	j = req("POST", "/collections/docs/points/search",
		"{\"vector\": [7, 1, 2], \"limit\": 2, \"offset\": 1, \"score_threshold\": 0.99}",
		&code);
	ok(json_array_size(result(j)) <= 2, "offset and score_threshold");
	json_decref(j);
	j = req("POST", "/collections/docs/points/query",
		"{\"query\": {\"nearest\": [7, 1, 2]}, \"limit\": 2, \"params\": {\"hnsw_ef\": "
		"64}}",
		&code);
	is_int(json_array_size(json_object_get(result(j), "points")), 2, "query: 2 points");
	json_decref(j);
	j = req("POST", "/collections/docs/points/search/batch",
		"{\"searches\": [{\"vector\": [1, 1, 1], \"limit\": 1}, {\"vector\": [2, 1, 0], "
		"\"limit\": 2}]}",
		&code);
	ok(json_array_size(result(j)) == 2 && json_array_size(json_array_get(result(j), 1)) == 2,
	   "batch search: two answers");
	json_decref(j);
	j = req("POST", "/collections/docs/points/query/batch",
		"{\"searches\": [{\"query\": [1, 1, 1]}, {\"query\": [2, 1, 0], \"limit\": 1}]}",
		&code);
	ok(json_array_size(result(j)) == 2 &&
		   json_array_size(json_object_get(json_array_get(result(j), 1), "points")) == 1,
	   "batch query: two answers");
	json_decref(j);
	do {
		char *o = off ? json_dumps(off, JSON_ENCODE_ANY) : NULL;

		snprintf(body, sizeof body, "{\"offset\": %s, \"limit\": 6}", o ? o : "null");
		free(o);
		json_decref(off);
		j = req("POST", "/collections/docs/points/scroll", body, &code);
		total += (int)json_array_size(json_object_get(result(j), "points"));
		off = json_incref(json_object_get(result(j), "next_page_offset"));
		pages++;
		json_decref(j);
	} while (off != NULL && !json_is_null(off) && pages < 50);
	json_decref(off);
	is_int(total, 41, "scroll in pages of 6: all 41 points");
	is_int(pages, 7, "  in 7 pages");

	expect("POST", "/collections/docs/points/search", "{\"vector\": [1, 2], \"limit\": 3}", 400,
	       "INVALID_ARGUMENT", "query vector has 2 values, the dimension of 'docs' is 3");
	expect("POST", "/collections/docs/points/search", "{\"vector\": [1, 2, 3], \"limit\": 0}",
	       400, "INVALID_ARGUMENT", "limit + offset = 0 is outside 1..10000");
	expect("POST", "/collections/docs/points/search",
	       "{\"vector\": [1, 2, 3], \"limit\": 1000000}", 400, "INVALID_ARGUMENT",
	       "limit: must be an integer 0..10000");
	expect("POST", "/collections/docs/points/search", "{\"vector\": [1, 2, 3], \"filter\": 5}",
	       400, "INVALID_ARGUMENT", "filter: must be an object");
	expect("POST", "/collections/docs/points/search",
	       "{\"vector\": [1, 2, 3], \"filter\": {\"must\": [{\"key\": \"g\", \"geo_radius\": "
	       "{}}]}}",
	       400, "INVALID_ARGUMENT", "geo conditions are not supported");
	expect("POST", "/collections/docs/points/query", "{\"query\": {\"recommend\": {}}}", 400,
	       "INVALID_ARGUMENT", "query.recommend: this query is not supported");
	expect("POST", "/collections/docs/points/query", "{\"prefetch\": [], \"query\": [1,2,3]}",
	       400, "INVALID_ARGUMENT", "prefetch");
	expect("POST", "/collections/docs/points/search", "{\"vector\": [1, 2, 3", 400,
	       "INVALID_ARGUMENT", "body is not valid JSON");
	expect("POST", "/collections/docs/points/search", "[1]", 400, "INVALID_ARGUMENT",
	       "body must be a JSON object");
	expect("POST", "/collections/none/points/search", "{\"vector\": [1, 2, 3]}", 404,
	       "NOT_FOUND", "collection 'none' not found");
	expect("PUT", "/collections/docs/points",
	       "{\"points\": [{\"id\": 1, \"vector\": [1, 2, 3], \"payload\": \"text\"}]}", 400,
	       "INVALID_ARGUMENT", "payload must be a JSON object");
	expect("POST",
	       "/collections/docs/points/search?consistency=read_your_writes&token=1:999999",
	       "{\"vector\": [1, 2, 3]}", 412, "FAILED_PRECONDITION", "was not issued");
	expect("POST", "/collections/docs/points/search?consistency=majority",
	       "{\"vector\": [1, 2, 3]}", 200, "ok", NULL);
	expect("POST", "/collections/docs/points/search?consistency=sometimes",
	       "{\"vector\": [1, 2, 3]}", 400, "INVALID_ARGUMENT", "consistency: unknown value");
	j = req("POST", "/collections/docs/points/delete?wait=true",
		"{\"filter\": {\"must\": [{\"key\": \"kind\", \"match\": {\"value\": \"b\"}}]}}",
		&code);
	is_str(str_at(result(j), "status"), "completed", "delete by filter: completed");
	json_decref(j);
	j = req("POST", "/collections/docs/points/count", "{}", &code);
	is_int(json_integer_value(json_object_get(result(j), "count")), 32, "  9 fewer: 32");
	json_decref(j);
}

static void test_cluster_metrics(void)
{
	char *text = NULL;
	json_t *j;
	int code;

	j = req("GET", "/cluster", NULL, &code);
	is_int(code, 200, "GET /cluster");
	is_str(str_at(result(j), "role"), "leader", "role leader (a lone voter)");
	is_int(json_array_size(json_object_get(result(j), "members")), 1, "one member");
	is_int(json_array_size(json_object_get(result(j), "voters")), 1, "one voter");
	ok(strcmp(str_at(result(j), "leader_id"), str_at(result(j), "node_id")) == 0,
	   "it is its own leader");
	ok(strlen(str_at(result(j), "cluster_id")) == 16 &&
		   strcmp(str_at(result(j), "cluster_id"), "0000000000000000") != 0,
	   "with a cluster id");
	json_decref(j);
	j = req("GET", "/cluster/members", NULL, &code);
	is_int(code, 200, "GET /cluster/members");
	{
		json_t *m = json_array_get(json_object_get(result(j), "members"), 0);

		is_int(json_array_size(json_object_get(result(j), "members")), 1,
		       "without membership: this node alone");
		is_str(str_at(m, "state"), "alive", "alive");
		is_int(json_integer_value(json_object_get(m, "last_heard_ms")), 0,
		       "last heard 0 for itself");
		ok(json_is_true(json_object_get(m, "voter")), "a voter");
	}
	json_decref(j);
	expect("GET", "/cluster/nodes", NULL, 404, "NOT_FOUND", "no such path");
	expect("POST", "/cluster/recover", NULL, 400, "INVALID_ARGUMENT",
	       "Qdrant's cluster operations: not supported");
	expect("POST", "/cluster/members", NULL, 405, "INVALID_ARGUMENT", "method not allowed");
	j = req("GET", "/healthz", NULL, &code);
	is_int(code, 200, "GET /healthz");
	json_decref(j);
	http(port, "GET", "/metrics", NULL, &code, &text);
	is_int(code, 200, "GET /metrics");
	like(text, "shoal_requests_total{api=\"rest\",method=\"search\",status=\"OK\"}",
	     "request counts per method and status");
	like(text,
	     "shoal_request_duration_seconds_bucket{api=\"rest\",method=\"search\",le=\"+Inf\"}",
	     "latency histograms");
	like(text, "shoal_collection_points{collection=\"docs\"} 32", "points per collection");
	like(text, "shoal_memory_allocated_bytes", "allocator memory");
	like(text, "shoal_applied_index", "apply position");
	like(text, "shoal_raft_role{role=\"leader\"} 1", "raft role: a lone voter leads");
	like(text, "shoal_raft_commit_index ", "commit index");
	free(text);
	expect("DELETE", "/collections/docs", NULL, 200, "ok", NULL);
	expect("GET", "/collections/docs", NULL, 404, "NOT_FOUND", NULL);
}

/* Issue 12: paths, HEAD, numbers, evhttp's own errors. */
static void test_bad_requests(void)
{
	static char buf[1 << 17];
	json_t *j;
	int code;

	expect("PUT", "/collections/victim", "{\"vectors\": {\"size\": 2, \"distance\": \"Dot\"}}",
	       200, "ok", NULL);
	expect("DELETE", "/collections/victim%00.bak", NULL, 400, "INVALID_ARGUMENT", "NUL byte");
	expect("GET", "/collections/victim", NULL, 200, "ok", NULL);
	expect("GET", "/collections/victim%2e", NULL, 400, "INVALID_ARGUMENT",
	       "byte 0x2e at position 6");
	expect("GET", "/collections/victim%00", NULL, 400, "INVALID_ARGUMENT", "NUL byte");
	expect("GET",
	       "/collections/"
	       "a123456789b123456789c123456789d123456789e123456789f123456789g12345",
	       NULL, 400, "INVALID_ARGUMENT", "66 bytes");
	expect("POST", "/collections/victim/points/count?timeout_ms=-5", "{}", 400,
	       "INVALID_ARGUMENT", "timeout_ms: '-5' is not a number of milliseconds");
	expect("POST", "/collections/victim/points/count?timeout_ms=12abc", "{}", 400,
	       "INVALID_ARGUMENT", "timeout_ms: '12abc'");
	expect("POST", "/collections/victim/points/count?timeout_ms=99999999999", "{}", 400,
	       "INVALID_ARGUMENT", "timeout_ms");
	expect("POST", "/collections/victim/points/count?timeout_ms=5000", "{}", 200, "ok", NULL);
	expect("POST", "/collections/victim/points/count?consistency=read_your_writes&token=-1:5",
	       "{}", 400, "INVALID_ARGUMENT", "token: must be");
	expect("POST", "/collections/victim/points/count?consistency=read_your_writes&token=1:2x",
	       "{}", 400, "INVALID_ARGUMENT", "token: must be");

	ok(raw_http("HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", buf,
		    sizeof buf) > 0,
	   "HEAD /healthz answered");
	ok(strncmp(buf, "HTTP/1.1 200 ", 13) == 0, "  200");
	is_str(body_of(buf), "", "  with no body");
	like(buf, "Content-Length: 16\r\n", "  and the length a GET's body has");
	raw_http("HEAD /collections HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", buf,
		 sizeof buf);
	ok(strncmp(buf, "HTTP/1.1 405 ", 13) == 0, "HEAD on an operation's path: 405");
	is_str(body_of(buf), "", "  with no body");

	raw_http("PUT /collections/victim/points HTTP/1.1\r\nHost: x\r\n"
		 "Content-Length: 100000000000\r\n\r\n",
		 buf, sizeof buf);
	ok(strncmp(buf, "HTTP/1.1 413 ", 13) == 0, "a body over the limit: 413");
	like(buf, "Content-Type: application/json", "  as JSON");
	j = json_loads(body_of(buf), 0, NULL);
	is_str(status_of(j), "RESOURCE_EXHAUSTED", "  status RESOURCE_EXHAUSTED");
	like(error_of(j), "limits.max_frame_bytes", "  names the limit");
	json_decref(j);
	raw_http("this is not HTTP\r\n\r\n", buf, sizeof buf);
	ok(strncmp(buf, "HTTP/1.1 400 ", 13) == 0, "a request that is not HTTP: 400");
	j = json_loads(body_of(buf), 0, NULL);
	is_str(status_of(j), "INVALID_ARGUMENT", "  as JSON, INVALID_ARGUMENT");
	json_decref(j);
	{
		static char big[80000];

		snprintf(big, sizeof big, "GET /healthz HTTP/1.1\r\nX-Big: %0*d\r\n\r\n", 70000, 0);
		raw_http(big, buf, sizeof buf);
		ok(strncmp(buf, "HTTP/1.1 4", 10) == 0, "headers over 64 KiB: refused");
		like(buf, "Content-Type: application/json", "  as JSON");
	}
	raw_http("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
		 "GET /collections/victim HTTP/1.1\r\nHost: x\r\n\r\n"
		 "GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		 buf, sizeof buf);
	ok(strstr(buf, "\"name\":\"victim\"") != NULL && strstr(buf, "{\"status\":\"OK\"}") &&
		   strstr(strstr(buf, "\"name\":\"victim\""), "{\"status\":\"OK\"}"),
	   "three requests on one kept-alive connection: three JSON replies");
	raw_http("POST /collections/victim/points/search HTTP/1.1\r\nHost: x\r\n"
		 "Connection: close\r\nContent-Length: 17\r\n\r\n{\"vector\": [1,2]}",
		 buf, sizeof buf);
	like(buf, "\r\nX-Shoal-Applied-Index: ", "a read carries the applied index");
	like(buf, "\r\nX-Shoal-Lag: 0\r\n", "  and the lag (0 on a lone node)");
	like(buf, "\r\nX-Shoal-Lag-Ms: 0\r\n", "  in milliseconds too");
	j = req("GET", "/readyz", NULL, &code);
	is_int(code, 200, "GET /readyz: 200 on a lone node that leads");
	ok(json_is_true(json_object_get(j, "ready")), "  ready");
	json_decref(j);
	j = req("GET", "/livez", NULL, &code);
	is_int(code, 200, "GET /livez: 200");
	json_decref(j);
	expect("POST", "/readyz", NULL, 405, "INVALID_ARGUMENT", "method not allowed");
	j = req("GET", "/cluster", NULL, &code);
	ok(json_is_true(json_object_get(result(j), "ready")), "GET /cluster: ready");
	is_str(str_at(result(j), "ready_reason"), "", "  no reason not to be");
	json_decref(j);
	expect("DELETE", "/collections/victim", NULL, 200, "ok", NULL);
}

/* name is a family of list, or a histogram series of one. */
static bool declared(const char *name, char (*list)[96], int n)
{
	static const char *const sfx[] = {"", "_bucket", "_sum", "_count"};
	char want[128];

	for (int i = 0; i < n; i++)
		for (int k = 0; k < 4; k++) {
			snprintf(want, sizeof want, "%s%s", list[i], sfx[k]);
			if (strcmp(name, want) == 0)
				return true;
		}
	return false;
}

/* Every family has HELP and TYPE before its samples; names end in base
 * units; build_info and membership are there; the leader is not its own
 * follower. */
static void test_metrics_format(void)
{
	char *text = NULL, *line, *save = NULL, help[256][96], type[256][96];
	int code, nh = 0, nt = 0, bad = 0, samples = 0;

	http(port, "GET", "/metrics", NULL, &code, &text);
	is_int(code, 200, "GET /metrics");
	like(text, "\nshoal_build_info{version=\"" PACKAGE_VERSION "\",", "shoal_build_info");
	like(text, "\nshoal_membership_members{state=\"alive\"} 1\n", "members per SWIM state");
	like(text, "\nshoal_ready 1\n", "shoal_ready 1");
	ok(strstr(text, "shoal_raft_follower_lag_entries{") == NULL,
	   "a lone leader lists no follower (not itself)");
	ok(strstr(text, "_ms{") == NULL && strstr(text, "_ms ") == NULL,
	   "no family in milliseconds");
	for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		char name[96];
		bool found;

		if (sscanf(line, "# HELP %95s", name) == 1 && nh < 256)
			snprintf(help[nh++], sizeof help[0], "%s", name);
		else if (sscanf(line, "# TYPE %95s", name) == 1 && nt < 256)
			snprintf(type[nt++], sizeof type[0], "%s", name);
		if (line[0] == '#' || sscanf(line, "%95[a-z_]", name) != 1)
			continue;
		samples++;
		found = declared(name, help, nh) && declared(name, type, nt);
		if (!found && bad++ < 5)
			diag("no HELP or TYPE before %s", line);
	}
	ok(samples > 40, "%d samples", samples);
	is_int(bad, 0, "every sample's family has # HELP and # TYPE");
	free(text);
}

/* ------------------------------------------------------------ Idempotency-Key */

/* A request with an Idempotency-Key (NULL: none); the HTTP code, and the
 * body parsed into *out (NULL when it is not JSON). */
static int keyed(const char *method, const char *path, const char *key, const char *body,
		 json_t **out)
{
	char req[2048], reply[8192], hdr[400] = "";
	int code = 0;

	if (key != NULL)
		snprintf(hdr, sizeof hdr, "Idempotency-Key: %s\r\n", key);
	snprintf(req, sizeof req,
		 "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%sContent-Type: "
		 "application/json\r\nContent-Length: %zu\r\n\r\n%s",
		 method, path, hdr, strlen(body), body);
	if (raw_http(req, reply, sizeof reply) > 0)
		sscanf(reply, "HTTP/1.1 %d", &code);
	*out = json_loads(body_of(reply), 0, NULL);
	return code;
}

static json_int_t op_id(json_t *j)
{
	return json_integer_value(json_object_get(result(j), "operation_id"));
}

/* The payload value n of point 1 of collection idem. */
static json_int_t n_of_point1(void)
{
	json_t *j;
	json_int_t n;
	int code;

	j = req("GET", "/collections/idem/points/1", NULL, &code);
	n = json_integer_value(json_object_get(json_object_get(result(j), "payload"), "n"));
	json_decref(j);
	return n;
}

/* doc/clients.md, "Exactly-once writes": a repeat with the key gets the
 * first answer and is not applied again, even after a newer write. */
static void test_idempotency(void)
{
	static const char create[] = "{\"vectors\": {\"size\": 2, \"distance\": \"Euclid\"}}";
	static const char one[] = "{\"points\": [{\"id\": 1, \"vector\": [1, 2], \"payload\": "
				  "{\"n\": 1}}]}";
	static const char two[] = "{\"points\": [{\"id\": 1, \"vector\": [1, 2], \"payload\": "
				  "{\"n\": 2}}]}";
	json_t *a, *b;
	json_int_t first;

	is_int(keyed("PUT", "/collections/idem", "create-idem-1", create, &a), 200,
	       "Idempotency-Key: a collection created");
	is_int(keyed("PUT", "/collections/idem", "create-idem-1", create, &b), 200,
	       "  the same request again: 200, not 409 (the first answer)");
	json_decref(a);
	json_decref(b);
	is_int(keyed("PUT", "/collections/idem/points?wait=true", "up-1", one, &a), 200,
	       "an upsert with a key");
	first = op_id(a);
	ok(first > 0, "  operation %lld", (long long)first);
	is_int(keyed("PUT", "/collections/idem/points?wait=true", "up-1", one, &b), 200,
	       "  repeated: 200");
	is_int(op_id(b), first, "  with the first answer's operation id");
	json_decref(a);
	json_decref(b);
	is_int(keyed("PUT", "/collections/idem/points?wait=true", NULL, two, &a), 200,
	       "a newer write of the point, without a key");
	json_decref(a);
	is_int(keyed("PUT", "/collections/idem/points?wait=true&timeout=5", "up-1", one, &b), 200,
	       "the first request again (another query string)");
	is_int(op_id(b), first, "  still the first answer");
	json_decref(b);
	is_int(n_of_point1(), 2, "  and it did not apply again: the newer payload stays");
	is_int(keyed("PUT", "/collections/idem/points?wait=true", "up-1", two, &a), 400,
	       "the key with another body: 400");
	like(error_of(a), "applied with a different request", "  says why");
	json_decref(a);
	is_int(keyed("POST", "/collections/idem/points/delete", "del-1",
		     "{\"filter\": {\"must\": [{\"key\": \"n\", \"match\": {\"value\": 2}}]}}", &a),
	       400, "a delete by filter with a key: 400");
	like(error_of(a), "not supported on a write by filter", "  names why");
	json_decref(a);
	is_int(keyed("POST", "/collections/idem/points/delete", "has space", "{\"points\": [1]}",
		     &a),
	       400, "a key that is not printable ASCII without spaces: 400");
	like(error_of(a), "Idempotency-Key: byte 3", "  names the byte");
	json_decref(a);
	is_int(n_of_point1(), 2, "nothing of the refused requests applied");
}

int main(void)
{
	struct srv s;
	char dir[256];

	srv_watchdog(120);
	srv_tmpdir(dir, sizeof dir);
	snprintf(s.dir, sizeof s.dir, "%s", dir);
	if (srv_start_strong(&s) != 0)
		bail_out("shoald does not start");
	port = s.rest_port;
	test_collections();
	test_points();
	test_payloads();
	test_search_scroll();
	test_cluster_metrics();
	test_bad_requests();
	test_idempotency();
	test_metrics_format();
	is_int(srv_stop(&s, SIGTERM), 0, "SIGTERM: clean exit");
	srv_rmdir(dir);
	unlink(s.log);
	return done_testing();
}
