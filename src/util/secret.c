/*
 * secret: see secret.h.
 */
#include "build.h"

#include "util/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int sh_secret_read(const char *path, const char *what, char *buf, size_t max, size_t *len,
		   struct sh_err *err)
{
	struct stat st;
	ssize_t got;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block */

	if (fd < 0)
		return sh_err_set(err, SH_EIO, "%s %s: %s", what, path, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return sh_err_set(err, SH_EINVAL, "%s %s: not a regular file", what, path);
	}
	if (st.st_mode & 077) {
		close(fd);
		return sh_err_set(err, SH_EINVAL,
				  "%s %s: readable or writable by group or others (mode %03o); "
				  "chmod 600 it",
				  what, path, (unsigned)(st.st_mode & 0777));
	}
	got = read(fd, buf, max + 1);
	close(fd);
	if (got < 0)
		return sh_err_set(err, SH_EIO, "%s %s: %s", what, path, strerror(errno));
	if ((size_t)got > max)
		return sh_err_set(err, SH_EINVAL, "%s %s: larger than %zu bytes", what, path, max);
	*len = (size_t)got;
	return 0;
}
