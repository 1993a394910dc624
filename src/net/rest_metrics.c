/*
 * rest_metrics: GET /metrics beyond the request counters of metrics.c —
 * build, collections, memory, storage, replication, membership and
 * readiness (doc/protocol.md, "Metrics").  Every family has # HELP and
 * # TYPE; durations are in seconds and sizes in bytes (Prometheus naming).
 * The leader's per-follower families list the other voters and learners,
 * never itself.  Runs on the loop thread.
 */
#include "build.h"

#include "net/rest_impl.h"

#include "cluster/keyring.h"
#include "cluster/node_net.h"

#include "storage/indexer.h"

#include "util/alloc.h"

#include <inttypes.h>
#include <string.h>

#include <event2/buffer.h>

static void family(struct evbuffer *out, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void gauge(struct evbuffer *out, const char *name, const char *help, uint64_t v)
{
	family(out, name, "gauge", help);
	evbuffer_add_printf(out, "%s %" PRIu64 "\n", name, v);
}

static void counter(struct evbuffer *out, const char *name, const char *help, uint64_t v)
{
	family(out, name, "counter", help);
	evbuffer_add_printf(out, "%s %" PRIu64 "\n", name, v);
}

/* Per collection, one family at a time (Prometheus groups a family's
 * samples under its HELP and TYPE). */
static void metrics_collections(struct coll **v, size_t n, struct evbuffer *out)
{
	static const struct {
		const char *name, *type, *help;
	} fam[] = {
		{"shoal_collection_points", "gauge", "Live points per collection."},
		{"shoal_collection_memory_bytes", "gauge",
		 "Memory of a collection: index, id tree, payloads and fresh set."},
		{"shoal_collection_points_indexed", "gauge", "Live points in the HNSW graph."},
		{"shoal_collection_points_fresh", "gauge",
		 "Live points waiting for the graph (searched exactly meanwhile)."},
		{"shoal_collection_fresh_bytes", "gauge",
		 "Bytes the waiting points use (bounded by index.max_fresh_bytes)."},
		{"shoal_collection_oldest_fresh_seconds", "gauge",
		 "Age of the oldest point waiting for the graph; 0 when none waits."},
		{"shoal_collection_indexed_total", "counter",
		 "Points and deletions moved into the graph since start."},
		{"shoal_collection_indexing_rate", "gauge",
		 "Points and deletions moved into the graph per second lately (0: idle)."},
	};
	uint64_t(*val)[8] = sh_calloc(n ? n : 1, sizeof *val);

	if (val == NULL)
		return;                  /* out of memory: no per-collection samples this time */
	for (size_t i = 0; i < n; i++) { /* one look at each (a scan of its fresh set) */
		struct coll_index_stats st;

		coll_index_stats(v[i], &st);
		val[i][0] = st.points;
		val[i][1] = coll_memory(v[i]);
		val[i][2] = st.indexed;
		val[i][3] = st.fresh;
		val[i][4] = st.fresh_bytes;
		val[i][5] = st.oldest_fresh_ms;
		val[i][6] = st.indexed_total;
		val[i][7] = st.indexing_rate;
	}
	for (size_t f = 0; f < sizeof fam / sizeof fam[0]; f++) {
		family(out, fam[f].name, fam[f].type, fam[f].help);
		for (size_t i = 0; i < n; i++)
			if (f == 5)
				evbuffer_add_printf(out, "%s{collection=\"%s\"} %.3f\n",
						    fam[f].name, coll_name(v[i]),
						    (double)val[i][f] / 1000);
			else
				evbuffer_add_printf(out, "%s{collection=\"%s\"} %" PRIu64 "\n",
						    fam[f].name, coll_name(v[i]), val[i][f]);
	}
	sh_free(val);
}

static void metrics_indexer(struct db *db, struct evbuffer *out)
{
	struct indexer_stats st = {0};

	db_index_stats(db, &st);
	gauge(out, "shoal_index_throttling",
	      "1 while apply waits for the indexer (a fresh set over index.max_fresh_bytes).",
	      st.throttling);
	counter(out, "shoal_index_throttled_total", "Times apply waited for the indexer.",
		st.throttled);
	counter(out, "shoal_index_throttled_ms_total", "Milliseconds apply waited for the indexer.",
		st.throttled_ms);
	counter(out, "shoal_index_errors_total", "Indexing steps that failed (out of memory).",
		st.errors);
	counter(out, "shoal_index_deferred_total",
		"Times indexing waited while apply had entries to apply.", st.deferred);
	counter(out, "shoal_index_deferred_ms_total", "Milliseconds indexing waited for apply.",
		st.deferred_ms);
}

static void metrics_storage(struct api *a, struct evbuffer *out)
{
	struct db *db = api_db(a);
	struct sh_alloc_stats st;
	struct coll **v = NULL;
	size_t n = 0;

	family(out, "shoal_build_info", "gauge", "Always 1; the labels say which build runs.");
	evbuffer_add_printf(out, "shoal_build_info{version=\"%s\",allocator=\"%s\"} 1\n",
			    PACKAGE_VERSION, sh_alloc_name());
	if (store_list(db_store(db), &v, &n) == 0)
		metrics_collections(v, n, out);
	for (size_t i = 0; i < n; i++)
		coll_unref(v[i]);
	sh_free(v);
	metrics_indexer(db, out);
	sh_alloc_stats(&st);
	gauge(out, "shoal_memory_allocated_bytes",
	      "Bytes allocated (jemalloc stats.allocated; 0 without jemalloc).", st.allocated);
	gauge(out, "shoal_memory_resident_bytes",
	      "Bytes resident (jemalloc stats.resident; 0 without jemalloc).", st.resident);
	gauge(out, "shoal_log_last_index", "Index of the last entry in the local log.",
	      db_last_index(db));
	gauge(out, "shoal_applied_index", "Index of the last entry applied to the collections.",
	      store_applied_index(db_store(db)));
	counter(out, "shoal_snapshots_total", "Snapshots taken or installed since start.",
		db_snapshots(db));
}

/* The leader's view of the others (doc/replication.md, "Status and
 * verification"); the leader's own row of node_status is left out. */
static void metrics_followers(const struct node_status *st, uint64_t self, struct evbuffer *out)
{
	family(out, "shoal_raft_follower_lag_entries", "gauge",
	       "At the leader: entries of its log another voter or learner has not made durable.");
	for (size_t i = 0; i < st->n_peers; i++)
		if (st->peers[i].id != self)
			evbuffer_add_printf(out,
					    "shoal_raft_follower_lag_entries{node=\"%016" PRIx64
					    "\"} %" PRIu64 "\n",
					    st->peers[i].id, st->peers[i].lag);
	family(out, "shoal_raft_follower_lag_seconds", "gauge",
	       "At the leader: time since another voter or learner last held its whole log.");
	for (size_t i = 0; i < st->n_peers; i++)
		if (st->peers[i].id != self)
			evbuffer_add_printf(out,
					    "shoal_raft_follower_lag_seconds{node=\"%016" PRIx64
					    "\"} %.3f\n",
					    st->peers[i].id, (double)st->peers[i].lag_ms / 1000);
}

static void metrics_raft(struct api *a, uint64_t self, struct evbuffer *out)
{
	struct node_status st;

	node_status(api_node(a), &st);
	family(out, "shoal_raft_role", "gauge", "1 for the node's current role, 0 for the others.");
	for (const char *const *role = node_role_names; *role != NULL; role++)
		evbuffer_add_printf(out, "shoal_raft_role{role=\"%s\"} %d\n", *role,
				    strcmp(st.role, *role) == 0);
	gauge(out, "shoal_raft_term", "The current term.", st.term);
	gauge(out, "shoal_raft_commit_index", "The commit index this node knows.", st.commit_index);
	gauge(out, "shoal_raft_durable_index", "The local log is durable up to this index.",
	      st.durable_index);
	gauge(out, "shoal_raft_voters", "Voters in the configuration.", st.n_voters);
	gauge(out, "shoal_raft_learners", "Learners in the configuration.", st.n_learners);
	gauge(out, "shoal_raft_pending_writes",
	      "Writes this node waits on (acknowledgements, a leader).", st.pending_writes);
	counter(out, "shoal_raft_forwarded_writes_total",
		"Client writes this node handed to the leader (a client that follows the "
		"leader sends none).",
		st.forwarded_total);
	gauge(out, "shoal_sessions", "Client sessions held (exactly-once writes).", st.sessions);
	counter(out, "shoal_session_retries_answered_total",
		"Retried writes this node answered from their session while leading, without a "
		"new entry.",
		st.session_answers);
	counter(out, "shoal_session_entries_skipped_total",
		"Log entries a client session kept from applying again (duplicates, stale "
		"copies).",
		st.session_skipped);
	counter(out, "shoal_raft_elections_total", "Elections this node started.", st.elections);
	counter(out, "shoal_raft_leader_changes_total", "Leaders this node has seen come.",
		st.leader_changes);
	gauge(out, "shoal_storage_disk_full",
	      "1 while the log cannot grow: the node is read-only (writes refused).", st.disk_full);
	counter(out, "shoal_storage_disk_full_total", "Times the disk was found full.",
		st.disk_full_episodes);
	metrics_followers(&st, self, out);
}

static void metrics_membership(struct api *a, struct evbuffer *out)
{
	static const char *const names[] = {"alive", "suspect", "dead", "left"};
	static const enum swim_state states[] = {SWIM_ALIVE, SWIM_SUSPECT, SWIM_DEAD, SWIM_LEFT};
	const struct swim *s = api_membership(a);
	uint64_t n[4] = {s == NULL, 0, 0, 0}; /* alone: itself, alive */

	for (size_t i = 0; s != NULL && i < swim_member_count(s); i++)
		for (int k = 0; k < 4; k++)
			n[k] += swim_member_at(s, i)->state == states[k];
	family(out, "shoal_membership_members", "gauge",
	       "Members this node knows (itself included), per membership state.");
	for (int k = 0; k < 4; k++)
		evbuffer_add_printf(out, "shoal_membership_members{state=\"%s\"} %" PRIu64 "\n",
				    names[k], n[k]);
}

static void metrics_health(struct api *a, struct evbuffer *out)
{
	struct health_view v;

	api_health(a, &v);
	gauge(out, "shoal_ready", "1 when /readyz answers 200 (doc/protocol.md).", v.ready);
	gauge(out, "shoal_apply_lag_entries",
	      "Entries committed (as this node knows) and not applied here yet.", v.lag);
	family(out, "shoal_apply_lag_seconds", "gauge",
	       "How long the oldest committed entry not applied here has waited.");
	evbuffer_add_printf(out, "shoal_apply_lag_seconds %.3f\n", (double)v.lag_ms / 1000);
}

/* Requests refused for their API key (doc/security.md), by reason. */
static void metrics_auth(struct api *a, struct evbuffer *out)
{
	static const char *const reason[] = {"missing", "invalid", "denied"};
	uint64_t v[3];

	api_auth_failures(a, v);
	family(out, "shoal_auth_failures_total", "counter",
	       "Requests refused for their API key: none given, not valid, or of a role "
	       "short of the request's.");
	for (int i = 0; i < 3; i++)
		evbuffer_add_printf(out, "shoal_auth_failures_total{reason=\"%s\"} %" PRIu64 "\n",
				    reason[i], v[i]);
}

/* Peer links (doc/replication.md, "Peer links"; doc/security.md). */
static void metrics_peers(struct api *a, struct evbuffer *out)
{
	struct peer_stats st;

	if (api_net(a) == NULL)
		return;
	node_net_stats(api_net(a), &st);
	counter(out, "shoal_peer_links_refused_total",
		"Inbound peer links closed before their preamble was accepted: another cluster, "
		"plaintext to a node with a keyring (or TLS to one without), a failed or "
		"unfinished handshake, too many waiting.",
		st.refused);
	counter(out, "shoal_peer_connect_failures_total",
		"Outbound peer links that failed to connect (or to complete a keyed handshake).",
		st.connect_failures);
}

/* Gossip the keyring did not open (doc/security.md, "Gossip keyring"). */
static void metrics_keyring(struct api *a, struct evbuffer *out)
{
	const struct keyring *kr = api_keyring_of(a);

	if (kr == NULL)
		return;
	gauge(out, "shoal_gossip_keys", "Keys in this node's gossip keyring.", keyring_count(kr));
	counter(out, "shoal_gossip_unsealed_dropped_total",
		"Membership datagrams and frames dropped because no key of the keyring "
		"authenticates them.",
		keyring_failures(kr));
}

void rest_metrics(struct api *a, uint64_t self, struct evbuffer *out)
{
	metrics_render(api_metrics(a), api_method_name, api_status_name, out);
	metrics_auth(a, out);
	metrics_keyring(a, out);
	metrics_peers(a, out);
	metrics_storage(a, out);
	metrics_raft(a, self, out);
	metrics_membership(a, out);
	metrics_health(a, out);
}
