/*
 * api_cluster: the cluster status method (see api.h), on the loop thread.
 *
 * It reports this node's storage state and every member the membership
 * layer knows, itself first and the others by name.  Until replication is
 * wired, every node is a single-node cluster of its own: only this node's
 * role, indexes and vote are known, the other members show their SWIM view
 * (state, incarnation, addresses, how long since last heard) alone.
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

/* Another member, as the SWIM view has it. */
static Shoal__Member *peer_member(struct op *op, const struct swim_member *sm, uint64_t now)
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
	/* role stays "": not known here until replication exists */
	m->state_age_ms = now > sm->state_since ? now - sm->state_since : 0;
	m->last_heard_ms = sm->last_heard == 0
				   ? -1
				   : (int64_t)(now > sm->last_heard ? now - sm->last_heard : 0);
	return m;
}

/* This node, with what only it knows: its role and indexes. */
static Shoal__Member *self_member(struct op *op, const struct api_opts *o,
				  const Shoal__ClusterStatusResponse *s,
				  const struct swim_member *sm, uint64_t now)
{
	Shoal__Member *m =
		sm != NULL ? peer_member(op, sm, now) : api_new_msg(op, &shoal__member__descriptor);

	if (m == NULL || (m->client_address = astr(op, o->client_address)) == NULL ||
	    (m->rest_address = astr(op, o->rest_address)) == NULL)
		return NULL;
	m->node_id = o->node_id;
	m->name = s->node_name;
	m->state = sm != NULL ? state_of(sm->state) : SHOAL__MEMBER_STATE__MEMBER_ALIVE;
	m->role = s->role;
	m->voter = true;
	m->applied_index = s->applied_index;
	m->commit_index = s->commit_index;
	m->last_heard_ms = 0;
	return m;
}

/* s->members: this node, then the others by name. */
static int add_members(struct op *op, const struct api_opts *o, Shoal__ClusterStatusResponse *s,
		       const struct swim *sw)
{
	size_t n = sw != NULL ? swim_member_count(sw) : 0, k = 0;
	const struct swim_member **v = arena_calloc(&op->arena, n + 1, sizeof *v);
	uint64_t now = sh_clock_mono_ms();

	if (v == NULL ||
	    (s->members = arena_calloc(&op->arena, n + 1, sizeof *s->members)) == NULL ||
	    (s->members[0] =
		     self_member(op, o, s, sw != NULL ? swim_self_member(sw) : NULL, now)) == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const struct swim_member *sm = swim_member_at(sw, i);

		if (sm->id != o->node_id)
			v[k++] = sm;
	}
	qsort(v, k, sizeof *v, by_name);
	s->n_members = 1;
	for (size_t i = 0; i < k; i++)
		if ((s->members[s->n_members++] = peer_member(op, v[i], now)) == NULL)
			return -1;
	return 0;
}

void api_cluster_status(struct op *op, const struct api_opts *o, const struct swim *members,
			uint64_t last_index)
{
	Shoal__ClusterStatusResponse *s =
		api_new_msg(op, &shoal__cluster_status_response__descriptor);
	struct store *st = db_store(o->db);
	struct digest d = store_digest(st);
	char hex[33];

	if (s == NULL || (s->voters = arena_calloc(&op->arena, 1, sizeof *s->voters)) == NULL) {
		nomem(op);
		return;
	}
	snprintf(hex, sizeof hex, "%016" PRIx64 "%016" PRIx64, d.hi, d.lo);
	s->node_id = o->node_id;
	s->node_name = astr(op, o->node_name);
	s->role = astr(op, "single");
	s->term = API_TERM;
	s->leader_id = o->node_id;
	s->applied_index = store_applied_index(st);
	s->commit_index = s->applied_index; /* acknowledged = durable and applied */
	s->last_index = last_index;
	s->digest = astr(op, hex);
	s->collections = store_collections(st);
	s->points = store_points(st);
	s->version = astr(op, PACKAGE_VERSION);
	s->voters[s->n_voters++] = o->node_id;
	if (s->node_name == NULL || s->role == NULL || s->digest == NULL || s->version == NULL ||
	    add_members(op, o, s, members) != 0) {
		nomem(op);
		return;
	}
	op->resp = &s->base;
	op->status = SHOAL__STATUS_CODE__OK;
}
