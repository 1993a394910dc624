/*
 * filter: payload conditions of searches, scrolls and counts
 * (doc/protocol.md, "Filters").
 *
 * filter_compile() checks a Filter message once per request and turns it
 * into an evaluator: key paths split at the dots, values typed, ranges as
 * two bounds.  filter_match() evaluates it on a parsed payload;
 * filter_match_text() parses canonical JSON text first (once per
 * candidate).  A compiled filter is immutable: any number of threads may
 * evaluate it at once.  filter_free() frees it (sh_free).
 */
#ifndef SHOAL_NET_FILTER_H
#define SHOAL_NET_FILTER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/shoal.pb-c.h"
#include "util/err.h"

#define FILTER_MAX_CONDITIONS 256
#define FILTER_MAX_DEPTH      8
#define FILTER_MAX_VALUES     1024
#define FILTER_MAX_KEY        256
#define FILTER_MAX_IDS        100000
#define FILTER_NO_ID          UINT64_MAX /* has_id matches no point */

struct filter;

/* NULL f (no filter) compiles to *out = NULL, which matches everything.
 * Errors are SH_EINVAL with the path of the offending part. */
int filter_compile(const Shoal__Filter *f, struct filter **out, struct sh_err *err);
void filter_free(struct filter *f);

/* Point id with its payload (NULL: it has none); filter_match* without
 * an id are for FILTER_NO_ID. */
bool filter_match_point(const struct filter *f, uint64_t id, const json_t *payload);
bool filter_match_point_text(const struct filter *f, uint64_t id, const char *text, size_t len);
bool filter_match(const struct filter *f, const json_t *payload);
bool filter_match_text(const struct filter *f, const char *text, size_t len);

#endif
