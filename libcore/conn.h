/*
 * conn.h - a framed, buffered connection on the event loop.
 *
 * READ PATH.  Bytes are read into one reusable input buffer with a read
 * offset; every complete frame in it is parsed in place (hs_frame_parse) and
 * handed to ops->frame with its body borrowed from that buffer.  The unparsed
 * tail is moved to the front once per read, never per frame.  A malformed
 * frame logs "closing connection from <peer>: <why>" at warning level and
 * closes that connection only (closed gets -HS_EPROTO or -HS_ETOOBIG).
 *
 * WRITE PATH.  Callers append whole frames to hs_conn_out() with
 * hs_frame_begin/end (or hs_frame_write).  hs_conn_out() also queues the
 * connection's flush as a loop task (hs_loop_defer), which runs after the
 * turn's events, timers and before-sleep hooks: every frame appended during
 * one loop turn - replies produced by a group-commit hook included - leaves
 * in one send(2).  hs_conn_flush() sends immediately when the caller needs
 * that (e.g. a client about to block).  A partial send registers for
 * writability and continues from there.
 *
 * BACK-PRESSURE.  When more than the high-water mark is waiting to be sent,
 * the connection stops reading (it still finishes the frames it already
 * read); it reads again when the backlog falls below the low-water mark, and
 * ops->writable is called at that moment, so read streams can pace their
 * producers on it.
 *
 * LIFETIME.  hs_conn_new() takes the fd.  The connection ends by EOF, an
 * I/O error, a malformed frame, or hs_conn_close(); ops->closed is then
 * called exactly once and the conn is freed right after it returns.  While
 * any of its callbacks (frame, writable) is running, the conn stays valid
 * even if it was closed: closing is finished when the callback returns.
 */
#ifndef HS_CONN_H
#define HS_CONN_H

#include <stddef.h>

#include "buf.h"
#include "frame.h"
#include "loop.h"

struct hs_conn;

#define HS_CONN_HIGH_WATER (4u << 20)
#define HS_CONN_LOW_WATER (1u << 20)

struct hs_conn_ops {
	/* A complete, valid frame.  f and f->body are borrowed until return.
	 * May append to hs_conn_out(c) of any conn, and close any conn. */
	void (*frame)(struct hs_conn *c, const struct hs_frame *f, void *arg);
	/* The connection closed: err 0 for an orderly EOF or hs_conn_close(c, 0),
	 * else the negative cause.  c is freed when this returns; its fd is
	 * already closed.  Must not call hs_conn_* on c. */
	void (*closed)(struct hs_conn *c, int err, void *arg);
	/* Optional: the output backlog fell below the low-water mark. */
	void (*writable)(struct hs_conn *c, void *arg);
};

/* Wrap fd (ownership transferred, even on failure) in a connection on loop l
 * (borrowed; must outlive the conn).  ops is borrowed (usually static),
 * arg is passed to every callback.  The fd is made non-blocking; a TCP
 * connect may still be in progress.  Returns the conn, or NULL with the fd
 * closed if it could not be registered with the loop. */
struct hs_conn *hs_conn_new(struct hs_loop *l, int fd, const struct hs_conn_ops *ops,
			    void *arg);

/* Largest frame accepted from the peer (default HS_FRAME_MAX_DEFAULT;
 * typically lowered to what HELLO announced). */
void hs_conn_set_max_frame(struct hs_conn *c, size_t max);

/* Back-pressure marks in bytes (defaults HS_CONN_LOW/HIGH_WATER); low <= high. */
void hs_conn_set_water(struct hs_conn *c, size_t low, size_t high);

/* The output buffer (owned by c; borrowed until c closes).  Append whole
 * frames only.  Each call queues the flush for the end of this loop turn, so
 * call it for each batch of appends rather than keeping the pointer across
 * turns.  On a closing conn the buffer still works but its bytes are
 * discarded. */
struct hs_buf *hs_conn_out(struct hs_conn *c);

/* Send what is buffered now, without blocking.  A write error closes the
 * conn, but never synchronously: c stays valid until the end of the turn
 * (or of its running callback), then closed is called. */
void hs_conn_flush(struct hs_conn *c);

/* Bytes appended but not yet sent. */
size_t hs_conn_out_pending(const struct hs_conn *c);

/* Close c with err (0 or negative).  Buffered output gets one last
 * non-blocking send attempt.  If called from inside one of c's own
 * callbacks, c stays valid until that callback returns and closed fires then;
 * otherwise closed fires before hs_conn_close returns.  On a conn already
 * closing (after an I/O error or EOF, waiting for the end of the loop turn)
 * it finishes the close now, unless inside c's own callback; the first err
 * wins.  Never call it after closed has fired: c is freed then. */
void hs_conn_close(struct hs_conn *c, int err);

/* 1 if c is closing (closed will fire soon), else 0. */
int hs_conn_closing(const struct hs_conn *c);

void *hs_conn_arg(const struct hs_conn *c);
void hs_conn_set_arg(struct hs_conn *c, void *arg);
struct hs_loop *hs_conn_loop(const struct hs_conn *c);

/* "unix" or "ip:port" ("[v6]:port") of the remote end; static storage in c,
 * valid until closed returns. */
const char *hs_conn_peer_name(struct hs_conn *c);

/* Stop (hold != 0) or resume reading from c, for the owner's own
 * back-pressure (e.g. a client whose requests in flight are over its
 * budget).  Frames already read are still delivered; ERR/HUP are still
 * noticed.  Independent of the output high-water mark. */
void hs_conn_hold_read(struct hs_conn *c, int hold);

#endif
