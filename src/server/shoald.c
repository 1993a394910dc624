/*
 * shoald: the shoal daemon's entry point.
 *
 * Reads the command line and the configuration, opens the data directory
 * (exclusive lock, node id) and the storage in it (snapshot loaded, log
 * verified and replayed: storage/db.h), starts the client API (net/api.h:
 * the search pool; net/server.h: the binary protocol; net/rest.h: REST),
 * starts membership (SWIM on the cluster port, joining the configured seeds),
 * sets up logging and runs the libevent loop until SIGTERM or SIGINT, which
 * first leave the cluster gracefully (a second signal stops at once).
 * Stopping: the listeners close, the reads in flight finish, the storage
 * completes the writes in flight and closes, then the connections go.
 * SIGUSR1 logs the membership traffic counters.  SIGHUP re-reads the
 * configuration file (keys marked "reloaded on SIGHUP" take effect, others
 * are reported as needing a restart) and reopens the log file.  Under
 * systemd (Type=notify) it says READY=1 once it serves, its role and
 * readiness in STATUS= lines, and STOPPING=1 (server/notify.h).  Only
 * main() decides to exit.
 *
 * --restore FILE seeds a new data dir from a backup and exits (restore.h).
 *
 * Exit status: 0 after a clean stop, a good --check-config or a restore; 1
 * when the node cannot start (data dir, ...) or the restore fails; 2 for a
 * command-line or configuration error.
 */
#include "build.h"

#include "cluster/keyring.h"
#include "cluster/node.h"
#include "cluster/node_net.h"
#include "cluster/peer_tls.h"
#include "cluster/swim_net.h"
#include "net/api.h"
#include "net/rest.h"
#include "net/server.h"
#include "net/tls.h"
#include "server/config.h"
#include "server/notify.h"
#include "server/restore.h"
#include "storage/datadir.h"
#include "storage/db.h"
#include "storage/hardstate.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/log.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#define EXIT_START 1
#define EXIT_USAGE 2

struct flag {
	char *name;        /* owned */
	const char *value; /* points into argv */
};

struct shoald {
	const char *config_path;
	const char *restore; /* --restore FILE */
	bool check_only;
	struct flag *flags;
	size_t n_flags;
	struct sh_config cfg;
	struct sh_datadir *datadir;
	struct hardstate *hs;
	struct db *db;
	struct node *node;
	struct node_net *net; /* the node's peer links and timer */
	struct event_base *base;
	struct event *signals[4];
	struct event *db_event;
	struct api *api;
	struct server *server;
	struct rest *rest;
	int exit_status;
	struct swim_net *swim;
	struct keyring *keyring;       /* gossip keys, NULL without (doc/security.md) */
	struct ptls *tls;              /* peer links' TLS, with the keyring */
	struct tls_server *client_tls; /* the client and REST ports' TLS, or NULL */
	struct sh_notify *notify;      /* READY=1, STATUS=, STOPPING=1 to systemd */
	bool stopping;
};

static void usage(FILE *out)
{
	fprintf(out, "usage: shoald [--config FILE] [--KEY VALUE ...]\n"
		     "       shoald --check-config [FILE] [--KEY VALUE ...]\n"
		     "       shoald --restore FILE [--config FILE] [--KEY VALUE ...]\n"
		     "       shoald --help | --help-config | --version\n"
		     "\n"
		     "  -c, --config FILE      read settings from this TOML file (default: none;\n"
		     "                         every key has a default)\n"
		     "  --check-config [FILE]  validate the configuration and exit\n"
		     "  --help-config          list every configuration key and its flag\n"
		     "  --restore FILE         seed a new (missing or empty) data dir from a\n"
		     "                         backup (shoalctl snapshot save) and exit\n"
		     "  --KEY VALUE            set a key, e.g. --log-level debug, --node-name n1,\n"
		     "                         --listen-base-port=748 (overrides the file)\n"
		     "  -V, --version          print the version\n"
		     "\n"
		     "See shoald(8) and shoald.toml(5).\n");
}

/* Split "--key=value" or "--key value"; returns the number of argv entries used. */
static int take_value(int argc, char **argv, int i, const char **name, const char **value,
		      char *buf, size_t size)
{
	const char *eq = strchr(argv[i], '=');

	if (eq != NULL) {
		snprintf(buf, size, "%.*s", (int)(eq - argv[i]), argv[i]);
		*name = buf;
		*value = eq + 1;
		return 1;
	}
	*name = argv[i];
	*value = i + 1 < argc ? argv[i + 1] : NULL;
	return 2;
}

static int push_flag(struct shoald *d, const char *name, const char *value)
{
	struct flag *grown = sh_reallocarray(d->flags, d->n_flags + 1, sizeof *grown);
	char *copy = grown ? sh_strdup(name) : NULL;

	if (grown != NULL)
		d->flags = grown;
	if (copy == NULL) {
		fprintf(stderr, "shoald: out of memory\n");
		return -1;
	}
	d->flags[d->n_flags++] = (struct flag){copy, value};
	return 0;
}

/* Returns -1 to continue, or an exit status. */
static int parse_one(struct shoald *d, int argc, char **argv, int *i)
{
	const char *a = argv[*i], *name, *value;
	char buf[128];
	int used;

	if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
		return usage(stdout), 0;
	if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0)
		return printf("shoald (%s) %s, allocator %s\n", PACKAGE_NAME, PACKAGE_VERSION,
			      sh_alloc_name()),
		       0;
	if (strcmp(a, "--help-config") == 0)
		return sh_config_print_help(stdout), 0;
	if (strcmp(a, "--check-config") == 0) {
		d->check_only = true;
		if (*i + 1 < argc && argv[*i + 1][0] != '-')
			d->config_path = argv[++*i];
		return -1;
	}
	used = take_value(argc, argv, *i, &name, &value, buf, sizeof buf);
	if (strcmp(name, "--restore") == 0) {
		if (value == NULL) {
			fprintf(stderr, "shoald: --restore needs a file\n");
			return EXIT_USAGE;
		}
		*i += used - 1;
		d->restore = value;
		return -1;
	}
	if (strcmp(name, "-c") == 0 || strcmp(name, "--config") == 0 || sh_config_is_flag(name)) {
		if (value == NULL) {
			fprintf(stderr, "shoald: %s needs a value\n", name);
			return EXIT_USAGE;
		}
		*i += used - 1;
		if (name[1] == 'c' || strcmp(name, "--config") == 0)
			d->config_path = value;
		else if (push_flag(d, name, value) != 0)
			return EXIT_START;
		return -1;
	}
	fprintf(stderr, "shoald: unknown option '%s' (see shoald --help and --help-config)\n", a);
	return EXIT_USAGE;
}

static int parse_args(struct shoald *d, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		int rv = parse_one(d, argc, argv, &i);

		if (rv >= 0)
			return rv;
	}
	return -1;
}

static int setup_log(const struct sh_config *cfg, struct sh_err *err)
{
	sh_log_set_level((enum sh_log_level)cfg->log_level);
	return sh_log_open(cfg->log_file, err);
}

enum load_mode { LOAD_CHECK, LOAD_START, LOAD_RELOAD };

/* Defaults, then the file, then the flags; validated.  At start the log is
 * opened before validation so that warnings about the values reach it. */
static int load_config(struct shoald *d, struct sh_config *cfg, enum load_mode mode,
		       struct sh_err *err)
{
	int rv = sh_config_init(cfg, err);

	if (rv != 0)
		return rv;
	if (d->config_path != NULL && (rv = sh_config_load_file(cfg, d->config_path, err)) != 0)
		goto err;
	for (size_t i = 0; i < d->n_flags; i++)
		if ((rv = sh_config_set(cfg, d->flags[i].name, d->flags[i].value, err)) != 0)
			goto err;
	if (mode == LOAD_START && (rv = setup_log(cfg, err)) != 0)
		goto err;
	if (mode != LOAD_RELOAD)
		sh_config_warn_inactive(cfg);
	if ((rv = sh_config_validate(cfg, err)) != 0)
		goto err;
	if (mode == LOAD_START)
		sh_log_set_node(cfg->node_name);
	return 0;
err:
	sh_config_free(cfg);
	return rv;
}

static int load_keys(struct shoald *d, bool reload, struct sh_err *err);
static void reload_tls(struct shoald *d);

static void on_reload(struct shoald *d)
{
	struct sh_config fresh;
	struct sh_err err;
	int restart;

	LOG_INFO("server", "SIGHUP: reloading configuration%s%s", d->config_path ? " from " : "",
		 d->config_path ? d->config_path : "");
	sh_notify_reloading(d->notify);
	if (load_config(d, &fresh, LOAD_RELOAD, &err) != 0) {
		LOG_ERROR("server", "reload failed, keeping the running configuration: %s",
			  err.msg);
		sh_notify_reloaded(d->notify);
		return;
	}
	restart = sh_config_apply_runtime(&d->cfg, &fresh);
	sh_config_free(&fresh);
	if (setup_log(&d->cfg, &err) != 0)
		LOG_ERROR("server", "reopening the log: %s", err.msg);
	if (d->api != NULL && load_keys(d, true, &err) != 0)
		LOG_ERROR("server",
			  "API keys NOT reloaded: %s; the keys loaded before stay in force, "
			  "including any removed from the files since",
			  err.msg);
	reload_tls(d);
	LOG_INFO("server", "configuration reloaded%s",
		 restart ? "; some changes need a restart" : "");
	sh_notify_reloaded(d->notify);
}

/* The client and REST ports' certificate and key, read again. */
static void reload_tls(struct shoald *d)
{
	const struct sh_config *c = &d->cfg;
	struct tls_files tf = {c->tls_cert_file, c->tls_key_file, c->tls_client_ca_file};
	struct ptls_certs pc = {c->peer_cert_file, c->peer_key_file, c->peer_ca_file};
	struct sh_err err;

	if (d->tls != NULL && c->peer_cert_file[0] != '\0') {
		if (ptls_reload_certs(d->tls, &pc, &err) != 0)
			LOG_ERROR(
				"server",
				"peer certificate NOT reloaded: %s; the one loaded before stays in "
				"use",
				err.msg);
		else
			LOG_INFO("server", "peer certificate reloaded from %s", c->peer_cert_file);
	}

	if (d->client_tls == NULL) {
		if (c->tls_cert_file[0] != '\0')
			LOG_ERROR("server", "TLS NOT turned on: that needs a restart");
		return;
	}
	if (tls_server_reload(d->client_tls, &tf, &err) != 0)
		LOG_ERROR("server",
			  "TLS certificate NOT reloaded: %s; the certificate loaded before stays "
			  "in use",
			  err.msg);
	else
		LOG_INFO("server", "TLS certificate reloaded from %s", c->tls_cert_file);
}

static void on_left(void *arg)
{
	struct shoald *d = arg;

	event_base_loopbreak(d->base);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct shoald *d = arg;

	if (sig == SIGHUP) {
		on_reload(d);
		return;
	}
	if (sig == SIGUSR1) {
		if (d->swim != NULL)
			swim_net_log_traffic(d->swim);
		return;
	}
	LOG_INFO("server", "%s received: stopping%s", sig == SIGTERM ? "SIGTERM" : "SIGINT",
		 d->cfg.leave_on_terminate
			 ? " (leaving the cluster first)"
			 : " (still a voter: cluster.leave_on_terminate is false)");
	sh_notify_stopping(d->notify);
	if (d->swim != NULL && !d->stopping && d->cfg.leave_on_terminate) {
		d->stopping = true;
		swim_net_leave(d->swim, on_left, d);
		return;
	}
	event_base_loopbreak(d->base);
}

static int setup_loop(struct shoald *d, struct sh_err *err)
{
	const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1};

	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_DFL); /* the snapshot writer is reaped by its pid */
	d->base = event_base_new();
	if (d->base == NULL)
		return sh_err_set(err, SH_ENOMEM, "cannot create the event loop");
	for (int i = 0; i < 4; i++) {
		d->signals[i] = evsignal_new(d->base, sigs[i], on_signal, d);
		if (d->signals[i] == NULL || evsignal_add(d->signals[i], NULL) != 0)
			return sh_err_set(err, SH_EIO, "cannot install signal handler %d", sigs[i]);
	}
	return 0;
}

/* Write completions from the storage's threads: run their callbacks. */
static void on_db(evutil_socket_t fd, short what, void *arg)
{
	struct shoald *d = arg;
	struct sh_err err;

	db_process(d->db);
	if (d->node != NULL)
		node_db_progress(d->node);
	if (db_failed(d->db, &err)) {
		LOG_ERROR("server", "stopping: %s", err.msg);
		d->exit_status = EXIT_START;
		event_base_loopbreak(d->base);
	}
}

static int open_storage(struct shoald *d, struct sh_err *err)
{
	static const enum wal_fsync policies[] = {
		[SH_FSYNC_ALWAYS] = WAL_FSYNC_ALWAYS,
		[SH_FSYNC_INTERVAL] = WAL_FSYNC_INTERVAL,
		[SH_FSYNC_NEVER] = WAL_FSYNC_NEVER,
	};
	struct db_opts o = {
		.dir = d->cfg.data_dir,
		.fsync = policies[d->cfg.fsync],
		.fsync_interval_ms = (uint32_t)d->cfg.fsync_interval_ms,
		.segment_bytes = d->cfg.segment_bytes,
		.wal_ahead_bytes = d->cfg.wal_write_ahead,
		.snapshot_entries = (uint64_t)d->cfg.snapshot_entries,
		.snapshot_bytes = d->cfg.snapshot_bytes,
		.max_payload_bytes = d->cfg.max_payload_bytes,
		.log_keep = (uint64_t)d->cfg.log_keep,
		.raft = true,
		.index_threads = d->cfg.index_background ? (unsigned)d->cfg.index_threads : 0,
		.max_fresh_bytes = (size_t)d->cfg.max_fresh_bytes,
	};
	int rv = hardstate_open(d->datadir, &d->hs, err);

	if (rv != 0)
		return rv;
	o.replay_upto = hardstate_commit(d->hs);
	if ((rv = db_open(&o, &d->db, NULL, err)) != 0)
		return rv;
	d->db_event = event_new(d->base, db_fd(d->db), EV_READ | EV_PERSIST, on_db, d);
	if (d->db_event == NULL || event_add(d->db_event, NULL) != 0)
		return sh_err_set(err, SH_EIO, "cannot watch the storage's eventfd");
	return 0;
}

/* "ip:port", with brackets for IPv6. */
static void host_port(char *buf, size_t size, const char *ip, int64_t port)
{
	snprintf(buf, size, strchr(ip, ':') ? "[%s]:%" PRId64 : "%s:%" PRId64, ip, port);
}

static void membership_config(const struct sh_config *c, struct swim_config *sc)
{
	swim_config_default(sc);
	sc->probe_interval_ms = (uint32_t)c->probe_interval_ms;
	sc->probe_timeout_ms = (uint32_t)c->probe_timeout_ms;
	sc->indirect_checks = (uint32_t)c->indirect_checks;
	sc->suspicion_mult = (uint32_t)c->suspicion_mult;
	sc->suspicion_max_timeout_mult = (uint32_t)c->suspicion_max_timeout_mult;
	sc->gossip_interval_ms = (uint32_t)c->gossip_interval_ms;
	sc->gossip_nodes = (uint32_t)c->gossip_nodes;
	sc->retransmit_mult = (uint32_t)c->retransmit_mult;
	sc->push_pull_interval_ms = (uint32_t)c->push_pull_interval_ms;
	sc->awareness_max_multiplier = (uint32_t)c->awareness_max_multiplier;
	sc->udp_mtu = (uint32_t)c->udp_mtu;
	sc->rejoin_interval_ms = (uint32_t)c->rejoin_interval_ms;
	/* memberlist keeps gossiping to the dead for 30 s at LAN settings:
	 * 30 probe intervals, so that the local profile scales it too. */
	sc->gossip_to_dead_ms = 30 * sc->probe_interval_ms;
}

/* Two nodes with one id (a copied data dir, a cloned machine): the one
 * that learned of the other from the cluster is the copy, and refuses to
 * go on; the one the cluster knows keeps running and warns. */
static void on_conflict(struct shoald *d, const struct swim_event *ev)
{
	if (!ev->other_known) {
		LOG_WARN("server",
			 "a copy of this node (node id %016" PRIx64
			 ") at %s tried to join; the cluster keeps this one, the copy stops",
			 sh_datadir_node_id(d->datadir), ev->addr);
		return;
	}
	LOG_ERROR("server",
		  "another node (at %s) already uses node id %016" PRIx64
		  " in this cluster: this one stops. Give it a data dir of its own (or delete "
		  "its node.id to make it a new node)",
		  ev->addr, sh_datadir_node_id(d->datadir));
	d->exit_status = EXIT_START;
	event_base_loopbreak(d->base);
}

static void on_swim_event(void *arg, const struct swim_event *ev)
{
	struct shoald *d = arg;

	if (ev->type == SWIM_EV_CONFLICT && ev->member == NULL)
		on_conflict(d, ev);
	if (d->node != NULL)
		node_swim_event(d->node, ev);
}

/* Raft over the storage, talking on the cluster port. */
static int start_node(struct shoald *d, struct sh_err *err)
{
	const struct sh_config *c = &d->cfg;
	int rv;
	struct node_net_opts no = {.base = d->base,
				   .self_id = sh_datadir_node_id(d->datadir),
				   .max_frame = c->max_frame_bytes + 4096,
				   .max_output = c->max_inflight_bytes + c->max_frame_bytes,
				   .backoff_ms = (uint32_t)c->heartbeat_ms,
				   .tls = d->tls};
	struct node_opts o = {
		.db = d->db,
		.datadir = d->datadir,
		.hs = d->hs,
		.id = sh_datadir_node_id(d->datadir),
		.name = c->node_name,
		.bootstrap_expect = (unsigned)c->bootstrap_expect,
		.max_voters = (unsigned)c->max_voters,
		.remove_dead_after_ms = (uint32_t)c->remove_dead_after_ms,
		.max_frame = c->max_frame_bytes + 4096,
		.max_output = c->max_inflight_bytes + c->max_frame_bytes,
		.cache_bytes = 64u << 20,
		.forward_timeout_ms = (uint32_t)c->request_timeout_ms,
	};

	if (o.bootstrap_expect == 0 && c->seeds.n == 0)
		o.bootstrap_expect = 1; /* no seeds: a cluster of its own */
	raft_opts_default(&o.raft, o.id);
	o.raft.election_timeout_ms = (uint32_t)c->election_timeout_ms;
	o.raft.heartbeat_ms = (uint32_t)c->heartbeat_ms;
	o.raft.max_batch_entries = (uint32_t)c->max_batch_entries;
	o.raft.max_batch_bytes = (uint32_t)c->max_batch_bytes;
	o.raft.max_inflight = (uint32_t)c->max_inflight_batches;
	o.raft.max_inflight_bytes = c->max_inflight_bytes;
	if ((rv = node_net_new(&no, &d->net, err)) != 0)
		return rv;
	o.env = node_net_env(d->net);
	if ((rv = node_new(&o, &d->node, err)) != 0)
		return rv;
	node_net_bind(d->net, d->node);
	return 0;
}

static int start_membership(struct shoald *d, struct sh_err *err)
{
	const struct sh_config *c = &d->cfg;
	char addr[SWIM_N_ADDRS][80];
	int64_t ports[SWIM_N_ADDRS] = {c->cluster_port, c->client_port, c->rest_port};
	struct swim_config sc;
	/* with its cluster id from the start: a node of another cluster
	 * started with our seeds must be refused before anyone sees it */
	struct swim_self self = {.id = sh_datadir_node_id(d->datadir),
				 .name = c->node_name,
				 .cluster_id = sh_datadir_cluster_id(d->datadir)};
	struct swim_net_opts o = {.cfg = &sc,
				  .self = &self,
				  .bind_addr = c->listen_address,
				  .port = (int)c->cluster_port,
				  .seeds = (const char *const *)c->seeds.v,
				  .n_seeds = c->seeds.n};

	membership_config(c, &sc);
	if (d->keyring != NULL)
		sc.udp_mtu -= KEYRING_OVERHEAD; /* the sealed datagram fits udp_mtu */
	o.keyring = d->keyring;
	for (int i = 0; i < SWIM_N_ADDRS; i++) {
		host_port(addr[i], sizeof addr[i], c->advertise_address, ports[i]);
		self.addr[i] = addr[i];
	}
	o.on_event = on_swim_event;
	o.data = d;
	o.on_stream = node_net_accept;
	o.stream_data = d->net;
	if (swim_net_start(d->base, &o, &d->swim, err) != 0)
		return err->code;
	api_set_membership(d->api, swim_net_swim(d->swim));
	node_start(d->node, swim_net_swim(d->swim));
	LOG_INFO("swim", "membership on %s (UDP and TCP), %zu seed(s), profile %s",
		 addr[SWIM_ADDR_CLUSTER], c->seeds.n,
		 c->profile == SH_PROFILE_LOCAL ? "local" : "lan");
	return 0;
}

static bool loopback(const char *addr)
{
	return strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0;
}

/* The API keys of the key files configured now (doc/security.md).  A
 * reload never turns keys off: that needs a restart. */
static int load_keys(struct shoald *d, bool reload, struct sh_err *err)
{
	const struct sh_config *c = &d->cfg;
	struct auth_files f = {c->admin_keys_file, c->write_keys_file, c->read_keys_file};
	struct auth *a;
	size_t na, nw, nr;
	int rv;

	if ((rv = auth_load(&f, &a, err)) != 0)
		return rv;
	if (a == NULL && reload && api_auth_required(d->api))
		return sh_err_set(err, SH_EINVAL,
				  "no key file is configured any more; turning API keys off "
				  "needs a restart");
	auth_counts(a, &na, &nw, &nr);
	api_set_auth(d->api, a);
	if (a != NULL)
		LOG_INFO("server", "API keys required: %zu admin, %zu write, %zu read", na, nw, nr);
	else if (!loopback(c->listen_address))
		LOG_WARN("server",
			 "listening on %s without API keys: anyone who reaches the client and "
			 "REST ports can read and write every collection (doc/security.md)",
			 c->listen_address);
	return 0;
}

/* The gossip keyring and the peer links' TLS, when a keyring file is
 * configured (doc/security.md). */
static int load_keyring(struct shoald *d, struct sh_err *err)
{
	const struct sh_config *c = &d->cfg;
	char fp[KEYRING_FP + 1];
	int rv;

	if (c->peer_cert_file[0] != '\0') {
		struct ptls_certs pc = {c->peer_cert_file, c->peer_key_file, c->peer_ca_file};

		if ((rv = ptls_new_certs(&pc, &d->tls, err)) != 0)
			return rv;
		LOG_INFO("server", "peer links in mutual TLS: certificate %s, cluster CA %s",
			 c->peer_cert_file, c->peer_ca_file);
	}
	if (c->gossip_keyring_file[0] == '\0') {
		if (!loopback(c->listen_address))
			LOG_WARN("server",
				 "listening on %s without a gossip keyring: anyone who reaches the "
				 "cluster port can join, vote and replicate "
				 "(security.gossip_keyring_file, doc/security.md)",
				 c->listen_address);
		return 0;
	}
	if ((rv = keyring_load(c->gossip_keyring_file, &d->keyring, err)) != 0 ||
	    (d->tls == NULL && (rv = ptls_new(d->keyring, &d->tls, err)) != 0))
		return rv;
	keyring_fingerprint(keyring_key(d->keyring, 0), fp);
	LOG_INFO("server", "gossip sealed%s with the keyring %s: %zu key(s), primary %s",
		 c->peer_cert_file[0] == '\0' ? " and peer links in TLS" : "",
		 c->gossip_keyring_file, keyring_count(d->keyring), fp);
	return 0;
}

static void key_removed(void *arg)
{
	struct shoald *d = arg;

	node_net_reset(d->net, "a gossip key was removed: links reconnect with the keys in force");
}

static int start_api(struct shoald *d, struct sh_err *err)
{
	const struct sh_config *c = &d->cfg;
	char client[128], rest[128];
	struct api_opts ao = {
		.base = d->base,
		.db = d->db,
		.node_id = sh_datadir_node_id(d->datadir),
		.node_name = c->node_name,
		.client_address = client,
		.rest_address = rest,
		.search_threads = (unsigned)c->search_threads,
		.request_timeout_ms = (uint32_t)c->request_timeout_ms,
		.default_consistency = c->consistency + 1,
		.default_ack = c->ack + 1,
		.node = d->node,
		.net = d->net,
		.health = {(uint64_t)c->ready_max_lag_entries, (uint64_t)c->ready_max_lag_ms},
	};
	struct server_opts so = {d->base,
				 NULL,
				 c->listen_address,
				 (int)c->client_port,
				 c->max_frame_bytes,
				 c->max_output_bytes,
				 (size_t)c->max_connections,
				 (size_t)c->max_inflight,
				 (uint32_t)c->idle_timeout_ms,
				 (uint32_t)c->request_timeout_ms};
	struct rest_opts ro = {d->base,
			       NULL,
			       c->listen_address,
			       (int)c->rest_port,
			       c->max_frame_bytes,
			       (uint32_t)c->request_timeout_ms,
			       ao.node_id,
			       c->node_name,
			       c->metrics_open};
	struct tls_files tf = {c->tls_cert_file, c->tls_key_file, c->tls_client_ca_file};
	int rv;

	if ((rv = tls_server_load(&tf, &d->client_tls, err)) != 0)
		return rv;
	so.tls = ro.tls = d->client_tls;
	if (d->client_tls != NULL)
		LOG_INFO("server", "TLS on the client and REST ports: certificate %s%s%s",
			 c->tls_cert_file,
			 c->tls_client_ca_file[0] ? ", client certificates of " : "",
			 c->tls_client_ca_file);
	snprintf(client, sizeof client, "%s:%" PRId64, c->advertise_address, c->client_port);
	snprintf(rest, sizeof rest, "%s:%" PRId64, c->advertise_address, c->rest_port);
	if ((rv = api_new(&ao, &d->api, err)) != 0 || (rv = load_keys(d, false, err)) != 0)
		return rv;
	if (d->keyring != NULL &&
	    api_set_keyring(d->api, &(struct api_keyring){d->keyring, c->gossip_keyring_file,
							  key_removed, d}) != 0)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	so.api = ro.api = d->api;
	if ((rv = server_new(&so, &d->server, err)) != 0 ||
	    (rv = rest_new(&ro, &d->rest, err)) != 0)
		return rv;
	return 0;
}

/* Listeners first, then the reads, then the writes (db_close completes
 * them), then the connections that carried them. */
static void stop_api(struct shoald *d)
{
	server_stop_listening(d->server);
	node_free(d->node); /* its writes and read barriers fail: UNAVAILABLE */
	d->node = NULL;
	if (d->net != NULL)
		node_net_bind(d->net, NULL);
	if (d->api != NULL)
		api_quiesce(d->api);
	db_close(d->db);
	d->db = NULL;
	rest_free(d->rest);
	d->rest = NULL;
	server_free(d->server);
	d->server = NULL;
	api_free(d->api);
	d->api = NULL;
}

static int run(struct shoald *d)
{
	struct sh_err err;

	if (sh_datadir_open(d->cfg.data_dir, &d->datadir, &err) != 0 || setup_loop(d, &err) != 0 ||
	    load_keyring(d, &err) != 0 || open_storage(d, &err) != 0 || start_node(d, &err) != 0 ||
	    start_api(d, &err) != 0) {
		LOG_ERROR("server", "cannot start: %s", err.msg);
		return EXIT_START;
	}
	LOG_INFO("server",
		 "shoald %s started: node %s, id %016" PRIx64
		 ", data dir %s, pid %ld, allocator %s",
		 PACKAGE_VERSION, d->cfg.node_name, sh_datadir_node_id(d->datadir), d->cfg.data_dir,
		 (long)getpid(), sh_alloc_name());
	if (start_membership(d, &err) != 0) {
		LOG_ERROR("server", "cannot start: %s", err.msg);
		return EXIT_START;
	}
	d->notify = sh_notify_new(d->base, d->api);
	sh_notify_ready(d->notify);
	if (event_base_dispatch(d->base) < 0) {
		LOG_ERROR("server", "event loop failed");
		return EXIT_START;
	}
	sh_notify_stopping(d->notify);
	stop_api(d);
	LOG_INFO("server", "stopped");
	return d->exit_status;
}

static void cleanup(struct shoald *d)
{
	sh_notify_free(d->notify);
	d->notify = NULL;
	if (d->api != NULL)
		api_set_membership(d->api, NULL);
	swim_net_free(d->swim);
	d->swim = NULL;
	stop_api(d);
	node_net_free(d->net);
	d->net = NULL;
	ptls_free(d->tls);
	d->tls = NULL;
	keyring_free(d->keyring);
	d->keyring = NULL;
	tls_server_free(d->client_tls);
	d->client_tls = NULL;
	for (int i = 0; i < 4; i++)
		if (d->signals[i] != NULL)
			event_free(d->signals[i]);
	if (d->db_event != NULL)
		event_free(d->db_event);
	db_close(d->db);
	if (d->base != NULL)
		event_base_free(d->base);
	hardstate_close(d->hs);
	sh_datadir_close(d->datadir);
	sh_config_free(&d->cfg);
	for (size_t i = 0; i < d->n_flags; i++)
		sh_free(d->flags[i].name);
	sh_free(d->flags);
	sh_log_close();
}

int main(int argc, char **argv)
{
	struct shoald d = {0};
	struct sh_err err;
	int rv;

	sh_alloc_hook_libs();
	sh_log_hook_libevent();
	rv = parse_args(&d, argc, argv);
	if (rv >= 0)
		goto out;
	if (load_config(&d, &d.cfg, d.check_only ? LOAD_CHECK : LOAD_START, &err) != 0) {
		fprintf(stderr, "shoald: %s\n", err.msg);
		rv = EXIT_USAGE;
		goto out;
	}
	if (d.check_only) {
		printf("configuration ok: %s\n", d.config_path ? d.config_path : "(defaults)");
		rv = 0;
		goto out;
	}
	if (d.restore != NULL) {
		rv = restore_run(d.restore, d.cfg.data_dir, &err) == 0 ? 0 : EXIT_START;
		if (rv != 0)
			LOG_ERROR("server", "%s", err.msg);
		goto out;
	}
	rv = run(&d);
out:
	cleanup(&d);
	return rv;
}
