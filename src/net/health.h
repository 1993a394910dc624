/*
 * health: how far this node's applied state is behind the commit index it
 * knows, and whether the node is ready to serve (doc/protocol.md,
 * "Health and readiness").
 *
 * The node's indexes come from node_status() (cluster/node.h); this module
 * only remembers when each commit index it saw first became known, so that
 * it can tell how long the oldest committed entry not applied yet has been
 * waiting (lag_ms).  It reads no clock: the caller passes the monotonic
 * time, so that t/health.c can drive it step by step.
 *
 * A node is ready when it is not stopping, it is in the cluster's
 * configuration (role leader, follower, candidate, precandidate or learner,
 * with a cluster id), it has known a leader since it started, and its
 * applied index is at most max_lag_entries behind the commit index and the
 * oldest committed entry it has not applied became known at most
 * max_lag_ms ago.
 *
 * Threads: the loop thread only.  The caller owns the struct.
 */
#ifndef SHOAL_NET_HEALTH_H
#define SHOAL_NET_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/node.h"

#define HEALTH_SAMPLES 256

struct health_opts {
	uint64_t max_lag_entries;
	uint64_t max_lag_ms;
};

struct health {
	struct health_opts o;
	bool seen_leader; /* since start */
	/* when each commit index above the applied one became known, oldest
	 * first: a ring of n entries from head */
	struct {
		uint64_t at_ms, commit;
	} s[HEALTH_SAMPLES];
	size_t head, n;
};

/* What the node is, as /readyz and cluster status report it. */
struct health_view {
	bool ready;
	uint64_t applied_index, commit_index;
	uint64_t lag;     /* commit_index - applied_index */
	uint64_t lag_ms;  /* since the oldest entry committed and not applied became known */
	char reason[192]; /* why not ready; "" when ready */
};

void health_init(struct health *h, const struct health_opts *o);
/* Remember what st says at now_ms (call it often: every tick, and before
 * health_view). */
void health_sample(struct health *h, uint64_t now_ms, const struct node_status *st);
/* The view at now_ms from st (sampled first). */
void health_view(struct health *h, uint64_t now_ms, const struct node_status *st, bool stopping,
		 struct health_view *v);

#endif
