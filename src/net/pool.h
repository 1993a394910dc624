/*
 * pool: the search pool (DESIGN.md section 2) — worker threads that run
 * jobs off the event loop and hand them back to it.
 *
 * pool_submit() (loop thread) queues a job; a worker runs job->run; the
 * finished job goes to a done queue and, when that queue was empty, an
 * eventfd wakes the loop, which calls job->done for every finished job
 * (memcached's thread.c pattern: no lock is held across the loop).  Jobs
 * are caller-owned and must stay valid until done runs.
 *
 * Threads: pool_submit, pool_free and the done callbacks on the loop
 * thread; run on a worker.
 *
 * Without a loop (base NULL: the deterministic simulator) there are no
 * workers: pool_submit runs the job and its done callback at once, on the
 * caller's thread.
 */
#ifndef SHOAL_NET_POOL_H
#define SHOAL_NET_POOL_H

#include <stddef.h>

#include <event2/event.h>

#include "util/err.h"

struct pool_job {
	void (*run)(struct pool_job *job);  /* on a worker */
	void (*done)(struct pool_job *job); /* on the loop */
	struct pool_job *next;
};

struct pool;

/* threads 0 means 1; base NULL: inline, no threads (see above). */
int pool_new(struct event_base *base, unsigned threads, struct pool **out, struct sh_err *err);
/* Run the queued jobs, stop the workers, call the pending done callbacks. */
void pool_free(struct pool *p);
void pool_submit(struct pool *p, struct pool_job *job);
/* Jobs queued and not yet picked by a worker. */
size_t pool_queued(const struct pool *p);

#endif
