/*
 * shoalctl cluster: the voter configuration and the replicas
 * (doc/shoalctl.1, "CLUSTER"; doc/replication.md).
 *
 *   cluster voters                 voters and learners, with the leader's
 *                                  view of each one's match index and lag
 *   cluster add NODE               make a member a learner now
 *   cluster remove NODE            remove a voter or learner
 *   cluster transfer-leader [NODE] hand leadership over (default: the
 *                                  most caught-up voter)
 *   cluster verify                 every alive member's state digest at an
 *                                  equal applied index
 *
 * NODE is a member's name or its 16-hex-digit id.  The changes go to the
 * node asked, which forwards them to the leader.  verify asks each member
 * on its own client address; the replicas must reach the same applied
 * index (writes stopped, or between two of them) within --timeout.
 */
#include "build.h"

#include "shoalctl.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VERIFY_POLL_MS 100

static int members_of(struct ctl *x, struct shoal_member **m, size_t *n)
{
	int rv = ctl_connect(x);

	if (rv == SHOAL_OK)
		rv = shoal_cluster_members(x->c, m, n);
	return rv;
}

/* NODE by name or hex id; 0 when no member matches. */
static uint64_t resolve(const struct shoal_member *m, size_t n, const char *node)
{
	char *end;
	uint64_t id = strtoull(node, &end, 16);

	for (size_t i = 0; i < n; i++)
		if (strcmp(m[i].name, node) == 0)
			return m[i].node_id;
	if (strlen(node) == 16 && *end == '\0')
		return id;
	return 0;
}

/* ------------------------------------------------------------ changes */

static int change(struct ctl *x, enum shoal_change kind, const char *node, const char *what)
{
	struct shoal_member *m = NULL;
	struct shoal_token t;
	size_t n = 0;
	uint64_t id = 0;
	int rv = members_of(x, &m, &n);

	if (rv != SHOAL_OK)
		return ctl_fail(x, rv, what);
	if (node != NULL && (id = resolve(m, n, node)) == 0) {
		shoal_free(m);
		fprintf(stderr, "shoalctl: %s: no member named '%s' (see shoalctl members)\n", what,
			node);
		return EXIT_NOTFOUND;
	}
	shoal_free(m);
	if ((rv = shoal_cluster_change(x->c, kind, id, &t)) != SHOAL_OK)
		return ctl_fail(x, rv, what);
	if (x->json)
		ctl_print_json(json_pack("{s:{s:I,s:I}}", "token", "term", (json_int_t)t.term,
					 "index", (json_int_t)t.index));
	else if (kind == SHOAL_CHANGE_TRANSFER_LEADER)
		printf("%s: started (see shoalctl status)\n", what);
	else
		printf("%s: committed (token %" PRIu64 ":%" PRIu64 ")\n", what, t.term, t.index);
	return 0;
}

/* ------------------------------------------------------------ voters */

/* The leader's members (match and lag are its view), else the node's. */
static int leader_members(struct ctl *x, struct shoal_member **m, size_t *n)
{
	struct shoal_cluster_status s;
	struct ctl lx = {.o = x->o};
	int rv;

	if ((rv = ctl_connect(x)) != SHOAL_OK || (rv = shoal_cluster_status(x->c, &s)) != SHOAL_OK)
		return rv;
	if (strcmp(s.role, "leader") != 0 && s.leader_address[0] != '\0') {
		lx.addr = s.leader_address;
		if (ctl_connect(&lx) == SHOAL_OK && shoal_cluster_members(lx.c, m, n) == SHOAL_OK) {
			shoal_close(lx.c);
			return SHOAL_OK;
		}
		shoal_close(lx.c);
	}
	return shoal_cluster_members(x->c, m, n);
}

static int voters(struct ctl *x)
{
	struct shoal_member *m = NULL;
	size_t n = 0;
	int rv = leader_members(x, &m, &n);
	json_t *a = json_array();

	if (rv != SHOAL_OK)
		return ctl_fail(x, rv, "cluster voters");
	if (!x->json)
		printf("%-16s %-16s %-8s %-7s %10s %8s %9s\n", "NAME", "ID", "ROLE", "STATE",
		       "MATCH", "LAG", "LAG_MS");
	for (size_t i = 0; i < n; i++) {
		char id[17];

		if (m[i].role[0] == '\0')
			continue; /* a member outside the configuration */
		snprintf(id, sizeof id, "%016" PRIx64, m[i].node_id);
		if (x->json)
			json_array_append_new(
				a,
				json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:I}", "name", m[i].name,
					  "node_id", id, "role", m[i].role, "state",
					  shoal_member_state_name(m[i].state), "match_index",
					  (json_int_t)m[i].match_index, "lag", (json_int_t)m[i].lag,
					  "lag_ms", (json_int_t)m[i].lag_ms));
		else
			printf("%-16s %-16s %-8s %-7s %10" PRIu64 " %8" PRIu64 " %9" PRIu64 "\n",
			       m[i].name, id, m[i].role, shoal_member_state_name(m[i].state),
			       m[i].match_index, m[i].lag, m[i].lag_ms);
	}
	if (x->json)
		ctl_print_json(json_pack("{s:o}", "voters", a));
	else
		json_decref(a);
	shoal_free(m);
	return 0;
}

/* ------------------------------------------------------------ verify */

struct replica {
	const struct shoal_member *m;
	struct shoal_cluster_status s;
	int rv;
};

static void ask_all(struct ctl *x, struct replica *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct ctl one = {.addr = r[i].m->client_address, .o = x->o};

		one.o.retries = 0;
		r[i].rv = ctl_connect(&one);
		if (r[i].rv == SHOAL_OK)
			r[i].rv = shoal_cluster_status(one.c, &r[i].s);
		shoal_close(one.c);
	}
}

/* Have the replicas all answered, at one applied index? */
static bool level(const struct replica *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (r[i].rv != SHOAL_OK || r[i].s.applied_index != r[0].s.applied_index)
			return false;
	return true;
}

static int verify_report(struct ctl *x, const struct replica *r, size_t n, bool even)
{
	bool same = even;
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		same = same && strcmp(r[i].s.digest, r[0].s.digest) == 0;
	for (size_t i = 0; i < n; i++) {
		if (x->json)
			json_array_append_new(a, json_pack("{s:s,s:I,s:s,s:s}", "name",
							   r[i].m->name, "applied_index",
							   (json_int_t)r[i].s.applied_index,
							   "digest", r[i].s.digest, "error",
							   r[i].rv == SHOAL_OK ? "" : "no answer"));
		else
			printf("%-16s %10" PRIu64 "  %s\n", r[i].m->name, r[i].s.applied_index,
			       r[i].rv == SHOAL_OK ? r[i].s.digest : "(no answer)");
	}
	if (x->json)
		ctl_print_json(json_pack("{s:o,s:b,s:b}", "replicas", a, "comparable", even,
					 "agree", same));
	else
		json_decref(a);
	if (!even) {
		fprintf(stderr, "shoalctl: cluster verify: the replicas did not reach one applied "
				"index within the timeout (writes still going on, or a member "
				"down)\n");
		return EXIT_TIMEOUT;
	}
	if (!same) {
		fprintf(stderr,
			"shoalctl: cluster verify: the replicas DIFFER at index %" PRIu64 "\n",
			r[0].s.applied_index);
		return EXIT_FAILED;
	}
	if (!x->json)
		printf("%zu replicas agree at index %" PRIu64 "\n", n, r[0].s.applied_index);
	return 0;
}

static int verify(struct ctl *x)
{
	struct shoal_member *m = NULL;
	size_t n = 0, k = 0;
	struct replica *r;
	int rv = members_of(x, &m, &n);
	double until = ctl_now() + x->o.timeout_ms / 1000.0;
	bool even = false;

	if (rv != SHOAL_OK)
		return ctl_fail(x, rv, "cluster verify");
	if ((r = calloc(n ? n : 1, sizeof *r)) == NULL)
		return shoal_free(m), ctl_fail(x, SHOAL_RESOURCE_EXHAUSTED, "cluster verify");
	for (size_t i = 0; i < n; i++)
		if (m[i].state == SHOAL_MEMBER_ALIVE || m[i].state == SHOAL_MEMBER_SUSPECT)
			r[k++].m = &m[i];
	while (!even && ctl_now() < until) {
		ask_all(x, r, k);
		even = level(r, k);
		if (!even)
			usleep(VERIFY_POLL_MS * 1000);
	}
	rv = verify_report(x, r, k, even);
	free(r);
	shoal_free(m);
	return rv;
}

/* ------------------------------------------------------------ entry */

int cmd_cluster(struct ctl *x, int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : "";

	if (strcmp(sub, "voters") == 0 && argc == 2)
		return voters(x);
	if (strcmp(sub, "verify") == 0 && argc == 2)
		return verify(x);
	if (strcmp(sub, "add") == 0 && argc == 3)
		return change(x, SHOAL_CHANGE_ADD, argv[2], "cluster add");
	if (strcmp(sub, "remove") == 0 && argc == 3)
		return change(x, SHOAL_CHANGE_REMOVE, argv[2], "cluster remove");
	if (strcmp(sub, "transfer-leader") == 0 && (argc == 2 || argc == 3))
		return change(x, SHOAL_CHANGE_TRANSFER_LEADER, argc == 3 ? argv[2] : NULL,
			      "cluster transfer-leader");
	return ctl_usage_error("cluster: expected voters, add NODE, remove NODE, "
			       "transfer-leader [NODE] or verify");
}
