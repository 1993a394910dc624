/*
 * clock: monotonic and wall time behind one replaceable interface.
 *
 * Drivers, logging and benchmarks read time through sh_clock_*(); tests
 * install a manual clock and move it by hand.  The protocol cores never call
 * these (time is an input to them, STYLE.md "Pure cores").
 *
 * sh_clock_install() swaps a process-wide pointer: install before starting
 * threads that read the clock.  Reading is thread-safe.
 */
#ifndef SHOAL_UTIL_CLOCK_H
#define SHOAL_UTIL_CLOCK_H

#include <stdint.h>

struct sh_clock {
	uint64_t (*mono_ns)(void *ctx); /* never goes back; arbitrary origin */
	uint64_t (*wall_ns)(void *ctx); /* nanoseconds since the Unix epoch, UTC */
	void *ctx;
};

uint64_t sh_clock_mono_ns(void);
uint64_t sh_clock_mono_ms(void);
uint64_t sh_clock_wall_ns(void);

/* Install c (owned by the caller, must outlive its use); NULL restores the
 * operating system's clocks (CLOCK_MONOTONIC and CLOCK_REALTIME). */
void sh_clock_install(const struct sh_clock *c);

/* A clock that moves only when told: for tests. */
struct sh_clock_manual {
	struct sh_clock clock;
	uint64_t mono_ns;
	uint64_t wall_ns;
};

/* Initialise m at the given times and install it. */
void sh_clock_manual_install(struct sh_clock_manual *m, uint64_t mono_ns, uint64_t wall_ns);
/* Move both times forward by ns. */
void sh_clock_manual_advance(struct sh_clock_manual *m, uint64_t ns);

#endif
