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
 * A proposed write fails when its entry is truncated (a new leader
 * replaced it: it is not in the log) and, for the levels other than
 * quorum, when this node stops leading before the level held (the outcome
 * is then unknown: it may still commit).  A deadline gives UNAVAILABLE
 * when no leader was found, DEADLINE_EXCEEDED otherwise.
 */
#include "build.h"

#include "cluster/node_impl.h"

#include "storage/db.h"
#include "util/alloc.h"
#include "util/log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

/* ------------------------------------------------------------ completing */

void nw_result(struct node *n, node_done_fn done, void *arg, int rv, const struct sh_err *err,
	       uint64_t term, uint64_t index, size_t affected)
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
void nw_finish(struct node *n, struct pwrite *w, int rv, const struct sh_err *err)
{
	n->n_pending--;
	nw_result(n, w->done, w->arg, rv, err, w->term, w->index, w->affected);
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
	nw_finish(n, w, rv, &err);
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

static int all_voters_alive(struct node *n, struct sh_err *err)
{
	const struct raft_conf *c = raft_conf(n->raft);

	for (unsigned i = 0; i < c->n_voters; i++)
		if (!node_alive(n, c->voters[i]))
			return sh_err_set(err, SH_EUNAVAIL,
					  "ack all: voter %016" PRIx64 " is down (use quorum)",
					  c->voters[i]);
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

/* Put w in the log: check, encode at the next index, append. */
static int propose(struct node *n, struct pwrite *w, struct sh_err *err)
{
	uint64_t index = raft_last_index(n->raft) + 1, term = raft_term(n->raft), i, t;
	struct wal_buf *b;
	uint32_t len;
	uint8_t type;
	int rv;

	if (w->ack == NODE_ACK_ALL && (rv = all_voters_alive(n, err)) != 0)
		return rv;
	if ((rv = db_prepare(n->o.db, w->e, term, index, &b, &w->affected, err)) != 0)
		return rv;
	record_of(b, &type, &len);
	rv = raft_propose(n->raft, node_now(), (enum raft_entry_type)type, len, &i, &t);
	if (rv == 0 && (i != index || t != term))
		rv = sh_err_set(err, SH_EINVAL, "raft put the entry at %" PRIu64 ", not %" PRIu64,
				i, index);
	else if (rv != 0)
		sh_err_set(err, rv, "this node is handing leadership over");
	if (rv == 0)
		rv = nlog_append_buf(n, b, err);
	wal_buf_unref(b);
	if (rv == 0) {
		w->term = term;
		w->index = index;
	}
	return rv;
}

/* At the leader: propose w, or queue it behind the gate. */
static void lead(struct node *n, struct pwrite *w)
{
	struct sh_err err;
	int rv;

	if (w->change != 0) {
		if ((rv = na_change(n, w, &err)) == 0)
			push_tail(&n->proposed, w);
		else
			nw_finish(n, w, rv > 0 ? 0 : rv, &err);
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
			nw_finish(n, w, rv, &err);
		return;
	}
	push_tail(&n->proposed, w);
	n->progress = true; /* a single voter may be done already */
}

/* Send w where it can go now. */
void nw_dispatch(struct node *n, struct pwrite *w)
{
	uint64_t leader = raft_leader(n->raft);

	if (leader == n->o.id && raft_role(n->raft) == RAFT_LEADER)
		lead(n, w);
	else if (leader == RAFT_NONE || nf_send(n, w) != 0)
		push_tail(&n->wait_leader, w);
}

void node_write(struct node *n, const struct entry *e, enum node_ack ack, uint64_t deadline_ms,
		node_done_fn done, void *arg)
{
	struct pwrite *w = sh_calloc(1, sizeof *w);

	if (w == NULL) {
		nw_result(n, done, arg, SH_ENOMEM, NULL, 0, 0, 0);
		return;
	}
	*w = (struct pwrite){
		.n = n, .ack = ack, .deadline = deadline_ms, .done = done, .arg = arg, .e = e};
	n->n_pending++;
	if (n->failed || n->raft == NULL) {
		finishf(n, w, SH_ESHUTDOWN, "this node's storage failed: it takes no writes");
		return;
	}
	nw_dispatch(n, w);
	node_flush(n);
}

void nw_submit(struct node *n, struct pwrite *w)
{
	n->n_pending++;
	nw_dispatch(n, w);
}

void nw_wait(struct node *n, struct pwrite *w)
{
	push_tail(&n->wait_leader, w);
}

void nw_push_forwarded(struct node *n, struct pwrite *w)
{
	push_tail(&n->forwarded, w);
	n->n_forwarded++;
}

struct pwrite *nw_take_forwarded(struct node *n, uint64_t id)
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
		finishf(n, w, SH_EUNAVAIL,
			"the leader %016" PRIx64 " lost its leadership before it answered (the "
			"write may still be committed)",
			w->fwd_to);
	}
}

int nw_propose_conf(struct node *n, const struct raft_conf *c, uint64_t *index, uint64_t *term,
		    struct sh_err *err)
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
		rv = nlog_append_own(n, *term, *index, WAL_VOTERS, body, len, err);
	sh_free(body);
	return rv;
}

/* ------------------------------------------------------------ acks */

/* 1: the ack level holds; 0: not yet; SH_E*: it never will. */
static int acked(struct node *n, const struct pwrite *w, struct sh_err *err)
{
	struct raft *r = n->raft;
	uint64_t t = raft_term_at(r, w->index);
	unsigned voters = raft_conf(r)->n_voters;
	bool leading = raft_role(r) == RAFT_LEADER && raft_term(r) == w->term;

	if (t != 0 && t != w->term)
		return sh_err_set(err, SH_EUNAVAIL,
				  "entry %" PRIu64 " was replaced by a new leader's", w->index);
	if (raft_commit_index(r) >= w->index)
		return 1;
	if (w->ack == NODE_ACK_QUORUM)
		return 0;
	if (!leading)
		return sh_err_set(err, SH_EUNAVAIL,
				  "this node stopped leading before the write was acknowledged "
				  "(it may still be committed)");
	switch (w->ack) {
	case NODE_ACK_LEADER: return raft_durable_index(r) >= w->index;
	case NODE_ACK_ONE: return raft_acked(r, w->index) >= (voters < 2 ? voters : 2);
	case NODE_ACK_ALL: return raft_acked(r, w->index) >= voters;
	default: return 1;
	}
}

void nw_on_progress(struct node *n)
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
		nw_finish(n, w, rv > 0 ? 0 : rv, &err);
	}
}

void nw_on_truncate(struct node *n, uint64_t from)
{
	struct pwrite **p = &n->proposed, *w;

	while ((w = *p) != NULL) {
		if (w->index < from) {
			p = &w->next;
			continue;
		}
		*p = w->next;
		finishf(n, w, SH_EUNAVAIL,
			"entry %" PRIu64
			" was replaced by a new leader's: the write is not in the log",
			w->index);
	}
}

/* Redo what waited for a leader (or for this node to lead). */
static void redispatch(struct node *n)
{
	struct pwrite *l = take(&n->wait_leader), *next;

	for (struct pwrite *w = l; w != NULL; w = next) {
		next = w->next;
		nw_dispatch(n, w);
	}
}

void nw_on_role(struct node *n)
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

void nw_on_applied(struct node *n)
{
	while (n->wait_gate != NULL && db_applied_index(n->o.db) >= n->ddl_upto &&
	       raft_role(n->raft) == RAFT_LEADER) {
		struct pwrite *w = n->wait_gate;

		n->wait_gate = w->next;
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

void nw_expire(struct node *n, uint64_t now)
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

void nw_free_all(struct node *n)
{
	struct pwrite **lists[] = {&n->wait_leader, &n->wait_gate, &n->proposed, &n->forwarded};

	for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
		struct pwrite *l = take(lists[i]), *next;

		for (struct pwrite *w = l; w != NULL; w = next) {
			next = w->next;
			finishf(n, w, SH_ESHUTDOWN, "the node is stopping or its storage failed");
		}
	}
}
