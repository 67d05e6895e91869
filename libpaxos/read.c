/*
 * read.c - the read path of hs-serve (serve.h): positions, peer read
 * streams, and subscription sessions.
 *
 * READ PATH.  READ resolves its positions when it starts, on the active
 * sequencer: tail = the next LSN (pinned), head = the first retained LSN,
 * head+N/tail-N count slots over the epochs' ranges (each recovered
 * epoch's [n1, end] from the log record, then the live epoch's), @time
 * asks the peers (LOCATE, see below).  With --tier, the slots below the
 * Tier1 trim point are counted first (in Tier2, hs_t2_resolve: the same
 * slots, from the segments), and an @time end is looked for there before
 * the peers' answer is taken; while that loads, the read waits in
 * R_LOCATE and resolve_end starts over when it is loaded.  Then the
 * merged peer read walks the range epoch by epoch; FOLLOW goes on in the
 * live epoch, and once the follower is caught up FOLLOWING FROM MEMORY
 * (seq.c) serves it.
 *   RESOLVE-ONLY READS.  SUB_CREATE and STREAM_TRIM (admin.c) resolve
 * their position with hs_serve_resolve_async: a struct cread with no
 * client and no end (res_done set) that goes through the same steps as a
 * READ's start (read_positions, LOCATE, resolve_end with Tier2's waits)
 * and ends, in hs_serve_read_end, where a READ would start reading,
 * handing r->from to res_done.  A cread rather than a separate resolver
 * state because t2read.h keeps its resolution state (and its `again`
 * callback) per cread.  Only the @time start differs: a READ finds its
 * Tier2 part while reading (hs_t2_time_from's filter), which a
 * resolve-only read cannot, so it is resolved as an @time end is: Tier2's
 * first record at or after the time (hs_t2_resolve), else LOCATE's answer.
 * It holds the stream (s->refs) like any read; the stream may die
 * meanwhile (it is not ended by hs_serve_stream_kill), which the caller
 * checks in res_done.
 *
 * MERGED PEER READS (docs/replication.md §6).  For the epoch holding the
 * next slot (the CLEAN entries of s->lr below the live epoch, then the
 * live epoch s->epoch with its nodeset s->ns), one START per UP peer of
 * its nodeset over [next, min(until - 1, end of epoch)], fed into a merge
 * (libpaxos/merge.h: acceptable copies, each slot once, HOLE, BRIDGE,
 * DATALOSS only on evidence).  A recovered epoch is read with
 * HS_READ_IGNORE_RELEASED up to its `end` (its slots are final; a peer's
 * release point may lag), the live one without (the peers stop at what
 * was released).  Slots below the trim point are served from Tier2 by
 * t2read.c when hs-serve has --tier (through t2_out: the same DELIVER,
 * gap and credit code; it hands the read back here at the first slot
 * above the trim point, and positions look there first), else
 * they are one TRIM gap; slots of
 * epochs without an entry, and the slots after a recovered epoch's end,
 * one BRIDGE gap (coalesced across epochs).  When the merge is done the
 * next epoch is opened.  Runs the merge hands out become DELIVER runs
 * (whole, or sliced to the range and limit), several per frame up to
 * DELIVER_TARGET; gaps become READ_GAP (HOLE and BRIDGE only with
 * HS_CREAD_GAPS; TRIM and DATALOSS always).
 *   Credit: each peer stream gets its own window: it may hold, in flight
 * plus buffered in the merge, what the client granted (capped at
 * READ_CAP_REC/BYTES), topped up in chunks while the client connection's
 * output is below its high-water mark; the merge hands out only what the
 * client's credit allows (the rest stays buffered, bounded by those
 * windows).  With R=1 and one peer, or a peer ahead of the others, runs
 * go out straight from the peer's frame (no copy, no allocation per run).
 *   Down peers: a peer that is down when the epoch is opened, or whose
 * link or stream fails, is an input that proves nothing; every
 * READ_RETRY_MS its stream is opened again from the merge's next slot if
 * its link is back.  When only down peers could decide the next slot for
 * READ_STALL_MS (HS_READ_STALL_MS in the environment overrides it), the
 * read ends with -HS_ETIMEOUT (-HS_EUNAVAIL when following, which hs-tail
 * -F retries): a down peer never makes a DATALOSS.
 *   Stale live epoch: a merge opened for the live epoch accepts every
 * released copy, which holds only while that epoch is not recovered.
 * When its peers pass a slot that this active sequencer did not release
 * (or the stream died or moved to a newer epoch meanwhile), the epoch
 * was sealed and recovered since: that is no DATALOSS.  On a stream
 * re-activated here the read merges the epoch again from r->next by its
 * recovered entry; otherwise it ends with -HS_EUNAVAIL (read_fenced) and
 * a -F client reconnects to whoever sequences the stream now.
 *   LOCATE (@time): sent to every UP peer of the log's nodesets; the
 * position is the smallest LSN any answers (0 from all: the tail).  Every
 * record is on R peers, so the first matching record is found unless all
 * of its copies are on peers that are down; a stale copy (one the merge
 * would not accept) can only make the read start a few slots early, never
 * skip.  With no peer answering, -HS_EUNAVAIL.
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
 * first unacknowledged one are delivered again (at-least-once).  The
 * checkpoint SUB_CREATE starts from is resolved by a resolve-only read
 * (READ PATH), so every position kind READ takes is accepted.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "merge.h"
#include "pos.h"
#include "run.h"
#include "serve.h"
#include "t2read.h"

#define READ_CAP_REC 65536u            /* peer read credit per input */
#define READ_CAP_BYTES (4u << 20)
#define DELIVER_TARGET (1u << 20)      /* DELIVER frames built from merged runs */
#define READ_RETRY_MS 200              /* reopen inputs whose peer came back */
#define READ_STALL_MS 10000            /* blocked on down peers this long: fail */
#define SUB_TICK_MS 50                 /* subscription session housekeeping */
#define SUB_PERSIST_MS 100             /* checkpoint writes at most this often */
#define SUB_PERSIST_ACKS 1000          /* ... unless this many records were acked */
#define SUB_STUCK_MIN_MS 1000          /* shortest wait before dropping a stuck subscriber */

/* ---- positions ----------------------------------------------------------- */

/* The LSN ranges of s that may hold retained records, oldest first: each
 * recovered epoch's [e n1, end] (holes included: a recovery keeps slots
 * dense up to end), then the live one's released part [E n1, tail - 1]. */
static size_t stream_ranges(const struct sstream *s, uint64_t (*rg)[2], size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i <= s->lr.nepochs && n < max; i++) {
		uint64_t lo, hi;

		if (i < s->lr.nepochs) {
			const struct hs_lepoch *x = &s->lr.epochs[i];

			if (x->epoch >= s->epoch || !(x->flags & HS_LEPOCH_CLEAN))
				continue;
			lo = HS_LSN(x->epoch, 1);
			hi = x->end;
		} else {
			lo = HS_LSN(s->epoch, 1);
			hi = hs_serve_stream_tail(s) - 1;
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
	return s->released + 1;
}

static void stream_ranges_alloc(const struct sstream *s, uint64_t (**rg)[2], size_t *n)
{
	*rg = hs_xmalloc(((size_t)s->lr.nepochs + 1) * sizeof(**rg));
	*n = stream_ranges(s, *rg, (size_t)s->lr.nepochs + 1);
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

/* One peer's read stream of the epoch being merged. */
struct rin {
	struct rpeer *rp;
	int i;                    /* merge input */
	int idx;                  /* link index, -1: unknown node id */
	uint64_t req;             /* START's id: the stream's frames carry it */
	uint32_t sid;
	int open;                 /* registered, START sent */
	int64_t out_rec, out_bytes; /* granted to the peer, not yet received */
};

/* The merged peer read of one epoch (design comment: MERGED PEER READS). */
struct rpeer {
	struct cread *r;
	struct hs_merge *m;
	uint32_t epoch;
	uint64_t to;              /* the merge's last slot */
	uint64_t until;           /* START's until (inclusive) */
	uint32_t sflags;          /* START's flags */
	int n, rf;                /* nodeset size, replication */
	int finished;             /* the limit was reached while handing out */
	int live;                 /* opened as s's live epoch (every
				   * released copy acceptable) */
	int fenced;               /* that epoch was recovered since: the
				   * merge's rules are stale (see m_gap) */
	uint64_t timer;
	uint64_t blocked_since;   /* ms; 0 = not blocked */
	struct rin in[HS_NODESET_MAX];
};

static const struct hs_merge_out merge_out;

static uint64_t stall_ms(void)
{
	static uint64_t v;

	if (!v) {
		const char *e = getenv("HS_READ_STALL_MS");

		v = e && atoll(e) > 0 ? (uint64_t)atoll(e) : READ_STALL_MS;
	}
	return v;
}

/* Close the open DELIVER frame of r. */
static void out_close(struct cread *r)
{
	if (r->dw_open) {
		hs_msg_wr_end(&r->dw);
		r->dw_open = 0;
	}
}

/* Send r's pending gap. */
static void out_gap_flush(struct cread *r)
{
	struct hs_msg_wr w;

	if (!r->gap_kind)
		return;
	if (r->cc && !hs_conn_closing(r->cc->c)) {
		hs_msg_read_gap_begin(&w, hs_conn_out(r->cc->c), r->req, r->read_id);
		hs_msg_read_gap_add(&w, r->gap_lo, r->gap_hi, (uint8_t)r->gap_kind);
		hs_msg_wr_end(&w);
	}
	r->gap_kind = 0;
}

static void out_flush(struct cread *r)
{
	out_close(r);
	out_gap_flush(r);
}

/* r passed the gap [lo, hi] of kind (HS_MERGE_*): report it (HOLE and
 * BRIDGE only with HS_CREAD_GAPS), coalesced with the pending one. */
static void read_gap(struct serve *sv, struct cread *r, uint64_t lo, uint64_t hi, int kind)
{
	r->next = hi + 1;
	/* Slot 0 of an epoch never holds a record: gaps neither start nor
	 * end there (readers take eEn0 for a malformed LSN). */
	if (!HS_LSN_ESN(lo))
		lo++;
	if (!HS_LSN_ESN(hi))
		hi--;
	if (lo > hi)
		return;
	if (r->sub)
		sub_skipped(sv, r, lo, hi);
	if ((kind == HS_MERGE_HOLE || kind == HS_MERGE_BRIDGE) && !(r->flags & HS_CREAD_GAPS))
		return;
	out_close(r);
	if (r->gap_kind == kind && r->gap_hi + 1 == lo) {
		r->gap_hi = hi;
		return;
	}
	out_gap_flush(r);
	r->gap_kind = kind;
	r->gap_lo = lo;
	r->gap_hi = hi;
}

static void m_gap(void *arg, uint64_t lo, uint64_t hi, int kind)
{
	struct cread *r = arg;

	if (kind == HS_MERGE_DATALOSS && r->rp->live &&
	    !(r->s->state == S_ACTIVE && r->s->epoch == r->rp->epoch && lo <= r->s->released)) {
		/* Peers passed a slot of the epoch this merge took for the
		 * live one, and it is not a slot our active sequencer
		 * released: the epoch was sealed and recovered since (by
		 * another sequencer - we are a paused or cut-off zombie - or
		 * by our own re-activation), and its recovered end is below
		 * what the merge allowed.  Not a loss: read_pump re-opens the
		 * epoch with its recovered entry, or ends the read. */
		r->rp->fenced = 1;
		return;
	}
	if (kind == HS_MERGE_DATALOSS) {
		char a[32], b[32];

		hs_lsn_fmt(a, sizeof(a), lo);
		hs_lsn_fmt(b, sizeof(b), hi);
		hs_warn("read of '%s': DATALOSS %s..%s: no copy on an f-majority of epoch %u's "
			"nodeset", r->s->name, a, b, HS_LSN_EPOCH(lo));
	}
	read_gap(r->sv, r, lo, hi, kind);
}

/* How many of cnt records r may hand its client now. */
static uint64_t client_room(const struct cread *r, uint64_t cnt)
{
	if (!r->unl_rec && (uint64_t)(r->cl_rec > 0 ? r->cl_rec : 0) < cnt)
		cnt = r->cl_rec > 0 ? (uint64_t)r->cl_rec : 0;
	if (r->limit && r->limit - r->sent < cnt)
		cnt = r->limit - r->sent;
	if (r->sub && (uint64_t)hs_serve_sub_room(r) < cnt)
		cnt = (uint64_t)hs_serve_sub_room(r);
	if (!r->unl_bytes && r->cl_bytes <= 0)
		cnt = 0;
	if (hs_conn_out_pending(r->cc->c) >= HS_CONN_HIGH_WATER)
		cnt = 0; /* on_client_writable steps the merge again */
	return cnt;
}

static uint32_t m_deliver(void *arg, uint64_t first, const struct hs_run *rr, uint64_t lo,
			  uint32_t cnt)
{
	struct cread *r = arg;
	struct serve *sv = r->sv;
	struct hs_buf *out;
	uint64_t n, pay;
	size_t before;

	if (r->rp->finished || r->rp->fenced)
		return 0;
	if (!r->cc || hs_conn_closing(r->cc->c)) {
		r->next = lo + cnt; /* nobody to send to: the read ends soon */
		return cnt;
	}
	n = client_room(r, cnt);
	if (!n)
		return 0;
	out_gap_flush(r);
	out = hs_conn_out(r->cc->c);
	if (r->dw_open && hs_msg_wr_size(&r->dw) + rr->len + 12 > DELIVER_TARGET)
		out_close(r);
	if (!r->dw_open) {
		hs_msg_deliver_begin(&r->dw, out, r->req, r->read_id);
		r->dw_open = 1;
	}
	before = out->len;
	if (lo == first && n == rr->nrecords) {
		hs_msg_deliver_run(&r->dw, first, rr->base, rr->len);
	} else {
		hs_msg_deliver_run_open(&r->dw, lo);
		hs_run_slice(rr, (uint32_t)(lo - first), (uint32_t)n, out);
		hs_msg_wr_run_close(&r->dw);
	}
	/* The client's byte credit counts payload bytes only. */
	pay = out->len - before - 12 - HS_RUN_HDR - 4 - 4 * (size_t)rr->ncopyset -
	      HS_RUN_REC_HDR * n;
	r->sent += n;
	r->cl_rec -= (int64_t)n;
	r->cl_bytes -= (int64_t)pay;
	sv->records_delivered += n;
	r->next = lo + n;
	if (r->sub)
		hs_serve_sub_delivered(sv, r, lo, n, pay);
	if (r->limit && r->sent >= r->limit)
		r->rp->finished = 1;
	return (uint32_t)n;
}

static const struct hs_merge_out merge_out = { m_deliver, m_gap };

/* The Tier2 read's DELIVER (t2read.h): a whole run built from a segment
 * block, with m_deliver's framing and accounting. */
static void t2_deliver(struct serve *sv, struct cread *r, uint64_t first, const void *run,
		       size_t len, uint32_t n, uint64_t pay)
{
	struct hs_buf *out = hs_conn_out(r->cc->c);

	out_gap_flush(r);
	if (r->dw_open && hs_msg_wr_size(&r->dw) + len + 12 > DELIVER_TARGET)
		out_close(r);
	if (!r->dw_open) {
		hs_msg_deliver_begin(&r->dw, out, r->req, r->read_id);
		r->dw_open = 1;
	}
	hs_msg_deliver_run(&r->dw, first, run, len);
	r->sent += n;
	r->cl_rec -= (int64_t)n;
	r->cl_bytes -= (int64_t)pay;
	sv->records_delivered += n;
	r->next = first + n;
	if (r->sub)
		hs_serve_sub_delivered(sv, r, first, n, pay);
}

static const struct hs_t2_out t2_out = { read_gap, client_room, t2_deliver };

/* STOP input i's stream (if open) and drop its registration. */
static void rin_stop(struct serve *sv, struct rin *in)
{
	struct hs_buf *out;

	if (!in->open)
		return;
	in->open = 0;
	hs_peers_forget(sv->peers, in->idx, in->req);
	/* Past until the peer has ended the stream itself (its END is in
	 * flight, behind the RECORDS that completed the merge): a STOP would
	 * only earn a "no such read stream" failure. */
	if (hs_merge_pos(in->rp->m, in->i) > in->rp->until)
		return;
	out = hs_peers_out(sv->peers, in->idx);
	if (out) {
		struct hs_stop st = { .stream = in->sid };

		/* Its RESULT reply lands in ops->frame and is ignored. */
		hs_msg_stop_enc(out, hs_peers_next_id(sv->peers), &st);
	}
}

void hs_serve_read_stop_peer(struct serve *sv, struct cread *r)
{
	struct rpeer *rp = r->rp;

	if (!rp)
		return;
	out_flush(r);
	for (int i = 0; i < rp->n; i++)
		rin_stop(sv, &rp->in[i]);
	if (rp->timer)
		hs_loop_timer_cancel(sv->loop, rp->timer);
	hs_merge_free(rp->m);
	free(rp);
	r->rp = NULL;
	/* seq.c's hs_serve_mem_take() may still STOP r->sid on the data
	 * peer: nothing is registered under these any more. */
	r->peer_req = 0;
	r->sid = 0;
	r->out_rec = r->out_bytes = 0;
}

/* The credit an input may hold (in flight plus buffered in the merge):
 * what the client granted, capped.  Each of n peers holds about r/n of the
 * records, so the cap shrinks with r/n (to a quarter at least): a read
 * buffers at most about r (or n/4) caps however large the nodeset. */
static void read_want(const struct cread *r, int64_t *want_r, int64_t *want_b)
{
	const struct rpeer *rp = r->rp;
	int64_t cap_r = READ_CAP_REC, cap_b = READ_CAP_BYTES;

	if (rp && rp->n > 2) {
		cap_r = cap_r * rp->rf / rp->n;
		cap_b = cap_b * rp->rf / rp->n;
		if (cap_r < READ_CAP_REC / 4)
			cap_r = READ_CAP_REC / 4;
		if (cap_b < READ_CAP_BYTES / 4)
			cap_b = READ_CAP_BYTES / 4;
	}
	*want_r = r->unl_rec || r->cl_rec > cap_r ? cap_r : r->cl_rec;
	*want_b = r->unl_bytes || r->cl_bytes > cap_b ? cap_b : r->cl_bytes;
	if (r->limit && (int64_t)(r->limit - r->sent) < *want_r)
		*want_r = (int64_t)(r->limit - r->sent);
	if (r->sub && hs_serve_sub_room(r) < *want_r)
		*want_r = hs_serve_sub_room(r);
	if (*want_r < 0)
		*want_r = 0;
	if (*want_b < 0)
		*want_b = 0;
}

static void rin_on_peer(void *arg, int idx, const struct hs_frame *f);

/* Open input i's stream from slot from. */
static void rin_start(struct serve *sv, struct cread *r, struct rin *in, uint64_t from)
{
	struct rpeer *rp = r->rp;
	struct hs_buf *out = in->idx >= 0 ? hs_peers_out(sv->peers, in->idx) : NULL;
	struct hs_start m = { 0 };
	int64_t wr, wb;

	if (!out) {
		hs_merge_down(rp->m, in->i);
		return;
	}
	read_want(r, &wr, &wb);
	in->sid = ++sv->next_sid;
	in->req = hs_peers_next_id(sv->peers);
	in->open = 1;
	in->out_rec = wr;
	in->out_bytes = wb;
	m.stream = in->sid;
	m.log = r->s->rec.log;
	m.from = from;
	m.until = rp->until;
	m.flags = rp->sflags;
	m.win_records = wr > 0 ? (uint32_t)wr : 1; /* 0 would mean unlimited */
	m.win_bytes = wb > 0 ? (uint32_t)wb : 1;
	hs_peers_expect(sv->peers, in->idx, in->req, rin_on_peer, in, 1);
	hs_msg_start_enc(out, in->req, &m);
}

/* Pass the client's credit on to every open input: each may hold (in
 * flight plus buffered in the merge) what the client granted. */
static void rp_grant(struct serve *sv, struct cread *r)
{
	struct rpeer *rp = r->rp;
	int64_t want_r, want_b;

	if (!r->cc || hs_conn_closing(r->cc->c) ||
	    hs_conn_out_pending(r->cc->c) >= HS_CONN_HIGH_WATER)
		return;
	read_want(r, &want_r, &want_b);
	for (int i = 0; i < rp->n; i++) {
		struct rin *in = &rp->in[i];
		uint64_t br, bb;
		int64_t add_r, add_b;
		struct hs_buf *out;

		if (!in->open)
			continue;
		hs_merge_buffered(rp->m, i, &br, &bb);
		add_r = want_r - (in->out_rec > 0 ? in->out_rec : 0) - (int64_t)br;
		add_b = want_b - (in->out_bytes > 0 ? in->out_bytes : 0) - (int64_t)bb;
		if (add_r < 0)
			add_r = 0;
		if (add_b < 0)
			add_b = 0;
		/* Grant in chunks, not record by record - unless the peer is
		 * out of credit, when any credit must be passed on. */
		if (in->out_rec > 0 && in->out_bytes > 0 && add_r < want_r / 4 &&
		    add_b < want_b / 4)
			continue;
		if (!add_r && !add_b)
			continue;
		out = hs_peers_out(sv->peers, in->idx);
		if (!out)
			continue;
		{
			struct hs_window m = { .stream = in->sid, .add_records = (uint32_t)add_r,
					       .add_bytes = (uint32_t)add_b };

			hs_msg_window_enc(out, in->req, &m);
		}
		if (in->out_rec < 0)
			in->out_rec = 0;
		if (in->out_bytes < 0)
			in->out_bytes = 0;
		in->out_rec += add_r;
		in->out_bytes += add_b;
	}
}

/* The epoch a read at slot next is in, or the first one after it: the
 * CLEAN entries of the log record below the live epoch, then the live
 * epoch (its nodeset and R as activated; every released copy is
 * acceptable).  Returns 1 with *e filled, 0 (next is past the live
 * epoch) or -HS_EUNAVAIL (an epoch below the live one is not recovered:
 * cannot happen on an active stream). */
static int read_epoch(const struct sstream *s, uint64_t next, struct hs_lepoch *e)
{
	for (uint16_t i = 0; i < s->lr.nepochs; i++) {
		const struct hs_lepoch *x = &s->lr.epochs[i];

		if (x->epoch >= s->epoch || HS_LSN(x->epoch, UINT32_MAX) < next)
			continue;
		if (!(x->flags & HS_LEPOCH_CLEAN)) {
			hs_warn("read of '%s': epoch %u is not recovered", s->name, x->epoch);
			return -HS_EUNAVAIL;
		}
		*e = *x;
		return 1;
	}
	if (HS_LSN(s->epoch, UINT32_MAX) < next)
		return 0;
	memset(e, 0, sizeof(*e));
	e->epoch = s->epoch;
	e->r = s->r;
	e->nn = s->nn;
	memcpy(e->nodes, s->ns, sizeof(e->nodes));
	e->lng = e->end = HS_LSN(s->epoch, UINT32_MAX);
	return 1;
}

/* Start merging the epoch r->next is in (after the gaps before it).
 * Returns 1 (r->rp set up), 2 (r->next is below the Tier1 trim: r->t2 set
 * up), 0 (nothing more to read: until passed) or a negative code. */
static int seg_open(struct serve *sv, struct cread *r)
{
	struct sstream *s = r->s;
	uint64_t last = r->until ? r->until - 1 : UINT64_MAX;
	struct hs_merge_cfg c = { 0 };
	struct hs_lepoch e;
	struct rpeer *rp;
	int rc;

	for (;;) {
		if (r->until && r->next >= r->until)
			return 0;
		if (r->next <= s->trim) {
			/* Below the Tier1 trim: Tier2 (t2read.c), else a TRIM gap. */
			if (hs_t2_read_begin(sv, r))
				return 2;
			read_gap(sv, r, r->next, s->trim < last ? s->trim : last, HS_MERGE_TRIM);
			continue;
		}
		rc = read_epoch(s, r->next, &e);
		if (rc <= 0)
			return rc;
		if (r->next < HS_LSN(e.epoch, 1)) {
			/* Epochs without entries hold nothing. */
			uint64_t hi = HS_LSN(e.epoch, 1) - 1;

			read_gap(sv, r, r->next, hi < last ? hi : last, HS_MERGE_BRIDGE);
			continue;
		}
		break;
	}
	rp = hs_xcalloc(1, sizeof(*rp));
	rp->r = r;
	rp->epoch = e.epoch;
	rp->to = HS_LSN(e.epoch, UINT32_MAX) < last ? HS_LSN(e.epoch, UINT32_MAX) : last;
	c.from = r->next;
	c.to = rp->to;
	c.lng = e.lng;
	c.end = e.end;
	c.ballot = e.ballot;
	c.n = e.nn > HS_NODESET_MAX ? HS_NODESET_MAX : e.nn;
	c.r = e.r ? e.r : 1;
	rp->n = c.n;
	rp->rf = c.r;
	if (e.epoch == s->epoch) {
		rp->live = 1;
		rp->until = rp->to;    /* the peers send only what is released */
	} else {
		/* Recovered: every slot is final and the peers' release point
		 * may lag; the merge keeps only acceptable copies. */
		rp->until = e.end < rp->to ? e.end : rp->to;
		rp->sflags = HS_READ_IGNORE_RELEASED;
	}
	rp->m = hs_merge_new(&c, &merge_out, r);
	r->rp = rp;
	for (int i = 0; i < rp->n; i++) {
		struct rin *in = &rp->in[i];

		in->rp = rp;
		in->i = i;
		in->idx = hs_serve_peer_idx(sv, e.nodes[i]);
		if (rp->until < c.from)
			continue; /* nothing to ask: the merge ends with a BRIDGE */
		rin_start(sv, r, in, c.from);
	}
	return 1;
}

static void rp_tick(struct hs_loop *l, void *arg);

/* r's live epoch was recovered elsewhere: end r as a connection-level
 * failure (-F clients reconnect and are redirected to the new sequencer)
 * and stop sequencing the stream, as a STORE refused with -HS_ESEALED
 * would. */
static void read_fenced(struct serve *sv, struct cread *r)
{
	struct sstream *s = r->s;
	uint32_t epoch = r->rp->epoch;

	out_flush(r);
	/* Kill first: r's ref keeps s alive until r ends. */
	if (s->state == S_ACTIVE && s->epoch == epoch) {
		hs_warn("stream '%s': epoch %u recovered by a newer sequencer", s->name, epoch);
		sv->fenced++;
		hs_serve_stream_kill(sv, s, -HS_ESEALED);
	}
	hs_serve_read_end(sv, r, -HS_EUNAVAIL);
}

/* Hand out what the merge can, walk on to the next epoch when one is done,
 * end r when its range is; else pass credit on and watch for a stall. */
static void read_pump(struct serve *sv, struct cread *r)
{
	struct rpeer *rp;
	int st = HS_MERGE_MORE, rc;

	while (r->state == R_RUN && !r->mem) {
		if (r->t2) {
			if (!r->cc || hs_conn_closing(r->cc->c)) {
				hs_serve_read_end(sv, r, -ECANCELED);
				return;
			}
			rc = hs_t2_read_pump(sv, r, &t2_out);
			if (rc == HS_T2_DONE)
				continue; /* above the Tier1 trim: the peers go on */
			out_flush(r);
			if (rc != HS_T2_WAIT)
				hs_serve_read_end(sv, r, rc == HS_T2_LIMIT ? 0 : rc);
			return;
		}
		if (!r->rp) {
			rc = seg_open(sv, r);
			if (rc == 2)
				continue;
			if (rc <= 0) {
				out_flush(r);
				if (!rc && r->until && r->next < r->until)
					r->next = r->until;
				hs_serve_read_end(sv, r, rc);
				return;
			}
		}
		st = hs_merge_step(r->rp->m);
		if (r->rp->fenced) {
			if (r->s->state == S_ACTIVE && r->s->epoch > r->rp->epoch) {
				/* Re-activated here since: the log record has
				 * the epoch's recovered entry; merge again from
				 * r->next by its rules. */
				hs_serve_read_stop_peer(sv, r);
				continue;
			}
			read_fenced(sv, r);
			return;
		}
		if (r->rp->finished) {
			out_flush(r);
			hs_serve_read_end(sv, r, 0);
			return;
		}
		if (st != HS_MERGE_DONE)
			break;
		r->next = r->rp->to + 1;
		hs_serve_read_stop_peer(sv, r);
	}
	if (r->state != R_RUN || r->mem)
		return;
	out_flush(r);
	rp = r->rp;
	if (st == HS_MERGE_MORE && hs_serve_mem_can_take(r)) {
		hs_serve_read_stop_peer(sv, r);
		hs_serve_mem_take(sv, r);
		return;
	}
	rp_grant(sv, r);
	if (hs_merge_blocked(rp->m)) {
		if (!rp->blocked_since)
			rp->blocked_since = hs_now_ms();
	} else {
		rp->blocked_since = 0;
	}
	/* Down inputs are retried while they may matter. */
	if (!rp->timer) {
		for (int i = 0; i < rp->n; i++)
			if (!rp->in[i].open && hs_merge_pos(rp->m, i) <= rp->until &&
			    rp->until >= hs_merge_next(rp->m)) {
				rp->timer = hs_loop_timer(sv->loop, READ_RETRY_MS, rp_tick, rp);
				break;
			}
	}
}

/* Reopen the inputs whose peers came back; end a read blocked too long. */
static void rp_tick(struct hs_loop *l, void *arg)
{
	struct rpeer *rp = arg;
	struct cread *r = rp->r;
	struct serve *sv = r->sv;

	rp->timer = 0;
	for (int i = 0; i < rp->n; i++) {
		struct rin *in = &rp->in[i];

		/* Not needed any more: it ended, or the merge is past its range. */
		if (in->open || in->idx < 0 || !hs_peers_is_up(sv->peers, in->idx) ||
		    hs_merge_pos(rp->m, i) > rp->until || hs_merge_next(rp->m) > rp->until)
			continue;
		hs_merge_reopen(rp->m, i);
		rin_start(sv, r, in, hs_merge_next(rp->m));
	}
	if (rp->blocked_since && hs_merge_blocked(rp->m) &&
	    hs_now_ms() - rp->blocked_since >= stall_ms()) {
		char at[32];

		hs_lsn_fmt(at, sizeof(at), hs_merge_next(rp->m));
		hs_warn("read of '%s': the peers that may hold %s have been down for %llu ms",
			r->s->name, at, (unsigned long long)(hs_now_ms() - rp->blocked_since));
		hs_serve_read_end(sv, r, (r->flags & HS_CREAD_FOLLOW) ? -HS_EUNAVAIL
				  : -HS_ETIMEOUT);
		return;
	}
	read_pump(sv, r);
}

static void rin_on_peer(void *arg, int idx, const struct hs_frame *f)
{
	struct rin *in = arg;
	struct rpeer *rp = in->rp;
	struct cread *r = rp->r;
	struct serve *sv = r->sv;
	int rc = 0;

	if (!f) {
		/* The link is gone, and the registration with it. */
		in->open = 0;
		hs_merge_down(rp->m, in->i);
		read_pump(sv, r);
		return;
	}
	switch (f->type) {
	case HS_MSG_RECORDS: {
		struct hs_records m;
		uint64_t first;
		const uint8_t *run;
		size_t len;
		struct hs_run rr;

		if (hs_msg_records_dec(f->body, f->body_len, &m) < 0) {
			rc = -HS_EPROTO;
			break;
		}
		while (rc >= 0 && hs_records_next(&m, &first, &run, &len) == 1) {
			if (hs_run_parse_nocrc(run, len, &rr) < 0) {
				rc = -HS_EPROTO;
				break;
			}
			/* The peer charges the entry header (u64 lsn, u32 len) too. */
			in->out_rec -= rr.nrecords;
			in->out_bytes -= (int64_t)len + 12;
			rc = hs_merge_run(rp->m, in->i, first, run, len);
		}
		break;
	}
	case HS_MSG_GAP: {
		struct hs_gap g;

		if (hs_msg_gap_dec(f->body, f->body_len, &g) < 0) {
			rc = -HS_EPROTO;
			break;
		}
		if (g.reason == HS_GAP_CHECKSUM) {
			char a[32], b[32];

			hs_lsn_fmt(a, sizeof(a), g.lo);
			hs_lsn_fmt(b, sizeof(b), g.hi);
			hs_warn("read of '%s': peer %s has a bad copy of %s..%s", r->s->name,
				hs_peers_addr(sv->peers, idx), a, b);
		}
		rc = hs_merge_gap(rp->m, in->i, g.lo, g.hi, g.reason);
		break;
	}
	case HS_MSG_END: {
		struct hs_end e;

		if (hs_msg_end_dec(f->body, f->body_len, &e) < 0) {
			rc = -HS_EPROTO;
			break;
		}
		hs_peers_forget(sv->peers, in->idx, in->req);
		in->open = 0;
		if (e.status) {
			hs_warn("read of '%s': peer %s: %s", r->s->name,
				hs_peers_addr(sv->peers, idx), hs_strerror(e.status));
			hs_merge_down(rp->m, in->i);
		} else {
			rc = hs_merge_end(rp->m, in->i);
		}
		break;
	}
	case HS_MSG_RESULT: {
		struct hs_result res;

		if (hs_msg_result_dec(f->body, f->body_len, &res) == 0 && res.status < 0) {
			hs_warn("read of '%s': peer %s refused the read: %s", r->s->name,
				hs_peers_addr(sv->peers, idx), hs_strerror(res.status));
			hs_peers_forget(sv->peers, in->idx, in->req);
			in->open = 0;
			hs_merge_down(rp->m, in->i);
		}
		break;
	}
	default:
		rc = -HS_EPROTO;
		break;
	}
	if (rc < 0) {
		/* A peer that speaks nonsense is treated as down. */
		hs_warn("read of '%s': bad %s from peer %s", r->s->name, hs_msg_name(f->type),
			hs_peers_addr(sv->peers, idx));
		rin_stop(sv, in);
		hs_merge_down(rp->m, in->i);
	}
	read_pump(sv, r);
}

void hs_serve_read_end(struct serve *sv, struct cread *r, int status)
{
	struct hs_read_end m = { .read_id = r->read_id, .status = status };

	if (r->state == R_DONE)
		return;
	hs_serve_read_stop_peer(sv, r);
	hs_t2_read_stop(sv, r);
	out_flush(r);
	m.next_lsn = r->next;
	r->state = R_DONE;
	if (r->res_done) {
		/* Resolve-only (hs_serve_resolve_async): s still held. */
		r->res_done(sv, r->res_arg, status, status ? 0 : r->from);
		r->res_done = NULL;
	}
	if (r->cc && !r->child) {
		/* A redirect names the stream's sequencer in a RESULT with the
		 * read's request id just before READ_END (proto_client.h). */
		if (!hs_conn_closing(r->cc->c) && status == -HS_EREDIRECT && r->s)
			hs_msg_result_encf(hs_conn_out(r->cc->c), r->req, status, "%s",
					   hs_serve_redirect_addr(r->s));
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
	if (r->mem) {
		hs_serve_mem_push(sv, r);
		return;
	}
	if (r->state != R_RUN || (!r->rp && !r->t2) || !r->cc || hs_conn_closing(r->cc->c) ||
	    hs_conn_out_pending(r->cc->c) >= HS_CONN_HIGH_WATER)
		return;
	read_pump(sv, r);
}

void hs_serve_read_start_peer(struct serve *sv, struct cread *r)
{
	hs_serve_read_stop_peer(sv, r); /* a stale one, left by a switch to memory */
	if (r->until && r->from >= r->until) {
		hs_serve_read_end(sv, r, 0);
		return;
	}
	r->state = R_RUN;
	r->mem = 0;
	r->next = r->from;
	read_pump(sv, r);
}

static void read_resolved(struct serve *sv, struct cread *r);

/* What hs_t2_resolve waited for is loaded: resolve again from scratch. */
static void t2_resolve_again(struct serve *sv, struct cread *r)
{
	r->state = R_WAIT;
	read_resolved(sv, r);
}

/* One end p of r: Tier2 first when it may be there (head+N, tail-N, an
 * @time end: hs_t2_resolve counts Tier2's slots before Tier1's), then
 * Tier1.  *v holds Tier1's answer for @time (LOCATE's) on entry.  Returns
 * 0 or HS_T2_RES_WAIT (r is resolved again later), or ends r and returns
 * a negative code. */
static int resolve_end(struct serve *sv, struct cread *r, const struct hs_pos *p, uint64_t *v)
{
	struct hs_pos q = *p;
	uint64_t lsn;
	int rc = hs_t2_resolve(sv, r, &q, &lsn, t2_resolve_again);

	if (rc == HS_T2_RES_WAIT) {
		r->state = R_LOCATE;
		return rc;
	}
	if (rc < 0) {
		hs_serve_read_end(sv, r, rc);
		return rc;
	}
	if (rc == 1)
		*v = lsn;
	else if (q.kind != HS_POS_TIME)
		*v = hs_serve_resolve(r->s, &q);
	return 0;
}

static void read_resolved(struct serve *sv, struct cread *r)
{
	struct sstream *s = r->s;

	/* A READ's @time start was located by on_located (and Tier2's part
	 * is found while reading: hs_t2_time_from).  A resolve-only one is
	 * resolved as an @time end is: Tier2 first, else LOCATE's answer. */
	if (r->pfrom.kind == HS_POS_TIME && r->res_done)
		r->from = r->loc_lsn[0] ? r->loc_lsn[0] : hs_serve_stream_tail(s);
	if ((r->pfrom.kind != HS_POS_TIME || r->res_done) &&
	    resolve_end(sv, r, &r->pfrom, &r->from))
		return;
	if (r->res_done) {
		hs_t2_resolve_end(sv, r);
		hs_serve_read_end(sv, r, 0); /* calls res_done with r->from */
		return;
	}
	if (r->puntil.kind == HS_POS_NONE) {
		r->until = (r->flags & HS_CREAD_FOLLOW) ? 0 : hs_serve_stream_tail(s);
	} else {
		if (r->puntil.kind == HS_POS_TIME)
			r->until = r->loc_lsn[1] ? r->loc_lsn[1] : hs_serve_stream_tail(s);
		if (resolve_end(sv, r, &r->puntil, &r->until))
			return;
	}
	hs_t2_resolve_end(sv, r);
	/* A read that does not follow never waits: its end is at most the
	 * pinned tail, one past the release point, so neither new records nor
	 * appends in flight hold it up.  Past it, the live epoch's peer streams
	 * would stop at the release point and wait for a RELEASE (the merge
	 * neither done nor blocked): no READ_END ever. */
	if (!(r->flags & HS_CREAD_FOLLOW) && (!r->until || r->until > hs_serve_stream_tail(s)))
		r->until = hs_serve_stream_tail(s);
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

static int read_locate(struct serve *sv, struct cread *r);
static void read_positions(struct serve *sv, struct cread *r);

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
	read_positions(sv, r);
}

/* Resolve r's positions: LOCATE for @time, else at once. */
static void read_positions(struct serve *sv, struct cread *r)
{
	if (r->pfrom.kind == HS_POS_TIME || r->puntil.kind == HS_POS_TIME) {
		if (read_locate(sv, r) < 0)
			hs_serve_read_end(sv, r, -HS_EUNAVAIL);
		return;
	}
	read_resolved(sv, r);
}

void hs_serve_resolve_async(struct serve *sv, struct sstream *s, const struct hs_pos *p,
			    void (*done)(struct serve *sv, void *arg, int status, uint64_t lsn),
			    void *arg)
{
	/* A read with no client that ends where a READ would start: the
	 * same positions code (LOCATE, hs_t2_resolve's waits and `again`),
	 * since t2read.h resolves for a struct cread. */
	struct cread *r = hs_xcalloc(1, sizeof(*r));

	r->sv = sv;
	r->s = s;
	s->refs++;
	r->res_done = done;
	r->res_arg = arg;
	r->pfrom = *p;
	if (r->pfrom.kind == HS_POS_NONE)
		r->pfrom = (struct hs_pos){ .kind = HS_POS_TAIL };
	read_positions(sv, r);
}

/* One LOCATE in flight: which end of which read. */
struct locq {
	struct cread *r;
	int which;                /* 0 from, 1 until */
};

static void on_located(void *arg, int idx, const struct hs_frame *f);

/* @time: ask every UP peer of the log's nodesets for the first LSN whose
 * record is at or after the time (LOCATE, proto.h), for each end that
 * needs it; the answer is the smallest LSN any peer reports (see MERGED
 * PEER READS). */
static int read_locate(struct serve *sv, struct cread *r)
{
	const struct sstream *s = r->s;
	uint8_t ask[MAX_PEERS] = { 0 };
	struct hs_locate m = { 0 };
	int nask = 0;

	for (uint16_t i = 0; i < s->lr.nepochs; i++)
		for (int j = 0; j < s->lr.epochs[i].nn; j++) {
			int k = hs_serve_peer_idx(sv, s->lr.epochs[i].nodes[j]);

			if (k >= 0 && k < MAX_PEERS)
				ask[k] = 1;
		}
	m.log = s->rec.log;
	m.from = hs_serve_stream_head(s);
	m.until = hs_serve_stream_tail(s);
	r->loc_lsn[0] = r->loc_lsn[1] = 0;
	r->loc_ok[0] = r->loc_ok[1] = 0;
	for (int k = 0; k < MAX_PEERS && k < sv->npeers; k++) {
		struct hs_buf *out = ask[k] ? hs_peers_out(sv->peers, k) : NULL;

		if (!out)
			continue;
		nask++;
		for (int i = 0; i < 2; i++) {
			const struct hs_pos *p = i ? &r->puntil : &r->pfrom;
			struct locq *q;
			uint64_t id;

			if (p->kind != HS_POS_TIME)
				continue;
			q = hs_xmalloc(sizeof(*q));
			q->r = r;
			q->which = i;
			m.time_ms = p->time_ms < 0 ? 0 : (uint64_t)p->time_ms;
			id = hs_peers_next_id(sv->peers);
			hs_peers_expect(sv->peers, k, id, on_located, q, 0);
			hs_msg_locate_enc(out, id, &m);
			r->locating++;
		}
	}
	if (!nask)
		return -HS_EUNAVAIL;
	r->state = R_LOCATE;
	return 0;
}

static void on_located(void *arg, int idx, const struct hs_frame *f)
{
	struct locq *q = arg;
	struct cread *r = q->r;
	struct serve *sv = r->sv;
	struct hs_located m;
	int which = q->which;

	free(q);
	r->locating--;
	if (r->state == R_DONE) {
		if (!r->locating)
			free(r);
		return;
	}
	if (f && f->type == HS_MSG_LOCATED && hs_msg_located_dec(f->body, f->body_len, &m) == 0 &&
	    m.status >= 0) {
		r->loc_ok[which]++;
		/* 0: none on that peer. */
		if (m.lsn && (!r->loc_lsn[which] || m.lsn < r->loc_lsn[which]))
			r->loc_lsn[which] = m.lsn;
	}
	if (r->locating)
		return;
	for (int i = 0; i < 2; i++) {
		const struct hs_pos *p = i ? &r->puntil : &r->pfrom;

		if (p->kind == HS_POS_TIME && !r->loc_ok[i]) {
			hs_serve_read_end(sv, r, -HS_EUNAVAIL);
			return;
		}
	}
	/* 0: no record at or after the time: the tail.  A resolve-only
	 * read keeps its start a time: read_resolved looks in Tier2. */
	if (r->pfrom.kind == HS_POS_TIME && !r->res_done) {
		r->from = r->loc_lsn[0] ? r->loc_lsn[0] : hs_serve_stream_tail(r->s);
		/* The peers only know Tier1: look in Tier2 first. */
		hs_t2_time_from(sv, r, r->pfrom.time_ms < 0 ? 0 : (uint64_t)r->pfrom.time_ms);
	}
	r->state = R_WAIT;
	if (r->pfrom.kind == HS_POS_TIME && !r->res_done)
		r->pfrom.kind = HS_POS_LSN, r->pfrom.lsn = r->from;
	/* An @time end stays a time: read_resolved looks in Tier2 first
	 * and takes loc_lsn[1] (Tier1's answer) when it is not there. */
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
	int rc = hs_serve_urec_live(cur, len, &r);

	if (rc < 0)
		return rc;
	if (rc == 0 || r.created_ms != u->rec.created_ms)
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
	int rc = hs_serve_urec_live(cur, len, &r);

	if (rc <= 0)
		return rc ? rc : -HS_ENOENT;
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
