/*
 * server: see server.h.
 *
 * A connection is freed only when its socket is gone (CONN_CLOSED) and no
 * request of it is in flight: ops hold a pointer to it, and the reply of an
 * op whose connection is closed is dropped.  Frames are decoded straight
 * from the bufferevent's input: the header is copied out, its length
 * checked against max_frame_bytes before the body is waited for, and the
 * body is made contiguous only once complete.
 */
#include "build.h"

#include "net/server.h"

#include "net/tls.h"
#include "util/tlsfile.h"

#include "net/frame.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

enum conn_state { CONN_READING, CONN_PAUSED, CONN_CLOSING, CONN_CLOSED };

struct conn {
	struct server *srv;
	struct bufferevent *bev;
	enum conn_state state;
	bool in_read; /* inside the read handler, which flushes at its end */
	size_t inflight;
	uint64_t last_active_ms, frame_since_ms, drained_ms;
	struct event *resume;
	struct conn *prev, *next;
	char peer[64];
};

struct server {
	struct server_opts o;
	struct evconnlistener *listener;
	struct event *sweep;
	struct conn *conns;
	size_t n_conns;
	uint64_t now_ms; /* the clock, read once per callback (timeouts are coarse) */
	uint64_t last_reject_log_ms, last_tls_log_ms;
};

static void conn_process(struct conn *c);
static void flush_now(struct conn *c);

/* ------------------------------------------------------------ life */

static void conn_free(struct conn *c)
{
	struct server *s = c->srv;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	s->n_conns--;
	api_metrics(s->o.api)->connections[METRICS_BINARY]--;
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	event_free(c->resume);
	sh_free(c);
}

/* The socket goes now; the struct when nothing is in flight. */
static void conn_close(struct conn *c, const char *why)
{
	if (why != NULL)
		LOG_DEBUG("server", "connection %s closed: %s", c->peer, why);
	if (c->bev != NULL) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	c->state = CONN_CLOSED;
	event_del(c->resume);
	if (c->inflight == 0)
		conn_free(c);
}

/* Stop reading; close once the replies written so far are flushed. */
static void conn_close_after_flush(struct conn *c)
{
	c->state = CONN_CLOSING;
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	bufferevent_enable(c->bev, EV_WRITE);
}

static size_t out_len(const struct conn *c)
{
	return c->bev ? evbuffer_get_length(bufferevent_get_output(c->bev)) : 0;
}

/* ------------------------------------------------------------ replies */

static void put_header(struct evbuffer *out, uint64_t id, uint16_t method, int status, size_t len)
{
	struct frame_hdr h = {(uint32_t)len, id, method, FRAME_F_RESPONSE, (uint8_t)status};
	uint8_t buf[FRAME_HDR_SIZE];

	frame_hdr_encode(&h, buf);
	evbuffer_add(out, buf, sizeof buf);
}

static void put_message(struct evbuffer *out, const ProtobufCMessage *m, size_t len)
{
	struct evbuffer_iovec v;

	if (len == 0)
		return;
	if (evbuffer_reserve_space(out, (ev_ssize_t)len, &v, 1) < 1)
		return; /* out of memory: the peer sees a short frame and fails */
	protobuf_c_message_pack(m, v.iov_base);
	v.iov_len = len;
	evbuffer_commit_space(out, &v, 1);
}

static void send_status(struct conn *c, uint64_t id, uint16_t method, int status, const char *msg,
			const struct op *op)
{
	Shoal__Status st;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	size_t len;

	shoal__status__init(&st);
	st.code = (Shoal__StatusCode)status;
	st.message = (char *)(uintptr_t)msg;
	if (op != NULL && op->leader != 0) {
		st.leader_id = op->leader;
		st.leader_address = (char *)(uintptr_t)op->leader_address;
	}
	len = shoal__status__get_packed_size(&st);
	put_header(out, id, method, status, len);
	put_message(out, &st.base, len);
}

static void send_reply(struct conn *c, struct op *op)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	size_t len;

	if (op->status != SHOAL__STATUS_CODE__OK || op->resp == NULL) {
		send_status(c, op->id, op->method,
			    op->status ? op->status : SHOAL__STATUS_CODE__INTERNAL, op->err.msg,
			    op);
		return;
	}
	len = protobuf_c_message_get_packed_size(op->resp);
	if (len > c->srv->o.max_frame_bytes) {
		char msg[160];

		snprintf(msg, sizeof msg,
			 "the reply of %zu bytes is over limits.max_frame_bytes (%zu): ask for "
			 "fewer points, or without vectors or payloads",
			 len, c->srv->o.max_frame_bytes);
		send_status(c, op->id, op->method, SHOAL__STATUS_CODE__RESOURCE_EXHAUSTED, msg,
			    NULL);
		return;
	}
	put_header(out, op->id, op->method, SHOAL__STATUS_CODE__OK, len);
	put_message(out, op->resp, len);
}

static bool over_limits(const struct conn *c)
{
	return c->inflight >= c->srv->o.max_inflight || out_len(c) > c->srv->o.max_output_bytes;
}

static void maybe_resume(struct conn *c)
{
	if (c->state != CONN_PAUSED || over_limits(c))
		return;
	c->state = CONN_READING;
	bufferevent_enable(c->bev, EV_READ);
	event_active(c->resume, EV_READ, 0); /* frames already buffered */
}

static void on_op_done(struct op *op)
{
	struct conn *c = op->owner;

	c->inflight--;
	if (c->state != CONN_CLOSED) {
		c->srv->now_ms = sh_clock_mono_ms();
		send_reply(c, op);
		c->last_active_ms = c->srv->now_ms;
		if (!c->in_read)
			flush_now(c); /* a reply from a worker: no need to wait a loop turn */
	}
	api_op_free(op);
	if (c->state == CONN_CLOSED && c->inflight == 0)
		conn_free(c);
	else if (c->state == CONN_PAUSED)
		maybe_resume(c);
}

/* ------------------------------------------------------------ requests */

/* The request's Metadata (NULL: none sent, or *bad when it does not decode). */
static Shoal__Metadata *metadata(const uint8_t *meta, size_t len, struct arena *a, bool *bad)
{
	Shoal__Metadata *m = meta != NULL ? shoal__metadata__unpack(arena_pb(a), len, meta) : NULL;

	*bad = meta != NULL && m == NULL;
	return m;
}

/* The key of md checked against what the method needs: 0 or a status. */
static int authorize(struct conn *c, uint16_t method, const Shoal__Metadata *md, char *msg,
		     size_t size)
{
	const char *key = md != NULL && md->api_key != NULL ? md->api_key : "";

	return api_authorize(c->srv->o.api, key, strlen(key), auth_method_role(method),
			     api_method_name(method), msg, size);
}

/* Answered here, inside the read handler: its time on the server is far
 * below the first histogram bucket (100 us), so it is recorded there
 * without reading the clock twice per ping. */
static void ping(struct conn *c, const struct frame_hdr *h)
{
	if (api_stopping(c->srv->o.api)) {
		send_status(c, h->id, h->method, SHOAL__STATUS_CODE__UNAVAILABLE,
			    "the node is stopping", NULL);
		return;
	}
	put_header(bufferevent_get_output(c->bev), h->id, h->method, SHOAL__STATUS_CODE__OK, 0);
	metrics_record(api_metrics(c->srv->o.api), METRICS_BINARY, h->method, 0, 0);
}

/* One complete frame; false when the connection must close. */
static bool handle_frame(struct conn *c, const struct frame_hdr *h, const uint8_t *body)
{
	const ProtobufCMessageDescriptor *desc = api_request_desc(h->method);
	const uint8_t *req = body, *meta = NULL;
	size_t req_len = h->len, meta_len = 0;
	Shoal__Metadata *md;
	struct sh_err err;
	struct op *op;
	bool bad = false;
	int denied;

	if (h->flags & FRAME_F_RESPONSE) {
		send_status(c, h->id, h->method, SHOAL__STATUS_CODE__INVALID_ARGUMENT,
			    "a request frame has the RESPONSE flag set", NULL);
		return false;
	}
	if ((h->flags & FRAME_F_METADATA) &&
	    frame_split_metadata(body, h->len, &meta, &meta_len, &req, &req_len, &err) != 0) {
		send_status(c, h->id, h->method, SHOAL__STATUS_CODE__INVALID_ARGUMENT, err.msg,
			    NULL);
		return false;
	}
	if (h->method == SHOAL__METHOD__METHOD_PING && meta == NULL &&
	    !api_auth_required(c->srv->o.api)) {
		ping(c, h);
		return true;
	}
	if (desc == NULL) {
		snprintf(err.msg, sizeof err.msg, "unknown method %u", h->method);
		send_status(c, h->id, h->method, SHOAL__STATUS_CODE__INVALID_ARGUMENT, err.msg,
			    NULL);
		return true;
	}
	if ((op = api_op_new(c->srv->o.api, h->method, METRICS_BINARY, 0)) == NULL) {
		send_status(c, h->id, h->method, SHOAL__STATUS_CODE__RESOURCE_EXHAUSTED,
			    "out of memory", NULL);
		return true;
	}
	op->done = on_op_done;
	op->owner = c;
	op->id = h->id;
	c->inflight++;
	md = metadata(meta, meta_len, &op->arena, &bad);
	if (md != NULL && md->timeout_ms != 0)
		op->deadline_ns = op->start_ns + (uint64_t)md->timeout_ms * 1000000;
	if (bad)
		api_fail(op, SHOAL__STATUS_CODE__INVALID_ARGUMENT,
			 "metadata does not decode as Metadata");
	else if ((denied = authorize(c, h->method, md, err.msg, sizeof err.msg)) != 0)
		api_fail(op, denied, "%s", err.msg);
	else if ((op->req = protobuf_c_message_unpack(desc, arena_pb(&op->arena), req_len, req)) ==
		 NULL)
		api_fail(op, SHOAL__STATUS_CODE__INVALID_ARGUMENT, "request does not decode as %s",
			 desc->short_name);
	else
		api_start(op);
	return true;
}

/* Take the next frame from the input; 1 handled, 0 incomplete, -1 close. */
static int next_frame(struct conn *c, struct evbuffer *in)
{
	size_t have = evbuffer_get_length(in);
	uint8_t hb[FRAME_HDR_SIZE];
	struct frame_hdr h;
	struct sh_err err;
	int rv;

	if (have < FRAME_HDR_SIZE) {
		c->frame_since_ms = have == 0 ? 0 : c->frame_since_ms;
		return 0;
	}
	evbuffer_copyout(in, hb, sizeof hb);
	if ((rv = frame_hdr_decode(hb, c->srv->o.max_frame_bytes, &h, &err)) != 0) {
		LOG_INFO("server", "connection %s: %s; closing it", c->peer, err.msg);
		send_status(c, h.id, h.method,
			    rv == SH_ETOOBIG ? SHOAL__STATUS_CODE__RESOURCE_EXHAUSTED
					     : SHOAL__STATUS_CODE__INVALID_ARGUMENT,
			    err.msg, NULL);
		return -1;
	}
	if (have < FRAME_HDR_SIZE + (size_t)h.len)
		return 0;
	rv = handle_frame(c, &h,
			  evbuffer_pullup(in, FRAME_HDR_SIZE + (ev_ssize_t)h.len) + FRAME_HDR_SIZE)
		     ? 1
		     : -1;
	evbuffer_drain(in, FRAME_HDR_SIZE + (size_t)h.len);
	c->frame_since_ms = 0;
	c->last_active_ms = c->srv->now_ms;
	return rv;
}

static void conn_process(struct conn *c)
{
	struct evbuffer *in;
	int n = 0, rv = 1;

	while (c->state == CONN_READING && n < SERVER_FRAMES_PER_EVENT) {
		if (over_limits(c)) {
			c->state = CONN_PAUSED;
			bufferevent_disable(c->bev, EV_READ);
			return;
		}
		in = bufferevent_get_input(c->bev);
		if ((rv = next_frame(c, in)) <= 0)
			break;
		n++;
	}
	if (rv < 0) {
		conn_close_after_flush(c);
		return;
	}
	if (rv == 0 && c->frame_since_ms == 0 && evbuffer_get_length(bufferevent_get_input(c->bev)))
		c->frame_since_ms = c->srv->now_ms;
	if (n == SERVER_FRAMES_PER_EVENT && c->state == CONN_READING)
		event_active(c->resume, EV_READ, 0); /* let other connections run first */
}

/* ------------------------------------------------------------ callbacks */

/* Replies made while handling a read are written at once, one write(2)
 * for all of them, instead of waiting for the next loop turn to report the
 * socket writable (Redis writes its replies before sleeping, likewise);
 * what the socket does not take stays for the bufferevent to send.  Not
 * with TLS: the output holds plaintext. */
static void flush_now(struct conn *c)
{
	struct evbuffer *out;

	if (c->bev == NULL || c->state == CONN_CLOSED || c->srv->o.tls != NULL)
		return; /* TLS: the bufferevent encrypts and writes (never the raw fd) */
	out = bufferevent_get_output(c->bev);
	if (evbuffer_get_length(out) > 0)
		evbuffer_write(out, bufferevent_getfd(c->bev));
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	c->srv->now_ms = sh_clock_mono_ms();
	c->in_read = true;
	conn_process(c);
	c->in_read = false;
	flush_now(c);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	c->srv->now_ms = sh_clock_mono_ms();
	if (c->state != CONN_READING)
		return;
	c->in_read = true;
	conn_process(c);
	c->in_read = false;
	flush_now(c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	c->srv->now_ms = sh_clock_mono_ms();
	if (c->state == CONN_CLOSING && out_len(c) == 0)
		conn_close(c, "after a protocol error");
	else if (c->state == CONN_PAUSED)
		maybe_resume(c);
}

/* A TLS failure is logged at info, at most every 10 s: a client that
 * speaks plaintext to the port, or does not trust its certificate. */
static const char *tls_why(struct conn *c, struct bufferevent *bev)
{
	static char buf[256];
	struct server *s = c->srv;
	const char *why = s->o.tls != NULL ? sh_tls_bev_error(bev, buf, sizeof buf) : NULL;

	if (why != NULL && s->now_ms - s->last_tls_log_ms > 10000) {
		LOG_INFO("server",
			 "TLS with %s failed: %s (a client without TLS, or one that does not "
			 "trust this node's certificate?)",
			 c->peer, why);
		s->last_tls_log_ms = s->now_ms;
	}
	return why;
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	const char *why;

	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	if ((why = tls_why(c, bev)) == NULL)
		why = what & BEV_EVENT_EOF ? "end of stream"
					   : evutil_socket_error_to_string(evutil_socket_geterror(
						     bufferevent_getfd(bev)));
	conn_close(c, why);
}

static void on_output(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct conn *c = arg;

	if (info->n_deleted > 0 || info->orig_size == 0)
		c->drained_ms = c->srv->now_ms;
}

static void peer_name(const struct sockaddr *sa, char *buf, size_t size)
{
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, host, sizeof host);
		port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, host,
			  sizeof host);
		port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	}
	snprintf(buf, size, "%s:%d", host, port);
}

static void reject(struct server *s, evutil_socket_t fd)
{
	uint64_t now = sh_clock_mono_ms();

	evutil_closesocket(fd);
	api_metrics(s->o.api)->rejected_connections++;
	if (now - s->last_reject_log_ms > 10000) {
		LOG_WARN("server",
			 "%zu connections open (limits.max_connections): closing new ones",
			 s->n_conns);
		s->last_reject_log_ms = now;
	}
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
		      void *arg)
{
	struct server *s = arg;
	struct conn *c;
	int one = 1;

	if (s->n_conns >= s->o.max_connections || (c = sh_calloc(1, sizeof *c)) == NULL)
		return reject(s, fd);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->srv = s;
	c->bev = s->o.tls != NULL ? tls_server_bev(s->o.tls, s->o.base, fd)
				  : bufferevent_socket_new(s->o.base, fd, BEV_OPT_CLOSE_ON_FREE);
	c->resume = event_new(s->o.base, -1, 0, on_resume, c);
	if (c->bev == NULL || c->resume == NULL) {
		if (c->bev != NULL)
			bufferevent_free(c->bev);
		else if (s->o.tls == NULL)
			evutil_closesocket(fd);
		if (c->resume != NULL)
			event_free(c->resume);
		sh_free(c);
		return;
	}
	peer_name(sa, c->peer, sizeof c->peer);
	s->now_ms = sh_clock_mono_ms();
	c->last_active_ms = c->drained_ms = s->now_ms;
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, s->o.max_output_bytes / 2, 0);
	evbuffer_add_cb(bufferevent_get_output(c->bev), on_output, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
	s->n_conns++;
	api_metrics(s->o.api)->connections[METRICS_BINARY]++;
}

/* ------------------------------------------------------------ timeouts */

static const char *expired(const struct server *s, const struct conn *c, uint64_t now)
{
	if (c->state == CONN_CLOSED)
		return NULL;
	if (c->frame_since_ms != 0 && now - c->frame_since_ms > s->o.request_timeout_ms)
		return "a frame did not arrive whole within limits.request_timeout_ms";
	if (out_len(c) > 0 && now - c->drained_ms > s->o.request_timeout_ms)
		return "the client did not read its replies within limits.request_timeout_ms";
	if (c->inflight == 0 && out_len(c) == 0 && now - c->last_active_ms > s->o.idle_timeout_ms)
		return "idle for limits.idle_timeout_ms";
	return NULL;
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;
	uint64_t now = s->now_ms = sh_clock_mono_ms();
	struct conn *c, *next;
	const char *why;

	for (c = s->conns; c != NULL; c = next) {
		next = c->next;
		if ((why = expired(s, c, now)) != NULL) {
			LOG_INFO("server", "closing connection %s: %s", c->peer, why);
			conn_close(c, NULL);
		}
	}
}

/* ------------------------------------------------------------ setup */

static int listen_on(struct server *s, struct sh_err *err)
{
	struct sockaddr_storage ss;
	int len = sizeof ss;
	char addr[128];

	snprintf(addr, sizeof addr, strchr(s->o.address, ':') ? "[%s]:%d" : "%s:%d", s->o.address,
		 s->o.port);
	memset(&ss, 0, sizeof ss);
	if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &len) != 0)
		return sh_err_set(err, SH_EINVAL, "client listener: bad address '%s'", addr);
	s->listener = evconnlistener_new_bind(s->o.base, on_accept, s,
					      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
						      LEV_OPT_CLOSE_ON_EXEC,
					      1024, (struct sockaddr *)&ss, len);
	if (s->listener == NULL)
		return sh_err_sys(err, errno, "client listener: cannot listen on %s", addr);
	LOG_INFO("server", "client API listening on %s", addr);
	return 0;
}

int server_new(const struct server_opts *o, struct server **out, struct sh_err *err)
{
	struct server *s = sh_calloc(1, sizeof *s);
	struct timeval tv = {0, 250000};
	int rv;

	if (s == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	s->o = *o;
	if ((rv = listen_on(s, err)) != 0) {
		sh_free(s);
		return rv;
	}
	s->sweep = event_new(o->base, -1, EV_PERSIST, on_sweep, s);
	if (s->sweep == NULL || event_add(s->sweep, &tv) != 0) {
		server_free(s);
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	}
	*out = s;
	return 0;
}

void server_stop_listening(struct server *s)
{
	if (s != NULL && s->listener != NULL) {
		evconnlistener_free(s->listener);
		s->listener = NULL;
	}
}

void server_free(struct server *s)
{
	if (s == NULL)
		return;
	server_stop_listening(s);
	while (s->conns != NULL) {
		s->conns->inflight = 0; /* the api is gone: nothing will complete */
		conn_close(s->conns, NULL);
	}
	if (s->sweep != NULL)
		event_free(s->sweep);
	sh_free(s);
}

size_t server_connections(const struct server *s)
{
	return s->n_conns;
}
