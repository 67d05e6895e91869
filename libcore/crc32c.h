/*
 * crc32c.h - CRC32C (Castagnoli, reflected polynomial 0x82f63b78), the
 * checksum of frames and runs.
 *
 * The pre- and post-inversion are inside the function, so a CRC is started
 * with 0 and chained by passing the previous result:
 *   hs_crc32c(hs_crc32c(0, a, n), b, m) == hs_crc32c(0, a || b, n + m)
 *   hs_crc32c(0, "123456789", 9) == 0xe3069283
 * On x86-64 CPUs with SSE4.2 the crc32 instruction is used (checked once, at
 * the first call); elsewhere slicing-by-8 tables.
 */
#ifndef HS_CRC32C_H
#define HS_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC32C of p[0..n) continuing crc (0 to start).  p is borrowed; any
 * alignment; n may be 0 (returns crc unchanged). */
uint32_t hs_crc32c(uint32_t crc, const void *p, size_t n);

/* The same, always through the portable table path: for tests and for
 * comparing the two implementations. */
uint32_t hs_crc32c_sw(uint32_t crc, const void *p, size_t n);

/* 1 if hs_crc32c() uses the hardware instruction on this CPU, else 0. */
int hs_crc32c_hw(void);

#endif
