/*
 * recovery.pml - HStore sealing and epoch recovery (LogDevice's Flexible
 * Paxos) with nodeset N=4 and replication R=2, for the spin model checker.
 *
 * An epoch is a ballot.  The epoch-1 sequencer stores each slot (an ESN after
 * LNG) on a copyset of R peers and acks the client only once all R copies are
 * stored.  The recoveries of epochs 2 and 3 race: each seals Q1 peers, reads
 * a digest from them, keeps per slot the copy of highest precedence (none
 * found: HOLE), re-replicates it to R peers with recovery ballot = its epoch
 * and publishes the result (CLEAN).  Q1 = N-R+1 = 3 verifies; Q1 = 2 loses
 * an acknowledged write.  test/model/run checks both, README.md explains.
 *
 *   spin -DQ1=3 -a recovery.pml && gcc -O2 -DSAFETY -o pan pan.c && ./pan -E
 *
 * Macros: Q1 (seal quorum, default 3), L (slots 1-3, default 2), W (max
 * sequencer copies per slot, default R), ONE_RECOVERY (only epoch 2),
 * NO_RAISE (a peer that accepts a recovery write keeps its seal), PREC_GUARD
 * (a peer never replaces a copy by one of lower precedence), NO_REDUCE (turn
 * off the hand-made symmetry and commutativity reductions below), REACH (a
 * probe that must fail: shows the interesting end states are reachable).
 */
#ifndef Q1
#define Q1 3
#endif
#ifndef L
#define L 2
#endif
#define N 4
#define R 2
#ifndef W
#define W R
#endif
#ifdef ONE_RECOVERY
#define EMAX 2
#else
#define EMAX 3
#endif

/* d_step bodies may hold no loops: FOR_SLOTS(M) expands M(0); .. M(L-1) */
#if L == 1
#define FOR_SLOTS(M)		M(0)
#define FOR_SLOTS_OF(M, n)	M(n, 0)
#elif L == 2
#define FOR_SLOTS(M)		M(0); M(1)
#define FOR_SLOTS_OF(M, n)	M(n, 0); M(n, 1)
#elif L == 3
#define FOR_SLOTS(M)		M(0); M(1); M(2)
#define FOR_SLOTS_OF(M, n)	M(n, 0); M(n, 1); M(n, 2)
#else
#error "L must be 1, 2 or 3"
#endif
#define NBITS(x)	(((x) & 1) + (((x) >> 1) & 1) + (((x) >> 2) & 1) + (((x) >> 3) & 1))

/*
 * A stored copy is one byte: ballot << 2 | value.  Ballot 0: written by the
 * sequencer; ballot e > 0: written by the recovery of epoch e (LogDevice's
 * WRITTEN_BY_RECOVERY flag is "ballot > 0", the recovery epoch is the
 * ballot).  All slots belong to epoch 1, so the record's own epoch needs no
 * field, and each slot has one possible record.  The encoding makes
 * precedence integer order: none < sequencer copy < recovery copy of ballot
 * 2 < recovery copy of ballot 3, so the digest is a maximum.
 */
#define NONE	0
#define REC	1	/* the record the epoch-1 sequencer wrote at the slot */
#define HOLE	2	/* a hole plug */
#define COPY(b, v)	(((b) << 2) | (v))
#define NAME(v)		(v == REC -> 'R' : 'H')	/* for the trail: R or H */
#define VAL(c)		((c) & 3)

byte seal[N];		/* per peer: highest seal (promised ballot) */
byte st[N * L];		/* st[n * L + s]: peer n's copy of slot s */
byte cs[L];		/* peers that stored slot s for the sequencer */
bool acked[L];		/* the client got an ack for slot s */
byte dec[2 * L];	/* dec[(e - 2) * L + s]: what recovery e decided */
bool done[2];		/* recovery e completed (CLEAN) */

/*
 * The invariants, asserted after every step that changes acked[] or done[]
 * (dec[] is set in the same step as done[]), so they hold in every state.
 */
#define CHECK1(s) \
	/* (1) no acknowledged write is lost or plugged with HOLE */ \
	assert(!acked[s] || !done[0] || dec[s] == REC); \
	assert(!acked[s] || !done[1] || dec[L + s] == REC); \
	/* (2) two completed recoveries agree on every slot */ \
	assert(!done[0] || !done[1] || dec[s] == dec[L + s])
#ifdef REACH
/* Non-vacuity probe for run: "both recoveries complete, slot 0 was acked
 * and kept, the last slot was plugged" must be reachable, so this fails. */
#define check() \
	FOR_SLOTS(CHECK1); \
	assert(!(done[0] && done[1] && acked[0] && dec[0] == REC && \
		 dec[L - 1] == HOLE && dec[2 * L - 1] == HOLE))
#else
#define check()	FOR_SLOTS(CHECK1)
#endif

/* A peer's store is last-writer-wins per slot unless PREC_GUARD. */
#ifdef PREC_GUARD
#define PUT(n, s, c) \
	if :: (c) >= st[(n) * L + (s)] -> st[(n) * L + (s)] = (c) :: else fi
#else
#define PUT(n, s, c)	st[(n) * L + (s)] = (c)
#endif

/*
 * Reductions (all off with -DNO_REDUCE; test/model/run cross-checks).
 *
 * Peer symmetry: every process treats all peers alike and the invariants
 * name no peer, so any execution can be renamed so that recovery 2 seals
 * only among peers 0-2 (name a peer it did not seal 3; Q1 < N) and
 * recovery 3 seals the peers of 0-2 it seals in the order 0, 1, 2 (permute
 * 0-2, which keeps recovery 2 inside 0-2).  The renamed execution breaks an
 * assertion iff the original does.
 *
 * Slot symmetry: likewise slots, so slot s gets its first sequencer copy
 * only after slot s - 1 got one.
 *
 * Early digest for the highest epoch: once recovery EMAX sealed a peer,
 * nothing can change that peer's copies before EMAX's own writes (STOREs of
 * epoch 1 and writes of lower ballots are refused), so its digest read
 * commutes with every other step and is done inside the SEAL step.
 */
#ifdef NO_REDUCE
#define SLOT_SYMM(s)	1
#define EARLY(e)	0
#else
#define SLOT_SYMM(s)	(s == 0 || cs[s - 1] != 0)
#define EARLY(e)	(e == EMAX)
#endif
#if defined(NO_REDUCE) || Q1 >= N
#define PEER_SYMM(n)	1
#else
#define PEER_SYMM(n) \
	(e == 2 && n != 3 || \
	 e == 3 && (n == 3 || (sm & ((1 << n) - 1)) == (1 << n) - 1))
#endif

/*
 * The epoch-1 sequencer and its STORE messages.  Only the arrival time of a
 * STORE matters (the peer checks its seal then), so a branch is "a STORE of
 * slot s arrives at peer n": at any time, in any order, or never (a lost
 * message, a crashed sequencer).  A peer refuses a STORE of epoch 1 <= its
 * seal; a refusal changes no state (the sequencer may try another peer in a
 * new wave, another branch).  The copyset is the set of peers that stored
 * the slot, at most W; the ack goes out the moment the R-th copy is stored,
 * the earliest the real sequencer could send it.
 */
#define STORE(s, n) \
	:: d_step { (cs[s] & (1 << n)) == 0 && NBITS(cs[s]) < W && \
		    seal[n] < 1 && SLOT_SYMM(s) -> \
		PUT(n, s, COPY(0, REC)); \
		cs[s] = cs[s] | (1 << n); \
		if \
		:: NBITS(cs[s]) == R -> \
			acked[s] = 1; \
			printf("MSC: e1 STORE slot%d -> peer%d, ACK slot%d\n", s, n, s); \
			check() \
		:: else -> \
			printf("MSC: e1 STORE slot%d -> peer%d\n", s, n) \
		fi }
#define STORES(s)	STORE(s, 0) STORE(s, 1) STORE(s, 2) STORE(s, 3)

active proctype sequencer()
{
end:	do
	STORES(0)
#if L > 1
	STORES(1)
#endif
#if L > 2
	STORES(2)
#endif
	od
}

/*
 * Recovery of epoch 1 by the sequencer of epoch e (ballot e):
 * 1. SEAL one peer at a time, any Q1 peers.  A peer accepts iff its seal is
 *    below e and raises it to e (the Paxos promise).  A peer sealed by a
 *    higher epoch refuses; with too few peers left the recovery never
 *    finishes, which stands for "preempted, give up".
 * 2. DIGEST from each sealed peer, one at a time in any order: read all its
 *    copies after LNG, keep per slot the highest precedence copy.
 * 3. Decide per slot: the kept copy's value, or HOLE if there is none.
 * 4. MUTATE: write each decision with ballot e to R peers, one write at a
 *    time, slots and peers in any order.  A peer accepts iff e >= its seal
 *    and then raises its seal to e; a refusal changes nothing (the recovery
 *    may try another peer).
 * 5. CLEAN: publish the decisions (dec[], done[]).
 * Dead locals are zeroed so that finished phases do not split states.
 */
#define DIG1(n, s) \
	if :: st[n * L + s] > best[s] -> best[s] = st[n * L + s] :: else fi
#define SEAL(n) \
	:: d_step { NBITS(sm) < Q1 && (sm & (1 << n)) == 0 && \
		    seal[n] < e && PEER_SYMM(n) -> \
		seal[n] = e; sm = sm | (1 << n); \
		printf("MSC: e%d SEAL peer%d\n", e, n); \
		if \
		:: EARLY(e) -> \
			dm = dm | (1 << n); FOR_SLOTS_OF(DIG1, n); \
			printf("MSC: e%d DIGEST peer%d\n", e, n) \
		:: else \
		fi }
#define DIGEST(n) \
	:: d_step { (sm & ~dm & (1 << n)) != 0 -> \
		dm = dm | (1 << n); FOR_SLOTS_OF(DIG1, n); \
		printf("MSC: e%d DIGEST peer%d\n", e, n) }
#define DECIDE1(s) \
	if :: best[s] == NONE -> best[s] = HOLE :: else -> best[s] = VAL(best[s]) fi
#ifdef NO_RAISE
#define RAISE(n)	skip
#else
#define RAISE(n)	seal[n] = e
#endif
#define MUTATE(s, n) \
	:: d_step { NBITS(wm[s]) < R && (wm[s] & (1 << n)) == 0 && \
		    e >= seal[n] -> \
		PUT(n, s, COPY(e, best[s])); RAISE(n); \
		wm[s] = wm[s] | (1 << n); \
		printf("MSC: e%d MUTATE slot%d=%c -> peer%d\n", e, s, NAME(best[s]), n) }
#define MUTATES(s)	MUTATE(s, 0) MUTATE(s, 1) MUTATE(s, 2) MUTATE(s, 3)
#if L == 1
#define ALL_WRITTEN	(NBITS(wm[0]) == R)
#elif L == 2
#define ALL_WRITTEN	(NBITS(wm[0]) == R && NBITS(wm[1]) == R)
#else
#define ALL_WRITTEN	(NBITS(wm[0]) == R && NBITS(wm[1]) == R && NBITS(wm[2]) == R)
#endif
#define PUBLISH1(s) \
	dec[(e - 2) * L + s] = best[s]; \
	printf("MSC: e%d DECIDED slot%d = %c\n", e, s, NAME(best[s])); \
	best[s] = 0; wm[s] = 0

proctype recovery(byte e)
{
	byte sm, dm;		/* peers sealed, peers digested */
	byte best[L];		/* digest, then the decision per slot */
	byte wm[L];		/* per slot: peers that accepted the write */

	do
	SEAL(0) SEAL(1) SEAL(2) SEAL(3)
	:: NBITS(sm) == Q1 -> break
	od;
	do
	DIGEST(0) DIGEST(1) DIGEST(2) DIGEST(3)
	:: d_step { dm == sm -> FOR_SLOTS(DECIDE1); sm = 0; dm = 0 }; break
	od;
	do
	MUTATES(0)
#if L > 1
	MUTATES(1)
#endif
#if L > 2
	MUTATES(2)
#endif
	:: d_step { ALL_WRITTEN ->
		FOR_SLOTS(PUBLISH1);
		done[e - 2] = 1;
		printf("MSC: e%d CLEAN, complete\n", e);
		check() }; break
	od
}

init
{
	atomic {
		run recovery(2);
#ifndef ONE_RECOVERY
		run recovery(3)
#endif
	}
}
