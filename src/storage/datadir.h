/*
 * datadir: a node's data directory — its identity and its exclusive lock.
 *
 * sh_datadir_open() creates the directory when missing, takes an exclusive
 * lock on DIR/LOCK (flock, so a second shoald — or a second open in the same
 * process — is refused while the first holds it; the kernel drops the lock
 * when the holder dies, even by SIGKILL), writes the holder's pid into LOCK
 * for the error message others will see, and loads DIR/node.id, creating it
 * on first start, and DIR/cluster.id once the node belongs to a cluster
 * (doc/storage-format.md describes the files).
 *
 * The struct is owned by the caller and released with sh_datadir_close(),
 * which drops the lock.  Not thread-safe; the loop thread owns it.
 */
#ifndef SHOAL_STORAGE_DATADIR_H
#define SHOAL_STORAGE_DATADIR_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

struct sh_datadir;

int sh_datadir_open(const char *path, struct sh_datadir **out, struct sh_err *err);
void sh_datadir_close(struct sh_datadir *d);

/* The node id: random, nonzero, stable across restarts. */
uint64_t sh_datadir_node_id(const struct sh_datadir *d);
/* The cluster this node belongs to (DIR/cluster.id), 0 before it joined
 * or bootstrapped one; set once. */
uint64_t sh_datadir_cluster_id(const struct sh_datadir *d);
int sh_datadir_set_cluster_id(struct sh_datadir *d, uint64_t id, struct sh_err *err);
const char *sh_datadir_path(const struct sh_datadir *d);
/* An O_DIRECTORY descriptor of the directory, for openat() & co. */
int sh_datadir_fd(const struct sh_datadir *d);
/* Write a small file atomically: DIR/name.tmp, fsync, rename, fsync DIR. */
int sh_datadir_write_file(struct sh_datadir *d, const char *name, const void *buf, size_t len,
			  struct sh_err *err);
/* Read a small file whole into buf (at most cap - 1 bytes; longer is
 * SH_ECORRUPT); SH_ENOTFOUND, err untouched, when it does not exist. */
int sh_datadir_read_file(struct sh_datadir *d, const char *name, char *buf, size_t cap, size_t *len,
			 struct sh_err *err);

#endif
