/*
 * node_auto: how a cluster forms and how the leader keeps its voters
 * (DESIGN.md section 8; doc/replication.md, "Voters and learners").
 *
 * Bootstrap.  A node with an empty log and no cluster id, once
 * `bootstrap_expect` members are alive in membership (itself included)
 * and have been for BOOT_STABLE_MS, takes the bootstrap_expect smallest
 * node ids among them as the founders and gossips them as a *candidate*
 * set in its membership metadata (free to change with its view) — unless
 * a member already promised a founder set that includes it: then it
 * adopts that one.  Once every founder of its candidate set proposes the
 * same set, a founder *promises* it: it stores its hash (DIR/founders.id)
 * and gossips it as promised, and never promises another (a restart keeps
 * the promise).  It bootstraps once every founder is alive and promised
 * the same set:
 * it writes the first entry — index 1, term 1, the founders as voters —
 * which every founder writes alike, so their logs agree from the start,
 * and the cluster id is the promise.  A node that is not a founder does
 * nothing but wait to learn the cluster id from membership and be added.
 *
 * Why promises: while gossip still converges, nodes may see different
 * members and pick different founder sets.  A set bootstraps only when all
 * of its members promised it, and a node promises one set ever, so two
 * sets that both bootstrap are disjoint; with bootstrap_expect B, that
 * takes 2B nodes started with it.  Hence the rule (doc/replication.md):
 * fewer than 2 * bootstrap_expect nodes may start with bootstrap_expect —
 * start the others without it, they join.  With bootstrap_expect 1 a node
 * bootstraps alone at once.  A node that learns a cluster id from
 * membership first (bootstrap_expect 0, or a late starter) joins instead:
 * it waits, with an empty log, for the leader to add it.
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

/* No configuration yet, nothing in the log beyond the snapshot (a new
 * data dir, or one seeded from a backup, whose snapshot holds no voters:
 * shoald --restore), and either no cluster or the one this node promised
 * to found (its id is the promised set's hash): a founder that stored the
 * id and crashed before its first entry was durable, or one that learned
 * the id from another founder before it wrote its own, still writes the
 * first entry — the same on every founder, the promised set — else no
 * founder might hold it and no leader ever be elected (whole-node
 * simulator, seed 872675029). */
static bool can_bootstrap(struct node *n)
{
	uint64_t promised = sh_datadir_founders(n->o.datadir);

	return (n->cluster_id == 0 || (promised != 0 && n->cluster_id == promised)) &&
	       n->o.bootstrap_expect > 0 && db_last_index(n->o.db) == db_snapshot_index(n->o.db) &&
	       raft_conf(n->raft)->n_voters == 0;
}

/* The membership metadata a node gossips while it bootstraps: a version
 * byte, what it says (META_CANDIDATE: the founders by its view, free to
 * change; META_PROMISE: the founders it promised, for ever), the number of
 * founders and their ids (u64 little-endian each). */
#define META_VERSION      2
#define META_CANDIDATE    1
#define META_PROMISE      2
#define META_MAX_FOUNDERS ((SWIM_META_MAX - 3) / 8)

/* The set member m gossips and what it says of it (0: nothing). */
static int meta_founders(const struct swim_member *m, struct raft_conf *c)
{
	unsigned k;

	memset(c, 0, sizeof *c);
	if (m->meta_len < 3 || m->meta[0] != META_VERSION || (k = m->meta[2]) == 0 ||
	    k > META_MAX_FOUNDERS || k > RAFT_MAX_NODES || m->meta_len != 3 + 8 * (size_t)k ||
	    (m->meta[1] != META_CANDIDATE && m->meta[1] != META_PROMISE))
		return 0;
	for (unsigned i = 0; i < k; i++) {
		uint64_t v = 0;

		for (int b = 7; b >= 0; b--)
			v = v << 8 | m->meta[3 + 8 * i + (unsigned)b];
		c->voters[i] = v;
	}
	c->n_voters = k;
	return m->meta[1];
}

static void gossip_founders(struct node *n, int what, const struct raft_conf *c)
{
	uint8_t meta[3 + 8 * META_MAX_FOUNDERS] = {META_VERSION, (uint8_t)what,
						   (uint8_t)c->n_voters};
	uint64_t h = cluster_hash(c) ^ (uint64_t)what;
	struct sh_err err;

	if (n->boot_gossiped == h)
		return;
	n->boot_gossiped = h;
	for (unsigned i = 0; i < c->n_voters; i++)
		for (int b = 0; b < 8; b++)
			meta[3 + 8 * i + (unsigned)b] = (uint8_t)(c->voters[i] >> (8 * b));
	if (swim_set_meta(n->swim, node_now(), meta, 3 + 8 * (size_t)c->n_voters, &err) != 0)
		LOG_WARN("raft", "cannot gossip the founders: %s", err.msg);
}

/* The founders by this node's view: the bootstrap_expect smallest ids of
 * members alive for BOOT_STABLE_MS; false while there are not that many. */
static bool founders(struct node *n, uint64_t now, struct raft_conf *c)
{
	uint64_t ids[RAFT_MAX_NODES];
	unsigned k = alive_ids(n, ids, RAFT_MAX_NODES);

	memset(c, 0, sizeof *c);
	if (k < n->o.bootstrap_expect) {
		n->boot_since = 0;
		return false;
	}
	if (n->boot_since == 0)
		n->boot_since = now;
	if (n->o.bootstrap_expect > 1 && now - n->boot_since < BOOT_STABLE_MS)
		return false;
	c->n_voters = n->o.bootstrap_expect;
	memcpy(c->voters, ids, c->n_voters * sizeof *ids);
	return true;
}

/* A set an alive member promised: with this node in it (want 0), or the
 * one whose hash is want; the one with the smallest founder first. */
static bool others_promise(struct node *n, uint64_t want, struct raft_conf *out)
{
	bool found = false;
	struct raft_conf c;

	for (size_t i = 0; i < swim_member_count(n->swim); i++) {
		const struct swim_member *m = swim_member_at(n->swim, i);

		if (m->self || m->state != SWIM_ALIVE || meta_founders(m, &c) != META_PROMISE ||
		    c.n_voters != n->o.bootstrap_expect)
			continue;
		if (want != 0 ? cluster_hash(&c) != want : !raft_conf_has_voter(&c, n->o.id))
			continue;
		if (!found || c.voters[0] < out->voters[0]) {
			*out = c;
			found = true;
		}
	}
	return found;
}

/* Promise c, once for ever: stored before it is gossiped. */
static int promise(struct node *n, const struct raft_conf *c)
{
	struct sh_err err;

	if (sh_datadir_set_founders(n->o.datadir, cluster_hash(c), &err) != 0) {
		node_fail(n, &err);
		return -1;
	}
	n->boot_conf = *c;
	LOG_INFO("raft", "promised to found a cluster with %u voters; waiting for them to agree",
		 c->n_voters);
	return 0;
}

/* Does every other founder of c gossip c, as a candidate (at least:
 * want_promise false) or as a promise? */
static bool all_say(struct node *n, const struct raft_conf *c, bool want_promise)
{
	struct raft_conf theirs;

	for (unsigned i = 0; i < c->n_voters; i++) {
		const struct swim_member *m = node_member(n, c->voters[i]);
		int what;

		if (c->voters[i] == n->o.id)
			continue;
		if (m == NULL || m->state != SWIM_ALIVE ||
		    (what = meta_founders(m, &theirs)) == 0 ||
		    cluster_hash(&theirs) != cluster_hash(c) ||
		    (want_promise && what != META_PROMISE))
			return false;
	}
	return true;
}

/* No promise yet.  Adopt a promise that includes this node; else propose
 * the founders by this node's view as a candidate, and promise them once
 * every one of them proposes the same (views agree, so that nodes rarely
 * promise different sets: a node that did waits for ever). */
static bool first_promise(struct node *n, uint64_t now)
{
	struct raft_conf c;

	if (others_promise(n, 0, &c))
		return promise(n, &c) == 0;
	if (!founders(n, now, &c))
		return false;
	if (!raft_conf_has_voter(&c, n->o.id)) {
		if (!n->boot_told)
			LOG_INFO("raft",
				 "%u members are up; this node is not among the founders: "
				 "it joins once the cluster exists",
				 c.n_voters);
		n->boot_told = true;
		return false;
	}
	gossip_founders(n, META_CANDIDATE, &c);
	return all_say(n, &c, false) && promise(n, &c) == 0;
}

static void bootstrap(struct node *n, uint64_t now)
{
	uint64_t promised = sh_datadir_founders(n->o.datadir);
	struct raft_conf c;
	struct sh_err err;

	if (promised == 0 && !first_promise(n, now))
		return;
	promised = sh_datadir_founders(n->o.datadir);
	if (cluster_hash(&n->boot_conf) != promised) { /* restarted: find the set again */
		if ((founders(n, now, &c) && cluster_hash(&c) == promised) ||
		    others_promise(n, promised, &c))
			n->boot_conf = c;
		else
			return;
	}
	gossip_founders(n, META_PROMISE, &n->boot_conf);
	if (!all_say(n, &n->boot_conf, true))
		return;
	if (node_boot_conf(n, &n->boot_conf, &err) != 0) {
		node_fail(n, &err);
		return;
	}
	LOG_INFO("raft", "bootstrapped a cluster of %u voters", n->boot_conf.n_voters);
	node_set_cluster_id(n, promised);
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
		    !banned(c, m->id))
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

void node_auto_start(struct node *n)
{
	if (can_bootstrap(n) && n->o.bootstrap_expect == 1)
		bootstrap(n, node_now());
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
