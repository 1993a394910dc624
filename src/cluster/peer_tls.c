/*
 * peer_tls: see peer_tls.h.
 */
#include "build.h"

#include "cluster/peer_tls.h"

#include "cluster/keyring.h"
#include "util/alloc.h"
#include "util/tlsfile.h"

#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define SUITE           "TLS_AES_256_GCM_SHA384"
#define PTLS_UNDER_HIGH (256 * 1024)

struct ptls {
	struct keyring *kr; /* keyed by the keyring, or (NULL) by certificates */
	SSL_CTX *client, *server;
	char id[KEYRING_FP + 1]; /* the identity the client offers */
};

static const unsigned char suite_id[2] = {0x13, 0x02}; /* TLS_AES_256_GCM_SHA384 */

/* A resumption-style session whose secret is key's PSK. */
static SSL_SESSION *psk_session(SSL *ssl, const uint8_t *key)
{
	const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, suite_id);
	SSL_SESSION *s = SSL_SESSION_new();
	uint8_t psk[32];

	keyring_psk(key, psk);
	if (s == NULL || cipher == NULL || SSL_SESSION_set1_master_key(s, psk, sizeof psk) != 1 ||
	    SSL_SESSION_set_cipher(s, cipher) != 1 ||
	    SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION) != 1) {
		SSL_SESSION_free(s);
		s = NULL;
	}
	explicit_bzero(psk, sizeof psk);
	return s;
}

static struct ptls *of(SSL *ssl)
{
	return SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
}

static int use_session(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *idlen,
		       SSL_SESSION **sess)
{
	struct ptls *t = of(ssl);
	const uint8_t *key = keyring_key(t->kr, 0);

	(void)md; /* one suite, so md is always its SHA-384 */
	*sess = NULL;
	if (key == NULL)
		return 1; /* no key: the handshake fails */
	keyring_fingerprint(key, t->id);
	*id = (const unsigned char *)t->id;
	*idlen = KEYRING_FP;
	*sess = psk_session(ssl, key);
	return *sess != NULL;
}

static int find_session(SSL *ssl, const unsigned char *id, size_t idlen, SSL_SESSION **sess)
{
	struct ptls *t = of(ssl);
	char fp[KEYRING_FP + 1];

	*sess = NULL;
	if (idlen != KEYRING_FP)
		return 1; /* unknown identity: no PSK, the handshake fails */
	for (size_t i = 0; i < keyring_count(t->kr); i++) {
		keyring_fingerprint(keyring_key(t->kr, i), fp);
		if (memcmp(fp, id, KEYRING_FP) == 0) {
			*sess = psk_session(ssl, keyring_key(t->kr, i));
			return *sess != NULL;
		}
	}
	return 1;
}

/* A client never accepts a certificate: a server that ignores the PSK and
 * offers one instead (a process without the key) fails the handshake. */
static int refuse_certificate(int preverify, X509_STORE_CTX *store)
{
	(void)preverify;
	(void)store;
	return 0;
}

static SSL_CTX *ctx_new(struct ptls *t, bool server)
{
	SSL_CTX *c = sh_tls_ctx_new(server, TLS1_3_VERSION);

	if (c == NULL)
		return NULL;
	SSL_CTX_set_app_data(c, t);
	if (SSL_CTX_set_ciphersuites(c, SUITE) != 1) {
		SSL_CTX_free(c);
		return NULL;
	}
	if (server) {
		SSL_CTX_set_psk_find_session_callback(c, find_session);
	} else {
		SSL_CTX_set_psk_use_session_callback(c, use_session);
		SSL_CTX_set_verify(c, SSL_VERIFY_PEER, refuse_certificate);
	}
	return c;
}

/* Contexts that authenticate both ends by certificates of the cluster CA:
 * each presents its own, each verifies the other's (no name: any
 * certificate the CA signed is a node of the cluster). */
static int certs_ctx(struct ptls *t, bool server, const struct ptls_certs *f, SSL_CTX **out,
		     struct sh_err *err)
{
	SSL_CTX *c = sh_tls_ctx_new(server, TLS1_3_VERSION);
	int rv;

	if (c == NULL)
		return sh_err_set(err, SH_ENOMEM, "peer TLS: out of memory");
	SSL_CTX_set_app_data(c, t);
	SSL_CTX_set_verify(c, SSL_VERIFY_PEER | (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
			   NULL);
	if ((rv = sh_tls_use_cert_key(c, f->cert, f->key, err)) != 0 ||
	    (rv = sh_tls_use_ca(c, f->ca, server, err)) != 0) {
		SSL_CTX_free(c);
		return sh_err_wrap(err, rv, "peer TLS");
	}
	*out = c;
	return 0;
}

int ptls_new_certs(const struct ptls_certs *f, struct ptls **out, struct sh_err *err)
{
	struct ptls *t = sh_calloc(1, sizeof *t);
	int rv;

	if (t == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	if ((rv = certs_ctx(t, false, f, &t->client, err)) != 0 ||
	    (rv = certs_ctx(t, true, f, &t->server, err)) != 0) {
		ptls_free(t);
		return rv;
	}
	*out = t;
	return 0;
}

int ptls_reload_certs(struct ptls *t, const struct ptls_certs *f, struct sh_err *err)
{
	SSL_CTX *client, *server;
	int rv;

	if (t->kr != NULL)
		return sh_err_set(err, SH_EINVAL, "peer links are keyed by the keyring");
	if ((rv = certs_ctx(t, false, f, &client, err)) != 0)
		return rv;
	if ((rv = certs_ctx(t, true, f, &server, err)) != 0) {
		SSL_CTX_free(client);
		return rv;
	}
	SSL_CTX_free(t->client); /* links made with them hold their own references */
	SSL_CTX_free(t->server);
	t->client = client;
	t->server = server;
	return 0;
}

int ptls_new(struct keyring *kr, struct ptls **out, struct sh_err *err)
{
	struct ptls *t = sh_calloc(1, sizeof *t);

	if (t == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	t->kr = kr;
	t->client = ctx_new(t, false);
	t->server = ctx_new(t, true);
	if (t->client == NULL || t->server == NULL) {
		ptls_free(t);
		return sh_err_set(err, SH_EIO, "peer TLS: OpenSSL cannot make a TLS 1.3 context");
	}
	*out = t;
	return 0;
}

void ptls_free(struct ptls *t)
{
	if (t == NULL)
		return;
	SSL_CTX_free(t->client);
	SSL_CTX_free(t->server);
	sh_free(t);
}

/* TLS over under, a filter: OpenSSL writes its records into under's
 * output, which the socket flushes many at a time.  under's write high
 * watermark keeps what waits there short, so that what is queued shows in
 * the TLS bufferevent's own output (back-pressure, the writable
 * callback). */
static struct bufferevent *over(struct ptls *t, struct event_base *base, struct bufferevent *under,
				bool server)
{
	SSL *ssl = SSL_new(server ? t->server : t->client);
	struct bufferevent *bev;

	if (ssl == NULL) {
		bufferevent_free(under);
		return NULL;
	}
	bufferevent_setwatermark(under, EV_WRITE, 0, PTLS_UNDER_HIGH);
	/* On failure libevent has freed ssl, and under too or not depending on
	 * where it failed (out of memory only): under is left alone rather than
	 * risk freeing it twice. */
	bev = bufferevent_openssl_filter_new(
		base, under, ssl, server ? BUFFEREVENT_SSL_ACCEPTING : BUFFEREVENT_SSL_CONNECTING,
		BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		return NULL;
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

struct bufferevent *ptls_server(struct ptls *t, struct event_base *base, struct bufferevent *under)
{
	return over(t, base, under, true);
}

struct bufferevent *ptls_client(struct ptls *t, struct event_base *base)
{
	struct bufferevent *under = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);

	if (under == NULL)
		return NULL;
	return over(t, base, under, false);
}

bool ptls_keyed(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);

	if (ssl == NULL)
		return false;
	if (of(ssl)->kr != NULL)
		return SSL_session_reused(ssl) == 1; /* the PSK was accepted */
	return SSL_get_verify_result(ssl) == X509_V_OK && SSL_get0_peer_certificate(ssl) != NULL;
}

bool ptls_peer_named(struct bufferevent *bev, const char *name)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	X509 *cert;

	if (ssl == NULL)
		return false;
	if (of(ssl)->kr != NULL)
		return true;
	cert = SSL_get0_peer_certificate(ssl);
	return cert != NULL && name != NULL && X509_check_host(cert, name, 0, 0, NULL) == 1;
}
