/* Tests of net/filter and the JSON filter parser (net/japi): every kind of
 * condition against payloads, must/should/must_not, nested filters and
 * paths, arrays, missing keys; and filters of the wrong shape refused with
 * the path of the offending part. */
#include "build.h"

#include "net/filter.h"
#include "net/japi.h"
#include "tap.h"
#include "util/alloc.h"

#include <string.h>

static const char *const payloads[] = {
	"{\"color\":\"red\",\"n\":3,\"price\":9.5,\"tags\":[\"a\",\"b\"],\"sold\":false,"
	"\"meta\":{\"year\":2004}}",
	"{\"color\":\"blue\",\"n\":7,\"price\":20,\"tags\":[\"b\"],\"sold\":true,"
	"\"meta\":{\"year\":1999}}",
	"{\"color\":\"green\",\"n\":1.0}", NULL, /* no payload */
};

/* Which of the payloads match: a bit string like "1010". */
static void matches(const char *json, char *out)
{
	struct arena a;
	Shoal__Filter *pb;
	struct filter *f = NULL;
	struct sh_err err;

	arena_init(&a);
	strcpy(out, "error");
	if (japi_filter_text(json, strlen(json), &a, &pb, &err) == 0 &&
	    filter_compile(pb, &f, &err) == 0) {
		for (int i = 0; i < 4; i++)
			out[i] = filter_match_text(f, payloads[i],
						   payloads[i] ? strlen(payloads[i]) : 0)
					 ? '1'
					 : '0';
		out[4] = '\0';
	} else {
		diag("%s", err.msg);
	}
	filter_free(f);
	arena_free(&a);
}

static void is_match(const char *json, const char *want, const char *what)
{
	char got[16];

	matches(json, got);
	is_str(got, want, "%s", what);
}

static void is_error(const char *json, const char *want, const char *what)
{
	struct arena a;
	Shoal__Filter *pb;
	struct filter *f = NULL;
	struct sh_err err = {0};
	int rv;

	arena_init(&a);
	rv = japi_filter_text(json, strlen(json), &a, &pb, &err);
	if (rv == 0)
		rv = filter_compile(pb, &f, &err);
	is_int(rv, SH_EINVAL, "%s: refused", what);
	like(err.msg, want, "%s: says where", what);
	filter_free(f);
	arena_free(&a);
}

int main(void)
{
	is_match("{}", "1111", "an empty filter matches everything");
	is_match("{\"must\":[{\"key\":\"color\",\"match\":{\"value\":\"red\"}}]}", "1000",
		 "string equality");
	is_match("{\"must\":[{\"key\":\"n\",\"match\":{\"value\":1}}]}", "0010", "1 equals 1.0");
	is_match("{\"must\":[{\"key\":\"sold\",\"match\":{\"value\":true}}]}", "0100",
		 "boolean equality");
	is_match("{\"must\":[{\"key\":\"tags\",\"match\":{\"value\":\"b\"}}]}", "1100",
		 "an array matches when an element does");
	is_match("{\"must\":[{\"key\":\"color\",\"match\":{\"any\":[\"red\",\"green\"]}}]}", "1010",
		 "any-of");
	is_match("{\"must\":[{\"key\":\"n\",\"range\":{\"gt\":1,\"lte\":7}}]}", "1100",
		 "range gt/lte");
	is_match("{\"must\":[{\"key\":\"price\",\"range\":{\"gte\":9.5,\"lt\":20}}]}", "1000",
		 "range gte/lt");
	is_match("{\"must\":[{\"key\":\"meta.year\",\"range\":{\"gte\":2000}}]}", "1000",
		 "a dotted path into a nested object");
	is_match("{\"must_not\":[{\"key\":\"color\",\"match\":{\"value\":\"red\"}}]}", "0111",
		 "must_not (a missing key does not match, so must_not passes)");
	is_match("{\"should\":[{\"key\":\"n\",\"range\":{\"gt\":5}},"
		 "{\"key\":\"color\",\"match\":{\"value\":\"green\"}}]}",
		 "0110", "should: at least one");
	is_match("{\"must\":[{\"key\":\"tags\",\"match\":{\"value\":\"b\"}}],"
		 "\"must_not\":[{\"filter\":{\"must\":[{\"key\":\"sold\",\"match\":{\"value\":true}"
		 "}]}}]}",
		 "1000", "a nested filter under must_not");
	is_match("{\"must\":[{\"key\":\"color\",\"range\":{\"gt\":0}}]}", "0000",
		 "range on a string matches nothing");

	is_error("{\"must\":[{\"key\":\"a\",\"rang\":{}}]}", "filter.must[0]: unknown field 'rang'",
		 "a typo in a condition");
	is_error("{\"musts\":[]}", "filter: unknown field 'musts'", "a typo in a clause");
	is_error("{\"must\":{}}", "filter.must: must be an array", "a clause that is not an array");
	is_error("{\"must\":[{\"key\":\"a\"}]}", "needs exactly one of match, range and filter",
		 "a condition with no test");
	is_error("{\"must\":[{\"key\":\"a\",\"range\":{\"gt\":\"x\"}}]}",
		 "filter.must[0].range.gt: not a number", "a bound that is not a number");
	is_error("{\"must\":[{\"key\":\"a\",\"range\":{}}]}", "needs gt, gte, lt or lte",
		 "a range without bounds");
	is_error("{\"should\":[{\"key\":\"a\",\"match\":{\"value\":[1]}}]}",
		 "filter.should[0].match.value: must be a string, a number or a boolean",
		 "a match value that is an array");
	is_error("{\"must\":[{\"key\":\"\",\"match\":{\"value\":1}}]}", "key: must be 1 to",
		 "an empty key");
	is_error("{\"must\":[{\"key\":\"a..b\",\"match\":{\"value\":1}}]}", "has an empty part",
		 "a path with an empty part");
	is_error("[1]", "filter: must be an object, not an array", "not an object");
	is_error("{\"must\":[", "filter is not valid JSON", "malformed JSON");
	return done_testing();
}
