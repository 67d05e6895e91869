/*
 * register.h - CASPaxos metadata registers (Rystsov 2018) with flexible
 * quorums, as pure event-driven state machines.  No I/O here: the caller
 * moves frames (proto.h, types 96..99) and persists acceptor state.
 *
 * MODEL
 * -----
 * A register is a key (1..255 bytes) naming a value (<= HS_REG_DATA_MAX
 * bytes, empty = absent) with a version.  A set M of acceptors (the
 * hs-peers) keeps per key: the promised ballot, the accepted ballot and the
 * accepted value.  A proposer (hs-serve) runs change(key, fn):
 *   1. REG_PREPARE(b) to all of M; wait for |Q1| promises; take the value
 *      with the highest accepted ballot;
 *   2. apply fn; REG_ACCEPT(b, value) to all of M; wait for |Q2| acks.
 * Safety needs |Q1| + |Q2| > |M| (every Q1 meets every Q2); the proposer
 * refuses other sizes.  On a refusal (NACK) or a timeout the round is
 * retried with a ballot above every ballot seen, after a randomized
 * backoff, at most max_attempts times.
 *
 * One round trip: an acceptor that accepts b also promises next(b) =
 * (b.counter + 1, b.proposer).  A proposer that completed b and holds >=
 * |Q1| acks for it therefore already holds a phase-1 quorum for next(b)
 * whose highest accepted value is its own, and sends REG_ACCEPT(next(b))
 * directly.  A NACK falls back to both phases.
 *
 * Changes of one key from one proposer are queued and applied in order;
 * all queued changes join the next round (fn1, then fn2 on its result, in
 * one accept), which is how thousands of stream creations cost one round.
 *
 * Exactly once.  A round whose ACCEPT went out but did not reach |Q2| may
 * still become chosen later (one acceptor holding it is enough for a later
 * phase 1 to adopt it), so blindly re-applying fn on retry could apply it
 * twice.  Every accepted value derives from one parent (the value phase 1
 * found, or the proposer's own committed value on the fast path) and
 * chosen values form one chain of descendants; a change is applied iff
 * one of the rounds that carried it is on that chain.  So the value
 * records, in an envelope around the caller's bytes (register.c), for each
 * of the last HS_REG_TRACK proposers that changed it the ballot of that
 * proposer's latest round on the value's own chain, plus floor = the
 * highest ballot evicted from that list (LRU by ballot).  With A the
 * ballots of this proposer's rounds whose value holds the change (rounds
 * that applied fn, and rounds built on a value already holding it), and E
 * our entry in the value found by phase 1:
 *   E in A                  -> the change is in the value: do not re-apply;
 *   E present, not in A     -> E is our last round on this chain and its
 *                              value does not hold the change (it predates
 *                              it or was built on a value without it), and
 *                              none of our later rounds is on the chain;
 *   E absent, floor < min(A) -> none of our rounds is on the chain (an
 *                              entry of ours >= min(A) would be listed or
 *                              have raised floor);
 *   A empty                 -> never sent: apply;
 * in these three cases fn is (re-)applied; the round's value then holds
 * none of the earlier attempts, so if any value holding it is chosen none
 * holding an earlier attempt can be (they are not on one chain), and vice
 * versa.  Otherwise (our entry evicted by HS_REG_TRACK other proposers
 * since our attempt) the change completes -HS_ETIMEOUT: unknown.  This does
 * not depend on how many versions competitors added meanwhile, so two or
 * three contending proposers never see an unknown outcome unless messages
 * are lost (a round may then still be carried by some acceptor when the
 * proposer gives up after max_attempts).
 * Rounds where every fn returned HS_REG_SAME keep version and tag (a read
 * is a change that writes back the same value: linearizable).
 *
 * Proposer ids must be unique per proposer incarnation (a restarted
 * hs-serve must not reuse ballots it may have sent before), e.g. node id
 * << 16 | a boot counter.
 */
#ifndef HS_REGISTER_H
#define HS_REGISTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "proto.h"

#define HS_REG_MAX_ACCEPTORS 32
#define HS_REG_MAX_ATTEMPTS 16
/* Proposers tracked per value for exactly-once (see above). */
#define HS_REG_TRACK 8
/* The envelope: u8 format | u8 n | ballot floor | n ballots. */
#define HS_REG_ENV_MAX (2 + 12 + 12 * HS_REG_TRACK)
/* Largest value a change function may produce. */
#define HS_REG_DATA_MAX (HS_REG_VALUE_MAX - HS_REG_ENV_MAX)

/* <0, 0, >0 as a < b, a == b, a > b (counter first, then proposer). */
int hs_reg_ballot_cmp(const struct hs_reg_ballot *a, const struct hs_reg_ballot *b);

/* ---- acceptor ----------------------------------------------------------- */

/* One key's acceptor state.  All zero (HS_REG_ACC_INIT) = never touched. */
struct hs_reg_acc {
	struct hs_reg_ballot promised;
	struct hs_reg_ballot accepted;
	uint64_t version;          /* of the accepted value */
	struct hs_reg_ballot tag;  /* of the accepted value */
	struct hs_buf value;       /* owned; opaque: envelope + caller's bytes */
};
#define HS_REG_ACC_INIT { { 0, 0 }, { 0, 0 }, 0, { 0, 0 }, HS_BUF_INIT }

void hs_reg_acc_free(struct hs_reg_acc *a);

/*
 * Phase 1: promise iff *b >= a->promised.  Returns 1 (promised and a
 * changed: persist a before replying), 0 (promised again, unchanged: reply
 * without persisting) or -HS_ESEALED (refused; a unchanged).  The reply
 * entry is filled from a by hs_reg_acc_promise_entry().
 */
int hs_reg_acc_prepare(struct hs_reg_acc *a, const struct hs_reg_ballot *b);
/*
 * Phase 2: accept iff *b >= a->promised, or *b == a->accepted (a
 * duplicate: acked again, nothing changes).  Accepting sets accepted = *b,
 * the value (copied from v, borrowed) and promised = next(*b).  Returns 1
 * (changed: persist first), 0 (duplicate) or -HS_ESEALED (refused).
 */
int hs_reg_acc_accept(struct hs_reg_acc *a, const struct hs_reg_ballot *b,
		      const struct hs_reg_val *v);
/* Fill a REG_PROMISE reply entry for key/ballot/status from a (pointers
 * borrow a and key until a changes). */
void hs_reg_acc_promise_entry(const struct hs_reg_acc *a, const uint8_t *key, uint8_t key_len,
			      const struct hs_reg_ballot *b, int status, struct hs_reg_entry *e);

/*
 * Persisted form of a (the value of hs-peer's meta column family):
 *   u8 format (1) | ballot promised | ballot accepted | u64 version
 *   | ballot tag | u32 len | value | u32 crc32c of the bytes before it
 * (ballots as on the wire: u64 counter | u32 proposer; little-endian.)
 * _enc appends to out.  _dec replaces *a's contents (a must be initialised;
 * its value buffer is reused) and returns 0, or -HS_ECHECKSUM (bad CRC) or
 * -HS_EDATA (wrong size, format or length), leaving *a unchanged.
 */
void hs_reg_acc_enc(const struct hs_reg_acc *a, struct hs_buf *out);
int hs_reg_acc_dec(const uint8_t *p, size_t len, struct hs_reg_acc *a);

/* ---- proposer ----------------------------------------------------------- */

struct hs_reg_proposer;

/*
 * The change function: given the current value cur[0..len) (len 0 =
 * absent; borrowed for the call) and its version, either
 *   - append the new value to out (empty on entry) and return 0,
 *   - return HS_REG_SAME to leave the value as it is (reads, no-op CAS), or
 *   - return a negative code (e.g. -HS_EEXIST for a failed precondition):
 *     this change is dropped, the others of the round still apply.
 * It may run several times (once per attempt) and must not call into the
 * proposer.  A value over HS_REG_DATA_MAX fails the change -HS_ETOOBIG.
 */
#define HS_REG_SAME 1
typedef int (*hs_reg_fn)(void *arg, const uint8_t *cur, size_t len, uint64_t version,
			 struct hs_buf *out);
/*
 * Completion, called once per change.  status:
 *   0              applied (or for HS_REG_SAME: the value was current when
 *                  the round was chosen); value/len/version = the register
 *                  after the round (borrowed for the call);
 *   fn's error     not applied;
 *   -HS_ETOOBIG    new value too big, not applied;
 *   -HS_EDATA      the stored value has no readable envelope (not written
 *                  by this module): not applied, the value is left as is;
 *   -HS_EUNAVAIL   gave up (no quorum after max_attempts): not applied;
 *   -HS_ETIMEOUT   gave up, outcome unknown: may or may not be applied, and
 *                  never twice;
 *   -ECANCELED     the proposer is being freed; applied or not, unknown
 *                  (the callback must not call into the proposer).
 * Otherwise it may call hs_reg_change() (also for the same key), but not
 * hs_reg_proposer_free().
 */
typedef void (*hs_reg_done_fn)(void *arg, int status, const uint8_t *value, size_t len,
			       uint64_t version);

struct hs_reg_ops {
	/* Send frame[0..len) (borrowed for the call) to acceptor idx
	 * (0..nacc-1), best effort: losing it only costs a timeout. */
	void (*send)(void *arg, int idx, const uint8_t *frame, size_t len);
	/* Monotonic milliseconds. */
	uint64_t (*now)(void *arg);
	/* Random bits for backoff jitter. */
	uint32_t (*rand)(void *arg);
	/* Call hs_reg_proposer_on_timer() at (or after) at_ms (a now() time);
	 * replaces any earlier request.  Early or extra calls are harmless. */
	void (*timer)(void *arg, uint64_t at_ms);
};

struct hs_reg_cfg {
	uint32_t proposer_id;  /* != 0; unique per incarnation (see above) */
	int nacc;              /* |M|, 1..HS_REG_MAX_ACCEPTORS */
	int q1, q2;            /* 0 = majority; q1 + q2 > nacc */
	uint32_t timeout_ms;   /* per phase; 0 = 1000 */
	uint32_t backoff_ms;   /* base of the randomized backoff; 0 = 20 */
	int max_attempts;      /* rounds per change batch, 1..16; 0 = 8 */
	size_t max_frame;      /* largest frame to send; 0 = 1 MiB */
	size_t max_idle;       /* idle keys cached (fast path); 0 = 4096 */
	bool unsafe_quorums;   /* tests only: skip the q1 + q2 > nacc check */
	uint64_t id_base;      /* frame ids are id_base + 1, + 2, ...: a range
				* the caller keeps apart from its other
				* requests on the same links (0 = from 1) */
};

/*
 * Create a proposer.  cfg and ops are copied; arg is passed to every op.
 * Returns 0 and *out (owned: free with hs_reg_proposer_free), or
 * -HS_ECONFIG for a bad configuration (quorums not intersecting, sizes out
 * of range, proposer_id 0, missing ops).
 */
int hs_reg_proposer_new(const struct hs_reg_cfg *cfg, const struct hs_reg_ops *ops, void *arg,
			struct hs_reg_proposer **out);
/* Complete every pending change with -ECANCELED, free everything. */
void hs_reg_proposer_free(struct hs_reg_proposer *p);

/*
 * Queue change(key, fn) (key copied).  done(arg, ...) is called exactly
 * once, never from inside this call.  Nothing is sent until
 * hs_reg_proposer_flush().  Returns 0, or -HS_EDATA for a key of length 0
 * or over HS_REG_KEY_MAX (done is then not called).
 */
int hs_reg_change(struct hs_reg_proposer *p, const void *key, size_t key_len, hs_reg_fn fn,
		  hs_reg_done_fn done, void *arg);
/* Linearizable read: a change with the identity function. */
int hs_reg_read(struct hs_reg_proposer *p, const void *key, size_t key_len, hs_reg_done_fn done,
		void *arg);

/*
 * Feed a REG_PROMISE or REG_ACCEPTED frame body from acceptor idx.
 * Entries for unknown keys or other ballots (late, duplicated) are ignored.
 * May call done callbacks.  Returns 0, or -HS_EPROTO for a malformed body,
 * another type or a bad idx (nothing done: the caller drops the connection).
 */
int hs_reg_proposer_on_reply(struct hs_reg_proposer *p, int idx, uint16_t type,
			     const uint8_t *body, size_t len);
/* The timer requested through ops->timer fired: handle timeouts and
 * backoffs.  May call done callbacks. */
void hs_reg_proposer_on_timer(struct hs_reg_proposer *p);
/*
 * Start the rounds made ready by the calls above, send the batched frames
 * and re-arm the timer.  Call it after a batch of the calls above (e.g.
 * once per event-loop turn).  May call done callbacks.
 */
void hs_reg_proposer_flush(struct hs_reg_proposer *p);

/* Number of keys with a round in flight or queued changes. */
size_t hs_reg_proposer_busy(const struct hs_reg_proposer *p);

/* Skip the envelope of a value read straight from an acceptor (REG_LIST,
 * bypassing the proposer): sets *data and *dlen to the caller's bytes.
 * Returns 0, or -HS_EDATA if p has no readable envelope (len 0 is an absent
 * value: *dlen = 0). */
int hs_reg_unwrap(const uint8_t *p, size_t len, const uint8_t **data, size_t *dlen);

#endif
