/*
 * filter: see filter.h.
 *
 * The compiled form is one sh_malloc'd tree per request: a filter holds
 * three arrays of conditions; a condition holds its split key path and
 * either typed values (match, any), two bounds (range) or a sub-filter.
 * Numbers compare by value whatever their JSON type (1 equals 1.0); an
 * array in the payload matches when one of its elements does.
 */
#include "build.h"

#include "net/filter.h"

#include "net/japi.h"

#include "util/alloc.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum cond_kind { COND_MATCH, COND_RANGE, COND_FILTER };
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
	size_t depth;
	struct fval *vals; /* COND_MATCH: one or more (any) */
	size_t n_vals;
	bool has_lo, lo_incl, has_hi, hi_incl;
	double lo, hi;
	struct filter *sub;
};

struct filter {
	struct cond *c[3]; /* must, should, must_not */
	size_t n[3];
};

static const char *const clause_names[3] = {"must", "should", "must_not"};

/* ------------------------------------------------------------ free */

static void cond_free(struct cond *c)
{
	for (size_t i = 0; i < c->depth; i++)
		sh_free(c->path[i]);
	sh_free(c->path);
	for (size_t i = 0; i < c->n_vals; i++)
		sh_free((char *)(uintptr_t)c->vals[i].s);
	sh_free(c->vals);
	filter_free(c->sub);
}

void filter_free(struct filter *f)
{
	if (f == NULL)
		return;
	for (int k = 0; k < 3; k++) {
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
	if ((c->path = sh_calloc(n, sizeof *c->path)) == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);

		if (l == 0)
			return sh_err_set(err, SH_EINVAL, "%s.key: '%s' has an empty part", where,
					  key);
		if ((c->path[i] = sh_strndup(p, l)) == NULL)
			return sh_err_set(err, SH_ENOMEM, "out of memory");
		c->depth++;
		p += l + 1;
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

	if (in->kind_case == SHOAL__CONDITION__KIND_ANY && in->any == NULL)
		return sh_err_set(err, SH_EINVAL, "%s.any: no values", where);
	if (in->kind_case == SHOAL__CONDITION__KIND_ANY)
		n = in->any->n_values;
	if (n == 0 || n > FILTER_MAX_VALUES)
		return sh_err_set(err, SH_EINVAL, "%s.any: needs 1 to %d values", where,
				  FILTER_MAX_VALUES);
	if ((c->vals = sh_calloc(n, sizeof *c->vals)) == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	c->kind = COND_MATCH;
	for (size_t i = 0; i < n; i++, c->n_vals++) {
		if (in->kind_case == SHOAL__CONDITION__KIND_MATCH)
			japi_path(w, sizeof w, "%s.match", where);
		else
			japi_path(w, sizeof w, "%s.any[%zu]", where, i);
		if ((rv = take_value(&c->vals[i], vals ? vals[i] : in->any->values[i], w, err)) !=
		    0)
			return rv;
	}
	return 0;
}

static int take_range(struct cond *c, const Shoal__Range *r, const char *where, struct sh_err *err)
{
	c->kind = COND_RANGE;
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
	if ((rv = split_key(c, in->key, where, cx->err)) != 0)
		return rv;
	if (in->kind_case == SHOAL__CONDITION__KIND_RANGE && in->range == NULL)
		return sh_err_set(cx->err, SH_EINVAL, "%s.range: needs gt, gte, lt or lte", where);
	if (in->kind_case == SHOAL__CONDITION__KIND_RANGE)
		return take_range(c, in->range, where, cx->err);
	return take_match(c, in, where, cx->err);
}

static int compile(const Shoal__Filter *f, struct filter **out, const char *where, int depth,
		   struct cctx *cx)
{
	struct filter *r;
	Shoal__Condition **in[3] = {f->must, f->should, f->must_not};
	size_t n[3] = {f->n_must, f->n_should, f->n_must_not};
	char w[256];
	int rv = 0;

	if (f == NULL)
		return sh_err_set(cx->err, SH_EINVAL, "%s: empty filter", where);
	if (depth > FILTER_MAX_DEPTH)
		return sh_err_set(cx->err, SH_EINVAL, "%s: nested deeper than %d", where,
				  FILTER_MAX_DEPTH);
	if ((r = sh_calloc(1, sizeof *r)) == NULL)
		return sh_err_set(cx->err, SH_ENOMEM, "out of memory");
	for (int k = 0; k < 3 && rv == 0; k++) {
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

static bool in_range(const struct cond *c, const json_t *j)
{
	double x;

	if (!json_is_number(j))
		return false;
	x = json_number_value(j);
	if (c->has_lo && (c->lo_incl ? x < c->lo : x <= c->lo))
		return false;
	if (c->has_hi && (c->hi_incl ? x > c->hi : x >= c->hi))
		return false;
	return true;
}

static bool leaf_match(const struct cond *c, const json_t *j)
{
	if (c->kind == COND_RANGE)
		return in_range(c, j);
	for (size_t i = 0; i < c->n_vals; i++)
		if (value_eq(&c->vals[i], j))
			return true;
	return false;
}

static bool cond_match(const struct cond *c, const json_t *payload)
{
	const json_t *j = payload;
	size_t i;
	json_t *e;

	if (c->kind == COND_FILTER)
		return filter_match(c->sub, payload);
	for (size_t d = 0; d < c->depth && j != NULL; d++)
		j = json_is_object(j) ? json_object_get(j, c->path[d]) : NULL;
	if (j == NULL)
		return false;
	if (!json_is_array(j))
		return leaf_match(c, j);
	json_array_foreach(j, i, e)
	{
		if (leaf_match(c, e))
			return true;
	}
	return false;
}

bool filter_match(const struct filter *f, const json_t *payload)
{
	bool any = false;

	if (f == NULL)
		return true;
	for (size_t i = 0; i < f->n[0]; i++)
		if (!cond_match(&f->c[0][i], payload))
			return false;
	for (size_t i = 0; i < f->n[2]; i++)
		if (cond_match(&f->c[2][i], payload))
			return false;
	for (size_t i = 0; i < f->n[1] && !any; i++)
		any = cond_match(&f->c[1][i], payload);
	return f->n[1] == 0 || any;
}

bool filter_match_text(const struct filter *f, const char *text, size_t len)
{
	json_t *j;
	bool m;

	if (f == NULL)
		return true;
	if (text == NULL || len == 0)
		return filter_match(f, NULL);
	j = json_loadb(text, len, JSON_DECODE_ANY, NULL);
	m = filter_match(f, j);
	json_decref(j);
	return m;
}
