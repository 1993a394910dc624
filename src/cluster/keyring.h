/*
 * keyring: the cluster's gossip keys (doc/security.md, "Gossip keyring").
 *
 * A keyring holds up to KEYRING_MAX keys of 32 bytes; one of them, the
 * primary, seals what this node sends, and every key opens what it
 * receives, so that a key can be rotated on a live cluster: install the
 * new key on every node, make it the primary everywhere, remove the old
 * one (shoalctl cluster keys).
 *
 * Sealed message (AES-256-GCM through OpenSSL's EVP):
 *
 *     u8 version (1) | u32 key id | nonce (12) | ciphertext | tag (16)
 *
 * authenticated with the header and a label that names the channel (a
 * datagram cannot be passed off as a stream frame).  The key id (the first
 * 4 bytes of the key's fingerprint) says which key sealed it: only that
 * key is tried, so a forged message costs no decryption.  Nonces are a
 * 96-bit counter that starts at a random value for each keyring, so no
 * two messages sealed by any process under one key share a nonce, short of
 * ~2^48 processes each sealing ~2^48 messages.
 *
 * The same keys authenticate the peer links: peer_tls.h derives from each
 * one a TLS 1.3 pre-shared key (keyring_psk) named by its fingerprint.
 *
 * Key file: one key a line in base64 (44 characters), the primary first;
 * blank lines and '#' comments skipped; mode 600 (refused otherwise).
 * keyring_save rewrites it atomically.
 *
 * A keyring is used on the loop thread only; not thread-safe.
 */
#ifndef SHOAL_CLUSTER_KEYRING_H
#define SHOAL_CLUSTER_KEYRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define KEYRING_KEY      32
#define KEYRING_MAX      16
#define KEYRING_NONCE    12
#define KEYRING_TAG      16
#define KEYRING_OVERHEAD (1 + 4 + KEYRING_NONCE + KEYRING_TAG)
#define KEYRING_B64      44 /* base64 of a key, without the NUL */
#define KEYRING_FP       16 /* hex fingerprint, without the NUL */
#define KEYRING_VERSION  1

struct keyring;

/* An empty keyring (no key: seals nothing, opens nothing). */
struct keyring *keyring_new(void);
void keyring_free(struct keyring *kr);

/* Read a key file; its first key becomes the primary. */
int keyring_load(const char *path, struct keyring **out, struct sh_err *err);
/* Write kr to path (mode 600) through a temporary file and rename. */
int keyring_save(const struct keyring *kr, const char *path, struct sh_err *err);

/* Add key to the keys that open (no change when it is there already);
 * an empty keyring's first key becomes the primary. */
int keyring_install(struct keyring *kr, const uint8_t key[KEYRING_KEY], struct sh_err *err);
/* Make an installed key the primary. */
int keyring_use(struct keyring *kr, const uint8_t key[KEYRING_KEY], struct sh_err *err);
/* Remove an installed key; the primary cannot be removed. */
int keyring_remove(struct keyring *kr, const uint8_t key[KEYRING_KEY], struct sh_err *err);

size_t keyring_count(const struct keyring *kr);
/* Key i (0 is the primary). */
const uint8_t *keyring_key(const struct keyring *kr, size_t i);
/* Messages that failed to open (no key of the ring authenticates them). */
uint64_t keyring_failures(const struct keyring *kr);

/* Base64 text (44 characters, trailing spaces ignored) -> key. */
int keyring_parse_key(const char *text, uint8_t key[KEYRING_KEY], struct sh_err *err);
void keyring_format_key(const uint8_t key[KEYRING_KEY], char out[KEYRING_B64 + 1]);
/* A key's public name: 16 hex digits of a SHA-256 over it. */
void keyring_fingerprint(const uint8_t key[KEYRING_KEY], char out[KEYRING_FP + 1]);
/* The TLS 1.3 pre-shared key derived from key (never the key itself). */
void keyring_psk(const uint8_t key[KEYRING_KEY], uint8_t psk[32]);
/* A new random key. */
int keyring_generate(uint8_t key[KEYRING_KEY], struct sh_err *err);

/* Seal in[0..len) under the primary into out (len + KEYRING_OVERHEAD
 * bytes); label names the channel.  The sealed length, or -1 (no key,
 * out too small, an OpenSSL failure). */
long keyring_seal(struct keyring *kr, const char *label, const uint8_t *in, size_t len,
		  uint8_t *out, size_t size);
/* Open a sealed message into out (len - KEYRING_OVERHEAD bytes): the
 * plaintext length, or -1 when it is malformed or no key authenticates it
 * (counted in keyring_failures). */
long keyring_open(struct keyring *kr, const char *label, const uint8_t *in, size_t len,
		  uint8_t *out, size_t size);

#endif
