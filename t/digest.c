/* Tests of storage/digest: SipHash-2-4-128 against the reference vectors
 * (github.com/veorq/SipHash, vectors.h: key 00..0f, message 00..len-1),
 * fed whole and in pieces; the 128-bit sum (carry, commutativity, undo);
 * and point and collection hashes that change with every field. */
#include "build.h"

#include "storage/digest.h"
#include "tap.h"

#include <string.h>

static const struct {
	int len;
	unsigned char out[16];
} vectors[] = {
	{0,
	 {0xa3, 0x81, 0x7f, 0x04, 0xba, 0x25, 0xa8, 0xe6, 0x6d, 0xf6, 0x72, 0x14, 0xc7, 0x55, 0x02,
	  0x93}},
	{1,
	 {0xda, 0x87, 0xc1, 0xd8, 0x6b, 0x99, 0xaf, 0x44, 0x34, 0x76, 0x59, 0x11, 0x9b, 0x22, 0xfc,
	  0x45}},
	{7,
	 {0xa1, 0xf1, 0xeb, 0xbe, 0xd8, 0xdb, 0xc1, 0x53, 0xc0, 0xb8, 0x4a, 0xa6, 0x1f, 0xf0, 0x82,
	  0x39}},
	{15,
	 {0x54, 0x93, 0xe9, 0x99, 0x33, 0xb0, 0xa8, 0x11, 0x7e, 0x08, 0xec, 0x0f, 0x97, 0xcf, 0xc3,
	  0xd9}},
	{63,
	 {0x51, 0x50, 0xd1, 0x77, 0x2f, 0x50, 0x83, 0x4a, 0x50, 0x3e, 0x06, 0x9a, 0x97, 0x3f, 0xbd,
	  0x7c}},
};

static void to_bytes(struct digest d, unsigned char out[16])
{
	for (int i = 0; i < 8; i++) {
		out[i] = (unsigned char)(d.lo >> (8 * i));
		out[8 + i] = (unsigned char)(d.hi >> (8 * i));
	}
}

static void test_vectors(void)
{
	unsigned char key[16], msg[64], out[16];

	for (int i = 0; i < 16; i++)
		key[i] = (unsigned char)i;
	for (int i = 0; i < 64; i++)
		msg[i] = (unsigned char)i;
	for (size_t v = 0; v < sizeof vectors / sizeof vectors[0]; v++) {
		struct siphash s;
		int len = vectors[v].len;

		siphash_init(&s, key);
		siphash_update(&s, msg, (size_t)len);
		to_bytes(siphash_final(&s), out);
		ok(memcmp(out, vectors[v].out, 16) == 0, "reference vector, %d bytes", len);
		siphash_init(&s, key);
		for (int i = 0; i < len; i += 3)
			siphash_update(&s, msg + i, (size_t)(len - i < 3 ? len - i : 3));
		to_bytes(siphash_final(&s), out);
		ok(memcmp(out, vectors[v].out, 16) == 0, "the same fed 3 bytes at a time");
	}
}

static void test_sum(void)
{
	struct digest d = {0, 0}, a = {UINT64_MAX, 1}, b = {2, 3}, e = {0, 0};
	char hex[33];

	digest_add(&d, a);
	digest_add(&d, b);
	is_int(d.lo, 1, "low half wraps");
	is_int(d.hi, 5, "and carries into the high half");
	digest_add(&e, b);
	digest_add(&e, a);
	ok(digest_equal(d, e), "order does not matter");
	digest_sub(&d, a);
	ok(digest_equal(d, b), "subtracting undoes adding (with the borrow)");
	digest_sub(&d, b);
	ok(d.lo == 0 && d.hi == 0, "back to zero");
	digest_hex((struct digest){0xabc, 0x1}, hex);
	is_str(hex, "00000000000000010000000000000abc", "hex: high half first");
}

static void test_point(void)
{
	float v[3] = {1.0f, 2.0f, 3.0f}, w[3] = {1.0f, 2.0f, 3.5f};
	struct digest p = digest_point("c", 7, v, 3, "{}", 2);

	ok(digest_equal(p, digest_point("c", 7, v, 3, "{}", 2)), "a point hash is a function");
	ok(!digest_equal(p, digest_point("d", 7, v, 3, "{}", 2)), "it depends on the collection");
	ok(!digest_equal(p, digest_point("c", 8, v, 3, "{}", 2)), "on the id");
	ok(!digest_equal(p, digest_point("c", 7, w, 3, "{}", 2)), "on the vector");
	ok(!digest_equal(p, digest_point("c", 7, v, 3, "{\"a\":1}", 7)), "on the payload");
	ok(!digest_equal(p, digest_point("c", 7, v, 3, NULL, 0)), "on having a payload");
	ok(!digest_equal(digest_collection("c", 3, 0, 16, 200, 1),
			 digest_collection("c", 3, 1, 16, 200, 1)),
	   "a collection hash depends on its metric");
	ok(!digest_equal(digest_collection("c", 3, 0, 16, 200, 1),
			 digest_collection("c", 3, 0, 16, 200, 2)),
	   "and on its seed");
}

int main(void)
{
	test_vectors();
	test_sum();
	test_point();
	return done_testing();
}
