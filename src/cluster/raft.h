/*
 * raft: leader election and log replication as a pure state machine
 * (Ongaro, "Consensus: Bridging Theory and Practice", 2014 — cited below as
 * "dissertation §N"; DESIGN.md sections 3, 6, 7, 8; doc/replication.md).
 *
 * The core keeps an index of the log — for every entry its term, type and
 * size — but never the entries themselves: the driver owns the bytes (the
 * WAL, or the simulator's disk) and attaches them when it sends an
 * AppendEntries the core asked for, so the leader's log is shared, not
 * copied, across followers.
 *
 * Inputs: raft_tick (time), raft_recv (a decoded message), raft_persisted
 * (the local log is durable up to an index), raft_propose (leader: a new
 * entry), raft_flush (send what is due; call once per batch of inputs),
 * and requests: read index, leadership transfer, configuration change,
 * snapshot taken or installed, a peer declared dead by SWIM.
 * Outputs, through struct raft_io during those calls: messages, the hard
 * state to persist (durably, before any later message is sent), log
 * truncations and appends for the driver to make, the commit index, and
 * events.  No clock, no random numbers, no I/O of its own.
 *
 * Safety rules implemented, by dissertation section: one vote per term,
 * persisted (§3.4); a vote only for a log at least as up to date (§3.6.1);
 * randomized election timeouts (§3.4); log matching and conflict truncation
 * (§3.5); commit only entries of the current term by counting (§3.6.2); a
 * no-op at the start of every term (§6.4); PreVote (§9.6) and CheckQuorum
 * (§6.2); single-server membership changes, one at a time, effective when
 * appended (§4.1, §4.4: learners catch up before they vote); leadership
 * transfer (§3.10); ReadIndex and leases for linearizable reads (§6.4).
 *
 * Times are milliseconds of a monotonic clock.  Not thread-safe: one thread
 * (the event loop) owns a struct raft.
 */
#ifndef SHOAL_CLUSTER_RAFT_H
#define SHOAL_CLUSTER_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define RAFT_MAX_NODES 64 /* voters + learners in a configuration */
#define RAFT_NONE      0  /* no node (node ids are nonzero) */

/* Entry types the core knows about; others are the driver's business. */
enum raft_entry_type {
	RAFT_ENTRY_NOOP = 1,   /* appended by every new leader */
	RAFT_ENTRY_CONFIG = 2, /* a configuration (struct raft_conf) */
	RAFT_ENTRY_DATA = 3,   /* anything else: the state machine's */
};

struct raft_conf {
	uint64_t voters[RAFT_MAX_NODES];
	unsigned n_voters;
	uint64_t learners[RAFT_MAX_NODES];
	unsigned n_learners;
	/* members removed on purpose, that the leader must not add back until
	 * told to (the driver's: the core carries it along, ignores it) */
	uint64_t removed[RAFT_MAX_NODES];
	unsigned n_removed;
};

/* One entry of an AppendEntries, as the core sees it. */
struct raft_entry_meta {
	uint64_t term;
	uint8_t type;
	uint32_t size;                /* bytes of its body */
	const struct raft_conf *conf; /* type CONFIG: the configuration it holds */
};

enum raft_msg_type {
	RAFT_MSG_VOTE = 1, /* RequestVote (or PreVote) */
	RAFT_MSG_VOTE_RESP,
	RAFT_MSG_APPEND, /* AppendEntries; a heartbeat when n == 0 */
	RAFT_MSG_APPEND_RESP,
	RAFT_MSG_TIMEOUT_NOW,     /* leadership transfer: start an election now */
	RAFT_MSG_READ_INDEX,      /* follower -> leader: confirm a read index */
	RAFT_MSG_READ_INDEX_RESP, /* leader -> follower */
};

struct raft_msg {
	enum raft_msg_type type;
	uint64_t term;
	uint64_t from;
	/* VOTE */
	bool prevote;
	bool transfer; /* VOTE: caused by a leadership transfer (ignore leases) */
	uint64_t last_index, last_term;
	/* VOTE_RESP */
	bool granted;
	/* APPEND: entries prev_index + 1 .. prev_index + n */
	uint64_t prev_index, prev_term, commit;
	uint64_t sent_at; /* APPEND: the leader's stamp (ms << 16 | counter), echoed */
	size_t n;
	const struct raft_entry_meta *entries;
	/* APPEND_RESP */
	bool success;
	uint64_t match; /* success: durable and consistent up to here */
	uint64_t hint;  /* failure: the follower's last index + 1, or a conflict */
	/* READ_INDEX(_RESP) */
	uint64_t read_id;
	uint64_t read_index; /* RESP; 0 = failed (not leader) */
};

enum raft_role { RAFT_FOLLOWER, RAFT_PRECANDIDATE, RAFT_CANDIDATE, RAFT_LEADER };

enum raft_event_type {
	RAFT_EV_ROLE,            /* role, term or leader changed (see raft_role etc.) */
	RAFT_EV_READ_READY,      /* read_id may be served once applied >= index */
	RAFT_EV_READ_FAILED,     /* read_id cannot be confirmed (no leader, lost it) */
	RAFT_EV_SNAPSHOT_NEEDED, /* peer needs the snapshot: its next entry is compacted */
	RAFT_EV_CONF,            /* the configuration in effect changed */
	RAFT_EV_PROGRESS,        /* leader: a follower's match index moved (ack levels) */
};

struct raft_event {
	enum raft_event_type type;
	uint64_t peer; /* SNAPSHOT_NEEDED, PROGRESS */
	uint64_t read_id;
	uint64_t index; /* READ_READY */
};

struct raft_io {
	void *data;
	/* Send m to node `to`.  For APPEND the driver attaches the bodies of
	 * entries m->prev_index + 1 .. m->prev_index + m->n from its log. */
	void (*send)(void *data, uint64_t to, const struct raft_msg *m);
	/* Persist term and vote durably before any later send(). */
	void (*save_hard_state)(void *data, uint64_t term, uint64_t vote);
	/* Drop log entries >= from (before appending anything after them). */
	void (*truncate)(void *data, uint64_t from);
	/* Follower: append entries first .. first + n - 1 of the APPEND being
	 * received; report durability with raft_persisted(). */
	void (*append)(void *data, uint64_t first, size_t n);
	/* Leader: append an entry the core made itself (the no-op that opens
	 * every term) at index; report durability with raft_persisted(). */
	void (*append_noop)(void *data, uint64_t index, uint64_t term);
	/* Entries up to index are committed: apply them (when durable). */
	void (*commit)(void *data, uint64_t index);
	void (*event)(void *data, const struct raft_event *ev);
	uint64_t (*random)(void *data);
};

struct raft_opts {
	uint64_t id;
	uint32_t election_timeout_ms; /* randomized in [t, 2t) */
	uint32_t heartbeat_ms;
	uint32_t max_batch_entries; /* per AppendEntries */
	uint32_t max_batch_bytes;
	uint32_t max_inflight; /* AppendEntries in flight per follower */
	uint64_t max_inflight_bytes;
	bool prevote;
	bool check_quorum;
};

struct raft;

void raft_opts_default(struct raft_opts *o, uint64_t id);

/* What survived on disk: hard state, snapshot and the log after it. */
struct raft_boot {
	uint64_t term, vote;
	uint64_t snap_index, snap_term;
	const struct raft_conf *snap_conf; /* configuration at the snapshot */
	uint64_t last_index;               /* entries snap_index+1 .. last_index */
	/* the log's entries, last_index - snap_index of them */
	const struct raft_entry_meta *entries;
	uint64_t durable; /* entries durable up to here (normally last_index) */
	uint64_t commit;  /* known committed (the applied index, say); 0 = unknown */
};

int raft_new(const struct raft_opts *o, const struct raft_io *io, const struct raft_boot *boot,
	     uint64_t now, struct raft **out, struct sh_err *err);
void raft_free(struct raft *r);

void raft_tick(struct raft *r, uint64_t now);
uint64_t raft_next_deadline(const struct raft *r);
void raft_recv(struct raft *r, uint64_t now, const struct raft_msg *m);
/* The local log is durable up to index. */
void raft_persisted(struct raft *r, uint64_t now, uint64_t index);
/* Send what is due (new entries, commit updates): once per batch of input. */
void raft_flush(struct raft *r, uint64_t now);

/* Leader: a new entry of `size` bytes, type DATA (or NOOP); its index and
 * term are returned and the driver appends it to its log.  SH_EUNAVAIL
 * when this node is not the leader (or is transferring leadership). */
int raft_propose(struct raft *r, uint64_t now, enum raft_entry_type type, uint32_t size,
		 uint64_t *index, uint64_t *term);
/* Leader: one configuration change (one server added, removed, promoted or
 * demoted, dissertation §4.1).  SH_EBUSY while a change is uncommitted or
 * before this term's first entry commits; SH_EINVAL when c differs from the
 * current configuration by more than one server. */
int raft_propose_conf(struct raft *r, uint64_t now, const struct raft_conf *c, uint32_t size,
		      uint64_t *index, uint64_t *term);

/* Ask for a linearizable read point; the answer comes as RAFT_EV_READ_READY
 * or _FAILED with the same read_id. */
void raft_read_index(struct raft *r, uint64_t now, uint64_t read_id);
/* Leader: does its lease cover now (dissertation §6.4.1)? */
bool raft_lease_valid(const struct raft *r, uint64_t now);
/* Leader: hand leadership to `to` (a voter) once it is caught up. */
int raft_transfer(struct raft *r, uint64_t now, uint64_t to);
/* SWIM says `id` is dead: when it is our leader, elect a new one now. */
void raft_peer_dead(struct raft *r, uint64_t now, uint64_t id);
/* The stream `id` sent on ended (its process may be gone: a kill closes
 * its sockets at once): when it is our leader, stand as soon as the lease
 * allows — an election timeout after its last message, within two
 * heartbeats — instead of a randomized one to two timeouts later.  A
 * message from the leader meanwhile puts the timer back. */
void raft_leader_link_lost(struct raft *r, uint64_t now, uint64_t id);
/* Standby (this node's log cannot grow: its disk is full): it stands in no
 * election and ignores TimeoutNow, like a learner, but votes and follows;
 * as leader it hands leadership to the voter whose log is longest, again
 * after each transfer that fails, until one takes over (a lone voter stays
 * leader).  Off again once the log can grow. */
void raft_set_standby(struct raft *r, uint64_t now, bool standby);
bool raft_standby(const struct raft *r);

/* The driver took a snapshot covering up to index: forget the log before. */
void raft_compacted(struct raft *r, uint64_t index);
/* Leader: the snapshot at `index` was sent to `peer` and installed. */
void raft_snapshot_sent(struct raft *r, uint64_t now, uint64_t peer, uint64_t index);
/* Follower: the state machine now holds a snapshot from the leader, up to
 * (index, term).  When the log holds that very entry, the entries after it
 * stay (they may already be acknowledged: Raft paper, InstallSnapshot rule
 * 6) and this returns true: the driver keeps its log after index.  Else the
 * whole log goes and this returns false: the driver drops its log, which
 * restarts after index.  Call it only for a snapshot beyond what the state
 * machine has applied, after storing the snapshot durably. */
bool raft_snapshot_installed(struct raft *r, uint64_t now, uint64_t index, uint64_t term,
			     const struct raft_conf *conf);

/* State */
enum raft_role raft_role(const struct raft *r);
uint64_t raft_term(const struct raft *r);
uint64_t raft_leader(const struct raft *r);
uint64_t raft_commit_index(const struct raft *r);
/* The commit index as the cluster knows it: on a follower the highest its
 * leader of this term sent, which its own log may not reach yet
 * (raft_commit_index is capped at what the log holds); elsewhere the
 * commit index. */
uint64_t raft_leader_commit(const struct raft *r);
uint64_t raft_last_index(const struct raft *r);
uint64_t raft_durable_index(const struct raft *r);
uint64_t raft_term_at(const struct raft *r, uint64_t index); /* 0 when unknown */
const struct raft_conf *raft_conf(const struct raft *r);
bool raft_is_voter(const struct raft *r, uint64_t id);
/* Leader: a follower's durable match index (0 when unknown). */
uint64_t raft_match(const struct raft *r, uint64_t peer);
/* Leader: voters (itself included) holding index durably. */
unsigned raft_acked(const struct raft *r, uint64_t index);
/* Leader: how long since peer last answered (ms; UINT64_MAX when it never
 * did or this node does not lead). */
uint64_t raft_peer_silence(const struct raft *r, uint64_t peer, uint64_t now);

const char *raft_role_name(enum raft_role role);
const char *raft_msg_name(enum raft_msg_type t);

/* Configuration helpers */
bool raft_conf_has_voter(const struct raft_conf *c, uint64_t id);
bool raft_conf_has(const struct raft_conf *c, uint64_t id);

#endif
