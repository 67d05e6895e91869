/*
 * syncconn.h - a blocking framed connection, for tools and simple clients
 * that do one thing at a time and have no event loop (hs-ptool, admin
 * commands, tests).
 *
 * The caller appends whole frames to hs_sconn_out() (the proto.h encoders),
 * sends them with hs_sconn_flush(), and reads replies one frame at a time
 * with hs_sconn_recv(), which waits at most the connection's timeout.
 * Pipelining is the caller's business: it may send many requests before
 * reading any reply.  Input is read in large chunks into one buffer and
 * frames are parsed in place, so a received frame costs no copy.
 *
 * Every function returns 0 (or a count) on success and a negative code on
 * failure; after an error other than -HS_ETIMEOUT the connection is
 * unusable and should be closed.
 */
#ifndef HS_SYNCCONN_H
#define HS_SYNCCONN_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "frame.h"
#include "proto.h"

struct hs_sconn {
	int fd;               /* owned; -1 when closed */
	struct hs_buf in;     /* received bytes; in.data[in_off..] not yet parsed */
	size_t in_off;
	struct hs_buf out;    /* frames not yet sent */
	size_t max_in;        /* largest frame accepted (HS_FRAME_MAX_DEFAULT) */
	uint32_t max_out;     /* largest frame the other side accepts (HELLO) */
	int timeout_ms;       /* per wait in recv/flush; < 0 waits for ever */
	const char *why;      /* after -HS_EPROTO/-HS_ETOOBIG: static reason */
	struct hs_hello hello; /* the other side's HELLO (auth not kept) */
};

/* Connect to addr (borrowed, net.h syntax) within timeout_ms, which also
 * becomes the per-wait timeout.  c is initialised even on failure (then
 * c->fd is -1 and hs_sconn_close is a no-op).  Returns 0 or a net.h code. */
int hs_sconn_open(struct hs_sconn *c, const char *addr, int timeout_ms);

/* Send HELLO {version, role, node_id, our max_in} and wait for the answer.
 * Returns 0 with c->hello filled and c->max_out set; -HS_EVERSION (or the
 * status of any RESULT) when the other side refused, with its message
 * copied into msg[0..msg_len) (NUL-terminated; msg may be NULL); -HS_EPROTO
 * on any other reply; or an I/O code. */
int hs_sconn_hello(struct hs_sconn *c, uint16_t version, uint8_t role, uint32_t node_id,
		   char *msg, size_t msg_len);

/* The output buffer: append whole frames, then hs_sconn_flush(). */
static inline struct hs_buf *hs_sconn_out(struct hs_sconn *c) { return &c->out; }

/* Send everything buffered, blocking (each wait for writability bounded by
 * the timeout).  0, -HS_ETIMEOUT, or -errno (-EPIPE, -ECONNRESET...). */
int hs_sconn_flush(struct hs_sconn *c);

/*
 * Receive the next frame.  Returns 1 with *f filled (f->body borrows c's
 * buffer until the next hs_sconn_recv or close); 0 on an orderly EOF at a
 * frame boundary; -HS_ETIMEOUT if nothing complete arrived in time (the
 * connection stays usable); -HS_EPROTO/-HS_ETOOBIG for a malformed frame
 * (c->why says why) or EOF in the middle of a frame; -errno on a read error.
 * Pending output is flushed first, so a request and its reply cannot
 * deadlock.
 */
int hs_sconn_recv(struct hs_sconn *c, struct hs_frame *f);

/* Wait up to timeout_ms for readable input without consuming it: 1 if a
 * byte or EOF is waiting, 0 on timeout, -errno. */
int hs_sconn_wait(struct hs_sconn *c, int timeout_ms);

/* Close the fd and free the buffers.  Safe to call twice. */
void hs_sconn_close(struct hs_sconn *c);

#endif
