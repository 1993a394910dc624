/*
 * api: the client operations of DESIGN.md section 5, behind both the
 * binary protocol (server.c) and REST (rest.c).
 *
 * A frontend turns what it received into a struct op — the method, the
 * decoded request message in the op's arena, the deadline — and calls
 * api_start(); the api answers by calling op->done(op) on the loop thread,
 * exactly once, possibly before api_start returns.  op->status is then a
 * Shoal__StatusCode: OK with op->resp (the method's response message, in
 * the arena), else op->err.msg says why.  The frontend then encodes the
 * reply and frees the op with api_op_free().
 *
 * Ping and cluster status are answered on the loop; writes go to the node
 * (cluster/node.h: the leader's log, forwarded from a follower) and are
 * answered once their ack level holds; reads wait for the node's barrier
 * of their consistency level (on the loop, without blocking it), then run
 * on the search pool.
 *
 * Threads: everything here on the loop thread, except the read functions
 * (api_read.c) that the pool runs.
 */
#ifndef SHOAL_NET_API_H
#define SHOAL_NET_API_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>

#include "cluster/node.h"
#include "cluster/swim.h"
#include "net/auth.h"
#include "net/health.h"
#include "net/metrics.h"
#include "net/pool.h"
#include "proto/shoal.pb-c.h"
#include "storage/db.h"
#include "util/arena.h"
#include "util/err.h"

#define API_MAX_K      10000
#define API_MAX_LIMIT  10000
#define API_MAX_METHOD SHOAL__METHOD__METHOD_KEYRING

struct api_opts {
	struct event_base *base; /* NULL: no loop (the simulator runs pool jobs inline) */
	struct db *db;
	uint64_t node_id;
	const char *node_name;
	const char *client_address; /* host:port, for cluster status */
	const char *rest_address;
	unsigned search_threads;
	uint32_t request_timeout_ms; /* default deadline */
	int default_consistency;     /* Shoal__Consistency, not DEFAULT */
	int default_ack;             /* Shoal__Ack, not DEFAULT */
	struct node *node;           /* replication: writes and read barriers */
	struct node_net *net;        /* its peer links, for /metrics (may be NULL) */
	struct health_opts health;   /* readiness (health.h) */
};

struct api;
struct keyring;
struct node_net;

struct op {
	struct api *api;
	uint16_t method;
	uint8_t frontend; /* METRICS_BINARY or METRICS_REST */
	int status;       /* Shoal__StatusCode once done */
	struct sh_err err;
	ProtobufCMessage *req;
	ProtobufCMessage *resp;
	uint64_t start_ns, deadline_ns;
	void (*done)(struct op *op);
	void *owner; /* the frontend's */
	uint64_t id; /* the frontend's */
	struct pool_job job;
	int ack;                 /* a write's Shoal__Ack */
	uint64_t leader;         /* UNAVAILABLE: the leader, when known */
	char leader_address[80]; /* ... and its client address */
	struct health_view rs;   /* a read: the node when it was dispatched */
	void *ctx;               /* the method's own (a snapshot's session) */
	struct arena arena;      /* last: it holds the inline block */
};

int api_new(const struct api_opts *o, struct api **out, struct sh_err *err);
/* Stop taking requests, finish the reads in flight (their done callbacks
 * run) and stop the pool: call before db_close(), which completes the
 * writes in flight. */
void api_quiesce(struct api *a);
void api_free(struct api *a);

/* A new op for method (checked by api_start), its deadline timeout_ms
 * from now (0: the default).  NULL when out of memory. */
struct op *api_op_new(struct api *a, uint16_t method, uint8_t frontend, uint32_t timeout_ms);
void api_op_free(struct op *op);
/* The request message type of a method (NULL: unknown method). */
const ProtobufCMessageDescriptor *api_request_desc(uint16_t method);
const char *api_method_name(uint16_t method);
/* A message of type desc, initialised, in op's arena (NULL: no memory). */
void *api_new_msg(struct op *op, const ProtobufCMessageDescriptor *desc);
/* Start op (op->req set); op->done is called when it is answered. */
void api_start(struct op *op);
/* Answer op with an error now (op->done runs). */
void api_fail(struct op *op, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Note an error of SH_E* code on op, its message and status, for the
 * answer it gets later (a job on a worker); returns code. */
int api_op_error(struct op *op, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* SH_E* code -> Shoal__StatusCode; and the status's name ("NOT_FOUND"). */
int api_status_of(int sh_code);
const char *api_status_name(int status);

struct metrics *api_metrics(struct api *a);
struct db *api_db(struct api *a);
struct node *api_node(struct api *a);
struct node_net *api_net(struct api *a);
/* API keys (auth.h): the keys to require from now on (NULL: none; the api
 * owns them and frees the previous ones).  Loop thread only. */
void api_set_auth(struct api *a, struct auth *auth);
bool api_auth_required(const struct api *a);
/* May a request with key[0..len) do what needs `need` (`what` names it in
 * the message)?  0 yes, else the Shoal__StatusCode to answer with msg;
 * failures are counted (api_auth_failures: missing, invalid, denied). */
int api_authorize(struct api *a, const char *key, size_t len, enum auth_role need, const char *what,
		  char *msg, size_t size);
void api_auth_failures(const struct api *a, uint64_t out[3]);
/* Set when the node is stopping: new requests are answered UNAVAILABLE. */
void api_set_stopping(struct api *a);
bool api_stopping(const struct api *a);
/* Readiness and lag now (health.h); sampled every 100 ms meanwhile. */
void api_health(struct api *a, struct health_view *v);

/* The read methods, run on a pool worker (api_read.c). */
void api_read_run(struct op *op);
/* The membership view cluster status reports (NULL: this node alone).
 * The api does not own it; unset it before freeing it. */
void api_set_membership(struct api *a, const struct swim *s);
const struct swim *api_membership(const struct api *a);
/* The gossip keyring (cluster/keyring.h) METHOD_KEYRING changes and
 * whose key file it rewrites (NULL: none; the api owns neither; unset it
 * before freeing it); and the method, on the loop (api_keys.c). */
struct api_keyring {
	struct keyring *kr;
	char *path;
	/* after a key was removed: close the links it may have keyed */
	void (*removed)(void *arg);
	void *arg;
};
int api_set_keyring(struct api *a, const struct api_keyring *k);
struct keyring *api_keyring_of(const struct api *a);
void api_keyring(struct op *op, const struct api_keyring *k);
/* Cluster status, on the loop (api_cluster.c). */
void api_cluster_status(struct op *op, const struct api_opts *o, const struct swim *members);
/* Record op's metrics and call op->done: how every op ends. */
void api_complete(struct op *op);
/* This node's id and its cluster's (0: none yet). */
void api_ids(struct api *a, uint64_t *node_id, uint64_t *cluster_id);

/* Backups, METHOD_SNAPSHOT (api_snap.c): the sessions of one api. */
#define API_SNAP_SESSIONS 4
#define API_SNAP_IDLE_MS  60000
struct api_snaps;
/* seed: where session ids start (random, so that they differ across restarts). */
int api_snaps_new(struct api_snaps **out, uint64_t seed);
void api_snaps_free(struct api_snaps *ss);
/* Start a snapshot request (op->req a SnapshotRequest); its jobs run on pool. */
void api_snap_start(struct op *op, struct api_snaps *ss, struct pool *pool);

#endif
