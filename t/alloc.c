/* Tests of util/alloc: the wrappers, fault injection, statistics, and that
 * libevent's and jansson's allocations really go through the wrapper. */
#include "build.h"

#include "tap.h"
#include "util/alloc.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdint.h>

static uint64_t allocs(void)
{
	struct sh_alloc_stats st;

	sh_alloc_stats(&st);
	return st.allocs;
}

static void test_basic(void)
{
	char *s = sh_strdup("shoal");
	char *t = sh_strndup("shoal", 3);
	void *a = sh_aligned_alloc(64, 100);
	int *z = sh_calloc(16, sizeof *z);
	int zero = 1;

	is_str(s, "shoal", "strdup copies");
	is_str(t, "sho", "strndup cuts");
	ok(a != NULL && ((uintptr_t)a & 63) == 0, "aligned_alloc aligns to 64");
	for (int i = 0; i < 16; i++)
		zero &= z[i] == 0;
	ok(zero, "calloc zeroes");
	ok(sh_reallocarray(NULL, SIZE_MAX / 2, 4) == NULL,
	   "reallocarray refuses an overflowing size");
	sh_free(s);
	sh_free(t);
	sh_free(a);
	sh_free(z);
	sh_free(NULL);
}

static void test_injection(void)
{
	void *p[3];
	struct sh_alloc_stats before, after;

	sh_alloc_stats(&before);
	sh_alloc_fail_after(2);
	p[0] = sh_malloc(8);
	p[1] = sh_strdup("x");
	p[2] = sh_malloc(8);
	ok(p[0] != NULL && p[1] != NULL, "the first 2 allocations succeed");
	ok(p[2] == NULL, "the 3rd fails");
	ok(sh_calloc(1, 1) == NULL && sh_realloc(NULL, 1) == NULL &&
		   sh_aligned_alloc(16, 16) == NULL,
	   "and every one after it, of every kind");
	sh_alloc_fail_after(-1);
	p[2] = sh_malloc(8);
	ok(p[2] != NULL, "-1 turns injection off");
	sh_alloc_stats(&after);
	is_int(after.failures - before.failures, 4, "failures are counted");
	for (int i = 0; i < 3; i++)
		sh_free(p[i]);
}

static void test_libs(void)
{
	uint64_t n0;
	struct event_base *base;
	json_t *obj;

	sh_alloc_hook_libs();
	n0 = allocs();
	base = event_base_new();
	ok(base != NULL && allocs() > n0, "libevent allocates through sh_malloc");
	event_base_free(base);
	n0 = allocs();
	obj = json_pack("{s:i}", "k", 1);
	ok(obj != NULL && allocs() > n0, "jansson allocates through sh_malloc");
	json_decref(obj);
}

static void test_stats(void)
{
	struct sh_alloc_stats st;
	void *big = sh_malloc(8 << 20);

	sh_alloc_stats(&st);
#ifdef HAVE_JEMALLOC
	is_str(sh_alloc_name(), "jemalloc", "jemalloc is the allocator");
	ok(st.allocated >= (8u << 20) && st.resident > 0,
	   "jemalloc statistics see the allocation (%llu allocated, %llu resident)",
	   (unsigned long long)st.allocated, (unsigned long long)st.resident);
#else
	is_str(sh_alloc_name(), "libc", "the C library is the allocator");
#ifdef SH_SANITIZERS
	skip(1, "ASan's allocator keeps no mallinfo statistics");
#else
	ok(st.allocated >= (8u << 20), "mallinfo2 sees the allocation (%llu allocated)",
	   (unsigned long long)st.allocated);
#endif
#endif
	sh_free(big);
}

int main(void)
{
	test_basic();
	test_injection();
	test_libs();
	test_stats();
	return done_testing();
}
