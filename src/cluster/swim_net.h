/*
 * swim_net: the real driver of the membership core (swim.h) — UDP and TCP
 * sockets on the cluster port, libevent timers, the monotonic clock and an
 * OS-seeded random generator.
 *
 * It binds UDP and TCP on the same address and port, feeds every datagram
 * and every TCP frame (4-byte length + PushPull) to the core, sends what the
 * core asks to send (a datagram, or a short-lived TCP connection carrying
 * one frame), turns the core's next deadline into one libevent timer, and
 * logs every membership event at info level:
 *
 *     swim: member n2 (id 3f0c...) at 127.0.0.1:7481 is dead (incarnation 4)
 *
 * Addresses are resolved with getaddrinfo() once and cached (a host name
 * among the seeds blocks the loop once per 30 s at most; IP addresses never
 * block).  With a keyring, every datagram and every TCP frame's body is
 * sealed (keyring.h; labels "shoal gossip udp" and "shoal gossip tcp").
 * Inbound TCP is bounded: at most SWIM_NET_MAX_CONNS connections at
 * once, frames of at most SWIM_STREAM_MAX bytes, 10 s to deliver one.
 *
 * Runs on the loop thread that owns the event_base; not thread-safe.
 */
#ifndef SHOAL_CLUSTER_SWIM_NET_H
#define SHOAL_CLUSTER_SWIM_NET_H

#include <stddef.h>

#include "cluster/swim.h"
#include "util/err.h"

struct event_base;
struct bufferevent;
struct swim_net;
struct keyring;

#define SWIM_NET_MAX_CONNS 64

struct swim_net_opts {
	const struct swim_config *cfg;
	const struct swim_self *self; /* copied by the core */
	const char *bind_addr;        /* IP address to bind */
	int port;                     /* cluster port, UDP and TCP */
	const char *const *seeds;     /* host:port, may be empty */
	size_t n_seeds;
	/* Optional: also told of every event, after it is logged. */
	void (*on_event)(void *data, const struct swim_event *ev);
	void *data;
	/* Optional: takes the TCP connections on the cluster port whose first
	 * byte is not zero (not membership's: peer links), their first bytes
	 * still in the input buffer.  Without it they are closed. */
	void (*on_stream)(void *data, struct bufferevent *bev, const char *addr);
	void *stream_data;
	/* Optional: seal every datagram and frame with the keyring's primary
	 * key and drop (count, log) what none of its keys opens.  The core's
	 * cfg->udp_mtu must leave KEYRING_OVERHEAD bytes for the seal. */
	struct keyring *keyring;
};

int swim_net_start(struct event_base *base, const struct swim_net_opts *o, struct swim_net **out,
		   struct sh_err *err);

/* Leave gracefully; done(arg) runs once the news has gone out (or after
 * 2 seconds at most).  The sockets stay open until swim_net_free(). */
void swim_net_leave(struct swim_net *n, void (*done)(void *arg), void *arg);

/* Log the traffic counters (one "swim: traffic: ..." line at info). */
void swim_net_log_traffic(struct swim_net *n);

/* Log the traffic counters and close everything. */
void swim_net_free(struct swim_net *n);

/* The core, for queries (members, stats).  Do not feed it directly. */
struct swim *swim_net_swim(struct swim_net *n);

#endif
