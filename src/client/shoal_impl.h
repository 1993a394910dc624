/*
 * shoal_impl: the handle and the helpers shared by shoal.c (connections,
 * frames, retries) and shoal_ops.c (the operations).  Internal to libshoal.
 */
#ifndef SHOAL_CLIENT_SHOAL_IMPL_H
#define SHOAL_CLIENT_SHOAL_IMPL_H

#include "shoal.h"

#include "net/frame.h"
#include "proto/shoal.pb-c.h"
#include "util/arena.h"

#include <sys/types.h>

struct shoal {
	char **addrs; /* the seeds, then leaders learned (at most MAX_ADDRS) */
	size_t n_addrs, cur;
	int fd;
	uint64_t role_at;  /* when the connected node was found to lead (0: ask before writing) */
	bool moved;        /* cur was advanced already for the next attempt */
	bool electing;     /* the last attempt met a leader named but gone: an election */
	char hint[304];    /* the leader a node named last (UNAVAILABLE), or "" */
	uint64_t deadline; /* the running call's (monotonic ns); 0 outside a call */
	uint64_t rng;      /* the back-off's jitter (xorshift) */
	/* the client session (doc/clients.md, "Exactly-once writes"): every
	 * write takes the next seq, and all attempts of it carry that seq */
	unsigned char client_id[16];
	uint64_t seq; /* the last taken */
	pid_t pid;    /* the process that drew it: a fork draws its own */
	struct frame_dec *dec;
	struct shoal_options o;
	uint64_t next_id;
	struct shoal_token last;
	char *api_key;                      /* a copy of the option's, or NULL */
	struct shoal_read_state read_state; /* of the last read reply */
	struct ssl_ctx_st *tls;             /* TLS on: the context (shoal_tls.c) */
	struct ssl_st *ssl;                 /* ... and the connection's */
	bool tls_refused;                   /* the node refused our certificate */
	bool fresh;                         /* nothing read on this connection yet */
	char *server_name;                  /* a copy of tls_server_name, or NULL */
	char *read_addr;                    /* a copy of the option's, or NULL */
	shoal *reader;                      /* reads elsewhere (shoal_read.c), or NULL */
	char msg[512];
};

struct cl_buf {
	uint8_t *data;
	size_t len, cap, off;
};

typedef void (*cl_frame_fn)(void *arg, const struct frame_hdr *h, const uint8_t *body);

int cl_fail(shoal *c, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int cl_buf_reserve(struct cl_buf *b, size_t more);
int cl_frame(shoal *c, struct cl_buf *b, uint64_t id, uint16_t method, const ProtobufCMessage *m);
/* shoal_open without connecting. */
int cl_open(const char *addrs, const struct shoal_options *opts, shoal **out);
/* Reads (shoal_read.c): is method one; the handle to send it through (c
 * itself unless options.read_from says otherwise), NULL when it cannot
 * be opened (c's message says why). */
bool cl_is_read(uint16_t method);
shoal *cl_reader(shoal *c);
int cl_connect(shoal *c);
/* Milliseconds left before the running call's deadline (at least 1), or
 * the handle's timeout outside a call. */
int cl_left_ms(const shoal *c);
/* Before writes: on a new connection, ask the node (cluster status)
 * whether it leads; one that names another leader is left for it (doc:
 * shoal.h, "Leader following").  A transport failure is returned. */
int cl_follow_leader(shoal *c, uint64_t deadline_ns);
void cl_disconnect(shoal *c);
int cl_write_some(shoal *c, struct cl_buf *b, bool *blocked);
int cl_read_some(shoal *c, cl_frame_fn on_frame, void *arg);
int cl_wait(shoal *c, bool want_write, uint64_t deadline_ns);
/* poll(2) fd for events until deadline: revents, 0 at the deadline, -1. */
int cl_poll(int fd, short events, uint64_t deadline_ns);
/* TLS (shoal_tls.c): the context from the options (nothing without a CA),
 * the handshake on the connected c->fd, I/O as send/recv return, data
 * decrypted and not read yet, the end of a connection and of the handle. */
int cl_tls_init(shoal *c);
int cl_tls_handshake(shoal *c, const char *addr, const char *host, uint64_t deadline_ns);
ssize_t cl_tls_send(shoal *c, const void *buf, size_t len);
ssize_t cl_tls_recv(shoal *c, void *buf, size_t len);
bool cl_tls_pending(const shoal *c);
void cl_tls_close(shoal *c);
void cl_tls_free(shoal *c);
int cl_status(shoal *c, int status, const uint8_t *body, size_t len);
/* Keep a read reply's ReadState (NULL: none sent). */
void cl_read_state(shoal *c, const Shoal__ReadState *rs);
/* One request with retries (doc: shoal.h "Retries"); *resp in a. */
int cl_call(shoal *c, uint16_t method, const ProtobufCMessage *req, bool write, struct arena *a,
	    const ProtobufCMessageDescriptor *rd, ProtobufCMessage **resp);

/* The pipelining engine: n requests, up to depth in flight; build(i)
 * encodes request i (method and message) into b; reply(i, ...) gets each
 * reply.  A transport error ends it (returned). */
struct cl_pipe {
	size_t n, depth;
	bool write; /* writes: sent to the leader (cl_follow_leader) */
	/* request i, frame id; low: the first request not answered yet */
	int (*build)(shoal *c, void *arg, size_t i, size_t low, struct cl_buf *b, uint64_t id);
	void (*reply)(void *arg, size_t i, int status, const uint8_t *body, size_t len,
		      uint64_t latency_ns);
	void *arg;
};
int cl_pipeline(shoal *c, const struct cl_pipe *p);
/* The session fields of a write (seq; the client knows every outcome
 * below done_below). */
void cl_session(shoal *c, Shoal__WriteOptions *w, uint64_t seq, uint64_t done_below);
/* A new session (cl_open; after SESSION_EXPIRED; in a forked child). */
void cl_new_session(shoal *c);
/* Do the handle's writes carry a session?  With an ack level of quorum or
 * all, or the server's default: a write with a session is acknowledged at
 * quorum at least (doc/clients.md); writes at leader and one go without,
 * fast, and are not sent again after an unknown outcome.  Draws a new
 * session in a forked child, whose writes must not share the parent's
 * numbers. */
bool cl_sessions(shoal *c);

#endif
