/*
 * metrics: see metrics.h.  Bucket bounds grow by about x2.5 from 100 us to
 * 10 s; the histogram is stored per bucket and made cumulative when
 * rendered, as Prometheus wants.
 */
#include "build.h"

#include "net/metrics.h"

#include <inttypes.h>

static const double bounds_s[METRICS_BUCKETS - 1] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025,
						     0.005,  0.01,    0.025,  0.05,  0.1,
						     0.25,   0.5,     1,      2.5,   10};

static const char *const api_names[2] = {"binary", "rest"};

void metrics_record(struct metrics *m, int api, unsigned method, int status, uint64_t ns)
{
	double s = (double)ns / 1e9;
	int b = 0;

	if (method >= METRICS_METHODS)
		method = 0;
	if (status < 0 || status >= METRICS_STATUSES)
		status = METRICS_STATUSES - 1;
	while (b < METRICS_BUCKETS - 1 && s > bounds_s[b])
		b++;
	m->requests[api][method][status]++;
	m->buckets[api][method][b]++;
	m->sum_s[api][method] += s;
}

static void render_hist(const struct metrics *m, int api, unsigned method, const char *name,
			struct evbuffer *out)
{
	uint64_t cum = 0;

	for (int b = 0; b < METRICS_BUCKETS; b++) {
		cum += m->buckets[api][method][b];
		if (b < METRICS_BUCKETS - 1)
			evbuffer_add_printf(out,
					    "shoal_request_duration_seconds_bucket{api=\"%s\","
					    "method=\"%s\",le=\"%g\"} %" PRIu64 "\n",
					    api_names[api], name, bounds_s[b], cum);
		else
			evbuffer_add_printf(out,
					    "shoal_request_duration_seconds_bucket{api=\"%s\","
					    "method=\"%s\",le=\"+Inf\"} %" PRIu64 "\n",
					    api_names[api], name, cum);
	}
	evbuffer_add_printf(
		out,
		"shoal_request_duration_seconds_sum{api=\"%s\",method=\"%s\"} %.6f\n"
		"shoal_request_duration_seconds_count{api=\"%s\",method=\"%s\"} %" PRIu64 "\n",
		api_names[api], name, m->sum_s[api][method], api_names[api], name, cum);
}

void metrics_render(const struct metrics *m, const char *(*method_name)(uint16_t),
		    const char *(*status_name)(int), struct evbuffer *out)
{
	evbuffer_add_printf(out, "# HELP shoal_requests_total Requests answered.\n"
				 "# TYPE shoal_requests_total counter\n");
	for (int a = 0; a < 2; a++)
		for (unsigned me = 1; me < METRICS_METHODS; me++)
			for (int s = 0; s < METRICS_STATUSES; s++)
				if (m->requests[a][me][s] > 0)
					evbuffer_add_printf(
						out,
						"shoal_requests_total{api=\"%s\",method=\"%s\","
						"status=\"%s\"} %" PRIu64 "\n",
						api_names[a], method_name((uint16_t)me),
						status_name(s), m->requests[a][me][s]);
	evbuffer_add_printf(out,
			    "# HELP shoal_request_duration_seconds Time from arrival to reply.\n"
			    "# TYPE shoal_request_duration_seconds histogram\n");
	for (int a = 0; a < 2; a++)
		for (unsigned me = 1; me < METRICS_METHODS; me++) {
			uint64_t n = 0;

			for (int b = 0; b < METRICS_BUCKETS; b++)
				n += m->buckets[a][me][b];
			if (n > 0) /* methods never called: no series */
				render_hist(m, a, me, method_name((uint16_t)me), out);
		}
	evbuffer_add_printf(out,
			    "# HELP shoal_connections Open client connections.\n"
			    "# TYPE shoal_connections gauge\n"
			    "shoal_connections{api=\"binary\"} %" PRId64 "\n"
			    "# HELP shoal_connections_rejected_total Connections closed at accept "
			    "(limits.max_connections).\n"
			    "# TYPE shoal_connections_rejected_total counter\n"
			    "shoal_connections_rejected_total %" PRIu64 "\n",
			    m->connections[METRICS_BINARY], m->rejected_connections);
}
