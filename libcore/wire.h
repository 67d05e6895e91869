/*
 * wire.h - little-endian and big-endian integer codecs, and a bounds-checked
 * reader for message bodies.
 *
 * Writers append to a struct hs_buf.  The reader never reads past its end:
 * the first underflow sets rd->err = -HS_EPROTO, and every later get returns
 * zero, so a decoder can read a whole message and check err once at the end.
 */
#ifndef HS_WIRE_H
#define HS_WIRE_H

#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "err.h"

static inline void hs_put16(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }
static inline void hs_put32(uint8_t *p, uint32_t v)
{
	p[0] = v; p[1] = v >> 8; p[2] = v >> 16; p[3] = v >> 24;
}
static inline void hs_put64(uint8_t *p, uint64_t v)
{
	hs_put32(p, (uint32_t)v);
	hs_put32(p + 4, (uint32_t)(v >> 32));
}
static inline uint16_t hs_get16(const uint8_t *p) { return p[0] | (uint16_t)p[1] << 8; }
static inline uint32_t hs_get32(const uint8_t *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t hs_get64(const uint8_t *p)
{
	return hs_get32(p) | (uint64_t)hs_get32(p + 4) << 32;
}
/* Big-endian, for RocksDB keys (byte order = numeric order). */
static inline void hs_put64be(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}
static inline uint64_t hs_get64be(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static inline void hs_w8(struct hs_buf *b, uint8_t v) { hs_buf_appendc(b, v); }
static inline void hs_w16(struct hs_buf *b, uint16_t v) { hs_put16(hs_buf_reserve(b, 2), v); b->len += 2; }
static inline void hs_w32(struct hs_buf *b, uint32_t v) { hs_put32(hs_buf_reserve(b, 4), v); b->len += 4; }
static inline void hs_w64(struct hs_buf *b, uint64_t v) { hs_put64(hs_buf_reserve(b, 8), v); b->len += 8; }
static inline void hs_wbytes(struct hs_buf *b, const void *p, size_t n) { hs_buf_append(b, p, n); }

struct hs_rd {
	const uint8_t *p;   /* borrowed: next byte to read */
	const uint8_t *end; /* one past the last byte */
	int err;            /* 0, or -HS_EPROTO after the first underflow */
};

static inline void hs_rd_init(struct hs_rd *r, const void *p, size_t n)
{
	r->p = p;
	r->end = (const uint8_t *)p + n;
	r->err = 0;
}
static inline size_t hs_rd_left(const struct hs_rd *r) { return (size_t)(r->end - r->p); }
static inline const uint8_t *hs_rd_take(struct hs_rd *r, size_t n)
{
	const uint8_t *p = r->p;

	if (r->err || hs_rd_left(r) < n) {
		r->err = -HS_EPROTO;
		return NULL;
	}
	r->p += n;
	return p;
}
static inline uint8_t hs_r8(struct hs_rd *r) { const uint8_t *p = hs_rd_take(r, 1); return p ? p[0] : 0; }
static inline uint16_t hs_r16(struct hs_rd *r) { const uint8_t *p = hs_rd_take(r, 2); return p ? hs_get16(p) : 0; }
static inline uint32_t hs_r32(struct hs_rd *r) { const uint8_t *p = hs_rd_take(r, 4); return p ? hs_get32(p) : 0; }
static inline uint64_t hs_r64(struct hs_rd *r) { const uint8_t *p = hs_rd_take(r, 8); return p ? hs_get64(p) : 0; }

/* The end of a decoder: the first error, or -HS_EPROTO if bytes are left
 * over (a body must be consumed exactly), else 0. */
static inline int hs_rd_done(const struct hs_rd *r)
{
	if (r->err)
		return r->err;
	return hs_rd_left(r) ? -HS_EPROTO : 0;
}

#endif
