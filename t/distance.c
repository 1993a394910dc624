/* Tests of index/distance: every kernel of every instruction set this CPU
 * has, against an exact (double precision) sum, for every dimension
 * 1..1024 and some up to 65536, at unaligned addresses.
 *
 * Tolerance: float kernels may differ from the exact value by rounding:
 * |got - exact| <= 2 * sqrt(dim) * FLT_EPSILON * sum |term_i| (+ 1e-30 for
 * zero).  That is the random-walk growth of rounding error; the worst seen
 * on this data is 0.32 of it, and a kernel that drops or repeats an element
 * of a dimension up to 1024 exceeds it. */
#include "build.h"

#include "index/distance.h"
#include "tap.h"
#include "util/alloc.h"
#include "util/rand.h"

#include <float.h>
#include <math.h>

#define MAXDIM 65536

static float *fa, *fb;
static uint8_t *ua, *ub;

struct exact {
	double l2, dot, l2_abs, dot_abs;
};

static struct exact exact(const float *a, const float *b, size_t dim)
{
	struct exact e = {0, 0, 0, 0};

	for (size_t i = 0; i < dim; i++) {
		double d = (double)a[i] - (double)b[i], p = (double)a[i] * (double)b[i];

		e.l2 += d * d;
		e.l2_abs += d * d;
		e.dot += p;
		e.dot_abs += fabs(p);
	}
	return e;
}

static int close_enough(float got, double want, double abs_sum, size_t dim)
{
	return fabs((double)got - want) <=
	       2.0 * sqrt((double)dim) * (double)FLT_EPSILON * abs_sum + 1e-30;
}

/* One instruction set over many dimensions and offsets; counts failures. */
static void check_isa(const struct dist_kernels *k, const size_t *dims, size_t n_dims,
		      const char *what)
{
	int bad_f = 0, bad_u = 0;
	size_t first = 0;
	const struct dist_kernels *ref = dist_for_isa(DIST_SCALAR);

	for (size_t j = 0; j < n_dims; j++) {
		size_t dim = dims[j], off = j % 7; /* unaligned starts */
		const float *a = fa + off, *b = fb + (j % 5);
		struct exact e = exact(a, b, dim);

		if (!close_enough(k->l2sq(a, b, dim), e.l2, e.l2_abs, dim) ||
		    !close_enough(k->dot(a, b, dim), e.dot, e.dot_abs, dim)) {
			first = bad_f++ ? first : dim;
		}
		if (k->u8_l2sq(ua + off, ub + 1, dim) != ref->u8_l2sq(ua + off, ub + 1, dim) ||
		    k->s8_dot((const int8_t *)ua + off, (const int8_t *)ub + 1, dim) !=
			    ref->s8_dot((const int8_t *)ua + off, (const int8_t *)ub + 1, dim))
			bad_u++;
	}
	ok(bad_f == 0, "%s %s: float l2sq and dot within tolerance (%d bad, first dim %zu)",
	   dist_isa_name(k->isa), what, bad_f, first);
	ok(bad_u == 0, "%s %s: byte kernels equal the scalar ones exactly (%d bad)",
	   dist_isa_name(k->isa), what, bad_u);
}

static void test_extremes(const struct dist_kernels *k)
{
	uint8_t *x = ua, *y = ub;
	int8_t *sx = (int8_t *)ua, *sy = (int8_t *)ub;
	uint32_t want = 255u * 255u * MAXDIM;

	for (size_t i = 0; i < MAXDIM; i++) {
		x[i] = 255;
		y[i] = 0;
	}
	is_int(k->u8_l2sq(x, y, MAXDIM), want, "%s: byte l2sq exact at 65536 x 255^2",
	       dist_isa_name(k->isa));
	for (size_t i = 0; i < MAXDIM; i++) {
		sx[i] = -127;
		sy[i] = (int8_t)(i % 2 ? 127 : -127);
	}
	is_int(k->s8_dot(sx, sx, MAXDIM), 127 * 127 * MAXDIM,
	       "%s: signed dot exact at 65536 x 127^2", dist_isa_name(k->isa));
	is_int(k->s8_dot(sx, sy, MAXDIM), 0, "%s: signed dot cancels exactly",
	       dist_isa_name(k->isa));
}

int main(void)
{
	static size_t small[1024], large[] = {1500, 2048, 3000, 4096, 8191, 16384, 65536 - 8};
	struct sh_rand r;
	float v[3] = {3, 0, 4}, z[2] = {0, 0};

	fa = sh_malloc((MAXDIM + 16) * sizeof *fa);
	fb = sh_malloc((MAXDIM + 16) * sizeof *fb);
	ua = sh_malloc(MAXDIM + 16);
	ub = sh_malloc(MAXDIM + 16);
	sh_rand_seed(&r, 1);
	for (size_t i = 0; i < MAXDIM + 16; i++) {
		fa[i] = (float)sh_rand_normal(&r);
		fb[i] = (float)(sh_rand_normal(&r) * 3.0 + 1.0);
		ua[i] = (uint8_t)sh_rand_u32(&r);
		ub[i] = (uint8_t)sh_rand_u32(&r);
	}
	for (size_t i = 0; i < 1024; i++)
		small[i] = i + 1;
	diag("best kernels on this CPU: %s", dist_isa_name(dist_best()->isa));
	for (int isa = DIST_SCALAR; isa <= DIST_AVX512; isa++) {
		const struct dist_kernels *k = dist_for_isa((enum dist_isa)isa);

		if (k == NULL) {
			skip(4, "this CPU lacks the instruction set");
			continue;
		}
		check_isa(k, small, 1024, "dims 1..1024");
		check_isa(k, large, sizeof large / sizeof large[0], "dims up to 65528");
	}
	for (int isa = DIST_AVX2; isa <= DIST_AVX512; isa++)
		if (dist_for_isa((enum dist_isa)isa) != NULL)
			test_extremes(dist_for_isa((enum dist_isa)isa));
	{
		int top = DIST_SCALAR;

		for (int isa = DIST_AVX2; isa <= DIST_AVX512; isa++)
			if (dist_for_isa((enum dist_isa)isa) != NULL)
				top = isa;
		is_int(dist_best()->isa, top, "the best instruction set this CPU has is chosen");
	}
	is_double(dist_normalize(v, 3), 5.0, 1e-6, "normalize returns the length");
	is_double(v[0] * v[0] + v[2] * v[2], 1.0, 1e-6, "and leaves a unit vector");
	is_double(dist_normalize(z, 2), 0.0, 0.0, "a zero vector has length 0");
	{
		/* issue 11, item 6: in float, a subnormal length has an infinite
		 * inverse (Inf and NaN), and a length over 1.8e19 squares to
		 * infinity (all zeros) */
		float tiny[2] = {1e-40f, 1e-40f}, big[2] = {3e38f, 3e38f};

		dist_normalize(tiny, 2);
		ok(isfinite(tiny[0]) && fabsf(tiny[0] - 0.70710678f) < 1e-6f,
		   "a vector of subnormal length normalizes to a finite unit vector (%g)",
		   (double)tiny[0]);
		dist_normalize(big, 2);
		ok(fabsf(big[0] - 0.70710678f) < 1e-6f,
		   "a vector whose squared length overflows float normalizes too (%g)",
		   (double)big[0]);
	}
	is_int(sh_metric_parse("cosine"), SH_METRIC_COSINE, "parse cosine");
	is_int(sh_metric_parse("manhattan"), -1, "unknown metric");
	sh_free(fa);
	sh_free(fb);
	sh_free(ua);
	sh_free(ub);
	return done_testing();
}
