/* Tests of net/health: the lag in entries and in milliseconds of the
 * applied index behind the commit index, step by step on a given clock,
 * and each reason a node is not ready. */
#include "build.h"

#include "net/health.h"
#include "tap.h"

#include <string.h>

static struct node_status st(const char *role, uint64_t leader, uint64_t commit, uint64_t applied)
{
	struct node_status s;

	memset(&s, 0, sizeof s);
	s.role = role;
	s.leader = leader;
	s.cluster_id = 7;
	s.commit_index = commit;
	s.applied_index = applied;
	return s;
}

static void test_not_ready(void)
{
	struct health h;
	struct health_view v;
	struct node_status s = st("joining", 0, 0, 0);

	health_init(&h, &(struct health_opts){100, 1000});
	health_view(&h, 10, &s, false, &v);
	ok(!v.ready, "a joining node is not ready");
	like(v.reason, "not in a cluster's configuration yet (role joining)", "  says why");
	s = st("follower", 0, 0, 0);
	health_view(&h, 20, &s, false, &v);
	ok(!v.ready, "a follower that has known no leader is not ready");
	like(v.reason, "no leader known", "  says why");
	s = st("follower", 9, 5, 5);
	s.cluster_id = 0;
	health_view(&h, 30, &s, false, &v);
	ok(!v.ready, "without a cluster id: not ready");
	s = st("follower", 9, 5, 5);
	health_view(&h, 40, &s, false, &v);
	ok(v.ready, "a follower that knows its leader and has applied all: ready");
	is_str(v.reason, "", "  no reason");
	s = st("candidate", 0, 5, 5);
	health_view(&h, 50, &s, false, &v);
	ok(v.ready, "during an election, a node that knew a leader stays ready");
	health_view(&h, 60, &s, true, &v);
	ok(!v.ready, "stopping: not ready");
	like(v.reason, "stopping", "  says so");
}

static void test_lag(void)
{
	struct health h;
	struct health_view v;
	struct node_status s = st("follower", 9, 10, 10);

	health_init(&h, &(struct health_opts){100, 1000});
	health_view(&h, 0, &s, false, &v);
	is_int(v.lag, 0, "caught up: lag 0");
	is_int(v.lag_ms, 0, "  0 ms");
	s = st("follower", 9, 50, 10);
	health_sample(&h, 100, &s);
	s = st("follower", 9, 80, 40);
	health_sample(&h, 300, &s);
	health_view(&h, 400, &s, false, &v);
	is_int(v.lag, 40, "40 entries behind");
	is_int(v.lag_ms, 300, "the entries known at 100 ms still wait: 300 ms");
	ok(v.ready, "within 100 entries and 1000 ms: ready");
	s = st("follower", 9, 80, 50);
	health_view(&h, 500, &s, false, &v);
	is_int(v.lag_ms, 200, "once those are applied the entries known at 300 ms are the oldest");
	s = st("follower", 9, 80, 60);
	health_view(&h, 1400, &s, false, &v);
	is_int(v.lag_ms, 1100, "1100 ms");
	ok(!v.ready, "over 1000 ms: not ready");
	like(v.reason, "waiting 1100 ms", "  says how long");
	s = st("follower", 9, 300, 60);
	health_view(&h, 1500, &s, false, &v);
	ok(!v.ready, "240 entries behind: not ready");
	like(v.reason, "applied index 60 is 240 entries behind the commit index 300", "  says why");
	s = st("follower", 9, 300, 300);
	health_view(&h, 1600, &s, false, &v);
	ok(v.ready && v.lag == 0 && v.lag_ms == 0, "caught up again: ready, no lag");
}

/* A restarted follower whose log is behind has a commit index capped at
 * its log's end: the leader's commit index it was sent counts. */
static void test_leader_commit(void)
{
	struct health h;
	struct health_view v;
	struct node_status s = st("follower", 9, 40, 40);

	health_init(&h, &(struct health_opts){100, 1000});
	s.leader_commit = 5000;
	health_view(&h, 0, &s, false, &v);
	ok(!v.ready, "a follower whose log ends far before its leader's commit index: not ready");
	is_int(v.lag, 4960, "  its lag counts from the leader's commit index");
	like(v.reason, "behind the commit index 5000", "  and says so");
}

static void test_full_ring(void)
{
	struct health h;
	struct health_view v;
	struct node_status s;

	health_init(&h, &(struct health_opts){1000000, 1000000});
	for (uint64_t i = 1; i <= 3 * HEALTH_SAMPLES; i++) {
		s = st("learner", 9, 100 + i, 100);
		health_sample(&h, i * 10, &s);
	}
	health_view(&h, 10000, &s, false, &v);
	is_int(v.lag_ms, 10000 - 10, "a full ring keeps the oldest time (never understates)");
	is_int(h.n, HEALTH_SAMPLES, "and stays at its size");
}

int main(void)
{
	test_not_ready();
	test_lag();
	test_leader_commit();
	test_full_ring();
	return done_testing();
}
