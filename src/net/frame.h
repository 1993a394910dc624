/*
 * frame: the binary protocol's framing (doc/protocol.md, "Frames"), shared
 * by the server and libshoal.
 *
 * A frame is a 16-byte little-endian header (length, request id, method,
 * flags, status) and `length` bytes of body.  frame_hdr_decode() checks the
 * length against the caller's limit and the flags before anyone allocates
 * anything for the body.  struct frame_dec is an incremental decoder fed
 * arbitrary chunks of a byte stream (as read(2) returns them); it holds one
 * frame at a time.
 *
 * Pure functions and caller-owned state; a decoder is used by one thread.
 */
#ifndef SHOAL_NET_FRAME_H
#define SHOAL_NET_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define FRAME_HDR_SIZE     16
#define FRAME_F_RESPONSE   0x01
#define FRAME_F_METADATA   0x02
#define FRAME_F_KNOWN      (FRAME_F_RESPONSE | FRAME_F_METADATA)
#define FRAME_MAX_METADATA 4096

struct frame_hdr {
	uint32_t len; /* body bytes after the header */
	uint64_t id;
	uint16_t method;
	uint8_t flags;
	uint8_t status;
};

void frame_hdr_encode(const struct frame_hdr *h, uint8_t out[FRAME_HDR_SIZE]);
/* Decode a header; SH_ETOOBIG when len > max (h is filled all the same, so
 * that the reply can carry the id), SH_EINVAL for unknown flag bits. */
int frame_hdr_decode(const uint8_t in[FRAME_HDR_SIZE], size_t max, struct frame_hdr *h,
		     struct sh_err *err);

/* Split a request body with FRAME_F_METADATA into its metadata and request
 * parts (pointers into body).  SH_EINVAL when the metadata length does not
 * fit the body or exceeds FRAME_MAX_METADATA. */
int frame_split_metadata(const uint8_t *body, size_t len, const uint8_t **meta, size_t *meta_len,
			 const uint8_t **req, size_t *req_len, struct sh_err *err);

struct frame_dec;

struct frame_dec *frame_dec_new(size_t max_len);
void frame_dec_free(struct frame_dec *d);
/* Consume bytes of data until one frame is complete or data is used up;
 * *used says how many were taken.  Returns 1 when a frame is ready (read it
 * with frame_dec_frame, then feed the rest), 0 when more bytes are needed,
 * or a negative code: the stream is unusable from then on (SH_ETOOBIG,
 * SH_EINVAL from the header, SH_ENOMEM). */
int frame_dec_feed(struct frame_dec *d, const uint8_t *data, size_t len, size_t *used,
		   struct sh_err *err);
/* The ready frame: its header and body (owned by the decoder, valid until
 * the next feed). */
void frame_dec_frame(const struct frame_dec *d, struct frame_hdr *h, const uint8_t **body);
/* Bytes of a frame received but not yet complete (0 between frames). */
size_t frame_dec_pending(const struct frame_dec *d);

#endif
