/*
 * health: see health.h.  The ring holds one entry per commit index seen
 * (only those above the applied index: the applied ones are dropped), so
 * lag_ms is the age of the first entry whose commit index is above the
 * applied index.  When the ring is full the oldest entry is merged into
 * the next (the next takes its older time): lag_ms can then only be
 * overstated, never understated, and only for a node already behind by
 * HEALTH_SAMPLES commit changes.
 */
#include "build.h"

#include "net/health.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

void health_init(struct health *h, const struct health_opts *o)
{
	memset(h, 0, sizeof *h);
	h->o = *o;
}

#define AT(h, i) ((h)->s[((h)->head + (i)) % HEALTH_SAMPLES])

static void drop_oldest(struct health *h)
{
	h->head = (h->head + 1) % HEALTH_SAMPLES;
	h->n--;
}

/* The commit index the cluster has reached as far as this node knows: a
 * follower's own commit index stops at the end of its log, the leader's
 * (sent with every append) does not. */
static uint64_t known_commit(const struct node_status *st)
{
	return st->leader_commit > st->commit_index ? st->leader_commit : st->commit_index;
}

void health_sample(struct health *h, uint64_t now_ms, const struct node_status *st)
{
	uint64_t commit = known_commit(st);

	if (st->leader != 0)
		h->seen_leader = true;
	while (h->n > 0 && AT(h, 0).commit <= st->applied_index)
		drop_oldest(h);
	if (commit <= st->applied_index || (h->n > 0 && AT(h, h->n - 1).commit >= commit))
		return;
	if (h->n == HEALTH_SAMPLES) {
		uint64_t oldest = AT(h, 0).at_ms;

		drop_oldest(h);
		AT(h, 0).at_ms = oldest;
	}
	AT(h, h->n).at_ms = now_ms;
	AT(h, h->n).commit = commit;
	h->n++;
}

static bool joined(const struct node_status *st)
{
	static const char *const in[] = {"leader", "follower", "candidate", "precandidate",
					 "learner"};

	for (size_t i = 0; i < sizeof in / sizeof in[0]; i++)
		if (strcmp(st->role, in[i]) == 0)
			return st->cluster_id != 0;
	return false;
}

static void why_not(const struct health *h, const struct node_status *st, bool stopping,
		    struct health_view *v)
{
	char *r = v->reason;
	size_t size = sizeof v->reason;

	if (stopping)
		snprintf(r, size, "the node is stopping");
	else if (!joined(st))
		snprintf(r, size, "not in a cluster's configuration yet (role %s)", st->role);
	else if (!h->seen_leader)
		snprintf(r, size, "no leader known since the node started");
	else if (v->lag > h->o.max_lag_entries)
		snprintf(r, size,
			 "catching up: applied index %" PRIu64 " is %" PRIu64
			 " entries behind the commit index %" PRIu64 " (ready within %" PRIu64 ")",
			 v->applied_index, v->lag, v->commit_index, h->o.max_lag_entries);
	else if (v->lag_ms > h->o.max_lag_ms)
		snprintf(r, size,
			 "catching up: committed entries waiting %" PRIu64
			 " ms to be applied (ready within %" PRIu64 " ms)",
			 v->lag_ms, h->o.max_lag_ms);
	else
		r[0] = '\0';
}

void health_view(struct health *h, uint64_t now_ms, const struct node_status *st, bool stopping,
		 struct health_view *v)
{
	health_sample(h, now_ms, st);
	memset(v, 0, sizeof *v);
	v->applied_index = st->applied_index;
	v->commit_index = known_commit(st);
	v->lag = v->commit_index > st->applied_index ? v->commit_index - st->applied_index : 0;
	if (v->lag > 0 && h->n > 0 && now_ms > AT(h, 0).at_ms)
		v->lag_ms = now_ms - AT(h, 0).at_ms;
	why_not(h, st, stopping, v);
	v->ready = v->reason[0] == '\0';
}
