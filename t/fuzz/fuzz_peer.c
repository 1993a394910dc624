/*
 * fuzz_peer: the peer-link messages (Raft frames, Forward, ForwardReply,
 * SnapChunk, SnapAck) into a real node, as node_peer_recv() gets them from
 * a link that passed the cluster check.
 *
 * One node lives for the whole process: its storage in manual mode in a
 * temporary directory, bootstrapped alone (it leads), on a clock moved by
 * hand.  An input is a sequence of frames
 *
 *     u8 kind | u32 LE length | payload
 *
 * each delivered from peer FUZZ_PEER; after each the node's storage work
 * runs and its clock moves on a millisecond, so that whatever the frames
 * start (an election, a snapshot transfer, an install) goes on.  The node
 * must neither crash nor read out of bounds, whatever arrives.
 */
#include "build.h"

#include "cluster/node.h"
#include "storage/datadir.h"
#include "storage/db.h"
#include "storage/hardstate.h"
#include "util/clock.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FUZZ_PEER 2
#define FUZZ_NODE 7

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct node *node;
static struct db *db;
static struct swim *members;
static struct sh_clock_manual clk;
static uint64_t wake_at;

static int env_send(void *data, uint64_t to, enum peer_kind kind, const struct peer_part *parts,
		    size_t n)
{
	(void)data;
	(void)to;
	(void)kind;
	for (size_t i = 0; i < n; i++)
		if (parts[i].release != NULL)
			parts[i].release(parts[i].data, parts[i].len, parts[i].arg);
	return 0;
}

static size_t env_backlog(void *data, uint64_t to)
{
	(void)data;
	(void)to;
	return 0;
}

static void env_drop(void *data, uint64_t to)
{
	(void)data;
	(void)to;
}

static void env_cluster(void *data, uint64_t id)
{
	(void)data;
	(void)id;
}

static void env_wake(void *data, uint64_t at)
{
	(void)data;
	wake_at = at;
}

static void swim_send(void *data, enum swim_transport t, const char *addr, const uint8_t *buf,
		      size_t len)
{
	(void)data;
	(void)t;
	(void)addr;
	(void)buf;
	(void)len;
}

static void swim_event(void *data, const struct swim_event *ev)
{
	(void)data;
	(void)ev;
}

static uint64_t swim_random(void *data)
{
	(void)data;
	return 4;
}

/* The storage's work, then the node's timer when due. */
static void step(void)
{
	unsigned w;

	while ((w = db_pending(db)) != 0) {
		db_run(db, w);
		db_process(db);
		node_db_progress(node);
	}
	sh_clock_manual_advance(&clk, 1000000);
	if (wake_at <= sh_clock_mono_ms())
		node_wake(node);
}

/* A fixed node id, so that the cluster id (a hash of the founders) is the
 * same in every run and the corpus's frames carry it. */
static int write_id(const char *dir)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof path, "%s/node.id", dir);
	if ((f = fopen(path, "w")) == NULL)
		return -1;
	fprintf(f, "%016x\n", FUZZ_NODE);
	return fclose(f);
}

static void setup(void)
{
	static char dir[] = "/tmp/shoal-fuzz-peer-XXXXXX";
	struct sh_datadir *d;
	struct hardstate *hs;
	struct db_recovery rec;
	struct db_opts dbo = {.fsync = WAL_FSYNC_NEVER,
			      .segment_bytes = 64u << 10,
			      .snapshot_entries = 16,
			      .log_keep = 4,
			      .max_payload_bytes = 4096,
			      .raft = true,
			      .manual = true};
	struct node_opts no = {
		.env = {NULL, env_send, env_backlog, env_drop, env_cluster, env_wake},
		.name = "fuzz",
		.bootstrap_expect = 1,
		.max_voters = 3,
		.max_frame = 1u << 20,
		.max_output = 1u << 20,
		.cache_bytes = 1u << 20,
		.forward_timeout_ms = 1000,
		.seed = 1};
	struct swim_config sc;
	struct swim_self self = {.name = "fuzz", .addr = {"f:1", "f:2", "f:3"}};
	struct swim_io io = {NULL, swim_send, swim_event, swim_random};

	sh_log_set_level(SH_LOG_OFF);
	sh_clock_manual_install(&clk, 1000000000ull, 1700000000ull * 1000000000ull);
	if (mkdtemp(dir) == NULL || write_id(dir) != 0 || sh_datadir_open(dir, &d, NULL) != 0 ||
	    hardstate_open(d, &hs, NULL) != 0)
		abort();
	dbo.dir = dir;
	no.datadir = d;
	no.hs = hs;
	no.id = self.id = sh_datadir_node_id(d);
	raft_opts_default(&no.raft, no.id);
	if (db_open(&dbo, &db, &rec, NULL) != 0)
		abort();
	no.db = db;
	swim_config_default(&sc);
	if (node_new(&no, &node, NULL) != 0 ||
	    swim_new(&sc, &self, &io, sh_clock_mono_ms(), &members, NULL) != 0)
		abort();
	node_start(node, members);
	for (int i = 0; i < 3000; i++)
		step();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t pos = 0;

	if (node == NULL)
		setup();
	while (size - pos >= 5) {
		uint8_t kind = data[pos];
		uint32_t len;

		memcpy(&len, data + pos + 1, 4);
		pos += 5;
		if (len > size - pos)
			len = (uint32_t)(size - pos);
		node_peer_recv(node, FUZZ_PEER, (enum peer_kind)kind, data + pos, len);
		pos += len;
		step();
	}
	return 0;
}

#ifdef FUZZ_PEER_CORPUS
/* The seed corpus (t/fuzz/corpus/peer/), written by a build of this file
 * with -DFUZZ_PEER_CORPUS: one file per message kind, with this node's
 * cluster id so that the frames get past the checks. */
#include "cluster/raft_wire.h"
#include "proto/cluster.pb-c.h"
#include "storage/entry.h"
#include "util/alloc.h"

static void put_frame(FILE *f, uint8_t kind, const void *p, size_t len)
{
	uint32_t l = (uint32_t)len;

	fputc(kind, f);
	fwrite(&l, 4, 1, f);
	fwrite(p, 1, len, f);
}

static void put_msg(const char *dir, const char *name, uint8_t kind, const ProtobufCMessage *m)
{
	char path[512];
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(len + 1);
	FILE *f;

	protobuf_c_message_pack(m, buf);
	snprintf(path, sizeof path, "%s/%s", dir, name);
	if ((f = fopen(path, "wb")) == NULL)
		abort();
	put_frame(f, kind, buf, len);
	fclose(f);
	free(buf);
}

static void put_raft(const char *dir, const char *name, const struct raft_msg *m, uint64_t cid)
{
	char path[512];
	uint8_t *hdr;
	size_t len;
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	if (raft_wire_header(m, cid, &hdr, &len, NULL) != 0 || (f = fopen(path, "wb")) == NULL)
		abort();
	put_frame(f, PEER_RAFT, hdr + 4, len - 4);
	fclose(f);
	sh_free(hdr);
}

int main(int argc, char **argv)
{
	struct node_status st;
	Shoal__Cluster__Forward fw = SHOAL__CLUSTER__FORWARD__INIT;
	Shoal__Cluster__SnapChunk sc = SHOAL__CLUSTER__SNAP_CHUNK__INIT;
	Shoal__Cluster__SnapAck sa = SHOAL__CLUSTER__SNAP_ACK__INIT;
	Shoal__Cluster__ForwardReply fr = SHOAL__CLUSTER__FORWARD_REPLY__INIT;
	struct entry e = {.type = WAL_CREATE};
	struct wal_buf *b = wal_buf_new(256);
	struct wal_rec r;
	size_t pos = 0;

	if (argc != 2)
		return 2;
	setup();
	node_status(node, &st);
	put_raft(argv[1], "append",
		 &(struct raft_msg){.type = RAFT_MSG_APPEND,
				    .term = st.term + 1,
				    .from = FUZZ_PEER,
				    .prev_index = st.last_index,
				    .prev_term = st.term},
		 st.cluster_id);
	put_raft(argv[1], "vote",
		 &(struct raft_msg){.type = RAFT_MSG_VOTE,
				    .term = st.term + 1,
				    .from = FUZZ_PEER,
				    .prevote = true,
				    .last_index = st.last_index,
				    .last_term = st.term},
		 st.cluster_id);
	put_raft(argv[1], "read_index",
		 &(struct raft_msg){.type = RAFT_MSG_READ_INDEX,
				    .term = st.term,
				    .from = FUZZ_PEER,
				    .read_id = 9},
		 st.cluster_id);
	snprintf(e.params.name, sizeof e.params.name, "c");
	e.params.dim = 2;
	if (entry_encode(&e, b, 1, 1, NULL) != 0 || !wal_buf_next(b, &pos, &r))
		abort();
	fw.id = 1;
	fw.ack = 3;
	fw.timeout_ms = 1000;
	fw.type = r.type;
	fw.body = (ProtobufCBinaryData){r.len, (uint8_t *)(uintptr_t)r.body};
	put_msg(argv[1], "forward", PEER_FORWARD, &fw.base);
	fr.id = 1;
	fr.not_leader = true;
	put_msg(argv[1], "forward_reply", PEER_FORWARDED, &fr.base);
	sc.index = st.last_index + 100;
	sc.term = st.term;
	sc.data = (ProtobufCBinaryData){8, (uint8_t *)(uintptr_t) "SHOALSNP"};
	put_msg(argv[1], "snap_chunk", PEER_SNAP, &sc.base);
	sa.index = 5;
	sa.installed = true;
	put_msg(argv[1], "snap_ack", PEER_SNAP_ACK, &sa.base);
	wal_buf_unref(b);
	return 0;
}
#endif
