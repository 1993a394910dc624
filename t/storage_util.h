/*
 * storage_util.h: helpers for the storage tests — temporary directories,
 * damaging files at computed offsets, and capturing the log to check the
 * exact warnings.  Header-only; include once per test program, after tap.h.
 */
#ifndef SHOAL_T_STORAGE_UTIL_H
#define SHOAL_T_STORAGE_UTIL_H

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rm_rf(const char *path) __attribute__((unused));
static void rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh directory under $TMPDIR or /tmp; the name is static storage. */
static const char *make_tmpdir(const char *what) __attribute__((unused));
static const char *make_tmpdir(const char *what)
{
	static char buf[512];
	const char *t = getenv("TMPDIR");

	snprintf(buf, sizeof buf, "%s/shoal-t-%s-XXXXXX", t ? t : "/tmp", what);
	if (mkdtemp(buf) == NULL)
		bail_out("mkdtemp %s failed", buf);
	return buf;
}

static long long file_size(const char *path) __attribute__((unused));
static long long file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* XOR one byte of a file with mask. */
static void flip_byte(const char *path, long long off, unsigned char mask) __attribute__((unused));
static void flip_byte(const char *path, long long off, unsigned char mask)
{
	int fd = open(path, O_RDWR);
	unsigned char c;

	if (fd < 0 || pread(fd, &c, 1, off) != 1)
		bail_out("cannot read byte %lld of %s", off, path);
	c ^= mask;
	if (pwrite(fd, &c, 1, off) != 1)
		bail_out("cannot write byte %lld of %s", off, path);
	close(fd);
}

static void cut_file(const char *path, long long size) __attribute__((unused));
static void cut_file(const char *path, long long size)
{
	if (truncate(path, size) != 0)
		bail_out("cannot truncate %s to %lld", path, size);
}

/* Send the log to a file (level info) so tests can read what it said. */
static char log_path[600];

static void log_capture(const char *dir) __attribute__((unused));
static void log_capture(const char *dir)
{
	struct sh_err err;

	snprintf(log_path, sizeof log_path, "%s/test.log", dir);
	unlink(log_path);
	sh_log_set_level(SH_LOG_INFO);
	if (sh_log_open(log_path, &err) != 0)
		bail_out("cannot log to %s: %s", log_path, err.msg);
}

/* The captured log so far (static storage; cleared by log_capture). */
static const char *log_text(void) __attribute__((unused));
static const char *log_text(void)
{
	static char buf[65536];
	FILE *f = fopen(log_path, "r");
	size_t n = 0;

	if (f != NULL) {
		n = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return buf;
}

#endif
