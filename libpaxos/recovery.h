/*
 * recovery.h - epoch recovery of hs-serve (docs/replication.md §5): seal
 * every unclean epoch of a log on an f-majority of its nodeset, digest the
 * slots after its LNG, re-replicate what survives, plug holes, end it with
 * a BRIDGE, CLEAN the peers and record the result in the log's register.
 *
 * The sequencer (seq.c) starts a recovery when it has activated a new
 * epoch for a stream (s->epoch, with s->lr the log record that activation
 * wrote: its entries older than s->epoch that are not HS_LEPOCH_CLEAN are
 * recovered, oldest first).  The recovery talks to the peers through
 * sv->peers with its own request ids, and registers its register change
 * through hs_serve_reg_change().  The recovery ballot is s->epoch - 1.
 *
 * OWNERSHIP.  The recovery state is owned by the stream (s->recov) from
 * hs_recovery_start() until done() is called or hs_recovery_cancel();
 * s must stay valid until then (the caller holds a ref on it).
 *
 * MEMORY.  The digest of one epoch is buffered whole: every run each sealed
 * peer holds after the epoch's LNG.  That is bounded by what the dead
 * sequencer could have in flight past its LNG (its per-stream window, 32
 * MiB) times the number of sealed peers; epochs are recovered one at a
 * time and each digest is freed before the next.
 */
#ifndef HS_RECOVERY_H
#define HS_RECOVERY_H

#include <stddef.h>
#include <stdint.h>

struct serve;
struct sstream;
struct hs_recovery;

/* Called once when the recovery of s ends: status 0 - every epoch older
 * than s->epoch is clean, s->lr holds the updated record (entries CLEAN
 * with lng/end/ballot, lce raised) as written to the register; or a
 * negative code: -HS_ESEALED (a newer sequencer sealed or activated the
 * log: s must stop sequencing), -HS_EUNAVAIL (fewer than an f-majority of
 * some nodeset, or fewer than r peers to re-replicate to, within the
 * recovery's deadline, HS_RECOVERY_DEADLINE_MS without progress),
 * -HS_ETIMEOUT (the register change timed out: the entries may or may not
 * be clean; a later activation recovers them again, which is harmless).
 * s->recov is NULL again when done runs. */
typedef void hs_recovery_done_fn(struct serve *sv, struct sstream *s, int status);

#define HS_RECOVERY_DEADLINE_MS 10000

/* Start recovering s (see above).  With nothing to recover, done runs
 * before this returns.  Never fails otherwise (errors go to done). */
void hs_recovery_start(struct serve *sv, struct sstream *s, hs_recovery_done_fn *done);

/* Stop s's recovery, if any, without calling done (the stream is being
 * freed or killed); requests in flight are forgotten. */
void hs_recovery_cancel(struct serve *sv, struct sstream *s);

/* Link idx came up / went down: recoveries waiting for peers re-drive
 * (resend SEALs, restart digests, retry writes with other peers).  Call
 * them from the peers' up/down callbacks (after the link's requests were
 * completed with NULL, as peers.h does). */
void hs_recovery_peer_up(struct serve *sv, int idx);
void hs_recovery_peer_down(struct serve *sv, int idx);

/*
 * THE DECISION (pure, unit-tested in test/unit/t_recovery.c).
 *
 * The digest of an epoch is a list of copies: each a run (or a slice of
 * one) that a sealed peer holds, as its RECORDS delivered it.  Per slot x
 * in (lng, highest slot of any copy] the copy of highest precedence wins:
 * a RECOVERY copy of ballot b has precedence b + 1, any other copy 0 (a
 * recovery-written copy beats the sequencer's; a higher ballot beats a
 * lower one).  Copies of equal precedence hold the same thing (one
 * sequencer, or one recovery, per ballot), so any of them may be taken.
 * The winner's HOLE or BRIDGE (a BRIDGE of an earlier, unfinished
 * recovery) makes x a hole, as does a slot no copy covers.  end is the
 * highest slot decided as a record; holes after it are dropped (they were
 * never acknowledged).  Without any record after lng, end = lng.
 */
struct hs_rcopy {
	uint64_t first;          /* LSN of its first slot */
	uint32_t n;              /* slots (records), >= 1 */
	uint8_t flags;           /* HS_RUN_* of the run */
	uint32_t ballot;         /* the run's wave field (meaningful if RECOVERY) */
};

/* A decided range: slots [first, first + n); copy >= 0: records
 * [off, off + n) of copies[copy]; copy == -1: holes. */
struct hs_rrange {
	uint64_t first;
	uint32_t n;
	int32_t copy;
	uint32_t off;
};

/*
 * Decide the epoch from copies[0..nc) (borrowed; any order; slots <= lng
 * are ignored).  Fills *ranges (allocated, the caller frees it; NULL when
 * *nranges is 0) with consecutive, ascending ranges covering exactly
 * (lng, *end], adjacent ranges from the same copy or both holes merged,
 * and *end (lng when nothing survives).  Never fails (allocation failure
 * aborts).  Cost O(nc log nc) (a sweep with a heap by precedence).
 */
void hs_recovery_decide(uint64_t lng, const struct hs_rcopy *copies, size_t nc,
			struct hs_rrange **ranges, size_t *nranges, uint64_t *end);

#endif
