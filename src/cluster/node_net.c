/*
 * node_net: see node_net.h.
 */
#include "build.h"

#include "cluster/node_net.h"

#include "util/alloc.h"
#include "util/clock.h"

#include <event2/event.h>

struct node_net {
	struct peer_net *peers;
	struct event *timer;
	struct node *node;
};

/* ------------------------------------------------------------ the env */

static int env_send(void *data, uint64_t to, enum peer_kind kind, const struct peer_part *parts,
		    size_t n)
{
	return peer_send(((struct node_net *)data)->peers, to, kind, parts, n);
}

static size_t env_backlog(void *data, uint64_t to)
{
	return peer_backlog(((struct node_net *)data)->peers, to);
}

static void env_drop(void *data, uint64_t to)
{
	peer_drop(((struct node_net *)data)->peers, to);
}

static void env_set_cluster_id(void *data, uint64_t id)
{
	peer_set_cluster_id(((struct node_net *)data)->peers, id);
}

static bool env_trusted(void *data, uint64_t id)
{
	return peer_trusted(((struct node_net *)data)->peers, id);
}

static void env_wake_at(void *data, uint64_t at)
{
	struct node_net *nn = data;
	uint64_t now = sh_clock_mono_ms(), d;
	struct timeval tv;

	if (at == UINT64_MAX) {
		evtimer_del(nn->timer);
		return;
	}
	d = at > now ? at - now : 0;
	tv.tv_sec = (time_t)(d / 1000);
	tv.tv_usec = (suseconds_t)(d % 1000) * 1000;
	evtimer_add(nn->timer, &tv);
}

struct node_env node_net_env(struct node_net *nn)
{
	return (struct node_env){nn,          env_send,   env_backlog, env_drop, env_set_cluster_id,
				 env_wake_at, env_trusted};
}

/* ------------------------------------------------------------ inputs */

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct node_net *nn = arg;

	(void)fd;
	(void)what;
	if (nn->node != NULL)
		node_wake(nn->node);
}

static void on_recv(void *data, uint64_t from, enum peer_kind kind, const uint8_t *buf, size_t len)
{
	struct node_net *nn = data;

	if (nn->node != NULL)
		node_peer_recv(nn->node, from, kind, buf, len);
}

static const char *on_address(void *data, uint64_t id)
{
	struct node_net *nn = data;

	return nn->node != NULL ? node_peer_address(nn->node, id) : NULL;
}

static const char *on_name(void *data, uint64_t id)
{
	struct node_net *nn = data;

	return nn->node != NULL ? node_peer_name(nn->node, id) : NULL;
}

static void on_writable(void *data, uint64_t to)
{
	struct node_net *nn = data;

	if (nn->node != NULL)
		node_peer_writable(nn->node, to);
}

static void on_gone(void *data, uint64_t from)
{
	struct node_net *nn = data;

	if (nn->node != NULL)
		node_peer_gone(nn->node, from);
}

/* ------------------------------------------------------------ life */

int node_net_new(const struct node_net_opts *o, struct node_net **out, struct sh_err *err)
{
	struct node_net *nn = sh_calloc(1, sizeof *nn);
	struct peer_opts po = {.base = o->base,
			       .self_id = o->self_id,
			       .max_frame = o->max_frame,
			       .max_output = o->max_output,
			       .backoff_ms = o->backoff_ms,
			       .recv = on_recv,
			       .address = on_address,
			       .name = on_name,
			       .writable = on_writable,
			       .gone = on_gone,
			       .tls = o->tls};
	int rv;

	if (nn == NULL)
		return sh_err_set(err, SH_ENOMEM, "peer links: out of memory");
	po.data = nn;
	if ((rv = peer_net_new(&po, &nn->peers, err)) != 0) {
		sh_free(nn);
		return rv;
	}
	if ((nn->timer = evtimer_new(o->base, on_timer, nn)) == NULL) {
		node_net_free(nn);
		return sh_err_set(err, SH_ENOMEM, "raft: cannot create a timer");
	}
	*out = nn;
	return 0;
}

void node_net_free(struct node_net *nn)
{
	if (nn == NULL)
		return;
	if (nn->timer != NULL)
		event_free(nn->timer);
	peer_net_free(nn->peers);
	sh_free(nn);
}

void node_net_bind(struct node_net *nn, struct node *n)
{
	nn->node = n;
}

void node_net_accept(void *nn, struct bufferevent *bev, const char *addr)
{
	peer_accept(((struct node_net *)nn)->peers, bev, addr);
}

void node_net_stats(const struct node_net *nn, struct peer_stats *st)
{
	peer_get_stats(nn->peers, st);
}

void node_net_reset(struct node_net *nn, const char *why)
{
	peer_reset(nn->peers, why);
}
