/*
 * log: see log.h.
 *
 * The destination is a file descriptor number that never changes after the
 * first open: reopening dup2()s the new file onto it, so that a line being
 * written by another thread during a reopen goes to one file or the other,
 * never to a closed descriptor.
 */
#include "build.h"

#include "util/log.h"

#include "util/alloc.h"
#include "util/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

_Atomic int sh_log_min_level = SH_LOG_INFO;

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER; /* open/reopen/close only */
static _Atomic int log_fd = STDERR_FILENO;
static char *log_path;
static char node_name[64] = "-";
static _Thread_local const char *thread_node;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};
static const char *const level_tags[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};

static size_t format_prefix(char *buf, size_t size, int level, const char *subsys)
{
	uint64_t ns = sh_clock_wall_ns();
	time_t secs = (time_t)(ns / 1000000000u);
	unsigned ms = (unsigned)(ns / 1000000u % 1000u);
	struct tm tm;
	size_t n;
	int k;

	gmtime_r(&secs, &tm);
	n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	k = snprintf(
		buf + n, size - n, ".%03uZ %s %s %s: ", ms,
		level_tags[level < SH_LOG_DEBUG || level > SH_LOG_ERROR ? SH_LOG_ERROR : level],
		thread_node != NULL ? thread_node : node_name, subsys);
	if (k < 0)
		return n;
	return n + (size_t)k >= size ? size - 1 : n + (size_t)k;
}

void sh_log_write(int level, const char *subsys, const char *fmt, ...)
{
	char line[SH_LOG_LINE_MAX];
	size_t n = format_prefix(line, sizeof line, level, subsys);
	va_list ap;
	int k;

	va_start(ap, fmt);
	k = vsnprintf(line + n, sizeof line - n, fmt, ap);
	va_end(ap);
	if (k < 0)
		k = 0;
	if (n + (size_t)k >= sizeof line - 1) {
		n = sizeof line - 5;
		memcpy(line + n, "...", 3);
		n += 3;
	} else {
		n += (size_t)k;
	}
	line[n++] = '\n';
	/* One write per line; a short write to a full disk loses the line. */
	if (write(atomic_load(&log_fd), line, n) < 0)
		errno = 0;
}

void sh_log_set_level(enum sh_log_level level)
{
	atomic_store(&sh_log_min_level, (int)level);
}

int sh_log_level_parse(const char *name)
{
	for (int i = 0; i <= SH_LOG_OFF; i++)
		if (strcmp(name, level_names[i]) == 0)
			return i;
	return -1;
}

const char *sh_log_level_name(int level)
{
	if (level < SH_LOG_DEBUG || level > SH_LOG_OFF)
		return "?";
	return level_names[level];
}

static int open_path(const char *path, struct sh_err *err)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

	if (fd < 0)
		return sh_err_sys(err, errno, "log: cannot open '%s'", path);
	return fd;
}

/* Make fd the log destination.  Called with log_lock held. */
static int install_fd(int fd, struct sh_err *err)
{
	int cur = atomic_load(&log_fd);

	if (cur == STDERR_FILENO) {
		atomic_store(&log_fd, fd);
		return 0;
	}
	if (dup2(fd, cur) < 0) {
		int e = errno;

		close(fd);
		return sh_err_sys(err, e, "log: dup2");
	}
	close(fd);
	return 0;
}

int sh_log_open(const char *path, struct sh_err *err)
{
	char *copy;
	int fd, rv;

	if (path == NULL || path[0] == '\0') {
		sh_log_close();
		return 0;
	}
	copy = sh_strdup(path);
	if (copy == NULL)
		return sh_err_set(err, SH_ENOMEM, "log: out of memory");
	fd = open_path(path, err);
	if (fd < 0) {
		sh_free(copy);
		return fd;
	}
	pthread_mutex_lock(&log_lock);
	rv = install_fd(fd, err);
	if (rv == 0) {
		sh_free(log_path);
		log_path = copy;
		copy = NULL;
	}
	pthread_mutex_unlock(&log_lock);
	sh_free(copy);
	return rv;
}

void sh_log_close(void)
{
	int fd;

	pthread_mutex_lock(&log_lock);
	fd = atomic_exchange(&log_fd, STDERR_FILENO);
	if (fd != STDERR_FILENO)
		close(fd);
	sh_free(log_path);
	log_path = NULL;
	pthread_mutex_unlock(&log_lock);
}

void sh_log_set_node(const char *name)
{
	snprintf(node_name, sizeof node_name, "%s", name);
}

void sh_log_set_thread_node(const char *name)
{
	thread_node = name;
}

static void libevent_log(int severity, const char *msg)
{
	int level = severity == EVENT_LOG_DEBUG  ? SH_LOG_DEBUG
		    : severity == EVENT_LOG_MSG  ? SH_LOG_INFO
		    : severity == EVENT_LOG_WARN ? SH_LOG_WARN
						 : SH_LOG_ERROR;

	SH_LOG(level, "libevent", "%s", msg);
}

static void libevent_fatal(int code)
{
	sh_log_write(SH_LOG_ERROR, "libevent", "fatal error %d inside libevent; aborting", code);
	abort();
}

void sh_log_hook_libevent(void)
{
	event_set_log_callback(libevent_log);
	event_set_fatal_callback(libevent_fatal);
}
