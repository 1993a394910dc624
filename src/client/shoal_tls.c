/*
 * shoal_tls: libshoal's TLS (doc/security.md, "TLS for clients"), over
 * the handle's non-blocking socket, driven with poll(2) like the rest.
 *
 * With shoal_options.tls_ca_file (default: the environment's SHOAL_TLS_CA)
 * the handle speaks TLS (1.2 at least) and verifies the server's
 * certificate against that CA and its name against the host of the address
 * (or tls_server_name); tls_cert_file and tls_key_file give a client
 * certificate for nodes that ask for one.
 */
#include "build.h"

#include "client/shoal_impl.h"

#include "util/alloc.h"
#include "util/clock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* OpenSSL writes to the socket with write(2): a peer that closed would
 * raise SIGPIPE in the caller's process (the plaintext path sends with
 * MSG_NOSIGNAL).  Around each OpenSSL call SIGPIPE is blocked for this
 * thread, and one it raised is consumed before it is unblocked. */
struct no_pipe {
	sigset_t old;
	bool pending; /* a SIGPIPE of the caller's own was pending already */
};

static void no_pipe_on(struct no_pipe *g)
{
	sigset_t pipe, pend;

	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	sigpending(&pend);
	g->pending = sigismember(&pend, SIGPIPE) == 1;
	pthread_sigmask(SIG_BLOCK, &pipe, &g->old);
}

static void no_pipe_off(struct no_pipe *g)
{
	sigset_t pipe, pend;
	struct timespec zero = {0, 0};
	int e = errno;

	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	sigpending(&pend);
	if (!g->pending && sigismember(&pend, SIGPIPE) == 1)
		sigtimedwait(&pipe, NULL, &zero);
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
	errno = e;
}

static const char *reason(char *buf, size_t size)
{
	unsigned long e = ERR_get_error();

	if (e == 0)
		return "no reason given";
	ERR_error_string_n(e, buf, size);
	ERR_clear_error();
	return buf;
}

int cl_tls_init(shoal *c)
{
	const struct shoal_options *o = &c->o;
	char why[256];

	if (o->tls_ca_file == NULL || o->tls_ca_file[0] == '\0') {
		if ((o->tls_cert_file != NULL && o->tls_cert_file[0] != '\0') ||
		    (o->tls_key_file != NULL && o->tls_key_file[0] != '\0') ||
		    (o->tls_server_name != NULL && o->tls_server_name[0] != '\0'))
			return cl_fail(c, SHOAL_INVALID_ARGUMENT,
				       "TLS options without a CA (tls_ca_file, shoalctl --tls-ca): "
				       "TLS needs the CA to verify the node; nothing was sent");
		return SHOAL_OK;
	}
	if ((c->tls = SSL_CTX_new(TLS_client_method())) == NULL)
		return cl_fail(c, SHOAL_RESOURCE_EXHAUSTED, "TLS: out of memory");
	SSL_CTX_set_min_proto_version(c->tls, TLS1_2_VERSION);
	SSL_CTX_set_mode(c->tls,
			 SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_verify(c->tls, SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_load_verify_locations(c->tls, o->tls_ca_file, NULL) != 1)
		return cl_fail(c, SHOAL_INVALID_ARGUMENT, "TLS CA file %s: %s", o->tls_ca_file,
			       reason(why, sizeof why));
	if (o->tls_cert_file != NULL && o->tls_cert_file[0] != '\0' &&
	    SSL_CTX_use_certificate_chain_file(c->tls, o->tls_cert_file) != 1)
		return cl_fail(c, SHOAL_INVALID_ARGUMENT, "TLS certificate file %s: %s",
			       o->tls_cert_file, reason(why, sizeof why));
	if (o->tls_key_file != NULL && o->tls_key_file[0] != '\0' &&
	    (SSL_CTX_use_PrivateKey_file(c->tls, o->tls_key_file, SSL_FILETYPE_PEM) != 1 ||
	     SSL_CTX_check_private_key(c->tls) != 1))
		return cl_fail(c, SHOAL_INVALID_ARGUMENT, "TLS key file %s: %s", o->tls_key_file,
			       reason(why, sizeof why));
	return SHOAL_OK;
}

void cl_tls_free(shoal *c)
{
	cl_tls_close(c);
	SSL_CTX_free(c->tls);
	c->tls = NULL;
}

void cl_tls_close(shoal *c)
{
	SSL_free(c->ssl);
	c->ssl = NULL;
}

/* The name the certificate must carry: an IP address or a DNS name. */
static int set_name(shoal *c, const char *host)
{
	const char *name = c->o.tls_server_name != NULL && c->o.tls_server_name[0] != '\0'
				   ? c->o.tls_server_name
				   : host;
	unsigned char ip[16];

	if (inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1)
		return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), name) == 1 ? 0 : -1;
	SSL_set_tlsext_host_name(c->ssl, name);
	return SSL_set1_host(c->ssl, name) == 1 ? 0 : -1;
}

static int handshake_failed(shoal *c, const char *addr, int r)
{
	char why[256];
	long v = SSL_get_verify_result(c->ssl);
	int e = SSL_get_error(c->ssl, r);

	if (v != X509_V_OK) {
		ERR_clear_error();
		return cl_fail(c, SHOAL_UNAVAILABLE,
			       "TLS handshake with %s failed: the server's certificate: %s", addr,
			       X509_verify_cert_error_string(v));
	}
	if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN) {
		ERR_clear_error();
		return cl_fail(c, SHOAL_UNAVAILABLE,
			       "TLS handshake with %s failed: the connection closed (is TLS on "
			       "that port? a node asks for a client certificate with "
			       "security.tls_client_ca_file)",
			       addr);
	}
	return cl_fail(c, SHOAL_UNAVAILABLE,
		       "TLS handshake with %s failed: %s (is TLS on that port, "
		       "security.tls_cert_file?)",
		       addr, reason(why, sizeof why));
}

int cl_tls_handshake(shoal *c, const char *addr, const char *host, uint64_t deadline_ns)
{
	int r, e;

	if (c->tls == NULL)
		return SHOAL_OK;
	c->tls_refused = false;
	if ((c->ssl = SSL_new(c->tls)) == NULL || SSL_set_fd(c->ssl, c->fd) != 1 ||
	    set_name(c, host) != 0)
		return cl_fail(c, SHOAL_RESOURCE_EXHAUSTED, "TLS: out of memory");
	ERR_clear_error();
	for (;;) {
		struct no_pipe g;
		short ev;

		ERR_clear_error();
		no_pipe_on(&g);
		r = SSL_connect(c->ssl);
		no_pipe_off(&g);
		if (r == 1)
			break;
		e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_WANT_READ)
			ev = POLLIN;
		else if (e == SSL_ERROR_WANT_WRITE)
			ev = POLLOUT;
		else
			return handshake_failed(c, addr, r);
		if (cl_poll(c->fd, ev, deadline_ns) <= 0)
			return cl_fail(c, SHOAL_UNAVAILABLE,
				       "TLS handshake with %s: no answer in time (is TLS on that "
				       "port?)",
				       addr);
	}
	return SHOAL_OK;
}

/* Did the node refuse our certificate (or its absence)?  With TLS 1.3 the
 * client learns it after its handshake ends, when the node's alert comes:
 * the node read nothing of ours (t/tls.sh). */
static bool cert_refused(unsigned long e)
{
	if (ERR_GET_LIB(e) != ERR_LIB_SSL)
		return false;
	switch (ERR_GET_REASON(e)) {
	case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
	case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
	case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
	case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
	case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
	case SSL_R_TLSV1_ALERT_DECRYPT_ERROR: return true;
	default: return false;
	}
}

/* SSL_write/SSL_read's outcome as send/recv's: bytes, 0 at the end, or -1
 * with errno (EAGAIN when it would block). */
static ssize_t outcome(shoal *c, int r)
{
	int e;

	if (r > 0)
		return r;
	e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		errno = EAGAIN;
		return -1;
	}
	if (e == SSL_ERROR_ZERO_RETURN)
		return 0;
	if (e == SSL_ERROR_SSL && cert_refused(ERR_peek_error()))
		c->tls_refused = true;
	if (e != SSL_ERROR_SYSCALL || errno == 0)
		errno = EPROTO;
	ERR_clear_error();
	return -1;
}

ssize_t cl_tls_send(shoal *c, const void *buf, size_t len)
{
	struct no_pipe g;
	int r;

	ERR_clear_error(); /* a stale error would turn WANT_* into SSL_ERROR_SSL */
	no_pipe_on(&g);
	r = SSL_write(c->ssl, buf, (int)(len > INT32_MAX ? INT32_MAX : len));
	no_pipe_off(&g);
	return outcome(c, r);
}

ssize_t cl_tls_recv(shoal *c, void *buf, size_t len)
{
	struct no_pipe g;
	int r;

	ERR_clear_error();
	no_pipe_on(&g);
	r = SSL_read(c->ssl, buf, (int)(len > INT32_MAX ? INT32_MAX : len));
	no_pipe_off(&g);
	return outcome(c, r);
}

bool cl_tls_pending(const shoal *c)
{
	return c->ssl != NULL && SSL_pending(c->ssl) > 0;
}
