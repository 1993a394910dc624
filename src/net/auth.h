/*
 * auth: API keys and their roles (doc/security.md).
 *
 * Keys come from files, one file per role (security.admin_keys_file,
 * write_keys_file, read_keys_file): a key a line, blank lines and lines
 * starting with '#' skipped, each key 16 to 256 printable ASCII characters
 * without spaces.  A key file must not be readable by group or others
 * (as ssh checks its keys).  Roles nest: admin may do what write may, write
 * what read may.  With no file configured, authentication is off and every
 * request is served, as before.
 *
 * A key is compared with every configured key, whole, in time that does
 * not depend on the keys' contents, nor on where (or whether) it matches:
 * a wrong key's answer tells nothing of the keys (their number shows in
 * the time: at most 192 comparisons of 256 bytes).
 *
 * Frontends check a request before it runs: the binary protocol by its
 * Method (auth_method_role), REST by its route (rest.c).  The structure is
 * immutable once loaded; a SIGHUP loads a new one and swaps it on the loop
 * thread.
 */
#ifndef SHOAL_NET_AUTH_H
#define SHOAL_NET_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define AUTH_KEY_MIN  16
#define AUTH_KEY_MAX  256
#define AUTH_MAX_KEYS 64 /* per file */

enum auth_role {
	AUTH_OPEN = 0, /* needs no key (a method: never; /healthz) */
	AUTH_READ,
	AUTH_WRITE,
	AUTH_ADMIN,
	AUTH_MISSING, /* a request's: no key given */
	AUTH_INVALID, /* a request's: a key that matches none */
};

struct auth_files {
	const char *admin, *write, *read; /* paths, NULL or "" for none */
};

struct auth;

/* Load the key files; *out is NULL when no file is configured (off). */
int auth_load(const struct auth_files *f, struct auth **out, struct sh_err *err);
void auth_free(struct auth *a);
/* Keys loaded per role (for the log line at start and reload). */
void auth_counts(const struct auth *a, size_t *admin, size_t *write, size_t *read);

/* The role of the key key[0..len): AUTH_MISSING when len is 0,
 * AUTH_INVALID when it matches no key.  a NULL: AUTH_ADMIN (off). */
enum auth_role auth_role_of(const struct auth *a, const char *key, size_t len);

/* May a request whose key has role `have` do what needs `need`?  0 yes;
 * else the status to answer (Shoal__StatusCode: UNAUTHENTICATED or
 * PERMISSION_DENIED) with msg saying why, naming no key. */
int auth_check(enum auth_role have, enum auth_role need, const char *what, char *msg, size_t size);

/* The role a binary-protocol method needs; AUTH_ADMIN for a method not in
 * the table (fail closed; t/auth.c lists every Method of the protocol with
 * the role it expects and fails on one it does not know). */
enum auth_role auth_method_role(uint16_t method);
const char *auth_role_name(enum auth_role r);

#endif
