/*
 * raft_world: Raft nodes in the simulator (t/sim/sim.h), with a workload,
 * and the safety properties checked after every simulator step.
 *
 * Node i has id i + 1.  Its durable state lives on the simulator's disk,
 * which loses on a crash what was not fsynced: "hs" (term and vote, written
 * and fsynced before any message that depends on them), "log" (records
 * appended as they come; a truncation is recorded by the next record's
 * lower index or by a reset marker after a snapshot install), "snap" (index,
 * term, configuration and the state machine's digest).  The log is fsynced
 * by a simulated log writer a random 0.2-3 ms after the first write since
 * the last fsync (group commit), which then reports raft_persisted().
 *
 * The state machine is a digest chain over the applied entries; a snapshot
 * is (index, term, configuration, digest).  Messages travel as real
 * raft_wire frames with entry bodies, over STREAM links (a TCP connection:
 * in order, blocked by partitions) or DGRAM ones (loss, duplication,
 * reordering: rw_use_dgram).
 *
 * Invariants, after every step: a vote is durable before it is granted
 * and an entry before it is acknowledged; at most one leader per term; two nodes
 * never apply different entries (or reach different digests) at the same
 * index; two nodes never commit different terms at an index; a leader's
 * log holds every entry committed before its term; a leader never
 * truncates its log; writes acknowledged at quorum are committed at their
 * index and term.  At the end of a scenario, rw_settle() checks liveness:
 * a leader, every live node caught up with the same digest, every
 * acknowledged write applied everywhere.
 */
#ifndef SHOAL_T_RAFT_WORLD_H
#define SHOAL_T_RAFT_WORLD_H

#include "cluster/raft.h"
#include "sim/sim.h"

struct rw_write {
	uint64_t id; /* the write's number, written in its body */
	int node;    /* where it was proposed */
	uint64_t index, term;
	bool acked; /* acknowledged at quorum */
	uint64_t acked_at;
};

struct rw_read {
	uint64_t id;
	int node;
	uint64_t issued_at;
	uint64_t must_see; /* highest index acknowledged before it was issued */
	bool done;
};

struct raft_world {
	struct sim *sim;
	int n;
	struct raft_opts opts;
	bool dgram;          /* raft messages over DGRAM links */
	uint32_t snap_every; /* entries applied between local snapshots (0: never) */
	/* crash a node right after it grants a vote (hazard), or right after
	 * it sends entries as leader (hazard / 4); restarted 5-200 ms later */
	double hazard;
	struct raft_conf conf0;
	struct workload *workloads; /* rw_workload's, freed with the world */

	/* global records for the invariants */
	uint64_t *leader_of_term; /* node id, by term; cap terms */
	size_t terms_cap;
	uint64_t *applied_digest; /* digest after applying index i */
	uint64_t *committed_term; /* term of the entry committed at index i */
	size_t idx_cap;
	uint64_t max_committed;

	struct rw_write *writes;
	size_t n_writes, writes_cap;
	uint64_t next_write;
	struct rw_read *reads;
	size_t n_reads, reads_cap;
	uint64_t reads_ok, reads_failed;

	uint64_t elections, snapshots_sent, truncations;
	char violation[400];
};

/* n nodes, voters: the first n_voters (the others start as learners). */
struct raft_world *rw_new(uint64_t seed, int n, int n_voters, const struct raft_opts *opts);
void rw_free(struct raft_world *w);
void rw_start_all(struct raft_world *w);
void rw_use_dgram(struct raft_world *w, bool on);

struct raft *rw_raft(struct raft_world *w, int i); /* NULL when down */
int rw_leader(struct raft_world *w);               /* -1 when none (the newest term's) */
uint64_t rw_applied(struct raft_world *w, int i);
uint64_t rw_digest(struct raft_world *w, int i);

/* Propose a write on node i (no-op unless it leads); returns 0 on success. */
int rw_write(struct raft_world *w, int i);
/* Issue a linearizable read (ReadIndex) on node i. */
void rw_read(struct raft_world *w, int i);
/* Ask the leader to change the configuration to c. */
int rw_conf(struct raft_world *w, const struct raft_conf *c);

/* A steady workload: every period_us a write at the leader, and a read at a
 * random live node, until `until`. */
void rw_workload(struct raft_world *w, uint64_t period_us, uint64_t until);

/* After the faults: run up to `limit` more and require a leader, every up
 * node applied to the same index with the same digest, every acknowledged
 * write applied.  0 or -1 (why in w->violation). */
int rw_settle(struct raft_world *w, uint64_t limit);

#endif
