/*
 * swim_probe: failure detection (SWIM section 3.1 and 4.3; Lifeguard
 * sections IV-A and IV-C).
 *
 * Every probe period this node pings one member, taken in a random
 * round-robin order (a shuffled list, reshuffled after each full pass, new
 * members inserted at a random place: SWIM 4.3 bounds the time to first
 * detection).  No ack within probe_timeout_ms: indirect_checks other members
 * are asked to ping it (ping-req) and to answer with a nack when it does not
 * answer them (Lifeguard's "buddy" nack).  No ack by the end of the period:
 * the target becomes suspect.
 *
 * Local health awareness (Lifeguard IV-A): a score, 0..max-1, that rises
 * when this node misses nacks it expected (so the problem is likely here,
 * not at the target), fails a probe with nobody to ask, or must refute a
 * suspicion of itself; it falls with each successful probe.  The probe
 * period and the deadline of a probe are stretched by (score + 1), so a
 * slow node slows down instead of accusing healthy members.
 */
#include "build.h"

#include "cluster/swim_int.h"

#include "util/alloc.h"

#include <string.h>

/* ------------------------------------------------------------------ order */

static void order_rebuild(struct swim *s)
{
	size_t n = 0;

	if (s->cap_order < s->n_members) {
		uint64_t *grown = sh_reallocarray(s->order, s->n_members, sizeof *grown);

		if (grown == NULL)
			return;
		s->order = grown;
		s->cap_order = s->n_members;
	}
	for (size_t i = 0; i < s->n_members; i++)
		if (s->members[i] != s->self && s->members[i]->pub.state <= SWIM_SUSPECT)
			s->order[n++] = s->members[i]->pub.id;
	for (size_t i = n; i > 1; i--) {
		size_t j = swim_rand(s, i);
		uint64_t t = s->order[i - 1];

		s->order[i - 1] = s->order[j];
		s->order[j] = t;
	}
	s->n_order = n;
	s->order_pos = 0;
}

/* A new member goes to a random place among those not yet probed in this
 * pass. */
void swim_order_add(struct swim *s, uint64_t id)
{
	size_t at;

	if (s->n_order == s->cap_order) {
		size_t cap = s->cap_order ? 2 * s->cap_order : 16;
		uint64_t *grown = sh_reallocarray(s->order, cap, sizeof *grown);

		if (grown == NULL)
			return;
		s->order = grown;
		s->cap_order = cap;
	}
	at = s->order_pos + swim_rand(s, s->n_order - s->order_pos + 1);
	memmove(&s->order[at + 1], &s->order[at], (s->n_order - at) * sizeof *s->order);
	s->order[at] = id;
	s->n_order++;
}

static struct member *next_target(struct swim *s)
{
	for (size_t tries = 0; tries <= s->n_members; tries++) {
		struct member *m;

		if (s->order_pos >= s->n_order) {
			order_rebuild(s);
			if (s->n_order == 0)
				return NULL;
		}
		m = swim_find(s, s->order[s->order_pos++]);
		if (m != NULL && m != s->self && m->pub.state <= SWIM_SUSPECT)
			return m;
	}
	return NULL;
}

/* ------------------------------------------------------------------ probing */

static void send_one(struct swim *s, const char *addr, uint64_t to, struct swim_msg m)
{
	swim_send_msgs(s, addr, to, &m, 1);
}

static void probe_start(struct swim *s, uint64_t now)
{
	uint64_t period = (uint64_t)s->cfg.probe_interval_ms * (uint64_t)(s->awareness + 1);
	struct member *m = next_target(s);

	s->next_probe = now + period;
	if (m == NULL)
		return;
	s->probe = (struct probe){.active = true,
				  .target = m->pub.id,
				  .seq = ++s->seq,
				  .direct_deadline = now + s->cfg.probe_timeout_ms,
				  .deadline = now + period};
	s->stats.probes++;
	send_one(s, m->addr[SWIM_ADDR_CLUSTER], m->pub.id,
		 (struct swim_msg){.type = SWIM_PING, .seq = s->probe.seq, .target = m->pub.id});
}

static void probe_indirect(struct swim *s, uint64_t now)
{
	struct member *target = swim_find(s, s->probe.target), *peers[16];
	size_t n;

	s->probe.indirect_sent = true;
	if (target == NULL)
		return;
	n = swim_random_members(s, now, target->pub.id, true, peers, s->cfg.indirect_checks);
	for (size_t i = 0; i < n; i++)
		send_one(s, peers[i]->addr[SWIM_ADDR_CLUSTER], peers[i]->pub.id,
			 (struct swim_msg){.type = SWIM_PING_REQ,
					   .seq = s->probe.seq,
					   .target = target->pub.id,
					   .target_addr = target->addr[SWIM_ADDR_CLUSTER],
					   .nack = true});
	s->probe.expected_nacks = (uint32_t)n;
	s->stats.indirect_probes += n;
}

/* No ack by the end of the period.  Missing nacks mean the fault is more
 * likely here than at the target (Lifeguard IV-A); with nobody to ask, any
 * failure counts against us. */
static void probe_fail(struct swim *s, uint64_t now)
{
	struct member *m = swim_find(s, s->probe.target);
	const struct probe *p = &s->probe;

	s->probe.active = false;
	s->stats.probe_failures++;
	if (p->expected_nacks == 0)
		swim_awareness_delta(s, 1);
	else if (p->nacks < p->expected_nacks)
		swim_awareness_delta(s, (int)(p->expected_nacks - p->nacks));
	if (m != NULL && m->pub.state <= SWIM_SUSPECT)
		swim_on_suspect(s, now, m->pub.id, m->pub.incarnation, s->self->pub.id);
}

static void relay_tick(struct swim *s, uint64_t now)
{
	for (size_t i = 0; i < s->n_relays;) {
		struct relay *r = &s->relays[i];

		if (now < r->deadline) {
			i++;
			continue;
		}
		if (r->nack)
			send_one(s, r->origin, r->origin_id,
				 (struct swim_msg){.type = SWIM_NACK, .seq = r->origin_seq});
		s->relays[i] = s->relays[--s->n_relays];
	}
}

void swim_probe_tick(struct swim *s, uint64_t now)
{
	relay_tick(s, now);
	if (s->probe.active && !s->probe.indirect_sent && now >= s->probe.direct_deadline)
		probe_indirect(s, now);
	if (s->probe.active && now >= s->probe.deadline)
		probe_fail(s, now);
	if (!s->probe.active && now >= s->next_probe)
		probe_start(s, now);
}

uint64_t swim_probe_deadline(const struct swim *s)
{
	uint64_t t = s->next_probe;

	if (s->probe.active) {
		uint64_t p = s->probe.indirect_sent ? s->probe.deadline : s->probe.direct_deadline;

		t = p < t ? p : t;
	}
	for (size_t i = 0; i < s->n_relays; i++)
		if (s->relays[i].deadline < t)
			t = s->relays[i].deadline;
	return t;
}

/* ------------------------------------------------------------------ messages */

static void on_ping_req(struct swim *s, uint64_t now, const char *from, uint64_t sender,
			const struct swim_msg *m)
{
	struct relay *r;

	if (s->n_relays == SWIM_MAX_RELAYS || strlen(from) > SWIM_ADDR_MAX) {
		s->stats.relay_dropped++;
		return;
	}
	r = &s->relays[s->n_relays++];
	*r = (struct relay){.seq = ++s->seq,
			    .origin_seq = m->seq,
			    .origin_id = sender,
			    .deadline = now + s->cfg.probe_timeout_ms,
			    .nack = m->nack};
	strcpy(r->origin, from);
	send_one(s, m->target_addr, m->target,
		 (struct swim_msg){.type = SWIM_PING, .seq = r->seq, .target = m->target});
}

static void on_ack(struct swim *s, const struct swim_msg *m)
{
	if (swim_conflict_ack(s, m->seq))
		return;
	if (s->probe.active && m->seq == s->probe.seq) {
		s->probe.active = false;
		swim_awareness_delta(s, -1);
		return;
	}
	for (size_t i = 0; i < s->n_relays; i++) {
		struct relay r = s->relays[i];

		if (r.seq != m->seq)
			continue;
		s->relays[i] = s->relays[--s->n_relays];
		send_one(s, r.origin, r.origin_id,
			 (struct swim_msg){.type = SWIM_ACK, .seq = r.origin_seq});
		return;
	}
}

void swim_probe_recv(struct swim *s, uint64_t now, const char *from, uint64_t sender,
		     const struct swim_msg *m)
{
	switch (m->type) {
	case SWIM_PING:
		/* A ping meant for another id (an old address reused) gets no ack. */
		if (m->target == s->self->pub.id)
			send_one(s, from, sender,
				 (struct swim_msg){.type = SWIM_ACK, .seq = m->seq});
		break;
	case SWIM_PING_REQ:
		if (m->target != s->self->pub.id)
			on_ping_req(s, now, from, sender, m);
		break;
	case SWIM_ACK: on_ack(s, m); break;
	case SWIM_NACK:
		if (s->probe.active && m->seq == s->probe.seq) {
			s->probe.nacks++;
			s->stats.nacks_recv++;
		}
		break;
	}
}
