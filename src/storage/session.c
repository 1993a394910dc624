/*
 * session: see session.h.  Sessions are kept in a hash table chained by
 * client id (ids are random bytes or a hash: their first word spreads
 * well) and in a list by last write, least recent first, so that expiry
 * and the count bound take from its head.  A session's results are an
 * array sorted by seq.  Each session has its hash in the digest; a change
 * subtracts the old one and adds the new one.
 */
#include "build.h"

#include "storage/session.h"

#include "storage/le.h"
#include "util/alloc.h"

#include <inttypes.h>
#include <pthread.h>
#include <string.h>

struct sess {
	unsigned char client[SESSION_ID_BYTES];
	uint64_t last_ms; /* log time of its last write */
	uint64_t done_below;
	struct session_result *res; /* sorted by seq, all >= done_below */
	uint32_t n_res, cap_res;
	struct digest d; /* its share of the table's digest */
	struct sess *hnext, *prev, *next;
};

struct session_table {
	pthread_rwlock_t lock;
	struct sess **buckets; /* a power of two of them, or none */
	size_t n_buckets, n;
	size_t n_results; /* over all sessions */
	struct sess *oldest, *newest;
	uint64_t log_ms;
	struct digest sum; /* of the sessions' digests */
};

static const unsigned char sess_key[16] = "shoal-session-1";

int session_table_new(struct session_table **out, struct sh_err *err)
{
	struct session_table *t = sh_calloc(1, sizeof *t);

	if (t == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	pthread_rwlock_init(&t->lock, NULL);
	*out = t;
	return 0;
}

static void sess_free(struct sess *s)
{
	sh_free(s->res);
	sh_free(s);
}

void session_table_free(struct session_table *t)
{
	struct sess *s, *next;

	if (t == NULL)
		return;
	for (s = t->oldest; s != NULL; s = next) {
		next = s->next;
		sess_free(s);
	}
	sh_free(t->buckets);
	pthread_rwlock_destroy(&t->lock);
	sh_free(t);
}

void session_table_swap(struct session_table *a, struct session_table *b)
{
	struct session_table tmp;

	pthread_rwlock_wrlock(&a->lock);
	tmp = *a;
	a->buckets = b->buckets;
	a->n_buckets = b->n_buckets;
	a->n = b->n;
	a->n_results = b->n_results;
	a->oldest = b->oldest;
	a->newest = b->newest;
	a->log_ms = b->log_ms;
	a->sum = b->sum;
	b->buckets = tmp.buckets;
	b->n_buckets = tmp.n_buckets;
	b->n = tmp.n;
	b->n_results = tmp.n_results;
	b->oldest = tmp.oldest;
	b->newest = tmp.newest;
	b->log_ms = tmp.log_ms;
	b->sum = tmp.sum;
	pthread_rwlock_unlock(&a->lock);
}

int session_check(const struct session_req *r, struct sh_err *err)
{
	static const unsigned char zero[SESSION_ID_BYTES];

	if (memcmp(r->client, zero, sizeof zero) == 0)
		return sh_err_set(err, SH_EINVAL, "session: the client id is all zero");
	if (r->seq == 0)
		return sh_err_set(err, SH_EINVAL, "session: seq must be 1 or more");
	if (r->done_below == 0 || r->done_below > r->seq)
		return sh_err_set(err, SH_EINVAL,
				  "session: done_below %" PRIu64 " is not within 1..seq (%" PRIu64
				  ")",
				  r->done_below, r->seq);
	return 0;
}

/* ------------------------------------------------------------ the table */

static size_t bucket_of(const struct session_table *t, const unsigned char *client)
{
	return (size_t)le64_get(client) & (t->n_buckets - 1);
}

static struct sess *find(const struct session_table *t, const unsigned char *client)
{
	if (t->n_buckets == 0)
		return NULL;
	for (struct sess *s = t->buckets[bucket_of(t, client)]; s != NULL; s = s->hnext)
		if (memcmp(s->client, client, SESSION_ID_BYTES) == 0)
			return s;
	return NULL;
}

/* Twice the buckets (writer, lock held); SH_ENOMEM leaves it as it was. */
static int grow(struct session_table *t)
{
	size_t nb = t->n_buckets ? 2 * t->n_buckets : 64;
	struct sess **b = sh_calloc(nb, sizeof *b), *next;

	if (b == NULL)
		return SH_ENOMEM;
	for (size_t i = 0; i < t->n_buckets; i++)
		for (struct sess *s = t->buckets[i]; s != NULL; s = next) {
			size_t j = (size_t)le64_get(s->client) & (nb - 1);

			next = s->hnext;
			s->hnext = b[j];
			b[j] = s;
		}
	sh_free(t->buckets);
	t->buckets = b;
	t->n_buckets = nb;
	return 0;
}

static void list_unlink(struct session_table *t, struct sess *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		t->oldest = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	else
		t->newest = s->prev;
	s->prev = s->next = NULL;
}

static void list_append(struct session_table *t, struct sess *s)
{
	s->prev = t->newest;
	s->next = NULL;
	if (t->newest != NULL)
		t->newest->next = s;
	else
		t->oldest = s;
	t->newest = s;
}

#define RESULT_BYTES 44

/* A result as the snapshot and the digest take it. */
static void put_result(unsigned char *b, const struct session_result *r)
{
	le64_put(b, r->seq);
	le64_put(b + 8, r->hash);
	le64_put(b + 16, r->index);
	le64_put(b + 24, r->term);
	le64_put(b + 32, r->affected);
	le32_put(b + 40, (uint32_t)r->rv);
}

/* The session's hash: everything it holds. */
static struct digest sess_hash(const struct sess *s)
{
	struct siphash h;
	unsigned char b[44];

	siphash_init(&h, sess_key);
	siphash_update(&h, s->client, SESSION_ID_BYTES);
	le64_put(b, s->last_ms);
	le64_put(b + 8, s->done_below);
	siphash_update(&h, b, 16);
	for (uint32_t i = 0; i < s->n_res; i++) {
		put_result(b, &s->res[i]);
		siphash_update(&h, b, RESULT_BYTES);
	}
	return siphash_final(&h);
}

static void rehash(struct session_table *t, struct sess *s)
{
	digest_sub(&t->sum, s->d);
	s->d = sess_hash(s);
	digest_add(&t->sum, s->d);
}

/* Drop s from the table (writer, lock held). */
static void drop(struct session_table *t, struct sess *s)
{
	struct sess **p = &t->buckets[bucket_of(t, s->client)];

	while (*p != s)
		p = &(*p)->hnext;
	*p = s->hnext;
	list_unlink(t, s);
	digest_sub(&t->sum, s->d);
	t->n--;
	t->n_results -= s->n_res;
	sess_free(s);
}

/* A new, empty session for client at the newest end (lock held). */
static struct sess *add(struct session_table *t, const unsigned char *client)
{
	struct sess *s;
	size_t b;

	if (t->n >= t->n_buckets && grow(t) != 0)
		return NULL;
	if ((s = sh_calloc(1, sizeof *s)) == NULL)
		return NULL;
	memcpy(s->client, client, SESSION_ID_BYTES);
	s->done_below = 1;
	b = bucket_of(t, client);
	s->hnext = t->buckets[b];
	t->buckets[b] = s;
	list_append(t, s);
	s->d = sess_hash(s);
	digest_add(&t->sum, s->d);
	t->n++;
	return s;
}

/* Sessions idle for more than the TTL go, and beyond the count bound
 * those idle for SESSION_MIN_IDLE_MS at least (least recently written
 * first; keep is spared: it is being written).  A session written within
 * the last minute is never dropped — the table may hold more than
 * SESSION_MAX for that long — so that a retry of a session's first write,
 * within a call's deadline, finds it (a dropped session's seq 1 would be
 * taken for a new one). */
static void expire(struct session_table *t, const struct sess *keep)
{
	struct sess *s;

	while ((s = t->oldest) != NULL && s != keep &&
	       (t->log_ms - s->last_ms > SESSION_TTL_MS || t->n > SESSION_HARD_MAX ||
		(t->n > SESSION_MAX && t->log_ms - s->last_ms >= SESSION_MIN_IDLE_MS)))
		drop(t, s);
}

/* ------------------------------------------------------------ judging */

/* The index of seq in s's results, or where it would go. */
static uint32_t res_pos(const struct sess *s, uint64_t seq, bool *found)
{
	uint32_t lo = 0, hi = s->n_res;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (s->res[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < s->n_res && s->res[lo].seq == seq;
	return lo;
}

/* The verdict on r for s, whose done_below is `below` (s NULL: the client
 * is not in the table). */
static enum session_verdict judge(const struct sess *s, uint64_t below, const struct session_req *r,
				  struct session_result *res)
{
	bool found;
	uint32_t i;

	memset(res, 0, sizeof *res);
	if (s == NULL) /* opens a session: see session.h, SESSION_EXPIRED */
		return r->done_below == r->seq && (!r->retry || r->seq == 1) ? SESSION_NEW
									     : SESSION_EXPIRED;
	i = res_pos(s, r->seq, &found);
	if (found && r->hash != 0 && s->res[i].hash != 0 && s->res[i].hash != r->hash)
		return SESSION_MISMATCH;
	if (found) {
		*res = s->res[i];
		return SESSION_DUPLICATE;
	}
	if (r->seq < below)
		return SESSION_STALE;
	return SESSION_NEW;
}

/* Results below done_below go (lock held). */
static void move_below(struct session_table *t, struct sess *s, uint64_t done_below)
{
	bool found;
	uint32_t k;

	if (done_below <= s->done_below)
		return;
	s->done_below = done_below;
	if ((k = res_pos(s, done_below, &found)) == 0)
		return;
	memmove(s->res, s->res + k, (s->n_res - k) * sizeof *s->res);
	s->n_res -= k;
	t->n_results -= k;
}

int session_begin(struct session_table *t, const struct session_req *r, struct session_result *res)
{
	struct sess *s;
	int v;

	pthread_rwlock_wrlock(&t->lock);
	if (r->time_ms > t->log_ms)
		t->log_ms = r->time_ms;
	expire(t, NULL); /* r's own session too, when it is that old */
	if ((s = find(t, r->client)) == NULL && (v = (int)judge(NULL, 0, r, res)) != SESSION_NEW) {
		pthread_rwlock_unlock(&t->lock);
		return v; /* expired: not made again */
	}
	if (s == NULL && (s = add(t, r->client)) == NULL) {
		pthread_rwlock_unlock(&t->lock);
		return SH_ENOMEM;
	}
	move_below(t, s, r->done_below);
	s->last_ms = t->log_ms;
	list_unlink(t, s);
	list_append(t, s);
	v = (int)judge(s, s->done_below, r, res);
	rehash(t, s);
	expire(t, s); /* the count bound, now that s may be new */
	pthread_rwlock_unlock(&t->lock);
	return v;
}

/* Over SESSION_MAX_ALL_RESULTS: the least recently written sessions
 * forget their results (lock held). */
static void forget_over(struct session_table *t)
{
	for (struct sess *s = t->oldest; s != NULL && t->n_results > SESSION_MAX_ALL_RESULTS;
	     s = s->next)
		if (s->n_res > 0) {
			move_below(t, s, s->res[s->n_res - 1].seq + 1);
			rehash(t, s);
		}
}

int session_record(struct session_table *t, const struct session_req *r,
		   const struct session_result *res)
{
	struct sess *s;
	bool found;
	uint32_t i;
	int rv = 0;

	pthread_rwlock_wrlock(&t->lock);
	if ((s = find(t, r->client)) == NULL)
		goto out; /* session_begin made it: never so */
	i = res_pos(s, res->seq, &found);
	if (found || res->seq < s->done_below)
		goto out;
	if (s->n_res == s->cap_res) {
		uint32_t cap = s->cap_res ? 2 * s->cap_res : 4;
		struct session_result *p = sh_reallocarray(s->res, cap, sizeof *p);

		if (p == NULL) {
			rv = SH_ENOMEM;
			goto out;
		}
		s->res = p;
		s->cap_res = cap;
	}
	memmove(s->res + i + 1, s->res + i, (s->n_res - i) * sizeof *s->res);
	s->res[i] = *res;
	s->n_res++;
	t->n_results++;
	if (s->n_res > SESSION_MAX_RESULTS) /* the oldest is forgotten */
		move_below(t, s, s->res[0].seq + 1);
	rehash(t, s);
	forget_over(t);
out:
	pthread_rwlock_unlock(&t->lock);
	return rv;
}

enum session_verdict session_lookup(const struct session_table *ct, const struct session_req *r,
				    struct session_result *res)
{
	struct session_table *t = (struct session_table *)(uintptr_t)ct;
	enum session_verdict v;
	const struct sess *s;

	pthread_rwlock_rdlock(&t->lock);
	s = find(t, r->client);
	v = judge(s,
		  s == NULL ? 0 : (s->done_below > r->done_below ? s->done_below : r->done_below),
		  r, res);
	pthread_rwlock_unlock(&t->lock);
	return v;
}

int session_answer(enum session_verdict v, const struct session_req *r,
		   const struct session_result *res, struct sh_err *err)
{
	switch (v) {
	case SESSION_DUPLICATE:
		if (res->rv == 0)
			return 0;
		return sh_err_set(err, res->rv,
				  "write %" PRIu64 " of this client session was refused when it "
				  "was first applied (entry %" PRIu64 "): %s",
				  r->seq, res->index, sh_strerror(res->rv));
	case SESSION_STALE:
		return sh_err_set(err, SH_ESTALE,
				  "write %" PRIu64 " of this client session is older than the "
				  "client's oldest write in flight: not applied now (the client "
				  "gave it up, has its answer, or it was forgotten); whether an "
				  "earlier copy was is unknown",
				  r->seq);
	case SESSION_MISMATCH:
		return sh_err_set(err, SH_EINVAL,
				  "write %" PRIu64 " of this client session (or this "
				  "Idempotency-Key) was applied with a different request",
				  r->seq);
	case SESSION_EXPIRED:
		return sh_err_set(
			err, SH_ESESSION,
			"write %" PRIu64 " of a client session the cluster does not "
			"hold (it expired, was dropped, or never opened): not applied now, "
			"and whether an earlier copy was is unknown; start a new session",
			r->seq);
	case SESSION_NEW: break;
	}
	return 0;
}

size_t session_count(const struct session_table *ct)
{
	struct session_table *t = (struct session_table *)(uintptr_t)ct;
	size_t n;

	pthread_rwlock_rdlock(&t->lock);
	n = t->n;
	pthread_rwlock_unlock(&t->lock);
	return n;
}

uint64_t session_log_time(const struct session_table *ct)
{
	struct session_table *t = (struct session_table *)(uintptr_t)ct;
	uint64_t ms;

	pthread_rwlock_rdlock(&t->lock);
	ms = t->log_ms;
	pthread_rwlock_unlock(&t->lock);
	return ms;
}

struct digest session_digest(const struct session_table *ct)
{
	struct session_table *t = (struct session_table *)(uintptr_t)ct;
	struct digest d;

	pthread_rwlock_rdlock(&t->lock);
	d = t->sum;
	if (t->log_ms != 0) {
		struct siphash h;
		unsigned char b[8];

		siphash_init(&h, sess_key);
		le64_put(b, t->log_ms);
		siphash_update(&h, b, 8);
		digest_add(&d, siphash_final(&h));
	}
	pthread_rwlock_unlock(&t->lock);
	return d;
}

/* ------------------------------------------------------------ snapshots */

static int save_sess(const struct sess *s, hnsw_write_fn write, void *ctx)
{
	unsigned char b[44];
	int rv;

	le64_put(b, s->last_ms);
	le64_put(b + 8, s->done_below);
	le32_put(b + 16, s->n_res);
	if ((rv = write(ctx, s->client, SESSION_ID_BYTES)) != 0 || (rv = write(ctx, b, 20)) != 0)
		return rv;
	for (uint32_t i = 0; i < s->n_res && rv == 0; i++) {
		put_result(b, &s->res[i]);
		rv = write(ctx, b, RESULT_BYTES);
	}
	return rv;
}

/* No lock: the writer calls it, or a process it forked (session.h). */
int session_save(const struct session_table *t, hnsw_write_fn write, void *ctx)
{
	unsigned char b[12];
	int rv;

	le64_put(b, t->log_ms);
	le32_put(b + 8, (uint32_t)t->n);
	if ((rv = write(ctx, b, 12)) != 0)
		return rv;
	for (const struct sess *s = t->oldest; s != NULL && rv == 0; s = s->next)
		rv = save_sess(s, write, ctx);
	return rv;
}

static int load_results(struct sess *s, uint32_t n, hnsw_read_fn read, void *ctx,
			struct sh_err *err)
{
	unsigned char b[44];

	if (n > SESSION_MAX_RESULTS)
		return sh_err_set(err, SH_ECORRUPT, "sessions: absurd size: %" PRIu32 " results",
				  n);
	if (n > 0 && (s->res = sh_calloc(n, sizeof *s->res)) == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	s->cap_res = n;
	for (uint32_t i = 0; i < n; i++) {
		struct session_result *r = &s->res[i];

		if (read(ctx, b, 44) != 0)
			return sh_err_set(err, SH_ECORRUPT, "sessions: cannot read a result");
		*r = (struct session_result){le64_get(b),      le64_get(b + 8),
					     le64_get(b + 16), le64_get(b + 24),
					     le64_get(b + 32), (int32_t)le32_get(b + 40)};
		if (r->seq < s->done_below || (i > 0 && r->seq <= s->res[i - 1].seq))
			return sh_err_set(err, SH_ECORRUPT,
					  "sessions: result %" PRIu32 " (seq %" PRIu64
					  ") out of order",
					  i, r->seq);
		s->n_res++;
	}
	return 0;
}

static int load_sess(struct session_table *t, uint64_t *prev_ms, hnsw_read_fn read, void *ctx,
		     struct sh_err *err)
{
	unsigned char id[SESSION_ID_BYTES], b[20];
	struct sess *s;
	int rv;

	if (read(ctx, id, sizeof id) != 0 || read(ctx, b, 20) != 0)
		return sh_err_set(err, SH_ECORRUPT, "sessions: cannot read a session");
	if (find(t, id) != NULL)
		return sh_err_set(err, SH_ECORRUPT, "sessions: a client appears twice");
	if ((s = add(t, id)) == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	s->last_ms = le64_get(b);
	s->done_below = le64_get(b + 8);
	if (s->last_ms < *prev_ms || s->last_ms > t->log_ms || s->done_below == 0)
		return sh_err_set(err, SH_ECORRUPT,
				  "sessions: a session's times or done_below are out of order");
	*prev_ms = s->last_ms;
	rv = load_results(s, le32_get(b + 16), read, ctx, err);
	t->n_results += s->n_res;
	if (rv != 0)
		return rv;
	rehash(t, s);
	return 0;
}

int session_load(struct session_table *t, hnsw_read_fn read, void *ctx, struct sh_err *err)
{
	unsigned char b[12];
	uint64_t prev_ms = 0;
	uint32_t n;
	int rv = 0;

	if (read(ctx, b, 12) != 0)
		return sh_err_set(err, SH_ECORRUPT, "sessions: cannot read the header");
	t->log_ms = le64_get(b);
	if ((n = le32_get(b + 8)) > SESSION_HARD_MAX)
		return sh_err_set(err, SH_ECORRUPT, "sessions: absurd size: %" PRIu32 " sessions",
				  n);
	for (uint32_t i = 0; i < n && rv == 0; i++)
		rv = load_sess(t, &prev_ms, read, ctx, err);
	return rv;
}
