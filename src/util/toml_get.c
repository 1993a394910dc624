/*
 * toml_get: the accessors of toml.h over a parsed tree (toml_impl.h).
 */
#include "build.h"

#include "util/toml_impl.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

/* ------------------------------------------------------------- accessors */

enum toml_type toml_type(const struct toml_value *v)
{
	return v->type;
}

const char *toml_type_name(enum toml_type t)
{
	switch (t) {
	case TOML_TABLE: return "table";
	case TOML_ARRAY: return "array";
	case TOML_STRING: return "string";
	case TOML_INTEGER: return "integer";
	case TOML_FLOAT: return "float";
	case TOML_BOOL: return "boolean";
	case TOML_DATETIME: return "offset date-time";
	case TOML_DATETIME_LOCAL: return "local date-time";
	case TOML_DATE_LOCAL: return "local date";
	case TOML_TIME_LOCAL: return "local time";
	}
	return "unknown";
}

int toml_line(const struct toml_value *v)
{
	return v->line;
}

int toml_column(const struct toml_value *v)
{
	return v->col;
}

/* The table and array accessors accept NULL and values of other types
 * (size 0, no entries), so that lookups can be chained. */
size_t toml_table_size(const struct toml_value *t)
{
	return t != NULL && t->type == TOML_TABLE ? t->u.tab.n : 0;
}

const char *toml_table_key(const struct toml_value *t, size_t i, size_t *len)
{
	if (i >= toml_table_size(t))
		return NULL;
	if (len != NULL)
		*len = t->u.tab.kv[i].klen;
	return t->u.tab.kv[i].key;
}

const struct toml_value *toml_table_value(const struct toml_value *t, size_t i)
{
	return i < toml_table_size(t) ? t->u.tab.kv[i].val : NULL;
}

const struct toml_value *toml_table_get(const struct toml_value *t, const char *key)
{
	size_t i;

	if (toml_table_size(t) == 0 || key == NULL)
		return NULL;
	i = toml__tab_find(t, key, strlen(key));
	return i == NOT_FOUND ? NULL : t->u.tab.kv[i].val;
}

size_t toml_array_size(const struct toml_value *a)
{
	return a != NULL && a->type == TOML_ARRAY ? a->u.arr.n : 0;
}

const struct toml_value *toml_array_at(const struct toml_value *a, size_t i)
{
	return i < toml_array_size(a) ? a->u.arr.v[i] : NULL;
}

const char *toml_string(const struct toml_value *v, size_t *len)
{
	assert(v->type == TOML_STRING);
	if (len != NULL)
		*len = v->u.str.len;
	return v->u.str.s;
}

int64_t toml_int(const struct toml_value *v)
{
	assert(v->type == TOML_INTEGER);
	return v->u.i;
}

double toml_float(const struct toml_value *v)
{
	assert(v->type == TOML_FLOAT);
	return v->u.f;
}

bool toml_bool(const struct toml_value *v)
{
	assert(v->type == TOML_BOOL);
	return v->u.b;
}

const struct toml_datetime *toml_datetime(const struct toml_value *v)
{
	assert(v->type >= TOML_DATETIME && v->type <= TOML_TIME_LOCAL);
	return &v->u.dt;
}

int toml_datetime_format(const struct toml_value *v, char *buf, size_t size)
{
	const struct toml_datetime *d = toml_datetime(v);
	char tmp[80];
	size_t n = 0;

	if (v->type != TOML_TIME_LOCAL)
		n += (size_t)snprintf(tmp, sizeof tmp, "%04d-%02d-%02d%s", d->year % 10000,
				      d->month % 100, d->day % 100,
				      v->type == TOML_DATE_LOCAL ? "" : "T");
	if (v->type != TOML_DATE_LOCAL) {
		n += (size_t)snprintf(tmp + n, sizeof tmp - n, "%02d:%02d:%02d", d->hour % 100,
				      d->minute % 100, d->second % 100);
		if (d->frac_digits > 0) {
			uint32_t frac = d->nanosecond;

			for (int i = d->frac_digits; i < 9; i++)
				frac /= 10;
			n += (size_t)snprintf(tmp + n, sizeof tmp - n, ".%0*u", d->frac_digits % 10,
					      frac % 1000000000u);
		}
	}
	if (v->type == TOML_DATETIME && d->offset_minutes == 0)
		n += (size_t)snprintf(tmp + n, sizeof tmp - n, "Z");
	else if (v->type == TOML_DATETIME)
		n += (size_t)snprintf(
			tmp + n, sizeof tmp - n, "%c%02d:%02d", d->offset_minutes < 0 ? '-' : '+',
			abs(d->offset_minutes) / 60 % 100, abs(d->offset_minutes) % 60);
	if (n >= size)
		return -1;
	memcpy(buf, tmp, n + 1);
	return (int)n;
}
