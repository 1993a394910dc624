/*
 * rest_auth: API keys over REST (doc/security.md) — the role each route
 * needs, and the key a request carries (Authorization: Bearer KEY, or
 * Qdrant's api-key header).
 */
#include "build.h"

#include "net/rest_impl.h"

#include <string.h>
#include <strings.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

/* A switch without default: a new route is a compiler warning here
 * (-Wswitch), and t/auth.c checks each against its method's role. */
enum auth_role rest_route_role(enum rest_route route)
{
	switch (route) {
	case ROUTE_NONE:
	case ROUTE_REFUSED: return AUTH_OPEN; /* answered with an error anyway */
	case ROUTE_ROOT:
	case ROUTE_LIST:
	case ROUTE_DESCRIBE:
	case ROUTE_EXISTS:
	case ROUTE_GET:
	case ROUTE_GET_ONE:
	case ROUTE_SEARCH:
	case ROUTE_SEARCH_BATCH:
	case ROUTE_QUERY:
	case ROUTE_QUERY_BATCH:
	case ROUTE_SCROLL:
	case ROUTE_COUNT:
	case ROUTE_ALIASES:
	case ROUTE_CLUSTER:
	case ROUTE_MEMBERS: return AUTH_READ;
	case ROUTE_UPSERT:
	case ROUTE_DELETE:
	case ROUTE_SET_PAYLOAD:
	case ROUTE_OVERWRITE:
	case ROUTE_DELETE_KEYS:
	case ROUTE_CLEAR: return AUTH_WRITE;
	case ROUTE_CREATE:
	case ROUTE_DROP:
	case ROUTE_INDEX:
	case ROUTE_INDEX_DROP: return AUTH_ADMIN;
	}
	return AUTH_ADMIN;
}

const char *rest_api_key(struct evkeyvalq *h)
{
	const char *v = evhttp_find_header(h, "Authorization"), *key = "";

	if (v != NULL && strncasecmp(v, "Bearer ", 7) == 0)
		key = v + 7;
	else if ((v = evhttp_find_header(h, "api-key")) != NULL)
		key = v;
	while (*key == ' ')
		key++;
	return key;
}

int rest_authorize(struct api *a, struct evhttp_request *req, enum auth_role need, const char *what,
		   char *msg, size_t size)
{
	const char *key = rest_api_key(evhttp_request_get_input_headers(req));

	return api_authorize(a, key, strlen(key), need, what, msg, size);
}
