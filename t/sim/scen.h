/*
 * scen: the simulator's named scenarios, run by t/sim/simrun and by the
 * tests.  Each scenario builds its world from a seed and a node count, runs
 * it, checks what it is about, and on failure prints the seed, what went
 * wrong and the end of the trace to opts->report.  A protocol adds its
 * scenarios to the table in scen.c.
 */
#ifndef SHOAL_T_SCEN_H
#define SHOAL_T_SCEN_H

#include <stdint.h>
#include <stdio.h>

#include "cluster/swim.h"

struct scen_opts {
	uint64_t seed;
	int nodes;                     /* 0: the scenario's default */
	uint64_t steps;                /* stop after this many events; 0: no limit */
	FILE *trace;                   /* every trace line, or NULL */
	FILE *report;                  /* failure reports (seed, trace tail) */
	const struct swim_config *cfg; /* NULL: memberlist's LAN defaults */
};

struct scen_result {
	uint64_t hash; /* trace hash at the end */
	int nodes;
	double sim_s;  /* simulated seconds */
	double figure; /* the scenario's measured time, seconds, or -1 */
	const char *figure_name;
	double msgs_per_node_s, bytes_per_node_s; /* in the steady part of the run */
	uint64_t suspicions, refutations;
	char msg[512]; /* why it failed */
};

typedef int scen_fn(const struct scen_opts *o, struct scen_result *r);

struct scenario {
	const char *name;
	int nodes;    /* default node count */
	scen_fn *run; /* 0 when the scenario holds, -1 when not */
	const char *what;
};

extern const struct scenario sim_scenarios[];  /* membership (scen.c) */
extern const struct scenario raft_scenarios[]; /* election, replication (raft_scen.c) */
const struct scenario *scen_find(const char *name);

#endif
