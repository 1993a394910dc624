/*
 * diskio: see diskio.h.
 */
#include "build.h"

#include "storage/diskio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static _Atomic long countdown = -1; /* -1: no fault planned */
static _Atomic int fault_errno;
static _Atomic unsigned long flushes;

/* Is this the flush a test asked to fail?  Sets errno when it is. */
static int injected(void)
{
	long n;

	atomic_fetch_add_explicit(&flushes, 1, memory_order_relaxed);
	if (atomic_load_explicit(&countdown, memory_order_relaxed) < 0)
		return 0;
	n = atomic_fetch_sub_explicit(&countdown, 1, memory_order_relaxed);
	if (n != 0)
		return 0;
	errno = atomic_load_explicit(&fault_errno, memory_order_relaxed);
	return 1;
}

int diskio_fdatasync(int fd)
{
	return injected() ? -1 : fdatasync(fd);
}

int diskio_fsync(int fd)
{
	return injected() ? -1 : fsync(fd);
}

void diskio_fail_after(long n, int errnum)
{
	atomic_store(&fault_errno, errnum ? errnum : EIO);
	atomic_store(&countdown, n < 0 ? -1 : n);
}

unsigned long diskio_flushes(void)
{
	return atomic_load_explicit(&flushes, memory_order_relaxed);
}

int diskio_fsync_dir(const char *dir, struct sh_err *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rv = 0;

	if (fd < 0 || diskio_fsync(fd) != 0)
		rv = sh_err_sys(err, errno, "cannot fsync directory '%s'", dir);
	if (fd >= 0)
		close(fd);
	return rv;
}

/* fsync the directory that holds dir (dir's own name without trailing
 * slashes; "." when it has no slash). */
static int fsync_parent(const char *dir, bool must, struct sh_err *err)
{
	char parent[4096];
	size_t len = strlen(dir);
	int fd, rv = 0;

	while (len > 1 && dir[len - 1] == '/')
		len--;
	while (len > 0 && dir[len - 1] != '/')
		len--;
	while (len > 1 && dir[len - 1] == '/')
		len--;
	if (len >= sizeof parent)
		return sh_err_set(err, SH_EINVAL, "path too long: '%s'", dir);
	if (len == 0)
		snprintf(parent, sizeof parent, ".");
	else
		snprintf(parent, sizeof parent, "%.*s", (int)len, dir);
	if ((fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return must ? sh_err_sys(err, errno, "cannot open directory '%s'", parent) : 0;
	if (diskio_fsync(fd) != 0)
		rv = sh_err_sys(err, errno, "cannot fsync directory '%s'", parent);
	close(fd);
	return rv;
}

int diskio_mkdir(const char *dir, struct sh_err *err)
{
	if (mkdir(dir, 0750) == 0)
		return fsync_parent(dir, true, err);
	if (errno != EEXIST)
		return sh_err_sys(err, errno, "cannot create directory '%s'", dir);
	/* an earlier run may have died before its parent's fsync, or failed
	 * it: the name may be in the page cache only */
	return fsync_parent(dir, false, err);
}
