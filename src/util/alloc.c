/*
 * alloc: see alloc.h.  With jemalloc configured, Debian's libjemalloc
 * replaces malloc() itself, so the wrappers call the C names and jemalloc's
 * mallctl() supplies the statistics.
 *
 * libshoal compiles this file with SH_ALLOC_CLIENT: a client library must
 * not bring its own allocator or reroute libevent's and jansson's
 * allocations in the application, so there it uses the C library's
 * malloc and sh_alloc_hook_libs() does nothing.
 */
#include "build.h"

#ifdef SH_ALLOC_CLIENT
#undef HAVE_JEMALLOC
#endif

#include "util/alloc.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SH_ALLOC_CLIENT
#include <event2/event.h>
#include <jansson.h>
#endif

#ifdef HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

#if !defined(SH_SANITIZERS) && defined(__linux__)
#define SH_BIG_MAPPED 1
#include <sys/mman.h>
#include <unistd.h>
#endif

#define SH_ALLOC_NO_FAULT LONG_MAX

static _Atomic long fail_countdown = SH_ALLOC_NO_FAULT;
static _Atomic uint64_t n_allocs;
static _Atomic uint64_t n_failures;
static _Atomic uint64_t big_bytes; /* mapped by sh_big_realloc */
static _Thread_local unsigned long thread_failures;

/* Decides whether this allocation is one the test asked to fail. */
static int injected_failure(void)
{
	if (atomic_load_explicit(&fail_countdown, memory_order_relaxed) == SH_ALLOC_NO_FAULT)
		return 0;
	return atomic_fetch_sub_explicit(&fail_countdown, 1, memory_order_relaxed) <= 0;
}

static void *account(void *p)
{
	if (p == NULL) {
		atomic_fetch_add_explicit(&n_failures, 1, memory_order_relaxed);
		thread_failures++;
	} else
		atomic_fetch_add_explicit(&n_allocs, 1, memory_order_relaxed);
	return p;
}

void *sh_malloc(size_t size)
{
	if (injected_failure())
		return account(NULL);
	return account(malloc(size == 0 ? 1 : size));
}

void *sh_calloc(size_t nmemb, size_t size)
{
	if (injected_failure())
		return account(NULL);
	return account(calloc(nmemb == 0 ? 1 : nmemb, size == 0 ? 1 : size));
}

void *sh_realloc(void *ptr, size_t size)
{
	if (injected_failure())
		return account(NULL);
	return account(realloc(ptr, size == 0 ? 1 : size));
}

void *sh_reallocarray(void *ptr, size_t nmemb, size_t size)
{
	size_t total;

	if (__builtin_mul_overflow(nmemb, size, &total)) {
		errno = ENOMEM;
		return account(NULL);
	}
	return sh_realloc(ptr, total);
}

void *sh_aligned_alloc(size_t alignment, size_t size)
{
	void *p = NULL;

	if (injected_failure())
		return account(NULL);
	if (posix_memalign(&p, alignment, size == 0 ? 1 : size) != 0)
		p = NULL;
	return account(p);
}

void sh_free(void *ptr)
{
	free(ptr);
}

char *sh_strndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *d = sh_malloc(len + 1);

	if (d == NULL)
		return NULL;
	memcpy(d, s, len);
	d[len] = '\0';
	return d;
}

char *sh_strdup(const char *s)
{
	return sh_strndup(s, strlen(s));
}

#ifdef SH_BIG_MAPPED
/* Smaller arrays stay in the heap: a mapping each would run into the
 * kernel's limit on mappings (vm.max_map_count, 65,530) with many small
 * collections, and cost a page at least. */
#define SH_BIG_MAP_MIN (1024 * 1024)

static size_t page_round(size_t size)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	return size > SIZE_MAX - page ? 0 : (size + page - 1) / page * page;
}

static void *big_map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static void big_count(size_t old_len, size_t len)
{
	if (len > old_len)
		atomic_fetch_add_explicit(&big_bytes, len - old_len, memory_order_relaxed);
	else
		atomic_fetch_sub_explicit(&big_bytes, old_len - len, memory_order_relaxed);
}

/* Mapped to mapped: the pages move, nothing is copied. */
static void *big_remap(void *ptr, size_t old_size, size_t new_size)
{
	size_t old_len = page_round(old_size), len = page_round(new_size);
	void *p;

	if (len == 0)
		return NULL;
	if (len == old_len)
		return ptr;
	p = mremap(ptr, old_len, len, MREMAP_MAYMOVE);
	if (p == MAP_FAILED)
		return NULL;
	big_count(old_len, len);
	return p;
}

void *sh_big_realloc(void *ptr, size_t old_size, size_t new_size)
{
	void *p;

	if (new_size < SH_BIG_MAP_MIN) /* and so was old_size: it only grows */
		return sh_realloc(ptr, new_size);
	if (injected_failure())
		return account(NULL);
	if (ptr != NULL && old_size >= SH_BIG_MAP_MIN)
		return account(big_remap(ptr, old_size, new_size));
	/* from the heap: one copy, at the threshold */
	if ((p = big_map(page_round(new_size))) == NULL)
		return account(NULL);
	big_count(0, page_round(new_size));
	memcpy(p, ptr, ptr != NULL ? old_size : 0);
	sh_free(ptr);
	return account(p);
}

void sh_big_free(void *ptr, size_t size)
{
	if (ptr == NULL)
		return;
	if (size < SH_BIG_MAP_MIN) {
		sh_free(ptr);
		return;
	}
	munmap(ptr, page_round(size));
	big_count(page_round(size), 0);
}
#else
void *sh_big_realloc(void *ptr, size_t old_size, size_t new_size)
{
	(void)old_size;
	return sh_realloc(ptr, new_size);
}

void sh_big_free(void *ptr, size_t size)
{
	(void)size;
	sh_free(ptr);
}
#endif

#ifndef SH_ALLOC_CLIENT
static void *json_malloc(size_t size)
{
	return sh_malloc(size);
}

void sh_alloc_hook_libs(void)
{
	event_set_mem_functions(sh_malloc, sh_realloc, sh_free);
	json_set_alloc_funcs(json_malloc, sh_free);
}
#else
void sh_alloc_hook_libs(void)
{
}
#endif

#ifdef HAVE_JEMALLOC
static uint64_t je_stat(const char *name)
{
	size_t v = 0, len = sizeof v;

	if (mallctl(name, &v, &len, NULL, 0) != 0)
		return 0;
	return v;
}
#endif

void sh_alloc_stats(struct sh_alloc_stats *st)
{
	memset(st, 0, sizeof *st);
	st->allocs = atomic_load_explicit(&n_allocs, memory_order_relaxed);
	st->failures = atomic_load_explicit(&n_failures, memory_order_relaxed);
#ifdef HAVE_JEMALLOC
	{
		uint64_t epoch = 1;
		size_t len = sizeof epoch;

		/* jemalloc caches its statistics until the epoch advances. */
		mallctl("epoch", &epoch, &len, &epoch, len);
		st->allocated = je_stat("stats.allocated");
		st->resident = je_stat("stats.resident");
	}
#elif defined(__GLIBC__) && !defined(SH_SANITIZERS)
	{
		struct mallinfo2 mi = mallinfo2();

		st->allocated = mi.uordblks + mi.hblkhd;
	}
#endif
	{ /* mapped arrays: counted whole once mapped (an upper bound for resident) */
		uint64_t big = atomic_load_explicit(&big_bytes, memory_order_relaxed);

		if (st->allocated != 0)
			st->allocated += big;
		if (st->resident != 0)
			st->resident += big;
	}
}

void sh_alloc_purge(void)
{
#ifdef HAVE_JEMALLOC
	char name[64];

	snprintf(name, sizeof name, "arena.%u.purge", (unsigned)MALLCTL_ARENAS_ALL);
	mallctl(name, NULL, NULL, NULL, 0);
#elif defined(__GLIBC__)
	malloc_trim(0);
#endif
}

const char *sh_alloc_name(void)
{
#ifdef HAVE_JEMALLOC
	return "jemalloc";
#else
	return "libc";
#endif
}

void sh_alloc_fail_after(long n)
{
	atomic_store(&fail_countdown, n < 0 ? SH_ALLOC_NO_FAULT : n);
}

unsigned long sh_alloc_thread_failures(void)
{
	return thread_failures;
}
