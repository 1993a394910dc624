/*
 * hist_lin: linearizability of each register of a history — Wing & Gong's
 * search with Lowe's memoisation of (linearized set, state) ("Testing for
 * linearizability", Lowe 2017).
 *
 * Two refinements over the textbook check make it strict where the
 * recorder knows more than the clients saw:
 *
 *   the truth     when the committed log is known, the register's writes
 *                 and deletes take effect in the log's order and nothing
 *                 else ever does: the search's state is the position in
 *                 the key's committed sequence, a write may be linearized
 *                 only as the next entry of it, and a write that is not in
 *                 the log is left out (it never took effect; the ghost and
 *                 durability checks judge the reads and answers).  A
 *                 committed delete that no answered delete claims (its
 *                 client never heard) stands for one of the deletes of
 *                 unknown outcome: from the earliest of their invocations.
 *   one client    a client's operations are sequential: one invoked at the
 *                 instant its previous one was answered follows it, while
 *                 different clients' operations at equal times are
 *                 concurrent.  Times are doubled inside, so that such a
 *                 call sits between the return at that instant and the
 *                 next microsecond.
 */
#include "build.h"

#include "hist/hist_impl.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* A call or return in the search's list (Lowe's "entries"). */
struct lent {
	size_t op; /* into the register's ops */
	bool call;
	uint64_t time;
	struct lent *prev, *next, *match;
};

/* The memo: (linearized set, state) pairs seen, open addressing; a slot
 * is `words` words of the set, the state, and a used flag. */
struct memo {
	uint64_t *slots;
	size_t words, cap, n;
};

struct reg {
	const struct hist_op **ops;
	size_t n;
	/* with the truth: the key's committed sequence and each op's place
	 * in it (-1: a read); the state is then a position in tr */
	const struct hist_entry *tr;
	size_t n_tr;
	bool ordered;
	long *slot;
	struct hist_op *synth; /* committed deletes no answer claims */
	size_t n_synth;
	struct lent *ents, head;
	uint64_t *bits;
	struct memo memo;
	uint64_t steps;
	uint64_t *best; /* the largest set linearized during the search */
	size_t best_n;
	uint64_t best_state;
};

/* ------------------------------------------------------------ the memo */

static uint64_t memo_hash(const uint64_t *k, size_t n)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;

	for (size_t i = 0; i < n; i++) {
		x ^= k[i];
		x *= 0xff51afd7ed558ccdull;
		x ^= x >> 29;
	}
	return x;
}

/* The slot of key (words + 1 words) in slots of capacity cap: where it is,
 * or the empty slot where it goes. */
static uint64_t *memo_find(uint64_t *slots, size_t cap, size_t words, const uint64_t *key)
{
	size_t w = words + 2, j = memo_hash(key, words + 1) & (cap - 1);

	while (slots[j * w + words + 1] != 0 && memcmp(slots + j * w, key, (words + 1) * 8) != 0)
		j = (j + 1) & (cap - 1);
	return slots + j * w;
}

static int memo_grow(struct memo *m)
{
	size_t w = m->words + 2, cap = m->cap ? 2 * m->cap : 1024;
	uint64_t *slots = calloc(cap * w, sizeof *slots);

	if (slots == NULL)
		return -1;
	for (size_t i = 0; i < m->cap; i++) {
		const uint64_t *e = m->slots + i * w;

		if (e[m->words + 1] != 0)
			memcpy(memo_find(slots, cap, m->words, e), e, w * sizeof *e);
	}
	free(m->slots);
	m->slots = slots;
	m->cap = cap;
	return 0;
}

/* Insert (bits, state): 1 when new, 0 when seen, -1 out of memory. */
static int memo_add(struct memo *m, uint64_t *bits, uint64_t state)
{
	uint64_t *slot;

	if ((m->n + 1) * 2 > m->cap && memo_grow(m) != 0)
		return -1;
	bits[m->words] = state; /* bits has room for it */
	slot = memo_find(m->slots, m->cap, m->words, bits);
	if (slot[m->words + 1] != 0)
		return 0;
	memcpy(slot, bits, (m->words + 1) * sizeof *slot);
	slot[m->words + 1] = 1;
	m->n++;
	return 1;
}

/* ------------------------------------------------------------ the register's ops */

/* The end of an operation's interval in the search (writes that may take
 * effect later than their answer, or never, end at infinity). */
static uint64_t lin_end(const struct hist_op *op)
{
	if (op->kind == HIST_READ)
		return op->complete;
	if (op->outcome == HIST_OK && op->level >= HIST_ACK_QUORUM)
		return op->complete;
	return HIST_NEVER;
}

static bool read_included(const struct hist_op *op)
{
	return op->outcome == HIST_OK && op->level >= HIST_STRONG;
}

/* The write's or delete's place in the key's committed sequence, -1 when
 * it is not there (or, for a delete, not known: no token). */
static long truth_slot(const struct reg *g, const struct hist_op *op)
{
	for (size_t p = 0; p < g->n_tr; p++) {
		const struct hist_entry *e = &g->tr[p];

		if (e->kind != op->kind)
			continue;
		if (op->kind == HIST_WRITE && e->value == op->value)
			return (long)p;
		if (op->kind == HIST_DELETE && op->outcome == HIST_OK && e->index == op->index &&
		    e->term == op->term)
			return (long)p;
	}
	return -1;
}

static void reg_push(struct reg *g, const struct hist_op *op, long slot)
{
	g->ops[g->n] = op;
	g->slot[g->n++] = slot;
}

/* The committed entries no op claimed, as ops of unknown outcome: deletes
 * from the first invocation of a delete of unknown place; anything else
 * (a write no client made) from the start. */
static void reg_add_unclaimed(struct reg *g, const bool *claimed, uint64_t first_unplaced)
{
	for (size_t p = 0; p < g->n_tr; p++) {
		struct hist_op *s;

		if (claimed[p])
			continue;
		s = &g->synth[g->n_synth++];
		*s = (struct hist_op){.client = UINT32_MAX,
				      .kind = g->tr[p].kind,
				      .outcome = HIST_UNKNOWN,
				      .key = g->tr[p].key,
				      .value = g->tr[p].kind == HIST_WRITE ? g->tr[p].value : 0,
				      .invoke = g->tr[p].kind == HIST_DELETE ? first_unplaced : 0,
				      .complete = HIST_NEVER,
				      .term = g->tr[p].term,
				      .index = g->tr[p].index};
		reg_push(g, s, (long)p);
	}
}

/* The ops of order[0..n) the search takes, in g (ordered by the truth
 * when there is one). */
static int reg_collect(struct ck *c, struct reg *g, const size_t *order, size_t n)
{
	size_t room = n + g->n_tr + 1;
	bool *claimed = calloc(g->n_tr + 1, sizeof *claimed);
	uint64_t first_unplaced = HIST_NEVER;

	g->ops = malloc(room * sizeof *g->ops);
	g->slot = malloc(room * sizeof *g->slot);
	g->synth = calloc(g->n_tr + 1, sizeof *g->synth);
	if (claimed == NULL || g->ops == NULL || g->slot == NULL || g->synth == NULL) {
		free(claimed);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		const struct hist_op *op = &c->h->ops[order[i]];
		long p;

		if (op->kind == HIST_READ) {
			if (read_included(op))
				reg_push(g, op, -1);
		} else if (!g->ordered) {
			if (op->outcome != HIST_FAIL)
				reg_push(g, op, -1);
		} else if ((p = truth_slot(g, op)) >= 0 && !claimed[p]) {
			claimed[p] = true;
			reg_push(g, op, p);
		} else if (op->kind == HIST_DELETE && op->outcome == HIST_UNKNOWN &&
			   op->invoke < first_unplaced) {
			first_unplaced = op->invoke;
		}
	}
	if (g->ordered)
		reg_add_unclaimed(g, claimed, first_unplaced == HIST_NEVER ? 0 : first_unplaced);
	free(claimed);
	return 0;
}

/* ------------------------------------------------------------ the entry list */

static int cmp_lent(const void *a, const void *b)
{
	const struct lent *x = a, *y = b;

	if (x->time != y->time)
		return x->time < y->time ? -1 : 1;
	if (x->call != y->call)
		return x->call ? -1 : 1; /* equal times: concurrent */
	return x->op < y->op ? -1 : x->op > y->op;
}

static int cmp_client_invoke(const void *a, const void *b, void *arg)
{
	const struct hist_op *const *ops = arg;
	const struct hist_op *x = ops[*(const size_t *)a], *y = ops[*(const size_t *)b];

	if (x->client != y->client)
		return x->client < y->client ? -1 : 1;
	return x->invoke < y->invoke ? -1 : x->invoke > y->invoke;
}

/* The calls' times, doubled, plus one for an op invoked at the instant its
 * client's previous op was answered. */
static int reg_call_times(struct reg *g)
{
	size_t *by = malloc((g->n ? g->n : 1) * sizeof *by);

	if (by == NULL)
		return -1;
	for (size_t i = 0; i < g->n; i++) {
		by[i] = i;
		g->ents[2 * i].time = 2 * g->ops[i]->invoke;
	}
	qsort_r(by, g->n, sizeof *by, cmp_client_invoke, g->ops);
	for (size_t i = 1; i < g->n; i++) {
		const struct hist_op *a = g->ops[by[i - 1]], *b = g->ops[by[i]];

		if (a->client == b->client && a->client != UINT32_MAX && lin_end(a) == b->invoke) {
			g->ents[2 * by[i]].time++;
			if (g->ents[2 * by[i] + 1].time < g->ents[2 * by[i]].time)
				g->ents[2 * by[i] + 1].time++; /* answered at once */
		}
	}
	free(by);
	return 0;
}

static int reg_link(struct reg *g)
{
	size_t n = g->n;
	struct lent **call_of = calloc(n ? n : 1, sizeof *call_of);

	if (call_of == NULL)
		return -1;
	for (size_t i = 0; i < 2 * n; i++)
		if (g->ents[i].call)
			call_of[g->ents[i].op] = &g->ents[i];
	for (size_t i = 0; i < 2 * n; i++)
		if (!g->ents[i].call) {
			g->ents[i].match = call_of[g->ents[i].op];
			call_of[g->ents[i].op]->match = &g->ents[i];
		}
	free(call_of);
	g->head.next = n ? &g->ents[0] : NULL;
	for (size_t i = 0; i < 2 * n; i++) {
		g->ents[i].prev = i ? &g->ents[i - 1] : &g->head;
		g->ents[i].next = i + 1 < 2 * n ? &g->ents[i + 1] : NULL;
	}
	return 0;
}

static int reg_build(struct reg *g)
{
	size_t n = g->n;

	g->ents = calloc(2 * n + 1, sizeof *g->ents);
	g->bits = calloc((n + 63) / 64 + 1, sizeof *g->bits);
	g->best = calloc((n + 63) / 64 + 1, sizeof *g->best);
	if (g->ents == NULL || g->bits == NULL || g->best == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		uint64_t end = lin_end(g->ops[i]);

		g->ents[2 * i] = (struct lent){.op = i, .call = true};
		g->ents[2 * i + 1] =
			(struct lent){.op = i, .time = end == HIST_NEVER ? HIST_NEVER : 2 * end};
	}
	if (reg_call_times(g) != 0)
		return -1;
	qsort(g->ents, 2 * n, sizeof *g->ents, cmp_lent);
	g->memo.words = (n + 63) / 64;
	return reg_link(g);
}

static void lift(struct lent *e)
{
	struct lent *m = e->match;

	e->prev->next = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	m->prev->next = m->next;
	if (m->next != NULL)
		m->next->prev = m->prev;
}

static void unlift(struct lent *e)
{
	struct lent *m = e->match;

	m->prev->next = m;
	if (m->next != NULL)
		m->next->prev = m;
	e->prev->next = e;
	if (e->next != NULL)
		e->next->prev = e;
}

/* ------------------------------------------------------------ the search */

/* The register's value in state s. */
static uint64_t state_value(const struct reg *g, uint64_t s)
{
	if (!g->ordered)
		return s;
	if (s == 0)
		return 0;
	return g->tr[s - 1].kind == HIST_WRITE ? g->tr[s - 1].value : 0;
}

/* The register's model: a read must see the state; writes set it (with
 * the truth: only as the next committed entry). */
static bool model_step(const struct reg *g, size_t i, uint64_t state, uint64_t *next)
{
	const struct hist_op *op = g->ops[i];

	if (op->kind == HIST_READ) {
		*next = state;
		return op->value == state_value(g, state);
	}
	if (g->ordered) {
		*next = state + 1;
		return (uint64_t)g->slot[i] == state;
	}
	*next = op->kind == HIST_WRITE ? op->value : 0;
	return true;
}

struct frame {
	struct lent *e;
	uint64_t state;
};

static void note_best(struct reg *g, size_t top, uint64_t state)
{
	if (top <= g->best_n)
		return;
	g->best_n = top;
	g->best_state = state;
	memcpy(g->best, g->bits, g->memo.words * sizeof *g->best);
}

/* Try to linearize the call e in state: 1 done (the set and state are
 * new), 0 not possible or seen, -1 out of memory. */
static int try_call(struct reg *g, struct lent *e, uint64_t state, uint64_t *next)
{
	uint64_t bit = 1ull << (e->op % 64);
	int fresh;

	if (!model_step(g, e->op, state, next))
		return 0;
	g->bits[e->op / 64] |= bit;
	if ((fresh = memo_add(&g->memo, g->bits, *next)) <= 0)
		g->bits[e->op / 64] &= ~bit;
	return fresh;
}

/* 1: linearizable, 0: not, -1: out of memory, -2: over the step budget. */
static int reg_search(struct reg *g, uint64_t max_steps)
{
	struct frame *stack = malloc((g->n ? g->n : 1) * sizeof *stack);
	size_t top = 0;
	uint64_t state = 0, next;
	struct lent *e = g->head.next;
	int rv = 1, fresh;

	if (stack == NULL)
		return -1;
	while (g->head.next != NULL) {
		if (++g->steps > max_steps) {
			rv = -2;
			break;
		}
		if (e->call) {
			if ((fresh = try_call(g, e, state, &next)) < 0) {
				rv = -1;
				break;
			}
			if (!fresh) {
				e = e->next;
				continue;
			}
			stack[top++] = (struct frame){e, state};
			state = next;
			lift(e);
			e = g->head.next;
			note_best(g, top, state);
		} else {
			if (top == 0) {
				rv = 0;
				break;
			}
			top--;
			e = stack[top].e;
			state = stack[top].state;
			g->bits[e->op / 64] &= ~(1ull << (e->op % 64));
			unlift(e);
			e = e->next;
		}
	}
	free(stack);
	return rv;
}

static void reg_free(struct reg *g)
{
	free(g->ents);
	free(g->bits);
	free(g->best);
	free(g->memo.slots);
	free(g->ops);
	free(g->slot);
	free(g->synth);
}

/* ------------------------------------------------------------ reports */

/* Where the search got stuck: the first operation (by invocation) outside
 * the largest set it could linearize, the operations concurrent with it
 * and the last ones linearized before it. */
static void report_stuck(struct ck *c, const struct reg *g)
{
	const struct hist_op *stuck = NULL;
	size_t shown = 0, before = 0;

	for (size_t i = 0; i < g->n; i++)
		if (!(g->best[i / 64] >> (i % 64) & 1) &&
		    (stuck == NULL || g->ops[i]->invoke < stuck->invoke))
			stuck = g->ops[i];
	if (stuck == NULL || c->out == NULL)
		return;
	fprintf(c->out,
		"  %zu of %zu operations linearize, the register then holding %" PRIu64
		"%s; the first that cannot follow:\n",
		g->best_n, g->n, state_value(g, g->best_state),
		g->ordered ? " (writes in the committed log's order)" : "");
	hist__print_op(c, "stuck", stuck);
	for (size_t i = g->n; i-- > 0 && shown < 12;) {
		const struct hist_op *op = g->ops[i];
		bool earlier = lin_end(op) < stuck->invoke;

		if (op == stuck || op->invoke > lin_end(stuck) || (earlier && before >= 4))
			continue;
		hist__print_op(c, earlier ? "before" : "concurrent", op);
		before += earlier;
		shown++;
	}
}

static void report(struct ck *c, const struct reg *g, uint64_t key, int rv)
{
	if (rv == 0)
		hist__violation(c,
				"key %" PRIu64 ": the strong and quorum reads are not linearizable",
				key);
	else
		hist__violation(
			c, "key %" PRIu64 ": inconclusive, the search passed its step budget", key);
	report_stuck(c, g);
}

/* ------------------------------------------------------------ per register */

static int cmp_key_invoke(const void *a, const void *b, void *arg)
{
	const struct hist *h = *(const struct hist *const *)arg;
	const struct hist_op *x = &h->ops[*(const size_t *)a];
	const struct hist_op *y = &h->ops[*(const size_t *)b];

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->invoke < y->invoke ? -1 : x->invoke > y->invoke;
}

/* Check the register of ops order[0..n) (one key, n > 0). */
static int check_register(struct ck *c, const size_t *order, size_t n)
{
	uint64_t key = c->h->ops[order[0]].key;
	struct reg g = {.ordered = c->h->has_truth};
	int rv = -1;

	if (g.ordered)
		g.tr = hist__truth_of_key(c, key, &g.n_tr);
	if (reg_collect(c, &g, order, n) == 0 && reg_build(&g) == 0)
		rv = reg_search(&g, c->max_steps);
	c->st->search_steps += g.steps;
	if (rv == 1)
		c->st->linearized_ops += g.n;
	else if (rv == 0 || rv == -2)
		report(c, &g, key, rv);
	reg_free(&g);
	return rv == -1 ? -1 : 0;
}

int hist__check_linearizable(struct ck *c)
{
	const struct hist *h = c->h;
	size_t *order = malloc((h->n_ops ? h->n_ops : 1) * sizeof *order), i = 0;
	int rv = 0;

	if (order == NULL)
		return -1;
	for (size_t k = 0; k < h->n_ops; k++)
		order[k] = k;
	qsort_r(order, h->n_ops, sizeof *order, cmp_key_invoke, &c->h);
	while (rv == 0 && i < h->n_ops) {
		size_t j = i;

		while (j < h->n_ops && h->ops[order[j]].key == h->ops[order[i]].key)
			j++;
		c->st->keys++;
		rv = check_register(c, order + i, j - i);
		i = j;
	}
	free(order);
	return rv;
}
