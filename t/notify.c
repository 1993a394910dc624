/* shoald under a service manager (issue 12): with NOTIFY_SOCKET set, as
 * systemd sets it for a Type=notify unit, a real shoald says READY=1 once
 * it serves, its role and readiness in STATUS= lines, RELOADING=1 and
 * READY=1 around a SIGHUP, and STOPPING=1 on SIGTERM.  The test is the
 * service manager: it reads the datagrams on a socket of its own.  Skipped
 * when shoald is built without libsystemd. */
#include "build.h"

#include "srv.h"
#include "tap.h"

#include <stdbool.h>
#include <sys/un.h>

static int sock;
static char got[8192]; /* every message so far, one per line */

/* Read messages until one contains want (or the timeout); true if seen. */
static bool wait_msg(const char *want, int seconds)
{
	time_t until = time(NULL) + seconds * srv_scale();
	char buf[1024];

	while (time(NULL) < until) {
		ssize_t n = recv(sock, buf, sizeof buf - 1, 0);

		if (n <= 0)
			continue;
		buf[n] = '\0';
		for (char *p = buf; *p; p++)
			if (*p == '\n')
				*p = ' ';
		snprintf(got + strlen(got), sizeof got - strlen(got), "%s\n", buf);
		if (strstr(buf, want) != NULL)
			return true;
	}
	return false;
}

int main(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timeval tv = {0, 200 * 1000};
	char dir[80]; /* short: the socket's path must fit sun_path */
	struct srv s;

#ifndef HAVE_LIBSYSTEMD
	skip_all("shoald is built without libsystemd (configure --with-systemd; Debian "
		 "libsystemd-dev): it sends no notifications");
#endif
	srv_watchdog(60);
	srv_tmpdir(dir, sizeof dir);
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s/notify.sock", dir);
	sock = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (sock < 0 || bind(sock, (struct sockaddr *)&sa, sizeof sa) != 0)
		bail_out("cannot bind %s: %s", sa.sun_path, strerror(errno));
	setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setenv("NOTIFY_SOCKET", sa.sun_path, 1);
	snprintf(s.dir, sizeof s.dir, "%s/data", dir);
	if (srv_start_args(&s, NULL) != 0)
		bail_out("shoald does not start");
	ok(wait_msg("READY=1", 10), "READY=1 once it serves");
	like(got, "STATUS=serving", "  with a first STATUS=");
	ok(wait_msg("STATUS=leader in term 1, ready, applied", 10),
	   "STATUS= says its role and that it is ready");
	got[0] = '\0';
	kill(s.pid, SIGHUP);
	ok(wait_msg("RELOADING=1", 5), "SIGHUP: RELOADING=1");
	ok(wait_msg("READY=1", 5), "  then READY=1 once reloaded");
	got[0] = '\0';
	kill(s.pid, SIGTERM);
	ok(wait_msg("STOPPING=1", 5), "SIGTERM: STOPPING=1");
	is_int(srv_stop(&s, SIGTERM), 0, "  and a clean exit");
	diag("messages: %s", got);
	close(sock);
	srv_rmdir(dir);
	return done_testing();
}
