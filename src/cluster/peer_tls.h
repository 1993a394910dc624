/*
 * peer_tls: TLS 1.3 on the peer links, keyed by the gossip keyring
 * (doc/security.md, "Peer links").
 *
 * With a keyring, every peer link (Raft messages, forwarded writes,
 * snapshot chunks) runs in TLS 1.3 with an external pre-shared key derived
 * from a keyring key (keyring_psk) and named by the key's fingerprint:
 * the connecting node offers its primary key, the accepting node takes any
 * key of its ring (so links keep working while a key is rotated).  The
 * handshake is (EC)DHE with the PSK (forward secrecy), AES-256-GCM; a
 * process without a key of the ring cannot complete it, so nothing it
 * sends is read as a peer message.
 *
 * Or, with certificates (security.peer_cert_file, peer_key_file,
 * peer_ca_file): mutual TLS 1.3, each node presenting a certificate that
 * the cluster CA signed and verifying the other's; a node whose
 * certificate does not verify fails the handshake.  Certificates take the
 * links over from the keyring when both are configured (the keyring then
 * seals gossip only).
 *
 * Runs on the loop thread; the keyring must outlive the contexts.
 */
#ifndef SHOAL_CLUSTER_PEER_TLS_H
#define SHOAL_CLUSTER_PEER_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

struct bufferevent;
struct event_base;
struct keyring;
struct ptls;

int ptls_new(struct keyring *kr, struct ptls **out, struct sh_err *err);

struct ptls_certs {
	const char *cert, *key, *ca; /* PEM files; key mode 600 */
};
int ptls_new_certs(const struct ptls_certs *f, struct ptls **out, struct sh_err *err);
/* Load the files again for new links; on failure the old ones stay. */
int ptls_reload_certs(struct ptls *t, const struct ptls_certs *f, struct sh_err *err);
void ptls_free(struct ptls *t);

/* A TLS client over a new socket bufferevent (a filter: connect its
 * underlying one, bufferevent_get_underlying(), with
 * bufferevent_socket_connect).  BEV_EVENT_CONNECTED comes once the
 * handshake is done.  NULL: no memory. */
struct bufferevent *ptls_client(struct ptls *t, struct event_base *base);
/* A TLS server over an accepted connection (bytes already read stay
 * readable); takes under: it is freed with the result, or at once on
 * failure (NULL). */
struct bufferevent *ptls_server(struct ptls *t, struct event_base *base, struct bufferevent *under);
/* Was bev's handshake authenticated: keyed by the keyring (its PSK
 * accepted), or the peer's certificate verified?  Checked again on
 * BEV_EVENT_CONNECTED: a link that is not is closed. */
bool ptls_keyed(struct bufferevent *bev);
/* Does the certificate of bev's peer carry name (a DNS name or the common
 * name)?  Always true when the link is keyed by the keyring (no names in
 * a pre-shared key). */
bool ptls_peer_named(struct bufferevent *bev, const char *name);

#endif
