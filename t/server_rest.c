/* End to end through HTTP against a real shoald: every REST path, errors
 * as JSON with the right HTTP code, scroll paging, filters, /metrics,
 * /healthz, /cluster. */
#include "build.h"

#include "srv.h"
#include "tap.h"

#include <jansson.h>

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

static void expect(const char *method, const char *path, const char *body, int want_code,
		   const char *want_status, const char *want_msg)
{
	int code;
	json_t *j = req(method, path, body, &code);

	is_int(code, want_code, "%s %s: HTTP %d", method, path, want_code);
	is_str(str_at(j, "status"), want_status, "  status %s", want_status);
	if (want_msg != NULL)
		like(str_at(j, "message"), want_msg, "  message");
	json_decref(j);
}

static void test_collections(void)
{
	json_t *j;
	int code;

	j = req("PUT", "/collections/docs", "{\"dim\": 3, \"metric\": \"cosine\", \"m\": 8}",
		&code);
	is_int(code, 200, "PUT /collections/docs");
	ok(json_integer_value(json_object_get(json_object_get(result(j), "token"), "index")) >= 1,
	   "returns a token");
	json_decref(j);
	expect("PUT", "/collections/docs", "{\"dim\": 3}", 409, "ALREADY_EXISTS", "already exists");
	expect("PUT", "/collections/x", "{\"dim\": 3, \"metrc\": \"l2\"}", 400, "INVALID_ARGUMENT",
	       "unknown field 'metrc'");
	expect("PUT", "/collections/x", "{\"dim\": 0}", 400, "INVALID_ARGUMENT", "dim 0");
	expect("PUT", "/collections/x", "{\"dim\": 3, \"metric\": \"manhattan\"}", 400,
	       "INVALID_ARGUMENT", "unknown value 'manhattan'");
	j = req("GET", "/collections", NULL, &code);
	is_int(code, 200, "GET /collections");
	is_int(json_array_size(json_object_get(result(j), "collections")), 1, "one collection");
	json_decref(j);
	j = req("GET", "/collections/docs", NULL, &code);
	is_str(str_at(result(j), "metric"), "cosine", "GET /collections/docs: metric cosine");
	is_int(json_integer_value(json_object_get(result(j), "m")), 8, "m 8");
	json_decref(j);
	expect("GET", "/collections/nope", NULL, 404, "NOT_FOUND", "collection 'nope' not found");
	expect("GET", "/nowhere", NULL, 404, "NOT_FOUND", "no such path");
	expect("PATCH", "/collections", NULL, 405, "INVALID_ARGUMENT", "method not allowed");
}

static void test_points(void)
{
	char body[8192];
	size_t n = 0;
	json_t *j, *pts;
	int code;

	n += (size_t)snprintf(body + n, sizeof body - n, "{\"points\": [");
	for (int i = 1; i <= 40; i++)
		n += (size_t)snprintf(body + n, sizeof body - n,
				      "%s{\"id\": %d, \"vector\": [%d, 1, %d], "
				      "\"payload\": {\"i\": %d, \"kind\": \"%s\"}}",
				      i > 1 ? "," : "", i, i, i % 5, i, i % 4 ? "a" : "b");
	snprintf(body + n, sizeof body - n, "]}");
	j = req("PUT", "/collections/docs/points", body, &code);
	is_int(code, 200, "PUT points");
	is_int(json_integer_value(json_object_get(result(j), "affected")), 40, "40 upserted");
	json_decref(j);
	j = req("GET", "/collections/docs/points/7", NULL, &code);
	is_int(code, 200, "GET a point");
	is_int(json_integer_value(json_object_get(json_object_get(result(j), "payload"), "i")), 7,
	       "its payload");
	is_int(json_array_size(json_object_get(result(j), "vector")), 3, "and its vector");
	json_decref(j);
	expect("GET", "/collections/docs/points/999", NULL, 404, "NOT_FOUND", "point not found");
	expect("GET", "/collections/docs/points/abc", NULL, 400, "INVALID_ARGUMENT", "an id must");
	j = req("POST", "/collections/docs/points",
		"{\"ids\": [3, 4, 500], \"with_payload\": true}", &code);
	is_int(json_array_size(json_object_get(result(j), "points")), 2, "POST points: get two");
	json_decref(j);
	j = req("POST", "/collections/docs/points/delete", "{\"ids\": [40, 41]}", &code);
	is_int(json_integer_value(json_object_get(result(j), "affected")), 1, "delete: 1 existed");
	json_decref(j);
	j = req("POST", "/collections/docs/points/count", "{}", &code);
	is_int(json_integer_value(json_object_get(result(j), "count")), 39, "count 39");
	json_decref(j);
	j = req("POST", "/collections/docs/points/count",
		"{\"filter\": {\"must\": [{\"key\": \"kind\", \"match\": {\"value\": \"b\"}}]}}",
		&code);
	is_int(json_integer_value(json_object_get(result(j), "count")), 9,
	       "count with a filter: 9");
	json_decref(j);
	(void)pts;
}

static void test_search_scroll(void)
{
	json_t *j, *pts;
	int code, total = 0, pages = 0;
	char body[256];
	json_int_t off = 0;

	j = req("POST", "/collections/docs/points/search",
		"{\"vector\": [7, 1, 2], \"k\": 3, \"with_payload\": true}", &code);
	pts = json_object_get(result(j), "points");
	is_int(code, 200, "search");
	ok(json_array_size(pts) == 3 && json_object_get(json_array_get(pts, 0), "distance"),
	   "3 points with distances");
	json_decref(j);
	j = req("POST", "/collections/docs/points/search",
		"{\"vector\": [7, 1, 2], \"k\": 5, \"filter\": {\"must\": [{\"key\": \"i\", "
		"\"range\": {\"gte\": 30}}]}, \"with_payload\": true}",
		&code);
	pts = json_object_get(result(j), "points");
	is_int(json_array_size(pts), 5, "filtered search: 5 results");
	ok(json_integer_value(
		   json_object_get(json_object_get(json_array_get(pts, 0), "payload"), "i")) >= 30,
	   "matching the filter");
	json_decref(j);
	do {
		snprintf(body, sizeof body, "{\"offset\": %lld, \"limit\": 6}", (long long)off);
		j = req("POST", "/collections/docs/points/scroll", body, &code);
		total += (int)json_array_size(json_object_get(result(j), "points"));
		off = json_integer_value(json_object_get(result(j), "next_offset"));
		pages++;
		if (json_is_null(json_object_get(result(j), "next_offset")))
			off = -1;
		json_decref(j);
	} while (off >= 0 && pages < 50);
	is_int(total, 39, "scroll in pages of 6: all 39 points");
	is_int(pages, 7, "in 7 pages");

	expect("POST", "/collections/docs/points/search", "{\"vector\": [1, 2], \"k\": 3}", 400,
	       "INVALID_ARGUMENT", "query vector has 2 values, the dimension of 'docs' is 3");
	expect("POST", "/collections/docs/points/search", "{\"vector\": [1, 2, 3], \"k\": 0}", 400,
	       "INVALID_ARGUMENT", "k = 0 is outside 1..10000");
	expect("POST", "/collections/docs/points/search", "{\"vector\": [1, 2, 3], \"k\": 1000000}",
	       400, "INVALID_ARGUMENT", "k = 1000000 is outside");
	expect("POST", "/collections/docs/points/search", "{\"vector\": [1, 2, 3], \"filter\": 5}",
	       400, "INVALID_ARGUMENT", "filter: must be an object");
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
	like(text, "shoal_collection_points{collection=\"docs\"} 39", "points per collection");
	like(text, "shoal_memory_allocated_bytes", "allocator memory");
	like(text, "shoal_applied_index", "apply position");
	like(text, "shoal_raft_role{role=\"leader\"} 1", "raft role: a lone voter leads");
	like(text, "shoal_raft_commit_index ", "commit index");
	like(text, "shoal_raft_follower_lag_entries{node=", "lag per member, at the leader");
	free(text);
	expect("DELETE", "/collections/docs", NULL, 200, "OK", NULL);
	expect("GET", "/collections/docs", NULL, 404, "NOT_FOUND", NULL);
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
	test_search_scroll();
	test_cluster_metrics();
	is_int(srv_stop(&s, SIGTERM), 0, "SIGTERM: clean exit");
	srv_rmdir(dir);
	unlink(s.log);
	return done_testing();
}
