/*
 * api_keys: the keyring method (METHOD_KEYRING, doc/security.md "Gossip
 * keyring"), on the loop thread: list this node's gossip keys by
 * fingerprint, or install, use or remove one.  A change is written to the
 * keyring file before the answer; when the file cannot be written the
 * change is undone and the answer says why.
 */
#include "build.h"

#include "net/api.h"

#include "cluster/keyring.h"
#include "util/log.h"

#include <string.h>

/* Apply r's change to kr; *changed says whether kr differs now. */
static int change(struct keyring *kr, const Shoal__KeyringRequest *r, const uint8_t *key,
		  bool *changed, struct sh_err *err)
{
	size_t n = keyring_count(kr);
	bool primary = memcmp(keyring_key(kr, 0), key, KEYRING_KEY) == 0;
	int rv;

	switch (r->op) {
	case SHOAL__KEYRING_OP__KEYRING_INSTALL: rv = keyring_install(kr, key, err); break;
	case SHOAL__KEYRING_OP__KEYRING_USE: rv = keyring_use(kr, key, err); break;
	case SHOAL__KEYRING_OP__KEYRING_REMOVE: rv = keyring_remove(kr, key, err); break;
	default: return sh_err_set(err, SH_EINVAL, "unknown keyring operation %d", (int)r->op);
	}
	*changed = rv == 0 && (keyring_count(kr) != n ||
			       (r->op == SHOAL__KEYRING_OP__KEYRING_USE && !primary));
	return rv;
}

/* Undo a change that could not be saved. */
static void undo(struct keyring *kr, const Shoal__KeyringRequest *r, const uint8_t *key,
		 const uint8_t *old_primary)
{
	struct sh_err e;

	if (r->op == SHOAL__KEYRING_OP__KEYRING_INSTALL)
		keyring_remove(kr, key, &e);
	else if (r->op == SHOAL__KEYRING_OP__KEYRING_USE)
		keyring_use(kr, old_primary, &e);
	else
		keyring_install(kr, key, &e);
}

/* Run r on kr; fp gets its key's fingerprint ("" without a key). */
static int run(struct keyring *kr, const char *path, const Shoal__KeyringRequest *r,
	       char fp[KEYRING_FP + 1], struct sh_err *err)
{
	uint8_t key[KEYRING_KEY], old[KEYRING_KEY];
	bool changed = false;
	int rv;

	if (r->op == SHOAL__KEYRING_OP__KEYRING_LIST && r->key[0] == '\0')
		return 0;
	if ((rv = keyring_parse_key(r->key, key, err)) != 0)
		return rv;
	keyring_fingerprint(key, fp);
	if (r->op == SHOAL__KEYRING_OP__KEYRING_LIST) {
		explicit_bzero(key, sizeof key);
		return 0;
	}
	memcpy(old, keyring_key(kr, 0), KEYRING_KEY);
	if ((rv = change(kr, r, key, &changed, err)) == 0 && changed &&
	    (rv = keyring_save(kr, path, err)) != 0)
		undo(kr, r, key, old);
	if (rv == 0 && changed)
		LOG_INFO("server", "gossip keyring: %s key %s; %zu key(s) now",
			 r->op == SHOAL__KEYRING_OP__KEYRING_INSTALL ? "installed"
			 : r->op == SHOAL__KEYRING_OP__KEYRING_USE   ? "primary is now"
								     : "removed",
			 fp, keyring_count(kr));
	explicit_bzero(key, sizeof key);
	explicit_bzero(old, sizeof old);
	return rv;
}

static int answer(struct op *op, const struct keyring *kr, const char *fp)
{
	Shoal__KeyringResponse *s = api_new_msg(op, &shoal__keyring_response__descriptor);
	size_t n = keyring_count(kr);

	if (s == NULL || (s->key_fingerprint = arena_strndup(&op->arena, fp, strlen(fp))) == NULL ||
	    (s->fingerprints = arena_calloc(&op->arena, n, sizeof *s->fingerprints)) == NULL)
		return sh_err_set(&op->err, SH_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		if ((s->fingerprints[i] = arena_alloc(&op->arena, KEYRING_FP + 1)) == NULL)
			return sh_err_set(&op->err, SH_ENOMEM, "out of memory");
		keyring_fingerprint(keyring_key(kr, i), s->fingerprints[i]);
	}
	s->n_fingerprints = n;
	op->resp = &s->base;
	return 0;
}

void api_keyring(struct op *op, const struct api_keyring *k)
{
	Shoal__KeyringRequest *r = (Shoal__KeyringRequest *)op->req;
	struct keyring *kr = k->kr;
	char fp[KEYRING_FP + 1] = "";
	int rv;

	if (kr == NULL) {
		op->status = SHOAL__STATUS_CODE__FAILED_PRECONDITION;
		sh_err_set(&op->err, SH_EINVAL,
			   "this node has no gossip keyring: start it with "
			   "security.gossip_keyring_file to seal gossip (doc/security.md)");
		return;
	}
	if ((rv = run(kr, k->path, r, fp, &op->err)) == 0)
		rv = answer(op, kr, fp);
	explicit_bzero(r->key, strlen(r->key));
	if (rv == 0 && r->op == SHOAL__KEYRING_OP__KEYRING_REMOVE && k->removed != NULL)
		k->removed(k->arg);
	op->status = rv == 0 ? SHOAL__STATUS_CODE__OK : api_status_of(rv);
}
