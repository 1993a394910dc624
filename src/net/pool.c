/*
 * pool: see pool.h.
 *
 * One mutex guards both queues.  Workers wait on a condition variable for
 * the job queue; the loop is woken through an eventfd written only when
 * the done queue goes from empty to non-empty, so that a burst of results
 * costs one wake-up.
 */
#include "build.h"

#include "net/pool.h"

#include "util/alloc.h"
#include "util/log.h"
#include "util/thread.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct pool_job *q_head, *q_tail; /* to run */
	struct pool_job *d_head, *d_tail; /* done, for the loop */
	size_t queued;
	bool stop;
	pthread_t *threads;
	unsigned n_threads;
	int efd;
	struct event *ev;
	bool inline_; /* no loop: jobs run in pool_submit */
};

static void push(struct pool_job **head, struct pool_job **tail, struct pool_job *j)
{
	j->next = NULL;
	if (*tail != NULL)
		(*tail)->next = j;
	else
		*head = j;
	*tail = j;
}

static void *worker(void *arg)
{
	struct pool *p = arg;
	struct pool_job *j;
	uint64_t one = 1;
	bool wake;

	sh_thread_name("shoal-search");
	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (p->q_head == NULL && !p->stop)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->q_head == NULL)
			break;
		j = p->q_head;
		p->q_head = j->next;
		if (p->q_head == NULL)
			p->q_tail = NULL;
		p->queued--;
		pthread_mutex_unlock(&p->lock);
		j->run(j);
		pthread_mutex_lock(&p->lock);
		wake = p->d_head == NULL;
		push(&p->d_head, &p->d_tail, j);
		if (wake && write(p->efd, &one, sizeof one) < 0 && errno != EAGAIN)
			LOG_ERROR("pool", "cannot wake the event loop: %s", strerror(errno));
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static void drain(struct pool *p)
{
	struct pool_job *list, *next;
	uint64_t v;

	if (read(p->efd, &v, sizeof v) < 0 && errno != EAGAIN)
		LOG_ERROR("pool", "eventfd: %s", strerror(errno));
	pthread_mutex_lock(&p->lock);
	list = p->d_head;
	p->d_head = p->d_tail = NULL;
	pthread_mutex_unlock(&p->lock);
	for (; list != NULL; list = next) {
		next = list->next;
		list->done(list);
	}
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
	drain(arg);
}

int pool_new(struct event_base *base, unsigned threads, struct pool **out, struct sh_err *err)
{
	struct pool *p = sh_calloc(1, sizeof *p);

	if (p == NULL ||
	    (p->threads = sh_calloc(threads ? threads : 1, sizeof(pthread_t))) == NULL) {
		sh_free(p);
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	if (base == NULL) {
		p->inline_ = true;
		p->efd = -1;
		*out = p;
		return 0;
	}
	p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->efd < 0) {
		pool_free(p);
		return sh_err_sys(err, errno, "search pool: eventfd");
	}
	p->ev = event_new(base, p->efd, EV_READ | EV_PERSIST, on_wake, p);
	if (p->ev == NULL || event_add(p->ev, NULL) != 0) {
		pool_free(p);
		return sh_err_set(err, SH_EIO, "search pool: cannot watch the eventfd");
	}
	for (unsigned i = 0; i < (threads ? threads : 1); i++) {
		if (pthread_create(&p->threads[i], NULL, worker, p) != 0) {
			pool_free(p);
			return sh_err_set(err, SH_EIO, "search pool: cannot start thread %u", i);
		}
		p->n_threads++;
	}
	*out = p;
	return 0;
}

void pool_free(struct pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->n_threads; i++)
		pthread_join(p->threads[i], NULL);
	if (p->efd >= 0) {
		drain(p);
		close(p->efd);
	}
	if (p->ev != NULL)
		event_free(p->ev);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	sh_free(p->threads);
	sh_free(p);
}

void pool_submit(struct pool *p, struct pool_job *job)
{
	if (p->inline_) {
		job->run(job);
		job->done(job);
		return;
	}
	pthread_mutex_lock(&p->lock);
	push(&p->q_head, &p->q_tail, job);
	p->queued++;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

size_t pool_queued(const struct pool *p)
{
	size_t n;

	pthread_mutex_lock(&((struct pool *)(uintptr_t)p)->lock);
	n = p->queued;
	pthread_mutex_unlock(&((struct pool *)(uintptr_t)p)->lock);
	return n;
}
