/*
 * japi: see japi.h.  Filters are read strictly: an unknown field is an
 * error, so that a typo ("must " or "rang") is not silently a filter that
 * matches everything.
 */
#include "build.h"

#include "net/japi.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void japi_path(char *w, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w, n, fmt, ap);
	va_end(ap);
}

#define DEPTH_MAX 8

static int nomem(struct sh_err *err)
{
	return sh_err_set(err, SH_ENOMEM, "out of memory");
}

static const char *kind(const json_t *j)
{
	if (j == NULL)
		return "missing";
	switch (json_typeof(j)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER:
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

int japi_only_keys(const json_t *o, const char *const *names, const char *where, struct sh_err *err)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)(uintptr_t)o, k, v)
	{
		bool known = false;

		for (size_t i = 0; names[i] != NULL && !known; i++)
			known = strcmp(k, names[i]) == 0;
		if (!known)
			return sh_err_set(err, SH_EINVAL, "%s: unknown field '%s'", where, k);
	}
	return 0;
}

static int value(const json_t *j, struct arena *a, const char *where, Shoal__Value **out,
		 struct sh_err *err)
{
	Shoal__Value *v = arena_alloc(a, sizeof *v);

	if (v == NULL)
		return nomem(err);
	shoal__value__init(v);
	if (json_is_string(j)) {
		v->kind_case = SHOAL__VALUE__KIND_STRING_VALUE;
		v->string_value = arena_strndup(a, json_string_value(j), json_string_length(j));
		if (v->string_value == NULL)
			return nomem(err);
	} else if (json_is_integer(j)) {
		v->kind_case = SHOAL__VALUE__KIND_INT_VALUE;
		v->int_value = json_integer_value(j);
	} else if (json_is_real(j)) {
		v->kind_case = SHOAL__VALUE__KIND_DOUBLE_VALUE;
		v->double_value = json_real_value(j);
	} else if (json_is_boolean(j)) {
		v->kind_case = SHOAL__VALUE__KIND_BOOL_VALUE;
		v->bool_value = json_is_true(j);
	} else {
		return sh_err_set(err, SH_EINVAL,
				  "%s: must be a string, a number or a boolean, not %s", where,
				  kind(j));
	}
	*out = v;
	return 0;
}

static int match(const json_t *j, struct arena *a, const char *where, Shoal__Condition *c,
		 struct sh_err *err)
{
	static const char *const keys[] = {"value", "any", NULL};
	const json_t *v = json_object_get(j, "value"), *any = json_object_get(j, "any");
	char w[256];
	int rv;

	if (!json_is_object(j))
		return sh_err_set(err, SH_EINVAL, "%s.match: must be an object", where);
	if ((rv = japi_only_keys(j, keys, where, err)) != 0)
		return rv;
	if ((v == NULL) == (any == NULL))
		return sh_err_set(err, SH_EINVAL, "%s.match: needs exactly one of value and any",
				  where);
	if (v != NULL) {
		japi_path(w, sizeof w, "%s.match.value", where);
		c->kind_case = SHOAL__CONDITION__KIND_MATCH;
		return value(v, a, w, &c->match, err);
	}
	if (!json_is_array(any) || json_array_size(any) == 0)
		return sh_err_set(err, SH_EINVAL, "%s.match.any: must be a non-empty array", where);
	c->kind_case = SHOAL__CONDITION__KIND_ANY;
	if ((c->any = arena_alloc(a, sizeof *c->any)) == NULL)
		return nomem(err);
	shoal__match_any__init(c->any);
	c->any->values = arena_calloc(a, json_array_size(any), sizeof *c->any->values);
	if (c->any->values == NULL)
		return nomem(err);
	for (size_t i = 0; i < json_array_size(any); i++, c->any->n_values++) {
		japi_path(w, sizeof w, "%s.match.any[%zu]", where, i);
		if ((rv = value(json_array_get(any, i), a, w, &c->any->values[i], err)) != 0)
			return rv;
	}
	return 0;
}

static int range(const json_t *j, struct arena *a, const char *where, Shoal__Condition *c,
		 struct sh_err *err)
{
	static const char *const keys[] = {"gt", "gte", "lt", "lte", NULL};
	Shoal__Range *r;
	Shoal__Bound **slots[4];
	int rv;

	if (!json_is_object(j))
		return sh_err_set(err, SH_EINVAL, "%s.range: must be an object", where);
	if ((rv = japi_only_keys(j, keys, where, err)) != 0)
		return rv;
	if ((r = arena_alloc(a, sizeof *r)) == NULL)
		return nomem(err);
	shoal__range__init(r);
	slots[0] = &r->gt, slots[1] = &r->gte, slots[2] = &r->lt, slots[3] = &r->lte;
	for (int i = 0; i < 4; i++) {
		const json_t *b = json_object_get(j, keys[i]);

		if (b == NULL)
			continue;
		if (!json_is_number(b))
			return sh_err_set(err, SH_EINVAL, "%s.range.%s: not a number", where,
					  keys[i]);
		if ((*slots[i] = arena_alloc(a, sizeof **slots[i])) == NULL)
			return nomem(err);
		shoal__bound__init(*slots[i]);
		(*slots[i])->value = json_number_value(b);
	}
	c->kind_case = SHOAL__CONDITION__KIND_RANGE;
	c->range = r;
	return 0;
}

static int filter_at(const json_t *j, struct arena *a, const char *where, int depth,
		     Shoal__Filter **out, struct sh_err *err);

static int condition(const json_t *j, struct arena *a, const char *where, int depth,
		     Shoal__Condition **out, struct sh_err *err)
{
	static const char *const keys[] = {"key", "match", "range", "filter", NULL};
	const json_t *key = json_object_get(j, "key"), *m, *r, *f;
	Shoal__Condition *c;
	char w[256];
	int rv, kinds;

	if (!json_is_object(j))
		return sh_err_set(err, SH_EINVAL, "%s: must be an object, not %s", where, kind(j));
	if ((rv = japi_only_keys(j, keys, where, err)) != 0)
		return rv;
	m = json_object_get(j, "match");
	r = json_object_get(j, "range");
	f = json_object_get(j, "filter");
	kinds = (m != NULL) + (r != NULL) + (f != NULL);
	if (kinds != 1)
		return sh_err_set(err, SH_EINVAL,
				  "%s: needs exactly one of match, range and filter", where);
	if ((c = arena_alloc(a, sizeof *c)) == NULL)
		return nomem(err);
	shoal__condition__init(c);
	*out = c;
	if (f != NULL) {
		japi_path(w, sizeof w, "%s.filter", where);
		c->kind_case = SHOAL__CONDITION__KIND_FILTER;
		return filter_at(f, a, w, depth + 1, &c->filter, err);
	}
	if (!json_is_string(key))
		return sh_err_set(err, SH_EINVAL, "%s.key: must be a string", where);
	if ((c->key = arena_strndup(a, json_string_value(key), json_string_length(key))) == NULL)
		return nomem(err);
	return m != NULL ? match(m, a, where, c, err) : range(r, a, where, c, err);
}

static int clause(const json_t *j, struct arena *a, const char *where, int depth,
		  Shoal__Condition ***out, size_t *n, struct sh_err *err)
{
	char w[256];
	int rv;

	if (j == NULL)
		return 0;
	if (!json_is_array(j))
		return sh_err_set(err, SH_EINVAL, "%s: must be an array of conditions", where);
	if ((*out = arena_calloc(a, json_array_size(j) + 1, sizeof **out)) == NULL)
		return nomem(err);
	for (size_t i = 0; i < json_array_size(j); i++, (*n)++) {
		japi_path(w, sizeof w, "%s[%zu]", where, i);
		if ((rv = condition(json_array_get(j, i), a, w, depth, &(*out)[i], err)) != 0)
			return rv;
	}
	return 0;
}

static int filter_at(const json_t *j, struct arena *a, const char *where, int depth,
		     Shoal__Filter **out, struct sh_err *err)
{
	static const char *const keys[] = {"must", "should", "must_not", NULL};
	Shoal__Filter *f;
	char w[3][256];
	int rv;

	if (depth > DEPTH_MAX)
		return sh_err_set(err, SH_EINVAL, "%s: nested deeper than %d", where, DEPTH_MAX);
	if (!json_is_object(j))
		return sh_err_set(err, SH_EINVAL, "%s: must be an object, not %s", where, kind(j));
	if ((rv = japi_only_keys(j, keys, where, err)) != 0)
		return rv;
	if ((f = arena_alloc(a, sizeof *f)) == NULL)
		return nomem(err);
	shoal__filter__init(f);
	for (int i = 0; i < 3; i++)
		japi_path(w[i], sizeof w[i], "%s.%s", where, keys[i]);
	if ((rv = clause(json_object_get(j, "must"), a, w[0], depth, &f->must, &f->n_must, err)) ||
	    (rv = clause(json_object_get(j, "should"), a, w[1], depth, &f->should, &f->n_should,
			 err)) ||
	    (rv = clause(json_object_get(j, "must_not"), a, w[2], depth, &f->must_not,
			 &f->n_must_not, err)))
		return rv;
	*out = f;
	return 0;
}

int japi_filter(const json_t *j, struct arena *a, const char *where, Shoal__Filter **out,
		struct sh_err *err)
{
	*out = NULL;
	if (j == NULL || json_is_null(j))
		return 0;
	return filter_at(j, a, where, 0, out, err);
}

int japi_filter_text(const char *text, size_t len, struct arena *a, Shoal__Filter **out,
		     struct sh_err *err)
{
	json_error_t je;
	json_t *j = json_loadb(text, len, 0, &je);
	int rv;

	*out = NULL;
	if (j == NULL)
		return sh_err_set(err, SH_EINVAL, "filter is not valid JSON: %s (column %d)",
				  je.text, je.column);
	rv = japi_filter(j, a, "filter", out, err);
	json_decref(j);
	return rv;
}

int japi_id(const json_t *j, const char *where, uint64_t *out, struct sh_err *err)
{
	const char *s;
	char *end;

	if (json_is_integer(j) && json_integer_value(j) >= 0) {
		*out = (uint64_t)json_integer_value(j);
		return 0;
	}
	if (json_is_string(j)) {
		s = json_string_value(j);
		errno = 0;
		*out = strtoull(s, &end, 10);
		if (s[0] >= '0' && s[0] <= '9' && *end == '\0' && errno == 0)
			return 0;
	}
	return sh_err_set(err, SH_EINVAL,
			  "%s: an id must be an integer 0..2^64-1 (or a string of digits)", where);
}

int japi_vector(const json_t *j, struct arena *a, const char *where, float **out, size_t *n,
		struct sh_err *err)
{
	size_t len;
	float *v;

	if (!json_is_array(j))
		return sh_err_set(err, SH_EINVAL, "%s: must be an array of numbers", where);
	len = json_array_size(j);
	if ((v = arena_calloc(a, len ? len : 1, sizeof *v)) == NULL)
		return nomem(err);
	for (size_t i = 0; i < len; i++) {
		const json_t *x = json_array_get(j, i);

		if (!json_is_number(x))
			return sh_err_set(err, SH_EINVAL, "%s[%zu]: not a number but %s", where, i,
					  kind(x));
		v[i] = (float)json_number_value(x);
	}
	*out = v;
	*n = len;
	return 0;
}

json_t *japi_id_json(uint64_t id)
{
	char buf[24];

	if (id <= (UINT64_C(1) << 53))
		return json_integer((json_int_t)id);
	snprintf(buf, sizeof buf, "%" PRIu64, id);
	return json_string(buf);
}
