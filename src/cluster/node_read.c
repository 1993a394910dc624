/*
 * node_read: the read barriers of the consistency levels (node.h;
 * DESIGN.md section 7; doc/consistency.md).
 *
 * A read waits on the list until it has a read point and this node has
 * applied up to it:
 *
 *   eventual          no wait;
 *   read_your_writes  the token's index, and the entry there must still
 *                     carry the token's term (else the write was lost:
 *                     a new leader replaced it);
 *   strong            at a leader inside its lease (dissertation §6.4.1)
 *                     its commit index; otherwise, and on followers, a
 *                     read index confirmed by the leader (§6.4);
 *   quorum            always a read index confirmed by a heartbeat round
 *                     to a majority, whatever the lease says.
 *
 * A read index that fails (no leader, leadership lost) is asked again at
 * the next tick while the deadline allows.
 */
#include "build.h"

#include "cluster/node_impl.h"

#include "storage/db.h"
#include "util/alloc.h"

#include <inttypes.h>
#include <stdio.h>

static void done_read(struct node *n, struct pread *p, int rv, const char *msg)
{
	struct node_result r = {.rv = rv, .term = p->term, .index = p->index};

	if (rv != 0)
		sh_err_set(&r.err, rv, "%s", msg);
	r.leader = raft_leader(n->raft);
	r.leader_address = node_client_address(n, r.leader);
	p->done(p->arg, &r);
	sh_free(p);
}

/* 1: p may run; 0: not yet; SH_EINVAL: its write was lost. */
static int ready(struct node *n, const struct pread *p)
{
	uint64_t t;

	if (p->read_id != 0 || p->index == 0)
		return 0;
	if (p->level == NODE_READ_YOUR_WRITES && p->index <= raft_commit_index(n->raft)) {
		t = node_term_at(n, p->index);
		if (t != p->term)
			return t != 0 ? SH_EINVAL /* committed with another term: never ours */
				      : 0;        /* not applied here yet: wait */
	}
	return db_applied_index(n->o.db) >= p->index;
}

static void ask(struct node *n, struct pread *p)
{
	p->read_id = ++n->next_read_id;
	p->asked = true;
	raft_read_index(n->raft, node_now(), p->read_id);
}

/* Complete what may run; returns whether p ran (and is freed). */
static bool try_run(struct node *n, struct pread *p)
{
	int rv = ready(n, p);

	if (rv == 0)
		return false;
	if (rv < 0) {
		char msg[200];

		snprintf(msg, sizeof msg,
			 "token %" PRIu64 ":%" PRIu64 ": entry %" PRIu64 " has term %" PRIu64
			 " in the committed log: the write was lost (another leader's entry "
			 "replaced it)",
			 p->term, p->index, p->index, node_term_at(n, p->index));
		done_read(n, p, rv, msg);
	} else
		done_read(n, p, 0, "");
	return true;
}

/* At the leader, a token of its own term beyond its log was never issued:
 * this leader made every entry of its term.  A token of an earlier term
 * beyond its log may still name an entry that commits — another node may
 * hold it and win a later election (Raft paper, figure 8) — so such a
 * read waits until the commit index passes the token's index and the
 * entry there tells (ready()). */
static bool never_issued(struct node *n, struct pread *p)
{
	char msg[200];

	if (raft_role(n->raft) != RAFT_LEADER || p->term != raft_term(n->raft) ||
	    p->index <= raft_last_index(n->raft))
		return false;
	snprintf(msg, sizeof msg,
		 "token %" PRIu64 ":%" PRIu64 " was not issued by this log (the leader's last "
		 "entry is %" PRIu64 ", term %" PRIu64 ")",
		 p->term, p->index, raft_last_index(n->raft), raft_term(n->raft));
	done_read(n, p, SH_EINVAL, msg);
	return true;
}

static void unlink_read(struct node *n, struct pread *p)
{
	for (struct pread **q = &n->reads; *q != NULL; q = &(*q)->next)
		if (*q == p) {
			*q = p->next;
			return;
		}
}

void node_read(struct node *n, enum node_read level, uint64_t token_term, uint64_t token_index,
	       uint64_t deadline_ms, node_done_fn done, void *arg)
{
	struct pread *p = sh_calloc(1, sizeof *p);

	if (p == NULL) {
		done(arg, &(struct node_result){.rv = SH_ENOMEM,
						.err = {SH_ENOMEM, "out of memory"},
						.leader_address = ""});
		return;
	}
	*p = (struct pread){.level = level, .deadline = deadline_ms, .done = done, .arg = arg};
	if (level == NODE_READ_YOUR_WRITES) {
		p->term = token_term;
		p->index = token_index;
	} else if (level == NODE_STRONG && raft_lease_valid(n->raft, node_now())) {
		p->index = raft_commit_index(n->raft);
	}
	if (level == NODE_EVENTUAL || (level == NODE_READ_YOUR_WRITES && token_index == 0)) {
		done_read(n, p, 0, "");
		return;
	}
	if (level == NODE_READ_YOUR_WRITES && never_issued(n, p))
		return;
	if (p->index != 0 && try_run(n, p))
		return;
	p->next = n->reads;
	n->reads = p;
	if (p->index == 0) {
		ask(n, p);
		node_flush(n);
	}
}

void node_read_on_event(struct node *n, const struct raft_event *ev)
{
	for (struct pread *p = n->reads; p != NULL; p = p->next) {
		if (p->read_id != ev->read_id)
			continue;
		p->read_id = 0;
		if (ev->type == RAFT_EV_READ_READY)
			p->index = ev->index;
		else
			p->asked = false; /* again at the next tick */
		if (p->index != 0 && ready(n, p) != 0) {
			unlink_read(n, p);
			try_run(n, p);
		}
		return;
	}
}

void node_read_on_applied(struct node *n)
{
	struct pread **q = &n->reads, *p;

	while ((p = *q) != NULL) {
		if (ready(n, p) == 0) {
			q = &p->next;
			continue;
		}
		*q = p->next;
		try_run(n, p);
	}
}

void node_read_expire(struct node *n, uint64_t now)
{
	struct pread **q = &n->reads, *p;

	while ((p = *q) != NULL) {
		if (now >= p->deadline) {
			*q = p->next;
			if (raft_leader(n->raft) == RAFT_NONE)
				done_read(n, p, SH_EUNAVAIL, "no leader within the deadline");
			else
				done_read(n, p, SH_ETIMEDOUT,
					  "deadline exceeded waiting for the read barrier");
			continue;
		}
		if (!p->asked && p->index == 0 && !n->failed && raft_leader(n->raft) != RAFT_NONE)
			ask(n, p);
		q = &p->next;
	}
}

void node_read_free_all(struct node *n)
{
	while (n->reads != NULL) {
		struct pread *p = n->reads;

		n->reads = p->next;
		done_read(n, p, SH_ESHUTDOWN, "the node is stopping or its storage failed");
	}
}
