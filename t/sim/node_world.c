/*
 * node_world: see node_world.h.  This file holds the instances (a node's
 * life, its world: peer links as simulator streams, gossip as datagrams,
 * the disk and apply steps of its db, its clock), the invariants checked
 * after every event, and the run.
 *
 * A peer-link frame travels as one STREAM message:
 *     'P' | u64 sender id | u64 sender's cluster id | u8 kind | payload
 * and is dropped by a receiver of another cluster (or of none yet), as
 * peer.c refuses the preamble; gossip's TCP frames travel as 'S' | frame.
 */
#include "build.h"

#include "sim/node_world_impl.h"
#include "sim/simfs.h"

#include "storage/db_impl.h"
#include "storage/wal.h"
#include "util/alloc.h"
#include "util/log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define ELECTION_MS  300
#define HEARTBEAT_MS 30
#define SETTLE_MS    60000
#define FINAL_MS     20000

static uint64_t ms_of(uint64_t us)
{
	return us / SIM_MS;
}

void nw_violation(struct nworld *w, const char *fmt, ...)
{
	va_list ap;

	if (w->violation[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(w->violation, sizeof w->violation, fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------ clocks */

/* Node i's clock: the simulator's time, offset, at its own rate — and
 * monotonic, as CLOCK_BOOTTIME is (the drift once stepped back by up to
 * 20 ms at each second: a leader then stamped log times below zero, and
 * the sessions expired). */
static uint64_t local_us(struct nworld *w, int i, uint64_t sim_us)
{
	const struct nw_node *nd = &w->nodes[i];
	int64_t t = (int64_t)sim_us + nd->clock_off + (int64_t)sim_us * nd->drift_ppm / 1000000;

	return t > 0 ? (uint64_t)t : 0;
}

/* The simulator's time when node i's clock reads local_us (or later). */
static uint64_t sim_us_of(struct nworld *w, int i, uint64_t l)
{
	const struct nw_node *nd = &w->nodes[i];
	int64_t t = (int64_t)l - nd->clock_off;

	if (t <= 0)
		return 0;
	t = (int64_t)((double)t * 1e6 / (1e6 + nd->drift_ppm)) + 1;
	while (t > 0 && local_us(w, i, (uint64_t)t) < l)
		t += 1000;
	return (uint64_t)t;
}

uint64_t nw_local_ms(struct nworld *w, int i)
{
	return ms_of(local_us(w, i, sim_now(w->sim)));
}

static uint64_t clock_mono_ns(void *ctx)
{
	struct nworld *w = ctx;
	uint64_t now = sim_now(w->sim);

	uint64_t us;

	if (w->cur < 0)
		return now * 1000;
	us = local_us(w, w->cur, now);
	if (us < w->nodes[w->cur].last_mono_us)
		nw_violation(w, "n%d's monotonic clock went back %" PRIu64 " us", w->cur,
			     w->nodes[w->cur].last_mono_us - us);
	else
		w->nodes[w->cur].last_mono_us = us;
	return us * 1000;
}

static uint64_t clock_wall_ns(void *ctx)
{
	return 1700000000ull * 1000000000ull + clock_mono_ns(ctx);
}

int nw_enter(struct nworld *w, int i)
{
	int prev = w->cur;

	w->cur = i;
	sh_log_set_thread_node(i >= 0 ? w->nodes[i].name : NULL);
	return prev;
}

void nw_leave(struct nworld *w, int prev)
{
	w->cur = prev;
	sh_log_set_thread_node(prev >= 0 ? w->nodes[prev].name : NULL);
}

struct nw_inst *nw_inst(struct nworld *w, int i)
{
	return sim_node_instance(w->sim, i);
}

/* ------------------------------------------------------------ peer links */

static int index_of_id(struct nworld *w, uint64_t id)
{
	for (int i = 0; i < w->n; i++)
		if (w->nodes[i].id == id && id != 0)
			return i;
	return -1;
}

static int env_send(void *data, uint64_t to, enum peer_kind kind, const struct peer_part *parts,
		    size_t n)
{
	struct nw_inst *in = data;
	int k = index_of_id(in->w, to);
	size_t len = 18;
	uint8_t *buf, *p;

	for (size_t i = 0; i < n; i++)
		len += parts[i].len;
	buf = k >= 0 ? sh_malloc(len) : NULL;
	if (buf != NULL) {
		buf[0] = 'P';
		memcpy(buf + 1, &in->id, 8);
		memcpy(buf + 9, &in->cluster_id, 8);
		buf[17] = (uint8_t)kind;
		p = buf + 18;
		for (size_t i = 0; i < n; i++) {
			if (parts[i].len > 0)
				memcpy(p, parts[i].data, parts[i].len);
			p += parts[i].len;
		}
		sim_send(in->w->sim, in->idx, k, SIM_STREAM, buf, len);
		sh_free(buf);
	}
	for (size_t i = 0; i < n; i++)
		if (parts[i].release != NULL)
			parts[i].release(parts[i].data, parts[i].len, parts[i].arg);
	return k < 0 ? SH_EUNAVAIL : buf == NULL ? SH_ENOMEM : 0;
}

static size_t env_backlog(void *data, uint64_t to)
{
	(void)data;
	(void)to;
	return 0;
}

static void env_drop(void *data, uint64_t to)
{
	(void)data;
	(void)to;
}

static void env_set_cluster_id(void *data, uint64_t id)
{
	((struct nw_inst *)data)->cluster_id = id;
}

static void env_wake_at(void *data, uint64_t at_ms)
{
	((struct nw_inst *)data)->node_wake = at_ms;
}

static void recv_peer(struct nw_inst *in, int from, const uint8_t *buf, size_t len)
{
	uint64_t id, cid;

	if (len < 18)
		return;
	memcpy(&id, buf + 1, 8);
	memcpy(&cid, buf + 9, 8);
	if (id != in->w->nodes[from].id || in->cluster_id == 0 || cid != in->cluster_id)
		return; /* peer.c refuses the link */
	node_peer_recv(in->node, id, (enum peer_kind)buf[17], buf + 18, len - 18);
}

/* ------------------------------------------------------------ gossip */

static void swim_send(void *data, enum swim_transport t, const char *addr, const uint8_t *buf,
		      size_t len)
{
	struct nw_inst *in = data;
	int k;
	uint8_t *tcp;

	if (sscanf(addr, "n%d:", &k) != 1 || k < 0 || k >= in->w->n)
		return;
	if (t == SWIM_UDP) {
		sim_send(in->w->sim, in->idx, k, SIM_DGRAM, buf, len);
		return;
	}
	if ((tcp = sh_malloc(len + 1)) == NULL)
		return;
	tcp[0] = 'S';
	memcpy(tcp + 1, buf, len);
	sim_send(in->w->sim, in->idx, k, SIM_STREAM, tcp, len + 1);
	sh_free(tcp);
}

static void swim_event(void *data, const struct swim_event *ev)
{
	struct nw_inst *in = data;

	sim_tracef(in->w->sim, in->idx, "swim %s %s", swim_event_name(ev->type),
		   ev->member != NULL ? ev->member->name : "-");
	if (in->node != NULL)
		node_swim_event(in->node, ev);
}

static uint64_t swim_random(void *data)
{
	struct nw_inst *in = data;

	return sh_rand_u64(sim_node_rand(in->w->sim, in->idx));
}

static void recv_gossip(struct nw_inst *in, int from, enum sim_chan ch, const uint8_t *buf,
			size_t len)
{
	struct nworld *w = in->w;
	uint64_t now = nw_local_ms(w, in->idx);

	if (ch == SIM_DGRAM) {
		swim_recv(in->swim, now, SWIM_UDP, w->nodes[from].addr[0], buf, len);
		return;
	}
	buf++;
	len--;
	if (len >= SWIM_FRAME_HDR && swim_wire_frame_len(buf) == len - SWIM_FRAME_HDR)
		swim_recv(in->swim, now, SWIM_TCP, w->nodes[from].addr[0], buf + SWIM_FRAME_HDR,
			  len - SWIM_FRAME_HDR);
}

/* ------------------------------------------------------------ the applied state */

static struct nw_applied *applied_at(struct nworld *w, uint64_t index)
{
	if (index >= w->cap_applied) {
		size_t cap = w->cap_applied ? w->cap_applied : 1024;
		struct nw_applied *a;

		while (cap <= index)
			cap *= 2;
		a = sh_reallocarray(w->applied, cap, sizeof *a);
		if (a == NULL)
			abort();
		memset(a + w->cap_applied, 0, (cap - w->cap_applied) * sizeof *a);
		w->applied = a;
		w->cap_applied = cap;
	}
	return &w->applied[index];
}

static void on_apply(void *arg, const struct store *st, const struct wal_rec *r, int rv)
{
	struct nw_inst *in = arg;
	struct nworld *w = in->w;
	struct nw_applied *a = applied_at(w, r->index);
	struct digest d = store_digest(st);
	uint64_t skipped = store_sessions_skipped(st);
	bool skip = skipped != in->skipped;

	in->skipped = skipped;
	if (!a->set) {
		*a = (struct nw_applied){r->term, r->type, rv, {0}, true};
		memcpy(a->digest, &d, sizeof a->digest);
		if (r->index > w->max_applied)
			w->max_applied = r->index;
		nwc_truth(w, r, rv, skip);
		return;
	}
	if (a->term != r->term || a->type != r->type)
		nw_violation(w,
			     "n%d applied entry %" PRIu64 " of term %" PRIu64
			     ", another node applied term %" PRIu64 " there",
			     in->idx, r->index, r->term, a->term);
	else if ((a->rv == 0) != (rv == 0) || memcmp(a->digest, &d, sizeof a->digest) != 0)
		nw_violation(w,
			     "n%d: the state after entry %" PRIu64 " differs from another node's",
			     in->idx, r->index);
}

/* ------------------------------------------------------------ a node's life */

static void node_opts_for(struct nworld *w, struct nw_inst *in, struct node_opts *o)
{
	const struct nw_node *nd = &w->nodes[in->idx];

	*o = (struct node_opts){
		.env = {in, env_send, env_backlog, env_drop, env_set_cluster_id, env_wake_at},
		.db = in->db,
		.datadir = in->datadir,
		.hs = in->hs,
		.id = in->id,
		.name = nd->name,
		.bootstrap_expect = w->o.bootstrap_expect,
		.max_voters = 5,
		.remove_dead_after_ms = 4 * ELECTION_MS,
		.max_frame = 8u << 20,
		.max_output = 16u << 20,
		.cache_bytes = 64u << 10,
		.forward_timeout_ms = 2000,
		.seed = sh_rand_u64(sim_node_rand(w->sim, in->idx)) | 1,
	};
	raft_opts_default(&o->raft, in->id);
	o->raft.election_timeout_ms = ELECTION_MS;
	o->raft.heartbeat_ms = HEARTBEAT_MS;
	o->raft.max_batch_entries = 16;
	o->raft.max_batch_bytes = 64u << 10;
}

static int open_storage(struct nworld *w, struct nw_inst *in, struct sh_err *err)
{
	const char *dir = w->nodes[in->idx].dir;
	struct db_recovery rec;
	struct db_opts dbo = {.dir = dir,
			      .fsync = WAL_FSYNC_ALWAYS,
			      .segment_bytes = 64u << 10,
			      /* crashes leave zeros ahead; small, so that a
			       * quota still fills the log within a few entries */
			      .wal_ahead_bytes = 4096,
			      .snapshot_entries = w->o.snapshot_entries,
			      .log_keep = 8,
			      .max_payload_bytes = 4096,
			      .raft = true,
			      .manual = true,
			      .on_apply = on_apply,
			      .on_apply_arg = in};
	int rv;

	if ((rv = sh_datadir_open(dir, &in->datadir, err)) != 0 ||
	    (rv = hardstate_open(in->datadir, &in->hs, err)) != 0)
		return rv;
	in->id = sh_datadir_node_id(in->datadir);
	w->nodes[in->idx].id = in->id;
	dbo.replay_upto = hardstate_commit(in->hs);
	return db_open(&dbo, &in->db, &rec, err);
}

static int open_membership(struct nworld *w, struct nw_inst *in, struct sh_err *err)
{
	struct nw_node *nd = &w->nodes[in->idx];
	struct swim_self self = {.id = in->id,
				 .name = nd->name,
				 .addr = {nd->addr[0], nd->addr[1], nd->addr[2]},
				 .cluster_id = in->cluster_id};
	struct swim_io io = {in, swim_send, swim_event, swim_random};
	const char *seed = w->nodes[0].addr[0];
	uint64_t now = nw_local_ms(w, in->idx);
	int rv;

	if ((rv = swim_new(&w->swim_cfg, &self, &io, now, &in->swim, err)) != 0)
		return rv;
	return in->idx != 0 ? swim_join(in->swim, now, &seed, 1, err) : 0;
}

static int open_node(struct nworld *w, struct nw_inst *in, struct sh_err *err)
{
	struct node_opts no;
	struct api_opts ao = {.db = in->db,
			      .node_name = w->nodes[in->idx].name,
			      .search_threads = 1,
			      .request_timeout_ms = 2000,
			      .default_consistency = SHOAL__CONSISTENCY__CONSISTENCY_STRONG,
			      .default_ack = SHOAL__ACK__ACK_QUORUM};
	int rv;

	in->cluster_id = sh_datadir_cluster_id(in->datadir);
	node_opts_for(w, in, &no);
	if ((rv = node_new(&no, &in->node, err)) != 0 || (rv = open_membership(w, in, err)) != 0)
		return rv;
	ao.node = in->node;
	ao.node_id = in->id;
	if ((rv = api_new(&ao, &in->api, err)) != 0)
		return rv;
	api_set_membership(in->api, in->swim);
	node_start(in->node, in->swim);
	return 0;
}

static void inst_free(struct nw_inst *in)
{
	if (in->api != NULL)
		api_set_membership(in->api, NULL);
	node_free(in->node);
	in->node = NULL;
	if (in->api != NULL)
		api_quiesce(in->api);
	db_close(in->db);
	api_free(in->api);
	swim_free(in->swim);
	hardstate_close(in->hs);
	sh_datadir_close(in->datadir);
	sh_free(in);
}

static void *inst_start(struct sim *sim, int i, void *arg)
{
	struct nworld *w = arg;
	struct nw_inst *in = sh_calloc(1, sizeof *in);
	struct sh_err err = {0};
	int prev = nw_enter(w, i), rv;

	if (in == NULL)
		abort();
	*in = (struct nw_inst){.w = w,
			       .idx = i,
			       .node_wake = UINT64_MAX,
			       .disk_at = SIM_NEVER,
			       .apply_at = SIM_NEVER};
	simfs_thaw(w->nodes[i].dir);
	w->insts[i] = in;
	w->nodes[i].lives++;
	w->nodes[i].failed_seen = false;
	if ((rv = open_storage(w, in, &err)) != 0 || (rv = open_node(w, in, &err)) != 0) {
		if (!w->nodes[i].full && !w->nodes[i].disk_fault)
			nw_violation(w, "n%d cannot start: %s", i, err.msg);
		else
			nwf_on_failed(w, i); /* a faulty disk: tried again later */
		sim_tracef(sim, i, "cannot start: %s", err.msg);
		w->insts[i] = NULL;
		inst_free(in);
		nw_leave(w, prev);
		return NULL;
	}
	w->res->restarts += w->nodes[i].lives > 1;
	nw_leave(w, prev);
	nw_after(w, i);
	return in;
}

/* A crash: the disk loses what was not synced and freezes, then the
 * instance is freed through its normal paths (their I/O fails). */
static void inst_stop(void *inst)
{
	struct nw_inst *in = inst;
	struct nworld *w = in->w;
	int prev;

	nwc_on_crash(w, in->idx);
	if (w->nodes[in->idx].machine_crash)
		simfs_crash(w->nodes[in->idx].dir);
	else
		simfs_kill(w->nodes[in->idx].dir);
	w->nodes[in->idx].machine_crash = false;
	prev = nw_enter(w, in->idx);
	w->insts[in->idx] = NULL;
	inst_free(in);
	nw_leave(w, prev);
}

static void inst_deliver(void *inst, uint64_t now, int from, enum sim_chan ch, const uint8_t *buf,
			 size_t len)
{
	struct nw_inst *in = inst;
	int prev = nw_enter(in->w, in->idx);

	(void)now;
	if (ch == SIM_STREAM && len > 0 && buf[0] == 'P')
		recv_peer(in, from, buf, len);
	else if (ch == SIM_DGRAM || (len > 0 && buf[0] == 'S'))
		recv_gossip(in, from, ch, buf, len);
	nw_leave(in->w, prev);
	nw_after(in->w, in->idx);
}

static void inst_tick(void *inst, uint64_t now)
{
	struct nw_inst *in = inst;
	struct nworld *w = in->w;
	int prev = nw_enter(w, in->idx);
	uint64_t local = nw_local_ms(w, in->idx);

	if (now >= in->disk_at) {
		in->disk_at = SIM_NEVER;
		db_run(in->db, DB_WORK_WRITE);
	}
	if (now >= in->apply_at) {
		in->apply_at = SIM_NEVER;
		db_run(in->db, DB_WORK_APPLY);
	}
	if (swim_next_deadline(in->swim) <= local)
		swim_tick(in->swim, local);
	if (in->node_wake <= local) {
		in->node_wake = UINT64_MAX;
		node_wake(in->node);
	}
	nw_leave(w, prev);
	nw_after(w, in->idx);
}

static uint64_t inst_deadline(void *inst)
{
	struct nw_inst *in = inst;
	uint64_t d = in->disk_at < in->apply_at ? in->disk_at : in->apply_at;
	uint64_t s = swim_next_deadline(in->swim);

	if (in->node_wake != UINT64_MAX) {
		uint64_t t = sim_us_of(in->w, in->idx, in->node_wake * SIM_MS);

		d = t < d ? t : d;
	}
	if (s < SIM_NEVER / SIM_MS) {
		uint64_t t = sim_us_of(in->w, in->idx, s * SIM_MS);

		d = t < d ? t : d;
	}
	return d;
}

static const struct sim_proto node_proto = {inst_start, inst_stop, inst_deliver, inst_tick,
					    inst_deadline};

/* A disk write takes 0.1 to 2 ms (more on a slow disk); the apply thread
 * picks work up within half a millisecond. */
static void schedule_work(struct nworld *w, struct nw_inst *in)
{
	unsigned p = db_pending(in->db);
	struct sh_rand *r = sim_rand(w->sim);
	uint64_t now = sim_now(w->sim);

	if ((p & DB_WORK_WRITE) && in->disk_at == SIM_NEVER)
		in->disk_at = now + 100 + sh_rand_below(r, 1900) +
			      (w->nodes[in->idx].disk_slow_us
				       ? sh_rand_below(r, w->nodes[in->idx].disk_slow_us)
				       : 0);
	if ((p & DB_WORK_APPLY) && in->apply_at == SIM_NEVER)
		in->apply_at = now + sh_rand_below(r, 500);
}

void nw_after(struct nworld *w, int i)
{
	struct nw_inst *in = nw_inst(w, i);
	int prev;

	if (in == NULL || in->in_call)
		return;
	in->in_call = true;
	prev = nw_enter(w, i);
	while (db_pending(in->db) & DB_WORK_DONE) {
		db_process(in->db);
		/* the storage never says more is durable than its log holds */
		if (!db_failed(in->db, NULL) &&
		    db_durable_index(in->db) > wal_last_index(in->db->wal))
			nw_violation(w,
				     "n%d: durable up to %" PRIu64 " but its log ends at %" PRIu64,
				     i + 1, db_durable_index(in->db), wal_last_index(in->db->wal));
		node_db_progress(in->node);
	}
	schedule_work(w, in);
	nw_leave(w, prev);
	in->in_call = false;
	sim_wake(w->sim, i);
}

/* ------------------------------------------------------------ invariants */

static uint64_t *leader_slot(struct nworld *w, uint64_t term)
{
	if (term >= w->cap_terms) {
		size_t cap = w->cap_terms ? w->cap_terms : 256;
		uint64_t *v;

		while (cap <= term)
			cap *= 2;
		if ((v = sh_reallocarray(w->leader_of, cap, sizeof *v)) == NULL)
			abort();
		memset(v + w->cap_terms, 0, (cap - w->cap_terms) * sizeof *v);
		w->leader_of = v;
		w->cap_terms = cap;
	}
	return &w->leader_of[term];
}

static void check_node(struct nworld *w, struct nw_inst *in)
{
	struct node_status st;
	uint64_t *l, cid = sh_datadir_cluster_id(in->datadir);

	node_status(in->node, &st);
	if (st.role != in->last_role || st.term != in->last_term) {
		sim_tracef(w->sim, in->idx, "%s in term %" PRIu64 " (leader %016" PRIx64 ")",
			   st.role, st.term, st.leader);
		in->last_role = st.role;
		in->last_term = st.term;
	}
	if (st.term > w->res->max_term)
		w->res->max_term = st.term;
	if (strcmp(st.role, "leader") == 0) {
		l = leader_slot(w, st.term);
		if (*l == 0) {
			*l = in->id;
			w->res->leaders++;
		} else if (*l != in->id) {
			nw_violation(w,
				     "two leaders in term %" PRIu64 ": %016" PRIx64
				     " and %016" PRIx64 " (n%d)",
				     st.term, *l, in->id, in->idx);
		}
	}
	if (cid != 0 && w->cluster_id == 0)
		w->cluster_id = cid;
	else if (cid != 0 && cid != w->cluster_id)
		nw_violation(w,
			     "two clusters: n%d belongs to %016" PRIx64 ", another to %016" PRIx64,
			     in->idx, cid, w->cluster_id);
	if (strcmp(st.role, "failed") == 0 && !w->nodes[in->idx].failed_seen) {
		if (w->nodes[in->idx].healed_life != 0)
			nw_violation(w, "n%d's storage failed after the faults healed", in->idx);
		w->nodes[in->idx].failed_seen = true;
		sim_tracef(w->sim, in->idx, "storage failed: restart scheduled");
		nwf_on_failed(w, in->idx);
	}
}

/* The lease (dissertation §6.4.1): while a leader's lease is valid, no
 * other node may lead in a later term — else the old leader's strong reads
 * miss what the new one commits.  Each lease is judged on its node's own
 * clock, as the node judges it. */
static void check_leases(struct nworld *w)
{
	struct node_status st[NW_MAX_NODES];
	bool up[NW_MAX_NODES] = {false};

	for (int i = 0; i < w->n; i++) {
		struct nw_inst *in = nw_inst(w, i);

		if ((up[i] = in != NULL && in->node != NULL))
			node_status(in->node, &st[i]);
	}
	for (int i = 0; i < w->n; i++) {
		int prev;
		bool valid;

		if (!up[i] || strcmp(st[i].role, "leader") != 0)
			continue;
		prev = nw_enter(w, i);
		valid = node_lease_valid(nw_inst(w, i)->node);
		nw_leave(w, prev);
		for (int j = 0; valid && j < w->n; j++)
			if (j != i && up[j] && strcmp(st[j].role, "leader") == 0 &&
			    st[j].term > st[i].term)
				nw_violation(w,
					     "n%d leads in term %" PRIu64
					     " while n%d's lease of term %" PRIu64
					     " is still valid",
					     j, st[j].term, i, st[i].term);
	}
}

/* After the heal nothing stops a node: a stop then is a fault injected
 * after "the faults healed" (the final phase would blame the cluster for
 * it) or a node that gave up by itself. */
static void check_healed(struct nworld *w, int i)
{
	const struct nw_node *nd = &w->nodes[i];

	if (nd->healed_life == 0)
		return;
	if (nw_inst(w, i) == NULL)
		nw_violation(w, "n%d is down after the faults healed", i);
	else if (nd->lives != nd->healed_life)
		nw_violation(w,
			     "n%d restarted after the faults healed (life %" PRIu64 ", %" PRIu64
			     " at the heal)",
			     i, nd->lives, nd->healed_life);
}

static bool check_all(struct sim *sim, void *arg, char *why, size_t size)
{
	struct nworld *w = arg;

	(void)sim;
	for (int i = 0; i < w->n && w->violation[0] == '\0'; i++) {
		struct nw_inst *in = nw_inst(w, i);

		check_healed(w, i);
		if (in != NULL && in->node != NULL)
			check_node(w, in);
	}
	if (w->violation[0] == '\0')
		check_leases(w);
	if (w->violation[0] == '\0')
		return true;
	snprintf(why, size, "%s", w->violation);
	return false;
}

/* An up node's index + 1 whose node leads, 0 when none. */
uint64_t nw_leader(struct nworld *w)
{
	for (int i = 0; i < w->n; i++) {
		struct nw_inst *in = nw_inst(w, i);
		struct node_status st;

		if (in == NULL)
			continue;
		node_status(in->node, &st);
		if (strcmp(st.role, "leader") == 0)
			return (uint64_t)i + 1;
	}
	return 0;
}

/* ------------------------------------------------------------ the run */

static void world_init(struct nworld *w, uint64_t seed, const struct nworld_opts *o,
		       struct nworld_result *res)
{
	memset(w, 0, sizeof *w);
	w->seed = seed;
	w->o = *o;
	w->res = res;
	w->n = o->nodes;
	w->cur = -1;
	if (w->o.bootstrap_expect == 0)
		w->o.bootstrap_expect = (unsigned)w->n;
	if (w->o.snapshot_entries == 0)
		w->o.snapshot_entries = 40;
	if (w->o.run_ms == 0)
		w->o.run_ms = 8000;
	for (int i = 0; i < w->n; i++) {
		struct nw_node *nd = &w->nodes[i];

		snprintf(nd->dir, sizeof nd->dir, SIMFS_ROOT "/n%d", i);
		snprintf(nd->name, sizeof nd->name, "n%d", i);
		for (int k = 0; k < 3; k++)
			snprintf(nd->addr[k], sizeof nd->addr[k], "n%d:%d", i, 7471 + k);
	}
	swim_config_default(&w->swim_cfg);
	w->swim_cfg.probe_interval_ms = 200;
	w->swim_cfg.probe_timeout_ms = 100;
	w->swim_cfg.gossip_interval_ms = 50;
	w->swim_cfg.push_pull_interval_ms = 2000;
	w->swim_cfg.rejoin_interval_ms = 1000;
	w->swim_cfg.gossip_to_dead_ms = 6000;
	w->swim_cfg.dead_reap_ms = 60000;
	w->clock = (struct sh_clock){clock_mono_ns, clock_wall_ns, w};
}

static bool settled(struct sim *sim, void *arg)
{
	struct nworld *w = arg;
	struct node_status lst, st;
	uint64_t l = nw_leader(w);

	(void)sim;
	if (l == 0)
		return true; /* go on */
	node_status(nw_inst(w, (int)l - 1)->node, &lst);
	if (lst.commit_index < lst.last_index || lst.commit_index == 0)
		return true;
	for (int i = 0; i < w->n; i++) {
		struct nw_inst *in = nw_inst(w, i);

		if (in == NULL)
			return true;
		node_status(in->node, &st);
		/* a node that was full takes writes again at its next retry */
		if (st.applied_index != lst.commit_index || st.term != lst.term ||
		    st.leader != lst.leader || st.n_voters == 0 || st.disk_full)
			return true;
	}
	return !nwc_idle(w);
}

static bool clients_busy(struct sim *sim, void *arg)
{
	(void)sim;
	return !nwc_idle(arg);
}

static void end_load(struct sim *sim, void *arg)
{
	struct nworld *w = arg;

	(void)sim;
	w->load = false;
	w->settling = true;
	nwf_heal_all(w);
}

/* Every node at the same applied index holds the same state. */
static void check_final_state(struct nworld *w)
{
	struct digest first = {0};
	uint64_t at = 0;

	for (int i = 0; i < w->n; i++) {
		struct nw_inst *in = nw_inst(w, i);
		struct digest d;

		if (in == NULL)
			continue;
		d = store_digest(db_store(in->db));
		if (at == 0) {
			at = db_applied_index(in->db);
			first = d;
		} else if (db_applied_index(in->db) != at || !digest_equal(d, first)) {
			nw_violation(w,
				     "after settling n%d holds another state (applied %" PRIu64
				     ", first node %" PRIu64 ")",
				     i, db_applied_index(in->db), at);
		}
	}
	w->res->applied = at;
}

static void check_history(struct nworld *w)
{
	struct hist_stats hs;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	size_t bad = hist_check(w->hist, 0, f, &hs);

	fclose(f);
	if (bad > 0) {
		char *nl = strchr(buf, '\n');

		nw_violation(w, "history: %.*s", nl ? (int)(nl - buf) : (int)len, buf);
		if (w->o.report != NULL)
			fputs(buf, w->o.report);
	}
	free(buf);
}

static bool coll_missing(struct sim *sim, void *arg)
{
	(void)sim;
	return !((struct nworld *)arg)->coll_ready;
}

/* A scripted scenario, once the collection exists; then every fault
 * heals as after the random schedule. */
static bool run_scenario(struct nworld *w)
{
	nw_script_fn *fn = nws_find(w->o.scenario);

	if (fn == NULL) {
		nw_violation(w, "no scenario '%s'", w->o.scenario);
		return false;
	}
	/* a boot-* scenario drives the bootstrap itself, from the start */
	if (strncmp(w->o.scenario, "boot-", 5) != 0 &&
	    sim_run_while(w->sim, coll_missing, w, 20 * SIM_SEC) != 0) {
		nw_violation(w, "the collection was not created within 20 s");
		return false;
	}
	fn(w);
	if (w->violation[0] != '\0' || sim_failure(w->sim) != NULL)
		return false;
	end_load(w->sim, w);
	return true;
}

static void start_late(struct sim *sim, void *arg)
{
	struct nw_node *nd = arg;

	if (nd->lives == 0)
		sim_start(sim, nd->idx);
}

/* Load and faults, settling, the final reads, the checks.  A third of the
 * runs start some nodes up to two seconds late, so that nodes bootstrap
 * while others are not yet in sight. */
static void world_run(struct nworld *w)
{
	bool stagger = sh_rand_below(sim_rand(w->sim), 3) == 0;
	int rc;

	for (int i = 0; i < w->n; i++) {
		uint64_t late = stagger ? sh_rand_below(sim_rand(w->sim), 2 * SIM_SEC) : 0;

		w->nodes[i].idx = i;
		if (late == 0)
			sim_start(w->sim, i);
		else
			sim_at(w->sim, late, start_late, &w->nodes[i]);
	}
	nwc_start(w);
	if (w->o.scenario != NULL) {
		if (!run_scenario(w))
			return;
	} else {
		nwf_schedule(w);
		sim_at(w->sim, w->o.run_ms * SIM_MS, end_load, w);
		if (sim_run_until(w->sim, w->o.run_ms * SIM_MS) != 0)
			return;
	}
	rc = sim_run_while(w->sim, settled, w, sim_now(w->sim) + SETTLE_MS * SIM_MS);
	if (rc == 1)
		nw_violation(w, "the cluster did not settle within %d s after the faults healed",
			     SETTLE_MS / 1000);
	if (rc != 0)
		return;
	rc = sim_run_while(w->sim, coll_missing, w, sim_now(w->sim) + SETTLE_MS * SIM_MS);
	if (rc == 1)
		nw_violation(w,
			     "the collection was not created within %d s after the faults healed",
			     SETTLE_MS / 1000);
	if (rc != 0)
		return;
	nwc_final_reads(w);
	rc = sim_run_while(w->sim, clients_busy, w, sim_now(w->sim) + FINAL_MS * SIM_MS);
	if (rc == 1)
		nw_violation(w, "the final reads did not finish within %d s", FINAL_MS / 1000);
	if (rc != 0)
		return;
	/* settle again: an election during the reads appends a no-op */
	rc = sim_run_while(w->sim, settled, w, sim_now(w->sim) + SETTLE_MS * SIM_MS);
	if (rc == 1)
		nw_violation(w, "the cluster did not settle again after the final reads");
	if (rc != 0)
		return;
	check_final_state(w);
	check_history(w);
}

static void report(struct nworld *w, struct nworld_result *res)
{
	if (w->o.report == NULL || res->violations == 0)
		return;
	fprintf(w->o.report, "violation: %s\n", res->first);
	sim_report(w->sim, w->o.report, 60);
	fprintf(w->o.report, "replay: t/sim/noderun %" PRIu64 "\n", w->seed);
}

int nworld_run(uint64_t seed, const struct nworld_opts *o, struct nworld_result *res)
{
	struct nworld *w = sh_calloc(1, sizeof *w);

	if (w == NULL)
		abort();
	memset(res, 0, sizeof *res);
	world_init(w, seed, o, res);
	simfs_reset();
	sh_rand_seed(&w->fs_rand, seed ^ 0x53494d465321ull);
	simfs_set_rand(&w->fs_rand);
	for (int i = 0; i < w->n; i++)
		simfs_mkdir_durable(w->nodes[i].dir);
	sh_clock_install(&w->clock);
	sh_log_set_level(o->log ? SH_LOG_DEBUG : SH_LOG_OFF);
	w->sim = sim_new(seed, w->n, &node_proto, w);
	w->hist = hist_new();
	if (w->sim == NULL || w->hist == NULL)
		abort();
	sim_trace_to(w->sim, o->trace);
	sim_check_add(w->sim, "node world", check_all, w);
	nwc_init(w);
	world_run(w);
	if (w->violation[0] == '\0' && sim_failure(w->sim) != NULL)
		nw_violation(w, "%s", sim_failure(w->sim));
	res->violations = w->violation[0] != '\0';
	snprintf(res->first, sizeof res->first, "%s", w->violation);
	res->sim_ms = sim_now(w->sim) / SIM_MS;
	res->events = sim_steps(w->sim);
	res->trace_hash = sim_trace_hash(w->sim);
	report(w, res);
	sim_free(w->sim); /* stops the instances */
	nwc_free(w);
	nwf_free(w);
	hist_free(w->hist);
	sh_clock_install(NULL);
	sh_log_set_thread_node(NULL);
	simfs_set_rand(NULL);
	simfs_reset();
	sh_free(w->leader_of);
	sh_free(w->applied);
	sh_free(w->applied_seqs);
	sh_free(w);
	return res->violations ? -1 : 0;
}

void nworld_random_opts(uint64_t seed, struct nworld_opts *o)
{
	struct sh_rand r;
	/* 1 to 7 nodes (issue 10), 3 the most.  6 took the place of one of
	 * two 5s rather than a tenth slot: the table keeps its length and 5
	 * and 6 draw alike below (bootstrap_expect's draw is below 3 for
	 * both), so every seed that does not draw that slot keeps its
	 * options, and no fixed seed of t/sim_node.t draws it (6322 draws the
	 * other 5). */
	static const int sizes[] = {1, 2, 3, 3, 3, 4, 6, 5, 7};

	sh_rand_seed(&r, seed ^ 0x6f707473ull);
	memset(o, 0, sizeof *o);
	o->nodes = sizes[sh_rand_below(&r, sizeof sizes / sizeof sizes[0])];
	/* more nodes than bootstrap_expect, but it must be more than half of
	 * them (doc/replication.md, "Bootstrap") */
	o->bootstrap_expect = (unsigned)o->nodes;
	if (o->nodes > 2 && sh_rand_below(&r, 4) == 0)
		o->bootstrap_expect = (unsigned)(o->nodes / 2 + 1 +
						 sh_rand_below(&r, (uint64_t)(o->nodes + 1) / 2));
	o->clients = 2 + (int)sh_rand_below(&r, 3);
	o->keys = 6 + (int)sh_rand_below(&r, 10);
	o->run_ms = 5000 + sh_rand_below(&r, 5000);
	o->faults = (unsigned)sh_rand_u64(&r) & NW_ALL;
	o->snapshot_entries = 20 + (uint32_t)sh_rand_below(&r, 60);
}
