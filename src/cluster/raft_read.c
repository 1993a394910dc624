/*
 * raft_read: linearizable reads without writing to the log (dissertation
 * §6.4).  ReadIndex: the leader notes its commit index when a read arrives,
 * confirms it is still the leader by a round of heartbeats acknowledged by a
 * majority, and the read is served once the state machine has applied that
 * index — on the leader, or on the follower that asked (the "quorum" level).
 * Lease (§6.4.1): as long as a majority acknowledged messages sent within
 * 90% of the minimum election timeout, no other leader can have been
 * elected (voters refuse to vote while they hear a leader), so the leader
 * may serve a read at once (the "strong" level).
 *
 * Every AppendEntries carries a stamp, ms << 16 plus a counter, strictly
 * increasing at the leader: a read arriving at stamp s is confirmed by acks
 * of stamps > s, i.e. of messages sent after it arrived.  Also until this
 * term has committed its first entry (the no-op), the leader's commit index
 * may be stale, so reads wait for it.
 */
#include "build.h"

#include "cluster/raft_impl.h"

#include "util/alloc.h"

#include <stdlib.h>

#define LEASE_NUM 9 /* the lease lasts 9/10 of the minimum election timeout */
#define LEASE_DEN 10

uint64_t raft__next_stamp(struct raft *r, uint64_t now)
{
	uint64_t s = now << 16;

	r->stamp = s > r->stamp ? s : r->stamp + 1;
	return r->stamp;
}

static int cmp_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x < y) - (x > y);
}

/* The newest stamp a majority of voters (this one counting as "now") has
 * acknowledged; 0 when not the leader. */
static uint64_t quorum_stamp(const struct raft *r)
{
	const struct raft_conf *c = raft__conf_now(r);
	uint64_t t[RAFT_MAX_NODES];

	if (r->role != RAFT_LEADER || c->n_voters == 0)
		return 0;
	for (unsigned i = 0; i < c->n_voters; i++) {
		const struct raft_progress *p =
			raft__peer_find((struct raft *)(uintptr_t)r, c->voters[i]);

		t[i] = c->voters[i] == r->id ? UINT64_MAX : p != NULL ? p->ack_time : 0;
	}
	qsort(t, c->n_voters, sizeof *t, cmp_desc);
	return t[raft__quorum(r) - 1];
}

bool raft_lease_valid(const struct raft *r, uint64_t now)
{
	uint64_t q = quorum_stamp(r);

	if (r->role != RAFT_LEADER || r->commit < r->term_start || r->transfer_to != RAFT_NONE)
		return false;
	if (q == UINT64_MAX)
		return true; /* a single voter */
	if (q <= r->lease_floor)
		return false; /* acks from before a failed transfer ended */
	return (q >> 16) + (uint64_t)r->o.election_timeout_ms * LEASE_NUM / LEASE_DEN > now;
}

static int push_read(struct raft *r, const struct raft_pending_read *p)
{
	if (r->n_reads == r->reads_cap) {
		size_t cap = r->reads_cap ? r->reads_cap * 2 : 16;
		struct raft_pending_read *v = sh_reallocarray(r->reads, cap, sizeof *v);

		if (v == NULL)
			return SH_ENOMEM;
		r->reads = v;
		r->reads_cap = cap;
	}
	r->reads[r->n_reads++] = *p;
	return 0;
}

static void answer(struct raft *r, const struct raft_pending_read *p, uint64_t index)
{
	struct raft_msg m = {.type = RAFT_MSG_READ_INDEX_RESP,
			     .term = r->term,
			     .from = r->id,
			     .read_id = p->id,
			     .read_index = index};

	if (p->from != RAFT_NONE)
		r->io.send(r->io.data, p->from, &m);
	else
		raft__emit(r, index ? RAFT_EV_READ_READY : RAFT_EV_READ_FAILED, 0, p->id, index);
}

/* Leader: queue a read and ask for a round of heartbeats at once. */
static void leader_read(struct raft *r, uint64_t now, uint64_t id, uint64_t from)
{
	struct raft_pending_read p = {id, from, 0, raft__next_stamp(r, now), 0, false};

	if (push_read(r, &p) != 0) {
		answer(r, &p, 0);
		return;
	}
	r->heartbeat_at = now;
	raft__reads_check(r, now);
}

void raft_read_index(struct raft *r, uint64_t now, uint64_t read_id)
{
	struct raft_msg m = {.type = RAFT_MSG_READ_INDEX, .from = r->id, .read_id = read_id};
	struct raft_pending_read p = {read_id, RAFT_NONE, 0, 0, now + r->o.election_timeout_ms,
				      true};

	if (r->role == RAFT_LEADER) {
		leader_read(r, now, read_id, RAFT_NONE);
		return;
	}
	if (r->leader == RAFT_NONE || push_read(r, &p) != 0) {
		raft__emit(r, RAFT_EV_READ_FAILED, 0, read_id, 0);
		return;
	}
	m.term = r->term;
	r->io.send(r->io.data, r->leader, &m);
}

void raft__reads_check(struct raft *r, uint64_t now)
{
	uint64_t q = quorum_stamp(r);
	size_t k = 0;

	if (r->role != RAFT_LEADER)
		return;
	for (size_t i = 0; i < r->n_reads; i++) {
		struct raft_pending_read *p = &r->reads[i];

		if (r->commit >= r->term_start && p->index == 0)
			p->index = r->commit;
		if (p->index != 0 && q > p->at)
			answer(r, p, p->index);
		else
			r->reads[k++] = *p;
	}
	r->n_reads = k;
}

void raft__reads_fail_all(struct raft *r)
{
	size_t n = r->n_reads;

	r->n_reads = 0;
	for (size_t i = 0; i < n; i++)
		answer(r, &r->reads[i], 0);
}

/* Forwarded reads the leader did not answer in time fail. */
void raft__reads_expire(struct raft *r, uint64_t now)
{
	size_t k = 0;

	for (size_t i = 0; i < r->n_reads; i++) {
		if (r->reads[i].forwarded && now >= r->reads[i].deadline)
			answer(r, &r->reads[i], 0);
		else
			r->reads[k++] = r->reads[i];
	}
	r->n_reads = k;
}

void raft__recv_read_index(struct raft *r, uint64_t now, const struct raft_msg *m)
{
	struct raft_pending_read p = {m->read_id, m->from, 0, 0, 0, false};

	if (r->role != RAFT_LEADER) {
		answer(r, &p, 0);
		return;
	}
	leader_read(r, now, m->read_id, m->from);
}

void raft__recv_read_index_resp(struct raft *r, uint64_t now, const struct raft_msg *m)
{
	size_t k = 0;

	for (size_t i = 0; i < r->n_reads; i++) {
		struct raft_pending_read *p = &r->reads[i];

		if (p->forwarded && p->id == m->read_id)
			raft__emit(r, m->read_index ? RAFT_EV_READ_READY : RAFT_EV_READ_FAILED, 0,
				   p->id, m->read_index);
		else
			r->reads[k++] = *p;
	}
	r->n_reads = k;
}
