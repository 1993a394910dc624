/* End to end through libshoal against a real shoald: every operation,
 * filtered searches (HNSW and exact paths, k results when k matches
 * exist), scroll paging, counts, read-your-writes, cluster status, retries
 * to the next address, and a restart in the middle of a load that keeps
 * every acknowledged point. */
#include "build.h"

#include "shoal.h"
#include "srv.h"
#include "tap.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>

#define DIM 8
#define N   3000

static float vecs[N][DIM];
static char payloads[N][96];

static void make_data(void)
{
	unsigned seed = 42;

	for (int i = 0; i < N; i++) {
		for (int k = 0; k < DIM; k++)
			vecs[i][k] = (float)rand_r(&seed) / (float)RAND_MAX;
		snprintf(payloads[i], sizeof payloads[i],
			 "{\"grp\":%d,\"nested\":{\"v\":%d},\"tag\":\"%s\"}", i % 100, i,
			 i % 2 ? "odd" : "even");
	}
}

static void test_collections(shoal *c)
{
	struct shoal_collection_info *v, one;
	struct shoal_token t;
	size_t n;

	is_int(shoal_ping(c), SHOAL_OK, "ping");
	is_int(shoal_create_collection(c, "c", DIM, SHOAL_METRIC_L2, 0, 0, &t), SHOAL_OK,
	       "create collection");
	ok(t.term == 1 && t.index >= 1, "a write returns its token (%" PRIu64 ":%" PRIu64 ")",
	   t.term, t.index);
	is_int(shoal_create_collection(c, "c", DIM, SHOAL_METRIC_L2, 0, 0, NULL),
	       SHOAL_ALREADY_EXISTS, "create it again");
	like(shoal_errmsg(c), "collection 'c' already exists", "with a message");
	is_int(shoal_create_collection(c, "bad name", DIM, SHOAL_METRIC_L2, 0, 0, NULL),
	       SHOAL_INVALID_ARGUMENT, "a bad name");
	like(shoal_errmsg(c), "has a character other than", "says what is wrong");
	is_int(shoal_list_collections(c, &v, &n), SHOAL_OK, "list");
	ok(n == 1 && strcmp(v[0].name, "c") == 0 && v[0].dim == DIM, "one collection, c");
	shoal_free(v);
	is_int(shoal_describe_collection(c, "c", &one), SHOAL_OK, "describe");
	ok(one.count == 0 && one.m == 16 && one.ef_construction == 200 &&
		   one.metric == SHOAL_METRIC_L2,
	   "defaults m 16, ef_construction 200, l2, empty");
	is_int(shoal_describe_collection(c, "nope", &one), SHOAL_NOT_FOUND, "describe unknown");
}

static void test_points(shoal *c)
{
	static struct shoal_point pts[N];
	struct shoal_results r;
	uint64_t ids[3] = {5, 99999, 7}, count;
	size_t acked = 0;

	for (int i = 0; i < N; i++)
		pts[i] = (struct shoal_point){(uint64_t)i, vecs[i], DIM, payloads[i], 0};
	is_int(shoal_upsert_pipelined(c, "c", pts, N, 200, 4, NULL, NULL, &acked, NULL), SHOAL_OK,
	       "pipelined upsert of %d points (batches of 200, 4 in flight)", N);
	is_int(acked, N, "all acknowledged");
	is_int(shoal_count(c, "c", NULL, &count), SHOAL_OK, "count");
	is_int(count, N, "count is %d", N);
	{
		struct shoal_read_state rs = shoal_read_state(c);

		ok(rs.applied_index >= 2 && rs.commit_index >= rs.applied_index,
		   "a read reply carries the node's applied (%" PRIu64 ") and commit index",
		   rs.applied_index);
		is_int(rs.lag, rs.commit_index - rs.applied_index, "  and its lag in entries");
	}
	is_int(shoal_get(c, "c", ids, 3, SHOAL_WITH_PAYLOAD | SHOAL_WITH_VECTOR, &r), SHOAL_OK,
	       "get 3 ids, one absent");
	ok(r.n == 2 && r.v[0].id == 5 && r.v[1].id == 7, "the two found, in order");
	is_str(r.n ? r.v[0].payload : NULL, payloads[5], "payload as stored (canonical JSON)");
	ok(r.n && r.v[0].dim == DIM && memcmp(r.v[0].vector, vecs[5], sizeof vecs[5]) == 0,
	   "vector as stored");
	shoal_results_free(&r);
	is_int(shoal_get(c, "c", ids, 1, 0, &r), SHOAL_OK, "get without payload or vector");
	ok(r.n == 1 && r.v[0].payload == NULL && r.v[0].vector == NULL, "gives ids only");
	shoal_results_free(&r);
}

static bool all_have(const struct shoal_results *r, const char *needle)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->v[i].payload == NULL || strstr(r->v[i].payload, needle) == NULL)
			return false;
	return true;
}

static bool sorted(const struct shoal_results *r)
{
	for (size_t i = 1; i < r->n; i++)
		if (r->v[i].distance < r->v[i - 1].distance)
			return false;
	return true;
}

static size_t overlap(const struct shoal_results *a, const struct shoal_results *b)
{
	size_t n = 0;

	for (size_t i = 0; i < a->n; i++)
		for (size_t j = 0; j < b->n; j++)
			n += a->v[i].id == b->v[j].id;
	return n;
}

static void test_search(shoal *c)
{
	struct shoal_search q = {vecs[17], DIM, 10, 0, NULL, SHOAL_WITH_PAYLOAD};
	struct shoal_results r, e;

	is_int(shoal_search(c, "c", &q, &r), SHOAL_OK, "search k=10");
	ok(r.n == 10 && r.v[0].id == 17 && r.v[0].distance == 0 && sorted(&r),
	   "10 results, the point itself first, nearest first");
	ok(!r.exact, "by HNSW");
	shoal_results_free(&r);

	q.filter = "{\"must\":[{\"key\":\"grp\",\"match\":{\"value\":7}}]}";
	is_int(shoal_search(c, "c", &q, &r), SHOAL_OK, "search with a 1%% filter");
	ok(r.n == 10 && all_have(&r, "\"grp\":7,") && sorted(&r), "10 results, all matching");
	ok(r.exact, "very selective: ran exact");
	q.flags |= SHOAL_EXACT;
	is_int(shoal_search(c, "c", &q, &e), SHOAL_OK, "the same by brute force");
	is_int(overlap(&r, &e), 10, "same ids");
	shoal_results_free(&r);
	shoal_results_free(&e);

	q.flags = SHOAL_WITH_PAYLOAD;
	q.filter = "{\"must\":[{\"key\":\"tag\",\"match\":{\"value\":\"even\"}}]}";
	is_int(shoal_search(c, "c", &q, &r), SHOAL_OK, "search with a 50%% filter");
	ok(r.n == 10 && all_have(&r, "\"tag\":\"even\"") && !r.exact,
	   "10 matching results, filtered during the HNSW traversal");
	q.flags |= SHOAL_EXACT;
	shoal_search(c, "c", &q, &e);
	ok(overlap(&r, &e) >= 8, "recall against brute force: %zu/10", overlap(&r, &e));
	shoal_results_free(&r);
	shoal_results_free(&e);

	q.flags = SHOAL_WITH_PAYLOAD;
	q.filter = "{\"must\":[{\"key\":\"grp\",\"match\":{\"value\":7}},"
		   "{\"key\":\"nested.v\",\"range\":{\"lt\":400}}]}";
	is_int(shoal_search(c, "c", &q, &r), SHOAL_OK, "a filter with 4 matches, k=10");
	is_int(r.n, 4, "gives the 4");
	shoal_results_free(&r);

	q.filter = "{\"must\":[{\"key\":\"grp\",\"rnage\":{}}]}";
	is_int(shoal_search(c, "c", &q, &r), SHOAL_INVALID_ARGUMENT, "a filter of the wrong shape");
	like(shoal_errmsg(c), "filter.must[0]: unknown field 'rnage'", "named in the message");
}

static void test_scroll(shoal *c)
{
	const char *odd = "{\"must\":[{\"key\":\"tag\",\"match\":{\"value\":\"odd\"}}]}";
	struct shoal_results r;
	uint64_t off = 0, last = 0, count;
	size_t got = 0, pages = 0;
	bool ordered = true, matching = true;

	do {
		if (shoal_scroll(c, "c", off, 7, odd, SHOAL_WITH_PAYLOAD, &r) != SHOAL_OK)
			break;
		for (size_t i = 0; i < r.n; i++) {
			ordered &= got == 0 || r.v[i].id > last;
			matching &= r.v[i].id % 2 == 1;
			last = r.v[i].id;
			got++;
		}
		off = r.next_offset;
		pages++;
		if (!r.has_next) {
			shoal_results_free(&r);
			break;
		}
		shoal_results_free(&r);
	} while (pages < 1000);
	is_int(got, N / 2, "scroll with a filter, pages of 7: every odd point (%zu pages)", pages);
	ok(ordered && matching, "in id order, each once, all matching");
	is_int(shoal_count(c, "c", odd, &count), SHOAL_OK, "count with a filter");
	is_int(count, N / 2, "half");
	is_int(shoal_scroll(c, "c", 0, 20000, NULL, 0, &r), SHOAL_INVALID_ARGUMENT,
	       "scroll limit over 10000");
}

static void test_members(shoal *c, const struct shoal_cluster_status *st)
{
	struct shoal_member *m;
	size_t n;

	is_int(shoal_cluster_members(c, &m, &n), SHOAL_OK, "cluster members");
	is_int(n, 1, "one member without membership");
	ok(n == 1 && m[0].node_id == st->node_id && strcmp(m[0].name, st->node_name) == 0 &&
		   m[0].state == SHOAL_MEMBER_ALIVE && m[0].voter && m[0].last_heard_ms == 0 &&
		   m[0].applied_index == st->applied_index,
	   "itself: %s, alive, a voter, applied %" PRIu64, n ? m[0].name : "?",
	   n ? m[0].applied_index : 0);
	is_str(shoal_member_state_name(SHOAL_MEMBER_SUSPECT), "suspect", "state names");
	is_str(shoal_member_state_name((enum shoal_member_state)9), "unknown", "out of range");
	shoal_free(m);
}

static void test_writes(shoal *c)
{
	uint64_t ids[10], count;
	struct shoal_results r;
	struct shoal_cluster_status st;
	size_t deleted;
	float v[DIM] = {0};
	struct shoal_point p = {N + 5, v, DIM, "{\"fresh\":true}", 0};
	struct shoal_search q = {v, DIM, 1, 0, NULL, SHOAL_WITH_PAYLOAD};

	for (int i = 0; i < 10; i++)
		ids[i] = (uint64_t)i * 3;
	is_int(shoal_delete(c, "c", ids, 10, &deleted, NULL), SHOAL_OK, "delete 10");
	is_int(deleted, 10, "10 deleted");
	shoal_count(c, "c", NULL, &count);
	is_int(count, N - 10, "count follows");
	shoal_get(c, "c", ids, 10, 0, &r);
	is_int(r.n, 0, "deleted points are gone");
	shoal_results_free(&r);

	shoal_set_consistency(c, SHOAL_CONSISTENCY_READ_YOUR_WRITES);
	is_int(shoal_upsert(c, "c", &p, 1, NULL), SHOAL_OK, "upsert one");
	is_int(shoal_search(c, "c", &q, &r), SHOAL_OK, "search at read_your_writes with its token");
	ok(r.n == 1 && r.v[0].id == N + 5, "sees the write");
	shoal_results_free(&r);

	is_int(shoal_cluster_status(c, &st), SHOAL_OK, "cluster status");
	ok(strcmp(st.role, "leader") == 0 && st.applied_index == st.last_index &&
		   st.points == N - 9 && strlen(st.digest) == 32 && st.members == 1,
	   "a lone voter leads, everything applied, %" PRIu64 " points, digest %s", st.points,
	   st.digest);
	test_members(c, &st);
	is_int(shoal_drop_collection(c, "c", NULL), SHOAL_OK, "drop");
	is_int(shoal_count(c, "c", NULL, &count), SHOAL_NOT_FOUND, "then it is not found");
	like(shoal_errmsg(c), "collection 'c' not found", "by name");
}

/* ------------------------------------------------------------ restart */

struct loader {
	const char *addr;
	atomic_size_t acked; /* batches of 100, in order */
	int status;
};

static void *load(void *arg)
{
	struct loader *l = arg;
	struct shoal_options o;
	struct shoal_point pts[100];
	shoal *c;

	shoal_options_init(&o);
	o.retries = 0;
	o.timeout_ms = 5000;
	if ((l->status = shoal_open(l->addr, &o, &c)) == SHOAL_OK)
		for (size_t b = 0; b < 100000; b++) {
			for (int i = 0; i < 100; i++)
				pts[i] = (struct shoal_point){b * 100 + (size_t)i, vecs[i], DIM,
							      NULL, 0};
			if ((l->status = shoal_upsert(c, "load", pts, 100, NULL)) != SHOAL_OK)
				break;
			atomic_store(&l->acked, b + 1);
		}
	shoal_close(c);
	return NULL;
}

static void test_restart(struct srv *s)
{
	struct loader l = {s->addr, 0, 0};
	pthread_t th;
	shoal *c;
	uint64_t count, *ids;
	struct shoal_results r;
	size_t acked;

	shoal_open(s->addr, NULL, &c);
	is_int(shoal_create_collection(c, "load", DIM, SHOAL_METRIC_L2, 0, 0, NULL), SHOAL_OK,
	       "restart: create a collection");
	shoal_close(c);
	pthread_create(&th, NULL, load, &l);
	for (int i = 0; i < 2000 && atomic_load(&l.acked) < 30; i++)
		srv_sleep_ms(5);
	srv_stop(s, SIGKILL);
	pthread_join(th, NULL);
	acked = atomic_load(&l.acked);
	ok(acked >= 30, "SIGKILL in the middle of a load (%zu batches acknowledged)", acked);
	isnt_int(l.status, SHOAL_OK, "the loader saw the failure");
	is_int(srv_start_args(s, NULL), 0, "shoald restarts on the same data dir");
	shoal_open(s->addr, NULL, &c);
	/* strong: the log replayed and committed again, not just what was
	 * applied before the kill */
	shoal_set_consistency(c, SHOAL_CONSISTENCY_STRONG);
	is_int(shoal_count(c, "load", NULL, &count), SHOAL_OK, "count after the restart (strong)");
	ok(count >= acked * 100, "at least every acknowledged point (%" PRIu64 " >= %zu)", count,
	   acked * 100);
	ids = calloc(acked * 100, sizeof *ids);
	for (size_t i = 0; i < acked * 100; i++)
		ids[i] = i;
	is_int(shoal_get(c, "load", ids, acked * 100, 0, &r), SHOAL_OK, "get every acked id");
	is_int(r.n, acked * 100, "all of them are there");
	shoal_results_free(&r);
	free(ids);
	shoal_close(c);
}

int main(void)
{
	struct srv s;
	char dir[256], addrs[128];
	shoal *c;

	srv_watchdog(240);
	make_data();
	srv_tmpdir(dir, sizeof dir);
	if (srv_start(&s, dir) != 0)
		bail_out("shoald does not start");
	/* a dead address first: the client moves on to the next */
	snprintf(addrs, sizeof addrs, "127.0.0.1:%d,%s", s.base * 10 + 1, s.addr);
	is_int(shoal_open(addrs, NULL, &c), SHOAL_OK, "connect: the first address is dead");
	/* writes are acknowledged once committed, searchable once applied:
	 * read what this handle wrote (DESIGN.md section 7) */
	shoal_set_consistency(c, SHOAL_CONSISTENCY_READ_YOUR_WRITES);
	test_collections(c);
	test_points(c);
	test_search(c);
	test_scroll(c);
	test_writes(c);
	shoal_close(c);
	test_restart(&s);
	is_int(srv_stop(&s, SIGTERM), 0, "SIGTERM: clean exit");
	srv_rmdir(dir);
	unlink(s.log);
	return done_testing();
}
