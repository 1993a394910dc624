/*
 * wal: the log — segmented files of checksummed records (term, index, type,
 * body), as doc/storage-format.md ("The log") describes byte by byte.
 *
 * Three parts:
 *   - struct wal_buf: a batch of records in the on-disk layout, reference-
 *     counted, so that the request path, the log writer, the apply thread
 *     and (later) every follower link share one copy of the bytes;
 *   - struct wal (wal.c, wal_open.c): the files — open and verify (cutting a
 *     torn tail, refusing corruption before it), append, flush, read a
 *     range, truncate a suffix, remove a prefix, reset;
 *   - struct wal_writer (wal_writer.c): the log writer thread with group
 *     commit and the fsync policies; it reports completed appends through a
 *     done list and a caller-supplied eventfd (DESIGN.md section 2).
 *
 * Threads.  The mutating calls (wal_append, wal_sync, wal_truncate,
 * wal_reset) are made by one thread at a time — the writer thread while a
 * wal_writer runs.  wal_read, wal_remove_prefix and the accessors may be
 * called from any thread at any time; an internal mutex guards the segment
 * table (never held across a write to the active segment).
 */
#ifndef SHOAL_STORAGE_WAL_H
#define SHOAL_STORAGE_WAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define WAL_SEG_HDR   32
#define WAL_REC_HDR   40
#define WAL_MAX_BODY  (1u << 30)
#define WAL_MIN_SEG   (64u << 10)
#define WAL_TYPE_MAX  7
#define WAL_SEG_MAGIC "SHOALWAL"

enum wal_type {
	WAL_NOOP = 1,
	WAL_VOTERS = 2,
	WAL_CREATE = 3,
	WAL_DROP = 4,
	WAL_UPSERT = 5,
	WAL_DELETE = 6,
	WAL_SET_PAYLOAD = 7, /* issue 16: payload changes */
};

/* ------------------------------------------------------------ batches */

/* Records back to back, each WAL_REC_HDR bytes of header + body, exactly
 * as on disk.  Each record is sealed (its CRC computed) by whoever builds
 * the batch: when the next record is added, or by wal_buf_seal(); the log
 * writer only fills in `durable`, which the CRC does not cover, while the
 * append is in progress — nobody else may read the buffer until then.
 * Fields are read-only outside wal*.c.  n == 0 means empty. */
struct wal_buf {
	_Atomic unsigned refs;
	size_t len, cap;
	size_t sealed; /* bytes whose records carry their CRC */
	size_t n;
	uint64_t first, last;
	unsigned char *data;
};

/* One record, pointing into a buffer. */
struct wal_rec {
	uint64_t term, index, durable;
	uint8_t type;
	uint32_t len;
	const unsigned char *body;
};

/* A new empty buffer with one reference; NULL when out of memory. */
struct wal_buf *wal_buf_new(size_t cap);
struct wal_buf *wal_buf_ref(struct wal_buf *b);
void wal_buf_unref(struct wal_buf *b);
/* Append a record header and room for body_len bytes; returns where the
 * body goes (valid until the next add), NULL when out of memory.  index
 * must be last + 1 in a non-empty buffer (asserted). */
unsigned char *wal_buf_add(struct wal_buf *b, uint64_t term, uint64_t index, uint8_t type,
			   size_t body_len);
/* Compute the CRC of every record not sealed yet (the last one added). */
void wal_buf_seal(struct wal_buf *b);
/* The record at *pos (start with 0); advances *pos.  Returns false at the
 * end.  The buffer is trusted (built by wal_buf_add or read by wal_read). */
bool wal_buf_next(const struct wal_buf *b, size_t *pos, struct wal_rec *r);

/* ------------------------------------------------------------ the files */

/* storage.wal_write_ahead's default (doc/storage-format.md, "Space
 * written ahead"). */
#define WAL_AHEAD_DEFAULT (1u << 20)

struct wal_opts {
	uint64_t segment_bytes; /* start a new segment past this size (>= WAL_MIN_SEG) */
	uint64_t ahead_bytes;   /* zeros written ahead of the active segment's records; 0: none */
};

/* What wal_open found, for the start-up log line and tests. */
struct wal_open_info {
	uint64_t cut_bytes; /* torn tail removed, 0 if none */
	size_t segments;
	size_t tmp_removed; /* *.tmp files deleted */
};

struct wal;

/* Open (creating when missing) the log in directory dir: verify every
 * record, cut a torn tail (logged as a warning), refuse corruption before
 * it with SH_ECORRUPT and "segment 'PATH': ... at offset X".  An empty
 * directory gets a first segment starting at index 1. */
int wal_open(const char *dir, const struct wal_opts *o, struct wal **out,
	     struct wal_open_info *info, struct sh_err *err);
/* Flush and close; NULL is a no-op. */
void wal_close(struct wal *w);

/* First index still in the log, last index (first - 1 when empty), the
 * term of the last entry (0 when empty), the highest index fsynced. */
uint64_t wal_first_index(struct wal *w);
uint64_t wal_last_index(struct wal *w);
uint64_t wal_last_term(struct wal *w);
uint64_t wal_synced_index(struct wal *w);
/* Bytes in all segments, and their number. */
uint64_t wal_bytes(struct wal *w);
size_t wal_segments(struct wal *w);
/* The term of entry index: SH_ENOTFOUND outside [first, last]. */
int wal_term(struct wal *w, uint64_t index, uint64_t *term, struct sh_err *err);

/* Write the records of bufs[0..n) after the last one with one pwritev (no
 * flush), sealing them and filling in their durable field.  Their indexes
 * must follow on (SH_EINVAL otherwise).  On a failed write the file is cut
 * back to where this call began and nothing is appended. */
int wal_append(struct wal *w, struct wal_buf *const *bufs, size_t n, struct sh_err *err);
/* fdatasync the active segment. */
int wal_sync(struct wal *w, struct sh_err *err);
/* Has a flush failed?  Then every append, flush, truncation and reset
 * fails (err: why) until the log is opened again: a failed fsync is never
 * retried, whichever call made it. */
bool wal_broken(struct wal *w, struct sh_err *err);
/* Delete every entry after index (index >= first - 1). */
int wal_truncate(struct wal *w, uint64_t index, struct sh_err *err);
/* Delete whole segments whose entries are all <= index, never the active
 * one. */
int wal_remove_prefix(struct wal *w, uint64_t index, struct sh_err *err);
/* Delete everything; the next entry will be next_index. */
int wal_reset(struct wal *w, uint64_t next_index, struct sh_err *err);

/* Read entries from index `from` on, in one segment, up to max_records
 * and max_bytes (but at least one record) into a new buffer (*out, one
 * reference).  SH_ENOTFOUND when from is outside [first, last]. */
int wal_read(struct wal *w, uint64_t from, size_t max_records, size_t max_bytes,
	     struct wal_buf **out, struct sh_err *err);

/* ------------------------------------------------------------ the writer thread */

enum wal_fsync { WAL_FSYNC_ALWAYS = 0, WAL_FSYNC_INTERVAL = 1, WAL_FSYNC_NEVER = 2 };

enum wal_op_type { WAL_OP_APPEND, WAL_OP_TRUNCATE, WAL_OP_RESET };

/* A request to the writer: caller-owned, untouched by the caller from
 * submit until it is done.  APPEND holds one reference on buf until done
 * (the caller's: the writer neither takes nor drops one). */
struct wal_op {
	enum wal_op_type type;
	struct wal_buf *buf; /* APPEND */
	uint64_t index;      /* TRUNCATE: keep entries up to index; RESET: the next index */
	bool notify;         /* when done: queue on the done list and signal notify_fd */
	void *data;          /* the caller's */
	/* result, once done */
	int rv;
	struct sh_err err;
	/* internal */
	struct wal_op *next;
	_Atomic bool done;
};

struct wal_writer_opts {
	enum wal_fsync fsync;
	uint32_t interval_ms; /* WAL_FSYNC_INTERVAL: longest time between flushes */
	int notify_fd;        /* eventfd written (+1) when ops complete; -1 for none */
	bool manual;          /* no thread: the caller runs the ops (wal_writer_run) */
};

struct wal_writer;

/* Start the writer thread on w, which it owns for writing until stopped
 * (manual: no thread; the caller's thread owns w for writing). */
int wal_writer_start(struct wal *w, const struct wal_writer_opts *o, struct wal_writer **out,
		     struct sh_err *err);
/* Finish every queued op, flush, and join the thread; NULL is a no-op.
 * Ops still on the done list are not reported: drain it first (after
 * wal_writer_quiesce). */
void wal_writer_stop(struct wal_writer *ww);
/* Block until every op submitted so far is done (manual: run them). */
void wal_writer_quiesce(struct wal_writer *ww);
/* Manual mode only: is anything queued (or, under `interval`, a flush
 * due)?  And run it, as the thread would: every op queued, appends in
 * groups of one write and, under `always`, one fdatasync each. */
bool wal_writer_pending(struct wal_writer *ww);
void wal_writer_run(struct wal_writer *ww);

/* Queue op (never blocks on the disk).  An APPEND whose first index is not
 * the one the writer expects (because an earlier append failed, or a bug)
 * fails with SH_EINVAL. */
void wal_writer_submit(struct wal_writer *ww, struct wal_op *op);
/* The next completed op with notify set, in submission order; NULL if none. */
struct wal_op *wal_writer_done(struct wal_writer *ww);
/* Block until op is done; returns op->rv.  (For tests and tools.) */
int wal_writer_wait(struct wal_writer *ww, struct wal_op *op);
/* Submit an APPEND of buf and wait for it: the blocking wrapper. */
int wal_writer_append(struct wal_writer *ww, struct wal_buf *buf, struct sh_err *err);
/* The highest index acknowledged durable under the policy. */
uint64_t wal_writer_durable(struct wal_writer *ww);
/* Flushes done so far (for tests of group commit and for metrics). */
uint64_t wal_writer_syncs(struct wal_writer *ww);

#endif
