/*
 * wal_open: opening the log — every segment's header and every record
 * verified, a torn tail cut, corruption before it refused
 * (doc/storage-format.md, "Opening the log: verification and the torn-tail
 * rule").  Runs once, before anyone else uses the wal.
 *
 * Each segment is mapped read-only while it is checked; the offsets of its
 * records are kept for reading later.
 */
#include "build.h"

#include "storage/wal_impl.h"

#include "storage/diskio.h"
#include "storage/hexname.h"
#include "storage/le.h"
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
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

/* What the scan of one segment knows. */
struct scan {
	struct wal *w;
	struct wal_seg *s;
	const unsigned char *map;
	uint64_t size;     /* file size */
	uint64_t expect;   /* index the next record must have */
	uint64_t term;     /* term of the last valid record */
	uint64_t bad_off;  /* where the first invalid record starts */
	char why[160];     /* why it is invalid */
	bool order_broken; /* a valid record out of order: never a tail */
	uint64_t cut;      /* bytes of a torn tail cut, zeros after it not counted */
};

/* ------------------------------------------------------------ one record */

/* Is the record at off valid on its own (bounds, CRC, reserved, type)?
 * Fills r; on failure writes the reason into why when why != NULL. */
static bool rec_valid(const unsigned char *map, uint64_t size, uint64_t off, struct wal_rec *r,
		      char *why, size_t whysz)
{
	const unsigned char *p = map + off;
	uint32_t crc, want;

	if (size - off < WAL_REC_HDR) {
		if (why)
			snprintf(why, whysz, "record header cut short");
		return false;
	}
	wal__rec_header(p, r);
	if (r->len > WAL_MAX_BODY) {
		if (why)
			snprintf(why, whysz, "body length %" PRIu32 " over the limit", r->len);
		return false;
	}
	if (size - off - WAL_REC_HDR < r->len) {
		if (why)
			snprintf(why, whysz, "record body cut short");
		return false;
	}
	crc = le32_get(p + 4);
	if ((want = wal__rec_crc(p, r->len)) != crc) {
		if (why)
			snprintf(why, whysz,
				 "checksum mismatch (stored %08" PRIx32 ", computed %08" PRIx32 ")",
				 crc, want);
		return false;
	}
	for (int i = 33; i < WAL_REC_HDR; i++)
		if (p[i] != 0) {
			if (why)
				snprintf(why, whysz, "reserved bytes not zero");
			return false;
		}
	if (r->type < 1 || r->type > WAL_TYPE_MAX) {
		if (why)
			snprintf(why, whysz, "unknown record type %u", r->type);
		return false;
	}
	return true;
}

/* Valid and in order after the previous record?  Order breaks are flagged:
 * they are corruption wherever they are. */
static bool rec_ok(struct scan *sc, uint64_t off, struct wal_rec *r)
{
	if (!rec_valid(sc->map, sc->size, off, r, sc->why, sizeof sc->why))
		return false;
	if (r->index != sc->expect)
		snprintf(sc->why, sizeof sc->why, "index %" PRIu64 " does not follow %" PRIu64,
			 r->index, sc->expect - 1);
	else if (r->term < sc->term)
		snprintf(sc->why, sizeof sc->why,
			 "term %" PRIu64 " is lower than the previous term %" PRIu64, r->term,
			 sc->term);
	else
		return true;
	sc->order_broken = true;
	return false;
}

/* ------------------------------------------------------------ the tail rule */

/* After an invalid record at sc->bad_off in the last segment: is any later
 * valid record proof that the bad one had been fsynced (its durable field
 * at or above the bad record's index)?  Scans every byte position. */
static int tail_or_corrupt(struct scan *sc, struct sh_err *err)
{
	uint64_t bad_index = sc->expect, limit = sc->size - sc->bad_off;
	struct wal_rec r;

	for (uint64_t off = sc->bad_off + 1; off + WAL_REC_HDR <= sc->size; off++) {
		uint64_t idx = le64_get(sc->map + off + 16);

		if (idx < bad_index || idx - bad_index > limit / WAL_REC_HDR)
			continue; /* cheap filter before the CRC */
		if (!rec_valid(sc->map, sc->size, off, &r, NULL, 0) || r.durable < bad_index)
			continue;
		return sh_err_set(err, SH_ECORRUPT,
				  "segment '%s/%s': corrupt record at offset %" PRIu64
				  ": %s; a valid record (index %" PRIu64 ") written after it at "
				  "offset %" PRIu64 " says index %" PRIu64 " was durable",
				  sc->w->dir, sc->s->name, sc->bad_off, sc->why, r.index, off,
				  r.durable);
	}
	return 0;
}

/* Cut the file at sc->bad_off; the bytes counted and named are those up
 * to the last that is not zero (zeros written ahead are no tail). */
static int cut_tail(struct scan *sc, struct sh_err *err)
{
	uint64_t end = sc->size, cut;

	while (end > sc->bad_off && sc->map[end - 1] == 0)
		end--;
	cut = end - sc->bad_off;
	sc->cut = cut;

	if (ftruncate(sc->s->fd, (off_t)sc->bad_off) != 0 || diskio_fdatasync(sc->s->fd) != 0)
		return sh_err_sys(err, errno, "segment '%s/%s': cannot cut the torn tail",
				  sc->w->dir, sc->s->name);
	LOG_WARN("wal",
		 "segment '%s/%s': cut a torn tail of %" PRIu64 " bytes at offset %" PRIu64
		 " (%s); the log now ends at index %" PRIu64,
		 sc->w->dir, sc->s->name, cut, sc->bad_off, sc->why, sc->expect - 1);
	return 0;
}

/* ------------------------------------------------------------ one segment */

static int check_header(struct scan *sc, struct sh_err *err)
{
	const unsigned char *h = sc->map;
	const char *why = NULL;

	if (sc->size < WAL_SEG_HDR)
		why = "file shorter than the header";
	else if (memcmp(h, WAL_SEG_MAGIC, 8) != 0)
		why = "not a log segment (bad magic)";
	else if (le32_get(h + 28) != sh_crc32c(0, h, 28))
		why = "header checksum mismatch";
	else if (le32_get(h + 8) != 1)
		why = "unknown format version";
	else if (le64_get(h + 16) != sc->s->first)
		why = "first index differs from the file name";
	else if (sc->expect != 0 && sc->s->first != sc->expect)
		why = "first index does not follow the previous segment";
	if (why != NULL)
		return sh_err_set(err, SH_ECORRUPT, "segment '%s/%s': bad header: %s", sc->w->dir,
				  sc->s->name, why);
	sc->expect = sc->s->first;
	return 0;
}

static bool all_zero(const unsigned char *p, uint64_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* Verify the records of sc->s; last says whether it is the last segment.
 * The last may end in zeros written ahead: where a record should start,
 * zeros to the end of the file are the end of the log, not a tail. */
static int scan_records(struct scan *sc, bool last, struct sh_err *err)
{
	uint64_t off = WAL_SEG_HDR;
	struct wal_rec r;
	int rv;

	while (off < sc->size) {
		if (!rec_ok(sc, off, &r))
			break;
		if (wal__seg_push(sc->s, off) != 0)
			return sh_err_set(err, SH_ENOMEM, "out of memory");
		sc->expect++;
		sc->term = r.term;
		off += WAL_REC_HDR + r.len;
	}
	sc->s->size = off;
	sc->s->alloc = off;
	if (off == sc->size)
		return 0;
	if (last && !sc->order_broken && all_zero(sc->map + off, sc->size - off)) {
		sc->s->alloc = sc->size; /* written ahead (wal.c, write_ahead) */
		return 0;
	}
	sc->bad_off = off;
	if (!last || sc->order_broken)
		return sh_err_set(err, SH_ECORRUPT,
				  "segment '%s/%s': corrupt record at offset %" PRIu64 ": %s",
				  sc->w->dir, sc->s->name, off, sc->why);
	if ((rv = tail_or_corrupt(sc, err)) != 0)
		return rv;
	return cut_tail(sc, err);
}

static int scan_segment(struct scan *sc, bool last, uint64_t *cut, struct sh_err *err)
{
	struct stat st;
	int rv;

	if (fstat(sc->s->fd, &st) != 0)
		return sh_err_sys(err, errno, "cannot stat '%s/%s'", sc->w->dir, sc->s->name);
	sc->size = (uint64_t)st.st_size;
	sc->map = sc->size == 0 ? NULL : mmap(NULL, sc->size, PROT_READ, MAP_PRIVATE, sc->s->fd, 0);
	if (sc->map == MAP_FAILED)
		return sh_err_sys(err, errno, "cannot map '%s/%s'", sc->w->dir, sc->s->name);
	sc->order_broken = false;
	sc->cut = 0;
	rv = check_header(sc, err);
	if (rv == 0)
		rv = scan_records(sc, last, err);
	*cut += sc->cut;
	if (sc->map != NULL)
		munmap((void *)(uintptr_t)sc->map, sc->size);
	return rv;
}

/* ------------------------------------------------------------ the directory */

static int cmp_seg(const void *a, const void *b)
{
	uint64_t x = ((const struct wal_seg *)a)->first, y = ((const struct wal_seg *)b)->first;

	return x < y ? -1 : x > y;
}

static int add_found(struct wal *w, const char *name, uint64_t first, struct sh_err *err)
{
	struct wal_seg s = {.first = first};

	if (w->n_segs == w->cap_segs) {
		size_t cap = w->cap_segs ? w->cap_segs * 2 : 8;
		struct wal_seg *g = sh_reallocarray(w->segs, cap, sizeof *g);

		if (g == NULL)
			return sh_err_set(err, SH_ENOMEM, "out of memory");
		w->segs = g;
		w->cap_segs = cap;
	}
	snprintf(s.name, sizeof s.name, "%s", name);
	s.fd = openat(w->dir_fd, name, O_RDWR | O_CLOEXEC);
	if (s.fd < 0)
		return sh_err_sys(err, errno, "cannot open '%s/%s'", w->dir, name);
	w->segs[w->n_segs++] = s;
	return 0;
}

/* Collect the segments (sorted) and delete leftover *.tmp files. */
static int list_dir(struct wal *w, struct wal_open_info *info, struct sh_err *err)
{
	DIR *d = fdopendir(dup(w->dir_fd));
	struct dirent *e;
	int rv = 0;

	if (d == NULL)
		return sh_err_sys(err, errno, "cannot list '%s'", w->dir);
	while (rv == 0 && (e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		uint64_t first;

		if (len > 4 && strcmp(e->d_name + len - 4, ".tmp") == 0) {
			LOG_INFO("wal",
				 "deleting '%s/%s', left by an interrupted start of a segment",
				 w->dir, e->d_name);
			if (unlinkat(w->dir_fd, e->d_name, 0) != 0)
				rv = sh_err_sys(err, errno, "cannot delete '%s/%s'", w->dir,
						e->d_name);
			info->tmp_removed++;
		} else if (hexname_parse(e->d_name, ".seg", &first)) {
			rv = add_found(w, e->d_name, first, err);
		} else if (e->d_name[0] != '.') {
			LOG_WARN("wal", "ignoring '%s/%s': not a log segment", w->dir, e->d_name);
		}
	}
	closedir(d);
	if (w->n_segs > 1)
		qsort(w->segs, w->n_segs, sizeof *w->segs, cmp_seg);
	return rv;
}

static int verify(struct wal *w, struct wal_open_info *info, struct sh_err *err)
{
	struct scan sc = {.w = w};
	int rv = 0;

	for (size_t i = 0; rv == 0 && i < w->n_segs; i++) {
		sc.s = &w->segs[i];
		rv = scan_segment(&sc, i + 1 == w->n_segs, &info->cut_bytes, err);
		w->total += sc.s->size;
	}
	w->last_term = sc.term;
	return rv;
}

static int open_dir(struct wal *w, const char *dir, struct sh_err *err)
{
	int rv = diskio_mkdir(dir, err);

	if (rv != 0)
		return rv;
	w->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->dir_fd < 0)
		return sh_err_sys(err, errno, "cannot open directory '%s'", dir);
	return 0;
}

/* After a failed flush Linux marks the failed pages clean: this run reads
 * them back from the page cache, a flush does not write them, and a power
 * loss loses records this run took for durable (and may have told a leader
 * it holds).  Only the last segment can hold such pages: a segment is
 * flushed before the next one starts, and a failed flush stops every write
 * until a restart.  Writing its bytes again makes them dirty, so that the
 * flush that follows puts them on the disk.  Its length too: a cut
 * (wal_truncate) whose flush failed may have left the disk's file longer
 * than the one this run sees, the records cut still on it, and a later
 * segment would then follow a segment that overlaps it, or those records
 * come back after a shorter one written over them (simfs models this;
 * ext4 would abort its journal).  The caller flushes it. */
static int rewrite_last(struct wal *w, struct sh_err *err)
{
	struct wal_seg *s = &w->segs[w->n_segs - 1];
	size_t chunk = 1 << 20;
	unsigned char *buf = sh_malloc(chunk);
	int rv = 0;

	if (buf == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	for (uint64_t off = 0; off < s->size && rv == 0; off += chunk) {
		size_t n = s->size - off < chunk ? (size_t)(s->size - off) : chunk;

		errno = 0;
		if (pread(s->fd, buf, n, (off_t)off) != (ssize_t)n ||
		    pwrite(s->fd, buf, n, (off_t)off) != (ssize_t)n)
			rv = sh_err_sys(err, errno ? errno : EIO,
					"segment '%s/%s': cannot write it again at offset %" PRIu64,
					w->dir, s->name, off);
	}
	sh_free(buf);
	if (rv == 0 && ftruncate(s->fd, (off_t)s->alloc) != 0)
		rv = sh_err_sys(err, errno, "segment '%s/%s': cannot set its length again", w->dir,
				s->name);
	return rv;
}

/* No zeros written ahead where they save nothing (doc/storage-format.md,
 * "Space written ahead"): tmpfs and ramfs flush nothing, and the
 * copy-on-write file systems write an overwrite to new blocks as well. */
static void ahead_or_not(struct wal *w)
{
	static const struct {
		long magic;
		const char *name;
	} no_gain[] = {{0x01021994, "tmpfs"},
		       {(long)0x858458f6, "ramfs"},
		       {(long)0x9123683e, "btrfs"},
		       {0x2fc12fc1, "zfs"}};
	struct statfs fs;

	if (w->o.ahead_bytes == 0 || fstatfs(w->dir_fd, &fs) != 0)
		return;
	for (size_t i = 0; i < sizeof no_gain / sizeof no_gain[0]; i++)
		if ((long)fs.f_type == no_gain[i].magic) {
			LOG_INFO("wal", "'%s' is on %s: no zeros written ahead of the log", w->dir,
				 no_gain[i].name);
			w->o.ahead_bytes = 0;
		}
}

int wal_open(const char *dir, const struct wal_opts *o, struct wal **out,
	     struct wal_open_info *info, struct sh_err *err)
{
	struct wal *w = sh_calloc(1, sizeof *w);
	struct wal_open_info dummy;
	int rv;

	if (info == NULL)
		info = &dummy;
	memset(info, 0, sizeof *info);
	if (w == NULL || (w->dir = sh_strdup(dir)) == NULL) {
		sh_free(w);
		return sh_err_set(err, SH_ENOMEM, "wal: out of memory");
	}
	w->o = *o;
	if (w->o.segment_bytes < WAL_MIN_SEG)
		w->o.segment_bytes = WAL_MIN_SEG;
	w->dir_fd = -1;
	pthread_mutex_init(&w->lock, NULL);
	if ((rv = open_dir(w, dir, err)) != 0 || (rv = list_dir(w, info, err)) != 0 ||
	    (rv = verify(w, info, err)) != 0)
		goto fail;
	ahead_or_not(w);
	if (w->n_segs == 0 && (rv = wal__seg_create(w, 1, err)) != 0)
		goto fail;
	atomic_store(&w->synced, 0);
	/* What an earlier run left unflushed, or failed to flush; and the
	 * directory's entries as listed: an earlier run may have died between
	 * a segment's rename and its directory's fsync, and records appended
	 * to that segment would vanish with it at a power loss. */
	if ((rv = rewrite_last(w, err)) != 0 || (rv = wal__flush_active(w, err)) != 0 ||
	    (rv = wal__fsync_dir(w, err)) != 0)
		goto fail;
	info->segments = w->n_segs;
	*out = w;
	return 0;
fail:
	wal_close(w);
	return sh_err_wrap(err, rv, "wal");
}
