/*
 * node_log: the recent log in memory, and the entries' way in and out.
 *
 * Every entry appended here (proposed, received, or made by the node) is
 * a record in a reference-counted wal_buf that the log writer writes; the
 * in-memory log keeps a reference per entry, so an AppendEntries to any
 * number of followers points at the same bytes (the frame's parts refer to
 * the buffer, nothing is copied).  Entries stay while the log is not
 * durable or fits in cache_bytes; older ones are read back from the log
 * files when a follower needs them.
 */
#include "build.h"

#include "cluster/node_impl.h"

#include "storage/db.h"
#include "util/alloc.h"
#include "util/log.h"

#include <inttypes.h>
#include <string.h>

#define SLOT_BYTES(len) (sizeof(struct nslot) + (len))
#define READ_BYTES      (8u << 20)

static struct nslot *slot(struct nlog *l, size_t i)
{
	return &l->s[(l->head + i) & (l->cap - 1)];
}

static void slot_drop(struct nlog *l, struct nslot *s)
{
	l->bytes -= SLOT_BYTES(s->len);
	wal_buf_unref(s->b);
	s->b = NULL;
}

static int grow(struct nlog *l)
{
	size_t cap = l->cap ? 2 * l->cap : 1024;
	struct nslot *s = sh_calloc(cap, sizeof *s);

	if (s == NULL)
		return SH_ENOMEM;
	for (size_t i = 0; i < l->n; i++)
		s[i] = *slot(l, i);
	sh_free(l->s);
	l->s = s;
	l->cap = cap;
	l->head = 0;
	return 0;
}

void node_log_clear(struct node *n)
{
	struct nlog *l = &n->log;

	for (size_t i = 0; i < l->n; i++)
		slot_drop(l, slot(l, i));
	sh_free(l->s);
	memset(l, 0, sizeof *l);
}

/* Keep the records of b, which follow the log (or restart it). */
int node_log_add(struct node *n, struct wal_buf *b)
{
	struct nlog *l = &n->log;
	struct wal_rec r;
	size_t pos = 0;

	while (wal_buf_next(b, &pos, &r)) {
		if (r.type == WAL_CREATE || r.type == WAL_DROP)
			n->ddl_upto = r.index;
		if (l->n > 0 && r.index != l->first + l->n)
			node_log_truncate(n, l->first);
		if (l->n == 0)
			l->first = r.index;
		if (l->n == l->cap && grow(l) != 0)
			return SH_ENOMEM;
		*slot(l, l->n++) = (struct nslot){wal_buf_ref(b), (uint32_t)(r.body - b->data),
						  r.len, r.term, r.type};
		l->bytes += SLOT_BYTES(r.len);
	}
	return 0;
}

void node_log_truncate(struct node *n, uint64_t from)
{
	struct nlog *l = &n->log;

	while (l->n > 0 && l->first + l->n - 1 >= from)
		slot_drop(l, slot(l, --l->n));
	if (l->n == 0)
		l->first = from;
}

void node_log_trim(struct node *n)
{
	struct nlog *l = &n->log;
	uint64_t durable = db_durable_index(n->o.db);

	while (l->n > 0 && l->bytes > n->o.cache_bytes && l->first <= durable) {
		slot_drop(l, slot(l, 0));
		l->head = (l->head + 1) & (l->cap - 1);
		l->n--;
		l->first++;
	}
}

/* ------------------------------------------------------------ appending */

/* Keep b here and write it to the log.  In that order: once submitted,
 * the log writer stamps the records' headers, so this thread reads them
 * first. */
int node_log_append_buf(struct node *n, struct wal_buf *b, struct sh_err *err)
{
	int rv;

	if (node_log_add(n, b) != 0) {
		node_log_truncate(n, b->first);
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	}
	if (n->full)
		return 0; /* kept here until there is room (node_full.c) */
	if ((rv = db_append(n->o.db, b, err)) != 0)
		node_log_truncate(n, b->first);
	return rv;
}

uint64_t node_log_last(const struct node *n)
{
	return n->log.n > 0 ? n->log.first + n->log.n - 1 : 0;
}

size_t node_log_unwritten_bytes(struct node *n)
{
	struct nlog *l = &n->log;
	uint64_t written = db_last_index(n->o.db);
	size_t bytes = 0;

	for (size_t i = l->n; i > 0 && l->first + i - 1 > written; i--)
		bytes += SLOT_BYTES(slot(l, i - 1)->len);
	return bytes;
}

/* Records from..last of the memory log, copied into one buffer. */
static struct wal_buf *copy_records(struct nlog *l, uint64_t from, uint64_t last)
{
	size_t total = 0;
	struct wal_buf *b;

	for (uint64_t i = from; i <= last; i++)
		total += WAL_REC_HDR + slot(l, i - l->first)->len;
	if ((b = wal_buf_new(total)) == NULL)
		return NULL;
	for (uint64_t i = from; i <= last; i++) {
		struct nslot *s = slot(l, i - l->first);
		unsigned char *p = wal_buf_add(b, s->term, i, s->type, s->len);

		if (p == NULL) {
			wal_buf_unref(b);
			return NULL;
		}
		if (s->len > 0)
			memcpy(p, s->b->data + s->off, s->len);
	}
	return b;
}

int node_log_rewrite(struct node *n, uint64_t from, struct sh_err *err)
{
	struct nlog *l = &n->log;
	uint64_t last = node_log_last(n);
	struct wal_buf *b;
	int rv;

	if (from > last)
		return 0;
	if (l->n == 0 || from < l->first)
		return sh_err_set(err, SH_EINVAL,
				  "entry %" PRIu64 " is not durable and not in memory either",
				  from);
	if ((b = copy_records(l, from, last)) == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	rv = db_append(n->o.db, b, err);
	wal_buf_unref(b);
	return rv;
}

int node_log_append_own(struct node *n, uint64_t term, uint64_t index, uint8_t type,
			const void *body, size_t len, struct sh_err *err)
{
	struct wal_buf *b = wal_buf_new(WAL_REC_HDR + len);
	unsigned char *p;
	int rv;

	if (b == NULL || (p = wal_buf_add(b, term, index, type, len)) == NULL) {
		wal_buf_unref(b);
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	}
	if (len > 0)
		memcpy(p, body, len);
	rv = node_log_append_buf(n, b, err);
	wal_buf_unref(b);
	return rv;
}

void node_log_append_rx(struct node *n, uint64_t first, size_t count)
{
	const struct raft_wire_msg *m = n->rx;
	uint64_t k = first - (m->msg.prev_index + 1);
	size_t total = 0;
	struct wal_buf *b;
	struct sh_err err;

	for (size_t i = 0; i < count; i++)
		total += WAL_REC_HDR + m->entries[k + i].size;
	if ((b = wal_buf_new(total)) == NULL) {
		node_fail(n, &(struct sh_err){SH_ENOMEM, "out of memory"});
		return;
	}
	for (size_t i = 0; i < count; i++) {
		const struct raft_entry_meta *e = &m->entries[k + i];
		unsigned char *p = wal_buf_add(b, e->term, first + i, e->type, e->size);

		if (p == NULL) {
			wal_buf_unref(b);
			node_fail(n, &(struct sh_err){SH_ENOMEM, "out of memory"});
			return;
		}
		if (e->size > 0)
			memcpy(p, m->bodies[k + i], e->size);
	}
	if (node_log_append_buf(n, b, &err) != 0)
		node_fail(n, &err);
	wal_buf_unref(b);
}

/* ------------------------------------------------------------ sending */

static void release_buf(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	wal_buf_unref(arg);
}

static int want_parts(struct node *n, size_t count)
{
	struct peer_part *p;

	if (count <= n->n_parts_cap)
		return 0;
	if ((p = sh_reallocarray(n->parts, count, sizeof *p)) == NULL)
		return SH_ENOMEM;
	n->parts = p;
	n->n_parts_cap = count;
	return 0;
}

/* Part k: the body of entry index, len bytes, from buffer b at body. */
static void set_part(struct node *n, size_t k, struct wal_buf *b, const unsigned char *body,
		     size_t len)
{
	n->parts[k] = len > 0 ? (struct peer_part){body, len, release_buf, wal_buf_ref(b)}
			      : (struct peer_part){NULL, 0, NULL, NULL};
}

/* Parts for entries from..to that are not in memory: read them back. */
static int read_parts(struct node *n, uint64_t from, uint64_t to, size_t k, struct sh_err *err)
{
	while (from <= to) {
		struct wal_buf *b;
		struct wal_rec r;
		size_t pos = 0;
		int rv = db_read(n->o.db, from, to - from + 1, READ_BYTES, &b, err);

		if (rv != 0)
			return rv;
		while (wal_buf_next(b, &pos, &r) && from <= to) {
			set_part(n, k++, b, r.body, r.len);
			from++;
		}
		wal_buf_unref(b);
	}
	return 0;
}

/* Parts 1..m->n: the entries' bodies.  Returns the parts set. */
static size_t body_parts(struct node *n, const struct raft_msg *m, struct sh_err *err)
{
	struct nlog *l = &n->log;
	uint64_t from = m->prev_index + 1, to = m->prev_index + m->n;
	uint64_t mem = l->n > 0 ? l->first : to + 1;
	size_t k = 1;

	if (from < mem && read_parts(n, from, to < mem ? to : mem - 1, k, err) != 0)
		return 0;
	k += from < mem ? (size_t)((to < mem ? to : mem - 1) - from + 1) : 0;
	for (uint64_t i = from > mem ? from : mem; i <= to; i++) {
		struct nslot *s;

		if (i >= l->first + l->n) {
			sh_err_set(err, SH_EINVAL, "entry %" PRIu64 " is not in the log", i);
			return k - 1;
		}
		s = slot(l, i - l->first);
		set_part(n, k++, s->b, s->b->data + s->off, s->len);
	}
	return k - 1;
}

static void release_parts(struct node *n, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		if (n->parts[i].release != NULL)
			n->parts[i].release(n->parts[i].data, n->parts[i].len, n->parts[i].arg);
}

void node_log_send_append(struct node *n, uint64_t to, const struct raft_msg *m)
{
	struct sh_err err = {0};
	uint8_t *hdr = NULL;
	size_t len, got;

	if (want_parts(n, m->n + 1) != 0)
		return;
	got = body_parts(n, m, &err);
	for (size_t i = 0; i < got && err.code == 0; i++)
		if (n->parts[i + 1].len != m->entries[i].size)
			sh_err_set(&err, SH_EINVAL,
				   "entry %" PRIu64 ": %zu bytes, the core says %u",
				   m->prev_index + 1 + i, n->parts[i + 1].len, m->entries[i].size);
	if (err.code == 0)
		raft_wire_header(m, n->cluster_id, &hdr, &len, &err);
	if (err.code != 0) {
		LOG_ERROR("raft",
			  "cannot send entries %" PRIu64 "..%" PRIu64 " to %016" PRIx64 ": %s",
			  m->prev_index + 1, m->prev_index + m->n, to, err.msg);
		release_parts(n, 1, got + 1);
		return;
	}
	n->parts[0] = (struct peer_part){hdr + 4, len - 4, NULL, NULL};
	n->o.env.send(n->o.env.data, to, PEER_RAFT, n->parts, got + 1);
	sh_free(hdr);
}
