/* bench_hnswlib: the C face of hnswlib_adapter.cpp (benchmark only). */
#ifndef SHOAL_BENCH_HNSWLIB_H
#define SHOAL_BENCH_HNSWLIB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* metric: 0 = squared L2, 1 = inner product (1 - dot). */
void *hl_new(int dim, int metric, size_t max_elements, int m, int efc, uint64_t seed);
/* Thread-safe: several threads may add at once (hnswlib's own locking). */
void hl_add(void *h, const float *v, uint64_t label);
void hl_set_ef(void *h, size_t ef);
size_t hl_search(void *h, const float *q, size_t k, uint64_t *labels, float *dist);
void hl_free(void *h);

#ifdef __cplusplus
}
#endif

#endif
