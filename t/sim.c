/* Tests of the simulator itself (t/sim/sim.c) with a toy protocol: event
 * order and ties, the clock, every network fault, crash and restart, the
 * disk that loses unsynced writes, invariants, and bit-for-bit replay. */
#include "build.h"

#include "sim/sim.h"
#include "tap.h"
#include "util/alloc.h"

#include <string.h>

/* Toy: every node ticks every 10 ms and sends its tick count to the next
 * node; it records what it receives. */
struct toy {
	struct sim *sim;
	int node;
	uint64_t next, count, got, last_from_seq;
	bool out_of_order;
};

static int starts;

static void *toy_start(struct sim *sim, int node, void *arg)
{
	struct toy *t = sh_calloc(1, sizeof *t);

	t->sim = sim;
	t->node = node;
	t->next = sim_now(sim) + 10 * SIM_MS;
	starts++;
	return t;
}

static void toy_stop(void *inst)
{
	sh_free(inst);
}

static void toy_deliver(void *inst, uint64_t now, int from, enum sim_chan ch, const uint8_t *buf,
			size_t len)
{
	struct toy *t = inst;
	uint64_t seq;

	memcpy(&seq, buf, sizeof seq);
	if (ch == SIM_STREAM && seq < t->last_from_seq)
		t->out_of_order = true;
	t->last_from_seq = seq;
	t->got++;
}

static void toy_tick(void *inst, uint64_t now)
{
	struct toy *t = inst;
	uint64_t seq = ++t->count;
	int to = (t->node + 1) % sim_nodes(t->sim);

	sim_send(t->sim, t->node, to, SIM_DGRAM, (const uint8_t *)&seq, sizeof seq);
	sim_send(t->sim, t->node, to, SIM_STREAM, (const uint8_t *)&seq, sizeof seq);
	t->next = now + 10 * SIM_MS;
}

static uint64_t toy_deadline(void *inst)
{
	return ((struct toy *)inst)->next;
}

static const struct sim_proto toy = {toy_start, toy_stop, toy_deliver, toy_tick, toy_deadline};

static struct toy *inst(struct sim *sim, int i)
{
	return sim_node_instance(sim, i);
}

static int order[8], n_order;

static void record(struct sim *sim, void *arg)
{
	order[n_order++] = (int)(intptr_t)arg;
}

static void test_clock_and_ties(void)
{
	struct sim *sim = sim_new(1, 2, &toy, NULL);

	n_order = 0;
	sim_at(sim, 5 * SIM_SEC, record, (void *)3);
	sim_at(sim, 2 * SIM_SEC, record, (void *)1);
	sim_at(sim, 5 * SIM_SEC, record, (void *)4);
	sim_at(sim, 2 * SIM_SEC, record, (void *)2);
	is_int(sim_run_until(sim, 4 * SIM_SEC), 0, "run to 4 s");
	is_int(sim_now(sim), 4 * SIM_SEC, "the clock reads 4 s");
	is_int(n_order, 2, "two actions ran");
	is_int(sim_run_until(sim, 10 * SIM_SEC), 0, "run to 10 s");
	ok(order[0] == 1 && order[1] == 2 && order[2] == 3 && order[3] == 4,
	   "by time, ties in scheduling order");
	is_int(sim_steps(sim), 4, "four events, no idle stepping");
	sim_free(sim);
}

static void test_network(void)
{
	struct sim *sim = sim_new(2, 2, &toy, NULL);
	struct sim_link l = {.delay_us = 100, .jitter_us = 5000, .loss = 0.5, .dup = 0.2};
	struct sim_net_stats st;

	sim_link_set_all(sim, &l);
	sim_start(sim, 0);
	sim_start(sim, 1);
	sim_run_until(sim, 10 * SIM_SEC);
	sim_net_stats(sim, &st);
	is_int(st.sent[SIM_DGRAM], 2000, "1000 datagrams each way in 10 s");
	ok(st.lost > 850 && st.lost < 1150, "about half lost (%llu)", (unsigned long long)st.lost);
	ok(st.duplicated > 120 && st.duplicated < 280, "about 20%% of the rest duplicated (%llu)",
	   (unsigned long long)st.duplicated);
	is_int(st.delivered[SIM_STREAM], st.sent[SIM_STREAM] - 2,
	       "streams lose nothing (two still in flight)");
	ok(!inst(sim, 0)->out_of_order && !inst(sim, 1)->out_of_order,
	   "streams arrive in order despite 5 ms jitter");
	sim_block(sim, 0, 1, true);
	inst(sim, 1)->got = 0;
	inst(sim, 0)->got = 0;
	sim_run_until(sim, 11 * SIM_SEC);
	ok(inst(sim, 1)->got <= 4, "a one-way block stops 0 -> 1 (%llu in flight)",
	   (unsigned long long)inst(sim, 1)->got);
	ok(inst(sim, 0)->got > 100, "but not 1 -> 0");
	sim_heal(sim);
	sim_slow(sim, 1, 100 * SIM_MS);
	inst(sim, 1)->got = 0;
	sim_run_until(sim, 12 * SIM_SEC);
	ok(inst(sim, 1)->got > 120, "a slow node still gets its messages, late (%llu)",
	   (unsigned long long)inst(sim, 1)->got);
	sim_free(sim);
}

static void test_crash_restart(void)
{
	struct sim *sim = sim_new(3, 2, &toy, NULL);
	struct sim_net_stats st;

	starts = 0;
	sim_start(sim, 0);
	sim_start(sim, 1);
	sim_run_until(sim, SIM_SEC);
	sim_crash(sim, 1);
	ok(!sim_node_up(sim, 1) && sim_node_instance(sim, 1) == NULL, "crashed node is down");
	sim_run_until(sim, 2 * SIM_SEC);
	sim_net_stats(sim, &st);
	ok(st.to_down >= 190, "messages to it are dropped (%llu)", (unsigned long long)st.to_down);
	sim_start(sim, 1);
	is_int(starts, 3, "restart creates a new instance");
	is_int(inst(sim, 1)->count, 0, "with fresh state");
	sim_run_until(sim, 3 * SIM_SEC);
	is_int(inst(sim, 1)->count, 100, "that ticks again");
	sim_free(sim);
}

static void test_disk(void)
{
	struct sim *sim = sim_new(4, 1, &toy, NULL);
	char buf[64], name[16];
	int lost = 0, kept = 0, torn = 0;

	sim_start(sim, 0);
	is_int(sim_disk_read(sim, 0, "log", 0, buf, sizeof buf), -1, "no file yet");
	sim_disk_write(sim, 0, "log", 0, "durable.", 8);
	sim_disk_fsync(sim, 0, "log");
	sim_disk_write(sim, 0, "log", 8, "volatile", 8);
	is_int(sim_disk_read(sim, 0, "log", 0, buf, sizeof buf), 16, "reads see unsynced data");
	is_int(memcmp(buf, "durable.volatile", 16), 0, "content");
	for (int i = 0; i < 200; i++) {
		long n;

		snprintf(name, sizeof name, "f%d", i);
		sim_disk_write(sim, 0, name, 0, "durable.", 8);
		sim_disk_fsync(sim, 0, name);
		sim_disk_write(sim, 0, name, 8, "volatile", 8);
		sim_crash(sim, 0);
		n = sim_disk_read(sim, 0, name, 0, buf, sizeof buf);
		if (n < 8 || memcmp(buf, "durable.", 8) != 0)
			bail_out("fsynced data lost after a crash");
		lost += n == 8;
		kept += n == 16 && memcmp(buf + 8, "volatile", 8) == 0;
		torn += n > 8 && n < 16;
		sim_start(sim, 0);
	}
	pass("fsynced data survives 200 crashes");
	ok(lost > 20 && kept > 20 && torn > 10,
	   "unsynced data is lost (%d), kept (%d) or torn (%d)", lost, kept, torn);
	sim_free(sim);
}

static bool count_below(struct sim *sim, void *arg, char *why, size_t size)
{
	struct toy *t = sim_node_instance(sim, 0);

	if (t == NULL || t->count < 50)
		return true;
	snprintf(why, size, "count reached %llu", (unsigned long long)t->count);
	return false;
}

static void test_invariant(void)
{
	struct sim *sim = sim_new(5, 2, &toy, NULL);
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	sim_check_add(sim, "below 50", count_below, NULL);
	sim_start(sim, 0);
	is_int(sim_run_until(sim, 10 * SIM_SEC), -1, "a broken invariant stops the run");
	is_int(sim_now(sim), 500 * SIM_MS, "at the step that broke it (500 ms)");
	like(sim_failure(sim), "invariant 'below 50' broken: count reached 50", "with its message");
	sim_report(sim, f, 5);
	fclose(f);
	like(out, "seed 5: invariant", "the report starts with the seed");
	like(out, "last 5 trace lines", "and shows the trace tail");
	free(out);
	sim_free(sim);
}

static uint64_t run_hash(uint64_t seed)
{
	struct sim *sim = sim_new(seed, 3, &toy, NULL);
	struct sim_link l = {.delay_us = 100,
			     .jitter_us = 3000,
			     .loss = 0.1,
			     .dup = 0.1,
			     .reorder = 0.1,
			     .reorder_us = 20000};
	uint64_t h;

	sim_link_set_all(sim, &l);
	for (int i = 0; i < 3; i++)
		sim_start(sim, i);
	sim_run_until(sim, 5 * SIM_SEC);
	h = sim_trace_hash(sim);
	sim_free(sim);
	return h;
}

static void test_replay(void)
{
	uint64_t a = run_hash(7), b = run_hash(7), c = run_hash(8);

	is_int(a, b, "the same seed gives the same trace hash");
	isnt_int(a, c, "another seed gives another");
}

int main(void)
{
	test_clock_and_ties();
	test_network();
	test_crash_restart();
	test_disk();
	test_invariant();
	test_replay();
	return done_testing();
}
