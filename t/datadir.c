/* Tests of storage/datadir: creation, a stable node id, the exclusive lock,
 * and corrupt or unusable directories rejected with the path in the error. */
#include "build.h"

#include "storage/datadir.h"
#include "tap.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char root[] = "/tmp/shoal-t-datadir-XXXXXX";

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		bail_out("cannot write %s", path);
	fputs(text, f);
	fclose(f);
}

static void test_create_and_reopen(void)
{
	char path[256], idfile[300];
	struct sh_datadir *d = NULL;
	struct sh_err err;
	uint64_t id;
	struct stat st;

	snprintf(path, sizeof path, "%s/a/b/c", root);
	is_int(sh_datadir_open(path, &d, &err), 0, "open creates missing parents");
	ok(stat(path, &st) == 0 && S_ISDIR(st.st_mode), "the directory exists");
	id = sh_datadir_node_id(d);
	ok(id != 0, "a node id was created (%016llx)", (unsigned long long)id);
	is_str(sh_datadir_path(d), path, "path is kept");
	sh_datadir_close(d);
	snprintf(idfile, sizeof idfile, "%s/node.id", path);
	ok(stat(idfile, &st) == 0 && st.st_size == 17, "node.id holds 16 hex digits + newline");
	is_int(sh_datadir_open(path, &d, &err), 0, "reopen");
	is_int(sh_datadir_node_id(d), id, "the node id is stable across restarts");
	sh_datadir_close(d);
}

static void test_lock(void)
{
	char path[256], want[64];
	struct sh_datadir *a = NULL, *b = NULL;
	struct sh_err err;
	int status;
	pid_t child;

	snprintf(path, sizeof path, "%s/locked", root);
	is_int(sh_datadir_open(path, &a, &err), 0, "first open takes the lock");
	is_int(sh_datadir_open(path, &b, &err), SH_EBUSY, "a second open is refused");
	snprintf(want, sizeof want, "in use by another shoald (pid %ld)", (long)getpid());
	like(err.msg, want, "and names the holder's pid");
	like(err.msg, path, "and the directory");
	child = fork();
	if (child == 0) {
		struct sh_datadir *c = NULL;

		_exit(sh_datadir_open(path, &c, NULL) == SH_EBUSY ? 0 : 1);
	}
	waitpid(child, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "another process is refused too");
	sh_datadir_close(a);
	is_int(sh_datadir_open(path, &b, &err), 0, "after close the lock is free again");
	sh_datadir_close(b);
}

static void test_corrupt(void)
{
	char path[256], idfile[300];
	struct sh_datadir *d = NULL;
	struct sh_err err;

	snprintf(path, sizeof path, "%s/corrupt", root);
	mkdir(path, 0750);
	snprintf(idfile, sizeof idfile, "%s/node.id", path);
	write_text(idfile, "12345\n");
	is_int(sh_datadir_open(path, &d, &err), SH_ECORRUPT, "a short node.id is corrupt");
	like(err.msg, idfile, "the error names the file");
	write_text(idfile, "00000000000000zz\n");
	is_int(sh_datadir_open(path, &d, &err), SH_ECORRUPT, "non-hex node.id is corrupt");
	like(err.msg, "byte 14 is not a hex digit", "the error says where");
	write_text(idfile, "0000000000000000\n");
	is_int(sh_datadir_open(path, &d, &err), SH_ECORRUPT, "node id 0 is refused");
}

static void test_cluster_id(void)
{
	char path[256], file[300];
	struct sh_datadir *d = NULL;
	struct sh_err err;

	snprintf(path, sizeof path, "%s/cluster", root);
	is_int(sh_datadir_open(path, &d, &err), 0, "open");
	is_int(sh_datadir_cluster_id(d), 0, "no cluster id before one is set");
	is_int(sh_datadir_set_cluster_id(d, 0x1234abcd5678ef00ULL, &err), 0, "set it");
	is_int(sh_datadir_set_cluster_id(d, 7, &err), SH_EINVAL, "it is set once");
	sh_datadir_close(d);
	is_int(sh_datadir_open(path, &d, &err), 0, "reopen");
	ok(sh_datadir_cluster_id(d) == 0x1234abcd5678ef00ULL, "the cluster id is kept");
	sh_datadir_close(d);
	snprintf(file, sizeof file, "%s/cluster.id", path);
	write_text(file, "xyz\n");
	is_int(sh_datadir_open(path, &d, &err), SH_ECORRUPT, "a damaged cluster.id is refused");
	like(err.msg, file, "naming the file");
}

static void test_unusable(void)
{
	char path[256];
	struct sh_datadir *d = NULL;
	struct sh_err err;

	snprintf(path, sizeof path, "%s/file", root);
	write_text(path, "not a dir");
	ok(sh_datadir_open(path, &d, &err) < 0, "a regular file is not a data dir");
	like(err.msg, path, "the error names it");
	ok(sh_datadir_open("/proc/shoal-cannot-exist/x", &d, &err) < 0, "an impossible path fails");
	like(err.msg, "cannot create directory", "and says why");
}

/* Relative paths, as the default data dir is ("shoal-data"): the parent
 * made durable is the current directory; "." and ".." at the end. */
static void test_relative(void)
{
	const char *paths[] = {"rel", "./rel2", "rel3/", "rel4//x", "rel5/.", "rel6/sub/.."};
	struct sh_datadir *d = NULL;
	struct sh_err err;

	if (chdir(root) != 0)
		bail_out("cannot cd to %s", root);
	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		int rv = sh_datadir_open(paths[i], &d, &err);

		is_int(rv, 0, "a relative data dir '%s' opens%s%s", paths[i], rv ? ": " : "",
		       rv ? err.msg : "");
		if (rv == 0)
			sh_datadir_close(d);
	}
	if (chdir("/") != 0)
		bail_out("cannot cd to /");
}

int main(void)
{
	char cmd[300];

	if (mkdtemp(root) == NULL)
		bail_out("mkdtemp failed");
	test_create_and_reopen();
	test_lock();
	test_corrupt();
	test_cluster_id();
	test_unusable();
	test_relative();
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	if (system(cmd) != 0)
		diag("could not remove %s", root);
	return done_testing();
}
