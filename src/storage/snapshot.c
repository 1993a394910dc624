/*
 * snapshot: see snapshot.h and doc/storage-format.md ("Snapshots").
 *
 * Frames: u32 length, u32 CRC-32C of (the frame's sequence number as 8
 * bytes, then its data), the data.  A zero-length frame ends the file; its
 * CRC covers the sequence number and the total content length.  Binding
 * the sequence number into each CRC makes a dropped, repeated or swapped
 * frame fail like a flipped bit.  The checks a receiver repeats
 * (snapshot_recv.c) are shared through snapshot_impl.h.
 */
#include "build.h"

#include "storage/snapshot.h"

#include "storage/diskio.h"
#include "storage/hexname.h"
#include "storage/le.h"
#include "storage/snapshot_impl.h"
#include "util/alloc.h"
#include "util/crc32c.h"
#include "util/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void snap_path(char *buf, size_t size, const char *dir, uint64_t index)
{
	snprintf(buf, size, "%s/%016" PRIx64 ".snap", dir, index);
}

void snap_recv_path(char *buf, size_t size, const char *dir, uint64_t index)
{
	snprintf(buf, size, "%s/%016" PRIx64 ".recv", dir, index);
}

uint32_t snap_frame_crc(uint64_t seq, const void *data, size_t len)
{
	unsigned char s[8];

	le64_put(s, seq);
	return sh_crc32c(sh_crc32c(0, s, 8), data, len);
}

uint32_t snap_end_crc(uint64_t seq, uint64_t total)
{
	unsigned char t[8];

	le64_put(t, total);
	return snap_frame_crc(seq, t, 8);
}

const char *snap_header_check(const unsigned char *h)
{
	if (memcmp(h, SNAP_MAGIC, 8) != 0)
		return "not a snapshot (bad magic)";
	if (le32_get(h + 36) != sh_crc32c(0, h, 36))
		return "header checksum mismatch";
	if (le32_get(h + 8) < SNAP_VERSION_MIN || le32_get(h + 8) > SNAP_VERSION)
		return "unknown format version (versions 2 to 4 are read; 1, before the term "
		       "history, is not)";
	return NULL;
}

uint64_t snap_header_term(const unsigned char *h)
{
	return le64_get(h + 16);
}

uint64_t snap_header_index(const unsigned char *h)
{
	return le64_get(h + 24);
}

/* ------------------------------------------------------------ writing */

struct sw {
	int fd;
	uint64_t seq, total;
	size_t n;
	int errnum;
	unsigned char *buf; /* frame header + up to SNAP_FRAME_MAX bytes */
};

static int write_all(int fd, const void *p, size_t len)
{
	const unsigned char *b = p;

	while (len > 0) {
		ssize_t k = write(fd, b, len);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? errno : EIO;
		b += k;
		len -= (size_t)k;
	}
	return 0;
}

static void sw_flush(struct sw *w)
{
	if (w->errnum != 0 || w->n == 0)
		return;
	le32_put(w->buf, (uint32_t)w->n);
	le32_put(w->buf + 4, snap_frame_crc(w->seq, w->buf + SNAP_FRAME_HDR, w->n));
	w->errnum = write_all(w->fd, w->buf, SNAP_FRAME_HDR + w->n);
	w->seq++;
	w->n = 0;
}

static int sw_write(void *ctx, const void *p, size_t len)
{
	struct sw *w = ctx;
	const unsigned char *b = p;

	while (len > 0 && w->errnum == 0) {
		size_t k = SNAP_FRAME_MAX - w->n < len ? SNAP_FRAME_MAX - w->n : len;

		memcpy(w->buf + SNAP_FRAME_HDR + w->n, b, k);
		w->n += k;
		w->total += k;
		b += k;
		len -= k;
		if (w->n == SNAP_FRAME_MAX)
			sw_flush(w);
	}
	return w->errnum ? sh_err_from_errno(w->errnum) : 0;
}

static void sw_header(struct sw *w, uint64_t index, uint64_t term)
{
	unsigned char h[SNAP_HDR] = {0};

	memcpy(h, SNAP_MAGIC, 8);
	le32_put(h + 8, SNAP_VERSION);
	le64_put(h + 16, term);
	le64_put(h + 24, index);
	le32_put(h + 36, sh_crc32c(0, h, 36));
	w->errnum = write_all(w->fd, h, sizeof h);
}

static void sw_end(struct sw *w)
{
	unsigned char e[SNAP_FRAME_HDR];

	sw_flush(w);
	le32_put(e, 0);
	le32_put(e + 4, snap_end_crc(w->seq, w->total));
	if (w->errnum == 0)
		w->errnum = write_all(w->fd, e, sizeof e);
	if (w->errnum == 0 && diskio_fdatasync(w->fd) != 0)
		w->errnum = errno;
}

/* "DIR/%016x.snap" into path and the name it is written as into tmp. */
static void tmp_path(char *path, size_t size, char *tmp, size_t tsize, const char *dir,
		     uint64_t index)
{
	snap_path(path, size, dir, index);
	snprintf(tmp, tsize, "%s.tmp", path);
}

int snap_write(const char *dir, uint64_t index, uint64_t term, snap_save_fn fn, void *arg,
	       uint64_t *bytes, struct sh_err *err)
{
	char path[4200], tmp[4210];
	struct sw w = {.fd = -1};
	struct stat st;
	int rv = 0;

	tmp_path(path, sizeof path, tmp, sizeof tmp, dir, index);
	if ((w.buf = sh_malloc(SNAP_FRAME_HDR + SNAP_FRAME_MAX)) == NULL)
		return sh_err_set(err, SH_ENOMEM, "snapshot: out of memory");
	w.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (w.fd < 0) {
		rv = sh_err_sys(err, errno, "snapshot: cannot create '%s'", tmp);
		goto out;
	}
	sw_header(&w, index, term);
	if (w.errnum == 0 && (rv = fn(arg, sw_write, &w, err)) != 0 && w.errnum == 0)
		goto out; /* the content failed, not the file */
	sw_end(&w);
	if (w.errnum != 0) {
		rv = sh_err_sys(err, w.errnum, "snapshot: cannot write '%s'", tmp);
		goto out;
	}
	if (fstat(w.fd, &st) == 0 && bytes != NULL)
		*bytes = (uint64_t)st.st_size;
	if (rename(tmp, path) != 0)
		rv = sh_err_sys(err, errno, "snapshot: cannot rename '%s'", tmp);
	else
		rv = diskio_fsync_dir(dir, err);
out:
	if (w.fd >= 0)
		close(w.fd);
	if (rv != 0)
		unlink(tmp);
	sh_free(w.buf);
	return rv;
}

/* ------------------------------------------------------------ frames, read back */

struct fr {
	int fd;
	const char *path;
	uint64_t off; /* file offset of the next frame */
	uint64_t seq, total;
	bool ended;
	uint32_t crc;       /* the current frame's */
	unsigned char *buf; /* the current frame's data */
	size_t len;
	uint64_t data_off; /* file offset of buf[0] */
	struct sh_err err; /* what went wrong with the file, if anything */
};

static int read_exact(int fd, void *p, size_t len, uint64_t off)
{
	ssize_t k = pread(fd, p, len, (off_t)off);

	return k == (ssize_t)len ? 0 : k < 0 ? -errno : 1;
}

/* The next frame into f->buf; sets f->ended at the end frame. */
static int fr_next(struct fr *f)
{
	unsigned char h[SNAP_FRAME_HDR];
	uint32_t len, crc, want;
	int k;

	if ((k = read_exact(f->fd, h, sizeof h, f->off)) != 0)
		return k < 0 ? sh_err_sys(&f->err, -k, "cannot read at offset %" PRIu64, f->off)
			     : sh_err_set(&f->err, SH_ECORRUPT, "cut short at offset %" PRIu64,
					  f->off);
	len = le32_get(h);
	crc = le32_get(h + 4);
	if (len > SNAP_FRAME_MAX)
		return sh_err_set(&f->err, SH_ECORRUPT,
				  "frame %" PRIu64 " at offset %" PRIu64 ": length %" PRIu32
				  " over the limit",
				  f->seq, f->off, len);
	if (len > 0 && (k = read_exact(f->fd, f->buf, len, f->off + SNAP_FRAME_HDR)) != 0)
		return k < 0 ? sh_err_sys(&f->err, -k, "cannot read at offset %" PRIu64, f->off)
			     : sh_err_set(&f->err, SH_ECORRUPT,
					  "cut short in frame %" PRIu64 " at offset %" PRIu64,
					  f->seq, f->off);
	want = len > 0 ? snap_frame_crc(f->seq, f->buf, len) : snap_end_crc(f->seq, f->total);
	if (crc != want)
		return sh_err_set(&f->err, SH_ECORRUPT,
				  "frame %" PRIu64 " at offset %" PRIu64
				  ": checksum mismatch (stored %08" PRIx32 ", computed %08" PRIx32
				  ")",
				  f->seq, f->off, crc, want);
	f->ended = len == 0;
	f->crc = crc;
	f->len = len;
	f->data_off = f->off + SNAP_FRAME_HDR;
	f->off += SNAP_FRAME_HDR + len;
	f->total += len;
	f->seq++;
	return 0;
}

/* Check the 40-byte header; *term from it. */
static int check_header(struct fr *f, uint64_t index, uint64_t *term)
{
	unsigned char h[SNAP_HDR];
	int k = read_exact(f->fd, h, sizeof h, 0);
	const char *why = NULL;

	if (k < 0)
		return sh_err_sys(&f->err, -k, "cannot read");
	if (k > 0)
		why = "file shorter than the header";
	else if ((why = snap_header_check(h)) == NULL && snap_header_index(h) != index)
		why = "index differs from the file name";
	if (why != NULL)
		return sh_err_set(&f->err, SH_ECORRUPT, "bad header: %s", why);
	*term = snap_header_term(h);
	f->off = SNAP_HDR;
	return 0;
}

static int fr_open(struct fr *f, const char *path)
{
	memset(f, 0, sizeof *f);
	f->fd = -1;
	f->path = path;
	if ((f->buf = sh_malloc(SNAP_FRAME_MAX)) == NULL)
		return sh_err_set(&f->err, SH_ENOMEM, "out of memory");
	if ((f->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return sh_err_sys(&f->err, errno, "cannot open");
	return 0;
}

static void fr_close(struct fr *f)
{
	if (f->fd >= 0)
		close(f->fd);
	sh_free(f->buf);
}

/* ------------------------------------------------------------ reading content */

struct sr {
	struct fr f;
	size_t pos; /* consumed of f.buf */
};

static int sr_read(void *ctx, void *p, size_t len)
{
	struct sr *r = ctx;
	unsigned char *b = p;
	int rv;

	while (len > 0) {
		size_t k;

		if (r->pos == r->f.len) {
			if (r->f.ended)
				return sh_err_set(&r->f.err, SH_ECORRUPT,
						  "the content ends early, at offset %" PRIu64,
						  r->f.data_off);
			if ((rv = fr_next(&r->f)) != 0)
				return rv;
			r->pos = 0;
			continue;
		}
		k = r->f.len - r->pos < len ? r->f.len - r->pos : len;
		memcpy(b, r->f.buf + r->pos, k);
		r->pos += k;
		b += k;
		len -= k;
	}
	return 0;
}

/* After the content: the end frame, then nothing. */
static int sr_finish(struct sr *r)
{
	struct stat st;
	int rv;

	if (r->pos == r->f.len && !r->f.ended) {
		if ((rv = fr_next(&r->f)) != 0)
			return rv;
		r->pos = 0;
	}
	if (r->pos < r->f.len || !r->f.ended)
		return sh_err_set(&r->f.err, SH_ECORRUPT,
				  "data after the end of the content at offset %" PRIu64,
				  r->f.data_off + r->pos);
	if (fstat(r->f.fd, &st) != 0)
		return sh_err_sys(&r->f.err, errno, "cannot stat");
	if ((uint64_t)st.st_size != r->f.off)
		return sh_err_set(&r->f.err, SH_ECORRUPT,
				  "%" PRIu64 " bytes after the end frame at offset %" PRIu64,
				  (uint64_t)st.st_size - r->f.off, r->f.off);
	return 0;
}

/* snap_read of the file at path. */
static int read_file(const char *path, uint64_t index, snap_load_fn fn, void *arg,
		     struct sh_err *err)
{
	struct sr r;
	uint64_t term = 0;
	int rv;

	if ((rv = fr_open(&r.f, path)) == 0 && (rv = check_header(&r.f, index, &term)) == 0) {
		r.pos = 0;
		r.f.len = 0;
		rv = fn(arg, sr_read, &r, index, term, err);
		if (rv != 0 && r.f.err.code == 0)
			sh_err_wrap(err, rv,
				    "content at offset %" PRIu64 " (file offset %" PRIu64 ")",
				    r.f.total - r.f.len + r.pos, r.f.data_off + r.pos);
		else if (rv == 0)
			rv = sr_finish(&r);
	}
	if (rv != 0 && r.f.err.code != 0 && err != NULL)
		*err = r.f.err;
	fr_close(&r.f);
	return rv != 0 ? sh_err_wrap(err, rv, "snapshot: '%s'", path) : 0;
}

int snap_read(const char *dir, uint64_t index, snap_load_fn fn, void *arg, struct sh_err *err)
{
	char path[4200];

	snap_path(path, sizeof path, dir, index);
	return read_file(path, index, fn, arg, err);
}

int snap_read_path(const char *path, snap_load_fn fn, void *arg, uint64_t *index,
		   struct sh_err *err)
{
	unsigned char h[SNAP_HDR];
	int fd = open(path, O_RDONLY | O_CLOEXEC), k;

	*index = 0;
	if (fd < 0)
		return sh_err_sys(err, errno, "snapshot: cannot open '%s'", path);
	k = read_exact(fd, h, sizeof h, 0);
	close(fd);
	if (k < 0)
		return sh_err_sys(err, -k, "snapshot: cannot read '%s'", path);
	if (k == 0 && snap_header_check(h) == NULL)
		*index = snap_header_index(h);
	/* a bad header is reported by read_file, which checks it again */
	return read_file(path, *index, fn, arg, err);
}

int snap_read_received(const char *dir, uint64_t index, snap_load_fn fn, void *arg,
		       struct sh_err *err)
{
	char path[4200];

	snap_recv_path(path, sizeof path, dir, index);
	return read_file(path, index, fn, arg, err);
}

int snap_accept_received(const char *dir, uint64_t index, struct sh_err *err)
{
	char from[4200], to[4200];

	snap_recv_path(from, sizeof from, dir, index);
	snap_path(to, sizeof to, dir, index);
	if (rename(from, to) != 0)
		return sh_err_sys(err, errno, "snapshot: cannot rename '%s'", from);
	return diskio_fsync_dir(dir, err);
}

void snap_drop_tmp(const char *dir, uint64_t index)
{
	char path[4200], tmp[4210];

	tmp_path(path, sizeof path, tmp, sizeof tmp, dir, index);
	if (unlink(tmp) != 0 && errno != ENOENT)
		LOG_WARN("snapshot", "cannot delete '%s': %s", tmp, strerror(errno));
}

void snap_drop_received(const char *dir, uint64_t index)
{
	char path[4200];

	snap_recv_path(path, sizeof path, dir, index);
	if (unlink(path) != 0 && errno != ENOENT)
		LOG_WARN("snapshot", "cannot delete '%s': %s", path, strerror(errno));
}

/* ------------------------------------------------------------ the directory */

/* A name that ends in suffix. */
static bool ends_in(const char *name, const char *suffix)
{
	size_t n = strlen(name), k = strlen(suffix);

	return n > k && strcmp(name + n - k, suffix) == 0;
}

/* Visit dir: track the newest snapshot; delete those older than keep
 * (when keep != 0); at start (keep == 0), delete what a snapshot writer
 * or receiver left (*.tmp, *.recv). */
static int scan_dir(const char *dir, uint64_t keep, uint64_t *newest, struct sh_err *err)
{
	DIR *d;
	struct dirent *e;
	char path[4400];
	int rv = 0;

	if ((rv = diskio_mkdir(dir, err)) != 0)
		return sh_err_wrap(err, rv, "snapshot");
	if ((d = opendir(dir)) == NULL)
		return sh_err_sys(err, errno, "snapshot: cannot list '%s'", dir);
	*newest = 0;
	while ((e = readdir(d)) != NULL) {
		uint64_t idx;
		bool left =
			keep == 0 && (ends_in(e->d_name, ".tmp") || ends_in(e->d_name, ".recv"));

		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		if (left)
			LOG_INFO("snapshot", "deleting '%s', left by an interrupted %s", path,
				 ends_in(e->d_name, ".tmp") ? "snapshot" : "install");
		if (!left && !hexname_parse(e->d_name, ".snap", &idx))
			continue;
		if (!left && idx > *newest)
			*newest = idx;
		if ((left || (keep != 0 && idx < keep)) && unlink(path) != 0)
			rv = sh_err_sys(err, errno, "snapshot: cannot delete '%s'", path);
	}
	closedir(d);
	return rv;
}

int snap_latest(const char *dir, uint64_t *index, struct sh_err *err)
{
	return scan_dir(dir, 0, index, err);
}

int snap_prune(const char *dir, uint64_t index, struct sh_err *err)
{
	uint64_t newest;
	int rv = index == 0 ? 0 : scan_dir(dir, index, &newest, err);

	return rv != 0 ? rv : diskio_fsync_dir(dir, err);
}

/* ------------------------------------------------------------ chunks */

struct snap_chunks {
	struct fr f;
	char path[4200];
	bool header_sent;
	uint64_t term;
	unsigned char hdr[SNAP_HDR];
	unsigned char out[SNAP_FRAME_HDR + SNAP_FRAME_MAX];
};

int snap_chunks_open(const char *dir, uint64_t index, struct snap_chunks **out, struct sh_err *err)
{
	struct snap_chunks *c = sh_calloc(1, sizeof *c);
	int rv;

	if (c == NULL)
		return sh_err_set(err, SH_ENOMEM, "snapshot: out of memory");
	snap_path(c->path, sizeof c->path, dir, index);
	if ((rv = fr_open(&c->f, c->path)) != 0 ||
	    (rv = check_header(&c->f, index, &c->term)) != 0 ||
	    (rv = read_exact(c->f.fd, c->hdr, SNAP_HDR, 0)) != 0) {
		if (err != NULL)
			*err = c->f.err;
		snap_chunks_close(c);
		return sh_err_wrap(err, rv ? rv : SH_EIO, "snapshot: '%s'", c->path);
	}
	*out = c;
	return 0;
}

uint64_t snap_chunks_term(const struct snap_chunks *c)
{
	return c->term;
}

uint64_t snap_chunks_size(const struct snap_chunks *c)
{
	struct stat st;

	return fstat(c->f.fd, &st) == 0 ? (uint64_t)st.st_size : 0;
}

int snap_chunks_next(struct snap_chunks *c, const void **data, size_t *len, uint64_t *offset,
		     struct sh_err *err)
{
	uint64_t at = c->f.off;
	int rv;

	if (!c->header_sent) {
		c->header_sent = true;
		*data = c->hdr;
		*len = SNAP_HDR;
		*offset = 0;
		return 0;
	}
	*len = 0;
	*offset = at;
	if (c->f.ended)
		return 0;
	if ((rv = fr_next(&c->f)) != 0) {
		if (err != NULL)
			*err = c->f.err;
		return sh_err_wrap(err, rv, "snapshot: '%s'", c->path);
	}
	le32_put(c->out, (uint32_t)c->f.len);
	le32_put(c->out + 4, c->f.crc);
	memcpy(c->out + SNAP_FRAME_HDR, c->f.buf, c->f.len);
	*data = c->out;
	*len = SNAP_FRAME_HDR + c->f.len;
	return 0;
}

void snap_chunks_close(struct snap_chunks *c)
{
	if (c == NULL)
		return;
	fr_close(&c->f);
	sh_free(c);
}
