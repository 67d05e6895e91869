/*
 * frame.h - the frame codec: splitting a byte stream into frames, and
 * writing frames into a buffer.  The layout is specified in proto.h:
 *
 *   u32 length | u16 type | u16 flags | u64 id | body | u32 crc32c
 *
 * Parsing never copies: the parsed body points into the caller's bytes.
 * Writing reserves the 16-byte header, lets the caller append the body with
 * the wire.h writers, then patches the length and appends the CRC, so a
 * message is encoded with no intermediate buffer.
 */
#ifndef HS_FRAME_H
#define HS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"

struct hs_frame {
	uint16_t type;
	uint16_t flags;
	uint64_t id;
	const uint8_t *body; /* borrowed: points into the parsed bytes */
	size_t body_len;
};

/*
 * Parse the frame at the start of p[0..n).  max is the largest frame
 * accepted (whole frame, header and CRC included; 0 means
 * HS_FRAME_MAX_DEFAULT).
 * Returns:
 *   > 0  the frame's length: *f is filled, f->body points into p (borrowed,
 *        valid as long as p is); the caller consumes that many bytes.
 *   0    incomplete: read more and call again (f untouched).  An oversized
 *        or too short length is reported as soon as the 4 length bytes are
 *        there, without waiting for the rest.
 *   -HS_ETOOBIG  length over max;
 *   -HS_EPROTO   length below 20, bad CRC, or unknown type.
 * On error *why (if why is not NULL) is set to a human reason, valid until
 * the next call from the same thread ("frame length 12 below minimum 20",
 * "bad frame checksum", "unknown message type 999").  The connection is then
 * unusable: the stream has lost its framing.
 */
ssize_t hs_frame_parse(const uint8_t *p, size_t n, size_t max, struct hs_frame *f,
		       const char **why);

/*
 * Start a frame at the end of b: reserves the 16-byte header (length left
 * 0).  Returns the frame's start offset, to pass to hs_frame_end() after the
 * body has been appended to b.
 */
size_t hs_frame_begin(struct hs_buf *b, uint16_t type, uint16_t flags, uint64_t id);

/* Finish the frame begun at start: patch its length, append its CRC. */
void hs_frame_end(struct hs_buf *b, size_t start);

/* Append a whole frame with body[0..len) (body borrowed; may be NULL when
 * len is 0).  Returns 0, or -HS_ETOOBIG if the frame would not fit a u32
 * length (b is then unchanged). */
int hs_frame_write(struct hs_buf *b, uint16_t type, uint16_t flags, uint64_t id,
		   const void *body, size_t len);

/* Message types: true if type is one of enum hs_msg (proto.c). */
bool hs_msg_known(uint16_t type);

#endif
