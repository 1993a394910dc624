/*
 * shoalctl_lag: `shoalctl bench --lag`, the searchable lag of acknowledged
 * writes on each replica (shoalctl_lag.c says how it is measured).
 */
#ifndef SHOAL_CLIENT_SHOALCTL_LAG_H
#define SHOAL_CLIENT_SHOALCTL_LAG_H

#include <stdbool.h>
#include <stdint.h>

#include "shoal.h"

struct lag;

/* Start one probe thread per address of addrs (comma-separated), reading
 * collection coll at `eventual`.  NULL when out of memory. */
struct lag *lag_start(const char *addrs, const struct shoal_options *o, const char *coll,
		      uint32_t dim);
/* An acknowledgement now: tok the connection's highest acknowledged token,
 * id and vec (dim floats, alive until lag_finish) a point of the request. */
void lag_ack(struct lag *l, struct shoal_token tok, uint64_t id, const float *vec);
/* Wait until every replica has applied every acknowledged write (at most
 * timeout_s), print each replica's lags, free l.  verify (only when every
 * write was acknowledged): then read every recorded point back from each
 * replica.  -1 if a probe failed, a point is missing or memory ran out. */
int lag_finish(struct lag *l, bool json, bool verify, double timeout_s);

#endif
