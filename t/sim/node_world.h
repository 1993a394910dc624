/*
 * node_world: the whole-node simulator (issue 10; DESIGN.md section 3;
 * doc/simulator.md).
 *
 * N complete nodes run in one thread on simulated time (sim.h): each is
 * the real storage (db.h in manual mode, on simfs.h's crashable disk, with
 * the real data dir and hard state), the real node (node.h: acks, read
 * barriers, forwarding, snapshot streaming, bootstrap, autopilot) over a
 * node_env whose links are the simulator's streams, the real membership
 * core (swim.h) on the simulator's datagrams and streams, and the real
 * client API (api.h, its search pool inline).  Each node has its own clock
 * (drift, small forward jumps) read through util/clock.h, and its own
 * random numbers, all from the seed.
 *
 * Simulated clients call the API as the servers' frontends do: upserts of
 * one point whose payload carries a version unique in the run, deletes,
 * and reads of one point at every consistency level (read_your_writes
 * with the client's last token); every operation goes into a history
 * (t/hist/hist.h).  Meanwhile a fault schedule drawn from the seed crashes
 * and restarts nodes (unsynced data lost), pauses them (SIGSTOP), cuts
 * links both ways or one way, for datagrams (gossip) or streams (peer
 * links) or both, loses, duplicates and delays datagrams, fails fsyncs,
 * fills disks, hands leadership over and removes members.  At the end
 * every fault heals, every node restarts, the cluster settles, and every
 * key is read at strong on every node.
 *
 * Checked: after every event, at most one leader per term, one cluster id
 * per run, and every entry applied anywhere equal (term, content and the
 * state digest after it) to what any other node applied at that index; at
 * the end, the history (hist_check: linearizable strong/quorum reads, no
 * acknowledged quorum write lost, RYW, no false "lost", no ghost), with
 * the entries applied as the truth, and equal state on every node.
 *
 * Not simulated (doc/simulator.md): threads (the log writer, the apply
 * thread and the search pool run as steps of the one thread: their
 * interleavings with each other are not explored), the TCP connection
 * handshake and its back-pressure (a link never reports a backlog), REST
 * and the binary framing (the API is called directly), clocks that stop or
 * jump backwards, and HNSW's approximate search (reads are by id).
 *
 * One run at a time per process (simfs and the clock are process-wide).
 */
#ifndef SHOAL_T_SIM_NODE_WORLD_H
#define SHOAL_T_SIM_NODE_WORLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Fault kinds, a bit each. */
enum {
	NW_CRASH = 1u << 0,     /* kill -9 and restart */
	NW_PAUSE = 1u << 1,     /* SIGSTOP for longer than an election timeout */
	NW_PARTITION = 1u << 2, /* two sides, both ways */
	NW_ONEWAY = 1u << 3,    /* one direction of some links */
	NW_SPLIT = 1u << 4,     /* gossip cut, peer links fine, or the reverse */
	NW_LOSSY = 1u << 5,     /* datagram loss, duplication, reordering */
	NW_CLOCK = 1u << 6,     /* clock drift and small forward jumps */
	NW_FSYNC = 1u << 7,     /* a failed fsync (the node stops, is restarted) */
	NW_FULL = 1u << 8,      /* a full disk for a while */
	NW_TRANSFER = 1u << 9,  /* leadership transfers */
	NW_MEMBERS = 1u << 10,  /* a member removed (and re-added by the autopilot) */
	NW_SLOWDISK = 1u << 11, /* fsyncs that take long */
	NW_DDL = 1u << 12,      /* a second collection created and dropped */
	NW_ALL = (1u << 13) - 1,
};

struct nworld_opts {
	int nodes;                 /* 1..7 */
	unsigned bootstrap_expect; /* 0: all nodes */
	int clients;               /* 0: 3 */
	int keys;                  /* 0: 12 */
	uint64_t run_ms;           /* load and faults (0: 8000), then settling */
	unsigned faults;           /* NW_* */
	uint32_t snapshot_entries; /* 0: 40 (small, so that compaction happens) */
	const char *scenario;      /* a scripted scenario (node_scen.c) instead of the
				    * random load and faults, or NULL */
	FILE *trace;               /* every trace line, or NULL */
	bool log;                  /* the nodes' log lines (debug) on stderr */
	FILE *report;              /* violations and the last trace lines, or NULL */
};

struct nworld_result {
	size_t violations;
	char first[600]; /* the first violation, "" when none */
	uint64_t sim_ms, events;
	uint64_t ops, writes_ok, writes_unknown, reads_ok, lost_answers;
	uint64_t retries, dedups; /* writes sent again; entries their session skipped */
	uint64_t crashes, restarts, pauses, partitions, fsync_failures, full_disks;
	uint64_t transfers, removals, elections, leaders, installs, snapshots;
	uint64_t max_term, applied;
	uint64_t trace_hash;
};

/* Run one seed.  Returns 0 when every check passed, else -1 (res says
 * what failed; a report, when asked, with the replay command). */
int nworld_run(uint64_t seed, const struct nworld_opts *o, struct nworld_result *res);

/* Options drawn from a seed (sizes 1..7, every fault kind), as the test
 * and check-sim-long run them. */
void nworld_random_opts(uint64_t seed, struct nworld_opts *o);

/* The scripted scenarios: each reproduces one way a node could break a
 * promise (issue 10), with the cluster size it needs; NULL-terminated. */
struct nworld_scenario {
	const char *name;
	int nodes;
	const char *what;
	int expect; /* bootstrap_expect, 0: nodes */
};
extern const struct nworld_scenario nworld_scenarios[];

#endif
