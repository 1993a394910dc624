/*
 * rand: a small, fast, seedable pseudo-random generator (xoshiro256**, by
 * Blackman and Vigna, seeded through splitmix64).
 *
 * The same seed gives the same sequence on every platform, which is what the
 * simulator's bit-for-bit replay and the HNSW level assignment rely on.  Not
 * cryptographic.  A struct sh_rand is owned by one thread at a time.
 */
#ifndef SHOAL_UTIL_RAND_H
#define SHOAL_UTIL_RAND_H

#include <stdint.h>

struct sh_rand {
	uint64_t s[4];
};

void sh_rand_seed(struct sh_rand *r, uint64_t seed);
uint64_t sh_rand_u64(struct sh_rand *r);
uint32_t sh_rand_u32(struct sh_rand *r);
/* Uniform in [0, bound), without modulo bias; bound 0 returns 0. */
uint64_t sh_rand_below(struct sh_rand *r, uint64_t bound);
/* Uniform in [0, 1), 53 random bits. */
double sh_rand_double(struct sh_rand *r);
/* Standard normal (mean 0, variance 1), Marsaglia's polar method. */
double sh_rand_normal(struct sh_rand *r);

/* 64 bits from the operating system's entropy source (getrandom), for seeds
 * and identifiers; returns 0 on success, a negative SH_E* code on failure. */
int sh_rand_os(uint64_t *out);

#endif
