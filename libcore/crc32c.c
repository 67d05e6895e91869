/*
 * crc32c.c - CRC32C: the SSE4.2 crc32 instruction when the CPU has it,
 * slicing-by-8 tables otherwise.  Both paths compute the reflected CRC with
 * the inversions inside, so results are interchangeable and chain.
 */
#include <pthread.h>
#include <stdint.h>

#include "crc32c.h"
#include "wire.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

#define POLY 0x82f63b78u

static uint32_t tab[8][256];
static int use_hw;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? c >> 1 ^ POLY : c >> 1;
		tab[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = tab[0][i];

		for (int k = 1; k < 8; k++) {
			c = tab[0][c & 0xff] ^ c >> 8;
			tab[k][i] = c;
		}
	}
#if defined(__x86_64__)
	__builtin_cpu_init();
	use_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t crc_sw(uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	while (n && ((uintptr_t)p & 7)) {
		crc = tab[0][(crc ^ *p++) & 0xff] ^ crc >> 8;
		n--;
	}
	for (; n >= 8; p += 8, n -= 8) {
		uint32_t lo = hs_get32(p) ^ crc, hi = hs_get32(p + 4);

		crc = tab[7][lo & 0xff] ^ tab[6][lo >> 8 & 0xff] ^ tab[5][lo >> 16 & 0xff] ^
		      tab[4][lo >> 24] ^ tab[3][hi & 0xff] ^ tab[2][hi >> 8 & 0xff] ^
		      tab[1][hi >> 16 & 0xff] ^ tab[0][hi >> 24];
	}
	while (n--)
		crc = tab[0][(crc ^ *p++) & 0xff] ^ crc >> 8;
	return ~crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t n)
{
	uint64_t c = ~crc;

	while (n && ((uintptr_t)p & 7)) {
		c = _mm_crc32_u8((uint32_t)c, *p++);
		n--;
	}
	for (; n >= 8; p += 8, n -= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		c = _mm_crc32_u64(c, w);
	}
	while (n--)
		c = _mm_crc32_u8((uint32_t)c, *p++);
	return ~(uint32_t)c;
}
#endif

uint32_t hs_crc32c(uint32_t crc, const void *p, size_t n)
{
	pthread_once(&once, crc_init);
#if defined(__x86_64__)
	if (use_hw)
		return crc_hw(crc, p, n);
#endif
	return crc_sw(crc, p, n);
}

uint32_t hs_crc32c_sw(uint32_t crc, const void *p, size_t n)
{
	pthread_once(&once, crc_init);
	return crc_sw(crc, p, n);
}

int hs_crc32c_hw(void)
{
	pthread_once(&once, crc_init);
	return use_hw;
}
