/*
 * toml: a TOML 1.0.0 parser (https://toml.io/en/v1.0.0); toml.h is the contract.
 *
 * This file reads the document — tables, keys, strings, arrays, inline
 * tables — and reports errors; toml_scalar.c reads booleans, numbers and
 * date-times, toml_get.c has the accessors, toml_impl.h what they share.
 *
 * One recursive-descent pass over text[0..len) builds the tree.  Before it,
 * the whole input is checked to be UTF-8 (spec "Spec": "A TOML file must be
 * a valid UTF-8 encoded Unicode document"), so the lexers below compare only
 * ASCII bytes and copy all others through unchanged.
 *
 * Invariants:
 *  - The cursor never passes the end: every look at the input goes through
 *    toml__peek()/toml__peek_at()/toml__looking_at(), which see EOF there.
 *  - line/bol always describe the cursor's line, so toml__here() is exact; every
 *    newline, inside strings too, is consumed by newline().
 *  - A node is linked into the tree, or freed by the function that made it,
 *    before anything else can fail; so on any error freeing the root frees
 *    everything.  Key strings move from struct key into the table that
 *    receives them (the part's pointer is then NULL).
 *  - Tables and arrays sit at most TOML_MAX_DEPTH levels below the root.
 *    That bounds the parser's recursion (values nest in values), toml_free()'s
 *    and that of any recursive walk by a caller.
 *
 * The subtle part of TOML is which tables may still be added to (spec
 * "Keys", "Table", "Inline Table", "Array of Tables").  Each table records how
 * it came into being (enum tab_kind); header_step(), dotted_step(),
 * open_table() and open_array_table() apply the rules.
 *
 * Thread-safety: no shared state; a finished tree may be read concurrently.
 */
#include "build.h"

#include "util/toml_impl.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/alloc.h"

/* ---------------------------------------------------------------- errors */

static int vfail_at(struct parser *ps, struct pos at, int code, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));
static int vfail_at(struct parser *ps, struct pos at, int code, const char *fmt, va_list ap)
{
	char msg[SH_ERRMSG_SIZE];

	vsnprintf(msg, sizeof msg, fmt, ap);
	return sh_err_set(ps->err, code, "%s:%d:%d: %s", ps->name, at.line, at.col, msg);
}

int toml__fail_at(struct parser *ps, struct pos at, const char *fmt, ...)
{
	va_list ap;
	int rv;

	va_start(ap, fmt);
	rv = vfail_at(ps, at, SH_EINVAL, fmt, ap);
	va_end(ap);
	return rv;
}

int toml__fail(struct parser *ps, const char *fmt, ...)
{
	va_list ap;
	int rv;

	va_start(ap, fmt);
	rv = vfail_at(ps, toml__here(ps), SH_EINVAL, fmt, ap);
	va_end(ap);
	return rv;
}

int toml__nomem(struct parser *ps)
{
	return sh_err_set(ps->err, SH_ENOMEM, "%s:%d:%d: out of memory", ps->name, ps->line,
			  (int)(ps->p - ps->bol) + 1);
}

/* Decodes the sequence at s; only for input that check_utf8() accepted. */
static uint32_t decode_utf8(const unsigned char *s)
{
	if (s[0] < 0x80)
		return s[0];
	if (s[0] < 0xe0)
		return (uint32_t)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
	if (s[0] < 0xf0)
		return (uint32_t)(s[0] & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
	return (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3f) << 12 |
	       (uint32_t)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
}

/* Names the character at `at` for a message: 'x', end of line, U+00B5. */
static const char *describe(const struct parser *ps, const char *at, char *buf, size_t size)
{
	int c;

	if (at >= ps->end)
		return "end of input";
	c = (unsigned char)*at;
	if (c == '\n' || (c == '\r' && at + 1 < ps->end && at[1] == '\n'))
		return "end of line";
	if (c >= 0x20 && c < 0x7f)
		snprintf(buf, size, "'%c'", c);
	else if (c < 0x80)
		snprintf(buf, size, "control character U+%04X", (unsigned)c);
	else
		snprintf(buf, size, "U+%04X", (unsigned)decode_utf8((const unsigned char *)at));
	return buf;
}

static const char *describe_here(const struct parser *ps, char *buf, size_t size)
{
	return describe(ps, ps->p, buf, size);
}

struct repr {
	char *buf; /* KEY_REPR_MAX + 8 bytes */
	size_t len;
	bool full;
};

/* Appends s[0..n) as it would appear in TOML (quoted: with escapes),
 * truncating at KEY_REPR_MAX bytes without splitting a UTF-8 sequence. */
static void repr_bytes(struct repr *r, const char *s, size_t n, bool quote)
{
	char tmp[8];

	for (size_t i = 0; i < n && !r->full; i++) {
		unsigned char c = (unsigned char)s[i];
		size_t m = 1;

		tmp[0] = (char)c;
		if (quote && (c == '"' || c == '\\'))
			m = (size_t)snprintf(tmp, sizeof tmp, "\\%c", c);
		else if (quote && toml__is_control(c))
			m = (size_t)snprintf(tmp, sizeof tmp, "\\u%04X", c);
		if (r->len + m > KEY_REPR_MAX || (c >= 0xc0 && r->len + 4 > KEY_REPR_MAX)) {
			memcpy(r->buf + r->len, "...", 3);
			r->len += 3;
			r->full = true;
		} else {
			memcpy(r->buf + r->len, tmp, m);
			r->len += m;
		}
	}
	r->buf[r->len] = '\0';
}

/* Spells key parts 0..upto for a message: a.b."c d".  buf must hold
 * KEY_REPR_MAX + 8 bytes. */
static const char *key_repr(const struct key *k, size_t upto, char *buf)
{
	struct repr r = {buf, 0, false};

	buf[0] = '\0';
	for (size_t i = 0; i <= upto; i++) {
		const struct keypart *kp = &k->part[i];
		bool bare = kp->len > 0;

		for (size_t j = 0; j < kp->len; j++)
			bare = bare && toml__is_bare((unsigned char)kp->s[j]);
		if (i > 0)
			repr_bytes(&r, ".", 1, false);
		if (!bare)
			repr_bytes(&r, "\"", 1, false);
		repr_bytes(&r, kp->s, kp->len, !bare);
		if (!bare)
			repr_bytes(&r, "\"", 1, false);
	}
	return buf;
}

/* ------------------------------------------------------------ whitespace */

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t'))
		ps->p++;
}

/* Consumes LF or CRLF (spec "Spec"); a CR alone is not a newline. */
static int newline(struct parser *ps)
{
	if (toml__peek(ps) == '\r') {
		if (toml__peek_at(ps, 1) != '\n')
			return toml__fail(ps, "carriage return not followed by line feed");
		ps->p++;
	}
	assert(toml__peek(ps) == '\n');
	ps->p++;
	ps->line++;
	ps->bol = ps->p;
	return 0;
}

/* Skips a comment up to its newline.  Spec "Comment": "Control characters
 * other than tab (U+0000 to U+0008, U+000A to U+001F, U+007F) are not
 * permitted in comments." */
static int skip_comment(struct parser *ps)
{
	assert(toml__peek(ps) == '#');
	for (ps->p++;; ps->p++) {
		int c = toml__peek(ps);

		if (c == TOML_EOF || c == '\n' || (c == '\r' && toml__peek_at(ps, 1) == '\n'))
			return 0;
		if (c == '\r')
			return toml__fail(ps, "carriage return not followed by line feed");
		if (toml__is_control(c))
			return toml__fail(ps, "control character U+%04X not allowed in comment",
					  (unsigned)c);
	}
}

/* Whitespace, comments and newlines, as allowed between array elements. */
static int skip_blank(struct parser *ps)
{
	for (;;) {
		int c, rv = 0;

		skip_ws(ps);
		c = toml__peek(ps);
		if (c == '#')
			rv = skip_comment(ps);
		else if (c == '\n' || c == '\r')
			rv = newline(ps);
		else
			return 0;
		if (rv != 0)
			return rv;
	}
}

/* After a key/value pair or a header only whitespace and a comment may
 * follow on the line (spec "Keys/Value Pair", "Table"). */
static int end_of_line(struct parser *ps, const char *after)
{
	char what[40];
	int c, rv;

	skip_ws(ps);
	if (toml__peek(ps) == '#' && (rv = skip_comment(ps)) != 0)
		return rv;
	c = toml__peek(ps);
	if (c == TOML_EOF)
		return 0;
	if (c == '\n' || c == '\r')
		return newline(ps);
	return toml__fail(ps, "expected end of line after %s, found %s", after,
			  describe_here(ps, what, sizeof what));
}

/* ------------------------------------------------------------- UTF-8 */

/* Length of the UTF-8 sequence at s[0..n), or 0 with *why set.  Well-formed
 * sequences per RFC 3629 section 4: no overlong forms, no surrogates, nothing
 * above U+10FFFF. */
static size_t utf8_len(const unsigned char *s, size_t n, const char **why)
{
	static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
	size_t len = s[0] < 0x80 ? 1 : s[0] < 0xc0 ? 0 : s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : 4;
	uint32_t cp;

	*why = "invalid byte";
	if (len <= 1 || s[0] >= 0xf8)
		return s[0] >= 0xf8 ? 0 : len;
	cp = s[0] & (0x7fu >> len);
	for (size_t i = 1; i < len; i++) {
		if (i >= n || (s[i] & 0xc0) != 0x80) {
			*why = "truncated sequence";
			return 0;
		}
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min[len])
		*why = "overlong encoding";
	else if (cp >= 0xd800 && cp <= 0xdfff)
		*why = "encoded surrogate";
	else if (cp > 0x10ffff)
		*why = "code point above U+10FFFF";
	else
		return len;
	return 0;
}

static int check_utf8(struct parser *ps)
{
	const unsigned char *s = (const unsigned char *)ps->p;
	const unsigned char *e = (const unsigned char *)ps->end, *bol = s;
	const char *why = NULL;
	int line = 1;

	while (s < e) {
		size_t len = 1;

		if (*s == '\n')
			line++, bol = s + 1;
		else if (*s >= 0x80 && (len = utf8_len(s, (size_t)(e - s), &why)) == 0) {
			struct pos at = {line, (int)(s - bol) + 1};

			return toml__fail_at(ps, at, "invalid UTF-8: %s (byte 0x%02x)", why, *s);
		}
		s += len;
	}
	return 0;
}

/* ------------------------------------------------------------ nodes */

int toml__new_node(struct parser *ps, enum toml_type type, int depth, struct pos at,
		   struct toml_value **out)
{
	struct toml_value *v;

	*out = NULL;
	if ((type == TOML_TABLE || type == TOML_ARRAY) && depth > TOML_MAX_DEPTH)
		return toml__fail_at(ps, at, "nesting deeper than %d levels", TOML_MAX_DEPTH);
	v = sh_calloc(1, sizeof *v);
	if (v == NULL)
		return toml__nomem(ps);
	v->type = type;
	v->depth = depth;
	v->line = at.line;
	v->col = at.col;
	*out = v;
	return 0;
}

static int new_table(struct parser *ps, enum tab_kind kind, int depth, struct pos at,
		     struct toml_value **out)
{
	int rv = toml__new_node(ps, TOML_TABLE, depth, at, out);

	if (rv == 0)
		(*out)->u.tab.kind = kind;
	return rv;
}

void toml_free(struct toml_value *v)
{
	if (v == NULL)
		return;
	switch (v->type) {
	case TOML_TABLE:
		for (size_t i = 0; i < v->u.tab.n; i++) {
			sh_free(v->u.tab.kv[i].key);
			toml_free(v->u.tab.kv[i].val);
		}
		sh_free(v->u.tab.kv);
		sh_free(v->u.tab.index);
		break;
	case TOML_ARRAY:
		for (size_t i = 0; i < v->u.arr.n; i++)
			toml_free(v->u.arr.v[i]);
		sh_free(v->u.arr.v);
		break;
	case TOML_STRING: sh_free(v->u.str.s); break;
	default: break;
	}
	sh_free(v);
}

/* FNV-1a: tables are small and keys short; quality matters little. */
static uint32_t hash_key(const char *s, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

static bool kv_is(const struct kv *kv, const char *key, size_t klen)
{
	return kv->klen == klen && memcmp(kv->key, key, klen) == 0;
}

size_t toml__tab_find(const struct toml_value *t, const char *key, size_t klen)
{
	const struct kv *kv = t->u.tab.kv;

	if (t->u.tab.index != NULL) {
		size_t mask = t->u.tab.icap - 1;

		for (size_t s = hash_key(key, klen) & mask; t->u.tab.index[s] != 0;
		     s = (s + 1) & mask) {
			if (kv_is(&kv[t->u.tab.index[s] - 1], key, klen))
				return t->u.tab.index[s] - 1;
		}
		return NOT_FOUND;
	}
	for (size_t i = 0; i < t->u.tab.n; i++) {
		if (kv_is(&kv[i], key, klen))
			return i;
	}
	return NOT_FOUND;
}

static struct toml_value *lookup(const struct toml_value *t, const struct keypart *kp)
{
	size_t i = toml__tab_find(t, kp->s, kp->len);

	return i == NOT_FOUND ? NULL : t->u.tab.kv[i].val;
}

static void index_put(uint32_t *index, size_t icap, const struct kv *kv, uint32_t i)
{
	size_t s = hash_key(kv->key, kv->klen) & (icap - 1);

	while (index[s] != 0)
		s = (s + 1) & (icap - 1);
	index[s] = i + 1;
}

/* Keeps the index at most half full, so that probes stay short. */
static int tab_reindex(struct parser *ps, struct toml_value *t)
{
	size_t icap = t->u.tab.icap ? t->u.tab.icap * 2 : 2 * INDEX_MIN;
	uint32_t *index;

	while (icap < 2 * t->u.tab.n)
		icap *= 2;
	index = sh_calloc(icap, sizeof *index);
	if (index == NULL)
		return toml__nomem(ps);
	for (size_t i = 0; i < t->u.tab.n; i++)
		index_put(index, icap, &t->u.tab.kv[i], (uint32_t)i);
	sh_free(t->u.tab.index);
	t->u.tab.index = index;
	t->u.tab.icap = icap;
	return 0;
}

/* Appends key -> v to table t, where key is known to be absent.  On success t
 * owns key and v; on failure the caller still owns both. */
static int tab_add(struct parser *ps, struct toml_value *t, char *key, size_t klen,
		   struct toml_value *v)
{
	struct kv *kv = t->u.tab.kv;

	if (t->u.tab.n == t->u.tab.cap) {
		size_t cap = t->u.tab.cap ? 2 * t->u.tab.cap : 4;

		kv = sh_reallocarray(kv, cap, sizeof *kv);
		if (kv == NULL)
			return toml__nomem(ps);
		t->u.tab.kv = kv;
		t->u.tab.cap = cap;
	}
	kv[t->u.tab.n].key = key;
	kv[t->u.tab.n].klen = klen;
	kv[t->u.tab.n].val = v;
	t->u.tab.n++;
	if (t->u.tab.n >= INDEX_MIN && 2 * t->u.tab.n > t->u.tab.icap) {
		int rv = tab_reindex(ps, t);

		if (rv != 0) {
			t->u.tab.n--;
			return rv;
		}
	} else if (t->u.tab.index != NULL) {
		index_put(t->u.tab.index, t->u.tab.icap, &kv[t->u.tab.n - 1],
			  (uint32_t)(t->u.tab.n - 1));
	}
	return 0;
}

/* Moves key part i into table t with value v; frees v on failure. */
static int attach(struct parser *ps, struct toml_value *t, struct key *k, size_t i,
		  struct toml_value *v)
{
	int rv = tab_add(ps, t, k->part[i].s, k->part[i].len, v);

	if (rv != 0)
		toml_free(v);
	else
		k->part[i].s = NULL;
	return rv;
}

static int arr_add(struct parser *ps, struct toml_value *a, struct toml_value *v)
{
	if (a->u.arr.n == a->u.arr.cap) {
		size_t cap = a->u.arr.cap ? 2 * a->u.arr.cap : 4;
		struct toml_value **items = sh_reallocarray(a->u.arr.v, cap, sizeof *items);

		if (items == NULL)
			return toml__nomem(ps);
		a->u.arr.v = items;
		a->u.arr.cap = cap;
	}
	a->u.arr.v[a->u.arr.n++] = v;
	return 0;
}

/* Scratch buffer ps->sb. */
int toml__buf_add(struct parser *ps, const char *data, size_t n)
{
	struct buf *b = &ps->sb;

	if (n == 0)
		return 0;
	if (n > b->cap - b->n) {
		size_t cap = b->cap ? b->cap : 64;
		char *d;

		while (cap - b->n < n)
			cap *= 2;
		d = sh_realloc(b->d, cap);
		if (d == NULL)
			return toml__nomem(ps);
		b->d = d;
		b->cap = cap;
	}
	memcpy(b->d + b->n, data, n);
	b->n += n;
	return 0;
}

static char *copy_bytes(const char *s, size_t n)
{
	char *d = sh_malloc(n + 1);

	if (d != NULL) {
		if (n > 0)
			memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

/* ---------------------------------------------------------------- strings */

static int put_utf8(struct parser *ps, uint32_t cp)
{
	char b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (char)cp, n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | cp >> 6), n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | cp >> 12), n = 3;
	} else {
		b[0] = (char)(0xf0 | cp >> 18), n = 4;
	}
	for (size_t i = 1; i < n; i++)
		b[i] = (char)(0x80 | ((cp >> (6 * (n - 1 - i))) & 0x3f));
	return toml__buf_add(ps, b, n);
}

/* \uXXXX and \UXXXXXXXX.  Spec "String": "Any Unicode character may be
 * escaped with the \uXXXX or \UXXXXXXXX forms. The escape codes must be
 * Unicode scalar values." */
static int unicode_escape(struct parser *ps, int ndigits)
{
	struct pos at = toml__here(ps);
	uint32_t cp = 0;

	for (int i = 0; i < ndigits; i++) {
		int d = toml__digit_value(toml__peek_at(ps, 2 + (size_t)i));

		if (d > 15)
			return toml__fail_at(ps, at,
					     "invalid escape: '\\%c' needs %d hexadecimal digits",
					     ps->p[1], ndigits);
		cp = cp << 4 | (uint32_t)d;
	}
	if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return toml__fail_at(ps, at, "invalid escape '%.*s': not a Unicode scalar value",
				     ndigits + 2, ps->p);
	ps->p += 2 + ndigits;
	return put_utf8(ps, cp);
}

/* Spec "String": "When the last non-whitespace character on a line is an
 * unescaped \, it will be trimmed along with all whitespace (including
 * newlines) up to the next non-whitespace character or closing delimiter." */
static int line_ending_backslash(struct parser *ps)
{
	struct pos at = toml__here(ps);
	const char *q = ps->p + 1;

	while (q < ps->end && (*q == ' ' || *q == '\t'))
		q++;
	if (q == ps->end || (*q != '\n' && *q != '\r'))
		return toml__fail_at(ps, at,
				     "invalid escape '\\%c' in string: only a backslash ending "
				     "the line may be followed by whitespace",
				     ps->p[1]);
	ps->p = q;
	for (;;) {
		int c = toml__peek(ps), rv;

		if (c == ' ' || c == '\t')
			ps->p++;
		else if (c == '\n' || c == '\r') {
			if ((rv = newline(ps)) != 0)
				return rv;
		} else
			return 0;
	}
}

static int escape(struct parser *ps, bool multiline)
{
	static const char from[] = "btnfr\"\\", to[] = "\b\t\n\f\r\"\\";
	int c = toml__peek_at(ps, 1);
	const char *hit = c > 0 ? strchr(from, c) : NULL;
	char what[40];

	if (hit != NULL) {
		ps->p += 2;
		return toml__buf_add(ps, &to[hit - from], 1);
	}
	if (c == 'u' || c == 'U')
		return unicode_escape(ps, c == 'u' ? 4 : 8);
	if (multiline && (c == ' ' || c == '\t' || c == '\n' || c == '\r'))
		return line_ending_backslash(ps);
	if (c > 0x20 && c < 0x7f)
		return toml__fail(ps, "invalid escape '\\%c' in string", c);
	return toml__fail(ps, "invalid escape in string: '\\' followed by %s",
			  describe(ps, ps->p + 1, what, sizeof what));
}

/* In multi-line strings, one or two quotes may stand anywhere, also just
 * before the closing delimiter: """a"""" is a". */
static int ml_quotes(struct parser *ps, int q, bool *closed)
{
	size_t n = 0;
	int rv;

	while (toml__peek_at(ps, n) == q)
		n++;
	*closed = n >= 3;
	if (n > 5)
		return toml__fail(ps, "too many quotes in a row in multi-line string");
	if ((rv = toml__buf_add(ps, ps->p, *closed ? n - 3 : n)) != 0)
		return rv;
	ps->p += n;
	return 0;
}

/* Reads a string body (quote q, single- or multi-line) into ps->sb; the
 * cursor is on the opening delimiter.  Spec "String". */
static int string_body(struct parser *ps, int q, bool multi)
{
	struct pos open = toml__here(ps);
	char what[40];
	int rv = 0;

	ps->sb.n = 0;
	ps->p += multi ? 3 : 1;
	/* "A newline immediately following the opening delimiter will be trimmed." */
	if (multi && (toml__peek(ps) == '\n' || toml__peek(ps) == '\r') && (rv = newline(ps)) != 0)
		return rv;
	for (bool closed = false; !closed && rv == 0;) {
		const char *run = ps->p;
		int c;

		while (ps->p < ps->end && *ps->p != q && !(q == '"' && *ps->p == '\\') &&
		       !toml__is_control((unsigned char)*ps->p))
			ps->p++;
		if ((rv = toml__buf_add(ps, run, (size_t)(ps->p - run))) != 0)
			return rv;
		c = toml__peek(ps);
		if (c == q && multi)
			rv = ml_quotes(ps, q, &closed);
		else if (c == q)
			ps->p++, closed = true;
		else if (c == '\\')
			rv = escape(ps, multi);
		else if (multi && (c == '\n' || c == '\r')) {
			/* Newlines are kept, normalized to LF as the spec allows. */
			if ((rv = newline(ps)) == 0)
				rv = toml__buf_add(ps, "\n", 1);
		} else if (c == TOML_EOF || c == '\n' ||
			   (c == '\r' && toml__peek_at(ps, 1) == '\n'))
			rv = toml__fail_at(ps, open, "unterminated string");
		else
			rv = toml__fail(ps, "%s not allowed in string%s",
					describe_here(ps, what, sizeof what),
					q == '"' ? " (use an escape)" : "");
	}
	return rv;
}

static int parse_string(struct parser *ps, struct toml_value **out)
{
	int q = toml__peek(ps);
	bool multi = toml__peek_at(ps, 1) == q && toml__peek_at(ps, 2) == q;
	struct pos at = toml__here(ps);
	struct toml_value *v;
	int rv;

	if ((rv = string_body(ps, q, multi)) != 0)
		return rv;
	if ((rv = toml__new_node(ps, TOML_STRING, 0, at, &v)) != 0)
		return rv;
	v->u.str.s = copy_bytes(ps->sb.d, ps->sb.n);
	v->u.str.len = ps->sb.n;
	if (v->u.str.s == NULL) {
		sh_free(v);
		return toml__nomem(ps);
	}
	*out = v;
	return 0;
}

/* ------------------------------------------------------------------ keys */

static void key_release(struct key *k)
{
	for (size_t i = 0; i < k->n; i++)
		sh_free(k->part[i].s);
	sh_free(k->part);
}

static int key_push(struct parser *ps, struct key *k, const char *s, size_t n, struct pos at)
{
	if (k->n == k->cap) {
		size_t cap = k->cap ? 2 * k->cap : 4;
		struct keypart *part = sh_reallocarray(k->part, cap, sizeof *part);

		if (part == NULL)
			return toml__nomem(ps);
		k->part = part;
		k->cap = cap;
	}
	k->part[k->n].s = copy_bytes(s, n);
	if (k->part[k->n].s == NULL)
		return toml__nomem(ps);
	k->part[k->n].len = n;
	k->part[k->n].pos = at;
	k->n++;
	return 0;
}

static int key_part(struct parser *ps, struct key *k)
{
	struct pos at = toml__here(ps);
	int c = toml__peek(ps), rv;
	const char *s = ps->p;
	char what[40];

	if (c == '"' || c == '\'') {
		if (toml__peek_at(ps, 1) == c && toml__peek_at(ps, 2) == c)
			return toml__fail(ps, "multi-line strings cannot be keys");
		if ((rv = string_body(ps, c, false)) != 0)
			return rv;
		return key_push(ps, k, ps->sb.d, ps->sb.n, at);
	}
	while (toml__is_bare(toml__peek(ps)))
		ps->p++;
	if (ps->p == s)
		return toml__fail(ps, "expected a key%s, found %s", k->n > 0 ? " after '.'" : "",
				  describe_here(ps, what, sizeof what));
	return key_push(ps, k, s, (size_t)(ps->p - s), at);
}

/* Spec "Keys": bare or quoted parts joined by dots; "Whitespace around
 * dot-separated parts is ignored."  Leaves the cursor after the whitespace
 * that follows the key. */
static int parse_key(struct parser *ps, struct key *k)
{
	for (;;) {
		int rv;

		skip_ws(ps);
		if ((rv = key_part(ps, k)) != 0)
			return rv;
		skip_ws(ps);
		if (toml__peek(ps) != '.')
			return 0;
		ps->p++;
	}
}

/* ------------------------------------------------------------ tables */

static const char *describe_value(const struct toml_value *v)
{
	if (v->type == TOML_TABLE && v->u.tab.kind == TAB_INLINE)
		return "inline table";
	if (v->type == TOML_ARRAY && v->u.arr.aot)
		return "array of tables";
	return toml_type_name(v->type);
}

/* The error for extending v, which cannot be, at step i of k; by_dots when
 * a dotted key tried. */
static int not_extensible(struct parser *ps, struct pos at, const struct key *k, size_t i,
			  const struct toml_value *v, bool by_dots)
{
	char name[KEY_REPR_MAX + 8];

	key_repr(k, i, name);
	if (v->type == TOML_TABLE && v->u.tab.kind == TAB_INLINE)
		return toml__fail_at(ps, at, "inline table '%s' (line %d) cannot be extended", name,
				     v->line);
	if (v->type == TOML_TABLE && v->u.tab.kind == TAB_HEADER && by_dots)
		return toml__fail_at(ps, at,
				     "table '%s' defined by a header (line %d) cannot be "
				     "extended by dotted keys",
				     name, v->line);
	if (v->type == TOML_ARRAY && !v->u.arr.aot)
		return toml__fail_at(ps, at,
				     "key '%s' already defined as an array (line %d); "
				     "static arrays cannot be extended",
				     name, v->line);
	return toml__fail_at(ps, at, "key '%s' already defined as %s (line %d)", name,
			     describe_value(v), v->line);
}

/* One ancestor of a [header] or [[header]].  Spec "Table": headers create the
 * tables they pass through when missing; "Array of Tables": a path through an
 * array of tables continues in its most recently defined element. */
static int header_step(struct parser *ps, struct toml_value **t, struct key *k, size_t i,
		       struct pos at)
{
	struct toml_value *v = lookup(*t, &k->part[i]);
	int rv;

	if (v == NULL) {
		rv = new_table(ps, TAB_IMPLICIT, (*t)->depth + 1, k->part[i].pos, &v);
		if (rv == 0)
			rv = attach(ps, *t, k, i, v);
		if (rv != 0)
			return rv;
	} else if (v->type == TOML_ARRAY && v->u.arr.aot) {
		assert(v->u.arr.n > 0);
		v = v->u.arr.v[v->u.arr.n - 1];
	} else if (v->type != TOML_TABLE || v->u.tab.kind == TAB_INLINE) {
		return not_extensible(ps, at, k, i, v, false);
	}
	*t = v;
	return 0;
}

static int header_path(struct parser *ps, struct key *k, struct pos at, struct toml_value **t)
{
	int rv = 0;

	*t = ps->root;
	for (size_t i = 0; i + 1 < k->n && rv == 0; i++)
		rv = header_step(ps, t, k, i, at);
	return rv;
}

/* [a.b]: spec "Table": "you cannot define a table more than once"; a table
 * created implicitly by an earlier header may be defined once; one defined by
 * dotted keys may not be reopened by a header. */
static int open_table(struct parser *ps, struct key *k, struct pos at)
{
	size_t last = k->n - 1;
	struct toml_value *t, *v;
	char name[KEY_REPR_MAX + 8];
	int rv;

	if ((rv = header_path(ps, k, at, &t)) != 0)
		return rv;
	v = lookup(t, &k->part[last]);
	if (v == NULL) {
		if ((rv = new_table(ps, TAB_HEADER, t->depth + 1, at, &v)) != 0 ||
		    (rv = attach(ps, t, k, last, v)) != 0)
			return rv;
	} else if (v->type == TOML_TABLE && v->u.tab.kind == TAB_IMPLICIT) {
		v->u.tab.kind = TAB_HEADER;
		v->line = at.line;
		v->col = at.col;
	} else if (v->type == TOML_TABLE && v->u.tab.kind != TAB_INLINE) {
		return toml__fail_at(ps, at, "table '%s' already defined%s (line %d)",
				     key_repr(k, last, name),
				     v->u.tab.kind == TAB_DOTTED ? " by dotted keys" : "", v->line);
	} else {
		return not_extensible(ps, at, k, last, v, false);
	}
	ps->cur = v;
	return 0;
}

/* [[a.b]]: spec "Array of Tables": each header appends a new table; it
 * cannot append to a static array or turn an existing table into an array. */
static int open_array_table(struct parser *ps, struct key *k, struct pos at)
{
	size_t last = k->n - 1;
	struct toml_value *t, *a, *v;
	int rv;

	if ((rv = header_path(ps, k, at, &t)) != 0)
		return rv;
	a = lookup(t, &k->part[last]);
	if (a == NULL) {
		if ((rv = toml__new_node(ps, TOML_ARRAY, t->depth + 1, at, &a)) != 0)
			return rv;
		a->u.arr.aot = true;
		if ((rv = attach(ps, t, k, last, a)) != 0)
			return rv;
	} else if (a->type != TOML_ARRAY || !a->u.arr.aot) {
		return not_extensible(ps, at, k, last, a, false);
	}
	if ((rv = new_table(ps, TAB_HEADER, a->depth + 1, at, &v)) != 0)
		return rv;
	if ((rv = arr_add(ps, a, v)) != 0) {
		toml_free(v);
		return rv;
	}
	ps->cur = v;
	return 0;
}

/* [a.b] or [[a.b]], whitespace allowed around the key but not inside the
 * brackets of [[ ]] (spec ABNF: array-table-open = %x5B.5B ws). */
static int parse_header(struct parser *ps)
{
	struct pos at = toml__here(ps);
	bool aot = toml__peek_at(ps, 1) == '[';
	struct key k = {0};
	char what[40];
	int rv;

	ps->p += aot ? 2 : 1;
	rv = parse_key(ps, &k);
	if (rv == 0 && (toml__peek(ps) != ']' || (aot && toml__peek_at(ps, 1) != ']')))
		rv = toml__fail(ps, "expected '%s' to close %s header, found %s", aot ? "]]" : "]",
				aot ? "array-of-tables" : "table",
				describe_here(ps, what, sizeof what));
	if (rv == 0) {
		ps->p += aot ? 2 : 1;
		rv = aot ? open_array_table(ps, &k, at) : open_table(ps, &k, at);
	}
	key_release(&k);
	return rv != 0 ? rv : end_of_line(ps, "table header");
}

/* One ancestor of a dotted key.  Spec "Keys": "Dotted keys create and define
 * a table for each key part before the last one"; "Table": "using dotted keys
 * to redefine tables already defined in [table] form is not allowed";
 * "Inline Table": inline tables are self-contained.  A table so far only
 * named by headers becomes defined by the dotted key, so that a later
 * [header] for it is a redefinition. */
static int dotted_step(struct parser *ps, struct toml_value **t, struct key *k, size_t i,
		       struct pos at)
{
	struct toml_value *v = lookup(*t, &k->part[i]);
	int rv;

	if (v == NULL) {
		rv = new_table(ps, TAB_DOTTED, (*t)->depth + 1, k->part[i].pos, &v);
		if (rv == 0)
			rv = attach(ps, *t, k, i, v);
		if (rv != 0)
			return rv;
	} else if (v->type != TOML_TABLE || v->u.tab.kind == TAB_INLINE ||
		   v->u.tab.kind == TAB_HEADER) {
		return not_extensible(ps, at, k, i, v, true);
	} else {
		v->u.tab.kind = TAB_DOTTED;
	}
	*t = v;
	return 0;
}

static int parse_value(struct parser *ps, int depth, struct toml_value **out);

/* key = value, into table t (the current section or an inline table). */
static int parse_keyval(struct parser *ps, struct toml_value *t)
{
	struct pos at;
	struct key k = {0};
	struct toml_value *v = NULL, *old;
	char name[KEY_REPR_MAX + 8], what[40];
	int rv;

	skip_ws(ps);
	at = toml__here(ps);
	if ((rv = parse_key(ps, &k)) != 0)
		goto out;
	if (toml__peek(ps) != '=') {
		rv = toml__fail(ps, "expected '=' after key '%s', found %s",
				key_repr(&k, k.n - 1, name), describe_here(ps, what, sizeof what));
		goto out;
	}
	ps->p++;
	skip_ws(ps);
	for (size_t i = 0; i + 1 < k.n && rv == 0; i++)
		rv = dotted_step(ps, &t, &k, i, at);
	if (rv != 0)
		goto out;
	if ((old = lookup(t, &k.part[k.n - 1])) != NULL) {
		rv = toml__fail_at(ps, at, "duplicate key '%s' (first defined at line %d)",
				   key_repr(&k, k.n - 1, name), old->line);
		goto out;
	}
	if ((rv = parse_value(ps, t->depth + 1, &v)) != 0)
		goto out;
	v->line = at.line;
	v->col = at.col;
	rv = attach(ps, t, &k, k.n - 1, v);
out:
	key_release(&k);
	return rv;
}

/* ---------------------------------------------------------------- values */
/* Spec "Array": any values, separated by commas; whitespace, comments and
 * newlines anywhere between; a trailing comma allowed. */
static int parse_array(struct parser *ps, int depth, struct toml_value **out)
{
	struct pos open = toml__here(ps);
	struct toml_value *a, *v;
	char what[40];
	int rv;

	if ((rv = toml__new_node(ps, TOML_ARRAY, depth, open, &a)) != 0)
		return rv;
	for (ps->p++;;) {
		if ((rv = skip_blank(ps)) != 0)
			break;
		if (toml__peek(ps) == ']')
			break;
		if (toml__peek(ps) == TOML_EOF) {
			rv = toml__fail_at(ps, open, "unterminated array");
			break;
		}
		if ((rv = parse_value(ps, depth + 1, &v)) != 0)
			break;
		if ((rv = arr_add(ps, a, v)) != 0) {
			toml_free(v);
			break;
		}
		if ((rv = skip_blank(ps)) != 0)
			break;
		if (toml__peek(ps) == ',') {
			ps->p++;
		} else if (toml__peek(ps) == TOML_EOF) {
			rv = toml__fail_at(ps, open, "unterminated array");
			break;
		} else if (toml__peek(ps) != ']') {
			rv = toml__fail(ps, "expected ',' or ']' after array element, found %s",
					describe_here(ps, what, sizeof what));
			break;
		}
	}
	if (rv != 0) {
		toml_free(a);
		return rv;
	}
	ps->p++;
	*out = a;
	return 0;
}

/* Spec "Inline Table": { k = v, ... } on one line, no trailing comma;
 * "fully self-contained": nothing can be added once it is closed. */
static int parse_inline_table(struct parser *ps, int depth, struct toml_value **out)
{
	struct pos open = toml__here(ps);
	struct toml_value *t;
	char what[40];
	int rv;

	if ((rv = new_table(ps, TAB_INLINE, depth, open, &t)) != 0)
		return rv;
	ps->p++;
	skip_ws(ps);
	while (rv == 0 && toml__peek(ps) != '}') {
		if ((rv = parse_keyval(ps, t)) != 0)
			break;
		skip_ws(ps);
		if (toml__peek(ps) == ',') {
			ps->p++;
			skip_ws(ps);
			if (toml__peek(ps) == '}')
				rv = toml__fail(ps, "trailing comma not allowed in inline table");
		} else if (toml__peek(ps) != '}') {
			rv = toml__fail(ps, "expected ',' or '}' in inline table, found %s%s",
					describe_here(ps, what, sizeof what),
					toml__peek(ps) == '\n' || toml__peek(ps) == '\r'
						? " (inline tables must be on one line)"
						: "");
		}
	}
	if (rv != 0) {
		toml_free(t);
		return rv;
	}
	ps->p++;
	*out = t;
	return 0;
}

/* A value; depth is the level it would have in the tree. */
static int parse_value(struct parser *ps, int depth, struct toml_value **out)
{
	int c = toml__peek(ps);
	char what[40];

	*out = NULL;
	if (c == '"' || c == '\'')
		return parse_string(ps, out);
	if (c == '[')
		return parse_array(ps, depth, out);
	if (c == '{')
		return parse_inline_table(ps, depth, out);
	if (c == 't' || c == 'f')
		return toml__parse_bool(ps, out);
	if (toml__is_digit(c) && toml__is_digit(toml__peek_at(ps, 1)) &&
	    toml__is_digit(toml__peek_at(ps, 2)) && toml__is_digit(toml__peek_at(ps, 3)) &&
	    toml__peek_at(ps, 4) == '-')
		return toml__parse_datetime(ps, true, out);
	if (toml__is_digit(c) && toml__is_digit(toml__peek_at(ps, 1)) &&
	    toml__peek_at(ps, 2) == ':')
		return toml__parse_datetime(ps, false, out);
	if (toml__is_digit(c) || c == '+' || c == '-' || c == 'i' || c == 'n')
		return toml__parse_number(ps, out);
	if (toml__is_token(c))
		return toml__invalid_value(ps, ps->p, toml__here(ps), "value");
	return toml__fail(ps, "expected a value, found %s", describe_here(ps, what, sizeof what));
}

/* ------------------------------------------------------------- document */

/* Spec "Spec": a document is a sequence of lines, each empty, a comment, a
 * key/value pair or a table header. */
static int parse_document(struct parser *ps)
{
	int rv = 0;

	/* A byte order mark may open the document (toml-test agrees); it is
	 * never part of a key. */
	if (toml__looking_at(ps, "\xef\xbb\xbf"))
		ps->p += 3;
	while (rv == 0) {
		int c;

		skip_ws(ps);
		c = toml__peek(ps);
		if (c == TOML_EOF)
			break;
		if (c == '[')
			rv = parse_header(ps);
		else if (c == '#' || c == '\n' || c == '\r')
			rv = end_of_line(ps, "comment");
		else if ((rv = parse_keyval(ps, ps->cur)) == 0)
			rv = end_of_line(ps, "value");
	}
	return rv;
}

struct toml_value *toml_parse(const char *text, size_t len, const char *name, struct sh_err *err)
{
	struct parser ps = {0};
	struct pos start = {1, 1};
	int rv;

	ps.name = name != NULL ? name : "<input>";
	ps.err = err;
	if (text == NULL)
		text = "", len = 0;
	/* Lines and columns are ints. */
	if (len > INT_MAX) {
		sh_err_set(err, SH_ETOOBIG, "%s: input too large (%zu bytes)", ps.name, len);
		return NULL;
	}
	ps.p = ps.bol = text;
	ps.end = text + len;
	ps.line = 1;
	rv = check_utf8(&ps);
	if (rv == 0)
		rv = new_table(&ps, TAB_HEADER, 0, start, &ps.root);
	ps.cur = ps.root;
	if (rv == 0)
		rv = parse_document(&ps);
	sh_free(ps.sb.d);
	if (rv != 0) {
		toml_free(ps.root);
		return NULL;
	}
	return ps.root;
}

/* Reads all of fd, refusing more than limit bytes before allocating them. */
static int read_all(int fd, const char *path, size_t limit, char **out, size_t *len,
		    struct sh_err *err)
{
	struct stat st;
	size_t cap = 4096;
	char *buf;

	if (fstat(fd, &st) != 0)
		return sh_err_sys(err, errno, "%s", path);
	if (S_ISREG(st.st_mode) && (uintmax_t)st.st_size > limit)
		goto too_big;
	if (S_ISREG(st.st_mode))
		cap = (size_t)st.st_size + 1; /* + 1 to see the end without growing */
	if (cap > limit + 1)
		cap = limit + 1;
	if ((buf = sh_malloc(cap)) == NULL)
		return sh_err_set(err, SH_ENOMEM, "%s: out of memory", path);
	for (*len = 0;;) {
		ssize_t n;

		if (*len == cap && cap > limit) {
			sh_free(buf);
			goto too_big;
		}
		if (*len == cap) {
			size_t ncap = cap * 2 > limit + 1 ? limit + 1 : cap * 2;
			char *nbuf = sh_realloc(buf, ncap);

			if (nbuf == NULL) {
				sh_free(buf);
				return sh_err_set(err, SH_ENOMEM, "%s: out of memory", path);
			}
			buf = nbuf;
			cap = ncap;
		}
		n = read(fd, buf + *len, cap - *len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			sh_free(buf);
			return sh_err_sys(err, errno, "%s", path);
		}
		if (n == 0)
			break;
		*len += (size_t)n;
	}
	*out = buf;
	return 0;
too_big:
	return sh_err_set(err, SH_ETOOBIG, "%s: file too big (more than %zu bytes)", path, limit);
}

struct toml_value *toml_parse_file(const char *path, size_t max_bytes, struct sh_err *err)
{
	struct toml_value *root;
	size_t len = 0;
	char *buf = NULL;
	int fd, rv;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		sh_err_sys(err, errno, "%s", path);
		return NULL;
	}
	rv = read_all(fd, path, max_bytes < INT_MAX ? max_bytes : INT_MAX, &buf, &len, err);
	close(fd);
	if (rv != 0)
		return NULL;
	root = toml_parse(buf, len, path, err);
	sh_free(buf);
	return root;
}
