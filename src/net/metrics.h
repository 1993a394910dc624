/*
 * metrics: request counters and latency histograms per frontend, method
 * and status, rendered in Prometheus text format (doc/protocol.md,
 * "Metrics").  Updated and read on the loop thread only (every reply is
 * sent from there), so plain integers suffice.
 */
#ifndef SHOAL_NET_METRICS_H
#define SHOAL_NET_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>

#define METRICS_BINARY   0
#define METRICS_REST     1
#define METRICS_METHODS  17 /* method numbers 0..16 (KEYRING) */
#define METRICS_STATUSES 14 /* status codes 0..12 (SESSION_EXPIRED); 13: any other */
#define METRICS_BUCKETS  16

struct metrics {
	uint64_t requests[2][METRICS_METHODS][METRICS_STATUSES];
	uint64_t buckets[2][METRICS_METHODS][METRICS_BUCKETS]; /* not cumulative */
	double sum_s[2][METRICS_METHODS];
	int64_t connections[2];
	uint64_t rejected_connections;
};

void metrics_record(struct metrics *m, int api, unsigned method, int status, uint64_t ns);
/* Append the request metrics; method_name(i) names method i. */
void metrics_render(const struct metrics *m, const char *(*method_name)(uint16_t),
		    const char *(*status_name)(int), struct evbuffer *out);

#endif
