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

static struct peer_net *net(struct ptls *tls)
{
	struct peer_opts o = {.base = base,
			      .self_id = 1,
			      .max_frame = 1 << 20,
			      .max_output = 1 << 20,
			      .backoff_ms = 10,
			      .recv = on_recv,
			      .address = no_address,
			      .tls = tls};
	struct peer_net *p;
	struct sh_err err;

	if (peer_net_new(&o, &p, &err) != 0)
		bail_out("peer_net_new: %s", err.msg);
	peer_set_cluster_id(p, CLUSTER);
	return p;
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

int main(void)
{
	if ((base = event_base_new()) == NULL)
		bail_out("event_base_new");
	test_plain();
	test_keyed();
	event_base_free(base);
	return done_testing();
}
