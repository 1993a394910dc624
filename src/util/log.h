/*
 * log: one line per event, to stderr or a file.
 *
 *   2026-11-21T21:03:04.123Z INFO  node-1 server: listening on 127.0.0.1:7472
 *
 * Every line carries a UTC timestamp with milliseconds (from the clock
 * module, so tests can fix it), the level, the node name and the subsystem.
 * The SH_LOG() macro checks the level before any argument is formatted.
 * libevent's own messages are routed in with sh_log_hook_libevent().
 *
 * Thread-safe: each line is one write(2) of at most SH_LOG_LINE_MAX bytes
 * (longer messages are cut and end in "..."); the level is an atomic; the
 * node name is process-wide with a per-thread override for the simulator,
 * which runs many nodes in one process.
 */
#ifndef SHOAL_UTIL_LOG_H
#define SHOAL_UTIL_LOG_H

#include <stdatomic.h>

#include "util/err.h"

enum sh_log_level {
	SH_LOG_DEBUG = 0,
	SH_LOG_INFO = 1,
	SH_LOG_WARN = 2,
	SH_LOG_ERROR = 3,
	SH_LOG_OFF = 4,
};

#define SH_LOG_LINE_MAX 2048

extern _Atomic int sh_log_min_level;

#define SH_LOG(level, subsys, ...)                                                                 \
	do {                                                                                       \
		if ((int)(level) >= atomic_load_explicit(&sh_log_min_level, memory_order_relaxed)) \
			sh_log_write((level), (subsys), __VA_ARGS__);                              \
	} while (0)
#define LOG_DEBUG(subsys, ...) SH_LOG(SH_LOG_DEBUG, subsys, __VA_ARGS__)
#define LOG_INFO(subsys, ...)  SH_LOG(SH_LOG_INFO, subsys, __VA_ARGS__)
#define LOG_WARN(subsys, ...)  SH_LOG(SH_LOG_WARN, subsys, __VA_ARGS__)
#define LOG_ERROR(subsys, ...) SH_LOG(SH_LOG_ERROR, subsys, __VA_ARGS__)

/* Format and write one line unconditionally (use the macros instead). */
void sh_log_write(int level, const char *subsys, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

void sh_log_set_level(enum sh_log_level level);
/* "debug", "info", "warn", "error", "off" -> level; -1 when unknown. */
int sh_log_level_parse(const char *name);
const char *sh_log_level_name(int level);

/* Log to path (appending; created 0640) instead of stderr; NULL or "" means
 * stderr.  Opening the current path again is how the log is reopened after
 * logrotate moved it.  On failure the destination is unchanged. */
int sh_log_open(const char *path, struct sh_err *err);
/* Back to stderr, closing any file. */
void sh_log_close(void);

/* The node name on every line (copied; cut at 63 bytes); "-" until set. */
void sh_log_set_node(const char *name);
/* Per-thread override (NULL to clear); the pointer must stay valid. */
void sh_log_set_thread_node(const char *name);

/* Route libevent's log and fatal callbacks into this log. */
void sh_log_hook_libevent(void);

#endif
