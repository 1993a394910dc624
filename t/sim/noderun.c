/*
 * noderun: run the whole-node simulator (node_world.h) from the command
 * line.
 *
 *   t/sim/noderun [--seeds K] [--trace] [--log] [--nodes N] [--faults MASK]
 *                 [--scenario NAME] SEED
 *   t/sim/noderun --list
 *
 * Runs seeds SEED..SEED+K-1 (K 1 by default) with the options each seed
 * draws (nworld_random_opts; --nodes and --faults override them) and
 * prints one line per run.  A failure prints the violation, the history's
 * report, the last trace lines and the replay command, and exits 1.
 * --trace writes every trace line to stdout, --log the nodes' debug log to
 * stderr.  --scenario runs a scripted scenario (node_scen.c; --list names
 * them) instead of the random load and faults.  Built by make, not
 * installed.
 */
#include "build.h"

#include "sim/node_world.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
	fprintf(stderr, "usage: noderun [--seeds K] [--trace] [--log] [--nodes N] "
			"[--faults MASK] [--scenario NAME] SEED\n       noderun --list\n");
	exit(2);
}

int main(int argc, char **argv)
{
	uint64_t seed = 0, seeds = 1, failed = 0;
	int nodes = 0;
	long faults = -1;
	bool trace = false, log = false, have_seed = false;
	const char *scenario = NULL;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--seeds") == 0 && i + 1 < argc)
			seeds = strtoull(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--nodes") == 0 && i + 1 < argc)
			nodes = atoi(argv[++i]);
		else if (strcmp(argv[i], "--faults") == 0 && i + 1 < argc)
			faults = strtol(argv[++i], NULL, 0);
		else if (strcmp(argv[i], "--trace") == 0)
			trace = true;
		else if (strcmp(argv[i], "--log") == 0)
			log = true;
		else if (strcmp(argv[i], "--scenario") == 0 && i + 1 < argc)
			scenario = argv[++i];
		else if (strcmp(argv[i], "--list") == 0) {
			for (const struct nworld_scenario *s = nworld_scenarios; s->name; s++)
				printf("%-24s %d nodes  %s\n", s->name, s->nodes, s->what);
			return 0;
		} else if (argv[i][0] != '-' && !have_seed) {
			seed = strtoull(argv[i], NULL, 10);
			have_seed = true;
		} else
			usage();
	}
	if (!have_seed)
		usage();
	for (uint64_t s = seed; s < seed + seeds; s++) {
		struct nworld_opts o;
		struct nworld_result r;

		nworld_random_opts(s, &o);
		if (nodes > 0)
			o.nodes = nodes;
		/* bootstrap_expect must stay more than half of the nodes */
		if (nodes > 0 && (o.bootstrap_expect > (unsigned)nodes ||
				  o.bootstrap_expect <= (unsigned)nodes / 2))
			o.bootstrap_expect = (unsigned)nodes;
		if (faults >= 0)
			o.faults = (unsigned)faults;
		if (scenario != NULL) {
			o.scenario = scenario;
			o.faults = 0;
			o.nodes = nodes > 0 ? nodes : 3;
			o.bootstrap_expect = (unsigned)o.nodes;
			for (const struct nworld_scenario *sc = nworld_scenarios; sc->name; sc++)
				if (strcmp(sc->name, scenario) == 0 && nodes == 0) {
					o.nodes = sc->nodes;
					o.bootstrap_expect =
						(unsigned)(sc->expect ? sc->expect : sc->nodes);
				}
		}
		o.trace = trace ? stdout : NULL;
		o.log = log;
		o.report = stdout;
		nworld_run(s, &o, &r);
		printf("seed %" PRIu64 ": %s, %d nodes (expect %u), faults %#x: %" PRIu64
		       " ops (%" PRIu64 " writes ok, %" PRIu64 " unknown, %" PRIu64
		       " reads ok, %" PRIu64 " lost, %" PRIu64 " retries, %" PRIu64
		       " deduplicated), %" PRIu64 " crashes, %" PRIu64 " pauses, %" PRIu64
		       " cuts, %" PRIu64 " leaders, term %" PRIu64 ", applied %" PRIu64
		       ", %.1f s simulated, %" PRIu64 " events, trace %016" PRIx64 "\n",
		       s, r.violations ? "FAIL" : "ok", o.nodes, o.bootstrap_expect, o.faults,
		       r.ops, r.writes_ok, r.writes_unknown, r.reads_ok, r.lost_answers, r.retries,
		       r.dedups, r.crashes, r.pauses, r.partitions, r.leaders, r.max_term,
		       r.applied, (double)r.sim_ms / 1000, r.events, r.trace_hash);
		failed += r.violations != 0;
		fflush(stdout);
	}
	if (seeds > 1)
		printf("%" PRIu64 " seeds, %" PRIu64 " failed\n", seeds, failed);
	return failed ? 1 : 0;
}
