/*
 * swim: cluster membership — SWIM failure detection and gossip with the
 * Lifeguard extensions, as a pure state machine (DESIGN.md sections 3, 8;
 * doc/membership.md).
 *
 * Inputs: swim_recv() (bytes from a peer, UDP or TCP), swim_tick() (the
 * current time), and local requests (swim_join, swim_leave, swim_set_meta,
 * swim_set_cluster_id).  Outputs, all through struct swim_io during those
 * calls: bytes to send to an address, events (a member joined, is suspect,
 * alive, dead, left, updated), and the time of the next wake-up, which the
 * driver reads with swim_next_deadline() after each call.  No sockets,
 * clock or random generator of its own: time (milliseconds on a monotonic
 * clock) and random numbers come in, so the simulator (t/sim/) and the
 * libevent driver (swim_net.c) run the same code.
 *
 * Addresses are opaque "host:port" strings to this module; the driver maps
 * them to sockets (or simulated nodes).  Members are identified by their
 * 64-bit node id, never by address.
 *
 * Ownership: struct swim owns its members; the pointers swim_member_at()
 * and events hand out stay valid until the next call into the module.
 * Not thread-safe: one thread (the event loop) owns a struct swim.
 */
#ifndef SHOAL_CLUSTER_SWIM_H
#define SHOAL_CLUSTER_SWIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/swim_wire.h"
#include "util/err.h"

struct swim;

/* Settings; the defaults (swim_config_default) are hashicorp memberlist's
 * DefaultLANConfig.  Times are milliseconds. */
struct swim_config {
	uint32_t probe_interval_ms;          /* one probe per interval */
	uint32_t probe_timeout_ms;           /* direct ping, before indirect probes */
	uint32_t indirect_checks;            /* members asked to ping for us */
	uint32_t suspicion_mult;             /* suspicion min = mult * log10(n) * interval */
	uint32_t suspicion_max_timeout_mult; /* suspicion max = this * min */
	uint32_t gossip_interval_ms;
	uint32_t gossip_nodes;             /* members gossiped to per interval */
	uint32_t retransmit_mult;          /* each update sent mult * log10(n+1) times */
	uint32_t push_pull_interval_ms;    /* full-state exchange; 0 = never */
	uint32_t awareness_max_multiplier; /* Lifeguard LHM: timeouts up to this times */
	uint32_t udp_mtu;                  /* largest datagram sent */
	uint32_t rejoin_interval_ms;       /* re-join seeds not seen alive; 0 = never */
	uint32_t gossip_to_dead_ms;        /* keep gossiping to a dead member this long */
	uint32_t dead_reap_ms;             /* forget dead and left members after this */
};

void swim_config_default(struct swim_config *c);
/* Checks bounds and coherence (probe_timeout < probe_interval, ...). */
int swim_config_check(const struct swim_config *c, struct sh_err *err);

/* This node. Strings are copied. */
struct swim_self {
	uint64_t id;                    /* nonzero */
	const char *name;               /* at most SWIM_NAME_MAX, [A-Za-z0-9._-] */
	const char *addr[SWIM_N_ADDRS]; /* cluster address required */
	uint64_t incarnation;           /* usually 0 */
	uint64_t cluster_id;            /* 0 until bootstrapped or learned */
};

/* A member as this node sees it.  Strings NUL-terminated. */
struct swim_member {
	uint64_t id;
	const char *name;
	const char *addr[SWIM_N_ADDRS];
	uint64_t incarnation;
	enum swim_state state;
	const uint8_t *meta;
	size_t meta_len;
	uint64_t state_since; /* when it entered its state (ms) */
	uint64_t last_heard;  /* when a packet from it last arrived (ms), 0 never */
	bool self;
};

enum swim_event_type {
	SWIM_EV_JOINED,  /* new member, or back from dead or left */
	SWIM_EV_SUSPECT, /* alive -> suspect */
	SWIM_EV_ALIVE,   /* suspect -> alive (it refuted) */
	SWIM_EV_DEAD,
	SWIM_EV_LEFT,
	SWIM_EV_UPDATED,    /* name, addresses or metadata changed */
	SWIM_EV_REFUTED,    /* this node raised its incarnation to refute (member = self) */
	SWIM_EV_CLUSTER_ID, /* cluster id learned from a seed (cluster_id) */
	SWIM_EV_REFUSED,    /* a message of another cluster was dropped (addr, cluster_id) */
	SWIM_EV_CONFLICT,   /* a node at addr answers to this node's id (member NULL;
			     * other_known), or announces the id of member, alive
			     * elsewhere */
};

struct swim_event {
	enum swim_event_type type;
	const struct swim_member *member; /* NULL for CLUSTER_ID and REFUSED */
	uint64_t from;                    /* SUSPECT, DEAD: who declared it */
	const char *addr;                 /* REFUSED: where it came from */
	uint64_t cluster_id;              /* CLUSTER_ID, REFUSED */
	/* CONFLICT about this node: the others (a member answering our join,
	 * or gossip) hold the other node at addr for our id — this node is the
	 * newcomer; false: the other node announced itself to us. */
	bool other_known;
};

enum swim_transport { SWIM_UDP, SWIM_TCP };

/* The world, as the caller provides it.  send() gets a whole datagram (UDP)
 * or a whole length-prefixed frame (TCP) and must copy what it keeps. */
struct swim_io {
	void *data;
	void (*send)(void *data, enum swim_transport t, const char *addr, const uint8_t *buf,
		     size_t len);
	void (*event)(void *data, const struct swim_event *ev);
	uint64_t (*random)(void *data); /* 64 uniformly random bits */
};

struct swim_stats {
	uint64_t udp_sent, udp_bytes_sent, udp_recv, udp_bytes_recv;
	uint64_t tcp_sent, tcp_bytes_sent, tcp_recv, tcp_bytes_recv;
	uint64_t decode_errors; /* malformed input dropped */
	uint64_t refused;       /* messages of another cluster dropped */
	uint64_t probes, probe_failures, indirect_probes, nacks_recv;
	uint64_t suspicions; /* suspicions this node started */
	uint64_t refutations;
	uint64_t push_pulls, joins_sent;
	uint64_t relay_dropped; /* ping-req relays refused for lack of room */
};

int swim_new(const struct swim_config *cfg, const struct swim_self *self, const struct swim_io *io,
	     uint64_t now, struct swim **out, struct sh_err *err);
void swim_free(struct swim *s);

/* Feed one datagram (SWIM_UDP) or one frame body without its 4-byte length
 * (SWIM_TCP) received from addr.  Malformed input is counted and dropped. */
void swim_recv(struct swim *s, uint64_t now, enum swim_transport t, const char *addr,
	       const uint8_t *buf, size_t len);

/* Run what is due at now; call at swim_next_deadline() or later. */
void swim_tick(struct swim *s, uint64_t now);
uint64_t swim_next_deadline(const struct swim *s);

/* Remember the seeds ("host:port", copied) and push-pull with each now;
 * seeds are re-joined every rejoin_interval_ms when not seen alive. */
int swim_join(struct swim *s, uint64_t now, const char *const *seeds, size_t n, struct sh_err *err);

/* Leave gracefully: tell the members, stop probing.  swim_leave_pending()
 * says whether the news still has retransmissions to make. */
void swim_leave(struct swim *s, uint64_t now);
bool swim_leave_pending(const struct swim *s);

/* Set this node's metadata (at most SWIM_META_MAX bytes) and gossip it. */
int swim_set_meta(struct swim *s, uint64_t now, const void *meta, size_t len, struct sh_err *err);

void swim_set_cluster_id(struct swim *s, uint64_t cluster_id);
uint64_t swim_cluster_id(const struct swim *s);

/* The member list, this node included, in no particular order. */
size_t swim_member_count(const struct swim *s);
const struct swim_member *swim_member_at(const struct swim *s, size_t i);
const struct swim_member *swim_member_find(const struct swim *s, uint64_t id);
const struct swim_member *swim_self_member(const struct swim *s);
/* Members in state ALIVE or SUSPECT, this node included. */
size_t swim_live_count(const struct swim *s);

/* Lifeguard local health score, 0 (healthy) .. awareness_max_multiplier-1. */
int swim_health_score(const struct swim *s);
/* The current suspicion timeout bounds for n live members (ms). */
void swim_suspicion_bounds(const struct swim *s, size_t n, uint64_t *min, uint64_t *max);
void swim_get_stats(const struct swim *s, struct swim_stats *st);

const char *swim_event_name(enum swim_event_type t);

#endif
