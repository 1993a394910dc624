/*
 * swim_int: the inside of struct swim, shared by the files of the module
 * (swim.c: members and state rules; swim_probe.c: failure detection;
 * swim_gossip.c: dissemination, push-pull, join).  Nothing outside
 * src/cluster/swim*.c includes it.
 */
#ifndef SHOAL_CLUSTER_SWIM_INT_H
#define SHOAL_CLUSTER_SWIM_INT_H

#include "cluster/swim.h"

#define SWIM_NEVER          UINT64_MAX
#define SWIM_MAX_CONFIRM    16  /* suspicion confirmers remembered */
#define SWIM_MAX_RELAYS     256 /* ping-req relays in flight */
#define SWIM_MAX_SEEDS      64
#define SWIM_UPDATE_MAX_ENC 2048 /* an encoded update: member fields + meta */

struct member {
	struct swim_member pub; /* strings below */
	char *name;
	char *addr[SWIM_N_ADDRS];
	uint8_t meta[SWIM_META_MAX];
	/* suspicion (Lifeguard section IV-B, "dynamic suspicion timeout") */
	uint64_t susp_start;
	uint64_t susp_deadline;
	uint64_t susp_min, susp_max;
	uint32_t susp_k; /* confirmations expected */
	uint32_t n_confirm;
	uint64_t confirm[SWIM_MAX_CONFIRM]; /* ids that confirmed; [0] the first suspector */
};

/* One queued piggyback update (memberlist's TransmitLimitedQueue). */
struct bcast {
	uint64_t id;    /* the member it concerns: a newer update replaces it */
	uint64_t order; /* insertion order, for the newest-first tie break */
	uint32_t transmits;
	uint32_t len;
	uint8_t enc[]; /* the encoded Update */
};

/* A ping we send for someone else's ping-req (SWIM section 3.1). */
struct relay {
	uint32_t seq;        /* our ping's seq */
	uint32_t origin_seq; /* the requester's */
	uint64_t deadline;   /* send a nack then */
	uint64_t origin_id;
	bool nack;
	char origin[SWIM_ADDR_MAX + 1];
};

struct probe {
	bool active;
	bool indirect_sent;
	uint64_t target;
	uint32_t seq;
	uint64_t direct_deadline; /* then: indirect probes */
	uint64_t deadline;        /* then: suspect the target */
	uint32_t expected_nacks;
	uint32_t nacks;
};

/* Another address announces our id: is a node there, answering to our id
 * (a copy of this node), or is it a stale record of ours (this node
 * restarted at a new address)?  A ping to it for our id tells. */
struct conflict_check {
	bool active;
	uint32_t seq;
	uint64_t deadline; /* no ack by then: stale, refute */
	uint64_t incarnation;
	bool other_known; /* the record came from the others, not from it */
	char addr[SWIM_ADDR_MAX + 1];
};

struct swim {
	struct swim_config cfg;
	struct swim_io io;
	uint64_t cluster_id;
	char conflict_addr[SWIM_ADDR_MAX + 1]; /* the last node confirmed with our id */
	struct conflict_check check;
	bool from_copy;             /* what is being applied comes from a node with our id */
	bool accused;               /* the packet being applied holds us suspect or dead */
	uint64_t other_conflict_id; /* the last member reported ... */
	char other_conflict_addr[SWIM_ADDR_MAX + 1]; /* ... announced from here too */
	struct member *self;
	bool leaving;
	struct member **members; /* self included */
	size_t n_members, cap_members;

	/* probing: a shuffled round-robin over member ids (SWIM section 4.3) */
	uint64_t *order;
	size_t n_order, cap_order, order_pos;
	struct probe probe;
	uint64_t next_probe;
	uint32_t seq;
	int awareness; /* Lifeguard LHM score, 0..awareness_max_multiplier-1 */
	struct relay relays[SWIM_MAX_RELAYS];
	size_t n_relays;

	/* dissemination */
	struct bcast **bcasts;
	size_t n_bcasts, cap_bcasts;
	uint64_t bcast_order;
	uint64_t next_gossip;
	uint64_t next_push_pull;
	uint64_t next_stranger_pp; /* push-pull with an unknown sender not before */
	uint64_t next_refusal;     /* a refusal reply not before */
	uint64_t next_tell_all;    /* a refutation is told to all members again from then */

	/* seeds */
	char *seeds[SWIM_MAX_SEEDS];
	size_t n_seeds;
	uint64_t next_rejoin;
	uint32_t alone_attempts;

	uint64_t next_reap;
	uint8_t *pkt; /* udp_mtu bytes: the datagram being built */
	struct swim_stats stats;
};

/* swim.c */
struct member *swim_find(const struct swim *s, uint64_t id);
uint64_t swim_rand(struct swim *s, uint64_t bound);
void swim_emit(struct swim *s, enum swim_event_type t, struct member *m, uint64_t from);
void swim_on_alive(struct swim *s, uint64_t now, const struct swim_member_rec *r);
void swim_on_suspect(struct swim *s, uint64_t now, uint64_t id, uint64_t inc, uint64_t from);
void swim_on_dead(struct swim *s, uint64_t now, uint64_t id, uint64_t inc, uint64_t from);
void swim_member_rec(const struct member *m, struct swim_member_rec *r);
void swim_refute(struct swim *s, uint64_t now, uint64_t inc);
void swim_awareness_delta(struct swim *s, int delta);
size_t swim_random_members(struct swim *s, uint64_t now, uint64_t exclude, bool alive_only,
			   struct member **out, size_t k);
bool swim_addr_is_live(const struct swim *s, const char *addr);

/* swim.c: the conflict check (struct conflict_check).  An ack of its
 * ping: true when seq was the check's. */
bool swim_conflict_ack(struct swim *s, uint32_t seq);

/* swim_probe.c */
void swim_probe_tick(struct swim *s, uint64_t now);
void swim_probe_recv(struct swim *s, uint64_t now, const char *from, uint64_t sender,
		     const struct swim_msg *m);
uint64_t swim_probe_deadline(const struct swim *s);
void swim_order_add(struct swim *s, uint64_t id);

/* swim_gossip.c */
void swim_queue_update(struct swim *s, const struct swim_update *u);
void swim_queue_member(struct swim *s, const struct member *m, enum swim_state st, uint64_t from);
void swim_send_msgs(struct swim *s, const char *addr, uint64_t to, const struct swim_msg *msgs,
		    size_t n);
void swim_gossip_tick(struct swim *s, uint64_t now);
uint64_t swim_gossip_deadline(const struct swim *s);
void swim_recv_pushpull(struct swim *s, uint64_t now, const struct swim_pushpull *pp);
void swim_send_pushpull(struct swim *s, const char *addr, bool join, bool reply);
/* A push-pull reply with our cluster id and no members: how a node of
 * another cluster learns that it was refused (and can say so). */
void swim_send_refusal(struct swim *s, const char *addr);
void swim_bcast_free_all(struct swim *s);
bool swim_bcast_pending_for(const struct swim *s, uint64_t id);
void swim_leave_broadcast(struct swim *s);
/* This node's alive record straight to addr (a member that accused it),
 * or to every live member (a refutation): swim_gossip.c. */
void swim_tell_alive(struct swim *s, const char *addr);
void swim_tell_alive_all(struct swim *s);

#endif
