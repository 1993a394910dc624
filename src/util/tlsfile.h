/*
 * tlsfile: certificates and keys from files into an OpenSSL context, with
 * messages that name the file and OpenSSL's reason (used by the client
 * and REST ports' TLS, net/tls.h, and the peer links', cluster/peer_tls.h).
 * A key file is a secret file (util/secret.h: mode 600).
 */
#ifndef SHOAL_UTIL_TLSFILE_H
#define SHOAL_UTIL_TLSFILE_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

struct bufferevent;
struct ssl_ctx_st;

/* A TLS context as every one of ours starts: server or client side, at
 * least min_version (TLS1_2_VERSION, TLS1_3_VERSION), no session tickets
 * (no ticket key to keep), no renegotiation.  NULL: out of memory. */
struct ssl_ctx_st *sh_tls_ctx_new(bool server, int min_version);
/* The certificate chain (PEM) and its private key (PEM, mode 600), checked
 * to match. */
int sh_tls_use_cert_key(struct ssl_ctx_st *c, const char *cert, const char *key,
			struct sh_err *err);
/* Trust the CA certificate(s) in ca (PEM) to verify peers; with
 * ask_clients, a server also names them to its clients. */
int sh_tls_use_ca(struct ssl_ctx_st *c, const char *ca, bool ask_clients, struct sh_err *err);
/* OpenSSL's first queued error as text (the queue is cleared). */
const char *sh_tls_reason(char *buf, size_t size);
/* Why a libevent OpenSSL bufferevent failed (its first OpenSSL error), or
 * NULL when OpenSSL gave none (the peer closed, a socket error). */
const char *sh_tls_bev_error(struct bufferevent *bev, char *buf, size_t size);

#endif
