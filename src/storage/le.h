/*
 * le: little-endian integers in byte buffers, for the on-disk formats of
 * doc/storage-format.md (which are little-endian on every machine).
 * Header-only, pure functions.
 */
#ifndef SHOAL_STORAGE_LE_H
#define SHOAL_STORAGE_LE_H

#include <stdint.h>
#include <string.h>

static inline uint16_t le16_get(const void *p)
{
	const unsigned char *b = p;

	return (uint16_t)(b[0] | b[1] << 8);
}

static inline uint32_t le32_get(const void *p)
{
	const unsigned char *b = p;

	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static inline uint64_t le64_get(const void *p)
{
	return (uint64_t)le32_get(p) | (uint64_t)le32_get((const unsigned char *)p + 4) << 32;
}

static inline void le16_put(void *p, uint16_t v)
{
	unsigned char *b = p;

	b[0] = (unsigned char)v;
	b[1] = (unsigned char)(v >> 8);
}

static inline void le32_put(void *p, uint32_t v)
{
	unsigned char *b = p;

	for (int i = 0; i < 4; i++)
		b[i] = (unsigned char)(v >> (8 * i));
}

static inline void le64_put(void *p, uint64_t v)
{
	le32_put(p, (uint32_t)v);
	le32_put((unsigned char *)p + 4, (uint32_t)(v >> 32));
}

#endif
