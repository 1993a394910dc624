/*
 * arena: a bump allocator for the life of one request.
 *
 * A request's decoded protobuf message, its reply and everything built
 * around them come from one arena and are freed together by arena_free(),
 * so nothing is freed piece by piece and nothing leaks on an error path.
 * arena_pb() adapts it to protobuf-c's allocator interface (its free is a
 * no-op).  The first block lives inside the struct; later blocks come from
 * sh_malloc.
 *
 * Not thread-safe: one thread at a time (a request handed to a worker
 * thread hands its arena with it, through a locked queue).
 */
#ifndef SHOAL_UTIL_ARENA_H
#define SHOAL_UTIL_ARENA_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

#define ARENA_INLINE 2048

struct arena_block;

struct arena {
	struct arena_block *blocks; /* sh_malloc'd, newest first */
	char *cur;
	size_t left;
	size_t total; /* bytes handed out, for limits */
	ProtobufCAllocator pb;
	_Alignas(16) char inline_buf[ARENA_INLINE];
};

void arena_init(struct arena *a);
/* Free every block (the struct itself is the caller's). */
void arena_free(struct arena *a);
/* 16-byte aligned; NULL when out of memory. */
void *arena_alloc(struct arena *a, size_t size);
void *arena_calloc(struct arena *a, size_t n, size_t size);
char *arena_strndup(struct arena *a, const char *s, size_t n);
ProtobufCAllocator *arena_pb(struct arena *a);

#endif
