/*
 * tls: see tls.h.
 */
#include "build.h"

#include "net/tls.h"

#include "util/alloc.h"
#include "util/tlsfile.h"

#include <string.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

struct tls_server {
	SSL_CTX *ctx;
};

static int ctx_new(const struct tls_files *f, SSL_CTX **out, struct sh_err *err)
{
	SSL_CTX *c = sh_tls_ctx_new(true, TLS1_2_VERSION);
	int rv;

	if (c == NULL)
		return sh_err_set(err, SH_ENOMEM, "TLS: cannot make a context");
	/* a close without close_notify is an end */
	SSL_CTX_set_options(c, SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
	rv = sh_tls_use_cert_key(c, f->cert, f->key, err);
	if (rv == 0 && f->client_ca != NULL && f->client_ca[0] != '\0' &&
	    (rv = sh_tls_use_ca(c, f->client_ca, true, err)) == 0)
		SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	if (rv != 0) {
		SSL_CTX_free(c);
		return rv;
	}
	*out = c;
	return 0;
}

int tls_server_load(const struct tls_files *f, struct tls_server **out, struct sh_err *err)
{
	struct tls_server *t;
	int rv;

	*out = NULL;
	if (f->cert == NULL || f->cert[0] == '\0') {
		if (f->key != NULL && f->key[0] != '\0')
			return sh_err_set(err, SH_EINVAL,
					  "security.tls_key_file is set without "
					  "security.tls_cert_file");
		return 0;
	}
	if ((t = sh_calloc(1, sizeof *t)) == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	if ((rv = ctx_new(f, &t->ctx, err)) != 0) {
		sh_free(t);
		return rv;
	}
	*out = t;
	return 0;
}

int tls_server_reload(struct tls_server *t, const struct tls_files *f, struct sh_err *err)
{
	SSL_CTX *c;
	int rv;

	if (f->cert == NULL || f->cert[0] == '\0')
		return sh_err_set(err, SH_EINVAL,
				  "security.tls_cert_file is empty now; turning TLS off needs a "
				  "restart");
	if ((rv = ctx_new(f, &c, err)) != 0)
		return rv;
	SSL_CTX_free(t->ctx); /* connections made with it hold their own reference */
	t->ctx = c;
	return 0;
}

void tls_server_free(struct tls_server *t)
{
	if (t == NULL)
		return;
	SSL_CTX_free(t->ctx);
	sh_free(t);
}

struct bufferevent *tls_server_bev(struct tls_server *t, struct event_base *base, int fd)
{
	SSL *ssl = SSL_new(t->ctx);
	struct bufferevent *bev;

	if (ssl == NULL) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	/* on failure (out of memory) libevent has freed ssl, and may have
	 * closed fd: it is not closed again */
	bev = bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
					     BEV_OPT_CLOSE_ON_FREE);
	if (bev != NULL)
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}
