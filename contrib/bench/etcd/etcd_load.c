/*
 * etcd_load.c: write load against etcd's v3 JSON gateway (POST /v3/kv/put),
 * the etcd side of the replication benchmark (contrib/bench/etcd/README.md,
 * doc/benchmarks.md "Replication: the etcd reference").
 *
 * put       C connections (HTTP/1.1 keep-alive), each with exactly one
 *           request outstanding, spread over the endpoints (connection i
 *           goes to endpoint i mod n) or all to the leader; a distinct key
 *           per put, a 512-byte value; latency from each request's own send
 *           and reply timestamps; one line of figures at the end.
 * failover  an open-loop writer at a modest rate, round-robin over every
 *           member (a pool of connections per member, one request each, so
 *           that a request stuck on a dead leader blocks nothing else);
 *           each round kills the leader with SIGKILL (PID from
 *           etcd_cluster.sh) and measures the time from the kill to the
 *           first acknowledged put among those *sent after* the kill, then
 *           restarts the member through the script and waits until it is
 *           healthy.
 *
 * One thread, one event_base.  Each connection is a small state machine
 * (enum conn_state) that parses the HTTP/1.1 reply itself: Content-Length
 * or chunked bodies (the gateway sends its errors chunked, with trailers),
 * bounded line and body sizes.  Every request has its own timer; every run
 * has an overall deadline; the number of errors is capped.  Functions
 * return 0 or -1 with a message in a caller's buffer; only main() exits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h> /* NAN only: the build links no libm */
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#define MAX_ENDPOINTS   16
#define MAX_CONNS       4096
#define MAX_LINE        8192 /* status, header or chunk-size line */
#define MAX_HEADERS     100
#define MAX_BODY        (1024 * 1024) /* a put reply is ~120 bytes */
#define SNIPPET         1024          /* how much of a body is kept for messages */
#define MAX_LATENCIES   (64u << 20)
#define MAX_ROUNDS      1000
#define CHILD_OUT       4096
#define CHILD_TIMEOUT_S 90
#define ERRORS_SHOWN    5 /* first errors of each kind printed in full */

/* the JSON body of a put: PUT_HEAD base64(key) PUT_MID base64(value) PUT_TAIL */
#define PUT_HEAD "{\"key\":\""
#define PUT_MID  "\",\"value\":\""
#define PUT_TAIL "\"}"

enum mode { MODE_PUT, MODE_FAILOVER };

enum err_kind {
	ERR_CONNECT,  /* connect failed: refused, unreachable */
	ERR_CLOSED,   /* EOF or reset before the whole reply */
	ERR_TIMEOUT,  /* no whole reply within --timeout */
	ERR_HTTP,     /* a reply, but not 200 */
	ERR_PROTOCOL, /* a reply we cannot parse */
	ERR_KINDS,
};

static const char *const err_names[ERR_KINDS] = {"connect", "closed", "timeout", "http",
						 "protocol"};

enum conn_state {
	CONN_DOWN,        /* no socket */
	CONN_IDLE,        /* connected (or connecting), nothing outstanding */
	CONN_STATUS_LINE, /* request sent, waiting for "HTTP/1.1 200 OK" */
	CONN_HEADERS,
	CONN_BODY, /* Content-Length bytes */
	CONN_CHUNK_SIZE,
	CONN_CHUNK_DATA,
	CONN_CHUNK_END, /* the CRLF after a chunk's data */
	CONN_TRAILERS,
};

enum req_kind { REQ_PUT, REQ_STATUS };

struct endpoint {
	char url[128]; /* as given: http://host:port */
	char hostport[112];
	struct sockaddr_storage sa;
	socklen_t salen;
	char name[32]; /* member name when known (failover) */
};

struct load;

struct conn {
	struct load *ld;
	int id;
	int ep;
	enum conn_state state;
	struct bufferevent *bev;
	struct event *timer; /* request deadline, or reconnect back-off */
	int connecting;
	enum req_kind kind;
	double t_sent;
	int measured; /* sent after the warm-up (put) or after the kill (failover) */
	uint64_t seq;
	int status;
	long content_left;
	int chunked;
	int close_after;
	int nheaders;
	size_t body_len; /* total body bytes seen */
	char body[SNIPPET + 1];
	size_t snip_len;
};

struct child {
	pid_t pid;
	int fd;
	struct event *ev;
	struct event *deadline;
	char out[CHILD_OUT];
	size_t len;
	void (*done)(struct load *ld, int ok, char *out);
};

enum round_state { ROUND_SETTLE, ROUND_LOOKUP, ROUND_WAIT_ACK, ROUND_NEW_LEADER, ROUND_RESTART };

struct load {
	struct event_base *base;
	enum mode mode;

	/* options */
	struct endpoint eps[MAX_ENDPOINTS];
	int neps;
	int concurrency;
	int leader_only;
	uint64_t count;
	double duration;
	double warmup;
	double timeout_ms;
	uint64_t max_errors;
	double max_time;
	size_t value_size;
	const char *cluster_dir;
	const char *script;
	pid_t given_pid;
	int rounds;
	double rate;
	int pool;
	double settle;
	double failover_timeout;
	int verbose;

	/* request material */
	char run_id[32];
	char *value_b64;
	size_t value_b64_len;

	struct conn *conns;
	int nconns;
	int conns_per_ep; /* failover: conns[ep * conns_per_ep + k] */

	/* put figures */
	double t_begin; /* first request */
	double t_start; /* end of the warm-up: measured requests start here */
	double t_last;  /* last measured completion */
	int measuring;
	int stopping; /* no new requests */
	uint64_t issued;
	uint64_t ok;
	uint64_t outstanding;
	double *lat;
	uint64_t nlat;
	uint64_t cap_lat;
	uint64_t errors[ERR_KINDS];
	uint64_t errors_total;
	uint64_t skipped;

	/* leader discovery (put --leader-only) */
	int discovering;
	int status_left;
	char member_id[MAX_ENDPOINTS][32];
	char leader_id[MAX_ENDPOINTS][32];

	/* failover */
	struct event *tick;
	struct event *phase_timer;
	struct event *deadline;
	uint64_t rr;
	enum round_state rstate;
	int round;
	double t_round;
	double t_kill;
	uint64_t acks_since[MAX_ENDPOINTS];
	char victim[32];
	pid_t victim_pid;
	double failover_ms[MAX_ROUNDS];
	double first_sent_ms;
	int first_ep;
	uint64_t skipped_at_kill; /* ld->skipped when the leader was killed */
	uint64_t errors_at_kill;  /* ld->errors_total then */
	uint64_t round_skipped;   /* ticks skipped between the kill and the ack */
	uint64_t round_errors;    /* failed requests in that time */
	uint64_t round_pending;   /* requests outstanding at the ack */
	struct child child;

	int failed; /* exit status 1 */
	char err[512];
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void fail(struct load *ld, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* fail: stop the run with a message; main() prints it and exits 1. */
static void fail(struct load *ld, const char *fmt, ...)
{
	va_list ap;

	if (ld->failed)
		return;
	va_start(ap, fmt);
	vsnprintf(ld->err, sizeof(ld->err), fmt, ap);
	va_end(ap);
	ld->failed = 1;
	event_base_loopbreak(ld->base);
}

/* ---- base64 (RFC 4648, with padding), as the gateway wants bytes fields ---- */

static size_t b64_encode(const unsigned char *in, size_t n, char *out)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i, o = 0;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = tab[(v >> 6) & 63];
		out[o++] = tab[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

/* ---- endpoints ---- */

/* parse_endpoint: "http://host:port" (or "host:port") into ep; 0 or -1. */
static int parse_endpoint(const char *s, struct endpoint *ep, char *msg, size_t msglen)
{
	const char *hp = s;
	char host[96], port[16];
	const char *colon;
	struct addrinfo hints, *res = NULL;
	size_t hl;
	int rv;

	if (strncmp(s, "http://", 7) == 0)
		hp = s + 7;
	else if (strstr(s, "://") != NULL) {
		snprintf(msg, msglen, "endpoint '%s': only http:// is supported", s);
		return -1;
	}
	colon = strrchr(hp, ':');
	if (colon == NULL || colon == hp || colon[1] == '\0') {
		snprintf(msg, msglen, "endpoint '%s': want http://HOST:PORT", s);
		return -1;
	}
	hl = (size_t)(colon - hp);
	if (hl >= sizeof(host) || strlen(colon + 1) >= sizeof(port) ||
	    strlen(s) >= sizeof(ep->url)) {
		snprintf(msg, msglen, "endpoint '%s': too long", s);
		return -1;
	}
	memcpy(host, hp, hl);
	host[hl] = '\0';
	strcpy(port, colon + 1);
	if (port[strspn(port, "0123456789")] != '\0' || strchr(port, '/') != NULL) {
		snprintf(msg, msglen, "endpoint '%s': bad port", s);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rv = getaddrinfo(host, port, &hints, &res);
	if (rv != 0) {
		snprintf(msg, msglen, "endpoint '%s': %s", s, gai_strerror(rv));
		return -1;
	}
	memcpy(&ep->sa, res->ai_addr, res->ai_addrlen);
	ep->salen = res->ai_addrlen;
	freeaddrinfo(res);
	snprintf(ep->url, sizeof(ep->url), "%s", s);
	snprintf(ep->hostport, sizeof(ep->hostport), "%s:%s", host, port);
	return 0;
}

static int parse_endpoints(struct load *ld, const char *list, char *msg, size_t msglen)
{
	char *copy = strdup(list), *save = NULL, *tok;
	int rv = 0;

	if (copy == NULL) {
		snprintf(msg, msglen, "out of memory");
		return -1;
	}
	ld->neps = 0;
	for (tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		if (ld->neps == MAX_ENDPOINTS) {
			snprintf(msg, msglen, "more than %d endpoints", MAX_ENDPOINTS);
			rv = -1;
			goto out;
		}
		rv = parse_endpoint(tok, &ld->eps[ld->neps], msg, msglen);
		if (rv != 0)
			goto out;
		ld->neps++;
	}
	if (ld->neps == 0) {
		snprintf(msg, msglen, "no endpoint in '%.200s'", list);
		rv = -1;
	}
out:
	free(copy);
	return rv;
}

static const char *ep_label(struct load *ld, int ep)
{
	return ld->eps[ep].name[0] != '\0' ? ld->eps[ep].name : ld->eps[ep].hostport;
}

/* ---- errors and figures ---- */

static void count_error(struct load *ld, struct conn *c, enum err_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void count_error(struct load *ld, struct conn *c, enum err_kind kind, const char *fmt, ...)
{
	char what[600];
	va_list ap;

	ld->errors[kind]++;
	ld->errors_total++;
	if (ld->errors[kind] <= ERRORS_SHOWN || ld->verbose) {
		va_start(ap, fmt);
		vsnprintf(what, sizeof(what), fmt, ap);
		va_end(ap);
		fprintf(stderr, "etcd_load: %s: %s error: %s%s\n", ep_label(ld, c->ep),
			err_names[kind], what,
			ld->errors[kind] == ERRORS_SHOWN && !ld->verbose
				? " (further ones counted only)"
				: "");
	}
	if (ld->mode == MODE_PUT && ld->errors_total > ld->max_errors)
		fail(ld, "more than %llu errors: giving up (--max-errors)",
		     (unsigned long long)ld->max_errors);
}

static int record_latency(struct load *ld, double ms)
{
	if (ld->nlat == ld->cap_lat) {
		uint64_t cap = ld->cap_lat ? ld->cap_lat * 2 : 65536;
		double *p;

		if (cap > MAX_LATENCIES) {
			fail(ld, "more than %u latencies recorded: shorten the run", MAX_LATENCIES);
			return -1;
		}
		p = realloc(ld->lat, cap * sizeof(*p));
		if (p == NULL) {
			fail(ld, "out of memory for %llu latencies", (unsigned long long)cap);
			return -1;
		}
		ld->lat = p;
		ld->cap_lat = cap;
	}
	ld->lat[ld->nlat++] = ms;
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* percentile: nearest rank of a sorted array. */
static double percentile(const double *v, uint64_t n, double q)
{
	uint64_t r;

	if (n == 0)
		return NAN;
	r = (uint64_t)(q * (double)n);
	if ((double)r < q * (double)n)
		r++; /* the ceiling, without libm */
	if (r < 1)
		r = 1;
	if (r > n)
		r = n;
	return v[r - 1];
}

/* ---- connections ---- */

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);
static void conn_timer_cb(evutil_socket_t fd, short what, void *arg);
static void request_done(struct conn *c, int ok);
static void put_next(struct conn *c);

static void conn_close(struct conn *c)
{
	if (c->bev != NULL) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	c->state = CONN_DOWN;
	c->connecting = 0;
}

/* conn_open: a non-blocking, close-on-exec socket (the script's children
 * must not inherit it) connecting to the connection's endpoint. */
static int conn_open(struct conn *c)
{
	struct load *ld = c->ld;
	struct endpoint *ep = &ld->eps[c->ep];
	int one = 1;
	int fd;

	fd = socket(ep->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fail(ld, "socket: %s", strerror(errno));
		return -1;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->bev = bufferevent_socket_new(ld->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		close(fd);
		fail(ld, "bufferevent_socket_new failed");
		return -1;
	}
	bufferevent_setcb(c->bev, conn_read_cb, NULL, conn_event_cb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->connecting = 1;
	c->state = CONN_IDLE;
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&ep->sa, (int)ep->salen) < 0) {
		int e = EVUTIL_SOCKET_ERROR();

		conn_close(c);
		count_error(ld, c, ERR_CONNECT, "connect to %s: %s", ep->url,
			    evutil_socket_error_to_string(e));
		return -1;
	}
	return 0;
}

/* conn_send: queue one request (the reply is parsed by conn_read_cb) and
 * arm its deadline. */
static int conn_send(struct conn *c, enum req_kind kind)
{
	struct load *ld = c->ld;
	struct endpoint *ep = &ld->eps[c->ep];
	struct evbuffer *out;
	struct timeval tv;
	char key[96], key_b64[136];
	size_t klen;
	int rv;

	if (c->bev == NULL && conn_open(c) != 0)
		return -1;
	out = bufferevent_get_output(c->bev);
	if (kind == REQ_PUT) {
		c->seq++;
		klen = (size_t)snprintf(key, sizeof(key), "shoal-bench/%s/%d/%llu", ld->run_id,
					c->id, (unsigned long long)c->seq);
		/* the body is PUT_HEAD key PUT_MID value PUT_TAIL */
		klen = b64_encode((const unsigned char *)key, klen, key_b64);
		rv = evbuffer_add_printf(out,
					 "POST /v3/kv/put HTTP/1.1\r\nHost: %s\r\n"
					 "Content-Type: application/json\r\n"
					 "Content-Length: %zu\r\n\r\n" PUT_HEAD "%s" PUT_MID,
					 ep->hostport,
					 strlen(PUT_HEAD) + klen + strlen(PUT_MID) +
						 ld->value_b64_len + strlen(PUT_TAIL),
					 key_b64);
		if (rv < 0 || evbuffer_add(out, ld->value_b64, ld->value_b64_len) != 0 ||
		    evbuffer_add(out, PUT_TAIL, strlen(PUT_TAIL)) != 0) {
			fail(ld, "out of memory building a request");
			return -1;
		}
	} else {
		rv = evbuffer_add_printf(out,
					 "POST /v3/maintenance/status HTTP/1.1\r\nHost: %s\r\n"
					 "Content-Type: application/json\r\n"
					 "Content-Length: 2\r\n\r\n{}",
					 ep->hostport);
		if (rv < 0) {
			fail(ld, "out of memory building a request");
			return -1;
		}
	}
	c->kind = kind;
	c->state = CONN_STATUS_LINE;
	c->status = 0;
	c->content_left = -1;
	c->chunked = 0;
	c->close_after = 0;
	c->nheaders = 0;
	c->body_len = 0;
	c->snip_len = 0;
	c->body[0] = '\0';
	c->t_sent = now_s();
	if (ld->mode == MODE_PUT)
		c->measured = ld->measuring;
	else
		c->measured = ld->rstate == ROUND_WAIT_ACK && c->t_sent >= ld->t_kill;
	ld->outstanding++;
	tv.tv_sec = (time_t)(ld->timeout_ms / 1000);
	tv.tv_usec = (suseconds_t)((ld->timeout_ms - (double)tv.tv_sec * 1000) * 1000);
	evtimer_add(c->timer, &tv);
	return 0;
}

/* conn_fail: the outstanding request failed; the connection is closed (a
 * half-read reply leaves it unusable). */
static void conn_fail(struct conn *c, enum err_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void conn_fail(struct conn *c, enum err_kind kind, const char *fmt, ...)
{
	char what[560];
	va_list ap;
	int busy = c->state >= CONN_STATUS_LINE;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	conn_close(c);
	evtimer_del(c->timer);
	if (busy) {
		count_error(c->ld, c, kind, "%s", what);
		request_done(c, 0);
	}
}

static void keep_snippet(struct conn *c, struct evbuffer *in, size_t n)
{
	size_t room = SNIPPET - c->snip_len;
	size_t k = n < room ? n : room;

	if (k > 0) {
		evbuffer_copyout(in, c->body + c->snip_len, k);
		c->snip_len += k;
		c->body[c->snip_len] = '\0';
	}
	evbuffer_drain(in, n);
	c->body_len += n;
}

/* conn_parse: advance the reply parser over what has arrived.  Returns 1
 * when the reply is complete, 0 when more is needed, -1 on a bad reply
 * (message in msg). */
static int conn_parse(struct conn *c, struct evbuffer *in, char *msg, size_t msglen)
{
	char *line;
	size_t n;

	for (;;) {
		switch (c->state) {
		case CONN_STATUS_LINE:
		case CONN_HEADERS:
		case CONN_CHUNK_SIZE:
		case CONN_CHUNK_END:
		case CONN_TRAILERS:
			line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
			if (line == NULL) {
				if (evbuffer_get_length(in) > MAX_LINE) {
					snprintf(msg, msglen, "a line longer than %d bytes",
						 MAX_LINE);
					return -1;
				}
				return 0;
			}
			break;
		case CONN_BODY:
		case CONN_CHUNK_DATA:
			n = evbuffer_get_length(in);
			if (n == 0)
				return 0;
			if ((long)n > c->content_left)
				n = (size_t)c->content_left;
			keep_snippet(c, in, n);
			c->content_left -= (long)n;
			if (c->content_left > 0)
				return 0;
			if (c->state == CONN_BODY)
				return 1;
			c->state = CONN_CHUNK_END;
			continue;
		default: snprintf(msg, msglen, "data while no request is outstanding"); return -1;
		}

		switch (c->state) {
		case CONN_STATUS_LINE:
			if (strncmp(line, "HTTP/1.", 7) != 0 ||
			    sscanf(line + 8, " %3d", &c->status) != 1) {
				snprintf(msg, msglen, "bad status line '%.80s'", line);
				free(line);
				return -1;
			}
			if (line[7] == '0')
				c->close_after = 1; /* HTTP/1.0: no keep-alive unless asked */
			c->state = CONN_HEADERS;
			break;
		case CONN_HEADERS:
			if (n == 0) {
				free(line);
				if (c->status >= 100 && c->status < 200) {
					c->state = CONN_STATUS_LINE; /* an interim reply */
					continue;
				}
				if (c->chunked) {
					c->state = CONN_CHUNK_SIZE;
					continue;
				}
				if (c->content_left < 0) {
					snprintf(msg, msglen,
						 "HTTP %d reply without Content-Length or chunks",
						 c->status);
					return -1;
				}
				if (c->content_left == 0)
					return 1;
				c->state = CONN_BODY;
				continue;
			}
			if (++c->nheaders > MAX_HEADERS) {
				snprintf(msg, msglen, "more than %d header lines", MAX_HEADERS);
				free(line);
				return -1;
			}
			if (strncasecmp(line, "Content-Length:", 15) == 0) {
				char *end;
				long v = strtol(line + 15, &end, 10);

				if (end == line + 15 || v < 0 || v > MAX_BODY) {
					snprintf(msg, msglen,
						 "bad or too big Content-Length '%.40s'",
						 line + 15);
					free(line);
					return -1;
				}
				c->content_left = v;
			} else if (strncasecmp(line, "Transfer-Encoding:", 18) == 0) {
				if (strcasestr(line + 18, "chunked") != NULL)
					c->chunked = 1;
			} else if (strncasecmp(line, "Connection:", 11) == 0) {
				if (strcasestr(line + 11, "close") != NULL)
					c->close_after = 1;
				else if (strcasestr(line + 11, "keep-alive") != NULL)
					c->close_after = 0;
			}
			break;
		case CONN_CHUNK_SIZE: {
			char *end;
			unsigned long v = strtoul(line, &end, 16);

			if (end == line || (*end != '\0' && *end != ';' && *end != ' ') ||
			    v > MAX_BODY || c->body_len + v > MAX_BODY) {
				snprintf(msg, msglen, "bad chunk size '%.40s'", line);
				free(line);
				return -1;
			}
			if (v == 0) {
				c->state = CONN_TRAILERS;
			} else {
				c->content_left = (long)v;
				c->state = CONN_CHUNK_DATA;
			}
			break;
		}
		case CONN_CHUNK_END:
			if (n != 0) {
				snprintf(msg, msglen, "no CRLF after a chunk");
				free(line);
				return -1;
			}
			c->state = CONN_CHUNK_SIZE;
			break;
		case CONN_TRAILERS:
			if (n == 0) {
				free(line);
				return 1;
			}
			if (++c->nheaders > MAX_HEADERS) {
				snprintf(msg, msglen, "more than %d header lines", MAX_HEADERS);
				free(line);
				return -1;
			}
			break;
		default: break;
		}
		free(line);
	}
}

/* json_string: the value of "name":"..." in a flat JSON snippet, or "". */
static void json_string(const char *json, const char *name, char *out, size_t outlen)
{
	char pat[64];
	const char *p, *q;
	size_t n;

	out[0] = '\0';
	snprintf(pat, sizeof(pat), "\"%s\":\"", name);
	p = strstr(json, pat);
	if (p == NULL)
		return;
	p += strlen(pat);
	q = strchr(p, '"');
	if (q == NULL)
		return;
	n = (size_t)(q - p);
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, p, n);
	out[n] = '\0';
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	char msg[256];
	int rv;

	rv = conn_parse(c, bufferevent_get_input(bev), msg, sizeof(msg));
	if (rv == 0)
		return;
	if (rv < 0) {
		conn_fail(c, ERR_PROTOCOL, "%s", msg);
		return;
	}
	evtimer_del(c->timer);
	c->state = CONN_IDLE;
	if (c->close_after)
		conn_close(c);
	if (c->status != 200) {
		char m[200];

		json_string(c->body, "message", m, sizeof(m));
		count_error(c->ld, c, ERR_HTTP, "HTTP %d: %s", c->status,
			    m[0] != '\0' ? m : c->body);
		request_done(c, 0);
		return;
	}
	request_done(c, 1);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	int e = EVUTIL_SOCKET_ERROR();

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		c->connecting = 0;
		return;
	}
	if (c->connecting) {
		conn_fail(c, ERR_CONNECT, "connect to %s: %s", c->ld->eps[c->ep].url,
			  (what & BEV_EVENT_ERROR) ? evutil_socket_error_to_string(e) : "closed");
		return;
	}
	if (what & BEV_EVENT_ERROR)
		conn_fail(c, ERR_CLOSED, "%s", evutil_socket_error_to_string(e));
	else
		conn_fail(c, ERR_CLOSED, "connection closed by the server");
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	if (c->state >= CONN_STATUS_LINE) {
		conn_fail(c, ERR_TIMEOUT, "no whole reply within %.0f ms", c->ld->timeout_ms);
		return;
	}
	/* a back-off after an error (put mode) has ended */
	if (c->ld->mode == MODE_PUT)
		put_next(c);
}

/* ---- put mode ---- */

static void put_finish(struct load *ld)
{
	event_base_loopexit(ld->base, NULL);
}

static void put_next(struct conn *c)
{
	struct load *ld = c->ld;

	if (ld->failed)
		return;
	if (ld->stopping) {
		if (ld->outstanding == 0)
			put_finish(ld);
		return;
	}
	if (ld->measuring && ld->count > 0 && ld->issued >= ld->count) {
		ld->stopping = 1;
		if (ld->outstanding == 0)
			put_finish(ld);
		return;
	}
	if (conn_send(c, REQ_PUT) != 0) {
		/* connect failed at once: retry after a back-off */
		struct timeval tv = {0, 100000};

		evtimer_add(c->timer, &tv);
		return;
	}
	if (ld->measuring)
		ld->issued++;
}

static void status_done(struct conn *c, int ok);
static void failover_ack(struct conn *c, double t);

static void request_done(struct conn *c, int ok)
{
	struct load *ld = c->ld;
	double t = now_s();

	ld->outstanding--;
	if (c->kind == REQ_STATUS) {
		status_done(c, ok);
		return;
	}
	if (ld->mode == MODE_FAILOVER) {
		if (ok)
			failover_ack(c, t);
		return;
	}
	if (c->measured) {
		if (ok) {
			ld->ok++;
			if (record_latency(ld, (t - c->t_sent) * 1e3) != 0)
				return;
		}
		ld->t_last = t;
	}
	if (!ok && !ld->stopping) {
		struct timeval tv = {0, 100000};

		evtimer_add(c->timer, &tv); /* back-off before the next try */
		return;
	}
	put_next(c);
}

static void warmup_cb(evutil_socket_t fd, short what, void *arg)
{
	struct load *ld = arg;

	(void)fd;
	(void)what;
	ld->measuring = 1;
	ld->t_start = now_s();
	ld->t_last = ld->t_start;
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct load *ld = arg;

	(void)fd;
	(void)what;
	ld->stopping = 1;
	if (ld->outstanding == 0)
		put_finish(ld);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct load *ld = arg;

	(void)fd;
	(void)what;
	fail(ld, "still running after %.0f s (--max-time): giving up", ld->max_time);
}

/* Leader discovery: POST /v3/maintenance/status to every endpoint; the
 * leader is the one whose own member_id is the leader it reports. */
static void status_done(struct conn *c, int ok)
{
	struct load *ld = c->ld;

	if (ok) {
		json_string(c->body, "member_id", ld->member_id[c->ep], sizeof(ld->member_id[0]));
		json_string(c->body, "leader", ld->leader_id[c->ep], sizeof(ld->leader_id[0]));
	}
	if (--ld->status_left == 0)
		event_base_loopexit(ld->base, NULL);
}

static int discover_leader(struct load *ld, struct conn *conns, char *msg, size_t msglen)
{
	int i, leader = -1;

	ld->status_left = ld->neps;
	for (i = 0; i < ld->neps; i++) {
		if (conn_send(&conns[i], REQ_STATUS) != 0)
			ld->status_left--;
	}
	if (ld->status_left > 0)
		event_base_dispatch(ld->base);
	if (ld->failed) {
		snprintf(msg, msglen, "%s", ld->err);
		return -1;
	}
	for (i = 0; i < ld->neps; i++) {
		conn_close(&conns[i]);
		if (ld->member_id[i][0] != '\0' && strcmp(ld->member_id[i], ld->leader_id[i]) == 0)
			leader = i;
	}
	if (leader < 0) {
		snprintf(msg, msglen, "no endpoint says it is the leader (maintenance/status)");
		return -1;
	}
	return leader;
}

static int run_put(struct load *ld, char *msg, size_t msglen)
{
	struct event *warm = NULL, *stop = NULL, *dl = NULL;
	struct timeval tv;
	double t_end;
	int i, rv = -1;

	if (ld->leader_only) {
		int leader = discover_leader(ld, ld->conns, msg, msglen);

		if (leader < 0)
			return -1;
		fprintf(stderr, "etcd_load: leader is %s (member %s)\n", ld->eps[leader].url,
			ld->member_id[leader]);
		ld->eps[0] = ld->eps[leader];
		ld->neps = 1;
		for (i = 0; i < ld->nconns; i++)
			ld->conns[i].ep = 0;
		memset(ld->errors, 0, sizeof(ld->errors));
		ld->errors_total = 0;
	}
	warm = evtimer_new(ld->base, warmup_cb, ld);
	stop = evtimer_new(ld->base, stop_cb, ld);
	dl = evtimer_new(ld->base, deadline_cb, ld);
	if (warm == NULL || stop == NULL || dl == NULL) {
		snprintf(msg, msglen, "evtimer_new failed");
		goto out;
	}
	ld->t_begin = now_s();
	if (ld->warmup > 0) {
		tv.tv_sec = (time_t)ld->warmup;
		tv.tv_usec = (suseconds_t)((ld->warmup - (double)tv.tv_sec) * 1e6);
		evtimer_add(warm, &tv);
	} else {
		warmup_cb(-1, 0, ld);
	}
	if (ld->duration > 0) {
		double d = ld->warmup + ld->duration;

		tv.tv_sec = (time_t)d;
		tv.tv_usec = (suseconds_t)((d - (double)tv.tv_sec) * 1e6);
		evtimer_add(stop, &tv);
	}
	tv.tv_sec = (time_t)ld->max_time;
	tv.tv_usec = 0;
	evtimer_add(dl, &tv);
	for (i = 0; i < ld->nconns; i++)
		put_next(&ld->conns[i]);
	event_base_dispatch(ld->base);
	if (ld->failed) {
		snprintf(msg, msglen, "%s", ld->err);
		goto out;
	}
	t_end = ld->t_last;
	qsort(ld->lat, ld->nlat, sizeof(double), cmp_double);
	printf("put concurrency=%d target=%s endpoints=%d value_bytes=%zu ops=%llu seconds=%.3f "
	       "ops_per_s=%.1f p50_ms=%.3f p99_ms=%.3f p99.9_ms=%.3f max_ms=%.3f errors=%llu\n",
	       ld->concurrency, ld->leader_only ? "leader" : "all", ld->neps, ld->value_size,
	       (unsigned long long)ld->ok, t_end - ld->t_start,
	       t_end > ld->t_start ? (double)ld->ok / (t_end - ld->t_start) : 0.0,
	       percentile(ld->lat, ld->nlat, 0.50), percentile(ld->lat, ld->nlat, 0.99),
	       percentile(ld->lat, ld->nlat, 0.999), ld->nlat ? ld->lat[ld->nlat - 1] : NAN,
	       (unsigned long long)ld->errors_total);
	if (ld->errors_total > 0) {
		fprintf(stderr, "etcd_load: errors:");
		for (i = 0; i < ERR_KINDS; i++)
			fprintf(stderr, " %s %llu", err_names[i],
				(unsigned long long)ld->errors[i]);
		fprintf(stderr, "\n");
	}
	rv = 0;
out:
	if (warm)
		event_free(warm);
	if (stop)
		event_free(stop);
	if (dl)
		event_free(dl);
	return rv;
}

/* ---- the script, run as a child without blocking the loop ---- */

static void child_reap(struct load *ld, int killed)
{
	struct child *ch = &ld->child;
	int st = 0, ok;
	void (*done)(struct load *, int, char *) = ch->done;

	event_free(ch->ev);
	event_free(ch->deadline);
	close(ch->fd);
	if (killed)
		kill(ch->pid, SIGKILL);
	while (waitpid(ch->pid, &st, 0) < 0 && errno == EINTR)
		;
	ok = !killed && WIFEXITED(st) && WEXITSTATUS(st) == 0;
	ch->pid = 0;
	ch->done = NULL;
	/* once the run has failed nothing may start another child (a restart
	 * after the caller stopped the cluster would leave an etcd behind) */
	if (!ld->failed)
		done(ld, ok, ch->out);
}

static void child_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct load *ld = arg;
	struct child *ch = &ld->child;
	char scratch[512];
	ssize_t n;

	(void)what;
	if (ch->len < CHILD_OUT - 1)
		n = read(fd, ch->out + ch->len, CHILD_OUT - 1 - ch->len);
	else
		n = read(fd, scratch, sizeof(scratch)); /* keep the start only */
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n > 0) {
		if (ch->len < CHILD_OUT - 1) {
			ch->len += (size_t)n;
			ch->out[ch->len] = '\0';
		}
		return;
	}
	child_reap(ld, 0);
}

static void child_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct load *ld = arg;

	(void)fd;
	(void)what;
	fprintf(stderr, "etcd_load: %s still running after %d s: killing it\n", ld->script,
		CHILD_TIMEOUT_S);
	child_reap(ld, 1);
}

/* child_start: run SCRIPT ARG... with its stdout collected; done() gets
 * ok = exited 0, and the output. */
static int child_start(struct load *ld, void (*done)(struct load *, int, char *), const char *a1,
		       const char *a2, const char *a3)
{
	struct child *ch = &ld->child;
	struct timeval tv = {CHILD_TIMEOUT_S, 0};
	int p[2];
	pid_t pid;

	if (ch->pid != 0) {
		fail(ld, "internal: a script is already running");
		return -1;
	}
	if (pipe2(p, O_CLOEXEC) != 0) {
		fail(ld, "pipe: %s", strerror(errno));
		return -1;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		fail(ld, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		dup2(p[1], 1);
		closefrom(3);
		signal(SIGPIPE, SIG_DFL);
		execl(ld->script, ld->script, a1, a2, a3, (char *)NULL);
		fprintf(stderr, "etcd_load: exec %s: %s\n", ld->script, strerror(errno));
		_exit(127);
	}
	close(p[1]);
	ch->pid = pid;
	ch->fd = p[0];
	ch->len = 0;
	ch->out[0] = '\0';
	ch->done = done;
	ch->ev = event_new(ld->base, p[0], EV_READ | EV_PERSIST, child_read_cb, ld);
	ch->deadline = evtimer_new(ld->base, child_deadline_cb, ld);
	if (ch->ev == NULL || ch->deadline == NULL) {
		if (ch->ev != NULL)
			event_free(ch->ev);
		if (ch->deadline != NULL)
			event_free(ch->deadline);
		close(p[0]);
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		ch->pid = 0;
		fail(ld, "event_new failed");
		return -1;
	}
	event_add(ch->ev, NULL);
	evtimer_add(ch->deadline, &tv);
	return 0;
}

/* run_script_sync: before the loop runs, SCRIPT CMD DIR; its first line. */
static int run_script_sync(struct load *ld, const char *cmd, char *out, size_t outlen, char *msg,
			   size_t msglen)
{
	char line[1024];
	FILE *f;
	int st;
	pid_t pid;
	int p[2];

	if (pipe2(p, O_CLOEXEC) != 0) {
		snprintf(msg, msglen, "pipe: %s", strerror(errno));
		return -1;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		snprintf(msg, msglen, "fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(p[1], 1);
		closefrom(3);
		execl(ld->script, ld->script, cmd, ld->cluster_dir, (char *)NULL);
		fprintf(stderr, "etcd_load: exec %s: %s\n", ld->script, strerror(errno));
		_exit(127);
	}
	close(p[1]);
	f = fdopen(p[0], "r");
	if (f == NULL) {
		close(p[0]);
		waitpid(pid, &st, 0);
		snprintf(msg, msglen, "fdopen: %s", strerror(errno));
		return -1;
	}
	line[0] = '\0';
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	while (fgetc(f) != EOF)
		;
	fclose(f);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		snprintf(msg, msglen, "%s %s %s failed", ld->script, cmd, ld->cluster_dir);
		return -1;
	}
	line[strcspn(line, "\n")] = '\0';
	snprintf(out, outlen, "%s", line);
	return 0;
}

/* ---- failover mode ---- */

static void round_begin(struct load *ld);
static void lookup_done(struct load *ld, int ok, char *out);
static void new_leader_done(struct load *ld, int ok, char *out);
static void restart_done(struct load *ld, int ok, char *out);

static void phase_after(struct load *ld, double s)
{
	struct timeval tv;

	tv.tv_sec = (time_t)s;
	tv.tv_usec = (suseconds_t)((s - (double)tv.tv_sec) * 1e6);
	evtimer_add(ld->phase_timer, &tv);
}

/* tick: one put every 1/rate s, round-robin over the members, each on an
 * idle connection of that member's pool (opened when needed). */
static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct load *ld = arg;
	int ep = (int)(ld->rr++ % (uint64_t)ld->neps);
	struct conn *pool = &ld->conns[ep * ld->conns_per_ep];
	struct conn *c = NULL;
	int k;

	(void)fd;
	(void)what;
	for (k = 0; k < ld->conns_per_ep; k++) {
		if (pool[k].state == CONN_IDLE && !evtimer_pending(pool[k].timer, NULL)) {
			c = &pool[k];
			break;
		}
	}
	for (k = 0; c == NULL && k < ld->conns_per_ep; k++) {
		if (pool[k].state == CONN_DOWN)
			c = &pool[k];
	}
	if (c == NULL) {
		ld->skipped++; /* every connection of this member has a request out */
		return;
	}
	conn_send(c, REQ_PUT);
}

static void failover_ack(struct conn *c, double t)
{
	struct load *ld = c->ld;

	ld->acks_since[c->ep]++;
	if (ld->rstate != ROUND_WAIT_ACK || !c->measured)
		return;
	ld->failover_ms[ld->round] = (t - ld->t_kill) * 1e3;
	ld->first_sent_ms = (c->t_sent - ld->t_kill) * 1e3;
	ld->first_ep = c->ep;
	ld->round_skipped = ld->skipped - ld->skipped_at_kill;
	ld->round_errors = ld->errors_total - ld->errors_at_kill;
	ld->round_pending = ld->outstanding;
	evtimer_del(ld->phase_timer);
	if (ld->given_pid > 0) {
		printf("failover %d/%d: killed pid %d; first put acknowledged %.1f ms later (sent "
		       "+%.1f ms, to %s); meanwhile %llu failed, %llu skipped, %llu pending\n",
		       ld->round + 1, ld->rounds, (int)ld->victim_pid, ld->failover_ms[ld->round],
		       ld->first_sent_ms, ep_label(ld, ld->first_ep),
		       (unsigned long long)ld->round_errors, (unsigned long long)ld->round_skipped,
		       (unsigned long long)ld->round_pending);
		ld->round++;
		event_base_loopexit(ld->base, NULL);
		return;
	}
	ld->rstate = ROUND_NEW_LEADER;
	child_start(ld, new_leader_done, "leader", ld->cluster_dir, NULL);
}

static void new_leader_done(struct load *ld, int ok, char *out)
{
	char name[32] = "?";

	if (ok)
		sscanf(out, "%31s", name);
	printf("failover %d/%d: killed leader %s (pid %d); first put acknowledged %.1f ms later "
	       "(sent +%.1f ms, to %s); new leader %s; meanwhile %llu failed, %llu skipped, "
	       "%llu pending\n",
	       ld->round + 1, ld->rounds, ld->victim, (int)ld->victim_pid,
	       ld->failover_ms[ld->round], ld->first_sent_ms, ep_label(ld, ld->first_ep), name,
	       (unsigned long long)ld->round_errors, (unsigned long long)ld->round_skipped,
	       (unsigned long long)ld->round_pending);
	fflush(stdout);
	ld->rstate = ROUND_RESTART;
	child_start(ld, restart_done, "restart", ld->victim, ld->cluster_dir);
}

static void restart_done(struct load *ld, int ok, char *out)
{
	(void)out;
	if (!ok) {
		fail(ld, "restart of %s failed (its log is in %s/%s.log)", ld->victim,
		     ld->cluster_dir, ld->victim);
		return;
	}
	ld->round++;
	if (ld->round == ld->rounds) {
		event_base_loopexit(ld->base, NULL);
		return;
	}
	round_begin(ld);
}

static void round_begin(struct load *ld)
{
	memset(ld->acks_since, 0, sizeof(ld->acks_since));
	ld->rstate = ROUND_SETTLE;
	ld->t_round = now_s();
	phase_after(ld, ld->settle);
}

/* phase_cb: the end of a settle period, or a round that never got its ack. */
static void phase_cb(evutil_socket_t fd, short what, void *arg)
{
	struct load *ld = arg;
	int i;

	(void)fd;
	(void)what;
	if (ld->rstate == ROUND_WAIT_ACK) {
		fail(ld, "round %d: no put acknowledged within %.0f s of killing %s", ld->round + 1,
		     ld->failover_timeout, ld->victim);
		return;
	}
	if (ld->rstate != ROUND_SETTLE)
		return;
	/* every member must have acknowledged puts before its leader is killed */
	for (i = 0; i < ld->neps; i++) {
		if (ld->acks_since[i] == 0)
			break;
	}
	if (i < ld->neps) {
		if (now_s() - ld->t_round > ld->settle + 20) {
			fail(ld, "round %d: %s acknowledged no put in %.0f s", ld->round + 1,
			     ep_label(ld, i), ld->settle + 20);
			return;
		}
		memset(ld->acks_since, 0, sizeof(ld->acks_since));
		phase_after(ld, 1);
		return;
	}
	if (ld->given_pid > 0) {
		ld->victim_pid = ld->given_pid;
		snprintf(ld->victim, sizeof(ld->victim), "pid %d", (int)ld->given_pid);
		ld->rstate = ROUND_WAIT_ACK;
		ld->skipped_at_kill = ld->skipped;
		ld->errors_at_kill = ld->errors_total;
		ld->t_kill = now_s();
		if (kill(ld->victim_pid, SIGKILL) != 0) {
			fail(ld, "kill -9 %d: %s", (int)ld->victim_pid, strerror(errno));
			return;
		}
		phase_after(ld, ld->failover_timeout);
		return;
	}
	ld->rstate = ROUND_LOOKUP;
	child_start(ld, lookup_done, "leader", ld->cluster_dir, NULL);
}

/* lookup_done: "NAME URL PID" of the leader; kill it now. */
static void lookup_done(struct load *ld, int ok, char *out)
{
	char name[32], url[128];
	int pid;

	if (!ok || sscanf(out, "%31s %127s %d", name, url, &pid) != 3 || pid <= 1) {
		fail(ld, "round %d: '%s leader %s' gave no leader ('%.100s')", ld->round + 1,
		     ld->script, ld->cluster_dir, out);
		return;
	}
	snprintf(ld->victim, sizeof(ld->victim), "%s", name);
	ld->victim_pid = pid;
	ld->rstate = ROUND_WAIT_ACK;
	ld->skipped_at_kill = ld->skipped;
	ld->errors_at_kill = ld->errors_total;
	ld->t_kill = now_s();
	if (kill(pid, SIGKILL) != 0) {
		fail(ld, "kill -9 %d (%s): %s", pid, name, strerror(errno));
		return;
	}
	phase_after(ld, ld->failover_timeout);
}

static int run_failover(struct load *ld, char *msg, size_t msglen)
{
	struct timeval tv;
	double sorted[MAX_ROUNDS];
	int i;

	ld->tick = event_new(ld->base, -1, EV_PERSIST, tick_cb, ld);
	ld->phase_timer = evtimer_new(ld->base, phase_cb, ld);
	ld->deadline = evtimer_new(ld->base, deadline_cb, ld);
	if (ld->tick == NULL || ld->phase_timer == NULL || ld->deadline == NULL) {
		snprintf(msg, msglen, "event_new failed");
		return -1;
	}
	tv.tv_sec = 0;
	tv.tv_usec = (suseconds_t)(1e6 / ld->rate);
	evtimer_add(ld->tick, &tv);
	tv.tv_sec = (time_t)ld->max_time;
	tv.tv_usec = 0;
	evtimer_add(ld->deadline, &tv);
	round_begin(ld);
	event_base_dispatch(ld->base);
	event_del(ld->tick);
	if (ld->child.pid != 0)
		child_reap(ld, 1);
	if (ld->round > 0) {
		memcpy(sorted, ld->failover_ms, (size_t)ld->round * sizeof(double));
		qsort(sorted, (size_t)ld->round, sizeof(double), cmp_double);
		printf("failover rounds=%d median_ms=%.1f min_ms=%.1f max_ms=%.1f rate=%.0f "
		       "skipped=%llu",
		       ld->round,
		       ld->round % 2 ? sorted[ld->round / 2]
				     : (sorted[ld->round / 2 - 1] + sorted[ld->round / 2]) / 2,
		       sorted[0], sorted[ld->round - 1], ld->rate, (unsigned long long)ld->skipped);
		for (i = 0; i < ERR_KINDS; i++)
			printf(" %s_errors=%llu", err_names[i], (unsigned long long)ld->errors[i]);
		printf("\n");
	}
	if (ld->failed) {
		snprintf(msg, msglen, "%s", ld->err);
		return -1;
	}
	return 0;
}

/* ---- main ---- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: etcd_load put --endpoints URL[,URL...] [--concurrency C] [--leader-only]\n"
		"                     [--count N | --duration S] [--warmup S] [--value-size B]\n"
		"                     [--timeout MS] [--max-errors E] [--max-time S]\n"
		"       etcd_load failover --cluster DIR --script etcd_cluster.sh [--rounds R]\n"
		"                     [--rate PUTS_PER_S] [--pool P] [--settle S] [--timeout MS]\n"
		"                     [--failover-timeout S] [--max-time S]\n"
		"       etcd_load failover --endpoints URL,... --pid PID   (one round, no "
		"restart)\n"
		"put: C connections with one request out each; one line of figures at the end.\n"
		"failover: time from kill -9 of the leader to the first acknowledged put sent "
		"after "
		"it.\n"
		"--cluster DIR --script S also gives put its endpoints (S endpoints DIR).\n"
		"--verbose prints every error, not only the first %d of each kind.\n",
		ERRORS_SHOWN);
}

static int parse_double(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi))
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	static struct load L;
	struct load *ld = &L;
	const char *endpoints = NULL;
	char msg[600];
	unsigned char *value = NULL;
	uint64_t x;
	size_t i;
	int a, rv = 1;

	if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "put") == 0)
		ld->mode = MODE_PUT;
	else if (strcmp(argv[1], "failover") == 0)
		ld->mode = MODE_FAILOVER;
	else {
		fprintf(stderr, "etcd_load: unknown mode '%s' (put or failover)\n", argv[1]);
		return 2;
	}
	ld->concurrency = 16;
	ld->warmup = 1;
	ld->timeout_ms = 10000; /* above etcd's own 7 s request timeout */
	ld->max_errors = 100;
	ld->value_size = 512;
	ld->rounds = 10;
	ld->rate = 150;
	ld->pool = 512;
	ld->settle = 3;
	ld->failover_timeout = 30;
	for (a = 2; a < argc; a++) {
		const char *o = argv[a], *v = a + 1 < argc ? argv[a + 1] : NULL;
		double d;
		int bad = 0;

		if (strcmp(o, "--leader-only") == 0) {
			ld->leader_only = 1;
			continue;
		}
		if (strcmp(o, "--verbose") == 0) {
			ld->verbose = 1;
			continue;
		}
		if (v == NULL) {
			fprintf(stderr, "etcd_load: %s wants a value\n", o);
			return 2;
		}
		a++;
		if (strcmp(o, "--endpoints") == 0)
			endpoints = v;
		else if (strcmp(o, "--cluster") == 0)
			ld->cluster_dir = v;
		else if (strcmp(o, "--script") == 0)
			ld->script = v;
		else if (strcmp(o, "--concurrency") == 0)
			bad = parse_double(v, 1, MAX_CONNS, &d) || (ld->concurrency = (int)d, 0);
		else if (strcmp(o, "--count") == 0)
			bad = parse_double(v, 1, 1e9, &d) || (ld->count = (uint64_t)d, 0);
		else if (strcmp(o, "--duration") == 0)
			bad = parse_double(v, 0.1, 86400, &ld->duration);
		else if (strcmp(o, "--warmup") == 0)
			bad = parse_double(v, 0, 3600, &ld->warmup);
		else if (strcmp(o, "--value-size") == 0)
			bad = parse_double(v, 1, 1 << 20, &d) || (ld->value_size = (size_t)d, 0);
		else if (strcmp(o, "--timeout") == 0)
			bad = parse_double(v, 1, 600000, &ld->timeout_ms);
		else if (strcmp(o, "--max-errors") == 0)
			bad = parse_double(v, 0, 1e12, &d) || (ld->max_errors = (uint64_t)d, 0);
		else if (strcmp(o, "--max-time") == 0)
			bad = parse_double(v, 1, 86400, &ld->max_time);
		else if (strcmp(o, "--rounds") == 0)
			bad = parse_double(v, 1, MAX_ROUNDS, &d) || (ld->rounds = (int)d, 0);
		else if (strcmp(o, "--rate") == 0)
			bad = parse_double(v, 1, 100000, &ld->rate);
		else if (strcmp(o, "--pool") == 0)
			bad = parse_double(v, 1, 1024, &d) || (ld->pool = (int)d, 0);
		else if (strcmp(o, "--settle") == 0)
			bad = parse_double(v, 0.5, 600, &ld->settle);
		else if (strcmp(o, "--failover-timeout") == 0)
			bad = parse_double(v, 1, 600, &ld->failover_timeout);
		else if (strcmp(o, "--pid") == 0)
			bad = parse_double(v, 2, 1 << 30, &d) || (ld->given_pid = (pid_t)d, 0);
		else {
			fprintf(stderr, "etcd_load: unknown option %s\n", o);
			usage(stderr);
			return 2;
		}
		if (bad) {
			fprintf(stderr, "etcd_load: %s %s: bad or out-of-range value\n", o, v);
			return 2;
		}
	}
	if (ld->count > 0 && ld->duration > 0) {
		fprintf(stderr, "etcd_load: --count and --duration exclude each other\n");
		return 2;
	}
	if (ld->mode == MODE_PUT && ld->count == 0 && ld->duration == 0)
		ld->duration = 10;
	if (ld->mode == MODE_FAILOVER && ld->given_pid > 0) {
		ld->rounds = 1;
		if (endpoints == NULL) {
			fprintf(stderr, "etcd_load: failover --pid wants --endpoints\n");
			return 2;
		}
	} else if (ld->mode == MODE_FAILOVER && (ld->cluster_dir == NULL || ld->script == NULL)) {
		fprintf(stderr, "etcd_load: failover wants --cluster DIR and --script PATH "
				"(or --endpoints and --pid)\n");
		return 2;
	}
	if (ld->max_time == 0) {
		if (ld->mode == MODE_FAILOVER)
			ld->max_time = ld->rounds * (ld->settle + ld->failover_timeout + 30 +
						     2.0 * CHILD_TIMEOUT_S);
		else if (ld->duration > 0)
			ld->max_time = ld->warmup + ld->duration + ld->timeout_ms / 1000 + 30;
		else
			ld->max_time = 3600;
	}
	signal(SIGPIPE, SIG_IGN);

	if (endpoints == NULL && ld->cluster_dir != NULL && ld->script != NULL) {
		static char list[1024];

		if (run_script_sync(ld, "endpoints", list, sizeof(list), msg, sizeof(msg)) != 0)
			goto err;
		endpoints = list;
	}
	if (endpoints == NULL) {
		fprintf(stderr,
			"etcd_load: no endpoints (--endpoints, or --cluster and --script)\n");
		return 2;
	}
	if (parse_endpoints(ld, endpoints, msg, sizeof(msg)) != 0)
		goto err;
	if (ld->mode == MODE_FAILOVER && ld->cluster_dir != NULL) {
		/* etcd_cluster.sh names the members m0, m1, m2 in endpoint order */
		for (a = 0; a < ld->neps; a++)
			snprintf(ld->eps[a].name, sizeof(ld->eps[a].name), "m%d", a);
	}

	ld->base = event_base_new();
	if (ld->base == NULL) {
		snprintf(msg, sizeof(msg), "event_base_new failed");
		goto err;
	}
	snprintf(ld->run_id, sizeof(ld->run_id), "%x-%lx", (unsigned)getpid(), (long)time(NULL));
	/* a 128-dim float32 vector's worth of bytes, not compressible */
	value = malloc(ld->value_size);
	ld->value_b64 = malloc((ld->value_size + 2) / 3 * 4 + 1);
	if (value == NULL || ld->value_b64 == NULL) {
		snprintf(msg, sizeof(msg), "out of memory");
		goto err;
	}
	x = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	for (i = 0; i < ld->value_size; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		value[i] = (unsigned char)(x >> 24);
	}
	ld->value_b64_len = b64_encode(value, ld->value_size, ld->value_b64);

	if (ld->mode == MODE_PUT) {
		ld->nconns = ld->concurrency > ld->neps ? ld->concurrency : ld->neps;
	} else {
		ld->conns_per_ep = ld->pool;
		ld->nconns = ld->neps * ld->pool;
	}
	ld->conns = calloc((size_t)ld->nconns, sizeof(*ld->conns));
	if (ld->conns == NULL) {
		snprintf(msg, sizeof(msg), "out of memory");
		goto err;
	}
	for (a = 0; a < ld->nconns; a++) {
		struct conn *c = &ld->conns[a];

		c->ld = ld;
		c->id = a;
		c->ep = ld->mode == MODE_PUT ? a % ld->neps : a / ld->conns_per_ep;
		c->timer = evtimer_new(ld->base, conn_timer_cb, c);
		if (c->timer == NULL) {
			snprintf(msg, sizeof(msg), "evtimer_new failed");
			goto err;
		}
	}
	if (ld->mode == MODE_PUT) {
		ld->nconns = ld->concurrency;
		if (run_put(ld, msg, sizeof(msg)) != 0)
			goto err;
	} else {
		if (run_failover(ld, msg, sizeof(msg)) != 0)
			goto err;
	}
	rv = 0;
	goto out;
err:
	fprintf(stderr, "etcd_load: %s\n", msg);
out:
	if (ld->conns != NULL) {
		int total = ld->mode == MODE_PUT
				    ? (ld->concurrency > ld->neps ? ld->concurrency : ld->neps)
				    : ld->neps * ld->pool;

		for (a = 0; a < total; a++) {
			conn_close(&ld->conns[a]);
			if (ld->conns[a].timer != NULL)
				event_free(ld->conns[a].timer);
		}
		free(ld->conns);
	}
	if (ld->tick)
		event_free(ld->tick);
	if (ld->phase_timer)
		event_free(ld->phase_timer);
	if (ld->deadline)
		event_free(ld->deadline);
	free(value);
	free(ld->value_b64);
	free(ld->lat);
	if (ld->base)
		event_base_free(ld->base);
	return rv;
}
