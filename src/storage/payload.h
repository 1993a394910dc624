/*
 * payload: the payload changes of a SetPayload entry (proto/log.proto;
 * doc/storage-format.md, "Entries"): set (merge), overwrite, delete keys,
 * clear — Qdrant's four payload operations, applied to one point's
 * canonical payload text.
 *
 * Pure functions of their inputs (the same on every replica); thread-safe.
 * Outputs are caller-owned (sh_free).
 */
#ifndef SHOAL_STORAGE_PAYLOAD_H
#define SHOAL_STORAGE_PAYLOAD_H

#include <stddef.h>

#include "util/err.h"

enum payload_op {
	PAYLOAD_SET = 0,
	PAYLOAD_OVERWRITE = 1,
	PAYLOAD_DELETE_KEYS = 2,
	PAYLOAD_CLEAR = 3,
};
#define PAYLOAD_OP_MAX PAYLOAD_CLEAR

/* What to do; payload is canonical JSON text of an object (SET, OVERWRITE). */
struct payload_change {
	enum payload_op op;
	const char *payload;
	size_t payload_len;
	const char *key;         /* SET: dotted path of the object to merge into; NULL or "": top */
	const char *const *keys; /* DELETE_KEYS: dotted paths */
	size_t n_keys;
	const char *const *keep; /* OVERWRITE, CLEAR: top-level keys kept */
	size_t n_keep;
};

/* The change on a point whose payload is old (NULL or len 0: none): the
 * new canonical text in *out (NULL, *out_len 0: no payload).  SH_ETOOBIG
 * when the result is over limit bytes; SH_ENOMEM. */
int payload_apply(const struct payload_change *ch, const char *old, size_t old_len, size_t limit,
		  char **out, size_t *out_len, struct sh_err *err);

#endif
