/*
 * quant: see quant.h.
 */
#include "build.h"

#include "index/quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return (x > y) - (x < y);
}

void quant_train(struct quant *q, float *sample, size_t n)
{
	float lo, hi;

	qsort(sample, n, sizeof *sample, cmp_float);
	lo = sample[(size_t)((double)(n - 1) * 0.001)];
	hi = sample[(size_t)((double)(n - 1) * 0.999)];
	if (!(hi > lo))
		hi = lo + 1.0f;
	q->lo = lo;
	q->scale = (hi - lo) / 255.0f;
	q->inv_scale = 1.0f / q->scale;
}

size_t quant_code_size(size_t dim)
{
	return ((dim + 3) & ~(size_t)3) + sizeof(uint32_t);
}

void quant_encode(const struct quant *q, const float *x, size_t dim, uint8_t *code)
{
	uint32_t sum = 0;

	for (size_t i = 0; i < dim; i++) {
		float v = (x[i] - q->lo) * q->inv_scale;
		int c = v <= 0.0f ? 0 : v >= 255.0f ? 255 : (int)lrintf(v);

		code[i] = (uint8_t)c;
		sum += (uint32_t)c;
	}
	memset(code + dim, 0, ((dim + 3) & ~(size_t)3) - dim);
	memcpy(code + ((dim + 3) & ~(size_t)3), &sum, sizeof sum);
}
