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
struct raft_progress {
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

struct raft_pending_read {
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
	uint64_t refuse_until;   /* a restarted voter refuses votes until then */
	bool leader_dead;        /* SWIM declared the leader dead */
	bool standby;            /* raft_set_standby: never campaigns, hands leadership over */

	/* candidate */
	uint64_t granted[RAFT_MAX_NODES];
	unsigned n_granted;

	/* leader */
	struct raft_progress *peers;
	unsigned n_peers;
	uint64_t heartbeat_at;
	uint64_t quorum_check_at;
	uint64_t term_start;  /* index of this term's no-op */
	uint64_t transfer_to; /* RAFT_NONE: no transfer */
	uint64_t transfer_until;
	uint64_t lease_floor; /* only acks of stamps above it make a lease */
	/* follower: the newest stamp a message of this term's leader carried;
	 * candidate after a TimeoutNow: the transfer's deadline, as a stamp,
	 * which its vote requests carry */
	uint64_t leader_stamp, transfer_stamp;

	/* follower */
	uint64_t match_hint;             /* last index known to agree with the leader's log */
	uint64_t leader_commit;          /* the highest commit index this term's leader sent */
	uint64_t hint_term, hint_leader; /* ... the leader and term it is of */
	bool ack_due;                    /* an AppendEntries response waits for durability */
	uint64_t ack_sent_at;

	/* reads */
	struct raft_pending_read *reads;
	size_t n_reads, reads_cap;

	bool dirty;                  /* leader: something new to send at the next flush */
	uint64_t stamp;              /* the last stamp used: ms << 16, strictly increasing */
	struct raft_entry_meta *out; /* scratch: the entries of one AppendEntries */
};

/* ---- raft.c */
uint64_t raft__log_last(const struct raft *r);
uint64_t raft__log_term(const struct raft *r, uint64_t index);
int raft__log_push(struct raft *r, uint64_t term, uint8_t type, uint32_t size,
		   const struct raft_conf *conf, uint64_t index);
void raft__log_truncate(struct raft *r, uint64_t from);
const struct raft_conf *raft__conf_now(const struct raft *r);
unsigned raft__quorum(const struct raft *r);
void raft__become_follower(struct raft *r, uint64_t now, uint64_t term, uint64_t leader);
void raft__become_leader(struct raft *r, uint64_t now);
void raft__set_term(struct raft *r, uint64_t term, uint64_t vote);
void raft__reset_election_timer(struct raft *r, uint64_t now);
void raft__emit(struct raft *r, enum raft_event_type type, uint64_t peer, uint64_t read_id,
		uint64_t index);
void raft__emit_role(struct raft *r);
struct raft_progress *raft__peer_find(struct raft *r, uint64_t id);
void raft__peers_sync(struct raft *r, uint64_t now);

/* ---- raft_vote.c */
void raft__start_election(struct raft *r, uint64_t now, bool prevote, bool transfer);
void raft__recv_vote(struct raft *r, uint64_t now, const struct raft_msg *m);
void raft__recv_vote_resp(struct raft *r, uint64_t now, const struct raft_msg *m);

/* ---- raft_append.c */
void raft__send_append(struct raft *r, uint64_t now, struct raft_progress *p, bool heartbeat);
void raft__broadcast_one(struct raft *r, uint64_t now, struct raft_progress *p);
void raft__check_stalls(struct raft *r, uint64_t now);
void raft__broadcast(struct raft *r, uint64_t now, bool heartbeat);
void raft__recv_append(struct raft *r, uint64_t now, const struct raft_msg *m);
void raft__recv_append_resp(struct raft *r, uint64_t now, const struct raft_msg *m);
void raft__maybe_commit(struct raft *r, uint64_t now);
void raft__follower_ack(struct raft *r);
void raft__set_commit(struct raft *r, uint64_t index);

/* ---- raft_read.c */
void raft__reads_check(struct raft *r, uint64_t now);
void raft__reads_fail_all(struct raft *r);
void raft__recv_read_index(struct raft *r, uint64_t now, const struct raft_msg *m);
void raft__recv_read_index_resp(struct raft *r, uint64_t now, const struct raft_msg *m);
void raft__reads_expire(struct raft *r, uint64_t now);
uint64_t raft__next_stamp(struct raft *r, uint64_t now);
/* A TimeoutNow to `to`, carrying the transfer's deadline as a stamp. */
void raft__send_timeout_now(struct raft *r, uint64_t to);

#endif
