/* meta.c - codecs of the stream directory and log records (meta.h). */
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
	hs_w8(out, 1);
	hs_w8(out, r->flags);
	hs_w8(out, r->replication);
	hs_w8(out, r->durability);
	hs_w32(out, 0);
	hs_w64(out, r->log);
	hs_w64(out, r->retention_ms);
	hs_w64(out, r->offload_after_ms);
	hs_w64(out, r->created_ms);
}

void hs_lrec_enc(const struct hs_lrec *r, struct hs_buf *out)
{
	hs_w8(out, 1);
	hs_w8(out, 0);
	hs_w16(out, 0);
	hs_w32(out, r->epoch);
	hs_w64(out, r->trim);
}

int hs_srec_dec(const uint8_t *p, size_t len, struct hs_srec *r)
{
	memset(r, 0, sizeof(*r));
	if (!len)
		return 0;
	if (len < HS_SREC_LEN || p[0] != 1)
		return -HS_EDATA;
	r->flags = p[1];
	r->replication = p[2];
	r->durability = p[3];
	r->log = hs_get64(p + 8);
	r->retention_ms = hs_get64(p + 16);
	r->offload_after_ms = hs_get64(p + 24);
	r->created_ms = hs_get64(p + 32);
	return 1;
}

int hs_lrec_dec(const uint8_t *p, size_t len, struct hs_lrec *r)
{
	memset(r, 0, sizeof(*r));
	if (!len)
		return 0;
	if (len < HS_LREC_LEN || p[0] != 1)
		return -HS_EDATA;
	r->epoch = hs_get32(p + 4);
	r->trim = hs_get64(p + 8);
	return 1;
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
