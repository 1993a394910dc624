/*
 * wal_writer: the log writer thread — group commit and the fsync policies
 * (DESIGN.md section 2; doc/storage-format.md, "fsync policies").
 *
 * Callers queue ops (appends, truncations) and never wait for the disk.
 * The thread takes everything queued at once, writes the appends with one
 * write(), and under `always` flushes them with one fdatasync(): however
 * many batches were queued while the previous flush ran, one flush covers
 * them all.  It then marks the ops done in submission order, puts those
 * with `notify` on the done list and writes the caller's eventfd, so an
 * event loop learns "durable up to N" without blocking.
 *
 * Failures: a failed write fails its group and every queued append until
 * an append arrives with the index the log really expects (the caller
 * resubmits from there); a failed fdatasync is sticky (the kernel may have
 * dropped the pages, so nothing written since can be trusted to be on
 * disk): every later op fails until the node restarts.
 *
 * Manual mode (o.manual): no thread.  The caller runs the queued ops on
 * its own thread with wal_writer_run() (wal_writer_pending() says whether
 * there are any) — the same code the thread runs, one group per call — and
 * the waiting calls (quiesce, wait, append) run them inline.  Nothing in
 * it reads the clock but the `interval` policy.
 *
 * Locks: `lock` guards the queue, the done list and the condition
 * variables; it is never held across I/O.
 */
#include "build.h"

#include "storage/wal.h"

#include "util/alloc.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/thread.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_GROUP 1024 /* appends written by one write() */

struct wal_writer {
	struct wal *w;
	struct wal_writer_opts o;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake; /* to the thread: work queued or stop */
	pthread_cond_t done; /* from the thread: ops completed */
	struct wal_op *head, *tail;
	struct wal_op *done_head, *done_tail;
	bool stop, busy, started;
	/* the thread's own state */
	uint64_t expect;       /* index the next append must start with */
	uint64_t last_sync_ms; /* when the last flush ended */
	bool dirty;            /* written, not flushed */
	struct sh_err fatal;   /* a failed fdatasync: sticky */
	_Atomic uint64_t durable;
	_Atomic uint64_t syncs;
	struct wal_buf *group[MAX_GROUP];
};

/* ------------------------------------------------------------ completing */

static void complete(struct wal_writer *ww, struct wal_op **ops, size_t n, uint64_t durable)
{
	uint64_t one = 1;
	bool notify = false;

	pthread_mutex_lock(&ww->lock);
	if (durable > atomic_load(&ww->durable))
		atomic_store(&ww->durable, durable);
	for (size_t i = 0; i < n; i++) {
		struct wal_op *op = ops[i];

		atomic_store(&op->done, true);
		if (!op->notify)
			continue;
		op->next = NULL;
		if (ww->done_tail != NULL)
			ww->done_tail->next = op;
		else
			ww->done_head = op;
		ww->done_tail = op;
		notify = true;
	}
	pthread_cond_broadcast(&ww->done);
	pthread_mutex_unlock(&ww->lock);
	if (notify && ww->o.notify_fd >= 0 && write(ww->o.notify_fd, &one, sizeof one) < 0)
		LOG_ERROR("wal", "cannot signal the event loop: %s", strerror(errno));
}

static void fail_op(struct wal_op *op, int rv, const struct sh_err *why)
{
	op->rv = rv;
	if (why != NULL)
		op->err = *why;
}

/* ------------------------------------------------------------ one group */

static int flush(struct wal_writer *ww, struct sh_err *err)
{
	int rv = wal_sync(ww->w, err);

	atomic_fetch_add(&ww->syncs, 1);
	ww->last_sync_ms = sh_clock_mono_ms();
	if (rv != 0) {
		ww->fatal = *err;
		sh_err_wrap(&ww->fatal, rv, "an earlier flush failed, restart the node");
		return rv;
	}
	ww->dirty = false;
	return 0;
}

/* Check the appends ops[0..n) and write, with one write(), those whose
 * indexes follow on; the others fail. */
static void write_group(struct wal_writer *ww, struct wal_op **ops, size_t n)
{
	size_t k = 0;
	struct sh_err err;
	int rv;

	for (size_t i = 0; i < n; i++) {
		struct wal_buf *b = ops[i]->buf;

		if (ww->fatal.code != 0) {
			fail_op(ops[i], ww->fatal.code, &ww->fatal);
		} else if (b->n > 0 && b->first != ww->expect) {
			sh_err_set(&ops[i]->err, SH_EINVAL,
				   "wal: append of index %" PRIu64 " does not follow %" PRIu64
				   " (an earlier write failed)",
				   b->first, ww->expect - 1);
			ops[i]->rv = SH_EINVAL;
		} else {
			ww->group[k++] = b;
			ww->expect += b->n;
			ops[i]->rv = 0;
		}
	}
	if (k == 0)
		return;
	if ((rv = wal_append(ww->w, ww->group, k, &err)) != 0) {
		ww->expect = wal_last_index(ww->w) + 1;
		for (size_t i = 0; i < n; i++)
			if (ops[i]->rv == 0)
				fail_op(ops[i], rv, &err);
		return;
	}
	ww->dirty = true;
}

/* A truncation or a reset. */
static void do_cut(struct wal_writer *ww, struct wal_op *op)
{
	uint64_t keep = op->type == WAL_OP_RESET ? op->index - 1 : op->index;

	if (ww->fatal.code != 0) {
		fail_op(op, ww->fatal.code, &ww->fatal);
		return;
	}
	if (op->type == WAL_OP_RESET)
		op->rv = wal_reset(ww->w, op->index, &op->err);
	else
		op->rv = wal_truncate(ww->w, op->index, &op->err);
	ww->expect = wal_last_index(ww->w) + 1;
	pthread_mutex_lock(&ww->lock);
	if (op->type == WAL_OP_RESET || atomic_load(&ww->durable) > keep)
		atomic_store(&ww->durable, keep);
	pthread_mutex_unlock(&ww->lock);
}

/* The policy's flush after a group; fails the group's appends if it fails. */
static void maybe_flush(struct wal_writer *ww, struct wal_op **ops, size_t n)
{
	struct sh_err err;
	bool due = ww->o.fsync == WAL_FSYNC_ALWAYS ||
		   (ww->o.fsync == WAL_FSYNC_INTERVAL &&
		    sh_clock_mono_ms() - ww->last_sync_ms >= ww->o.interval_ms);

	if (!ww->dirty || !due || flush(ww, &err) == 0)
		return;
	for (size_t i = 0; i < n; i++)
		if (ops[i]->type == WAL_OP_APPEND && ops[i]->rv == 0)
			fail_op(ops[i], err.code, &err);
}

/* Run ops (a list) in order: appends in runs, one write per run. */
static void run_ops(struct wal_writer *ww, struct wal_op *list)
{
	struct wal_op *ops[MAX_GROUP];
	size_t n = 0;
	uint64_t durable;

	while (list != NULL) {
		n = 0;
		while (list != NULL && n < MAX_GROUP && (list->type == WAL_OP_APPEND || n == 0)) {
			ops[n++] = list;
			list = list->next;
			if (ops[n - 1]->type != WAL_OP_APPEND)
				break;
		}
		if (ops[0]->type != WAL_OP_APPEND)
			do_cut(ww, ops[0]);
		else
			write_group(ww, ops, n);
		maybe_flush(ww, ops, n);
		durable = ww->o.fsync == WAL_FSYNC_ALWAYS ? wal_synced_index(ww->w)
							  : wal_last_index(ww->w);
		complete(ww, ops, n, ww->fatal.code != 0 ? 0 : durable);
	}
}

/* ------------------------------------------------------------ the thread */

/* Under `interval`: is a flush due now (something written, not flushed,
 * for interval_ms)?  Lock held or not: the fields are the runner's. */
static bool interval_due(struct wal_writer *ww)
{
	return ww->o.fsync == WAL_FSYNC_INTERVAL && ww->dirty && ww->fatal.code == 0 &&
	       sh_clock_mono_ms() >= ww->last_sync_ms + ww->o.interval_ms;
}

/* Run everything queued: one pass of the thread's loop (lock held on
 * entry and exit).  False when there was nothing to do. */
static bool run_queued(struct wal_writer *ww)
{
	struct wal_op *list = ww->head;
	struct sh_err err;

	if (list == NULL) {
		if (!interval_due(ww))
			return false;
		pthread_mutex_unlock(&ww->lock);
		flush(ww, &err);
		pthread_mutex_lock(&ww->lock);
		return true;
	}
	ww->head = ww->tail = NULL;
	ww->busy = true;
	pthread_mutex_unlock(&ww->lock);
	run_ops(ww, list);
	pthread_mutex_lock(&ww->lock);
	ww->busy = false;
	pthread_cond_broadcast(&ww->done);
	return true;
}

/* Wait for work; under `interval`, wake up when a flush is due. */
static void wait_work(struct wal_writer *ww)
{
	struct timespec ts;
	uint64_t now = sh_clock_mono_ms(), due = ww->last_sync_ms + ww->o.interval_ms, left;

	if (ww->o.fsync != WAL_FSYNC_INTERVAL || !ww->dirty || ww->fatal.code != 0) {
		pthread_cond_wait(&ww->wake, &ww->lock);
		return;
	}
	if (now >= due)
		return; /* run_queued flushes */
	left = due - now;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(left / 1000);
	ts.tv_nsec += (long)(left % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&ww->wake, &ww->lock, &ts);
}

static void *writer_main(void *arg)
{
	struct wal_writer *ww = arg;

	sh_thread_name("shoal-wal");
	sh_log_set_thread_node(NULL);
	pthread_mutex_lock(&ww->lock);
	for (;;) {
		if (run_queued(ww))
			continue;
		if (ww->stop)
			break;
		wait_work(ww);
	}
	pthread_mutex_unlock(&ww->lock);
	return NULL;
}

bool wal_writer_pending(struct wal_writer *ww)
{
	bool pending;

	pthread_mutex_lock(&ww->lock);
	pending = ww->head != NULL || interval_due(ww);
	pthread_mutex_unlock(&ww->lock);
	return pending;
}

void wal_writer_run(struct wal_writer *ww)
{
	pthread_mutex_lock(&ww->lock);
	run_queued(ww);
	pthread_mutex_unlock(&ww->lock);
}

int wal_writer_start(struct wal *w, const struct wal_writer_opts *o, struct wal_writer **out,
		     struct sh_err *err)
{
	struct wal_writer *ww = sh_calloc(1, sizeof *ww);

	if (ww == NULL)
		return sh_err_set(err, SH_ENOMEM, "wal: out of memory");
	ww->w = w;
	ww->o = *o;
	ww->expect = wal_last_index(w) + 1;
	ww->last_sync_ms = sh_clock_mono_ms();
	atomic_init(&ww->durable, wal_last_index(w));
	pthread_mutex_init(&ww->lock, NULL);
	pthread_cond_init(&ww->wake, NULL);
	pthread_cond_init(&ww->done, NULL);
	if (!o->manual && pthread_create(&ww->thread, NULL, writer_main, ww) != 0) {
		pthread_cond_destroy(&ww->done);
		pthread_cond_destroy(&ww->wake);
		pthread_mutex_destroy(&ww->lock);
		sh_free(ww);
		return sh_err_set(err, SH_EIO, "wal: cannot start the writer thread");
	}
	ww->started = !o->manual;
	*out = ww;
	return 0;
}

void wal_writer_stop(struct wal_writer *ww)
{
	struct sh_err err;

	if (ww == NULL)
		return;
	pthread_mutex_lock(&ww->lock);
	ww->stop = true;
	pthread_cond_signal(&ww->wake);
	if (!ww->started)
		while (run_queued(ww))
			;
	pthread_mutex_unlock(&ww->lock);
	if (ww->started)
		pthread_join(ww->thread, NULL);
	if (ww->dirty && ww->fatal.code == 0 && flush(ww, &err) != 0)
		LOG_ERROR("wal", "final flush: %s", err.msg);
	pthread_cond_destroy(&ww->done);
	pthread_cond_destroy(&ww->wake);
	pthread_mutex_destroy(&ww->lock);
	sh_free(ww);
}

/* ------------------------------------------------------------ callers */

void wal_writer_submit(struct wal_writer *ww, struct wal_op *op)
{
	if (op->type == WAL_OP_APPEND)
		wal_buf_seal(op->buf); /* on the caller's thread, off the flush path */
	op->next = NULL;
	op->rv = 0;
	sh_err_clear(&op->err);
	atomic_store(&op->done, false);
	pthread_mutex_lock(&ww->lock);
	if (ww->tail != NULL)
		ww->tail->next = op;
	else
		ww->head = op;
	ww->tail = op;
	pthread_cond_signal(&ww->wake);
	pthread_mutex_unlock(&ww->lock);
}

struct wal_op *wal_writer_done(struct wal_writer *ww)
{
	struct wal_op *op;

	pthread_mutex_lock(&ww->lock);
	op = ww->done_head;
	if (op != NULL && (ww->done_head = op->next) == NULL)
		ww->done_tail = NULL;
	pthread_mutex_unlock(&ww->lock);
	return op;
}

void wal_writer_quiesce(struct wal_writer *ww)
{
	pthread_mutex_lock(&ww->lock);
	while (!ww->started && ww->head != NULL)
		run_queued(ww);
	while (ww->head != NULL || ww->busy)
		pthread_cond_wait(&ww->done, &ww->lock);
	pthread_mutex_unlock(&ww->lock);
}

int wal_writer_wait(struct wal_writer *ww, struct wal_op *op)
{
	pthread_mutex_lock(&ww->lock);
	while (!ww->started && !atomic_load(&op->done) && run_queued(ww))
		;
	while (!atomic_load(&op->done))
		pthread_cond_wait(&ww->done, &ww->lock);
	pthread_mutex_unlock(&ww->lock);
	return op->rv;
}

int wal_writer_append(struct wal_writer *ww, struct wal_buf *buf, struct sh_err *err)
{
	struct wal_op op = {.type = WAL_OP_APPEND, .buf = buf};
	int rv;

	wal_writer_submit(ww, &op);
	if ((rv = wal_writer_wait(ww, &op)) != 0 && err != NULL)
		*err = op.err;
	return rv;
}

uint64_t wal_writer_durable(struct wal_writer *ww)
{
	return atomic_load(&ww->durable);
}

uint64_t wal_writer_syncs(struct wal_writer *ww)
{
	return atomic_load(&ww->syncs);
}
