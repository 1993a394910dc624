/*
 * sim: see sim.h.
 *
 * Events live in a binary min-heap ordered by (time, seq); seq is a global
 * counter, so two events at the same time run in the order they were
 * scheduled, whatever the heap's shape.  A node has at most one live timer:
 * each new deadline bumps the node's timer generation and older timer
 * events are discarded when they come up.  Messages in flight to a node
 * that crashes are delivered to its next incarnation if it is up by then,
 * as a real network would.
 */
#include "build.h"

#include "sim/sim.h"

#include "util/alloc.h"
#include "util/crc32c.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define TRACE_RING 256
#define TRACE_LINE 200
#define MAX_CHECKS 16

enum ev_kind { EV_DELIVER, EV_TIMER, EV_ACTION };

struct ev {
	uint64_t time, seq;
	enum ev_kind kind;
	int node, from;
	enum sim_chan ch;
	uint8_t *buf;
	size_t len;
	uint64_t gen; /* EV_TIMER: the timer's generation; EV_DELIVER STREAM: the
		       * receiver's life when sent */
	sim_action_fn *fn;
	void *arg;
};

struct pending_write {
	uint64_t off;
	size_t len;
	uint8_t *data;
};

struct sfile {
	char *name;
	uint8_t *cur, *dur; /* what reads see; what survives a crash */
	size_t cur_len, dur_len;
	struct pending_write *pend;
	size_t n_pend;
};

struct snode {
	void *inst;
	bool up;
	struct sh_rand rand;
	uint64_t timer_gen, timer_at;
	uint32_t slow_us;
	uint64_t paused_until;
	uint64_t lives; /* starts */
	struct sfile *files;
	size_t n_files;
};

struct check {
	const char *name;
	sim_check_fn *fn;
	void *arg;
};

struct sim {
	uint64_t seed, now, seq, steps, step_limit;
	struct sh_rand rand;
	const struct sim_proto *proto;
	void *arg;
	int n;
	struct snode *nodes;
	struct sim_link *links;
	uint64_t *stream_last; /* per link: latest STREAM delivery time (FIFO) */
	struct ev **heap;
	size_t n_heap, cap_heap;
	struct check checks[MAX_CHECKS];
	int n_checks;
	char *failure;
	uint64_t hash;
	char ring[TRACE_RING][TRACE_LINE];
	uint64_t n_lines;
	FILE *trace_out;
	struct sim_net_stats net;
};

/* ------------------------------------------------------------------ heap */

static bool ev_less(const struct ev *a, const struct ev *b)
{
	return a->time != b->time ? a->time < b->time : a->seq < b->seq;
}

static void heap_push(struct sim *sim, struct ev *e)
{
	size_t i;

	if (sim->n_heap == sim->cap_heap) {
		size_t cap = sim->cap_heap ? 2 * sim->cap_heap : 1024;
		struct ev **grown = sh_reallocarray(sim->heap, cap, sizeof *grown);

		if (grown == NULL)
			abort(); /* a test program: out of memory ends it */
		sim->heap = grown;
		sim->cap_heap = cap;
	}
	e->seq = sim->seq++;
	for (i = sim->n_heap++; i > 0 && ev_less(e, sim->heap[(i - 1) / 2]); i = (i - 1) / 2)
		sim->heap[i] = sim->heap[(i - 1) / 2];
	sim->heap[i] = e;
}

static struct ev *heap_pop(struct sim *sim)
{
	struct ev *top = sim->heap[0], *last = sim->heap[--sim->n_heap];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= sim->n_heap)
			break;
		if (c + 1 < sim->n_heap && ev_less(sim->heap[c + 1], sim->heap[c]))
			c++;
		if (!ev_less(sim->heap[c], last))
			break;
		sim->heap[i] = sim->heap[c];
		i = c;
	}
	if (sim->n_heap > 0)
		sim->heap[i] = last;
	return top;
}

static struct ev *ev_new(struct sim *sim, uint64_t time, enum ev_kind kind, int node)
{
	struct ev *e = sh_calloc(1, sizeof *e);

	if (e == NULL)
		abort();
	e->time = time < sim->now ? sim->now : time;
	e->kind = kind;
	e->node = node;
	return e;
}

static void ev_free(struct ev *e)
{
	sh_free(e->buf);
	sh_free(e);
}

/* ------------------------------------------------------------------ trace */

static void trace_line(struct sim *sim, const char *line)
{
	char *slot = sim->ring[sim->n_lines++ % TRACE_RING];

	snprintf(slot, TRACE_LINE, "%s", line);
	/* FNV-1a, 64 bit, over every line and its newline. */
	for (const char *p = line; *p; p++)
		sim->hash = (sim->hash ^ (unsigned char)*p) * 0x100000001b3ull;
	sim->hash = (sim->hash ^ '\n') * 0x100000001b3ull;
	if (sim->trace_out != NULL)
		fprintf(sim->trace_out, "%s\n", line);
}

static void tracev(struct sim *sim, int node, const char *fmt, va_list ap)
{
	char line[TRACE_LINE];
	int n = snprintf(line, sizeof line, "%llu.%06llu n%d ",
			 (unsigned long long)(sim->now / SIM_SEC),
			 (unsigned long long)(sim->now % SIM_SEC), node);

	vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
	trace_line(sim, line);
}

void sim_tracef(struct sim *sim, int node, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tracev(sim, node, fmt, ap);
	va_end(ap);
}

uint64_t sim_trace_hash(const struct sim *sim)
{
	return sim->hash;
}

void sim_trace_to(struct sim *sim, FILE *f)
{
	sim->trace_out = f;
}

void sim_report(const struct sim *sim, FILE *f, int n)
{
	uint64_t first = sim->n_lines > (uint64_t)n ? sim->n_lines - (uint64_t)n : 0;

	if (first + TRACE_RING < sim->n_lines)
		first = sim->n_lines - TRACE_RING;
	fprintf(f, "seed %llu: %s at %.6f s after %llu events\n", (unsigned long long)sim->seed,
		sim->failure ? sim->failure : "no failure", (double)sim->now / SIM_SEC,
		(unsigned long long)sim->steps);
	fprintf(f, "last %llu trace lines:\n", (unsigned long long)(sim->n_lines - first));
	for (uint64_t i = first; i < sim->n_lines; i++)
		fprintf(f, "  %s\n", sim->ring[i % TRACE_RING]);
}

void sim_fail(struct sim *sim, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (sim->failure != NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	sim->failure = sh_strdup(msg);
	sim_tracef(sim, -1, "FAIL %s", msg);
}

const char *sim_failure(const struct sim *sim)
{
	return sim->failure;
}

/* ------------------------------------------------------------------ setup */

struct sim *sim_new(uint64_t seed, int n_nodes, const struct sim_proto *proto, void *arg)
{
	struct sim *sim = sh_calloc(1, sizeof *sim);
	const struct sim_link lan = {.delay_us = 100, .jitter_us = 400};

	if (sim == NULL)
		return NULL;
	sim->seed = seed;
	sim->proto = proto;
	sim->arg = arg;
	sim->n = n_nodes;
	sim->hash = 0xcbf29ce484222325ull;
	sh_rand_seed(&sim->rand, seed);
	sim->nodes = sh_calloc((size_t)n_nodes, sizeof *sim->nodes);
	sim->links = sh_calloc((size_t)n_nodes * (size_t)n_nodes, sizeof *sim->links);
	sim->stream_last = sh_calloc((size_t)n_nodes * (size_t)n_nodes, sizeof *sim->stream_last);
	if (sim->nodes == NULL || sim->links == NULL || sim->stream_last == NULL) {
		sim_free(sim);
		return NULL;
	}
	for (int i = 0; i < n_nodes; i++)
		sim->nodes[i].timer_at = SIM_NEVER;
	sim_link_set_all(sim, &lan);
	return sim;
}

static void files_free(struct snode *nd)
{
	for (size_t i = 0; i < nd->n_files; i++) {
		struct sfile *f = &nd->files[i];

		for (size_t k = 0; k < f->n_pend; k++)
			sh_free(f->pend[k].data);
		sh_free(f->pend);
		sh_free(f->name);
		sh_free(f->cur);
		sh_free(f->dur);
	}
	sh_free(nd->files);
}

void sim_free(struct sim *sim)
{
	if (sim == NULL)
		return;
	for (int i = 0; sim->nodes != NULL && i < sim->n; i++) {
		if (sim->nodes[i].up)
			sim->proto->stop(sim->nodes[i].inst);
		files_free(&sim->nodes[i]);
	}
	for (size_t i = 0; i < sim->n_heap; i++)
		ev_free(sim->heap[i]);
	sh_free(sim->heap);
	sh_free(sim->nodes);
	sh_free(sim->links);
	sh_free(sim->stream_last);
	sh_free(sim->failure);
	sh_free(sim);
}

uint64_t sim_seed(const struct sim *sim)
{
	return sim->seed;
}

uint64_t sim_now(const struct sim *sim)
{
	return sim->now;
}

int sim_nodes(const struct sim *sim)
{
	return sim->n;
}

struct sh_rand *sim_rand(struct sim *sim)
{
	return &sim->rand;
}

struct sh_rand *sim_node_rand(struct sim *sim, int node)
{
	return &sim->nodes[node].rand;
}

void *sim_node_instance(const struct sim *sim, int node)
{
	return sim->nodes[node].up ? sim->nodes[node].inst : NULL;
}

bool sim_node_up(const struct sim *sim, int node)
{
	return sim->nodes[node].up;
}

void sim_set_step_limit(struct sim *sim, uint64_t steps)
{
	sim->step_limit = steps;
}

uint64_t sim_steps(const struct sim *sim)
{
	return sim->steps;
}

void sim_net_stats(const struct sim *sim, struct sim_net_stats *st)
{
	*st = sim->net;
}

void sim_check_add(struct sim *sim, const char *name, sim_check_fn *fn, void *arg)
{
	if (sim->n_checks < MAX_CHECKS)
		sim->checks[sim->n_checks++] = (struct check){name, fn, arg};
}

/* ------------------------------------------------------------------ nodes */

void sim_wake(struct sim *sim, int node)
{
	struct snode *nd = &sim->nodes[node];
	uint64_t d = nd->up ? sim->proto->deadline(nd->inst) : SIM_NEVER;
	struct ev *e;

	if (d == nd->timer_at)
		return;
	nd->timer_gen++;
	nd->timer_at = d;
	if (d == SIM_NEVER)
		return;
	e = ev_new(sim, d, EV_TIMER, node);
	e->gen = nd->timer_gen;
	heap_push(sim, e);
}

void sim_start(struct sim *sim, int node)
{
	struct snode *nd = &sim->nodes[node];

	if (nd->up)
		return;
	sh_rand_seed(&nd->rand, sh_rand_u64(&sim->rand));
	nd->lives++;
	sim_tracef(sim, node, "start");
	nd->inst = sim->proto->start(sim, node, sim->arg);
	nd->up = nd->inst != NULL;
	nd->timer_at = SIM_NEVER;
	sim_wake(sim, node);
}

static void disk_crash(struct sim *sim, struct snode *nd);

void sim_crash(struct sim *sim, int node)
{
	struct snode *nd = &sim->nodes[node];

	if (!nd->up)
		return;
	sim_tracef(sim, node, "crash");
	sim->proto->stop(nd->inst);
	nd->inst = NULL;
	nd->up = false;
	nd->timer_gen++;
	nd->timer_at = SIM_NEVER;
	disk_crash(sim, nd);
}

void sim_slow(struct sim *sim, int node, uint32_t extra_us)
{
	sim_tracef(sim, node, "slow %u us", extra_us);
	sim->nodes[node].slow_us = extra_us;
}

/* ------------------------------------------------------------------ network */

struct sim_link *sim_link(struct sim *sim, int from, int to)
{
	return &sim->links[from * sim->n + to];
}

void sim_link_set(struct sim *sim, int from, int to, const struct sim_link *l)
{
	*sim_link(sim, from, to) = *l;
}

void sim_link_set_all(struct sim *sim, const struct sim_link *l)
{
	for (int i = 0; i < sim->n; i++)
		for (int j = 0; j < sim->n; j++)
			sim_link_set(sim, i, j, l);
}

void sim_block(struct sim *sim, int from, int to, bool blocked)
{
	sim_link(sim, from, to)->blocked = blocked;
}

void sim_block_chan(struct sim *sim, int from, int to, enum sim_chan ch, bool blocked)
{
	sim_link(sim, from, to)->cut[ch] = blocked;
}

void sim_pause(struct sim *sim, int node, uint64_t until)
{
	sim_tracef(sim, node, until ? "pause until %llu" : "resume", (unsigned long long)until);
	sim->nodes[node].paused_until = until;
}

uint64_t sim_paused_until(const struct sim *sim, int node)
{
	return sim->nodes[node].paused_until > sim->now ? sim->nodes[node].paused_until : 0;
}

void sim_partition(struct sim *sim, const int *group)
{
	for (int i = 0; i < sim->n; i++)
		for (int j = 0; j < sim->n; j++)
			sim_block(sim, i, j, group[i] != group[j]);
	sim_tracef(sim, -1, "partition");
}

void sim_heal(struct sim *sim)
{
	for (int i = 0; i < sim->n; i++)
		for (int j = 0; j < sim->n; j++) {
			sim_block(sim, i, j, false);
			sim_block_chan(sim, i, j, SIM_DGRAM, false);
			sim_block_chan(sim, i, j, SIM_STREAM, false);
		}
	sim_tracef(sim, -1, "heal");
}

static bool chance(struct sim *sim, double p)
{
	return p > 0 && sh_rand_double(&sim->rand) < p;
}

static uint64_t below(struct sim *sim, uint64_t n)
{
	return sh_rand_below(&sim->rand, n);
}

/* When a message sent now on link l arrives at `to`. */
static uint64_t arrival(struct sim *sim, const struct sim_link *l, int to)
{
	uint64_t t = sim->now + l->delay_us + below(sim, l->jitter_us);

	if (chance(sim, l->reorder))
		t += below(sim, l->reorder_us);
	if (sim->nodes[to].slow_us)
		t += below(sim, sim->nodes[to].slow_us);
	return t;
}

static void schedule_delivery(struct sim *sim, int from, int to, enum sim_chan ch,
			      const uint8_t *buf, size_t len, uint64_t t)
{
	struct ev *e = ev_new(sim, t, EV_DELIVER, to);

	e->from = from;
	e->ch = ch;
	e->gen = sim->nodes[to].lives;
	e->len = len;
	if ((e->buf = sh_malloc(len ? len : 1)) == NULL)
		abort();
	memcpy(e->buf, buf, len);
	heap_push(sim, e);
}

void sim_send(struct sim *sim, int from, int to, enum sim_chan ch, const uint8_t *buf, size_t len)
{
	const struct sim_link *l = sim_link(sim, from, to);
	uint64_t t, *last = &sim->stream_last[from * sim->n + to];

	sim->net.sent[ch]++;
	sim->net.bytes[ch] += len;
	if (l->blocked || l->cut[ch]) {
		sim->net.blocked++;
		return;
	}
	if (ch == SIM_DGRAM && chance(sim, l->loss)) {
		sim->net.lost++;
		return;
	}
	if (ch == SIM_STREAM && !sim->nodes[to].up) {
		sim->net.to_down++; /* no connection to a node that is down */
		return;
	}
	t = arrival(sim, l, to);
	if (ch == SIM_STREAM) {
		t = t < *last ? *last : t; /* FIFO per link, like one TCP stream */
		*last = t;
	}
	schedule_delivery(sim, from, to, ch, buf, len, t);
	if (ch == SIM_DGRAM && chance(sim, l->dup)) {
		sim->net.duplicated++;
		schedule_delivery(sim, from, to, ch, buf, len, arrival(sim, l, to));
	}
}

/* ------------------------------------------------------------------ disk */

static struct sfile *file_get(struct snode *nd, const char *name, bool create)
{
	struct sfile *grown;

	for (size_t i = 0; i < nd->n_files; i++)
		if (strcmp(nd->files[i].name, name) == 0)
			return &nd->files[i];
	if (!create)
		return NULL;
	grown = sh_reallocarray(nd->files, nd->n_files + 1, sizeof *grown);
	if (grown == NULL)
		return NULL;
	nd->files = grown;
	memset(&grown[nd->n_files], 0, sizeof *grown);
	if ((grown[nd->n_files].name = sh_strdup(name)) == NULL)
		return NULL;
	return &nd->files[nd->n_files++];
}

/* Write data at off into (*buf, *len), growing it (zero-filled holes). */
static int apply_write(uint8_t **buf, size_t *len, uint64_t off, const void *data, size_t n)
{
	size_t end = (size_t)off + n;

	if (n == 0)
		return 0;
	if (end > *len) {
		uint8_t *grown = sh_realloc(*buf, end ? end : 1);

		if (grown == NULL)
			return -1;
		memset(grown + *len, 0, end - *len);
		*buf = grown;
		*len = end;
	}
	memcpy(*buf + off, data, n);
	return 0;
}

int sim_disk_write(struct sim *sim, int node, const char *name, uint64_t off, const void *buf,
		   size_t len)
{
	struct sfile *f = file_get(&sim->nodes[node], name, true);
	struct pending_write *grown;
	uint8_t *copy;

	if (f == NULL || apply_write(&f->cur, &f->cur_len, off, buf, len) != 0)
		return -1;
	grown = sh_reallocarray(f->pend, f->n_pend + 1, sizeof *grown);
	copy = sh_malloc(len ? len : 1);
	if (grown == NULL || copy == NULL) {
		sh_free(copy);
		if (grown != NULL)
			f->pend = grown;
		return -1;
	}
	memcpy(copy, buf, len);
	f->pend = grown;
	f->pend[f->n_pend++] = (struct pending_write){off, len, copy};
	return 0;
}

static void pending_clear(struct sfile *f)
{
	for (size_t k = 0; k < f->n_pend; k++)
		sh_free(f->pend[k].data);
	f->n_pend = 0;
}

int sim_disk_fsync(struct sim *sim, int node, const char *name)
{
	struct sfile *f = file_get(&sim->nodes[node], name, false);
	uint8_t *copy;

	if (f == NULL)
		return -1;
	if ((copy = sh_malloc(f->cur_len ? f->cur_len : 1)) == NULL)
		return -1;
	if (f->cur_len > 0)
		memcpy(copy, f->cur, f->cur_len);
	sh_free(f->dur);
	f->dur = copy;
	f->dur_len = f->cur_len;
	pending_clear(f);
	return 0;
}

long sim_disk_read(struct sim *sim, int node, const char *name, uint64_t off, void *buf, size_t len)
{
	struct sfile *f = file_get(&sim->nodes[node], name, false);

	if (f == NULL)
		return -1;
	if (off >= f->cur_len)
		return 0;
	if (len > f->cur_len - off)
		len = f->cur_len - (size_t)off;
	memcpy(buf, f->cur + off, len);
	return (long)len;
}

long sim_disk_size(struct sim *sim, int node, const char *name)
{
	struct sfile *f = file_get(&sim->nodes[node], name, false);

	return f ? (long)f->cur_len : -1;
}

/* Keep a random prefix of the unsynced writes, the next one maybe torn. */
static void disk_crash(struct sim *sim, struct snode *nd)
{
	for (size_t i = 0; i < nd->n_files; i++) {
		struct sfile *f = &nd->files[i];
		size_t keep = (size_t)below(sim, f->n_pend + 1);

		for (size_t k = 0; k < keep; k++)
			apply_write(&f->dur, &f->dur_len, f->pend[k].off, f->pend[k].data,
				    f->pend[k].len);
		if (keep < f->n_pend && chance(sim, 0.5))
			apply_write(&f->dur, &f->dur_len, f->pend[keep].off, f->pend[keep].data,
				    (size_t)below(sim, f->pend[keep].len));
		pending_clear(f);
		sh_free(f->cur);
		f->cur = NULL;
		f->cur_len = 0;
		apply_write(&f->cur, &f->cur_len, 0, f->dur ? f->dur : (const uint8_t *)"",
			    f->dur_len);
	}
}

/* ------------------------------------------------------------------ running */

void sim_at(struct sim *sim, uint64_t when, sim_action_fn *fn, void *arg)
{
	struct ev *e = ev_new(sim, when, EV_ACTION, -1);

	e->fn = fn;
	e->arg = arg;
	heap_push(sim, e);
}

static void deliver(struct sim *sim, struct ev *e)
{
	struct snode *nd = &sim->nodes[e->node];

	if (!nd->up || (e->ch == SIM_STREAM && e->gen != nd->lives)) {
		sim->net.to_down++; /* a stream dies with the process it went to */
		return;
	}
	sim->net.delivered[e->ch]++;
	sim_tracef(sim, e->node, "<- n%d %s %zuB %08x", e->from,
		   e->ch == SIM_DGRAM ? "dgram" : "stream", e->len, sh_crc32c(0, e->buf, e->len));
	sim->proto->deliver(nd->inst, sim->now, e->from, e->ch, e->buf, e->len);
	sim_wake(sim, e->node);
}

static void run_event(struct sim *sim, struct ev *e)
{
	struct snode *nd;

	switch (e->kind) {
	case EV_DELIVER: deliver(sim, e); break;
	case EV_TIMER:
		nd = &sim->nodes[e->node];
		if (!nd->up || e->gen != nd->timer_gen)
			return;
		nd->timer_at = SIM_NEVER;
		sim_tracef(sim, e->node, "tick");
		sim->proto->tick(nd->inst, sim->now);
		sim_wake(sim, e->node);
		break;
	case EV_ACTION: e->fn(sim, e->arg); break;
	}
}

static void run_checks(struct sim *sim)
{
	char why[400];

	for (int i = 0; i < sim->n_checks && sim->failure == NULL; i++) {
		why[0] = '\0';
		if (!sim->checks[i].fn(sim, sim->checks[i].arg, why, sizeof why))
			sim_fail(sim, "invariant '%s' broken: %s", sim->checks[i].name, why);
	}
}

/* A paused node's delivery or timer waits until it resumes (pushed again
 * in the order they come up, so FIFO order holds). */
static bool deferred(struct sim *sim, struct ev *e)
{
	uint64_t until;

	if (e->kind == EV_ACTION || e->node < 0)
		return false;
	until = sim->nodes[e->node].paused_until;
	if (until <= sim->now)
		return false;
	e->time = until;
	heap_push(sim, e);
	return true;
}

/* One event; false when there is none before `limit`. */
static bool step(struct sim *sim, uint64_t limit)
{
	struct ev *e;

	if (sim->n_heap == 0 || sim->heap[0]->time > limit)
		return false;
	e = heap_pop(sim);
	sim->now = e->time;
	if (deferred(sim, e))
		return true;
	sim->steps++;
	run_event(sim, e);
	ev_free(e);
	run_checks(sim);
	if (sim->step_limit && sim->steps >= sim->step_limit)
		sim_fail(sim, "step limit of %llu events reached",
			 (unsigned long long)sim->step_limit);
	return true;
}

int sim_run_until(struct sim *sim, uint64_t t)
{
	while (sim->failure == NULL && step(sim, t))
		;
	if (sim->failure != NULL)
		return -1;
	if (t > sim->now)
		sim->now = t;
	return 0;
}

int sim_run_while(struct sim *sim, sim_cond_fn *cond, void *arg, uint64_t limit)
{
	while (sim->failure == NULL && cond(sim, arg))
		if (!step(sim, limit)) {
			if (limit > sim->now)
				sim->now = limit;
			return 1;
		}
	return sim->failure != NULL ? -1 : 0;
}
