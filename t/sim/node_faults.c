/*
 * node_faults: the whole-node simulator's fault schedule (node_world.h).
 *
 * From the seed: a fault every 300 to 1500 ms of the load phase, each of a
 * kind the options allow, each healed after its own duration (a restart,
 * a resume, the link back), so that faults overlap.  A node whose storage
 * failed (a failed fsync, a full disk) is restarted half a second after
 * the failure was seen, as a service manager would: that life of it, not
 * a later one.  Once nwf_heal_all has run no fault fires and what was
 * pending (restarts, resumptions, links back, disks back) finds nothing
 * left to do; only add_back, the operator, goes on.
 */
#include "build.h"

#include "sim/node_world_impl.h"
#include "sim/simfs.h"

#include "util/alloc.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define ELECTION_US (300 * SIM_MS)

struct fault {
	struct fault *next; /* every fault of the run, freed at its end */
	struct nworld *w;
	int kind, node, node2;
	uint64_t until;
	uint64_t life; /* restart_failed: the node's life whose storage failed */
	int group[NW_MAX_NODES];
};

static struct sh_rand *rnd(struct nworld *w)
{
	return sim_rand(w->sim);
}

static int any_node(struct nworld *w)
{
	return (int)sh_rand_below(rnd(w), (uint64_t)w->n);
}

static struct fault *fault_new(struct nworld *w, int kind)
{
	struct fault *f = sh_calloc(1, sizeof *f);

	if (f == NULL)
		abort();
	f->w = w;
	f->kind = kind;
	f->next = w->faults;
	w->faults = f;
	return f;
}

/* ------------------------------------------------------------ healing */

static void restart(struct sim *sim, void *arg)
{
	struct fault *f = arg;

	if (!sim_node_up(sim, f->node))
		sim_start(sim, f->node);
}

static void resume(struct sim *sim, void *arg)
{
	struct fault *f = arg;

	if (sim_paused_until(sim, f->node) <= sim_now(sim))
		sim_pause(sim, f->node, 0);
}

static void unblock(struct sim *sim, void *arg)
{
	struct fault *f = arg;
	struct nworld *w = f->w;

	for (int i = 0; i < w->n; i++)
		for (int j = 0; j < w->n; j++)
			if (f->group[i] != f->group[j]) {
				sim_block(sim, i, j, false);
				sim_block_chan(sim, i, j, SIM_DGRAM, false);
				sim_block_chan(sim, i, j, SIM_STREAM, false);
			}
	sim_tracef(sim, -1, "links back");
}

static void disk_ok(struct sim *sim, void *arg)
{
	struct fault *f = arg;
	struct nw_node *nd = &f->w->nodes[f->node];

	simfs_set_quota(nd->dir, 0);
	simfs_fail_fsync(nd->dir, 0);
	nd->full = false;
	nd->disk_fault = false;
	nd->disk_slow_us = 0;
	sim_tracef(sim, f->node, "disk back");
}

/* ------------------------------------------------------------ faults */

static uint64_t duration(struct nworld *w, uint64_t min, uint64_t max)
{
	return min + sh_rand_below(rnd(w), max - min);
}

static void do_crash(struct nworld *w, struct fault *f, uint64_t now)
{
	f->node = any_node(w);
	if (!sim_node_up(w->sim, f->node))
		return;
	w->nodes[f->node].machine_crash = sh_rand_below(rnd(w), 2) == 0;
	sim_tracef(w->sim, f->node, "%s",
		   w->nodes[f->node].machine_crash ? "machine crash" : "kill -9");
	sim_crash(w->sim, f->node);
	w->res->crashes++;
	sim_at(w->sim, now + duration(w, 50 * SIM_MS, 3 * SIM_SEC), restart, f);
}

static void do_pause(struct nworld *w, struct fault *f, uint64_t now)
{
	uint64_t until = now + duration(w, ELECTION_US / 2, 4 * ELECTION_US);

	f->node = any_node(w);
	sim_pause(w->sim, f->node, until);
	w->res->pauses++;
	sim_at(w->sim, until, resume, f);
}

/* Sides: a random group per node, at least two groups. */
static void random_sides(struct nworld *w, struct fault *f)
{
	int ones = 0;

	for (int i = 0; i < w->n; i++)
		ones += f->group[i] = (int)sh_rand_below(rnd(w), 2);
	if (ones == 0 || ones == w->n)
		f->group[any_node(w)] ^= 1;
}

static void do_cut(struct nworld *w, struct fault *f, uint64_t now)
{
	bool oneway = f->kind == NW_ONEWAY;
	int chan = f->kind == NW_SPLIT ? (int)sh_rand_below(rnd(w), 2) : -1;

	if (w->n < 2)
		return;
	random_sides(w, f);
	for (int i = 0; i < w->n; i++)
		for (int j = 0; j < w->n; j++) {
			if (f->group[i] == f->group[j] || (oneway && f->group[i] != 0))
				continue;
			if (chan < 0)
				sim_block(w->sim, i, j, true);
			else
				sim_block_chan(w->sim, i, j, (enum sim_chan)chan, true);
		}
	sim_tracef(w->sim, -1, "cut %s%s", oneway ? "one way " : "",
		   chan < 0            ? ""
		   : chan == SIM_DGRAM ? "gossip only"
				       : "peer links only");
	w->res->partitions++;
	sim_at(w->sim, now + duration(w, 100 * SIM_MS, 4 * SIM_SEC), unblock, f);
}

static void do_disk(struct nworld *w, struct fault *f, uint64_t now)
{
	struct nw_node *nd;

	f->node = any_node(w);
	nd = &w->nodes[f->node];
	if (f->kind == NW_FSYNC) {
		simfs_fail_fsync(nd->dir, 1);
		nd->disk_fault = true;
		w->res->fsync_failures++;
	} else if (f->kind == NW_FULL) {
		nd->full = true;
		simfs_set_quota(nd->dir, simfs_used(nd->dir) + 4096);
		w->res->full_disks++;
	} else {
		nd->disk_slow_us = (uint32_t)duration(w, 10 * SIM_MS, 200 * SIM_MS);
	}
	sim_tracef(w->sim, f->node, "disk fault %d", f->kind);
	sim_at(w->sim, now + duration(w, 200 * SIM_MS, 3 * SIM_SEC), disk_ok, f);
}

/* Members removed on purpose stay out until added again: as an operator
 * would, add back (through the leader) every member out of the
 * configuration, now and then while the run goes on. */
static void add_back(struct sim *sim, void *arg)
{
	struct fault *f = arg;
	struct nworld *w = f->w;
	uint64_t l = nw_leader(w);
	struct node_status st;

	if (l != 0 && sim_paused_until(sim, (int)l - 1) == 0) {
		node_status(nw_inst(w, (int)l - 1)->node, &st);
		for (int i = 0; i < w->n; i++) {
			bool in = false;

			for (unsigned k = 0; k < st.n_voters; k++)
				in |= st.voters[k] == w->nodes[i].id;
			for (unsigned k = 0; k < st.n_learners; k++)
				in |= st.learners[k] == w->nodes[i].id;
			if (!in && w->nodes[i].id != 0 && nw_inst(w, i) != NULL)
				nwc_change(w, (int)l - 1, NODE_ADD, w->nodes[i].id);
		}
	}
	sim_at(sim, sim_now(sim) + SIM_SEC, add_back, f);
}

static void do_change(struct nworld *w, struct fault *f)
{
	uint64_t l = nw_leader(w);
	int target = any_node(w);

	if (l != 0 && sim_paused_until(w->sim, (int)l - 1) == 0) {
		if (f->kind == NW_TRANSFER) {
			nwc_change(w, (int)l - 1, NODE_TRANSFER,
				   sh_rand_below(rnd(w), 2) ? w->nodes[target].id : 0);
			w->res->transfers++;
		} else if (target != (int)l - 1 && w->nodes[target].id != 0) {
			nwc_change(w, (int)l - 1, NODE_REMOVE, w->nodes[target].id);
			w->res->removals++;
		}
	}
}

static void do_clock(struct nworld *w, struct fault *f)
{
	int i = any_node(w);

	/* a small forward jump, within the lease's slack (doc/consistency.md) */
	w->nodes[i].clock_off += (int64_t)sh_rand_below(rnd(w), 10 * SIM_MS);
	sim_tracef(w->sim, i, "clock jumps");
}

static void do_lossy(struct nworld *w, struct fault *f)
{
	struct sim_link l = {.delay_us = 100,
			     .jitter_us = 400 + (uint32_t)sh_rand_below(rnd(w), 3000),
			     .loss = 0.02 + 0.2 * sh_rand_double(rnd(w)),
			     .dup = 0.05,
			     .reorder = 0.1,
			     .reorder_us = 5000};

	sim_link_set_all(w->sim, &l);
	sim_tracef(w->sim, -1, "lossy datagrams");
}

static void fire(struct sim *sim, void *arg)
{
	struct fault *f = arg;
	struct nworld *w = f->w;
	uint64_t now = sim_now(sim);

	if (w->settling)
		return;
	switch (f->kind) {
	case NW_CRASH: return do_crash(w, f, now);
	case NW_PAUSE: return do_pause(w, f, now);
	case NW_PARTITION:
	case NW_ONEWAY:
	case NW_SPLIT: return do_cut(w, f, now);
	case NW_FSYNC:
	case NW_FULL:
	case NW_SLOWDISK: return do_disk(w, f, now);
	case NW_TRANSFER:
	case NW_MEMBERS: return do_change(w, f);
	case NW_CLOCK: return do_clock(w, f);
	case NW_LOSSY: return do_lossy(w, f);
	case NW_DDL: return nwc_ddl(w, any_node(w), sh_rand_below(rnd(w), 2) == 0);
	default: break;
	}
}

/* ------------------------------------------------------------ the schedule */

static void drift_clocks(struct nworld *w)
{
	for (int i = 0; i < w->n; i++) {
		w->nodes[i].drift_ppm = (int32_t)sh_rand_below(rnd(w), 40001) - 20000;
		w->nodes[i].clock_off = (int64_t)sh_rand_below(rnd(w), 1000 * SIM_SEC);
	}
}

void nwf_schedule(struct nworld *w)
{
	int kinds[16], n = 0;
	uint64_t t = SIM_SEC;

	if (w->o.faults & NW_MEMBERS)
		sim_at(w->sim, 2 * SIM_SEC, add_back, fault_new(w, 0));
	for (int k = 0; k < 13; k++)
		if (w->o.faults & (1u << k))
			kinds[n++] = 1 << k;
	if (w->o.faults & NW_CLOCK)
		drift_clocks(w);
	while (n > 0 && (t += duration(w, 300 * SIM_MS, 1500 * SIM_MS)) + 500 * SIM_MS <
				w->o.run_ms * SIM_MS)
		sim_at(w->sim, t, fire, fault_new(w, kinds[sh_rand_below(rnd(w), (uint64_t)n)]));
}

/* The service manager restarts the process whose storage failed, once
 * its disk works again.  Only that process: when the node started since
 * (a crash fault's restart, or nwf_heal_all, which restarts every node
 * whose storage failed), this restart is moot.  Acting on it anyway
 * killed a healthy later life — after the heal, during the final writes
 * (seed 802192976, scenario heal-failed-restart). */
static void restart_failed(struct sim *sim, void *arg)
{
	struct fault *f = arg;
	struct nworld *w = f->w;

	if (w->nodes[f->node].lives != f->life)
		return;
	if (w->nodes[f->node].full || w->nodes[f->node].disk_fault) {
		sim_at(sim, sim_now(sim) + 500 * SIM_MS, restart_failed, f);
		return;
	}
	if (sim_node_up(sim, f->node))
		sim_crash(sim, f->node); /* the process exited */
	sim_start(sim, f->node);
}

void nwf_on_failed(struct nworld *w, int i)
{
	struct fault *f = fault_new(w, 0);

	f->node = i;
	f->life = w->nodes[i].lives;
	sim_at(w->sim, sim_now(w->sim) + 500 * SIM_MS, restart_failed, f);
}

void nwf_free(struct nworld *w)
{
	while (w->faults != NULL) {
		struct fault *f = w->faults;

		w->faults = f->next;
		sh_free(f);
	}
}

void nwf_heal_all(struct nworld *w)
{
	const struct sim_link lan = {.delay_us = 100, .jitter_us = 400};

	sim_heal(w->sim);
	sim_link_set_all(w->sim, &lan);
	for (int i = 0; i < w->n; i++) {
		struct nw_node *nd = &w->nodes[i];

		sim_pause(w->sim, i, 0);
		simfs_set_quota(nd->dir, 0);
		simfs_fail_fsync(nd->dir, 0);
		nd->full = false;
		nd->disk_fault = false;
		nd->disk_slow_us = 0;
		if (nd->failed_seen && sim_node_up(w->sim, i))
			sim_crash(w->sim, i);
		if (!sim_node_up(w->sim, i))
			sim_start(w->sim, i);
	}
	for (int i = 0; i < w->n; i++)
		w->nodes[i].healed_life = w->nodes[i].lives;
}
