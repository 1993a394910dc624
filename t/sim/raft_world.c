/*
 * raft_world: see raft_world.h.
 */
#include "build.h"

#include "sim/raft_world.h"

#include "cluster/raft_wire.h"
#include "util/alloc.h"
#include "util/crc32c.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAG_RAFT  'R'
#define TAG_SNAP  'S' /* a snapshot, leader -> follower */
#define TAG_SNACK 'A' /* the snapshot is installed, follower -> leader */
#define SNAP_MAX  (3 * 8 + 2 * 4 + 2 * RAFT_MAX_NODES * 8 + 4)

struct rw_node {
	struct raft_world *w;
	int idx;
	uint64_t id;
	struct raft *raft;
	/* the log's bodies, entries base + 1 .. base + n */
	uint64_t base;
	uint8_t **body;
	uint32_t *len;
	size_t n, cap;
	uint64_t log_off;  /* end of the "log" file */
	uint64_t written;  /* last index written to it */
	uint64_t synced;   /* last index an fsync covered */
	uint64_t fsync_at; /* SIM_NEVER: nothing waits for an fsync */
	/* the state machine */
	uint64_t applied, digest, commit_seen;
	uint64_t snap_index, snap_term, snap_digest;
	struct raft_conf snap_conf;
	const struct raft_wire_msg *cur; /* the APPEND being received */
	uint64_t *pending_reads;         /* ready reads waiting to be applied */
};

static uint64_t ms(uint64_t us)
{
	return us / SIM_MS;
}

static void violation(struct raft_world *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void violation(struct raft_world *w, const char *fmt, ...)
{
	va_list ap;

	if (w->violation[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(w->violation, sizeof w->violation, fmt, ap);
	va_end(ap);
}

static uint64_t *grow_u64(uint64_t *v, size_t *cap, size_t need)
{
	size_t c = *cap ? *cap : 256;

	while (c <= need)
		c *= 2;
	if (c == *cap)
		return v;
	v = sh_reallocarray(v, c, sizeof *v);
	memset(v + *cap, 0, (c - *cap) * sizeof *v);
	*cap = c;
	return v;
}

/* Global per-index arrays large enough for index i. */
static void need_index(struct raft_world *w, uint64_t i)
{
	size_t cap = w->idx_cap;

	w->applied_digest = grow_u64(w->applied_digest, &cap, i);
	cap = w->idx_cap;
	w->committed_term = grow_u64(w->committed_term, &cap, i);
	w->idx_cap = cap;
}

/* ------------------------------------------------------------ the disk */

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static void disk_hs(struct rw_node *nd, uint64_t term, uint64_t vote)
{
	uint8_t b[20];
	uint32_t crc;

	put64(b, term);
	put64(b + 8, vote);
	crc = sh_crc32c(0, b, 16);
	memcpy(b + 16, &crc, 4);
	sim_disk_write(nd->w->sim, nd->idx, "hs", 0, b, 20);
	sim_disk_fsync(nd->w->sim, nd->idx, "hs");
}

/* A log record: u32 body length, u64 index, u64 term, u8 type, body, u32
 * CRC32C of all before it.  Type 0 is a reset marker: the log restarts
 * after `index` (a snapshot was installed). */
static void disk_record(struct rw_node *nd, uint64_t index, uint64_t term, uint8_t type,
			const uint8_t *body, uint32_t len)
{
	uint8_t *rec = sh_malloc(25 + len + 4);
	uint32_t crc;

	memcpy(rec, &len, 4);
	put64(rec + 4, index);
	put64(rec + 12, term);
	rec[20] = type;
	if (len)
		memcpy(rec + 21, body, len);
	crc = sh_crc32c(0, rec, 21 + len);
	memcpy(rec + 21 + len, &crc, 4);
	sim_disk_write(nd->w->sim, nd->idx, "log", nd->log_off, rec, 25 + len);
	nd->log_off += 25 + len;
	sh_free(rec);
	if (nd->fsync_at == SIM_NEVER) /* group commit: one fsync for all until then */
		nd->fsync_at = sim_now(nd->w->sim) + 200 +
			       sh_rand_below(sim_node_rand(nd->w->sim, nd->idx), 2800);
	sim_wake(nd->w->sim, nd->idx);
}

static void disk_snap(struct rw_node *nd)
{
	uint8_t b[SNAP_MAX];
	size_t o = 0;
	uint32_t crc;

	put64(b, nd->snap_index);
	put64(b + 8, nd->snap_term);
	put64(b + 16, nd->snap_digest);
	o = 24;
	memcpy(b + o, &nd->snap_conf.n_voters, 4);
	o += 4;
	for (unsigned i = 0; i < nd->snap_conf.n_voters; i++, o += 8)
		put64(b + o, nd->snap_conf.voters[i]);
	memcpy(b + o, &nd->snap_conf.n_learners, 4);
	o += 4;
	for (unsigned i = 0; i < nd->snap_conf.n_learners; i++, o += 8)
		put64(b + o, nd->snap_conf.learners[i]);
	crc = sh_crc32c(0, b, o);
	memcpy(b + o, &crc, 4);
	sim_disk_write(nd->w->sim, nd->idx, "snap", 0, b, o + 4);
	sim_disk_fsync(nd->w->sim, nd->idx, "snap");
}

/* ------------------------------------------------------------ the log in memory */

static void mem_truncate(struct rw_node *nd, uint64_t from)
{
	while (nd->n > 0 && nd->base + nd->n >= from)
		sh_free(nd->body[--nd->n]);
}

static void mem_append(struct rw_node *nd, const uint8_t *body, uint32_t len)
{
	if (nd->n == nd->cap) {
		nd->cap = nd->cap ? nd->cap * 2 : 64;
		nd->body = sh_reallocarray(nd->body, nd->cap, sizeof *nd->body);
		nd->len = sh_reallocarray(nd->len, nd->cap, sizeof *nd->len);
	}
	nd->body[nd->n] = sh_malloc(len ? len : 1);
	if (len)
		memcpy(nd->body[nd->n], body, len);
	nd->len[nd->n++] = len;
}

/* Forget bodies up to index (a snapshot covers them). */
static void mem_compact(struct rw_node *nd, uint64_t index)
{
	size_t drop = index > nd->base ? index - nd->base : 0;

	if (drop > nd->n)
		drop = nd->n;
	for (size_t i = 0; i < drop; i++)
		sh_free(nd->body[i]);
	if (drop && nd->n > drop) {
		memmove(nd->body, nd->body + drop, (nd->n - drop) * sizeof *nd->body);
		memmove(nd->len, nd->len + drop, (nd->n - drop) * sizeof *nd->len);
	}
	nd->n -= drop;
	nd->base = index;
}

static void log_entry(struct rw_node *nd, uint64_t index, uint64_t term, uint8_t type,
		      const uint8_t *body, uint32_t len)
{
	mem_append(nd, body, len);
	disk_record(nd, index, term, type, body, len);
	nd->written = index;
}

/* ------------------------------------------------------------ applying */

static uint64_t mix(uint64_t d, uint64_t x)
{
	d ^= x + 0x9e3779b97f4a7c15u + (d << 6) + (d >> 2);
	d *= 0xbf58476d1ce4e5b9u;
	return d ^ (d >> 31);
}

static void take_snapshot(struct rw_node *nd)
{
	nd->snap_index = nd->applied;
	nd->snap_term = raft_term_at(nd->raft, nd->applied);
	nd->snap_digest = nd->digest;
	nd->snap_conf = *raft_conf(nd->raft);
	sim_tracef(nd->w->sim, nd->idx, "snapshot at %llu", (unsigned long long)nd->applied);
	disk_snap(nd);
	raft_compacted(nd->raft, nd->applied);
	mem_compact(nd, nd->applied);
}

static void apply(struct rw_node *nd)
{
	struct raft_world *w = nd->w;
	uint64_t limit = raft_commit_index(nd->raft);

	if (raft_durable_index(nd->raft) < limit)
		limit = raft_durable_index(nd->raft);
	while (nd->applied < limit) {
		uint64_t i = nd->applied + 1;
		size_t k = i - nd->base - 1;

		nd->digest = mix(nd->digest, sh_crc32c(0, nd->body[k], nd->len[k]) |
						     raft_term_at(nd->raft, i) << 32);
		need_index(w, i);
		if (w->applied_digest[i] == 0)
			w->applied_digest[i] = nd->digest;
		else if (w->applied_digest[i] != nd->digest)
			violation(w, "n%d applied a different entry at index %llu", nd->idx,
				  (unsigned long long)i);
		nd->applied = i;
	}
	if (w->snap_every && nd->applied - nd->snap_index >= w->snap_every)
		take_snapshot(nd);
}

/* Writes proposed here that are now committed at quorum. */
static void ack_writes(struct rw_node *nd, uint64_t commit)
{
	struct raft_world *w = nd->w;

	for (size_t i = 0; i < w->n_writes; i++) {
		struct rw_write *wr = &w->writes[i];

		if (wr->acked || wr->node != nd->idx || wr->index > commit ||
		    raft_term_at(nd->raft, wr->index) != wr->term)
			continue;
		wr->acked = true;
		wr->acked_at = sim_now(w->sim);
	}
}

static void record_commits(struct rw_node *nd, uint64_t commit)
{
	struct raft_world *w = nd->w;

	for (uint64_t i = nd->commit_seen + 1; i <= commit; i++) {
		uint64_t t = raft_term_at(nd->raft, i);

		if (t == 0)
			continue; /* covered by a snapshot */
		need_index(w, i);
		if (w->committed_term[i] == 0)
			w->committed_term[i] = t;
		else if (w->committed_term[i] != t)
			violation(w,
				  "n%d committed term %llu at index %llu, another node term %llu",
				  nd->idx, (unsigned long long)t, (unsigned long long)i,
				  (unsigned long long)w->committed_term[i]);
		if (i > w->max_committed)
			w->max_committed = i;
	}
	if (commit > nd->commit_seen)
		nd->commit_seen = commit;
}

/* ------------------------------------------------------------ io */

static void send_frame(struct rw_node *nd, uint64_t to, const uint8_t *head, size_t hlen,
		       const struct raft_msg *m)
{
	size_t total = 1 + hlen, o;
	uint8_t *f;

	for (size_t i = 0; i < m->n; i++)
		total += m->entries[i].size;
	f = sh_malloc(total);
	f[0] = TAG_RAFT;
	memcpy(f + 1, head, hlen);
	o = 1 + hlen;
	for (size_t i = 0; i < m->n; i++) {
		size_t k = m->prev_index + 1 + i - nd->base - 1;

		memcpy(f + o, nd->body[k], nd->len[k]);
		o += nd->len[k];
	}
	sim_send(nd->w->sim, nd->idx, (int)to - 1, nd->w->dgram ? SIM_DGRAM : SIM_STREAM, f, total);
	sh_free(f);
}

static void hazard_restart(struct sim *sim, void *arg)
{
	int i = (int)(intptr_t)arg;

	if (!sim_node_up(sim, i))
		sim_start(sim, i);
}

static void hazard_crash(struct sim *sim, void *arg)
{
	int i = (int)(intptr_t)arg;

	if (!sim_node_up(sim, i))
		return;
	sim_crash(sim, i);
	sim_at(sim, sim_now(sim) + (5 + sh_rand_below(sim_rand(sim), 195)) * SIM_MS, hazard_restart,
	       arg);
}

static bool read_hs(struct rw_node *nd, uint64_t *term, uint64_t *vote);

/* Durability before promises: a granted vote is on disk before it is sent,
 * an acknowledged entry is covered by an fsync (or a snapshot). */
static void check_durable(struct rw_node *nd, uint64_t to, const struct raft_msg *m)
{
	uint64_t term = 0, vote = 0;

	if (m->type == RAFT_MSG_VOTE_RESP && m->granted && !m->prevote &&
	    (!read_hs(nd, &term, &vote) || term != m->term || vote != to))
		violation(nd->w, "n%d grants its vote in term %llu before it is on disk", nd->idx,
			  (unsigned long long)m->term);
	if (m->type == RAFT_MSG_APPEND_RESP && m->success && m->match > nd->synced)
		violation(nd->w, "n%d acknowledges entry %llu, fsynced only to %llu", nd->idx,
			  (unsigned long long)m->match, (unsigned long long)nd->synced);
}

/* The moments that matter most to safety are right after a vote and right
 * after a leader sends entries to some of its followers: crash there. */
static void hazard(struct rw_node *nd, const struct raft_msg *m)
{
	struct raft_world *w = nd->w;
	double p = m->type == RAFT_MSG_VOTE_RESP && m->granted && !m->prevote ? w->hazard
		   : m->type == RAFT_MSG_APPEND && m->n > 0                   ? w->hazard / 4
									      : 0;

	if (p > 0 && sh_rand_double(sim_rand(w->sim)) < p)
		sim_at(w->sim, sim_now(w->sim), hazard_crash, (void *)(intptr_t)nd->idx);
}

static void io_send(void *data, uint64_t to, const struct raft_msg *m)
{
	struct rw_node *nd = data;
	uint8_t *head;
	size_t hlen;
	struct sh_err err;

	if (to < 1 || to > (uint64_t)nd->w->n)
		return;
	if (raft_wire_header(m, 0, &head, &hlen, &err) != 0) {
		violation(nd->w, "n%d cannot encode a %s: %s", nd->idx, raft_msg_name(m->type),
			  err.msg);
		return;
	}
	sim_tracef(
		nd->w->sim, nd->idx,
		"send %s to n%d term %llu n %zu prev %llu last %llu/%llu%s%s match %llu hint %llu",
		raft_msg_name(m->type), (int)to - 1, (unsigned long long)m->term, m->n,
		(unsigned long long)m->prev_index, (unsigned long long)m->last_index,
		(unsigned long long)m->last_term, m->prevote ? " pre" : "",
		m->granted ? " granted" : "", (unsigned long long)m->match,
		(unsigned long long)m->hint);
	check_durable(nd, to, m);
	send_frame(nd, to, head, hlen, m);
	sh_free(head);
	hazard(nd, m);
}

static void io_save_hard_state(void *data, uint64_t term, uint64_t vote)
{
	disk_hs(data, term, vote);
}

static void io_truncate(void *data, uint64_t from)
{
	struct rw_node *nd = data;

	if (nd->synced >= from)
		nd->synced = from - 1;
	if (raft_role(nd->raft) == RAFT_LEADER)
		violation(nd->w, "n%d truncated its log from %llu while leader", nd->idx,
			  (unsigned long long)from);
	nd->w->truncations++;
	mem_truncate(nd, from);
	if (nd->written >= from)
		nd->written = from - 1;
}

static void io_append(void *data, uint64_t first, size_t n)
{
	struct rw_node *nd = data;
	const struct raft_wire_msg *m = nd->cur;
	size_t off = first - m->msg.prev_index - 1;

	for (size_t i = 0; i < n; i++) {
		const struct raft_entry_meta *e = &m->entries[off + i];

		log_entry(nd, first + i, e->term, e->type, m->bodies[off + i], e->size);
	}
}

static void io_append_noop(void *data, uint64_t index, uint64_t term)
{
	log_entry(data, index, term, RAFT_ENTRY_NOOP, NULL, 0);
}

static void io_commit(void *data, uint64_t index)
{
	struct rw_node *nd = data;

	sim_tracef(nd->w->sim, nd->idx, "commit %llu (last %llu durable %llu)",
		   (unsigned long long)index, (unsigned long long)raft_last_index(nd->raft),
		   (unsigned long long)raft_durable_index(nd->raft));
	record_commits(nd, index);
	ack_writes(nd, index);
	apply(nd);
}

static void check_new_leader(struct rw_node *nd)
{
	struct raft_world *w = nd->w;
	uint64_t t = raft_term(nd->raft);
	size_t cap = w->terms_cap;

	w->leader_of_term = grow_u64(w->leader_of_term, &cap, t);
	w->terms_cap = cap;
	if (w->leader_of_term[t] != 0 && w->leader_of_term[t] != nd->id)
		violation(w, "two leaders in term %llu: n%llu and n%d", (unsigned long long)t,
			  (unsigned long long)w->leader_of_term[t] - 1, nd->idx);
	w->leader_of_term[t] = nd->id;
	w->elections++;
	/* leader completeness: every committed entry is in its log */
	for (uint64_t i = nd->snap_index + 1; i <= w->max_committed; i++)
		if (w->committed_term[i] != 0 && raft_term_at(nd->raft, i) != w->committed_term[i])
			violation(w,
				  "n%d leads term %llu without committed entry %llu (term %llu): "
				  "its log has term %llu there and ends at %llu",
				  nd->idx, (unsigned long long)t, (unsigned long long)i,
				  (unsigned long long)w->committed_term[i],
				  (unsigned long long)raft_term_at(nd->raft, i),
				  (unsigned long long)raft_last_index(nd->raft));
}

static void read_ready(struct rw_node *nd, uint64_t read_id, uint64_t index)
{
	struct raft_world *w = nd->w;

	for (size_t i = 0; i < w->n_reads; i++) {
		struct rw_read *r = &w->reads[i];

		if (r->id != read_id || r->done)
			continue;
		r->done = true;
		if (index < r->must_see)
			violation(w, "n%d read at index %llu, before write at %llu acked earlier",
				  nd->idx, (unsigned long long)index,
				  (unsigned long long)r->must_see);
		w->reads_ok++;
	}
}

static void send_snapshot(struct rw_node *nd, uint64_t peer)
{
	uint8_t b[1 + SNAP_MAX];
	long n = sim_disk_read(nd->w->sim, nd->idx, "snap", 0, b + 1, SNAP_MAX);

	if (n <= 0)
		return;
	b[0] = TAG_SNAP;
	nd->w->snapshots_sent++;
	sim_send(nd->w->sim, nd->idx, (int)peer - 1, SIM_STREAM, b, (size_t)n + 1);
}

static void io_event(void *data, const struct raft_event *ev)
{
	struct rw_node *nd = data;

	switch (ev->type) {
	case RAFT_EV_ROLE:
		sim_tracef(nd->w->sim, nd->idx, "raft %s term %llu leader %llu",
			   raft_role_name(raft_role(nd->raft)),
			   (unsigned long long)raft_term(nd->raft),
			   (unsigned long long)raft_leader(nd->raft));
		if (raft_role(nd->raft) == RAFT_LEADER)
			check_new_leader(nd);
		break;
	case RAFT_EV_READ_READY: read_ready(nd, ev->read_id, ev->index); break;
	case RAFT_EV_READ_FAILED: nd->w->reads_failed++; break;
	case RAFT_EV_SNAPSHOT_NEEDED: send_snapshot(nd, ev->peer); break;
	default: break;
	}
}

static uint64_t io_random(void *data)
{
	struct rw_node *nd = data;

	return sh_rand_u64(sim_node_rand(nd->w->sim, nd->idx));
}

/* ------------------------------------------------------------ recovery */

static bool read_hs(struct rw_node *nd, uint64_t *term, uint64_t *vote)
{
	uint8_t b[20];
	uint32_t crc;

	if (sim_disk_read(nd->w->sim, nd->idx, "hs", 0, b, 20) != 20)
		return false;
	memcpy(&crc, b + 16, 4);
	if (crc != sh_crc32c(0, b, 16))
		return false;
	*term = get64(b);
	*vote = get64(b + 8);
	return true;
}

/* Parse a snapshot (the file's format, also the SNAP message's). */
static bool parse_snap(const uint8_t *b, size_t n, uint64_t *index, uint64_t *term,
		       uint64_t *digest, struct raft_conf *c)
{
	size_t o = 24;
	uint32_t crc;

	memset(c, 0, sizeof *c);
	if (n < 32)
		return false;
	*index = get64(b);
	*term = get64(b + 8);
	*digest = get64(b + 16);
	memcpy(&c->n_voters, b + o, 4);
	o += 4;
	if (c->n_voters > RAFT_MAX_NODES || o + c->n_voters * 8 + 8 > n)
		return false;
	for (unsigned i = 0; i < c->n_voters; i++, o += 8)
		c->voters[i] = get64(b + o);
	memcpy(&c->n_learners, b + o, 4);
	o += 4;
	if (c->n_learners > RAFT_MAX_NODES || o + c->n_learners * 8 + 4 > n)
		return false;
	for (unsigned i = 0; i < c->n_learners; i++, o += 8)
		c->learners[i] = get64(b + o);
	memcpy(&crc, b + o, 4);
	return crc == sh_crc32c(0, b, o);
}

static void read_snap(struct rw_node *nd)
{
	uint8_t b[SNAP_MAX];
	long n = sim_disk_read(nd->w->sim, nd->idx, "snap", 0, b, SNAP_MAX);

	nd->snap_conf = nd->w->conf0;
	if (n > 0 && parse_snap(b, (size_t)n, &nd->snap_index, &nd->snap_term, &nd->snap_digest,
				&nd->snap_conf))
		return;
	nd->snap_index = nd->snap_term = nd->snap_digest = 0;
	nd->snap_conf = nd->w->conf0;
}

struct boot_log {
	uint64_t *terms;
	uint8_t *types;
	size_t n;
};

/* One record at off: its fields; false at the end or a torn record. */
static bool read_record(struct rw_node *nd, uint64_t off, uint64_t *index, uint64_t *term,
			uint8_t *type, uint8_t **body, uint32_t *len)
{
	uint8_t h[21];
	uint8_t *rec;
	uint32_t crc;
	bool good;

	if (sim_disk_read(nd->w->sim, nd->idx, "log", off, h, 21) != 21)
		return false;
	memcpy(len, h, 4);
	if (*len > (1u << 24))
		return false;
	rec = sh_malloc(25 + *len);
	good = sim_disk_read(nd->w->sim, nd->idx, "log", off, rec, 25 + *len) == 25 + *len;
	if (good) {
		memcpy(&crc, rec + 21 + *len, 4);
		good = crc == sh_crc32c(0, rec, 21 + *len);
	}
	if (!good) {
		sh_free(rec);
		return false;
	}
	*index = get64(h + 4);
	*term = get64(h + 12);
	*type = h[20];
	*body = rec;
	return true;
}

/* Replay the log file into memory: later records of a lower index truncate
 * what came before; a reset marker empties the log. */
static void read_log(struct rw_node *nd, struct boot_log *bl)
{
	uint64_t off = 0, index, term;
	uint8_t type, *rec;
	uint32_t len;
	size_t cap = 0;

	nd->base = 0;
	while (read_record(nd, off, &index, &term, &type, &rec, &len)) {
		off += 25 + len;
		if (type == 0) {
			mem_truncate(nd, 0);
			nd->base = index;
			bl->n = 0;
		} else if (index > nd->base && index <= nd->base + nd->n + 1) {
			mem_truncate(nd, index);
			bl->n = nd->n;
			if (bl->n == cap) {
				cap = cap ? cap * 2 : 64;
				bl->terms = sh_reallocarray(bl->terms, cap, sizeof *bl->terms);
				bl->types = sh_reallocarray(bl->types, cap, sizeof *bl->types);
			}
			mem_append(nd, rec + 21, len);
			bl->terms[bl->n] = term;
			bl->types[bl->n++] = type;
		}
		sh_free(rec);
	}
	nd->log_off = off;
}

/* The log after the snapshot, as the core boots from it. */
static int boot(struct rw_node *nd, uint64_t now_ms)
{
	struct raft_world *w = nd->w;
	struct boot_log bl = {NULL, NULL, 0};
	struct raft_boot b = {0};
	struct raft_entry_meta *e;
	struct raft_conf *confs;
	struct raft_io io = {nd,          io_send,   io_save_hard_state,
			     io_truncate, io_append, io_append_noop,
			     io_commit,   io_event,  io_random};
	size_t skip;
	int rv;

	read_hs(nd, &b.term, &b.vote);
	read_snap(nd);
	read_log(nd, &bl);
	/* entries the snapshot covers are dropped */
	skip = nd->snap_index > nd->base ? nd->snap_index - nd->base : 0;
	if (skip > nd->n)
		skip = nd->n;
	if (nd->snap_index > nd->base + nd->n) { /* the log ends before the snapshot */
		mem_truncate(nd, 0);
		bl.n = skip = 0;
	}
	mem_compact(nd, nd->snap_index > nd->base ? nd->base + skip : nd->base);
	nd->base = nd->snap_index;
	e = sh_calloc(nd->n + 1, sizeof *e);
	confs = sh_calloc(nd->n + 1, sizeof *confs);
	for (size_t i = 0; i < nd->n; i++) {
		e[i] = (struct raft_entry_meta){bl.terms[skip + i], bl.types[skip + i], nd->len[i],
						NULL};
		if (e[i].type == RAFT_ENTRY_CONFIG &&
		    raft_conf_decode(nd->body[i], nd->len[i], &confs[i], NULL) == 0)
			e[i].conf = &confs[i];
	}
	b.snap_index = nd->snap_index;
	b.snap_term = nd->snap_term;
	b.snap_conf = &nd->snap_conf;
	b.last_index = nd->base + nd->n;
	b.entries = e;
	b.durable = b.last_index;
	b.commit = nd->snap_index;
	nd->written = nd->synced = b.last_index;
	nd->applied = nd->commit_seen = nd->snap_index;
	nd->digest = nd->snap_digest;
	rv = raft_new(&w->opts, &io, &b, now_ms, &nd->raft, NULL);
	sh_free(e);
	sh_free(confs);
	sh_free(bl.terms);
	sh_free(bl.types);
	return rv;
}

/* ------------------------------------------------------------ the vtable */

static void *node_start(struct sim *sim, int i, void *arg)
{
	struct raft_world *w = arg;
	struct rw_node *nd = sh_calloc(1, sizeof *nd);

	nd->w = w;
	nd->idx = i;
	nd->id = (uint64_t)i + 1;
	nd->fsync_at = SIM_NEVER;
	w->opts.id = nd->id;
	if (boot(nd, ms(sim_now(sim))) != 0)
		violation(w, "n%d cannot boot", i);
	return nd;
}

static void node_stop(void *inst)
{
	struct rw_node *nd = inst;

	raft_free(nd->raft);
	mem_truncate(nd, 0);
	sh_free(nd->body);
	sh_free(nd->len);
	sh_free(nd);
}

static void deliver_raft(struct rw_node *nd, uint64_t now, const uint8_t *buf, size_t len)
{
	struct raft_wire_msg m;
	uint32_t n;

	if (len < 4)
		return;
	memcpy(&n, buf, 4);
	if (n != len - 4 || raft_wire_decode(buf + 4, n, 64u << 20, &m, NULL) != 0) {
		violation(nd->w, "n%d got a frame that does not decode", nd->idx);
		return;
	}
	nd->cur = &m;
	raft_recv(nd->raft, ms(now), &m.msg);
	nd->cur = NULL;
	raft_wire_free(&m);
}

static void install_snapshot(struct rw_node *nd, uint64_t now, int from, const uint8_t *b, size_t n)
{
	uint64_t index, term, digest;
	struct raft_conf c;
	uint8_t ack[9] = {TAG_SNACK};

	if (!parse_snap(b, n, &index, &term, &digest, &c))
		return;
	if (index > nd->applied) {
		bool kept = raft_snapshot_installed(nd->raft, ms(now), index, term, &c);

		sim_tracef(nd->w->sim, nd->idx, "install snapshot %llu term %llu%s",
			   (unsigned long long)index, (unsigned long long)term,
			   kept ? ", log after it kept" : ", log dropped");
		nd->snap_index = index;
		nd->snap_term = term;
		nd->snap_digest = digest;
		nd->snap_conf = c;
		disk_snap(nd);
		if (kept) {
			mem_compact(nd, index);
		} else {
			disk_record(nd, index, term, 0, NULL, 0); /* the log restarts after it */
			sim_disk_fsync(nd->w->sim, nd->idx, "log");
			mem_truncate(nd, 0);
			nd->base = index;
			nd->written = index;
		}
		if (nd->synced < index)
			nd->synced = index;
		nd->applied = index;
		if (nd->commit_seen < index)
			nd->commit_seen = index;
		nd->digest = digest;
		apply(nd);
	}
	put64(ack + 1, index);
	sim_send(nd->w->sim, nd->idx, from, SIM_STREAM, ack, sizeof ack);
}

static void node_deliver(void *inst, uint64_t now, int from, enum sim_chan ch, const uint8_t *buf,
			 size_t len)
{
	struct rw_node *nd = inst;

	if (len < 1)
		return;
	if (buf[0] == TAG_RAFT)
		deliver_raft(nd, now, buf + 1, len - 1);
	else if (buf[0] == TAG_SNAP)
		install_snapshot(nd, now, from, buf + 1, len - 1);
	else if (buf[0] == TAG_SNACK && len == 9)
		raft_snapshot_sent(nd->raft, ms(now), (uint64_t)from + 1, get64(buf + 1));
	raft_flush(nd->raft, ms(now));
}

static void node_tick(void *inst, uint64_t now)
{
	struct rw_node *nd = inst;

	if (now >= nd->fsync_at) {
		sim_disk_fsync(nd->w->sim, nd->idx, "log");
		nd->fsync_at = SIM_NEVER;
		nd->synced = nd->written;
		raft_persisted(nd->raft, ms(now), nd->written);
		apply(nd);
	}
	raft_tick(nd->raft, ms(now));
	raft_flush(nd->raft, ms(now));
}

static uint64_t node_deadline(void *inst)
{
	struct rw_node *nd = inst;
	uint64_t d = raft_next_deadline(nd->raft);

	d = d >= SIM_NEVER / SIM_MS ? SIM_NEVER : d * SIM_MS;
	return nd->fsync_at < d ? nd->fsync_at : d;
}

static const struct sim_proto proto = {node_start, node_stop, node_deliver, node_tick,
				       node_deadline};

/* ------------------------------------------------------------ the world */

static bool check(struct sim *sim, void *arg, char *why, size_t size)
{
	struct raft_world *w = arg;

	if (w->violation[0] == '\0')
		return true;
	snprintf(why, size, "%s", w->violation);
	return false;
}

struct raft_world *rw_new(uint64_t seed, int n, int n_voters, const struct raft_opts *opts)
{
	struct raft_world *w = sh_calloc(1, sizeof *w);

	w->n = n;
	w->opts = *opts;
	for (int i = 0; i < n; i++) {
		if (i < n_voters)
			w->conf0.voters[w->conf0.n_voters++] = (uint64_t)i + 1;
		else
			w->conf0.learners[w->conf0.n_learners++] = (uint64_t)i + 1;
	}
	w->sim = sim_new(seed, n, &proto, w);
	sim_check_add(w->sim, "raft safety", check, w);
	return w;
}

static void workloads_free(struct raft_world *w);

void rw_free(struct raft_world *w)
{
	sim_free(w->sim);
	workloads_free(w);
	sh_free(w->leader_of_term);
	sh_free(w->applied_digest);
	sh_free(w->committed_term);
	sh_free(w->writes);
	sh_free(w->reads);
	sh_free(w);
}

void rw_start_all(struct raft_world *w)
{
	for (int i = 0; i < w->n; i++)
		sim_start(w->sim, i);
}

void rw_use_dgram(struct raft_world *w, bool on)
{
	w->dgram = on;
}

static struct rw_node *node(struct raft_world *w, int i)
{
	return sim_node_up(w->sim, i) ? sim_node_instance(w->sim, i) : NULL;
}

struct raft *rw_raft(struct raft_world *w, int i)
{
	struct rw_node *nd = node(w, i);

	return nd != NULL ? nd->raft : NULL;
}

int rw_leader(struct raft_world *w)
{
	int best = -1;

	for (int i = 0; i < w->n; i++) {
		struct raft *r = rw_raft(w, i);

		if (r != NULL && raft_role(r) == RAFT_LEADER &&
		    (best < 0 || raft_term(r) > raft_term(rw_raft(w, best))))
			best = i;
	}
	return best;
}

uint64_t rw_applied(struct raft_world *w, int i)
{
	struct rw_node *nd = node(w, i);

	return nd != NULL ? nd->applied : 0;
}

uint64_t rw_digest(struct raft_world *w, int i)
{
	struct rw_node *nd = node(w, i);

	return nd != NULL ? nd->digest : 0;
}

/* ------------------------------------------------------------ workload */

static void *grow(void *v, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return v;
	*cap = *cap ? *cap * 2 : 64;
	return sh_reallocarray(v, *cap, size);
}

int rw_write(struct raft_world *w, int i)
{
	struct rw_node *nd = node(w, i);
	uint8_t body[16];
	uint64_t index, term, id = ++w->next_write;
	uint64_t now = ms(sim_now(w->sim));

	if (nd == NULL || raft_propose(nd->raft, now, RAFT_ENTRY_DATA, sizeof body, &index, &term))
		return -1;
	put64(body, id);
	put64(body + 8, sh_rand_u64(sim_rand(w->sim)));
	log_entry(nd, index, term, RAFT_ENTRY_DATA, body, sizeof body);
	w->writes = grow(w->writes, &w->writes_cap, w->n_writes, sizeof *w->writes);
	w->writes[w->n_writes++] = (struct rw_write){id, i, index, term, false, 0};
	raft_flush(nd->raft, now);
	return 0;
}

static uint64_t max_acked(const struct raft_world *w)
{
	uint64_t m = 0;

	for (size_t i = 0; i < w->n_writes; i++)
		if (w->writes[i].acked && w->writes[i].index > m)
			m = w->writes[i].index;
	return m;
}

/* A linearizable read: by lease at a leader that holds one, else by
 * ReadIndex; its read point must cover every write acknowledged before. */
void rw_read(struct raft_world *w, int i)
{
	struct rw_node *nd = node(w, i);
	uint64_t now = ms(sim_now(w->sim)), id = w->n_reads + 1;

	if (nd == NULL)
		return;
	w->reads = grow(w->reads, &w->reads_cap, w->n_reads, sizeof *w->reads);
	w->reads[w->n_reads++] = (struct rw_read){id, i, now, max_acked(w), false};
	if (raft_role(nd->raft) == RAFT_LEADER && raft_lease_valid(nd->raft, now)) {
		read_ready(nd, id, raft_commit_index(nd->raft));
		return;
	}
	raft_read_index(nd->raft, now, id);
	raft_flush(nd->raft, now);
}

int rw_conf(struct raft_world *w, const struct raft_conf *c)
{
	int l = rw_leader(w);
	struct rw_node *nd = l >= 0 ? node(w, l) : NULL;
	uint64_t index, term, now = ms(sim_now(w->sim));
	uint8_t *body;
	size_t len;
	int rv;

	if (nd == NULL || raft_conf_encode(c, &body, &len, NULL) != 0)
		return SH_EUNAVAIL;
	rv = raft_propose_conf(nd->raft, now, c, (uint32_t)len, &index, &term);
	if (rv == 0) {
		log_entry(nd, index, term, RAFT_ENTRY_CONFIG, body, (uint32_t)len);
		raft_flush(nd->raft, now);
	}
	sh_free(body);
	return rv;
}

struct workload {
	struct raft_world *w;
	uint64_t period, until;
	struct workload *next;
};

static void work(struct sim *sim, void *arg)
{
	struct workload *wl = arg;
	struct raft_world *w = wl->w;
	int l = rw_leader(w), r = (int)sh_rand_below(sim_rand(sim), (uint64_t)w->n);

	if (l >= 0)
		rw_write(w, l);
	rw_read(w, r);
	if (sim_now(sim) + wl->period < wl->until)
		sim_at(sim, sim_now(sim) + wl->period, work, wl);
}

static void workloads_free(struct raft_world *w)
{
	while (w->workloads != NULL) {
		struct workload *wl = w->workloads;

		w->workloads = wl->next;
		sh_free(wl);
	}
}

void rw_workload(struct raft_world *w, uint64_t period_us, uint64_t until)
{
	struct workload *wl = sh_malloc(sizeof *wl);

	*wl = (struct workload){w, period_us, until, w->workloads};
	w->workloads = wl; /* a run may end before it does */
	sim_at(w->sim, sim_now(w->sim) + period_us, work, wl);
}

/* ------------------------------------------------------------ settling */

static bool unsettled(struct sim *sim, void *arg)
{
	struct raft_world *w = arg;
	int l = rw_leader(w);
	uint64_t commit, want = max_acked(w);

	if (l < 0)
		return true;
	commit = raft_commit_index(rw_raft(w, l));
	if (commit < want || raft_term_at(rw_raft(w, l), commit) != raft_term(rw_raft(w, l)))
		return true;
	for (int i = 0; i < w->n; i++)
		if (sim_node_up(sim, i) &&
		    (rw_applied(w, i) != commit || rw_digest(w, i) != rw_digest(w, l)))
			return true;
	return false;
}

int rw_settle(struct raft_world *w, uint64_t limit)
{
	int rc = sim_run_while(w->sim, unsettled, w, sim_now(w->sim) + limit);
	int l = rw_leader(w);

	if (rc < 0)
		return -1;
	if (rc == 1) {
		char b[200] = "";

		for (int i = 0; i < w->n; i++)
			snprintf(b + strlen(b), sizeof b - strlen(b), " n%d:%s/%llu", i,
				 rw_raft(w, i) ? raft_role_name(raft_role(rw_raft(w, i))) : "down",
				 (unsigned long long)rw_applied(w, i));
		violation(w, "not settled after %llu ms: leader n%d;%s",
			  (unsigned long long)(limit / SIM_MS), l, b);
		return -1;
	}
	for (size_t i = 0; i < w->n_writes; i++)
		if (w->writes[i].acked && rw_applied(w, l) < w->writes[i].index) {
			violation(w, "acked write %llu at %llu not applied",
				  (unsigned long long)w->writes[i].id,
				  (unsigned long long)w->writes[i].index);
			return -1;
		}
	return 0;
}
