/*
 * srv.h: real shoald processes for C tests (the counterpart of t/lib.sh),
 * plus raw socket and HTTP helpers.  Header-only; include once per test.
 *
 * Ports: a base port B is drawn at random in 1100..3199 (listeners on
 * B1, B2, B3: 11001..31993, below Linux's ephemeral range); the three ports
 * are probed with bind() first, and if shoald still fails to bind (another
 * test took a port meanwhile) it is started again on another base.  Only
 * 127.0.0.1 is used.  shoald dies with the test (PR_SET_PDEATHSIG), and
 * srv_watchdog() bounds the whole test with alarm().
 */
#ifndef SHOAL_T_SRV_H
#define SHOAL_T_SRV_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "srv_tls.h"

struct srv {
	pid_t pid;
	int base, client_port, rest_port;
	char dir[256];
	char log[300];
	char addr[64];
};

static __attribute__((unused)) int srv_scale(void)
{
	const char *s = getenv("SHOAL_TIMEOUT_SCALE");

	return s && atoi(s) > 0 ? atoi(s) : 1;
}

static __attribute__((unused)) void srv_watchdog(int seconds)
{
	alarm((unsigned)(seconds * srv_scale()));
}

static __attribute__((unused)) void srv_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static const char *srv_builddir(void)
{
	const char *b = getenv("top_builddir");

	return b ? b : ".";
}

/* A fresh temporary directory (for data dirs and files). */
static __attribute__((unused)) void srv_tmpdir(char *out, size_t size)
{
	snprintf(out, size, "%s/shoal-t-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(out) == NULL) {
		perror("mkdtemp");
		exit(99);
	}
}

static __attribute__((unused)) void srv_rmdir(const char *dir)
{
	char cmd[600];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

static __attribute__((unused)) int srv_port_free(int port)
{
	struct sockaddr_in sa = {0};
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1, ok;

	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
	close(fd);
	return ok;
}

static __attribute__((unused)) int srv_log_has(const struct srv *s, const char *what)
{
	char buf[65536];
	FILE *f = fopen(s->log, "r");
	size_t n;

	if (f == NULL)
		return 0;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, what) != NULL;
}

/* Start shoald on data dir s->dir (set by the caller) with extra flags
 * (NULL-terminated); returns 0 when it is serving. */
/* With SHOAL_TEST_TLS, the flags that put the node's ports in TLS. */
static __attribute__((unused)) int srv_tls_args(const char **argv, int argc)
{
	static char cert[600], key[600];

	if (srv_tls_dir() == NULL)
		return argc;
	snprintf(cert, sizeof cert, "%s/node.pem", srv_tls_dir());
	snprintf(key, sizeof key, "%s/node.key", srv_tls_dir());
	argv[argc++] = "--security-tls-cert-file";
	argv[argc++] = cert;
	argv[argc++] = "--security-tls-key-file";
	argv[argc++] = key;
	return argc;
}

static __attribute__((unused)) int srv_start_args(struct srv *s, const char *const *extra)
{
	static unsigned seed;
	char shoald[512], base[16];

	if (seed == 0)
		seed = (unsigned)getpid() ^ (unsigned)time(NULL);
	snprintf(shoald, sizeof shoald, "%s/src/server/shoald", srv_builddir());
	snprintf(s->log, sizeof s->log, "%s.log", s->dir);
	for (int attempt = 0; attempt < 30; attempt++) {
		const char *argv[64] = {shoald, "--node-data-dir",    s->dir, "--node-name",
					"t",    "--listen-base-port", base};
		int argc = 7, status;

		s->base = 1100 + (int)(rand_r(&seed) % 2100);
		if (!srv_port_free(s->base * 10 + 1) || !srv_port_free(s->base * 10 + 2) ||
		    !srv_port_free(s->base * 10 + 3))
			continue;
		snprintf(base, sizeof base, "%d", s->base);
		for (int i = 0; extra && extra[i] && argc < 58; i++)
			argv[argc++] = extra[i];
		argc = srv_tls_args(argv, argc);
		argv[argc] = NULL;
		unlink(s->log);
		if ((s->pid = fork()) == 0) {
			int fd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

			prctl(PR_SET_PDEATHSIG, SIGKILL);
			dup2(fd, 2);
			dup2(fd, 1);
			execv(shoald, (char *const *)(uintptr_t)argv);
			_exit(127);
		}
		for (int i = 0; i < 400 * srv_scale(); i++) {
			if (srv_log_has(s, "started: node")) {
				s->client_port = s->base * 10 + 2;
				s->rest_port = s->base * 10 + 3;
				snprintf(s->addr, sizeof s->addr, "127.0.0.1:%d", s->client_port);
				return 0;
			}
			if (waitpid(s->pid, &status, WNOHANG) == s->pid)
				break;
			srv_sleep_ms(25);
		}
		if (!srv_log_has(s, "Address already in use")) {
			fprintf(stderr, "shoald did not start; its log (%s) follows\n", s->log);
			return -1;
		}
	}
	return -1;
}

static __attribute__((unused)) int srv_start(struct srv *s, const char *dir)
{
	snprintf(s->dir, sizeof s->dir, "%s", dir);
	return srv_start_args(s, NULL);
}

/* A server whose reads default to strong, for tests that read right after
 * they write without a token: a write is acknowledged once committed and
 * searchable once applied, and a strong read waits for that.  s->dir set. */
static __attribute__((unused)) int srv_start_strong(struct srv *s)
{
	return srv_start_args(s, (const char *const[]){"--api-consistency", "strong", NULL});
}

/* Stop with sig (SIGTERM: wait for a clean exit; SIGKILL); exit status. */
static __attribute__((unused)) int srv_stop(struct srv *s, int sig)
{
	int status = -1;

	if (s->pid <= 0)
		return -1;
	kill(s->pid, sig);
	waitpid(s->pid, &status, 0);
	s->pid = 0;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static __attribute__((unused)) int srv_alive(const struct srv *s)
{
	return s->pid > 0 && waitpid(s->pid, NULL, WNOHANG) == 0;
}

/* ------------------------------------------------------------ raw sockets */

static __attribute__((unused)) int raw_connect(int port)
{
	struct sockaddr_in sa = {0};
	struct timeval tv = {10 * srv_scale(), 0};
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (srv_tls_dir() != NULL && (fd = srv_tls_wrap(fd)) < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	return fd;
}

static __attribute__((unused)) int raw_write(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static __attribute__((unused)) int raw_read(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len > 0) {
		ssize_t n = recv(fd, p, len, 0);

		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ------------------------------------------------------------ HTTP */

/* One request with Connection: close; *code the HTTP status and body the
 * response body (malloc'd, NUL-terminated).  Returns 0 or -1. */
static __attribute__((unused)) int http(int port, const char *method, const char *path,
					const char *body, int *code, char **resp)
{
	int fd = raw_connect(port);
	char head[1024], *buf = NULL, *b;
	size_t len = 0, cap = 0;
	ssize_t n;

	*resp = NULL;
	*code = 0;
	if (fd < 0)
		return -1;
	snprintf(head, sizeof head,
		 "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
		 "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
		 method, path, body ? strlen(body) : 0);
	if (raw_write(fd, head, strlen(head)) != 0 ||
	    (body && raw_write(fd, body, strlen(body)) != 0)) {
		close(fd);
		return -1;
	}
	for (;;) {
		if (len + 4096 + 1 > cap && (buf = realloc(buf, cap = 2 * cap + 8192)) == NULL)
			break;
		if ((n = recv(fd, buf + len, cap - len - 1, 0)) <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (buf == NULL)
		return -1;
	buf[len] = '\0';
	if (sscanf(buf, "HTTP/1.%*d %d", code) != 1 || (b = strstr(buf, "\r\n\r\n")) == NULL) {
		free(buf);
		return -1;
	}
	*resp = strdup(b + 4);
	free(buf);
	return 0;
}

#endif
