/*
 * merge.h - the read merge of one epoch across the peers of its nodeset
 * (docs/replication.md §6).  Pure: no I/O, no clock, no hs-serve state, so
 * every rule is unit-tested (test/unit/t_merge.c); libpaxos/read.c feeds it
 * what the peers' read streams deliver and sends on what it hands out.
 *
 * MODEL.  An epoch's records lie on the n peers of its nodeset, each slot
 * on r of them (any r: copysets change).  The caller opens one read stream
 * per peer over the slots [from, to] and feeds each one's runs, gaps and
 * END here as input i (0 <= i < n), in the order the peer sent them (a peer
 * sends in LSN order).  The merge hands out, in LSN order and each slot
 * once: record slices to deliver (out->deliver) and gaps (out->gap).
 *
 * ACCEPTABLE COPIES.  A copy of slot x is acceptable if x <= lng (any copy),
 * or x in (lng, end] and it was written by the recovery with the epoch's
 * ballot (HS_RUN_RECOVERY and wave == ballot).  Slots after end hold
 * nothing: they become one BRIDGE gap up to `to`.  For the live epoch the
 * caller passes lng = end = the epoch's last possible LSN: peers send only
 * released slots, all acceptable.  The first acceptable copy seen of the
 * next slot wins; later copies of delivered slots are dropped.  An
 * acceptable HOLE run becomes a HOLE gap, a BRIDGE run a BRIDGE gap, a
 * peer's TRIM gap a TRIM gap.
 *
 * PASSING AND DATALOSS.  Input i has passed slot x when it sent anything
 * after x: a later run, a gap (NORECORDS, TRIM, CHECKSUM) covering x or
 * beyond, or END.  A slot that no input holds an acceptable copy of is
 * DATALOSS only when at least n - r + 1 inputs have passed it (every
 * copyset of r peers then meets them, so every copy is gone) AND every
 * input that is up has passed it.  The second condition costs only the
 * wait for peers that are answering anyway, and keeps a peer that lost
 * its disk (wiped, replaced: it answers "nothing here" for slots it had
 * acknowledged, outside the failure model) from turning copies that the
 * other peers still hold into DATALOSS.  Otherwise the merge waits: an
 * input that is down (hs_merge_down) proves nothing from then on, and the
 * caller decides how long to wait (hs_merge_blocked tells it that only
 * down inputs could still decide the next slot).
 *
 * MEMORY.  A run that covers the next slot is handed out straight from the
 * caller's bytes (no copy: with one peer, or a peer that is ahead of the
 * others, nothing is buffered).  Runs that arrive early (a later slot than
 * the next one) are copied into the input's own buffer until the merge
 * reaches them or passes them; the caller bounds that by the credit it
 * grants each input (hs_merge_buffered).  No allocation per record: one
 * growing item array and one byte buffer per input.
 *
 * FLOW.  out->deliver returns how many of the offered records it took; fewer
 * (the client is out of credit) stops the merge at that slot until the
 * caller calls hs_merge_step() again.
 */
#ifndef HS_MERGE_H
#define HS_MERGE_H

#include <stddef.h>
#include <stdint.h>

#include "run.h"

/* Gap kinds handed to out->gap: the READ_GAP kinds (format.h). */
enum { HS_MERGE_HOLE = 1, HS_MERGE_BRIDGE = 2, HS_MERGE_TRIM = 3, HS_MERGE_DATALOSS = 4 };

/* hs_merge_step() and the feeding calls return one of these. */
enum {
	HS_MERGE_MORE = 0,  /* waiting for input (see hs_merge_blocked) */
	HS_MERGE_FULL = 1,  /* out->deliver took less than offered */
	HS_MERGE_DONE = 2,  /* every slot up to `to` was handed out */
};

#define HS_MERGE_INPUTS_MAX 32

struct hs_merge_cfg {
	uint64_t from, to;   /* the slots to merge, inclusive; from <= to + 1 */
	uint64_t lng, end;   /* acceptability, see above */
	uint32_t ballot;     /* the recovery's ballot for (lng, end] */
	int n;               /* inputs (peers of the nodeset), 0..32 */
	int r;               /* replication factor, >= 1 */
};

struct hs_merge_out {
	/* Hand out records [lo, lo + cnt) of run (first LSN first; run and
	 * its bytes borrowed for the call; lo >= first).  Returns how many
	 * it took, 0..cnt. */
	uint32_t (*deliver)(void *arg, uint64_t first, const struct hs_run *run, uint64_t lo,
			    uint32_t cnt);
	/* Hand out the gap [lo, hi] of kind HS_MERGE_*. */
	void (*gap)(void *arg, uint64_t lo, uint64_t hi, int kind);
};

struct hs_merge;

/* A merge over c (copied); out and arg are borrowed for its life.  Never
 * fails (allocation failure aborts).  Nothing is handed out until the
 * first call below; an empty range or one wholly after end is DONE at the
 * first hs_merge_step(). */
struct hs_merge *hs_merge_new(const struct hs_merge_cfg *c, const struct hs_merge_out *out,
			      void *arg);
/* Free m and every buffered copy.  NULL is a no-op. */
void hs_merge_free(struct hs_merge *m);

/* Input i sent the run run[0..len) at first (borrowed for the call; the
 * caller has checked it: hs_run_parse_nocrc must accept it).  Then hands
 * out what it can.  Returns HS_MERGE_* or -HS_EPROTO (not a run, i out of
 * range; nothing changed). */
int hs_merge_run(struct hs_merge *m, int i, uint64_t first, const uint8_t *run, size_t len);
/* Input i sent a gap [lo, hi] with reason HS_GAP_* (proto.h): TRIM is
 * handed out as TRIM, NORECORDS and CHECKSUM only pass the slots.  Returns
 * as hs_merge_run. */
int hs_merge_gap(struct hs_merge *m, int i, uint64_t lo, uint64_t hi, int reason);
/* Input i ended successfully: it passed every slot up to `to`.  Returns as
 * hs_merge_run. */
int hs_merge_end(struct hs_merge *m, int i);
/* Input i is down (link lost, or its stream failed): it proves nothing
 * from now on; what it already sent stays.  No handing out. */
void hs_merge_down(struct hs_merge *m, int i);
/* Input i is being read again from hs_merge_next(m): it is up, its
 * buffered copies are dropped and its position is the next slot. */
void hs_merge_reopen(struct hs_merge *m, int i);
/* Hand out what can be handed out now (after out->deliver took less, once
 * there is credit again).  Returns HS_MERGE_*. */
int hs_merge_step(struct hs_merge *m);

/* The next slot to hand out (to + 1 once DONE). */
uint64_t hs_merge_next(const struct hs_merge *m);
/* Input i's position: every slot below it was sent by it (or it ended). */
uint64_t hs_merge_pos(const struct hs_merge *m, int i);
/* 1 if input i is marked down. */
int hs_merge_is_down(const struct hs_merge *m, int i);
/* Records and run bytes (as the peer counts them: run length + 12 per
 * run) input i has buffered now. */
void hs_merge_buffered(const struct hs_merge *m, int i, uint64_t *records, uint64_t *bytes);
/* 1 if the next slot cannot be decided by the inputs that are up: every
 * input that has not passed it is down, and too few have passed it to
 * prove a DATALOSS.  0 otherwise (also when DONE). */
int hs_merge_blocked(const struct hs_merge *m);

#endif
