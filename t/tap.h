/*
 * tap.h: a small Test Anything Protocol (TAP 13) producer for shoal's tests.
 *
 * Header-only; include it in exactly one translation unit of a test program.
 * Output goes to stdout (test points) and stdout as "# " comments (diag), as
 * automake's tap-driver.sh expects.  Every failed check prints where it failed
 * and what was expected and received.
 *
 *   plan(n)               announce n tests (or use done_testing() at the end)
 *   ok(cond, fmt, ...)    one test point
 *   is_int(got, want, ...)   isnt_int(got, bad, ...)
 *   is_double(got, want, tol, ...)
 *   is_str(got, want, ...)   isnt_str(got, bad, ...)
 *   like(got, substring, ...)     the string contains the substring
 *   diag(fmt, ...)        a comment line
 *   skip(n, why)          n test points reported as skipped, with the reason
 *   skip_all(why)         the whole program is skipped (reason required)
 *   bail_out(fmt, ...)    abort the whole test run
 *   done_testing()        print the plan if none was given; exit status = failures
 *
 * Not thread-safe: call from one thread.
 */
#ifndef SHOAL_T_TAP_H
#define SHOAL_T_TAP_H

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_planned = -1;
static int tap_run;
static int tap_failed;

static void tap_vprint(const char *fmt, va_list ap)
{
	if (fmt != NULL && fmt[0] != '\0') {
		fputs(" - ", stdout);
		vprintf(fmt, ap);
	}
}

static void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2), unused));
static void diag(const char *fmt, ...)
{
	va_list ap;
	char buf[4096];
	char *line, *save = NULL;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	for (line = strtok_r(buf, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save))
		printf("# %s\n", line);
	fflush(stdout);
}

static void plan(int n) __attribute__((unused));
static void plan(int n)
{
	tap_planned = n;
	printf("1..%d\n", n);
	fflush(stdout);
}

static int tap_okv(int pass, const char *file, int line, const char *fmt, va_list ap)
{
	tap_run++;
	if (!pass)
		tap_failed++;
	printf("%sok %d", pass ? "" : "not ", tap_run);
	tap_vprint(fmt, ap);
	putchar('\n');
	if (!pass)
		diag("  Failed test at %s line %d.", file, line);
	fflush(stdout);
	return pass;
}

static int tap_ok(int pass, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5), unused));
static int tap_ok(int pass, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap_okv(pass, file, line, fmt, ap);
	va_end(ap);
	return pass;
}

static int tap_is_int(intmax_t got, intmax_t want, int equal, const char *file, int line,
		      const char *fmt, ...) __attribute__((format(printf, 6, 7), unused));
static int tap_is_int(intmax_t got, intmax_t want, int equal, const char *file, int line,
		      const char *fmt, ...)
{
	va_list ap;
	int pass = equal ? got == want : got != want;

	va_start(ap, fmt);
	tap_okv(pass, file, line, fmt, ap);
	va_end(ap);
	if (!pass && equal)
		diag("         got: %jd\n    expected: %jd", got, want);
	else if (!pass)
		diag("         got: %jd\n    expected: anything else", got);
	return pass;
}

static int tap_is_double(double got, double want, double tol, const char *file, int line,
			 const char *fmt, ...) __attribute__((format(printf, 6, 7), unused));
static int tap_is_double(double got, double want, double tol, const char *file, int line,
			 const char *fmt, ...)
{
	va_list ap;
	int pass;

	if (isnan(want))
		pass = isnan(got);
	else if (isinf(want))
		pass = got == want;
	else
		pass = fabs(got - want) <= tol;
	va_start(ap, fmt);
	tap_okv(pass, file, line, fmt, ap);
	va_end(ap);
	if (!pass)
		diag("         got: %.17g\n    expected: %.17g (tolerance %g)", got, want, tol);
	return pass;
}

static int tap_is_str(const char *got, const char *want, int equal, const char *file, int line,
		      const char *fmt, ...) __attribute__((format(printf, 6, 7), unused));
static int tap_is_str(const char *got, const char *want, int equal, const char *file, int line,
		      const char *fmt, ...)
{
	va_list ap;
	int same = (got == NULL || want == NULL) ? got == want : strcmp(got, want) == 0;
	int pass = equal ? same : !same;

	va_start(ap, fmt);
	tap_okv(pass, file, line, fmt, ap);
	va_end(ap);
	if (!pass)
		diag("         got: %s%s%s\n    expected: %s%s%s%s", got ? "'" : "",
		     got ? got : "NULL", got ? "'" : "", equal ? "" : "anything but ",
		     want ? "'" : "", want ? want : "NULL", want ? "'" : "");
	return pass;
}

static int tap_like(const char *got, const char *sub, const char *file, int line, const char *fmt,
		    ...) __attribute__((format(printf, 5, 6), unused));
static int tap_like(const char *got, const char *sub, const char *file, int line, const char *fmt,
		    ...)
{
	va_list ap;
	int pass = got != NULL && strstr(got, sub) != NULL;

	va_start(ap, fmt);
	tap_okv(pass, file, line, fmt, ap);
	va_end(ap);
	if (!pass)
		diag("                  got: '%s'\n    expected to contain: '%s'",
		     got ? got : "NULL", sub);
	return pass;
}

static void skip(int n, const char *why) __attribute__((unused));
static void skip(int n, const char *why)
{
	for (int i = 0; i < n; i++) {
		tap_run++;
		printf("ok %d # SKIP %s\n", tap_run, why);
	}
	fflush(stdout);
}

static void skip_all(const char *why) __attribute__((noreturn, unused));
static void skip_all(const char *why)
{
	printf("1..0 # SKIP %s\n", why);
	fflush(stdout);
	exit(0);
}

static void bail_out(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn, unused));
static void bail_out(const char *fmt, ...)
{
	va_list ap;

	fputs("Bail out! ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	exit(255);
}

static int done_testing(void) __attribute__((unused));
static int done_testing(void)
{
	if (tap_planned < 0)
		printf("1..%d\n", tap_run);
	else if (tap_planned != tap_run)
		diag("Looks like you planned %d tests but ran %d.", tap_planned, tap_run);
	if (tap_failed > 0)
		diag("Looks like you failed %d test%s of %d.", tap_failed,
		     tap_failed == 1 ? "" : "s", tap_run);
	fflush(stdout);
	return tap_failed > 254 ? 254 : tap_failed;
}

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(got, want, ...)                                                                     \
	tap_is_int((intmax_t)(got), (intmax_t)(want), 1, __FILE__, __LINE__, __VA_ARGS__)
#define isnt_int(got, bad, ...)                                                                    \
	tap_is_int((intmax_t)(got), (intmax_t)(bad), 0, __FILE__, __LINE__, __VA_ARGS__)
#define is_double(got, want, tol, ...)                                                             \
	tap_is_double((got), (want), (tol), __FILE__, __LINE__, __VA_ARGS__)
#define is_str(got, want, ...)  tap_is_str((got), (want), 1, __FILE__, __LINE__, __VA_ARGS__)
#define isnt_str(got, bad, ...) tap_is_str((got), (bad), 0, __FILE__, __LINE__, __VA_ARGS__)
#define like(got, sub, ...)     tap_like((got), (sub), __FILE__, __LINE__, __VA_ARGS__)
#define pass(...)               ok(1, __VA_ARGS__)
#define fail(...)               ok(0, __VA_ARGS__)

#endif
