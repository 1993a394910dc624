/*
 * scen: the membership scenarios of the simulator (issue 6) and the table
 * simrun reads.  Times below are simulated; "converge" means every node
 * that is up holds exactly the nodes that are up as live members.
 *
 * Every scenario starts node 0 and then the others at random times within
 * a second, each joining node 0, and waits for convergence first.
 */
#include "build.h"

#include "sim/scen.h"
#include "sim/swim_world.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

#define JOIN_LIMIT (120 * SIM_SEC)

struct run {
	struct swim_world *w;
	struct sim *sim;
	const struct scen_opts *o;
	struct scen_result *r;
	int n;
	uint64_t mark_t;
	struct sim_net_stats mark;
};

static int fail(struct run *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct run *x, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	sim_fail(x->sim, "%s", msg);
	return -1;
}

/* Start of the steady window over which traffic is measured. */
static void mark(struct run *x)
{
	x->mark_t = sim_now(x->sim);
	sim_net_stats(x->sim, &x->mark);
}

static void rates(struct run *x)
{
	struct sim_net_stats st;
	double dt = (double)(sim_now(x->sim) - x->mark_t) / SIM_SEC;

	sim_net_stats(x->sim, &st);
	if (dt <= 0)
		return;
	x->r->msgs_per_node_s =
		(double)(st.sent[0] + st.sent[1] - x->mark.sent[0] - x->mark.sent[1]) / x->n / dt;
	x->r->bytes_per_node_s =
		(double)(st.bytes[0] + st.bytes[1] - x->mark.bytes[0] - x->mark.bytes[1]) / x->n /
		dt;
}

static int begin(struct run *x, const struct scen_opts *o, struct scen_result *r, int n,
		 const struct sim_link *link)
{
	struct swim_config cfg;
	uint64_t t;
	char desc[400];

	if (o->cfg != NULL)
		cfg = *o->cfg;
	else
		swim_config_default(&cfg);
	memset(r, 0, sizeof *r);
	*x = (struct run){.o = o, .r = r, .n = n};
	r->nodes = n;
	r->figure = -1;
	if ((x->w = sw_new(o->seed, n, &cfg)) == NULL) {
		snprintf(r->msg, sizeof r->msg, "out of memory");
		return -1;
	}
	x->sim = x->w->sim;
	sim_set_step_limit(x->sim, o->steps);
	sim_trace_to(x->sim, o->trace);
	if (link != NULL)
		sim_link_set_all(x->sim, link);
	sw_start_all(x->w, SIM_SEC);
	t = sw_run_to_convergence(x->w, JOIN_LIMIT);
	if (t == SIM_NEVER) {
		sw_describe(x->w, desc, sizeof desc);
		return fail(x, "no convergence by %llu s (live counts %s)",
			    (unsigned long long)(JOIN_LIMIT / SIM_SEC), desc);
	}
	r->figure = (double)(sim_now(x->sim) - x->w->last_start) / SIM_SEC;
	r->figure_name = "join convergence after the last start";
	return 0;
}

static int end(struct run *x, int rc)
{
	struct scen_result *r = x->r;

	if (x->w == NULL)
		return -1;
	r->hash = sim_trace_hash(x->sim);
	r->sim_s = (double)sim_now(x->sim) / SIM_SEC;
	r->suspicions = x->w->suspects;
	r->refutations = x->w->refutes;
	if (sim_failure(x->sim) != NULL) {
		snprintf(r->msg, sizeof r->msg, "%s", sim_failure(x->sim));
		if (x->o->report != NULL)
			sim_report(x->sim, x->o->report, 40);
		rc = -1;
	}
	sw_free(x->w);
	return rc;
}

/* Run t more, measuring traffic; invariants hold throughout. */
static int steady(struct run *x, uint64_t t)
{
	mark(x);
	if (sim_run_until(x->sim, sim_now(x->sim) + t) != 0)
		return -1;
	rates(x);
	return 0;
}

/* ------------------------------------------------------------------ scenarios */

static int scen_join(const struct scen_opts *o, struct scen_result *r)
{
	struct run x;
	int rc = begin(&x, o, r, o->nodes ? o->nodes : 16, NULL);

	if (rc == 0)
		rc = steady(&x, 30 * SIM_SEC);
	return end(&x, rc);
}

struct dead_wait {
	struct swim_world *w;
	int victim;
};

/* Some up node has not declared the victim dead (or left) yet. */
static bool not_all_see(struct sim *sim, void *arg)
{
	struct dead_wait *d = arg;
	struct swim_world *w = d->w;

	for (int i = 0; i < w->n; i++) {
		const struct sw_node_obs *ob = &w->obs[i * w->n + d->victim];

		if (i != d->victim && sim_node_up(sim, i) && ob->dead_at == 0 && ob->left_at == 0)
			return true;
	}
	return false;
}

/* Kill one node; every other declares it dead.  Figure: time until the
 * last one does. */
static int scen_kill(const struct scen_opts *o, struct scen_result *r)
{
	struct run x;
	struct dead_wait d;
	uint64_t t0, last = 0;
	int rc = begin(&x, o, r, o->nodes ? o->nodes : 8, NULL);

	if (rc != 0)
		return end(&x, rc);
	if ((rc = steady(&x, 10 * SIM_SEC)) != 0)
		return end(&x, rc);
	d = (struct dead_wait){x.w, 1 + (int)sh_rand_below(sim_rand(x.sim), (uint64_t)x.n - 1)};
	sw_allow_dead(x.w, d.victim);
	t0 = sim_now(x.sim);
	sim_crash(x.sim, d.victim);
	rc = sim_run_while(x.sim, not_all_see, &d, t0 + 120 * SIM_SEC);
	if (rc == 1)
		rc = fail(&x, "n%d killed at %.3f s is not declared dead by all after 120 s",
			  d.victim, (double)t0 / SIM_SEC);
	for (int i = 0; rc == 0 && i < x.n; i++)
		if (i != d.victim && x.w->obs[i * x.n + d.victim].dead_at > last)
			last = x.w->obs[i * x.n + d.victim].dead_at;
	if (rc == 0) {
		r->figure = (double)(last - t0) / SIM_SEC;
		r->figure_name = "time until every live node declares the killed node dead";
	}
	return end(&x, rc);
}

/* 10% loss on every link (plus a little duplication and reordering): no
 * live node is ever declared dead. */
static int scen_loss(const struct scen_opts *o, struct scen_result *r)
{
	const struct sim_link lossy = {.delay_us = 100,
				       .jitter_us = 400,
				       .loss = 0.10,
				       .dup = 0.01,
				       .reorder = 0.05,
				       .reorder_us = 20000};
	struct run x;
	int rc = begin(&x, o, r, o->nodes ? o->nodes : 8, &lossy);

	if (rc == 0)
		rc = steady(&x, 300 * SIM_SEC);
	return end(&x, rc);
}

struct health_watch {
	struct swim_world *w;
	int node, max;
};

/* Not an invariant: records the node's highest Lifeguard health score. */
static bool watch_health(struct sim *sim, void *arg, char *why, size_t size)
{
	struct health_watch *h = arg;
	struct swim *s = sw_swim(h->w, h->node);

	if (s != NULL && swim_health_score(s) > h->max)
		h->max = swim_health_score(s);
	return true;
}

/* One node handles its messages up to 1.5 s late: Lifeguard keeps it from
 * being declared dead and from burying others, and its local health score
 * rises (unless awareness is off). */
static int scen_slow(const struct scen_opts *o, struct scen_result *r)
{
	struct run x;
	struct health_watch h;
	int rc = begin(&x, o, r, o->nodes ? o->nodes : 8, NULL);

	if (rc != 0)
		return end(&x, rc);
	h = (struct health_watch){x.w, 1, 0};
	sim_check_add(x.sim, "health watch", watch_health, &h);
	sim_slow(x.sim, 1, 1500 * SIM_MS);
	rc = steady(&x, 300 * SIM_SEC);
	if (rc == 0 && x.w->cfg.awareness_max_multiplier > 1 && h.max == 0)
		rc = fail(&x, "the slow node's health score never rose");
	return end(&x, rc);
}

static bool nobody_suspects(struct sim *sim, void *arg)
{
	struct dead_wait *d = arg;

	for (int i = 0; i < d->w->n; i++)
		if (d->w->obs[i * d->w->n + d->victim].suspect_at != 0)
			return false;
	return true;
}

/* Every other up node holds the victim ALIVE at an incarnation >= min. */
static bool not_all_alive_at(struct swim_world *w, int victim, uint64_t min)
{
	for (int i = 0; i < w->n; i++) {
		const struct swim_member *m;

		if (i == victim || !sim_node_up(w->sim, i))
			continue;
		m = swim_member_find(sw_swim(w, i), w->ids[victim]);
		if (m == NULL || m->state != SWIM_ALIVE || m->incarnation < min)
			return true;
	}
	return false;
}

static bool not_refuted(struct sim *sim, void *arg)
{
	struct dead_wait *d = arg;

	return not_all_alive_at(d->w, d->victim, 1);
}

static void isolate(struct sim *sim, int node, bool blocked)
{
	for (int i = 0; i < sim_nodes(sim); i++) {
		sim_block(sim, node, i, blocked);
		sim_block(sim, i, node, blocked);
	}
	sim_tracef(sim, node, blocked ? "isolated" : "reconnected");
}

/* Cut one node off until someone suspects it, then reconnect it: it
 * refutes, and nobody declares it dead. */
static int scen_refute(const struct scen_opts *o, struct scen_result *r)
{
	struct run x;
	struct dead_wait d;
	int rc = begin(&x, o, r, o->nodes ? o->nodes : 5, NULL);

	if (rc != 0)
		return end(&x, rc);
	d = (struct dead_wait){x.w, x.n - 2};
	isolate(x.sim, d.victim, true);
	if ((rc = sim_run_while(x.sim, nobody_suspects, &d, sim_now(x.sim) + 30 * SIM_SEC)) == 1)
		rc = fail(&x, "nobody suspected the isolated n%d within 30 s", d.victim);
	if (rc != 0)
		return end(&x, rc);
	isolate(x.sim, d.victim, false);
	if ((rc = sim_run_while(x.sim, not_refuted, &d, sim_now(x.sim) + 30 * SIM_SEC)) == 1)
		rc = fail(&x, "n%d did not refute within 30 s", d.victim);
	if (rc == 0)
		rc = steady(&x, 30 * SIM_SEC);
	return end(&x, rc);
}

/* Split 5 into 3 + 2 for longer than it takes to declare the other side
 * dead; after the split ends, seeds re-joined, one view again. */
static int scen_partition(const struct scen_opts *o, struct scen_result *r)
{
	struct run x;
	int rc = begin(&x, o, r, o->nodes ? o->nodes : 5, NULL), group[64];
	uint64_t t0;

	if (rc != 0 || x.n > 64)
		return end(&x, rc != 0 ? rc : fail(&x, "at most 64 nodes"));
	for (int i = 0; i < x.n; i++)
		group[i] = i >= (x.n + 1) / 2;
	x.w->any_dead_ok = true;
	sim_partition(x.sim, group);
	if ((rc = sim_run_until(x.sim, sim_now(x.sim) + 90 * SIM_SEC)) != 0)
		return end(&x, rc);
	for (int i = 0; i < x.n; i++)
		for (int j = 0; j < x.n; j++)
			if (group[i] != group[j] && x.w->obs[i * x.n + j].dead_at == 0)
				return end(&x,
					   fail(&x, "after 90 s apart n%d still holds n%d", i, j));
	sim_heal(x.sim);
	t0 = sim_now(x.sim);
	if (sw_run_to_convergence(x.w, t0 + 300 * SIM_SEC) == SIM_NEVER)
		return end(&x, fail(&x, "no single view 300 s after the partition healed"));
	r->figure = (double)(sim_now(x.sim) - t0) / SIM_SEC;
	r->figure_name = "time from the end of the partition to one view";
	rc = steady(&x, 30 * SIM_SEC);
	if (rc == 0 && !sw_converged(x.w))
		rc = fail(&x, "the view split again after healing");
	return end(&x, rc);
}

static bool leave_pending(struct sim *sim, void *arg)
{
	struct dead_wait *d = arg;

	return swim_leave_pending(sw_swim(d->w, d->victim));
}

/* A node leaves gracefully, then stops: every other sees it left, none
 * dead. */
static int scen_leave(const struct scen_opts *o, struct scen_result *r)
{
	struct run x;
	struct dead_wait d;
	uint64_t t0;
	int rc = begin(&x, o, r, o->nodes ? o->nodes : 5, NULL);

	if (rc != 0)
		return end(&x, rc);
	d = (struct dead_wait){x.w, 2 % x.n};
	t0 = sim_now(x.sim);
	swim_leave(sw_swim(x.w, d.victim), t0 / SIM_MS);
	sim_wake(x.sim, d.victim);
	if ((rc = sim_run_while(x.sim, leave_pending, &d, t0 + 10 * SIM_SEC)) == 1)
		rc = fail(&x, "n%d still leaving after 10 s", d.victim);
	if (rc != 0)
		return end(&x, rc);
	sim_crash(x.sim, d.victim);
	if ((rc = sim_run_while(x.sim, not_all_see, &d, t0 + 30 * SIM_SEC)) == 1)
		rc = fail(&x, "not every node saw n%d leave within 30 s", d.victim);
	if (rc == 0)
		rc = steady(&x, 60 * SIM_SEC);
	for (int i = 0; rc == 0 && i < x.n; i++)
		if (x.w->obs[i * x.n + d.victim].dead_at != 0)
			rc = fail(&x, "n%d declared the departed n%d dead, not left", i, d.victim);
	if (rc == 0) {
		r->figure = 0;
		for (int i = 0; i < x.n; i++)
			if (x.w->obs[i * x.n + d.victim].left_at > t0)
				r->figure =
					fmax(r->figure,
					     (double)(x.w->obs[i * x.n + d.victim].left_at - t0) /
						     SIM_SEC);
		r->figure_name = "time until every node saw the leave";
	}
	return end(&x, rc);
}

struct inc_wait {
	struct swim_world *w;
	int victim;
	uint64_t min;
};

static bool not_back(struct sim *sim, void *arg)
{
	struct inc_wait *iw = arg;

	return not_all_alive_at(iw->w, iw->victim, iw->min);
}

/* Kill a node, wait until it is dead everywhere, restart it with its id
 * and incarnation 0: it rejoins with a higher incarnation than it died
 * with. */
static int scen_restart(const struct scen_opts *o, struct scen_result *r)
{
	struct run x;
	struct dead_wait d;
	struct inc_wait iw;
	uint64_t t0;
	int rc = begin(&x, o, r, o->nodes ? o->nodes : 5, NULL);

	if (rc != 0)
		return end(&x, rc);
	d = (struct dead_wait){x.w, x.n - 1};
	sw_allow_dead(x.w, d.victim);
	sim_crash(x.sim, d.victim);
	if ((rc = sim_run_while(x.sim, not_all_see, &d, sim_now(x.sim) + 120 * SIM_SEC)) == 1)
		rc = fail(&x, "n%d not dead everywhere after 120 s", d.victim);
	if (rc != 0)
		return end(&x, rc);
	iw = (struct inc_wait){x.w, d.victim,
			       swim_member_find(sw_swim(x.w, 0), x.w->ids[d.victim])->incarnation +
				       1};
	t0 = sim_now(x.sim);
	sw_start(x.w, d.victim);
	if ((rc = sim_run_while(x.sim, not_back, &iw, t0 + 120 * SIM_SEC)) == 1)
		rc = fail(&x, "restarted n%d not alive at incarnation >= %llu everywhere", d.victim,
			  (unsigned long long)iw.min);
	if (rc == 0) {
		r->figure = (double)(sim_now(x.sim) - t0) / SIM_SEC;
		r->figure_name = "time from restart to alive everywhere";
		rc = steady(&x, 30 * SIM_SEC);
	}
	return end(&x, rc);
}

const struct scenario sim_scenarios[] = {
	{"join", 16, scen_join, "nodes join through node 0 and converge; 30 s steady"},
	{"kill", 8, scen_kill, "a killed node is declared dead by every live node"},
	{"loss", 8, scen_loss, "10% loss on every link for 300 s: no live node declared dead"},
	{"slow", 8, scen_slow,
	 "one node handles messages up to 1.5 s late for 300 s: no false dead"},
	{"refute", 5, scen_refute, "an isolated node is suspected, reconnected, and refutes"},
	{"partition", 5, scen_partition, "3+2 split for 90 s, then healed into one view"},
	{"leave", 5, scen_leave, "a graceful leave is seen as left, never dead"},
	{"restart", 5, scen_restart, "a killed node restarts and rejoins at a higher incarnation"},
	{NULL, 0, NULL, NULL},
};

const struct scenario *scen_find(const char *name)
{
	for (const struct scenario *s = sim_scenarios; s->name != NULL; s++)
		if (strcmp(s->name, name) == 0)
			return s;
	for (const struct scenario *s = raft_scenarios; s->name != NULL; s++)
		if (strcmp(s->name, name) == 0)
			return s;
	return NULL;
}
