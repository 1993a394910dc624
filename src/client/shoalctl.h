/*
 * shoalctl: the command-line client (doc/shoalctl.1).  shoalctl.c parses
 * the command line and runs the commands; shoalctl_bench.c is `bench`,
 * shoalctl_cluster.c is `cluster`, shoalctl_snap.c `snapshot`.
 * Single-threaded except `bench`, which runs one thread per connection.
 */
#ifndef SHOAL_CLIENT_SHOALCTL_H
#define SHOAL_CLIENT_SHOALCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "shoal.h"

/* Exit codes (doc/shoalctl.1, EXIT STATUS). */
#define EXIT_FAILED      1 /* other server-side failure (RESOURCE_EXHAUSTED, INTERNAL, ...) */
#define EXIT_USAGE       2 /* bad command line, or unreadable input */
#define EXIT_NOTFOUND    3
#define EXIT_EXISTS      4
#define EXIT_INVALID     5 /* INVALID_ARGUMENT, FAILED_PRECONDITION */
#define EXIT_UNAVAILABLE 6 /* cannot reach a server, or UNAVAILABLE */
#define EXIT_TIMEOUT     7

struct ctl {
	const char *addr; /* comma-separated: the --addr values, $SHOAL_ADDRS or $SHOAL_ADDR */
	char addrs[2048]; /* the --addr values joined */
	struct shoal_options o;
	bool json;
	shoal *c;
	char key[512]; /* --api-key-file's key */
};

int ctl_exit_code(int status);
/* Report a failed call on stderr and return its exit code. */
int ctl_fail(struct ctl *x, int status, const char *what);
/* Open the connection if not yet; returns a shoal status. */
int ctl_connect(struct ctl *x);
/* "shoalctl: MESSAGE (see shoalctl --help)" on stderr; returns EXIT_USAGE. */
int ctl_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print j compactly on a line of its own and drop the reference. */
void ctl_print_json(json_t *j);

/* Progress on stderr: done of total, rate, ETA.  On a terminal one line
 * redrawn five times a second; elsewhere a line every `every` seconds (0:
 * at every update), so that a log shows a long load moving.  progress_end
 * prints the final line (off a terminal only if others were printed). */
struct progress {
	bool tty;
	size_t total;
	double t0, last, every;
	const char *what;
	unsigned lines;
};
void progress_start(struct progress *p, size_t total, const char *what, double every);
void progress_update(struct progress *p, size_t done);
void progress_end(struct progress *p, size_t done);
double ctl_now(void);

/* .fvecs: n vectors of dim floats (sh_malloc'd); max_n 0 reads all. */
int fvecs_read(const char *path, size_t max_n, float **out, size_t *n, size_t *dim);

int cmd_bench(struct ctl *x, int argc, char **argv);
/* shoalctl_cluster.c: cluster voters|add|remove|transfer-leader|verify */
int cmd_cluster(struct ctl *x, int argc, char **argv);
int cmd_cluster_keys(struct ctl *x, int argc, char **argv);
/* shoalctl_snap.c: snapshot save FILE */
int cmd_snapshot(struct ctl *x, int argc, char **argv);

#endif
