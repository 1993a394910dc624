/*
 * sim_node: the whole-node simulator (t/sim/node_world.h) — every
 * scripted scenario of issue 10 (each reproduced a bug before its fix) on
 * a few seeds, then many random seeds: sizes 1 to 7, every fault kind,
 * histories checked.  A fixed list of seeds runs every time, then fresh
 * ones from a random start (printed, with the command that replays a
 * failure).
 *
 *   SHOAL_SIM_NODE_SEEDS=N   random seeds (default 500; 150 under the
 *                            sanitizers, which run the node code 3-10x
 *                            slower)
 *   SHOAL_SIM_NODE_FIRST=S   start the random seeds at S
 *
 * `make check-sim-long` runs 10,000 (doc/simulator.md).
 */
#include "build.h"

#include "sim/node_world.h"
#include "tap.h"
#include "util/rand.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define DEFAULT_SEEDS 150
#else
#define DEFAULT_SEEDS 500
#endif
#define SCENARIO_SEEDS 4

static const uint64_t fixed[] = {13,   19,     204,       287,       391,       594,    858,
				 6322, 109398, 944616545, 872675029, 802192976, 2467814};

/* Scenario seeds beyond 1..SCENARIO_SEEDS that once failed. */
static const struct {
	const char *scenario;
	uint64_t seed;
} fixed_scen[] = {{"boot-chaos-4", 1050}};

static int failures;

static void run(uint64_t seed, const struct nworld_scenario *sc)
{
	const char *scenario = sc != NULL ? sc->name : NULL;
	struct nworld_opts o;
	struct nworld_result r;
	int rc;

	nworld_random_opts(seed, &o);
	if (sc != NULL) {
		o.scenario = sc->name;
		o.faults = 0;
		o.nodes = sc->nodes;
		o.bootstrap_expect = (unsigned)(sc->expect ? sc->expect : sc->nodes);
	}
	o.report = NULL;
	rc = nworld_run(seed, &o, &r);
	if (!ok(rc == 0,
		"%s seed %" PRIu64 ": %d nodes, faults %#x, %" PRIu64 " ops, %" PRIu64
		" crashes, %" PRIu64 " cuts, %" PRIu64 " leaders",
		scenario ? scenario : "random", seed, o.nodes, o.faults, r.ops, r.crashes,
		r.partitions, r.leaders)) {
		diag("%s", r.first);
		diag("replay: t/sim/noderun %s%s%" PRIu64, scenario ? "--scenario " : "",
		     scenario ? scenario : "", seed);
		if (scenario != NULL)
			diag("(with a space before the seed)");
		failures++;
	}
}

int main(void)
{
	const char *env = getenv("SHOAL_SIM_NODE_SEEDS"),
		   *first_env = getenv("SHOAL_SIM_NODE_FIRST");
	uint64_t n = env ? strtoull(env, NULL, 10) : DEFAULT_SEEDS, first;
	time_t t0 = time(NULL);

	for (const struct nworld_scenario *s = nworld_scenarios; s->name; s++)
		for (uint64_t seed = 1; seed <= SCENARIO_SEEDS; seed++)
			run(seed, s);
	for (size_t i = 0; i < sizeof fixed_scen / sizeof fixed_scen[0]; i++)
		for (const struct nworld_scenario *s = nworld_scenarios; s->name; s++)
			if (strcmp(s->name, fixed_scen[i].scenario) == 0)
				run(fixed_scen[i].seed, s);
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
		run(fixed[i], NULL);
	if (first_env != NULL) {
		first = strtoull(first_env, NULL, 10);
	} else if (sh_rand_os(&first) != 0) {
		first = (uint64_t)t0;
	}
	first = first % 1000000000 + 1000;
	diag("random seeds %" PRIu64 "..%" PRIu64, first, first + n - 1);
	for (uint64_t s = first; s < first + n; s++)
		run(s, NULL);
	diag("%d failed, %ld s", failures, (long)(time(NULL) - t0));
	return done_testing();
}
