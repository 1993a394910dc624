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

#include <event2/event.h>

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

struct node {
	struct node_opts o;
	char *name;
	struct raft *raft;
	struct peer_net *peers;
	struct swim_net *swim_net;
	const struct swim *swim;
	struct sh_rand rand;
	struct event *timer, *tick;
	uint64_t cluster_id;
	bool failed;  /* the storage failed: replication stopped */
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
	uint64_t auto_at;    /* next management round (ms) */
	uint64_t boot_since; /* bootstrap: enough members alive since (ms) */
	uint64_t change_at;  /* the last configuration change proposed (ms) */
	uint64_t elections, leader_changes, last_leader;
	enum raft_role last_role;
};

/* node.c */
uint64_t node_now(void);
void node_schedule(struct node *n); /* re-arm the Raft timer */
void node_flush(struct node *n);    /* raft_flush, then re-arm */
const struct swim_member *node_member(struct node *n, uint64_t id);
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
int nlog_add(struct node *n, struct wal_buf *b);
/* Keep b's records here, then write them (db_append); SH_E* with err. */
int nlog_append_buf(struct node *n, struct wal_buf *b, struct sh_err *err);
void nlog_truncate(struct node *n, uint64_t from);
void nlog_trim(struct node *n); /* drop what is durable beyond the budget */
void nlog_clear(struct node *n);
/* Send an AppendEntries the core asked for, with the entries' bodies. */
void nlog_send_append(struct node *n, uint64_t to, const struct raft_msg *m);
/* Append what the core accepted from the message being received. */
void nlog_append_rx(struct node *n, uint64_t first, size_t n_entries);
/* Append a record this node makes itself (a no-op, a configuration). */
int nlog_append_own(struct node *n, uint64_t term, uint64_t index, uint8_t type, const void *body,
		    size_t len, struct sh_err *err);

/* node_write.c */
void nw_on_role(struct node *n);
void nw_on_progress(struct node *n); /* durability, commit or acks moved */
void nw_on_truncate(struct node *n, uint64_t from);
void nw_on_applied(struct node *n); /* the DDL gate may open */
void nw_expire(struct node *n, uint64_t now);
void nw_free_all(struct node *n);
/* Count w as pending and dispatch it. */
void nw_submit(struct node *n, struct pwrite *w);
/* Send w where it can go now: lead, forward, or wait for a leader. */
void nw_dispatch(struct node *n, struct pwrite *w);
/* Put w back to wait for a leader (dispatched again at the next tick). */
void nw_wait(struct node *n, struct pwrite *w);
/* Complete w (on no list) and free it. */
void nw_finish(struct node *n, struct pwrite *w, int rv, const struct sh_err *err);
/* Put w on the forwarded list. */
void nw_push_forwarded(struct node *n, struct pwrite *w);
/* Take the forwarded write with this id off its list (NULL if gone). */
struct pwrite *nw_take_forwarded(struct node *n, uint64_t id);
/* Propose a configuration change, at the leader. */
int nw_propose_conf(struct node *n, const struct raft_conf *c, uint64_t *index, uint64_t *term,
		    struct sh_err *err);
void nw_result(struct node *n, node_done_fn done, void *arg, int rv, const struct sh_err *err,
	       uint64_t term, uint64_t index, size_t affected);

/* node_fwd.c: writes and changes between a follower and the leader */
int nf_send(struct node *n, struct pwrite *w); /* 0: forwarded; else wait */
void nf_recv(struct node *n, uint64_t from, const uint8_t *buf, size_t len);
void nf_reply(struct node *n, uint64_t from, const uint8_t *buf, size_t len);
void nf_free_all(struct node *n);

/* node_read.c */
void nr_on_event(struct node *n, const struct raft_event *ev);
void nr_on_applied(struct node *n);
void nr_expire(struct node *n, uint64_t now);
void nr_free_all(struct node *n);

/* node_snap.c */
void ns_needed(struct node *n, uint64_t peer);
void ns_writable(struct node *n, uint64_t peer);
void ns_recv_chunk(struct node *n, uint64_t from, const uint8_t *buf, size_t len);
void ns_recv_ack(struct node *n, uint64_t from, const uint8_t *buf, size_t len);
void ns_on_role(struct node *n);
void ns_free_all(struct node *n);

/* node_auto.c */
void na_start(struct node *n);
void na_tick(struct node *n, uint64_t now);
void na_swim_event(struct node *n, const struct swim_event *ev);
/* At the leader: make the change w asks for: 0 with w->term and index set
 * (a configuration entry to commit), 1 when done without an entry, or
 * SH_E* with err. */
int na_change(struct node *n, struct pwrite *w, struct sh_err *err);
void na_on_progress(struct node *n, uint64_t peer);
/* Leader: how long since peer last held the leader's whole log. */
uint64_t na_lag_ms(struct node *n, uint64_t peer);

#endif
