/* Tests of storage/idtree: random inserts, replaces and deletes against a
 * plain reference array, with the structure checked as it grows and
 * shrinks; ordered iteration and seek; values kept inline; memory per key;
 * and a failed allocation leaving the tree unchanged. */
#include "build.h"

#include "storage/idtree.h"
#include "tap.h"
#include "util/alloc.h"
#include "util/err.h"
#include "util/rand.h"

#include <stdlib.h>
#include <string.h>

#define N_KEYS 200000 /* reference: value = key * 3 + generation, 0 = absent */

struct val {
	uint64_t a, b, c;
};

static uint64_t *ref;

static int check_all(const struct idtree *t, size_t *n_out)
{
	struct idtree_iter it;
	uint64_t key, expect = 0;
	void *v;
	size_t n = 0;

	idtree_seek(t, 0, &it);
	while (idtree_next(&it, &key, &v)) {
		while (expect < N_KEYS && ref[expect] == 0)
			expect++;
		if (key != expect || ((struct val *)v)->a != ref[key])
			return 0;
		expect++;
		n++;
	}
	while (expect < N_KEYS && ref[expect] == 0)
		expect++;
	*n_out = n;
	return expect == N_KEYS;
}

static void test_random(void)
{
	struct idtree *t = idtree_new(sizeof(struct val));
	struct sh_rand r;
	size_t live = 0, n = 0, checks_ok = 1, gets_ok = 1;

	sh_rand_seed(&r, 7);
	ref = calloc(N_KEYS, sizeof *ref);
	for (int round = 0; round < 6; round++) {
		/* grow in even rounds, shrink in odd ones */
		double p_del = round % 2 ? 0.8 : 0.2;

		for (int i = 0; i < 150000; i++) {
			uint64_t k = sh_rand_below(&r, N_KEYS);
			struct val *v;
			bool existed;

			if (sh_rand_double(&r) < p_del) {
				struct val old;
				bool had = idtree_del(t, k, &old);

				gets_ok &= had == (ref[k] != 0) && (!had || old.a == ref[k]);
				live -= had;
				ref[k] = 0;
			} else {
				idtree_put(t, k, (void **)&v, &existed);
				gets_ok &= existed == (ref[k] != 0);
				gets_ok &= existed || (v->a == 0 && v->b == 0);
				live += !existed;
				ref[k] = k * 3 + (uint64_t)round + 1;
				*v = (struct val){ref[k], k, ~k};
			}
			if (i % 25000 == 0)
				checks_ok &= idtree_check(t) == 0;
		}
		checks_ok &= idtree_check(t) == 0;
		diag("round %d: %zu keys, %zu bytes (%.1f per key)", round, idtree_count(t),
		     idtree_memory(t), (double)idtree_memory(t) / (double)(live ? live : 1));
	}
	ok(gets_ok, "put and del report presence and old values as the reference says");
	ok(checks_ok, "the structure is valid all along (order, fill, depth, chain)");
	is_int(idtree_count(t), live, "count");
	ok(check_all(t, &n), "iteration gives exactly the reference's keys in order");
	is_int(n, live, "and as many");
	{
		size_t found = 0, right = 0;

		for (uint64_t k = 0; k < N_KEYS; k++) {
			struct val *v = idtree_get(t, k);

			found += v != NULL;
			right += (v != NULL) == (ref[k] != 0) &&
				 (v == NULL || (v->a == ref[k] && v->b == k && v->c == ~k));
		}
		is_int(right, N_KEYS, "get agrees with the reference for every key");
		is_int(found, live, "get finds every live key");
	}
	/* seek */
	{
		struct idtree_iter it;
		uint64_t key, want = 12345;
		void *v;

		while (want < N_KEYS && ref[want] == 0)
			want++;
		idtree_seek(t, 12345, &it);
		ok(idtree_next(&it, &key, &v) && key == want, "seek finds the first key >= 12345");
		idtree_seek(t, N_KEYS, &it);
		ok(!idtree_next(&it, &key, &v), "seek past the last key gives nothing");
	}
	for (uint64_t k = 0; k < N_KEYS; k++)
		idtree_del(t, k, NULL);
	is_int(idtree_count(t), 0, "deleting everything empties it");
	ok(idtree_check(t) == 0, "and the empty tree is valid");
	idtree_free(t);
	free(ref);
}

static void test_dense_memory(void)
{
	struct idtree *t = idtree_new(24);
	void *v;
	bool existed;
	double per;

	for (uint64_t k = 0; k < 100000; k++)
		idtree_put(t, k * 7, &v, &existed);
	per = (double)idtree_memory(t) / 100000.0;
	ok(per < 70.0, "ascending inserts: %.1f bytes per key of 32 (key + 24-byte value)", per);
	ok(idtree_check(t) == 0, "valid");
	idtree_free(t);
}

static void test_enomem(void)
{
	struct idtree *t = idtree_new(8);
	void *v;
	bool existed;
	int rv = 0;
	uint64_t k;

	for (k = 0; rv == 0 && k < 100000; k++) {
		sh_alloc_fail_after(0);
		rv = idtree_put(t, k, &v, &existed);
		sh_alloc_fail_after(-1);
		if (rv == 0)
			continue;
		is_int(rv, SH_ENOMEM, "a put that needs memory fails with SH_ENOMEM (key %llu)",
		       (unsigned long long)k);
		is_int(idtree_count(t), k, "the tree is unchanged");
		ok(idtree_get(t, k) == NULL, "the key is not there");
		ok(idtree_check(t) == 0, "and valid");
		is_int(idtree_put(t, k, &v, &existed), 0, "with memory again the put works");
	}
	ok(rv != 0, "some put needed memory");
	idtree_free(t);
}

int main(void)
{
	test_random();
	test_dense_memory();
	test_enomem();
	return done_testing();
}
