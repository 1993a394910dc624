/*
 * rest_idem: the Idempotency-Key header of REST writes (doc/protocol.md,
 * "Idempotency-Key"; the sessions of storage/session.h).
 *
 * A key names a client session of one write: its client id is a hash of
 * the key and of the request's API key, as authentication reads it (keys
 * of different API keys never meet), its seq 1; like every write with a session it is
 * acknowledged at quorum at least.  A retry with the same key and the same request
 * (method, path, body: hashed) gets the first answer and is not
 * applied again; the same key with another request is refused.  A write
 * by filter is several writes, one per page of matches, which one key
 * cannot name: refused with the header.
 */
#include "build.h"

#include "net/rest_impl.h"

#include "storage/digest.h"
#include "storage/session.h"

#include <string.h>

#define IDEM_KEY_MAX 255

static const unsigned char idem_key[16] = "shoal-idem-key-1";

/* Printable ASCII, 1..IDEM_KEY_MAX bytes. */
static int check_key(const char *k, struct sh_err *err)
{
	size_t len = strlen(k);

	if (len == 0 || len > IDEM_KEY_MAX)
		return sh_err_set(err, SH_EINVAL, "Idempotency-Key: %zu bytes, not 1 to %d", len,
				  IDEM_KEY_MAX);
	for (size_t i = 0; i < len; i++)
		if (k[i] < 0x21 || k[i] > 0x7e)
			return sh_err_set(err, SH_EINVAL,
					  "Idempotency-Key: byte %zu is not printable ASCII", i);
	return 0;
}

/* The request's hash: method, path, body (not the query: a retry may
 * change its timeout or ack level and still be the same write). */
static uint64_t request_hash(struct evhttp_request *req)
{
	struct evbuffer *body = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(body);
	int cmd = (int)evhttp_request_get_command(req);
	const char *uri = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	struct siphash h;
	struct digest d;

	siphash_init(&h, idem_key);
	siphash_update(&h, &cmd, sizeof cmd);
	if (uri != NULL)
		siphash_update(&h, uri, strlen(uri) + 1);
	if (len > 0)
		siphash_update(&h, evbuffer_pullup(body, -1), len);
	d = siphash_final(&h);
	return (d.lo ^ d.hi) | 1; /* never 0: 0 is "not checked" */
}

int rest_idempotency(struct op *op, const struct rest_call *c, Shoal__WriteOptions *wo,
		     struct sh_err *err)
{
	struct evkeyvalq *hdr = c->req != NULL ? evhttp_request_get_input_headers(c->req) : NULL;
	const char *k = hdr != NULL ? evhttp_find_header(hdr, "Idempotency-Key") : NULL;
	const char *scope = hdr != NULL ? rest_api_key(hdr) : ""; /* the key authenticated */
	const json_t *f = json_object_get(c->body, "filter");
	unsigned char *id;
	struct siphash h;
	struct digest d;
	int rv;

	if (k == NULL)
		return 0;
	if ((rv = check_key(k, err)) != 0)
		return rv;
	if (f != NULL && !json_is_null(f))
		return sh_err_set(err, SH_EINVAL,
				  "Idempotency-Key: not supported on a write by filter (it is one "
				  "write per page of matches); name the points by id");
	if ((id = arena_alloc(&op->arena, SESSION_ID_BYTES)) == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	siphash_init(&h, idem_key);
	siphash_update(&h, k, strlen(k) + 1);
	siphash_update(&h, scope, strlen(scope) + 1);
	d = siphash_final(&h);
	memcpy(id, &d.lo, 8);
	memcpy(id + 8, &d.hi, 8);
	wo->client_id.data = id;
	wo->client_id.len = SESSION_ID_BYTES;
	wo->seq = wo->done_below = 1;
	wo->request_hash = request_hash(c->req);
	return 0;
}
