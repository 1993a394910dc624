/* shoalctl against a real shoald: every command, upserts from arguments,
 * JSON lines and .fvecs, --json output, the documented exit codes, and a
 * small bench run. */
#include "build.h"

#include "srv.h"
#include "tap.h"

static struct srv s;
static char dir[200], out[65536];

/* Run shoalctl with args (a shell fragment); output (stdout + stderr) in
 * out; returns the exit status. */
static int ctl(const char *args)
{
	char cmd[2048], path[300];
	FILE *f;
	size_t n;
	int st;

	snprintf(path, sizeof path, "%s/out", dir);
	/* repeated --addr add up (seeds): a test that names its own address
	 * gets only that one */
	snprintf(cmd, sizeof cmd, "%s/src/client/shoalctl %s%s %s >'%s' 2>&1 </dev/null",
		 srv_builddir(), strncmp(args, "--addr ", 7) == 0 ? "" : "--addr ",
		 strncmp(args, "--addr ", 7) == 0 ? "" : s.addr, args, path);
	st = system(cmd);
	out[0] = '\0';
	if ((f = fopen(path, "r")) != NULL) {
		n = fread(out, 1, sizeof out - 1, f);
		out[n] = '\0';
		fclose(f);
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_inputs(void)
{
	char path[300];
	FILE *f;

	snprintf(path, sizeof path, "%s/in.jsonl", dir);
	f = fopen(path, "w");
	for (int i = 10; i < 20; i++)
		fprintf(f, "{\"id\": %d, \"vector\": [%d, 0, 1], \"payload\": {\"n\": %d}}\n", i, i,
			i);
	fclose(f);
	snprintf(path, sizeof path, "%s/in.fvecs", dir);
	f = fopen(path, "wb");
	for (int i = 0; i < 200; i++) {
		int32_t d = 3;
		float v[3] = {(float)i, 1, (float)(i % 7)};

		fwrite(&d, 4, 1, f);
		fwrite(v, 4, 3, f);
	}
	fclose(f);
	snprintf(path, sizeof path, "%s/bad.jsonl", dir);
	f = fopen(path, "w");
	fprintf(f, "{\"id\": 1, \"vector\": [1, 2, 3]}\n{\"id\": \n");
	fclose(f);
}

static void test_commands(void)
{
	char args[600];

	is_int(ctl("collection create c --dim 3 --metric l2"), 0, "collection create");
	like(out, "created (token 1:", "prints the token");
	is_int(ctl("collection create c --dim 3"), 4, "again: exit 4 (already exists)");
	like(out, "ALREADY_EXISTS: collection 'c' already exists", "with the server's message");
	is_int(ctl("upsert c --id 1 --vector 1,2,3 --payload '{\"color\":\"red\"}'"), 0,
	       "upsert from arguments");
	is_int(ctl("upsert c --id 2 --vector 1,2"), 5, "a wrong dimension: exit 5");
	like(out, "INVALID_ARGUMENT", "says invalid argument");
	snprintf(args, sizeof args, "upsert c --jsonl '%s/in.jsonl'", dir);
	is_int(ctl(args), 0, "upsert from JSON lines");
	like(out, "upserted: 10", "10 points");
	snprintf(args, sizeof args, "upsert c --fvecs '%s/in.fvecs' --start-id 1000 --batch 50",
		 dir);
	is_int(ctl(args), 0, "upsert from .fvecs");
	like(out, "upserted: 200", "200 points");
	ok(strchr(out, '\r') == NULL, "no progress bar when stderr is not a terminal");
	ok(strstr(out, "progress") == NULL, "  and no progress line for a load this short");
	snprintf(args, sizeof args,
		 "upsert c --fvecs '%s/in.fvecs' --start-id 1000 --batch 50 --depth 1 "
		 "--progress-every 0",
		 dir);
	is_int(ctl(args), 0, "upsert from .fvecs, a progress line at every batch");
	like(out, "shoalctl: progress: 50 / 200 points  ",
	     "  lines while it loads, off a terminal");
	like(out, "shoalctl: progress: 200 / 200 points  100.0%", "  and a last one");
	ok(strchr(out, '\r') == NULL, "  whole lines, no carriage return");
	snprintf(args, sizeof args, "upsert c --jsonl '%s/bad.jsonl'", dir);
	is_int(ctl(args), 2, "a malformed JSON line: exit 2");
	like(out, "line 2", "names the line");
	is_int(ctl("count c"), 0, "count");
	is_str(out, "211\n", "211 points (1 + 10 + 200)");
	is_int(ctl("count c --filter '{\"must\":[{\"key\":\"n\",\"range\":{\"gte\":15}}]}'"), 0,
	       "count with a filter");
	is_str(out, "5\n", "5 match");
	is_int(ctl("search c --vector 1,2,3 -k 2"), 0, "search");
	like(out, "1\t0\t{\"color\":\"red\"}\n", "the point itself first, with its payload");
	is_int(ctl("--json search c --vector 1,2,3 -k 1 --no-payload"), 0, "search --json");
	like(out, "{\"exact\":false,\"points\":[{\"id\":1,\"distance\":0.0}]}", "as JSON");
	is_int(ctl("search c --vector 1,2,3 -k 0"), 5, "k = 0: exit 5");
	is_int(ctl("get c 1 12"), 0, "get");
	like(out, "12\t{\"n\":12}", "shows payloads");
	is_int(ctl("get c 1 99"), 3, "get an absent id: exit 3");
	is_int(ctl("delete c 1 2"), 0, "delete");
	like(out, "deleted: 1", "one existed");
	is_int(ctl("--json scroll c --limit 3"), 0, "scroll --json");
	like(out, "\"next_offset\":13", "with the next offset (10, 11, 12 shown)");
	is_int(ctl("collection info c"), 0, "collection info");
	like(out, "points 210", "210 points");
	is_int(ctl("--json collection list"), 0, "collection list --json");
	like(out, "{\"collections\":[{\"name\":\"c\"", "as JSON");
	is_int(ctl("status"), 0, "status");
	like(out, "role leader", "a lone voter leads");
	like(out, "\nready: yes, lag 0 entries, 0 ms\n", "ready, without lag");
	is_int(ctl("--json status"), 0, "status --json");
	like(out, "\"ready\":true", "  ready");
	is_int(ctl("members"), 0, "members");
	like(out, "NAME ", "a table with a header");
	like(out, " alive ", "this node alive");
	like(out, " self ", "shown as self");
	is_int(ctl("--json members"), 0, "members --json");
	like(out, "\"state\":\"alive\"", "as JSON");
	is_int(ctl("members extra"), 2, "members takes no argument: exit 2");
	is_int(ctl("cluster voters"), 0, "cluster voters");
	like(out, " leader ", "this node, the leader");
	is_int(ctl("cluster verify"), 0, "cluster verify");
	like(out, "1 replicas agree at index ", "one replica agrees with itself");
	is_int(ctl("cluster remove nobody"), 3, "cluster remove of an unknown member: exit 3");
	is_int(ctl("cluster transfer-leader"), 5, "transfer-leader with no other voter: exit 5");
	is_int(ctl("cluster frob"), 2, "an unknown cluster command: exit 2");
	is_int(ctl("--consistency read_your_writes count c"), 2,
	       "read_your_writes: shoalctl has no token of an earlier run: exit 2");
	like(out, "use strong", "  says what to use instead");
	is_int(ctl("search nope --vector 1"), 3, "an unknown collection: exit 3");
	is_int(ctl("frobnicate"), 2, "an unknown command: exit 2");
	{
		static const char *const cmds[] = {"collection", "upsert",  "get",   "delete",
						   "search",     "scroll",  "count", "status",
						   "members",    "cluster", "bench"};

		for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
			snprintf(args, sizeof args, "%s --help", cmds[i]);
			is_int(ctl(args), 0, "shoalctl %s --help: exit 0", cmds[i]);
			like(out, "usage: shoalctl [OPTIONS] ", "  prints its usage");
		}
		is_int(ctl("search c --vector 1,2,3 -h"), 0, "-h after other arguments too");
		is_int(ctl("help cluster"), 0, "shoalctl help cluster");
		like(out, "6 a voter", "  says what the exit codes of verify are");
		is_int(ctl("help frobnicate"), 2, "help for an unknown command: exit 2");
	}
	is_int(ctl("--consistency sometimes status"), 2, "a bad option value: exit 2");
	is_int(ctl("--addr 127.0.0.1:1 --timeout 500 status"), 6, "no server: exit 6");
	like(out, "UNAVAILABLE", "unavailable");
}

static void test_bench(void)
{
	char args[600];

	is_int(ctl("bench --mode ping --requests 2000 --concurrency 2 --depth 8"), 0, "bench ping");
	like(out, "ping", "reports");
	like(out, "p999", "with percentiles");
	snprintf(args, sizeof args,
		 "bench --dataset '%s/in.fvecs' --collection b --nq 20 -k 5 --concurrency 2 "
		 "--depth 2 --load",
		 dir);
	is_int(ctl(args), 0, "bench search on an .fvecs dataset, loaded first");
	like(out, "recall@5 ", "recall against the server's exact search");
	snprintf(args, sizeof args,
		 "bench --dataset '%s/in.fvecs' --collection b --nq 20 --mode mix "
		 "--search-ratio 0.5 --concurrency 2 --requests 40",
		 dir);
	is_int(ctl(args), 0, "bench mix of searches and upserts");
	like(out, "upsert", "reports the upserts too");
	snprintf(args, sizeof args,
		 "bench --dataset '%s/in.fvecs' --collection b --no-load --mode upsert "
		 "--per-request 10 --depth 4 --requests 100000 --duration 1 --lag %s",
		 dir, s.addr);
	is_int(ctl(args), 0, "bench upsert for 1 s with the searchable lag measured");
	like(out, "searchable after an ack: p50 ", "reports the lag of the replica");
	like(out, " 0 points missing at the end", "every acknowledged point read back");
	snprintf(args, sizeof args, "bench --dataset '%s/in.fvecs' --collection b --lag %s", dir,
		 s.addr);
	is_int(ctl(args), 2, "--lag with searches: usage error");
	is_int(ctl("collection drop c"), 0, "collection drop");
}

int main(void)
{
	srv_watchdog(120);
	srv_tmpdir(dir, sizeof dir);
	snprintf(s.dir, sizeof s.dir, "%s/data", dir);
	/* every shoalctl is a process of its own, without the token of the
	 * write before */
	if (srv_start_strong(&s) != 0)
		bail_out("shoald does not start");
	write_inputs();
	test_commands();
	test_bench();
	is_int(srv_stop(&s, SIGTERM), 0, "SIGTERM: clean exit");
	srv_rmdir(dir);
	return done_testing();
}
