/*
 * hs-append - append records read from stdin or files to a stream.
 *
 * PIPELINE.  One thread, one ppoll(2) over the current input and the socket
 * to hs-serve, so acknowledgements are read while input is read.  Input is
 * read in READ_CHUNK pieces and split by libcore/format.h; each record is
 * copied once, straight into the run of an APPEND frame under construction
 * (hs_msg_append_run_open + hs_run_add), never through a per-record buffer,
 * syscall or allocation.  A batch (one APPEND frame, one run) is closed when
 * it holds --batch records or BATCH_BYTES bytes (less if the server's max
 * frame is smaller), when --linger has passed since its first record, at the
 * end of the input, or when a signal stops the input.
 *
 * WINDOW.  Closed batches live in a ring of slots in input order; each slot
 * owns its frame buffer, reused after the ack, so a steady stream allocates
 * nothing.  At most --max-inflight batches are unacknowledged before input
 * reading pauses (back-pressure instead of memory); one input chunk can
 * overshoot the window by the few batches it completes, which bounds memory
 * by (max-inflight + READ_CHUNK / smallest batch) frames.  Acks may arrive in
 * any order (they are matched by request id); the ring's head advances over
 * acknowledged slots only, so --print-lsn prints in input order.
 * An APPEND refused with -HS_EAGAIN (nothing appended) is resent after the
 * suggested delay, before any newer batch; input order is kept as long as
 * hs-serve refused the APPENDs pipelined behind it too, which it does for
 * its stream-wide reasons (an epoch out of sequence numbers).
 *
 * LIMITS.  A record larger than HS_RECORD_MAX_DEFAULT (1 MiB, the limit
 * hs-serve enforces), or than what fits the server's max frame, is refused
 * by the splitter before it is buffered: every record before it is sent and
 * acknowledged first, then hs-append exits 65 naming the record.
 *
 * ENDING.  Exit 0 only when every record read was acknowledged.  SIGINT or
 * SIGTERM stop reading; the records already read are sent and their acks
 * awaited for at most --timeout (a second signal stops waiting).  On any
 * ending other than a clean one, one line on stderr says
 * "N records acknowledged, last LSN eXnY; M unacknowledged".  A lost
 * connection exits 69 (the unacknowledged records may or may not have been
 * stored: the line says so); no answer within --timeout exits 75.
 *
 * SEVERAL HS-SERVE (libcore/client.h "REDIRECTS AND FAILOVER").  An APPEND
 * answered -HS_EREDIRECT (another hs-serve sequences the stream; nothing
 * was appended) is resent, once per batch, to the address it names: no
 * new batch is sent until every APPEND on the old connection is answered
 * (the rest are redirected too), then the connection moves there and the
 * redirected batches go first, in input order.  When -a lists several
 * addresses, a lost connection or no answer within --timeout fails over:
 * the batches in flight are counted as unknown (they may or may not have
 * been stored; resending them could duplicate records), the connection is
 * made again through the list, and the batches not yet sent go on there.
 * Any unknown batch makes the exit status 75, with the usual line.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "cli.h"
#include "client.h"
#include "err.h"
#include "format.h"
#include "frame.h"
#include "log.h"
#include "parse.h"
#include "pos.h"
#include "proto.h"
#include "proto_client.h"
#include "run.h"
#include "syncconn.h"

#define READ_CHUNK (256u << 10)      /* bytes per read(2) of the input */
#define RECV_CHUNK (256u << 10)      /* bytes per recv(2) of the socket */
#define BATCH_BYTES (256u << 10)     /* target APPEND frame size */
#define DEF_BATCH 8192               /* records per APPEND */
#define DEF_LINGER_MS 5
#define DEF_INFLIGHT 16
#define ID_BASE 2                    /* id 1 is HELLO's */

static const char usage_text[] =
	"usage: hs-append [-c] [-0 | -d DELIM | --whole | --format raw|json|netstring]\n"
	"                 [--batch N] [--linger DUR] [--max-inflight N] [--print-lsn]\n"
	"                 [-a ADDR] [-t DUR] STREAM [FILE...]\n"
	"       hs-append -h | --help | -V | --version\n";

static const char help_text[] =
	"hs-append - append records to an HStore stream\n"
	"\n"
	"usage: hs-append [options] STREAM [FILE...]\n"
	"\n"
	"Reads FILEs (default stdin; '-' is stdin), one record per line, and appends\n"
	"them in order.  Exits 0 only when every record read was acknowledged.\n"
	"\n"
	"  -c, --create             create the stream if it does not exist\n"
	"  -0, --null               records end with NUL instead of newline\n"
	"  -d, --delimiter DELIM    records end with the byte DELIM (\\n \\t \\0 \\xHH ...)\n"
	"      --whole              each FILE is one record\n"
	"      --format FMT         raw (default), json (hs-cat --format json output,\n"
	"                           keeps \"ts\") or netstring\n"
	"      --batch N            at most N records per APPEND (default 8192)\n"
	"      --linger DUR         wait at most DUR to fill a batch (default 5ms)\n"
	"      --max-inflight N     at most N unacknowledged APPENDs (default 16)\n"
	"      --print-lsn          print each record's LSN (eNnM), one per line, in\n"
	"                           input order\n"
	"  -a, --addr ADDR          hs-serve address (HS_ADDR; default: the local one);\n"
	"                           A,B,...: tried in order, and failed over to when the\n"
	"                           connection is lost (records in flight: unknown, 75)\n"
	"  -t, --timeout DUR        give up when hs-serve does not answer within DUR\n"
	"                           (HS_TIMEOUT; default 5s)\n"
	"      --config FILE        configuration file (default ~/.config/hs/config)\n"
	"  -X KEY=VAL               override one configuration key\n"
	"  -v, --verbose            more on stderr (repeatable)\n"
	"  -q, --quiet              less on stderr\n"
	"  -h, --help               show this help and exit\n"
	"  -V, --version            show the version and exit\n"
	"\n"
	"Exit status: 0 all acknowledged, 64 usage, 65 bad or over-size record (1 MiB\n"
	"limit), 66 no such stream or file, 69 hs-serve unreachable or gone, 75\n"
	"unacknowledged records (signal, timeout, unknown after a failover), 76\n"
	"protocol mismatch.\n";

enum {
	OPT_WHOLE = HS_OPT_FIRST_PRIVATE,
	OPT_FORMAT,
	OPT_BATCH,
	OPT_LINGER,
	OPT_PRINT_LSN,
	OPT_INFLIGHT,
};

enum bstate { B_QUEUED = 1, B_SENT, B_RETRY, B_DONE };

/* One APPEND: its frame, kept until acknowledged (for -HS_EAGAIN resends). */
struct batch {
	struct hs_buf frame;     /* owned; capacity reused across batches */
	size_t sent;             /* bytes of frame sent */
	enum bstate state;
	uint32_t n;              /* records */
	uint64_t first_rec;      /* 0-based index over all input of the first */
	uint64_t first_lsn;      /* once acknowledged */
	int64_t retry_at;        /* B_RETRY: monotonic ms */
	int redirects;           /* -HS_EREDIRECT answers followed */
	int ok;                  /* B_DONE: acknowledged (1) or refused (0) */
};

struct app {
	struct hs_cli cli;
	/* options */
	const char *stream;
	uint8_t stream_len;
	uint32_t flags;          /* HS_APPEND_CREATE */
	enum hs_fmt fmt;
	uint8_t delim;
	uint32_t batch_max;
	uint64_t linger_ms;
	uint32_t max_inflight;
	int print_lsn;
	char **files;
	int nfiles;
	/* connection */
	struct hs_sconn c;
	size_t frame_limit;      /* close a batch before its frame passes this */
	/* input */
	struct hs_fmt_in in;
	int in_fd;               /* current input, -1 between inputs */
	int next_file;
	const char *in_name;     /* for messages */
	uint8_t *chunk;          /* owned; READ_CHUNK bytes */
	int input_done;
	int input_status;        /* exit status of an input error, 0 if none */
	/* batches: ring of slots, seq s at ring[s & (cap - 1)]; [head, tail)
	 * are closed; the open batch, if any, is at tail */
	struct batch *ring;
	size_t cap;              /* power of two */
	uint64_t head, tail, send_seq;
	int open;
	struct hs_msg_wr w;
	struct hs_run_builder rb;
	int64_t open_ms;
	uint32_t nretry;
	int64_t cur_send;        /* seq being sent (partially), or -1 */
	/* progress */
	int64_t now;             /* monotonic ms, once per loop turn */
	int64_t last_ack;        /* last progress of the oldest unacked batch */
	uint64_t read_recs, acked_recs, last_lsn;
	uint64_t unknown_recs;   /* sent when the connection was lost */
	int server_status;       /* exit status of a server error, 0 if none */
	int stopping;            /* signals received */
	int64_t stop_deadline;
	struct hs_buf lsn_out;   /* --print-lsn output of one turn */
	int stdout_gone;
	int lsn_stop;            /* a batch failed: LSNs printed up to it */
	/* several hs-serve */
	char redirect[256];      /* move there once nothing is in flight; "" none */
	int failovers;           /* reconnections through the -a list */
	int on_redirect;         /* connected to a redirect's address */
};

#define MAX_FAILOVERS 8          /* reconnections through the -a list per run */
#define REDIRECT_RETRY_MS 250    /* a batch redirected twice is resent so late */

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	got_signal++;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct batch *slot(struct app *a, uint64_t seq)
{
	return &a->ring[seq & (a->cap - 1)];
}

/* Make room for the slot at tail: double the ring when every slot is
 * taken, keeping each seq at its place modulo the new size. */
static void ring_reserve(struct app *a)
{
	struct batch *nr;
	size_t ncap;

	if (a->tail - a->head < a->cap)
		return;
	ncap = a->cap * 2;
	nr = hs_xcalloc(ncap, sizeof(*nr));
	for (uint64_t s = a->head; s < a->head + a->cap; s++)
		nr[s & (ncap - 1)] = a->ring[s & (a->cap - 1)];
	/* Every old slot was in use, so every buffer moved. */
	free(a->ring);
	a->ring = nr;
	a->cap = ncap;
}

/* Server-side errors: remember the first one, with a message.  After it
 * nothing new is sent; what is in flight is still awaited. */
static void server_fail(struct app *a, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void server_fail(struct app *a, int status, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (a->server_status)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: %s\n", a->cli.prog, line);
	a->server_status = status;
}

static void open_batch(struct app *a)
{
	struct batch *b;

	ring_reserve(a);
	b = slot(a, a->tail);
	hs_buf_reset(&b->frame);
	b->sent = 0;
	b->n = 0;
	b->redirects = 0;
	b->first_rec = a->read_recs;
	hs_msg_append_begin(&a->w, &b->frame, ID_BASE + a->tail);
	hs_msg_append_run_open(&a->w, a->stream, a->stream_len, a->flags);
	hs_run_begin(&a->rb, &b->frame, 0, 0, 0, NULL, 0);
	a->open = 1;
	a->open_ms = a->now;
}

static void close_batch(struct app *a)
{
	struct batch *b = slot(a, a->tail);

	if (!a->open)
		return;
	a->open = 0;
	if (!a->rb.n)
		return; /* nothing added: the slot is simply reused */
	b->n = a->rb.n;
	hs_run_end(&a->rb);
	hs_msg_wr_run_close(&a->w);
	hs_msg_wr_end(&a->w);
	b->state = B_QUEUED;
	/* The ack timer starts when the window goes from idle to busy. */
	if (a->head == a->tail)
		a->last_ack = a->now;
	a->tail++;
}

/* The splitter's callback: one record straight into the open run. */
static int on_record(void *arg, const struct hs_record *r)
{
	struct app *a = arg;

	if (a->open && a->rb.n &&
	    (a->rb.n >= a->batch_max ||
	     slot(a, a->tail)->frame.len + HS_RUN_REC_HDR + r->len + 8 > a->frame_limit))
		close_batch(a);
	if (!a->open)
		open_batch(a);
	hs_run_add(&a->rb, r->ts_ms, r->data, (uint32_t)r->len);
	a->read_recs++;
	return 0;
}

static void input_fail(struct app *a, int err)
{
	const char *why = hs_fmt_in_error(&a->in);

	if (a->nfiles > 1 || strcmp(a->in_name, "-"))
		fprintf(stderr, "%s: %s: %s\n", a->cli.prog, a->in_name,
			why && *why ? why : hs_strerror(err));
	else
		fprintf(stderr, "%s: %s\n", a->cli.prog, why && *why ? why : hs_strerror(err));
	a->input_status = hs_exit_status(err);
	a->input_done = 1;
}

/* Open the next input; sets input_done after the last one. */
static void next_input(struct app *a)
{
	const char *name;

	if (a->next_file >= (a->nfiles ? a->nfiles : 1)) {
		a->input_done = 1;
		return;
	}
	name = a->nfiles ? a->files[a->next_file] : "-";
	a->next_file++;
	a->in_name = name;
	if (!strcmp(name, "-")) {
		a->in_fd = STDIN_FILENO;
		return;
	}
	a->in_fd = open(name, O_RDONLY | O_CLOEXEC);
	if (a->in_fd < 0) {
		int e = errno;

		fprintf(stderr, "%s: cannot open '%s': %s\n", a->cli.prog, name, strerror(e));
		a->input_status = e == ENOENT ? EX_NOINPUT : e == EACCES ? EX_NOPERM : EX_IOERR;
		a->input_done = 1;
	}
}

static void end_input(struct app *a)
{
	int r = hs_fmt_in_finish(&a->in, on_record, a);

	if (a->in_fd > STDIN_FILENO)
		close(a->in_fd);
	a->in_fd = -1;
	if (r < 0) {
		input_fail(a, r);
		return;
	}
	next_input(a);
}

/* One read(2) of the input, split into the open batch. */
static void read_input(struct app *a)
{
	ssize_t n = read(a->in_fd, a->chunk, READ_CHUNK);
	int r;

	if (n < 0) {
		if (errno == EINTR || errno == EAGAIN)
			return;
		fprintf(stderr, "%s: cannot read '%s': %s\n", a->cli.prog, a->in_name,
			strerror(errno));
		a->input_status = EX_IOERR;
		a->input_done = 1;
		return;
	}
	if (n == 0) {
		end_input(a);
		return;
	}
	r = hs_fmt_in_feed(&a->in, a->chunk, (size_t)n, on_record, a);
	if (r < 0)
		input_fail(a, r);
}

static char *put_u32(char *p, uint32_t v)
{
	char tmp[10];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = tmp[--n];
	return p;
}

/* Append "eEnS\n" for every record of an acknowledged batch. */
static void print_lsns(struct app *a, const struct batch *b)
{
	char pre[16], *p;
	size_t plen;
	uint32_t esn = (uint32_t)b->first_lsn;

	p = pre;
	*p++ = 'e';
	p = put_u32(p, (uint32_t)(b->first_lsn >> 32));
	*p++ = 'n';
	plen = (size_t)(p - pre);
	p = (char *)hs_buf_reserve(&a->lsn_out, (size_t)b->n * (plen + 11));
	for (uint32_t i = 0; i < b->n; i++) {
		memcpy(p, pre, plen);
		p = put_u32(p + plen, esn + i);
		*p++ = '\n';
	}
	a->lsn_out.len = (size_t)((uint8_t *)p - a->lsn_out.data);
}

static void flush_lsns(struct app *a)
{
	size_t off = 0;

	while (off < a->lsn_out.len && !a->stdout_gone) {
		ssize_t n = write(STDOUT_FILENO, a->lsn_out.data + off, a->lsn_out.len - off);

		if (n > 0) {
			off += (size_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else {
			/* A closed stdout (| head) ends the printing quietly; the
			 * appending itself goes on: the records were given to us. */
			if (!(n < 0 && errno == EPIPE))
				fprintf(stderr, "%s: cannot write the LSNs: %s\n", a->cli.prog,
					n < 0 ? strerror(errno) : "short write");
			a->stdout_gone = 1;
		}
	}
	hs_buf_reset(&a->lsn_out);
}

/* Retire acknowledged slots at the head, in input order. */
static void advance_head(struct app *a)
{
	while (a->head < a->tail && slot(a, a->head)->state == B_DONE) {
		struct batch *b = slot(a, a->head);

		/* After a refused batch the LSN lines would no longer match the
		 * input lines one to one: stop printing there. */
		if (!b->ok)
			a->lsn_stop = 1;
		if (a->print_lsn && !a->stdout_gone && !a->lsn_stop)
			print_lsns(a, b);
		b->state = 0;
		a->head++;
	}
}

static void on_appended(struct app *a, const struct hs_frame *f)
{
	uint64_t seq = f->id - ID_BASE;
	struct hs_appended_ent e;
	struct hs_clist l;
	struct batch *b;
	char msg[512];
	int r;

	if (f->id < ID_BASE || seq < a->head || seq >= a->tail ||
	    (b = slot(a, seq))->state != B_SENT) {
		server_fail(a, EX_PROTOCOL, "hs-serve answered an unknown request %llu",
			    (unsigned long long)f->id);
		return;
	}
	if (f->type == HS_MSG_RESULT) {
		r = hs_client_result(f, msg, sizeof(msg));
		b->state = B_DONE;
		b->ok = 0;
		server_fail(a, hs_exit_status(r < 0 ? r : -HS_EPROTO), "append refused: %s%s%s",
			    hs_strerror(r < 0 ? r : -HS_EPROTO), msg[0] ? ": " : "", msg);
		return;
	}
	if (f->type != HS_MSG_APPENDED ||
	    hs_msg_clist_dec(HS_MSG_APPENDED, f->body, f->body_len, &l) < 0 || l.n != 1 ||
	    hs_appended_next(&l, &e) != 1) {
		b->state = B_DONE;
		b->ok = 0;
		server_fail(a, EX_PROTOCOL, "malformed answer to APPEND from hs-serve (%s)",
			    hs_msg_name(f->type));
		return;
	}
	if (e.status == 0 && e.count == b->n && hs_run_lsn_ok(e.first_lsn, e.count)) {
		b->state = B_DONE;
		b->ok = 1;
		b->first_lsn = e.first_lsn;
		a->acked_recs += b->n;
		if (e.first_lsn + b->n - 1 > a->last_lsn)
			a->last_lsn = e.first_lsn + b->n - 1;
		a->last_ack = a->now;
		return;
	}
	if (e.status == -HS_EREDIRECT && !a->server_status && e.text_len &&
	    e.text_len < sizeof(a->redirect)) {
		/* Nothing appended: resend at the sequencer's address, once;
		 * redirected again (that address did not answer us, or the
		 * stream moved meanwhile), resend here a little later, when
		 * this hs-serve may have found the sequencer gone (bounded by
		 * --timeout like any lack of progress). */
		b->state = B_RETRY;
		b->sent = 0;
		b->retry_at = a->now + (b->redirects ? REDIRECT_RETRY_MS : 0);
		a->nretry++;
		if (!b->redirects++ && !a->redirect[0]) {
			memcpy(a->redirect, e.text, e.text_len);
			a->redirect[e.text_len] = 0;
		}
		return;
	}
	if (e.status == -HS_EAGAIN && !a->server_status) {
		b->state = B_RETRY;
		b->sent = 0;
		b->retry_at = a->now + (e.detail ? e.detail : 1);
		a->nretry++;
		return;
	}
	b->state = B_DONE;
	b->ok = 0;
	switch (e.status) {
	case 0:
		server_fail(a, EX_PROTOCOL, "hs-serve acknowledged %u records of %u", e.count,
			    b->n);
		break;
	case -HS_ENOSTREAM:
		server_fail(a, EX_NOINPUT, "no such stream '%s'%s", a->stream,
			    a->flags & HS_APPEND_CREATE ? "" : " (-c creates it)");
		break;
	case -HS_ETOOBIG:
		server_fail(a, EX_DATAERR, "record %llu is larger than hs-serve accepts%s%.*s",
			    (unsigned long long)(b->first_rec + e.detail + 1),
			    e.text_len ? ": " : "", (int)e.text_len, e.text);
		break;
	case -HS_EAGAIN: /* after another failure: not resent */
	default:
		server_fail(a, hs_exit_status(e.status), "append failed: %s%s%.*s",
			    hs_strerror(e.status), e.text_len ? ": " : "", (int)e.text_len,
			    e.text);
		break;
	}
}

/* Connect to addrs instead (a redirect or a failover); the batches sent
 * must have been settled already.  A redirect's address that does not
 * answer (it died since) falls back to the -a list.  Returns 0, or fails
 * the run (exit status of the connection error) and returns < 0. */
static int switch_conn(struct app *a, const char *addrs, int redirect)
{
	char msg[1024];
	int r;

	hs_info("connecting to %s", addrs);
	a->cur_send = -1;
	a->on_redirect = redirect;
	r = hs_client_reconnect(&a->c, addrs, a->cli.timeout_ms, msg, sizeof(msg));
	if (r < 0 && redirect) {
		hs_info("%s; back to %s", msg, a->cli.addr ? a->cli.addr : "the default");
		a->on_redirect = 0;
		r = hs_client_reconnect(&a->c, a->cli.addr, a->cli.timeout_ms, msg, sizeof(msg));
	}
	a->now = now_ms();
	if (r < 0) {
		server_fail(a, hs_exit_status(r), "%s", msg);
		return r;
	}
	a->last_ack = a->now;
	return 0;
}

/* Connection trouble: every batch sent and not answered has an unknown
 * outcome; the ones not sent were simply not appended.  With several
 * addresses (-a A,B) those go on through the list (failover). */
static void conn_lost(struct app *a, int err)
{
	if (!a->server_status && (hs_client_multi(a->cli.addr) || a->on_redirect) &&
	    a->failovers < MAX_FAILOVERS) {
		a->failovers++;
		fprintf(stderr, "%s: lost the connection to hs-serve: %s; failing over\n",
			a->cli.prog, err ? hs_strerror(err) : "closed by hs-serve");
		for (uint64_t s = a->head; s < a->send_seq; s++) {
			struct batch *b = slot(a, s);

			if (b->state == B_SENT) {
				a->unknown_recs += b->n;
				b->state = B_DONE;
				b->ok = 0;
			}
		}
		/* A frame sent in part never reached hs-serve whole. */
		if (a->cur_send >= 0)
			slot(a, (uint64_t)a->cur_send)->sent = 0;
		a->redirect[0] = 0;
		if (switch_conn(a, a->cli.addr, 0) == 0)
			return;
		err = -HS_EUNAVAIL;
	}
	server_fail(a, EX_UNAVAILABLE, "lost the connection to hs-serve: %s",
		    err ? hs_strerror(err) : "closed by hs-serve");
	for (uint64_t s = a->head; s < a->tail; s++)
		if (slot(a, s)->state != B_DONE) {
			if (slot(a, s)->state == B_SENT || (int64_t)s == a->cur_send)
				a->unknown_recs += slot(a, s)->n;
			slot(a, s)->state = B_DONE;
			slot(a, s)->ok = 0;
		}
	a->cur_send = -1;
	if (a->c.fd >= 0) {
		close(a->c.fd);
		a->c.fd = -1;
	}
}

/* Read what the socket has and handle every complete frame. */
static void sock_read(struct app *a)
{
	struct hs_sconn *c = &a->c;
	struct hs_frame f;
	ssize_t n;

	if (c->in_off && c->in_off == c->in.len) {
		c->in.len = c->in_off = 0;
	} else if (c->in_off > c->in.cap / 2) {
		memmove(c->in.data, c->in.data + c->in_off, c->in.len - c->in_off);
		c->in.len -= c->in_off;
		c->in_off = 0;
	}
	hs_buf_reserve(&c->in, RECV_CHUNK);
	n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len, MSG_DONTWAIT);
	if (n == 0) {
		conn_lost(a, 0);
		return;
	}
	if (n < 0) {
		if (errno != EINTR && errno != EAGAIN)
			conn_lost(a, -errno);
		return;
	}
	c->in.len += (size_t)n;
	for (;;) {
		ssize_t k = hs_frame_parse(c->in.data + c->in_off, c->in.len - c->in_off,
					   c->max_in, &f, &c->why);

		if (k == 0)
			break;
		if (k < 0) {
			server_fail(a, EX_PROTOCOL, "malformed frame from hs-serve: %s", c->why);
			conn_lost(a, (int)k);
			return;
		}
		c->in_off += (size_t)k;
		on_appended(a, &f);
	}
}

/* The next batch to send: a due resend first, else the next new one. */
static int64_t pick_send(struct app *a)
{
	if (a->cur_send >= 0)
		return a->cur_send;
	if (a->redirect[0])
		return -1; /* moving: wait for the answers in flight */
	if (a->nretry && !a->server_status)
		for (uint64_t s = a->head; s < a->send_seq; s++)
			if (slot(a, s)->state == B_RETRY && slot(a, s)->retry_at <= a->now)
				return (int64_t)s;
	if (!a->server_status && a->send_seq < a->tail)
		return (int64_t)a->send_seq;
	return -1;
}

/* Send as much as the socket takes without blocking. */
static void sock_write(struct app *a)
{
	int64_t s;

	while ((s = pick_send(a)) >= 0) {
		struct batch *b = slot(a, (uint64_t)s);
		ssize_t n = send(a->c.fd, b->frame.data + b->sent, b->frame.len - b->sent,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				conn_lost(a, -errno);
			return;
		}
		a->cur_send = s;
		b->sent += (size_t)n;
		if (b->sent < b->frame.len)
			return;
		a->cur_send = -1;
		if (b->state == B_RETRY)
			a->nretry--;
		b->state = B_SENT;
		if ((uint64_t)s == a->send_seq)
			a->send_seq++;
	}
}

static int want_send(struct app *a)
{
	int64_t s = pick_send(a);

	return s >= 0 && a->c.fd >= 0;
}

/* Earliest retry time among B_RETRY slots, or -1. */
static int64_t next_retry(struct app *a)
{
	int64_t t = -1;

	if (a->nretry)
		for (uint64_t s = a->head; s < a->send_seq; s++)
			if (slot(a, s)->state == B_RETRY &&
			    (t < 0 || slot(a, s)->retry_at < t))
				t = slot(a, s)->retry_at;
	return t;
}

static void take_signals(struct app *a)
{
	if (!got_signal || got_signal == a->stopping)
		return;
	if (!a->stopping) {
		a->stop_deadline = a->now + (int64_t)a->cli.timeout_ms;
		a->input_done = 1;
		close_batch(a);
	}
	a->stopping = got_signal;
}

static int run(struct app *a)
{
	sigset_t unblocked;
	int64_t deadline;

	sigprocmask(SIG_BLOCK, NULL, &unblocked);
	sigdelset(&unblocked, SIGINT);
	sigdelset(&unblocked, SIGTERM);
	next_input(a);
	for (;;) {
		struct pollfd pfd[2];
		struct timespec ts, *tsp = NULL;
		int nfd = 0, in_idx = -1, sock_idx = -1, r;

		a->now = now_ms();
		take_signals(a);
		if (a->input_done)
			close_batch(a);
		if (a->open && a->now - a->open_ms >= (int64_t)a->linger_ms)
			close_batch(a);
		if (a->redirect[0] && !a->server_status && a->cur_send < 0) {
			int waiting = 0;

			for (uint64_t s = a->head; s < a->send_seq && !waiting; s++)
				waiting = slot(a, s)->state == B_SENT;
			if (!waiting) {
				char to[sizeof(a->redirect)];

				memcpy(to, a->redirect, sizeof(to));
				a->redirect[0] = 0;
				switch_conn(a, to, 1);
			}
		}
		if (a->c.fd >= 0)
			sock_write(a);
		advance_head(a);
		flush_lsns(a);
		if (a->head == a->tail && (a->input_done || a->server_status))
			break; /* everything read is settled */
		if (a->server_status && a->cur_send < 0) {
			int waiting = 0;

			for (uint64_t s = a->head; s < a->tail; s++)
				waiting |= slot(a, s)->state == B_SENT;
			if (!waiting)
				break;
		}
		if (a->stopping > 1 || (a->stopping && a->now >= a->stop_deadline))
			break;
		if (a->head < a->tail && a->now - a->last_ack >= (int64_t)a->cli.timeout_ms &&
		    (hs_client_multi(a->cli.addr) || a->on_redirect) &&
		    a->failovers < MAX_FAILOVERS &&
		    !a->server_status) {
			/* A paused or cut-off hs-serve: fail over like a loss. */
			conn_lost(a, -HS_ETIMEOUT);
			continue;
		}
		if (a->head < a->tail && a->now - a->last_ack >= (int64_t)a->cli.timeout_ms) {
			char d[HS_DURATION_FMT_MAX];

			hs_fmt_duration(d, sizeof(d), a->cli.timeout_ms);
			server_fail(a, EX_TEMPFAIL, "no answer from hs-serve within %s (--timeout)",
				    d);
			break;
		}

		deadline = -1;
		if (!a->input_done && !a->server_status && a->in_fd >= 0 &&
		    a->tail - a->head < a->max_inflight) {
			pfd[nfd] = (struct pollfd){ .fd = a->in_fd, .events = POLLIN };
			in_idx = nfd++;
		}
		if (a->c.fd >= 0) {
			pfd[nfd] = (struct pollfd){ .fd = a->c.fd, .events = POLLIN };
			if (want_send(a))
				pfd[nfd].events |= POLLOUT;
			sock_idx = nfd++;
		}
		if (a->open)
			deadline = a->open_ms + (int64_t)a->linger_ms;
		if (a->head < a->tail) {
			int64_t t = a->last_ack + (int64_t)a->cli.timeout_ms;

			if (deadline < 0 || t < deadline)
				deadline = t;
		}
		if (a->stopping && (deadline < 0 || a->stop_deadline < deadline))
			deadline = a->stop_deadline;
		{
			int64_t t = next_retry(a);

			if (t >= 0 && (deadline < 0 || t < deadline))
				deadline = t;
		}
		if (deadline >= 0) {
			int64_t d = deadline - a->now;

			if (d < 0)
				d = 0;
			ts.tv_sec = d / 1000;
			ts.tv_nsec = (d % 1000) * 1000000;
			tsp = &ts;
		}
		r = ppoll(pfd, (nfds_t)nfd, tsp, &unblocked);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			server_fail(a, EX_OSERR, "poll: %s", strerror(errno));
			break;
		}
		a->now = now_ms();
		if (sock_idx >= 0 && pfd[sock_idx].revents & (POLLIN | POLLHUP | POLLERR))
			sock_read(a);
		if (sock_idx >= 0 && a->c.fd >= 0 && pfd[sock_idx].revents & POLLOUT)
			sock_write(a);
		if (in_idx >= 0 && pfd[in_idx].revents && !a->input_done)
			read_input(a);
	}
	advance_head(a);
	flush_lsns(a);
	return 0;
}

static int parse_args(struct app *a, int argc, char **argv)
{
	static const struct option longopts[] = {
		HS_CLI_LONGOPTS,
		{ "create", no_argument, NULL, 'c' },
		{ "null", no_argument, NULL, '0' },
		{ "delimiter", required_argument, NULL, 'd' },
		{ "whole", no_argument, NULL, OPT_WHOLE },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "batch", required_argument, NULL, OPT_BATCH },
		{ "linger", required_argument, NULL, OPT_LINGER },
		{ "print-lsn", no_argument, NULL, OPT_PRINT_LSN },
		{ "max-inflight", required_argument, NULL, OPT_INFLIGHT },
		{ NULL, 0, NULL, 0 },
	};
	struct hs_cli *c = &a->cli;
	const char *framing = NULL; /* the first of -0, -d, --whole, --format */
	uint64_t v;
	int opt, status;

	static const char *const groups[] = { "null delimiter whole format", NULL };

	status = hs_cli_config_args(c, HS_CLI_SHORTOPTS "c0d:", longopts, NULL, groups, &argc,
				    &argv);
	if (status)
		return status;
	while ((opt = getopt_long(argc, argv, HS_CLI_SHORTOPTS "c0d:", longopts, NULL)) != -1) {
		const char *this = NULL;

		switch (hs_cli_option(c, opt, optarg, &status)) {
		case 0:
			continue;
		case 1:
			return status ? status : -1; /* --help, --version */
		}
		switch (opt) {
		case 'c':
			a->flags |= HS_APPEND_CREATE;
			break;
		case '0':
			a->fmt = HS_FMT_RAW;
			a->delim = 0;
			this = "-0";
			break;
		case 'd':
			if (hs_fmt_parse_delim(optarg, &a->delim) < 0)
				return hs_cli_usage_error(
					c, "invalid delimiter '%s' (one byte, or \\n \\t \\r \\0 \\\\ \\xHH)",
					optarg);
			a->fmt = HS_FMT_RAW;
			this = "-d";
			break;
		case OPT_WHOLE:
			a->fmt = HS_FMT_WHOLE;
			this = "--whole";
			break;
		case OPT_FORMAT:
			if (hs_fmt_parse_name(optarg, &a->fmt) < 0)
				return hs_cli_usage_error(
					c, "invalid --format '%s' (use raw, json or netstring)", optarg);
			this = "--format";
			break;
		case OPT_BATCH:
			if (hs_parse_u64(optarg, &v) < 0 || !v || v > 1000000)
				return hs_cli_usage_error(c, "invalid --batch '%s' (1..1000000)",
							  optarg);
			a->batch_max = (uint32_t)v;
			break;
		case OPT_LINGER:
			if (hs_parse_duration_ms(optarg, &a->linger_ms) < 0 ||
			    a->linger_ms > 3600000)
				return hs_cli_usage_error(
					c, "invalid --linger '%s' (0 to 1h, use " HS_DURATION_SYNTAX ")",
					optarg);
			break;
		case OPT_PRINT_LSN:
			a->print_lsn = 1;
			break;
		case OPT_INFLIGHT:
			if (hs_parse_u64(optarg, &v) < 0 || !v || v > 4096)
				return hs_cli_usage_error(c, "invalid --max-inflight '%s' (1..4096)",
							  optarg);
			a->max_inflight = (uint32_t)v;
			break;
		default:
			return hs_cli_usage_error(c, "unexpected option");
		}
		if (this) {
			if (framing && strcmp(framing, this))
				return hs_cli_usage_error(c, "%s and %s cannot be combined", framing,
							  this);
			framing = this;
		}
	}
	if (optind >= argc)
		return hs_cli_usage_error(c, "STREAM is required");
	a->stream = argv[optind++];
	if ((status = hs_cli_check_name(c, "", "stream", a->stream, strlen(a->stream))))
		return status;
	a->stream_len = (uint8_t)strlen(a->stream);
	a->files = argv + optind;
	a->nfiles = argc - optind;
	return hs_cli_finish(c);
}

static void report(struct app *a)
{
	char lsn[HS_POS_FMT_MAX] = "none";

	if (a->acked_recs)
		hs_lsn_fmt(lsn, sizeof(lsn), a->last_lsn);
	fprintf(stderr, "%s: %llu record%s acknowledged, last LSN %s; %llu unacknowledged",
		a->cli.prog, (unsigned long long)a->acked_recs, a->acked_recs == 1 ? "" : "s",
		lsn, (unsigned long long)(a->read_recs - a->acked_recs));
	if (a->unknown_recs)
		fprintf(stderr, " (%llu of them sent: they may or may not have been stored)",
			(unsigned long long)a->unknown_recs);
	fputc('\n', stderr);
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	sigset_t block;
	struct app a;
	char msg[1024];
	size_t overhead, max_record;
	int status, r;

	memset(&a, 0, sizeof(a));
	a.fmt = HS_FMT_RAW;
	a.delim = '\n';
	a.batch_max = DEF_BATCH;
	a.linger_ms = DEF_LINGER_MS;
	a.max_inflight = DEF_INFLIGHT;
	a.in_fd = -1;
	a.cur_send = -1;
	a.c.fd = -1;
	hs_cli_init(&a.cli, argv[0], HS_LOG_WARN, usage_text, help_text);
	status = parse_args(&a, argc, argv);
	if (status) {
		if (status < 0)
			status = 0;
		goto out;
	}

	signal(SIGPIPE, SIG_IGN);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* Signals are delivered only inside ppoll(), so none is missed
	 * between checking the flag and sleeping. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, NULL);

	r = hs_client_connect(&a.c, a.cli.addr, a.cli.timeout_ms, msg, sizeof(msg));
	if (r < 0) {
		status = hs_cli_fail(&a.cli, hs_exit_status(r), "%s", msg);
		goto out;
	}
	/* The largest record: hs-serve's limit, or less if its max frame is
	 * smaller than one record's APPEND frame. */
	overhead = HS_FRAME_OVERHEAD + 4 + 1 + a.stream_len + 4 + 4 + HS_RUN_HDR +
		   HS_RUN_REC_HDR + 4;
	max_record = a.c.max_out - overhead;
	if (max_record > HS_RECORD_MAX_DEFAULT)
		max_record = HS_RECORD_MAX_DEFAULT;
	a.frame_limit = a.c.max_out < BATCH_BYTES ? a.c.max_out : BATCH_BYTES;
	r = hs_fmt_in_init(&a.in, a.fmt, a.delim, max_record);
	if (r < 0) {
		status = hs_cli_fail(&a.cli, EX_SOFTWARE, "cannot set up the input format");
		goto out;
	}
	a.chunk = hs_xmalloc(READ_CHUNK);
	a.cap = 64;
	while (a.cap < 2 * (size_t)a.max_inflight)
		a.cap *= 2;
	a.ring = hs_xcalloc(a.cap, sizeof(*a.ring));

	run(&a);

	if (a.server_status)
		status = a.server_status;
	else if (a.input_status)
		status = a.input_status;
	else if (a.acked_recs < a.read_recs)
		status = EX_TEMPFAIL;
	else
		status = 0;
	if (a.stopping || (status && a.read_recs))
		report(&a);
	hs_info("%llu records acknowledged", (unsigned long long)a.acked_recs);
out:
	if (a.ring)
		for (size_t i = 0; i < a.cap; i++)
			hs_buf_free(&a.ring[i].frame);
	free(a.ring);
	free(a.chunk);
	hs_buf_free(&a.lsn_out);
	hs_fmt_in_free(&a.in);
	hs_sconn_close(&a.c);
	hs_cli_free(&a.cli);
	return status;
}
