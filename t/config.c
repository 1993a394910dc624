/* Tests of server/config: defaults, the file, flags, errors with file:line
 * and key, cross-key checks, and agreement of the table with
 * etc/shoald.toml and doc/shoald.toml.5. */
#include "build.h"

#include "cluster/swim.h"
#include "server/config.h"
#include "tap.h"
#include "util/toml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *srcdir(void)
{
	const char *s = getenv("top_srcdir");

	return s != NULL ? s : ".";
}

/* Load text over fresh defaults; returns the code, err filled. */
static int load(struct sh_config *cfg, const char *text, struct sh_err *err)
{
	int rv;

	if (sh_config_init(cfg, err) != 0)
		bail_out("defaults do not load: %s", err->msg);
	rv = sh_config_load_text(cfg, text, strlen(text), "t.toml", err);
	return rv;
}

static void test_defaults(void)
{
	struct sh_config cfg;
	struct sh_err err;

	is_int(sh_config_init(&cfg, &err), 0, "every default parses and is in range");
	is_str(cfg.data_dir, "shoal-data", "data_dir default");
	is_int(cfg.base_port, 747, "base_port default");
	is_int(cfg.max_frame_bytes, 16 << 20, "max_frame_bytes default is 16MiB");
	is_int(cfg.seeds.n, 0, "no seeds by default");
	is_int(sh_config_validate(&cfg, &err), 0, "defaults validate");
	is_int(cfg.cluster_port, 7471, "cluster port derived: 7471");
	is_int(cfg.client_port, 7472, "client port derived: 7472");
	is_int(cfg.rest_port, 7473, "REST port derived: 7473");
	ok(cfg.node_name[0] != '\0', "empty node.name becomes the host name (%s)", cfg.node_name);
	is_str(cfg.advertise_address, "127.0.0.1", "advertise address defaults to listen address");
	ok(cfg.search_threads >= 1, "search.threads 0 becomes the CPU count (%lld)",
	   (long long)cfg.search_threads);
	sh_config_free(&cfg);
}

static void test_file(void)
{
	struct sh_config cfg;
	struct sh_err err;
	const char *text = "[node]\nname = \"n1\"\ndata_dir = \"/var/lib/shoal\"\n"
			   "[cluster]\nseeds = [\"10.0.0.1:7471\", \"[::1]:7481\", \"db-2:7471\"]\n"
			   "[log]\nlevel = \"debug\"\n"
			   "[limits]\nmax_frame_bytes = \"1GiB\"\n";

	is_int(load(&cfg, text, &err), 0, "a good file loads: %s", err.msg);
	is_str(cfg.node_name, "n1", "node.name from the file");
	is_int(cfg.seeds.n, 3, "three seeds");
	is_str(cfg.seeds.n == 3 ? cfg.seeds.v[1] : NULL, "[::1]:7481", "IPv6 seed kept");
	is_int(cfg.log_level, 3 - 3, "log.level debug");
	is_int(cfg.max_frame_bytes, 1ull << 30, "size with a unit");
	sh_config_free(&cfg);
	is_int(load(&cfg, "log.level = \"warn\"\nlimits.max_frame_bytes = 65536\n", &err), 0,
	       "dotted keys at the top level work too");
	is_int(cfg.log_level, 2, "log.level warn");
	is_int(cfg.max_frame_bytes, 65536, "size as an integer");
	sh_config_free(&cfg);
}

static void expect_error(const char *text, int code, const char *want, const char *what)
{
	struct sh_config cfg;
	struct sh_err err;

	is_int(load(&cfg, text, &err), code, "%s: refused", what);
	like(err.msg, want, "%s: message", what);
	sh_config_free(&cfg);
}

static void test_file_errors(void)
{
	expect_error("[node]\nnmae = \"x\"\n", SH_EINVAL, "t.toml:2:1: unknown key 'node.nmae'",
		     "unknown key");
	expect_error("[nodes]\nname = \"x\"\n", SH_EINVAL, "unknown key 'nodes.name'",
		     "unknown section");
	expect_error("name = \"x\"\n", SH_EINVAL, "unknown key 'name' (keys are in sections",
		     "key outside a section");
	expect_error("[listen]\nbase_port = \"747\"\n", SH_EINVAL,
		     "t.toml:2:1: key 'listen.base_port': expected an integer, found string",
		     "wrong type");
	expect_error("[listen]\n\nbase_port = 70000\n", SH_ERANGE,
		     "t.toml:3:1: key 'listen.base_port': 70000 is outside 1..6553",
		     "out of range");
	expect_error(
		"[log]\nlevel = \"loud\"\n", SH_EINVAL,
		"key 'log.level': unknown value 'loud' (expected one of: debug, info, warn, error)",
		"bad enum");
	expect_error("[cluster]\nseeds = [\"a:1\", 7]\n", SH_EINVAL,
		     "key 'cluster.seeds': item 2: expected a string, found integer",
		     "bad list item");
	expect_error("[cluster]\nseeds = [\"nohost\"]\n", SH_EINVAL, "'nohost' is not host:port",
		     "seed without port");
	expect_error("[cluster]\nseeds = [\"::1:7471\"]\n", SH_EINVAL, "goes in brackets",
		     "bare IPv6 seed");
	expect_error("[cluster]\nseeds = [\"h:99999\"]\n", SH_EINVAL, "port must be 1..65535",
		     "seed port out of range");
	expect_error("[limits]\nmax_frame_bytes = \"2TiB\"\n", SH_ERANGE,
		     "outside 4096..1073741824", "size over the limit");
	expect_error("[limits]\nmax_frame_bytes = \"12 parsecs\"\n", SH_EINVAL, "unknown unit",
		     "size with a bad unit");
	expect_error("[node]\nname = \"a b\"\n", SH_EINVAL, "use letters, digits", "bad node name");
	expect_error("[listen]\naddress = \"localhost\"\n", SH_EINVAL,
		     "'localhost' is not an IPv4 or IPv6 address", "address not an IP");
	expect_error("[node]\nname = \"x\"\nname = \"y\"\n", SH_EINVAL, "t.toml:3:", "TOML error");
	expect_error("[log\n", SH_EINVAL, "t.toml:1:", "TOML syntax error has line:col");
}

static void test_flags(void)
{
	struct sh_config cfg;
	struct sh_err err;

	sh_config_init(&cfg, &err);
	ok(sh_config_is_flag("--log-level"), "--log-level is a flag");
	ok(sh_config_is_flag("--node-data-dir"), "--node-data-dir is a flag");
	ok(!sh_config_is_flag("--log.level") && !sh_config_is_flag("--nope"), "others are not");
	is_int(sh_config_set(&cfg, "--log-level", "error", &err), 0, "set --log-level");
	is_int(cfg.log_level, 3, "flag applied");
	is_int(sh_config_set(&cfg, "--cluster-seeds", "a:1, b:2", &err), 0, "set a list flag");
	is_int(cfg.seeds.n, 2, "comma-separated list, spaces dropped");
	is_str(cfg.seeds.n == 2 ? cfg.seeds.v[1] : NULL, "b:2", "second item");
	is_int(sh_config_set(&cfg, "--listen-base-port", "x7", &err), SH_EINVAL,
	       "bad integer flag");
	is_str(err.msg, "command line: --listen-base-port: 'x7' is not an integer",
	       "the error names the flag");
	is_int(sh_config_set(&cfg, "--bogus", "1", &err), SH_EINVAL, "unknown flag");
	like(err.msg, "unknown option '--bogus'", "and says so");
	is_int(sh_config_set(&cfg, "log.level", "info", &err), 0, "a key name works too");
	sh_config_free(&cfg);
}

static void test_validate(void)
{
	struct sh_config cfg;
	struct sh_err err;

	load(&cfg, "[listen]\nbase_port = 748\nclient_port = 7481\n", &err);
	is_int(sh_config_validate(&cfg, &err), SH_EINVAL, "colliding ports refused");
	like(err.msg, "listen ports must differ (cluster 7481, client 7481, rest 7483)",
	     "the message lists the ports");
	sh_config_free(&cfg);
	load(&cfg, "[listen]\naddress = \"0.0.0.0\"\n", &err);
	is_int(sh_config_validate(&cfg, &err), SH_EINVAL, "0.0.0.0 without advertise refused");
	like(err.msg, "listen.advertise_address must name", "and says what to set");
	sh_config_free(&cfg);
	load(&cfg, "[listen]\naddress = \"0.0.0.0\"\nadvertise_address = \"10.1.2.3\"\n", &err);
	is_int(sh_config_validate(&cfg, &err), 0, "0.0.0.0 with advertise is fine");
	sh_config_free(&cfg);
}

static void test_membership(void)
{
	struct sh_config cfg;
	struct sh_err err;
	struct swim_config sw;

	swim_config_default(&sw);
	load(&cfg, "", &err);
	is_int(sh_config_validate(&cfg, &err), 0, "defaults validate");
	ok(cfg.probe_interval_ms == sw.probe_interval_ms &&
		   cfg.probe_timeout_ms == sw.probe_timeout_ms &&
		   cfg.indirect_checks == sw.indirect_checks &&
		   cfg.suspicion_mult == sw.suspicion_mult &&
		   cfg.suspicion_max_timeout_mult == sw.suspicion_max_timeout_mult &&
		   cfg.gossip_interval_ms == sw.gossip_interval_ms &&
		   cfg.gossip_nodes == sw.gossip_nodes &&
		   cfg.retransmit_mult == sw.retransmit_mult &&
		   cfg.push_pull_interval_ms == sw.push_pull_interval_ms &&
		   cfg.awareness_max_multiplier == sw.awareness_max_multiplier &&
		   cfg.udp_mtu == sw.udp_mtu && cfg.rejoin_interval_ms == sw.rejoin_interval_ms,
	   "membership defaults are swim's (memberlist's LAN defaults)");
	sh_config_free(&cfg);
	load(&cfg, "[membership]\nprofile = \"local\"\ngossip_interval_ms = 70\n", &err);
	sh_config_set(&cfg, "--membership-probe-timeout-ms", "150", &err);
	is_int(sh_config_validate(&cfg, &err), 0, "profile local validates");
	is_int(cfg.probe_interval_ms, 200, "local: probe interval 200 ms");
	is_int(cfg.push_pull_interval_ms, 5000, "local: push-pull 5 s");
	is_int(cfg.rejoin_interval_ms, 5000, "local: rejoin 5 s");
	is_int(cfg.gossip_interval_ms, 70, "a key set in the file overrides the profile");
	is_int(cfg.probe_timeout_ms, 150, "so does a flag");
	is_int(cfg.suspicion_mult, 4, "keys outside the profile keep their defaults");
	sh_config_free(&cfg);
	load(&cfg, "[membership]\nprobe_interval_ms = 400\nprobe_timeout_ms = 400\n", &err);
	is_int(sh_config_validate(&cfg, &err), SH_EINVAL, "probe timeout >= interval refused");
	like(err.msg, "membership.probe_timeout_ms (400) must be below", "with both keys named");
	sh_config_free(&cfg);
}

static void test_runtime(void)
{
	struct sh_config a, b;
	struct sh_err err;

	load(&a, "[log]\nlevel = \"info\"\n", &err);
	load(&b, "[log]\nlevel = \"debug\"\n[node]\nname = \"other\"\n", &err);
	is_int(sh_config_apply_runtime(&a, &b), 1, "one changed key needs a restart");
	is_int(a.log_level, 0, "log.level applied at run time");
	ok(a.node_name[0] == '\0', "node.name not applied at run time");
	sh_config_free(&a);
	sh_config_free(&b);
}

/* etc/shoald.toml sets every key to its default; doc/shoald.toml.5 names
 * every key. */
static void test_sample_and_man(void)
{
	char path[1024], a[1024], b[1024];
	struct sh_config sample, def;
	struct sh_err err;
	struct toml_value *root;
	FILE *f;
	static char man[1 << 17];
	size_t n = 0;
	int missing = 0, differ = 0, undocumented = 0;

	snprintf(path, sizeof path, "%s/etc/shoald.toml", srcdir());
	sh_config_init(&sample, &err);
	sh_config_init(&def, &err);
	is_int(sh_config_load_file(&sample, path, &err), 0, "etc/shoald.toml loads: %s", err.msg);
	root = toml_parse_file(path, 1 << 20, &err);
	for (size_t i = 0; root != NULL && i < sh_config_key_count(); i++) {
		char sect[64];
		const char *key = sh_config_key(i), *dot = strchr(key, '.');
		const struct toml_value *t;

		snprintf(sect, sizeof sect, "%.*s", (int)(dot - key), key);
		t = toml_table_get(root, sect);
		if (t == NULL || toml_type(t) != TOML_TABLE || toml_table_get(t, dot + 1) == NULL) {
			diag("etc/shoald.toml does not set %s", key);
			missing++;
		}
		sh_config_format(&sample, i, a, sizeof a);
		sh_config_format(&def, i, b, sizeof b);
		if (strcmp(a, b) != 0) {
			diag("etc/shoald.toml sets %s = '%s' but the default is '%s'", key, a, b);
			differ++;
		}
	}
	toml_free(root);
	is_int(missing, 0, "etc/shoald.toml sets every key of the table");
	is_int(differ, 0, "etc/shoald.toml shows every default as it is");
	snprintf(path, sizeof path, "%s/doc/shoald.toml.5.in", srcdir());
	if ((f = fopen(path, "r")) != NULL) {
		n = fread(man, 1, sizeof man - 1, f);
		fclose(f);
	}
	man[n] = '\0';
	ok(n > 0, "doc/shoald.toml.5.in is readable");
	for (size_t i = 0; i < sh_config_key_count(); i++) {
		const char *key = sh_config_key(i), *dot = strchr(key, '.');
		char head[128], want[128];
		const char *sect, *next, *hit;

		/* One ".SS [section]" per section, one ".TP\n.B name" per key in it. */
		snprintf(head, sizeof head, ".SS [%.*s]\n", (int)(dot - key), key);
		snprintf(want, sizeof want, ".TP\n.B %s\n", dot + 1);
		sect = strstr(man, head);
		next = sect ? strstr(sect + 1, ".SS ") : NULL;
		hit = sect ? strstr(sect, want) : NULL;
		if (hit == NULL || (next != NULL && hit > next)) {
			diag("doc/shoald.toml.5.in does not document %s", key);
			undocumented++;
		}
	}
	is_int(undocumented, 0, "doc/shoald.toml.5.in documents every key");
	sh_config_free(&sample);
	sh_config_free(&def);
}

int main(void)
{
	test_defaults();
	test_file();
	test_file_errors();
	test_flags();
	test_validate();
	test_runtime();
	test_membership();
	test_sample_and_man();
	return done_testing();
}
