/*
 * peer: the TCP links between nodes on the cluster port (DESIGN.md section
 * 2; doc/replication.md, "Peer links") — Raft messages, forwarded writes
 * and snapshot chunks, as framed messages.
 *
 * A node sends to another on a connection it opened itself and receives
 * on the connections the others opened, so each direction of a pair is one
 * ordered stream.  A connection starts with a preamble:
 *
 *     8 bytes "SHOALPR1" | u64 LE sender id | u64 LE cluster id
 *
 * (the cluster port's listener belongs to membership, whose TCP frames
 * start with a zero byte; it hands a connection that starts otherwise to
 * peer_accept()), then frames:
 *
 *     u32 LE length of the rest | u8 kind | payload
 *
 * With peer_opts.tls, the connection is TLS 1.3 (peer_tls.h) and the
 * preamble and frames travel inside it; a node with TLS refuses a
 * plaintext link and one without refuses a TLS link, before reading any
 * frame.  A receiver refuses a preamble of another cluster (or before it knows its
 * own), frames over max_frame bytes and unknown kinds, closing the
 * connection with a warning.  A sender whose connection fails drops what
 * was queued (Raft retries) and reconnects at the next send, at most once
 * per backoff interval; a link whose queue is over max_output bytes drops
 * new frames (SH_EBUSY).
 *
 * Runs on the loop thread; not thread-safe.
 */
#ifndef SHOAL_CLUSTER_PEER_H
#define SHOAL_CLUSTER_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

struct event_base;
struct bufferevent;
struct ptls;

#define PEER_MAGIC    "SHOALPR1"
#define PEER_PREAMBLE 24
#define PEER_MAX_IN   256 /* inbound connections at once */

enum peer_kind {
	PEER_RAFT = 1,      /* raft_wire frame, without its first length word */
	PEER_FORWARD = 2,   /* a write forwarded to the leader (Forward) */
	PEER_FORWARDED = 3, /* its answer (ForwardReply) */
	PEER_SNAP = 4,      /* a snapshot chunk (SnapChunk) */
	PEER_SNAP_ACK = 5,  /* the receiver's answer (SnapAck) */
};
#define PEER_KIND_MAX 5

/* A piece of a frame's payload.  With release set, the bytes are sent
 * without a copy and release(data, len, arg) runs once they are no longer
 * needed; without it they are copied. */
struct peer_part {
	const void *data;
	size_t len;
	void (*release)(const void *data, size_t len, void *arg);
	void *arg;
};

struct peer_opts {
	struct event_base *base;
	uint64_t self_id;
	size_t max_frame;  /* bytes of one received frame */
	size_t max_output; /* bytes queued to one peer */
	uint32_t backoff_ms;
	/* A frame arrived from node `from`; buf is valid during the call. */
	void (*recv)(void *data, uint64_t from, enum peer_kind kind, const uint8_t *buf,
		     size_t len);
	/* The cluster address ("host:port") of node id, or NULL if unknown. */
	const char *(*address)(void *data, uint64_t id);
	/* Node id's name, or NULL if unknown (optional): with certificates
	 * (peer_tls.h), a link's certificate must carry the name of the node
	 * it speaks for, both ways. */
	const char *(*name)(void *data, uint64_t id);
	/* The queue to `to` drained below a quarter of max_output (optional). */
	void (*writable)(void *data, uint64_t to);
	/* The connection node `from` opened to this one ended: end of stream
	 * or an error, not a refusal (optional). */
	void (*gone)(void *data, uint64_t from);
	void *data;
	/* Optional: every link in TLS (peer_tls.h); plaintext links are then
	 * refused, as TLS links are without it. */
	struct ptls *tls;
};

struct peer_stats {
	uint64_t frames_sent, bytes_sent, frames_recv, bytes_recv;
	uint64_t connects, connect_failures, dropped, refused;
};

struct peer_net;

int peer_net_new(const struct peer_opts *o, struct peer_net **out, struct sh_err *err);
void peer_net_free(struct peer_net *p);
/* The cluster id this node belongs to (0: none yet: links are refused). */
void peer_set_cluster_id(struct peer_net *p, uint64_t cluster_id);
/* A connection accepted on the cluster port whose first byte is not zero
 * (its bytes so far still in the input buffer).  p is a struct peer_net. */
void peer_accept(void *p, struct bufferevent *bev, const char *addr);

/* Queue one frame to node `to`: parts[0..n) concatenated.  Parts with a
 * release function are released in every case.  SH_EUNAVAIL when the
 * address is unknown or the link is backing off, SH_EBUSY when its queue is
 * full. */
int peer_send(struct peer_net *p, uint64_t to, enum peer_kind kind, const struct peer_part *parts,
	      size_t n);
/* Bytes queued to `to` and not yet written to its socket. */
size_t peer_backlog(const struct peer_net *p, uint64_t to);
/* Close the link to `to` (it reconnects at the next send). */
void peer_drop(struct peer_net *p, uint64_t to);
void peer_get_stats(const struct peer_net *p, struct peer_stats *st);
/* Has the link to `to` completed an authenticated handshake?  Always true
 * without TLS.  With TLS, false until it has; a call starts the link when
 * it is down (at most once per backoff interval). */
bool peer_trusted(struct peer_net *p, uint64_t to);
/* Close every link, inbound and outbound (they reconnect, with the keys
 * in force now, at the next send); why goes to the log. */
void peer_reset(struct peer_net *p, const char *why);

#endif
