/*
 * raft_wire: see raft_wire.h.
 */
#include "build.h"

#include "cluster/raft_wire.h"

#include "proto/cluster.pb-c.h"
#include "proto/log.pb-c.h"
#include "util/alloc.h"

#include <string.h>

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ------------------------------------------------------------ encode */

static void fill(Shoal__Cluster__Raft *h, const struct raft_msg *m, uint64_t cluster_id)
{
	shoal__cluster__raft__init(h);
	h->type = (uint32_t)m->type;
	h->term = m->term;
	h->from = m->from;
	h->cluster_id = cluster_id;
	h->prevote = m->prevote;
	h->transfer = m->transfer;
	h->last_index = m->last_index;
	h->last_term = m->last_term;
	h->granted = m->granted;
	h->prev_index = m->prev_index;
	h->prev_term = m->prev_term;
	h->commit = m->commit;
	h->sent_at = m->sent_at;
	h->success = m->success;
	h->match = m->match;
	h->hint = m->hint;
	h->read_id = m->read_id;
	h->read_index = m->read_index;
}

int raft_wire_header(const struct raft_msg *m, uint64_t cluster_id, uint8_t **out, size_t *len,
		     struct sh_err *err)
{
	Shoal__Cluster__Raft h;
	size_t n = m->n, hlen;
	uint64_t bodies = 0;
	uint64_t *terms = sh_malloc((n ? n : 1) * sizeof *terms);
	uint32_t *types = sh_malloc((n ? n : 1) * sizeof *types);
	uint32_t *sizes = sh_malloc((n ? n : 1) * sizeof *sizes);
	uint8_t *buf = NULL;
	int rv = SH_ENOMEM;

	if (terms == NULL || types == NULL || sizes == NULL)
		goto out;
	fill(&h, m, cluster_id);
	for (size_t i = 0; i < n; i++) {
		terms[i] = m->entries[i].term;
		types[i] = m->entries[i].type;
		sizes[i] = m->entries[i].size;
		bodies += m->entries[i].size;
	}
	h.n_entry_terms = h.n_entry_types = h.n_entry_sizes = n;
	h.entry_terms = terms;
	h.entry_types = types;
	h.entry_sizes = sizes;
	hlen = shoal__cluster__raft__get_packed_size(&h);
	if (hlen > RAFT_WIRE_MAX_HEADER || 4 + hlen + bodies > UINT32_MAX) {
		rv = sh_err_set(err, SH_ETOOBIG, "raft: message too large (%zu header bytes)",
				hlen);
		goto out;
	}
	if ((buf = sh_malloc(RAFT_WIRE_PREFIX + hlen)) == NULL)
		goto out;
	put_le32(buf, (uint32_t)(4 + hlen + bodies));
	put_le32(buf + 4, (uint32_t)hlen);
	shoal__cluster__raft__pack(&h, buf + RAFT_WIRE_PREFIX);
	*out = buf;
	*len = RAFT_WIRE_PREFIX + hlen;
	rv = 0;
out:
	if (rv == SH_ENOMEM)
		sh_err_set(err, rv, "raft: out of memory");
	sh_free(terms);
	sh_free(types);
	sh_free(sizes);
	return rv;
}

/* ------------------------------------------------------------ configurations */

static bool seen(const uint64_t *v, unsigned n, uint64_t id)
{
	for (unsigned i = 0; i < n; i++)
		if (v[i] == id)
			return true;
	return false;
}

int raft_conf_decode(const uint8_t *buf, size_t len, struct raft_conf *c, struct sh_err *err)
{
	Shoal__Log__VoterConfig *m = shoal__log__voter_config__unpack(NULL, len, buf);
	int rv = 0;

	memset(c, 0, sizeof *c);
	if (m == NULL)
		return sh_err_set(err, SH_EINVAL, "raft: a configuration that does not decode");
	if (m->n_voters < 1 || m->n_voters + m->n_learners > RAFT_MAX_NODES) {
		rv = sh_err_set(err, SH_EINVAL,
				"raft: configuration of %zu voters and %zu learners", m->n_voters,
				m->n_learners);
		goto out;
	}
	for (size_t i = 0; i < m->n_voters + m->n_learners && rv == 0; i++) {
		bool voter = i < m->n_voters;
		uint64_t id = voter ? m->voters[i]->node_id : m->learners[i - m->n_voters]->node_id;

		if (id == RAFT_NONE || seen(c->voters, c->n_voters, id) ||
		    seen(c->learners, c->n_learners, id))
			rv = sh_err_set(err, SH_EINVAL,
					"raft: configuration member %zu: bad or repeated id", i);
		else if (voter)
			c->voters[c->n_voters++] = id;
		else
			c->learners[c->n_learners++] = id;
	}
	for (size_t i = 0; i < m->n_removed && rv == 0; i++) {
		if (m->n_removed > RAFT_MAX_NODES || m->removed[i] == RAFT_NONE ||
		    seen(c->removed, c->n_removed, m->removed[i]))
			rv = sh_err_set(err, SH_EINVAL,
					"raft: removed member %zu: bad or repeated id", i);
		else
			c->removed[c->n_removed++] = m->removed[i];
	}
out:
	shoal__log__voter_config__free_unpacked(m, NULL);
	return rv;
}

int raft_conf_encode(const struct raft_conf *c, uint8_t **out, size_t *len, struct sh_err *err)
{
	Shoal__Log__VoterConfig m;
	Shoal__Log__Voter v[2 * RAFT_MAX_NODES], *pv[RAFT_MAX_NODES], *pl[RAFT_MAX_NODES];
	char empty[] = "";

	shoal__log__voter_config__init(&m);
	for (unsigned i = 0; i < c->n_voters + c->n_learners; i++) {
		shoal__log__voter__init(&v[i]);
		v[i].node_id = i < c->n_voters ? c->voters[i] : c->learners[i - c->n_voters];
		v[i].address = empty;
		if (i < c->n_voters)
			pv[i] = &v[i];
		else
			pl[i - c->n_voters] = &v[i];
	}
	m.n_voters = c->n_voters;
	m.voters = pv;
	m.n_learners = c->n_learners;
	m.learners = pl;
	m.n_removed = c->n_removed;
	m.removed = (uint64_t *)(uintptr_t)c->removed;
	*len = shoal__log__voter_config__get_packed_size(&m);
	if ((*out = sh_malloc(*len ? *len : 1)) == NULL)
		return sh_err_set(err, SH_ENOMEM, "raft: out of memory");
	shoal__log__voter_config__pack(&m, *out);
	return 0;
}

/* ------------------------------------------------------------ decode */

static int check_header(const Shoal__Cluster__Raft *h, size_t body_bytes, struct sh_err *err)
{
	uint64_t sum = 0;

	if (h->type < RAFT_MSG_VOTE || h->type > RAFT_MSG_READ_INDEX_RESP)
		return sh_err_set(err, SH_EINVAL, "raft: unknown message type %u", h->type);
	if (h->from == RAFT_NONE)
		return sh_err_set(err, SH_EINVAL, "raft: message from node 0");
	if (h->n_entry_terms != h->n_entry_types || h->n_entry_terms != h->n_entry_sizes)
		return sh_err_set(err, SH_EINVAL, "raft: entry arrays of unequal lengths");
	if (h->n_entry_terms > RAFT_WIRE_MAX_ENTRIES ||
	    (h->n_entry_terms > 0 && h->type != RAFT_MSG_APPEND))
		return sh_err_set(err, SH_EINVAL, "raft: %zu entries in a %s message",
				  h->n_entry_terms, raft_msg_name((enum raft_msg_type)h->type));
	for (size_t i = 0; i < h->n_entry_terms; i++) {
		if (h->entry_terms[i] == 0 || h->entry_types[i] == 0 || h->entry_types[i] > 255)
			return sh_err_set(err, SH_EINVAL, "raft: entry %zu: term or type 0", i);
		sum += h->entry_sizes[i];
	}
	if (sum != body_bytes)
		return sh_err_set(err, SH_EINVAL,
				  "raft: entry sizes add up to %llu, %zu bytes follow",
				  (unsigned long long)sum, body_bytes);
	return 0;
}

static void unfill(struct raft_msg *m, const Shoal__Cluster__Raft *h)
{
	m->type = (enum raft_msg_type)h->type;
	m->term = h->term;
	m->from = h->from;
	m->prevote = h->prevote;
	m->transfer = h->transfer;
	m->last_index = h->last_index;
	m->last_term = h->last_term;
	m->granted = h->granted;
	m->prev_index = h->prev_index;
	m->prev_term = h->prev_term;
	m->commit = h->commit;
	m->sent_at = h->sent_at;
	m->success = h->success;
	m->match = h->match;
	m->hint = h->hint;
	m->read_id = h->read_id;
	m->read_index = h->read_index;
	m->n = h->n_entry_terms;
}

/* Entries and bodies, configurations decoded. */
static int take_entries(struct raft_wire_msg *out, const Shoal__Cluster__Raft *h,
			const uint8_t *bodies, struct sh_err *err)
{
	size_t n = h->n_entry_terms ? h->n_entry_terms : 1;

	out->entries = sh_calloc(n, sizeof *out->entries);
	out->confs = sh_calloc(n, sizeof *out->confs);
	out->bodies = sh_calloc(n, sizeof *out->bodies);
	if (out->entries == NULL || out->confs == NULL || out->bodies == NULL)
		return sh_err_set(err, SH_ENOMEM, "raft: out of memory");
	for (size_t i = 0; i < h->n_entry_terms; i++) {
		struct raft_entry_meta *e = &out->entries[i];

		e->term = h->entry_terms[i];
		e->type = (uint8_t)h->entry_types[i];
		e->size = h->entry_sizes[i];
		out->bodies[i] = bodies;
		if (e->type == RAFT_ENTRY_CONFIG) {
			if (raft_conf_decode(bodies, e->size, &out->confs[i], err) != 0)
				return sh_err_wrap(err, SH_EINVAL, "raft: entry %zu", i);
			e->conf = &out->confs[i];
		}
		bodies += e->size;
	}
	out->msg.entries = out->entries;
	return 0;
}

int raft_wire_decode(const uint8_t *frame, size_t len, size_t max_bytes, struct raft_wire_msg *out,
		     struct sh_err *err)
{
	Shoal__Cluster__Raft *h;
	uint32_t hlen;
	int rv;

	memset(out, 0, sizeof *out);
	if (len > max_bytes)
		return sh_err_set(err, SH_ETOOBIG, "raft: frame of %zu bytes (limit %zu)", len,
				  max_bytes);
	if (len < 4 || (hlen = get_le32(frame)) > len - 4 || hlen > RAFT_WIRE_MAX_HEADER)
		return sh_err_set(err, SH_EINVAL, "raft: bad header length in a %zu-byte frame",
				  len);
	h = shoal__cluster__raft__unpack(NULL, hlen, frame + 4);
	if (h == NULL)
		return sh_err_set(err, SH_EINVAL, "raft: header does not decode");
	rv = check_header(h, len - 4 - hlen, err);
	if (rv == 0) {
		unfill(&out->msg, h);
		out->cluster_id = h->cluster_id;
		rv = take_entries(out, h, frame + 4 + hlen, err);
	}
	shoal__cluster__raft__free_unpacked(h, NULL);
	if (rv != 0)
		raft_wire_free(out);
	return rv;
}

void raft_wire_free(struct raft_wire_msg *m)
{
	sh_free(m->entries);
	sh_free(m->confs);
	sh_free(m->bodies);
	memset(m, 0, sizeof *m);
}
