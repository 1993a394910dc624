/*
 * swim_wire: see swim_wire.h.
 *
 * protobuf-c does the field decoding; this file adds what protobuf-c does
 * not: a walk over the top-level fields that counts repeated entries before
 * anything is allocated (protobuf-c would allocate an array of whatever
 * count the bytes announce), allocation through sh_malloc, and a check of
 * every value the core relies on.
 */
#include "build.h"

#include "cluster/swim_wire.h"

#include "proto/cluster.pb-c.h"
#include "util/alloc.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ allocator */

static void *pb_alloc(void *data, size_t size)
{
	return sh_malloc(size);
}

static void pb_free(void *data, void *ptr)
{
	sh_free(ptr);
}

static ProtobufCAllocator pb_allocator = {pb_alloc, pb_free, NULL};

/* protobuf-c's structs hold non-const pointers; we only read through them
 * when packing. */
static char *unconst(const char *s)
{
	return (char *)(uintptr_t)s;
}

/* ------------------------------------------------------------------ raw walk */

static int read_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *v)
{
	uint64_t x = 0;

	for (int shift = 0; shift < 64 && *pos < len; shift += 7) {
		uint8_t b = p[(*pos)++];

		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return -1;
}

/* Count the top-level occurrences of field number `field`, checking that
 * every field is well formed and ends inside the buffer. */
static int count_field(const uint8_t *p, size_t len, unsigned field, size_t *count,
		       struct sh_err *err)
{
	size_t pos = 0, n = 0;

	while (pos < len) {
		uint64_t tag, l;

		if (read_varint(p, len, &pos, &tag) != 0)
			return sh_err_set(err, SH_EINVAL, "bad field tag at byte %zu", pos);
		switch (tag & 7) {
		case 0:
			if (read_varint(p, len, &pos, &l) != 0)
				return sh_err_set(err, SH_EINVAL, "bad varint at byte %zu", pos);
			break;
		case 1: l = 8; goto skip;
		case 5: l = 4; goto skip;
		case 2:
			if (read_varint(p, len, &pos, &l) != 0)
				return sh_err_set(err, SH_EINVAL, "bad length at byte %zu", pos);
		skip:
			if (l > len - pos)
				return sh_err_set(err, SH_EINVAL, "field %u runs past the end",
						  (unsigned)(tag >> 3));
			pos += l;
			break;
		default:
			return sh_err_set(err, SH_EINVAL, "unknown wire type %u at byte %zu",
					  (unsigned)(tag & 7), pos);
		}
		if ((tag >> 3) == field)
			n++;
	}
	*count = n;
	return 0;
}

static int check_count(const uint8_t *p, size_t len, unsigned field, size_t max, const char *what,
		       struct sh_err *err)
{
	size_t n;
	int rv = count_field(p, len, field, &n, err);

	if (rv != 0)
		return rv;
	if (n > max)
		return sh_err_set(err, SH_ETOOBIG, "%zu %s, more than %zu", n, what, max);
	return 0;
}

/* ------------------------------------------------------------------ validation */

/* Names: [A-Za-z0-9._-]; addresses: printable ASCII without spaces.  Both
 * end up in log lines, which must not be forgeable. */
static int check_text(const char *s, size_t max, bool name, bool required, const char *what,
		      struct sh_err *err)
{
	size_t n = strlen(s);

	if (n == 0 && required)
		return sh_err_set(err, SH_EINVAL, "%s is empty", what);
	if (n > max)
		return sh_err_set(err, SH_EINVAL, "%s is %zu bytes, more than %zu", what, n, max);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		bool good = name ? (isalnum(c) || c == '.' || c == '_' || c == '-')
				 : (c > 0x20 && c < 0x7f);

		if (!good)
			return sh_err_set(err, SH_EINVAL, "%s has byte 0x%02x at %zu", what, c, i);
	}
	return 0;
}

/* Strings built while decoding, freed with the message. */
struct strblk {
	struct strblk *next;
	char s[];
};

static void strs_free(void *head)
{
	for (struct strblk *b = head, *next; b != NULL; b = next) {
		next = b->next;
		sh_free(b);
	}
}

/* "host:port" from the host of cluster_addr and a port sent alone. */
static const char *join_port(void **strs, const char *cluster_addr, uint32_t port)
{
	const char *colon = strrchr(cluster_addr, ':');
	size_t hlen = colon ? (size_t)(colon - cluster_addr) : 0;
	struct strblk *b;

	if (colon == NULL || port == 0 || port > 65535 || !(b = sh_malloc(sizeof *b + hlen + 7)))
		return NULL;
	snprintf(b->s, hlen + 7, "%.*s:%u", (int)hlen, cluster_addr, port);
	b->next = *strs;
	*strs = b;
	return b->s;
}

static int member_from_pb(const Shoal__Cluster__Member *m, struct swim_member_rec *r, void **strs,
			  struct sh_err *err)
{
	const char *addrs[SWIM_N_ADDRS] = {m->cluster_addr, m->client_addr, m->rest_addr};
	const uint32_t ports[SWIM_N_ADDRS] = {0, m->client_port, m->rest_port};
	static const char *const what[SWIM_N_ADDRS] = {"cluster_addr", "client_addr", "rest_addr"};
	int rv;

	if (m->id == 0)
		return sh_err_set(err, SH_EINVAL, "member id is 0");
	if ((unsigned)m->state > SHOAL__CLUSTER__MEMBER_STATE__LEFT)
		return sh_err_set(err, SH_EINVAL, "member %016llx: unknown state %d",
				  (unsigned long long)m->id, (int)m->state);
	if (m->meta.len > SWIM_META_MAX)
		return sh_err_set(err, SH_ETOOBIG, "member %016llx: metadata of %zu bytes",
				  (unsigned long long)m->id, m->meta.len);
	if ((rv = check_text(m->name, SWIM_NAME_MAX, true, false, "member name", err)) != 0)
		return rv;
	for (int i = 0; i < SWIM_N_ADDRS; i++) {
		if ((rv = check_text(addrs[i], SWIM_ADDR_MAX, false, i == SWIM_ADDR_CLUSTER,
				     what[i], err)) != 0)
			return rv;
		if (addrs[i][0] == '\0' && ports[i] != 0 &&
		    (addrs[i] = join_port(strs, addrs[0], ports[i])) == NULL)
			return sh_err_set(err, SH_EINVAL, "%s: bad port %u", what[i], ports[i]);
	}
	*r = (struct swim_member_rec){.id = m->id,
				      .name = m->name,
				      .incarnation = m->incarnation,
				      .state = (enum swim_state)m->state,
				      .meta = m->meta.data,
				      .meta_len = m->meta.len};
	memcpy(r->addr, addrs, sizeof addrs);
	return 0;
}

static int update_from_pb(const Shoal__Cluster__Update *u, struct swim_update *r, void **strs,
			  struct sh_err *err)
{
	int rv;

	if (u->id == 0)
		return sh_err_set(err, SH_EINVAL, "update for id 0");
	if ((unsigned)u->state > SHOAL__CLUSTER__MEMBER_STATE__LEFT)
		return sh_err_set(err, SH_EINVAL, "update: unknown state %d", (int)u->state);
	*r = (struct swim_update){.state = (enum swim_state)u->state,
				  .id = u->id,
				  .incarnation = u->incarnation,
				  .from = u->from};
	if (r->state != SWIM_ALIVE)
		return 0;
	if (u->member == NULL)
		return sh_err_set(err, SH_EINVAL, "alive update without a member");
	if ((rv = member_from_pb(u->member, &r->member, strs, err)) != 0)
		return rv;
	if (r->member.id != u->id || r->member.incarnation != u->incarnation ||
	    r->member.state != SWIM_ALIVE)
		return sh_err_set(err, SH_EINVAL, "alive update disagrees with its member");
	return 0;
}

static int msg_from_pb(const Shoal__Cluster__Message *m, struct swim_msg *r, struct sh_err *err)
{
	switch (m->body_case) {
	case SHOAL__CLUSTER__MESSAGE__BODY_PING:
		*r = (struct swim_msg){
			.type = SWIM_PING, .seq = m->ping->seq, .target = m->ping->target};
		return r->target != 0 ? 0 : sh_err_set(err, SH_EINVAL, "ping without a target");
	case SHOAL__CLUSTER__MESSAGE__BODY_PING_REQ:
		*r = (struct swim_msg){.type = SWIM_PING_REQ,
				       .seq = m->ping_req->seq,
				       .target = m->ping_req->target,
				       .target_addr = m->ping_req->target_addr,
				       .nack = m->ping_req->nack};
		if (r->target == 0)
			return sh_err_set(err, SH_EINVAL, "ping-req without a target");
		return check_text(r->target_addr, SWIM_ADDR_MAX, false, true, "ping-req address",
				  err);
	case SHOAL__CLUSTER__MESSAGE__BODY_ACK:
		*r = (struct swim_msg){.type = SWIM_ACK, .seq = m->ack->seq};
		return 0;
	case SHOAL__CLUSTER__MESSAGE__BODY_NACK:
		*r = (struct swim_msg){.type = SWIM_NACK, .seq = m->nack->seq};
		return 0;
	default: return sh_err_set(err, SH_EINVAL, "message with no body");
	}
}

/* ------------------------------------------------------------------ decode */

static int packet_fill(const Shoal__Cluster__Packet *pb, struct swim_packet *out,
		       struct sh_err *err)
{
	int rv;

	if (pb->sender == 0)
		return sh_err_set(err, SH_EINVAL, "sender id is 0");
	out->cluster_id = pb->cluster_id;
	out->sender = pb->sender;
	out->n_msgs = pb->n_messages;
	out->n_updates = pb->n_updates;
	if (pb->n_messages && !(out->msgs = sh_calloc(pb->n_messages, sizeof *out->msgs)))
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	if (pb->n_updates && !(out->updates = sh_calloc(pb->n_updates, sizeof *out->updates)))
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	for (size_t i = 0; i < pb->n_messages; i++)
		if ((rv = msg_from_pb(pb->messages[i], &out->msgs[i], err)) != 0)
			return sh_err_wrap(err, rv, "message %zu", i + 1);
	for (size_t i = 0; i < pb->n_updates; i++)
		if ((rv = update_from_pb(pb->updates[i], &out->updates[i], &out->strs, err)) != 0)
			return sh_err_wrap(err, rv, "update %zu", i + 1);
	return 0;
}

int swim_wire_decode_packet(const uint8_t *buf, size_t len, struct swim_packet *out,
			    struct sh_err *err)
{
	Shoal__Cluster__Packet *pb;
	int rv;

	memset(out, 0, sizeof *out);
	if (len > SWIM_UDP_MAX)
		return sh_err_set(err, SH_ETOOBIG, "packet of %zu bytes", len);
	if ((rv = check_count(buf, len, 3, SWIM_MSGS_MAX, "messages", err)) != 0 ||
	    (rv = check_count(buf, len, 4, SWIM_UPDATES_MAX, "updates", err)) != 0)
		return sh_err_wrap(err, rv, "packet");
	pb = shoal__cluster__packet__unpack(&pb_allocator, len, buf);
	if (pb == NULL)
		return sh_err_set(err, SH_EINVAL, "packet: not a valid Packet message");
	out->priv = pb;
	if ((rv = packet_fill(pb, out, err)) != 0) {
		swim_wire_packet_free(out);
		return sh_err_wrap(err, rv, "packet");
	}
	return 0;
}

void swim_wire_packet_free(struct swim_packet *p)
{
	if (p->priv != NULL)
		shoal__cluster__packet__free_unpacked(p->priv, &pb_allocator);
	sh_free(p->msgs);
	sh_free(p->updates);
	strs_free(p->strs);
	memset(p, 0, sizeof *p);
}

static int pushpull_fill(const Shoal__Cluster__PushPull *pb, struct swim_pushpull *out,
			 struct sh_err *err)
{
	int rv;

	if (pb->sender == 0)
		return sh_err_set(err, SH_EINVAL, "sender id is 0");
	if ((rv = check_text(pb->sender_addr, SWIM_ADDR_MAX, false, true, "sender_addr", err)))
		return rv;
	*out = (struct swim_pushpull){.cluster_id = pb->cluster_id,
				      .sender = pb->sender,
				      .sender_addr = pb->sender_addr,
				      .join = pb->join,
				      .reply = pb->reply,
				      .n_members = pb->n_members,
				      .priv = out->priv};
	if (pb->n_members && !(out->members = sh_calloc(pb->n_members, sizeof *out->members)))
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	for (size_t i = 0; i < pb->n_members; i++)
		if ((rv = member_from_pb(pb->members[i], &out->members[i], &out->strs, err)) != 0)
			return sh_err_wrap(err, rv, "member %zu", i + 1);
	return 0;
}

int swim_wire_decode_pushpull(const uint8_t *buf, size_t len, struct swim_pushpull *out,
			      struct sh_err *err)
{
	Shoal__Cluster__PushPull *pb;
	int rv;

	memset(out, 0, sizeof *out);
	if (len > SWIM_STREAM_MAX)
		return sh_err_set(err, SH_ETOOBIG, "push-pull of %zu bytes", len);
	if ((rv = check_count(buf, len, 6, SWIM_MEMBERS_MAX, "members", err)) != 0)
		return sh_err_wrap(err, rv, "push-pull");
	pb = shoal__cluster__push_pull__unpack(&pb_allocator, len, buf);
	if (pb == NULL)
		return sh_err_set(err, SH_EINVAL, "push-pull: not a valid PushPull message");
	out->priv = pb;
	if ((rv = pushpull_fill(pb, out, err)) != 0) {
		swim_wire_pushpull_free(out);
		return sh_err_wrap(err, rv, "push-pull");
	}
	return 0;
}

void swim_wire_pushpull_free(struct swim_pushpull *p)
{
	if (p->priv != NULL)
		shoal__cluster__push_pull__free_unpacked(p->priv, &pb_allocator);
	sh_free(p->members);
	strs_free(p->strs);
	memset(p, 0, sizeof *p);
}

size_t swim_wire_frame_len(const uint8_t hdr[SWIM_FRAME_HDR])
{
	size_t n = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3];

	return n <= SWIM_STREAM_MAX ? n : 0;
}

/* ------------------------------------------------------------------ encode */

/* The port of addr when addr is "HOST:port" with the host of cluster
 * (a whole "HOST:" prefix), else 0. */
static uint32_t same_host_port(const char *cluster, const char *addr)
{
	const char *colon = strrchr(cluster, ':');
	size_t hlen = colon ? (size_t)(colon - cluster) + 1 : 0;
	unsigned long port = 0;

	if (hlen == 0 || strncmp(cluster, addr, hlen) != 0 || addr[hlen] == '\0')
		return 0;
	for (const char *p = addr + hlen; *p != '\0'; p++) {
		if (*p < '0' || *p > '9' || (port = port * 10 + (unsigned long)(*p - '0')) > 65535)
			return 0;
	}
	/* Only when the decoder will rebuild exactly this string. */
	return addr[hlen] != '0' ? (uint32_t)port : 0;
}

static void member_to_pb(const struct swim_member_rec *r, Shoal__Cluster__Member *m)
{
	const char *cl = r->addr[SWIM_ADDR_CLUSTER];

	shoal__cluster__member__init(m);
	m->id = r->id;
	m->name = unconst(r->name);
	m->cluster_addr = unconst(cl);
	m->client_port = same_host_port(cl, r->addr[SWIM_ADDR_CLIENT]);
	m->rest_port = same_host_port(cl, r->addr[SWIM_ADDR_REST]);
	m->client_addr = m->client_port ? NULL : unconst(r->addr[SWIM_ADDR_CLIENT]);
	m->rest_addr = m->rest_port ? NULL : unconst(r->addr[SWIM_ADDR_REST]);
	m->incarnation = r->incarnation;
	m->state = (Shoal__Cluster__MemberState)r->state;
	m->meta.data = (uint8_t *)(uintptr_t)r->meta;
	m->meta.len = r->meta_len;
}

size_t swim_wire_encode_update(const struct swim_update *u, uint8_t *buf, size_t cap)
{
	Shoal__Cluster__Update pb = SHOAL__CLUSTER__UPDATE__INIT;
	Shoal__Cluster__Member m;
	size_t n;

	pb.state = (Shoal__Cluster__MemberState)u->state;
	pb.id = u->id;
	pb.incarnation = u->incarnation;
	pb.from = u->from;
	if (u->state == SWIM_ALIVE) {
		member_to_pb(&u->member, &m);
		pb.member = &m;
	}
	n = shoal__cluster__update__get_packed_size(&pb);
	if (n > cap)
		return 0;
	return shoal__cluster__update__pack(&pb, buf);
}

int swim_wire_encode_pushpull(const struct swim_pushpull *p, uint8_t **out, size_t *len,
			      struct sh_err *err)
{
	Shoal__Cluster__PushPull pb = SHOAL__CLUSTER__PUSH_PULL__INIT;
	Shoal__Cluster__Member *ms = NULL, **ptrs = NULL;
	uint8_t *buf = NULL;
	size_t n;
	int rv = 0;

	if (p->n_members > SWIM_MEMBERS_MAX)
		return sh_err_set(err, SH_ETOOBIG, "push-pull: %zu members", p->n_members);
	if (p->n_members && (!(ms = sh_calloc(p->n_members, sizeof *ms)) ||
			     !(ptrs = sh_calloc(p->n_members, sizeof *ptrs)))) {
		rv = sh_err_set(err, SH_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < p->n_members; i++) {
		member_to_pb(&p->members[i], &ms[i]);
		ptrs[i] = &ms[i];
	}
	pb.cluster_id = p->cluster_id;
	pb.sender = p->sender;
	pb.sender_addr = unconst(p->sender_addr);
	pb.join = p->join;
	pb.reply = p->reply;
	pb.n_members = p->n_members;
	pb.members = ptrs;
	n = shoal__cluster__push_pull__get_packed_size(&pb);
	if (n > SWIM_STREAM_MAX) {
		rv = sh_err_set(err, SH_ETOOBIG, "push-pull: %zu bytes", n);
		goto out;
	}
	if ((buf = sh_malloc(SWIM_FRAME_HDR + n)) == NULL) {
		rv = sh_err_set(err, SH_ENOMEM, "out of memory");
		goto out;
	}
	buf[0] = (uint8_t)(n >> 24);
	buf[1] = (uint8_t)(n >> 16);
	buf[2] = (uint8_t)(n >> 8);
	buf[3] = (uint8_t)n;
	shoal__cluster__push_pull__pack(&pb, buf + SWIM_FRAME_HDR);
	*out = buf;
	*len = SWIM_FRAME_HDR + n;
out:
	sh_free(ms);
	sh_free(ptrs);
	return rv;
}

/* ------------------------------------------------------------------ packet builder */

static size_t varint_size(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

static void put_fixed64(struct swim_wire_pkt *b, uint8_t tag, uint64_t v)
{
	b->buf[b->len++] = tag;
	for (int i = 0; i < 8; i++)
		b->buf[b->len++] = (uint8_t)(v >> (8 * i));
}

void swim_wire_pkt_init(struct swim_wire_pkt *b, uint8_t *buf, size_t cap, uint64_t cluster_id,
			uint64_t sender)
{
	*b = (struct swim_wire_pkt){buf, cap, 0};
	if (cluster_id != 0)
		put_fixed64(b, 1 << 3 | 1, cluster_id);
	put_fixed64(b, 2 << 3 | 1, sender);
}

size_t swim_wire_pkt_update_cost(size_t len)
{
	return 1 + varint_size(len) + len;
}

int swim_wire_pkt_add_update(struct swim_wire_pkt *b, const uint8_t *upd, size_t len)
{
	if (swim_wire_pkt_update_cost(len) > b->cap - b->len)
		return SH_ENOSPC;
	b->buf[b->len++] = 4 << 3 | 2;
	b->len += put_varint(b->buf + b->len, len);
	memcpy(b->buf + b->len, upd, len);
	b->len += len;
	return 0;
}

int swim_wire_pkt_add_msg(struct swim_wire_pkt *b, const struct swim_msg *m)
{
	Shoal__Cluster__Message pb = SHOAL__CLUSTER__MESSAGE__INIT;
	Shoal__Cluster__Ping ping = SHOAL__CLUSTER__PING__INIT;
	Shoal__Cluster__PingReq req = SHOAL__CLUSTER__PING_REQ__INIT;
	Shoal__Cluster__Ack ack = SHOAL__CLUSTER__ACK__INIT;
	Shoal__Cluster__Nack nack = SHOAL__CLUSTER__NACK__INIT;
	size_t n;

	switch (m->type) {
	case SWIM_PING:
		ping.seq = m->seq;
		ping.target = m->target;
		pb.body_case = SHOAL__CLUSTER__MESSAGE__BODY_PING;
		pb.ping = &ping;
		break;
	case SWIM_PING_REQ:
		req.seq = m->seq;
		req.target = m->target;
		req.target_addr = unconst(m->target_addr);
		req.nack = m->nack;
		pb.body_case = SHOAL__CLUSTER__MESSAGE__BODY_PING_REQ;
		pb.ping_req = &req;
		break;
	case SWIM_ACK:
		ack.seq = m->seq;
		pb.body_case = SHOAL__CLUSTER__MESSAGE__BODY_ACK;
		pb.ack = &ack;
		break;
	case SWIM_NACK:
		nack.seq = m->seq;
		pb.body_case = SHOAL__CLUSTER__MESSAGE__BODY_NACK;
		pb.nack = &nack;
		break;
	}
	n = shoal__cluster__message__get_packed_size(&pb);
	if (1 + varint_size(n) + n > b->cap - b->len)
		return SH_ENOSPC;
	b->buf[b->len++] = 3 << 3 | 2;
	b->len += put_varint(b->buf + b->len, n);
	b->len += shoal__cluster__message__pack(&pb, b->buf + b->len);
	return 0;
}

const char *swim_state_name(enum swim_state s)
{
	static const char *const names[] = {"alive", "suspect", "dead", "left"};

	return (unsigned)s < 4 ? names[s] : "?";
}
