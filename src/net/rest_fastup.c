/*
 * rest_fastup: the body of PUT /collections/{name}/points in the shape
 * Qdrant's clients send,
 *
 *   {"points": [{"id": 1, "vector": [0.1, ...], "payload": {...}}, ...]}
 *
 * read into the UpsertRequest without a jansson tree.  A tree costs an
 * allocation, a locale lookup and a strtod per coordinate: 500 points of
 * 64 dimensions were ~9 ms of the loop thread's time, most of an upsert's
 * work on the node (doc/benchmarks.md).  Here each coordinate is read by
 * jnum (the double jansson would read, net/jnum.h); an integer id is read
 * here; other ids and the payloads, small, are parsed by jansson from
 * their own text and go through the same functions as in rest_qbuild.c.
 *
 * This reader only accepts: any other key or shape, a duplicate key, an
 * escape in a key, text that is not JSON, or a value rest_qbuild.c would
 * refuse, and it declines (REST_FAST_DECLINED), and rest_call.c parses the
 * body with jansson and builds the request as before, with the errors that
 * name what is wrong.  So both readers accept the same bodies and build the
 * same requests: t/rest_fastup.c and the fuzz target fuzz_rest_json compare
 * them byte for byte.
 */
#include "build.h"

#include "net/japi.h"
#include "net/jnum.h"
#include "net/rest_impl.h"
#include "util/alloc.h"

#include <string.h>

#define DECLINE   REST_FAST_DECLINED
#define MAX_DEPTH 64 /* of an id or payload: deeper ones are jansson's to judge */
#define MAX_INT   18 /* digits of an integer read here (jansson's hold 19) */

struct scan {
	const char *p, *end;
	struct op *op;
	float *vec; /* the vector being read */
	size_t vcap;
	Shoal__Point **pts; /* the points read */
	size_t n, cap;
	struct sh_err *err;
};

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void skip_ws(struct scan *s)
{
	while (s->p < s->end && is_ws(*s->p))
		s->p++;
}

static bool eat(struct scan *s, char c)
{
	skip_ws(s);
	if (s->p < s->end && *s->p == c) {
		s->p++;
		return true;
	}
	return false;
}

/* A key that is one of names, and its ':': its index, or -1. */
static int key(struct scan *s, const char *const *names)
{
	const char *q;

	if (!eat(s, '"') || (q = memchr(s->p, '"', (size_t)(s->end - s->p))) == NULL)
		return -1;
	for (int i = 0; names[i] != NULL; i++)
		if ((size_t)(q - s->p) == strlen(names[i]) &&
		    memcmp(s->p, names[i], (size_t)(q - s->p)) == 0) {
			s->p = q + 1;
			return eat(s, ':') ? i : -1;
		}
	return -1;
}

/* Where the value at p ends, found by its brackets and quotes (jansson
 * checks it); NULL when it does not end or nests deeper than MAX_DEPTH. */
static const char *value_end(const char *p, const char *end)
{
	int depth = 0;
	bool str = false;

	for (; p < end; p++) {
		if (str) {
			if (*p == '\\') { /* an escape: its next byte is not the end */
				if (++p == end)
					return NULL;
			} else if (*p == '"') {
				str = false;
				if (depth == 0)
					return p + 1;
			}
		} else if (*p == '"') {
			str = true;
		} else if (*p == '{' || *p == '[') {
			if (++depth > MAX_DEPTH)
				return NULL;
		} else if (*p == '}' || *p == ']') {
			if (depth == 0)
				return p; /* a scalar ends here */
			if (--depth == 0)
				return p + 1;
		} else if (depth == 0 && (*p == ',' || is_ws(*p))) {
			return p;
		}
	}
	return depth == 0 && !str ? p : NULL;
}

/* The value at s->p parsed by jansson (as inside the whole body), s->p
 * past it; NULL when it is not JSON. */
static json_t *load(struct scan *s)
{
	const char *p, *q;

	skip_ws(s);
	p = s->p;
	if ((q = value_end(p, s->end)) == NULL)
		return NULL;
	s->p = q;
	return json_loadb(p, (size_t)(q - p), JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
}

/* An integer id (no sign, no leading zero, at most MAX_INT digits); false
 * leaves s->p where it was. */
static bool int_id(struct scan *s, uint64_t *id)
{
	const char *p;
	uint64_t v = 0;

	skip_ws(s);
	for (p = s->p; p < s->end && *p >= '0' && *p <= '9'; p++)
		v = v * 10 + (uint64_t)(*p - '0');
	if (p == s->p || p - s->p > MAX_INT || (*s->p == '0' && p - s->p > 1) ||
	    (p < s->end && !is_ws(*p) && *p != ',' && *p != '}'))
		return false;
	s->p = p;
	*id = v;
	return true;
}

static int id_of(struct scan *s, Shoal__Point *pt, char *uuid)
{
	struct sh_err err;
	json_t *j;
	int rv;

	uuid[0] = '\0';
	if (int_id(s, &pt->id))
		return 0;
	if ((j = load(s)) == NULL)
		return DECLINE;
	rv = japi_point_id(j, "id", &pt->id, uuid, &err);
	json_decref(j);
	return rv == 0 ? 0 : DECLINE;
}

static int grow(void **a, size_t *cap, size_t size, struct sh_err *err)
{
	size_t c = *cap ? *cap * 2 : 64;
	void *p = sh_reallocarray(*a, c, size);

	if (p == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	*a = p;
	*cap = c;
	return 0;
}

/* One coordinate, as japi_vector converts jansson's number. */
static int coordinate(struct scan *s, float *out)
{
	struct jnum n;

	skip_ws(s);
	if (jnum_read(s->p, s->end, &n) != JNUM_OK ||
	    (n.integer && n.len - (*s->p == '-') > MAX_INT))
		return DECLINE;
	s->p += n.len;
	*out = (float)(n.integer && n.value == 0 ? 0.0 : n.value); /* jansson: "-0" is 0 */
	return 0;
}

static int vector_of(struct scan *s, Shoal__Point *pt)
{
	size_t n = 0;
	int rv;

	if (!eat(s, '['))
		return DECLINE;
	if (!eat(s, ']'))
		for (;;) {
			if (n == s->vcap &&
			    (rv = grow((void **)&s->vec, &s->vcap, sizeof *s->vec, s->err)) != 0)
				return rv;
			if ((rv = coordinate(s, &s->vec[n++])) != 0)
				return rv;
			if (eat(s, ']'))
				break;
			if (!eat(s, ','))
				return DECLINE;
		}
	if ((pt->vector = arena_calloc(&s->op->arena, n ? n : 1, sizeof *pt->vector)) == NULL)
		return sh_err_set(s->err, SH_ENOMEM, "out of memory");
	if (n > 0)
		memcpy(pt->vector, s->vec, n * sizeof *pt->vector);
	pt->n_vector = n;
	return 0;
}

/* One point object: each of its keys once, id and vector present. */
static int point(struct scan *s)
{
	static const char *const keys[] = {"id", "vector", "payload", NULL};
	char uuid[JAPI_UUID_LEN + 1] = "";
	Shoal__Point *pt = api_new_msg(s->op, &shoal__point__descriptor);
	json_t *pl = NULL;
	unsigned seen = 0;
	int rv = 0, k;

	if (pt == NULL)
		return sh_err_set(s->err, SH_ENOMEM, "out of memory");
	if (!eat(s, '{'))
		return DECLINE;
	do {
		if ((k = key(s, keys)) < 0 || (seen & (1u << k)))
			rv = DECLINE;
		else if (k == 0)
			rv = id_of(s, pt, uuid);
		else
			rv = k == 1 ? vector_of(s, pt) : (pl = load(s)) ? 0 : DECLINE;
		seen |= k >= 0 ? 1u << k : 0;
	} while (rv == 0 && eat(s, ','));
	if (rv == 0 && (!eat(s, '}') || (seen & 3) != 3))
		rv = DECLINE;
	if (rv == 0) /* what it refuses, the other reader names */
		rv = rest_payload_text(s->op, pl, uuid, "points[]", &pt->payload, s->err);
	if (rv == SH_EINVAL)
		rv = DECLINE;
	json_decref(pl);
	if (rv == 0 && s->n == s->cap)
		rv = grow((void **)&s->pts, &s->cap, sizeof *s->pts, s->err);
	if (rv == 0)
		s->pts[s->n++] = pt;
	return rv;
}

/* {"points": [point, ...]} and nothing else. */
static int points(struct scan *s, Shoal__UpsertRequest *r)
{
	static const char *const top[] = {"points", NULL};
	int rv;

	if (!eat(s, '{') || key(s, top) != 0 || !eat(s, '['))
		return DECLINE;
	do {
		if ((rv = point(s)) != 0)
			return rv;
	} while (eat(s, ','));
	if (!eat(s, ']') || !eat(s, '}'))
		return DECLINE;
	skip_ws(s);
	if (s->p != s->end)
		return DECLINE;
	if ((r->points = arena_calloc(&s->op->arena, s->n, sizeof *r->points)) == NULL)
		return sh_err_set(s->err, SH_ENOMEM, "out of memory");
	memcpy(r->points, s->pts, s->n * sizeof *r->points);
	r->n_points = s->n;
	return 0;
}

int rest_fast_upsert(struct op *op, const struct rest_call *c, const char *text, size_t len,
		     struct sh_err *err)
{
	struct scan s = {.p = text, .end = text + len, .op = op, .err = err};
	Shoal__UpsertRequest *r = api_new_msg(op, &shoal__upsert_request__descriptor);
	int rv;

	if (r == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	rv = points(&s, r);
	sh_free(s.vec);
	sh_free(s.pts);
	if (rv != 0)
		return rv;
	op->req = &r->base;
	if ((rv = rest_write_opts(op, c, &r->write, err)) != 0)
		return rv;
	return (r->collection = arena_strndup(&op->arena, c->name, strlen(c->name)))
		       ? 0
		       : sh_err_set(err, SH_ENOMEM, "out of memory");
}
