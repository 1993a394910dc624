/* thread: naming the calling thread, background work (thread.h). */
#include "build.h"

#include "util/thread.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#if defined(__linux__)
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

static _Thread_local bool background;

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

int sh_thread_background(bool on, int nice)
{
	background = on;
#if defined(__linux__)
	if (nice > 0 && setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), nice) != 0)
		return errno;
#else
	(void)nice;
#endif
	return 0;
}

bool sh_thread_is_background(void)
{
	return background;
}

void sh_thread_give_way(void)
{
	if (background)
		sched_yield();
}
