/* fuzz_wal: a log segment given as bytes (storage/wal_open.c, wal.c,
 * entry.c, store.c).  The segment is opened as the only one of a log —
 * verified, a torn tail cut, damage refused with a message — and what
 * opened must read back record by record (wal_read checks every CRC
 * again) and apply to a store without a fatal error.
 *
 * Input: one flags byte, then the file.  Flags, so that the fuzzer gets
 * past the checksums to the records and entries behind them:
 *   bit 0  prepend a valid segment header (first index 1);
 *   bit 1  fix each record's CRC, walking the records by their lengths;
 *   bit 2  split the bytes into two segments at a point taken from the
 *          next byte (the second named after the first index in its
 *          header, as wal_open requires). */
#include "build.h"

#include "fuzz_dir.h"

#include "storage/le.h"
#include "storage/store.h"
#include "storage/wal.h"
#include "storage/wal_impl.h"
#include "util/crc32c.h"
#include "util/log.h"

#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[300];

static void setup(void)
{
	snprintf(dir, sizeof dir, "%s/wal", fuzz_dir_make("wal"));
}

/* Recompute the CRC of every record that lies within buf[from..len). */
static void fix_crcs(unsigned char *buf, size_t from, size_t len)
{
	for (size_t off = from; off + WAL_REC_HDR <= len;) {
		uint32_t body = le32_get(buf + off);

		if (body > len - off - WAL_REC_HDR)
			break;
		le32_put(buf + off + 4, wal__rec_crc(buf + off, body));
		off += WAL_REC_HDR + body;
	}
}

static void put_header(unsigned char *h)
{
	memset(h, 0, WAL_SEG_HDR);
	memcpy(h, WAL_SEG_MAGIC, 8);
	le32_put(h + 8, 1);
	le64_put(h + 16, 1);
	le32_put(h + 28, sh_crc32c(0, h, 28));
}

static void write_file(const char *name, const unsigned char *p, size_t len)
{
	char path[400];
	int fd;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0640);
	if (fd < 0 || write(fd, p, len) != (ssize_t)len)
		abort();
	close(fd);
}

/* Lay the input out as one or two segment files. */
static void lay_out(const uint8_t *data, size_t size)
{
	uint8_t flags = data[0];
	size_t hdr = flags & 1 ? WAL_SEG_HDR : 0, len = hdr + size - 1, split = len;
	unsigned char *buf = malloc(len + 1);
	char name[32];

	if (buf == NULL)
		abort();
	if (hdr)
		put_header(buf);
	memcpy(buf + hdr, data + 1, size - 1);
	if (flags & 2)
		fix_crcs(buf, WAL_SEG_HDR, len);
	if ((flags & 4) && size > 2)
		split = WAL_SEG_HDR + (size_t)data[1] * 64;
	if (split > len)
		split = len;
	write_file("0000000000000001.seg", buf, split);
	if (split < len) {
		uint64_t first = len - split >= 24 ? le64_get(buf + split + 16) : 2;

		wal__seg_name(name, sizeof name, first);
		write_file(name, buf + split, len - split);
	}
	free(buf);
}

/* Everything wal_open accepted reads back and applies. */
static void read_and_apply(struct wal *w)
{
	uint64_t from = wal_first_index(w), last = wal_last_index(w);
	struct store *s;
	struct sh_err err;

	if (store_new(&s, &err) != 0)
		return;
	while (from <= last) {
		struct wal_buf *b;
		struct wal_rec r;
		size_t pos = 0;
		bool fatal;
		int rv = wal_read(w, from, 64, 1 << 20, &b, &err);

		MUST(rv == 0 && b->first == from && b->n > 0);
		while (wal_buf_next(b, &pos, &r)) {
			MUST(r.index == from);
			if (r.index == store_applied_index(s) + 1) {
				store_apply(s, &r, NULL, &fatal, &err);
				MUST(!fatal);
			}
			from++;
		}
		wal_buf_unref(b);
	}
	store_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wal_opts o = {WAL_MIN_SEG};
	struct wal *w;
	struct sh_err err;

	if (size < 1)
		return 0;
	if (dir[0] == '\0')
		setup();
	fuzz_rm_rf(dir);
	mkdir(dir, 0750);
	lay_out(data, size);
	if (wal_open(dir, &o, &w, NULL, &err) == 0) {
		read_and_apply(w);
		wal_close(w);
	} else {
		MUST(err.code != 0 && strncmp(err.msg, "wal: ", 5) == 0);
	}
	return 0;
}
