/*
 * shoalctl cluster keys: the gossip keyring on every member
 * (doc/shoalctl.1, "CLUSTER"; doc/security.md, "Gossip keyring").
 *
 *   cluster keys list            each member's keys (fingerprints), the
 *                                primary first
 *   cluster keys install KEY     add KEY to every member's keyring
 *   cluster keys use KEY         make KEY the primary on every member;
 *                                refused, changing nothing, unless every
 *                                member has it installed
 *   cluster keys remove KEY      remove KEY from every member; refused,
 *                                changing nothing, while it is some
 *                                member's primary
 *
 * KEY is 32 bytes in base64 (`openssl rand -base64 32` makes one), or "-"
 * to read it from the standard input (so it shows in no process list).
 * The node asked gives the members; each one that membership does not hold
 * dead or left is asked on its own client address, with the same API key.
 * A member that fails or cannot be reached is reported, and the command
 * exits with that failure's code after asking the others.
 */
#include "build.h"

#include "shoalctl.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct answer {
	const struct shoal_member *m;
	int rv; /* SHOAL_OK, or the failure */
	char fps[16][SHOAL_KEY_FP + 1];
	size_t n;
	char key_fp[SHOAL_KEY_FP + 1];
	char msg[256]; /* the failure, in words */
};

static bool skipped(const struct shoal_member *m)
{
	return m->state == SHOAL_MEMBER_DEAD || m->state == SHOAL_MEMBER_LEFT;
}

static void ask(struct ctl *x, struct answer *a, enum shoal_keyring_op op, const char *key)
{
	struct ctl one = {.addr = a->m->client_address, .o = x->o};

	a->rv = ctl_connect(&one);
	if (a->rv == SHOAL_OK)
		a->rv = shoal_keyring(one.c, op, key, a->fps, 16, &a->n, a->key_fp);
	if (a->rv != SHOAL_OK)
		snprintf(a->msg, sizeof a->msg, "%s", one.c != NULL ? shoal_errmsg(one.c) : "");
	shoal_close(one.c);
}

static json_t *answer_json(const struct answer *a)
{
	json_t *keys = json_array();
	char id[17];

	snprintf(id, sizeof id, "%016" PRIx64, a->m->node_id);
	for (size_t i = 0; i < a->n; i++)
		json_array_append_new(keys, json_string(a->fps[i]));
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:o}", "name", a->m->name, "id", id, "address",
			 a->m->client_address, "status",
			 skipped(a->m) ? "skipped" : shoal_status_name(a->rv), "message", a->msg,
			 "keys", keys);
}

static void answer_print(const struct answer *a, const char *what)
{
	printf("%-16s %016" PRIx64 " ", a->m->name, a->m->node_id);
	if (skipped(a->m)) {
		printf("skipped (%s)\n", shoal_member_state_name(a->m->state));
		return;
	}
	if (a->rv != SHOAL_OK) {
		printf("FAILED: %s: %s\n", shoal_status_name(a->rv), a->msg);
		return;
	}
	printf("%s:", what);
	for (size_t i = 0; i < a->n; i++)
		printf(" %s%s", a->fps[i], i == 0 ? " (primary)" : "");
	printf("\n");
}

/* Report every answer; the exit code of the first failure, else 0. */
static int report(struct ctl *x, const struct answer *a, size_t n, const char *what)
{
	json_t *nodes = x->json ? json_array() : NULL;
	int code = 0;
	size_t done = 0, asked = 0;

	for (size_t i = 0; i < n; i++) {
		if (x->json)
			json_array_append_new(nodes, answer_json(&a[i]));
		else
			answer_print(&a[i], what);
		if (skipped(a[i].m))
			continue;
		asked++;
		done += a[i].rv == SHOAL_OK;
		if (a[i].rv != SHOAL_OK && code == 0)
			code = ctl_exit_code(a[i].rv);
	}
	if (x->json)
		ctl_print_json(json_pack("{s:s,s:o,s:I,s:I}", "op", what, "nodes", nodes, "ok",
					 (json_int_t)done, "asked", (json_int_t)asked));
	else
		printf("keys %s: %zu of %zu member(s) answered OK\n", what, done, asked);
	return code;
}

static bool has(const struct answer *a, const char *fp)
{
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->fps[i], fp) == 0)
			return true;
	return false;
}

/* What would stop op on member a (its keys listed with the key): NULL
 * when nothing does. */
static const char *blocker(const struct answer *a, enum shoal_keyring_op op)
{
	if (op == SHOAL_KEYRING_USE && !has(a, a->key_fp))
		return "the key is not installed there";
	if (op == SHOAL_KEYRING_REMOVE && a->n > 0 && strcmp(a->fps[0], a->key_fp) == 0)
		return "the key is its primary";
	return NULL;
}

/* use and remove first ask every member, and change nothing unless all
 * answer and none stands in the way: a member that seals with a key
 * another lacks is cut off from it (use of a key not installed
 * everywhere; remove of a key that is still some member's primary). */
static int precheck(struct ctl *x, struct answer *a, size_t n, enum shoal_keyring_op op,
		    const char *what, const char *key)
{
	const char *why;
	int code = 0;

	for (size_t i = 0; i < n; i++) {
		if (skipped(a[i].m))
			continue;
		ask(x, &a[i], SHOAL_KEYRING_LIST, key);
		if (a[i].rv != SHOAL_OK) {
			fprintf(stderr, "shoalctl: keys %s: %s: %s: %s\n", what, a[i].m->name,
				shoal_status_name(a[i].rv), a[i].msg);
			code = ctl_exit_code(a[i].rv);
		} else if ((why = blocker(&a[i], op)) != NULL) {
			fprintf(stderr, "shoalctl: keys %s: on %s %s\n", what, a[i].m->name, why);
			code = EXIT_INVALID;
		}
	}
	if (code != 0)
		fprintf(stderr,
			"shoalctl: keys %s: nothing changed (every member must answer; use needs "
			"the key installed on every member, remove a key no member seals with)\n",
			what);
	return code;
}

static int read_key(const char *arg, char *key, size_t size)
{
	size_t len;

	if (strcmp(arg, "-") != 0) {
		snprintf(key, size, "%s", arg);
		return 0;
	}
	if (fgets(key, (int)size, stdin) == NULL) {
		fprintf(stderr, "shoalctl: keys: no key on the standard input\n");
		return EXIT_USAGE;
	}
	len = strcspn(key, "\r\n");
	key[len] = '\0';
	return 0;
}

static int keys(struct ctl *x, enum shoal_keyring_op op, const char *what, const char *arg)
{
	struct shoal_member *m = NULL;
	struct answer *a;
	char key[128] = "";
	size_t n = 0;
	int rv = ctl_connect(x), code;

	if (arg != NULL && (code = read_key(arg, key, sizeof key)) != 0)
		return code;
	if (rv == SHOAL_OK)
		rv = shoal_cluster_members(x->c, &m, &n);
	if (rv != SHOAL_OK)
		return ctl_fail(x, rv, "cluster keys");
	if ((a = calloc(n, sizeof *a)) == NULL) {
		shoal_free(m);
		return EXIT_FAILED;
	}
	for (size_t i = 0; i < n; i++)
		a[i].m = &m[i];
	code = op == SHOAL_KEYRING_USE || op == SHOAL_KEYRING_REMOVE
		       ? precheck(x, a, n, op, what, key)
		       : 0;
	for (size_t i = 0; i < n && code == 0; i++)
		if (!skipped(a[i].m))
			ask(x, &a[i], op, arg != NULL ? key : NULL);
	if (code == 0)
		code = report(x, a, n, what);
	explicit_bzero(key, sizeof key);
	free(a);
	shoal_free(m);
	return code;
}

int cmd_cluster_keys(struct ctl *x, int argc, char **argv)
{
	const char *sub = argc > 2 ? argv[2] : "";

	if (strcmp(sub, "list") == 0 && argc == 3)
		return keys(x, SHOAL_KEYRING_LIST, "list", NULL);
	if (strcmp(sub, "install") == 0 && argc == 4)
		return keys(x, SHOAL_KEYRING_INSTALL, "install", argv[3]);
	if (strcmp(sub, "use") == 0 && argc == 4)
		return keys(x, SHOAL_KEYRING_USE, "use", argv[3]);
	if (strcmp(sub, "remove") == 0 && argc == 4)
		return keys(x, SHOAL_KEYRING_REMOVE, "remove", argv[3]);
	return ctl_usage_error("cluster keys: expected list, install KEY, use KEY or remove KEY "
			       "(KEY in base64, or - to read it from stdin)");
}
