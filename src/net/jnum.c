/*
 * jnum: JSON numbers as strtod reads them (jnum.h).
 *
 * Three ways to the double, the first that applies:
 *  1. Exact (Clinger's fast path): the significant digits form w <= 2^53
 *     and the decimal exponent e is within ±22, so w and 10^|e| are exact
 *     doubles and one IEEE multiplication or division rounds the exact
 *     quotient once, as strtod does.
 *  2. Extended: w < 10^19 and |e| <= 27 — w and 10^|e| (5^27 < 2^64) are
 *     exact in x87's 64-bit significand, so r = w * 10^e there carries one
 *     rounding, within half a unit of its last bit.  Rounding r to double
 *     then agrees with rounding the exact value unless r's 11 bits below
 *     the double's lie within one unit of the halfway point (0x400): those
 *     go to 3.  Only where long double has a 64-bit significand.
 *  3. strtod_l in the "C" locale on a copy of the token.
 * The digit scan checks the grammar in the same pass.
 */
#include "build.h"

#include "net/jnum.h"

#include <errno.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct digits {
	uint64_t w;    /* the significant digits, leading zeros dropped */
	int e10;       /* value = w * 10^e10 */
	bool too_many; /* more significant digits than a uint64_t holds: w is not it */
	bool exp_cut;  /* an exponent of 100,000 or more: e10 is not it */
};

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Digits from p (up to end) into d; the end of the run. */
static const char *run(const char *p, const char *end, struct digits *d, int *count)
{
	const char *start = p;

	for (; p < end && is_digit(*p); p++) {
		if (d->w == 0 && *p == '0')
			continue;
		if (d->w > (UINT64_MAX - 9) / 10 || d->too_many) {
			d->too_many = true;
			continue;
		}
		d->w = d->w * 10 + (uint64_t)(*p - '0');
	}
	*count = (int)(p - start);
	return p;
}

/* The grammar of the token at s; its digits into d.  The end, or NULL. */
static const char *scan(const char *s, const char *end, struct digits *d, bool *integer)
{
	const char *p = s + (s < end && *s == '-');
	int n, nfrac = 0, exp = 0;
	bool eneg = false;

	if (p >= end || !is_digit(*p) || (*p == '0' && p + 1 < end && is_digit(p[1])))
		return NULL;
	p = run(p, end, d, &n);
	if ((*integer = (p >= end || (*p != '.' && *p != 'e' && *p != 'E'))))
		return p;
	if (*p == '.' && ((p = run(p + 1, end, d, &nfrac)), nfrac == 0))
		return NULL;
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			eneg = *p++ == '-';
		if (p >= end || !is_digit(*p))
			return NULL;
		for (; p < end && is_digit(*p); p++) {
			d->exp_cut |= exp >= 100000;
			exp = d->exp_cut ? exp : exp * 10 + (*p - '0');
		}
	}
	/* nfrac counts every fraction digit, each a place of w; when digits
	 * were dropped or the exponent cut, e10 is not used */
	d->e10 = (eneg ? -exp : exp) - nfrac;
	return p;
}

static const double pow10_d[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
				 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
				 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* 1. Clinger's fast path; false when it does not apply. */
static bool exact(const struct digits *d, double *out)
{
#if FLT_EVAL_METHOD == 0
	if (d->w > (UINT64_C(1) << 53) || d->e10 < -22 || d->e10 > 22)
		return false;
	*out = d->e10 < 0 ? (double)d->w / pow10_d[-d->e10] : (double)d->w * pow10_d[d->e10];
	return true;
#else
	(void)d, (void)out;
	return false;
#endif
}

/* 2. The extended product, when its rounding to double is not in doubt. */
static bool extended(const struct digits *d, double *out)
{
#if LDBL_MANT_DIG == 64
	/* exact: 10^k = 5^k * 2^k and 5^27 < 2^64 */
	static const long double pow10_l[] = {1e0L,  1e1L,  1e2L,  1e3L,  1e4L,  1e5L,  1e6L,
					      1e7L,  1e8L,  1e9L,  1e10L, 1e11L, 1e12L, 1e13L,
					      1e14L, 1e15L, 1e16L, 1e17L, 1e18L, 1e19L, 1e20L,
					      1e21L, 1e22L, 1e23L, 1e24L, 1e25L, 1e26L, 1e27L};
	long double r;
	uint64_t bits;
	int ex, k = d->e10 < 0 ? -d->e10 : d->e10;
	unsigned lo;

	if (k > 27)
		return false;
	r = d->e10 < 0 ? (long double)d->w / pow10_l[k] : (long double)d->w * pow10_l[k];
	bits = (uint64_t)ldexpl(frexpl(r, &ex), 64);
	lo = (unsigned)(bits & 0x7ff);
	if (lo >= 0x3ff && lo <= 0x401)
		return false;
	*out = (double)r;
	return true;
#else
	(void)d, (void)out;
	return false;
#endif
}

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void c_locale_init(void)
{
	c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

/* 3. strtod on a copy, in the "C" locale (jansson's is the process's, with
 * its decimal point swapped in: the same value). */
static int slow(const char *s, size_t len /* <= JNUM_MAX_LEN */, double *out)
{
	char buf[JNUM_MAX_LEN + 1];
	double v;

	memcpy(buf, s, len);
	buf[len] = '\0';
	pthread_once(&c_locale_once, c_locale_init);
	errno = 0;
	v = c_locale != (locale_t)0 ? strtod_l(buf, NULL, c_locale) : strtod(buf, NULL);
	if (errno == ERANGE && isinf(v))
		return JNUM_OVERFLOW;
	*out = v;
	return JNUM_OK;
}

int jnum_read(const char *s, const char *end, struct jnum *n)
{
	struct digits d = {0};
	const char *p = scan(s, end, &d, &n->integer);

	if (p == NULL)
		return JNUM_SYNTAX;
	n->len = (size_t)(p - s);
	if (n->len > JNUM_MAX_LEN)
		return JNUM_LONG;
	if (d.w == 0 && !d.too_many) {
		n->value = *s == '-' ? -0.0 : 0.0;
		return JNUM_OK;
	}
	if (!d.too_many && !d.exp_cut && (exact(&d, &n->value) || extended(&d, &n->value))) {
		if (*s == '-')
			n->value = -n->value;
		return JNUM_OK;
	}
	return slow(s, n->len, &n->value);
}
