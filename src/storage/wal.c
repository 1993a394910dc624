/*
 * wal: batches, appending, flushing, reading, truncating and removing
 * segments (doc/storage-format.md, "The log").  Opening and verifying is in
 * wal_open.c.  See wal.h for the threads that may call what.
 */
#include "build.h"

#include "storage/wal_impl.h"

#include "storage/diskio.h"
#include "storage/le.h"
#include "util/alloc.h"
#include "util/crc32c.h"
#include "util/log.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

/* ------------------------------------------------------------ batches */

struct wal_buf *wal_buf_new(size_t cap)
{
	struct wal_buf *b = sh_calloc(1, sizeof *b);

	if (b == NULL)
		return NULL;
	b->cap = cap < 256 ? 256 : cap;
	b->data = sh_malloc(b->cap);
	if (b->data == NULL) {
		sh_free(b);
		return NULL;
	}
	atomic_init(&b->refs, 1);
	return b;
}

struct wal_buf *wal_buf_ref(struct wal_buf *b)
{
	atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
	return b;
}

void wal_buf_unref(struct wal_buf *b)
{
	if (b == NULL || atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
		return;
	sh_free(b->data);
	sh_free(b);
}

unsigned char *wal_buf_add(struct wal_buf *b, uint64_t term, uint64_t index, uint8_t type,
			   size_t body_len)
{
	size_t need = b->len + WAL_REC_HDR + body_len;
	unsigned char *p;

	assert(b->n == 0 || index == b->last + 1);
	if (body_len > WAL_MAX_BODY)
		return NULL;
	wal_buf_seal(b); /* the previous record's body is complete now */
	if (need > b->cap) {
		size_t cap = b->cap * 2 > need ? b->cap * 2 : need;
		unsigned char *d = sh_realloc(b->data, cap);

		if (d == NULL)
			return NULL;
		b->data = d;
		b->cap = cap;
	}
	p = b->data + b->len;
	memset(p, 0, WAL_REC_HDR);
	le32_put(p, (uint32_t)body_len);
	le64_put(p + 8, term);
	le64_put(p + 16, index);
	p[32] = type;
	b->len = need;
	if (b->n++ == 0)
		b->first = index;
	b->last = index;
	return p + WAL_REC_HDR;
}

void wal__rec_header(const unsigned char *p, struct wal_rec *r)
{
	r->len = le32_get(p);
	r->term = le64_get(p + 8);
	r->index = le64_get(p + 16);
	r->durable = le64_get(p + 24);
	r->type = p[32];
	r->body = p + WAL_REC_HDR;
}

bool wal_buf_next(const struct wal_buf *b, size_t *pos, struct wal_rec *r)
{
	if (*pos + WAL_REC_HDR > b->len)
		return false;
	wal__rec_header(b->data + *pos, r);
	assert(*pos + WAL_REC_HDR + r->len <= b->len);
	*pos += WAL_REC_HDR + r->len;
	return true;
}

uint32_t wal__rec_crc(const unsigned char *p, size_t len)
{
	uint32_t c = sh_crc32c(0, p, 4); /* length */

	c = sh_crc32c(c, p + 8, 16); /* term, index */
	return sh_crc32c(c, p + 32, WAL_REC_HDR - 32 + len);
}

void wal_buf_seal(struct wal_buf *b)
{
	while (b->sealed < b->len) {
		unsigned char *p = b->data + b->sealed;
		uint32_t len = le32_get(p);

		le32_put(p + 4, wal__rec_crc(p, len));
		b->sealed += WAL_REC_HDR + len;
	}
}

/* ------------------------------------------------------------ segments */

void wal__seg_name(char *buf, size_t size, uint64_t first)
{
	snprintf(buf, size, "%016" PRIx64 ".seg", first);
}

int wal__seg_reserve(struct wal_seg *s, uint64_t more)
{
	size_t cap = s->cap ? s->cap : 1024;
	uint64_t *o;

	while (cap < s->n + more)
		cap *= 2;
	if (cap == s->cap)
		return 0;
	if ((o = sh_reallocarray(s->offs, cap, sizeof *o)) == NULL)
		return SH_ENOMEM;
	s->offs = o;
	s->cap = cap;
	return 0;
}

int wal__seg_push(struct wal_seg *s, uint64_t off)
{
	if (wal__seg_reserve(s, 1) != 0)
		return SH_ENOMEM;
	s->offs[s->n++] = off;
	return 0;
}

void wal__seg_free(struct wal_seg *s)
{
	if (s->fd >= 0)
		close(s->fd);
	sh_free(s->offs);
}

/* A flush failed: record it for good (see struct wal in wal_impl.h).
 * err holds the failure; returns its code. */
static int flush_failed(struct wal *w, struct sh_err *err)
{
	pthread_mutex_lock(&w->lock);
	if (w->broken.code == 0)
		w->broken = *err;
	pthread_mutex_unlock(&w->lock);
	LOG_ERROR("wal", "%s; the log refuses every write until the node restarts", err->msg);
	return err->code;
}

/* flush(fd) (diskio_fdatasync or diskio_fsync) of file name in the log's
 * directory ("": the directory); a failure is sticky. */
static int flush_fd(struct wal *w, int fd, int (*flush)(int), const char *name, struct sh_err *err)
{
	struct sh_err e;

	if (flush(fd) == 0)
		return 0;
	if (name[0] == '\0')
		sh_err_sys(&e, errno, "wal: cannot fsync directory '%s'", w->dir);
	else
		sh_err_sys(&e, errno, "wal: segment '%s/%s': fdatasync failed", w->dir, name);
	if (err != NULL)
		*err = e;
	return flush_failed(w, &e);
}

int wal__fsync_dir(struct wal *w, struct sh_err *err)
{
	return flush_fd(w, w->dir_fd, diskio_fsync, "", err);
}

bool wal_broken(struct wal *w, struct sh_err *err)
{
	bool broken;

	pthread_mutex_lock(&w->lock);
	broken = w->broken.code != 0;
	if (broken && err != NULL)
		sh_err_set(err, w->broken.code,
			   "wal: an earlier flush failed, restart the node to verify the log (%s)",
			   w->broken.msg);
	pthread_mutex_unlock(&w->lock);
	return broken;
}

/* The header of a new segment file, written and flushed. */
static int write_header(struct wal *w, int fd, const char *name, uint64_t first, struct sh_err *err)
{
	unsigned char h[WAL_SEG_HDR] = {0};

	memcpy(h, WAL_SEG_MAGIC, 8);
	le32_put(h + 8, 1);
	le64_put(h + 16, first);
	le32_put(h + 28, sh_crc32c(0, h, 28));
	if (pwrite(fd, h, sizeof h, 0) != (ssize_t)sizeof h)
		return sh_err_sys(err, errno ? errno : EIO, "wal: cannot write '%s/%s'", w->dir,
				  name);
	return flush_fd(w, fd, diskio_fdatasync, name, err);
}

/* Room in the table for one more segment.  Under the lock: readers and
 * wal_remove_prefix use the table meanwhile, and realloc moves it. */
static int grow_table(struct wal *w)
{
	int rv = 0;

	pthread_mutex_lock(&w->lock);
	if (w->n_segs == w->cap_segs) {
		size_t cap = w->cap_segs ? w->cap_segs * 2 : 8;
		struct wal_seg *grown = sh_reallocarray(w->segs, cap, sizeof *grown);

		if (grown == NULL) {
			rv = SH_ENOMEM;
		} else {
			w->segs = grown;
			w->cap_segs = cap;
		}
	}
	pthread_mutex_unlock(&w->lock);
	return rv;
}

int wal__seg_create(struct wal *w, uint64_t first, struct sh_err *err)
{
	struct wal_seg s = {.fd = -1, .first = first, .size = WAL_SEG_HDR, .alloc = WAL_SEG_HDR};
	char tmp[40];
	int rv;

	wal__seg_name(s.name, sizeof s.name, first);
	snprintf(tmp, sizeof tmp, "%s.tmp", s.name);
	if (grow_table(w) != 0)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	s.fd = openat(w->dir_fd, tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (s.fd < 0)
		return sh_err_sys(err, errno, "cannot create '%s/%s'", w->dir, tmp);
	if ((rv = write_header(w, s.fd, tmp, first, err)) == 0 &&
	    renameat(w->dir_fd, tmp, w->dir_fd, s.name) != 0)
		rv = sh_err_sys(err, errno, "cannot rename '%s/%s'", w->dir, tmp);
	if (rv == 0)
		rv = wal__fsync_dir(w, err);
	if (rv != 0) {
		close(s.fd);
		unlinkat(w->dir_fd, tmp, 0);
		return sh_err_wrap(err, rv, "cannot create segment '%s/%s'", w->dir, s.name);
	}
	pthread_mutex_lock(&w->lock);
	w->segs[w->n_segs++] = s;
	w->total += WAL_SEG_HDR;
	pthread_mutex_unlock(&w->lock);
	return 0;
}

/* ------------------------------------------------------------ accessors */

#define LOCKED(w, expr)                                                                            \
	({                                                                                         \
		pthread_mutex_lock(&(w)->lock);                                                    \
		__typeof__(expr) v_ = (expr);                                                      \
		pthread_mutex_unlock(&(w)->lock);                                                  \
		v_;                                                                                \
	})

/* A reset drops every segment before it creates the next one; meanwhile
 * the log is empty and starts at reset_next. */
uint64_t wal_first_index(struct wal *w)
{
	return LOCKED(w, w->n_segs ? w->segs[0].first : w->reset_next);
}

uint64_t wal_last_index(struct wal *w)
{
	return LOCKED(w, w->n_segs ? wal__active(w)->first + wal__active(w)->n - 1
				   : w->reset_next - 1);
}

uint64_t wal_last_term(struct wal *w)
{
	return LOCKED(w, w->last_term);
}

uint64_t wal_synced_index(struct wal *w)
{
	return atomic_load(&w->synced);
}

uint64_t wal_bytes(struct wal *w)
{
	return LOCKED(w, w->total);
}

size_t wal_segments(struct wal *w)
{
	return LOCKED(w, w->n_segs);
}

/* The segment holding index, or NULL (lock held). */
static struct wal_seg *find_seg(struct wal *w, uint64_t index)
{
	size_t lo = 0, hi = w->n_segs;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (w->segs[mid].first <= index)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	return index < w->segs[lo - 1].first + w->segs[lo - 1].n ? &w->segs[lo - 1] : NULL;
}

int wal_term(struct wal *w, uint64_t index, uint64_t *term, struct sh_err *err)
{
	unsigned char h[WAL_REC_HDR];
	struct wal_seg *s;
	int rv = 0;

	pthread_mutex_lock(&w->lock);
	s = find_seg(w, index);
	if (s == NULL)
		rv = sh_err_set(err, SH_ENOTFOUND, "wal: index %" PRIu64 " is not in the log",
				index);
	else if (pread(s->fd, h, sizeof h, (off_t)s->offs[index - s->first]) != (ssize_t)sizeof h)
		rv = sh_err_sys(err, errno ? errno : EIO, "wal: cannot read '%s/%s'", w->dir,
				s->name);
	else if (le64_get(h + 16) != index) /* the CRC needs the body: wal_read checks it */
		rv = sh_err_set(err, SH_ECORRUPT,
				"wal: segment '%s/%s': record %" PRIu64 " at offset %" PRIu64
				": index %" PRIu64 " where %" PRIu64 " belongs",
				w->dir, s->name, index, s->offs[index - s->first], le64_get(h + 16),
				index);
	else
		*term = le64_get(h + 8);
	pthread_mutex_unlock(&w->lock);
	return rv;
}

/* ------------------------------------------------------------ appending */

/* Check that bufs follow on from next, seal them, and fill in durable;
 * *len the total bytes, *recs the records. */
static int stage(struct wal *w, struct wal_buf *const *bufs, size_t n, uint64_t next, size_t *len,
		 uint64_t *recs, struct sh_err *err)
{
	uint64_t durable = atomic_load(&w->synced), first = next;

	*len = 0;
	for (size_t i = 0; i < n; i++) {
		if (bufs[i]->n > 0 && bufs[i]->first != next)
			return sh_err_set(err, SH_EINVAL,
					  "wal: append of index %" PRIu64
					  " does not follow %" PRIu64,
					  bufs[i]->first, next - 1);
		next += bufs[i]->n;
		*len += bufs[i]->len;
	}
	*recs = next - first;
	for (size_t i = 0; i < n; i++) {
		wal_buf_seal(bufs[i]);
		for (size_t off = 0; off < bufs[i]->len;) {
			unsigned char *p = bufs[i]->data + off;

			le64_put(p + 24, durable);
			off += WAL_REC_HDR + le32_get(p);
		}
	}
	return 0;
}

/* The active segment's fields, copied under the lock: remove_prefix may
 * move the table while the mutator works. */
struct act {
	int fd;
	uint64_t first, n, size, alloc;
	bool no_ahead;
	char name[24];
};

static void act_get(struct wal *w, struct act *a)
{
	pthread_mutex_lock(&w->lock);
	a->fd = wal__active(w)->fd;
	a->first = wal__active(w)->first;
	a->n = wal__active(w)->n;
	a->size = wal__active(w)->size;
	a->alloc = wal__active(w)->alloc;
	a->no_ahead = wal__active(w)->no_ahead;
	memcpy(a->name, wal__active(w)->name, sizeof a->name);
	pthread_mutex_unlock(&w->lock);
}

static void set_alloc(struct wal *w, uint64_t alloc, bool no_ahead)
{
	pthread_mutex_lock(&w->lock);
	wal__active(w)->alloc = alloc;
	wal__active(w)->no_ahead |= no_ahead;
	pthread_mutex_unlock(&w->lock);
}

/* The active segment (a) loses its zeros written ahead, durably: it is
 * full, or the log closes. */
static int drop_ahead(struct wal *w, const struct act *a, struct sh_err *err)
{
	int rv;

	if (a->alloc <= a->size)
		return 0;
	if (ftruncate(a->fd, (off_t)a->size) != 0)
		return sh_err_sys(err, errno, "wal: cannot truncate '%s/%s' to %" PRIu64, w->dir,
				  a->name, a->size);
	set_alloc(w, a->size, false);
	if ((rv = flush_fd(w, a->fd, diskio_fdatasync, a->name, err)) != 0)
		return rv;
	if (a->n > 0)
		atomic_store(&w->synced, a->first + a->n - 1);
	return 0;
}

/* A new active segment when the current one is full (and not empty).
 * The full one loses the zeros written ahead, durably, before the next
 * exists: only the last segment may end in them. */
static int maybe_roll(struct wal *w, struct sh_err *err)
{
	struct act a;
	int rv;

	act_get(w, &a);
	if (a.size < w->o.segment_bytes || a.n == 0)
		return 0;
	if ((rv = drop_ahead(w, &a, err)) != 0 || (rv = wal_sync(w, err)) != 0)
		return rv;
	return wal__seg_create(w, a.first + a.n, err);
}

/* Zeros written ahead of the records up to the file's end: an append
 * over them changes no metadata (the file's size and blocks stay), so
 * its fdatasync flushes the data alone, without a journal commit (2.3x
 * the flushes per second on ext4 here: doc/storage-format.md, "Space
 * written ahead").  Needed when the append of len bytes would pass
 * a->alloc; up to o.ahead_bytes past it, not past the segment's size
 * but for a batch that passes it.  Best effort: when writing zeros
 * fails (the disk full), the file goes back to its size and appends
 * grow it as they did before, until the next segment: a retry at every
 * append would fill a nearly full disk with zeros again and again. */
static void write_ahead(struct wal *w, struct act *a, uint64_t len)
{
	static const unsigned char zeros[64 * 1024];
	struct iovec iov[64];
	uint64_t need = a->size + len, cap = need > w->o.segment_bytes ? need : w->o.segment_bytes;
	uint64_t want = need + w->o.ahead_bytes < cap ? need + w->o.ahead_bytes : cap,
		 off = a->alloc;

	assert(a->alloc >= a->size); /* zeros never go over a record */
	if (need <= a->alloc || w->o.ahead_bytes == 0 || a->no_ahead)
		return;
	for (int i = 0; i < 64; i++)
		iov[i] = (struct iovec){(void *)(uintptr_t)zeros, sizeof zeros};
	while (off < want) {
		uint64_t left = want - off;
		int k = (int)(left / sizeof zeros < 64 ? left / sizeof zeros : 64);
		ssize_t done;

		if (k == 0) { /* the last piece, under 64 KiB */
			k = 1;
			iov[0].iov_len = (size_t)left;
		}
		done = pwritev(a->fd, iov, k, (off_t)off);
		if (done < 0 && errno == EINTR)
			continue;
		if (done <= 0) {
			LOG_INFO("wal",
				 "'%s/%s': cannot write zeros ahead at %" PRIu64
				 " (%s): appends grow the file until the next segment",
				 w->dir, a->name, off, done < 0 ? strerror(errno) : "no progress");
			want = a->alloc;
			if (ftruncate(a->fd, (off_t)want) != 0)
				want = off; /* the zeros written stay; still zeros */
			a->no_ahead = true;
			break;
		}
		off += (uint64_t)done;
	}
	a->alloc = want;
	set_alloc(w, want, a->no_ahead);
}

/* pwritev all of bufs at off; 0 or an errno. */
static int write_all(int fd, struct wal_buf *const *bufs, size_t n, uint64_t off)
{
	struct iovec iov[IOV_MAX];
	size_t i = 0, skip = 0; /* bytes of bufs[i] already written */

	while (i < n) {
		int k = 0;
		ssize_t done;

		for (size_t j = i; j < n && k < IOV_MAX; j++, k++)
			iov[k] = (struct iovec){bufs[j]->data + (j == i ? skip : 0),
						bufs[j]->len - (j == i ? skip : 0)};
		done = pwritev(fd, iov, k, (off_t)off);
		if (done < 0 && errno == EINTR)
			continue;
		if (done <= 0)
			return done < 0 ? errno : EIO;
		off += (uint64_t)done;
		for (size_t left = (size_t)done; left > 0 && i < n;) {
			size_t rest = bufs[i]->len - skip;

			if (left < rest) {
				skip += left;
				break;
			}
			left -= rest;
			skip = 0;
			i++;
		}
		while (i < n && bufs[i]->len == skip) { /* empty buffers */
			i++;
			skip = 0;
		}
	}
	return 0;
}

/* Publish the records of bufs written from base (lock held; the room
 * for their offsets was reserved before they were written, so that this
 * cannot fail half way). */
static void publish(struct wal *w, struct wal_seg *s, struct wal_buf *const *bufs, size_t n,
		    uint64_t base)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t off = 0; off < bufs[i]->len;) {
			const unsigned char *p = bufs[i]->data + off;

			assert(s->n < s->cap);
			s->offs[s->n++] = base;
			w->last_term = le64_get(p + 8);
			base += WAL_REC_HDR + le32_get(p);
			off += WAL_REC_HDR + le32_get(p);
		}
		w->total += bufs[i]->len;
	}
	s->size = base;
	if (s->alloc < base) /* written past the zeros ahead (or none written) */
		s->alloc = base;
}

int wal_append(struct wal *w, struct wal_buf *const *bufs, size_t n, struct sh_err *err)
{
	struct act a;
	size_t len = 0;
	uint64_t recs = 0;
	int rv, e;

	if (wal_broken(w, err))
		return err != NULL ? err->code : SH_EIO;
	if ((rv = maybe_roll(w, err)) != 0)
		return sh_err_wrap(err, rv, "wal");
	act_get(w, &a);
	if ((rv = stage(w, bufs, n, a.first + a.n, &len, &recs, err)) != 0 || len == 0)
		return rv;
	pthread_mutex_lock(&w->lock);
	rv = wal__seg_reserve(wal__active(w), recs);
	pthread_mutex_unlock(&w->lock);
	if (rv != 0)
		return sh_err_set(err, rv, "wal: out of memory");
	write_ahead(w, &a, len);
	if ((e = write_all(a.fd, bufs, n, a.size)) != 0) {
		if (ftruncate(a.fd, (off_t)a.size) != 0)
			LOG_ERROR("wal", "cannot cut '%s/%s' back to %" PRIu64 " bytes: %s", w->dir,
				  a.name, a.size, strerror(errno));
		else
			set_alloc(w, a.size, false);
		return sh_err_sys(err, e, "wal: segment '%s/%s': write failed at offset %" PRIu64,
				  w->dir, a.name, a.size);
	}
	pthread_mutex_lock(&w->lock);
	publish(w, wal__active(w), bufs, n, a.size);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

/* Flush the active segment a: everything in it is durable. */
static int flush_act(struct wal *w, const struct act *a, struct sh_err *err)
{
	int rv;

	if ((rv = flush_fd(w, a->fd, diskio_fdatasync, a->name, err)) != 0)
		return rv;
	atomic_store(&w->synced, a->first + a->n - 1);
	return 0;
}

int wal_sync(struct wal *w, struct sh_err *err)
{
	struct act a;

	if (wal_broken(w, err))
		return err != NULL ? err->code : SH_EIO;
	act_get(w, &a);
	if (atomic_load(&w->synced) >= a.first + a.n - 1)
		return 0;
	return flush_act(w, &a, err);
}

int wal__flush_active(struct wal *w, struct sh_err *err)
{
	struct act a;

	act_get(w, &a);
	return flush_act(w, &a, err);
}

/* ------------------------------------------------------------ reading */

/* Check the records read into b from file offset start of segment name:
 * they must lie back to back and fill it (a damaged length breaks that),
 * carry the indexes asked for and their CRC.  wal_open verified them, but
 * the bytes come from the disk again whenever the page cache dropped
 * them; a reader must never apply, or send a follower, a record that went
 * bad since (doc/storage-format.md, "Reading the log back"). */
static int check_read(struct wal *w, const char *name, const struct wal_buf *b, uint64_t start,
		      struct sh_err *err)
{
	size_t pos = 0;
	uint64_t i = 0;
	struct wal_rec r;
	char why[96];

	for (; pos < b->len; pos += WAL_REC_HDR + r.len, i++) {
		const unsigned char *p = b->data + pos;

		if (b->len - pos < WAL_REC_HDR) {
			snprintf(why, sizeof why, "record header cut short (a damaged length?)");
			break;
		}
		wal__rec_header(p, &r);
		if (r.len > b->len - pos - WAL_REC_HDR) {
			snprintf(why, sizeof why, "body length %" PRIu32 " past the end", r.len);
			break;
		}
		if (r.index != b->first + i) {
			snprintf(why, sizeof why, "index %" PRIu64 " where %" PRIu64 " belongs",
				 r.index, b->first + i);
			break;
		}
		if (le32_get(p + 4) != wal__rec_crc(p, r.len)) {
			snprintf(why, sizeof why,
				 "checksum mismatch (stored %08" PRIx32 ", computed %08" PRIx32 ")",
				 le32_get(p + 4), wal__rec_crc(p, r.len));
			break;
		}
	}
	if (pos == b->len && i == b->n)
		return 0;
	if (pos == b->len)
		snprintf(why, sizeof why, "%" PRIu64 " records where %zu belong", i, b->n);
	return sh_err_set(err, SH_ECORRUPT,
			  "wal: segment '%s/%s': record %" PRIu64 " at offset %" PRIu64 ": %s",
			  w->dir, name, b->first + i, start + pos, why);
}

int wal_read(struct wal *w, uint64_t from, size_t max_records, size_t max_bytes,
	     struct wal_buf **out, struct sh_err *err)
{
	struct wal_buf *b = NULL;
	struct wal_seg *s;
	uint64_t k, start = 0, end;
	char name[24] = "";
	int rv = 0;

	pthread_mutex_lock(&w->lock);
	if ((s = find_seg(w, from)) == NULL) {
		rv = sh_err_set(err, SH_ENOTFOUND, "wal: index %" PRIu64 " is not in the log",
				from);
		goto out;
	}
	k = from - s->first;
	start = s->offs[k];
	end = k + 1 < s->n ? s->offs[k + 1] : s->size;
	for (k++; k < s->n && k - (from - s->first) < max_records; k++) {
		uint64_t next_end = k + 1 < s->n ? s->offs[k + 1] : s->size;

		if (next_end - start > max_bytes)
			break;
		end = next_end;
	}
	if ((b = wal_buf_new(end - start)) == NULL) {
		rv = sh_err_set(err, SH_ENOMEM, "wal: out of memory");
		goto out;
	}
	if (pread(s->fd, b->data, end - start, (off_t)start) != (ssize_t)(end - start)) {
		rv = sh_err_sys(err, errno ? errno : EIO,
				"wal: cannot read '%s/%s' at offset %" PRIu64, w->dir, s->name,
				start);
		goto out;
	}
	b->len = b->sealed = end - start;
	b->first = from;
	b->n = k - (from - s->first);
	b->last = from + b->n - 1;
	memcpy(name, s->name, sizeof name);
out:
	pthread_mutex_unlock(&w->lock);
	if (rv == 0 && b != NULL)
		rv = check_read(w, name, b, start, err);
	if (rv != 0)
		wal_buf_unref(b);
	else
		*out = b;
	return rv;
}

/* ------------------------------------------------------------ cutting */

/* Remove segment i from the disk and the table (lock held). */
static int drop_seg(struct wal *w, size_t i, struct sh_err *err)
{
	struct wal_seg *s = &w->segs[i];

	if (unlinkat(w->dir_fd, s->name, 0) != 0)
		return sh_err_sys(err, errno, "wal: cannot delete '%s/%s'", w->dir, s->name);
	w->total -= s->size;
	wal__seg_free(s);
	memmove(s, s + 1, (w->n_segs - i - 1) * sizeof *s);
	w->n_segs--;
	return 0;
}

/* Cut the active segment after index (index + 1 >= its first index):
 * the file, then the table, then a flush (sticky when it fails). */
static int cut_active(struct wal *w, uint64_t index, struct sh_err *err)
{
	struct wal_seg *s;
	uint64_t k, off;
	char name[24];
	int fd, rv = 0;

	pthread_mutex_lock(&w->lock);
	s = wal__active(w);
	k = index + 1 - s->first;
	fd = s->fd;
	memcpy(name, s->name, sizeof name);
	if (k >= s->n) {
		pthread_mutex_unlock(&w->lock);
		return 0;
	}
	off = s->offs[k];
	if (ftruncate(fd, (off_t)off) != 0) {
		rv = sh_err_sys(err, errno, "wal: cannot truncate '%s/%s' to %" PRIu64, w->dir,
				s->name, off);
	} else {
		w->total -= s->size - off;
		s->size = off;
		s->alloc = off;
		s->no_ahead = false;
		s->n = k;
	}
	pthread_mutex_unlock(&w->lock);
	if (rv == 0)
		rv = flush_fd(w, fd, diskio_fdatasync, name, err);
	return rv;
}

/* The term of the last remaining entry after a cut, from its header. */
static void reload_last_term(struct wal *w)
{
	uint64_t t = 0, last = wal_last_index(w);

	if (last >= wal_first_index(w) && wal_term(w, last, &t, NULL) != 0)
		t = 0;
	pthread_mutex_lock(&w->lock);
	w->last_term = t;
	pthread_mutex_unlock(&w->lock);
}

/* The segments after the one that will hold index + 1 go first, and that
 * deletion is made durable (the directory fsynced) before the cut: a crash
 * in between must never leave the cut segment followed by deleted ones
 * that come back, which would be a gap in the log.  Whatever happens,
 * `synced` comes down to index: nothing after it is known to be flushed
 * any more. */
int wal_truncate(struct wal *w, uint64_t index, struct sh_err *err)
{
	size_t dropped = 0;
	int rv = 0;

	if (wal_broken(w, err))
		return err != NULL ? err->code : SH_EIO;
	pthread_mutex_lock(&w->lock);
	if (index + 1 < w->segs[0].first)
		rv = sh_err_set(err, SH_EINVAL,
				"wal: cannot truncate after %" PRIu64
				": the log starts at %" PRIu64,
				index, w->segs[0].first);
	while (rv == 0 && w->n_segs > 1 && wal__active(w)->first > index + 1) {
		rv = drop_seg(w, w->n_segs - 1, err);
		dropped++;
	}
	pthread_mutex_unlock(&w->lock);
	if (rv == 0 && dropped > 0)
		rv = wal__fsync_dir(w, err);
	if (rv == 0)
		rv = cut_active(w, index, err);
	if (atomic_load(&w->synced) > index)
		atomic_store(&w->synced, index);
	reload_last_term(w);
	return rv;
}

int wal_remove_prefix(struct wal *w, uint64_t index, struct sh_err *err)
{
	int rv = 0;
	size_t removed = 0;

	pthread_mutex_lock(&w->lock);
	while (rv == 0 && w->n_segs > 1 && w->segs[0].n > 0 &&
	       wal__seg_last(&w->segs[0]) <= index) {
		rv = drop_seg(w, 0, err);
		removed++;
	}
	pthread_mutex_unlock(&w->lock);
	if (rv == 0 && removed > 0)
		rv = wal__fsync_dir(w, err);
	if (removed > 0)
		LOG_DEBUG("wal", "removed %zu segments up to index %" PRIu64, removed, index);
	return rv;
}

int wal_reset(struct wal *w, uint64_t next_index, struct sh_err *err)
{
	int rv = 0;

	if (wal_broken(w, err))
		return err != NULL ? err->code : SH_EIO;
	pthread_mutex_lock(&w->lock);
	w->reset_next = next_index;
	while (rv == 0 && w->n_segs > 0)
		rv = drop_seg(w, w->n_segs - 1, err);
	pthread_mutex_unlock(&w->lock);
	if (rv == 0)
		rv = wal__seg_create(w, next_index, err);
	if (rv != 0)
		return sh_err_wrap(err, rv, "wal: reset");
	atomic_store(&w->synced, next_index - 1);
	pthread_mutex_lock(&w->lock);
	w->last_term = 0;
	pthread_mutex_unlock(&w->lock);
	return 0;
}

void wal_close(struct wal *w)
{
	struct sh_err err;

	if (w == NULL)
		return;
	if (w->n_segs > 0 && !wal_broken(w, NULL)) {
		struct act a;

		act_get(w, &a); /* a clean stop leaves no zeros ahead */
		if (drop_ahead(w, &a, &err) != 0)
			LOG_ERROR("wal", "'%s': at close: %s", w->dir, err.msg);
		if (wal_sync(w, &err) != 0)
			LOG_ERROR("wal", "'%s': at close: %s", w->dir, err.msg);
	}
	for (size_t i = 0; i < w->n_segs; i++)
		wal__seg_free(&w->segs[i]);
	if (w->dir_fd >= 0)
		close(w->dir_fd);
	pthread_mutex_destroy(&w->lock);
	sh_free(w->segs);
	sh_free(w->dir);
	sh_free(w);
}
