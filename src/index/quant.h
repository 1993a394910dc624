/*
 * quant: int8 scalar quantization of float vectors, for graph traversal on
 * 8-bit codes (four times less memory traffic) with re-scoring in float32,
 * as Qdrant's and Redis vector sets' scalar quantization do.
 *
 * One map for all dimensions, chosen so that distances between codes come
 * from integer kernels without per-vector corrections:
 *   l2 (unsigned):   x ~ lo + scale * q, q in 0..255, and the offset cancels:
 *                    |x - y|^2 ~ scale^2 * sum (qx_i - qy_i)^2
 *   dot, cosine (signed, symmetric): x ~ scale * q, q in -127..127:
 *                    x . y ~ scale^2 * sum qx_i qy_i
 * The range comes from the 0.1% and 99.9% quantiles of a training sample
 * (for the symmetric map, the larger of their magnitudes), so rare outliers
 * do not stretch the grid; values outside it are clamped.
 *
 * A code is dim bytes.  Pure functions; a trained struct quant is read-only
 * and may be shared by threads.
 */
#ifndef SHOAL_INDEX_QUANT_H
#define SHOAL_INDEX_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct quant {
	float lo; /* 0 when symmetric */
	float scale;
	float inv_scale;
	bool symmetric;
};

/* Fit the map to n sample values (n >= 1); sample is reordered. */
void quant_train(struct quant *q, float *sample, size_t n, bool symmetric);
void quant_encode(const struct quant *q, const float *x, size_t dim, uint8_t *code);

#endif
