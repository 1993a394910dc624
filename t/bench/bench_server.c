/*
 * bench_server: the server benchmark (`make bench`; doc/benchmarks.md,
 * "Server"), all in one run so that the figures are compared as ratios on
 * the same (shared, noisy) machine:
 *
 *   1. search through the network against the in-process index: the same
 *      data (Fashion-MNIST, bench_data.h), the same HNSW parameters (the
 *      collection defaults m 16, ef_construction 200) and the same ef; the
 *      in-process index is built here and searched by `threads` threads;
 *      shoald (started here on a free port) gets the data through libshoal
 *      and is searched by `conns` connections with `depth` requests in
 *      flight each.  Both report QPS and recall@10.
 *   2. the no-op request: shoal's ping against `redis-benchmark -t
 *      ping_mbulk` on a redis-server started here, with the same number of
 *      connections, without and with pipelining.
 *
 * Figures, not assertions: nothing here fails on speed.
 */
#include "build.h"

#include "bench_data.h"

#include "../srv.h"
#include "index/hnsw.h"
#include "shoal.h"
#include "util/alloc.h"

#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>

struct opts {
	size_t n, nq, ef, conns, depth, threads, pings, redis_pipeline;
	char cache[512];
	bool no_search, no_ping;
};

/* Rounds of each measurement; they alternate between the systems compared
 * and the medians are reported, so that a disturbance of the shared
 * machine hits both sides alike. */
#define PING_ROUNDS   5
#define SEARCH_ROUNDS 5

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median_of(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return v[n / 2];
}

static double median(double *v)
{
	return median_of(v, PING_ROUNDS);
}

/* ------------------------------------------------------------ in process */

struct ijob {
	struct hnsw *h;
	const struct dataset *d;
	size_t ef;
	uint64_t *found;
	_Atomic size_t next;
};

static void *isearch(void *arg)
{
	struct ijob *j = arg;
	struct hnsw_result res[10];
	size_t i, n;

	while ((i = atomic_fetch_add(&j->next, 1)) < j->d->nq) {
		hnsw_search(j->h, j->d->queries + i * j->d->dim, 10, j->ef, NULL, NULL, res, &n,
			    NULL);
		for (size_t k = 0; k < n; k++)
			j->found[i * 10 + k] = res[k].id;
	}
	return NULL;
}

static double recall(const struct dataset *d, const uint64_t *found)
{
	size_t hit = 0;

	for (size_t q = 0; q < d->nq; q++)
		for (size_t i = 0; i < 10; i++)
			for (size_t j = 0; j < 10; j++)
				hit += found[q * 10 + i] == d->truth[q * d->k + j];
	return (double)hit / (double)(d->nq * 10);
}

static struct hnsw *in_process_build(const struct dataset *d)
{
	struct hnsw_params p = {(uint32_t)d->dim, SH_METRIC_L2, 16, 200, 42, HNSW_QUANT_NONE};
	uint64_t *ids = sh_malloc(d->n * sizeof *ids);
	struct hnsw *h;
	double t0 = now_sec();

	for (size_t i = 0; i < d->n; i++)
		ids[i] = i;
	if (hnsw_new(&p, &h, NULL) != 0 || hnsw_build(h, ids, d->base, d->n, 2, NULL) != 0)
		exit(1);
	fprintf(stderr, "bench: in-process index built in %.1f s\n", now_sec() - t0);
	sh_free(ids);
	return h;
}

/* One round: QPS of the in-process index on o->threads threads. */
static double in_process(struct hnsw *h, const struct dataset *d, const struct opts *o,
			 uint64_t *found)
{
	struct ijob j = {h, d, o->ef, found, 0};
	pthread_t th[64];
	double t0 = now_sec();

	for (size_t i = 0; i < o->threads; i++)
		pthread_create(&th[i], NULL, isearch, &j);
	for (size_t i = 0; i < o->threads; i++)
		pthread_join(th[i], NULL);
	return (double)d->nq / (now_sec() - t0);
}

/* ------------------------------------------------------------ network */

struct njob {
	const char *addr;
	const struct dataset *d;
	const struct opts *o;
	size_t first, count;
	uint64_t *found;
	size_t errors;
};

static void on_result(void *arg, size_t i, int status, const struct shoal_results *r,
		      uint64_t latency_ns)
{
	struct njob *j = arg;

	if (status != SHOAL_OK) {
		j->errors++;
		return;
	}
	for (size_t k = 0; k < r->n && k < 10; k++)
		j->found[(j->first + i) * 10 + k] = r->v[k].id;
}

static void *nsearch(void *arg)
{
	struct njob *j = arg;
	struct shoal_search *qs = calloc(j->count + 1, sizeof *qs);
	shoal *c;

	for (size_t i = 0; i < j->count; i++)
		qs[i] = (struct shoal_search){j->d->queries + (j->first + i) * j->d->dim,
					      (uint32_t)j->d->dim,
					      10,
					      (uint32_t)j->o->ef,
					      NULL,
					      0};
	if (shoal_open(j->addr, NULL, &c) != SHOAL_OK ||
	    shoal_search_pipelined(c, "bench", qs, j->count, j->o->depth, on_result, j) != SHOAL_OK)
		j->errors++;
	shoal_close(c);
	free(qs);
	return NULL;
}

static int load(const char *addr, const struct dataset *d)
{
	struct shoal_point *pts = calloc(d->n, sizeof *pts);
	shoal *c;
	double t0 = now_sec();
	int rv;

	for (size_t i = 0; i < d->n; i++)
		pts[i] = (struct shoal_point){i, d->base + i * d->dim, (uint32_t)d->dim, NULL, 0};
	rv = shoal_open(addr, NULL, &c);
	if (rv == SHOAL_OK)
		rv = shoal_create_collection(c, "bench", (uint32_t)d->dim, SHOAL_METRIC_L2, 0, 0,
					     NULL);
	if (rv == SHOAL_OK)
		rv = shoal_upsert_pipelined(c, "bench", pts, d->n, 500, 4, NULL, NULL, NULL, NULL);
	/* acknowledged is not yet indexed: a strong read waits for the apply */
	shoal_set_consistency(c, SHOAL_CONSISTENCY_STRONG);
	for (int i = 0; rv == SHOAL_OK && i < 100; i++) {
		uint64_t n;

		if ((rv = shoal_count(c, "bench", NULL, &n)) != SHOAL_DEADLINE_EXCEEDED)
			break;
		rv = SHOAL_OK;
	}
	if (rv != SHOAL_OK)
		fprintf(stderr, "bench: load: %s\n", shoal_errmsg(c));
	else
		fprintf(stderr, "bench: loaded and indexed in shoald in %.1f s\n", now_sec() - t0);
	shoal_close(c);
	free(pts);
	return rv;
}

/* One round: QPS through shoald with o->conns connections. */
static double network(const char *addr, const struct dataset *d, const struct opts *o,
		      uint64_t *found)
{
	struct njob js[64];
	pthread_t th[64];
	double t0 = now_sec();
	size_t errors = 0;

	for (size_t i = 0, first = 0; i < o->conns; i++) {
		js[i] = (struct njob){addr,  d, o, first, d->nq / o->conns + (i < d->nq % o->conns),
				      found, 0};
		first += js[i].count;
		pthread_create(&th[i], NULL, nsearch, &js[i]);
	}
	for (size_t i = 0; i < o->conns; i++) {
		pthread_join(th[i], NULL);
		errors += js[i].errors;
	}
	if (errors)
		fprintf(stderr, "bench: %zu search errors\n", errors);
	return (double)d->nq / (now_sec() - t0);
}

/* ------------------------------------------------------------ ping vs redis */

struct pjob {
	const char *addr;
	size_t n, depth;
	int status;
};

static void *nping(void *arg)
{
	struct pjob *j = arg;
	shoal *c;

	j->status = shoal_open(j->addr, NULL, &c);
	if (j->status == SHOAL_OK)
		j->status = shoal_ping_pipelined(c, j->n, j->depth, NULL, NULL);
	shoal_close(c);
	return NULL;
}

static double shoal_pings(const char *addr, const struct opts *o, size_t depth)
{
	struct pjob js[64];
	pthread_t th[64];
	double t0 = now_sec();

	for (size_t i = 0; i < o->conns; i++) {
		js[i] = (struct pjob){addr, o->pings / o->conns, depth, 0};
		pthread_create(&th[i], NULL, nping, &js[i]);
	}
	for (size_t i = 0; i < o->conns; i++)
		pthread_join(th[i], NULL);
	return (double)(o->pings / o->conns * o->conns) / (now_sec() - t0);
}

/* threads 0: redis-benchmark's default (one thread for every connection);
 * else --threads: one thread per connection, as the shoal client runs. */
static double redis_pings(int port, const struct opts *o, size_t pipeline, size_t threads)
{
	char cmd[256], line[512];
	double rps = -1;
	FILE *f;

	snprintf(cmd, sizeof cmd,
		 "redis-benchmark -h 127.0.0.1 -p %d -t ping_mbulk -c %zu --threads %zu -n %zu "
		 "-P %zu -q 2>&1",
		 port, o->conns, threads ? threads : 1, o->pings, pipeline);
	if ((f = popen(cmd, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL) {
		char *p = strstr(line, "PING_MBULK: ");

		if (p != NULL)
			rps = strtod(p + 12, NULL);
		p = strrchr(line, '\r'); /* redis-benchmark rewrites its line in place */
		if (p != NULL && strstr(p, "PING_MBULK: ") != NULL)
			rps = strtod(strstr(p, "PING_MBULK: ") + 12, NULL);
	}
	pclose(f);
	return rps;
}

static pid_t start_redis(int *port)
{
	char portarg[16];
	pid_t pid;

	for (int attempt = 0; attempt < 50; attempt++) {
		*port = 20000 +
			(int)((unsigned)getpid() * 7919u + (unsigned)attempt * 104729u) % 10000;
		if (!srv_port_free(*port))
			continue;
		snprintf(portarg, sizeof portarg, "%d", *port);
		if ((pid = fork()) == 0) {
			int fd = open("/dev/null", O_WRONLY);

			prctl(PR_SET_PDEATHSIG, SIGKILL);
			dup2(fd, 1);
			dup2(fd, 2);
			execlp("redis-server", "redis-server", "--port", portarg, "--bind",
			       "127.0.0.1", "--save", "", "--appendonly", "no", (char *)NULL);
			_exit(127);
		}
		for (int i = 0; i < 100; i++) {
			int fd = raw_connect(*port);

			if (fd >= 0) {
				close(fd);
				return pid;
			}
			if (waitpid(pid, NULL, WNOHANG) == pid)
				break;
			srv_sleep_ms(20);
		}
	}
	return -1;
}

static void ping_section(const char *addr, const struct opts *o)
{
	int port;
	pid_t redis = start_redis(&port);
	size_t pipes[2] = {1, o->redis_pipeline};

	if (redis < 0) {
		printf("\nredis-server not found or did not start (contrib/deps.sh --bench): "
		       "shoal ping only\n");
	}
	printf("\nmedians of %d rounds, the three clients taking turns; the shoal client runs "
	       "one thread per connection; redis-benchmark with one thread (its default) and "
	       "with --threads %zu\n\n"
	       "| connections | pipeline | shoal ping/s | redis 1 thread | shoal / redis | "
	       "redis %zu threads | shoal / redis |\n"
	       "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
	       PING_ROUNDS, o->conns, o->conns);
	for (int i = 0; i < 2; i++) {
		double r1[PING_ROUNDS], rn[PING_ROUNDS], sh[PING_ROUNDS], q1[PING_ROUNDS],
			qn[PING_ROUNDS];

		for (int k = 0; k < PING_ROUNDS; k++) {
			r1[k] = redis >= 0 ? redis_pings(port, o, pipes[i], 0) : -1;
			sh[k] = shoal_pings(addr, o, pipes[i]);
			rn[k] = redis >= 0 ? redis_pings(port, o, pipes[i], o->conns) : -1;
			q1[k] = r1[k] > 0 ? sh[k] / r1[k] : 0;
			qn[k] = rn[k] > 0 ? sh[k] / rn[k] : 0;
		}
		printf("| %zu | %zu | %.0f | %.0f | **%.2fx** | %.0f | **%.2fx** |\n", o->conns,
		       pipes[i], median(sh), median(r1), median(q1), median(rn), median(qn));
		fflush(stdout);
	}
	if (redis > 0) {
		kill(redis, SIGTERM);
		waitpid(redis, NULL, 0);
	}
}

/* ------------------------------------------------------------ main */

static void parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {{"n", 1, NULL, 'n'},
					   {"nq", 1, NULL, 'q'},
					   {"ef", 1, NULL, 'e'},
					   {"conns", 1, NULL, 'c'},
					   {"depth", 1, NULL, 'd'},
					   {"threads", 1, NULL, 't'},
					   {"pings", 1, NULL, 'p'},
					   {"cache", 1, NULL, 'C'},
					   {"no-search", 0, NULL, 'S'},
					   {"no-ping", 0, NULL, 'P'},
					   {"redis-pipeline", 1, NULL, 'r'},
					   {NULL, 0, NULL, 0}};
	int ch;

	*o = (struct opts){60000, 2000, 64, 4, 4, 2, 400000, 16, "bench-cache", false, false};
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'n': o->n = strtoull(optarg, NULL, 10); break;
		case 'q': o->nq = strtoull(optarg, NULL, 10); break;
		case 'e': o->ef = strtoull(optarg, NULL, 10); break;
		case 'c': o->conns = strtoull(optarg, NULL, 10); break;
		case 'd': o->depth = strtoull(optarg, NULL, 10); break;
		case 't': o->threads = strtoull(optarg, NULL, 10); break;
		case 'p': o->pings = strtoull(optarg, NULL, 10); break;
		case 'r': o->redis_pipeline = strtoull(optarg, NULL, 10); break;
		case 'C': snprintf(o->cache, sizeof o->cache, "%s", optarg); break;
		case 'S': o->no_search = true; break;
		case 'P': o->no_ping = true; break;
		default:
			fprintf(stderr,
				"usage: bench_server [--n N] [--nq Q] [--ef E] [--conns C] "
				"[--depth D] [--threads T] [--pings N] [--redis-pipeline P] "
				"[--cache DIR] [--no-search] [--no-ping]\n");
			exit(2);
		}
	}
	o->conns = o->conns < 1 ? 1 : o->conns > 64 ? 64 : o->conns;
	o->threads = o->threads < 1 ? 1 : o->threads > 64 ? 64 : o->threads;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct dataset d = {0};
	struct srv s;
	char dir[200];
	double inr, netr;

	parse(argc, argv, &o);
	srv_tmpdir(dir, sizeof dir);
	snprintf(s.dir, sizeof s.dir, "%s/data", dir);
	if (srv_start_args(&s, NULL) != 0) {
		fprintf(stderr, "bench: shoald does not start (run from the build directory)\n");
		return 1;
	}
	printf("bench_server: shoald on %s; %ld online CPUs\n", s.addr,
	       sysconf(_SC_NPROCESSORS_ONLN));
	if (!o.no_search) {
		double in[SEARCH_ROUNDS], net[SEARCH_ROUNDS], ratio[SEARCH_ROUNDS];
		uint64_t *fi, *fn;
		struct hnsw *h;

		if (data_fashion(&d, o.n, o.nq) != 0 || data_truth(&d, 10, o.cache, 2) != 0)
			return 1;
		if (load(s.addr, &d) != SHOAL_OK)
			return 1;
		h = in_process_build(&d);
		fi = sh_calloc(d.nq * 10, 8);
		fn = sh_calloc(d.nq * 10, 8);
		for (int r = 0; r < SEARCH_ROUNDS; r++) {
			net[r] = network(s.addr, &d, &o, fn);
			in[r] = in_process(h, &d, &o, fi);
			ratio[r] = net[r] / in[r];
		}
		inr = recall(&d, fi);
		netr = recall(&d, fn);
		printf("\nFashion-MNIST %zu x %zu, %zu queries, k 10, ef %zu, m 16, "
		       "ef_construction "
		       "200; medians of %d rounds, network and in-process taking turns\n\n"
		       "| search | QPS | recall@10 |\n| --- | ---: | ---: |\n"
		       "| in process, %zu threads | %.0f | %.4f |\n"
		       "| through shoald, %zu connections x depth %zu | %.0f | %.4f |\n"
		       "| network / in process | **%.2fx** | |\n",
		       d.n, d.dim, d.nq, o.ef, SEARCH_ROUNDS, o.threads,
		       median_of(in, SEARCH_ROUNDS), inr, o.conns, o.depth,
		       median_of(net, SEARCH_ROUNDS), netr, median_of(ratio, SEARCH_ROUNDS));
		fflush(stdout);
		hnsw_free(h);
		sh_free(fi);
		sh_free(fn);
	}
	if (!o.no_ping)
		ping_section(s.addr, &o);
	srv_stop(&s, SIGTERM);
	srv_rmdir(dir);
	unlink(s.log);
	data_free(&d);
	return 0;
}
