/*
 * swim_wire: the bytes of SWIM gossip (proto/cluster.proto), both ways.
 *
 * Decoding turns untrusted bytes into plain structs that the membership core
 * (swim.c) reads; every limit is checked before anything is allocated (the
 * top-level repeated fields are counted by a walk over the raw bytes first),
 * and every field is validated after protobuf-c has unpacked it: ids
 * nonzero, names and addresses short and printable, metadata at most
 * SWIM_META_MAX bytes, states known.  A bad input gives SH_EINVAL (or
 * SH_ETOOBIG) and a message saying what was wrong; nothing is trusted.
 *
 * Encoding: a UDP packet is built field by field into a caller's buffer of
 * at most the MTU (swim_wire_pkt_*), so that the core can add messages and
 * pre-encoded updates until the next one would not fit.  A push-pull is
 * encoded whole into an allocated buffer, length-prefixed for TCP.
 *
 * Decoded structs point into memory owned by the struct (priv) until it is
 * released with the matching *_free().  Thread-safe: no shared state.
 */
#ifndef SHOAL_CLUSTER_SWIM_WIRE_H
#define SHOAL_CLUSTER_SWIM_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define SWIM_META_MAX    512        /* bytes of a member's metadata blob */
#define SWIM_NAME_MAX    63         /* bytes of a node name */
#define SWIM_ADDR_MAX    300        /* bytes of a host:port address */
#define SWIM_UDP_MAX     65507      /* largest datagram decoded */
#define SWIM_STREAM_MAX  (4u << 20) /* largest push-pull frame, bytes */
#define SWIM_MSGS_MAX    64         /* messages in one packet */
#define SWIM_UPDATES_MAX 512        /* updates in one packet */
#define SWIM_MEMBERS_MAX 4096       /* members in one push-pull */
#define SWIM_FRAME_HDR   4          /* TCP frame: 4-byte big-endian length */

enum swim_state { SWIM_ALIVE = 0, SWIM_SUSPECT = 1, SWIM_DEAD = 2, SWIM_LEFT = 3 };

enum swim_addr_kind { SWIM_ADDR_CLUSTER = 0, SWIM_ADDR_CLIENT = 1, SWIM_ADDR_REST = 2 };
#define SWIM_N_ADDRS 3

/* A member as its owner announces it.  Strings are NUL-terminated; an
 * absent address is "". */
struct swim_member_rec {
	uint64_t id;
	const char *name;
	const char *addr[SWIM_N_ADDRS];
	uint64_t incarnation;
	enum swim_state state;
	const uint8_t *meta;
	size_t meta_len;
};

/* SWIM_ALIVE updates carry member; the others only id/incarnation/from. */
struct swim_update {
	enum swim_state state;
	uint64_t id;
	uint64_t incarnation;
	uint64_t from;
	struct swim_member_rec member;
};

enum swim_msg_type { SWIM_PING = 1, SWIM_PING_REQ, SWIM_ACK, SWIM_NACK };

struct swim_msg {
	enum swim_msg_type type;
	uint32_t seq;
	uint64_t target;         /* PING, PING_REQ */
	const char *target_addr; /* PING_REQ */
	bool nack;               /* PING_REQ */
};

struct swim_packet {
	uint64_t cluster_id;
	uint64_t sender;
	struct swim_msg *msgs;
	size_t n_msgs;
	struct swim_update *updates;
	size_t n_updates;
	void *priv, *strs; /* owned memory */
};

struct swim_pushpull {
	uint64_t cluster_id;
	uint64_t sender;
	const char *sender_addr;
	bool join;
	bool reply;
	struct swim_member_rec *members;
	size_t n_members;
	void *priv, *strs; /* owned memory */
};

/* Decode one datagram.  On success *out owns its memory: release it with
 * swim_wire_packet_free(); on failure *out needs no release. */
int swim_wire_decode_packet(const uint8_t *buf, size_t len, struct swim_packet *out,
			    struct sh_err *err);
void swim_wire_packet_free(struct swim_packet *p);

/* Decode a push-pull body (without its frame header). */
int swim_wire_decode_pushpull(const uint8_t *buf, size_t len, struct swim_pushpull *out,
			      struct sh_err *err);
void swim_wire_pushpull_free(struct swim_pushpull *p);

/* Encode p as a TCP frame (length prefix included) into a buffer from
 * sh_malloc that the caller frees. */
int swim_wire_encode_pushpull(const struct swim_pushpull *p, uint8_t **out, size_t *len,
			      struct sh_err *err);

/* The body length announced by a frame header, or 0 when the 4 bytes at
 * hdr announce more than SWIM_STREAM_MAX (or nothing). */
size_t swim_wire_frame_len(const uint8_t hdr[SWIM_FRAME_HDR]);

/* Encode one update as the bytes of an Update message (no tag or length).
 * Returns the length, or 0 when cap is too small. */
size_t swim_wire_encode_update(const struct swim_update *u, uint8_t *buf, size_t cap);

/* A packet under construction in buf[0..cap). */
struct swim_wire_pkt {
	uint8_t *buf;
	size_t cap;
	size_t len;
};

/* Start a packet with its header fields; cap must hold at least 32 bytes. */
void swim_wire_pkt_init(struct swim_wire_pkt *b, uint8_t *buf, size_t cap, uint64_t cluster_id,
			uint64_t sender);
/* Append a message / an update encoded by swim_wire_encode_update(); both
 * return 0, or SH_ENOSPC (and leave the packet as it was) when it does not
 * fit. */
int swim_wire_pkt_add_msg(struct swim_wire_pkt *b, const struct swim_msg *m);
int swim_wire_pkt_add_update(struct swim_wire_pkt *b, const uint8_t *upd, size_t len);
/* Bytes an update of this encoded length adds to a packet. */
size_t swim_wire_pkt_update_cost(size_t len);

/* "alive", "suspect", "dead", "left". */
const char *swim_state_name(enum swim_state s);

#endif
