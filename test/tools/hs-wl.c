/*
 * hs-wl - the workload appender of the fault tests (test/workload/README.md).
 *
 *   hs-wl [-a ADDR] [-t MS] append --stream S --writer W --count N
 *         [--rate R] [--batch B] [--inflight K]
 *
 * Appends the payloads w<W>-1 .. w<W>-<N> to stream S (created on first use)
 * and writes its HISTORY on stdout, one line per event:
 *
 *   invoke P        written before the APPEND carrying P is sent
 *   ok LSN P        P is durable at LSN (eXnY), from the APPENDED reply
 *   fail P          a definite refusal: the protocol says nothing was appended
 *                   (-HS_ENOSTREAM, -HS_ETOOBIG, -HS_EAGAIN, -HS_EPROTO,
 *                   -HS_EREDIRECT)
 *   info P          unknown outcome: the connection was lost or silent for
 *                   -t MS with P in flight, or the server answered with an
 *                   error after which the record may still appear
 *                   (-HS_ESEALED, -HS_ETIMEOUT, -HS_EUNAVAIL, RESULT ...)
 *
 * Why a C driver and not hs-append: the checker needs the outcome of every
 * single record, including the ones in flight when hs-serve dies, and an
 * APPEND's reply gives exactly that (count records at first_lsn..), so each
 * APPEND here carries a small batch (--batch, default 1) whose payloads are
 * known.  A payload is never sent twice: after a failure the writer moves on
 * to the next sequence number, so any payload read at two LSNs is the
 * system's duplicate, never the client's.
 *
 * Lines are formatted into one buffer and written with one write(2) per
 * batch, always before the frame they announce is sent (invoke) or right
 * after the reply is handled (ok/fail/info), so a killed writer never leaves
 * an acknowledged record out of its history.
 *
 * Up to --inflight APPENDs (default 4) are pipelined on one connection.  On
 * connection loss or silence every in-flight payload gets `info`, and the
 * writer reconnects with a backoff (20 ms doubling to 500 ms) and goes on
 * until N payloads were invoked and settled, or SIGTERM/SIGINT: then it
 * stops invoking, waits at most -t MS for what is in flight (`info` for the
 * rest) and exits 0.  --rate R spaces invocations to R records per second
 * from the start (0, the default, is as fast as the window allows); a writer
 * behind that schedule after an outage catches up as fast as the window
 * allows.
 *
 * -HS_EREDIRECT (docs/replication.md §7: another hs-serve sequences the
 * stream; its address is the entry's text) is followed as the client tools
 * do: once the APPENDs in flight are answered, the writer connects to that
 * address and goes on there (its payloads were refused, so they are `fail'
 * and never resent).  A later connection loss starts again from -a, which
 * may list several addresses (A,B: the first that answers).
 *
 * Exit status: 0 done or stopped by a signal, 64 usage, 71 stdout error.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "client.h"
#include "err.h"
#include "frame.h"
#include "parse.h"
#include "pos.h"
#include "proto.h"
#include "proto_client.h"
#include "run.h"
#include "syncconn.h"

#define MAX_INFLIGHT 256
#define BACKOFF_MIN_MS 20
#define BACKOFF_MAX_MS 500
#define WAIT_SLICE_MS 100    /* longest blocking wait, so signals are seen */

static const char usage_text[] =
	"usage: hs-wl [-a ADDR] [-t MS] append --stream S --writer W --count N\n"
	"             [--rate R] [--batch B] [--inflight K]\n";

/* One APPEND in flight: payloads w<writer>-<seq> .. seq+n-1. */
struct pend {
	uint64_t id;
	uint64_t seq;
	uint32_t n;
};

struct wl {
	const char *addr;
	const char *stream;
	uint8_t stream_len;
	unsigned long writer;
	uint64_t count, timeout_ms;
	double rate;
	uint32_t batch, inflight;
	struct hs_sconn c;
	int connected;
	int64_t backoff_ms, reconnect_at;
	struct pend q[MAX_INFLIGHT];
	uint32_t nq;
	int64_t last_progress;       /* ms: last send or reply */
	int64_t start_ms, pause_until;
	uint64_t next_seq;           /* next payload to invoke */
	struct hs_buf out;           /* history lines not yet written */
	struct hs_buf frame;
	uint64_t nok, nfail, ninfo;
	int stdout_bad;
	char redirect[256];          /* -HS_EREDIRECT's address, to follow */
	int redirect_pending;
};

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	got_signal = 1;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };

	if (ms > 0)
		nanosleep(&ts, NULL); /* a signal cuts it short: fine */
}

/* Write the buffered history lines; remember a failure (reported at exit). */
static void out_flush(struct wl *w)
{
	size_t off = 0;

	while (off < w->out.len && !w->stdout_bad) {
		ssize_t n = write(STDOUT_FILENO, w->out.data + off, w->out.len - off);

		if (n > 0)
			off += (size_t)n;
		else if (n < 0 && errno == EINTR)
			continue;
		else
			w->stdout_bad = 1;
	}
	hs_buf_reset(&w->out);
}

static void line(struct wl *w, const char *what, uint64_t lsn, uint64_t seq)
{
	char l[HS_POS_FMT_MAX];

	if (lsn) {
		hs_lsn_fmt(l, sizeof(l), lsn);
		hs_buf_printf(&w->out, "%s %s w%lu-%llu\n", what, l, w->writer,
			      (unsigned long long)seq);
	} else {
		hs_buf_printf(&w->out, "%s w%lu-%llu\n", what, w->writer, (unsigned long long)seq);
	}
}

static void settle(struct wl *w, const struct pend *p, const char *what)
{
	for (uint32_t i = 0; i < p->n; i++)
		line(w, what, 0, p->seq + i);
	if (!strcmp(what, "fail"))
		w->nfail += p->n;
	else
		w->ninfo += p->n;
}

/* The connection is gone or silent: every in-flight payload is unknown. */
static void conn_lost(struct wl *w, const char *why, int err)
{
	fprintf(stderr, "hs-wl: w%lu: connection lost (%s%s%s); %u APPENDs in flight\n",
		w->writer, why, err ? ": " : "", err ? hs_strerror(err) : "", w->nq);
	for (uint32_t i = 0; i < w->nq; i++)
		settle(w, &w->q[i], "info");
	w->nq = 0;
	out_flush(w);
	hs_sconn_close(&w->c);
	w->connected = 0;
	w->redirect_pending = 0;
	w->backoff_ms = BACKOFF_MIN_MS;
	w->reconnect_at = now_ms() + w->backoff_ms;
}

/* Once nothing is in flight on this connection, go where -HS_EREDIRECT
 * said; if that address does not answer, the usual reconnect through -a. */
static void follow_redirect(struct wl *w)
{
	char msg[512];

	w->redirect_pending = 0;
	hs_sconn_close(&w->c);
	w->connected = 0;
	if (hs_client_connect(&w->c, w->redirect, w->timeout_ms, msg, sizeof(msg)) < 0) {
		fprintf(stderr, "hs-wl: w%lu: redirect to %s: %s\n", w->writer, w->redirect, msg);
		w->backoff_ms = BACKOFF_MIN_MS;
		w->reconnect_at = now_ms() + w->backoff_ms;
		return;
	}
	w->connected = 1;
	w->last_progress = now_ms();
}

static void try_connect(struct wl *w)
{
	char msg[512];
	int r;

	r = hs_client_connect(&w->c, w->addr, w->timeout_ms, msg, sizeof(msg));
	if (r < 0) {
		w->reconnect_at = now_ms() + w->backoff_ms;
		w->backoff_ms = w->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
								   : w->backoff_ms * 2;
		return;
	}
	w->connected = 1;
	w->last_progress = now_ms();
}

/* How many payloads the rate allows to be invoked now (all, if no rate). */
static uint64_t rate_allows(struct wl *w, int64_t now)
{
	double due;
	uint64_t done = w->next_seq - 1;

	if (w->rate <= 0)
		return UINT64_MAX;
	due = (double)(now - w->start_ms) * w->rate / 1000.0 + 1;
	return due > (double)done ? (uint64_t)(due - (double)done) : 0;
}

/* Invoke and send one APPEND of up to --batch payloads.  0 if none was due. */
static int send_one(struct wl *w, int64_t now)
{
	struct hs_run_builder rb;
	struct hs_msg_wr mw;
	struct pend *p;
	uint64_t n = w->count - w->next_seq + 1, allowed = rate_allows(w, now);
	char pay[64];
	int r;

	if (n > w->batch)
		n = w->batch;
	if (n > allowed)
		n = allowed;
	if (!n)
		return 0;
	p = &w->q[w->nq++];
	p->id = hs_client_next_id();
	p->seq = w->next_seq;
	p->n = (uint32_t)n;
	w->next_seq += n;

	hs_buf_reset(&w->frame);
	hs_msg_append_begin(&mw, &w->frame, p->id);
	hs_msg_append_run_open(&mw, w->stream, w->stream_len, HS_APPEND_CREATE);
	hs_run_begin(&rb, &w->frame, 0, 0, 0, NULL, 0);
	for (uint32_t i = 0; i < p->n; i++) {
		int len = snprintf(pay, sizeof(pay), "w%lu-%llu", w->writer,
				   (unsigned long long)(p->seq + i));

		hs_run_add(&rb, 0, pay, (uint32_t)len);
		line(w, "invoke", 0, p->seq + i);
	}
	hs_run_end(&rb);
	hs_msg_wr_run_close(&mw);
	hs_msg_wr_end(&mw);
	/* The invoke lines reach stdout before the request leaves. */
	out_flush(w);
	hs_buf_append(hs_sconn_out(&w->c), w->frame.data, w->frame.len);
	r = hs_sconn_flush(&w->c);
	w->last_progress = now;
	if (r < 0)
		conn_lost(w, "send", r);
	return 1;
}

static void on_reply(struct wl *w, const struct hs_frame *f)
{
	struct hs_appended_ent e;
	struct hs_clist l;
	struct pend p;
	uint32_t i;
	char msg[256];

	for (i = 0; i < w->nq && w->q[i].id != f->id; i++)
		;
	if (i == w->nq) {
		conn_lost(w, "reply to an unknown request", -HS_EPROTO);
		return;
	}
	p = w->q[i];
	memmove(&w->q[i], &w->q[i + 1], (w->nq - i - 1) * sizeof(w->q[0]));
	w->nq--;
	w->last_progress = now_ms();
	if (f->type == HS_MSG_RESULT) {
		int st = hs_client_result(f, msg, sizeof(msg));

		fprintf(stderr, "hs-wl: w%lu: APPEND answered by RESULT %s %s\n", w->writer,
			hs_strerror(st < 0 ? st : -HS_EPROTO), msg);
		settle(w, &p, "info");
		return;
	}
	if (f->type != HS_MSG_APPENDED ||
	    hs_msg_clist_dec(HS_MSG_APPENDED, f->body, f->body_len, &l) < 0 || l.n != 1 ||
	    hs_appended_next(&l, &e) != 1) {
		settle(w, &p, "info");
		conn_lost(w, "malformed APPENDED", -HS_EPROTO);
		return;
	}
	if (e.status == 0) {
		if (e.count != p.n || !hs_run_lsn_ok(e.first_lsn, e.count)) {
			/* Not a plausible ack: the checker will see whatever landed. */
			fprintf(stderr, "hs-wl: w%lu: APPENDED count %u for %u records\n",
				w->writer, e.count, p.n);
			settle(w, &p, "info");
			return;
		}
		for (i = 0; i < p.n; i++)
			line(w, "ok", e.first_lsn + i, p.seq + i);
		w->nok += p.n;
		return;
	}
	switch (e.status) {
	case -HS_ENOSTREAM:
	case -HS_ETOOBIG:
	case -HS_EPROTO:
		settle(w, &p, "fail");
		break;
	case -HS_EAGAIN:
		settle(w, &p, "fail");
		w->pause_until = now_ms() + (e.detail ? e.detail : 1);
		break;
	case -HS_EREDIRECT:
		settle(w, &p, "fail");
		if (e.text_len && e.text_len < sizeof(w->redirect)) {
			memcpy(w->redirect, e.text, e.text_len);
			w->redirect[e.text_len] = 0;
			w->redirect_pending = 1;
		}
		break;
	default:
		settle(w, &p, "info");
		break;
	}
	fprintf(stderr, "hs-wl: w%lu: APPEND: %s %.*s\n", w->writer, hs_strerror(e.status),
		(int)e.text_len, e.text);
}

static void run(struct wl *w)
{
	int64_t stop_deadline = -1;

	w->start_ms = now_ms();
	w->backoff_ms = BACKOFF_MIN_MS;
	for (;;) {
		int64_t now = now_ms(), wait;
		struct hs_frame f;
		int r;

		if (got_signal && stop_deadline < 0)
			stop_deadline = now + (int64_t)w->timeout_ms;
		if (stop_deadline >= 0 && (!w->nq || now >= stop_deadline))
			break;
		if (!got_signal && w->next_seq > w->count && !w->nq)
			break;
		if (!w->connected) {
			if (got_signal)
				break;
			if (now < w->reconnect_at) {
				sleep_ms(w->reconnect_at - now > WAIT_SLICE_MS ? WAIT_SLICE_MS
									: w->reconnect_at - now);
				continue;
			}
			try_connect(w);
			continue;
		}
		if (w->connected && w->redirect_pending && !w->nq)
			follow_redirect(w);
		while (w->connected && !got_signal && !w->redirect_pending &&
		       w->next_seq <= w->count && w->nq < w->inflight && now >= w->pause_until &&
		       send_one(w, now))
			now = now_ms();
		if (!w->connected)
			continue;
		if (w->nq && now - w->last_progress >= (int64_t)w->timeout_ms) {
			conn_lost(w, "no answer in time", -HS_ETIMEOUT);
			continue;
		}
		/* Wait for a reply, at most until the next payload is due. */
		wait = WAIT_SLICE_MS;
		if (!w->nq) {
			if (w->rate > 0 && w->next_seq <= w->count) {
				int64_t due = w->start_ms +
					      (int64_t)((double)(w->next_seq - 1) * 1000.0 / w->rate);

				wait = due - now;
			}
			if (w->pause_until > now && w->pause_until - now < wait)
				wait = w->pause_until - now;
			if (wait > WAIT_SLICE_MS)
				wait = WAIT_SLICE_MS;
			if (wait > 0)
				sleep_ms(wait);
			continue;
		}
		if (w->nq < w->inflight && w->rate > 0 && w->next_seq <= w->count) {
			int64_t due = w->start_ms +
				      (int64_t)((double)(w->next_seq - 1) * 1000.0 / w->rate);

			if (due - now < wait)
				wait = due - now;
		}
		if (wait < 1)
			wait = 1;
		w->c.timeout_ms = (int)wait;
		r = hs_sconn_recv(&w->c, &f);
		if (r == -HS_ETIMEOUT)
			continue;
		if (r <= 0) {
			conn_lost(w, r ? "receive" : "closed by hs-serve", r);
			continue;
		}
		on_reply(w, &f);
		/* Handle every reply already buffered before writing. */
		out_flush(w);
	}
	for (uint32_t i = 0; i < w->nq; i++)
		settle(w, &w->q[i], "info");
	w->nq = 0;
	out_flush(w);
}

static int usage(const char *why)
{
	if (why)
		fprintf(stderr, "hs-wl: %s\n", why);
	fputs(usage_text, stderr);
	return EX_USAGE;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "addr", required_argument, NULL, 'a' },
		{ "timeout", required_argument, NULL, 't' },
		{ "stream", required_argument, NULL, 's' },
		{ "writer", required_argument, NULL, 'w' },
		{ "count", required_argument, NULL, 'n' },
		{ "rate", required_argument, NULL, 'r' },
		{ "batch", required_argument, NULL, 'b' },
		{ "inflight", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sigaction sa;
	struct wl w;
	uint64_t v;
	int opt, have_writer = 0, have_count = 0;

	memset(&w, 0, sizeof(w));
	w.c.fd = -1;
	w.addr = getenv("HS_ADDR");
	w.timeout_ms = 2000;
	w.batch = 1;
	w.inflight = 4;
	w.next_seq = 1;
	/* Options may come before and after the "append" command. */
	while ((opt = getopt_long(argc, argv, "+a:t:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'a':
			w.addr = optarg;
			break;
		case 't':
			if (hs_parse_u64(optarg, &w.timeout_ms) < 0 || !w.timeout_ms ||
			    w.timeout_ms > 3600000)
				return usage("invalid -t (milliseconds, 1..3600000)");
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		default:
			return usage(NULL);
		}
	}
	if (optind >= argc || strcmp(argv[optind], "append"))
		return usage("the command must be 'append'");
	optind++;
	while ((opt = getopt_long(argc, argv, "a:t:", longopts, NULL)) != -1) {
		switch (opt) {
		case 'a':
			w.addr = optarg;
			break;
		case 't':
			if (hs_parse_u64(optarg, &w.timeout_ms) < 0 || !w.timeout_ms ||
			    w.timeout_ms > 3600000)
				return usage("invalid -t (milliseconds, 1..3600000)");
			break;
		case 's':
			w.stream = optarg;
			break;
		case 'w':
			if (hs_parse_u64(optarg, &v) < 0 || v > 1000000)
				return usage("invalid --writer (0..1000000)");
			w.writer = (unsigned long)v;
			have_writer = 1;
			break;
		case 'n':
			if (hs_parse_u64(optarg, &w.count) < 0 || w.count > UINT32_MAX)
				return usage("invalid --count");
			have_count = 1;
			break;
		case 'r':
			if (hs_parse_u64(optarg, &v) < 0 || v > 10000000)
				return usage("invalid --rate (records per second)");
			w.rate = (double)v;
			break;
		case 'b':
			if (hs_parse_u64(optarg, &v) < 0 || !v || v > 10000)
				return usage("invalid --batch (1..10000)");
			w.batch = (uint32_t)v;
			break;
		case 'k':
			if (hs_parse_u64(optarg, &v) < 0 || !v || v > MAX_INFLIGHT)
				return usage("invalid --inflight (1..256)");
			w.inflight = (uint32_t)v;
			break;
		default:
			return usage(NULL);
		}
	}
	if (optind != argc || !w.stream || !have_writer || !have_count)
		return usage("--stream, --writer and --count are required");
	if (!hs_stream_name_valid(w.stream, strlen(w.stream)))
		return usage("invalid stream name");
	w.stream_len = (uint8_t)strlen(w.stream);

	signal(SIGPIPE, SIG_IGN);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	run(&w);

	fprintf(stderr, "hs-wl: w%lu: invoked %llu: ok %llu, fail %llu, info %llu\n", w.writer,
		(unsigned long long)(w.next_seq - 1), (unsigned long long)w.nok,
		(unsigned long long)w.nfail, (unsigned long long)w.ninfo);
	hs_sconn_close(&w.c);
	hs_buf_free(&w.out);
	hs_buf_free(&w.frame);
	return w.stdout_bad ? EX_OSERR : 0;
}
