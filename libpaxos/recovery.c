/*
 * recovery.c - epoch recovery (recovery.h, docs/replication.md §5).
 *
 * DESIGN.  One struct hs_recovery per recovering stream, on a list so that
 * peer up/down events reach it.  The unclean epochs of s->lr older than
 * s->epoch are copied at start (the change function and the digest never
 * look at s again) and recovered one at a time, oldest first, each through
 * these steps; the ballot is b = s->epoch - 1:
 *
 *   SEAL    SEAL{log, b, hard, lce} to every UP peer of the nodeset (and
 *           to each that comes up later); SEALED OK from f = n - r + 1 of
 *           them ends the step.  A SEALED reporting a seal or soft seal >=
 *           s->epoch ends the recovery with -HS_ESEALED.  lng = the highest
 *           LNG the sealed peers report for the epoch.
 *   DIGEST  START{from lng + 1 (or past the trim point), until the epoch's
 *           last LSN, no window, HS_READ_IGNORE_RELEASED} on every sealed
 *           peer; each RECORDS run is kept whole (bytes in one buffer, a
 *           struct hs_rcopy each).  When every stream has ended (END, or
 *           the link went down), at least f complete digests are needed,
 *           else the epoch starts over at SEAL (seals are idempotent).
 *   DECIDE  hs_recovery_decide() (pure, below); the decided ranges are
 *           built once into RECOVERY runs (wave = b, lng = the epoch's
 *           lng, copyset = the r targets first chosen): records copied
 *           with their timestamps, HOLE runs for holes, and a one-slot
 *           BRIDGE at end + 1.  Runs are cut at RUN_BYTES so a run never
 *           nears a frame limit.
 *   WRITE   r targets among the UP peers of the nodeset (sealed ones
 *           first); each gets the runs in as few STORE frames as its frame
 *           limit allows (usually one), one frame in flight per peer.  A
 *           STORED error, a lost link: that target is replaced by another
 *           UP peer (the runs are sent to it from the start).  -HS_ESEALED
 *           (its seal is above b): the recovery ends with -HS_ESEALED.
 *   CLEAN   CLEAN{log, e, b, lng, end} to every UP peer of the nodeset;
 *           best effort: RESULTs are awaited for at most CLEAN_WAIT_MS so
 *           that the peers have purged their stale copies before the
 *           register says the epoch is clean, but a failure changes
 *           nothing (readers apply the record's rules anyway).
 *
 * Then ONE register change on l/<log> marks every recovered entry CLEAN
 * (lng, end, ballot), compacts, and only applies if the record's epoch is
 * still s->epoch (else -HS_ESEALED); s->lr becomes the committed record.
 *
 * Waiting steps (SEAL, DIGEST, WRITE) give up with -HS_EUNAVAIL after
 * HS_RECOVERY_DEADLINE_MS without progress (a reply that moved the step
 * forward), or after MAX_ROUNDS incomplete digests of one epoch; peer_up
 * re-drives SEAL and WRITE at once.
 *
 * Request ids: each peer slot has at most one request in flight (SEAL,
 * START, STORE or CLEAN); its reply callback gets the slot.  Every id is
 * forgotten when the step ends or the recovery stops, so no callback ever
 * sees a freed recovery.  Only the register change can outlive a cancel:
 * the recovery is then kept (marked dead) until its done callback.
 */
#include "recovery.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "buf.h"
#include "err.h"
#include "log.h"
#include "meta.h"
#include "peers.h"
#include "proto.h"
#include "run.h"
#include "serve.h"

#define RUN_BYTES (256u << 10) /* cut decided runs at about this size */
#define CLEAN_WAIT_MS 1000
#define MAX_ROUNDS 8           /* digest restarts per epoch before giving up */

enum { ST_SEAL, ST_DIGEST, ST_WRITE, ST_CLEAN, ST_REG };

/* A peer slot's state within the current step. */
enum { P_IDLE, P_BUSY, P_OK, P_FAILED };

struct rpeer {
	struct hs_recovery *rc;
	int idx;
	int state;
	uint64_t id;          /* request in flight, 0 = none */
	uint32_t sid;         /* DIGEST: read stream id */
	int target;           /* WRITE: chosen as a target */
	size_t wnext;         /* WRITE: next run to send */
	size_t wsent;         /* WRITE: runs in the frame in flight */
};

/* One epoch to recover and its result. */
struct rep {
	struct hs_lepoch e;
	uint64_t lng, end;
};

/* A run of the digest: its bytes are dbuf[off, off + len). */
struct dcopy {
	size_t off, len;
};

/* A built RECOVERY run: first LSN and wbuf[off, off + len). */
struct wrun {
	uint64_t first;
	size_t off, len;
};

struct hs_recovery {
	struct serve *sv;
	struct sstream *s;
	hs_recovery_done_fn *done;
	LIST_ENTRY(hs_recovery) link;
	uint64_t log;
	uint32_t epoch, ballot, lce;
	struct rep *eps;
	size_t nep, cur;
	int step;
	int dead;             /* cancelled while the register change runs */
	uint64_t timer;       /* deadline or CLEAN wait */
	uint64_t progress_ms; /* last progress (deadline base) */
	uint64_t start_ms;
	struct rpeer pr[MAX_PEERS];
	/* the current epoch */
	int fmaj;
	int rounds;           /* digests restarted for this epoch */
	uint64_t lng, trim;   /* from the SEALED replies */
	struct hs_buf dbuf;
	struct hs_rcopy *cp;
	struct dcopy *dc;
	size_t ncp, capcp;
	struct hs_buf wbuf;
	struct wrun *wr;
	size_t nwr, capwr;
	uint32_t cs[HS_NODESET_MAX];
	int ncs;
};

static LIST_HEAD(, hs_recovery) recoveries = LIST_HEAD_INITIALIZER(recoveries);

static void step_enter(struct hs_recovery *rc, int step);
static void write_drive(struct hs_recovery *rc);

/* ---- the decision ------------------------------------------------------ */

static uint64_t prec_of(const struct hs_rcopy *c)
{
	return (c->flags & HS_RUN_RECOVERY) ? (uint64_t)c->ballot + 1 : 0;
}

static uint64_t last_of(const struct hs_rcopy *c)
{
	return c->first + c->n - 1;
}

static int cmp_first(const void *a, const void *b, void *arg)
{
	const struct hs_rcopy *c = arg;
	const struct hs_rcopy *x = &c[*(const size_t *)a];
	const struct hs_rcopy *y = &c[*(const size_t *)b];

	if (x->first != y->first)
		return x->first < y->first ? -1 : 1;
	return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

static void range_add(struct hs_rrange **rg, size_t *n, size_t *cap, uint64_t first, uint64_t cnt,
		      int32_t copy, uint32_t off)
{
	struct hs_rrange *p = *n ? &(*rg)[*n - 1] : NULL;

	if (p && p->first + p->n == first && p->copy == copy &&
	    (copy < 0 || p->off + p->n == off) && (uint64_t)p->n + cnt <= UINT32_MAX) {
		p->n += (uint32_t)cnt;
		return;
	}
	if (*n == *cap) {
		*cap = *cap ? 2 * *cap : 16;
		*rg = hs_xrealloc(*rg, *cap * sizeof(**rg));
	}
	(*rg)[(*n)++] = (struct hs_rrange){ first, (uint32_t)cnt, copy, off };
}

/* A max-heap of copy indices by precedence (ties: the lower index, so the
 * choice is deterministic). */
struct cheap {
	const struct hs_rcopy *c;
	size_t *h, n;
};

static int heap_above(const struct cheap *hp, size_t a, size_t b)
{
	uint64_t pa = prec_of(&hp->c[a]), pb = prec_of(&hp->c[b]);

	return pa != pb ? pa > pb : a < b;
}

static void heap_push(struct cheap *hp, size_t v)
{
	size_t i = hp->n++;

	while (i && heap_above(hp, v, hp->h[(i - 1) / 2])) {
		hp->h[i] = hp->h[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	hp->h[i] = v;
}

static void heap_pop(struct cheap *hp)
{
	size_t v = hp->h[--hp->n], i = 0;

	for (;;) {
		size_t l = 2 * i + 1, m = i;

		if (l < hp->n && heap_above(hp, hp->h[l], v))
			m = l;
		if (l + 1 < hp->n && heap_above(hp, hp->h[l + 1], m == i ? v : hp->h[m]))
			m = l + 1;
		if (m == i)
			break;
		hp->h[i] = hp->h[m];
		i = m;
	}
	hp->h[i] = v;
}

/*
 * A sweep over the slots in LSN order: copies enter a heap by precedence
 * when the sweep reaches their first slot and leave it (lazily) once it
 * passed their last.  Each step takes the heap's top from x up to its last
 * slot or to the first slot of a later copy of higher precedence, so each
 * copy enters and leaves once and is scanned ahead O(1) times amortized:
 * O(nc log nc).
 */
void hs_recovery_decide(uint64_t lng, const struct hs_rcopy *copies, size_t nc,
			struct hs_rrange **ranges, size_t *nranges, uint64_t *end)
{
	struct hs_rrange *rg = NULL;
	struct cheap hp = { copies, NULL, 0 };
	size_t n = 0, cap = 0, *ix = NULL, k = 0;
	uint64_t x = lng + 1, top = lng;

	*ranges = NULL;
	*nranges = 0;
	*end = lng;
	for (size_t i = 0; i < nc; i++)
		if (copies[i].n && last_of(&copies[i]) > top)
			top = last_of(&copies[i]);
	if (top == lng)
		return;
	ix = hs_xmalloc(nc * sizeof(*ix));
	hp.h = hs_xmalloc(nc * sizeof(*hp.h));
	for (size_t i = 0; i < nc; i++)
		ix[i] = i;
	qsort_r(ix, nc, sizeof(*ix), cmp_first, (void *)copies);
	while (x <= top) {
		uint64_t rend;
		size_t best, j;

		for (; k < nc && copies[ix[k]].first <= x; k++)
			if (copies[ix[k]].n && last_of(&copies[ix[k]]) >= x)
				heap_push(&hp, ix[k]);
		while (hp.n && last_of(&copies[hp.h[0]]) < x)
			heap_pop(&hp);
		if (!hp.n) {
			/* No copy: a hole up to the next copy's first slot. */
			rend = k < nc ? copies[ix[k]].first - 1 : top;
			range_add(&rg, &n, &cap, x, rend - x + 1, -1, 0);
			x = rend + 1;
			continue;
		}
		best = hp.h[0];
		rend = last_of(&copies[best]);
		/* A copy of higher precedence starting inside takes over there. */
		for (j = k; j < nc && copies[ix[j]].first <= rend; j++) {
			if (copies[ix[j]].n && prec_of(&copies[ix[j]]) > prec_of(&copies[best])) {
				rend = copies[ix[j]].first - 1;
				break;
			}
		}
		if (copies[best].flags & (HS_RUN_HOLE | HS_RUN_BRIDGE))
			range_add(&rg, &n, &cap, x, rend - x + 1, -1, 0);
		else
			range_add(&rg, &n, &cap, x, rend - x + 1, (int32_t)best,
				  (uint32_t)(x - copies[best].first));
		x = rend + 1;
	}
	free(ix);
	free(hp.h);
	/* Trailing holes were never acknowledged: the epoch ends before. */
	while (n && rg[n - 1].copy < 0)
		n--;
	if (!n) {
		free(rg);
		return;
	}
	*end = rg[n - 1].first + rg[n - 1].n - 1;
	*ranges = rg;
	*nranges = n;
}

/* ---- helpers ------------------------------------------------------------ */

static struct hs_peers *peers(struct hs_recovery *rc)
{
	return rc->sv->peers;
}

static struct rep *cur_ep(struct hs_recovery *rc)
{
	return &rc->eps[rc->cur];
}

/* The link of nodeset member i of the current epoch, or -1. */
static int member_idx(struct hs_recovery *rc, int i)
{
	int idx = hs_serve_peer_idx(rc->sv, cur_ep(rc)->e.nodes[i]);

	return idx >= 0 && idx < MAX_PEERS ? idx : -1;
}

static int in_nodeset(struct hs_recovery *rc, int idx)
{
	for (int i = 0; i < cur_ep(rc)->e.nn; i++)
		if (member_idx(rc, i) == idx)
			return 1;
	return 0;
}

static void forget_all(struct hs_recovery *rc)
{
	for (int i = 0; i < MAX_PEERS; i++) {
		struct rpeer *p = &rc->pr[i];

		if (p->id)
			hs_peers_forget(peers(rc), i, p->id);
		p->id = 0;
		p->state = P_IDLE;
		p->target = 0;
		p->wnext = p->wsent = 0;
	}
}

static void digest_reset(struct hs_recovery *rc)
{
	hs_buf_reset(&rc->dbuf);
	rc->ncp = 0;
	hs_buf_reset(&rc->wbuf);
	rc->nwr = 0;
}

static void rc_free(struct hs_recovery *rc)
{
	hs_buf_free(&rc->dbuf);
	hs_buf_free(&rc->wbuf);
	free(rc->cp);
	free(rc->dc);
	free(rc->wr);
	free(rc->eps);
	free(rc);
}

/* Stop everything in flight; the register change (if any) is not ours to
 * stop. */
static void rc_stop(struct hs_recovery *rc)
{
	forget_all(rc);
	if (rc->timer)
		hs_loop_timer_cancel(rc->sv->loop, rc->timer);
	rc->timer = 0;
	LIST_REMOVE(rc, link);
	rc->s->recov = NULL;
}

static void finish(struct hs_recovery *rc, int status)
{
	struct serve *sv = rc->sv;
	struct sstream *s = rc->s;
	hs_recovery_done_fn *done = rc->done;

	if (status)
		hs_warn("log %llu: recovery for epoch %u failed: %s", (unsigned long long)rc->log,
			rc->epoch, hs_strerror(status));
	rc_stop(rc);
	rc_free(rc);
	done(sv, s, status);
}

static void progress(struct hs_recovery *rc)
{
	rc->progress_ms = hs_now_ms();
}

/* ---- deadline and CLEAN wait --------------------------------------------- */

static void on_timer(struct hs_loop *l, void *arg)
{
	struct hs_recovery *rc = arg;
	uint64_t now = hs_now_ms(), due = rc->progress_ms + HS_RECOVERY_DEADLINE_MS;

	rc->timer = 0;
	if (rc->step == ST_CLEAN) {
		/* Best effort: go on without the missing RESULTs. */
		step_enter(rc, ST_CLEAN + 1);
		return;
	}
	if (now < due) {
		rc->timer = hs_loop_timer(l, due - now, on_timer, rc);
		return;
	}
	hs_warn("log %llu: recovery of epoch %u: no progress for %u ms",
		(unsigned long long)rc->log, cur_ep(rc)->e.epoch, HS_RECOVERY_DEADLINE_MS);
	finish(rc, -HS_EUNAVAIL);
}

static void arm(struct hs_recovery *rc, uint64_t ms)
{
	if (rc->timer)
		hs_loop_timer_cancel(rc->sv->loop, rc->timer);
	rc->timer = hs_loop_timer(rc->sv->loop, ms, on_timer, rc);
}

/* ---- SEAL ----------------------------------------------------------------- */

static int count_state(struct hs_recovery *rc, int state)
{
	int n = 0;

	for (int i = 0; i < MAX_PEERS; i++)
		n += rc->pr[i].state == state;
	return n;
}

static void on_sealed(void *arg, int idx, const struct hs_frame *f)
{
	struct rpeer *p = arg;
	struct hs_recovery *rc = p->rc;
	struct rep *ep = cur_ep(rc);
	struct hs_sealed m;
	uint32_t e;
	uint64_t lng, max;

	p->id = 0;
	if (!f) {
		p->state = P_IDLE; /* peer_up sends it again */
		return;
	}
	if (rc->step != ST_SEAL)
		return; /* cannot happen: ids are forgotten when the step ends */
	if (f->type != HS_MSG_SEALED || hs_msg_sealed_dec(f->body, f->body_len, &m) < 0 ||
	    m.status < 0) {
		hs_warn("log %llu: SEAL on %s failed: %s", (unsigned long long)rc->log,
			hs_peers_addr(peers(rc), idx),
			f->type == HS_MSG_SEALED && hs_msg_sealed_dec(f->body, f->body_len, &m) == 0
				? hs_strerror(m.status) : "bad reply");
		p->state = P_FAILED;
		return;
	}
	if (m.seal >= rc->epoch || m.soft_seal >= rc->epoch) {
		hs_info("log %llu: %s is sealed at epoch %u: a newer sequencer exists",
			(unsigned long long)rc->log, hs_peers_addr(peers(rc), idx),
			m.seal > m.soft_seal ? m.seal : m.soft_seal);
		finish(rc, -HS_ESEALED);
		return;
	}
	while (hs_sealed_next(&m, &e, &lng, &max) == 1)
		if (e == ep->e.epoch && lng > rc->lng && HS_LSN_EPOCH(lng) == e)
			rc->lng = lng;
	if (m.trim > rc->trim)
		rc->trim = m.trim;
	p->state = P_OK;
	progress(rc);
	if (count_state(rc, P_OK) >= rc->fmaj)
		step_enter(rc, ST_DIGEST);
}

static void seal_send(struct hs_recovery *rc, int idx)
{
	struct rpeer *p = &rc->pr[idx];
	struct hs_buf *out = hs_peers_out(peers(rc), idx);
	struct hs_seal m = { rc->log, rc->ballot, 0, rc->lce };

	if (!out || p->id || p->state == P_OK)
		return;
	p->id = hs_peers_next_id(peers(rc));
	p->state = P_BUSY;
	hs_peers_expect(peers(rc), idx, p->id, on_sealed, p, 0);
	hs_msg_seal_enc(out, p->id, &m);
}

static void seal_start(struct hs_recovery *rc)
{
	struct rep *ep = cur_ep(rc);

	rc->lng = 0;
	rc->trim = 0;
	digest_reset(rc);
	if (!ep->e.r)
		ep->e.r = 1;
	if (!ep->e.nn) {
		/* No peer could have been given a record of it. */
		ep->lng = ep->end = 0;
		step_enter(rc, ST_CLEAN + 1);
		return;
	}
	rc->fmaj = ep->e.nn - ep->e.r + 1;
	if (rc->fmaj < 1)
		rc->fmaj = 1;
	for (int i = 0; i < ep->e.nn; i++) {
		int idx = member_idx(rc, i);

		if (idx >= 0)
			seal_send(rc, idx);
	}
}

/* ---- DIGEST --------------------------------------------------------------- */

static void digest_add(struct hs_recovery *rc, uint64_t first, const uint8_t *run, size_t len)
{
	struct hs_run r;

	if (hs_run_parse(run, len, &r) < 0 || !hs_run_lsn_ok(first, r.nrecords) ||
	    HS_LSN_EPOCH(first) != cur_ep(rc)->e.epoch)
		return; /* a copy we cannot use counts as absent */
	if (rc->ncp == rc->capcp) {
		rc->capcp = rc->capcp ? 2 * rc->capcp : 64;
		rc->cp = hs_xrealloc(rc->cp, rc->capcp * sizeof(*rc->cp));
		rc->dc = hs_xrealloc(rc->dc, rc->capcp * sizeof(*rc->dc));
	}
	rc->cp[rc->ncp] = (struct hs_rcopy){ first, r.nrecords, r.flags, r.wave };
	rc->dc[rc->ncp] = (struct dcopy){ rc->dbuf.len, len };
	rc->ncp++;
	hs_buf_append(&rc->dbuf, run, len);
}

static void digest_check(struct hs_recovery *rc)
{
	if (count_state(rc, P_BUSY))
		return;
	if (count_state(rc, P_OK) >= rc->fmaj) {
		step_enter(rc, ST_WRITE);
		return;
	}
	if (++rc->rounds > MAX_ROUNDS) {
		/* A peer that keeps failing its digest must not keep us busy
		 * forever (each round counts as progress). */
		finish(rc, -HS_EUNAVAIL);
		return;
	}
	hs_info("log %llu: digest of epoch %u incomplete: sealing again",
		(unsigned long long)rc->log, cur_ep(rc)->e.epoch);
	forget_all(rc);
	step_enter(rc, ST_SEAL);
}

static void on_digest(void *arg, int idx, const struct hs_frame *f)
{
	struct rpeer *p = arg;
	struct hs_recovery *rc = p->rc;
	struct hs_records rm;
	struct hs_end em;
	uint64_t first;
	const uint8_t *run;
	size_t len;

	if (!f) {
		p->id = 0;
		p->state = P_FAILED;
		digest_check(rc);
		return;
	}
	switch (f->type) {
	case HS_MSG_RECORDS:
		if (hs_msg_records_dec(f->body, f->body_len, &rm) < 0 || rm.stream != p->sid)
			break;
		while (hs_records_next(&rm, &first, &run, &len) == 1)
			digest_add(rc, first, run, len);
		progress(rc);
		return;
	case HS_MSG_GAP:
		return; /* NORECORDS, TRIM, CHECKSUM: nothing to keep */
	case HS_MSG_END:
		if (hs_msg_end_dec(f->body, f->body_len, &em) < 0)
			break;
		hs_peers_forget(peers(rc), idx, p->id);
		p->id = 0;
		p->state = em.status ? P_FAILED : P_OK;
		if (em.status)
			hs_warn("log %llu: digest from %s failed: %s", (unsigned long long)rc->log,
				hs_peers_addr(peers(rc), idx), hs_strerror(em.status));
		progress(rc);
		digest_check(rc);
		return;
	case HS_MSG_RESULT:
		break; /* START refused as a whole */
	default:
		return;
	}
	hs_warn("log %llu: digest from %s: unexpected %s", (unsigned long long)rc->log,
		hs_peers_addr(peers(rc), idx), hs_msg_name(f->type));
	hs_peers_forget(peers(rc), idx, p->id);
	p->id = 0;
	p->state = P_FAILED;
	digest_check(rc);
}

static void digest_start(struct hs_recovery *rc)
{
	uint32_t e = cur_ep(rc)->e.epoch;
	uint64_t from = rc->lng > HS_LSN(e, 0) ? rc->lng : HS_LSN(e, 0);

	if (rc->trim > from)
		from = rc->trim < HS_LSN(e, UINT32_MAX) ? rc->trim : HS_LSN(e, UINT32_MAX);
	/* SEALs still in flight are not needed any more. */
	for (int i = 0; i < MAX_PEERS; i++) {
		struct rpeer *p = &rc->pr[i];

		if (p->state == P_OK)
			continue;
		if (p->id)
			hs_peers_forget(peers(rc), i, p->id);
		p->id = 0;
		p->state = P_IDLE;
	}
	for (int i = 0; i < MAX_PEERS; i++) {
		struct rpeer *p = &rc->pr[i];
		struct hs_buf *out;
		struct hs_start m;

		if (p->state != P_OK)
			continue;
		p->state = P_IDLE;
		if (p->id) {
			hs_peers_forget(peers(rc), i, p->id);
			p->id = 0;
		}
		out = hs_peers_out(peers(rc), i);
		if (!out || from >= HS_LSN(e, UINT32_MAX)) {
			/* Down meanwhile, or nothing left to read (fully trimmed). */
			p->state = out ? P_OK : P_FAILED;
			continue;
		}
		m = (struct hs_start){ .stream = ++rc->sv->next_sid, .log = rc->log,
				       .from = from + 1, .until = HS_LSN(e, UINT32_MAX),
				       .flags = HS_READ_IGNORE_RELEASED };
		p->sid = m.stream;
		p->id = hs_peers_next_id(peers(rc));
		p->state = P_BUSY;
		hs_peers_expect(peers(rc), i, p->id, on_digest, p, 1);
		hs_msg_start_enc(out, p->id, &m);
	}
	digest_check(rc);
}

/* ---- DECIDE: build the RECOVERY runs --------------------------------------- */

static void wrun_close(struct hs_recovery *rc, struct hs_run_builder *b, uint64_t first)
{
	size_t off = b->start, len = hs_run_end(b);

	if (!len)
		return;
	if (rc->nwr == rc->capwr) {
		rc->capwr = rc->capwr ? 2 * rc->capwr : 16;
		rc->wr = hs_xrealloc(rc->wr, rc->capwr * sizeof(*rc->wr));
	}
	rc->wr[rc->nwr++] = (struct wrun){ first, off, len };
}

/* Build the runs for range g: records of the winning copy, or holes;
 * flags adds HS_RUN_BRIDGE for the bridge. */
static void build_range(struct hs_recovery *rc, const struct hs_rrange *g, uint8_t flags,
			uint64_t lng)
{
	struct hs_run_builder b;
	struct hs_run src;
	struct hs_run_iter it;
	uint64_t first = g->first, ts;
	const uint8_t *p;
	uint32_t len, skip = g->off;
	int hole = g->copy < 0;

	if (!hole) {
		hs_run_parse_nocrc(rc->dbuf.data + rc->dc[g->copy].off, rc->dc[g->copy].len, &src);
		hs_run_iter_init(&it, &src);
		while (skip-- && hs_run_next(&it, NULL, NULL, NULL))
			;
	}
	flags |= HS_RUN_RECOVERY | (hole && !(flags & HS_RUN_BRIDGE) ? HS_RUN_HOLE : 0);
	hs_run_begin(&b, &rc->wbuf, flags, lng, rc->ballot, rc->cs, (uint16_t)rc->ncs);
	for (uint32_t i = 0; i < g->n; i++) {
		if (hole) {
			ts = 0;
			p = NULL;
			len = 0;
		} else if (!hs_run_next(&it, &ts, &p, &len)) {
			break; /* cannot happen: the range lies inside the copy */
		}
		if (b.n && rc->wbuf.len - b.start + len > RUN_BYTES) {
			wrun_close(rc, &b, first);
			first = g->first + i;
			hs_run_begin(&b, &rc->wbuf, flags, lng, rc->ballot, rc->cs,
				     (uint16_t)rc->ncs);
		}
		hs_run_add(&b, ts, p, len);
	}
	wrun_close(rc, &b, first);
}

/* Pick up to r targets (sealed peers first) into rc->cs; returns how many. */
static int pick_targets(struct hs_recovery *rc)
{
	struct rep *ep = cur_ep(rc);
	int n = 0;

	for (int pass = 0; pass < 2 && n < ep->e.r; pass++) {
		for (int i = 0; i < ep->e.nn && n < ep->e.r; i++) {
			int idx = member_idx(rc, i);
			struct rpeer *p;

			if (idx < 0 || !hs_peers_is_up(peers(rc), idx))
				continue;
			p = &rc->pr[idx];
			if (p->target || (pass == 0 && p->state != P_OK))
				continue;
			p->target = 1;
			rc->cs[n++] = ep->e.nodes[i];
		}
	}
	return n;
}

static void decide(struct hs_recovery *rc)
{
	struct rep *ep = cur_ep(rc);
	uint32_t e = ep->e.epoch;
	struct hs_rrange *rg;
	size_t nrg;
	uint64_t lng = rc->lng > HS_LSN(e, 0) ? rc->lng : HS_LSN(e, 0), dl = lng, end;

	if (rc->trim > dl)
		dl = rc->trim < HS_LSN(e, UINT32_MAX) ? rc->trim : HS_LSN(e, UINT32_MAX);
	hs_recovery_decide(dl, rc->cp, rc->ncp, &rg, &nrg, &end);
	if (end == HS_LSN(e, 0)) {
		ep->lng = ep->end = 0; /* nothing was ever stored: empty */
	} else {
		ep->lng = lng;
		ep->end = end;
	}
	for (int i = 0; i < MAX_PEERS; i++)
		rc->pr[i].target = 0;
	rc->ncs = pick_targets(rc);
	hs_buf_reset(&rc->wbuf);
	rc->nwr = 0;
	for (size_t i = 0; i < nrg; i++)
		build_range(rc, &rg[i], 0, ep->lng);
	if (ep->end && HS_LSN_ESN(ep->end) != UINT32_MAX) {
		struct hs_rrange br = { ep->end + 1, 1, -1, 0 };

		build_range(rc, &br, HS_RUN_BRIDGE, ep->lng);
	}
	hs_info("log %llu: epoch %u decided: lng %u, end %u, %zu ranges, %zu runs from %zu copies",
		(unsigned long long)rc->log, e, HS_LSN_ESN(ep->lng), HS_LSN_ESN(ep->end), nrg,
		rc->nwr, rc->ncp);
	free(rg);
	/* The digest is no longer needed. */
	hs_buf_free(&rc->dbuf);
	rc->ncp = 0;
}

/* ---- WRITE ---------------------------------------------------------------- */

static void store_send(struct hs_recovery *rc, int idx);

static void on_stored(void *arg, int idx, const struct hs_frame *f)
{
	struct rpeer *p = arg;
	struct hs_recovery *rc = p->rc;
	struct hs_stored_rd rd;
	int32_t st;
	uint32_t seal;
	int bad = 0;

	p->id = 0;
	if (f && f->type == HS_MSG_STORED && hs_msg_stored_dec(f->body, f->body_len, &rd) == 0 &&
	    rd.nruns == p->wsent) {
		while (hs_stored_next(&rd, &st, &seal) == 1) {
			if (st == -HS_ESEALED) {
				hs_info("log %llu: recovery write refused by %s (sealed at %u)",
					(unsigned long long)rc->log,
					hs_peers_addr(peers(rc), idx), seal);
				finish(rc, -HS_ESEALED);
				return;
			}
			if (st < 0 && !bad) {
				bad = st;
				hs_warn("log %llu: recovery write to %s failed: %s",
					(unsigned long long)rc->log,
					hs_peers_addr(peers(rc), idx), hs_strerror(st));
			}
		}
	} else {
		bad = -HS_EUNAVAIL;
	}
	if (bad) {
		p->state = P_FAILED;
		p->target = 0;
		write_drive(rc);
		return;
	}
	progress(rc);
	p->wnext += p->wsent;
	p->wsent = 0;
	if (p->wnext < rc->nwr) {
		store_send(rc, idx);
		return;
	}
	p->state = P_OK;
	write_drive(rc);
}

/* Send idx the next STORE frame of runs (as many as its frame limit takes,
 * at least one). */
static void store_send(struct hs_recovery *rc, int idx)
{
	struct rpeer *p = &rc->pr[idx];
	struct hs_buf *out = hs_peers_out(peers(rc), idx);
	size_t max = hs_peers_max_frame(peers(rc), idx);
	struct hs_msg_wr w;

	if (!out) {
		p->state = P_FAILED;
		p->target = 0;
		return;
	}
	p->id = hs_peers_next_id(peers(rc));
	p->state = P_BUSY;
	hs_peers_expect(peers(rc), idx, p->id, on_stored, p, 0);
	hs_msg_store_begin(&w, out, p->id);
	p->wsent = 0;
	while (p->wnext + p->wsent < rc->nwr) {
		const struct wrun *r = &rc->wr[p->wnext + p->wsent];

		if (p->wsent && hs_msg_wr_size(&w) + 20 + r->len > max)
			break;
		hs_msg_store_run(&w, rc->log, r->first, rc->wbuf.data + r->off, r->len);
		p->wsent++;
	}
	hs_msg_wr_end(&w);
}

/* Keep r targets busy or done; enough done ends the step. */
static void write_drive(struct hs_recovery *rc)
{
	struct rep *ep = cur_ep(rc);
	int ntarget = 0, ndone = 0;

	/* Targets chosen by decide() start here. */
	for (int i = 0; i < MAX_PEERS && rc->nwr; i++)
		if (rc->pr[i].target && rc->pr[i].state == P_IDLE && !rc->pr[i].id)
			store_send(rc, i);
	for (int i = 0; i < MAX_PEERS; i++) {
		ntarget += rc->pr[i].target;
		ndone += rc->pr[i].target && rc->pr[i].state == P_OK;
	}
	if (ndone >= ep->e.r || !rc->nwr) {
		step_enter(rc, ST_CLEAN);
		return;
	}
	/* Fill up with UP members not used yet (never-tried ones first, then
	 * ones that failed before and came back). */
	for (int pass = 0; pass < 2 && ntarget < ep->e.r; pass++) {
		for (int i = 0; i < ep->e.nn && ntarget < ep->e.r; i++) {
			int idx = member_idx(rc, i);
			struct rpeer *p;

			if (idx < 0 || !hs_peers_is_up(peers(rc), idx))
				continue;
			p = &rc->pr[idx];
			if (p->target || (pass == 0 && p->state == P_FAILED))
				continue;
			p->target = 1;
			p->wnext = p->wsent = 0;
			ntarget++;
			store_send(rc, idx);
			if (!p->target)
				ntarget--;
		}
	}
}

/* ---- CLEAN ---------------------------------------------------------------- */

static void on_clean_result(void *arg, int idx, const struct hs_frame *f)
{
	struct rpeer *p = arg;
	struct hs_recovery *rc = p->rc;
	struct hs_result m;

	p->id = 0;
	p->state = P_OK;
	if (f && f->type == HS_MSG_RESULT && hs_msg_result_dec(f->body, f->body_len, &m) == 0 &&
	    m.status < 0)
		hs_info("log %llu: CLEAN of epoch %u on %s: %s", (unsigned long long)rc->log,
			cur_ep(rc)->e.epoch, hs_peers_addr(peers(rc), idx), hs_strerror(m.status));
	if (!count_state(rc, P_BUSY))
		step_enter(rc, ST_CLEAN + 1);
}

static void clean_start(struct hs_recovery *rc)
{
	struct rep *ep = cur_ep(rc);
	struct hs_clean m = { rc->log, ep->e.epoch, rc->ballot, ep->lng, ep->end };

	forget_all(rc);
	for (int i = 0; i < ep->e.nn; i++) {
		int idx = member_idx(rc, i);
		struct rpeer *p;
		struct hs_buf *out;

		if (idx < 0 || !(out = hs_peers_out(peers(rc), idx)))
			continue;
		p = &rc->pr[idx];
		if (p->id)
			continue; /* a node id listed twice */
		p->id = hs_peers_next_id(peers(rc));
		p->state = P_BUSY;
		hs_peers_expect(peers(rc), idx, p->id, on_clean_result, p, 0);
		hs_msg_clean_enc(out, p->id, &m);
	}
	if (!count_state(rc, P_BUSY))
		step_enter(rc, ST_CLEAN + 1);
	else
		arm(rc, CLEAN_WAIT_MS);
}

/* ---- the register change ---------------------------------------------- */

static int fn_mark_clean(void *arg, const uint8_t *cur, size_t len, uint64_t version,
			 struct hs_buf *out)
{
	struct hs_recovery *rc = arg;
	struct hs_lrec r;
	int rc_ = hs_lrec_dec(cur, len, &r);

	if (rc_ != 1) {
		hs_lrec_free(&r);
		return rc_ < 0 ? rc_ : -HS_ENOENT;
	}
	if (r.epoch != rc->epoch) {
		hs_lrec_free(&r);
		return -HS_ESEALED;
	}
	for (size_t i = 0; i < rc->nep; i++) {
		struct hs_lepoch *e = hs_lrec_find_epoch(&r, rc->eps[i].e.epoch);

		if (!e || (e->flags & HS_LEPOCH_CLEAN))
			continue;
		e->flags |= HS_LEPOCH_CLEAN;
		e->lng = rc->eps[i].lng;
		e->end = rc->eps[i].end;
		e->ballot = rc->ballot;
	}
	hs_lrec_compact(&r);
	hs_lrec_enc(&r, out);
	hs_lrec_free(&r);
	return 0;
}

static void on_reg_done(void *arg, int status, const uint8_t *value, size_t len,
			uint64_t version)
{
	struct hs_recovery *rc = arg;
	struct hs_lrec r;

	if (rc->dead || status == -ECANCELED) {
		/* Cancelled meanwhile (the stream is gone): nobody to tell. */
		if (!rc->dead)
			rc_stop(rc);
		rc_free(rc);
		return;
	}
	if (status == 0) {
		if (hs_lrec_dec(value, len, &r) == 1) {
			hs_lrec_free(&rc->s->lr);
			rc->s->lr = r;
		} else {
			hs_lrec_free(&r);
			status = -HS_EDATA;
		}
	}
	if (status == 0)
		hs_info("log %llu: epochs before %u recovered (lce %u) in %llu ms",
			(unsigned long long)rc->log, rc->epoch, rc->s->lr.lce,
			(unsigned long long)(hs_now_ms() - rc->start_ms));
	finish(rc, status);
}

static void reg_start(struct hs_recovery *rc)
{
	uint8_t key[2 + 8];
	size_t klen = hs_meta_lkey(key, rc->log);
	int r;

	forget_all(rc);
	if (rc->timer)
		hs_loop_timer_cancel(rc->sv->loop, rc->timer);
	rc->timer = 0;
	r = hs_serve_reg_change(rc->sv, key, klen, fn_mark_clean, on_reg_done, rc);
	if (r < 0)
		finish(rc, r);
}

/* ---- steps -------------------------------------------------------------- */

static void step_enter(struct hs_recovery *rc, int step)
{
	if (step == ST_CLEAN + 1) {
		forget_all(rc);
		rc->rounds = 0;
		if (++rc->cur < rc->nep)
			step = ST_SEAL;
		else
			step = ST_REG;
	}
	rc->step = step;
	progress(rc);
	switch (step) {
	case ST_SEAL:
		forget_all(rc);
		arm(rc, HS_RECOVERY_DEADLINE_MS);
		hs_debug("log %llu: recovering epoch %u (ballot %u)", (unsigned long long)rc->log,
			 cur_ep(rc)->e.epoch, rc->ballot);
		seal_start(rc);
		break;
	case ST_DIGEST:
		digest_start(rc);
		break;
	case ST_WRITE:
		/* Every digest stream has ended: no request is in flight. */
		decide(rc);
		for (int i = 0; i < MAX_PEERS; i++)
			rc->pr[i].state = P_IDLE;
		write_drive(rc);
		break;
	case ST_CLEAN:
		clean_start(rc);
		break;
	case ST_REG:
		reg_start(rc);
		break;
	}
}

/* ---- API ------------------------------------------------------------------ */

void hs_recovery_start(struct serve *sv, struct sstream *s, hs_recovery_done_fn *done)
{
	struct hs_recovery *rc;
	size_t n = 0;

	for (size_t i = 0; i < s->lr.nepochs; i++) {
		const struct hs_lepoch *e = &s->lr.epochs[i];

		n += e->epoch < s->epoch && !(e->flags & HS_LEPOCH_CLEAN);
	}
	if (!n || !s->epoch) {
		done(sv, s, 0);
		return;
	}
	rc = hs_xcalloc(1, sizeof(*rc));
	rc->sv = sv;
	rc->s = s;
	rc->done = done;
	rc->log = s->rec.log;
	rc->epoch = s->epoch;
	rc->ballot = s->epoch - 1;
	rc->lce = s->lr.lce;
	rc->start_ms = hs_now_ms();
	rc->eps = hs_xcalloc(n, sizeof(*rc->eps));
	for (size_t i = 0; i < s->lr.nepochs; i++) {
		const struct hs_lepoch *e = &s->lr.epochs[i];

		if (e->epoch < s->epoch && !(e->flags & HS_LEPOCH_CLEAN))
			rc->eps[rc->nep++].e = *e;
	}
	for (int i = 0; i < MAX_PEERS; i++) {
		rc->pr[i].rc = rc;
		rc->pr[i].idx = i;
	}
	s->recov = rc;
	LIST_INSERT_HEAD(&recoveries, rc, link);
	hs_info("log %llu: epoch %u recovers %zu earlier epoch(s), ballot %u",
		(unsigned long long)rc->log, rc->epoch, rc->nep, rc->ballot);
	step_enter(rc, ST_SEAL);
}

void hs_recovery_cancel(struct serve *sv, struct sstream *s)
{
	struct hs_recovery *rc = s->recov;

	if (!rc)
		return;
	rc_stop(rc);
	if (rc->step == ST_REG) {
		rc->dead = 1; /* freed by on_reg_done */
		return;
	}
	rc_free(rc);
}

void hs_recovery_peer_up(struct serve *sv, int idx)
{
	struct hs_recovery *rc, *next;

	if (idx < 0 || idx >= MAX_PEERS)
		return;
	for (rc = LIST_FIRST(&recoveries); rc; rc = next) {
		next = LIST_NEXT(rc, link);
		if (rc->sv != sv || !in_nodeset(rc, idx))
			continue;
		if (rc->step == ST_SEAL && rc->pr[idx].state != P_OK) {
			rc->pr[idx].state = P_IDLE;
			seal_send(rc, idx);
		} else if (rc->step == ST_WRITE && !rc->pr[idx].target) {
			write_drive(rc);
		}
	}
}

void hs_recovery_peer_down(struct serve *sv, int idx)
{
	/* Requests on the link were completed with NULL before this runs (the
	 * callbacks moved their step on); nothing else waits on a link. */
}
