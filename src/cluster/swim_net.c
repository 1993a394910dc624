/*
 * swim_net: see swim_net.h.
 *
 * Every entry from libevent (a datagram, a complete TCP frame, the timer)
 * calls into the core with the current monotonic time and then re-arms the
 * one timer at the core's next deadline.  TCP connections carry exactly one
 * frame each way: the sender connects, writes the frame and closes once it
 * is flushed; the receiver reads one frame, hands it to the core and
 * closes (a push-pull answer travels on a new connection to the sender's
 * advertised address, so both directions look alike).
 */
#include "build.h"

#include "cluster/swim_net.h"

#include "cluster/keyring.h"

#include "util/alloc.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/rand.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#define RESOLVE_CACHE    64
#define RESOLVE_RETRY_MS 30000
#define LEAVE_MAX_MS     2000
#define CONN_TIMEOUT_S   10
#define REFUSED_LOG_MS   10000

struct resolved {
	char addr[SWIM_ADDR_MAX + 1];
	struct sockaddr_storage sa;
	socklen_t len;
	bool ok;
	uint64_t at;
};

struct conn {
	struct swim_net *n;
	struct bufferevent *bev;
	struct conn *prev, *next;
	char peer[SWIM_ADDR_MAX + 1];
	size_t need; /* frame body length once the header is read */
};

struct swim_net {
	struct event_base *base;
	struct swim *swim;
	struct sh_rand rand;
	int family;
	int udp_fd;
	struct event *udp_ev, *timer, *leave_timer;
	struct evconnlistener *listener;
	struct resolved cache[RESOLVE_CACHE];
	size_t cache_next;
	struct conn *conns;
	int n_conns;
	void (*on_event)(void *data, const struct swim_event *ev);
	void *data;
	void (*on_stream)(void *data, struct bufferevent *bev, const char *addr);
	void *stream_data;
	void (*leave_done)(void *arg);
	void *leave_arg;
	uint64_t leave_start;
	uint64_t refused_log_at, refused_unlogged;
	uint64_t send_errors, conns_refused;
	struct keyring *kr;
	uint64_t unsealed_log_at, unsealed_unlogged;
	uint8_t rbuf[SWIM_UDP_MAX];
	uint8_t sbuf[SWIM_UDP_MAX]; /* a datagram sealed or opened */
};

#define LABEL_UDP "shoal gossip udp"
#define LABEL_TCP "shoal gossip tcp"

/* ------------------------------------------------------------------ addresses */

/* "host:port" / "[v6]:port" of a socket address into buf. */
static void format_addr(const void *sa, char *buf, size_t size)
{
	const struct sockaddr *s = sa;
	char ip[INET6_ADDRSTRLEN] = "?";

	if (s->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = sa;

		inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
		snprintf(buf, size, "[%s]:%u", ip, ntohs(a->sin6_port));
	} else {
		const struct sockaddr_in *a = sa;

		inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
		snprintf(buf, size, "%s:%u", ip, ntohs(a->sin_port));
	}
}

/* "host:port" or "[v6]:port" -> host and port strings. */
static int split_hostport(const char *addr, char *host, size_t hsize, const char **port)
{
	const char *colon = strrchr(addr, ':');
	const char *h = addr;
	size_t hlen;

	if (colon == NULL)
		return -1;
	hlen = (size_t)(colon - addr);
	if (addr[0] == '[') {
		if (hlen < 2 || colon[-1] != ']')
			return -1;
		h++;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= hsize)
		return -1;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = colon + 1;
	return 0;
}

static void resolve_into(struct swim_net *n, struct resolved *r)
{
	struct addrinfo hints = {
		.ai_family = n->family, .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	char host[SWIM_ADDR_MAX + 1];
	const char *port;
	int rv = -1;

	r->ok = false;
	if (split_hostport(r->addr, host, sizeof host, &port) == 0)
		rv = getaddrinfo(host, port, &hints, &res);
	if (rv == 0 && res != NULL && res->ai_addrlen <= sizeof r->sa) {
		memcpy(&r->sa, res->ai_addr, res->ai_addrlen);
		r->len = res->ai_addrlen;
		r->ok = true;
	} else {
		LOG_WARN("swim", "cannot resolve '%s': %s", r->addr,
			 rv > 0 || rv < -1 ? gai_strerror(rv) : "not host:port");
	}
	if (res != NULL)
		freeaddrinfo(res);
}

/* The socket address of addr, from the cache; NULL when it does not
 * resolve (retried after RESOLVE_RETRY_MS). */
static const struct resolved *resolve(struct swim_net *n, const char *addr, uint64_t now)
{
	struct resolved *r;

	if (strlen(addr) > SWIM_ADDR_MAX)
		return NULL;
	for (size_t i = 0; i < RESOLVE_CACHE; i++) {
		r = &n->cache[i];
		if (strcmp(r->addr, addr) != 0)
			continue;
		if (!r->ok && now - r->at >= RESOLVE_RETRY_MS) {
			r->at = now;
			resolve_into(n, r);
		}
		return r->ok ? r : NULL;
	}
	r = &n->cache[n->cache_next++ % RESOLVE_CACHE];
	strcpy(r->addr, addr);
	r->at = now;
	resolve_into(n, r);
	return r->ok ? r : NULL;
}

/* ------------------------------------------------------------------ timer */

static void schedule(struct swim_net *n)
{
	uint64_t d = swim_next_deadline(n->swim), now = sh_clock_mono_ms();
	uint64_t wait = d > now ? d - now : 0;
	struct timeval tv;

	if (wait > 3600 * 1000)
		wait = 3600 * 1000;
	tv.tv_sec = (time_t)(wait / 1000);
	tv.tv_usec = (suseconds_t)(wait % 1000) * 1000;
	evtimer_add(n->timer, &tv);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct swim_net *n = arg;

	swim_tick(n->swim, sh_clock_mono_ms());
	schedule(n);
}

/* ------------------------------------------------------------------ connections */

static struct conn *conn_new(struct swim_net *n, struct bufferevent *bev)
{
	struct conn *c = sh_calloc(1, sizeof *c);
	struct timeval tmo = {CONN_TIMEOUT_S, 0};

	if (c == NULL) {
		bufferevent_free(bev);
		return NULL;
	}
	c->n = n;
	c->bev = bev;
	c->next = n->conns;
	if (n->conns != NULL)
		n->conns->prev = c;
	n->conns = c;
	n->n_conns++;
	bufferevent_set_timeouts(bev, &tmo, &tmo);
	return c;
}

static void conn_free(struct conn *c)
{
	struct swim_net *n = c->n;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		n->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	n->n_conns--;
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	sh_free(c);
}

/* A connection that is not membership's: hand it to on_stream. */
static void hand_over(struct conn *c)
{
	struct swim_net *n = c->n;
	struct bufferevent *bev = c->bev;
	char peer[sizeof c->peer];

	memcpy(peer, c->peer, sizeof peer);
	c->bev = NULL;
	conn_free(c);
	bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
	bufferevent_set_timeouts(bev, NULL, NULL);
	if (n->on_stream == NULL) {
		LOG_DEBUG("swim", "connection from %s: not a membership stream", peer);
		bufferevent_free(bev);
		return;
	}
	n->on_stream(n->stream_data, bev, peer);
}

static void conn_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	if (what & BEV_EVENT_CONNECTED)
		return;
	if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		LOG_DEBUG("swim", "connection with %s: %s", c->peer,
			  what & BEV_EVENT_TIMEOUT ? "timed out" : strerror(errno));
	conn_free(c);
}

static void out_flushed(struct bufferevent *bev, void *arg)
{
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		conn_free(arg);
}

/* A received datagram or frame that no key of the ring opens: dropped,
 * counted (keyring_failures), logged at most every REFUSED_LOG_MS. */
static void log_unsealed(struct swim_net *n, const char *from, const char *what)
{
	uint64_t now = sh_clock_mono_ms();

	n->unsealed_unlogged++;
	if (n->unsealed_log_at != 0 && now - n->unsealed_log_at < REFUSED_LOG_MS)
		return;
	LOG_WARN("swim",
		 "dropped %" PRIu64
		 " message(s) that no gossip key opens: last a %s from %s (a node without "
		 "this cluster's keyring, or with a key removed from it?)",
		 n->unsealed_unlogged, what, from);
	n->unsealed_log_at = now;
	n->unsealed_unlogged = 0;
}

/* The body length a frame header announces: at most SWIM_STREAM_MAX, plus
 * the seal with a keyring; 0 when it is out of bounds. */
static size_t frame_len(const struct swim_net *n, const uint8_t hdr[SWIM_FRAME_HDR])
{
	size_t len;

	if (n->kr == NULL)
		return swim_wire_frame_len(hdr);
	len = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3];
	return len > KEYRING_OVERHEAD && len <= SWIM_STREAM_MAX + KEYRING_OVERHEAD ? len : 0;
}

static void recv_frame(struct swim_net *n, const char *peer, const uint8_t *body, size_t len)
{
	uint8_t *plain;
	long got;

	if (n->kr == NULL) {
		swim_recv(n->swim, sh_clock_mono_ms(), SWIM_TCP, peer, body, len);
		return;
	}
	if ((plain = sh_malloc(len)) == NULL)
		return;
	if ((got = keyring_open(n->kr, LABEL_TCP, body, len, plain, len)) >= 0)
		swim_recv(n->swim, sh_clock_mono_ms(), SWIM_TCP, peer, plain, (size_t)got);
	else
		log_unsealed(n, peer, "stream frame");
	sh_free(plain);
}

/* The core's frame (header + body) onto bev, its body sealed with a
 * keyring. */
static int write_frame(struct swim_net *n, struct bufferevent *bev, const uint8_t *buf, size_t len)
{
	uint8_t hdr[SWIM_FRAME_HDR], *sealed;
	size_t body = len - SWIM_FRAME_HDR, size = body + KEYRING_OVERHEAD;
	long got;
	int rv;

	if (n->kr == NULL)
		return bufferevent_write(bev, buf, len);
	if ((sealed = sh_malloc(size)) == NULL)
		return -1;
	got = keyring_seal(n->kr, LABEL_TCP, buf + SWIM_FRAME_HDR, body, sealed, size);
	for (int i = 0; i < SWIM_FRAME_HDR; i++)
		hdr[i] = (uint8_t)(size >> (8 * (SWIM_FRAME_HDR - 1 - i)));
	rv = got < 0 || bufferevent_write(bev, hdr, sizeof hdr) != 0 ||
			     bufferevent_write(bev, sealed, size) != 0
		     ? -1
		     : 0;
	sh_free(sealed);
	return rv;
}

static void tcp_send(struct swim_net *n, const struct resolved *r, const uint8_t *buf, size_t len)
{
	struct bufferevent *bev;
	struct conn *c;

	if (n->n_conns >= SWIM_NET_MAX_CONNS) {
		n->conns_refused++;
		return;
	}
	bev = bufferevent_socket_new(n->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL || (c = conn_new(n, bev)) == NULL)
		return;
	snprintf(c->peer, sizeof c->peer, "%s", r->addr);
	bufferevent_setcb(bev, NULL, out_flushed, conn_event, c);
	if (write_frame(n, bev, buf, len) != 0 ||
	    bufferevent_socket_connect(bev, (const struct sockaddr *)&r->sa, (int)r->len) != 0) {
		n->send_errors++;
		conn_free(c);
	}
}

/* A whole frame arrived: header, then body; one frame per connection. */
static void in_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct swim_net *n = c->n;
	struct evbuffer *in = bufferevent_get_input(bev);
	uint8_t hdr[SWIM_FRAME_HDR];

	if (c->need == 0) {
		if (evbuffer_get_length(in) < SWIM_FRAME_HDR)
			return;
		evbuffer_copyout(in, hdr, sizeof hdr);
		if (hdr[0] != 0) { /* membership frames are < 16 MiB: another protocol */
			hand_over(c);
			return;
		}
		evbuffer_drain(in, sizeof hdr);
		if ((c->need = frame_len(n, hdr)) == 0) {
			LOG_WARN("swim", "connection from %s: bad frame length", c->peer);
			conn_free(c);
			return;
		}
	}
	if (evbuffer_get_length(in) < c->need)
		return;
	recv_frame(n, c->peer, evbuffer_pullup(in, (ssize_t)c->need), c->need);
	conn_free(c);
	schedule(n);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
		      void *arg)
{
	struct swim_net *n = arg;
	struct bufferevent *bev;
	struct conn *c;

	if (n->n_conns >= SWIM_NET_MAX_CONNS) {
		n->conns_refused++;
		evutil_closesocket(fd);
		return;
	}
	bev = bufferevent_socket_new(n->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL || (c = conn_new(n, bev)) == NULL) {
		if (bev == NULL)
			evutil_closesocket(fd);
		return;
	}
	format_addr(sa, c->peer, sizeof c->peer);
	bufferevent_setcb(bev, in_read, NULL, conn_event, c);
	bufferevent_setwatermark(bev, EV_READ, SWIM_FRAME_HDR,
				 SWIM_FRAME_HDR + SWIM_STREAM_MAX + (n->kr ? KEYRING_OVERHEAD : 0));
	bufferevent_enable(bev, EV_READ);
}

/* ------------------------------------------------------------------ datagrams */

static void on_udp(evutil_socket_t fd, short what, void *arg)
{
	struct swim_net *n = arg;

	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		ssize_t r = recvfrom(fd, n->rbuf, sizeof n->rbuf, 0, (struct sockaddr *)&ss, &sl);
		char from[80];

		if (r < 0)
			break;
		format_addr(&ss, from, sizeof from);
		if (n->kr == NULL)
			swim_recv(n->swim, sh_clock_mono_ms(), SWIM_UDP, from, n->rbuf, (size_t)r);
		else if ((r = keyring_open(n->kr, LABEL_UDP, n->rbuf, (size_t)r, n->sbuf,
					   sizeof n->sbuf)) >= 0)
			swim_recv(n->swim, sh_clock_mono_ms(), SWIM_UDP, from, n->sbuf, (size_t)r);
		else
			log_unsealed(n, from, "datagram");
	}
	schedule(n);
}

/* ------------------------------------------------------------------ the core's io */

static void io_send(void *data, enum swim_transport t, const char *addr, const uint8_t *buf,
		    size_t len)
{
	struct swim_net *n = data;
	const struct resolved *r = resolve(n, addr, sh_clock_mono_ms());

	if (r == NULL) {
		n->send_errors++;
		return;
	}
	if (t == SWIM_TCP) {
		tcp_send(n, r, buf, len);
		return;
	}
	if (n->kr != NULL) {
		long sealed = keyring_seal(n->kr, LABEL_UDP, buf, len, n->sbuf, sizeof n->sbuf);

		if (sealed < 0) {
			n->send_errors++;
			return;
		}
		buf = n->sbuf;
		len = (size_t)sealed;
	}
	if (sendto(n->udp_fd, buf, len, 0, (const struct sockaddr *)&r->sa, r->len) < 0)
		n->send_errors++;
}

static uint64_t io_random(void *data)
{
	return sh_rand_u64(&((struct swim_net *)data)->rand);
}

static void log_refused(struct swim_net *n, const struct swim_event *ev)
{
	uint64_t now = sh_clock_mono_ms();

	n->refused_unlogged++;
	if (n->refused_log_at != 0 && now - n->refused_log_at < REFUSED_LOG_MS)
		return;
	LOG_WARN("swim",
		 "refused %" PRIu64
		 " message(s) of another cluster: from %s, cluster id %016" PRIx64
		 ", ours %016" PRIx64
		 " (nodes of two clusters never merge: check cluster.seeds, and that the "
		 "data dir is this node's own)",
		 n->refused_unlogged, ev->addr, ev->cluster_id, swim_cluster_id(n->swim));
	n->refused_log_at = now;
	n->refused_unlogged = 0;
}

static void log_event(struct swim_net *n, const struct swim_event *ev)
{
	const struct swim_member *m = ev->member;
	static const char *const what[] = {
		[SWIM_EV_JOINED] = "joined",
		[SWIM_EV_SUSPECT] = "is suspect",
		[SWIM_EV_ALIVE] = "is alive again",
		[SWIM_EV_DEAD] = "is dead",
		[SWIM_EV_LEFT] = "left",
		[SWIM_EV_UPDATED] = "updated its record",
	};

	switch (ev->type) {
	case SWIM_EV_REFUTED:
		LOG_INFO("swim",
			 "refuted being suspected or declared dead: incarnation now %" PRIu64,
			 m->incarnation);
		return;
	case SWIM_EV_CLUSTER_ID:
		LOG_INFO("swim", "learned cluster id %016" PRIx64 " from a member", ev->cluster_id);
		return;
	case SWIM_EV_REFUSED: log_refused(n, ev); return;
	case SWIM_EV_CONFLICT:
		if (m != NULL)
			LOG_WARN("swim",
				 "a node at %s announces the id %016" PRIx64
				 " of member %s, alive at %s: ignored (a copied data dir or a "
				 "cloned machine? each node needs a data dir of its own)",
				 ev->addr, m->id, m->name, m->addr[SWIM_ADDR_CLUSTER]);
		else
			LOG_ERROR("swim",
				  "the node at %s answers to this node's id %016" PRIx64
				  ": two nodes share one data dir's identity (a copied data "
				  "dir?)",
				  ev->addr, swim_self_member(n->swim)->id);
		return;
	default: break;
	}
	LOG_INFO("swim", "member %s (id %016" PRIx64 ") at %s %s (incarnation %" PRIu64 ")%s",
		 m->name, m->id, m->addr[SWIM_ADDR_CLUSTER], what[ev->type], m->incarnation,
		 ev->type == SWIM_EV_SUSPECT && ev->from == swim_self_member(n->swim)->id
			 ? ", no answer to our probes"
			 : "");
}

static void io_event(void *data, const struct swim_event *ev)
{
	struct swim_net *n = data;

	log_event(n, ev);
	if (n->on_event != NULL)
		n->on_event(n->data, ev);
}

/* ------------------------------------------------------------------ setup */

static int bind_addr(const char *ip, int port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof *ss);
	if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		*len = sizeof *a4;
		return 0;
	}
	if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*len = sizeof *a6;
		return 0;
	}
	return -1;
}

static int open_sockets(struct swim_net *n, const struct swim_net_opts *o, struct sh_err *err)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (bind_addr(o->bind_addr, o->port, &ss, &len) != 0)
		return sh_err_set(err, SH_EINVAL, "swim: '%s' is not an IP address", o->bind_addr);
	n->family = ss.ss_family;
	n->udp_fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (n->udp_fd < 0 || bind(n->udp_fd, (struct sockaddr *)&ss, len) != 0)
		return sh_err_sys(err, errno, "swim: cannot bind UDP %s port %d", o->bind_addr,
				  o->port);
	n->udp_ev = event_new(n->base, n->udp_fd, EV_READ | EV_PERSIST, on_udp, n);
	if (n->udp_ev == NULL || event_add(n->udp_ev, NULL) != 0)
		return sh_err_set(err, SH_ENOMEM, "swim: cannot watch the UDP socket");
	n->listener = evconnlistener_new_bind(n->base, on_accept, n,
					      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
						      LEV_OPT_CLOSE_ON_EXEC,
					      64, (struct sockaddr *)&ss, (int)len);
	if (n->listener == NULL)
		return sh_err_sys(err, errno, "swim: cannot listen on TCP %s port %d", o->bind_addr,
				  o->port);
	return 0;
}

int swim_net_start(struct event_base *base, const struct swim_net_opts *o, struct swim_net **out,
		   struct sh_err *err)
{
	struct swim_net *n = sh_calloc(1, sizeof *n);
	struct swim_io io;
	uint64_t seed;
	int rv;

	if (n == NULL)
		return sh_err_set(err, SH_ENOMEM, "swim: out of memory");
	n->base = base;
	n->udp_fd = -1;
	n->on_event = o->on_event;
	n->data = o->data;
	n->on_stream = o->on_stream;
	n->stream_data = o->stream_data;
	n->kr = o->keyring;
	io = (struct swim_io){n, io_send, io_event, io_random};
	if ((rv = sh_rand_os(&seed)) != 0) {
		rv = sh_err_set(err, rv, "swim: no entropy for the random generator");
		goto err;
	}
	sh_rand_seed(&n->rand, seed);
	if ((rv = open_sockets(n, o, err)) != 0 ||
	    (rv = swim_new(o->cfg, o->self, &io, sh_clock_mono_ms(), &n->swim, err)) != 0)
		goto err;
	if ((n->timer = evtimer_new(base, on_timer, n)) == NULL) {
		rv = sh_err_set(err, SH_ENOMEM, "swim: cannot create a timer");
		goto err;
	}
	if ((rv = swim_join(n->swim, sh_clock_mono_ms(), o->seeds, o->n_seeds, err)) != 0)
		goto err;
	schedule(n);
	*out = n;
	return 0;
err:
	swim_net_free(n);
	return rv;
}

/* ------------------------------------------------------------------ leave, stop */

static void on_leave_check(evutil_socket_t fd, short what, void *arg)
{
	struct swim_net *n = arg;

	if (swim_leave_pending(n->swim) && sh_clock_mono_ms() - n->leave_start < LEAVE_MAX_MS)
		return;
	event_del(n->leave_timer);
	LOG_INFO("swim", "left the cluster");
	if (n->leave_done != NULL)
		n->leave_done(n->leave_arg);
}

void swim_net_leave(struct swim_net *n, void (*done)(void *arg), void *arg)
{
	struct timeval tv = {0, 50 * 1000};

	n->leave_done = done;
	n->leave_arg = arg;
	n->leave_start = sh_clock_mono_ms();
	LOG_INFO("swim", "leaving the cluster: telling %zu live member(s)",
		 swim_live_count(n->swim) - 1);
	swim_leave(n->swim, n->leave_start);
	schedule(n);
	n->leave_timer = event_new(n->base, -1, EV_PERSIST, on_leave_check, n);
	if (n->leave_timer == NULL || event_add(n->leave_timer, &tv) != 0) {
		if (done != NULL)
			done(arg);
	}
}

void swim_net_log_traffic(struct swim_net *n)
{
	struct swim_stats st;

	swim_get_stats(n->swim, &st);
	LOG_INFO("swim",
		 "traffic: sent %" PRIu64 " datagrams (%" PRIu64 " bytes) and %" PRIu64
		 " streams (%" PRIu64 " bytes); received %" PRIu64 " datagrams (%" PRIu64
		 " bytes) and %" PRIu64 " streams; %" PRIu64 " malformed, %" PRIu64
		 " refused, %" PRIu64 " send errors",
		 st.udp_sent, st.udp_bytes_sent, st.tcp_sent, st.tcp_bytes_sent, st.udp_recv,
		 st.udp_bytes_recv, st.tcp_recv, st.decode_errors, st.refused, n->send_errors);
}

void swim_net_free(struct swim_net *n)
{
	if (n == NULL)
		return;
	if (n->swim != NULL)
		swim_net_log_traffic(n);
	while (n->conns != NULL)
		conn_free(n->conns);
	if (n->leave_timer != NULL)
		event_free(n->leave_timer);
	if (n->timer != NULL)
		event_free(n->timer);
	if (n->udp_ev != NULL)
		event_free(n->udp_ev);
	if (n->listener != NULL)
		evconnlistener_free(n->listener);
	if (n->udp_fd >= 0)
		close(n->udp_fd);
	swim_free(n->swim);
	sh_free(n);
}

struct swim *swim_net_swim(struct swim_net *n)
{
	return n->swim;
}
