/*
 * distance: the vector distance kernels, chosen once at run time from the
 * CPU's features (AVX-512, else AVX2 + FMA, else portable scalar C).
 *
 * Every kernel returns a value where smaller means closer:
 *   l2sq(a, b)  = sum (a_i - b_i)^2           (metric "l2": squared, no sqrt)
 *   dot(a, b)   = sum a_i * b_i               (the raw inner product)
 * The index turns these into metric distances: l2 -> l2sq, dot -> -dot,
 * cosine -> 1 - dot on vectors normalized once at insert and at query
 * (dist_normalize), so cosine costs exactly an inner product.
 *
 * The SIMD versions sum in a different order than the scalar reference, so
 * they differ from it by rounding only: t/distance.c checks
 *   |fast - exact| <= 2 * dim * FLT_EPSILON * sum |term_i|
 * against the exact (double precision) sum, for every dim 1..1024 and some
 * up to 65536, at unaligned addresses.
 *
 * Kernels are pure functions of their inputs: thread-safe.  Selection runs
 * in a constructor before main().
 */
#ifndef SHOAL_INDEX_DISTANCE_H
#define SHOAL_INDEX_DISTANCE_H

#include <stddef.h>
#include <stdint.h>

enum sh_metric {
	SH_METRIC_L2 = 0,
	SH_METRIC_COSINE = 1,
	SH_METRIC_DOT = 2,
};

/* "l2", "cosine", "dot" <-> metric; parse returns -1 when unknown. */
const char *sh_metric_name(enum sh_metric m);
int sh_metric_parse(const char *name);

typedef float (*dist_fn)(const float *a, const float *b, size_t dim);

enum dist_isa {
	DIST_SCALAR = 0,
	DIST_AVX2 = 1,   /* AVX2 + FMA */
	DIST_AVX512 = 2, /* AVX-512 F + BW + VL + VNNI */
};

struct dist_kernels {
	enum dist_isa isa;
	dist_fn l2sq;
	dist_fn dot;
	/* int8 codes (see quant.h), exact in 32 bits for dim <= 65536:
	 * sum (a_i - b_i)^2 of unsigned bytes, sum a_i * b_i of signed ones. */
	uint32_t (*u8_l2sq)(const uint8_t *a, const uint8_t *b, size_t dim);
	int32_t (*s8_dot)(const int8_t *a, const int8_t *b, size_t dim);
};

/* The best kernels this CPU runs. */
const struct dist_kernels *dist_best(void);

/* The kernels of one instruction set, or NULL when this CPU lacks it
 * (for tests and benchmarks). */
const struct dist_kernels *dist_for_isa(enum dist_isa isa);

const char *dist_isa_name(enum dist_isa isa);

/* Scale v to unit length, computing in double; returns its original length
 * (as a float: infinite over FLT_MAX; 0 leaves v as is). */
float dist_normalize(float *v, size_t dim);

#endif
