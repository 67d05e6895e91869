/*
 * merge.c - the read merge of one epoch across its nodeset; the design is
 * in merge.h.
 *
 * Each input keeps a queue of the copies it sent that may still be handed
 * out: items in LSN order, each with its acceptable part [first, acc_hi]
 * (a copy with no acceptable slot at or after the next one is not kept: it
 * only moves the input's position).  Step: the next slot is taken from the
 * first input whose queue head covers it; with none, the inputs' horizons
 * (the first slot each could still give) decide between DATALOSS and
 * waiting.  A run is queued borrowed from the caller's bytes and copied
 * into the input's buffer only if the step could not hand it out whole.
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "merge.h"
#include "proto.h"

enum { IT_RUN, IT_HOLE, IT_BRIDGE, IT_TRIM };

#define COMPACT_MIN (1u << 20) /* buffer prefix worth moving down */

struct item {
	uint64_t first, last;   /* slots covered */
	uint64_t acc_hi;        /* last acceptable slot */
	int kind;
	int owned;              /* bytes in the input's buffer at off */
	size_t off;
	size_t rel_cs, rel_rec, rel_end; /* run pointers relative to its base */
	struct hs_run run;      /* IT_RUN: pointers valid while queued */
	uint64_t recs, bytes;   /* credit it took: records, run length + 12 */
};

struct input {
	struct item *it;
	size_t head, n, cap;    /* queued: it[head .. n) */
	struct hs_buf buf;
	uint64_t pos;
	int down;
	uint64_t brec, bbytes;  /* buffered (queued) records and bytes */
};

struct hs_merge {
	struct hs_merge_cfg c;
	const struct hs_merge_out *out;
	void *arg;
	uint64_t next;
	struct input in[];
};

static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t max64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

struct hs_merge *hs_merge_new(const struct hs_merge_cfg *c, const struct hs_merge_out *out,
			      void *arg)
{
	int n = c->n < 0 ? 0 : c->n > HS_MERGE_INPUTS_MAX ? HS_MERGE_INPUTS_MAX : c->n;
	struct hs_merge *m = hs_xcalloc(1, sizeof(*m) + (size_t)n * sizeof(struct input));

	m->c = *c;
	m->c.n = n;
	if (m->c.r < 1)
		m->c.r = 1;
	m->out = out;
	m->arg = arg;
	m->next = c->from;
	for (int i = 0; i < n; i++)
		m->in[i].pos = c->from;
	return m;
}

void hs_merge_free(struct hs_merge *m)
{
	if (!m)
		return;
	for (int i = 0; i < m->c.n; i++) {
		free(m->in[i].it);
		hs_buf_free(&m->in[i].buf);
	}
	free(m);
}

/* Point every owned run of in at its bytes in in->buf (after the buffer
 * moved). */
static void point(struct input *in, struct item *t)
{
	t->run.base = in->buf.data + t->off;
	t->run.copyset = t->run.base + t->rel_cs;
	t->run.records = t->run.base + t->rel_rec;
	t->run.end = t->run.base + t->rel_end;
}

static void rebase(struct input *in)
{
	for (size_t k = in->head; k < in->n; k++)
		if (in->it[k].owned)
			point(in, &in->it[k]);
}

static void drop_head(struct input *in)
{
	struct item *t = &in->it[in->head++];

	in->brec -= t->recs;
	in->bbytes -= t->bytes;
	if (in->head == in->n) {
		in->head = in->n = 0;
		hs_buf_reset(&in->buf);
	}
}

/* Copy the borrowed run of t into in's buffer. */
static void own(struct input *in, struct item *t)
{
	const uint8_t *old = in->buf.data;

	/* Reclaim a large consumed prefix first, so the buffer stays within
	 * about twice what is queued. */
	if (in->head < in->n && in->it[in->head].owned && in->it[in->head].off >= COMPACT_MIN &&
	    in->it[in->head].off > in->buf.len / 2) {
		size_t cut = in->it[in->head].off;

		memmove(in->buf.data, in->buf.data + cut, in->buf.len - cut);
		in->buf.len -= cut;
		for (size_t k = in->head; k < in->n; k++)
			if (in->it[k].owned)
				in->it[k].off -= cut;
		rebase(in);
		old = in->buf.data;
	}
	t->rel_cs = (size_t)(t->run.copyset - t->run.base);
	t->rel_rec = (size_t)(t->run.records - t->run.base);
	t->rel_end = (size_t)(t->run.end - t->run.base);
	t->off = in->buf.len;
	hs_buf_append(&in->buf, t->run.base, t->run.len);
	t->owned = 1;
	if (in->buf.data != old)
		rebase(in); /* t included */
	else
		point(in, t);
}

static struct item *push(struct input *in)
{
	if (in->n == in->cap) {
		if (in->head > 0) {
			memmove(in->it, in->it + in->head, (in->n - in->head) * sizeof(*in->it));
			in->n -= in->head;
			in->head = 0;
		}
		if (in->n == in->cap) {
			in->cap = in->cap ? in->cap * 2 : 16;
			in->it = hs_xrealloc(in->it, in->cap * sizeof(*in->it));
		}
	}
	return memset(&in->it[in->n++], 0, sizeof(struct item));
}

static uint64_t hi_limit(const struct hs_merge *m)
{
	return min64(m->c.to, m->c.end);
}

int hs_merge_step(struct hs_merge *m)
{
	int n = m->c.n;

	for (;;) {
		uint64_t lim = hi_limit(m), h[HS_MERGE_INPUTS_MAX], real = UINT64_MAX, kth;
		uint64_t uplim = UINT64_MAX;
		int k, cnt = 0, pending = 0;
		struct item *t = NULL;
		struct input *src = NULL;

		if (m->next > m->c.to)
			return HS_MERGE_DONE;
		if (m->next > m->c.end || m->c.end < m->c.from) {
			m->out->gap(m->arg, m->next, m->c.to, HS_MERGE_BRIDGE);
			m->next = m->c.to + 1;
			return HS_MERGE_DONE;
		}
		for (int i = 0; i < n && !t; i++) {
			struct input *in = &m->in[i];

			while (in->head < in->n && in->it[in->head].acc_hi < m->next)
				drop_head(in);
			if (in->head < in->n && in->it[in->head].first <= m->next) {
				t = &in->it[in->head];
				src = in;
			}
		}
		if (t) {
			uint64_t hi = min64(t->acc_hi, lim);

			if (t->kind == IT_RUN) {
				uint64_t want = hi - m->next + 1;
				uint32_t got = m->out->deliver(m->arg, t->first, &t->run, m->next,
							       (uint32_t)want);

				m->next += got;
				if (got < want)
					return HS_MERGE_FULL;
			} else {
				m->out->gap(m->arg, m->next, hi,
					    t->kind == IT_HOLE ? HS_MERGE_HOLE
					    : t->kind == IT_BRIDGE ? HS_MERGE_BRIDGE : HS_MERGE_TRIM);
				m->next = hi + 1;
			}
			if (m->next > t->acc_hi)
				drop_head(src);
			continue;
		}
		/* No input offers the next slot: has an f-majority passed it,
		 * and has every input that is up answered? */
		for (int i = 0; i < n; i++) {
			struct input *in = &m->in[i];

			if (in->head < in->n) {
				h[i] = in->it[in->head].first;
				real = min64(real, h[i]);
			} else {
				h[i] = in->pos;
			}
			if (!in->down) {
				if (h[i] <= m->next)
					pending = 1;
				uplim = min64(uplim, h[i]);
			}
			cnt += h[i] > m->next;
		}
		k = n - m->c.r + 1;
		if (k < 1)
			k = 1;
		if (cnt < k || pending)
			return HS_MERGE_MORE;
		/* The k-th largest horizon: every slot below it is passed by k
		 * inputs (selection over at most 32 values). */
		for (int a = 0; a < k; a++) {
			int best = a;

			for (int b = a + 1; b < n; b++)
				if (h[b] > h[best])
					best = b;
			kth = h[best];
			h[best] = h[a];
			h[a] = kth;
		}
		kth = h[k - 1];
		kth = min64(min64(kth - 1, real - 1), min64(uplim - 1, lim));
		m->out->gap(m->arg, m->next, kth, HS_MERGE_DATALOSS);
		m->next = kth + 1;
	}
}

static int bad_input(const struct hs_merge *m, int i)
{
	return !m || i < 0 || i >= m->c.n;
}

int hs_merge_run(struct hs_merge *m, int i, uint64_t first, const uint8_t *run, size_t len)
{
	struct input *in;
	struct hs_run rr;
	struct item *t;
	uint64_t last, acc;
	size_t idx;
	int rc;

	if (bad_input(m, i) || hs_run_parse_nocrc(run, len, &rr) < 0 ||
	    !hs_run_lsn_ok(first, rr.nrecords))
		return -HS_EPROTO;
	in = &m->in[i];
	last = first + rr.nrecords - 1;
	in->pos = max64(in->pos, last + 1);
	if ((rr.flags & HS_RUN_RECOVERY) && rr.wave == m->c.ballot)
		acc = min64(last, m->c.end);
	else
		acc = min64(last, m->c.lng);
	/* Keep it only if part of it may still be handed out. */
	if (acc < first || acc < m->next || first > hi_limit(m))
		return hs_merge_step(m);
	t = push(in);
	t->first = first;
	t->last = last;
	t->acc_hi = acc;
	t->kind = rr.flags & HS_RUN_HOLE ? IT_HOLE : rr.flags & HS_RUN_BRIDGE ? IT_BRIDGE : IT_RUN;
	t->run = rr;
	t->recs = rr.nrecords;
	t->bytes = len + 12;
	in->brec += rr.nrecords;
	in->bbytes += t->bytes;
	idx = in->n - 1;
	rc = hs_merge_step(m);
	/* Still queued: it outlives the caller's bytes. */
	if (in->n > idx && in->head <= idx && in->it[idx].kind == IT_RUN && !in->it[idx].owned)
		own(in, &in->it[idx]);
	return rc;
}

int hs_merge_gap(struct hs_merge *m, int i, uint64_t lo, uint64_t hi, int reason)
{
	struct input *in;

	if (bad_input(m, i) || lo > hi)
		return -HS_EPROTO;
	in = &m->in[i];
	in->pos = max64(in->pos, hi == UINT64_MAX ? hi : hi + 1);
	if (reason == HS_GAP_TRIM && hi >= m->next && lo <= hi_limit(m)) {
		struct item *t = push(in);

		t->first = lo;
		t->last = hi;
		t->acc_hi = hi;
		t->kind = IT_TRIM; /* no records: it took no credit */
	}
	return hs_merge_step(m);
}

int hs_merge_end(struct hs_merge *m, int i)
{
	if (bad_input(m, i))
		return -HS_EPROTO;
	m->in[i].pos = max64(m->in[i].pos, m->c.to == UINT64_MAX ? m->c.to : m->c.to + 1);
	return hs_merge_step(m);
}

void hs_merge_down(struct hs_merge *m, int i)
{
	if (!bad_input(m, i))
		m->in[i].down = 1;
}

void hs_merge_reopen(struct hs_merge *m, int i)
{
	struct input *in;

	if (bad_input(m, i))
		return;
	in = &m->in[i];
	in->down = 0;
	in->head = in->n = 0;
	in->brec = in->bbytes = 0;
	hs_buf_reset(&in->buf);
	in->pos = m->next;
}

uint64_t hs_merge_next(const struct hs_merge *m)
{
	return m->next;
}

uint64_t hs_merge_pos(const struct hs_merge *m, int i)
{
	return bad_input(m, i) ? 0 : m->in[i].pos;
}

int hs_merge_is_down(const struct hs_merge *m, int i)
{
	return bad_input(m, i) ? 1 : m->in[i].down;
}

void hs_merge_buffered(const struct hs_merge *m, int i, uint64_t *records, uint64_t *bytes)
{
	*records = bad_input(m, i) ? 0 : m->in[i].brec;
	*bytes = bad_input(m, i) ? 0 : m->in[i].bbytes;
}

int hs_merge_blocked(const struct hs_merge *m)
{
	if (m->next > m->c.to || m->next > m->c.end)
		return 0;
	for (int i = 0; i < m->c.n; i++) {
		const struct input *in = &m->in[i];

		/* An input up and not past the next slot may still decide it. */
		if (!in->down && in->head == in->n && in->pos <= m->next)
			return 0;
		if (in->head < in->n && in->it[in->head].first <= m->next)
			return 0;
	}
	return 1;
}
