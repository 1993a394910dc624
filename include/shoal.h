/*
 * shoal.h: libshoal, the C client of shoal (a distributed vector database).
 *
 * Link with `pkg-config --libs shoal`.  The wire protocol is described in
 * doc/protocol.md; every call here is one request (or a pipelined series)
 * on one TCP connection, blocking until its reply or its timeout.
 *
 *     shoal *c;
 *     if (shoal_open("127.0.0.1:7472", NULL, &c) != SHOAL_OK) {
 *             fprintf(stderr, "%s\n", c ? shoal_errmsg(c) : "out of memory");
 *             ...
 *     }
 *     shoal_create_collection(c, "docs", 128, SHOAL_METRIC_COSINE, 0, 0, NULL);
 *     ...
 *     shoal_close(c);
 *
 * Errors.  Every call returns a status: SHOAL_OK (0) or one of the codes
 * below (the server's, or the library's own: SHOAL_UNAVAILABLE when no
 * address can be reached, SHOAL_DEADLINE_EXCEEDED on a timeout).
 * shoal_errmsg() then says what went wrong, in words.
 *
 * Leader following (doc/clients.md).  addrs is a list of seeds.  Before
 * its first write on a connection, the handle asks the node (cluster
 * status) whether it leads; a node that names another leader is left for
 * it, which is then added to the list — so writes reach the leader
 * directly, not forwarded by a follower.  A node that knows no leader (an
 * election) is asked again before the next write; a leader found is asked
 * again after a second, or after a write on it failed (leadership moves:
 * a transfer, a full disk).  options.no_follow turns this off.  A leader named but
 * unreachable (just killed) is not written to through a follower: the
 * call backs off and asks again, until a new leader is named or the
 * deadline passes.  The question gets at most half of the time left (and
 * connect_timeout_ms): a node that accepts and never answers is left for
 * the next address.  Reads go to whichever node the handle is connected to,
 * unless options.read_from sends them elsewhere: to read_addr first
 * (SHOAL_READ_PREFERRED), or to a member drawn at random when the handle
 * first reads (SHOAL_READ_SPREAD: many handles spread their reads over
 * the cluster), on a second connection that fails over to the other
 * nodes as calls do.
 *
 * Retries.  A call that fails because its server is unreachable or answers
 * UNAVAILABLE is retried on the next address, or on the leader the
 * UNAVAILABLE reply named (up to options.retries times, default 8 — an
 * attempt that met a leader named but gone, an election, does not count —
 * with a jittered back-off of 25 ms doubling to 400 ms, never past the call's
 * timeout_ms; connections too are tried only within it, and a request is
 * not sent once it has passed).  After DEADLINE_EXCEEDED the next call
 * starts at the next address (a stopped node keeps its sockets open).  The
 * deadline sent to the server is what is left of the call's.  Reads are
 * always retried.  Every write carries the handle's client session (16
 * random bytes drawn at open, and the write's number), so a write whose
 * connection broke after it was sent, or that was answered
 * SHOAL_OUTCOME_UNKNOWN, is sent again too: the cluster applies it once
 * and answers with the write's own result (doc/clients.md, "Exactly-once
 * writes").  Once an attempt may have applied, a later failure other than
 * SHOAL_DEADLINE_EXCEEDED is returned as SHOAL_OUTCOME_UNKNOWN (it says
 * nothing of that attempt).  Pipelined upserts are not retried.
 *
 * Outcomes of writes (doc/consistency.md, "Outcomes").  SHOAL_UNAVAILABLE
 * and the argument errors mean the write was not applied and never will
 * be; SHOAL_DEADLINE_EXCEEDED and SHOAL_OUTCOME_UNKNOWN mean it may or may
 * not be applied (read it back, or send it again).
 *
 * Ownership.  Inputs are copied or used only during the call.  Outputs:
 *   - struct shoal_results filled by shoal_get/search/scroll owns its
 *     records, their vectors and payloads: free with shoal_results_free();
 *   - the array of shoal_list_collections: free with shoal_free();
 *   - shoal_errmsg() and shoal_status_name() strings belong to the library
 *     (errmsg: valid until the next call on the same handle).
 *
 * Threads.  A handle is used by one thread at a time; open one per thread.
 */
#ifndef SHOAL_H
#define SHOAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct shoal shoal;

/* The status codes (the protocol's StatusCode). */
enum shoal_status {
	SHOAL_OK = 0,
	SHOAL_INVALID_ARGUMENT = 1,
	SHOAL_NOT_FOUND = 2,
	SHOAL_ALREADY_EXISTS = 3,
	SHOAL_FAILED_PRECONDITION = 4,
	SHOAL_UNAVAILABLE = 5,
	SHOAL_DEADLINE_EXCEEDED = 6,
	SHOAL_RESOURCE_EXHAUSTED = 7,
	SHOAL_UNAUTHENTICATED = 8,
	SHOAL_INTERNAL = 9,
	SHOAL_OUTCOME_UNKNOWN = 10,   /* a write that may or may not be applied */
	SHOAL_PERMISSION_DENIED = 11, /* the API key's role may not do this */
	SHOAL_SESSION_EXPIRED = 12,   /* the client session is gone: the handle starts a new one */
};

enum shoal_metric {
	SHOAL_METRIC_DEFAULT = 0, /* l2 */
	SHOAL_METRIC_L2 = 1,
	SHOAL_METRIC_COSINE = 2,
	SHOAL_METRIC_DOT = 3,
};

enum shoal_consistency {
	SHOAL_CONSISTENCY_DEFAULT = 0, /* the server's api.consistency */
	SHOAL_CONSISTENCY_EVENTUAL = 1,
	SHOAL_CONSISTENCY_READ_YOUR_WRITES = 2, /* sends the token of this handle's last write */
	SHOAL_CONSISTENCY_STRONG = 3,
	SHOAL_CONSISTENCY_QUORUM = 4,
};

enum shoal_ack {
	SHOAL_ACK_DEFAULT = 0, /* the server's api.ack */
	SHOAL_ACK_LEADER = 1,
	SHOAL_ACK_ONE = 2,
	SHOAL_ACK_QUORUM = 3,
	SHOAL_ACK_ALL = 4,
};

/* Where reads go (doc/clients.md, "Where reads go"); writes always go to
 * the leader. */
enum shoal_read_from {
	SHOAL_READ_CONNECTED =
		0, /* the node the handle is connected to (the leader once it wrote) */
	SHOAL_READ_PREFERRED = 1, /* read_addr first (a node near the client), then the seeds */
	SHOAL_READ_SPREAD = 2,    /* a member drawn at random per handle, then the others */
};

struct shoal_options {
	int timeout_ms;         /* per call; also sent as the request's deadline (default 30000) */
	int connect_timeout_ms; /* per address (default 2000) */
	int retries;            /* further attempts on UNAVAILABLE (default 8) */
	enum shoal_consistency consistency;
	enum shoal_ack ack;
	size_t max_frame_bytes; /* largest reply accepted (default 64 MiB) */
	/* sent with every request when the node requires keys (doc/security.md);
	 * copied by shoal_open; default: the environment's SHOAL_API_KEY */
	const char *api_key;
	/* TLS (doc/security.md, "TLS for clients"): set, the handle speaks TLS
	 * and verifies the server's certificate against this CA file (PEM) and
	 * its name against the address's host, or tls_server_name; default: the
	 * environment's SHOAL_TLS_CA.  tls_cert_file and tls_key_file: a client
	 * certificate, for nodes that ask for one.  Read by shoal_open. */
	const char *tls_ca_file;
	const char *tls_cert_file, *tls_key_file;
	const char *tls_server_name;
	/* true: writes go to the node connected to, which forwards them to
	 * the leader (no leader following; tests of forwarding) */
	bool no_follow;
	/* reads: where they go (default SHOAL_READ_CONNECTED); read_addr
	 * (host:port) for SHOAL_READ_PREFERRED, copied by shoal_open */
	enum shoal_read_from read_from;
	const char *read_addr;
};

void shoal_options_init(struct shoal_options *o);

/* Open a handle on addrs, "host:port" or a comma-separated list of them
 * (tried in order), and connect.  *out is set even when the connection
 * fails (read shoal_errmsg(), then shoal_close()); NULL only when out of
 * memory.  opts may be NULL (defaults). */
int shoal_open(const char *addrs, const struct shoal_options *opts, shoal **out);
void shoal_close(shoal *c);

const char *shoal_errmsg(const shoal *c);
const char *shoal_status_name(int status);
void shoal_free(void *p);

/* Change the handle's defaults for later calls. */
void shoal_set_timeout(shoal *c, int timeout_ms);
void shoal_set_consistency(shoal *c, enum shoal_consistency level);
void shoal_set_ack(shoal *c, enum shoal_ack level);

/* The position of a write; every write can return it (tok may be NULL). */
struct shoal_token {
	uint64_t term, index;
};
/* The token of the handle's last acknowledged write (0:0 before any); in a
 * pipelined upsert, the highest acknowledged so far (a progress callback
 * may read it). */
struct shoal_token shoal_last_token(const shoal *c);
/* Make tok the handle's last token, which its read_your_writes reads carry
 * until its next write: a session spread over several handles (one per
 * node, a pool) hands each the token of its latest write. */
void shoal_set_token(shoal *c, struct shoal_token tok);

/* Where the answering node stood when the handle's last read (get, search,
 * scroll, count, list, describe) ran: its applied index, the commit index
 * it knew, how many committed entries it had not applied yet (lag) and
 * how long the oldest of them had waited (lag_ms).  An eventual read is
 * stale by at most that, as far as that node knew.  All 0 before any read
 * (or from a server that does not send it). */
struct shoal_read_state {
	uint64_t applied_index, commit_index, lag, lag_ms;
};
struct shoal_read_state shoal_read_state(const shoal *c);

int shoal_ping(shoal *c);

/* ------------------------------------------------------------ collections */

struct shoal_collection_info {
	char name[65];
	uint32_t dim;
	enum shoal_metric metric;
	uint32_t m, ef_construction;
	uint64_t count;        /* live points */
	uint64_t memory_bytes; /* index, id tree and payloads */
	/* the write path: of count, points in the HNSW graph and points
	 * waiting for it (searched exactly meanwhile); the oldest one's age */
	uint64_t points_indexed, points_fresh, oldest_fresh_ms;
	uint64_t indexed_total; /* entries moved into the graph since start */
	uint64_t indexing_rate; /* of them a second lately (0: the indexer idles) */
};

/* m, ef_construction 0: the server's defaults (16, 200). */
int shoal_create_collection(shoal *c, const char *name, uint32_t dim, enum shoal_metric metric,
			    uint32_t m, uint32_t ef_construction, struct shoal_token *tok);
int shoal_drop_collection(shoal *c, const char *name, struct shoal_token *tok);
/* *out: an array of *n (shoal_free). */
int shoal_list_collections(shoal *c, struct shoal_collection_info **out, size_t *n);
int shoal_describe_collection(shoal *c, const char *name, struct shoal_collection_info *out);

/* ------------------------------------------------------------ points */

struct shoal_point {
	uint64_t id;
	const float *vector; /* dim values */
	uint32_t dim;
	const char *payload; /* a JSON object as text, or NULL */
	size_t payload_len;  /* 0: strlen(payload) */
};

/* One request holding n points. */
int shoal_upsert(shoal *c, const char *collection, const struct shoal_point *pts, size_t n,
		 struct shoal_token *tok);

/* A large load: n points sent in requests of `batch` points, up to `depth`
 * requests in flight on the connection (pipelining).  progress (may be
 * NULL) is called after each acknowledged request with the number of
 * points acknowledged so far.  On an error, *acked (may be NULL) counts
 * the points whose requests were acknowledged (not necessarily a prefix
 * when depth > 1); no retry happens. */
typedef void (*shoal_progress_fn)(void *arg, size_t acked);
int shoal_upsert_pipelined(shoal *c, const char *collection, const struct shoal_point *pts,
			   size_t n, size_t batch, size_t depth, shoal_progress_fn progress,
			   void *arg, size_t *acked, struct shoal_token *tok);

/* *deleted (may be NULL): how many of the ids existed. */
int shoal_delete(shoal *c, const char *collection, const uint64_t *ids, size_t n, size_t *deleted,
		 struct shoal_token *tok);

#define SHOAL_WITH_PAYLOAD 0x1
#define SHOAL_WITH_VECTOR  0x2
#define SHOAL_EXACT        0x4 /* search: brute force */

struct shoal_record {
	uint64_t id;
	float distance; /* search only */
	float *vector;  /* with SHOAL_WITH_VECTOR, else NULL */
	uint32_t dim;
	char *payload; /* with SHOAL_WITH_PAYLOAD: NUL-terminated JSON, or NULL */
	size_t payload_len;
};

struct shoal_results {
	struct shoal_record *v;
	size_t n;
	bool exact;           /* search: it ran by brute force */
	bool has_next;        /* scroll: more points follow */
	uint64_t next_offset; /* scroll: the offset of the next page */
};

void shoal_results_free(struct shoal_results *r);

/* The points found among ids, in the order asked. */
int shoal_get(shoal *c, const char *collection, const uint64_t *ids, size_t n, int flags,
	      struct shoal_results *out);

struct shoal_search {
	const float *vector;
	uint32_t dim;
	uint32_t k;
	uint32_t ef;        /* 0: max(k, 40) */
	const char *filter; /* JSON (doc/protocol.md, "Filters"), or NULL */
	int flags;          /* SHOAL_WITH_PAYLOAD | SHOAL_WITH_VECTOR | SHOAL_EXACT */
};

int shoal_search(shoal *c, const char *collection, const struct shoal_search *q,
		 struct shoal_results *out);

/* n searches pipelined, up to depth in flight; done(arg, i, status,
 * results, latency_ns) is called for each as its reply arrives (results
 * are valid during the call only; NULL when status is not SHOAL_OK).
 * Returns the first transport error, or SHOAL_OK (statuses of individual
 * searches go to done). */
typedef void (*shoal_search_done_fn)(void *arg, size_t i, int status, const struct shoal_results *r,
				     uint64_t latency_ns);
int shoal_search_pipelined(shoal *c, const char *collection, const struct shoal_search *qs,
			   size_t n, size_t depth, shoal_search_done_fn done, void *arg);

/* n pings pipelined, up to depth in flight (benchmarks); latency as above. */
typedef void (*shoal_ping_done_fn)(void *arg, size_t i, int status, uint64_t latency_ns);
int shoal_ping_pipelined(shoal *c, size_t n, size_t depth, shoal_ping_done_fn done, void *arg);

/* A page of points in id order from offset (limit 0: 10). */
int shoal_scroll(shoal *c, const char *collection, uint64_t offset, uint32_t limit,
		 const char *filter, int flags, struct shoal_results *out);
int shoal_count(shoal *c, const char *collection, const char *filter, uint64_t *count);

/* ------------------------------------------------------------ cluster */

#define SHOAL_MAX_VOTERS 64

struct shoal_cluster_status {
	uint64_t node_id;
	char node_name[64];
	char role[16]; /* leader, follower, candidate, precandidate, learner,
			* joining, removed, failed */
	uint64_t term, leader_id, commit_index, applied_index, last_index;
	char digest[33]; /* of the applied state at applied_index */
	uint64_t collections, points;
	char version[32];
	size_t members;
	uint64_t cluster_id, durable_index, first_index, snapshot_index;
	char leader_address[304]; /* its client address, "" when unknown */
	uint64_t pending_writes, elections, leader_changes;
	size_t n_voters, n_learners;
	uint64_t voters[SHOAL_MAX_VOTERS], learners[SHOAL_MAX_VOTERS];
	/* readiness (doc/protocol.md, "Health and readiness") */
	bool ready;
	char ready_reason[192]; /* why not ready; "" when ready */
	uint64_t lag, lag_ms;   /* behind the commit index it knows */
	/* disk full: read-only (writes refused, reads served) for disk_full_ms */
	bool disk_full;
	uint64_t disk_full_ms, disk_full_episodes;
};

int shoal_cluster_status(shoal *c, struct shoal_cluster_status *out);

enum shoal_member_state {
	SHOAL_MEMBER_UNKNOWN = 0,
	SHOAL_MEMBER_ALIVE = 1,
	SHOAL_MEMBER_SUSPECT = 2,
	SHOAL_MEMBER_DEAD = 3,
	SHOAL_MEMBER_LEFT = 4,
};

/* A member as the server asked sees it (its failure detector's view). */
struct shoal_member {
	uint64_t node_id;
	char name[64];
	enum shoal_member_state state;
	uint64_t incarnation;
	char cluster_address[304], client_address[304], rest_address[304];
	char role[16]; /* "" when the server does not know it */
	bool voter;
	uint64_t applied_index, commit_index, lag;
	uint64_t state_age_ms; /* how long in its state */
	int64_t last_heard_ms; /* since a packet from it arrived; 0 for the
				* server itself, -1 never */
	uint64_t match_index;  /* asked of the leader: durable on it up to here */
	uint64_t lag_ms;       /* asked of the leader: since it held the whole log */
};

/* Every member the server knows, itself first and the others by name.
 * *out: an array of *n (shoal_free). */
int shoal_cluster_members(shoal *c, struct shoal_member **out, size_t *n);
/* "alive", "suspect", "dead", "left" or "unknown". */
const char *shoal_member_state_name(enum shoal_member_state s);

/* Configuration changes, made by the leader (the server forwards them):
 * add a member as a learner now (the leader also does it by itself, and
 * promotes caught-up learners up to cluster.max_voters), remove a voter or
 * learner, hand leadership to a voter (node_id 0: the most caught up). */
enum shoal_change {
	SHOAL_CHANGE_ADD = 1,
	SHOAL_CHANGE_REMOVE = 2,
	SHOAL_CHANGE_TRANSFER_LEADER = 3,
};
int shoal_cluster_change(shoal *c, enum shoal_change kind, uint64_t node_id,
			 struct shoal_token *tok);

/* The gossip keyring of the node c talks to, and of it only
 * (doc/security.md, "Gossip keyring"): list its keys, or install a key,
 * make an installed key the primary (use), remove one (not the primary).
 * key: 32 bytes in base64 (NULL for list).  A change is on the node's
 * keyring file when this returns SHOAL_OK.  fps (may be NULL) gets the
 * keys' fingerprints after the request, the primary first: at most max,
 * *n of them; key_fp (may be NULL) the fingerprint of key (list with a key
 * changes nothing: is the key installed there?).  FAILED_PRECONDITION from
 * a node without a keyring. */
enum shoal_keyring_op {
	SHOAL_KEYRING_LIST = 0,
	SHOAL_KEYRING_INSTALL = 1,
	SHOAL_KEYRING_USE = 2,
	SHOAL_KEYRING_REMOVE = 3,
};
#define SHOAL_KEY_FP 16 /* hex digits of a key's fingerprint */
int shoal_keyring(shoal *c, enum shoal_keyring_op op, const char *key,
		  char (*fps)[SHOAL_KEY_FP + 1], size_t max, size_t *n,
		  char key_fp[SHOAL_KEY_FP + 1]);

/* ------------------------------------------------------------ backup */

/* A backup (doc/protocol.md, "Snapshots"): the node asked takes a
 * snapshot of its applied state now and sends the file, which
 * write(arg, data, len) gets in order, piece by piece (a nonzero return
 * stops: SHOAL_INTERNAL).  Every piece is checked before write sees it —
 * the header, each frame's CRC-32C bound to its position, the end frame
 * with the total length — so a transfer that completes wrote a sound
 * snapshot file (doc/storage-format.md, "Snapshots"), which `shoald
 * --restore` takes.  progress (may be NULL) gets the bytes so far and the
 * file's size after each piece.  The first reply waits for the snapshot
 * to be written: give the handle a timeout that allows for it. */
struct shoal_snapshot_info {
	uint64_t index, term; /* the last entry it covers */
	uint64_t size;        /* bytes of the file */
	uint64_t node_id;     /* the node that wrote it */
	uint64_t cluster_id;  /* ... and its cluster */
	char digest[33];      /* the state digest it holds ("" if not found) */
};
typedef int (*shoal_write_fn)(void *arg, const void *data, size_t len);
typedef void (*shoal_snapshot_progress_fn)(void *arg, uint64_t done, uint64_t total);
int shoal_snapshot(shoal *c, shoal_write_fn write, void *arg, shoal_snapshot_progress_fn progress,
		   struct shoal_snapshot_info *info);

#ifdef __cplusplus
}
#endif

#endif
