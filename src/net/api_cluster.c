/*
 * api_cluster: the cluster status method (see api.h), on the loop thread.
 *
 * It reports this node's replication state (cluster/node.h: role, term,
 * leader, indexes, voters and learners), its storage (digest, counts) and
 * every member the membership layer knows, itself first and the others by
 * name, each with its SWIM view (state, incarnation, addresses, how long
 * since last heard) and its place in the configuration; a leader adds
 * each follower's match index and lag.  And whether the node is ready
 * (health.h), with its own lag behind the commit index it knows.
 */
#include "build.h"

#include "net/api.h"

#include "util/clock.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *astr(struct op *op, const char *s)
{
	return arena_strndup(&op->arena, s, strlen(s));
}

static void nomem(struct op *op)
{
	sh_err_set(&op->err, SH_ENOMEM, "out of memory");
	op->status = api_status_of(SH_ENOMEM);
}

static Shoal__MemberState state_of(enum swim_state s)
{
	switch (s) {
	case SWIM_ALIVE: return SHOAL__MEMBER_STATE__MEMBER_ALIVE;
	case SWIM_SUSPECT: return SHOAL__MEMBER_STATE__MEMBER_SUSPECT;
	case SWIM_DEAD: return SHOAL__MEMBER_STATE__MEMBER_DEAD;
	case SWIM_LEFT: return SHOAL__MEMBER_STATE__MEMBER_LEFT;
	}
	return SHOAL__MEMBER_STATE__MEMBER_UNKNOWN;
}

static int by_name(const void *a, const void *b)
{
	const struct swim_member *x = *(const struct swim_member *const *)a;
	const struct swim_member *y = *(const struct swim_member *const *)b;
	int c = strcmp(x->name, y->name);

	return c != 0 ? c : (x->id > y->id) - (x->id < y->id);
}

static const struct node_peer_status *peer_of(const struct node_status *ns, uint64_t id)
{
	for (size_t i = 0; i < ns->n_peers; i++)
		if (ns->peers[i].id == id)
			return &ns->peers[i];
	return NULL;
}

static bool has(const uint64_t *v, unsigned n, uint64_t id)
{
	for (unsigned i = 0; i < n; i++)
		if (v[i] == id)
			return true;
	return false;
}

/* Its place in the configuration, and the leader's view of its progress. */
static void conf_member(struct op *op, Shoal__Member *m, const struct node_status *ns)
{
	const struct node_peer_status *p = peer_of(ns, m->node_id);

	const char *role = "";

	m->voter = has(ns->voters, ns->n_voters, m->node_id);
	if (m->node_id == ns->leader)
		role = "leader";
	else if (m->voter)
		role = "voter";
	else if (has(ns->learners, ns->n_learners, m->node_id))
		role = "learner";
	m->role = astr(op, role);
	if (p != NULL) {
		m->match_index = p->match;
		m->lag = p->lag;
		m->lag_ms = p->lag_ms;
	}
}

/* Another member, as the SWIM view has it. */
static Shoal__Member *peer_member(struct op *op, const struct swim_member *sm,
				  const struct node_status *ns, uint64_t now)
{
	Shoal__Member *m = api_new_msg(op, &shoal__member__descriptor);

	if (m == NULL || (m->name = astr(op, sm->name)) == NULL ||
	    (m->cluster_address = astr(op, sm->addr[SWIM_ADDR_CLUSTER])) == NULL ||
	    (m->client_address = astr(op, sm->addr[SWIM_ADDR_CLIENT])) == NULL ||
	    (m->rest_address = astr(op, sm->addr[SWIM_ADDR_REST])) == NULL)
		return NULL;
	m->node_id = sm->id;
	m->state = state_of(sm->state);
	m->incarnation = sm->incarnation;
	conf_member(op, m, ns);
	m->state_age_ms = now > sm->state_since ? now - sm->state_since : 0;
	m->last_heard_ms = sm->last_heard == 0
				   ? -1
				   : (int64_t)(now > sm->last_heard ? now - sm->last_heard : 0);
	return m->role != NULL ? m : NULL;
}

/* This node, with what only it knows: its indexes. */
static Shoal__Member *self_member(struct op *op, const struct api_opts *o,
				  const Shoal__ClusterStatusResponse *s,
				  const struct swim_member *sm, const struct node_status *ns,
				  uint64_t now)
{
	Shoal__Member *m = sm != NULL ? peer_member(op, sm, ns, now)
				      : api_new_msg(op, &shoal__member__descriptor);

	if (m == NULL || (m->client_address = astr(op, o->client_address)) == NULL ||
	    (m->rest_address = astr(op, o->rest_address)) == NULL)
		return NULL;
	m->node_id = o->node_id;
	m->name = s->node_name;
	m->state = sm != NULL ? state_of(sm->state) : SHOAL__MEMBER_STATE__MEMBER_ALIVE;
	if (sm == NULL)
		conf_member(op, m, ns);
	m->applied_index = s->applied_index;
	m->commit_index = s->commit_index;
	m->last_heard_ms = 0;
	return m->role != NULL ? m : NULL;
}

/* s->members: this node, then the others by name. */
static int add_members(struct op *op, const struct api_opts *o, Shoal__ClusterStatusResponse *s,
		       const struct swim *sw, const struct node_status *ns)
{
	size_t n = sw != NULL ? swim_member_count(sw) : 0, k = 0;
	const struct swim_member **v = arena_calloc(&op->arena, n + 1, sizeof *v);
	uint64_t now = sh_clock_mono_ms();

	if (v == NULL ||
	    (s->members = arena_calloc(&op->arena, n + 1, sizeof *s->members)) == NULL ||
	    (s->members[0] = self_member(op, o, s, sw != NULL ? swim_self_member(sw) : NULL, ns,
					 now)) == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const struct swim_member *sm = swim_member_at(sw, i);

		if (sm->id != o->node_id)
			v[k++] = sm;
	}
	qsort(v, k, sizeof *v, by_name);
	s->n_members = 1;
	for (size_t i = 0; i < k; i++)
		if ((s->members[s->n_members++] = peer_member(op, v[i], ns, now)) == NULL)
			return -1;
	return 0;
}

static uint64_t *copy_ids(struct op *op, const uint64_t *v, unsigned n)
{
	uint64_t *c = arena_calloc(&op->arena, n ? n : 1, sizeof *c);

	if (c != NULL && n > 0)
		memcpy(c, v, n * sizeof *v);
	return c;
}

/* The digest of the applied state at the applied index: read again when an
 * entry was applied meanwhile (a few tries; the caller compares indexes). */
static struct digest digest_at(struct store *st, uint64_t *applied)
{
	struct digest d;

	for (int i = 0; i < 4; i++) {
		*applied = store_applied_index(st);
		d = store_digest(st);
		if (store_applied_index(st) == *applied)
			break;
	}
	return d;
}

static void node_fields(struct op *op, Shoal__ClusterStatusResponse *s,
			const struct node_status *ns, const struct api_opts *o)
{
	s->role = astr(op, ns->role);
	s->term = ns->term;
	s->leader_id = ns->leader;
	s->leader_address = astr(op, ns->leader ? node_client_address(o->node, ns->leader) : "");
	s->cluster_id = ns->cluster_id;
	s->commit_index = ns->commit_index;
	s->last_index = ns->last_index;
	s->durable_index = ns->durable_index;
	s->first_index = ns->first_index;
	s->snapshot_index = ns->snapshot_index;
	s->pending_writes = ns->pending_writes;
	s->elections = ns->elections;
	s->leader_changes = ns->leader_changes;
	s->disk_full = ns->disk_full;
	s->disk_full_ms = ns->disk_full_ms;
	s->disk_full_episodes = ns->disk_full_episodes;
	s->voters = copy_ids(op, ns->voters, ns->n_voters);
	s->n_voters = ns->n_voters;
	s->learners = copy_ids(op, ns->learners, ns->n_learners);
	s->n_learners = ns->n_learners;
}

void api_cluster_status(struct op *op, const struct api_opts *o, const struct swim *members)
{
	Shoal__ClusterStatusResponse *s =
		api_new_msg(op, &shoal__cluster_status_response__descriptor);
	struct store *st = db_store(o->db);
	struct node_status *ns = arena_calloc(&op->arena, 1, sizeof *ns);
	struct health_view hv;
	struct digest d;
	char hex[33];

	if (s == NULL || ns == NULL) {
		nomem(op);
		return;
	}
	node_status(o->node, ns);
	d = digest_at(st, &s->applied_index);
	snprintf(hex, sizeof hex, "%016" PRIx64 "%016" PRIx64, d.hi, d.lo);
	s->node_id = o->node_id;
	s->node_name = astr(op, o->node_name);
	node_fields(op, s, ns, o);
	s->digest = astr(op, hex);
	s->collections = store_collections(st);
	s->points = store_points(st);
	s->version = astr(op, PACKAGE_VERSION);
	api_health(op->api, &hv);
	s->ready = hv.ready;
	s->ready_reason = astr(op, hv.reason);
	s->lag = hv.lag;
	s->lag_ms = hv.lag_ms;
	if (s->node_name == NULL || s->ready_reason == NULL || s->role == NULL ||
	    s->digest == NULL || s->version == NULL || s->voters == NULL || s->learners == NULL ||
	    s->leader_address == NULL || add_members(op, o, s, members, ns) != 0) {
		nomem(op);
		return;
	}
	op->resp = &s->base;
	op->status = SHOAL__STATUS_CODE__OK;
}
