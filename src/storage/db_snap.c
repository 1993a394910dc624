/*
 * db_snap: the apply thread's snapshots of the applied state
 * (doc/storage-format.md, "Snapshots"; doc/write-path.md, "Snapshots").
 *
 * With threads, a snapshot is written by a child process: the apply thread
 * holds every collection still (store_hold: the indexer's step ends at its
 * next point), forks, lets go, and goes on applying at once; the child
 * has the state as it was at the fork (copy-on-write pages), writes the
 * file durably (temporary file, fdatasync, rename, directory fsync) and
 * exits.  The apply thread finds it ended (db_snap_poll, between pieces of
 * work), then drops what the snapshot covers: older snapshots and the log
 * before it.  So a snapshot stops the apply for the fork (milliseconds),
 * not for the whole write (0.1 s for 100,000 points of 128 dimensions,
 * 1.5 s for a million; more on a busy disk).
 *
 * The child runs no other thread and takes no lock another thread may
 * hold (store_save_held); it closes the descriptors it inherited (a socket
 * the daemon closes must end then, not when the child exits); it blocks
 * every signal (a SIGHUP or SIGTERM sent to the process group is the
 * daemon's business) and dies with the apply thread (PR_SET_PDEATHSIG).  It reports through a
 * shared page: its result, the error and the file's size.  When fork fails, or in manual mode (the
 * deterministic simulator), the snapshot is written inline, as before.
 */
#include "build.h"

#include "storage/db_impl.h"

#include "storage/snapshot.h"
#include "util/clock.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static _Atomic int test_gate = -1; /* db_test_snap_gate */

/* What the child leaves for the apply thread (a MAP_SHARED page). */
struct snap_report {
	int rv;
	bool done; /* the child got to its end (rv says how) */
	uint64_t bytes;
	struct sh_err err;
};

static int save_store(void *arg, hnsw_write_fn write, void *wctx, struct sh_err *err)
{
	return store_save(arg, write, wctx, err);
}

/* The child's content (its temporary file is open: a test may hold it). */
static int save_held(void *arg, hnsw_write_fn write, void *wctx, struct sh_err *err)
{
	if (atomic_load(&test_gate) >= 0) {
		char c;

		while (read(atomic_load(&test_gate), &c, 1) < 0 && errno == EINTR)
			;
	}
	return store_save_held(arg, write, wctx, err);
}

/* Drop the log before the snapshot at index, but the last log_keep entries. */
static int drop_prefix(struct db *db, uint64_t index, struct sh_err *err)
{
	int rv = 0;

	if (index > db->o.log_keep)
		rv = wal_remove_prefix(db->wal, index - db->o.log_keep, err);
	atomic_store(&db->first_index, wal_first_index(db->wal));
	return rv;
}

/* The snapshot at index is on disk: it is the node's; drop what it covers.
 * held_ms: how long the apply stopped for it. */
static int written(struct db *db, uint64_t index, uint64_t bytes, uint64_t t0, uint64_t held_ms,
		   struct sh_err *err)
{
	int rv;

	atomic_store(&db->last_snap, index);
	atomic_fetch_add(&db->snapshots, 1);
	if ((rv = snap_prune(db->snap_dir, index, err)) != 0 ||
	    (rv = drop_prefix(db, index, err)) != 0)
		return rv;
	LOG_INFO("storage",
		 "snapshot at index %" PRIu64 " written (%" PRIu64 " bytes, %" PRIu64
		 " ms; the apply stopped %" PRIu64 " ms); the log now starts at index %" PRIu64,
		 index, bytes, sh_clock_mono_ms() - t0, held_ms, wal_first_index(db->wal));
	return 0;
}

/* Is there a state worth a snapshot?  0 and *index 0: nothing to do. */
static int worth(struct db *db, uint64_t *index, struct sh_err *err)
{
	*index = store_applied_index(db->store);
	if (atomic_load(&db->failed)) /* the state may not be the log's: never keep it */
		return sh_err_set(err, SH_EIO,
				  "the storage failed: no snapshot of a state that may be wrong");
	if (*index == atomic_load(&db->last_snap))
		*index = 0;
	return 0;
}

/* The whole snapshot on this thread. */
static int inline_snapshot(struct db *db, uint64_t index, struct sh_err *err)
{
	uint64_t t0 = sh_clock_mono_ms(), bytes = 0;
	int rv;

	atomic_store(&db->snapshotting, true);
	db_wake_owner(db); /* what waits for the apply need not wait for this */
	rv = snap_write(db->snap_dir, index, store_applied_term(db->store), save_store, db->store,
			&bytes, err);
	atomic_store(&db->snapshotting, false);
	db->since_entries = db->since_bytes = 0;
	return rv != 0 ? rv : written(db, index, bytes, t0, sh_clock_mono_ms() - t0, err);
}

/* ------------------------------------------------------------ the child */

/* Close fds lo..hi (the kernel's close_range, or one by one). */
static void close_fds(unsigned lo, unsigned hi)
{
	if (lo > hi)
		return;
#ifdef HAVE_CLOSE_RANGE
	if (close_range(lo, hi, 0) == 0)
		return;
#endif
	for (unsigned fd = lo; fd <= hi && fd < 65536; fd++)
		close((int)fd);
}

/* The daemon's sockets and files are its own: a connection it closes
 * must end now, not when the child exits (a socket ends with its last
 * descriptor).  The child keeps stdio and the test gate. */
static void close_inherited(void)
{
	int gate = atomic_load(&test_gate);

	if (gate < 3) {
		close_fds(3, ~0u);
		return;
	}
	close_fds(3, (unsigned)gate - 1);
	close_fds((unsigned)gate + 1, ~0u);
}

/* Out of memory, the kernel kills the writer, not the daemon (the
 * snapshot is retried later). */
static void first_to_die(void)
{
	int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (write(fd, "1000", 4) != 4) { /* nothing to do about it */
		}
		close(fd);
	}
}

static _Noreturn void child(struct db *db, uint64_t index, uint64_t term, pid_t parent,
			    struct snap_report *r)
{
	/* every signal is blocked: the apply thread blocked them for the fork */
	atomic_store(&sh_log_min_level, SH_LOG_OFF); /* its lock may be held; its fd is closed */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent) /* the daemon died before prctl */
		_exit(2);
	close_inherited();
	first_to_die();
	r->rv = snap_write(db->snap_dir, index, term, save_held, db->store, &r->bytes, &r->err);
	r->done = true;
	_exit(r->rv == 0 ? 0 : 1);
}

/* Fork the child that writes the snapshot at index: 0, or an error (the
 * caller writes it inline). */
static int fork_writer(struct db *db, uint64_t index, struct sh_err *err)
{
	struct snap_report *r;
	pid_t parent = getpid(), pid;
	uint64_t term = store_applied_term(db->store), t0;
	sigset_t all, old;

	r = mmap(NULL, sizeof *r, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (r == MAP_FAILED)
		return sh_err_sys(err, errno, "cannot map the snapshot writer's report");
	memset(r, 0, sizeof *r); /* done false until the child gets to its end */
	t0 = sh_clock_mono_ms();
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	store_hold(db->store);
	pid = fork();
	if (pid == 0)
		child(db, index, term, parent, r);
	store_unhold(db->store);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	db->snap_held_ms = sh_clock_mono_ms() - t0;
	if (pid < 0) {
		munmap(r, sizeof *r);
		return sh_err_sys(err, errno, "cannot start the snapshot writer (fork)");
	}
	db->snap_pid = pid;
	db->snap_report = r;
	db->snap_index = index;
	db->snap_t0 = t0;
	db->since_entries = db->since_bytes = 0;
	return 0;
}

/* Start a snapshot of the applied state: 0 when one was started (or
 * written inline, *started false) or there is nothing to do. */
static int start(struct db *db, bool *started, struct sh_err *err)
{
	uint64_t index;
	struct sh_err ferr;
	int rv;

	*started = false;
	if ((rv = worth(db, &index, err)) != 0 || index == 0)
		return rv;
	if (db->o.manual)
		return inline_snapshot(db, index, err);
	if (fork_writer(db, index, &ferr) == 0) {
		*started = true;
		return 0;
	}
	LOG_WARN("storage", "%s: writing the snapshot on the apply thread", ferr.msg);
	return inline_snapshot(db, index, err);
}

/* ------------------------------------------------------------ the end */

/* The child ended with status st: its result, then the snapshot's. */
static int ended(struct db *db, int st, struct sh_err *err)
{
	struct snap_report *r = db->snap_report;

	/* st -1: someone else reaped it (SIGCHLD ignored): its report says */
	if (r->done && r->rv == 0 && (st == -1 || (WIFEXITED(st) && WEXITSTATUS(st) == 0)))
		return written(db, db->snap_index, r->bytes, db->snap_t0, db->snap_held_ms, err);
	snap_drop_tmp(db->snap_dir, db->snap_index); /* the child removes it, unless killed */
	if (st != -1 && WIFSIGNALED(st))
		return sh_err_set(err, SH_EIO,
				  "the snapshot writer (pid %ld) was killed by signal %d",
				  (long)db->snap_pid, WTERMSIG(st));
	if (r->done) {
		*err = r->err;
		return r->rv;
	}
	return sh_err_set(err, SH_EIO, "the snapshot writer (pid %ld) failed (status %d)",
			  (long)db->snap_pid, st);
}

/* The db_snapshot calls up to ticket snap_serving have their answer. */
static void answer(struct db *db, int rv, const struct sh_err *err)
{
	pthread_mutex_lock(&db->lock);
	db->snap_rv = rv;
	if (rv != 0)
		db->snap_err = *err;
	db->snap_served = db->snap_serving;
	pthread_cond_broadcast(&db->snap_cond);
	pthread_mutex_unlock(&db->lock);
	db->snap_serving = 0;
}

/* Take the child's end (status st): finish, log, answer a db_snapshot. */
static void finish(struct db *db, int st)
{
	struct sh_err err;
	int rv = ended(db, st, &err);

	if (rv != 0)
		LOG_ERROR("storage", "snapshot at index %" PRIu64 " failed (the log is kept): %s",
			  db->snap_index, err.msg);
	munmap(db->snap_report, sizeof *db->snap_report);
	db->snap_report = NULL;
	db->snap_pid = 0;
	if (db->snap_serving != 0)
		answer(db, rv, &err);
}

bool db_snap_busy(const struct db *db)
{
	return atomic_load(&db->snap_pid) != 0;
}

void db_test_snap_gate(int fd)
{
	atomic_store(&test_gate, fd);
}

long db_test_snap_writer(const struct db *db)
{
	return atomic_load(&((struct db *)(uintptr_t)db)->snap_pid);
}

/* waitpid(flags) for the child, then finish it: true when it ended. */
static bool reap(struct db *db, int flags)
{
	int st;
	pid_t p;

	if (db->snap_pid == 0)
		return false;
	while ((p = waitpid(db->snap_pid, &st, flags)) < 0 && errno == EINTR)
		;
	if (p == 0)
		return false;
	finish(db, p == db->snap_pid ? st : -1);
	return true;
}

bool db_snap_poll(struct db *db)
{
	return reap(db, WNOHANG);
}

void db_snap_wait(struct db *db)
{
	reap(db, 0);
}

void db_snap_due(struct db *db)
{
	struct sh_err err;
	bool due = (db->o.snapshot_entries > 0 && db->since_entries >= db->o.snapshot_entries) ||
		   (db->o.snapshot_bytes > 0 && db->since_bytes >= db->o.snapshot_bytes);
	bool started;

	if (!due || atomic_load(&db->failed) || db_snap_busy(db))
		return;
	if (start(db, &started, &err) != 0) {
		LOG_ERROR("storage", "snapshot failed (the log is kept; retried later): %s",
			  err.msg);
		db->since_entries = db->since_bytes = 0;
	}
}

void db_snap_demand(struct db *db, uint64_t ticket)
{
	struct sh_err err;
	bool started = false;
	int rv = start(db, &started, &err);

	db->snap_serving = ticket;
	if (!started) /* written inline, or nothing to write */
		answer(db, rv, &err);
}
