/*
 * toml_conformance: util/toml against TOML 1.0 conformance cases, in the
 * format of the toml-test suite (t/toml/README.md).
 *
 * Two corpora:
 *  - t/toml/ under $top_srcdir, written here from the TOML 1.0 spec: always
 *    run, every file of valid/ and invalid/ (a missing or empty corpus fails);
 *    each invalid case opens with "# error: TEXT" and must be rejected with a
 *    message containing TEXT, so that it cannot pass for a reason nobody meant;
 *  - the external toml-test suite, in addition, only when named:
 *    tests/files-toml-1.0.0 under $TOML_TEST_DIR (configure
 *    --with-toml-test=DIR sets it).  Nothing outside the source tree is
 *    looked at otherwise: when it is not named (or TOML_TEST_DIR=no,
 *    configure --without-toml-test), one skipped test point says so; it
 *    never decides whether the suite passes (STYLE.md "Tests").
 *
 * Every valid case must parse and, rendered in toml-test's tagged JSON with
 * jansson, equal the expected JSON: objects and arrays structurally, strings
 * and booleans exactly, integers and floats as numbers, date-times field by
 * field (as toml-test compares them as times, not as text: ".6Z" equals
 * ".600Z").  Every invalid case must be rejected with SH_EINVAL.
 *
 * jansson cannot load NUL in object keys, so before decoding the expected JSON
 * its \u0000 escapes become U+F0000 (a private-use code point no case uses),
 * and our rendering maps NUL bytes the same way.
 */
#include "build.h"

#include "tap.h"
#include "util/alloc.h"
#include "util/toml.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* One corpus: valid/ and invalid/ cases under base, named label/REL in the
 * test points. */
struct corpus {
	const char *label;
	char base[4096];
	bool error_lines; /* invalid cases open with "# error: TEXT" */
	int valid, valid_ok, invalid, invalid_ok;
};

static void case_path(const struct corpus *c, const char *rel, char *path, size_t size)
{
	if (snprintf(path, size, "%s/%s", c->base, rel) >= (int)size)
		bail_out("path too long: %s/%s", c->base, rel);
}

static void run_valid(struct corpus *c, const char *rel)
{
	char path[4200], where[1024] = "";
	struct sh_err err = {0};
	struct toml_value *root;
	json_error_t jerr;
	json_t *want = NULL, *got = NULL;
	size_t len, jlen;
	char *text, *jtext = NULL;
	bool pass = false;

	case_path(c, rel, path, sizeof path);
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
	ok(pass, "%s/%s", c->label, rel);
	if (text == NULL || (root != NULL && jtext == NULL))
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
	c->valid++;
	c->valid_ok += pass;
	json_decref(want);
	json_decref(got);
	toml_free(root);
	free(text);
	free(jtext);
}

/* The TEXT of a first line "# error: TEXT", copied into buf; NULL if none. */
static const char *error_line(const char *text, char *buf, size_t size)
{
	static const char tag[] = "# error: ";
	size_t n;

	if (strncmp(text, tag, sizeof tag - 1) != 0)
		return NULL;
	text += sizeof tag - 1;
	n = strcspn(text, "\r\n");
	if (n == 0 || n >= size)
		return NULL;
	memcpy(buf, text, n);
	buf[n] = '\0';
	return buf;
}

static void run_invalid(struct corpus *c, const char *rel)
{
	char path[4200], expect[256];
	struct sh_err err = {0};
	struct toml_value *root = NULL;
	const char *want = NULL;
	size_t len;
	char *text;
	bool pass;

	case_path(c, rel, path, sizeof path);
	text = slurp(path, &len);
	if (text != NULL) {
		root = toml_parse(text, len, rel, &err);
		want = c->error_lines ? error_line(text, expect, sizeof expect) : NULL;
	}
	pass = text != NULL && root == NULL && err.code == SH_EINVAL &&
	       (!c->error_lines || (want != NULL && strstr(err.msg, want) != NULL));
	ok(pass, "%s/%s", c->label, rel);
	if (text == NULL)
		diag("cannot read %s: %s", path, strerror(errno));
	else if (root != NULL)
		diag("accepted, but the case says it is invalid");
	else if (err.code != SH_EINVAL)
		diag("rejected with code %d, not SH_EINVAL: %s", err.code, err.msg);
	else if (c->error_lines && want == NULL)
		diag("the case does not open with \"# error: TEXT\" (t/toml/README.md)");
	else if (!pass)
		diag("rejected for another reason:\n     got: %s\nexpected: %s", err.msg, want);
	c->invalid++;
	c->invalid_ok += pass;
	toml_free(root);
	free(text);
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* One file of an in-tree kind directory: a case, or the expected JSON of a
 * valid case, which must have its .toml. */
static void visit(struct corpus *c, const char *kind, const char *name)
{
	char rel[1024], path[5300];

	if (snprintf(rel, sizeof rel, "%s/%s", kind, name) >= (int)sizeof rel)
		bail_out("name too long: %s/%s", kind, name);
	if (has_suffix(name, ".toml") && strcmp(kind, "valid") == 0) {
		run_valid(c, rel);
	} else if (has_suffix(name, ".toml")) {
		run_invalid(c, rel);
	} else if (has_suffix(name, ".json") && strcmp(kind, "valid") == 0) {
		case_path(c, rel, path, sizeof path);
		memcpy(path + strlen(path) - 5, ".toml", 6);
		if (access(path, R_OK) != 0) {
			fail("%s/%s has its .toml", c->label, rel);
			diag("%s: %s", path, strerror(errno));
		}
	} else {
		fail("%s/%s is a case", c->label, rel);
		diag("%s/ holds X.toml%s only", kind,
		     strcmp(kind, "valid") == 0 ? " and X.json" : "");
	}
}

static void walk(struct corpus *c, const char *kind)
{
	char dir[4200];
	struct dirent **ent;
	int n;

	case_path(c, kind, dir, sizeof dir);
	n = scandir(dir, &ent, NULL, alphasort);
	if (n < 0) {
		fail("%s/%s can be read", c->label, kind);
		diag("%s: %s", dir, strerror(errno));
		return;
	}
	for (int i = 0; i < n; i++) {
		if (ent[i]->d_name[0] != '.')
			visit(c, kind, ent[i]->d_name);
		free(ent[i]);
	}
	free(ent);
}

static void run_in_tree(const char *top)
{
	struct corpus c = {.label = "t/toml", .error_lines = true};

	if (snprintf(c.base, sizeof c.base, "%s/t/toml", top) >= (int)sizeof c.base)
		bail_out("top_srcdir too long: %s", top);
	walk(&c, "valid");
	walk(&c, "invalid");
	ok(c.valid > 0 && c.invalid > 0, "%s holds valid and invalid cases", c.base);
	diag("t/toml: valid %d/%d accepted and equal, invalid %d/%d rejected as expected",
	     c.valid_ok, c.valid, c.invalid_ok, c.invalid);
}

/* The external suite's list of TOML 1.0 cases, under $TOML_TEST_DIR; NULL
 * with *why when it is not to run. */
static FILE *external_list(struct corpus *c, char *list, size_t size, char *why, size_t whysize)
{
	const char *env = getenv("TOML_TEST_DIR");
	FILE *f;

	if (env == NULL || env[0] == '\0' || strcmp(env, "no") == 0) {
		snprintf(why, whysize,
			 "toml-test suite not run: %s; configure --with-toml-test=DIR (or "
			 "TOML_TEST_DIR=DIR) names it",
			 env != NULL && strcmp(env, "no") == 0
				 ? "turned off (configure --without-toml-test)"
				 : "no directory named");
		return NULL;
	}
	if (snprintf(c->base, sizeof c->base, "%s/tests", env) >= (int)sizeof c->base ||
	    snprintf(list, size, "%s/files-toml-1.0.0", c->base) >= (int)size)
		bail_out("TOML_TEST_DIR too long");
	if ((f = fopen(list, "r")) == NULL)
		snprintf(why, whysize,
			 "toml-test suite not run: cannot open %s (%s), named by TOML_TEST_DIR",
			 list, strerror(errno));
	return f;
}

static void run_external(void)
{
	struct corpus c = {.label = "toml-test"};
	char list[4400], line[1024], why[4600];
	FILE *f = external_list(&c, list, sizeof list, why, sizeof why);

	if (f == NULL) {
		skip(1, why);
		return;
	}
	while (fgets(line, sizeof line, f) != NULL) {
		size_t n = strcspn(line, "\r\n");

		line[n] = '\0';
		if (n < 5 || strcmp(line + n - 5, ".toml") != 0)
			continue;
		if (strncmp(line, "valid/", 6) == 0)
			run_valid(&c, line);
		else if (strncmp(line, "invalid/", 8) == 0)
			run_invalid(&c, line);
	}
	fclose(f);
	ok(c.valid > 0 && c.invalid > 0, "the list %s names valid and invalid cases", list);
	diag("toml-test: valid %d/%d accepted and equal, invalid %d/%d rejected", c.valid_ok,
	     c.valid, c.invalid_ok, c.invalid);
}

int main(void)
{
	const char *top = getenv("top_srcdir");

	if (top == NULL || top[0] == '\0')
		top = ".";
	run_in_tree(top);
	run_external();
	return done_testing();
}
