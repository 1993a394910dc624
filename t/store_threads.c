/* Concurrency of store_adopt: reader threads look collections up, list
 * them, search them and drop their references without pause while the
 * main thread adopts one state after another, as a follower installing
 * snapshots does.  Each state has two collections "a" and "b" with the same
 * number of points, and its own digest, so a reader that saw a mix of two
 * states would see counts that differ or a digest of no state.  The
 * absence of data races and of use after free is checked when built with
 * --enable-tsan (contrib/test.sh --tsan runs it) or --enable-sanitizers. */
#include "build.h"

#include "storage/store.h"
#include "tap.h"
#include "util/alloc.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#define DIM     8
#define STATES  8  /* distinct states, built again and again */
#define ADOPTS  21 /* state k % STATES adopted for k = 1 .. ADOPTS */
#define PER     40
#define READERS 2

static struct store *s;
static struct digest digests[STATES];
static _Atomic int stop;
static _Atomic long violations, rounds, searches, held_across;

static int apply(struct store *st, const struct entry *e, struct sh_err *err)
{
	struct wal_buf *b = wal_buf_new(0);
	struct wal_rec r;
	size_t pos = 0;
	bool fatal;
	int rv;

	if (entry_encode(e, b, 1, store_applied_index(st) + 1, err) != 0)
		bail_out("encode: %s", err->msg);
	wal_buf_next(b, &pos, &r);
	rv = store_apply(st, &r, NULL, &fatal, err);
	wal_buf_unref(b);
	return rv;
}

/* State g: "a" and "b", each with (g + 1) * PER points, ids from 0. */
static struct store *build(int g)
{
	static float v[STATES * PER][DIM];
	struct coll_point p[STATES * PER];
	size_t n = (size_t)(g + 1) * PER;
	struct store *st;
	struct sh_err err;

	store_new(&st, &err);
	for (size_t i = 0; i < n; i++) {
		for (int j = 0; j < DIM; j++)
			v[i][j] = (float)((i * 13 + (size_t)j * 7 + (size_t)g) % 17) - 8.0f;
		p[i] = (struct coll_point){i, v[i], DIM, NULL, 0};
	}
	for (int k = 0; k < 2; k++) {
		struct entry e = {.type = WAL_CREATE,
				  .params = {.name = "a",
					     .dim = DIM,
					     .metric = SH_METRIC_L2,
					     .m = 8,
					     .ef_construction = 32,
					     .seed = 7}};

		e.params.name[0] = k ? 'b' : 'a';
		if (apply(st, &e, &err) != 0)
			bail_out("create: %s", err.msg);
		e = (struct entry){
			.type = WAL_UPSERT, .collection = k ? "b" : "a", .points = p, .n = n};
		if (apply(st, &e, &err) != 0)
			bail_out("upsert: %s", err.msg);
	}
	return st;
}

static bool known_digest(struct digest d)
{
	for (int g = 0; g < STATES; g++)
		if (digest_equal(d, digests[g]))
			return true;
	return false;
}

/* store_list: both collections, of one state. */
static void check_list(const float *q)
{
	struct hnsw_result res[5];
	struct coll **v;
	size_t n, found;
	struct sh_err err;

	if (store_list(s, &v, &n) != 0 || n != 2 || coll_count(v[0]) != coll_count(v[1]) ||
	    coll_count(v[0]) % PER != 0)
		atomic_fetch_add(&violations, 1);
	for (size_t i = 0; i < n; i++) {
		if (coll_search(v[i], q, 5, 16, false, res, &found, &err) != 0 || found != 5)
			atomic_fetch_add(&violations, 1);
		coll_unref(v[i]);
	}
	sh_free(v);
}

static void *reader(void *arg)
{
	float q[DIM] = {1, 2, 3, 4, 5, 6, 7, (float)(uintptr_t)arg};

	while (!atomic_load(&stop)) {
		struct coll *c = store_get(s, "a");
		struct hnsw_result res[5];
		size_t n;
		struct digest before = store_digest(s);

		if (!known_digest(before))
			atomic_fetch_add(&violations, 1);
		if (c == NULL || coll_get(c, 0, NULL, NULL, NULL) != 0) {
			atomic_fetch_add(&violations, 1);
		} else {
			check_list(q);
			/* c may belong to a state adopted away meanwhile */
			if (coll_search(c, q, 5, 16, false, res, &n, NULL) != 0 || n != 5)
				atomic_fetch_add(&violations, 1);
			if (!digest_equal(before, store_digest(s)))
				atomic_fetch_add(&held_across, 1);
			atomic_fetch_add(&searches, 3);
		}
		coll_unref(c);
		atomic_fetch_add(&rounds, 1);
	}
	return NULL;
}

int main(void)
{
	pthread_t t[READERS];
	long seen;

	for (int g = STATES - 1; g >= 0; g--) {
		s = build(g);
		digests[g] = store_digest(s);
		if (g > 0)
			store_free(s);
	}
	for (long i = 0; i < READERS; i++)
		pthread_create(&t[i], NULL, reader, (void *)(i + 1));
	for (int k = 1; k <= ADOPTS; k++) {
		/* built while the readers run, as a follower loads a snapshot */
		struct store *next = build(k % STATES);

		/* let the readers run a few rounds on each state */
		for (seen = atomic_load(&rounds); atomic_load(&rounds) < seen + 3;)
			sched_yield();
		store_adopt(s, next);
	}
	for (seen = atomic_load(&rounds); atomic_load(&rounds) < seen + 3;)
		sched_yield();
	atomic_store(&stop, 1);
	for (int i = 0; i < READERS; i++)
		pthread_join(t[i], NULL);
	ok(atomic_load(&rounds) >= 3 * ADOPTS,
	   "%ld reader rounds (%ld searches) alongside %d adopts", atomic_load(&rounds),
	   atomic_load(&searches), ADOPTS);
	diag("%ld rounds held a collection across an adopt", atomic_load(&held_across));
	is_int(atomic_load(&violations), 0, "every read saw one whole state");
	ok(digest_equal(store_digest(s), digests[ADOPTS % STATES]),
	   "the last state adopted is there");
	is_int(store_points(s), 2 * (ADOPTS % STATES + 1) * PER, "with its points");
	store_free(s);
	return done_testing();
}
