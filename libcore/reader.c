/* reader.c - see reader.h. */
#include "reader.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "client.h"
#include "err.h"
#include "frame.h"
#include "proto.h"
#include "proto_client.h"
#include "run.h"
#include "wire.h"

void hs_reader_init(struct hs_reader *rd, uint32_t flags, uint32_t win_records,
		    uint32_t win_bytes, int idle_timeout_ms,
		    const struct hs_reader_ops *ops, void *arg)
{
	memset(rd, 0, sizeof(*rd));
	rd->flags = flags;
	rd->win_records = win_records;
	rd->win_bytes = win_bytes;
	rd->idle_timeout_ms = idle_timeout_ms;
	rd->ops = ops;
	rd->arg = arg;
}

size_t hs_reader_add(struct hs_reader *rd, const char *name, const struct hs_pos *from,
		     const struct hs_pos *until, uint64_t limit)
{
	struct hs_reader_stream *s;

	rd->s = hs_xrealloc(rd->s, (rd->n + 1) * sizeof(*rd->s));
	s = &rd->s[rd->n];
	memset(s, 0, sizeof(*s));
	s->name = name;
	s->name_len = (uint8_t)strlen(name);
	s->from = *from;
	if (until)
		s->until = *until;
	s->limit = limit;
	return rd->n++;
}

size_t hs_reader_subscribe(struct hs_reader *rd, const char *sub, uint64_t limit)
{
	static const struct hs_pos none;

	rd->sub = 1;
	return hs_reader_add(rd, sub, &none, NULL, limit);
}

/* The LSN after lsn, skipping esn 0, which no record can have. */
static uint64_t lsn_after(uint64_t lsn)
{
	lsn++;
	if (!(uint32_t)lsn)
		lsn++;
	return lsn;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Queue the READ of stream i from where it got to; 0, or 1 if it has
 * nothing left to read (marked ended). */
static int send_read(struct hs_reader *rd, size_t i)
{
	struct hs_reader_stream *s = &rd->s[i];
	struct hs_cread m = {
		.read_id = (uint32_t)i + 1,
		.flags = rd->flags,
		.win_records = rd->win_records,
		.win_bytes = rd->win_bytes,
		.from = s->from,
		.until = s->until,
		.stream = s->name,
		.stream_len = s->name_len,
	};

	s->retry_at = 0;
	s->pend_records = s->pend_bytes = 0;
	if (rd->sub) {
		struct hs_subscribe sm = {
			.read_id = (uint32_t)i + 1,
			.flags = rd->flags & HS_CREAD_GAPS,
			.win_records = rd->win_records,
			.win_bytes = rd->win_bytes,
			.sub = s->name,
			.sub_len = s->name_len,
		};

		if (s->limit && s->records >= s->limit) {
			s->ended = 1;
			return 1;
		}
		hs_msg_subscribe_enc(hs_sconn_out(rd->conn), hs_client_next_id(), &sm);
		s->open = 1;
		return 0;
	}
	if (s->limit) {
		if (s->records >= s->limit) {
			/* Done before the connection was lost. */
			s->ended = 1;
			return 1;
		}
		m.limit = s->limit - s->records;
	}
	if (s->next_lsn) {
		m.from.kind = HS_POS_LSN;
		m.from.lsn = s->next_lsn;
		m.from.offset = 0;
	}
	hs_msg_read_enc(hs_sconn_out(rd->conn), hs_client_next_id(), &m);
	s->open = 1;
	return 0;
}

int hs_reader_start(struct hs_reader *rd, struct hs_sconn *c)
{
	rd->conn = c;
	rd->nopen = 0;
	rd->acks_pending = 0;
	rd->nack = 0;
	for (size_t i = 0; i < rd->n; i++) {
		rd->s[i].open = 0;
		rd->s[i].retry_at = 0;
		if (!rd->s[i].ended && send_read(rd, i) == 0)
			rd->nopen++;
	}
	return hs_sconn_flush(c);
}

static struct hs_reader_stream *stream_of(struct hs_reader *rd, uint32_t read_id)
{
	if (read_id < 1 || read_id > rd->n || !rd->s[read_id - 1].open) {
		rd->why = "a read frame for a read that is not open";
		return NULL;
	}
	return &rd->s[read_id - 1];
}

/*
 * Give back the credit of one processed frame.  Credit is handed back in
 * quarters of the window, not per frame: the server still holds at least
 * three quarters, so it never waits on us, and a fast read costs one
 * READ_WINDOW per quarter window instead of one per DELIVER.
 */
static void grant(struct hs_reader *rd, struct hs_reader_stream *s, uint64_t records,
		  uint64_t bytes)
{
	struct hs_read_window w = { .read_id = (uint32_t)(s - rd->s) + 1 };

	s->pend_records += records;
	s->pend_bytes += bytes;
	if (!(rd->win_records && s->pend_records >= rd->win_records / 4) &&
	    !(rd->win_bytes && s->pend_bytes >= rd->win_bytes / 4))
		return;
	if (rd->win_records)
		w.add_records = s->pend_records > UINT32_MAX ? UINT32_MAX
							     : (uint32_t)s->pend_records;
	if (rd->win_bytes)
		w.add_bytes = s->pend_bytes > UINT32_MAX ? UINT32_MAX : (uint32_t)s->pend_bytes;
	s->pend_records = s->pend_bytes = 0;
	hs_msg_read_window_enc(hs_sconn_out(rd->conn), hs_client_next_id(), &w);
}

/* Remember lo..hi to acknowledge once the frame's output is written. */
static void ack_note(struct hs_reader *rd, uint64_t lo, uint64_t hi)
{
	if (rd->nack && rd->ack[rd->nack - 1][1] + 1 == lo) {
		rd->ack[rd->nack - 1][1] = hi;
		return;
	}
	if (rd->nack == rd->capack) {
		rd->capack = rd->capack ? rd->capack * 2 : 16;
		rd->ack = hs_xrealloc(rd->ack, rd->capack * sizeof(*rd->ack));
	}
	rd->ack[rd->nack][0] = lo;
	rd->ack[rd->nack][1] = hi;
	rd->nack++;
}

static void ack_send(struct hs_reader *rd, struct hs_reader_stream *s)
{
	struct hs_msg_wr w;

	if (!rd->nack)
		return;
	hs_msg_ack_begin(&w, hs_sconn_out(rd->conn), hs_client_next_id(), s->name, s->name_len);
	for (size_t i = 0; i < rd->nack; i++) {
		hs_msg_ack_add(&w, rd->ack[i][0], rd->ack[i][1]);
		rd->acked += rd->ack[i][1] - rd->ack[i][0] + 1;
	}
	hs_msg_wr_end(&w);
	rd->nack = 0;
	rd->acks_pending++;
}

static int on_deliver(struct hs_reader *rd, const struct hs_frame *f)
{
	struct hs_clist l;
	struct hs_deliver_ent e;
	struct hs_reader_stream *s;
	uint64_t nrec = 0, nbytes = 0;
	int r, stop = 0;

	r = hs_msg_clist_dec(HS_MSG_DELIVER, f->body, f->body_len, &l);
	if (r < 0) {
		rd->why = "malformed DELIVER";
		return r;
	}
	s = stream_of(rd, l.read_id);
	if (!s)
		return -HS_EPROTO;
	while (!stop && hs_deliver_next(&l, &e)) {
		struct hs_run run;
		struct hs_run_iter it;
		struct hs_record rec;
		uint32_t len;

		r = hs_run_parse(e.run, e.run_len, &run);
		if (r < 0) {
			rd->why = r == -HS_ECHECKSUM ? "a delivered run failed its checksum"
						     : "a delivered run is malformed";
			return r;
		}
		/* A subscription's redeliveries may go back. */
		if (!hs_run_lsn_ok(e.first_lsn, run.nrecords) ||
		    (!rd->sub && e.first_lsn < s->next_lsn)) {
			rd->why = "a delivered run has impossible LSNs";
			return -HS_EPROTO;
		}
		hs_run_iter_init(&it, &run);
		rec.lsn = e.first_lsn;
		while (hs_run_next(&it, &rec.ts_ms, &rec.data, &len)) {
			rec.len = len;
			nrec++;
			nbytes += len;
			s->records++;
			r = rd->ops->record(rd->arg, (size_t)(s - rd->s), &rec);
			if (r) {
				if (r < 0)
					return r;
				stop = 1;
				break;
			}
			rec.lsn++;
		}
		/* rec.lsn is one past the last record passed on, unless we
		 * stopped on one. */
		s->next_lsn = stop ? lsn_after(rec.lsn) : rec.lsn;
		if (rd->sub && s->next_lsn > e.first_lsn)
			ack_note(rd, e.first_lsn, s->next_lsn - 1);
	}
	r = rd->ops->flush(rd->arg);
	if (r < 0) {
		rd->nack = 0; /* not written: not acknowledged */
		return r;
	}
	if (rd->sub)
		ack_send(rd, s);
	if (stop)
		return HS_READER_STOP;
	grant(rd, s, nrec, nbytes);
	return 0;
}

static int on_gap(struct hs_reader *rd, const struct hs_frame *f)
{
	struct hs_clist l;
	struct hs_cgap_ent e;
	struct hs_reader_stream *s;
	int r, stop = 0;

	r = hs_msg_clist_dec(HS_MSG_READ_GAP, f->body, f->body_len, &l);
	if (r < 0) {
		rd->why = "malformed READ_GAP";
		return r;
	}
	s = stream_of(rd, l.read_id);
	if (!s)
		return -HS_EPROTO;
	while (!stop && hs_read_gap_next(&l, &e)) {
		struct hs_fmt_gap g = { .lo = e.lo, .hi = e.hi,
					.kind = (enum hs_fmt_gap_kind)e.kind };

		s->next_lsn = lsn_after(e.hi);
		if (!rd->ops->gap)
			continue;
		r = rd->ops->gap(rd->arg, (size_t)(s - rd->s), &g);
		if (r < 0)
			return r;
		stop = r > 0;
	}
	r = rd->ops->flush(rd->arg);
	if (r < 0)
		return r;
	return stop ? HS_READER_STOP : 0;
}

static int on_end(struct hs_reader *rd, const struct hs_frame *f)
{
	struct hs_read_end m;
	struct hs_reader_stream *s;

	if (hs_msg_read_end_dec(f->body, f->body_len, &m) < 0) {
		rd->why = "malformed READ_END";
		return -HS_EPROTO;
	}
	s = stream_of(rd, m.read_id);
	if (!s)
		return -HS_EPROTO;
	s->open = 0;
	if (m.next_lsn > s->next_lsn)
		s->next_lsn = m.next_lsn;
	if (rd->retry_ms && (m.status == -HS_ENOSTREAM || m.status == -HS_EUNAVAIL ||
			     m.status == -HS_EAGAIN ||
			     (rd->sub && (m.status == -HS_ELOCKED || m.status == -HS_ENOENT)))) {
		/* Still counted in nopen: the loop waits for the retry. */
		s->retry_at = now_ms() + rd->retry_ms;
		return 0;
	}
	s->ended = 1;
	s->status = m.status == -ECANCELED ? 0 : m.status;
	rd->nopen--;
	return s->status;
}

/* Send the READs whose retry time has come; the wait in ms until the next
 * one, or -1 if none is pending. */
static int retry_due(struct hs_reader *rd)
{
	int64_t now = 0, next = -1;

	if (!rd->retry_ms)
		return -1;
	for (size_t i = 0; i < rd->n; i++) {
		struct hs_reader_stream *s = &rd->s[i];

		if (!s->retry_at)
			continue;
		if (!now)
			now = now_ms();
		if (s->retry_at <= now) {
			if (send_read(rd, i))
				rd->nopen--;
			continue;
		}
		if (next < 0 || s->retry_at - now < next)
			next = s->retry_at - now;
	}
	return (int)next;
}

/* 1 if a whole frame is already buffered (checked by its length field only:
 * hs_sconn_recv() does the real parse). */
static int frame_buffered(const struct hs_sconn *c)
{
	size_t have = c->in.len - c->in_off;

	return have >= 4 && hs_get32(c->in.data + c->in_off) <= have;
}

/* Wait for input or a signal.  1 input, 0 timeout, -EINTR, or -errno. */
static int wait_input(struct hs_reader *rd, int ms, const sigset_t *waitmask)
{
	struct pollfd pfd = { .fd = rd->conn->fd, .events = POLLIN };
	struct timespec ts, *tsp = NULL;
	int r;

	if (ms >= 0) {
		ts.tv_sec = ms / 1000;
		ts.tv_nsec = (long)(ms % 1000) * 1000000;
		tsp = &ts;
	}
	r = ppoll(&pfd, 1, tsp, waitmask);
	if (r < 0)
		return -errno;
	return r;
}

static void mark_lost(struct hs_reader *rd)
{
	for (size_t i = 0; i < rd->n; i++) {
		rd->s[i].open = 0;
		rd->s[i].retry_at = 0;
	}
	rd->nopen = 0;
}

int hs_reader_run(struct hs_reader *rd, volatile sig_atomic_t *stop, const sigset_t *waitmask)
{
	struct hs_sconn *c = rd->conn;
	struct hs_frame f;
	struct hs_result res;
	int r = 0;

	while (rd->nopen) {
		if (stop && *stop)
			return HS_READER_STOP;
		if (!frame_buffered(c)) {
			int retry = retry_due(rd), ms = rd->idle_timeout_ms;

			if (!rd->nopen)
				break;
			if (retry >= 0 && (ms < 0 || retry < ms))
				ms = retry;
			r = hs_sconn_flush(c);
			if (r < 0)
				goto out_lost;
			r = wait_input(rd, ms, waitmask);
			if (r == -EINTR)
				continue;
			if (r < 0)
				goto out_lost;
			if (r == 0) {
				if (ms == retry)
					continue;
				r = -HS_ETIMEOUT;
				goto out_lost;
			}
		}
		r = hs_sconn_recv(c, &f);
		if (r == 0) {
			rd->why = "hs-serve closed the connection";
			r = -HS_EUNAVAIL;
			goto out_lost;
		}
		if (r < 0) {
			if (r == -HS_EPROTO || r == -HS_ETOOBIG)
				rd->why = c->why;
			else if (r == -ECONNRESET || r == -EPIPE)
				r = -HS_EUNAVAIL;
			goto out_lost;
		}
		switch (f.type) {
		case HS_MSG_DELIVER:
			r = on_deliver(rd, &f);
			break;
		case HS_MSG_READ_GAP:
			r = on_gap(rd, &f);
			break;
		case HS_MSG_READ_END:
			r = on_end(rd, &f);
			if (r < 0)
				return r; /* the read's own error: connection fine */
			break;
		case HS_MSG_RESULT:
			/* The answer to an ACK, or a request that failed as a
			 * whole (shutting down...). */
			if (hs_msg_result_dec(f.body, f.body_len, &res) < 0) {
				rd->why = "malformed RESULT";
				r = -HS_EPROTO;
			} else if (rd->acks_pending && res.status == 0) {
				rd->acks_pending--;
				r = 0;
			} else if (rd->acks_pending && res.status == -HS_ENOENT) {
				rd->why = "the subscription was deleted";
				r = res.status;
			} else if (res.status == -HS_EREDIRECT) {
				/* Before the read's READ_END: the stream is
				 * sequenced elsewhere; res.msg says where. */
				size_t n = res.msg_len < sizeof(rd->redirect) - 1
						   ? res.msg_len : sizeof(rd->redirect) - 1;

				memcpy(rd->redirect, res.msg, n);
				rd->redirect[n] = 0;
				rd->why = "redirected to another hs-serve";
				r = res.status;
			} else if (res.status >= 0) {
				rd->why = "unexpected RESULT";
				r = -HS_EPROTO;
			} else {
				rd->why = "hs-serve refused the read";
				r = res.status;
			}
			break;
		default:
			rd->why = "unexpected message during a read";
			r = -HS_EPROTO;
			break;
		}
		if (r > 0)
			return r;
		if (r < 0) {
			/* A callback's own error leaves the connection usable,
			 * but the caller is stopping anyway. */
			goto out_lost;
		}
	}
	return 0;
out_lost:
	mark_lost(rd);
	return r;
}

int hs_reader_finish(struct hs_reader *rd, int timeout_ms)
{
	struct hs_sconn *c = rd->conn;
	struct hs_frame f;
	struct hs_read_end m;
	struct hs_result res;
	int64_t deadline = now_ms() + timeout_ms;
	size_t open = 0;
	int r;

	if (!c || c->fd < 0)
		return 0;
	for (size_t i = 0; i < rd->n; i++)
		open += rd->s[i].open;
	r = hs_reader_cancel(rd);
	while (r == 0 && (open || rd->acks_pending)) {
		int64_t left = deadline - now_ms();

		if (!frame_buffered(c)) {
			if (left <= 0)
				return -HS_ETIMEOUT;
			r = wait_input(rd, (int)left, NULL);
			if (r == -EINTR) {
				r = 0;
				continue;
			}
			if (r <= 0)
				return r ? r : -HS_ETIMEOUT;
			r = 0;
		}
		r = hs_sconn_recv(c, &f);
		if (r == 0)
			return -HS_EUNAVAIL;
		if (r < 0)
			return r;
		r = 0;
		if (f.type == HS_MSG_READ_END && hs_msg_read_end_dec(f.body, f.body_len, &m) == 0 &&
		    m.read_id >= 1 && m.read_id <= rd->n && rd->s[m.read_id - 1].open) {
			rd->s[m.read_id - 1].open = 0;
			open--;
		} else if (f.type == HS_MSG_RESULT && rd->acks_pending &&
			   hs_msg_result_dec(f.body, f.body_len, &res) == 0) {
			rd->acks_pending--;
			if (res.status < 0)
				r = res.status;
		}
	}
	return r;
}

int hs_reader_cancel(struct hs_reader *rd)
{
	if (!rd->conn || rd->conn->fd < 0)
		return 0;
	for (size_t i = 0; i < rd->n; i++) {
		struct hs_read_cancel m = { .read_id = (uint32_t)i + 1 };

		if (rd->s[i].open)
			hs_msg_read_cancel_enc(hs_sconn_out(rd->conn), hs_client_next_id(), &m);
	}
	return hs_sconn_flush(rd->conn);
}

int hs_reader_status(const struct hs_reader *rd, size_t *idx)
{
	for (size_t i = 0; i < rd->n; i++) {
		if (rd->s[i].ended && rd->s[i].status) {
			if (idx)
				*idx = i;
			return rd->s[i].status;
		}
	}
	return 0;
}

void hs_reader_free(struct hs_reader *rd)
{
	free(rd->s);
	free(rd->ack);
	memset(rd, 0, sizeof(*rd));
}

int hs_reader_write(int fd, const void *b, size_t n)
{
	const uint8_t *p = b;

	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* ---- sink ----------------------------------------------------------------- */

void hs_reader_sink_init(struct hs_reader_sink *k, struct hs_fmt_out *fmt,
			 const struct hs_reader *rd, int fd, const char *prog)
{
	memset(k, 0, sizeof(*k));
	k->fmt = fmt;
	k->rd = rd;
	k->fd = fd;
	k->prog = prog;
	k->last_idx = (size_t)-1;
}

static int sink_record(void *arg, size_t idx, const struct hs_record *r)
{
	struct hs_reader_sink *k = arg;

	if (k->names && idx != k->last_idx) {
		hs_fmt_out_set_stream(k->fmt, k->rd->s[idx].name);
		k->last_idx = idx;
	}
	hs_fmt_out_record(k->fmt, &k->buf, r);
	k->written++;
	return k->max && k->written >= k->max ? HS_READER_STOP : 0;
}

static int sink_gap(void *arg, size_t idx, const struct hs_fmt_gap *g)
{
	struct hs_reader_sink *k = arg;
	int json = k->fmt->kind == HS_FMT_JSON;
	int loud = g->kind == HS_FMT_GAP_TRIM || g->kind == HS_FMT_GAP_DATALOSS;
	char gs[64], line[512];
	int n;

	if (g->kind == HS_FMT_GAP_DATALOSS)
		k->dataloss = 1;
	if (json && k->show_gaps) {
		if (k->names && idx != k->last_idx) {
			hs_fmt_out_set_stream(k->fmt, k->rd->s[idx].name);
			k->last_idx = idx;
		}
		hs_fmt_out_gap(k->fmt, &k->buf, g);
	}
	if (!loud && (json || !k->show_gaps))
		return 0;
	if (hs_fmt_gap_str(gs, sizeof(gs), g) < 0)
		return 0;
	n = snprintf(line, sizeof(line), "%s: %s: gap %s%s\n", k->prog, k->rd->s[idx].name, gs,
		     g->kind == HS_FMT_GAP_TRIM ? ": records trimmed"
		     : g->kind == HS_FMT_GAP_DATALOSS ? ": records lost (every copy)"
						      : "");
	/* Diagnostics only: a failed write to stderr must not stop the data. */
	if (n > 0)
		(void)!write(2, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
	return 0;
}

static int sink_flush(void *arg)
{
	struct hs_reader_sink *k = arg;
	int r;

	if (!k->buf.len)
		return 0;
	r = hs_reader_write(k->fd, k->buf.data, k->buf.len);
	hs_buf_reset(&k->buf);
	if (r < 0 && !k->write_err)
		k->write_err = r;
	return r;
}

const struct hs_reader_ops hs_reader_sink_ops = {
	.record = sink_record,
	.gap = sink_gap,
	.flush = sink_flush,
};

void hs_reader_sink_free(struct hs_reader_sink *k)
{
	hs_buf_free(&k->buf);
}

int hs_reader_fmt_setup(struct hs_fmt_out *o, const char *format, int nul, const char *delim,
			char *msg, size_t n)
{
	enum hs_fmt kind = HS_FMT_RAW;
	uint8_t d = '\n';
	const char *why = NULL;
	size_t where = 0;

	if (nul && delim) {
		snprintf(msg, n, "-0 and -d cannot be used together");
		return -HS_EUSAGE;
	}
	if (format && strchr(format, '%')) {
		kind = HS_FMT_TEMPLATE;
	} else if (format && (hs_fmt_parse_name(format, &kind) < 0 || kind == HS_FMT_WHOLE)) {
		snprintf(msg, n, "unknown format '%s' (use raw, json, netstring or a template "
			 "with %%p, %%l, %%T...)", format);
		return -HS_EUSAGE;
	}
	if ((nul || delim) && kind != HS_FMT_RAW) {
		snprintf(msg, n, "%s only goes with the raw format", nul ? "-0" : "-d");
		return -HS_EUSAGE;
	}
	if (nul)
		d = 0;
	if (delim && hs_fmt_parse_delim(delim, &d) < 0) {
		snprintf(msg, n, "invalid delimiter '%s' (one byte, or \\n \\t \\r \\0 \\\\ \\xHH)",
			 delim);
		return -HS_EUSAGE;
	}
	if (kind != HS_FMT_TEMPLATE)
		return hs_fmt_out_init(o, kind, d);
	if (hs_fmt_out_init_template(o, format, &why, &where) < 0) {
		snprintf(msg, n, "invalid format '%s': %s at offset %zu", format,
			 why ? why : "bad template", where);
		return -HS_EUSAGE;
	}
	return 0;
}

int hs_readopts_option(struct hs_readopts *o, struct hs_cli *c, int opt, const char *arg)
{
	int st;

	switch (opt) {
	case 'c':
		if ((st = hs_cli_count(c, "-c", arg, &o->count)))
			return st;
		o->have_count = 1;
		return 0;
	case 'n':
		if ((st = hs_cli_count(c, "-n", arg, &o->last)))
			return st;
		if (o->last > INT64_MAX)
			return hs_cli_usage_error(c, "-n %s is too large", arg);
		o->have_last = 1;
		return 0;
	case '0':
		o->nul = 1;
		return 0;
	case 'd':
		o->delim = arg;
		return 0;
	case HS_READOPT_FORMAT:
		o->format = arg;
		return 0;
	case HS_READOPT_GAPS:
		o->gaps = 1;
		return 0;
	}
	return -1;
}

int hs_readopts_fmt(const struct hs_readopts *o, struct hs_cli *c, struct hs_fmt_out *fmt)
{
	char msg[256];

	if (hs_reader_fmt_setup(fmt, o->format, o->nul, o->delim, msg, sizeof(msg)) < 0)
		return hs_cli_usage_error(c, "%s", msg);
	return 0;
}
