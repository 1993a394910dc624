/*
 * node_auto: how the leader keeps its voters
 * (DESIGN.md section 8; doc/replication.md, "Voters and learners").
 *
 * Bootstrap — how the founders are decided — is node_boot.c.
 *
 * The leader, every AUTO_EVERY_MS, makes at most one configuration change
 * (dissertation §4.1: one server at a time; the core refuses another while
 * one is uncommitted):
 *
 *   1. a member that left gracefully is removed;
 *   2. an alive member of the cluster that is not in the configuration is
 *      added as a learner;
 *   3. a learner holding every committed entry is promoted while voters are
 *      fewer than max_voters (and their number stays odd beyond one, so a
 *      promotion never lowers the failures tolerated per voter);
 *   4. a voter or learner dead for remove_dead_after_ms is removed, a voter
 *      only when a majority of the voters left is alive.
 *
 * `shoalctl cluster add|remove|transfer-leader` come here as changes
 * (node_change); add only makes a member a learner sooner.
 */
#include "build.h"

#include "cluster/node_impl.h"

#include "storage/datadir.h"
#include "storage/db.h"
#include "util/alloc.h"
#include "util/log.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define AUTO_EVERY_MS 500

/* ------------------------------------------------------------ changes */

static bool conf_remove(struct raft_conf *c, uint64_t id)
{
	for (unsigned i = 0; i < c->n_voters; i++)
		if (c->voters[i] == id) {
			c->voters[i] = c->voters[--c->n_voters];
			return true;
		}
	for (unsigned i = 0; i < c->n_learners; i++)
		if (c->learners[i] == id) {
			c->learners[i] = c->learners[--c->n_learners];
			return true;
		}
	return false;
}

static int propose(struct node *n, const struct raft_conf *c, const char *what, uint64_t id,
		   uint64_t *index, uint64_t *term, struct sh_err *err)
{
	uint64_t i, t;
	int rv = node_write_propose_conf(n, c, index ? index : &i, term ? term : &t, err);

	if (rv == 0) {
		const struct swim_member *m = node_member(n, id);

		LOG_INFO("raft",
			 "configuration change: %s %016" PRIx64 " (%s): %u voters, %u learners",
			 what, id, m != NULL ? m->name : "?", c->n_voters, c->n_learners);
		n->change_at = node_now();
	}
	return rv;
}

/* The list of members removed on purpose: is id on it; take it off. */
static bool banned(const struct raft_conf *c, uint64_t id)
{
	for (unsigned i = 0; i < c->n_removed; i++)
		if (c->removed[i] == id)
			return true;
	return false;
}

static void unban(struct raft_conf *c, uint64_t id)
{
	for (unsigned i = 0; i < c->n_removed; i++)
		if (c->removed[i] == id) {
			memmove(&c->removed[i], &c->removed[i + 1],
				(c->n_removed - i - 1) * sizeof *c->removed);
			c->n_removed--;
			return;
		}
}

/* Remember id as removed on purpose (the oldest goes when the list is
 * full). */
static void ban(struct raft_conf *c, uint64_t id)
{
	unban(c, id);
	if (c->n_removed == RAFT_MAX_NODES) {
		memmove(&c->removed[0], &c->removed[1], (RAFT_MAX_NODES - 1) * sizeof *c->removed);
		c->n_removed--;
	}
	c->removed[c->n_removed++] = id;
}

static int add_learner(struct node *n, uint64_t id, uint64_t *index, uint64_t *term,
		       struct sh_err *err)
{
	struct raft_conf c = *raft_conf(n->raft);

	if (c.n_voters + c.n_learners >= RAFT_MAX_NODES)
		return sh_err_set(err, SH_ETOOBIG, "the configuration holds %d members already",
				  RAFT_MAX_NODES);
	unban(&c, id); /* asked for by name: welcome back */
	c.learners[c.n_learners++] = id;
	return propose(n, &c, "add learner", id, index, term, err);
}

static int promote(struct node *n, uint64_t id, struct sh_err *err)
{
	struct raft_conf c = *raft_conf(n->raft);

	conf_remove(&c, id);
	c.voters[c.n_voters++] = id;
	return propose(n, &c, "promote", id, NULL, NULL, err);
}

/* Remove id; on purpose (keep_out), the autopilot will not add it back
 * until `cluster add` asks for it. */
static int remove_member(struct node *n, uint64_t id, const char *why, bool keep_out,
			 uint64_t *index, uint64_t *term, struct sh_err *err)
{
	struct raft_conf c = *raft_conf(n->raft);

	if (id == n->o.id)
		return sh_err_set(err, SH_EINVAL,
				  "the leader cannot remove itself: transfer leadership first");
	if (!conf_remove(&c, id))
		return sh_err_set(err, SH_ENOTFOUND, "%016" PRIx64 " is not a voter or learner",
				  id);
	if (c.n_voters == 0)
		return sh_err_set(err, SH_EINVAL, "cannot remove the last voter");
	if (keep_out)
		ban(&c, id);
	return propose(n, &c, why, id, index, term, err);
}

/* ------------------------------------------------------------ the leader's round */

static bool dead_long(struct node *n, uint64_t id, uint64_t now)
{
	const struct swim_member *m = node_member(n, id);

	if (m == NULL || (m->state != SWIM_DEAD && m->state != SWIM_LEFT))
		return false;
	return m->state == SWIM_LEFT || (n->o.remove_dead_after_ms != 0 &&
					 now - m->state_since >= n->o.remove_dead_after_ms);
}

/* Would a majority of the voters left after removing id be alive? */
static bool majority_after(struct node *n, uint64_t id)
{
	const struct raft_conf *c = raft_conf(n->raft);
	unsigned left = 0, alive = 0;

	for (unsigned i = 0; i < c->n_voters; i++) {
		if (c->voters[i] == id)
			continue;
		left++;
		alive += node_alive(n, c->voters[i]);
	}
	return left > 0 && 2 * alive > left;
}

static bool try_remove(struct node *n, uint64_t now)
{
	const struct raft_conf *c = raft_conf(n->raft);
	struct sh_err err;

	for (unsigned i = 0; i < c->n_learners; i++)
		if (dead_long(n, c->learners[i], now))
			return remove_member(n, c->learners[i], "remove dead learner", false, NULL,
					     NULL, &err) == 0;
	for (unsigned i = 0; i < c->n_voters; i++)
		if (c->voters[i] != n->o.id && dead_long(n, c->voters[i], now) &&
		    majority_after(n, c->voters[i]))
			return remove_member(n, c->voters[i], "remove dead voter", false, NULL,
					     NULL, &err) == 0;
	return false;
}

static bool try_add(struct node *n)
{
	const struct raft_conf *c = raft_conf(n->raft);
	struct sh_err err;

	for (size_t i = 0; i < swim_member_count(n->swim); i++) {
		const struct swim_member *m = swim_member_at(n->swim, i);

		if (m->state == SWIM_ALIVE && !m->self && !raft_conf_has(c, m->id) &&
		    !banned(c, m->id) &&
		    (n->o.env.trusted == NULL || n->o.env.trusted(n->o.env.data, m->id)))
			return add_learner(n, m->id, NULL, NULL, &err) == 0;
	}
	return false;
}

/* Learners alive and holding every committed entry. */
static unsigned ready_learners(struct node *n)
{
	const struct raft_conf *c = raft_conf(n->raft);
	unsigned k = 0;

	for (unsigned i = 0; i < c->n_learners; i++)
		k += node_alive(n, c->learners[i]) &&
		     raft_match(n->raft, c->learners[i]) >= raft_commit_index(n->raft);
	return k;
}

static bool try_promote(struct node *n)
{
	const struct raft_conf *c = raft_conf(n->raft);
	unsigned want = c->n_voters + 1;
	struct sh_err err;

	/* an even number of voters only on the way to the next odd one: with
	 * two learners ready (a dead learner never counts) */
	if (want > n->o.max_voters || (want > 2 && want % 2 == 0 && ready_learners(n) < 2))
		return false;
	for (unsigned i = 0; i < c->n_learners; i++) {
		uint64_t id = c->learners[i];

		if (node_alive(n, id) && raft_match(n->raft, id) >= raft_commit_index(n->raft))
			return promote(n, id, &err) == 0;
	}
	return false;
}

void node_auto_tick(struct node *n, uint64_t now)
{
	if (!n->started || n->swim == NULL)
		return;
	if (node_boot_pending(n)) {
		node_boot_tick(n, now);
		return;
	}
	if (raft_role(n->raft) != RAFT_LEADER || now < n->auto_at)
		return;
	n->auto_at = now + AUTO_EVERY_MS;
	if (!try_remove(n, now) && !try_add(n))
		try_promote(n);
}

void node_auto_start(struct node *n)
{
	/* alone: promise, accept and learn at once */
	for (int i = 0; i < 3 && n->o.bootstrap_expect == 1 && node_boot_pending(n); i++)
		node_boot_tick(n, node_now());
}

void node_auto_swim_event(struct node *n, const struct swim_event *ev)
{
	(void)ev;
	n->auto_at = 0; /* look again at the next tick */
}

/* ------------------------------------------------------------ lag */

static size_t lag_slot(struct node *n, uint64_t id)
{
	size_t free_slot = RAFT_MAX_NODES;

	for (size_t i = 0; i < RAFT_MAX_NODES; i++) {
		if (n->caught_up_id[i] == id)
			return i;
		if (n->caught_up_id[i] == 0 && free_slot == RAFT_MAX_NODES)
			free_slot = i;
	}
	if (free_slot == RAFT_MAX_NODES)
		free_slot = (size_t)(id % RAFT_MAX_NODES);
	n->caught_up_id[free_slot] = id;
	n->caught_up_at[free_slot] = node_now();
	return free_slot;
}

void node_auto_on_progress(struct node *n, uint64_t peer)
{
	if (peer == 0 || raft_role(n->raft) != RAFT_LEADER)
		return;
	if (raft_match(n->raft, peer) >= raft_last_index(n->raft))
		n->caught_up_at[lag_slot(n, peer)] = node_now();
}

uint64_t node_auto_lag_ms(struct node *n, uint64_t peer)
{
	uint64_t now = node_now();

	if (raft_match(n->raft, peer) >= raft_last_index(n->raft))
		return 0;
	return now - n->caught_up_at[lag_slot(n, peer)];
}

/* ------------------------------------------------------------ asked for */

/* The voter other than this node that holds the most of the log. */
static uint64_t most_caught_up(struct node *n)
{
	const struct raft_conf *c = raft_conf(n->raft);
	uint64_t best = 0, best_match = 0;

	for (unsigned i = 0; i < c->n_voters; i++) {
		uint64_t id = c->voters[i], m = raft_match(n->raft, id);

		if (id != n->o.id && node_alive(n, id) && (best == 0 || m > best_match)) {
			best = id;
			best_match = m;
		}
	}
	return best;
}

int node_auto_change(struct node *n, struct pwrite *w, struct sh_err *err)
{
	const struct raft_conf *c = raft_conf(n->raft);
	uint64_t id = w->change_id;

	switch (w->change) {
	case NODE_ADD:
		if (raft_conf_has(c, id))
			return 1; /* there already */
		if (node_member(n, id) == NULL)
			return sh_err_set(err, SH_ENOTFOUND,
					  "%016" PRIx64 " is not a member (start it with this "
					  "cluster's seeds first)",
					  id);
		return add_learner(n, id, &w->index, &w->term, err);
	case NODE_REMOVE:
		return remove_member(n, id, "remove (kept out until added again)", true, &w->index,
				     &w->term, err);
	case NODE_TRANSFER:
		if (id == 0)
			id = most_caught_up(n);
		if (id == 0 || raft_transfer(n->raft, node_now(), id) != 0)
			return sh_err_set(err, SH_EINVAL,
					  "cannot hand leadership to %016" PRIx64 " (not a voter?)",
					  id);
		return 1;
	}
	return sh_err_set(err, SH_EINVAL, "unknown change %d", w->change);
}
