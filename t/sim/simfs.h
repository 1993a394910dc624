/*
 * simfs: an in-memory file system under /simfs for the whole-node
 * simulator (node_world.h), with the crash semantics of a POSIX disk.
 *
 * The programs that use it are linked with -Wl,--wrap=open,... (the list
 * is SIMFS_WRAP in Makefile.am): every file call the storage makes (open,
 * openat, read, pwrite, pwritev, fsync, fdatasync, ftruncate, rename,
 * unlink, mkdir, opendir, readdir, mmap, flock, dup, ...) comes here; a
 * path under /simfs, or a descriptor simfs gave, is served here, anything
 * else goes to the real call.  The storage code runs unchanged.
 *
 * What survives a crash of a subtree (simfs_crash):
 *   - a file's content as of its last fsync/fdatasync, plus a random
 *     prefix of the writes made since, the last of them possibly torn;
 *   - a directory's entries as of its last fsync, plus a random prefix of
 *     the creations, renames and unlinks made in it since (a rename is one
 *     step, as ext4's journal makes it).
 * Everything else is lost, as POSIX allows, and every descriptor open
 * under the subtree is closed.  A failed fsync (simfs_fail_fsync) puts a
 * random prefix of the unsynced writes on the disk and drops the rest for
 * good, as Linux's page cache does after a writeback error ("fsyncgate"):
 * reads still see them, a later fsync succeeds without them, the next
 * crash loses them unless they were written again.  Writes past a
 * subtree's quota fail with ENOSPC.
 *
 * getrandom() is wrapped too: it draws from simfs_set_rand()'s generator,
 * so node ids and seeds are the seed's.
 *
 * Single-threaded: the simulator's thread only.  Not for production.
 */
#ifndef SHOAL_T_SIMFS_H
#define SHOAL_T_SIMFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/rand.h"

#define SIMFS_ROOT "/simfs"

/* Forget every file and descriptor; the root exists, empty and durable. */
void simfs_reset(void);
/* Random numbers for crash prefixes and getrandom() (not owned). */
void simfs_set_rand(struct sh_rand *r);
/* Create dir (and its parents) durably, as an installer would. */
int simfs_mkdir_durable(const char *dir);
/* Crash everything under dir (see above): from now on every call under
 * it fails with EIO (so that the crashed instance can be freed through its
 * normal paths without any of its I/O landing) until simfs_thaw(dir). */
void simfs_crash(const char *dir);
/* A killed process (kill -9), the machine up: what it wrote survives,
 * synced or not (the page cache has it); freezes like simfs_crash. */
void simfs_kill(const char *dir);
void simfs_thaw(const char *dir);
/* The next n fsync/fdatasync calls on files or directories under dir
 * fail with EIO. */
void simfs_fail_fsync(const char *dir, unsigned n);
/* The same for fsyncs of directories only (a rename in place, not yet
 * durable). */
void simfs_fail_dir_fsync(const char *dir, unsigned n);
/* Writes that would take the bytes under dir beyond quota fail with
 * ENOSPC (0: no quota). */
void simfs_set_quota(const char *dir, uint64_t quota);
/* Bytes of file content under dir now. */
uint64_t simfs_used(const char *dir);
/* Descriptors open now under dir (a leak check). */
size_t simfs_open_fds(const char *dir);

struct simfs_stats {
	uint64_t writes, fsyncs, fsync_failures, enospc, crashes, torn;
};
void simfs_stats(struct simfs_stats *st);

#endif
