/* Tests of the payload changes (storage/payload, issue 16): set (merge, at
 * a nested key), overwrite and clear keeping the listed keys, delete of
 * nested paths; the SetPayload log entry (type 7) encoded, decoded and
 * applied — every existing point changed, absent ids skipped, vectors
 * untouched, and the state digest equal to a replica's that applied the
 * same entries. */
#include "build.h"

#include "storage/payload.h"
#include "storage/store.h"
#include "tap.h"
#include "util/alloc.h"

#include <string.h>

static void is_change(struct payload_change ch, const char *old, const char *want, const char *what)
{
	char *out = NULL;
	size_t len = 0;
	struct sh_err err;
	int rv = payload_apply(&ch, old, old ? strlen(old) : 0, 1 << 20, &out, &len, &err);

	is_int(rv, 0, "%s: applied", what);
	is_str(out ? out : "(none)", want, "%s", what);
	sh_free(out);
}

static void test_changes(void)
{
	static const char *const keep[] = {"__k"}, *const del[] = {"a", "m.x", "nope.q"};
	const char *old = "{\"__k\":\"u\",\"a\":1,\"m\":{\"x\":1,\"y\":2}}";
	struct payload_change set = {
		PAYLOAD_SET, "{\"a\":5,\"b\":true}", 16, NULL, NULL, 0, keep, 1};
	struct payload_change at = set, ow = set, dk = {PAYLOAD_DELETE_KEYS}, cl = {PAYLOAD_CLEAR};
	struct payload_change big = set;
	char *out = NULL;
	size_t len;
	struct sh_err err;

	is_change(set, old, "{\"__k\":\"u\",\"a\":5,\"b\":true,\"m\":{\"x\":1,\"y\":2}}",
		  "set merges the keys given");
	is_change(set, NULL, "{\"a\":5,\"b\":true}", "set on a point without payload");
	at.key = "m.z";
	is_change(at, old,
		  "{\"__k\":\"u\",\"a\":1,\"m\":{\"x\":1,\"y\":2,\"z\":{\"a\":5,\"b\":true}}}",
		  "set at a nested key makes the objects on the way");
	at.key = "a";
	is_change(at, old, "{\"__k\":\"u\",\"a\":{\"a\":5,\"b\":true},\"m\":{\"x\":1,\"y\":2}}",
		  "set at a key holding a number replaces it by an object");
	ow.op = PAYLOAD_OVERWRITE;
	is_change(ow, old, "{\"__k\":\"u\",\"a\":5,\"b\":true}", "overwrite keeps only __k");
	dk.keys = del;
	dk.n_keys = 3;
	is_change(dk, old, "{\"__k\":\"u\",\"m\":{\"y\":2}}",
		  "delete keys, nested too, absent ones skipped");
	cl.keep = keep;
	cl.n_keep = 1;
	is_change(cl, old, "{\"__k\":\"u\"}", "clear keeps __k");
	cl.n_keep = 0;
	is_change(cl, old, "(none)", "clear without keep: no payload");
	is_int(payload_apply(&big, old, strlen(old), 10, &out, &len, &err), SH_ETOOBIG,
	       "a result over the limit is refused");
	like(err.msg, "over the limit of 10", "  says so");
}

/* Encode e as the next record and apply it; returns store_apply's code. */
static int apply(struct store *s, const struct entry *e, size_t *affected, struct sh_err *err)
{
	struct wal_buf *b = wal_buf_new(0);
	struct wal_rec r;
	struct entry d;
	size_t pos = 0;
	bool fatal;
	int rv;

	if (entry_encode(e, b, 1, store_applied_index(s) + 1, err) != 0)
		bail_out("encode: %s", err->msg);
	wal_buf_next(b, &pos, &r);
	if (e->type == WAL_SET_PAYLOAD && entry_decode(&r, &d, err) == 0) {
		ok(d.change.op == e->change.op && d.n == e->n &&
			   d.change.n_keep == e->change.n_keep &&
			   strcmp(d.change.key, e->change.key ? e->change.key : "") == 0,
		   "entry type 7 decodes as encoded");
		entry_release(&d);
	}
	rv = store_apply(s, &r, affected, &fatal, err);
	if (fatal)
		bail_out("fatal apply: %s", err->msg);
	wal_buf_unref(b);
	return rv;
}

/* A store with collection c and points 1..3 (payload {"n": i}). */
static struct store *filled(void)
{
	static const float v[3][2] = {{1, 0}, {0, 1}, {1, 1}};
	static const char *const pl[3] = {"{\"n\":1}", "{\"n\":2}", "{\"n\":3}"};
	struct entry cr = {.type = WAL_CREATE};
	struct coll_point p[3];
	struct store *s;
	struct sh_err err;
	size_t aff;

	store_new(&s, &err);
	snprintf(cr.params.name, sizeof cr.params.name, "c");
	cr.params.dim = 2;
	cr.params.metric = SH_METRIC_L2;
	cr.params.m = 8;
	cr.params.ef_construction = 50;
	cr.params.seed = 7;
	apply(s, &cr, &aff, &err);
	for (int i = 0; i < 3; i++)
		p[i] = (struct coll_point){(uint64_t)i + 1, v[i], 2, pl[i], strlen(pl[i])};
	apply(s, &(struct entry){.type = WAL_UPSERT, .collection = "c", .points = p, .n = 3}, &aff,
	      &err);
	return s;
}

static void test_entry(void)
{
	static const uint64_t ids[] = {1, 3, 99};
	struct store *a = filled(), *b = filled();
	struct entry e = {.type = WAL_SET_PAYLOAD, .collection = "c", .ids = ids, .n = 3};
	struct coll *c;
	char *text = NULL;
	size_t len, aff = 0;
	float vec[2];
	struct sh_err err;

	e.change = (struct payload_change){PAYLOAD_SET, "{\"s\":1}", 7, "", NULL, 0, NULL, 0};
	is_int(apply(a, &e, &aff, &err), 0, "set payload entry applied");
	is_int((int)aff, 2, "  two points changed, the absent id skipped");
	c = store_get(a, "c");
	coll_get(c, 3, vec, &text, &len);
	is_str(text, "{\"n\":3,\"s\":1}", "  merged");
	ok(vec[0] == 1 && vec[1] == 1, "  the vector untouched");
	sh_free(text);
	coll_get(c, 2, NULL, &text, &len);
	is_str(text, "{\"n\":2}", "  another point untouched");
	sh_free(text);
	coll_unref(c);
	ok(!digest_equal(store_digest(a), store_digest(b)), "the digest moved");
	apply(b, &e, &aff, &err);
	ok(digest_equal(store_digest(a), store_digest(b)), "a replica applying it agrees");
	e.collection = "nope";
	is_int(apply(a, &e, &aff, &err), SH_ENOTFOUND, "an unknown collection refused");
	e.collection = "c";
	e.change.op = (enum payload_op)9;
	is_int(apply(a, &e, &aff, &err), SH_EINVAL, "an unknown change refused (a newer writer)");
	like(err.msg, "unknown payload change 9", "  says which");
	store_free(a);
	store_free(b);
}

int main(void)
{
	test_changes();
	test_entry();
	return done_testing();
}
