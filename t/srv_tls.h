/*
 * srv_tls: the server tests over TLS (t/server_bad_tls.sh).  With
 * SHOAL_TEST_TLS=DIR in the environment (DIR made by
 * contrib/tls/make-certs.sh: ca.pem, node.pem, node.key), srv.h starts
 * shoald with TLS on its client and REST ports and raw_connect hands the
 * test one end of a socketpair whose other end a thread bridges to a TLS
 * connection to the port: every byte a test writes, well-formed or
 * hostile, reaches the node inside TLS, and the node closing its end
 * closes the test's.  Included by srv.h only.
 */
#ifndef SHOAL_T_SRV_TLS_H
#define SHOAL_T_SRV_TLS_H

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

static __attribute__((unused)) const char *srv_tls_dir(void)
{
	const char *d = getenv("SHOAL_TEST_TLS");

	return d != NULL && d[0] != '\0' ? d : NULL;
}

struct srv_bridge {
	SSL *ssl;
	int tcp, pair;
};

/* One direction's worth of what is there; false at the end of either. */
static __attribute__((unused)) bool srv_bridge_turn(struct srv_bridge *b)
{
	struct pollfd p[2] = {{b->pair, POLLIN, 0}, {b->tcp, POLLIN, 0}};
	char buf[16384];
	int n;

	if (SSL_pending(b->ssl) == 0 && poll(p, 2, 1000) < 0)
		return false;
	if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
		ssize_t r = recv(b->pair, buf, sizeof buf, 0);

		if (r <= 0 || SSL_write(b->ssl, buf, (int)r) <= 0)
			return false;
	}
	if (SSL_pending(b->ssl) > 0 || (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
		if ((n = SSL_read(b->ssl, buf, sizeof buf)) <= 0)
			return false;
		if (send(b->pair, buf, (size_t)n, MSG_NOSIGNAL) != n)
			return false;
	}
	return true;
}

static __attribute__((unused)) void *srv_bridge_run(void *arg)
{
	struct srv_bridge *b = arg;

	while (srv_bridge_turn(b))
		;
	SSL_free(b->ssl);
	close(b->tcp);
	close(b->pair);
	free(b);
	return NULL;
}

/* fd connected to a TLS port -> the test's end of a bridge, or -1. */
static __attribute__((unused)) int srv_tls_wrap(int fd)
{
	static SSL_CTX *ctx;
	struct srv_bridge *b = calloc(1, sizeof *b);
	char ca[600];
	int sv[2] = {-1, -1};
	pthread_t t;

	if (ctx == NULL) {
		signal(SIGPIPE, SIG_IGN); /* OpenSSL writes with write(2) */
		snprintf(ca, sizeof ca, "%s/ca.pem", srv_tls_dir());
		ctx = SSL_CTX_new(TLS_client_method());
		if (ctx == NULL || SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)
			return close(fd), free(b), -1;
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		SSL_CTX_set_mode(ctx, SSL_MODE_AUTO_RETRY);
	}
	if (b == NULL || (b->ssl = SSL_new(ctx)) == NULL || SSL_set_fd(b->ssl, fd) != 1 ||
	    SSL_connect(b->ssl) != 1 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
		if (b != NULL)
			SSL_free(b->ssl);
		free(b);
		close(fd);
		return -1;
	}
	b->tcp = fd;
	b->pair = sv[1];
	if (pthread_create(&t, NULL, srv_bridge_run, b) != 0) {
		SSL_free(b->ssl);
		free(b);
		close(fd);
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	pthread_detach(t);
	return sv[0];
}

#endif
