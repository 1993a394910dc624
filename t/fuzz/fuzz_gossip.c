/*
 * fuzz_gossip: the sealed gossip decoder (src/cluster/keyring.c, as
 * swim_net.c opens datagrams and stream frames) on arbitrary bytes.
 *
 * The keyring holds two fixed keys.  The first input byte picks a mode:
 *
 *   even  the rest is a sealed message off the wire: opened under both
 *         labels (it must be refused, or open to at most its length less
 *         the seal); what opens goes to the SWIM decoders;
 *   odd   the rest is a plaintext: sealed, it must open to itself; each
 *         byte of the sealed form flipped in turn (up to 64 of them), it
 *         must be refused; the plaintext then goes to the SWIM decoders,
 *         as an opened message would.
 *
 * Nothing may crash, read out of bounds, or open what was tampered with.
 */
#include "build.h"

#include "cluster/keyring.h"
#include "fuzz/fuzz.h"
#include "util/alloc.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct keyring *ring(void)
{
	static struct keyring *kr;
	uint8_t k[KEYRING_KEY];
	struct sh_err err;

	if (kr != NULL)
		return kr;
	if ((kr = keyring_new()) == NULL)
		abort();
	for (int i = 0; i < 2; i++) {
		memset(k, 0x41 + i, sizeof k);
		if (keyring_install(kr, k, &err) != 0)
			abort();
	}
	return kr;
}

static void from_wire(struct keyring *kr, const uint8_t *in, size_t len)
{
	static const char *const labels[] = {"shoal gossip udp", "shoal gossip tcp"};
	uint8_t *out = sh_malloc(len + 1);
	long n;

	if (out == NULL)
		return;
	for (int i = 0; i < 2; i++) {
		n = keyring_open(kr, labels[i], in, len, out, len);
		if (n >= 0 && (size_t)n + KEYRING_OVERHEAD != len)
			abort();
		if (n >= 0)
			fuzz_swim_wire(out, (size_t)n);
	}
	sh_free(out);
}

static void round_trip(struct keyring *kr, const uint8_t *in, size_t len)
{
	size_t size = len + KEYRING_OVERHEAD;
	uint8_t *sealed = sh_malloc(size), *out = sh_malloc(size);
	long n;

	if (sealed == NULL || out == NULL)
		goto out;
	if ((n = keyring_seal(kr, "shoal gossip udp", in, len, sealed, size)) != (long)size)
		abort();
	if (keyring_open(kr, "shoal gossip udp", sealed, size, out, size) != (long)len ||
	    (len > 0 && memcmp(out, in, len) != 0))
		abort();
	for (size_t i = 0; i < size && i < 64; i++) {
		sealed[i] ^= (uint8_t)(1u << (i % 8));
		if (keyring_open(kr, "shoal gossip udp", sealed, size, out, size) >= 0)
			abort();
		sealed[i] ^= (uint8_t)(1u << (i % 8));
	}
	fuzz_swim_wire(in, len);
out:
	sh_free(sealed);
	sh_free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct keyring *kr = ring();

	if (size == 0)
		return 0;
	if (data[0] & 1)
		round_trip(kr, data + 1, size - 1);
	else
		from_wire(kr, data + 1, size - 1);
	return 0;
}
