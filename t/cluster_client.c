/*
 * cluster_client: the history recorder of t/cluster_history.sh (issue 10):
 * concurrent client sessions against a real cluster, each operation
 * written to a history file in t/hist/hist.h's text form, which
 * t/hist/histcheck then checks.
 *
 *   cluster_client run BINARY REST COLL HISTORY [OPTIONS]
 *       Sessions (threads; each a `client` number of the history) do a
 *       random mix until --seconds pass, the --stop file appears or
 *       --max-ops operations were started: upserts of one point whose
 *       payload {"v": V} carries a version unique in the whole run
 *       (V = client << 40 | seq), at every ack level; deletes; a few
 *       upserts of the wrong dimension (a definite failure: they must
 *       never be seen); reads of one point by id at every consistency
 *       level, read_your_writes with the token of the session's latest
 *       acknowledged write.  Each operation goes to a random node, over
 *       libshoal or over REST (cluster_http.h), one request, no retry.
 *       Keys: operation number n (over all sessions) uses key
 *       1 + (n / (W * K)) * W + rand % W, so W keys are busy at a time,
 *       each for about K operations (--keys W, --ops-per-key K): every
 *       key sees contention and tens of operations, never hundreds.
 *   cluster_client final BINARY REST COLL HISTORY [OPTIONS]
 *       Read every key of HISTORY (1 .. its largest) at strong from every
 *       node, alternating the frontends, and append the reads to HISTORY
 *       (a failed read is tried again, up to 5 times); exit 1 when a key
 *       could not be read from some node.
 *
 * BINARY and REST are the client and REST addresses (HOST:PORT) of nodes
 * 0, 1, ... separated by commas, in the same order; NODE in the history
 * is that position.  One summary line goes to stdout.
 *
 * Times are CLOCK_MONOTONIC microseconds, taken just before a request is
 * sent (before connecting, when a connection is made) and just after its
 * answer: the clock every process on the machine shares, so the final
 * reads of another process are ordered correctly after the run.
 *
 * Outcomes (hist.h: a FAIL must be certain, so anything in doubt is
 * UNKNOWN):
 *   OK       the answer was OK; writes record their token;
 *   FAIL     writes: nothing reached a server (connection refused or timed
 *            out, or sending failed before the request's last byte), or
 *            the answer says the write never entered a log and never will:
 *            INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS,
 *            FAILED_PRECONDITION, UNAUTHENTICATED (checked before the log)
 *            and UNAVAILABLE — the protocol's promise (doc/replication.md,
 *            "Writes and acks"; src/cluster/node_write.c: SH_EUNAVAIL and
 *            SH_ESHUTDOWN only for writes never proposed nor handed to a
 *            leader, or whose index was committed with another entry;
 *            src/net/api.c maps them to UNAVAILABLE), which the checker
 *            thereby verifies (a FAIL write seen by a read is a violation);
 *            reads: any error answer;
 *   UNKNOWN  writes: no answer (timeout, connection lost after sending),
 *            OUTCOME_UNKNOWN, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED,
 *            INTERNAL, anything else; reads: no answer;
 *   LOST     a read_your_writes read answered FAILED_PRECONDITION (the
 *            token's write was lost, or never issued: src/net/api.c
 *            on_barrier, the only FAILED_PRECONDITION of a read).
 * libshoal says how far a failed call went only in its message
 * (src/client/shoal.c): "cannot connect to" and "lost while sending" mean
 * not sent; "no reply from", "connection to ... lost", "poll:" and "bad
 * reply" mean no answer.
 *
 * Options: --sessions N (4), --seconds S (20), --stop FILE, --timeout MS
 * (per request, 1500), --connect-ms MS (300), --keys W (4),
 * --ops-per-key K (30), --seed N (from the clock; printed), --first-client
 * C (1; must stay below 4096 so that versions stay exact in JSON),
 * --max-ops N (1000000), --think-ms MS (most between two operations of a
 * session, 2), --pad N (N bytes of padding in every upsert's payload, at
 * most 4096: bigger log entries, so that small log segments fill and
 * compaction drops them; 0), --retries N (0: one attempt at the node
 * drawn; N: libshoal's retries with every node as a seed from that one,
 * so that a write whose attempt may have applied is sent again with its
 * session — doc/clients.md, "Exactly-once writes" — and a call is one
 * operation of the history from its first attempt to its answer).
 */
#include "build.h"

#include "cluster_http.h"
#include "hist/hist.h"
#include "shoal.h"

#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_NODES    16
#define MAX_SESSIONS 64
#define DIM          3
#define SLACK_MS     500 /* a REST client waits this much past the server's deadline */
#define MAX_PAD      4096

struct cfg {
	const char *coll, *history, *stop;
	size_t n_nodes;
	char *bin[MAX_NODES], *rest[MAX_NODES];
	unsigned sessions, keys, ops_per_key, first_client;
	int seconds, timeout_ms, connect_ms, think_ms;
	int retries; /* --retries: libshoal's, with every node as a seed */
	uint64_t seed, max_ops;
	char pad[MAX_PAD + 1]; /* --pad N: N 'x' in every upsert's payload */
};

/* Counts for the summary line. */
struct counts {
	uint64_t ops, outcome[5], rest, wr_ok[5], rd_ok[5];
};

struct run {
	const struct cfg *cfg;
	FILE *hist;
	pthread_mutex_t mu; /* hist and total */
	struct counts total;
	atomic_uint_fast64_t started;
	uint64_t end_us;
	uint64_t max_key; /* final: the keys to read */
	uint64_t final_missing;
};

struct conn {
	shoal *h;
	struct http_conn http;
};

struct session {
	struct run *run;
	uint32_t client;
	uint64_t rng, seq;
	struct shoal_token token; /* of the session's latest acknowledged write */
	uint64_t last_key;
	struct conn conns[MAX_NODES];
	struct counts n;
	pthread_t th;
};

/* What a request came to. */
struct answer {
	int transport; /* HTTP_ANSWERED, HTTP_NOT_SENT, HTTP_NO_ANSWER */
	int status;    /* a shoal_status when answered */
	char msg[256];
	uint64_t term, index; /* a write's token */
	uint64_t value;       /* a read's version, 0: absent */
	bool bad;             /* an OK answer that did not parse */
};

/* ------------------------------------------------------------ helpers */

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static uint64_t rnd(struct session *s)
{
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return s->rng * 0x2545f4914f6cdd1dull;
}

static bool starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int status_of_name(const char *name)
{
	for (int i = 0; i <= SHOAL_OUTCOME_UNKNOWN; i++)
		if (strcmp(shoal_status_name(i), name) == 0)
			return i;
	return SHOAL_INTERNAL;
}

/* ------------------------------------------------------------ outcomes */

static uint8_t write_outcome(const struct answer *a)
{
	if (a->transport == HTTP_NOT_SENT)
		return HIST_FAIL;
	if (a->transport == HTTP_NO_ANSWER)
		return HIST_UNKNOWN;
	switch (a->status) {
	case SHOAL_OK: return HIST_OK;
	case SHOAL_INVALID_ARGUMENT:
	case SHOAL_NOT_FOUND:
	case SHOAL_ALREADY_EXISTS:
	case SHOAL_FAILED_PRECONDITION:
	case SHOAL_UNAUTHENTICATED:
	case SHOAL_UNAVAILABLE: return HIST_FAIL;
	default: return HIST_UNKNOWN;
	}
}

static uint8_t read_outcome(const struct answer *a, uint8_t level)
{
	if (a->transport != HTTP_ANSWERED)
		return HIST_UNKNOWN;
	if (a->status == SHOAL_OK)
		return a->bad ? HIST_UNKNOWN : HIST_OK;
	if (a->status == SHOAL_FAILED_PRECONDITION && level == HIST_RYW)
		return HIST_LOST;
	return HIST_FAIL;
}

/* How far a failed libshoal call went, from its message. */
static int bin_transport(int rv, const char *msg)
{
	if (rv == SHOAL_OK)
		return HTTP_ANSWERED;
	if (rv == SHOAL_OUTCOME_UNKNOWN || rv == SHOAL_DEADLINE_EXCEEDED)
		return HTTP_NO_ANSWER; /* whatever the last attempt's message says */
	if (starts(msg, "cannot connect to ") ||
	    (starts(msg, "connection to ") && strstr(msg, " lost while sending: ") != NULL))
		return HTTP_NOT_SENT;
	if (starts(msg, "no reply from ") || starts(msg, "connection to ") ||
	    starts(msg, "poll: ") || starts(msg, "bad reply from "))
		return HTTP_NO_ANSWER;
	return HTTP_ANSWERED;
}

/* The version in a payload {"v": V}; false when there is none. */
static bool version_of(const json_t *payload, uint64_t *v)
{
	const json_t *j = json_object_get(payload, "v");

	if (!json_is_integer(j) || json_integer_value(j) <= 0)
		return false;
	*v = (uint64_t)json_integer_value(j);
	return true;
}

/* ------------------------------------------------------------ binary */

/* node's address; with --retries every node's from it on (seeds: libshoal
 * follows the leader and sends a write whose attempt may have applied
 * again, with its session). */
static const char *seeds_from(const struct cfg *cfg, size_t node, char *buf, size_t size)
{
	size_t len = 0;

	if (cfg->retries == 0)
		return cfg->bin[node];
	buf[0] = '\0';
	for (size_t k = 0; k < cfg->n_nodes && len < size; k++)
		len += (size_t)snprintf(buf + len, size - len, "%s%s", k ? "," : "",
					cfg->bin[(node + k) % cfg->n_nodes]);
	return buf;
}

static shoal *bin_handle(struct session *s, size_t node)
{
	struct conn *c = &s->conns[node];
	struct shoal_options o;
	char addrs[MAX_NODES * 64];

	if (c->h != NULL)
		return c->h;
	shoal_options_init(&o);
	o.timeout_ms = s->run->cfg->timeout_ms;
	o.connect_timeout_ms = s->run->cfg->connect_ms;
	o.retries = s->run->cfg->retries;
	shoal_open(seeds_from(s->run->cfg, node, addrs, sizeof addrs), &o, &c->h);
	return c->h; /* it connects again on use */
}

static void bin_finish(shoal *h, int rv, struct answer *a)
{
	a->status = rv;
	snprintf(a->msg, sizeof a->msg, "%s", rv == SHOAL_OK ? "" : shoal_errmsg(h));
	a->transport = bin_transport(rv, a->msg);
}

static void bin_write(struct session *s, shoal *h, const struct hist_op *op, bool invalid,
		      struct answer *a)
{
	const char *coll = s->run->cfg->coll;
	float v[DIM] = {1.0f, (float)(op->key % 97), 2.0f};
	char payload[MAX_PAD + 64];
	struct shoal_point p = {op->key, v, invalid ? DIM - 1 : DIM, payload, 0};
	struct shoal_token tok = {0, 0};
	int rv;

	snprintf(payload, sizeof payload, "{\"v\":%" PRIu64 ",\"pad\":\"%s\"}", op->value,
		 s->run->cfg->pad);
	shoal_set_ack(h, (enum shoal_ack)op->level);
	if (op->kind == HIST_WRITE)
		rv = shoal_upsert(h, coll, &p, 1, &tok);
	else
		rv = shoal_delete(h, coll, &op->key, 1, NULL, &tok);
	bin_finish(h, rv, a);
	a->term = tok.term;
	a->index = tok.index;
}

static void bin_read(struct session *s, shoal *h, const struct hist_op *op, struct answer *a)
{
	struct shoal_results r = {0};
	json_t *j = NULL;
	int rv;

	shoal_set_consistency(h, (enum shoal_consistency)op->level);
	shoal_set_token(h, (struct shoal_token){op->term, op->index});
	rv = shoal_get(h, s->run->cfg->coll, &op->key, 1, SHOAL_WITH_PAYLOAD, &r);
	bin_finish(h, rv, a);
	if (rv != SHOAL_OK)
		return;
	if (r.n == 0)
		a->value = 0;
	else if (r.n != 1 || r.v[0].id != op->key || r.v[0].payload == NULL ||
		 (j = json_loads(r.v[0].payload, 0, NULL)) == NULL || !version_of(j, &a->value))
		a->bad = true;
	json_decref(j);
	shoal_results_free(&r);
}

/* ------------------------------------------------------------ REST */

static void rest_call(struct session *s, size_t node, const char *method, const char *path,
		      const char *body, struct answer *a, json_t **result)
{
	struct conn *c = &s->conns[node];
	const struct cfg *cfg = s->run->cfg;
	char *resp = NULL;
	int code = 0;
	json_t *j, *st;

	*result = NULL;
	if (c->http.port == 0 && http_init(&c->http, cfg->rest[node]) != 0) {
		a->transport = HTTP_NOT_SENT;
		snprintf(a->msg, sizeof a->msg, "bad REST address %s", cfg->rest[node]);
		return;
	}
	a->transport = http_request(&c->http, method, path, body, cfg->timeout_ms + SLACK_MS,
				    cfg->connect_ms, &code, &resp, a->msg, sizeof a->msg);
	if (a->transport != HTTP_ANSWERED)
		return;
	j = json_loads(resp, 0, NULL);
	free(resp);
	st = json_object_get(j, "status");
	if (code == 200 && json_object_get(j, "result") != NULL) {
		a->status = SHOAL_OK;
		*result = json_incref(json_object_get(j, "result"));
	} else if (json_is_string(json_object_get(st, "code"))) {
		/* Qdrant's error shape, shoal's status name (doc/qdrant.md) */
		a->status = status_of_name(json_string_value(json_object_get(st, "code")));
		snprintf(a->msg, sizeof a->msg, "%s",
			 json_string_value(json_object_get(st, "error"))
				 ? json_string_value(json_object_get(st, "error"))
				 : "");
		if (a->status == SHOAL_OK)
			a->status = SHOAL_INTERNAL;
	} else {
		a->status = SHOAL_INTERNAL; /* evhttp's own answer: in doubt */
		snprintf(a->msg, sizeof a->msg, "HTTP %d without a JSON status", code);
	}
	json_decref(j);
}

static const char *ack_name(uint8_t level)
{
	static const char *const names[] = {"?", "leader", "one", "quorum", "all"};

	return names[level <= 4 ? level : 0];
}

static const char *read_name(uint8_t level)
{
	static const char *const names[] = {"?", "eventual", "read_your_writes", "strong",
					    "quorum"};

	return names[level <= 4 ? level : 0];
}

static void rest_write(struct session *s, size_t node, const struct hist_op *op, bool invalid,
		       struct answer *a)
{
	const struct cfg *cfg = s->run->cfg;
	char path[256], body[MAX_PAD + 256];
	json_t *res, *tok;

	if (op->kind == HIST_WRITE) {
		snprintf(path, sizeof path, "/collections/%s/points?ack=%s&timeout_ms=%d",
			 cfg->coll, ack_name(op->level), cfg->timeout_ms);
		snprintf(body, sizeof body,
			 "{\"points\":[{\"id\":%" PRIu64 ",\"vector\":[1,%" PRIu64 "%s],"
			 "\"payload\":{\"v\":%" PRIu64 ",\"pad\":\"%s\"}}]}",
			 op->key, op->key % 97, invalid ? "" : ",2", op->value, cfg->pad);
		rest_call(s, node, "PUT", path, body, a, &res);
	} else {
		snprintf(path, sizeof path, "/collections/%s/points/delete?ack=%s&timeout_ms=%d",
			 cfg->coll, ack_name(op->level), cfg->timeout_ms);
		snprintf(body, sizeof body, "{\"points\":[%" PRIu64 "]}", op->key);
		rest_call(s, node, "POST", path, body, a, &res);
	}
	tok = json_object_get(res, "token");
	if (res != NULL && (!json_is_integer(json_object_get(tok, "term")) ||
			    !json_is_integer(json_object_get(tok, "index")))) {
		a->status = SHOAL_INTERNAL; /* OK without a token: in doubt */
		snprintf(a->msg, sizeof a->msg, "an OK answer without a token");
	} else if (res != NULL) {
		a->term = (uint64_t)json_integer_value(json_object_get(tok, "term"));
		a->index = (uint64_t)json_integer_value(json_object_get(tok, "index"));
	}
	json_decref(res);
}

static void rest_read(struct session *s, size_t node, const struct hist_op *op, struct answer *a)
{
	const struct cfg *cfg = s->run->cfg;
	char path[256], body[128];
	json_t *res, *pts, *p;

	snprintf(path, sizeof path,
		 "/collections/%s/points?consistency=%s&timeout_ms=%d&token=%" PRIu64 ":%" PRIu64,
		 cfg->coll, read_name(op->level), cfg->timeout_ms, op->term, op->index);
	snprintf(body, sizeof body, "{\"ids\":[%" PRIu64 "],\"with_payload\":true}", op->key);
	rest_call(s, node, "POST", path, body, a, &res);
	if (res == NULL)
		return;
	pts = res; /* Qdrant's retrieve: the result is the array of points */
	p = json_array_get(pts, 0);
	if (json_is_array(pts) && json_array_size(pts) == 0)
		a->value = 0;
	else if (json_array_size(pts) != 1 || !json_is_integer(json_object_get(p, "id")) ||
		 (uint64_t)json_integer_value(json_object_get(p, "id")) != op->key ||
		 !version_of(json_object_get(p, "payload"), &a->value))
		a->bad = true;
	json_decref(res);
}

/* ------------------------------------------------------------ recording */

static void record(struct session *s, struct hist_op *op, bool rest)
{
	struct run *r = s->run;

	s->n.ops++;
	s->n.outcome[op->outcome]++;
	s->n.rest += rest;
	if (op->outcome == HIST_OK && op->kind == HIST_READ)
		s->n.rd_ok[op->level]++;
	else if (op->outcome == HIST_OK)
		s->n.wr_ok[op->level]++;
	pthread_mutex_lock(&r->mu);
	hist_write_op(r->hist, op);
	pthread_mutex_unlock(&r->mu);
}

/* One line on stderr per operation that did not succeed, for the test's
 * diagnostics. */
static void log_failure(const struct hist_op *op, bool rest, const struct answer *a)
{
	static const char *const kinds[] = {"?", "write", "delete", "read"};
	const char *how = a->transport == HTTP_NOT_SENT    ? "not sent"
			  : a->transport == HTTP_NO_ANSWER ? "no answer"
							   : shoal_status_name(a->status);

	if (a->bad)
		how = "an OK answer that does not parse";
	fprintf(stderr,
		"%" PRIu64 " client %" PRIu32 " key %" PRIu64 " %s %s %s node %" PRIu32
		": %s: %s: %s\n",
		op->invoke, op->client, op->key, rest ? "rest" : "binary", kinds[op->kind],
		hist_level_name(op->kind, op->level), op->node, hist_outcome_name(op->outcome), how,
		a->msg);
}

/* Run op (invoke set here) on node over the frontend chosen, and record
 * it; returns the outcome. */
static uint8_t execute(struct session *s, struct hist_op *op, size_t node, bool rest, bool invalid)
{
	struct answer a = {0};
	shoal *h = rest ? NULL : bin_handle(s, node);

	op->node = (uint32_t)node;
	op->invoke = now_us();
	if (!rest && h == NULL) {
		a.transport = HTTP_NOT_SENT; /* out of memory: nothing sent */
	} else if (op->kind == HIST_READ) {
		rest ? rest_read(s, node, op, &a) : bin_read(s, h, op, &a);
	} else {
		rest ? rest_write(s, node, op, invalid, &a) : bin_write(s, h, op, invalid, &a);
	}
	op->complete = a.transport == HTTP_NO_ANSWER ? HIST_NEVER : now_us();
	if (op->kind == HIST_READ) {
		op->outcome = read_outcome(&a, op->level);
		op->value = op->outcome == HIST_OK ? a.value : 0;
	} else {
		op->outcome = write_outcome(&a);
		op->term = op->outcome == HIST_OK ? a.term : 0;
		op->index = op->outcome == HIST_OK ? a.index : 0;
	}
	if (a.bad || op->outcome != HIST_OK)
		log_failure(op, rest, &a);
	record(s, op, rest);
	return op->outcome;
}

/* ------------------------------------------------------------ sessions */

static uint64_t pick_key(struct session *s)
{
	const struct cfg *c = s->run->cfg;
	uint64_t n = atomic_fetch_add(&s->run->started, 1);
	uint64_t window = n / ((uint64_t)c->keys * c->ops_per_key);

	return 1 + window * c->keys + rnd(s) % c->keys;
}

static void one_op(struct session *s)
{
	const struct cfg *c = s->run->cfg;
	struct hist_op op = {.client = s->client, .key = pick_key(s)};
	size_t node = rnd(s) % c->n_nodes;
	bool rest = rnd(s) & 1, invalid = false;
	unsigned r = (unsigned)(rnd(s) % 100);

	if (r < 50) {
		op.kind = r < 38 ? HIST_WRITE : r < 48 ? HIST_DELETE : HIST_WRITE;
		invalid = r >= 48;
		op.level = (uint8_t)(1 + rnd(s) % 4);
		op.value = (uint64_t)s->client << 40 | ++s->seq;
	} else {
		op.kind = HIST_READ;
		op.level = (uint8_t)(1 + rnd(s) % 4);
		if (op.level == HIST_RYW) {
			op.term = s->token.term;
			op.index = s->token.index;
			if (s->last_key != 0 && (rnd(s) & 1))
				op.key = s->last_key;
		}
	}
	if (execute(s, &op, node, rest, invalid) == HIST_OK && op.kind != HIST_READ) {
		s->token = (struct shoal_token){op.term, op.index};
		s->last_key = op.key;
	} else if (op.outcome == HIST_FAIL && op.kind != HIST_READ && !invalid) {
		sleep_ms(20); /* a node down refuses at once: do not spin */
	}
}

static bool run_over(const struct run *r)
{
	const struct cfg *c = r->cfg;

	return now_us() >= r->end_us || atomic_load(&r->started) >= c->max_ops ||
	       (c->stop != NULL && access(c->stop, F_OK) == 0);
}

static void *session_main(void *arg)
{
	struct session *s = arg;

	while (!run_over(s->run)) {
		one_op(s);
		if (s->run->cfg->think_ms > 0)
			sleep_ms((int)(rnd(s) % (uint64_t)(s->run->cfg->think_ms + 1)));
	}
	return NULL;
}

/* Final: every key from one node, at strong; a failed read is tried again. */
static void *final_main(void *arg)
{
	struct session *s = arg;
	size_t node = s->client - s->run->cfg->first_client;

	for (uint64_t k = 1; k <= s->run->max_key; k++) {
		bool ok = false;

		for (int tries = 0; !ok && tries < 5 && now_us() < s->run->end_us; tries++) {
			struct hist_op op = {.client = s->client,
					     .kind = HIST_READ,
					     .key = k,
					     .level = HIST_STRONG};

			if (tries > 0)
				sleep_ms(100 * tries);
			ok = execute(s, &op, node, (k + node) & 1, false) == HIST_OK;
		}
		if (!ok) {
			pthread_mutex_lock(&s->run->mu);
			s->run->final_missing++;
			pthread_mutex_unlock(&s->run->mu);
		}
	}
	return NULL;
}

static void sessions_close(struct session *s)
{
	for (size_t i = 0; i < MAX_NODES; i++) {
		shoal_close(s->conns[i].h);
		http_close(&s->conns[i].http);
	}
}

static void add_counts(struct counts *t, const struct counts *n)
{
	t->ops += n->ops;
	t->rest += n->rest;
	for (int i = 0; i < 5; i++) {
		t->outcome[i] += n->outcome[i];
		t->wr_ok[i] += n->wr_ok[i];
		t->rd_ok[i] += n->rd_ok[i];
	}
}

/* Run n sessions of fn; 0, or -1 when a thread could not start. */
static int run_sessions(struct run *r, unsigned n, void *(*fn)(void *))
{
	struct session *ss = calloc(n, sizeof *ss);
	unsigned started = 0;

	if (ss == NULL)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		ss[i].run = r;
		ss[i].client = r->cfg->first_client + i;
		ss[i].rng = (r->cfg->seed ^ (0x9e3779b97f4a7c15ull * (ss[i].client + 1))) | 1;
		for (size_t k = 0; k < MAX_NODES; k++)
			ss[i].conns[k].http.fd = -1;
		if (pthread_create(&ss[i].th, NULL, fn, &ss[i]) != 0)
			break;
		started++;
	}
	for (unsigned i = 0; i < started; i++) {
		pthread_join(ss[i].th, NULL);
		add_counts(&r->total, &ss[i].n);
		sessions_close(&ss[i]);
	}
	free(ss);
	return started == n ? 0 : -1;
}

/* ------------------------------------------------------------ main */

static int usage(void)
{
	fprintf(stderr, "usage: cluster_client run|final BINARY_ADDRS REST_ADDRS COLL HISTORY "
			"[--sessions N] [--seconds S] [--stop FILE] [--timeout MS] "
			"[--connect-ms MS] [--keys W] [--ops-per-key K] [--seed N] "
			"[--first-client C] [--max-ops N] [--think-ms MS] [--pad N]\n");
	return 2;
}

static size_t split(char *list, char **out)
{
	size_t n = 0;
	char *save = NULL;

	for (char *a = strtok_r(list, ",", &save); a != NULL && n < MAX_NODES;
	     a = strtok_r(NULL, ",", &save))
		out[n++] = a;
	return n;
}

static int parse_opt(struct cfg *c, const char *a, const char *v)
{
	unsigned long long x = strtoull(v, NULL, 10);

	if (strcmp(a, "--sessions") == 0 && x >= 1 && x <= MAX_SESSIONS)
		c->sessions = (unsigned)x;
	else if (strcmp(a, "--seconds") == 0)
		c->seconds = (int)x;
	else if (strcmp(a, "--stop") == 0)
		c->stop = v;
	else if (strcmp(a, "--timeout") == 0 && x >= 1)
		c->timeout_ms = (int)x;
	else if (strcmp(a, "--connect-ms") == 0 && x >= 1)
		c->connect_ms = (int)x;
	else if (strcmp(a, "--keys") == 0 && x >= 1)
		c->keys = (unsigned)x;
	else if (strcmp(a, "--ops-per-key") == 0 && x >= 1)
		c->ops_per_key = (unsigned)x;
	else if (strcmp(a, "--seed") == 0)
		c->seed = x;
	else if (strcmp(a, "--first-client") == 0 && x >= 1 && x + MAX_SESSIONS < 4096)
		c->first_client = (unsigned)x;
	else if (strcmp(a, "--max-ops") == 0)
		c->max_ops = x;
	else if (strcmp(a, "--think-ms") == 0)
		c->think_ms = (int)x;
	else if (strcmp(a, "--retries") == 0 && x <= 100)
		c->retries = (int)x;
	else if (strcmp(a, "--pad") == 0 && x <= MAX_PAD)
		memset(c->pad, 'x', x);
	else
		return -1;
	return 0;
}

static int parse(int argc, char **argv, struct cfg *c, char *bins, char *rests)
{
	*c = (struct cfg){.coll = argv[4],
			  .history = argv[5],
			  .sessions = 4,
			  .keys = 4,
			  .ops_per_key = 30,
			  .first_client = 1,
			  .seconds = 20,
			  .timeout_ms = 1500,
			  .connect_ms = 300,
			  .think_ms = 2,
			  .seed = now_us(),
			  .max_ops = 1000000};
	c->n_nodes = split(bins, c->bin);
	if (split(rests, c->rest) != c->n_nodes || c->n_nodes == 0)
		return -1;
	for (int i = 6; i < argc; i += 2)
		if (i + 1 >= argc || parse_opt(c, argv[i], argv[i + 1]) != 0)
			return -1;
	return 0;
}

/* The largest key of a history file (0: none). */
static uint64_t largest_key(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[512];
	uint64_t max = 0, key;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "op %*u %*c %" SCNu64, &key) == 1 && key > max)
			max = key;
	fclose(f);
	return max;
}

static void summary(const char *mode, const struct run *r, uint64_t ms)
{
	const struct counts *t = &r->total;

	printf("%s: ops %" PRIu64 " ok %" PRIu64 " fail %" PRIu64 " unknown %" PRIu64
	       " lost %" PRIu64 " rest %" PRIu64 " keys %" PRIu64 " ops/s %" PRIu64
	       " writes ok leader/one/quorum/all %" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64
	       " reads ok eventual/ryw/strong/quorum %" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64
	       " seed %" PRIu64 "\n",
	       mode, t->ops, t->outcome[HIST_OK], t->outcome[HIST_FAIL], t->outcome[HIST_UNKNOWN],
	       t->outcome[HIST_LOST], t->rest, r->max_key, ms ? t->ops * 1000 / ms : 0, t->wr_ok[1],
	       t->wr_ok[2], t->wr_ok[3], t->wr_ok[4], t->rd_ok[1], t->rd_ok[2], t->rd_ok[3],
	       t->rd_ok[4], r->cfg->seed);
}

int main(int argc, char **argv)
{
	struct cfg c;
	struct run r = {.cfg = &c};
	bool final;
	uint64_t t0 = now_us();
	int rv;

	signal(SIGPIPE, SIG_IGN);
	setvbuf(stderr, NULL, _IOLBF, 0);
	if (argc < 6 || parse(argc, argv, &c, argv[2], argv[3]) != 0)
		return usage();
	final = strcmp(argv[1], "final") == 0;
	if (!final && strcmp(argv[1], "run") != 0)
		return usage();
	if (final)
		r.max_key = largest_key(c.history);
	if ((r.hist = fopen(c.history, final ? "a" : "w")) == NULL) {
		perror(c.history);
		return 2;
	}
	pthread_mutex_init(&r.mu, NULL);
	fprintf(r.hist, "# cluster_client %s: %zu nodes, seed %" PRIu64 "\n", argv[1], c.n_nodes,
		c.seed);
	r.end_us = t0 + (uint64_t)c.seconds * 1000000;
	if (final)
		rv = run_sessions(&r, (unsigned)c.n_nodes, final_main);
	else
		rv = run_sessions(&r, c.sessions, session_main);
	if (!final)
		r.max_key = 1 + (atomic_load(&r.started) / ((uint64_t)c.keys * c.ops_per_key) + 1) *
					c.keys;
	summary(argv[1], &r, (now_us() - t0) / 1000);
	if (fclose(r.hist) != 0 || rv != 0) {
		perror(c.history);
		return 2;
	}
	if (final && r.final_missing > 0) {
		printf("final: %" PRIu64 " reads failed 5 times\n", r.final_missing);
		return 1;
	}
	return 0;
}
