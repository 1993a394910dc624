/*
 * libshoal operations: each builds its request message (in an arena freed
 * before returning), calls cl_call (or the pipelining engine) and copies
 * the reply into the caller's structures (doc: shoal.h "Ownership").
 */
#include "build.h"

#include "client/shoal_impl.h"

#include "net/japi.h"
#include "util/alloc.h"
#include "util/clock.h"

#include <string.h>
#include <unistd.h>

#define NOMEM(c) cl_fail((c), SHOAL_RESOURCE_EXHAUSTED, "out of memory")

bool cl_sessions(shoal *c)
{
	if (c->o.ack == SHOAL_ACK_LEADER || c->o.ack == SHOAL_ACK_ONE)
		return false;
	if (c->pid != getpid())
		cl_new_session(c);
	return true;
}

void cl_session(shoal *c, Shoal__WriteOptions *w, uint64_t seq, uint64_t done_below)
{
	w->client_id.data = c->client_id;
	w->client_id.len = sizeof c->client_id;
	w->seq = seq;
	w->done_below = done_below;
}

/* A call's write options: the next seq of the session, every write before
 * it answered (calls on a handle run one at a time). */
static Shoal__WriteOptions *write_opts(shoal *c, struct arena *a)
{
	Shoal__WriteOptions *w = arena_alloc(a, sizeof *w);

	if (w != NULL) {
		shoal__write_options__init(w);
		w->ack = (Shoal__Ack)c->o.ack;
		if (cl_sessions(c)) {
			c->seq++;
			cl_session(c, w, c->seq, c->seq);
		}
	}
	return w;
}

static Shoal__ReadOptions *read_opts(shoal *c, struct arena *a)
{
	Shoal__ReadOptions *r = arena_alloc(a, sizeof *r);

	if (r == NULL)
		return NULL;
	shoal__read_options__init(r);
	r->consistency = (Shoal__Consistency)c->o.consistency;
	if (c->o.consistency == SHOAL_CONSISTENCY_READ_YOUR_WRITES) {
		if ((r->token = arena_alloc(a, sizeof *r->token)) == NULL)
			return NULL;
		shoal__token__init(r->token);
		r->token->term = c->last.term;
		r->token->index = c->last.index;
	}
	return r;
}

static int filter_of(shoal *c, const char *json, struct arena *a, Shoal__Filter **out)
{
	struct sh_err err;

	*out = NULL;
	if (json == NULL || json[0] == '\0')
		return SHOAL_OK;
	if (japi_filter_text(json, strlen(json), a, out, &err) != 0)
		return cl_fail(c, SHOAL_INVALID_ARGUMENT, "%s", err.msg);
	return SHOAL_OK;
}

/* A write: the call, then its token. */
static int write_call(shoal *c, uint16_t method, const ProtobufCMessage *req, struct arena *a,
		      struct shoal_token *tok, uint64_t *affected)
{
	ProtobufCMessage *m = NULL;
	Shoal__WriteResponse *w;
	int rv = cl_call(c, method, req, true, a, &shoal__write_response__descriptor, &m);

	if (rv != SHOAL_OK)
		return rv;
	w = (Shoal__WriteResponse *)m;
	if (w->token != NULL) {
		c->last.term = w->token->term;
		c->last.index = w->token->index;
	}
	if (tok != NULL)
		*tok = c->last;
	if (affected != NULL)
		*affected = w->affected;
	return SHOAL_OK;
}

int shoal_ping(shoal *c)
{
	Shoal__PingRequest r;
	ProtobufCMessage *m;
	struct arena a;
	int rv;

	shoal__ping_request__init(&r);
	arena_init(&a);
	rv = cl_call(c, SHOAL__METHOD__METHOD_PING, &r.base, false, &a,
		     &shoal__ping_response__descriptor, &m);
	arena_free(&a);
	return rv;
}

/* ------------------------------------------------------------ collections */

int shoal_create_collection(shoal *c, const char *name, uint32_t dim, enum shoal_metric metric,
			    uint32_t m, uint32_t ef_construction, struct shoal_token *tok)
{
	Shoal__CreateCollectionRequest r;
	struct arena a;
	int rv;

	shoal__create_collection_request__init(&r);
	arena_init(&a);
	r.name = (char *)(uintptr_t)name;
	r.dim = dim;
	r.metric = (Shoal__Metric)metric;
	r.m = m;
	r.ef_construction = ef_construction;
	r.write = write_opts(c, &a);
	rv = write_call(c, SHOAL__METHOD__METHOD_CREATE_COLLECTION, &r.base, &a, tok, NULL);
	arena_free(&a);
	return rv;
}

int shoal_drop_collection(shoal *c, const char *name, struct shoal_token *tok)
{
	Shoal__DropCollectionRequest r;
	struct arena a;
	int rv;

	shoal__drop_collection_request__init(&r);
	arena_init(&a);
	r.name = (char *)(uintptr_t)name;
	r.write = write_opts(c, &a);
	rv = write_call(c, SHOAL__METHOD__METHOD_DROP_COLLECTION, &r.base, &a, tok, NULL);
	arena_free(&a);
	return rv;
}

static void copy_info(struct shoal_collection_info *o, const Shoal__CollectionInfo *i)
{
	memset(o, 0, sizeof *o);
	snprintf(o->name, sizeof o->name, "%s", i->name);
	o->dim = i->dim;
	o->metric = (enum shoal_metric)i->metric;
	o->m = i->m;
	o->ef_construction = i->ef_construction;
	o->count = i->count;
	o->memory_bytes = i->memory_bytes;
	o->points_indexed = i->points_indexed;
	o->points_fresh = i->points_fresh;
	o->oldest_fresh_ms = i->oldest_fresh_ms;
	o->indexed_total = i->indexed_total;
	o->indexing_rate = i->indexing_rate;
}

int shoal_list_collections(shoal *c, struct shoal_collection_info **out, size_t *n)
{
	Shoal__ListCollectionsRequest r;
	Shoal__ListCollectionsResponse *l;
	ProtobufCMessage *m;
	struct arena a;
	int rv;

	shoal__list_collections_request__init(&r);
	*out = NULL;
	*n = 0;
	arena_init(&a);
	r.read = read_opts(c, &a);
	rv = cl_call(c, SHOAL__METHOD__METHOD_LIST_COLLECTIONS, &r.base, false, &a,
		     &shoal__list_collections_response__descriptor, &m);
	if (rv == SHOAL_OK) {
		l = (Shoal__ListCollectionsResponse *)m;
		cl_read_state(c, l->read_state);
		*out = sh_calloc(l->n_collections + 1, sizeof **out);
		if (*out == NULL)
			rv = NOMEM(c);
		for (size_t i = 0; *out != NULL && i < l->n_collections; i++)
			copy_info(&(*out)[i], l->collections[i]);
		*n = *out != NULL ? l->n_collections : 0;
	}
	arena_free(&a);
	return rv;
}

int shoal_describe_collection(shoal *c, const char *name, struct shoal_collection_info *out)
{
	Shoal__DescribeCollectionRequest r;
	ProtobufCMessage *m;
	struct arena a;
	int rv;

	shoal__describe_collection_request__init(&r);
	arena_init(&a);
	r.name = (char *)(uintptr_t)name;
	r.read = read_opts(c, &a);
	rv = cl_call(c, SHOAL__METHOD__METHOD_DESCRIBE_COLLECTION, &r.base, false, &a,
		     &shoal__collection_info__descriptor, &m);
	if (rv == SHOAL_OK) {
		copy_info(out, (Shoal__CollectionInfo *)m);
		cl_read_state(c, ((Shoal__CollectionInfo *)m)->read_state);
	}
	arena_free(&a);
	return rv;
}

/* ------------------------------------------------------------ writes */

static int build_upsert(shoal *c, Shoal__UpsertRequest *r, const char *coll,
			const struct shoal_point *pts, size_t n, struct arena *a)
{
	shoal__upsert_request__init(r);
	r->collection = (char *)(uintptr_t)coll;
	r->write = write_opts(c, a);
	r->points = arena_calloc(a, n ? n : 1, sizeof *r->points);
	if (r->points == NULL || r->write == NULL)
		return NOMEM(c);
	for (size_t i = 0; i < n; i++) {
		Shoal__Point *p = arena_alloc(a, sizeof *p);

		if (p == NULL)
			return NOMEM(c);
		shoal__point__init(p);
		p->id = pts[i].id;
		p->vector = (float *)(uintptr_t)pts[i].vector;
		p->n_vector = pts[i].dim;
		if (pts[i].payload != NULL) {
			p->payload.data = (uint8_t *)(uintptr_t)pts[i].payload;
			p->payload.len =
				pts[i].payload_len ? pts[i].payload_len : strlen(pts[i].payload);
		}
		r->points[r->n_points++] = p;
	}
	return SHOAL_OK;
}

int shoal_upsert(shoal *c, const char *collection, const struct shoal_point *pts, size_t n,
		 struct shoal_token *tok)
{
	Shoal__UpsertRequest r;
	struct arena a;
	int rv;

	arena_init(&a);
	rv = build_upsert(c, &r, collection, pts, n, &a);
	if (rv == SHOAL_OK)
		rv = write_call(c, SHOAL__METHOD__METHOD_UPSERT, &r.base, &a, tok, NULL);
	arena_free(&a);
	return rv;
}

int shoal_delete(shoal *c, const char *collection, const uint64_t *ids, size_t n, size_t *deleted,
		 struct shoal_token *tok)
{
	Shoal__DeleteRequest r;
	uint64_t affected = 0;
	struct arena a;
	int rv;

	shoal__delete_request__init(&r);
	arena_init(&a);
	r.collection = (char *)(uintptr_t)collection;
	r.ids = (uint64_t *)(uintptr_t)ids;
	r.n_ids = n;
	r.write = write_opts(c, &a);
	rv = write_call(c, SHOAL__METHOD__METHOD_DELETE, &r.base, &a, tok, &affected);
	if (deleted != NULL)
		*deleted = (size_t)affected;
	arena_free(&a);
	return rv;
}

/* ------------------------------------------------------------ results */

void shoal_results_free(struct shoal_results *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n; i++) {
		sh_free(r->v[i].vector);
		sh_free(r->v[i].payload);
	}
	sh_free(r->v);
	memset(r, 0, sizeof *r);
}

static int record(struct shoal_record *o, uint64_t id, float dist, const float *v, size_t n,
		  const ProtobufCBinaryData *pl)
{
	o->id = id;
	o->distance = dist;
	if (n > 0) {
		if ((o->vector = sh_malloc(n * sizeof *v)) == NULL)
			return -1;
		memcpy(o->vector, v, n * sizeof *v);
		o->dim = (uint32_t)n;
	}
	if (pl->len > 0) {
		if ((o->payload = sh_strndup((const char *)pl->data, pl->len)) == NULL)
			return -1;
		o->payload_len = pl->len;
	}
	return 0;
}

static int results_alloc(shoal *c, struct shoal_results *out, size_t n)
{
	memset(out, 0, sizeof *out);
	if ((out->v = sh_calloc(n + 1, sizeof *out->v)) == NULL)
		return NOMEM(c);
	return SHOAL_OK;
}

static int from_points(shoal *c, Shoal__Point **p, size_t n, struct shoal_results *out)
{
	int rv = results_alloc(c, out, n);

	for (size_t i = 0; rv == SHOAL_OK && i < n; i++, out->n++)
		if (record(&out->v[i], p[i]->id, 0, p[i]->vector, p[i]->n_vector, &p[i]->payload) !=
		    0)
			rv = NOMEM(c);
	if (rv != SHOAL_OK)
		shoal_results_free(out);
	return rv;
}

static int from_search(shoal *c, const Shoal__SearchResponse *s, struct shoal_results *out)
{
	int rv = results_alloc(c, out, s->n_points);

	for (size_t i = 0; rv == SHOAL_OK && i < s->n_points; i++, out->n++) {
		const Shoal__ScoredPoint *p = s->points[i];

		if (record(&out->v[i], p->id, p->distance, p->vector, p->n_vector, &p->payload))
			rv = NOMEM(c);
	}
	out->exact = s->exact;
	if (rv != SHOAL_OK)
		shoal_results_free(out);
	return rv;
}

/* ------------------------------------------------------------ reads */

int shoal_get(shoal *c, const char *collection, const uint64_t *ids, size_t n, int flags,
	      struct shoal_results *out)
{
	Shoal__GetRequest r;
	Shoal__PointsResponse *p;
	ProtobufCMessage *m;
	struct arena a;
	int rv;

	shoal__get_request__init(&r);
	memset(out, 0, sizeof *out);
	arena_init(&a);
	r.collection = (char *)(uintptr_t)collection;
	r.ids = (uint64_t *)(uintptr_t)ids;
	r.n_ids = n;
	r.with_payload = (flags & SHOAL_WITH_PAYLOAD) != 0;
	r.with_vector = (flags & SHOAL_WITH_VECTOR) != 0;
	r.read = read_opts(c, &a);
	rv = cl_call(c, SHOAL__METHOD__METHOD_GET, &r.base, false, &a,
		     &shoal__points_response__descriptor, &m);
	if (rv == SHOAL_OK) {
		p = (Shoal__PointsResponse *)m;
		cl_read_state(c, p->read_state);
		rv = from_points(c, p->points, p->n_points, out);
	}
	arena_free(&a);
	return rv;
}

static int build_search(shoal *c, Shoal__SearchRequest *r, const char *coll,
			const struct shoal_search *q, struct arena *a)
{
	shoal__search_request__init(r);
	r->collection = (char *)(uintptr_t)coll;
	r->vector = (float *)(uintptr_t)q->vector;
	r->n_vector = q->dim;
	r->k = q->k;
	r->ef = q->ef;
	r->with_payload = (q->flags & SHOAL_WITH_PAYLOAD) != 0;
	r->with_vector = (q->flags & SHOAL_WITH_VECTOR) != 0;
	r->exact = (q->flags & SHOAL_EXACT) != 0;
	r->read = read_opts(c, a);
	return filter_of(c, q->filter, a, &r->filter);
}

int shoal_search(shoal *c, const char *collection, const struct shoal_search *q,
		 struct shoal_results *out)
{
	Shoal__SearchRequest r;
	ProtobufCMessage *m;
	struct arena a;
	int rv;

	memset(out, 0, sizeof *out);
	arena_init(&a);
	if ((rv = build_search(c, &r, collection, q, &a)) == SHOAL_OK)
		rv = cl_call(c, SHOAL__METHOD__METHOD_SEARCH, &r.base, false, &a,
			     &shoal__search_response__descriptor, &m);
	if (rv == SHOAL_OK) {
		cl_read_state(c, ((Shoal__SearchResponse *)m)->read_state);
		rv = from_search(c, (Shoal__SearchResponse *)m, out);
	}
	arena_free(&a);
	return rv;
}

int shoal_scroll(shoal *c, const char *collection, uint64_t offset, uint32_t limit,
		 const char *filter, int flags, struct shoal_results *out)
{
	Shoal__ScrollRequest r;
	Shoal__ScrollResponse *s;
	ProtobufCMessage *m;
	struct arena a;
	int rv;

	shoal__scroll_request__init(&r);
	memset(out, 0, sizeof *out);
	arena_init(&a);
	r.collection = (char *)(uintptr_t)collection;
	r.offset = offset;
	r.limit = limit;
	r.with_payload = (flags & SHOAL_WITH_PAYLOAD) != 0;
	r.with_vector = (flags & SHOAL_WITH_VECTOR) != 0;
	r.read = read_opts(c, &a);
	if ((rv = filter_of(c, filter, &a, &r.filter)) == SHOAL_OK)
		rv = cl_call(c, SHOAL__METHOD__METHOD_SCROLL, &r.base, false, &a,
			     &shoal__scroll_response__descriptor, &m);
	if (rv == SHOAL_OK) {
		s = (Shoal__ScrollResponse *)m;
		cl_read_state(c, s->read_state);
		if ((rv = from_points(c, s->points, s->n_points, out)) == SHOAL_OK) {
			out->has_next = s->has_next;
			out->next_offset = s->next_offset;
		}
	}
	arena_free(&a);
	return rv;
}

int shoal_count(shoal *c, const char *collection, const char *filter, uint64_t *count)
{
	Shoal__CountRequest r;
	ProtobufCMessage *m;
	struct arena a;
	int rv;

	shoal__count_request__init(&r);
	arena_init(&a);
	r.collection = (char *)(uintptr_t)collection;
	r.read = read_opts(c, &a);
	if ((rv = filter_of(c, filter, &a, &r.filter)) == SHOAL_OK)
		rv = cl_call(c, SHOAL__METHOD__METHOD_COUNT, &r.base, false, &a,
			     &shoal__count_response__descriptor, &m);
	if (rv == SHOAL_OK) {
		*count = ((Shoal__CountResponse *)m)->count;
		cl_read_state(c, ((Shoal__CountResponse *)m)->read_state);
	}
	arena_free(&a);
	return rv;
}

static int status_call(shoal *c, struct arena *a, Shoal__ClusterStatusResponse **out)
{
	Shoal__ClusterStatusRequest r;
	ProtobufCMessage *m;
	int rv;

	shoal__cluster_status_request__init(&r);
	rv = cl_call(c, SHOAL__METHOD__METHOD_CLUSTER_STATUS, &r.base, false, a,
		     &shoal__cluster_status_response__descriptor, &m);
	*out = rv == SHOAL_OK ? (Shoal__ClusterStatusResponse *)m : NULL;
	return rv;
}

static size_t copy_ids(uint64_t *to, const uint64_t *from, size_t n)
{
	n = n < SHOAL_MAX_VOTERS ? n : SHOAL_MAX_VOTERS;
	if (n > 0)
		memcpy(to, from, n * sizeof *to);
	return n;
}

static void copy_raft(struct shoal_cluster_status *o, const Shoal__ClusterStatusResponse *s)
{
	o->cluster_id = s->cluster_id;
	o->durable_index = s->durable_index;
	o->first_index = s->first_index;
	o->snapshot_index = s->snapshot_index;
	snprintf(o->leader_address, sizeof o->leader_address, "%s", s->leader_address);
	o->pending_writes = s->pending_writes;
	o->elections = s->elections;
	o->leader_changes = s->leader_changes;
	o->n_voters = copy_ids(o->voters, s->voters, s->n_voters);
	o->n_learners = copy_ids(o->learners, s->learners, s->n_learners);
	o->ready = s->ready;
	snprintf(o->ready_reason, sizeof o->ready_reason, "%s", s->ready_reason);
	o->lag = s->lag;
	o->lag_ms = s->lag_ms;
	o->disk_full = s->disk_full;
	o->disk_full_ms = s->disk_full_ms;
	o->disk_full_episodes = s->disk_full_episodes;
}

int shoal_cluster_status(shoal *c, struct shoal_cluster_status *out)
{
	Shoal__ClusterStatusResponse *s;
	struct arena a;
	int rv;

	arena_init(&a);
	memset(out, 0, sizeof *out);
	if ((rv = status_call(c, &a, &s)) == SHOAL_OK) {
		out->node_id = s->node_id;
		snprintf(out->node_name, sizeof out->node_name, "%s", s->node_name);
		snprintf(out->role, sizeof out->role, "%s", s->role);
		out->term = s->term;
		out->leader_id = s->leader_id;
		out->commit_index = s->commit_index;
		out->applied_index = s->applied_index;
		out->last_index = s->last_index;
		snprintf(out->digest, sizeof out->digest, "%s", s->digest);
		out->collections = s->collections;
		out->points = s->points;
		snprintf(out->version, sizeof out->version, "%s", s->version);
		out->members = s->n_members;
		copy_raft(out, s);
	}
	arena_free(&a);
	return rv;
}

static void copy_member(struct shoal_member *o, const Shoal__Member *m)
{
	o->node_id = m->node_id;
	snprintf(o->name, sizeof o->name, "%s", m->name);
	o->state = m->state >= SHOAL__MEMBER_STATE__MEMBER_ALIVE &&
				   m->state <= SHOAL__MEMBER_STATE__MEMBER_LEFT
			   ? (enum shoal_member_state)m->state
			   : SHOAL_MEMBER_UNKNOWN;
	o->incarnation = m->incarnation;
	snprintf(o->cluster_address, sizeof o->cluster_address, "%s", m->cluster_address);
	snprintf(o->client_address, sizeof o->client_address, "%s", m->client_address);
	snprintf(o->rest_address, sizeof o->rest_address, "%s", m->rest_address);
	snprintf(o->role, sizeof o->role, "%s", m->role);
	o->voter = m->voter;
	o->applied_index = m->applied_index;
	o->commit_index = m->commit_index;
	o->lag = m->lag;
	o->state_age_ms = m->state_age_ms;
	o->last_heard_ms = m->last_heard_ms;
	o->match_index = m->match_index;
	o->lag_ms = m->lag_ms;
}

int shoal_cluster_members(shoal *c, struct shoal_member **out, size_t *n)
{
	Shoal__ClusterStatusResponse *s;
	struct arena a;
	int rv;

	*out = NULL;
	*n = 0;
	arena_init(&a);
	if ((rv = status_call(c, &a, &s)) == SHOAL_OK) {
		if ((*out = sh_calloc(s->n_members + 1, sizeof **out)) == NULL)
			rv = NOMEM(c);
		for (size_t i = 0; *out != NULL && i < s->n_members; i++)
			copy_member(&(*out)[i], s->members[i]);
		*n = *out != NULL ? s->n_members : 0;
	}
	arena_free(&a);
	return rv;
}

const char *shoal_member_state_name(enum shoal_member_state s)
{
	static const char *const names[] = {"unknown", "alive", "suspect", "dead", "left"};

	return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "unknown";
}

int shoal_cluster_change(shoal *c, enum shoal_change kind, uint64_t node_id,
			 struct shoal_token *tok)
{
	Shoal__ClusterChangeRequest r;
	struct arena a;
	int rv;

	shoal__cluster_change_request__init(&r);
	arena_init(&a);
	r.kind = (Shoal__ChangeKind)kind;
	r.node_id = node_id;
	rv = write_call(c, SHOAL__METHOD__METHOD_CLUSTER_CHANGE, &r.base, &a, tok, NULL);
	arena_free(&a);
	return rv;
}

int shoal_keyring(shoal *c, enum shoal_keyring_op op, const char *key,
		  char (*fps)[SHOAL_KEY_FP + 1], size_t max, size_t *n,
		  char key_fp[SHOAL_KEY_FP + 1])
{
	Shoal__KeyringRequest r;
	Shoal__KeyringResponse *k;
	ProtobufCMessage *m = NULL;
	struct arena a;
	char buf[128];
	int rv;

	shoal__keyring_request__init(&r);
	r.op = (Shoal__KeyringOp)op;
	snprintf(buf, sizeof buf, "%s", key != NULL ? key : "");
	r.key = buf;
	arena_init(&a);
	rv = cl_call(c, SHOAL__METHOD__METHOD_KEYRING, &r.base, false, &a,
		     &shoal__keyring_response__descriptor, &m);
	if (n != NULL)
		*n = 0;
	if (rv == SHOAL_OK) {
		k = (Shoal__KeyringResponse *)m;
		if (key_fp != NULL)
			snprintf(key_fp, SHOAL_KEY_FP + 1, "%s", k->key_fingerprint);
		for (size_t i = 0; i < k->n_fingerprints && fps != NULL && i < max; i++) {
			snprintf(fps[i], SHOAL_KEY_FP + 1, "%s", k->fingerprints[i]);
			if (n != NULL)
				*n = i + 1;
		}
	}
	explicit_bzero(buf, sizeof buf);
	arena_free(&a);
	return rv;
}
