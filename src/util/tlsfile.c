/*
 * tlsfile: see tlsfile.h.
 */
#include "build.h"

#include "util/tlsfile.h"

#include "util/alloc.h"
#include "util/secret.h"

#include <string.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#define KEY_FILE_MAX (64 * 1024)

const char *sh_tls_reason(char *buf, size_t size)
{
	unsigned long e = ERR_get_error();

	if (e == 0)
		return "unknown OpenSSL error";
	ERR_error_string_n(e, buf, size);
	ERR_clear_error();
	return buf;
}

SSL_CTX *sh_tls_ctx_new(bool server, int min_version)
{
	SSL_CTX *c = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());

	if (c == NULL || SSL_CTX_set_min_proto_version(c, min_version) != 1) {
		SSL_CTX_free(c);
		return NULL;
	}
	SSL_CTX_set_options(c, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_num_tickets(c, 0);
	return c;
}

const char *sh_tls_bev_error(struct bufferevent *bev, char *buf, size_t size)
{
	unsigned long e = bufferevent_get_openssl_error(bev);

	if (e == 0)
		return NULL;
	ERR_error_string_n(e, buf, size);
	return buf;
}

static int use_key(SSL_CTX *c, const char *path, struct sh_err *err)
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
					sh_tls_reason(why, sizeof why));
		else if (SSL_CTX_use_PrivateKey(c, k) != 1 || SSL_CTX_check_private_key(c) != 1)
			rv = sh_err_set(err, SH_EINVAL,
					"TLS key file %s: does not match the certificate: %s", path,
					sh_tls_reason(why, sizeof why));
	}
	EVP_PKEY_free(k);
	BIO_free(bio);
	explicit_bzero(buf, KEY_FILE_MAX + 1);
	sh_free(buf);
	return rv;
}

int sh_tls_use_cert_key(SSL_CTX *c, const char *cert, const char *key, struct sh_err *err)
{
	char why[256];

	if (cert == NULL || cert[0] == '\0' || key == NULL || key[0] == '\0')
		return sh_err_set(err, SH_EINVAL,
				  "TLS: a certificate needs its key file, and "
				  "a key its certificate file");
	if (SSL_CTX_use_certificate_chain_file(c, cert) != 1)
		return sh_err_set(err, SH_EINVAL, "TLS certificate file %s: %s", cert,
				  sh_tls_reason(why, sizeof why));
	return use_key(c, key, err);
}

int sh_tls_use_ca(SSL_CTX *c, const char *ca, bool ask_clients, struct sh_err *err)
{
	STACK_OF(X509_NAME) * names;
	char why[256];

	if (SSL_CTX_load_verify_locations(c, ca, NULL) != 1)
		return sh_err_set(err, SH_EINVAL, "TLS CA file %s: %s", ca,
				  sh_tls_reason(why, sizeof why));
	if (!ask_clients)
		return 0;
	if ((names = SSL_load_client_CA_file(ca)) == NULL)
		return sh_err_set(err, SH_EINVAL, "TLS CA file %s: %s", ca,
				  sh_tls_reason(why, sizeof why));
	SSL_CTX_set_client_CA_list(c, names);
	return 0;
}
