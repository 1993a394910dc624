/*
 * err: the error convention of shoal (STYLE.md "Errors").
 *
 * A function that can fail returns 0 or a negative SH_E* code and fills a
 * caller-owned struct sh_err with a human-readable message.  Each layer that
 * passes an error up prefixes its own context with sh_err_wrap(), so that the
 * final message reads outside-in:
 *
 *     "config: /etc/shoald.toml:12:1: key 'log.level': unknown value 'loud'"
 *
 *     if ((rv = toml_parse(...)) != 0)
 *             return sh_err_wrap(err, rv, "config");
 *
 * A NULL struct sh_err pointer is accepted everywhere and means "the caller
 * only wants the code".  The message is always NUL-terminated and truncated
 * (never overflowed) when too long.  Thread-safe: no shared state.
 */
#ifndef SHOAL_UTIL_ERR_H
#define SHOAL_UTIL_ERR_H

#include <stdarg.h>

enum {
	SH_OK = 0,
	SH_ENOMEM = -1,         /* allocation failed */
	SH_EINVAL = -2,         /* invalid argument or malformed input */
	SH_EIO = -3,            /* an operating system call failed */
	SH_ENOTFOUND = -4,      /* no such thing */
	SH_EEXIST = -5,         /* already exists */
	SH_ECORRUPT = -6,       /* stored data fails verification */
	SH_EBUSY = -7,          /* resource held by someone else */
	SH_ERANGE = -8,         /* a value outside its allowed range */
	SH_ENOSPC = -9,         /* no space left */
	SH_EUNAVAIL = -10,      /* not possible now, may be later */
	SH_ETIMEDOUT = -11,     /* deadline passed */
	SH_ETOOBIG = -12,       /* exceeds a configured limit */
	SH_ESHUTDOWN = -13,     /* the component is stopping */
	SH_EUNSUPPORTED = -14,  /* valid request for something not built */
	SH_EUNKNOWN = -15,      /* the outcome is unknown: it may or may not have happened */
	SH_ESTALE = -16,        /* superseded: a newer request of the same client came first */
	SH_ESESSION = -17,      /* the client session is not held (expired or dropped) */
	SH_ELAST = SH_ESESSION, /* the lowest code (a peer's codes are checked against it) */
};

#define SH_ERRMSG_SIZE 512

struct sh_err {
	int code;
	char msg[SH_ERRMSG_SIZE];
};

/* Reset to "no error". */
void sh_err_clear(struct sh_err *e);

/* Set code and message; returns code, so that "return sh_err_set(...)" works. */
int sh_err_set(struct sh_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int sh_err_setv(struct sh_err *e, int code, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

/* Set code and a message ending in ": strerror(errnum)". */
int sh_err_sys(struct sh_err *e, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefix the existing message with "context: "; returns code (the code the
 * failed call returned), so that "return sh_err_wrap(err, rv, ...)" works
 * even when e is NULL. */
int sh_err_wrap(struct sh_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The message, or "" when e is NULL. */
const char *sh_err_msg(const struct sh_err *e);

/* A short description of a code: SH_EINVAL -> "invalid argument". */
const char *sh_strerror(int code);

/* Map an errno value to the closest SH_E* code. */
int sh_err_from_errno(int errnum);

#endif
