/*
 * shoalctl snapshot: backups (doc/shoalctl.1, "BACKUP AND RESTORE").
 *
 *   snapshot save FILE   the node asked takes a snapshot of its applied
 *                        state and sends it; it is written to FILE
 *                        ("-": standard output)
 *
 * The file is written as FILE.tmp beside FILE, fsynced, renamed to FILE
 * and the directory fsynced: FILE is either the previous file or a whole,
 * checked snapshot (libshoal checks every piece before it is written:
 * shoal_snapshot).  Any node can be asked, a follower too: its state is
 * its applied state, which holds every write committed up to its applied
 * index.  `shoald --restore FILE` seeds a new data dir from it.
 */
#include "build.h"

#include "shoalctl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct out {
	int fd;
	struct progress p;
	bool started;
};

static int write_out(void *arg, const void *data, size_t len)
{
	struct out *o = arg;
	const char *b = data;

	while (len > 0) {
		ssize_t k = write(o->fd, b, len);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		b += k;
		len -= (size_t)k;
	}
	return 0;
}

static void on_progress(void *arg, uint64_t done, uint64_t total)
{
	struct out *o = arg;

	if (!o->started) {
		progress_start(&o->p, (size_t)total, "bytes", 10);
		o->started = true;
	}
	progress_update(&o->p, (size_t)done);
}

/* fsync FILE.tmp, rename it to FILE, fsync the directory. */
static int commit_file(int fd, const char *tmp, const char *path)
{
	char dir[4096];
	int dfd;

	if (fsync(fd) != 0 || rename(tmp, path) != 0)
		return -1;
	snprintf(dir, sizeof dir, "%s", path);
	if ((dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY)) < 0)
		return -1;
	if (fsync(dfd) != 0) {
		close(dfd);
		return -1;
	}
	return close(dfd);
}

static void report(struct ctl *x, const struct shoal_snapshot_info *i, const char *path,
		   double secs)
{
	char node[17], cluster[17];

	snprintf(node, sizeof node, "%016" PRIx64, i->node_id);
	snprintf(cluster, sizeof cluster, "%016" PRIx64, i->cluster_id);
	if (x->json) {
		ctl_print_json(json_pack("{s:s,s:I,s:I,s:I,s:s,s:s,s:s,s:f}", "file", path, "index",
					 (json_int_t)i->index, "term", (json_int_t)i->term, "bytes",
					 (json_int_t)i->size, "digest", i->digest, "node_id", node,
					 "cluster_id", cluster, "seconds", secs));
		return;
	}
	fprintf(strcmp(path, "-") == 0 ? stderr : stdout,
		"saved the snapshot of node %s (cluster %s) at index %" PRIu64 " (term %" PRIu64
		"): %" PRIu64 " bytes, digest %s, to %s in %.1f s\n",
		node, cluster, i->index, i->term, i->size, i->digest[0] ? i->digest : "?", path,
		secs);
}

static int save(struct ctl *x, const char *path)
{
	char tmp[4200];
	struct out o = {.fd = 1};
	struct shoal_snapshot_info info;
	bool to_stdout = strcmp(path, "-") == 0;
	double t0 = ctl_now();
	int rv;

	if (to_stdout && isatty(1) == 1)
		return ctl_usage_error("snapshot save -: standard output is a terminal");
	if (!to_stdout) {
		snprintf(tmp, sizeof tmp, "%s.tmp", path);
		if ((o.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640)) < 0) {
			fprintf(stderr, "shoalctl: snapshot: cannot create '%s': %s\n", tmp,
				strerror(errno));
			return EXIT_USAGE;
		}
	}
	if ((rv = ctl_connect(x)) == SHOAL_OK)
		rv = shoal_snapshot(x->c, write_out, &o, on_progress, &info);
	if (o.started)
		progress_end(&o.p, (size_t)info.size);
	if (rv == SHOAL_OK && !to_stdout && commit_file(o.fd, tmp, path) != 0) {
		fprintf(stderr, "shoalctl: snapshot: cannot write '%s': %s\n", path,
			strerror(errno));
		rv = -1;
	}
	if (!to_stdout) {
		close(o.fd);
		if (rv != SHOAL_OK)
			unlink(tmp);
	}
	if (rv == -1)
		return EXIT_FAILED;
	if (rv != SHOAL_OK)
		return ctl_fail(x, rv, "snapshot");
	report(x, &info, path, ctl_now() - t0);
	return 0;
}

int cmd_snapshot(struct ctl *x, int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "save") == 0)
		return save(x, argv[2]);
	return ctl_usage_error("usage: snapshot save FILE");
}
