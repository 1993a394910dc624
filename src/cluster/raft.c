/*
 * raft: life cycle, the log index, configurations, roles, timers and the
 * entry points; see raft.h.  Elections are in raft_vote.c, replication and
 * commit in raft_append.c, reads in raft_read.c.
 */
#include "build.h"

#include "cluster/raft_impl.h"

#include "util/alloc.h"

#include <string.h>

void raft_opts_default(struct raft_opts *o, uint64_t id)
{
	memset(o, 0, sizeof *o);
	o->id = id;
	o->election_timeout_ms = 1000;
	o->heartbeat_ms = 100;
	o->max_batch_entries = 4096;
	o->max_batch_bytes = 4u << 20;
	o->max_inflight = 64;
	o->max_inflight_bytes = 64u << 20;
	o->prevote = true;
	o->check_quorum = true;
}

/* ------------------------------------------------------------ log index */

uint64_t raft__log_last(const struct raft *r)
{
	return r->snap_index + r->n;
}

/* Term of the entry at index; 0 when the log does not describe it. */
uint64_t raft__log_term(const struct raft *r, uint64_t index)
{
	if (index == r->snap_index)
		return r->snap_term;
	if (index < r->snap_index || index > raft__log_last(r))
		return 0;
	return r->terms[index - r->snap_index - 1];
}

static int log_grow(struct raft *r)
{
	size_t cap = r->cap ? r->cap * 2 : 1024;
	uint64_t *t = sh_reallocarray(r->terms, cap, sizeof *t);
	uint32_t *s = t ? sh_reallocarray(r->sizes, cap, sizeof *s) : NULL;
	uint8_t *y = s ? sh_reallocarray(r->types, cap, sizeof *y) : NULL;

	if (t != NULL)
		r->terms = t;
	if (s != NULL)
		r->sizes = s;
	if (y == NULL)
		return SH_ENOMEM;
	r->types = y;
	r->cap = cap;
	return 0;
}

static int conf_push(struct raft *r, uint64_t index, const struct raft_conf *c)
{
	if (r->n_confs == r->confs_cap) {
		size_t cap = r->confs_cap ? r->confs_cap * 2 : 4;
		struct conf_rec *v = sh_reallocarray(r->confs, cap, sizeof *v);

		if (v == NULL)
			return SH_ENOMEM;
		r->confs = v;
		r->confs_cap = cap;
	}
	r->confs[r->n_confs].index = index;
	r->confs[r->n_confs++].conf = *c;
	return 0;
}

/* Describe entry `index` (= log_last + 1).  A configuration takes effect as
 * soon as it is in the log (dissertation §4.1). */
int raft__log_push(struct raft *r, uint64_t term, uint8_t type, uint32_t size,
		   const struct raft_conf *conf, uint64_t index)
{
	if (r->n == r->cap && log_grow(r) != 0)
		return SH_ENOMEM;
	if (type == RAFT_ENTRY_CONFIG && conf != NULL && conf_push(r, index, conf) != 0)
		return SH_ENOMEM;
	r->terms[r->n] = term;
	r->sizes[r->n] = size;
	r->types[r->n] = type;
	r->n++;
	return 0;
}

/* Forget entries >= from; configurations they held are undone. */
void raft__log_truncate(struct raft *r, uint64_t from)
{
	const struct raft_conf *before = raft__conf_now(r);
	struct raft_conf old = *before;

	if (from <= r->snap_index || from > raft__log_last(r))
		return;
	r->n = from - r->snap_index - 1;
	while (r->n_confs > 0 && r->confs[r->n_confs - 1].index >= from)
		r->n_confs--;
	if (r->durable >= from)
		r->durable = from - 1;
	if (memcmp(&old, raft__conf_now(r), sizeof old) != 0)
		raft__emit(r, RAFT_EV_CONF, 0, 0, 0);
}

const struct raft_conf *raft__conf_now(const struct raft *r)
{
	return r->n_confs > 0 ? &r->confs[r->n_confs - 1].conf : &r->snap_conf;
}

bool raft_conf_has_voter(const struct raft_conf *c, uint64_t id)
{
	for (unsigned i = 0; i < c->n_voters; i++)
		if (c->voters[i] == id)
			return true;
	return false;
}

bool raft_conf_has(const struct raft_conf *c, uint64_t id)
{
	for (unsigned i = 0; i < c->n_learners; i++)
		if (c->learners[i] == id)
			return true;
	return raft_conf_has_voter(c, id);
}

unsigned raft__quorum(const struct raft *r)
{
	return raft__conf_now(r)->n_voters / 2 + 1;
}

/* ------------------------------------------------------------ events, roles */

void raft__emit(struct raft *r, enum raft_event_type type, uint64_t peer, uint64_t read_id,
		uint64_t index)
{
	struct raft_event ev = {type, peer, read_id, index};

	if (r->io.event != NULL)
		r->io.event(r->io.data, &ev);
}

void raft__emit_role(struct raft *r)
{
	raft__emit(r, RAFT_EV_ROLE, 0, 0, 0);
}

void raft__reset_election_timer(struct raft *r, uint64_t now)
{
	uint64_t t = r->o.election_timeout_ms;

	r->election_at = now + t + r->io.random(r->io.data) % t;
}

void raft__set_term(struct raft *r, uint64_t term, uint64_t vote)
{
	if (term == r->term && vote == r->vote)
		return;
	r->term = term;
	r->vote = vote;
	r->io.save_hard_state(r->io.data, term, vote);
}

void raft__become_follower(struct raft *r, uint64_t now, uint64_t term, uint64_t leader)
{
	bool changed = r->role != RAFT_FOLLOWER || term != r->term || leader != r->leader;

	if (term > r->term) {
		raft__set_term(r, term, RAFT_NONE);
		r->leader_stamp = 0;
		r->leader_commit = 0;
	}
	if (r->role == RAFT_LEADER || leader != r->leader)
		raft__reads_fail_all(r);
	r->role = RAFT_FOLLOWER;
	r->leader = leader;
	r->leader_dead = false;
	r->transfer_to = RAFT_NONE;
	r->ack_due = false;
	if (leader != RAFT_NONE)
		r->leader_contact = now;
	raft__reset_election_timer(r, now);
	if (changed)
		raft__emit_role(r);
}

struct raft_progress *raft__peer_find(struct raft *r, uint64_t id)
{
	for (unsigned i = 0; i < r->n_peers; i++)
		if (r->peers[i].id == id)
			return &r->peers[i];
	return NULL;
}

static void progress_init(struct raft *r, struct raft_progress *p, uint64_t id, uint64_t now)
{
	memset(p, 0, sizeof *p);
	p->id = id;
	p->next = raft__log_last(r) + 1;
	p->probing = true;
	p->last_resp = now; /* a fresh leader counts everyone as heard from */
}

/* Leader: one progress per other member of the configuration, keeping what
 * is known about members that stay. */
void raft__peers_sync(struct raft *r, uint64_t now)
{
	const struct raft_conf *c = raft__conf_now(r);
	struct raft_progress *fresh = sh_calloc(RAFT_MAX_NODES * 2, sizeof *fresh);
	unsigned n = 0;
	uint64_t ids[RAFT_MAX_NODES * 2];
	unsigned n_ids = 0;

	if (fresh == NULL)
		return; /* keep the old list: the next change retries */
	for (unsigned i = 0; i < c->n_voters; i++)
		ids[n_ids++] = c->voters[i];
	for (unsigned i = 0; i < c->n_learners; i++)
		ids[n_ids++] = c->learners[i];
	for (unsigned i = 0; i < n_ids; i++) {
		struct raft_progress *old;

		if (ids[i] == r->id)
			continue;
		old = raft__peer_find(r, ids[i]);
		if (old != NULL)
			fresh[n] = *old;
		else
			progress_init(r, &fresh[n], ids[i], now);
		n++;
	}
	sh_free(r->peers);
	r->peers = fresh;
	r->n_peers = n;
}

/* Dissertation §6.4: a new leader first commits a no-op of its term, which
 * also tells it what is committed. */
void raft__become_leader(struct raft *r, uint64_t now)
{
	uint64_t index = raft__log_last(r) + 1;

	r->role = RAFT_LEADER;
	r->leader = r->id;
	r->transfer_to = RAFT_NONE;
	r->n_peers = 0;
	raft__peers_sync(r, now);
	if (raft__log_push(r, r->term, RAFT_ENTRY_NOOP, 0, NULL, index) == 0)
		r->io.append_noop(r->io.data, index, r->term);
	r->term_start = index;
	r->heartbeat_at = now + r->o.heartbeat_ms; /* the flush announces us at once */
	r->quorum_check_at = now + r->o.election_timeout_ms;
	r->dirty = true;
	raft__emit_role(r);
	raft__maybe_commit(r, now); /* a single voter commits as soon as durable */
}

/* ------------------------------------------------------------ life cycle */

static int boot_log(struct raft *r, const struct raft_boot *b)
{
	uint64_t n = b->last_index - b->snap_index;

	for (uint64_t i = 0; i < n; i++) {
		const struct raft_entry_meta *e = &b->entries[i];

		if (raft__log_push(r, e->term, e->type, e->size, e->conf, b->snap_index + 1 + i) !=
		    0)
			return SH_ENOMEM;
	}
	return 0;
}

int raft_new(const struct raft_opts *o, const struct raft_io *io, const struct raft_boot *boot,
	     uint64_t now, struct raft **out, struct sh_err *err)
{
	struct raft *r;

	if (o->id == RAFT_NONE || o->election_timeout_ms < 2 || o->heartbeat_ms < 1 ||
	    o->heartbeat_ms >= o->election_timeout_ms || o->max_inflight < 1 ||
	    o->max_inflight > RAFT_MAX_INFLIGHT || o->max_batch_entries < 1)
		return sh_err_set(err, SH_EINVAL,
				  "raft: bad options (id must be nonzero, heartbeat below the "
				  "election timeout, 1 <= max_inflight <= %d)",
				  RAFT_MAX_INFLIGHT);
	if (boot->last_index < boot->snap_index)
		return sh_err_set(
			err, SH_EINVAL, "raft: log ends (%llu) before its snapshot (%llu)",
			(unsigned long long)boot->last_index, (unsigned long long)boot->snap_index);
	if ((r = sh_calloc(1, sizeof *r)) == NULL ||
	    (r->out = sh_calloc(o->max_batch_entries, sizeof *r->out)) == NULL) {
		raft_free(r);
		return sh_err_set(err, SH_ENOMEM, "raft: out of memory");
	}
	r->o = *o;
	r->io = *io;
	r->id = o->id;
	r->term = boot->term;
	r->vote = boot->vote;
	r->snap_index = boot->snap_index;
	r->snap_term = boot->snap_term;
	if (boot->snap_conf != NULL)
		r->snap_conf = *boot->snap_conf;
	if (boot_log(r, boot) != 0) {
		raft_free(r);
		return sh_err_set(err, SH_ENOMEM, "raft: out of memory");
	}
	r->durable = boot->durable < boot->last_index ? boot->durable : boot->last_index;
	r->commit = boot->commit > r->snap_index ? boot->commit : r->snap_index;
	if (r->commit > r->durable)
		r->commit = r->durable;
	r->role = RAFT_FOLLOWER;
	raft__reset_election_timer(r, now);
	if (r->term > 0) /* it may have acknowledged a leader it no longer knows */
		r->refuse_until = now + r->o.election_timeout_ms;
	if (raft_conf(r)->n_voters == 1 && raft_conf(r)->voters[0] == r->id)
		r->election_at = now; /* a lone voter has nobody to wait for */
	*out = r;
	return 0;
}

void raft_free(struct raft *r)
{
	if (r == NULL)
		return;
	sh_free(r->terms);
	sh_free(r->sizes);
	sh_free(r->types);
	sh_free(r->confs);
	sh_free(r->peers);
	sh_free(r->reads);
	sh_free(r->out);
	sh_free(r);
}

/* ------------------------------------------------------------ timers */

/* A standby leader transfers to the voter whose log is longest. */
static void hand_over(struct raft *r, uint64_t now)
{
	struct raft_progress *best = NULL;

	for (unsigned i = 0; i < r->n_peers; i++)
		if (raft_is_voter(r, r->peers[i].id) &&
		    (best == NULL || r->peers[i].match > best->match))
			best = &r->peers[i];
	if (best != NULL)
		raft_transfer(r, now, best->id);
}

void raft_set_standby(struct raft *r, uint64_t now, bool standby)
{
	r->standby = standby;
	if (standby && r->role == RAFT_LEADER && r->transfer_to == RAFT_NONE)
		hand_over(r, now);
	else if (standby && r->role != RAFT_LEADER && r->role != RAFT_FOLLOWER)
		raft__become_follower(r, now, r->term, RAFT_NONE); /* stop campaigning */
}

bool raft_standby(const struct raft *r)
{
	return r->standby;
}

static void leader_tick(struct raft *r, uint64_t now)
{
	if (r->transfer_to != RAFT_NONE && now >= r->transfer_until) {
		/* the transfer failed: lead again, but the voters may have
		 * granted the target's votes (a transfer's votes ignore the
		 * lease), so only acks of messages sent from now on count */
		r->transfer_to = RAFT_NONE;
		r->lease_floor = raft__next_stamp(r, now);
	}
	if (now >= r->quorum_check_at) {
		unsigned heard = raft_is_voter(r, r->id) ? 1 : 0;

		for (unsigned i = 0; i < r->n_peers; i++)
			heard += raft_is_voter(r, r->peers[i].id) &&
				 now - r->peers[i].last_resp < r->o.election_timeout_ms;
		r->quorum_check_at = now + r->o.election_timeout_ms;
		/* CheckQuorum (dissertation §6.2): a leader that has not heard
		 * from a majority within an election timeout steps down */
		if (r->o.check_quorum && heard < raft__quorum(r)) {
			raft__become_follower(r, now, r->term, RAFT_NONE);
			return;
		}
	}
	raft__check_stalls(r, now);
	if (r->standby && r->transfer_to == RAFT_NONE)
		hand_over(r, now);
	for (unsigned i = 0; i < r->n_peers; i++) /* a lost snapshot is asked for again */
		if (r->peers[i].snapshotting &&
		    now - r->peers[i].snap_at > 2 * (uint64_t)r->o.election_timeout_ms)
			r->peers[i].snapshotting = false;
	if (now >= r->heartbeat_at) {
		raft__broadcast(r, now, true);
		r->heartbeat_at = now + r->o.heartbeat_ms;
	}
}

void raft_tick(struct raft *r, uint64_t now)
{
	raft__reads_expire(r, now);
	if (r->role == RAFT_LEADER) {
		leader_tick(r, now);
		return;
	}
	if (now < r->election_at)
		return;
	if (!raft_is_voter(r, r->id) || r->standby) {
		raft__reset_election_timer(r, now); /* learners never campaign */
		return;
	}
	raft__start_election(r, now, r->o.prevote, false);
}

uint64_t raft_next_deadline(const struct raft *r)
{
	uint64_t d = UINT64_MAX;

	for (size_t i = 0; i < r->n_reads; i++)
		if (r->reads[i].forwarded && r->reads[i].deadline < d)
			d = r->reads[i].deadline;
	if (r->role != RAFT_LEADER)
		return r->election_at < d ? r->election_at : d;
	if (r->heartbeat_at < d)
		d = r->heartbeat_at;
	if (r->quorum_check_at < d)
		d = r->quorum_check_at;
	if (r->transfer_to != RAFT_NONE && r->transfer_until < d)
		d = r->transfer_until;
	return d;
}

/* ------------------------------------------------------------ inputs */

/* Does this node hear a leader, so that it must refuse votes (§4.2.3,
 * §9.6)?  The lease (§6.4.1, raft_read.c) rests on it: a voter that
 * acknowledged the leader refuses votes for an election timeout after.
 * The leader hears itself; a node that restarted refuses for an election
 * timeout (it may have acknowledged a leader it forgot); membership's
 * verdict that the leader is dead only makes a follower stand sooner. */
static bool hears_leader(const struct raft *r, uint64_t now)
{
	if (r->role == RAFT_LEADER || now < r->refuse_until)
		return true;
	/* not r->leader: a node that stands forgets its leader, not when it
	 * last heard one */
	return r->leader_contact != 0 && now - r->leader_contact < r->o.election_timeout_ms;
}

/* A message of a newer term: follow it (dissertation §3.3), except for
 * vote requests that would disrupt a live leader (§4.2.3, §9.6). */
static bool term_check(struct raft *r, uint64_t now, const struct raft_msg *m)
{
	bool is_vote = m->type == RAFT_MSG_VOTE;

	if (m->term > r->term) {
		/* a transfer's vote may pass the refusal, unless this voter heard
		 * the leader after the transfer's deadline (the leader may lead
		 * again, on a lease from our acks) */
		if (is_vote && hears_leader(r, now) &&
		    (!m->transfer || r->leader_stamp >= m->sent_at))
			return false; /* we still hear a leader: not disrupted */
		if (is_vote && m->prevote)
			return true; /* a pre-vote does not change terms */
		if (m->type == RAFT_MSG_VOTE_RESP && m->prevote && m->granted)
			return true; /* granted pre-vote at the future term */
		raft__become_follower(r, now, m->term,
				      m->type == RAFT_MSG_APPEND ? m->from : RAFT_NONE);
	}
	return true;
}

void raft_recv(struct raft *r, uint64_t now, const struct raft_msg *m)
{
	if (!term_check(r, now, m))
		return;
	switch (m->type) {
	case RAFT_MSG_VOTE: raft__recv_vote(r, now, m); break;
	case RAFT_MSG_VOTE_RESP: raft__recv_vote_resp(r, now, m); break;
	case RAFT_MSG_APPEND: raft__recv_append(r, now, m); break;
	case RAFT_MSG_APPEND_RESP: raft__recv_append_resp(r, now, m); break;
	case RAFT_MSG_TIMEOUT_NOW:
		/* not once the leader went on past the transfer's deadline */
		if (m->term == r->term && m->from == r->leader && raft_is_voter(r, r->id) &&
		    !r->standby && r->leader_stamp < m->sent_at) {
			r->transfer_stamp = m->sent_at;
			raft__start_election(r, now, false, true);
		}
		break;
	case RAFT_MSG_READ_INDEX: raft__recv_read_index(r, now, m); break;
	case RAFT_MSG_READ_INDEX_RESP: raft__recv_read_index_resp(r, now, m); break;
	}
}

void raft_persisted(struct raft *r, uint64_t now, uint64_t index)
{
	if (index > raft__log_last(r))
		index = raft__log_last(r);
	if (index <= r->durable)
		return;
	r->durable = index;
	if (r->role == RAFT_LEADER)
		raft__maybe_commit(r, now);
	else if (r->ack_due)
		raft__follower_ack(r);
}

void raft_flush(struct raft *r, uint64_t now)
{
	if (r->role != RAFT_LEADER || !r->dirty)
		return;
	r->dirty = false;
	raft__broadcast(r, now, false);
}

int raft_propose(struct raft *r, uint64_t now, enum raft_entry_type type, uint32_t size,
		 uint64_t *index, uint64_t *term)
{
	uint64_t i = raft__log_last(r) + 1;

	if (r->role != RAFT_LEADER || r->transfer_to != RAFT_NONE)
		return SH_EUNAVAIL;
	if (type == RAFT_ENTRY_CONFIG)
		return SH_EINVAL; /* raft_propose_conf */
	if (raft__log_push(r, r->term, (uint8_t)type, size, NULL, i) != 0)
		return SH_ENOMEM;
	*index = i;
	*term = r->term;
	r->dirty = true;
	return 0;
}

/* 0: not a member, 1: learner, 2: voter. */
static int role_in(const struct raft_conf *c, uint64_t id)
{
	return raft_conf_has_voter(c, id) ? 2 : raft_conf_has(c, id) ? 1 : 0;
}

/* How many servers change role (join, leave, promoted, demoted). */
static unsigned conf_distance(const struct raft_conf *a, const struct raft_conf *b)
{
	unsigned d = 0;

	for (unsigned i = 0; i < a->n_voters; i++)
		d += role_in(b, a->voters[i]) != 2;
	for (unsigned i = 0; i < a->n_learners; i++)
		d += role_in(b, a->learners[i]) != 1;
	for (unsigned i = 0; i < b->n_voters; i++)
		d += role_in(a, b->voters[i]) == 0;
	for (unsigned i = 0; i < b->n_learners; i++)
		d += role_in(a, b->learners[i]) == 0;
	return d;
}

int raft_propose_conf(struct raft *r, uint64_t now, const struct raft_conf *c, uint32_t size,
		      uint64_t *index, uint64_t *term)
{
	uint64_t i = raft__log_last(r) + 1;

	if (r->role != RAFT_LEADER || r->transfer_to != RAFT_NONE)
		return SH_EUNAVAIL;
	/* one change at a time, and only once this term has committed an
	 * entry (dissertation §4.1 and its 2015 erratum on single-server
	 * changes) */
	if (r->commit < r->term_start ||
	    (r->n_confs > 0 && r->confs[r->n_confs - 1].index > r->commit))
		return SH_EBUSY;
	if (c->n_voters < 1 || c->n_voters + c->n_learners > RAFT_MAX_NODES ||
	    conf_distance(raft__conf_now(r), c) > 1)
		return SH_EINVAL;
	if (raft__log_push(r, r->term, RAFT_ENTRY_CONFIG, size, c, i) != 0)
		return SH_ENOMEM;
	raft__peers_sync(r, now);
	raft__emit(r, RAFT_EV_CONF, 0, 0, 0);
	*index = i;
	*term = r->term;
	r->dirty = true;
	return 0;
}

uint64_t raft_peer_silence(const struct raft *r, uint64_t peer, uint64_t now)
{
	const struct raft_progress *p = raft__peer_find((struct raft *)(uintptr_t)r, peer);

	if (r->role != RAFT_LEADER || p == NULL)
		return UINT64_MAX;
	return now > p->last_resp ? now - p->last_resp : 0;
}

/* The deadline travels as a stamp of the leader's clock, which voters
 * compare with the stamps of the leader's messages they saw: a TimeoutNow
 * handled after the leader gave the transfer up — and renewed its lease
 * with acks of later messages — must not make them ignore that lease. */
void raft__send_timeout_now(struct raft *r, uint64_t to)
{
	struct raft_msg m = {.type = RAFT_MSG_TIMEOUT_NOW,
			     .term = r->term,
			     .from = r->id,
			     .sent_at = r->transfer_until << 16};

	r->io.send(r->io.data, to, &m);
}

int raft_transfer(struct raft *r, uint64_t now, uint64_t to)
{
	struct raft_progress *p = raft__peer_find(r, to);

	if (r->role != RAFT_LEADER)
		return SH_EUNAVAIL;
	if (p == NULL || !raft_is_voter(r, to))
		return SH_EINVAL;
	r->transfer_to = to;
	r->transfer_until = now + r->o.election_timeout_ms;
	if (p->match == raft__log_last(r)) {
		raft__send_timeout_now(r, to);
	} else {
		raft__send_append(r, now, p, false);
	}
	return 0;
}

void raft_peer_dead(struct raft *r, uint64_t now, uint64_t id)
{
	if (r->role == RAFT_LEADER || id != r->leader || id == RAFT_NONE)
		return;
	if (now - r->leader_contact < r->o.election_timeout_ms)
		return; /* we still hear it (membership's datagrams fail, not our link) */
	r->leader_dead = true;
	/* elect soon, not a timeout later; but membership tells every
	 * follower at about the same moment, and followers that all stand at
	 * once split the vote and wait a whole timeout again: spread them
	 * over two heartbeats */
	if (raft_is_voter(r, r->id))
		r->election_at =
			now + r->io.random(r->io.data) % (2 * (uint64_t)r->o.heartbeat_ms + 1);
}

void raft_leader_link_lost(struct raft *r, uint64_t now, uint64_t id)
{
	uint64_t lease_end = r->leader_contact + r->o.election_timeout_ms, at;

	if (r->role == RAFT_LEADER || id != r->leader || id == RAFT_NONE ||
	    !raft_is_voter(r, r->id) || r->standby)
		return;
	/* never before the lease ends: a voter that heard the leader within
	 * an election timeout grants no vote, and neither does this one
	 * stand; spread over two heartbeats, as raft_peer_dead, so that the
	 * followers that all saw the stream end do not split the vote */
	at = (lease_end > now ? lease_end : now) +
	     r->io.random(r->io.data) % (2 * (uint64_t)r->o.heartbeat_ms + 1);
	if (at < r->election_at)
		r->election_at = at;
}

/* ------------------------------------------------------------ snapshots */

void raft_compacted(struct raft *r, uint64_t index)
{
	uint64_t drop, term;
	size_t keep_conf = 0;

	if (index <= r->snap_index || index > r->commit || index > raft__log_last(r))
		return;
	term = raft__log_term(r, index);
	drop = index - r->snap_index;
	/* the configuration at index becomes the snapshot's */
	for (size_t i = 0; i < r->n_confs; i++)
		if (r->confs[i].index <= index) {
			r->snap_conf = r->confs[i].conf;
			keep_conf = i + 1;
		}
	if (keep_conf && keep_conf < r->n_confs)
		memmove(r->confs, r->confs + keep_conf,
			(r->n_confs - keep_conf) * sizeof *r->confs);
	r->n_confs -= keep_conf;
	if (drop && drop < r->n) {
		memmove(r->terms, r->terms + drop, (r->n - drop) * sizeof *r->terms);
		memmove(r->sizes, r->sizes + drop, (r->n - drop) * sizeof *r->sizes);
		memmove(r->types, r->types + drop, (r->n - drop) * sizeof *r->types);
	}
	r->n -= drop;
	r->snap_index = index;
	r->snap_term = term;
}

void raft_snapshot_sent(struct raft *r, uint64_t now, uint64_t peer, uint64_t index)
{
	struct raft_progress *p = raft__peer_find(r, peer);

	if (r->role != RAFT_LEADER || p == NULL)
		return;
	p->snapshotting = false;
	if (index > p->match)
		p->match = index;
	p->next = p->match + 1;
	p->probing = true;
	p->last_resp = now;
	r->dirty = true;
}

bool raft_snapshot_installed(struct raft *r, uint64_t now, uint64_t index, uint64_t term,
			     const struct raft_conf *conf)
{
	bool keep = index <= raft__log_last(r) && index > r->snap_index &&
		    raft__log_term(r, index) == term;

	if (keep) {
		uint64_t commit = r->commit;

		r->commit = index > commit ? index : commit; /* raft_compacted needs it */
		raft_compacted(r, index);
		r->snap_conf = *conf;
		if (r->durable < index)
			r->durable = index;
		if (r->match_hint < index)
			r->match_hint = index;
		return true;
	}
	r->n = 0;
	r->n_confs = 0;
	r->snap_index = index;
	r->snap_term = term;
	r->snap_conf = *conf;
	r->durable = index;
	r->match_hint = index;
	if (r->commit < index)
		r->commit = index;
	raft__emit(r, RAFT_EV_CONF, 0, 0, 0);
	return false;
}

/* ------------------------------------------------------------ state */

enum raft_role raft_role(const struct raft *r)
{
	return r->role;
}

uint64_t raft_term(const struct raft *r)
{
	return r->term;
}

uint64_t raft_leader(const struct raft *r)
{
	return r->leader;
}

uint64_t raft_commit_index(const struct raft *r)
{
	return r->commit;
}

uint64_t raft_leader_commit(const struct raft *r)
{
	return r->leader_commit > r->commit ? r->leader_commit : r->commit;
}

uint64_t raft_last_index(const struct raft *r)
{
	return raft__log_last(r);
}

uint64_t raft_durable_index(const struct raft *r)
{
	return r->durable;
}

uint64_t raft_term_at(const struct raft *r, uint64_t index)
{
	return raft__log_term(r, index);
}

const struct raft_conf *raft_conf(const struct raft *r)
{
	return raft__conf_now(r);
}

bool raft_is_voter(const struct raft *r, uint64_t id)
{
	return raft_conf_has_voter(raft__conf_now(r), id);
}

uint64_t raft_match(const struct raft *r, uint64_t peer)
{
	const struct raft_progress *p;

	if (peer == r->id)
		return r->durable;
	p = raft__peer_find((struct raft *)(uintptr_t)r, peer);
	return p != NULL ? p->match : 0;
}

unsigned raft_acked(const struct raft *r, uint64_t index)
{
	const struct raft_conf *c = raft__conf_now(r);
	unsigned n = 0;

	for (unsigned i = 0; i < c->n_voters; i++)
		n += raft_match(r, c->voters[i]) >= index;
	return n;
}

const char *raft_role_name(enum raft_role role)
{
	static const char *const names[] = {"follower", "precandidate", "candidate", "leader"};

	return role <= RAFT_LEADER ? names[role] : "?";
}

const char *raft_msg_name(enum raft_msg_type t)
{
	static const char *const names[] = {"?",          "vote",           "vote-resp",
					    "append",     "append-resp",    "timeout-now",
					    "read-index", "read-index-resp"};

	return t <= RAFT_MSG_READ_INDEX_RESP ? names[t] : "?";
}
