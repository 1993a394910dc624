/* bench_data: see bench_data.h. */
#include "build.h"

#include "bench_data.h"

#include "index/distance.h"
#include "util/alloc.h"
#include "util/rand.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static size_t status_kb(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	size_t kb = 0, klen = strlen(key);

	while (f != NULL && fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, key, klen) == 0)
			kb = strtoull(line + klen, NULL, 10);
	if (f != NULL)
		fclose(f);
	return kb * 1024;
}

size_t rss_bytes(void)
{
	return status_kb("VmRSS:");
}

size_t huge_bytes(void)
{
	FILE *f = fopen("/proc/self/smaps_rollup", "r");
	char line[256];
	size_t kb = 0;

	while (f != NULL && fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, "AnonHugePages:", 14) == 0)
			kb = strtoull(line + 14, NULL, 10);
	if (f != NULL)
		fclose(f);
	return kb * 1024;
}

size_t rss_peak_bytes(void)
{
	return status_kb("VmHWM:");
}

void rss_peak_reset(void)
{
	FILE *f = fopen("/proc/self/clear_refs", "w");

	if (f != NULL) {
		fputs("5", f);
		fclose(f);
	}
}

/* ------------------------------------------------------------ Fashion-MNIST */

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* An idx3-ubyte.gz file of images, through gzip -dc; up to max images. */
static float *read_idx(const char *file, size_t max, size_t *n, size_t *dim)
{
	char cmd[512];
	unsigned char hdr[16], *row;
	FILE *p;
	float *out = NULL;
	size_t rows;

	snprintf(cmd, sizeof cmd, "gzip -dc '%s/%s'", FASHION_DIR, file);
	if ((p = popen(cmd, "r")) == NULL || fread(hdr, 1, 16, p) != 16 || be32(hdr) != 0x803) {
		fprintf(stderr, "bench: cannot read %s/%s (install dataset-fashion-mnist)\n",
			FASHION_DIR, file);
		if (p != NULL)
			pclose(p);
		return NULL;
	}
	rows = be32(hdr + 4);
	*n = rows < max ? rows : max;
	*dim = (size_t)be32(hdr + 8) * be32(hdr + 12);
	out = sh_malloc(*n * *dim * sizeof *out);
	row = sh_malloc(*dim);
	for (size_t i = 0; out != NULL && row != NULL && i < *n; i++) {
		if (fread(row, 1, *dim, p) != *dim) {
			sh_free(out);
			out = NULL;
			break;
		}
		for (size_t j = 0; j < *dim; j++)
			out[i * *dim + j] = row[j];
	}
	sh_free(row);
	pclose(p);
	return out;
}

int data_fashion(struct dataset *d, size_t n, size_t nq)
{
	size_t dim_q;

	memset(d, 0, sizeof *d);
	d->base = read_idx("train-images-idx3-ubyte.gz", n ? n : SIZE_MAX, &d->n, &d->dim);
	d->queries = read_idx("t10k-images-idx3-ubyte.gz", nq ? nq : SIZE_MAX, &d->nq, &dim_q);
	if (d->base == NULL || d->queries == NULL || dim_q != d->dim)
		return -1;
	snprintf(d->name, sizeof d->name, "fashion-mnist-%zu", d->n);
	return 0;
}

/* ------------------------------------------------------------ Gaussian mixture */

#define G_DIM     128
#define G_CENTRES 1000
#define G_LOCAL   24

static void gauss_points(float *out, size_t n, const float *centres, const float *bases,
			 uint64_t seed)
{
	struct sh_rand r;
	float z[G_LOCAL];

	sh_rand_seed(&r, seed);
	for (size_t i = 0; i < n; i++) {
		size_t c = sh_rand_below(&r, G_CENTRES);
		const float *b = bases + c * G_DIM * G_LOCAL;
		float *v = out + i * G_DIM;

		for (int k = 0; k < G_LOCAL; k++)
			z[k] = (float)sh_rand_normal(&r);
		for (int j = 0; j < G_DIM; j++) {
			float s = centres[c * G_DIM + j] + 0.1f * (float)sh_rand_normal(&r);

			for (int k = 0; k < G_LOCAL; k++)
				s += b[j * G_LOCAL + k] * z[k];
			v[j] = s;
		}
	}
}

int data_gauss(struct dataset *d, size_t n, size_t nq)
{
	float *centres = sh_malloc(G_CENTRES * G_DIM * sizeof *centres);
	float *bases = sh_malloc((size_t)G_CENTRES * G_DIM * G_LOCAL * sizeof *bases);
	struct sh_rand r;

	memset(d, 0, sizeof *d);
	sh_rand_seed(&r, 20261121);
	for (size_t i = 0; i < G_CENTRES * G_DIM; i++)
		centres[i] = 3.0f * (float)sh_rand_normal(&r);
	for (size_t i = 0; i < (size_t)G_CENTRES * G_DIM * G_LOCAL; i++)
		bases[i] = (float)sh_rand_normal(&r) / 4.9f; /* ~ 1/sqrt(24) */
	d->dim = G_DIM;
	d->n = n;
	d->nq = nq;
	d->base = sh_malloc(n * G_DIM * sizeof(float));
	d->queries = sh_malloc(nq * G_DIM * sizeof(float));
	gauss_points(d->base, n, centres, bases, 1);
	gauss_points(d->queries, nq, centres, bases, 2);
	sh_free(centres);
	sh_free(bases);
	snprintf(d->name, sizeof d->name, "gauss-%zu", n);
	return 0;
}

/* ------------------------------------------------------------ ground truth */

struct gt_job {
	struct dataset *d;
	_Atomic size_t next; /* next block of queries */
};

#define GT_QBLOCK 64
#define GT_BBLOCK 2048

/* Exact top-k for queries [q0, q1): base in blocks that stay in cache. */
static void gt_block(struct dataset *d, size_t q0, size_t q1, const struct dist_kernels *k)
{
	float bd[GT_QBLOCK][64];
	uint32_t *t = d->truth;

	for (size_t q = q0; q < q1; q++)
		for (size_t j = 0; j < d->k; j++)
			bd[q - q0][j] = INFINITY;
	for (size_t b0 = 0; b0 < d->n; b0 += GT_BBLOCK) {
		size_t b1 = b0 + GT_BBLOCK < d->n ? b0 + GT_BBLOCK : d->n;

		for (size_t q = q0; q < q1; q++) {
			float *best = bd[q - q0];
			uint32_t *ids = t + q * d->k;

			for (size_t b = b0; b < b1; b++) {
				float dist = k->l2sq(d->queries + q * d->dim, d->base + b * d->dim,
						     d->dim);
				size_t j = d->k - 1;

				if (dist >= best[j])
					continue;
				while (j > 0 && best[j - 1] > dist) {
					best[j] = best[j - 1];
					ids[j] = ids[j - 1];
					j--;
				}
				best[j] = dist;
				ids[j] = (uint32_t)b;
			}
		}
	}
}

static void *gt_worker(void *arg)
{
	struct gt_job *j = arg;
	size_t q0;

	while ((q0 = atomic_fetch_add(&j->next, GT_QBLOCK)) < j->d->nq) {
		size_t q1 = q0 + GT_QBLOCK < j->d->nq ? q0 + GT_QBLOCK : j->d->nq;

		gt_block(j->d, q0, q1, dist_best());
	}
	return NULL;
}

static void gt_compute(struct dataset *d, unsigned threads)
{
	struct gt_job j = {d, 0};
	pthread_t t[64];

	for (unsigned i = 1; i < threads && i < 64; i++)
		pthread_create(&t[i], NULL, gt_worker, &j);
	gt_worker(&j);
	for (unsigned i = 1; i < threads && i < 64; i++)
		pthread_join(t[i], NULL);
}

int data_truth(struct dataset *d, size_t k, const char *cache_dir, unsigned threads)
{
	char path[1024];
	FILE *f;
	size_t bytes = d->nq * k * sizeof(uint32_t);
	double t0;

	d->k = k;
	d->truth = sh_malloc(bytes);
	snprintf(path, sizeof path, "%s/truth-%s-q%zu-k%zu.bin", cache_dir, d->name, d->nq, k);
	if ((f = fopen(path, "rb")) != NULL) {
		size_t got = fread(d->truth, 1, bytes, f);

		fclose(f);
		if (got == bytes)
			return 0;
	}
	fprintf(stderr, "bench: computing exact top-%zu for %zu queries over %zu points...\n", k,
		d->nq, d->n);
	t0 = now_sec();
	gt_compute(d, threads);
	fprintf(stderr, "bench: ground truth took %.1f s\n", now_sec() - t0);
	if ((f = fopen(path, "wb")) != NULL) {
		if (fwrite(d->truth, 1, bytes, f) == bytes)
			fprintf(stderr, "bench: cached in %s\n", path);
		fclose(f);
	}
	return 0;
}

void data_free(struct dataset *d)
{
	sh_free(d->base);
	sh_free(d->queries);
	sh_free(d->truth);
	memset(d, 0, sizeof *d);
}
