/*
 * bench_storage: the storage benchmark (`make bench`; doc/benchmarks.md,
 * "Storage").
 *
 * 1. Log append with fsync = always, batches of 1, 16, 256 and 4096
 *    entries of 512-byte bodies, through the log writer thread (one
 *    blocking append per batch), against the machine's floor measured in
 *    the same run: the same bytes written by a minimal loop of write() +
 *    fdatasync() on a plain file.  The two take turns batch by batch, so
 *    that both meet the same disturbances on a shared machine; each row
 *    runs `--reps` times and reports medians (the ratio is the median of
 *    the runs' ratios).  A last row shows group commit: batches of 1 with
 *    64 in flight against the floor's one flush per batch.
 *    Then reading the log back (wal_read, as the apply thread and the
 *    follower links do), from the page cache: records per second and MB/s
 *    for 512-byte and 64 KiB bodies, medians of `--reps` full passes.
 * 2. Restart with N 128-dim vectors (the Gaussian mixture of bench_data.h,
 *    1000 points per entry, collection defaults m 16, ef_construction
 *    200): the time to open from the log alone (the index rebuilt by
 *    replay) against the time to open from a snapshot, and the sizes.
 *
 * Figures, not assertions.  The files go to --dir (default: a new
 * directory under the current one), removed at the end.
 */
#include "build.h"

#include "bench_data.h"

#include "storage/db.h"
#include "storage/wal.h"
#include "util/alloc.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BODY 512

struct opts {
	char dir[512];
	uint64_t segment_bytes;
	size_t n;
	int reps;
	double seconds;
	int log, restart;
};

static void die(const char *what, const struct sh_err *err)
{
	fprintf(stderr, "bench_storage: %s: %s\n", what, err ? err->msg : strerror(errno));
	exit(1);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return v[n / 2];
}

/* ------------------------------------------------------------ 1. the log */

static struct wal_buf *make_batch(uint64_t first, size_t n)
{
	struct wal_buf *b = wal_buf_new(n * (WAL_REC_HDR + BODY));

	for (size_t i = 0; i < n; i++)
		memset(wal_buf_add(b, 1, first + i, WAL_NOOP, BODY), (int)(i & 0xff), BODY);
	return b;
}

/* Batches to run: about `seconds` at a guessed 1 ms per flush, at least
 * 64 MiB for the big ones, never fewer than 20. */
static size_t batches_for(size_t batch, double seconds)
{
	size_t by_time = (size_t)(seconds * 1000);
	size_t by_bytes = (64u << 20) / (batch * (WAL_REC_HDR + BODY));

	return by_time < by_bytes ? (by_time > 20 ? by_time : 20) : (by_bytes > 20 ? by_bytes : 20);
}

/* One run: the floor (the same bytes from the same buffers, one write()
 * + fdatasync() per batch, on a plain file) and the log (through its
 * writer thread, in_flight appends queued, then waited for) take turns,
 * a turn being in_flight batches, so both meet the same disturbances.
 * *tf and *tw are their total times. */
struct run {
	struct wal *w;
	struct wal_writer *ww;
	int fd;
	struct wal_op *ops;
};

static void run_open(const struct opts *op, size_t in_flight, struct run *r)
{
	char path[800];
	struct wal_opts wo = {op->segment_bytes};
	struct wal_writer_opts o = {WAL_FSYNC_ALWAYS, 0, -1};
	struct sh_err err;

	snprintf(path, sizeof path, "%s/wal", op->dir);
	rm_rf(path);
	if (wal_open(path, &wo, &r->w, NULL, &err) != 0 ||
	    wal_writer_start(r->w, &o, &r->ww, &err) != 0)
		die("wal", &err);
	snprintf(path, sizeof path, "%s/floor", op->dir);
	if ((r->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0640)) < 0)
		die(path, NULL);
	r->ops = sh_calloc(in_flight, sizeof *r->ops);
}

static void run_close(const struct opts *op, struct run *r)
{
	char path[800];

	wal_writer_stop(r->ww);
	wal_close(r->w);
	close(r->fd);
	snprintf(path, sizeof path, "%s/wal", op->dir);
	rm_rf(path);
	snprintf(path, sizeof path, "%s/floor", op->dir);
	unlink(path);
	sh_free(r->ops);
}

static void run_turns(const struct opts *op, struct wal_buf **bufs, size_t batches,
		      size_t in_flight, double *tf, double *tw, uint64_t *syncs)
{
	struct run r;

	run_open(op, in_flight, &r);
	*tf = *tw = 0;
	for (size_t i = 0; i < batches; i += in_flight) {
		size_t k = batches - i < in_flight ? batches - i : in_flight;
		double t0 = now_sec();

		for (size_t j = 0; j < k; j++)
			if (write(r.fd, bufs[i + j]->data, bufs[i + j]->len) !=
				    (ssize_t)bufs[i + j]->len ||
			    fdatasync(r.fd) != 0)
				die("floor write", NULL);
		*tf += now_sec() - t0;
		t0 = now_sec();
		for (size_t j = 0; j < k; j++) {
			r.ops[j] = (struct wal_op){.type = WAL_OP_APPEND, .buf = bufs[i + j]};
			wal_writer_submit(r.ww, &r.ops[j]);
		}
		for (size_t j = 0; j < k; j++)
			if (wal_writer_wait(r.ww, &r.ops[j]) != 0)
				die("append", &r.ops[j].err);
		*tw += now_sec() - t0;
	}
	*syncs = wal_writer_syncs(r.ww);
	run_close(op, &r);
}

static void log_row(const struct opts *o, size_t batch, size_t in_flight)
{
	size_t batches = batches_for(batch, o->seconds);
	struct wal_buf **bufs = sh_calloc(batches, sizeof *bufs);
	double tw[16], tf[16], ratio[16], bytes;
	uint64_t syncs = 0;

	for (size_t i = 0; i < batches; i++)
		bufs[i] = make_batch(1 + i * batch, batch);
	for (int r = 0; r < o->reps; r++) {
		run_turns(o, bufs, batches, in_flight, &tf[r], &tw[r], &syncs);
		ratio[r] = tw[r] / tf[r];
	}
	bytes = (double)bufs[0]->len * (double)batches;
	printf("%6zu %9zu %8zu %13.0f %13.0f %9.1f %9.1f %7.2fx %8.2f\n", batch, in_flight, batches,
	       (double)(batch * batches) / median(tw, o->reps),
	       (double)(batch * batches) / median(tf, o->reps), bytes / median(tw, o->reps) / 1e6,
	       bytes / median(tf, o->reps) / 1e6, median(ratio, o->reps),
	       (double)batches / (double)syncs);
	for (size_t i = 0; i < batches; i++)
		wal_buf_unref(bufs[i]);
	sh_free(bufs);
}

static void bench_log(const struct opts *o)
{
	static const size_t sizes[] = {1, 16, 256, 4096};

	printf("== log append, fsync = always, %d-byte bodies (%d-byte records); medians of %d\n",
	       BODY, BODY + WAL_REC_HDR, o->reps);
	printf("%6s %9s %8s %13s %13s %9s %9s %8s %8s\n", "batch", "in-flight", "batches",
	       "entries/s", "floor ent/s", "MB/s", "floor MB/s", "vs floor", "ops/sync");
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
		log_row(o, sizes[i], 1);
	log_row(o, 1, 64); /* group commit: many small appends, one flush */
	fflush(stdout);
}

/* Read the whole log back, in the apply thread's chunks; seconds. */
static double read_pass(struct wal *w)
{
	uint64_t from = wal_first_index(w), last = wal_last_index(w);
	double t0 = now_sec();
	struct sh_err err;

	while (from <= last) {
		struct wal_buf *b;

		if (wal_read(w, from, 4096, 64u << 20, &b, &err) != 0)
			die("read", &err);
		from = b->last + 1;
		wal_buf_unref(b);
	}
	return now_sec() - t0;
}

static void read_row(const struct opts *o, size_t body, size_t records)
{
	char path[800];
	struct wal_opts wo = {o->segment_bytes};
	struct sh_err err;
	struct wal *w;
	double t[16];

	snprintf(path, sizeof path, "%s/wal", o->dir);
	rm_rf(path);
	if (wal_open(path, &wo, &w, NULL, &err) != 0)
		die("wal", &err);
	for (size_t i = 0; i < records; i += 256) {
		struct wal_buf *b = wal_buf_new(256 * (WAL_REC_HDR + body));

		for (size_t j = i; j < i + 256 && j < records; j++)
			memset(wal_buf_add(b, 1, 1 + j, WAL_NOOP, body), (int)(j & 0xff), body);
		if (wal_append(w, &b, 1, &err) != 0)
			die("append", &err);
		wal_buf_unref(b);
	}
	if (wal_sync(w, &err) != 0)
		die("sync", &err);
	read_pass(w); /* warm */
	for (int r = 0; r < o->reps; r++)
		t[r] = read_pass(w);
	printf("%6zu %9zu %13.0f %9.1f\n", body, records, (double)records / median(t, o->reps),
	       (double)records * (double)(body + WAL_REC_HDR) / median(t, o->reps) / 1e6);
	wal_close(w);
	rm_rf(path);
}

static void bench_read(const struct opts *o)
{
	printf("== log read back (wal_read from the page cache); medians of %d\n", o->reps);
	printf("%6s %9s %13s %9s\n", "body", "records", "records/s", "MB/s");
	read_row(o, BODY, 400000);
	read_row(o, 64u << 10, 4000);
	fflush(stdout);
}

/* ------------------------------------------------------------ 2. restart */

/* Append e as entry index to w. */
static void append_entry(struct wal *w, const struct entry *e, uint64_t index)
{
	struct wal_buf *b = wal_buf_new(0);
	struct sh_err err;

	if (entry_encode(e, b, 1, index, &err) != 0 || wal_append(w, &b, 1, &err) != 0)
		die("log", &err);
	wal_buf_unref(b);
}

/* Write the log of N points (1000 per entry) without applying it. */
static void write_log(const char *dir, const struct dataset *d)
{
	char path[800];
	struct wal_opts wo = {64u << 20};
	struct entry e = {.type = WAL_CREATE};
	struct coll_point *pts = sh_calloc(1000, sizeof *pts);
	struct wal *w;
	struct sh_err err;
	uint64_t index = 1;

	snprintf(path, sizeof path, "%s/wal", dir);
	if (wal_open(path, &wo, &w, NULL, &err) != 0)
		die("wal", &err);
	e.params = (struct coll_params){"bench", (uint32_t)d->dim, SH_METRIC_L2, 16, 200, 1};
	append_entry(w, &e, index++);
	for (size_t i = 0; i < d->n; i += 1000) {
		size_t n = d->n - i < 1000 ? d->n - i : 1000;

		for (size_t j = 0; j < n; j++)
			pts[j] = (struct coll_point){i + j, d->base + (i + j) * d->dim,
						     (uint32_t)d->dim, NULL, 0};
		e = (struct entry){
			.type = WAL_UPSERT, .collection = "bench", .points = pts, .n = n};
		append_entry(w, &e, index++);
	}
	if (wal_sync(w, &err) != 0)
		die("log", &err);
	wal_close(w);
	sh_free(pts);
}

static double open_time(const char *dir, struct db_recovery *rec, bool snapshot)
{
	struct db_opts o = {.dir = dir, .segment_bytes = 64u << 20, .max_payload_bytes = 1024};
	struct sh_err err;
	struct db *db;
	double t0 = now_sec();

	if (db_open(&o, &db, rec, &err) != 0)
		die("open", &err);
	t0 = now_sec() - t0;
	if (snapshot && db_snapshot(db, &err) != 0)
		die("snapshot", &err);
	db_close(db);
	return t0;
}

static uint64_t dir_bytes(const char *dir, const char *sub)
{
	char path[700], cmd[800];
	FILE *f;
	unsigned long long kb = 0;

	snprintf(path, sizeof path, "%s/%s", dir, sub);
	snprintf(cmd, sizeof cmd, "du -sk '%s'", path);
	if ((f = popen(cmd, "r")) != NULL) {
		if (fscanf(f, "%llu", &kb) != 1)
			kb = 0;
		pclose(f);
	}
	return kb * 1024;
}

static void bench_restart(const struct opts *o)
{
	struct dataset d;
	struct db_recovery a, b;
	char dir[600], snap[700];
	double t_log, t_snap, t_snap_write;
	uint64_t log_bytes;

	snprintf(dir, sizeof dir, "%s/restart", o->dir);
	mkdir(dir, 0750);
	data_gauss(&d, o->n, 1);
	printf("== restart with %zu vectors of %zu dims (gauss, m 16, ef_construction 200)\n", d.n,
	       d.dim);
	fflush(stdout);
	write_log(dir, &d);
	log_bytes = dir_bytes(dir, "wal");
	t_snap_write = now_sec();
	t_log = open_time(dir, &a, true); /* rebuild from the log, then snapshot */
	t_snap_write = now_sec() - t_snap_write - t_log;
	snprintf(snap, sizeof snap, "%s/snap", dir);
	t_snap = open_time(dir, &b, false);
	printf("%-34s %10.2f s  (%" PRIu64 " entries, %.0f MB of log, %.0f points/s)\n",
	       "open from the log (rebuild):", t_log, a.replayed, (double)log_bytes / 1e6,
	       (double)d.n / t_log);
	printf("%-34s %10.2f s  (%.0f MB)\n", "snapshot written (and closed) in:", t_snap_write,
	       (double)dir_bytes(dir, "snap") / 1e6);
	printf("%-34s %10.2f s  (snapshot at %" PRIu64 ", %" PRIu64 " entries replayed)\n",
	       "open from the snapshot:", t_snap, b.snap_index, b.replayed);
	printf("%-34s %10.1fx  (digests %s)\n", "snapshot restart is faster by", t_log / t_snap,
	       digest_equal(a.digest, b.digest) ? "equal" : "DIFFER");
	fflush(stdout);
	data_free(&d);
	rm_rf(dir);
}

static void usage(void)
{
	fprintf(stderr, "usage: bench_storage [--dir DIR] [--n N] [--reps R] [--seconds S]\n"
			"                     [--segment-bytes B] [--log-only | --restart-only]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"dir", 1, NULL, 'd'},           {"n", 1, NULL, 'n'},
		{"reps", 1, NULL, 'r'},          {"seconds", 1, NULL, 's'},
		{"log-only", 0, NULL, 'l'},      {"restart-only", 0, NULL, 'R'},
		{"segment-bytes", 1, NULL, 'S'}, {NULL, 0, NULL, 0}};
	struct opts o = {"", 64u << 20, 100000, 3, 1.0, 1, 1};
	bool own_dir = false;
	int c;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'd': snprintf(o.dir, sizeof o.dir, "%s", optarg); break;
		case 'n': o.n = strtoull(optarg, NULL, 10); break;
		case 'r':
			o.reps = atoi(optarg) < 1 ? 1 : atoi(optarg) > 15 ? 15 : atoi(optarg);
			break;
		case 's': o.seconds = atof(optarg); break;
		case 'S': o.segment_bytes = strtoull(optarg, NULL, 10); break;
		case 'l': o.restart = 0; break;
		case 'R': o.log = 0; break;
		default: usage();
		}
	}
	if (o.dir[0] == '\0') {
		snprintf(o.dir, sizeof o.dir, "bench-storage-XXXXXX");
		if (mkdtemp(o.dir) == NULL)
			die("mkdtemp", NULL);
		own_dir = true;
	}
	mkdir(o.dir, 0750);
	sh_log_set_level(SH_LOG_WARN);
	printf("bench_storage: files in %s\n", o.dir);
	if (o.log) {
		bench_log(&o);
		bench_read(&o);
	}
	if (o.restart)
		bench_restart(&o);
	if (own_dir)
		rm_rf(o.dir);
	return 0;
}
