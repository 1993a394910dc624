/*
 * digest: see digest.h.  SipHash follows the reference implementation
 * (github.com/veorq/SipHash, siphash.c with outlen 16), made incremental.
 */
#include "build.h"

#include "storage/digest.h"

#include "storage/le.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const unsigned char digest_key[16] = "shoal-digest-v1"; /* and a NUL */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static void sipround(uint64_t *v)
{
	v[0] += v[1];
	v[1] = ROTL(v[1], 13);
	v[1] ^= v[0];
	v[0] = ROTL(v[0], 32);
	v[2] += v[3];
	v[3] = ROTL(v[3], 16);
	v[3] ^= v[2];
	v[0] += v[3];
	v[3] = ROTL(v[3], 21);
	v[3] ^= v[0];
	v[2] += v[1];
	v[1] = ROTL(v[1], 17);
	v[1] ^= v[2];
	v[2] = ROTL(v[2], 32);
}

void siphash_init(struct siphash *s, const unsigned char key[16])
{
	uint64_t k0 = le64_get(key), k1 = le64_get(key + 8);

	s->v[0] = 0x736f6d6570736575ull ^ k0;
	s->v[1] = 0x646f72616e646f6dull ^ k1 ^ 0xee;
	s->v[2] = 0x6c7967656e657261ull ^ k0;
	s->v[3] = 0x7465646279746573ull ^ k1;
	s->tail = 0;
	s->len = 0;
}

static void compress(struct siphash *s, uint64_t m)
{
	s->v[3] ^= m;
	sipround(s->v);
	sipround(s->v);
	s->v[0] ^= m;
}

void siphash_update(struct siphash *s, const void *p, size_t len)
{
	const unsigned char *b = p;

	while (len > 0 && s->len % 8 != 0) {
		s->tail |= (uint64_t)*b++ << (8 * (s->len++ % 8));
		len--;
		if (s->len % 8 == 0) {
			compress(s, s->tail);
			s->tail = 0;
		}
	}
	for (; len >= 8; b += 8, len -= 8, s->len += 8)
		compress(s, le64_get(b));
	while (len-- > 0)
		s->tail |= (uint64_t)*b++ << (8 * (s->len++ % 8));
}

struct digest siphash_final(struct siphash *s)
{
	uint64_t b = (uint64_t)s->len << 56 | s->tail;
	struct digest d;

	compress(s, b);
	s->v[2] ^= 0xee;
	for (int i = 0; i < 4; i++)
		sipround(s->v);
	d.lo = s->v[0] ^ s->v[1] ^ s->v[2] ^ s->v[3];
	s->v[1] ^= 0xdd;
	for (int i = 0; i < 4; i++)
		sipround(s->v);
	d.hi = s->v[0] ^ s->v[1] ^ s->v[2] ^ s->v[3];
	return d;
}

void digest_add(struct digest *d, struct digest x)
{
	uint64_t lo = d->lo + x.lo;

	d->hi += x.hi + (lo < d->lo);
	d->lo = lo;
}

void digest_sub(struct digest *d, struct digest x)
{
	uint64_t lo = d->lo - x.lo;

	d->hi -= x.hi + (d->lo < x.lo);
	d->lo = lo;
}

int digest_equal(struct digest a, struct digest b)
{
	return a.lo == b.lo && a.hi == b.hi;
}

void digest_hex(struct digest d, char out[33])
{
	snprintf(out, 33, "%016" PRIx64 "%016" PRIx64, d.hi, d.lo);
}

static void put_name(struct siphash *s, char tag, const char *name)
{
	unsigned char len = (unsigned char)strlen(name);

	siphash_update(s, &tag, 1);
	siphash_update(s, &len, 1);
	siphash_update(s, name, len);
}

static void put_u32(struct siphash *s, uint32_t v)
{
	unsigned char b[4];

	le32_put(b, v);
	siphash_update(s, b, 4);
}

static void put_u64(struct siphash *s, uint64_t v)
{
	unsigned char b[8];

	le64_put(b, v);
	siphash_update(s, b, 8);
}

struct digest digest_point(const char *name, uint64_t id, const float *vec, uint32_t dim,
			   const void *payload, size_t payload_len)
{
	struct siphash s;

	siphash_init(&s, digest_key);
	put_name(&s, 'P', name);
	put_u64(&s, id);
	put_u32(&s, dim);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	siphash_update(&s, vec, (size_t)dim * sizeof *vec);
#else
	for (uint32_t i = 0; i < dim; i++) {
		uint32_t bits;

		memcpy(&bits, &vec[i], 4);
		put_u32(&s, bits);
	}
#endif
	put_u32(&s, (uint32_t)payload_len);
	siphash_update(&s, payload, payload_len);
	return siphash_final(&s);
}

struct digest digest_collection(const char *name, uint32_t dim, uint32_t metric, uint32_t m,
				uint32_t ef_construction, uint64_t seed)
{
	struct siphash s;

	siphash_init(&s, digest_key);
	put_name(&s, 'C', name);
	put_u32(&s, dim);
	put_u32(&s, metric);
	put_u32(&s, m);
	put_u32(&s, ef_construction);
	put_u64(&s, seed);
	return siphash_final(&s);
}
