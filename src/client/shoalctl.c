/*
 * shoalctl: see shoalctl.h and doc/shoalctl.1.
 *
 *   shoalctl [--addr A] [--timeout MS] [--consistency L] [--ack L] [--json] COMMAND ...
 *
 * Output is plain text for people, or JSON with --json (one object per
 * command; for scripts).  Errors go to stderr as "shoalctl: STATUS: message"
 * with an exit code per status class.
 */
#include "build.h"

#include "client/shoalctl.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define JSONL_CHUNK 4096

static void usage(FILE *out)
{
	fprintf(out,
		"usage: shoalctl [OPTIONS] COMMAND [ARGS]\n"
		"\n"
		"  collection create NAME --dim N [--metric l2|cosine|dot] [--m M] "
		"[--ef-construction E]\n"
		"  collection drop NAME | collection list | collection info NAME\n"
		"  upsert COLL --id ID --vector X,Y,... [--payload JSON]\n"
		"  upsert COLL --jsonl FILE|-  |  --fvecs FILE [--start-id N] [--limit N]\n"
		"         [--batch B] [--depth D]\n"
		"  get COLL ID... [--with-vector] [--no-payload]\n"
		"  delete COLL ID...\n"
		"  search COLL --vector X,Y,... [-k K] [--ef E] [--filter JSON] [--exact]\n"
		"         [--with-vector] [--no-payload]\n"
		"  scroll COLL [--offset ID] [--limit N] [--filter JSON]\n"
		"  count COLL [--filter JSON]\n"
		"  status | members\n"
		"  cluster voters | cluster add NODE | cluster remove NODE\n"
		"  cluster transfer-leader [NODE] | cluster verify\n"
		"  cluster keys list | cluster keys install|use|remove KEY|-\n"
		"  snapshot save FILE|-\n"
		"  bench [see shoalctl(1)]\n"
		"  help COMMAND | COMMAND --help     the usage of one command\n"
		"\n"
		"  -a, --addr HOST:PORT[,...]  server(s), repeatable: writes follow the leader\n"
		"                              (default $SHOAL_ADDRS, $SHOAL_ADDR or "
		"127.0.0.1:7472)\n"
		"  -t, --timeout MS            per-request timeout (default 30000)\n"
		"  --consistency LEVEL         eventual, read_your_writes, strong, quorum\n"
		"  --ack LEVEL                 leader, one, quorum, all\n"
		"  --read-from WHERE           connected (default), preferred, spread\n"
		"  --read-addr HOST:PORT       reads to this node first (--read-from preferred)\n"
		"  --json                      machine-readable output\n"
		"  --api-key-file FILE         the API key to send (default $SHOAL_API_KEY)\n"
		"  --tls-ca FILE               speak TLS, trusting this CA (default "
		"$SHOAL_TLS_CA)\n"
		"  --tls-cert FILE, --tls-key FILE   a client certificate and its key\n"
		"  --tls-server-name NAME      the name the server's certificate must carry\n"
		"                              (default: the host of --addr)\n"
		"\n"
		"Exit status: 0 ok, 1 other failure (cluster verify: digests differ), 2 usage\n"
		"or input error, 3 not found, 4 already exists, 5 invalid argument,\n"
		"6 unavailable (cluster verify: a voter down), 7 timeout.\n");
}

/* `shoalctl COMMAND --help` and `shoalctl help COMMAND`: each command's
 * usage (doc/shoalctl.1 says more). */
static const struct {
	const char *cmd, *text;
} helps[] = {
	{"collection",
	 "usage: shoalctl [OPTIONS] collection create NAME --dim N [--metric l2|cosine|dot]\n"
	 "                                    [--m M] [--ef-construction E]\n"
	 "       shoalctl [OPTIONS] collection drop NAME | list | info NAME\n"
	 "Create, drop, list (with point counts and memory) or describe collections.\n"},
	{"upsert",
	 "usage: shoalctl [OPTIONS] upsert COLL --id ID --vector X,Y,... [--payload JSON]\n"
	 "       shoalctl [OPTIONS] upsert COLL --jsonl FILE|- | --fvecs FILE [--start-id N]\n"
	 "                          [--limit N] [--batch B] [--depth D] [--progress-every S]\n"
	 "Insert or replace points: one from arguments, or a bulk load from JSON lines\n"
	 "({\"id\": 1, \"vector\": [...], \"payload\": {...}} per line) or an .fvecs file, in\n"
	 "requests of B points (256) with D in flight (8).  Progress goes to stderr: a\n"
	 "line that redraws itself on a terminal, else a line every S seconds (10; 0:\n"
	 "after every batch).\n"},
	{"get", "usage: shoalctl [OPTIONS] get COLL ID... [--with-vector] [--no-payload]\n"
		"Print the points found; exit 3 when any id is missing.\n"},
	{"delete", "usage: shoalctl [OPTIONS] delete COLL ID...\n"
		   "Delete points; prints how many existed.\n"},
	{"search",
	 "usage: shoalctl [OPTIONS] search COLL --vector X,Y,... [-k K] [--ef E]\n"
	 "                          [--filter JSON] [--exact] [--with-vector] [--no-payload]\n"
	 "The K nearest points (10), id, distance and payload per line.\n"},
	{"scroll",
	 "usage: shoalctl [OPTIONS] scroll COLL [--offset ID] [--limit N] [--filter JSON]\n"
	 "A page of points in id order, then the offset of the next page.\n"},
	{"count", "usage: shoalctl [OPTIONS] count COLL [--filter JSON]\n"
		  "Count the points, or those matching the filter.\n"},
	{"status", "usage: shoalctl [OPTIONS] status\n"
		   "The node asked: role, term, leader, indexes, readiness, state; asked of\n"
		   "the leader, also each follower's progress.\n"},
	{"members", "usage: shoalctl [OPTIONS] members\n"
		    "Every member the node knows through membership, with its SWIM state.\n"},
	{"cluster", "usage: shoalctl [OPTIONS] cluster voters | add NODE | remove NODE\n"
		    "                          | transfer-leader [NODE] | verify\n"
		    "                          | keys list | keys install|use|remove KEY|-\n"
		    "The voter configuration and the replicas.  verify compares every voter's\n"
		    "and learner's digest at one applied index: exit 0 agree, 1 differ, 6 a voter\n"
		    "or learner down, 7 no common index within --timeout.  keys: the gossip\n"
		    "keyring on every member (KEY in base64, - reads it from stdin).\n"},
	{"snapshot",
	 "usage: shoalctl [OPTIONS] snapshot save FILE|-\n"
	 "Back up the node asked (any node, a follower too): it takes a snapshot of its\n"
	 "applied state now and sends it, checked piece by piece, to FILE (written\n"
	 "whole or not at all) or to standard output.  shoald --restore FILE seeds a new\n"
	 "data dir from it.  The first reply waits for the snapshot to be written: give a\n"
	 "large state a longer --timeout.\n"},
	{"bench",
	 "usage: shoalctl [OPTIONS] bench [--dataset fashion|FILE.fvecs] [--queries FILE]\n"
	 "                          [--n N] [--nq N] [--collection C] [--load|--no-load]\n"
	 "                          [--mode search|upsert|ping|mix] [--search-ratio R]\n"
	 "                          [--concurrency C] [--depth D] [--requests N]\n"
	 "                          [-k K] [--ef E] [--no-recall]\n"
	 "                          [--per-request P] [--duration S] [--lag ADDR,...]\n"
	 "A load generator: requests per second, latency percentiles, recall@k; with\n"
	 "--lag, how long after each acknowledgement each node listed had applied it\n"
	 "(searchable there).  --dataset random:DIM generates --n vectors.\n"},
};

/* 0 after printing the help of cmd; EXIT_USAGE for an unknown command. */
static int command_help(const char *cmd)
{
	for (size_t i = 0; i < sizeof helps / sizeof helps[0]; i++)
		if (strcmp(cmd, helps[i].cmd) == 0) {
			fputs(helps[i].text, stdout);
			printf("See shoalctl --help for the OPTIONS, shoalctl(1) for the "
			       "details.\n");
			return 0;
		}
	return ctl_usage_error("no help for unknown command '%s'", cmd);
}

static bool wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	return false;
}

/* ------------------------------------------------------------ helpers */

double ctl_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int ctl_exit_code(int status)
{
	switch (status) {
	case SHOAL_OK: return 0;
	case SHOAL_NOT_FOUND: return EXIT_NOTFOUND;
	case SHOAL_ALREADY_EXISTS: return EXIT_EXISTS;
	case SHOAL_INVALID_ARGUMENT:
	case SHOAL_FAILED_PRECONDITION: return EXIT_INVALID;
	case SHOAL_UNAVAILABLE: return EXIT_UNAVAILABLE;
	case SHOAL_DEADLINE_EXCEEDED:
	case SHOAL_OUTCOME_UNKNOWN: return EXIT_TIMEOUT;
	default: return EXIT_FAILED; /* UNAUTHENTICATED, PERMISSION_DENIED too */
	}
}

int ctl_fail(struct ctl *x, int status, const char *what)
{
	const char *msg = x->c ? shoal_errmsg(x->c) : "out of memory";

	if (x->json) {
		json_t *j =
			json_pack("{s:s,s:s}", "status", shoal_status_name(status), "message", msg);
		char *s = json_dumps(j, JSON_COMPACT);

		fprintf(stderr, "%s\n", s ? s : "");
		free(s);
		json_decref(j);
	} else {
		fprintf(stderr, "shoalctl: %s: %s: %s\n", what, shoal_status_name(status), msg);
	}
	return ctl_exit_code(status);
}

int ctl_connect(struct ctl *x)
{
	if (x->c != NULL)
		return SHOAL_OK;
	return shoal_open(x->addr, &x->o, &x->c);
}

int ctl_usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "shoalctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see shoalctl --help)\n");
	return EXIT_USAGE;
}

void ctl_print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(9));

	printf("%s\n", s ? s : "null");
	free(s);
	json_decref(j);
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 10);
	return (s[0] >= '0' && s[0] <= '9' && *end == '\0' && errno == 0) ? 0 : -1;
}

/* "1,2.5,3" -> floats (malloc'd). */
static int parse_vector(const char *s, float **out, uint32_t *dim)
{
	size_t n = 1, i = 0;
	float *v;
	char *end;

	for (const char *p = s; *p; p++)
		n += *p == ',';
	if ((v = malloc(n * sizeof *v)) == NULL)
		return -1;
	for (const char *p = s; i < n; i++) {
		v[i] = strtof(p, &end);
		if (end == p || (*end != ',' && *end != '\0')) {
			free(v);
			return -1;
		}
		p = *end ? end + 1 : end;
	}
	*out = v;
	*dim = (uint32_t)n;
	return 0;
}

static const char *metric_name(enum shoal_metric m)
{
	return m == SHOAL_METRIC_COSINE ? "cosine" : m == SHOAL_METRIC_DOT ? "dot" : "l2";
}

/* ------------------------------------------------------------ progress */

void progress_start(struct progress *p, size_t total, const char *what, double every)
{
	p->tty = isatty(2) == 1;
	p->total = total;
	p->t0 = p->last = ctl_now();
	p->what = what;
	p->every = p->tty ? 0.2 : every;
	p->lines = 0;
}

/* On a terminal one line redrawn in place ("\r"); elsewhere (a log, a
 * pipe) whole lines, "shoalctl: progress: ...". */
static void progress_print(struct progress *p, size_t done, bool last)
{
	double el = ctl_now() - p->t0, rate = el > 0 ? (double)done / el : 0;
	double eta = rate > 0 && p->total > done ? (double)(p->total - done) / rate : 0;
	const char *head = p->tty ? "\r" : "shoalctl: progress: ";
	const char *end = p->tty && !last ? "" : "\n";

	if (p->total > 0)
		fprintf(stderr, "%s%zu / %zu %s  %5.1f%%  %.0f/s  ETA %d:%02d   %s", head, done,
			p->total, p->what, 100.0 * (double)done / (double)p->total, rate,
			(int)eta / 60, (int)eta % 60, end);
	else
		fprintf(stderr, "%s%zu %s  %.0f/s   %s", head, done, p->what, rate, end);
	p->lines++;
}

void progress_update(struct progress *p, size_t done)
{
	double now = ctl_now();

	if (now - p->last < p->every)
		return;
	p->last = now;
	progress_print(p, done, false);
}

/* The final line: on a terminal always, elsewhere when lines were printed
 * (a load shorter than one interval stays quiet). */
void progress_end(struct progress *p, size_t done)
{
	if (p->tty || p->lines > 0)
		progress_print(p, done, true);
}

/* ------------------------------------------------------------ collection */

static json_t *info_json(const struct shoal_collection_info *i)
{
	return json_pack(
		"{s:s,s:I,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "name", i->name, "dim",
		(json_int_t)i->dim, "metric", metric_name(i->metric), "m", (json_int_t)i->m,
		"ef_construction", (json_int_t)i->ef_construction, "count", (json_int_t)i->count,
		"memory_bytes", (json_int_t)i->memory_bytes, "points_indexed",
		(json_int_t)i->points_indexed, "points_fresh", (json_int_t)i->points_fresh,
		"oldest_fresh_ms", (json_int_t)i->oldest_fresh_ms, "indexed_total",
		(json_int_t)i->indexed_total, "indexing_rate", (json_int_t)i->indexing_rate);
}

static void print_info(struct ctl *x, const struct shoal_collection_info *i)
{
	if (x->json)
		ctl_print_json(info_json(i));
	else
		printf("%-24s dim %-6u %-6s m %-3u ef_construction %-4u points %-10" PRIu64
		       " memory %-12" PRIu64 " fresh %" PRIu64 " (oldest %" PRIu64
		       " ms, indexing %" PRIu64 "/s)\n",
		       i->name, i->dim, metric_name(i->metric), i->m, i->ef_construction, i->count,
		       i->memory_bytes, i->points_fresh, i->oldest_fresh_ms, i->indexing_rate);
}

static void print_token(struct ctl *x, const char *what, const struct shoal_token *t,
			long long affected)
{
	if (x->json)
		ctl_print_json(json_pack("{s:{s:I,s:I},s:I}", "token", "term", (json_int_t)t->term,
					 "index", (json_int_t)t->index, "affected",
					 (json_int_t)affected));
	else if (affected >= 0)
		printf("%s: %lld (token %" PRIu64 ":%" PRIu64 ")\n", what, affected, t->term,
		       t->index);
	else
		printf("%s (token %" PRIu64 ":%" PRIu64 ")\n", what, t->term, t->index);
}

static int cmd_create(struct ctl *x, int argc, char **argv)
{
	static const struct option opts[] = {{"dim", 1, NULL, 'd'},
					     {"metric", 1, NULL, 'M'},
					     {"m", 1, NULL, 'm'},
					     {"ef-construction", 1, NULL, 'e'},
					     {NULL, 0, NULL, 0}};
	uint64_t dim = 0, m = 0, efc = 0;
	enum shoal_metric metric = SHOAL_METRIC_L2;
	struct shoal_token t;
	int ch, rv;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if ((ch == 'd' && parse_u64(optarg, &dim)) ||
		    (ch == 'm' && parse_u64(optarg, &m)) ||
		    (ch == 'e' && parse_u64(optarg, &efc)) || ch == '?')
			return ctl_usage_error("collection create: bad option %s",
					       argv[optind - 1]);
		if (ch == 'M' && strcmp(optarg, "l2") != 0 && strcmp(optarg, "cosine") != 0 &&
		    strcmp(optarg, "dot") != 0)
			return ctl_usage_error("unknown metric '%s' (l2, cosine or dot)", optarg);
		if (ch == 'M')
			metric = optarg[0] == 'c'   ? SHOAL_METRIC_COSINE
				 : optarg[0] == 'd' ? SHOAL_METRIC_DOT
						    : SHOAL_METRIC_L2;
	}
	if (optind != argc - 1 || dim == 0)
		return ctl_usage_error("%s", "collection create NAME --dim N [...]");
	if ((rv = ctl_connect(x)) == SHOAL_OK)
		rv = shoal_create_collection(x->c, argv[optind], (uint32_t)dim, metric, (uint32_t)m,
					     (uint32_t)efc, &t);
	if (rv != SHOAL_OK)
		return ctl_fail(x, rv, "collection create");
	print_token(x, "created", &t, -1);
	return 0;
}

static int cmd_collection(struct ctl *x, int argc, char **argv)
{
	struct shoal_collection_info *v, one;
	struct shoal_token t;
	size_t n;
	int rv;

	if (argc < 2)
		return ctl_usage_error("%s", "collection create|drop|list|info");
	if (strcmp(argv[1], "create") == 0)
		return cmd_create(x, argc - 1, argv + 1);
	if ((rv = ctl_connect(x)) != SHOAL_OK)
		return ctl_fail(x, rv, "connect");
	if (strcmp(argv[1], "list") == 0 && argc == 2) {
		if ((rv = shoal_list_collections(x->c, &v, &n)) != SHOAL_OK)
			return ctl_fail(x, rv, "collection list");
		if (x->json) {
			json_t *a = json_array();

			for (size_t i = 0; i < n; i++)
				json_array_append_new(a, info_json(&v[i]));
			ctl_print_json(json_pack("{s:o}", "collections", a));
		} else {
			for (size_t i = 0; i < n; i++)
				print_info(x, &v[i]);
		}
		shoal_free(v);
		return 0;
	}
	if (argc != 3)
		return ctl_usage_error("collection %s NAME", argv[1]);
	if (strcmp(argv[1], "drop") == 0) {
		if ((rv = shoal_drop_collection(x->c, argv[2], &t)) != SHOAL_OK)
			return ctl_fail(x, rv, "collection drop");
		print_token(x, "dropped", &t, -1);
		return 0;
	}
	if (strcmp(argv[1], "info") == 0) {
		if ((rv = shoal_describe_collection(x->c, argv[2], &one)) != SHOAL_OK)
			return ctl_fail(x, rv, "collection info");
		print_info(x, &one);
		return 0;
	}
	return ctl_usage_error("unknown collection command '%s'", argv[1]);
}

/* ------------------------------------------------------------ upsert */

struct upopts {
	const char *jsonl, *fvecs, *payload, *vector;
	uint64_t id, start_id, limit, batch, depth;
	double every; /* progress lines off a terminal, seconds */
	bool have_id;
};

static void on_progress(void *arg, size_t acked)
{
	struct progress *p = arg;

	progress_update(p, acked);
}

static int send_points(struct ctl *x, const char *coll, const struct shoal_point *pts, size_t n,
		       const struct upopts *u, struct progress *p, size_t before, size_t *acked,
		       struct shoal_token *t)
{
	size_t got = 0;
	struct progress sub = *p;
	int rv;

	sub.t0 = p->t0;
	(void)before;
	rv = shoal_upsert_pipelined(x->c, coll, pts, n, u->batch, u->depth, on_progress, &sub, &got,
				    t);
	*acked += got;
	p->last = sub.last;
	p->lines = sub.lines;
	return rv;
}

static int upsert_fvecs(struct ctl *x, const char *coll, const struct upopts *u,
			struct shoal_token *t, size_t *acked)
{
	float *v;
	size_t n, dim;
	struct shoal_point *pts;
	struct progress p;
	int rv;

	if (fvecs_read(u->fvecs, u->limit, &v, &n, &dim) != 0)
		return -EXIT_USAGE;
	if ((pts = calloc(n ? n : 1, sizeof *pts)) == NULL) {
		free(v);
		return -EXIT_FAILED;
	}
	for (size_t i = 0; i < n; i++)
		pts[i] = (struct shoal_point){u->start_id + i, v + i * dim, (uint32_t)dim, NULL, 0};
	progress_start(&p, n, "points", u->every);
	rv = send_points(x, coll, pts, n, u, &p, 0, acked, t);
	progress_end(&p, *acked);
	free(pts);
	free(v);
	return rv;
}

/* One JSON line to a point; vec and payload are malloc'd into *bufs. */
static int jsonl_point(const char *line, size_t lineno, struct shoal_point *pt, float **vec,
		       char **payload)
{
	json_error_t je;
	json_t *j = json_loads(line, 0, &je), *id, *v, *pl;
	int rv = -1;

	*vec = NULL;
	*payload = NULL;
	if (j == NULL) {
		fprintf(stderr, "shoalctl: line %zu: %s\n", lineno, je.text);
		return -1;
	}
	id = json_object_get(j, "id");
	v = json_object_get(j, "vector");
	pl = json_object_get(j, "payload");
	if (!json_is_integer(id) || json_integer_value(id) < 0 || !json_is_array(v)) {
		fprintf(stderr, "shoalctl: line %zu: needs \"id\" (integer) and \"vector\"\n",
			lineno);
	} else if ((*vec = malloc((json_array_size(v) + 1) * sizeof **vec)) != NULL) {
		for (size_t i = 0; i < json_array_size(v); i++)
			(*vec)[i] = (float)json_number_value(json_array_get(v, i));
		*pt = (struct shoal_point){(uint64_t)json_integer_value(id), *vec,
					   (uint32_t)json_array_size(v), NULL, 0};
		if (pl != NULL && !json_is_null(pl))
			pt->payload = *payload = json_dumps(pl, JSON_COMPACT | JSON_ENCODE_ANY);
		rv = 0;
	}
	json_decref(j);
	return rv;
}

static void free_chunk(float **vecs, char **pls, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(vecs[i]);
		free(pls[i]);
	}
}

static int upsert_jsonl(struct ctl *x, const char *coll, const struct upopts *u,
			struct shoal_token *t, size_t *acked)
{
	FILE *f = strcmp(u->jsonl, "-") == 0 ? stdin : fopen(u->jsonl, "r");
	static struct shoal_point pts[JSONL_CHUNK];
	static float *vecs[JSONL_CHUNK];
	static char *pls[JSONL_CHUNK];
	char *line = NULL;
	size_t cap = 0, n = 0, lineno = 0;
	struct progress p;
	int rv = SHOAL_OK;

	if (f == NULL) {
		fprintf(stderr, "shoalctl: %s: %s\n", u->jsonl, strerror(errno));
		return -EXIT_USAGE;
	}
	progress_start(&p, 0, "points", u->every);
	while (rv == SHOAL_OK && getline(&line, &cap, f) > 0) {
		lineno++;
		if (line[strspn(line, " \t\r\n")] == '\0')
			continue;
		if (jsonl_point(line, lineno, &pts[n], &vecs[n], &pls[n]) != 0) {
			rv = -EXIT_USAGE;
			break;
		}
		if (++n == JSONL_CHUNK) {
			rv = send_points(x, coll, pts, n, u, &p, *acked, acked, t);
			free_chunk(vecs, pls, n);
			n = 0;
		}
	}
	if (rv == SHOAL_OK && n > 0)
		rv = send_points(x, coll, pts, n, u, &p, *acked, acked, t);
	free_chunk(vecs, pls, n);
	progress_end(&p, *acked);
	free(line);
	if (f != stdin)
		fclose(f);
	return rv;
}

static int upsert_one(struct ctl *x, const char *coll, const struct upopts *u,
		      struct shoal_token *t, size_t *acked)
{
	struct shoal_point pt = {u->id, NULL, 0, u->payload, 0};
	float *v;
	int rv;

	if (parse_vector(u->vector, &v, &pt.dim) != 0) {
		fprintf(stderr, "shoalctl: --vector: '%s' is not a list of numbers\n", u->vector);
		return -EXIT_USAGE;
	}
	pt.vector = v;
	rv = shoal_upsert(x->c, coll, &pt, 1, t);
	*acked = rv == SHOAL_OK;
	free(v);
	return rv;
}

static int cmd_upsert(struct ctl *x, int argc, char **argv)
{
	static const struct option opts[] = {
		{"jsonl", 1, NULL, 'j'},   {"fvecs", 1, NULL, 'f'},
		{"id", 1, NULL, 'i'},      {"vector", 1, NULL, 'v'},
		{"payload", 1, NULL, 'p'}, {"start-id", 1, NULL, 's'},
		{"limit", 1, NULL, 'l'},   {"batch", 1, NULL, 'b'},
		{"depth", 1, NULL, 'D'},   {"progress-every", 1, NULL, 'E'},
		{NULL, 0, NULL, 0}};
	struct upopts u = {.batch = 256, .depth = 8, .every = 10};
	struct shoal_token t = {0, 0};
	size_t acked = 0;
	int ch, rv, modes;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		int bad = ch == '?';

		switch (ch) {
		case 'j': u.jsonl = optarg; break;
		case 'f': u.fvecs = optarg; break;
		case 'v': u.vector = optarg; break;
		case 'p': u.payload = optarg; break;
		case 'i': bad = parse_u64(optarg, &u.id), u.have_id = true; break;
		case 's': bad = parse_u64(optarg, &u.start_id); break;
		case 'l': bad = parse_u64(optarg, &u.limit); break;
		case 'b': bad = parse_u64(optarg, &u.batch) || u.batch == 0; break;
		case 'D': bad = parse_u64(optarg, &u.depth) || u.depth == 0; break;
		case 'E': {
			char *end;

			u.every = strtod(optarg, &end);
			bad = end == optarg || *end != '\0' || !(u.every >= 0);
			break;
		}
		}
		if (bad)
			return ctl_usage_error("upsert: bad option %s", argv[optind - 1]);
	}
	modes = (u.jsonl != NULL) + (u.fvecs != NULL) + (u.vector != NULL);
	if (optind != argc - 1 || modes != 1 || (u.vector != NULL && !u.have_id))
		return ctl_usage_error("%s", "upsert COLL (--id ID --vector V | --jsonl FILE | "
					     "--fvecs FILE)");
	if ((rv = ctl_connect(x)) != SHOAL_OK)
		return ctl_fail(x, rv, "connect");
	rv = u.vector  ? upsert_one(x, argv[optind], &u, &t, &acked)
	     : u.fvecs ? upsert_fvecs(x, argv[optind], &u, &t, &acked)
		       : upsert_jsonl(x, argv[optind], &u, &t, &acked);
	if (rv < 0)
		return -rv;
	if (rv != SHOAL_OK) {
		fprintf(stderr, "shoalctl: %zu points acknowledged before the error\n", acked);
		return ctl_fail(x, rv, "upsert");
	}
	print_token(x, "upserted", &t, (long long)acked);
	return 0;
}

/* ------------------------------------------------------------ reads */

static json_t *record_json(const struct shoal_record *r, bool distance)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", json_integer((json_int_t)r->id));
	if (distance)
		json_object_set_new(o, "distance", json_real((double)r->distance));
	if (r->vector != NULL) {
		json_t *a = json_array();

		for (uint32_t i = 0; i < r->dim; i++)
			json_array_append_new(a, json_real((double)r->vector[i]));
		json_object_set_new(o, "vector", a);
	}
	if (r->payload != NULL)
		json_object_set_new(o, "payload", json_loads(r->payload, 0, NULL));
	return o;
}

static void print_records(struct ctl *x, const struct shoal_results *r, bool distance,
			  json_t *extra)
{
	if (x->json) {
		json_t *a = json_array();

		for (size_t i = 0; i < r->n; i++)
			json_array_append_new(a, record_json(&r->v[i], distance));
		json_object_set_new(extra, "points", a);
		ctl_print_json(extra);
		return;
	}
	json_decref(extra);
	for (size_t i = 0; i < r->n; i++) {
		printf("%" PRIu64, r->v[i].id);
		if (distance)
			printf("\t%.6g", (double)r->v[i].distance);
		if (r->v[i].payload != NULL)
			printf("\t%s", r->v[i].payload);
		if (r->v[i].vector != NULL)
			for (uint32_t k = 0; k < r->v[i].dim; k++)
				printf("%s%g", k ? "," : "\t", (double)r->v[i].vector[k]);
		putchar('\n');
	}
}

static int read_ids(int argc, char **argv, uint64_t **ids, size_t *n)
{
	*n = 0;
	if ((*ids = calloc((size_t)argc + 1, sizeof **ids)) == NULL)
		return -1;
	for (int i = 0; i < argc; i++)
		if (parse_u64(argv[i], &(*ids)[(*n)++]) != 0)
			return ctl_usage_error("'%s' is not an id", argv[i]), -1;
	return 0;
}

struct readopts {
	int flags;
	const char *filter, *vector;
	uint64_t k, ef, offset, limit;
};

static int read_options(int argc, char **argv, struct readopts *r)
{
	static const struct option opts[] = {{"with-vector", 0, NULL, 'V'},
					     {"no-payload", 0, NULL, 'P'},
					     {"filter", 1, NULL, 'F'},
					     {"vector", 1, NULL, 'v'},
					     {"exact", 0, NULL, 'x'},
					     {"ef", 1, NULL, 'e'},
					     {"offset", 1, NULL, 'o'},
					     {"limit", 1, NULL, 'l'},
					     {NULL, 0, NULL, 0}};
	int ch;

	r->flags = SHOAL_WITH_PAYLOAD;
	r->k = 10;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "k:", opts, NULL)) != -1) {
		int bad = ch == '?';

		switch (ch) {
		case 'V': r->flags |= SHOAL_WITH_VECTOR; break;
		case 'P': r->flags &= ~SHOAL_WITH_PAYLOAD; break;
		case 'x': r->flags |= SHOAL_EXACT; break;
		case 'F': r->filter = optarg; break;
		case 'v': r->vector = optarg; break;
		case 'k': bad = parse_u64(optarg, &r->k); break;
		case 'e': bad = parse_u64(optarg, &r->ef); break;
		case 'o': bad = parse_u64(optarg, &r->offset); break;
		case 'l': bad = parse_u64(optarg, &r->limit); break;
		}
		if (bad)
			return ctl_usage_error("bad option %s", argv[optind - 1]);
	}
	return 0;
}

static int cmd_get(struct ctl *x, int argc, char **argv, bool del)
{
	struct readopts ro;
	struct shoal_results r;
	struct shoal_token t;
	uint64_t *ids = NULL;
	size_t n, deleted;
	int rv;

	if (read_options(argc, argv, &ro) != 0)
		return EXIT_USAGE;
	if (optind >= argc - 1)
		return ctl_usage_error("%s COLL ID...", del ? "delete" : "get");
	if (read_ids(argc - optind - 1, argv + optind + 1, &ids, &n) != 0) {
		free(ids);
		return EXIT_USAGE;
	}
	if ((rv = ctl_connect(x)) == SHOAL_OK && del)
		rv = shoal_delete(x->c, argv[optind], ids, n, &deleted, &t);
	else if (rv == SHOAL_OK)
		rv = shoal_get(x->c, argv[optind], ids, n, ro.flags, &r);
	free(ids);
	if (rv != SHOAL_OK)
		return ctl_fail(x, rv, del ? "delete" : "get");
	if (del) {
		print_token(x, "deleted", &t, (long long)deleted);
		return 0;
	}
	print_records(x, &r, false, json_object());
	rv = r.n == n ? 0 : EXIT_NOTFOUND;
	if (rv != 0 && !x->json)
		fprintf(stderr, "shoalctl: get: %zu of %zu points not found\n", n - r.n, n);
	shoal_results_free(&r);
	return rv;
}

static int cmd_search(struct ctl *x, int argc, char **argv)
{
	struct readopts ro = {0};
	struct shoal_search q = {0};
	struct shoal_results r;
	float *v = NULL;
	int rv;

	if (read_options(argc, argv, &ro) != 0)
		return EXIT_USAGE;
	if (optind != argc - 1 || ro.vector == NULL)
		return ctl_usage_error("%s", "search COLL --vector X,Y,... [-k K] [...]");
	if (parse_vector(ro.vector, &v, &q.dim) != 0)
		return ctl_usage_error("--vector: '%s' is not a list of numbers", ro.vector);
	q.vector = v;
	q.k = (uint32_t)ro.k;
	q.ef = (uint32_t)ro.ef;
	q.filter = ro.filter;
	q.flags = ro.flags;
	if ((rv = ctl_connect(x)) == SHOAL_OK)
		rv = shoal_search(x->c, argv[optind], &q, &r);
	free(v);
	if (rv != SHOAL_OK)
		return ctl_fail(x, rv, "search");
	print_records(x, &r, true, json_pack("{s:b}", "exact", r.exact));
	shoal_results_free(&r);
	return 0;
}

static int cmd_scroll(struct ctl *x, int argc, char **argv)
{
	struct readopts ro = {0};
	struct shoal_results r;
	int rv;

	if (read_options(argc, argv, &ro) != 0)
		return EXIT_USAGE;
	if (optind != argc - 1)
		return ctl_usage_error("%s",
				       "scroll COLL [--offset ID] [--limit N] [--filter JSON]");
	if ((rv = ctl_connect(x)) == SHOAL_OK)
		rv = shoal_scroll(x->c, argv[optind], ro.offset, (uint32_t)ro.limit, ro.filter,
				  ro.flags, &r);
	if (rv != SHOAL_OK)
		return ctl_fail(x, rv, "scroll");
	print_records(x, &r, false,
		      r.has_next ? json_pack("{s:I}", "next_offset", (json_int_t)r.next_offset)
				 : json_pack("{s:n}", "next_offset"));
	if (!x->json && r.has_next)
		printf("# next offset: %" PRIu64 "\n", r.next_offset);
	shoal_results_free(&r);
	return 0;
}

static int cmd_count(struct ctl *x, int argc, char **argv)
{
	struct readopts ro = {0};
	uint64_t n;
	int rv;

	if (read_options(argc, argv, &ro) != 0)
		return EXIT_USAGE;
	if (optind != argc - 1)
		return ctl_usage_error("%s", "count COLL [--filter JSON]");
	if ((rv = ctl_connect(x)) == SHOAL_OK)
		rv = shoal_count(x->c, argv[optind], ro.filter, &n);
	if (rv != SHOAL_OK)
		return ctl_fail(x, rv, "count");
	if (x->json)
		ctl_print_json(json_pack("{s:I}", "count", (json_int_t)n));
	else
		printf("%" PRIu64 "\n", n);
	return 0;
}

static json_t *ids_json(const uint64_t *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++) {
		char id[17];

		snprintf(id, sizeof id, "%016" PRIx64, v[i]);
		json_array_append_new(a, json_string(id));
	}
	return a;
}

static void status_json(const struct shoal_cluster_status *s,
			const struct shoal_collection_info *ci, size_t nc)
{
	char id[17], leader[17], cluster[17];
	json_t *j;

	snprintf(id, sizeof id, "%016" PRIx64, s->node_id);
	snprintf(leader, sizeof leader, "%016" PRIx64, s->leader_id);
	snprintf(cluster, sizeof cluster, "%016" PRIx64, s->cluster_id);
	j = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:s,s:I,s:I,s:s}", "node_id", id, "node_name",
		      s->node_name, "role", s->role, "term", (json_int_t)s->term, "commit_index",
		      (json_int_t)s->commit_index, "applied_index", (json_int_t)s->applied_index,
		      "last_index", (json_int_t)s->last_index, "digest", s->digest, "collections",
		      (json_int_t)s->collections, "points", (json_int_t)s->points, "version",
		      s->version);
	json_object_set_new(j, "leader_id", json_string(leader));
	json_object_set_new(j, "leader_address", json_string(s->leader_address));
	json_object_set_new(j, "cluster_id", json_string(cluster));
	json_object_set_new(j, "durable_index", json_integer((json_int_t)s->durable_index));
	json_object_set_new(j, "snapshot_index", json_integer((json_int_t)s->snapshot_index));
	json_object_set_new(j, "voters", ids_json(s->voters, s->n_voters));
	json_object_set_new(j, "learners", ids_json(s->learners, s->n_learners));
	json_object_set_new(j, "ready", json_boolean(s->ready));
	json_object_set_new(j, "ready_reason", json_string(s->ready_reason));
	json_object_set_new(j, "lag", json_integer((json_int_t)s->lag));
	json_object_set_new(j, "lag_ms", json_integer((json_int_t)s->lag_ms));
	json_object_set_new(j, "disk_full", json_boolean(s->disk_full));
	json_object_set_new(j, "disk_full_ms", json_integer((json_int_t)s->disk_full_ms));
	json_object_set_new(j, "collections", json_array());
	for (size_t i = 0; i < nc; i++)
		json_array_append_new(json_object_get(j, "collections"), info_json(&ci[i]));
	ctl_print_json(j);
}

/* Each collection's write path: what waits for the graph, how fast it goes. */
static void print_collections(const struct shoal_collection_info *ci, size_t nc)
{
	for (size_t i = 0; i < nc; i++)
		printf("collection %s: %" PRIu64 " points, %" PRIu64 " indexed, %" PRIu64
		       " fresh (oldest %" PRIu64 " ms), indexing %" PRIu64 " points/s\n",
		       ci[i].name, ci[i].count, ci[i].points_indexed, ci[i].points_fresh,
		       ci[i].oldest_fresh_ms, ci[i].indexing_rate);
}

/* At the leader: each other voter's and learner's progress. */
static void print_followers(struct ctl *x)
{
	struct shoal_member *m = NULL;
	size_t n = 0;

	if (shoal_cluster_members(x->c, &m, &n) != SHOAL_OK)
		return;
	for (size_t i = 1; i < n; i++)
		if (m[i].role[0] != '\0')
			printf("%s %s: match %" PRIu64 ", lag %" PRIu64 " entries, %" PRIu64
			       " ms\n",
			       m[i].role, m[i].name, m[i].match_index, m[i].lag, m[i].lag_ms);
	shoal_free(m);
}

static int cmd_status(struct ctl *x)
{
	struct shoal_cluster_status s;
	struct shoal_collection_info *ci = NULL;
	size_t nc = 0;
	int rv;

	if ((rv = ctl_connect(x)) == SHOAL_OK)
		rv = shoal_cluster_status(x->c, &s);
	if (rv != SHOAL_OK)
		return ctl_fail(x, rv, "status");
	if (shoal_list_collections(x->c, &ci, &nc) != SHOAL_OK)
		nc = 0; /* the status alone */
	if (x->json)
		status_json(&s, ci, nc);
	else
		printf("node %s (%016" PRIx64 "), role %s, term %" PRIu64 "\n"
		       "leader %016" PRIx64 " at %s, cluster %016" PRIx64 ", %zu voter(s), %zu "
		       "learner(s)\n"
		       "log: last index %" PRIu64 ", durable %" PRIu64 ", commit %" PRIu64
		       ", applied %" PRIu64 ", snapshot %" PRIu64 "\n"
		       "state: %" PRIu64 " collections, %" PRIu64 " points, digest %s\n"
		       "ready: %s%s%s%s, lag %" PRIu64 " entries, %" PRIu64 " ms\n"
		       "version %s, %zu member(s)\n",
		       s.node_name, s.node_id, s.role, s.term, s.leader_id,
		       s.leader_address[0] ? s.leader_address : "-", s.cluster_id, s.n_voters,
		       s.n_learners, s.last_index, s.durable_index, s.commit_index, s.applied_index,
		       s.snapshot_index, s.collections, s.points, s.digest, s.ready ? "yes" : "no",
		       s.ready ? "" : " (", s.ready_reason, s.ready ? "" : ")", s.lag, s.lag_ms,
		       s.version, s.members);
	if (!x->json && s.disk_full)
		printf("ALARM: disk full for %" PRIu64 " ms: this node is read-only (writes "
		       "refused, reads served) until its log can grow again\n",
		       s.disk_full_ms);
	if (!x->json)
		print_collections(ci, nc);
	shoal_free(ci);
	if (!x->json && strcmp(s.role, "leader") == 0)
		print_followers(x);
	return 0;
}

static json_t *member_json(const struct shoal_member *m)
{
	char id[17];

	snprintf(id, sizeof id, "%016" PRIx64, m->node_id);
	return json_pack("{s:s,s:s,s:s,s:I,s:s,s:s,s:s,s:s,s:b,s:I,s:I,s:I,s:I,s:I}", "node_id", id,
			 "name", m->name, "state", shoal_member_state_name(m->state), "incarnation",
			 (json_int_t)m->incarnation, "cluster_address", m->cluster_address,
			 "client_address", m->client_address, "rest_address", m->rest_address,
			 "role", m->role, "voter", m->voter, "applied_index",
			 (json_int_t)m->applied_index, "commit_index", (json_int_t)m->commit_index,
			 "lag", (json_int_t)m->lag, "state_age_ms", (json_int_t)m->state_age_ms,
			 "last_heard_ms", (json_int_t)m->last_heard_ms);
}

/* "1.2s", "-" for never, "self" for the node answering. */
static const char *heard(char *buf, size_t len, const struct shoal_member *m, size_t i)
{
	if (i == 0)
		return "self";
	if (m->last_heard_ms < 0)
		return "never";
	snprintf(buf, len, "%.1fs", (double)m->last_heard_ms / 1000);
	return buf;
}

static int cmd_members(struct ctl *x)
{
	struct shoal_member *m = NULL;
	size_t n = 0;
	int rv;

	if ((rv = ctl_connect(x)) == SHOAL_OK)
		rv = shoal_cluster_members(x->c, &m, &n);
	if (rv != SHOAL_OK)
		return ctl_fail(x, rv, "members");
	if (x->json) {
		json_t *a = json_array();

		for (size_t i = 0; i < n; i++)
			json_array_append_new(a, member_json(&m[i]));
		ctl_print_json(json_pack("{s:o}", "members", a));
	} else {
		printf("%-16s %-16s %-7s %5s %9s %9s  %-21s %-21s %s\n", "NAME", "ID", "STATE",
		       "INC", "HEARD", "SINCE", "CLUSTER", "CLIENT", "REST");
		for (size_t i = 0; i < n; i++) {
			char h[32];

			printf("%-16s %016" PRIx64 " %-7s %5" PRIu64
			       " %9s %8.1fs  %-21s %-21s %s\n",
			       m[i].name, m[i].node_id, shoal_member_state_name(m[i].state),
			       m[i].incarnation, heard(h, sizeof h, &m[i], i),
			       (double)m[i].state_age_ms / 1000, m[i].cluster_address,
			       m[i].client_address, m[i].rest_address);
		}
	}
	shoal_free(m);
	return 0;
}

/* ------------------------------------------------------------ main */

/* --tls-ca FILE and the others (doc/security.md, "TLS for clients"). */
static bool tls_flag(struct ctl *x, const char *a, const char *v)
{
	if (strcmp(a, "--tls-ca") == 0)
		x->o.tls_ca_file = v;
	else if (strcmp(a, "--tls-cert") == 0)
		x->o.tls_cert_file = v;
	else if (strcmp(a, "--tls-key") == 0)
		x->o.tls_key_file = v;
	else if (strcmp(a, "--tls-server-name") == 0)
		x->o.tls_server_name = v;
	else
		return false;
	return true;
}

/* --read-from connected|preferred|spread, --read-addr HOST:PORT
 * (doc/clients.md, "Where reads go"): 1 taken, 0 not these, -1 bad. */
static int read_flag(struct ctl *x, const char *a, const char *v)
{
	static const char *const where[] = {"connected", "preferred", "spread"};

	if (strcmp(a, "--read-addr") == 0) {
		x->o.read_addr = v;
		if (x->o.read_from == SHOAL_READ_CONNECTED)
			x->o.read_from = SHOAL_READ_PREFERRED;
		return 1;
	}
	if (strcmp(a, "--read-from") != 0)
		return 0;
	for (int k = 0; k < 3; k++)
		if (strcmp(v, where[k]) == 0) {
			x->o.read_from = (enum shoal_read_from)k;
			return 1;
		}
	ctl_usage_error("--read-from: '%s' is not connected, preferred or spread", v);
	return -1;
}

/* --api-key-file: the file's first line that is not blank nor a # comment,
 * kept in x->key for the process. */
static int read_key_file(struct ctl *x, const char *path)
{
	char line[512];
	FILE *f = fopen(path, "r");
	bool found = false;

	if (f == NULL)
		return ctl_usage_error("--api-key-file %s: %s", path, strerror(errno));
	while (!found && fgets(line, sizeof line, f) != NULL) {
		size_t n = strcspn(line, "\r\n");

		while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t'))
			n--;
		line[n] = '\0';
		found = n > 0 && line[0] != '#';
	}
	fclose(f);
	if (!found)
		return ctl_usage_error("--api-key-file %s: no key in it", path);
	snprintf(x->key, sizeof x->key, "%s", line);
	explicit_bzero(line, sizeof line);
	x->o.api_key = x->key;
	return 0;
}

static int global_options(struct ctl *x, int argc, char **argv)
{
	static const char *const levels[] = {"", "eventual", "read_your_writes", "strong",
					     "quorum"};
	static const char *const acks[] = {"", "leader", "one", "quorum", "all"};
	int i = 1, rf;

	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool found = false;

		if (strcmp(a, "--json") == 0) {
			x->json = true;
			continue;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
			return usage(stdout), -1;
		if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0)
			return printf("shoalctl (%s) %s\n", PACKAGE_NAME, PACKAGE_VERSION), -1;
		if (v == NULL)
			return ctl_usage_error("%s needs a value", a), -EXIT_USAGE;
		i++;
		if (strcmp(a, "-a") == 0 || strcmp(a, "--addr") == 0) {
			size_t l = strlen(x->addrs);

			if (l + strlen(v) + 2 > sizeof x->addrs)
				return ctl_usage_error("--addr: too many addresses"), -EXIT_USAGE;
			snprintf(x->addrs + l, sizeof x->addrs - l, "%s%s", l ? "," : "", v);
			x->addr = x->addrs;
		} else if (strcmp(a, "-t") == 0 || strcmp(a, "--timeout") == 0) {
			x->o.timeout_ms = atoi(v);
			if (x->o.timeout_ms <= 0)
				return ctl_usage_error("--timeout: '%s' is not a positive integer",
						       v),
				       -EXIT_USAGE;
		} else if (strcmp(a, "--consistency") == 0) {
			for (int k = 1; k < 5; k++)
				if (strcmp(v, levels[k]) == 0)
					x->o.consistency = (enum shoal_consistency)k, found = true;
			if (!found)
				return ctl_usage_error("unknown consistency '%s'", v), -EXIT_USAGE;
			if (x->o.consistency == SHOAL_CONSISTENCY_READ_YOUR_WRITES)
				return ctl_usage_error(
					       "--consistency read_your_writes: shoalctl keeps "
					       "no write token between runs; use strong to "
					       "see earlier writes"),
				       -EXIT_USAGE;
		} else if (strcmp(a, "--api-key-file") == 0) {
			if (read_key_file(x, v) != 0)
				return -EXIT_USAGE;
		} else if (tls_flag(x, a, v)) {
			continue;
		} else if ((rf = read_flag(x, a, v)) != 0) {
			if (rf < 0)
				return -EXIT_USAGE;
			continue;
		} else if (strcmp(a, "--ack") == 0) {
			for (int k = 1; k < 5; k++)
				if (strcmp(v, acks[k]) == 0)
					x->o.ack = (enum shoal_ack)k, found = true;
			if (!found)
				return ctl_usage_error("unknown ack '%s'", v), -EXIT_USAGE;
		} else {
			return ctl_usage_error("unknown option '%s'", a), -EXIT_USAGE;
		}
	}
	if (x->o.read_from == SHOAL_READ_PREFERRED && x->o.read_addr == NULL)
		return ctl_usage_error("--read-from preferred needs --read-addr"), -EXIT_USAGE;
	return i;
}

static int run(struct ctl *x, int argc, char **argv)
{
	const char *cmd = argv[0];

	if (strcmp(cmd, "help") == 0)
		return argc == 2 ? command_help(argv[1]) : (usage(stdout), 0);
	if (wants_help(argc, argv))
		return command_help(cmd);
	if (strcmp(cmd, "collection") == 0)
		return cmd_collection(x, argc, argv);
	if (strcmp(cmd, "upsert") == 0)
		return cmd_upsert(x, argc, argv);
	if (strcmp(cmd, "get") == 0)
		return cmd_get(x, argc, argv, false);
	if (strcmp(cmd, "delete") == 0)
		return cmd_get(x, argc, argv, true);
	if (strcmp(cmd, "search") == 0)
		return cmd_search(x, argc, argv);
	if (strcmp(cmd, "scroll") == 0)
		return cmd_scroll(x, argc, argv);
	if (strcmp(cmd, "count") == 0)
		return cmd_count(x, argc, argv);
	if (strcmp(cmd, "status") == 0 && argc == 1)
		return cmd_status(x);
	if (strcmp(cmd, "members") == 0 && argc == 1)
		return cmd_members(x);
	if (strcmp(cmd, "bench") == 0)
		return cmd_bench(x, argc, argv);
	if (strcmp(cmd, "cluster") == 0)
		return cmd_cluster(x, argc, argv);
	if (strcmp(cmd, "snapshot") == 0)
		return cmd_snapshot(x, argc, argv);
	return ctl_usage_error("unknown command '%s'", cmd);
}

int main(int argc, char **argv)
{
	struct ctl x = {0};
	int first, rv;

	shoal_options_init(&x.o);
	x.addr = getenv("SHOAL_ADDRS")  ? getenv("SHOAL_ADDRS")
		 : getenv("SHOAL_ADDR") ? getenv("SHOAL_ADDR")
					: "127.0.0.1:7472";
	first = global_options(&x, argc, argv);
	if (first < 0)
		return first == -1 ? 0 : -first;
	if (first >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	rv = run(&x, argc - first, argv + first);
	shoal_close(x.c);
	return rv;
}
