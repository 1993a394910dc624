/*
 * restore: seed a new data dir from a backup (shoald --restore FILE; see
 * restore.c).  Called by main() alone, before the node starts.
 */
#ifndef SHOAL_SERVER_RESTORE_H
#define SHOAL_SERVER_RESTORE_H

#include "util/err.h"

/* Check the snapshot file `file` whole, then seed the data dir `dir`
 * (missing or empty, else SH_EEXIST) from it.  On a failed check nothing
 * is written. */
int restore_run(const char *file, const char *dir, struct sh_err *err);

#endif
