/*
 * node_fwd: writes and cluster changes a follower hands to the leader
 * (node.h; doc/replication.md, "Forwarding").
 *
 * The follower encodes the entry as a log record body (the same bytes the
 * leader would write) and sends it as a Forward on the peer link with
 * what is left of the client's deadline; the write waits on the forwarded
 * list for the ForwardReply with its id.  The leader decodes it, runs it
 * as its own write at the same ack level, and answers with the outcome
 * and the token.  A receiver that does not lead answers not_leader at
 * once, having done nothing, and the follower dispatches the write again
 * (to the leader it knows by then, or to wait for one).  When the leader
 * changes before it answered, the outcome is unknown and the write fails
 * with SH_EUNKNOWN (OUTCOME_UNKNOWN) saying so (node_write.c).
 */
#include "build.h"

#include "cluster/node_impl.h"

#include "proto/cluster.pb-c.h"
#include "util/alloc.h"
#include "util/log.h"

#include <inttypes.h>
#include <string.h>

#define FWD_MIN_MS 1

/* ------------------------------------------------------------ follower */

/* The record body e encodes to: *b holds it (one reference). */
static int encode_entry(const struct entry *e, struct wal_buf **b, struct wal_rec *r,
			struct sh_err *err)
{
	size_t pos = 0;
	int rv;

	if ((*b = wal_buf_new(256)) == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	if ((rv = entry_encode(e, *b, 0, 1, err)) != 0) {
		wal_buf_unref(*b);
		return rv;
	}
	wal_buf_next(*b, &pos, r);
	return 0;
}

int node_fwd_send(struct node *n, struct pwrite *w)
{
	Shoal__Cluster__Forward f = SHOAL__CLUSTER__FORWARD__INIT;
	uint64_t now = node_now(), leader = raft_leader(n->raft);
	struct wal_buf *b = NULL;
	struct wal_rec r;
	struct sh_err err;
	int rv;

	if (w->deadline <= now)
		return SH_ETIMEDOUT;
	f.id = ++n->next_fwd_id;
	f.ack = (uint32_t)w->ack;
	f.timeout_ms = (uint32_t)(w->deadline - now > UINT32_MAX ? UINT32_MAX : w->deadline - now);
	if (w->change != 0) {
		f.change = (uint32_t)w->change;
		f.change_id = w->change_id;
	} else {
		if ((rv = encode_entry(w->e, &b, &r, &err)) != 0)
			return rv;
		f.type = r.type;
		f.body = (ProtobufCBinaryData){r.len, (uint8_t *)(uintptr_t)r.body};
	}
	rv = node_send_msg(n, leader, PEER_FORWARD, &f.base);
	wal_buf_unref(b);
	if (rv != 0)
		return rv;
	w->fwd_id = f.id;
	w->fwd_to = leader;
	if (w->change == 0)
		n->fwd_total++;
	node_write_push_forwarded(n, w);
	return 0;
}

void node_fwd_reply(struct node *n, uint64_t from, const uint8_t *buf, size_t len)
{
	Shoal__Cluster__ForwardReply *m = shoal__cluster__forward_reply__unpack(NULL, len, buf);
	struct pwrite *w;
	struct sh_err err;

	if (m == NULL) {
		LOG_WARN("raft", "from %016" PRIx64 ": a forwarded write's reply does not decode",
			 from);
		return;
	}
	w = node_write_take_forwarded(n, m->id);
	if (w != NULL && w->fwd_to != from) {
		node_write_push_forwarded(n, w); /* not the one we asked */
		w = NULL;
	}
	if (w != NULL && m->not_leader) {
		node_write_wait(n, w); /* nothing was done: again once a leader is known */
	} else if (w != NULL) {
		int code = m->code <= 0 && m->code >= SH_ELAST ? m->code : SH_EUNKNOWN;

		w->term = m->term;
		w->index = m->index;
		w->affected = (size_t)m->affected;
		if (code != m->code)
			sh_err_set(&err, code, "the leader answered with an unknown code %d: %s",
				   m->code, m->message ? m->message : "");
		else
			sh_err_set(&err, code, "%s", m->message ? m->message : "");
		node_write_finish(n, w, code, &err);
	}
	shoal__cluster__forward_reply__free_unpacked(m, NULL);
}

/* ------------------------------------------------------------ leader */

static void reply_error(struct node *n, uint64_t to, uint64_t id, bool not_leader, int code,
			const char *msg)
{
	Shoal__Cluster__ForwardReply r = SHOAL__CLUSTER__FORWARD_REPLY__INIT;

	r.id = id;
	r.code = code;
	r.message = (char *)(uintptr_t)msg;
	r.not_leader = not_leader;
	r.leader = raft_leader(n->raft);
	node_send_msg(n, to, PEER_FORWARDED, &r.base);
}

static void fwd_unlink(struct fwd_in *f)
{
	if (f->prev == NULL)
		return;
	*f->prev = f->next;
	if (f->next != NULL)
		f->next->prev = f->prev;
	f->prev = NULL;
}

static void fwd_done(void *arg, const struct node_result *res)
{
	struct fwd_in *f = arg;
	Shoal__Cluster__ForwardReply r = SHOAL__CLUSTER__FORWARD_REPLY__INIT;

	if (f->n != NULL) {
		r.id = f->id;
		r.code = res->rv;
		r.message = (char *)(uintptr_t)(res->rv != 0 ? res->err.msg : "");
		r.term = res->term;
		r.index = res->index;
		r.affected = res->affected;
		r.leader = res->leader;
		node_send_msg(f->n, f->from, PEER_FORWARDED, &r.base);
		fwd_unlink(f);
	}
	sh_free(f);
}

static int decode_write(struct pwrite *w, const Shoal__Cluster__Forward *m, struct sh_err *err)
{
	struct wal_rec r = {
		.type = (uint8_t)m->type, .len = (uint32_t)m->body.len, .body = m->body.data};
	int rv;

	if (m->change != 0) {
		if (m->change < NODE_ADD || m->change > NODE_TRANSFER)
			return sh_err_set(err, SH_EINVAL, "unknown change %u", m->change);
		w->change = (int)m->change;
		w->change_id = m->change_id;
		return 0;
	}
	if (m->body.len > UINT32_MAX)
		return sh_err_set(err, SH_EINVAL, "a forwarded entry of %zu bytes", m->body.len);
	if (m->type < WAL_CREATE || m->type > WAL_SET_PAYLOAD)
		return sh_err_set(err, SH_EINVAL, "a forwarded entry of type %u is not a write",
				  m->type); /* no-ops and configurations are the leader's */
	if ((rv = entry_decode(&r, &w->entry, err)) != 0)
		return rv;
	w->e = &w->entry;
	w->decoded = true;
	return 0;
}

static struct pwrite *new_fwd_write(struct node *n, uint64_t from, const Shoal__Cluster__Forward *m,
				    struct sh_err *err)
{
	struct pwrite *w = sh_calloc(1, sizeof *w);
	struct fwd_in *f = sh_calloc(1, sizeof *f);
	uint32_t ms = m->timeout_ms;

	if (w == NULL || f == NULL) {
		sh_free(w);
		sh_free(f);
		sh_err_set(err, SH_ENOMEM, "out of memory");
		return NULL;
	}
	if (m->ack < NODE_ACK_LEADER || m->ack > NODE_ACK_ALL || decode_write(w, m, err) != 0) {
		if (err->code == 0)
			sh_err_set(err, SH_EINVAL, "unknown ack level %u", m->ack);
		sh_free(w);
		sh_free(f);
		return NULL;
	}
	*f = (struct fwd_in){
		.n = n, .from = from, .id = m->id, .next = n->fwd_in, .prev = &n->fwd_in};
	if (n->fwd_in != NULL)
		n->fwd_in->prev = &f->next;
	n->fwd_in = f;
	if (n->o.forward_timeout_ms != 0 && ms > n->o.forward_timeout_ms)
		ms = n->o.forward_timeout_ms;
	w->n = n;
	w->ack = (enum node_ack)m->ack;
	w->deadline = node_now() + (ms < FWD_MIN_MS ? FWD_MIN_MS : ms);
	w->done = fwd_done;
	w->arg = f;
	return w;
}

void node_fwd_recv(struct node *n, uint64_t from, const uint8_t *buf, size_t len)
{
	Shoal__Cluster__Forward *m = shoal__cluster__forward__unpack(NULL, len, buf);
	struct pwrite *w;
	struct sh_err err = {0};

	if (m == NULL) {
		LOG_WARN("raft", "from %016" PRIx64 ": a forwarded write does not decode", from);
		return;
	}
	if (raft_role(n->raft) != RAFT_LEADER)
		reply_error(n, from, m->id, true, SH_EUNAVAIL, "not the leader");
	else if ((w = new_fwd_write(n, from, m, &err)) == NULL)
		reply_error(n, from, m->id, false, err.code, err.msg);
	else
		node_write_submit(n, w);
	shoal__cluster__forward__free_unpacked(m, NULL);
}

/* The node is going: forwarded writes still running here answer nobody. */
void node_fwd_free_all(struct node *n)
{
	while (n->fwd_in != NULL) {
		struct fwd_in *f = n->fwd_in;

		fwd_unlink(f);
		f->n = NULL;
	}
}
