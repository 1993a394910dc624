/* Tests of cluster/raft, step by step at exact times (STYLE.md: "unit tests
 * of elections assert exact simulated times and states"): three cores wired
 * by hand — a message queue delivered on demand, random numbers that are
 * always 0 (so election timeouts are exactly the minimum), durability
 * reported explicitly.  Election with PreVote, replication gated by
 * durability, commit of the current term only, heartbeats, CheckQuorum, no
 * disruption from a node that still hears its leader, SWIM's dead leader,
 * ReadIndex and leases, configuration changes one at a time, leadership
 * transfer, an acknowledgement owed that a heartbeat must not cancel. */
#include "build.h"

#include "cluster/raft.h"
#include "tap.h"
#include "util/alloc.h"

#include <string.h>

#define N 3

struct qmsg {
	uint64_t to;
	struct raft_msg m;
	struct raft_entry_meta e[64];
};

static struct raft *node[N + 1];
static struct qmsg q[4096];
static size_t nq;
static uint64_t written[N + 1], committed[N + 1], saved_term[N + 1], saved_vote[N + 1];
static int reads_ready, reads_failed;
static uint64_t read_index;

static void io_send(void *data, uint64_t to, const struct raft_msg *m)
{
	struct qmsg *x = &q[nq++];

	x->to = to;
	x->m = *m;
	for (size_t i = 0; i < m->n && i < 64; i++)
		x->e[i] = m->entries[i];
	x->m.entries = x->e;
}

static void io_hs(void *data, uint64_t term, uint64_t vote)
{
	uint64_t id = (uint64_t)(uintptr_t)data;

	saved_term[id] = term;
	saved_vote[id] = vote;
}

static void io_truncate(void *data, uint64_t from)
{
	written[(uintptr_t)data] = from - 1;
}

static void io_append(void *data, uint64_t first, size_t n)
{
	written[(uintptr_t)data] = first + n - 1;
}

static void io_noop(void *data, uint64_t index, uint64_t term)
{
	written[(uintptr_t)data] = index;
}

static void io_commit(void *data, uint64_t index)
{
	committed[(uintptr_t)data] = index;
}

static void io_event(void *data, const struct raft_event *ev)
{
	if (ev->type == RAFT_EV_READ_READY) {
		reads_ready++;
		read_index = ev->index;
	} else if (ev->type == RAFT_EV_READ_FAILED) {
		reads_failed++;
	}
}

static uint64_t io_random(void *data)
{
	return 0;
}

static struct raft_conf conf3 = {{1, 2, 3}, 3, {0}, 0};

static void boot(uint64_t now)
{
	for (uint64_t id = 1; id <= N; id++) {
		struct raft_opts o;
		struct raft_io io = {(void *)(uintptr_t)id,
				     io_send,
				     io_hs,
				     io_truncate,
				     io_append,
				     io_noop,
				     io_commit,
				     io_event,
				     io_random};
		struct raft_boot b = {.snap_conf = &conf3};

		raft_opts_default(&o, id);
		raft_free(node[id]);
		if (raft_new(&o, &io, &b, now, &node[id], NULL) != 0)
			bail_out("raft_new");
		written[id] = committed[id] = 0;
	}
	nq = 0;
}

/* Deliver the queue (and what delivering sends) at time now, skipping
 * messages to `cut`; returns how many were delivered. */
static int deliver(uint64_t now, uint64_t cut)
{
	size_t round = nq;
	int n = 0;

	for (size_t i = 0; i < round; i++) {
		if (q[i].to == cut || q[i].m.from == cut)
			continue;
		raft_recv(node[q[i].to], now, &q[i].m);
		n++;
	}
	/* what this round sent waits for the next one */
	memmove(q, q + round, (nq - round) * sizeof *q);
	for (size_t i = 0; i < nq - round; i++)
		q[i].m.entries = q[i].e;
	nq -= round;
	return n;
}

static void persist_all(uint64_t now)
{
	for (uint64_t id = 1; id <= N; id++)
		raft_persisted(node[id], now, written[id]);
}

/* Run deliveries and persistence until quiet. */
static void settle(uint64_t now, uint64_t cut)
{
	for (int k = 0; k < 20; k++) {
		for (uint64_t id = 1; id <= N; id++)
			if (id != cut)
				raft_flush(node[id], now);
		persist_all(now);
		if (deliver(now, cut) == 0)
			return;
	}
}

static void test_election(void)
{
	boot(0);
	is_int(raft_next_deadline(node[1]), 1000,
	       "a follower's first deadline is the election timeout");
	raft_tick(node[1], 999);
	is_int(raft_role(node[1]), RAFT_FOLLOWER, "999 ms: still a follower");
	raft_tick(node[1], 1000);
	is_int(raft_role(node[1]), RAFT_PRECANDIDATE, "1000 ms: a pre-candidate");
	is_int(raft_term(node[1]), 0, "a pre-vote does not change the term");
	is_int(nq, 2, "it asks both others");
	ok(q[0].m.prevote && q[0].m.term == 1, "for term 1, as a pre-vote");
	deliver(1000, 0);
	is_int(nq, 2, "both grant the pre-vote");
	ok(q[0].m.granted && q[0].m.term == 1, "granted at term 1");
	is_int(saved_term[2], 0, "granting a pre-vote persists nothing");
	deliver(1001, 0);
	is_int(raft_role(node[1]), RAFT_CANDIDATE, "a majority of pre-votes: a candidate");
	is_int(saved_term[1], 1, "term 1 persisted");
	is_int(saved_vote[1], 1, "with its own vote");
	deliver(1002, 0);
	is_int(saved_vote[2], 1, "node 2 persisted its vote for node 1");
	deliver(1003, 0);
	is_int(raft_role(node[1]), RAFT_LEADER, "1003 ms: node 1 leads term 1");
	is_int(raft_last_index(node[1]), 1, "its no-op is index 1");
	is_int(written[1], 1, "which the driver was told to append");
}

static void test_replication(void)
{
	uint64_t index, term;

	raft_flush(node[1], 1003);
	deliver(1003, 0); /* the no-op reaches both followers */
	deliver(1003, 0); /* their answers: not durable yet */
	is_int(raft_commit_index(node[1]), 0, "nothing durable anywhere: nothing committed");
	raft_persisted(node[2], 1004, written[2]);
	deliver(1004, 0);
	is_int(raft_commit_index(node[1]), 0, "a follower durable, the leader not: not yet");
	raft_persisted(node[1], 1005, written[1]);
	is_int(raft_commit_index(node[1]), 1, "leader and one follower durable: committed");
	is_int(committed[1], 1, "the driver is told to apply up to 1");
	is_int(raft_propose(node[2], 1005, RAFT_ENTRY_DATA, 10, &index, &term), SH_EUNAVAIL,
	       "a follower refuses proposals");
	is_int(raft_propose(node[1], 1005, RAFT_ENTRY_DATA, 10, &index, &term), 0, "propose");
	is_int(index, 2, "at index 2");
	is_int(term, 1, "of term 1");
	written[1] = 2;
	settle(1006, 0);
	is_int(raft_commit_index(node[1]), 2, "replicated and committed");
	is_int(committed[2] >= 1, 1, "followers learn the commit index");
	is_int(raft_acked(node[1], 2), 3, "all three voters hold index 2");
}

static void test_heartbeats(void)
{
	nq = 0;
	is_int(raft_next_deadline(node[1]), 1103,
	       "the next heartbeat is due 100 ms after election");
	raft_tick(node[1], 1103);
	is_int(nq, 2, "a heartbeat to each follower");
	is_int(q[0].m.n, 0, "carrying no entries");
	deliver(1103, 0);
	deliver(1103, 0);
	is_int(raft_next_deadline(node[1]), 1203, "and again 100 ms later");
}

/* A heartbeat that reaches a follower after new entries and before they are
 * durable names the older point the leader knows of; the follower must still
 * acknowledge the entries once durable (it once waited for the leader to
 * send them again, a second later). */
static void test_ack_after_heartbeat(void)
{
	uint64_t index, term, hb;

	boot(0);
	raft_tick(node[1], 1000);
	settle(1000, 0);
	nq = 0;
	is_int(raft_propose(node[1], 1001, RAFT_ENTRY_DATA, 10, &index, &term), 0, "propose");
	written[1] = index;
	raft_persisted(node[1], 1001, index);
	raft_flush(node[1], 1001);
	deliver(1001, 0); /* appended on both followers, not durable */
	deliver(1001, 0); /* their answers: not yet */
	is_int(raft_acked(node[1], index), 1, "only the leader holds it durably");
	hb = raft_next_deadline(node[1]);
	raft_tick(node[1], hb);
	ok(nq >= 2 && q[0].m.n == 0 && q[0].m.prev_index < index,
	   "heartbeats naming an older point");
	deliver(hb, 0); /* they reach the followers before their disks finish */
	deliver(hb, 0);
	raft_persisted(node[2], hb + 1, written[2]);
	raft_persisted(node[3], hb + 1, written[3]);
	deliver(hb + 1, 0);
	is_int(raft_acked(node[1], index), 3, "the followers acknowledge it once durable");
	is_int(raft_commit_index(node[1]), index, "committed without a resend");
}

static void test_no_disruption(void)
{
	struct raft_msg v = {
		.type = RAFT_MSG_VOTE, .term = 5, .from = 3, .last_index = 99, .last_term = 4};

	nq = 0;
	raft_recv(node[2], 1110, &v);
	is_int(nq, 0, "a follower that heard its leader 7 ms ago ignores a vote request");
	is_int(raft_term(node[2]), 1, "and keeps its term");
}

static void test_check_quorum(void)
{
	uint64_t t = 1203;

	/* the followers stop answering: the leader steps down at its check */
	while (raft_role(node[1]) == RAFT_LEADER && t < 5000) {
		t = raft_next_deadline(node[1]);
		raft_tick(node[1], t);
		nq = 0;
	}
	is_int(raft_role(node[1]), RAFT_FOLLOWER, "a leader that hears no majority steps down");
	ok(t >= 2003 && t <= 3003, "within two election timeouts of the last answer (%llu ms)",
	   (unsigned long long)t);
}

static void test_dead_leader(void)
{
	boot(0);
	raft_tick(node[1], 1000);
	settle(1000, 0);
	is_int(raft_leader(node[2]), 1, "node 2 follows node 1");
	raft_peer_dead(node[2], 1200, 1);
	is_int(raft_next_deadline(node[2]), 1200, "SWIM says the leader is dead: elect now");
	raft_peer_dead(node[3], 1200, 1);
	nq = 0;
	raft_tick(node[2], 1200);
	is_int(raft_role(node[2]), RAFT_PRECANDIDATE, "node 2 starts a pre-vote at once");
	settle(1201, 1);
	is_int(raft_role(node[2]), RAFT_LEADER, "and wins without the dead node");
	is_int(raft_term(node[2]), 2, "in term 2");
}

static void test_reads(void)
{
	uint64_t t;

	boot(0);
	raft_tick(node[1], 1000);
	settle(1000, 0);
	reads_ready = reads_failed = 0;
	raft_read_index(node[1], 1010, 7);
	is_int(reads_ready, 0, "a read waits for a round of acknowledgements");
	raft_tick(node[1], raft_next_deadline(node[1]));
	settle(1011, 0);
	is_int(reads_ready, 1, "then it is ready");
	is_int(read_index, raft_commit_index(node[1]), "at the commit index");
	ok(raft_lease_valid(node[1], 1011), "acks just now: the lease holds");
	ok(!raft_lease_valid(node[1], 1011 + 900), "and lapses 90%% of the timeout later");
	raft_read_index(node[2], 1020, 8);
	settle(1020, 0);
	t = raft_next_deadline(node[1]);
	raft_tick(node[1], t);
	settle(t, 0);
	is_int(reads_ready, 2, "a follower's read is confirmed through the leader");
	raft_read_index(node[3], 1030, 9);
	nq = 0; /* the request is lost */
	raft_tick(node[3], 1030 + 1000);
	is_int(reads_failed, 1, "an unanswered forwarded read fails after a timeout");
}

static void test_conf_changes(void)
{
	struct raft_conf add4 = {{1, 2, 3}, 3, {4}, 1}, two = {{1, 2}, 2, {4, 5}, 2};
	uint64_t index, term;

	boot(0);
	raft_tick(node[1], 1000);
	for (int k = 0; k < 10 && raft_role(node[1]) != RAFT_LEADER; k++)
		deliver(1000, 0); /* elected, nothing persisted: the no-op is not committed */
	is_int(raft_role(node[1]), RAFT_LEADER, "node 1 leads");
	is_int(raft_propose_conf(node[1], 1001, &add4, 8, &index, &term), SH_EBUSY,
	       "no change before this term's first entry commits");
	settle(1002, 0);
	is_int(raft_propose_conf(node[1], 1003, &two, 8, &index, &term), SH_EINVAL,
	       "more than one server at a time is refused");
	is_int(raft_propose_conf(node[1], 1003, &add4, 8, &index, &term), 0, "add a learner");
	ok(raft_conf_has(raft_conf(node[1]), 4), "effective at once in the leader");
	is_int(raft_propose_conf(node[1], 1003, &conf3, 8, &index, &term), SH_EBUSY,
	       "a second change waits for the first to commit");
}

static void test_transfer(void)
{
	boot(0);
	raft_tick(node[1], 1000);
	settle(1000, 0);
	is_int(raft_transfer(node[1], 1100, 3), 0, "transfer leadership to node 3");
	settle(1100, 0);
	is_int(raft_role(node[3]), RAFT_LEADER, "node 3 leads");
	is_int(raft_term(node[3]), 2, "in the next term");
	is_int(raft_role(node[1]), RAFT_FOLLOWER, "node 1 follows");
}

int main(void)
{
	test_election();
	test_replication();
	test_heartbeats();
	test_no_disruption();
	test_check_quorum();
	test_dead_leader();
	test_reads();
	test_conf_changes();
	test_transfer();
	test_ack_after_heartbeat();
	for (int i = 1; i <= N; i++)
		raft_free(node[i]);
	return done_testing();
}
