/*
 * libshoal pipelining: many requests in flight on one connection
 * (doc/protocol.md, "Pipelining").  Request i carries id base + i; replies
 * arrive in completion order and are matched back by id.  The engine keeps
 * up to depth requests in flight, writes while the socket takes bytes and
 * reads whatever arrives; it fails on a transport error or when no reply
 * arrives for the handle's timeout.
 */
#include "build.h"

#include "client/shoal_impl.h"

#include "net/japi.h"

#include "util/alloc.h"
#include "util/clock.h"

#include <string.h>

struct pstate {
	const struct cl_pipe *p;
	uint64_t base;
	uint64_t *sent_ns; /* per request: 0 before it is sent and once answered */
	size_t done, inflight;
	size_t low; /* the first request not answered (or not sent) */
};

static void on_frame(void *arg, const struct frame_hdr *h, const uint8_t *body)
{
	struct pstate *s = arg;
	size_t i = (size_t)(h->id - s->base);

	if (h->id < s->base || i >= s->p->n || s->sent_ns[i] == 0 || !(h->flags & FRAME_F_RESPONSE))
		return;
	s->p->reply(s->p->arg, i, h->status, body, h->len, sh_clock_mono_ns() - s->sent_ns[i]);
	s->sent_ns[i] = 0;
	s->done++;
	s->inflight--;
}

/* Writes in flight when the connection failed: they may have been applied. */
static int outcome_unknown(shoal *c, size_t inflight)
{
	size_t l = strlen(c->msg);

	snprintf(c->msg + l, sizeof c->msg - l,
		 " (with %zu write request%s sent and not answered: they may have been applied)",
		 inflight, inflight == 1 ? "" : "s");
	return SHOAL_OUTCOME_UNKNOWN;
}

int cl_pipeline(shoal *c, const struct cl_pipe *p)
{
	struct pstate s = {p, c->next_id + 1, NULL, 0, 0, 0};
	struct cl_buf b = {0};
	size_t next = 0, depth = p->depth ? p->depth : 1;
	uint64_t deadline = 0;
	size_t left;
	bool blocked = false, wrote = false;
	shoal *r = p->write ? c : cl_reader(c);
	int rv;

	if (r != c) { /* reads elsewhere (shoal_read.c) */
		if (r == NULL)
			return SHOAL_RESOURCE_EXHAUSTED;
		r->o.timeout_ms = c->o.timeout_ms;
		if ((rv = cl_pipeline(r, p)) != SHOAL_OK)
			snprintf(c->msg, sizeof c->msg, "%s", r->msg);
		return rv;
	}
	c->deadline = sh_clock_mono_ns() + (uint64_t)c->o.timeout_ms * 1000000;
	rv = cl_connect(c);
	if (rv == SHOAL_OK && p->write)
		rv = cl_follow_leader(c, c->deadline);
	c->deadline = 0;
	if (rv != SHOAL_OK)
		return rv;
	if ((s.sent_ns = sh_calloc(p->n + 1, sizeof *s.sent_ns)) == NULL)
		return cl_fail(c, SHOAL_RESOURCE_EXHAUSTED, "out of memory");
	c->next_id += p->n;
	while (rv == SHOAL_OK && s.done < p->n) {
		while (next < p->n && s.inflight < depth && b.len - b.off < (1u << 20)) {
			while (s.low < next && s.sent_ns[s.low] == 0)
				s.low++;
			if ((rv = p->build(c, p->arg, next, s.low, &b, s.base + next)) != SHOAL_OK)
				break;
			s.sent_ns[next++] = sh_clock_mono_ns();
			s.inflight++;
		}
		left = b.len - b.off;
		if (rv != SHOAL_OK || (rv = cl_write_some(c, &b, &blocked)) != SHOAL_OK)
			break;
		wrote |= b.len - b.off < left;
		deadline = sh_clock_mono_ns() + (uint64_t)c->o.timeout_ms * 1000000;
		if ((rv = cl_wait(c, blocked, deadline)) == SHOAL_OK)
			rv = cl_read_some(c, on_frame, &s);
	}
	sh_free(b.data);
	sh_free(s.sent_ns);
	if (rv != SHOAL_OK && p->write)
		c->role_at = 0; /* it may not lead any more: ask before the next write */
	if (rv != SHOAL_OK && rv != SHOAL_DEADLINE_EXCEEDED && p->write && wrote && s.inflight > 0)
		return outcome_unknown(c, s.inflight);
	return rv;
}

/* ------------------------------------------------------------ upserts */

struct up {
	const char *coll;
	const struct shoal_point *pts;
	size_t n, batch, acked;
	uint64_t seq0; /* batch i is write seq0 + i of the session */
	int first_error;
	shoal *c;
	shoal_progress_fn progress;
	void *arg;
	struct shoal_token tok;
};

static int up_build(shoal *c, void *arg, size_t i, size_t low, struct cl_buf *b, uint64_t id)
{
	struct up *u = arg;
	size_t from = i * u->batch, n = u->n - from < u->batch ? u->n - from : u->batch;
	Shoal__UpsertRequest r;
	Shoal__WriteOptions w;
	Shoal__Point *pv, **pp;
	int rv;

	shoal__upsert_request__init(&r);
	shoal__write_options__init(&w);
	pv = sh_calloc(n, sizeof *pv);
	pp = sh_calloc(n, sizeof *pp);
	if (pv == NULL || pp == NULL) {
		sh_free(pv);
		sh_free(pp);
		return cl_fail(c, SHOAL_RESOURCE_EXHAUSTED, "out of memory");
	}
	for (size_t k = 0; k < n; k++) {
		const struct shoal_point *s = &u->pts[from + k];

		shoal__point__init(&pv[k]);
		pv[k].id = s->id;
		pv[k].vector = (float *)(uintptr_t)s->vector;
		pv[k].n_vector = s->dim;
		if (s->payload != NULL) {
			pv[k].payload.data = (uint8_t *)(uintptr_t)s->payload;
			pv[k].payload.len = s->payload_len ? s->payload_len : strlen(s->payload);
		}
		pp[k] = &pv[k];
	}
	w.ack = (Shoal__Ack)c->o.ack;
	if (u->seq0 != 0)
		cl_session(c, &w, u->seq0 + i, u->seq0 + low);
	r.collection = (char *)(uintptr_t)u->coll;
	r.points = pp;
	r.n_points = n;
	r.write = &w;
	rv = cl_frame(c, b, id, SHOAL__METHOD__METHOD_UPSERT, &r.base);
	sh_free(pv);
	sh_free(pp);
	return rv;
}

static bool maybe_applied(int status)
{
	return status == SHOAL_OUTCOME_UNKNOWN || status == SHOAL_DEADLINE_EXCEEDED;
}

static void up_reply(void *arg, size_t i, int status, const uint8_t *body, size_t len,
		     uint64_t latency_ns)
{
	struct up *u = arg;
	size_t from = i * u->batch, n = u->n - from < u->batch ? u->n - from : u->batch;
	Shoal__WriteResponse *w;

	if (status != SHOAL_OK) { /* the first error, but a maybe-applied one before others */
		if (u->first_error == SHOAL_OK ||
		    (!maybe_applied(u->first_error) && maybe_applied(status)))
			u->first_error = cl_status(u->c, status, body, len);
		return;
	}
	w = shoal__write_response__unpack(NULL, len, body);
	if (w != NULL && w->token != NULL &&
	    (w->token->term > u->tok.term ||
	     (w->token->term == u->tok.term && w->token->index > u->tok.index))) {
		u->tok.term = w->token->term;
		u->tok.index = w->token->index;
		u->c->last = u->tok; /* progress may read it (shoal_last_token) */
	}
	shoal__write_response__free_unpacked(w, NULL);
	u->acked += n;
	if (u->progress != NULL)
		u->progress(u->arg, u->acked);
}

int shoal_upsert_pipelined(shoal *c, const char *collection, const struct shoal_point *pts,
			   size_t n, size_t batch, size_t depth, shoal_progress_fn progress,
			   void *arg, size_t *acked, struct shoal_token *tok)
{
	struct up u = {collection, pts, n,      batch ? batch : 256, 0, 0, SHOAL_OK, c,
		       progress,   arg, c->last};
	struct cl_pipe p = {(n + u.batch - 1) / u.batch, depth, true, up_build, up_reply, &u};
	int rv;

	if (cl_sessions(c)) {
		u.seq0 = c->seq + 1;
		c->seq += p.n; /* taken whether sent or not: seqs need not be dense */
	}
	rv = n > 0 ? cl_pipeline(c, &p) : SHOAL_OK;

	if (rv == SHOAL_OK && (rv = u.first_error) != SHOAL_OK)
		c->role_at = 0;
	if (acked != NULL)
		*acked = u.acked;
	if (tok != NULL)
		*tok = u.tok;
	return rv;
}

/* ------------------------------------------------------------ searches, pings */

struct sr {
	const char *coll;
	const struct shoal_search *qs;
	shoal_search_done_fn done;
	shoal_ping_done_fn ping_done;
	void *arg;
	shoal *c;
};

static int sr_build(shoal *c, void *arg, size_t i, size_t low, struct cl_buf *b, uint64_t id)
{
	(void)low;
	struct sr *s = arg;
	const struct shoal_search *q = &s->qs[i];
	Shoal__SearchRequest r;
	struct arena a;
	struct sh_err err;
	int rv = SHOAL_OK;

	shoal__search_request__init(&r);
	arena_init(&a);
	r.collection = (char *)(uintptr_t)s->coll;
	r.vector = (float *)(uintptr_t)q->vector;
	r.n_vector = q->dim;
	r.k = q->k;
	r.ef = q->ef;
	r.with_payload = (q->flags & SHOAL_WITH_PAYLOAD) != 0;
	r.with_vector = (q->flags & SHOAL_WITH_VECTOR) != 0;
	r.exact = (q->flags & SHOAL_EXACT) != 0;
	if (q->filter != NULL &&
	    japi_filter_text(q->filter, strlen(q->filter), &a, &r.filter, &err) != 0)
		rv = cl_fail(c, SHOAL_INVALID_ARGUMENT, "%s", err.msg);
	if (rv == SHOAL_OK)
		rv = cl_frame(c, b, id, SHOAL__METHOD__METHOD_SEARCH, &r.base);
	arena_free(&a);
	return rv;
}

static void sr_reply(void *arg, size_t i, int status, const uint8_t *body, size_t len,
		     uint64_t latency_ns)
{
	struct sr *s = arg;
	struct shoal_results res = {0};
	Shoal__SearchResponse *m;

	if (status != SHOAL_OK) {
		cl_status(s->c, status, body, len);
		s->done(s->arg, i, status, NULL, latency_ns);
		return;
	}
	m = shoal__search_response__unpack(NULL, len, body);
	res.exact = m != NULL && m->exact;
	if (m != NULL && (res.v = sh_calloc(m->n_points + 1, sizeof *res.v)) != NULL)
		for (size_t k = 0; k < m->n_points; k++, res.n++) {
			res.v[k].id = m->points[k]->id;
			res.v[k].distance = m->points[k]->distance;
		}
	s->done(s->arg, i, m != NULL ? SHOAL_OK : SHOAL_INTERNAL, &res, latency_ns);
	sh_free(res.v);
	shoal__search_response__free_unpacked(m, NULL);
}

int shoal_search_pipelined(shoal *c, const char *collection, const struct shoal_search *qs,
			   size_t n, size_t depth, shoal_search_done_fn done, void *arg)
{
	struct sr s = {collection, qs, done, NULL, arg, c};
	struct cl_pipe p = {n, depth, false, sr_build, sr_reply, &s};

	return n > 0 ? cl_pipeline(c, &p) : SHOAL_OK;
}

static int ping_build(shoal *c, void *arg, size_t i, size_t low, struct cl_buf *b, uint64_t id)
{
	(void)low;
	struct frame_hdr h = {0, id, SHOAL__METHOD__METHOD_PING, 0, 0};

	if (c->api_key != NULL) /* a node that requires keys wants one in a ping too */
		return cl_frame(c, b, id, SHOAL__METHOD__METHOD_PING, NULL);
	if (cl_buf_reserve(b, FRAME_HDR_SIZE) != 0)
		return cl_fail(c, SHOAL_RESOURCE_EXHAUSTED, "out of memory");
	frame_hdr_encode(&h, b->data + b->len);
	b->len += FRAME_HDR_SIZE;
	return SHOAL_OK;
}

static void ping_reply(void *arg, size_t i, int status, const uint8_t *body, size_t len,
		       uint64_t latency_ns)
{
	struct sr *s = arg;

	if (s->ping_done != NULL)
		s->ping_done(s->arg, i, status, latency_ns);
}

int shoal_ping_pipelined(shoal *c, size_t n, size_t depth, shoal_ping_done_fn done, void *arg)
{
	struct sr s = {NULL, NULL, NULL, done, arg, c};
	struct cl_pipe p = {n, depth, false, ping_build, ping_reply, &s};

	return n > 0 ? cl_pipeline(c, &p) : SHOAL_OK;
}
