/*
 * swim_world: SWIM nodes in the simulator (t/sim/sim.h), and what the
 * scenarios observe of them.
 *
 * Node i is a struct swim whose cluster address is "n<i>:7471"; the
 * adapter turns swim's sends into sim_send() (UDP -> DGRAM, TCP -> STREAM,
 * with the real 4-byte frame header, so the codec and the framing are
 * exercised) and records every membership event: when each observer saw
 * each member join, become suspect, dead or leave, and how many members
 * each observer holds live.  Two invariants run after every simulator
 * step: no node that is up is ever declared dead unless the scenario
 * allowed it (sw_allow_dead), and no observer ever holds an incarnation of
 * a member that the member itself never had.
 *
 * Single-threaded, like the simulator.
 */
#ifndef SHOAL_T_SWIM_WORLD_H
#define SHOAL_T_SWIM_WORLD_H

#include "cluster/swim.h"
#include "sim/sim.h"

struct sw_node_obs {
	uint64_t joined_at, suspect_at, dead_at, left_at; /* first time, µs; 0 never */
};

struct swim_world {
	struct sim *sim;
	int n;
	struct swim_config cfg;
	uint64_t *ids;           /* node id of each node */
	uint64_t *max_inc;       /* highest incarnation each node ever had */
	int *live;               /* per observer: members held alive or suspect */
	struct sw_node_obs *obs; /* [observer * n + member] */
	bool *dead_ok;           /* members that may be declared dead */
	bool any_dead_ok;        /* partitions: anyone may be */
	uint64_t last_start;     /* when a node last started, µs */
	int started;             /* starts so far, capped at n */
	uint64_t suspects, deads, refutes, events;
	char violation[300];
};

/* A world of n nodes (not started) over a simulator seeded with seed. */
struct swim_world *sw_new(uint64_t seed, int n, const struct swim_config *cfg);
void sw_free(struct swim_world *w);

/* Start node i now: it joins node 0 ("n0:7471") unless it is node 0. */
void sw_start(struct swim_world *w, int i);
/* Start node 0 now and the others at random times within spread_us. */
void sw_start_all(struct swim_world *w, uint64_t spread_us);
struct swim *sw_swim(struct swim_world *w, int i);
/* Node index of a member id, -1 when unknown. */
int sw_index(const struct swim_world *w, uint64_t id);

void sw_allow_dead(struct swim_world *w, int i);

/* Every up node holds every up node (and only those) live. */
bool sw_converged(const struct swim_world *w);
/* Run until every node has started once and sw_converged(), or the limit;
 * returns the time taken (µs) or SIM_NEVER. */
uint64_t sw_run_to_convergence(struct swim_world *w, uint64_t limit);
/* Members whose state differs between observer views, for messages. */
void sw_describe(struct swim_world *w, char *buf, size_t size);

#endif
