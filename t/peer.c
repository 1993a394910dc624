/* Peer links' inbound side (src/cluster/peer.c) on socketpairs: a link's
 * preamble and frame are delivered; with a keyring (TLS, peer_tls.h) a
 * plaintext link is refused, and a flood of connections that start a TLS
 * handshake and never finish it cannot keep a node's own link out;
 * peer_reset closes the links. */
#include "build.h"

#include "cluster/keyring.h"
#include "cluster/peer.h"
#include "cluster/peer_tls.h"
#include "tap.h"

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <stdio.h>

#define CLUSTER 0x1234
#define SENDER  0x77
#define FLOOD   300

static struct event_base *base;
static int delivered;
static uint64_t delivered_from;

static void on_recv(void *data, uint64_t from, enum peer_kind kind, const uint8_t *buf, size_t len)
{
	(void)data;
	if (kind == PEER_RAFT && len == 5 && memcmp(buf, "hello", 5) == 0) {
		delivered++;
		delivered_from = from;
	}
}

static const char *no_address(void *data, uint64_t id)
{
	(void)data;
	(void)id;
	return NULL;
}

/* A peer_net of node self; o's callbacks and max_output as given. */
static struct peer_net *net_with(uint64_t self, struct ptls *tls, struct peer_opts o)
{
	struct peer_net *p;
	struct sh_err err;

	o.base = base;
	o.self_id = self;
	o.max_frame = 1 << 20;
	o.backoff_ms = 10;
	o.tls = tls;
	if (peer_net_new(&o, &p, &err) != 0)
		bail_out("peer_net_new: %s", err.msg);
	peer_set_cluster_id(p, CLUSTER);
	return p;
}

static struct peer_net *net(struct ptls *tls)
{
	return net_with(
		1, tls,
		(struct peer_opts){.max_output = 1 << 20, .recv = on_recv, .address = no_address});
}

static void le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* The preamble and one PEER_RAFT frame "hello", written to bev. */
static void send_link(struct bufferevent *bev)
{
	uint8_t pre[PEER_PREAMBLE], hdr[5] = {6, 0, 0, 0, PEER_RAFT};

	memcpy(pre, PEER_MAGIC, 8);
	le64(pre + 8, SENDER);
	le64(pre + 16, CLUSTER);
	bufferevent_write(bev, pre, sizeof pre);
	bufferevent_write(bev, hdr, sizeof hdr);
	bufferevent_write(bev, "hello", 5);
}

static void run_ms(int ms)
{
	struct timeval tv = {0, 1000};

	for (int i = 0; i < ms && delivered == 0; i++) {
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
}

/* Accept the server end fd once the client's first bytes are there, read
 * (as membership hands a link over: its first bytes in the buffer). */
static void accept_end(struct peer_net *p, int fd)
{
	struct bufferevent *bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	char buf[4096];
	ssize_t n = -1;

	for (int i = 0; i < 200 && n <= 0; i++) {
		run_ms(1);
		n = read(fd, buf, sizeof buf);
	}
	/* a bufferevent's input is frozen at its end: prepend */
	if (n > 0)
		evbuffer_prepend(bufferevent_get_input(bev), buf, (size_t)n);
	peer_accept(p, bev, "test");
}

static void test_plain(void)
{
	struct peer_net *p = net(NULL);
	struct bufferevent *c;
	struct peer_stats st;
	int sv[2];

	socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
	c = bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE);
	send_link(c);
	accept_end(p, sv[1]);
	run_ms(500);
	ok(delivered == 1 && delivered_from == SENDER, "a plaintext link delivers its frame");
	peer_reset(p, "test");
	peer_get_stats(p, &st);
	is_int(st.refused, 0, "nothing refused");
	bufferevent_free(c);
	peer_net_free(p);
}

/* A TLS client link on sv[0] (ring kr), its preamble and frame queued. */
static struct bufferevent *tls_client(struct ptls *t, int fd)
{
	struct bufferevent *c = ptls_client(t, base);

	bufferevent_setfd(bufferevent_get_underlying(c), fd);
	bufferevent_enable(bufferevent_get_underlying(c), EV_READ | EV_WRITE);
	bufferevent_enable(c, EV_READ | EV_WRITE);
	send_link(c);
	return c;
}

static void test_keyed(void)
{
	uint8_t k[KEYRING_KEY];
	struct sh_err err;
	struct keyring *kr = keyring_new();
	struct ptls *t;
	struct peer_net *p;
	struct bufferevent *c, *flood[FLOOD];
	struct peer_stats st;
	int sv[2];

	keyring_generate(k, &err);
	keyring_install(kr, k, &err);
	ptls_new(kr, &t, &err);
	p = net(t);
	delivered = 0;
	socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
	c = bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE);
	send_link(c);
	accept_end(p, sv[1]);
	run_ms(200);
	peer_get_stats(p, &st);
	ok(delivered == 0 && st.refused == 1, "a plaintext link to a node with a keyring: refused");
	bufferevent_free(c);
	for (int i = 0; i < FLOOD; i++) {
		socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
		flood[i] = bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE);
		if (write(sv[0], "\x16\x03\x01\x00", 4) != 4)
			bail_out("write");
		accept_end(p, sv[1]);
	}
	peer_get_stats(p, &st);
	ok(st.refused >= FLOOD - 32, "%d unfinished handshakes: all but the newest 32 closed (%d)",
	   FLOOD, (int)st.refused);
	socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
	c = tls_client(t, sv[0]);
	accept_end(p, sv[1]);
	run_ms(2000);
	ok(delivered == 1, "then a keyed link still gets in and delivers its frame");
	for (int i = 0; i < FLOOD; i++)
		bufferevent_free(flood[i]);
	bufferevent_free(c);
	peer_net_free(p);
	ptls_free(t);
	keyring_free(kr);
}

/* ------------------------------------------------------------ pump */

/* A sender that keeps its link's backlog under max_output / 2 and resumes
 * from the writable callback (as the snapshot sender does) must never be
 * left waiting: 2000 frames of 16 KiB over a TLS link with a small
 * max_output all arrive. */
#define PUMP_FRAMES 2000
static struct peer_net *pa, *pb;
static size_t pump_max, pump_sent, pump_recvd;
static uint8_t chunk[16 * 1024];
static char pump_addr[64];

static void pump_recv(void *d, uint64_t from, enum peer_kind k, const uint8_t *b, size_t l)
{
	(void)d, (void)from, (void)k, (void)b, (void)l;
	pump_recvd++;
}

static const char *pump_address(void *d, uint64_t id)
{
	(void)d;
	return id == 2 ? pump_addr : NULL;
}

static void pump(void)
{
	while (pump_sent < PUMP_FRAMES && peer_backlog(pa, 2) < pump_max / 2) {
		struct peer_part part = {chunk, sizeof chunk, NULL, NULL};

		if (peer_send(pa, 2, PEER_SNAP, &part, 1) != 0)
			return;
		pump_sent++;
	}
}

static void pump_writable(void *d, uint64_t to)
{
	(void)d, (void)to;
	pump();
}

/* membership's part: a connection's first bytes, then peer_accept */
static void first_bytes(struct bufferevent *bev, void *arg)
{
	(void)arg;
	bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
	bufferevent_disable(bev, EV_READ);
	peer_accept(pb, bev, "test");
}

static void pump_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
			void *arg)
{
	struct bufferevent *bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);

	(void)l, (void)sa, (void)len, (void)arg;
	bufferevent_setcb(bev, first_bytes, NULL, NULL, NULL);
	bufferevent_enable(bev, EV_READ);
}

static void test_pump(size_t max_output)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
	socklen_t sl = sizeof sin;
	uint8_t k[KEYRING_KEY];
	struct sh_err err;
	struct keyring *kr = keyring_new();
	struct ptls *t;
	struct evconnlistener *l;

	keyring_generate(k, &err);
	keyring_install(kr, k, &err);
	ptls_new(kr, &t, &err);
	l = evconnlistener_new_bind(base, pump_accept, NULL,
				    LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE, 16,
				    (struct sockaddr *)&sin, sizeof sin);
	if (l == NULL)
		bail_out("listen");
	getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&sin, &sl);
	snprintf(pump_addr, sizeof pump_addr, "127.0.0.1:%d", ntohs(sin.sin_port));
	pump_max = max_output;
	pump_sent = pump_recvd = 0;
	pa = net_with(1, t,
		      (struct peer_opts){.max_output = max_output,
					 .recv = pump_recv,
					 .address = pump_address,
					 .writable = pump_writable});
	pb = net_with(2, t, (struct peer_opts){.max_output = max_output, .recv = pump_recv});
	pump();
	for (int i = 0; i < 1000 && pump_recvd < PUMP_FRAMES; i++) {
		struct timeval tv = {0, 10000};

		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
	is_int(pump_recvd, PUMP_FRAMES,
	       "a sender paced by the writable callback over TLS, max_output %zu KiB: every "
	       "frame arrives",
	       max_output / 1024);
	peer_net_free(pa);
	peer_net_free(pb);
	evconnlistener_free(l);
	ptls_free(t);
	keyring_free(kr);
}

int main(void)
{
	if ((base = event_base_new()) == NULL)
		bail_out("event_base_new");
	test_plain();
	test_keyed();
	test_pump(68 * 1024);
	test_pump(256 * 1024);
	event_base_free(base);
	return done_testing();
}
