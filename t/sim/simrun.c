/*
 * simrun: run one simulator scenario from the command line.
 *
 *   t/sim/simrun --seed S --nodes N --scenario NAME [--steps K]
 *                [--seeds K] [--trace] [--set KEY=VALUE ...] [--list]
 *
 * Prints one line per run (result, the scenario's figure, traffic, trace
 * hash).  A failure prints the seed, what broke, the last trace lines and
 * the command that replays it, and exits 1.  --seeds K runs seeds S..S+K-1
 * and adds the median, mean and maximum of the figure (the benchmarks in
 * doc/benchmarks.md).  --trace writes every trace line to stdout.  --set
 * changes a membership setting (a field of struct swim_config, e.g.
 * --set awareness_max_multiplier=1 turns Lifeguard's LHM off).
 * Built by make, not installed.
 */
#include "build.h"

#include "sim/scen.h"

#include "util/alloc.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *name;
	size_t off;
} knobs[] = {
#define K(f)                                                                                       \
	{                                                                                          \
#f, offsetof(struct swim_config, f)                                                \
	}
	K(probe_interval_ms),
	K(probe_timeout_ms),
	K(indirect_checks),
	K(suspicion_mult),
	K(suspicion_max_timeout_mult),
	K(gossip_interval_ms),
	K(gossip_nodes),
	K(retransmit_mult),
	K(push_pull_interval_ms),
	K(awareness_max_multiplier),
	K(udp_mtu),
	K(rejoin_interval_ms),
	K(gossip_to_dead_ms),
#undef K
};

static int set_knob(struct swim_config *cfg, const char *kv)
{
	const char *eq = strchr(kv, '=');

	for (size_t i = 0; eq && i < sizeof knobs / sizeof knobs[0]; i++)
		if (strlen(knobs[i].name) == (size_t)(eq - kv) &&
		    strncmp(knobs[i].name, kv, (size_t)(eq - kv)) == 0) {
			*(uint32_t *)((char *)cfg + knobs[i].off) =
				(uint32_t)strtoul(eq + 1, NULL, 10);
			return 0;
		}
	fprintf(stderr, "simrun: unknown setting '%s'\n", kv);
	return -1;
}

static void usage(void)
{
	fprintf(stderr, "usage: simrun --seed S --scenario NAME [--nodes N] [--steps K] "
			"[--seeds K] [--trace] [--set KEY=VALUE] [--list]\n");
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void summary(const char *name, double *figs, int n)
{
	double sum = 0;

	if (n == 0)
		return;
	qsort(figs, (size_t)n, sizeof *figs, cmp_double);
	for (int i = 0; i < n; i++)
		sum += figs[i];
	printf("summary %s: %d runs, figure median %.3f s, mean %.3f s, min %.3f s, max %.3f s\n",
	       name, n, figs[n / 2], sum / n, figs[0], figs[n - 1]);
}

struct args {
	struct scen_opts o;
	struct swim_config cfg;
	const struct scenario *sc;
	long seeds;
};

/* Returns -1 to go on, or an exit status. */
static int parse_args(int argc, char **argv, struct args *a)
{
	for (int i = 1; i < argc; i++) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(k, "--list") == 0) {
			for (const struct scenario *s = sim_scenarios; s->name; s++)
				printf("%-22s %3d nodes  %s\n", s->name, s->nodes, s->what);
			for (const struct scenario *s = raft_scenarios; s->name; s++)
				printf("%-22s %3d nodes  %s\n", s->name, s->nodes, s->what);
			return 0;
		}
		if (strcmp(k, "--trace") == 0) {
			a->o.trace = stdout;
			continue;
		}
		if (v == NULL)
			return usage(), 2;
		i++;
		if (strcmp(k, "--seed") == 0)
			a->o.seed = strtoull(v, NULL, 0);
		else if (strcmp(k, "--nodes") == 0)
			a->o.nodes = atoi(v);
		else if (strcmp(k, "--steps") == 0)
			a->o.steps = strtoull(v, NULL, 0);
		else if (strcmp(k, "--seeds") == 0)
			a->seeds = atol(v);
		else if (strcmp(k, "--scenario") == 0 && (a->sc = scen_find(v)) == NULL)
			return fprintf(stderr, "simrun: no scenario '%s' (see --list)\n", v), 2;
		else if (strcmp(k, "--set") == 0 && set_knob(&a->cfg, v) != 0)
			return 2;
		else if (strcmp(k, "--scenario") != 0 && strcmp(k, "--set") != 0)
			return usage(), 2;
	}
	if (a->sc == NULL || a->seeds < 1 || a->o.nodes < 0 || a->o.nodes > 4096)
		return usage(), 2;
	return -1;
}

static void print_result(const struct scenario *sc, uint64_t seed, const struct scen_result *r,
			 int rc)
{
	printf("%s seed %" PRIu64 " nodes %d: %s", sc->name, seed, r->nodes,
	       rc == 0 ? "ok" : "FAILED");
	if (r->figure >= 0)
		printf(", %s %.3f s", r->figure_name ? r->figure_name : "figure", r->figure);
	printf(", simulated %.1f s, %.1f msgs and %.0f bytes per node per s, "
	       "%" PRIu64 " suspicions, %" PRIu64 " refutations, trace hash %016" PRIx64 "\n",
	       r->sim_s, r->msgs_per_node_s, r->bytes_per_node_s, r->suspicions, r->refutations,
	       r->hash);
	if (rc == 0 && r->msg[0] != '\0')
		printf("  %s\n", r->msg);
	if (rc != 0)
		printf("replay: t/sim/simrun --seed %" PRIu64 " --nodes %d --scenario %s\n", seed,
		       r->nodes, sc->name);
}

int main(int argc, char **argv)
{
	struct args a = {.o = {.seed = 1, .report = stdout}, .seeds = 1};
	int failed = 0, n_figs = 0, rv;
	double *figs;

	swim_config_default(&a.cfg);
	a.o.cfg = &a.cfg;
	if ((rv = parse_args(argc, argv, &a)) >= 0)
		return rv;
	if ((figs = sh_calloc((size_t)a.seeds, sizeof *figs)) == NULL)
		return 1;
	for (long k = 0; k < a.seeds; k++, a.o.seed++) {
		struct scen_result r;
		int rc = a.sc->run(&a.o, &r);

		print_result(a.sc, a.o.seed, &r, rc);
		if (rc != 0)
			failed++;
		else if (r.figure >= 0)
			figs[n_figs++] = r.figure;
	}
	if (a.seeds > 1)
		summary(a.sc->name, figs, n_figs);
	sh_free(figs);
	return failed ? 1 : 0;
}
