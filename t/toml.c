/*
 * Tests of util/toml: the API on a document with every type, positions, key
 * order, error messages, limits, reading files, and that allocation failures
 * are clean.  Spec conformance is t/toml_conformance.c's job.
 */
#include "build.h"

#include "tap.h"
#include "util/alloc.h"
#include "util/toml.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Line numbers are given on the right; the tests below refer to them. */
static const char rich[] = "# every type\n"                               /* 1 */
			   "title = \"TOML \\u00e9 \\U0001F600\"\n"       /* 2 */
			   "lit = 'C:\\path'\n"                           /* 3 */
			   "ml = \"\"\"\nline1 \\\n   line2\n\"\"\"\n"    /* 4-7 */
			   "int = -9_223_372_036_854_775_808\n"           /* 8 */
			   "hex = 0xDEAD_beef\n"                          /* 9 */
			   "oct = 0o755\n"                                /* 10 */
			   "bin = 0b1010\n"                               /* 11 */
			   "flt = 6.626e-34\n"                            /* 12 */
			   "inf = -inf\n"                                 /* 13 */
			   "nan = nan\n"                                  /* 14 */
			   "yes = true\n"                                 /* 15 */
			   "odt = 1979-05-27T07:32:00.9999999999-07:30\n" /* 16 */
			   "ldt = 1979-05-27 07:32:00\n"                  /* 17 */
			   "ld = 1979-05-27\n"                            /* 18 */
			   "lt = 07:32:00.5\n"                            /* 19 */
			   "arr = [ 1, 'two', [3.0], {x = 4} ]\n"         /* 20 */
			   "inl = { a.b = 1, c = [] }\n"                  /* 21 */
			   "\n"                                           /* 22 */
			   "[server]\n"                                   /* 23 */
			   "  host.name = \"db\"  # comment\n"            /* 24 */
			   "[[peer]]\n"                                   /* 25 */
			   "id = 1\n"                                     /* 26 */
			   "[[peer]]\n"                                   /* 27 */
			   "id = 2\n";                                    /* 28 */

static struct toml_value *parse(const char *text, struct sh_err *err)
{
	return toml_parse(text, strlen(text), "test.toml", err);
}

/* Value at a dotted path of bare keys, NULL when absent. */
static const struct toml_value *at(const struct toml_value *t, const char *path)
{
	char buf[256], *save = NULL;

	snprintf(buf, sizeof buf, "%s", path);
	for (char *k = strtok_r(buf, ".", &save); k != NULL && t != NULL;
	     k = strtok_r(NULL, ".", &save))
		t = toml_table_get(t, k);
	return t;
}

static const char *formatted(const struct toml_value *v)
{
	static char buf[64];

	if (v == NULL || toml_datetime_format(v, buf, sizeof buf) < 0)
		return "(none)";
	return buf;
}

static void test_scalars(const struct toml_value *root)
{
	const struct toml_value *v;
	size_t len;

	is_int(toml_type(root), TOML_TABLE, "root is a table");
	is_int(toml_table_size(root), 19, "root has 19 keys");
	is_str(toml_string(at(root, "title"), &len), "TOML \xc3\xa9 \xf0\x9f\x98\x80",
	       "basic string with \\u and \\U escapes");
	is_int(len, 12, "and its length in bytes");
	is_str(toml_string(at(root, "lit"), NULL), "C:\\path", "literal string keeps backslash");
	is_str(toml_string(at(root, "ml"), NULL), "line1 line2\n",
	       "multi-line string: first newline trimmed, line-ending backslash");
	is_int(toml_int(at(root, "int")), INT64_MIN, "INT64_MIN with underscores");
	is_int(toml_int(at(root, "hex")), 0xdeadbeef, "hexadecimal");
	is_int(toml_int(at(root, "oct")), 0755, "octal");
	is_int(toml_int(at(root, "bin")), 10, "binary");
	is_double(toml_float(at(root, "flt")), 6.626e-34, 1e-48, "float with exponent");
	v = at(root, "inf");
	ok(isinf(toml_float(v)) && toml_float(v) < 0, "-inf");
	ok(isnan(toml_float(at(root, "nan"))), "nan");
	ok(toml_bool(at(root, "yes")), "boolean");
	is_str(toml_type_name(toml_type(at(root, "yes"))), "boolean", "type name boolean");
}

static void test_datetimes(const struct toml_value *root)
{
	const struct toml_value *v = at(root, "odt");
	const struct toml_datetime *d = toml_datetime(v);
	char small[8];

	is_int(toml_type(v), TOML_DATETIME, "offset date-time");
	ok(d->year == 1979 && d->month == 5 && d->day == 27 && d->hour == 7 && d->minute == 32 &&
		   d->second == 0,
	   "its fields");
	is_int(d->nanosecond, 999999999, "fraction truncated to nanoseconds");
	is_int(d->frac_digits, 9, "at most 9 fraction digits kept");
	is_int(d->offset_minutes, -450, "offset in minutes");
	is_str(formatted(v), "1979-05-27T07:32:00.999999999-07:30", "formatted");
	is_int(toml_datetime_format(v, small, sizeof small), -1, "format: -1 when buf too small");
	is_int(toml_datetime_format(v, small, 0), -1, "format: -1 for size 0");
	v = at(root, "ldt");
	is_int(toml_type(v), TOML_DATETIME_LOCAL, "local date-time (space separator)");
	is_str(formatted(v), "1979-05-27T07:32:00", "formatted with T");
	v = at(root, "ld");
	is_int(toml_type(v), TOML_DATE_LOCAL, "local date");
	is_str(formatted(v), "1979-05-27", "formatted");
	ok(toml_datetime(v)->hour == 0 && toml_datetime(v)->frac_digits == 0, "time fields zero");
	v = at(root, "lt");
	is_int(toml_type(v), TOML_TIME_LOCAL, "local time");
	is_str(formatted(v), "07:32:00.5", "formatted with the digits as written");
	is_int(toml_datetime(v)->nanosecond, 500000000, "0.5 s in nanoseconds");
	is_str(toml_type_name(TOML_TIME_LOCAL), "local time", "type name local time");
}

static void test_containers(const struct toml_value *root)
{
	const struct toml_value *arr = at(root, "arr"), *peer = at(root, "peer");

	is_int(toml_array_size(arr), 4, "mixed-type array");
	is_int(toml_type(toml_array_at(arr, 1)), TOML_STRING, "element 1 is a string");
	is_int(toml_type(toml_array_at(toml_array_at(arr, 2), 0)), TOML_FLOAT, "nested array");
	is_int(toml_int(toml_table_get(toml_array_at(arr, 3), "x")), 4, "inline table in array");
	ok(toml_array_at(arr, 4) == NULL, "array_at past the end is NULL");
	is_int(toml_int(at(root, "inl.a.b")), 1, "dotted key inside inline table");
	is_int(toml_array_size(at(root, "inl.c")), 0, "empty array");
	is_str(toml_string(at(root, "server.host.name"), NULL), "db", "dotted key in a section");
	is_int(toml_array_size(peer), 2, "array of tables has 2 elements");
	is_int(toml_int(toml_table_get(toml_array_at(peer, 1), "id")), 2, "second element");
	ok(toml_table_get(root, "nope") == NULL, "absent key is NULL");
	ok(at(root, "nope.deeper") == NULL && toml_table_size(NULL) == 0 &&
		   toml_array_size(root) == 0 && toml_table_key(root, 99, NULL) == NULL,
	   "accessors tolerate NULL, other types, indexes past the end");
}

static void test_positions(const struct toml_value *root)
{
	const struct toml_value *arr = at(root, "arr"), *peer = at(root, "peer");

	ok(toml_line(root) == 1 && toml_column(root) == 1, "root at 1:1");
	ok(toml_line(at(root, "title")) == 2 && toml_column(at(root, "title")) == 1,
	   "key/value at its key: 2:1");
	ok(toml_line(at(root, "int")) == 8, "lines counted across a multi-line string");
	ok(toml_line(toml_array_at(arr, 0)) == 20 && toml_column(toml_array_at(arr, 0)) == 9,
	   "array element at its first byte: 20:9");
	is_int(toml_column(toml_array_at(arr, 1)), 12, "second element at column 12");
	ok(toml_line(at(root, "server")) == 23 && toml_column(at(root, "server")) == 1,
	   "[server] at its header 23:1");
	ok(toml_line(at(root, "server.host")) == 24 && toml_column(at(root, "server.host")) == 3,
	   "implicit table from dotted key at its key part 24:3");
	is_int(toml_column(at(root, "server.host.name")), 3, "dotted key/value at the key's start");
	is_int(toml_column(at(root, "inl.a")), 9, "implicit table in inline table at 21:9");
	ok(toml_line(peer) == 25 && toml_line(toml_array_at(peer, 1)) == 27,
	   "[[peer]] array at its first header, elements at theirs");
}

static void test_positions_implicit(void)
{
	struct sh_err err = {0};
	struct toml_value *root = parse("[a.b.c]\n\n[ a ]\n[x.y]\n", &err);

	ok(root != NULL, "implicit tables parse: %s", err.msg);
	ok(toml_line(at(root, "a")) == 3 && toml_column(at(root, "a")) == 1,
	   "implicit table later defined by [a]: at that header");
	ok(toml_line(at(root, "a.b")) == 1 && toml_column(at(root, "a.b")) == 4,
	   "implicit table never defined: where first named (1:4)");
	ok(toml_line(at(root, "x")) == 4 && toml_column(at(root, "x")) == 2, "x at 4:2");
	toml_free(root);
}

static void test_key_order(void)
{
	struct sh_err err = {0};
	char doc[8192], *p = doc;
	struct toml_value *root;
	const char *k;
	bool order = true, found = true;

	/* Enough keys for the hash index to kick in, in a non-sorted order. */
	for (int i = 0; i < 300; i++)
		p += sprintf(p, "k%d = %d\n", (i * 7) % 300, i);
	root = parse(doc, &err);
	ok(root != NULL && toml_table_size(root) == 300, "300 keys parse: %s", err.msg);
	for (int i = 0; root != NULL && i < 300; i++) {
		char want[16];
		const struct toml_value *v;

		snprintf(want, sizeof want, "k%d", (i * 7) % 300);
		k = toml_table_key(root, (size_t)i, NULL);
		order = order && k != NULL && strcmp(k, want) == 0;
		v = toml_table_get(root, want);
		found = found && v != NULL && toml_int(v) == i;
	}
	ok(order, "keys kept in definition order");
	ok(found, "every key found by lookup");
	toml_free(root);

	root = parse("z = 1\n\"\" = 2\na.c = 3\na.b = 4\n", &err);
	ok(root != NULL && strcmp(toml_table_key(root, 0, NULL), "z") == 0 &&
		   strcmp(toml_table_key(root, 1, NULL), "") == 0 &&
		   strcmp(toml_table_key(root, 2, NULL), "a") == 0 &&
		   strcmp(toml_table_key(at(root, "a"), 0, NULL), "c") == 0,
	   "order kept for quoted empty and dotted keys");
	toml_free(root);
}

/* Parses text, which must fail with SH_EINVAL and a message containing want. */
static void rejects(const char *text, const char *want, const char *what)
{
	struct sh_err err = {0};
	struct toml_value *root = parse(text, &err);

	ok(root == NULL && err.code == SH_EINVAL, "%s: rejected with SH_EINVAL", what);
	like(err.msg, want, "%s: message", what);
	toml_free(root);
}

static void test_errors(void)
{
	rejects("a = 1\nfoo\n", "test.toml:2:4: expected '=' after key 'foo', found end of line",
		"missing '='");
	rejects("a = 1\nb = 2\na = 3\n",
		"test.toml:3:1: duplicate key 'a' (first defined at line 1)", "duplicate key");
	rejects("x.\"a b\" = 1\nx.'a b' = 2\n", "2:1: duplicate key 'x.\"a b\"'",
		"duplicate quoted key shown quoted");
	rejects("s = \"ab\\qc\"\n", "test.toml:1:8: invalid escape '\\q' in string", "bad escape");
	rejects("a = 1\ns = \"abc\n", "test.toml:2:5: unterminated string", "unterminated string");
	rejects("s = '''abc\n\n", "test.toml:1:5: unterminated string", "unterminated ''' string");
	rejects("n = 9223372036854775808\n", "test.toml:1:5: integer out of range",
		"integer overflow");
	rejects("n = -9_223_372_036_854_775_809\n", "1:5: integer out of range",
		"integer underflow");
	rejects("n = 0x8000_0000_0000_0000\n", "1:5: integer out of range", "hex overflow");
	rejects("n = 012\n", "1:5: leading zeros not allowed", "leading zero");
	rejects("f = 1e400\n", "1:5: float out of range", "float overflow");
	rejects("[a]\nx = 1\n[b]\n[a]\n", "test.toml:4:1: table 'a' already defined (line 1)",
		"table redefinition");
	rejects("[a]\nb.c = 1\n[a.b]\n", "3:1: table 'a.b' already defined by dotted keys (line 2)",
		"header after dotted keys");
	rejects("[a.b]\n[a]\nb.c = 1\n",
		"3:1: table 'b' defined by a header (line 1) cannot be "
		"extended by dotted keys",
		"dotted keys into a [table]");
	rejects("a = {b = 1}\na.c = 2\n", "2:1: inline table 'a' (line 1) cannot be extended",
		"inline table extended");
	rejects("a = [1]\n[[a]]\n", "2:1: key 'a' already defined as an array (line 1)",
		"static array extended by [[a]]");
	rejects("a = \"x\xff\"\n", "test.toml:1:7: invalid UTF-8: invalid byte (byte 0xff)",
		"bad UTF-8 byte");
	rejects("# ok\n# \xc0\xaf\n", "2:3: invalid UTF-8: overlong encoding", "overlong UTF-8");
	rejects("a = '\xed\xa0\x80'\n", "1:6: invalid UTF-8: encoded surrogate", "UTF-8 surrogate");
	rejects("a = '\xf4\x90\x80\x80'\n", "1:6: invalid UTF-8: code point above U+10FFFF",
		"UTF-8 beyond U+10FFFF");
	rejects("a = 1\r\nb = 2\r", "2:6: carriage return not followed by line feed", "bare CR");
	rejects("a = \"\x01\"\n", "1:6: control character U+0001 not allowed in string",
		"control character in string");
	rejects("a = {x = 1,}\n", "1:12: trailing comma not allowed in inline table",
		"inline table trailing comma");
	rejects("a = 1 b = 2\n", "1:7: expected end of line after value, found 'b'",
		"two pairs on a line");
	rejects("t = 07:32\n", "1:5: invalid date-time '07:32'", "time without seconds");
	rejects("d = 2023-02-29\n", "1:5: invalid date: day 29 out of range for 2023-02",
		"not a leap year");
}

static void test_depth(void)
{
	struct sh_err err = {0};
	size_t n = 100000, len;
	char *doc = malloc(2 * n + 16);
	struct toml_value *root;

	len = (size_t)sprintf(doc, "a = ");
	memset(doc + len, '[', TOML_MAX_DEPTH);
	memset(doc + len + TOML_MAX_DEPTH, ']', TOML_MAX_DEPTH);
	root = toml_parse(doc, len + 2 * TOML_MAX_DEPTH, "deep", &err);
	ok(root != NULL, "arrays nested TOML_MAX_DEPTH deep parse: %s", err.msg);
	toml_free(root);

	memset(doc + len, '[', TOML_MAX_DEPTH + 1);
	memset(doc + len + TOML_MAX_DEPTH + 1, ']', TOML_MAX_DEPTH + 1);
	root = toml_parse(doc, len + 2 * TOML_MAX_DEPTH + 2, "deep", &err);
	ok(root == NULL && err.code == SH_EINVAL, "one level more is an error");
	like(err.msg, "deep:1:133: nesting deeper than 128 levels", "which says so");

	memset(doc + len, '[', n);
	root = toml_parse(doc, len + n, "deep", &err);
	ok(root == NULL && err.code == SH_EINVAL, "100000 '[' rejected, no crash");

	len = (size_t)sprintf(doc, "x = ");
	for (size_t i = 0; i < 20000; i++)
		len += (size_t)sprintf(doc + len, "{a=");
	root = toml_parse(doc, len, "deep", &err);
	ok(root == NULL, "20000 nested inline tables rejected");
	like(err.msg, "nesting deeper than 128 levels", "with the depth message");

	len = 0;
	for (size_t i = 0; i < 200; i++)
		len += (size_t)sprintf(doc + len, "k.");
	len += (size_t)sprintf(doc + len, "k = 1\n");
	root = toml_parse(doc, len, "deep", &err);
	ok(root == NULL, "a dotted key 201 parts deep is rejected too: %s", err.msg);
	doc[0] = '[';
	memcpy(doc + len - 5, "]\n", 3);
	root = toml_parse(doc, strlen(doc), "deep", &err);
	ok(root == NULL, "and so is a header that deep: %s", err.msg);
	free(doc);
}

static void test_nul_and_crlf(void)
{
	struct sh_err err = {0};
	struct toml_value *root = parse("s = \"a\\u0000b\"\n\"\\u0000\" = 1\n", &err);
	size_t len = 0;
	const char *s;

	ok(root != NULL, "\\u0000 parses: %s", err.msg);
	s = toml_string(at(root, "s"), &len);
	ok(len == 3 && memcmp(s, "a\0b", 4) == 0, "embedded NUL: length 3, NUL-terminated too");
	s = toml_table_key(root, 1, &len);
	ok(len == 1 && s[0] == '\0', "a key that is just NUL has length 1");
	toml_free(root);

	root = parse("\xef\xbb\xbf"
		     "a = 1\r\nb = \"\"\"x\r\ny\\\r\n  z\"\"\"\r\nc = 2\r\n",
		     &err);
	ok(root != NULL, "BOM and CRLF: %s", err.msg);
	is_str(root ? toml_string(at(root, "b"), NULL) : NULL, "x\nyz",
	       "CRLF in multi-line string becomes LF; backslash-CRLF trims");
	is_int(root ? toml_line(at(root, "c")) : 0, 5, "CRLF counts as one line");
	toml_free(root);

	root = toml_parse(NULL, 0, NULL, &err);
	ok(root != NULL && toml_table_size(root) == 0, "NULL, 0 is an empty document");
	toml_free(root);
}

/* toml_parse must not read past len: each text is copied into a buffer of
 * exactly its length (no terminator), where AddressSanitizer sees overreads. */
static void test_no_overread(void)
{
	static const char *const texts[] = {
		"a = 1",  "a = tru",  "a = \"abc",      "a = '''x''",     "a = \"\"\"x\"\"",
		"[a",     "[[a]",     "a = 0x",         "a = 1979-05-27", "a = 1979-05-27T07:3",
		"a = [1", "a = {b=1", "a = 1e",         "a = \"\\u12",    "a = \"x\\",
		"a.",     "a = inf",  "# comment",      "a = 07:32:00.",  "a = \"\xc3",
		"a = +",  "\xef\xbb", "a = \"\"\"x\\ ", "a = 1\r",
	};
	bool all = true;

	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
		size_t n = strlen(texts[i]);
		char *copy = malloc(n ? n : 1);
		struct sh_err err = {0};
		struct toml_value *root;

		memcpy(copy, texts[i], n);
		root = toml_parse(copy, n, "cut", &err);
		all = all && (root != NULL || err.code == SH_EINVAL);
		toml_free(root);
		free(copy);
	}
	ok(all, "unterminated buffers: parsed or rejected, never read past len");
}

static void test_alloc_failures(void)
{
	struct sh_err err;
	struct toml_value *root = NULL;
	bool clean = true;
	long n;

	for (n = 0; n < 100000 && root == NULL; n++) {
		sh_err_clear(&err);
		sh_alloc_fail_after(n);
		root = parse(rich, &err);
		sh_alloc_fail_after(-1);
		if (root == NULL &&
		    (err.code != SH_ENOMEM || strstr(err.msg, "out of memory") == NULL)) {
			clean = false;
			diag("allocation %ld failed: code %d, message '%s'", n, err.code, err.msg);
		}
	}
	ok(clean, "every injected allocation failure gives SH_ENOMEM");
	ok(root != NULL, "and parsing succeeds once %ld allocations are allowed", n - 1);
	ok(root != NULL && toml_int(at(root, "int")) == INT64_MIN &&
		   toml_array_size(at(root, "peer")) == 2,
	   "with the full tree");
	toml_free(root);
	diag("fault injection: %ld runs", n);
}

/* Writes text to a temporary file; the caller unlinks it. */
static void write_temp(char *path, size_t size, const char *text)
{
	const char *dir = getenv("TMPDIR");
	int fd;

	snprintf(path, size, "%s/toml-test-XXXXXX", dir != NULL && dir[0] ? dir : "/tmp");
	fd = mkstemp(path);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		bail_out("cannot write %s", path);
	close(fd);
}

static void test_files(void)
{
	struct sh_err err = {0};
	char path[4096], want[4200];
	struct toml_value *root;
	bool clean = true;

	write_temp(path, sizeof path, rich);
	root = toml_parse_file(path, 1 << 20, &err);
	ok(root != NULL && toml_table_size(root) == 19, "parse_file reads the document: %s",
	   err.msg);
	toml_free(root);

	root = toml_parse_file(path, 100, &err);
	ok(root == NULL && err.code == SH_ETOOBIG, "a file over max_bytes is refused");
	snprintf(want, sizeof want, "%s: file too big (more than 100 bytes)", path);
	is_str(err.msg, want, "naming the path and the limit");

	for (long n = 0; n < 200; n++) {
		sh_alloc_fail_after(n);
		root = toml_parse_file(path, 1 << 20, &err);
		sh_alloc_fail_after(-1);
		clean = clean && (root != NULL || err.code == SH_ENOMEM);
		toml_free(root);
	}
	ok(clean, "parse_file under allocation failures: success or SH_ENOMEM");
	unlink(path);

	root = toml_parse_file(path, 1 << 20, &err);
	ok(root == NULL && err.code == SH_ENOTFOUND, "a missing file: SH_ENOTFOUND");
	like(err.msg, path, "naming the path");

	write_temp(path, sizeof path, "a = 1\nb = \n");
	root = toml_parse_file(path, 1 << 20, &err);
	snprintf(want, sizeof want, "%s:2:5: expected a value", path);
	like(err.msg, want, "parse errors in a file are prefixed with path:line:column");
	unlink(path);

	root = toml_parse_file("/dev/null", 10, &err);
	ok(root != NULL && toml_table_size(root) == 0, "a non-regular empty file: %s", err.msg);
	toml_free(root);
}

int main(void)
{
	struct sh_err err = {0};
	struct toml_value *root = parse(rich, &err);

	if (root == NULL)
		bail_out("the rich document does not parse: %s", err.msg);
	test_scalars(root);
	test_datetimes(root);
	test_containers(root);
	test_positions(root);
	toml_free(root);
	test_positions_implicit();
	test_key_order();
	test_errors();
	test_depth();
	test_nul_and_crlf();
	test_no_overread();
	test_alloc_failures();
	test_files();
	return done_testing();
}
