/*
 * config: see config.h.
 *
 * The table below is the single source of truth for every key.  Values are
 * parsed from text (defaults and flags) or from TOML values (the file) by the
 * same per-type code, then checked against the row's bounds and, where a row
 * has one, its check function.
 */
#include "build.h"

#include "server/config.h"

#include "cluster/keyring.h"

#include "util/alloc.h"
#include "util/log.h"
#include "util/toml.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum cfg_type { CFG_STRING, CFG_INT, CFG_SIZE, CFG_BOOL, CFG_ENUM, CFG_LIST };

enum {
	CFG_RUNTIME = 1 << 0,  /* applied on SIGHUP without a restart */
	CFG_INACTIVE = 1 << 1, /* accepted and validated, not used by this version yet */
};

struct cfg_row {
	const char *key;
	enum cfg_type type;
	size_t offset;
	const char *def;
	int64_t min, max; /* INT/SIZE: value bounds; STRING and list items: length bounds */
	const char *const *names;
	int (*check)(const char *value, struct sh_err *err);
	unsigned flags;
	const char *doc;
};

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const fsync_policies[] = {"always", "interval", "never", NULL};
static const char *const profiles[] = {"lan", "local", NULL};
static const char *const consistency_levels[] = {"eventual", "read_your_writes", "strong", "quorum",
						 NULL};
static const char *const ack_levels[] = {"leader", "one", "quorum", "all", NULL};

static int check_node_name(const char *v, struct sh_err *err);
static int check_ip(const char *v, struct sh_err *err);
static int check_hostport(const char *v, struct sh_err *err);

#define OFF(field) offsetof(struct sh_config, field)
#define KiB        1024ll
#define MiB        (1024ll * KiB)
#define GiB        (1024ll * MiB)

/* clang-format off */
static const struct cfg_row rows[] = {
	{"node.name", CFG_STRING, OFF(node_name), "", 0, 63, NULL, check_node_name, 0,
	 "Node name shown in logs and member lists ([A-Za-z0-9._-]); empty means the host name."},
	{"node.data_dir", CFG_STRING, OFF(data_dir), "shoal-data", 1, 4000, NULL, NULL, 0,
	 "Directory for the node id, the log and snapshots; created when missing; one shoald per directory."},
	{"listen.address", CFG_STRING, OFF(listen_address), "127.0.0.1", 1, 64, NULL, check_ip, 0,
	 "IP address the cluster, client and REST listeners bind to (0.0.0.0 or :: for all)."},
	{"listen.advertise_address", CFG_STRING, OFF(advertise_address), "", 0, 64, NULL, check_ip, 0,
	 "IP address other nodes and clients are told to use; empty means listen.address."},
	{"listen.base_port", CFG_INT, OFF(base_port), "747", 1, 6553, NULL, NULL, 0,
	 "Base port B: cluster on B1, client API on B2, REST on B3 (747 gives 7471, 7472, 7473)."},
	{"listen.cluster_port", CFG_INT, OFF(cluster_port), "0", 0, 65535, NULL, NULL, 0,
	 "Port for gossip (UDP) and peer links (TCP); 0 means base_port * 10 + 1."},
	{"listen.client_port", CFG_INT, OFF(client_port), "0", 0, 65535, NULL, NULL, 0,
	 "Port for the binary client API; 0 means base_port * 10 + 2."},
	{"listen.rest_port", CFG_INT, OFF(rest_port), "0", 0, 65535, NULL, NULL, 0,
	 "Port for the REST API and /metrics; 0 means base_port * 10 + 3."},
	{"cluster.seeds", CFG_LIST, OFF(seeds), "", 3, 300, NULL, check_hostport, 0,
	 "Cluster listeners (host:port) to join at start and periodically; empty starts alone."},
	{"cluster.bootstrap_expect", CFG_INT, OFF(bootstrap_expect), "0", 0, 60, NULL, NULL, 0,
	 "Voters a new cluster starts with, once that many nodes see each other (same on every founding node); 0: 1 without seeds, else join an existing cluster."},
	{"cluster.max_voters", CFG_INT, OFF(max_voters), "5", 1, 63, NULL, NULL, 0,
	 "Learners caught up are promoted to voters while there are fewer voters than this."},
	{"cluster.remove_dead_after_ms", CFG_INT, OFF(remove_dead_after_ms), "300000", 0, 604800000, NULL, NULL, 0,
	 "The leader removes a voter or learner dead this long, while a majority of the other voters is alive; 0: never."},
	{"cluster.leave_on_terminate", CFG_BOOL, OFF(leave_on_terminate), "false", 0, 0, NULL, NULL, CFG_RUNTIME,
	 "SIGTERM makes the node leave the cluster (the leader removes it from the voters) before it stops; false: a stopped node stays a voter, as a rolling restart needs."},
	{"raft.election_timeout_ms", CFG_INT, OFF(election_timeout_ms), "400", 20, 60000, NULL, NULL, 0,
	 "Followers that hear no leader for a random time in [this, twice this) start an election."},
	{"raft.heartbeat_ms", CFG_INT, OFF(heartbeat_ms), "40", 5, 30000, NULL, NULL, 0,
	 "The leader's heartbeat interval; below half the election timeout."},
	{"raft.max_batch_entries", CFG_INT, OFF(max_batch_entries), "4096", 1, 1000000, NULL, NULL, 0,
	 "Log entries in one AppendEntries to a follower."},
	{"raft.max_batch_bytes", CFG_SIZE, OFF(max_batch_bytes), "4MiB", 4 * KiB, 256 * MiB, NULL, NULL, 0,
	 "Bytes of entries in one AppendEntries (one entry larger than this goes alone)."},
	{"raft.max_inflight_batches", CFG_INT, OFF(max_inflight_batches), "64", 1, 100000, NULL, NULL, 0,
	 "AppendEntries sent to one follower and not yet answered."},
	{"raft.max_inflight_bytes", CFG_SIZE, OFF(max_inflight_bytes), "64MiB", 64 * KiB, 4 * GiB, NULL, NULL, 0,
	 "Bytes of entries sent to one follower and not yet answered (flow control)."},
	{"log.level", CFG_ENUM, OFF(log_level), "info", 0, 0, log_levels, NULL, CFG_RUNTIME,
	 "Least severe level written: debug, info, warn or error."},
	{"log.file", CFG_STRING, OFF(log_file), "", 0, 4000, NULL, NULL, CFG_RUNTIME,
	 "File the log is appended to; empty means standard error. Reopened on SIGHUP (logrotate)."},
	{"storage.fsync", CFG_ENUM, OFF(fsync), "always", 0, 0, fsync_policies, NULL, 0,
	 "When the log is flushed to disk: always (before acknowledging), interval, or never."},
	{"storage.fsync_interval_ms", CFG_INT, OFF(fsync_interval_ms), "100", 1, 60000, NULL, NULL, 0,
	 "With fsync = interval: the longest time between two flushes, in milliseconds."},
	{"storage.segment_bytes", CFG_SIZE, OFF(segment_bytes), "64MiB", 64 * KiB, 1 * GiB, NULL, NULL, 0,
	 "Size past which the log starts a new segment file."},
	{"storage.wal_write_ahead", CFG_SIZE, OFF(wal_write_ahead), "1MiB", 0, 64 * MiB, NULL, NULL, 0,
	 "Zeros written ahead of the log's end, so a flush needs no journal commit; 0: none (none on tmpfs, btrfs, ZFS)."},
	{"storage.snapshot_entries", CFG_INT, OFF(snapshot_entries), "100000", 0, 1000000000, NULL, NULL, 0,
	 "Take a snapshot (and drop the log before it) after this many entries; 0: not by count."},
	{"storage.log_keep", CFG_INT, OFF(log_keep), "10000", 0, 100000000, NULL, NULL, 0,
	 "Log entries kept behind a snapshot, so that a follower a little behind catches up from the log."},
	{"storage.snapshot_bytes", CFG_SIZE, OFF(snapshot_bytes), "1GiB", 0, 1024 * GiB, NULL, NULL, 0,
	 "Take a snapshot after this many bytes of log; 0: not by size."},
	{"search.threads", CFG_INT, OFF(search_threads), "0", 0, 1024, NULL, NULL, 0,
	 "Threads that run searches; 0 means one per online CPU."},
	{"index.background", CFG_BOOL, OFF(index_background), "true", 0, 0, NULL, NULL, 0,
	 "Applied points are searchable at once (scanned exactly) and inserted into the HNSW graph in the background; false: apply inserts them into the graph itself before it goes on (a slower apply)."},
	{"index.threads", CFG_INT, OFF(index_threads), "0", 0, 256, NULL, NULL, 0,
	 "Threads that insert a batch of new points into a graph at once; 0 means one per online CPU."},
	{"index.max_fresh_bytes", CFG_SIZE, OFF(max_fresh_bytes), "256MiB", 0, 1024 * GiB, NULL, NULL, 0,
	 "Bound of a collection's points waiting for the graph (about 4 x dim + 40 bytes each); over it apply waits for the indexer (back-pressure); 0: no bound."},
	{"limits.max_frame_bytes", CFG_SIZE, OFF(max_frame_bytes), "16MiB", 4 * KiB, 1 * GiB, NULL, NULL, 0,
	 "Largest request or reply frame on the client and peer protocols, and largest REST body (bytes, or with KiB/MiB/GiB)."},
	{"limits.max_payload_bytes", CFG_SIZE, OFF(max_payload_bytes), "64KiB", 2, 64 * MiB, NULL, NULL, 0,
	 "Largest payload of one point, as compact JSON (bytes, or with KiB/MiB)."},
	{"limits.max_connections", CFG_INT, OFF(max_connections), "1024", 1, 1000000, NULL, NULL, 0,
	 "Client connections served at once; further connections are closed at accept."},
	{"membership.profile", CFG_ENUM, OFF(profile), "lan", 0, 0, profiles, NULL, 0,
	 "Preset of the membership keys not set explicitly: lan (memberlist's LAN defaults) or local (faster, for loopback clusters)."},
	{"membership.probe_interval_ms", CFG_INT, OFF(probe_interval_ms), "1000", 10, 60000, NULL, NULL, 0,
	 "Each node probes one member per interval (milliseconds)."},
	{"membership.probe_timeout_ms", CFG_INT, OFF(probe_timeout_ms), "500", 5, 60000, NULL, NULL, 0,
	 "Wait for a direct ack this long before asking others to probe; below probe_interval_ms."},
	{"membership.indirect_checks", CFG_INT, OFF(indirect_checks), "3", 0, 16, NULL, NULL, 0,
	 "Members asked to probe a member that did not answer directly."},
	{"membership.suspicion_mult", CFG_INT, OFF(suspicion_mult), "4", 1, 100, NULL, NULL, 0,
	 "Shortest suspicion before dead: this times log10(members) (at least 1) times probe_interval_ms."},
	{"membership.suspicion_max_timeout_mult", CFG_INT, OFF(suspicion_max_timeout_mult), "6", 1, 100, NULL, NULL, 0,
	 "Longest suspicion, without confirmations from other members: this times the shortest."},
	{"membership.gossip_interval_ms", CFG_INT, OFF(gossip_interval_ms), "200", 10, 60000, NULL, NULL, 0,
	 "Interval between gossip rounds (milliseconds)."},
	{"membership.gossip_nodes", CFG_INT, OFF(gossip_nodes), "3", 1, 64, NULL, NULL, 0,
	 "Members gossiped to per round."},
	{"membership.retransmit_mult", CFG_INT, OFF(retransmit_mult), "4", 1, 100, NULL, NULL, 0,
	 "Each update is sent this times ceil(log10(members + 1)) times."},
	{"membership.push_pull_interval_ms", CFG_INT, OFF(push_pull_interval_ms), "30000", 0, 3600000, NULL, NULL, 0,
	 "Full-state exchange over TCP with one random member per interval; 0 turns it off."},
	{"membership.awareness_max_multiplier", CFG_INT, OFF(awareness_max_multiplier), "8", 1, 64, NULL, NULL, 0,
	 "Lifeguard local health: a struggling node stretches its probe period up to this factor; 1 turns it off."},
	{"membership.udp_mtu", CFG_INT, OFF(udp_mtu), "1400", 1200, 65507, NULL, NULL, 0,
	 "Largest gossip datagram sent (bytes)."},
	{"membership.rejoin_interval_ms", CFG_INT, OFF(rejoin_interval_ms), "60000", 0, 3600000, NULL, NULL, 0,
	 "Re-join every seed not seen alive this often, to merge sides that lost each other; 0: only at start."},
	{"limits.max_inflight", CFG_INT, OFF(max_inflight), "1024", 1, 1000000, NULL, NULL, 0,
	 "Requests of one connection in flight at once; the connection is not read while it has that many."},
	{"limits.max_output_bytes", CFG_SIZE, OFF(max_output_bytes), "8MiB", 64 * KiB, 1 * GiB, NULL, NULL, 0,
	 "Replies a client has not read yet past which its connection is not read (back-pressure)."},
	{"limits.idle_timeout_ms", CFG_INT, OFF(idle_timeout_ms), "300000", 100, 86400000, NULL, NULL, 0,
	 "A client connection with nothing in flight is closed after this many milliseconds of silence."},
	{"limits.request_timeout_ms", CFG_INT, OFF(request_timeout_ms), "30000", 10, 3600000, NULL, NULL, 0,
	 "Default request deadline; also the longest wait for a whole frame and for a client to read its replies."},
	{"api.consistency", CFG_ENUM, OFF(consistency), "eventual", 0, 0, consistency_levels, NULL, 0,
	 "Read consistency of requests that do not choose: eventual, read_your_writes, strong or quorum."},
	{"api.ack", CFG_ENUM, OFF(ack), "quorum", 0, 0, ack_levels, NULL, 0,
	 "When writes that do not choose are acknowledged: leader, one, quorum or all."},
	{"health.ready_max_lag_entries", CFG_INT, OFF(ready_max_lag_entries), "1000", 0, 1000000000, NULL, NULL, 0,
	 "Ready (/readyz 200) only while the applied index is at most this many entries behind the commit index the node knows."},
	{"health.ready_max_lag_ms", CFG_INT, OFF(ready_max_lag_ms), "5000", 0, 3600000, NULL, NULL, 0,
	 "... and no committed entry has waited longer than this to be applied (milliseconds)."},
	{"security.admin_keys_file", CFG_STRING, OFF(admin_keys_file), "", 0, 4000, NULL, NULL, CFG_RUNTIME,
	 "File of API keys of role admin (collections, cluster changes, backups, and all of write), one a line, mode 600; every key file is read again on SIGHUP. No key file: no key needed (doc/security.md)."},
	{"security.write_keys_file", CFG_STRING, OFF(write_keys_file), "", 0, 4000, NULL, NULL, CFG_RUNTIME,
	 "File of API keys of role write (upserts, deletes, payloads, and all of read)."},
	{"security.read_keys_file", CFG_STRING, OFF(read_keys_file), "", 0, 4000, NULL, NULL, CFG_RUNTIME,
	 "File of API keys of role read (searches, gets, counts, scrolls, listings, status)."},
	{"security.gossip_keyring_file", CFG_STRING, OFF(gossip_keyring_file), "", 0, 4000, NULL, NULL, 0,
	 "File of the cluster's gossip keys (base64, the primary first, mode 600): membership packets are sealed with AES-256-GCM and peer links run in TLS 1.3 keyed by it; nodes without a key of the ring cannot join, vote or replicate. shoald rewrites it on shoalctl cluster keys. Empty: gossip and peer links in clear (doc/security.md)."},
	{"security.tls_cert_file", CFG_STRING, OFF(tls_cert_file), "", 0, 4000, NULL, NULL, CFG_RUNTIME,
	 "PEM certificate (chain) of this node for the client and REST ports: set, both speak only TLS (1.2 at least; doc/security.md). Read again on SIGHUP. Empty: plaintext."},
	{"security.tls_key_file", CFG_STRING, OFF(tls_key_file), "", 0, 4000, NULL, NULL, CFG_RUNTIME,
	 "PEM private key of tls_cert_file, mode 600."},
	{"security.tls_client_ca_file", CFG_STRING, OFF(tls_client_ca_file), "", 0, 4000, NULL, NULL, CFG_RUNTIME,
	 "PEM CA certificate(s): clients of the client and REST ports must present a certificate signed by one (mutual TLS). Empty: no client certificate asked."},
	{"security.peer_cert_file", CFG_STRING, OFF(peer_cert_file), "", 0, 4000, NULL, NULL, CFG_RUNTIME,
	 "PEM certificate of this node, signed by the cluster CA (peer_ca_file): the peer links (Raft, forwarded writes, snapshots) run in mutual TLS 1.3, and a node whose certificate does not verify is refused before any message is read. Read again on SIGHUP. Empty: the links are keyed by the gossip keyring, or in clear."},
	{"security.peer_key_file", CFG_STRING, OFF(peer_key_file), "", 0, 4000, NULL, NULL, CFG_RUNTIME,
	 "PEM private key of peer_cert_file, mode 600."},
	{"security.peer_ca_file", CFG_STRING, OFF(peer_ca_file), "", 0, 4000, NULL, NULL, CFG_RUNTIME,
	 "PEM certificate(s) of the cluster CA, which signs every node's peer_cert_file."},
	{"security.metrics_open", CFG_BOOL, OFF(metrics_open), "false", 0, 0, NULL, NULL, 0,
	 "Serve GET /metrics without an API key when keys are required (otherwise it needs a read key)."},
};
/* clang-format on */

#define N_ROWS (sizeof rows / sizeof rows[0])
_Static_assert(N_ROWS <= SH_CONFIG_MAX_KEYS, "raise SH_CONFIG_MAX_KEYS");

/* membership.profile = "local": loopback clusters, where packets are not
 * lost and round trips take microseconds, can detect failures five times
 * faster (doc/membership.md). */
static const struct {
	const char *key, *value;
} local_profile[] = {
	{"membership.probe_interval_ms", "200"},   {"membership.probe_timeout_ms", "100"},
	{"membership.gossip_interval_ms", "50"},   {"membership.push_pull_interval_ms", "5000"},
	{"membership.rejoin_interval_ms", "5000"},
};

static void *field(struct sh_config *cfg, const struct cfg_row *row)
{
	return (char *)cfg + row->offset;
}

static const void *cfield(const struct sh_config *cfg, const struct cfg_row *row)
{
	return (const char *)cfg + row->offset;
}

static void mark_set(struct sh_config *cfg, const struct cfg_row *row)
{
	size_t i = (size_t)(row - rows);

	cfg->set_by_user[i / 8] |= (unsigned char)(1u << (i % 8));
}

static bool is_set(const struct sh_config *cfg, const struct cfg_row *row)
{
	size_t i = (size_t)(row - rows);

	return cfg->set_by_user[i / 8] & (1u << (i % 8));
}

static const struct cfg_row *find_key(const char *key)
{
	for (size_t i = 0; i < N_ROWS; i++)
		if (strcmp(rows[i].key, key) == 0)
			return &rows[i];
	return NULL;
}

/* ------------------------------------------------------------------ checks */

static int check_node_name(const char *v, struct sh_err *err)
{
	for (const char *p = v; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-')
			return sh_err_set(err, SH_EINVAL,
					  "'%s' has '%c'; use letters, digits, '.', '_' and '-'", v,
					  *p);
	return 0;
}

static int check_ip(const char *v, struct sh_err *err)
{
	unsigned char buf[sizeof(struct in6_addr)];

	if (v[0] == '\0' || inet_pton(AF_INET, v, buf) == 1 || inet_pton(AF_INET6, v, buf) == 1)
		return 0;
	return sh_err_set(err, SH_EINVAL, "'%s' is not an IPv4 or IPv6 address", v);
}

/* host:port or [v6addr]:port; the host is resolved later, here only its
 * shape is checked. */
static int check_hostport(const char *v, struct sh_err *err)
{
	const char *colon = strrchr(v, ':');
	char *end;
	long port;

	if (colon == NULL || colon == v)
		return sh_err_set(err, SH_EINVAL, "'%s' is not host:port", v);
	if (v[0] == '[' && colon[-1] != ']')
		return sh_err_set(err, SH_EINVAL,
				  "'%s': an IPv6 address goes in brackets, [::1]:7471", v);
	if (v[0] != '[' && memchr(v, ':', (size_t)(colon - v)) != NULL)
		return sh_err_set(err, SH_EINVAL,
				  "'%s': an IPv6 address goes in brackets, [::1]:7471", v);
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno != 0 || port < 1 || port > 65535)
		return sh_err_set(err, SH_EINVAL, "'%s': port must be 1..65535", v);
	for (const char *p = v; p < colon; p++)
		if (isspace((unsigned char)*p))
			return sh_err_set(err, SH_EINVAL, "'%s': host has a space", v);
	return 0;
}

/* ------------------------------------------------------------------ typed stores */

static int store_string(struct sh_config *cfg, const struct cfg_row *row, const char *v, size_t len,
			struct sh_err *err)
{
	char **slot = field(cfg, row);
	char *copy;
	int rv;

	if (memchr(v, '\0', len) != NULL)
		return sh_err_set(err, SH_EINVAL, "must not contain a NUL character");
	if ((int64_t)len < row->min || (int64_t)len > row->max)
		return sh_err_set(err, SH_ERANGE, "length %zu is outside %" PRId64 "..%" PRId64,
				  len, row->min, row->max);
	copy = sh_strndup(v, len);
	if (copy == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	if (row->check != NULL && (rv = row->check(copy, err)) != 0) {
		sh_free(copy);
		return rv;
	}
	sh_free(*slot);
	*slot = copy;
	return 0;
}

static int store_int(struct sh_config *cfg, const struct cfg_row *row, int64_t v,
		     struct sh_err *err)
{
	if (v < row->min || v > row->max)
		return sh_err_set(err, SH_ERANGE, "%" PRId64 " is outside %" PRId64 "..%" PRId64, v,
				  row->min, row->max);
	if (row->type == CFG_SIZE)
		*(uint64_t *)field(cfg, row) = (uint64_t)v;
	else
		*(int64_t *)field(cfg, row) = v;
	return 0;
}

static int store_enum(struct sh_config *cfg, const struct cfg_row *row, const char *v,
		      struct sh_err *err)
{
	char choices[256] = "";

	for (int i = 0; row->names[i] != NULL; i++) {
		if (strcmp(v, row->names[i]) == 0) {
			*(int *)field(cfg, row) = i;
			return 0;
		}
		snprintf(choices + strlen(choices), sizeof choices - strlen(choices), "%s%s",
			 i ? ", " : "", row->names[i]);
	}
	return sh_err_set(err, SH_EINVAL, "unknown value '%s' (expected one of: %s)", v, choices);
}

static void list_free(struct sh_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		sh_free(l->v[i]);
	sh_free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* Check and append one list item to l. */
static int list_push(struct sh_strlist *l, const struct cfg_row *row, const char *v, size_t len,
		     struct sh_err *err)
{
	char **grown;
	char *copy;
	int rv;

	if (memchr(v, '\0', len) != NULL)
		return sh_err_set(err, SH_EINVAL, "item %zu must not contain a NUL character",
				  l->n + 1);
	if ((int64_t)len < row->min || (int64_t)len > row->max)
		return sh_err_set(err, SH_ERANGE,
				  "item %zu: length %zu is outside %" PRId64 "..%" PRId64, l->n + 1,
				  len, row->min, row->max);
	copy = sh_strndup(v, len);
	grown = copy ? sh_reallocarray(l->v, l->n + 1, sizeof *l->v) : NULL;
	if (grown == NULL) {
		sh_free(copy);
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	}
	l->v = grown;
	if (row->check != NULL && (rv = row->check(copy, err)) != 0) {
		sh_free(copy);
		return sh_err_wrap(err, rv, "item %zu", l->n + 1);
	}
	l->v[l->n++] = copy;
	return 0;
}

static void list_replace(struct sh_config *cfg, const struct cfg_row *row, struct sh_strlist *l)
{
	struct sh_strlist *slot = field(cfg, row);

	list_free(slot);
	*slot = *l;
}

/* ------------------------------------------------------------------ values from text */

/* "16MiB" -> 16777216; plain digits are bytes. */
static int parse_size(const char *v, int64_t *out, struct sh_err *err)
{
	static const struct {
		const char *unit;
		int64_t mult;
	} units[] = {{"", 1},      {"B", 1},     {"KiB", KiB},
		     {"MiB", MiB}, {"GiB", GiB}, {"TiB", 1024 * GiB}};
	char *end;
	long long n;

	errno = 0;
	n = strtoll(v, &end, 10);
	if (end == v || !isdigit((unsigned char)v[0]) || errno != 0)
		return sh_err_set(err, SH_EINVAL,
				  "'%s' is not a size (bytes, or a number with KiB, MiB or GiB)",
				  v);
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (strcmp(end, units[i].unit) != 0)
			continue;
		if (__builtin_mul_overflow((int64_t)n, units[i].mult, out))
			return sh_err_set(err, SH_ERANGE, "'%s' is too large", v);
		return 0;
	}
	return sh_err_set(err, SH_EINVAL, "'%s': unknown unit '%s' (use B, KiB, MiB, GiB or TiB)",
			  v, end);
}

static int parse_int(const char *v, int64_t *out, struct sh_err *err)
{
	char *end;
	long long n;

	errno = 0;
	n = strtoll(v, &end, 10);
	if (end == v || *end != '\0' || errno != 0)
		return sh_err_set(err, SH_EINVAL, "'%s' is not an integer", v);
	*out = n;
	return 0;
}

/* Comma-separated list; surrounding spaces of each item are dropped. */
static int parse_list(struct sh_config *cfg, const struct cfg_row *row, const char *v,
		      struct sh_err *err)
{
	struct sh_strlist l = {NULL, 0};
	const char *p = v;

	while (*p != '\0') {
		const char *comma = strchr(p, ',');
		const char *end = comma ? comma : p + strlen(p);
		const char *b = p, *e = end;
		int rv;

		while (b < e && isspace((unsigned char)*b))
			b++;
		while (e > b && isspace((unsigned char)e[-1]))
			e--;
		if ((rv = list_push(&l, row, b, (size_t)(e - b), err)) != 0) {
			list_free(&l);
			return rv;
		}
		p = comma ? comma + 1 : end;
	}
	list_replace(cfg, row, &l);
	return 0;
}

static int set_from_text(struct sh_config *cfg, const struct cfg_row *row, const char *v,
			 struct sh_err *err)
{
	int64_t n = 0;
	int rv;

	switch (row->type) {
	case CFG_STRING: return store_string(cfg, row, v, strlen(v), err);
	case CFG_ENUM: return store_enum(cfg, row, v, err);
	case CFG_LIST: return parse_list(cfg, row, v, err);
	case CFG_BOOL:
		if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
			return sh_err_set(err, SH_EINVAL, "'%s' is not true or false", v);
		*(bool *)field(cfg, row) = v[0] == 't';
		return 0;
	case CFG_INT:
	case CFG_SIZE:
		rv = row->type == CFG_INT ? parse_int(v, &n, err) : parse_size(v, &n, err);
		return rv != 0 ? rv : store_int(cfg, row, n, err);
	}
	return sh_err_set(err, SH_EINVAL, "internal: bad row type");
}

/* ------------------------------------------------------------------ values from TOML */

static int type_error(const struct cfg_row *row, const struct toml_value *v, struct sh_err *err)
{
	static const char *const want[] = {
		[CFG_STRING] = "a string",
		[CFG_INT] = "an integer",
		[CFG_SIZE] = "a size (an integer of bytes, or a string such as \"16MiB\")",
		[CFG_BOOL] = "a boolean",
		[CFG_ENUM] = "a string",
		[CFG_LIST] = "an array of strings",
	};

	return sh_err_set(err, SH_EINVAL, "expected %s, found %s", want[row->type],
			  toml_type_name(toml_type(v)));
}

static int set_list_from_toml(struct sh_config *cfg, const struct cfg_row *row,
			      const struct toml_value *v, struct sh_err *err)
{
	struct sh_strlist l = {NULL, 0};

	for (size_t i = 0; i < toml_array_size(v); i++) {
		const struct toml_value *item = toml_array_at(v, i);
		const char *s;
		size_t len;
		int rv;

		if (toml_type(item) != TOML_STRING) {
			list_free(&l);
			return sh_err_set(err, SH_EINVAL, "item %zu: expected a string, found %s",
					  i + 1, toml_type_name(toml_type(item)));
		}
		s = toml_string(item, &len);
		if ((rv = list_push(&l, row, s, len, err)) != 0) {
			list_free(&l);
			return rv;
		}
	}
	list_replace(cfg, row, &l);
	return 0;
}

static int set_from_toml(struct sh_config *cfg, const struct cfg_row *row,
			 const struct toml_value *v, struct sh_err *err)
{
	enum toml_type t = toml_type(v);
	size_t len;
	const char *s;

	switch (row->type) {
	case CFG_STRING:
	case CFG_ENUM:
		if (t != TOML_STRING)
			return type_error(row, v, err);
		s = toml_string(v, &len);
		if (row->type == CFG_STRING)
			return store_string(cfg, row, s, len, err);
		return strlen(s) != len ? sh_err_set(err, SH_EINVAL, "must not contain NUL")
					: store_enum(cfg, row, s, err);
	case CFG_INT:
		return t == TOML_INTEGER ? store_int(cfg, row, toml_int(v), err)
					 : type_error(row, v, err);
	case CFG_SIZE:
		if (t == TOML_INTEGER)
			return store_int(cfg, row, toml_int(v), err);
		if (t == TOML_STRING)
			return set_from_text(cfg, row, toml_string(v, &len), err);
		return type_error(row, v, err);
	case CFG_BOOL:
		if (t != TOML_BOOL)
			return type_error(row, v, err);
		*(bool *)field(cfg, row) = toml_bool(v);
		return 0;
	case CFG_LIST:
		return t == TOML_ARRAY ? set_list_from_toml(cfg, row, v, err)
				       : type_error(row, v, err);
	}
	return sh_err_set(err, SH_EINVAL, "internal: bad row type");
}

/* Walk the tree; every leaf's dotted path must be a key of the table. */
static int load_table(struct sh_config *cfg, const struct toml_value *t, const char *prefix,
		      const char *name, struct sh_err *err)
{
	for (size_t i = 0; i < toml_table_size(t); i++) {
		const struct toml_value *v = toml_table_value(t, i);
		size_t klen;
		const char *k = toml_table_key(t, i, &klen);
		char path[128];
		const struct cfg_row *row;
		int rv;

		snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "." : "", k);
		row = strlen(k) == klen ? find_key(path) : NULL;
		if (row == NULL && toml_type(v) == TOML_TABLE && prefix[0] == '\0') {
			if ((rv = load_table(cfg, v, path, name, err)) != 0)
				return rv;
			continue;
		}
		if (row == NULL)
			return sh_err_set(
				err, SH_EINVAL, "%s:%d:%d: unknown key '%s'%s", name, toml_line(v),
				toml_column(v), path,
				prefix[0] ? "" : " (keys are in sections such as [node] or [log])");
		if ((rv = set_from_toml(cfg, row, v, err)) != 0)
			return sh_err_wrap(err, rv, "%s:%d:%d: key '%s'", name, toml_line(v),
					   toml_column(v), path);
		mark_set(cfg, row);
	}
	return 0;
}

/* ------------------------------------------------------------------ public */

int sh_config_init(struct sh_config *cfg, struct sh_err *err)
{
	memset(cfg, 0, sizeof *cfg);
	for (size_t i = 0; i < N_ROWS; i++) {
		int rv = set_from_text(cfg, &rows[i], rows[i].def, err);

		if (rv != 0) {
			sh_config_free(cfg);
			return sh_err_wrap(err, rv, "config: default of '%s'", rows[i].key);
		}
	}
	return 0;
}

void sh_config_free(struct sh_config *cfg)
{
	for (size_t i = 0; i < N_ROWS; i++) {
		if (rows[i].type == CFG_STRING) {
			char **slot = field(cfg, &rows[i]);

			sh_free(*slot);
			*slot = NULL;
		} else if (rows[i].type == CFG_LIST) {
			list_free(field(cfg, &rows[i]));
		}
	}
}

int sh_config_load_text(struct sh_config *cfg, const char *text, size_t len, const char *name,
			struct sh_err *err)
{
	struct toml_value *root = toml_parse(text, len, name, err);
	int rv;

	if (root == NULL)
		return sh_err_wrap(err, err ? err->code : SH_EINVAL, "config");
	rv = load_table(cfg, root, "", name, err);
	toml_free(root);
	return rv != 0 ? sh_err_wrap(err, rv, "config") : 0;
}

int sh_config_load_file(struct sh_config *cfg, const char *path, struct sh_err *err)
{
	struct toml_value *root = toml_parse_file(path, SH_CONFIG_MAX_FILE_BYTES, err);
	int rv;

	if (root == NULL)
		return sh_err_wrap(err, err ? err->code : SH_EINVAL, "config");
	rv = load_table(cfg, root, "", path, err);
	toml_free(root);
	return rv != 0 ? sh_err_wrap(err, rv, "config") : 0;
}

/* "--log-level" -> "log.level": dashes after the first become the dot and
 * underscores; the key names in the table decide which is which. */
static const struct cfg_row *find_flag(const char *flag)
{
	if (strncmp(flag, "--", 2) != 0)
		return find_key(flag);
	for (size_t i = 0; i < N_ROWS; i++) {
		const char *k = rows[i].key, *f = flag + 2;

		for (; *k != '\0' && *f != '\0'; k++, f++)
			if (*f != ((*k == '.' || *k == '_') ? '-' : *k))
				break;
		if (*k == '\0' && *f == '\0')
			return &rows[i];
	}
	return NULL;
}

bool sh_config_is_flag(const char *flag)
{
	return strncmp(flag, "--", 2) == 0 && find_flag(flag) != NULL;
}

int sh_config_set(struct sh_config *cfg, const char *flag, const char *value, struct sh_err *err)
{
	const struct cfg_row *row = find_flag(flag);
	int rv;

	if (row == NULL)
		return sh_err_set(err, SH_EINVAL,
				  "command line: unknown option '%s' (see --help-config)", flag);
	if ((rv = set_from_text(cfg, row, value, err)) != 0)
		return sh_err_wrap(err, rv, "command line: %s", flag);
	mark_set(cfg, row);
	return 0;
}

static int apply_profile(struct sh_config *cfg, struct sh_err *err)
{
	if (cfg->profile != SH_PROFILE_LOCAL)
		return 0;
	for (size_t i = 0; i < sizeof local_profile / sizeof local_profile[0]; i++) {
		const struct cfg_row *row = find_key(local_profile[i].key);
		int rv;

		if (row == NULL || is_set(cfg, row))
			continue;
		if ((rv = set_from_text(cfg, row, local_profile[i].value, err)) != 0)
			return sh_err_wrap(err, rv, "config: profile local: %s", row->key);
	}
	return 0;
}

static int resolve_auto(struct sh_config *cfg, struct sh_err *err)
{
	char host[256];
	int64_t *ports[] = {&cfg->cluster_port, &cfg->client_port, &cfg->rest_port};
	long cpus;
	int rv;

	if (cfg->node_name[0] == '\0') {
		if (gethostname(host, sizeof host) != 0)
			snprintf(host, sizeof host, "shoal");
		host[63] = '\0';
		for (char *p = host; *p; p++)
			if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-')
				*p = '_';
		if ((rv = store_string(cfg, find_key("node.name"), host, strlen(host), err)) != 0)
			return sh_err_wrap(err, rv, "config: node.name from the host name");
	}
	if (cfg->advertise_address[0] == '\0' &&
	    (rv = store_string(cfg, find_key("listen.advertise_address"), cfg->listen_address,
			       strlen(cfg->listen_address), err)) != 0)
		return sh_err_wrap(err, rv, "config: listen.advertise_address");
	for (int i = 0; i < 3; i++)
		if (*ports[i] == 0)
			*ports[i] = cfg->base_port * 10 + i + 1;
	cpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (cfg->search_threads == 0)
		cfg->search_threads = cpus > 0 ? cpus : 1;
	if (cfg->index_threads == 0)
		cfg->index_threads = cpus > 0 ? cpus : 1;
	return 0;
}

/* A sealed datagram must fit membership.udp_mtu and leave the core the
 * 1200 bytes it needs. */
static int check_keyring(const struct sh_config *cfg, struct sh_err *err)
{
	int peer = (cfg->peer_cert_file[0] != '\0') + (cfg->peer_key_file[0] != '\0') +
		   (cfg->peer_ca_file[0] != '\0');

	if (peer != 0 && peer != 3)
		return sh_err_set(err, SH_EINVAL,
				  "config: security.peer_cert_file, peer_key_file and peer_ca_file "
				  "go together: set all three or none");
	if (cfg->gossip_keyring_file[0] != '\0' && cfg->udp_mtu < 1200 + KEYRING_OVERHEAD)
		return sh_err_set(err, SH_EINVAL,
				  "config: membership.udp_mtu (%" PRId64
				  ") must be at least %d with security.gossip_keyring_file (the "
				  "seal takes %d bytes of each datagram)",
				  cfg->udp_mtu, 1200 + KEYRING_OVERHEAD, KEYRING_OVERHEAD);
	return 0;
}

int sh_config_validate(struct sh_config *cfg, struct sh_err *err)
{
	int rv = resolve_auto(cfg, err);

	if (rv != 0 || (rv = apply_profile(cfg, err)) != 0 || (rv = check_keyring(cfg, err)) != 0)
		return rv;
	if (cfg->probe_timeout_ms >= cfg->probe_interval_ms)
		return sh_err_set(err, SH_EINVAL,
				  "config: membership.probe_timeout_ms (%" PRId64
				  ") must be below membership.probe_interval_ms (%" PRId64 ")",
				  cfg->probe_timeout_ms, cfg->probe_interval_ms);
	if (cfg->heartbeat_ms * 2 > cfg->election_timeout_ms)
		return sh_err_set(err, SH_EINVAL,
				  "config: raft.heartbeat_ms (%" PRId64
				  ") must be at most half of raft.election_timeout_ms (%" PRId64
				  ")",
				  cfg->heartbeat_ms, cfg->election_timeout_ms);
	if (cfg->cluster_port == cfg->client_port || cfg->cluster_port == cfg->rest_port ||
	    cfg->client_port == cfg->rest_port)
		return sh_err_set(err, SH_EINVAL,
				  "config: listen ports must differ (cluster %" PRId64
				  ", client %" PRId64 ", rest %" PRId64 ")",
				  cfg->cluster_port, cfg->client_port, cfg->rest_port);
	if (strcmp(cfg->advertise_address, "0.0.0.0") == 0 ||
	    strcmp(cfg->advertise_address, "::") == 0)
		return sh_err_set(
			err, SH_EINVAL,
			"config: listen.address is %s, so listen.advertise_address must name "
			"the address other nodes should use",
			cfg->listen_address);
	return 0;
}

int sh_config_format(const struct sh_config *cfg, size_t i, char *buf, size_t size)
{
	const struct cfg_row *row = &rows[i];
	const void *p = cfield(cfg, row);
	const struct sh_strlist *l;
	size_t n = 0;

	switch (row->type) {
	case CFG_STRING: return snprintf(buf, size, "%s", *(char *const *)p);
	case CFG_INT: return snprintf(buf, size, "%" PRId64, *(const int64_t *)p);
	case CFG_SIZE: return snprintf(buf, size, "%" PRIu64, *(const uint64_t *)p);
	case CFG_BOOL: return snprintf(buf, size, "%s", *(const bool *)p ? "true" : "false");
	case CFG_ENUM: return snprintf(buf, size, "%s", row->names[*(const int *)p]);
	case CFG_LIST:
		l = p;
		buf[0] = '\0';
		for (size_t k = 0; k < l->n && n < size; k++)
			n += (size_t)snprintf(buf + n, size - n, "%s%s", k ? "," : "", l->v[k]);
		return (int)n;
	}
	return -1;
}

static const char *type_name(const struct cfg_row *row)
{
	static const char *const names[] = {"string",  "integer", "size",
					    "boolean", "enum",    "list of strings"};
	return names[row->type];
}

void sh_config_print_help(FILE *out)
{
	for (size_t i = 0; i < N_ROWS; i++) {
		const struct cfg_row *r = &rows[i];
		char flag[128];
		size_t k;

		snprintf(flag, sizeof flag, "--%s", r->key);
		for (k = 2; flag[k]; k++)
			if (flag[k] == '.' || flag[k] == '_')
				flag[k] = '-';
		fprintf(out, "%s (%s, default \"%s\"%s%s)\n    %s\n    %s\n", r->key, type_name(r),
			r->def, r->flags & CFG_RUNTIME ? ", reloaded on SIGHUP" : "",
			r->flags & CFG_INACTIVE ? ", not used by this version yet" : "", flag,
			r->doc);
	}
}

int sh_config_apply_runtime(struct sh_config *old, const struct sh_config *new_cfg)
{
	int restart = 0;

	for (size_t i = 0; i < N_ROWS; i++) {
		char a[1024], b[1024];
		struct sh_err err;

		sh_config_format(old, i, a, sizeof a);
		sh_config_format(new_cfg, i, b, sizeof b);
		if (strcmp(a, b) == 0)
			continue;
		if (!(rows[i].flags & CFG_RUNTIME)) {
			LOG_WARN("config", "%s changed from '%s' to '%s': restart to apply",
				 rows[i].key, a, b);
			restart++;
		} else if (set_from_text(old, &rows[i], b, &err) == 0) {
			LOG_INFO("config", "%s changed from '%s' to '%s'", rows[i].key, a, b);
		}
	}
	return restart;
}

void sh_config_warn_inactive(const struct sh_config *cfg)
{
	struct sh_config def;
	struct sh_err err;

	if (sh_config_init(&def, &err) != 0)
		return;
	for (size_t i = 0; i < N_ROWS; i++) {
		char a[1024], b[1024];

		if (!(rows[i].flags & CFG_INACTIVE))
			continue;
		sh_config_format(cfg, i, a, sizeof a);
		sh_config_format(&def, i, b, sizeof b);
		if (strcmp(a, b) != 0)
			LOG_WARN("config", "%s is set to '%s' but this version does not use it yet",
				 rows[i].key, a);
	}
	sh_config_free(&def);
}

size_t sh_config_key_count(void)
{
	return N_ROWS;
}

const char *sh_config_key(size_t i)
{
	return i < N_ROWS ? rows[i].key : NULL;
}

const char *sh_config_key_default(size_t i)
{
	return i < N_ROWS ? rows[i].def : NULL;
}
