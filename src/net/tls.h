/*
 * tls: TLS on the client and REST ports (doc/security.md, "TLS for
 * clients").
 *
 * security.tls_cert_file (a PEM certificate chain) and tls_key_file (its
 * private key, mode 600 like every secret file) turn TLS on for both ports;
 * tls_client_ca_file also asks every client for a certificate signed by
 * that CA.  TLS 1.2 at least (1.3 when the client has it), OpenSSL's
 * default ciphers and groups, no session tickets (no ticket key to keep).
 *
 * A reload (SIGHUP) builds a new context from the files and swaps it in
 * only when every file loads; connections made before keep theirs.
 *
 * Runs on the loop thread.
 */
#ifndef SHOAL_NET_TLS_H
#define SHOAL_NET_TLS_H

#include <stddef.h>

#include "util/err.h"

struct bufferevent;
struct event_base;
struct tls_server;

struct tls_files {
	const char *cert, *key, *client_ca; /* paths; client_ca NULL or "" for none */
};

/* Load the files; *out is NULL when no certificate is configured (off). */
int tls_server_load(const struct tls_files *f, struct tls_server **out, struct sh_err *err);
/* Load the files again and use them for new connections; on failure the
 * previous ones stay. */
int tls_server_reload(struct tls_server *t, const struct tls_files *f, struct sh_err *err);
void tls_server_free(struct tls_server *t);

/* A TLS server bufferevent on fd (-1: set later, as evhttp does); NULL
 * when out of memory. */
struct bufferevent *tls_server_bev(struct tls_server *t, struct event_base *base, int fd);

#endif
