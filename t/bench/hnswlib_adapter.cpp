// hnswlib_adapter: a C interface to Debian's header-only hnswlib, so that
// bench_index can run it on the same data in the same process.  Used only by
// the benchmark (configure finds hnswlib/hnswlib.h; --without-hnswlib skips).
#include "bench_hnswlib.h"

#include <hnswlib/hnswlib.h>

struct hl {
	hnswlib::SpaceInterface<float> *space;
	hnswlib::HierarchicalNSW<float> *index;
};

extern "C" void *hl_new(int dim, int metric, size_t max_elements, int m, int efc, uint64_t seed)
{
	hl *h = new hl;

	if (metric == 0)
		h->space = new hnswlib::L2Space(dim);
	else
		h->space = new hnswlib::InnerProductSpace(dim);
	h->index = new hnswlib::HierarchicalNSW<float>(h->space, max_elements, m, efc, seed);
	return h;
}

extern "C" void hl_add(void *p, const float *v, uint64_t label)
{
	static_cast<hl *>(p)->index->addPoint(v, label);
}

extern "C" void hl_set_ef(void *p, size_t ef)
{
	static_cast<hl *>(p)->index->setEf(ef);
}

extern "C" size_t hl_search(void *p, const float *q, size_t k, uint64_t *labels, float *dist)
{
	auto res = static_cast<hl *>(p)->index->searchKnn(q, k);
	size_t n = res.size();

	for (size_t i = n; i-- > 0;) {
		labels[i] = res.top().second;
		dist[i] = res.top().first;
		res.pop();
	}
	return n;
}

extern "C" void hl_free(void *p)
{
	hl *h = static_cast<hl *>(p);

	delete h->index;
	delete h->space;
	delete h;
}
