/*
 * crc32c: see crc32c.h.
 *
 * Software path: "slicing-by-8" (Kounavis & Berry, Intel, 2005), eight
 * 256-entry tables so that one step consumes eight bytes.  Hardware path:
 * the SSE4.2 CRC32 instruction, which implements exactly this polynomial,
 * eight bytes per instruction.  The implementation is chosen once, in a
 * constructor, from the CPU's feature bits.
 */
#include "build.h"

#include "util/crc32c.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>
#define SH_CRC32C_X86 1
#endif

#define POLY 0x82F63B78u

static uint32_t table[8][256];
static uint32_t (*impl)(uint32_t, const void *, size_t) = sh_crc32c_sw;

__attribute__((constructor)) static void crc32c_init(void)
{
	for (uint32_t n = 0; n < 256; n++) {
		uint32_t c = n;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
		table[0][n] = c;
	}
	for (uint32_t n = 0; n < 256; n++)
		for (int t = 1; t < 8; t++)
			table[t][n] = (table[t - 1][n] >> 8) ^ table[0][table[t - 1][n] & 0xff];
	if (sh_crc32c_hw_available())
		impl = sh_crc32c_hw;
}

static uint64_t load_le64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof v);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

uint32_t sh_crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	crc = ~crc;
	for (; len > 0 && ((uintptr_t)p & 7) != 0; len--)
		crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
	for (; len >= 8; len -= 8, p += 8) {
		uint64_t w = load_le64(p) ^ crc;

		crc = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^ table[5][(w >> 16) & 0xff] ^
		      table[4][(w >> 24) & 0xff] ^ table[3][(w >> 32) & 0xff] ^
		      table[2][(w >> 40) & 0xff] ^ table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
	}
	while (len-- > 0)
		crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
	return ~crc;
}

#ifdef SH_CRC32C_X86
__attribute__((target("sse4.2"))) uint32_t sh_crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint64_t c = ~crc;

	for (; len > 0 && ((uintptr_t)p & 7) != 0; len--)
		c = _mm_crc32_u8((uint32_t)c, *p++);
	for (; len >= 8; len -= 8, p += 8) {
		uint64_t w;

		memcpy(&w, p, sizeof w);
		c = _mm_crc32_u64(c, w);
	}
	while (len-- > 0)
		c = _mm_crc32_u8((uint32_t)c, *p++);
	return ~(uint32_t)c;
}

int sh_crc32c_hw_available(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("sse4.2");
}
#else
uint32_t sh_crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	return sh_crc32c_sw(crc, buf, len);
}

int sh_crc32c_hw_available(void)
{
	return 0;
}
#endif

uint32_t sh_crc32c(uint32_t crc, const void *buf, size_t len)
{
	return impl(crc, buf, len);
}
