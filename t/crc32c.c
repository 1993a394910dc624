/* Tests of util/crc32c: published check values, and the SSE4.2 path against
 * the table path on random buffers of every length 0..4096 at every
 * alignment mod 8. */
#include "build.h"

#include "tap.h"
#include "util/crc32c.h"
#include "util/rand.h"

#include <string.h>

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

/* RFC 3720 (iSCSI) appendix B.4 and the common "123456789" check value. */
static void check_vectors(const char *name, crc_fn f)
{
	unsigned char buf[32];

	is_int(f(0, "123456789", 9), 0xE3069283u, "%s: CRC32C(\"123456789\") = 0xE3069283", name);
	is_int(f(0, "", 0), 0, "%s: empty input gives 0", name);
	memset(buf, 0, sizeof buf);
	is_int(f(0, buf, 32), 0x8A9136AAu, "%s: 32 zero bytes (RFC 3720 B.4)", name);
	memset(buf, 0xff, sizeof buf);
	is_int(f(0, buf, 32), 0x62A8AB43u, "%s: 32 0xff bytes (RFC 3720 B.4)", name);
	for (int i = 0; i < 32; i++)
		buf[i] = (unsigned char)i;
	is_int(f(0, buf, 32), 0x46DD794Eu, "%s: 32 ascending bytes (RFC 3720 B.4)", name);
	for (int i = 0; i < 32; i++)
		buf[i] = (unsigned char)(31 - i);
	is_int(f(0, buf, 32), 0x113FDB5Cu, "%s: 32 descending bytes (RFC 3720 B.4)", name);
}

static void check_random(int have_hw)
{
	static unsigned char buf[4096 + 8];
	struct sh_rand r;
	int mismatches = 0, chain_bad = 0, first_bad = -1;

	sh_rand_seed(&r, 2026);
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (unsigned char)sh_rand_u32(&r);
	for (size_t len = 0; len <= 4096; len++) {
		const unsigned char *p = buf + (len % 8); /* every alignment */
		uint32_t sw = sh_crc32c_sw(0, p, len);
		uint32_t hw = have_hw ? sh_crc32c_hw(0, p, len) : sw;
		size_t cut = len / 3;

		if (sw != hw || sw != sh_crc32c(0, p, len)) {
			mismatches++;
			first_bad = first_bad < 0 ? (int)len : first_bad;
		}
		if (sh_crc32c(sh_crc32c(0, p, cut), p + cut, len - cut) != sw)
			chain_bad++;
	}
	ok(mismatches == 0,
	   "hardware, table and dispatch agree on every length 0..4096 "
	   "(%d mismatches, first at %d)",
	   mismatches, first_bad);
	ok(chain_bad == 0, "CRCs chain across a split, every length (%d bad)", chain_bad);
}

int main(void)
{
	int have_hw = sh_crc32c_hw_available();

	check_vectors("table", sh_crc32c_sw);
	if (have_hw)
		check_vectors("sse4.2", sh_crc32c_hw);
	else
		skip(6, "this CPU has no SSE4.2: only the table path can run");
	check_vectors("dispatch", sh_crc32c);
	diag("crc32c: dispatch uses the %s path", have_hw ? "SSE4.2" : "table");
	check_random(have_hw);
	return done_testing();
}
