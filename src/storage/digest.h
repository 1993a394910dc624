/*
 * digest: the state digest of DESIGN.md section 7 — a 128-bit sum of
 * per-collection and per-point hashes (doc/storage-format.md, "State
 * digest"), so that it is updated in O(1) per point as entries are applied
 * and two replicas at the same index compare equal exactly when their
 * states are equal.  The hash is SipHash-2-4 with 128-bit output (Aumasson
 * and Bernstein, 2012), keyed with a fixed key: not a secret, only a good
 * spread.  Pure functions; thread-safe.
 */
#ifndef SHOAL_STORAGE_DIGEST_H
#define SHOAL_STORAGE_DIGEST_H

#include <stddef.h>
#include <stdint.h>

struct digest {
	uint64_t lo, hi;
};

/* SipHash-2-4-128 of a message given in pieces. */
struct siphash {
	uint64_t v[4];
	uint64_t tail; /* bytes not yet in a 64-bit word */
	size_t len;    /* bytes so far */
};

void siphash_init(struct siphash *s, const unsigned char key[16]);
void siphash_update(struct siphash *s, const void *p, size_t len);
struct digest siphash_final(struct siphash *s);

/* Modulo 2^128. */
void digest_add(struct digest *d, struct digest x);
void digest_sub(struct digest *d, struct digest x);
int digest_equal(struct digest a, struct digest b);
/* 32 lowercase hex digits, high half first, and a NUL. */
void digest_hex(struct digest d, char out[33]);

/* The hash of a point: collection name, id, the vector's float bits as
 * sent, the payload JSON (len 0: none). */
struct digest digest_point(const char *name, uint64_t id, const float *vec, uint32_t dim,
			   const void *payload, size_t payload_len);
/* The hash of a collection's identity and parameters. */
struct digest digest_collection(const char *name, uint32_t dim, uint32_t metric, uint32_t m,
				uint32_t ef_construction, uint64_t seed);

#endif
