/*
 * payload: see payload.h.  Qdrant's rules: set merges the given keys into
 * the payload (into the object at `key` when it is given, made when
 * missing, replacing a value that is not an object); overwrite replaces
 * the whole payload; delete removes the given paths; clear removes all.
 * `keep` names top-level keys that overwrite and clear leave in place
 * (the REST API keeps a point's UUID there, doc/qdrant.md).
 */
#include "build.h"

#include "storage/payload.h"

#include "util/alloc.h"

#include <jansson.h>
#include <string.h>

/* The object at dotted path key in root, made (replacing non-objects) on
 * the way; NULL when out of memory. */
static json_t *object_at(json_t *root, const char *key)
{
	json_t *o = root;
	const char *p = key;

	while (p != NULL && *p != '\0') {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);
		json_t *next = json_object_getn(o, p, len);

		if (!json_is_object(next)) {
			if ((next = json_object()) == NULL || json_object_setn_new(o, p, len, next))
				return NULL;
		}
		o = next;
		p = dot ? dot + 1 : NULL;
	}
	return o;
}

/* Remove dotted path key from root (nothing when absent). */
static void remove_path(json_t *root, const char *key)
{
	const char *dot, *p = key;
	json_t *o = root;

	while ((dot = strchr(p, '.')) != NULL && json_is_object(o)) {
		o = json_object_getn(o, p, (size_t)(dot - p));
		p = dot + 1;
	}
	if (json_is_object(o))
		json_object_deln(o, p, strlen(p));
}

static json_t *kept(const struct payload_change *ch, json_t *old)
{
	json_t *o = json_object();

	for (size_t i = 0; o != NULL && i < ch->n_keep; i++) {
		json_t *v = json_object_get(old, ch->keep[i]);

		if (v != NULL)
			json_object_set(o, ch->keep[i], v);
	}
	return o;
}

static int change(const struct payload_change *ch, json_t *old, json_t *given, json_t **out)
{
	json_t *r = NULL;

	switch (ch->op) {
	case PAYLOAD_SET:
		r = json_incref(old);
		if (json_object_update(object_at(r, ch->key), given) != 0)
			goto nomem;
		break;
	case PAYLOAD_OVERWRITE:
		if ((r = kept(ch, old)) == NULL || json_object_update(given, r) != 0)
			goto nomem;
		json_decref(r);
		r = json_incref(given);
		break;
	case PAYLOAD_DELETE_KEYS:
		r = json_incref(old);
		for (size_t i = 0; i < ch->n_keys; i++)
			remove_path(r, ch->keys[i]);
		break;
	case PAYLOAD_CLEAR:
		if ((r = kept(ch, old)) == NULL)
			goto nomem;
		break;
	}
	*out = r;
	return 0;
nomem:
	json_decref(r);
	return SH_ENOMEM;
}

int payload_apply(const struct payload_change *ch, const char *old, size_t old_len, size_t limit,
		  char **out, size_t *out_len, struct sh_err *err)
{
	json_t *o = old_len ? json_loadb(old, old_len, 0, NULL) : json_object();
	json_t *g =
		ch->payload_len ? json_loadb(ch->payload, ch->payload_len, 0, NULL) : json_object();
	json_t *r = NULL;
	char *text = NULL;
	int rv;

	*out = NULL;
	*out_len = 0;
	if (!json_is_object(o) || !json_is_object(g)) /* stored and checked: memory */
		rv = sh_err_set(err, SH_ENOMEM, "out of memory");
	else if ((rv = change(ch, o, g, &r)) != 0)
		sh_err_set(err, rv, "out of memory");
	else if (json_object_size(r) > 0 &&
		 (text = json_dumps(r, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
		rv = sh_err_set(err, SH_ENOMEM, "out of memory");
	else if (text != NULL && strlen(text) > limit)
		rv = sh_err_set(err, SH_ETOOBIG, "payload of %zu bytes is over the limit of %zu",
				strlen(text), limit);
	if (rv == 0 && text != NULL) {
		*out = text;
		*out_len = strlen(text);
		text = NULL;
	}
	sh_free(text); /* jansson allocates through sh_malloc */
	json_decref(r);
	json_decref(o);
	json_decref(g);
	return rv;
}
