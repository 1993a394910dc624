/*
 * fresh: see fresh.h.
 *
 * Entries are dense arrays (swap-remove), so a scan reads vectors back to
 * back; an open-addressing map (linear probing, backward-shift deletion,
 * no tombstones of its own) finds an id's position.  The map holds
 * positions + 1 (0: empty) and is twice the entries' capacity at least.
 */
#include "build.h"

#include "storage/fresh.h"

#include "util/alloc.h"
#include "util/err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Below this many entries, a search scans the floats only; above, and not
 * exact, it ranks by the int8 codes first and re-scores this many in
 * float. */
#define FRESH_CODES_MIN 4096
#define FRESH_RERANK(k) (4 * (k) + 64)

#define FRESH_ARRAYS 9 /* of cap entries each: ids .. vecs */

struct fresh {
	uint32_t dim;
	enum sh_metric metric;
	const struct dist_kernels *k;
	size_t n, cap, tombs;
	uint64_t next_seq;
	uint64_t *ids, *seqs, *added;
	float *vecs;  /* cap * dim */
	int8_t *code; /* cap * dim: int8 codes of the vectors, for the prefilter */
	float *cs;    /* cap: a code's scale (value = code * scale) */
	float *sq;    /* cap: |v|^2 */
	uint8_t *tomb;
	uint64_t *igen;            /* 0, or the search generation from which it counts as indexed */
	size_t cursor;             /* fresh_take's: where the next batch starts */
	size_t acap[FRESH_ARRAYS]; /* each array's own room, >= cap (arrays()) */
	uint32_t *map;             /* position + 1, 0 empty */
	size_t map_cap;            /* a power of two */
};

static size_t slot_of(uint64_t id, size_t cap)
{
	id ^= id >> 33;
	id *= 0xff51afd7ed558ccdULL;
	id ^= id >> 33;
	return (size_t)id & (cap - 1);
}

struct fresh *fresh_new(uint32_t dim, enum sh_metric metric)
{
	struct fresh *f = sh_calloc(1, sizeof *f);

	if (f == NULL)
		return NULL;
	f->dim = dim;
	f->metric = metric;
	f->k = dist_best();
	f->next_seq = 1;
	return f;
}

static void release_all(struct fresh *f);

void fresh_free(struct fresh *f)
{
	if (f == NULL)
		return;
	release_all(f);
	sh_free(f);
}

/* ------------------------------------------------------------ the map */

static uint32_t map_find(const struct fresh *f, uint64_t id, size_t *at)
{
	size_t i;

	if (f->map_cap == 0)
		return FRESH_NONE;
	for (i = slot_of(id, f->map_cap); f->map[i] != 0; i = (i + 1) & (f->map_cap - 1))
		if (f->ids[f->map[i] - 1] == id) {
			if (at != NULL)
				*at = i;
			return f->map[i] - 1;
		}
	return FRESH_NONE;
}

static void map_insert(uint32_t *map, size_t cap, const uint64_t *ids, uint32_t pos)
{
	size_t i = slot_of(ids[pos], cap);

	while (map[i] != 0)
		i = (i + 1) & (cap - 1);
	map[i] = pos + 1;
}

/* Remove map slot i, shifting back the entries of the run after it. */
static void map_delete(struct fresh *f, size_t i)
{
	size_t mask = f->map_cap - 1, j = i;

	f->map[i] = 0;
	for (;;) {
		size_t home;

		j = (j + 1) & mask;
		if (f->map[j] == 0)
			return;
		home = slot_of(f->ids[f->map[j] - 1], f->map_cap);
		/* j's entry may move to i when i lies cyclically in [home, j) */
		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			f->map[i] = f->map[j];
			f->map[j] = 0;
			i = j;
		}
	}
}

/* Point id's map slot (found at `at`) at a new position. */
static void map_repoint(struct fresh *f, uint64_t id, uint32_t pos)
{
	size_t at;

	if (map_find(f, id, &at) != FRESH_NONE)
		f->map[at] = pos + 1;
}

/* ------------------------------------------------------------ growth */

/* The arrays of cap entries each, and their entry sizes. */
static void arrays(struct fresh *f, void **a[FRESH_ARRAYS], size_t size[FRESH_ARRAYS])
{
	void **p[FRESH_ARRAYS] = {(void **)&f->ids,  (void **)&f->seqs, (void **)&f->added,
				  (void **)&f->tomb, (void **)&f->igen, (void **)&f->cs,
				  (void **)&f->sq,   (void **)&f->code, (void **)&f->vecs};
	size_t s[FRESH_ARRAYS] = {sizeof *f->ids,  sizeof *f->seqs, sizeof *f->added,
				  sizeof *f->tomb, sizeof *f->igen, sizeof *f->cs,
				  sizeof *f->sq,   f->dim,          f->dim * sizeof *f->vecs};

	memcpy(a, p, sizeof p);
	memcpy(size, s, sizeof s);
}

/* Every array to cap entries (sh_big_realloc: a large one's pages move,
 * nothing is copied).  On failure those grown keep their room (acap). */
static int grow_arrays(struct fresh *f, size_t cap)
{
	void **a[FRESH_ARRAYS];
	size_t size[FRESH_ARRAYS];

	arrays(f, a, size);
	for (size_t i = 0; i < FRESH_ARRAYS; i++) {
		void *p;

		if (f->acap[i] >= cap)
			continue;
		if ((p = sh_big_realloc(*a[i], f->acap[i] * size[i], cap * size[i])) == NULL)
			return SH_ENOMEM;
		*a[i] = p;
		f->acap[i] = cap;
	}
	f->cap = cap;
	return 0;
}

static int grow_map(struct fresh *f, size_t cap)
{
	uint32_t *map = sh_calloc(cap, sizeof *map);

	if (map == NULL)
		return SH_ENOMEM;
	for (size_t i = 0; i < f->n; i++)
		map_insert(map, cap, f->ids, (uint32_t)i);
	sh_free(f->map);
	f->map = map;
	f->map_cap = cap;
	return 0;
}

/* Room for one more entry (arrays first: a failure leaves the map as it
 * is, and arrays larger than needed are harmless). */
static int reserve(struct fresh *f)
{
	int rv;

	if (f->n == f->cap && (rv = grow_arrays(f, f->cap ? f->cap * 2 : 64)) != 0)
		return rv;
	if ((f->n + 1) * 2 > f->map_cap && (rv = grow_map(f, f->map_cap ? f->map_cap * 2 : 128)))
		return rv;
	return 0;
}

/* ------------------------------------------------------------ entries */

/* The largest |v_i|: eight lanes, which the compiler turns into SIMD. */
static float abs_max(const float *v, uint32_t dim)
{
	float m[8] = {0}, top = 0;
	uint32_t i = 0;

	for (; i + 8 <= dim; i += 8)
		for (int j = 0; j < 8; j++)
			m[j] = fabsf(v[i + j]) > m[j] ? fabsf(v[i + j]) : m[j];
	for (; i < dim; i++)
		top = fabsf(v[i]) > top ? fabsf(v[i]) : top;
	for (int j = 0; j < 8; j++)
		top = m[j] > top ? m[j] : top;
	return top;
}

/* v's int8 code (scale: the largest |v_i| / 127) into code; returns the
 * scale.  Each |v_i| * 127 / top <= 127 rounds half away from zero, by
 * hand (no libm call), eight at a time. */
static float encode(const float *v, uint32_t dim, int8_t *code)
{
	float top = abs_max(v, dim), s;
	uint32_t i = 0;

	if (top == 0) {
		memset(code, 0, dim);
		return 0;
	}
	s = 127.0f / top;
	for (; i + 8 <= dim; i += 8) {
		int32_t q[8];

		for (int j = 0; j < 8; j++)
			q[j] = (int32_t)(v[i + j] * s + copysignf(0.5f, v[i + j]));
		for (int j = 0; j < 8; j++)
			code[i + j] = (int8_t)q[j];
	}
	for (; i < dim; i++)
		code[i] = (int8_t)(int32_t)(v[i] * s + copysignf(0.5f, v[i]));
	return top / 127.0f;
}

static void set_vector(struct fresh *f, uint32_t pos, const float *vec)
{
	f->tomb[pos] = vec == NULL;
	if (vec == NULL)
		return;
	memcpy(f->vecs + (size_t)pos * f->dim, vec, f->dim * sizeof *vec);
	f->cs[pos] = encode(vec, f->dim, f->code + (size_t)pos * f->dim);
	f->sq[pos] = f->k->dot(vec, vec, f->dim); /* for the int8 prefilter only */
}

int fresh_put(struct fresh *f, uint64_t id, const float *vec, uint64_t now_ms)
{
	uint32_t pos = map_find(f, id, NULL);
	int rv;

	if (pos == FRESH_NONE) {
		if ((rv = reserve(f)) != 0)
			return rv;
		pos = (uint32_t)f->n++;
		f->ids[pos] = id;
		f->tomb[pos] = 0;
		map_insert(f->map, f->map_cap, f->ids, pos);
	}
	f->tombs -= f->tomb[pos];
	set_vector(f, pos, vec);
	f->tombs += f->tomb[pos];
	f->seqs[pos] = f->next_seq++;
	f->igen[pos] = 0;
	f->added[pos] = now_ms;
	return 0;
}

uint32_t fresh_find(const struct fresh *f, uint64_t id)
{
	return map_find(f, id, NULL);
}

void fresh_at(const struct fresh *f, uint32_t i, struct fresh_entry *e, float *vec)
{
	*e = (struct fresh_entry){f->ids[i], f->seqs[i], f->added[i], f->tomb[i] != 0};
	if (vec != NULL && !e->tomb)
		memcpy(vec, f->vecs + (size_t)i * f->dim, f->dim * sizeof *vec);
}

static void release_all(struct fresh *f)
{
	void **a[FRESH_ARRAYS];
	size_t size[FRESH_ARRAYS];

	arrays(f, a, size);
	for (size_t i = 0; i < FRESH_ARRAYS; i++) {
		sh_big_free(*a[i], f->acap[i] * size[i]);
		*a[i] = NULL;
		f->acap[i] = 0;
	}
	sh_free(f->map);
	f->map = NULL;
	f->cap = f->map_cap = 0;
}

size_t fresh_take(struct fresh *f, size_t max, struct fresh_entry *e, float *vecs)
{
	size_t n = f->n < max ? f->n : max;

	if (f->cursor >= f->n)
		f->cursor = 0;
	for (size_t i = 0; i < n; i++) {
		fresh_at(f, (uint32_t)f->cursor, &e[i], vecs + i * f->dim);
		if (++f->cursor == f->n)
			f->cursor = 0;
	}
	return n;
}

void fresh_rewind(struct fresh *f, size_t n)
{
	if (f->n == 0) {
		f->cursor = 0;
		return;
	}
	f->cursor = (f->cursor % f->n + f->n - n % f->n) % f->n;
}

bool fresh_mark(struct fresh *f, uint64_t id, uint64_t seq, uint64_t gen)
{
	uint32_t pos = map_find(f, id, NULL);

	if (pos == FRESH_NONE || f->seqs[pos] != seq)
		return false;
	f->igen[pos] = gen;
	return true;
}

/* Does entry i count for a search of generation gen (not yet indexed)? */
static bool live_for(const struct fresh *f, uint32_t i, uint64_t gen)
{
	return f->igen[i] == 0 || f->igen[i] > gen;
}

bool fresh_hides(const struct fresh *f, uint64_t id, uint64_t gen)
{
	uint32_t pos = map_find(f, id, NULL);

	return pos != FRESH_NONE && live_for(f, pos, gen);
}

bool fresh_remove_if(struct fresh *f, uint64_t id, uint64_t seq)
{
	size_t at;
	uint32_t pos = map_find(f, id, &at);
	uint32_t last = (uint32_t)f->n - 1;

	if (pos == FRESH_NONE || f->seqs[pos] != seq)
		return false;
	map_delete(f, at);
	f->tombs -= f->tomb[pos];
	if (pos != last) { /* the last entry takes the hole */
		f->ids[pos] = f->ids[last];
		f->seqs[pos] = f->seqs[last];
		f->added[pos] = f->added[last];
		f->tomb[pos] = f->tomb[last];
		f->igen[pos] = f->igen[last];
		f->cs[pos] = f->cs[last];
		f->sq[pos] = f->sq[last];
		memcpy(f->vecs + (size_t)pos * f->dim, f->vecs + (size_t)last * f->dim,
		       f->dim * sizeof(float));
		memcpy(f->code + (size_t)pos * f->dim, f->code + (size_t)last * f->dim, f->dim);
		map_repoint(f, f->ids[pos], pos);
	}
	if (--f->n == 0 && f->cap > 1024)
		release_all(f); /* a burst is over: give its memory back */
	return true;
}

size_t fresh_count(const struct fresh *f)
{
	return f->n;
}

size_t fresh_tombstones(const struct fresh *f)
{
	return f->tombs;
}

size_t fresh_bytes(const struct fresh *f)
{
	return sizeof *f + f->cap * (4 * sizeof(uint64_t) + 1 + 2 * sizeof(float) + f->dim * 5) +
	       f->map_cap * sizeof(uint32_t);
}

size_t fresh_used_bytes(const struct fresh *f)
{
	/* a tombstone holds the room of a vector too */
	return f->n *
	       (4 * sizeof(uint64_t) + 1 + 2 * sizeof(float) + f->dim * 5 + 2 * sizeof(uint32_t));
}

uint64_t fresh_oldest_ms(const struct fresh *f)
{
	uint64_t oldest = 0;

	for (size_t i = 0; i < f->n; i++)
		if (oldest == 0 || f->added[i] < oldest)
			oldest = f->added[i];
	return oldest;
}

/* ------------------------------------------------------------ search */

static bool worse(const struct hnsw_result *a, const struct hnsw_result *b)
{
	return a->distance > b->distance || (a->distance == b->distance && a->id > b->id);
}

/* out[0..n) is a max-heap by worse(): sift r in, replacing the root when
 * full and r is better. */
static void heap_offer(struct hnsw_result *h, size_t *n, size_t k, struct hnsw_result r)
{
	size_t i;

	if (*n == k && !worse(&h[0], &r))
		return;
	if (*n < k) {
		for (i = (*n)++; i > 0 && worse(&r, &h[(i - 1) / 2]); i = (i - 1) / 2)
			h[i] = h[(i - 1) / 2];
		h[i] = r;
		return;
	}
	for (i = 0;;) {
		size_t c = 2 * i + 1;

		if (c >= *n)
			break;
		if (c + 1 < *n && worse(&h[c + 1], &h[c]))
			c++;
		if (!worse(&h[c], &r))
			break;
		h[i] = h[c];
		i = c;
	}
	h[i] = r;
}

static int by_distance(const void *a, const void *b)
{
	return worse(a, b) ? 1 : worse(b, a) ? -1 : 0;
}

/* Bit for bit what the graph computes (hnsw__dist_vec): the same kernel,
 * the query first, the same bias. */
static float distance(const struct fresh *f, uint32_t i, const float *q)
{
	const float *v = f->vecs + (size_t)i * f->dim;

	switch (f->metric) {
	case SH_METRIC_L2: return f->k->l2sq(q, v, f->dim);
	case SH_METRIC_COSINE: return 1.0f - f->k->dot(q, v, f->dim);
	default: return 0.0f - f->k->dot(q, v, f->dim);
	}
}

/* A search's state across chunks (fresh.h). */
struct fresh_query {
	size_t k, r, n, nc;             /* k; candidates kept (codes); found; candidates */
	uint64_t gen;                   /* the search's generation (fresh_mark) */
	bool codes;                     /* rank by int8 codes first */
	float *q;                       /* prepared */
	int8_t *qc;                     /* its code ... */
	float qs, qsq;                  /* ... scale, |q|^2 */
	struct hnsw_result *out, *cand; /* heaps */
};

/* The distance from the codes: dot ~ scale_v * scale_q * (code_v . code_q). */
static float approx(const struct fresh *f, uint32_t i, const struct fresh_query *fq)
{
	float dot = f->cs[i] * fq->qs *
		    (float)f->k->s8_dot(f->code + (size_t)i * f->dim, fq->qc, f->dim);

	switch (f->metric) {
	case SH_METRIC_L2: return f->sq[i] + fq->qsq - 2.0f * dot;
	case SH_METRIC_COSINE: return 1.0f - dot;
	default: return 0.0f - dot;
	}
}

int fresh_query_new(const struct fresh *f, const float *query, size_t k, bool exact, uint64_t gen,
		    struct fresh_query **out)
{
	struct fresh_query *fq = sh_calloc(1, sizeof *fq);

	*out = NULL;
	if (fq == NULL)
		return SH_ENOMEM;
	fq->k = k;
	fq->gen = gen;
	fq->codes = !exact && f->n >= FRESH_CODES_MIN;
	fq->r = fq->codes ? FRESH_RERANK(k) : 0;
	fq->q = sh_malloc(f->dim * sizeof *fq->q);
	fq->qc = sh_malloc(f->dim);
	fq->out = sh_malloc((k + 1) * sizeof *fq->out);
	fq->cand = sh_malloc((fq->r + 1) * sizeof *fq->cand);
	if (fq->q == NULL || fq->qc == NULL || fq->out == NULL || fq->cand == NULL) {
		fresh_query_free(fq);
		return SH_ENOMEM;
	}
	memcpy(fq->q, query, f->dim * sizeof *fq->q);
	if (f->metric == SH_METRIC_COSINE)
		dist_normalize(fq->q, f->dim);
	fq->qs = encode(fq->q, f->dim, fq->qc);
	for (uint32_t i = 0; i < f->dim; i++)
		fq->qsq += fq->q[i] * fq->q[i];
	*out = fq;
	return 0;
}

void fresh_query_free(struct fresh_query *fq)
{
	if (fq == NULL)
		return;
	sh_free(fq->q);
	sh_free(fq->qc);
	sh_free(fq->out);
	sh_free(fq->cand);
	sh_free(fq);
}

/* Is id among the results or candidates already?  (A scan going down
 * while entries move up into holes may meet one twice.) */
static bool has_result(const struct fresh_query *fq, uint64_t id)
{
	const struct hnsw_result *h = fq->codes ? fq->cand : fq->out;
	size_t n = fq->codes ? fq->nc : fq->n;

	for (size_t i = 0; i < n; i++)
		if (h[i].id == id)
			return true;
	return false;
}

/* Entry i into the heaps (the filter asked only for what would enter). */
static void offer(struct fresh_query *fq, const struct fresh *f, uint32_t i, hnsw_filter_fn filter,
		  void *arg)
{
	struct hnsw_result r;

	if (fq->codes) {
		r = (struct hnsw_result){f->ids[i], approx(f, i, fq)};
		if (fq->nc == fq->r && !worse(&fq->cand[0], &r))
			return;
		if (!has_result(fq, r.id) && (filter == NULL || filter(f->ids[i], arg)))
			heap_offer(fq->cand, &fq->nc, fq->r, r);
		return;
	}
	r = (struct hnsw_result){f->ids[i], distance(f, i, fq->q)};
	if (fq->n == fq->k && !worse(&fq->out[0], &r))
		return;
	if (!has_result(fq, r.id) && (filter == NULL || filter(r.id, arg)))
		heap_offer(fq->out, &fq->n, fq->k, r);
}

uint32_t fresh_query_scan(struct fresh_query *fq, const struct fresh *f, uint32_t end, uint32_t max,
			  hnsw_filter_fn filter, void *arg)
{
	uint32_t from;

	if (end > f->n)
		end = (uint32_t)f->n;
	from = end > max ? end - max : 0;
	for (uint32_t i = end; i-- > from && fq->k > 0;)
		if (!f->tomb[i] && live_for(f, i, fq->gen))
			offer(fq, f, i, filter, arg);
	return from;
}

void fresh_query_finish(struct fresh_query *fq, const struct fresh *f, struct hnsw_result *out,
			size_t *n)
{
	for (size_t j = 0; j < fq->nc; j++) { /* the codes' candidates, re-scored */
		uint32_t pos = map_find(f, fq->cand[j].id, NULL);

		if (pos != FRESH_NONE && !f->tomb[pos] && live_for(f, pos, fq->gen))
			heap_offer(fq->out, &fq->n, fq->k,
				   (struct hnsw_result){f->ids[pos], distance(f, pos, fq->q)});
	}
	fq->nc = 0;
	qsort(fq->out, fq->n, sizeof *fq->out, by_distance);
	memcpy(out, fq->out, fq->n * sizeof *out);
	*n = fq->n;
}

int fresh_search(const struct fresh *f, const float *query, size_t k, bool exact,
		 hnsw_filter_fn filter, void *arg, struct hnsw_result *out, size_t *n)
{
	struct fresh_query *fq;
	int rv = fresh_query_new(f, query, k, exact, UINT64_MAX - 1, &fq);

	*n = 0;
	if (rv != 0)
		return rv;
	fresh_query_scan(fq, f, UINT32_MAX, UINT32_MAX, filter, arg);
	fresh_query_finish(fq, f, out, n);
	fresh_query_free(fq);
	return 0;
}
