/*
 * simfs: see simfs.h.
 *
 * Inodes live until simfs_reset (a run is short); a directory holds its
 * current entries, its durable entries and the namespace steps made since
 * its last fsync; a file its current bytes, its durable bytes and the
 * writes made since its last fsync.  Descriptors are numbers from FD_BASE
 * up, far above what the process really has open.
 */
#include "build.h"

#include "sim/simfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define FD_BASE  1000000
#define MAX_FDS  4096
#define ROOT_LEN (sizeof SIMFS_ROOT - 1)

struct ino;

struct dent {
	char *name;
	struct ino *ino;
};

enum step_kind { STEP_LINK, STEP_UNLINK, STEP_RENAME };

/* A namespace change not yet made durable by an fsync of its directory. */
struct step {
	enum step_kind kind;
	char *name, *to; /* RENAME: name -> to */
	struct ino *ino; /* LINK */
};

/* A write (or, with trunc, an ftruncate to off) not yet fsynced. */
struct pw {
	uint64_t off;
	size_t len;
	uint8_t *data;
	bool trunc;
};

struct ino {
	bool dir;
	struct ino *next_all; /* every inode, for reset */
	/* files */
	uint8_t *data, *dur;
	size_t len, dur_len;
	struct pw *pend;
	size_t n_pend;
	/* directories */
	struct dent *ents, *dents; /* current, durable */
	size_t n_ents, n_dents;
	struct step *steps;
	size_t n_steps;
	/* accounting: the subtree's top (e.g. /simfs/n3) */
	struct ino *top;
	uint64_t used;  /* top only: bytes of content under it */
	uint64_t quota; /* top only */
	unsigned fail_fsyncs;
	unsigned fail_dir_fsyncs;
	bool frozen; /* top only: crashed, until simfs_thaw */
};

struct sfd {
	struct ino *ino;
	uint64_t off;
	bool used, append;
};

struct sdir { /* what opendir returns, cast to DIR * */
	uint32_t magic;
	struct ino *ino;
	size_t pos;
	struct dirent de;
	int fd; /* fdopendir: closed by closedir */
};

struct mapping {
	void *addr;
	size_t len;
};

static struct {
	bool ready;
	struct ino *root, *all;
	struct sfd fds[MAX_FDS];
	struct sh_rand *rand;
	struct mapping *maps;
	size_t n_maps;
	struct simfs_stats st;
} fs;

#define SDIR_MAGIC 0x53444952u

/* The real calls (the linker's --wrap gives them). */
int __real_open(const char *path, int flags, ...);
int __real_openat(int dirfd, const char *path, int flags, ...);
int __real_close(int fd);
ssize_t __real_read(int fd, void *buf, size_t n);
ssize_t __real_write(int fd, const void *buf, size_t n);
ssize_t __real_pread(int fd, void *buf, size_t n, off_t off);
ssize_t __real_pwrite(int fd, const void *buf, size_t n, off_t off);
ssize_t __real_pwritev(int fd, const struct iovec *iov, int n, off_t off);
int __real_fsync(int fd);
int __real_fdatasync(int fd);
int __real_ftruncate(int fd, off_t len);
int __real_rename(const char *from, const char *to);
int __real_renameat(int fd1, const char *from, int fd2, const char *to);
int __real_unlink(const char *path);
int __real_unlinkat(int fd, const char *path, int flags);
int __real_mkdir(const char *path, mode_t mode);
DIR *__real_opendir(const char *path);
DIR *__real_fdopendir(int fd);
struct dirent *__real_readdir(DIR *d);
int __real_closedir(DIR *d);
int __real_fstat(int fd, struct stat *st);
int __real_flock(int fd, int op);
int __real_dup(int fd);
int __real_dup2(int fd, int fd2);
void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __real_munmap(void *addr, size_t len);
ssize_t __real_getrandom(void *buf, size_t n, unsigned flags);

/* ------------------------------------------------------------ helpers */

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		abort(); /* a test program: out of memory ends it */
	return p;
}

static void *xrealloc(void *p, size_t n)
{
	if ((p = realloc(p, n ? n : 1)) == NULL)
		abort();
	return p;
}

static char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;

	return memcpy(xmalloc(n), s, n);
}

static uint64_t below(uint64_t n)
{
	return n == 0 || fs.rand == NULL ? 0 : sh_rand_below(fs.rand, n);
}

static struct ino *ino_new(bool dir, struct ino *top)
{
	struct ino *i = calloc(1, sizeof *i);

	if (i == NULL)
		abort();
	i->dir = dir;
	i->top = top;
	i->next_all = fs.all;
	fs.all = i;
	return i;
}

static void ino_free(struct ino *i)
{
	for (size_t k = 0; k < i->n_pend; k++)
		free(i->pend[k].data);
	for (size_t k = 0; k < i->n_ents; k++)
		free(i->ents[k].name);
	for (size_t k = 0; k < i->n_dents; k++)
		free(i->dents[k].name);
	for (size_t k = 0; k < i->n_steps; k++) {
		free(i->steps[k].name);
		free(i->steps[k].to);
	}
	free(i->pend);
	free(i->ents);
	free(i->dents);
	free(i->steps);
	free(i->data);
	free(i->dur);
	free(i);
}

void simfs_reset(void)
{
	struct ino *i, *next;

	for (i = fs.all; i != NULL; i = next) {
		next = i->next_all;
		ino_free(i);
	}
	for (size_t k = 0; k < fs.n_maps; k++)
		free(fs.maps[k].addr);
	free(fs.maps);
	memset(&fs, 0, sizeof fs);
	fs.root = ino_new(true, NULL);
	fs.ready = true;
}

void simfs_set_rand(struct sh_rand *r)
{
	if (!fs.ready)
		simfs_reset();
	fs.rand = r;
}

void simfs_stats(struct simfs_stats *st)
{
	*st = fs.st;
}

/* ------------------------------------------------------------ directories */

static struct dent *dir_find(struct ino *d, const char *name)
{
	for (size_t k = 0; k < d->n_ents; k++)
		if (strcmp(d->ents[k].name, name) == 0)
			return &d->ents[k];
	return NULL;
}

static void ents_add(struct dent **ents, size_t *n, const char *name, struct ino *ino)
{
	*ents = xrealloc(*ents, (*n + 1) * sizeof **ents);
	(*ents)[(*n)++] = (struct dent){xstrdup(name), ino};
}

static bool ents_del(struct dent *ents, size_t *n, const char *name, struct ino **ino)
{
	for (size_t k = 0; k < *n; k++)
		if (strcmp(ents[k].name, name) == 0) {
			if (ino != NULL)
				*ino = ents[k].ino;
			free(ents[k].name);
			ents[k] = ents[--*n];
			return true;
		}
	return false;
}

static void step_add(struct ino *d, enum step_kind kind, const char *name, const char *to,
		     struct ino *ino)
{
	d->steps = xrealloc(d->steps, (d->n_steps + 1) * sizeof *d->steps);
	d->steps[d->n_steps++] = (struct step){kind, xstrdup(name), to ? xstrdup(to) : NULL, ino};
}

/* Apply a namespace step to a list of entries. */
static void step_apply(struct dent **ents, size_t *n, const struct step *s)
{
	struct ino *ino = NULL;

	switch (s->kind) {
	case STEP_LINK:
		ents_del(*ents, n, s->name, NULL);
		ents_add(ents, n, s->name, s->ino);
		break;
	case STEP_UNLINK: ents_del(*ents, n, s->name, NULL); break;
	case STEP_RENAME:
		if (ents_del(*ents, n, s->name, &ino)) {
			ents_del(*ents, n, s->to, NULL);
			ents_add(ents, n, s->to, ino);
		}
		break;
	}
}

static void steps_clear(struct ino *d)
{
	for (size_t k = 0; k < d->n_steps; k++) {
		free(d->steps[k].name);
		free(d->steps[k].to);
	}
	d->n_steps = 0;
}

static void ents_copy(struct dent **to, size_t *n_to, const struct dent *from, size_t n)
{
	for (size_t k = 0; k < *n_to; k++)
		free((*to)[k].name);
	*to = xrealloc(*to, n * sizeof **to);
	for (size_t k = 0; k < n; k++)
		(*to)[k] = (struct dent){xstrdup(from[k].name), from[k].ino};
	*n_to = n;
}

static void dir_sync(struct ino *d)
{
	ents_copy(&d->dents, &d->n_dents, d->ents, d->n_ents);
	steps_clear(d);
}

/* ------------------------------------------------------------ paths */

static bool is_sim_path(const char *p)
{
	return p != NULL && strncmp(p, SIMFS_ROOT, ROOT_LEN) == 0 &&
	       (p[ROOT_LEN] == '\0' || p[ROOT_LEN] == '/');
}

static struct ino *top_or_self(struct ino *i);

/* The descriptor fd (NULL with errno EBADF, or EIO under a crashed
 * subtree). */
static struct sfd *fd_get(int fd)
{
	struct sfd *f;

	if (fd < FD_BASE || fd >= FD_BASE + MAX_FDS || !fs.fds[fd - FD_BASE].used) {
		errno = EBADF;
		return NULL;
	}
	f = &fs.fds[fd - FD_BASE];
	if (top_or_self(f->ino)->frozen) {
		errno = EIO;
		return NULL;
	}
	return f;
}

static bool is_sim_fd(int fd)
{
	return fd >= FD_BASE && fd < FD_BASE + MAX_FDS;
}

/* Walk path components from d; *parent and *last get the last component's
 * directory and name (last points into buf).  Returns the inode named, or
 * NULL (errno ENOENT/ENOTDIR) — with *parent set when only the last
 * component is missing. */
static struct ino *walk(struct ino *d, char *buf, struct ino **parent, char **last)
{
	char *save = NULL, *c = strtok_r(buf, "/", &save), *next;
	struct ino *cur = d;

	*parent = NULL;
	*last = NULL;
	while (c != NULL) {
		struct dent *e;

		next = strtok_r(NULL, "/", &save);
		if (!cur->dir) {
			errno = ENOTDIR;
			return NULL;
		}
		if (strcmp(c, ".") == 0) {
			c = next;
			continue;
		}
		*parent = cur;
		*last = c;
		e = dir_find(cur, c);
		if (e == NULL) {
			if (next != NULL)
				*parent = NULL;
			errno = ENOENT;
			return NULL;
		}
		cur = e->ino;
		c = next;
	}
	return cur;
}

/* Resolve (dirfd, path) to a start inode and the path's rest in buf. */
static struct ino *resolve(int dirfd, const char *path, char *buf, size_t size, struct ino **parent,
			   char **last)
{
	struct ino *start;

	if (path[0] == '/') {
		snprintf(buf, size, "%s", path + ROOT_LEN);
		start = fs.root;
	} else {
		struct sfd *f = fd_get(dirfd);

		*parent = NULL;
		if (f == NULL || !f->ino->dir) {
			if (f != NULL)
				errno = ENOTDIR;
			return NULL;
		}
		snprintf(buf, size, "%s", path);
		start = f->ino;
	}
	return walk(start, buf, parent, last);
}

/* The top of a path's subtree: the first directory below the root. */
static struct ino *top_of(struct ino *parent)
{
	return parent == fs.root ? NULL : parent->top ? parent->top : parent;
}

/* ------------------------------------------------------------ files */

static int fd_alloc(struct ino *ino, bool append)
{
	for (int k = 0; k < MAX_FDS; k++)
		if (!fs.fds[k].used) {
			fs.fds[k] = (struct sfd){ino, 0, true, append};
			return FD_BASE + k;
		}
	errno = EMFILE;
	return -1;
}

static void set_len(struct ino *i, size_t len)
{
	struct ino *top = i->top;

	if (len > i->len) {
		i->data = xrealloc(i->data, len);
		memset(i->data + i->len, 0, len - i->len);
	}
	if (top != NULL)
		top->used = top->used - i->len + len;
	i->len = len;
}

static bool over_quota(struct ino *i, uint64_t new_len)
{
	struct ino *top = i->top;

	return top != NULL && top->quota != 0 && new_len > i->len &&
	       top->used + (new_len - i->len) > top->quota;
}

static void pend_add(struct ino *i, uint64_t off, const void *data, size_t len, bool trunc)
{
	struct pw w = {off, len, NULL, trunc};

	if (!trunc) {
		w.data = xmalloc(len);
		if (len > 0)
			memcpy(w.data, data, len);
	}
	i->pend = xrealloc(i->pend, (i->n_pend + 1) * sizeof *i->pend);
	i->pend[i->n_pend++] = w;
}

static ssize_t file_write(struct ino *i, uint64_t off, const void *data, size_t len)
{
	uint64_t end = off + len;

	if (i->dir) {
		errno = EISDIR;
		return -1;
	}
	if (len == 0)
		return 0;
	if (over_quota(i, end)) {
		fs.st.enospc++;
		errno = ENOSPC;
		return -1;
	}
	if (end > i->len)
		set_len(i, (size_t)end);
	memcpy(i->data + off, data, len);
	pend_add(i, off, data, len, false);
	fs.st.writes++;
	return (ssize_t)len;
}

/* Put one unsynced write (or truncation) on the disk image. */
static void dur_apply(struct ino *i, const struct pw *w)
{
	size_t end = w->trunc ? (size_t)w->off : (size_t)(w->off + w->len);

	if (end > i->dur_len) {
		i->dur = xrealloc(i->dur, end);
		memset(i->dur + i->dur_len, 0, end - i->dur_len);
	}
	if (w->trunc)
		i->dur_len = end;
	else if (w->len > 0)
		memcpy(i->dur + w->off, w->data, w->len);
	if (end > i->dur_len)
		i->dur_len = end;
}

/* The first n unsynced writes reach the disk; the others never will (after
 * a failed fsync Linux marks the pages clean: the page cache still shows
 * them, a later fsync succeeds without them, a power loss loses them). */
static void file_settle(struct ino *i, size_t n)
{
	for (size_t k = 0; k < i->n_pend; k++) {
		if (k < n)
			dur_apply(i, &i->pend[k]);
		free(i->pend[k].data);
	}
	i->n_pend = 0;
}

static int do_sync(struct ino *i)
{
	struct ino *top = i->top ? i->top : i;

	fs.st.fsyncs++;
	if (i->dir && top->fail_dir_fsyncs > 0) {
		top->fail_dir_fsyncs--;
		fs.st.fsync_failures++;
		errno = EIO;
		return -1;
	}
	if (top->fail_fsyncs > 0) {
		top->fail_fsyncs--;
		fs.st.fsync_failures++;
		if (!i->dir) /* some of the writeback happened before the error */
			file_settle(i, (size_t)below(i->n_pend + 1));
		errno = EIO;
		return -1;
	}
	if (i->dir)
		dir_sync(i);
	else
		file_settle(i, i->n_pend);
	return 0;
}

/* The inode's subtree top (itself for a top). */
static struct ino *top_or_self(struct ino *i)
{
	return i->top != NULL ? i->top : i;
}

/* I/O under a crashed subtree fails until it is thawed: the crashed
 * instance is freed through its normal paths, whose I/O must not land. */
static bool frozen(struct ino *i)
{
	if (i != NULL && top_or_self(i)->frozen) {
		errno = EIO;
		return true;
	}
	return false;
}

/* ------------------------------------------------------------ crash */

static void crash_file(struct ino *i)
{
	size_t keep = (size_t)below(i->n_pend + 1);

	free(i->data);
	i->data = NULL;
	i->len = 0;
	set_len(i, i->dur_len);
	if (i->dur_len > 0)
		memcpy(i->data, i->dur, i->dur_len);
	for (size_t k = 0; k < keep + 1 && k < i->n_pend; k++) {
		const struct pw *w = &i->pend[k];
		size_t len = w->len;

		if (k == keep) { /* the next one, maybe torn */
			if (w->trunc || below(2) == 0)
				break;
			len = (size_t)below(len);
			fs.st.torn++;
		}
		if (w->trunc) {
			set_len(i, (size_t)w->off);
			continue;
		}
		if (len == 0)
			continue;
		if (w->off + len > i->len)
			set_len(i, (size_t)(w->off + len));
		memcpy(i->data + w->off, w->data, len);
	}
	/* what survived is the disk now */
	i->dur = xrealloc(i->dur, i->len);
	if (i->len > 0)
		memcpy(i->dur, i->data, i->len);
	i->dur_len = i->len;
	file_settle(i, 0);
}

static void crash_dir(struct ino *d)
{
	size_t keep = (size_t)below(d->n_steps + 1);
	struct dent *ents = NULL;
	size_t n = 0;

	ents_copy(&ents, &n, d->dents, d->n_dents);
	for (size_t k = 0; k < keep; k++)
		step_apply(&ents, &n, &d->steps[k]);
	for (size_t k = 0; k < d->n_ents; k++)
		free(d->ents[k].name);
	free(d->ents);
	d->ents = ents;
	d->n_ents = n;
	dir_sync(d);
}

static struct ino *lookup_dir(const char *dir)
{
	char buf[4096], *last;
	struct ino *parent;

	if (!is_sim_path(dir))
		return NULL;
	return resolve(-1, dir, buf, sizeof buf, &parent, &last);
}

/* Close every descriptor under t and freeze it; a machine crash also
 * loses what was not synced, a killed process nothing it wrote (its
 * writes stay in the page cache, unsynced: the next life's fsync of the
 * file makes them durable, a power loss before it may lose them). */
static void stop_subtree(struct ino *t, bool machine)
{
	fs.st.crashes++;
	t->frozen = true;
	for (int k = 0; k < MAX_FDS; k++)
		if (fs.fds[k].used && top_or_self(fs.fds[k].ino) == t)
			fs.fds[k].used = false;
	for (struct ino *i = fs.all; i != NULL && machine; i = i->next_all) {
		if (top_or_self(i) != t)
			continue;
		if (i->dir)
			crash_dir(i);
		else
			crash_file(i);
	}
}

void simfs_crash(const char *dir)
{
	struct ino *t = lookup_dir(dir);

	if (t != NULL)
		stop_subtree(t, true);
}

void simfs_kill(const char *dir)
{
	struct ino *t = lookup_dir(dir);

	if (t != NULL)
		stop_subtree(t, false);
}

void simfs_thaw(const char *dir)
{
	struct ino *t = lookup_dir(dir);

	if (t != NULL)
		t->frozen = false;
}

void simfs_fail_dir_fsync(const char *dir, unsigned n)
{
	struct ino *t = lookup_dir(dir);

	if (t != NULL)
		top_or_self(t)->fail_dir_fsyncs = n;
}

void simfs_fail_fsync(const char *dir, unsigned n)
{
	struct ino *t = lookup_dir(dir);

	if (t != NULL)
		top_or_self(t)->fail_fsyncs = n;
}

void simfs_set_quota(const char *dir, uint64_t quota)
{
	struct ino *t = lookup_dir(dir);

	if (t != NULL)
		top_or_self(t)->quota = quota;
}

uint64_t simfs_used(const char *dir)
{
	struct ino *t = lookup_dir(dir);

	return t != NULL ? top_or_self(t)->used : 0;
}

size_t simfs_open_fds(const char *dir)
{
	struct ino *t = lookup_dir(dir);
	size_t n = 0;

	for (int k = 0; t != NULL && k < MAX_FDS; k++)
		n += fs.fds[k].used && top_or_self(fs.fds[k].ino) == top_or_self(t);
	return n;
}

int simfs_mkdir_durable(const char *dir)
{
	char buf[4096], *save = NULL, *c;
	struct ino *cur;

	if (!fs.ready)
		simfs_reset();
	if (!is_sim_path(dir))
		return -1;
	snprintf(buf, sizeof buf, "%s", dir + ROOT_LEN);
	cur = fs.root;
	for (c = strtok_r(buf, "/", &save); c != NULL; c = strtok_r(NULL, "/", &save)) {
		struct dent *e = dir_find(cur, c);

		if (e == NULL) {
			struct ino *d = ino_new(true, top_of(cur));

			ents_add(&cur->ents, &cur->n_ents, c, d);
			dir_sync(cur);
			cur = d;
		} else {
			cur = e->ino;
		}
	}
	return 0;
}

/* ------------------------------------------------------------ the wrappers */

static int sim_open(int dirfd, const char *path, int flags, mode_t mode)
{
	char buf[4096], *last;
	struct ino *parent, *i = resolve(dirfd, path, buf, sizeof buf, &parent, &last);

	(void)mode;
	if (frozen(i != NULL ? i : parent))
		return -1;
	if (i == NULL) {
		if (errno != ENOENT || !(flags & O_CREAT) || parent == NULL)
			return -1;
		i = ino_new(false, top_of(parent));
		ents_add(&parent->ents, &parent->n_ents, last, i);
		step_add(parent, STEP_LINK, last, NULL, i);
	} else if ((flags & O_CREAT) && (flags & O_EXCL)) {
		errno = EEXIST;
		return -1;
	}
	if ((flags & O_DIRECTORY) && !i->dir) {
		errno = ENOTDIR;
		return -1;
	}
	if ((flags & O_TRUNC) && !i->dir && i->len > 0) {
		set_len(i, 0);
		pend_add(i, 0, NULL, 0, true);
	}
	return fd_alloc(i, (flags & O_APPEND) != 0);
}

int __wrap_open(const char *path, int flags, ...);
int __wrap_open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	va_list ap;

	if (flags & O_CREAT) {
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	if (is_sim_path(path))
		return sim_open(-1, path, flags, mode);
	return __real_open(path, flags, mode);
}

int __wrap_openat(int dirfd, const char *path, int flags, ...);
int __wrap_openat(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;
	va_list ap;

	if (flags & O_CREAT) {
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	if (is_sim_path(path) || (path[0] != '/' && is_sim_fd(dirfd)))
		return sim_open(dirfd, path, flags, mode);
	return __real_openat(dirfd, path, flags, mode);
}

int __wrap_close(int fd);
int __wrap_close(int fd)
{
	struct sfd *f = fd_get(fd);

	if (!is_sim_fd(fd))
		return __real_close(fd);
	if (f == NULL)
		return -1;
	f->used = false;
	return 0;
}

static ssize_t sim_pread(struct sfd *f, void *buf, size_t n, uint64_t off)
{
	struct ino *i = f->ino;

	if (i->dir) {
		errno = EISDIR;
		return -1;
	}
	if (off >= i->len)
		return 0;
	if (n > i->len - off)
		n = (size_t)(i->len - off);
	if (n > 0)
		memcpy(buf, i->data + off, n);
	return (ssize_t)n;
}

ssize_t __wrap_read(int fd, void *buf, size_t n);
ssize_t __wrap_read(int fd, void *buf, size_t n)
{
	struct sfd *f = fd_get(fd);
	ssize_t got;

	if (!is_sim_fd(fd))
		return __real_read(fd, buf, n);
	if (f == NULL)
		return -1;
	if ((got = sim_pread(f, buf, n, f->off)) > 0)
		f->off += (uint64_t)got;
	return got;
}

ssize_t __wrap_pread(int fd, void *buf, size_t n, off_t off);
ssize_t __wrap_pread(int fd, void *buf, size_t n, off_t off)
{
	struct sfd *f = fd_get(fd);

	if (!is_sim_fd(fd))
		return __real_pread(fd, buf, n, off);
	if (f == NULL || off < 0) {
		if (f != NULL)
			errno = EINVAL;
		return -1;
	}
	return sim_pread(f, buf, n, (uint64_t)off);
}

ssize_t __wrap_write(int fd, const void *buf, size_t n);
ssize_t __wrap_write(int fd, const void *buf, size_t n)
{
	struct sfd *f = fd_get(fd);
	ssize_t got;

	if (!is_sim_fd(fd))
		return __real_write(fd, buf, n);
	if (f == NULL)
		return -1;
	if (f->append)
		f->off = f->ino->len;
	if ((got = file_write(f->ino, f->off, buf, n)) > 0)
		f->off += (uint64_t)got;
	return got;
}

ssize_t __wrap_pwrite(int fd, const void *buf, size_t n, off_t off);
ssize_t __wrap_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	struct sfd *f = fd_get(fd);

	if (!is_sim_fd(fd))
		return __real_pwrite(fd, buf, n, off);
	if (f == NULL || off < 0) {
		if (f != NULL)
			errno = EINVAL;
		return -1;
	}
	return file_write(f->ino, (uint64_t)off, buf, n);
}

ssize_t __wrap_pwritev(int fd, const struct iovec *iov, int n, off_t off);
ssize_t __wrap_pwritev(int fd, const struct iovec *iov, int n, off_t off)
{
	struct sfd *f = fd_get(fd);
	size_t total = 0;

	if (!is_sim_fd(fd))
		return __real_pwritev(fd, iov, n, off);
	if (f == NULL || off < 0) {
		if (f != NULL)
			errno = EINVAL;
		return -1;
	}
	for (int k = 0; k < n; k++)
		total += iov[k].iov_len;
	if (over_quota(f->ino, (uint64_t)off + total)) {
		fs.st.enospc++;
		errno = ENOSPC;
		return -1;
	}
	for (int k = 0; k < n; k++) {
		if (file_write(f->ino, (uint64_t)off, iov[k].iov_base, iov[k].iov_len) < 0)
			return -1;
		off += (off_t)iov[k].iov_len;
	}
	return (ssize_t)total;
}

int __wrap_fsync(int fd);
int __wrap_fsync(int fd)
{
	struct sfd *f = fd_get(fd);

	if (!is_sim_fd(fd))
		return __real_fsync(fd);
	if (f == NULL)
		return -1;
	return do_sync(f->ino);
}

int __wrap_fdatasync(int fd);
int __wrap_fdatasync(int fd)
{
	return is_sim_fd(fd) ? __wrap_fsync(fd) : __real_fdatasync(fd);
}

int __wrap_ftruncate(int fd, off_t len);
int __wrap_ftruncate(int fd, off_t len)
{
	struct sfd *f = fd_get(fd);

	if (!is_sim_fd(fd))
		return __real_ftruncate(fd, len);
	if (f == NULL || len < 0 || f->ino->dir) {
		if (f != NULL)
			errno = EINVAL;
		return -1;
	}
	if (over_quota(f->ino, (uint64_t)len)) {
		fs.st.enospc++;
		errno = ENOSPC;
		return -1;
	}
	set_len(f->ino, (size_t)len);
	pend_add(f->ino, (uint64_t)len, NULL, 0, true);
	return 0;
}

static int sim_rename(int fd1, const char *from, int fd2, const char *to)
{
	char b1[4096], b2[4096], *l1, *l2;
	struct ino *p1, *p2, *i = resolve(fd1, from, b1, sizeof b1, &p1, &l1);
	struct dent *e;

	resolve(fd2, to, b2, sizeof b2, &p2, &l2);
	if (i == NULL || p2 == NULL || frozen(p1))
		return -1;
	if (p1 != p2) {
		errno = EXDEV; /* the storage renames within one directory */
		return -1;
	}
	ents_del(p1->ents, &p1->n_ents, l1, NULL);
	if ((e = dir_find(p1, l2)) != NULL)
		e->ino = i;
	else
		ents_add(&p1->ents, &p1->n_ents, l2, i);
	step_add(p1, STEP_RENAME, l1, l2, NULL);
	return 0;
}

int __wrap_rename(const char *from, const char *to);
int __wrap_rename(const char *from, const char *to)
{
	if (is_sim_path(from) || is_sim_path(to))
		return sim_rename(-1, from, -1, to);
	return __real_rename(from, to);
}

int __wrap_renameat(int fd1, const char *from, int fd2, const char *to);
int __wrap_renameat(int fd1, const char *from, int fd2, const char *to)
{
	if (is_sim_path(from) || is_sim_fd(fd1) || is_sim_path(to) || is_sim_fd(fd2))
		return sim_rename(fd1, from, fd2, to);
	return __real_renameat(fd1, from, fd2, to);
}

static int sim_unlink(int dirfd, const char *path, bool rmdir)
{
	char buf[4096], *last;
	struct ino *parent, *i = resolve(dirfd, path, buf, sizeof buf, &parent, &last);

	if (i == NULL || frozen(parent))
		return -1;
	if (i->dir != rmdir || (rmdir && i->n_ents > 0)) {
		errno = i->dir ? (rmdir ? ENOTEMPTY : EISDIR) : ENOTDIR;
		return -1;
	}
	ents_del(parent->ents, &parent->n_ents, last, NULL);
	step_add(parent, STEP_UNLINK, last, NULL, NULL);
	return 0;
}

int __wrap_unlink(const char *path);
int __wrap_unlink(const char *path)
{
	return is_sim_path(path) ? sim_unlink(-1, path, false) : __real_unlink(path);
}

int __wrap_unlinkat(int fd, const char *path, int flags);
int __wrap_unlinkat(int fd, const char *path, int flags)
{
	if (is_sim_path(path) || (path[0] != '/' && is_sim_fd(fd)))
		return sim_unlink(fd, path, (flags & AT_REMOVEDIR) != 0);
	return __real_unlinkat(fd, path, flags);
}

int __wrap_mkdir(const char *path, mode_t mode);
int __wrap_mkdir(const char *path, mode_t mode)
{
	char buf[4096], *last;
	struct ino *parent, *i, *d;

	if (!is_sim_path(path))
		return __real_mkdir(path, mode);
	if (!fs.ready)
		simfs_reset();
	if ((i = resolve(-1, path, buf, sizeof buf, &parent, &last)) != NULL) {
		errno = EEXIST;
		return -1;
	}
	if (parent == NULL || frozen(parent))
		return -1;
	d = ino_new(true, top_of(parent));
	ents_add(&parent->ents, &parent->n_ents, last, d);
	step_add(parent, STEP_LINK, last, NULL, d);
	return 0;
}

static DIR *sim_opendir(struct ino *i, int fd)
{
	struct sdir *d;

	if (!i->dir) {
		errno = ENOTDIR;
		return NULL;
	}
	d = calloc(1, sizeof *d);
	if (d == NULL)
		return NULL;
	d->magic = SDIR_MAGIC;
	d->ino = i;
	d->fd = fd;
	return (DIR *)(void *)d;
}

DIR *__wrap_opendir(const char *path);
DIR *__wrap_opendir(const char *path)
{
	char buf[4096], *last;
	struct ino *parent, *i;

	if (!is_sim_path(path))
		return __real_opendir(path);
	if ((i = resolve(-1, path, buf, sizeof buf, &parent, &last)) == NULL || frozen(i))
		return NULL;
	return sim_opendir(i, -1);
}

DIR *__wrap_fdopendir(int fd);
DIR *__wrap_fdopendir(int fd)
{
	struct sfd *f = fd_get(fd);

	if (!is_sim_fd(fd))
		return __real_fdopendir(fd);
	if (f == NULL)
		return NULL;
	return sim_opendir(f->ino, fd);
}

static struct sdir *as_sdir(DIR *d)
{
	struct sdir *s = (struct sdir *)(void *)d;

	/* a real DIR starts with an int file descriptor, never this value */
	return s != NULL && s->magic == SDIR_MAGIC ? s : NULL;
}

struct dirent *__wrap_readdir(DIR *d);
struct dirent *__wrap_readdir(DIR *d)
{
	struct sdir *s = as_sdir(d);
	const struct dent *e;

	if (s == NULL)
		return __real_readdir(d);
	if (s->pos >= s->ino->n_ents)
		return NULL;
	e = &s->ino->ents[s->pos++];
	memset(&s->de, 0, sizeof s->de);
	snprintf(s->de.d_name, sizeof s->de.d_name, "%s", e->name);
	s->de.d_type = e->ino->dir ? DT_DIR : DT_REG;
	return &s->de;
}

int __wrap_closedir(DIR *d);
int __wrap_closedir(DIR *d)
{
	struct sdir *s = as_sdir(d);

	if (s == NULL)
		return __real_closedir(d);
	if (s->fd >= 0)
		__wrap_close(s->fd);
	s->magic = 0;
	free(s);
	return 0;
}

int __wrap_fstat(int fd, struct stat *st);
int __wrap_fstat(int fd, struct stat *st)
{
	struct sfd *f = fd_get(fd);

	if (!is_sim_fd(fd))
		return __real_fstat(fd, st);
	if (f == NULL)
		return -1;
	memset(st, 0, sizeof *st);
	st->st_mode = f->ino->dir ? (S_IFDIR | 0750) : (S_IFREG | 0640);
	st->st_size = (off_t)f->ino->len;
	st->st_nlink = 1;
	st->st_blksize = 4096;
	return 0;
}

int __wrap_flock(int fd, int op);
int __wrap_flock(int fd, int op)
{
	if (!is_sim_fd(fd))
		return __real_flock(fd, op);
	return fd_get(fd) != NULL ? 0 : -1;
}

int __wrap_dup(int fd);
int __wrap_dup(int fd)
{
	struct sfd *f = fd_get(fd);

	if (!is_sim_fd(fd))
		return __real_dup(fd);
	if (f == NULL)
		return -1;
	return fd_alloc(f->ino, f->append);
}

int __wrap_dup2(int fd, int fd2);
int __wrap_dup2(int fd, int fd2)
{
	if (is_sim_fd(fd) || is_sim_fd(fd2)) {
		errno = EINVAL; /* the storage never does this */
		return -1;
	}
	return __real_dup2(fd, fd2);
}

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	struct sfd *f = fd_get(fd);
	void *copy;

	if (!is_sim_fd(fd) || (flags & MAP_ANONYMOUS))
		return __real_mmap(addr, len, prot, flags, fd, off);
	if (f == NULL || (prot & PROT_WRITE) || off < 0) {
		if (f != NULL)
			errno = EINVAL;
		return MAP_FAILED;
	}
	copy = calloc(1, len ? len : 1);
	if (copy == NULL) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	if ((uint64_t)off < f->ino->len)
		memcpy(copy, f->ino->data + off,
		       f->ino->len - (uint64_t)off < len ? f->ino->len - (size_t)off : len);
	fs.maps = xrealloc(fs.maps, (fs.n_maps + 1) * sizeof *fs.maps);
	fs.maps[fs.n_maps++] = (struct mapping){copy, len};
	return copy;
}

int __wrap_munmap(void *addr, size_t len);
int __wrap_munmap(void *addr, size_t len)
{
	for (size_t k = 0; k < fs.n_maps; k++)
		if (fs.maps[k].addr == addr) {
			free(addr);
			fs.maps[k] = fs.maps[--fs.n_maps];
			return 0;
		}
	return __real_munmap(addr, len);
}

ssize_t __wrap_getrandom(void *buf, size_t n, unsigned flags);
ssize_t __wrap_getrandom(void *buf, size_t n, unsigned flags)
{
	uint8_t *p = buf;

	if (fs.rand == NULL)
		return __real_getrandom(buf, n, flags);
	for (size_t k = 0; k < n; k++)
		p[k] = (uint8_t)sh_rand_u64(fs.rand);
	return (ssize_t)n;
}
