/*
 * notify: see notify.h.  STATUS= reads like
 *   "follower in term 3, ready, applied 1200 of 1200"
 *   "learner in term 3, not ready: catching up: applied index 80 is 1120 entries behind ..."
 * and is sent only when it changes.
 */
#include "build.h"

#include "server/notify.h"

#include "util/alloc.h"
#include "util/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

struct sh_notify {
	struct api *api;
	struct event *tick;
	bool ready, stopping;
	char last[256];
};

bool sh_notify_supported(void)
{
#ifdef HAVE_LIBSYSTEMD
	return true;
#else
	return false;
#endif
}

static void notify_send(const char *what)
{
#ifdef HAVE_LIBSYSTEMD
	int rv = sd_notify(0, what);

	if (rv < 0)
		LOG_WARN("server", "sd_notify(%s): %s", what, strerror(-rv));
#else
	(void)what;
#endif
}

static void status_now(struct sh_notify *n)
{
	struct health_view v;
	struct node_status st;
	char text[sizeof n->last], line[sizeof n->last + 8];

	if (n->stopping || api_node(n->api) == NULL)
		return;
	node_status(api_node(n->api), &st);
	api_health(n->api, &v);
	if (v.ready)
		snprintf(text, sizeof text,
			 "%s in term %" PRIu64 ", ready, applied %" PRIu64 " of %" PRIu64, st.role,
			 st.term, v.applied_index, v.commit_index);
	else
		snprintf(text, sizeof text, "%s in term %" PRIu64 ", not ready: %s", st.role,
			 st.term, v.reason);
	if (strcmp(text, n->last) == 0)
		return;
	memcpy(n->last, text, sizeof text);
	snprintf(line, sizeof line, "STATUS=%s", text);
	notify_send(line);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	status_now(arg);
}

struct sh_notify *sh_notify_new(struct event_base *base, struct api *api)
{
	struct sh_notify *n = sh_calloc(1, sizeof *n);

	if (n == NULL)
		return NULL;
	n->api = api;
	if (getenv("NOTIFY_SOCKET") != NULL && sh_notify_supported())
		n->tick = event_new(base, -1, EV_PERSIST, on_tick, n);
	return n;
}

void sh_notify_free(struct sh_notify *n)
{
	if (n == NULL)
		return;
	if (n->tick != NULL)
		event_free(n->tick);
	sh_free(n);
}

void sh_notify_ready(struct sh_notify *n)
{
	struct timeval tv = {1, 0};

	if (n == NULL || n->ready)
		return;
	n->ready = true;
	notify_send("READY=1\nSTATUS=serving");
	status_now(n);
	if (n->tick != NULL)
		event_add(n->tick, &tv);
}

void sh_notify_reloading(struct sh_notify *n)
{
	if (n != NULL && n->ready)
		notify_send("RELOADING=1\nSTATUS=reloading the configuration");
}

void sh_notify_reloaded(struct sh_notify *n)
{
	if (n == NULL || !n->ready)
		return;
	n->last[0] = '\0';
	notify_send("READY=1");
	status_now(n);
}

void sh_notify_stopping(struct sh_notify *n)
{
	if (n == NULL || n->stopping)
		return;
	n->stopping = true;
	if (n->tick != NULL)
		event_del(n->tick);
	notify_send("STOPPING=1\nSTATUS=stopping");
}
