/*
 * shoalctl cluster: the voter configuration and the replicas
 * (doc/shoalctl.1, "CLUSTER"; doc/replication.md).
 *
 *   cluster voters                 voters and learners, with the leader's
 *                                  view of each one's match index and lag
 *   cluster add NODE               make a member a learner now
 *   cluster remove NODE            remove a voter or learner (kept out: the
 *                                  leader does not add it back until `add`)
 *   cluster leave                  the node asked removes itself (handing
 *                                  leadership over first if it leads)
 *   cluster transfer-leader [NODE] hand leadership over (default: the
 *                                  most caught-up voter)
 *   cluster verify                 every alive member's state digest at an
 *                                  equal applied index
 *   cluster keys ...               the gossip keyring (shoalctl_keys.c)
 *
 * NODE is a member's name or its 16-hex-digit id.  The changes go to the
 * node asked, which forwards them to the leader.  verify asks each member
 * on its own client address; the replicas must reach the same applied
 * index (writes stopped, or between two of them) within --timeout, and
 * every voter and learner (as the leader's membership lists them) must
 * answer: one that does not fails the check (exit 6).  A member that
 * membership holds dead or left is asked too, but not waited for.
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

/* The node asked leaves the configuration for good: transfer leadership
 * away first when it leads, then remove it (kept out until `add`). */
static int leave(struct ctl *x)
{
	struct shoal_cluster_status s;
	struct shoal_token t;
	int rv = ctl_connect(x);

	for (int tries = 0; rv == SHOAL_OK && tries < 100; tries++) {
		if ((rv = shoal_cluster_status(x->c, &s)) != SHOAL_OK ||
		    strcmp(s.role, "leader") != 0)
			break;
		if (tries == 0 && (rv = shoal_cluster_change(x->c, SHOAL_CHANGE_TRANSFER_LEADER, 0,
							     &t)) != SHOAL_OK)
			break;
		usleep(100000);
	}
	if (rv == SHOAL_OK && strcmp(s.role, "leader") == 0)
		rv = SHOAL_UNAVAILABLE;
	if (rv == SHOAL_OK)
		rv = shoal_cluster_change(x->c, SHOAL_CHANGE_REMOVE, s.node_id, &t);
	if (rv != SHOAL_OK)
		return ctl_fail(x, rv, "cluster leave");
	if (x->json)
		ctl_print_json(json_pack("{s:{s:I,s:I}}", "token", "term", (json_int_t)t.term,
					 "index", (json_int_t)t.index));
	else
		printf("cluster leave: %016" PRIx64 " removed (token %" PRIu64 ":%" PRIu64
		       "); it may be stopped now\n",
		       s.node_id, t.term, t.index);
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
	bool in_conf; /* a voter, learner or the leader */
	bool gone;    /* dead or left to membership: not waited for */
	bool down;    /* in the configuration and no answer in the end */
	struct shoal_cluster_status s;
	int rv;
};

/* Every replica is asked, those membership holds dead too (a member just
 * back is dead to the others for a while); only the others are waited for. */
static void ask_all(struct ctl *x, struct replica *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct ctl one = {.addr = r[i].m->client_address, .o = x->o};

		one.o.retries = 0;
		if (r[i].gone && one.o.timeout_ms > 1000)
			one.o.timeout_ms = 1000;
		r[i].rv = ctl_connect(&one);
		if (r[i].rv == SHOAL_OK)
			r[i].rv = shoal_cluster_status(one.c, &r[i].s);
		shoal_close(one.c);
	}
}

/* Have the replicas all answered (but those membership holds dead or
 * left, which may not), at one applied index? */
static bool level(const struct replica *r, size_t n)
{
	const struct replica *first = NULL;

	for (size_t i = 0; i < n; i++) {
		if (r[i].rv != SHOAL_OK && r[i].gone)
			continue;
		if (r[i].rv != SHOAL_OK ||
		    (first && r[i].s.applied_index != first->s.applied_index))
			return false;
		first = first ? first : &r[i];
	}
	return true;
}

static const char *down_why(const struct replica *r)
{
	if (r->gone)
		return r->m->state == SHOAL_MEMBER_LEFT ? "left, no answer" : "dead, no answer";
	return "no answer";
}

static void verify_print(struct ctl *x, const struct replica *r, size_t n, bool even, bool same,
			 size_t n_down)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++) {
		bool up = r[i].rv == SHOAL_OK;

		if (x->json)
			json_array_append_new(
				a, json_pack("{s:s,s:s,s:I,s:s,s:s}", "name", r[i].m->name, "role",
					     r[i].m->role, "applied_index",
					     (json_int_t)(up ? r[i].s.applied_index : 0), "digest",
					     up ? r[i].s.digest : "", "error",
					     up ? "" : down_why(&r[i])));
		else if (up)
			printf("%-16s %-8s %10" PRIu64 "  %s\n", r[i].m->name, r[i].m->role,
			       r[i].s.applied_index, r[i].s.digest);
		else
			printf("%-16s %-8s %10s  (down: %s)\n", r[i].m->name, r[i].m->role, "-",
			       down_why(&r[i]));
	}
	if (x->json)
		ctl_print_json(json_pack("{s:o,s:b,s:b,s:I}", "replicas", a, "comparable", even,
					 "agree", same, "down", (json_int_t)n_down));
	else
		json_decref(a);
}

/* Exit 1 when digests differ, 6 when a voter or learner is down, 7 when
 * the others did not reach one index in time, else 0 (doc/shoalctl.1). */
static int verify_report(struct ctl *x, struct replica *r, size_t n, bool even)
{
	const struct replica *first = NULL;
	size_t n_down = 0, n_up = 0;
	bool same = even;

	for (size_t i = 0; i < n; i++) {
		r[i].down = r[i].rv != SHOAL_OK && r[i].in_conf;
		n_down += r[i].down;
		if (r[i].rv != SHOAL_OK)
			continue;
		n_up++;
		first = first ? first : &r[i];
		same = same && strcmp(r[i].s.digest, first->s.digest) == 0;
	}
	verify_print(x, r, n, even, same, n_down);
	if (even && !same) {
		fprintf(stderr,
			"shoalctl: cluster verify: the replicas DIFFER at index %" PRIu64 "\n",
			first->s.applied_index);
		return EXIT_FAILED;
	}
	if (n_down > 0) {
		fprintf(stderr, "shoalctl: cluster verify: %zu voter(s) or learner(s) down; %s\n",
			n_down,
			even ? "the others agree" : "the others did not reach one applied index");
		return EXIT_UNAVAILABLE;
	}
	if (!even) {
		fprintf(stderr, "shoalctl: cluster verify: the replicas did not reach one applied "
				"index within the timeout (writes still going on, or a member "
				"not answering)\n");
		return EXIT_TIMEOUT;
	}
	if (!x->json)
		printf("%zu replicas agree at index %" PRIu64 "\n", n_up,
		       first ? first->s.applied_index : 0);
	return 0;
}

/* The members to compare: every alive or suspect member, and every voter
 * and learner whatever its state. */
static size_t pick_replicas(const struct shoal_member *m, size_t n, struct replica *r)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		bool alive = m[i].state == SHOAL_MEMBER_ALIVE || m[i].state == SHOAL_MEMBER_SUSPECT;
		bool conf = m[i].role[0] != '\0';

		if (!alive && !conf)
			continue;
		r[k] = (struct replica){.m = &m[i], .in_conf = conf, .gone = !alive};
		k++;
	}
	return k;
}

/* Voters of the configuration that membership does not know at all. */
static size_t unknown_voters(struct ctl *x, const struct shoal_member *m, size_t n)
{
	struct shoal_cluster_status s;
	size_t missing = 0;

	if (shoal_cluster_status(x->c, &s) != SHOAL_OK)
		return 0;
	for (size_t v = 0; v < s.n_voters; v++) {
		bool known = false;

		for (size_t i = 0; i < n && !known; i++)
			known = m[i].node_id == s.voters[v];
		if (!known) {
			fprintf(stderr,
				"shoalctl: cluster verify: voter %016" PRIx64
				" is unknown to membership\n",
				s.voters[v]);
			missing++;
		}
	}
	return missing;
}

static int verify(struct ctl *x)
{
	struct shoal_member *m = NULL;
	size_t n = 0, k, missing;
	struct replica *r;
	int rv = leader_members(x, &m, &n); /* the leader's view knows every voter */
	double until;
	bool even = false;

	if (rv != SHOAL_OK)
		return ctl_fail(x, rv, "cluster verify");
	if ((r = calloc(n ? n : 1, sizeof *r)) == NULL)
		return shoal_free(m), ctl_fail(x, SHOAL_RESOURCE_EXHAUSTED, "cluster verify");
	k = pick_replicas(m, n, r);
	missing = unknown_voters(x, m, n);
	until = ctl_now() + x->o.timeout_ms / 1000.0;
	for (;;) { /* at least one round, however short the timeout */
		ask_all(x, r, k);
		if ((even = level(r, k)) || ctl_now() >= until)
			break;
		usleep(VERIFY_POLL_MS * 1000);
	}
	rv = verify_report(x, r, k, even);
	if (rv == 0 && missing > 0)
		rv = EXIT_UNAVAILABLE;
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
	if (strcmp(sub, "leave") == 0 && argc == 2)
		return leave(x);
	if (strcmp(sub, "keys") == 0)
		return cmd_cluster_keys(x, argc, argv);
	if (strcmp(sub, "transfer-leader") == 0 && (argc == 2 || argc == 3))
		return change(x, SHOAL_CHANGE_TRANSFER_LEADER, argc == 3 ? argv[2] : NULL,
			      "cluster transfer-leader");
	return ctl_usage_error("cluster: expected voters, add NODE, remove NODE, leave, "
			       "transfer-leader [NODE], verify or keys");
}
