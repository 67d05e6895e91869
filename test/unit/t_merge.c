/*
 * t_merge.c - the read merge of one epoch (libpaxos/merge.h): ordering,
 * deduplication, acceptability after lng, HOLE/BRIDGE/TRIM, DATALOSS only
 * with n - r + 1 inputs past the slot, down inputs, credit, buffering.
 *
 * Slots are HS_LSN(1, esn); each record's payload is its tag and esn
 * ("a12"), so a record handed out for the wrong slot or from an
 * unacceptable copy shows.  The recorder turns what the merge hands out
 * into one character per slot: the copy's tag, or H, B, T, L for gaps.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "merge.h"
#include "proto.h"
#include "run.h"
#include "tap.h"

#define E 1u
#define S(esn) HS_LSN(E, esn)

static char got[512];       /* one char per esn, '.' not handed out */
static uint64_t expect_next; /* order check */
static int order_bad, payload_bad;
static uint64_t credit = UINT64_MAX;

static void rec_reset(void)
{
	memset(got, '.', sizeof(got));
	got[sizeof(got) - 1] = 0;
	expect_next = 0;
	order_bad = payload_bad = 0;
	credit = UINT64_MAX;
}

static void mark(uint64_t lo, uint64_t hi, char c)
{
	if (expect_next && lo != expect_next)
		order_bad++;
	expect_next = hi + 1;
	for (uint64_t x = lo; x <= hi; x++) {
		uint32_t esn = HS_LSN_ESN(x);

		if (esn < sizeof(got) - 1) {
			if (got[esn] != '.')
				order_bad++;
			got[esn] = c;
		}
	}
}

static uint32_t rec_deliver(void *arg, uint64_t first, const struct hs_run *run, uint64_t lo,
			    uint32_t cnt)
{
	struct hs_run_iter it;
	const uint8_t *p;
	uint32_t len, idx = 0;
	char want[32];
	char tag = 0;

	if (cnt > credit)
		cnt = (uint32_t)credit;
	credit -= cnt;
	if (!cnt)
		return 0;
	hs_run_iter_init(&it, run);
	while (hs_run_next(&it, NULL, &p, &len) == 1) {
		uint64_t x = first + idx++;

		if (x < lo || x >= lo + cnt)
			continue;
		snprintf(want, sizeof(want), "%u", HS_LSN_ESN(x));
		/* tag, esn, and optionally '|' and padding */
		if (len < 1 + strlen(want) || memcmp(p + 1, want, strlen(want)) ||
		    (len > 1 + strlen(want) && p[1 + strlen(want)] != '|'))
			payload_bad++;
		tag = (char)p[0];
	}
	mark(lo, lo + cnt - 1, tag);
	return cnt;
}

static void rec_gap(void *arg, uint64_t lo, uint64_t hi, int kind)
{
	static const char k[] = "?HBTL";

	mark(lo, hi, k[kind]);
	if (HS_LSN_ESN(hi) >= sizeof(got) - 1)
		expect_next = hi + 1;
}

static const struct hs_merge_out rec_out = { rec_deliver, rec_gap };

/* The run esn lo..hi with tag, flags and wave (or ballot) into b (reset). */
static size_t pad; /* bytes of padding per record */

static void mkrun(struct hs_buf *b, uint32_t lo, uint32_t hi, char tag, uint8_t flags,
		  uint32_t wave)
{
	struct hs_run_builder rb;
	uint32_t cs[2] = { 1, 2 };
	char p[4096];

	hs_buf_reset(b);
	hs_run_begin(&rb, b, flags, 0, wave, cs, 2);
	for (uint32_t x = lo; x <= hi; x++) {
		int n = snprintf(p, sizeof(p), "%c%u", tag, x);

		if (pad) {
			p[n++] = '|';
			memset(p + n, 'p', pad);
			n += (int)pad;
		}

		if (flags & (HS_RUN_HOLE | HS_RUN_BRIDGE))
			hs_run_add(&rb, 0, NULL, 0);
		else
			hs_run_add(&rb, x, p, (uint32_t)n);
	}
	hs_run_end(&rb);
}

static struct hs_buf rb_;

static int feed(struct hs_merge *m, int i, uint32_t lo, uint32_t hi, char tag, uint8_t flags,
		uint32_t wave)
{
	mkrun(&rb_, lo, hi, tag, flags, wave);
	return hs_merge_run(m, i, S(lo), rb_.data, rb_.len);
}

static struct hs_merge *mk(uint32_t from, uint32_t to, uint32_t lng, uint32_t end,
			   uint32_t ballot, int n, int r)
{
	struct hs_merge_cfg c = { .from = S(from), .to = S(to), .lng = S(lng),
				  .end = end ? S(end) : 0, .ballot = ballot, .n = n, .r = r };

	rec_reset();
	return hs_merge_new(&c, &rec_out, NULL);
}

/* got[from..to] as a string. */
static const char *span(uint32_t from, uint32_t to)
{
	static char s[512];

	memcpy(s, got + from, to - from + 1);
	s[to - from + 1] = 0;
	return s;
}

#define LIVE 0xffffffffu

static void t_single(void)
{
	struct hs_merge *m = mk(1, 9, LIVE, LIVE, 0, 1, 1);
	uint64_t br, bb;

	is_int(feed(m, 0, 1, 4, 'a', 0, 1), HS_MERGE_MORE, "single: run 1-4");
	hs_merge_buffered(m, 0, &br, &bb);
	is_int(br, 0, "single: nothing buffered (handed out from the caller's bytes)");
	is_int(feed(m, 0, 5, 9, 'a', 0, 1), HS_MERGE_DONE, "single: run 5-9 ends it");
	is_str(span(1, 9), "aaaaaaaaa", "single: every slot once");
	ok(!order_bad && !payload_bad, "single: in order, right payloads");
	hs_merge_free(m);
}

static void t_interleaved(void)
{
	struct hs_merge *m = mk(1, 9, LIVE, LIVE, 0, 3, 1);
	uint64_t br, bb;

	is_int(feed(m, 2, 7, 9, 'c', 0, 1), HS_MERGE_MORE, "interleaved: 7-9 early");
	hs_merge_buffered(m, 2, &br, &bb);
	is_int(br, 3, "interleaved: early run buffered");
	/* Clobber the caller's bytes: the buffered copy must not point there. */
	memset(rb_.data, 0, rb_.len);
	is_int(feed(m, 1, 4, 6, 'b', 0, 1), HS_MERGE_MORE, "interleaved: 4-6");
	is_str(span(1, 9), ".........", "interleaved: nothing before slot 1 is known");
	is_int(feed(m, 0, 1, 3, 'a', 0, 1), HS_MERGE_DONE, "interleaved: 1-3 releases all");
	is_str(span(1, 9), "aaabbbccc", "interleaved: in LSN order");
	ok(!order_bad && !payload_bad, "interleaved: order and payloads");
	hs_merge_buffered(m, 2, &br, &bb);
	is_int(br, 0, "interleaved: buffers drained");
	hs_merge_free(m);
}

static void t_duplicates(void)
{
	struct hs_merge *m = mk(1, 9, LIVE, LIVE, 0, 3, 2);

	/* Every slot on two inputs, split differently. */
	feed(m, 0, 1, 5, 'a', 0, 1);
	feed(m, 1, 1, 2, 'b', 0, 1);
	feed(m, 1, 3, 9, 'b', 0, 1);
	feed(m, 2, 6, 9, 'c', 0, 1);
	is_str(span(1, 9), "aaaaabbbb", "duplicates: each slot once, first copy wins");
	ok(!order_bad && !payload_bad, "duplicates: no slot twice");
	is_int(hs_merge_next(m), S(10), "duplicates: next after 9");
	is_int(hs_merge_step(m), HS_MERGE_DONE, "duplicates: done");
	hs_merge_free(m);
}

static void t_stale_past_lng(void)
{
	/* CLEAN epoch: lng 5, end 8, ballot 7; to 12; n 4, r 2: k = 3. */
	struct hs_merge *m = mk(1, 12, 5, 8, 7, 4, 2);

	feed(m, 0, 1, 9, 's', 0, 1); /* sequencer copies: stale after 5 */
	is_str(span(1, 12), "sssss.......", "stale: only slots <= lng from a plain copy");
	feed(m, 1, 6, 8, 'x', HS_RUN_RECOVERY, 6); /* older ballot: not acceptable */
	is_str(span(1, 12), "sssss.......", "stale: recovery copy of another ballot ignored");
	is_int(hs_merge_end(m, 0), HS_MERGE_MORE, "stale: two inputs past 6 are not enough (k=3)");
	feed(m, 2, 6, 8, 'r', HS_RUN_RECOVERY, 7);
	is_str(span(1, 12), "sssssrrrBBBB", "stale: recovery copies, then BRIDGE after end");
	ok(!order_bad && !payload_bad, "stale: order and payloads");
	is_int(hs_merge_step(m), HS_MERGE_DONE, "stale: done");
	hs_merge_free(m);
}

static void t_holes(void)
{
	struct hs_merge *m = mk(1, 10, 3, 8, 4, 2, 1);

	feed(m, 0, 1, 3, 'a', 0, 1);
	feed(m, 0, 4, 5, 'r', HS_RUN_RECOVERY, 4);
	feed(m, 1, 6, 7, 'h', HS_RUN_RECOVERY | HS_RUN_HOLE, 4);
	feed(m, 1, 8, 8, 'r', HS_RUN_RECOVERY, 4);
	is_int(feed(m, 1, 9, 9, 'b', HS_RUN_RECOVERY | HS_RUN_BRIDGE, 4), HS_MERGE_DONE,
	       "holes: the bridge run is after end");
	is_str(span(1, 10), "aaarrHHrBB", "holes: HOLE gap, BRIDGE after end");
	ok(!order_bad && !payload_bad, "holes: order and payloads");
	hs_merge_free(m);
}

static void t_bridge_empty(void)
{
	struct hs_merge *m = mk(1, 20, 0, 0, 0, 3, 2);

	is_int(hs_merge_step(m), HS_MERGE_DONE, "empty epoch: done at once");
	is_str(span(1, 20), "BBBBBBBBBBBBBBBBBBBB", "empty epoch: one BRIDGE");
	hs_merge_free(m);
	m = mk(5, 4, LIVE, LIVE, 0, 1, 1);
	is_int(hs_merge_step(m), HS_MERGE_DONE, "empty range: done");
	is_str(span(1, 6), "......", "empty range: nothing handed out");
	hs_merge_free(m);
}

static void t_dataloss(void)
{
	/* n 3, r 2: DATALOSS needs 2 inputs past the slot. */
	struct hs_merge *m = mk(1, 9, LIVE, LIVE, 0, 3, 2);

	feed(m, 0, 1, 4, 'a', 0, 1);
	feed(m, 0, 6, 9, 'a', 0, 1);
	is_str(span(1, 9), "aaaa.....", "dataloss: slot 5 missing on input 0");
	is_int(hs_merge_step(m), HS_MERGE_MORE, "dataloss: n - r = 1 past: wait");
	ok(!hs_merge_blocked(m), "dataloss: not blocked, inputs 1 and 2 are up");
	hs_merge_gap(m, 1, S(1), S(7), HS_GAP_NORECORDS);
	is_str(span(1, 9), "aaaa.....", "dataloss: n - r + 1 past, input 2 up and not: wait for it");
	hs_merge_down(m, 2);
	is_int(hs_merge_step(m), HS_MERGE_DONE, "dataloss: input 2 down: decided");
	is_str(span(1, 9), "aaaaLaaaa", "dataloss: exactly n - r + 1 past: DATALOSS of slot 5 only");
	hs_merge_free(m);

	/* The same, with input 2 answering instead of going down. */
	m = mk(1, 9, LIVE, LIVE, 0, 3, 2);
	feed(m, 0, 1, 4, 'a', 0, 1);
	feed(m, 0, 6, 9, 'a', 0, 1);
	hs_merge_gap(m, 1, S(1), S(7), HS_GAP_NORECORDS);
	feed(m, 2, 6, 6, 'c', 0, 1);
	is_str(span(1, 9), "aaaaLaaaa", "dataloss: every up input past: DATALOSS of slot 5 only");
	ok(!order_bad && !payload_bad, "dataloss: order");
	hs_merge_free(m);

	/* A range lost, bounded by the k-th largest horizon. */
	m = mk(1, 20, LIVE, LIVE, 0, 4, 2); /* k = 3 */
	hs_merge_down(m, 3);
	feed(m, 0, 1, 2, 'a', 0, 1);
	hs_merge_gap(m, 0, S(3), S(20), HS_GAP_NORECORDS);
	hs_merge_gap(m, 1, S(1), S(9), HS_GAP_NORECORDS);
	is_str(span(1, 20), "aa..................", "dataloss: 2 of k=3 past");
	hs_merge_gap(m, 2, S(1), S(6), HS_GAP_CHECKSUM);
	is_str(span(1, 7), "aaLLLL.", "dataloss: lost up to the 3rd largest horizon only");
	hs_merge_reopen(m, 3);
	feed(m, 3, 7, 20, 'd', 0, 1);
	is_str(span(1, 20), "aaLLLLdddddddddddddd", "dataloss: then the copies");
	ok(!order_bad && !payload_bad, "dataloss: order");
	hs_merge_free(m);

	/* Two wiped peers answer "nothing" for everything: the third, up and
	 * still sending, is waited for, and what it holds is delivered. */
	m = mk(1, 9, LIVE, LIVE, 0, 3, 2);
	hs_merge_gap(m, 0, S(1), S(9), HS_GAP_NORECORDS);
	hs_merge_gap(m, 1, S(1), S(9), HS_GAP_NORECORDS);
	is_str(span(1, 9), ".........", "wiped: no DATALOSS while an up input has not answered");
	feed(m, 2, 1, 3, 'c', 0, 1);
	feed(m, 2, 7, 9, 'c', 0, 1);
	is_str(span(1, 9), "cccLLLccc", "wiped: its copies delivered, the rest DATALOSS");
	hs_merge_free(m);

	/* A copy on one input stops the loss range before it. */
	m = mk(1, 9, LIVE, LIVE, 0, 3, 1); /* k = 3 */
	hs_merge_gap(m, 0, S(1), S(9), HS_GAP_NORECORDS);
	hs_merge_gap(m, 1, S(1), S(9), HS_GAP_NORECORDS);
	feed(m, 2, 4, 9, 'c', 0, 1);
	is_str(span(1, 9), "LLLcccccc", "dataloss: ends where a copy starts");
	hs_merge_free(m);
}

static void t_down(void)
{
	struct hs_merge *m = mk(1, 9, LIVE, LIVE, 0, 3, 2);

	hs_merge_down(m, 2);
	feed(m, 0, 1, 3, 'a', 0, 1);
	feed(m, 1, 1, 6, 'b', 0, 1);
	feed(m, 0, 7, 9, 'a', 0, 1);
	is_str(span(1, 9), "aaabbbaaa", "down: the other copies carry the read");
	is_int(hs_merge_step(m), HS_MERGE_DONE, "down: done");
	hs_merge_free(m);

	m = mk(1, 9, LIVE, LIVE, 0, 3, 2);
	hs_merge_down(m, 2);
	feed(m, 0, 1, 3, 'a', 0, 1);
	hs_merge_end(m, 0);
	is_str(span(1, 9), "aaa......", "down: slot 4 only on inputs 1 and 2");
	ok(!hs_merge_blocked(m), "down: input 1 is up: not blocked");
	hs_merge_down(m, 1);
	is_int(hs_merge_step(m), HS_MERGE_MORE, "down: a down input proves nothing: no DATALOSS");
	ok(hs_merge_blocked(m), "down: blocked on down inputs");
	hs_merge_reopen(m, 1);
	ok(!hs_merge_blocked(m), "down: reopened input unblocks");
	is_int(hs_merge_pos(m, 1), S(4), "down: reopened at the next slot");
	feed(m, 1, 4, 9, 'b', 0, 1);
	is_str(span(1, 9), "aaabbbbbb", "down: reopened input delivers");
	hs_merge_free(m);

	/* With every input down and nothing passed, no DATALOSS either. */
	m = mk(1, 9, LIVE, LIVE, 0, 3, 2);
	hs_merge_down(m, 0);
	hs_merge_down(m, 1);
	hs_merge_end(m, 2);
	is_int(hs_merge_step(m), HS_MERGE_MORE, "2 of 3 down, r=2: wait, no DATALOSS");
	ok(hs_merge_blocked(m), "2 of 3 down: blocked");
	is_str(span(1, 9), ".........", "2 of 3 down: nothing handed out");
	hs_merge_free(m);
}

static void t_credit(void)
{
	struct hs_merge *m = mk(1, 9, LIVE, LIVE, 0, 2, 1);

	feed(m, 1, 4, 9, 'b', 0, 1);
	credit = 2;
	is_int(feed(m, 0, 1, 3, 'a', 0, 1), HS_MERGE_FULL, "credit: stops when the sink is full");
	is_str(span(1, 9), "aa.......", "credit: two handed out");
	credit = 3;
	is_int(hs_merge_step(m), HS_MERGE_FULL, "credit: more");
	is_str(span(1, 9), "aaabb....", "credit: the rest of 1-3 was kept (copied)");
	credit = UINT64_MAX;
	is_int(hs_merge_step(m), HS_MERGE_DONE, "credit: done (input 1 holds the rest)");
	is_str(span(1, 9), "aaabbbbbb", "credit: every slot once");
	ok(!order_bad && !payload_bad, "credit: order and payloads");
	hs_merge_free(m);
}

static void t_trim(void)
{
	struct hs_merge *m = mk(1, 9, LIVE, LIVE, 0, 2, 2);

	hs_merge_gap(m, 0, S(1), S(4), HS_GAP_TRIM);
	feed(m, 1, 5, 9, 'b', 0, 1);
	is_str(span(1, 9), "TTTTbbbbb", "trim: TRIM gap, then records");
	is_int(hs_merge_gap(m, 0, S(5), S(3), HS_GAP_NORECORDS), -HS_EPROTO, "bad gap refused");
	is_int(hs_merge_run(m, 5, S(1), rb_.data, rb_.len), -HS_EPROTO, "bad input refused");
	is_int(hs_merge_run(m, 0, S(1), rb_.data, 3), -HS_EPROTO, "bad run refused");
	hs_merge_free(m);
}

/* Random copysets and splits, random feeding order: every slot once. */
static void t_random(void)
{
	enum { N = 5, R = 3, SLOTS = 400 };
	uint8_t on[SLOTS + 1][N];
	uint32_t cur[N];
	int fails = 0;

	srand(42);
	for (int round = 0; round < 50; round++) {
		struct hs_merge *m = mk(1, SLOTS, LIVE, LIVE, 0, N, R);
		uint64_t maxbuf = 0;
		int st = HS_MERGE_MORE;

		memset(on, 0, sizeof(on));
		for (uint32_t x = 1; x <= SLOTS; x++)
			for (int c = 0; c < R;) {
				int p = rand() % N;

				if (!on[x][p]) {
					on[x][p] = 1;
					c++;
				}
			}
		for (int i = 0; i < N; i++)
			cur[i] = 1;
		for (;;) {
			int i = rand() % N, live = 0;
			uint32_t lo, hi;

			for (int j = 0; j < N; j++)
				live += cur[j] <= SLOTS;
			if (!live)
				break;
			if (cur[i] > SLOTS)
				continue;
			lo = cur[i];
			while (lo <= SLOTS && !on[lo][i])
				lo++;
			if (lo > SLOTS) {
				st = hs_merge_end(m, i);
				cur[i] = SLOTS + 1;
				continue;
			}
			if (lo > cur[i] && rand() % 2)
				hs_merge_gap(m, i, S(cur[i]), S(lo - 1), HS_GAP_NORECORDS);
			hi = lo;
			while (hi < SLOTS && on[hi + 1][i] && rand() % 8)
				hi++;
			st = feed(m, i, lo, hi, (char)('a' + i), 0, 1);
			cur[i] = hi + 1;
			for (int j = 0; j < N; j++) {
				uint64_t br, bb;

				hs_merge_buffered(m, j, &br, &bb);
				if (br > maxbuf)
					maxbuf = br;
			}
		}
		if (st != HS_MERGE_DONE || order_bad || payload_bad || strchr(span(1, SLOTS), '.') ||
		    strchr(span(1, SLOTS), 'L'))
			fails++;
		hs_merge_free(m);
	}
	is_int(fails, 0, "random: 50 rounds of 5 inputs, r=3: every slot once, in order");
}

/* Input 1 runs far ahead (megabytes buffered) while its queue is consumed
 * from the head and grows at the tail: the buffer is compacted under the
 * queued runs, which must still be handed out intact. */
static void t_compact(void)
{
	enum { RUN = 10, RUNS = 1200, LEAD = 120 };
	struct hs_merge *m;
	uint64_t br, bb, maxbb = 0;
	uint32_t next1 = 1; /* input 1's next run index (odd runs) */

	pad = 1000;
	m = mk(1, RUN * RUNS, LIVE, LIVE, 0, 2, 1);
	/* Run j (slots j*RUN+1 ..) is on input j % 2. */
	for (int k = 0; k < LEAD; k++, next1 += 2)
		feed(m, 1, next1 * RUN + 1, next1 * RUN + RUN, 'b', 0, 1);
	for (uint32_t j = 0; j < RUNS; j += 2) {
		feed(m, 0, j * RUN + 1, j * RUN + RUN, 'a', 0, 1);
		if (next1 < RUNS) {
			feed(m, 1, next1 * RUN + 1, next1 * RUN + RUN, 'b', 0, 1);
			next1 += 2;
		}
		hs_merge_buffered(m, 1, &br, &bb);
		if (bb > maxbb)
			maxbb = bb;
	}
	is_int(hs_merge_step(m), HS_MERGE_DONE, "compact: done");
	ok(!order_bad && !payload_bad, "compact: every record intact and in order (%d bad)",
	   payload_bad);
	ok(!strchr(span(1, RUN * RUNS < 500 ? RUN * RUNS : 500), '.'), "compact: nothing missing");
	ok(maxbb > (1u << 20), "compact: over a MiB was buffered (%llu)", (unsigned long long)maxbb);
	hs_merge_free(m);
	pad = 0;
}

int main(void)
{
	t_single();
	t_interleaved();
	t_duplicates();
	t_stale_past_lng();
	t_holes();
	t_bridge_empty();
	t_dataloss();
	t_down();
	t_credit();
	t_trim();
	t_random();
	t_compact();
	hs_buf_free(&rb_);
	return tap_done();
}
