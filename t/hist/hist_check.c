/*
 * hist_check: the checker of hist.h — ghosts, linearizability per register
 * (Wing & Gong's search with Lowe's memoisation of (linearized set, state),
 * as in "Testing for linearizability", Lowe 2017), read-your-writes, "lost"
 * answers and durability of acknowledged writes.
 */
#include "build.h"

#include "hist/hist_impl.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_STEPS 2000000

/* ------------------------------------------------------------ reporting */

void hist__print_op(struct ck *c, const char *label, const struct hist_op *op)
{
	static const char *const kinds[] = {"?", "write", "delete", "read"};

	if (c->out == NULL)
		return;
	if (op->client == UINT32_MAX) { /* hist_lin's stand-in for a committed entry */
		fprintf(c->out,
			"  %s: the committed %s of key %" PRIu64 " at %" PRIu64 ".%" PRIu64
			", whose client never heard\n",
			label, kinds[op->kind <= HIST_READ ? op->kind : 0], op->key, op->term,
			op->index);
		return;
	}
	fprintf(c->out,
		"  %s: client %" PRIu32 " %s key %" PRIu64 " value %" PRIu64
		" at %s on node %" PRIu32 ", invoked %" PRIu64 ", ",
		label, op->client, kinds[op->kind <= HIST_READ ? op->kind : 0], op->key, op->value,
		hist_level_name(op->kind, op->level), op->node, op->invoke);
	if (op->complete == HIST_NEVER)
		fprintf(c->out, "never answered");
	else
		fprintf(c->out, "answered %" PRIu64, op->complete);
	fprintf(c->out, " %s, token %" PRIu64 ".%" PRIu64 "\n", hist_outcome_name(op->outcome),
		op->term, op->index);
}

void hist__violation(struct ck *c, const char *fmt, ...)
{
	va_list ap;

	c->violations++;
	if (c->out == NULL)
		return;
	fprintf(c->out, "violation: ");
	va_start(ap, fmt);
	vfprintf(c->out, fmt, ap);
	va_end(ap);
	fputc('\n', c->out);
}

/* ------------------------------------------------------------ lookups */

static const struct hist_op *op_at(struct ck *c, size_t i)
{
	return &c->h->ops[i];
}

static int cmp_value(const void *a, const void *b, void *arg)
{
	const struct hist_op *x = &((struct ck *)arg)->h->ops[*(const size_t *)a];
	const struct hist_op *y = &((struct ck *)arg)->h->ops[*(const size_t *)b];

	return x->value < y->value ? -1 : x->value > y->value;
}

/* The write or delete that wrote value v (NULL: none). */
static const struct hist_op *writer_of(struct ck *c, uint64_t v)
{
	size_t lo = 0, hi = c->n_by_value;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		uint64_t x = op_at(c, c->by_value[mid])->value;

		if (x == v)
			return op_at(c, c->by_value[mid]);
		if (x < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int index_values(struct ck *c)
{
	const struct hist *h = c->h;

	c->by_value = malloc((h->n_ops ? h->n_ops : 1) * sizeof *c->by_value);
	if (c->by_value == NULL)
		return -1;
	for (size_t i = 0; i < h->n_ops; i++)
		if (h->ops[i].kind != HIST_READ)
			c->by_value[c->n_by_value++] = i;
	qsort_r(c->by_value, c->n_by_value, sizeof *c->by_value, cmp_value, c);
	for (size_t i = 1; i < c->n_by_value; i++) {
		const struct hist_op *a = op_at(c, c->by_value[i - 1]),
				     *b = op_at(c, c->by_value[i]);

		if (a->value == b->value) {
			hist__violation(
				c, "two writes of one version %" PRIu64 " (the recorder's bug)",
				a->value);
			hist__print_op(c, "first", a);
			hist__print_op(c, "second", b);
		}
	}
	for (size_t i = 0; i < c->n_by_value; i++)
		if (op_at(c, c->by_value[i])->value == 0)
			hist__violation(c, "a write of version 0 (the recorder's bug)");
	return 0;
}

static int cmp_truth_key(const void *a, const void *b)
{
	const struct hist_entry *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

static int index_truth(struct ck *c)
{
	const struct hist *h = c->h;

	c->tk = malloc((h->n_truth ? h->n_truth : 1) * sizeof *c->tk);
	if (c->tk == NULL)
		return -1;
	for (size_t i = 0; i < h->n_truth; i++)
		if (h->truth[i].kind != 0)
			c->tk[c->n_tk++] = h->truth[i];
	qsort(c->tk, c->n_tk, sizeof *c->tk, cmp_truth_key);
	return 0;
}

/* The truth's entries at index (first of them, and how many). */
static const struct hist_entry *truth_at(struct ck *c, uint64_t index, size_t *n)
{
	const struct hist *h = c->h;
	size_t lo = 0, hi = h->n_truth, k;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (h->truth[mid].index < index)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (k = lo; k < h->n_truth && h->truth[k].index == index; k++)
		;
	*n = k - lo;
	return *n ? &h->truth[lo] : NULL;
}

/* The truth's entries touching key, by index (first, count). */
const struct hist_entry *hist__truth_of_key(struct ck *c, uint64_t key, size_t *n)
{
	size_t lo = 0, hi = c->n_tk, k;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (c->tk[mid].key < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (k = lo; k < c->n_tk && c->tk[k].key == key; k++)
		;
	*n = k - lo;
	return &c->tk[lo];
}

/* ------------------------------------------------------------ ghosts */

static bool truth_has_value(struct ck *c, uint64_t key, uint64_t v)
{
	size_t n;
	const struct hist_entry *e = hist__truth_of_key(c, key, &n);

	for (size_t i = 0; i < n; i++)
		if (e[i].kind == HIST_WRITE && e[i].value == v)
			return true;
	return false;
}

static void check_ghost(struct ck *c, const struct hist_op *r)
{
	const struct hist_op *w;

	if (r->outcome != HIST_OK || r->value == 0)
		return;
	w = writer_of(c, r->value);
	if (w == NULL || w->kind != HIST_WRITE || w->key != r->key) {
		hist__violation(c,
				"a read observed version %" PRIu64
				", which no write of key %" PRIu64 " wrote",
				r->value, r->key);
		hist__print_op(c, "read", r);
	} else if (w->outcome == HIST_FAIL) {
		hist__violation(
			c, "a read observed a write that was answered with a definite failure");
		hist__print_op(c, "write", w);
		hist__print_op(c, "read", r);
	} else if (w->invoke > r->complete) {
		hist__violation(c, "a read observed a write invoked after the read was answered");
		hist__print_op(c, "write", w);
		hist__print_op(c, "read", r);
	} else if (c->h->has_truth && !truth_has_value(c, r->key, r->value)) {
		hist__violation(c, "a read observed a write that is not in the committed log");
		hist__print_op(c, "write", w);
		hist__print_op(c, "read", r);
	}
}

/* ------------------------------------------------------------ tokens */

static uint64_t truth_last(struct ck *c)
{
	return c->h->n_truth ? c->h->truth[c->h->n_truth - 1].index : 0;
}

/* The truth's entry at index for key (NULL: none); *term: the entry's term
 * at that index (0 when the truth does not reach it). */
static const struct hist_entry *truth_entry(struct ck *c, uint64_t index, uint64_t key,
					    uint64_t *term)
{
	size_t n;
	const struct hist_entry *e = truth_at(c, index, &n);

	*term = n ? e[0].term : 0;
	for (size_t i = 0; i < n; i++)
		if (e[i].kind != 0 && e[i].key == key)
			return &e[i];
	return NULL;
}

/* With the truth: a read_your_writes read with token (t, i) saw the
 * register as of some index A >= i. */
static void ryw_truth(struct ck *c, const struct hist_op *r)
{
	size_t n, j = 0;
	const struct hist_entry *e = hist__truth_of_key(c, r->key, &n);
	uint64_t at_i = 0, term;

	truth_entry(c, r->index, r->key, &term);
	if (term != r->term) {
		hist__violation(
			c,
			"a read_your_writes read passed with a token whose entry is not in the "
			"committed log (term there: %" PRIu64 ")",
			term);
		hist__print_op(c, "read", r);
		return;
	}
	for (; j < n && e[j].index <= r->index; j++)
		at_i = e[j].kind == HIST_WRITE ? e[j].value : 0;
	if (r->value == at_i)
		return;
	for (; j < n; j++)
		if ((e[j].kind == HIST_WRITE ? e[j].value : 0) == r->value)
			return;
	hist__violation(c,
			"a read_your_writes read saw key %" PRIu64 " older than its token %" PRIu64
			".%" PRIu64 " (version %" PRIu64 " there)",
			r->key, r->term, r->index, at_i);
	hist__print_op(c, "read", r);
}

/* Known to be committed: acknowledged at quorum or all, or the token of a
 * read_your_writes read that passed. */
static bool known_committed(const struct hist_op *w, const struct hist_op *r)
{
	if (w->kind == HIST_READ || w->outcome != HIST_OK || w->index == 0)
		return false;
	return w->level >= HIST_ACK_QUORUM || (w->term == r->term && w->index == r->index);
}

/* Without the truth: no known committed write of the key between what the
 * read saw and its token. */
static void ryw_tokens(struct ck *c, const struct hist_op *r)
{
	const struct hist *h = c->h;
	uint64_t latest = 0, seen = 0;
	const struct hist_op *w;

	for (size_t i = 0; i < h->n_ops; i++) {
		w = &h->ops[i];
		if (w->key == r->key && known_committed(w, r) && w->index <= r->index &&
		    w->index > latest)
			latest = w->index;
	}
	if (r->value != 0) {
		w = writer_of(c, r->value);
		if (w == NULL || w->outcome != HIST_OK || w->index == 0)
			return; /* a ghost (reported) or a write of unknown place */
		seen = w->index;
	} else {
		for (size_t i = 0; i < h->n_ops; i++) {
			w = &h->ops[i];
			if (w->kind == HIST_DELETE && w->key == r->key && w->outcome != HIST_FAIL) {
				if (w->outcome != HIST_OK || w->index == 0)
					return; /* a delete of unknown place */
				seen = w->index > seen ? w->index : seen;
			}
		}
	}
	if (seen < latest) {
		hist__violation(c,
				"a read_your_writes read saw key %" PRIu64 " as of index %" PRIu64
				", before index %" PRIu64 " which its token %" PRIu64 ".%" PRIu64
				" covers",
				r->key, seen, latest, r->term, r->index);
		hist__print_op(c, "read", r);
	}
}

static const struct hist_op *write_of_token(struct ck *c, uint64_t term, uint64_t index)
{
	for (size_t i = 0; i < c->h->n_ops; i++) {
		const struct hist_op *w = &c->h->ops[i];

		if (w->kind != HIST_READ && w->outcome == HIST_OK && w->term == term &&
		    w->index == index)
			return w;
	}
	return NULL;
}

static bool observed(struct ck *c, const struct hist_op *w)
{
	for (size_t i = 0; i < c->h->n_ops; i++) {
		const struct hist_op *r = &c->h->ops[i];

		if (r->kind == HIST_READ && r->outcome == HIST_OK && r->key == w->key &&
		    w->kind == HIST_WRITE && r->value == w->value)
			return true;
	}
	return false;
}

/* A "lost" answer must be certain. */
static void check_lost(struct ck *c, const struct hist_op *r)
{
	uint64_t term = 0;
	const struct hist_op *w = write_of_token(c, r->term, r->index);

	if (c->h->has_truth) {
		if (r->index <= truth_last(c))
			truth_entry(c, r->index, r->key, &term);
		if (term == r->term) {
			hist__violation(c,
					"a read was told its write was lost, but token %" PRIu64
					".%" PRIu64 " is in the committed log",
					r->term, r->index);
			hist__print_op(c, "read", r);
		}
		return;
	}
	if (w != NULL && (w->level >= HIST_ACK_QUORUM || observed(c, w))) {
		hist__violation(c, "a read was told its write was lost, but the write was %s",
				w->level >= HIST_ACK_QUORUM ? "acknowledged as committed"
							    : "seen by a read");
		hist__print_op(c, "write", w);
		hist__print_op(c, "read", r);
	}
}

/* With the truth: a write answered OK is at its token if that index holds
 * an entry of its term; at quorum and all it must be. */
static void check_durable(struct ck *c, const struct hist_op *w)
{
	uint64_t term;
	const struct hist_entry *e;

	if (w->outcome != HIST_OK)
		return;
	e = w->index <= truth_last(c) ? truth_entry(c, w->index, w->key, &term) : NULL;
	if (w->index > truth_last(c))
		term = 0;
	if (term == w->term &&
	    (e == NULL || e->kind != w->kind || (w->kind == HIST_WRITE && e->value != w->value))) {
		hist__violation(c,
				"the committed entry at token %" PRIu64 ".%" PRIu64
				" is not the write given that token",
				w->term, w->index);
		hist__print_op(c, "write", w);
	} else if (term != w->term && w->level >= HIST_ACK_QUORUM) {
		hist__violation(
			c, "a write acknowledged at %s is not in the committed log at its token",
			hist_level_name(w->kind, w->level));
		hist__print_op(c, "write", w);
	}
}

/* With the truth: a definite failure is never in the committed log. */
static void check_failed(struct ck *c, const struct hist_op *w)
{
	if (w->outcome == HIST_FAIL && w->kind == HIST_WRITE &&
	    truth_has_value(c, w->key, w->value)) {
		hist__violation(c,
				"a write answered with a definite failure is in the committed log");
		hist__print_op(c, "write", w);
	}
}

static void check_ops(struct ck *c)
{
	const struct hist *h = c->h;

	for (size_t i = 0; i < h->n_ops; i++) {
		const struct hist_op *op = &h->ops[i];

		if (op->kind == HIST_READ) {
			check_ghost(c, op);
			if (op->outcome == HIST_LOST)
				check_lost(c, op);
			else if (op->outcome == HIST_OK && op->level == HIST_RYW && op->index != 0)
				h->has_truth ? ryw_truth(c, op) : ryw_tokens(c, op);
		} else if (h->has_truth) {
			check_durable(c, op);
			check_failed(c, op);
		}
	}
}

size_t hist_check(const struct hist *h, uint64_t max_steps, FILE *out, struct hist_stats *st)
{
	struct hist_stats dummy;
	struct ck c = {.h = h, .out = out, .max_steps = max_steps ? max_steps : DEFAULT_STEPS};

	c.st = st != NULL ? st : &dummy;
	memset(c.st, 0, sizeof *c.st);
	c.st->ops = h->n_ops;
	if (index_values(&c) != 0 || index_truth(&c) != 0 || hist__check_linearizable(&c) != 0)
		hist__violation(&c, "the checker ran out of memory");
	else
		check_ops(&c);
	free(c.by_value);
	free(c.tk);
	c.st->violations = c.violations;
	return c.violations;
}
