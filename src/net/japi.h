/*
 * japi: the JSON forms of the API's messages (doc/protocol.md, "REST" and
 * "Filters"), shared by the REST server and libshoal.
 *
 * The parsers build protobuf messages inside a caller's arena (everything
 * they return lives and dies with it) and fail with SH_EINVAL and the JSON
 * path of the offending part ("filter.must[0].range.gt: not a number").
 * Pure functions; thread-safe.
 */
#ifndef SHOAL_NET_JAPI_H
#define SHOAL_NET_JAPI_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "proto/shoal.pb-c.h"
#include "util/arena.h"
#include "util/err.h"

/* A Filter object (see doc/protocol.md); where names it in errors. */
int japi_filter(const json_t *j, struct arena *a, const char *where, Shoal__Filter **out,
		struct sh_err *err);
/* Filter from JSON text. */
int japi_filter_text(const char *text, size_t len, struct arena *a, Shoal__Filter **out,
		     struct sh_err *err);
/* An id: a non-negative integer, a string of decimal digits, or a UUID
 * (mapped by japi_uuid_id). */
int japi_id(const json_t *j, const char *where, uint64_t *out, struct sh_err *err);
/* The same; a UUID's canonical form (JAPI_UUID_LEN characters, lower case,
 * hyphenated) also into uuid when not NULL ("" for other ids). */
int japi_point_id(const json_t *j, const char *where, uint64_t *out, char *uuid,
		  struct sh_err *err);

/* UUIDs (doc/qdrant.md, "Point ids").  A UUID names the point whose id is
 * japi_uuid_id() of its 16 bytes: FNV-1a 64 of the bytes, then
 * MurmurHash3's fmix64, with the top bit set — ids from JAPI_UUID_SPACE on
 * are the UUIDs' (JSON integers end below it).  The form stays fixed: ids
 * are stored. */
#define JAPI_UUID_LEN   36
#define JAPI_UUID_SPACE (UINT64_C(1) << 63)
/* Hyphenated, 32 hex digits, "urn:uuid:..." or "{...}"; 0 or -1. */
int japi_uuid_parse(const char *s, unsigned char out[16]);
void japi_uuid_format(const unsigned char u[16], char out[JAPI_UUID_LEN + 1]);
uint64_t japi_uuid_id(const unsigned char u[16]);
/* An array of numbers as floats (values are checked by the storage). */
int japi_vector(const json_t *j, struct arena *a, const char *where, float **out, size_t *n,
		struct sh_err *err);
/* Every key of object o must be one of names (NULL-terminated); where
 * names o in the error. */
int japi_only_keys(const json_t *o, const char *const *names, const char *where,
		   struct sh_err *err);
/* Format the path of a part for an error message ("filter.must[0]"); cut
 * when longer than n. */
void japi_path(char *w, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* An id as JSON: a number up to 2^53, a string of digits above. */
json_t *japi_id_json(uint64_t id);

#endif
