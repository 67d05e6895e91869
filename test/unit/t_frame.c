/* t_frame.c - frame parsing and writing, and every malformed class. */
#include <stdint.h>
#include <string.h>

#include "crc32c.h"
#include "err.h"
#include "frame.h"
#include "proto.h"
#include "tap.h"
#include "wire.h"

int main(void)
{
	struct hs_buf b = HS_BUF_INIT;
	struct hs_frame f;
	const char *why;
	uint8_t body[300], raw[64];
	ssize_t r;
	size_t start, flen;

	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = (uint8_t)(i * 31);
	body[5] = 0;

	/* Round trips: empty body, binary body, begin/end with wire writers. */
	is_int(hs_frame_write(&b, HS_MSG_STATS, 0, 7, NULL, 0), 0, "write empty body");
	is_int(b.len, 20, "empty frame is 20 bytes");
	r = hs_frame_parse(b.data, b.len, 0, &f, &why);
	is_int(r, 20, "parse empty frame");
	ok(f.type == HS_MSG_STATS && f.flags == 0 && f.id == 7 && f.body_len == 0,
	   "empty frame fields");

	hs_buf_reset(&b);
	hs_frame_write(&b, HS_MSG_STORE, 0x1234, 0xfedcba9876543210ull, body, sizeof(body));
	flen = b.len;
	is_int(flen, 320, "frame length = body + 20");
	is_int(hs_get32(b.data), 320, "length field includes header and crc");
	is_int(hs_get32(b.data + 316), hs_crc32c(0, b.data, 316), "crc covers header and body");
	r = hs_frame_parse(b.data, b.len, 4096, &f, &why);
	is_int(r, 320, "parse binary body");
	ok(f.type == HS_MSG_STORE && f.flags == 0x1234 && f.id == 0xfedcba9876543210ull,
	   "header fields");
	ok(f.body == b.data + 16 && f.body_len == 300 && !memcmp(f.body, body, 300),
	   "body points into the input and matches");

	/* Two frames back to back; begin/end form. */
	start = hs_frame_begin(&b, HS_MSG_END, 0, 99);
	is_int(start, 320, "begin returns the frame's offset");
	hs_w32(&b, 5);
	hs_w32(&b, (uint32_t)-HS_EIO);
	hs_frame_end(&b, start);
	r = hs_frame_parse(b.data + 320, b.len - 320, 0, &f, &why);
	is_int(r, 28, "second frame parses");
	ok(f.type == HS_MSG_END && f.id == 99 && f.body_len == 8 && hs_get32(f.body) == 5,
	   "second frame fields");

	/* Truncated: need more until complete, for every prefix. */
	{
		int bad = 0;

		for (size_t n = 0; n < flen; n++)
			bad += hs_frame_parse(b.data, n, 0, &f, &why) != 0;
		is_int(bad, 0, "every proper prefix returns 0 (need more)");
	}

	/* Short length. */
	hs_put32(raw, 12);
	why = NULL;
	r = hs_frame_parse(raw, 4, 0, &f, &why);
	is_int(r, -HS_EPROTO, "length 12 refused from 4 bytes");
	is_str(why, "frame length 12 below minimum 20", "short reason");
	hs_put32(raw, 0);
	is_int(hs_frame_parse(raw, 4, 0, &f, NULL), -HS_EPROTO, "length 0 refused (why NULL ok)");
	hs_put32(raw, 19);
	is_int(hs_frame_parse(raw, 4, 0, &f, &why), -HS_EPROTO, "length 19 refused");

	/* Oversized, detected from the length alone. */
	hs_put32(raw, 70000000);
	r = hs_frame_parse(raw, 4, 0, &f, &why);
	is_int(r, -HS_ETOOBIG, "70000000 refused from 4 bytes (default max)");
	is_str(why, "frame of 70000000 bytes over the 67108864 limit", "oversize reason");
	hs_put32(raw, 4097);
	is_int(hs_frame_parse(raw, 4, 4096, &f, &why), -HS_ETOOBIG, "4097 over max 4096");
	hs_put32(raw, 0xffffffff);
	is_int(hs_frame_parse(raw, 4, 0, &f, &why), -HS_ETOOBIG, "0xffffffff refused");
	is_int(hs_frame_parse(b.data, flen, 319, &f, &why), -HS_ETOOBIG,
	       "valid frame over a smaller max refused");

	/* Bad CRC in the crc field itself. */
	b.data[319] ^= 1;
	r = hs_frame_parse(b.data, flen, 0, &f, &why);
	is_int(r, -HS_EPROTO, "bad crc refused");
	is_str(why, "bad frame checksum", "crc reason");
	b.data[319] ^= 1;

	/* Flip each bit of each byte: never a wrong accept. */
	{
		int wrong = 0, needmore = 0;

		for (size_t i = 0; i < flen; i++) {
			for (int bit = 0; bit < 8; bit++) {
				b.data[i] ^= (uint8_t)(1 << bit);
				r = hs_frame_parse(b.data, b.len, 0, &f, &why);
				if (r > 0)
					wrong++;
				if (r == 0)
					needmore++;
				/* Only a larger length may ask for more. */
				if (r == 0 && (i >= 4 || hs_get32(b.data) <= b.len))
					wrong++;
				b.data[i] ^= (uint8_t)(1 << bit);
			}
		}
		is_int(wrong, 0, "no flipped bit is accepted (%zu bytes x 8 bits)", flen);
		ok(needmore > 0, "length flips ask for more or fail (%d asked for more)", needmore);
	}
	is_int(hs_frame_parse(b.data, b.len, 0, &f, &why), 320, "restored frame parses again");

	/* Unknown type, with a valid CRC. */
	hs_buf_reset(&b);
	hs_frame_write(&b, 999, 0, 1, "x", 1);
	r = hs_frame_parse(b.data, b.len, 0, &f, &why);
	is_int(r, -HS_EPROTO, "unknown type refused");
	is_str(why, "unknown message type 999", "unknown type reason");
	hs_buf_reset(&b);
	hs_frame_write(&b, 0, 0, 1, NULL, 0);
	is_int(hs_frame_parse(b.data, b.len, 0, &f, &why), -HS_EPROTO, "type 0 refused");

	/* Known types table. */
	{
		static const uint16_t known[] = { 1, 2, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
						  32, 33, 34, 35, 36, 37 };
		int bad = 0;

		/* Known exactly when named: the two tables cannot drift apart. */
		for (uint32_t t = 0; t < 65536; t++)
			bad += hs_msg_known((uint16_t)t) != !!strcmp(hs_msg_name((uint16_t)t), "?");
		is_int(bad, 0, "a type is known exactly when it has a name");
		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			ok(hs_msg_known(known[i]) && strcmp(hs_msg_name(known[i]), "?"),
			   "type %u known as %s", known[i], hs_msg_name(known[i]));
		is_str(hs_msg_name(3), "?", "name of unknown type");
	}

	/* Frame at max exactly is accepted. */
	hs_buf_reset(&b);
	{
		static uint8_t big[4096 - 20];

		hs_frame_write(&b, HS_MSG_STATSREPLY, 0, 3, big, sizeof(big));
		is_int(hs_frame_parse(b.data, b.len, 4096, &f, &why), 4096, "frame of exactly max");
	}

	hs_buf_free(&b);
	return tap_done();
}
