/* fuzz_snapshot: a snapshot file given as bytes (storage/snapshot.c,
 * snapshot_recv.c, store.c, collection_io.c and the index stream it
 * embeds).  The file is loaded as the snapshot at index 7 — every frame
 * checked, the content parsed into a store — and must load or fail with a
 * message that names the file.  What loaded must save again to content
 * that loads to the same digest, and a receiver fed the file's chunks (as
 * snap_chunks_next cuts them) must take every one and produce the same
 * bytes.
 *
 * Input: one flags byte, then the file.  Flags, so that the fuzzer gets
 * past the checksums to the content behind them:
 *   bit 0  prepend a valid header (index 7, term 3);
 *   bit 1  fix each frame's CRC and the end frame's, walking the frames
 *          by their lengths. */
#include "build.h"

#include "fuzz_dir.h"

#include "storage/le.h"
#include "storage/snapshot.h"
#include "storage/snapshot_impl.h"
#include "storage/store.h"
#include "util/crc32c.h"
#include "util/log.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define INDEX 7
#define TERM  3

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[300], copy[300];

static void setup(void)
{
	const char *base = fuzz_dir_make("snap");

	snprintf(dir, sizeof dir, "%s/snap", base);
	snprintf(copy, sizeof copy, "%s/copy", base);
}

static void put_header(unsigned char *h)
{
	memset(h, 0, SNAP_HDR);
	memcpy(h, SNAP_MAGIC, 8);
	le32_put(h + 8, 1);
	le64_put(h + 16, TERM);
	le64_put(h + 24, INDEX);
	le32_put(h + 36, sh_crc32c(0, h, 36));
}

/* Recompute the CRC of every frame that lies within buf[SNAP_HDR..len). */
static void fix_crcs(unsigned char *buf, size_t len)
{
	uint64_t seq = 0, total = 0;

	for (size_t off = SNAP_HDR; off + SNAP_FRAME_HDR <= len; seq++) {
		uint32_t flen = le32_get(buf + off);

		if (flen > len - off - SNAP_FRAME_HDR)
			break;
		le32_put(buf + off + 4, flen ? snap_frame_crc(seq, buf + off + SNAP_FRAME_HDR, flen)
					     : snap_end_crc(seq, total));
		total += flen;
		off += SNAP_FRAME_HDR + flen;
		if (flen == 0)
			break;
	}
}

static unsigned char *lay_out(const uint8_t *data, size_t size, size_t *len)
{
	size_t hdr = data[0] & 1 ? SNAP_HDR : 0;
	unsigned char *buf = malloc(hdr + size);
	char path[400];
	int fd;

	if (buf == NULL)
		abort();
	if (hdr)
		put_header(buf);
	memcpy(buf + hdr, data + 1, size - 1);
	*len = hdr + size - 1;
	if ((data[0] & 2) && *len >= SNAP_HDR)
		fix_crcs(buf, *len);
	snap_path(path, sizeof path, dir, INDEX);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0640);
	if (fd < 0 || write(fd, buf, *len) != (ssize_t)*len)
		abort();
	close(fd);
	return buf;
}

static int load_fn(void *arg, hnsw_read_fn read, void *rctx, uint64_t index, uint64_t term,
		   struct sh_err *err)
{
	return store_load(read, rctx, index, term, arg, err);
}

static int save_fn(void *arg, hnsw_write_fn write, void *wctx, struct sh_err *err)
{
	return store_save(arg, write, wctx, err);
}

/* A store that loaded saves and loads again to the same digest. */
static void round_trip(struct store *s)
{
	struct store *again = NULL;
	struct sh_err err;

	MUST(snap_write(copy, INDEX + 1, TERM, save_fn, s, NULL, &err) == 0);
	MUST(snap_read(copy, INDEX + 1, load_fn, &again, &err) == 0);
	MUST(digest_equal(store_digest(again), store_digest(s)));
	store_free(again);
}

/* A receiver takes the loaded file chunk by chunk, as the leader sends it. */
static void receive(const unsigned char *buf, size_t len)
{
	struct snap_chunks *c;
	struct snap_recv *r;
	struct sh_err err;
	const void *chunk;
	size_t clen;
	uint64_t off, got = 0;

	MUST(snap_chunks_open(dir, INDEX, &c, &err) == 0);
	MUST(snap_recv_open(copy, INDEX, TERM, &r, &err) == 0);
	snap_recv_limit(r, 0, 0);
	while (snap_chunks_next(c, &chunk, &clen, &off, &err) == 0 && clen > 0) {
		MUST(off == got && off + clen <= len && memcmp(chunk, buf + off, clen) == 0);
		MUST(snap_recv_chunk(r, off, chunk, clen, &err) == 0);
		got += clen;
	}
	MUST(got == len && snap_recv_done(r));
	snap_chunks_close(c);
	MUST(snap_recv_finish(r, &err) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store *s = NULL;
	unsigned char *buf;
	struct sh_err err;
	size_t len;

	if (size < 1)
		return 0;
	if (dir[0] == '\0')
		setup();
	fuzz_rm_rf(dir);
	fuzz_rm_rf(copy);
	mkdir(dir, 0750);
	mkdir(copy, 0750);
	buf = lay_out(data, size, &len);
	if (snap_read(dir, INDEX, load_fn, &s, &err) == 0) {
		MUST(store_applied_index(s) == INDEX && store_applied_term(s) == TERM);
		round_trip(s);
		receive(buf, len);
	} else {
		MUST(err.code != 0 && strncmp(err.msg, "snapshot: '", 11) == 0);
	}
	store_free(s); /* the loader's, even when what follows the content fails */
	free(buf);
	return 0;
}
