/*
 * thread: what the calling thread is.  Its name as `top -H`, `ps -L`,
 * perf and gdb show it ("shoal-apply", ...; at most 15 bytes, longer ones
 * cut).  Background work (the indexer and its build threads): a lower
 * priority, and a thread that gives the CPU way between its units of
 * work.  Linux; elsewhere names and priorities do nothing.  Any thread.
 */
#ifndef SHOAL_UTIL_THREAD_H
#define SHOAL_UTIL_THREAD_H

#include <stdbool.h>

void sh_thread_name(const char *name);

/* Mark the calling thread as background work, or not: with nice > 0 its
 * nice value becomes nice (per thread on Linux; threads it creates
 * inherit it).  0, or an errno when the priority could not be set (the
 * mark is set all the same). */
int sh_thread_background(bool on, int nice);
bool sh_thread_is_background(void);

/* Between two units of background work (a point indexed): a thread
 * marked as background yields the CPU to any thread waiting for it
 * (sched_yield), so a woken request or apply thread runs at once instead
 * of after the scheduler's slice; one that is not does nothing.  Nice
 * alone does not do this: nine indexing threads at nice 10 on a 3-node
 * machine weigh as much as one thread at nice 0, and a woken thread
 * waits behind them (doc/benchmarks.md, "The indexer gives way"). */
void sh_thread_give_way(void);

#endif
