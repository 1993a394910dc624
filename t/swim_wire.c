/* Tests of cluster/swim_wire: round trips, the MTU-bounded packet builder,
 * every limit and check of the decoder with the exact error, and a
 * deterministic mutation run of the fuzz entry point over valid packets
 * (under the sanitizer build this is the crash test). */
#include "build.h"

#include "cluster/swim_wire.h"
#include "fuzz/fuzz.h"
#include "tap.h"
#include "util/alloc.h"
#include "util/rand.h"

#include <string.h>

static const struct swim_member_rec member = {
	.id = 0x1122334455667788ull,
	.name = "node-1",
	.addr = {"10.0.0.1:7471", "10.0.0.1:7472", "10.0.0.1:7473"},
	.incarnation = 7,
	.state = SWIM_ALIVE,
	.meta = (const uint8_t *)"role=voter",
	.meta_len = 10,
};

/* A packet with one of each message and two updates. */
static size_t sample_packet(uint8_t *buf, size_t cap)
{
	struct swim_wire_pkt b;
	struct swim_update alive = {
		.state = SWIM_ALIVE, .id = member.id, .incarnation = 7, .member = member};
	struct swim_update susp = {.state = SWIM_SUSPECT, .id = 99, .incarnation = 3, .from = 5};
	uint8_t enc[1024];
	size_t n;

	swim_wire_pkt_init(&b, buf, cap, 0xc1c1, 0x5e4d);
	swim_wire_pkt_add_msg(&b, &(struct swim_msg){.type = SWIM_PING, .seq = 1, .target = 42});
	swim_wire_pkt_add_msg(&b, &(struct swim_msg){.type = SWIM_PING_REQ,
						     .seq = 2,
						     .target = 43,
						     .target_addr = "10.0.0.9:7471",
						     .nack = true});
	swim_wire_pkt_add_msg(&b, &(struct swim_msg){.type = SWIM_ACK, .seq = 3});
	swim_wire_pkt_add_msg(&b, &(struct swim_msg){.type = SWIM_NACK, .seq = 4});
	n = swim_wire_encode_update(&alive, enc, sizeof enc);
	swim_wire_pkt_add_update(&b, enc, n);
	n = swim_wire_encode_update(&susp, enc, sizeof enc);
	swim_wire_pkt_add_update(&b, enc, n);
	return b.len;
}

static void test_packet_roundtrip(void)
{
	uint8_t buf[1400];
	size_t len = sample_packet(buf, sizeof buf);
	struct swim_packet p;
	struct sh_err err;

	is_int(swim_wire_decode_packet(buf, len, &p, &err), 0, "a built packet decodes: %s",
	       err.msg);
	ok(p.cluster_id == 0xc1c1 && p.sender == 0x5e4d, "header fields");
	is_int(p.n_msgs, 4, "four messages");
	ok(p.msgs[0].type == SWIM_PING && p.msgs[0].seq == 1 && p.msgs[0].target == 42, "ping");
	ok(p.msgs[1].type == SWIM_PING_REQ && p.msgs[1].nack &&
		   strcmp(p.msgs[1].target_addr, "10.0.0.9:7471") == 0,
	   "ping-req with address and nack flag");
	ok(p.msgs[2].type == SWIM_ACK && p.msgs[3].type == SWIM_NACK && p.msgs[3].seq == 4,
	   "ack and nack");
	is_int(p.n_updates, 2, "two updates");
	ok(p.updates[0].state == SWIM_ALIVE && p.updates[0].member.incarnation == 7 &&
		   strcmp(p.updates[0].member.name, "node-1") == 0 &&
		   strcmp(p.updates[0].member.addr[SWIM_ADDR_REST], "10.0.0.1:7473") == 0 &&
		   p.updates[0].member.meta_len == 10 &&
		   memcmp(p.updates[0].member.meta, "role=voter", 10) == 0,
	   "alive update with its member");
	ok(p.updates[1].state == SWIM_SUSPECT && p.updates[1].id == 99 &&
		   p.updates[1].incarnation == 3 && p.updates[1].from == 5,
	   "suspect update");
	swim_wire_packet_free(&p);
}

/* Ports on the cluster address's host travel alone and come back whole. */
static void test_compact_ports(void)
{
	struct swim_member_rec m = member, other = member;
	struct swim_update u = {.state = SWIM_ALIVE, .id = member.id, .incarnation = 7};
	uint8_t enc[1024], buf[1400];
	size_t small, big;
	struct swim_wire_pkt b;
	struct swim_packet p;

	m.addr[SWIM_ADDR_CLUSTER] = "[fd00::7]:7471";
	m.addr[SWIM_ADDR_CLIENT] = "[fd00::7]:7472";
	m.addr[SWIM_ADDR_REST] = "[fd00::7]:0073"; /* a leading zero: sent whole */
	u.member = m;
	small = swim_wire_encode_update(&u, enc, sizeof enc);
	swim_wire_pkt_init(&b, buf, sizeof buf, 0, 1);
	swim_wire_pkt_add_update(&b, enc, small);
	is_int(swim_wire_decode_packet(buf, b.len, &p, NULL), 0, "a compacted member decodes");
	is_str(p.updates[0].member.addr[SWIM_ADDR_CLIENT], "[fd00::7]:7472",
	       "the client address is rebuilt from the port");
	is_str(p.updates[0].member.addr[SWIM_ADDR_REST], "[fd00::7]:0073",
	       "an address the port cannot rebuild is kept whole");
	swim_wire_packet_free(&p);
	other.addr[SWIM_ADDR_CLIENT] = "10.0.0.2:7472";
	other.addr[SWIM_ADDR_REST] = "10.0.0.2:7473";
	u.member = other;
	big = swim_wire_encode_update(&u, enc, sizeof enc);
	u.member = member;
	ok(swim_wire_encode_update(&u, enc, sizeof enc) + 20 < big,
	   "same-host ports save over 20 bytes per member");
}

static void test_mtu(void)
{
	uint8_t buf[1400], enc[1024];
	struct swim_wire_pkt b;
	struct swim_update u = {
		.state = SWIM_ALIVE, .id = member.id, .incarnation = 7, .member = member};
	size_t n = swim_wire_encode_update(&u, enc, sizeof enc), added = 0, before;

	swim_wire_pkt_init(&b, buf, 1200, 1, 2);
	while (swim_wire_pkt_add_update(&b, enc, n) == 0)
		added++;
	ok(added > 5 && b.len <= 1200, "%zu updates fill %zu of 1200 bytes", added, b.len);
	before = b.len;
	is_int(swim_wire_pkt_add_update(&b, enc, n), SH_ENOSPC, "the next one does not fit");
	is_int(b.len, before, "and the packet is unchanged");
	ok(1200 - b.len < swim_wire_pkt_update_cost(n), "less room left than one more costs");
	is_int(swim_wire_encode_update(&u, enc, 10), 0, "encoding into too small a buffer fails");
}

static void test_pushpull(void)
{
	struct swim_member_rec ms[3] = {member, member, member};
	struct swim_pushpull pp = {.cluster_id = 0,
				   .sender = 9,
				   .sender_addr = "h:1",
				   .join = true,
				   .members = ms,
				   .n_members = 3},
			     back;
	uint8_t *buf;
	size_t len;
	struct sh_err err;

	ms[1].id = 2;
	ms[1].state = SWIM_DEAD;
	ms[2].id = 3;
	ms[2].meta_len = 0;
	is_int(swim_wire_encode_pushpull(&pp, &buf, &len, &err), 0, "push-pull encodes");
	is_int(swim_wire_frame_len(buf), len - SWIM_FRAME_HDR, "frame header holds the length");
	is_int(swim_wire_decode_pushpull(buf + 4, len - 4, &back, &err), 0, "and decodes: %s",
	       err.msg);
	ok(back.join && !back.reply && back.n_members == 3 && back.members[1].state == SWIM_DEAD &&
		   back.members[2].meta_len == 0 && strcmp(back.sender_addr, "h:1") == 0,
	   "fields survive");
	swim_wire_pushpull_free(&back);
	sh_free(buf);
	is_int(swim_wire_frame_len((const uint8_t[]){0x00, 0x40, 0x00, 0x01}), 0,
	       "a frame over 4 MiB is refused by its header");
}

/* Encode a push-pull holding one (bad) member and expect an error. */
static void expect_bad_member(struct swim_member_rec m, int code, const char *want,
			      const char *what)
{
	struct swim_pushpull pp = {.sender = 9,
				   .sender_addr = "h:1",
				   .members = &m,
				   .n_members = 1},
			     back;
	uint8_t *buf;
	size_t len;
	struct sh_err err;

	swim_wire_encode_pushpull(&pp, &buf, &len, NULL);
	is_int(swim_wire_decode_pushpull(buf + 4, len - 4, &back, &err), code, "%s: refused", what);
	like(err.msg, want, "%s: message", what);
	sh_free(buf);
}

static void test_limits(void)
{
	struct swim_member_rec m = member;
	static uint8_t meta[SWIM_META_MAX + 1];
	uint8_t buf[4096];
	struct swim_wire_pkt b;
	struct swim_packet p;
	struct sh_err err;

	m.meta = meta;
	m.meta_len = sizeof meta;
	expect_bad_member(m, SH_ETOOBIG,
			  "push-pull: member 1: member 1122334455667788: metadata "
			  "of 513 bytes",
			  "513 bytes of metadata");
	m = member;
	m.name = "bad name";
	expect_bad_member(m, SH_EINVAL, "member name has byte 0x20 at 3", "a space in a name");
	m = member;
	m.addr[0] = "h:1\nINFO forged";
	expect_bad_member(m, SH_EINVAL, "cluster_addr has byte 0x0a", "a newline in an address");
	m = member;
	m.addr[0] = "";
	expect_bad_member(m, SH_EINVAL, "cluster_addr is empty", "no cluster address");
	m = member;
	m.id = 0;
	expect_bad_member(m, SH_EINVAL, "member id is 0", "id 0");
	m = member;
	m.state = (enum swim_state)9;
	expect_bad_member(m, SH_EINVAL, "unknown state 9", "an unknown state");

	swim_wire_pkt_init(&b, buf, sizeof buf, 0, 1);
	for (int i = 0; i < SWIM_MSGS_MAX + 1; i++)
		swim_wire_pkt_add_msg(&b, &(struct swim_msg){.type = SWIM_ACK, .seq = 1});
	is_int(swim_wire_decode_packet(buf, b.len, &p, &err), SH_ETOOBIG, "65 messages refused");
	is_str(err.msg, "packet: 65 messages, more than 64", "before anything is allocated");
	swim_wire_pkt_init(&b, buf, sizeof buf, 0, 0);
	is_int(swim_wire_decode_packet(buf, b.len, &p, &err), SH_EINVAL, "sender 0 refused");
	swim_wire_pkt_init(&b, buf, sizeof buf, 0, 1);
	swim_wire_pkt_add_msg(&b, &(struct swim_msg){.type = SWIM_PING, .seq = 1, .target = 0});
	is_int(swim_wire_decode_packet(buf, b.len, &p, &err), SH_EINVAL, "ping without target");
	like(err.msg, "packet: message 1: ping without a target", "says which message");
	is_int(swim_wire_decode_packet(buf, SWIM_UDP_MAX + 1, &p, &err), SH_ETOOBIG,
	       "an oversized datagram is refused by its size");
}

static void test_truncations(void)
{
	uint8_t buf[1400];
	size_t len = sample_packet(buf, sizeof buf);
	int decoded = 0;

	for (size_t n = 0; n < len; n++) {
		struct swim_packet p;

		if (swim_wire_decode_packet(buf, n, &p, NULL) == 0) {
			decoded++;
			swim_wire_packet_free(&p);
		}
	}
	ok(decoded < (int)len, "every prefix is handled; %d of %zu decode (at field ends)", decoded,
	   len);
}

static void test_alloc_failures(void)
{
	uint8_t buf[1400];
	size_t len = sample_packet(buf, sizeof buf);
	int failures = 0;

	for (long n = 0; n < 40; n++) {
		struct swim_packet p;
		int rv;

		sh_alloc_fail_after(n);
		rv = swim_wire_decode_packet(buf, len, &p, NULL);
		sh_alloc_fail_after(-1);
		if (rv == 0)
			swim_wire_packet_free(&p);
		else
			failures++;
	}
	ok(failures > 0 && failures < 40, "failed allocations give errors, not crashes (%d)",
	   failures);
}

/* Flip, insert and cut bytes of valid inputs; the fuzz entry must live. */
static void test_mutations(void)
{
	uint8_t seedbuf[1400], mut[1500];
	size_t len = sample_packet(seedbuf, sizeof seedbuf);
	struct sh_rand r;
	int runs = 20000;

	sh_rand_seed(&r, 6);
	for (int i = 0; i < runs; i++) {
		size_t n = len;

		memcpy(mut, seedbuf, len);
		for (int k = 0, edits = 1 + (int)sh_rand_below(&r, 4); k < edits; k++) {
			size_t at = sh_rand_below(&r, n);

			switch (sh_rand_below(&r, 3)) {
			case 0: mut[at] ^= (uint8_t)(1u << sh_rand_below(&r, 8)); break;
			case 1: mut[at] = (uint8_t)sh_rand_u32(&r); break;
			default: n = at + 1; break;
			}
		}
		fuzz_swim_wire(mut, n);
	}
	pass("%d mutated packets went through the decoders", runs);
}

int main(void)
{
	test_packet_roundtrip();
	test_compact_ports();
	test_mtu();
	test_pushpull();
	test_limits();
	test_truncations();
	test_alloc_failures();
	test_mutations();
	return done_testing();
}
