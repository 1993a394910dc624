/*
 * frame: see frame.h.
 *
 * The decoder has two states: reading the header (hdr_have < 16) and
 * reading the body (body_have < hdr.len).  The body buffer grows only after
 * the header passed frame_hdr_decode's limit check, and never beyond the
 * largest body seen; it is reused from frame to frame.
 */
#include "build.h"

#include "net/frame.h"

#include "util/alloc.h"

#include <string.h>

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

void frame_hdr_encode(const struct frame_hdr *h, uint8_t out[FRAME_HDR_SIZE])
{
	put_le(out, h->len, 4);
	put_le(out + 4, h->id, 8);
	put_le(out + 12, h->method, 2);
	out[14] = h->flags;
	out[15] = h->status;
}

int frame_hdr_decode(const uint8_t in[FRAME_HDR_SIZE], size_t max, struct frame_hdr *h,
		     struct sh_err *err)
{
	h->len = (uint32_t)get_le(in, 4);
	h->id = get_le(in + 4, 8);
	h->method = (uint16_t)get_le(in + 12, 2);
	h->flags = in[14];
	h->status = in[15];
	if (h->len > max)
		return sh_err_set(err, SH_ETOOBIG,
				  "frame of %u bytes is over the limit of %zu bytes "
				  "(limits.max_frame_bytes)",
				  h->len, max);
	if (h->flags & ~FRAME_F_KNOWN)
		return sh_err_set(err, SH_EINVAL, "frame has unknown flag bits 0x%02x",
				  h->flags & ~FRAME_F_KNOWN);
	return 0;
}

int frame_split_metadata(const uint8_t *body, size_t len, const uint8_t **meta, size_t *meta_len,
			 const uint8_t **req, size_t *req_len, struct sh_err *err)
{
	uint64_t n;

	if (len < 4)
		return sh_err_set(err, SH_EINVAL, "metadata flag set but the body has %zu bytes",
				  len);
	n = get_le(body, 4);
	if (n > FRAME_MAX_METADATA || n > len - 4)
		return sh_err_set(err, SH_EINVAL,
				  "metadata length %llu does not fit (body %zu bytes, limit %d)",
				  (unsigned long long)n, len, FRAME_MAX_METADATA);
	*meta = body + 4;
	*meta_len = (size_t)n;
	*req = body + 4 + n;
	*req_len = len - 4 - (size_t)n;
	return 0;
}

/* ------------------------------------------------------------ decoder */

struct frame_dec {
	size_t max;
	uint8_t hdr_buf[FRAME_HDR_SIZE];
	size_t hdr_have;
	struct frame_hdr hdr;
	uint8_t *body;
	size_t body_cap, body_have;
	bool ready;
	int failed;
};

struct frame_dec *frame_dec_new(size_t max_len)
{
	struct frame_dec *d = sh_calloc(1, sizeof *d);

	if (d != NULL)
		d->max = max_len;
	return d;
}

void frame_dec_free(struct frame_dec *d)
{
	if (d == NULL)
		return;
	sh_free(d->body);
	sh_free(d);
}

static int take_header(struct frame_dec *d, struct sh_err *err)
{
	int rv = frame_hdr_decode(d->hdr_buf, d->max, &d->hdr, err);

	if (rv != 0)
		return d->failed = rv;
	if (d->hdr.len > d->body_cap) {
		uint8_t *b = sh_realloc(d->body, d->hdr.len);

		if (b == NULL)
			return d->failed = sh_err_set(err, SH_ENOMEM,
						      "out of memory for a frame of %u bytes",
						      d->hdr.len);
		d->body = b;
		d->body_cap = d->hdr.len;
	}
	d->body_have = 0;
	return 0;
}

int frame_dec_feed(struct frame_dec *d, const uint8_t *data, size_t len, size_t *used,
		   struct sh_err *err)
{
	size_t n;
	int rv;

	*used = 0;
	if (d->failed)
		return sh_err_set(err, d->failed, "the stream failed earlier");
	if (d->ready) {
		d->ready = false;
		d->hdr_have = 0;
	}
	if (d->hdr_have < FRAME_HDR_SIZE) {
		n = FRAME_HDR_SIZE - d->hdr_have;
		n = n < len ? n : len;
		memcpy(d->hdr_buf + d->hdr_have, data, n);
		d->hdr_have += n;
		*used = n;
		if (d->hdr_have < FRAME_HDR_SIZE)
			return 0;
		if ((rv = take_header(d, err)) != 0)
			return rv;
	}
	n = d->hdr.len - d->body_have;
	n = n < len - *used ? n : len - *used;
	if (n > 0)
		memcpy(d->body + d->body_have, data + *used, n);
	d->body_have += n;
	*used += n;
	if (d->body_have < d->hdr.len)
		return 0;
	d->ready = true;
	return 1;
}

void frame_dec_frame(const struct frame_dec *d, struct frame_hdr *h, const uint8_t **body)
{
	*h = d->hdr;
	*body = d->body;
}

size_t frame_dec_pending(const struct frame_dec *d)
{
	if (d->ready)
		return 0;
	return d->hdr_have + (d->hdr_have == FRAME_HDR_SIZE ? d->body_have : 0);
}
