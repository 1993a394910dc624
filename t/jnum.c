/* Tests of net/jnum: every number read bit for bit as strtod reads it —
 * random decimals of every length and exponent, the shortest forms of
 * random doubles and floats (what JavaScript and Python print), decimals a
 * hair from the halfway point between two doubles (the extended path's
 * doubtful cases) — and the grammar: what JSON refuses is refused, the
 * token ends where JSON's does. */
#include "build.h"

#include "net/jnum.h"
#include "tap.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

static uint64_t seed = 0x6a6e756d;

static uint64_t next(void)
{
	seed ^= seed << 13;
	seed ^= seed >> 7;
	seed ^= seed << 17;
	return seed;
}

/* Whether text reads as strtod reads it; the first few misses printed. */
static bool same(const char *text, int *misses)
{
	struct jnum n;
	double want = strtod(text, NULL);
	int rv = jnum_read(text, text + strlen(text), &n);

	if (rv == JNUM_OK && n.len == strlen(text) && memcmp(&n.value, &want, sizeof want) == 0)
		return true;
	if (rv == JNUM_OVERFLOW && isinf(want))
		return true;
	if ((*misses)++ < 5)
		diag("'%s': jnum %d %.17g (len %zu), strtod %.17g", text, rv, n.value, n.len, want);
	return false;
}

static void digits(char *p, int n, bool lead)
{
	for (int i = 0; i < n; i++)
		p[i] = (char)('0' + (i == 0 && lead ? 1 + next() % 9 : next() % 10));
	p[n] = '\0';
}

/* Random decimals: sign, 1-22 integer digits, 0-25 fraction digits, an
 * exponent of -40..40 or none. */
static void random_decimals(void)
{
	int misses = 0, n = 400000;
	char buf[128];

	for (int i = 0; i < n; i++) {
		char *p = buf;
		int id = 1 + (int)(next() % 22), fd = (int)(next() % 26);

		if (next() % 2)
			*p++ = '-';
		if (next() % 3 == 0) {
			*p++ = '0';
		} else {
			digits(p, id, true);
			p += id;
		}
		if (fd > 0) {
			*p++ = '.';
			digits(p, fd, false);
			p += fd;
		}
		if (next() % 2)
			p += sprintf(p, "e%d", (int)(next() % 81) - 40);
		*p = '\0';
		same(buf, &misses);
	}
	is_int(misses, 0, "%d random decimals read as strtod reads them", n);
}

/* The shortest forms of random doubles and floats, and %.17g / %.9g. */
static void printed(void)
{
	int misses = 0, n = 0;
	char buf[64];

	for (int i = 0; i < 200000; i++) {
		uint64_t bits = next();
		double d, scale = ldexp(1.0, (int)(next() % 60) - 40);
		float f = (float)((double)(next() % 2000001) / 1e6 - 1.0) * (float)scale;

		memcpy(&d, &bits, sizeof d);
		if (!isfinite(d))
			continue;
		snprintf(buf, sizeof buf, "%.17g", d);
		same(buf, &misses), n++;
		snprintf(buf, sizeof buf, "%.9g", (double)f);
		same(buf, &misses), n++;
		snprintf(buf, sizeof buf, "%.17g", (double)f); /* float32 as JS prints it */
		same(buf, &misses), n++;
		snprintf(buf, sizeof buf, "%.6f", (double)f); /* rounded, as by a client */
		same(buf, &misses), n++;
	}
	is_int(misses, 0, "%d printed doubles and floats read as strtod reads them", n);
}

/* Decimals within a few units of the 20th digit of the midpoint between
 * two neighbouring doubles: where rounding the extended product is in
 * doubt, or nearly. */
static void near_halfway(void)
{
	int misses = 0, n = 0;
	char buf[64];

	for (int i = 0; i < 100000; i++) {
		/* 1e-6..1e6: 17-19 digits keep the decimal exponent within ±27 */
		double d = ldexp((double)(next() >> 11), -53 + (int)(next() % 41) - 20);
		long double mid = ((long double)d + (long double)nextafter(d, INFINITY)) / 2;

		for (int prec = 16; prec <= 21; prec++) {
			snprintf(buf, sizeof buf, "%.*Le", prec, mid);
			same(buf, &misses), n++;
		}
	}
	is_int(misses, 0, "%d decimals near the halfway point of two doubles", n);
}

/* A token beyond JNUM_MAX_LEN is not read; an exponent cut at 100,000
 * never reaches a fast path (review: "0." + 99,999 zeros + "1e1000000"
 * read as 1.0, where strtod overflows). */
static void long_tokens(void)
{
	static char t[JNUM_MAX_LEN + 64];
	struct jnum n;
	size_t len;

	memset(t, '0', sizeof t);
	memcpy(t, "0.", 2);
	memcpy(t + sizeof t - 10, "1e1000000", 9);
	len = sizeof t - 1;
	ok(jnum_read(t, t + len, &n) == JNUM_LONG, "a token of %zu bytes is not read", len);
	len = (size_t)snprintf(t, sizeof t, "0.%0*d1e100000000001", 380, 0);
	ok(jnum_read(t, t + len, &n) == JNUM_OVERFLOW,
	   "an exponent of 12 digits: overflow (%zu bytes)", len);
	len = (size_t)snprintf(t, sizeof t, "1e-00000000000000000000000000001");
	ok(jnum_read(t, t + len, &n) == JNUM_OK && n.value == 0.1,
	   "leading zeros of an exponent are not cut");
	len = (size_t)snprintf(t, sizeof t, "123e-1000000000");
	ok(jnum_read(t, t + len, &n) == JNUM_OK && n.value == 0.0, "an exponent far below: 0");
}

static void grammar(void)
{
	static const char *const bad[] = {"",   "-",   "+1",  ".5",  "01", "-01", "1.",  "1.e5",
					  "1e", "1e+", "1E-", "-.5", "x",  "- 1", "--1", NULL};
	static const struct {
		const char *text;
		size_t len;
		bool integer;
		double value;
	} good[] = {
		{"0", 1, true, 0.0},
		{"-0", 2, true, -0.0},
		{"0.5,", 3, false, 0.5},
		{"12]", 2, true, 12.0},
		{"1e5 ", 3, false, 1e5},
		{"1E+2}", 4, false, 100.0},
		{"-2.5e-3x", 7, false, -2.5e-3},
		{"0e999999", 8, false, 0.0},
		{"1e-999999", 9, false, 0.0},
		{"123456789012345678901234567890", 30, true, 1.2345678901234568e29},
	};
	struct jnum n;
	int wrong = 0;

	for (size_t i = 0; bad[i] != NULL; i++)
		if (jnum_read(bad[i], bad[i] + strlen(bad[i]), &n) != JNUM_SYNTAX && wrong++ < 5)
			diag("'%s' was read", bad[i]);
	is_int(wrong, 0, "what JSON's grammar refuses is refused");
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		const char *t = good[i].text;
		int rv = jnum_read(t, t + strlen(t), &n);

		ok(rv == JNUM_OK && n.len == good[i].len && n.integer == good[i].integer &&
			   memcmp(&n.value, &good[i].value, sizeof n.value) == 0,
		   "'%s': %.17g, %zu bytes, %s", t, n.value, n.len, n.integer ? "integer" : "real");
	}
	ok(jnum_read("1e400", "1e400" + 5, &n) == JNUM_OVERFLOW, "1e400 is an overflow");
	ok(jnum_read("-1e400", "-1e400" + 6, &n) == JNUM_OVERFLOW, "-1e400 is an overflow");
	ok(jnum_read("12", "12" + 1, &n) == JNUM_OK && n.len == 1 && n.value == 1.0,
	   "the text ends where end says");
	long_tokens();
}

int main(void)
{
	grammar();
	random_decimals();
	printed();
	near_halfway();
	done_testing();
}
