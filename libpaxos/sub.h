/*
 * sub.h - the acknowledgement window of a named subscription session
 * (DESIGN.md §7, proto_client.h "SUBSCRIPTIONS"): what hs-serve remembers
 * about the records it pushed to a subscriber and has not seen acknowledged.
 *
 * DESIGN.  A session reads its stream forward from the checkpoint; the
 * window keeps
 *   - next: the LSN after the last record or gap the forward read passed
 *     (every LSN < next was delivered or was a gap);
 *   - the delivered and not yet acknowledged LSN ranges, disjoint, sorted,
 *     each with the time it was (last) sent.
 * Only ranges are kept, never payloads: a record to redeliver is read again
 * from the peers.  The checkpoint - every LSN below it is acknowledged, gaps
 * count as acknowledged since they never enter the window - is the lowest
 * unacknowledged LSN, or next when nothing is outstanding; it never goes
 * back.  Memory is one entry per delivered run (DELIVER run) still
 * unacknowledged, so it is bounded by max_unacked entries.
 *
 * An acknowledgement removes (parts of) ranges, splitting one when the
 * middle is acknowledged; acknowledging LSNs that are not outstanding is a
 * no-op (duplicates, redelivered copies, LSNs never delivered).
 *
 * Redelivery: hs_subwin_due() hands out the oldest range whose send time
 * is older than the ack timeout and stamps it as sent again now, so it is
 * handed out once per timeout while it stays unacknowledged.
 *
 * Pure bookkeeping: no I/O, no clock of its own (callers pass now_ms), no
 * allocation on the ack path beyond growing the range array.
 */
#ifndef HS_SUB_H
#define HS_SUB_H

#include <stddef.h>
#include <stdint.h>

/* Server defaults for SUB_CREATE's 0 values. */
#define HS_SUB_ACK_TIMEOUT_DEFAULT 30000u   /* ms */
#define HS_SUB_MAX_UNACKED_DEFAULT 10000u   /* records */

struct hs_subrange {
	uint64_t lo, hi;      /* inclusive, one epoch */
	uint64_t sent_ms;     /* when (last) sent */
};

struct hs_subwin {
	uint64_t next;        /* after the last record or gap read forward */
	uint64_t floor;       /* the checkpoint never goes below it */
	uint64_t unacked;     /* records in r[] */
	uint64_t delivered;   /* highest LSN delivered, 0 none */
	uint64_t acked;       /* acknowledgements applied (records) */
	struct hs_subrange *r; /* owned */
	size_t n, cap;
};

/* Start a window at checkpoint ckpt (nothing outstanding, next = ckpt). */
void hs_subwin_init(struct hs_subwin *w, uint64_t ckpt);
/* Free the ranges; w is zeroed. */
void hs_subwin_free(struct hs_subwin *w);

/*
 * The forward read delivered records lo .. lo + n - 1 (n >= 1, one run, so
 * one epoch) at now_ms.  Ranges must come in increasing order and at or
 * above next; anything below next is ignored (returns 0).  next moves past
 * them.  Returns the number of records added to the window.
 */
uint64_t hs_subwin_delivered(struct hs_subwin *w, uint64_t lo, uint64_t n, uint64_t now_ms);

/* The forward read passed a gap (or an empty stretch): next = max(next,
 * lsn).  LSNs skipped this way count as acknowledged. */
void hs_subwin_advance(struct hs_subwin *w, uint64_t lsn);

/* Acknowledge lo..hi (inclusive).  Returns the number of outstanding
 * records it removed (0 for LSNs not outstanding). */
uint64_t hs_subwin_ack(struct hs_subwin *w, uint64_t lo, uint64_t hi);

/* The checkpoint: every LSN below it is acknowledged or a gap. */
uint64_t hs_subwin_checkpoint(const struct hs_subwin *w);

/*
 * A range due for redelivery: the first outstanding one sent at or before
 * now_ms - timeout_ms.  Returns 1 with *lo, *hi set and the range stamped
 * as sent at now_ms, or 0 if none is due.
 */
int hs_subwin_due(struct hs_subwin *w, uint64_t now_ms, uint64_t timeout_ms, uint64_t *lo,
		  uint64_t *hi);

/* Milliseconds until the next range falls due (0 = one is due now), or
 * UINT64_MAX when nothing is outstanding. */
uint64_t hs_subwin_next_due(const struct hs_subwin *w, uint64_t now_ms, uint64_t timeout_ms);

#endif
