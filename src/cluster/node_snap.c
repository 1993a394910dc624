/*
 * node_snap: a follower whose next entry the leader no longer holds gets
 * the leader's latest snapshot (dissertation §5; doc/replication.md,
 * "Snapshots").
 *
 * The leader streams the snapshot file as its self-checking chunks
 * (snapshot.h), each a SnapChunk on the peer link, while the link's queue
 * is under half of max_output (it goes on when the link drains).  The
 * follower checks and writes each chunk (snap_recv), and after the last
 * one fsyncs and renames the file, installs it as its applied state
 * (db_install) and tells the core, which keeps the log after the snapshot
 * when it holds the snapshot's last entry and else drops it; then it
 * answers SnapAck installed, and the leader resumes normal replication
 * after the snapshot.  Any failure answers SnapAck with the error: the
 * leader drops the transfer, and the core asks again later.
 *
 * The follower takes a snapshot from any node of its cluster (the peer
 * link checked the cluster id), not only from the leader it knows: a
 * restarted follower may not have heard from the leader yet, which sends
 * it no AppendEntries while the transfer runs, and a snapshot holds only
 * applied, so committed, entries: installing one beyond the applied index
 * is safe whoever sends it.  One transfer at a time; a new one (offset 0)
 * replaces it.
 */
#include "build.h"

#include "cluster/node_impl.h"

#include "proto/cluster.pb-c.h"
#include "storage/db.h"
#include "storage/snapshot.h"
#include "util/alloc.h"
#include "util/log.h"

#include <inttypes.h>
#include <string.h>

/* ------------------------------------------------------------ leader */

static struct snap_out *out_find(struct node *n, uint64_t peer)
{
	for (size_t i = 0; i < NODE_MAX_SNAP_OUT; i++)
		if (n->snap_out[i].chunks != NULL && n->snap_out[i].peer == peer)
			return &n->snap_out[i];
	return NULL;
}

static void out_close(struct snap_out *o)
{
	snap_chunks_close(o->chunks);
	memset(o, 0, sizeof *o);
}

static int send_chunk(struct node *n, struct snap_out *o, const void *data, size_t len,
		      uint64_t offset)
{
	Shoal__Cluster__SnapChunk m = SHOAL__CLUSTER__SNAP_CHUNK__INIT;

	m.index = o->index;
	m.term = o->term;
	m.offset = offset;
	m.data = (ProtobufCBinaryData){len, (uint8_t *)(uintptr_t)data};
	m.last = len == 0;
	return node_send_msg(n, o->peer, PEER_SNAP, &m.base);
}

/* Send chunks while the link has room. */
static void pump(struct node *n, struct snap_out *o)
{
	struct sh_err err;

	while (!o->done_sending && n->o.env.backlog(n->o.env.data, o->peer) < n->o.max_output / 2) {
		const void *data;
		size_t len;
		uint64_t offset;
		int rv = snap_chunks_next(o->chunks, &data, &len, &offset, &err);

		if (rv == 0 && len == 0)
			offset = o->offset;
		if (rv == 0)
			rv = send_chunk(n, o, data, len, offset);
		if (rv != 0) {
			LOG_WARN("raft",
				 "snapshot %" PRIu64 " to %016" PRIx64 ": stopped (%s); it is sent "
				 "again when the follower asks",
				 o->index, o->peer,
				 rv == SH_EBUSY || rv == SH_EUNAVAIL ? "link down" : err.msg);
			out_close(o);
			return;
		}
		o->offset = offset + len;
		o->done_sending = len == 0;
		o->progress_at = node_now();
	}
}

void node_snap_needed(struct node *n, uint64_t peer)
{
	uint64_t index = db_snapshot_index(n->o.db);
	struct snap_out *o = out_find(n, peer);
	struct sh_err err;

	if (raft_role(n->raft) != RAFT_LEADER)
		return;
	if (o != NULL && node_now() - o->progress_at < n->o.raft.election_timeout_ms)
		return; /* under way */
	if (o != NULL) {
		/* asked again with no answer: chunks were lost with a broken
		 * link, or its queue never drained; start over */
		LOG_INFO("raft", "snapshot %" PRIu64 " to %016" PRIx64 ": no answer, sending again",
			 o->index, peer);
		out_close(o);
	}
	o = NULL;
	for (size_t i = 0; i < NODE_MAX_SNAP_OUT && o == NULL; i++)
		if (n->snap_out[i].chunks == NULL)
			o = &n->snap_out[i];
	if (o == NULL || index == 0)
		return; /* the core asks again */
	if (snap_chunks_open(db_snap_dir(n->o.db), index, &o->chunks, &err) != 0) {
		LOG_ERROR("raft", "cannot send snapshot %" PRIu64 " to %016" PRIx64 ": %s", index,
			  peer, err.msg);
		return;
	}
	o->peer = peer;
	o->index = index;
	o->term = snap_chunks_term(o->chunks);
	o->progress_at = node_now();
	LOG_INFO("raft", "sending snapshot %" PRIu64 " to %016" PRIx64 " (its next entry is gone)",
		 index, peer);
	pump(n, o);
}

void node_snap_writable(struct node *n, uint64_t peer)
{
	struct snap_out *o = out_find(n, peer);

	if (o != NULL)
		pump(n, o);
}

void node_snap_recv_ack(struct node *n, uint64_t from, const uint8_t *buf, size_t len)
{
	Shoal__Cluster__SnapAck *m = shoal__cluster__snap_ack__unpack(NULL, len, buf);
	struct snap_out *o = out_find(n, from);

	if (m == NULL || o == NULL || m->index != o->index) {
		if (m != NULL)
			shoal__cluster__snap_ack__free_unpacked(m, NULL);
		return;
	}
	if (m->installed) {
		LOG_INFO("raft", "%016" PRIx64 " installed snapshot %" PRIu64, from, o->index);
		raft_snapshot_sent(n->raft, node_now(), from, o->index);
	} else {
		LOG_WARN("raft", "%016" PRIx64 " refused snapshot %" PRIu64 ": %s", from, o->index,
			 m->message ? m->message : "?");
	}
	out_close(o);
	shoal__cluster__snap_ack__free_unpacked(m, NULL);
}

void node_snap_on_role(struct node *n)
{
	if (raft_role(n->raft) == RAFT_LEADER)
		return;
	for (size_t i = 0; i < NODE_MAX_SNAP_OUT; i++)
		if (n->snap_out[i].chunks != NULL)
			out_close(&n->snap_out[i]);
}

/* ------------------------------------------------------------ follower */

static void send_ack(struct node *n, uint64_t to, uint64_t index, bool installed,
		     const struct sh_err *err)
{
	Shoal__Cluster__SnapAck m = SHOAL__CLUSTER__SNAP_ACK__INIT;

	m.index = index;
	m.installed = installed;
	m.code = err != NULL ? err->code : 0;
	m.message = (char *)(uintptr_t)(err != NULL ? err->msg : "");
	node_send_msg(n, to, PEER_SNAP_ACK, &m.base);
}

static void in_drop(struct node *n)
{
	snap_recv_abort(n->snap_in.r);
	memset(&n->snap_in, 0, sizeof n->snap_in);
}

/* The snapshot is the applied state: tell the core, cut the log, answer. */
static void installed(void *arg, int rv, const struct sh_err *err, uint64_t term, uint64_t index,
		      size_t affected)
{
	struct node **tok = arg, *n = *tok;
	struct snap_in *in;
	struct raft_conf conf = {0};
	const unsigned char *v;
	size_t len;
	struct sh_err e2;

	(void)term;
	(void)affected;
	sh_free(tok);
	if (n == NULL)
		return; /* the node is gone */
	in = &n->snap_in;
	in->tok = NULL;
	in->installing = false;
	if (n->failed)
		return;
	db_installed_voters(n->o.db, &v, &len);
	if (rv == 0 && len > 0 && (rv = raft_conf_decode(v, len, &conf, &e2)) != 0)
		err = &e2;
	if (rv != 0) {
		LOG_ERROR("raft", "cannot install snapshot %" PRIu64 ": %s", in->index, err->msg);
		send_ack(n, in->from, in->index, false, err);
		return;
	}
	if (!raft_snapshot_installed(n->raft, node_now(), in->index, in->term, &conf)) {
		db_reset(n->o.db, in->index + 1);
		node_log_clear(n);
		n->log.first = in->index + 1;
		/* a create or drop of the dropped log can no longer hold the
		 * leader's write gate shut (the review's ddl-gate-snapshot) */
		if (n->ddl_upto > in->index)
			n->ddl_upto = in->index;
	}
	db_commit(n->o.db, in->index);
	send_ack(n, in->from, in->index, true, NULL);
	node_flush(n);
}

static int start_in(struct node *n, uint64_t from, const Shoal__Cluster__SnapChunk *m,
		    struct sh_err *err)
{
	int rv;

	if (m->offset != 0)
		return sh_err_set(err, SH_EINVAL,
				  "snapshot %" PRIu64 ": first chunk at offset %" PRIu64, m->index,
				  m->offset);
	if (m->index <= db_applied_index(n->o.db))
		return sh_err_set(err, SH_EINVAL,
				  "snapshot %" PRIu64 " is not beyond the applied index %" PRIu64,
				  m->index, db_applied_index(n->o.db));
	if ((rv = snap_recv_open(db_snap_dir(n->o.db), m->index, m->term, &n->snap_in.r, err)) != 0)
		return rv;
	n->snap_in.from = from;
	n->snap_in.index = m->index;
	n->snap_in.term = m->term;
	LOG_INFO("raft", "receiving snapshot %" PRIu64 " from %016" PRIx64, m->index, from);
	return 0;
}

static int take_chunk(struct node *n, uint64_t from, const Shoal__Cluster__SnapChunk *m,
		      struct sh_err *err)
{
	struct snap_in *in = &n->snap_in;
	int rv;

	if (in->installing)
		return 0; /* the leader resent: the install answers */
	if (in->r == NULL && m->index <= db_applied_index(n->o.db)) {
		/* this node already holds that state (it applied it, so it is
		 * committed and durable here): say so, and the leader goes on
		 * with the entries after it — refusing made the leader send
		 * the same snapshot for ever (whole-node simulator) */
		send_ack(n, from, m->index, true, NULL);
		return 0;
	}
	if (in->r != NULL && (in->from != from || in->index != m->index || m->offset == 0))
		in_drop(n); /* a new transfer replaces the old */
	if (in->r == NULL && (rv = start_in(n, from, m, err)) != 0)
		return rv;
	if (m->last) {
		rv = snap_recv_finish(in->r, err);
		in->r = NULL;
		if (rv == 0 && (in->tok = sh_malloc(sizeof *in->tok)) == NULL)
			rv = sh_err_set(err, SH_ENOMEM, "out of memory");
		if (rv == 0) {
			*in->tok = n;
			if ((rv = db_install(n->o.db, in->index, installed, in->tok, err)) != 0) {
				sh_free(in->tok);
				in->tok = NULL;
			}
		}
		in->installing = rv == 0;
		return rv;
	}
	return snap_recv_chunk(in->r, m->offset, m->data.data, m->data.len, err);
}

void node_snap_recv_chunk(struct node *n, uint64_t from, const uint8_t *buf, size_t len)
{
	Shoal__Cluster__SnapChunk *m = shoal__cluster__snap_chunk__unpack(NULL, len, buf);
	struct sh_err err;

	if (m == NULL) {
		LOG_WARN("raft", "from %016" PRIx64 ": a snapshot chunk does not decode", from);
		return;
	}
	if (take_chunk(n, from, m, &err) != 0) {
		LOG_WARN("raft", "snapshot %" PRIu64 " from %016" PRIx64 ": %s", m->index, from,
			 err.msg);
		if (!n->snap_in.installing)
			in_drop(n);
		send_ack(n, from, m->index, false, &err);
	}
	shoal__cluster__snap_chunk__free_unpacked(m, NULL);
}

void node_snap_free_all(struct node *n)
{
	for (size_t i = 0; i < NODE_MAX_SNAP_OUT; i++)
		if (n->snap_out[i].chunks != NULL)
			out_close(&n->snap_out[i]);
	if (n->snap_in.tok != NULL)
		*n->snap_in.tok = NULL; /* the install completes without us */
	else
		in_drop(n);
	n->snap_in.installing = false;
}
