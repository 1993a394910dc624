/*
 * raft_scen: the election and replication scenarios of the simulator (issue
 * 7), registered in scen.c's table as "raft-*".  Each runs a workload (a
 * write at the leader and a linearizable read at a random node every
 * 20 ms) under its faults, with every safety invariant of raft_world.h
 * checked after every step, then heals everything and requires the cluster
 * to settle: one leader, every node caught up with the same digest, every
 * write acknowledged at quorum applied.
 */
#include "build.h"

#include "sim/raft_world.h"
#include "sim/scen.h"
#include "util/alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define SETTLE   (60 * SIM_SEC)
#define WORK_GAP (20 * SIM_MS)

struct rrun {
	struct raft_world *w;
	struct sim *sim;
	const struct scen_opts *o;
	struct scen_result *r;
	int n;
};

static const struct sim_link lan = {.delay_us = 100, .jitter_us = 400};

static int rbegin_opts(struct rrun *x, const struct scen_opts *o, struct scen_result *r, int n,
		       int voters, uint32_t snap_every, const struct raft_opts *opts)
{
	struct raft_opts ro;

	if (opts != NULL)
		ro = *opts;
	else
		raft_opts_default(&ro, 1);
	memset(r, 0, sizeof *r);
	*x = (struct rrun){.o = o, .r = r, .n = n};
	r->nodes = n;
	r->figure = -1;
	x->w = rw_new(o->seed, n, voters, &ro);
	x->w->snap_every = snap_every;
	x->sim = x->w->sim;
	sim_set_step_limit(x->sim, o->steps);
	sim_trace_to(x->sim, o->trace);
	sim_link_set_all(x->sim, &lan);
	rw_start_all(x->w);
	return 0;
}

static int rbegin(struct rrun *x, const struct scen_opts *o, struct scen_result *r, int n,
		  int voters, uint32_t snap_every)
{
	return rbegin_opts(x, o, r, n, voters, snap_every, NULL);
}

static int rfail(struct rrun *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int rfail(struct rrun *x, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	sim_fail(x->sim, "%s", msg);
	return -1;
}

/* Heal, settle, check, and release the world. */
static int rend(struct rrun *x, int rc)
{
	struct scen_result *r = x->r;
	struct raft_world *w = x->w;

	if (rc == 0) {
		sim_heal(x->sim);
		sim_link_set_all(x->sim, &lan);
		for (int i = 0; i < x->n; i++)
			if (!sim_node_up(x->sim, i))
				sim_start(x->sim, i);
		if (rw_settle(w, SETTLE) != 0 && sim_failure(x->sim) == NULL)
			rfail(x, "%s", w->violation);
	}
	r->hash = sim_trace_hash(x->sim);
	r->sim_s = (double)sim_now(x->sim) / SIM_SEC;
	if (sim_failure(x->sim) != NULL) {
		snprintf(r->msg, sizeof r->msg, "%s", sim_failure(x->sim));
		if (x->o->report != NULL)
			sim_report(x->sim, x->o->report, 40);
		rc = -1;
	} else {
		size_t acked = 0;

		for (size_t i = 0; i < w->n_writes; i++)
			acked += w->writes[i].acked;
		snprintf(r->msg, sizeof r->msg,
			 "%zu writes, %zu acked; %llu reads ok, %llu failed; %llu elections, "
			 "%llu truncations, %llu snapshots sent",
			 w->n_writes, acked, (unsigned long long)w->reads_ok,
			 (unsigned long long)w->reads_failed, (unsigned long long)w->elections,
			 (unsigned long long)w->truncations, (unsigned long long)w->snapshots_sent);
	}
	rw_free(w);
	return rc;
}

static int run_for(struct rrun *x, uint64_t t)
{
	return sim_run_until(x->sim, sim_now(x->sim) + t) == 0 ? 0 : -1;
}

static uint64_t rnd(struct rrun *x, uint64_t below)
{
	return sh_rand_below(sim_rand(x->sim), below);
}

/* ------------------------------------------------------------ scenarios */

/* A cluster elects a leader and replicates a steady workload. */
static int raft_basic(const struct scen_opts *o, struct scen_result *r)
{
	struct rrun x;
	int rc = rbegin(&x, o, r, o->nodes ? o->nodes : 3, o->nodes ? o->nodes : 3, 0);

	rw_workload(x.w, WORK_GAP, 20 * SIM_SEC);
	if (rc == 0)
		rc = run_for(&x, 20 * SIM_SEC);
	return rend(&x, rc);
}

/* The leader is killed every 4-8 s and restarted 1-3 s later. */
static int raft_leader_crash(const struct scen_opts *o, struct scen_result *r)
{
	struct rrun x;
	int n = o->nodes ? o->nodes : 5, rc = rbegin(&x, o, r, n, n, 0);

	rw_workload(x.w, WORK_GAP, 60 * SIM_SEC);
	for (int k = 0; rc == 0 && k < 8; k++) {
		int l;

		rc = run_for(&x, (4 + rnd(&x, 5)) * SIM_SEC);
		if (rc != 0 || (l = rw_leader(x.w)) < 0)
			continue;
		sim_crash(x.sim, l);
		rc = run_for(&x, (1 + rnd(&x, 3)) * SIM_SEC);
		sim_start(x.sim, l);
	}
	return rend(&x, rc);
}

/* Followers (a minority at a time) are killed and restarted. */
static int raft_follower_crash(const struct scen_opts *o, struct scen_result *r)
{
	struct rrun x;
	int n = o->nodes ? o->nodes : 5, rc = rbegin(&x, o, r, n, n, 0);

	rw_workload(x.w, WORK_GAP, 50 * SIM_SEC);
	for (int k = 0; rc == 0 && k < 10; k++) {
		int l = rw_leader(x.w), v = (int)rnd(&x, (uint64_t)n);

		if (v != l && n > 2)
			sim_crash(x.sim, v);
		rc = run_for(&x, (2 + rnd(&x, 4)) * SIM_SEC);
		sim_start(x.sim, v);
	}
	return rend(&x, rc);
}

/* Every node is killed at once, losing what it had not fsynced, several
 * times: acknowledged writes survive. */
static int raft_crash_all(const struct scen_opts *o, struct scen_result *r)
{
	struct rrun x;
	int n = o->nodes ? o->nodes : 3, rc = rbegin(&x, o, r, n, n, 0);

	rw_workload(x.w, 5 * SIM_MS, 40 * SIM_SEC);
	for (int k = 0; rc == 0 && k < 5; k++) {
		rc = run_for(&x, (3 + rnd(&x, 5)) * SIM_SEC);
		for (int i = 0; i < n; i++)
			sim_crash(x.sim, i);
		rc = rc ? rc : run_for(&x, rnd(&x, 2000) * SIM_MS);
		for (int i = 0; i < n; i++)
			sim_start(x.sim, i);
	}
	return rend(&x, rc);
}

/* Two sides: group[i] = 1 for the nodes of side one. */
static void split(struct rrun *x, const int *side)
{
	sim_partition(x->sim, side);
}

/* The leader is cut off with a minority; writes proposed there are never
 * acknowledged (the invariants check that everything acked is committed);
 * the majority elects a new leader; then the partition heals. */
static int raft_partition_leader(const struct scen_opts *o, struct scen_result *r)
{
	struct rrun x;
	int n = o->nodes ? o->nodes : 5, rc = rbegin(&x, o, r, n, n, 0);
	int side[64] = {0};

	rw_workload(x.w, WORK_GAP, 40 * SIM_SEC);
	for (int k = 0; rc == 0 && k < 3; k++) {
		int l;

		rc = run_for(&x, 5 * SIM_SEC);
		if (rc != 0 || (l = rw_leader(x.w)) < 0)
			continue;
		memset(side, 0, sizeof side);
		side[l] = 1;
		for (int i = 0, more = (n - 1) / 2 - 1; i < n && more > 0; i++)
			if (i != l && rnd(&x, 2)) {
				side[i] = 1;
				more--;
			}
		split(&x, side);
		rc = run_for(&x, (5 + rnd(&x, 5)) * SIM_SEC);
		sim_heal(x.sim);
	}
	return rend(&x, rc);
}

/* Random partitions every 0.5-3 s for 40 s. */
static int raft_partition_flap(const struct scen_opts *o, struct scen_result *r)
{
	struct rrun x;
	int n = o->nodes ? o->nodes : 5, rc = rbegin(&x, o, r, n, n, 0);
	int side[64];

	rw_workload(x.w, WORK_GAP, 40 * SIM_SEC);
	while (rc == 0 && sim_now(x.sim) < 40 * SIM_SEC) {
		for (int i = 0; i < n; i++)
			side[i] = (int)rnd(&x, 2);
		if (rnd(&x, 3) == 0)
			sim_heal(x.sim);
		else
			split(&x, side);
		rc = run_for(&x, (500 + rnd(&x, 2500)) * SIM_MS);
	}
	return rend(&x, rc);
}

/* Raft over lossy links: 10% loss, 2% duplication, 10% reordering. */
static int raft_lossy(const struct scen_opts *o, struct scen_result *r)
{
	const struct sim_link bad = {.delay_us = 100,
				     .jitter_us = 1000,
				     .loss = 0.10,
				     .dup = 0.02,
				     .reorder = 0.10,
				     .reorder_us = 30000};
	struct rrun x;
	int n = o->nodes ? o->nodes : 5, rc = rbegin(&x, o, r, n, n, 0);

	rw_use_dgram(x.w, true);
	sim_link_set_all(x.sim, &bad);
	rw_workload(x.w, WORK_GAP, 40 * SIM_SEC);
	for (int k = 0; rc == 0 && k < 4; k++) {
		int l;

		rc = run_for(&x, (6 + rnd(&x, 4)) * SIM_SEC);
		if (rc == 0 && (l = rw_leader(x.w)) >= 0 && rnd(&x, 2)) {
			sim_crash(x.sim, l);
			rc = run_for(&x, 2 * SIM_SEC);
			sim_start(x.sim, l);
		}
	}
	return rend(&x, rc);
}

/* A follower cut off for 30 s returns: with PreVote it does not disrupt
 * the leader (same leader, same term afterwards). */
static int raft_prevote(const struct scen_opts *o, struct scen_result *r)
{
	struct rrun x;
	int n = o->nodes ? o->nodes : 5, rc = rbegin(&x, o, r, n, n, 0);
	int side[64] = {0}, l, v;
	uint64_t term;

	rw_workload(x.w, WORK_GAP, 50 * SIM_SEC);
	if (rc == 0)
		rc = run_for(&x, 5 * SIM_SEC);
	if (rc != 0 || (l = rw_leader(x.w)) < 0)
		return rend(&x, rc ? rc : rfail(&x, "no leader after 5 s"));
	v = (l + 1 + (int)rnd(&x, (uint64_t)n - 1)) % n;
	term = raft_term(rw_raft(x.w, l));
	side[v] = 1;
	split(&x, side);
	rc = run_for(&x, 30 * SIM_SEC);
	sim_heal(x.sim);
	if (rc == 0)
		rc = run_for(&x, 10 * SIM_SEC);
	if (rc == 0 && (rw_leader(x.w) != l || raft_term(rw_raft(x.w, l)) != term))
		rc = rfail(&x, "n%d came back and disrupted the leader n%d (term %llu -> %llu)", v,
			   l, (unsigned long long)term,
			   rw_leader(x.w) >= 0
				   ? (unsigned long long)raft_term(rw_raft(x.w, rw_leader(x.w)))
				   : 0ull);
	return rend(&x, rc);
}

/* Membership: 3 voters and 2 learners; the learners are promoted, a voter
 * is removed and added back, one change at a time, while followers crash. */
static int raft_membership(const struct scen_opts *o, struct scen_result *r)
{
	struct rrun x;
	int n = o->nodes ? o->nodes : 5, rc = rbegin(&x, o, r, n, 3, 0);
	struct raft_conf c;
	int done = 0;

	rw_workload(x.w, WORK_GAP, 60 * SIM_SEC);
	while (rc == 0 && sim_now(x.sim) < 60 * SIM_SEC && done < 2 * n) {
		int l = rw_leader(x.w), v = (int)rnd(&x, (uint64_t)n);

		rc = run_for(&x, (1 + rnd(&x, 3)) * SIM_SEC);
		if (rc != 0 || (l = rw_leader(x.w)) < 0)
			continue;
		c = *raft_conf(rw_raft(x.w, l));
		if (done < n - 3) { /* promote a learner */
			c.voters[c.n_voters++] = c.learners[--c.n_learners];
		} else if (c.n_voters > 3 && (done & 1)) { /* demote a voter (not the leader) */
			uint64_t id = c.voters[0] == (uint64_t)l + 1 ? c.voters[1] : c.voters[0];

			for (unsigned i = 0; i < c.n_voters; i++)
				if (c.voters[i] == id)
					c.voters[i] = c.voters[--c.n_voters];
			c.learners[c.n_learners++] = id;
		} else if (c.n_learners > 0) { /* promote it back */
			c.voters[c.n_voters++] = c.learners[--c.n_learners];
		}
		if (rw_conf(x.w, &c) == 0)
			done++;
		if (v != l && rnd(&x, 3) == 0) {
			sim_crash(x.sim, v);
			rc = run_for(&x, SIM_SEC);
			sim_start(x.sim, v);
		}
	}
	if (rc == 0 && done < n - 3)
		rc = rfail(&x, "only %d configuration changes went through", done);
	return rend(&x, rc);
}

/* Local snapshots every 50 entries; a follower cut off long enough for the
 * leader to compact past it is brought back by a snapshot. */
static int raft_snapshot(const struct scen_opts *o, struct scen_result *r)
{
	struct rrun x;
	int n = o->nodes ? o->nodes : 3, rc = rbegin(&x, o, r, n, n, 50);
	int side[64] = {0}, l;

	rw_workload(x.w, 10 * SIM_MS, 30 * SIM_SEC);
	if (rc == 0)
		rc = run_for(&x, 5 * SIM_SEC);
	if (rc == 0 && (l = rw_leader(x.w)) >= 0) {
		side[(l + 1) % n] = 1;
		split(&x, side);
		rc = run_for(&x, 15 * SIM_SEC);
		sim_heal(x.sim);
	}
	if (rc == 0)
		rc = run_for(&x, 10 * SIM_SEC);
	if (rc == 0 && x.w->snapshots_sent == 0)
		rc = rfail(&x, "no follower needed a snapshot");
	return rend(&x, rc);
}

/* Everything at once, at random: crashes, partitions, lossy links,
 * membership changes, snapshots. */
static int raft_chaos(const struct scen_opts *o, struct scen_result *r)
{
	const struct sim_link bad = {.delay_us = 100,
				     .jitter_us = 2000,
				     .loss = 0.05,
				     .dup = 0.02,
				     .reorder = 0.05,
				     .reorder_us = 20000};
	struct rrun x;
	int n = o->nodes ? o->nodes : 5, rc = rbegin(&x, o, r, n, n, 100);
	int side[64];

	rw_use_dgram(x.w, true);
	rw_workload(x.w, WORK_GAP, 60 * SIM_SEC);
	while (rc == 0 && sim_now(x.sim) < 60 * SIM_SEC) {
		int v = (int)rnd(&x, (uint64_t)n);

		switch (rnd(&x, 5)) {
		case 0: sim_crash(x.sim, v); break;
		case 1: sim_start(x.sim, v); break;
		case 2:
			for (int i = 0; i < n; i++)
				side[i] = (int)rnd(&x, 2);
			split(&x, side);
			break;
		case 3: sim_heal(x.sim); break;
		default: sim_link_set_all(x.sim, rnd(&x, 2) ? &bad : &lan); break;
		}
		if (!sim_node_up(x.sim, v) && rnd(&x, 2))
			sim_start(x.sim, v);
		rc = run_for(&x, (300 + rnd(&x, 2000)) * SIM_MS);
	}
	return rend(&x, rc);
}

/* Torture: election timeouts of 50 ms over links whose delay varies by as
 * much (so candidates collide and leaders change all the time, with
 * entries half replicated), 5% loss, partitions and crashes every few
 * hundred ms, PreVote and CheckQuorum on or off at random. */
static int raft_torture(const struct scen_opts *o, struct scen_result *r)
{
	const struct sim_link rough = {.delay_us = 1000,
				       .jitter_us = 30000,
				       .loss = 0.05,
				       .dup = 0.02,
				       .reorder = 0.1,
				       .reorder_us = 30000};
	struct raft_opts ro;
	struct rrun x;
	int n = o->nodes ? o->nodes : 5, rc, side[64];

	raft_opts_default(&ro, 1);
	ro.election_timeout_ms = 50;
	ro.heartbeat_ms = 10;
	ro.prevote = o->seed % 2 == 0;
	ro.check_quorum = o->seed % 3 != 0;
	ro.max_inflight = 4;
	ro.max_batch_entries = 1 + (uint32_t)(o->seed % 3); /* lets Figure 8 happen */
	rc = rbegin_opts(&x, o, r, n, n, o->seed % 4 == 0 ? 30 : 0, &ro);
	x.w->hazard = 0.05;
	rw_use_dgram(x.w, true);
	sim_link_set_all(x.sim, &rough);
	rw_workload(x.w, 3 * SIM_MS, 30 * SIM_SEC);
	while (rc == 0 && sim_now(x.sim) < 30 * SIM_SEC) {
		int v = (int)rnd(&x, (uint64_t)n);

		switch (rnd(&x, 4)) {
		case 0: sim_crash(x.sim, v); break;
		case 1:
			for (int i = 0; i < n; i++)
				side[i] = (int)rnd(&x, 2);
			split(&x, side);
			break;
		case 2: sim_heal(x.sim); break;
		default: break;
		}
		for (int i = 0; i < n; i++)
			if (!sim_node_up(x.sim, i) && rnd(&x, 3) == 0)
				sim_start(x.sim, i);
		rc = run_for(&x, (20 + rnd(&x, 400)) * SIM_MS);
	}
	return rend(&x, rc);
}

const struct scenario raft_scenarios[] = {
	{"raft-basic", 3, raft_basic, "a leader is elected and replicates a steady workload"},
	{"raft-leader-crash", 5, raft_leader_crash, "the leader is killed and restarted, 8 times"},
	{"raft-follower-crash", 5, raft_follower_crash, "followers killed and restarted"},
	{"raft-crash-all", 3, raft_crash_all,
	 "every node killed at once (unsynced writes lost), 5 times"},
	{"raft-partition-leader", 5, raft_partition_leader,
	 "the leader cut off with a minority, 3 times"},
	{"raft-partition-flap", 5, raft_partition_flap, "random partitions every 0.5-3 s"},
	{"raft-lossy", 5, raft_lossy, "10% loss, duplication, reordering; leader crashes"},
	{"raft-prevote", 5, raft_prevote,
	 "a follower cut off for 30 s does not disrupt the leader"},
	{"raft-membership", 5, raft_membership,
	 "learners promoted, voters demoted and promoted, during crashes"},
	{"raft-snapshot", 3, raft_snapshot, "a follower left behind catches up by a snapshot"},
	{"raft-chaos", 5, raft_chaos, "crashes, partitions, lossy links and snapshots at random"},
	{"raft-torture", 5, raft_torture,
	 "50 ms timeouts over 30 ms jitter, loss, partitions and crashes every few 100 ms"},
	{NULL, 0, NULL, NULL},
};
