/*
 * datadir: see datadir.h and doc/storage-format.md ("Data directory").
 */
#include "build.h"

#include "storage/datadir.h"

#include "storage/diskio.h"
#include "util/alloc.h"
#include "util/log.h"
#include "util/rand.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define NODE_ID_FILE "node.id"
#define LOCK_FILE    "LOCK"
#define CLUSTER_FILE "cluster.id"

struct sh_datadir {
	char *path;
	int dir_fd;
	int lock_fd;
	uint64_t node_id;
	uint64_t cluster_id;
};

/* mkdir -p, 0750 for what it creates; each directory on the way durable
 * in its parent (diskio_mkdir: an earlier run may have made them and
 * died before their parents' fsync). */
static int make_dirs(const char *path, struct sh_err *err)
{
	char *copy = sh_strdup(path);
	int rv = 0;

	if (copy == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	for (char *p = copy + 1; rv == 0; p++) {
		char c = *p;

		if (c != '/' && c != '\0')
			continue;
		*p = '\0';
		rv = diskio_mkdir(copy, err); /* an existing one too: see diskio.h */
		*p = c;
		if (c == '\0')
			break;
	}
	sh_free(copy);
	return rv;
}

static int take_lock(struct sh_datadir *d, struct sh_err *err)
{
	char pid[32];
	ssize_t n;
	int len;

	d->lock_fd = openat(d->dir_fd, LOCK_FILE, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (d->lock_fd < 0)
		return sh_err_sys(err, errno, "cannot open '%s/%s'", d->path, LOCK_FILE);
	if (flock(d->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;

		if (e != EWOULDBLOCK)
			return sh_err_sys(err, e, "cannot lock '%s/%s'", d->path, LOCK_FILE);
		n = pread(d->lock_fd, pid, sizeof pid - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		return sh_err_set(err, SH_EBUSY,
				  "data dir '%s' is in use by another shoald (pid %s); "
				  "each node needs its own data dir",
				  d->path, pid[0] ? pid : "unknown");
	}
	len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (ftruncate(d->lock_fd, 0) != 0 || pwrite(d->lock_fd, pid, (size_t)len, 0) != len)
		return sh_err_sys(err, errno, "cannot write '%s/%s'", d->path, LOCK_FILE);
	return 0;
}

int sh_datadir_write_file(struct sh_datadir *d, const char *name, const void *buf, size_t len,
			  struct sh_err *err)
{
	char tmp[256];
	int fd, rv = 0;

	snprintf(tmp, sizeof tmp, "%s.tmp", name);
	fd = openat(d->dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		return sh_err_sys(err, errno, "cannot create '%s/%s'", d->path, tmp);
	if (write(fd, buf, len) != (ssize_t)len || diskio_fsync(fd) != 0)
		rv = sh_err_sys(err, errno ? errno : EIO, "cannot write '%s/%s'", d->path, tmp);
	if (close(fd) != 0 && rv == 0)
		rv = sh_err_sys(err, errno, "cannot write '%s/%s'", d->path, tmp);
	if (rv == 0 && renameat(d->dir_fd, tmp, d->dir_fd, name) != 0)
		rv = sh_err_sys(err, errno, "cannot rename '%s' to '%s' in '%s'", tmp, name,
				d->path);
	if (rv == 0 && diskio_fsync(d->dir_fd) != 0)
		rv = sh_err_sys(err, errno, "cannot fsync directory '%s'", d->path);
	if (rv != 0)
		unlinkat(d->dir_fd, tmp, 0);
	return rv;
}

int sh_datadir_read_file(struct sh_datadir *d, const char *name, char *buf, size_t cap, size_t *len,
			 struct sh_err *err)
{
	ssize_t n;
	int fd = openat(d->dir_fd, name, O_RDONLY | O_CLOEXEC);

	*len = 0;
	if (fd < 0 && errno == ENOENT)
		return SH_ENOTFOUND;
	if (fd < 0)
		return sh_err_sys(err, errno, "cannot open '%s/%s'", d->path, name);
	n = read(fd, buf, cap);
	close(fd);
	if (n < 0)
		return sh_err_sys(err, errno, "cannot read '%s/%s'", d->path, name);
	if ((size_t)n == cap)
		return sh_err_set(err, SH_ECORRUPT, "'%s/%s' is longer than %zu bytes", d->path,
				  name, cap - 1);
	*len = (size_t)n;
	return 0;
}

/* A file of exactly 16 lowercase hex digits and a newline (node.id,
 * cluster.id): *v, or 0 when the file does not exist. */
static int parse_hex(struct sh_datadir *d, const char *name, const char *text, ssize_t n,
		     uint64_t *out, struct sh_err *err)
{
	uint64_t v = 0;

	if (n != 17 || text[16] != '\n')
		return sh_err_set(err, SH_ECORRUPT,
				  "'%s/%s' is corrupt: expected 16 hex digits and a newline, "
				  "found %zd bytes",
				  d->path, name, n);
	for (int i = 0; i < 16; i++) {
		char c = text[i];
		int digit = c >= '0' && c <= '9'   ? c - '0'
			    : c >= 'a' && c <= 'f' ? c - 'a' + 10
						   : -1;

		if (digit < 0)
			return sh_err_set(err, SH_ECORRUPT,
					  "'%s/%s' is corrupt: byte %d is not a hex digit", d->path,
					  name, i);
		v = v << 4 | (uint64_t)digit;
	}
	if (v == 0)
		return sh_err_set(err, SH_ECORRUPT, "'%s/%s' is corrupt: id 0", d->path, name);
	*out = v;
	return 0;
}

static int read_hex(struct sh_datadir *d, const char *name, uint64_t *out, struct sh_err *err)
{
	char text[64];
	ssize_t n;
	int fd = openat(d->dir_fd, name, O_RDONLY | O_CLOEXEC);

	*out = 0;
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0)
		return sh_err_sys(err, errno, "cannot open '%s/%s'", d->path, name);
	n = read(fd, text, sizeof text);
	close(fd);
	if (n < 0)
		return sh_err_sys(err, errno, "cannot read '%s/%s'", d->path, name);
	return parse_hex(d, name, text, n, out, err);
}

static int write_hex(struct sh_datadir *d, const char *name, uint64_t v, struct sh_err *err)
{
	char text[32];

	snprintf(text, sizeof text, "%016" PRIx64 "\n", v);
	return sh_datadir_write_file(d, name, text, 17, err);
}

static int load_node_id(struct sh_datadir *d, struct sh_err *err)
{
	int rv = read_hex(d, NODE_ID_FILE, &d->node_id, err);

	if (rv != 0 || d->node_id != 0)
		return rv;
	do {
		if ((rv = sh_rand_os(&d->node_id)) != 0)
			return sh_err_set(err, rv, "cannot read random bytes for a node id");
	} while (d->node_id == 0);
	if ((rv = write_hex(d, NODE_ID_FILE, d->node_id, err)) != 0)
		return rv;
	LOG_INFO("datadir", "created node id %016" PRIx64 " in '%s'", d->node_id, d->path);
	return 0;
}

int sh_datadir_open(const char *path, struct sh_datadir **out, struct sh_err *err)
{
	struct sh_datadir *d = sh_calloc(1, sizeof *d);
	int rv;

	if (d == NULL || (d->path = sh_strdup(path)) == NULL) {
		sh_free(d);
		return sh_err_set(err, SH_ENOMEM, "datadir: out of memory");
	}
	d->dir_fd = d->lock_fd = -1;
	if ((rv = make_dirs(path, err)) != 0)
		goto err;
	d->dir_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->dir_fd < 0) {
		rv = sh_err_sys(err, errno, "cannot open directory '%s'", path);
		goto err;
	}
	if ((rv = take_lock(d, err)) != 0 || (rv = load_node_id(d, err)) != 0 ||
	    (rv = read_hex(d, CLUSTER_FILE, &d->cluster_id, err)) != 0)
		goto err;
	/* A file renamed into place whose directory fsync failed (or never
	 * came: the process died) is read from the page cache and acted on —
	 * raft.state's vote, the cluster id — and a power loss would take the
	 * rename back (whole-node simulator, boot-chaos-4 seed 1050: a lost
	 * vote, two leaders in one term).  Make every name here durable
	 * before the node acts on any of them. */
	if (diskio_fsync(d->dir_fd) != 0) {
		rv = sh_err_sys(err, errno, "cannot fsync directory '%s'", path);
		goto err;
	}
	*out = d;
	return 0;
err:
	sh_datadir_close(d);
	return sh_err_wrap(err, rv, "datadir");
}

void sh_datadir_close(struct sh_datadir *d)
{
	if (d == NULL)
		return;
	if (d->lock_fd >= 0)
		close(d->lock_fd);
	if (d->dir_fd >= 0)
		close(d->dir_fd);
	sh_free(d->path);
	sh_free(d);
}

uint64_t sh_datadir_node_id(const struct sh_datadir *d)
{
	return d->node_id;
}

const char *sh_datadir_path(const struct sh_datadir *d)
{
	return d->path;
}

int sh_datadir_fd(const struct sh_datadir *d)
{
	return d->dir_fd;
}

uint64_t sh_datadir_cluster_id(const struct sh_datadir *d)
{
	return d->cluster_id;
}

int sh_datadir_set_cluster_id(struct sh_datadir *d, uint64_t id, struct sh_err *err)
{
	int rv;

	if (id == 0 || d->cluster_id != 0)
		return sh_err_set(err, SH_EINVAL, "datadir: the cluster id is set once, nonzero");
	if ((rv = write_hex(d, CLUSTER_FILE, id, err)) != 0)
		return rv;
	d->cluster_id = id;
	return 0;
}
