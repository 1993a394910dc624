/*
 * err: see err.h.  Pure string formatting, no allocation, thread-safe.
 */
#include "build.h"

#include "util/err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void sh_err_clear(struct sh_err *e)
{
	if (e == NULL)
		return;
	e->code = SH_OK;
	e->msg[0] = '\0';
}

int sh_err_setv(struct sh_err *e, int code, const char *fmt, va_list ap)
{
	if (e == NULL)
		return code;
	e->code = code;
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	return code;
}

int sh_err_set(struct sh_err *e, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sh_err_setv(e, code, fmt, ap);
	va_end(ap);
	return code;
}

int sh_err_sys(struct sh_err *e, int errnum, const char *fmt, ...)
{
	va_list ap;
	size_t n;
	int code = sh_err_from_errno(errnum);

	if (e == NULL)
		return code;
	va_start(ap, fmt);
	sh_err_setv(e, code, fmt, ap);
	va_end(ap);
	n = strlen(e->msg);
	snprintf(e->msg + n, sizeof e->msg - n, ": %s", strerror(errnum));
	return code;
}

int sh_err_wrap(struct sh_err *e, int code, const char *fmt, ...)
{
	char prefix[SH_ERRMSG_SIZE];
	char old[SH_ERRMSG_SIZE];
	va_list ap;

	if (e == NULL)
		return code;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof old);
	if (snprintf(e->msg, sizeof e->msg, "%s: %s", prefix, old) >= (int)sizeof e->msg)
		memcpy(e->msg + sizeof e->msg - 4, "...", 4); /* cut, and say so */
	return code;
}

const char *sh_err_msg(const struct sh_err *e)
{
	return e == NULL ? "" : e->msg;
}

const char *sh_strerror(int code)
{
	switch (code) {
	case SH_OK: return "ok";
	case SH_ENOMEM: return "out of memory";
	case SH_EINVAL: return "invalid argument";
	case SH_EIO: return "i/o error";
	case SH_ENOTFOUND: return "not found";
	case SH_EEXIST: return "already exists";
	case SH_ECORRUPT: return "corrupt data";
	case SH_EBUSY: return "busy";
	case SH_ERANGE: return "out of range";
	case SH_ENOSPC: return "no space left";
	case SH_EUNAVAIL: return "unavailable";
	case SH_ETIMEDOUT: return "timed out";
	case SH_ETOOBIG: return "too big";
	case SH_ESHUTDOWN: return "shutting down";
	case SH_EUNSUPPORTED: return "not supported";
	case SH_EUNKNOWN: return "outcome unknown";
	case SH_ESTALE: return "stale request";
	case SH_ESESSION: return "client session expired";
	default: return "unknown error";
	}
}

int sh_err_from_errno(int errnum)
{
	switch (errnum) {
	case ENOMEM: return SH_ENOMEM;
	case EINVAL: return SH_EINVAL;
	case ENOENT: return SH_ENOTFOUND;
	case EEXIST: return SH_EEXIST;
	case EBUSY:
	case EAGAIN: return SH_EBUSY;
	case ENOSPC:
	case EDQUOT: return SH_ENOSPC;
	case ERANGE: return SH_ERANGE;
	case ETIMEDOUT: return SH_ETIMEDOUT;
	case E2BIG:
	case EFBIG: return SH_ETOOBIG;
	default: return SH_EIO;
	}
}
