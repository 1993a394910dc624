/*
 * rest_snap: GET /snapshot — a backup over HTTP (doc/protocol.md,
 * "Snapshots"; doc/qdrant.md, "Snapshots").
 *
 * The same session as the binary protocol's METHOD_SNAPSHOT (api_snap.c),
 * driven here one op at a time: the first op takes the snapshot; its
 * reply starts the HTTP reply (200, application/octet-stream, with the
 * file's Content-Length, so that a client can tell a cut transfer from a
 * whole one) and each chunk is written once the one before left the
 * output buffer (evhttp_send_reply_chunk_with_cb), so a slow client holds
 * at most one chunk in memory.  A failure before the first byte is an
 * ordinary JSON error; a failure after it can only end the reply, which
 * goes out with "Connection: close": the body ends short of its
 * Content-Length, with the connection.
 *
 * A client that goes away: evhttp detaches the request and calls the
 * connection's close callback; the stream stops at its next step and
 * evhttp_send_reply_end frees the request.  Loop thread only.
 */
#include "build.h"

#include "net/rest_impl.h"

#include "util/alloc.h"
#include "util/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <event2/http.h>

struct stream {
	struct rest *r;
	struct evhttp_request *req;
	struct evhttp_connection *conn;
	uint64_t session, offset;
	bool started;  /* the reply's headers are out */
	bool writing;  /* a chunk is in the output buffer, its callback due */
	bool closed;   /* the client went away */
	bool busy;     /* an op in flight */
	bool req_gone; /* evhttp frees the request with its connection */
};

static void next(struct stream *s);

/* Done, whole or not: the reply ends (it goes out with "Connection:
 * close", so a cut body ends with the connection, short of its length). */
static void finish(struct stream *s)
{
	if (s->conn != NULL && !s->closed)
		evhttp_connection_set_closecb(s->conn, NULL, NULL);
	if (s->started && !s->req_gone)
		rest_stream_end(s->r, s->req);
	sh_free(s);
}

/* The connection closes.  A request evhttp detached (the client went
 * away) is ours to end; one still attached (evhttp_free at stop) goes
 * with the connection. */
static void on_close(struct evhttp_connection *conn, void *arg)
{
	struct stream *s = arg;

	(void)conn;
	s->closed = true;
	s->req_gone = evhttp_request_get_connection(s->req) != NULL;
	LOG_INFO("rest", "GET /snapshot: the client went away at offset %" PRIu64, s->offset);
	if (s->writing) /* its callback will not come */
		finish(s);
}

static void on_written(struct evhttp_connection *conn, void *arg)
{
	struct stream *s = arg;

	(void)conn;
	s->writing = false;
	next(s);
}

static void start_reply(struct stream *s, const Shoal__SnapshotResponse *r)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(s->req);
	char buf[96];

	snprintf(buf, sizeof buf, "%" PRIu64, r->size);
	evhttp_add_header(h, "Content-Length", buf);
	snprintf(buf, sizeof buf, "attachment; filename=\"shoal-%016" PRIx64 "-%" PRIu64 ".snap\"",
		 r->node_id, r->index);
	evhttp_add_header(h, "Content-Disposition", buf);
	snprintf(buf, sizeof buf, "%" PRIu64, r->index);
	evhttp_add_header(h, "X-Shoal-Snapshot-Index", buf);
	snprintf(buf, sizeof buf, "%" PRIu64, r->term);
	evhttp_add_header(h, "X-Shoal-Snapshot-Term", buf);
	evhttp_add_header(h, "Connection", "close");
	rest_stream_start(s->r, s->req, "application/octet-stream");
	s->started = true;
}

static void on_done(struct op *op)
{
	struct stream *s = op->owner;
	const Shoal__SnapshotResponse *r = (const void *)op->resp;
	struct evbuffer *b;

	s->busy = false;
	if (s->closed || op->status != SHOAL__STATUS_CODE__OK) {
		if (!s->started && !s->req_gone) /* (a detached request: this frees it) */
			rest_send_json(s->r, s->req, rest_http_code(op->status),
				       rest_error_body(op->status, op->err.msg, 0));
		else if (!s->closed)
			LOG_WARN("rest", "GET /snapshot: cut at offset %" PRIu64 ": %s", s->offset,
				 op->err.msg);
		api_op_free(op);
		return finish(s);
	}
	if (!s->started)
		start_reply(s, r);
	s->session = r->session;
	s->offset = r->offset + r->data.len;
	if (r->last) {
		api_op_free(op);
		return finish(s);
	}
	if ((b = evbuffer_new()) == NULL || evbuffer_add(b, r->data.data, r->data.len) != 0) {
		if (b != NULL)
			evbuffer_free(b);
		api_op_free(op);
		return finish(s);
	}
	api_op_free(op);
	s->writing = true;
	rest_stream_chunk(s->r, s->req, b, on_written, s);
	evbuffer_free(b);
}

static void next(struct stream *s)
{
	struct op *op = api_op_new(rest_api(s->r), SHOAL__METHOD__METHOD_SNAPSHOT, METRICS_REST, 0);
	Shoal__SnapshotRequest *q =
		op ? api_new_msg(op, &shoal__snapshot_request__descriptor) : NULL;

	if (s->closed || q == NULL) {
		api_op_free(op);
		return finish(s);
	}
	q->session = s->session;
	q->offset = s->offset;
	op->req = &q->base;
	op->owner = s;
	op->done = on_done;
	s->busy = true;
	api_start(op);
}

void rest_snapshot(struct rest *r, struct evhttp_request *req)
{
	struct stream *s = sh_calloc(1, sizeof *s);

	if (s == NULL) {
		rest_send_json(r, req, 429,
			       rest_error_body(SHOAL__STATUS_CODE__RESOURCE_EXHAUSTED,
					       "out of memory", 0));
		return;
	}
	s->r = r;
	s->req = req;
	s->conn = evhttp_request_get_connection(req);
	if (s->conn != NULL)
		evhttp_connection_set_closecb(s->conn, on_close, s);
	next(s);
}
