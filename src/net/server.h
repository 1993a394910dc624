/*
 * server: the binary protocol's listener and connections (doc/protocol.md,
 * "Frames"; STYLE.md "The event loop").
 *
 * Each connection has a state (reading, paused by back-pressure, closing
 * after a fatal protocol error, closed while requests are still in
 * flight), handles at most SERVER_FRAMES_PER_EVENT frames per read event
 * (fairness), stops reading while it has limits.max_inflight requests in
 * flight or more than limits.max_output_bytes of unread replies, and is
 * closed when idle, when a frame takes too long to arrive, or when its
 * replies do not drain.  Requests go to the api (api.h); replies are
 * written in completion order.
 *
 * Threads: the loop thread only.
 */
#ifndef SHOAL_NET_SERVER_H
#define SHOAL_NET_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "net/api.h"
#include "util/err.h"

#define SERVER_FRAMES_PER_EVENT 128

struct server_opts {
	struct event_base *base;
	struct api *api;
	const char *address;
	int port;
	size_t max_frame_bytes;
	size_t max_output_bytes;
	size_t max_connections;
	size_t max_inflight;
	uint32_t idle_timeout_ms;
	uint32_t request_timeout_ms;
	struct tls_server *tls; /* optional: TLS on the port (tls.h) */
};

struct server;
struct tls_server;

/* Bind and listen (SH_EIO with the reason when the port is taken). */
int server_new(const struct server_opts *o, struct server **out, struct sh_err *err);
/* Stop accepting; existing connections go on. */
void server_stop_listening(struct server *s);
/* Close every connection and free. */
void server_free(struct server *s);
size_t server_connections(const struct server *s);

#endif
