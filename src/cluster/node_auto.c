/*
 * node_auto: how a cluster forms and how the leader keeps its voters
 * (DESIGN.md section 8; doc/replication.md, "Voters and learners").
 *
 * Bootstrap.  A node with an empty log and no cluster id bootstraps once
 * `bootstrap_expect` members are alive in membership (itself included)
 * and have been for BOOT_STABLE_MS: the voters are the bootstrap_expect
 * smallest node ids among them, the cluster id a hash of those ids, and
 * every such node writes the same first entry — index 1, term 1, that
 * configuration — so their logs agree from the start.  With
 * bootstrap_expect 1 a node bootstraps alone at once.  A node that learns
 * a cluster id from membership first (bootstrap_expect 0, or a late
 * starter) joins instead: it waits, with an empty log, for the leader to
 * add it.
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

#include "storage/db.h"
#include "util/alloc.h"
#include "util/log.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define AUTO_EVERY_MS  500
#define BOOT_STABLE_MS 500

/* ------------------------------------------------------------ bootstrap */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t cluster_hash(const struct raft_conf *c)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (unsigned i = 0; i < c->n_voters; i++) {
		h ^= c->voters[i];
		h *= 0x100000001b3ull;
		h ^= h >> 29;
	}
	return h != 0 ? h : 1;
}

/* The alive members' ids, sorted; their number. */
static unsigned alive_ids(struct node *n, uint64_t *ids, unsigned max)
{
	unsigned k = 0;

	for (size_t i = 0; n->swim != NULL && i < swim_member_count(n->swim) && k < max; i++) {
		const struct swim_member *m = swim_member_at(n->swim, i);

		if (m->state == SWIM_ALIVE || m->self)
			ids[k++] = m->id;
	}
	qsort(ids, k, sizeof *ids, cmp_u64);
	return k;
}

static bool can_bootstrap(struct node *n)
{
	return n->cluster_id == 0 && n->o.bootstrap_expect > 0 && db_last_index(n->o.db) == 0 &&
	       db_snapshot_index(n->o.db) == 0 && raft_conf(n->raft)->n_voters == 0;
}

static void bootstrap(struct node *n, uint64_t now)
{
	uint64_t ids[RAFT_MAX_NODES];
	unsigned k = alive_ids(n, ids, RAFT_MAX_NODES);
	struct raft_conf c = {0};
	struct sh_err err;

	if (k < n->o.bootstrap_expect) {
		n->boot_since = 0;
		return;
	}
	if (n->boot_since == 0)
		n->boot_since = now;
	if (n->o.bootstrap_expect > 1 && now - n->boot_since < BOOT_STABLE_MS)
		return;
	c.n_voters = n->o.bootstrap_expect;
	memcpy(c.voters, ids, c.n_voters * sizeof *ids);
	if (!raft_conf_has_voter(&c, n->o.id)) {
		LOG_INFO("raft",
			 "%u members are up; this node is not among the first voters: it joins", k);
		node_set_cluster_id(n, cluster_hash(&c));
		return;
	}
	if (node_boot_conf(n, &c, &err) != 0) {
		node_fail(n, &err);
		return;
	}
	LOG_INFO("raft", "bootstrapped a cluster of %u voters", c.n_voters);
	node_set_cluster_id(n, cluster_hash(&c));
}

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
	int rv = nw_propose_conf(n, c, index ? index : &i, term ? term : &t, err);

	if (rv == 0) {
		const struct swim_member *m = node_member(n, id);

		LOG_INFO("raft",
			 "configuration change: %s %016" PRIx64 " (%s): %u voters, %u learners",
			 what, id, m != NULL ? m->name : "?", c->n_voters, c->n_learners);
		n->change_at = node_now();
	}
	return rv;
}

static int add_learner(struct node *n, uint64_t id, uint64_t *index, uint64_t *term,
		       struct sh_err *err)
{
	struct raft_conf c = *raft_conf(n->raft);

	if (c.n_voters + c.n_learners >= RAFT_MAX_NODES)
		return sh_err_set(err, SH_ETOOBIG, "the configuration holds %d members already",
				  RAFT_MAX_NODES);
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

static int remove_member(struct node *n, uint64_t id, const char *why, uint64_t *index,
			 uint64_t *term, struct sh_err *err)
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
			return remove_member(n, c->learners[i], "remove dead learner", NULL, NULL,
					     &err) == 0;
	for (unsigned i = 0; i < c->n_voters; i++)
		if (c->voters[i] != n->o.id && dead_long(n, c->voters[i], now) &&
		    majority_after(n, c->voters[i]))
			return remove_member(n, c->voters[i], "remove dead voter", NULL, NULL,
					     &err) == 0;
	return false;
}

static bool try_add(struct node *n)
{
	const struct raft_conf *c = raft_conf(n->raft);
	struct sh_err err;

	for (size_t i = 0; i < swim_member_count(n->swim); i++) {
		const struct swim_member *m = swim_member_at(n->swim, i);

		if (m->state == SWIM_ALIVE && !m->self && !raft_conf_has(c, m->id))
			return add_learner(n, m->id, NULL, NULL, &err) == 0;
	}
	return false;
}

static bool try_promote(struct node *n)
{
	const struct raft_conf *c = raft_conf(n->raft);
	unsigned want = c->n_voters + 1;
	struct sh_err err;

	if (want > n->o.max_voters || (want > 2 && want % 2 == 0 && c->n_learners < 2))
		return false;
	for (unsigned i = 0; i < c->n_learners; i++) {
		uint64_t id = c->learners[i];

		if (node_alive(n, id) && raft_match(n->raft, id) >= raft_commit_index(n->raft))
			return promote(n, id, &err) == 0;
	}
	return false;
}

void na_tick(struct node *n, uint64_t now)
{
	if (!n->started || n->swim == NULL)
		return;
	if (can_bootstrap(n)) {
		bootstrap(n, now);
		return;
	}
	if (raft_role(n->raft) != RAFT_LEADER || now < n->auto_at)
		return;
	n->auto_at = now + AUTO_EVERY_MS;
	if (!try_remove(n, now) && !try_add(n))
		try_promote(n);
}

void na_start(struct node *n)
{
	if (can_bootstrap(n) && n->o.bootstrap_expect == 1)
		bootstrap(n, node_now());
}

void na_swim_event(struct node *n, const struct swim_event *ev)
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

void na_on_progress(struct node *n, uint64_t peer)
{
	if (peer == 0 || raft_role(n->raft) != RAFT_LEADER)
		return;
	if (raft_match(n->raft, peer) >= raft_last_index(n->raft))
		n->caught_up_at[lag_slot(n, peer)] = node_now();
}

uint64_t na_lag_ms(struct node *n, uint64_t peer)
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

int na_change(struct node *n, struct pwrite *w, struct sh_err *err)
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
	case NODE_REMOVE: return remove_member(n, id, "remove", &w->index, &w->term, err);
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
