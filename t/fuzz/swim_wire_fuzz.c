/*
 * swim_wire_fuzz: the SWIM decoders on arbitrary bytes.  Whatever decodes
 * must encode again and decode to the same thing.  Build for libFuzzer
 * with -DSH_LIBFUZZER (doc/membership.md has the command).
 */
#include "build.h"

#include "cluster/swim_wire.h"
#include "fuzz/fuzz.h"
#include "util/alloc.h"

#include <stdlib.h>
#include <string.h>

static void check_pushpull(const struct swim_pushpull *pp)
{
	struct swim_pushpull again;
	uint8_t *buf;
	size_t len;

	if (swim_wire_encode_pushpull(pp, &buf, &len, NULL) != 0)
		return;
	if (swim_wire_frame_len(buf) != len - SWIM_FRAME_HDR ||
	    swim_wire_decode_pushpull(buf + SWIM_FRAME_HDR, len - SWIM_FRAME_HDR, &again, NULL) !=
		    0 ||
	    again.n_members != pp->n_members || again.sender != pp->sender)
		abort();
	swim_wire_pushpull_free(&again);
	sh_free(buf);
}

static void check_updates(const struct swim_packet *p)
{
	for (size_t i = 0; i < p->n_updates; i++) {
		uint8_t enc[2048];
		size_t n = swim_wire_encode_update(&p->updates[i], enc, sizeof enc);

		if (n == 0)
			abort();
	}
}

int fuzz_swim_wire(const uint8_t *data, size_t size)
{
	struct swim_packet p;
	struct swim_pushpull pp;

	if (swim_wire_decode_packet(data, size, &p, NULL) == 0) {
		check_updates(&p);
		swim_wire_packet_free(&p);
	}
	if (swim_wire_decode_pushpull(data, size, &pp, NULL) == 0) {
		check_pushpull(&pp);
		swim_wire_pushpull_free(&pp);
	}
	return 0;
}

#ifdef SH_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_swim_wire(data, size);
}
#endif
