/*
 * quant: int8 scalar quantization of float vectors, for graph traversal on
 * 8-bit codes (four times less memory traffic) with re-scoring in float32,
 * as Qdrant's and Redis vector sets' scalar quantization do.
 *
 * One affine map for all dimensions, x ~ lo + scale * q with q in 0..255,
 * so that distances between codes come from integer kernels:
 *   l2:  |x - y|^2 ~ scale^2 * sum (qx_i - qy_i)^2
 *   dot: x . y     ~ dim lo^2 + lo scale (sum qx + sum qy) + scale^2 sum qx_i qy_i
 * lo and hi are the 0.1% and 99.9% quantiles of a training sample, so rare
 * outliers do not stretch the grid; values outside [lo, hi] are clamped.
 *
 * A code is dim bytes followed by the sum of its bytes (uint32, at a 4-byte
 * aligned offset): quant_code_size() bytes in all.  Pure functions; a
 * trained struct quant is read-only and may be shared by threads.
 */
#ifndef SHOAL_INDEX_QUANT_H
#define SHOAL_INDEX_QUANT_H

#include <stddef.h>
#include <stdint.h>

struct quant {
	float lo;
	float scale;
	float inv_scale;
};

/* Fit lo/scale to n sample values (n >= 1); sample is reordered. */
void quant_train(struct quant *q, float *sample, size_t n);

size_t quant_code_size(size_t dim);
void quant_encode(const struct quant *q, const float *x, size_t dim, uint8_t *code);

static inline uint32_t quant_code_sum(const uint8_t *code, size_t dim)
{
	return *(const uint32_t *)(const void *)(code + ((dim + 3) & ~(size_t)3));
}

#endif
