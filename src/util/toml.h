/*
 * toml: a TOML 1.0.0 parser (https://toml.io/en/v1.0.0).
 *
 * toml_parse() reads a whole document into a tree of values and returns its
 * root table, or NULL with an error "NAME:LINE:COLUMN: message" (lines and
 * columns count from 1; columns count bytes).  The tree is read-only and
 * owned by the caller, who releases it with toml_free(root); every pointer
 * obtained from the tree (values, keys, strings) lives until then.
 *
 * Tables keep their keys in definition order.  Strings and keys are UTF-8 and
 * may contain NUL (written as \u0000), so each comes with its length; they
 * are also NUL-terminated for convenience.
 *
 * Input is untrusted: the parser validates UTF-8, bounds its recursion
 * (arrays and inline tables nest at most TOML_MAX_DEPTH deep) and never reads
 * past len.  The bound covers all nesting, by [headers] and dotted keys too:
 * no table or array lies more than TOML_MAX_DEPTH levels below the root, so
 * recursive walks of the tree are safe.  Thread-safe: no shared state.
 */
#ifndef SHOAL_UTIL_TOML_H
#define SHOAL_UTIL_TOML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define TOML_MAX_DEPTH 128

enum toml_type {
	TOML_TABLE = 1,
	TOML_ARRAY,
	TOML_STRING,
	TOML_INTEGER,
	TOML_FLOAT,
	TOML_BOOL,
	TOML_DATETIME,       /* offset date-time: 1979-05-27T07:32:00Z */
	TOML_DATETIME_LOCAL, /* local date-time:  1979-05-27T07:32:00 */
	TOML_DATE_LOCAL,     /* local date:       1979-05-27 */
	TOML_TIME_LOCAL,     /* local time:       07:32:00 */
};

struct toml_datetime {
	int year, month, day;     /* zero for TOML_TIME_LOCAL */
	int hour, minute, second; /* zero for TOML_DATE_LOCAL */
	uint32_t nanosecond;      /* fraction of the second, truncated to ns */
	int frac_digits;          /* fraction digits as written, at most 9 kept; 0 = none */
	int offset_minutes;       /* TOML_DATETIME only; Z is 0 */
};

struct toml_value;

/* Parse text[0..len). name prefixes error messages (a file name, say). */
struct toml_value *toml_parse(const char *text, size_t len, const char *name, struct sh_err *err);

/* Read and parse a file of at most max_bytes bytes; errors name the path. */
struct toml_value *toml_parse_file(const char *path, size_t max_bytes, struct sh_err *err);

/* Free a tree returned by toml_parse*(); NULL is ignored. */
void toml_free(struct toml_value *root);

enum toml_type toml_type(const struct toml_value *v);

/* "table", "array", "string", "integer", "float", "boolean",
 * "offset date-time", "local date-time", "local date", "local time". */
const char *toml_type_name(enum toml_type t);

/* Where the value was defined: for a key/value pair the position of its
 * key; for a [table] or [[array]] the position of its header; for a table
 * created implicitly (by a dotted key or a sub-table header) the first place
 * that named it; for an array element the element's first byte. */
int toml_line(const struct toml_value *v);
int toml_column(const struct toml_value *v);

/* Tables. Indexes run 0..size-1 in definition order. */
size_t toml_table_size(const struct toml_value *t);
const char *toml_table_key(const struct toml_value *t, size_t i, size_t *len);
const struct toml_value *toml_table_value(const struct toml_value *t, size_t i);
/* Lookup by a NUL-free key (one level, not dotted); NULL when absent. */
const struct toml_value *toml_table_get(const struct toml_value *t, const char *key);

/* Arrays (including arrays of tables). */
size_t toml_array_size(const struct toml_value *a);
const struct toml_value *toml_array_at(const struct toml_value *a, size_t i);

/* Scalars. Each asserts the value's type; check toml_type() first. */
const char *toml_string(const struct toml_value *v, size_t *len);
int64_t toml_int(const struct toml_value *v);
double toml_float(const struct toml_value *v);
bool toml_bool(const struct toml_value *v);
const struct toml_datetime *toml_datetime(const struct toml_value *v);

/* Format a date/time value as RFC 3339 text (the T separator, "Z" for a zero
 * offset, the fraction with the digits as written); returns the length, or
 * -1 when buf is too small (64 bytes always suffice). */
int toml_datetime_format(const struct toml_value *v, char *buf, size_t size);

#endif
