/*
 * arena: see arena.h.  Blocks grow geometrically (8 KiB, 16 KiB, ... up to
 * 1 MiB) and a request larger than a block gets a block of its own.
 */
#include "build.h"

#include "util/arena.h"

#include "util/alloc.h"

#include <string.h>

struct arena_block {
	struct arena_block *next;
	size_t size;
	_Alignas(16) char data[];
};

static void *pb_alloc(void *ctx, size_t size)
{
	return arena_alloc(ctx, size);
}

static void pb_free(void *ctx, void *p)
{
	(void)ctx;
	(void)p;
}

void arena_init(struct arena *a)
{
	a->blocks = NULL;
	a->cur = a->inline_buf;
	a->left = sizeof a->inline_buf;
	a->total = 0;
	a->pb = (ProtobufCAllocator){pb_alloc, pb_free, a};
}

void arena_free(struct arena *a)
{
	struct arena_block *b = a->blocks, *next;

	for (; b != NULL; b = next) {
		next = b->next;
		sh_free(b);
	}
	arena_init(a);
}

void *arena_alloc(struct arena *a, size_t size)
{
	size_t need = (size + 15) & ~(size_t)15, bs;
	struct arena_block *b;
	void *p;

	if (need < size)
		return NULL;
	if (need > a->left) {
		bs = a->blocks != NULL ? a->blocks->size * 2 : 8192;
		bs = bs > (1u << 20) ? (1u << 20) : bs;
		bs = need > bs ? need : bs;
		if ((b = sh_malloc(sizeof *b + bs)) == NULL)
			return NULL;
		b->size = bs;
		b->next = a->blocks;
		a->blocks = b;
		a->cur = b->data;
		a->left = bs;
	}
	p = a->cur;
	a->cur += need;
	a->left -= need;
	a->total += need;
	return p;
}

void *arena_calloc(struct arena *a, size_t n, size_t size)
{
	size_t total;
	void *p;

	if (__builtin_mul_overflow(n, size, &total))
		return NULL;
	if ((p = arena_alloc(a, total)) != NULL)
		memset(p, 0, total);
	return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *d = arena_alloc(a, n + 1);

	if (d != NULL) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

ProtobufCAllocator *arena_pb(struct arena *a)
{
	return &a->pb;
}
