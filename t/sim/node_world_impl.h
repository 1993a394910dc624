/*
 * node_world_impl: the whole-node simulator's state, shared by
 * node_world.c (instances, their world, invariants, the run),
 * node_client.c (clients and their history) and node_faults.c (the fault
 * schedule).
 */
#ifndef SHOAL_T_SIM_NODE_WORLD_IMPL_H
#define SHOAL_T_SIM_NODE_WORLD_IMPL_H

#include "sim/node_world.h"
#include "sim/sim.h"

#include "cluster/node.h"
#include "cluster/swim.h"
#include "hist/hist.h"
#include "net/api.h"
#include "storage/datadir.h"
#include "storage/db.h"
#include "storage/hardstate.h"
#include "util/clock.h"
#include "util/rand.h"

#define NW_MAX_NODES      7
#define NW_MAX_CLIENTS    (8 + NW_MAX_NODES) /* load, then final readers */
#define NW_SCRIPT_CLIENTS 4
#define NW_COLL           "c"
#define NW_DIM            2

struct fault;

/* One running node: what a shoald process holds. */
struct nw_inst {
	struct nworld *w;
	int idx;
	uint64_t id;
	struct sh_datadir *datadir;
	struct hardstate *hs;
	struct db *db;
	struct node *node;
	struct swim *swim;
	struct api *api;
	uint64_t cluster_id;
	uint64_t node_wake;         /* local ms, UINT64_MAX: none */
	uint64_t disk_at, apply_at; /* sim us, SIM_NEVER: none */
	bool in_call;               /* inside a call into the node: no re-entry */
	uint64_t skipped;           /* its store's session skips seen so far */
	const char *last_role;      /* traced when it changes */
	uint64_t last_term;
};

/* A node across its lives. */
struct nw_node {
	int idx;
	char dir[32], name[16], addr[3][24];
	uint64_t id;       /* from its data dir, once started */
	int64_t clock_off; /* local us = sim us + off + drift */
	int32_t drift_ppm;
	uint64_t last_mono_us; /* its clock's last reading */
	uint64_t paused_until; /* sim us */
	bool failed_seen;      /* its storage failed: restart scheduled */
	bool full;             /* its disk is full (quota) */
	bool disk_fault;       /* fsyncs are set to fail */
	uint32_t disk_slow_us; /* extra latency of a write */
	bool machine_crash;    /* the next stop loses unsynced data (else kill -9) */
	uint64_t lives;
	uint64_t healed_life; /* its life when every fault healed, 0: not yet */
};

/* What a client is doing. */
struct nw_client {
	struct nworld *w;
	int id;
	bool final; /* a final client: one quorum write, then every key in turn at strong */
	bool final_wrote;
	int home; /* the node it talks to, or -1: any */
	bool busy;
	long hist_i; /* the operation recorded */
	uint8_t kind, level;
	uint64_t key, value;
	int node; /* where the operation runs */
	uint64_t token_term, token_index;
	struct op *op;
	bool orphan;         /* its node crashed: the answer is never seen */
	bool script;         /* a scenario's: one operation, no next */
	uint32_t timeout_ms; /* its deadline, 0: the default */
	/* its client session: the seq of its current write, and how often the
	 * write was sent again after an unknown outcome */
	uint64_t seq;
	int tries;
	bool no_session; /* its writes carry none (a scenario's) */
	bool maybe;      /* an attempt's outcome was unknown: it may apply */
	/* the last answer (scenarios read it) */
	uint8_t outcome;
	int status;
	uint64_t got_value, got_term, got_index;
};

struct nworld {
	struct sim *sim;
	struct nworld_opts o;
	struct nworld_result *res;
	uint64_t seed;
	int n;
	struct nw_node nodes[NW_MAX_NODES];
	struct nw_inst *insts[NW_MAX_NODES];
	int cur; /* the node whose code runs now (its clock, its name), -1 */
	struct sh_clock clock;
	struct sh_rand fs_rand;
	struct swim_config swim_cfg;
	/* clients */
	struct hist *hist;
	struct nw_client clients[NW_MAX_CLIENTS];
	int n_clients;
	struct nw_client script[NW_SCRIPT_CLIENTS];
	uint32_t script_timeout_ms; /* the deadline of the next scenario operation */
	bool script_no_session;     /* the next scenario write goes without a session */
	bool load;                  /* clients issue operations */
	bool coll_ready;            /* the collection exists */
	uint64_t next_version;
	/* invariants */
	uint64_t *leader_of; /* term -> leader id */
	size_t cap_terms;
	struct nw_applied *applied; /* index -> what was applied there first */
	size_t cap_applied;
	uint64_t max_applied;
	/* (client, seq) of every write that applied (not skipped by its
	 * session): none may apply twice (open addressing, 0 empty) */
	uint64_t *applied_seqs;
	size_t cap_seqs, n_seqs;
	uint64_t cluster_id;
	char violation[600];
	struct fault *faults; /* node_faults.c's, all of the run */
	/* phase */
	bool settling, final_reads;
	uint64_t end_at;
};

/* What was applied at an index, first (every node must agree). */
struct nw_applied {
	uint64_t term;
	uint8_t type;
	int rv;
	uint8_t digest[16];
	bool set;
};

/* node_world.c */
uint64_t nw_local_ms(struct nworld *w, int i);
void nw_violation(struct nworld *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Enter and leave node i's context (its clock, its log name). */
int nw_enter(struct nworld *w, int i);
void nw_leave(struct nworld *w, int prev);
/* After calling into instance i: run what the db has finished, schedule
 * its disk and apply work, and re-arm its timer. */
void nw_after(struct nworld *w, int i);
struct nw_inst *nw_inst(struct nworld *w, int i);
uint64_t nw_leader(struct nworld *w); /* an up leader's index + 1, 0: none */

/* node_client.c */
void nwc_init(struct nworld *w);
/* The clients start (once the collection exists) and go on while w->load. */
void nwc_start(struct nworld *w);
/* Node i crashes: its clients' operations are never answered. */
void nwc_on_crash(struct nworld *w, int i);
/* Read every key at strong on every node (the run's last operations). */
void nwc_final_reads(struct nworld *w);
bool nwc_idle(struct nworld *w);
/* The first application of entry r anywhere: record it as the truth
 * (skipped: its session kept it from applying again). */
void nwc_truth(struct nworld *w, const struct wal_rec *r, int rv, bool skipped);
void nwc_free(struct nworld *w);
/* Ask node i for a cluster change (enum node_change) of node id. */
void nwc_change(struct nworld *w, int i, int kind, uint64_t id);
void nwc_ddl(struct nworld *w, int i, bool create);

/* node_client.c, for scenarios: scenario client k (0..NW_SCRIPT_CLIENTS-1)
 * starts one operation at node; its answer lands in the client (busy
 * false again). */
struct nw_client *nwc_script_op(struct nworld *w, int k, int node, uint8_t kind, uint8_t level,
				uint64_t key, uint64_t token_term, uint64_t token_index);

/* node_scen.c */
typedef void nw_script_fn(struct nworld *w);
nw_script_fn *nws_find(const char *name);

/* node_faults.c */
void nwf_schedule(struct nworld *w);
/* Node i's storage failed: restart it soon, as a service manager would. */
void nwf_on_failed(struct nworld *w, int i);
/* Free every fault of the run (pending or done). */
void nwf_free(struct nworld *w);
/* Undo every fault: links, clocks' jumps stay, disks, pauses; restart
 * every node that is down or whose storage failed.  From then on no node
 * may stop or restart (checked after every event). */
void nwf_heal_all(struct nworld *w);

#endif
