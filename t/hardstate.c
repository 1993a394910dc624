/* Tests of storage/hardstate: a missing file is the zero state; saves round
 * trip across restarts; each write goes to the slot that does not hold the
 * newest durable record (checked in the file); a torn or garbled newest
 * slot falls back to the older one; a damaged file (both slots bad, empty,
 * short, all zero, wrong magic or version, equal sequences) is refused with
 * the file and the reason; saves that would break Raft's rules are
 * refused; a leftover raft.state.tmp is deleted. */
#include "build.h"

#include "storage/hardstate.h"
#include "storage/le.h"
#include "tap.h"
#include "util/crc32c.h"

#include "storage_util.h"

#include <inttypes.h>

static char dir[512], file[600];
static struct sh_datadir *dd;

static struct hardstate *open_hs(void)
{
	struct hardstate *h = NULL;
	struct sh_err err = {0};

	if (dd == NULL && sh_datadir_open(dir, &dd, &err) != 0)
		bail_out("datadir: %s", err.msg);
	if (hardstate_open(dd, &h, &err) != 0)
		bail_out("hardstate_open: %s", err.msg);
	return h;
}

/* Close and open again, as a restart does. */
static struct hardstate *restart(struct hardstate *h)
{
	hardstate_close(h);
	sh_datadir_close(dd);
	dd = NULL;
	return open_hs();
}

/* hardstate_open's code on the file as it is; err filled. */
static int open_fails(struct sh_err *err)
{
	struct hardstate *h = NULL;
	int rv;

	if (dd == NULL && sh_datadir_open(dir, &dd, err) != 0)
		bail_out("datadir: %s", err->msg);
	rv = hardstate_open(dd, &h, err);
	hardstate_close(h);
	return rv;
}

static uint64_t slot_seq(int slot)
{
	unsigned char b[8] = {0};
	int fd = open(file, O_RDONLY);

	if (fd < 0 || pread(fd, b, 8, slot * HARDSTATE_SLOT + 16) != 8)
		bail_out("cannot read slot %d of %s", slot, file);
	close(fd);
	return le64_get(b);
}

static void write_at(long long off, const void *p, size_t len)
{
	int fd = open(file, O_WRONLY | O_CREAT, 0640);

	if (fd < 0 || pwrite(fd, p, len, off) != (ssize_t)len)
		bail_out("cannot write %s at %lld", file, off);
	close(fd);
}

static void save_ok(struct hardstate *h, uint64_t term, uint64_t vote, uint64_t commit, bool sync,
		    const char *what)
{
	struct sh_err err = {0};

	is_int(hardstate_save(h, term, vote, commit, sync, &err), 0, "%s: %s", what, err.msg);
}

static bool state_is(struct hardstate *h, uint64_t term, uint64_t vote, uint64_t commit)
{
	return hardstate_term(h) == term && hardstate_vote(h) == vote &&
	       hardstate_commit(h) == commit;
}

static void test_round_trip(void)
{
	struct hardstate *h = open_hs();
	bool all = true;

	ok(state_is(h, 0, 0, 0) && hardstate_seq(h) == 0, "no file: the zero state");
	is_int(file_size(file), -1, "and no file is created by opening");
	save_ok(h, 0, 0, 3, false, "a commit hint first, unsynced");
	is_int(file_size(file), HARDSTATE_SIZE, "the first save creates the whole file");
	ok(slot_seq(0) == 1 && slot_seq(1) == 0, "record 1 in slot 0, slot 1 empty");
	save_ok(h, 1, 0xabc, 3, true, "vote for abc in term 1");
	ok(slot_seq(0) == 1 && slot_seq(1) == 2, "record 2 in slot 1");
	save_ok(h, 1, 0xabc, 5, false, "a commit hint, unsynced");
	ok(slot_seq(0) == 3 && slot_seq(1) == 2, "record 3 in slot 0");
	save_ok(h, 1, 0xabc, 6, false, "another commit hint");
	ok(slot_seq(0) == 4 && slot_seq(1) == 2,
	   "record 4 over the unsynced 3 in slot 0, sparing the durable 2");
	h = restart(h);
	ok(state_is(h, 1, 0xabc, 6) && hardstate_seq(h) == 4, "restart keeps the newest");
	save_ok(h, 2, 0, 6, true, "term 2");
	save_ok(h, 2, 0, 7, false, "hint: record 6 beside the durable 5");
	save_ok(h, 2, 0, 8, false, "hint: record 7 overwrites 6");
	ok(slot_seq(0) == 5 || slot_seq(1) == 5, "record 5 (synced) is still in the file");
	save_ok(h, 3, 0x1, 8, true, "term 3, vote 1: overwrites the unsynced hint");
	ok((slot_seq(0) == 5 && slot_seq(1) == 8) || (slot_seq(1) == 5 && slot_seq(0) == 8),
	   "records 5 and 8 in the file");
	for (uint64_t t = 4; t < 14; t++) {
		save_ok(h, t, t * 3, t * 10, true, "a new term");
		h = restart(h);
		all &= state_is(h, t, t * 3, t * 10) && hardstate_seq(h) == t + 5;
	}
	ok(all, "ten saves and restarts: each restart sees the last save");
	hardstate_close(h);
}

static void test_refused(void)
{
	struct hardstate *h = open_hs();
	struct sh_err err = {0};

	is_int(hardstate_save(h, 12, 1, 0, true, &err), SH_EINVAL, "a lower term is refused");
	is_str(err.msg, "hardstate: term 12 is lower than the saved term 13", "message");
	is_int(hardstate_save(h, 13, 2, 0, true, &err), SH_EINVAL, "a second vote in one term");
	is_str(err.msg,
	       "hardstate: term 13 already has a vote for 0000000000000027, not 0000000000000002",
	       "message");
	is_int(hardstate_save(h, 13, 0, 0, true, &err), SH_EINVAL, "taking a vote back");
	is_int(hardstate_save(h, 14, 0, 0, false, &err), SH_EINVAL, "an unsynced new term");
	is_str(err.msg, "hardstate: a change of term or vote must be synced", "message");
	h = restart(h);
	ok(state_is(h, 13, 39, 130), "nothing refused was saved");
	hardstate_close(h);
}

/* Which slot holds the newest record. */
static int newest_slot(void)
{
	return slot_seq(1) > slot_seq(0) ? 1 : 0;
}

static void test_torn(void)
{
	struct hardstate *h = open_hs();
	unsigned char zeros[256] = {0};
	uint64_t t = hardstate_term(h), v = hardstate_vote(h), c = hardstate_commit(h);
	int s;
	char want[800];

	save_ok(h, t + 1, 0x77, c + 1, true, "one more term");
	hardstate_close(h);
	s = newest_slot();
	write_at(s * HARDSTATE_SLOT + 256, zeros, sizeof zeros); /* the second half never landed */
	log_capture(dir);
	sh_log_set_level(SH_LOG_DEBUG);
	h = open_hs();
	ok(state_is(h, t, v, c), "a torn newest slot: the older record is used");
	snprintf(want, sizeof want, "'%s': slot %d: checksum mismatch (stored 00000000", file, s);
	like(log_text(), want, "said at debug level");
	sh_log_close();
	sh_log_set_level(SH_LOG_INFO);
	save_ok(h, t + 1, 0x78, c + 2, true, "the lost term again, another vote");
	is_int(newest_slot(), s, "written over the torn slot, sparing the durable one");
	h = restart(h);
	ok(state_is(h, t + 1, 0x78, c + 2), "and read back after a restart");
	hardstate_close(h);
	flip_byte(file, (1 - s) * HARDSTATE_SLOT + 30, 0x10);
	h = restart(NULL);
	ok(state_is(h, t + 1, 0x78, c + 2), "a garbled older slot does not matter");
	save_ok(h, t + 2, 0x5, c + 3, true, "a save repairs it");
	is_int(newest_slot(), 1 - s, "by writing over it");
	hardstate_close(h);
	flip_byte(file, (1 - s) * HARDSTATE_SLOT + 40, 0x01);
	h = restart(NULL);
	ok(state_is(h, t + 1, 0x78, c + 2), "a garbled newest slot: the older record is used");
	hardstate_close(h);
}

/* A slot with a good checksum over whatever it holds. */
static void put_slot(int slot, const char *magic, uint32_t version, uint64_t seq)
{
	unsigned char b[HARDSTATE_SLOT] = {0};

	memcpy(b, magic, 8);
	le32_put(b + 8, version);
	le64_put(b + 16, seq);
	le64_put(b + 24, 99);
	le32_put(b + HARDSTATE_SLOT - 4, sh_crc32c(0, b, HARDSTATE_SLOT - 4));
	write_at(slot * HARDSTATE_SLOT, b, sizeof b);
}

static void refused_file(const char *reason, const char *what)
{
	struct sh_err err = {0};
	char want[1000];

	snprintf(want, sizeof want, "hardstate: '%s'%s", file, reason);
	is_int(open_fails(&err), SH_ECORRUPT, "%s: refused", what);
	is_str(err.msg, want, "%s: names the file and says why", what);
}

static void test_damaged(void)
{
	unsigned char zeros[HARDSTATE_SIZE] = {0};
	struct sh_err err = {0};

	flip_byte(file, 3, 0x40);
	flip_byte(file, HARDSTATE_SLOT + 100, 0x40);
	is_int(open_fails(&err), SH_ECORRUPT, "both slots garbled");
	like(err.msg, "hardstate: '", "message starts with the module");
	like(err.msg, file, "names the file");
	like(err.msg, "': no valid record: slot 0: bad magic; slot 1: checksum mismatch (stored ",
	     "and what is wrong with each slot");
	cut_file(file, 0);
	refused_file(" is 0 bytes, not 1024", "a zero-length file");
	write_at(0, zeros, 700);
	refused_file(" is 700 bytes, not 1024", "a short file");
	write_at(0, zeros, sizeof zeros);
	refused_file(": no valid record: slot 0: all zero; slot 1: all zero", "an all-zero file");
	put_slot(0, "SHOALXST", 1, 5);
	put_slot(1, HARDSTATE_MAGIC, 2, 6);
	refused_file(": no valid record: slot 0: bad magic; slot 1: unknown format version 2",
		     "wrong magic and version");
	put_slot(0, HARDSTATE_MAGIC, 1, 0);
	refused_file(": no valid record: slot 0: sequence 0; slot 1: unknown format version 2",
		     "sequence 0");
	put_slot(0, HARDSTATE_MAGIC, 1, 6);
	put_slot(1, HARDSTATE_MAGIC, 1, 6);
	refused_file(": both slots hold sequence 6", "two slots with one sequence");
	put_slot(1, HARDSTATE_MAGIC, 1, 5);
	is_int(open_fails(&err), 0, "a sound file opens again: %s", err.msg);
}

static void test_tmp_removed(void)
{
	char tmp[700];
	struct hardstate *h;

	unlink(file);
	snprintf(tmp, sizeof tmp, "%s.tmp", file);
	write_at(0, "x", 1);
	rename(file, tmp);
	h = restart(NULL);
	is_int(file_size(tmp), -1, "a leftover raft.state.tmp is deleted");
	ok(state_is(h, 0, 0, 0), "and the state is the zero state");
	hardstate_close(h);
}

int main(void)
{
	snprintf(dir, sizeof dir, "%s", make_tmpdir("hardstate"));
	snprintf(file, sizeof file, "%s/%s", dir, HARDSTATE_FILE);
	test_round_trip();
	test_refused();
	test_torn();
	test_damaged();
	test_tmp_removed();
	sh_datadir_close(dd);
	rm_rf(dir);
	return done_testing();
}
