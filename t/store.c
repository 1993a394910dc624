/* Tests of storage/collection, entry and store: entries round-trip through
 * records; create, upsert (batch, replace), get, scroll with a cursor,
 * delete, drop; bad input (wrong dimension, NaN and infinity, payload not
 * an object or over the limit, unknown collection, duplicate create, bad
 * names and parameters) refused with the exact message and nothing
 * applied; the digest is a function of the state alone; the snapshot
 * content round-trips; and store_adopt replaces a state with a loaded one
 * while a collection reference taken before stays readable (the threaded
 * half is t/store_threads.c). */
#include "build.h"

#include "mem_stream.h"
#include "storage/store.h"
#include "tap.h"
#include "util/alloc.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

/* Encode e as the next record and apply it; returns store_apply's code. */
static int apply(struct store *s, const struct entry *e, size_t *affected, struct sh_err *err)
{
	struct wal_buf *b = wal_buf_new(0);
	struct wal_rec r;
	size_t pos = 0;
	bool fatal;
	int rv;

	if (entry_encode(e, b, 1, store_applied_index(s) + 1, err) != 0)
		bail_out("encode: %s", err->msg);
	wal_buf_next(b, &pos, &r);
	rv = store_apply(s, &r, affected, &fatal, err);
	if (fatal)
		bail_out("fatal apply: %s", err->msg);
	wal_buf_unref(b);
	return rv;
}

static struct entry create(const char *name, uint32_t dim, enum sh_metric metric)
{
	struct entry e = {.type = WAL_CREATE};

	snprintf(e.params.name, sizeof e.params.name, "%s", name);
	e.params.dim = dim;
	e.params.metric = metric;
	e.params.m = 8;
	e.params.ef_construction = 50;
	e.params.seed = 42;
	return e;
}

static struct entry upsert(const char *coll, const struct coll_point *p, size_t n)
{
	return (struct entry){.type = WAL_UPSERT, .collection = coll, .points = p, .n = n};
}

static void test_names(void)
{
	struct sh_err err;
	char long_name[80];

	is_int(coll_check_name("a_B-9", 5, &err), 0, "a good name");
	is_int(coll_check_name("", 0, &err), SH_EINVAL, "empty name refused");
	is_str(err.msg, "collection name must be 1 to 64 characters, not 0", "message");
	memset(long_name, 'x', 65);
	is_int(coll_check_name(long_name, 65, &err), SH_EINVAL, "65 characters refused");
	is_int(coll_check_name("a b", 3, &err), SH_EINVAL, "a space refused");
	is_str(err.msg,
	       "collection name 'a b' has a character other than A-Z, a-z, 0-9, '_' and '-' at "
	       "position 1",
	       "names the position");
}

static void test_entry_roundtrip(void)
{
	float v[2][3] = {{1, 2, 3}, {4, 5, 6}};
	struct coll_point p[2] = {{7, v[0], 3, "{\"a\":1}", 7}, {8, v[1], 3, NULL, 0}};
	struct entry in = upsert("c", p, 2), out;
	struct wal_buf *b = wal_buf_new(0);
	struct wal_rec r;
	struct sh_err err;
	size_t pos = 0;

	entry_encode(&in, b, 3, 9, &err);
	ok(wal_buf_next(b, &pos, &r), "one record");
	ok(r.term == 3 && r.index == 9 && r.type == WAL_UPSERT, "term, index and type");
	is_int(entry_decode(&r, &out, &err), 0, "it decodes");
	is_str(out.collection, "c", "collection");
	is_int(out.n, 2, "two points");
	ok(out.points[1].id == 8 && out.points[1].dim == 3 && out.points[1].vec[2] == 6.0f,
	   "second point's id and vector");
	ok(out.points[0].payload_len == 7 && memcmp(out.points[0].payload, "{\"a\":1}", 7) == 0,
	   "payload bytes");
	entry_release(&out);
	wal_buf_unref(b);

	b = wal_buf_new(0);
	memcpy(wal_buf_add(b, 1, 1, WAL_UPSERT, 3), "\xff\xff\xff", 3);
	pos = 0;
	wal_buf_next(b, &pos, &r);
	is_int(entry_decode(&r, &out, &err), SH_EINVAL, "garbage does not decode");
	is_str(err.msg, "entry 1 (upsert): the body does not decode", "and says which entry");
	entry_release(&out);
	wal_buf_unref(b);
}

static struct store *make_store(void)
{
	struct store *s;
	struct sh_err err;
	struct entry e = create("c", 4, SH_METRIC_L2);

	store_new(&s, &err);
	if (apply(s, &e, NULL, &err) != 0)
		bail_out("create: %s", err.msg);
	return s;
}

static void test_basic(void)
{
	struct store *s = make_store();
	float v[5][4] = {{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}, {1, 1, 1, 1}};
	struct coll_point p[5] = {{50, v[0], 4, "{\"n\":0}", 7},
				  {10, v[1], 4, NULL, 0},
				  {30, v[2], 4, "{\"n\":2}", 7},
				  {20, v[3], 4, NULL, 0},
				  {40, v[4], 4, "{\"n\":4}", 7}};
	struct entry e = upsert("c", p, 5);
	struct sh_err err;
	struct coll *c;
	float got[4];
	char *payload;
	size_t len, n, affected;
	uint64_t ids[10], next;
	bool more;

	is_int(apply(s, &e, &affected, &err), 0, "upsert a batch of 5");
	is_int(affected, 5, "5 points affected");
	is_int(store_applied_index(s), 2, "applied index 2");
	c = store_get(s, "c");
	is_int(coll_count(c), 5, "count 5");
	is_int(coll_get(c, 30, got, &payload, &len), 0, "get id 30");
	ok(got[2] == 1.0f && got[0] == 0.0f, "its vector");
	is_str(payload, "{\"n\":2}", "its payload");
	sh_free(payload);
	is_int(coll_get(c, 31, got, NULL, NULL), SH_ENOTFOUND, "an absent id");
	coll_scroll(c, 0, 2, ids, &n, &next, &more);
	ok(n == 2 && ids[0] == 10 && ids[1] == 20 && more && next == 30,
	   "scroll: first page in id order, cursor 30");
	coll_scroll(c, next, 2, ids, &n, &next, &more);
	ok(n == 2 && ids[0] == 30 && ids[1] == 40 && more && next == 50, "second page");
	coll_scroll(c, next, 2, ids, &n, &next, &more);
	ok(n == 1 && ids[0] == 50 && !more, "last page, no more");
	{
		struct hnsw_result res[3];
		float q[4] = {0.9f, 0, 0.1f, 0};

		is_int(coll_search(c, q, 3, 0, false, res, &n, &err), 0, "search");
		ok(n == 3 && res[0].id == 50, "nearest is id 50");
	}

	/* upsert replaces vector and payload */
	p[0] = (struct coll_point){30, v[4], 4, NULL, 0};
	e = upsert("c", p, 1);
	is_int(apply(s, &e, NULL, &err), 0, "upsert id 30 again");
	coll_get(c, 30, got, &payload, &len);
	ok(got[0] == 1.0f && payload == NULL, "vector replaced, payload removed");
	is_int(coll_count(c), 5, "count still 5");

	/* delete, with an absent id */
	ids[0] = 10;
	ids[1] = 999;
	e = (struct entry){.type = WAL_DELETE, .collection = "c", .ids = ids, .n = 2};
	is_int(apply(s, &e, &affected, &err), 0, "delete 10 and 999");
	is_int(affected, 1, "one point deleted, the absent one skipped");
	is_int(coll_count(c), 4, "count 4");
	coll_unref(c);

	e = (struct entry){.type = WAL_DROP, .collection = "c"};
	is_int(apply(s, &e, NULL, &err), 0, "drop the collection");
	ok(store_get(s, "c") == NULL, "it is gone");
	ok(store_digest(s).lo == 0 && store_digest(s).hi == 0, "the digest of nothing is 0");
	store_free(s);
}

/* e must be refused by store_check and store_apply alike, with want in the
 * message, and leave the state (digest, count, applied data) unchanged. */
static void refused(struct store *s, const struct entry *e, int code, const char *want,
		    const char *what)
{
	struct digest before = store_digest(s);
	size_t points = store_points(s);
	struct sh_err err;

	is_int(store_check(s, e, &err), code, "%s: check refuses", what);
	like(err.msg, want, "%s: check says why", what);
	is_int(apply(s, e, NULL, &err), code, "%s: apply refuses", what);
	like(err.msg, want, "%s: apply says why", what);
	ok(digest_equal(before, store_digest(s)) && points == store_points(s),
	   "%s: nothing applied", what);
}

static void test_bad_input(void)
{
	struct store *s = make_store();
	float good[4] = {1, 2, 3, 4}, nan4[4] = {1, 2, NAN, 4}, inf4[4] = {INFINITY, 0, 0, 0};
	float three[3] = {1, 2, 3}, zero[4] = {0}, tiny[4] = {1e-40f, 1e-40f, 0, 0};
	float huge[4] = {3e38f, 3e38f, 0, 0}, atmax[4] = {6e17f, 8e17f, 0, 0};
	struct coll_point p[3] = {
		{1, good, 4, NULL, 0}, {2, good, 4, NULL, 0}, {3, good, 4, NULL, 0}};
	struct entry e = upsert("c", p, 3), cr;
	struct sh_err err;
	const char *msg = "{\"b\": 1, \"a\": [1, 2]}";
	char *canon = NULL;
	size_t len;

	p[1] = (struct coll_point){11, three, 3, NULL, 0};
	refused(s, &e, SH_EINVAL,
		"collection 'c': point 1 (id 11): vector has 3 values, the collection's dimension "
		"is 4",
		"wrong dimension");
	p[1] = (struct coll_point){2, good, 4, NULL, 0};
	p[2] = (struct coll_point){12, nan4, 4, NULL, 0};
	refused(s, &e, SH_EINVAL, "point 2 (id 12): vector value 2 is NaN",
		"NaN in the last point");
	p[2] = (struct coll_point){13, inf4, 4, NULL, 0};
	refused(s, &e, SH_EINVAL, "point 2 (id 13): vector value 0 is infinite", "infinity");
	p[2] = (struct coll_point){14, good, 4, "[1,2]", 5};
	refused(s, &e, SH_EINVAL, "point 2 (id 14): payload must be a JSON object, not an array",
		"payload not an object");
	p[2] = (struct coll_point){15, good, 4, "{\"a\":", 5};
	refused(s, &e, SH_EINVAL, "point 2 (id 15): payload is not valid JSON", "payload not JSON");
	p[2] = (struct coll_point){3, good, 4, NULL, 0};
	e.collection = "nope";
	refused(s, &e, SH_ENOTFOUND, "collection 'nope' does not exist", "unknown collection");
	cr = create("c", 4, SH_METRIC_L2);
	refused(s, &cr, SH_EEXIST, "collection 'c' already exists", "duplicate create");
	cr = create("d", 0, SH_METRIC_L2);
	refused(s, &cr, SH_EINVAL, "collection 'd': dim 0 is not in 1..65536", "dimension 0");
	cr = create("d", 4, SH_METRIC_L2);
	cr.params.m = 1;
	refused(s, &cr, SH_EINVAL, "collection 'd': m 1 is not in 2..128", "m too small");
	cr = create("bad name", 4, SH_METRIC_L2);
	refused(s, &cr, SH_EINVAL, "has a character other than", "bad name");
	cr = create("cos", 4, SH_METRIC_COSINE);
	apply(s, &cr, NULL, &err);
	e.collection = "cos";
	p[0] = (struct coll_point){1, zero, 4, NULL, 0};
	refused(s, &e, SH_EINVAL, "point 0 (id 1): a zero vector has no direction (metric cosine)",
		"zero vector under cosine");
	/* issue 11, item 6: values that are finite but make distances
	 * overflow, or a direction too small to normalize */
	p[0] = (struct coll_point){1, tiny, 4, NULL, 0};
	refused(s, &e, SH_EINVAL,
		"point 0 (id 1): vector norm 1.41e-40 is under the limit of 1e-18 for metric "
		"cosine",
		"a subnormal vector under cosine");
	e.collection = "c";
	p[0] = (struct coll_point){1, huge, 4, NULL, 0};
	refused(s, &e, SH_EINVAL, "point 0 (id 1): vector norm 4.24e+38 is over the limit of 1e+18",
		"a vector whose distances overflow");
	p[0] = (struct coll_point){1, atmax, 4, NULL, 0};
	is_int(apply(s, &e, NULL, &err), 0, "a vector of norm 1e18 is accepted %s", err.msg);
	e.collection = "cos";
	is_int(coll_payload_canon(msg, strlen(msg), 100, &canon, &len, &err), 0,
	       "canonical payload");
	is_str(canon, "{\"a\":[1,2],\"b\":1}", "compact, keys sorted");
	sh_free(canon);
	is_int(coll_payload_canon("{\"a\": \"0123456789\"}", 19, 10, &canon, &len, &err),
	       SH_ETOOBIG, "payload over the limit");
	is_str(err.msg, "payload of 18 bytes is over the limit of 10", "says both sizes");
	is_int(coll_payload_canon("{\"a\":1,\"a\":2}", 13, 100, &canon, &len, &err), SH_EINVAL,
	       "duplicate keys refused");
	is_int(coll_payload_canon("\"x\"", 3, 100, &canon, &len, &err), SH_EINVAL,
	       "a string is not an object");
	is_str(err.msg, "payload must be a JSON object, not a string", "says what it is");
	is_int(store_applied_index(s), 16, "refused entries still advance the applied index");
	store_free(s);
}

/* The same final state reached two ways has the same digest. */
static void test_digest_is_state(void)
{
	struct store *a = make_store(), *b = make_store();
	float v[3][4] = {{1, 2, 3, 4}, {5, 6, 7, 8}, {9, 1, 2, 3}};
	struct coll_point p[3] = {
		{1, v[0], 4, "{\"x\":1}", 7}, {2, v[1], 4, NULL, 0}, {3, v[2], 4, NULL, 0}};
	struct entry e = upsert("c", p, 3);
	uint64_t del = 3;
	struct entry d = {.type = WAL_DELETE, .collection = "c", .ids = &del, .n = 1};
	struct sh_err err;
	char ha[33], hb[33];

	apply(a, &e, NULL, &err); /* 1, 2, 3 */
	p[1].vec = v[2];          /* then 2 replaced */
	e = upsert("c", &p[1], 1);
	apply(a, &e, NULL, &err);
	apply(a, &d, NULL, &err); /* and 3 deleted */

	p[1].vec = v[2];
	e = upsert("c", p, 2); /* b: 1 and the final 2 at once */
	apply(b, &e, NULL, &err);
	digest_hex(store_digest(a), ha);
	digest_hex(store_digest(b), hb);
	is_str(ha, hb, "replace + delete gives the digest of the final state");
	p[0].payload = "{\"x\":2}";
	e = upsert("c", p, 1);
	apply(b, &e, NULL, &err);
	ok(!digest_equal(store_digest(a), store_digest(b)), "a different payload, another digest");
	store_free(a);
	store_free(b);
}

/* Snapshot content through memory. */
static void test_save_load(void)
{
	struct store *a = make_store(), *b;
	struct entry cr = create("other", 8, SH_METRIC_COSINE), e;
	static float v[300][8];
	struct coll_point p[300];
	struct mem m = {0};
	struct sh_err err;
	struct coll *ca, *cb;
	char *pa, *pb;
	size_t la, lb;
	int same = 1;

	apply(a, &cr, NULL, &err);
	for (int i = 0; i < 300; i++) {
		for (int j = 0; j < 8; j++)
			v[i][j] = (float)((i * 7 + j * 3) % 11) - 5.0f + 0.01f * (float)j;
		p[i] = (struct coll_point){(uint64_t)i * 3, v[i], 8,
					   i % 2 ? "{\"odd\":true}" : NULL, i % 2 ? 12u : 0u};
	}
	e = upsert("other", p, 300);
	is_int(apply(a, &e, NULL, &err), 0, "300 points in a cosine collection: %s", err.msg);
	is_int(store_save(a, mem_write, &m, &err), 0, "save");
	is_int(store_load(mem_read, &m, 7, 2, &b, &err), 0, "load: %s", err.msg);
	is_int(m.pos, m.len, "load reads exactly what save wrote");
	ok(digest_equal(store_digest(a), store_digest(b)), "same digest");
	is_int(store_applied_index(b), 7, "applied index set by the caller");
	is_int(store_collections(b), 2, "two collections");
	ca = store_get(a, "other");
	cb = store_get(b, "other");
	for (int i = 0; i < 300; i++) {
		float x[8], y[8];

		coll_get(ca, (uint64_t)i * 3, x, &pa, &la);
		coll_get(cb, (uint64_t)i * 3, y, &pb, &lb);
		same &= memcmp(x, y, sizeof x) == 0 && la == lb &&
			(la == 0 || memcmp(pa, pb, la) == 0);
		sh_free(pa);
		sh_free(pb);
	}
	ok(same, "every vector and payload is the same");
	coll_unref(ca);
	coll_unref(cb);
	store_free(b);

	/* inside the digest of the last collection (before the 12 bytes of an
	 * empty session table) */
	m.buf[m.len - 12 - 3] ^= 1;
	m.pos = 0;
	is_int(store_load(mem_read, &m, 7, 2, &b, &err), SH_ECORRUPT, "a changed digest");
	like(err.msg, "collection 'other': digest mismatch: stored", "is found");
	m.buf[m.len - 12 - 3] ^= 1;
	m.pos = 0;
	m.len -= 20;
	is_int(store_load(mem_read, &m, 7, 2, &b, &err), SH_ECORRUPT, "a cut content");
	like(err.msg, "cannot read", "is found");
	sh_free(m.buf);
	store_free(a);
}

/* A store as a follower would receive it: built elsewhere (two
 * collections, a voter configuration), saved, and loaded at (77, 5). */
static struct store *received_state(struct digest *d)
{
	struct store *src, *out;
	struct entry cx = create("x", 2, SH_METRIC_L2), cy = create("y", 3, SH_METRIC_DOT), e;
	struct entry_voter voters[2] = {{0x11, "10.0.0.1:7471"}, {0x22, "10.0.0.2:7471"}};
	float v[3][3] = {{1, 2, 0}, {3, 4, 0}, {5, 6, 7}};
	struct coll_point p[3] = {
		{1, v[0], 2, NULL, 0}, {2, v[1], 2, "{\"k\":2}", 7}, {9, v[2], 3, NULL, 0}};
	struct mem m = {0};
	struct sh_err err;

	store_new(&src, &err);
	e = (struct entry){.type = WAL_VOTERS, .voters = voters, .n = 2};
	apply(src, &e, NULL, &err);
	apply(src, &cx, NULL, &err);
	apply(src, &cy, NULL, &err);
	e = upsert("x", p, 2);
	apply(src, &e, NULL, &err);
	e = upsert("y", &p[2], 1);
	apply(src, &e, NULL, &err);
	if (store_save(src, mem_write, &m, &err) != 0 ||
	    store_load(mem_read, &m, 77, 5, &out, &err) != 0)
		bail_out("save and load: %s", err.msg);
	*d = store_digest(src);
	store_free(src);
	sh_free(m.buf);
	return out;
}

static void test_adopt(void)
{
	struct store *s = make_store(), *from, *empty;
	float v[2][4] = {{1, 0, 0, 0}, {0, 1, 0, 0}}, got[4];
	struct coll_point p[2] = {{5, v[0], 4, "{\"a\":1}", 7}, {6, v[1], 4, NULL, 0}};
	struct entry e = upsert("c", p, 2);
	struct hnsw_result res[2];
	struct digest want, old;
	struct sh_err err;
	struct coll *held, *c;
	const unsigned char *voters;
	size_t n, vlen;
	char *payload = NULL;

	apply(s, &e, NULL, &err);
	old = store_digest(s);
	held = store_get(s, "c");
	from = received_state(&want);
	store_adopt(s, from);
	ok(store_get(s, "c") == NULL, "adopt: the old collection is gone from the store");
	is_int(store_collections(s), 2, "the received collections are there");
	c = store_get(s, "x");
	ok(c != NULL && coll_count(c) == 2 && coll_get(c, 2, got, &payload, &n) == 0 &&
		   got[1] == 4.0f && n == 7 && memcmp(payload, "{\"k\":2}", 7) == 0,
	   "with their points and payloads");
	sh_free(payload);
	coll_unref(c);
	is_int(store_points(s), 3, "3 points");
	is_int(store_applied_index(s), 77, "applied index of the received state");
	is_int(store_applied_term(s), 5, "and its term");
	ok(digest_equal(store_digest(s), want), "its digest");
	voters = store_voters(s, &vlen);
	ok(vlen > 0 && voters != NULL, "and its voter configuration (%zu bytes)", vlen);
	is_int(coll_count(held), 2, "a reference taken before adopt: still counts");
	ok(coll_get(held, 5, got, &payload, &n) == 0 && got[0] == 1.0f && n == 7,
	   "still gets a point");
	sh_free(payload);
	ok(coll_search(held, v[1], 2, 0, false, res, &n, &err) == 0 && n == 2 && res[0].id == 6,
	   "still searches");
	ok(digest_equal(coll_digest(held), old), "and has the old digest");
	coll_unref(held);
	store_new(&empty, &err);
	store_adopt(s, empty);
	ok(store_collections(s) == 0 && store_applied_index(s) == 0 && store_digest(s).lo == 0 &&
		   store_digest(s).hi == 0,
	   "adopting an empty store empties it");
	store_voters(s, &vlen);
	is_int(vlen, 0, "voters included");
	store_free(s);
}

/* Out of memory while applying (decoding the entry, parsing a payload,
 * storing the points) never passes for a rejection, which every other
 * replica would not make: each failing allocation, swept from the first,
 * makes store_apply fail with SH_ENOMEM and *fatal (the node stops); once
 * none fails, the state is the reference's. */
static void test_apply_oom(void)
{
	static float v[3][4] = {{1, 2, 3, 4}, {5, 6, 7, 8}, {9, 1, 2, 3}};
	struct coll_point p[3] = {{1, v[0], 4, "{\"a\":[1,2,{\"b\":\"x\"}]}", 21},
				  {2, v[1], 4, NULL, 0},
				  {3, v[2], 4, "{\"c\":1.5}", 9}};
	struct entry cr = create("c", 4, SH_METRIC_L2), up = upsert("c", p, 3);
	struct wal_buf *b = wal_buf_new(0);
	struct digest want;
	struct sh_err err;
	struct wal_rec r;
	struct store *s;
	size_t pos = 0;
	long n, fatal_n = 0, wrong = 0;
	bool fatal;
	int rv;

	store_new(&s, &err);
	apply(s, &cr, NULL, &err);
	apply(s, &up, NULL, &err);
	want = store_digest(s);
	store_free(s);
	if (entry_encode(&up, b, 1, 2, &err) != 0)
		bail_out("encode: %s", err.msg);
	wal_buf_next(b, &pos, &r);
	for (n = 0; n < 1000; n++) {
		store_new(&s, &err);
		apply(s, &cr, NULL, &err);
		sh_alloc_fail_after(n);
		rv = store_apply(s, &r, NULL, &fatal, &err);
		sh_alloc_fail_after(-1);
		if (rv == 0) {
			ok(digest_equal(store_digest(s), want),
			   "no allocation failed after %ld: the reference state", n);
			store_free(s);
			break;
		}
		fatal_n += fatal && rv == SH_ENOMEM;
		if (!(fatal && rv == SH_ENOMEM) && wrong++ == 0)
			diag("allocation %ld failed: rv %d, fatal %d: %s", n, rv, fatal, err.msg);
		store_free(s);
	}
	ok(n > 3 && wrong == 0, "each of the %ld allocations failing stops the node (%ld did)", n,
	   fatal_n);
	wal_buf_unref(b);
}

int main(void)
{
	sh_alloc_hook_libs(); /* jansson through sh_malloc, as in shoald */
	test_names();
	test_entry_roundtrip();
	test_basic();
	test_bad_input();
	test_digest_is_state();
	test_save_load();
	test_adopt();
	test_apply_oom();
	return done_testing();
}
