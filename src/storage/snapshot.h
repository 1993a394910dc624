/*
 * snapshot: snapshot files — a header with the (term, index) covered, then
 * the content in checksummed frames (doc/storage-format.md, "Snapshots").
 * What the content says is the store's business (store_save/store_load);
 * this module writes it durably (temporary file, fsync, rename, directory
 * fsync), reads it back verifying every frame, finds the latest snapshot,
 * serves a file as a sequence of self-checking chunks for a follower, and
 * on the follower receives those chunks into a snapshot file
 * (snapshot_recv.c).
 *
 * Errors name the file and the offset: "snapshot: 'DIR/INDEX.snap': frame
 * 3 at offset 2097208: checksum mismatch (stored ..., computed ...)".
 *
 * Thread-safe as long as two calls (snap_write, a receiver) do not write the
 * same index.
 */
#ifndef SHOAL_STORAGE_SNAPSHOT_H
#define SHOAL_STORAGE_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "index/hnsw.h"
#include "util/err.h"

#define SNAP_HDR       40
#define SNAP_FRAME_HDR 8
#define SNAP_FRAME_MAX (1u << 20)
#define SNAP_CHUNK_MAX (SNAP_FRAME_HDR + SNAP_FRAME_MAX) /* the largest chunk */
#define SNAP_MAGIC     "SHOALSNP"

/* Produces the content through write(wctx, ...). */
typedef int (*snap_save_fn)(void *arg, hnsw_write_fn write, void *wctx, struct sh_err *err);
/* Consumes the content through read(rctx, ...). */
typedef int (*snap_load_fn)(void *arg, hnsw_read_fn read, void *rctx, uint64_t index, uint64_t term,
			    struct sh_err *err);

/* Write DIR/INDEX.snap durably; *bytes its size (may be NULL).  On failure
 * the temporary file is removed and nothing else changes. */
int snap_write(const char *dir, uint64_t index, uint64_t term, snap_save_fn fn, void *arg,
	       uint64_t *bytes, struct sh_err *err);
/* Delete the temporary file of a snap_write of index that did not end (its
 * writer process was killed). */
void snap_drop_tmp(const char *dir, uint64_t index);
/* Read DIR/INDEX.snap and hand its content to fn, then check that the
 * content ended exactly at the end frame and the end frame at the end of
 * the file.  When fn succeeded and that check fails, what fn made is
 * still the caller's to free. */
int snap_read(const char *dir, uint64_t index, snap_load_fn fn, void *arg, struct sh_err *err);
/* snap_read of a snapshot file by any name (a backup), of the index its
 * header says (*index; 0 when the header is unreadable). */
int snap_read_path(const char *path, snap_load_fn fn, void *arg, uint64_t *index,
		   struct sh_err *err);

/* The newest snapshot's index in dir (creating dir when missing); 0 when
 * there is none.  Deletes leftover *.tmp and *.recv files (logged): at
 * start, nothing is being written or received. */
int snap_latest(const char *dir, uint64_t *index, struct sh_err *err);
/* Delete the snapshots older than index (never a file being written or
 * received: those belong to their writer). */
int snap_prune(const char *dir, uint64_t index, struct sh_err *err);
/* "DIR/%016x.snap" */
void snap_path(char *buf, size_t size, const char *dir, uint64_t index);
/* "DIR/%016x.recv": a snapshot received whole, not installed yet. */
void snap_recv_path(char *buf, size_t size, const char *dir, uint64_t index);

/* A snapshot as chunks: the header first, then each frame (its 8-byte
 * header and data), the end frame last; every chunk is checked before it
 * is handed out, and a receiver can check it again and write it as is. */
struct snap_chunks;

int snap_chunks_open(const char *dir, uint64_t index, struct snap_chunks **out, struct sh_err *err);
/* The term of the snapshot's last entry (from its header). */
uint64_t snap_chunks_term(const struct snap_chunks *c);
/* The size of the file in bytes (0 when it cannot be read). */
uint64_t snap_chunks_size(const struct snap_chunks *c);
/* The next chunk (*len 0 after the last), valid until the next call;
 * *offset is where it lies in the file. */
int snap_chunks_next(struct snap_chunks *c, const void **data, size_t *len, uint64_t *offset,
		     struct sh_err *err);
void snap_chunks_close(struct snap_chunks *c);

/* The follower's side: a snapshot received as the chunks above, written to
 * DIR/INDEX.recv.tmp as they arrive and renamed to DIR/INDEX.recv when the
 * end frame is in.  Its frames are sound then, but what they hold is only
 * checked by loading it: snap_read_received() does, and only a snapshot
 * that loaded is made DIR/INDEX.snap, by snap_accept_received() — a
 * received snapshot that does not load never becomes the newest snapshot
 * (the node would refuse to start from it).  The receiver owns its
 * temporary file until finish or abort; it copies nothing the caller
 * passes.  One receiver per index at a time.  The total received is
 * bounded (snap_recv_limit): by default every chunk must leave
 * SNAP_RECV_RESERVE bytes free on the file system, or a twentieth of it
 * when that is less. */
struct snap_recv;

#define SNAP_RECV_RESERVE (256ull << 20)

/* Create (or truncate) DIR/INDEX.recv.tmp, creating DIR when missing, for
 * the snapshot of (index, term). */
int snap_recv_open(const char *dir, uint64_t index, uint64_t term, struct snap_recv **out,
		   struct sh_err *err);
/* Check and write the chunk at offset, as snap_chunks_next handed it out:
 * offset must be the bytes received so far (SH_EINVAL "chunk at offset X,
 * expected offset Y" for a skipped or repeated chunk); len is 1 ..
 * SNAP_CHUNK_MAX; the first chunk is the SNAP_HDR-byte header, sound
 * (SH_ECORRUPT "bad header: ...") and of this index and term (SH_EINVAL);
 * every other is one whole frame whose CRC matches (SH_ECORRUPT "frame F
 * at offset X: checksum mismatch (stored S, computed C)"), and none may
 * follow the end frame (SH_EINVAL).  A refused chunk changes nothing: the
 * sender may go on with the right one. */
int snap_recv_chunk(struct snap_recv *r, uint64_t offset, const void *data, size_t len,
		    struct sh_err *err);
/* Bound what r accepts: at most max_bytes in all (0: no bound of its
 * own), and every chunk must leave reserve bytes free on the file system
 * of DIR (0: none); a chunk over either is refused with SH_ETOOBIG ("a
 * snapshot of more than N bytes ..."), and the receiver is then of no
 * more use (abort it).  The default is (0, the smaller of
 * SNAP_RECV_RESERVE and a twentieth of the file system). */
void snap_recv_limit(struct snap_recv *r, uint64_t max_bytes, uint64_t reserve);
/* Bytes received so far: the offset of the next chunk. */
uint64_t snap_recv_offset(const struct snap_recv *r);
/* Has the end frame arrived? */
bool snap_recv_done(const struct snap_recv *r);
/* Once the end frame is in: fsync the file and rename it to
 * DIR/INDEX.recv.  SH_EINVAL before the end frame.  Frees r whatever it
 * returns; on failure the temporary file is removed. */
int snap_recv_finish(struct snap_recv *r, struct sh_err *err);
/* Stop receiving: remove the temporary file and free r; NULL is a no-op. */
void snap_recv_abort(struct snap_recv *r);

/* snap_read of the received DIR/INDEX.recv. */
int snap_read_received(const char *dir, uint64_t index, snap_load_fn fn, void *arg,
		       struct sh_err *err);
/* Make the received snapshot DIR/INDEX.snap (rename, fsync DIR). */
int snap_accept_received(const char *dir, uint64_t index, struct sh_err *err);
/* Delete DIR/INDEX.recv (a received snapshot that will not be installed). */
void snap_drop_received(const char *dir, uint64_t index);

#endif
