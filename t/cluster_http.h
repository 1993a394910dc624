/*
 * cluster_http: a small blocking HTTP/1.1 client for the real-process
 * tests (t/cluster_client.c): one keep-alive connection per struct
 * http_conn, one request at a time, every step bounded by the request's
 * deadline (poll on a non-blocking socket).  It says exactly how far a
 * request went, which a history recorder needs to classify an outcome:
 *
 *   HTTP_ANSWERED  a complete response arrived (*code, body);
 *   HTTP_NOT_SENT  the server cannot have acted on the request: the
 *                  connection could not be made, or sending failed before
 *                  the request's last byte (a server runs nothing on a
 *                  partial request);
 *   HTTP_NO_ANSWER the whole request was sent, and no complete response
 *                  came back (timeout, connection closed or reset).
 *
 * A kept connection the server has closed (EOF or a reset waiting on it)
 * is noticed before sending and replaced, so that a request is not lost
 * on a dead socket.  After anything but a complete response the
 * connection is closed (a late answer must not be read as the next one's).
 *
 * Not thread-safe: one struct per thread.
 */
#ifndef SHOAL_T_CLUSTER_HTTP_H
#define SHOAL_T_CLUSTER_HTTP_H

#include <stddef.h>

enum http_result { HTTP_ANSWERED = 0, HTTP_NOT_SENT = -1, HTTP_NO_ANSWER = -2 };

struct http_conn {
	char host[64];
	int port;
	int fd;
};

/* addr is "HOST:PORT" (IPv4); returns 0, or -1 when malformed. */
int http_init(struct http_conn *c, const char *addr);
void http_close(struct http_conn *c);

/* Send METHOD PATH with body (JSON, may be NULL) and wait for the answer,
 * within timeout_ms in all (connect_ms at most to connect).  On
 * HTTP_ANSWERED, *code is the HTTP status and *resp the body (malloc'd,
 * NUL-terminated, the caller frees it).  why gets a message otherwise. */
int http_request(struct http_conn *c, const char *method, const char *path, const char *body,
		 int timeout_ms, int connect_ms, int *code, char **resp, char *why,
		 size_t why_size);

#endif
