/* Tests of cluster/raft_wire: round trips of every message shape, with
 * entry bodies and a configuration; malformed frames refused with a clear
 * error and no crash. */
#include "build.h"

#include "cluster/raft_wire.h"
#include "tap.h"
#include "util/alloc.h"

#include <string.h>

/* header + bodies into one frame; returns its length (after the first
 * length word, as raft_wire_decode wants it at frame + 4). */
static size_t build(const struct raft_msg *m, const uint8_t *const *bodies, uint8_t *out)
{
	uint8_t *head;
	size_t hlen, o;

	if (raft_wire_header(m, 77, &head, &hlen, NULL) != 0)
		bail_out("encode failed");
	memcpy(out, head, hlen);
	o = hlen;
	for (size_t i = 0; i < m->n; i++) {
		memcpy(out + o, bodies[i], m->entries[i].size);
		o += m->entries[i].size;
	}
	sh_free(head);
	return o - 4;
}

static void test_round_trip(void)
{
	struct raft_conf c = {{1, 2, 3}, 3, {9}, 1}, back;
	uint8_t *cbody, frame[4096];
	size_t clen, n;
	const uint8_t data[] = "hello, raft";
	struct raft_entry_meta e[3];
	const uint8_t *bodies[3];
	struct raft_msg m = {.type = RAFT_MSG_APPEND,
			     .term = 7,
			     .from = 2,
			     .prev_index = 41,
			     .prev_term = 6,
			     .commit = 40,
			     .sent_at = 123456789,
			     .n = 3};
	struct raft_wire_msg w;
	struct sh_err err;

	is_int(raft_conf_encode(&c, &cbody, &clen, &err), 0, "encode a configuration");
	is_int(raft_conf_decode(cbody, clen, &back, &err), 0, "decode it");
	ok(back.n_voters == 3 && back.voters[2] == 3 && back.n_learners == 1 &&
		   back.learners[0] == 9,
	   "voters and learners survive");
	e[0] = (struct raft_entry_meta){6, RAFT_ENTRY_NOOP, 0, NULL};
	e[1] = (struct raft_entry_meta){7, RAFT_ENTRY_CONFIG, (uint32_t)clen, &c};
	e[2] = (struct raft_entry_meta){7, 5, sizeof data, NULL};
	bodies[0] = data;
	bodies[1] = cbody;
	bodies[2] = data;
	m.entries = e;
	n = build(&m, bodies, frame);
	is_int(raft_wire_decode(frame + 4, n, 1 << 20, &w, &err), 0, "decode an AppendEntries");
	ok(w.msg.type == RAFT_MSG_APPEND && w.msg.term == 7 && w.msg.from == 2 &&
		   w.msg.prev_index == 41 && w.msg.prev_term == 6 && w.msg.commit == 40 &&
		   w.msg.sent_at == 123456789 && w.cluster_id == 77,
	   "every field survives");
	is_int(w.msg.n, 3, "three entries");
	ok(w.entries[2].type == 5 && w.entries[2].size == sizeof data &&
		   memcmp(w.bodies[2], data, sizeof data) == 0,
	   "bodies point at their bytes");
	ok(w.entries[1].conf != NULL && w.entries[1].conf->n_voters == 3,
	   "a configuration entry is decoded for the core");
	raft_wire_free(&w);
	sh_free(cbody);
}

static void expect_bad(const uint8_t *frame, size_t n, const char *want, const char *what)
{
	struct raft_wire_msg w;
	struct sh_err err;

	ok(raft_wire_decode(frame, n, 1 << 20, &w, &err) < 0, "%s: refused", what);
	like(err.msg, want, "%s: message", what);
}

static void test_malformed(void)
{
	uint8_t frame[4096], bad[64];
	const uint8_t body[] = "abcdef";
	struct raft_entry_meta e = {3, 4, sizeof body, NULL};
	const uint8_t *bodies[] = {body};
	struct raft_msg m = {.type = RAFT_MSG_APPEND, .term = 3, .from = 1, .n = 1, .entries = &e};
	size_t n = build(&m, bodies, frame);
	struct raft_msg v = {.type = RAFT_MSG_VOTE, .term = 3, .from = 1};
	struct raft_wire_msg w;

	expect_bad(frame + 4, n - 1, "entry sizes add up to 7, 6 bytes follow", "cut short");
	expect_bad(frame + 4, 3, "bad header length", "under four bytes");
	memset(bad, 0xff, sizeof bad);
	expect_bad(bad, sizeof bad, "bad header length", "a huge header length");
	ok(raft_wire_decode(frame + 4, n, n - 1, &w, NULL) == SH_ETOOBIG, "over the size limit");
	v.type = (enum raft_msg_type)99;
	n = build(&v, NULL, frame);
	expect_bad(frame + 4, n, "unknown message type 99", "unknown type");
	v.type = RAFT_MSG_VOTE;
	v.from = 0;
	n = build(&v, NULL, frame);
	expect_bad(frame + 4, n, "message from node 0", "sender 0");
	e = (struct raft_entry_meta){0, 4, sizeof body, NULL};
	n = build(&m, bodies, frame);
	expect_bad(frame + 4, n, "term or type 0", "entry of term 0");
	e = (struct raft_entry_meta){3, RAFT_ENTRY_CONFIG, sizeof body, NULL};
	n = build(&m, bodies, frame);
	expect_bad(frame + 4, n, "configuration", "a configuration that is not one");
	m.type = RAFT_MSG_VOTE;
	e = (struct raft_entry_meta){3, 4, sizeof body, NULL};
	n = build(&m, bodies, frame);
	expect_bad(frame + 4, n, "1 entries in a vote message", "entries in a vote");
}

static void test_conf_limits(void)
{
	struct raft_conf dup = {{4, 4}, 2, {0}, 0}, none = {{0}, 0, {0}, 0}, back;
	uint8_t *b;
	size_t len;
	struct sh_err err;

	raft_conf_encode(&dup, &b, &len, NULL);
	is_int(raft_conf_decode(b, len, &back, &err), SH_EINVAL, "a repeated member is refused");
	like(err.msg, "bad or repeated id", "and named");
	sh_free(b);
	raft_conf_encode(&none, &b, &len, NULL);
	is_int(raft_conf_decode(b, len, &back, &err), SH_EINVAL, "no voter is refused");
	sh_free(b);
}

int main(void)
{
	test_round_trip();
	test_malformed();
	test_conf_limits();
	return done_testing();
}
