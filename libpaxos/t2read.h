/*
 * t2read.h - hs-serve's Tier2 read path: records below the Tier1 trim
 * point served from the offloaded segments (DESIGN.md §8, docs/tier2.md
 * "The read path").
 *
 * read.c calls in at a few points: when a read's next LSN is at or below
 * s->trim (hs_t2_read_begin), to make progress (hs_t2_read_pump), when a
 * read ends (hs_t2_read_stop), to resolve head+N, tail-N and an @time
 * end (hs_t2_resolve) and an @time start (hs_t2_time_from); tier.c calls
 * hs_t2_man_changed after a TIER_PUBLISH.
 * Everything here runs on the loop thread except the object-store I/O,
 * which runs on a small pool of worker threads (design comment in
 * t2read.c).  Records go out through the callbacks of struct hs_t2_out, so
 * DELIVER frames, gap coalescing and credit are read.c's, the same as for
 * the peer path.
 */
#ifndef HS_PAXOS_T2READ_H
#define HS_PAXOS_T2READ_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "pos.h"

struct serve;
struct cread;
struct sstream;
struct hs_t2;

/* Configuration, borrowed by hs_t2_new for the call (strings copied where
 * kept; topts is passed to hs_tier_open once per worker). */
struct hs_t2_cfg {
	const char *url;              /* file:///DIR, s3://BUCKET/PREFIX, ... */
	struct hs_tier_opts topts;    /* endpoint, region, credentials, ... */
	const char *key_file;         /* NULL: segments must be plain */
	uint64_t cache_bytes;         /* block cache budget; 0 = 64 MiB */
	int threads;                  /* I/O workers; 0 = 4 */
};

/* Open the backend (once per worker thread), load the key, start the
 * workers and register their completion callback on sv->loop.  On success
 * *out is owned by the caller (hs_t2_free).  Returns 0 or a negative code
 * (hs_tier_open's, hs_seg_key_load's, or -errno from pthread_create) with
 * one line of text in err (errlen bytes). */
int hs_t2_new(struct serve *sv, const struct hs_t2_cfg *c, struct hs_t2 **out, char *err,
	      size_t errlen);
/* Stop the workers (waits for the request each is in) and free everything.
 * Every read must have been stopped first.  NULL is fine. */
void hs_t2_free(struct hs_t2 *t);

/* What the Tier2 read emits, through read.c (same semantics as the merged
 * peer read's DELIVER and READ_GAP). */
struct hs_t2_out {
	/* The gap [lo, hi] of kind (HS_MERGE_* = READ_GAP kinds) was passed. */
	void (*gap)(struct serve *sv, struct cread *r, uint64_t lo, uint64_t hi, int kind);
	/* How many of cnt records r may be sent now (credit, limit, output). */
	uint64_t (*room)(const struct cread *r, uint64_t cnt);
	/* Send the run (len bytes, borrowed) of n records starting at first
	 * holding pay payload bytes; advances r->next and the credit. */
	void (*deliver)(struct serve *sv, struct cread *r, uint64_t first, const void *run,
			size_t len, uint32_t n, uint64_t pay);
};

/* Start serving r from Tier2 at r->next (<= s->trim).  Returns 1 (r->t2
 * set: call hs_t2_read_pump) or 0 (no tier configured: the caller reports
 * the TRIM gap as before). */
int hs_t2_read_begin(struct serve *sv, struct cread *r);

#define HS_T2_WAIT 1   /* waiting for I/O or client credit; r is pumped again */
#define HS_T2_DONE 2   /* r->next is above the Tier1 trim: r->t2 is gone */
#define HS_T2_LIMIT 3  /* r's record limit was reached */
/* Emit what can be emitted now.  Returns HS_T2_WAIT, HS_T2_DONE,
 * HS_T2_LIMIT, or a negative code ending the read: -HS_ECHECKSUM /
 * -HS_EDATA / -HS_EPERM for a damaged, tampered or undecryptable segment
 * (logged with the segment key), -HS_EUNAVAIL when the store could not be
 * reached after the backend's retries.  When I/O completes, r is pumped
 * through hs_serve_read_grant(). */
int hs_t2_read_pump(struct serve *sv, struct cread *r, const struct hs_t2_out *o);
/* Drop r's Tier2 state (I/O in flight completes into the cache). */
void hs_t2_read_stop(struct serve *sv, struct cread *r);

/*
 * Positions over Tier2 (read.c calls this from its position code, before
 * the read starts).  p is one end of r (a copy: it may be rewritten):
 *   HS_POS_HEAD (head, head+N): the (N+1)th slot, counting Tier2's slots
 *     first, then Tier1's; when Tier2 holds N or fewer, p->offset is
 *     lowered by their count and 0 is returned (resolve p in Tier1).
 *   HS_POS_TAIL with an offset (tail-N): Tier1's answer when Tier1 holds
 *     at least N slots (0 returned, p untouched); else the slot N - Tier1's
 *     count from Tier2's end, or Tier2's first slot when that is not
 *     enough either (as Tier1 stops at its head).
 *   HS_POS_TIME (an end given as a time): the first record at or after
 *     p->time_ms in Tier2 (the same scan as hs_t2_time_from); 0 when
 *     there is none at or below the Tier1 trim point.
 * A slot is what read.c counts in Tier1 (the epochs' ranges, holes
 * included): a record, or an LSN of a stored HOLE or DATALOSS gap; never
 * an LSN of a BRIDGE or TRIM gap, nor one no segment covers.  Tier2's
 * slots are those at or below the Tier1 trim point.
 * Returns 1 (*lsn set), 0 (not in Tier2; also with no tier or nothing
 * offloaded below the trim point), HS_T2_RES_WAIT (the manifest, a manifest
 * object, a segment index or a block is loading: again(sv, r) is called on
 * the loop when it is, and the caller resolves again, from scratch, with
 * what is cached by then), or a negative code ending the read (the
 * backend's, -HS_EDATA for an object the manifest names that is missing
 * also after reading the manifest again).  Uses r->t2 (made here); call
 * hs_t2_resolve_end once every end is resolved.  p and lsn are borrowed
 * for the call; r must stay alive until again runs or hs_t2_read_stop
 * (hs_serve_read_end) drops the wait.
 */
#define HS_T2_RES_WAIT 2
int hs_t2_resolve(struct serve *sv, struct cread *r, struct hs_pos *p, uint64_t *lsn,
		  void (*again)(struct serve *sv, struct cread *r));
/* r's positions are resolved: drop the Tier2 state hs_t2_resolve made
 * unless the read itself needs it (an @time start). */
void hs_t2_resolve_end(struct serve *sv, struct cread *r);

/* @time: r's start was located in Tier1 at r->from; when Tier2 holds
 * records, scan it from its head for the first record at or after ts_ms
 * (whole segments are skipped by their manifest timestamps), and go on in
 * Tier1 from r->from if there is none.  Sets r->from and r->t2. */
void hs_t2_time_from(struct serve *sv, struct cread *r, uint64_t ts_ms);

/* The manifest register of log changed (a TIER_PUBLISH handled here):
 * drop the cached copy.  sv may have no tier (no-op).  A copy made stale
 * by a publish handled elsewhere, or by retention deleting objects after
 * it was read, is read again when a lookup misses or an object it names
 * is missing (t2read.c, MANIFEST CACHE). */
void hs_t2_man_changed(struct serve *sv, uint64_t log);

#endif
