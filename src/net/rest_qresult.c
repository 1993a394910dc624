/*
 * rest_qresult: response messages as Qdrant's JSON (doc/qdrant.md): point
 * ids as the client wrote them (a UUID kept in the payload), payloads
 * without that key and cut to the request's selector, scores with
 * Qdrant's conventions per distance, collection info in Qdrant's shape.
 * Loop thread; results are new jansson values.
 */
#include "build.h"

#include "net/japi.h"
#include "net/rest_impl.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

static json_t *hex_id(uint64_t id)
{
	char buf[17];

	snprintf(buf, sizeof buf, "%016" PRIx64, id);
	return json_string(buf);
}

json_t *rest_update_result(uint64_t index, uint64_t term, bool completed)
{
	return json_pack("{s:I,s:s,s:{s:I,s:I}}", "operation_id", (json_int_t)index, "status",
			 completed ? "completed" : "acknowledged", "token", "term",
			 (json_int_t)term, "index", (json_int_t)index);
}

/* ------------------------------------------------------------ collections */

static const char *distance_name(int metric)
{
	return metric == SHOAL__METRIC__METRIC_COSINE ? "Cosine"
	       : metric == SHOAL__METRIC__METRIC_DOT  ? "Dot"
						      : "Euclid";
}

json_t *rest_collection_info(const Shoal__CollectionInfo *i)
{
	json_t *config = json_pack(
		"{s:{s:{s:I,s:s},s:i,s:i,s:b},s:{s:I,s:I,s:i,s:i,s:b},s:{s:f,s:i,s:i,s:n,s:n,s:i,"
		"s:i,s:n},s:n}",
		"params", "vectors", "size", (json_int_t)i->dim, "distance",
		distance_name(i->metric), "shard_number", 1, "write_consistency_factor", 1,
		"on_disk_payload", 0, "hnsw_config", "m", (json_int_t)i->m, "ef_construct",
		(json_int_t)i->ef_construction, "full_scan_threshold", 0, "max_indexing_threads", 0,
		"on_disk", 0, "optimizer_config", "deleted_threshold", 0.2,
		"vacuum_min_vector_number", 1000, "default_segment_number", 1, "max_segment_size",
		"memmap_threshold", "indexing_threshold", 0, "flush_interval_sec", 0,
		"max_optimization_threads", "quantization_config");

	/* yellow while points wait for the graph, as Qdrant says while it
	 * optimizes */
	return json_pack("{s:s,s:s,s:I,s:I,s:I,s:i,s:o,s:{},s:{s:s,s:I,s:I,s:I,s:I,s:I,s:I}}",
			 "status", i->points_fresh > 0 ? "yellow" : "green", "optimizer_status",
			 "ok", "points_count", (json_int_t)i->count, "indexed_vectors_count",
			 (json_int_t)i->points_indexed, "vectors_count", (json_int_t)i->count,
			 "segments_count", 1, "config", config, "payload_schema", "shoal", "name",
			 i->name, "memory_bytes", (json_int_t)i->memory_bytes, "points_indexed",
			 (json_int_t)i->points_indexed, "points_fresh", (json_int_t)i->points_fresh,
			 "oldest_fresh_ms", (json_int_t)i->oldest_fresh_ms, "indexed_total",
			 (json_int_t)i->indexed_total, "indexing_rate",
			 (json_int_t)i->indexing_rate);
}

json_t *rest_collections(const Shoal__ListCollectionsResponse *l)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < l->n_collections; i++)
		json_array_append_new(a, json_pack("{s:s}", "name", l->collections[i]->name));
	return json_pack("{s:o}", "collections", a);
}

/* ------------------------------------------------------------ points */

/* The payload as stored (NULL when none or unreadable). */
static json_t *payload_of(const ProtobufCBinaryData *pl)
{
	return pl->len ? json_loadb((const char *)pl->data, pl->len, 0, NULL) : NULL;
}

json_t *rest_point_id(uint64_t id, const ProtobufCBinaryData *payload)
{
	json_t *p, *u, *r;

	if (id < JAPI_UUID_SPACE || (p = payload_of(payload)) == NULL)
		return japi_id_json(id);
	u = json_object_get(p, REST_UUID_KEY);
	r = json_is_string(u) ? json_incref(u) : japi_id_json(id);
	json_decref(p);
	return r;
}

/* Copy dotted path key of from into to (objects on the way). */
static void copy_path(json_t *to, const json_t *from, const char *key)
{
	const char *dot = strchr(key, '.');
	const json_t *v;
	json_t *sub;

	if (!json_is_object(from))
		return;
	if (dot == NULL) {
		if ((v = json_object_get(from, key)) != NULL)
			json_object_set(to, key, (json_t *)(uintptr_t)v);
		return;
	}
	v = json_object_getn(from, key, (size_t)(dot - key));
	if (!json_is_object(v))
		return;
	sub = json_object_getn(to, key, (size_t)(dot - key));
	if (!json_is_object(sub)) {
		sub = json_object();
		json_object_setn_new(to, key, (size_t)(dot - key), sub);
	}
	copy_path(sub, v, dot + 1);
}

static void drop_path(json_t *o, const char *key)
{
	const char *dot = strchr(key, '.');

	if (!json_is_object(o))
		return;
	if (dot == NULL)
		json_object_del(o, key);
	else
		drop_path(json_object_getn(o, key, (size_t)(dot - key)), dot + 1);
}

/* The payload a request selected (NULL: none wanted). */
static json_t *selected(const ProtobufCBinaryData *pl, const json_t *sel)
{
	const json_t *in = json_object_get(sel, "include"), *ex = json_object_get(sel, "exclude");
	json_t *p, *out, *k;
	size_t i;

	if (sel == NULL || json_is_false(sel))
		return NULL;
	if ((p = payload_of(pl)) == NULL)
		return json_object();
	json_object_del(p, REST_UUID_KEY);
	if (in == NULL) {
		json_array_foreach(ex, i, k)
		{
			drop_path(p, json_string_value(k));
		}
		return p;
	}
	out = json_object();
	json_array_foreach(in, i, k)
	{
		copy_path(out, p, json_string_value(k));
	}
	json_decref(p);
	return out;
}

static json_t *floats(const float *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < n; i++)
		json_array_append_new(a, json_real((double)v[i]));
	return a;
}

/* Whether the point written with want_uuid is the one at its id. */
static bool holds(const ProtobufCBinaryData *pl, const char *want_uuid)
{
	json_t *p = payload_of(pl);
	bool same = json_is_string(json_object_get(p, REST_UUID_KEY)) &&
		    strcmp(json_string_value(json_object_get(p, REST_UUID_KEY)), want_uuid) == 0;

	json_decref(p);
	return same;
}

json_t *rest_record(const Shoal__Point *p, const json_t *sel, bool vec, const char *want_uuid)
{
	json_t *o, *pl;

	if (want_uuid != NULL && want_uuid[0] != '\0' && !holds(&p->payload, want_uuid))
		return NULL;
	if ((o = json_object()) == NULL)
		return NULL;
	json_object_set_new(o, "id", rest_point_id(p->id, &p->payload));
	if ((pl = selected(&p->payload, sel)) != NULL)
		json_object_set_new(o, "payload", pl);
	if (vec)
		json_object_set_new(o, "vector", floats(p->vector, p->n_vector));
	return o;
}

/* Qdrant's score from shoal's distance (lower is nearer): cosine
 * similarity, dot product, euclidean distance (not squared). */
static double score_of(int metric, float d)
{
	switch (metric) {
	case SHOAL__METRIC__METRIC_COSINE: return 1.0 - (double)d;
	case SHOAL__METRIC__METRIC_DOT: return -(double)d;
	default: return d > 0 ? sqrt((double)d) : 0.0;
	}
}

json_t *rest_scored(const Shoal__SearchResponse *s, int metric, size_t offset,
		    const Shoal__SearchRequest *q, const json_t *sel, bool vec,
		    const double *threshold)
{
	json_t *a = json_array();

	for (size_t i = offset; a != NULL && i < s->n_points; i++) {
		const Shoal__ScoredPoint *p = s->points[i];
		double score = score_of(metric, p->distance);
		json_t *o, *pl;

		if (threshold != NULL &&
		    (metric == SHOAL__METRIC__METRIC_L2 ? score > *threshold : score < *threshold))
			break; /* the rest are farther still */
		o = json_pack("{s:o,s:i,s:f}", "id", rest_point_id(p->id, &p->payload), "version",
			      0, "score", score);
		if (o != NULL && (pl = selected(&p->payload, sel)) != NULL)
			json_object_set_new(o, "payload", pl);
		if (o != NULL && vec && q->with_vector)
			json_object_set_new(o, "vector", floats(p->vector, p->n_vector));
		json_array_append_new(a, o);
	}
	return a;
}

/* ------------------------------------------------------------ cluster */

static const char *member_state_name(Shoal__MemberState s)
{
	switch (s) {
	case SHOAL__MEMBER_STATE__MEMBER_ALIVE: return "alive";
	case SHOAL__MEMBER_STATE__MEMBER_SUSPECT: return "suspect";
	case SHOAL__MEMBER_STATE__MEMBER_DEAD: return "dead";
	case SHOAL__MEMBER_STATE__MEMBER_LEFT: return "left";
	default: return "unknown";
	}
}

static json_t *member_json(const Shoal__Member *m)
{
	json_t *o = json_pack("{s:s,s:s,s:I,s:s,s:s,s:s,s:I,s:I}", "name", m->name, "state",
			      member_state_name(m->state), "incarnation",
			      (json_int_t)m->incarnation, "cluster_address", m->cluster_address,
			      "client_address", m->client_address, "rest_address", m->rest_address,
			      "state_age_ms", (json_int_t)m->state_age_ms, "last_heard_ms",
			      (json_int_t)m->last_heard_ms);

	json_object_set_new(o, "node_id", hex_id(m->node_id));
	json_object_set_new(o, "role", json_string(m->role));
	json_object_set_new(o, "voter", json_boolean(m->voter));
	json_object_set_new(o, "applied_index", json_integer((json_int_t)m->applied_index));
	json_object_set_new(o, "commit_index", json_integer((json_int_t)m->commit_index));
	json_object_set_new(o, "lag", json_integer((json_int_t)m->lag));
	json_object_set_new(o, "match_index", json_integer((json_int_t)m->match_index));
	json_object_set_new(o, "lag_ms", json_integer((json_int_t)m->lag_ms));
	return o;
}

static json_t *ids_json(const uint64_t *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, hex_id(v[i]));
	return a;
}

/* The replication fields of a cluster status. */
static void raft_json(json_t *o, const Shoal__ClusterStatusResponse *s)
{
	json_object_set_new(o, "cluster_id", hex_id(s->cluster_id));
	json_object_set_new(o, "leader_address", json_string(s->leader_address));
	json_object_set_new(o, "durable_index", json_integer((json_int_t)s->durable_index));
	json_object_set_new(o, "first_index", json_integer((json_int_t)s->first_index));
	json_object_set_new(o, "snapshot_index", json_integer((json_int_t)s->snapshot_index));
	json_object_set_new(o, "pending_writes", json_integer((json_int_t)s->pending_writes));
	json_object_set_new(o, "elections", json_integer((json_int_t)s->elections));
	json_object_set_new(o, "leader_changes", json_integer((json_int_t)s->leader_changes));
	json_object_set_new(o, "voters", ids_json(s->voters, s->n_voters));
	json_object_set_new(o, "learners", ids_json(s->learners, s->n_learners));
	json_object_set_new(o, "ready", json_boolean(s->ready));
	json_object_set_new(o, "ready_reason", json_string(s->ready_reason));
	json_object_set_new(o, "lag", json_integer((json_int_t)s->lag));
	json_object_set_new(o, "lag_ms", json_integer((json_int_t)s->lag_ms));
	json_object_set_new(o, "disk_full", json_boolean(s->disk_full));
	json_object_set_new(o, "disk_full_ms", json_integer((json_int_t)s->disk_full_ms));
	json_object_set_new(o, "disk_full_episodes",
			    json_integer((json_int_t)s->disk_full_episodes));
}

static json_t *members_array(const Shoal__ClusterStatusResponse *s)
{
	json_t *members = json_array();

	for (size_t i = 0; i < s->n_members; i++)
		json_array_append_new(members, member_json(s->members[i]));
	return members;
}

json_t *rest_members(const Shoal__ClusterStatusResponse *s)
{
	return json_pack("{s:o}", "members", members_array(s));
}

/* Qdrant's ClusterStatus fields (status, peer_id, raft_info), then
 * shoal's own. */
static void qdrant_cluster(json_t *o, const Shoal__ClusterStatusResponse *s)
{
	const char *role = strcmp(s->role, "leader") == 0      ? "Leader"
			   : strcmp(s->role, "follower") == 0  ? "Follower"
			   : strcmp(s->role, "candidate") == 0 ? "Candidate"
			   : strcmp(s->role, "learner") == 0   ? "Learner"
							       : "PreCandidate";
	bool voter = false;

	for (size_t i = 0; i < s->n_voters; i++)
		voter = voter || s->voters[i] == s->node_id;
	json_object_set_new(o, "status", json_string("enabled"));
	json_object_set_new(o, "peer_id", japi_id_json(s->node_id));
	json_object_set_new(o, "raft_info",
			    json_pack("{s:I,s:I,s:I,s:o,s:s,s:b}", "term", (json_int_t)s->term,
				      "commit", (json_int_t)s->commit_index, "pending_operations",
				      (json_int_t)s->pending_writes, "leader",
				      s->leader_id ? japi_id_json(s->leader_id) : json_null(),
				      "role", role, "is_voter", voter));
}

json_t *rest_cluster(const Shoal__ClusterStatusResponse *s)
{
	json_t *o = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:s,s:I,s:I,s:s}", "node_name",
			      s->node_name, "role", s->role, "term", (json_int_t)s->term,
			      "commit_index", (json_int_t)s->commit_index, "applied_index",
			      (json_int_t)s->applied_index, "last_index", (json_int_t)s->last_index,
			      "digest", s->digest, "collections", (json_int_t)s->collections,
			      "points", (json_int_t)s->points, "version", s->version);

	if (o == NULL)
		return NULL;
	json_object_set_new(o, "node_id", hex_id(s->node_id));
	json_object_set_new(o, "leader_id", hex_id(s->leader_id));
	raft_json(o, s);
	json_object_set_new(o, "members", members_array(s));
	qdrant_cluster(o, s); /* after members: scripts cut the text there */
	return o;
}
