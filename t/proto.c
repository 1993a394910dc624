/* Tests that the protobuf code generated from proto/ builds and round-trips,
 * and that malformed bytes are rejected rather than trusted. */
#include "build.h"

#include "proto/shoal.pb-c.h"
#include "tap.h"

#include <string.h>

int main(void)
{
	Shoal__Status st = SHOAL__STATUS__INIT, *back;
	char msg[] = "collection 'x' not found";
	uint8_t buf[256];
	size_t n;
	const uint8_t garbage[] = {0x08, 0x96}; /* a varint cut in half */

	st.code = SHOAL__STATUS_CODE__NOT_FOUND;
	st.message = msg;
	n = shoal__status__get_packed_size(&st);
	ok(n < sizeof buf, "packed size %zu", n);
	is_int(shoal__status__pack(&st, buf), n, "pack writes the packed size");
	back = shoal__status__unpack(NULL, n, buf);
	ok(back != NULL, "unpack what was packed");
	is_int(back ? (int)back->code : -1, SHOAL__STATUS_CODE__NOT_FOUND, "code survives");
	is_str(back ? back->message : NULL, "collection 'x' not found", "message survives");
	shoal__status__free_unpacked(back, NULL);
	ok(shoal__status__unpack(NULL, sizeof garbage, garbage) == NULL,
	   "a truncated varint is rejected");
	ok(shoal__status__unpack(NULL, n - 3, buf) == NULL, "a truncated message is rejected");
	return done_testing();
}
