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
#include <strings.h>

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

/* A non-empty array of values into a MatchAny. */
static int values(const json_t *any, struct arena *a, const char *where, Shoal__MatchAny **out,
		  struct sh_err *err)
{
	Shoal__MatchAny *m;
	char w[256];
	int rv;

	if (!json_is_array(any) || json_array_size(any) == 0)
		return sh_err_set(err, SH_EINVAL, "%s: must be a non-empty array", where);
	if ((m = arena_alloc(a, sizeof *m)) == NULL)
		return nomem(err);
	shoal__match_any__init(m);
	m->values = arena_calloc(a, json_array_size(any), sizeof *m->values);
	if (m->values == NULL)
		return nomem(err);
	for (size_t i = 0; i < json_array_size(any); i++, m->n_values++) {
		japi_path(w, sizeof w, "%s[%zu]", where, i);
		if ((rv = value(json_array_get(any, i), a, w, &m->values[i], err)) != 0)
			return rv;
	}
	*out = m;
	return 0;
}

static int match(const json_t *j, struct arena *a, const char *where, Shoal__Condition *c,
		 struct sh_err *err)
{
	static const char *const keys[] = {"value", "any", "except", "text", NULL};
	static const char *const refused[] = {"text_any", "phrase", NULL};
	const json_t *v = json_object_get(j, "value"), *any = json_object_get(j, "any");
	const json_t *ex = json_object_get(j, "except"), *text = json_object_get(j, "text");
	char w[256];

	if (!json_is_object(j))
		return sh_err_set(err, SH_EINVAL, "%s.match: must be an object", where);
	for (int i = 0; refused[i] != NULL; i++)
		if (json_object_get(j, refused[i]) != NULL)
			return sh_err_set(err, SH_EINVAL,
					  "%s.match.%s: not supported (shoal has no full-text "
					  "index; match.text is a substring match)",
					  where, refused[i]);
	if (japi_only_keys(j, keys, where, err) != 0)
		return SH_EINVAL;
	if ((v != NULL) + (any != NULL) + (ex != NULL) + (text != NULL) != 1)
		return sh_err_set(err, SH_EINVAL,
				  "%s.match: needs exactly one of value, any, except and text",
				  where);
	if (v != NULL) {
		japi_path(w, sizeof w, "%s.match.value", where);
		c->kind_case = SHOAL__CONDITION__KIND_MATCH;
		return value(v, a, w, &c->match, err);
	}
	if (text != NULL) {
		if (!json_is_string(text))
			return sh_err_set(err, SH_EINVAL, "%s.match.text: must be a string", where);
		c->kind_case = SHOAL__CONDITION__KIND_TEXT;
		c->text = arena_strndup(a, json_string_value(text), json_string_length(text));
		return c->text ? 0 : nomem(err);
	}
	japi_path(w, sizeof w, "%s.match.%s", where, any ? "any" : "except");
	c->kind_case = any ? SHOAL__CONDITION__KIND_ANY : SHOAL__CONDITION__KIND_EXCEPT;
	return values(any ? any : ex, a, w, any ? &c->any : &c->except, err);
}

static int range(const json_t *j, struct arena *a, const char *where, const char *name,
		 Shoal__Range **out, struct sh_err *err)
{
	static const char *const keys[] = {"gt", "gte", "lt", "lte", NULL};
	Shoal__Range *r;
	Shoal__Bound **slots[4];
	int rv;

	if (!json_is_object(j))
		return sh_err_set(err, SH_EINVAL, "%s.%s: must be an object", where, name);
	if ((rv = japi_only_keys(j, keys, where, err)) != 0)
		return rv;
	if ((r = arena_alloc(a, sizeof *r)) == NULL)
		return nomem(err);
	shoal__range__init(r);
	slots[0] = &r->gt, slots[1] = &r->gte, slots[2] = &r->lt, slots[3] = &r->lte;
	for (int i = 0; i < 4; i++) {
		const json_t *b = json_object_get(j, keys[i]);

		if (b == NULL || json_is_null(b))
			continue;
		if (json_is_string(b))
			return sh_err_set(err, SH_EINVAL,
					  "%s.%s.%s: datetime ranges are not supported (a bound "
					  "is a number)",
					  where, name, keys[i]);
		if (!json_is_number(b))
			return sh_err_set(err, SH_EINVAL, "%s.%s.%s: not a number", where, name,
					  keys[i]);
		if ((*slots[i] = arena_alloc(a, sizeof **slots[i])) == NULL)
			return nomem(err);
		shoal__bound__init(*slots[i]);
		(*slots[i])->value = json_number_value(b);
	}
	*out = r;
	return 0;
}

static int filter_at(const json_t *j, struct arena *a, const char *where, int depth,
		     Shoal__Filter **out, struct sh_err *err);

static int key_of(const json_t *j, struct arena *a, const char *where, Shoal__Condition *c,
		  struct sh_err *err)
{
	const json_t *key = json_object_get(j, "key");

	if (!json_is_string(key))
		return sh_err_set(err, SH_EINVAL, "%s.key: must be a string", where);
	c->key = arena_strndup(a, json_string_value(key), json_string_length(key));
	return c->key ? 0 : nomem(err);
}

/* {"is_empty": {"key": K}}, {"is_null": ...}, {"nested": {"key", "filter"}}. */
static int keyed(const json_t *j, struct arena *a, const char *where, const char *name, int depth,
		 Shoal__Condition *c, struct sh_err *err)
{
	static const char *const pf[] = {"key", NULL}, *const nf[] = {"key", "filter", NULL};
	char w[256];
	int rv;

	japi_path(w, sizeof w, "%s.%s", where, name);
	if (!json_is_object(j))
		return sh_err_set(err, SH_EINVAL, "%s: must be an object with a key", w);
	if ((rv = japi_only_keys(j, name[0] == 'n' ? nf : pf, w, err)) != 0 ||
	    (rv = key_of(j, a, w, c, err)) != 0)
		return rv;
	if (name[0] == 'n') {
		c->kind_case = SHOAL__CONDITION__KIND_NESTED;
		japi_path(w, sizeof w, "%s.nested.filter", where);
		return filter_at(json_object_get(j, "filter"), a, w, depth + 1, &c->nested, err);
	}
	c->kind_case =
		name[3] == 'e' ? SHOAL__CONDITION__KIND_IS_EMPTY : SHOAL__CONDITION__KIND_IS_NULL;
	c->is_empty = c->is_null = 1;
	return 0;
}

static int has_id(const json_t *j, struct arena *a, const char *where, Shoal__Condition *c,
		  struct sh_err *err)
{
	char w[256];
	int rv;

	if (!json_is_array(j))
		return sh_err_set(err, SH_EINVAL, "%s.has_id: must be an array of ids", where);
	if ((c->has_id = arena_alloc(a, sizeof *c->has_id)) == NULL)
		return nomem(err);
	shoal__id_list__init(c->has_id);
	if ((c->has_id->ids = arena_calloc(a, json_array_size(j) + 1, sizeof(uint64_t))) == NULL)
		return nomem(err);
	c->kind_case = SHOAL__CONDITION__KIND_HAS_ID;
	for (size_t i = 0; i < json_array_size(j); i++, c->has_id->n_ids++) {
		japi_path(w, sizeof w, "%s.has_id[%zu]", where, i);
		if ((rv = japi_id(json_array_get(j, i), w, &c->has_id->ids[i], err)) != 0)
			return rv;
	}
	return 0;
}

/* A field condition: {"key": K, one of match, range, values_count,
 * is_empty: true, is_null: true}. */
static int field(const json_t *j, struct arena *a, const char *where, Shoal__Condition *c,
		 struct sh_err *err)
{
	static const char *const keys[] = {"key",      "match",   "range", "values_count",
					   "is_empty", "is_null", NULL};
	static const char *const geo[] = {"geo_bounding_box", "geo_radius", "geo_polygon", NULL};
	const json_t *m = json_object_get(j, "match"), *r = json_object_get(j, "range");
	const json_t *vc = json_object_get(j, "values_count");
	const json_t *ie = json_object_get(j, "is_empty"), *in = json_object_get(j, "is_null");
	int rv;

	for (int i = 0; geo[i] != NULL; i++)
		if (json_object_get(j, geo[i]) != NULL)
			return sh_err_set(err, SH_EINVAL, "%s.%s: geo conditions are not supported",
					  where, geo[i]);
	if ((rv = japi_only_keys(j, keys, where, err)) != 0 ||
	    (rv = key_of(j, a, where, c, err)) != 0)
		return rv;
	if ((m != NULL) + (r != NULL) + (vc != NULL) + (json_is_true(ie)) + (json_is_true(in)) != 1)
		return sh_err_set(err, SH_EINVAL,
				  "%s: needs exactly one of match, range, values_count, "
				  "is_empty and is_null",
				  where);
	if (m != NULL)
		return match(m, a, where, c, err);
	if (r != NULL) {
		c->kind_case = SHOAL__CONDITION__KIND_RANGE;
		return range(r, a, where, "range", &c->range, err);
	}
	if (vc != NULL) {
		c->kind_case = SHOAL__CONDITION__KIND_VALUES_COUNT;
		return range(vc, a, where, "values_count", &c->values_count, err);
	}
	c->kind_case =
		json_is_true(ie) ? SHOAL__CONDITION__KIND_IS_EMPTY : SHOAL__CONDITION__KIND_IS_NULL;
	c->is_empty = c->is_null = 1;
	return 0;
}

/* A condition: a field condition, {is_empty}, {is_null}, {has_id},
 * {nested}, a filter itself (Qdrant), or {"filter": F} (shoal's form). */
static int condition(const json_t *j, struct arena *a, const char *where, int depth,
		     Shoal__Condition **out, struct sh_err *err)
{
	static const char *const ones[] = {"is_empty", "is_null", "has_id",
					   "nested",   "filter",  NULL};
	Shoal__Condition *c;
	const json_t *v = NULL;
	int which = -1;
	char w[256];

	if (!json_is_object(j))
		return sh_err_set(err, SH_EINVAL, "%s: must be an object, not %s", where, kind(j));
	if ((c = arena_alloc(a, sizeof *c)) == NULL)
		return nomem(err);
	shoal__condition__init(c);
	*out = c;
	if (json_object_get(j, "has_vector") != NULL)
		return sh_err_set(err, SH_EINVAL,
				  "%s.has_vector: not supported (a shoal point has one vector)",
				  where);
	for (int i = 0; ones[i] != NULL && json_object_get(j, "key") == NULL; i++)
		if ((v = json_object_get(j, ones[i])) != NULL) {
			which = i;
			break;
		}
	if (which >= 0 && json_object_size(j) != 1)
		return sh_err_set(err, SH_EINVAL, "%s: %s stands alone in its condition", where,
				  ones[which]);
	switch (which) {
	case 0:
	case 1:
	case 3: return keyed(v, a, where, ones[which], depth, c, err);
	case 2: return has_id(v, a, where, c, err);
	case 4:
		japi_path(w, sizeof w, "%s.filter", where);
		c->kind_case = SHOAL__CONDITION__KIND_FILTER;
		return filter_at(v, a, w, depth + 1, &c->filter, err);
	}
	if (json_object_get(j, "key") != NULL)
		return field(j, a, where, c, err);
	if (json_object_get(j, "must") || json_object_get(j, "should") ||
	    json_object_get(j, "must_not") || json_object_get(j, "min_should")) {
		c->kind_case = SHOAL__CONDITION__KIND_FILTER;
		return filter_at(j, a, where, depth + 1, &c->filter, err);
	}
	return sh_err_set(err, SH_EINVAL,
			  "%s: not a condition (a field condition with a key, is_empty, is_null, "
			  "has_id, nested, or a filter)",
			  where);
}

/* A clause: one condition or an array of them (Qdrant takes both). */
static int clause(const json_t *j, struct arena *a, const char *where, int depth,
		  Shoal__Condition ***out, size_t *n, struct sh_err *err)
{
	size_t len = json_is_array(j) ? json_array_size(j) : 1;
	char w[256];
	int rv;

	if (j == NULL || json_is_null(j))
		return 0;
	if (!json_is_array(j) && !json_is_object(j))
		return sh_err_set(err, SH_EINVAL, "%s: must be a condition or an array of them",
				  where);
	if ((*out = arena_calloc(a, len + 1, sizeof **out)) == NULL)
		return nomem(err);
	for (size_t i = 0; i < len; i++, (*n)++) {
		if (json_is_array(j))
			japi_path(w, sizeof w, "%s[%zu]", where, i);
		else
			japi_path(w, sizeof w, "%s", where);
		rv = condition(json_is_array(j) ? json_array_get(j, i) : j, a, w, depth, &(*out)[i],
			       err);
		if (rv != 0)
			return rv;
	}
	return 0;
}

static int min_should(const json_t *j, struct arena *a, const char *where, int depth,
		      Shoal__MinShould **out, struct sh_err *err)
{
	static const char *const keys[] = {"conditions", "min_count", NULL};
	const json_t *mc = json_object_get(j, "min_count");
	Shoal__MinShould *m;
	char w[256];
	int rv;

	if (j == NULL || json_is_null(j))
		return 0;
	if (!json_is_object(j))
		return sh_err_set(err, SH_EINVAL, "%s: must be an object", where);
	if ((rv = japi_only_keys(j, keys, where, err)) != 0)
		return rv;
	if (!json_is_integer(mc) || json_integer_value(mc) < 0 || json_integer_value(mc) > 1024)
		return sh_err_set(err, SH_EINVAL, "%s.min_count: must be an integer 0..1024",
				  where);
	if ((m = arena_alloc(a, sizeof *m)) == NULL)
		return nomem(err);
	shoal__min_should__init(m);
	m->min_count = (uint32_t)json_integer_value(mc);
	japi_path(w, sizeof w, "%s.conditions", where);
	if (!json_is_array(json_object_get(j, "conditions")))
		return sh_err_set(err, SH_EINVAL, "%s: must be an array of conditions", w);
	*out = m;
	return clause(json_object_get(j, "conditions"), a, w, depth, &m->conditions,
		      &m->n_conditions, err);
}

static int filter_at(const json_t *j, struct arena *a, const char *where, int depth,
		     Shoal__Filter **out, struct sh_err *err)
{
	static const char *const keys[] = {"must", "should", "must_not", "min_should", NULL};
	Shoal__Filter *f;
	char w[4][256];
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
	for (int i = 0; i < 4; i++)
		japi_path(w[i], sizeof w[i], "%s.%s", where, keys[i]);
	if ((rv = clause(json_object_get(j, "must"), a, w[0], depth, &f->must, &f->n_must, err)) ||
	    (rv = clause(json_object_get(j, "should"), a, w[1], depth, &f->should, &f->n_should,
			 err)) ||
	    (rv = clause(json_object_get(j, "must_not"), a, w[2], depth, &f->must_not,
			 &f->n_must_not, err)) ||
	    (rv = min_should(json_object_get(j, "min_should"), a, w[3], depth, &f->min_should,
			     err)))
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

/* ------------------------------------------------------------ ids */

static int hexval(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
				      : -1;
}

int japi_uuid_parse(const char *s, unsigned char out[16])
{
	size_t len = strlen(s), k = 0;

	if (len == 45 && strncasecmp(s, "urn:uuid:", 9) == 0)
		s += 9, len -= 9;
	else if (len == 38 && s[0] == '{' && s[37] == '}')
		s++, len -= 2;
	if (len != 36 && len != 32)
		return -1;
	for (size_t i = 0; i < len; i++) {
		int hi, lo;

		if (len == 36 && (i == 8 || i == 13 || i == 18 || i == 23)) {
			if (s[i] != '-')
				return -1;
			continue;
		}
		if (k == 16 || (hi = hexval(s[i])) < 0 || i + 1 >= len ||
		    (lo = hexval(s[i + 1])) < 0)
			return -1;
		out[k++] = (unsigned char)(hi << 4 | lo);
		i++;
	}
	return k == 16 ? 0 : -1;
}

void japi_uuid_format(const unsigned char u[16], char out[JAPI_UUID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[u[i] >> 4];
		out[o++] = hex[u[i] & 15];
	}
	out[o] = '\0';
}

uint64_t japi_uuid_id(const unsigned char u[16])
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64 ... */

	for (int i = 0; i < 16; i++) {
		h ^= u[i];
		h *= 0x100000001b3ull;
	}
	h ^= h >> 33; /* ... then MurmurHash3's fmix64 */
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h | JAPI_UUID_SPACE;
}

int japi_point_id(const json_t *j, const char *where, uint64_t *out, char *uuid, struct sh_err *err)
{
	unsigned char u[16];
	const char *s;
	char *end;

	if (uuid != NULL)
		uuid[0] = '\0';
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
		if (japi_uuid_parse(s, u) == 0) {
			*out = japi_uuid_id(u);
			if (uuid != NULL)
				japi_uuid_format(u, uuid);
			return 0;
		}
	}
	return sh_err_set(
		err, SH_EINVAL, "%s: a point id is an unsigned integer or a UUID, not %s%s%.40s%s",
		where, kind(j), json_is_string(j) ? " '" : "",
		json_is_string(j) ? json_string_value(j) : "", json_is_string(j) ? "'" : "");
}

int japi_id(const json_t *j, const char *where, uint64_t *out, struct sh_err *err)
{
	return japi_point_id(j, where, out, NULL, err);
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
