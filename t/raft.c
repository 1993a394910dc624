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

static uint64_t rand_value; /* what the random source returns (0 unless a test sets it) */

static uint64_t io_random(void *data)
{
	(void)data;
	return rand_value;
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

/* SWIM's verdict that the leader is dead makes a follower stand at once —
 * but only once it has not heard the leader for an election timeout
 * itself: a voter that heard the leader within one refuses votes anyway
 * (the lease), and one that still hears it (gossip fails, the peer link
 * works) has no reason to stand. */
static void test_dead_leader(void)
{
	uint64_t d;

	boot(0);
	raft_tick(node[1], 1000);
	settle(1000, 0);
	is_int(raft_leader(node[2]), 1, "node 2 follows node 1");
	d = raft_next_deadline(node[2]);
	raft_peer_dead(node[2], 1200, 1);
	is_int(raft_next_deadline(node[2]), d,
	       "SWIM says the leader is dead 200 ms after node 2 heard it: no election yet");
	raft_peer_dead(node[2], 1999, 1);
	is_int(raft_next_deadline(node[2]), d, "nor 999 ms after");
	raft_peer_dead(node[2], 2000, 1);
	raft_peer_dead(node[3], 2000, 1);
	is_int(raft_next_deadline(node[2]), 2000, "a timeout after: elect now");
	nq = 0;
	raft_tick(node[2], 2000);
	is_int(raft_role(node[2]), RAFT_PRECANDIDATE, "node 2 starts a pre-vote");
	settle(2001, 1);
	is_int(raft_role(node[2]), RAFT_LEADER, "and wins without the dead node");
	is_int(raft_term(node[2]), 2, "in term 2");
}

/* The stream from the leader ended (a kill closes its sockets): a
 * follower stands once the lease allows — an election timeout after it
 * last heard the leader, within two heartbeats — rather than at its
 * randomized timer; never before; another node's stream changes nothing,
 * and a message from the leader meanwhile puts the timer back. */
static void test_leader_link_lost(void)
{
	boot(0);
	rand_value = 999; /* timers at their latest: now + 1000 + 999 */
	raft_tick(node[1], 1000);
	settle(1000, 0);
	is_int(raft_leader(node[2]), 1, "node 2 follows node 1");
	is_int(raft_next_deadline(node[2]), 2999, "its election timer: heard at 1000, + 1999");
	raft_leader_link_lost(node[2], 1200, 3);
	is_int(raft_next_deadline(node[2]), 2999, "another node's stream ends: nothing");
	raft_leader_link_lost(node[2], 1200, 1);
	is_int(raft_next_deadline(node[2]), 2000 + 999 % 201,
	       "the leader's ends at 1200: it stands at the lease's end (2000) + up to 2 "
	       "heartbeats");
	raft_tick(node[1], 1300); /* a heartbeat: the leader was alive after all */
	settle(1300, 0);
	is_int(raft_next_deadline(node[2]), 3299, "a message from the leader puts the timer back");
	raft_leader_link_lost(node[2], 2600, 1);
	is_int(raft_next_deadline(node[2]), 2600 + 999 % 201,
	       "ended after the lease (heard at 1300): at once, within two heartbeats");
	raft_tick(node[2], 2600 + 999 % 201);
	is_int(raft_role(node[2]), RAFT_PRECANDIDATE, "node 2 starts a pre-vote");
	rand_value = 0;
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

/* Issue 12: a node whose disk is full goes standby — as leader it hands
 * over to the voter with the longest log; it then stands in no election
 * and ignores TimeoutNow; once off it campaigns again. */
static void test_standby(void)
{
	boot(0);
	raft_tick(node[1], 1000);
	settle(1000, 0);
	raft_set_standby(node[1], 1100, true);
	ok(raft_standby(node[1]), "node 1 is standby");
	settle(1100, 0);
	ok(raft_role(node[1]) == RAFT_FOLLOWER && raft_role(node[2]) == RAFT_LEADER,
	   "the standby leader handed over (to node 2, the first of the longest logs)");
	is_int(raft_term(node[2]), 2, "in the next term");
	raft_set_standby(node[2], 1200, true);
	raft_set_standby(node[3], 1200, true);
	settle(1200, 0);
	ok(raft_role(node[2]) == RAFT_LEADER, "with every other voter standby, it stays leader");
	raft_set_standby(node[2], 1300, false);
	raft_set_standby(node[3], 1300, false);
	deliver(1300, 2); /* the leader's heartbeats are lost */
	raft_tick(node[1], 5000);
	settle(5000, 0);
	ok(raft_role(node[1]) == RAFT_FOLLOWER,
	   "a standby voter whose leader is silent never stands");
	ok(raft_role(node[2]) == RAFT_LEADER || raft_role(node[3]) == RAFT_LEADER,
	   "another voter leads");
	raft_set_standby(node[1], 5100, false);
	ok(!raft_standby(node[1]), "off again");
}

/* Item 5 of issue 10: the leader hears itself; it refuses (pre-)votes
 * like a follower that hears it, or a follower whose messages reach it but
 * not the reverse could depose it. */
static void test_leader_refuses_votes(void)
{
	struct raft_msg pv = {.type = RAFT_MSG_VOTE,
			      .term = 2,
			      .from = 3,
			      .prevote = true,
			      .last_index = 1,
			      .last_term = 1};
	struct raft_msg v = pv;

	boot(0);
	raft_tick(node[1], 1000);
	settle(1000, 0);
	pv.last_index = v.last_index = raft_last_index(node[1]);
	nq = 0;
	raft_recv(node[1], 2500, &pv);
	ok(nq == 0 || !q[0].m.granted, "the leader does not grant a pre-vote");
	v.prevote = false;
	nq = 0;
	raft_recv(node[1], 2500, &v);
	ok(nq == 0 || !q[0].m.granted, "nor a vote");
	is_int(raft_role(node[1]), RAFT_LEADER, "and keeps leading");
	is_int(raft_term(node[1]), 1, "in its term");
}

/* Item 4: the lease holds only while a voter that acknowledged the leader
 * refuses votes for an election timeout; membership's verdict may make a
 * follower stand sooner, never lift that refusal. */
static void test_swim_keeps_refusal(void)
{
	struct raft_msg pv = {
		.type = RAFT_MSG_VOTE, .term = 2, .from = 3, .prevote = true, .last_term = 1};

	boot(0);
	raft_tick(node[1], 1000);
	settle(1000, 0);
	raft_tick(node[1], raft_next_deadline(node[1]));
	settle(1100, 0); /* node 2 heard the leader at 1100 */
	pv.last_index = raft_last_index(node[1]);
	raft_peer_dead(node[2], 1110, 1);
	nq = 0;
	raft_recv(node[2], 1120, &pv);
	ok(nq == 0 || !q[0].m.granted,
	   "a follower that heard the leader 20 ms ago refuses a pre-vote, whatever SWIM says");
	raft_tick(node[2], 1130);
	is_int(raft_role(node[2]), RAFT_FOLLOWER,
	       "and does not stand itself while it hears the leader");
}

/* Item 4: a voter that restarts forgets the leader it acknowledged; it
 * refuses votes for an election timeout after it starts. */
static void test_restart_refuses(void)
{
	struct raft_opts o;
	struct raft_io io = {(void *)(uintptr_t)2,
			     io_send,
			     io_hs,
			     io_truncate,
			     io_append,
			     io_noop,
			     io_commit,
			     io_event,
			     io_random};
	struct raft_boot b = {.term = 1, .vote = 1, .snap_conf = &conf3};
	struct raft_msg pv = {
		.type = RAFT_MSG_VOTE, .term = 2, .from = 3, .prevote = true, .last_term = 1};

	boot(0);
	raft_tick(node[1], 1000);
	settle(1000, 0);
	pv.last_index = raft_last_index(node[1]);
	raft_free(node[2]);
	raft_opts_default(&o, 2);
	if (raft_new(&o, &io, &b, 1200, &node[2], NULL) != 0)
		bail_out("raft_new");
	nq = 0;
	raft_recv(node[2], 1210, &pv);
	ok(nq == 0 || !q[0].m.granted, "a restarted voter refuses a pre-vote at once");
	nq = 0;
	raft_recv(node[2], 1200 + 1000, &pv);
	ok(nq == 1 && q[0].m.granted, "and grants it an election timeout later");
}

/* Item 4: voters grant a transfer's votes whatever their lease promise;
 * when a transfer fails, acknowledgements from before its end no longer
 * make a lease (the target may have won). */
static void test_transfer_lease(void)
{
	uint64_t t;

	boot(0);
	raft_tick(node[1], 1000);
	settle(1000, 0);
	is_int(raft_transfer(node[1], 1100, 3), 0, "transfer to node 3");
	nq = 0; /* the TimeoutNow is lost */
	for (t = 1100; (t = raft_next_deadline(node[1])) < 2100;) {
		raft_tick(node[1], t);
		settle(t, 3); /* node 2 keeps acknowledging */
	}
	raft_tick(node[1], 2100);
	is_int(raft_role(node[1]), RAFT_LEADER, "the transfer failed: node 1 leads again");
	ok(!raft_lease_valid(node[1], 2100), "without a lease from acks before the transfer ended");
	settle(2100, 3);
	ok(raft_lease_valid(node[1], 2100), "a new round of acks makes one again");
}

/* Item 9: when appending a received batch runs out of memory halfway, the
 * core's log must not end up longer than the driver's (which was told
 * nothing): both keep what they had, and the leader sends again. */
static void test_append_oom(void)
{
	struct raft_conf c4 = {{1, 2, 3}, 3, {4}, 1};
	struct raft_entry_meta e[4] = {{1, RAFT_ENTRY_DATA, 8, NULL},
				       {1, RAFT_ENTRY_DATA, 8, NULL},
				       {1, RAFT_ENTRY_CONFIG, 8, &c4},
				       {1, RAFT_ENTRY_DATA, 8, NULL}};
	struct raft_msg m = {.type = RAFT_MSG_APPEND, .term = 1, .from = 1, .n = 4, .entries = e};
	uint64_t before;

	boot(0);
	raft_tick(node[1], 1000);
	settle(1000, 0);
	before = raft_last_index(node[2]);
	m.prev_index = before;
	m.prev_term = raft_term_at(node[2], before);
	m.commit = raft_commit_index(node[1]);
	nq = 0;
	sh_alloc_fail_after(0); /* the configuration's copy fails */
	raft_recv(node[2], 1100, &m);
	sh_alloc_fail_after(-1);
	is_int(written[2], before, "the driver appended nothing");
	is_int(raft_last_index(node[2]), written[2], "nor did the core keep a part of the batch");
	nq = 0;
	raft_recv(node[2], 1101, &m);
	is_int(raft_last_index(node[2]), before + 4, "sent again, the batch is appended");
	is_int(written[2], before + 4, "by both");
}

int main(void)
{
	test_election();
	test_replication();
	test_heartbeats();
	test_no_disruption();
	test_check_quorum();
	test_dead_leader();
	test_leader_link_lost();
	test_reads();
	test_conf_changes();
	test_transfer();
	test_standby();
	test_ack_after_heartbeat();
	test_leader_refuses_votes();
	test_swim_keeps_refusal();
	test_restart_refuses();
	test_transfer_lease();
	test_append_oom();
	for (int i = 1; i <= N; i++)
		raft_free(node[i]);
	return done_testing();
}
