/* Tests of util/log: exact line format, level filtering before formatting,
 * long lines, reopening after a rename, and libevent's messages routed in. */
#include "build.h"

#include "tap.h"
#include "util/clock.h"
#include "util/log.h"

#include <event2/util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/shoal-t-log-XXXXXX";
static char path[256];
static int evaluated;

static int side_effect(void)
{
	return ++evaluated;
}

/* The whole file as a string (static buffer). */
static const char *slurp(const char *p)
{
	static char buf[1 << 16];
	FILE *f = fopen(p, "r");
	size_t n = 0;

	if (f != NULL) {
		n = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return buf;
}

static void test_format(void)
{
	struct sh_clock_manual m;
	struct sh_err err;

	/* 2026-11-21T21:03:04.123Z */
	sh_clock_manual_install(&m, 1, 1795294984123000000u);
	is_int(sh_log_open(path, &err), 0, "open a log file");
	sh_log_set_node("node-1");
	sh_log_set_level(SH_LOG_INFO);
	LOG_INFO("test", "hello %d", 42);
	LOG_DEBUG("test", "hidden %d", side_effect());
	is_str(slurp(path), "2026-11-21T21:03:04.123Z INFO  node-1 test: hello 42\n",
	       "a line carries ms timestamp, level, node and subsystem");
	is_int(evaluated, 0, "arguments of a filtered level are not evaluated");
	sh_log_set_thread_node("sim-3");
	LOG_WARN("raft", "w");
	sh_log_set_thread_node(NULL);
	like(slurp(path), "WARN  sim-3 raft: w\n", "a per-thread node name overrides");
	sh_log_set_level(SH_LOG_DEBUG);
	LOG_DEBUG("test", "shown %d", side_effect());
	like(slurp(path), "DEBUG node-1 test: shown 1\n", "debug is written at level debug");
	sh_clock_install(NULL);
}

static void test_long_line(void)
{
	static char big[SH_LOG_LINE_MAX * 2];
	const char *s, *last;
	struct sh_err err;

	unlink(path);
	sh_log_open(path, &err);
	memset(big, 'x', sizeof big - 1);
	LOG_ERROR("test", "%s", big);
	s = slurp(path);
	last = strrchr(s, '\n');
	is_int(strlen(s), SH_LOG_LINE_MAX - 1, "a long message is cut to one line");
	ok(last != NULL && last == s + strlen(s) - 1 && strncmp(last - 3, "...", 3) == 0,
	   "the cut line ends in ... and a newline");
}

static void test_reopen(void)
{
	char moved[300];
	struct sh_err err;

	snprintf(moved, sizeof moved, "%s.1", path);
	unlink(path);
	sh_log_open(path, &err);
	LOG_INFO("test", "before rotation");
	rename(path, moved);
	LOG_INFO("test", "still to the moved file");
	is_int(sh_log_open(path, &err), 0, "reopen the same path (logrotate)");
	LOG_INFO("test", "after rotation");
	like(slurp(moved), "still to the moved file", "until reopened, lines go to the old file");
	like(slurp(path), "after rotation", "after reopening, lines go to the new file");
	ok(strstr(slurp(path), "before") == NULL, "the new file has only new lines");
	is_int(sh_log_open("/nonexistent-dir/x.log", &err), SH_ENOTFOUND,
	       "an unopenable path fails");
	like(err.msg, "cannot open '/nonexistent-dir/x.log'", "and says which path");
	LOG_INFO("test", "kept");
	like(slurp(path), "kept", "a failed open keeps the old destination");
	unlink(moved);
}

static void test_libevent(void)
{
	sh_log_hook_libevent();
	sh_log_set_level(SH_LOG_DEBUG);
	/* fcntl on -1 fails and libevent reports it through its log callback. */
	evutil_make_socket_nonblocking(-1);
	like(slurp(path), " libevent: ", "libevent's messages reach our log");
}

static void test_levels(void)
{
	is_int(sh_log_level_parse("debug"), SH_LOG_DEBUG, "parse debug");
	is_int(sh_log_level_parse("error"), SH_LOG_ERROR, "parse error");
	is_int(sh_log_level_parse("loud"), -1, "unknown level is -1");
	is_str(sh_log_level_name(SH_LOG_WARN), "warn", "level name");
}

int main(void)
{
	if (mkdtemp(dir) == NULL)
		bail_out("mkdtemp failed");
	snprintf(path, sizeof path, "%s/shoald.log", dir);
	test_format();
	test_long_line();
	test_reopen();
	test_libevent();
	test_levels();
	sh_log_close();
	unlink(path);
	rmdir(dir);
	return done_testing();
}
