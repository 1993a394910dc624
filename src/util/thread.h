/*
 * thread: the name of the calling thread as `top -H`, `ps -L`, perf and
 * gdb show it ("shoal-apply", ...; at most 15 bytes, longer ones cut).
 * Linux; elsewhere nothing.  Any thread.
 */
#ifndef SHOAL_UTIL_THREAD_H
#define SHOAL_UTIL_THREAD_H

void sh_thread_name(const char *name);

#endif
