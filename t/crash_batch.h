/*
 * crash_batch.h: the writes of the crash test, shared by the writer
 * (t/storage_writer.c) and the checker (t/storage_crash.c) so that the
 * checker can rebuild exactly what the writer wrote.  Batch b is the log
 * entry at index b + 2 (index 1 creates the collection): an upsert of 1 to
 * 8 points (ids reused, so points get replaced) or, every tenth, a delete
 * of 5 ids.  Payloads are written in canonical form, so the entry the
 * writer's db makes of them is the one given here.
 */
#ifndef SHOAL_T_CRASH_BATCH_H
#define SHOAL_T_CRASH_BATCH_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "storage/entry.h"
#include "util/rand.h"

#define CB_DIM    8
#define CB_IDS    500
#define CB_POINTS 8

struct crash_batch {
	struct entry e;
	struct coll_point p[CB_POINTS];
	float v[CB_POINTS][CB_DIM];
	char payload[CB_POINTS][48];
	uint64_t ids[5];
};

static void crash_create(struct entry *e) __attribute__((unused));
static void crash_create(struct entry *e)
{
	memset(e, 0, sizeof *e);
	e->type = WAL_CREATE;
	snprintf(e->params.name, sizeof e->params.name, "crash");
	e->params.dim = CB_DIM;
	e->params.metric = SH_METRIC_L2;
	e->params.m = 8;
	e->params.ef_construction = 32;
	e->params.seed = 1;
}

static void crash_batch(struct crash_batch *cb, uint64_t seed, uint64_t b) __attribute__((unused));
static void crash_batch(struct crash_batch *cb, uint64_t seed, uint64_t b)
{
	struct sh_rand r;
	size_t n = 1 + b % CB_POINTS;

	sh_rand_seed(&r, seed * 1000003 + b);
	memset(&cb->e, 0, sizeof cb->e);
	cb->e.collection = "crash";
	if (b % 10 == 9) {
		for (int i = 0; i < 5; i++)
			cb->ids[i] = (b * 7 + (uint64_t)i * 13) % CB_IDS;
		cb->e.type = WAL_DELETE;
		cb->e.ids = cb->ids;
		cb->e.n = 5;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct coll_point *p = &cb->p[i];

		for (int j = 0; j < CB_DIM; j++)
			cb->v[i][j] = (float)sh_rand_normal(&r);
		snprintf(cb->payload[i], sizeof cb->payload[i], "{\"batch\":%" PRIu64 ",\"i\":%zu}",
			 b, i);
		*p = (struct coll_point){(b * 11 + i * 17) % CB_IDS, cb->v[i], CB_DIM,
					 cb->payload[i], strlen(cb->payload[i])};
		if (sh_rand_below(&r, 3) == 0) {
			p->payload = NULL;
			p->payload_len = 0;
		}
	}
	cb->e.type = WAL_UPSERT;
	cb->e.points = cb->p;
	cb->e.n = n;
}

#endif
