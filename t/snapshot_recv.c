/* Tests of the snapshot receiver (snap_recv_*): a real snapshot (a store
 * with two collections, a few MiB: several frames) streamed chunk by chunk
 * from snap_chunks_* into another directory gives a byte-identical file
 * (INDEX.recv, INDEX.snap once accepted) that snap_read_received loads
 * with the same digest; a flipped byte, a skipped,
 * repeated or swapped chunk, a header of another index or term, a chunk
 * after the end frame, one too big or empty, and a finish before the end
 * frame are refused with the exact message, a refused chunk changing
 * nothing; abort leaves no file; a receiver that dies leaves a .tmp that
 * snap_latest deletes. */
#include "build.h"

#include "storage/snapshot.h"
#include "storage/store.h"
#include "tap.h"
#include "util/alloc.h"

#include "storage_util.h"

#include <inttypes.h>
#include <sys/wait.h>

#define INDEX 41
#define TERM  3

struct chunk {
	uint64_t off;
	size_t len;
	unsigned char *p;
};

static char root[512], src[600];
static struct chunk *ch;
static size_t nch;
static unsigned char *whole;
static long long size;
static struct digest want;

static int apply(struct store *st, const struct entry *e)
{
	struct wal_buf *b = wal_buf_new(0);
	struct sh_err err = {0};
	struct wal_rec r;
	size_t pos = 0;
	bool fatal;
	int rv;

	if (entry_encode(e, b, 1, store_applied_index(st) + 1, &err) != 0)
		bail_out("encode: %s", err.msg);
	wal_buf_next(b, &pos, &r);
	rv = store_apply(st, &r, NULL, &fatal, &err);
	wal_buf_unref(b);
	if (rv != 0)
		bail_out("apply: %s", err.msg);
	return rv;
}

/* Two collections; "big" holds enough to fill a few frames. */
static struct store *make_store(void)
{
	enum { N = 14000, DIM = 24 };
	static float v[N][DIM];
	static struct coll_point p[N];
	struct entry e = {.type = WAL_CREATE,
			  .params = {.name = "big", .dim = DIM, .m = 8, .ef_construction = 16}};
	struct store *st;
	struct sh_err err = {0};

	store_new(&st, &err);
	apply(st, &e);
	snprintf(e.params.name, sizeof e.params.name, "small");
	e.params.dim = 2;
	apply(st, &e);
	for (int i = 0; i < N; i++) {
		for (int j = 0; j < DIM; j++)
			v[i][j] = (float)((i * 31 + j * 17) % 101) / 7.0f;
		p[i] = (struct coll_point){(uint64_t)i + 1, v[i], DIM, i % 3 ? NULL : "{\"i\":1}",
					   i % 3 ? 0u : 7u};
	}
	e = (struct entry){.type = WAL_UPSERT, .collection = "big", .points = p, .n = N};
	apply(st, &e);
	p[0].dim = 2;
	e = (struct entry){.type = WAL_UPSERT, .collection = "small", .points = p, .n = 1};
	apply(st, &e);
	return st;
}

static int save_fn(void *arg, hnsw_write_fn write, void *wctx, struct sh_err *err)
{
	return store_save(arg, write, wctx, err);
}

static int load_fn(void *arg, hnsw_read_fn read, void *rctx, uint64_t index, uint64_t term,
		   struct sh_err *err)
{
	return store_load(read, rctx, index, term, arg, err);
}

/* Write the snapshot in src and keep its chunks and its bytes. */
static void setup(void)
{
	struct store *st = make_store();
	struct snap_chunks *c;
	struct sh_err err = {0};
	char path[800];
	const void *data;
	size_t len;
	uint64_t off;
	FILE *f;

	want = store_digest(st);
	mkdir(src, 0750);
	if (snap_write(src, INDEX, TERM, save_fn, st, NULL, &err) != 0 ||
	    snap_chunks_open(src, INDEX, &c, &err) != 0)
		bail_out("snapshot: %s", err.msg);
	store_free(st);
	ch = sh_calloc(64, sizeof *ch);
	while (snap_chunks_next(c, &data, &len, &off, &err) == 0 && len > 0 && nch < 64) {
		ch[nch] = (struct chunk){off, len, sh_malloc(len)};
		memcpy(ch[nch++].p, data, len);
	}
	snap_chunks_close(c);
	snap_path(path, sizeof path, src, INDEX);
	size = file_size(path);
	whole = sh_malloc((size_t)size);
	f = fopen(path, "r");
	if (f == NULL || fread(whole, 1, (size_t)size, f) != (size_t)size)
		bail_out("cannot read %s", path);
	fclose(f);
	ok(nch >= 5 && size > 2 * SNAP_FRAME_MAX, "a snapshot of %lld bytes in %zu chunks", size,
	   nch);
}

static const char *subdir(const char *name)
{
	static char buf[700];

	snprintf(buf, sizeof buf, "%s/%s", root, name);
	return buf;
}

/* Feed chunks [from, to) into r; the index of the first refused, or to. */
static size_t feed(struct snap_recv *r, size_t from, size_t to, struct sh_err *err)
{
	for (size_t i = from; i < to; i++)
		if (snap_recv_chunk(r, ch[i].off, ch[i].p, ch[i].len, err) != 0)
			return i;
	return to;
}

/* DIR/INDEX.recv holds exactly the source's bytes. */
static bool same_file(const char *dir)
{
	char path[800];
	unsigned char *got = sh_malloc((size_t)size + 1);
	FILE *f;
	bool same;

	snap_recv_path(path, sizeof path, dir, INDEX);
	f = fopen(path, "r");
	same = f != NULL && fread(got, 1, (size_t)size + 1, f) == (size_t)size &&
	       memcmp(got, whole, (size_t)size) == 0;
	if (f != NULL)
		fclose(f);
	sh_free(got);
	return same;
}

static long long tmp_size(const char *dir, uint64_t index)
{
	char path[800];

	snap_recv_path(path, sizeof path, dir, index);
	strcat(path, ".tmp");
	return file_size(path);
}

static void test_stream(void)
{
	const char *dir = subdir("copy");
	struct snap_recv *r;
	struct store *st = NULL;
	struct sh_err err = {0};
	uint64_t latest = 0;

	is_int(snap_recv_open(dir, INDEX, TERM, &r, &err), 0, "open a receiver in a new dir");
	is_int(tmp_size(dir, INDEX), 0, "it creates INDEX.recv.tmp");
	is_int(feed(r, 0, nch, &err), nch, "every chunk accepted: %s", err.msg);
	is_int(snap_recv_offset(r), size, "all bytes received");
	ok(snap_recv_done(r), "the end frame is in");
	is_int(snap_recv_finish(r, &err), 0, "finish: %s", err.msg);
	is_int(tmp_size(dir, INDEX), -1, "the .tmp is gone");
	ok(same_file(dir), "the file (INDEX.recv) is byte-identical to the leader's");
	is_int(snap_read_received(dir, INDEX, load_fn, &st, &err), 0,
	       "snap_read_received loads it: %s", err.msg);
	is_int(snap_prune(dir, INDEX, &err), 0, "snap_prune");
	ok(same_file(dir), "leaves it alone");
	is_int(snap_accept_received(dir, INDEX, &err), 0, "accepted: %s", err.msg);
	is_int(snap_latest(dir, &latest, &err), 0, "snap_latest");
	is_int(latest, INDEX, "finds it now");
	ok(st != NULL && digest_equal(store_digest(st), want), "with the same digest");
	ok(st != NULL && store_applied_index(st) == INDEX && store_applied_term(st) == TERM,
	   "at the same index and term");
	is_int(st != NULL ? store_points(st) : 0, 14001, "and the same points");
	store_free(st);
}

static void test_damaged_chunk(void)
{
	const char *dir = subdir("damaged");
	struct snap_recv *r;
	struct sh_err err = {0};
	unsigned char *bad = sh_malloc(ch[2].len);
	char want_msg[1000], path[800];

	snap_recv_path(path, sizeof path, dir, INDEX);
	snap_recv_open(dir, INDEX, TERM, &r, &err);
	feed(r, 0, 2, &err);
	memcpy(bad, ch[2].p, ch[2].len);
	bad[SNAP_FRAME_HDR + 4321] ^= 0x20;
	is_int(snap_recv_chunk(r, ch[2].off, bad, ch[2].len, &err), SH_ECORRUPT,
	       "a flipped byte in frame 1 is refused");
	snprintf(want_msg, sizeof want_msg,
		 "snapshot: receiving '%s': frame 1 at offset %" PRIu64
		 ": checksum mismatch (stored ",
		 path, ch[2].off);
	like(err.msg, want_msg, "naming the file, the frame and the offset");
	bad[SNAP_FRAME_HDR + 4321] ^= 0x20;
	bad[0] ^= 0x01;
	is_int(snap_recv_chunk(r, ch[2].off, bad, ch[2].len, &err), SH_EINVAL,
	       "a wrong frame length is refused");
	snprintf(want_msg, sizeof want_msg,
		 "frame 1 at offset %" PRIu64 ": length %zu, but the chunk holds %zu bytes",
		 ch[2].off, (ch[2].len - SNAP_FRAME_HDR) ^ 1, ch[2].len - SNAP_FRAME_HDR);
	like(err.msg, want_msg, "and says both lengths");
	is_int(snap_recv_offset(r), ch[2].off, "refused chunks changed nothing");
	is_int(feed(r, 2, nch, &err), nch, "the right chunks go on from there: %s", err.msg);
	is_int(snap_recv_finish(r, &err), 0, "finish");
	ok(same_file(dir), "and the file is the leader's");
	sh_free(bad);
}

static void test_order(void)
{
	const char *dir = subdir("order");
	struct snap_recv *r;
	struct sh_err err = {0};
	char want_msg[200];

	snap_recv_open(dir, INDEX, TERM, &r, &err);
	feed(r, 0, 2, &err);
	is_int(snap_recv_chunk(r, ch[3].off, ch[3].p, ch[3].len, &err), SH_EINVAL,
	       "a skipped chunk is refused");
	snprintf(want_msg, sizeof want_msg, "chunk at offset %" PRIu64 ", expected offset %" PRIu64,
		 ch[3].off, ch[2].off);
	like(err.msg, want_msg, "saying expected vs got");
	is_int(snap_recv_chunk(r, ch[1].off, ch[1].p, ch[1].len, &err), SH_EINVAL,
	       "a repeated chunk is refused");
	snprintf(want_msg, sizeof want_msg, "chunk at offset %" PRIu64 ", expected offset %" PRIu64,
		 ch[1].off, ch[2].off);
	like(err.msg, want_msg, "saying expected vs got");
	is_int(snap_recv_chunk(r, ch[2].off, ch[3].p, ch[3].len, &err), SH_ECORRUPT,
	       "the next frame in the place of this one is refused");
	like(err.msg, "frame 1 at offset", "as a checksum mismatch of frame 1");
	is_int(snap_recv_chunk(r, ch[2].off, ch[2].p, 0, &err), SH_EINVAL, "an empty chunk");
	is_int(snap_recv_chunk(r, ch[2].off, ch[2].p, SNAP_CHUNK_MAX + 1, &err), SH_EINVAL,
	       "a chunk over SNAP_CHUNK_MAX");
	like(err.msg, "a chunk of 1048585 bytes at offset", "says its size");
	is_int(feed(r, 2, nch, &err), nch, "the rest");
	is_int(snap_recv_chunk(r, (uint64_t)size, ch[nch - 1].p, ch[nch - 1].len, &err), SH_EINVAL,
	       "a chunk after the end frame is refused");
	like(err.msg, "after the end frame", "message");
	is_int(snap_recv_finish(r, &err), 0, "the file still finishes");
	ok(same_file(dir), "whole");
}

static void test_header(void)
{
	const char *dir = subdir("header");
	unsigned char h[SNAP_HDR];
	struct snap_recv *r;
	struct sh_err err = {0};

	snap_recv_open(dir, INDEX + 1, TERM, &r, &err);
	is_int(snap_recv_chunk(r, 0, ch[0].p, ch[0].len, &err), SH_EINVAL, "another index");
	like(err.msg, "the header is for index 41 term 3, expected index 42 term 3", "message");
	snap_recv_abort(r);
	snap_recv_open(dir, INDEX, TERM + 1, &r, &err);
	is_int(snap_recv_chunk(r, 0, ch[0].p, ch[0].len, &err), SH_EINVAL, "another term");
	like(err.msg, "the header is for index 41 term 3, expected index 41 term 4", "message");
	memcpy(h, ch[0].p, SNAP_HDR);
	h[20] ^= 1;
	is_int(snap_recv_chunk(r, 0, h, SNAP_HDR, &err), SH_ECORRUPT, "a garbled header");
	like(err.msg, "bad header: header checksum mismatch", "message");
	is_int(snap_recv_chunk(r, 0, ch[1].p, ch[1].len, &err), SH_EINVAL, "a frame first");
	like(err.msg, "the header chunk is 1048584 bytes, not 40", "message");
	snap_recv_abort(r);
}

static void test_finish_abort(void)
{
	const char *dir = subdir("early");
	struct snap_recv *r;
	struct sh_err err = {0};
	char path[800];

	snap_recv_path(path, sizeof path, dir, INDEX);
	snap_recv_open(dir, INDEX, TERM, &r, &err);
	feed(r, 0, nch - 1, &err);
	ok(!snap_recv_done(r), "all but the end frame: not done");
	is_int(snap_recv_finish(r, &err), SH_EINVAL, "finish before the end frame is refused");
	like(err.msg, "finished before the end frame (", "message");
	ok(tmp_size(dir, INDEX) == -1 && file_size(path) == -1, "and leaves no file");
	snap_recv_open(dir, INDEX, TERM, &r, &err);
	feed(r, 0, 3, &err);
	ok(tmp_size(dir, INDEX) > 0, "a receiver part way");
	snap_recv_abort(r);
	ok(tmp_size(dir, INDEX) == -1 && file_size(path) == -1, "abort leaves no file");
	snap_recv_abort(NULL);
}

static void test_crash_leftover(void)
{
	const char *dir = subdir("crash");
	struct sh_err err = {0};
	uint64_t latest = 99;
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		struct snap_recv *r;

		snap_recv_open(dir, INDEX, TERM, &r, NULL);
		_exit(feed(r, 0, 3, NULL) == 3 ? 0 : 1);
	}
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0 && tmp_size(dir, INDEX) > 0,
	   "a receiver that died left its .tmp");
	log_capture(root);
	is_int(snap_latest(dir, &latest, &err), 0, "snap_latest");
	is_int(latest, 0, "finds no snapshot");
	is_int(tmp_size(dir, INDEX), -1, "and deletes the .tmp");
	like(log_text(), "left by an interrupted snapshot", "saying so");
	{
		char recv[800];
		FILE *f;

		snap_recv_path(recv, sizeof recv, dir, INDEX);
		f = fopen(recv, "w");
		if (f != NULL)
			fclose(f);
		is_int(snap_latest(dir, &latest, &err), 0, "a received snapshot never installed");
		is_int(file_size(recv), -1, "is deleted at start too");
		like(log_text(), "left by an interrupted install", "saying so");
	}
	sh_log_close();
}

/* Pruning old snapshots (what the apply thread does after each snapshot)
 * while a snapshot is being received leaves the receiver's file alone. */
static void test_prune_while_receiving(void)
{
	const char *dir = subdir("prune");
	struct snap_recv *r;
	struct sh_err err = {0};

	snap_recv_open(dir, INDEX, TERM, &r, &err);
	feed(r, 0, 3, &err);
	is_int(snap_prune(dir, INDEX - 1, &err), 0, "snap_prune meanwhile");
	is_int(feed(r, 3, nch, &err), nch, "the receiver goes on: %s", err.msg);
	is_int(snap_recv_finish(r, &err), 0, "and finishes: %s", err.msg);
}

/* The total a receiver takes is bounded: by a maximum, and by the room it
 * must leave on the file system. */
static void test_limit(void)
{
	const char *dir = subdir("limit");
	struct snap_recv *r;
	struct sh_err err = {0};
	size_t at;

	snap_recv_open(dir, INDEX, TERM, &r, &err);
	snap_recv_limit(r, 2 * SNAP_CHUNK_MAX, 0);
	at = feed(r, 0, nch, &err);
	ok(at > 1 && at < nch, "a receiver limited to 2 MiB refuses chunk %zu", at);
	is_int(err.code, SH_ETOOBIG, "as too big");
	like(err.msg, "bytes is over the limit of 2097168 bytes", "saying so: %s", err.msg);
	snap_recv_abort(r);
	snap_recv_open(dir, INDEX, TERM, &r, &err);
	snap_recv_limit(r, 0, UINT64_MAX / 2);
	is_int(feed(r, 0, nch, &err), 0, "one that must leave more room than there is");
	like(err.msg, "bytes free on the file system", "refuses the header: %s", err.msg);
	snap_recv_abort(r);
}

int main(void)
{
	snprintf(root, sizeof root, "%s", make_tmpdir("snaprecv"));
	snprintf(src, sizeof src, "%s/src", root);
	setup();
	test_stream();
	test_damaged_chunk();
	test_order();
	test_header();
	test_finish_abort();
	test_crash_leftover();
	test_prune_while_receiving();
	test_limit();
	for (size_t i = 0; i < nch; i++)
		sh_free(ch[i].p);
	sh_free(ch);
	sh_free(whole);
	rm_rf(root);
	return done_testing();
}
