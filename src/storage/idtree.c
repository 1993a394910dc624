/*
 * idtree: see idtree.h.  A textbook B+tree (Comer, "The Ubiquitous B-Tree",
 * 1979): leaves hold up to LEAF_MAX keys with their values inline, inner
 * nodes up to INNER_MAX children; every node but the root is at least half
 * full, all leaves are at the same depth and chained left to right.
 * Separator keys[i] of an inner node is the smallest key the subtree
 * kids[i + 1] may hold; deletions may leave it stale, which routing
 * tolerates.
 *
 * Insertion never fails half-way: the nodes a split could need (one leaf,
 * one inner node per level and a new root) are allocated before the tree
 * is touched and kept as spares.
 */
#include "build.h"

#include "storage/idtree.h"

#include "util/alloc.h"
#include "util/err.h"

#include <stdio.h>
#include <string.h>

#define LEAF_MAX  64
#define INNER_MAX 64 /* children */
#define MAX_DEPTH 16 /* 64^16 keys: more than a uint64 can name */

struct node {
	unsigned n; /* leaf: keys; inner: children */
	bool leaf;
};

struct leaf {
	struct node h;
	struct leaf *next;
	uint64_t keys[LEAF_MAX];
	unsigned char vals[]; /* LEAF_MAX values of vsize bytes */
};

struct inner {
	struct node h;
	uint64_t keys[INNER_MAX - 1];
	struct node *kids[INNER_MAX];
};

struct idtree {
	struct node *root;
	size_t vsize, count, memory;
	int depth; /* inner levels above the leaves */
	struct leaf *spare_leaf;
	struct inner *spare_inner[MAX_DEPTH + 1];
	int n_spare;
};

#define VAL(t, l, i) ((l)->vals + (size_t)(i) * (t)->vsize)

static size_t leaf_size(const struct idtree *t)
{
	return sizeof(struct leaf) + LEAF_MAX * t->vsize;
}

static struct leaf *take_leaf(struct idtree *t)
{
	struct leaf *l = t->spare_leaf;

	t->spare_leaf = NULL;
	memset(l, 0, sizeof *l);
	l->h.leaf = true;
	t->memory += leaf_size(t);
	return l;
}

static struct inner *take_inner(struct idtree *t)
{
	struct inner *in = t->spare_inner[--t->n_spare];

	memset(in, 0, sizeof *in);
	t->memory += sizeof *in;
	return in;
}

static void drop_node(struct idtree *t, struct node *nd)
{
	t->memory -= nd->leaf ? leaf_size(t) : sizeof(struct inner);
	sh_free(nd);
}

/* Enough spares for the worst split: a leaf and one inner per level + 1. */
static int reserve(struct idtree *t)
{
	if (t->spare_leaf == NULL && (t->spare_leaf = sh_malloc(leaf_size(t))) == NULL)
		return SH_ENOMEM;
	while (t->n_spare < t->depth + 1) {
		struct inner *in = sh_malloc(sizeof *in);

		if (in == NULL)
			return SH_ENOMEM;
		t->spare_inner[t->n_spare++] = in;
	}
	return 0;
}

struct idtree *idtree_new(size_t vsize)
{
	struct idtree *t = sh_calloc(1, sizeof *t);

	if (t == NULL || vsize == 0 || vsize > IDTREE_MAX_VALUE) {
		sh_free(t);
		return NULL;
	}
	t->vsize = vsize;
	if (reserve(t) != 0) {
		idtree_free(t);
		return NULL;
	}
	t->root = &take_leaf(t)->h;
	return t;
}

static void free_node(struct node *nd)
{
	if (!nd->leaf)
		for (unsigned i = 0; i < nd->n; i++)
			free_node(((struct inner *)nd)->kids[i]);
	sh_free(nd);
}

void idtree_free(struct idtree *t)
{
	if (t == NULL)
		return;
	if (t->root != NULL)
		free_node(t->root);
	sh_free(t->spare_leaf);
	for (int i = 0; i < t->n_spare; i++)
		sh_free(t->spare_inner[i]);
	sh_free(t);
}

size_t idtree_count(const struct idtree *t)
{
	return t->count;
}

size_t idtree_memory(const struct idtree *t)
{
	return t->memory + sizeof *t;
}

/* ------------------------------------------------------------ search */

/* The first position whose key is >= key. */
static unsigned leaf_pos(const struct leaf *l, uint64_t key)
{
	unsigned lo = 0, hi = l->h.n;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;

		if (l->keys[mid] < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The child that may hold key: the number of separators <= key. */
static unsigned inner_pos(const struct inner *in, uint64_t key)
{
	unsigned lo = 0, hi = in->h.n - 1;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;

		if (in->keys[mid] <= key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct leaf *find_leaf(const struct idtree *t, uint64_t key)
{
	struct node *nd = t->root;

	while (!nd->leaf)
		nd = ((struct inner *)nd)->kids[inner_pos((struct inner *)nd, key)];
	return (struct leaf *)nd;
}

void *idtree_get(const struct idtree *t, uint64_t key)
{
	struct leaf *l = find_leaf(t, key);
	unsigned p = leaf_pos(l, key);

	return p < l->h.n && l->keys[p] == key ? VAL(t, l, p) : NULL;
}

void idtree_seek(const struct idtree *t, uint64_t from, struct idtree_iter *it)
{
	struct leaf *l = find_leaf(t, from);

	it->leaf = l;
	it->pos = leaf_pos(l, from);
	it->vsize = t->vsize;
}

bool idtree_next(struct idtree_iter *it, uint64_t *key, void **val)
{
	const struct leaf *l = it->leaf;

	while (l != NULL && it->pos >= l->h.n) {
		l = l->next;
		it->pos = 0;
	}
	it->leaf = l;
	if (l == NULL)
		return false;
	*key = l->keys[it->pos];
	*val = (void *)(uintptr_t)(l->vals + (size_t)it->pos * it->vsize);
	it->pos++;
	return true;
}

/* ------------------------------------------------------------ insertion */

struct split {
	uint64_t sep;
	struct node *right; /* NULL: no split */
};

/* Open a gap at p in leaf l and put key there. */
static void *leaf_open(struct idtree *t, struct leaf *l, unsigned p, uint64_t key)
{
	memmove(&l->keys[p + 1], &l->keys[p], (l->h.n - p) * sizeof *l->keys);
	memmove(VAL(t, l, p + 1), VAL(t, l, p), (l->h.n - p) * t->vsize);
	l->keys[p] = key;
	memset(VAL(t, l, p), 0, t->vsize);
	l->h.n++;
	t->count++;
	return VAL(t, l, p);
}

static void *leaf_insert(struct idtree *t, struct leaf *l, uint64_t key, bool *existed,
			 struct split *sp)
{
	unsigned p = leaf_pos(l, key), half = LEAF_MAX / 2;
	struct leaf *r;

	if (p < l->h.n && l->keys[p] == key) {
		*existed = true;
		return VAL(t, l, p);
	}
	*existed = false;
	if (l->h.n < LEAF_MAX)
		return leaf_open(t, l, p, key);
	r = take_leaf(t);
	r->h.n = LEAF_MAX - half;
	memcpy(r->keys, &l->keys[half], r->h.n * sizeof *r->keys);
	memcpy(r->vals, VAL(t, l, half), r->h.n * t->vsize);
	l->h.n = half;
	r->next = l->next;
	l->next = r;
	sp->sep = r->keys[0];
	sp->right = &r->h;
	return p > half ? leaf_open(t, r, p - half, key) : leaf_open(t, l, p, key);
}

/* Put (sep, right) after child i of in, splitting in when full. */
static void inner_add(struct idtree *t, struct inner *in, unsigned i, const struct split *c,
		      struct split *sp)
{
	uint64_t keys[INNER_MAX];
	struct node *kids[INNER_MAX + 1];
	unsigned n = in->h.n, left = (INNER_MAX + 1) / 2;
	struct inner *r;

	if (n < INNER_MAX) {
		memmove(&in->keys[i + 1], &in->keys[i], (n - 1 - i) * sizeof *in->keys);
		memmove(&in->kids[i + 2], &in->kids[i + 1], (n - 1 - i) * sizeof *in->kids);
		in->keys[i] = c->sep;
		in->kids[i + 1] = c->right;
		in->h.n++;
		return;
	}
	memcpy(keys, in->keys, i * sizeof *keys);
	keys[i] = c->sep;
	memcpy(&keys[i + 1], &in->keys[i], (n - 1 - i) * sizeof *keys);
	memcpy(kids, in->kids, (i + 1) * sizeof *kids);
	kids[i + 1] = c->right;
	memcpy(&kids[i + 2], &in->kids[i + 1], (n - 1 - i) * sizeof *kids);
	r = take_inner(t);
	in->h.n = left;
	memcpy(in->keys, keys, (left - 1) * sizeof *keys);
	memcpy(in->kids, kids, left * sizeof *kids);
	r->h.n = n + 1 - left;
	memcpy(r->keys, &keys[left], (r->h.n - 1) * sizeof *keys);
	memcpy(r->kids, &kids[left], r->h.n * sizeof *kids);
	sp->sep = keys[left - 1];
	sp->right = &r->h;
}

static void *node_insert(struct idtree *t, struct node *nd, uint64_t key, bool *existed,
			 struct split *sp)
{
	struct inner *in = (struct inner *)nd;
	struct split c = {0, NULL};
	unsigned i;
	void *val;

	sp->right = NULL;
	if (nd->leaf)
		return leaf_insert(t, (struct leaf *)nd, key, existed, sp);
	i = inner_pos(in, key);
	val = node_insert(t, in->kids[i], key, existed, &c);
	if (c.right != NULL)
		inner_add(t, in, i, &c, sp);
	return val;
}

int idtree_put(struct idtree *t, uint64_t key, void **val, bool *existed)
{
	struct split sp;
	struct inner *root;

	if (reserve(t) != 0)
		return SH_ENOMEM;
	*val = node_insert(t, t->root, key, existed, &sp);
	if (sp.right != NULL) {
		root = take_inner(t);
		root->h.n = 2;
		root->keys[0] = sp.sep;
		root->kids[0] = t->root;
		root->kids[1] = sp.right;
		t->root = &root->h;
		t->depth++;
	}
	return 0;
}

/* ------------------------------------------------------------ deletion */

static unsigned min_fill(const struct node *nd)
{
	return nd->leaf ? LEAF_MAX / 2 : INNER_MAX / 2;
}

static unsigned max_fill(const struct node *nd)
{
	return nd->leaf ? LEAF_MAX : INNER_MAX;
}

/* Drop separator j and child j + 1 of in. */
static void inner_remove(struct inner *in, unsigned j)
{
	memmove(&in->keys[j], &in->keys[j + 1], (in->h.n - 2 - j) * sizeof *in->keys);
	memmove(&in->kids[j + 1], &in->kids[j + 2], (in->h.n - 2 - j) * sizeof *in->kids);
	in->h.n--;
}

/* Merge child j + 1 of in into child j. */
static void merge(struct idtree *t, struct inner *in, unsigned j)
{
	struct node *a = in->kids[j], *b = in->kids[j + 1];

	if (a->leaf) {
		struct leaf *l = (struct leaf *)a, *r = (struct leaf *)b;

		memcpy(&l->keys[l->h.n], r->keys, r->h.n * sizeof *r->keys);
		memcpy(VAL(t, l, l->h.n), r->vals, r->h.n * t->vsize);
		l->next = r->next;
	} else {
		struct inner *l = (struct inner *)a, *r = (struct inner *)b;

		l->keys[l->h.n - 1] = in->keys[j];
		memcpy(&l->keys[l->h.n], r->keys, (r->h.n - 1) * sizeof *r->keys);
		memcpy(&l->kids[l->h.n], r->kids, r->h.n * sizeof *r->kids);
	}
	a->n += b->n;
	drop_node(t, b);
	inner_remove(in, j);
}

/* Move the last entry of child i - 1 to the front of child i. */
static void borrow_left(struct idtree *t, struct inner *in, unsigned i)
{
	struct node *a = in->kids[i - 1], *c = in->kids[i];

	if (c->leaf) {
		struct leaf *l = (struct leaf *)a, *x = (struct leaf *)c;

		memmove(&x->keys[1], x->keys, x->h.n * sizeof *x->keys);
		memmove(VAL(t, x, 1), x->vals, x->h.n * t->vsize);
		x->keys[0] = l->keys[l->h.n - 1];
		memcpy(x->vals, VAL(t, l, l->h.n - 1), t->vsize);
		in->keys[i - 1] = x->keys[0];
	} else {
		struct inner *l = (struct inner *)a, *x = (struct inner *)c;

		memmove(&x->keys[1], x->keys, (x->h.n - 1) * sizeof *x->keys);
		memmove(&x->kids[1], x->kids, x->h.n * sizeof *x->kids);
		x->kids[0] = l->kids[l->h.n - 1];
		x->keys[0] = in->keys[i - 1];
		in->keys[i - 1] = l->keys[l->h.n - 2];
	}
	a->n--;
	c->n++;
}

/* Move the first entry of child i + 1 to the end of child i. */
static void borrow_right(struct idtree *t, struct inner *in, unsigned i)
{
	struct node *c = in->kids[i], *b = in->kids[i + 1];

	if (c->leaf) {
		struct leaf *x = (struct leaf *)c, *r = (struct leaf *)b;

		x->keys[x->h.n] = r->keys[0];
		memcpy(VAL(t, x, x->h.n), r->vals, t->vsize);
		memmove(r->keys, &r->keys[1], (r->h.n - 1) * sizeof *r->keys);
		memmove(r->vals, VAL(t, r, 1), (r->h.n - 1) * t->vsize);
		in->keys[i] = r->keys[0];
	} else {
		struct inner *x = (struct inner *)c, *r = (struct inner *)b;

		x->keys[x->h.n - 1] = in->keys[i];
		x->kids[x->h.n] = r->kids[0];
		in->keys[i] = r->keys[0];
		memmove(r->keys, &r->keys[1], (r->h.n - 2) * sizeof *r->keys);
		memmove(r->kids, &r->kids[1], (r->h.n - 1) * sizeof *r->kids);
	}
	c->n++;
	b->n--;
}

/* Child i of in fell below half: merge it with a sibling, or borrow. */
static void rebalance(struct idtree *t, struct inner *in, unsigned i)
{
	struct node *c = in->kids[i];

	if (i > 0 && in->kids[i - 1]->n + c->n <= max_fill(c))
		merge(t, in, i - 1);
	else if (i + 1 < in->h.n && c->n + in->kids[i + 1]->n <= max_fill(c))
		merge(t, in, i);
	else if (i > 0)
		borrow_left(t, in, i);
	else
		borrow_right(t, in, i);
}

static bool node_del(struct idtree *t, struct node *nd, uint64_t key, void *old)
{
	struct inner *in = (struct inner *)nd;
	unsigned i;

	if (nd->leaf) {
		struct leaf *l = (struct leaf *)nd;
		unsigned p = leaf_pos(l, key);

		if (p == l->h.n || l->keys[p] != key)
			return false;
		if (old != NULL)
			memcpy(old, VAL(t, l, p), t->vsize);
		memmove(&l->keys[p], &l->keys[p + 1], (l->h.n - p - 1) * sizeof *l->keys);
		memmove(VAL(t, l, p), VAL(t, l, p + 1), (l->h.n - p - 1) * t->vsize);
		l->h.n--;
		t->count--;
		return true;
	}
	i = inner_pos(in, key);
	if (!node_del(t, in->kids[i], key, old))
		return false;
	if (in->kids[i]->n < min_fill(in->kids[i]))
		rebalance(t, in, i);
	return true;
}

bool idtree_del(struct idtree *t, uint64_t key, void *old)
{
	struct node *r = t->root;

	if (!node_del(t, r, key, old))
		return false;
	if (!r->leaf && r->n == 1) {
		t->root = ((struct inner *)r)->kids[0];
		drop_node(t, r);
		t->depth--;
	}
	return true;
}

/* ------------------------------------------------------------ checking */

struct check {
	const struct idtree *t;
	const struct leaf *prev_leaf; /* the leaf chain, met in order */
	size_t count;
	bool have_last;
	uint64_t last;
};

static int bad(const char *what)
{
	fprintf(stderr, "idtree: %s\n", what);
	return -1;
}

/* Keys of nd must lie in [lo, hi) (hi_open: no upper bound). */
static int check_node(struct check *c, const struct node *nd, int depth, uint64_t lo, uint64_t hi,
		      bool hi_open, bool root)
{
	if (!root && nd->n < min_fill(nd))
		return bad("a node under half full");
	if (nd->n > max_fill(nd) || (nd->leaf != (depth == 0)))
		return bad("a node over full, or a leaf at the wrong depth");
	if (nd->leaf) {
		const struct leaf *l = (const struct leaf *)nd;

		if (c->prev_leaf != NULL && c->prev_leaf->next != l)
			return bad("the leaf chain skips a leaf");
		c->prev_leaf = l;
		for (unsigned i = 0; i < l->h.n; i++) {
			if ((c->have_last && l->keys[i] <= c->last) || l->keys[i] < lo ||
			    (!hi_open && l->keys[i] >= hi))
				return bad("keys out of order or outside their separators");
			c->last = l->keys[i];
			c->have_last = true;
		}
		c->count += l->h.n;
		return 0;
	}
	const struct inner *in = (const struct inner *)nd;

	if (nd->n < 2)
		return bad("an inner node with one child");
	for (unsigned i = 0; i < in->h.n; i++) {
		uint64_t a = i == 0 ? lo : in->keys[i - 1];
		bool open = i + 1 == in->h.n ? hi_open : false;
		uint64_t b = i + 1 == in->h.n ? hi : in->keys[i];

		if (check_node(c, in->kids[i], depth - 1, a, b, open, false) != 0)
			return -1;
	}
	return 0;
}

int idtree_check(const struct idtree *t)
{
	struct check c = {t, NULL, 0, false, 0};

	if (check_node(&c, t->root, t->depth, 0, 0, true, true) != 0)
		return -1;
	if (c.prev_leaf != NULL && c.prev_leaf->next != NULL)
		return bad("the last leaf has a successor");
	if (c.count != t->count)
		return bad("the count differs from the keys");
	return 0;
}
