/*
 * frame.c - frame parsing and writing (layout in proto.h).
 *
 * The parser checks the length before anything else so that a peer sending
 * a huge or tiny length is refused from its first 4 bytes, rather than after
 * we have buffered up to max bytes; the CRC is checked before the type so a
 * corrupted type is reported as corruption.
 */
#include <stdio.h>

#include "crc32c.h"
#include "err.h"
#include "frame.h"
#include "proto.h"
#include "wire.h"

/* The reason text of the last error, per thread: it carries numbers. */
static __thread char why_buf[96];

static ssize_t fail(const char **why, int err, const char *fmt, unsigned long long a,
		    unsigned long long b)
{
	snprintf(why_buf, sizeof(why_buf), fmt, a, b);
	if (why)
		*why = why_buf;
	return err;
}

ssize_t hs_frame_parse(const uint8_t *p, size_t n, size_t max, struct hs_frame *f,
		       const char **why)
{
	uint32_t len, crc;
	uint16_t type;

	if (!max)
		max = HS_FRAME_MAX_DEFAULT;
	if (n < 4)
		return 0;
	len = hs_get32(p);
	if (len < HS_FRAME_OVERHEAD)
		return fail(why, -HS_EPROTO, "frame length %llu below minimum %llu", len,
			    HS_FRAME_OVERHEAD);
	if (len > max)
		return fail(why, -HS_ETOOBIG, "frame of %llu bytes over the %llu limit", len,
			    max);
	if (n < len)
		return 0;
	crc = hs_get32(p + len - 4);
	if (hs_crc32c(0, p, len - 4) != crc)
		return fail(why, -HS_EPROTO, "bad frame checksum", 0, 0);
	type = hs_get16(p + 4);
	if (!hs_msg_known(type))
		return fail(why, -HS_EPROTO, "unknown message type %llu", type, 0);
	f->type = type;
	f->flags = hs_get16(p + 6);
	f->id = hs_get64(p + 8);
	f->body = p + HS_FRAME_HDR;
	f->body_len = len - HS_FRAME_OVERHEAD;
	return len;
}

size_t hs_frame_begin(struct hs_buf *b, uint16_t type, uint16_t flags, uint64_t id)
{
	size_t start = b->len;
	uint8_t *h = hs_buf_reserve(b, HS_FRAME_HDR);

	hs_put32(h, 0);
	hs_put16(h + 4, type);
	hs_put16(h + 6, flags);
	hs_put64(h + 8, id);
	b->len += HS_FRAME_HDR;
	return start;
}

void hs_frame_end(struct hs_buf *b, size_t start)
{
	size_t len = b->len - start + 4;

	hs_put32(b->data + start, (uint32_t)len);
	hs_w32(b, hs_crc32c(0, b->data + start, b->len - start));
}

int hs_frame_write(struct hs_buf *b, uint16_t type, uint16_t flags, uint64_t id,
		   const void *body, size_t len)
{
	size_t start;

	if (len > UINT32_MAX - HS_FRAME_OVERHEAD)
		return -HS_ETOOBIG;
	start = hs_frame_begin(b, type, flags, id);
	hs_wbytes(b, body, len);
	hs_frame_end(b, start);
	return 0;
}
