/*
 * fuzz_dir.h: what the storage fuzz targets (fuzz_wal.c, fuzz_snapshot.c)
 * share — MUST(), and a scratch directory made once (in /dev/shm when it
 * is writable), removed at exit, with logging off.
 */
#ifndef SHOAL_T_FUZZ_DIR_H
#define SHOAL_T_FUZZ_DIR_H

#include "util/log.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* What must hold whatever the input; not assert(), which NDEBUG builds
 * (that replay the corpus in make check) compile away. */
#define MUST(cond)                                                                                 \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond);                 \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static char fuzz_base[256];

static int fuzz_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Remove path and everything under it. */
static void fuzz_rm_rf(const char *path)
{
	nftw(path, fuzz_rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void fuzz_dir_cleanup(void)
{
	fuzz_rm_rf(fuzz_base);
}

/* Make the scratch directory shoal-fuzz-NAME-XXXXXX; returns its path. */
static const char *fuzz_dir_make(const char *name)
{
	const char *t = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

	snprintf(fuzz_base, sizeof fuzz_base, "%s/shoal-fuzz-%s-XXXXXX", t, name);
	if (mkdtemp(fuzz_base) == NULL)
		abort();
	atexit(fuzz_dir_cleanup);
	sh_log_set_level(SH_LOG_OFF);
	return fuzz_base;
}

#endif
