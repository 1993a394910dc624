/*
 * swim_gossip: dissemination (SWIM section 4.1), push-pull anti-entropy,
 * join and periodic re-join of the seeds, graceful leave.
 *
 * Every update this node learns or makes is queued once (a newer update
 * about the same member replaces the older one) and piggybacked on every
 * datagram it sends — pings, acks, ping-reqs, nacks — and on gossip-only
 * datagrams sent to gossip_nodes random members every gossip_interval_ms,
 * until it has gone out retransmit_mult * ceil(log10(n + 1)) times
 * (memberlist's TransmitLimitedQueue: fewest transmissions first, newest
 * first among equals).  Datagrams never exceed udp_mtu.
 *
 * Push-pull: every push_pull_interval_ms (stretched above 32 members, as
 * memberlist's pushPullScale does) the full state goes over TCP to one
 * random member, which merges it and answers with its own.  A remote DEAD
 * or SUSPECT is merged as a suspicion, so that a node that was wrongly
 * declared dead hears of it and refutes rather than being buried.
 *
 * Seeds: joined at swim_join() and then, every rejoin_interval_ms, each
 * seed whose address is not a live member is joined again; this is what
 * merges two sides that declared each other dead during a long partition.
 * While this node knows nobody, it retries with a backoff from
 * probe_interval_ms up to rejoin_interval_ms.
 */
#include "build.h"

#include "cluster/swim_int.h"

#include "util/alloc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ queue */

void swim_bcast_free_all(struct swim *s)
{
	for (size_t i = 0; i < s->n_bcasts; i++)
		sh_free(s->bcasts[i]);
	sh_free(s->bcasts);
	s->bcasts = NULL;
	s->n_bcasts = s->cap_bcasts = 0;
}

bool swim_bcast_pending_for(const struct swim *s, uint64_t id)
{
	for (size_t i = 0; i < s->n_bcasts; i++)
		if (s->bcasts[i]->id == id)
			return true;
	return false;
}

static void bcast_remove(struct swim *s, size_t i)
{
	sh_free(s->bcasts[i]);
	memmove(&s->bcasts[i], &s->bcasts[i + 1], (s->n_bcasts - i - 1) * sizeof *s->bcasts);
	s->n_bcasts--;
}

void swim_queue_update(struct swim *s, const struct swim_update *u)
{
	uint8_t enc[SWIM_UPDATE_MAX_ENC];
	size_t len = swim_wire_encode_update(u, enc, sizeof enc);
	struct bcast *b;

	if (len == 0)
		return;
	for (size_t i = 0; i < s->n_bcasts; i++)
		if (s->bcasts[i]->id == u->id) {
			bcast_remove(s, i);
			break;
		}
	if (s->n_bcasts == s->cap_bcasts) {
		size_t cap = s->cap_bcasts ? 2 * s->cap_bcasts : 16;
		struct bcast **grown = sh_reallocarray(s->bcasts, cap, sizeof *grown);

		if (grown == NULL)
			return;
		s->bcasts = grown;
		s->cap_bcasts = cap;
	}
	if ((b = sh_malloc(sizeof *b + len)) == NULL)
		return;
	*b = (struct bcast){.id = u->id, .order = ++s->bcast_order, .len = (uint32_t)len};
	memcpy(b->enc, enc, len);
	s->bcasts[s->n_bcasts++] = b;
}

void swim_queue_member(struct swim *s, const struct member *m, enum swim_state st, uint64_t from)
{
	struct swim_update u = {
		.state = st, .id = m->pub.id, .incarnation = m->pub.incarnation, .from = from};

	if (st == SWIM_ALIVE)
		swim_member_rec(m, &u.member);
	swim_queue_update(s, &u);
}

static int bcast_cmp(const void *a, const void *b)
{
	const struct bcast *x = *(const struct bcast *const *)a;
	const struct bcast *y = *(const struct bcast *const *)b;

	if (x->transmits != y->transmits)
		return x->transmits < y->transmits ? -1 : 1;
	return x->order > y->order ? -1 : x->order < y->order;
}

static uint32_t retransmit_limit(const struct swim *s)
{
	double n = (double)swim_live_count(s);

	return s->cfg.retransmit_mult * (uint32_t)ceil(log10(n + 1.0));
}

/* Add as many queued updates as fit; drop those sent often enough. */
static void piggyback(struct swim *s, struct swim_wire_pkt *b)
{
	uint32_t limit = retransmit_limit(s);

	if (s->n_bcasts == 0)
		return;
	qsort(s->bcasts, s->n_bcasts, sizeof *s->bcasts, bcast_cmp);
	for (size_t i = 0; i < s->n_bcasts; i++)
		if (swim_wire_pkt_add_update(b, s->bcasts[i]->enc, s->bcasts[i]->len) == 0)
			s->bcasts[i]->transmits++;
	for (size_t i = 0; i < s->n_bcasts;)
		if (s->bcasts[i]->transmits >= limit)
			bcast_remove(s, i);
		else
			i++;
}

/* ------------------------------------------------------------------ datagrams */

static void send_pkt(struct swim *s, const char *addr, const struct swim_wire_pkt *b)
{
	s->stats.udp_sent++;
	s->stats.udp_bytes_sent += b->len;
	s->io.send(s->io.data, SWIM_UDP, addr, b->buf, b->len);
}

/* Send msgs to addr with piggybacked updates.  When the recipient `to` is
 * one we hold suspect or dead, tell it first (memberlist does this for a
 * suspect's ping): it is the one that can refute. */
void swim_send_msgs(struct swim *s, const char *addr, uint64_t to, const struct swim_msg *msgs,
		    size_t n)
{
	struct swim_wire_pkt b;
	struct member *m = to ? swim_find(s, to) : NULL;

	swim_wire_pkt_init(&b, s->pkt, s->cfg.udp_mtu, s->cluster_id, s->self->pub.id);
	for (size_t i = 0; i < n; i++)
		swim_wire_pkt_add_msg(&b, &msgs[i]);
	if (m != NULL && m != s->self &&
	    (m->pub.state == SWIM_SUSPECT || m->pub.state == SWIM_DEAD)) {
		struct swim_update u = {.state = m->pub.state,
					.id = m->pub.id,
					.incarnation = m->pub.incarnation,
					.from = m->pub.state == SWIM_SUSPECT ? m->confirm[0]
									     : s->self->pub.id};
		uint8_t enc[64];
		size_t len = swim_wire_encode_update(&u, enc, sizeof enc);

		if (len > 0)
			swim_wire_pkt_add_update(&b, enc, len);
	}
	piggyback(s, &b);
	send_pkt(s, addr, &b);
}

static void gossip_round(struct swim *s, uint64_t now)
{
	struct member *to[64];
	size_t n;

	if (s->n_bcasts == 0)
		return;
	n = swim_random_members(s, now, 0, false, to, s->cfg.gossip_nodes);
	for (size_t i = 0; i < n && s->n_bcasts > 0; i++) /* a suspect hears it (and refutes) */
		swim_send_msgs(s, to[i]->addr[SWIM_ADDR_CLUSTER], to[i]->pub.id, NULL, 0);
}

/* Send one encoded update straight to addr, in a datagram of its own
 * (no piggyback: the queue's sends are not spent on it). */
static void tell(struct swim *s, const char *addr, const uint8_t *enc, size_t len)
{
	struct swim_wire_pkt b;

	swim_wire_pkt_init(&b, s->pkt, s->cfg.udp_mtu, s->cluster_id, s->self->pub.id);
	swim_wire_pkt_add_update(&b, enc, len);
	send_pkt(s, addr, &b);
}

static size_t self_alive(const struct swim *s, uint8_t *enc, size_t cap)
{
	struct swim_update u = {.state = SWIM_ALIVE,
				.id = s->self->pub.id,
				.incarnation = s->self->pub.incarnation,
				.from = 0};

	swim_member_rec(s->self, &u.member);
	return swim_wire_encode_update(&u, enc, cap);
}

void swim_tell_alive(struct swim *s, const char *addr)
{
	uint8_t enc[SWIM_UPDATE_MAX_ENC];
	size_t len = self_alive(s, enc, sizeof enc);

	if (len > 0 && addr != NULL)
		tell(s, addr, enc, len);
}

/* A refutation is rare and matters most: besides gossip (whose sends run
 * out after retransmit_mult * log10(n+1)), every live member hears it
 * directly, as a leave is told. */
void swim_tell_alive_all(struct swim *s)
{
	uint8_t enc[SWIM_UPDATE_MAX_ENC];
	size_t len = self_alive(s, enc, sizeof enc);

	for (size_t i = 0; len > 0 && i < s->n_members; i++) {
		struct member *m = s->members[i];

		if (m != s->self && m->pub.state <= SWIM_SUSPECT && m->addr[SWIM_ADDR_CLUSTER])
			tell(s, m->addr[SWIM_ADDR_CLUSTER], enc, len);
	}
}

/* A leaving node tells every live member directly, then lets gossip
 * repeat it (memberlist's Leave broadcasts and waits). */
void swim_leave_broadcast(struct swim *s)
{
	struct member *self = s->self;
	struct swim_update u = {.state = SWIM_LEFT,
				.id = self->pub.id,
				.incarnation = self->pub.incarnation,
				.from = self->pub.id};
	uint8_t enc[64];
	size_t len = swim_wire_encode_update(&u, enc, sizeof enc);

	swim_queue_update(s, &u);
	for (size_t i = 0; i < s->n_members; i++) {
		struct member *m = s->members[i];
		struct swim_wire_pkt b;

		if (m == self || m->pub.state > SWIM_SUSPECT)
			continue;
		swim_wire_pkt_init(&b, s->pkt, s->cfg.udp_mtu, s->cluster_id, self->pub.id);
		swim_wire_pkt_add_update(&b, enc, len);
		send_pkt(s, m->addr[SWIM_ADDR_CLUSTER], &b);
	}
}

/* ------------------------------------------------------------------ push-pull */

void swim_send_refusal(struct swim *s, const char *addr)
{
	struct swim_pushpull pp = {.cluster_id = s->cluster_id,
				   .sender = s->self->pub.id,
				   .sender_addr = s->self->addr[SWIM_ADDR_CLUSTER],
				   .reply = true};
	uint8_t *buf;
	size_t len;

	if (swim_wire_encode_pushpull(&pp, &buf, &len, NULL) != 0)
		return;
	s->stats.tcp_sent++;
	s->stats.tcp_bytes_sent += len;
	s->io.send(s->io.data, SWIM_TCP, addr, buf, len);
	sh_free(buf);
}

void swim_send_pushpull(struct swim *s, const char *addr, bool join, bool reply)
{
	struct swim_member_rec *recs = sh_calloc(s->n_members, sizeof *recs);
	struct swim_pushpull pp = {.cluster_id = s->cluster_id,
				   .sender = s->self->pub.id,
				   .sender_addr = s->self->addr[SWIM_ADDR_CLUSTER],
				   .join = join,
				   .reply = reply,
				   .members = recs,
				   .n_members = s->n_members};
	uint8_t *buf;
	size_t len;

	if (recs == NULL)
		return;
	for (size_t i = 0; i < s->n_members; i++)
		swim_member_rec(s->members[i], &recs[i]);
	if (swim_wire_encode_pushpull(&pp, &buf, &len, NULL) == 0) {
		s->stats.tcp_sent++;
		s->stats.tcp_bytes_sent += len;
		s->io.send(s->io.data, SWIM_TCP, addr, buf, len);
		sh_free(buf);
	}
	sh_free(recs);
}

static void merge(struct swim *s, uint64_t now, const struct swim_pushpull *pp)
{
	for (size_t i = 0; i < pp->n_members; i++) {
		const struct swim_member_rec *r = &pp->members[i];

		switch (r->state) {
		case SWIM_ALIVE: swim_on_alive(s, now, r); break;
		case SWIM_LEFT: swim_on_dead(s, now, r->id, r->incarnation, r->id); break;
		case SWIM_SUSPECT:
		case SWIM_DEAD: swim_on_suspect(s, now, r->id, r->incarnation, pp->sender); break;
		}
	}
}

void swim_recv_pushpull(struct swim *s, uint64_t now, const struct swim_pushpull *pp)
{
	/* A node without a cluster learns it from any member's reply: from a
	 * seed's answer to the join, or later from a periodic exchange (a node
	 * that joined before its cluster was bootstrapped learns it so). */
	if (pp->reply && s->cluster_id == 0 && pp->cluster_id != 0) {
		struct swim_event ev = {.type = SWIM_EV_CLUSTER_ID, .cluster_id = pp->cluster_id};

		s->cluster_id = pp->cluster_id;
		if (s->io.event != NULL)
			s->io.event(s->io.data, &ev);
	}
	merge(s, now, pp);
	/* Answer after merging, so that the answer carries our refutations. */
	if (!pp->reply)
		swim_send_pushpull(s, pp->sender_addr, pp->join, true);
}

/* memberlist's pushPullScale: beyond 32 members, one more interval per
 * doubling, so that the TCP load per node stays flat. */
static uint64_t push_pull_period(const struct swim *s)
{
	size_t n = swim_live_count(s);
	uint64_t mult = 1;

	if (n > 32)
		mult = (uint64_t)ceil(log2((double)n) - log2(32.0)) + 1;
	return s->cfg.push_pull_interval_ms * mult;
}

static void push_pull_tick(struct swim *s, uint64_t now)
{
	struct member *to;

	s->next_push_pull = now + push_pull_period(s);
	if (swim_random_members(s, now, 0, true, &to, 1) == 1) {
		s->stats.push_pulls++;
		swim_send_pushpull(s, to->addr[SWIM_ADDR_CLUSTER], false, false);
	}
}

/* ------------------------------------------------------------------ seeds */

static void rejoin(struct swim *s, uint64_t now)
{
	bool alone = swim_live_count(s) <= 1;
	uint64_t cap = s->cfg.rejoin_interval_ms ? s->cfg.rejoin_interval_ms : 60000;
	uint64_t wait;

	for (size_t i = 0; i < s->n_seeds; i++) {
		if (strcmp(s->seeds[i], s->self->addr[SWIM_ADDR_CLUSTER]) == 0 ||
		    swim_addr_is_live(s, s->seeds[i]))
			continue;
		s->stats.joins_sent++;
		swim_send_pushpull(s, s->seeds[i], true, false);
	}
	if (alone) {
		uint32_t shift = s->alone_attempts < 16 ? s->alone_attempts++ : 16;

		wait = (uint64_t)s->cfg.probe_interval_ms << shift;
		s->next_rejoin = now + (wait < cap ? wait : cap);
	} else {
		s->alone_attempts = 0;
		s->next_rejoin =
			s->cfg.rejoin_interval_ms ? now + s->cfg.rejoin_interval_ms : SWIM_NEVER;
	}
}

int swim_join(struct swim *s, uint64_t now, const char *const *seeds, size_t n, struct sh_err *err)
{
	if (n > SWIM_MAX_SEEDS)
		return sh_err_set(err, SH_ETOOBIG, "swim: %zu seeds, at most %d", n,
				  SWIM_MAX_SEEDS);
	for (size_t i = 0; i < n; i++)
		if (strlen(seeds[i]) == 0 || strlen(seeds[i]) > SWIM_ADDR_MAX)
			return sh_err_set(err, SH_EINVAL, "swim: bad seed address '%s'", seeds[i]);
	for (size_t i = 0; i < s->n_seeds; i++)
		sh_free(s->seeds[i]);
	s->n_seeds = 0;
	for (size_t i = 0; i < n; i++) {
		if ((s->seeds[i] = sh_strdup(seeds[i])) == NULL)
			return sh_err_set(err, SH_ENOMEM, "swim: out of memory");
		s->n_seeds++;
	}
	s->alone_attempts = 0;
	if (n > 0)
		rejoin(s, now);
	return 0;
}

/* ------------------------------------------------------------------ timers */

void swim_gossip_tick(struct swim *s, uint64_t now)
{
	if (now >= s->next_gossip) {
		s->next_gossip = now + s->cfg.gossip_interval_ms;
		gossip_round(s, now);
	}
	if (s->leaving)
		return;
	if (now >= s->next_push_pull)
		push_pull_tick(s, now);
	if (now >= s->next_rejoin)
		rejoin(s, now);
}

uint64_t swim_gossip_deadline(const struct swim *s)
{
	uint64_t t = s->next_gossip;

	if (!s->leaving) {
		t = s->next_push_pull < t ? s->next_push_pull : t;
		t = s->next_rejoin < t ? s->next_rejoin : t;
	}
	return t;
}
