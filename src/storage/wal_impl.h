/*
 * wal_impl: the log's internal structures, shared by wal.c (appending,
 * reading, cutting) and wal_open.c (verification at start).  Nothing
 * outside src/storage/wal*.c includes it.
 *
 * The segment table (segs) is guarded by lock.  The mutator thread writes
 * to the active segment's file without the lock and then publishes the new
 * records' offsets under it, so a reader never sees a record before its
 * bytes are in the file.
 *
 * What it shares between the files is named wal__* (STYLE.md, "Every
 * external symbol carries its module's prefix").
 */
#ifndef SHOAL_STORAGE_WAL_IMPL_H
#define SHOAL_STORAGE_WAL_IMPL_H

#include <pthread.h>

#include "storage/wal.h"

struct wal_seg {
	char name[24]; /* 16 hex digits + ".seg" */
	int fd;
	uint64_t first; /* index of its first record */
	uint64_t n;     /* records */
	uint64_t *offs; /* offset of each record */
	size_t cap;
	uint64_t size;  /* bytes: the end of its last record */
	uint64_t alloc; /* the file's size: zeros from size to alloc, written ahead
			 * (doc/storage-format.md, "Space written ahead") */
	bool no_ahead;  /* writing zeros ahead failed (the disk full): appends
			 * grow the file until the next segment or a cut */
};

struct wal {
	char *dir;
	int dir_fd;
	struct wal_opts o;
	pthread_mutex_t lock;
	struct wal_seg *segs; /* at least one after open; the last is active */
	size_t n_segs, cap_segs;
	uint64_t last_term;
	uint64_t reset_next;     /* while a reset has no segment: the next index */
	_Atomic uint64_t synced; /* highest index fsynced */
	uint64_t total;          /* bytes in all segments */
	/* A failed flush (of a segment or of the directory), under lock.  It
	 * is for good: the kernel may have dropped the dirty pages, and a
	 * later flush that succeeds would not bring them back, so every later
	 * append, flush and cut fails until the log is opened again and
	 * verified (doc/storage-format.md, "fsync policies"). */
	struct sh_err broken;
};

static inline struct wal_seg *wal__active(struct wal *w)
{
	return &w->segs[w->n_segs - 1];
}

static inline uint64_t wal__seg_last(const struct wal_seg *s)
{
	return s->first + s->n - 1;
}

/* The record header fields at p (WAL_REC_HDR bytes). */
void wal__rec_header(const unsigned char *p, struct wal_rec *r);
/* The CRC a record at p with body length len must carry: over all of it
 * but the CRC and durable fields. */
uint32_t wal__rec_crc(const unsigned char *p, size_t len);
/* Room in s for more record offsets; add one (lock held or not yet
 * shared).  SH_ENOMEM. */
int wal__seg_reserve(struct wal_seg *s, uint64_t more);
int wal__seg_push(struct wal_seg *s, uint64_t off);
void wal__seg_free(struct wal_seg *s);
/* Create segment file for first index (tmp, fsync, rename, fsync dir) and
 * append it to the table. */
int wal__seg_create(struct wal *w, uint64_t first, struct sh_err *err);
/* Flush the active segment, whatever `synced` says (a start flushes what
 * it rewrote even in a log with no record); fsync the log's directory.
 * A failure is for good (struct wal, broken). */
int wal__flush_active(struct wal *w, struct sh_err *err);
int wal__fsync_dir(struct wal *w, struct sh_err *err);
/* Segment file name of a first index. */
void wal__seg_name(char *buf, size_t size, uint64_t first);

#endif
