/* fuzz_rest_json: the REST API's JSON parsing — a body parsed as every
 * Qdrant route would parse it (net/rest_qbuild.c), and as a filter
 * (net/japi.h) compiled and evaluated; and the upsert reader without a
 * tree (net/rest_fastup.c), which must decline the body or build the
 * request rest_build_upsert builds from it, byte for byte. */
#include "build.h"

#include "net/filter.h"
#include "net/japi.h"
#include "net/rest_impl.h"
#include "util/alloc.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fresh(struct op *op)
{
	memset(op, 0, offsetof(struct op, arena));
	arena_init(&op->arena);
}

/* Every builder on body j, as route r would run it. */
static void builders(struct op *op, json_t *j, enum rest_route r)
{
	struct rest_call c = {0};
	Shoal__Filter *f;
	struct sh_err err;

	c.route = r;
	c.body = j;
	c.id = (char *)(uintptr_t) "17";
	c.q.token = "1:2";
	snprintf(c.name, sizeof c.name, "c");
	fresh(op);
	switch (r) {
	case ROUTE_CREATE: rest_build_create(op, &c, &err); break;
	case ROUTE_UPSERT: rest_build_upsert(op, &c, &err); break;
	case ROUTE_GET:
	case ROUTE_GET_ONE: rest_build_get(op, &c, &err); break;
	case ROUTE_SEARCH: rest_build_search(op, &c, j, false, "body", &err); break;
	case ROUTE_QUERY: rest_build_search(op, &c, j, true, "body", &err); break;
	case ROUTE_SCROLL: rest_build_scroll(op, &c, &err); break;
	case ROUTE_COUNT: rest_build_count(op, &c, &err); break;
	case ROUTE_DELETE:
	case ROUTE_SET_PAYLOAD:
	case ROUTE_OVERWRITE:
	case ROUTE_DELETE_KEYS:
	case ROUTE_CLEAR: rest_build_change(op, &c, &f, &err); break;
	default: break;
	}
	json_decref(c.sel);
	arena_free(&op->arena);
}

static uint8_t *packed(const struct op *op, size_t *len)
{
	uint8_t *b;

	*len = op->req ? protobuf_c_message_get_packed_size(op->req) : 0;
	if ((b = sh_malloc(*len + 1)) != NULL && op->req != NULL)
		protobuf_c_message_pack(op->req, b);
	return b;
}

/* The fast upsert reader against the other one. */
static void fast_upsert(const uint8_t *data, size_t size)
{
	struct op *fast = sh_malloc(sizeof *fast), *slow = sh_malloc(sizeof *slow);
	struct rest_call c = {0};
	struct sh_err err;
	uint8_t *a, *b;
	size_t alen, blen;

	if (fast == NULL || slow == NULL)
		abort();
	snprintf(c.name, sizeof c.name, "c");
	fresh(fast);
	fresh(slow);
	if (size > 0 && rest_fast_upsert(fast, &c, (const char *)data, size, &err) == 0) {
		c.body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
		if (!json_is_object(c.body) || rest_build_upsert(slow, &c, &err) != 0)
			abort(); /* accepted what the other reader refuses */
		a = packed(fast, &alen);
		b = packed(slow, &blen);
		if (a == NULL || b == NULL || alen != blen || memcmp(a, b, alen) != 0)
			abort(); /* built another request */
		sh_free(a);
		sh_free(b);
		json_decref(c.body);
	}
	arena_free(&fast->arena);
	arena_free(&slow->arena);
	sh_free(fast);
	sh_free(slow);
}

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
		for (int r = ROUTE_ROOT; r < ROUTE_REFUSED; r++)
			builders(op, j, (enum rest_route)r);
	fresh(op);
	if (japi_filter(j, &op->arena, "filter", &pb, &err) == 0 &&
	    filter_compile(pb, &f, &err) == 0) {
		filter_match_point_text(f, 7, payload, strlen(payload));
		filter_free(f);
	}
	arena_free(&op->arena);
	fast_upsert(data, size);
	sh_free(op);
	json_decref(j);
	return 0;
}
