/*
 * api_read: the read methods (see api.h), run on a search pool worker.
 *
 * A read looks its collection up (holding a reference until it returns,
 * so a concurrent drop cannot pull it away), builds its reply in the op's
 * arena and sets op->status.  Filtered searches choose between HNSW and
 * brute force by the estimated selectivity (doc/protocol.md, "Filters").
 */
#include "build.h"

#include "net/api.h"
#include "net/filter.h"

#include "util/alloc.h"
#include "util/rand.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define EXACT_BELOW    2000 /* points: always exact below this */
#define EXACT_FACTOR   20   /* exact when expected matches < EXACT_FACTOR * ef */
#define SAMPLE_WINDOWS 8
#define SAMPLE_WINDOW  32
#define SCROLL_CHUNK   256

static int nomem(struct op *op)
{
	return api_op_error(op, SH_ENOMEM, "out of memory");
}

static void ok(struct op *op, void *resp)
{
	op->resp = resp;
	op->status = SHOAL__STATUS_CODE__OK;
}

static struct coll *find(struct op *op, const char *name)
{
	struct coll *c = store_get(db_store(api_db(op->api)), name);

	if (c == NULL)
		api_op_error(op, SH_ENOTFOUND, "collection '%s' not found", name);
	return c;
}

static Shoal__Metric metric_to_pb(enum sh_metric m)
{
	return m == SH_METRIC_COSINE ? SHOAL__METRIC__METRIC_COSINE
	       : m == SH_METRIC_DOT  ? SHOAL__METRIC__METRIC_DOT
				     : SHOAL__METRIC__METRIC_L2;
}

static Shoal__CollectionInfo *info_of(struct op *op, const struct coll *c)
{
	const struct coll_params *p = coll_params(c);
	Shoal__CollectionInfo *i = api_new_msg(op, &shoal__collection_info__descriptor);
	struct coll_index_stats st;

	if (i == NULL || (i->name = arena_strndup(&op->arena, p->name, strlen(p->name))) == NULL)
		return NULL;
	i->dim = p->dim;
	i->metric = metric_to_pb(p->metric);
	i->m = p->m;
	i->ef_construction = p->ef_construction;
	i->count = coll_count(c);
	i->memory_bytes = coll_memory(c);
	coll_index_stats(c, &st);
	i->points_indexed = st.indexed;
	i->points_fresh = st.fresh;
	i->oldest_fresh_ms = st.oldest_fresh_ms;
	i->indexed_total = st.indexed_total;
	i->indexing_rate = st.indexing_rate;
	return i;
}

/* ------------------------------------------------------------ points */

/* Fill a point's vector and payload from the collection.  SH_ENOTFOUND
 * when it is gone (deleted meanwhile). */
static int fill_point(struct op *op, const struct coll *c, uint64_t id, bool with_vec,
		      bool with_payload, float **vec, size_t *n_vec, ProtobufCBinaryData *payload)
{
	uint32_t dim = coll_params(c)->dim;
	float *v = NULL;
	char *text = NULL;
	size_t len = 0;
	int rv;

	if (with_vec && (v = arena_alloc(&op->arena, dim * sizeof *v)) == NULL)
		return SH_ENOMEM;
	rv = coll_get(c, id, v, with_payload ? &text : NULL, &len);
	if (rv != 0)
		return rv;
	if (with_vec) {
		*vec = v;
		*n_vec = dim;
	}
	if (text != NULL) {
		payload->data = arena_alloc(&op->arena, len);
		if (payload->data == NULL) {
			sh_free(text);
			return SH_ENOMEM;
		}
		memcpy(payload->data, text, len);
		payload->len = len;
		sh_free(text);
	}
	return 0;
}

static Shoal__Point *new_point(struct op *op, const struct coll *c, uint64_t id, bool with_vec,
			       bool with_payload, int *rv)
{
	Shoal__Point *p = api_new_msg(op, &shoal__point__descriptor);

	if (p == NULL) {
		*rv = SH_ENOMEM;
		return NULL;
	}
	p->id = id;
	*rv = fill_point(op, c, id, with_vec, with_payload, &p->vector, &p->n_vector, &p->payload);
	return *rv == 0 ? p : NULL;
}

static void read_get(struct op *op)
{
	Shoal__GetRequest *r = (void *)op->req;
	Shoal__PointsResponse *resp = api_new_msg(op, &shoal__points_response__descriptor);
	struct coll *c = find(op, r->collection);
	int rv = 0;

	if (c == NULL)
		return;
	if (resp == NULL ||
	    (resp->points = arena_calloc(&op->arena, r->n_ids + 1, sizeof *resp->points)) == NULL)
		rv = nomem(op);
	for (size_t i = 0; rv == 0 && i < r->n_ids; i++) {
		Shoal__Point *p = new_point(op, c, r->ids[i], r->with_vector, r->with_payload, &rv);

		if (p != NULL)
			resp->points[resp->n_points++] = p;
		else if (rv == SH_ENOTFOUND)
			rv = 0;
		else
			nomem(op);
	}
	coll_unref(c);
	if (rv == 0)
		ok(op, resp);
}

/* ------------------------------------------------------------ filters */

struct fctx {
	const struct coll *c;
	const struct filter *f;
	uint64_t evaluated, matched;
};

static bool match_id(uint64_t id, void *arg)
{
	struct fctx *x = arg;
	char *text = NULL;
	size_t len = 0;
	bool m;

	if (coll_get(x->c, id, NULL, &text, &len) != 0)
		return false;
	m = filter_match_point_text(x->f, id, text, len);
	sh_free(text);
	x->evaluated++;
	x->matched += m;
	return m;
}

static int compile(struct op *op, const Shoal__Filter *pb, struct filter **f)
{
	int rv = filter_compile(pb, f, &op->err);

	if (rv != 0)
		op->status = api_status_of(rv);
	return rv;
}

/* Fraction of points matching f, from up to SAMPLE_WINDOWS windows of
 * SAMPLE_WINDOW consecutive ids: at the lowest id, at pseudo-random ids
 * near the low end (dense id spaces) and anywhere (hashed ids). */
static double selectivity(const struct coll *c, const struct filter *f, size_t n_points)
{
	struct fctx x = {c, f, 0, 0};
	uint64_t ids[SAMPLE_WINDOW], next, first = 0;
	struct sh_rand r;
	size_t n;
	bool more;

	sh_rand_seed(&r, n_points * 0x9e3779b97f4a7c15ull);
	for (int w = 0; w < SAMPLE_WINDOWS; w++) {
		uint64_t from = w == 0         ? 0
				: (w & 1) != 0 ? first + sh_rand_below(&r, 4 * n_points + 1)
					       : sh_rand_u64(&r);

		coll_scroll(c, from, SAMPLE_WINDOW, ids, &n, &next, &more);
		if (w == 0 && n > 0)
			first = ids[0];
		for (size_t i = 0; i < n; i++)
			match_id(ids[i], &x);
	}
	return x.evaluated ? (double)x.matched / (double)x.evaluated : 1.0;
}

/* ------------------------------------------------------------ search */

static int check_query(struct op *op, const struct coll *c, const Shoal__SearchRequest *r)
{
	uint32_t dim = coll_params(c)->dim;
	struct sh_err e;

	if (r->n_vector != dim)
		return api_op_error(op, SH_EINVAL,
				    "query vector has %zu values, the dimension of '%s' is %u",
				    r->n_vector, coll_name(c), dim);
	if (hnsw_check_vector(r->vector, dim, coll_params(c)->metric, "query vector", &e) != 0)
		return api_op_error(op, SH_EINVAL, "%s", e.msg);
	if (r->k < 1 || r->k > API_MAX_K)
		return api_op_error(op, SH_EINVAL, "k = %u is outside 1..%d", r->k, API_MAX_K);
	if (r->ef != 0 && (r->ef < r->k || r->ef > HNSW_MAX_EF))
		return api_op_error(op, SH_EINVAL, "ef = %u is outside k..%d (k = %u)", r->ef,
				    HNSW_MAX_EF, r->k);
	return 0;
}

/* Run the search, choosing exact or HNSW for a filter; *exact says which. */
static int run_search(struct op *op, const struct coll *c, const Shoal__SearchRequest *r,
		      const struct filter *f, struct hnsw_result *res, size_t *n, bool *exact)
{
	struct fctx x = {c, f, 0, 0};
	size_t count = coll_count(c), ef = r->ef ? r->ef : (r->k > 40 ? r->k : 40);
	int rv;

	*exact = r->exact;
	if (f != NULL && !*exact)
		*exact = count <= EXACT_BELOW ||
			 selectivity(c, f, count) * (double)count < EXACT_FACTOR * (double)ef;
	rv = coll_search_filter(c, r->vector, r->k, ef, *exact, f ? match_id : NULL, &x, res, n,
				&op->err);
	if (rv == 0 && f != NULL && !*exact && *n < r->k && count >= r->k) {
		*exact = true;
		rv = coll_search_filter(c, r->vector, r->k, ef, true, match_id, &x, res, n,
					&op->err);
	}
	if (rv != 0)
		op->status = api_status_of(rv);
	return rv;
}

static int fill_scored(struct op *op, const struct coll *c, const Shoal__SearchRequest *r,
		       const struct hnsw_result *res, size_t n, Shoal__SearchResponse *resp)
{
	int rv;

	if ((resp->points = arena_calloc(&op->arena, n + 1, sizeof *resp->points)) == NULL)
		return nomem(op);
	for (size_t i = 0; i < n; i++) {
		Shoal__ScoredPoint *p = api_new_msg(op, &shoal__scored_point__descriptor);

		if (p == NULL)
			return nomem(op);
		p->id = res[i].id;
		p->distance = res[i].distance;
		if (!r->with_vector && !r->with_payload) {
			resp->points[resp->n_points++] = p;
			continue;
		}
		rv = fill_point(op, c, p->id, r->with_vector, r->with_payload, &p->vector,
				&p->n_vector, &p->payload);
		if (rv == SH_ENOTFOUND)
			continue; /* deleted since the search saw it */
		if (rv != 0)
			return nomem(op);
		resp->points[resp->n_points++] = p;
	}
	return 0;
}

static void read_search(struct op *op)
{
	Shoal__SearchRequest *r = (void *)op->req;
	Shoal__SearchResponse *resp = api_new_msg(op, &shoal__search_response__descriptor);
	struct coll *c = find(op, r->collection);
	struct filter *f = NULL;
	struct hnsw_result *res;
	size_t n = 0;
	bool exact = false;

	if (c == NULL)
		return;
	if (resp == NULL)
		nomem(op);
	else if (check_query(op, c, r) == 0 && compile(op, r->filter, &f) == 0) {
		if ((res = arena_calloc(&op->arena, r->k, sizeof *res)) == NULL)
			nomem(op);
		else if (run_search(op, c, r, f, res, &n, &exact) == 0 &&
			 fill_scored(op, c, r, res, n, resp) == 0) {
			resp->exact = exact;
			resp->metric = metric_to_pb(coll_params(c)->metric);
			ok(op, resp);
		}
	}
	filter_free(f);
	coll_unref(c);
}

/* ------------------------------------------------------------ scroll, count */

static void read_scroll(struct op *op)
{
	Shoal__ScrollRequest *r = (void *)op->req;
	Shoal__ScrollResponse *resp = api_new_msg(op, &shoal__scroll_response__descriptor);
	size_t limit = r->limit ? r->limit : 10, n;
	uint64_t ids[SCROLL_CHUNK], from = r->offset, next;
	struct coll *c;
	struct filter *f = NULL;
	bool more = true;
	int rv = 0;

	/* one over: the REST API asks for the next page's first point too */
	if (limit > API_MAX_LIMIT + 1) {
		api_op_error(op, SH_EINVAL, "limit = %zu is over %d", limit, API_MAX_LIMIT);
		return;
	}
	if ((c = find(op, r->collection)) == NULL)
		return;
	if (resp == NULL ||
	    (resp->points = arena_calloc(&op->arena, limit, sizeof *resp->points)) == NULL)
		rv = nomem(op);
	else
		rv = compile(op, r->filter, &f);
	while (rv == 0 && more && resp->n_points < limit) {
		struct fctx x = {c, f, 0, 0};

		coll_scroll(c, from, SCROLL_CHUNK, ids, &n, &next, &more);
		for (size_t i = 0; i < n && rv == 0; i++) {
			Shoal__Point *p;

			if (resp->n_points == limit) {
				more = true;
				next = ids[i];
				break;
			}
			if (f != NULL && !match_id(ids[i], &x))
				continue;
			p = new_point(op, c, ids[i], r->with_vector, r->with_payload, &rv);
			if (rv == SH_ENOTFOUND)
				rv = 0;
			else if (rv != 0)
				nomem(op);
			else
				resp->points[resp->n_points++] = p;
		}
		from = next;
	}
	if (rv == 0) {
		resp->has_next = more;
		resp->next_offset = more ? from : 0;
		ok(op, resp);
	}
	filter_free(f);
	coll_unref(c);
}

static void read_count(struct op *op)
{
	Shoal__CountRequest *r = (void *)op->req;
	Shoal__CountResponse *resp = api_new_msg(op, &shoal__count_response__descriptor);
	struct coll *c = find(op, r->collection);
	struct filter *f = NULL;
	uint64_t ids[SCROLL_CHUNK], from = 0, next;
	size_t n;
	bool more = true;

	if (c == NULL)
		return;
	if (resp == NULL) {
		nomem(op);
	} else if (compile(op, r->filter, &f) == 0) {
		struct fctx x = {c, f, 0, 0};

		if (f == NULL)
			resp->count = coll_count(c);
		while (f != NULL && more) {
			coll_scroll(c, from, SCROLL_CHUNK, ids, &n, &next, &more);
			for (size_t i = 0; i < n; i++)
				resp->count += match_id(ids[i], &x);
			from = next;
		}
		ok(op, resp);
	}
	filter_free(f);
	coll_unref(c);
}

/* ------------------------------------------------------------ collections */

static void read_list(struct op *op)
{
	Shoal__ListCollectionsResponse *resp =
		api_new_msg(op, &shoal__list_collections_response__descriptor);
	struct coll **v = NULL;
	size_t n = 0;

	if (resp == NULL || store_list(db_store(api_db(op->api)), &v, &n) != 0 ||
	    (resp->collections = arena_calloc(&op->arena, n + 1, sizeof *resp->collections)) ==
		    NULL) {
		nomem(op);
	} else {
		for (size_t i = 0; i < n; i++)
			if ((resp->collections[resp->n_collections++] = info_of(op, v[i])) == NULL)
				nomem(op);
		if (op->status == SHOAL__STATUS_CODE__OK)
			ok(op, resp);
	}
	for (size_t i = 0; i < n; i++)
		coll_unref(v[i]);
	sh_free(v);
}

static void read_describe(struct op *op)
{
	Shoal__DescribeCollectionRequest *r = (void *)op->req;
	struct coll *c = find(op, r->name);
	Shoal__CollectionInfo *i;

	if (c == NULL)
		return;
	if ((i = info_of(op, c)) == NULL)
		nomem(op);
	else
		ok(op, i);
	coll_unref(c);
}

void api_read_run(struct op *op)
{
	op->status = SHOAL__STATUS_CODE__OK;
	switch (op->method) {
	case SHOAL__METHOD__METHOD_GET: read_get(op); break;
	case SHOAL__METHOD__METHOD_SEARCH: read_search(op); break;
	case SHOAL__METHOD__METHOD_SCROLL: read_scroll(op); break;
	case SHOAL__METHOD__METHOD_COUNT: read_count(op); break;
	case SHOAL__METHOD__METHOD_LIST_COLLECTIONS: read_list(op); break;
	case SHOAL__METHOD__METHOD_DESCRIBE_COLLECTION: read_describe(op); break;
	default: api_op_error(op, SH_EINVAL, "method %u is not a read", op->method);
	}
}
