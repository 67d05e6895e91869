/* meta.c - codecs of the stream directory and log records (meta.h). */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "meta.h"
#include "wire.h"

size_t hs_meta_skey(uint8_t *k, const char *name, size_t len)
{
	k[0] = 's';
	k[1] = '/';
	memcpy(k + 2, name, len);
	return len + 2;
}

size_t hs_meta_lkey(uint8_t *k, uint64_t log)
{
	k[0] = 'l';
	k[1] = '/';
	hs_put64be(k + 2, log);
	return 10;
}

void hs_srec_enc(const struct hs_srec *r, struct hs_buf *out)
{
	hs_w8(out, 2);
	hs_w8(out, r->flags);
	hs_w8(out, r->replication);
	hs_w8(out, r->durability);
	hs_w32(out, 0);
	hs_w64(out, r->log);
	hs_w64(out, r->retention_ms);
	hs_w64(out, r->offload_after_ms);
	hs_w64(out, r->created_ms);
	hs_w64(out, r->offload_size);
}

void hs_lrec_enc(const struct hs_lrec *r, struct hs_buf *out)
{
	size_t alen = strnlen(r->owner_addr, HS_LREC_ADDR_MAX);

	hs_w8(out, 3);
	hs_w8(out, 0);
	hs_w16(out, 0);
	hs_w32(out, r->epoch);
	hs_w64(out, r->trim);
	hs_w32(out, r->lce);
	hs_w16(out, r->nepochs);
	hs_w16(out, 0);
	for (uint16_t i = 0; i < r->nepochs; i++) {
		const struct hs_lepoch *e = &r->epochs[i];

		hs_w32(out, e->epoch);
		hs_w8(out, e->r);
		hs_w8(out, e->nn);
		hs_w8(out, e->flags);
		hs_w8(out, 0);
		hs_w64(out, e->lng);
		hs_w64(out, e->end);
		hs_w32(out, e->ballot);
		hs_w32(out, 0);
		for (uint8_t j = 0; j < e->nn; j++)
			hs_w32(out, e->nodes[j]);
	}
	hs_w64(out, r->owner);
	hs_w8(out, (uint8_t)alen);
	hs_buf_append(out, r->owner_addr, alen);
}

int hs_srec_dec(const uint8_t *p, size_t len, struct hs_srec *r)
{
	memset(r, 0, sizeof(*r));
	if (!len)
		return 0;
	if (!(p[0] == 1 && len >= HS_SREC_V1_LEN) && !(p[0] == 2 && len >= HS_SREC_LEN))
		return -HS_EDATA;
	r->flags = p[1];
	r->replication = p[2];
	r->durability = p[3];
	r->log = hs_get64(p + 8);
	r->retention_ms = hs_get64(p + 16);
	r->offload_after_ms = hs_get64(p + 24);
	r->created_ms = hs_get64(p + 32);
	if (p[0] == 2)
		r->offload_size = hs_get64(p + 40);
	return 1;
}

int hs_lrec_dec(const uint8_t *p, size_t len, struct hs_lrec *r)
{
	size_t off = HS_LREC_LEN;

	memset(r, 0, sizeof(*r));
	if (!len)
		return 0;
	if (len >= 16 && p[0] == 1) {
		r->epoch = hs_get32(p + 4);
		r->trim = hs_get64(p + 8);
		return 1;
	}
	if (len < HS_LREC_LEN || (p[0] != 2 && p[0] != 3))
		return -HS_EDATA;
	r->epoch = hs_get32(p + 4);
	r->trim = hs_get64(p + 8);
	r->lce = hs_get32(p + 16);
	r->nepochs = hs_get16(p + 20);
	if (r->nepochs > HS_LREC_EPOCHS_MAX)
		goto bad;
	if (r->nepochs)
		r->epochs = hs_xcalloc(r->nepochs, sizeof(*r->epochs));
	for (uint16_t i = 0; i < r->nepochs; i++) {
		struct hs_lepoch *e = &r->epochs[i];

		if (len - off < HS_LEPOCH_LEN)
			goto bad;
		e->epoch = hs_get32(p + off);
		e->r = p[off + 4];
		e->nn = p[off + 5];
		e->flags = p[off + 6];
		e->lng = hs_get64(p + off + 8);
		e->end = hs_get64(p + off + 16);
		e->ballot = hs_get32(p + off + 24);
		off += HS_LEPOCH_LEN;
		if (e->nn > HS_NODESET_MAX || len - off < 4u * e->nn ||
		    (i && e->epoch <= r->epochs[i - 1].epoch))
			goto bad;
		for (uint8_t j = 0; j < e->nn; j++)
			e->nodes[j] = hs_get32(p + off + 4u * j);
		off += 4u * e->nn;
	}
	if (p[0] == 3) {
		size_t alen;

		if (len - off < 9)
			goto bad;
		r->owner = hs_get64(p + off);
		alen = p[off + 8];
		off += 9;
		if (len - off < alen)
			goto bad;
		memcpy(r->owner_addr, p + off, alen);
		r->owner_addr[alen] = 0;
	}
	return 1;
bad:
	hs_lrec_free(r);
	return -HS_EDATA;
}

void hs_lrec_free(struct hs_lrec *r)
{
	free(r->epochs);
	r->epochs = NULL;
	r->nepochs = 0;
}

struct hs_lepoch *hs_lrec_find_epoch(const struct hs_lrec *r, uint32_t e)
{
	for (uint16_t i = 0; i < r->nepochs; i++)
		if (r->epochs[i].epoch == e)
			return &r->epochs[i];
	return NULL;
}

int hs_lrec_put_epoch(struct hs_lrec *r, const struct hs_lepoch *e)
{
	struct hs_lepoch *old = hs_lrec_find_epoch(r, e->epoch);
	uint16_t i;

	if (old) {
		*old = *e;
		return 0;
	}
	if (r->nepochs >= HS_LREC_EPOCHS_MAX)
		return -HS_ETOOBIG;
	r->epochs = hs_xrealloc(r->epochs, (r->nepochs + 1u) * sizeof(*r->epochs));
	for (i = r->nepochs; i > 0 && r->epochs[i - 1].epoch > e->epoch; i--)
		r->epochs[i] = r->epochs[i - 1];
	r->epochs[i] = *e;
	r->nepochs++;
	return 0;
}

void hs_lrec_compact(struct hs_lrec *r)
{
	uint16_t n = 0;
	uint32_t lce = r->epoch;

	for (uint16_t i = 0; i < r->nepochs; i++) {
		const struct hs_lepoch *e = &r->epochs[i];
		int clean = e->flags & HS_LEPOCH_CLEAN;

		if (clean && (e->end == 0 || e->end <= r->trim))
			continue;
		if (!clean && e->epoch <= lce)
			lce = e->epoch - 1;
		r->epochs[n++] = *e;
	}
	r->nepochs = n;
	if (lce > r->lce)
		r->lce = lce;
}

size_t hs_meta_ukey(uint8_t *k, const char *name, size_t len)
{
	k[0] = 'u';
	k[1] = '/';
	memcpy(k + 2, name, len);
	return len + 2;
}

void hs_urec_enc(const struct hs_urec *r, struct hs_buf *out)
{
	hs_w8(out, 1);
	hs_w8(out, r->flags);
	hs_w16(out, 0);
	hs_w32(out, r->ack_timeout_ms);
	hs_w32(out, r->max_unacked);
	hs_w32(out, 0);
	hs_w64(out, r->log);
	hs_w64(out, r->checkpoint);
	hs_w64(out, r->created_ms);
	hs_w8(out, r->stream_len);
	hs_buf_append(out, r->stream, r->stream_len);
}

int hs_urec_dec(const uint8_t *p, size_t len, struct hs_urec *r)
{
	memset(r, 0, sizeof(*r));
	if (!len)
		return 0;
	if (len < HS_UREC_LEN + 1 || p[0] != 1 || len < HS_UREC_LEN + 1u + p[HS_UREC_LEN])
		return -HS_EDATA;
	r->flags = p[1];
	r->ack_timeout_ms = hs_get32(p + 4);
	r->max_unacked = hs_get32(p + 8);
	r->log = hs_get64(p + 16);
	r->checkpoint = hs_get64(p + 24);
	r->created_ms = hs_get64(p + 32);
	r->stream_len = p[HS_UREC_LEN];
	memcpy(r->stream, p + HS_UREC_LEN + 1, r->stream_len);
	r->stream[r->stream_len] = 0;
	return 1;
}
