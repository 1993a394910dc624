/* Concurrency of the log's segment table (storage/wal): the log writer
 * thread appends and rolls to new segments (growing the table) while
 * another thread removes the prefix (as the apply thread does after a
 * snapshot) and readers read records and terms (as the apply thread and
 * the follower links do).  Every read must return the right bytes or "not
 * in the log" (for what the prefix removal took), and in the end the table
 * must be contiguous and agree with what a reopen finds.  Data races and
 * use after free are checked when built with --enable-tsan (contrib/test.sh
 * --tsan runs it) or --enable-sanitizers. */
#include "build.h"

#include "storage/wal.h"
#include "tap.h"
#include "util/rand.h"

#include "storage_util.h"

#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>

#define ROUNDS      6
#define SEGMENTS    72 /* created per round: the table grows past 8, 16 and 32 */
#define PER         8  /* records per append */
#define BODY        1000
#define SEG_RECORDS 64 /* 8 appends of 8 records fill a segment of WAL_MIN_SEG */
#define READERS     2

static const char *root;
static char dir[600];
static struct wal *w;
static _Atomic int stop;
static _Atomic long bad_reads, reads, removals;
static size_t max_segs;
static char bad_msg[SH_ERRMSG_SIZE];

static void fill_body(unsigned char *p, size_t len, uint64_t index)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)(index * 31 + i);
}

static struct wal_buf *batch(uint64_t first)
{
	struct wal_buf *b = wal_buf_new(0);

	for (uint64_t i = first; i < first + PER; i++) {
		unsigned char *p = wal_buf_add(b, 1 + i / 1000, i, WAL_NOOP, BODY);

		if (p == NULL)
			bail_out("wal_buf_add failed");
		fill_body(p, BODY, i);
	}
	return b;
}

static void note_bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note_bad(const char *fmt, ...)
{
	va_list ap;

	if (atomic_fetch_add(&bad_reads, 1) != 0)
		return;
	va_start(ap, fmt);
	vsnprintf(bad_msg, sizeof bad_msg, fmt, ap);
	va_end(ap);
}

/* Read a few records from a random index in the log and check them. */
static void read_some(struct sh_rand *r)
{
	uint64_t first = wal_first_index(w), last = wal_last_index(w), from, term;
	unsigned char want[BODY];
	struct wal_buf *b;
	struct wal_rec rec;
	struct sh_err err;
	size_t pos = 0;
	int rv;

	if (last < first)
		return;
	from = first + sh_rand_below(r, last - first + 1);
	if ((rv = wal_read(w, from, 1 + sh_rand_below(r, 16), 1 << 20, &b, &err)) != 0) {
		if (rv != SH_ENOTFOUND)
			note_bad("read from %" PRIu64 ": %s", from, err.msg);
		return;
	}
	while (wal_buf_next(b, &pos, &rec)) {
		fill_body(want, BODY, rec.index);
		if (rec.index != from || rec.len != BODY || memcmp(rec.body, want, BODY) != 0)
			note_bad("record %" PRIu64 " differs", from);
		from++;
	}
	wal_buf_unref(b);
	from = first + sh_rand_below(r, last - first + 1);
	rv = wal_term(w, from, &term, &err);
	if (rv != 0 && rv != SH_ENOTFOUND)
		note_bad("term of %" PRIu64 ": %s", from, err.msg);
	else if (rv == 0 && term != 1 + from / 1000)
		note_bad("term of %" PRIu64 " is wrong", from);
	atomic_fetch_add(&reads, 1);
}

static void *reader(void *arg)
{
	struct sh_rand r;

	sh_rand_seed(&r, (uint64_t)(uintptr_t)arg);
	while (!atomic_load(&stop)) {
		read_some(&r);
		sched_yield();
	}
	return NULL;
}

/* Remove the oldest segment each time two more have been created, so that
 * the table keeps growing while it shrinks at its front. */
static void *remover(void *arg)
{
	struct sh_err err;
	size_t seen = 0;

	(void)arg;
	while (!atomic_load(&stop)) {
		uint64_t first = wal_first_index(w);
		size_t n = wal_segments(w);

		if (n >= seen + 2) {
			/* a segment holds SEG_RECORDS records: this takes the first */
			if (wal_remove_prefix(w, first + SEG_RECORDS + 2, &err) != 0)
				note_bad("remove prefix at %" PRIu64 ": %s", first, err.msg);
			atomic_fetch_add(&removals, 1);
			seen = wal_segments(w);
		}
		sched_yield();
	}
	return NULL;
}

/* The table is contiguous: every index from first to last reads back. */
static bool contiguous(void)
{
	uint64_t next = wal_first_index(w), last = wal_last_index(w);

	while (next <= last) {
		struct wal_buf *b;

		if (wal_read(w, next, 100000, 64 << 20, &b, NULL) != 0)
			return false;
		next = b->last + 1;
		wal_buf_unref(b);
	}
	return true;
}

static void round_once(int round)
{
	struct wal_writer_opts wo = {WAL_FSYNC_NEVER, 0, -1, false};
	struct wal_opts o = {WAL_MIN_SEG, 4096};
	pthread_t rd[READERS], rm;
	struct wal_writer *ww;
	struct sh_err err;
	uint64_t first, last, next = 1;

	snprintf(dir, sizeof dir, "%s/r%d", root, round);
	if (wal_open(dir, &o, &w, NULL, &err) != 0 || wal_writer_start(w, &wo, &ww, &err) != 0)
		bail_out("open: %s", err.msg);
	atomic_store(&stop, 0);
	for (int i = 0; i < READERS; i++)
		pthread_create(&rd[i], NULL, reader, (void *)(uintptr_t)(round * 10 + i + 1));
	pthread_create(&rm, NULL, remover, NULL);
	while (next <= SEGMENTS * SEG_RECORDS) {
		struct wal_buf *b = batch(next);

		if (wal_writer_append(ww, b, &err) != 0)
			bail_out("append %" PRIu64 ": %s", next, err.msg);
		wal_buf_unref(b);
		next += PER;
		if (wal_segments(w) > max_segs)
			max_segs = wal_segments(w);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < READERS; i++)
		pthread_join(rd[i], NULL);
	pthread_join(rm, NULL);
	wal_writer_stop(ww);
	first = wal_first_index(w);
	last = wal_last_index(w);
	if (!contiguous() || last != next - 1)
		note_bad("round %d: the table is not contiguous", round);
	wal_close(w);
	if (wal_open(dir, &o, &w, NULL, &err) != 0)
		bail_out("reopen: %s", err.msg);
	if (wal_first_index(w) != first || wal_last_index(w) != last || !contiguous())
		note_bad("round %d: a reopen finds another log", round);
	wal_close(w);
	rm_rf(dir);
}

int main(void)
{
	root = make_tmpdir("walthreads");
	for (int round = 0; round < ROUNDS; round++)
		round_once(round);
	is_int(atomic_load(&bad_reads), 0,
	       "%ld reads and %ld prefix removals during %d rounds of %d segments: all "
	       "consistent%s%s",
	       atomic_load(&reads), atomic_load(&removals), ROUNDS, SEGMENTS,
	       bad_msg[0] ? "; first problem: " : "", bad_msg);
	ok(atomic_load(&removals) > ROUNDS, "the prefix was removed while appending");
	ok(max_segs > 32, "the table grew to %zu segments meanwhile", max_segs);
	rm_rf(root);
	return done_testing();
}
