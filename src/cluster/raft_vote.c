/*
 * raft_vote: elections — RequestVote (dissertation §3.4, §3.6.1) and PreVote
 * (§9.6).  A pre-candidate asks whether it could win at term + 1 without
 * changing any term; only a majority of yes starts a real election, so a
 * node cut off by a partition does not raise the cluster's term when it
 * comes back.
 */
#include "build.h"

#include "cluster/raft_impl.h"

/* §3.6.1: is a log ending at (index, term) at least as up to date as ours? */
static bool up_to_date(const struct raft *r, uint64_t index, uint64_t term)
{
	uint64_t my_term = raft__log_term(r, raft__log_last(r));

	return term > my_term || (term == my_term && index >= raft__log_last(r));
}

static void add_grant(struct raft *r, uint64_t id)
{
	for (unsigned i = 0; i < r->n_granted; i++)
		if (r->granted[i] == id)
			return;
	if (r->n_granted < RAFT_MAX_NODES)
		r->granted[r->n_granted++] = id;
}

static unsigned grants(const struct raft *r)
{
	unsigned n = 0;

	for (unsigned i = 0; i < r->n_granted; i++)
		n += raft_is_voter(r, r->granted[i]);
	return n;
}

/* A pre-vote round that fails is tried again after a quarter to half an
 * election timeout, not a whole one: a voter refuses (ignores) it while it
 * heard the leader less than an election timeout ago (§9.6), which after a
 * leader's crash holds a little longer on a follower the leader reached
 * last; waiting a whole randomized timeout again made a failover take up
 * to three.  A pre-vote changes no term, so trying sooner disrupts
 * nothing; the election itself keeps the full randomized timeout. */
static void retry_soon(struct raft *r, uint64_t now)
{
	uint64_t q = r->o.election_timeout_ms / 4 ? r->o.election_timeout_ms / 4 : 1;

	r->election_at = now + q + r->io.random(r->io.data) % q;
}

void raft__start_election(struct raft *r, uint64_t now, bool prevote, bool transfer)
{
	const struct raft_conf *c = raft__conf_now(r);
	struct raft_msg m = {.type = RAFT_MSG_VOTE,
			     .from = r->id,
			     .prevote = prevote,
			     .transfer = transfer,
			     .sent_at = transfer ? r->transfer_stamp : 0,
			     .last_index = raft__log_last(r)};

	m.last_term = raft__log_term(r, m.last_index);
	if (r->standby) { /* a pre-vote won before the node went standby */
		raft__become_follower(r, now, r->term, RAFT_NONE);
		return;
	}
	raft__reads_fail_all(r);
	r->role = prevote ? RAFT_PRECANDIDATE : RAFT_CANDIDATE;
	r->leader = RAFT_NONE;
	r->n_granted = 0;
	if (!prevote)
		raft__set_term(r, r->term + 1, r->id);
	m.term = prevote ? r->term + 1 : r->term;
	add_grant(r, r->id);
	raft__reset_election_timer(r, now);
	if (prevote)
		retry_soon(r, now);
	raft__emit_role(r);
	if (grants(r) >= raft__quorum(r)) { /* a single voter */
		if (prevote)
			raft__start_election(r, now, false, transfer);
		else
			raft__become_leader(r, now);
		return;
	}
	for (unsigned i = 0; i < c->n_voters; i++)
		if (c->voters[i] != r->id)
			r->io.send(r->io.data, c->voters[i], &m);
}

void raft__recv_vote(struct raft *r, uint64_t now, const struct raft_msg *m)
{
	struct raft_msg reply = {
		.type = RAFT_MSG_VOTE_RESP, .from = r->id, .prevote = m->prevote, .term = r->term};
	bool ok = m->term >= r->term && up_to_date(r, m->last_index, m->last_term);

	if (m->prevote) {
		/* grant when it could win at its term: no newer term here and
		 * no leader heard lately (term_check filtered those) */
		reply.granted = ok && m->term > r->term;
		if (reply.granted)
			reply.term = m->term;
	} else {
		reply.granted =
			ok && m->term == r->term && (r->vote == RAFT_NONE || r->vote == m->from);
		if (reply.granted) {
			raft__set_term(r, r->term, m->from); /* durable before the reply */
			raft__reset_election_timer(r, now);
		}
	}
	r->io.send(r->io.data, m->from, &reply);
}

void raft__recv_vote_resp(struct raft *r, uint64_t now, const struct raft_msg *m)
{
	if (!m->granted)
		return; /* a newer term in a refusal was handled by term_check */
	if (m->prevote) {
		if (r->role != RAFT_PRECANDIDATE || m->term != r->term + 1)
			return;
		add_grant(r, m->from);
		if (grants(r) >= raft__quorum(r))
			raft__start_election(r, now, false, false);
		return;
	}
	if (r->role != RAFT_CANDIDATE || m->term != r->term)
		return;
	add_grant(r, m->from);
	if (grants(r) >= raft__quorum(r))
		raft__become_leader(r, now);
}
