/*
 * auth: see auth.h.
 */
#include "build.h"

#include "net/auth.h"

#include "proto/shoal.pb-c.h"
#include "util/alloc.h"
#include "util/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_FILE_MAX (64 * 1024)

struct key {
	uint8_t b[AUTH_KEY_MAX]; /* zero-padded */
	size_t len;
	enum auth_role role;
};

struct auth {
	struct key *keys;
	size_t n;
};

/* ------------------------------------------------------------ key files */

static int check_key(const char *path, int line, const char *k, size_t len, struct sh_err *err)
{
	if (len < AUTH_KEY_MIN || len > AUTH_KEY_MAX)
		return sh_err_set(err, SH_EINVAL,
				  "key file %s:%d: a key has %zu characters (%d to %d allowed)",
				  path, line, len, AUTH_KEY_MIN, AUTH_KEY_MAX);
	for (size_t i = 0; i < len; i++)
		if (k[i] <= ' ' || k[i] > '~')
			return sh_err_set(
				err, SH_EINVAL,
				"key file %s:%d: character %zu of the key is not printable "
				"ASCII without spaces",
				path, line, i + 1);
	return 0;
}

/* a->keys holds room for every file's AUTH_MAX_KEYS from the start: no
 * realloc leaves a copy of a key behind in freed memory. */
static void add_key(struct auth *a, const char *k, size_t len, enum auth_role role)
{
	memcpy(a->keys[a->n].b, k, len);
	a->keys[a->n].len = len;
	a->keys[a->n++].role = role;
}

/* Each line of text: a key of role, or blank, or a # comment. */
static int parse_keys(struct auth *a, const char *path, char *text, size_t len, enum auth_role role,
		      struct sh_err *err)
{
	size_t found = 0;
	int line = 0, rv;

	for (char *p = text, *end = text + len; p < end; line++) {
		char *nl = memchr(p, '\n', (size_t)(end - p)), *e = nl ? nl : end;
		size_t n = (size_t)(e - p);

		while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n > 0 && p[0] != '#') {
			if ((rv = check_key(path, line + 1, p, n, err)) != 0)
				return rv;
			if (++found > AUTH_MAX_KEYS)
				return sh_err_set(err, SH_EINVAL, "key file %s: more than %d keys",
						  path, AUTH_MAX_KEYS);
			add_key(a, p, n, role);
		}
		p = e + 1;
	}
	if (found == 0)
		return sh_err_set(err, SH_EINVAL, "key file %s: no key in it", path);
	return 0;
}

static int load_one(struct auth *a, const char *path, enum auth_role role, struct sh_err *err)
{
	char *buf;
	size_t len = 0;
	int rv;

	if (path == NULL || path[0] == '\0')
		return 0;
	if ((buf = sh_malloc(KEY_FILE_MAX + 1)) == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	rv = sh_secret_read(path, "key file", buf, KEY_FILE_MAX, &len, err);
	if (rv == 0)
		rv = parse_keys(a, path, buf, len, role, err);
	explicit_bzero(buf, KEY_FILE_MAX + 1); /* no key left in freed memory */
	sh_free(buf);
	return rv;
}

int auth_load(const struct auth_files *f, struct auth **out, struct sh_err *err)
{
	struct auth *a = sh_calloc(1, sizeof *a);
	int rv;

	*out = NULL;
	if (a == NULL || (a->keys = sh_calloc(3 * AUTH_MAX_KEYS, sizeof *a->keys)) == NULL) {
		sh_free(a);
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	}
	if ((rv = load_one(a, f->admin, AUTH_ADMIN, err)) != 0 ||
	    (rv = load_one(a, f->write, AUTH_WRITE, err)) != 0 ||
	    (rv = load_one(a, f->read, AUTH_READ, err)) != 0 || a->n == 0) {
		auth_free(a);
		return rv;
	}
	*out = a;
	return 0;
}

void auth_free(struct auth *a)
{
	if (a == NULL)
		return;
	if (a->keys != NULL)
		explicit_bzero(a->keys, a->n * sizeof *a->keys);
	sh_free(a->keys);
	sh_free(a);
}

void auth_counts(const struct auth *a, size_t *admin, size_t *write, size_t *read)
{
	*admin = *write = *read = 0;
	for (size_t i = 0; a != NULL && i < a->n; i++) {
		*admin += a->keys[i].role == AUTH_ADMIN;
		*write += a->keys[i].role == AUTH_WRITE;
		*read += a->keys[i].role == AUTH_READ;
	}
}

/* ------------------------------------------------------------ checks */

enum auth_role auth_role_of(const struct auth *a, const char *key, size_t len)
{
	uint8_t b[AUTH_KEY_MAX] = {0};
	unsigned best = 0; /* the highest role matched; every key is compared */

	if (a == NULL)
		return AUTH_ADMIN;
	if (len == 0)
		return AUTH_MISSING;
	if (len > AUTH_KEY_MAX)
		return AUTH_INVALID;
	memcpy(b, key, len);
	for (size_t i = 0; i < a->n; i++) {
		volatile unsigned diff = (unsigned)(a->keys[i].len ^ len);
		unsigned eq, mask, role = (unsigned)a->keys[i].role;

		for (size_t j = 0; j < AUTH_KEY_MAX; j++)
			diff |= a->keys[i].b[j] ^ b[j];
		eq = (unsigned)(((diff | (0u - diff)) >> (sizeof diff * 8 - 1)) ^
				1u);                        /* 1: equal */
		mask = 0u - (eq & (unsigned)(role > best)); /* all ones: take role */
		best = (best & ~mask) | (role & mask);
	}
	explicit_bzero(b, sizeof b);
	return best == 0 ? AUTH_INVALID : (enum auth_role)best;
}

const char *auth_role_name(enum auth_role r)
{
	static const char *const names[] = {"none", "read", "write", "admin", "missing", "invalid"};

	return r >= AUTH_OPEN && r <= AUTH_INVALID ? names[r] : "?";
}

int auth_check(enum auth_role have, enum auth_role need, const char *what, char *msg, size_t size)
{
	if (need == AUTH_OPEN)
		return 0;
	if (have == AUTH_MISSING) {
		snprintf(msg, size,
			 "%s needs an API key (binary protocol: Metadata.api_key; REST: the "
			 "Authorization: Bearer or api-key header; doc/security.md)",
			 what);
		return SHOAL__STATUS_CODE__UNAUTHENTICATED;
	}
	if (have == AUTH_INVALID) {
		snprintf(msg, size, "%s: the API key is not valid", what);
		return SHOAL__STATUS_CODE__UNAUTHENTICATED;
	}
	if (have < need) {
		snprintf(msg, size, "%s needs an API key of role %s; this key's role is %s", what,
			 auth_role_name(need), auth_role_name(have));
		return SHOAL__STATUS_CODE__PERMISSION_DENIED;
	}
	return 0;
}

enum auth_role auth_method_role(uint16_t method)
{
	switch (method) {
	case SHOAL__METHOD__METHOD_PING:
	case SHOAL__METHOD__METHOD_LIST_COLLECTIONS:
	case SHOAL__METHOD__METHOD_DESCRIBE_COLLECTION:
	case SHOAL__METHOD__METHOD_GET:
	case SHOAL__METHOD__METHOD_COUNT:
	case SHOAL__METHOD__METHOD_SCROLL:
	case SHOAL__METHOD__METHOD_SEARCH:
	case SHOAL__METHOD__METHOD_CLUSTER_STATUS: return AUTH_READ;
	case SHOAL__METHOD__METHOD_UPSERT:
	case SHOAL__METHOD__METHOD_DELETE:
	case SHOAL__METHOD__METHOD_SET_PAYLOAD: return AUTH_WRITE;
	case SHOAL__METHOD__METHOD_CREATE_COLLECTION:
	case SHOAL__METHOD__METHOD_DROP_COLLECTION:
	case SHOAL__METHOD__METHOD_CLUSTER_CHANGE:
	case SHOAL__METHOD__METHOD_SNAPSHOT:
	case SHOAL__METHOD__METHOD_KEYRING: return AUTH_ADMIN;
	default: return AUTH_ADMIN; /* fail closed: a method without a role */
	}
}
