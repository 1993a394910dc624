/*
 * entry: log entries between their C form and their protobuf bodies
 * (proto/log.proto; doc/storage-format.md, "Entries").
 *
 * A struct entry is what a write asks for; entry_encode() appends it as a
 * record to a batch.  entry_decode() turns a record back into a struct
 * entry whose pointers refer to a decoded message that entry_release()
 * frees.  Pure functions of their inputs; thread-safe.
 */
#ifndef SHOAL_STORAGE_ENTRY_H
#define SHOAL_STORAGE_ENTRY_H

#include <stddef.h>
#include <stdint.h>

#include "storage/collection.h"
#include "storage/payload.h"
#include "storage/session.h"
#include "storage/wal.h"
#include "util/err.h"

struct entry_voter {
	uint64_t node_id;
	const char *address;
};

struct entry {
	enum wal_type type;
	const char *collection;           /* DROP, UPSERT, DELETE */
	struct coll_params params;        /* CREATE */
	const struct coll_point *points;  /* UPSERT: n points */
	const uint64_t *ids;              /* DELETE, SET_PAYLOAD: n ids */
	struct payload_change change;     /* SET_PAYLOAD */
	const struct entry_voter *voters; /* VOTERS: n voters */
	size_t n;
	struct session_req session; /* CREATE, DROP, UPSERT, DELETE, SET_PAYLOAD */
	void *decoded;              /* entry_decode: the message and arrays behind the pointers */
};

/* Append e as record (term, index) to b. */
int entry_encode(const struct entry *e, struct wal_buf *b, uint64_t term, uint64_t index,
		 struct sh_err *err);
/* Decode record r into e (SH_EINVAL when the body does not decode,
 * SH_ENOMEM — never SH_EINVAL — when memory ran out).  After success free
 * e with entry_release; after a failure nothing is held (entry_release is
 * harmless then). */
int entry_decode(const struct wal_rec *r, struct entry *e, struct sh_err *err);
void entry_release(struct entry *e);

const char *entry_type_name(enum wal_type t);

#endif
