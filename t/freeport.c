/* freeport: print a base port B whose three listeners (B1, B2, B3: see
 * DESIGN.md section 10) are free on 127.0.0.1, for shell tests (t/lib.sh).
 * The choice is random in 1100..3199 (ports 11001..31993, below Linux's
 * ephemeral range), so that tests running in parallel rarely collide. */
#include "build.h"

#include "srv.h"

int main(void)
{
	unsigned seed = (unsigned)getpid() ^ (unsigned)time(NULL);

	for (int i = 0; i < 200; i++) {
		int b = 1100 + (int)(rand_r(&seed) % 2100);

		if (srv_port_free(b * 10 + 1) && srv_port_free(b * 10 + 2) &&
		    srv_port_free(b * 10 + 3)) {
			printf("%d\n", b);
			return 0;
		}
	}
	fprintf(stderr, "freeport: no free base port found\n");
	return 1;
}
