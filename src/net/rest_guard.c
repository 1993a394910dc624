/*
 * rest_guard: evhttp's own error replies rewritten as JSON (see
 * rest_impl.h).
 *
 * libevent 2.1 answers some requests itself, before any callback of ours
 * runs: 400 for a request line or header it cannot parse, 413 for a body
 * over evhttp_set_max_body_size() or headers over
 * evhttp_set_max_headers_size(), 501 for a method it does not know.  It
 * writes those with evhttp_send_error(): an HTML page, "Content-Type:
 * text/html" and "Connection: close", and it offers no hook to change them
 * (evhttp_set_errorcb came in 2.2).  So each connection's bufferevent
 * (made here, through evhttp_set_bevcb) has a callback on its output
 * buffer: output that appears while no reply of ours is being written
 * (rest.c sets guard->ours around evhttp_send_reply) is evhttp's own; once
 * it is whole — the header block, and the body its Content-Length gives, or
 * the one body write that follows a header block without one (HEAD) — it
 * is replaced by Qdrant's error shape, {"status": {"error": ..., "code":
 * ...}, "time": 0.0}, with the same HTTP code.
 * Everything evhttp writes happens inside one call (evhttp_send_error), so
 * nothing of it reaches the socket before it is replaced; earlier replies
 * still queued in front of it are kept.  Output of evhttp's own that is not
 * an error page (100 Continue) is left alone.
 *
 * Threads: the loop thread only (libevent without locking).
 */
#include "build.h"

#include "net/rest_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#define HEAD_MAX 8192

/* The header block of evhttp's reply, once it is complete: its length, or
 * 0 while incomplete (or too long to be evhttp's). */
static size_t head_len(struct evbuffer *buf, size_t start)
{
	struct evbuffer_ptr from, at;

	if (evbuffer_ptr_set(buf, &from, start, EVBUFFER_PTR_SET) != 0)
		return 0;
	at = evbuffer_search(buf, "\r\n\r\n", 4, &from);
	if (at.pos < 0 || (size_t)at.pos - start + 4 > HEAD_MAX)
		return 0;
	return (size_t)at.pos - start + 4;
}

static const char *message_of(int code, size_t max_body, char *buf, size_t size)
{
	switch (code) {
	case 413:
		snprintf(buf, size,
			 "request too large: a body over limits.max_frame_bytes (%zu bytes) or "
			 "headers over 64 KiB",
			 max_body);
		return buf;
	case 501: return "method not implemented (see doc/protocol.md, \"REST\")";
	case 417: return "expectation failed: only \"Expect: 100-continue\" is understood";
	default:
		return "malformed HTTP request (request line, headers, or chunked body), or "
		       "headers "
		       "over 64 KiB";
	}
}

static void replace(struct rest_guard *g, struct evbuffer *buf, int code)
{
	struct evbuffer *keep = evbuffer_new();
	char msg[160], body[400];
	int n;

	if (keep == NULL)
		return;
	n = snprintf(body, sizeof body,
		     "{\"status\":{\"error\":\"%s\",\"code\":\"%s\"},\"time\":0.0}\n",
		     message_of(code, g->max_body, msg, sizeof msg),
		     code == 413 ? "RESOURCE_EXHAUSTED" : "INVALID_ARGUMENT");
	g->busy = true;
	evbuffer_remove_buffer(buf, keep, g->start);
	evbuffer_drain(buf, evbuffer_get_length(buf));
	evbuffer_add_buffer(buf, keep);
	evbuffer_add_printf(buf,
			    "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
			    "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
			    code, code == 413 ? "Payload Too Large" : "Bad Request", n, body);
	g->busy = false;
	evbuffer_free(keep);
}

/* evhttp's reply at g->start: replaced once whole; forgotten when it is
 * not an error page. */
static void check(struct rest_guard *g, struct evbuffer *buf)
{
	size_t hl = head_len(buf, g->start), have, clen = 0;
	char head[HEAD_MAX + 1], *cl;
	struct evbuffer_ptr p;
	int code = 0;
	bool has_cl;

	if (hl == 0)
		return;
	evbuffer_ptr_set(buf, &p, g->start, EVBUFFER_PTR_SET);
	evbuffer_copyout_from(buf, &p, head, hl);
	head[hl] = '\0';
	if (sscanf(head, "HTTP/1.%*d %d", &code) != 1 || code < 400 ||
	    strstr(head, "\r\nContent-Type: text/html") == NULL ||
	    strstr(head, "\r\nConnection: close\r\n") == NULL) {
		g->buf = NULL; /* not an error page: leave it */
		return;
	}
	cl = strstr(head, "\r\nContent-Length: ");
	has_cl = cl != NULL;
	if (has_cl)
		clen = strtoul(cl + 18, NULL, 10);
	have = evbuffer_get_length(buf) - g->start;
	if ((has_cl && have < hl + clen) || (!has_cl && have == hl))
		return; /* its body is still to come */
	replace(g, buf, code);
	g->buf = NULL;
}

static void on_output(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct rest_guard *g = arg;

	if (g->busy)
		return;
	if (g->buf == buf && info->n_deleted > 0)
		g->start = g->start > info->n_deleted ? g->start - info->n_deleted : 0;
	if (info->n_added == 0 || g->ours)
		return;
	if (g->buf != buf) {
		g->buf = buf;
		g->start = info->orig_size;
	}
	check(g, buf);
}

struct bufferevent *rest_guard_bev(struct event_base *base, void *arg)
{
	struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);

	if (bev != NULL && evbuffer_add_cb(bufferevent_get_output(bev), on_output, arg) == NULL) {
		bufferevent_free(bev);
		return NULL;
	}
	return bev;
}
