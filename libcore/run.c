/*
 * run.c - building, validating, iterating and slicing runs (layout in
 * run.h and proto.h).
 *
 * hs_run_parse() is the only place that distrusts the bytes: it walks every
 * record header once.  Iteration and slicing then rely on that validation
 * and do no bounds checks of their own.
 */
#include <errno.h>

#include "crc32c.h"
#include "err.h"
#include "proto.h"
#include "run.h"
#include "wire.h"

void hs_run_begin(struct hs_run_builder *rb, struct hs_buf *out, uint8_t flags, uint64_t lng,
		  uint32_t wave, const uint32_t *copyset, uint16_t ncopyset)
{
	uint8_t *h;

	rb->out = out;
	rb->start = out->len;
	rb->n = 0;
	h = hs_buf_reserve(out, HS_RUN_HDR + 4 * (size_t)ncopyset);
	h[0] = HS_RUN_VERSION;
	h[1] = flags;
	hs_put16(h + 2, ncopyset);
	hs_put32(h + 4, 0);
	hs_put64(h + 8, lng);
	hs_put32(h + 16, wave);
	hs_put32(h + 20, 0);
	for (uint16_t i = 0; i < ncopyset; i++)
		hs_put32(h + HS_RUN_HDR + 4 * i, copyset[i]);
	out->len += HS_RUN_HDR + 4 * (size_t)ncopyset;
}

void hs_run_add(struct hs_run_builder *rb, uint64_t ts_ms, const void *p, uint32_t len)
{
	uint8_t *h = hs_buf_reserve(rb->out, HS_RUN_REC_HDR + (size_t)len);

	hs_put64(h, ts_ms);
	hs_put32(h + 8, len);
	if (len)
		memcpy(h + HS_RUN_REC_HDR, p, len);
	rb->out->len += HS_RUN_REC_HDR + (size_t)len;
	rb->n++;
}

size_t hs_run_end(struct hs_run_builder *rb)
{
	struct hs_buf *out = rb->out;
	uint8_t *run = out->data + rb->start;

	if (!rb->n) {
		out->len = rb->start;
		return 0;
	}
	hs_put32(run + 4, rb->n);
	hs_w32(out, hs_crc32c(0, out->data + rb->start, out->len - rb->start));
	return out->len - rb->start;
}

static int parse(const uint8_t *p, size_t n, struct hs_run *r, int check_crc)
{
	const uint8_t *q, *end;
	size_t cs;

	if (n < HS_RUN_MIN || p[0] != HS_RUN_VERSION || (p[1] & ~HS_RUN_FLAGS_ALL))
		return -HS_EPROTO;
	r->flags = p[1];
	r->ncopyset = hs_get16(p + 2);
	r->nrecords = hs_get32(p + 4);
	r->lng = hs_get64(p + 8);
	r->wave = hs_get32(p + 16);
	cs = 4 * (size_t)r->ncopyset;
	if (r->ncopyset > HS_RUN_COPYSET_MAX || r->nrecords == 0 || n - HS_RUN_MIN < cs)
		return -HS_EPROTO;
	/* Each record takes at least its header: bounds the walk below. */
	end = p + n - 4;
	q = p + HS_RUN_HDR + cs;
	if (r->nrecords > (size_t)(end - q) / HS_RUN_REC_HDR)
		return -HS_EPROTO;
	r->copyset = p + HS_RUN_HDR;
	r->records = q;
	for (uint32_t i = 0; i < r->nrecords; i++) {
		uint32_t len;

		if ((size_t)(end - q) < HS_RUN_REC_HDR)
			return -HS_EPROTO;
		len = hs_get32(q + 8);
		q += HS_RUN_REC_HDR;
		if ((size_t)(end - q) < len)
			return -HS_EPROTO;
		if (len && (r->flags & (HS_RUN_HOLE | HS_RUN_BRIDGE)))
			return -HS_EPROTO;
		q += len;
	}
	if (q != end)
		return -HS_EPROTO;
	if (check_crc && hs_crc32c(0, p, n - 4) != hs_get32(end))
		return -HS_ECHECKSUM;
	r->end = end;
	r->base = p;
	r->len = n;
	return 0;
}

int hs_run_parse(const uint8_t *p, size_t n, struct hs_run *r)
{
	return parse(p, n, r, 1);
}

int hs_run_parse_nocrc(const uint8_t *p, size_t n, struct hs_run *r)
{
	return parse(p, n, r, 0);
}

uint32_t hs_run_copyset(const struct hs_run *r, int i)
{
	return hs_get32(r->copyset + 4 * (size_t)i);
}

int hs_run_lsn_ok(uint64_t first_lsn, uint32_t nrecords)
{
	return nrecords >= 1 && (uint64_t)HS_LSN_ESN(first_lsn) + nrecords - 1 <= UINT32_MAX;
}

void hs_run_iter_init(struct hs_run_iter *it, const struct hs_run *r)
{
	it->p = r->records;
	it->left = r->nrecords;
}

int hs_run_next(struct hs_run_iter *it, uint64_t *ts, const uint8_t **p, uint32_t *len)
{
	uint32_t l;

	if (!it->left)
		return 0;
	l = hs_get32(it->p + 8);
	if (ts)
		*ts = hs_get64(it->p);
	if (p)
		*p = it->p + HS_RUN_REC_HDR;
	if (len)
		*len = l;
	it->p += HS_RUN_REC_HDR + (size_t)l;
	it->left--;
	return 1;
}

int hs_run_slice(const struct hs_run *r, uint32_t from_idx, uint32_t n, struct hs_buf *out)
{
	struct hs_run_iter it;
	const uint8_t *a;
	size_t start = out->len, cs = 4 * (size_t)r->ncopyset;
	uint8_t *h;

	if (!n || from_idx >= r->nrecords || n > r->nrecords - from_idx)
		return -EINVAL;
	hs_run_iter_init(&it, r);
	for (uint32_t i = 0; i < from_idx; i++)
		hs_run_next(&it, NULL, NULL, NULL);
	a = it.p;
	for (uint32_t i = 0; i < n; i++)
		hs_run_next(&it, NULL, NULL, NULL);
	/* Header and copyset are r's own bytes with the count changed. */
	h = hs_buf_reserve(out, HS_RUN_HDR + cs + (size_t)(it.p - a) + 4);
	memcpy(h, r->base, HS_RUN_HDR + cs);
	hs_put32(h + 4, n);
	memcpy(h + HS_RUN_HDR + cs, a, (size_t)(it.p - a));
	out->len += HS_RUN_HDR + cs + (size_t)(it.p - a);
	hs_w32(out, hs_crc32c(0, out->data + start, out->len - start));
	return 0;
}
