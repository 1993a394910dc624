/* Bad input against a real shoald, over raw sockets: each answered with
 * the right status and message while the server keeps serving others —
 * oversized length prefix, garbage bytes, a frame cut in half then the
 * connection closed, a protobuf that does not decode, an unknown method,
 * bad metadata, wrong dimension, NaN, a vector whose distances would
 * overflow, unknown collection, a bad payload, a filter of the wrong
 * shape, k = 0 or huge, ef over the cap, a token of another term, 1,000
 * idle connections, the connection cap, idle and slow-frame timeouts, a
 * client that never reads its replies, and snapshot sessions asked out of
 * order (unknown, wrong offset, a piece asked twice, too many at once). */
#include "build.h"

#include "net/frame.h"
#include "proto/shoal.pb-c.h"
#include "srv.h"
#include "tap.h"

#include <math.h>
#include <poll.h>
#include <sys/resource.h>

static struct srv s;
static uint64_t next_id = 1;

struct reply {
	struct frame_hdr h;
	char msg[512];
	uint8_t body[65536];
};

static int send_frame(int fd, uint64_t id, uint16_t method, uint8_t flags, const void *body,
		      size_t len)
{
	struct frame_hdr h = {(uint32_t)len, id, method, flags, 0};
	uint8_t hb[FRAME_HDR_SIZE];

	frame_hdr_encode(&h, hb);
	return raw_write(fd, hb, sizeof hb) || (len && raw_write(fd, body, len));
}

static int send_msg(int fd, uint16_t method, const ProtobufCMessage *m)
{
	uint8_t buf[65536];
	size_t len = protobuf_c_message_pack(m, buf);

	return send_frame(fd, next_id++, method, 0, buf, len);
}

/* Read one reply; -1 on EOF.  r->msg: the Status message if any. */
static int read_reply(int fd, struct reply *r)
{
	uint8_t hb[FRAME_HDR_SIZE];
	Shoal__Status *st;

	r->msg[0] = '\0';
	if (raw_read(fd, hb, sizeof hb) != 0 || frame_hdr_decode(hb, sizeof r->body, &r->h, NULL))
		return -1;
	if (r->h.len && raw_read(fd, r->body, r->h.len) != 0)
		return -1;
	if (r->h.status != 0 && (st = shoal__status__unpack(NULL, r->h.len, r->body)) != NULL) {
		snprintf(r->msg, sizeof r->msg, "%s", st->message);
		shoal__status__free_unpacked(st, NULL);
	}
	return 0;
}

static bool closed(int fd)
{
	char b;

	return recv(fd, &b, 1, 0) <= 0;
}

static bool ping_ok(int port)
{
	int fd = raw_connect(port);
	struct reply r;
	bool good = fd >= 0 && send_frame(fd, 77, SHOAL__METHOD__METHOD_PING, 0, NULL, 0) == 0 &&
		    read_reply(fd, &r) == 0 && r.h.status == 0 && r.h.id == 77;

	if (fd >= 0)
		close(fd);
	return good;
}

/* Send m as method and expect status with a message containing want. */
static void expect(int fd, uint16_t method, const ProtobufCMessage *m, int status, const char *want,
		   const char *what)
{
	struct reply r;

	send_msg(fd, method, m);
	if (read_reply(fd, &r) != 0) {
		fail("%s: no reply", what);
		return;
	}
	is_int(r.h.status, status, "%s: status %d", what, status);
	like(r.msg, want, "  message");
}

/* ------------------------------------------------------------ framing */

static void test_framing(void)
{
	int fd = raw_connect(s.client_port);
	struct reply r;
	uint8_t hb[FRAME_HDR_SIZE];
	struct frame_hdr h = {100u << 20, 5, 1, 0, 0};

	frame_hdr_encode(&h, hb);
	raw_write(fd, hb, sizeof hb);
	ok(read_reply(fd, &r) == 0 && r.h.status == SHOAL__STATUS_CODE__RESOURCE_EXHAUSTED &&
		   r.h.id == 5,
	   "oversized length prefix: RESOURCE_EXHAUSTED for request 5");
	like(r.msg, "frame of 104857600 bytes is over the limit", "  with the sizes");
	ok(closed(fd), "  and the connection is closed");
	close(fd);

	fd = raw_connect(s.client_port);
	raw_write(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
	ok(read_reply(fd, &r) == 0 && r.h.status == SHOAL__STATUS_CODE__RESOURCE_EXHAUSTED &&
		   closed(fd),
	   "garbage (HTTP on the binary port): refused, closed");
	close(fd);

	fd = raw_connect(s.client_port);
	h = (struct frame_hdr){0, 6, 1, 0x40, 0};
	frame_hdr_encode(&h, hb);
	raw_write(fd, hb, sizeof hb);
	ok(read_reply(fd, &r) == 0 && r.h.status == SHOAL__STATUS_CODE__INVALID_ARGUMENT &&
		   closed(fd),
	   "unknown flag bits: INVALID_ARGUMENT, closed");
	like(r.msg, "unknown flag bits 0x40", "  named");
	close(fd);

	fd = raw_connect(s.client_port);
	send_frame(fd, 8, SHOAL__METHOD__METHOD_COUNT, FRAME_F_METADATA, "\xff\x00\x00\x00\x01", 5);
	ok(read_reply(fd, &r) == 0 && r.h.status == SHOAL__STATUS_CODE__INVALID_ARGUMENT &&
		   closed(fd),
	   "metadata length beyond the body: INVALID_ARGUMENT, closed");
	close(fd);

	fd = raw_connect(s.client_port);
	h = (struct frame_hdr){100, 9, SHOAL__METHOD__METHOD_SEARCH, 0, 0};
	frame_hdr_encode(&h, hb);
	raw_write(fd, hb, sizeof hb);
	raw_write(fd, "0123456789012345678901234567890123456789012345678", 50);
	close(fd);
	ok(ping_ok(s.client_port), "a frame cut in half, then closed: others are still served");

	fd = raw_connect(s.client_port);
	send_frame(fd, 10, SHOAL__METHOD__METHOD_SEARCH, 0, "\xff\xff\xff", 3);
	ok(read_reply(fd, &r) == 0 && r.h.status == SHOAL__STATUS_CODE__INVALID_ARGUMENT,
	   "a protobuf that does not decode: INVALID_ARGUMENT");
	like(r.msg, "request does not decode as SearchRequest", "  says which message");
	send_frame(fd, 11, 99, 0, NULL, 0);
	ok(read_reply(fd, &r) == 0 && r.h.status == SHOAL__STATUS_CODE__INVALID_ARGUMENT &&
		   r.h.id == 11,
	   "unknown method: INVALID_ARGUMENT");
	like(r.msg, "unknown method 99", "  named");
	send_frame(fd, 12, SHOAL__METHOD__METHOD_PING, 0, NULL, 0);
	ok(read_reply(fd, &r) == 0 && r.h.status == 0 && r.h.id == 12,
	   "  the connection stays usable after both");
	close(fd);
}

/* ------------------------------------------------------------ requests */

static void test_requests(void)
{
	int fd = raw_connect(s.client_port);
	Shoal__CreateCollectionRequest cr;
	Shoal__UpsertRequest up;
	Shoal__Point p, *pp = &p;
	Shoal__SearchRequest sr;
	Shoal__Filter f;
	Shoal__Condition cond, *cp = &cond;
	Shoal__ReadOptions ro;
	Shoal__Token tok;
	float v3[3] = {1, 2, 3}, v2[2] = {1, 2}, vn[3] = {1, NAN, 3};
	float vhuge[3] = {3e38f, 3e38f, 0}; /* finite, but distances overflow */
	char bad[] = "bad", big[] = "big", nope[] = "nope", x[] = "x";
	char partial[] = "{\"a\":", array[] = "[1,2]";

	shoal__create_collection_request__init(&cr);
	shoal__upsert_request__init(&up);
	shoal__point__init(&p);
	shoal__search_request__init(&sr);
	shoal__filter__init(&f);
	shoal__condition__init(&cond);
	shoal__read_options__init(&ro);
	shoal__token__init(&tok);
	cr.name = bad;
	cr.dim = 3;
	expect(fd, SHOAL__METHOD__METHOD_CREATE_COLLECTION, &cr.base, 0, "", "create a collection");
	cr.dim = 100000;
	cr.name = big;
	expect(fd, SHOAL__METHOD__METHOD_CREATE_COLLECTION, &cr.base,
	       SHOAL__STATUS_CODE__INVALID_ARGUMENT, "dim 100000 is not in 1..65536",
	       "dim too big");
	up.collection = bad;
	up.points = &pp;
	up.n_points = 1;
	p.id = 1;
	p.vector = v2;
	p.n_vector = 2;
	expect(fd, SHOAL__METHOD__METHOD_UPSERT, &up.base, SHOAL__STATUS_CODE__INVALID_ARGUMENT,
	       "vector has 2 values, the collection's dimension is 3", "wrong dimension");
	p.vector = vn;
	p.n_vector = 3;
	expect(fd, SHOAL__METHOD__METHOD_UPSERT, &up.base, SHOAL__STATUS_CODE__INVALID_ARGUMENT,
	       "vector value 1 is NaN", "NaN in a vector");
	p.vector = vhuge;
	expect(fd, SHOAL__METHOD__METHOD_UPSERT, &up.base, SHOAL__STATUS_CODE__INVALID_ARGUMENT,
	       "vector norm 4.24e+38 is over the limit of 1e+18", "a vector too long");
	p.vector = v3;
	p.payload.data = (uint8_t *)partial;
	p.payload.len = 5;
	expect(fd, SHOAL__METHOD__METHOD_UPSERT, &up.base, SHOAL__STATUS_CODE__INVALID_ARGUMENT,
	       "payload is not valid JSON", "a malformed payload");
	p.payload.data = (uint8_t *)array;
	expect(fd, SHOAL__METHOD__METHOD_UPSERT, &up.base, SHOAL__STATUS_CODE__INVALID_ARGUMENT,
	       "payload must be a JSON object, not an array", "a payload that is not an object");
	up.collection = nope;
	p.payload.len = 0;
	expect(fd, SHOAL__METHOD__METHOD_UPSERT, &up.base, SHOAL__STATUS_CODE__NOT_FOUND, "'nope'",
	       "upsert to an unknown collection");

	sr.collection = bad;
	sr.vector = vn;
	sr.n_vector = 3;
	sr.k = 3;
	expect(fd, SHOAL__METHOD__METHOD_SEARCH, &sr.base, SHOAL__STATUS_CODE__INVALID_ARGUMENT,
	       "query vector value 1 is NaN", "NaN in a query");
	sr.vector = vhuge;
	expect(fd, SHOAL__METHOD__METHOD_SEARCH, &sr.base, SHOAL__STATUS_CODE__INVALID_ARGUMENT,
	       "query vector norm 4.24e+38 is over the limit of 1e+18", "a query too long");
	sr.vector = v3;
	sr.k = 0;
	expect(fd, SHOAL__METHOD__METHOD_SEARCH, &sr.base, SHOAL__STATUS_CODE__INVALID_ARGUMENT,
	       "k = 0 is outside 1..10000", "k = 0");
	sr.k = 4000000000u;
	expect(fd, SHOAL__METHOD__METHOD_SEARCH, &sr.base, SHOAL__STATUS_CODE__INVALID_ARGUMENT,
	       "k = 4000000000 is outside 1..10000", "k huge");
	sr.k = 5;
	sr.ef = 2;
	expect(fd, SHOAL__METHOD__METHOD_SEARCH, &sr.base, SHOAL__STATUS_CODE__INVALID_ARGUMENT,
	       "ef = 2 is outside k..", "ef < k");
	sr.ef = 10001;
	expect(fd, SHOAL__METHOD__METHOD_SEARCH, &sr.base, SHOAL__STATUS_CODE__INVALID_ARGUMENT,
	       "ef = 10001 is outside k..10000", "ef over the cap");
	sr.ef = 0;
	f.must = &cp;
	f.n_must = 1;
	cond.key = x;
	sr.filter = &f;
	expect(fd, SHOAL__METHOD__METHOD_SEARCH, &sr.base, SHOAL__STATUS_CODE__INVALID_ARGUMENT,
	       "filter.must[0]: needs match, any, range or filter", "a filter of the wrong shape");
	sr.filter = NULL;
	sr.collection = nope;
	expect(fd, SHOAL__METHOD__METHOD_SEARCH, &sr.base, SHOAL__STATUS_CODE__NOT_FOUND,
	       "collection 'nope' not found", "search an unknown collection");
	sr.collection = bad;
	ro.consistency = SHOAL__CONSISTENCY__CONSISTENCY_READ_YOUR_WRITES;
	ro.token = &tok;
	tok.term = 7;
	tok.index = 1;
	sr.read = &ro;
	expect(fd, SHOAL__METHOD__METHOD_SEARCH, &sr.base, SHOAL__STATUS_CODE__FAILED_PRECONDITION,
	       "token 7:1: entry 1 has term 1 in the committed log: the write was lost",
	       "read_your_writes with a token of another term");
	ro.token = NULL;
	expect(fd, SHOAL__METHOD__METHOD_SEARCH, &sr.base, SHOAL__STATUS_CODE__INVALID_ARGUMENT,
	       "needs the token of a write", "read_your_writes without a token");
	close(fd);
	ok(srv_alive(&s) && ping_ok(s.client_port), "after all that the server still serves");
}

/* ------------------------------------------------------------ connections */

static void test_idle_connections(void)
{
	static int fds[1000];
	int opened = 0;

	for (int i = 0; i < 1000; i++)
		if ((fds[i] = raw_connect(s.client_port)) >= 0)
			opened++;
	is_int(opened, 1000, "1,000 idle connections open");
	ok(ping_ok(s.client_port), "  and a new client is still served");
	for (int i = 0; i < 1000; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* A second server with small limits: the cap, timeouts, back-pressure. */
static void test_limits(void)
{
	const char *const args[] = {"--limits-max-connections",
				    "3",
				    "--limits-idle-timeout-ms",
				    "700",
				    "--limits-request-timeout-ms",
				    "1000",
				    "--limits-max-output-bytes",
				    "64KiB",
				    NULL};
	struct srv t;
	char dir[256];
	int fds[3], extra, idle, slow, greedy;
	size_t sent = 0;
	uint8_t hb[FRAME_HDR_SIZE], buf[16 * 4096];
	struct frame_hdr h = {0, 1, SHOAL__METHOD__METHOD_PING, 0, 0};
	bool served = true;

	srv_tmpdir(dir, sizeof dir);
	snprintf(t.dir, sizeof t.dir, "%s", dir);
	if (srv_start_args(&t, args) != 0) {
		fail("second shoald does not start");
		return;
	}
	for (int i = 0; i < 3; i++)
		fds[i] = raw_connect(t.client_port);
	extra = raw_connect(t.client_port);
	/* over TLS the close at accept fails the handshake: no connection */
	ok(extra >= 0 ? closed(extra) : srv_tls_dir() != NULL,
	   "over limits.max_connections: closed at accept");
	if (extra >= 0)
		close(extra);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	srv_sleep_ms(100);

	idle = raw_connect(t.client_port);
	slow = raw_connect(t.client_port);
	raw_write(slow, "\x10\x00\x00", 3); /* a header that never completes */
	srv_sleep_ms(1800 * srv_scale());
	ok(closed(idle), "an idle connection is closed after limits.idle_timeout_ms");
	ok(closed(slow), "a frame that does not arrive whole is closed after request_timeout_ms");
	close(idle);
	close(slow);

	greedy = raw_connect(t.client_port);
	fcntl(greedy, F_SETFL, O_NONBLOCK);
	for (size_t i = 0; i < sizeof buf / FRAME_HDR_SIZE; i++) {
		h.id = i;
		frame_hdr_encode(&h, hb);
		memcpy(buf + i * FRAME_HDR_SIZE, hb, FRAME_HDR_SIZE);
	}
	for (int round = 0; round < 2000; round++) {
		ssize_t n = send(greedy, buf, sizeof buf, MSG_NOSIGNAL);

		if (n <= 0)
			break;
		sent += (size_t)n;
		if (round % 50 == 0)
			served &= ping_ok(t.client_port);
	}
	ok(sent < 2000 * sizeof buf,
	   "a client that never reads: the server stops reading it "
	   "(%zu bytes of requests taken)",
	   sent);
	ok(served && ping_ok(t.client_port), "  while the others are served");
	srv_sleep_ms(2000 * srv_scale());
	{
		char b[65536];
		ssize_t n;
		int tries = 0;

		fcntl(greedy, F_SETFL, 0);
		while ((n = recv(greedy, b, sizeof b, 0)) > 0 && tries++ < 100000)
			;
		ok(n <= 0, "  and it is closed when its replies do not drain");
	}
	close(greedy);
	is_int(srv_stop(&t, SIGTERM), 0, "second server: clean exit");
	srv_rmdir(dir);
	unlink(t.log);
}

/* ------------------------------------------------------------ snapshots */

static Shoal__SnapshotResponse *snap_ask(int fd, uint64_t session, uint64_t offset)
{
	Shoal__SnapshotRequest q = SHOAL__SNAPSHOT_REQUEST__INIT;
	struct reply r;

	q.session = session;
	q.offset = offset;
	if (send_msg(fd, SHOAL__METHOD__METHOD_SNAPSHOT, &q.base) != 0 || read_reply(fd, &r) != 0)
		return NULL;
	if (r.h.status != 0) {
		diag("snapshot request (session %" PRIu64 ", offset %" PRIu64 "): status %u: %s",
		     session, offset, (unsigned)r.h.status, r.msg);
		return NULL;
	}
	return shoal__snapshot_response__unpack(NULL, r.h.len, r.body);
}

/* Open n sessions (again after a refusal, a few times: a snapshot the node
 * takes by itself may hold the one asked for); how many opened. */
static int snap_open(int fd, int n)
{
	Shoal__SnapshotResponse *a;
	int opened = 0;

	for (int tries = 0; opened < n && tries < 20 * n; tries++) {
		if ((a = snap_ask(fd, 0, 0)) != NULL) {
			shoal__snapshot_response__free_unpacked(a, NULL);
			opened++;
		} else {
			usleep(50 * 1000);
		}
	}
	return opened;
}

static void test_snapshot_sessions(void)
{
	int fd = raw_connect(s.client_port);
	Shoal__SnapshotRequest q = SHOAL__SNAPSHOT_REQUEST__INIT;
	Shoal__SnapshotResponse *a, *b = NULL, *c = NULL;
	uint64_t session, offset;
	int pieces = 1;

	q.session = 12345;
	expect(fd, SHOAL__METHOD__METHOD_SNAPSHOT, &q.base, SHOAL__STATUS_CODE__NOT_FOUND,
	       "no snapshot session", "snapshot: an unknown session");
	q.session = 0;
	q.offset = 5;
	expect(fd, SHOAL__METHOD__METHOD_SNAPSHOT, &q.base, SHOAL__STATUS_CODE__INVALID_ARGUMENT,
	       "starts at offset 0", "snapshot: a new session not at offset 0");
	a = snap_ask(fd, 0, 0);
	ok(a != NULL && a->session != 0 && a->offset == 0 && a->data.len == 40 && !a->last &&
		   a->index > 0 && a->size > 40,
	   "snapshot: a session starts with the 40-byte header");
	if (a == NULL)
		return;
	session = a->session;
	b = snap_ask(fd, session, 40);
	c = snap_ask(fd, session, 40);
	ok(b != NULL && c != NULL && b->offset == 40 && b->data.len == c->data.len &&
		   memcmp(b->data.data, c->data.data, b->data.len) == 0,
	   "snapshot: the piece just served is served again when asked again");
	offset = b ? 40 + b->data.len : 0;
	q.session = session;
	q.offset = 7;
	expect(fd, SHOAL__METHOD__METHOD_SNAPSHOT, &q.base, SHOAL__STATUS_CODE__INVALID_ARGUMENT,
	       "the next piece is at offset", "snapshot: a wrong offset");
	shoal__snapshot_response__free_unpacked(b, NULL);
	while ((b = snap_ask(fd, session, offset)) != NULL && !b->last && pieces++ < 1000) {
		offset += b->data.len;
		shoal__snapshot_response__free_unpacked(b, NULL);
	}
	ok(b != NULL && b->last && b->offset == a->size && offset == a->size,
	   "snapshot: the session ends after %d pieces, at the file's size", pieces);
	q.offset = offset;
	expect(fd, SHOAL__METHOD__METHOD_SNAPSHOT, &q.base, SHOAL__STATUS_CODE__NOT_FOUND,
	       "no snapshot session", "snapshot: the session is closed at its end");
	shoal__snapshot_response__free_unpacked(a, NULL);
	shoal__snapshot_response__free_unpacked(b, NULL);
	shoal__snapshot_response__free_unpacked(c, NULL);
	is_int(snap_open(fd, 4), 4, "snapshot: four sessions open at once");
	q.session = 0;
	q.offset = 0;
	expect(fd, SHOAL__METHOD__METHOD_SNAPSHOT, &q.base, SHOAL__STATUS_CODE__RESOURCE_EXHAUSTED,
	       "snapshot downloads are under way", "snapshot: a fifth session while four are open");
	close(fd);
}

int main(void)
{
	char dir[256];
	struct rlimit rl;

	srv_watchdog(120);
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < 2100) {
		rl.rlim_cur = rl.rlim_max < 2100 ? rl.rlim_max : 2100;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	srv_tmpdir(dir, sizeof dir);
	snprintf(s.dir, sizeof s.dir, "%s", dir);
	if (srv_start_strong(&s) != 0)
		bail_out("shoald does not start");
	test_framing();
	test_requests();
	test_idle_connections();
	test_limits();
	test_snapshot_sessions();
	ok(srv_alive(&s), "the first server is still running");
	is_int(srv_stop(&s, SIGTERM), 0, "SIGTERM: clean exit");
	srv_rmdir(dir);
	unlink(s.log);
	return done_testing();
}
