/*
 * rest: the REST API on libevent's evhttp (doc/protocol.md, "REST"):
 * JSON requests turned into the binary protocol's request messages and
 * handed to the api (api.h), whose replies are turned back into JSON; plus
 * GET /metrics (Prometheus text), the health checks GET /livez (alias
 * /healthz) and /readyz, and the status page GET /ui.
 *
 * evhttp reads a whole request (body at most max_body_bytes) before the
 * handler runs; the handler parses and starts the op and returns; the reply
 * is sent from the op's completion.  If the client went away meanwhile,
 * evhttp frees the request when the reply is sent (it has no connection).
 *
 * Threads: the loop thread only.
 */
#ifndef SHOAL_NET_REST_H
#define SHOAL_NET_REST_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "net/api.h"
#include "util/err.h"

struct rest_opts {
	struct event_base *base;
	struct api *api;
	const char *address;
	int port;
	size_t max_body_bytes;
	uint32_t request_timeout_ms;
	uint64_t node_id;
	const char *node_name;
	bool metrics_open;      /* /metrics without an API key (security.metrics_open) */
	struct tls_server *tls; /* optional: HTTPS (tls.h) */
};

struct rest;
struct tls_server;

int rest_new(const struct rest_opts *o, struct rest **out, struct sh_err *err);
void rest_free(struct rest *r);

#endif
