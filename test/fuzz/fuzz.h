/*
 * fuzz.h - shared helpers of the libFuzzer targets in test/fuzz/ (built and
 * run by test/fuzz/run).  Every target decodes untrusted bytes and then
 * walks everything the decoder handed out, so a decoder that accepted a bad
 * length reads out of bounds under ASan; CHECK() turns a broken invariant
 * (a decoder contradicting itself) into a crash libFuzzer reports.
 */
#ifndef HS_FUZZ_H
#define HS_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                              \
	do {                                                                  \
		if (!(c)) {                                                   \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, \
				__LINE__, #c);                                \
			abort();                                              \
		}                                                             \
	} while (0)

/* Read every byte of p[0..n): ASan reports any that is out of bounds. */
static inline uint32_t fz_touch(const void *p, size_t n)
{
	const volatile uint8_t *q = p;
	uint32_t s = 0;

	for (size_t i = 0; i < n; i++)
		s += q[i];
	return s;
}

/* An exact-size heap copy, so reading one byte past the end is caught
 * (libFuzzer's own buffer is exact too, but sub-slices of it are not). */
static inline uint8_t *fz_dup(const uint8_t *p, size_t n)
{
	uint8_t *c = malloc(n ? n : 1);

	if (!c)
		abort();
	if (n)
		memcpy(c, p, n);
	return c;
}

#endif
