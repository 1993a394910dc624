/*
 * node: the life cycle and the Raft driver (see node.h).
 *
 * Every input to the core (a message, the timer, durability from the log
 * writer) goes through the same steps: call the core, which talks back
 * through the raft_io callbacks; those only act on the storage and the
 * links, and queue the core's events; then node_flush() lets the core send
 * what is due, runs the queued events (which may call the core again: a
 * new leader proposes the writes that waited for it) until none is left,
 * and re-arms the timer.  So the core is never re-entered from inside
 * itself.
 */
#include "build.h"

#include "cluster/node_impl.h"

#include "storage/db.h"
#include "storage/hardstate.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/log.h"

#include <inttypes.h>
#include <string.h>

#define TICK_MS       20
#define HINT_EVERY_MS 1000
#define BOOT_RECORDS  4096
#define BOOT_BYTES    (16u << 20)
#define EVQ_MAX       1024

uint64_t node_now(void)
{
	return sh_clock_mono_ms();
}

/* ------------------------------------------------------------ membership view */

const struct swim_member *node_member(struct node *n, uint64_t id)
{
	return n->swim != NULL ? swim_member_find(n->swim, id) : NULL;
}

bool node_alive(struct node *n, uint64_t id)
{
	const struct swim_member *m = node_member(n, id);

	if (id == n->o.id)
		return true;
	return m != NULL && (m->state == SWIM_ALIVE || m->state == SWIM_SUSPECT);
}

const char *node_client_address(struct node *n, uint64_t id)
{
	const struct swim_member *m = node_member(n, id);

	return m != NULL ? m->addr[SWIM_ADDR_CLIENT] : "";
}

static const char *member_name(struct node *n, uint64_t id)
{
	const struct swim_member *m = node_member(n, id);

	return m != NULL && m->name != NULL ? m->name : "?";
}

const char *node_peer_name(struct node *n, uint64_t id)
{
	const struct swim_member *m = node_member(n, id);

	return m != NULL && m->name != NULL && m->name[0] != '\0' ? m->name : NULL;
}

const char *node_peer_address(struct node *n, uint64_t id)
{
	const struct swim_member *m = node_member(n, id);

	return m != NULL && m->addr[SWIM_ADDR_CLUSTER][0] ? m->addr[SWIM_ADDR_CLUSTER] : NULL;
}

void node_set_cluster_id(struct node *n, uint64_t id)
{
	struct sh_err err;

	if (n->cluster_id == id)
		return;
	if (sh_datadir_set_cluster_id(n->o.datadir, id, &err) != 0) {
		node_fail(n, &err); /* a node must not act for a cluster it may forget */
		return;
	}
	n->cluster_id = id;
	n->o.env.set_cluster_id(n->o.env.data, id);
	if (n->swim != NULL)
		swim_set_cluster_id(n->swim, id);
	LOG_INFO("raft", "this node belongs to cluster %016" PRIx64, id);
}

/* The term of entry index here.  An applied entry's is the applied
 * state's term history's (which snapshots carry, so it answers for
 * compacted entries too, and which a snapshot just installed has changed
 * before the log files are cut — the log may still hold the replaced
 * entry); a later one's, the Raft core's log's.  0 for an index beyond
 * what this node holds. */
uint64_t node_term_at(struct node *n, uint64_t index)
{
	uint64_t t = 0;

	if (index <= db_applied_index(n->o.db))
		t = store_term_at(db_store(n->o.db), index);
	if (t == 0)
		t = raft_term_at(n->raft, index);
	if (t == 0 && index > db_applied_index(n->o.db))
		t = db_term_at(n->o.db, index);
	return t;
}

/* ------------------------------------------------------------ events */

static struct raft_event *evq_push(struct node *n)
{
	if (n->n_evq == n->cap_evq) {
		size_t cap = n->cap_evq ? 2 * n->cap_evq : 16;
		struct raft_event *q =
			cap <= EVQ_MAX ? sh_reallocarray(n->evq, cap, sizeof *q) : NULL;

		if (q == NULL)
			return NULL;
		n->evq = q;
		n->cap_evq = cap;
	}
	return &n->evq[n->n_evq++];
}

static void on_role(struct node *n)
{
	enum raft_role role = raft_role(n->raft);
	uint64_t leader = raft_leader(n->raft), term = raft_term(n->raft);

	if (role == RAFT_CANDIDATE && n->last_role != RAFT_CANDIDATE)
		n->elections++;
	if (leader != n->last_leader && leader != RAFT_NONE) {
		n->leader_changes++;
		if (leader == n->o.id)
			LOG_INFO("raft", "elected leader for term %" PRIu64, term);
		else
			LOG_INFO("raft", "leader for term %" PRIu64 " is %016" PRIx64 " (%s)", term,
				 leader, member_name(n, leader));
	}
	n->last_leader = leader;
	n->last_role = role;
	db_set_leading(n->o.db, role == RAFT_LEADER);
	node_write_on_role(n);
	node_snap_on_role(n);
}

static void run_event(struct node *n, const struct raft_event *ev)
{
	switch (ev->type) {
	case RAFT_EV_ROLE: on_role(n); break;
	case RAFT_EV_READ_READY:
	case RAFT_EV_READ_FAILED: node_read_on_event(n, ev); break;
	case RAFT_EV_SNAPSHOT_NEEDED: node_snap_needed(n, ev->peer); break;
	case RAFT_EV_CONF: node_auto_on_progress(n, 0); break;
	case RAFT_EV_PROGRESS: node_auto_on_progress(n, ev->peer); break;
	}
}

/* ------------------------------------------------------------ raft_io */

static void io_send(void *data, uint64_t to, const struct raft_msg *m)
{
	struct node *n = data;
	uint8_t *hdr;
	size_t len;
	struct sh_err err;

	/* A failed node says nothing more: the hard state that a vote or an
	 * acknowledgement rests on may not be durable (issue 10 item 6). */
	if (n->failed)
		return;
	if (m->type == RAFT_MSG_APPEND && m->n > 0) {
		node_log_send_append(n, to, m);
		return;
	}
	if (raft_wire_header(m, n->cluster_id, &hdr, &len, &err) != 0) {
		LOG_ERROR("raft", "cannot encode a %s: %s", raft_msg_name(m->type), err.msg);
		return;
	}
	n->o.env.send(n->o.env.data, to, PEER_RAFT,
		      &(struct peer_part){hdr + 4, len - 4, NULL, NULL}, 1);
	sh_free(hdr);
}

static void io_save_hard_state(void *data, uint64_t term, uint64_t vote)
{
	struct node *n = data;
	struct sh_err err;

	if (hardstate_save(n->o.hs, term, vote, hardstate_commit(n->o.hs), true, &err) != 0)
		node_fail(n, &err);
}

static void io_truncate(void *data, uint64_t from)
{
	struct node *n = data;

	db_truncate(n->o.db, from - 1);
	node_log_truncate(n, from);
	if (n->ddl_upto >= from)
		n->ddl_upto = from - 1;
	node_write_on_truncate(n, from);
}

static void io_append(void *data, uint64_t first, size_t count)
{
	node_log_append_rx(data, first, count);
}

static void io_append_noop(void *data, uint64_t index, uint64_t term)
{
	struct node *n = data;
	struct sh_err err;

	if (node_log_append_own(n, term, index, WAL_NOOP, NULL, 0, &err) != 0)
		node_fail(n, &err);
}

static void io_commit(void *data, uint64_t index)
{
	struct node *n = data;

	db_commit(n->o.db, index);
	n->progress = true;
}

static void io_event(void *data, const struct raft_event *ev)
{
	struct node *n = data;
	struct raft_event *e = evq_push(n);

	if (e != NULL)
		*e = *ev;
	else
		LOG_ERROR("raft", "event queue full: %d dropped", (int)ev->type);
	if (ev->type == RAFT_EV_PROGRESS)
		n->progress = true;
}

static uint64_t io_random(void *data)
{
	return sh_rand_u64(&((struct node *)data)->rand);
}

/* ------------------------------------------------------------ driving */

void node_schedule(struct node *n)
{
	uint64_t at;

	if (n->raft == NULL || n->failed)
		return;
	at = raft_next_deadline(n->raft);
	if (n->tick_at < at)
		at = n->tick_at;
	if (at != n->wake_at) {
		n->wake_at = at;
		n->o.env.wake_at(n->o.env.data, at);
	}
}

void node_flush(struct node *n)
{
	for (int round = 0; round < 16 && n->raft != NULL && !n->failed; round++) {
		raft_flush(n->raft, node_now());
		if (n->n_evq == 0 && !n->progress)
			break;
		for (size_t i = 0; i < n->n_evq; i++) {
			struct raft_event ev = n->evq[i];

			run_event(n, &ev);
		}
		n->n_evq = 0;
		if (n->progress) {
			n->progress = false;
			node_write_on_progress(n);
		}
	}
	node_schedule(n);
}

/* A commit hint now and then (unsynced): a restart applies up to it at once. */
static void save_hint(struct node *n, uint64_t now)
{
	uint64_t applied = db_applied_index(n->o.db);
	struct sh_err err;

	if (applied == hardstate_commit(n->o.hs) || now - n->hint_at < HINT_EVERY_MS)
		return;
	n->hint_at = now;
	if (hardstate_save(n->o.hs, hardstate_term(n->o.hs), hardstate_vote(n->o.hs), applied,
			   false, &err) != 0)
		LOG_WARN("raft", "cannot save the commit hint: %s", err.msg);
}

/* Housekeeping, every TICK_MS: deadlines, the commit hint, the cache,
 * the leader's management round. */
static void tick(struct node *n, uint64_t now)
{
	node_write_expire(n, now);
	node_read_expire(n, now);
	if (n->failed)
		return;
	save_hint(n, now);
	node_full_tick(n, now);
	if (n->failed)
		return;
	node_log_trim(n);
	node_auto_tick(n, now);
}

void node_wake(struct node *n)
{
	uint64_t now = node_now();

	n->wake_at = UINT64_MAX;
	if (n->failed || n->raft == NULL)
		return;
	if (now >= n->tick_at) {
		n->tick_at = now + TICK_MS;
		tick(n, now);
		if (n->failed)
			return;
	}
	raft_tick(n->raft, now);
	node_flush(n);
}

void node_db_progress(struct node *n)
{
	struct sh_err err;
	uint64_t first;

	if (n->failed)
		return;
	if (db_failed(n->o.db, &err)) {
		node_fail(n, &err);
		return;
	}
	node_full_check(n);
	raft_persisted(n->raft, node_now(), db_durable_index(n->o.db));
	first = db_first_index(n->o.db);
	if (first > 1)
		raft_compacted(n->raft, first - 1);
	node_write_on_applied(n);
	node_read_on_applied(n);
	n->progress = true;
	node_flush(n);
}

void node_fail(struct node *n, const struct sh_err *why)
{
	if (n->failed)
		return;
	n->failed = true;
	LOG_ERROR("raft",
		  "storage failed, this node stops taking part in replication until it is "
		  "restarted: %s",
		  why->msg);
	node_write_free_all(n);
	node_read_free_all(n);
	node_snap_free_all(n);
	node_boot_failed(n);
}

/* ------------------------------------------------------------ peer frames */

static void recv_raft(struct node *n, uint64_t from, const uint8_t *buf, size_t len)
{
	struct raft_wire_msg m;
	struct sh_err err;

	if (raft_wire_decode(buf, len, n->o.max_frame, &m, &err) != 0) {
		LOG_WARN("raft", "from %016" PRIx64 ": %s", from, err.msg);
		n->o.env.drop(n->o.env.data, from);
		return;
	}
	if (m.msg.from == from && m.cluster_id == n->cluster_id) {
		n->rx = &m;
		raft_recv(n->raft, node_now(), &m.msg);
		n->rx = NULL;
	}
	raft_wire_free(&m);
}

void node_peer_recv(struct node *n, uint64_t from, enum peer_kind kind, const uint8_t *buf,
		    size_t len)
{
	if (n->failed || n->raft == NULL)
		return;
	switch (kind) {
	case PEER_RAFT: recv_raft(n, from, buf, len); break;
	case PEER_FORWARD: node_fwd_recv(n, from, buf, len); break;
	case PEER_FORWARDED: node_fwd_reply(n, from, buf, len); break;
	case PEER_SNAP: node_snap_recv_chunk(n, from, buf, len); break;
	case PEER_SNAP_ACK: node_snap_recv_ack(n, from, buf, len); break;
	}
	node_flush(n);
}

int node_send_msg(struct node *n, uint64_t to, enum peer_kind kind, const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = sh_malloc(len ? len : 1);
	int rv;

	if (buf == NULL)
		return SH_ENOMEM;
	protobuf_c_message_pack(m, buf);
	rv = n->o.env.send(n->o.env.data, to, kind, &(struct peer_part){buf, len, NULL, NULL}, 1);
	sh_free(buf);
	return rv;
}

void node_peer_writable(struct node *n, uint64_t to)
{
	if (!n->failed && n->raft != NULL)
		node_snap_writable(n, to);
}

void node_peer_gone(struct node *n, uint64_t from)
{
	if (n->failed || n->raft == NULL)
		return;
	raft_leader_link_lost(n->raft, node_now(), from);
	node_flush(n); /* the timer may be sooner now */
}

/* ------------------------------------------------------------ boot */

struct boot {
	struct raft_boot b;
	struct raft_entry_meta *metas;
	struct raft_conf *confs;
	struct raft_conf snap_conf;
};

/* Describe one record of the log for the core. */
static int boot_record(struct node *n, struct boot *bt, const struct wal_rec *r, size_t i,
		       struct sh_err *err)
{
	bt->metas[i] = (struct raft_entry_meta){r->term, r->type, r->len, NULL};
	if (r->type == WAL_CREATE || r->type == WAL_DROP)
		n->ddl_upto = r->index;
	if (r->type != RAFT_ENTRY_CONFIG)
		return 0;
	bt->metas[i].conf = &bt->confs[i];
	return raft_conf_decode(r->body, r->len, &bt->confs[i], err);
}

/* The log after the boot snapshot: a meta per entry. */
static int boot_log(struct node *n, struct boot *bt, struct sh_err *err)
{
	uint64_t from = bt->b.snap_index + 1, last = db_last_index(n->o.db);
	size_t count = last >= from ? last - from + 1 : 0, i = 0;

	bt->metas = sh_calloc(count ? count : 1, sizeof *bt->metas);
	bt->confs = sh_calloc(count ? count : 1, sizeof *bt->confs);
	if (bt->metas == NULL || bt->confs == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	while (i < count) {
		struct wal_buf *b;
		struct wal_rec r;
		size_t pos = 0;
		int rv = db_read(n->o.db, from + i, BOOT_RECORDS, BOOT_BYTES, &b, err);

		while (rv == 0 && wal_buf_next(b, &pos, &r) && i < count)
			rv = boot_record(n, bt, &r, i++, err);
		if (rv == 0)
			wal_buf_unref(b);
		else
			return rv;
	}
	bt->b.entries = bt->metas;
	bt->b.last_index = last;
	return 0;
}

static int boot_state(struct node *n, struct boot *bt, struct sh_err *err)
{
	const unsigned char *voters;
	size_t len;
	int rv;

	memset(bt, 0, sizeof *bt);
	db_boot_snapshot(n->o.db, &bt->b.snap_index, &bt->b.snap_term, &voters, &len);
	if (len > 0 && (rv = raft_conf_decode(voters, len, &bt->snap_conf, err)) != 0)
		return sh_err_wrap(err, rv, "the snapshot's voters");
	bt->b.snap_conf = len > 0 ? &bt->snap_conf : NULL;
	bt->b.term = hardstate_term(n->o.hs);
	bt->b.vote = hardstate_vote(n->o.hs);
	if ((rv = boot_log(n, bt, err)) != 0)
		return rv;
	bt->b.durable = db_durable_index(n->o.db);
	bt->b.commit = db_applied_index(n->o.db);
	return 0;
}

static int new_core(struct node *n, const struct raft_boot *b, struct sh_err *err)
{
	struct raft_io io = {n,           io_send,   io_save_hard_state,
			     io_truncate, io_append, io_append_noop,
			     io_commit,   io_event,  io_random};
	struct raft_opts ro = n->o.raft;

	ro.id = n->o.id;
	return raft_new(&ro, &io, b, node_now(), &n->raft, err);
}

/* A log that ends before the snapshot, or does not hold its last entry,
 * restarts after it (a crash after a snapshot from the leader was stored
 * and before the log was cut). */
static void cut_before_snapshot(struct node *n)
{
	uint64_t index, term, first, last;
	const unsigned char *v;
	size_t len;

	db_boot_snapshot(n->o.db, &index, &term, &v, &len);
	first = db_first_index(n->o.db);
	last = db_last_index(n->o.db);
	if (index == 0 ||
	    (last >= index && (first == index + 1 || db_term_at(n->o.db, index) == term)))
		return;
	LOG_INFO("raft", "the log does not continue snapshot %" PRIu64 ": it restarts after it",
		 index);
	db_reset(n->o.db, index + 1);
}

static int start_raft(struct node *n, struct sh_err *err)
{
	struct boot bt;
	int rv;

	cut_before_snapshot(n);
	if ((rv = boot_state(n, &bt, err)) == 0)
		rv = new_core(n, &bt.b, err);
	sh_free(bt.metas);
	sh_free(bt.confs);
	if (rv == 0)
		n->log.first = db_last_index(n->o.db) + 1;
	return rv;
}

/* The first entry of a new cluster: index 1, term 1 — or, over a snapshot
 * restored from a backup (shoald --restore, which holds no voters), the
 * entry after it in the snapshot's term, which every founder restored from
 * the same file writes alike. */
int node_boot_conf(struct node *n, const struct raft_conf *c, struct sh_err *err)
{
	uint64_t snap_index, snap_term;
	const unsigned char *v;
	size_t vlen;
	struct raft_entry_meta meta = {1, RAFT_ENTRY_CONFIG, 0, c};
	struct raft_boot b = {.term = hardstate_term(n->o.hs), .vote = hardstate_vote(n->o.hs)};
	uint8_t *body;
	size_t len;
	int rv;

	db_boot_snapshot(n->o.db, &snap_index, &snap_term, &v, &vlen);
	b.snap_index = snap_index;
	b.snap_term = snap_term;
	b.last_index = snap_index + 1;
	b.entries = &meta;
	b.commit = snap_index;
	if (snap_term > meta.term)
		meta.term = snap_term;
	if ((rv = raft_conf_encode(c, &body, &len, err)) != 0)
		return rv;
	meta.size = (uint32_t)len;
	rv = node_log_append_own(n, meta.term, b.last_index, WAL_VOTERS, body, len, err);
	sh_free(body);
	if (rv != 0)
		return rv;
	raft_free(n->raft);
	n->raft = NULL;
	n->n_evq = 0;
	if ((rv = new_core(n, &b, err)) != 0)
		return rv;
	n->last_role = raft_role(n->raft);
	return 0;
}

/* ------------------------------------------------------------ life */

static int seed_rand(struct node *n, struct sh_err *err)
{
	uint64_t seed = n->o.seed;
	int rv;

	if (seed == 0 && (rv = sh_rand_os(&seed)) != 0)
		return sh_err_set(err, rv, "raft: no entropy for the random generator");
	sh_rand_seed(&n->rand, seed);
	/* read and forward ids from a random point: an answer to a read or a
	 * write this node sent before it restarted never answers one it sends
	 * now (issue 10 item 8; for forwards, whole-node simulator seed
	 * 109398: a new write was given an old one's token) */
	n->next_read_id = sh_rand_u64(&n->rand) >> 2;
	n->next_fwd_id = sh_rand_u64(&n->rand) >> 2;
	return 0;
}

int node_new(const struct node_opts *o, struct node **out, struct sh_err *err)
{
	struct node *n = sh_calloc(1, sizeof *n);
	int rv;

	if (n == NULL || (n->name = sh_strdup(o->name)) == NULL) {
		sh_free(n);
		return sh_err_set(err, SH_ENOMEM, "raft: out of memory");
	}
	n->o = *o;
	n->o.name = n->name;
	n->wait_gate_tail = &n->wait_gate;
	n->wake_at = UINT64_MAX;
	n->tick_at = node_now() + TICK_MS;
	if ((rv = seed_rand(n, err)) != 0 || (rv = start_raft(n, err)) != 0) {
		node_free(n);
		return sh_err_wrap(err, rv, "raft");
	}
	n->cluster_id = sh_datadir_cluster_id(o->datadir);
	if ((rv = node_boot_load(n, err)) != 0) {
		node_free(n);
		return sh_err_wrap(err, rv, "bootstrap");
	}
	n->o.env.set_cluster_id(n->o.env.data, n->cluster_id);
	n->last_role = raft_role(n->raft);
	*out = n;
	return 0;
}

void node_start(struct node *n, struct swim *members)
{
	n->swim = members;
	if (n->cluster_id != 0)
		swim_set_cluster_id(members, n->cluster_id);
	n->started = true;
	node_auto_start(n);
	node_flush(n);
}

void node_swim_event(struct node *n, const struct swim_event *ev)
{
	if (n->failed || n->raft == NULL)
		return;
	if (ev->type == SWIM_EV_CLUSTER_ID && n->cluster_id == 0)
		node_set_cluster_id(n, ev->cluster_id);
	if ((ev->type == SWIM_EV_DEAD || ev->type == SWIM_EV_LEFT) && ev->member != NULL) {
		raft_peer_dead(n->raft, node_now(), ev->member->id);
		n->o.env.drop(n->o.env.data, ev->member->id);
	}
	node_auto_swim_event(n, ev);
	node_flush(n);
}

void node_free(struct node *n)
{
	if (n == NULL)
		return;
	node_write_free_all(n);
	node_fwd_free_all(n);
	node_read_free_all(n);
	node_snap_free_all(n);
	node_log_clear(n);
	raft_free(n->raft);
	sh_free(n->evq);
	sh_free(n->parts);
	sh_free(n->name);
	sh_free(n);
}

/* ------------------------------------------------------------ asked for */

void node_change(struct node *n, enum node_change what, uint64_t id, uint64_t deadline_ms,
		 node_done_fn done, void *arg)
{
	struct pwrite *w = sh_calloc(1, sizeof *w);

	if (w == NULL) {
		node_write_result(n, done, arg, SH_ENOMEM, NULL, 0, 0, 0);
		return;
	}
	*w = (struct pwrite){.n = n,
			     .ack = NODE_ACK_QUORUM,
			     .deadline = deadline_ms,
			     .done = done,
			     .arg = arg,
			     .change = (int)what,
			     .change_id = id};
	if (n->failed) {
		sh_free(w);
		node_write_result(n, done, arg, SH_ESHUTDOWN,
				  &(struct sh_err){SH_ESHUTDOWN, "this node's storage failed"}, 0,
				  0, 0);
		return;
	}
	node_write_submit(n, w);
	node_flush(n);
}

const char *const node_role_names[] = {"leader",       "follower", "candidate",
				       "precandidate", "learner",  "joining",
				       "removed",      "failed",   NULL};

static const char *role_name(struct node *n)
{
	const struct raft_conf *c = raft_conf(n->raft);

	if (n->failed)
		return "failed";
	if (c->n_voters == 0)
		return "joining";
	if (!raft_conf_has(c, n->o.id))
		return "removed";
	if (!raft_conf_has_voter(c, n->o.id))
		return "learner";
	return raft_role_name(raft_role(n->raft));
}

static void peers_status(struct node *n, struct node_status *st)
{
	const struct raft_conf *c = raft_conf(n->raft);
	uint64_t last = raft_last_index(n->raft);

	for (unsigned i = 0; i < c->n_voters + c->n_learners; i++) {
		bool voter = i < c->n_voters;
		uint64_t id = voter ? c->voters[i] : c->learners[i - c->n_voters];
		struct node_peer_status *p = &st->peers[st->n_peers++];

		p->id = id;
		p->voter = voter;
		p->match = id == n->o.id ? raft_durable_index(n->raft) : raft_match(n->raft, id);
		p->lag = last > p->match ? last - p->match : 0;
		p->lag_ms = id == n->o.id ? 0 : node_auto_lag_ms(n, id);
	}
}

bool node_lease_valid(struct node *n)
{
	return !n->failed && n->raft != NULL && raft_lease_valid(n->raft, node_now());
}

void node_status(struct node *n, struct node_status *st)
{
	const struct raft_conf *c = raft_conf(n->raft);

	memset(st, 0, sizeof *st);
	st->role = role_name(n);
	st->term = raft_term(n->raft);
	st->leader = raft_leader(n->raft);
	st->cluster_id = n->cluster_id;
	st->first_index = db_first_index(n->o.db);
	st->last_index = raft_last_index(n->raft);
	st->durable_index = raft_durable_index(n->raft);
	st->commit_index = raft_commit_index(n->raft);
	st->leader_commit = raft_leader_commit(n->raft);
	st->applied_index = db_applied_index(n->o.db);
	st->snapshot_index = db_snapshot_index(n->o.db);
	st->n_voters = c->n_voters;
	st->n_learners = c->n_learners;
	memcpy(st->voters, c->voters, c->n_voters * sizeof *c->voters);
	memcpy(st->learners, c->learners, c->n_learners * sizeof *c->learners);
	if (raft_role(n->raft) == RAFT_LEADER)
		peers_status(n, st);
	st->pending_writes = n->n_pending;
	st->forwarded_writes = n->n_forwarded;
	st->forwarded_total = n->fwd_total;
	st->sessions = store_sessions(db_store(n->o.db));
	st->session_answers = n->session_answers;
	st->session_skipped = store_sessions_skipped(db_store(n->o.db));
	st->elections = n->elections;
	st->leader_changes = n->leader_changes;
	st->disk_full = n->full;
	st->disk_full_ms = n->full ? node_now() - n->full_since : 0;
	st->disk_full_episodes = n->full_episodes;
}
