/*
 * fresh: a collection's fresh set (doc/write-path.md) — the points applied
 * but not yet in its HNSW graph, and the deletions the graph has not seen
 * yet.  An entry is a vector (the point's newest version) or a tombstone (the point was deleted;
 * the graph may still hold an older version).  Searches scan the vectors exactly and hide every id
 * with an entry from the graph's results.
 *
 * Vectors are stored prepared as the graph stores them (hnsw_prepare: for
 * cosine normalized), so that a point scores the same, bit for bit,
 * fresh or indexed.
 *
 * Each entry carries a sequence number, new at every fresh_put: the indexer
 * copies an entry, writes it into the graph, and removes it only when its
 * sequence number is still the same (fresh_remove_if), so a newer version
 * applied meanwhile is never lost.
 *
 * Threads.  None inside: the collection guards a fresh set with its own
 * lock (collection_impl.h).  Ownership: vectors are copied in.
 */
#ifndef SHOAL_STORAGE_FRESH_H
#define SHOAL_STORAGE_FRESH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "index/distance.h"
#include "index/hnsw.h"

#define FRESH_NONE UINT32_MAX

struct fresh;

/* What fresh_get and fresh_take copy out of an entry. */
struct fresh_entry {
	uint64_t id;
	uint64_t seq;
	uint64_t added_ms;
	bool tomb;
};

struct fresh *fresh_new(uint32_t dim, enum sh_metric metric);
void fresh_free(struct fresh *f);

/* Put id's newest version: vec (dim floats, prepared) or NULL for a
 * tombstone; it
 * replaces any entry id had.  now_ms stamps it (the oldest entry's age is
 * a metric).  SH_ENOMEM leaves the set as it was. */
int fresh_put(struct fresh *f, uint64_t id, const float *vec, uint64_t now_ms);
/* id's entry: its position (FRESH_NONE when it has none). */
uint32_t fresh_find(const struct fresh *f, uint64_t id);
/* The entry at position i (< fresh_count) and, unless NULL, its vector
 * into vec (dim floats; nothing for a tombstone). */
void fresh_at(const struct fresh *f, uint32_t i, struct fresh_entry *e, float *vec);
/* Copy up to max entries (and their vectors, dim floats each) into e and
 * vecs, from where the previous call stopped, round the set: every entry
 * is taken within about two rounds however the set changes (the indexer's
 * order; the caller must serialize calls).  Returns how many. */
size_t fresh_take(struct fresh *f, size_t max, struct fresh_entry *e, float *vecs);
/* Move fresh_take's cursor n entries back: those of the last batch that
 * were not indexed (a step cut short) come first in the next. */
void fresh_rewind(struct fresh *f, size_t n);
/* The indexer wrote id's entry (if its sequence number is still seq) into
 * the graph: searches of generation gen or later (the collection's
 * search_gen) count it as indexed — the graph shows it, the scan skips it;
 * earlier searches still count it as fresh.  A put clears the mark. */
bool fresh_mark(struct fresh *f, uint64_t id, uint64_t seq, uint64_t gen);
/* Does id's entry hide the graph's point from a search of generation gen
 * (an entry not indexed for it: a newer version, a tombstone)? */
bool fresh_hides(const struct fresh *f, uint64_t id, uint64_t gen);
/* Remove id's entry if its sequence number is still seq. */
bool fresh_remove_if(struct fresh *f, uint64_t id, uint64_t seq);

size_t fresh_count(const struct fresh *f);      /* entries, tombstones included */
size_t fresh_tombstones(const struct fresh *f); /* of which tombstones */
size_t fresh_bytes(const struct fresh *f);      /* memory held */
size_t fresh_used_bytes(const struct fresh *f); /* of which the entries use */
/* added_ms of the oldest entry, 0 when empty (scans the set). */
uint64_t fresh_oldest_ms(const struct fresh *f);

/* A search of the fresh set in chunks, so that its caller may let go of
 * the set's lock between them: fresh_query_new, fresh_query_scan until it
 * returns 0, fresh_query_finish, fresh_query_free.  Entries may change
 * meanwhile (apply's puts only
 * append or overwrite in place).  Removals (fresh_remove_if, of entries
 * marked indexed for the search: fresh_mark) may happen meanwhile: the
 * scan goes down from the end, so an entry moved into a hole is met once
 * or twice (counted once), never missed.
 *
 * The k nearest vectors to query (dim floats, checked with
 * hnsw_check_vector, not prepared: prepared here as the graph prepares
 * queries) that filter accepts (NULL: all), nearest first; distances as
 * hnsw_search's, ties to the smaller id.  exact: every float distance;
 * else, over 4,096 entries, the 4k + 64 nearest by int8 codes (a quarter
 * of the memory traffic) re-scored in float, which may miss a point the
 * codes rank too far (doc/write-path.md).  The filter is asked during the
 * scans, only for entries that would enter the nearest. */
struct fresh_query;
/* gen: the search's generation (fresh_mark). */
int fresh_query_new(const struct fresh *f, const float *query, size_t k, bool exact, uint64_t gen,
		    struct fresh_query **out);
/* The max entries below end (clipped to the set's size); returns where the
 * next call ends (0: done).  Start with end UINT32_MAX. */
uint32_t fresh_query_scan(struct fresh_query *fq, const struct fresh *f, uint32_t end, uint32_t max,
			  hnsw_filter_fn filter, void *arg);
/* The k nearest into out (room for k), their number into *n. */
void fresh_query_finish(struct fresh_query *fq, const struct fresh *f, struct hnsw_result *out,
			size_t *n);
void fresh_query_free(struct fresh_query *fq);
/* All of it at once.  0, or SH_ENOMEM. */
int fresh_search(const struct fresh *f, const float *query, size_t k, bool exact,
		 hnsw_filter_fn filter, void *arg, struct hnsw_result *out, size_t *n);

#endif
