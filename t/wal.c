/* Tests of storage/wal: batches, append and read back, segments, reopen,
 * truncating a suffix, removing a prefix, reset, the writer thread (group
 * commit, order, the eventfd, a failed append and resubmission, the
 * fsync policies); and damaged files: a byte flipped in the tail, in the
 * middle, in an older segment, in a header, a segment cut mid-record, a
 * tail torn before an fsync, zeros after the end, a missing segment. */
#include "build.h"

#include "storage/diskio.h"
#include "storage/le.h"
#include "storage/wal.h"
#include "storage/wal_impl.h"
#include "tap.h"
#include "util/alloc.h"
#include "util/crc32c.h"

#include "storage_util.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <sys/eventfd.h>

static const char *root;
static char dir[600];

static void fresh(const char *name)
{
	snprintf(dir, sizeof dir, "%s/%s", root, name);
}

/* A body whose bytes depend on the index, so reads can be checked. */
static void fill_body(unsigned char *p, size_t len, uint64_t index)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)(index * 31 + i);
}

static struct wal_buf *batch(uint64_t term, uint64_t first, size_t n, size_t body)
{
	struct wal_buf *b = wal_buf_new(0);

	for (size_t i = 0; i < n; i++) {
		unsigned char *p = wal_buf_add(b, term, first + i, WAL_NOOP, body);

		if (p == NULL)
			bail_out("wal_buf_add failed");
		fill_body(p, body, first + i);
	}
	return b;
}

static struct wal *open_ok(uint64_t seg_bytes, struct wal_open_info *info)
{
	struct wal_opts o = {seg_bytes, WAL_AHEAD_DEFAULT};
	struct wal *w = NULL;
	struct sh_err err;

	if (wal_open(dir, &o, &w, info, &err) != 0)
		bail_out("wal_open %s: %s", dir, err.msg);
	return w;
}

/* Append n records of body bytes from the next index, then fsync. */
static void append(struct wal *w, uint64_t term, size_t n, size_t body)
{
	struct wal_buf *b = batch(term, wal_last_index(w) + 1, n, body);
	struct sh_err err;

	if (wal_append(w, &b, 1, &err) != 0 || wal_sync(w, &err) != 0)
		bail_out("append: %s", err.msg);
	wal_buf_unref(b);
}

/* Every record from..to is there with the right term and body. */
static int check_range(struct wal *w, uint64_t from, uint64_t to, size_t body)
{
	uint64_t next = from;

	while (next <= to) {
		struct wal_buf *b;
		struct wal_rec r;
		size_t pos = 0;
		unsigned char want[4096];

		if (wal_read(w, next, 1000, 1 << 20, &b, NULL) != 0)
			return 0;
		if (b->len == 0) {
			diag("record %" PRIu64 " reads as nothing", next);
			wal_buf_unref(b);
			return 0;
		}
		while (wal_buf_next(b, &pos, &r)) {
			fill_body(want, body, r.index);
			if (r.index != next || r.len != body || memcmp(r.body, want, body) != 0) {
				diag("record %" PRIu64 " differs", next);
				wal_buf_unref(b);
				return 0;
			}
			next++;
		}
		wal_buf_unref(b);
	}
	return 1;
}

static void test_buf(void)
{
	struct wal_buf *b = batch(3, 10, 3, 5), *r;
	struct wal_rec rec;
	size_t pos = 0, n = 0;

	is_int(b->n, 3, "a batch of 3 records");
	is_int(b->first, 10, "first index");
	is_int(b->last, 12, "last index");
	is_int(b->len, 3 * (WAL_REC_HDR + 5), "length = 3 headers + bodies");
	while (wal_buf_next(b, &pos, &rec))
		n += rec.term == 3 && rec.index == 10 + n && rec.len == 5 && rec.type == WAL_NOOP;
	is_int(n, 3, "iteration gives every record back");
	r = wal_buf_ref(b);
	wal_buf_unref(b);
	is_int(r->n, 3, "a second reference keeps the buffer");
	wal_buf_unref(r);
}

static void test_append_read_reopen(void)
{
	struct wal_open_info info;
	struct wal *w;
	uint64_t term = 0;

	fresh("basic");
	w = open_ok(1 << 20, &info);
	is_int(wal_first_index(w), 1, "an empty log starts at index 1");
	is_int(wal_last_index(w), 0, "and has no entry");
	is_int(info.segments, 1, "one segment was created");
	append(w, 1, 10, 100);
	append(w, 2, 5, 100);
	is_int(wal_last_index(w), 15, "15 entries");
	is_int(wal_last_term(w), 2, "last term 2");
	is_int(wal_synced_index(w), 15, "synced up to 15");
	ok(check_range(w, 1, 15, 100), "read back every entry");
	is_int(wal_term(w, 10, &term, NULL), 0, "term of entry 10");
	is_int(term, 1, "is 1");
	is_int(wal_term(w, 16, &term, NULL), SH_ENOTFOUND, "no term past the end");
	wal_close(w);
	w = open_ok(1 << 20, &info);
	is_int(wal_last_index(w), 15, "reopen: 15 entries");
	is_int(wal_last_term(w), 2, "reopen: last term 2");
	is_int(info.cut_bytes, 0, "nothing cut");
	ok(check_range(w, 1, 15, 100), "reopen: every entry intact");
	wal_close(w);
}

static void test_segments(void)
{
	struct wal_buf *b;
	struct sh_err err;
	struct wal *w;

	fresh("segs");
	w = open_ok(WAL_MIN_SEG, NULL);
	for (int i = 0; i < 40; i++)
		append(w, 1, 10, 1000); /* 10 KB a batch: a segment per ~7 batches */
	ok(wal_segments(w) >= 5, "%zu segments of 64 KiB", wal_segments(w));
	ok(check_range(w, 1, 400, 1000), "reads across segments");
	is_int(wal_read(w, 50, 1000, 4096, &b, &err), 0, "a read limited to 4 KiB");
	is_int(b->n, 3, "gets 3 records of 1040 bytes");
	wal_buf_unref(b);
	is_int(wal_read(w, 50, 1000, 10, &b, &err), 0, "a limit below one record");
	is_int(b->n, 1, "still gets one record");
	wal_buf_unref(b);
	wal_close(w);
	w = open_ok(WAL_MIN_SEG, NULL);
	is_int(wal_last_index(w), 400, "reopen: 400 entries in segments");
	ok(check_range(w, 1, 400, 1000), "reopen: all intact");

	/* remove a prefix: whole segments only */
	is_int(wal_remove_prefix(w, 150, &err), 0, "remove the prefix up to 150");
	ok(wal_first_index(w) > 1 && wal_first_index(w) <= 151, "the log now starts at %" PRIu64,
	   wal_first_index(w));
	is_int(wal_read(w, 1, 10, 1 << 20, &b, &err), SH_ENOTFOUND, "entry 1 is gone");
	ok(check_range(w, 151, 400, 1000), "151..400 remain");
	is_int(wal_remove_prefix(w, 1000, &err), 0, "removing past the end");
	is_int(wal_segments(w), 1, "keeps the active segment");

	/* truncate a suffix across segments, then go on */
	is_int(wal_truncate(w, wal_first_index(w) + 5, &err), 0, "truncate in the active segment");
	is_int(wal_last_index(w), wal_first_index(w) + 5, "last index is the truncation point");
	for (int i = 0; i < 30; i++)
		append(w, 7, 10, 1000);
	ok(wal_segments(w) >= 4, "appended into new segments (%zu)", wal_segments(w));
	is_int(wal_truncate(w, wal_first_index(w) + 10, &err), 0, "truncate across segments");
	is_int(wal_segments(w), 1, "later segments deleted");
	is_int(wal_last_term(w), 7, "last term is that of the entry kept");
	is_int(wal_truncate(w, 1, &err), SH_EINVAL, "cannot truncate before the first entry");
	like(err.msg, "the log starts at", "and says why");
	wal_close(w);
	w = open_ok(WAL_MIN_SEG, NULL);
	is_int(wal_last_term(w), 7, "reopen after truncation: last term");
	is_int(wal_reset(w, 5000, &err), 0, "reset to 5000");
	is_int(wal_first_index(w), 5000, "the log starts at 5000");
	is_int(wal_last_index(w), 4999, "empty");
	append(w, 8, 3, 10);
	wal_close(w);
	w = open_ok(WAL_MIN_SEG, NULL);
	is_int(wal_first_index(w), 5000, "reopen after reset: first 5000");
	is_int(wal_last_index(w), 5002, "last 5002");
	wal_close(w);
}

/* ------------------------------------------------------------ the writer */

struct submitter {
	struct wal_writer *ww;
	struct wal_op ops[200];
	struct wal_buf *bufs[200];
};

static void test_writer_group_commit(void)
{
	struct wal_writer_opts o = {WAL_FSYNC_ALWAYS, 0, -1};
	static struct submitter s;
	struct wal_writer *ww;
	struct sh_err err;
	struct wal *w;
	size_t n_done = 0, in_order = 1;
	uint64_t v;
	struct pollfd pfd;

	fresh("writer");
	w = open_ok(1 << 20, NULL);
	o.notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	is_int(wal_writer_start(w, &o, &s.ww, &err), 0, "start the writer");
	ww = s.ww;
	for (int i = 0; i < 200; i++) {
		s.bufs[i] = batch(1, (uint64_t)i * 4 + 1, 4, 64);
		s.ops[i] = (struct wal_op){.type = WAL_OP_APPEND, .buf = s.bufs[i], .notify = true};
		wal_writer_submit(ww, &s.ops[i]);
	}
	while (n_done < 200) {
		struct wal_op *op;

		pfd = (struct pollfd){o.notify_fd, POLLIN, 0};
		if (poll(&pfd, 1, 10000) != 1)
			break;
		if (read(o.notify_fd, &v, sizeof v) != sizeof v)
			continue;
		while ((op = wal_writer_done(ww)) != NULL) {
			in_order &= op == &s.ops[n_done] && op->rv == 0;
			n_done++;
		}
	}
	is_int(n_done, 200, "all 200 appends reported done through the eventfd");
	ok(in_order, "in submission order, all successful");
	is_int(wal_writer_durable(ww), 800, "durable up to 800");
	ok(wal_writer_syncs(ww) < 200, "group commit: %" PRIu64 " flushes for 200 appends",
	   wal_writer_syncs(ww));
	for (int i = 0; i < 200; i++)
		wal_buf_unref(s.bufs[i]);

	/* an append that does not follow fails; resubmitting from the right
	 * index works */
	s.bufs[0] = batch(1, 900, 1, 8);
	is_int(wal_writer_append(ww, s.bufs[0], &err), SH_EINVAL, "a gap is refused");
	like(err.msg, "append of index 900 does not follow 800", "with the indexes");
	wal_buf_unref(s.bufs[0]);
	s.bufs[0] = batch(1, 801, 1, 8);
	is_int(wal_writer_append(ww, s.bufs[0], &err), 0, "the right index is accepted");
	wal_buf_unref(s.bufs[0]);

	/* truncation through the writer, then appends continue after it */
	s.ops[0] = (struct wal_op){.type = WAL_OP_TRUNCATE, .index = 500};
	wal_writer_submit(ww, &s.ops[0]);
	is_int(wal_writer_wait(ww, &s.ops[0]), 0, "truncate after 500 through the writer");
	is_int(wal_writer_durable(ww), 500, "durable index follows the truncation down");
	s.bufs[0] = batch(2, 501, 2, 8);
	is_int(wal_writer_append(ww, s.bufs[0], &err), 0, "append 501..502 after it");
	wal_buf_unref(s.bufs[0]);
	wal_writer_stop(ww);
	is_int(wal_last_index(w), 502, "the log ends at 502");
	is_int(wal_last_term(w), 2, "in term 2");
	close(o.notify_fd);
	wal_close(w);
}

static void test_writer_policies(void)
{
	struct wal_writer_opts o = {WAL_FSYNC_INTERVAL, 50, -1};
	struct wal_writer *ww;
	struct sh_err err;
	struct wal_buf *b;
	struct wal *w;

	fresh("interval");
	w = open_ok(1 << 20, NULL);
	wal_writer_start(w, &o, &ww, &err);
	b = batch(1, 1, 10, 32);
	is_int(wal_writer_append(ww, b, &err), 0, "interval: append");
	wal_buf_unref(b);
	is_int(wal_writer_durable(ww), 10, "interval: acknowledged once written");
	for (int i = 0; i < 200 && wal_synced_index(w) < 10; i++)
		usleep(5000);
	is_int(wal_synced_index(w), 10, "interval: flushed within the interval");
	wal_writer_stop(ww);
	wal_close(w);

	fresh("never");
	w = open_ok(1 << 20, NULL);
	o.fsync = WAL_FSYNC_NEVER;
	wal_writer_start(w, &o, &ww, &err);
	b = batch(1, 1, 10, 32);
	is_int(wal_writer_append(ww, b, &err), 0, "never: append");
	wal_buf_unref(b);
	is_int(wal_writer_durable(ww), 10, "never: acknowledged once written");
	is_int(wal_writer_syncs(ww), 0, "never: no flush while running");
	wal_writer_stop(ww);
	is_int(wal_synced_index(w), 10, "never: flushed at stop");
	wal_close(w);
}

/* Manual mode: nothing is written until wal_writer_run, which writes every
 * queued append with one write and one fdatasync (group commit). */
static void test_writer_manual(void)
{
	struct wal_writer_opts o = {WAL_FSYNC_ALWAYS, 0, -1, true};
	struct wal_op ops[50];
	struct wal_buf *bufs[50];
	struct wal_writer *ww;
	struct wal_op *op;
	struct sh_err err;
	struct wal *w;
	size_t n_done = 0, in_order = 1;

	fresh("manual");
	w = open_ok(1 << 20, NULL);
	is_int(wal_writer_start(w, &o, &ww, &err), 0, "start a manual writer");
	ok(!wal_writer_pending(ww), "nothing pending");
	for (int i = 0; i < 50; i++) {
		bufs[i] = batch(1, (uint64_t)i * 2 + 1, 2, 16);
		ops[i] = (struct wal_op){.type = WAL_OP_APPEND, .buf = bufs[i], .notify = true};
		wal_writer_submit(ww, &ops[i]);
	}
	ok(wal_writer_pending(ww), "50 appends pending");
	is_int(wal_last_index(w), 0, "nothing written before wal_writer_run");
	ok(wal_writer_done(ww) == NULL, "nothing done");
	wal_writer_run(ww);
	ok(!wal_writer_pending(ww), "wal_writer_run ran them all");
	is_int(wal_synced_index(w), 100, "written and flushed");
	is_int(wal_writer_syncs(ww), 1, "with one fdatasync");
	is_int(wal_writer_durable(ww), 100, "durable up to 100");
	while ((op = wal_writer_done(ww)) != NULL) {
		in_order &= op == &ops[n_done] && op->rv == 0;
		n_done++;
	}
	ok(n_done == 50 && in_order, "all 50 on the done list, in order");
	for (int i = 0; i < 50; i++)
		wal_buf_unref(bufs[i]);
	bufs[0] = batch(1, 101, 1, 16);
	is_int(wal_writer_append(ww, bufs[0], &err), 0, "the blocking append runs it inline");
	wal_buf_unref(bufs[0]);
	is_int(wal_synced_index(w), 101, "durable");
	wal_writer_stop(ww);
	wal_close(w);
}

/* ------------------------------------------------------------ damaged files */

/* Offset of record index (1-based, 3 batches of 4 x 100-byte bodies per
 * segment file written by make_log) in the file. */
#define BODY 100
#define REC  (WAL_REC_HDR + BODY)

static long long rec_off(uint64_t index_in_seg)
{
	return WAL_SEG_HDR + (long long)(index_in_seg - 1) * REC;
}

/* One segment, three synced batches of four records: 1..12. */
static void make_log(const char *name)
{
	struct wal *w;

	fresh(name);
	w = open_ok(1 << 20, NULL);
	for (int i = 0; i < 3; i++)
		append(w, 1, 4, BODY);
	wal_close(w);
}

static char seg1[700];

static const char *seg_path(uint64_t first)
{
	snprintf(seg1, sizeof seg1, "%s/%016" PRIx64 ".seg", dir, first);
	return seg1;
}

static int open_err(struct sh_err *err, struct wal_open_info *info)
{
	struct wal_opts o = {1 << 20, WAL_AHEAD_DEFAULT};
	struct wal *w = NULL;
	int rv = wal_open(dir, &o, &w, info, err);

	if (rv == 0) {
		snprintf(err->msg, sizeof err->msg, "last=%" PRIu64, wal_last_index(w));
		wal_close(w);
	}
	return rv;
}

static void test_tail_flip(void)
{
	struct wal_open_info info;
	struct sh_err err;
	char want[800];

	make_log("flip-tail");
	flip_byte(seg_path(1), rec_off(12) + WAL_REC_HDR + 7, 0x40);
	log_capture(root);
	is_int(open_err(&err, &info), 0, "a byte flipped in the last record: the log opens");
	is_str(err.msg, "last=11", "without the last record");
	is_int(info.cut_bytes, REC, "one record's bytes were cut");
	snprintf(want, sizeof want,
		 "segment '%s/0000000000000001.seg': cut a torn tail of %d bytes at offset %lld "
		 "(checksum mismatch",
		 dir, REC, rec_off(12));
	like(log_text(), want, "the warning names the file, bytes and offset");
	like(log_text(), "the log now ends at index 11", "and where the log ends");
	is_int(file_size(seg_path(1)), rec_off(12), "the file was truncated");
	is_int(open_err(&err, &info), 0, "opens again");
	is_int(info.cut_bytes, 0, "with nothing more to cut");
}

static void test_middle_flip(void)
{
	struct sh_err err;
	char want[800];
	long long size;

	make_log("flip-middle");
	size = file_size(seg_path(1));
	flip_byte(seg_path(1), rec_off(6) + WAL_REC_HDR + 50, 0x01);
	is_int(open_err(&err, NULL), SH_ECORRUPT, "a byte flipped in record 6 of 12: refused");
	snprintf(want, sizeof want,
		 "wal: segment '%s/0000000000000001.seg': corrupt record at offset %lld: "
		 "checksum mismatch",
		 dir, rec_off(6));
	like(err.msg, want, "names the file and offset");
	snprintf(want, sizeof want,
		 "; a valid record (index 9) written after it at offset %lld says index 8 was "
		 "durable",
		 rec_off(9));
	like(err.msg, want, "and the later record that proves it was durable");
	is_int(file_size(seg_path(1)), size, "nothing was cut");
}

static void test_unsynced_tear(void)
{
	struct wal_open_info info;
	struct sh_err err;

	/* records 9..12 were written together after the flush of 8: a damaged
	 * 9 with valid 10..12 behind it is a torn write (pages reached the
	 * disk out of order), not corruption */
	make_log("tear");
	flip_byte(seg_path(1), rec_off(9) + 2, 0xff);
	is_int(open_err(&err, &info), 0, "damaged record followed by unflushed ones: opens");
	is_str(err.msg, "last=8", "cut back to the last flush");
	is_int(info.cut_bytes, 4 * REC, "four records cut");
}

/* A record with a valid CRC in the wrong place is never a torn write. */
static void test_out_of_order(void)
{
	unsigned char rec[REC];
	struct sh_err err;
	char want[800];
	FILE *f;

	make_log("order");
	f = fopen(seg_path(1), "r+");
	ok(f != NULL && fseek(f, rec_off(12), SEEK_SET) == 0 && fread(rec, 1, REC, f) == REC,
	   "read record 12");
	le64_put(rec + 16, 13); /* claim index 13, with a matching CRC */
	le32_put(rec + 4, wal__rec_crc(rec, BODY));
	fseek(f, rec_off(12), SEEK_SET);
	fwrite(rec, 1, REC, f);
	fclose(f);
	is_int(open_err(&err, NULL), SH_ECORRUPT,
	       "a valid record out of order at the end: refused");
	snprintf(want, sizeof want,
		 "wal: segment '%s/0000000000000001.seg': corrupt record at offset %lld: index 13 "
		 "does not follow 11",
		 dir, rec_off(12));
	is_str(err.msg, want, "not taken for a torn tail");
}

static void test_cut_and_zeros(void)
{
	struct wal_open_info info;
	struct sh_err err;
	int fd;
	char zeros[4096] = {0};

	make_log("cut");
	cut_file(seg_path(1), rec_off(12) + 20);
	log_capture(root);
	is_int(open_err(&err, &info), 0, "segment cut inside a record header: opens");
	/* bytes 17..19 of record 12's header (its index, 12) are zeros: the
	 * bytes counted end at the last that is not zero */
	like(log_text(), "cut a torn tail of 17 bytes", "cuts the 20 bytes, counting 17");
	like(log_text(), "(record header cut short)", "says why");
	cut_file(seg_path(1), rec_off(11) + WAL_REC_HDR + 30);
	is_int(open_err(&err, &info), 0, "segment cut inside a body: opens");
	is_str(err.msg, "last=10", "without the cut record");
	is_int(info.cut_bytes, WAL_REC_HDR + 30, "cut exactly the partial record");

	fd = open(seg_path(1), O_WRONLY | O_APPEND);
	ok(fd >= 0 && write(fd, zeros, sizeof zeros) == sizeof zeros, "append 4 KiB of zeros");
	close(fd);
	log_capture(root);
	is_int(open_err(&err, &info), 0, "zeros after the end: opens");
	is_int(info.cut_bytes, 0, "they are space written ahead, not a tail: nothing cut");
	ok(strstr(log_text(), "torn tail") == NULL, "and nothing said");
	is_str(err.msg, "last=10", "no entry lost");
	is_int(file_size(seg_path(1)), rec_off(11), "and the clean close after drops them");
}

/* The zeros written ahead of the active segment's records (wal.c,
 * write_ahead): an append overwrites them, a reopen takes them for the
 * end of the log, a full segment loses them before the next is made, a
 * torn record written over them is cut as one, by its own bytes. */
static void test_write_ahead(void)
{
	struct wal_open_info info;
	struct wal *w;
	unsigned char junk[60], zeros[4096] = {0};
	uint64_t end, ahead;
	int fd;

	fresh("ahead");
	log_capture(root);
	w = open_ok(4u << 20, NULL);
	/* none on tmpfs (TMPDIR may be one): the checks of the size say so */
	ahead = strstr(log_text(), "no zeros written ahead") == NULL ? WAL_AHEAD_DEFAULT : 0;
	append(w, 1, 10, 100);
	end = WAL_SEG_HDR + 10 * (WAL_REC_HDR + 100);
	is_int(file_size(seg_path(1)), end + ahead,
	       "zeros written ahead of 10 records (%" PRIu64 ")", ahead);
	append(w, 1, 10, 100);
	is_int(file_size(seg_path(1)), ahead > 0 ? end + ahead : 2 * end - WAL_SEG_HDR,
	       "the next append goes over them");
	wal_close(w);
	end = WAL_SEG_HDR + 20 * (WAL_REC_HDR + 100);
	is_int(file_size(seg_path(1)), end, "a clean close leaves no zeros");
	/* as a crash leaves them */
	fd = open(seg_path(1), O_WRONLY | O_APPEND);
	for (int i = 0; i < 16; i++)
		ok(fd >= 0 && write(fd, zeros, sizeof zeros) == sizeof zeros, "zeros %d", i);
	close(fd);
	log_capture(root);
	w = open_ok(4u << 20, &info);
	is_int(wal_last_index(w), 20, "reopened: the 20 records, the zeros the log's end");
	is_int(info.cut_bytes, 0, "nothing cut");
	ok(strstr(log_text(), "torn tail") == NULL, "nothing said");
	append(w, 2, 5, 100);
	ok(check_range(w, 1, 25, 100), "appends go on after a reopen");
	wal_close(w);

	/* a torn record followed by zeros */
	end = WAL_SEG_HDR + 25 * (WAL_REC_HDR + 100);
	memset(junk, 0x5a, sizeof junk);
	fd = open(seg_path(1), O_WRONLY);
	ok(fd >= 0 && pwrite(fd, junk, sizeof junk, (off_t)end) == (ssize_t)sizeof junk &&
		   pwrite(fd, zeros, sizeof zeros, (off_t)end + 60) == (ssize_t)sizeof zeros,
	   "60 bytes of a torn record, then zeros");
	close(fd);
	w = open_ok(4u << 20, &info);
	is_int(wal_last_index(w), 25, "opens without it");
	is_int(info.cut_bytes, 60, "cut as a torn tail of its 60 bytes, not the zeros after");
	like(log_text(), "cut a torn tail of 60 bytes", "and said so");
	is_int(file_size(seg_path(1)), end, "the file ends where the log does");
	append(w, 2, 5, 100);
	is_int(file_size(seg_path(1)), end + 5 * (WAL_REC_HDR + 100) + ahead,
	       "the next append writes zeros ahead again");
	wal_close(w);
}

/* Full segments lose their zeros: only the last may end in them.  Those
 * of a crash, reopened with smaller segments, go when the segment rolls. */
static void test_ahead_roll(void)
{
	struct wal_open_info info;
	struct wal *w;
	unsigned char zeros[4096] = {0};
	uint64_t n, end;
	int fd;

	fresh("ahead-roll");
	w = open_ok(WAL_MIN_SEG, NULL);
	for (int i = 0; i < 20; i++)
		append(w, 1, 10, 1000);
	n = wal_segments(w);
	ok(n >= 3, "%" PRIu64 " segments of 64 KiB", n);
	is_int(file_size(seg_path(1)) % (WAL_REC_HDR + 1000), WAL_SEG_HDR,
	       "the first holds whole records and nothing after them");
	wal_close(w);
	w = open_ok(WAL_MIN_SEG, &info);
	is_int(wal_last_index(w), 200, "reopened: every record");
	is_int(info.cut_bytes, 0, "nothing cut");
	wal_close(w);

	fresh("ahead-crash-roll");
	w = open_ok(4u << 20, NULL);
	append(w, 1, 10, 1000);
	wal_close(w);
	end = WAL_SEG_HDR + 10 * (WAL_REC_HDR + 1000);
	fd = open(seg_path(1), O_WRONLY | O_APPEND);
	for (int i = 0; i < 32; i++) /* 128 KiB, past the next run's segment size */
		if (fd < 0 || write(fd, zeros, sizeof zeros) != sizeof zeros)
			bail_out("cannot append zeros to %s", seg_path(1));
	close(fd);
	w = open_ok(WAL_MIN_SEG, &info);
	is_int(info.cut_bytes, 0, "zeros of a crash past the segment size: nothing cut");
	for (int i = 0; i < 7; i++) /* the 7th finds the first full */
		append(w, 1, 10, 1000);
	is_int(wal_segments(w), 2, "the segment rolled");
	end += 60 * (WAL_REC_HDR + 1000);
	is_int(file_size(seg_path(1)), end, "the full one ends at its last record, zeros cut");
	wal_close(w);
	w = open_ok(WAL_MIN_SEG, &info);
	is_int(wal_last_index(w), 80, "reopened: every record");
	ok(check_range(w, 1, 80, 1000), "intact");
	wal_close(w);
}

static void test_older_segment(void)
{
	struct wal *w;
	struct sh_err err;
	char want[800];
	long long off;

	fresh("older");
	w = open_ok(WAL_MIN_SEG, NULL);
	for (int i = 0; i < 20; i++)
		append(w, 1, 10, 1000);
	ok(wal_segments(w) >= 3, "a log of %zu segments", wal_segments(w));
	wal_close(w);
	/* the first segment holds 1.. and is not the last: its last record
	 * damaged is corruption, not a tail */
	off = file_size(seg_path(1)) - 10;
	flip_byte(seg_path(1), off, 0x10);
	is_int(open_err(&err, NULL), SH_ECORRUPT, "damage at the end of an older segment: refused");
	snprintf(want, sizeof want,
		 "wal: segment '%s/0000000000000001.seg': corrupt record at offset %lld: "
		 "checksum mismatch",
		 dir, file_size(seg_path(1)) - (WAL_REC_HDR + 1000));
	like(err.msg, want, "names the segment and the record's offset");
	flip_byte(seg_path(1), off, 0x10);
	cut_file(seg_path(1), file_size(seg_path(1)) - 5);
	is_int(open_err(&err, NULL), SH_ECORRUPT, "an older segment cut mid-record: refused");
	like(err.msg, "record body cut short", "says so");
}

static void test_bad_header_and_gap(void)
{
	struct wal *w;
	struct sh_err err;
	char want[800];
	uint64_t second;

	make_log("header");
	flip_byte(seg_path(1), 17, 0x01);
	is_int(open_err(&err, NULL), SH_ECORRUPT, "a flipped byte in the segment header: refused");
	snprintf(want, sizeof want,
		 "wal: segment '%s/0000000000000001.seg': bad header: header checksum mismatch",
		 dir);
	is_str(err.msg, want, "exact message");

	fresh("gap");
	w = open_ok(WAL_MIN_SEG, NULL);
	for (int i = 0; i < 20; i++)
		append(w, 1, 10, 1000);
	wal_close(w);
	w = open_ok(WAL_MIN_SEG, NULL);
	wal_remove_prefix(w, 1, NULL); /* nothing: the first segment holds more */
	wal_close(w);
	/* delete the second segment: the third does not follow the first */
	{
		struct wal_buf *b;

		w = open_ok(WAL_MIN_SEG, NULL);
		second = 0;
		for (uint64_t i = 1; i <= wal_last_index(w) && second == 0; i += 1) {
			if (wal_read(w, i, 100000, 1 << 30, &b, NULL) == 0) {
				if (b->last < wal_last_index(w))
					second = b->last + 1;
				i = b->last;
				wal_buf_unref(b);
			}
		}
		wal_close(w);
	}
	ok(second > 1, "the second segment starts at %" PRIu64, second);
	unlink(seg_path(second));
	is_int(open_err(&err, NULL), SH_ECORRUPT, "a missing segment: refused");
	like(err.msg, "bad header: first index does not follow the previous segment",
	     "says the segments do not follow");

	make_log("tmpfile");
	{
		char p[800];
		struct wal_open_info info;
		FILE *f;

		snprintf(p, sizeof p, "%s/0000000000000099.seg.tmp", dir);
		f = fopen(p, "w");
		fclose(f);
		is_int(open_err(&err, &info), 0, "a leftover .tmp segment: opens");
		is_int(info.tmp_removed, 1, "and deletes it");
		ok(access(p, F_OK) != 0, "it is gone");
	}
}

/* Records read back are checked again (their CRC, length and index): a
 * byte that went bad on disk after the log was opened (the page cache
 * dropped, the page read again) is found by the reader, not applied or
 * sent to a follower. */
static void test_read_checks(void)
{
	struct wal_buf *b = NULL;
	struct sh_err err;
	struct wal *w;
	char want[900];

	make_log("read-crc");
	w = open_ok(1 << 20, NULL);
	flip_byte(seg_path(1), rec_off(5) + WAL_REC_HDR + 10, 0x08);
	is_int(wal_read(w, 1, 100, 1 << 20, &b, &err), SH_ECORRUPT,
	       "a record whose body went bad is refused");
	snprintf(want, sizeof want,
		 "wal: segment '%s/0000000000000001.seg': record 5 at offset %lld: checksum "
		 "mismatch (stored ",
		 dir, rec_off(5));
	like(err.msg, want, "naming the segment, the record and its offset: %s", err.msg);
	is_int(wal_read(w, 6, 2, 1 << 20, &b, &err), 0, "the records after it read");
	wal_buf_unref(b);
	flip_byte(seg_path(1), rec_off(8), 0x01);
	is_int(wal_read(w, 7, 100, 1 << 20, &b, &err), SH_ECORRUPT, "a bad length is refused");
	like(err.msg, "record 8 at offset", "at record 8: %s", err.msg);
	flip_byte(seg_path(1), rec_off(8), 0x01);
	flip_byte(seg_path(1), rec_off(10) + 16, 0x02);
	is_int(wal_read(w, 9, 100, 1 << 20, &b, &err), SH_ECORRUPT, "a bad index is refused");
	like(err.msg, "record 10 at offset", "at record 10: %s", err.msg);
	wal_close(w);
}

/* ------------------------------------------------------------ failed flushes */

/* Append n records of body bytes from the next index without a flush. */
static int append_nosync(struct wal *w, size_t n, size_t body, struct sh_err *err)
{
	struct wal_buf *b = batch(1, wal_last_index(w) + 1, n, body);
	int rv = wal_append(w, &b, 1, err);

	wal_buf_unref(b);
	return rv;
}

/* A flush that fails when an append rolls to a new segment is for good:
 * the next append does not flush again and go on as if nothing happened. */
static void test_flush_fails_on_roll(void)
{
	struct sh_err err;
	struct wal *w;

	fresh("roll-flush");
	w = open_ok(WAL_MIN_SEG, NULL);
	for (int i = 0; i < 6; i++)
		append(w, 1, 10, 1000);
	is_int(append_nosync(w, 10, 1000, &err), 0, "the active segment is full, not flushed");
	diskio_fail_after(0, EIO);
	is_int(append_nosync(w, 10, 1000, &err), SH_EIO, "the flush before the roll fails");
	diskio_fail_after(-1, 0);
	like(err.msg, "fdatasync failed: Input/output error", "and says so");
	is_int(append_nosync(w, 10, 1000, &err), SH_EIO, "the next append fails too");
	like(err.msg, "an earlier flush failed, restart the node", "because of it");
	is_int(wal_sync(w, &err), SH_EIO, "and so does a flush");
	is_int(wal_synced_index(w), 60, "the log is known flushed up to 60 only");
	ok(wal_broken(w, NULL), "the log says it is broken");
	wal_close(w);
	w = open_ok(WAL_MIN_SEG, NULL);
	is_int(wal_last_index(w), 70, "reopened: the records written are there");
	is_int(append_nosync(w, 10, 1000, &err), 0, "and it takes appends again");
	wal_close(w);
}

static long long seg1_size(void)
{
	return file_size(seg_path(1));
}

static int count_segs(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	while (d != NULL && (e = readdir(d)) != NULL)
		n += strstr(e->d_name, ".seg") != NULL;
	if (d != NULL)
		closedir(d);
	return n;
}

/* Truncating into the first of several segments, with the first or the
 * second flush failing: the later segments' deletion is flushed (the
 * directory) before the first segment is cut, the synced index comes down
 * to the truncation point, the failure is for good, and a reopen finds a
 * log without a gap. */
static void test_truncate_flush_fails(void)
{
	for (int k = 0; k < 3; k++) {
		struct sh_err err;
		struct wal *w;
		long long size;
		uint64_t last1;
		int rv;

		fresh(k == 0 ? "trunc-flush0" : k == 1 ? "trunc-flush1" : "trunc-flush2");
		w = open_ok(WAL_MIN_SEG, NULL);
		for (int i = 0; i < 30; i++)
			append(w, 1, 10, 1000);
		size = seg1_size();
		ok(count_segs() >= 4, "%d segments", count_segs());
		diskio_fail_after(k == 2 ? 0 : k, EIO);
		rv = k == 2 ? wal_truncate(w, 295, &err) : wal_truncate(w, 15, &err);
		diskio_fail_after(-1, 0);
		if (k == 2) {
			/* within the active segment: the one flush is the file's */
			is_int(rv, SH_EIO, "truncating the active segment, its flush fails");
			is_int(wal_synced_index(w), 295, "the synced index comes down to 295");
			is_int(append_nosync(w, 1, 1000, &err), SH_EIO, "later appends fail");
			wal_close(w);
			continue;
		}
		is_int(rv, SH_EIO, "flush %d of the truncation fails", k);
		ok(wal_synced_index(w) <= 15, "flush %d failed: synced index %" PRIu64 " <= 15", k,
		   wal_synced_index(w));
		if (k == 0)
			is_int(seg1_size(), size,
			       "the directory flush failed: segment 1 is not cut");
		else
			ok(seg1_size() < size, "the directory flush held: segment 1 is cut");
		is_int(count_segs(), 1, "the later segments are gone");
		is_int(append_nosync(w, 1, 1000, &err), SH_EIO, "an append fails after it");
		like(err.msg, "an earlier flush failed", "because of it");
		wal_close(w);
		w = open_ok(WAL_MIN_SEG, NULL);
		last1 = wal_last_index(w);
		ok(k == 0 ? last1 > 15 && last1 < 100 : last1 == 15,
		   "reopened: one segment, ending at %" PRIu64, last1);
		is_int(append_nosync(w, 1, 1000, &err), 0, "and appends work again");
		wal_close(w);
	}
}

/* Out of memory while an append publishes its records' offsets: the
 * append fails and leaves nothing behind — the next append goes where this
 * one would have, and every record reads back. */
static void test_append_oom(void)
{
	struct sh_err err;
	struct wal *w;
	int failed = 0, rv = 0;

	fresh("append-oom");
	w = open_ok(1 << 20, NULL);
	append(w, 1, 1020, 16); /* the offset table grows at 1024 */
	for (long n = 0; n < 40; n++) {
		uint64_t last = wal_last_index(w);
		struct wal_buf *b = batch(1, last + 1, 10, 16);

		sh_alloc_fail_after(n);
		rv = wal_append(w, &b, 1, &err);
		sh_alloc_fail_after(-1);
		wal_buf_unref(b);
		if (rv != 0) {
			failed++;
			if (rv != SH_ENOMEM || wal_last_index(w) != last) {
				diag("allocation %ld failed: %s, the log ends at %" PRIu64, n,
				     err.msg, wal_last_index(w));
				break;
			}
		}
	}
	ok(failed > 0 && (rv == 0 || rv == SH_ENOMEM), "%d appends failed for lack of memory",
	   failed);
	is_int(wal_last_index(w), 1020 + 10 * (40 - failed), "each added nothing");
	ok(check_range(w, 1, wal_last_index(w), 16), "every record reads back");
	wal_close(w);
	w = open_ok(1 << 20, NULL);
	is_int(wal_last_index(w), 1020 + 10 * (40 - failed), "reopened: the same log");
	ok(check_range(w, 1, wal_last_index(w), 16), "intact");
	wal_close(w);
}

int main(void)
{
	root = make_tmpdir("wal");
	test_buf();
	test_append_read_reopen();
	test_segments();
	test_writer_group_commit();
	test_writer_policies();
	test_writer_manual();
	test_tail_flip();
	test_middle_flip();
	test_unsynced_tear();
	test_out_of_order();
	test_cut_and_zeros();
	test_write_ahead();
	test_ahead_roll();
	test_older_segment();
	test_bad_header_and_gap();
	test_flush_fails_on_roll();
	test_truncate_flush_fails();
	test_append_oom();
	test_read_checks();
	sh_log_close();
	rm_rf(root);
	return done_testing();
}
