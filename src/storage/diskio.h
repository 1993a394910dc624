/*
 * diskio: the storage's flushes (fdatasync, fsync) in one place, so that a
 * test or the simulator can make them fail (STYLE.md, "Debug builds have
 * test-only hooks"): the storage never calls fdatasync() or fsync()
 * itself.
 *
 * Fault injection is process-wide, like sh_alloc_fail_after(): set it on
 * the thread that then runs the storage (a manual-mode db, or the wal
 * directly) so that the count means something.  Thread-safe; the counter
 * is a relaxed atomic.
 */
#ifndef SHOAL_STORAGE_DISKIO_H
#define SHOAL_STORAGE_DISKIO_H

#include "util/err.h"

/* fdatasync(fd) / fsync(fd): 0, or -1 with errno set. */
int diskio_fdatasync(int fd);
int diskio_fsync(int fd);
/* fsync the directory dir (a rename or a new file in it is durable after
 * it): 0, or the error, naming dir. */
int diskio_fsync_dir(const char *dir, struct sh_err *err);
/* Create the directory dir (0750) unless it exists, and make its name
 * durable (its parent fsynced, or its file system synced when the parent
 * cannot be opened), whether this call made it or an earlier run did
 * that may have died before the sync: without it a power loss may take
 * the directory away with every file synced in it.  For a directory that
 * existed the sync is best effort.  0, or the error, naming the
 * directory. */
int diskio_mkdir(const char *dir, struct sh_err *err);

/* Make the flush after n more succeed fail once, with errnum, without
 * flushing anything (as a kernel that dropped the dirty pages would);
 * n < 0 turns injection off. */
void diskio_fail_after(long n, int errnum);
/* Flushes made so far (every call above, failed or not). */
unsigned long diskio_flushes(void);

#endif
