/* fuzz_rest_json: the REST API's JSON parsing — a body parsed as every
 * route would parse it (net/rest_json.c), and as a filter (net/japi.h)
 * compiled and evaluated. */
#include "build.h"

#include "net/filter.h"
#include "net/japi.h"
#include "net/rest_impl.h"
#include "util/alloc.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char payload[] = "{\"a\":1,\"b\":\"x\",\"c\":[1,2,{\"d\":true}]}";
	json_t *j = json_loadb((const char *)data, size, 0, NULL);
	struct op *op = sh_malloc(sizeof *op);
	Shoal__Filter *pb;
	struct filter *f;
	struct sh_err err;

	if (op == NULL) {
		json_decref(j);
		return 0;
	}
	if (json_is_object(j))
		for (int r = ROUTE_LIST; r <= ROUTE_CLUSTER; r++) {
			struct rest_in in = {(enum rest_route)r, "c", "17", j, NULL, "1:2", NULL};

			memset(op, 0, offsetof(struct op, arena));
			arena_init(&op->arena);
			rest_build(op, &in, &err);
			arena_free(&op->arena);
		}
	arena_init(&op->arena);
	if (japi_filter(j, &op->arena, "filter", &pb, &err) == 0 &&
	    filter_compile(pb, &f, &err) == 0) {
		filter_match_text(f, payload, strlen(payload));
		filter_free(f);
	}
	arena_free(&op->arena);
	sh_free(op);
	json_decref(j);
	return 0;
}
