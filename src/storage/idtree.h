/*
 * idtree: an ordered map from uint64 keys to small fixed-size values — a
 * B+tree whose leaves hold keys and values inline and are chained in key
 * order.  A collection keeps one, keyed by point id, for get by id and for
 * scrolling in id order with a cursor; a point costs its key and value plus
 * the leaves' slack (about 1.4x when filled at random).
 *
 * Not thread-safe: the owner serializes writers against readers (the
 * collection's rwlock).  Pointers to values and iterators are valid until
 * the next change of the tree.
 */
#ifndef SHOAL_STORAGE_IDTREE_H
#define SHOAL_STORAGE_IDTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IDTREE_MAX_VALUE 64

struct idtree;

/* An empty tree of values of vsize bytes (1..IDTREE_MAX_VALUE); NULL when
 * out of memory. */
struct idtree *idtree_new(size_t vsize);
void idtree_free(struct idtree *t);

size_t idtree_count(const struct idtree *t);
/* Bytes of nodes held. */
size_t idtree_memory(const struct idtree *t);

/* The value stored under key, or NULL. */
void *idtree_get(const struct idtree *t, uint64_t key);
/* Find or add key: *val points to its value (left as it was when the key
 * existed, zeroed when new); *existed says which.  SH_ENOMEM leaves the
 * tree unchanged. */
int idtree_put(struct idtree *t, uint64_t key, void **val, bool *existed);
/* Remove key, copying its value to old (may be NULL); false if absent. */
bool idtree_del(struct idtree *t, uint64_t key, void *old);

/* Iteration in key order from the first key >= from. */
struct idtree_iter {
	const void *leaf;
	unsigned pos;
	size_t vsize;
};

void idtree_seek(const struct idtree *t, uint64_t from, struct idtree_iter *it);
/* The next key and a pointer to its value; false at the end. */
bool idtree_next(struct idtree_iter *it, uint64_t *key, void **val);

/* Check the structure (order, fill, links, count); for tests.  Returns 0 or
 * -1 and prints what is wrong to stderr. */
int idtree_check(const struct idtree *t);

#endif
