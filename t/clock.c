/* Tests of util/clock: the system clocks and the replaceable manual clock. */
#include "build.h"

#include "tap.h"
#include "util/clock.h"

#include <time.h>

int main(void)
{
	struct sh_clock_manual m;
	uint64_t a = sh_clock_mono_ns(), b = sh_clock_mono_ns();
	uint64_t wall = sh_clock_wall_ns() / 1000000000u;
	uint64_t now = (uint64_t)time(NULL);

	ok(b >= a, "monotonic time does not go back");
	ok(wall + 2 >= now && wall <= now + 2, "wall time matches time(2)");
	is_int(sh_clock_mono_ms(), sh_clock_mono_ns() / 1000000u, "mono_ms is mono_ns / 1e6");

	sh_clock_manual_install(&m, 5000000000u, 1700000000000000000u);
	is_int(sh_clock_mono_ns(), 5000000000u, "manual clock: monotonic time as set");
	is_int(sh_clock_wall_ns(), 1700000000000000000u, "manual clock: wall time as set");
	sh_clock_manual_advance(&m, 1500000);
	is_int(sh_clock_mono_ms(), 5001, "manual clock: advance moves monotonic time");
	is_int(sh_clock_wall_ns(), 1700000000001500000u, "manual clock: advance moves wall time");

	sh_clock_install(NULL);
	ok(sh_clock_mono_ns() >= b, "NULL restores the system clock");
	return done_testing();
}
