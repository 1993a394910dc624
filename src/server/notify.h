/*
 * notify: tells a service manager how the node is doing, through
 * sd_notify(3) of libsystemd when shoald is built with it (configure
 * --with-systemd; contrib/systemd/shoald.service is then Type=notify):
 * READY=1 once the node serves (storage recovered, listeners open,
 * membership started), STATUS= lines as its role and readiness change
 * (checked every second), RELOADING=1 and READY=1 around a SIGHUP
 * reload, STOPPING=1 when it starts to stop.  Without libsystemd, or when
 * $NOTIFY_SOCKET is unset (not run by systemd), every call does nothing.
 *
 * Threads: the loop thread.  The caller owns the struct (notify_free).
 */
#ifndef SHOAL_SERVER_NOTIFY_H
#define SHOAL_SERVER_NOTIFY_H

#include <stdbool.h>

#include <event2/event.h>

#include "net/api.h"

struct sh_notify;

/* NULL when out of memory (the node runs without notifications). */
struct sh_notify *sh_notify_new(struct event_base *base, struct api *api);
void sh_notify_free(struct sh_notify *n);
/* The node serves: READY=1 and a first STATUS=, then STATUS= on changes. */
void sh_notify_ready(struct sh_notify *n);
void sh_notify_reloading(struct sh_notify *n);
void sh_notify_reloaded(struct sh_notify *n);
void sh_notify_stopping(struct sh_notify *n);
/* Whether shoald was built with libsystemd. */
bool sh_notify_supported(void);

#endif
