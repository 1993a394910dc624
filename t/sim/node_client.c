/*
 * node_client: the whole-node simulator's clients (node_world.h).
 *
 * Each client does one operation at a time through a node's API, as a
 * connection to that node would: an upsert of one point whose payload is
 * {"v": VERSION} (versions unique in the run), a delete, or a get of one
 * point at a consistency level, and records it in the history.  How an
 * answer is classified (doc/consistency.md, "Outcomes"):
 *
 *   OK                                   the write happened / the read saw it
 *   UNAVAILABLE, INVALID_ARGUMENT,       a definite failure: the write was
 *   NOT_FOUND, ALREADY_EXISTS,           not applied and never will be
 *   FAILED_PRECONDITION, RESOURCE_EXHAUSTED
 *   anything else (DEADLINE_EXCEEDED,    the outcome is unknown
 *   OUTCOME_UNKNOWN, INTERNAL), or no
 *   answer because the node crashed
 *
 * and a read_your_writes read answered FAILED_PRECONDITION was told its
 * write was lost.
 */
#include "build.h"

#include "sim/node_world_impl.h"

#include "storage/le.h"
#include "storage/session.h"
#include "util/alloc.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define TIMEOUT_MS 2000
#define THINK_US   20000

static char nw_coll[] = NW_COLL;

static struct sh_rand *rnd(struct nworld *w)
{
	return sim_rand(w->sim);
}

static bool definite_failure(int status)
{
	switch (status) {
	case SHOAL__STATUS_CODE__UNAVAILABLE:
	case SHOAL__STATUS_CODE__INVALID_ARGUMENT:
	case SHOAL__STATUS_CODE__NOT_FOUND:
	case SHOAL__STATUS_CODE__ALREADY_EXISTS:
	case SHOAL__STATUS_CODE__FAILED_PRECONDITION:
	case SHOAL__STATUS_CODE__RESOURCE_EXHAUSTED: return true;
	default: return false;
	}
}

/* The version in a payload {"v":N}; 0 when there is none. */
static uint64_t version_of(const uint8_t *p, size_t len)
{
	char buf[64];
	const char *v;

	if (p == NULL || len == 0 || len >= sizeof buf)
		return 0;
	memcpy(buf, p, len);
	buf[len] = '\0';
	v = strstr(buf, "\"v\":");
	return v != NULL ? strtoull(v + 4, NULL, 10) : 0;
}

/* ------------------------------------------------------------ requests */

/* A client's session id: its number, then a tag. */
static void client_id(const struct nw_client *c, uint8_t id[SESSION_ID_BYTES])
{
	memset(id, 0, SESSION_ID_BYTES);
	le32_put(id, (uint32_t)c->id + 1);
	memcpy(id + 4, "simclient", 9);
}

/* Every attempt of a write carries its seq; the write before it is
 * answered (a client does one operation at a time). */
static Shoal__WriteOptions *write_opts(struct op *op, const struct nw_client *c)
{
	Shoal__WriteOptions *wo = api_new_msg(op, &shoal__write_options__descriptor);
	uint8_t *id = arena_alloc(&op->arena, SESSION_ID_BYTES);

	if (wo == NULL || id == NULL)
		return NULL;
	wo->ack = (Shoal__Ack)c->level;
	if (c->level < HIST_ACK_QUORUM || c->no_session)
		return wo; /* as the clients: sessions at quorum and all only */
	client_id(c, id);
	wo->client_id = (ProtobufCBinaryData){SESSION_ID_BYTES, id};
	wo->seq = wo->done_below = c->seq;
	wo->retry = c->maybe;
	return wo;
}

static ProtobufCMessage *upsert_req(struct op *op, struct nw_client *c)
{
	Shoal__UpsertRequest *r = api_new_msg(op, &shoal__upsert_request__descriptor);
	Shoal__Point *p = api_new_msg(op, &shoal__point__descriptor);
	Shoal__Point **pv = arena_alloc(&op->arena, sizeof *pv);
	float *vec = arena_alloc(&op->arena, NW_DIM * sizeof *vec);
	char *payload = arena_alloc(&op->arena, 32);

	if (r == NULL || p == NULL || pv == NULL || vec == NULL || payload == NULL)
		return NULL;
	for (int i = 0; i < NW_DIM; i++)
		vec[i] = (float)((c->value * 7 + (uint64_t)i) % 1000) / 10.0f;
	snprintf(payload, 32, "{\"v\":%" PRIu64 "}", c->value);
	p->id = c->key;
	p->n_vector = NW_DIM;
	p->vector = vec;
	p->payload = (ProtobufCBinaryData){strlen(payload), (uint8_t *)payload};
	pv[0] = p;
	r->collection = nw_coll;
	r->n_points = 1;
	r->points = pv;
	r->write = write_opts(op, c);
	return &r->base;
}

static ProtobufCMessage *delete_req(struct op *op, struct nw_client *c)
{
	Shoal__DeleteRequest *r = api_new_msg(op, &shoal__delete_request__descriptor);
	uint64_t *ids = arena_alloc(&op->arena, sizeof *ids);

	if (r == NULL || ids == NULL)
		return NULL;
	ids[0] = c->key;
	r->collection = nw_coll;
	r->n_ids = 1;
	r->ids = ids;
	r->write = write_opts(op, c);
	return &r->base;
}

static ProtobufCMessage *get_req(struct op *op, struct nw_client *c)
{
	Shoal__GetRequest *r = api_new_msg(op, &shoal__get_request__descriptor);
	Shoal__ReadOptions *ro = api_new_msg(op, &shoal__read_options__descriptor);
	uint64_t *ids = arena_alloc(&op->arena, sizeof *ids);

	if (r == NULL || ro == NULL || ids == NULL)
		return NULL;
	ids[0] = c->key;
	r->collection = nw_coll;
	r->n_ids = 1;
	r->ids = ids;
	r->with_payload = true;
	ro->consistency = (Shoal__Consistency)c->level;
	if (c->level == HIST_RYW) {
		Shoal__Token *t = api_new_msg(op, &shoal__token__descriptor);

		if (t == NULL)
			return NULL;
		t->term = c->token_term;
		t->index = c->token_index;
		ro->token = t;
	}
	r->read = ro;
	return &r->base;
}

/* ------------------------------------------------------------ answers */

static void next_soon(struct nworld *w, struct nw_client *c);
static bool retries(const struct nworld *w, const struct nw_client *c);
static void retry(struct nworld *w, struct nw_client *c);
static void final_next(struct nworld *w, struct nw_client *c);
static void setup(struct sim *sim, void *arg);

/* A write acknowledged at quorum or all by the leader of its term, whose
 * disk is not full, has been applied there
 * (doc/replication.md, "Writes and acks"): an eventual read on the leader
 * sees it. */
static void check_applied(struct nworld *w, const struct nw_client *c, uint64_t term,
			  uint64_t index)
{
	struct nw_inst *in = nw_inst(w, c->node);
	struct node_status st = {0};

	if (in == NULL || (c->level != HIST_ACK_QUORUM && c->level != HIST_ACK_ALL))
		return;
	node_status(in->node, &st);
	if (st.role != NULL && strcmp(st.role, "leader") == 0 && st.term == term && !st.disk_full &&
	    st.applied_index < index)
		nw_violation(w,
			     "n%d acknowledged a write at %s (entry %" PRIu64
			     ") before applying it (applied %" PRIu64 ")",
			     c->node + 1, c->level == HIST_ACK_QUORUM ? "quorum" : "all", index,
			     st.applied_index);
}

static void record_answer(struct nworld *w, struct nw_client *c, struct op *op)
{
	uint64_t now = sim_now(w->sim), value = 0, term = 0, index = 0;
	uint8_t outcome;

	if (op->status == SHOAL__STATUS_CODE__OK) {
		outcome = HIST_OK;
		if (c->kind == HIST_READ) {
			const Shoal__PointsResponse *r = (const void *)op->resp;

			if (r->n_points > 0)
				value = version_of(r->points[0]->payload.data,
						   r->points[0]->payload.len);
		} else {
			const Shoal__WriteResponse *r = (const void *)op->resp;

			term = r->token ? r->token->term : 0;
			index = r->token ? r->token->index : 0;
			c->token_term = term;
			c->token_index = index;
			w->res->writes_ok++;
			check_applied(w, c, term, index);
		}
		w->res->reads_ok += c->kind == HIST_READ;
	} else if (c->kind == HIST_READ && c->level == HIST_RYW &&
		   op->status == SHOAL__STATUS_CODE__FAILED_PRECONDITION) {
		outcome = HIST_LOST;
		w->res->lost_answers++;
	} else if (definite_failure(op->status) && !c->maybe) {
		/* after an attempt that may have applied, a failure says
		 * nothing of that one: unknown */
		outcome = HIST_FAIL;
	} else {
		outcome = HIST_UNKNOWN;
		w->res->writes_unknown += c->kind != HIST_READ;
	}
	hist_complete(w->hist, c->hist_i, outcome == HIST_UNKNOWN ? HIST_NEVER : now, outcome,
		      value, term, index);
	c->outcome = outcome;
	c->got_value = value;
	c->got_term = term;
	c->got_index = index;
}

static void on_done(struct op *op)
{
	struct nw_client *c = op->owner;
	struct nworld *w = c->w;

	if (c->orphan) { /* its node crashed: recorded as unknown already */
		c->orphan = false;
		api_op_free(op);
		return;
	}
	c->op = NULL;
	if (op->status != SHOAL__STATUS_CODE__OK && !definite_failure(op->status) &&
	    retries(w, c)) {
		api_op_free(op);
		retry(w, c);
		return;
	}
	record_answer(w, c, op);
	c->status = op->status;
	api_op_free(op);
	c->busy = false;
	if (c->final)
		final_next(w, c);
	else if (!c->script)
		next_soon(w, c);
}

/* ------------------------------------------------------------ operations */

static int pick_node(struct nworld *w, struct nw_client *c)
{
	int up[NW_MAX_NODES], n = 0;

	if (c->home >= 0 && nw_inst(w, c->home) != NULL && sh_rand_below(rnd(w), 4) != 0)
		return c->home;
	for (int i = 0; i < w->n; i++)
		if (nw_inst(w, i) != NULL)
			up[n++] = i;
	return n > 0 ? up[sh_rand_below(rnd(w), (uint64_t)n)] : -1;
}

static void choose(struct nworld *w, struct nw_client *c)
{
	uint64_t r = sh_rand_below(rnd(w), 100);
	static const uint8_t acks[] = {HIST_ACK_LEADER, HIST_ACK_ONE, HIST_ACK_QUORUM,
				       HIST_ACK_QUORUM, HIST_ACK_ALL};

	c->key = 1 + sh_rand_below(rnd(w), (uint64_t)w->o.keys);
	if (r < 40) {
		c->kind = HIST_WRITE;
		c->level = acks[sh_rand_below(rnd(w), sizeof acks)];
		c->value = w->next_version++;
	} else if (r < 50) {
		c->kind = HIST_DELETE;
		c->level = acks[sh_rand_below(rnd(w), sizeof acks)];
		c->value = w->next_version++;
	} else {
		c->kind = HIST_READ;
		c->level = (uint8_t)(1 + sh_rand_below(rnd(w), 4));
		if (c->level == HIST_RYW && c->token_index == 0)
			c->level = HIST_STRONG;
		c->value = 0;
	}
}

static void issue(struct nworld *w, struct nw_client *c, int node);

/* A stopped node (SIGSTOP) reads no request: it waits in its socket. */
static void issue_later(struct sim *sim, void *arg)
{
	struct nw_client *c = arg;

	(void)sim;
	c->busy = false;
	if (nw_inst(c->w, c->node) != NULL)
		issue(c->w, c, c->node);
	else if (!c->final && !c->script)
		next_soon(c->w, c);
}

/* Send c's operation (an attempt of it) to node, which is up. */
static void send_op(struct nworld *w, struct nw_client *c, int node)
{
	struct nw_inst *in = nw_inst(w, node);
	int prev = nw_enter(w, node);
	uint16_t method = c->kind == HIST_READ    ? SHOAL__METHOD__METHOD_GET
			  : c->kind == HIST_WRITE ? SHOAL__METHOD__METHOD_UPSERT
						  : SHOAL__METHOD__METHOD_DELETE;
	struct op *op = api_op_new(in->api, method, METRICS_BINARY,
				   c->timeout_ms ? c->timeout_ms : TIMEOUT_MS);

	if (op == NULL)
		abort();
	op->req = c->kind == HIST_READ    ? get_req(op, c)
		  : c->kind == HIST_WRITE ? upsert_req(op, c)
					  : delete_req(op, c);
	if (op->req == NULL)
		abort();
	op->done = on_done;
	op->owner = c;
	c->op = op;
	c->node = node;
	c->busy = true;
	api_start(op);
	nw_leave(w, prev);
	nw_after(w, node);
}

static void issue(struct nworld *w, struct nw_client *c, int node)
{
	uint64_t until = sim_paused_until(w->sim, node);
	struct hist_op h = {.client = (uint32_t)c->id,
			    .kind = c->kind,
			    .level = c->level,
			    .outcome = HIST_UNKNOWN,
			    .key = c->key,
			    .value = c->value,
			    .invoke = sim_now(w->sim),
			    .complete = HIST_NEVER,
			    .node = (uint32_t)node};

	if (until != 0) {
		c->node = node;
		c->busy = true;
		sim_at(w->sim, until, issue_later, c);
		return;
	}
	if (c->kind != HIST_READ && c->level >= HIST_ACK_QUORUM) { /* the session's next */
		c->seq++;
		c->tries = 0;
	}
	c->maybe = false;
	if (c->kind == HIST_READ && c->level == HIST_RYW) {
		h.term = c->token_term;
		h.index = c->token_index;
	}
	if ((c->hist_i = hist_add(w->hist, &h)) < 0)
		abort();
	w->res->ops++;
	send_op(w, c, node);
}

/* ------------------------------------------------------------ retries */

/* A write whose outcome is unknown is sent again, with the same seq, to a
 * node picked anew — up to RETRIES times while the load runs — as
 * libshoal does; its session makes it apply once whatever happened to the
 * first attempt (the history records one operation from the first
 * attempt to the last answer). */
#define RETRIES  2
#define RETRY_US (50 * SIM_MS)

static bool retries(const struct nworld *w, const struct nw_client *c)
{
	return c->kind != HIST_READ && c->kind != 0 && c->level >= HIST_ACK_QUORUM && !c->script &&
	       !c->final && w->load && c->tries < RETRIES;
}

static void retry_now(struct sim *sim, void *arg)
{
	struct nw_client *c = arg;
	struct nworld *w = c->w;
	int node = pick_node(w, c);

	(void)sim;
	if (node < 0 || sim_paused_until(w->sim, node) != 0) {
		if (node < 0 || !retries(w, c)) { /* give up: unknown */
			c->busy = false;
			hist_complete(w->hist, c->hist_i, HIST_NEVER, HIST_UNKNOWN, 0, 0, 0);
			w->res->writes_unknown++;
			next_soon(w, c);
			return;
		}
		c->tries++;
		sim_at(w->sim, sim_now(w->sim) + RETRY_US, retry_now, c);
		return;
	}
	w->res->retries++;
	send_op(w, c, node);
}

static void retry(struct nworld *w, struct nw_client *c)
{
	c->maybe = true;
	c->tries++;
	c->busy = true;
	sim_at(w->sim, sim_now(w->sim) + RETRY_US, retry_now, c);
}

static void next_op(struct sim *sim, void *arg)
{
	struct nw_client *c = arg;
	struct nworld *w = c->w;
	int node;

	(void)sim;
	if (c->busy || !w->load)
		return;
	if ((node = pick_node(w, c)) < 0) {
		next_soon(w, c);
		return;
	}
	choose(w, c);
	issue(w, c, node);
}

static void next_soon(struct nworld *w, struct nw_client *c)
{
	if (w->load)
		sim_at(w->sim, sim_now(w->sim) + 1 + sh_rand_below(rnd(w), THINK_US), next_op, c);
}

static void orphan(struct nworld *w, struct nw_client *c, int i);

void nwc_on_crash(struct nworld *w, int i)
{
	for (int k = 0; k < w->n_clients; k++)
		orphan(w, &w->clients[k], i);
	for (int k = 0; k < NW_SCRIPT_CLIENTS; k++)
		orphan(w, &w->script[k], i);
}

/* Node i crashed: c's operation there is never answered. */
static void orphan(struct nworld *w, struct nw_client *c, int i)
{
	if (!c->busy || c->node != i || c->op == NULL)
		return;
	c->orphan = true;
	c->op = NULL;
	c->busy = false;
	if (c->kind == 0) { /* creating the collection */
		sim_at(w->sim, sim_now(w->sim) + 200 * SIM_MS, setup, c);
		return;
	}
	if (retries(w, c)) {
		retry(w, c);
		return;
	}
	hist_complete(w->hist, c->hist_i, HIST_NEVER, HIST_UNKNOWN, 0, 0, 0);
	w->res->writes_unknown += c->kind != HIST_READ;
	c->outcome = HIST_UNKNOWN;
	if (!c->final && !c->script)
		next_soon(w, c);
}

bool nwc_idle(struct nworld *w)
{
	for (int k = 0; k < w->n_clients; k++)
		if (w->clients[k].busy)
			return false;
	for (int k = 0; k < NW_SCRIPT_CLIENTS; k++)
		if (w->script[k].busy)
			return false;
	return true;
}

/* ------------------------------------------------------------ the end */

/* A final client writes once at quorum through its node — after the
 * faults healed the cluster must take writes, not only answer reads — and
 * then reads key after key at strong there. */
static void final_next(struct nworld *w, struct nw_client *c)
{
	if (nw_inst(w, c->home) == NULL)
		return;
	if (!c->final_wrote) {
		c->final_wrote = true;
		c->kind = HIST_WRITE;
		c->level = HIST_ACK_QUORUM;
		c->key = 1 + (uint64_t)c->home % (uint64_t)w->o.keys;
		c->value = w->next_version++;
		issue(w, c, c->home);
		return;
	}
	if (c->kind == HIST_WRITE) {
		if (c->outcome != HIST_OK)
			nw_violation(w,
				     "after the faults healed a quorum write through n%d failed "
				     "(status %d)",
				     c->home, c->status);
		c->key = 0;
	}
	if (c->key >= (uint64_t)w->o.keys)
		return;
	c->key++;
	c->kind = HIST_READ;
	c->level = HIST_STRONG;
	c->value = 0;
	issue(w, c, c->home);
}

void nwc_final_reads(struct nworld *w)
{
	for (int i = 0; i < w->n && w->n_clients < NW_MAX_CLIENTS; i++) {
		struct nw_client *c = &w->clients[w->n_clients];

		*c = (struct nw_client){.w = w, .id = 100 + i, .final = true, .home = i};
		w->n_clients++;
		final_next(w, c);
	}
}

/* ------------------------------------------------------------ the collection */

static void on_created(struct op *op)
{
	struct nw_client *c = op->owner;
	struct nworld *w = c->w;
	bool orphan = c->orphan;

	c->orphan = false;
	if (orphan) { /* its node crashed; setup was scheduled again then */
		api_op_free(op);
		return;
	}
	c->busy = false;
	c->op = NULL;
	if (op->status == SHOAL__STATUS_CODE__OK ||
	    op->status == SHOAL__STATUS_CODE__ALREADY_EXISTS) {
		w->coll_ready = true;
		w->load = !w->settling && w->o.scenario == NULL;
		for (int k = 0; k < w->n_clients; k++)
			next_soon(w, &w->clients[k]);
	} else {
		sim_at(w->sim, sim_now(w->sim) + 200 * SIM_MS, setup, c);
	}
	api_op_free(op);
}

/* Create the collection through any node, until it exists. */
static void setup(struct sim *sim, void *arg)
{
	struct nw_client *c = arg;
	struct nworld *w = c->w;
	int node = pick_node(w, c), prev;
	Shoal__CreateCollectionRequest *r;
	struct op *op;

	if (w->coll_ready || c->busy)
		return;
	if (node < 0) {
		sim_at(sim, sim_now(sim) + 200 * SIM_MS, setup, c);
		return;
	}
	prev = nw_enter(w, node);
	op = api_op_new(nw_inst(w, node)->api, SHOAL__METHOD__METHOD_CREATE_COLLECTION,
			METRICS_BINARY, TIMEOUT_MS);
	r = op ? api_new_msg(op, &shoal__create_collection_request__descriptor) : NULL;
	if (r == NULL)
		abort();
	r->name = nw_coll;
	r->dim = NW_DIM;
	r->m = 4;
	r->ef_construction = 16;
	op->req = &r->base;
	op->done = on_created;
	op->owner = c;
	c->op = op;
	c->node = node;
	c->kind = 0; /* not in the history */
	c->busy = true;
	api_start(op);
	nw_leave(w, prev);
	nw_after(w, node);
}

void nwc_init(struct nworld *w)
{
	int n = w->o.clients ? w->o.clients : 3;

	if (w->o.keys == 0)
		w->o.keys = 12;
	w->next_version = 1;
	w->n_clients = n + 1 < 8 ? n + 1 : 8;
	for (int k = 0; k < w->n_clients; k++)
		w->clients[k] = (struct nw_client){.w = w, .id = k, .home = k % 2 ? k % w->n : -1};
}

void nwc_start(struct nworld *w)
{
	/* the last client creates the collection, then does as the others */
	sim_at(w->sim, 300 * SIM_MS, setup, &w->clients[w->n_clients - 1]);
}

void nwc_free(struct nworld *w)
{
	(void)w; /* operations are freed by the API when their node stops */
}

/* ------------------------------------------------------------ truth */

/* Entry index applied write seq of a client: no write applies twice. */
static void applied_once(struct nworld *w, const struct session_req *sr, uint64_t index)
{
	uint64_t key = (uint64_t)le32_get(sr->client) << 40 | sr->seq, *t;
	size_t i;

	if (2 * (w->n_seqs + 1) > w->cap_seqs) {
		size_t cap = w->cap_seqs ? 2 * w->cap_seqs : 1024;
		uint64_t *old = w->applied_seqs;

		if ((t = sh_calloc(cap, sizeof *t)) == NULL)
			abort();
		for (size_t k = 0; k < w->cap_seqs; k++)
			for (i = old[k] % cap; old[k] != 0; i = (i + 1) % cap)
				if (t[i] == 0) {
					t[i] = old[k];
					break;
				}
		sh_free(old);
		w->applied_seqs = t;
		w->cap_seqs = cap;
	}
	for (i = key % w->cap_seqs; w->applied_seqs[i] != 0; i = (i + 1) % w->cap_seqs)
		if (w->applied_seqs[i] == key) {
			nw_violation(w,
				     "entry %" PRIu64 " applied write %" PRIu64
				     " of client %u a second time",
				     index, sr->seq, (unsigned)le32_get(sr->client) - 1);
			return;
		}
	w->applied_seqs[i] = key;
	w->n_seqs++;
}

void nwc_truth(struct nworld *w, const struct wal_rec *r, int rv, bool skipped)
{
	struct hist_entry e = {.index = r->index, .term = r->term};
	struct entry en;
	struct sh_err err;
	bool any = false;

	w->res->dedups += skipped;
	if (rv == 0 && !skipped && (r->type == WAL_UPSERT || r->type == WAL_DELETE) &&
	    entry_decode(r, &en, &err) == 0) {
		if (en.session.set)
			applied_once(w, &en.session, r->index);
		for (size_t i = 0; i < en.n; i++) {
			e.kind = r->type == WAL_UPSERT ? HIST_WRITE : HIST_DELETE;
			e.key = r->type == WAL_UPSERT ? en.points[i].id : en.ids[i];
			e.value = r->type == WAL_UPSERT
					  ? version_of((const uint8_t *)en.points[i].payload,
						       en.points[i].payload_len)
					  : 0;
			if (hist_truth_add(w->hist, &e) != 0)
				nw_violation(w, "entry %" PRIu64 " applied out of order", r->index);
			any = true;
		}
		entry_release(&en);
	}
	if (!any && hist_truth_add(w->hist, &e) != 0)
		nw_violation(w, "entry %" PRIu64 " applied out of order", r->index);
}

/* ------------------------------------------------------------ cluster changes */

static void on_changed(struct op *op)
{
	sim_tracef(((struct nworld *)op->owner)->sim, -1, "cluster change: status %d %s",
		   op->status, op->status ? op->err.msg : "");
	api_op_free(op);
}

void nwc_change(struct nworld *w, int i, int kind, uint64_t id)
{
	struct nw_inst *in = nw_inst(w, i);
	int prev;
	Shoal__ClusterChangeRequest *r;
	struct op *op;

	if (in == NULL || sim_paused_until(w->sim, i) != 0)
		return; /* a stopped node takes no request now */
	prev = nw_enter(w, i);
	op = api_op_new(in->api, SHOAL__METHOD__METHOD_CLUSTER_CHANGE, METRICS_BINARY, TIMEOUT_MS);
	r = op ? api_new_msg(op, &shoal__cluster_change_request__descriptor) : NULL;
	if (r == NULL)
		abort();
	r->kind = (Shoal__ChangeKind)kind;
	r->node_id = id;
	op->req = &r->base;
	op->done = on_changed;
	op->owner = w;
	api_start(op);
	nw_leave(w, prev);
	nw_after(w, i);
}

/* Create or drop the collection "extra" through node i, and forget the
 * answer: collection changes interleaved with the writes exercise the
 * leader's DDL gate, snapshots of several collections and their replay. */
void nwc_ddl(struct nworld *w, int i, bool create)
{
	struct nw_inst *in = nw_inst(w, i);
	static char extra[] = "extra";
	ProtobufCMessage *m;
	struct op *op;
	int prev;

	if (in == NULL || sim_paused_until(w->sim, i) != 0)
		return;
	prev = nw_enter(w, i);
	op = api_op_new(in->api,
			create ? SHOAL__METHOD__METHOD_CREATE_COLLECTION
			       : SHOAL__METHOD__METHOD_DROP_COLLECTION,
			METRICS_BINARY, TIMEOUT_MS);
	m = op == NULL ? NULL
	    : create   ? api_new_msg(op, &shoal__create_collection_request__descriptor)
		       : api_new_msg(op, &shoal__drop_collection_request__descriptor);
	if (m == NULL)
		abort();
	if (create) {
		Shoal__CreateCollectionRequest *r = (void *)m;

		r->name = extra;
		r->dim = NW_DIM;
		r->m = 4;
		r->ef_construction = 16;
	} else {
		((Shoal__DropCollectionRequest *)m)->name = extra;
	}
	op->req = m;
	op->done = on_changed;
	op->owner = w;
	api_start(op);
	nw_leave(w, prev);
	nw_after(w, i);
}

/* ------------------------------------------------------------ scenarios */

struct nw_client *nwc_script_op(struct nworld *w, int k, int node, uint8_t kind, uint8_t level,
				uint64_t key, uint64_t token_term, uint64_t token_index)
{
	struct nw_client *c = &w->script[k];
	uint64_t seq = c->seq; /* its session goes on */

	*c = (struct nw_client){.w = w,
				.id = 200 + k,
				.seq = seq,
				.script = true,
				.home = node,
				.kind = kind,
				.level = level,
				.key = key,
				.token_term = token_term,
				.token_index = token_index,
				.timeout_ms = w->script_timeout_ms,
				.no_session = w->script_no_session,
				.value = kind == HIST_READ ? 0 : w->next_version++};
	issue(w, c, node);
	return c;
}
