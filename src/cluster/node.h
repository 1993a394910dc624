/*
 * node: a cluster node — the Raft core (raft.h) driven over the storage
 * (db.h, in raft mode), the peer links (peer.h) and membership (swim.h);
 * the write path with its ack levels, the read barriers of the
 * consistency levels, bootstrap, and the leader's management of voters
 * and learners (DESIGN.md sections 6 to 8; doc/replication.md).
 *
 * Every node runs Raft, a single node too (one voter, which elects itself
 * at once).  A write reaching a follower is forwarded to the leader; while
 * there is no leader writes wait, up to their deadline.  A write is
 * acknowledged when its ack level holds:
 *
 *   leader  durable in the leader's log
 *   one     durable on the leader and one more voter (or the only voter)
 *   quorum  committed: durable on a majority of voters
 *   all     durable on every voter (refused at once when a voter is down)
 *
 * and always returns its token (term, index).  It becomes searchable when
 * a node has applied it; the read barriers wait for that.
 *
 * The node does no I/O of its own beyond the storage: its world — the peer
 * links, one timer and the clock — comes through struct node_env, which
 * node_net.h implements over libevent and TCP for shoald and the
 * simulator (t/sim/node_world.c) implements on simulated time and network.
 * Time is read with sh_clock_mono_ms() (util/clock.h), which the
 * simulator replaces with each node's own clock.
 *
 * Runs on one thread (the loop's); not thread-safe.  The db, datadir,
 * hard state and membership outlive the node.
 */
#ifndef SHOAL_CLUSTER_NODE_H
#define SHOAL_CLUSTER_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/peer.h"
#include "cluster/raft.h"
#include "cluster/swim.h"
#include "storage/entry.h"
#include "util/err.h"

struct db;
struct sh_datadir;
struct hardstate;

enum node_ack { NODE_ACK_LEADER = 1, NODE_ACK_ONE, NODE_ACK_QUORUM, NODE_ACK_ALL };
enum node_read { NODE_EVENTUAL = 1, NODE_READ_YOUR_WRITES, NODE_STRONG, NODE_QUORUM };

/* A node's world.  Frames sent to a peer arrive (or not: a link may drop
 * what it holds when it fails) in order; inputs come back through
 * node_peer_recv(), node_peer_writable() and node_wake(). */
struct node_env {
	void *data;
	/* Queue one frame to node `to`, as peer_send() (peer.h) does. */
	int (*send)(void *data, uint64_t to, enum peer_kind kind, const struct peer_part *parts,
		    size_t n);
	/* Bytes queued to `to` and not yet sent. */
	size_t (*backlog)(void *data, uint64_t to);
	/* Close the link to `to` (it reconnects at the next send). */
	void (*drop)(void *data, uint64_t to);
	/* This node now belongs to cluster id: links of other clusters are
	 * refused from now on. */
	void (*set_cluster_id)(void *data, uint64_t id);
	/* Call node_wake() at monotonic time at_ms (or soon after); replaces
	 * the wish made before. */
	void (*wake_at)(void *data, uint64_t at_ms);
	/* Optional: may member id be made a learner?  With authenticated peer
	 * links (keyring or certificates), only once a link to it has
	 * completed its handshake (the call starts one): a process that joined
	 * the gossip but cannot authenticate is never added.  NULL: always. */
	bool (*trusted)(void *data, uint64_t id);
};

struct node_opts {
	struct node_env env;
	struct db *db;
	struct sh_datadir *datadir;
	struct hardstate *hs;
	uint64_t id;
	const char *name;
	unsigned bootstrap_expect; /* voters to bootstrap with; 0: join a cluster */
	unsigned max_voters;
	uint32_t remove_dead_after_ms; /* 0: never remove dead voters */
	struct raft_opts raft;         /* id set by the node */
	size_t max_frame;              /* bytes of one peer frame */
	size_t max_output;             /* bytes queued to one peer */
	size_t cache_bytes;            /* recent log entries kept in memory */
	uint32_t forward_timeout_ms;   /* longest wait for a forwarded write */
	uint64_t seed;                 /* of the node's random numbers; 0: from the OS */
};

/* What a write or a read barrier came to. */
struct node_result {
	int rv; /* 0, or SH_E*: UNAVAIL (no leader; leader set when known),
		 * TIMEDOUT (outcome unknown), others from the checks */
	struct sh_err err;
	uint64_t term, index; /* a write's token */
	size_t affected;
	uint64_t leader;            /* the leader, when known */
	const char *leader_address; /* its client address, "" when unknown */
};

typedef void (*node_done_fn)(void *arg, const struct node_result *r);

struct node;

int node_new(const struct node_opts *o, struct node **out, struct sh_err *err);
/* Membership is up: take its view and events (call once).  The node
 * reads the members and sets the cluster id it learns (swim_set_cluster_id). */
void node_start(struct node *n, struct swim *members);
/* Stop: pending writes and reads complete with SH_ESHUTDOWN. */
void node_free(struct node *n);

/* Inputs from the world. */
void node_swim_event(struct node *n, const struct swim_event *ev);
void node_db_progress(struct node *n); /* after db_process() */
/* A frame from node `from` (buf valid during the call). */
void node_peer_recv(struct node *n, uint64_t from, enum peer_kind kind, const uint8_t *buf,
		    size_t len);
/* The queue to `to` drained (below a quarter of max_output). */
void node_peer_writable(struct node *n, uint64_t to);
/* The link node `from` opened to this one ended (raft_leader_link_lost). */
void node_peer_gone(struct node *n, uint64_t from);
/* The time asked for with env.wake_at came. */
void node_wake(struct node *n);
/* The cluster address of node id from membership (NULL when unknown). */
const char *node_peer_address(struct node *n, uint64_t id);
/* Node id's name as membership knows it, or NULL. */
const char *node_peer_name(struct node *n, uint64_t id);

/* Make e a log entry and call done once `ack` holds, or it fails, or the
 * deadline (monotonic ms) passes.  done may run before this returns. */
void node_write(struct node *n, const struct entry *e, enum node_ack ack, uint64_t deadline_ms,
		node_done_fn done, void *arg);

/* Call done once a read at `level` may run on this node (rv 0), or when it
 * cannot (DESIGN.md section 7): eventual at once; read_your_writes once the
 * entry of the token is applied here (FAILED_PRECONDITION-like SH_EINVAL
 * when the token's entry was replaced: a lost write); strong: a leader
 * inside its lease, else a confirmed read index; quorum: a read index
 * confirmed by the leader's majority, applied here. */
void node_read(struct node *n, enum node_read level, uint64_t token_term, uint64_t token_index,
	       uint64_t deadline_ms, node_done_fn done, void *arg);

/* Cluster management, at the leader (forwarded from a follower).  Add a
 * member as a learner (promoted once caught up while voters are fewer than
 * max_voters), remove a voter or learner, hand leadership over. */
enum node_change { NODE_ADD = 1, NODE_REMOVE, NODE_TRANSFER };
void node_change(struct node *n, enum node_change what, uint64_t id, uint64_t deadline_ms,
		 node_done_fn done, void *arg);

/* ------------------------------------------------------------ status */

struct node_peer_status {
	uint64_t id;
	bool voter;
	uint64_t match;  /* leader: durable on it up to here */
	uint64_t lag;    /* entries behind the leader's log */
	uint64_t lag_ms; /* since it last held the leader's whole log */
};

/* Every role node_status reports, NULL-terminated. */
extern const char *const node_role_names[];

struct node_status {
	const char *role; /* one of node_role_names */
	uint64_t term, leader, cluster_id;
	uint64_t first_index, last_index, durable_index, commit_index, applied_index;
	uint64_t leader_commit; /* raft_leader_commit: >= commit_index */
	uint64_t snapshot_index;
	unsigned n_voters, n_learners;
	uint64_t voters[RAFT_MAX_NODES], learners[RAFT_MAX_NODES];
	size_t n_peers; /* leader only */
	struct node_peer_status peers[RAFT_MAX_NODES];
	uint64_t pending_writes, forwarded_writes;
	uint64_t forwarded_total; /* writes handed to the leader since start */
	/* client sessions (storage/session.h): held; retried writes answered
	 * from them at this node while leading; entries they kept from
	 * applying again */
	uint64_t sessions, session_answers, session_skipped;
	uint64_t elections, leader_changes;
	/* the disk is full: read-only for disk_full_ms; how often it was
	 * (doc/operations.md, "Disk full") */
	bool disk_full;
	uint64_t disk_full_ms, disk_full_episodes;
};

void node_status(struct node *n, struct node_status *st);
/* Does this node lead inside its lease now (strong reads without a round
 * trip; doc/consistency.md)? */
bool node_lease_valid(struct node *n);
/* The client address of node id from membership ("" when unknown). */
const char *node_client_address(struct node *n, uint64_t id);

#endif
