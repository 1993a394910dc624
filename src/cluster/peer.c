/*
 * peer: see peer.h.
 */
#include "build.h"

#include "cluster/peer.h"

#include "cluster/peer_tls.h"

#include "util/alloc.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/tlsfile.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>

#define FRAME_HDR     5 /* u32 length, u8 kind */
#define IN_IDLE_S     60
#define PENDING_S     5  /* to complete the handshake and send the preamble */
#define MAX_PENDING   32 /* links without their preamble yet; the oldest goes */
#define WARN_EVERY_MS 30000
#define ADDR_MAX      320
#define COALESCE      (16 * 1024) /* one TLS record */
#define TLS_HANDSHAKE 0x16        /* the first byte of a TLS handshake record */

/* The link this node sends on to one peer. */
struct link {
	uint64_t id;
	struct bufferevent *bev; /* NULL while down */
	struct evbuffer *stage;  /* with TLS: frames of this loop turn, not yet encrypted */
	bool connected;
	uint64_t retry_at;  /* no new connection before (ms) */
	uint64_t warned_at; /* last failure logged (ms) */
	uint64_t failures;  /* since the last success */
	char addr[ADDR_MAX];
};

/* A connection another node opened to send to us. */
struct inconn {
	struct peer_net *p;
	struct bufferevent *bev;
	uint64_t from; /* 0 until the preamble is read */
	bool pending;  /* the preamble not read yet: deadline runs */
	struct event *deadline;
	char addr[ADDR_MAX];
	struct inconn *prev, *next;
};

struct peer_net {
	struct peer_opts o;
	uint64_t cluster_id;
	struct link *links;
	size_t n_links, cap_links;
	struct inconn *in;
	int n_in, n_pending;
	struct peer_stats st;
	uint64_t refused_warned_at, refused_unwarned;
	struct event *flush; /* with TLS: hands the staged frames over */
	bool flush_armed;
};

static void le32_put(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t le32_get(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void le64_put(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t le64_get(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void nodelay(struct bufferevent *bev)
{
	int one = 1;
	evutil_socket_t fd = bufferevent_getfd(bev);

	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* ------------------------------------------------------------ inbound */

/* A link refused before its preamble: counted, logged at most every
 * WARN_EVERY_MS. */
static void warn_refused(struct peer_net *p, const char *addr, const char *why)
{
	uint64_t now = sh_clock_mono_ms();

	p->st.refused++;
	p->refused_unwarned++;
	if (p->refused_warned_at != 0 && now - p->refused_warned_at < WARN_EVERY_MS)
		return;
	LOG_WARN("peer", "refused %" PRIu64 " peer link(s): last from %s: %s", p->refused_unwarned,
		 addr, why);
	p->refused_warned_at = now;
	p->refused_unwarned = 0;
}

/* c no longer waits for its preamble (read, or c goes). */
static void in_settled(struct inconn *c)
{
	if (!c->pending)
		return;
	c->pending = false;
	c->p->n_pending--;
	if (c->deadline != NULL)
		event_free(c->deadline);
	c->deadline = NULL;
}

static void in_free(struct inconn *c)
{
	struct peer_net *p = c->p;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		p->in = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	p->n_in--;
	in_settled(c);
	bufferevent_free(c->bev);
	sh_free(c);
}

static bool in_preamble(struct inconn *c, struct evbuffer *in)
{
	uint8_t pre[PEER_PREAMBLE];
	uint64_t cluster;

	evbuffer_remove(in, pre, sizeof pre);
	cluster = le64_get(pre + 16);
	c->from = le64_get(pre + 8);
	if (memcmp(pre, PEER_MAGIC, 8) != 0 || c->from == 0) {
		LOG_WARN("peer", "connection from %s: not a peer link (bad preamble)", c->addr);
		return false;
	}
	if (cluster == 0 || cluster != c->p->cluster_id) {
		c->p->st.refused++;
		LOG_DEBUG("peer",
			  "connection from %s (node %016" PRIx64 "): cluster %016" PRIx64
			  " is not ours (%016" PRIx64 ")",
			  c->addr, c->from, cluster, c->p->cluster_id);
		return false;
	}
	return true;
}

/* With certificates, the link's certificate must name the node its
 * preamble speaks for (a certificate of the cluster CA does not let one
 * node, or anyone else it signed, act as another). */
static bool in_named(struct inconn *c)
{
	struct peer_net *p = c->p;
	const char *name;
	char why[320];

	if (p->o.tls == NULL || p->o.name == NULL)
		return true;
	name = p->o.name(p->o.data, c->from);
	if (ptls_peer_named(c->bev, name))
		return true;
	snprintf(why, sizeof why, "its certificate does not name node %016" PRIx64 " (%s)", c->from,
		 name != NULL ? name : "a node membership does not know yet");
	warn_refused(p, c->addr, why);
	return false;
}

/* One whole frame at the front of in: deliver it.  false: close. */
static bool in_frame(struct inconn *c, struct evbuffer *in, bool *more)
{
	struct peer_net *p = c->p;
	uint8_t hdr[FRAME_HDR];
	uint32_t len;
	uint8_t *buf;

	*more = false;
	if (evbuffer_copyout(in, hdr, sizeof hdr) < (ssize_t)sizeof hdr)
		return true;
	len = le32_get(hdr);
	if (len < 1 || len > p->o.max_frame + 1 || hdr[4] < 1 || hdr[4] > PEER_KIND_MAX) {
		LOG_WARN("peer", "connection from %s: bad frame (length %" PRIu32 ", kind %u)",
			 c->addr, len, hdr[4]);
		return false;
	}
	if (evbuffer_get_length(in) < 4 + (size_t)len)
		return true;
	if ((buf = evbuffer_pullup(in, 4 + (ssize_t)len)) == NULL)
		return false;
	p->st.frames_recv++;
	p->st.bytes_recv += 4 + (uint64_t)len;
	p->o.recv(p->o.data, c->from, (enum peer_kind)hdr[4], buf + FRAME_HDR, len - 1);
	evbuffer_drain(in, 4 + (size_t)len);
	*more = true;
	return true;
}

static void in_read(struct bufferevent *bev, void *arg)
{
	struct inconn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	bool ok = true, more = true;

	if (c->from == 0) {
		if (evbuffer_get_length(in) < PEER_PREAMBLE)
			return;
		if ((ok = in_preamble(c, in) && in_named(c)))
			in_settled(c);
	}
	while (ok && more)
		ok = in_frame(c, in, &more);
	if (!ok)
		in_free(c);
}

static void in_event(struct bufferevent *bev, short what, void *arg)
{
	struct inconn *c = arg;
	char buf[256];

	if ((what & BEV_EVENT_CONNECTED) && c->p->o.tls != NULL && !ptls_keyed(bev)) {
		warn_refused(c->p, c->addr, "a TLS handshake not authenticated");
		in_free(c);
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
		const char *tls =
			c->p->o.tls != NULL ? sh_tls_bev_error(bev, buf, sizeof buf) : NULL;

		if (c->from == 0 && tls != NULL)
			warn_refused(c->p, c->addr, tls);
		LOG_DEBUG("peer", "connection from %s closed (%s)", c->addr,
			  what & BEV_EVENT_TIMEOUT ? "idle"
			  : what & BEV_EVENT_EOF   ? "end of stream"
						   : strerror(errno));
		if (c->from != 0 && (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) &&
		    c->p->o.gone != NULL)
			c->p->o.gone(c->p->o.data, c->from);
		in_free(c);
	}
}

/* The connection to read a link from: bev itself, or TLS over it; NULL
 * when it is refused (plaintext to a node with TLS, or the reverse). */
static struct bufferevent *in_secure(struct peer_net *p, struct bufferevent *bev, const char *addr)
{
	uint8_t first = 0;
	bool tls;

	evbuffer_copyout(bufferevent_get_input(bev), &first, 1);
	tls = first == TLS_HANDSHAKE;
	if (tls == (p->o.tls != NULL))
		return tls ? ptls_server(p->o.tls, p->o.base, bev) : bev;
	warn_refused(p, addr,
		     tls ? "a TLS link, but this node's links are plaintext (no "
			   "security.gossip_keyring_file nor peer_cert_file)"
			 : "a plaintext link, but this node's links need TLS "
			   "(security.gossip_keyring_file or peer_cert_file)");
	bufferevent_free(bev);
	return NULL;
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct inconn *c = arg;

	warn_refused(c->p, c->addr, "no preamble within 5 s (a TLS handshake not completed?)");
	in_free(c);
}

/* Room for one more link waiting for its preamble: the oldest such goes
 * when MAX_PENDING wait (so that connections that never complete cannot
 * keep the nodes' links out). */
static void make_room(struct peer_net *p)
{
	struct inconn *oldest = NULL;

	if (p->n_pending < MAX_PENDING)
		return;
	for (struct inconn *c = p->in; c != NULL; c = c->next)
		if (c->pending)
			oldest = c; /* the list is newest first */
	if (oldest != NULL) {
		warn_refused(p, oldest->addr,
			     "too many links waiting for their preamble: the oldest closed");
		in_free(oldest);
	}
}

static void in_link(struct peer_net *p, struct inconn *c)
{
	struct timeval tv = {PENDING_S, 0};

	c->next = p->in;
	if (p->in != NULL)
		p->in->prev = c;
	p->in = c;
	p->n_in++;
	c->pending = true;
	p->n_pending++;
	c->deadline = evtimer_new(p->o.base, on_deadline, c);
	if (c->deadline != NULL)
		evtimer_add(c->deadline, &tv);
}

void peer_accept(void *arg, struct bufferevent *bev, const char *addr)
{
	struct peer_net *p = arg;
	struct timeval idle = {IN_IDLE_S, 0};
	struct inconn *c;

	make_room(p);
	if (p->n_in >= PEER_MAX_IN || (c = sh_calloc(1, sizeof *c)) == NULL) {
		p->st.refused++;
		bufferevent_free(bev);
		return;
	}
	if ((bev = in_secure(p, bev, addr)) == NULL) {
		sh_free(c);
		return;
	}
	c->p = p;
	c->bev = bev;
	snprintf(c->addr, sizeof c->addr, "%s", addr);
	in_link(p, c);
	nodelay(bev);
	bufferevent_setcb(bev, in_read, NULL, in_event, c);
	bufferevent_setwatermark(bev, EV_READ, 0, 0);
	bufferevent_set_timeouts(bev, &idle, NULL);
	bufferevent_enable(bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_input(bev)) > 0)
		in_read(bev, c);
}

/* ------------------------------------------------------------ outbound */

static struct link *link_find(struct peer_net *p, uint64_t id, bool create)
{
	struct link *l;

	for (size_t i = 0; i < p->n_links; i++)
		if (p->links[i].id == id)
			return &p->links[i];
	if (!create)
		return NULL;
	if (p->n_links == p->cap_links) {
		size_t cap = p->cap_links ? 2 * p->cap_links : 8;

		if ((l = sh_reallocarray(p->links, cap, sizeof *l)) == NULL)
			return NULL;
		/* the callbacks hold the id, not the pointer: moving is safe */
		p->links = l;
		p->cap_links = cap;
	}
	l = &p->links[p->n_links++];
	memset(l, 0, sizeof *l);
	l->id = id;
	return l;
}

/* Free the connection and drop what was queued on it. */
static void link_close(struct link *l)
{
	if (l->bev != NULL)
		bufferevent_free(l->bev);
	l->bev = NULL;
	if (l->stage != NULL)
		evbuffer_drain(l->stage, evbuffer_get_length(l->stage));
}

static void link_down(struct peer_net *p, struct link *l, const char *why)
{
	uint64_t now = sh_clock_mono_ms();

	link_close(l);
	l->connected = false;
	l->failures++;
	l->retry_at = now + p->o.backoff_ms;
	if (now - l->warned_at >= WARN_EVERY_MS || l->warned_at == 0) {
		LOG_INFO("peer", "link to node %016" PRIx64 " at %s down: %s", l->id, l->addr, why);
		l->warned_at = now;
	}
}

static const char *link_why(struct peer_net *p, struct bufferevent *bev, short what, char *buf,
			    size_t size)
{
	const char *tls = p->o.tls != NULL ? sh_tls_bev_error(bev, buf, size) : NULL;

	if (tls != NULL)
		return tls;
	return what & BEV_EVENT_EOF ? "closed by the peer"
	       : errno              ? strerror(errno)
				    : "connection failed";
}

static void link_event(struct bufferevent *bev, short what, void *arg)
{
	struct peer_net *p = arg;
	struct link *l = NULL;
	char buf[256];

	for (size_t i = 0; i < p->n_links && l == NULL; i++)
		if (p->links[i].bev == bev)
			l = &p->links[i];
	if (l == NULL)
		return;
	if ((what & BEV_EVENT_CONNECTED) && p->o.tls != NULL && !ptls_keyed(bev)) {
		p->st.connect_failures++;
		link_down(p, l, "the peer's TLS handshake was not authenticated");
		return;
	}
	if ((what & BEV_EVENT_CONNECTED) && p->o.tls != NULL && p->o.name != NULL &&
	    !ptls_peer_named(bev, p->o.name(p->o.data, l->id))) {
		p->st.connect_failures++;
		link_down(p, l, "the peer's certificate does not carry its node's name");
		return;
	}
	if (what & BEV_EVENT_CONNECTED) {
		l->connected = true;
		l->failures = 0;
		p->st.connects++;
		nodelay(bev);
		return;
	}
	if (!l->connected)
		p->st.connect_failures++;
	link_down(p, l, link_why(p, bev, what, buf, sizeof buf));
}

static void link_read(struct bufferevent *bev, void *arg)
{
	(void)arg;
	evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
}

static void link_write(struct bufferevent *bev, void *arg)
{
	struct peer_net *p = arg;

	for (size_t i = 0; i < p->n_links; i++)
		if (p->links[i].bev == bev && p->o.writable != NULL)
			p->o.writable(p->o.data, p->links[i].id);
}

static int link_connect(struct peer_net *p, struct link *l)
{
	const char *addr = p->o.address(p->o.data, l->id);
	struct sockaddr_storage ss;
	int len = sizeof ss;
	uint8_t pre[PEER_PREAMBLE];

	if (addr == NULL)
		return SH_EUNAVAIL;
	snprintf(l->addr, sizeof l->addr, "%s", addr);
	if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &len) != 0) {
		link_down(p, l, "the address is not IP:port");
		return SH_EUNAVAIL;
	}
	l->bev = p->o.tls != NULL ? ptls_client(p->o.tls, p->o.base)
				  : bufferevent_socket_new(p->o.base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (l->bev == NULL)
		return SH_ENOMEM;
	bufferevent_setcb(l->bev, link_read, link_write, link_event, p);
	bufferevent_setwatermark(l->bev, EV_WRITE, p->o.max_output / 4, 0);
	memcpy(pre, PEER_MAGIC, 8);
	le64_put(pre + 8, p->o.self_id);
	le64_put(pre + 16, p->cluster_id);
	if (bufferevent_write(l->bev, pre, sizeof pre) != 0 ||
	    bufferevent_socket_connect(p->o.tls != NULL ? bufferevent_get_underlying(l->bev)
							: l->bev,
				       (struct sockaddr *)&ss, len) != 0) {
		p->st.connect_failures++;
		link_down(p, l, strerror(errno ? errno : ECONNREFUSED));
		return SH_EUNAVAIL;
	}
	bufferevent_enable(l->bev, EV_READ);
	return 0;
}

static void release_all(const struct peer_part *parts, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (parts[i].release != NULL)
			parts[i].release(parts[i].data, parts[i].len, parts[i].arg);
}

/* Bytes queued to a link: in its output, and with TLS also staged.  Not
 * what waits in the TLS connection's socket buffer below (bounded by its
 * high watermark): the writable callback watches the output only, so
 * counting more could leave a sender waiting for a callback that never
 * comes. */
static size_t queued(const struct peer_net *p, const struct link *l)
{
	size_t n = evbuffer_get_length(bufferevent_get_output(l->bev));

	return p->o.tls != NULL && l->stage != NULL ? n + evbuffer_get_length(l->stage) : n;
}

/* The frame (header, then the parts) onto out; on failure the parts not
 * added are released. */
static int frame_into(struct peer_net *p, struct evbuffer *out, enum peer_kind kind,
		      const struct peer_part *parts, size_t n)
{
	uint8_t hdr[FRAME_HDR];
	size_t len = 1;
	size_t i;

	for (i = 0; i < n; i++)
		len += parts[i].len;
	le32_put(hdr, (uint32_t)len);
	hdr[4] = (uint8_t)kind;
	if (evbuffer_add(out, hdr, sizeof hdr) != 0) {
		release_all(parts, n);
		return SH_ENOMEM;
	}
	for (i = 0; i < n; i++) {
		int rv = parts[i].release != NULL
				 ? evbuffer_add_reference(out, parts[i].data, parts[i].len,
							  parts[i].release, parts[i].arg)
				 : evbuffer_add(out, parts[i].data, parts[i].len);

		if (rv != 0) {
			release_all(parts + i, n - i);
			return SH_ENOMEM;
		}
	}
	p->st.frames_sent++;
	p->st.bytes_sent += 4 + len;
	return 0;
}

/* A link's staged frames into its TLS connection, in records of up to
 * COALESCE bytes where they were small (each addition to the output is
 * encrypted at once). */
static int stage_flush(struct link *l)
{
	struct evbuffer *out = bufferevent_get_output(l->bev);
	size_t len = evbuffer_get_length(l->stage);

	if (len == 0)
		return 0;
	if (len <= 4 * COALESCE)
		evbuffer_pullup(l->stage, -1);
	return evbuffer_add_buffer(out, l->stage) == 0 ? 0 : SH_ENOMEM;
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
	struct peer_net *p = arg;

	p->flush_armed = false;
	for (size_t i = 0; i < p->n_links; i++) {
		struct link *l = &p->links[i];

		if (l->bev != NULL && l->stage != NULL && stage_flush(l) != 0)
			link_down(p, l, "out of memory");
	}
}

/* With TLS, the frames of one loop turn are staged and handed over
 * together at its end (on_flush): a burst of small frames (acks, forwarded
 * writes) becomes a few records instead of one each. */
static int frame_out(struct peer_net *p, struct link *l, enum peer_kind kind,
		     const struct peer_part *parts, size_t n)
{
	int rv;

	if (p->o.tls == NULL) {
		rv = frame_into(p, bufferevent_get_output(l->bev), kind, parts, n);
	} else if (l->stage == NULL && (l->stage = evbuffer_new()) == NULL) {
		release_all(parts, n);
		rv = SH_ENOMEM;
	} else if ((rv = frame_into(p, l->stage, kind, parts, n)) == 0) {
		if (evbuffer_get_length(l->stage) > 4 * COALESCE) {
			rv = stage_flush(l);
		} else if (!p->flush_armed) {
			p->flush_armed = true;
			event_active(p->flush, 0, 0);
		}
	}
	if (rv != 0)
		link_down(p, l, "out of memory");
	return rv;
}

int peer_send(struct peer_net *p, uint64_t to, enum peer_kind kind, const struct peer_part *parts,
	      size_t n)
{
	struct link *l = link_find(p, to, true);
	int rv = 0;

	if (l == NULL)
		rv = SH_ENOMEM;
	else if (p->cluster_id == 0)
		rv = SH_EUNAVAIL;
	else if (l->bev == NULL && sh_clock_mono_ms() < l->retry_at)
		rv = SH_EUNAVAIL;
	else if (l->bev == NULL)
		rv = link_connect(p, l);
	if (rv == 0 && queued(p, l) > p->o.max_output)
		rv = SH_EBUSY;
	if (rv != 0) {
		p->st.dropped++;
		release_all(parts, n);
		return rv;
	}
	return frame_out(p, l, kind, parts, n);
}

bool peer_trusted(struct peer_net *p, uint64_t to)
{
	struct link *l;

	if (p->o.tls == NULL)
		return true;
	if ((l = link_find(p, to, true)) == NULL || p->cluster_id == 0)
		return false;
	if (l->bev == NULL && sh_clock_mono_ms() >= l->retry_at)
		link_connect(p, l);
	return l->bev != NULL && l->connected;
}

size_t peer_backlog(const struct peer_net *p, uint64_t to)
{
	const struct link *l = link_find((struct peer_net *)(uintptr_t)p, to, false);

	return l != NULL && l->bev != NULL ? queued(p, l) : 0;
}

void peer_drop(struct peer_net *p, uint64_t to)
{
	struct link *l = link_find(p, to, false);

	if (l != NULL && l->bev != NULL) {
		link_close(l);
		l->connected = false;
	}
}

/* ------------------------------------------------------------ life */

int peer_net_new(const struct peer_opts *o, struct peer_net **out, struct sh_err *err)
{
	struct peer_net *p = sh_calloc(1, sizeof *p);

	if (p == NULL)
		return sh_err_set(err, SH_ENOMEM, "peer: out of memory");
	p->o = *o;
	if (o->tls != NULL && (p->flush = event_new(o->base, -1, 0, on_flush, p)) == NULL) {
		sh_free(p);
		return sh_err_set(err, SH_ENOMEM, "peer: out of memory");
	}
	*out = p;
	return 0;
}

void peer_reset(struct peer_net *p, const char *why)
{
	size_t n = 0;

	while (p->in != NULL) {
		in_free(p->in);
		n++;
	}
	for (size_t i = 0; i < p->n_links; i++)
		if (p->links[i].bev != NULL) {
			link_down(p, &p->links[i], why);
			n++;
		}
	LOG_INFO("peer", "closed %zu peer link(s): %s", n, why);
}

void peer_net_free(struct peer_net *p)
{
	if (p == NULL)
		return;
	while (p->in != NULL)
		in_free(p->in);
	for (size_t i = 0; i < p->n_links; i++) {
		link_close(&p->links[i]);
		if (p->links[i].stage != NULL)
			evbuffer_free(p->links[i].stage);
	}
	if (p->flush != NULL)
		event_free(p->flush);
	sh_free(p->links);
	sh_free(p);
}

void peer_set_cluster_id(struct peer_net *p, uint64_t cluster_id)
{
	p->cluster_id = cluster_id;
}

void peer_get_stats(const struct peer_net *p, struct peer_stats *st)
{
	*st = p->st;
}
