/*
 * rand: see rand.h.  xoshiro256** 1.0 and splitmix64 as published by
 * David Blackman and Sebastiano Vigna (https://prng.di.unimi.it/).
 */
#include "build.h"

#include "util/rand.h"

#include "util/err.h"

#include <errno.h>
#include <math.h>
#include <sys/random.h>

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15u);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

void sh_rand_seed(struct sh_rand *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

uint64_t sh_rand_u64(struct sh_rand *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

uint32_t sh_rand_u32(struct sh_rand *r)
{
	return (uint32_t)(sh_rand_u64(r) >> 32);
}

/* Lemire's multiply-and-reject ("Fast Random Integer Generation in an
 * Interval", 2019): unbiased, rarely more than one draw. */
uint64_t sh_rand_below(struct sh_rand *r, uint64_t bound)
{
	unsigned __int128 m;
	uint64_t low;

	if (bound == 0)
		return 0;
	m = (unsigned __int128)sh_rand_u64(r) * bound;
	low = (uint64_t)m;
	if (low < bound) {
		uint64_t threshold = -bound % bound;

		while (low < threshold) {
			m = (unsigned __int128)sh_rand_u64(r) * bound;
			low = (uint64_t)m;
		}
	}
	return (uint64_t)(m >> 64);
}

double sh_rand_double(struct sh_rand *r)
{
	return (double)(sh_rand_u64(r) >> 11) * 0x1.0p-53;
}

double sh_rand_normal(struct sh_rand *r)
{
	double u, v, s;

	do {
		u = 2.0 * sh_rand_double(r) - 1.0;
		v = 2.0 * sh_rand_double(r) - 1.0;
		s = u * u + v * v;
	} while (s >= 1.0 || s == 0.0);
	return u * sqrt(-2.0 * log(s) / s);
}

int sh_rand_os(uint64_t *out)
{
	ssize_t n;

	do {
		n = getrandom(out, sizeof *out, 0);
	} while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof *out)
		return SH_EIO;
	return 0;
}
