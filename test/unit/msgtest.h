/*
 * msgtest.h - what the message-codec unit tests share: one frame buffer,
 * parsing it back, and the truncation/trailing-byte check every decoder
 * must pass.  Include after tap.h, once per test program.
 */
#ifndef HS_MSGTEST_H
#define HS_MSGTEST_H

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "frame.h"

static struct hs_buf b;   /* the encoder's output: one frame */
static struct hs_frame f; /* b parsed back by parse_one() */

/* Parse the single frame in b (checks its type and the test id 77),
 * leaving its body in f. */
static int parse_one(uint16_t type)
{
	const char *why;
	ssize_t r = hs_frame_parse(b.data, b.len, 0, &f, &why);

	return r == (ssize_t)b.len && f.type == type && f.id == 77;
}

typedef int (*dec_fn)(const uint8_t *p, size_t n);

/* dec_NAME(p, n): hs_msg_NAME_dec into a throwaway struct TYPE. */
#define DEC(name, type)                                                        \
	static int dec_##name(const uint8_t *p, size_t n)                      \
	{                                                                      \
		type m;                                                        \
		return hs_msg_##name##_dec(p, n, &m);                          \
	}

/*
 * f's body must decode; every shorter prefix must be refused; one extra
 * byte must be refused unless trailing_ok.  Copies the body to the heap at
 * exact size so a sanitizer would catch any read past it.
 */
static void check_body(dec_fn dec, const char *name, int trailing_ok)
{
	size_t n = f.body_len;
	uint8_t *p = hs_xmalloc(n + 1);
	int bad = 0;

	memcpy(p, f.body, n);
	is_int(dec(p, n), 0, "%s: valid body decodes", name);
	for (size_t k = 0; k < n; k++) {
		uint8_t *q = hs_xmalloc(k ? k : 1);

		memcpy(q, p, k);
		bad += dec(q, k) != -HS_EPROTO;
		free(q);
	}
	is_int(bad, 0, "%s: all %zu truncations refused", name, n);
	p[n] = 0;
	is_int(dec(p, n + 1), trailing_ok ? 0 : -HS_EPROTO, "%s: trailing byte %s", name,
	       trailing_ok ? "allowed" : "refused");
	free(p);
}

#endif
