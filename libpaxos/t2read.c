/*
 * t2read.c - hs-serve's Tier2 read path (t2read.h).
 *
 * DESIGN.  A read whose next LSN is at or below the Tier1 trim point is
 * served from the segments the offloader published in the log's manifest
 * register "t/<log>" (manifest.h), then handed back to read.c's merged peer
 * read once its next LSN is above the trim point: r->next only ever moves
 * forward, through the same DELIVER/READ_GAP callbacks, so nothing is sent
 * twice or skipped at the boundary.  A segment holds every LSN of its
 * manifest range (a record or a stored HOLE/BRIDGE/TRIM/DATALOSS gap, sent
 * as the same READ_GAP kind), except the LSNs that do not exist, which the
 * peer path never sends either.  LSNs at or below the trim point that no
 * segment covers (expired by retention, or trimmed before offload) are one
 * TRIM gap, as before.
 *
 * CACHES (loop thread only).  Per log (struct t2log): the decoded manifest
 * register, read with a no-op register change and dropped after a
 * TIER_PUBLISH handled here or when a lookup misses (then read again, once
 * per position); the decoded manifest objects of refs (immutable); and per
 * segment its index (struct t2seg: the block table from the footer, plus
 * the slot counts of SLOTS below).  The
 * block cache holds decoded blocks (plaintext plus an entry table) keyed by
 * (segment, block), in one LRU bounded by --tier-cache bytes; blocks a read
 * is on are pinned.  The budget covers the blocks being fetched too (at
 * their size from the index): a block asked for when the cache is full
 * evicts the least recently used unpinned one at once and reuses its
 * buffers, whose pages are mapped already (fresh megabytes fault page by
 * page and are zeroed: about a tenth of hs-serve's CPU time on a scan
 * when every block got new ones).
 *
 * READ-AHEAD.  A read counts the blocks it has read one after the other
 * (t2rd.run).  On block i it keeps blocks i+1 .. i+2+2*run asked for (at
 * most T2_AHEAD_MAX = 32, and never more than half the cache, so a scan
 * does not evict what it fetched ahead), and new groups of consecutive
 * blocks are fetched with one ranged GET each (struct rahead: segment.c
 * asks for one block per get, the shim answers the rest of the group from
 * memory) whose size grows with run: 1, 2, 4, 8, then T2_GROUP_MAX = 16
 * blocks, at most half the window, and a group starts only once all of it
 * fits in the window.  A steady scan so keeps one or two large GETs in
 * flight on different workers (with the default 64 MiB cache, 11 blocks of
 * 1 MiB each: each request has a fixed latency and price on S3), while a
 * read that stops after a block or two has not made the store send
 * megabytes for it.  (On the local test rig, which is CPU-bound per byte,
 * this shape measures the same as 4-block groups: bench/README.md.)
 * Read-ahead stops at the end of a segment: the next one is opened when
 * the read gets there.
 *
 * MANIFEST CACHE: STALE COPIES.  The cached register may be older than the
 * objects: an EXPIRE handled by another hs-serve (the stream's sequencer
 * moved) never drops it here, and retention may delete a segment a read
 * looked up before the EXPIRE.  So a missing object (-HS_ENOENT, which the
 * workers pass on as is) is not an error at once: the read drops the
 * cached register and reads it again, once per position (t2rd.gone_at;
 * once per resolution for positions): an LSN the new copy does not cover is
 * a TRIM gap like any expired one, and only an object the fresh manifest
 * still names is -HS_EDATA.  A read that starts below the cached `expired`
 * is a lookup miss: read again once, as above.
 *
 * I/O.  libtier's backends block (libcurl easy handles, file I/O), so each
 * request runs on one of a few worker threads (default 4), each with its
 * own struct hs_tier (a backend object is used by one thread at a time) and
 * a few open segment handles.  Workers take jobs from one FIFO and put them
 * on a done list, then hs_loop_async_notify(): the loop's eventfd callback
 * applies the results and pumps the reads waiting for them (through
 * hs_serve_read_grant).  A worker also opens the segment (one ranged GET
 * of its tail, no LIST, no HEAD: the size comes from the manifest entry),
 * checks the footer hash against the entry's, fetches the block by range,
 * checks its CRC32C or AEAD tag, and parses it into the entry table, so the
 * loop thread never touches the backend or decrypts.  curl multi would
 * keep everything on the loop but needs a second, non-blocking
 * implementation of every backend; the pool reuses libtier as it is.
 * Copies: a group is received into one buffer reserved at its full size
 * up front (taken from a pool that holds as many as groups were ever in
 * flight at once, not one per worker), a group of one block straight into
 * segment.c's buffer; the block's plaintext and entry table are sized from
 * the index before segment.c fills them (no doubling and copying).  Still,
 * every byte is copied three times in a worker (from curl's buffer into
 * the group buffer, into segment.c's raw buffer, into the plaintext) and
 * walked twice (check, parse): segment.c has no call that checks a block
 * in a buffer the caller owns (a prototype saved ~3 % of hs-serve's CPU
 * on an S3 scan; bench/README.md).  The curl handle of a worker is reused
 * (reset, not cleaned up), so its connection stays open between GETs.
 * blk_want() may evict: a caller pins (or is done with) the blocks it
 * holds before asking for more.
 *
 * ERRORS.  Every failure ends the reads waiting for that object with its
 * code (-HS_ECHECKSUM, -HS_EDATA, -HS_EPERM, -HS_EUNAVAIL after the
 * backend's retries, ...), logged once with the backend's text, which names
 * the key and the block; a failed block or segment is not cached, so a
 * later read tries again.  A missing object is -HS_EDATA only when a fresh
 * copy of the manifest still names it (MANIFEST CACHE above); it is logged
 * as a warning when first missed.
 */
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "manifest.h"
#include "merge.h"
#include "pos.h"
#include "run.h"
#include "segment.h"
#include "serve.h"
#include "t2read.h"

#define T2_CACHE_DEFAULT (64ull << 20)
#define T2_THREADS_DEFAULT 4
#define T2_THREADS_MAX 16
#define T2_HANDLES 8           /* open segments per worker */
#define T2_AHEAD_MAX 32        /* blocks asked for ahead of a sequential scan */
#define T2_GROUP_MAX 16        /* consecutive blocks per ranged GET, at most */
#define T2_RUN_TARGET (1u << 20)

enum { J_OBJ = 1, J_SEG, J_BLK };
enum { S_NONE = 0, S_LOADING, S_OK };

struct t2ent {
	uint64_t lsn, hi, ts;
	uint32_t off, len;
	uint8_t kind;             /* 0: a record, else the gap's kind */
};

struct t2seg;

/* A decoded block in the cache. */
struct t2blk {
	struct t2seg *seg;
	uint32_t bi;
	int state;
	int refs;                 /* reads on it */
	size_t bytes;
	struct hs_buf plain;
	struct t2ent *ents;
	uint32_t n, cap;
	struct t2blk *prev, *next; /* LRU (READY only), most recent first */
};

/* A segment's index, from its footer. */
struct t2seg {
	struct t2log *lg;
	struct hs_man_entry e;
	char key[HS_MAN_KEY_MAX];
	int state;
	uint64_t first_lsn, last_lsn;
	uint32_t nblocks;
	struct hs_seg_block *blocks;
	struct t2blk **blk;       /* nblocks slots */
	/* positions: slots per whole block (SLOTS_UNKNOWN: not counted yet;
	 * NULL: none counted) and of the whole segment */
	uint64_t *bslots;
	uint64_t slots;
	int slots_ok;
	struct t2seg *link;
};

struct t2obj {
	struct hs_man_ref ref;
	int state;
	struct hs_man_obj o;
	struct t2obj *link;
};

struct t2hw {
	void (*fn)(struct serve *sv, void *arg);
	void *arg;
};

struct t2log {
	uint64_t log;
	int state;
	struct hs_man man;
	uint64_t gen;             /* +1 per load started: drops stale answers */
	struct t2hw *hw;          /* hs_t2_head waiters */
	size_t nhw;
	struct t2obj *objs;
	struct t2seg *segs;
	struct t2log *link;
	struct hs_t2 *t;
};

/* One request for a worker; results filled there. */
struct job {
	int type;
	struct job *next;
	char key[HS_MAN_KEY_MAX];
	uint64_t size;
	uint8_t hash[32];
	uint32_t bi, nb;          /* J_BLK: blocks bi .. bi + nb - 1 */
	void *target;             /* t2obj, t2seg or the first t2blk (loop-owned) */
	struct t2blk *blks[T2_GROUP_MAX];
	int brc[T2_GROUP_MAX];
	int rc;
	char err[HS_TIER_ERRLEN];
	/* J_OBJ */
	struct hs_man_obj o;
	/* J_SEG */
	struct hs_seg_info info;
	struct hs_seg_block *blocks;
	/* J_BLK: parsed into the target's plain/ents, which the loop does not
	 * touch while it is loading */
};

/* A backend that serves ranged gets from one span fetched ahead with a
 * single GET (segment.h fetches one block per get): consecutive blocks cost
 * one request, not one each.  Used by one worker thread only. */
struct rahead {
	struct hs_tier base;      /* first: a struct hs_tier for segment.c */
	struct hs_tier *real;
	char key[HS_MAN_KEY_MAX]; /* buf holds [off, off + buf.len) of key */
	uint64_t off;
	struct hs_buf buf;
	uint64_t span_off, span_len; /* the next get at span_off fetches this */
};

struct worker {
	struct hs_t2 *t;
	pthread_t th;
	struct hs_tier *tier;
	struct rahead ra;
	struct {
		char key[HS_MAN_KEY_MAX];
		struct hs_seg *s;
	} h[T2_HANDLES];
	int hnext;
};

/* The Tier2 read state of one read. */
struct t2rd {
	struct cread *r;
	struct t2log *lg;
	struct t2seg *seg;        /* the segment being read, or NULL */
	struct t2blk *blk;        /* pinned block, or NULL */
	uint32_t bi, pos;
	uint32_t run;             /* blocks read in a row: how sequential (I/O) */
	void *wait;               /* the object it waits for, or NULL */
	int kick;                 /* pump it after the current completions */
	uint64_t reloaded_at;     /* the manifest was reloaded for this next */
	uint64_t filter_ts;       /* @time: skip records before it */
	int filter;
	uint64_t t1_from;         /* @time: the Tier1 answer */
	int err;                  /* a load it waited for failed: end with it */
	uint64_t gone_at;         /* next + 1 when an object was missing there */
	/* positions (hs_t2_resolve): called instead of a pump when a wait is
	 * over; res_reloaded: the manifest was read again for a missing one */
	void (*again)(struct serve *sv, struct cread *r);
	int res_reloaded;
	struct t2rd *prev, *nextr;
};

struct hs_t2 {
	struct serve *sv;
	uint8_t key[HS_SEG_KEYLEN];
	int has_key;
	uint64_t cache_max, cache_bytes;
	uint64_t loading_bytes;   /* estimated size of the blocks being fetched */
	struct t2blk *lru_head, *lru_tail;
	struct t2log *logs;
	struct t2rd *reads;
	struct hs_buf scratch;
	/* workers */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *q_head, *q_tail, *done;
	/* buffers of the groups fetched so far, for the next ones: as many
	 * as groups were ever fetched at once, not one per worker */
	struct hs_buf io[T2_THREADS_MAX];
	int nio;
	int stop;
	int nw;
	struct worker w[T2_THREADS_MAX];
};

/* ---- workers --------------------------------------------------------------- */

static int ra_get(struct hs_tier *t, const char *key, uint64_t off, uint64_t len,
		  struct hs_buf *out)
{
	struct rahead *ra = (struct rahead *)t;
	int rc;

	if (ra->span_len && off == ra->span_off && len && len <= ra->span_len) {
		/* The first block of a group: fetch the whole group. */
		hs_buf_reset(&ra->buf);
		if (len == ra->span_len) {
			/* A group of one: no copy through buf. */
			ra->span_len = 0;
			rc = hs_tier_get(ra->real, key, off, len, out);
			return rc < 0 ? hs_tier_seterr(t, rc, "%s", hs_tier_error(ra->real)) : 0;
		}
		/* Room for all of it first: the backend appends without growing
		 * buf (each realloc copies what came so far). */
		hs_buf_reserve(&ra->buf, ra->span_len);
		rc = hs_tier_get(ra->real, key, off, ra->span_len, &ra->buf);
		ra->span_len = 0;
		if (rc < 0) {
			ra->buf.len = 0;
			return hs_tier_seterr(t, rc, "%s", hs_tier_error(ra->real));
		}
		snprintf(ra->key, sizeof(ra->key), "%s", key);
		ra->off = off;
	}
	if (ra->buf.len && len && off >= ra->off && off + len <= ra->off + ra->buf.len &&
	    !strcmp(key, ra->key)) {
		hs_buf_reset(out);
		hs_buf_append(out, ra->buf.data + (off - ra->off), len);
		return 0;
	}
	rc = hs_tier_get(ra->real, key, off, len, out);
	if (rc < 0)
		return hs_tier_seterr(t, rc, "%s", hs_tier_error(ra->real));
	return 0;
}

static int ra_head(struct hs_tier *t, const char *key, uint64_t *size)
{
	struct rahead *ra = (struct rahead *)t;
	int rc = hs_tier_head(ra->real, key, size);

	return rc < 0 ? hs_tier_seterr(t, rc, "%s", hs_tier_error(ra->real)) : 0;
}

/* Read-only: segment.c's readers only get and head. */
static const struct hs_tier_ops ra_ops = { .name = "readahead", .get = ra_get, .head = ra_head };

static struct hs_seg *w_handle(struct worker *w, struct job *j, int *rc)
{
	struct hs_t2 *t = w->t;
	struct hs_seg_ropts ro = { .key = t->has_key ? t->key : NULL, .size = j->size };
	struct hs_seg *s;
	int k;

	for (k = 0; k < T2_HANDLES; k++)
		if (w->h[k].s && !strcmp(w->h[k].key, j->key))
			return w->h[k].s;
	*rc = hs_seg_open(&w->ra.base, j->key, &ro, &s);
	if (*rc < 0)
		return NULL;
	if (memcmp(hs_seg_info(s)->hash, j->hash, 32)) {
		*rc = hs_tier_seterr(&w->ra.base, -HS_ECHECKSUM,
				     "segment '%s': its hash does not match the manifest's", j->key);
		hs_seg_close(s);
		return NULL;
	}
	k = w->hnext;
	w->hnext = (w->hnext + 1) % T2_HANDLES;
	hs_seg_close(w->h[k].s);
	snprintf(w->h[k].key, sizeof(w->h[k].key), "%s", j->key);
	w->h[k].s = s;
	return s;
}

static void w_drop(struct worker *w, const char *key)
{
	for (int k = 0; k < T2_HANDLES; k++)
		if (w->h[k].s && !strcmp(w->h[k].key, key)) {
			hs_seg_close(w->h[k].s);
			w->h[k].s = NULL;
		}
}

static int on_entry(void *arg, const struct hs_seg_entry *e)
{
	struct t2blk *b = arg;
	struct t2ent *x;

	if (b->n == b->cap) {
		b->cap = b->cap ? 2 * b->cap : 1024;
		b->ents = hs_xrealloc(b->ents, b->cap * sizeof(*b->ents));
	}
	x = &b->ents[b->n++];
	x->lsn = e->lsn;
	x->hi = e->hi;
	x->ts = e->ts;
	x->kind = e->is_gap ? (uint8_t)e->kind : 0;
	x->len = e->len;
	x->off = e->len ? (uint32_t)(e->data - b->plain.data) : 0;
	return 0;
}

/* Make b hold at least n bytes (plus the NUL hs_buf keeps room for) and
 * drop what it holds.  Sized to fit, with 1/16 to spare so a reused block
 * takes the next one without reallocating, where hs_buf's doubling would
 * give a block just over 1 MiB 2 MiB; a realloc would copy the stale
 * bytes, so the old buffer is freed instead. */
static void buf_fit(struct hs_buf *b, size_t n)
{
	hs_buf_reset(b);
	if (b->cap >= n + 1)
		return;
	free(b->data);
	b->cap = n + n / 16 + 1;
	b->data = hs_xmalloc(b->cap);
}

/* Give b's entry table room for n entries (the index says how many)
 * before parsing: no doubling and copying while on_entry fills it. */
static void ents_fit(struct t2blk *b, uint32_t n)
{
	b->n = 0;
	if (b->cap >= n)
		return;
	free(b->ents);
	b->cap = n + n / 16;
	b->ents = hs_xmalloc((size_t)b->cap * sizeof(*b->ents));
}

static void w_run(struct worker *w, struct job *j)
{
	struct hs_seg *s;
	int rc = 0;

	switch (j->type) {
	case J_OBJ: {
		struct hs_buf b = HS_BUF_INIT;
		uint8_t h[32];

		rc = hs_tier_get(&w->ra.base, j->key, 0, 0, &b);
		if (rc == 0) {
			crypto_generichash(h, sizeof(h), b.data, b.len, NULL, 0);
			if (b.len != j->size || memcmp(h, j->hash, 32))
				rc = hs_tier_seterr(&w->ra.base, -HS_ECHECKSUM,
						    "manifest object '%s': its hash does not match "
						    "the manifest's", j->key);
		}
		if (rc == 0 && (rc = hs_man_obj_dec(b.data, b.len, &j->o)) < 0)
			hs_tier_seterr(&w->ra.base, rc, "manifest object '%s': malformed", j->key);
		hs_buf_free(&b);
		break;
	}
	case J_SEG:
		s = w_handle(w, j, &rc);
		if (!s)
			break;
		j->info = *hs_seg_info(s);
		j->blocks = hs_xmalloc(((size_t)j->info.nblocks + 1) * sizeof(*j->blocks));
		for (uint32_t i = 0; i < j->info.nblocks; i++)
			j->blocks[i] = *hs_seg_block(s, i);
		break;
	case J_BLK: {
		const struct hs_seg_block *first, *lastb;

		s = w_handle(w, j, &rc);
		if (!s)
			break;
		if (j->bi + j->nb > hs_seg_info(s)->nblocks) {
			rc = hs_tier_seterr(&w->ra.base, -HS_EDATA, "segment '%s': no block %u",
					    j->key, j->bi + j->nb - 1);
			break;
		}
		first = hs_seg_block(s, j->bi);
		lastb = hs_seg_block(s, j->bi + j->nb - 1);
		pthread_mutex_lock(&w->t->mu);
		if (w->t->nio)
			w->ra.buf = w->t->io[--w->t->nio];
		pthread_mutex_unlock(&w->t->mu);
		w->ra.span_off = first->off;
		w->ra.span_len = lastb->off + lastb->len - first->off;
		for (uint32_t k = 0; k < j->nb; k++) {
			struct t2blk *b = j->blks[k];
			const struct hs_seg_block *sb = hs_seg_block(s, j->bi + k);
			int brc;

			buf_fit(&b->plain, sb->len); /* the plaintext is no longer */
			brc = hs_seg_fetch_block(s, j->bi + k, &b->plain);
			if (brc == 0) {
				ents_fit(b, sb->nentries);
				brc = hs_seg_parse_block(s, j->bi + k, &b->plain, on_entry, b);
			}
			j->brc[k] = brc;
			if (brc < 0 && rc == 0) {
				rc = brc;
				snprintf(j->err, sizeof(j->err), "%s", hs_tier_error(&w->ra.base));
			}
		}
		w->ra.span_len = 0;
		hs_buf_reset(&w->ra.buf);
		if (w->ra.buf.data) {
			pthread_mutex_lock(&w->t->mu);
			w->t->io[w->t->nio++] = w->ra.buf;
			pthread_mutex_unlock(&w->t->mu);
			w->ra.buf = (struct hs_buf)HS_BUF_INIT;
		}
		if (rc < 0)
			w_drop(w, j->key); /* open it afresh next time */
		j->rc = rc; /* -HS_ENOENT: see the next case */
		return;
	}
	}
	/* -HS_ENOENT stays: retention may have deleted an object named by a
	 * stale manifest; the read reads the register again (MANIFEST
	 * CACHE) and fails with -HS_EDATA only if it still names it. */
	j->rc = rc;
	if (rc < 0)
		snprintf(j->err, sizeof(j->err), "%s", *hs_tier_error(&w->ra.base) ?
			 hs_tier_error(&w->ra.base) : hs_strerror(rc));
}

static void *w_main(void *arg)
{
	struct worker *w = arg;
	struct hs_t2 *t = w->t;

	pthread_mutex_lock(&t->mu);
	for (;;) {
		struct job *j;

		while (!t->stop && !t->q_head)
			pthread_cond_wait(&t->cv, &t->mu);
		if (t->stop)
			break;
		j = t->q_head;
		t->q_head = j->next;
		if (!t->q_head)
			t->q_tail = NULL;
		pthread_mutex_unlock(&t->mu);
		w_run(w, j);
		pthread_mutex_lock(&t->mu);
		j->next = t->done;
		t->done = j;
		hs_loop_async_notify(t->sv->loop);
	}
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

static void submit(struct hs_t2 *t, struct job *j)
{
	pthread_mutex_lock(&t->mu);
	j->next = NULL;
	if (t->q_tail)
		t->q_tail->next = j;
	else
		t->q_head = j;
	t->q_tail = j;
	pthread_cond_signal(&t->cv);
	pthread_mutex_unlock(&t->mu);
}

static struct job *job_new(int type, const char *key, void *target)
{
	struct job *j = hs_xcalloc(1, sizeof(*j));

	j->type = type;
	j->target = target;
	snprintf(j->key, sizeof(j->key), "%s", key);
	return j;
}

/* ---- the block cache ------------------------------------------------------- */

static void lru_unlink(struct hs_t2 *t, struct t2blk *b)
{
	if (b->prev)
		b->prev->next = b->next;
	else if (t->lru_head == b)
		t->lru_head = b->next;
	if (b->next)
		b->next->prev = b->prev;
	else if (t->lru_tail == b)
		t->lru_tail = b->prev;
	b->prev = b->next = NULL;
}

static void lru_push(struct hs_t2 *t, struct t2blk *b)
{
	b->prev = NULL;
	b->next = t->lru_head;
	if (t->lru_head)
		t->lru_head->prev = b;
	t->lru_head = b;
	if (!t->lru_tail)
		t->lru_tail = b;
}

static void blk_free(struct hs_t2 *t, struct t2blk *b)
{
	lru_unlink(t, b);
	if (b->seg->blk[b->bi] == b)
		b->seg->blk[b->bi] = NULL;
	t->cache_bytes -= b->bytes;
	hs_buf_free(&b->plain);
	free(b->ents);
	free(b);
}

/* Evict unpinned blocks, least recently used first, down to the budget. */
static void cache_trim(struct hs_t2 *t)
{
	struct t2blk *b = t->lru_tail;

	while (b && t->cache_bytes > t->cache_max) {
		struct t2blk *p = b->prev;

		if (!b->refs)
			blk_free(t, b);
		b = p;
	}
}

/* What block bi of seg will take in the cache once decoded. */
static uint64_t blk_est(const struct t2seg *seg, uint32_t bi)
{
	return sizeof(struct t2blk) + seg->blocks[bi].len +
	       (uint64_t)seg->blocks[bi].nentries * sizeof(struct t2ent);
}

/* A block of seg to fetch.  When the cache cannot take it on top of what
 * it holds and what is being fetched, the least recently used unpinned
 * block is evicted now and its buffers are reused: their pages are mapped
 * already, where fresh megabytes fault page by page (and the budget
 * then covers the blocks in flight too). */
static struct t2blk *blk_new(struct hs_t2 *t, struct t2seg *seg, uint32_t bi)
{
	uint64_t est = blk_est(seg, bi);
	struct t2blk *b = t->lru_tail;

	while (b && b->refs)
		b = b->prev;
	if (b && t->cache_bytes + t->loading_bytes + est > t->cache_max) {
		lru_unlink(t, b);
		if (b->seg->blk[b->bi] == b)
			b->seg->blk[b->bi] = NULL;
		t->cache_bytes -= b->bytes;
		hs_buf_reset(&b->plain);
		b->n = 0;
	} else {
		b = hs_xcalloc(1, sizeof(*b));
	}
	b->seg = seg;
	b->bi = bi;
	b->state = S_LOADING;
	b->bytes = est; /* in loading_bytes until it is decoded */
	t->loading_bytes += est;
	seg->blk[bi] = b;
	return b;
}

/* Ask for block bi of seg and the blocks after it that are neither cached
 * nor loading, up to max of them in one job (one ranged GET); no-op when
 * bi is cached or loading.  Returns block bi. */
static struct t2blk *blk_want(struct hs_t2 *t, struct t2seg *seg, uint32_t bi,
			      uint32_t max)
{
	struct job *j;

	if (seg->blk[bi])
		return seg->blk[bi];
	if (max > T2_GROUP_MAX)
		max = T2_GROUP_MAX;
	j = job_new(J_BLK, seg->key, NULL);
	j->size = seg->e.size;
	memcpy(j->hash, seg->e.hash, 32);
	j->bi = bi;
	for (uint32_t k = bi; k < seg->nblocks && k - bi < max && !seg->blk[k]; k++)
		j->blks[j->nb++] = blk_new(t, seg, k);
	j->target = j->blks[0];
	for (uint32_t k = 0; k < j->nb; k++)
		j->brc[k] = 1; /* not fetched (yet) */
	submit(t, j);
	return seg->blk[bi];
}

/* Read-ahead for d, which is on block d->bi of d->seg (READ-AHEAD above):
 * ask for the blocks of the window that are not asked for yet, in groups
 * of g; a group starts only when all of it fits in the window (or the
 * window ends with the segment), so a steady scan fetches whole groups
 * rather than one block per block read. */
static void prefetch(struct hs_t2 *t, struct t2rd *d)
{
	struct t2seg *seg = d->seg;
	uint32_t ahead = d->run < (T2_AHEAD_MAX - 2) / 2 ? 2 + 2 * d->run : T2_AHEAD_MAX;
	uint32_t g = d->run < 4 ? 1u << d->run : T2_GROUP_MAX;
	uint32_t end, k;
	uint64_t est = 0;

	for (end = d->bi + 1; end < seg->nblocks && end - d->bi <= ahead; end++) {
		est += blk_est(seg, end);
		if (est > t->cache_max / 2)
			break;
	}
	if (g > (end - d->bi - 1) / 2)
		g = (end - d->bi - 1) / 2;
	if (!g)
		g = 1;
	for (k = d->bi + 1; k < end; k++) {
		if (seg->blk[k])
			continue;
		if (end - k < g && end < seg->nblocks)
			break; /* the rest when the window has moved */
		blk_want(t, seg, k, g);
	}
}

static void blk_unpin(struct hs_t2 *t, struct t2rd *d)
{
	if (!d->blk)
		return;
	d->blk->refs--;
	d->blk = NULL;
	cache_trim(t);
}

/* ---- completions ------------------------------------------------------------ */

static void kick_waiters(struct hs_t2 *t, void *what)
{
	for (struct t2rd *d = t->reads; d; d = d->nextr)
		if (d->wait == what)
			d->kick = 1;
}

static void fail_log(struct hs_t2 *t, void *what, int rc, const char *err)
{
	if (rc == -HS_ENOENT) {
		/* Maybe expired since the manifest was read: the read reads
		 * it again, then skips it as a TRIM gap or fails. */
		hs_warn("Tier2: %s: reading the manifest again", err);
		return;
	}
	for (struct t2rd *d = t->reads; d; d = d->nextr)
		if (d->wait == what && d->r->s) {
			hs_error("read of '%s': Tier2: %s", d->r->s->name, err);
			break;
		}
	hs_debug("Tier2: %s", err);
}

/* The reads waiting for what fail with rc on their next pump. */
static void fail_waiters(struct hs_t2 *t, void *what, int rc)
{
	for (struct t2rd *d = t->reads; d; d = d->nextr)
		if (d->wait == what) {
			d->wait = NULL;
			d->kick = 1;
			d->err = rc;
		}
}

/* Pump every read whose wait is over; a pump may end reads (and free
 * their state), so start over after each. */
static void pump_kicked(struct hs_t2 *t)
{
	for (;;) {
		struct t2rd *d;

		for (d = t->reads; d && !d->kick; d = d->nextr)
			;
		if (!d)
			break;
		d->kick = 0;
		d->wait = NULL;
		if (d->again)
			d->again(t->sv, d->r); /* resolving positions */
		else
			hs_serve_read_grant(t->sv, d->r);
	}
}

static void on_done(struct hs_loop *l, void *arg)
{
	struct hs_t2 *t = arg;
	struct job *list;

	pthread_mutex_lock(&t->mu);
	list = t->done;
	t->done = NULL;
	pthread_mutex_unlock(&t->mu);
	while (list) {
		struct job *j = list;

		list = j->next;
		if (j->rc < 0) {
			fail_log(t, j->target, j->rc, j->err);
			if (j->type != J_BLK)
				fail_waiters(t, j->target, j->rc);
		}
		switch (j->type) {
		case J_OBJ: {
			struct t2obj *o = j->target;

			if (j->rc == 0) {
				o->o = j->o;
				o->state = S_OK;
			} else {
				hs_man_obj_free(&j->o);
				o->state = S_NONE;
			}
			break;
		}
		case J_SEG: {
			struct t2seg *s = j->target;

			if (j->rc == 0) {
				s->first_lsn = j->info.first_lsn;
				s->last_lsn = j->info.last_lsn;
				s->nblocks = j->info.nblocks;
				s->blocks = j->blocks;
				s->blk = hs_xcalloc(s->nblocks + 1, sizeof(*s->blk));
				s->state = S_OK;
			} else {
				free(j->blocks);
				s->state = S_NONE;
			}
			break;
		}
		case J_BLK:
			for (uint32_t k = 0; k < j->nb; k++) {
				struct t2blk *b = j->blks[k];

				/* Each block is checked on its own: the good ones
				 * of a group with a bad one are kept. */
				t->loading_bytes -= b->bytes;
				if (j->brc[k] == 0) {
					b->state = S_OK;
					b->bytes = sizeof(*b) + b->plain.cap +
						   b->cap * sizeof(*b->ents);
					t->cache_bytes += b->bytes;
					lru_push(t, b);
					kick_waiters(t, b);
				} else {
					fail_waiters(t, b, j->brc[k] < 0 ? j->brc[k] : j->rc);
					b->seg->blk[b->bi] = NULL;
					hs_buf_free(&b->plain);
					free(b->ents);
					free(b);
				}
			}
			break;
		}
		if (j->rc == 0 && j->type != J_BLK)
			kick_waiters(t, j->target);
		free(j);
	}
	/* The readers pin what they waited for before anything is evicted. */
	pump_kicked(t);
	cache_trim(t);
}

/* ---- manifests ------------------------------------------------------------- */

static struct t2log *log_get(struct hs_t2 *t, uint64_t log)
{
	struct t2log *lg;

	for (lg = t->logs; lg; lg = lg->link)
		if (lg->log == log)
			return lg;
	lg = hs_xcalloc(1, sizeof(*lg));
	lg->log = log;
	lg->t = t;
	lg->link = t->logs;
	t->logs = lg;
	return lg;
}

static int fn_same(void *arg, const uint8_t *cur, size_t len, uint64_t version,
		   struct hs_buf *out)
{
	return HS_REG_SAME;
}

struct manq {
	struct t2log *lg;
	uint64_t gen;
};

static void man_loaded(void *arg, int status, const uint8_t *val, size_t len, uint64_t version)
{
	struct manq *q = arg;
	struct t2log *lg = q->lg;
	struct hs_t2 *t = lg->t;
	struct t2hw *hw;
	size_t nhw;

	if (status == -ECANCELED) {
		free(q);
		return;
	}
	if (q->gen != lg->gen) {
		free(q); /* a newer load is in flight */
		return;
	}
	free(q);
	hs_man_free(&lg->man);
	memset(&lg->man, 0, sizeof(lg->man));
	if (status == 0 && (status = hs_man_dec(val, len, &lg->man)) < 0) {
		hs_man_free(&lg->man);
		memset(&lg->man, 0, sizeof(lg->man));
	}
	if (status < 0) {
		hs_error("Tier2: reading the manifest of log %016llx: %s",
			 (unsigned long long)lg->log, hs_strerror(status));
		lg->state = S_NONE;
		fail_waiters(t, lg, status == -HS_EDATA ? -HS_EDATA : -HS_EUNAVAIL);
	} else {
		lg->state = S_OK;
		kick_waiters(t, lg);
	}
	hw = lg->hw;
	nhw = lg->nhw;
	lg->hw = NULL;
	lg->nhw = 0;
	for (size_t i = 0; i < nhw; i++)
		hw[i].fn(t->sv, hw[i].arg);
	free(hw);
	pump_kicked(t);
}

/* Start reading lg's register (no-op while a load is in flight). */
static void man_load(struct hs_t2 *t, struct t2log *lg)
{
	uint8_t key[16];
	struct manq *q;

	if (lg->state == S_LOADING)
		return;
	lg->state = S_LOADING;
	q = hs_xmalloc(sizeof(*q));
	q->lg = lg;
	q->gen = ++lg->gen;
	if (hs_serve_reg_change(t->sv, key, hs_man_key(key, lg->log), fn_same, man_loaded, q) <
	    0) {
		free(q);
		lg->state = S_NONE;
		fail_waiters(t, lg, -HS_EINTERNAL);
	}
}

void hs_t2_man_changed(struct serve *sv, uint64_t log)
{
	struct t2log *lg;

	if (!sv->t2)
		return;
	for (lg = sv->t2->logs; lg; lg = lg->link)
		if (lg->log == log && lg->state == S_OK)
			lg->state = S_NONE;
}

/* The first LSN above lsn that a ref or entry of m covers, or 0. */
static uint64_t man_next_cover(const struct hs_man *m, uint64_t lsn)
{
	for (uint16_t i = 0; i < m->nrefs; i++)
		if (m->refs[i].first_lsn > lsn)
			return m->refs[i].first_lsn;
	for (uint16_t i = 0; i < m->nentries; i++)
		if (m->entries[i].first_lsn > lsn)
			return m->entries[i].first_lsn;
	return 0;
}

static struct t2obj *obj_get(struct hs_t2 *t, struct t2log *lg, const struct hs_man_ref *ref)
{
	struct t2obj *o;
	struct job *j;

	for (o = lg->objs; o; o = o->link)
		if (o->ref.attempt == ref->attempt && o->ref.first_lsn == ref->first_lsn &&
		    !memcmp(o->ref.hash, ref->hash, 32))
			break;
	if (!o) {
		o = hs_xcalloc(1, sizeof(*o));
		o->ref = *ref;
		o->link = lg->objs;
		lg->objs = o;
	}
	if (o->state == S_NONE) {
		char key[HS_MAN_KEY_MAX];

		o->state = S_LOADING;
		hs_man_obj_key(key, lg->log, ref);
		j = job_new(J_OBJ, key, o);
		j->size = ref->size;
		memcpy(j->hash, ref->hash, 32);
		submit(t, j);
	}
	return o;
}

static struct t2seg *seg_get(struct hs_t2 *t, struct t2log *lg, const struct hs_man_entry *e)
{
	struct t2seg *s;

	for (s = lg->segs; s; s = s->link)
		if (s->e.attempt == e->attempt && s->e.created_ms == e->created_ms &&
		    !memcmp(s->e.hash, e->hash, 32))
			break;
	if (!s) {
		s = hs_xcalloc(1, sizeof(*s));
		s->lg = lg;
		s->e = *e;
		hs_man_seg_key(s->key, lg->log, e);
		s->link = lg->segs;
		lg->segs = s;
	}
	if (s->state == S_NONE) {
		struct job *j = job_new(J_SEG, s->key, s);

		s->state = S_LOADING;
		j->size = e->size;
		memcpy(j->hash, e->hash, 32);
		submit(t, j);
	}
	return s;
}

/* ---- reads ----------------------------------------------------------------- */

static struct t2rd *rd_new(struct hs_t2 *t, struct cread *r)
{
	struct t2rd *d = hs_xcalloc(1, sizeof(*d));

	d->r = r;
	d->lg = log_get(t, r->s->rec.log);
	d->nextr = t->reads;
	if (t->reads)
		t->reads->prev = d;
	t->reads = d;
	r->t2 = d;
	return d;
}

int hs_t2_read_begin(struct serve *sv, struct cread *r)
{
	if (!sv->t2)
		return 0;
	if (!r->t2)
		rd_new(sv->t2, r);
	return 1;
}

void hs_t2_read_stop(struct serve *sv, struct cread *r)
{
	struct hs_t2 *t = sv->t2;
	struct t2rd *d = r->t2;

	if (!t || !d)
		return;
	blk_unpin(t, d);
	if (d->prev)
		d->prev->nextr = d->nextr;
	else
		t->reads = d->nextr;
	if (d->nextr)
		d->nextr->prev = d->prev;
	free(d);
	r->t2 = NULL;
}

void hs_t2_time_from(struct serve *sv, struct cread *r, uint64_t ts_ms)
{
	struct t2rd *d;

	if (!sv->t2 || !r->s->trim)
		return;
	d = r->t2 ? r->t2 : rd_new(sv->t2, r);
	d->filter = 1;
	d->filter_ts = ts_ms;
	d->t1_from = r->from;
	r->from = HS_LSN(1, 1);
}

/* The last block of seg whose first timestamp is below ts (else 0). */
static uint32_t seg_find_time(const struct t2seg *s, uint64_t ts)
{
	uint32_t bi = 0;

	for (uint32_t i = 0; i < s->nblocks; i++)
		if (s->blocks[i].first_ts < ts)
			bi = i;
	return bi;
}

static uint32_t seg_find(const struct t2seg *s, uint64_t lsn)
{
	uint32_t lo = 0, hi = s->nblocks;

	/* The last block whose first LSN is <= lsn. */
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (s->blocks[mid].first_lsn <= lsn)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* r leaves Tier2: hand over to the peer read. */
static int rd_done(struct hs_t2 *t, struct cread *r)
{
	struct t2rd *d = r->t2;

	if (d->filter && r->next < d->t1_from)
		r->next = d->t1_from;
	hs_t2_read_stop(t->sv, r);
	return HS_T2_DONE;
}

static void leave_seg(struct hs_t2 *t, struct t2rd *d)
{
	blk_unpin(t, d);
	d->seg = NULL;
}

/* Emit from d's pinned block.  Returns 0 (block finished), HS_T2_WAIT,
 * HS_T2_LIMIT or HS_T2_DONE (until reached). */
static int emit_block(struct hs_t2 *t, struct t2rd *d, const struct hs_t2_out *o)
{
	struct cread *r = d->r;
	struct serve *sv = t->sv;
	struct t2blk *b = d->blk;
	uint64_t last = r->until ? r->until - 1 : UINT64_MAX;

	while (d->pos < b->n) {
		const struct t2ent *e = &b->ents[d->pos];

		if (e->hi < r->next) {
			d->pos++;
			continue;
		}
		if (e->lsn > last) {
			r->next = r->until;
			return HS_T2_DONE;
		}
		if (e->kind) {
			uint64_t lo = e->lsn > r->next ? e->lsn : r->next;
			uint64_t hi = e->hi < last ? e->hi : last;

			if (d->filter)
				r->next = hi + 1;
			else
				o->gap(sv, r, lo, hi, e->kind);
			d->pos++;
			continue;
		}
		if (d->filter) {
			if (e->ts < d->filter_ts) {
				r->next = e->lsn + 1;
				d->pos++;
				continue;
			}
			d->filter = 0;
		}
		/* A run of records at consecutive LSNs. */
		{
			uint32_t k = 0, i;
			uint64_t pay = 0, want, n;
			struct hs_run_builder rb;
			size_t len;

			for (i = d->pos; i < b->n; i++) {
				const struct t2ent *x = &b->ents[i];

				if (x->kind || x->lsn != e->lsn + k || x->lsn > last ||
				    (k && pay + x->len > T2_RUN_TARGET))
					break;
				pay += x->len;
				k++;
			}
			want = o->room(r, k);
			if (!want)
				return HS_T2_WAIT;
			n = want < k ? want : k;
			hs_buf_reset(&t->scratch);
			hs_run_begin(&rb, &t->scratch, 0, 0, 0, NULL, 0);
			pay = 0;
			for (i = 0; i < n; i++) {
				const struct t2ent *x = &b->ents[d->pos + i];

				hs_run_add(&rb, x->ts, b->plain.data + x->off, x->len);
				pay += x->len;
			}
			len = hs_run_end(&rb);
			o->deliver(sv, r, e->lsn, t->scratch.data, len, (uint32_t)n, pay);
			r->next = e->lsn + n;
			d->pos += (uint32_t)n;
			if (r->limit && r->sent >= r->limit)
				return HS_T2_LIMIT;
		}
	}
	return 0;
}

int hs_t2_read_pump(struct serve *sv, struct cread *r, const struct hs_t2_out *o)
{
	struct hs_t2 *t = sv->t2;
	struct t2rd *d = r->t2;
	struct sstream *s = r->s;
	int rc;

	if (d->err) {
		int err = d->err;

		d->err = 0;
		if (err != -HS_ENOENT)
			return err;
		if (d->gone_at == r->next + 1) {
			hs_error("read of '%s': Tier2: an object the manifest names is missing "
				 "(logged above)", s->name);
			return -HS_EDATA;
		}
		/* Deleted by retention after the manifest was read (the
		 * EXPIRE was handled by another hs-serve, or came after we
		 * read it): read the register again, once per position; an
		 * expired LSN is then a TRIM gap below. */
		d->gone_at = r->next + 1;
		leave_seg(t, d);
		if (d->lg->state == S_OK)
			d->lg->state = S_NONE;
	}
	if (d->wait)
		return HS_T2_WAIT;
	for (;;) {
		uint64_t last = r->until ? r->until - 1 : UINT64_MAX;
		const struct hs_man_entry *e = NULL;
		const struct hs_man_ref *ref = NULL;
		struct t2log *lg = d->lg;

		if (r->until && r->next >= r->until)
			return rd_done(t, r);
		if (!d->seg) {
			if (r->next > s->trim)
				return rd_done(t, r);
			if (lg->state != S_OK) {
				man_load(t, lg);
				if (lg->state != S_LOADING)
					return -HS_EUNAVAIL;
				d->wait = lg;
				d->reloaded_at = r->next;
				return HS_T2_WAIT;
			}
			rc = hs_man_find(&lg->man, r->next, &e, &ref);
			if (rc == 0) {
				uint64_t nc = man_next_cover(&lg->man, r->next), hi;

				if (d->reloaded_at != r->next) {
					/* Maybe published since: read it again once. */
					lg->state = S_NONE;
					continue;
				}
				hi = nc && nc - 1 < s->trim ? nc - 1 : s->trim;
				if (hi > last)
					hi = last;
				if (d->filter)
					r->next = hi + 1;
				else
					o->gap(sv, r, r->next, hi, HS_MERGE_TRIM);
				continue;
			}
			if (rc == 2) {
				struct t2obj *ob = obj_get(t, lg, ref);

				if (ob->state != S_OK) {
					d->wait = ob;
					return HS_T2_WAIT;
				}
				e = hs_man_obj_find(&ob->o, r->next);
				if (!e) {
					hs_error("read of '%s': Tier2: manifest object of %016llx.."
						 "%016llx does not cover an LSN its ref does", s->name,
						 (unsigned long long)ref->first_lsn,
						 (unsigned long long)ref->last_lsn);
					return -HS_EDATA;
				}
			}
			if (d->filter && (!e->records || e->last_ts < d->filter_ts)) {
				r->next = e->last_lsn + 1; /* nothing at or after the time */
				continue;
			}
			d->seg = seg_get(t, lg, e);
			if (d->seg->state != S_OK) {
				/* Looked up again when it is loaded. */
				d->wait = d->seg;
				d->seg = NULL;
				return HS_T2_WAIT;
			}
			if (!d->seg->nblocks || r->next > d->seg->last_lsn) {
				r->next = d->seg->e.last_lsn + 1;
				leave_seg(t, d);
				continue;
			}
			if (r->next < d->seg->first_lsn)
				r->next = d->seg->first_lsn; /* those LSNs do not exist */
			d->bi = d->filter ? seg_find_time(d->seg, d->filter_ts)
					  : seg_find(d->seg, r->next);
			d->pos = 0;
		}
		if (!d->blk) {
			/* Alone when not asked for before (a read's first): the
			 * fastest answer; prefetch asks for the next ones. */
			struct t2blk *b = blk_want(t, d->seg, d->bi, 1);

			if (b->state == S_OK) {
				/* Pinned before prefetch, which may evict (and
				 * reuse) the least recently used unpinned block. */
				lru_unlink(t, b);
				lru_push(t, b);
				b->refs++;
				d->blk = b;
				d->pos = 0;
			}
			prefetch(t, d);
			if (!d->blk) {
				d->wait = b;
				return HS_T2_WAIT;
			}
		}
		rc = emit_block(t, d, o);
		if (rc == HS_T2_DONE)
			return rd_done(t, r);
		if (rc)
			return rc;
		blk_unpin(t, d);
		d->run++; /* sequential so far: deeper read-ahead */
		if (++d->bi >= d->seg->nblocks) {
			if (r->next <= d->seg->e.last_lsn)
				r->next = d->seg->e.last_lsn + 1;
			leave_seg(t, d);
		}
	}
}

/* ---- positions ------------------------------------------------------------- */

/*
 * SLOTS (hs_t2_resolve).  read.c counts Tier1's slots by arithmetic over
 * the epochs' ranges; below the trim point those epochs are gone from the
 * log record, so Tier2 counts what its segments hold: a record is one
 * slot, a HOLE or DATALOSS gap one per LSN, a BRIDGE or TRIM gap none
 * (the same slots, since a segment is what the read path returned with
 * gaps).  Cheapest first:
 *   - an entry with records == last_lsn - first_lsn + 1 (every LSN a
 *     record) counts its records, with no I/O;
 *   - else the segment's index: a block whose LSN span (up to the next
 *     block's first LSN) equals its entry count holds one LSN per entry,
 *     records or one-LSN HOLE/DATALOSS gaps, so it counts its entries (a
 *     BRIDGE reaches the last sequence number of its epoch and a span
 *     across an epoch's slot 0 is never dense; a one-LSN TRIM gap, which
 *     only a trim racing the offloader's read could store, would count);
 *   - else the block is fetched (through the block cache) and counted.
 * Counts of whole blocks and segments stay with the segment index
 * (bslots, slots), so a resolution that waited for a load goes on where it
 * was, and later positions cost no I/O.  Counting stops at the Tier1
 * trim point: read.c counts from there.
 */
#define SLOTS_UNKNOWN UINT64_MAX
#define RES_FOUND 4             /* res_*: *lsn set (HS_T2_WAIT is 1) */
#define RES_NONE 5              /* an entry callback: stop, nothing found */

static int rd_wait(struct t2rd *d, void *what)
{
	d->wait = what;
	return HS_T2_WAIT;
}

/* Block bi of sg spans [*lo, *hi]. */
static void blk_span(const struct t2seg *sg, uint32_t bi, uint64_t *lo, uint64_t *hi)
{
	*lo = sg->blocks[bi].first_lsn;
	*hi = bi + 1 < sg->nblocks ? sg->blocks[bi + 1].first_lsn - 1 : sg->last_lsn;
}

static int blk_dense(const struct t2seg *sg, uint32_t bi, uint64_t hi)
{
	uint64_t lo_b, hi_b;

	blk_span(sg, bi, &lo_b, &hi_b);
	return hi_b <= hi && hi_b - lo_b + 1 == sg->blocks[bi].nentries;
}

/* The slots of one block entry at or below hi. */
static uint64_t ent_slots(const struct t2ent *x, uint64_t hi)
{
	if (x->lsn > hi)
		return 0;
	if (!x->kind)
		return 1;
	if (x->kind != HS_SEG_HOLE && x->kind != HS_SEG_DATALOSS)
		return 0;
	return (x->hi < hi ? x->hi : hi) - x->lsn + 1;
}

/* The slots of block bi of sg at or below hi into *n.  Returns 0 or
 * HS_T2_WAIT (the block is loading). */
static int blk_slots(struct hs_t2 *t, struct t2rd *d, struct t2seg *sg, uint32_t bi,
		     uint64_t hi, uint64_t *n)
{
	uint64_t lo_b, hi_b;
	struct t2blk *b;

	blk_span(sg, bi, &lo_b, &hi_b);
	*n = 0;
	if (lo_b > hi)
		return 0;
	if (hi_b <= hi) {
		if (!sg->bslots) {
			sg->bslots = hs_xmalloc(((size_t)sg->nblocks + 1) * sizeof(*sg->bslots));
			for (uint32_t i = 0; i < sg->nblocks; i++)
				sg->bslots[i] = SLOTS_UNKNOWN;
		}
		if (sg->bslots[bi] == SLOTS_UNKNOWN && blk_dense(sg, bi, hi))
			sg->bslots[bi] = sg->blocks[bi].nentries;
		if (sg->bslots[bi] != SLOTS_UNKNOWN) {
			*n = sg->bslots[bi];
			return 0;
		}
	}
	b = blk_want(t, sg, bi, 1);
	if (b->state != S_OK)
		return rd_wait(d, b);
	for (uint32_t i = 0; i < b->n; i++)
		*n += ent_slots(&b->ents[i], hi);
	if (hi_b <= hi)
		sg->bslots[bi] = *n;
	return 0;
}

static int ent_dense(const struct hs_man_entry *e, uint64_t hi)
{
	return e->last_lsn <= hi && e->records == e->last_lsn - e->first_lsn + 1;
}

/* The slots of manifest entry e at or below hi into *n.  Returns 0 or
 * HS_T2_WAIT (its index or blocks are loading: all asked for at once). */
static int seg_slots(struct hs_t2 *t, struct t2rd *d, const struct hs_man_entry *e,
		     uint64_t hi, uint64_t *n)
{
	struct t2seg *sg;
	void *wait = NULL;

	*n = 0;
	if (e->first_lsn > hi)
		return 0;
	if (ent_dense(e, hi)) {
		*n = e->records;
		return 0;
	}
	sg = seg_get(t, d->lg, e);
	if (sg->state != S_OK)
		return rd_wait(d, sg);
	if (e->last_lsn <= hi && sg->slots_ok) {
		*n = sg->slots;
		return 0;
	}
	for (uint32_t bi = 0; bi < sg->nblocks; bi++) {
		uint64_t c;

		if (blk_slots(t, d, sg, bi, hi, &c) == HS_T2_WAIT) {
			if (!wait)
				wait = d->wait;
			continue;
		}
		*n += c;
	}
	if (wait)
		return rd_wait(d, wait);
	if (e->last_lsn <= hi) {
		sg->slots = *n;
		sg->slots_ok = 1;
	}
	return 0;
}

/* The LSN of slot k (from 0) of entry e, counting at or below hi; k is
 * below seg_slots' count.  Returns 0 (*lsn set), HS_T2_WAIT or -HS_EDATA
 * (the segment holds fewer slots than counted: cannot happen). */
static int seg_slot_at(struct hs_t2 *t, struct t2rd *d, const struct hs_man_entry *e,
		       uint64_t hi, uint64_t k, uint64_t *lsn)
{
	struct t2seg *sg;

	if (ent_dense(e, hi)) {
		*lsn = e->first_lsn + k;
		return 0;
	}
	sg = seg_get(t, d->lg, e);
	if (sg->state != S_OK)
		return rd_wait(d, sg);
	for (uint32_t bi = 0; bi < sg->nblocks; bi++) {
		struct t2blk *b;
		uint64_t c;

		if (blk_slots(t, d, sg, bi, hi, &c))
			return HS_T2_WAIT;
		if (k >= c) {
			k -= c;
			continue;
		}
		if (blk_dense(sg, bi, hi)) {
			*lsn = sg->blocks[bi].first_lsn + k;
			return 0;
		}
		b = blk_want(t, sg, bi, 1);
		if (b->state != S_OK)
			return rd_wait(d, b);
		for (uint32_t i = 0; i < b->n; i++) {
			c = ent_slots(&b->ents[i], hi);
			if (k < c) {
				*lsn = b->ents[i].lsn + k;
				return 0;
			}
			k -= c;
		}
		break;
	}
	hs_error("Tier2: segment '%s' holds fewer slots than counted", sg->key);
	return -HS_EDATA;
}

/* The entries of unit u of d's manifest (its refs, then its entries).
 * Returns 0 (*es and *n set, borrowed), or HS_T2_WAIT (a manifest object
 * is loading). */
static int man_unit(struct hs_t2 *t, struct t2rd *d, size_t u, const struct hs_man_entry **es,
		    uint32_t *n)
{
	struct t2log *lg = d->lg;

	if (u < lg->man.nrefs) {
		struct t2obj *ob = obj_get(t, lg, &lg->man.refs[u]);

		if (ob->state != S_OK)
			return rd_wait(d, ob);
		*es = ob->o.entries;
		*n = ob->o.nentries;
		return 0;
	}
	*es = &lg->man.entries[u - lg->man.nrefs];
	*n = 1;
	return 0;
}

/* One manifest entry of man_walk: a non-zero return ends the walk with it. */
typedef int (*entry_fn)(struct hs_t2 *t, struct t2rd *d, const struct hs_man_entry *e,
			uint64_t hi, void *arg);

/* Walk d's manifest in LSN order (the refs' objects, then the loose
 * entries) over the entries starting at or below hi, calling fn on each.
 * Returns fn's first non-zero value, 0 at the end, or man_unit's
 * HS_T2_WAIT or < 0. */
static int man_walk(struct hs_t2 *t, struct t2rd *d, uint64_t hi, entry_fn fn, void *arg)
{
	const struct hs_man *m = &d->lg->man;
	size_t nu = (size_t)m->nrefs + m->nentries;
	int rc;

	for (size_t u = 0; u < nu; u++) {
		const struct hs_man_entry *es;
		uint32_t n;

		if (u < m->nrefs && m->refs[u].first_lsn > hi)
			break;
		if ((rc = man_unit(t, d, u, &es, &n)))
			return rc;
		for (uint32_t i = 0; i < n; i++) {
			if (es[i].first_lsn > hi)
				return 0;
			if ((rc = fn(t, d, &es[i], hi, arg)))
				return rc;
		}
	}
	return 0;
}

struct res_arg {
	uint64_t k;   /* head+k: slots still to skip */
	uint64_t ts;  /* @time */
	uint64_t lsn; /* the answer with RES_FOUND */
};

static int head_entry(struct hs_t2 *t, struct t2rd *d, const struct hs_man_entry *e,
		      uint64_t hi, void *arg)
{
	struct res_arg *a = arg;
	uint64_t c;
	int rc;

	if ((rc = seg_slots(t, d, e, hi, &c)))
		return rc;
	if (a->k < c)
		return (rc = seg_slot_at(t, d, e, hi, a->k, &a->lsn)) ? rc : RES_FOUND;
	a->k -= c;
	return 0;
}

/* head+k: see hs_t2_resolve.  Returns RES_FOUND, 0 (k lowered), HS_T2_WAIT or < 0. */
static int res_head(struct hs_t2 *t, struct t2rd *d, uint64_t hi, uint64_t *k, uint64_t *lsn)
{
	struct res_arg a = { .k = *k };
	int rc = man_walk(t, d, hi, head_entry, &a);

	*k = a.k;
	if (rc == RES_FOUND)
		*lsn = a.lsn;
	return rc;
}

/* tail-k where Tier1 holds fewer than k slots: k counts Tier2's from its
 * end.  Returns RES_FOUND, 0 (Tier2 holds no slot), HS_T2_WAIT or < 0. */
static int res_tail(struct hs_t2 *t, struct t2rd *d, uint64_t hi, uint64_t k, uint64_t *lsn)
{
	const struct hs_man *m = &d->lg->man;
	const struct hs_man_entry *first = NULL;
	size_t nu = (size_t)m->nrefs + m->nentries;
	int rc;

	for (size_t u = nu; u-- > 0;) {
		const struct hs_man_entry *es;
		uint32_t n;

		if (u < m->nrefs && m->refs[u].first_lsn > hi)
			continue;
		if ((rc = man_unit(t, d, u, &es, &n)))
			return rc;
		for (uint32_t i = n; i-- > 0;) {
			uint64_t c;

			if ((rc = seg_slots(t, d, &es[i], hi, &c)))
				return rc;
			if (!c)
				continue;
			if (k <= c)
				return (rc = seg_slot_at(t, d, &es[i], hi, c - k, lsn)) ? rc : RES_FOUND;
			k -= c;
			first = &es[i];
		}
	}
	if (!first)
		return 0;
	/* Fewer slots than asked in both tiers: the first one, as Tier1's
	 * tail-N stops at its head. */
	return (rc = seg_slot_at(t, d, first, hi, 0, lsn)) ? rc : RES_FOUND;
}

static int time_entry(struct hs_t2 *t, struct t2rd *d, const struct hs_man_entry *e,
		      uint64_t hi, void *arg)
{
	struct res_arg *a = arg;
	struct t2seg *sg;

	if (!e->records || e->last_ts < a->ts)
		return 0;
	sg = seg_get(t, d->lg, e);
	if (sg->state != S_OK)
		return rd_wait(d, sg);
	for (uint32_t bi = sg->nblocks ? seg_find_time(sg, a->ts) : 0; bi < sg->nblocks; bi++) {
		struct t2blk *b;

		if (sg->blocks[bi].first_lsn > hi)
			return RES_NONE;
		b = blk_want(t, sg, bi, 4);
		if (b->state != S_OK)
			return rd_wait(d, b);
		for (uint32_t x = 0; x < b->n; x++) {
			if (b->ents[x].lsn > hi)
				return RES_NONE;
			if (!b->ents[x].kind && b->ents[x].ts >= a->ts) {
				a->lsn = b->ents[x].lsn;
				return RES_FOUND;
			}
		}
	}
	return 0;
}

/* The first record at or after ts at or below hi (the scan of the @time
 * start filter, without reading it).  Returns RES_FOUND, 0, HS_T2_WAIT. */
static int res_time(struct hs_t2 *t, struct t2rd *d, uint64_t hi, uint64_t ts, uint64_t *lsn)
{
	struct res_arg a = { .ts = ts };
	int rc = man_walk(t, d, hi, time_entry, &a);

	if (rc == RES_FOUND)
		*lsn = a.lsn;
	return rc == RES_NONE ? 0 : rc;
}

int hs_t2_resolve(struct serve *sv, struct cread *r, struct hs_pos *p, uint64_t *lsn,
		  void (*again)(struct serve *sv, struct cread *r))
{
	struct hs_t2 *t = sv->t2;
	const struct sstream *s = r->s;
	struct t2rd *d;
	uint64_t k;
	int rc;

	if (!t || !s->trim)
		return 0;
	if (p->kind != HS_POS_HEAD && p->kind != HS_POS_TIME &&
	    !(p->kind == HS_POS_TAIL && p->offset < 0))
		return 0;
	/* tail-N within Tier1: no need for the manifest. */
	if (p->kind == HS_POS_TAIL && (uint64_t)(-p->offset) <= hs_serve_stream_count(s))
		return 0;
	d = r->t2 ? r->t2 : rd_new(t, r);
	d->again = again;
	if (d->err) {
		int err = d->err;

		d->err = 0;
		if (err != -HS_ENOENT)
			return err;
		if (d->res_reloaded) {
			hs_error("read of '%s': Tier2: an object the manifest names is missing "
				 "(logged above)", s->name);
			return -HS_EDATA;
		}
		/* Expired since the manifest was read: read it again, once. */
		d->res_reloaded = 1;
		if (d->lg->state == S_OK)
			d->lg->state = S_NONE;
	}
	if (d->wait)
		return HS_T2_RES_WAIT;
	if (d->lg->state != S_OK) {
		man_load(t, d->lg);
		if (d->lg->state != S_LOADING)
			return -HS_EUNAVAIL;
		d->wait = d->lg;
		return HS_T2_RES_WAIT;
	}
	switch (p->kind) {
	case HS_POS_HEAD:
		k = (uint64_t)p->offset;
		rc = res_head(t, d, s->trim, &k, lsn);
		if (rc == 0)
			p->offset = (int64_t)k;
		break;
	case HS_POS_TAIL:
		k = (uint64_t)(-p->offset);
		rc = res_tail(t, d, s->trim, k - hs_serve_stream_count(s), lsn);
		break;
	default:
		rc = res_time(t, d, s->trim, p->time_ms < 0 ? 0 : (uint64_t)p->time_ms, lsn);
		break;
	}
	return rc == HS_T2_WAIT ? HS_T2_RES_WAIT : rc == RES_FOUND ? 1 : rc;
}

void hs_t2_resolve_end(struct serve *sv, struct cread *r)
{
	struct t2rd *d = r->t2;

	if (!sv->t2 || !d)
		return;
	d->again = NULL;
	d->res_reloaded = 0;
	if (!d->filter)
		hs_t2_read_stop(sv, r);
}

/* ---- set-up ---------------------------------------------------------------- */

int hs_t2_new(struct serve *sv, const struct hs_t2_cfg *c, struct hs_t2 **out, char *err,
	      size_t errlen)
{
	struct hs_t2 *t = hs_xcalloc(1, sizeof(*t));
	int rc, nw = c->threads > 0 ? c->threads : T2_THREADS_DEFAULT;

	if (nw > T2_THREADS_MAX)
		nw = T2_THREADS_MAX;
	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium failed to initialise");
		free(t);
		return -HS_EINTERNAL;
	}
	t->sv = sv;
	t->cache_max = c->cache_bytes ? c->cache_bytes : T2_CACHE_DEFAULT;
	if (c->key_file) {
		if ((rc = hs_seg_key_load(c->key_file, t->key)) < 0) {
			snprintf(err, errlen, "--tier-key-file '%s': %s", c->key_file,
				 hs_strerror(rc));
			free(t);
			return rc;
		}
		t->has_key = 1;
	}
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cv, NULL);
	for (int i = 0; i < nw; i++) {
		struct hs_tier_opts o = c->topts;
		char e[HS_TIER_ERRLEN] = "";

		o.err = e;
		t->w[i].t = t;
		if ((rc = hs_tier_open(c->url, &o, &t->w[i].tier)) < 0) {
			snprintf(err, errlen, "--tier '%s': %s", c->url, *e ? e : hs_strerror(rc));
			goto out_fail;
		}
		t->w[i].ra.base.ops = &ra_ops;
		t->w[i].ra.real = t->w[i].tier;
		t->nw = i + 1;
	}
	hs_loop_async(sv->loop, on_done, t);
	for (int i = 0; i < nw; i++)
		if ((rc = pthread_create(&t->w[i].th, NULL, w_main, &t->w[i]))) {
			snprintf(err, errlen, "starting Tier2 workers: %s", strerror(rc));
			rc = -rc;
			/* The started ones are joined by hs_t2_free. */
			t->nw = i;
			for (int k = i; k < nw; k++)
				hs_tier_close(t->w[k].tier);
			hs_t2_free(t);
			return rc;
		}
	*out = t;
	return 0;
out_fail:
	for (int i = 0; i < t->nw; i++)
		hs_tier_close(t->w[i].tier);
	pthread_mutex_destroy(&t->mu);
	pthread_cond_destroy(&t->cv);
	free(t);
	return rc;
}

void hs_t2_free(struct hs_t2 *t)
{
	struct job *j;

	if (!t)
		return;
	pthread_mutex_lock(&t->mu);
	t->stop = 1;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
	for (int i = 0; i < t->nw; i++) {
		pthread_join(t->w[i].th, NULL);
		for (int k = 0; k < T2_HANDLES; k++)
			hs_seg_close(t->w[i].h[k].s);
		hs_buf_free(&t->w[i].ra.buf);
		hs_tier_close(t->w[i].tier);
	}
	/* Jobs never run or never collected: their targets go below. */
	while ((j = t->q_head)) {
		t->q_head = j->next;
		free(j);
	}
	while ((j = t->done)) {
		t->done = j->next;
		if (j->type == J_OBJ)
			hs_man_obj_free(&j->o);
		free(j->blocks);
		free(j);
	}
	while (t->reads) {
		struct t2rd *d = t->reads;

		t->reads = d->nextr;
		d->r->t2 = NULL;
		free(d);
	}
	while (t->logs) {
		struct t2log *lg = t->logs;

		t->logs = lg->link;
		while (lg->objs) {
			struct t2obj *o = lg->objs;

			lg->objs = o->link;
			hs_man_obj_free(&o->o);
			free(o);
		}
		while (lg->segs) {
			struct t2seg *s = lg->segs;

			lg->segs = s->link;
			for (uint32_t i = 0; s->blk && i < s->nblocks; i++)
				if (s->blk[i]) {
					hs_buf_free(&s->blk[i]->plain);
					free(s->blk[i]->ents);
					free(s->blk[i]);
				}
			free(s->blk);
			free(s->blocks);
			free(s->bslots);
			free(s);
		}
		hs_man_free(&lg->man);
		free(lg->hw);
		free(lg);
	}
	hs_buf_free(&t->scratch);
	while (t->nio)
		hs_buf_free(&t->io[--t->nio]);
	pthread_mutex_destroy(&t->mu);
	pthread_cond_destroy(&t->cv);
	free(t);
}
