/*
 * rest_impl: shared by rest.c (the HTTP side) and rest_json.c (JSON to
 * request messages and response messages to JSON).
 */
#ifndef SHOAL_NET_REST_IMPL_H
#define SHOAL_NET_REST_IMPL_H

#include <jansson.h>

#include "net/api.h"

enum rest_route {
	ROUTE_NONE,
	ROUTE_LIST,     /* GET /collections */
	ROUTE_CREATE,   /* PUT /collections/{name} */
	ROUTE_DESCRIBE, /* GET /collections/{name} */
	ROUTE_DROP,     /* DELETE /collections/{name} */
	ROUTE_UPSERT,   /* PUT /collections/{name}/points */
	ROUTE_GET,      /* POST /collections/{name}/points */
	ROUTE_GET_ONE,  /* GET /collections/{name}/points/{id} */
	ROUTE_DELETE,   /* POST /collections/{name}/points/delete */
	ROUTE_SEARCH,   /* POST /collections/{name}/points/search */
	ROUTE_SCROLL,   /* POST /collections/{name}/points/scroll */
	ROUTE_COUNT,    /* POST /collections/{name}/points/count */
	ROUTE_CLUSTER,  /* GET /cluster */
	ROUTE_MEMBERS,  /* GET /cluster/members */
};

/* The parts of a request that a route reads. */
struct rest_in {
	enum rest_route route;
	const char *name; /* collection */
	const char *id;   /* ROUTE_GET_ONE */
	const json_t *body;
	const char *q_consistency, *q_token, *q_ack; /* query parameters, or NULL */
};

uint16_t rest_method(enum rest_route r);
/* Build op->req from in, in op's arena (SH_EINVAL: err says why). */
int rest_build(struct op *op, const struct rest_in *in, struct sh_err *err);
/* The "result" of a successful op (a new reference); NULL with
 * *not_found for ROUTE_GET_ONE of an absent point. */
json_t *rest_result(const struct op *op, enum rest_route r, bool *not_found);

#endif
