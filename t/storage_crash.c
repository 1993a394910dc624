/* The crash test: a real writer process (t/storage_writer.c, fsync =
 * always, a snapshot every 25 entries) is killed with SIGKILL at random
 * moments, at least 50 times — mostly while it writes, sometimes while it
 * recovers.  Each time it starts again it reports what it recovered (last
 * index, digest, points).  Each report must show every batch acknowledged
 * so far (acknowledged on the pipe before the kill), no batch lost that an
 * earlier start had recovered, and a digest equal to that of a reference
 * store built here from exactly the batches recovered — so nothing partial
 * was applied.  (A batch can be durable and not yet acknowledged when the
 * kill comes: the recovered count may exceed the acknowledged one, never
 * fall short of it.)  The seed is printed; SHOAL_SEED replays a run. */
#include "build.h"

#include "crash_batch.h"

#include "storage/db.h"
#include "storage/store.h"
#include "tap.h"
#include "util/clock.h"

#include "storage_util.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#define KILLS 60

static char writer_path[600];
static const char *dir;
static uint64_t seed;
static int scale = 1;

/* ------------------------------------------------------------ the reference */

static struct store *ref;
static uint64_t ref_batches; /* batches applied to ref */

static void ref_apply(const struct entry *e, uint64_t index)
{
	struct wal_buf *b = wal_buf_new(0);
	struct wal_rec r;
	struct sh_err err;
	size_t pos = 0;
	bool fatal;

	if (entry_encode(e, b, 1, index, &err) != 0)
		bail_out("encode: %s", err.msg);
	wal_buf_next(b, &pos, &r);
	store_apply(ref, &r, NULL, &fatal, &err);
	if (fatal)
		bail_out("reference: %s", err.msg);
	wal_buf_unref(b);
}

/* The reference's digest after k batches (k never goes back). */
static void ref_digest(uint64_t k, char hex[33])
{
	static struct crash_batch cb;
	struct entry create;

	if (store_applied_index(ref) == 0) {
		crash_create(&create);
		ref_apply(&create, 1);
	}
	for (; ref_batches < k; ref_batches++) {
		crash_batch(&cb, seed, ref_batches);
		ref_apply(&cb.e, ref_batches + 2);
	}
	digest_hex(store_digest(ref), hex);
}

/* ------------------------------------------------------------ the writer process */

struct child {
	pid_t pid;
	int fd;
	char buf[4096];
	size_t len;
};

static pid_t running; /* the writer alive now, for the exit handler */

/* However the test ends (a bail-out included): no writer left, no files. */
static void at_exit(void)
{
	if (running > 0) {
		kill(running, SIGKILL);
		waitpid(running, NULL, 0);
	}
	if (dir != NULL)
		rm_rf(dir);
}

static void spawn(struct child *c)
{
	int p[2];
	char s[32];

	if (pipe(p) != 0)
		bail_out("pipe: %s", strerror(errno));
	snprintf(s, sizeof s, "%" PRIu64, seed);
	c->len = 0;
	c->fd = p[0];
	if ((c->pid = fork()) == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execl(writer_path, writer_path, dir, s, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	running = c->pid;
}

/* The next line within ms milliseconds (-1: until EOF); NULL on timeout
 * or EOF. */
static const char *read_line(struct child *c, int ms)
{
	static char line[256];
	uint64_t end = sh_clock_mono_ms() + (uint64_t)(ms < 0 ? 0 : ms);

	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		struct pollfd p = {c->fd, POLLIN, 0};
		uint64_t now = sh_clock_mono_ms();
		ssize_t k;

		if (nl != NULL) {
			size_t n = (size_t)(nl - c->buf);

			snprintf(line, sizeof line, "%.*s", (int)n, c->buf);
			memmove(c->buf, nl + 1, c->len - n - 1);
			c->len -= n + 1;
			return line;
		}
		if (ms >= 0 && now >= end)
			return NULL;
		if (poll(&p, 1, ms < 0 ? -1 : (int)(end - now)) <= 0)
			continue;
		k = read(c->fd, c->buf + c->len, sizeof c->buf - c->len - 1);
		if (k <= 0)
			return NULL;
		c->len += (size_t)k;
	}
}

/* ------------------------------------------------------------ checking */

static uint64_t acked, recovered_max, checks, failures, starts_checked;

static void check_ready(const char *line)
{
	uint64_t last, points, k;
	char got[64], want[33];

	if (sscanf(line, "ready %" SCNu64 " %63s %" SCNu64, &last, got, &points) != 3)
		bail_out("writer said '%s'", line);
	k = last > 1 ? last - 1 : 0;
	checks++;
	starts_checked++;
	if (k < acked || k < recovered_max) {
		failures++;
		diag("start %" PRIu64 ": recovered %" PRIu64 " batches, but %" PRIu64
		     " were acknowledged and %" PRIu64 " recovered before",
		     starts_checked, k, acked, recovered_max);
		return;
	}
	recovered_max = k;
	if (last == 0) {
		snprintf(want, sizeof want, "%032d", 0);
	} else {
		ref_digest(k, want);
	}
	if (strcmp(got, want) != 0) {
		failures++;
		diag("start %" PRIu64 ": after %" PRIu64
		     " batches the digest is %s, the reference's %s",
		     starts_checked, k, got, want);
	}
}

static void take_line(const char *line)
{
	uint64_t b;

	if (strncmp(line, "ready ", 6) == 0)
		check_ready(line);
	else if (sscanf(line, "ack %" SCNu64, &b) == 1 && b + 1 > acked)
		acked = b + 1;
}

/* One life of the writer: start, maybe wait for ready, run, SIGKILL; then
 * read what it wrote before it died. */
static void one_life(struct sh_rand *r)
{
	struct child c;
	const char *line;
	bool early = sh_rand_below(r, 5) == 0;
	int status;
	uint64_t end;

	spawn(&c);
	if (!early) {
		line = read_line(&c, 20000 * scale);
		if (line == NULL || strncmp(line, "ready ", 6) != 0)
			bail_out("the writer did not start (%s)", line ? line : "no output");
		take_line(line);
	}
	end = sh_clock_mono_ms() + sh_rand_below(r, early ? 30 : 100);
	while (sh_clock_mono_ms() < end && (line = read_line(&c, (int)(end - sh_clock_mono_ms()))))
		take_line(line);
	kill(c.pid, SIGKILL);
	waitpid(c.pid, &status, 0);
	running = 0;
	while ((line = read_line(&c, -1)) != NULL)
		take_line(line);
	close(c.fd);
	if (!WIFSIGNALED(status))
		bail_out("the writer exited by itself (status %d)", status);
}

static void last_life(void)
{
	struct child c;
	const char *line;
	int status;

	spawn(&c);
	line = read_line(&c, 20000 * scale);
	ok(line != NULL && strncmp(line, "ready ", 6) == 0, "the writer starts once more");
	if (line != NULL)
		take_line(line);
	kill(c.pid, SIGTERM);
	waitpid(c.pid, &status, 0);
	running = 0;
	while ((line = read_line(&c, -1)) != NULL)
		take_line(line);
	close(c.fd);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "and stops cleanly on SIGTERM");
}

/* After the clean stop, open the storage here and compare once more. */
static void final_check(void)
{
	struct db_opts o = {.dir = dir,
			    .fsync = WAL_FSYNC_ALWAYS,
			    .segment_bytes = 64 << 10,
			    .wal_ahead_bytes = 16 << 10,
			    .max_payload_bytes = 1024,
			    .term = 1};
	struct db_recovery rec;
	struct sh_err err;
	struct db *db;
	char got[33], want[33];

	if (db_open(&o, &db, &rec, &err) != 0)
		bail_out("final open: %s", err.msg);
	ok(rec.last_index >= acked + 1,
	   "after the clean stop: %" PRIu64 " batches, all %" PRIu64 " acknowledged ones",
	   rec.last_index - 1, acked);
	digest_hex(rec.digest, got);
	ref_digest(rec.last_index - 1, want);
	is_str(got, want, "and the reference's digest");
	db_close(db);
}

int main(void)
{
	const char *b = getenv("top_builddir"), *s = getenv("SHOAL_SEED");
	struct sh_rand r;
	struct sh_err err;

	snprintf(writer_path, sizeof writer_path, "%s/t/storage_writer", b ? b : ".");
	if (access(writer_path, X_OK) != 0)
		bail_out("%s is not built", writer_path);
	if (getenv("SHOAL_TIMEOUT_SCALE") != NULL)
		scale = atoi(getenv("SHOAL_TIMEOUT_SCALE")) > 0
				? atoi(getenv("SHOAL_TIMEOUT_SCALE"))
				: 1;
	if (s != NULL)
		seed = strtoull(s, NULL, 10);
	else if (sh_rand_os(&seed) != 0)
		seed = 1;
	seed %= 1000000007;
	diag("seed %" PRIu64 " (SHOAL_SEED=%" PRIu64 " replays it)", seed, seed);
	sh_rand_seed(&r, seed);
	dir = make_tmpdir("crash");
	atexit(at_exit);
	if (store_new(&ref, &err) != 0)
		bail_out("%s", err.msg);
	for (int i = 0; i < KILLS; i++)
		one_life(&r);
	last_life();
	ok(failures == 0,
	   "%" PRIu64 " restarts checked after %d kills: no acknowledged batch "
	   "lost, digest always that of the batches recovered",
	   checks, KILLS);
	ok(acked >= 100, "%" PRIu64 " batches acknowledged in all", acked);
	final_check();
	store_free(ref);
	return done_testing();
}
