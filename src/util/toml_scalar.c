/*
 * toml_scalar: the TOML parser's booleans, numbers and date-times (toml.c
 * reads the document and calls these at a value; toml_impl.h).  Each reads
 * its token from the cursor and leaves the cursor after it; a malformed
 * one is an error that quotes it.
 */
#include "build.h"

#include "util/toml_impl.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* The error for a malformed scalar that started at `start`: quotes it up to
 * the end of the token at or after the cursor. */
int toml__invalid_value(struct parser *ps, const char *start, struct pos at, const char *what)
{
	const char *e = ps->p > start ? ps->p : start;
	int n;

	while (e < ps->end && toml__is_token((unsigned char)*e))
		e++;
	n = (int)(e - start) > 60 ? 60 : (int)(e - start);
	return toml__fail_at(ps, at, "invalid %s '%.*s%s'", what, n, start,
			     e - start > 60 ? "..." : "");
}

int toml__parse_bool(struct parser *ps, struct toml_value **out)
{
	struct pos at = toml__here(ps);
	const char *start = ps->p;
	bool b = toml__looking_at(ps, "true");
	int rv;

	if (!b && !toml__looking_at(ps, "false"))
		return toml__invalid_value(ps, start, at, "value");
	ps->p += b ? 4 : 5;
	if (toml__is_token(toml__peek(ps))) {
		ps->p = start;
		return toml__invalid_value(ps, start, at, "value");
	}
	if ((rv = toml__new_node(ps, TOML_BOOL, 0, at, out)) == 0)
		(*out)->u.b = b;
	return rv;
}

/* Reads exactly n digits. */
static bool read_digits(struct parser *ps, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++) {
		if (!toml__is_digit(toml__peek_at(ps, (size_t)i)))
			return false;
		*v = *v * 10 + (ps->p[i] - '0');
	}
	ps->p += n;
	return true;
}

static bool read_char(struct parser *ps, int c)
{
	if (toml__peek(ps) != c)
		return false;
	ps->p++;
	return true;
}

/* RFC 3339 partial-time: HH:MM:SS[.fraction]; TOML 1.0 requires seconds. */
static bool read_time(struct parser *ps, struct toml_datetime *dt)
{
	if (!read_digits(ps, 2, &dt->hour) || !read_char(ps, ':') ||
	    !read_digits(ps, 2, &dt->minute) || !read_char(ps, ':') ||
	    !read_digits(ps, 2, &dt->second))
		return false;
	if (!read_char(ps, '.'))
		return true;
	if (!toml__is_digit(toml__peek(ps)))
		return false;
	/* Spec "Offset Date-Time": precision beyond what is kept is truncated. */
	for (; toml__is_digit(toml__peek(ps)); ps->p++) {
		if (dt->frac_digits < 9) {
			dt->nanosecond = dt->nanosecond * 10 + (uint32_t)(*ps->p - '0');
			dt->frac_digits++;
		}
	}
	for (int i = dt->frac_digits; i < 9; i++)
		dt->nanosecond *= 10;
	return true;
}

/* Z or +HH:MM / -HH:MM. */
static bool read_offset(struct parser *ps, struct toml_datetime *dt, bool *has_offset)
{
	int c = toml__peek(ps), h, m;

	*has_offset = c == 'Z' || c == 'z' || c == '+' || c == '-';
	if (!*has_offset)
		return true;
	ps->p++;
	if (c == 'Z' || c == 'z')
		return true;
	if (!read_digits(ps, 2, &h) || !read_char(ps, ':') || !read_digits(ps, 2, &m))
		return false;
	if (h > 23 || m > 59)
		return false;
	dt->offset_minutes = (c == '-' ? -1 : 1) * (h * 60 + m);
	return true;
}

static int days_in_month(int year, int month)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);

	return month == 2 && leap ? 29 : days[month - 1];
}

/* RFC 3339 section 5.6 ranges (leap second 60 allowed). */
static int check_datetime(struct parser *ps, const struct toml_datetime *dt, enum toml_type type,
			  struct pos at)
{
	if (type != TOML_TIME_LOCAL) {
		if (dt->month < 1 || dt->month > 12)
			return toml__fail_at(ps, at, "invalid date: month %02d out of range",
					     dt->month);
		if (dt->day < 1 || dt->day > days_in_month(dt->year, dt->month))
			return toml__fail_at(ps, at,
					     "invalid date: day %02d out of range for %04d-%02d",
					     dt->day, dt->year, dt->month);
	}
	if (type == TOML_DATE_LOCAL)
		return 0;
	if (dt->hour > 23)
		return toml__fail_at(ps, at, "invalid time: hour %02d out of range", dt->hour);
	if (dt->minute > 59)
		return toml__fail_at(ps, at, "invalid time: minute %02d out of range", dt->minute);
	if (dt->second > 60)
		return toml__fail_at(ps, at, "invalid time: second %02d out of range", dt->second);
	return 0;
}

/* Spec "Offset Date-Time" ... "Local Time"; the cursor is on the first digit
 * of YYYY-MM-DD (has_date) or of HH:MM:SS.  A space may separate date and
 * time (RFC 3339 section 5.6 note), but only when a time follows. */
int toml__parse_datetime(struct parser *ps, bool has_date, struct toml_value **out)
{
	struct pos at = toml__here(ps);
	const char *start = ps->p;
	struct toml_datetime dt = {0};
	enum toml_type type = has_date ? TOML_DATE_LOCAL : TOML_TIME_LOCAL;
	bool ok = true, has_offset = false;
	int c, rv;

	if (has_date) {
		ok = read_digits(ps, 4, &dt.year) && read_char(ps, '-') &&
		     read_digits(ps, 2, &dt.month) && read_char(ps, '-') &&
		     read_digits(ps, 2, &dt.day);
		c = toml__peek(ps);
		if (ok &&
		    (c == 'T' || c == 't' || (c == ' ' && toml__is_digit(toml__peek_at(ps, 1))))) {
			ps->p++;
			type = TOML_DATETIME_LOCAL;
		}
	}
	if (ok && type != TOML_DATE_LOCAL)
		ok = read_time(ps, &dt);
	if (ok && type == TOML_DATETIME_LOCAL && (ok = read_offset(ps, &dt, &has_offset)) &&
	    has_offset)
		type = TOML_DATETIME;
	if (!ok || toml__is_token(toml__peek(ps)))
		return toml__invalid_value(ps, start, at, "date-time");
	if ((rv = check_datetime(ps, &dt, type, at)) != 0 ||
	    (rv = toml__new_node(ps, type, 0, at, out)) != 0)
		return rv;
	(*out)->u.dt = dt;
	return 0;
}

/* Length of DIGIT *( DIGIT / "_" DIGIT ) at s[i..n) in base, or 0 when there
 * is none or an underscore is not "surrounded by at least one digit on each
 * side" (spec "Integer"). */
static size_t digit_run(const char *s, size_t n, size_t i, int base)
{
	size_t j = i;

	if (j >= n || toml__digit_value((unsigned char)s[j]) >= base)
		return 0;
	while (j < n) {
		if (toml__digit_value((unsigned char)s[j]) < base)
			j++;
		else if (s[j] == '_' && j + 1 < n &&
			 toml__digit_value((unsigned char)s[j + 1]) < base)
			j++;
		else if (s[j] == '_')
			return 0;
		else
			break;
	}
	return j - i;
}

/* Accumulates the digits of s[0..n) (underscores skipped) into *v, failing
 * when the magnitude exceeds limit. */
static bool to_u64(const char *s, size_t n, int base, uint64_t limit, uint64_t *v)
{
	*v = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t d;

		if (s[i] == '_')
			continue;
		d = (uint64_t)toml__digit_value((unsigned char)s[i]);
		if (*v > (limit - d) / (uint64_t)base)
			return false;
		*v = *v * (uint64_t)base + d;
	}
	return true;
}

static int new_int(struct parser *ps, struct pos at, int64_t i, struct toml_value **out)
{
	int rv = toml__new_node(ps, TOML_INTEGER, 0, at, out);

	if (rv == 0)
		(*out)->u.i = i;
	return rv;
}

static int new_float(struct parser *ps, struct pos at, double f, struct toml_value **out)
{
	int rv = toml__new_node(ps, TOML_FLOAT, 0, at, out);

	if (rv == 0)
		(*out)->u.f = f;
	return rv;
}

/* 0x, 0o, 0b: spec "Integer": no sign, no uppercase prefix, non-negative
 * and within int64. */
static int parse_radix(struct parser *ps, const char *s, size_t n, struct pos at,
		       struct toml_value **out)
{
	int base = s[1] == 'x' ? 16 : s[1] == 'o' ? 8 : 2;
	size_t run = digit_run(s, n, 2, base);
	uint64_t v;

	if (run == 0 || run + 2 != n)
		return toml__invalid_value(ps, s, at, "integer");
	if (!to_u64(s + 2, run, base, INT64_MAX, &v))
		return toml__fail_at(ps, at, "integer out of range: '%.*s'", (int)n, s);
	ps->p = s + n;
	return new_int(ps, at, (int64_t)v, out);
}

/* Converts a validated decimal float without the C library's notion of a
 * decimal point (which follows the locale): "1_2.5e3" becomes "125e2". */
static int to_double(struct parser *ps, const char *s, size_t n, size_t frac, size_t exp, double *f)
{
	long long e = 0, nfrac = 0;
	char tail[32];
	int rv = 0;

	ps->sb.n = 0;
	for (size_t i = 0; i < n && (exp == 0 || i < exp - 1) && rv == 0; i++) {
		if (toml__is_digit((unsigned char)s[i]))
			rv = toml__buf_add(ps, &s[i], 1);
		nfrac += frac != 0 && i >= frac && toml__is_digit((unsigned char)s[i]);
	}
	for (size_t i = exp; exp != 0 && i < n; i++) {
		if (toml__is_digit((unsigned char)s[i]) && e < 100000)
			e = e * 10 + (s[i] - '0');
	}
	if (exp != 0 && s[exp] == '-')
		e = -e;
	snprintf(tail, sizeof tail, "e%lld", e - nfrac);
	if (rv != 0 || (rv = toml__buf_add(ps, tail, strlen(tail) + 1)) != 0)
		return rv;
	*f = strtod(ps->sb.d, NULL);
	return 0;
}

/* Decimal integers and floats.  Spec "Integer": "Leading zeros are not
 * allowed"; "Float": an integer part, then a fractional part, an exponent
 * or both, each made of digits. */
static int parse_decimal(struct parser *ps, const char *s, size_t n, struct pos at,
			 struct toml_value **out)
{
	size_t i = s[0] == '+' || s[0] == '-', run = digit_run(s, n, i, 10);
	size_t q = i + run, frac = 0, exp = 0;
	uint64_t mag;
	double f;
	int rv;

	if (run == 0)
		return toml__invalid_value(ps, s, at, "number");
	if (s[i] == '0' && run > 1)
		return toml__fail_at(ps, at, "leading zeros not allowed in '%.*s'", (int)n, s);
	if (q < n && s[q] == '.') {
		frac = q + 1;
		if ((run = digit_run(s, n, frac, 10)) == 0)
			return toml__invalid_value(ps, s, at, "float");
		q = frac + run;
	}
	if (q < n && (s[q] == 'e' || s[q] == 'E')) {
		exp = ++q;
		q += q < n && (s[q] == '+' || s[q] == '-');
		if ((run = digit_run(s, n, q, 10)) == 0)
			return toml__invalid_value(ps, s, at, "float");
		q += run;
	}
	if (q != n)
		return toml__invalid_value(ps, s, at, "number");
	ps->p = s + n;
	if (frac == 0 && exp == 0) {
		if (!to_u64(s + i, n - i, 10, (uint64_t)INT64_MAX + (s[0] == '-'), &mag))
			return toml__fail_at(ps, at, "integer out of range: '%.*s'", (int)n, s);
		return new_int(ps, at, s[0] == '-' ? (int64_t)(0 - mag) : (int64_t)mag, out);
	}
	if ((rv = to_double(ps, s + i, n - i, frac ? frac - i : 0, exp ? exp - i : 0, &f)) != 0)
		return rv;
	if (isinf(f))
		return toml__fail_at(ps, at, "float out of range: '%.*s'", (int)n, s);
	return new_float(ps, at, s[0] == '-' ? -f : f, out);
}

/* Integers, floats and the special floats inf and nan (spec "Float"). */
int toml__parse_number(struct parser *ps, struct toml_value **out)
{
	struct pos at = toml__here(ps);
	const char *s = ps->p, *e = ps->p;
	size_t n, i;

	while (e < ps->end && toml__is_token((unsigned char)*e))
		e++;
	n = (size_t)(e - s);
	i = s[0] == '+' || s[0] == '-';
	if (n - i == 3 && (memcmp(s + i, "inf", 3) == 0 || memcmp(s + i, "nan", 3) == 0)) {
		double f = s[i] == 'i' ? INFINITY : NAN;

		ps->p = e;
		return new_float(ps, at, s[0] == '-' ? -f : f, out);
	}
	if (n - i >= 2 && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'o' || s[i + 1] == 'b')) {
		if (i != 0)
			return toml__fail_at(ps, at,
					     "sign not allowed on '%.*s': only decimal integers "
					     "may be signed",
					     (int)n, s);
		return parse_radix(ps, s, n, at, out);
	}
	return parse_decimal(ps, s, n, at, out);
}
