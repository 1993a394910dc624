/* Tests of net/frame: the header codec, the limit checked before any
 * allocation, unknown flags, metadata splitting, and the incremental
 * decoder fed one byte at a time and in random chunks. */
#include "build.h"

#include "net/frame.h"
#include "proto/shoal.pb-c.h"
#include "tap.h"
#include "util/rand.h"

#include <string.h>

static size_t make(uint8_t *out, uint64_t id, uint16_t method, const char *body)
{
	struct frame_hdr h = {(uint32_t)strlen(body), id, method, 0, 0};

	frame_hdr_encode(&h, out);
	memcpy(out + FRAME_HDR_SIZE, body, strlen(body));
	return FRAME_HDR_SIZE + strlen(body);
}

static void test_header(void)
{
	struct frame_hdr h = {37, 0x0102030405060708ull, 11, FRAME_F_METADATA, 0}, back;
	uint8_t b[FRAME_HDR_SIZE];
	const uint8_t want[FRAME_HDR_SIZE] = {37, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1, 11, 0, 2, 0};
	struct sh_err err;

	frame_hdr_encode(&h, b);
	ok(memcmp(b, want, sizeof b) == 0, "header bytes are little-endian, as documented");
	is_int(frame_hdr_decode(b, 1024, &back, &err), 0, "decodes");
	ok(back.len == 37 && back.id == h.id && back.method == 11 && back.flags == 2, "round trip");
	h.len = 5000;
	frame_hdr_encode(&h, b);
	is_int(frame_hdr_decode(b, 4096, &back, &err), SH_ETOOBIG, "a length over the limit");
	like(err.msg, "frame of 5000 bytes is over the limit of 4096 bytes", "says so");
	is_int(back.id, h.id, "and the id is known for the reply");
	h.len = 1;
	h.flags = 0x80;
	frame_hdr_encode(&h, b);
	is_int(frame_hdr_decode(b, 4096, &back, &err), SH_EINVAL, "unknown flag bits");
	like(err.msg, "unknown flag bits 0x80", "named");
}

static void test_metadata(void)
{
	const uint8_t body[] = {3, 0, 0, 0, 8, 0xf4, 3, 0x0a, 1, 'c'};
	const uint8_t *m, *r;
	size_t ml, rl;
	struct sh_err err;

	is_int(frame_split_metadata(body, sizeof body, &m, &ml, &r, &rl, &err), 0, "split");
	ok(ml == 3 && m == body + 4 && rl == 3 && r == body + 7, "parts in place");
	is_int(frame_split_metadata(body, 6, &m, &ml, &r, &rl, &err), SH_EINVAL,
	       "metadata longer than the body");
	is_int(frame_split_metadata(body, 2, &m, &ml, &r, &rl, &err), SH_EINVAL,
	       "a body too short for the length");
}

/* Feed stream in chunks of at most max_chunk bytes; count frames. */
static int feed_all(const uint8_t *stream, size_t len, size_t max_chunk, struct sh_rand *r,
		    uint64_t *ids)
{
	struct frame_dec *d = frame_dec_new(1024);
	struct sh_err err;
	size_t off = 0;
	int frames = 0;

	while (off < len) {
		size_t chunk = 1 + sh_rand_below(r, max_chunk), used;
		const uint8_t *body;
		struct frame_hdr h;
		int rv;

		chunk = chunk < len - off ? chunk : len - off;
		while (chunk > 0) {
			rv = frame_dec_feed(d, stream + off, chunk, &used, &err);
			off += used;
			chunk -= used;
			if (rv < 0) {
				frame_dec_free(d);
				return -1;
			}
			if (rv == 1) {
				frame_dec_frame(d, &h, &body);
				ids[frames++] = h.id;
				if (h.len > 0 && memcmp(body, "payload", 7) != 0)
					ids[frames - 1] = 0;
			}
		}
	}
	frames = frame_dec_pending(d) == 0 ? frames : -2;
	frame_dec_free(d);
	return frames;
}

static void test_decoder(void)
{
	uint8_t stream[4096];
	uint64_t ids[64];
	size_t len = 0;
	struct sh_rand r;
	int bad = 0;

	sh_rand_seed(&r, 5);
	for (uint64_t i = 1; i <= 20; i++)
		len += make(stream + len, i, 1, i % 3 ? "payload-xyz" : "");
	is_int(feed_all(stream, len, 1, &r, ids), 20, "one byte at a time: 20 frames");
	for (int round = 0; round < 200; round++) {
		int n = feed_all(stream, len, 1 + sh_rand_below(&r, 64), &r, ids);

		bad += n != 20;
		for (int i = 0; i < 20 && n == 20; i++)
			bad += ids[i] != (uint64_t)i + 1;
	}
	is_int(bad, 0, "random chunks: every frame, in order, bodies intact (200 rounds)");
	{
		struct frame_dec *d = frame_dec_new(16);
		struct frame_hdr h = {17, 1, 1, 0, 0};
		uint8_t b[FRAME_HDR_SIZE];
		struct sh_err err;
		size_t used;

		frame_hdr_encode(&h, b);
		is_int(frame_dec_feed(d, b, sizeof b, &used, &err), SH_ETOOBIG,
		       "decoder: a length over its limit fails before any body byte");
		is_int(frame_dec_feed(d, b, 1, &used, &err), SH_ETOOBIG,
		       "and the stream stays failed");
		frame_dec_free(d);
	}
}

/* The search example of doc/protocol.md, byte for byte. */
static void test_doc_example(void)
{
	static const uint8_t want[] = {0x16, 0,    0,    0,    0x2a, 0,    0,    0,
				       0,    0,    0,    0,    0x0b, 0,    0x02, 0, /* header */
				       0x03, 0,    0,    0,    0x08, 0xf4, 0x03,    /* metadata */
				       0x0a, 0x01, 0x63, 0x12, 0x08, 0,    0,    0x80,
				       0x3f, 0,    0,    0,    0,    0x18, 0x03};
	Shoal__Metadata md;
	Shoal__SearchRequest sr;
	float v[2] = {1, 0};
	char coll[] = "c";
	uint8_t buf[64];
	size_t n = FRAME_HDR_SIZE + 4;
	struct frame_hdr h;

	shoal__metadata__init(&md);
	shoal__search_request__init(&sr);
	md.timeout_ms = 500;
	sr.collection = coll;
	sr.vector = v;
	sr.n_vector = 2;
	sr.k = 3;
	buf[FRAME_HDR_SIZE] = (uint8_t)shoal__metadata__pack(&md, buf + n);
	buf[FRAME_HDR_SIZE + 1] = buf[FRAME_HDR_SIZE + 2] = buf[FRAME_HDR_SIZE + 3] = 0;
	n += buf[FRAME_HDR_SIZE];
	n += shoal__search_request__pack(&sr, buf + n);
	h = (struct frame_hdr){(uint32_t)(n - FRAME_HDR_SIZE), 42, SHOAL__METHOD__METHOD_SEARCH,
			       FRAME_F_METADATA, 0};
	frame_hdr_encode(&h, buf);
	is_int(n, sizeof want, "the documented example is %zu bytes", sizeof want);
	ok(n == sizeof want && memcmp(buf, want, n) == 0, "and these bytes");
}

int main(void)
{
	test_header();
	test_doc_example();
	test_metadata();
	test_decoder();
	return done_testing();
}
