/*
 * histcheck: check a history file written by the real-process tests
 * (hist.h's text form).  Exit status 0: no violation; 1: violations (each
 * described on stdout); 2: the file cannot be read.
 *
 *   histcheck FILE [MAX_STEPS]
 */
#include "build.h"

#include "hist/hist.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	struct hist *h = hist_new();
	struct hist_stats st;
	char why[256];
	FILE *f;
	size_t bad;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: histcheck FILE [MAX_STEPS]\n");
		return 2;
	}
	if ((f = fopen(argv[1], "r")) == NULL) {
		fprintf(stderr, "histcheck: %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	if (h == NULL || hist_load(h, f, why, sizeof why) != 0) {
		fprintf(stderr, "histcheck: %s: %s\n", argv[1], h ? why : "out of memory");
		fclose(f);
		hist_free(h);
		return 2;
	}
	fclose(f);
	bad = hist_check(h, argc > 2 ? strtoull(argv[2], NULL, 10) : 0, stdout, &st);
	printf("histcheck: %zu operations on %zu keys, %zu in the linearizability check (%" PRIu64
	       " search steps): %zu violations\n",
	       st.ops, st.keys, st.linearized_ops, st.search_steps, bad);
	hist_free(h);
	return bad ? 1 : 0;
}
