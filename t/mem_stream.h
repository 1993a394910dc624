/*
 * mem_stream.h: a growing memory buffer behind the save/load callbacks of
 * the storage modules (coll_save, store_save, ...), for tests that take a
 * snapshot through memory and damage it on purpose.
 */
#ifndef SHOAL_T_MEM_STREAM_H
#define SHOAL_T_MEM_STREAM_H

#include "util/alloc.h"
#include "util/err.h"

#include <string.h>

struct mem {
	unsigned char *buf;
	size_t len, cap, pos; /* pos: where mem_read reads next */
};

static inline int mem_write(void *ctx, const void *buf, size_t len)
{
	struct mem *m = ctx;

	if (m->len + len > m->cap) {
		unsigned char *p = sh_realloc(m->buf, (m->len + len) * 2);

		if (p == NULL)
			return SH_ENOMEM;
		m->buf = p;
		m->cap = (m->len + len) * 2;
	}
	memcpy(m->buf + m->len, buf, len);
	m->len += len;
	return 0;
}

static inline int mem_read(void *ctx, void *buf, size_t len)
{
	struct mem *m = ctx;

	if (m->pos + len > m->len)
		return SH_ECORRUPT;
	memcpy(buf, m->buf + m->pos, len);
	m->pos += len;
	return 0;
}

#endif
