/*
 * clock: see clock.h.
 */
#include "build.h"

#include "util/clock.h"

#include <stdatomic.h>
#include <stddef.h>
#include <time.h>

static uint64_t read_clock(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CLOCK_BOOTTIME: monotonic, slewed but never stepped by NTP, and it counts
 * the time the machine was suspended — a leader that slept must find its
 * lease expired when it wakes (doc/consistency.md, "What the lease
 * assumes"); CLOCK_MONOTONIC would stand still meanwhile. */
static uint64_t sys_mono_ns(void *ctx)
{
#ifdef CLOCK_BOOTTIME
	return read_clock(CLOCK_BOOTTIME);
#else
	return read_clock(CLOCK_MONOTONIC);
#endif
}

static uint64_t sys_wall_ns(void *ctx)
{
	return read_clock(CLOCK_REALTIME);
}

static const struct sh_clock sys_clock = {sys_mono_ns, sys_wall_ns, NULL};
static const struct sh_clock *_Atomic current = &sys_clock;

static const struct sh_clock *clk(void)
{
	return atomic_load_explicit(&current, memory_order_acquire);
}

uint64_t sh_clock_mono_ns(void)
{
	const struct sh_clock *c = clk();

	return c->mono_ns(c->ctx);
}

uint64_t sh_clock_mono_ms(void)
{
	return sh_clock_mono_ns() / 1000000u;
}

uint64_t sh_clock_wall_ns(void)
{
	const struct sh_clock *c = clk();

	return c->wall_ns(c->ctx);
}

void sh_clock_install(const struct sh_clock *c)
{
	atomic_store_explicit(&current, c == NULL ? &sys_clock : c, memory_order_release);
}

static uint64_t manual_mono_ns(void *ctx)
{
	return ((struct sh_clock_manual *)ctx)->mono_ns;
}

static uint64_t manual_wall_ns(void *ctx)
{
	return ((struct sh_clock_manual *)ctx)->wall_ns;
}

void sh_clock_manual_install(struct sh_clock_manual *m, uint64_t mono_ns, uint64_t wall_ns)
{
	m->clock.mono_ns = manual_mono_ns;
	m->clock.wall_ns = manual_wall_ns;
	m->clock.ctx = m;
	m->mono_ns = mono_ns;
	m->wall_ns = wall_ns;
	sh_clock_install(&m->clock);
}

void sh_clock_manual_advance(struct sh_clock_manual *m, uint64_t ns)
{
	m->mono_ns += ns;
	m->wall_ns += ns;
}
