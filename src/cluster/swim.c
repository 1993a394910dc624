/*
 * swim: the member table and the rules that change it (SWIM section 4.2,
 * "suspicion mechanism"; memberlist's aliveNode/suspectNode/deadNode), the
 * Lifeguard dynamic suspicion timeout, and the entry points of swim.h.
 * Probing lives in swim_probe.c, dissemination and push-pull in
 * swim_gossip.c.
 *
 * Invariants: the table holds this node exactly once (self, always ALIVE
 * unless leaving); a member's incarnation never decreases; an update about
 * a member is applied only when it is newer by the rules below, so every
 * node converges on the same (state, incarnation) per member.
 *
 * Single-threaded; see swim.h.
 */
#include "build.h"

#include "cluster/swim_int.h"

#include "util/alloc.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define REAP_CHECK_MS 60000

void swim_config_default(struct swim_config *c)
{
	/* memberlist DefaultLANConfig (config.go), plus our rejoin interval. */
	*c = (struct swim_config){
		.probe_interval_ms = 1000,
		.probe_timeout_ms = 500,
		.indirect_checks = 3,
		.suspicion_mult = 4,
		.suspicion_max_timeout_mult = 6,
		.gossip_interval_ms = 200,
		.gossip_nodes = 3,
		.retransmit_mult = 4,
		.push_pull_interval_ms = 30000,
		.awareness_max_multiplier = 8,
		.udp_mtu = 1400,
		.rejoin_interval_ms = 60000,
		.gossip_to_dead_ms = 30000,
		.dead_reap_ms = 24 * 3600 * 1000,
	};
}

int swim_config_check(const struct swim_config *c, struct sh_err *err)
{
	if (c->probe_interval_ms == 0 || c->probe_timeout_ms == 0 ||
	    c->probe_timeout_ms >= c->probe_interval_ms)
		return sh_err_set(err, SH_EINVAL,
				  "probe_timeout_ms (%u) must be positive and below "
				  "probe_interval_ms (%u)",
				  c->probe_timeout_ms, c->probe_interval_ms);
	if (c->suspicion_mult == 0 || c->suspicion_max_timeout_mult == 0 ||
	    c->gossip_interval_ms == 0 || c->gossip_nodes == 0 || c->retransmit_mult == 0 ||
	    c->awareness_max_multiplier == 0)
		return sh_err_set(err, SH_EINVAL, "a membership multiplier or interval is 0");
	if (c->udp_mtu < 1200 || c->udp_mtu > SWIM_UDP_MAX)
		return sh_err_set(err, SH_ERANGE, "udp_mtu %u is outside 1200..%u", c->udp_mtu,
				  SWIM_UDP_MAX);
	if (c->indirect_checks > 16 || c->gossip_nodes > 64)
		return sh_err_set(err, SH_ERANGE, "indirect_checks or gossip_nodes too large");
	return 0;
}

/* ------------------------------------------------------------------ helpers */

uint64_t swim_rand(struct swim *s, uint64_t bound)
{
	return bound == 0 ? 0 : s->io.random(s->io.data) % bound;
}

struct member *swim_find(const struct swim *s, uint64_t id)
{
	for (size_t i = 0; i < s->n_members; i++)
		if (s->members[i]->pub.id == id)
			return s->members[i];
	return NULL;
}

void swim_emit(struct swim *s, enum swim_event_type t, struct member *m, uint64_t from)
{
	struct swim_event ev = {.type = t, .member = m ? &m->pub : NULL, .from = from};

	if (s->io.event != NULL)
		s->io.event(s->io.data, &ev);
}

void swim_member_rec(const struct member *m, struct swim_member_rec *r)
{
	*r = (struct swim_member_rec){.id = m->pub.id,
				      .name = m->name,
				      .incarnation = m->pub.incarnation,
				      .state = m->pub.state,
				      .meta = m->meta,
				      .meta_len = m->pub.meta_len};
	for (int i = 0; i < SWIM_N_ADDRS; i++)
		r->addr[i] = m->addr[i];
}

static bool same_content(const struct member *m, const struct swim_member_rec *r)
{
	for (int i = 0; i < SWIM_N_ADDRS; i++)
		if (strcmp(m->addr[i], r->addr[i]) != 0)
			return false;
	return strcmp(m->name, r->name) == 0 && m->pub.meta_len == r->meta_len &&
	       (r->meta_len == 0 || memcmp(m->meta, r->meta, r->meta_len) == 0);
}

/* Copy the announced fields of r into m; on allocation failure m keeps its
 * old strings. */
static int set_content(struct member *m, const struct swim_member_rec *r)
{
	char *name = sh_strdup(r->name), *addr[SWIM_N_ADDRS] = {NULL};
	int ok = name != NULL;

	for (int i = 0; i < SWIM_N_ADDRS; i++)
		ok = ok && (addr[i] = sh_strdup(r->addr[i])) != NULL;
	if (!ok) {
		sh_free(name);
		for (int i = 0; i < SWIM_N_ADDRS; i++)
			sh_free(addr[i]);
		return SH_ENOMEM;
	}
	sh_free(m->name);
	m->name = name;
	m->pub.name = name;
	for (int i = 0; i < SWIM_N_ADDRS; i++) {
		sh_free(m->addr[i]);
		m->addr[i] = addr[i];
		m->pub.addr[i] = addr[i];
	}
	if (r->meta_len > 0)
		memcpy(m->meta, r->meta, r->meta_len);
	m->pub.meta = m->meta;
	m->pub.meta_len = r->meta_len;
	m->pub.incarnation = r->incarnation;
	return 0;
}

static void member_free(struct member *m)
{
	if (m == NULL)
		return;
	sh_free(m->name);
	for (int i = 0; i < SWIM_N_ADDRS; i++)
		sh_free(m->addr[i]);
	sh_free(m);
}

static struct member *member_add(struct swim *s, uint64_t now, const struct swim_member_rec *r)
{
	struct member *m;

	if (s->n_members == s->cap_members) {
		size_t cap = s->cap_members ? 2 * s->cap_members : 16;
		struct member **grown = sh_reallocarray(s->members, cap, sizeof *grown);

		if (grown == NULL)
			return NULL;
		s->members = grown;
		s->cap_members = cap;
	}
	if ((m = sh_calloc(1, sizeof *m)) == NULL)
		return NULL;
	m->pub.id = r->id;
	if (set_content(m, r) != 0) {
		sh_free(m);
		return NULL;
	}
	m->pub.state = SWIM_ALIVE;
	m->pub.state_since = now;
	s->members[s->n_members++] = m;
	return m;
}

size_t swim_live_count(const struct swim *s)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n_members; i++)
		n += s->members[i]->pub.state <= SWIM_SUSPECT;
	return n;
}

bool swim_addr_is_live(const struct swim *s, const char *addr)
{
	for (size_t i = 0; i < s->n_members; i++) {
		const struct member *m = s->members[i];

		if (m->pub.state <= SWIM_SUSPECT && strcmp(m->addr[SWIM_ADDR_CLUSTER], addr) == 0)
			return true;
	}
	return false;
}

/* Up to k distinct random members other than self and exclude: ALIVE ones,
 * or (for gossip) ALIVE, SUSPECT and those DEAD for less than
 * gossip_to_dead_ms, so that a node wrongly declared dead hears it and
 * refutes.  Reservoir sampling keeps it one pass. */
size_t swim_random_members(struct swim *s, uint64_t now, uint64_t exclude, bool alive_only,
			   struct member **out, size_t k)
{
	size_t seen = 0;

	for (size_t i = 0; i < s->n_members; i++) {
		struct member *m = s->members[i];
		enum swim_state st = m->pub.state;

		if (m == s->self || m->pub.id == exclude)
			continue;
		if (alive_only ? st != SWIM_ALIVE
			       : !(st <= SWIM_SUSPECT ||
				   (st == SWIM_DEAD &&
				    now - m->pub.state_since < s->cfg.gossip_to_dead_ms)))
			continue;
		if (seen < k) {
			out[seen] = m;
		} else {
			uint64_t j = swim_rand(s, seen + 1);

			if (j < k)
				out[j] = m;
		}
		seen++;
	}
	if (seen > k)
		seen = k;
	/* Reservoir sampling leaves the early candidates in the early slots;
	 * callers may use only the first few, so shuffle. */
	for (size_t i = seen; i > 1; i--) {
		size_t j = swim_rand(s, i);
		struct member *t = out[i - 1];

		out[i - 1] = out[j];
		out[j] = t;
	}
	return seen;
}

void swim_awareness_delta(struct swim *s, int delta)
{
	int max = (int)s->cfg.awareness_max_multiplier - 1;

	s->awareness += delta;
	if (s->awareness < 0)
		s->awareness = 0;
	if (s->awareness > max)
		s->awareness = max;
}

/* ------------------------------------------------------------------ suspicion */

/* Lifeguard's dynamic suspicion: the timeout starts at max and falls
 * logarithmically to min as independent confirmations arrive (Dadgar et al.
 * 2018, section IV-B; memberlist suspicion.go).  min scales with log10 of
 * the cluster size, since gossip needs that many rounds to reach everyone. */
void swim_suspicion_bounds(const struct swim *s, size_t n, uint64_t *min, uint64_t *max)
{
	double scale = fmax(1.0, log10(fmax(1.0, (double)n)));

	*min = (uint64_t)((double)s->cfg.suspicion_mult * scale * s->cfg.probe_interval_ms);
	*max = *min * s->cfg.suspicion_max_timeout_mult;
}

static uint64_t suspicion_timeout(const struct member *m)
{
	double frac, raw;

	if (m->susp_k == 0)
		return m->susp_min;
	frac = log((double)m->n_confirm + 1.0) / log((double)m->susp_k + 1.0);
	raw = (double)m->susp_max - frac * (double)(m->susp_max - m->susp_min);
	return raw < (double)m->susp_min ? m->susp_min : (uint64_t)raw;
}

static void suspicion_start(struct swim *s, struct member *m, uint64_t now, uint64_t from)
{
	size_t n = swim_live_count(s);

	swim_suspicion_bounds(s, n, &m->susp_min, &m->susp_max);
	/* Confirmations expected: suspicion_mult - 2, none when too few
	 * members could send them (n minus us and the suspect). */
	m->susp_k = s->cfg.suspicion_mult > 2 ? s->cfg.suspicion_mult - 2 : 0;
	if (n < 2 || n - 2 < m->susp_k)
		m->susp_k = 0;
	m->susp_start = now;
	m->n_confirm = 0;
	m->confirm[0] = from;
	m->susp_deadline = now + suspicion_timeout(m);
}

/* A confirmation counts once per distinct member other than the first
 * suspector, up to k. */
static bool suspicion_confirm(struct member *m, uint64_t from)
{
	if (m->n_confirm >= m->susp_k || m->n_confirm + 1 >= SWIM_MAX_CONFIRM)
		return false;
	for (uint32_t i = 0; i <= m->n_confirm; i++)
		if (m->confirm[i] == from)
			return false;
	m->confirm[++m->n_confirm] = from;
	m->susp_deadline = m->susp_start + suspicion_timeout(m);
	return true;
}

/* ------------------------------------------------------------------ state rules */

void swim_refute(struct swim *s, uint64_t now, uint64_t inc)
{
	struct member *self = s->self;

	self->pub.incarnation = (inc > self->pub.incarnation ? inc : self->pub.incarnation) + 1;
	s->stats.refutations++;
	/* Having to refute hints that this node is the slow one (Lifeguard
	 * section IV-A). */
	swim_awareness_delta(s, 1);
	swim_queue_member(s, self, SWIM_ALIVE, 0);
	if (now >= s->next_tell_all) { /* at most once a probe interval: accusations
					* are unauthenticated without a keyring */
		s->next_tell_all = now + s->cfg.probe_interval_ms;
		swim_tell_alive_all(s);
	}
	swim_emit(s, SWIM_EV_REFUTED, self, 0);
}

static void set_state(struct member *m, enum swim_state st, uint64_t now)
{
	if (m->pub.state != st)
		m->pub.state_since = now;
	m->pub.state = st;
}

/* A node elsewhere announces our id: a copied data dir, a cloned machine —
 * or a record of this very node at the address it had before a restart,
 * not yet found dead.  Refuting at once would start an incarnation war
 * with a copy (and make the others take our address for its); ignoring
 * it would leave a restarted node unreachable.  So ask: a ping to that
 * address for our id.  An ack means a node there answers to our id: say
 * so (once per address; the driver decides who stops).  No ack within
 * probe_timeout_ms: the record is stale, refute it.  Who is the copy: the
 * node that got the other's record from the others (a member's answer to
 * its join, gossip) — the cluster knows the other one; the node that got
 * it from the other node itself (its own announcement) was there first. */
static void conflict(struct swim *s, uint64_t now, const struct swim_member_rec *r)
{
	const char *addr = r->addr[SWIM_ADDR_CLUSTER];
	struct conflict_check *c = &s->check;
	struct swim_msg m = {.type = SWIM_PING, .target = s->self->pub.id};

	if (strcmp(s->conflict_addr, addr) == 0 || (c->active && strcmp(c->addr, addr) == 0))
		return;
	if (c->active && r->incarnation <= c->incarnation)
		return; /* one check at a time */
	*c = (struct conflict_check){.active = true,
				     .seq = ++s->seq,
				     .deadline = now + s->cfg.probe_timeout_ms,
				     .incarnation = r->incarnation,
				     .other_known = !s->from_copy};
	snprintf(c->addr, sizeof c->addr, "%s", addr);
	m.seq = c->seq;
	swim_send_msgs(s, addr, 0, &m, 1);
}

bool swim_conflict_ack(struct swim *s, uint32_t seq)
{
	struct swim_event ev = {.type = SWIM_EV_CONFLICT, .other_known = s->check.other_known};

	if (!s->check.active || seq != s->check.seq)
		return false;
	s->check.active = false;
	snprintf(s->conflict_addr, sizeof s->conflict_addr, "%s", s->check.addr);
	ev.addr = s->conflict_addr;
	if (s->io.event != NULL)
		s->io.event(s->io.data, &ev);
	return true;
}

static void conflict_tick(struct swim *s, uint64_t now)
{
	if (!s->check.active || now < s->check.deadline)
		return;
	s->check.active = false;
	if (!s->leaving)
		swim_refute(s, now, s->check.incarnation);
}

/* While our id is in question this node does not refute: its record
 * would replace the other's.  (Once the other is known to answer, the
 * driver stops one of the two; the one that stays goes on as before.) */
static bool id_disputed(const struct swim *s)
{
	return s->check.active;
}

static void alive_about_self(struct swim *s, uint64_t now, const struct swim_member_rec *r)
{
	if (strcmp(r->addr[SWIM_ADDR_CLUSTER], s->self->addr[SWIM_ADDR_CLUSTER]) != 0)
		return conflict(s, now, r);
	if (s->leaving || r->incarnation < s->self->pub.incarnation || id_disputed(s))
		return;
	if (r->incarnation == s->self->pub.incarnation && same_content(s->self, r))
		return;
	swim_refute(s, now, r->incarnation);
}

/* Another address announces the id of member m, alive here at its own:
 * ignored (the incarnation rule keeps m's), and reported once per
 * (member, address), so that the cluster's logs show a copy that tries
 * to join. */
static void other_conflict(struct swim *s, struct member *m, const struct swim_member_rec *r)
{
	const char *addr = r->addr[SWIM_ADDR_CLUSTER];
	struct swim_event ev = {.type = SWIM_EV_CONFLICT, .member = &m->pub, .addr = addr};

	if (m->pub.state > SWIM_SUSPECT || strcmp(addr, m->addr[SWIM_ADDR_CLUSTER]) == 0 ||
	    (s->other_conflict_id == m->pub.id && strcmp(s->other_conflict_addr, addr) == 0))
		return;
	s->other_conflict_id = m->pub.id;
	snprintf(s->other_conflict_addr, sizeof s->other_conflict_addr, "%s", addr);
	if (s->io.event != NULL)
		s->io.event(s->io.data, &ev);
}

/* Someone suspects this node or declares it dead: refute with a higher
 * incarnation (SWIM section 4.2).  When the accusation is older than our
 * incarnation we already refuted it, but the sender missed the refutation:
 * announce it again, so that it rides on our reply to that sender. */
static void about_self(struct swim *s, uint64_t now, uint64_t inc)
{
	if (s->leaving || id_disputed(s))
		return;
	if (inc >= s->self->pub.incarnation)
		swim_refute(s, now, inc);
	else if (!swim_bcast_pending_for(s, s->self->pub.id))
		swim_queue_member(s, s->self, SWIM_ALIVE, 0);
	s->accused = true; /* recv_packet answers the sender at once */
}

/* An alive message wins over any state of a lower incarnation (SWIM
 * section 4.2). */
void swim_on_alive(struct swim *s, uint64_t now, const struct swim_member_rec *r)
{
	struct member *m = swim_find(s, r->id);
	enum swim_state old;
	bool changed;

	if (m == s->self && m != NULL)
		return alive_about_self(s, now, r);
	if (m == NULL) {
		if ((m = member_add(s, now, r)) == NULL)
			return;
		swim_order_add(s, m->pub.id);
		swim_queue_member(s, m, SWIM_ALIVE, 0);
		swim_emit(s, SWIM_EV_JOINED, m, 0);
		return;
	}
	if (r->incarnation <= m->pub.incarnation)
		return other_conflict(s, m, r);
	old = m->pub.state;
	changed = !same_content(m, r);
	if (set_content(m, r) != 0)
		return;
	set_state(m, SWIM_ALIVE, now);
	swim_queue_member(s, m, SWIM_ALIVE, 0);
	if (old >= SWIM_DEAD)
		swim_emit(s, SWIM_EV_JOINED, m, 0);
	else if (old == SWIM_SUSPECT)
		swim_emit(s, SWIM_EV_ALIVE, m, 0);
	if (changed && old != SWIM_DEAD && old != SWIM_LEFT)
		swim_emit(s, SWIM_EV_UPDATED, m, 0);
}

void swim_on_suspect(struct swim *s, uint64_t now, uint64_t id, uint64_t inc, uint64_t from)
{
	struct member *m = swim_find(s, id);

	if (m == s->self && m != NULL)
		return about_self(s, now, inc);
	if (m == NULL || inc < m->pub.incarnation)
		return;
	if (m->pub.state == SWIM_SUSPECT) {
		/* Re-gossip a new confirmation so others can count it too. */
		if (suspicion_confirm(m, from))
			swim_queue_member(s, m, SWIM_SUSPECT, from);
		return;
	}
	if (m->pub.state != SWIM_ALIVE)
		return;
	m->pub.incarnation = inc;
	set_state(m, SWIM_SUSPECT, now);
	suspicion_start(s, m, now, from);
	if (from == s->self->pub.id)
		s->stats.suspicions++;
	swim_queue_member(s, m, SWIM_SUSPECT, from);
	swim_emit(s, SWIM_EV_SUSPECT, m, from);
}

/* A dead message sent by the member itself means it left. */
void swim_on_dead(struct swim *s, uint64_t now, uint64_t id, uint64_t inc, uint64_t from)
{
	struct member *m = swim_find(s, id);
	bool left = from == id;

	if (m == s->self && m != NULL)
		return about_self(s, now, inc);
	if (m == NULL || inc < m->pub.incarnation)
		return;
	if (m->pub.state == SWIM_DEAD || m->pub.state == SWIM_LEFT)
		return;
	m->pub.incarnation = inc;
	set_state(m, left ? SWIM_LEFT : SWIM_DEAD, now);
	swim_queue_member(s, m, left ? SWIM_LEFT : SWIM_DEAD, from);
	swim_emit(s, left ? SWIM_EV_LEFT : SWIM_EV_DEAD, m, from);
}

static void apply_update(struct swim *s, uint64_t now, const struct swim_update *u)
{
	switch (u->state) {
	case SWIM_ALIVE: swim_on_alive(s, now, &u->member); break;
	case SWIM_SUSPECT: swim_on_suspect(s, now, u->id, u->incarnation, u->from); break;
	case SWIM_DEAD: swim_on_dead(s, now, u->id, u->incarnation, u->from); break;
	case SWIM_LEFT: swim_on_dead(s, now, u->id, u->incarnation, u->id); break;
	}
}

/* ------------------------------------------------------------------ lifecycle */

int swim_new(const struct swim_config *cfg, const struct swim_self *self, const struct swim_io *io,
	     uint64_t now, struct swim **out, struct sh_err *err)
{
	struct swim *s;
	struct swim_member_rec r = {
		.id = self->id, .name = self->name, .incarnation = self->incarnation};
	int rv;

	if ((rv = swim_config_check(cfg, err)) != 0)
		return sh_err_wrap(err, rv, "swim");
	if (self->id == 0 || self->addr[SWIM_ADDR_CLUSTER] == NULL ||
	    self->addr[SWIM_ADDR_CLUSTER][0] == '\0' || strlen(self->name) > SWIM_NAME_MAX)
		return sh_err_set(err, SH_EINVAL,
				  "swim: a node needs an id, a name and an address");
	for (int i = 0; i < SWIM_N_ADDRS; i++) {
		r.addr[i] = self->addr[i] ? self->addr[i] : "";
		if (strlen(r.addr[i]) > SWIM_ADDR_MAX)
			return sh_err_set(err, SH_EINVAL, "swim: address '%s' too long", r.addr[i]);
	}
	if ((s = sh_calloc(1, sizeof *s)) == NULL)
		return sh_err_set(err, SH_ENOMEM, "swim: out of memory");
	s->cfg = *cfg;
	s->io = *io;
	s->cluster_id = self->cluster_id;
	if ((s->pkt = sh_malloc(cfg->udp_mtu)) == NULL ||
	    (s->self = member_add(s, now, &r)) == NULL) {
		swim_free(s);
		return sh_err_set(err, SH_ENOMEM, "swim: out of memory");
	}
	s->self->pub.self = true;
	/* Announce ourselves, as memberlist's setAlive does: whoever we meet
	 * first spreads the news. */
	swim_queue_member(s, s->self, SWIM_ALIVE, 0);
	/* Stagger the periodic work so that nodes started together do not
	 * probe and push-pull in lockstep. */
	s->next_probe = now + swim_rand(s, cfg->probe_interval_ms);
	s->next_gossip = now + cfg->gossip_interval_ms;
	s->next_push_pull = cfg->push_pull_interval_ms
				    ? now + cfg->push_pull_interval_ms +
					      swim_rand(s, cfg->push_pull_interval_ms)
				    : SWIM_NEVER;
	s->next_rejoin = SWIM_NEVER;
	s->next_reap = now + REAP_CHECK_MS;
	*out = s;
	return 0;
}

void swim_free(struct swim *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n_members; i++)
		member_free(s->members[i]);
	sh_free(s->members);
	sh_free(s->order);
	sh_free(s->pkt);
	swim_bcast_free_all(s);
	for (size_t i = 0; i < s->n_seeds; i++)
		sh_free(s->seeds[i]);
	sh_free(s);
}

/* ------------------------------------------------------------------ inputs */

static bool cluster_ok(struct swim *s, uint64_t theirs, const char *addr)
{
	struct swim_event ev = {.type = SWIM_EV_REFUSED, .addr = addr, .cluster_id = theirs};

	if (theirs == 0 || s->cluster_id == 0 || theirs == s->cluster_id)
		return true;
	s->stats.refused++;
	if (s->io.event != NULL)
		s->io.event(s->io.data, &ev);
	return false;
}

/* A member we do not know talks to us: its announcement missed us (gossip
 * reaches each member only with high probability).  Rather than wait for the
 * periodic push-pull, exchange state with it now; at most once per probe
 * interval, so that a stream of strangers cannot make us flood. */
static void unknown_sender(struct swim *s, uint64_t now, const char *addr)
{
	if (now < s->next_stranger_pp)
		return;
	s->next_stranger_pp = now + s->cfg.probe_interval_ms;
	s->stats.push_pulls++;
	swim_send_pushpull(s, addr, false, false);
}

/* The sender's member record, its last_heard updated; NULL if unknown. */
static struct member *heard_from(struct swim *s, uint64_t now, uint64_t id)
{
	struct member *m = swim_find(s, id);

	if (m != NULL)
		m->pub.last_heard = now;
	return m;
}

static void recv_packet(struct swim *s, uint64_t now, const char *addr, const uint8_t *buf,
			size_t len)
{
	struct swim_packet p;
	struct member *from;

	s->stats.udp_recv++;
	s->stats.udp_bytes_recv += len;
	if (swim_wire_decode_packet(buf, len, &p, NULL) != 0) {
		s->stats.decode_errors++;
		return;
	}
	if (!cluster_ok(s, p.cluster_id, addr) || s->leaving)
		goto out;
	if ((from = heard_from(s, now, p.sender)) == NULL)
		unknown_sender(s, now, addr);
	/* Updates first, so that a refutation they cause rides on our reply. */
	s->from_copy = p.sender == s->self->pub.id;
	s->accused = false;
	for (size_t i = 0; i < p.n_updates; i++)
		apply_update(s, now, &p.updates[i]);
	s->from_copy = false;
	for (size_t i = 0; i < p.n_msgs; i++)
		swim_probe_recv(s, now, addr, p.sender, &p.msgs[i]);
	/* The sender holds this node suspect or dead: tell it our alive record
	 * straight away (at the address it gives, whatever the datagram's
	 * source: NAT, a v4-mapped address) rather than hope gossip reaches it
	 * before its suspicion times out. */
	if (s->accused && from != NULL && from != s->self)
		swim_tell_alive(s, from->addr[SWIM_ADDR_CLUSTER]);
	s->accused = false;
out:
	swim_wire_packet_free(&p);
}

/* A push-pull request of another cluster (a node given our seeds by
 * mistake) gets a refusal, at most one per probe interval, so that it can
 * say in its log why nobody answers it. */
static void refuse_stream(struct swim *s, uint64_t now, const struct swim_pushpull *pp)
{
	if (pp->reply || now < s->next_refusal || pp->sender_addr == NULL ||
	    pp->sender_addr[0] == '\0')
		return;
	s->next_refusal = now + s->cfg.probe_interval_ms;
	swim_send_refusal(s, pp->sender_addr);
}

static void recv_stream(struct swim *s, uint64_t now, const char *addr, const uint8_t *buf,
			size_t len)
{
	struct swim_pushpull pp;

	s->stats.tcp_recv++;
	s->stats.tcp_bytes_recv += len;
	if (swim_wire_decode_pushpull(buf, len, &pp, NULL) != 0) {
		s->stats.decode_errors++;
		return;
	}
	/* name the node by the address it gives (the stream's own is an
	 * ephemeral port): untrusted, but only for the log */
	if (!cluster_ok(s, pp.cluster_id,
			pp.sender_addr != NULL && pp.sender_addr[0] ? pp.sender_addr : addr)) {
		refuse_stream(s, now, &pp);
	} else if (!s->leaving) {
		heard_from(s, now, pp.sender);
		/* an answer to our join (or sync) is the others' view, whoever
		 * sends it; a request from our id is that node's own */
		s->from_copy = pp.sender == s->self->pub.id && !pp.reply;
		swim_recv_pushpull(s, now, &pp);
		s->from_copy = false;
		s->accused = false; /* a merge answers with our state already */
	}
	swim_wire_pushpull_free(&pp);
}

void swim_recv(struct swim *s, uint64_t now, enum swim_transport t, const char *addr,
	       const uint8_t *buf, size_t len)
{
	if (t == SWIM_UDP)
		recv_packet(s, now, addr, buf, len);
	else
		recv_stream(s, now, addr, buf, len);
}

/* Forget members dead or left for longer than dead_reap_ms. */
static void reap(struct swim *s, uint64_t now)
{
	for (size_t i = 0; i < s->n_members;) {
		struct member *m = s->members[i];

		if (m->pub.state >= SWIM_DEAD && now - m->pub.state_since >= s->cfg.dead_reap_ms) {
			member_free(m);
			s->members[i] = s->members[--s->n_members];
			continue;
		}
		i++;
	}
	s->next_reap = now + REAP_CHECK_MS;
}

static void suspicion_tick(struct swim *s, uint64_t now)
{
	for (size_t i = 0; i < s->n_members; i++) {
		struct member *m = s->members[i];

		if (m->pub.state == SWIM_SUSPECT && now >= m->susp_deadline)
			swim_on_dead(s, now, m->pub.id, m->pub.incarnation, s->self->pub.id);
	}
}

void swim_tick(struct swim *s, uint64_t now)
{
	if (!s->leaving) {
		suspicion_tick(s, now);
		swim_probe_tick(s, now);
	}
	conflict_tick(s, now);
	swim_gossip_tick(s, now);
	if (now >= s->next_reap)
		reap(s, now);
}

uint64_t swim_next_deadline(const struct swim *s)
{
	uint64_t t = swim_gossip_deadline(s);

	if (s->next_reap < t)
		t = s->next_reap;
	if (s->leaving)
		return t;
	for (size_t i = 0; i < s->n_members; i++) {
		const struct member *m = s->members[i];

		if (m->pub.state == SWIM_SUSPECT && m->susp_deadline < t)
			t = m->susp_deadline;
	}
	if (swim_probe_deadline(s) < t)
		t = swim_probe_deadline(s);
	if (s->check.active && s->check.deadline < t)
		t = s->check.deadline;
	return t;
}

/* ------------------------------------------------------------------ local requests */

void swim_leave(struct swim *s, uint64_t now)
{
	if (s->leaving)
		return;
	s->leaving = true;
	s->probe.active = false;
	set_state(s->self, SWIM_LEFT, now);
	swim_leave_broadcast(s);
}

bool swim_leave_pending(const struct swim *s)
{
	return s->leaving && swim_live_count(s) > 0 && swim_bcast_pending_for(s, s->self->pub.id);
}

int swim_set_meta(struct swim *s, uint64_t now, const void *meta, size_t len, struct sh_err *err)
{
	if (len > SWIM_META_MAX)
		return sh_err_set(err, SH_ETOOBIG, "swim: metadata of %zu bytes, more than %d", len,
				  SWIM_META_MAX);
	if (len > 0)
		memcpy(s->self->meta, meta, len);
	s->self->pub.meta_len = len;
	s->self->pub.incarnation++;
	if (!s->leaving)
		swim_queue_member(s, s->self, SWIM_ALIVE, 0);
	return 0;
}

void swim_set_cluster_id(struct swim *s, uint64_t cluster_id)
{
	s->cluster_id = cluster_id;
}

uint64_t swim_cluster_id(const struct swim *s)
{
	return s->cluster_id;
}

/* ------------------------------------------------------------------ queries */

size_t swim_member_count(const struct swim *s)
{
	return s->n_members;
}

const struct swim_member *swim_member_at(const struct swim *s, size_t i)
{
	return i < s->n_members ? &s->members[i]->pub : NULL;
}

const struct swim_member *swim_member_find(const struct swim *s, uint64_t id)
{
	const struct member *m = swim_find(s, id);

	return m ? &m->pub : NULL;
}

const struct swim_member *swim_self_member(const struct swim *s)
{
	return &s->self->pub;
}

int swim_health_score(const struct swim *s)
{
	return s->awareness;
}

void swim_get_stats(const struct swim *s, struct swim_stats *st)
{
	*st = s->stats;
}

const char *swim_event_name(enum swim_event_type t)
{
	static const char *const names[] = {
		[SWIM_EV_JOINED] = "joined",   [SWIM_EV_SUSPECT] = "suspect",
		[SWIM_EV_ALIVE] = "alive",     [SWIM_EV_DEAD] = "dead",
		[SWIM_EV_LEFT] = "left",       [SWIM_EV_UPDATED] = "updated",
		[SWIM_EV_REFUTED] = "refuted", [SWIM_EV_CLUSTER_ID] = "cluster-id",
		[SWIM_EV_REFUSED] = "refused", [SWIM_EV_CONFLICT] = "conflict",
	};
	return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}
