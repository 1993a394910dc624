/* API keys (src/net/auth.c, src/net/rest_auth.c; doc/security.md): every
 * binary-protocol Method and every REST route has a role (a new one without
 * fails here), a REST route needs what its method needs, key files are
 * checked (mode, length, characters, emptiness), keys match whole and only
 * whole, roles nest, and refusals name no key. */
#include "build.h"

#include "net/auth.h"
#include "net/rest_impl.h"
#include "proto/shoal.pb-c.h"
#include "tap.h"
#include "tfile.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/shoal-auth-XXXXXX";

#define ADMIN "admin-key-0123456789abcdef"
#define WRITE "write-key-0123456789abcdef"
#define READ  "read-key-0123456789abcdef-"

static const char *file(const char *name, const char *text, mode_t mode)
{
	return tfile(dir, name, text, mode);
}

/* Every Method of the protocol (its descriptor, so a new one is seen)
 * must be listed here with the role it needs: adding a method means
 * deciding its role, here and in auth_method_role. */
static void test_methods(void)
{
	static const struct {
		uint16_t m;
		enum auth_role role;
	} want[] = {
		{SHOAL__METHOD__METHOD_PING, AUTH_READ},
		{SHOAL__METHOD__METHOD_CREATE_COLLECTION, AUTH_ADMIN},
		{SHOAL__METHOD__METHOD_DROP_COLLECTION, AUTH_ADMIN},
		{SHOAL__METHOD__METHOD_LIST_COLLECTIONS, AUTH_READ},
		{SHOAL__METHOD__METHOD_DESCRIBE_COLLECTION, AUTH_READ},
		{SHOAL__METHOD__METHOD_UPSERT, AUTH_WRITE},
		{SHOAL__METHOD__METHOD_GET, AUTH_READ},
		{SHOAL__METHOD__METHOD_DELETE, AUTH_WRITE},
		{SHOAL__METHOD__METHOD_COUNT, AUTH_READ},
		{SHOAL__METHOD__METHOD_SCROLL, AUTH_READ},
		{SHOAL__METHOD__METHOD_SEARCH, AUTH_READ},
		{SHOAL__METHOD__METHOD_CLUSTER_STATUS, AUTH_READ},
		{SHOAL__METHOD__METHOD_CLUSTER_CHANGE, AUTH_ADMIN},
		{SHOAL__METHOD__METHOD_SET_PAYLOAD, AUTH_WRITE},
		{SHOAL__METHOD__METHOD_SNAPSHOT, AUTH_ADMIN},
		{SHOAL__METHOD__METHOD_KEYRING, AUTH_ADMIN},
	};
	const ProtobufCEnumDescriptor *d = &shoal__method__descriptor;
	unsigned bad = 0;

	for (unsigned i = 0; i < d->n_values; i++) {
		int v = d->values[i].value;
		size_t k = 0;

		if (v == SHOAL__METHOD__METHOD_NONE)
			continue;
		while (k < sizeof want / sizeof want[0] && want[k].m != v)
			k++;
		if (k == sizeof want / sizeof want[0]) {
			diag("%s is not in t/auth.c's table: decide its role", d->values[i].name);
			bad++;
		} else if (auth_method_role((uint16_t)v) != want[k].role) {
			diag("%s needs %s, expected %s", d->values[i].name,
			     auth_role_name(auth_method_role((uint16_t)v)),
			     auth_role_name(want[k].role));
			bad++;
		}
	}
	is_int(bad, 0, "every Method of the protocol (%u) needs the role listed for it",
	       d->n_values - 1);
	is_int(auth_method_role(999), AUTH_ADMIN, "a method without a role needs admin");
}

/* Each REST route needs what the method it runs needs. */
static void test_routes(void)
{
	static const struct {
		enum rest_route route;
		uint16_t method;
	} same[] = {
		{ROUTE_LIST, SHOAL__METHOD__METHOD_LIST_COLLECTIONS},
		{ROUTE_CREATE, SHOAL__METHOD__METHOD_CREATE_COLLECTION},
		{ROUTE_DESCRIBE, SHOAL__METHOD__METHOD_DESCRIBE_COLLECTION},
		{ROUTE_DROP, SHOAL__METHOD__METHOD_DROP_COLLECTION},
		{ROUTE_EXISTS, SHOAL__METHOD__METHOD_DESCRIBE_COLLECTION},
		{ROUTE_UPSERT, SHOAL__METHOD__METHOD_UPSERT},
		{ROUTE_GET, SHOAL__METHOD__METHOD_GET},
		{ROUTE_GET_ONE, SHOAL__METHOD__METHOD_GET},
		{ROUTE_DELETE, SHOAL__METHOD__METHOD_DELETE},
		{ROUTE_SET_PAYLOAD, SHOAL__METHOD__METHOD_SET_PAYLOAD},
		{ROUTE_OVERWRITE, SHOAL__METHOD__METHOD_SET_PAYLOAD},
		{ROUTE_DELETE_KEYS, SHOAL__METHOD__METHOD_SET_PAYLOAD},
		{ROUTE_CLEAR, SHOAL__METHOD__METHOD_SET_PAYLOAD},
		{ROUTE_SEARCH, SHOAL__METHOD__METHOD_SEARCH},
		{ROUTE_SEARCH_BATCH, SHOAL__METHOD__METHOD_SEARCH},
		{ROUTE_QUERY, SHOAL__METHOD__METHOD_SEARCH},
		{ROUTE_QUERY_BATCH, SHOAL__METHOD__METHOD_SEARCH},
		{ROUTE_SCROLL, SHOAL__METHOD__METHOD_SCROLL},
		{ROUTE_COUNT, SHOAL__METHOD__METHOD_COUNT},
		{ROUTE_CLUSTER, SHOAL__METHOD__METHOD_CLUSTER_STATUS},
		{ROUTE_MEMBERS, SHOAL__METHOD__METHOD_CLUSTER_STATUS},
	};
	unsigned open = 0, differ = 0;

	for (int r = ROUTE_ROOT; r < ROUTE_REFUSED; r++)
		if (rest_route_role((enum rest_route)r) == AUTH_OPEN) {
			diag("route %d needs no key", r);
			open++;
		}
	is_int(open, 0, "every REST route (%d) needs a role", ROUTE_REFUSED - ROUTE_ROOT);
	for (size_t i = 0; i < sizeof same / sizeof same[0]; i++)
		if (rest_route_role(same[i].route) != auth_method_role(same[i].method)) {
			diag("route %d needs %s, its method %s", same[i].route,
			     auth_role_name(rest_route_role(same[i].route)),
			     auth_role_name(auth_method_role(same[i].method)));
			differ++;
		}
	is_int(differ, 0, "each route needs what its method needs");
	is_int(rest_route_role(ROUTE_INDEX), AUTH_ADMIN, "payload indexes (schema): admin");
}

static int load(const char *a, const char *w, const char *r, struct auth **out, struct sh_err *e)
{
	struct auth_files f = {a, w, r};

	return auth_load(&f, out, e);
}

static void test_files(void)
{
	struct auth *a = NULL;
	struct sh_err e;

	ok(load(NULL, "", NULL, &a, &e) == 0 && a == NULL, "no key file: no keys required");
	ok(load(file("open", ADMIN "\n", 0644), NULL, NULL, &a, &e) != 0 &&
		   strstr(e.msg, "chmod 600") != NULL,
	   "a key file readable by others is refused: %s", e.msg);
	ok(load(file("short", "short-key\n", 0600), NULL, NULL, &a, &e) != 0 &&
		   strstr(e.msg, ":1: a key has 9 characters") != NULL,
	   "a key under 16 characters is refused: %s", e.msg);
	ok(load(file("space", "# c\nkey with a space in it\n", 0600), NULL, NULL, &a, &e) != 0 &&
		   strstr(e.msg, ":2:") != NULL,
	   "a key with a space is refused, its line named: %s", e.msg);
	ok(load(file("empty", "# nothing here\n\n", 0600), NULL, NULL, &a, &e) != 0 &&
		   strstr(e.msg, "no key") != NULL,
	   "a key file without a key is refused: %s", e.msg);
	ok(load("/nonexistent/keys", NULL, NULL, &a, &e) != 0 &&
		   strstr(e.msg, "/nonexistent/keys") != NULL,
	   "a missing key file is refused, named: %s", e.msg);
	is_int(load(file("a", "# admins\n\n" ADMIN "  \r\n", 0600), file("w", WRITE "\n", 0600),
		    file("r", READ, 0400), &a, &e),
	       0, "three key files load (comments, blank lines, trailing blanks)");
	auth_free(a);
}

static void test_roles(void)
{
	struct auth *a = NULL;
	struct sh_err e;
	char big[300];

	if (load(file("a2", ADMIN "\n", 0600), file("w2", WRITE "\n" READ "\n", 0600),
		 file("r2", READ "\n", 0600), &a, &e) != 0)
		bail_out("keys: %s", e.msg);
	is_int(auth_role_of(a, ADMIN, strlen(ADMIN)), AUTH_ADMIN, "the admin key: admin");
	is_int(auth_role_of(a, WRITE, strlen(WRITE)), AUTH_WRITE, "the write key: write");
	is_int(auth_role_of(a, READ, strlen(READ)), AUTH_WRITE,
	       "a key in two files has the higher role");
	is_int(auth_role_of(a, "", 0), AUTH_MISSING, "no key: missing");
	is_int(auth_role_of(a, ADMIN, strlen(ADMIN) - 1), AUTH_INVALID, "a prefix: invalid");
	is_int(auth_role_of(a, ADMIN "x", strlen(ADMIN) + 1), AUTH_INVALID, "longer: invalid");
	is_int(auth_role_of(a, "admin-key-0123456789abcdeF", strlen(ADMIN)), AUTH_INVALID,
	       "one character off: invalid");
	memset(big, 'k', sizeof big);
	is_int(auth_role_of(a, big, sizeof big), AUTH_INVALID, "over 256 bytes: invalid");
	is_int(auth_role_of(NULL, "", 0), AUTH_ADMIN, "no keys configured: everything allowed");
	auth_free(a);
}

static void test_check(void)
{
	char msg[256];

	is_int(auth_check(AUTH_MISSING, AUTH_READ, "Search", msg, sizeof msg),
	       SHOAL__STATUS_CODE__UNAUTHENTICATED, "no key: UNAUTHENTICATED");
	like(msg, "needs an API key", "saying what to send: %s", msg);
	is_int(auth_check(AUTH_INVALID, AUTH_READ, "Search", msg, sizeof msg),
	       SHOAL__STATUS_CODE__UNAUTHENTICATED, "a wrong key: UNAUTHENTICATED");
	like(msg, "not valid", "%s", msg);
	is_int(auth_check(AUTH_READ, AUTH_WRITE, "Upsert", msg, sizeof msg),
	       SHOAL__STATUS_CODE__PERMISSION_DENIED, "read key, write method: PERMISSION_DENIED");
	like(msg, "role write; this key's role is read", "%s", msg);
	is_int(auth_check(AUTH_WRITE, AUTH_READ, "Search", msg, sizeof msg), 0, "write may read");
	is_int(auth_check(AUTH_ADMIN, AUTH_WRITE, "Upsert", msg, sizeof msg), 0, "admin may write");
	is_int(auth_check(AUTH_WRITE, AUTH_ADMIN, "CreateCollection", msg, sizeof msg),
	       SHOAL__STATUS_CODE__PERMISSION_DENIED, "write may not create");
	is_int(auth_check(AUTH_MISSING, AUTH_OPEN, "healthz", msg, sizeof msg), 0,
	       "what is open needs no key");
}

int main(void)
{
	if (mkdtemp(dir) == NULL)
		bail_out("mkdtemp");
	test_methods();
	test_routes();
	test_files();
	test_roles();
	test_check();
	{
		char cmd[300];

		snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			diag("cleanup failed");
	}
	return done_testing();
}
