/* fuzz_request: the server's request decoding — the method number from
 * the first two bytes, the body decoded as that method's request message
 * into an arena (as net/server.c does), and a filter, when there is one,
 * compiled and evaluated (net/filter.h). */
#include "build.h"

#include "net/api.h"
#include "net/filter.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const Shoal__Filter *filter_of(uint16_t method, const ProtobufCMessage *m)
{
	switch (method) {
	case SHOAL__METHOD__METHOD_SEARCH: return ((const Shoal__SearchRequest *)m)->filter;
	case SHOAL__METHOD__METHOD_SCROLL: return ((const Shoal__ScrollRequest *)m)->filter;
	case SHOAL__METHOD__METHOD_COUNT: return ((const Shoal__CountRequest *)m)->filter;
	}
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char payload[] = "{\"a\":1,\"b\":\"x\",\"c\":[1,2,{\"d\":true}]}";
	const ProtobufCMessageDescriptor *desc;
	ProtobufCMessage *m;
	struct filter *f = NULL;
	struct arena a;
	uint16_t method;

	if (size < 2)
		return 0;
	method = (uint16_t)(data[0] % (API_MAX_METHOD + 2));
	if ((desc = api_request_desc(method)) == NULL)
		return 0;
	arena_init(&a);
	m = protobuf_c_message_unpack(desc, arena_pb(&a), size - 2, data + 2);
	if (m != NULL && filter_compile(filter_of(method, m), &f, NULL) == 0) {
		filter_match_text(f, payload, strlen(payload));
		filter_free(f);
	}
	shoal__metadata__unpack(arena_pb(&a), size - 2, data + 2);
	arena_free(&a);
	return 0;
}
