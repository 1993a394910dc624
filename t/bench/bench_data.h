/*
 * bench_data: the benchmark's datasets and their exact ground truth.
 *
 *   fashion  Fashion-MNIST from Debian's dataset-fashion-mnist: 60,000 train
 *            images as the base, 10,000 test images as queries, 784 floats
 *            (pixel values 0..255), L2 — the ann-benchmarks set.
 *   gauss    a Gaussian mixture made here from a fixed seed: 1,000 centres in
 *            128 dimensions, each cluster spread over its own random
 *            24-dimensional subspace (local intrinsic dimension ~24) plus a
 *            little isotropic noise; queries drawn the same way.
 *
 * Ground truth (exact top-k by L2, blocked brute force on all threads) is
 * cached in a directory, keyed by dataset, size and k.
 */
#ifndef SHOAL_BENCH_DATA_H
#define SHOAL_BENCH_DATA_H

#include <stddef.h>
#include <stdint.h>

struct dataset {
	char name[96];
	size_t dim;
	size_t n, nq;
	float *base;    /* n x dim */
	float *queries; /* nq x dim */
	size_t k;
	uint32_t *truth; /* nq x k, indexes into base */
};

/* Load or generate; returns 0 or prints why and returns -1. */
int data_fashion(struct dataset *d, size_t n, size_t nq);
int data_gauss(struct dataset *d, size_t n, size_t nq);
/* Compute (or read from cache_dir) the exact top-k of every query. */
int data_truth(struct dataset *d, size_t k, const char *cache_dir, unsigned threads);
void data_free(struct dataset *d);

double now_sec(void);
/* Resident set size and its peak, in bytes (from /proc/self/status). */
size_t rss_bytes(void);
size_t rss_peak_bytes(void);
/* Anonymous memory in transparent huge pages. */
size_t huge_bytes(void);
/* Reset the peak to the current RSS (Linux clear_refs). */
void rss_peak_reset(void);

#endif
