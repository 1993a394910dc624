/* The membership scenarios of issue 6 in the simulator, each over a fixed
 * list of seeds plus fresh random ones (printed: a failure prints the seed,
 * the end of its trace and the simrun command that replays it), and the
 * replay check: one seed twice gives the same trace hash, another seed a
 * different one.  SHOAL_SIM_SEEDS=N adds N fresh seeds per scenario
 * (default 3). */
#include "build.h"

#include "sim/scen.h"
#include "tap.h"
#include "util/rand.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define FIXED_SEEDS 12

static void run(const char *name, int nodes, uint64_t seed)
{
	const struct scenario *sc = scen_find(name);
	struct scen_opts o = {.seed = seed, .nodes = nodes, .report = stdout};
	struct scen_result r;
	int rc;

	if (sc == NULL)
		bail_out("no scenario %s", name);
	rc = sc->run(&o, &r);
	if (!ok(rc == 0, "%s, %d nodes, seed %" PRIu64 "%s%.3f s", name, r.nodes, seed,
		r.figure >= 0 ? ": " : "", r.figure >= 0 ? r.figure : 0))
		diag("%s\nreplay: t/sim/simrun --seed %" PRIu64 " --nodes %d --scenario %s", r.msg,
		     seed, r.nodes, name);
}

static void run_seeds(const char *name, int nodes, const uint64_t *fresh, int n_fresh)
{
	for (uint64_t s = 1; s <= FIXED_SEEDS; s++)
		run(name, nodes, s);
	for (int i = 0; i < n_fresh; i++)
		run(name, nodes, fresh[i]);
}

static void test_replay(void)
{
	const struct scenario *sc = scen_find("loss");
	struct scen_opts o = {.seed = 77, .report = stdout};
	struct scen_result a, b, c;

	sc->run(&o, &a);
	sc->run(&o, &b);
	o.seed = 78;
	sc->run(&o, &c);
	is_int(a.hash, b.hash, "replay: seed 77 twice gives trace hash %016" PRIx64, a.hash);
	isnt_int(a.hash, c.hash, "another seed gives another hash");
}

int main(void)
{
	const char *env = getenv("SHOAL_SIM_SEEDS");
	int n_fresh = env ? atoi(env) : 3;
	uint64_t *fresh = calloc((size_t)(n_fresh > 0 ? n_fresh : 1), sizeof *fresh);

	for (int i = 0; i < n_fresh; i++)
		if (sh_rand_os(&fresh[i]) != 0)
			bail_out("no entropy for fresh seeds");
	for (int i = 0; i < n_fresh; i++)
		fresh[i] %= 1000000000; /* short enough to type */
	diag("fresh seeds this run:");
	for (int i = 0; i < n_fresh; i++)
		diag("  %" PRIu64, fresh[i]);
	run_seeds("join", 3, fresh, n_fresh);
	run_seeds("join", 16, fresh, n_fresh);
	run_seeds("join", 64, fresh, n_fresh);
	run_seeds("kill", 8, fresh, n_fresh);
	run_seeds("loss", 8, fresh, n_fresh);
	/* live nodes declared dead because a refutation's gossip ran out
	 * before it reached one node (doc/membership.md, "Dissemination"):
	 * a fresh seed of CI, then a review's (2026-12-03) */
	run("loss", 8, 216581298);
	run("loss", 8, 300079);
	run("slow", 8, 701163);
	run("refute", 5, 500053);
	run("refute", 5, 602143);
	run_seeds("slow", 8, fresh, n_fresh);
	run_seeds("refute", 5, fresh, n_fresh);
	run_seeds("partition", 5, fresh, n_fresh);
	run_seeds("leave", 5, fresh, n_fresh);
	run_seeds("restart", 5, fresh, n_fresh);
	test_replay();
	free(fresh);
	return done_testing();
}
