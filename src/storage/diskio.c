/*
 * diskio: see diskio.h.
 */
#include "build.h"

#include "storage/diskio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
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

/* The directory that holds dir's name, into parent (cap bytes): dir
 * without its last component, "." when it has none, dir/.. when that
 * component is "." or "..".  0, or -1 when it does not fit. */
static int parent_of(const char *dir, char *parent, size_t cap)
{
	size_t len = strlen(dir), end;
	int n;

	while (len > 1 && dir[len - 1] == '/')
		len--;
	end = len;
	while (len > 0 && dir[len - 1] != '/')
		len--;
	if ((end - len == 1 && dir[len] == '.') ||
	    (end - len == 2 && dir[len] == '.' && dir[len + 1] == '.'))
		n = snprintf(parent, cap, "%.*s/..", (int)end, dir);
	else {
		while (len > 1 && dir[len - 1] == '/')
			len--;
		n = len == 0 ? snprintf(parent, cap, ".")
			     : snprintf(parent, cap, "%.*s", (int)len, dir);
	}
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* Make dir's name durable: an fsync of its parent, or, when the parent
 * cannot be opened (writable but not readable), a syncfs of the file
 * system that holds dir. */
static int sync_name(const char *dir, struct sh_err *err)
{
	char parent[4096];
	int fd, rv = 0;

	if (parent_of(dir, parent, sizeof parent) != 0)
		return sh_err_set(err, SH_EINVAL, "path too long: '%s'", dir);
	if ((fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		if (diskio_fsync(fd) != 0)
			rv = sh_err_sys(err, errno,
					"cannot fsync directory '%s' (the parent of '%s')", parent,
					dir);
		close(fd);
		return rv;
	}
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || syncfs(fd) != 0)
		rv = sh_err_sys(err, errno,
				"cannot make directory '%s' durable (its parent '%s' cannot be "
				"opened, nor its file system synced)",
				dir, parent);
	if (fd >= 0)
		close(fd);
	return rv;
}

int diskio_mkdir(const char *dir, struct sh_err *err)
{
	struct sh_err ignored;

	if (mkdir(dir, 0750) == 0)
		return sync_name(dir, err);
	if (errno != EEXIST)
		return sh_err_sys(err, errno, "cannot create directory '%s'", dir);
	/* An earlier run may have died before that sync, or failed it: the
	 * name may be in the page cache only.  Best effort: a directory on a
	 * file system that cannot fsync one (squashfs, a read-only or
	 * aborted one) was usable before, and still is. */
	(void)sync_name(dir, &ignored);
	return 0;
}
