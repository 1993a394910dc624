/*
 * libshoal: see include/shoal.h.  The connection and retry machinery; the
 * operations are in shoal_ops.c.
 *
 * One non-blocking socket per handle, driven with poll(2) against the
 * call's deadline.  Replies are read through the incremental frame decoder
 * (net/frame.h) and matched by request id; a reply to an id nobody waits
 * for (left over from a timed-out call) is skipped.  A timeout or a broken
 * stream closes the socket: the next call connects again.
 */
#include "build.h"

#include "client/shoal_impl.h"

#include "util/alloc.h"
#include "util/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK (64 * 1024)
#define MAX_ADDRS  64 /* seeds and leaders learned */
/* A leader found is asked again after this long (leadership moves: a
 * transfer, a full disk), and after any write that failed. */
#define ROLE_TTL_NS (1000ull * 1000000)

/* ------------------------------------------------------------ errors */

int cl_fail(shoal *c, int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->msg, sizeof c->msg, fmt, ap);
	va_end(ap);
	return status;
}

const char *shoal_errmsg(const shoal *c)
{
	return c != NULL ? c->msg : "no handle (out of memory)";
}

const char *shoal_status_name(int status)
{
	static const char *const names[] = {"OK",
					    "INVALID_ARGUMENT",
					    "NOT_FOUND",
					    "ALREADY_EXISTS",
					    "FAILED_PRECONDITION",
					    "UNAVAILABLE",
					    "DEADLINE_EXCEEDED",
					    "RESOURCE_EXHAUSTED",
					    "UNAUTHENTICATED",
					    "INTERNAL",
					    "OUTCOME_UNKNOWN",
					    "PERMISSION_DENIED",
					    "SESSION_EXPIRED"};

	return status >= 0 && status < 13 ? names[status] : "UNKNOWN";
}

void shoal_free(void *p)
{
	sh_free(p);
}

/* ------------------------------------------------------------ buffers */

int cl_buf_reserve(struct cl_buf *b, size_t more)
{
	uint8_t *d;
	size_t cap;

	if (b->len + more <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 4096;
	while (cap < b->len + more)
		cap *= 2;
	if ((d = sh_realloc(b->data, cap)) == NULL)
		return -1;
	b->data = d;
	b->cap = cap;
	return 0;
}

/* Append a request frame (header, metadata with the deadline, body). */
int cl_frame(shoal *c, struct cl_buf *b, uint64_t id, uint16_t method, const ProtobufCMessage *m)
{
	Shoal__Metadata md;
	size_t mlen, blen = m ? protobuf_c_message_get_packed_size(m) : 0;
	struct frame_hdr h;

	shoal__metadata__init(&md);
	md.timeout_ms = (uint32_t)cl_left_ms(c); /* what is left of the call, not a new timeout */
	if (c->api_key != NULL)
		md.api_key = c->api_key;
	mlen = shoal__metadata__get_packed_size(&md);
	h = (struct frame_hdr){(uint32_t)(4 + mlen + blen), id, method, FRAME_F_METADATA, 0};
	if (4 + mlen + blen > c->o.max_frame_bytes)
		return cl_fail(c, SHOAL_RESOURCE_EXHAUSTED,
			       "request of %zu bytes is over the frame limit of %zu bytes",
			       4 + mlen + blen, c->o.max_frame_bytes);
	if (cl_buf_reserve(b, FRAME_HDR_SIZE + 4 + mlen + blen) != 0)
		return cl_fail(c, SHOAL_RESOURCE_EXHAUSTED, "out of memory");
	frame_hdr_encode(&h, b->data + b->len);
	b->len += FRAME_HDR_SIZE;
	for (int i = 0; i < 4; i++)
		b->data[b->len++] = (uint8_t)(mlen >> (8 * i));
	b->len += shoal__metadata__pack(&md, b->data + b->len);
	if (m != NULL)
		b->len += protobuf_c_message_pack(m, b->data + b->len);
	return SHOAL_OK;
}

/* ------------------------------------------------------------ connecting */

static int split_addr(const char *a, char *host, size_t hsize, char *port, size_t psize)
{
	const char *colon = strrchr(a, ':');
	size_t hl;

	if (colon == NULL || colon == a || colon[1] == '\0')
		return -1;
	hl = (size_t)(colon - a);
	if (a[0] == '[' && colon[-1] == ']') {
		a++;
		hl -= 2;
	}
	if (hl >= hsize || strlen(colon + 1) >= psize)
		return -1;
	memcpy(host, a, hl);
	host[hl] = '\0';
	snprintf(port, psize, "%s", colon + 1);
	return 0;
}

int cl_poll(int fd, short events, uint64_t deadline_ns)
{
	for (;;) {
		uint64_t now = sh_clock_mono_ns();
		struct pollfd p = {fd, events, 0};
		int ms, rv;

		if (now >= deadline_ns)
			return 0;
		ms = (int)((deadline_ns - now + 999999) / 1000000);
		rv = poll(&p, 1, ms);
		if (rv > 0)
			return p.revents;
		if (rv < 0 && errno != EINTR)
			return -1;
	}
}

static int connect_ai(const struct addrinfo *ai, int timeout_ms)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			ai->ai_protocol);
	int one = 1, soerr = 0;
	socklen_t sl = sizeof soerr;

	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
		soerr = errno;
	} else if (cl_poll(fd, POLLOUT, sh_clock_mono_ns() + (uint64_t)timeout_ms * 1000000) <= 0) {
		soerr = ETIMEDOUT;
	} else {
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
	}
	if (soerr != 0) {
		close(fd);
		return -soerr;
	}
	return fd;
}

int cl_left_ms(const shoal *c)
{
	uint64_t now = sh_clock_mono_ns();

	if (c->deadline == 0)
		return c->o.timeout_ms;
	return c->deadline > now + 1000000 ? (int)((c->deadline - now) / 1000000) : 1;
}

/* A connection attempt's time: connect_timeout_ms, never past the call's
 * deadline; 0 when the call has no time left. */
static int connect_ms(const shoal *c)
{
	int left;

	if (c->deadline != 0 && c->deadline <= sh_clock_mono_ns())
		return 0;
	left = cl_left_ms(c);
	return c->o.connect_timeout_ms < left ? c->o.connect_timeout_ms : left;
}

static int connect_one(shoal *c, const char *addr)
{
	struct addrinfo hints = {0}, *res, *ai;
	char host[256], port[16];
	int fd = -ECONNREFUSED, g;

	if (split_addr(addr, host, sizeof host, port, sizeof port) != 0)
		return cl_fail(c, SHOAL_INVALID_ARGUMENT, "'%s' is not host:port", addr);
	hints.ai_socktype = SOCK_STREAM;
	if ((g = getaddrinfo(host, port, &hints, &res)) != 0)
		return cl_fail(c, SHOAL_UNAVAILABLE, "%s: %s", addr, gai_strerror(g));
	for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
		if (connect_ms(c) == 0) {
			fd = -ETIMEDOUT; /* the call's deadline passed */
			break;
		}
		fd = connect_ai(ai, connect_ms(c));
	}
	freeaddrinfo(res);
	if (fd < 0)
		return cl_fail(c, SHOAL_UNAVAILABLE, "cannot connect to %s: %s", addr,
			       strerror(-fd));
	c->fd = fd;
	if ((g = cl_tls_handshake(c, addr, host,
				  sh_clock_mono_ns() + (uint64_t)connect_ms(c) * 1000000)) !=
	    SHOAL_OK) {
		cl_disconnect(c);
		return g;
	}
	frame_dec_free(c->dec);
	if ((c->dec = frame_dec_new(c->o.max_frame_bytes)) == NULL) {
		cl_disconnect(c);
		return cl_fail(c, SHOAL_RESOURCE_EXHAUSTED, "out of memory");
	}
	c->role_at = 0;
	c->fresh = true;
	return SHOAL_OK;
}

void cl_disconnect(shoal *c)
{
	cl_tls_close(c);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	frame_dec_free(c->dec);
	c->dec = NULL;
}

/* Connect to the current address, or the following ones. */
int cl_connect(shoal *c)
{
	int rv = SHOAL_UNAVAILABLE;

	if (c->fd >= 0)
		return SHOAL_OK;
	for (size_t i = 0; i < c->n_addrs && connect_ms(c) > 0; i++) {
		if ((rv = connect_one(c, c->addrs[c->cur])) == SHOAL_OK)
			return rv;
		c->cur = (c->cur + 1) % c->n_addrs;
	}
	if (connect_ms(c) == 0 && rv == SHOAL_UNAVAILABLE)
		cl_fail(c, rv, "no server reached before the deadline (%d ms)", c->o.timeout_ms);
	return rv;
}

/* ------------------------------------------------------------ I/O */

/* Write b from b->off; SHOAL_OK when all of it is written or the socket
 * would block (with *blocked set). */
int cl_write_some(shoal *c, struct cl_buf *b, bool *blocked)
{
	*blocked = false;
	while (b->off < b->len) {
		ssize_t n = c->ssl != NULL
				    ? cl_tls_send(c, b->data + b->off, b->len - b->off)
				    : send(c->fd, b->data + b->off, b->len - b->off, MSG_NOSIGNAL);

		if (n > 0) {
			b->off += (size_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			*blocked = true;
			return SHOAL_OK;
		} else {
			int e = errno;
			bool first = c->ssl != NULL && c->fresh && (e == ECONNRESET || e == EPIPE);

			cl_disconnect(c);
			if (c->tls_refused ||
			    first) /* TLS 1.3: the refusal comes after the handshake */
				return cl_fail(
					c, SHOAL_UNAVAILABLE,
					"TLS connection to %s reset at its first request: most "
					"likely the node refused this client's certificate (or its "
					"lack of one: security.tls_client_ca_file; shoalctl "
					"--tls-cert/--tls-key)",
					c->addrs[c->cur]);
			return cl_fail(c, SHOAL_UNAVAILABLE,
				       "connection to %s lost while sending: %s", c->addrs[c->cur],
				       strerror(e));
		}
	}
	b->off = b->len = 0;
	return SHOAL_OK;
}

/* Hand every complete frame in buf[0..n) to on_frame. */
static int feed(shoal *c, const uint8_t *buf, size_t n, cl_frame_fn on_frame, void *arg)
{
	size_t off = 0, used;
	struct frame_hdr h;
	const uint8_t *body;
	struct sh_err err;
	int rv;

	while (off < n) {
		rv = frame_dec_feed(c->dec, buf + off, n - off, &used, &err);
		off += used;
		if (rv < 0) {
			cl_disconnect(c);
			return cl_fail(c, SHOAL_INTERNAL, "bad reply from %s: %s%s",
				       c->addrs[c->cur], err.msg,
				       c->tls == NULL
					       ? " (a node with TLS on its client port? give a "
						 "TLS CA)"
					       : "");
		}
		if (rv == 1) {
			frame_dec_frame(c->dec, &h, &body);
			on_frame(arg, &h, body);
		}
	}
	return SHOAL_OK;
}

static int lost(shoal *c, ssize_t n)
{
	int e = n == 0 ? ECONNRESET : errno;

	if (c->tls_refused) {
		cl_disconnect(c);
		return cl_fail(c, SHOAL_UNAVAILABLE,
			       "TLS handshake with %s failed: the node refused this client's "
			       "certificate (or its lack of one: security.tls_client_ca_file; "
			       "shoalctl --tls-cert/--tls-key); nothing was read by the node",
			       c->addrs[c->cur]);
	}
	cl_disconnect(c);
	return cl_fail(c, SHOAL_UNAVAILABLE, "connection to %s lost: %s%s", c->addrs[c->cur],
		       n == 0 ? "closed by the server" : strerror(e),
		       c->tls == NULL ? " (a node with TLS on its client port closes plaintext "
					"connections: give a TLS CA)"
				      : "");
}

/* Read what is there (with TLS, also what was decrypted already) and hand
 * every complete frame to on_frame; returns SHOAL_OK, or a transport error
 * (the socket is closed). */
int cl_read_some(shoal *c, cl_frame_fn on_frame, void *arg)
{
	uint8_t buf[READ_CHUNK];
	ssize_t n;
	int rv;

	do {
		n = c->ssl != NULL ? cl_tls_recv(c, buf, sizeof buf)
				   : recv(c->fd, buf, sizeof buf, 0);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return SHOAL_OK;
		if (n <= 0)
			return lost(c, n);
		c->fresh = false;
		if ((rv = feed(c, buf, (size_t)n, on_frame, arg)) != SHOAL_OK)
			return rv;
	} while (c->ssl != NULL && cl_tls_pending(c));
	return SHOAL_OK;
}

/* Wait until the socket is readable (and writable if want_write) or the
 * deadline; DEADLINE_EXCEEDED closes the connection. */
int cl_wait(shoal *c, bool want_write, uint64_t deadline_ns)
{
	int ev = cl_poll(c->fd, (short)(POLLIN | (want_write ? POLLOUT : 0)), deadline_ns);

	if (ev == 0) {
		cl_disconnect(c);
		return cl_fail(c, SHOAL_DEADLINE_EXCEEDED, "no reply from %s within %d ms",
			       c->addrs[c->cur], c->o.timeout_ms);
	}
	if (ev < 0) {
		cl_disconnect(c);
		return cl_fail(c, SHOAL_UNAVAILABLE, "poll: %s", strerror(errno));
	}
	return SHOAL_OK;
}

/* ------------------------------------------------------------ one call */

struct one {
	uint64_t id;
	bool got;
	int status;
	uint8_t *body;
	size_t len;
	shoal *c;
};

static void take_one(void *arg, const struct frame_hdr *h, const uint8_t *body)
{
	struct one *o = arg;

	if (h->id != o->id || o->got || !(h->flags & FRAME_F_RESPONSE))
		return;
	o->got = true;
	o->status = h->status;
	o->len = h->len;
	if (h->len > 0 && (o->body = sh_malloc(h->len)) != NULL)
		memcpy(o->body, body, h->len);
}

/* Decode a Status reply body into the handle's message. */
int cl_status(shoal *c, int status, const uint8_t *body, size_t len)
{
	Shoal__Status *st = shoal__status__unpack(NULL, len, body);

	if (st != NULL && st->leader_address != NULL && st->leader_address[0] != '\0')
		snprintf(c->hint, sizeof c->hint, "%s", st->leader_address);
	cl_fail(c, status, "%s", st && st->message ? st->message : "(no message)");
	shoal__status__free_unpacked(st, NULL);
	return status;
}

/* One exchange on the current connection; *sent whether the request left. */
static int exchange(shoal *c, uint16_t method, const ProtobufCMessage *req, struct arena *a,
		    const ProtobufCMessageDescriptor *rd, ProtobufCMessage **resp, bool *sent,
		    uint64_t deadline)
{
	struct one o = {++c->next_id, false, 0, NULL, 0, c};
	struct cl_buf b = {0};
	bool blocked;
	int rv;

	*sent = false;
	if (sh_clock_mono_ns() >= deadline)
		return cl_fail(c, SHOAL_UNAVAILABLE,
			       "the deadline (%d ms) passed before the request was sent",
			       c->o.timeout_ms);
	if ((rv = cl_frame(c, &b, o.id, method, req)) != SHOAL_OK)
		return rv;
	while (b.len > 0 && (rv = cl_write_some(c, &b, &blocked)) == SHOAL_OK && blocked)
		rv = cl_wait(c, true, deadline);
	sh_free(b.data);
	if (rv != SHOAL_OK)
		return rv;
	*sent = true;
	while (!o.got && rv == SHOAL_OK && (rv = cl_wait(c, false, deadline)) == SHOAL_OK)
		rv = cl_read_some(c, take_one, &o);
	if (rv == SHOAL_OK && o.status != SHOAL_OK)
		rv = cl_status(c, o.status, o.body, o.len);
	else if (rv == SHOAL_OK &&
		 (*resp = protobuf_c_message_unpack(rd, arena_pb(a), o.len, o.body)) == NULL)
		rv = cl_fail(c, SHOAL_INTERNAL, "reply does not decode as %s", rd->short_name);
	sh_free(o.body);
	return rv;
}

/* Sleep before attempt (1, 2, ...): 25 ms doubling up to 400 ms, jittered
 * to half of that to all of it, never past the call's deadline. */
static void backoff(shoal *c, int attempt, uint64_t deadline)
{
	uint64_t base = 25000000ull << (attempt < 5 ? attempt - 1 : 4), now = sh_clock_mono_ns();
	uint64_t ns;
	struct timespec ts;

	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 7;
	c->rng ^= c->rng << 17;
	ns = base / 2 + c->rng % (base / 2 + 1);
	if (now >= deadline)
		return;
	ns = ns < deadline - now ? ns : deadline - now;
	ts = (struct timespec){(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
	nanosleep(&ts, NULL);
}

/* Make addr the current address (appended to the list if new). */
static void use_addr(shoal *c, const char *addr)
{
	char **grown, *copy;

	for (size_t i = 0; i < c->n_addrs; i++)
		if (strcmp(c->addrs[i], addr) == 0) {
			c->cur = i;
			return;
		}
	if (c->n_addrs >= MAX_ADDRS || (copy = sh_strdup(addr)) == NULL)
		return;
	if ((grown = sh_reallocarray(c->addrs, c->n_addrs + 1, sizeof *grown)) == NULL) {
		sh_free(copy);
		return;
	}
	c->addrs = grown;
	c->addrs[c->n_addrs] = copy;
	c->cur = c->n_addrs++;
}

/* The connected node's role and the leader it knows: 1 it leads, 0 it
 * names another (in leader), -1 it does not say; or a transport error. */
static int ask_role(shoal *c, char *leader, size_t cap, uint64_t deadline, int *rv)
{
	Shoal__ClusterStatusRequest r;
	Shoal__ClusterStatusResponse *st;
	ProtobufCMessage *m = NULL;
	struct arena a;
	bool sent;
	int role = -1;

	shoal__cluster_status_request__init(&r);
	arena_init(&a);
	*rv = exchange(c, SHOAL__METHOD__METHOD_CLUSTER_STATUS, &r.base, &a,
		       &shoal__cluster_status_response__descriptor, &m, &sent, deadline);
	if (*rv == SHOAL_OK && (st = (Shoal__ClusterStatusResponse *)m) != NULL) {
		role = strcmp(st->role, "leader") == 0 ? 1 : st->leader_address[0] ? 0 : -1;
		snprintf(leader, cap, "%s", st->leader_address);
	}
	arena_free(&a);
	if (*rv != SHOAL_OK && *rv != SHOAL_UNAVAILABLE && *rv != SHOAL_DEADLINE_EXCEEDED)
		*rv = SHOAL_OK; /* a node that will not say (a key without the role): stay */
	return role;
}

/* The status call's own deadline: half of what is left, at most
 * connect_timeout_ms, so that a node that accepts and never answers leaves
 * time for the next one. */
static uint64_t ask_deadline(const shoal *c, uint64_t deadline)
{
	uint64_t now = sh_clock_mono_ns(), half = deadline > now ? (deadline - now) / 2 : 0;
	uint64_t cap = (uint64_t)c->o.connect_timeout_ms * 1000000;

	return now + (half < cap ? half : cap);
}

/* Leave the connected node for the next attempt (and the next call):
 * asking it for the leader failed (leader NULL), or the leader it named
 * cannot be reached.  The write itself was not sent. */
static int move_on(shoal *c, const char *leader)
{
	char why[sizeof c->msg], addr[sizeof c->hint];

	snprintf(why, sizeof why, "%s", c->msg);
	snprintf(addr, sizeof addr, "%s", c->addrs[c->cur]);
	cl_disconnect(c);
	c->cur = (c->cur + 1) % c->n_addrs;
	c->moved = true;
	c->electing = leader != NULL;
	if (leader == NULL)
		return cl_fail(c, SHOAL_UNAVAILABLE,
			       "asking %s for the leader: %s (the write was not sent)", addr, why);
	return cl_fail(c, SHOAL_UNAVAILABLE, "the leader %s cannot be reached: %s", leader, why);
}

int cl_follow_leader(shoal *c, uint64_t deadline)
{
	char leader[sizeof c->hint];
	int rv, role;

	if (c->o.no_follow || (c->role_at != 0 && sh_clock_mono_ns() - c->role_at < ROLE_TTL_NS))
		return SHOAL_OK;
	role = ask_role(c, leader, sizeof leader, ask_deadline(c, deadline), &rv);
	if (rv != SHOAL_OK) /* the write itself was not sent */
		return move_on(c, NULL);
	if (role != 0 || strcmp(leader, c->addrs[c->cur]) == 0) {
		/* it leads, or cannot say; no leader known (an election): ask
		 * again before the next write */
		c->role_at = role != -1 || leader[0] != '\0' ? sh_clock_mono_ns() : 0;
		return SHOAL_OK;
	}
	cl_disconnect(c);
	use_addr(c, leader);
	if ((rv = connect_one(c, leader)) == SHOAL_OK) {
		c->role_at = sh_clock_mono_ns(); /* named the leader by a node: taken as such */
		return rv;
	}
	/* a leader gone: not through a follower, whose forward would be lost
	 * with it (OUTCOME_UNKNOWN); the next attempt asks again */
	return move_on(c, leader);
}

/* The next address to try: the leader a node named, else the next one
 * (unless move_on advanced already). */
static void next_addr(shoal *c)
{
	if (c->hint[0] != '\0') {
		use_addr(c, c->hint);
		c->hint[0] = '\0';
	} else if (!c->moved) {
		c->cur = (c->cur + 1) % c->n_addrs;
	}
	c->moved = false;
}

/* A new client session: 16 random bytes (from the back-off's generator,
 * stirred, if the system's source fails), never all zero, numbered from
 * 1 again. */
void cl_new_session(shoal *c)
{
	uint64_t w[2];

	if (getrandom(w, sizeof w, 0) != (ssize_t)sizeof w) {
		w[0] = c->rng * 0x9e3779b97f4a7c15ull;
		w[1] = sh_clock_wall_ns() ^ (uint64_t)getpid();
	}
	w[0] |= 1;
	memcpy(c->client_id, w, sizeof w);
	c->seq = 0;
	c->pid = getpid();
}

/* The write options of a write request with a client session (its
 * `write` field), or NULL: such a write may be sent again after an
 * attempt whose outcome is unknown (doc/clients.md, "Exactly-once
 * writes"). */
static Shoal__WriteOptions *session_opts(const ProtobufCMessage *req)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field_by_name(req->descriptor, "write");
	Shoal__WriteOptions *w;

	if (f == NULL || f->type != PROTOBUF_C_TYPE_MESSAGE ||
	    f->descriptor != &shoal__write_options__descriptor)
		return NULL;
	w = *(Shoal__WriteOptions *const *)(const void *)((const char *)req + f->offset);
	return w != NULL && w->client_id.len > 0 ? w : NULL;
}

/* The call's answer once an attempt may have applied the write: only OK
 * (the write's own result, from its session) or a deadline stand; any
 * other failure is of a later attempt and says nothing of that one. */
static int after_maybe(shoal *c, int rv, bool maybe)
{
	size_t l = strlen(c->msg);

	if (!maybe || rv == SHOAL_OK || rv == SHOAL_DEADLINE_EXCEEDED ||
	    rv == SHOAL_OUTCOME_UNKNOWN)
		return rv;
	/* SESSION_EXPIRED too: a new session is drawn for the next call */
	snprintf(c->msg + l, sizeof c->msg - l,
		 " (an earlier attempt of the write may have been applied)");
	return SHOAL_OUTCOME_UNKNOWN;
}

/* An attempt of a write whose outcome is unknown: true when the call may
 * send it again (it has a session), else the message says so. */
static bool may_resend(shoal *c, const Shoal__WriteOptions *wo, int rv)
{
	size_t l = strlen(c->msg);

	if (wo != NULL)
		return true;
	if (rv != SHOAL_OUTCOME_UNKNOWN)
		snprintf(c->msg + l, sizeof c->msg - l,
			 " (after the write was sent: it may have been applied)");
	return false;
}

/* The cluster no longer holds the handle's session (an hour without
 * writes, or dropped): a new one.  A write none of whose attempts may
 * have applied is sent again as its first write (true); one that may
 * have is not (its fate is unknown: the call says so). */
static bool renumber(shoal *c, Shoal__WriteOptions *wo, bool maybe)
{
	cl_new_session(c);
	if (maybe)
		return false;
	c->seq++;
	cl_session(c, wo, c->seq, c->seq);
	wo->retry = false;
	return true;
}

static int call_attempts(shoal *c, uint16_t method, const ProtobufCMessage *req, bool write,
			 struct arena *a, const ProtobufCMessageDescriptor *rd,
			 ProtobufCMessage **resp, uint64_t deadline)
{
	Shoal__WriteOptions *wo = write ? session_opts(req) : NULL;
	int rv = SHOAL_UNAVAILABLE, spent = 0;
	bool sent = false, maybe = false;

	c->deadline = deadline;
	c->moved = false;
	/* an attempt that met a dead leader's name (an election under way)
	 * does not count against retries: those go on within the deadline,
	 * every 25-50 ms (a status call each), so that the new leader is
	 * found as soon as it is elected, not up to a 400 ms back-off later */
	for (int attempt = 0; spent <= c->o.retries; attempt++, spent += !c->electing) {
		if (attempt > 0) {
			if (sh_clock_mono_ns() >= deadline)
				break;
			backoff(c, c->electing ? 2 : attempt, deadline);
			next_addr(c);
		}
		c->electing = false;
		c->hint[0] = '\0';
		if ((rv = cl_connect(c)) != SHOAL_OK ||
		    (write && (rv = cl_follow_leader(c, deadline)) != SHOAL_OK))
			continue;
		if (maybe)
			wo->retry = true; /* acknowledged as the write's (WriteOptions.retry) */
		rv = exchange(c, method, req, a, rd, resp, &sent, deadline);
		if (write && rv != SHOAL_OK)
			c->role_at = 0; /* it may not lead any more: ask before the next write */
		if (rv == SHOAL_DEADLINE_EXCEEDED) { /* a stopped node keeps its sockets */
			cl_disconnect(c);            /* open: the next call starts elsewhere */
			c->cur = (c->cur + 1) % c->n_addrs;
		}
		if (rv == SHOAL_OUTCOME_UNKNOWN && write && (maybe |= may_resend(c, wo, rv)))
			continue; /* the leader changed under it: its session makes a resend safe */
		if (rv == SHOAL_SESSION_EXPIRED && wo != NULL && renumber(c, wo, maybe))
			continue; /* not applied, and no other copy: again, in a new session */
		if (rv != SHOAL_UNAVAILABLE)
			return after_maybe(c, rv, maybe);
		if (write && sent && c->fd < 0 && !c->tls_refused) {
			if (!may_resend(c, wo, rv))
				return SHOAL_OUTCOME_UNKNOWN;
			maybe = true;
		}
		if (c->tls_refused) /* another attempt would be refused the same way */
			return after_maybe(c, rv, maybe);
		cl_disconnect(c); /* an UNAVAILABLE server: try the next one */
	}
	return after_maybe(c, rv, maybe);
}

int cl_call(shoal *c, uint16_t method, const ProtobufCMessage *req, bool write, struct arena *a,
	    const ProtobufCMessageDescriptor *rd, ProtobufCMessage **resp)
{
	uint64_t deadline = sh_clock_mono_ns() + (uint64_t)c->o.timeout_ms * 1000000;
	shoal *r = !write && cl_is_read(method) ? cl_reader(c) : c;
	int rv;

	if (r == NULL)
		return SHOAL_RESOURCE_EXHAUSTED; /* cl_reader said why */
	if (r != c) {                            /* the reader's call, its message on the handle */
		r->o.timeout_ms = c->o.timeout_ms;
		rv = cl_call(r, method, req, write, a, rd, resp);
		if (rv != SHOAL_OK)
			snprintf(c->msg, sizeof c->msg, "%s", r->msg);
		return rv;
	}
	rv = call_attempts(c, method, req, write, a, rd, resp, deadline);
	c->deadline = 0;
	return rv;
}

/* ------------------------------------------------------------ handle */

void shoal_options_init(struct shoal_options *o)
{
	memset(o, 0, sizeof *o);
	o->timeout_ms = 30000;
	o->connect_timeout_ms = 2000;
	o->retries = 8;
	o->max_frame_bytes = 64u << 20;
	o->api_key = getenv("SHOAL_API_KEY");
	o->tls_ca_file = getenv("SHOAL_TLS_CA");
}

static int parse_addrs(shoal *c, const char *addrs)
{
	const char *p = addrs;

	while (*p != '\0') {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		char **grown = sh_reallocarray(c->addrs, c->n_addrs + 1, sizeof *grown);

		if (grown == NULL)
			return cl_fail(c, SHOAL_RESOURCE_EXHAUSTED, "out of memory");
		c->addrs = grown;
		if (len > 0 && (c->addrs[c->n_addrs++] = sh_strndup(p, len)) == NULL)
			return cl_fail(c, SHOAL_RESOURCE_EXHAUSTED, "out of memory");
		p += len + (comma != NULL);
	}
	return c->n_addrs > 0
		       ? SHOAL_OK
		       : cl_fail(c, SHOAL_INVALID_ARGUMENT, "no address given ('%s')", addrs);
}

int cl_open(const char *addrs, const struct shoal_options *opts, shoal **out)
{
	shoal *c = sh_calloc(1, sizeof *c);
	int rv;

	*out = c;
	if (c == NULL)
		return SHOAL_RESOURCE_EXHAUSTED;
	c->fd = -1;
	if (opts != NULL)
		c->o = *opts;
	else
		shoal_options_init(&c->o);
	if (c->o.timeout_ms <= 0)
		c->o.timeout_ms = 30000;
	if (c->o.connect_timeout_ms <= 0)
		c->o.connect_timeout_ms = 2000;
	if (c->o.retries < 0)
		c->o.retries = 0;
	if (c->o.max_frame_bytes < 4096)
		c->o.max_frame_bytes = 64u << 20;
	if (c->o.api_key != NULL && c->o.api_key[0] != '\0' &&
	    (c->api_key = sh_strdup(c->o.api_key)) == NULL)
		return SHOAL_RESOURCE_EXHAUSTED;
	c->o.api_key = c->api_key; /* the caller's string may go */
	if (c->o.tls_server_name != NULL && c->o.tls_server_name[0] != '\0' &&
	    (c->server_name = sh_strdup(c->o.tls_server_name)) == NULL)
		return SHOAL_RESOURCE_EXHAUSTED;
	c->o.tls_server_name = c->server_name;
	if (c->o.read_addr != NULL && c->o.read_addr[0] != '\0' &&
	    (c->read_addr = sh_strdup(c->o.read_addr)) == NULL)
		return SHOAL_RESOURCE_EXHAUSTED;
	c->o.read_addr = c->read_addr;
	if ((unsigned)c->o.read_from > SHOAL_READ_SPREAD ||
	    (c->o.read_from == SHOAL_READ_PREFERRED && c->read_addr == NULL))
		return cl_fail(c, SHOAL_INVALID_ARGUMENT,
			       "read_from: unknown (%d), or preferred without read_addr",
			       (int)c->o.read_from);
	c->rng = (sh_clock_mono_ns() ^ (uint64_t)getpid() << 32 ^ (uint64_t)(uintptr_t)c) | 1;
	cl_new_session(c);
	if ((rv = cl_tls_init(c)) != SHOAL_OK)
		return rv;
	c->o.tls_ca_file = c->o.tls_cert_file = c->o.tls_key_file = NULL; /* loaded */
	return parse_addrs(c, addrs ? addrs : "");
}

int shoal_open(const char *addrs, const struct shoal_options *opts, shoal **out)
{
	int rv = cl_open(addrs, opts, out);

	return rv == SHOAL_OK ? cl_connect(*out) : rv;
}

void shoal_close(shoal *c)
{
	if (c == NULL)
		return;
	shoal_close(c->reader);
	cl_disconnect(c);
	cl_tls_free(c);
	sh_free(c->server_name);
	sh_free(c->read_addr);
	for (size_t i = 0; i < c->n_addrs; i++)
		sh_free(c->addrs[i]);
	sh_free(c->addrs);
	if (c->api_key != NULL)
		memset(c->api_key, 0, strlen(c->api_key));
	sh_free(c->api_key);
	sh_free(c);
}

void shoal_set_timeout(shoal *c, int timeout_ms)
{
	c->o.timeout_ms = timeout_ms > 0 ? timeout_ms : 30000;
}

void shoal_set_consistency(shoal *c, enum shoal_consistency level)
{
	c->o.consistency = level;
}

void shoal_set_ack(shoal *c, enum shoal_ack level)
{
	c->o.ack = level;
}

void cl_read_state(shoal *c, const Shoal__ReadState *rs)
{
	c->read_state = (struct shoal_read_state){0, 0, 0, 0};
	if (rs != NULL)
		c->read_state = (struct shoal_read_state){rs->applied_index, rs->commit_index,
							  rs->lag, rs->lag_ms};
}

struct shoal_read_state shoal_read_state(const shoal *c)
{
	return c->read_state;
}

struct shoal_token shoal_last_token(const shoal *c)
{
	return c->last;
}

void shoal_set_token(shoal *c, struct shoal_token tok)
{
	c->last = tok;
}
