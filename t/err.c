/* Tests of util/err: codes, messages, wrapping, truncation, NULL tolerance. */
#include "build.h"

#include "tap.h"
#include "util/err.h"

#include <errno.h>
#include <string.h>

int main(void)
{
	struct sh_err e;
	char big[2 * SH_ERRMSG_SIZE];

	sh_err_clear(&e);
	is_int(e.code, SH_OK, "cleared code is SH_OK");
	is_str(sh_err_msg(&e), "", "cleared message is empty");

	is_int(sh_err_set(&e, SH_EINVAL, "bad %s %d", "value", 7), SH_EINVAL,
	       "set returns the code");
	is_str(e.msg, "bad value 7", "set formats the message");
	is_int(sh_err_wrap(&e, SH_EINVAL, "key '%s'", "x"), SH_EINVAL, "wrap returns the code");
	sh_err_wrap(&e, SH_EINVAL, "config");
	is_str(e.msg, "config: key 'x': bad value 7", "wraps read outside-in");

	is_int(sh_err_sys(&e, ENOENT, "open '%s'", "/nope"), SH_ENOTFOUND, "sys maps ENOENT");
	is_str(e.msg, "open '/nope': No such file or directory", "sys appends strerror");
	is_int(sh_err_sys(&e, ENOSPC, "write"), SH_ENOSPC, "sys maps ENOSPC");
	is_int(sh_err_from_errno(EIO), SH_EIO, "EIO maps to SH_EIO");
	is_int(sh_err_from_errno(12345), SH_EIO, "unknown errno maps to SH_EIO");

	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	sh_err_set(&e, SH_ETOOBIG, "%s", big);
	is_int(strlen(e.msg), SH_ERRMSG_SIZE - 1, "a long message is cut to the buffer");
	sh_err_wrap(&e, SH_ETOOBIG, "ctx");
	ok(strncmp(e.msg, "ctx: aaa", 8) == 0, "wrapping a full message keeps the prefix");
	is_str(e.msg + SH_ERRMSG_SIZE - 4, "...", "and marks the cut with ...");

	is_int(sh_err_set(NULL, SH_EIO, "x"), SH_EIO, "set with NULL still returns the code");
	is_int(sh_err_wrap(NULL, SH_ENOSPC, "x"), SH_ENOSPC,
	       "wrap with NULL still returns the code");
	is_str(sh_err_msg(NULL), "", "msg(NULL) is empty");
	is_str(sh_strerror(SH_ECORRUPT), "corrupt data", "strerror names codes");
	is_str(sh_strerror(-999), "unknown error", "strerror of an unknown code");
	return done_testing();
}
