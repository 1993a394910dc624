/* The gossip keyring (src/cluster/keyring.c; doc/security.md "Gossip
 * keyring"): seal and open round trips, every tampered byte and every
 * wrong key or label refused and counted, rotation (install, use, remove)
 * keeps messages of both keys opening, key files checked and rewritten;
 * and the peer links' TLS (src/cluster/peer_tls.c): a handshake completes
 * with a shared key and fails with another. */
#include "build.h"

#include "cluster/keyring.h"
#include "cluster/peer_tls.h"
#include "tap.h"
#include "tfile.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

static char dir[] = "/tmp/shoal-keyring-XXXXXX";

static const char *file(const char *name, const char *text, mode_t mode)
{
	return tfile(dir, name, text, mode);
}

static struct keyring *ring_of(const uint8_t *key)
{
	struct keyring *kr = keyring_new();
	struct sh_err err;

	if (kr == NULL || keyring_install(kr, key, &err) != 0)
		bail_out("keyring_new");
	return kr;
}

static void test_seal_open(void)
{
	uint8_t k1[KEYRING_KEY], k2[KEYRING_KEY], msg[300], sealed[400], out[400];
	struct sh_err err;
	struct keyring *a, *b;
	long n, m;
	int refused = 0;

	keyring_generate(k1, &err);
	keyring_generate(k2, &err);
	a = ring_of(k1);
	b = ring_of(k2);
	for (size_t i = 0; i < sizeof msg; i++)
		msg[i] = (uint8_t)(i * 7);
	n = keyring_seal(a, "lbl", msg, sizeof msg, sealed, sizeof sealed);
	is_int(n, (long)(sizeof msg + KEYRING_OVERHEAD), "sealed: the message plus %d bytes",
	       KEYRING_OVERHEAD);
	m = keyring_open(a, "lbl", sealed, (size_t)n, out, sizeof out);
	ok(m == (long)sizeof msg && memcmp(out, msg, sizeof msg) == 0, "opens to the message");
	ok(memcmp(sealed + KEYRING_OVERHEAD - KEYRING_TAG, msg, 64) != 0,
	   "the body is not the plaintext");
	is_int(keyring_open(b, "lbl", sealed, (size_t)n, out, sizeof out), -1L,
	       "another key does not open it");
	is_int(keyring_open(a, "other", sealed, (size_t)n, out, sizeof out), -1L,
	       "another label does not open it");
	for (long i = 0; i < n; i++) {
		sealed[i] ^= 0x01;
		refused += keyring_open(a, "lbl", sealed, (size_t)n, out, sizeof out) < 0;
		sealed[i] ^= 0x01;
	}
	is_int(refused, (int)n, "every one of the %ld bytes flipped: refused", n);
	for (long len = 0; len < n; len++)
		refused += keyring_open(a, "lbl", sealed, (size_t)len, out, sizeof out) < 0;
	is_int(refused, (int)(2 * n), "every truncation refused");
	is_int(keyring_failures(a), (uint64_t)(2 * n + 1), "each refusal counted");
	is_int(keyring_failures(b), (uint64_t)1, "... on the ring that refused");
	m = keyring_seal(a, "lbl", msg, sizeof msg, out, sizeof out);
	ok(m == n && memcmp(out + 5, sealed + 5, KEYRING_NONCE) != 0, "a new nonce each time");
	n = keyring_seal(a, "lbl", NULL, 0, sealed, sizeof sealed);
	is_int(keyring_open(a, "lbl", sealed, (size_t)n, out, sizeof out), 0L, "an empty message");
	is_int(keyring_seal(a, "lbl", msg, sizeof msg, sealed, sizeof msg + 5), -1L,
	       "seal refuses a short buffer");
	keyring_free(a);
	keyring_free(b);
}

static void test_rotation(void)
{
	uint8_t k1[KEYRING_KEY], k2[KEYRING_KEY], s1[64], s2[64], out[64];
	struct sh_err err;
	struct keyring *a, *b;
	long n1, n2;

	keyring_generate(k1, &err);
	keyring_generate(k2, &err);
	a = ring_of(k1);
	b = ring_of(k1);
	n1 = keyring_seal(a, "x", (const uint8_t *)"hello", 5, s1, sizeof s1);
	is_int(keyring_install(b, k2, &err), 0, "install a second key");
	is_int(keyring_install(b, k2, &err), 0, "installing it again changes nothing");
	is_int((long)keyring_count(b), 2L, "two keys");
	is_int(keyring_use(b, k2, &err), 0, "make it the primary");
	ok(memcmp(keyring_key(b, 0), k2, KEYRING_KEY) == 0, "it is key 0");
	n2 = keyring_seal(b, "x", (const uint8_t *)"world", 5, s2, sizeof s2);
	is_int(keyring_open(b, "x", s1, (size_t)n1, out, sizeof out), 5L,
	       "the ring opens messages of the old key");
	is_int(keyring_open(a, "x", s2, (size_t)n2, out, sizeof out), -1L,
	       "a ring without the new key does not open its messages");
	is_int(keyring_remove(b, k2, &err), SH_EINVAL, "the primary cannot be removed");
	like(err.msg, "primary", "... saying so");
	is_int(keyring_remove(b, k1, &err), 0, "the old key removed");
	is_int(keyring_open(b, "x", s1, (size_t)n1, out, sizeof out), -1L,
	       "messages of the removed key no longer open");
	is_int(keyring_use(b, k1, &err), SH_ENOTFOUND, "use of a key not installed: refused");
	keyring_free(a);
	keyring_free(b);
}

static void test_files(void)
{
	uint8_t k1[KEYRING_KEY], k2[KEYRING_KEY];
	char b1[KEYRING_B64 + 1], b2[KEYRING_B64 + 1], text[256], fp[KEYRING_FP + 1];
	struct keyring *kr = NULL;
	struct sh_err err;
	const char *p;

	keyring_generate(k1, &err);
	keyring_generate(k2, &err);
	keyring_format_key(k1, b1);
	keyring_format_key(k2, b2);
	snprintf(text, sizeof text, "# comment\n\n  %s\n%s  \r\n", b1, b2);
	p = file("ring", text, 0600);
	is_int(keyring_load(p, &kr, &err), 0, "a key file loads");
	ok(kr != NULL && keyring_count(kr) == 2 && memcmp(keyring_key(kr, 0), k1, 32) == 0,
	   "two keys, the first is the primary");
	is_int(keyring_use(kr, k2, &err), 0, "use the second");
	is_int(keyring_save(kr, p, &err), 0, "saved");
	keyring_free(kr);
	kr = NULL;
	is_int(keyring_load(p, &kr, &err), 0, "loads again");
	ok(kr != NULL && memcmp(keyring_key(kr, 0), k2, 32) == 0, "with the new primary first");
	keyring_free(kr);
	kr = NULL;
	p = file("open", text, 0644);
	is_int(keyring_load(p, &kr, &err), SH_EINVAL, "a file others may read: refused");
	like(err.msg, "chmod 600", "... saying what to do");
	p = file("short", "c2hvcnQ=\n", 0600);
	is_int(keyring_load(p, &kr, &err), SH_EINVAL, "a short key: refused");
	like(err.msg, ":1:", "... naming the line");
	snprintf(text, sizeof text, "%.43s!\n", b1);
	text[42] = '*';
	p = file("bad", text, 0600);
	is_int(keyring_load(p, &kr, &err), SH_EINVAL, "a key that is not base64: refused");
	p = file("empty", "# nothing\n", 0600);
	is_int(keyring_load(p, &kr, &err), SH_EINVAL, "no key: refused");
	is_int(keyring_parse_key(b1, k2, &err), 0, "a formatted key parses back");
	ok(memcmp(k1, k2, 32) == 0, "... to itself");
	keyring_fingerprint(k1, fp);
	is_int((long)strlen(fp), (long)KEYRING_FP, "a fingerprint of %d hex digits", KEYRING_FP);
	ok(strstr(b1, fp) == NULL, "that is not the key");
}

/* ------------------------------------------------------------ TLS */

struct end {
	bool connected, failed;
	char got[64];
};

static void on_read(struct bufferevent *bev, void *arg)
{
	struct end *e = arg;
	size_t n = evbuffer_get_length(bufferevent_get_input(bev));

	if (n >= sizeof e->got)
		n = sizeof e->got - 1;
	bufferevent_read(bev, e->got + strlen(e->got), n - strlen(e->got));
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct end *e = arg;

	if (what & BEV_EVENT_CONNECTED)
		e->connected = true;
	if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF))
		e->failed = true;
}

/* A server that knows no key and offers a self-signed certificate. */
static SSL_CTX *cert_server(void)
{
	SSL_CTX *c = SSL_CTX_new(TLS_server_method());
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();

	if (c == NULL || k == NULL || x == NULL)
		bail_out("cannot make a certificate");
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)"intruder", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	if (X509_sign(x, k, EVP_sha256()) == 0 || SSL_CTX_use_certificate(c, x) != 1 ||
	    SSL_CTX_use_PrivateKey(c, k) != 1)
		bail_out("cannot make a certificate");
	X509_free(x);
	EVP_PKEY_free(k);
	return c;
}

static struct bufferevent *server_end(struct event_base *base, struct ptls *tb, SSL_CTX *certs,
				      int fd)
{
	struct bufferevent *under = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);

	if (certs == NULL)
		return ptls_server(tb, base, under);
	return bufferevent_openssl_filter_new(base, under, SSL_new(certs),
					      BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
}

/* A TLS link between ring a (connecting) and ring b (accepting; or a
 * server with certificates only, certs) over a socketpair: does "ping"
 * arrive, and does the client see a keyed handshake? */
static char server_got[64]; /* what the last server end read */

static bool link_works_with(struct keyring *a, struct keyring *b, SSL_CTX *certs)
{
	struct event_base *base = event_base_new();
	struct ptls *ta = NULL, *tb = NULL;
	struct sh_err err;
	struct end ea = {0}, eb = {0};
	struct bufferevent *ca, *cb;
	struct timeval tv = {0, 10000};
	int sv[2];
	bool ok;

	if (base == NULL || ptls_new(a, &ta, &err) != 0 || ptls_new(b, &tb, &err) != 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
		bail_out("TLS setup");
	ca = ptls_client(ta, base);
	bufferevent_setfd(bufferevent_get_underlying(ca), sv[0]);
	bufferevent_enable(bufferevent_get_underlying(ca), EV_READ | EV_WRITE);
	cb = server_end(base, tb, certs, sv[1]);
	bufferevent_setcb(ca, on_read, NULL, on_event, &ea);
	bufferevent_setcb(cb, on_read, NULL, on_event, &eb);
	bufferevent_enable(ca, EV_READ | EV_WRITE);
	bufferevent_enable(cb, EV_READ | EV_WRITE);
	bufferevent_write(ca, "ping", 4);
	for (int i = 0; i < 200 && strcmp(eb.got, "ping") != 0 && !ea.failed && !eb.failed; i++) {
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
	ok = strcmp(eb.got, "ping") == 0 && ptls_keyed(ca);
	snprintf(server_got, sizeof server_got, "%s", eb.got);
	bufferevent_free(ca);
	bufferevent_free(cb);
	ptls_free(ta);
	ptls_free(tb);
	event_base_free(base);
	return ok;
}

static bool link_works(struct keyring *a, struct keyring *b)
{
	return link_works_with(a, b, NULL);
}

static void test_tls(void)
{
	uint8_t k1[KEYRING_KEY], k2[KEYRING_KEY];
	struct sh_err err;
	struct keyring *a, *b, *c;

	keyring_generate(k1, &err);
	keyring_generate(k2, &err);
	a = ring_of(k1);
	b = ring_of(k1);
	c = ring_of(k2);
	ok(link_works(a, b), "TLS: a link between two rings sharing a key carries data");
	ok(!link_works(a, c), "TLS: a link to a ring without the key fails");
	keyring_install(c, k1, &err);
	ok(link_works(a, c), "TLS: once the acceptor installs the key, it works (rotation)");
	keyring_install(a, k2, &err);
	keyring_use(a, k2, &err);
	ok(!link_works(a, b), "TLS: a connector whose primary the acceptor lacks fails");
	{
		SSL_CTX *certs = cert_server();

		ok(!link_works_with(a, b, certs) && server_got[0] == '\0',
		   "TLS: a server with a certificate and no key reads nothing of the link");
		SSL_CTX_free(certs);
	}
	keyring_free(a);
	keyring_free(b);
	keyring_free(c);
}

int main(void)
{
	if (mkdtemp(dir) == NULL)
		bail_out("mkdtemp");
	test_seal_open();
	test_rotation();
	test_files();
	test_tls();
	{
		char cmd[300];

		snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
		if (system(cmd) != 0)
			diag("cannot remove %s", dir);
	}
	return done_testing();
}
