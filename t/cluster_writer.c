/*
 * cluster_writer: the client side of t/cluster_raft.sh.
 *
 *   cluster_writer write ADDRS COLL ACKFILE [OPTIONS]
 *       Upsert one point per request (dim 3) at ack quorum, request k to
 *       address k mod n of the comma-separated ADDRS (one handle per
 *       address, no retries, so that followers get their share and forward
 *       it), ids FIRST, FIRST+1, ... (a failed id is not reused), until the
 *       stop file exists or --max-seconds pass.  Every acknowledged id is
 *       appended to ACKFILE ("ID NODE" per line) as soon as its reply
 *       arrives.  At the end one summary line on stdout:
 *           acked A failed F ids FIRST..LAST max_gap_ms G max_ms M
 *       G is the longest time without an acknowledgement (the failover as
 *       the client sees it), M the slowest acknowledged request.  Failures
 *       and requests slower than 500 ms go to stderr, one line each.
 *   cluster_writer check ADDR COLL IDFILE [--consistency strong|eventual]
 *       Get every id of IDFILE (first number of each line) from ADDR alone,
 *       200 per request (timeout 10 s); print the missing ids (up to 20) and
 *           checked N missing M
 *       Exit 0 when none is missing, 1 when some are, 2 on an error.
 *
 * Options: --first-id N (1), --pause-ms N (between writes, 2),
 * --timeout MS (per request, 3000), --stop FILE, --max-seconds N (150),
 * --ack leader|quorum|all (quorum).
 */
#include "build.h"

#include "shoal.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_NODES 16
#define DIM       3
#define BATCH     200

struct opts {
	uint64_t first_id;
	int pause_ms, timeout_ms, max_seconds;
	const char *stop;
	enum shoal_consistency consistency;
	enum shoal_ack ack;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static int usage(void)
{
	fprintf(stderr, "usage: cluster_writer write ADDRS COLL ACKFILE [--first-id N] "
			"[--pause-ms N] [--timeout MS] [--stop FILE] [--max-seconds N]\n"
			"       cluster_writer check ADDR COLL IDFILE [--consistency L]\n");
	return 2;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	o->first_id = 1;
	o->pause_ms = 2;
	o->timeout_ms = 3000;
	o->max_seconds = 150;
	o->stop = NULL;
	o->consistency = SHOAL_CONSISTENCY_STRONG;
	o->ack = SHOAL_ACK_QUORUM;
	for (int i = 0; i < argc; i += 2) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL)
			return -1;
		if (strcmp(a, "--first-id") == 0)
			o->first_id = strtoull(v, NULL, 10);
		else if (strcmp(a, "--pause-ms") == 0)
			o->pause_ms = atoi(v);
		else if (strcmp(a, "--timeout") == 0)
			o->timeout_ms = atoi(v);
		else if (strcmp(a, "--max-seconds") == 0)
			o->max_seconds = atoi(v);
		else if (strcmp(a, "--stop") == 0)
			o->stop = v;
		else if (strcmp(a, "--consistency") == 0 && strcmp(v, "strong") == 0)
			o->consistency = SHOAL_CONSISTENCY_STRONG;
		else if (strcmp(a, "--consistency") == 0 && strcmp(v, "eventual") == 0)
			o->consistency = SHOAL_CONSISTENCY_EVENTUAL;
		else if (strcmp(a, "--ack") == 0 && strcmp(v, "leader") == 0)
			o->ack = SHOAL_ACK_LEADER;
		else if (strcmp(a, "--ack") == 0 && strcmp(v, "all") == 0)
			o->ack = SHOAL_ACK_ALL;
		else if (strcmp(a, "--ack") == 0 && strcmp(v, "quorum") == 0)
			o->ack = SHOAL_ACK_QUORUM;
		else
			return -1;
	}
	return 0;
}

static int run_write(const char *addrs, const char *coll, const char *ackfile, const struct opts *o)
{
	shoal *h[MAX_NODES];
	char *list = strdup(addrs), *save = NULL;
	size_t n = 0;
	FILE *acks = fopen(ackfile, "a");
	struct shoal_options so;
	uint64_t id = o->first_id, acked = 0, failed = 0;
	int64_t start = now_ms(), last_ack = start, max_gap = 0, max_ms = 0;

	if (list == NULL || acks == NULL) {
		perror("cluster_writer");
		return 2;
	}
	shoal_options_init(&so);
	so.timeout_ms = o->timeout_ms;
	so.connect_timeout_ms = 500;
	so.retries = 0;
	so.no_follow = true; /* followers forward: the forwarding path is under test too */
	so.ack = o->ack;
	for (char *a = strtok_r(list, ",", &save); a != NULL && n < MAX_NODES;
	     a = strtok_r(NULL, ",", &save)) {
		/* A node that is down now is connected to on its first request. */
		shoal_open(a, &so, &h[n]);
		if (h[n] == NULL)
			return 2;
		n++;
	}
	if (n == 0)
		return usage();
	for (uint64_t k = 0;; k++, id++) {
		float v[DIM] = {(float)(id % 97), (float)(id % 89), (float)(id % 83)};
		struct shoal_point p = {id, v, DIM, NULL, 0};
		size_t node = k % n;
		int64_t t;
		int rv;

		if (o->stop != NULL && access(o->stop, F_OK) == 0)
			break;
		if (now_ms() - start > (int64_t)o->max_seconds * 1000)
			break;
		t = now_ms();
		rv = shoal_upsert(h[node], coll, &p, 1, NULL);
		if (rv == SHOAL_OK && now_ms() - t > max_ms)
			max_ms = now_ms() - t;
		if (now_ms() - t >= 500)
			fprintf(stderr, "%.3f id %" PRIu64 " node %zu: took %" PRId64 " ms (%s)\n",
				(double)(t - start) / 1000, id, node, now_ms() - t,
				shoal_status_name(rv));
		t = now_ms();
		if (rv == SHOAL_OK) {
			fprintf(acks, "%" PRIu64 " %zu\n", id, node);
			fflush(acks);
			acked++;
			if (t - last_ack > max_gap)
				max_gap = t - last_ack;
			last_ack = t;
		} else {
			failed++;
			fprintf(stderr, "%.3f id %" PRIu64 " node %zu: %s: %s\n",
				(double)(t - start) / 1000, id, node, shoal_status_name(rv),
				shoal_errmsg(h[node]));
			/* A node that refuses connections fails at once: do not spin. */
			sleep_ms(20);
		}
		if (o->pause_ms > 0)
			sleep_ms(o->pause_ms);
	}
	if (now_ms() - last_ack > max_gap)
		max_gap = now_ms() - last_ack;
	printf("acked %" PRIu64 " failed %" PRIu64 " ids %" PRIu64 "..%" PRIu64
	       " max_gap_ms %" PRId64 " max_ms %" PRId64 "\n",
	       acked, failed, o->first_id, id - 1, max_gap, max_ms);
	for (size_t i = 0; i < n; i++)
		shoal_close(h[i]);
	fclose(acks);
	free(list);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int run_check(const char *addr, const char *coll, const char *idfile, const struct opts *o)
{
	FILE *f = fopen(idfile, "r");
	uint64_t *ids = NULL, missing = 0;
	size_t n = 0, cap = 0;
	char line[128];
	struct shoal_options so;
	shoal *c;
	int rv;

	if (f == NULL) {
		perror(idfile);
		return 2;
	}
	while (fgets(line, sizeof line, f) != NULL) {
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			if ((ids = realloc(ids, cap * sizeof *ids)) == NULL)
				return 2;
		}
		if (line[0] >= '0' && line[0] <= '9')
			ids[n++] = strtoull(line, NULL, 10);
	}
	fclose(f);
	shoal_options_init(&so);
	so.timeout_ms = 10000;
	so.consistency = o->consistency;
	if ((rv = shoal_open(addr, &so, &c)) != SHOAL_OK) {
		fprintf(stderr, "cluster_writer: %s: %s\n", addr,
			c ? shoal_errmsg(c) : "no memory");
		return 2;
	}
	for (size_t i = 0; i < n; i += BATCH) {
		size_t m = n - i < BATCH ? n - i : BATCH;
		struct shoal_results r;
		uint64_t found[BATCH];
		size_t nf;

		if ((rv = shoal_get(c, coll, ids + i, m, 0, &r)) != SHOAL_OK) {
			fprintf(stderr, "cluster_writer: get from %s: %s: %s\n", addr,
				shoal_status_name(rv), shoal_errmsg(c));
			shoal_close(c);
			free(ids);
			return 2;
		}
		nf = r.n < BATCH ? r.n : BATCH; /* at most m: the points found among m ids */
		for (size_t j = 0; j < nf; j++)
			found[j] = r.v[j].id;
		qsort(found, nf, sizeof *found, cmp_u64);
		for (size_t j = 0; j < m; j++)
			if (bsearch(&ids[i + j], found, nf, sizeof *found, cmp_u64) == NULL) {
				if (missing < 20)
					printf("missing %" PRIu64 "\n", ids[i + j]);
				missing++;
			}
		shoal_results_free(&r);
	}
	printf("checked %zu missing %" PRIu64 "\n", n, missing);
	shoal_close(c);
	free(ids);
	return missing ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct opts o;

	signal(SIGPIPE, SIG_IGN);
	setvbuf(stderr, NULL, _IOLBF, 0);
	if (argc < 5 || parse_opts(argc - 5, argv + 5, &o) < 0)
		return usage();
	if (strcmp(argv[1], "write") == 0)
		return run_write(argv[2], argv[3], argv[4], &o);
	if (strcmp(argv[1], "check") == 0)
		return run_check(argv[2], argv[3], argv[4], &o);
	return usage();
}
