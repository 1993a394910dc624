/*
 * tls: see tls.h.
 */
#include "build.h"

#include "net/tls.h"

#include "util/alloc.h"
#include "util/secret.h"

#include <string.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#define KEY_FILE_MAX (64 * 1024)

struct tls_server {
	SSL_CTX *ctx;
};

/* OpenSSL's first queued error as text, for a message. */
static const char *ossl_reason(char *buf, size_t size)
{
	unsigned long e = ERR_get_error();

	if (e == 0)
		return "unknown OpenSSL error";
	ERR_error_string_n(e, buf, size);
	ERR_clear_error();
	return buf;
}

/* The private key from a secret file (mode checked as for every key). */
static int load_key(SSL_CTX *c, const char *path, struct sh_err *err)
{
	char *buf = sh_malloc(KEY_FILE_MAX + 1), why[256];
	size_t len = 0;
	BIO *bio = NULL;
	EVP_PKEY *k = NULL;
	int rv;

	if (buf == NULL)
		return sh_err_set(err, SH_ENOMEM, "out of memory");
	if ((rv = sh_secret_read(path, "TLS key file", buf, KEY_FILE_MAX, &len, err)) == 0) {
		if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL ||
		    (k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) == NULL)
			rv = sh_err_set(err, SH_EINVAL,
					"TLS key file %s: not a PEM private key: %s", path,
					ossl_reason(why, sizeof why));
		else if (SSL_CTX_use_PrivateKey(c, k) != 1 || SSL_CTX_check_private_key(c) != 1)
			rv = sh_err_set(err, SH_EINVAL,
					"TLS key file %s: does not match the certificate: %s", path,
					ossl_reason(why, sizeof why));
	}
	EVP_PKEY_free(k);
	BIO_free(bio);
	explicit_bzero(buf, KEY_FILE_MAX + 1);
	sh_free(buf);
	return rv;
}

static int load_client_ca(SSL_CTX *c, const char *path, struct sh_err *err)
{
	STACK_OF(X509_NAME) * names;
	char why[256];

	if (SSL_CTX_load_verify_locations(c, path, NULL) != 1 ||
	    (names = SSL_load_client_CA_file(path)) == NULL)
		return sh_err_set(err, SH_EINVAL, "TLS client CA file %s: %s", path,
				  ossl_reason(why, sizeof why));
	SSL_CTX_set_client_CA_list(c, names);
	SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	return 0;
}

static int ctx_new(const struct tls_files *f, SSL_CTX **out, struct sh_err *err)
{
	SSL_CTX *c = SSL_CTX_new(TLS_server_method());
	char why[256];
	int rv = 0;

	if (c == NULL)
		return sh_err_set(err, SH_ENOMEM, "TLS: cannot make a context");
	SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
	SSL_CTX_set_options(c, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_num_tickets(c, 0);
	SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_use_certificate_chain_file(c, f->cert) != 1)
		rv = sh_err_set(err, SH_EINVAL, "TLS certificate file %s: %s", f->cert,
				ossl_reason(why, sizeof why));
	if (rv == 0)
		rv = load_key(c, f->key != NULL ? f->key : "", err);
	if (rv == 0 && f->client_ca != NULL && f->client_ca[0] != '\0')
		rv = load_client_ca(c, f->client_ca, err);
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

const char *tls_error(struct bufferevent *bev, char *buf, size_t size)
{
	unsigned long e = bufferevent_get_openssl_error(bev);

	if (e == 0)
		return NULL;
	ERR_error_string_n(e, buf, size);
	return buf;
}
