/*
 * collection_impl: the collection's fields, shared by collection.c (life,
 * checks, writes, reads) and collection_io.c (snapshots).  Nothing outside
 * src/storage/collection*.c includes it.
 */
#ifndef SHOAL_STORAGE_COLLECTION_IMPL_H
#define SHOAL_STORAGE_COLLECTION_IMPL_H

#include <pthread.h>
#include <stdatomic.h>

#include "storage/collection.h"
#include "storage/idtree.h"

/* A payload: its canonical JSON text. */
struct blob {
	uint32_t len;
	char data[];
};

/* The id tree's value per point. */
struct pv {
	struct digest hash;
	struct blob *payload; /* NULL: none */
};

struct coll {
	struct coll_params p;
	_Atomic unsigned refs;
	struct hnsw *h;
	pthread_rwlock_t lock; /* tree, payloads, digest */
	struct idtree *tree;   /* id -> struct pv */
	struct digest digest;  /* collection hash + point hashes */
	size_t payload_bytes;
};

/* An empty collection around index h (taken over; NULL: create one). */
int coll_make(const struct coll_params *p, struct hnsw *h, struct coll **out, struct sh_err *err);
struct blob *blob_new(const char *data, size_t len);

#endif
