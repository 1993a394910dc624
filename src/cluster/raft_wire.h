/*
 * raft_wire: the bytes of Raft messages on peer links (proto/cluster.proto,
 * message Raft; doc/replication.md), both ways.
 *
 *   frame = u32 LE length of the rest | u32 LE header length | header
 *           (protobuf Raft) | entry bodies, concatenated
 *
 * The bodies are the log records' bodies byte for byte, so a sender can
 * attach slices of its log without re-encoding them (raft_wire_header()
 * builds everything before the bodies).  Configuration entries (type
 * RAFT_ENTRY_CONFIG) carry a proto/log.proto VoterConfig, which the decoder
 * parses into a struct raft_conf for the core.
 *
 * Decoding trusts nothing: the header length and the entry count are
 * checked against limits before anything is allocated, the three entry
 * arrays must have equal lengths, the sizes must add up exactly to the
 * bytes that follow the header, every term is nonzero, the message type is
 * known, and configurations are well formed (1..RAFT_MAX_NODES members,
 * nonzero, no duplicates).  Errors are SH_EINVAL / SH_ETOOBIG with a message.
 *
 * Thread-safe: no shared state.
 */
#ifndef SHOAL_CLUSTER_RAFT_WIRE_H
#define SHOAL_CLUSTER_RAFT_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "cluster/raft.h"
#include "util/err.h"

#define RAFT_WIRE_PREFIX      8          /* the two length words */
#define RAFT_WIRE_MAX_HEADER  (1u << 20) /* bytes of one header */
#define RAFT_WIRE_MAX_ENTRIES 65536      /* entries in one AppendEntries */

/* A decoded message.  msg.entries points at entries[]; bodies[i] points
 * into the frame the message was decoded from, which must outlive it. */
struct raft_wire_msg {
	struct raft_msg msg;
	uint64_t cluster_id;
	struct raft_entry_meta *entries;
	struct raft_conf *confs; /* one per entry, used by CONFIG entries */
	const uint8_t **bodies;
};

/* Encode everything of m before the entry bodies, whose sizes are
 * m->entries[i].size, into a new buffer (*out, *len; sh_free it): the two
 * length words (the first counting the bodies too) and the header. */
int raft_wire_header(const struct raft_msg *m, uint64_t cluster_id, uint8_t **out, size_t *len,
		     struct sh_err *err);

/* Decode frame[0..len), the bytes after the first length word; max_bytes
 * bounds len.  Release with raft_wire_free(). */
int raft_wire_decode(const uint8_t *frame, size_t len, size_t max_bytes, struct raft_wire_msg *out,
		     struct sh_err *err);
void raft_wire_free(struct raft_wire_msg *m);

/* The body of a configuration entry (a VoterConfig without addresses). */
int raft_conf_encode(const struct raft_conf *c, uint8_t **out, size_t *len, struct sh_err *err);
int raft_conf_decode(const uint8_t *buf, size_t len, struct raft_conf *c, struct sh_err *err);

#endif
