/*
 * hardstate: see hardstate.h and doc/storage-format.md ("raft.state").
 *
 * Invariant: once the file exists, durable_slot holds the newest record
 * known to be on disk, and every write goes to the other slot.  An
 * unsynced write (a commit hint) therefore never overwrites what a synced
 * one made durable, and a synced write that follows unsynced ones
 * overwrites their slot, not the durable one.
 */
#include "build.h"

#include "storage/hardstate.h"

#include "storage/diskio.h"
#include "storage/le.h"
#include "util/alloc.h"
#include "util/crc32c.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HS_VERSION 1
#define CRC_AT     (HARDSTATE_SLOT - 4)
#define TMP_FILE   HARDSTATE_FILE ".tmp"

struct rec {
	uint64_t seq, term, vote, commit;
};

struct hardstate {
	struct sh_datadir *d;
	char path[4200];
	int fd; /* -1 until the file exists */
	struct rec cur;
	int durable_slot; /* slot of the newest record known durable; -1 without a file */
	bool broken;      /* an fdatasync failed */
};

static void slot_put(unsigned char *b, const struct rec *r)
{
	memset(b, 0, HARDSTATE_SLOT);
	memcpy(b, HARDSTATE_MAGIC, 8);
	le32_put(b + 8, HS_VERSION);
	le64_put(b + 16, r->seq);
	le64_put(b + 24, r->term);
	le64_put(b + 32, r->vote);
	le64_put(b + 40, r->commit);
	le32_put(b + CRC_AT, sh_crc32c(0, b, CRC_AT));
}

/* Decode slot b into *r; false, with the reason in why, when not valid. */
static bool slot_get(const unsigned char *b, struct rec *r, char *why, size_t size)
{
	uint32_t stored = le32_get(b + CRC_AT), computed = sh_crc32c(0, b, CRC_AT);
	size_t zero = 0;

	while (zero < HARDSTATE_SLOT && b[zero] == 0)
		zero++;
	if (zero == HARDSTATE_SLOT)
		snprintf(why, size, "all zero");
	else if (memcmp(b, HARDSTATE_MAGIC, 8) != 0)
		snprintf(why, size, "bad magic");
	else if (stored != computed)
		snprintf(why, size,
			 "checksum mismatch (stored %08" PRIx32 ", computed %08" PRIx32 ")", stored,
			 computed);
	else if (le32_get(b + 8) != HS_VERSION)
		snprintf(why, size, "unknown format version %" PRIu32, le32_get(b + 8));
	else if (le64_get(b + 16) == 0)
		snprintf(why, size, "sequence 0");
	else {
		*r = (struct rec){le64_get(b + 16), le64_get(b + 24), le64_get(b + 32),
				  le64_get(b + 40)};
		return true;
	}
	return false;
}

/* ------------------------------------------------------------ loading */

/* The newest valid slot of buf into h. */
static int pick(struct hardstate *h, const unsigned char *buf, struct sh_err *err)
{
	struct rec r[2];
	char why[2][96];
	bool ok[2];
	int best, other;

	for (int i = 0; i < 2; i++)
		ok[i] = slot_get(buf + i * HARDSTATE_SLOT, &r[i], why[i], sizeof why[i]);
	if (!ok[0] && !ok[1])
		return sh_err_set(err, SH_ECORRUPT, "'%s': no valid record: slot 0: %s; slot 1: %s",
				  h->path, why[0], why[1]);
	if (ok[0] && ok[1] && r[0].seq == r[1].seq)
		return sh_err_set(err, SH_ECORRUPT, "'%s': both slots hold sequence %" PRIu64,
				  h->path, r[0].seq);
	best = ok[1] && (!ok[0] || r[1].seq > r[0].seq) ? 1 : 0;
	other = 1 - best;
	if (!ok[other])
		LOG_DEBUG("hardstate",
			  "'%s': slot %d: %s (torn, damaged or never written); using slot %d, "
			  "sequence %" PRIu64,
			  h->path, other, why[other], best, r[best].seq);
	h->cur = r[best];
	h->durable_slot = best;
	return 0;
}

static int load(struct hardstate *h, struct sh_err *err)
{
	unsigned char buf[HARDSTATE_SIZE];
	struct stat st;
	ssize_t k;
	int rv;

	if (fstat(h->fd, &st) != 0)
		return sh_err_sys(err, errno, "cannot stat '%s'", h->path);
	if (st.st_size != HARDSTATE_SIZE)
		return sh_err_set(err, SH_ECORRUPT, "'%s' is %lld bytes, not %d", h->path,
				  (long long)st.st_size, HARDSTATE_SIZE);
	if ((k = pread(h->fd, buf, sizeof buf, 0)) != (ssize_t)sizeof buf)
		return sh_err_sys(err, k < 0 ? errno : EIO, "cannot read '%s'", h->path);
	if ((rv = pick(h, buf, err)) != 0)
		return rv;
	/* What we read may sit only in the page cache: the process that wrote
	 * it died before flushing, or its flush failed — and then Linux marked
	 * the pages clean, a flush now would not write them, a power loss would
	 * lose a vote we act on.  Write it again, then flush. */
	if ((k = pwrite(h->fd, buf, sizeof buf, 0)) != (ssize_t)sizeof buf)
		return sh_err_sys(err, k < 0 ? errno : EIO, "cannot write '%s' again", h->path);
	if (diskio_fdatasync(h->fd) != 0)
		return sh_err_sys(err, errno, "cannot fdatasync '%s'", h->path);
	return 0;
}

static void remove_tmp(struct hardstate *h)
{
	if (unlinkat(sh_datadir_fd(h->d), TMP_FILE, 0) == 0)
		LOG_INFO("hardstate", "deleted '%s/%s', left by an interrupted first save",
			 sh_datadir_path(h->d), TMP_FILE);
}

int hardstate_open(struct sh_datadir *d, struct hardstate **out, struct sh_err *err)
{
	struct hardstate *h = sh_calloc(1, sizeof *h);
	int rv = 0;

	if (h == NULL)
		return sh_err_set(err, SH_ENOMEM, "hardstate: out of memory");
	h->d = d;
	h->durable_slot = -1;
	snprintf(h->path, sizeof h->path, "%s/%s", sh_datadir_path(d), HARDSTATE_FILE);
	remove_tmp(h);
	h->fd = openat(sh_datadir_fd(d), HARDSTATE_FILE, O_RDWR | O_CLOEXEC);
	if (h->fd < 0 && errno != ENOENT)
		rv = sh_err_sys(err, errno, "cannot open '%s'", h->path);
	else if (h->fd >= 0)
		rv = load(h, err);
	if (rv != 0) {
		hardstate_close(h);
		return sh_err_wrap(err, rv, "hardstate");
	}
	*out = h;
	return 0;
}

void hardstate_close(struct hardstate *h)
{
	if (h == NULL)
		return;
	if (h->fd >= 0)
		close(h->fd);
	sh_free(h);
}

uint64_t hardstate_term(const struct hardstate *h)
{
	return h->cur.term;
}

uint64_t hardstate_vote(const struct hardstate *h)
{
	return h->cur.vote;
}

uint64_t hardstate_commit(const struct hardstate *h)
{
	return h->cur.commit;
}

uint64_t hardstate_seq(const struct hardstate *h)
{
	return h->cur.seq;
}

/* ------------------------------------------------------------ saving */

/* Raft's rules on what may be saved (§3.4, §3.6: one vote per term; terms
 * never go back), as a net for bugs in the caller. */
static int check(const struct hardstate *h, uint64_t term, uint64_t vote, bool sync,
		 struct sh_err *err)
{
	if (h->broken)
		return sh_err_set(err, SH_EIO,
				  "an earlier fdatasync of '%s' failed; restart to reload it",
				  h->path);
	if (term < h->cur.term)
		return sh_err_set(err, SH_EINVAL,
				  "term %" PRIu64 " is lower than the saved term %" PRIu64, term,
				  h->cur.term);
	if (term == h->cur.term && h->cur.vote != 0 && vote != h->cur.vote)
		return sh_err_set(err, SH_EINVAL,
				  "term %" PRIu64 " already has a vote for %016" PRIx64
				  ", not %016" PRIx64,
				  term, h->cur.vote, vote);
	if (!sync && (term != h->cur.term || vote != h->cur.vote))
		return sh_err_set(err, SH_EINVAL, "a change of term or vote must be synced");
	return 0;
}

/* The first save: the whole file, atomically (doc/storage-format.md). */
static int create(struct hardstate *h, const struct rec *r, struct sh_err *err)
{
	unsigned char buf[HARDSTATE_SIZE] = {0};
	int rv;

	slot_put(buf, r);
	if ((rv = sh_datadir_write_file(h->d, HARDSTATE_FILE, buf, sizeof buf, err)) != 0)
		return rv;
	h->fd = openat(sh_datadir_fd(h->d), HARDSTATE_FILE, O_RDWR | O_CLOEXEC);
	if (h->fd < 0)
		return sh_err_sys(err, errno, "cannot open '%s'", h->path);
	h->durable_slot = 0;
	return 0;
}

/* Write r into the slot that does not hold the newest durable record. */
static int overwrite(struct hardstate *h, const struct rec *r, bool sync, struct sh_err *err)
{
	unsigned char buf[HARDSTATE_SLOT];
	int slot = 1 - h->durable_slot;
	off_t at = (off_t)slot * HARDSTATE_SLOT;
	ssize_t k;

	slot_put(buf, r);
	if ((k = pwrite(h->fd, buf, sizeof buf, at)) != (ssize_t)sizeof buf)
		return sh_err_sys(err, k < 0 ? errno : EIO, "cannot write slot %d of '%s'", slot,
				  h->path);
	if (sync && diskio_fdatasync(h->fd) != 0) {
		h->broken = true;
		return sh_err_sys(err, errno, "cannot fdatasync '%s'", h->path);
	}
	if (sync)
		h->durable_slot = slot;
	return 0;
}

int hardstate_save(struct hardstate *h, uint64_t term, uint64_t vote, uint64_t commit, bool sync,
		   struct sh_err *err)
{
	struct rec r = {h->cur.seq + 1, term, vote, commit};
	int rv;

	if ((rv = check(h, term, vote, sync, err)) == 0)
		rv = h->fd < 0 ? create(h, &r, err) : overwrite(h, &r, sync, err);
	if (rv != 0)
		return sh_err_wrap(err, rv, "hardstate");
	h->cur = r;
	return 0;
}
