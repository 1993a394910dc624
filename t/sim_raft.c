/* The election and replication scenarios of issue 7 in the simulator
 * (t/sim/raft_scen.c): every scenario over a fixed list of seeds, the
 * fault-heavy ones across cluster sizes 1, 2, 3, 4, 5 and 7, plus fresh
 * random seeds each run (printed; a failure prints the end of its trace and
 * the simrun command that replays it).  SHOAL_SIM_SEEDS=N sets the number of
 * fresh seeds per scenario (default 2).  Every run checks the safety
 * invariants of t/sim/raft_world.h after every step and must settle. */
#include "build.h"

#include "sim/scen.h"
#include "tap.h"
#include "util/rand.h"

#include <inttypes.h>
#include <stdlib.h>

#define FIXED_SEEDS 6

static int runs;

static void run(const char *name, int nodes, uint64_t seed)
{
	const struct scenario *sc = scen_find(name);
	struct scen_opts o = {.seed = seed, .nodes = nodes, .report = stdout};
	struct scen_result r;
	int rc;

	if (sc == NULL)
		bail_out("no scenario %s", name);
	rc = sc->run(&o, &r);
	runs++;
	if (!ok(rc == 0, "%s, %d nodes, seed %" PRIu64, name, r.nodes, seed))
		diag("%s\nreplay: t/sim/simrun --seed %" PRIu64 " --nodes %d --scenario %s", r.msg,
		     seed, r.nodes, name);
}

int main(void)
{
	static const int sizes[] = {1, 2, 3, 4, 5, 7};
	static const char *const heavy[] = {"raft-leader-crash", "raft-partition-flap",
					    "raft-torture"};
	const char *env = getenv("SHOAL_SIM_SEEDS");
	int n_fresh = env ? atoi(env) : 2;
	struct sh_rand rnd;
	uint64_t os_seed;

	if (sh_rand_os(&os_seed) != 0)
		os_seed = 12345;
	sh_rand_seed(&rnd, os_seed);
	for (const struct scenario *s = raft_scenarios; s->name != NULL; s++) {
		for (uint64_t seed = 1; seed <= FIXED_SEEDS; seed++)
			run(s->name, 0, seed);
		for (int i = 0; i < n_fresh; i++) {
			uint64_t seed = sh_rand_u64(&rnd) % 1000000000;

			diag("fresh seed %" PRIu64 " for %s", seed, s->name);
			run(s->name, 0, seed);
		}
	}
	for (size_t h = 0; h < sizeof heavy / sizeof heavy[0]; h++)
		for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++)
			for (uint64_t seed = 1; seed <= 3; seed++)
				run(heavy[h], sizes[z], 100 + seed);
	diag("%d simulated runs", runs);
	return done_testing();
}
