/*
 * reader.h - the client side of READ (proto_client.h "READS"): one or more
 * reads over one connection, decoded into records and gaps, with the credit
 * window kept in step with the caller's output.  hs-cat and hs-tail are its
 * users.
 *
 * DESIGN.  The reader sends one READ per stream (read_id = index + 1) and
 * then loops on frames.  A DELIVER is decoded run by run (hs_run_parse, CRC
 * checked end to end, then hs_run_next): every record is passed to
 * ops->record with its LSN (the run's first_lsn + index) and timestamp,
 * pointing into the received frame, so a record costs no copy and no
 * allocation here.  A READ_GAP is passed entry by entry to ops->gap.  After
 * each DELIVER or READ_GAP frame, ops->flush is called once: the caller
 * writes what it formatted with one write(2).  Only when that returned is
 * the frame's credit (its records and payload bytes) given back, in
 * READ_WINDOWs of a quarter window each, so the server never runs more than
 * one window ahead of what was actually written: memory is bounded by the
 * window plus one frame, whatever the speed of stdout.  READ_WINDOW frames
 * are queued on the connection and go out before the reader next waits.
 *
 * Each stream remembers where it got to (next_lsn: after the last record or
 * gap seen) and how many records it still wants, so hs_reader_start() on a
 * new connection resumes every unfinished read where it stopped (hs-tail
 * -F).  A read that never delivered anything restarts from its original
 * position (for `tail` that is the tail at the new start).
 *
 * With retry_ms set (hs-tail -F), a read that ends with -HS_ENOSTREAM,
 * -HS_EUNAVAIL or -HS_EAGAIN is not over: it is sent again retry_ms later,
 * so a follower can wait for a stream that does not exist yet, or for one
 * whose peers are down or whose recovery failed (the server ends the
 * stream's waiters with -HS_EAGAIN and the next READ activates it again).
 *
 * SUBSCRIPTIONS.  With hs_reader_subscribe() the reader has one entry, a
 * named subscription: it sends SUBSCRIBE instead of READ (a new connection
 * subscribes again: the server resumes from the checkpoint), accepts runs
 * below the last LSN seen (redeliveries), and after each successful flush
 * sends one ACK with the LSN ranges of the records it passed on - so only
 * records whose output write(2) returned are ever acknowledged, and a
 * reader killed at any point leaves the rest to be redelivered.  ACKs are
 * answered by RESULT, counted in acks_pending.  -HS_ELOCKED (another
 * session holds the subscription) is retried like -HS_ENOSTREAM when
 * retry_ms is set.  hs_reader_finish() ends politely: cancel, then wait
 * for READ_END and every ACK's answer.
 *
 * Waiting is done here with ppoll() on the connection and an optional
 * signal mask, so a SIGINT/SIGTERM handler that sets a flag interrupts an
 * idle follow at once (syncconn's own waits retry on EINTR).
 *
 * The sink (struct hs_reader_sink) is the output half the tools share:
 * records formatted with format.h into one buffer, written with one
 * write(2) per frame; gaps as json objects or stderr lines.
 */
#ifndef HS_READER_H
#define HS_READER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "format.h"
#include "pos.h"
#include "syncconn.h"

/* Returned by ops callbacks and by hs_reader_run(): stop, not an error. */
#define HS_READER_STOP 1

/* Default credit: records and payload bytes in flight per read. */
#define HS_READER_WIN_RECORDS (256u << 10)
#define HS_READER_WIN_BYTES (16u << 20)

struct hs_reader_ops {
	/* Record of stream idx (r and r->data borrowed for the call).
	 * Returns 0, HS_READER_STOP (stop after this record: the current
	 * batch is still flushed), or a negative code (stop at once). */
	int (*record)(void *arg, size_t idx, const struct hs_record *r);
	/* Gap of stream idx (g borrowed).  Returns as record.  May be NULL:
	 * gaps are then ignored. */
	int (*gap)(void *arg, size_t idx, const struct hs_fmt_gap *g);
	/* End of one DELIVER or READ_GAP frame: write the batch out.  Returns
	 * 0 or a negative code (-EPIPE for a closed stdout...), which ends
	 * hs_reader_run() with that code. */
	int (*flush)(void *arg);
};

struct hs_reader_stream {
	const char *name;    /* borrowed (argv); a valid stream name */
	uint8_t name_len;
	struct hs_pos from;  /* where the read (re)starts */
	struct hs_pos until; /* kind HS_POS_NONE: none (see READ) */
	uint64_t limit;      /* records still wanted; 0 = no limit */
	uint64_t next_lsn;   /* after the last record or gap seen; 0 none */
	uint64_t records;    /* records delivered so far */
	int open;            /* a READ is outstanding on the connection */
	int64_t retry_at;    /* CLOCK_MONOTONIC ms of the next READ; 0 none */
	uint64_t pend_records, pend_bytes; /* credit written, not yet granted */
	int ended;           /* READ_END received (status says how) */
	int status;          /* READ_END status (0 or negative) */
};

struct hs_reader {
	struct hs_sconn *conn;          /* borrowed; set by hs_reader_start */
	uint32_t flags;                 /* HS_CREAD_* for every READ */
	uint32_t win_records, win_bytes; /* credit per read, 0 = unlimited */
	int idle_timeout_ms;            /* max wait for a frame; < 0 forever */
	int retry_ms;                   /* 0, or resend a missing stream's READ */
	struct hs_reader_stream *s;     /* owned array */
	size_t n;
	size_t nopen;                   /* streams open or waiting to retry */
	const struct hs_reader_ops *ops; /* borrowed */
	void *arg;
	const char *why;                /* after -HS_EPROTO: static reason */
	/* after -HS_EREDIRECT: the address of the hs-serve that sequences the
	 * stream (client.h "REDIRECTS"; "" if it gave none) */
	char redirect[256];
	int sub;                        /* s[0] is a subscription (SUBSCRIBE) */
	uint32_t acks_pending;          /* ACKs sent, RESULT not yet received */
	uint64_t acked;                 /* records acknowledged */
	uint64_t (*ack)[2];             /* owned: one frame's ranges */
	size_t nack, capack;
};

/*
 * Set up a reader.  flags: HS_CREAD_FOLLOW and/or HS_CREAD_GAPS.  win_*:
 * the credit per read (0 = that dimension unlimited; the defaults above are
 * a good choice).  idle_timeout_ms: how long hs_reader_run() waits for the
 * next frame before failing with -HS_ETIMEOUT (< 0 waits for ever, what a
 * follower wants).  ops and arg are borrowed for the reader's life.
 */
void hs_reader_init(struct hs_reader *rd, uint32_t flags, uint32_t win_records,
		    uint32_t win_bytes, int idle_timeout_ms,
		    const struct hs_reader_ops *ops, void *arg);

/*
 * Add a read of stream name (borrowed, NUL-terminated, must outlive rd and be
 * a valid name: check with hs_stream_name_valid first) over [from, until);
 * until may be NULL or of kind HS_POS_NONE for "none".  limit: at most that
 * many records (0 = no limit).  Returns the stream's index (0, 1, ...), which
 * the callbacks receive.
 */
size_t hs_reader_add(struct hs_reader *rd, const char *name, const struct hs_pos *from,
		     const struct hs_pos *until, uint64_t limit);

/*
 * Make rd a subscription reader: add the one entry, the subscription name
 * (borrowed, NUL-terminated, valid as a stream name), with limit records
 * at most (0 = none).  Call instead of hs_reader_add(), once.  Returns 0.
 */
size_t hs_reader_subscribe(struct hs_reader *rd, const char *sub, uint64_t limit);

/*
 * Polite end of a reader on its current connection: READ_CANCEL for the
 * open reads, then wait up to timeout_ms for their READ_END and for the
 * answers to every ACK sent; deliveries arriving meanwhile are dropped (not
 * printed, not acknowledged: the server delivers them again).  Returns 0,
 * -HS_ETIMEOUT, a RESULT error of an ACK (-HS_ENOENT: the subscription was
 * deleted), or a connection error.
 */
int hs_reader_finish(struct hs_reader *rd, int timeout_ms);

/*
 * Queue a READ on c (borrowed until the next start or free) for every stream
 * not yet ended, from where it got to, and flush.  Streams are marked open.
 * Returns 0 or the flush error (-EPIPE, -ECONNRESET...).
 */
int hs_reader_start(struct hs_reader *rd, struct hs_sconn *c);

/*
 * Receive and dispatch frames until every open read has ended, a callback
 * stopped, *stop became nonzero, or an error.  stop may be NULL.  waitmask
 * (may be NULL) is the signal mask in force while waiting (ppoll): block the
 * stopping signals outside, unblock them here, so a signal that sets *stop
 * cannot be lost between the check and the wait.
 * Returns:
 *   0               every read ended with status 0 (or -ECANCELED)
 *   status < 0      a read ended with this READ_END status and is not
 *                   retried (-HS_ENOSTREAM...): returned at once, other
 *                   reads still open; hs_reader_status() names the stream
 *   HS_READER_STOP  a callback returned it, or *stop was set
 *   < 0             a callback's code, -HS_ETIMEOUT (idle timeout),
 *                   -HS_EUNAVAIL (the server closed the connection), an
 *                   I/O error, or -HS_EPROTO / -HS_ECHECKSUM for a malformed
 *                   frame or run (rd->why says why).  The open reads are
 *                   then marked not open (not ended): hs_reader_start() on a
 *                   new connection resumes them.
 */
int hs_reader_run(struct hs_reader *rd, volatile sig_atomic_t *stop, const sigset_t *waitmask);

/* Send READ_CANCEL for every open read (no wait for READ_END), for a polite
 * stop.  Returns 0 or the flush error. */
int hs_reader_cancel(struct hs_reader *rd);

/* The first nonzero READ_END status among the streams, or 0; *idx (may be
 * NULL) gets that stream's index. */
int hs_reader_status(const struct hs_reader *rd, size_t *idx);

/* Free the stream array; rd is zeroed. */
void hs_reader_free(struct hs_reader *rd);

/* ---- the tools' output ------------------------------------------------- */

struct hs_reader_sink {
	struct hs_fmt_out *fmt;  /* borrowed, set up by the caller; its stream
				 * name is set here when names is 1 */
	const struct hs_reader *rd;   /* borrowed: stream names for gaps */
	int fd;                       /* output, usually 1 */
	int names;      /* set the stream name per record (json with several
			 * streams, templates: %S) */
	int show_gaps;  /* --gaps: HOLE and BRIDGE are reported too */
	uint64_t max;   /* stop after this many records in all; 0 = none */
	uint64_t written;  /* records formatted so far */
	int dataloss;   /* a DATALOSS gap was seen (exit 74 at the end) */
	int write_err;  /* 0, or the first output write error (-EPIPE...) */
	const char *prog;  /* for stderr lines; borrowed */
	size_t last_idx;   /* stream whose name is set */
	struct hs_buf buf; /* owned: one frame's output */
};

/*
 * Gaps: in json with show_gaps, every gap is also a gap object in the
 * output, in LSN order.  TRIM and DATALOSS are always noted on stderr
 * ("PROG: STREAM: gap TRIM e1n1..e1n9: records trimmed"), and HOLE and
 * BRIDGE too when show_gaps is set and the format is not json.
 */
void hs_reader_sink_init(struct hs_reader_sink *k, struct hs_fmt_out *fmt,
			 const struct hs_reader *rd, int fd, const char *prog);
/*
 * Set up o from the tools' output flags: format (--format: raw, json,
 * netstring, or a template when it contains '%'; NULL = raw), nul (-0) and
 * delim (-d DELIM, NULL = none; raw only).  Returns 0, or -HS_EUSAGE with a
 * message for the user in msg[0..n) (e.g. "-0 only goes with the raw
 * format").  All strings borrowed; o's template is owned by o.
 */
int hs_reader_fmt_setup(struct hs_fmt_out *o, const char *format, int nul, const char *delim,
			char *msg, size_t n);

/*
 * The read and output flags hs-cat and hs-tail share: -c/--count N,
 * -n/--last N, -0/--null, -d/--delimiter DELIM, --format FMT, --gaps.  A
 * tool puts HS_READOPT_SHORTOPTS and HS_READOPT_LONGOPTS in its getopt
 * tables (its own private option values start at HS_READOPT_NEXT) and
 * passes each option to hs_readopts_option(), then hs_readopts_fmt() to
 * set up its output.
 */
enum { HS_READOPT_FORMAT = HS_OPT_FIRST_PRIVATE, HS_READOPT_GAPS, HS_READOPT_NEXT };

#define HS_READOPT_SHORTOPTS "c:n:0d:"
#define HS_READOPT_LONGOPTS                                            \
	{ "count", required_argument, NULL, 'c' },                     \
	{ "last", required_argument, NULL, 'n' },                      \
	{ "null", no_argument, NULL, '0' },                            \
	{ "delimiter", required_argument, NULL, 'd' },                 \
	{ "format", required_argument, NULL, HS_READOPT_FORMAT },      \
	{ "gaps", no_argument, NULL, HS_READOPT_GAPS }

struct hs_readopts {
	uint64_t count;           /* -c: records wanted (have_count) */
	uint64_t last;            /* -n: the last N records (have_last) */
	int have_count, have_last;
	int nul, gaps;            /* -0, --gaps */
	const char *delim;        /* -d, or NULL; borrowed from argv */
	const char *format;       /* --format, or NULL (raw); borrowed */
};

/* Handle opt if it is one of the flags above.  Returns -1 (not one of
 * them), 0 (recorded in o), or 64 after printing a usage error (a count
 * that is not a number, -n over INT64_MAX). */
int hs_readopts_option(struct hs_readopts *o, struct hs_cli *c, int opt, const char *arg);

/* hs_reader_fmt_setup() from o.  Returns 0, or 64 after printing the
 * usage error. */
int hs_readopts_fmt(const struct hs_readopts *o, struct hs_cli *c, struct hs_fmt_out *fmt);

/* The callbacks; their arg is the struct hs_reader_sink.  flush returns
 * hs_reader_write()'s code (-EPIPE when stdout's reader went away). */
extern const struct hs_reader_ops hs_reader_sink_ops;
void hs_reader_sink_free(struct hs_reader_sink *k);

/*
 * Write b[0..n) to fd completely (retrying short writes and EINTR; one
 * write(2) in the common case).  Returns 0, or -errno (-EPIPE when the
 * reader of a pipe went away: the tools end quietly with status 0 then).
 */
int hs_reader_write(int fd, const void *b, size_t n);

#endif
