/*
 * seq.c - the sequencer of hs-serve (serve.h): streams, activation, the
 * append path and the follow window.
 *
 * SEQUENCER.  This round every stream has replication 1 on the data peer,
 * the first peer (issue 4 adds R > 1, copysets and recovery).  A stream
 * has in-memory state only while active (struct sstream, in a bounded LRU:
 * idle ones beyond MAX_ACTIVE are dropped).  Activation on first use after
 * start: one register change bumps l/<id>.epoch to e (so a restarted
 * hs-serve gets a new epoch whose LSNs exceed all earlier ones), then SEAL
 * (e - 1) on the data peer, which reports per epoch the highest LSN it
 * holds.  With one peer, STOREs sent in LSN order over one connection and
 * re-sent in order after a reconnect, the records a peer holds for an
 * epoch are a prefix of it, so everything it holds below epoch e is
 * complete: hs-serve releases up to e<<32 (all earlier epochs) at once,
 * which is safe because the seal stops any older sequencer from adding
 * more.  Appends get ESNs 1, 2, ... of epoch e.
 *
 * APPEND PATH.  Each client run is rebuilt as a STORE run with copyset
 * {data peer's node id} and the LNG (hs_run_begin, one memcpy of the
 * records section, timestamps of 0 stamped with the wall clock, hs_run_end)
 * into the turn's STORE frame: ONE STORE per peer per loop turn carries
 * every run of every stream produced in the turn (a new frame only when the
 * peer's frame limit is reached) - or two when the turn has runs of both
 * sync streams and async (or memory) streams: the async ones go in a STORE
 * flagged HS_STORE_NOSYNC, which the peer commits without waiting for an
 * fsync when nothing else in its turn needs one (proto.h).  Per-stream
 * memory is NOSYNC too: only a peer started with --durability memory keeps
 * no WAL.  The client gets APPENDED only after
 * STORED OK; runs are released in LSN order (the stored prefix), in ONE
 * RELEASE per peer per turn.  Unacknowledged STORE frames are kept and sent
 * again, in order, when the link comes back (a restarted peer).
 * Back-pressure: at most STREAM_WINDOW bytes in flight per stream (later
 * appends wait in order), and a client connection with more than
 * CONN_BUDGET bytes of appends in flight is not read until it falls below
 * half of that - so memory is bounded by the number of connections.
 *
 * FOLLOWING FROM MEMORY (DESIGN §11).  While a stream has follow reads
 * (FOLLOW READs and subscription sessions; not redeliveries), it keeps a
 * window of released runs: at STORED OK each run's exact STORE bytes are
 * copied out of the batch frame (one memcpy per run), and at release they
 * join the stream's window in LSN order, so the window always holds every
 * LSN in [win_lo, released] and nothing else.  A run without a copy (its
 * STORE failed, or it was stored before the first follower came) restarts
 * the window after it.  The window is capped at FOLLOW_WIN_STREAM bytes
 * per stream (its newest run always stays) and FOLLOW_WIN_TOTAL over all
 * streams, evicting the oldest release first; it is dropped when the last
 * follower leaves, so unfollowed and idle streams cost nothing.  A follow
 * read whose next LSN is in the window is served from it: at the end of
 * every turn that released runs, each such follower gets one DELIVER
 * (split at FOLLOW_FRAME_TARGET) built straight into its connection's
 * output from the window's bytes (runs sliced at its next LSN and to its
 * credit) - followers hold no copies.  It respects exactly what the peer
 * path does: the client's record and payload-byte credit (one record past
 * a positive byte credit, as a peer sends one run), limit and until, the
 * subscription's max_unacked room (and hs_subwin_delivered() for every
 * run), and the connection's high-water mark; READ_WINDOW, ACK and the
 * writable callback resume it.  Never beyond the released point: the
 * window ends there.  Switches keep the order with no duplicates because
 * the read's next LSN is the only position: a follower whose next LSN is
 * evicted (it was slow, out of credit, or stopped reading), or lands
 * below a restarted window, or that is trimmed, or whose stream is no
 * longer active, starts a peer read stream from its next LSN; a peer-read
 * follower moves to memory (STOP, and the peer's frames still in flight
 * are dropped with the registration) when, after a RECORDS or a GAP
 * (NORECORDS is sent when the peer catches up), its next LSN is in the
 * newer half of the window or past the released point - the half, so that
 * a follower at the window's old edge does not flip on every eviction.
 * Memory is therefore bounded by the window caps, whatever the followers
 * do; a subscriber that stops reading is still dropped by the stuck rule
 * of SUBSCRIPTIONS (read.c).  STATS: follow_mem_delivered (records),
 * follow_mem_frames, follow_mem_switches (peer -> memory),
 * follow_peer_fallbacks (memory -> peer), follow_window_bytes,
 * follow_window_evicted (runs), follow_window_resets; per stream followers
 * and follow_window_bytes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "run.h"
#include "serve.h"

#define MAX_ACTIVE 10000               /* active streams kept when idle */
#define STREAM_WINDOW (32u << 20)      /* append bytes in flight per stream */
#define CONN_BUDGET (32u << 20)        /* append bytes in flight per client */
#define FOLLOW_WIN_STREAM (16u << 20)  /* released run bytes kept per followed stream */
#define FOLLOW_WIN_TOTAL (256u << 20)  /* ... and over all streams */
#define FOLLOW_FRAME_TARGET (1u << 20) /* DELIVER bytes per frame from memory */

/* ---- helpers --------------------------------------------------------------- */

void hs_serve_grow(void **p, size_t *cap, size_t need, size_t elem)
{
	size_t n;

	if (need <= *cap)
		return;
	n = *cap ? *cap * 2 : 16;
	while (n < need)
		n *= 2;
	*p = hs_xrealloc(*p, n * elem);
	*cap = n;
}

static uint32_t name_hash(const char *p, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)p[i]) * 16777619u;
	return h;
}

uint64_t hs_serve_rand64(void)
{
	uint64_t v = 0;

	if (getrandom(&v, sizeof(v), 0) != sizeof(v))
		v = hs_now_us() * 6364136223846793005ull ^ (uint64_t)getpid() << 32;
	return v;
}

int hs_serve_data_peer(struct serve *sv)
{
	return 0;
}

void hs_serve_proto_close(struct cconn *cc, const char *what)
{
	hs_warn("closing connection from %s: %s", hs_conn_peer_name(cc->c), what);
	hs_conn_close(cc->c, -HS_EPROTO);
}

int hs_serve_reg_change(struct serve *sv, const uint8_t *key, size_t klen, hs_reg_fn fn,
			hs_reg_done_fn done, void *arg)
{
	sv->reg_dirty = 1;
	return hs_reg_change(sv->prop, key, klen, fn, done, arg);
}

/* ---- streams: table and LRU ------------------------------------------------ */

struct sstream *hs_serve_stream_find(struct serve *sv, const char *name, size_t n)
{
	struct sstream *s;

	if (!sv->nb)
		return NULL;
	for (s = sv->tab[name_hash(name, n) & (sv->nb - 1)]; s; s = s->hnext)
		if (s->nlen == n && !memcmp(s->name, name, n))
			return s;
	return NULL;
}

static void stream_unhash(struct serve *sv, struct sstream *s)
{
	struct sstream **pp = &sv->tab[name_hash(s->name, s->nlen) & (sv->nb - 1)];

	while (*pp != s)
		pp = &(*pp)->hnext;
	*pp = s->hnext;
	sv->nstreams--;
	TAILQ_REMOVE(&sv->lru, s, lru);
}

static void stream_hash(struct serve *sv, struct sstream *s)
{
	size_t i;

	if (sv->nstreams + 1 > sv->nb) {
		size_t nb = sv->nb ? sv->nb * 2 : 256;
		struct sstream **t = hs_xcalloc(nb, sizeof(*t));

		for (i = 0; i < sv->nb; i++) {
			struct sstream *x, *nx;

			for (x = sv->tab[i]; x; x = nx) {
				size_t j = name_hash(x->name, x->nlen) & (nb - 1);

				nx = x->hnext;
				x->hnext = t[j];
				t[j] = x;
			}
		}
		free(sv->tab);
		sv->tab = t;
		sv->nb = nb;
	}
	i = name_hash(s->name, s->nlen) & (sv->nb - 1);
	s->hnext = sv->tab[i];
	sv->tab[i] = s;
	sv->nstreams++;
	TAILQ_INSERT_HEAD(&sv->lru, s, lru);
}

static int stream_idle(const struct sstream *s)
{
	return !s->refs && TAILQ_EMPTY(&s->wq) && TAILQ_EMPTY(&s->inflight) && !s->rel_dirty &&
	       (s->state == S_ACTIVE || s->state == S_DEAD);
}

static void win_reset(struct serve *sv, struct sstream *s, uint64_t lo);

static void stream_free(struct serve *sv, struct sstream *s)
{
	if (s->mem_dirty) {
		for (size_t i = 0; i < sv->nmem; i++)
			if (sv->memdirty[i] == s)
				sv->memdirty[i] = sv->memdirty[--sv->nmem];
		s->mem_dirty = 0;
	}
	win_reset(sv, s, 0); /* empty: no followers hold it */
	stream_unhash(sv, s);
	free(s->olde);
	free(s);
}

/* Drop idle streams beyond the cap, least recently used first. */
static void streams_trim_cache(struct serve *sv)
{
	struct sstream *s, *prev;

	for (s = TAILQ_LAST(&sv->lru, sstreamq); s && sv->nstreams > MAX_ACTIVE; s = prev) {
		prev = TAILQ_PREV(s, sstreamq, lru);
		if (stream_idle(s))
			stream_free(sv, s);
	}
}

static void stream_touch(struct serve *sv, struct sstream *s)
{
	TAILQ_REMOVE(&sv->lru, s, lru);
	TAILQ_INSERT_HEAD(&sv->lru, s, lru);
}

static void stream_pump(struct serve *sv, struct sstream *s);
static void stream_lookup(struct serve *sv, struct sstream *s);
static void win_check(struct serve *sv, struct sstream *s);
static void win_take(struct serve *sv, struct sstream *s, struct pent *pe);
static struct mrun *mrun_new(struct sstream *s, uint64_t first, uint32_t nrec,
			     const uint8_t *run, size_t len);

/* Fail everything waiting on s with status and forget s (once idle). */
void hs_serve_stream_kill(struct serve *sv, struct sstream *s, int status)
{
	struct wait *w;

	s->state = S_DEAD;
	hs_serve_mem_mark(sv, s); /* its followers go back to the peer */
	while ((w = TAILQ_FIRST(&s->wq))) {
		TAILQ_REMOVE(&s->wq, w, link);
		w->fn(sv, s, w, status);
	}
	/* A dead stream is looked up again by its next user. */
	if (stream_idle(s))
		stream_free(sv, s);
}

/* Queue w on the stream named name; the stream is looked up (and, with
 * create, created with attrs) and activated as needed. */
void hs_serve_stream_wait(struct serve *sv, const char *name, size_t n, int create,
			  const struct hs_stream_attrs *attrs, struct wait *w)
{
	struct sstream *s = hs_serve_stream_find(sv, name, n);

	if (s && s->state == S_DEAD && stream_idle(s)) {
		stream_free(sv, s);
		s = NULL;
	}
	if (!s) {
		s = hs_xcalloc(1, sizeof(*s));
		s->sv = sv;
		memcpy(s->name, name, n);
		s->nlen = (uint8_t)n;
		TAILQ_INIT(&s->wq);
		TAILQ_INIT(&s->inflight);
		TAILQ_INIT(&s->win);
		LIST_INIT(&s->followers);
		stream_hash(sv, s);
		s->state = S_LOOKUP;
		TAILQ_INSERT_TAIL(&s->wq, w, link);
		if (create) {
			s->want_create = 1;
			if (attrs)
				s->cattrs = *attrs;
		}
		stream_lookup(sv, s);
		streams_trim_cache(sv);
		return;
	}
	stream_touch(sv, s);
	if (create && !s->want_create && s->state == S_LOOKUP) {
		/* The lookup in flight may not create it; the waiter will
		 * retry with create if it answers "no such stream". */
		s->want_create = 2;
		if (attrs)
			s->cattrs = *attrs;
	}
	TAILQ_INSERT_TAIL(&s->wq, w, link);
	if (s->state == S_ACTIVE)
		stream_pump(sv, s);
	else if (s->state == S_DEAD)
		stream_lookup(sv, s);
}

/* ---- lookup, create, activation ---------------------------------------- */

struct lookup_ctx {
	struct sstream *s;
	int create;
	uint64_t new_log;
	struct hs_stream_attrs attrs;
};

void hs_serve_srec_from_attrs(struct serve *sv, const struct hs_stream_attrs *a, uint64_t log,
			      struct hs_srec *r)
{
	memset(r, 0, sizeof(*r));
	r->log = log;
	r->replication = a && (a->mask & HS_ATTR_REPLICATION) ? a->replication : sv->replication;
	r->durability = a && (a->mask & HS_ATTR_DURABILITY) ? a->durability : sv->durability;
	r->retention_ms = a && (a->mask & HS_ATTR_RETENTION) ? a->retention_ms : 0;
	r->offload_after_ms = a && (a->mask & HS_ATTR_OFFLOAD) ? a->offload_after_ms : 0;
	r->created_ms = hs_wall_ms();
}

uint64_t hs_serve_new_log_id(void)
{
	uint64_t v;

	do
		v = hs_serve_rand64() & ((1ull << 62) - 1);
	while (!v);
	return v;
}

static int fn_lookup(void *arg, const uint8_t *cur, size_t len, uint64_t version,
		     struct hs_buf *out)
{
	struct lookup_ctx *x = arg;
	struct serve *sv = x->s->sv;
	struct hs_srec r;
	int rc = hs_srec_dec(cur, len, &r);

	if (rc < 0)
		return rc;
	if (rc == 1 && !(r.flags & HS_SREC_DELETED))
		return HS_REG_SAME;
	if (!x->create)
		return -HS_ENOSTREAM;
	hs_serve_srec_from_attrs(sv, &x->attrs, x->new_log, &r);
	hs_srec_enc(&r, out);
	return 0;
}

static void activate(struct serve *sv, struct sstream *s);

static void lookup_done(void *arg, int status, const uint8_t *val, size_t len, uint64_t version)
{
	struct lookup_ctx *x = arg;
	struct sstream *s = x->s;
	struct serve *sv = s->sv;

	free(x);
	s->refs--;
	if (status == -ECANCELED)
		return;
	if (status == 0 && hs_srec_dec(val, len, &s->rec) == 1) {
		activate(sv, s);
		return;
	}
	if (status == -HS_ENOSTREAM && s->want_create == 2) {
		/* A waiter arrived with create after this lookup started. */
		s->want_create = 1;
		stream_lookup(sv, s);
		return;
	}
	if (status == -HS_ETIMEOUT || status == -HS_EUNAVAIL)
		hs_warn("stream '%s': metadata lookup failed: %s", s->name, hs_strerror(status));
	hs_serve_stream_kill(sv, s, status ? status : -HS_EDATA);
}

static void stream_lookup(struct serve *sv, struct sstream *s)
{
	struct lookup_ctx *x = hs_xcalloc(1, sizeof(*x));
	uint8_t key[HS_REG_KEY_MAX + 2];
	size_t klen = hs_meta_skey(key, s->name, s->nlen);

	s->state = S_LOOKUP;
	x->s = s;
	x->create = s->want_create == 1;
	x->attrs = s->cattrs;
	x->new_log = hs_serve_new_log_id();
	s->refs++;
	if (hs_serve_reg_change(sv, key, klen, fn_lookup, lookup_done, x) < 0) {
		free(x);
		s->refs--;
		hs_serve_stream_kill(sv, s, -HS_ENOSTREAM);
	}
}

static int fn_bump_epoch(void *arg, const uint8_t *cur, size_t len, uint64_t version,
			 struct hs_buf *out)
{
	struct hs_lrec r;
	int rc = hs_lrec_dec(cur, len, &r);

	if (rc < 0)
		return rc;
	if (r.epoch == UINT32_MAX)
		return -HS_EINTERNAL;
	r.epoch++;
	hs_lrec_enc(&r, out);
	return 0;
}

static void activate_done(void *arg, int status, const uint8_t *val, size_t len,
			  uint64_t version)
{
	struct sstream *s = arg;
	struct serve *sv = s->sv;
	struct hs_lrec r;

	s->refs--;
	if (status == -ECANCELED)
		return;
	if (status == 0 && hs_lrec_dec(val, len, &r) == 1) {
		s->epoch = r.epoch;
		s->next_esn = 1;
		s->trim = r.trim;
		sv->activations++;
		hs_debug("stream '%s' (log %llu): epoch %u", s->name,
			 (unsigned long long)s->rec.log, s->epoch);
		s->state = S_SEALING;
		hs_serve_seal_send(sv, s);
		return;
	}
	hs_warn("stream '%s': cannot start a new epoch: %s", s->name,
		hs_strerror(status ? status : -HS_EDATA));
	hs_serve_stream_kill(sv, s, status == -HS_ETIMEOUT ? -HS_ETIMEOUT : -HS_EUNAVAIL);
}

static void activate(struct serve *sv, struct sstream *s)
{
	uint8_t key[16];
	size_t klen = hs_meta_lkey(key, s->rec.log);

	s->state = S_ACTIVATING;
	s->refs++;
	if (hs_serve_reg_change(sv, key, klen, fn_bump_epoch, activate_done, s) < 0) {
		s->refs--;
		hs_serve_stream_kill(sv, s, -HS_EINTERNAL);
	}
}

static void release_mark(struct serve *sv, struct sstream *s)
{
	if (s->rel_dirty)
		return;
	s->rel_dirty = 1;
	hs_serve_grow((void **)&sv->reldirty, &sv->caprel, sv->nrel + 1, sizeof(*sv->reldirty));
	sv->reldirty[sv->nrel++] = s;
}

static void on_sealed(void *arg, int idx, const struct hs_frame *f)
{
	struct sstream *s = arg;
	struct serve *sv = s->sv;
	struct hs_sealed m;
	uint32_t e;
	uint64_t lng, max_lsn;

	s->refs--;
	if (!f) {
		/* The link went down: seal again once it is back. */
		s->state = S_SEALING;
		if (s->state == S_SEALING && !sv->stopping)
			hs_serve_seal_send(sv, s);
		return;
	}
	if (f->type != HS_MSG_SEALED || hs_msg_sealed_dec(f->body, f->body_len, &m) < 0 ||
	    m.status < 0) {
		hs_warn("stream '%s': seal failed", s->name);
		hs_serve_stream_kill(sv, s, -HS_EUNAVAIL);
		return;
	}
	if (m.seal >= s->epoch) {
		/* Someone already sealed our epoch: another sequencer won. */
		hs_serve_stream_kill(sv, s, -HS_ESEALED);
		return;
	}
	free(s->olde);
	s->olde = NULL;
	s->nolde = 0;
	if (m.nepochs)
		s->olde = hs_xmalloc(m.nepochs * sizeof(*s->olde));
	while (hs_sealed_next(&m, &e, &lng, &max_lsn) == 1) {
		if (e >= s->epoch)
			continue;
		s->olde[s->nolde].epoch = e;
		s->olde[s->nolde].max_lsn = max_lsn;
		s->nolde++;
	}
	if (m.trim > s->trim)
		s->trim = m.trim;
	/* Everything below our epoch is final (see the design comment). */
	s->released = HS_LSN(s->epoch, 0);
	release_mark(sv, s);
	if (s->nfollow) {
		win_reset(sv, s, s->released + 1);
		win_check(sv, s);
	}
	s->state = S_ACTIVE;
	stream_pump(sv, s);
}

/* SEAL (epoch - 1) on the data peer; with the link down, wait for it. */
void hs_serve_seal_send(struct serve *sv, struct sstream *s)
{
	int dp = hs_serve_data_peer(sv);
	struct hs_buf *out = hs_peers_out(sv->peers, dp);
	struct hs_seal m = { .log = s->rec.log, .epoch = s->epoch - 1, .soft = 0, .lce = 0 };
	uint64_t id;

	if (!out)
		return; /* peer_up() re-sends the seals of S_SEALING streams */
	id = hs_peers_next_id(sv->peers);
	s->refs++;
	hs_peers_expect(sv->peers, dp, id, on_sealed, s, 0);
	hs_msg_seal_enc(out, id, &m);
}

/* ---- append path --------------------------------------------------------- */

static void cc_budget(struct cconn *cc)
{
	if (!cc || hs_conn_closing(cc->c))
		return;
	if (!cc->held && cc->inflight > CONN_BUDGET) {
		cc->held = 1;
		hs_conn_hold_read(cc->c, 1);
	} else if (cc->held && cc->inflight < CONN_BUDGET / 2) {
		cc->held = 0;
		hs_conn_hold_read(cc->c, 0);
	}
}

static void pent_fail(struct serve *sv, struct pent *pe, int status)
{
	hs_serve_creq_settle(sv, pe->rq, pe->idx, status, 0, 0, 0, "");
	free(pe->run);
	free(pe);
}

/* Which of the turn's STOREs carries s's runs: async and memory streams
 * need no fsync before STORED. */
static int stream_kind(const struct sstream *s)
{
	return s->rec.durability == HS_DUR_ASYNC || s->rec.durability == HS_DUR_MEMORY
		       ? SB_NOSYNC
		       : SB_SYNC;
}

/* Close the turn's STORE of kind k (if any) and queue it for sending. */
static void batch_close(struct serve *sv, int k)
{
	if (!sv->cur[k])
		return;
	hs_msg_wr_end(&sv->sw[k]);
	TAILQ_INSERT_TAIL(&sv->unacked, sv->cur[k], link);
	sv->unacked_n++;
	sv->cur[k] = NULL;
}

static struct sbatch *batch_cur(struct serve *sv, int k, size_t need)
{
	int dp = hs_serve_data_peer(sv);
	size_t max = hs_peers_max_frame(sv->peers, dp);

	if (sv->cur[k] && hs_msg_wr_size(&sv->sw[k]) + need > max && sv->cur[k]->n)
		batch_close(sv, k);
	if (!sv->cur[k]) {
		sv->cur[k] = hs_xcalloc(1, sizeof(*sv->cur[k]));
		sv->cur[k]->sv = sv;
		sv->cur[k]->id = hs_peers_next_id(sv->peers);
		hs_msg_store_begin(&sv->sw[k], &sv->cur[k]->frame, sv->cur[k]->id);
		/* The header's flags; hs_msg_wr_end() computes the CRC. */
		if (k == SB_NOSYNC)
			hs_put16(sv->cur[k]->frame.data + sv->sw[k].start + 6, HS_STORE_NOSYNC);
	}
	return sv->cur[k];
}

/* Sequence one append entry of an active stream into the turn's STORE. */
static void append_send(struct serve *sv, struct sstream *s, struct pent *pe)
{
	struct hs_run r;
	struct hs_run_builder rb;
	struct sbatch *b;
	uint32_t node = hs_peers_node_id(sv->peers, hs_serve_data_peer(sv));
	int k = stream_kind(s);
	size_t at;

	if (hs_run_parse_nocrc(pe->run, pe->len, &r) < 0 || (uint64_t)s->next_esn + r.nrecords > UINT32_MAX) {
		/* Parsed on arrival; an epoch full of ESNs needs a new epoch. */
		pent_fail(sv, pe, -HS_EAGAIN);
		return;
	}
	b = batch_cur(sv, k, pe->len + 64);
	pe->s = s;
	pe->first_lsn = HS_LSN(s->epoch, s->next_esn);
	s->next_esn += r.nrecords;
	hs_msg_store_run_open(&sv->sw[k], s->rec.log, pe->first_lsn);
	pe->roff = b->frame.len;
	hs_run_begin(&rb, &b->frame, 0, s->released, 0, &node, 1);
	at = b->frame.len;
	hs_buf_append(&b->frame, r.records, (size_t)(r.end - r.records));
	if (pe->stamp) {
		uint64_t now = hs_wall_ms();
		uint8_t *p = b->frame.data + at, *end = p + (r.end - r.records);

		while (p < end) {
			if (!hs_get64(p))
				hs_put64(p, now);
			p += HS_RUN_REC_HDR + hs_get32(p + 8);
		}
	}
	rb.n = r.nrecords;
	hs_run_end(&rb);
	hs_msg_wr_run_close(&sv->sw[k]);
	pe->rlen = b->frame.len - pe->roff;
	hs_serve_grow((void **)&b->runs, &b->cap, b->n + 1, sizeof(*b->runs));
	b->runs[b->n++] = pe;
	free(pe->run);
	pe->run = NULL;
	TAILQ_INSERT_TAIL(&s->inflight, pe, flink);
	s->inflight_bytes += pe->len;
	s->appends++;
	s->records += r.nrecords;
	s->bytes += pe->len;
	sv->append_records += r.nrecords;
	sv->append_bytes += pe->len;
}

static void stream_pump(struct serve *sv, struct sstream *s)
{
	struct wait *w;

	while (s->state == S_ACTIVE && (w = TAILQ_FIRST(&s->wq))) {
		if (w->append && !TAILQ_EMPTY(&s->inflight) &&
		    s->inflight_bytes + w->bytes > STREAM_WINDOW)
			return; /* window full: STORED reopens it */
		TAILQ_REMOVE(&s->wq, w, link);
		w->fn(sv, s, w, 0);
	}
}

static void pent_ready(struct serve *sv, struct sstream *s, struct wait *w, int status)
{
	struct pent *pe = (struct pent *)w;

	if (status < 0) {
		pent_fail(sv, pe, status);
		return;
	}
	append_send(sv, s, pe);
}

/* Release the stored prefix of s. */
static void stream_advance(struct serve *sv, struct sstream *s)
{
	struct pent *pe;

	while ((pe = TAILQ_FIRST(&s->inflight)) && pe->done) {
		TAILQ_REMOVE(&s->inflight, pe, flink);
		s->inflight_bytes -= pe->len;
		if (pe->first_lsn + pe->nrec - 1 > s->released) {
			if (s->nfollow)
				win_take(sv, s, pe);
			s->released = pe->first_lsn + pe->nrec - 1;
			release_mark(sv, s);
		}
		free(pe->mr);
		free(pe);
	}
	stream_pump(sv, s);
}

static void on_stored(void *arg, int idx, const struct hs_frame *f)
{
	struct sbatch *b = arg;
	struct serve *sv = b->sv;
	struct hs_stored_rd rd;
	int32_t st;
	uint32_t seal;

	if (!f) {
		b->sent = 0; /* peer_up() sends it again */
		return;
	}
	if (f->type != HS_MSG_STORED || hs_msg_stored_dec(f->body, f->body_len, &rd) < 0 ||
	    rd.nruns != b->n) {
		hs_warn("peer %s: bad reply to STORE (%s); reconnecting",
			hs_peers_addr(sv->peers, idx), hs_msg_name(f->type));
		b->sent = 0;
		/* Re-register so the resend after the reconnect matches. */
		return;
	}
	TAILQ_REMOVE(&sv->unacked, b, link);
	sv->unacked_n--;
	for (size_t i = 0; i < b->n; i++) {
		struct pent *pe = b->runs[i];
		struct sstream *s = pe->s;

		hs_stored_next(&rd, &st, &seal);
		pe->done = 1;
		if (st == 0) {
			if (s->nfollow && !pe->mr)
				pe->mr = mrun_new(s, pe->first_lsn, pe->nrec,
						  b->frame.data + pe->roff, pe->rlen);
			hs_serve_creq_settle(sv, pe->rq, pe->idx, 0, pe->first_lsn, pe->nrec, 0,
					     "");
		} else {
			hs_serve_creq_settle(sv, pe->rq, pe->idx, st, 0, 0, 0,
					     st == -HS_ESEALED ? "" : hs_strerror(st));
			if (st == -HS_ESEALED && s->state == S_ACTIVE) {
				hs_warn("stream '%s': epoch %u sealed by another sequencer",
					s->name, s->epoch);
				s->state = S_DEAD;
				hs_serve_mem_mark(sv, s); /* its followers go back to the peer */
			}
		}
	}
	for (size_t i = 0; i < b->n; i++) {
		struct sstream *s = b->runs[i]->s;

		if (s)
			stream_advance(sv, s);
	}
	for (size_t i = 0; i < b->n; i++) {
		struct sstream *s = b->runs[i]->s;

		b->runs[i] = NULL;
		(void)s;
	}
	hs_buf_free(&b->frame);
	free(b->runs);
	free(b);
}

/* End of turn: close the turn's STORE, send every unsent batch in order,
 * and one RELEASE with every stream released this turn. */
void hs_serve_batches_flush(struct serve *sv)
{
	int dp = hs_serve_data_peer(sv);
	struct hs_buf *out;
	struct sbatch *b;

	batch_close(sv, SB_SYNC);
	batch_close(sv, SB_NOSYNC);
	out = hs_peers_out(sv->peers, dp);
	if (out) {
		TAILQ_FOREACH(b, &sv->unacked, link) {
			if (b->sent)
				continue;
			b->sent = 1;
			hs_peers_expect(sv->peers, dp, b->id, on_stored, b, 0);
			hs_buf_append(out, b->frame.data, b->frame.len);
			sv->stores_sent++;
		}
	}
	if (sv->nrel && out) {
		struct hs_msg_wr w;
		size_t n = 0;

		hs_msg_release_begin(&w, out, hs_peers_next_id(sv->peers));
		for (size_t i = 0; i < sv->nrel; i++) {
			struct sstream *s = sv->reldirty[i];

			s->rel_dirty = 0;
			if (s->state != S_ACTIVE && s->state != S_DEAD)
				continue;
			hs_msg_release_add(&w, s->rec.log, s->released);
			n++;
		}
		/* The RESULT reply needs no callback: it lands in ops->frame. */
		hs_msg_wr_end(&w);
		for (size_t i = 0; i < sv->nrel; i++)
			if (stream_idle(sv->reldirty[i]) && sv->reldirty[i]->state == S_DEAD)
				stream_free(sv, sv->reldirty[i]);
		sv->nrel = 0;
		(void)n;
	}
}

/* ---- client requests: settle and reply ---------------------------------- */

static void creq_free(struct creq *rq)
{
	if (rq->cc)
		LIST_REMOVE(rq, link);
	free(rq->res);
	free(rq);
}

void hs_serve_creq_reply(struct serve *sv, struct creq *rq)
{
	struct hs_buf *out;
	struct hs_msg_wr w;

	if (!rq->cc || hs_conn_closing(rq->cc->c)) {
		creq_free(rq);
		return;
	}
	out = hs_conn_out(rq->cc->c);
	if (rq->type == HS_MSG_ACK) {
		/* ACK of a subscription not in memory: RESULT, not STATUSES. */
		hs_msg_result_encf(out, rq->id, rq->res[0].status, "%s",
				   rq->res[0].status ? "no such subscription" : "");
		creq_free(rq);
		return;
	}
	if (rq->type == HS_MSG_APPEND) {
		hs_msg_appended_begin(&w, out, rq->id);
		for (uint32_t i = 0; i < rq->n; i++) {
			struct hs_appended_ent e = {
				.status = rq->res[i].status,
				.first_lsn = rq->res[i].first_lsn,
				.count = rq->res[i].count,
				.detail = rq->res[i].detail,
				.text = rq->res[i].text,
				.text_len = (uint16_t)strlen(rq->res[i].text),
			};
			hs_msg_appended_add(&w, &e);
		}
	} else {
		hs_msg_statuses_begin(&w, out, rq->id);
		for (uint32_t i = 0; i < rq->n; i++)
			hs_msg_statuses_add(&w, rq->res[i].status, rq->res[i].first_lsn);
	}
	hs_msg_wr_end(&w);
	if (rq->type == HS_MSG_APPEND) {
		rq->cc->inflight -= rq->bytes;
		cc_budget(rq->cc);
	}
	creq_free(rq);
}

void hs_serve_creq_settle(struct serve *sv, struct creq *rq, uint32_t idx, int32_t status,
			  uint64_t first, uint32_t count, uint32_t detail, const char *text)
{
	rq->res[idx].status = status;
	rq->res[idx].first_lsn = first;
	rq->res[idx].count = count;
	rq->res[idx].detail = detail;
	rq->res[idx].text = text ? text : "";
	if (--rq->left == 0)
		hs_serve_creq_reply(sv, rq);
}

struct creq *hs_serve_creq_new(struct serve *sv, struct cconn *cc, uint64_t id, uint16_t type,
			       uint32_t n)
{
	struct creq *rq = hs_xcalloc(1, sizeof(*rq));

	rq->sv = sv;
	rq->cc = cc;
	rq->id = id;
	rq->type = type;
	rq->n = rq->left = n;
	rq->res = hs_xcalloc(n ? n : 1, sizeof(*rq->res));
	LIST_INSERT_HEAD(&cc->reqs, rq, link);
	return rq;
}

void hs_serve_on_append(struct serve *sv, struct cconn *cc, const struct hs_frame *f)
{
	struct hs_clist l;
	struct hs_append_ent e;
	struct creq *rq;
	uint32_t i = 0;

	if (hs_msg_clist_dec(HS_MSG_APPEND, f->body, f->body_len, &l) < 0) {
		hs_serve_proto_close(cc, "malformed APPEND body");
		return;
	}
	sv->appends++;
	rq = hs_serve_creq_new(sv, cc, f->id, HS_MSG_APPEND, l.n);
	if (!l.n) {
		hs_serve_creq_reply(sv, rq);
		return;
	}
	/* Settling may complete the request: hold it until every entry ran. */
	rq->left++;
	for (; hs_append_next(&l, &e) == 1; i++) {
		struct hs_run r;
		struct hs_run_iter it;
		const uint8_t *p;
		uint64_t ts;
		uint32_t len, k = 0;
		struct pent *pe;
		int stamp = 0, big = -1;

		if (hs_run_parse(e.run, e.run_len, &r) < 0 || hs_append_run_check(&r) < 0) {
			hs_serve_creq_settle(sv, rq, i, -HS_EPROTO, 0, 0, 0, "malformed run");
			continue;
		}
		if (e.stream_len > HS_META_NAME_MAX) {
			hs_serve_creq_settle(sv, rq, i, -HS_ENOSTREAM, 0, 0, 0,
					     "stream name too long");
			continue;
		}
		hs_run_iter_init(&it, &r);
		while (hs_run_next(&it, &ts, &p, &len)) {
			if (!ts)
				stamp = 1;
			if (len > HS_RECORD_MAX_DEFAULT && big < 0)
				big = (int)k;
			k++;
		}
		if (big >= 0) {
			hs_serve_creq_settle(sv, rq, i, -HS_ETOOBIG, 0, 0, (uint32_t)big,
					     "record over the 1 MiB limit");
			continue;
		}
		if (sv->stopping) {
			hs_serve_creq_settle(sv, rq, i, -HS_EUNAVAIL, 0, 0, 0,
					     "server shutting down");
			continue;
		}
		pe = hs_xcalloc(1, sizeof(*pe));
		pe->w.append = 1;
		pe->w.bytes = e.run_len;
		pe->w.fn = pent_ready;
		pe->rq = rq;
		pe->idx = i;
		pe->create = !!(e.flags & HS_APPEND_CREATE);
		pe->run = hs_xmalloc(e.run_len);
		memcpy(pe->run, e.run, e.run_len);
		pe->len = e.run_len;
		pe->nrec = r.nrecords;
		pe->stamp = stamp;
		rq->bytes += e.run_len;
		hs_serve_stream_wait(sv, e.stream, e.stream_len, pe->create, NULL, &pe->w);
	}
	cc->inflight += rq->bytes;
	cc_budget(cc);
	if (--rq->left == 0)
		hs_serve_creq_reply(sv, rq);
}

/* ---- following from memory (design comment: FOLLOWING FROM MEMORY) ------- */

static struct mrun *mrun_new(struct sstream *s, uint64_t first, uint32_t nrec,
			     const uint8_t *run, size_t len)
{
	struct mrun *m = hs_xmalloc(sizeof(*m) + len);

	m->s = s;
	m->first = first;
	m->nrec = nrec;
	m->len = len;
	memcpy(m->bytes, run, len);
	return m;
}

static size_t mrun_cost(const struct mrun *m)
{
	return sizeof(*m) + m->len;
}

/* Push to s's memory followers at the end of the turn (hs_serve_mem_flush). */
void hs_serve_mem_mark(struct serve *sv, struct sstream *s)
{
	if (s->mem_dirty || !s->nfollow)
		return;
	s->mem_dirty = 1;
	hs_serve_grow((void **)&sv->memdirty, &sv->capmem, sv->nmem + 1, sizeof(*sv->memdirty));
	sv->memdirty[sv->nmem++] = s;
}

/* r leaves memory: a peer read stream from r->next takes over. */
static void mem_to_peer(struct serve *sv, struct cread *r)
{
	r->mem = 0;
	r->mcur = NULL;
	r->from = r->next;
	sv->follow_peer_fallbacks++;
	hs_serve_read_start_peer(sv, r);
}

/* Memory followers of s whose next LSN fell below the window (evicted,
 * or a hole reset it) go back to the peer. */
static void win_check(struct serve *sv, struct sstream *s)
{
	struct cread *r, *nx;

	for (r = LIST_FIRST(&s->followers); r; r = nx) {
		nx = LIST_NEXT(r, flink);
		if (r->mem && r->next < s->win_lo)
			mem_to_peer(sv, r);
	}
}

static void win_drop_head(struct serve *sv, struct sstream *s)
{
	struct mrun *m = TAILQ_FIRST(&s->win);

	TAILQ_REMOVE(&s->win, m, slink);
	TAILQ_REMOVE(&sv->win, m, glink);
	s->win_bytes -= mrun_cost(m);
	sv->win_bytes -= mrun_cost(m);
	s->win_lo = m->first + m->nrec;
	free(m);
}

/* Empty s's window; it holds LSNs from lo on.  The caller runs
 * win_check() when s may have memory followers. */
static void win_reset(struct serve *sv, struct sstream *s, uint64_t lo)
{
	while (!TAILQ_EMPTY(&s->win))
		win_drop_head(sv, s);
	s->win_lo = lo;
}

/* Keep s's window within FOLLOW_WIN_STREAM (but always its newest run)
 * and all windows within FOLLOW_WIN_TOTAL, oldest release first. */
static void win_evict(struct serve *sv, struct sstream *s)
{
	uint64_t n = 0;

	while (s->win_bytes > FOLLOW_WIN_STREAM &&
	       TAILQ_FIRST(&s->win) != TAILQ_LAST(&s->win, mrunq)) {
		win_drop_head(sv, s);
		n++;
	}
	if (n) {
		sv->follow_win_evicted += n;
		win_check(sv, s);
	}
	while (sv->win_bytes > FOLLOW_WIN_TOTAL) {
		/* The globally oldest run is the oldest of its stream. */
		struct sstream *x = TAILQ_FIRST(&sv->win)->s;

		while (sv->win_bytes > FOLLOW_WIN_TOTAL && !TAILQ_EMPTY(&x->win) &&
		       TAILQ_FIRST(&sv->win) == TAILQ_FIRST(&x->win)) {
			win_drop_head(sv, x);
			sv->follow_win_evicted++;
		}
		win_check(sv, x);
	}
}

/* pe is being released (s->released is still the LSN before it): its run
 * joins the window, or - without a copy (its STORE failed, or it was
 * stored before the first follower came) - the window restarts after it. */
static void win_take(struct serve *sv, struct sstream *s, struct pent *pe)
{
	struct mrun *m = pe->mr;

	pe->mr = NULL;
	if (!m || pe->first_lsn != s->released + 1 || s->win_lo > pe->first_lsn) {
		free(m);
		sv->follow_win_resets++;
		win_reset(sv, s, pe->first_lsn + pe->nrec);
		win_check(sv, s);
		return;
	}
	TAILQ_INSERT_TAIL(&s->win, m, slink);
	TAILQ_INSERT_TAIL(&sv->win, m, glink);
	s->win_bytes += mrun_cost(m);
	sv->win_bytes += mrun_cost(m);
	hs_serve_mem_mark(sv, s);
	win_evict(sv, s);
}

/* A follow read of s starts: s keeps a window from now on. */
void hs_serve_win_attach(struct serve *sv, struct cread *r)
{
	struct sstream *s = r->s;

	if (!s->nfollow++)
		win_reset(sv, s, s->released + 1);
	LIST_INSERT_HEAD(&s->followers, r, flink);
	r->following = 1;
}

void hs_serve_win_detach(struct serve *sv, struct cread *r)
{
	struct sstream *s = r->s;

	if (!r->following)
		return;
	r->following = 0;
	r->mem = 0;
	r->mcur = NULL;
	LIST_REMOVE(r, flink);
	if (!--s->nfollow)
		win_reset(sv, s, 0);
}

/* The run of s's window holding r->next, or NULL (not released yet). */
static struct mrun *mem_find(struct sstream *s, struct cread *r)
{
	struct mrun *m = r->mcur;

	if (m && r->next >= m->first && r->next - m->first < m->nrec)
		return m;
	/* Walk from the nearer end: a caught-up follower finds it at once. */
	if (r->next - s->win_lo < s->released - r->next) {
		TAILQ_FOREACH(m, &s->win, slink)
			if (r->next - m->first < m->nrec || r->next < m->first)
				break;
	} else {
		TAILQ_FOREACH_REVERSE(m, &s->win, mrunq, slink)
			if (m->first <= r->next)
				break;
	}
	if (m && (r->next < m->first || r->next - m->first >= m->nrec))
		m = NULL;
	r->mcur = m;
	return m;
}

/* How many of the n records of rr from index idx fit in credit payload
 * bytes - at least one, as the peer sends one run past a positive credit. */
static uint64_t fit_bytes(const struct hs_run *rr, uint32_t idx, uint64_t n, int64_t credit)
{
	const uint8_t *p = rr->records;
	int64_t pay = 0;
	uint64_t k = 0;

	if (!idx && n == rr->nrecords &&
	    (int64_t)((size_t)(rr->end - rr->records) - HS_RUN_REC_HDR * (size_t)n) <= credit)
		return n;
	for (uint32_t i = 0; i < idx; i++)
		p += HS_RUN_REC_HDR + hs_get32(p + 8);
	while (k < n) {
		pay += hs_get32(p + 8);
		if (k && pay > credit)
			break;
		k++;
		p += HS_RUN_REC_HDR + hs_get32(p + 8);
	}
	return k;
}

/*
 * Send r what s's window holds from r->next on, as far as its credit
 * (records, payload bytes, the subscription's max_unacked), its limit and
 * until, and its connection's high-water mark allow: one DELIVER (split at
 * FOLLOW_FRAME_TARGET) built straight into the connection's output.  A
 * follower that cannot be served from memory goes back to the peer.
 */
void hs_serve_mem_push(struct serve *sv, struct cread *r)
{
	struct sstream *s = r->s;
	struct hs_conn *c;
	struct hs_buf *out = NULL;
	struct hs_msg_wr w;
	int open = 0;

	if (!r->mem || r->state != R_RUN || !r->cc || hs_conn_closing(r->cc->c))
		return;
	c = r->cc->c;
	if (s->state != S_ACTIVE || r->next <= s->trim || r->next < s->win_lo) {
		mem_to_peer(sv, r);
		return;
	}
	while (r->next <= s->released) {
		struct hs_run rr;
		struct mrun *m;
		uint64_t n, room, pay;
		uint32_t idx;
		size_t before;

		if ((r->until && r->next >= r->until) || (r->limit && r->sent >= r->limit) ||
		    hs_conn_out_pending(c) >= HS_CONN_HIGH_WATER)
			break;
		room = r->unl_rec ? UINT64_MAX : r->cl_rec > 0 ? (uint64_t)r->cl_rec : 0;
		if (r->sub && (uint64_t)hs_serve_sub_room(r) < room)
			room = (uint64_t)hs_serve_sub_room(r);
		if (!room || (!r->unl_bytes && r->cl_bytes <= 0))
			break;
		m = mem_find(s, r);
		if (!m || hs_run_parse_nocrc(m->bytes, m->len, &rr) < 0) {
			/* Cannot happen while the window invariant holds. */
			hs_warn("read of '%s': LSN %llu missing from the follow window", s->name,
				(unsigned long long)r->next);
			if (open)
				hs_msg_wr_end(&w);
			mem_to_peer(sv, r);
			return;
		}
		idx = (uint32_t)(r->next - m->first);
		n = m->nrec - idx;
		if (n > room)
			n = room;
		if (r->limit && n > r->limit - r->sent)
			n = r->limit - r->sent;
		if (r->until && n > r->until - r->next)
			n = r->until - r->next;
		if (!r->unl_bytes)
			n = fit_bytes(&rr, idx, n, r->cl_bytes);
		if (open && hs_msg_wr_size(&w) + m->len + 12 > FOLLOW_FRAME_TARGET) {
			hs_msg_wr_end(&w);
			open = 0;
		}
		if (!open) {
			out = hs_conn_out(c);
			hs_msg_deliver_begin(&w, out, r->req, r->read_id);
			open = 1;
			sv->follow_mem_frames++;
		}
		before = out->len;
		if (!idx && n == m->nrec) {
			hs_msg_deliver_run(&w, m->first, m->bytes, m->len);
		} else {
			hs_msg_deliver_run_open(&w, r->next);
			hs_run_slice(&rr, idx, (uint32_t)n, out);
			hs_msg_wr_run_close(&w);
		}
		/* The client's byte credit counts payload bytes only. */
		pay = out->len - before - 12 - HS_RUN_HDR - 4 - 4 * (size_t)rr.ncopyset -
		      HS_RUN_REC_HDR * n;
		r->sent += n;
		r->cl_rec -= (int64_t)n;
		r->cl_bytes -= (int64_t)pay;
		sv->records_delivered += n;
		sv->follow_mem_delivered += n;
		if (r->sub)
			hs_serve_sub_delivered(sv, r, r->next, n, pay);
		r->next += n;
		r->mcur = r->next - m->first < m->nrec ? m : TAILQ_NEXT(m, slink);
	}
	if (open)
		hs_msg_wr_end(&w);
	if ((r->until && r->next >= r->until) || (r->limit && r->sent >= r->limit))
		hs_serve_read_end(sv, r, 0);
}

/* Should the peer-read follower r move to memory?  When the window holds
 * its next LSN and it is caught up or in the newer half of the window, so
 * that a follower at the window's old edge does not flip between memory
 * and peer on every eviction. */
int hs_serve_mem_can_take(const struct cread *r)
{
	const struct sstream *s = r->s;

	if (!r->following || r->mem || r->state != R_RUN || s->state != S_ACTIVE ||
	    r->next < s->win_lo || r->next <= s->trim)
		return 0;
	return r->next > s->released || r->next - s->win_lo >= (s->released + 1 - s->win_lo) / 2;
}

/* Stop r's peer stream (its frames still in flight are dropped with the
 * registration) and serve it from memory. */
void hs_serve_mem_take(struct serve *sv, struct cread *r)
{
	struct hs_buf *out = hs_peers_out(sv->peers, hs_serve_data_peer(sv));

	hs_peers_forget(sv->peers, hs_serve_data_peer(sv), r->peer_req);
	if (out) {
		struct hs_stop st = { .stream = r->sid };

		hs_msg_stop_enc(out, hs_peers_next_id(sv->peers), &st);
	}
	r->mem = 1;
	r->mcur = NULL;
	r->out_rec = r->out_bytes = 0;
	sv->follow_mem_switches++;
	hs_serve_mem_push(sv, r);
}

/* End of turn: every memory follower of a stream released this turn gets
 * its new records (one DELIVER each). */
void hs_serve_mem_flush(struct serve *sv)
{
	for (size_t i = 0; i < sv->nmem; i++) {
		struct sstream *s = sv->memdirty[i];
		struct cread *r, *nx;

		s->mem_dirty = 0;
		for (r = LIST_FIRST(&s->followers); r; r = nx) {
			nx = LIST_NEXT(r, flink);
			if (r->mem)
				hs_serve_mem_push(sv, r);
		}
	}
	sv->nmem = 0;
}

