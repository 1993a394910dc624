/*
 * node_write: the write path (see node.h) — proposing at the leader,
 * waiting for the ack level, waiting for a leader; forwarding is in
 * node_fwd.c.
 *
 * A write is a struct pwrite on one list at a time:
 *
 *   wait_leader  no leader known, or the link to it is down: dispatched
 *                again when a leader appears and on every tick;
 *   wait_gate    at the leader, behind a collection create or drop that
 *                is not applied yet: the leader checks a write against its
 *                applied state, which must hold every such entry of the
 *                log for the check to be exact (FIFO, so order is kept);
 *   proposed     in the log at (term, index), waiting for its ack level;
 *   forwarded    sent to the leader (node_fwd.c), waiting for its answer.
 *
 * Outcomes (doc/consistency.md, "Outcomes").  A write fails with
 * SH_EUNAVAIL, SH_ESHUTDOWN or a check's error only when it is certain
 * never to be applied: it was never proposed nor handed to a leader.  Once
 * it may be in some log, a failure is SH_EUNKNOWN (or SH_ETIMEDOUT at its
 * deadline): its entry was replaced here by a new leader's (another node
 * may still hold it and commit it: Raft paper, figure 8), this node
 * stopped leading before the level held, the leader it was forwarded to
 * changed, or the node stopped.  A deadline gives UNAVAILABLE when no
 * leader was found, DEADLINE_EXCEEDED otherwise.
 */
#include "build.h"

#include "cluster/node_impl.h"

#include "storage/db.h"
#include "util/alloc.h"
#include "util/log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------ completing */

void node_write_result(struct node *n, node_done_fn done, void *arg, int rv,
		       const struct sh_err *err, uint64_t term, uint64_t index, size_t affected)
{
	struct node_result r = {.rv = rv, .term = term, .index = index, .affected = affected};

	if (rv != 0 && err != NULL)
		r.err = *err;
	else if (rv != 0)
		sh_err_set(&r.err, rv, "write failed");
	r.leader = n->raft != NULL ? raft_leader(n->raft) : 0;
	r.leader_address = node_client_address(n, r.leader);
	done(arg, &r);
}

static void w_free(struct pwrite *w)
{
	if (w->decoded)
		entry_release(&w->entry);
	sh_free(w);
}

/* Complete w (off every list) and free it. */
void node_write_finish(struct node *n, struct pwrite *w, int rv, const struct sh_err *err)
{
	n->n_pending--;
	node_write_result(n, w->done, w->arg, rv, err, w->term, w->index, w->affected);
	w_free(w);
}

static void finishf(struct node *n, struct pwrite *w, int rv, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void finishf(struct node *n, struct pwrite *w, int rv, const char *fmt, ...)
{
	struct sh_err err;
	va_list ap;

	va_start(ap, fmt);
	sh_err_setv(&err, rv, fmt, ap);
	va_end(ap);
	node_write_finish(n, w, rv, &err);
}

/* Take the whole list *head. */
static struct pwrite *take(struct pwrite **head)
{
	struct pwrite *l = *head;

	*head = NULL;
	return l;
}

static void push_tail(struct pwrite **head, struct pwrite *w)
{
	while (*head != NULL)
		head = &(*head)->next;
	w->next = NULL;
	*head = w;
}

/* ------------------------------------------------------------ proposing */

/* A voter is down for `ack all` when membership says so or when it has
 * not answered the leader for three heartbeats (membership takes seconds
 * to decide; a write should not wait for it). */
static uint64_t voter_down(struct node *n)
{
	const struct raft_conf *c = raft_conf(n->raft);
	uint64_t quiet = 3 * (uint64_t)n->o.raft.heartbeat_ms, now = node_now();

	for (unsigned i = 0; i < c->n_voters; i++)
		if (c->voters[i] != n->o.id &&
		    (!node_alive(n, c->voters[i]) ||
		     raft_peer_silence(n->raft, c->voters[i], now) > quiet))
			return c->voters[i];
	return 0;
}

static int all_voters_alive(struct node *n, struct sh_err *err)
{
	uint64_t id = voter_down(n);

	if (id != 0)
		return sh_err_set(err, SH_EUNAVAIL,
				  "ack all: voter %016" PRIx64 " is down (use quorum)", id);
	return 0;
}

/* The record b holds: its type and body length. */
static void record_of(const struct wal_buf *b, uint8_t *type, uint32_t *len)
{
	struct wal_rec r;
	size_t pos = 0;

	wal_buf_next(b, &pos, &r);
	*type = r.type;
	*len = r.len;
}

/* The log time this leader stamps on a write with a session: the log time
 * of its applied state when its term began, plus its monotonic clock
 * since — never its wall clock, which a node may have wrong by hours (a
 * jump would expire every session at once: session.h). */
static uint64_t log_time(struct node *n)
{
	uint64_t now = node_now();

	if (n->lt_term != raft_term(n->raft)) {
		n->lt_term = raft_term(n->raft);
		n->lt_base = store_log_time(db_store(n->o.db));
		n->lt_mono = now;
	}
	/* never below the base: a clock that stepped back would stamp a time
	 * far in the future once wrapped, and every session would expire */
	return n->lt_base + (now > n->lt_mono ? now - n->lt_mono : 0);
}

/* Put w in the log: check, encode at the next index, append.  A write
 * with a session gets the log time here (log_time). */
static int propose(struct node *n, struct pwrite *w, struct sh_err *err)
{
	uint64_t index = raft_last_index(n->raft) + 1, term = raft_term(n->raft), i, t;
	struct entry e = *w->e;
	struct wal_buf *b;
	uint32_t len;
	uint8_t type;
	int rv;

	if (e.session.set)
		e.session.time_ms = log_time(n);
	if ((rv = db_prepare(n->o.db, &e, term, index, &b, &w->affected, err)) != 0)
		return rv;
	record_of(b, &type, &len);
	rv = raft_propose(n->raft, node_now(), (enum raft_entry_type)type, len, &i, &t);
	if (rv == 0 && (i != index || t != term))
		rv = sh_err_set(err, SH_EINVAL, "raft put the entry at %" PRIu64 ", not %" PRIu64,
				i, index);
	else if (rv != 0)
		sh_err_set(err, rv, "this node is handing leadership over");
	if (rv == 0)
		rv = node_log_append_buf(n, b, err);
	wal_buf_unref(b);
	if (rv == 0) {
		w->term = term;
		w->index = index;
	}
	return rv;
}

/* A full disk (node_full.c): refused before it is proposed anywhere. */
static void refuse_full(struct node *n, struct pwrite *w)
{
	finishf(n, w, SH_ENOSPC,
		"this node's disk is full: it is read-only (it serves reads) until there is "
		"room for its log again");
}

/* A retried write the applied state already holds the answer to (its
 * session's result, or a mismatch): answered without a new entry.  The
 * first copy is applied here, so committed: every ack level but `all`
 * holds; `all` waits until every voter holds that entry (the first
 * attempt may have failed because one did not). */
static bool answered(struct node *n, struct pwrite *w)
{
	struct session_result res;
	struct sh_err err;
	int rv;

	if (!store_session_known(db_store(n->o.db), &w->e->session, &res, &rv, &err))
		return false;
	n->session_answers++;
	w->term = res.term;
	w->index = res.index;
	w->affected = (size_t)res.affected;
	w->settled = true;
	if (rv == 0 && w->ack == NODE_ACK_ALL) { /* once every voter holds that entry */
		push_tail(&n->proposed, w);
		n->progress = true;
	} else
		node_write_finish(n, w, rv, rv != 0 ? &err : NULL);
	return true;
}

/* At the leader: propose w, or queue it behind the gate. */
static void lead(struct node *n, struct pwrite *w)
{
	struct sh_err err;
	int rv;

	if (w->change == 0 && answered(n, w)) /* before any refusal: it may have applied */
		return;
	if (n->full) { /* writes that waited behind the DDL gate come here too */
		refuse_full(n, w);
		return;
	}

	if (w->change != 0) {
		if ((rv = node_auto_change(n, w, &err)) == 0)
			push_tail(&n->proposed, w);
		else
			node_write_finish(n, w, rv > 0 ? 0 : rv, &err);
		return;
	}
	/* refused at once, not queued: SH_EUNAVAIL from propose means "wait
	 * for a leader", which made an ack-all write with a voter down wait out
	 * its deadline (t/cluster_ops.sh) */
	if (w->ack == NODE_ACK_ALL && (rv = all_voters_alive(n, &err)) != 0) {
		node_write_finish(n, w, rv, &err);
		return;
	}
	if (n->wait_gate != NULL || db_applied_index(n->o.db) < n->ddl_upto) {
		push_tail(&n->wait_gate, w);
		return;
	}
	if ((rv = propose(n, w, &err)) != 0) {
		if (rv == SH_EUNAVAIL)
			push_tail(&n->wait_leader, w);
		else
			node_write_finish(n, w, rv, &err);
		return;
	}
	push_tail(&n->proposed, w);
	n->progress = true; /* a single voter may be done already */
}

/* Send w where it can go now. */
void node_write_dispatch(struct node *n, struct pwrite *w)
{
	uint64_t leader = raft_leader(n->raft);

	if (leader == n->o.id && raft_role(n->raft) == RAFT_LEADER) {
		lead(n, w); /* which asks the sessions first */
		return;
	}
	/* before any refusal: it may have applied (a follower's table knows
	 * too; ack all waits on the leader) */
	if (w->change == 0 && w->ack != NODE_ACK_ALL && answered(n, w))
		return;
	if (n->full)
		refuse_full(n, w);
	else if (leader == RAFT_NONE || node_fwd_send(n, w) != 0)
		push_tail(&n->wait_leader, w);
}

void node_write(struct node *n, const struct entry *e, enum node_ack ack, uint64_t deadline_ms,
		node_done_fn done, void *arg)
{
	struct pwrite *w = sh_calloc(1, sizeof *w);

	if (w == NULL) {
		node_write_result(n, done, arg, SH_ENOMEM, NULL, 0, 0, 0);
		return;
	}
	*w = (struct pwrite){
		.n = n, .ack = ack, .deadline = deadline_ms, .done = done, .arg = arg, .e = e};
	n->n_pending++;
	if (n->failed || n->raft == NULL) {
		finishf(n, w, SH_ESHUTDOWN, "this node's storage failed: it takes no writes");
		return;
	}
	node_write_dispatch(n, w);
	node_flush(n);
}

void node_write_submit(struct node *n, struct pwrite *w)
{
	n->n_pending++;
	node_write_dispatch(n, w);
}

void node_write_wait(struct node *n, struct pwrite *w)
{
	push_tail(&n->wait_leader, w);
}

void node_write_push_forwarded(struct node *n, struct pwrite *w)
{
	push_tail(&n->forwarded, w);
	n->n_forwarded++;
}

struct pwrite *node_write_take_forwarded(struct node *n, uint64_t id)
{
	for (struct pwrite **p = &n->forwarded, *w; (w = *p) != NULL; p = &w->next)
		if (w->fwd_id == id) {
			*p = w->next;
			n->n_forwarded--;
			return w;
		}
	return NULL;
}

/* The leader changed: what went to another has an unknown outcome. */
static void fail_forwarded(struct node *n)
{
	struct pwrite **p = &n->forwarded, *w;
	uint64_t leader = raft_leader(n->raft);

	while ((w = *p) != NULL) {
		if (w->fwd_to == leader) {
			p = &w->next;
			continue;
		}
		*p = w->next;
		n->n_forwarded--;
		finishf(n, w, SH_EUNKNOWN,
			"the leader %016" PRIx64 " lost its leadership before it answered (the "
			"write may still be committed)",
			w->fwd_to);
	}
}

int node_write_propose_conf(struct node *n, const struct raft_conf *c, uint64_t *index,
			    uint64_t *term, struct sh_err *err)
{
	uint8_t *body;
	size_t len;
	int rv;

	if ((rv = raft_conf_encode(c, &body, &len, err)) != 0)
		return rv;
	rv = raft_propose_conf(n->raft, node_now(), c, (uint32_t)len, index, term);
	if (rv == SH_EBUSY)
		sh_err_set(err, rv, "a configuration change is in progress");
	else if (rv != 0)
		sh_err_set(err, rv, "not the leader, or not a single-server change");
	else
		rv = node_log_append_own(n, *term, *index, WAL_VOTERS, body, len, err);
	sh_free(body);
	return rv;
}

/* ------------------------------------------------------------ acks */

static bool session_of(const struct pwrite *w)
{
	return w->e != NULL && w->e->session.set && !w->settled;
}

/* Committed: leader and one hold; quorum and all also wait for this
 * node's apply (doc/replication.md, "Writes and acks") unless it cannot
 * come soon: the log cannot grow (a full disk: Raft committed the entry
 * without this node's copy), or the apply thread writes a snapshot itself
 * (when it could not fork its writer; a forked writer stops the apply for
 * milliseconds only).  A write with a session is answered with the verdict
 * on its entry, which needs it applied here: on a full node, which cannot
 * apply it, its fate under the session is unknown here — said at once, so
 * that the client sends it again to the next leader (which answers from
 * the session), rather than at its deadline. */
static int committed(struct node *n, const struct pwrite *w, struct sh_err *err)
{
	struct db *db = n->o.db;

	if (w->ack != NODE_ACK_QUORUM && w->ack != NODE_ACK_ALL)
		return 1;
	if (session_of(w) && n->full && db_applied_index(db) < w->index)
		return sh_err_set(err, SH_EUNKNOWN,
				  "entry %" PRIu64 " is committed, but this node's disk is full: "
				  "what its client session made of it is known only where it is "
				  "applied (send it again)",
				  w->index);
	if ((n->full || db_snapshotting(db)) && !session_of(w))
		return 1;
	return db_applied_index(db) >= w->index;
}

/* Ack all, not every voter holds it yet: wait, or it never will here. */
static int all_pending(struct node *n, bool leading, struct sh_err *err)
{
	if (!leading)
		return sh_err_set(err, SH_EUNKNOWN,
				  "ack all: this node stopped leading before every voter held the "
				  "write (it may be committed at quorum)");
	if (voter_down(n) != 0)
		return sh_err_set(err, SH_EUNKNOWN,
				  "ack all: voter %016" PRIx64
				  " went down before it held the write (it may still be "
				  "committed at quorum)",
				  voter_down(n));
	return 0;
}

/* 1: the ack level holds; 0: not yet; SH_E*: it never will. */
static int acked(struct node *n, struct pwrite *w, struct sh_err *err)
{
	struct raft *r = n->raft;
	uint64_t t = node_term_at(n, w->index);
	unsigned voters = raft_conf(r)->n_voters;
	/* a duplicate answered from its session waits (ack all) on the first
	 * copy's entry, of an older term maybe */
	bool leading = raft_role(r) == RAFT_LEADER && (raft_term(r) == w->term || w->settled);

	if (t != 0 && t != w->term && raft_commit_index(r) >= w->index)
		return sh_err_set(err, SH_EUNAVAIL,
				  "the write was lost: entry %" PRIu64
				  " was committed with term %" PRIu64
				  ", a new leader's (safe to send again)",
				  w->index, t);
	if (t != 0 && t != w->term)
		return sh_err_set(err, SH_EUNKNOWN,
				  "entry %" PRIu64
				  " was replaced here by a new leader's (the write "
				  "may still be committed from another node's log)",
				  w->index);
	if (raft_commit_index(r) >= w->index && t == 0)
		return sh_err_set(err, SH_EUNKNOWN,
				  "entry %" PRIu64 " is committed but no longer in this node's log "
				  "(a snapshot replaced it): whether it is this write is unknown",
				  w->index);
	w->all_held |= leading && raft_acked(r, w->index) >= voters;
	if (w->ack == NODE_ACK_ALL && !w->all_held)
		return all_pending(n, leading, err);
	if (raft_commit_index(r) >= w->index)
		return committed(n, w, err);
	if (w->ack == NODE_ACK_QUORUM || w->ack == NODE_ACK_ALL)
		return 0;
	if (!leading)
		return sh_err_set(err, SH_EUNKNOWN,
				  "this node stopped leading before the write was acknowledged "
				  "(it may still be committed)");
	if (w->ack == NODE_ACK_LEADER)
		return raft_durable_index(r) >= w->index;
	return raft_acked(r, w->index) >= (voters < 2 ? voters : 2); /* one */
}

/* An acknowledged write with a session, applied here (committed() waits
 * for that; the api makes such writes quorum at least): answered with
 * what applying its entry did — the first copy's result when it was a
 * duplicate (its token, its count), or the refusal (session.h). */
static int settle(struct node *n, struct pwrite *w, struct sh_err *err)
{
	struct session_result res;
	int rv;

	if (!session_of(w))
		return 0;
	if (!store_session_verdict(db_store(n->o.db), w->index, &w->e->session, &res, &rv, err))
		return sh_err_set(err, SH_EUNKNOWN,
				  "entry %" PRIu64 " is applied, but what its client session made "
				  "of it is no longer known here",
				  w->index);
	if (rv == 0) {
		w->term = res.term;
		w->index = res.index;
		w->affected = (size_t)res.affected;
	}
	return rv;
}

void node_write_on_progress(struct node *n)
{
	struct pwrite **p = &n->proposed, *w;
	struct sh_err err;
	int rv;

	while ((w = *p) != NULL) {
		if ((rv = acked(n, w, &err)) == 0) {
			p = &w->next;
			continue;
		}
		*p = w->next;
		if (rv > 0)
			rv = settle(n, w, &err);
		node_write_finish(n, w, rv, &err);
	}
}

void node_write_on_truncate(struct node *n, uint64_t from)
{
	struct pwrite **p = &n->proposed, *w;

	while ((w = *p) != NULL) {
		if (w->index < from) {
			p = &w->next;
			continue;
		}
		*p = w->next;
		finishf(n, w, SH_EUNKNOWN,
			"entry %" PRIu64
			" was replaced here by a new leader's (the write may still be committed "
			"from another node's log)",
			w->index);
	}
}

/* Redo what waited for a leader (or for this node to lead). */
static void redispatch(struct node *n)
{
	struct pwrite *l = take(&n->wait_leader), *next;

	for (struct pwrite *w = l; w != NULL; w = next) {
		next = w->next;
		node_write_dispatch(n, w);
	}
}

void node_write_on_role(struct node *n)
{
	if (raft_role(n->raft) != RAFT_LEADER) {
		struct pwrite *g = take(&n->wait_gate), *next;

		for (struct pwrite *w = g; w != NULL; w = next) { /* never proposed */
			next = w->next;
			push_tail(&n->wait_leader, w);
		}
	}
	n->progress = true; /* leader, one and all fail if leadership was lost */
	if (raft_leader(n->raft) != RAFT_NONE)
		fail_forwarded(n);
	if (raft_leader(n->raft) != RAFT_NONE)
		redispatch(n);
}

/* The gate may open: lead what waited, in order (lead() puts a write back
 * behind the gate when a create or drop it just proposed closes it again;
 * taking the whole list first keeps the order, and a write that found
 * others still waiting no longer goes round the queue for ever). */
void node_write_on_applied(struct node *n)
{
	struct pwrite *l, *next;

	if (n->wait_gate == NULL || db_applied_index(n->o.db) < n->ddl_upto ||
	    raft_role(n->raft) != RAFT_LEADER)
		return;
	l = take(&n->wait_gate);
	for (struct pwrite *w = l; w != NULL; w = next) {
		next = w->next;
		lead(n, w);
	}
}

/* ------------------------------------------------------------ deadlines */

static void expire_list(struct node *n, struct pwrite **head, uint64_t now, int rv, const char *why)
{
	struct pwrite **p = head, *w;

	while ((w = *p) != NULL) {
		if (now < w->deadline) {
			p = &w->next;
			continue;
		}
		*p = w->next;
		if (rv == SH_EUNAVAIL && raft_leader(n->raft) != RAFT_NONE)
			finishf(n, w, rv,
				"no answer from the leader %016" PRIx64 " within the deadline",
				raft_leader(n->raft));
		else
			finishf(n, w, rv, "%s", why);
	}
}

void node_write_expire(struct node *n, uint64_t now)
{
	if (n->raft == NULL)
		return;
	expire_list(n, &n->wait_leader, now, SH_EUNAVAIL, "no leader within the deadline");
	expire_list(n, &n->wait_gate, now, SH_ETIMEDOUT,
		    "deadline exceeded waiting for a collection change to apply");
	expire_list(n, &n->proposed, now, SH_ETIMEDOUT,
		    "deadline exceeded before the ack level held (the write may still be "
		    "committed)");
	expire_list(n, &n->forwarded, now, SH_ETIMEDOUT,
		    "deadline exceeded waiting for the leader (the write may still be committed)");
	if (n->wait_leader != NULL && raft_leader(n->raft) != RAFT_NONE && !n->failed)
		redispatch(n);
}

void node_write_free_all(struct node *n)
{
	struct pwrite **lists[] = {&n->wait_leader, &n->wait_gate, &n->proposed, &n->forwarded};

	for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
		struct pwrite *l = take(lists[i]), *next;
		bool sent = lists[i] == &n->proposed || lists[i] == &n->forwarded;

		for (struct pwrite *w = l; w != NULL; w = next) {
			next = w->next;
			if (sent)
				finishf(n, w, SH_EUNKNOWN,
					"the node is stopping or its storage failed (the write may "
					"still be committed)");
			else
				finishf(n, w, SH_ESHUTDOWN,
					"the node is stopping or its storage failed");
		}
	}
}
