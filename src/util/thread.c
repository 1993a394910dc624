/* thread: naming the calling thread (thread.h). */
#include "build.h"

#include "util/thread.h"

#include <string.h>
#if defined(__linux__)
#include <sys/prctl.h>
#endif

void sh_thread_name(const char *name)
{
#if defined(__linux__)
	char n[16];

	strncpy(n, name, sizeof n - 1);
	n[sizeof n - 1] = '\0';
	(void)prctl(PR_SET_NAME, n, 0, 0, 0);
#else
	(void)name;
#endif
}
