/*
 * toml_conformance: util/toml against the toml-test suite (toml-test/ABOUT.md).
 *
 * Walks tests/files-toml-1.0.0 under $TOML_TEST_DIR (else
 * $top_srcdir/../shared/toml-test).  Every valid case must parse and, rendered
 * in toml-test's tagged JSON with jansson, equal the expected JSON: objects
 * and arrays structurally, strings and booleans exactly, integers and floats
 * as numbers, date-times field by field (as toml-test compares them as times,
 * not as text: ".6Z" equals ".600Z").  Every invalid case must be rejected.
 * Missing data is a failure, never a skip.
 *
 * jansson cannot load NUL in object keys, so before decoding the expected JSON
 * its \u0000 escapes become U+F0000 (a private-use code point no case uses),
 * and our rendering maps NUL bytes the same way.
 */
#include "build.h"

#include "tap.h"
#include "util/alloc.h"
#include "util/toml.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NUL_STANDIN "\xf3\xb0\x80\x80" /* U+F0000 */
#define MAX_CASE    (1 << 20)

struct dt {
	int year, month, day, hour, minute, second, offset;
	long nanos;
};

/* Reads a whole file; NULL with errno on failure. */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (f == NULL)
		return NULL;
	buf = malloc(MAX_CASE + 1);
	n = buf ? fread(buf, 1, MAX_CASE, f) : 0;
	fclose(f);
	if (buf == NULL)
		return NULL;
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* A copy of s[0..n) with NUL bytes replaced by NUL_STANDIN. */
static char *stand_in(const char *s, size_t n, size_t *outlen)
{
	char *d = malloc(4 * n + 1), *p = d;

	for (size_t i = 0; d != NULL && i < n; i++) {
		if (s[i] == '\0') {
			memcpy(p, NUL_STANDIN, 4);
			p += 4;
		} else {
			*p++ = s[i];
		}
	}
	if (d != NULL)
		*p = '\0';
	*outlen = (size_t)(p - d);
	return d;
}

/* A copy of JSON text with the escape \u0000 rewritten as \udb80\udc00
 * (U+F0000); NULL when out of memory. */
static char *json_stand_in(const char *text, size_t *len)
{
	static const char repl[] = "\\udb80\\udc00";
	char *out = malloc(2 * *len + 1), *o = out;

	for (size_t i = 0; out != NULL && i < *len; i++) {
		if (text[i] == '\\' && i + 5 < *len && memcmp(text + i + 1, "u0000", 5) == 0) {
			memcpy(o, repl, sizeof repl - 1);
			o += sizeof repl - 1;
			i += 5;
		} else if (text[i] == '\\' && i + 1 < *len) {
			*o++ = text[i++];
			*o++ = text[i];
		} else {
			*o++ = text[i];
		}
	}
	*len = (size_t)(o - out);
	return out;
}

static json_t *render(const struct toml_value *v);

static json_t *render_scalar(const char *type, const char *value, size_t len)
{
	size_t n;
	char *s = stand_in(value, len, &n);
	json_t *j = json_pack("{s:s, s:s%}", "type", type, "value", s, n);

	free(s);
	return j;
}

static const char *tag(enum toml_type t)
{
	switch (t) {
	case TOML_STRING: return "string";
	case TOML_INTEGER: return "integer";
	case TOML_FLOAT: return "float";
	case TOML_BOOL: return "bool";
	case TOML_DATETIME: return "datetime";
	case TOML_DATETIME_LOCAL: return "datetime-local";
	case TOML_DATE_LOCAL: return "date-local";
	case TOML_TIME_LOCAL: return "time-local";
	default: return "?";
	}
}

static json_t *render_table(const struct toml_value *v)
{
	json_t *o = json_object();

	for (size_t i = 0; i < toml_table_size(v); i++) {
		size_t klen, n;
		const char *k = toml_table_key(v, i, &klen);
		char *key = stand_in(k, klen, &n);

		json_object_setn_new(o, key, n, render(toml_table_value(v, i)));
		free(key);
	}
	return o;
}

/* toml-test's tagged JSON: tables are objects, arrays arrays, scalars
 * {"type": T, "value": S}. */
static json_t *render(const struct toml_value *v)
{
	char buf[64];
	const char *s;
	size_t len;
	json_t *a;

	switch (toml_type(v)) {
	case TOML_TABLE: return render_table(v);
	case TOML_ARRAY:
		a = json_array();
		for (size_t i = 0; i < toml_array_size(v); i++)
			json_array_append_new(a, render(toml_array_at(v, i)));
		return a;
	case TOML_STRING: s = toml_string(v, &len); return render_scalar("string", s, len);
	case TOML_INTEGER: snprintf(buf, sizeof buf, "%" PRId64, toml_int(v)); break;
	case TOML_FLOAT:
		if (isnan(toml_float(v)))
			snprintf(buf, sizeof buf, "nan");
		else
			snprintf(buf, sizeof buf, "%.17g", toml_float(v));
		break;
	case TOML_BOOL: snprintf(buf, sizeof buf, "%s", toml_bool(v) ? "true" : "false"); break;
	default:
		if (toml_datetime_format(v, buf, sizeof buf) < 0)
			snprintf(buf, sizeof buf, "(unformattable)");
		break;
	}
	return render_scalar(tag(toml_type(v)), buf, strlen(buf));
}

/* Parses RFC 3339 text (any of the four TOML forms); false if malformed. */
static bool parse_rfc3339(const char *s, struct dt *d)
{
	int n = 0, oh = 0, om = 0;
	char sign;

	memset(d, 0, sizeof *d);
	if (sscanf(s, "%4d-%2d-%2d%n", &d->year, &d->month, &d->day, &n) == 3) {
		s += n;
		if (*s == '\0')
			return true;
		if (*s != 'T' && *s != 't' && *s != ' ')
			return false;
		s++;
	}
	if (sscanf(s, "%2d:%2d:%2d%n", &d->hour, &d->minute, &d->second, &n) != 3)
		return false;
	s += n;
	if (*s == '.') {
		long scale = 100000000;

		for (s++; *s >= '0' && *s <= '9'; s++, scale /= 10)
			d->nanos += scale * (*s - '0');
	}
	if (*s == 'Z' || *s == 'z')
		return s[1] == '\0';
	if (*s == '\0')
		return true;
	if (sscanf(s, "%c%2d:%2d%n", &sign, &oh, &om, &n) != 3 || s[n] != '\0')
		return false;
	d->offset = (sign == '-' ? -1 : 1) * (oh * 60 + om);
	return true;
}

static bool same_number(const char *type, const char *want, const char *got)
{
	if (strcmp(type, "integer") == 0)
		return strtoll(want, NULL, 10) == strtoll(got, NULL, 10);
	double w = strtod(want, NULL), g = strtod(got, NULL);

	if (isnan(w) || isnan(g))
		return isnan(w) && isnan(g);
	return w == g && signbit(w) == signbit(g);
}

static bool same_scalar(json_t *want, json_t *got)
{
	const char *type = json_string_value(json_object_get(want, "type"));
	json_t *wv = json_object_get(want, "value"), *gv = json_object_get(got, "value");
	const char *ws = json_string_value(wv), *gs = json_string_value(gv);
	struct dt wd, gd;

	if (type == NULL || ws == NULL || gs == NULL ||
	    !json_equal(json_object_get(want, "type"), json_object_get(got, "type")))
		return false;
	if (strcmp(type, "integer") == 0 || strcmp(type, "float") == 0)
		return same_number(type, ws, gs);
	if (strstr(type, "date") != NULL || strstr(type, "time") != NULL)
		return parse_rfc3339(ws, &wd) && parse_rfc3339(gs, &gd) &&
		       memcmp(&wd, &gd, sizeof wd) == 0;
	return json_equal(wv, gv);
}

static bool is_scalar(json_t *j)
{
	return json_is_object(j) && json_object_size(j) == 2 &&
	       json_is_string(json_object_get(j, "type")) &&
	       json_is_string(json_object_get(j, "value"));
}

/* Structural comparison; on mismatch writes the JSON path into where. */
static bool same(json_t *want, json_t *got, char *where, size_t size)
{
	size_t n = strlen(where);

	if (is_scalar(want))
		return is_scalar(got) && same_scalar(want, got);
	if (json_is_array(want)) {
		if (!json_is_array(got) || json_array_size(got) != json_array_size(want))
			return false;
		for (size_t i = 0; i < json_array_size(want); i++) {
			snprintf(where + n, size - n, "[%zu]", i);
			if (!same(json_array_get(want, i), json_array_get(got, i), where, size))
				return false;
		}
	} else {
		if (!json_is_object(want) || !json_is_object(got) ||
		    json_object_size(got) != json_object_size(want))
			return false;
		for (void *it = json_object_iter(want); it != NULL;
		     it = json_object_iter_next(want, it)) {
			const char *key = json_object_iter_key(it);

			snprintf(where + n, size - n, ".%s", key);
			if (!same(json_object_iter_value(it),
				  json_object_getn(got, key, json_object_iter_key_len(it)), where,
				  size))
				return false;
		}
	}
	where[n] = '\0';
	return true;
}

static void diag_json(const char *label, json_t *j)
{
	char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);

	diag("%s: %.1500s%s", label, s ? s : "(null)", s && strlen(s) > 1500 ? "..." : "");
	free(s);
}

static bool run_valid(const char *dir, const char *rel)
{
	char path[4096], where[1024] = "";
	struct sh_err err = {0};
	struct toml_value *root;
	json_error_t jerr;
	json_t *want = NULL, *got = NULL;
	size_t len, jlen;
	char *text, *jtext = NULL;
	bool pass = false;

	if (snprintf(path, sizeof path, "%s/tests/%s", dir, rel) >= (int)sizeof path)
		bail_out("path too long: %s/tests/%s", dir, rel);
	text = slurp(path, &len);
	root = text ? toml_parse(text, len, rel, &err) : NULL;
	snprintf(path + strlen(path) - 5, 6, ".json");
	if (text != NULL && root != NULL && (jtext = slurp(path, &jlen)) != NULL) {
		char *fixed = json_stand_in(jtext, &jlen);

		want = fixed ? json_loadb(fixed, jlen, JSON_ALLOW_NUL, &jerr) : NULL;
		free(fixed);
		got = render(root);
		pass = want != NULL && same(want, got, where, sizeof where);
	}
	ok(pass, "%s", rel);
	if (text == NULL || jtext == NULL)
		diag("cannot read %s: %s", path, strerror(errno));
	else if (root == NULL)
		diag("rejected: %s", err.msg);
	else if (want == NULL)
		diag("bad expected JSON %s: %s", path, jerr.text);
	else if (!pass) {
		diag("first difference at %s", where[0] ? where : "(top)");
		diag_json("expected", want);
		diag_json("     got", got);
	}
	json_decref(want);
	json_decref(got);
	toml_free(root);
	free(text);
	free(jtext);
	return pass;
}

static bool run_invalid(const char *dir, const char *rel)
{
	char path[4096];
	struct sh_err err = {0};
	struct toml_value *root = NULL;
	size_t len;
	char *text;

	if (snprintf(path, sizeof path, "%s/tests/%s", dir, rel) >= (int)sizeof path)
		bail_out("path too long: %s/tests/%s", dir, rel);
	text = slurp(path, &len);
	if (text != NULL)
		root = toml_parse(text, len, rel, &err);
	ok(text != NULL && root == NULL && err.code == SH_EINVAL, "%s", rel);
	if (text == NULL)
		diag("cannot read %s: %s", path, strerror(errno));
	else if (root != NULL)
		diag("accepted, but toml-test says it is invalid");
	else if (err.code != SH_EINVAL)
		diag("rejected with code %d, not SH_EINVAL: %s", err.code, err.msg);
	toml_free(root);
	free(text);
	return root == NULL && text != NULL;
}

static const char *data_dir(char *buf, size_t size)
{
	const char *dir = getenv("TOML_TEST_DIR"), *top = getenv("top_srcdir");

	if (dir != NULL && dir[0] != '\0')
		return dir;
	snprintf(buf, size, "%s/../shared/toml-test", top != NULL ? top : ".");
	return buf;
}

int main(void)
{
	char dirbuf[4096], list[4096], line[1024];
	const char *dir = data_dir(dirbuf, sizeof dirbuf);
	int valid = 0, valid_ok = 0, invalid = 0, invalid_ok = 0;
	FILE *f;

	if (snprintf(list, sizeof list, "%s/tests/files-toml-1.0.0", dir) >= (int)sizeof list)
		bail_out("TOML_TEST_DIR too long: %s", dir);
	f = fopen(list, "r");
	if (f == NULL) {
		fail("toml-test data found");
		diag("cannot open %s: %s", list, strerror(errno));
		diag("set TOML_TEST_DIR to the toml-test directory (the one holding "
		     "tests/files-toml-1.0.0), or configure --with-toml-test=DIR");
		return done_testing();
	}
	while (fgets(line, sizeof line, f) != NULL) {
		size_t n = strcspn(line, "\r\n");

		line[n] = '\0';
		if (n < 5 || strcmp(line + n - 5, ".toml") != 0)
			continue;
		if (strncmp(line, "valid/", 6) == 0)
			valid++, valid_ok += run_valid(dir, line);
		else if (strncmp(line, "invalid/", 8) == 0)
			invalid++, invalid_ok += run_invalid(dir, line);
	}
	fclose(f);
	ok(valid > 0 && invalid > 0, "the list %s names valid and invalid cases", list);
	diag("toml-test: valid %d/%d accepted and equal, invalid %d/%d rejected", valid_ok, valid,
	     invalid_ok, invalid);
	return done_testing();
}
