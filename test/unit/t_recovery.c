/* t_recovery.c - the recovery's decision (libpaxos/recovery.h,
 * hs_recovery_decide): precedence, holes, trailing holes, empty epochs,
 * earlier partial recoveries, and a randomized check against a per-slot
 * reference. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto.h"
#include "recovery.h"
#include "tap.h"

#define E(n) HS_LSN(5, n)
#define SEQ(f, n) { E(f), n, 0, 1 }
#define REC(f, n, b) { E(f), n, HS_RUN_RECOVERY, b }
#define HOLE(f, n, b) { E(f), n, HS_RUN_RECOVERY | HS_RUN_HOLE, b }
#define BRIDGE(f, b) { E(f), 1, HS_RUN_RECOVERY | HS_RUN_BRIDGE, b }

static struct hs_rrange *rg;
static size_t nrg;
static uint64_t end;

static void run(uint64_t lng, const struct hs_rcopy *c, size_t n)
{
	free(rg);
	hs_recovery_decide(lng, c, n, &rg, &nrg, &end);
}

/* Range i is [first, first + n) from copy (or -1) at offset off. */
static int is_range(size_t i, uint64_t first, uint32_t n, int32_t copy, uint32_t off)
{
	if (i >= nrg) {
		printf("# range %zu missing\n", i);
		return 0;
	}
	if (rg[i].first != first || rg[i].n != n || rg[i].copy != copy ||
	    (copy >= 0 && rg[i].off != off)) {
		printf("# range %zu: got e%un%u +%u copy %d off %u\n", i,
		       HS_LSN_EPOCH(rg[i].first), HS_LSN_ESN(rg[i].first), rg[i].n, rg[i].copy,
		       rg[i].off);
		return 0;
	}
	return 1;
}

static void t_basic(void)
{
	run(E(0), NULL, 0);
	ok(nrg == 0 && end == E(0) && rg == NULL, "no copies: nothing, end = lng");
	{
		struct hs_rcopy c[] = { SEQ(1, 5) };

		run(E(0), c, 1);
		ok(nrg == 1 && is_range(0, E(1), 5, 0, 0) && end == E(5), "one copy");
	}
	{
		struct hs_rcopy c[] = { SEQ(1, 8) };

		run(E(3), c, 1);
		ok(nrg == 1 && is_range(0, E(4), 5, 0, 3) && end == E(8),
		   "copy straddling lng: only slots after lng, offset 3");
	}
	{
		struct hs_rcopy c[] = { SEQ(1, 3) };

		run(E(3), c, 1);
		ok(nrg == 0 && end == E(3), "copies at or below lng are ignored");
		run(E(7), c, 1);
		ok(nrg == 0 && end == E(7), "lng above every copy: end = lng");
	}
	{
		struct hs_rcopy c[] = { SEQ(6, 3), SEQ(1, 3) };

		run(E(0), c, 2);
		ok(nrg == 3 && is_range(0, E(1), 3, 1, 0) && is_range(1, E(4), 2, -1, 0) &&
			   is_range(2, E(6), 3, 0, 0) && end == E(8),
		   "hole between two copies (input unsorted)");
	}
	{
		struct hs_rcopy c[] = { SEQ(3, 2) };

		run(E(0), c, 1);
		ok(nrg == 2 && is_range(0, E(1), 2, -1, 0) && is_range(1, E(3), 2, 0, 0) &&
			   end == E(4),
		   "holes before the first copy");
	}
}

static void t_trailing(void)
{
	{
		struct hs_rcopy c[] = { SEQ(1, 8), HOLE(9, 2, 3) };

		run(E(0), c, 2);
		ok(nrg == 1 && is_range(0, E(1), 8, 0, 0) && end == E(8),
		   "trailing recovery HOLE dropped");
	}
	{
		struct hs_rcopy c[] = { SEQ(1, 4), BRIDGE(5, 2) };

		run(E(0), c, 2);
		ok(nrg == 1 && end == E(4), "earlier BRIDGE after the last record: end before it");
	}
	{
		struct hs_rcopy c[] = { HOLE(1, 4, 2), BRIDGE(5, 2) };

		run(E(0), c, 2);
		ok(nrg == 0 && end == E(0), "only holes and a bridge: empty, end = lng");
	}
	{
		struct hs_rcopy c[] = { SEQ(1, 10), HOLE(5, 6, 3) };

		run(E(0), c, 2);
		ok(nrg == 1 && is_range(0, E(1), 4, 0, 0) && end == E(4),
		   "a recovery hole over the tail cuts the end");
	}
}

static void t_precedence(void)
{
	{
		struct hs_rcopy c[] = { SEQ(1, 10), HOLE(4, 3, 2) };

		run(E(0), c, 2);
		ok(nrg == 3 && is_range(0, E(1), 3, 0, 0) && is_range(1, E(4), 3, -1, 0) &&
			   is_range(2, E(7), 4, 0, 6) && end == E(10),
		   "recovery HOLE beats the sequencer's copy");
	}
	{
		struct hs_rcopy c[] = { REC(1, 5, 2), HOLE(3, 1, 4), REC(1, 5, 3) };

		run(E(0), c, 3);
		ok(nrg == 3 && is_range(0, E(1), 2, 2, 0) && is_range(1, E(3), 1, -1, 0) &&
			   is_range(2, E(4), 2, 2, 3) && end == E(5),
		   "higher ballot wins, per slot");
	}
	{
		/* slot 1: HOLE b2 wins over SEQ; 2..3: REC b3; 4..5: HOLE b2 -> trailing. */
		struct hs_rcopy c[] = { HOLE(1, 5, 2), SEQ(1, 5), REC(2, 2, 3) };

		run(E(0), c, 3);
		ok(nrg == 2 && is_range(0, E(1), 1, -1, 0) && is_range(1, E(2), 2, 2, 0) &&
			   end == E(3),
		   "lower recovery HOLE loses to a higher ballot's record");
	}
	{
		/* An earlier recovery (ballot 2) ended the epoch at 4 with a BRIDGE
		 * at 5; sequencer copies after it were never acknowledged, the new
		 * recovery may keep them. */
		struct hs_rcopy c[] = { SEQ(1, 10), REC(1, 4, 2), BRIDGE(5, 2) };

		run(E(0), c, 3);
		ok(nrg == 3 && is_range(0, E(1), 4, 1, 0) && is_range(1, E(5), 1, -1, 0) &&
			   is_range(2, E(6), 5, 0, 5) && end == E(10),
		   "earlier BRIDGE is a hole at its slot only");
	}
	{
		struct hs_rcopy c[] = { REC(3, 3, 7), SEQ(1, 9) };

		run(E(0), c, 2);
		ok(nrg == 3 && is_range(0, E(1), 2, 1, 0) && is_range(1, E(3), 3, 0, 0) &&
			   is_range(2, E(6), 4, 1, 5) && end == E(9),
		   "recovery copy inside a sequencer copy");
	}
}

static void t_duplicates(void)
{
	{
		struct hs_rcopy c[] = { SEQ(1, 5), SEQ(1, 5), SEQ(1, 5) };

		run(E(0), c, 3);
		ok(nrg == 1 && is_range(0, E(1), 5, 0, 0), "three equal copies: one range");
	}
	{
		struct hs_rcopy c[] = { SEQ(1, 5), SEQ(1, 10) };

		run(E(0), c, 2);
		ok(nrg == 2 && is_range(0, E(1), 5, 0, 0) && is_range(1, E(6), 5, 1, 5) &&
			   end == E(10),
		   "other boundaries on another peer: continues from the longer copy");
	}
	{
		struct hs_rcopy c[] = { SEQ(1, 3), SEQ(4, 3), SEQ(7, 3) };

		run(E(0), c, 3);
		ok(nrg == 3 && end == E(9), "consecutive copies stay separate ranges");
	}
	{
		struct hs_rcopy c[] = { HOLE(1, 2, 3), HOLE(3, 2, 3), SEQ(5, 1) };

		run(E(0), c, 3);
		ok(nrg == 2 && is_range(0, E(1), 4, -1, 0) && is_range(1, E(5), 1, 2, 0),
		   "adjacent holes merged");
	}
}

/* Randomized: compare with a per-slot reference over small epochs. */
static void t_random(void)
{
	unsigned seed = 12345;
	int bad = 0;

	for (int t = 0; t < 2000 && !bad; t++) {
		struct hs_rcopy c[12];
		size_t n = (size_t)(rand_r(&seed) % 12);
		uint64_t lng = E(rand_r(&seed) % 4), want_end = lng, x, slot;
		size_t k = 0;

		for (size_t i = 0; i < n; i++) {
			int kind = rand_r(&seed) % 4;

			/* Copies of one ballot agree (one recovery per ballot):
			 * ballots 1 and 3 wrote records, 2 holes, 4 a BRIDGE. */
			c[i].first = E(1 + rand_r(&seed) % 20);
			c[i].n = 1 + rand_r(&seed) % 6;
			c[i].ballot = kind == 0 ? 1 : kind == 1 ? 1 + 2 * (rand_r(&seed) % 2)
						  : kind == 2 ? 2 : 4;
			c[i].flags = kind == 0 ? 0 : kind == 1 ? HS_RUN_RECOVERY
				     : kind == 2 ? HS_RUN_RECOVERY | HS_RUN_HOLE
						 : HS_RUN_RECOVERY | HS_RUN_BRIDGE;
			if (kind == 3)
				c[i].n = 1;
		}
		run(lng, c, n);
		/* Reference per slot: the highest precedence, and whether it
		 * is a record. */
		for (slot = lng + 1; slot <= E(30); slot++) {
			int64_t bp = -1;
			int rec = 0;

			for (size_t i = 0; i < n; i++) {
				int64_t p = (c[i].flags & HS_RUN_RECOVERY) ? c[i].ballot + 1 : 0;

				if (slot < c[i].first || slot >= c[i].first + c[i].n || p <= bp)
					continue;
				bp = p;
				rec = !(c[i].flags & (HS_RUN_HOLE | HS_RUN_BRIDGE));
			}
			if (rec)
				want_end = slot;
		}
		if (end != want_end) {
			printf("# trial %d: end %u, want %u\n", t, HS_LSN_ESN(end),
			       HS_LSN_ESN(want_end));
			bad++;
			break;
		}
		x = lng + 1;
		for (k = 0; k < nrg; k++) {
			if (rg[k].first != x || !rg[k].n) {
				bad++;
				break;
			}
			if (k && rg[k].copy < 0 && rg[k - 1].copy < 0)
				bad++; /* holes not merged */
			for (slot = x; slot < x + rg[k].n; slot++) {
				int64_t bp = -1;
				int rec = 0;

				for (size_t i = 0; i < n; i++) {
					int64_t p = (c[i].flags & HS_RUN_RECOVERY) ? c[i].ballot + 1
										  : 0;

					if (slot < c[i].first || slot >= c[i].first + c[i].n ||
					    p <= bp)
						continue;
					bp = p;
					rec = !(c[i].flags & (HS_RUN_HOLE | HS_RUN_BRIDGE));
				}
				if (rg[k].copy < 0) {
					bad += rec;
				} else {
					const struct hs_rcopy *w = &c[rg[k].copy];
					int64_t p = (w->flags & HS_RUN_RECOVERY) ? w->ballot + 1 : 0;

					bad += !rec || p != bp ||
					       w->first + rg[k].off + (slot - x) != slot ||
					       slot >= w->first + w->n;
				}
			}
			if (bad) {
				printf("# trial %d: range %zu wrong\n", t, k);
				break;
			}
			x += rg[k].n;
		}
		if (!bad && x - 1 != end) {
			printf("# trial %d: ranges end at %u, end %u\n", t, HS_LSN_ESN(x - 1),
			       HS_LSN_ESN(end));
			bad++;
		}
	}
	is_int(bad, 0, "2000 random digests agree with the per-slot reference");
}

/* Many copies: a long HOLE of an earlier recovery over 100,000 sequencer
 * copies, with records of a later recovery every 1,000 slots.  Must be
 * quick (a sweep, not a per-slot scan) and exact. */
static void t_large(void)
{
	size_t n = 100000 + 1 + 200, k = 0, recs = 0;
	struct hs_rcopy *c = calloc(n, sizeof(*c));
	struct timespec t0, t1;
	int bad = 0;

	for (uint32_t i = 0; i < 100000; i++)
		c[k++] = (struct hs_rcopy){ E(2 * i + 1), 2, 0, 1 };
	c[k++] = (struct hs_rcopy){ E(1), 200000, HS_RUN_RECOVERY | HS_RUN_HOLE, 2 };
	for (uint32_t i = 0; i < 200; i++)
		c[k++] = (struct hs_rcopy){ E(1000 * i + 500), 3, HS_RUN_RECOVERY, 3 };
	clock_gettime(CLOCK_MONOTONIC, &t0);
	run(E(0), c, n);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	for (size_t i = 0; i < nrg; i++) {
		if (rg[i].copy >= 0) {
			recs++;
			bad += rg[i].n != 3 || c[rg[i].copy].ballot != 3;
		} else {
			bad += i + 1 < nrg && rg[i + 1].copy < 0;
		}
	}
	ok(recs == 200 && !bad && nrg == 400 && end == E(199502),
	   "100,201 copies: 200 record ranges between holes, end at the last record");
	ok((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < 2000,
	   "decided in %ld ms", (long)((t1.tv_sec - t0.tv_sec) * 1000 +
				      (t1.tv_nsec - t0.tv_nsec) / 1000000));
	free(c);
}

int main(void)
{
	t_basic();
	t_trailing();
	t_precedence();
	t_duplicates();
	t_random();
	t_large();
	free(rg);
	return tap_done();
}
