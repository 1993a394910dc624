/*
 * filter: see filter.h.
 *
 * The compiled form is one sh_malloc'd tree per request: a filter holds
 * three arrays of conditions; a condition holds its split key path and
 * either typed values (match, any), two bounds (range) or a sub-filter.
 * Numbers compare by value whatever their JSON type (1 equals 1.0); an
 * array in the payload matches when one of its elements does.
 *
 * A key path is split at the dots; a part ending in "[]" steps into every
 * element of the array it names ("a[].b": b of each element of a).  The
 * values at a path are what it reaches, an array at its end standing for
 * its elements (Qdrant's paths, doc/qdrant.md "Filters").
 */
#include "build.h"

#include "net/filter.h"

#include "net/japi.h"

#include "util/alloc.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum cond_kind {
	COND_MATCH,
	COND_RANGE,
	COND_FILTER,
	COND_EXCEPT,
	COND_HAS_ID,
	COND_IS_EMPTY,
	COND_IS_NULL,
	COND_COUNT,
	COND_TEXT,
	COND_NESTED,
};
enum val_type { VAL_STRING, VAL_NUMBER, VAL_BOOL };

struct fval {
	enum val_type type;
	const char *s; /* points into the request message: copied below */
	size_t slen;
	double num;
	bool is_int;
	json_int_t i;
	bool b;
};

struct cond {
	enum cond_kind kind;
	char **path; /* key split at the dots */
	bool *each;  /* path[i] ended in "[]" */
	size_t depth;
	uint64_t *ids; /* COND_HAS_ID, sorted */
	size_t n_ids;
	struct fval *vals; /* COND_MATCH: one or more (any) */
	size_t n_vals;
	bool has_lo, lo_incl, has_hi, hi_incl;
	double lo, hi;
	struct filter *sub; /* COND_FILTER, COND_NESTED */
};

struct filter {
	struct cond *c[4]; /* must, should, must_not, min_should's conditions */
	size_t n[4];
	uint32_t min_count;
};

static const char *const clause_names[4] = {"must", "should", "must_not", "min_should"};

/* ------------------------------------------------------------ free */

static void cond_free(struct cond *c)
{
	for (size_t i = 0; i < c->depth; i++)
		sh_free(c->path[i]);
	sh_free(c->path);
	sh_free(c->each);
	sh_free(c->ids);
	for (size_t i = 0; i < c->n_vals; i++)
		sh_free((char *)(uintptr_t)c->vals[i].s);
	sh_free(c->vals);
	filter_free(c->sub);
}

void filter_free(struct filter *f)
{
	if (f == NULL)
		return;
	for (int k = 0; k < 4; k++) {
		for (size_t i = 0; i < f->n[k]; i++)
			cond_free(&f->c[k][i]);
		sh_free(f->c[k]);
	}
	sh_free(f);
}

/* ------------------------------------------------------------ compile */

struct cctx {
	size_t conds;
	struct sh_err *err;
};

static int split_key(struct cond *c, const char *key, const char *where, struct sh_err *err)
{
	size_t len = strlen(key), n = 1;
	const char *p = key;

	if (len == 0 || len > FILTER_MAX_KEY)
		return sh_err_set(err, SH_EINVAL, "%s.key: must be 1 to %d characters", where,
				  FILTER_MAX_KEY);
	for (size_t i = 0; i < len; i++)
		n += key[i] == '.';
	if ((c->path = sh_calloc(n, sizeof *c->path)) == NULL ||
	    (c->each = sh_calloc(n, sizeof *c->each)) == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);

		if (l >= 2 && p[l - 2] == '[' && p[l - 1] == ']') {
			c->each[i] = true;
			l -= 2;
		}
		if (l == 0 || memchr(p, '[', l) != NULL || memchr(p, ']', l) != NULL)
			return sh_err_set(err, SH_EINVAL,
					  "%s.key: '%s': part %zu is empty or has brackets other "
					  "than a final []",
					  where, key, i + 1);
		if ((c->path[i] = sh_strndup(p, l)) == NULL)
			return sh_err_set(err, SH_ENOMEM, "out of memory");
		c->depth++;
		p += l + (c->each[i] ? 2 : 0) + 1;
	}
	return 0;
}

static int take_value(struct fval *v, const Shoal__Value *in, const char *where, struct sh_err *err)
{
	switch (in != NULL ? in->kind_case : SHOAL__VALUE__KIND__NOT_SET) {
	case SHOAL__VALUE__KIND_STRING_VALUE:
		v->type = VAL_STRING;
		v->slen = strlen(in->string_value);
		if ((v->s = sh_strndup(in->string_value, v->slen)) == NULL)
			return sh_err_set(err, SH_ENOMEM, "out of memory");
		return 0;
	case SHOAL__VALUE__KIND_INT_VALUE:
		v->type = VAL_NUMBER;
		v->is_int = true;
		v->i = in->int_value;
		v->num = (double)in->int_value;
		return 0;
	case SHOAL__VALUE__KIND_DOUBLE_VALUE:
		if (!isfinite(in->double_value))
			return sh_err_set(err, SH_EINVAL, "%s: not a finite number", where);
		v->type = VAL_NUMBER;
		v->num = in->double_value;
		return 0;
	case SHOAL__VALUE__KIND_BOOL_VALUE:
		v->type = VAL_BOOL;
		v->b = in->bool_value;
		return 0;
	default: return sh_err_set(err, SH_EINVAL, "%s: no value", where);
	}
}

static int take_match(struct cond *c, const Shoal__Condition *in, const char *where,
		      struct sh_err *err)
{
	Shoal__Value *const *vals =
		in->kind_case == SHOAL__CONDITION__KIND_MATCH ? &in->match : NULL;
	size_t n = 1;
	char w[256];
	int rv;

	const Shoal__MatchAny *any =
		in->kind_case == SHOAL__CONDITION__KIND_EXCEPT ? in->except : in->any;

	if (in->kind_case != SHOAL__CONDITION__KIND_MATCH && any == NULL)
		return sh_err_set(err, SH_EINVAL, "%s.any: no values", where);
	if (in->kind_case != SHOAL__CONDITION__KIND_MATCH)
		n = any->n_values;
	if (n == 0 || n > FILTER_MAX_VALUES)
		return sh_err_set(err, SH_EINVAL, "%s.any: needs 1 to %d values", where,
				  FILTER_MAX_VALUES);
	if ((c->vals = sh_calloc(n, sizeof *c->vals)) == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	c->kind = in->kind_case == SHOAL__CONDITION__KIND_EXCEPT ? COND_EXCEPT : COND_MATCH;
	for (size_t i = 0; i < n; i++, c->n_vals++) {
		if (in->kind_case == SHOAL__CONDITION__KIND_MATCH)
			japi_path(w, sizeof w, "%s.match", where);
		else
			japi_path(w, sizeof w, "%s.any[%zu]", where, i);
		if ((rv = take_value(&c->vals[i], vals ? vals[i] : any->values[i], w, err)) != 0)
			return rv;
	}
	return 0;
}

static int take_range(struct cond *c, const Shoal__Range *r, const char *where, struct sh_err *err)
{
	if (r == NULL)
		return sh_err_set(err, SH_EINVAL, "%s.range: needs gt, gte, lt or lte", where);
	if (r->gt != NULL && r->gte != NULL)
		return sh_err_set(err, SH_EINVAL, "%s.range: gt and gte together", where);
	if (r->lt != NULL && r->lte != NULL)
		return sh_err_set(err, SH_EINVAL, "%s.range: lt and lte together", where);
	if (r->gt == NULL && r->gte == NULL && r->lt == NULL && r->lte == NULL)
		return sh_err_set(err, SH_EINVAL, "%s.range: needs gt, gte, lt or lte", where);
	c->has_lo = r->gt != NULL || r->gte != NULL;
	c->lo_incl = r->gte != NULL;
	c->lo = r->gt ? r->gt->value : r->gte ? r->gte->value : 0;
	c->has_hi = r->lt != NULL || r->lte != NULL;
	c->hi_incl = r->lte != NULL;
	c->hi = r->lt ? r->lt->value : r->lte ? r->lte->value : 0;
	if (isnan(c->lo) || isnan(c->hi))
		return sh_err_set(err, SH_EINVAL, "%s.range: a bound is NaN", where);
	return 0;
}

static int compile(const Shoal__Filter *f, struct filter **out, const char *where, int depth,
		   struct cctx *cx);

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int take_ids(struct cond *c, const Shoal__IdList *l, const char *where, struct sh_err *err)
{
	size_t n = l ? l->n_ids : 0;

	c->kind = COND_HAS_ID;
	if (n > FILTER_MAX_IDS)
		return sh_err_set(err, SH_EINVAL, "%s.has_id: more than %d ids", where,
				  FILTER_MAX_IDS);
	if ((c->ids = sh_calloc(n ? n : 1, sizeof *c->ids)) == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	if (n > 0)
		memcpy(c->ids, l->ids, n * sizeof *c->ids);
	qsort(c->ids, n, sizeof *c->ids, cmp_u64);
	c->n_ids = n;
	return 0;
}

/* The kinds with a key and no values of their own. */
static int take_keyed(struct cond *c, const Shoal__Condition *in, const char *where, int depth,
		      struct cctx *cx)
{
	char w[256];

	switch (in->kind_case) {
	case SHOAL__CONDITION__KIND_IS_EMPTY: c->kind = COND_IS_EMPTY; return 0;
	case SHOAL__CONDITION__KIND_IS_NULL: c->kind = COND_IS_NULL; return 0;
	case SHOAL__CONDITION__KIND_VALUES_COUNT:
		c->kind = COND_COUNT;
		return take_range(c, in->values_count, where, cx->err);
	case SHOAL__CONDITION__KIND_TEXT:
		c->kind = COND_TEXT;
		if ((c->vals = sh_calloc(1, sizeof *c->vals)) == NULL ||
		    (c->vals[0].s = sh_strdup(in->text ? in->text : "")) == NULL)
			return sh_err_set(cx->err, SH_ENOMEM, "out of memory");
		c->n_vals = 1;
		c->vals[0].slen = strlen(c->vals[0].s);
		return 0;
	case SHOAL__CONDITION__KIND_NESTED:
		c->kind = COND_NESTED;
		japi_path(w, sizeof w, "%s.nested.filter", where);
		return compile(in->nested, &c->sub, w, depth + 1, cx);
	default: return 1;
	}
}

static int compile_cond(struct cond *c, const Shoal__Condition *in, const char *where, int depth,
			struct cctx *cx)
{
	int rv;

	if (in == NULL)
		return sh_err_set(cx->err, SH_EINVAL, "%s: empty condition", where);
	if (++cx->conds > FILTER_MAX_CONDITIONS)
		return sh_err_set(cx->err, SH_EINVAL, "%s: more than %d conditions", where,
				  FILTER_MAX_CONDITIONS);
	if (in->kind_case == SHOAL__CONDITION__KIND_FILTER) {
		char w[256];

		c->kind = COND_FILTER;
		japi_path(w, sizeof w, "%s.filter", where);
		return compile(in->filter, &c->sub, w, depth + 1, cx);
	}
	if (in->kind_case == SHOAL__CONDITION__KIND__NOT_SET)
		return sh_err_set(cx->err, SH_EINVAL, "%s: needs match, any, range or filter",
				  where);
	if (in->kind_case == SHOAL__CONDITION__KIND_HAS_ID)
		return take_ids(c, in->has_id, where, cx->err);
	if ((rv = split_key(c, in->key, where, cx->err)) != 0)
		return rv;
	if (in->kind_case == SHOAL__CONDITION__KIND_RANGE) {
		c->kind = COND_RANGE;
		return take_range(c, in->range, where, cx->err);
	}
	if ((rv = take_keyed(c, in, where, depth, cx)) <= 0)
		return rv;
	return take_match(c, in, where, cx->err);
}

static int compile(const Shoal__Filter *f, struct filter **out, const char *where, int depth,
		   struct cctx *cx)
{
	struct filter *r;
	Shoal__Condition **in[4];
	size_t n[4];
	char w[256];
	int rv = 0;

	if (f == NULL)
		return sh_err_set(cx->err, SH_EINVAL, "%s: empty filter", where);
	in[0] = f->must, in[1] = f->should, in[2] = f->must_not;
	n[0] = f->n_must, n[1] = f->n_should, n[2] = f->n_must_not;
	in[3] = f->min_should ? f->min_should->conditions : NULL;
	n[3] = f->min_should ? f->min_should->n_conditions : 0;
	if (depth > FILTER_MAX_DEPTH)
		return sh_err_set(cx->err, SH_EINVAL, "%s: nested deeper than %d", where,
				  FILTER_MAX_DEPTH);
	if ((r = sh_calloc(1, sizeof *r)) == NULL)
		return sh_err_set(cx->err, SH_ENOMEM, "out of memory");
	r->min_count = f->min_should ? f->min_should->min_count : 0;
	for (int k = 0; k < 4 && rv == 0; k++) {
		if (n[k] > FILTER_MAX_CONDITIONS) {
			rv = sh_err_set(cx->err, SH_EINVAL, "%s.%s: more than %d conditions", where,
					clause_names[k], FILTER_MAX_CONDITIONS);
			break;
		}
		if (n[k] > 0 && (r->c[k] = sh_calloc(n[k], sizeof *r->c[k])) == NULL) {
			rv = sh_err_set(cx->err, SH_ENOMEM, "out of memory");
			break;
		}
		for (size_t i = 0; i < n[k] && rv == 0; i++, r->n[k]++) {
			japi_path(w, sizeof w, "%s.%s[%zu]", where, clause_names[k], i);
			rv = compile_cond(&r->c[k][i], in[k][i], w, depth, cx);
		}
	}
	if (rv != 0) {
		filter_free(r);
		return rv;
	}
	*out = r;
	return 0;
}

int filter_compile(const Shoal__Filter *f, struct filter **out, struct sh_err *err)
{
	struct cctx cx = {0, err};

	*out = NULL;
	if (f == NULL)
		return 0;
	return compile(f, out, "filter", 0, &cx);
}

/* ------------------------------------------------------------ evaluate */

static bool value_eq(const struct fval *v, const json_t *j)
{
	switch (v->type) {
	case VAL_STRING:
		return json_is_string(j) && json_string_length(j) == v->slen &&
		       memcmp(json_string_value(j), v->s, v->slen) == 0;
	case VAL_BOOL: return json_is_boolean(j) && json_is_true(j) == v->b;
	case VAL_NUMBER:
		if (json_is_integer(j) && v->is_int)
			return json_integer_value(j) == v->i;
		return json_is_number(j) && json_number_value(j) == v->num;
	}
	return false;
}

static bool in_bounds(const struct cond *c, double x)
{
	if (c->has_lo && (c->lo_incl ? x < c->lo : x <= c->lo))
		return false;
	if (c->has_hi && (c->hi_incl ? x > c->hi : x >= c->hi))
		return false;
	return true;
}

/* One value at the end of a path (array elements one by one). */
static bool leaf_match(const struct cond *c, const json_t *j)
{
	const char *s;

	switch (c->kind) {
	case COND_RANGE: return json_is_number(j) && in_bounds(c, json_number_value(j));
	case COND_TEXT:
		s = json_string_value(j);
		return s != NULL && (c->vals[0].slen == 0 || strstr(s, c->vals[0].s) != NULL);
	case COND_EXCEPT:
		for (size_t i = 0; i < c->n_vals; i++)
			if (value_eq(&c->vals[i], j))
				return false;
		return true;
	default:
		for (size_t i = 0; i < c->n_vals; i++)
			if (value_eq(&c->vals[i], j))
				return true;
		return false;
	}
}

/* What a walk of a path found. */
struct reach {
	const struct cond *c;
	bool matched;   /* a leaf matched */
	size_t values;  /* values reached (array elements counted one by one) */
	bool null_seen; /* a null reached */
	uint64_t id;
};

static bool filter_eval(const struct filter *f, uint64_t id, const json_t *payload);

static void reached(struct reach *r, const json_t *j)
{
	const struct cond *c = r->c;
	size_t i;
	json_t *e;

	if (json_is_null(j)) {
		r->null_seen = true;
		return;
	}
	if (c->kind == COND_NESTED) {
		if (json_is_array(j)) {
			json_array_foreach(j, i, e)
			{
				if (!r->matched && json_is_object(e))
					r->matched = filter_eval(c->sub, r->id, e);
			}
		}
		return;
	}
	if (!json_is_array(j)) {
		r->values++;
		r->matched = r->matched || leaf_match(c, j);
		return;
	}
	json_array_foreach(j, i, e)
	{
		r->values += !json_is_null(e);
		r->null_seen = r->null_seen || json_is_null(e);
		if (!r->matched && !json_is_null(e))
			r->matched = leaf_match(c, e);
	}
}

/* Walk path part d from j, calling reached() at its end. */
static void walk(struct reach *r, const json_t *j, size_t d)
{
	const struct cond *c = r->c;
	size_t i;
	json_t *e;

	if (d == c->depth) {
		reached(r, j);
		return;
	}
	j = json_is_object(j) ? json_object_get(j, c->path[d]) : NULL;
	if (j == NULL)
		return;
	if (!c->each[d] || !json_is_array(j) || d + 1 == c->depth) {
		walk(r, j, d + 1);
		return;
	}
	json_array_foreach(j, i, e)
	{
		walk(r, e, d + 1);
	}
}

static bool has_id(const struct cond *c, uint64_t id)
{
	size_t lo = 0, hi = c->n_ids;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (c->ids[mid] == id)
			return true;
		if (c->ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static bool cond_match(const struct cond *c, uint64_t id, const json_t *payload)
{
	struct reach r = {c, false, 0, false, id};

	if (c->kind == COND_FILTER)
		return filter_eval(c->sub, id, payload);
	if (c->kind == COND_HAS_ID)
		return has_id(c, id);
	walk(&r, payload, 0);
	switch (c->kind) {
	case COND_IS_EMPTY: return r.values == 0;
	case COND_IS_NULL: return r.null_seen;
	case COND_COUNT: return in_bounds(c, (double)r.values);
	default: return r.matched;
	}
}

static bool filter_eval(const struct filter *f, uint64_t id, const json_t *payload)
{
	bool any = false;
	uint32_t got = 0;

	if (f == NULL)
		return true;
	for (size_t i = 0; i < f->n[0]; i++)
		if (!cond_match(&f->c[0][i], id, payload))
			return false;
	for (size_t i = 0; i < f->n[2]; i++)
		if (cond_match(&f->c[2][i], id, payload))
			return false;
	for (size_t i = 0; i < f->n[3] && got < f->min_count; i++)
		got += cond_match(&f->c[3][i], id, payload);
	if (got < f->min_count)
		return false;
	for (size_t i = 0; i < f->n[1] && !any; i++)
		any = cond_match(&f->c[1][i], id, payload);
	return f->n[1] == 0 || any;
}

bool filter_match_point(const struct filter *f, uint64_t id, const json_t *payload)
{
	return filter_eval(f, id, payload);
}

bool filter_match(const struct filter *f, const json_t *payload)
{
	return filter_eval(f, FILTER_NO_ID, payload);
}

bool filter_match_point_text(const struct filter *f, uint64_t id, const char *text, size_t len)
{
	json_t *j;
	bool m;

	if (f == NULL)
		return true;
	if (text == NULL || len == 0)
		return filter_eval(f, id, NULL);
	j = json_loadb(text, len, JSON_DECODE_ANY, NULL);
	m = filter_eval(f, id, j);
	json_decref(j);
	return m;
}

bool filter_match_text(const struct filter *f, const char *text, size_t len)
{
	return filter_match_point_text(f, FILTER_NO_ID, text, len);
}
