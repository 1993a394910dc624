/* Unit tests of cluster/swim: the protocol step by step at exact times
 * (STYLE.md: "assert exact simulated times and states").  A tiny harness
 * holds three nodes a, b, c; what a node sends waits in an outbox until the
 * test delivers it (or drops it), so every message and every timer is
 * under the test's control.  Randomness is a fixed-seed generator. */
#include "build.h"

#include "cluster/swim.h"
#include "tap.h"
#include "util/alloc.h"
#include "util/rand.h"

#include <string.h>

#define N_NODES 3
#define OUTBOX  64

struct msg {
	enum swim_transport t;
	char to[32];
	uint8_t *buf;
	size_t len;
};

struct tnode {
	struct swim *s;
	char addr[32];
	struct sh_rand rand;
	struct msg out[OUTBOX];
	int n_out;
	enum swim_event_type ev[64];
	uint64_t ev_id[64];
	int n_ev;
};

static struct tnode nodes[N_NODES];

static void t_send(void *data, enum swim_transport t, const char *addr, const uint8_t *buf,
		   size_t len)
{
	struct tnode *n = data;
	struct msg *m = &n->out[n->n_out++];

	if (n->n_out > OUTBOX)
		bail_out("outbox overflow");
	m->t = t;
	snprintf(m->to, sizeof m->to, "%s", addr);
	m->buf = sh_malloc(len);
	memcpy(m->buf, buf, len);
	m->len = len;
}

static void t_event(void *data, const struct swim_event *ev)
{
	struct tnode *n = data;

	if (n->n_ev < 64) {
		n->ev[n->n_ev] = ev->type;
		n->ev_id[n->n_ev++] = ev->member ? ev->member->id : ev->cluster_id;
	}
}

static uint64_t t_random(void *data)
{
	return sh_rand_u64(&((struct tnode *)data)->rand);
}

static uint64_t id_of(int i)
{
	return 0xa0 + (uint64_t)i;
}

static void setup(const struct swim_config *cfg, uint64_t now)
{
	static const char *const names[] = {"a", "b", "c"};

	for (int i = 0; i < N_NODES; i++) {
		struct tnode *n = &nodes[i];
		struct swim_self self = {.id = id_of(i), .name = names[i]};
		struct swim_io io = {n, t_send, t_event, t_random};

		memset(n, 0, sizeof *n);
		snprintf(n->addr, sizeof n->addr, "10.0.0.%d:7471", i + 1);
		self.addr[0] = n->addr;
		sh_rand_seed(&n->rand, 42 + (uint64_t)i);
		if (swim_new(cfg, &self, &io, now, &n->s, NULL) != 0)
			bail_out("swim_new");
	}
}

static void clear_out(struct tnode *n)
{
	for (int i = 0; i < n->n_out; i++)
		sh_free(n->out[i].buf);
	n->n_out = 0;
}

static void teardown(void)
{
	for (int i = 0; i < N_NODES; i++) {
		clear_out(&nodes[i]);
		swim_free(nodes[i].s);
	}
}

static int node_at(const char *addr)
{
	for (int i = 0; i < N_NODES; i++)
		if (strcmp(nodes[i].addr, addr) == 0)
			return i;
	return -1;
}

/* Deliver everything node `from` has sent (to nodes not in `drop_to`). */
static int flush(int from, uint64_t now, unsigned drop_to)
{
	struct tnode *n = &nodes[from];
	struct msg out[OUTBOX];
	int cnt = n->n_out, delivered = 0;

	memcpy(out, n->out, sizeof out);
	n->n_out = 0;
	for (int i = 0; i < cnt; i++) {
		int to = node_at(out[i].to);
		const uint8_t *b = out[i].buf;
		size_t len = out[i].len;

		if (to >= 0 && !(drop_to & (1u << to))) {
			if (out[i].t == SWIM_TCP) {
				b += SWIM_FRAME_HDR;
				len -= SWIM_FRAME_HDR;
			}
			swim_recv(nodes[to].s, now, out[i].t, n->addr, b, len);
			delivered++;
		}
		sh_free(out[i].buf);
	}
	return delivered;
}

/* Deliver until quiet. */
static void settle(uint64_t now, unsigned drop_to)
{
	int moved;

	do {
		moved = 0;
		for (int i = 0; i < N_NODES; i++)
			moved += flush(i, now, drop_to);
	} while (moved > 0);
}

/* Tick every node each millisecond of [from, to) and deliver everything,
 * except messages to the nodes in drop_to. */
static void run_all(uint64_t from, uint64_t to, unsigned drop_to)
{
	for (uint64_t t = from; t < to; t++) {
		for (int i = 0; i < N_NODES; i++)
			if (swim_next_deadline(nodes[i].s) <= t)
				swim_tick(nodes[i].s, t);
		settle(t, drop_to);
	}
}

static bool saw_id(int i, enum swim_event_type t, uint64_t id)
{
	for (int k = 0; k < nodes[i].n_ev; k++)
		if (nodes[i].ev[k] == t && nodes[i].ev_id[k] == id)
			return true;
	return false;
}

static bool saw(int i, enum swim_event_type t, int about)
{
	return saw_id(i, t, id_of(about));
}

/* Does node i's outbox hold a datagram with a message of this type? */
static bool has_msg(int i, enum swim_msg_type type)
{
	bool found = false;

	for (int k = 0; k < nodes[i].n_out && !found; k++) {
		struct swim_packet p;

		if (nodes[i].out[k].t != SWIM_UDP ||
		    swim_wire_decode_packet(nodes[i].out[k].buf, nodes[i].out[k].len, &p, NULL))
			continue;
		for (size_t m = 0; m < p.n_msgs; m++)
			found = found || p.msgs[m].type == type;
		swim_wire_packet_free(&p);
	}
	return found;
}

static enum swim_state state_of(int i, int about)
{
	const struct swim_member *m = swim_member_find(nodes[i].s, id_of(about));

	return m ? m->state : (enum swim_state) - 1;
}

/* Join b and c to a at `now`. */
static void join_all(uint64_t now)
{
	const char *seed = nodes[0].addr;

	swim_join(nodes[1].s, now, &seed, 1, NULL);
	swim_join(nodes[2].s, now, &seed, 1, NULL);
	settle(now, 0);
}

static void test_config(void)
{
	struct swim_config c;
	struct sh_err err;

	swim_config_default(&c);
	ok(c.probe_interval_ms == 1000 && c.probe_timeout_ms == 500 && c.indirect_checks == 3 &&
		   c.suspicion_mult == 4 && c.suspicion_max_timeout_mult == 6 &&
		   c.gossip_interval_ms == 200 && c.gossip_nodes == 3 && c.retransmit_mult == 4 &&
		   c.push_pull_interval_ms == 30000 && c.awareness_max_multiplier == 8 &&
		   c.udp_mtu == 1400,
	   "defaults are memberlist's DefaultLANConfig");
	is_int(swim_config_check(&c, &err), 0, "and pass the check");
	c.probe_timeout_ms = 1000;
	is_int(swim_config_check(&c, &err), SH_EINVAL, "probe timeout >= interval refused");
	like(err.msg, "below probe_interval_ms", "with a reason");
	swim_config_default(&c);
	c.udp_mtu = 500;
	is_int(swim_config_check(&c, &err), SH_ERANGE, "tiny MTU refused");
}

static void test_join(void)
{
	struct swim_config cfg;

	swim_config_default(&cfg);
	setup(&cfg, 1000);
	swim_join(nodes[1].s, 1000, (const char *[]){nodes[0].addr}, 1, NULL);
	is_int(nodes[1].n_out, 1, "join sends one message at once");
	is_int(nodes[1].out[0].t, SWIM_TCP, "a push-pull over TCP");
	is_str(nodes[1].out[0].to, "10.0.0.1:7471", "to the seed");
	flush(1, 1001, 0);
	ok(saw(0, SWIM_EV_JOINED, 1), "the seed sees b join");
	is_int(nodes[0].n_out, 1, "the seed answers with its state");
	flush(0, 1002, 0);
	ok(saw(1, SWIM_EV_JOINED, 0), "b sees the seed");
	is_int(swim_member_count(nodes[1].s), 2, "b knows two members");
	swim_join(nodes[2].s, 1003, (const char *[]){nodes[0].addr}, 1, NULL);
	settle(1003, 0);
	is_int(swim_member_count(nodes[2].s), 3, "c learns both from the seed's state");
	teardown();
}

/* Find the probe a sends next and return its target (by address). */
static int probe_target(int from)
{
	for (int i = 0; i < nodes[from].n_out; i++)
		if (nodes[from].out[i].t == SWIM_UDP)
			return node_at(nodes[from].out[i].to);
	return -1;
}

static void test_probe_and_suspect(void)
{
	struct swim_config cfg;
	uint64_t t0, min, max;
	int target, other;
	struct swim_stats st;

	swim_config_default(&cfg);
	cfg.gossip_interval_ms = 100000; /* keep gossip out of the way */
	setup(&cfg, 0);
	join_all(0);
	/* Drive a until its first probe goes out. */
	t0 = swim_next_deadline(nodes[0].s);
	swim_tick(nodes[0].s, t0);
	while ((target = probe_target(0)) < 0) {
		clear_out(&nodes[0]);
		t0 = swim_next_deadline(nodes[0].s);
		swim_tick(nodes[0].s, t0);
	}
	other = 3 - target;
	ok(target == 1 || target == 2, "a probes b or c at %llu ms", (unsigned long long)t0);
	is_int(swim_next_deadline(nodes[0].s), t0 + 500, "next deadline: the probe timeout");
	clear_out(&nodes[0]); /* the ping is lost */
	swim_tick(nodes[0].s, t0 + 499);
	is_int(nodes[0].n_out, 0, "nothing at 499 ms");
	swim_tick(nodes[0].s, t0 + 500);
	is_int(nodes[0].n_out, 1, "at exactly 500 ms: one ping-req (one other member)");
	is_str(nodes[0].out[0].to, nodes[other].addr, "to the other member");
	is_int(swim_next_deadline(nodes[0].s), t0 + 1000, "then the end of the probe period");
	flush(0, t0 + 501, 0); /* the helper pings the target; that ping is lost */
	ok(has_msg(other, SWIM_PING), "the helper pings the target");
	clear_out(&nodes[other]);
	swim_tick(nodes[other].s, t0 + 1000);
	ok(!has_msg(other, SWIM_NACK), "no nack at 499 ms after the ping-req");
	swim_tick(nodes[0].s, t0 + 999);
	ok(!saw(0, SWIM_EV_SUSPECT, target), "no suspicion before the period ends");
	swim_tick(nodes[0].s, t0 + 1000);
	ok(saw(0, SWIM_EV_SUSPECT, target), "at exactly 1000 ms a suspects the target");
	is_int(state_of(0, target), SWIM_SUSPECT, "state suspect");
	is_int(swim_health_score(nodes[0].s), 1, "no nack came: health score 1 (Lifeguard)");
	swim_tick(nodes[other].s, t0 + 1001);
	ok(has_msg(other, SWIM_NACK), "the helper's nack goes out 500 ms after the ping-req");
	flush(other, t0 + 1001, 0);
	swim_get_stats(nodes[0].s, &st);
	ok(st.probe_failures == 1 && st.indirect_probes == 1 && st.suspicions == 1,
	   "stats: one failure, one indirect probe, one suspicion");
	swim_suspicion_bounds(nodes[0].s, 3, &min, &max);
	is_int(min, 4000, "suspicion min at n=3: 4 * 1 * 1000 ms");
	is_int(max, 24000, "suspicion max: 6 * min");
	/* With 3 members no confirmation can come (k = 0): min applies. */
	clear_out(&nodes[0]);
	swim_tick(nodes[0].s, t0 + 4999);
	is_int(state_of(0, target), SWIM_SUSPECT, "still suspect at 4999 ms");
	swim_tick(nodes[0].s, t0 + 5000);
	is_int(state_of(0, target), SWIM_DEAD, "dead at exactly 5000 ms (1000 + 4000)");
	ok(saw(0, SWIM_EV_DEAD, target), "with a dead event");
	teardown();
}

static void test_suspicion_shrinks(void)
{
	struct swim_config cfg;
	uint64_t min, max;

	swim_config_default(&cfg);
	setup(&cfg, 0);
	swim_suspicion_bounds(nodes[0].s, 10, &min, &max);
	is_int(min, 4000, "n=10: log10(10) = 1, min 4 s (memberlist's ~4 s)");
	swim_suspicion_bounds(nodes[0].s, 100, &min, &max);
	is_int(min, 8000, "n=100: min 8 s");
	is_int(max, 48000, "n=100: max 48 s");
	teardown();
}

static void test_refute(void)
{
	struct swim_config cfg;
	const struct swim_member *self;
	uint64_t t;

	swim_config_default(&cfg);
	setup(&cfg, 0);
	join_all(0);
	/* c's packets to b and all of b's answers are lost until c suspects b. */
	for (t = 1; t < 20000 && state_of(2, 1) != SWIM_SUSPECT; t++) {
		swim_tick(nodes[2].s, t);
		swim_tick(nodes[0].s, t);
		flush(2, t, 1u << 1);
		flush(0, t, 0);
		clear_out(&nodes[1]);
	}
	is_int(state_of(2, 1), SWIM_SUSPECT, "c suspects b when b's answers are lost");
	run_all(t, t + 3000, 0);
	self = swim_member_find(nodes[1].s, id_of(1));
	ok(self->incarnation >= 1, "b refuted: incarnation %llu",
	   (unsigned long long)self->incarnation);
	ok(saw(1, SWIM_EV_REFUTED, 1), "b reports the refutation");
	is_int(state_of(2, 1), SWIM_ALIVE, "c holds b alive again");
	ok(saw(2, SWIM_EV_ALIVE, 1), "with an alive event");
	ok(!saw(2, SWIM_EV_DEAD, 1) && !saw(0, SWIM_EV_DEAD, 1), "and nobody declared it dead");
	teardown();
}

static void test_leave_and_meta(void)
{
	struct swim_config cfg;
	const struct swim_member *m;
	struct sh_err err;
	uint8_t big[SWIM_META_MAX + 1] = {0};

	swim_config_default(&cfg);
	setup(&cfg, 0);
	join_all(0);
	run_all(1, 2000, 0);
	is_int(state_of(1, 2), SWIM_ALIVE, "b knows c after 2 s of gossip");
	is_int(swim_set_meta(nodes[1].s, 10, "role=voter", 10, &err), 0, "b sets its metadata");
	is_int(swim_set_meta(nodes[1].s, 10, big, sizeof big, &err), SH_ETOOBIG,
	       "metadata over 512 bytes refused");
	run_all(2000, 2300, 0);
	m = swim_member_find(nodes[0].s, id_of(1));
	ok(m && m->meta_len == 10 && memcmp(m->meta, "role=voter", 10) == 0,
	   "a reads b's metadata");
	ok(saw(0, SWIM_EV_UPDATED, 1), "with an updated event");
	swim_leave(nodes[2].s, 2300);
	ok(swim_leave_pending(nodes[2].s), "c's leave is pending");
	settle(2300, 0);
	is_int(state_of(0, 2), SWIM_LEFT, "a sees c left");
	is_int(state_of(1, 2), SWIM_LEFT, "b sees c left");
	ok(!saw(0, SWIM_EV_DEAD, 2), "not dead");
	teardown();
}

static void test_cluster_id(void)
{
	struct swim_config cfg;
	struct swim_stats st;

	swim_config_default(&cfg);
	setup(&cfg, 0);
	swim_set_cluster_id(nodes[0].s, 0x1111);
	swim_join(nodes[1].s, 0, (const char *[]){nodes[0].addr}, 1, NULL);
	settle(0, 0);
	is_int(swim_cluster_id(nodes[1].s), 0x1111,
	       "a node without a cluster id learns its seed's");
	ok(saw_id(1, SWIM_EV_CLUSTER_ID, 0x1111), "with an event");
	swim_set_cluster_id(nodes[2].s, 0x2222);
	swim_join(nodes[2].s, 0, (const char *[]){nodes[0].addr}, 1, NULL);
	settle(0, 0);
	swim_get_stats(nodes[0].s, &st);
	is_int(st.refused, 1, "a refuses a node of another cluster");
	ok(saw_id(0, SWIM_EV_REFUSED, 0x2222), "and reports it");
	ok(saw_id(2, SWIM_EV_REFUSED, 0x1111), "the refused node is told, and reports it too");
	is_int(swim_member_count(nodes[0].s), 2, "which does not become a member");
	is_int(swim_cluster_id(nodes[2].s), 0x2222, "the other node keeps its id");
	teardown();
}

/* Two nodes with one id (a copied data dir): each sees the other announce
 * its id from another address and says so, instead of refuting for ever. */
static void test_id_conflict(void)
{
	struct swim_config cfg;
	struct swim_self self = {.id = id_of(0), .name = "c", .addr = {nodes[2].addr}};
	struct swim_io io = {&nodes[2], t_send, t_event, t_random};
	uint64_t inc;

	swim_config_default(&cfg);
	setup(&cfg, 1000);
	swim_free(nodes[2].s);
	self.addr[0] = nodes[2].addr;
	if (swim_new(&cfg, &self, &io, 1000, &nodes[2].s, NULL) != 0)
		bail_out("swim_new");
	swim_join(nodes[1].s, 1000, (const char *[]){nodes[0].addr}, 1, NULL);
	settle(1000, 0);
	swim_join(nodes[2].s, 1001, (const char *[]){nodes[0].addr}, 1, NULL);
	settle(1001, 0);
	ok(saw_id(2, SWIM_EV_CONFLICT, 0), "the newcomer sees another node with its id");
	ok(saw_id(0, SWIM_EV_CONFLICT, 0), "and so does the node it copied");
	inc = swim_self_member(nodes[0].s)->incarnation;
	run_all(1002, 3000, 0);
	is_int(swim_self_member(nodes[0].s)->incarnation, inc,
	       "neither refutes the other for ever");
	teardown();
}

/* A node restarts at a new address while the others still hold its old
 * record alive: nothing answers to its id there, so the record is stale —
 * no conflict, the node refutes it and the others take the new address. */
static void test_stale_self(void)
{
	struct swim_config cfg;
	struct swim_self self = {.id = id_of(2), .name = "c"};
	struct swim_io io = {&nodes[2], t_send, t_event, t_random};
	const struct swim_member *m;

	swim_config_default(&cfg);
	setup(&cfg, 1000);
	swim_join(nodes[1].s, 1000, (const char *[]){nodes[0].addr}, 1, NULL);
	swim_join(nodes[2].s, 1000, (const char *[]){nodes[0].addr}, 1, NULL);
	settle(1000, 0);
	swim_free(nodes[2].s);
	clear_out(&nodes[2]);
	nodes[2].n_ev = 0;
	snprintf(nodes[2].addr, sizeof nodes[2].addr, "10.0.0.9:7471");
	self.addr[0] = nodes[2].addr;
	if (swim_new(&cfg, &self, &io, 1001, &nodes[2].s, NULL) != 0)
		bail_out("swim_new");
	swim_join(nodes[2].s, 1001, (const char *[]){nodes[0].addr}, 1, NULL);
	settle(1001, 0);
	ok(swim_self_member(nodes[2].s)->incarnation == 0,
	   "a restarted node does not refute its old record before checking it");
	run_all(1002, 1002 + cfg.probe_timeout_ms + 10, 0);
	ok(!saw_id(2, SWIM_EV_CONFLICT, 0), "nothing answers at its old address: no conflict");
	ok(swim_self_member(nodes[2].s)->incarnation > 0, "it refutes the stale record");
	run_all(1002 + cfg.probe_timeout_ms + 10, 1002 + 3 * cfg.probe_interval_ms, 0);
	m = swim_member_find(nodes[0].s, id_of(2));
	ok(m != NULL && strcmp(m->addr[0], "10.0.0.9:7471") == 0,
	   "and the others take its new address");
	teardown();
}

/* A copy of b (b's id at another address) joins through a: a keeps b's
 * record and reports the copy; the copy is told it is one; b is left
 * alone (its incarnation and address stay). */
static void test_copy_reported(void)
{
	struct swim_config cfg;
	struct swim_self self = {.id = id_of(1), .name = "b"};
	struct swim_io io = {&nodes[2], t_send, t_event, t_random};
	const struct swim_member *m;
	uint64_t inc;

	swim_config_default(&cfg);
	setup(&cfg, 1000);
	swim_join(nodes[1].s, 1000, (const char *[]){nodes[0].addr}, 1, NULL);
	settle(1000, 0);
	inc = swim_self_member(nodes[1].s)->incarnation;
	swim_free(nodes[2].s);
	self.addr[0] = nodes[2].addr;
	if (swim_new(&cfg, &self, &io, 1001, &nodes[2].s, NULL) != 0)
		bail_out("swim_new");
	swim_join(nodes[2].s, 1001, (const char *[]){nodes[0].addr}, 1, NULL);
	run_all(1001, 1001 + cfg.probe_timeout_ms + 10, 0);
	ok(saw(0, SWIM_EV_CONFLICT, 1), "the seed reports a second node with b's id");
	ok(saw_id(2, SWIM_EV_CONFLICT, 0), "the copy learns that b answers to its id");
	m = swim_member_find(nodes[0].s, id_of(1));
	ok(m != NULL && strcmp(m->addr[0], nodes[1].addr) == 0, "the seed keeps b's address");
	is_int(swim_self_member(nodes[1].s)->incarnation, inc, "b did not have to refute");
	teardown();
}

static void test_garbage(void)
{
	struct swim_config cfg;
	struct swim_stats st;
	const uint8_t junk[] = {0x12, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01};

	swim_config_default(&cfg);
	setup(&cfg, 0);
	swim_recv(nodes[0].s, 1, SWIM_UDP, "1.2.3.4:5", junk, sizeof junk);
	swim_recv(nodes[0].s, 1, SWIM_TCP, "1.2.3.4:5", junk, sizeof junk);
	swim_recv(nodes[0].s, 1, SWIM_UDP, "1.2.3.4:5", junk, 0);
	swim_get_stats(nodes[0].s, &st);
	is_int(st.decode_errors, 3, "malformed input is counted and dropped");
	is_int(nodes[0].n_out, 0, "and not answered");
	teardown();
}

int main(void)
{
	test_config();
	test_join();
	test_probe_and_suspect();
	test_suspicion_shrinks();
	test_refute();
	test_leave_and_meta();
	test_cluster_id();
	test_id_conflict();
	test_stale_self();
	test_copy_reported();
	test_garbage();
	return done_testing();
}
