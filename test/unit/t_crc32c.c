/* t_crc32c.c - CRC32C known vectors on the hardware and table paths. */
#include <stdint.h>
#include <stdlib.h>

#include "crc32c.h"
#include "tap.h"

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

static void vectors(crc_fn f, const char *path)
{
	uint8_t b[32];

	is_int(f(0, "123456789", 9), 0xe3069283u, "%s: 123456789", path);
	is_int(f(0, "", 0), 0, "%s: empty", path);
	is_int(f(0x12345678, "", 0), 0x12345678, "%s: empty keeps crc", path);
	memset(b, 0, 32);
	is_int(f(0, b, 32), 0x8a9136aau, "%s: 32 zero bytes", path);
	memset(b, 0xff, 32);
	is_int(f(0, b, 32), 0x62a8ab43u, "%s: 32 0xff bytes", path);
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)i;
	is_int(f(0, b, 32), 0x46dd794eu, "%s: ascending", path);
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)(31 - i);
	is_int(f(0, b, 32), 0x113fdb5cu, "%s: descending", path);
}

/* Bitwise reference: the definition, no tables. */
static uint32_t crc_ref(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffff;

	while (n--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? c >> 1 ^ 0x82f63b78 : c >> 1;
	}
	return ~c;
}

int main(void)
{
	static uint8_t big[4096 + 16];
	int bad_hw = 0, bad_sw = 0, bad_chain = 0;

	vectors(hs_crc32c, hs_crc32c_hw() ? "hw" : "dispatch(sw)");
	vectors(hs_crc32c_sw, "sw");
	ok(1, "hardware path %s", hs_crc32c_hw() ? "in use" : "not available");

	srand(7);
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)rand();
	/* Every alignment 0..15 and lengths around the 8-byte blocks. */
	for (size_t off = 0; off < 16; off++) {
		for (size_t n = 0; n < 80; n++) {
			uint32_t want = crc_ref(big + off, n);

			bad_hw += hs_crc32c(0, big + off, n) != want;
			bad_sw += hs_crc32c_sw(0, big + off, n) != want;
		}
		uint32_t want = crc_ref(big + off, 4096);

		bad_hw += hs_crc32c(0, big + off, 4096) != want;
		bad_sw += hs_crc32c_sw(0, big + off, 4096) != want;
	}
	is_int(bad_hw, 0, "hs_crc32c matches reference at every alignment and odd length");
	is_int(bad_sw, 0, "hs_crc32c_sw matches reference at every alignment and odd length");

	for (size_t cut = 0; cut <= 300; cut += 7) {
		uint32_t whole = hs_crc32c(0, big, 300);

		bad_chain += hs_crc32c(hs_crc32c(0, big, cut), big + cut, 300 - cut) != whole;
		bad_chain += hs_crc32c_sw(hs_crc32c(0, big, cut), big + cut, 300 - cut) != whole;
		bad_chain += hs_crc32c(hs_crc32c_sw(0, big, cut), big + cut, 300 - cut) != whole;
	}
	is_int(bad_chain, 0, "chained crcs equal one crc, across both paths");
	return tap_done();
}
