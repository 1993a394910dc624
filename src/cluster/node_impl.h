/*
 * node_impl: the node's state, shared by node.c (life cycle, the Raft
 * driver), node_log.c (the in-memory log and AppendEntries), node_write.c
 * (writes, acks, forwarding), node_read.c (read barriers), node_snap.c
 * (snapshots to and from followers) and node_auto.c (bootstrap, voters and
 * learners, cluster changes).  Nothing outside src/cluster/node*.c
 * includes it.
 */
#ifndef SHOAL_CLUSTER_NODE_IMPL_H
#define SHOAL_CLUSTER_NODE_IMPL_H

#include "cluster/node.h"
#include "cluster/peer.h"
#include "cluster/raft_wire.h"
#include "storage/wal.h"
#include "util/rand.h"

#include <protobuf-c/protobuf-c.h>

/* One entry of the in-memory log: where its record lies. */
struct nslot {
	struct wal_buf *b; /* one reference per slot */
	uint32_t off;      /* of the record's body in b->data */
	uint32_t len;
	uint64_t term;
	uint8_t type;
};

/* Entries first .. first + n - 1, a ring. */
struct nlog {
	struct nslot *s;
	size_t cap, head, n;
	uint64_t first;
	size_t bytes;
};

/* A write waiting for its ack, a leader, or a forwarded answer. */
struct pwrite {
	struct node *n;
	enum node_ack ack;
	uint64_t deadline;
	node_done_fn done;
	void *arg;
	/* the entry: the caller's (valid until done), or one decoded here from
	 * a forwarded write (entry, decoded) */
	const struct entry *e;
	struct entry entry;
	bool decoded;
	/* once proposed */
	uint64_t term, index;
	size_t affected;
	bool settled;  /* its answer is known (a duplicate the leader answered) */
	bool all_held; /* ack all: every voter held it (seen while leading) */
	/* once forwarded */
	uint64_t fwd_id, fwd_to;
	/* a change (node_change) instead of an entry */
	int change;
	uint64_t change_id;
	struct pwrite *next;
};

/* A read waiting for its barrier. */
struct pread {
	enum node_read level;
	uint64_t term, index; /* read_your_writes: the token; others: the read point */
	uint64_t read_id;     /* waiting for a read index */
	bool asked;           /* a read index was asked for and not refused */
	uint64_t deadline;
	node_done_fn done;
	void *arg;
	struct pread *next;
};

/* A forwarded write this leader runs for a follower. */
struct fwd_in {
	struct node *n;
	uint64_t from, id;
	struct fwd_in *next, **prev; /* on n->fwd_in, to detach at node_free */
};

/* Snapshot streaming: to a follower, and from the leader. */
struct snap_out {
	uint64_t peer, index, term;
	struct snap_chunks *chunks;
	uint64_t offset;
	bool done_sending;
	uint64_t progress_at; /* a chunk last queued (ms) */
};

struct snap_in {
	uint64_t from, index, term;
	struct snap_recv *r;
	bool installing;
	struct node **tok; /* installing: the callback's way back to the node */
};

#define NODE_MAX_SNAP_OUT 4

/* A bootstrap ballot: ordered by round, then proposer id; 0 0 is none. */
struct boot_ballot {
	uint32_t round;
	uint64_t id;
};

/* Bootstrap (node_boot.c): the acceptor's state, kept in
 * DIR/bootstrap.state, and the proposer's. */
struct node_boot {
	struct boot_ballot promised, accepted;
	struct raft_conf set; /* voters: the set accepted (decided) */
	bool decided;
	struct boot_ballot mine; /* the ballot this node proposes */
	uint64_t mine_at;        /* when it started it (ms) */
	uint64_t since;          /* B acceptors alive since (ms), 0: not */
	uint64_t seen;           /* a hash of every acceptor's state */
	uint64_t moved_at;       /* when it last changed (ms) */
	bool told;               /* "not a founder" logged */
};

struct node {
	struct node_opts o;
	char *name;
	struct raft *raft;
	struct swim *swim; /* membership, once started */
	struct sh_rand rand;
	uint64_t tick_at; /* the next housekeeping round (ms) */
	uint64_t wake_at; /* asked of env.wake_at */
	uint64_t cluster_id;
	bool failed; /* the storage failed: replication stopped */
	bool full;   /* the log cannot grow: read-only (node_full.c) */
	uint64_t full_since, full_retry, full_episodes;
	bool started; /* node_start ran */
	/* the Raft driver */
	const struct raft_wire_msg *rx; /* the message being received */
	struct nlog log;
	uint64_t ddl_upto; /* the last collection create or drop in the log */
	struct peer_part *parts;
	size_t n_parts_cap;
	struct raft_event *evq; /* the core's events, run after it returns */
	size_t n_evq, cap_evq;
	bool progress;    /* commit, durability or acks moved */
	uint64_t hint_at; /* the commit hint last saved (ms) */
	/* writes */
	struct pwrite *wait_leader, *wait_gate, *proposed, *forwarded;
	struct pwrite **wait_gate_tail;
	uint64_t next_fwd_id;
	uint64_t n_pending, n_forwarded;
	uint64_t session_answers; /* retried writes answered from the sessions */
	/* the log time this leader stamps (session.h): the applied log time
	 * when it began leading, plus its monotonic time since */
	uint64_t lt_term, lt_base, lt_mono;
	uint64_t fwd_total; /* writes handed to the leader since start */
	struct fwd_in *fwd_in;
	/* reads */
	struct pread *reads;
	uint64_t next_read_id;
	/* snapshots */
	struct snap_out snap_out[NODE_MAX_SNAP_OUT];
	struct snap_in snap_in;
	/* voters, learners, followers' lag */
	uint64_t caught_up_at[RAFT_MAX_NODES];
	uint64_t caught_up_id[RAFT_MAX_NODES];
	uint64_t auto_at;      /* next management round (ms) */
	struct node_boot boot; /* bootstrap (node_boot.c) */
	uint64_t change_at;    /* the last configuration change proposed (ms) */
	uint64_t elections, leader_changes, last_leader;
	enum raft_role last_role;
};

/* node.c */
uint64_t node_now(void);
void node_schedule(struct node *n); /* ask the world to wake us in time */
void node_flush(struct node *n);    /* raft_flush, then re-arm */
const struct swim_member *node_member(struct node *n, uint64_t id);
uint64_t node_term_at(struct node *n, uint64_t index);
bool node_alive(struct node *n, uint64_t id);
void node_set_cluster_id(struct node *n, uint64_t id);
/* Bootstrap: write the first entry (index 1, term 1, configuration c) and
 * restart the core on it. */
int node_boot_conf(struct node *n, const struct raft_conf *c, struct sh_err *err);
/* Pack m and queue it to node `to` as one frame of `kind` (peer_send's
 * result, or SH_ENOMEM). */
int node_send_msg(struct node *n, uint64_t to, enum peer_kind kind, const ProtobufCMessage *m);
/* The storage failed: stop taking part in replication. */
void node_fail(struct node *n, const struct sh_err *why);

/* node_log.c: the in-memory log */
int node_log_add(struct node *n, struct wal_buf *b);
/* Keep b's records here, then write them (db_append); SH_E* with err. */
int node_log_append_buf(struct node *n, struct wal_buf *b, struct sh_err *err);
void node_log_truncate(struct node *n, uint64_t from);
void node_log_trim(struct node *n); /* drop what is durable beyond the budget */
void node_log_clear(struct node *n);
/* The last entry in memory (0: none). */
uint64_t node_log_last(const struct node *n);
/* Memory the entries after the written log take (node_full.c). */
size_t node_log_unwritten_bytes(struct node *n);
/* Write the entries from..node_log_last() again (from: db_last_index + 1). */
int node_log_rewrite(struct node *n, uint64_t from, struct sh_err *err);
/* Send an AppendEntries the core asked for, with the entries' bodies. */
void node_log_send_append(struct node *n, uint64_t to, const struct raft_msg *m);
/* Append what the core accepted from the message being received. */
void node_log_append_rx(struct node *n, uint64_t first, size_t n_entries);
/* Append a record this node makes itself (a no-op, a configuration). */
int node_log_append_own(struct node *n, uint64_t term, uint64_t index, uint8_t type,
			const void *body, size_t len, struct sh_err *err);

/* node_full.c: a full disk */
void node_full_check(struct node *n); /* after every db_process */
void node_full_tick(struct node *n, uint64_t now);

/* node_write.c */
void node_write_on_role(struct node *n);
void node_write_on_progress(struct node *n); /* durability, commit or acks moved */
void node_write_on_truncate(struct node *n, uint64_t from);
void node_write_on_applied(struct node *n); /* the DDL gate may open */
void node_write_expire(struct node *n, uint64_t now);
void node_write_free_all(struct node *n);
/* Count w as pending and dispatch it. */
void node_write_submit(struct node *n, struct pwrite *w);
/* Send w where it can go now: lead, forward, or wait for a leader. */
void node_write_dispatch(struct node *n, struct pwrite *w);
/* Put w back to wait for a leader (dispatched again at the next tick). */
void node_write_wait(struct node *n, struct pwrite *w);
/* Complete w (on no list) and free it. */
void node_write_finish(struct node *n, struct pwrite *w, int rv, const struct sh_err *err);
/* Put w on the forwarded list. */
void node_write_push_forwarded(struct node *n, struct pwrite *w);
/* Take the forwarded write with this id off its list (NULL if gone). */
struct pwrite *node_write_take_forwarded(struct node *n, uint64_t id);
/* Propose a configuration change, at the leader. */
int node_write_propose_conf(struct node *n, const struct raft_conf *c, uint64_t *index,
			    uint64_t *term, struct sh_err *err);
void node_write_result(struct node *n, node_done_fn done, void *arg, int rv,
		       const struct sh_err *err, uint64_t term, uint64_t index, size_t affected);

/* node_fwd.c: writes and changes between a follower and the leader */
int node_fwd_send(struct node *n, struct pwrite *w); /* 0: forwarded; else wait */
void node_fwd_recv(struct node *n, uint64_t from, const uint8_t *buf, size_t len);
void node_fwd_reply(struct node *n, uint64_t from, const uint8_t *buf, size_t len);
void node_fwd_free_all(struct node *n);

/* node_read.c */
void node_read_on_event(struct node *n, const struct raft_event *ev);
void node_read_on_applied(struct node *n);
void node_read_expire(struct node *n, uint64_t now);
void node_read_free_all(struct node *n);

/* node_snap.c */
void node_snap_needed(struct node *n, uint64_t peer);
void node_snap_writable(struct node *n, uint64_t peer);
void node_snap_recv_chunk(struct node *n, uint64_t from, const uint8_t *buf, size_t len);
void node_snap_recv_ack(struct node *n, uint64_t from, const uint8_t *buf, size_t len);
void node_snap_on_role(struct node *n);
void node_snap_free_all(struct node *n);

/* node_auto.c */
/* node_boot.c */
int node_boot_load(struct node *n, struct sh_err *err);
bool node_boot_pending(struct node *n); /* no configuration yet: bootstrap runs */
void node_boot_failed(struct node *n);  /* the storage failed: no part in it */
void node_boot_tick(struct node *n, uint64_t now);
uint64_t node_boot_hash(const struct raft_conf *c); /* the cluster id of a founder set */

void node_auto_start(struct node *n);
void node_auto_tick(struct node *n, uint64_t now);
void node_auto_swim_event(struct node *n, const struct swim_event *ev);
/* At the leader: make the change w asks for: 0 with w->term and index set
 * (a configuration entry to commit), 1 when done without an entry, or
 * SH_E* with err. */
int node_auto_change(struct node *n, struct pwrite *w, struct sh_err *err);
void node_auto_on_progress(struct node *n, uint64_t peer);
/* Leader: how long since peer last held the leader's whole log. */
uint64_t node_auto_lag_ms(struct node *n, uint64_t peer);

#endif
