/*
 * snapshot_recv: the follower's side of snap_chunks_* (snapshot.h,
 * doc/storage-format.md "Snapshots").
 *
 * Every chunk is checked in full before a byte of it is written, with the
 * rules snap_read applies to a file: the header, then frames in sequence,
 * each CRC binding the frame's sequence number, the end frame's CRC the
 * content length, nothing after it.  So a file that finishes is one that
 * snap_read accepts frame by frame, and a refused chunk leaves the
 * receiver as it was.
 *
 * Names: DIR/INDEX.recv.tmp while receiving, DIR/INDEX.recv once whole
 * (snapshot.h): never the names snap_write uses, so that a local snapshot
 * of the same index cannot clobber it, and never a .snap until the install
 * has loaded it.
 *
 * Threads: a receiver is used by one thread at a time.
 */
#include "build.h"

#include "storage/snapshot.h"

#include "storage/diskio.h"
#include "storage/le.h"
#include "storage/snapshot_impl.h"
#include "util/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

struct snap_recv {
	int fd;
	char *dir;
	char path[4200], tmp[4210];
	uint64_t index, term;
	uint64_t off;        /* bytes received: where the next chunk goes */
	uint64_t seq, total; /* frames received, their data bytes */
	bool ended;
	uint64_t max_bytes, reserve; /* snap_recv_limit */
};

/* The default reserve: SNAP_RECV_RESERVE, but at most a twentieth of the
 * file system, so that a small one can still take a snapshot. */
static uint64_t default_reserve(int fd)
{
	struct statvfs st;
	uint64_t twentieth;

	if (fstatvfs(fd, &st) != 0)
		return SNAP_RECV_RESERVE;
	twentieth = (uint64_t)st.f_blocks * st.f_frsize / 20;
	return twentieth < SNAP_RECV_RESERVE ? twentieth : SNAP_RECV_RESERVE;
}

int snap_recv_open(const char *dir, uint64_t index, uint64_t term, struct snap_recv **out,
		   struct sh_err *err)
{
	struct snap_recv *r = sh_calloc(1, sizeof *r);
	int rv = 0;

	if (r == NULL || (r->dir = sh_strdup(dir)) == NULL) {
		sh_free(r);
		return sh_err_set(err, SH_ENOMEM, "snapshot: out of memory");
	}
	r->index = index;
	r->term = term;
	snap_recv_path(r->path, sizeof r->path, dir, index);
	snprintf(r->tmp, sizeof r->tmp, "%s.tmp", r->path);
	if ((rv = diskio_mkdir(dir, err)) != 0)
		rv = sh_err_wrap(err, rv, "snapshot");
	else if ((r->fd = open(r->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640)) < 0)
		rv = sh_err_sys(err, errno, "snapshot: cannot create '%s'", r->tmp);
	else
		r->reserve = default_reserve(r->fd);
	if (rv != 0) {
		sh_free(r->dir);
		sh_free(r);
		return rv;
	}
	*out = r;
	return 0;
}

/* ------------------------------------------------------------ checking */

static int check_header(const struct snap_recv *r, const unsigned char *h, size_t len,
			struct sh_err *err)
{
	const char *why;

	if (len != SNAP_HDR)
		return sh_err_set(err, SH_EINVAL, "the header chunk is %zu bytes, not %d", len,
				  SNAP_HDR);
	if ((why = snap_header_check(h)) != NULL)
		return sh_err_set(err, SH_ECORRUPT, "bad header: %s", why);
	if (snap_header_index(h) != r->index || snap_header_term(h) != r->term)
		return sh_err_set(err, SH_EINVAL,
				  "the header is for index %" PRIu64 " term %" PRIu64
				  ", expected index %" PRIu64 " term %" PRIu64,
				  snap_header_index(h), snap_header_term(h), r->index, r->term);
	return 0;
}

/* One whole frame, the next in sequence. */
static int check_frame(const struct snap_recv *r, const unsigned char *f, size_t len,
		       struct sh_err *err)
{
	uint32_t flen, crc, want;

	if (len < SNAP_FRAME_HDR)
		return sh_err_set(err, SH_EINVAL,
				  "frame %" PRIu64 " at offset %" PRIu64
				  ": a chunk of %zu bytes is shorter than a frame header",
				  r->seq, r->off, len);
	flen = le32_get(f);
	crc = le32_get(f + 4);
	if (flen != len - SNAP_FRAME_HDR)
		return sh_err_set(err, SH_EINVAL,
				  "frame %" PRIu64 " at offset %" PRIu64 ": length %" PRIu32
				  ", but the chunk holds %zu bytes after the frame header",
				  r->seq, r->off, flen, len - SNAP_FRAME_HDR);
	want = flen > 0 ? snap_frame_crc(r->seq, f + SNAP_FRAME_HDR, flen)
			: snap_end_crc(r->seq, r->total);
	if (crc != want)
		return sh_err_set(err, SH_ECORRUPT,
				  "frame %" PRIu64 " at offset %" PRIu64
				  ": checksum mismatch (stored %08" PRIx32 ", computed %08" PRIx32
				  ")",
				  r->seq, r->off, crc, want);
	return 0;
}

static int check_chunk(const struct snap_recv *r, uint64_t offset, const void *data, size_t len,
		       struct sh_err *err)
{
	if (offset != r->off)
		return sh_err_set(err, SH_EINVAL,
				  "chunk at offset %" PRIu64 ", expected offset %" PRIu64, offset,
				  r->off);
	if (r->ended)
		return sh_err_set(err, SH_EINVAL,
				  "a chunk at offset %" PRIu64 ", after the end frame", offset);
	if (len == 0 || len > SNAP_CHUNK_MAX)
		return sh_err_set(err, SH_EINVAL,
				  "a chunk of %zu bytes at offset %" PRIu64 " (1 to %u allowed)",
				  len, offset, (unsigned)SNAP_CHUNK_MAX);
	return r->off == 0 ? check_header(r, data, len, err) : check_frame(r, data, len, err);
}

/* Would len more bytes break the bound (snap_recv_limit)? */
static int check_room(const struct snap_recv *r, size_t len, struct sh_err *err)
{
	uint64_t total = r->off + len, avail, reserve = r->reserve;
	struct statvfs st;

	if (r->max_bytes > 0 && total > r->max_bytes)
		return sh_err_set(err, SH_ETOOBIG,
				  "a snapshot of more than %" PRIu64
				  " bytes is over the limit of %" PRIu64 " bytes",
				  total - 1, r->max_bytes);
	if (reserve == 0 || fstatvfs(r->fd, &st) != 0)
		return 0;
	avail = (uint64_t)st.f_bavail * st.f_frsize;
	if (avail < len || avail - len < reserve)
		return sh_err_set(err, SH_ETOOBIG,
				  "a snapshot of more than %" PRIu64
				  " bytes would leave less than %" PRIu64
				  " bytes free on the file system (%" PRIu64 " free)",
				  total - 1, reserve, avail);
	return 0;
}

void snap_recv_limit(struct snap_recv *r, uint64_t max_bytes, uint64_t reserve)
{
	r->max_bytes = max_bytes;
	r->reserve = reserve;
}

/* ------------------------------------------------------------ writing */

static int pwrite_all(int fd, const unsigned char *p, size_t len, uint64_t off)
{
	while (len > 0) {
		ssize_t k = pwrite(fd, p, len, (off_t)off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? errno : EIO;
		p += k;
		off += (uint64_t)k;
		len -= (size_t)k;
	}
	return 0;
}

int snap_recv_chunk(struct snap_recv *r, uint64_t offset, const void *data, size_t len,
		    struct sh_err *err)
{
	int rv = check_chunk(r, offset, data, len, err), e;

	if (rv == 0)
		rv = check_room(r, len, err);
	if (rv != 0)
		return sh_err_wrap(err, rv, "snapshot: receiving '%s'", r->path);
	if ((e = pwrite_all(r->fd, data, len, r->off)) != 0)
		return sh_err_sys(err, e, "snapshot: cannot write '%s' at offset %" PRIu64, r->tmp,
				  r->off);
	if (r->off > 0) {
		r->ended = len == SNAP_FRAME_HDR;
		r->total += len - SNAP_FRAME_HDR;
		r->seq++;
	}
	r->off += len;
	return 0;
}

uint64_t snap_recv_offset(const struct snap_recv *r)
{
	return r->off;
}

bool snap_recv_done(const struct snap_recv *r)
{
	return r->ended;
}

static void recv_free(struct snap_recv *r)
{
	if (r->fd >= 0)
		close(r->fd);
	sh_free(r->dir);
	sh_free(r);
}

void snap_recv_abort(struct snap_recv *r)
{
	if (r == NULL)
		return;
	unlink(r->tmp);
	recv_free(r);
}

/* The ftruncate drops what a failed write, then retried with a shorter
 * chunk, may have left past the end. */
int snap_recv_finish(struct snap_recv *r, struct sh_err *err)
{
	int rv = 0;

	if (!r->ended)
		rv = sh_err_set(err, SH_EINVAL,
				"snapshot: receiving '%s': finished before the end frame (%" PRIu64
				" bytes received)",
				r->path, r->off);
	else if (ftruncate(r->fd, (off_t)r->off) != 0 || diskio_fdatasync(r->fd) != 0)
		rv = sh_err_sys(err, errno, "snapshot: cannot write '%s'", r->tmp);
	else if (rename(r->tmp, r->path) != 0)
		rv = sh_err_sys(err, errno, "snapshot: cannot rename '%s'", r->tmp);
	if (rv != 0)
		snap_recv_abort(r);
	else
		recv_free(r);
	return rv;
}
