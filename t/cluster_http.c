/*
 * cluster_http: see cluster_http.h.  Responses are read whole (headers,
 * then Content-Length bytes, or up to the server's close when it sends
 * none); chunked bodies are not needed (evhttp sends a length) and count
 * as no answer.
 */
#include "build.h"

#include "cluster_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_RESPONSE (4u << 20)

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int http_init(struct http_conn *c, const char *addr)
{
	const char *colon = strrchr(addr, ':');
	size_t hl = colon ? (size_t)(colon - addr) : 0;

	c->fd = -1;
	if (colon == NULL || hl == 0 || hl >= sizeof c->host)
		return -1;
	memcpy(c->host, addr, hl);
	c->host[hl] = '\0';
	c->port = atoi(colon + 1);
	return c->port > 0 && c->port < 65536 ? 0 : -1;
}

void http_close(struct http_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* Wait for events on fd until deadline; the revents, 0 on timeout. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
	for (;;) {
		uint64_t now = mono_ms();
		struct pollfd p = {fd, events, 0};
		int rv;

		if (now >= deadline)
			return 0;
		rv = poll(&p, 1, (int)(deadline - now));
		if (rv > 0)
			return p.revents;
		if (rv < 0 && errno != EINTR)
			return POLLERR;
	}
}

/* A kept connection the server closed (EOF or an error waiting). */
static void drop_if_stale(struct http_conn *c)
{
	struct pollfd p = {c->fd, POLLIN | POLLRDHUP, 0};

	if (c->fd >= 0 && poll(&p, 1, 0) != 0)
		http_close(c);
}

static int connect_to(struct http_conn *c, uint64_t deadline, char *why, size_t size)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
	int fd, one = 1, soerr = 0;
	socklen_t sl = sizeof soerr;

	if (inet_pton(AF_INET, c->host, &sa.sin_addr) != 1) {
		snprintf(why, size, "%s: not an IPv4 address", c->host);
		return -1;
	}
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
		snprintf(why, size, "socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS)
		soerr = errno;
	else if (wait_fd(fd, POLLOUT, deadline) == 0)
		soerr = ETIMEDOUT;
	else
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
	if (soerr != 0) {
		close(fd);
		snprintf(why, size, "cannot connect to %s:%d: %s", c->host, c->port,
			 strerror(soerr));
		return -1;
	}
	c->fd = fd;
	return 0;
}

/* Send all of buf; 0, or -1 (the connection is closed). */
static int send_all(struct http_conn *c, const char *buf, size_t len, uint64_t deadline, char *why,
		    size_t size)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = send(c->fd, buf + off, len - off, MSG_NOSIGNAL);

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		int e = n < 0 ? errno : EPIPE;

		if (e == EINTR)
			continue;
		if ((e == EAGAIN || e == EWOULDBLOCK) && wait_fd(c->fd, POLLOUT, deadline) != 0)
			continue;
		snprintf(why, size, "sending to %s:%d: %s", c->host, c->port,
			 e == EAGAIN || e == EWOULDBLOCK ? "timed out" : strerror(e));
		http_close(c);
		return -1;
	}
	return 0;
}

struct resp {
	char *buf;
	size_t len, cap;
	size_t head; /* bytes of the status line and headers, 0 until known */
	long long clen;
	int code;
	int close; /* the server closes after this response */
};

/* Parse the status line and headers once they are complete; -1 when bad. */
static int parse_head(struct resp *r)
{
	char *end = strstr(r->buf, "\r\n\r\n"), *line;

	if (end == NULL)
		return 0;
	r->head = (size_t)(end - r->buf) + 4;
	r->clen = -1;
	if (sscanf(r->buf, "HTTP/1.%*d %d", &r->code) != 1)
		return -1;
	for (line = strstr(r->buf, "\r\n"); line != NULL && line < end;
	     line = strstr(line + 2, "\r\n")) {
		const char *h = line + 2;

		if (strncasecmp(h, "Content-Length:", 15) == 0)
			r->clen = strtoll(h + 15, NULL, 10);
		else if (strncasecmp(h, "Connection:", 11) == 0 && strstr(h, "close") != NULL &&
			 strstr(h, "close") < strstr(h, "\r\n"))
			r->close = 1;
		else if (strncasecmp(h, "Transfer-Encoding:", 18) == 0)
			return -1;
	}
	return r->clen < 0 && !r->close ? -1 : 0;
}

/* Read until the response is complete: 1, or 0 at EOF, -1 on error. */
static int read_resp(struct http_conn *c, struct resp *r, uint64_t deadline)
{
	for (;;) {
		ssize_t n;

		if (r->head > 0 && r->clen >= 0 && r->len >= r->head + (size_t)r->clen)
			return 1;
		if (r->len + 4096 + 1 > r->cap) {
			char *b = r->cap < MAX_RESPONSE ? realloc(r->buf, r->cap * 2 + 8192) : NULL;

			if (b == NULL)
				return -1;
			r->buf = b;
			r->cap = r->cap * 2 + 8192;
		}
		if (wait_fd(c->fd, POLLIN, deadline) == 0)
			return -1;
		n = recv(c->fd, r->buf + r->len, r->cap - r->len - 1, 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return n == 0 && r->head > 0 && r->clen < 0 ? 1 : n == 0 ? 0 : -1;
		r->len += (size_t)n;
		r->buf[r->len] = '\0';
		if (r->head == 0 && parse_head(r) < 0)
			return -1;
	}
}

int http_request(struct http_conn *c, const char *method, const char *path, const char *body,
		 int timeout_ms, int connect_ms, int *code, char **resp, char *why, size_t why_size)
{
	uint64_t start = mono_ms(), deadline = start + (uint64_t)timeout_ms;
	size_t blen = body ? strlen(body) : 0;
	struct resp r = {0};
	char *req;
	int rv, n;

	*resp = NULL;
	drop_if_stale(c);
	if (c->fd < 0 && connect_to(c, start + (uint64_t)connect_ms, why, why_size) != 0)
		return HTTP_NOT_SENT;
	n = snprintf(NULL, 0,
		     "%s %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
		     "Content-Length: %zu\r\n\r\n%s",
		     method, path, c->host, c->port, blen, body ? body : "");
	if ((req = malloc((size_t)n + 1)) == NULL) {
		snprintf(why, why_size, "out of memory");
		return HTTP_NOT_SENT;
	}
	snprintf(req, (size_t)n + 1,
		 "%s %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
		 "Content-Length: %zu\r\n\r\n%s",
		 method, path, c->host, c->port, blen, body ? body : "");
	rv = send_all(c, req, (size_t)n, deadline, why, why_size);
	free(req);
	if (rv != 0)
		return HTTP_NOT_SENT;
	if ((rv = read_resp(c, &r, deadline)) != 1) {
		snprintf(why, why_size, "%s:%d: %s", c->host, c->port,
			 rv == 0 ? "connection closed before the answer" : "no complete answer");
		free(r.buf);
		http_close(c);
		return HTTP_NO_ANSWER;
	}
	*code = r.code;
	*resp = strdup(r.buf + r.head);
	if (r.close)
		http_close(c);
	free(r.buf);
	return *resp != NULL ? HTTP_ANSWERED : HTTP_NO_ANSWER;
}
