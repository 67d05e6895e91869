/*
 * read.c - the read path of hs-serve (serve.h): positions, peer read
 * streams, and subscription sessions.
 *
 * READ PATH.  READ resolves its positions when it starts, on the active
 * sequencer: tail = the next LSN (pinned), head = the first retained LSN,
 * head+N/tail-N count records over the epochs' dense ranges (known from
 * SEALED and the current epoch), @time asks the data peer (LOCATE).  Then
 * a peer read stream (START) from..until-1 is forwarded: RECORDS runs
 * become DELIVER runs (sliced to the range and the limit), TRIM gaps
 * become READ_GAP TRIM, a checksum gap DATALOSS (the only copy is bad);
 * NORECORDS gaps only move the position.  Credit: the peer is granted at
 * most what the client granted (and at most READ_CAP records/bytes in
 * flight) and only while the client connection's output is below its
 * high-water mark, so nothing is buffered here.  FOLLOW keeps the peer
 * stream open; the peer parks it at the released point and RELEASE wakes
 * it - until the follower is caught up: then FOLLOWING FROM MEMORY (seq.c)
 * serves it.  Not done this round: R > 1.
 *
 * SUBSCRIPTIONS (DESIGN §7).  A named subscription is the register
 * "u/<name>" (meta.h: stream, log id, ack timeout, max unacked,
 * checkpoint).  SUBSCRIBE is a READ in follow mode from the checkpoint,
 * with the same DELIVER/READ_GAP forwarding and credit, plus a session
 * (struct ssub, in memory only while a session, a lookup or a checkpoint
 * write needs it): the ack window of libpaxos/sub.h (LSN ranges only, never
 * payloads), one session per subscription (a second one ends at once with
 * -HS_ELOCKED), and a 50 ms tick that (1) writes the checkpoint to the
 * register when it moved and SUB_PERSIST_MS passed (at once after
 * SUB_PERSIST_ACKS acknowledged records, and at session end); the write
 * never moves it back; (2) redelivers the oldest range unacknowledged for
 * ack_timeout by a second, bounded peer read of just that range sent under
 * the session's read id (one such read at a time); (3) drops a subscriber
 * whose connection output stayed above the high-water mark for longer than
 * max(ack_timeout, SUB_STUCK_MIN_MS): READ_END -HS_ETIMEOUT, logged.  The
 * forward read's peer credit is capped so that records granted plus records
 * unacknowledged never exceed max_unacked: delivery pauses there and
 * resumes as acknowledgements arrive.  Gaps (trimmed, holes, empty LSNs)
 * count as acknowledged.  When a session ends its window is dropped: the
 * next one starts from the checkpoint, so records delivered after the
 * first unacknowledged one are delivered again (at-least-once).  @time
 * positions are not accepted by SUB_CREATE this round (-HS_EUSAGE).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "run.h"
#include "serve.h"

#define READ_CAP_REC 65536u            /* peer read credit in flight */
#define READ_CAP_BYTES (4u << 20)
#define SUB_TICK_MS 50                 /* subscription session housekeeping */
#define SUB_PERSIST_MS 100             /* checkpoint writes at most this often */
#define SUB_PERSIST_ACKS 1000          /* ... unless this many records were acked */
#define SUB_STUCK_MIN_MS 1000          /* shortest wait before dropping a stuck subscriber */

/* ---- positions ----------------------------------------------------------- */

/* The dense LSN ranges of s that hold retained records, oldest first:
 * earlier epochs [e n1, max_lsn], then the current [E n1, tail - 1]. */
static size_t stream_ranges(const struct sstream *s, uint64_t (*rg)[2], size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i <= s->nolde && n < max; i++) {
		uint64_t lo, hi;

		if (i < s->nolde) {
			lo = HS_LSN(s->olde[i].epoch, 1);
			hi = s->olde[i].max_lsn;
		} else {
			lo = HS_LSN(s->epoch, 1);
			hi = HS_LSN(s->epoch, s->next_esn) - 1;
		}
		if (lo <= s->trim)
			lo = s->trim + 1;
		if (lo > hi)
			continue;
		rg[n][0] = lo;
		rg[n][1] = hi;
		n++;
	}
	return n;
}

uint64_t hs_serve_stream_tail(const struct sstream *s)
{
	return HS_LSN(s->epoch, s->next_esn);
}

static void stream_ranges_alloc(const struct sstream *s, uint64_t (**rg)[2], size_t *n)
{
	*rg = hs_xmalloc((s->nolde + 1) * sizeof(**rg));
	*n = stream_ranges(s, *rg, s->nolde + 1);
}

uint64_t hs_serve_stream_head(const struct sstream *s)
{
	uint64_t(*rg)[2], h;
	size_t n;

	stream_ranges_alloc(s, &rg, &n);
	h = n ? rg[0][0] : hs_serve_stream_tail(s);
	free(rg);
	return h;
}

uint64_t hs_serve_stream_count(const struct sstream *s)
{
	uint64_t(*rg)[2], c = 0;
	size_t n;

	stream_ranges_alloc(s, &rg, &n);
	for (size_t i = 0; i < n; i++)
		c += rg[i][1] - rg[i][0] + 1;
	free(rg);
	return c;
}

/* Resolve a position that needs no peer (not TIME) to an LSN. */
uint64_t hs_serve_resolve(const struct sstream *s, const struct hs_pos *p)
{
	uint64_t(*rg)[2], tail = hs_serve_stream_tail(s), v;
	size_t n;

	switch (p->kind) {
	case HS_POS_LSN:
		return p->lsn;
	case HS_POS_HEAD: {
		uint64_t k = (uint64_t)p->offset;

		stream_ranges_alloc(s, &rg, &n);
		v = tail;
		for (size_t i = 0; i < n; i++) {
			uint64_t len = rg[i][1] - rg[i][0] + 1;

			if (k < len) {
				v = rg[i][0] + k;
				break;
			}
			k -= len;
		}
		free(rg);
		return v;
	}
	case HS_POS_TAIL: {
		uint64_t k = (uint64_t)(-p->offset);

		if (!k)
			return tail;
		stream_ranges_alloc(s, &rg, &n);
		v = n ? rg[0][0] : tail;
		for (size_t i = n; i-- > 0;) {
			uint64_t len = rg[i][1] - rg[i][0] + 1;

			if (k <= len) {
				v = rg[i][1] + 1 - k;
				break;
			}
			k -= len;
		}
		free(rg);
		return v;
	}
	default:
		return 0;
	}
}

/* ---- reads --------------------------------------------------------------- */

/* Subscription hooks of the read path (see "subscriptions" below). */
static void sub_skipped(struct serve *sv, struct cread *r, uint64_t lo, uint64_t hi);
static void sub_read_ended(struct serve *sv, struct cread *r, int status);

void hs_serve_read_end(struct serve *sv, struct cread *r, int status)
{
	struct hs_read_end m = { .read_id = r->read_id, .status = status, .next_lsn = r->next };

	if (r->state == R_DONE)
		return;
	if (r->state == R_RUN && !r->mem) {
		struct hs_buf *out = hs_peers_out(sv->peers, hs_serve_data_peer(sv));

		hs_peers_forget(sv->peers, hs_serve_data_peer(sv), r->peer_req);
		if (out) {
			struct hs_stop st = { .stream = r->sid };

			/* Its RESULT reply lands in ops->frame and is ignored. */
			hs_msg_stop_enc(out, hs_peers_next_id(sv->peers), &st);
		}
	}
	r->state = R_DONE;
	if (r->cc && !r->child) {
		if (!hs_conn_closing(r->cc->c))
			hs_msg_read_end_enc(hs_conn_out(r->cc->c), r->req, &m);
		LIST_REMOVE(r, link);
	}
	if (r->s) {
		hs_serve_win_detach(sv, r);
		r->s->refs--;
		r->s = NULL;
	}
	if (r->sub)
		sub_read_ended(sv, r, status);
	if (!r->locating && !r->queued && !r->loading)
		free(r);
}

void hs_serve_read_grant(struct serve *sv, struct cread *r)
{
	int64_t want_r, want_b, add_r, add_b;
	struct hs_buf *out;

	if (r->mem) {
		hs_serve_mem_push(sv, r);
		return;
	}
	if (r->state != R_RUN || !r->cc || hs_conn_closing(r->cc->c) ||
	    hs_conn_out_pending(r->cc->c) >= HS_CONN_HIGH_WATER)
		return;
	want_r = r->unl_rec || r->cl_rec > READ_CAP_REC ? READ_CAP_REC : r->cl_rec;
	want_b = r->unl_bytes || r->cl_bytes > READ_CAP_BYTES ? READ_CAP_BYTES : r->cl_bytes;
	if (r->limit && (int64_t)(r->limit - r->sent) < want_r)
		want_r = (int64_t)(r->limit - r->sent);
	if (r->sub && hs_serve_sub_room(r) < want_r)
		want_r = hs_serve_sub_room(r);
	add_r = want_r - r->out_rec;
	add_b = want_b - (r->out_bytes > 0 ? r->out_bytes : 0);
	if (add_r < 0)
		add_r = 0;
	if (add_b < 0)
		add_b = 0;
	/* Grant in chunks, not record by record - unless the peer is out of
	 * credit, when any credit the client gave must be passed on. */
	if (r->out_rec > 0 && r->out_bytes > 0 && add_r < want_r / 4 && add_b < want_b / 4)
		return;
	if (!add_r && !add_b)
		return;
	out = hs_peers_out(sv->peers, hs_serve_data_peer(sv));
	if (!out)
		return;
	{
		struct hs_window m = { .stream = r->sid, .add_records = (uint32_t)add_r,
				       .add_bytes = (uint32_t)add_b };

		hs_msg_window_enc(out, r->peer_req, &m);
	}
	r->out_rec += add_r;
	if (r->out_bytes < 0)
		r->out_bytes = 0;
	r->out_bytes += add_b;
}

static void read_on_peer(void *arg, int idx, const struct hs_frame *f);

void hs_serve_read_start_peer(struct serve *sv, struct cread *r)
{
	struct hs_buf *out = hs_peers_out(sv->peers, hs_serve_data_peer(sv));
	struct hs_start m = { 0 };

	if (!out) {
		hs_serve_read_end(sv, r, -HS_EUNAVAIL);
		return;
	}
	if (r->until && r->from >= r->until) {
		hs_serve_read_end(sv, r, 0);
		return;
	}
	r->sid = ++sv->next_sid;
	r->peer_req = hs_peers_next_id(sv->peers);
	r->state = R_RUN;
	r->next = r->from;
	m.stream = r->sid;
	m.log = r->s->rec.log;
	m.from = r->from;
	m.until = r->until ? r->until - 1 : UINT64_MAX;
	r->out_rec = r->unl_rec || r->cl_rec > READ_CAP_REC ? READ_CAP_REC : r->cl_rec;
	r->out_bytes = r->unl_bytes || r->cl_bytes > READ_CAP_BYTES ? READ_CAP_BYTES : r->cl_bytes;
	if (r->limit && r->limit < (uint64_t)r->out_rec)
		r->out_rec = (int64_t)r->limit;
	if (r->sub && hs_serve_sub_room(r) < r->out_rec)
		r->out_rec = hs_serve_sub_room(r) > 0 ? hs_serve_sub_room(r) : 0;
	m.win_records = (uint32_t)r->out_rec;
	m.win_bytes = (uint32_t)r->out_bytes;
	if (!m.win_records)
		m.win_records = 1; /* 0 would mean unlimited to the peer */
	if (!m.win_bytes)
		m.win_bytes = 1;
	hs_peers_expect(sv->peers, hs_serve_data_peer(sv), r->peer_req, read_on_peer, r, 1);
	hs_msg_start_enc(out, r->peer_req, &m);
}

static void read_gap(struct cread *r, uint64_t lo, uint64_t hi, uint8_t kind)
{
	struct hs_msg_wr w;

	if (!r->cc || hs_conn_closing(r->cc->c))
		return;
	hs_msg_read_gap_begin(&w, hs_conn_out(r->cc->c), r->req, r->read_id);
	hs_msg_read_gap_add(&w, lo, hi, kind);
	hs_msg_wr_end(&w);
}

static void read_on_peer(void *arg, int idx, const struct hs_frame *f)
{
	struct cread *r = arg;
	struct serve *sv = r->sv;

	if (!f) {
		/* The multi registration is gone with the link. */
		r->state = R_WAIT;
		hs_serve_read_end(sv, r, -HS_EUNAVAIL);
		return;
	}
	switch (f->type) {
	case HS_MSG_RECORDS: {
		struct hs_records m;
		struct hs_msg_wr w;
		struct hs_buf *out;
		uint64_t first;
		const uint8_t *run;
		size_t len;
		int open = 0, finished = 0;

		if (hs_msg_records_dec(f->body, f->body_len, &m) < 0)
			break;
		out = r->cc && !hs_conn_closing(r->cc->c) ? hs_conn_out(r->cc->c) : NULL;
		while (hs_records_next(&m, &first, &run, &len) == 1) {
			struct hs_run rr;
			uint64_t lo, hi, n;
			size_t before;

			if (hs_run_parse_nocrc(run, len, &rr) < 0)
				continue;
			/* The peer charges the entry header (u64 lsn, u32 len) too. */
			r->out_rec -= rr.nrecords;
			r->out_bytes -= (int64_t)len + 12;
			if (finished || (rr.flags & (HS_RUN_HOLE | HS_RUN_BRIDGE))) {
				if (!finished && (r->flags & HS_CREAD_GAPS) && out) {
					/* Reported as gaps in a separate frame. */
					if (open)
						hs_msg_wr_end(&w);
					open = 0;
					read_gap(r, first, first + rr.nrecords - 1,
						 rr.flags & HS_RUN_HOLE ? 1 : 2);
				}
				if (!finished)
					r->next = first + rr.nrecords;
				if (!finished && r->sub)
					sub_skipped(sv, r, first, first + rr.nrecords - 1);
				continue;
			}
			lo = first < r->from ? r->from : first;
			hi = first + rr.nrecords - 1;
			if (r->until && hi >= r->until)
				hi = r->until - 1;
			if (lo > hi)
				continue;
			n = hi - lo + 1;
			if (r->limit && n > r->limit - r->sent)
				n = r->limit - r->sent;
			if (!out)
				continue;
			if (!open) {
				hs_msg_deliver_begin(&w, out, r->req, r->read_id);
				open = 1;
			}
			before = out->len;
			if (lo == first && n == rr.nrecords) {
				hs_msg_deliver_run(&w, first, run, len);
			} else {
				hs_msg_deliver_run_open(&w, lo);
				hs_run_slice(&rr, (uint32_t)(lo - first), (uint32_t)n, out);
				hs_msg_wr_run_close(&w);
			}
			r->sent += n;
			r->cl_rec -= (int64_t)n;
			/* The client's byte credit counts payload bytes only. */
			r->cl_bytes -= (int64_t)(out->len - before - 12 - HS_RUN_HDR - 4 -
						 4 * (size_t)rr.ncopyset - HS_RUN_REC_HDR * n);
			sv->records_delivered += n;
			r->next = lo + n;
			if (r->sub)
				hs_serve_sub_delivered(sv, r, lo, n,
						       out->len - before - 12 - HS_RUN_HDR - 4 -
							       4 * (size_t)rr.ncopyset -
							       HS_RUN_REC_HDR * n);
			if (r->limit && r->sent >= r->limit)
				finished = 1;
		}
		if (open)
			hs_msg_wr_end(&w);
		if (finished) {
			hs_serve_read_end(sv, r, 0);
			return;
		}
		if (hs_serve_mem_can_take(r)) {
			hs_serve_mem_take(sv, r);
			return;
		}
		hs_serve_read_grant(sv, r);
		return;
	}
	case HS_MSG_GAP: {
		struct hs_gap g;

		if (hs_msg_gap_dec(f->body, f->body_len, &g) < 0)
			break;
		if (g.reason == HS_GAP_TRIM)
			read_gap(r, g.lo < r->from ? r->from : g.lo, g.hi, 3);
		else if (g.reason == HS_GAP_CHECKSUM)
			read_gap(r, g.lo, g.hi, 4);
		r->next = g.hi + 1;
		if (r->sub)
			sub_skipped(sv, r, g.lo, g.hi);
		/* NORECORDS: the peer caught up with what it knows released. */
		if (hs_serve_mem_can_take(r))
			hs_serve_mem_take(sv, r);
		return;
	}
	case HS_MSG_END: {
		struct hs_end e;

		if (hs_msg_end_dec(f->body, f->body_len, &e) < 0)
			break;
		hs_peers_forget(sv->peers, hs_serve_data_peer(sv), r->peer_req);
		r->state = R_WAIT; /* no STOP needed */
		if (!e.status && r->until)
			r->next = r->until;
		hs_serve_read_end(sv, r, e.status);
		return;
	}
	case HS_MSG_RESULT: {
		struct hs_result res;

		if (hs_msg_result_dec(f->body, f->body_len, &res) == 0 && res.status < 0) {
			hs_peers_forget(sv->peers, hs_serve_data_peer(sv), r->peer_req);
			r->state = R_WAIT;
			hs_serve_read_end(sv, r, res.status);
		}
		return;
	}
	default:
		break;
	}
	hs_warn("read of '%s': unexpected %s from the peer", r->s ? r->s->name : "?",
		hs_msg_name(f->type));
	hs_serve_read_end(sv, r, -HS_EPROTO);
}

static void on_located(void *arg, int idx, const struct hs_frame *f);

static int read_locate(struct serve *sv, struct cread *r);

static void read_resolved(struct serve *sv, struct cread *r)
{
	struct sstream *s = r->s;

	if (r->pfrom.kind != HS_POS_TIME)
		r->from = hs_serve_resolve(s, &r->pfrom);
	if (r->puntil.kind == HS_POS_NONE)
		r->until = (r->flags & HS_CREAD_FOLLOW) ? 0 : hs_serve_stream_tail(s);
	else if (r->puntil.kind != HS_POS_TIME)
		r->until = hs_serve_resolve(s, &r->puntil);
	if (r->from < HS_LSN(1, 1))
		r->from = HS_LSN(1, 1);
	if ((r->flags & HS_CREAD_FOLLOW) && !r->child) {
		hs_serve_win_attach(sv, r);
		/* From the tail (or anywhere in the window): straight from memory. */
		if (!(r->until && r->from >= r->until) && s->state == S_ACTIVE &&
		    r->from >= s->win_lo && r->from > s->trim) {
			r->state = R_RUN;
			r->next = r->from;
			r->mem = 1;
			hs_serve_mem_push(sv, r);
			return;
		}
	}
	hs_serve_read_start_peer(sv, r);
}

static void read_ready(struct serve *sv, struct sstream *s, struct wait *w, int status)
{
	struct cread *r = (struct cread *)((char *)w - offsetof(struct cread, w));

	r->queued = 0;
	if (r->state == R_DONE) {
		/* Cancelled, or its connection closed, while it waited. */
		free(r);
		return;
	}
	/* Hold the stream while the read lives (hs_serve_read_end lets it go). */
	r->s = s;
	s->refs++;
	if (status == 0 && r->sub && r->sub->rec.log != s->rec.log)
		status = -HS_ENOSTREAM; /* the subscription's stream was deleted */
	if (status < 0) {
		hs_serve_read_end(sv, r, status);
		return;
	}
	if (r->pfrom.kind == HS_POS_TIME || r->puntil.kind == HS_POS_TIME) {
		if (read_locate(sv, r) < 0)
			hs_serve_read_end(sv, r, -HS_EUNAVAIL);
		return;
	}
	read_resolved(sv, r);
}

/* @time: ask the data peer for the first LSN whose record is at or after
 * the time (LOCATE, proto.h); both ends may need it. */
static int read_locate(struct serve *sv, struct cread *r)
{
	struct hs_buf *out = hs_peers_out(sv->peers, hs_serve_data_peer(sv));
	struct hs_locate m = { 0 };
	uint64_t id;

	if (!out)
		return -HS_EUNAVAIL;
	m.log = r->s->rec.log;
	m.from = hs_serve_stream_head(r->s);
	m.until = hs_serve_stream_tail(r->s);
	r->state = R_LOCATE;
	for (int i = 0; i < 2; i++) {
		const struct hs_pos *p = i ? &r->puntil : &r->pfrom;

		if (p->kind != HS_POS_TIME)
			continue;
		m.time_ms = p->time_ms < 0 ? 0 : (uint64_t)p->time_ms;
		id = hs_peers_next_id(sv->peers);
		hs_peers_expect(sv->peers, hs_serve_data_peer(sv), id, on_located, r, 0);
		hs_msg_locate_enc(out, id, &m);
		r->locating |= 1 << i;
	}
	return 0;
}

static void on_located(void *arg, int idx, const struct hs_frame *f)
{
	struct cread *r = arg;
	struct serve *sv = r->sv;
	struct hs_located m;
	int which = r->locating & 1 ? 0 : 1;

	r->locating &= ~(1 << which);
	if (r->state == R_DONE) {
		if (!r->locating)
			free(r);
		return;
	}
	if (!f || f->type != HS_MSG_LOCATED || hs_msg_located_dec(f->body, f->body_len, &m) < 0 ||
	    m.status < 0) {
		if (!r->locating)
			hs_serve_read_end(sv, r,
					  f && f->type == HS_MSG_LOCATED ? -HS_EIO : -HS_EUNAVAIL);
		else
			r->state = R_DONE; /* ended when the other answer comes */
		return;
	}
	/* 0: no record at or after the time: the tail. */
	if (which == 0)
		r->from = m.lsn ? m.lsn : hs_serve_stream_tail(r->s);
	else
		r->until = m.lsn ? m.lsn : hs_serve_stream_tail(r->s);
	if (r->locating)
		return;
	r->state = R_WAIT;
	if (r->pfrom.kind == HS_POS_TIME)
		r->pfrom.kind = HS_POS_LSN, r->pfrom.lsn = r->from;
	if (r->puntil.kind == HS_POS_TIME)
		r->puntil.kind = HS_POS_LSN, r->puntil.lsn = r->until;
	read_resolved(sv, r);
}

void hs_serve_on_read(struct serve *sv, struct cconn *cc, const struct hs_frame *f)
{
	struct hs_cread m;
	struct cread *r;

	if (hs_msg_read_dec(f->body, f->body_len, &m) < 0) {
		hs_serve_proto_close(cc, "malformed READ body");
		return;
	}
	sv->reads++;
	r = hs_xcalloc(1, sizeof(*r));
	r->sv = sv;
	r->cc = cc;
	r->req = f->id;
	r->read_id = m.read_id;
	r->flags = m.flags;
	r->limit = m.limit;
	r->pfrom = m.from;
	r->puntil = m.until;
	r->cl_rec = m.win_records;
	r->cl_bytes = m.win_bytes;
	r->unl_rec = !m.win_records;
	r->unl_bytes = !m.win_bytes;
	r->w.fn = read_ready;
	LIST_INSERT_HEAD(&cc->reads, r, link);
	if (m.stream_len > HS_META_NAME_MAX || sv->stopping) {
		hs_serve_read_end(sv, r, sv->stopping ? -HS_EUNAVAIL : -HS_ENOSTREAM);
		return;
	}
	r->queued = 1;
	hs_serve_stream_wait(sv, m.stream, m.stream_len, 0, NULL, &r->w);
}

static struct cread *read_find(struct cconn *cc, uint32_t id)
{
	struct cread *r;

	LIST_FOREACH(r, &cc->reads, link)
		if (r->read_id == id)
			return r;
	return NULL;
}

void hs_serve_on_read_window(struct serve *sv, struct cconn *cc, const struct hs_frame *f)
{
	struct hs_read_window m;
	struct cread *r;

	if (hs_msg_read_window_dec(f->body, f->body_len, &m) < 0) {
		hs_serve_proto_close(cc, "malformed READ_WINDOW body");
		return;
	}
	r = read_find(cc, m.read_id);
	if (!r)
		return;
	r->cl_rec += m.add_records;
	r->cl_bytes += m.add_bytes;
	hs_serve_read_grant(sv, r);
}

void hs_serve_on_read_cancel(struct serve *sv, struct cconn *cc, const struct hs_frame *f)
{
	struct hs_read_cancel m;
	struct cread *r;

	if (hs_msg_read_cancel_dec(f->body, f->body_len, &m) < 0) {
		hs_serve_proto_close(cc, "malformed READ_CANCEL body");
		return;
	}
	r = read_find(cc, m.read_id);
	/* A read still queued on its stream is freed when its turn comes. */
	if (r && r->state != R_DONE)
		hs_serve_read_end(sv, r, -ECANCELED);
}

/* ---- subscriptions (design comment: SUBSCRIPTIONS) ----------------------- */

struct ssub *hs_serve_ssub_find(struct serve *sv, const char *name, size_t n)
{
	struct ssub *u;

	LIST_FOREACH(u, &sv->subs, link)
		if (u->nlen == n && !memcmp(u->name, name, n))
			return u;
	return NULL;
}

static struct ssub *ssub_get(struct serve *sv, const char *name, size_t n)
{
	struct ssub *u = hs_serve_ssub_find(sv, name, n);

	if (u)
		return u;
	u = hs_xcalloc(1, sizeof(*u));
	u->sv = sv;
	memcpy(u->name, name, n);
	u->nlen = (uint8_t)n;
	LIST_INSERT_HEAD(&sv->subs, u, link);
	return u;
}

static void ssub_maybe_free(struct ssub *u)
{
	if (u->sess || u->writing || u->refs || u->timer || u->want > u->rec.checkpoint)
		return;
	LIST_REMOVE(u, link);
	hs_subwin_free(&u->win);
	free(u);
}

size_t hs_serve_sub_key(uint8_t *key, const char *name, size_t n)
{
	return hs_meta_ukey(key, name, n);
}

static int fn_sub_ckpt(void *arg, const uint8_t *cur, size_t len, uint64_t version,
		       struct hs_buf *out)
{
	struct ssub *u = arg;
	struct hs_urec r;
	int rc = hs_urec_dec(cur, len, &r);

	if (rc < 0)
		return rc;
	if (rc == 0 || (r.flags & HS_UREC_DELETED) || r.created_ms != u->rec.created_ms)
		return -HS_ENOENT;
	if (r.checkpoint >= u->writing)
		return HS_REG_SAME; /* never backwards */
	r.checkpoint = u->writing;
	hs_urec_enc(&r, out);
	return 0;
}

static void sub_persist(struct ssub *u);

static void sub_ckpt_done(void *arg, int status, const uint8_t *val, size_t len, uint64_t version)
{
	struct ssub *u = arg;
	struct serve *sv = u->sv;
	struct hs_urec r;

	if (status == -ECANCELED)
		return;
	u->writing = 0;
	if (status == 0 && hs_urec_dec(val, len, &r) == 1) {
		if (r.checkpoint > u->rec.checkpoint)
			u->rec.checkpoint = r.checkpoint;
		sv->sub_ckpt_writes++;
	} else if (status == -HS_ENOENT) {
		/* Deleted (or deleted and created again) meanwhile. */
		u->want = u->rec.checkpoint;
		if (u->sess)
			hs_serve_read_end(sv, u->sess, -HS_ENOENT);
	} else {
		hs_warn("subscription '%s': cannot write its checkpoint: %s", u->name,
			hs_strerror(status));
	}
	if (!u->sess)
		sub_persist(u); /* what moved during the write, or a retry */
	ssub_maybe_free(u);
}

/* Write the checkpoint to u/<name> if it moved (one write at a time). */
static void sub_persist(struct ssub *u)
{
	struct serve *sv = u->sv;
	uint8_t key[HS_REG_KEY_MAX + 2];
	uint64_t c = u->live ? hs_subwin_checkpoint(&u->win) : 0;

	if (c > u->want)
		u->want = c;
	if (u->writing || u->want <= u->rec.checkpoint || sv->stopping > 1)
		return;
	u->writing = u->want;
	u->last_write_ms = hs_now_ms();
	u->acks_since = 0;
	if (hs_serve_reg_change(sv, key, hs_serve_sub_key(key, u->name, u->nlen), fn_sub_ckpt,
				sub_ckpt_done, u) < 0)
		u->writing = 0;
}

int64_t hs_serve_sub_room(const struct cread *r)
{
	const struct ssub *u = r->sub;
	int64_t room;

	if (r->child || !u->live)
		return INT64_MAX;
	room = (int64_t)u->rec.max_unacked - (int64_t)u->win.unacked;
	return room > 0 ? room : 0;
}

void hs_serve_sub_delivered(struct serve *sv, struct cread *r, uint64_t lo, uint64_t n,
			    uint64_t bytes)
{
	struct ssub *u = r->sub;

	if (!u->live)
		return;
	if (r->child) {
		/* A redelivery spends the session's client credit: the
		 * client gives it back for every record it gets. */
		if (u->sess) {
			u->sess->cl_rec -= (int64_t)n;
			u->sess->cl_bytes -= (int64_t)bytes;
		}
		return;
	}
	hs_subwin_delivered(&u->win, lo, n, hs_now_ms());
}

static void sub_skipped(struct serve *sv, struct cread *r, uint64_t lo, uint64_t hi)
{
	struct ssub *u = r->sub;

	if (!u->live)
		return;
	if (r->child)
		hs_subwin_ack(&u->win, lo, hi); /* gone meanwhile (trimmed): nothing to wait for */
	else
		hs_subwin_advance(&u->win, hi + 1);
}

static void sub_read_ended(struct serve *sv, struct cread *r, int status)
{
	struct ssub *u = r->sub;

	r->sub = NULL;
	if (r->child) {
		if (u->redo == r)
			u->redo = NULL;
		return;
	}
	if (u->sess != r)
		return;
	if (u->redo) {
		struct cread *c = u->redo;

		c->cc = NULL;
		hs_serve_read_end(sv, c, -ECANCELED);
	}
	hs_loop_timer_cancel(sv->loop, u->timer);
	u->timer = 0;
	u->sess = NULL;
	if (u->live) {
		uint64_t c = hs_subwin_checkpoint(&u->win);

		if (c > u->want)
			u->want = c;
		hs_subwin_free(&u->win);
		u->live = 0;
	}
	if (status && status != -ECANCELED)
		hs_info("subscription '%s': session ended: %s", u->name, hs_strerror(status));
	sub_persist(u);
	ssub_maybe_free(u);
}

/* Read lo..hi again and send it under the session's read id. */
static void sub_redeliver(struct serve *sv, struct ssub *u, uint64_t lo, uint64_t hi)
{
	struct cread *m = u->sess, *c = hs_xcalloc(1, sizeof(*c));

	c->sv = sv;
	c->cc = m->cc;
	c->s = m->s;
	m->s->refs++;
	c->req = m->req;
	c->read_id = m->read_id;
	c->flags = m->flags & HS_CREAD_GAPS;
	c->from = lo;
	c->until = hi + 1;
	c->cl_rec = (int64_t)(hi - lo + 1);
	c->unl_bytes = 1;
	c->sub = u;
	c->child = 1;
	u->redo = c;
	sv->sub_redelivered += hi - lo + 1;
	hs_debug("subscription '%s': redelivering %llu..%llu", u->name, (unsigned long long)lo,
		 (unsigned long long)hi);
	hs_serve_read_start_peer(sv, c);
}

static void sub_tick(struct hs_loop *l, void *arg)
{
	struct ssub *u = arg;
	struct serve *sv = u->sv;
	struct cread *r = u->sess;
	uint64_t now = hs_now_ms(), tmo = u->rec.ack_timeout_ms, lo, hi;

	u->timer = 0;
	if (!r || !u->live)
		return;
	if (now - u->last_write_ms >= SUB_PERSIST_MS)
		sub_persist(u);
	if (r->cc && hs_conn_out_pending(r->cc->c) >= HS_CONN_HIGH_WATER) {
		uint64_t bound = tmo > SUB_STUCK_MIN_MS ? tmo : SUB_STUCK_MIN_MS;

		if (!u->stuck_since) {
			u->stuck_since = now;
		} else if (now - u->stuck_since > bound) {
			hs_warn("subscription '%s': the subscriber on %s has not read its output for "
				"%llu ms; dropping its session", u->name, hs_conn_peer_name(r->cc->c),
				(unsigned long long)(now - u->stuck_since));
			sv->sub_dropped++;
			hs_serve_read_end(sv, r, -HS_ETIMEOUT);
			return;
		}
	} else {
		u->stuck_since = 0;
	}
	if (!u->redo && r->state == R_RUN && hs_subwin_due(&u->win, now, tmo, &lo, &hi))
		sub_redeliver(sv, u, lo, hi);
	u->timer = hs_loop_timer(sv->loop, SUB_TICK_MS, sub_tick, u);
}

/* Lookups: absent or deleted is -HS_ENOENT. */
int hs_serve_fn_sub_exists(void *arg, const uint8_t *cur, size_t len, uint64_t version,
			   struct hs_buf *out)
{
	struct hs_urec r;
	int rc = hs_urec_dec(cur, len, &r);

	if (rc < 0)
		return rc;
	if (rc == 0 || (r.flags & HS_UREC_DELETED))
		return -HS_ENOENT;
	return HS_REG_SAME;
}

struct subload {
	struct cread *r;
	struct ssub *u;
};

static void sub_load_done(void *arg, int status, const uint8_t *val, size_t len, uint64_t version)
{
	struct subload *x = arg;
	struct cread *r = x->r;
	struct ssub *u = x->u;
	struct serve *sv = u->sv;
	struct hs_urec rec;
	uint64_t ckpt;

	free(x);
	if (status == -ECANCELED)
		return;
	u->refs--;
	r->loading = 0;
	if (r->state == R_DONE) {
		free(r);
		ssub_maybe_free(u);
		return;
	}
	if (status == 0 && hs_urec_dec(val, len, &rec) != 1)
		status = -HS_EDATA;
	if (status < 0) {
		hs_serve_read_end(sv, r, status);
		return;
	}
	if (u->rec.created_ms != rec.created_ms)
		u->want = 0; /* an earlier subscription of that name */
	u->rec = rec;
	ckpt = rec.checkpoint > u->want ? rec.checkpoint : u->want;
	hs_subwin_init(&u->win, ckpt);
	u->live = 1;
	u->last_write_ms = hs_now_ms();
	u->stuck_since = 0;
	u->acks_since = 0;
	u->timer = hs_loop_timer(sv->loop, SUB_TICK_MS, sub_tick, u);
	sv->sub_sessions++;
	r->pfrom = (struct hs_pos){ .kind = HS_POS_LSN, .lsn = ckpt };
	r->queued = 1;
	hs_serve_stream_wait(sv, rec.stream, rec.stream_len, 0, NULL, &r->w);
}

void hs_serve_on_subscribe(struct serve *sv, struct cconn *cc, const struct hs_frame *f)
{
	struct hs_subscribe m;
	struct cread *r;
	struct ssub *u;
	struct subload *x;
	uint8_t key[HS_REG_KEY_MAX + 2];

	if (hs_msg_subscribe_dec(f->body, f->body_len, &m) < 0) {
		hs_serve_proto_close(cc, "malformed SUBSCRIBE body");
		return;
	}
	sv->reads++;
	r = hs_xcalloc(1, sizeof(*r));
	r->sv = sv;
	r->cc = cc;
	r->req = f->id;
	r->read_id = m.read_id;
	r->flags = HS_CREAD_FOLLOW | (m.flags & HS_CREAD_GAPS);
	r->cl_rec = m.win_records;
	r->cl_bytes = m.win_bytes;
	r->unl_rec = !m.win_records;
	r->unl_bytes = !m.win_bytes;
	r->w.fn = read_ready;
	LIST_INSERT_HEAD(&cc->reads, r, link);
	if (m.sub_len > HS_META_NAME_MAX || sv->stopping || (m.flags & ~(uint32_t)HS_CREAD_GAPS)) {
		hs_serve_read_end(sv, r, sv->stopping ? -HS_EUNAVAIL
				  : m.sub_len > HS_META_NAME_MAX ? -HS_ENOENT : -HS_EUSAGE);
		return;
	}
	u = ssub_get(sv, m.sub, m.sub_len);
	if (u->sess) {
		ssub_maybe_free(u);
		hs_serve_read_end(sv, r, -HS_ELOCKED);
		return;
	}
	u->sess = r;
	r->sub = u;
	x = hs_xcalloc(1, sizeof(*x));
	x->r = r;
	x->u = u;
	u->refs++;
	r->loading = 1;
	if (hs_serve_reg_change(sv, key, hs_serve_sub_key(key, m.sub, m.sub_len),
				hs_serve_fn_sub_exists, sub_load_done, x) < 0) {
		free(x);
		u->refs--;
		r->loading = 0;
		hs_serve_read_end(sv, r, -HS_ENOENT);
	}
}

static void ack_exists_done(void *arg, int status, const uint8_t *val, size_t len,
			    uint64_t version)
{
	struct creq *rq = arg;

	if (status != -ECANCELED)
		hs_serve_creq_settle(rq->sv, rq, 0, status, 0, 0, 0, "");
}

void hs_serve_on_ack(struct serve *sv, struct cconn *cc, const struct hs_frame *f)
{
	struct hs_clist l;
	struct hs_lsn_range e;
	struct ssub *u;
	struct creq *rq;
	uint8_t key[HS_REG_KEY_MAX + 2];

	if (hs_msg_clist_dec(HS_MSG_ACK, f->body, f->body_len, &l) < 0) {
		hs_serve_proto_close(cc, "malformed ACK body");
		return;
	}
	u = l.sub_len <= HS_META_NAME_MAX ? hs_serve_ssub_find(sv, l.sub, l.sub_len) : NULL;
	if (u && u->live) {
		uint64_t n = 0;

		while (hs_ack_next(&l, &e) == 1)
			n += hs_subwin_ack(&u->win, e.lo, e.hi);
		u->acks_since += n;
		if (u->acks_since >= SUB_PERSIST_ACKS)
			sub_persist(u);
		hs_serve_read_grant(sv, u->sess); /* max_unacked may have held it */
		hs_msg_result_encf(hs_conn_out(cc->c), f->id, 0, "%s", "");
		return;
	}
	/* No session here: nothing was delivered, so there is nothing to
	 * mark; only say whether the subscription exists. */
	rq = hs_serve_creq_new(sv, cc, f->id, HS_MSG_ACK, 1);
	if (l.sub_len > HS_META_NAME_MAX ||
	    hs_serve_reg_change(sv, key, hs_serve_sub_key(key, l.sub, l.sub_len),
				hs_serve_fn_sub_exists, ack_exists_done, rq) < 0)
		hs_serve_creq_settle(sv, rq, 0, -HS_ENOENT, 0, 0, 0, "");
}

/* SUB_CREATE: hs_serve_resolve `from` on the active stream, then create u/<sub>. */
