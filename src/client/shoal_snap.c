/*
 * libshoal backups: shoal_snapshot (include/shoal.h; doc/protocol.md,
 * "Snapshots").
 *
 * The server hands the snapshot file out as its self-checking pieces: the
 * 40-byte header, then one frame per reply (u32 length, u32 CRC-32C of
 * the frame's sequence number as 8 bytes and its data, the data), the end
 * frame (length 0, its CRC over the sequence number and the total content
 * length) last — doc/storage-format.md, "Snapshots".  Each piece is checked
 * here before the caller's write() sees it, so a file written whole is a
 * sound snapshot file; the server's checks (snapshot.c) are the same, this
 * is the client's copy of them (libshoal carries none of the storage).
 */
#include "build.h"

#include "client/shoal_impl.h"

#include "util/alloc.h"
#include "util/crc32c.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define SNAP_HDR         40
#define SNAP_FRAME_HDR   8
#define SNAP_FRAME_MAX   (1u << 20)
#define SNAP_VERSION     4 /* read: 2 to 4 (doc/storage-format.md) */
#define SNAP_VERSION_MIN 2
#define FRESH_MARK       0x33485346u /* format 3's content opens with it */
#define SESSION_MARK     0x34485346u /* format 4's */
#define DIGEST_HEAD_MAX  4096        /* content bytes kept to find the digest */

struct snap_check {
	uint64_t received; /* bytes of the file so far */
	uint64_t seq;      /* of the next frame */
	uint64_t total;    /* content bytes so far */
	bool ended;
	unsigned char head[DIGEST_HEAD_MAX]; /* the content's first bytes */
	size_t head_len;
};

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static uint32_t crc_seq(uint64_t seq, const void *data, size_t len)
{
	unsigned char s[8];

	for (int i = 0; i < 8; i++)
		s[i] = (unsigned char)(seq >> (8 * i));
	return sh_crc32c(sh_crc32c(0, s, 8), data, len);
}

static int check_header(shoal *c, const unsigned char *h, size_t len,
			const Shoal__SnapshotResponse *r)
{
	if (len != SNAP_HDR || memcmp(h, "SHOALSNP", 8) != 0)
		return cl_fail(c, SHOAL_INTERNAL, "snapshot: the first piece is not a header");
	if (get32(h + 36) != sh_crc32c(0, h, 36))
		return cl_fail(c, SHOAL_INTERNAL, "snapshot: header checksum mismatch");
	if (get32(h + 8) < SNAP_VERSION_MIN || get32(h + 8) > SNAP_VERSION)
		return cl_fail(c, SHOAL_INTERNAL, "snapshot: unknown format version %" PRIu32,
			       get32(h + 8));
	if (get64(h + 16) != r->term || get64(h + 24) != r->index)
		return cl_fail(c, SHOAL_INTERNAL,
			       "snapshot: the header says index %" PRIu64 ", the reply %" PRIu64,
			       get64(h + 24), r->index);
	return SHOAL_OK;
}

static void keep_head(struct snap_check *k, const unsigned char *p, size_t len)
{
	size_t n = DIGEST_HEAD_MAX - k->head_len < len ? DIGEST_HEAD_MAX - k->head_len : len;

	memcpy(k->head + k->head_len, p, n);
	k->head_len += n;
}

static int check_frame(shoal *c, struct snap_check *k, const unsigned char *f, size_t len)
{
	uint32_t flen, want;
	unsigned char t[8];

	if (len < SNAP_FRAME_HDR || (flen = get32(f)) != len - SNAP_FRAME_HDR ||
	    flen > SNAP_FRAME_MAX)
		return cl_fail(c, SHOAL_INTERNAL,
			       "snapshot: frame %" PRIu64 " at offset %" PRIu64 " is malformed",
			       k->seq, k->received);
	if (flen > 0) {
		want = crc_seq(k->seq, f + SNAP_FRAME_HDR, flen);
	} else {
		for (int i = 0; i < 8; i++)
			t[i] = (unsigned char)(k->total >> (8 * i));
		want = crc_seq(k->seq, t, 8);
	}
	if (get32(f + 4) != want)
		return cl_fail(c, SHOAL_INTERNAL,
			       "snapshot: frame %" PRIu64 " at offset %" PRIu64
			       ": checksum mismatch (stored %08" PRIx32 ", computed %08" PRIx32 ")",
			       k->seq, k->received, get32(f + 4), want);
	keep_head(k, f + SNAP_FRAME_HDR, flen);
	k->seq++;
	k->total += flen;
	k->ended = flen == 0;
	return SHOAL_OK;
}

/* One piece: in order, sound, then the caller's. */
static int take(shoal *c, struct snap_check *k, const Shoal__SnapshotResponse *r,
		shoal_write_fn write, void *arg)
{
	const unsigned char *d = r->data.data;
	size_t len = r->data.len;
	int rv;

	if (r->offset != k->received)
		return cl_fail(c, SHOAL_INTERNAL,
			       "snapshot: a piece at offset %" PRIu64 ", expected %" PRIu64,
			       r->offset, k->received);
	if (r->last) {
		if (len != 0 || !k->ended)
			return cl_fail(c, SHOAL_INTERNAL, "snapshot: ended without its end frame");
		if (k->received != r->size)
			return cl_fail(c, SHOAL_INTERNAL,
				       "snapshot: ended at %" PRIu64 " bytes of %" PRIu64,
				       k->received, r->size);
		return SHOAL_OK;
	}
	if (k->ended)
		return cl_fail(c, SHOAL_INTERNAL, "snapshot: data after the end frame");
	rv = k->received == 0 ? check_header(c, d, len, r) : check_frame(c, k, d, len);
	if (rv != SHOAL_OK)
		return rv;
	if (write(arg, d, len) != 0)
		return cl_fail(c, SHOAL_INTERNAL, "snapshot: writing it out failed");
	k->received += len;
	return SHOAL_OK;
}

/* The digest from the content's start: (formats 3, 4: u32 mark,) u32
 * collections, u32 voter configuration length V, V bytes, u64 digest low,
 * u64 digest high. */
static void find_digest(const struct snap_check *k, char out[33])
{
	const unsigned char *h = k->head;
	size_t len = k->head_len;
	uint64_t v;

	out[0] = '\0';
	if (len >= 4 && (get32(h) == FRESH_MARK || get32(h) == SESSION_MARK)) {
		h += 4;
		len -= 4;
	}
	if (len < 8)
		return;
	v = get32(h + 4);
	if (8 + v + 16 > len)
		return;
	snprintf(out, 33, "%016" PRIx64 "%016" PRIx64, get64(h + 8 + v + 8), get64(h + 8 + v));
}

static int ask(shoal *c, uint64_t session, uint64_t offset, struct arena *a,
	       Shoal__SnapshotResponse **out)
{
	Shoal__SnapshotRequest q;
	ProtobufCMessage *m = NULL;
	int rv;

	shoal__snapshot_request__init(&q);
	q.session = session;
	q.offset = offset;
	rv = cl_call(c, SHOAL__METHOD__METHOD_SNAPSHOT, &q.base, false, a,
		     &shoal__snapshot_response__descriptor, &m);
	*out = (Shoal__SnapshotResponse *)m;
	return rv;
}

int shoal_snapshot(shoal *c, shoal_write_fn write, void *arg, shoal_snapshot_progress_fn progress,
		   struct shoal_snapshot_info *info)
{
	struct snap_check *k = sh_calloc(1, sizeof *k);
	uint64_t session = 0;
	bool last = false;
	int rv = k != NULL ? SHOAL_OK : cl_fail(c, SHOAL_RESOURCE_EXHAUSTED, "out of memory");

	memset(info, 0, sizeof *info);
	while (rv == SHOAL_OK && !last) {
		struct arena a;
		Shoal__SnapshotResponse *r;

		arena_init(&a);
		if ((rv = ask(c, session, k->received, &a, &r)) == SHOAL_OK &&
		    (rv = take(c, k, r, write, arg)) == SHOAL_OK) {
			session = r->session;
			last = r->last;
			*info = (struct shoal_snapshot_info){r->index,   r->term,       r->size,
							     r->node_id, r->cluster_id, ""};
			if (progress != NULL)
				progress(arg, k->received, r->size);
		}
		arena_free(&a);
	}
	if (rv == SHOAL_OK)
		find_digest(k, info->digest);
	sh_free(k);
	return rv;
}
