/*
 * node_net: a node's real world (node.h, struct node_env) — the peer links
 * over TCP (peer.h), one libevent timer, for shoald.
 *
 * Create it, create the node with node_net_env()'s env, then bind the
 * node: from then on frames from peers and the timer reach it.  The cluster
 * port's listener belongs to membership (swim_net.h), which hands the
 * connections that are peer links to node_net_accept().
 *
 * Runs on the loop thread; not thread-safe.  Free the node first, then
 * this.
 */
#ifndef SHOAL_CLUSTER_NODE_NET_H
#define SHOAL_CLUSTER_NODE_NET_H

#include <stddef.h>
#include <stdint.h>

#include "cluster/node.h"
#include "util/err.h"

struct event_base;
struct bufferevent;
struct node_net;
struct ptls;

struct node_net_opts {
	struct event_base *base;
	uint64_t self_id;
	size_t max_frame;  /* bytes of one received frame */
	size_t max_output; /* bytes queued to one peer */
	uint32_t backoff_ms;
	struct ptls *tls; /* optional: links in TLS (peer_tls.h) */
};

int node_net_new(const struct node_net_opts *o, struct node_net **out, struct sh_err *err);
void node_net_free(struct node_net *nn);
/* The env to give node_new(). */
struct node_env node_net_env(struct node_net *nn);
/* Deliver to n from now on (NULL: to nobody). */
void node_net_bind(struct node_net *nn, struct node *n);
/* A connection accepted on the cluster port that is a peer link (its
 * first bytes still in the input buffer); nn is a struct node_net. */
void node_net_accept(void *nn, struct bufferevent *bev, const char *addr);
void node_net_stats(const struct node_net *nn, struct peer_stats *st);
/* Close every peer link (peer_reset): after a gossip key was removed, so
 * that no link keyed by it lives on. */
void node_net_reset(struct node_net *nn, const char *why);

#endif
