/*
 * quant: see quant.h.
 */
#include "build.h"

#include "index/quant.h"

#include <math.h>
#include <stdlib.h>

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return (x > y) - (x < y);
}

void quant_train(struct quant *q, float *sample, size_t n, bool symmetric)
{
	float lo, hi;

	qsort(sample, n, sizeof *sample, cmp_float);
	lo = sample[(size_t)((double)(n - 1) * 0.001)];
	hi = sample[(size_t)((double)(n - 1) * 0.999)];
	q->symmetric = symmetric;
	if (symmetric) {
		float a = fabsf(lo) > fabsf(hi) ? fabsf(lo) : fabsf(hi);

		q->lo = 0.0f;
		q->scale = a > 0.0f ? a / 127.0f : 1.0f;
	} else {
		q->lo = lo;
		q->scale = hi > lo ? (hi - lo) / 255.0f : 1.0f;
	}
	q->inv_scale = 1.0f / q->scale;
}

void quant_encode(const struct quant *q, const float *x, size_t dim, uint8_t *code)
{
	for (size_t i = 0; i < dim; i++) {
		float v = (x[i] - q->lo) * q->inv_scale;

		if (q->symmetric) {
			long c = lrintf(v < -127.0f ? -127.0f : v > 127.0f ? 127.0f : v);

			code[i] = (uint8_t)(int8_t)c;
		} else {
			code[i] = (uint8_t)lrintf(v <= 0.0f ? 0.0f : v >= 255.0f ? 255.0f : v);
		}
	}
}
