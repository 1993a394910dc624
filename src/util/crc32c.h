/*
 * crc32c: CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the
 * checksum of every log record and snapshot chunk.
 *
 * sh_crc32c() uses the SSE4.2 crc32 instruction when the CPU has it (checked
 * once at start-up) and a slicing-by-8 table otherwise.  Both give the
 * standard value: sh_crc32c(0, "123456789", 9) == 0xE3069283.  Calls chain:
 * sh_crc32c(sh_crc32c(0, a, n), b, m) is the CRC of a followed by b.
 * Thread-safe; the tables are built before main() runs.
 */
#ifndef SHOAL_UTIL_CRC32C_H
#define SHOAL_UTIL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t sh_crc32c(uint32_t crc, const void *buf, size_t len);

/* The two implementations, for tests and benchmarks.  sh_crc32c_hw() must
 * only be called when sh_crc32c_hw_available() says so. */
uint32_t sh_crc32c_sw(uint32_t crc, const void *buf, size_t len);
uint32_t sh_crc32c_hw(uint32_t crc, const void *buf, size_t len);
int sh_crc32c_hw_available(void);

#endif
