/*
 * store: see store.h.  Collections are kept in an array sorted by name
 * (a node holds few), searched by bisection under the read lock.
 *
 * Applying is all or nothing per entry: the whole entry is checked against
 * the state first (store_check), so a rejected entry changes nothing; the
 * checks depend only on the state and the entry, never on local settings,
 * so every replica rejects the same entries.
 */
#include "build.h"

#include "storage/store.h"

#include "storage/indexer.h"
#include "storage/le.h"
#include "storage/session.h"
#include "util/alloc.h"
#include "util/log.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

struct store {
	pthread_rwlock_t lock; /* colls */
	struct coll **colls;   /* sorted by name */
	size_t n, cap;
	_Atomic uint64_t applied, applied_term;
	unsigned char *voters; /* the last VoterConfig body */
	size_t voters_len;
	/* the term history of the applied entries: the first index of every
	 * term, in order (under lock: the apply thread appends, anyone reads) */
	struct store_term *terms;
	size_t n_terms, cap_terms;
	struct indexer *ix;             /* NULL: apply indexes what it wrote (inline) */
	struct session_table *sessions; /* client sessions (session.h) */
	_Atomic uint64_t skipped;       /* writes a session did not let apply again */
	/* the verdicts on the last entries with a session, by index modulo
	 * STORE_VERDICTS (store_session_verdict) */
	pthread_mutex_t vlock;
	struct store_verdict *verdicts;
};

#define STORE_VERDICTS 16384

struct store_verdict {
	uint64_t index; /* 0: none */
	enum session_verdict v;
	struct session_result res;
};

struct store_term {
	uint64_t term, first;
};

/* The content's first word from format 3 on ("FSH3"; over any count of
 * collections, the first word of format 2); format 4 ("FSH4") adds the
 * client sessions after the collections. */
#define STORE_FRESH_MARK   0x33485346u
#define STORE_SESSION_MARK 0x34485346u

int store_new(struct store **out, struct sh_err *err)
{
	struct store *s = sh_calloc(1, sizeof *s);

	if (s == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	if (session_table_new(&s->sessions, err) != 0 ||
	    (s->verdicts = sh_calloc(STORE_VERDICTS, sizeof *s->verdicts)) == NULL) {
		session_table_free(s->sessions);
		sh_free(s);
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	}
	pthread_rwlock_init(&s->lock, NULL);
	pthread_mutex_init(&s->vlock, NULL);
	*out = s;
	return 0;
}

void store_free(struct store *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++)
		coll_unref(s->colls[i]);
	sh_free(s->colls);
	sh_free(s->voters);
	sh_free(s->terms);
	session_table_free(s->sessions);
	sh_free(s->verdicts);
	pthread_mutex_destroy(&s->vlock);
	pthread_rwlock_destroy(&s->lock);
	sh_free(s);
}

static struct store *mut(const struct store *s)
{
	return (struct store *)(uintptr_t)s;
}

/* ------------------------------------------------------------ the collection list */

/* Position of name, or where it would go; *found says which (lock held). */
static size_t find(const struct store *s, const char *name, bool *found)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(coll_name(s->colls[mid]), name);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

struct coll *store_get(struct store *s, const char *name)
{
	struct coll *c = NULL;
	bool found;
	size_t i;

	pthread_rwlock_rdlock(&s->lock);
	i = find(s, name, &found);
	if (found)
		c = coll_ref(s->colls[i]);
	pthread_rwlock_unlock(&s->lock);
	return c;
}

int store_list(struct store *s, struct coll ***out, size_t *n)
{
	struct coll **v;

	pthread_rwlock_rdlock(&s->lock);
	v = sh_calloc(s->n ? s->n : 1, sizeof *v);
	for (size_t i = 0; v != NULL && i < s->n; i++)
		v[i] = coll_ref(s->colls[i]);
	*n = v != NULL ? s->n : 0;
	pthread_rwlock_unlock(&s->lock);
	*out = v;
	return v != NULL ? 0 : SH_ENOMEM;
}

/* Insert c (one reference, taken over) in name order. */
static int add_coll(struct store *s, struct coll *c)
{
	bool found;
	size_t i;
	int rv = 0;

	pthread_rwlock_wrlock(&s->lock);
	i = find(s, coll_name(c), &found);
	if (found) {
		rv = SH_EEXIST;
	} else if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		struct coll **g = sh_reallocarray(s->colls, cap, sizeof *g);

		if (g == NULL)
			rv = SH_ENOMEM;
		else {
			s->colls = g;
			s->cap = cap;
		}
	}
	if (rv == 0) {
		memmove(&s->colls[i + 1], &s->colls[i], (s->n - i) * sizeof *s->colls);
		s->colls[i] = c;
		s->n++;
	}
	pthread_rwlock_unlock(&s->lock);
	return rv;
}

static void drop_coll(struct store *s, const char *name)
{
	struct coll *c = NULL;
	bool found;
	size_t i;

	pthread_rwlock_wrlock(&s->lock);
	i = find(s, name, &found);
	if (found) {
		c = s->colls[i];
		memmove(&s->colls[i], &s->colls[i + 1], (s->n - i - 1) * sizeof *s->colls);
		s->n--;
	}
	pthread_rwlock_unlock(&s->lock);
	if (c != NULL)
		coll_retire(c);
	coll_unref(c);
}

size_t store_collections(const struct store *s)
{
	size_t n;

	pthread_rwlock_rdlock(&mut(s)->lock);
	n = s->n;
	pthread_rwlock_unlock(&mut(s)->lock);
	return n;
}

size_t store_points(const struct store *s)
{
	size_t n = 0;

	pthread_rwlock_rdlock(&mut(s)->lock);
	for (size_t i = 0; i < s->n; i++)
		n += coll_count(s->colls[i]);
	pthread_rwlock_unlock(&mut(s)->lock);
	return n;
}

struct digest store_digest(const struct store *s)
{
	struct digest d = {0, 0};

	pthread_rwlock_rdlock(&mut(s)->lock);
	for (size_t i = 0; i < s->n; i++)
		digest_add(&d, coll_digest(s->colls[i]));
	digest_add(&d, session_digest(s->sessions)); /* under the lock: adopt swaps both */
	pthread_rwlock_unlock(&mut(s)->lock);
	return d;
}

uint64_t store_applied_index(const struct store *s)
{
	return atomic_load(&mut(s)->applied);
}

uint64_t store_applied_term(const struct store *s)
{
	return atomic_load(&mut(s)->applied_term);
}

void store_forget_voters(struct store *s)
{
	sh_free(s->voters);
	s->voters = NULL;
	s->voters_len = 0;
}

const unsigned char *store_voters(const struct store *s, size_t *len)
{
	*len = s->voters_len;
	return s->voters;
}

/* ------------------------------------------------------------ adopting a state */

/* Exchange what a and b hold but for the locks. */
static void swap_content(struct store *a, struct store *b)
{
	struct coll **colls = a->colls;
	size_t n = a->n, cap = a->cap, voters_len = a->voters_len;
	unsigned char *voters = a->voters;
	struct store_term *terms = a->terms;
	size_t n_terms = a->n_terms, cap_terms = a->cap_terms;

	a->terms = b->terms;
	a->n_terms = b->n_terms;
	a->cap_terms = b->cap_terms;
	b->terms = terms;
	b->n_terms = n_terms;
	b->cap_terms = cap_terms;
	a->colls = b->colls;
	a->n = b->n;
	a->cap = b->cap;
	a->voters = b->voters;
	a->voters_len = b->voters_len;
	b->colls = colls;
	b->n = n;
	b->cap = cap;
	b->voters = voters;
	b->voters_len = voters_len;
}

void store_adopt(struct store *s, struct store *from)
{
	pthread_rwlock_wrlock(&s->lock);
	swap_content(s, from);
	session_table_swap(s->sessions, from->sessions);
	atomic_store(&s->applied_term, atomic_load(&from->applied_term));
	atomic_store(&s->applied, atomic_load(&from->applied));
	pthread_rwlock_unlock(&s->lock);
	/* from now holds s's old collections: dropping its references frees
	 * those that no reader holds. */
	for (size_t i = 0; i < from->n; i++)
		coll_retire(from->colls[i]);
	store_free(from);
	store_set_indexer(s, s->ix);
}

/* c's fresh set changed: the indexer takes it from here, or (inline) it is
 * indexed now.  An inline step that fails (out of memory) leaves entries
 * fresh, as searchable as indexed ones; the next write tries again. */
static void index_after(struct store *s, struct coll *c)
{
	struct sh_err err;
	size_t done;

	if (s->ix != NULL) {
		indexer_kick(s->ix, c);
		indexer_throttle(s->ix, c);
	} else if (coll_index(c, SIZE_MAX, 1, NULL, &done, &err) != 0) {
		LOG_WARN("index", "%s", err.msg);
	}
}

void store_set_indexer(struct store *s, struct indexer *ix)
{
	s->ix = ix;
	for (size_t i = 0; i < s->n && ix != NULL; i++)
		if (coll_fresh(s->colls[i]) > 0)
			indexer_kick(ix, s->colls[i]); /* no wait: a start serves at once */
}

/* ------------------------------------------------------------ checking */

/* The collection an entry names, with a reference; SH_ENOTFOUND if none. */
static int named(struct store *s, const char *name, struct coll **c, struct sh_err *err)
{
	int rv = coll_check_name(name, strlen(name), err);

	if (rv != 0)
		return rv;
	if ((*c = store_get(s, name)) == NULL)
		return sh_err_set(err, SH_ENOTFOUND, "collection '%s' does not exist", name);
	return 0;
}

static int check_voters(const struct entry *e, struct sh_err *err)
{
	if (e->n == 0)
		return sh_err_set(err, SH_EINVAL, "a voter configuration needs at least one voter");
	for (size_t i = 0; i < e->n; i++)
		for (size_t j = 0; j < i; j++)
			if (e->voters[i].node_id == e->voters[j].node_id)
				return sh_err_set(err, SH_EINVAL,
						  "voter %016" PRIx64 " is listed twice",
						  e->voters[i].node_id);
	return 0;
}

int store_check(struct store *s, const struct entry *e, struct sh_err *err)
{
	struct coll *c = NULL;
	int rv = 0;

	if (e->session.set && (rv = session_check(&e->session, err)) != 0)
		return rv;
	switch (e->type) {
	case WAL_NOOP: return 0;
	case WAL_VOTERS: return check_voters(e, err);
	case WAL_CREATE:
		if ((rv = coll_check_params(&e->params, err)) != 0)
			return rv;
		if ((c = store_get(s, e->params.name)) != NULL) {
			coll_unref(c);
			return sh_err_set(err, SH_EEXIST, "collection '%s' already exists",
					  e->params.name);
		}
		if (store_collections(s) >= STORE_MAX_COLLECTIONS)
			return sh_err_set(err, SH_ETOOBIG, "a node holds at most %d collections",
					  STORE_MAX_COLLECTIONS);
		return 0;
	case WAL_DROP: rv = named(s, e->collection, &c, err); break;
	case WAL_UPSERT:
		if ((rv = named(s, e->collection, &c, err)) == 0 &&
		    (rv = coll_check_points(c, e->points, e->n, err)) != 0)
			sh_err_wrap(err, rv, "collection '%s'", e->collection);
		break;
	case WAL_DELETE: rv = named(s, e->collection, &c, err); break;
	case WAL_SET_PAYLOAD:
		if ((unsigned)e->change.op > PAYLOAD_OP_MAX)
			return sh_err_set(err, SH_EINVAL, "unknown payload change %d",
					  (int)e->change.op);
		rv = named(s, e->collection, &c, err);
		break;
	default: rv = sh_err_set(err, SH_EINVAL, "unknown entry type %d", (int)e->type);
	}
	coll_unref(c);
	return rv;
}

/* ------------------------------------------------------------ applying */

static int set_voters(struct store *s, const struct wal_rec *r, struct sh_err *err)
{
	unsigned char *v = sh_malloc(r->len ? r->len : 1);

	if (v == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	memcpy(v, r->body, r->len);
	sh_free(s->voters);
	s->voters = v;
	s->voters_len = r->len;
	return 0;
}

/* The payload change on every point named that exists (a result over the
 * hard payload limit leaves that point as it was, on every replica). */
static int set_payloads(struct coll *c, const struct entry *e, size_t *affected, struct sh_err *err)
{
	int rv = 0;

	for (size_t i = 0; i < e->n && rv != SH_ENOMEM; i++) {
		char *old = NULL, *text = NULL;
		size_t old_len = 0, len = 0;

		if (coll_get(c, e->ids[i], NULL, &old, &old_len) != 0)
			continue;
		rv = payload_apply(&e->change, old, old_len, COLL_MAX_PAYLOAD, &text, &len, err);
		if (rv == 0 && (rv = coll_set_payload(c, e->ids[i], text, len)) == 0)
			(*affected)++;
		sh_free(old);
		sh_free(text);
	}
	if (rv == SH_ENOMEM)
		return sh_err_set(err, rv, "out of memory");
	return 0;
}

/* Apply a checked entry; only running out of memory can fail here. */
static int apply_checked(struct store *s, const struct entry *e, const struct wal_rec *r,
			 size_t *affected, struct sh_err *err)
{
	struct coll *c = NULL;
	int rv = 0;

	switch (e->type) {
	case WAL_NOOP: break;
	case WAL_VOTERS: rv = set_voters(s, r, err); break;
	case WAL_CREATE:
		if ((rv = coll_new(&e->params, &c, err)) == 0 && (rv = add_coll(s, c)) != 0) {
			coll_unref(c);
			sh_err_set(err, rv, "out of memory");
		}
		break;
	case WAL_DROP: drop_coll(s, e->collection); break;
	case WAL_UPSERT:
		c = store_get(s, e->collection);
		if ((rv = coll_upsert(c, e->points, e->n, err)) == 0)
			index_after(s, c);
		*affected = e->n;
		coll_unref(c);
		break;
	case WAL_DELETE:
		c = store_get(s, e->collection);
		if ((rv = coll_delete(c, e->ids, e->n, affected)) == 0)
			index_after(s, c);
		else
			sh_err_set(err, rv, "collection '%s': out of memory", e->collection);
		coll_unref(c);
		break;
	case WAL_SET_PAYLOAD:
		c = store_get(s, e->collection);
		rv = set_payloads(c, e, affected, err);
		coll_unref(c);
		break;
	}
	return rv;
}

/* Entry index is of term: note where a new term begins (the apply thread
 * alone writes the history; readers take the lock). */
static int note_term(struct store *s, uint64_t term, uint64_t index)
{
	struct store_term *t;

	if (s->n_terms > 0 && s->terms[s->n_terms - 1].term >= term)
		return 0;
	pthread_rwlock_wrlock(&s->lock);
	if (s->n_terms == s->cap_terms) {
		size_t cap = s->cap_terms ? 2 * s->cap_terms : 16;

		if ((t = sh_reallocarray(s->terms, cap, sizeof *t)) == NULL) {
			pthread_rwlock_unlock(&s->lock);
			return SH_ENOMEM;
		}
		s->terms = t;
		s->cap_terms = cap;
	}
	s->terms[s->n_terms++] = (struct store_term){term, index};
	pthread_rwlock_unlock(&s->lock);
	return 0;
}

/* Check and apply e, all or nothing. */
static int check_apply(struct store *s, const struct entry *e, const struct wal_rec *r,
		       size_t *affected, bool *fatal, struct sh_err *err)
{
	int rv;

	if ((rv = store_check(s, e, err)) == 0 && (rv = apply_checked(s, e, r, affected, err)) != 0)
		*fatal = true; /* out of memory half way: the state is not the log's */
	return rv;
}

/* The verdict on entry index, for store_session_verdict. */
static void note_verdict(struct store *s, uint64_t index, enum session_verdict v,
			 const struct session_result *res)
{
	pthread_mutex_lock(&s->vlock);
	s->verdicts[index % STORE_VERDICTS] = (struct store_verdict){index, v, *res};
	pthread_mutex_unlock(&s->vlock);
}

/* e with a session: applied once (session.h); what it did is remembered,
 * a refusal included (a retry gets the same answer). */
static int apply_session(struct store *s, const struct entry *e, const struct wal_rec *r,
			 size_t *affected, bool *fatal, struct sh_err *err)
{
	struct session_result res;
	int v, rv;

	if ((rv = session_check(&e->session, err)) != 0)
		return rv;
	if ((v = session_begin(s->sessions, &e->session, &res)) < 0)
		goto nomem;
	if (v != SESSION_NEW) {
		atomic_fetch_add(&s->skipped, 1);
		note_verdict(s, r->index, (enum session_verdict)v, &res);
		*affected = v == SESSION_DUPLICATE ? (size_t)res.affected : 0;
		return session_answer((enum session_verdict)v, &e->session, &res, err);
	}
	if ((rv = check_apply(s, e, r, affected, fatal, err)) != 0 && *fatal)
		return rv;
	res = (struct session_result){e->session.seq, e->session.hash, r->index,
				      r->term,        *affected,       rv};
	if (session_record(s->sessions, &e->session, &res) != 0)
		goto nomem;
	note_verdict(s, r->index, SESSION_NEW, &res);
	return rv;
nomem:
	*fatal = true;
	return sh_err_set(err, SH_ENOMEM, "out of memory");
}

bool store_session_known(struct store *s, const struct session_req *r, struct session_result *res,
			 int *rv, struct sh_err *err)
{
	enum session_verdict v;

	if (!r->set || session_check(r, err) != 0)
		return false; /* the checks refuse a malformed one */
	v = session_lookup(s->sessions, r, res);
	if (v != SESSION_DUPLICATE && v != SESSION_MISMATCH)
		return false; /* what else it is, applying says */
	*rv = session_answer(v, r, res, err);
	return true;
}

bool store_session_verdict(struct store *s, uint64_t index, const struct session_req *r,
			   struct session_result *res, int *rv, struct sh_err *err)
{
	struct store_verdict sv;

	pthread_mutex_lock(&s->vlock);
	sv = s->verdicts[index % STORE_VERDICTS];
	pthread_mutex_unlock(&s->vlock);
	if (sv.index != index)
		return false;
	*res = sv.res;
	if (sv.v == SESSION_NEW && sv.res.rv != 0)
		*rv = sh_err_set(err, sv.res.rv, "entry %" PRIu64 " was refused when applied: %s",
				 index, sh_strerror(sv.res.rv));
	else
		*rv = sv.v == SESSION_NEW ? 0 : session_answer(sv.v, r, &sv.res, err);
	return true;
}

uint64_t store_log_time(const struct store *s)
{
	return session_log_time(s->sessions);
}

size_t store_sessions(const struct store *s)
{
	return session_count(s->sessions);
}

uint64_t store_sessions_skipped(const struct store *s)
{
	return atomic_load(&mut(s)->skipped);
}

int store_apply(struct store *s, const struct wal_rec *r, size_t *affected, bool *fatal,
		struct sh_err *err)
{
	struct entry e;
	size_t dummy;
	int rv;

	*fatal = false;
	if (affected == NULL)
		affected = &dummy;
	*affected = 0;
	if (r->index != store_applied_index(s) + 1) {
		*fatal = true;
		return sh_err_set(err, SH_EINVAL,
				  "entry %" PRIu64 " applied after %" PRIu64 " (a gap or a repeat)",
				  r->index, store_applied_index(s));
	}
	if ((rv = entry_decode(r, &e, err)) == 0) {
		if (e.session.set)
			rv = apply_session(s, &e, r, affected, fatal, err);
		else
			rv = check_apply(s, &e, r, affected, fatal, err);
		if (rv != 0)
			sh_err_wrap(err, rv, "entry %" PRIu64 " (%s)", r->index,
				    entry_type_name(r->type));
	}
	/* Lack of memory, wherever it struck (decoding, checking a payload), is
	 * never a rejection: every other replica would apply the entry. */
	if (rv == SH_ENOMEM)
		*fatal = true;
	entry_release(&e);
	/* the term history misses no applied entry, rejected ones included */
	if (note_term(s, r->term, r->index) != 0) {
		*fatal = true;
		rv = sh_err_set(err, SH_ENOMEM, "entry %" PRIu64 ": out of memory", r->index);
	}
	atomic_store(&s->applied_term, r->term);
	atomic_store(&s->applied, r->index);
	return rv;
}

uint64_t store_term_at(const struct store *s, uint64_t index)
{
	struct store *m = mut(s);
	uint64_t term = 0;
	size_t lo = 0, hi;

	if (index == 0 || index > store_applied_index(s))
		return 0;
	pthread_rwlock_rdlock(&m->lock);
	hi = m->n_terms;
	while (lo < hi) { /* the last term that began at or before index */
		size_t mid = (lo + hi) / 2;

		if (m->terms[mid].first <= index)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo > 0)
		term = m->terms[lo - 1].term;
	pthread_rwlock_unlock(&m->lock);
	return term;
}

/* ------------------------------------------------------------ snapshot content */

static int put(hnsw_write_fn write, void *ctx, const void *p, size_t len)
{
	return len > 0 ? write(ctx, p, len) : 0;
}

static int save_terms(struct store *s, hnsw_write_fn write, void *ctx)
{
	unsigned char b[16];
	int rv;

	le32_put(b, (uint32_t)s->n_terms);
	if ((rv = put(write, ctx, b, 4)) != 0)
		return rv;
	for (size_t i = 0; i < s->n_terms && rv == 0; i++) {
		le64_put(b, s->terms[i].term);
		le64_put(b + 8, s->terms[i].first);
		rv = put(write, ctx, b, 16);
	}
	return rv;
}

void store_hold(struct store *s)
{
	for (size_t i = 0; i < s->n; i++)
		coll_hold(s->colls[i]);
}

void store_unhold(struct store *s)
{
	for (size_t i = 0; i < s->n; i++)
		coll_unhold(s->colls[i]);
}

int store_save(struct store *s, hnsw_write_fn write, void *ctx, struct sh_err *err)
{
	int rv;

	store_hold(s);
	rv = store_save_held(s, write, ctx, err);
	store_unhold(s);
	return rv;
}

/* The locks it takes (the list's, the collections' `lock` for their
 * digest) have no writer but the writer thread: free in a forked child. */
int store_save_held(struct store *s, hnsw_write_fn write, void *ctx, struct sh_err *err)
{
	unsigned char h[24];
	struct digest d = store_digest(s);
	int rv;

	le32_put(h, STORE_SESSION_MARK);
	le32_put(h + 4, (uint32_t)s->n);
	le32_put(h + 8, (uint32_t)s->voters_len);
	if ((rv = put(write, ctx, h, 12)) != 0 ||
	    (rv = put(write, ctx, s->voters, s->voters_len)) != 0)
		return sh_err_set(err, rv, "write failed: %s", sh_strerror(rv));
	le64_put(h + 8, d.lo);
	le64_put(h + 16, d.hi);
	if ((rv = put(write, ctx, h + 8, 16)) != 0 || (rv = save_terms(s, write, ctx)) != 0)
		return sh_err_set(err, rv, "write failed: %s", sh_strerror(rv));
	for (size_t i = 0; i < s->n; i++)
		if ((rv = coll_save_held(s->colls[i], write, ctx, err)) != 0)
			return rv;
	if ((rv = session_save(s->sessions, write, ctx)) != 0)
		return sh_err_set(err, rv, "write failed: %s", sh_strerror(rv));
	return 0;
}

/* The term history: terms and first indexes strictly increasing. */
static int load_terms(struct store *s, hnsw_read_fn read, void *ctx, struct sh_err *err)
{
	unsigned char b[16];
	uint32_t n;

	if (read(ctx, b, 4) != 0)
		return sh_err_set(err, SH_ECORRUPT, "cannot read the term history");
	if ((n = le32_get(b)) > STORE_MAX_TERMS)
		return sh_err_set(err, SH_ECORRUPT, "absurd size: a history of %" PRIu32 " terms",
				  n);
	if (n > 0 && (s->terms = sh_calloc(n, sizeof *s->terms)) == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	s->cap_terms = n;
	for (uint32_t i = 0; i < n; i++) {
		if (read(ctx, b, 16) != 0)
			return sh_err_set(err, SH_ECORRUPT, "cannot read the term history");
		s->terms[i] = (struct store_term){le64_get(b), le64_get(b + 8)};
		if (i > 0 && (s->terms[i].term <= s->terms[i - 1].term ||
			      s->terms[i].first <= s->terms[i - 1].first))
			return sh_err_set(err, SH_ECORRUPT,
					  "the term history is out of order at %" PRIu32, i);
		s->n_terms++;
	}
	return 0;
}

/* Format 4 content opens with STORE_SESSION_MARK (sessions after the
 * collections), format 3 with STORE_FRESH_MARK (collections carry their
 * fresh sets); format 2 with the collection count, never that large. */
static int load_header(struct store *s, hnsw_read_fn read, void *ctx, uint32_t *n, bool *with_fresh,
		       bool *with_sessions, struct digest *want, struct sh_err *err)
{
	unsigned char h[16];
	uint32_t vlen;

	if (read(ctx, h, 4) != 0)
		return sh_err_set(err, SH_ECORRUPT, "cannot read the header");
	*with_sessions = le32_get(h) == STORE_SESSION_MARK;
	*with_fresh = *with_sessions || le32_get(h) == STORE_FRESH_MARK;
	if (*with_fresh && read(ctx, h, 4) != 0)
		return sh_err_set(err, SH_ECORRUPT, "cannot read the header");
	if (read(ctx, h + 4, 4) != 0)
		return sh_err_set(err, SH_ECORRUPT, "cannot read the header");
	*n = le32_get(h);
	vlen = le32_get(h + 4);
	if (*n > STORE_MAX_COLLECTIONS || vlen > WAL_MAX_BODY)
		return sh_err_set(err, SH_ECORRUPT,
				  "absurd sizes: %" PRIu32 " collections, voters of %" PRIu32
				  " bytes",
				  *n, vlen);
	if (vlen > 0 && (s->voters = sh_malloc(vlen)) == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	s->voters_len = vlen;
	if ((vlen > 0 && read(ctx, s->voters, vlen) != 0) || read(ctx, h, 16) != 0)
		return sh_err_set(err, SH_ECORRUPT, "cannot read the header");
	want->lo = le64_get(h);
	want->hi = le64_get(h + 8);
	return load_terms(s, read, ctx, err);
}

static int load_colls(struct store *s, hnsw_read_fn read, void *ctx, uint32_t n, bool with_fresh,
		      struct sh_err *err)
{
	for (uint32_t i = 0; i < n; i++) {
		struct coll *c;
		int rv = coll_load(read, ctx, with_fresh, &c, err);

		if (rv != 0)
			return rv;
		if (s->n > 0 && strcmp(coll_name(s->colls[s->n - 1]), coll_name(c)) >= 0) {
			sh_err_set(err, SH_ECORRUPT, "collection '%s' out of order", coll_name(c));
			coll_unref(c);
			return SH_ECORRUPT;
		}
		if ((rv = add_coll(s, c)) != 0) {
			coll_unref(c);
			return sh_err_set(err, rv, "out of memory");
		}
	}
	return 0;
}

/* A load that fails while an allocation failed on this thread ran out of
 * memory, whatever the layer below made of it (a loader may report it as
 * damage): the snapshot is not to blame, and trying again may work. */
static int load_failed(int rv, unsigned long failures, struct sh_err *err)
{
	if (rv == SH_ENOMEM || sh_alloc_thread_failures() == failures)
		return rv;
	return sh_err_wrap(err, SH_ENOMEM, "out of memory");
}

int store_load(hnsw_read_fn read, void *ctx, uint64_t index, uint64_t term, struct store **out,
	       struct sh_err *err)
{
	struct store *s;
	struct digest want, got;
	uint32_t n = 0;
	bool with_fresh = false, with_sessions = false;
	unsigned long failures = sh_alloc_thread_failures();
	int rv;

	if ((rv = store_new(&s, err)) != 0)
		return rv;
	if ((rv = load_header(s, read, ctx, &n, &with_fresh, &with_sessions, &want, err)) != 0 ||
	    (rv = load_colls(s, read, ctx, n, with_fresh, err)) != 0 ||
	    (with_sessions && (rv = session_load(s->sessions, read, ctx, err)) != 0))
		goto fail;
	got = store_digest(s);
	if (!digest_equal(want, got)) {
		char a[33], b[33];

		digest_hex(want, a);
		digest_hex(got, b);
		rv = sh_err_set(err, SH_ECORRUPT, "state digest mismatch: stored %s, computed %s",
				a, b);
		goto fail;
	}
	atomic_store(&s->applied, index);
	atomic_store(&s->applied_term, term);
	*out = s;
	return 0;
fail:
	store_free(s);
	return load_failed(rv, failures, err);
}
