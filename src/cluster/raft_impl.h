/*
 * raft_impl: the state of the Raft core, shared by raft.c (life cycle, log
 * index, roles, timers), raft_vote.c (elections), raft_append.c
 * (replication and commit) and raft_read.c (ReadIndex and leases).
 * Nothing outside src/cluster/raft*.c includes it.
 */
#ifndef SHOAL_CLUSTER_RAFT_IMPL_H
#define SHOAL_CLUSTER_RAFT_IMPL_H

#include "cluster/raft.h"

#define RAFT_MAX_INFLIGHT 256

/* A follower as the leader tracks it (dissertation §3.5: nextIndex and
 * matchIndex), plus flow control and the times that leases need. */
struct progress {
	uint64_t id;
	uint64_t next;     /* next entry to send */
	uint64_t match;    /* durable and consistent up to here */
	bool probing;      /* one AppendEntries at a time until the logs match */
	bool snapshotting; /* waiting for raft_snapshot_sent */
	uint64_t snap_at;  /* when the snapshot was asked for (retried if lost) */
	/* batches in flight: their last indexes and sizes, oldest first */
	uint64_t fl_last[RAFT_MAX_INFLIGHT];
	uint64_t fl_bytes[RAFT_MAX_INFLIGHT];
	uint64_t fl_time[RAFT_MAX_INFLIGHT]; /* when each was sent (ms) */
	unsigned fl_head, fl_n;
	uint64_t inflight_bytes;
	uint64_t ack_time;    /* the newest stamp it acknowledged */
	uint64_t last_resp;   /* when it last answered (check quorum) */
	uint64_t last_sent;   /* when it was last sent anything (heartbeats) */
	uint64_t sent_commit; /* the commit index it was last told */
};

struct conf_rec {
	uint64_t index;
	struct raft_conf conf;
};

struct pending_read {
	uint64_t id;
	uint64_t from;     /* node that asked; RAFT_NONE: this node */
	uint64_t index;    /* the read point (0 until this term has committed) */
	uint64_t at;       /* stamp when asked: acks of later stamps confirm it */
	uint64_t deadline; /* forwarded reads: fail when no answer by then (ms) */
	bool forwarded;    /* asked of the leader, waiting for its answer */
};

struct raft {
	struct raft_opts o;
	struct raft_io io;
	uint64_t id;

	/* persistent state (dissertation §3.3) */
	uint64_t term, vote;

	/* the log: snap_index is covered by the snapshot; entries
	 * snap_index + 1 .. snap_index + n are described by the arrays */
	uint64_t snap_index, snap_term;
	struct raft_conf snap_conf;
	uint64_t *terms;
	uint32_t *sizes;
	uint8_t *types;
	size_t n, cap;
	uint64_t durable, commit;
	struct conf_rec *confs; /* configuration entries after the snapshot */
	size_t n_confs, confs_cap;

	enum raft_role role;
	uint64_t leader;
	uint64_t election_at;    /* follower/candidate: start an election then */
	uint64_t leader_contact; /* last message from a leader of this term */
	bool leader_dead;        /* SWIM declared the leader dead */

	/* candidate */
	uint64_t granted[RAFT_MAX_NODES];
	unsigned n_granted;

	/* leader */
	struct progress *peers;
	unsigned n_peers;
	uint64_t heartbeat_at;
	uint64_t quorum_check_at;
	uint64_t term_start;  /* index of this term's no-op */
	uint64_t transfer_to; /* RAFT_NONE: no transfer */
	uint64_t transfer_until;

	/* follower */
	uint64_t match_hint;             /* last index known to agree with the leader's log */
	uint64_t hint_term, hint_leader; /* ... the leader and term it is of */
	bool ack_due;                    /* an AppendEntries response waits for durability */
	uint64_t ack_sent_at;

	/* reads */
	struct pending_read *reads;
	size_t n_reads, reads_cap;

	bool dirty;                  /* leader: something new to send at the next flush */
	uint64_t stamp;              /* the last stamp used: ms << 16, strictly increasing */
	struct raft_entry_meta *out; /* scratch: the entries of one AppendEntries */
};

/* ---- raft.c */
uint64_t log_last(const struct raft *r);
uint64_t log_term(const struct raft *r, uint64_t index);
int log_push(struct raft *r, uint64_t term, uint8_t type, uint32_t size,
	     const struct raft_conf *conf, uint64_t index);
void log_truncate(struct raft *r, uint64_t from);
const struct raft_conf *conf_now(const struct raft *r);
unsigned quorum(const struct raft *r);
void become_follower(struct raft *r, uint64_t now, uint64_t term, uint64_t leader);
void become_leader(struct raft *r, uint64_t now);
void set_term(struct raft *r, uint64_t term, uint64_t vote);
void reset_election_timer(struct raft *r, uint64_t now);
void emit(struct raft *r, enum raft_event_type type, uint64_t peer, uint64_t read_id,
	  uint64_t index);
void emit_role(struct raft *r);
struct progress *peer_find(struct raft *r, uint64_t id);
void peers_sync(struct raft *r, uint64_t now);

/* ---- raft_vote.c */
void start_election(struct raft *r, uint64_t now, bool prevote, bool transfer);
void recv_vote(struct raft *r, uint64_t now, const struct raft_msg *m);
void recv_vote_resp(struct raft *r, uint64_t now, const struct raft_msg *m);

/* ---- raft_append.c */
void send_append(struct raft *r, uint64_t now, struct progress *p, bool heartbeat);
void broadcast_one(struct raft *r, uint64_t now, struct progress *p);
void check_stalls(struct raft *r, uint64_t now);
void broadcast(struct raft *r, uint64_t now, bool heartbeat);
void recv_append(struct raft *r, uint64_t now, const struct raft_msg *m);
void recv_append_resp(struct raft *r, uint64_t now, const struct raft_msg *m);
void maybe_commit(struct raft *r, uint64_t now);
void follower_ack(struct raft *r);
void set_commit(struct raft *r, uint64_t index);

/* ---- raft_read.c */
void reads_check(struct raft *r, uint64_t now);
void reads_fail_all(struct raft *r);
void recv_read_index(struct raft *r, uint64_t now, const struct raft_msg *m);
void recv_read_index_resp(struct raft *r, uint64_t now, const struct raft_msg *m);
void reads_expire(struct raft *r, uint64_t now);
uint64_t next_stamp(struct raft *r, uint64_t now);

#endif
