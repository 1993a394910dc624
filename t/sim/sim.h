/*
 * sim: the deterministic cluster simulator (DESIGN.md section 3).
 *
 * N nodes run in one process, each an opaque protocol instance behind a
 * small vtable (struct sim_proto): the simulator delivers bytes to it, ticks
 * it at the time it asked for, crashes it (the instance is destroyed and its
 * disk loses what was not fsynced) and restarts it (a new instance over the
 * surviving disk).  Time is simulated, in microseconds: the clock jumps to
 * the next event of a priority queue ordered by (time, sequence number), so
 * equal times are broken by the order in which events were scheduled.
 *
 * Streams are connections: a STREAM message sent to a node that is down,
 * or in flight when it crashes, is lost (its next life opens new ones);
 * datagrams in flight reach the next life if it is up by then.
 *
 * The network: per-link delay (min + uniform jitter), loss, duplication,
 * reordering (an extra random delay for some messages), one-way blocks
 * (partitions are built from them) and slow nodes, whose incoming messages
 * wait an extra random time before they are handled.  Two channels: DGRAM
 * (every fault applies) and STREAM (no loss or duplication, FIFO per link,
 * but blocked by partitions: a TCP connection).
 *
 * All randomness comes from the seed: the network draws from the master
 * generator, and each node instance gets its own generator, seeded from the
 * master at start, through sim_node_rand().  The same seed and the same
 * calls replay the same run bit for bit; sim_trace_hash() is a running hash
 * of every trace line (every event, with a checksum of each message's bytes,
 * and whatever the protocols add with sim_tracef()), which the tests compare.
 *
 * Invariants: sim_check_add() registers a function run after every event;
 * the first failure stops the run, and sim_report() prints the seed, the
 * failure and the last trace lines.
 *
 * Single-threaded.  Everything a struct sim owns is freed by sim_free().
 */
#ifndef SHOAL_T_SIM_H
#define SHOAL_T_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/rand.h"

#define SIM_NEVER UINT64_MAX
#define SIM_MS    1000ull
#define SIM_SEC   1000000ull

struct sim;

enum sim_chan { SIM_DGRAM, SIM_STREAM };

/* One protocol, as the simulator drives it.  Times are microseconds. */
struct sim_proto {
	/* Create node `node`'s instance (first boot or restart). */
	void *(*start)(struct sim *sim, int node, void *arg);
	/* Destroy it (crash or end of run): no goodbye is sent. */
	void (*stop)(void *inst);
	void (*deliver)(void *inst, uint64_t now, int from, enum sim_chan ch, const uint8_t *buf,
			size_t len);
	void (*tick)(void *inst, uint64_t now);
	/* When the instance next wants tick(); SIM_NEVER for no wish. */
	uint64_t (*deadline)(void *inst);
};

/* A directed link's behaviour. */
struct sim_link {
	uint32_t delay_us;  /* minimum one-way delay */
	uint32_t jitter_us; /* plus uniform [0, jitter) */
	double loss;        /* DGRAM: probability a message is lost */
	double dup;         /* DGRAM: probability it is delivered twice */
	double reorder;     /* probability of an extra delay in [0, reorder_us) */
	uint32_t reorder_us;
	bool blocked; /* nothing passes (one-way partition) */
	bool cut[2];  /* only this channel is blocked (gossip cut, not the peer links) */
};

struct sim *sim_new(uint64_t seed, int n_nodes, const struct sim_proto *proto, void *arg);
/* Stop every running instance and free everything. */
void sim_free(struct sim *sim);

uint64_t sim_seed(const struct sim *sim);
uint64_t sim_now(const struct sim *sim);
int sim_nodes(const struct sim *sim);
/* The master generator (network, scenarios). */
struct sh_rand *sim_rand(struct sim *sim);
/* Node's own generator (reseeded from the master at each start). */
struct sh_rand *sim_node_rand(struct sim *sim, int node);
void *sim_node_instance(const struct sim *sim, int node);
bool sim_node_up(const struct sim *sim, int node);

/* ---- node lifecycle (now, or scheduled with sim_at) */
void sim_start(struct sim *sim, int node);
void sim_crash(struct sim *sim, int node);
/* Handle the node's incoming messages up to extra_us (random) late; 0 heals. */
void sim_slow(struct sim *sim, int node, uint32_t extra_us);
/* Stop the node until time `until` (SIGSTOP): its deliveries and timers
 * wait and run, in their order, when it resumes; 0 resumes now. */
void sim_pause(struct sim *sim, int node, uint64_t until);
uint64_t sim_paused_until(const struct sim *sim, int node);

/* ---- network */
void sim_link_set(struct sim *sim, int from, int to, const struct sim_link *l);
void sim_link_set_all(struct sim *sim, const struct sim_link *l);
struct sim_link *sim_link(struct sim *sim, int from, int to);
void sim_block(struct sim *sim, int from, int to, bool blocked);
/* Block one channel of a link only. */
void sim_block_chan(struct sim *sim, int from, int to, enum sim_chan ch, bool blocked);
/* Two-way partition: group[i] is node i's side; links across sides block. */
void sim_partition(struct sim *sim, const int *group);
void sim_heal(struct sim *sim);

/* Called by instances: send bytes (copied) from node `from` to node `to`. */
void sim_send(struct sim *sim, int from, int to, enum sim_chan ch, const uint8_t *buf, size_t len);
/* Called by instances whose deadline changed outside deliver/tick. */
void sim_wake(struct sim *sim, int node);

/* ---- simulated disk: per node, files by name; lost on crash unless synced.
 * A crash keeps, in order, a random number of the writes made since the
 * last fsync of each file, the last of them possibly torn. */
int sim_disk_write(struct sim *sim, int node, const char *name, uint64_t off, const void *buf,
		   size_t len);
int sim_disk_fsync(struct sim *sim, int node, const char *name);
/* Bytes read (short at end of file), or -1 when there is no such file. */
long sim_disk_read(struct sim *sim, int node, const char *name, uint64_t off, void *buf,
		   size_t len);
long sim_disk_size(struct sim *sim, int node, const char *name);

/* ---- scheduling and running */
typedef void sim_action_fn(struct sim *sim, void *arg);
void sim_at(struct sim *sim, uint64_t when, sim_action_fn *fn, void *arg);

/* An invariant: return true when it holds, else false with why filled. */
typedef bool sim_check_fn(struct sim *sim, void *arg, char *why, size_t size);
void sim_check_add(struct sim *sim, const char *name, sim_check_fn *fn, void *arg);

/* Run events up to time t (then the clock reads t).  Returns 0, or -1 when
 * an invariant failed or the step limit was reached (see sim_failure). */
int sim_run_until(struct sim *sim, uint64_t t);
/* Run while cond() is true, at most until time limit: 0 when cond became
 * false, 1 when the limit came first, -1 as above. */
typedef bool sim_cond_fn(struct sim *sim, void *arg);
int sim_run_while(struct sim *sim, sim_cond_fn *cond, void *arg, uint64_t limit);
/* Stop after this many events in all (0: no limit). */
void sim_set_step_limit(struct sim *sim, uint64_t steps);
uint64_t sim_steps(const struct sim *sim);

/* Mark the run failed (from a scenario); the first failure is kept. */
void sim_fail(struct sim *sim, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The failure message, or NULL when none. */
const char *sim_failure(const struct sim *sim);

/* ---- trace */
void sim_tracef(struct sim *sim, int node, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
uint64_t sim_trace_hash(const struct sim *sim);
/* Also write every trace line to f (NULL stops). */
void sim_trace_to(struct sim *sim, FILE *f);
/* Print the seed, the failure (if any) and the last n trace lines. */
void sim_report(const struct sim *sim, FILE *f, int n);

/* ---- statistics of the network */
struct sim_net_stats {
	uint64_t sent[2], bytes[2], delivered[2], lost, duplicated, blocked, to_down;
};
void sim_net_stats(const struct sim *sim, struct sim_net_stats *st);

#endif
