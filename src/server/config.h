/*
 * config: shoald's settings, from defaults, a TOML file and the command line.
 *
 * One table (config.c) has a row per key: name, type, bounds, default,
 * whether it can change at run time, and its documentation line.  Everything
 * else — loading the file, command-line flags, --help-config, the checks of
 * etc/shoald.toml and doc/shoald.toml.5 in t/config.c — reads that table.
 *
 * Keys are "section.name" (TOML: name under [section]).  Every key has a
 * command-line flag: "--section-name" with '_' written '-', e.g.
 * --log-level debug or --listen-base-port=748.  Precedence: default < file <
 * flag.  Errors name the source: "FILE:LINE:COL: key 'log.level': ..." or
 * "command line: --log-level: ...".
 *
 * A struct sh_config is owned by its creator; strings in it are owned by the
 * struct and freed by sh_config_free().  Not thread-safe: the loop thread
 * owns it.
 */
#ifndef SHOAL_SERVER_CONFIG_H
#define SHOAL_SERVER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/err.h"

#define SH_CONFIG_MAX_FILE_BYTES (1u << 20)

enum sh_fsync_policy { SH_FSYNC_ALWAYS, SH_FSYNC_INTERVAL, SH_FSYNC_NEVER };
enum sh_membership_profile { SH_PROFILE_LAN, SH_PROFILE_LOCAL };

#define SH_CONFIG_MAX_KEYS 128

struct sh_strlist {
	char **v;
	size_t n;
};

struct sh_config {
	/* [node] */
	char *node_name;
	char *data_dir;
	/* [listen] */
	char *listen_address;
	char *advertise_address;
	int64_t base_port;
	int64_t cluster_port;
	int64_t client_port;
	int64_t rest_port;
	/* [cluster] */
	struct sh_strlist seeds;
	int64_t bootstrap_expect;
	int64_t max_voters;
	int64_t remove_dead_after_ms;
	bool leave_on_terminate;
	int64_t election_timeout_ms;
	int64_t heartbeat_ms;
	int64_t max_batch_entries;
	uint64_t max_batch_bytes;
	int64_t max_inflight_batches;
	uint64_t max_inflight_bytes;
	int64_t log_keep;
	/* [log] */
	int log_level;
	char *log_file;
	/* [storage] */
	int fsync;
	int64_t fsync_interval_ms;
	uint64_t segment_bytes;
	uint64_t wal_write_ahead;
	int64_t snapshot_entries;
	uint64_t snapshot_bytes;
	/* [search] */
	int64_t search_threads;
	bool index_background;
	int64_t index_threads;
	uint64_t max_fresh_bytes;
	/* [limits] */
	uint64_t max_frame_bytes;
	uint64_t max_payload_bytes;
	int64_t max_connections;
	/* [membership] (doc/membership.md) */
	int profile;
	int64_t probe_interval_ms;
	int64_t probe_timeout_ms;
	int64_t indirect_checks;
	int64_t suspicion_mult;
	int64_t suspicion_max_timeout_mult;
	int64_t gossip_interval_ms;
	int64_t gossip_nodes;
	int64_t retransmit_mult;
	int64_t push_pull_interval_ms;
	int64_t awareness_max_multiplier;
	int64_t udp_mtu;
	int64_t rejoin_interval_ms;
	/* which keys the file or a flag set (bit = row), so that a profile
	 * changes only the others */
	unsigned char set_by_user[SH_CONFIG_MAX_KEYS / 8];
	int64_t max_inflight;
	uint64_t max_output_bytes;
	int64_t idle_timeout_ms;
	int64_t request_timeout_ms;
	/* [api] */
	int consistency; /* index into eventual, read_your_writes, strong, quorum */
	int ack;         /* index into leader, one, quorum, all */
	/* [health] */
	int64_t ready_max_lag_entries;
	int64_t ready_max_lag_ms;
	/* [security] (doc/security.md) */
	char *admin_keys_file;
	char *write_keys_file;
	char *read_keys_file;
	char *gossip_keyring_file;
	char *tls_cert_file;
	char *tls_key_file;
	char *tls_client_ca_file;
	char *peer_cert_file;
	char *peer_key_file;
	char *peer_ca_file;
	bool metrics_open;
};

/* Fill cfg with every default. */
int sh_config_init(struct sh_config *cfg, struct sh_err *err);
void sh_config_free(struct sh_config *cfg);

/* Read a TOML file over the current values. */
int sh_config_load_file(struct sh_config *cfg, const char *path, struct sh_err *err);
/* Read TOML text (name is used in messages). */
int sh_config_load_text(struct sh_config *cfg, const char *text, size_t len, const char *name,
			struct sh_err *err);

/* Set one key from text, as a command-line flag does.  flag is the flag as
 * written ("--log-level") or a key ("log.level"); value is its argument. */
int sh_config_set(struct sh_config *cfg, const char *flag, const char *value, struct sh_err *err);

/* Does this command-line flag name a key?  ("--log-level" -> true) */
bool sh_config_is_flag(const char *flag);

/* Checks across keys, after everything is loaded.  Resolves the automatic
 * values in place: an empty node.name becomes the host name, a zero port
 * becomes base_port * 10 + 1 (cluster), 2 (client) or 3 (REST), an empty
 * advertise_address becomes listen.address, search.threads and
 * index.threads 0 become the number of online CPUs, and membership.profile = "local" replaces the
 * membership keys that the file and the flags did not set with its faster
 * values. */
int sh_config_validate(struct sh_config *cfg, struct sh_err *err);

/* Print every key with type, default and documentation (--help-config). */
void sh_config_print_help(FILE *out);

/* Describe what changed between old and new; apply to old the keys that can
 * change at run time and return how many keys that need a restart differ. */
int sh_config_apply_runtime(struct sh_config *old, const struct sh_config *new_cfg);

/* Warn (through the log) about keys that are set but not used by this version
 * yet.  Call before sh_config_validate(), which resolves automatic values. */
void sh_config_warn_inactive(const struct sh_config *cfg);

/* Table introspection, for tests and docs. */
size_t sh_config_key_count(void);
const char *sh_config_key(size_t i);
const char *sh_config_key_default(size_t i);
/* Render key i's current value as text in the default's syntax. */
int sh_config_format(const struct sh_config *cfg, size_t i, char *buf, size_t size);

#endif
