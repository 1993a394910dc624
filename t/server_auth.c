/* API keys against a real shoald (doc/security.md): every Method of the
 * binary protocol, taken from the protocol's own descriptor (a new method
 * is tested without being listed here), and a REST route of each kind,
 * each with no key, a wrong key and a key of each role — the expected
 * status each time (UNAUTHENTICATED / 401, PERMISSION_DENIED / 403, or
 * served); the refusals counted in /metrics; /healthz and /readyz open;
 * key files read again on SIGHUP; shoalctl --api-key-file. */
#include "build.h"

#include "net/auth.h"
#include "net/frame.h"
#include "proto/shoal.pb-c.h"
#include "srv.h"
#include "tap.h"

#include <sys/stat.h>

#define ADMIN "admin-key-0123456789abcdef"
#define WRITE "write-key-0123456789abcdef"
#define READ  "read-key-0123456789abcdef-"
#define READ2 "read-key-2-0123456789abcdef"
#define WRONG "wrong-key-0123456789abcdef"

static struct srv s;
static char dir[200], keys[3][300];

/* the key kinds tried, and the role each has */
static const char *const kinds[] = {NULL, WRONG, READ, WRITE, ADMIN};
static const enum auth_role kind_role[] = {AUTH_MISSING, AUTH_INVALID, AUTH_READ, AUTH_WRITE,
					   AUTH_ADMIN};

static void write_key(int i, const char *name, const char *key)
{
	FILE *f;

	snprintf(keys[i], sizeof keys[i], "%s/%s.keys", dir, name);
	if ((f = fopen(keys[i], "w")) == NULL)
		bail_out("cannot write %s", keys[i]);
	fprintf(f, "# %s keys\n%s\n", name, key);
	fclose(f);
	chmod(keys[i], 0600);
}

/* What a request of role `have` on something needing `need` gets. */
static int expected(enum auth_role have, enum auth_role need)
{
	if (need == AUTH_OPEN)
		return 0;
	if (have == AUTH_MISSING || have == AUTH_INVALID)
		return SHOAL__STATUS_CODE__UNAUTHENTICATED;
	return have < need ? SHOAL__STATUS_CODE__PERMISSION_DENIED : 0;
}

/* ------------------------------------------------------------ binary */

/* An empty request of method with key (NULL: no metadata); the reply's
 * status, -1 if none came. */
static int call(uint16_t method, const char *key)
{
	Shoal__Metadata md = SHOAL__METADATA__INIT;
	uint8_t buf[1024], hb[FRAME_HDR_SIZE];
	size_t len = 0;
	struct frame_hdr h;
	int fd = raw_connect(s.client_port), st = -1;

	if (fd < 0)
		return -1;
	if (key != NULL) {
		md.api_key = (char *)(uintptr_t)key;
		len = shoal__metadata__pack(&md, buf + 4);
		for (int i = 0; i < 4; i++)
			buf[i] = (uint8_t)(len >> (8 * i));
		len += 4;
	}
	h = (struct frame_hdr){(uint32_t)len, 1, method, key ? FRAME_F_METADATA : 0, 0};
	frame_hdr_encode(&h, hb);
	if (raw_write(fd, hb, sizeof hb) == 0 && (len == 0 || raw_write(fd, buf, len) == 0) &&
	    raw_read(fd, hb, sizeof hb) == 0 && frame_hdr_decode(hb, 1u << 26, &h, NULL) == 0)
		st = h.status;
	close(fd);
	return st;
}

static bool refusal(int st)
{
	return st == SHOAL__STATUS_CODE__UNAUTHENTICATED ||
	       st == SHOAL__STATUS_CODE__PERMISSION_DENIED;
}

static void test_methods(void)
{
	const ProtobufCEnumDescriptor *d = &shoal__method__descriptor;
	unsigned wrong = 0, tried = 0;

	for (unsigned i = 0; i < d->n_values; i++) {
		uint16_t m = (uint16_t)d->values[i].value;

		if (m == SHOAL__METHOD__METHOD_NONE)
			continue;
		for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
			int want = expected(kind_role[k], auth_method_role(m)),
			    got = call(m, kinds[k]);

			tried++;
			if (want != 0 ? got != want : (got < 0 || refusal(got))) {
				diag("%s with a %s key: status %d, expected %s", d->values[i].name,
				     auth_role_name(kind_role[k]), got,
				     want ? "that refusal" : "no refusal");
				wrong++;
			}
		}
	}
	is_int(wrong, 0, "every Method x {no key, wrong key, read, write, admin}: %u calls", tried);
}

/* ------------------------------------------------------------ REST */

/* method path with header (NULL: none); the HTTP status; *www whether a
 * WWW-Authenticate header came. */
static int rest(const char *method, const char *path, const char *header, bool *www)
{
	int fd = raw_connect(s.rest_port), code = 0;
	char head[1024], buf[8192];
	size_t len = 0;
	ssize_t n;

	if (fd < 0)
		return -1;
	snprintf(head, sizeof head,
		 "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s"
		 "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
		 method, path, header ? header : "", header ? "\r\n" : "");
	if (raw_write(fd, head, strlen(head)) == 0)
		while (len < sizeof buf - 1 &&
		       (n = recv(fd, buf + len, sizeof buf - 1 - len, 0)) > 0)
			len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	if (www != NULL)
		*www = strstr(buf, "WWW-Authenticate: Bearer") != NULL;
	return sscanf(buf, "HTTP/1.%*d %d", &code) == 1 ? code : -1;
}

static int http_of(int st)
{
	return st == SHOAL__STATUS_CODE__UNAUTHENTICATED     ? 401
	       : st == SHOAL__STATUS_CODE__PERMISSION_DENIED ? 403
							     : 0;
}

static void test_routes(void)
{
	static const struct {
		const char *method, *path;
		enum auth_role need;
	} r[] = {
		{"GET", "/", AUTH_READ},
		{"GET", "/collections", AUTH_READ},
		{"GET", "/collections/c", AUTH_READ},
		{"PUT", "/collections/c", AUTH_ADMIN},
		{"DELETE", "/collections/c", AUTH_ADMIN},
		{"PUT", "/collections/c/points", AUTH_WRITE},
		{"POST", "/collections/c/points/search", AUTH_READ},
		{"POST", "/collections/c/points/delete", AUTH_WRITE},
		{"POST", "/collections/c/points/payload", AUTH_WRITE},
		{"PUT", "/collections/c/index", AUTH_ADMIN},
		{"GET", "/cluster", AUTH_READ},
		{"GET", "/snapshot", AUTH_ADMIN},
		{"GET", "/metrics", AUTH_READ},
		{"GET", "/healthz", AUTH_OPEN},
		{"GET", "/readyz", AUTH_OPEN},
	};
	unsigned wrong = 0, tried = 0, www = 0, unauth = 0;
	char hdr[300];

	for (size_t i = 0; i < sizeof r / sizeof r[0]; i++)
		for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
			int want = http_of(expected(kind_role[k], r[i].need)), got;
			bool w = false;

			/* Qdrant's api-key header for the read key, Bearer otherwise */
			snprintf(hdr, sizeof hdr,
				 k == 2 ? "api-key: %s" : "Authorization: Bearer %s",
				 kinds[k] ? kinds[k] : "");
			got = rest(r[i].method, r[i].path, kinds[k] ? hdr : NULL, &w);
			tried++;
			unauth += want == 401;
			www += want == 401 && w;
			if (want != 0 ? got != want : (got < 0 || got == 401 || got == 403)) {
				diag("%s %s with a %s key: HTTP %d, expected %d", r[i].method,
				     r[i].path, auth_role_name(kind_role[k]), got, want);
				wrong++;
			}
		}
	is_int(wrong, 0, "REST routes x {no key, wrong key, read, write, admin}: %u requests",
	       tried);
	is_int(www, unauth, "every 401 says WWW-Authenticate: Bearer (%u)", unauth);
}

static void test_metrics(void)
{
	static char buf[1 << 18];
	int fd = raw_connect(s.rest_port);
	char head[512];
	size_t len = 0;
	ssize_t n;

	snprintf(head, sizeof head,
		 "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
		 "Authorization: Bearer %s\r\n\r\n",
		 READ);
	if (fd >= 0 && raw_write(fd, head, strlen(head)) == 0)
		while (len < sizeof buf - 1 &&
		       (n = recv(fd, buf + len, sizeof buf - 1 - len, 0)) > 0)
			len += (size_t)n;
	if (fd >= 0)
		close(fd);
	buf[len] = '\0';
	ok(strstr(buf, "shoal_auth_failures_total{reason=\"missing\"} ") != NULL &&
		   strstr(buf, "shoal_auth_failures_total{reason=\"missing\"} 0\n") == NULL,
	   "/metrics counts the refusals for a missing key");
	ok(strstr(buf, "shoal_auth_failures_total{reason=\"denied\"} ") != NULL &&
		   strstr(buf, "shoal_auth_failures_total{reason=\"denied\"} 0\n") == NULL,
	   "and for a role short of the request's");
	ok(strstr(buf, READ) == NULL && strstr(buf, ADMIN) == NULL, "and shows no key");
}

static int ctl(const char *args)
{
	char cmd[1024];

	snprintf(cmd, sizeof cmd, "%s/src/client/shoalctl --addr %s %s >/dev/null 2>&1 </dev/null",
		 srv_builddir(), s.addr, args);
	return WEXITSTATUS(system(cmd));
}

static void test_reload_and_ctl(void)
{
	char args[600];

	write_key(2, "read", READ2);
	kill(s.pid, SIGHUP);
	for (int i = 0; i < 200 && call(SHOAL__METHOD__METHOD_COUNT, READ) != 8; i++)
		srv_sleep_ms(25);
	is_int(call(SHOAL__METHOD__METHOD_LIST_COLLECTIONS, READ), 8,
	       "SIGHUP: the read key removed from its file is refused");
	is_int(call(SHOAL__METHOD__METHOD_LIST_COLLECTIONS, READ2), 0, "the new one is served");
	chmod(keys[2], 0644);
	kill(s.pid, SIGHUP);
	for (int i = 0; i < 200 && !srv_log_has(&s, "API keys NOT reloaded"); i++)
		srv_sleep_ms(25);
	ok(srv_log_has(&s, "API keys NOT reloaded"),
	   "a key file readable by others: not reloaded, said");
	is_int(call(SHOAL__METHOD__METHOD_LIST_COLLECTIONS, READ2), 0,
	       "and the keys loaded before stay in force");
	chmod(keys[2], 0600);
	is_int(ctl("collection list"), 1, "shoalctl without a key: exit 1 (UNAUTHENTICATED)");
	snprintf(args, sizeof args, "--api-key-file '%s' collection list", keys[0]);
	is_int(ctl(args), 0, "shoalctl --api-key-file with the admin key file: served");
	snprintf(args, sizeof args, "--api-key-file '%s' collection create d --dim 2", keys[2]);
	is_int(ctl(args), 1, "a read key may not create a collection: exit 1");
	snprintf(args, sizeof args, "SHOAL_API_KEY=%s %s/src/client/shoalctl --addr %s status",
		 ADMIN, srv_builddir(), s.addr);
	is_int(WEXITSTATUS(system(args)), 0, "SHOAL_API_KEY in the environment is sent");
}

int main(void)
{
	char fa[300], fw[300], fr[300];

	srv_watchdog(180);
	srv_tmpdir(dir, sizeof dir);
	write_key(0, "admin", ADMIN);
	write_key(1, "write", WRITE);
	write_key(2, "read", READ);
	snprintf(fa, sizeof fa, "%s", keys[0]);
	snprintf(fw, sizeof fw, "%s", keys[1]);
	snprintf(fr, sizeof fr, "%s", keys[2]);
	snprintf(s.dir, sizeof s.dir, "%s/data", dir);
	if (srv_start_args(&s, (const char *const[]){"--security-admin-keys-file", fa,
						     "--security-write-keys-file", fw,
						     "--security-read-keys-file", fr, NULL}) != 0)
		bail_out("shoald does not start");
	ok(srv_log_has(&s, "API keys required: 1 admin, 1 write, 1 read"),
	   "the log says keys are required");
	test_methods();
	test_routes();
	test_metrics();
	test_reload_and_ctl();
	is_int(srv_stop(&s, SIGTERM), 0, "SIGTERM: clean exit");
	srv_rmdir(dir);
	return done_testing();
}
