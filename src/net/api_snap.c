/*
 * api_snap: backups — METHOD_SNAPSHOT (doc/protocol.md, "Snapshots").
 *
 * A request with session 0 makes the storage take a snapshot of the
 * applied state now (db_snapshot: a snapshot started after the call,
 * written by a forked child while the apply goes on) and opens a *session*
 * on that file: its self-checking chunks
 * (snap_chunks: the header, then one frame each, every frame's CRC checked
 * before it is handed out), served one per request in order.  The session
 * holds the file open, so a newer snapshot that prunes it meanwhile does
 * not cut the download short.  Asking again for the chunk just served
 * serves it again (its reply was lost); the end frame closes the session.
 *
 * At most API_SNAP_SESSIONS sessions at once; one idle for
 * API_SNAP_IDLE_MS is closed when a new one needs its place (or at stop).
 * Taking the snapshot and reading chunks run on the search pool, never on
 * the loop; a session is touched by one job at a time (busy), and by the
 * loop only while it is not busy.
 */
#include "build.h"

#include "net/api.h"

#include "storage/snapshot.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

struct api_snap {
	uint64_t id; /* 0: a free slot */
	struct snap_chunks *chunks;
	uint64_t index, term, size;
	uint64_t next;         /* offset of the next chunk */
	const void *prev;      /* the chunk served last (in chunks' buffer) */
	size_t prev_len;       /* ... its length */
	uint64_t prev_off;     /* ... its offset */
	bool have_prev, ended; /* ended: the end frame was served */
	bool busy;             /* a job of it is in flight */
	uint64_t used_ms;      /* last request (monotonic) */
};

struct api_snaps {
	struct api_snap s[API_SNAP_SESSIONS];
	uint64_t next_id;
};

int api_snaps_new(struct api_snaps **out, uint64_t seed)
{
	if ((*out = sh_calloc(1, sizeof **out)) == NULL)
		return SH_ENOMEM;
	(*out)->next_id = seed | 1;
	return 0;
}

static void close_session(struct api_snap *s)
{
	snap_chunks_close(s->chunks);
	memset(s, 0, sizeof *s);
}

void api_snaps_free(struct api_snaps *ss)
{
	if (ss == NULL)
		return;
	for (int i = 0; i < API_SNAP_SESSIONS; i++)
		close_session(&ss->s[i]);
	sh_free(ss);
}

/* A free slot, closing the session idle longest when it is over the limit. */
static struct api_snap *free_slot(struct api_snaps *ss, uint64_t now)
{
	struct api_snap *idle = NULL;

	for (int i = 0; i < API_SNAP_SESSIONS; i++) {
		struct api_snap *s = &ss->s[i];

		if (s->id == 0)
			return s;
		/* used_ms is a time | 1: it may be 1 ms ahead of now */
		if (!s->busy && now >= s->used_ms && now - s->used_ms >= API_SNAP_IDLE_MS &&
		    (idle == NULL || s->used_ms < idle->used_ms))
			idle = s;
	}
	if (idle != NULL) {
		LOG_INFO("api", "snapshot session %016" PRIx64 ": idle for %" PRIu64 " ms, closed",
			 idle->id, now - idle->used_ms);
		close_session(idle);
	}
	return idle;
}

static struct api_snap *find(struct api_snaps *ss, uint64_t id)
{
	for (int i = 0; i < API_SNAP_SESSIONS; i++)
		if (ss->s[i].id == id && id != 0)
			return &ss->s[i];
	return NULL;
}

/* ------------------------------------------------------------ on a worker */

/* Take a snapshot now and open its file; a newer snapshot may prune it
 * between the two steps: then open that one. */
static int open_fresh(struct op *op, struct api_snap *s)
{
	struct db *db = api_db(op->api);
	struct sh_err err;
	int rv = db_snapshot(db, &err);

	if (rv != 0)
		return api_op_error(op, rv, "cannot take a snapshot: %s", err.msg);
	for (int tries = 0; tries < 3; tries++) {
		uint64_t index = db_snapshot_index(db);

		if (index == 0)
			return api_op_error(
				op, SH_EUNSUPPORTED,
				"nothing is applied on this node yet: no snapshot to save");
		if ((rv = snap_chunks_open(db_snap_dir(db), index, &s->chunks, &err)) == 0) {
			s->index = index;
			s->term = snap_chunks_term(s->chunks);
			s->size = snap_chunks_size(s->chunks);
			return 0;
		}
		if (rv != SH_ENOTFOUND)
			break;
	}
	return api_op_error(op, rv, "cannot read the snapshot: %s", err.msg);
}

/* The chunk at offset into the reply (copied into the op's arena). */
static int serve(struct op *op, struct api_snap *s, uint64_t offset)
{
	Shoal__SnapshotResponse *r = api_new_msg(op, &shoal__snapshot_response__descriptor);
	struct sh_err err;
	uint8_t *copy = NULL;
	int rv;

	if (r == NULL)
		return api_op_error(op, SH_ENOMEM, "out of memory");
	if (!(s->have_prev && offset == s->prev_off)) {
		if (offset != s->next)
			return api_op_error(op, SH_EINVAL,
					    "snapshot session %016" PRIx64
					    ": asked for offset %" PRIu64
					    ", the next piece is at offset %" PRIu64,
					    s->id, offset, s->next);
		if ((rv = snap_chunks_next(s->chunks, &s->prev, &s->prev_len, &s->prev_off,
					   &err)) != 0)
			return api_op_error(op, rv, "%s", err.msg);
		s->have_prev = true;
		s->next = s->prev_off + s->prev_len;
	}
	if (s->prev_len > 0 && (copy = arena_alloc(&op->arena, s->prev_len)) == NULL)
		return api_op_error(op, SH_ENOMEM, "out of memory");
	if (copy != NULL)
		memcpy(copy, s->prev, s->prev_len);
	r->session = s->id;
	r->index = s->index;
	r->term = s->term;
	r->size = s->size;
	r->offset = s->prev_off;
	r->data = (ProtobufCBinaryData){s->prev_len, copy};
	r->last = s->prev_len == 0;
	op->resp = &r->base;
	op->status = SHOAL__STATUS_CODE__OK;
	return 0;
}

static void run(struct pool_job *j)
{
	struct op *op = (struct op *)((char *)j - offsetof(struct op, job));
	const Shoal__SnapshotRequest *req = (const void *)op->req;
	struct api_snap *s = op->ctx;

	if (s->chunks == NULL && open_fresh(op, s) != 0)
		return;
	serve(op, s, req->offset);
}

/* ------------------------------------------------------------ on the loop */

static void done(struct pool_job *j)
{
	struct op *op = (struct op *)((char *)j - offsetof(struct op, job));
	const Shoal__SnapshotResponse *r = (const void *)op->resp;
	struct api_snap *s = op->ctx;
	bool fresh = s->used_ms == 0;

	s->busy = false;
	s->used_ms = sh_clock_mono_ms() | 1;
	if (op->status == SHOAL__STATUS_CODE__OK && fresh)
		LOG_INFO("api",
			 "snapshot session %016" PRIx64 ": serving snapshot %" PRIu64
			 " (term %" PRIu64 ", %" PRIu64 " bytes)",
			 s->id, s->index, s->term, s->size);
	if (op->status == SHOAL__STATUS_CODE__OK)
		api_ids(op->api, &((Shoal__SnapshotResponse *)op->resp)->node_id,
			&((Shoal__SnapshotResponse *)op->resp)->cluster_id);
	if (op->status != SHOAL__STATUS_CODE__OK &&
	    (fresh || op->status != SHOAL__STATUS_CODE__INVALID_ARGUMENT))
		close_session(s); /* nothing to resume (a wrong offset can be) */
	else if (op->status == SHOAL__STATUS_CODE__OK && r->last) {
		LOG_INFO("api", "snapshot session %016" PRIx64 ": snapshot %" PRIu64 " sent whole",
			 s->id, s->index);
		close_session(s);
	}
	api_complete(op);
}

void api_snap_start(struct op *op, struct api_snaps *ss, struct pool *pool)
{
	const Shoal__SnapshotRequest *req = (const void *)op->req;
	uint64_t now = sh_clock_mono_ms();
	struct api_snap *s;

	if (req->session == 0) {
		if (req->offset != 0)
			return api_fail(op, SHOAL__STATUS_CODE__INVALID_ARGUMENT,
					"a new snapshot session starts at offset 0, not %" PRIu64,
					req->offset);
		if ((s = free_slot(ss, now)) == NULL)
			return api_fail(op, SHOAL__STATUS_CODE__RESOURCE_EXHAUSTED,
					"%d snapshot downloads are under way on this node; "
					"try again later",
					API_SNAP_SESSIONS);
		s->id = ss->next_id;
		ss->next_id += 2;
	} else if ((s = find(ss, req->session)) == NULL) {
		return api_fail(op, SHOAL__STATUS_CODE__NOT_FOUND,
				"no snapshot session %016" PRIx64
				" on this node (it ended, was idle for %d s, or is another "
				"node's): start again with session 0",
				req->session, API_SNAP_IDLE_MS / 1000);
	} else if (s->busy) {
		return api_fail(op, SHOAL__STATUS_CODE__FAILED_PRECONDITION,
				"snapshot session %016" PRIx64
				": a request of it is in flight; ask for one piece at a time",
				req->session);
	}
	s->busy = true;
	op->ctx = s;
	op->job.run = run;
	op->job.done = done;
	pool_submit(pool, &op->job);
}
