/*
 * distance: see distance.h.
 *
 * The float kernels keep four independent accumulators so that consecutive
 * FMAs do not wait on each other (an FMA has a latency of about four cycles
 * and a throughput of one or two per cycle): AVX-512 consumes 64 floats per
 * loop turn, AVX2 32.  The AVX-512 tail uses a masked load, which never
 * touches memory past the end of the vector.
 *
 * The byte kernels widen to 16 bits and multiply-add adjacent pairs into 32
 * bits (VPMADDWD; VPDPWSSD with AVX-512 VNNI), 64 bytes per turn.
 */
#include "build.h"

#include "index/distance.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define SH_X86 1
#endif

const char *sh_metric_name(enum sh_metric m)
{
	switch (m) {
	case SH_METRIC_L2: return "l2";
	case SH_METRIC_COSINE: return "cosine";
	case SH_METRIC_DOT: return "dot";
	}
	return "?";
}

int sh_metric_parse(const char *name)
{
	if (strcmp(name, "l2") == 0)
		return SH_METRIC_L2;
	if (strcmp(name, "cosine") == 0)
		return SH_METRIC_COSINE;
	if (strcmp(name, "dot") == 0)
		return SH_METRIC_DOT;
	return -1;
}

/* ------------------------------------------------------------ scalar */

static float l2sq_scalar(const float *a, const float *b, size_t dim)
{
	float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	size_t i = 0;

	for (; i + 4 <= dim; i += 4) {
		float d0 = a[i] - b[i], d1 = a[i + 1] - b[i + 1];
		float d2 = a[i + 2] - b[i + 2], d3 = a[i + 3] - b[i + 3];

		s0 += d0 * d0;
		s1 += d1 * d1;
		s2 += d2 * d2;
		s3 += d3 * d3;
	}
	for (; i < dim; i++)
		s0 += (a[i] - b[i]) * (a[i] - b[i]);
	return (s0 + s1) + (s2 + s3);
}

static float dot_scalar(const float *a, const float *b, size_t dim)
{
	float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	size_t i = 0;

	for (; i + 4 <= dim; i += 4) {
		s0 += a[i] * b[i];
		s1 += a[i + 1] * b[i + 1];
		s2 += a[i + 2] * b[i + 2];
		s3 += a[i + 3] * b[i + 3];
	}
	for (; i < dim; i++)
		s0 += a[i] * b[i];
	return (s0 + s1) + (s2 + s3);
}

static uint32_t u8_l2sq_scalar(const uint8_t *a, const uint8_t *b, size_t dim)
{
	uint32_t s = 0;

	for (size_t i = 0; i < dim; i++) {
		int d = (int)a[i] - (int)b[i];

		s += (uint32_t)(d * d);
	}
	return s;
}

static int32_t s8_dot_scalar(const int8_t *a, const int8_t *b, size_t dim)
{
	int32_t s = 0;

	for (size_t i = 0; i < dim; i++)
		s += (int32_t)a[i] * b[i];
	return s;
}

static const struct dist_kernels k_scalar = {DIST_SCALAR, l2sq_scalar, dot_scalar, u8_l2sq_scalar,
					     s8_dot_scalar};

#ifdef SH_X86
/* ------------------------------------------------------------ AVX2 + FMA */

#define AVX2 __attribute__((target("avx2,fma")))

AVX2 static float hsum256(__m256 v)
{
	__m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);

	lo = _mm_add_ps(lo, hi);
	lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
	lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
	return _mm_cvtss_f32(lo);
}

AVX2 static float l2sq_avx2(const float *a, const float *b, size_t dim)
{
	__m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
	size_t i = 0;
	float tail = 0;

	for (; i + 32 <= dim; i += 32) {
		__m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
		__m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
		__m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16));
		__m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24));

		s0 = _mm256_fmadd_ps(d0, d0, s0);
		s1 = _mm256_fmadd_ps(d1, d1, s1);
		s2 = _mm256_fmadd_ps(d2, d2, s2);
		s3 = _mm256_fmadd_ps(d3, d3, s3);
	}
	for (; i + 8 <= dim; i += 8) {
		__m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));

		s0 = _mm256_fmadd_ps(d, d, s0);
	}
	for (; i < dim; i++)
		tail += (a[i] - b[i]) * (a[i] - b[i]);
	return hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3))) + tail;
}

AVX2 static float dot_avx2(const float *a, const float *b, size_t dim)
{
	__m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
	size_t i = 0;
	float tail = 0;

	for (; i + 32 <= dim; i += 32) {
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
		s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
		s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
		s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
	}
	for (; i + 8 <= dim; i += 8)
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
	for (; i < dim; i++)
		tail += a[i] * b[i];
	return hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3))) + tail;
}

AVX2 static uint32_t hsum256_epi32(__m256i v)
{
	__m128i x = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));

	x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0x4e));
	x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0xb1));
	return (uint32_t)_mm_cvtsi128_si32(x);
}

AVX2 static uint32_t u8_l2sq_avx2(const uint8_t *a, const uint8_t *b, size_t dim)
{
	__m256i s = _mm256_setzero_si256();
	size_t i = 0;
	uint32_t tail = 0;

	for (; i + 16 <= dim; i += 16) {
		__m256i x = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(a + i)));
		__m256i y = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(b + i)));
		__m256i d = _mm256_sub_epi16(x, y);

		s = _mm256_add_epi32(s, _mm256_madd_epi16(d, d));
	}
	for (; i < dim; i++) {
		int d = (int)a[i] - (int)b[i];

		tail += (uint32_t)(d * d);
	}
	return hsum256_epi32(s) + tail;
}

AVX2 static int32_t s8_dot_avx2(const int8_t *a, const int8_t *b, size_t dim)
{
	__m256i s = _mm256_setzero_si256();
	size_t i = 0;
	int32_t tail = 0;

	for (; i + 16 <= dim; i += 16) {
		__m256i x = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(a + i)));
		__m256i y = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + i)));

		s = _mm256_add_epi32(s, _mm256_madd_epi16(x, y));
	}
	for (; i < dim; i++)
		tail += (int32_t)a[i] * b[i];
	return (int32_t)hsum256_epi32(s) + tail;
}

static const struct dist_kernels k_avx2 = {DIST_AVX2, l2sq_avx2, dot_avx2, u8_l2sq_avx2,
					   s8_dot_avx2};

/* ------------------------------------------------------------ AVX-512 */

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

AVX512 static __mmask16 tail_mask16(size_t n)
{
	return (__mmask16)((1u << n) - 1);
}

AVX512 static float l2sq_avx512(const float *a, const float *b, size_t dim)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
	size_t i = 0;

	for (; i + 64 <= dim; i += 64) {
		__m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
		__m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
		__m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32));
		__m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48));

		s0 = _mm512_fmadd_ps(d0, d0, s0);
		s1 = _mm512_fmadd_ps(d1, d1, s1);
		s2 = _mm512_fmadd_ps(d2, d2, s2);
		s3 = _mm512_fmadd_ps(d3, d3, s3);
	}
	for (; i + 16 <= dim; i += 16) {
		__m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));

		s1 = _mm512_fmadd_ps(d, d, s1);
	}
	if (i < dim) {
		__mmask16 m = tail_mask16(dim - i);
		__m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i),
					 _mm512_maskz_loadu_ps(m, b + i));

		s2 = _mm512_fmadd_ps(d, d, s2);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

AVX512 static float dot_avx512(const float *a, const float *b, size_t dim)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
	size_t i = 0;

	for (; i + 64 <= dim; i += 64) {
		s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
		s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
		s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
		s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
	}
	for (; i + 16 <= dim; i += 16)
		s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s1);
	if (i < dim) {
		__mmask16 m = tail_mask16(dim - i);

		s2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i),
				     _mm512_maskz_loadu_ps(m, b + i), s2);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

/* Sum of the 16 lanes in unsigned arithmetic (GCC's _mm512_reduce_add_epi32
 * adds as signed int, which is undefined on overflow). */
AVX512 static uint32_t hsum512_u32(__m512i v)
{
	uint32_t lanes[16], s = 0;

	_mm512_storeu_si512(lanes, v);
	for (int i = 0; i < 16; i++)
		s += lanes[i];
	return s;
}

AVX512 static __mmask32 tail_mask32(size_t n)
{
	return (__mmask32)((1ull << n) - 1);
}

/* Squares of byte differences, 32 bytes widened to 16 bits; VPDPWSSD adds
 * the pairwise products to 32-bit lanes in one instruction. */
AVX512 static uint32_t u8_l2sq_avx512(const uint8_t *a, const uint8_t *b, size_t dim)
{
	__m512i s0 = _mm512_setzero_si512(), s1 = s0;
	size_t i = 0;

	for (; i + 64 <= dim; i += 64) {
		__m512i x0 = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(a + i)));
		__m512i y0 = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(b + i)));
		__m512i x1 =
			_mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(a + i + 32)));
		__m512i y1 =
			_mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(b + i + 32)));
		__m512i d0 = _mm512_sub_epi16(x0, y0), d1 = _mm512_sub_epi16(x1, y1);

		s0 = _mm512_dpwssd_epi32(s0, d0, d0);
		s1 = _mm512_dpwssd_epi32(s1, d1, d1);
	}
	for (; i < dim; i += 32) {
		__mmask32 m = dim - i >= 32 ? (__mmask32)~0u : tail_mask32(dim - i);
		__m512i x = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, a + i));
		__m512i y = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, b + i));
		__m512i d = _mm512_sub_epi16(x, y);

		s0 = _mm512_dpwssd_epi32(s0, d, d);
	}
	return hsum512_u32(s0) + hsum512_u32(s1);
}

AVX512 static int32_t s8_dot_avx512(const int8_t *a, const int8_t *b, size_t dim)
{
	__m512i s0 = _mm512_setzero_si512(), s1 = s0;
	size_t i = 0;

	for (; i + 64 <= dim; i += 64) {
		__m512i x0 = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(a + i)));
		__m512i y0 = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(b + i)));
		__m512i x1 =
			_mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(a + i + 32)));
		__m512i y1 =
			_mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(b + i + 32)));

		s0 = _mm512_dpwssd_epi32(s0, x0, y0);
		s1 = _mm512_dpwssd_epi32(s1, x1, y1);
	}
	for (; i < dim; i += 32) {
		__mmask32 m = dim - i >= 32 ? (__mmask32)~0u : tail_mask32(dim - i);
		__m512i x = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, a + i));
		__m512i y = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, b + i));

		s0 = _mm512_dpwssd_epi32(s0, x, y);
	}
	return (int32_t)(hsum512_u32(s0) + hsum512_u32(s1));
}

static const struct dist_kernels k_avx512 = {DIST_AVX512, l2sq_avx512, dot_avx512, u8_l2sq_avx512,
					     s8_dot_avx512};

static int cpu_has(enum dist_isa isa)
{
	__builtin_cpu_init();
	if (isa == DIST_AVX2)
		return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
	if (isa == DIST_AVX512)
		return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
		       __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
	return 1;
}
#else
static int cpu_has(enum dist_isa isa)
{
	return isa == DIST_SCALAR;
}
#endif

static const struct dist_kernels *best = &k_scalar;

__attribute__((constructor)) static void dist_init(void)
{
	for (int isa = DIST_AVX512; isa > DIST_SCALAR; isa--) {
		if (dist_for_isa((enum dist_isa)isa) != NULL) {
			best = dist_for_isa((enum dist_isa)isa);
			return;
		}
	}
}

const struct dist_kernels *dist_best(void)
{
	return best;
}

const struct dist_kernels *dist_for_isa(enum dist_isa isa)
{
	if (!cpu_has(isa))
		return NULL;
	switch (isa) {
	case DIST_SCALAR: return &k_scalar;
#ifdef SH_X86
	case DIST_AVX2: return &k_avx2;
	case DIST_AVX512: return &k_avx512;
#else
	default: return NULL;
#endif
	}
	return NULL;
}

const char *dist_isa_name(enum dist_isa isa)
{
	static const char *const names[] = {"scalar", "avx2", "avx512"};

	return isa <= DIST_AVX512 ? names[isa] : "?";
}

/* In double: the norm of a float vector and its inverse always fit (from
 * 1.4e-45 to 8.7e40), where in float a subnormal norm has an infinite
 * inverse (Inf and NaN after scaling) and a norm over 1.8e19 squares to
 * infinity (all zeros). */
float dist_normalize(float *v, size_t dim)
{
	double sq = 0, norm, inv;

	for (size_t i = 0; i < dim; i++)
		sq += (double)v[i] * (double)v[i];
	norm = sqrt(sq);
	if (!(norm > 0.0))
		return 0.0f;
	inv = 1.0 / norm;
	for (size_t i = 0; i < dim; i++)
		v[i] = (float)((double)v[i] * inv);
	return (float)norm;
}
