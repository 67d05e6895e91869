/* sub.c - the acknowledgement window of a subscription session (sub.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "sub.h"

void hs_subwin_init(struct hs_subwin *w, uint64_t ckpt)
{
	memset(w, 0, sizeof(*w));
	w->next = w->floor = ckpt;
}

void hs_subwin_free(struct hs_subwin *w)
{
	free(w->r);
	memset(w, 0, sizeof(*w));
}

static void reserve(struct hs_subwin *w, size_t need)
{
	size_t cap;

	if (need <= w->cap)
		return;
	cap = w->cap ? w->cap * 2 : 64;
	while (cap < need)
		cap *= 2;
	w->r = hs_xrealloc(w->r, cap * sizeof(*w->r));
	w->cap = cap;
}

uint64_t hs_subwin_delivered(struct hs_subwin *w, uint64_t lo, uint64_t n, uint64_t now_ms)
{
	uint64_t hi;

	if (!n)
		return 0;
	hi = lo + n - 1;
	if (hi < w->next)
		return 0;
	if (lo < w->next)
		lo = w->next;
	reserve(w, w->n + 1);
	w->r[w->n++] = (struct hs_subrange){ .lo = lo, .hi = hi, .sent_ms = now_ms };
	w->unacked += hi - lo + 1;
	w->next = hi + 1;
	if (hi > w->delivered)
		w->delivered = hi;
	return hi - lo + 1;
}

void hs_subwin_advance(struct hs_subwin *w, uint64_t lsn)
{
	if (lsn > w->next)
		w->next = lsn;
}

/* First range with hi >= lsn (binary search: ranges are sorted). */
static size_t first_at(const struct hs_subwin *w, uint64_t lsn)
{
	size_t a = 0, b = w->n;

	while (a < b) {
		size_t m = a + (b - a) / 2;

		if (w->r[m].hi < lsn)
			a = m + 1;
		else
			b = m;
	}
	return a;
}

uint64_t hs_subwin_ack(struct hs_subwin *w, uint64_t lo, uint64_t hi)
{
	uint64_t removed = 0;
	size_t i;

	if (lo > hi)
		return 0;
	for (i = first_at(w, lo); i < w->n && w->r[i].lo <= hi;) {
		struct hs_subrange *x = &w->r[i];
		uint64_t a = x->lo > lo ? x->lo : lo, b = x->hi < hi ? x->hi : hi;

		removed += b - a + 1;
		if (a == x->lo && b == x->hi) {
			memmove(x, x + 1, (w->n - i - 1) * sizeof(*x));
			w->n--;
			continue;
		}
		if (a == x->lo) {
			x->lo = b + 1;
		} else if (b == x->hi) {
			x->hi = a - 1;
		} else {
			/* The middle: split in two. */
			reserve(w, w->n + 1);
			x = &w->r[i];
			memmove(x + 1, x, (w->n - i) * sizeof(*x));
			w->n++;
			x[0].hi = a - 1;
			x[1].lo = b + 1;
			i++;
		}
		i++;
	}
	w->unacked -= removed;
	w->acked += removed;
	if (!w->n && w->cap > 1024) {
		/* A burst is over: give the memory back. */
		free(w->r);
		w->r = NULL;
		w->cap = 0;
	}
	return removed;
}

uint64_t hs_subwin_checkpoint(const struct hs_subwin *w)
{
	uint64_t c = w->n ? w->r[0].lo : w->next;

	return c > w->floor ? c : w->floor;
}

int hs_subwin_due(struct hs_subwin *w, uint64_t now_ms, uint64_t timeout_ms, uint64_t *lo,
		  uint64_t *hi)
{
	for (size_t i = 0; i < w->n; i++) {
		if (w->r[i].sent_ms + timeout_ms > now_ms)
			continue;
		w->r[i].sent_ms = now_ms;
		*lo = w->r[i].lo;
		*hi = w->r[i].hi;
		return 1;
	}
	return 0;
}

uint64_t hs_subwin_next_due(const struct hs_subwin *w, uint64_t now_ms, uint64_t timeout_ms)
{
	uint64_t best = UINT64_MAX;

	for (size_t i = 0; i < w->n; i++) {
		uint64_t at = w->r[i].sent_ms + timeout_ms;

		if (at <= now_ms)
			return 0;
		if (at - now_ms < best)
			best = at - now_ms;
	}
	return best;
}
