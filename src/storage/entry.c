/*
 * entry: see entry.h.  The protobuf-c structs are filled to point at the
 * caller's data (nothing is copied before packing), and decoding uses
 * sh_malloc through a protobuf-c allocator.
 *
 * protobuf_c_message_unpack() returns NULL both for a body that does not
 * decode and when an allocation failed.  The first is a property of the
 * entry, the same on every replica; the second is not, and must never be
 * taken for it (the replica would skip an entry the others apply).  So
 * each decode has its own allocator, which notes a failed allocation.
 * protobuf-c sizes its allocations from what the body holds (at most a
 * small multiple of the body's length), so a failure is a lack of memory,
 * not a property of the input.
 */
#include "build.h"

#include "storage/entry.h"

#include "proto/log.pb-c.h"
#include "util/alloc.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* The allocator's data, when there is any: whether an allocation failed. */
struct pb_state {
	bool failed;
};

static void *pb_alloc(void *data, size_t size)
{
	void *p = sh_malloc(size);

	if (p == NULL && data != NULL)
		((struct pb_state *)data)->failed = true;
	return p;
}

static void pb_free(void *data, void *ptr)
{
	(void)data;
	sh_free(ptr);
}

static ProtobufCAllocator pb_allocator = {pb_alloc, pb_free, NULL};

const char *entry_type_name(enum wal_type t)
{
	static const char *const names[] = {"none",   "no-op",      "voter configuration",
					    "create", "drop",       "upsert",
					    "delete", "set payload"};

	return (unsigned)t <= WAL_TYPE_MAX ? names[t] : "unknown";
}

/* ------------------------------------------------------------ encoding */

static int pack(const ProtobufCMessage *m, struct wal_buf *b, uint64_t term, uint64_t index,
		uint8_t type, struct sh_err *err)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	unsigned char *body;

	if (len > WAL_MAX_BODY)
		return sh_err_set(err, SH_ETOOBIG, "entry of %zu bytes is over the limit of %u",
				  len, WAL_MAX_BODY);
	if ((body = wal_buf_add(b, term, index, type, len)) == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	protobuf_c_message_pack(m, body);
	return 0;
}

static char *str(const char *s)
{
	return (char *)(uintptr_t)(s ? s : "");
}

/* m points at e's session (in e), or NULL when it has none. */
static Shoal__Log__Session *session_of(const struct entry *e, Shoal__Log__Session *m)
{
	const struct session_req *r = &e->session;

	if (!r->set)
		return NULL;
	shoal__log__session__init(m);
	m->client.data = (uint8_t *)(uintptr_t)r->client;
	m->client.len = SESSION_ID_BYTES;
	m->seq = r->seq;
	m->done_below = r->done_below;
	m->time_ms = r->time_ms;
	m->hash = r->hash;
	m->retry = r->retry;
	return m;
}

static int encode_upsert(const struct entry *e, struct wal_buf *b, uint64_t term, uint64_t index,
			 struct sh_err *err)
{
	Shoal__Log__UpsertPoints m = SHOAL__LOG__UPSERT_POINTS__INIT;
	Shoal__Log__Session sm;
	Shoal__Log__Point *pts = sh_calloc(e->n ? e->n : 1, sizeof *pts);
	Shoal__Log__Point **ptrs = sh_calloc(e->n ? e->n : 1, sizeof *ptrs);
	int rv;

	if (pts == NULL || ptrs == NULL) {
		rv = sh_err_set(err, SH_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < e->n; i++) {
		const struct coll_point *p = &e->points[i];

		pts[i] = (Shoal__Log__Point)SHOAL__LOG__POINT__INIT;
		pts[i].id = p->id;
		pts[i].n_vector = p->dim;
		pts[i].vector = (float *)(uintptr_t)p->vec;
		pts[i].payload.len = p->payload_len;
		pts[i].payload.data = (uint8_t *)(uintptr_t)p->payload;
		ptrs[i] = &pts[i];
	}
	m.collection = str(e->collection);
	m.session = session_of(e, &sm);
	m.n_points = e->n;
	m.points = ptrs;
	rv = pack(&m.base, b, term, index, WAL_UPSERT, err);
out:
	sh_free(pts);
	sh_free(ptrs);
	return rv;
}

static int encode_voters(const struct entry *e, struct wal_buf *b, uint64_t term, uint64_t index,
			 struct sh_err *err)
{
	Shoal__Log__VoterConfig m = SHOAL__LOG__VOTER_CONFIG__INIT;
	Shoal__Log__Voter *v = sh_calloc(e->n ? e->n : 1, sizeof *v);
	Shoal__Log__Voter **ptrs = sh_calloc(e->n ? e->n : 1, sizeof *ptrs);
	int rv;

	if (v == NULL || ptrs == NULL) {
		rv = sh_err_set(err, SH_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < e->n; i++) {
		v[i] = (Shoal__Log__Voter)SHOAL__LOG__VOTER__INIT;
		v[i].node_id = e->voters[i].node_id;
		v[i].address = str(e->voters[i].address);
		ptrs[i] = &v[i];
	}
	m.n_voters = e->n;
	m.voters = ptrs;
	rv = pack(&m.base, b, term, index, WAL_VOTERS, err);
out:
	sh_free(v);
	sh_free(ptrs);
	return rv;
}

static int encode_payload(const struct entry *e, struct wal_buf *b, uint64_t term, uint64_t index,
			  struct sh_err *err)
{
	Shoal__Log__SetPayload m = SHOAL__LOG__SET_PAYLOAD__INIT;
	const struct payload_change *ch = &e->change;
	Shoal__Log__Session sm;

	m.collection = str(e->collection);
	m.session = session_of(e, &sm);
	m.op = (Shoal__Log__PayloadOp)ch->op;
	m.n_ids = e->n;
	m.ids = (uint64_t *)(uintptr_t)e->ids;
	m.payload.len = ch->payload_len;
	m.payload.data = (uint8_t *)(uintptr_t)ch->payload;
	m.key = str(ch->key);
	m.n_keys = ch->n_keys;
	m.keys = (char **)(uintptr_t)ch->keys;
	m.n_keep = ch->n_keep;
	m.keep = (char **)(uintptr_t)ch->keep;
	return pack(&m.base, b, term, index, WAL_SET_PAYLOAD, err);
}

int entry_encode(const struct entry *e, struct wal_buf *b, uint64_t term, uint64_t index,
		 struct sh_err *err)
{
	Shoal__Log__NoOp noop = SHOAL__LOG__NO_OP__INIT;
	Shoal__Log__CreateCollection cr = SHOAL__LOG__CREATE_COLLECTION__INIT;
	Shoal__Log__DropCollection dr = SHOAL__LOG__DROP_COLLECTION__INIT;
	Shoal__Log__DeletePoints de = SHOAL__LOG__DELETE_POINTS__INIT;
	Shoal__Log__Session sm;

	switch (e->type) {
	case WAL_NOOP: return pack(&noop.base, b, term, index, WAL_NOOP, err);
	case WAL_VOTERS: return encode_voters(e, b, term, index, err);
	case WAL_CREATE:
		cr.name = str(e->params.name);
		cr.dim = e->params.dim;
		cr.metric = (Shoal__Log__Metric)e->params.metric;
		cr.m = e->params.m;
		cr.ef_construction = e->params.ef_construction;
		cr.seed = e->params.seed;
		cr.session = session_of(e, &sm);
		return pack(&cr.base, b, term, index, WAL_CREATE, err);
	case WAL_DROP:
		dr.name = str(e->collection);
		dr.session = session_of(e, &sm);
		return pack(&dr.base, b, term, index, WAL_DROP, err);
	case WAL_UPSERT: return encode_upsert(e, b, term, index, err);
	case WAL_DELETE:
		de.collection = str(e->collection);
		de.n_ids = e->n;
		de.ids = (uint64_t *)(uintptr_t)e->ids;
		de.session = session_of(e, &sm);
		return pack(&de.base, b, term, index, WAL_DELETE, err);
	case WAL_SET_PAYLOAD: return encode_payload(e, b, term, index, err);
	}
	return sh_err_set(err, SH_EINVAL, "unknown entry type %d", (int)e->type);
}

/* ------------------------------------------------------------ decoding */

struct decoded {
	ProtobufCMessage *msg;
	void *array; /* coll_point or entry_voter array */
};

static int decode_upsert(Shoal__Log__UpsertPoints *m, struct entry *e, struct decoded *d)
{
	struct coll_point *pts = sh_calloc(m->n_points ? m->n_points : 1, sizeof *pts);

	if (pts == NULL)
		return SH_ENOMEM;
	for (size_t i = 0; i < m->n_points; i++) {
		const Shoal__Log__Point *p = m->points[i];

		pts[i] = (struct coll_point){p->id, p->vector, (uint32_t)p->n_vector,
					     (const char *)p->payload.data, p->payload.len};
		if (p->n_vector > UINT32_MAX)
			pts[i].dim = UINT32_MAX;
	}
	d->array = pts;
	e->collection = m->collection;
	e->points = pts;
	e->n = m->n_points;
	return 0;
}

static int decode_voters(Shoal__Log__VoterConfig *m, struct entry *e, struct decoded *d)
{
	struct entry_voter *v = sh_calloc(m->n_voters ? m->n_voters : 1, sizeof *v);

	if (v == NULL)
		return SH_ENOMEM;
	for (size_t i = 0; i < m->n_voters; i++)
		v[i] = (struct entry_voter){m->voters[i]->node_id, m->voters[i]->address};
	d->array = v;
	e->voters = v;
	e->n = m->n_voters;
	return 0;
}

static void decode_payload(const Shoal__Log__SetPayload *m, struct entry *e)
{
	struct payload_change *ch = &e->change;

	e->collection = m->collection;
	e->ids = m->ids;
	e->n = m->n_ids;
	/* an unknown op (a newer writer) is refused by store_check */
	ch->op = (enum payload_op)m->op;
	ch->payload = (const char *)m->payload.data;
	ch->payload_len = m->payload.len;
	ch->key = m->key;
	ch->keys = (const char *const *)m->keys;
	ch->n_keys = m->n_keys;
	ch->keep = (const char *const *)m->keep;
	ch->n_keep = m->n_keep;
}

/* The session m holds into r.  A client id of another length than 16
 * bytes keeps `set` with an all-zero id, which the checks refuse (as on
 * every replica). */
static void session_from(const Shoal__Log__Session *m, struct session_req *r)
{
	if (m == NULL)
		return;
	r->set = true;
	if (m->client.len == SESSION_ID_BYTES)
		memcpy(r->client, m->client.data, SESSION_ID_BYTES);
	r->seq = m->seq;
	r->done_below = m->done_below;
	r->time_ms = m->time_ms;
	r->hash = m->hash;
	r->retry = m->retry;
}

/* The session field of the write messages (none for the others). */
static const Shoal__Log__Session *msg_session(const struct entry *e, const ProtobufCMessage *m)
{
	switch (e->type) {
	case WAL_CREATE: return ((const Shoal__Log__CreateCollection *)m)->session;
	case WAL_DROP: return ((const Shoal__Log__DropCollection *)m)->session;
	case WAL_UPSERT: return ((const Shoal__Log__UpsertPoints *)m)->session;
	case WAL_DELETE: return ((const Shoal__Log__DeletePoints *)m)->session;
	case WAL_SET_PAYLOAD: return ((const Shoal__Log__SetPayload *)m)->session;
	default: return NULL;
	}
}

static int fill(struct entry *e, struct decoded *d)
{
	session_from(msg_session(e, d->msg), &e->session);
	Shoal__Log__CreateCollection *cr;

	switch (e->type) {
	case WAL_NOOP: return 0;
	case WAL_VOTERS: return decode_voters((Shoal__Log__VoterConfig *)d->msg, e, d);
	case WAL_CREATE:
		cr = (Shoal__Log__CreateCollection *)d->msg;
		snprintf(e->params.name, sizeof e->params.name, "%s", cr->name);
		if (strlen(cr->name) > COLL_NAME_MAX)
			e->params.name[0] = '\0'; /* refused as too long by the checks */
		e->params.dim = cr->dim;
		e->params.metric = (enum sh_metric)cr->metric;
		e->params.m = cr->m;
		e->params.ef_construction = cr->ef_construction;
		e->params.seed = cr->seed;
		return 0;
	case WAL_DROP: e->collection = ((Shoal__Log__DropCollection *)d->msg)->name; return 0;
	case WAL_UPSERT: return decode_upsert((Shoal__Log__UpsertPoints *)d->msg, e, d);
	case WAL_DELETE:
		e->collection = ((Shoal__Log__DeletePoints *)d->msg)->collection;
		e->ids = ((Shoal__Log__DeletePoints *)d->msg)->ids;
		e->n = ((Shoal__Log__DeletePoints *)d->msg)->n_ids;
		return 0;
	case WAL_SET_PAYLOAD: decode_payload((Shoal__Log__SetPayload *)d->msg, e); return 0;
	}
	return SH_EINVAL;
}

static const ProtobufCMessageDescriptor *descriptor(uint8_t type)
{
	switch (type) {
	case WAL_NOOP: return &shoal__log__no_op__descriptor;
	case WAL_VOTERS: return &shoal__log__voter_config__descriptor;
	case WAL_CREATE: return &shoal__log__create_collection__descriptor;
	case WAL_DROP: return &shoal__log__drop_collection__descriptor;
	case WAL_UPSERT: return &shoal__log__upsert_points__descriptor;
	case WAL_DELETE: return &shoal__log__delete_points__descriptor;
	case WAL_SET_PAYLOAD: return &shoal__log__set_payload__descriptor;
	}
	return NULL;
}

static int decode(const struct wal_rec *r, struct entry *e, struct decoded *d, struct sh_err *err)
{
	const ProtobufCMessageDescriptor *desc = descriptor(r->type);
	struct pb_state st = {false};
	ProtobufCAllocator a = {pb_alloc, pb_free, &st};
	int rv;

	if (desc == NULL)
		return sh_err_set(err, SH_EINVAL, "entry %" PRIu64 ": unknown type %u", r->index,
				  r->type);
	d->msg = protobuf_c_message_unpack(desc, &a, r->len, r->body);
	if (d->msg == NULL && st.failed)
		return sh_err_set(err, SH_ENOMEM, "entry %" PRIu64 " (%s): out of memory", r->index,
				  entry_type_name(e->type));
	if (d->msg == NULL)
		return sh_err_set(err, SH_EINVAL,
				  "entry %" PRIu64 " (%s): the body does not decode", r->index,
				  entry_type_name(e->type));
	if ((rv = fill(e, d)) != 0)
		return sh_err_set(err, rv, "entry %" PRIu64 ": out of memory", r->index);
	return 0;
}

int entry_decode(const struct wal_rec *r, struct entry *e, struct sh_err *err)
{
	struct decoded *d = sh_calloc(1, sizeof *d);
	int rv;

	memset(e, 0, sizeof *e);
	if (d == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	e->type = (enum wal_type)r->type;
	e->decoded = d;
	if ((rv = decode(r, e, d, err)) != 0)
		entry_release(e); /* nothing to free after a failure */
	return rv;
}

void entry_release(struct entry *e)
{
	struct decoded *d = e->decoded;

	if (d == NULL)
		return;
	if (d->msg != NULL)
		protobuf_c_message_free_unpacked(d->msg, &pb_allocator);
	sh_free(d->array);
	sh_free(d);
	e->decoded = NULL;
}
