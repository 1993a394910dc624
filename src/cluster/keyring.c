/*
 * keyring: see keyring.h.
 */
#include "build.h"

#include "cluster/keyring.h"

#include "storage/diskio.h"
#include "util/alloc.h"
#include "util/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#define FILE_MAX (16 * 1024)
#define HDR      5 /* version, key id */

struct entry {
	uint8_t key[KEYRING_KEY];
	uint32_t id; /* the first 4 bytes of its fingerprint: names it in seals */
};

struct keyring {
	struct entry e[KEYRING_MAX]; /* [0] is the primary */
	size_t n;
	uint8_t nonce[KEYRING_NONCE]; /* the next nonce, a big-endian counter */
	uint64_t failures;
};

struct keyring *keyring_new(void)
{
	struct keyring *kr = sh_calloc(1, sizeof *kr);

	if (kr != NULL && RAND_bytes(kr->nonce, sizeof kr->nonce) != 1) {
		sh_free(kr);
		return NULL;
	}
	return kr;
}

void keyring_free(struct keyring *kr)
{
	if (kr == NULL)
		return;
	explicit_bzero(kr, sizeof *kr);
	sh_free(kr);
}

size_t keyring_count(const struct keyring *kr)
{
	return kr->n;
}

const uint8_t *keyring_key(const struct keyring *kr, size_t i)
{
	return i < kr->n ? kr->e[i].key : NULL;
}

uint64_t keyring_failures(const struct keyring *kr)
{
	return kr->failures;
}

/* ------------------------------------------------------------ keys */

int keyring_parse_key(const char *text, uint8_t key[KEYRING_KEY], struct sh_err *err)
{
	uint8_t out[KEYRING_KEY + 3];
	size_t n = strlen(text);

	while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == '\t' || text[n - 1] == '\r' ||
			 text[n - 1] == '\n'))
		n--;
	if (n != KEYRING_B64 || text[KEYRING_B64 - 1] != '=' || text[KEYRING_B64 - 2] == '=')
		return sh_err_set(err, SH_EINVAL,
				  "a gossip key is 32 bytes in base64: 44 characters ending in one "
				  "'=' (shoalctl cluster keys generate makes one); this has %zu",
				  n);
	if (EVP_DecodeBlock(out, (const unsigned char *)text, KEYRING_B64) != KEYRING_KEY + 1)
		return sh_err_set(err, SH_EINVAL, "a gossip key is not valid base64");
	memcpy(key, out, KEYRING_KEY);
	explicit_bzero(out, sizeof out);
	return 0;
}

void keyring_format_key(const uint8_t key[KEYRING_KEY], char out[KEYRING_B64 + 1])
{
	EVP_EncodeBlock((unsigned char *)out, key, KEYRING_KEY);
}

/* SHA-256 of label || key. */
static void hash_with(const char *label, const uint8_t key[KEYRING_KEY], uint8_t out[32])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned int n = 0;

	if (c == NULL || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(c, label, strlen(label)) != 1 ||
	    EVP_DigestUpdate(c, key, KEYRING_KEY) != 1 || EVP_DigestFinal_ex(c, out, &n) != 1)
		memset(out, 0, 32); /* allocation failure: a PSK nobody shares */
	EVP_MD_CTX_free(c);
}

void keyring_fingerprint(const uint8_t key[KEYRING_KEY], char out[KEYRING_FP + 1])
{
	uint8_t h[32];

	hash_with("shoal gossip key id v1", key, h);
	for (int i = 0; i < KEYRING_FP / 2; i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
}

static uint32_t key_id(const uint8_t key[KEYRING_KEY])
{
	uint8_t h[32];

	hash_with("shoal gossip key id v1", key, h);
	return (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
}

void keyring_psk(const uint8_t key[KEYRING_KEY], uint8_t psk[32])
{
	hash_with("shoal peer link psk v1", key, psk);
}

int keyring_generate(uint8_t key[KEYRING_KEY], struct sh_err *err)
{
	if (RAND_bytes(key, KEYRING_KEY) != 1)
		return sh_err_set(err, SH_EIO, "no entropy for a new key");
	return 0;
}

static long find(const struct keyring *kr, const uint8_t key[KEYRING_KEY])
{
	for (size_t i = 0; i < kr->n; i++)
		if (CRYPTO_memcmp(kr->e[i].key, key, KEYRING_KEY) == 0)
			return (long)i;
	return -1;
}

int keyring_install(struct keyring *kr, const uint8_t key[KEYRING_KEY], struct sh_err *err)
{
	if (find(kr, key) >= 0)
		return 0;
	if (kr->n == KEYRING_MAX)
		return sh_err_set(err, SH_EINVAL, "the keyring holds %d keys already: remove one",
				  KEYRING_MAX);
	memcpy(kr->e[kr->n].key, key, KEYRING_KEY);
	kr->e[kr->n++].id = key_id(key);
	return 0;
}

int keyring_use(struct keyring *kr, const uint8_t key[KEYRING_KEY], struct sh_err *err)
{
	struct entry tmp;
	long i = find(kr, key);

	if (i < 0)
		return sh_err_set(err, SH_ENOTFOUND,
				  "the key is not installed on this node: install it first");
	tmp = kr->e[0];
	kr->e[0] = kr->e[i];
	kr->e[i] = tmp;
	explicit_bzero(&tmp, sizeof tmp);
	return 0;
}

int keyring_remove(struct keyring *kr, const uint8_t key[KEYRING_KEY], struct sh_err *err)
{
	long i = find(kr, key);

	if (i < 0)
		return sh_err_set(err, SH_ENOTFOUND, "the key is not installed on this node");
	if (i == 0)
		return sh_err_set(err, SH_EINVAL,
				  "the key is this node's primary: make another key the primary "
				  "(keys use) first");
	memmove(&kr->e[i], &kr->e[i + 1], (kr->n - (size_t)i - 1) * sizeof kr->e[0]);
	kr->n--;
	explicit_bzero(&kr->e[kr->n], sizeof kr->e[0]);
	return 0;
}

/* ------------------------------------------------------------ key file */

/* Each line of text: a key, blank, or a # comment. */
static int parse_file(struct keyring *kr, const char *path, char *text, size_t len,
		      struct sh_err *err)
{
	uint8_t key[KEYRING_KEY];
	int line = 0, rv = 0;

	for (char *p = text, *end = text + len; p < end && rv == 0; line++) {
		char *nl = memchr(p, '\n', (size_t)(end - p)), *e = nl ? nl : end;

		*e = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '\0' && *p != '#' && *p != '\r') {
			if ((rv = keyring_parse_key(p, key, err)) == 0)
				rv = keyring_install(kr, key, err);
			if (rv != 0)
				rv = sh_err_wrap(err, rv, "keyring file %s:%d", path, line + 1);
		}
		p = e + 1;
	}
	explicit_bzero(key, sizeof key);
	if (rv == 0 && kr->n == 0)
		rv = sh_err_set(err, SH_EINVAL, "keyring file %s: no key in it", path);
	return rv;
}

int keyring_load(const char *path, struct keyring **out, struct sh_err *err)
{
	struct keyring *kr = keyring_new();
	char *buf = sh_malloc(FILE_MAX + 1);
	size_t len = 0;
	int rv;

	if (kr == NULL || buf == NULL) {
		rv = sh_err_set(err, SH_ENOMEM, "out of memory");
	} else if ((rv = sh_secret_read(path, "keyring file", buf, FILE_MAX, &len, err)) == 0) {
		rv = parse_file(kr, path, buf, len, err);
	}
	if (buf != NULL)
		explicit_bzero(buf, FILE_MAX + 1);
	sh_free(buf);
	if (rv != 0) {
		keyring_free(kr);
		return rv;
	}
	*out = kr;
	return 0;
}

static int write_all(int fd, const char *text, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, text, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		text += w;
		len -= (size_t)w;
	}
	return 0;
}

/* The rename is durable once the directory holding path is synced. */
static int sync_dir(const char *path, struct sh_err *err)
{
	char dir[4200];
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		snprintf(dir, sizeof dir, ".");
	else
		snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
	return diskio_fsync_dir(dir, err);
}

int keyring_save(const struct keyring *kr, const char *path, struct sh_err *err)
{
	char tmp[4200], text[KEYRING_MAX * (KEYRING_B64 + 1) + 128];
	size_t len = (size_t)snprintf(text, sizeof text,
				      "# shoal gossip keyring: the primary key first (written by "
				      "shoald; shoalctl cluster keys)\n");
	int fd, rv = 0;

	for (size_t i = 0; i < kr->n; i++) {
		keyring_format_key(kr->e[i].key, text + len);
		len += KEYRING_B64;
		text[len++] = '\n';
	}
	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
		return sh_err_set(err, SH_EINVAL, "keyring file %s: path too long", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || fchmod(fd, 0600) != 0 || write_all(fd, text, len) != 0 || fsync(fd) != 0)
		rv = sh_err_sys(err, errno, "keyring file %s: cannot write", tmp);
	if (fd >= 0 && close(fd) != 0 && rv == 0)
		rv = sh_err_sys(err, errno, "keyring file %s: cannot write", tmp);
	if (rv == 0 && rename(tmp, path) != 0)
		rv = sh_err_sys(err, errno, "keyring file %s: cannot rename %s over it", path, tmp);
	if (rv != 0)
		unlink(tmp);
	else
		rv = sync_dir(path, err);
	explicit_bzero(text, sizeof text);
	return rv;
}

/* ------------------------------------------------------------ sealing */

static void next_nonce(struct keyring *kr, uint8_t out[KEYRING_NONCE])
{
	memcpy(out, kr->nonce, KEYRING_NONCE);
	for (int i = KEYRING_NONCE - 1; i >= 0 && ++kr->nonce[i] == 0; i--)
		;
}

/* AES-256-GCM over in with aad = the header (version, key id) || label;
 * enc 1 seals (writes tag), 0 opens (checks tag).  0 or -1. */
static int gcm(const uint8_t *key, int enc, const uint8_t *hdr, const char *label,
	       const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	const uint8_t *nonce = hdr + HDR;
	int n = 0, ok;

	if (c == NULL || len > INT32_MAX)
		ok = 0;
	else
		ok = EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce, enc) == 1 &&
		     EVP_CipherUpdate(c, NULL, &n, hdr, HDR) == 1 &&
		     EVP_CipherUpdate(c, NULL, &n, (const uint8_t *)label, (int)strlen(label)) ==
			     1 &&
		     (len == 0 || EVP_CipherUpdate(c, out, &n, in, (int)len) == 1) &&
		     (enc || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, KEYRING_TAG, tag) == 1) &&
		     EVP_CipherFinal_ex(c, out + (len == 0 ? 0 : n), &n) == 1 &&
		     (!enc || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, KEYRING_TAG, tag) == 1);
	EVP_CIPHER_CTX_free(c);
	return ok ? 0 : -1;
}

long keyring_seal(struct keyring *kr, const char *label, const uint8_t *in, size_t len,
		  uint8_t *out, size_t size)
{
	uint8_t *body = out + HDR + KEYRING_NONCE;
	uint32_t id;

	if (kr->n == 0 || size < len + KEYRING_OVERHEAD)
		return -1;
	id = kr->e[0].id;
	out[0] = KEYRING_VERSION;
	for (int i = 0; i < 4; i++)
		out[1 + i] = (uint8_t)(id >> (24 - 8 * i));
	next_nonce(kr, out + HDR);
	if (gcm(kr->e[0].key, 1, out, label, in, len, body, body + len) != 0)
		return -1;
	return (long)(len + KEYRING_OVERHEAD);
}

long keyring_open(struct keyring *kr, const char *label, const uint8_t *in, size_t len,
		  uint8_t *out, size_t size)
{
	uint8_t tag[KEYRING_TAG];
	size_t plen;
	uint32_t id;

	if (len < KEYRING_OVERHEAD || in[0] != KEYRING_VERSION ||
	    size < (plen = len - KEYRING_OVERHEAD)) {
		kr->failures++;
		return -1;
	}
	id = (uint32_t)in[1] << 24 | (uint32_t)in[2] << 16 | (uint32_t)in[3] << 8 | in[4];
	for (size_t i = 0; i < kr->n; i++) {
		if (kr->e[i].id != id) /* only the key it names is tried */
			continue;
		memcpy(tag, in + len - KEYRING_TAG, KEYRING_TAG);
		if (gcm(kr->e[i].key, 0, in, label, in + HDR + KEYRING_NONCE, plen, out, tag) == 0)
			return (long)plen;
	}
	explicit_bzero(out, plen); /* no unauthenticated plaintext left behind */
	kr->failures++;
	return -1;
}
