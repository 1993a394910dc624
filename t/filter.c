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

/* Does filter json match point id with payload text? */
static bool point_matches(const char *json, uint64_t id, const char *payload)
{
	struct arena a;
	Shoal__Filter *pb;
	struct filter *f = NULL;
	struct sh_err err;
	bool m = false;

	arena_init(&a);
	if (japi_filter_text(json, strlen(json), &a, &pb, &err) == 0 &&
	    filter_compile(pb, &f, &err) == 0)
		m = filter_match_point_text(f, id, payload, strlen(payload));
	else
		diag("%s", err.msg);
	filter_free(f);
	arena_free(&a);
	return m;
}

/* Issue 16: Qdrant's conditions. */
static void test_qdrant(void)
{
	const char *shop = "{\"items\":[{\"k\":\"a\",\"q\":1},{\"k\":\"b\",\"q\":5}],"
			   "\"z\":null,\"e\":[]}";

	is_match("{\"must\":[{\"key\":\"color\",\"match\":{\"except\":[\"red\",\"blue\"]}}]}",
		 "0010", "match except: another value (a missing key is none)");
	is_match("{\"must\":[{\"key\":\"color\",\"match\":{\"text\":\"re\"}}]}", "1010",
		 "match text: a substring");
	is_match("{\"must\":[{\"is_empty\":{\"key\":\"tags\"}}]}", "0011",
		 "is_empty: missing or no payload");
	is_match("{\"must\":[{\"key\":\"tags\",\"values_count\":{\"gte\":2}}]}", "1000",
		 "values_count counts array elements");
	is_match("{\"must\":{\"key\":\"n\",\"range\":{\"gt\":2}}}", "1100",
		 "a clause of one condition, not an array");
	is_match("{\"should\":[{\"must\":[{\"key\":\"n\",\"match\":{\"value\":3}}]},"
		 "{\"key\":\"color\",\"match\":{\"value\":\"green\"}}]}",
		 "1010", "a filter as a condition (Qdrant's nesting)");
	is_match("{\"min_should\":{\"conditions\":[{\"key\":\"color\",\"match\":{\"value\":"
		 "\"red\"}},{\"key\":\"sold\",\"match\":{\"value\":false}},{\"key\":\"n\","
		 "\"match\":{\"value\":7}}],\"min_count\":2}}",
		 "1000", "min_should: two of three");
	ok(point_matches("{\"must\":[{\"has_id\":[5,9,\"550e8400-e29b-41d4-a716-446655440000\"]}]}",
			 9, "{}"),
	   "has_id: an integer id");
	{
		unsigned char u[16];

		japi_uuid_parse("550E8400E29B41D4A716446655440000", u);
		ok(point_matches(
			   "{\"must\":[{\"has_id\":[\"550e8400-e29b-41d4-a716-446655440000\"]}]}",
			   japi_uuid_id(u), "{}"),
		   "has_id: a UUID (any spelling) names its hashed id");
		ok(japi_uuid_id(u) >= JAPI_UUID_SPACE, "  in the top half of the ids");
	}
	ok(!point_matches("{\"must\":[{\"has_id\":[5]}]}", 6, "{}"), "has_id: another id");
	ok(point_matches("{\"must\":[{\"key\":\"items[].q\",\"range\":{\"gte\":5}}]}", 1, shop),
	   "a[].b: a value of an element");
	ok(!point_matches("{\"must\":[{\"key\":\"items.q\",\"range\":{\"gte\":5}}]}", 1, shop),
	   "  a.b does not step into an array");
	ok(point_matches("{\"must\":[{\"nested\":{\"key\":\"items\",\"filter\":{\"must\":["
			 "{\"key\":\"k\",\"match\":{\"value\":\"b\"}},{\"key\":\"q\",\"range\":"
			 "{\"gt\":2}}]}}}]}",
			 1, shop),
	   "nested: one element matches the whole filter");
	ok(!point_matches("{\"must\":[{\"nested\":{\"key\":\"items\",\"filter\":{\"must\":["
			  "{\"key\":\"k\",\"match\":{\"value\":\"a\"}},{\"key\":\"q\",\"range\":"
			  "{\"gt\":2}}]}}}]}",
			  1, shop),
	   "  not two elements together");
	ok(point_matches("{\"must\":[{\"is_null\":{\"key\":\"z\"}},{\"is_empty\":{\"key\":\"e\"}},"
			 "{\"is_empty\":{\"key\":\"z\"}}]}",
			 1, shop),
	   "is_null, and is_empty for [] and null");
	is_error("{\"must\":[{\"key\":\"g\",\"geo_radius\":{}}]}",
		 "geo conditions are not supported", "geo");
	is_error("{\"must\":[{\"has_vector\":\"v\"}]}", "has_vector: not supported", "has_vector");
	is_error("{\"must\":[{\"key\":\"d\",\"range\":{\"gt\":\"2024-01-01\"}}]}",
		 "datetime ranges are not supported", "a datetime range");
	is_error("{\"must\":[{\"key\":\"a[0].b\",\"match\":{\"value\":1}}]}",
		 "brackets other than a final []", "an array index in a path");
	is_error("{\"must\":[{\"key\":\"a\",\"match\":{\"phrase\":\"x y\"}}]}",
		 "match.phrase: not supported", "match phrase");
	is_error("{\"must\":[{\"is_empty\":{\"key\":\"a\"},\"has_id\":[1]}]}", "stands alone",
		 "two kinds in one condition");
}

int main(void)
{
	test_qdrant();
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
	is_error("{\"must\":5}", "filter.must: must be a condition or an array of them",
		 "a clause that is neither a condition nor an array");
	is_error("{\"must\":{}}", "filter.must: not a condition", "an empty condition");
	is_error("{\"must\":[{\"key\":\"a\"}]}",
		 "needs exactly one of match, range, values_count, is_empty and is_null",
		 "a condition with no test");
	is_error("{\"must\":[{\"key\":\"a\",\"range\":{\"gt\":true}}]}",
		 "filter.must[0].range.gt: not a number", "a bound that is not a number");
	is_error("{\"must\":[{\"key\":\"a\",\"range\":{}}]}", "needs gt, gte, lt or lte",
		 "a range without bounds");
	is_error("{\"should\":[{\"key\":\"a\",\"match\":{\"value\":[1]}}]}",
		 "filter.should[0].match.value: must be a string, a number or a boolean",
		 "a match value that is an array");
	is_error("{\"must\":[{\"key\":\"\",\"match\":{\"value\":1}}]}", "key: must be 1 to",
		 "an empty key");
	is_error("{\"must\":[{\"key\":\"a..b\",\"match\":{\"value\":1}}]}", "part 2 is empty",
		 "a path with an empty part");
	is_error("[1]", "filter: must be an object, not an array", "not an object");
	is_error("{\"must\":[", "filter is not valid JSON", "malformed JSON");
	return done_testing();
}
