/*
 * alloc: the one allocation wrapper (STYLE.md "Memory").
 *
 * Every allocation in shoal goes through sh_malloc() & co., so that the
 * allocator (jemalloc when configured, else the C library's), allocation
 * statistics and fault injection plug in at one place.  The wrappers return
 * NULL on failure like malloc(); callers handle it.  sh_alloc_hook_libs()
 * routes libevent's and jansson's allocations through the same wrapper.
 *
 * Fault injection (tests only): sh_alloc_fail_after(n) makes the (n+1)-th
 * following allocation fail, and every one after it until reset with -1.
 *
 * Thread-safe; the counters are relaxed atomics.
 */
#ifndef SHOAL_UTIL_ALLOC_H
#define SHOAL_UTIL_ALLOC_H

#include <stddef.h>
#include <stdint.h>

void *sh_malloc(size_t size) __attribute__((malloc, alloc_size(1)));
void *sh_calloc(size_t nmemb, size_t size) __attribute__((malloc, alloc_size(1, 2)));
void *sh_realloc(void *ptr, size_t size) __attribute__((alloc_size(2)));
/* Like sh_realloc(ptr, nmemb * size) but fails (NULL) on overflow. */
void *sh_reallocarray(void *ptr, size_t nmemb, size_t size);
/* Alignment must be a power of two and a multiple of sizeof(void *). */
void *sh_aligned_alloc(size_t alignment, size_t size) __attribute__((malloc));
void sh_free(void *ptr);
char *sh_strdup(const char *s) __attribute__((malloc));
char *sh_strndup(const char *s, size_t n) __attribute__((malloc));

/* Arrays that grow by doubling up to large sizes (the fresh set's).  From
 * 1 MiB on, and without the sanitizers, they are mapped directly: growing
 * moves the pages (mremap), so a burst of writes does not copy everything
 * applied so far at each doubling (in-process apply rate 0.74 -> 0.99
 * million points/s).  Smaller ones, and all of them under the sanitizers
 * (bounds checked), are ordinary allocations: a mapping per small array
 * ran into the kernel's limit on mappings with many small collections.
 * Transparent huge pages are not asked for: they made the first burst of a
 * process slower (compaction).  Arrays only grow: new_size >= old_size.
 * The caller keeps each array's size: old_size is what the last call gave
 * (0 with ptr NULL), and so is sh_big_free's size.  Mapped bytes count in
 * sh_alloc_stats' allocated and resident (all of them: an upper bound for
 * resident).  sh_big_realloc returns NULL on failure, ptr left as it was. */
void *sh_big_realloc(void *ptr, size_t old_size, size_t new_size);
void sh_big_free(void *ptr, size_t size);

/* Route libevent's and jansson's allocations through sh_malloc. Call once,
 * before either library allocates anything. */
void sh_alloc_hook_libs(void);

struct sh_alloc_stats {
	uint64_t allocs;    /* successful allocations so far */
	uint64_t failures;  /* allocations that returned NULL */
	uint64_t allocated; /* bytes the allocator holds for live objects, 0 if unknown */
	uint64_t resident;  /* bytes of physical memory the allocator holds, 0 if unknown */
};

void sh_alloc_stats(struct sh_alloc_stats *st);

/* Give memory the allocator holds but does not use back to the system
 * (jemalloc: purge every arena; glibc: malloc_trim). */
void sh_alloc_purge(void);

/* The name of the allocator in use: "jemalloc" or "libc". */
const char *sh_alloc_name(void);

/* Fault injection for tests: fail every allocation after n more succeed;
 * n < 0 turns injection off. */
void sh_alloc_fail_after(long n);

/* Allocations that failed on the calling thread so far (injected or not;
 * those of libraries hooked by sh_alloc_hook_libs too).  Compare two
 * readings to tell whether a call that returned NULL — a parser, say —
 * ran out of memory or refused its input. */
unsigned long sh_alloc_thread_failures(void);

#endif
