/*
 * swim_world: see swim_world.h.
 */
#include "build.h"

#include "sim/swim_world.h"

#include "util/alloc.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct sw_node {
	struct swim_world *w;
	int idx;
	struct swim *swim;
};

static uint64_t to_ms(uint64_t us)
{
	return us / SIM_MS;
}

/* ------------------------------------------------------------------ io */

static void io_send(void *data, enum swim_transport t, const char *addr, const uint8_t *buf,
		    size_t len)
{
	struct sw_node *nd = data;
	int to;

	if (sscanf(addr, "n%d:", &to) != 1 || to < 0 || to >= nd->w->n)
		return; /* an address no node has: lost */
	sim_send(nd->w->sim, nd->idx, to, t == SWIM_UDP ? SIM_DGRAM : SIM_STREAM, buf, len);
}

static uint64_t io_random(void *data)
{
	struct sw_node *nd = data;

	return sh_rand_u64(sim_node_rand(nd->w->sim, nd->idx));
}

static void violation(struct swim_world *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void violation(struct swim_world *w, const char *fmt, ...)
{
	va_list ap;

	if (w->violation[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(w->violation, sizeof w->violation, fmt, ap);
	va_end(ap);
}

static void record(struct swim_world *w, int obs, int m, const struct swim_event *ev)
{
	struct sw_node_obs *o = &w->obs[obs * w->n + m];
	uint64_t now = sim_now(w->sim);
	uint64_t *slot = NULL;

	switch (ev->type) {
	case SWIM_EV_JOINED:
		w->live[obs]++;
		slot = &o->joined_at;
		break;
	case SWIM_EV_SUSPECT:
		w->suspects++;
		slot = &o->suspect_at;
		break;
	case SWIM_EV_DEAD:
		w->live[obs]--;
		w->deads++;
		slot = &o->dead_at;
		if (sim_node_up(w->sim, m) && !w->dead_ok[m] && !w->any_dead_ok)
			violation(w, "n%d declared n%d dead, but it is up (incarnation %llu)", obs,
				  m, (unsigned long long)ev->member->incarnation);
		break;
	case SWIM_EV_LEFT:
		w->live[obs]--;
		slot = &o->left_at;
		break;
	default: break;
	}
	if (slot != NULL && *slot == 0)
		*slot = now ? now : 1;
	if (ev->member->incarnation > w->max_inc[m])
		violation(w, "n%d holds n%d at incarnation %llu, which it never had", obs, m,
			  (unsigned long long)ev->member->incarnation);
}

static void io_event(void *data, const struct swim_event *ev)
{
	struct sw_node *nd = data;
	struct swim_world *w = nd->w;
	int m = ev->member ? sw_index(w, ev->member->id) : -1;

	w->events++;
	if (ev->type == SWIM_EV_REFUTED) {
		w->refutes++;
		if (ev->member->incarnation > w->max_inc[nd->idx])
			w->max_inc[nd->idx] = ev->member->incarnation;
	}
	sim_tracef(w->sim, nd->idx, "swim %s n%d inc %llu", swim_event_name(ev->type), m,
		   ev->member ? (unsigned long long)ev->member->incarnation : 0ull);
	if (m >= 0 && ev->type != SWIM_EV_REFUTED)
		record(w, nd->idx, m, ev);
}

/* ------------------------------------------------------------------ vtable */

static void *node_start(struct sim *sim, int i, void *arg)
{
	struct swim_world *w = arg;
	struct sw_node *nd = sh_calloc(1, sizeof *nd);
	char name[16], addr[SWIM_N_ADDRS][24];
	struct swim_self self = {.id = w->ids[i], .name = name};
	struct swim_io io = {nd, io_send, io_event, io_random};
	const char *seed = "n0:7471";

	if (nd == NULL)
		return NULL;
	*nd = (struct sw_node){.w = w, .idx = i};
	snprintf(name, sizeof name, "n%d", i);
	for (int k = 0; k < SWIM_N_ADDRS; k++) {
		snprintf(addr[k], sizeof addr[k], "n%d:%d", i, 7471 + k);
		self.addr[k] = addr[k];
	}
	w->last_start = sim_now(sim);
	w->started += w->started < w->n;
	/* A (re)started node knows only itself. */
	memset(&w->obs[i * w->n], 0, (size_t)w->n * sizeof *w->obs);
	w->live[i] = 1;
	if (swim_new(&w->cfg, &self, &io, to_ms(sim_now(sim)), &nd->swim, NULL) != 0 ||
	    (i != 0 && swim_join(nd->swim, to_ms(sim_now(sim)), &seed, 1, NULL) != 0)) {
		swim_free(nd->swim);
		sh_free(nd);
		return NULL;
	}
	return nd;
}

static void node_stop(void *inst)
{
	struct sw_node *nd = inst;

	swim_free(nd->swim);
	sh_free(nd);
}

static void node_deliver(void *inst, uint64_t now, int from, enum sim_chan ch, const uint8_t *buf,
			 size_t len)
{
	struct sw_node *nd = inst;
	char addr[24];

	snprintf(addr, sizeof addr, "n%d:7471", from);
	if (ch == SIM_DGRAM) {
		swim_recv(nd->swim, to_ms(now), SWIM_UDP, addr, buf, len);
		return;
	}
	/* One STREAM message is one whole frame, as the TCP driver reads it. */
	if (len >= SWIM_FRAME_HDR && swim_wire_frame_len(buf) == len - SWIM_FRAME_HDR)
		swim_recv(nd->swim, to_ms(now), SWIM_TCP, addr, buf + SWIM_FRAME_HDR,
			  len - SWIM_FRAME_HDR);
}

static void node_tick(void *inst, uint64_t now)
{
	struct sw_node *nd = inst;

	swim_tick(nd->swim, to_ms(now));
}

static uint64_t node_deadline(void *inst)
{
	struct sw_node *nd = inst;
	uint64_t d = swim_next_deadline(nd->swim);

	return d >= SIM_NEVER / SIM_MS ? SIM_NEVER : d * SIM_MS;
}

static const struct sim_proto swim_proto = {node_start, node_stop, node_deliver, node_tick,
					    node_deadline};

/* ------------------------------------------------------------------ invariants */

static bool check_violation(struct sim *sim, void *arg, char *why, size_t size)
{
	struct swim_world *w = arg;

	if (w->violation[0] == '\0')
		return true;
	snprintf(why, size, "%s", w->violation);
	return false;
}

/* ------------------------------------------------------------------ world */

struct swim_world *sw_new(uint64_t seed, int n, const struct swim_config *cfg)
{
	struct swim_world *w = sh_calloc(1, sizeof *w);

	if (w == NULL)
		return NULL;
	w->n = n;
	w->cfg = *cfg;
	w->ids = sh_calloc((size_t)n, sizeof *w->ids);
	w->max_inc = sh_calloc((size_t)n, sizeof *w->max_inc);
	w->live = sh_calloc((size_t)n, sizeof *w->live);
	w->dead_ok = sh_calloc((size_t)n, sizeof *w->dead_ok);
	w->obs = sh_calloc((size_t)n * (size_t)n, sizeof *w->obs);
	w->sim = sim_new(seed, n, &swim_proto, w);
	if (!w->ids || !w->max_inc || !w->live || !w->dead_ok || !w->obs || !w->sim) {
		sw_free(w);
		return NULL;
	}
	for (int i = 0; i < n; i++)
		w->ids[i] = sh_rand_u64(sim_rand(w->sim)) | 1;
	sim_check_add(w->sim, "swim", check_violation, w);
	return w;
}

void sw_free(struct swim_world *w)
{
	if (w == NULL)
		return;
	sim_free(w->sim);
	sh_free(w->ids);
	sh_free(w->max_inc);
	sh_free(w->live);
	sh_free(w->dead_ok);
	sh_free(w->obs);
	sh_free(w);
}

int sw_index(const struct swim_world *w, uint64_t id)
{
	for (int i = 0; i < w->n; i++)
		if (w->ids[i] == id)
			return i;
	return -1;
}

struct swim *sw_swim(struct swim_world *w, int i)
{
	struct sw_node *nd = sim_node_instance(w->sim, i);

	return nd ? nd->swim : NULL;
}

void sw_allow_dead(struct swim_world *w, int i)
{
	w->dead_ok[i] = true;
}

void sw_start(struct swim_world *w, int i)
{
	sim_start(w->sim, i);
}

static void start_action(struct sim *sim, void *arg)
{
	struct swim_world *w = *(struct swim_world **)arg;
	int i = (int)(intptr_t)((void **)arg)[1];

	sh_free(arg);
	sw_start(w, i);
}

void sw_start_all(struct swim_world *w, uint64_t spread_us)
{
	sw_start(w, 0);
	for (int i = 1; i < w->n; i++) {
		void **arg = sh_malloc(2 * sizeof *arg);

		if (arg == NULL)
			abort();
		arg[0] = w;
		arg[1] = (void *)(intptr_t)i;
		sim_at(w->sim, sim_now(w->sim) + sh_rand_below(sim_rand(w->sim), spread_us + 1),
		       start_action, arg);
	}
}

bool sw_converged(const struct swim_world *w)
{
	int up = 0;

	for (int i = 0; i < w->n; i++)
		up += sim_node_up(w->sim, i);
	for (int i = 0; i < w->n; i++)
		if (sim_node_up(w->sim, i) && w->live[i] != up)
			return false;
	return true;
}

static bool not_converged(struct sim *sim, void *arg)
{
	const struct swim_world *w = arg;

	return w->started < w->n || !sw_converged(w);
}

uint64_t sw_run_to_convergence(struct swim_world *w, uint64_t limit)
{
	uint64_t t0 = sim_now(w->sim);

	if (sim_run_while(w->sim, not_converged, w, limit) != 0)
		return SIM_NEVER;
	return sim_now(w->sim) - t0;
}

void sw_describe(struct swim_world *w, char *buf, size_t size)
{
	size_t off = 0;

	buf[0] = '\0';
	for (int i = 0; i < w->n && off < size; i++)
		off += (size_t)snprintf(buf + off, size - off, "%sn%d:%s%d", i ? " " : "", i,
					sim_node_up(w->sim, i) ? "" : "down,", w->live[i]);
}
