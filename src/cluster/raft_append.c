/*
 * raft_append: log replication — AppendEntries (dissertation §3.5), commit by
 * counting (§3.6.2), and the leader's per-follower flow control.
 *
 * A follower is "probing" until the leader knows where their logs agree:
 * one AppendEntries at a time, stepping back on each refusal (using the
 * follower's hint to skip a whole conflicting term).  Then it is
 * "replicating": batches are pipelined while the in-flight count and bytes
 * stay under their limits, each batch taking everything queued up to
 * max_batch_entries / max_batch_bytes — small batches at low load, big
 * ones under load, never a fixed delay.  Heartbeats name the last entry
 * the follower is known to hold, so they are never refused in normal
 * operation, and carry the leader's clock (sent_at), which responses echo:
 * that is what leases and ReadIndex count (raft_read.c).
 */
#include "build.h"

#include "cluster/raft_impl.h"

#include <stdlib.h>

/* ------------------------------------------------------------ leader side */

static const struct raft_conf *conf_at(const struct raft *r, uint64_t index)
{
	for (size_t i = 0; i < r->n_confs; i++)
		if (r->confs[i].index == index)
			return &r->confs[i].conf;
	return NULL;
}

static void inflight_clear(struct raft_progress *p)
{
	p->fl_head = p->fl_n = 0;
	p->inflight_bytes = 0;
}

static void inflight_push(struct raft_progress *p, uint64_t last, uint64_t bytes, uint64_t now)
{
	unsigned i = (p->fl_head + p->fl_n) % RAFT_MAX_INFLIGHT;

	p->fl_last[i] = last;
	p->fl_bytes[i] = bytes;
	p->fl_time[i] = now;
	p->fl_n++;
	p->inflight_bytes += bytes;
}

/* Forget the batches the follower now holds. */
static void inflight_ack(struct raft_progress *p, uint64_t match)
{
	while (p->fl_n > 0 && p->fl_last[p->fl_head] <= match) {
		p->inflight_bytes -= p->fl_bytes[p->fl_head];
		p->fl_head = (p->fl_head + 1) % RAFT_MAX_INFLIGHT;
		p->fl_n--;
	}
}

static bool room(const struct raft *r, const struct raft_progress *p)
{
	if (p->probing)
		return p->fl_n == 0;
	return p->fl_n < r->o.max_inflight && p->inflight_bytes < r->o.max_inflight_bytes;
}

/* Describe up to a batch of entries from first into r->out; their bytes. */
static size_t batch(struct raft *r, uint64_t first, uint64_t *bytes)
{
	size_t n = 0;

	*bytes = 0;
	for (uint64_t i = first; i <= raft__log_last(r) && n < r->o.max_batch_entries; i++, n++) {
		size_t k = i - r->snap_index - 1;

		if (n > 0 && *bytes + r->sizes[k] > r->o.max_batch_bytes)
			break;
		r->out[n] = (struct raft_entry_meta){
			r->terms[k], r->types[k], r->sizes[k],
			r->types[k] == RAFT_ENTRY_CONFIG ? conf_at(r, i) : NULL};
		*bytes += r->sizes[k];
	}
	return n;
}

void raft__send_append(struct raft *r, uint64_t now, struct raft_progress *p, bool heartbeat)
{
	struct raft_msg m = {
		.type = RAFT_MSG_APPEND, .term = r->term, .from = r->id, .commit = r->commit};
	uint64_t bytes = 0;

	if (p->snapshotting)
		return;
	if (p->next <= r->snap_index) { /* what it needs next was compacted away */
		p->snapshotting = true;
		p->snap_at = now;
		raft__emit(r, RAFT_EV_SNAPSHOT_NEEDED, p->id, 0, 0);
		return;
	}
	if (heartbeat && !p->probing && p->match >= r->snap_index) {
		m.prev_index = p->match; /* known to be there: never refused */
	} else {
		m.prev_index = p->next - 1;
		if (!heartbeat) {
			if (!room(r, p))
				return;
			m.n = batch(r, p->next, &bytes);
			if (m.n == 0 && p->sent_commit >= r->commit && !p->probing)
				return; /* nothing new, not even the commit index */
		}
	}
	m.prev_term = raft__log_term(r, m.prev_index);
	m.entries = r->out;
	m.sent_at = raft__next_stamp(r, now);
	r->io.send(r->io.data, p->id, &m);
	p->last_sent = now;
	p->sent_commit = r->commit;
	if (m.n > 0) {
		inflight_push(p, m.prev_index + m.n, bytes, now);
		if (!p->probing)
			p->next = m.prev_index + m.n + 1;
	} else if (p->probing && !heartbeat) {
		inflight_push(p, m.prev_index, 0, now); /* an empty probe awaits its answer */
	}
}

/* Heartbeats to every follower, or (not heartbeat) everything that is due
 * and fits their flow control. */
void raft__broadcast(struct raft *r, uint64_t now, bool heartbeat)
{
	for (unsigned i = 0; i < r->n_peers; i++) {
		struct raft_progress *p = &r->peers[i];

		if (heartbeat) {
			if (p->probing)
				inflight_clear(p); /* a lost probe is sent again */
			raft__send_append(r, now, p, !p->probing);
			continue;
		}
		raft__broadcast_one(r, now, p);
	}
}

/* Batches lost on the way (a follower that was down, a broken connection,
 * a lossy link) are never acknowledged: when the oldest has waited an
 * election timeout, go back to probing from what the follower holds. */
void raft__check_stalls(struct raft *r, uint64_t now)
{
	for (unsigned i = 0; i < r->n_peers; i++) {
		struct raft_progress *p = &r->peers[i];

		if (p->fl_n == 0 || now - p->fl_time[p->fl_head] < r->o.election_timeout_ms)
			continue;
		inflight_clear(p);
		p->probing = true;
		p->next = p->match + 1;
		r->dirty = true;
	}
}

static int cmp_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x < y) - (x > y);
}

void raft__set_commit(struct raft *r, uint64_t index)
{
	if (index <= r->commit)
		return;
	r->commit = index;
	r->io.commit(r->io.data, index);
}

/* §3.6.2: the highest index a majority of voters hold durably, committed
 * only when it is of the current term. */
void raft__maybe_commit(struct raft *r, uint64_t now)
{
	const struct raft_conf *c = raft__conf_now(r);
	uint64_t m[RAFT_MAX_NODES], n;

	if (r->role != RAFT_LEADER)
		return;
	for (unsigned i = 0; i < c->n_voters; i++)
		m[i] = raft_match(r, c->voters[i]);
	qsort(m, c->n_voters, sizeof *m, cmp_desc);
	n = m[raft__quorum(r) - 1];
	if (n > r->commit && raft__log_term(r, n) == r->term) {
		raft__set_commit(r, n);
		r->dirty = true;
	}
	raft__reads_check(r, now);
	/* §4.2.2: a leader that committed its own removal steps down */
	if (!raft_conf_has_voter(c, r->id) &&
	    (r->n_confs == 0 || r->confs[r->n_confs - 1].index <= r->commit))
		raft__become_follower(r, now, r->term, RAFT_NONE);
}

static void on_success(struct raft *r, uint64_t now, struct raft_progress *p, uint64_t match)
{
	if (match > p->match) {
		p->match = match;
		raft__emit(r, RAFT_EV_PROGRESS, p->id, 0, 0);
	}
	inflight_ack(p, p->match);
	if (p->probing) {
		p->probing = false;
		inflight_clear(p);
		p->next = p->match + 1;
	} else if (p->next <= p->match) {
		p->next = p->match + 1;
	}
	raft__maybe_commit(r, now);
	if (r->role != RAFT_LEADER)
		return;
	if (r->transfer_to == p->id && p->match == raft__log_last(r))
		raft__send_timeout_now(r, p->id);
	raft__broadcast_one(r, now, p);
}

void raft__broadcast_one(struct raft *r, uint64_t now, struct raft_progress *p)
{
	uint64_t before;

	do {
		before = p->next;
		raft__send_append(r, now, p, false);
	} while (!p->probing && p->next > before && p->next <= raft__log_last(r));
}

void raft__recv_append_resp(struct raft *r, uint64_t now, const struct raft_msg *m)
{
	struct raft_progress *p;

	if (r->role != RAFT_LEADER || m->term != r->term ||
	    (p = raft__peer_find(r, m->from)) == NULL)
		return;
	p->last_resp = now;
	if (m->sent_at > p->ack_time && m->sent_at <= r->stamp)
		p->ack_time = m->sent_at;
	if (m->success) {
		on_success(r, now, p, m->match);
		return;
	}
	if (m->hint <= p->match)
		return; /* a refusal from before what we now know: stale */
	p->next = m->hint < p->next ? m->hint : p->next - 1;
	if (p->next <= p->match)
		p->next = p->match + 1;
	p->probing = true;
	inflight_clear(p);
	raft__send_append(r, now, p, false);
}

/* ------------------------------------------------------------ follower side */

void raft__follower_ack(struct raft *r)
{
	struct raft_msg m = {.type = RAFT_MSG_APPEND_RESP,
			     .term = r->term,
			     .from = r->id,
			     .success = true,
			     .sent_at = r->ack_sent_at};

	m.match = r->match_hint < r->durable ? r->match_hint : r->durable;
	r->ack_due = r->durable < r->match_hint; /* answer again once durable */
	if (r->leader != RAFT_NONE)
		r->io.send(r->io.data, r->leader, &m);
}

static void refuse(struct raft *r, const struct raft_msg *m, uint64_t hint)
{
	struct raft_msg reply = {.type = RAFT_MSG_APPEND_RESP,
				 .term = r->term,
				 .from = r->id,
				 .hint = hint,
				 .sent_at = m->sent_at};

	r->io.send(r->io.data, m->from, &reply);
}

/* The first index of the run of entries of prev's term: the leader may skip
 * the whole run (dissertation §3.5, the optimization at its end). */
static uint64_t conflict_hint(const struct raft *r, uint64_t prev)
{
	uint64_t t = raft__log_term(r, prev), i = prev;

	while (i > r->snap_index + 1 && i > r->commit + 1 && raft__log_term(r, i - 1) == t)
		i--;
	return i;
}

/* Append the entries of m we do not have; truncate on conflict. */
static int take_entries(struct raft *r, const struct raft_msg *m)
{
	for (size_t k = 0; k < m->n; k++) {
		uint64_t idx = m->prev_index + 1 + k;
		uint64_t t = raft__log_term(r, idx);

		if (idx <= r->snap_index || (t != 0 && t == m->entries[k].term))
			continue;
		if (idx <= raft__log_last(r)) {
			if (idx <= r->commit)
				return SH_ECORRUPT; /* a leader contradicts a commit: a bug */
			raft__log_truncate(r, idx);
			r->io.truncate(r->io.data, idx);
		}
		for (size_t j = k; j < m->n; j++) {
			const struct raft_entry_meta *e = &m->entries[j];

			if (raft__log_push(r, e->term, e->type, e->size, e->conf,
					   m->prev_index + 1 + j) != 0) {
				/* the driver appends nothing: keep the core's log
				 * as long as its, the leader sends again */
				raft__log_truncate(r, idx);
				return SH_ENOMEM;
			}
		}
		r->io.append(r->io.data, idx, m->n - k);
		break;
	}
	return 0;
}

/* The log agrees with this leader's up to `last`.  What an earlier
 * message of the same leader and term showed stays true (its log only
 * grows within a term, and our entries up to there match it), so a
 * heartbeat naming an older point never lowers the hint: lowering it
 * would drop the acknowledgement owed once those entries are durable.
 * A new leader or term starts over. */
static void raise_match_hint(struct raft *r, uint64_t leader, uint64_t last)
{
	if (r->hint_term != r->term || r->hint_leader != leader) {
		r->hint_term = r->term;
		r->hint_leader = leader;
		r->match_hint = 0;
	}
	if (last > r->match_hint)
		r->match_hint = last;
	if (r->match_hint > raft__log_last(r))
		r->match_hint = raft__log_last(r);
	if (r->match_hint < r->snap_index)
		r->match_hint = r->snap_index;
}

void raft__recv_append(struct raft *r, uint64_t now, const struct raft_msg *m)
{
	if (m->term < r->term) {
		refuse(r, m, 0); /* our term in the reply makes a stale leader step down */
		return;
	}
	if (r->role != RAFT_FOLLOWER || r->leader != m->from)
		raft__become_follower(r, now, r->term, m->from);
	r->leader_contact = now;
	r->leader_dead = false;
	if (m->sent_at > r->leader_stamp)
		r->leader_stamp = m->sent_at;
	if (m->commit > r->leader_commit)
		r->leader_commit = m->commit;
	raft__reset_election_timer(r, now);
	if (m->prev_index > raft__log_last(r)) {
		refuse(r, m, raft__log_last(r) + 1);
		return;
	}
	if (m->prev_index >= r->snap_index && raft__log_term(r, m->prev_index) != m->prev_term) {
		refuse(r, m, conflict_hint(r, m->prev_index));
		return;
	}
	if (take_entries(r, m) != 0)
		return; /* out of memory: no answer, the leader will send again */
	raise_match_hint(r, m->from, m->prev_index + m->n);
	raft__set_commit(r, m->commit < r->match_hint ? m->commit : r->match_hint);
	r->ack_due = true;
	r->ack_sent_at = m->sent_at;
	raft__follower_ack(r);
}
