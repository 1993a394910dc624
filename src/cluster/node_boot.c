/*
 * node_boot: how a cluster forms — the founder set, decided once by
 * single-decree Paxos over the membership metadata (doc/replication.md,
 * "Bootstrap"; DESIGN.md section 8).
 *
 * The acceptors are the nodes started with `bootstrap_expect` B: each
 * gossips its acceptor state in its membership metadata.  A quorum is any
 * B of them — two quorums share a node because fewer than 2B nodes start
 * with bootstrap_expect (the documented rule).  The value decided is the
 * founder set: B node ids.
 *
 * Each acceptor keeps, on disk (DIR/bootstrap.state) before it gossips
 * it, the highest ballot it promised, the ballot and set it accepted last
 * and whether it knows the set is decided.  A ballot is (round, proposer
 * id), ordered by round then id.
 *
 *   proposer  the smallest id among the acceptors alive for
 *             BOOT_STABLE_MS, once there are B of them, starts a ballot
 *             above every round it saw by promising it itself (prepare).
 *             Once B acceptors gossip that promise, it accepts its ballot
 *             with the set accepted at the highest ballot among them, or,
 *             when none accepted any, the B smallest alive acceptor ids
 *             (accept request).  A ballot not decided within
 *             BOOT_RETRY_MS is given up for a higher one.
 *   acceptor  promises a higher ballot gossiped by its proposer; accepts
 *             a proposer's accept request at a ballot not below its
 *             promise.
 *   learner   the set is decided once B acceptors gossip the same accepted
 *             ballot (one set per ballot), or once any acceptor gossips
 *             that it knows it decided.
 *
 * A founder (a member of the decided set) then writes the first entry —
 * index 1, term 1, the founders as voters, the same on every founder —
 * and the cluster id is the set's hash.  Other acceptors wait to be added
 * to the cluster.  A founder that learned the cluster id from another
 * founder before it wrote its own entry still writes it, once it knows the
 * set (else all could hold the id and none the entry: whole-node
 * simulator, seed 872675029).
 *
 * This replaced promise-once founder sets, which could deadlock for ever
 * when partitions made nodes promise different sets (whole-node
 * simulator, seed 2467814): a Paxos ballot that stalls is given up for a
 * higher one, and the decided set cannot change.
 */
#include "build.h"

#include "cluster/node_impl.h"

#include "storage/datadir.h"
#include "storage/db.h"
#include "storage/le.h"
#include "util/log.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BOOT_STABLE_MS 500
#define BOOT_RETRY_MS  3000
#define BOOT_MAX_ROUND 0x7fffffffu /* a higher round is refused (file or network) */
#define BOOT_FILE      "bootstrap.state"
#define BOOT_OLD_FILE  "founders.id" /* the promise of shoal before Paxos */
#define BOOT_MAGIC     "shoal-bootstrap 1"

/* The metadata: version, B, promised (round u32, id u64), accepted
 * (round, id), decided, k, then k ids; little-endian. */
#define META_VERSION 3
#define META_HEAD    28
#define META_MAX_IDS ((SWIM_META_MAX - META_HEAD) / 8)

struct ballot_meta {
	struct boot_ballot promised, accepted;
	bool decided;
	struct raft_conf set; /* voters: the accepted set */
};

static int ballot_cmp(struct boot_ballot a, struct boot_ballot b)
{
	if (a.round != b.round)
		return a.round < b.round ? -1 : 1;
	return a.id < b.id ? -1 : a.id > b.id;
}

static bool ballot_zero(struct boot_ballot a)
{
	return a.round == 0 && a.id == 0;
}

uint64_t node_boot_hash(const struct raft_conf *c)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (unsigned i = 0; i < c->n_voters; i++) {
		h ^= c->voters[i];
		h *= 0x100000001b3ull;
		h ^= h >> 29;
	}
	return h != 0 ? h : 1;
}

/* A founder set as made here: nonzero ids in increasing order. */
static bool set_valid(const struct raft_conf *c)
{
	for (unsigned i = 0; i < c->n_voters; i++)
		if (c->voters[i] == 0 || (i > 0 && c->voters[i] <= c->voters[i - 1]))
			return false;
	return true;
}

/* ------------------------------------------------------------ the file */

/* " HEX" at *p: 1 to 16 hex digits after one space; *p moves past it. */
static bool hex_field(const char **p, uint64_t *v)
{
	const char *q = *p;
	int k = 0;

	if (*q++ != ' ')
		return false;
	for (*v = 0; k < 17 && isxdigit((unsigned char)q[k]); k++)
		*v = *v << 4 | (uint64_t)(isdigit((unsigned char)q[k])
						  ? q[k] - '0'
						  : tolower((unsigned char)q[k]) - 'a' + 10);
	*p = q + k;
	return k >= 1 && k <= 16;
}

static int state_parse(struct node_boot *b, const char *text, size_t len, const char *where,
		       struct sh_err *err)
{
	uint64_t v[6];
	const char *p = text + sizeof BOOT_MAGIC - 1;

	if (len < sizeof BOOT_MAGIC || memcmp(text, BOOT_MAGIC, sizeof BOOT_MAGIC - 1) != 0 ||
	    memchr(text, '\n', len) != text + len - 1)
		return sh_err_set(err, SH_ECORRUPT, "%s: not a bootstrap state (one line)", where);
	for (int i = 0; i < 6; i++)
		if (!hex_field(&p, &v[i]))
			return sh_err_set(err, SH_ECORRUPT,
					  "%s: field %d is not 1 to 16 hex digits after a space",
					  where, i + 1);
	if (v[0] > BOOT_MAX_ROUND || v[2] > BOOT_MAX_ROUND || v[4] > 1 || v[5] > META_MAX_IDS)
		return sh_err_set(err, SH_ECORRUPT, "%s: bad ballot, flag or set size", where);
	b->promised = (struct boot_ballot){(uint32_t)v[0], v[1]};
	b->accepted = (struct boot_ballot){(uint32_t)v[2], v[3]};
	b->decided = v[4] == 1;
	memset(&b->set, 0, sizeof b->set);
	for (unsigned i = 0; i < v[5]; i++)
		if (!hex_field(&p, &b->set.voters[i]))
			return sh_err_set(err, SH_ECORRUPT,
					  "%s: founder %u is not 1 to 16 hex digits after a space",
					  where, i + 1);
	b->set.n_voters = (unsigned)v[5];
	if (*p != '\n' || !set_valid(&b->set) ||
	    ballot_zero(b->accepted) != (b->set.n_voters == 0) ||
	    ballot_cmp(b->accepted, b->promised) > 0 || (b->decided && b->set.n_voters == 0))
		return sh_err_set(err, SH_ECORRUPT,
				  "%s: trailing bytes, a bad founder set, or an accepted ballot "
				  "without a set, with one, or above the promise",
				  where);
	return 0;
}

static int state_write(struct node *n, struct sh_err *err)
{
	const struct node_boot *b = &n->boot;
	char text[64 + 17 * (META_MAX_IDS + 8)];
	int len = snprintf(text, sizeof text, BOOT_MAGIC " %x %" PRIx64 " %x %" PRIx64 " %d %x",
			   b->promised.round, b->promised.id, b->accepted.round, b->accepted.id,
			   b->decided ? 1 : 0, b->set.n_voters);

	for (unsigned i = 0; i < b->set.n_voters; i++)
		len += snprintf(text + len, sizeof text - (size_t)len, " %" PRIx64,
				b->set.voters[i]);
	text[len++] = '\n';
	return sh_datadir_write_file(n->o.datadir, BOOT_FILE, text, (size_t)len, err);
}

/* A promise of shoal before Paxos with nothing founded yet cannot be
 * kept by this protocol: the operator decides. */
static int refuse_old_promise(struct node *n, struct sh_err *err)
{
	char text[64];
	size_t len;
	int rv = sh_datadir_read_file(n->o.datadir, BOOT_OLD_FILE, text, sizeof text, &len, err);

	if (rv == SH_ENOTFOUND || (rv == 0 && !node_boot_pending(n)))
		return 0;
	if (rv != 0)
		return rv;
	return sh_err_set(err, SH_EINVAL,
			  "%s/%s holds a founder promise of an older shoal and this node has "
			  "not bootstrapped yet: delete that file on every founding node and "
			  "start them all with this version",
			  sh_datadir_path(n->o.datadir), BOOT_OLD_FILE);
}

int node_boot_load(struct node *n, struct sh_err *err)
{
	char text[64 + 17 * (META_MAX_IDS + 8)], where[512];
	size_t len;
	int rv;

	memset(&n->boot, 0, sizeof n->boot);
	if ((rv = refuse_old_promise(n, err)) != 0)
		return rv;
	rv = sh_datadir_read_file(n->o.datadir, BOOT_FILE, text, sizeof text, &len, err);
	if (rv != 0)
		return rv == SH_ENOTFOUND ? 0 : rv; /* an empty file is damaged: parsed below */
	text[len] = '\0';
	snprintf(where, sizeof where, "%s/%s", sh_datadir_path(n->o.datadir), BOOT_FILE);
	if ((rv = state_parse(&n->boot, text, len, where, err)) != 0 || !node_boot_pending(n))
		return rv;
	if (n->boot.set.n_voters != 0 && n->boot.set.n_voters != n->o.bootstrap_expect)
		return sh_err_set(err, SH_EINVAL,
				  "%s holds a founder set of %u while cluster.bootstrap_expect is "
				  "%u: start it with bootstrap_expect = %u",
				  where, n->boot.set.n_voters, n->o.bootstrap_expect,
				  n->boot.set.n_voters);
	/* what was read may be a rename the directory's fsync never made
	 * durable (it failed, or the node died first): make it durable
	 * before it is gossiped, or a power loss could take back a promise
	 * or an accept others acted on */
	return state_write(n, err);
}

/* Durable before it is gossiped. */
static int state_save(struct node *n)
{
	struct sh_err err;

	if (state_write(n, &err) != 0) {
		node_fail(n, &err);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ metadata */

/* Member m's acceptor state, when it gossips one for our B. */
static bool meta_read(struct node *n, const struct swim_member *m, struct ballot_meta *out)
{
	unsigned k;

	if (m->meta_len < META_HEAD || m->meta[0] != META_VERSION ||
	    m->meta[1] != n->o.bootstrap_expect || m->meta[26] > 1 ||
	    ((k = m->meta[27]) != 0 && k != n->o.bootstrap_expect) ||
	    m->meta_len != META_HEAD + 8 * (size_t)k)
		return false;
	memset(out, 0, sizeof *out);
	out->promised =
		(struct boot_ballot){(uint32_t)le32_get(m->meta + 2), le64_get(m->meta + 6)};
	out->accepted =
		(struct boot_ballot){(uint32_t)le32_get(m->meta + 14), le64_get(m->meta + 18)};
	out->decided = m->meta[26] == 1 && k > 0;
	for (unsigned i = 0; i < k; i++)
		out->set.voters[i] = le64_get(m->meta + META_HEAD + 8 * i);
	out->set.n_voters = k;
	return out->promised.round <= BOOT_MAX_ROUND && out->accepted.round <= BOOT_MAX_ROUND &&
	       ballot_zero(out->accepted) == (k == 0) &&
	       ballot_cmp(out->accepted, out->promised) <= 0 && set_valid(&out->set);
}

/* Gossip this node's state (when it changed). */
static void meta_gossip(struct node *n)
{
	const struct node_boot *b = &n->boot;
	uint8_t meta[META_HEAD + 8 * META_MAX_IDS] = {META_VERSION, (uint8_t)n->o.bootstrap_expect};
	size_t len = META_HEAD + 8 * (size_t)b->set.n_voters;
	const struct swim_member *self = node_member(n, n->o.id);
	struct sh_err err;

	le32_put(meta + 2, b->promised.round);
	le64_put(meta + 6, b->promised.id);
	le32_put(meta + 14, b->accepted.round);
	le64_put(meta + 18, b->accepted.id);
	meta[26] = b->decided;
	meta[27] = (uint8_t)b->set.n_voters;
	for (unsigned i = 0; i < b->set.n_voters; i++)
		le64_put(meta + META_HEAD + 8 * i, b->set.voters[i]);
	if (self != NULL && self->meta_len == len && memcmp(self->meta, meta, len) == 0)
		return;
	if (swim_set_meta(n->swim, node_now(), meta, len, &err) != 0)
		LOG_WARN("raft", "cannot gossip the bootstrap state: %s", err.msg);
}

void node_boot_failed(struct node *n)
{
	struct sh_err err;

	/* an acceptor whose storage failed takes no part: stop gossiping its
	 * state, so that the others do not wait for it to propose */
	if (n->swim != NULL && n->o.bootstrap_expect > 0 && raft_conf(n->raft)->n_voters == 0 &&
	    swim_set_meta(n->swim, node_now(), NULL, 0, &err) != 0)
		LOG_WARN("raft", "cannot clear the bootstrap state: %s", err.msg);
}

/* ------------------------------------------------------------ roles */

static bool is_acceptor(struct node *n, const struct swim_member *m)
{
	struct ballot_meta bm;

	/* a suspect is still up, as far as anyone knows: counting it out
	 * would restart the proposer's wait at every brief suspicion */
	return m->self ||
	       ((m->state == SWIM_ALIVE || m->state == SWIM_SUSPECT) && meta_read(n, m, &bm));
}

/* The alive acceptors (this node included): their number, this node's
 * rank among them (0: the smallest id) and the `want` smallest ids. */
static unsigned acceptors(struct node *n, unsigned *rank, uint64_t *ids, unsigned want)
{
	size_t count = swim_member_count(n->swim);
	unsigned k = 0, got = 0;
	uint64_t floor = 0;

	*rank = 0;
	for (size_t i = 0; i < count; i++) {
		const struct swim_member *m = swim_member_at(n->swim, i);

		if (is_acceptor(n, m)) {
			k++;
			*rank += m->id < n->o.id;
		}
	}
	for (; got < want && got < k; got++) { /* selection: want is at most 60 */
		uint64_t next = UINT64_MAX;

		for (size_t i = 0; i < count; i++) {
			const struct swim_member *m = swim_member_at(n->swim, i);

			if (is_acceptor(n, m) && (got == 0 || m->id > floor) && m->id <= next)
				next = m->id;
		}
		ids[got] = floor = next;
	}
	return k;
}

/* Note when any acceptor's state last changed: a ballot is given up only
 * after BOOT_RETRY_MS without a change (gossip may be slow), and a node
 * that is not the smallest proposes only after a longer quiet. */
static void watch_moves(struct node *n, uint64_t now)
{
	uint64_t h = 0xcbf29ce484222325ull;
	struct ballot_meta bm;

	for (size_t i = 0; i < swim_member_count(n->swim); i++) {
		const struct swim_member *m = swim_member_at(n->swim, i);

		if (!meta_read(n, m, &bm))
			continue;
		h = (h ^ m->id ^ bm.promised.id) * 0x100000001b3ull + bm.promised.round;
		h = (h ^ bm.accepted.id) * 0x100000001b3ull + bm.accepted.round;
	}
	if (h != n->boot.seen) {
		n->boot.seen = h;
		n->boot.moved_at = now;
	}
}

/* Acceptor: promise a proposer's higher ballot; accept its request. */
static void accept_step(struct node *n)
{
	struct node_boot *b = &n->boot;
	struct ballot_meta bm;
	bool dirty = false;

	for (size_t i = 0; i < swim_member_count(n->swim); i++) {
		const struct swim_member *m = swim_member_at(n->swim, i);

		if (m->self || m->state != SWIM_ALIVE || !meta_read(n, m, &bm))
			continue;
		if (bm.promised.id == m->id && ballot_cmp(bm.promised, b->promised) > 0) {
			b->promised = bm.promised;
			dirty = true;
		}
		if (bm.accepted.id == m->id && bm.set.n_voters == n->o.bootstrap_expect &&
		    ballot_cmp(bm.accepted, b->promised) >= 0 &&
		    ballot_cmp(bm.accepted, b->accepted) > 0) {
			b->promised = b->accepted = bm.accepted;
			b->set = bm.set;
			dirty = true;
		}
	}
	if (dirty && state_save(n) == 0)
		meta_gossip(n);
}

/* Learner: is the set decided (B acceptors accepted one ballot, or one
 * says it knows)?  Dead members' last metadata counts: an acceptance is
 * a fact once made. */
static bool learn_step(struct node *n)
{
	struct node_boot *b = &n->boot;
	size_t count = swim_member_count(n->swim);
	struct ballot_meta bm, other;

	for (size_t i = 0; i < count && !b->decided; i++) {
		const struct swim_member *m = swim_member_at(n->swim, i);
		unsigned same = 0;

		if (!meta_read(n, m, &bm) || bm.set.n_voters == 0)
			continue;
		for (size_t j = 0; j < count && !bm.decided; j++)
			same += meta_read(n, swim_member_at(n->swim, j), &other) &&
				ballot_cmp(other.accepted, bm.accepted) == 0 &&
				node_boot_hash(&other.set) == node_boot_hash(&bm.set);
		if (bm.decided || same >= n->o.bootstrap_expect) {
			b->decided = true;
			b->accepted = bm.accepted;
			if (ballot_cmp(b->promised, bm.accepted) < 0)
				b->promised = bm.accepted;
			b->set = bm.set;
			if (state_save(n) != 0)
				return false;
			meta_gossip(n);
		}
	}
	return b->decided;
}

/* Proposer, phase 2: once B acceptors promised our ballot, accept it
 * with the set accepted at the highest ballot among them, else with the
 * B smallest alive acceptors. */
static void propose_value(struct node *n, const uint64_t *smallest)
{
	struct node_boot *b = &n->boot;
	struct ballot_meta bm, best = {0};
	unsigned promised = 0;

	for (size_t i = 0; i < swim_member_count(n->swim); i++) {
		const struct swim_member *m = swim_member_at(n->swim, i);

		if (!meta_read(n, m, &bm) || ballot_cmp(bm.promised, b->mine) != 0)
			continue;
		promised++;
		if (bm.set.n_voters == n->o.bootstrap_expect &&
		    ballot_cmp(bm.accepted, best.accepted) > 0)
			best = bm;
	}
	if (promised < n->o.bootstrap_expect)
		return;
	if (ballot_zero(best.accepted)) {
		memset(&best.set, 0, sizeof best.set);
		best.set.n_voters = n->o.bootstrap_expect;
		memcpy(best.set.voters, smallest, best.set.n_voters * sizeof *smallest);
	}
	b->accepted = b->mine;
	b->set = best.set;
	if (state_save(n) == 0)
		meta_gossip(n);
}

static uint32_t max_round(struct node *n)
{
	struct ballot_meta bm;
	uint32_t r = n->boot.promised.round;

	for (size_t i = 0; i < swim_member_count(n->swim); i++)
		if (meta_read(n, swim_member_at(n->swim, i), &bm) && bm.promised.round > r)
			r = bm.promised.round;
	return r;
}

/* Proposer: the smallest alive acceptor, once B were alive for
 * BOOT_STABLE_MS, runs one ballot at a time; the one of rank r steps in
 * after (r + 1) * BOOT_RETRY_MS in which no acceptor's state changed
 * (the smaller ones failed, or do not propose). */
static void propose_step(struct node *n, uint64_t now)
{
	struct node_boot *b = &n->boot;
	uint64_t smallest[RAFT_MAX_NODES];
	unsigned rank, k = acceptors(n, &rank, smallest, n->o.bootstrap_expect);
	uint64_t quiet;

	if (k < n->o.bootstrap_expect) {
		b->since = 0;
		return;
	}
	if (b->since == 0)
		b->since = now;
	if (n->o.bootstrap_expect > 1 && now - b->since < BOOT_STABLE_MS)
		return;
	quiet = now - (b->moved_at > b->since ? b->moved_at : b->since);
	if (rank > 0 && quiet < (uint64_t)(rank + 1) * BOOT_RETRY_MS)
		return;
	if (ballot_zero(b->mine) || (now - b->mine_at >= BOOT_RETRY_MS && quiet >= BOOT_RETRY_MS)) {
		if (max_round(n) >= BOOT_MAX_ROUND)
			return;
		b->mine = (struct boot_ballot){max_round(n) + 1, n->o.id};
		b->mine_at = now;
		b->promised = b->mine;
		if (state_save(n) == 0)
			meta_gossip(n);
		return;
	}
	if (ballot_cmp(b->promised, b->mine) == 0 && ballot_cmp(b->accepted, b->mine) != 0)
		propose_value(n, smallest);
}

/* ------------------------------------------------------------ the node */

bool node_boot_pending(struct node *n)
{
	const struct node_boot *b = &n->boot;

	if (n->o.bootstrap_expect == 0 || raft_conf(n->raft)->n_voters != 0 ||
	    db_last_index(n->o.db) != db_snapshot_index(n->o.db))
		return false;
	if (!b->decided)
		return true; /* a node that knows a cluster id only learns */
	return raft_conf_has_voter(&b->set, n->o.id) &&
	       (n->cluster_id == 0 || n->cluster_id == node_boot_hash(&b->set));
}

/* A founder writes the first entry; the others wait to be added. */
static void found(struct node *n)
{
	uint64_t id = node_boot_hash(&n->boot.set);
	struct sh_err err;

	if (!raft_conf_has_voter(&n->boot.set, n->o.id) ||
	    (n->cluster_id != 0 && n->cluster_id != id)) {
		if (!n->boot.told)
			LOG_INFO("raft",
				 "the %u founders are decided and this node is not among them "
				 "(or already knows another cluster): it joins once added",
				 n->boot.set.n_voters);
		n->boot.told = true;
		return;
	}
	if (node_boot_conf(n, &n->boot.set, &err) != 0) {
		node_fail(n, &err);
		return;
	}
	LOG_INFO("raft", "bootstrapped a cluster of %u voters", n->boot.set.n_voters);
	node_set_cluster_id(n, id);
}

void node_boot_tick(struct node *n, uint64_t now)
{
	if (n->failed)
		return;
	meta_gossip(n);
	watch_moves(n, now);
	if (!n->boot.decided && n->cluster_id == 0) {
		accept_step(n);
		if (!n->failed)
			propose_step(n, now);
	}
	if (!n->failed && learn_step(n))
		found(n);
}
