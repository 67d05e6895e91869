/*
 * seq.c - the sequencer of hs-serve (serve.h): streams, activation, the
 * append path and the follow window.
 *
 * SEQUENCER (docs/replication.md §3, §4).  A stream has in-memory state
 * only while active (struct sstream, in a bounded LRU: idle ones beyond
 * MAX_ACTIVE are dropped).  Activation on first use after start: with at
 * least R peers UP (else it waits up to PEER_WAIT_MS, then fails the
 * waiters with -HS_EAGAIN: back-pressure, the client retries), one register
 * change on l/<id> bumps the epoch to E and appends E's entry: R (the
 * stream record's replication) and the nodeset, the node ids of every peer
 * this hs-serve has seen (nonzero and unique).  So a restarted hs-serve
 * gets a new epoch whose LSNs exceed all earlier ones.  s->lr keeps the
 * record as written.  Then recovery (recovery.h) seals and finishes every
 * unclean earlier epoch; when it reports success everything below E<<32 is
 * final: the release point starts there and appends get ESNs 1, 2, ... of
 * E.  A recovery or STORE that finds a newer seal (-HS_ESEALED) fences the
 * stream: its unacknowledged appends fail with -HS_ESEALED, it stops
 * sequencing, and its next user activates it again with a new epoch.
 *
 * OWNERSHIP (docs/replication.md §7).  The activation's register change
 * also writes us as the owner of the new epoch (serve id and advertised
 * address).  When it finds the live epoch owned by another hs-serve with
 * an address, it changes nothing and fails with -HS_EREDIRECT; we then
 * probe that owner on the loop, never blocking it: a nonblocking connect,
 * a client HELLO and a CLUSTER_STATUS, answered within PROBE_MS (a timer;
 * the owner counts as alive only if it says it is healthy: a register
 * quorum and the default replication's peers up), one probe in
 * flight per owner address however many streams wait for it (they queue
 * on its sv->owners entry and all go on when it ends); the answer is
 * cached PROBE_TTL_MS.  sv->owners has OWNERS_MAX entries (reused stalest
 * first, never while probing); with all of them probing other addresses
 * the activation fails with -HS_EAGAIN (back-pressure).  Alive, the
 * stream's waiters fail with -HS_EREDIRECT and the owner's address
 * (clients retry there); dead, paused, unreachable or unhealthy, the change runs
 * again allowed to replace exactly that owner at exactly that epoch (a
 * takeover: seal and recover as always).  A record we own, or one without
 * an owner address, costs no probe.
 *
 * APPEND PATH.  Each client run is rebuilt once as a STORE run (header
 * with room for R node ids, one memcpy of the records section, timestamps
 * of 0 stamped with the wall clock) owned by its pent.  A wave (1 for the
 * first) picks a copyset of R distinct UP peers of the nodeset - the
 * stream's sticky one while it is healthy and has carried less than
 * COPYSET_STICKY bytes (reads stay sequential), else a draw weighted by
 * how little is queued to each peer, avoiding peers that failed in the
 * last FAIL_AVOID_MS when others suffice, and never taking a full peer
 * (below) - patches copyset, wave and the current LNG into the header,
 * computes the CRC, and appends the run to the turn's STORE of each
 * member: ONE STORE per peer per loop turn carries every run of every
 * stream for that peer (a new frame only at
 * the peer's frame limit) - or two when the turn has runs of both sync
 * streams and async (or memory) streams: the async ones go in a STORE
 * flagged HS_STORE_NOSYNC, which the peer commits without waiting for an
 * fsync when nothing else in its turn needs one (proto.h).  The client
 * gets APPENDED only when all R members answered STORED OK; an APPENDED
 * that settles the connection's last request in flight is sent at once,
 * ahead of the turn's RELEASEs (one-in-flight latency), the others with
 * the connection's one flush at the end of the turn.  A STORED
 * error other than -HS_ESEALED, a lost link, or no STORED within
 * STORE_TIMEOUT_MS (extended up to STORE_TIMEOUT_REARMS times while bytes
 * are still queued to that peer: our backlog) starts a new wave of the run on a new copyset (the
 * failed peer is avoided), sent to all R members again; replies of older
 * waves are ignored.  With fewer than R peers up a run waits on
 * sv->stalled (nothing is acknowledged) and goes out when a peer comes
 * up.
 *
 * FULL PEERS.  A peer low on disk space (hs-peer --min-free) answers an
 * ordinary run with STORED -HS_ENOSPC, writing nothing (it still takes
 * recovery runs, seals, trims, register writes and reads).  That marks it
 * full for FULL_AVOID_MS: it is in no new copyset, in either pass of the
 * draw (unlike a merely failed peer, taken when there are not enough
 * others), and a sticky copyset holding it is dropped; its last error
 * (hs-admin cluster status) becomes "no space left on device", and one
 * warning is logged per full period.  The refused run gets a new wave on
 * other peers.  With fewer than R UP peers that are not full, runs stall
 * on sv->stalled exactly as with fewer than R peers up: nothing is
 * acknowledged - and no append is ever answered with an error because of
 * a full disk (a copy may already be stored elsewhere; the client's
 * timeout reports an unknown outcome instead).  When the period ends (a
 * timer) or the peer reconnects, the stalled runs are dispatched again
 * and the peer may be drawn: a real wave tests it, and if it still
 * refuses, it is out for another FULL_AVOID_MS - so a full peer costs one
 * refused STORE per period, never a loop of immediate re-sends.
 *
 * The LNG is the fully stored prefix of the epoch; it is the release
 * point, sent in ONE RELEASE per peer per turn to every UP peer of the
 * nodeset (and all of them again to a peer that comes back).  STORE
 * frames are not kept once sent: a wave rebuilds what a lost one carried.
 * Back-pressure: at most STREAM_WINDOW bytes in flight per stream (later
 * appends wait in order), and a client connection with more than
 * CONN_BUDGET bytes of appends in flight is not read until it falls below
 * half of that - so memory is bounded by the number of connections.
 *
 * FOLLOWING FROM MEMORY (DESIGN §11).  While a stream has follow reads
 * (FOLLOW READs and subscription sessions; not redeliveries), it keeps a
 * window of released runs: when all R copies are STORED, each run's exact
 * STORE bytes are copied (one memcpy per run), and at release they
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "crc32c.h"
#include "err.h"
#include "log.h"
#include "recovery.h"
#include "run.h"
#include "serve.h"
#include "wire.h"

#define MAX_ACTIVE 10000               /* active streams kept when idle */
#define STREAM_WINDOW (32u << 20)      /* append bytes in flight per stream */
#define CONN_BUDGET (32u << 20)        /* append bytes in flight per client */
#define FOLLOW_WIN_STREAM (16u << 20)  /* released run bytes kept per followed stream */
#define FOLLOW_WIN_TOTAL (256u << 20)  /* ... and over all streams */
#define FOLLOW_FRAME_TARGET (1u << 20) /* DELIVER bytes per frame from memory */
#define STORE_TIMEOUT_MS 2000          /* no STORED by then: a new wave */
#define STORE_TIMEOUT_REARMS 4         /* ... later while still queued to the peer */
#define FAIL_AVOID_MS 5000             /* a failed peer stays out of new copysets */
/* A peer that refused a run for want of disk space (STORED -HS_ENOSPC) is
 * in no copyset for so long; then a real wave tries it again.  Longer than
 * FAIL_AVOID_MS: space comes back by trims and partition drops, slowly. */
#define FULL_AVOID_MS 10000
#define COPYSET_STICKY (1u << 20)      /* run bytes a stream sends on one copyset */
#define PEER_WAIT_MS 3000              /* activation waits so long for R peers */
#define PROBE_MS 500                   /* an owner must connect and answer HELLO in time */
#define PROBE_TTL_MS 1000              /* a probe's answer is reused so long */
#define PROBE_FRAME_MAX (4u << 20)     /* room for a CLUSTER_STATUSREPLY */

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

int hs_serve_peer_idx(struct serve *sv, uint32_t node)
{
	if (!node)
		return -1;
	for (int i = 0; i < sv->npeers; i++)
		if (sv->sp[i].node == node)
			return i;
	return -1;
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
	hs_lrec_free(&s->lr);
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
static void stream_drop_inflight(struct serve *sv, struct sstream *s, int status);
static void stream_lookup(struct serve *sv, struct sstream *s);
static void win_check(struct serve *sv, struct sstream *s);
static void win_take(struct serve *sv, struct sstream *s, struct pent *pe);
static struct mrun *mrun_new(struct sstream *s, uint64_t first, uint32_t nrec,
			     const uint8_t *run, size_t len);

/* Fail everything waiting on s with status and forget s (once idle). */
void hs_serve_stream_kill(struct serve *sv, struct sstream *s, int status)
{
	struct wait *w;

	if (s->state == S_RECOVERING) {
		hs_recovery_cancel(sv, s);
		s->refs--;
	}
	if (s->wait_timer) {
		hs_loop_timer_cancel(sv->loop, s->wait_timer);
		s->wait_timer = 0;
	}
	s->state = S_DEAD;
	hs_serve_mem_mark(sv, s); /* its followers go back to the peer */
	stream_drop_inflight(sv, s, status);
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
	r->offload_size = a && (a->mask & HS_ATTR_OFFLOAD_SIZE) ? a->offload_size : 0;
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
	int rc = hs_serve_srec_live(cur, len, &r);

	if (rc < 0)
		return rc;
	if (rc == 1)
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

/* Links UP with a usable node id. */
static int peers_up(const struct serve *sv)
{
	int n = 0;

	for (int i = 0; i < sv->npeers; i++)
		n += sv->sp[i].node && hs_peers_is_up(sv->peers, i);
	return n;
}

/* What an activation that cannot get R peers (or a register quorum)
 * answers: back-pressure while enough peers exist to come back. */
static int busy_status(const struct serve *sv, const struct sstream *s)
{
	int up = 0;

	for (int i = 0; i < sv->npeers; i++)
		up += hs_peers_is_up(sv->peers, i);
	return up >= sv->npeers / 2 + 1 ? -HS_EAGAIN : -HS_EUNAVAIL;
}

struct act_ctx {
	struct sstream *s;
	struct hs_lepoch e;
	/* -HS_EREDIRECT: the owner found, and the epoch it owns */
	uint64_t owner;
	uint32_t owner_epoch;
	char owner_addr[HS_LREC_ADDR_MAX + 1];
	/* a takeover: the owner we may replace, at that epoch only */
	uint64_t over;
	uint32_t over_epoch;
	TAILQ_ENTRY(act_ctx) plink; /* on a sowner's waiting queue */
};

const char *hs_serve_redirect_addr(const struct sstream *s)
{
	return s->redirect ? s->redirect : "";
}

/* Is the owner of r's live epoch this hs-serve (this or an earlier run of
 * it: same serve id, or the address we advertise now)? */
static int owner_is_us(const struct serve *sv, const struct hs_lrec *r)
{
	return r->owner == sv->serve_id ||
	       (sv->advertise[0] && !strcmp(r->owner_addr, sv->advertise));
}

/* ---- owner probes ----------------------------------------------------------- */

static void owner_decide(struct serve *sv, struct act_ctx *x, struct sowner *o);
static void activate_done(void *arg, int status, const uint8_t *val, size_t len,
			  uint64_t version);

/* The entry of sv->owners for addr: its own, else a free one or the
 * stalest without a probe in flight (its answer forgotten).  NULL when all
 * OWNERS_MAX are probing other addresses. */
static struct sowner *owner_slot(struct serve *sv, const char *addr)
{
	struct sowner *old = NULL;

	for (int i = 0; i < OWNERS_MAX; i++) {
		struct sowner *q = &sv->owners[i];

		if (!q->sv) { /* sv is zeroed memory */
			q->sv = sv;
			TAILQ_INIT(&q->waiting);
		}
		if (q->addr[0] && !strcmp(q->addr, addr))
			return q;
		if (!q->c && (!old || q->probed_ms < old->probed_ms))
			old = q;
	}
	if (old) {
		snprintf(old->addr, sizeof(old->addr), "%s", addr);
		old->probed_ms = 0;
		old->alive = 0;
	}
	return old;
}

/* o's probe is over (alive: it answered HELLO): cache the answer and let
 * every activation waiting for it go on. */
static void probe_done(struct serve *sv, struct sowner *o, int alive)
{
	struct actq q = TAILQ_HEAD_INITIALIZER(q);
	struct act_ctx *x;

	if (o->timer) {
		hs_loop_timer_cancel(sv->loop, o->timer);
		o->timer = 0;
	}
	if (o->c) {
		hs_conn_set_arg(o->c, NULL); /* its closed callback is a no-op */
		hs_conn_close(o->c, 0);
		o->c = NULL;
	}
	o->alive = alive;
	o->probed_ms = hs_now_ms();
	if (!o->probed_ms)
		o->probed_ms = 1;
	hs_debug("owner %s: %s", o->addr, alive ? "answers" : "does not answer");
	/* Detach the queue first: a waiter going on may queue on o again. */
	TAILQ_CONCAT(&q, &o->waiting, plink);
	while ((x = TAILQ_FIRST(&q))) {
		struct sstream *s = x->s;

		TAILQ_REMOVE(&q, x, plink);
		s->refs--;
		if (s->state != S_ACTIVATING) {
			/* Killed while waiting (deleted): nothing to go on with. */
			free(x);
			if (s->state == S_DEAD && stream_idle(s))
				stream_free(sv, s);
			continue;
		}
		owner_decide(sv, x, o);
	}
}

static void probe_frame(struct hs_conn *c, const struct hs_frame *f, void *arg)
{
	struct sowner *o = arg;
	struct hs_hello h;
	struct hs_clist l;

	if (!o)
		return;
	if (f->type == HS_MSG_HELLO) {
		/* Of our version: wait for the CLUSTER_STATUSREPLY behind it. */
		if (hs_msg_hello_dec(f->body, f->body_len, &h) < 0 || h.version != HS_PROTO_VERSION)
			probe_done(o->sv, o, 0);
		return;
	}
	/* An owner that answers but cannot sequence (cut off from its
	 * peers or its register quorum) says so: it is taken over too.  A
	 * RESULT (refused) counts as not answering. */
	probe_done(o->sv, o,
		   f->type == HS_MSG_CLUSTER_STATUSREPLY &&
			   hs_msg_clist_dec(f->type, f->body, f->body_len, &l) == 0 && l.healthy);
}

static void probe_closed(struct hs_conn *c, int err, void *arg)
{
	struct sowner *o = arg;

	if (!o)
		return;
	o->c = NULL; /* freed when we return */
	probe_done(o->sv, o, 0);
}

static const struct hs_conn_ops probe_ops = {
	.frame = probe_frame,
	.closed = probe_closed,
};

static void probe_timeout(struct hs_loop *l, void *arg)
{
	struct sowner *o = arg;

	o->timer = 0;
	probe_done(o->sv, o, 0);
}

/* Start o's probe: a nonblocking connect and our HELLO as a client, the
 * answer within PROBE_MS (a paused owner's kernel still accepts the
 * connection: only its HELLO tells it is alive).  A connect that fails at
 * once ends the probe now. */
static void probe_start(struct serve *sv, struct sowner *o)
{
	struct hs_hello h = { .version = HS_PROTO_VERSION, .role = HS_ROLE_CLIENT,
			      .max_frame = PROBE_FRAME_MAX };
	int fd;

	sv->owner_probes++;
	fd = hs_net_connect(o->addr, 1);
	if (fd < 0) {
		hs_debug("owner %s: cannot connect: %s", o->addr, hs_strerror(fd));
		probe_done(sv, o, 0);
		return;
	}
	o->c = hs_conn_new(sv->loop, fd, &probe_ops, o);
	if (!o->c) {
		probe_done(sv, o, 0);
		return;
	}
	hs_conn_set_max_frame(o->c, PROBE_FRAME_MAX);
	hs_msg_hello_enc(hs_conn_out(o->c), 1, &h);
	hs_msg_cluster_status_enc(hs_conn_out(o->c), 2);
	o->timer = hs_loop_timer(sv->loop, PROBE_MS, probe_timeout, o);
}

/* The activation x found the live epoch owned by another hs-serve
 * (x->owner at x->owner_addr): decide on the cached answer about it if it
 * is fresh, else wait for a probe (joining the one in flight).  x and
 * its stream's hold are passed on. */
static void owner_check(struct serve *sv, struct act_ctx *x)
{
	struct sowner *o = owner_slot(sv, x->owner_addr);
	struct sstream *s = x->s;

	if (!o) {
		/* OWNERS_MAX probes of other addresses in flight: back-pressure
		 * (the client retries) keeps the cache bounded. */
		hs_warn("stream '%s': too many owner probes in flight", s->name);
		free(x);
		hs_serve_stream_kill(sv, s, -HS_EAGAIN);
		return;
	}
	if (!o->c && o->probed_ms && hs_now_ms() - o->probed_ms < PROBE_TTL_MS &&
	    o->id == x->owner) {
		owner_decide(sv, x, o);
		return;
	}
	o->id = x->owner;
	s->refs++; /* held while waiting */
	TAILQ_INSERT_TAIL(&o->waiting, x, plink);
	if (!o->c && !o->timer)
		probe_start(sv, o);
}

/* The activation's register change: epoch + 1 and its entry (R, nodeset,
 * not clean) owned by us; entries that cannot matter any more are
 * compacted away.  A live epoch of another owner with an address (except
 * the one being taken over) fails with -HS_EREDIRECT, changing nothing. */
static int fn_activate(void *arg, const uint8_t *cur, size_t len, uint64_t version,
		       struct hs_buf *out)
{
	struct act_ctx *x = arg;
	struct serve *sv = x->s->sv;
	struct hs_lrec r;
	int rc = hs_lrec_dec(cur, len, &r);

	if (rc < 0)
		goto out;
	if (r.owner && r.owner_addr[0] && !owner_is_us(sv, &r) &&
	    !(r.owner == x->over && r.epoch == x->over_epoch)) {
		x->owner = r.owner;
		x->owner_epoch = r.epoch;
		memcpy(x->owner_addr, r.owner_addr, sizeof(x->owner_addr));
		rc = -HS_EREDIRECT;
		goto out;
	}
	rc = -HS_EINTERNAL;
	if (r.epoch == UINT32_MAX)
		goto out;
	r.owner = sv->serve_id;
	memcpy(r.owner_addr, sv->advertise, sizeof(r.owner_addr));
	/* Compact before the new epoch exists: an epoch without an entry
	 * counts as empty, so lce must not reach the new one. */
	hs_lrec_compact(&r);
	r.epoch++;
	x->e.epoch = r.epoch;
	rc = hs_lrec_put_epoch(&r, &x->e);
	if (rc < 0)
		goto out;
	hs_lrec_enc(&r, out);
	rc = 0;
out:
	hs_lrec_free(&r);
	return rc;
}

static void recovery_done(struct serve *sv, struct sstream *s, int status)
{
	s->refs--;
	if (status == 0) {
		/* Every earlier epoch is clean: final up to our epoch's start. */
		s->released = HS_LSN(s->epoch, 0);
		hs_serve_release_mark(sv, s);
		if (s->nfollow) {
			win_reset(sv, s, s->released + 1);
			win_check(sv, s);
		}
		s->state = S_ACTIVE;
		stream_pump(sv, s);
		return;
	}
	hs_warn("stream '%s' (log %llu): recovery for epoch %u failed: %s", s->name,
		(unsigned long long)s->rec.log, s->epoch, hs_strerror(status));
	s->state = S_DEAD; /* not recovering any more: kill must not cancel */
	hs_serve_stream_kill(sv, s,
			     status == -HS_ESEALED ? -HS_ESEALED
			     : peers_up(sv) >= s->r ? -HS_EAGAIN
						    : -HS_EUNAVAIL);
}

/* The owner o of x's stream answered (o->alive) or not: redirect the
 * stream's waiters to it, or take the stream over from it. */
static void owner_decide(struct serve *sv, struct act_ctx *x, struct sowner *o)
{
	struct sstream *s = x->s;
	uint8_t key[16];

	if (o->alive) {
		hs_debug("stream '%s': sequenced by %s", s->name, o->addr);
		free(x);
		s->redirect = o->addr;
		sv->redirects++;
		hs_serve_stream_kill(sv, s, -HS_EREDIRECT);
		return;
	}
	hs_info("stream '%s' (log %llu): its sequencer at %s does not answer: taking over",
		s->name, (unsigned long long)s->rec.log, x->owner_addr);
	sv->takeovers++;
	x->over = x->owner;
	x->over_epoch = x->owner_epoch;
	s->refs++;
	if (hs_serve_reg_change(sv, key, hs_meta_lkey(key, s->rec.log), fn_activate,
				activate_done, x) < 0) {
		free(x);
		s->refs--;
		hs_serve_stream_kill(sv, s, -HS_EINTERNAL);
	}
}

static void activate_done(void *arg, int status, const uint8_t *val, size_t len,
			  uint64_t version)
{
	struct act_ctx *x = arg;
	struct sstream *s = x->s;
	struct serve *sv = s->sv;
	const struct hs_lepoch *e;

	s->refs--;
	if (status == -HS_EREDIRECT) {
		if (s->state != S_ACTIVATING) { /* killed meanwhile */
			free(x);
			if (s->state == S_DEAD && stream_idle(s))
				stream_free(sv, s);
			return;
		}
		owner_check(sv, x);
		return;
	}
	free(x);
	if (status == -ECANCELED)
		return;
	if (status == 0) {
		hs_lrec_free(&s->lr);
		if (hs_lrec_dec(val, len, &s->lr) == 1 &&
		    (e = hs_lrec_find_epoch(&s->lr, s->lr.epoch)) && e->r && e->nn >= e->r) {
			s->epoch = s->lr.epoch;
			s->next_esn = 1;
			s->trim = s->lr.trim;
			s->r = e->r;
			s->nn = e->nn;
			memcpy(s->ns, e->nodes, e->nn * sizeof(*s->ns));
			s->ncs = 0;
			s->cs_bytes = 0;
			sv->activations++;
			hs_debug("stream '%s' (log %llu): epoch %u, R %u over %u peers", s->name,
				 (unsigned long long)s->rec.log, s->epoch, s->r, s->nn);
			s->state = S_RECOVERING;
			s->refs++; /* recovery.h: held until done */
			hs_recovery_start(sv, s, recovery_done);
			return;
		}
		status = -HS_EDATA;
	}
	hs_warn("stream '%s': cannot start a new epoch: %s", s->name, hs_strerror(status));
	hs_serve_stream_kill(sv, s,
			     status == -HS_EDATA || status == -HS_ETOOBIG ? status
									  : busy_status(sv, s));
}

static void on_peer_wait(struct hs_loop *l, void *arg)
{
	struct sstream *s = arg;
	struct serve *sv = s->sv;

	s->wait_timer = 0;
	if (s->state != S_PEERS)
		return;
	if (peers_up(sv) >= s->rec.replication) {
		activate(sv, s);
		return;
	}
	hs_debug("stream '%s': fewer than %u peers up", s->name, s->rec.replication);
	hs_serve_stream_kill(sv, s, -HS_EAGAIN);
}

/* Start a new epoch for s with R = its replication over every peer known
 * to us (node id announced), once R of them are up; waits PEER_WAIT_MS
 * for them, then fails the waiters with -HS_EAGAIN (the clients retry). */
static void activate(struct serve *sv, struct sstream *s)
{
	uint8_t key[16];
	size_t klen = hs_meta_lkey(key, s->rec.log);
	uint8_t r = s->rec.replication ? s->rec.replication : 1;
	struct act_ctx *x;

	if (r > sv->npeers || r > HS_NODESET_MAX) {
		hs_warn("stream '%s': replication %u but %d peer(s)", s->name, r, sv->npeers);
		hs_serve_stream_kill(sv, s, -HS_EUNAVAIL);
		return;
	}
	if (peers_up(sv) < r) {
		if (s->state != S_PEERS) {
			s->state = S_PEERS;
			s->wait_timer = hs_loop_timer(sv->loop, PEER_WAIT_MS, on_peer_wait, s);
		}
		return; /* hs_serve_peer_up() or the timer goes on */
	}
	if (s->wait_timer) {
		hs_loop_timer_cancel(sv->loop, s->wait_timer);
		s->wait_timer = 0;
	}
	s->redirect = NULL;
	x = hs_xcalloc(1, sizeof(*x));
	x->s = s;
	x->e.r = r;
	for (int i = 0; i < sv->npeers && x->e.nn < HS_NODESET_MAX; i++)
		if (sv->sp[i].node)
			x->e.nodes[x->e.nn++] = sv->sp[i].node;
	s->state = S_ACTIVATING;
	s->refs++;
	if (hs_serve_reg_change(sv, key, klen, fn_activate, activate_done, x) < 0) {
		free(x);
		s->refs--;
		hs_serve_stream_kill(sv, s, -HS_EINTERNAL);
	}
}

void hs_serve_release_mark(struct serve *sv, struct sstream *s)
{
	if (s->rel_dirty)
		return;
	s->rel_dirty = 1;
	hs_serve_grow((void **)&sv->reldirty, &sv->caprel, sv->nrel + 1, sizeof(*sv->reldirty));
	sv->reldirty[sv->nrel++] = s;
}

/* ---- peers ------------------------------------------------------------------ */

void hs_serve_peer_up(struct serve *sv, int idx, uint32_t node_id)
{
	struct speer *sp = &sv->sp[idx];
	struct sstream *s, *nx;

	sp->node = node_id;
	if (!node_id) {
		hs_warn("peer %s announces node id 0: not used for data",
			hs_peers_addr(sv->peers, idx));
	}
	for (int i = 0; i < sv->npeers && node_id; i++)
		if (i != idx && sv->sp[i].node == node_id) {
			hs_warn("peers %s and %s both announce node id %u: %s not used for data",
				hs_peers_addr(sv->peers, i), hs_peers_addr(sv->peers, idx), node_id,
				hs_peers_addr(sv->peers, idx));
			sp->node = 0;
		}
	sp->fail_until = 0;
	/* A new connection may be a restarted peer with room again: if not,
	 * its first refusal marks it full again. */
	sp->full_until = 0;
	sp->rel_all = 1;
	sv->stall_retry = 1;
	for (s = TAILQ_FIRST(&sv->lru); s; s = nx) {
		nx = TAILQ_NEXT(s, lru);
		if (s->state == S_PEERS && peers_up(sv) >= s->rec.replication)
			activate(sv, s);
	}
	hs_loop_wake_now(sv->loop);
}

void hs_serve_peer_down(struct serve *sv, int idx)
{
	/* Its STOREs were answered NULL (new waves); copysets skip it. */
	sv->sp[idx].fail_until = hs_now_ms() + FAIL_AVOID_MS;
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

static void pent_fail(struct serve *sv, struct pent *pe, int status, const char *text)
{
	hs_serve_creq_settle(sv, pe->rq, pe->idx, status, 0, 0, 0, text);
	free(pe->run);
	free(pe);
}

/* Free a sequenced pent once it is dead and no batch names it. */
static void pent_put(struct pent *pe)
{
	if (!pe->dead || pe->refs)
		return;
	free(pe->sr);
	free(pe->mr);
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

static uint64_t rng_state;

static uint64_t rng_next(void)
{
	uint64_t x = rng_state;

	if (!x)
		x = hs_serve_rand64() | 1;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	rng_state = x;
	return x;
}

/* Draw R distinct UP peers of s's nodeset into cs (link indexes), weighted
 * by how little is queued to them; peers that failed recently only if
 * there are not enough others; full peers never.  Returns 0, or -1 with
 * fewer than R such peers. */
static int copyset_pick(struct serve *sv, struct sstream *s, uint8_t *cs)
{
	uint64_t now = hs_now_ms(), w[HS_NODESET_MAX], total = 0;
	int cand[HS_NODESET_MAX], n = 0, pass;

	for (pass = 0; pass < 2 && n < s->r; pass++) {
		n = 0;
		total = 0;
		for (int j = 0; j < s->nn; j++) {
			int idx = hs_serve_peer_idx(sv, s->ns[j]);

			if (idx < 0 || !hs_peers_is_up(sv->peers, idx) ||
			    sv->sp[idx].full_until > now ||
			    (!pass && sv->sp[idx].fail_until > now))
				continue;
			cand[n] = idx;
			w[n] = (1u << 20) / (1 + (hs_peers_pending(sv->peers, idx) >> 12)) + 1;
			total += w[n++];
		}
	}
	if (n < s->r)
		return -1;
	for (int k = 0; k < s->r; k++) {
		uint64_t x = rng_next() % total;
		int j = 0;

		while (x >= w[j])
			x -= w[j++];
		cs[k] = (uint8_t)cand[j];
		total -= w[j];
		cand[j] = cand[--n];
		w[j] = w[n];
	}
	return 0;
}

/* s's sticky copyset still serves new runs: every member UP, not failed
 * since, not full, and fewer than COPYSET_STICKY bytes sent on it. */
static int copyset_fresh(struct serve *sv, const struct sstream *s, uint64_t now)
{
	if (s->ncs != s->r || s->cs_bytes >= COPYSET_STICKY)
		return 0;
	for (int i = 0; i < s->ncs; i++)
		if (!hs_peers_is_up(sv->peers, s->cs[i]) || sv->sp[s->cs[i]].fail_until > now ||
		    sv->sp[s->cs[i]].full_until > now || !sv->sp[s->cs[i]].node)
			return 0;
	return 1;
}

static void batch_send(struct serve *sv, int idx, int k);

/* Add pe's STORE run, for copyset member pos, to the turn's STORE of kind
 * k to peer idx (a new frame when the peer's frame limit is reached). */
static void batch_add(struct serve *sv, int idx, int k, struct pent *pe, int pos)
{
	struct speer *sp = &sv->sp[idx];
	struct sbatch *b = sp->cur[k];

	if (b && b->n && hs_msg_wr_size(&sp->sw[k]) + pe->rlen + 32 >
			       hs_peers_max_frame(sv->peers, idx)) {
		batch_send(sv, idx, k);
		b = NULL;
	}
	if (!b) {
		b = sp->cur[k] = hs_xcalloc(1, sizeof(*b));
		b->sv = sv;
		b->peer = idx;
		b->id = hs_peers_next_id(sv->peers);
		hs_msg_store_begin(&sp->sw[k], &b->frame, b->id);
		/* The header's flags; hs_msg_wr_end() computes the CRC. */
		if (k == SB_NOSYNC)
			hs_put16(b->frame.data + sp->sw[k].start + 6, HS_STORE_NOSYNC);
	}
	hs_msg_store_run(&sp->sw[k], pe->s->rec.log, pe->first_lsn, pe->sr, pe->rlen);
	hs_serve_grow((void **)&b->ents, &b->cap, b->n + 1, sizeof(*b->ents));
	b->ents[b->n++] = (struct sbent){ .pe = pe, .wave = pe->wave, .pos = (uint8_t)pos };
	pe->refs++;
}

/*
 * Send pe as a new wave: wave + 1, a copyset (the stream's sticky one for
 * a first wave, else a fresh draw - the peers that failed are avoided by
 * their fail_until), the current LNG in its header, and its run added to
 * the turn's STORE of every member.  With fewer than R peers up it waits
 * on sv->stalled until a peer comes up.
 */
static void pent_dispatch(struct serve *sv, struct pent *pe)
{
	struct sstream *s = pe->s;
	uint64_t now = hs_now_ms();
	uint8_t *p = pe->sr;
	int k = stream_kind(s);

	if (!pe->wave && copyset_fresh(sv, s, now)) {
		memcpy(pe->cs, s->cs, s->r);
	} else if (copyset_pick(sv, s, pe->cs) < 0) {
		if (!pe->stalled) {
			pe->stalled = 1;
			TAILQ_INSERT_TAIL(&sv->stalled, pe, slink);
		}
		return;
	} else {
		/* The stream's next runs follow the new copyset. */
		memcpy(s->cs, pe->cs, s->r);
		s->ncs = s->r;
		s->cs_bytes = 0;
	}
	if (pe->wave)
		sv->waves++;
	pe->wave++;
	pe->ncs = s->r;
	pe->acked = 0;
	if (pe->wave == 1)
		s->cs_bytes += pe->rlen;
	hs_put64(p + 8, s->released);
	hs_put32(p + 16, pe->wave);
	for (int i = 0; i < pe->ncs; i++)
		hs_put32(p + HS_RUN_HDR + 4 * i, sv->sp[pe->cs[i]].node);
	hs_put32(p + pe->rlen - 4, hs_crc32c(0, p, pe->rlen - 4));
	for (int i = 0; i < pe->ncs; i++)
		batch_add(sv, pe->cs[i], k, pe, i);
}

/* Sequence one append entry of an active stream: its LSNs, its STORE run
 * (header, the client's records with timestamps of 0 stamped, CRC at
 * dispatch), and its first wave. */
static void append_send(struct serve *sv, struct sstream *s, struct pent *pe)
{
	struct hs_run r;
	size_t rec_len;
	uint8_t *p;

	if (hs_run_parse_nocrc(pe->run, pe->len, &r) < 0 || (uint64_t)s->next_esn + r.nrecords > UINT32_MAX) {
		/* Parsed on arrival; an epoch full of ESNs needs a new epoch. */
		pent_fail(sv, pe, -HS_EAGAIN, "");
		return;
	}
	rec_len = (size_t)(r.end - r.records);
	pe->s = s;
	pe->first_lsn = HS_LSN(s->epoch, s->next_esn);
	s->next_esn += r.nrecords;
	pe->rlen = HS_RUN_HDR + 4 * (size_t)s->r + rec_len + 4;
	p = pe->sr = hs_xmalloc(pe->rlen);
	memset(p, 0, HS_RUN_HDR + 4 * (size_t)s->r);
	p[0] = HS_RUN_VERSION;
	hs_put16(p + 2, s->r);
	hs_put32(p + 4, r.nrecords);
	p += HS_RUN_HDR + 4 * (size_t)s->r;
	memcpy(p, r.records, rec_len);
	if (pe->stamp) {
		uint64_t now = hs_wall_ms();
		uint8_t *end = p + rec_len;

		while (p < end) {
			if (!hs_get64(p))
				hs_put64(p, now);
			p += HS_RUN_REC_HDR + hs_get32(p + 8);
		}
	}
	free(pe->run);
	pe->run = NULL;
	TAILQ_INSERT_TAIL(&s->inflight, pe, flink);
	s->inflight_bytes += pe->len;
	s->appends++;
	s->records += r.nrecords;
	s->bytes += pe->len;
	sv->append_records += r.nrecords;
	sv->append_bytes += pe->len;
	pent_dispatch(sv, pe);
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
		pent_fail(sv, pe, status,
			  status == -HS_EREDIRECT ? hs_serve_redirect_addr(s) : "");
		return;
	}
	append_send(sv, s, pe);
}

/* Release the fully stored prefix of s: that is the LNG. */
static void stream_advance(struct serve *sv, struct sstream *s)
{
	struct pent *pe;

	while ((pe = TAILQ_FIRST(&s->inflight)) && pe->done) {
		TAILQ_REMOVE(&s->inflight, pe, flink);
		s->inflight_bytes -= pe->len;
		if (s->state == S_ACTIVE && pe->first_lsn + pe->nrec - 1 > s->released) {
			if (s->nfollow)
				win_take(sv, s, pe);
			s->released = pe->first_lsn + pe->nrec - 1;
			hs_serve_release_mark(sv, s);
		}
		pe->dead = 1;
		pent_put(pe);
	}
	stream_pump(sv, s);
}

/* Fail every append of s not yet fully stored with status, drop the rest
 * unreleased: s stops sequencing (killed, fenced, deleted).  Stale STORE
 * replies for them are ignored. */
static void stream_drop_inflight(struct serve *sv, struct sstream *s, int status)
{
	struct pent *pe;

	while ((pe = TAILQ_FIRST(&s->inflight))) {
		TAILQ_REMOVE(&s->inflight, pe, flink);
		if (!pe->done)
			hs_serve_creq_settle(sv, pe->rq, pe->idx, status, 0, 0, 0,
					     status == -HS_ESEALED ? "epoch sealed by a newer sequencer"
								   : "");
		if (pe->stalled) {
			TAILQ_REMOVE(&sv->stalled, pe, slink);
			pe->stalled = 0;
		}
		pe->dead = 1;
		pent_put(pe);
	}
	s->inflight_bytes = 0;
}

static void on_full_timer(struct hs_loop *l, void *arg)
{
	struct serve *sv = arg;

	/* A full period ended: the stalled runs may have a copyset again. */
	sv->stall_retry = 1;
	hs_loop_wake_now(l);
}

/* Peer idx refused a run with -HS_ENOSPC: keep it out of every copyset
 * for FULL_AVOID_MS (design comment: FULL PEERS).  Its other refusals of
 * the same period change nothing. */
static void peer_full(struct serve *sv, int idx)
{
	struct speer *sp = &sv->sp[idx];
	uint64_t now = hs_now_ms();

	if (sp->full_until > now)
		return;
	sp->full_until = now + FULL_AVOID_MS;
	hs_peers_note_error(sv->peers, idx, -HS_ENOSPC);
	hs_warn("peer %s: disk nearly full; left out of copysets for %d s",
		hs_peers_addr(sv->peers, idx), FULL_AVOID_MS / 1000);
	/* One ms late, so the period is surely over when the timer fires. */
	hs_loop_timer(sv->loop, FULL_AVOID_MS + 1, on_full_timer, sv);
}

/* One copy of pe answered: OK counts towards its R; an error other than
 * -HS_ESEALED (or a lost link, or a timeout: status -HS_EUNAVAIL) starts
 * a new wave (after -HS_ENOSPC without that peer: it is full); -HS_ESEALED
 * fences the stream.  Never an error for the client: the new wave stalls
 * if no copyset is left.  pe may be freed. */
static void pent_copy_done(struct serve *sv, struct pent *pe, const struct sbent *e, int32_t st,
			   int idx)
{
	struct sstream *s = pe->s;

	pe->refs--;
	/* A fact about the peer, whichever wave the copy belonged to. */
	if (st == -HS_ENOSPC)
		peer_full(sv, idx);
	if (pe->dead || pe->done || e->wave != pe->wave) {
		pent_put(pe);
		return;
	}
	if (st == 0) {
		pe->acked |= 1u << e->pos;
		if (pe->acked != (pe->ncs == 32 ? UINT32_MAX : (1u << pe->ncs) - 1))
			return;
		pe->done = 1;
		if (s->nfollow && !pe->mr)
			pe->mr = mrun_new(s, pe->first_lsn, pe->nrec, pe->sr, pe->rlen);
		free(pe->sr);
		pe->sr = NULL;
		hs_serve_creq_settle(sv, pe->rq, pe->idx, 0, pe->first_lsn, pe->nrec, 0, "");
		stream_advance(sv, s);
		return;
	}
	if (st == -HS_ESEALED) {
		if (s->state == S_ACTIVE) {
			hs_warn("stream '%s': epoch %u sealed by a newer sequencer", s->name,
				s->epoch);
			sv->fenced++;
		}
		hs_serve_stream_kill(sv, s, -HS_ESEALED);
		return;
	}
	if (st != -HS_ENOSPC)
		sv->sp[idx].fail_until = hs_now_ms() + FAIL_AVOID_MS;
	if (s->state != S_ACTIVE)
		return; /* dropped with the stream */
	hs_debug("stream '%s': run at %llx on peer %s: %s; new wave", s->name,
		 (unsigned long long)pe->first_lsn, hs_peers_addr(sv->peers, idx),
		 hs_strerror(st));
	pent_dispatch(sv, pe);
}

static void batch_free(struct serve *sv, struct sbatch *b)
{
	if (b->timer)
		hs_loop_timer_cancel(sv->loop, b->timer);
	hs_buf_free(&b->frame);
	free(b->ents);
	free(b);
}

/* Every copy b carried failed with st (a lost link, a bad reply, a
 * timeout). */
static void batch_fail(struct serve *sv, struct sbatch *b, int32_t st)
{
	for (size_t i = 0; i < b->n; i++)
		pent_copy_done(sv, b->ents[i].pe, &b->ents[i], st, b->peer);
	batch_free(sv, b);
}

static void on_stored(void *arg, int idx, const struct hs_frame *f)
{
	struct sbatch *b = arg;
	struct serve *sv = b->sv;
	struct hs_stored_rd rd;
	int32_t st;
	uint32_t seal;

	TAILQ_REMOVE(&sv->unacked, b, link);
	sv->unacked_n--;
	if (!f) {
		batch_fail(sv, b, -HS_EUNAVAIL);
		return;
	}
	if (f->type != HS_MSG_STORED || hs_msg_stored_dec(f->body, f->body_len, &rd) < 0 ||
	    rd.nruns != b->n) {
		hs_warn("peer %s: bad reply to STORE (%s)", hs_peers_addr(sv->peers, idx),
			hs_msg_name(f->type));
		batch_fail(sv, b, -HS_EPROTO);
		return;
	}
	for (size_t i = 0; i < b->n; i++) {
		hs_stored_next(&rd, &st, &seal);
		pent_copy_done(sv, b->ents[i].pe, &b->ents[i], st, idx);
	}
	batch_free(sv, b);
}

static void on_store_timeout(struct hs_loop *l, void *arg)
{
	struct sbatch *b = arg;
	struct serve *sv = b->sv;

	b->timer = 0;
	/* Bytes still queued to the peer: the STORE may not even be out yet
	 * (our own backlog, not the peer's fault); wait a little longer, but
	 * not forever (a stopped peer stops draining too). */
	if (hs_peers_pending(sv->peers, b->peer) && b->rearms < STORE_TIMEOUT_REARMS) {
		b->rearms++;
		b->timer = hs_loop_timer(sv->loop, STORE_TIMEOUT_MS, on_store_timeout, b);
		return;
	}
	hs_warn("peer %s: no STORED within %d ms; new waves elsewhere",
		hs_peers_addr(sv->peers, b->peer), STORE_TIMEOUT_MS * (b->rearms + 1));
	sv->store_timeouts++;
	hs_peers_forget(sv->peers, b->peer, b->id);
	TAILQ_REMOVE(&sv->unacked, b, link);
	sv->unacked_n--;
	batch_fail(sv, b, -HS_ETIMEOUT);
}

/* Close the turn's STORE of kind k to peer idx and send it (with its
 * timeout); with the link down its copies fail at once (new waves). */
static void batch_send(struct serve *sv, int idx, int k)
{
	struct speer *sp = &sv->sp[idx];
	struct sbatch *b = sp->cur[k];
	struct hs_buf *out = hs_peers_out(sv->peers, idx);

	sp->cur[k] = NULL;
	hs_msg_wr_end(&sp->sw[k]);
	if (!out) {
		batch_fail(sv, b, -HS_EUNAVAIL);
		return;
	}
	hs_peers_expect(sv->peers, idx, b->id, on_stored, b, 0);
	hs_buf_append(out, b->frame.data, b->frame.len);
	hs_buf_free(&b->frame);
	b->timer = hs_loop_timer(sv->loop, STORE_TIMEOUT_MS, on_store_timeout, b);
	TAILQ_INSERT_TAIL(&sv->unacked, b, link);
	sv->unacked_n++;
	sv->stores_sent++;
}

/* RELEASE writers of one flush, one per peer, opened on first use. */
struct relw {
	struct hs_msg_wr w[MAX_PEERS];
	uint8_t open[MAX_PEERS];
};

static void rel_add(struct serve *sv, struct relw *rw, int idx, uint64_t log, uint64_t lsn)
{
	struct hs_buf *out;

	if (rw->open[idx] && hs_msg_wr_size(&rw->w[idx]) + 16 > hs_peers_max_frame(sv->peers, idx)) {
		hs_msg_wr_end(&rw->w[idx]);
		rw->open[idx] = 0;
	}
	if (!rw->open[idx]) {
		out = hs_peers_out(sv->peers, idx);
		if (!out)
			return;
		/* The RESULT reply needs no callback: it lands in ops->frame. */
		hs_msg_release_begin(&rw->w[idx], out, hs_peers_next_id(sv->peers));
		rw->open[idx] = 1;
	}
	hs_msg_release_add(&rw->w[idx], log, lsn);
}

/* s's release point to every UP peer of its nodeset (only peer only, if
 * only >= 0). */
static void rel_stream(struct serve *sv, struct relw *rw, struct sstream *s, int only)
{
	for (int j = 0; j < s->nn; j++) {
		int idx = hs_serve_peer_idx(sv, s->ns[j]);

		if (idx >= 0 && (only < 0 || idx == only) && hs_peers_is_up(sv->peers, idx))
			rel_add(sv, rw, idx, s->rec.log, s->released);
	}
}

void hs_serve_batches_flush(struct serve *sv)
{
	struct relw rw;
	int again = 1;

	if (sv->stall_retry) {
		struct pentq q;
		struct pent *pe;

		sv->stall_retry = 0;
		TAILQ_INIT(&q);
		TAILQ_CONCAT(&q, &sv->stalled, slink);
		while ((pe = TAILQ_FIRST(&q))) {
			TAILQ_REMOVE(&q, pe, slink);
			pe->stalled = 0;
			pent_dispatch(sv, pe);
		}
	}
	/* Sending to a link that just went down starts new waves on others. */
	while (again) {
		again = 0;
		for (int i = 0; i < sv->npeers; i++)
			for (int k = 0; k < SB_KINDS; k++)
				if (sv->sp[i].cur[k]) {
					batch_send(sv, i, k);
					again = 1;
				}
	}
	memset(rw.open, 0, sizeof(rw.open));
	for (size_t i = 0; i < sv->nrel; i++) {
		struct sstream *s = sv->reldirty[i];

		s->rel_dirty = 0;
		if (s->state == S_ACTIVE || s->state == S_DEAD)
			rel_stream(sv, &rw, s, -1);
	}
	for (int i = 0; i < sv->npeers; i++) {
		struct sstream *s;

		if (!sv->sp[i].rel_all)
			continue;
		sv->sp[i].rel_all = 0;
		TAILQ_FOREACH(s, &sv->lru, lru)
			if (s->state == S_ACTIVE)
				rel_stream(sv, &rw, s, i);
	}
	for (int i = 0; i < sv->npeers; i++)
		if (rw.open[i])
			hs_msg_wr_end(&rw.w[i]);
	for (size_t i = 0; i < sv->nrel; i++)
		if (stream_idle(sv->reldirty[i]) && sv->reldirty[i]->state == S_DEAD)
			stream_free(sv, sv->reldirty[i]);
	sv->nrel = 0;
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
		const char *last = "";

		/* STATUSES entries carry no text: an entry refused with
		 * -HS_EREDIRECT names the sequencer in a RESULT with the
		 * request's id before it (one per address, in entry order). */
		for (uint32_t i = 0; i < rq->n; i++) {
			const char *ra = rq->res[i].text;

			if (rq->res[i].status != -HS_EREDIRECT || !ra[0] || !strcmp(ra, last))
				continue;
			hs_msg_result_encf(out, rq->id, -HS_EREDIRECT, "%s", ra);
			last = ra;
		}
		hs_msg_statuses_begin(&w, out, rq->id);
		for (uint32_t i = 0; i < rq->n; i++)
			hs_msg_statuses_add(&w, rq->res[i].status, rq->res[i].first_lsn);
	}
	hs_msg_wr_end(&w);
	if (rq->type == HS_MSG_APPEND) {
		struct cconn *cc = rq->cc;

		cc->inflight -= rq->bytes;
		cc_budget(cc);
		creq_free(rq);
		/* The client's last request in flight: it is waiting for
		 * exactly this reply, so it leaves now rather than after the
		 * turn's hooks and the peers' flushes (the loop runs the last
		 * queued flush first: the peer's RELEASE went out before the
		 * APPENDED, ~10 us on the one-in-flight path).  A reply that
		 * joins later in the turn costs a second send, which is rare:
		 * replies with requests still in flight keep the one deferred
		 * flush.  So does a backlog of output (and its writable
		 * callback). */
		if (LIST_EMPTY(&cc->reqs) && hs_conn_out_pending(cc->c) < HS_CONN_LOW_WATER)
			hs_conn_flush(cc->c);
		return;
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
	hs_serve_read_stop_peer(sv, r);
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

