/*
 * toml_impl.h: what the files of the TOML parser share, and nothing else
 * may include: toml.c (the document: tables, keys, strings, arrays and
 * inline tables, errors, reading a file), toml_scalar.c (booleans,
 * numbers, date-times) and toml_get.c (the accessors of toml.h).  Names
 * shared between them carry the toml__ prefix.
 */
#ifndef SHOAL_UTIL_TOML_IMPL_H
#define SHOAL_UTIL_TOML_IMPL_H

#include "util/toml.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define TOML_EOF     (-1)
#define INDEX_MIN    16  /* tables from this many keys on get a hash index */
#define KEY_REPR_MAX 100 /* bytes of a key quoted in an error message */
#define NOT_FOUND    SIZE_MAX

enum tab_kind {
	TAB_IMPLICIT, /* only named as an ancestor by [headers]: may be defined once later */
	TAB_HEADER,   /* defined by a [header] or [[header]] (and the root) */
	TAB_DOTTED,   /* defined by dotted keys: extended by them and by sub-table headers */
	TAB_INLINE,   /* an inline table: complete, nothing may be added */
};

struct kv {
	char *key;
	size_t klen;
	struct toml_value *val;
};

struct toml_value {
	enum toml_type type;
	int line, col;
	int depth; /* levels below the root; tables and arrays only */
	union {
		struct {
			struct kv *kv;
			size_t n, cap;
			uint32_t *index; /* slot -> kv position + 1, 0 free; NULL while small */
			size_t icap;     /* slots in index, a power of two */
			enum tab_kind kind;
		} tab;
		struct {
			struct toml_value **v;
			size_t n, cap;
			bool aot; /* made by [[headers]], not written as [ ... ] */
		} arr;
		struct {
			char *s;
			size_t len;
		} str;
		int64_t i;
		double f;
		bool b;
		struct toml_datetime dt;
	} u;
};

struct pos {
	int line, col;
};

struct buf {
	char *d;
	size_t n, cap;
};

struct keypart {
	char *s; /* owned until moved into a table */
	size_t len;
	struct pos pos;
};

struct key {
	struct keypart *part;
	size_t n, cap;
};

struct parser {
	const char *p, *end; /* cursor, end of input */
	const char *bol;     /* first byte of the cursor's line */
	int line;
	const char *name;
	struct sh_err *err;
	struct toml_value *root;
	struct toml_value *cur; /* the table of the current [section] */
	struct buf sb;          /* scratch: string bodies, float digits */
};

/* ------------------------------------------------------------ characters */

static inline int toml__peek(const struct parser *ps)
{
	return ps->p < ps->end ? (unsigned char)*ps->p : TOML_EOF;
}

static inline int toml__peek_at(const struct parser *ps, size_t i)
{
	return (size_t)(ps->end - ps->p) > i ? (unsigned char)ps->p[i] : TOML_EOF;
}

static inline bool toml__looking_at(const struct parser *ps, const char *s)
{
	size_t n = strlen(s);

	return (size_t)(ps->end - ps->p) >= n && memcmp(ps->p, s, n) == 0;
}

static inline bool toml__is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static inline bool toml__is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Spec "Keys": bare keys are ASCII letters, digits, '_' and '-'. */
static inline bool toml__is_bare(int c)
{
	return toml__is_alpha(c) || toml__is_digit(c) || c == '_' || c == '-';
}

/* Characters that may continue a number, date or boolean; used to find the
 * end of a malformed one for the message. */
static inline bool toml__is_token(int c)
{
	return toml__is_bare(c) || c == '.' || c == '+' || c == ':';
}

/* Spec "Comment" and "String": control characters other than tab. */
static inline bool toml__is_control(int c)
{
	return (c >= 0 && c < 0x20 && c != '\t') || c == 0x7f;
}

static inline int toml__digit_value(int c)
{
	if (toml__is_digit(c))
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return 99;
}

static inline struct pos toml__here(const struct parser *ps)
{
	struct pos at = {ps->line, (int)(ps->p - ps->bol) + 1};

	return at;
}

/* ------------------------------------------------------------ toml.c */

/* An SH_EINVAL error at `at` (or the cursor), as "NAME:LINE:COL: ...". */
int toml__fail_at(struct parser *ps, struct pos at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int toml__fail(struct parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int toml__nomem(struct parser *ps);
/* A new node of type at `at`, depth levels below the root. */
int toml__new_node(struct parser *ps, enum toml_type type, int depth, struct pos at,
		   struct toml_value **out);
/* Append to the scratch buffer ps->sb. */
int toml__buf_add(struct parser *ps, const char *data, size_t n);
/* Position of key in table t, or NOT_FOUND. */
size_t toml__tab_find(const struct toml_value *t, const char *key, size_t klen);

/* ------------------------------------------------------------ toml_scalar.c */

/* The error for a malformed scalar that started at `start`. */
int toml__invalid_value(struct parser *ps, const char *start, struct pos at, const char *what);
int toml__parse_bool(struct parser *ps, struct toml_value **out);
/* A date-time, local date or local time (has_date: it starts with one). */
int toml__parse_datetime(struct parser *ps, bool has_date, struct toml_value **out);
/* Integers and floats, inf and nan included. */
int toml__parse_number(struct parser *ps, struct toml_value **out);

#endif
