/*
 * t_subwin.c - the subscription acknowledgement window (libpaxos/sub.h):
 * table-driven cases for acks (out of order, overlapping, duplicate),
 * gaps, the checkpoint and redelivery times; a 10,000-range timing check;
 * and a randomized comparison with a per-LSN reference model (seed printed;
 * HS_SEED=N repeats a run).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sub.h"
#include "tap.h"

/* ---- table-driven cases ------------------------------------------------ */

enum { END, DELIV, ADV, ACK, CKPT, UNACKED, DUE, NODUE, NEXTDUE };

/* {kind, a, b, c}: DELIV lo n now; ADV lsn; ACK lo hi want; CKPT want;
 * UNACKED want; DUE now lo hi (timeout 100); NODUE now; NEXTDUE now want.
 * An array, not a struct, so short rows need no padding. */
typedef uint64_t op[4];

struct tcase {
	const char *name;
	uint64_t start;
	op ops[16];
};

static const struct tcase cases[] = {
	{ "in-order acks move the checkpoint", 10, {
		{ DELIV, 10, 5, 0 }, { CKPT, 10 }, { UNACKED, 5 },
		{ ACK, 10, 11, 2 }, { CKPT, 12 }, { ACK, 12, 14, 3 }, { CKPT, 15 },
		{ UNACKED, 0 } } },
	{ "out-of-order acks hold the checkpoint until the hole fills", 1, {
		{ DELIV, 1, 3, 0 }, { DELIV, 4, 3, 0 }, { DELIV, 7, 3, 0 },
		{ ACK, 7, 9, 3 }, { CKPT, 1 }, { ACK, 4, 6, 3 }, { CKPT, 1 },
		{ ACK, 2, 2, 1 }, { CKPT, 1 }, { ACK, 1, 1, 1 }, { CKPT, 3 },
		{ ACK, 3, 3, 1 }, { CKPT, 10 }, { UNACKED, 0 } } },
	{ "duplicate acks remove nothing", 1, {
		{ DELIV, 1, 4, 0 }, { ACK, 1, 2, 2 }, { ACK, 1, 2, 0 }, { ACK, 2, 2, 0 },
		{ UNACKED, 2 }, { CKPT, 3 } } },
	{ "overlapping acks count each LSN once", 1, {
		{ DELIV, 1, 10, 0 }, { ACK, 3, 6, 4 }, { ACK, 5, 8, 2 }, { ACK, 1, 10, 4 },
		{ UNACKED, 0 }, { CKPT, 11 } } },
	{ "an ack in the middle splits a range", 1, {
		{ DELIV, 1, 10, 0 }, { ACK, 4, 6, 3 }, { UNACKED, 7 }, { CKPT, 1 },
		{ ACK, 1, 3, 3 }, { CKPT, 7 }, { ACK, 7, 10, 4 }, { CKPT, 11 } } },
	{ "acks of LSNs never delivered are ignored", 5, {
		{ ACK, 1, 4, 0 }, { DELIV, 5, 2, 0 }, { ACK, 7, 100, 0 }, { ACK, 9, 3, 0 },
		{ UNACKED, 2 }, { CKPT, 5 } } },
	{ "an ack spanning several ranges", 1, {
		{ DELIV, 1, 2, 0 }, { DELIV, 3, 2, 0 }, { DELIV, 10, 2, 0 },
		{ ACK, 2, 10, 4 }, { UNACKED, 2 }, { CKPT, 1 } } },
	{ "gaps count as acked", 1, {
		{ DELIV, 1, 2, 0 }, { ADV, 10 }, { DELIV, 10, 2, 0 }, { ACK, 1, 2, 2 },
		{ CKPT, 10 }, { ACK, 10, 11, 2 }, { CKPT, 12 }, { ADV, 20 }, { CKPT, 20 } } },
	{ "delivered below next is ignored, advance never moves back", 1, {
		{ ADV, 10 }, { DELIV, 3, 4, 0 }, { UNACKED, 0 }, { CKPT, 10 },
		{ ADV, 5 }, { CKPT, 10 }, { DELIV, 8, 4, 0 }, { UNACKED, 2 }, { CKPT, 10 } } },
	{ "checkpoint never below the start", 100, {
		{ CKPT, 100 }, { ADV, 50 }, { CKPT, 100 }, { ACK, 1, 200, 0 }, { CKPT, 100 } } },
	{ "redelivery: due after the timeout, once per timeout", 1, {
		{ DELIV, 1, 3, 1000 }, { DELIV, 4, 3, 1050 }, { NEXTDUE, 1000, 100 },
		{ NODUE, 1099 }, { NEXTDUE, 1099, 1 }, { DUE, 1100, 1, 3 }, { NODUE, 1100 },
		{ NEXTDUE, 1100, 50 }, { DUE, 1150, 4, 6 }, { NODUE, 1199 },
		{ DUE, 1200, 1, 3 }, { ACK, 1, 6, 6 }, { NODUE, 5000 } } },
	{ "a split range keeps its send time", 1, {
		{ DELIV, 1, 9, 1000 }, { ACK, 4, 5, 2 }, { NEXTDUE, 1000, 100 },
		{ DUE, 1100, 1, 3 }, { DUE, 1100, 6, 9 }, { NODUE, 1100 } } },
	{ "next_due with nothing outstanding", 1, {
		{ NEXTDUE, 0, UINT64_MAX }, { DELIV, 1, 1, 0 }, { ACK, 1, 1, 1 },
		{ NEXTDUE, 0, UINT64_MAX } } },
};

static void run_case(const struct tcase *c)
{
	struct hs_subwin w;
	int good = 1;

	hs_subwin_init(&w, c->start);
	for (const uint64_t *o = c->ops[0]; o[0] != END; o += 4) {
		uint64_t got = 0, want = 0, lo = 0, hi = 0;

		switch (o[0]) {
		case DELIV:
			hs_subwin_delivered(&w, o[1], o[2], o[3]);
			continue;
		case ADV:
			hs_subwin_advance(&w, o[1]);
			continue;
		case ACK: got = hs_subwin_ack(&w, o[1], o[2]); want = o[3]; break;
		case CKPT: got = hs_subwin_checkpoint(&w); want = o[1]; break;
		case UNACKED: got = w.unacked; want = o[1]; break;
		case DUE:
			got = hs_subwin_due(&w, o[1], 100, &lo, &hi) && lo == o[2] && hi == o[3];
			want = 1;
			break;
		case NODUE: got = hs_subwin_due(&w, o[1], 100, &lo, &hi); want = 0; break;
		case NEXTDUE: got = hs_subwin_next_due(&w, o[1], 100); want = o[2]; break;
		}
		if (got != want) {
			printf("#   %s: op %d: got %llu, want %llu (lo %llu hi %llu)\n", c->name,
			       (int)((o - c->ops[0]) / 4), (unsigned long long)got,
			       (unsigned long long)want, (unsigned long long)lo,
			       (unsigned long long)hi);
			good = 0;
		}
	}
	ok(good, "%s", c->name);
	hs_subwin_free(&w);
}

/* ---- many ranges --------------------------------------------------------- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void many_ranges(void)
{
	enum { N = 10000 };
	struct hs_subwin w;
	uint64_t lo, hi, sum = 0;
	double t0, t;
	int good = 1;

	/* 10,000 runs of 3 records with a gap after each; acked front to back
	 * (the usual order), then again with every other run acked first and a
	 * single ack over everything. */
	for (int pass = 0; pass < 2; pass++) {
		t0 = now_s();
		hs_subwin_init(&w, 1);
		for (uint64_t i = 0; i < N; i++) {
			hs_subwin_delivered(&w, 1 + 4 * i, 3, i);
			hs_subwin_advance(&w, 1 + 4 * i + 4);
		}
		good &= w.n == N && w.unacked == 3 * N;
		for (uint64_t i = 0; i < 100; i++)
			good &= hs_subwin_due(&w, N + 1000, 1000, &lo, &hi) == 1;
		sum += hs_subwin_next_due(&w, N + 1000, 1000);
		if (pass == 0) {
			for (uint64_t i = 0; i < N; i++) {
				sum += hs_subwin_ack(&w, 1 + 4 * i, 3 + 4 * i);
				good &= hs_subwin_checkpoint(&w) == (i + 1 < N ? 1 + 4 * (i + 1) : 4 * N + 1);
			}
		} else {
			for (uint64_t i = 1; i < N; i += 2)
				sum += hs_subwin_ack(&w, 2 + 4 * i, 2 + 4 * i);
			sum += hs_subwin_ack(&w, 1, 4 * N);
		}
		good &= w.unacked == 0 && hs_subwin_checkpoint(&w) == 4 * N + 1;
		hs_subwin_free(&w);
		t = now_s() - t0;
		ok(good && t < 0.25, "10,000 ranges, %s: %.3f s (limit 0.25 s)",
		   pass ? "split then one big ack" : "acked front to back", t);
	}
	(void)sum;
}

/* ---- randomized model check ------------------------------------------ */

#define DOM 600 /* LSNs 1 .. DOM-1 */

struct model {
	uint8_t out[DOM];      /* outstanding */
	uint64_t sent[DOM];
	uint64_t next, floor, ckpt_prev;
};

static uint64_t rnd_state;

static uint64_t rnd(uint64_t n)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return n ? rnd_state % n : 0;
}

static uint64_t m_ckpt(const struct model *m)
{
	for (uint64_t l = 1; l < DOM; l++)
		if (m->out[l])
			return l > m->floor ? l : m->floor;
	return m->next > m->floor ? m->next : m->floor;
}

static int model_check(uint64_t seed, int steps)
{
	struct hs_subwin w;
	struct model m;
	uint64_t now = 1000, timeout = 50;

	rnd_state = seed ? seed : 1;
	memset(&m, 0, sizeof(m));
	m.next = m.floor = 1 + rnd(20);
	hs_subwin_init(&w, m.next);
	for (int s = 0; s < steps; s++) {
		uint64_t r = rnd(100), lo, hi, got, want = 0;

		now += rnd(20);
		if (r < 30) { /* deliver at or a little past next */
			uint64_t n = 1 + rnd(8);

			lo = m.next + rnd(3);
			if (lo + n >= DOM)
				continue;
			got = hs_subwin_delivered(&w, lo, n, now);
			for (uint64_t l = lo; l < lo + n; l++) {
				m.out[l] = 1;
				m.sent[l] = now;
			}
			m.next = lo + n;
			want = n;
		} else if (r < 35) { /* deliver below next: ignored */
			lo = m.next > 5 ? m.next - 5 : 1;
			want = lo + 3 <= m.next ? 0 : lo + 3 - m.next;
			if (want) /* partly above next: only test the clearly-below case */
				continue;
			got = hs_subwin_delivered(&w, lo, 3, now);
		} else if (r < 42) { /* gap */
			lo = m.next + rnd(5);
			if (lo >= DOM)
				continue;
			hs_subwin_advance(&w, lo);
			if (lo > m.next)
				m.next = lo;
			got = want = 0;
		} else if (r < 80) { /* ack, possibly overlapping/duplicate/undelivered */
			lo = 1 + rnd(DOM - 1);
			hi = lo + rnd(12);
			if (hi >= DOM)
				hi = DOM - 1;
			if (rnd(10) == 0)
				hi = lo - 1; /* inverted: no-op */
			got = hs_subwin_ack(&w, lo, hi);
			for (uint64_t l = lo; l <= hi; l++)
				if (m.out[l]) {
					m.out[l] = 0;
					want++;
				}
		} else if (r < 92) { /* due */
			uint64_t first = 0;

			for (uint64_t l = 1; l < DOM && !first; l++)
				if (m.out[l] && m.sent[l] + timeout <= now)
					first = l;
			got = hs_subwin_due(&w, now, timeout, &lo, &hi);
			want = first != 0;
			if (got && want) {
				int fine = lo == first && hi >= lo && hi < DOM;

				for (uint64_t l = lo; fine && l <= hi; l++)
					fine = m.out[l] && m.sent[l] == m.sent[lo];
				if (!fine) {
					printf("#   seed %llu step %d: due gave %llu..%llu, first due %llu\n",
					       (unsigned long long)seed, s, (unsigned long long)lo,
					       (unsigned long long)hi, (unsigned long long)first);
					goto fail;
				}
				for (uint64_t l = lo; l <= hi; l++)
					m.sent[l] = now;
			}
		} else { /* next_due */
			want = UINT64_MAX;
			for (uint64_t l = 1; l < DOM; l++)
				if (m.out[l]) {
					uint64_t at = m.sent[l] + timeout;
					uint64_t d = at <= now ? 0 : at - now;

					if (d < want)
						want = d;
				}
			got = hs_subwin_next_due(&w, now, timeout);
		}
		if (got != want) {
			printf("#   seed %llu step %d (op %llu): got %llu, want %llu\n",
			       (unsigned long long)seed, s, (unsigned long long)r,
			       (unsigned long long)got, (unsigned long long)want);
			goto fail;
		}
		{
			uint64_t c = hs_subwin_checkpoint(&w), mc = m_ckpt(&m), un = 0;

			for (uint64_t l = 1; l < DOM; l++)
				un += m.out[l];
			if (c != mc || c < m.ckpt_prev || w.unacked != un) {
				printf("#   seed %llu step %d: checkpoint %llu (model %llu, before %llu), "
				       "unacked %llu (model %llu)\n",
				       (unsigned long long)seed, s, (unsigned long long)c,
				       (unsigned long long)mc, (unsigned long long)m.ckpt_prev,
				       (unsigned long long)w.unacked, (unsigned long long)un);
				goto fail;
			}
			m.ckpt_prev = c;
		}
		if (m.next >= DOM - 20) { /* domain used up: start over */
			hs_subwin_free(&w);
			memset(&m, 0, sizeof(m));
			m.next = m.floor = 1 + rnd(20);
			hs_subwin_init(&w, m.next);
		}
	}
	hs_subwin_free(&w);
	return 1;
fail:
	hs_subwin_free(&w);
	return 0;
}

int main(void)
{
	const char *env = getenv("HS_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
	int good = 1;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i]);
	many_ranges();
	printf("# model check seed %llu (HS_SEED=%llu repeats it)\n", (unsigned long long)seed,
	       (unsigned long long)seed);
	for (int k = 0; k < 20 && good; k++)
		good = model_check(seed + k, 5000);
	ok(good, "model check: 20 x 5000 random operations against a per-LSN reference");
	return tap_done();
}
