/*
 * fuzz_seg.c - libFuzzer target for the Tier2 segment reader
 * (libtier/segment.h), reading from an in-memory backend.  Built by
 * test/fuzz/run.
 *
 * Input: byte 0 picks the mode, the rest is
 *   mode 0: a whole segment object.  Before reading, the harness fixes
 *           every checksum it can (trailer and footer CRC32C, the index and
 *           whole-object BLAKE2b, each plain block's CRC32C) so the fuzzer
 *           gets past them into the structure checks; then hs_seg_open (with
 *           and without the size), every block read, find, find_time and
 *           hs_seg_verify.
 *   mode 1: the plaintext of block (byte 1 % nblocks) of a fixed valid
 *           segment built at start-up, handed to hs_seg_parse_block.
 * A parsed block's entries must have increasing LSNs within the segment's
 * range and in-bounds payloads.
 */
#include "fuzz.h"

#include <sodium.h>

#include "backend.h"
#include "crc32c.h"
#include "err.h"
#include "segment.h"
#include "wire.h"

/* ---- a one-object in-memory backend ---------------------------------- */

struct mtier {
	struct hs_tier t;
	struct hs_buf obj; /* the object; valid when have */
	int have;
};

struct mput {
	struct hs_tier_put p;
	struct hs_buf data;
};

static int m_get(struct hs_tier *t, const char *key, uint64_t off, uint64_t len,
		 struct hs_buf *out)
{
	struct mtier *m = (struct mtier *)t;

	if (!m->have)
		return hs_tier_seterr(t, -HS_ENOENT, "get '%s': no such object", key);
	if (off >= m->obj.len)
		return 0;
	if (len == 0 || len > m->obj.len - off)
		len = m->obj.len - off;
	hs_buf_append(out, m->obj.data + off, len);
	return 0;
}

static int m_head(struct hs_tier *t, const char *key, uint64_t *size)
{
	struct mtier *m = (struct mtier *)t;

	if (!m->have)
		return hs_tier_seterr(t, -HS_ENOENT, "head '%s': no such object", key);
	*size = m->obj.len;
	return 0;
}

static int m_put_begin(struct hs_tier *t, const char *key, unsigned flags,
		       struct hs_tier_put **out)
{
	struct mput *p = calloc(1, sizeof(*p));

	if (!p)
		abort();
	p->p.t = t;
	*out = &p->p;
	return 0;
}

static int m_put_write(struct hs_tier_put *hp, const void *data, size_t len)
{
	hs_buf_append(&((struct mput *)hp)->data, data, len);
	return 0;
}

static void m_put_abort(struct hs_tier_put *hp)
{
	struct mput *p = (struct mput *)hp;

	hs_buf_free(&p->data);
	free(p);
}

static int m_put_end(struct hs_tier_put *hp)
{
	struct mput *p = (struct mput *)hp;
	struct mtier *m = (struct mtier *)p->p.t;

	hs_buf_free(&m->obj);
	m->obj = p->data;
	m->have = 1;
	free(p);
	return 0;
}

/* The reader never lists or deletes. */
static int m_list(struct hs_tier *t, const char *prefix, hs_tier_list_cb cb, void *arg)
{
	return hs_tier_seterr(t, -HS_EIO, "list: not supported by the fuzz backend");
}

static int m_del(struct hs_tier *t, const char *key)
{
	return hs_tier_seterr(t, -HS_EIO, "delete: not supported by the fuzz backend");
}

static void m_close(struct hs_tier *t)
{
}

static const struct hs_tier_ops mops = {
	.name = "mem",
	.put_begin = m_put_begin,
	.put_write = m_put_write,
	.put_end = m_put_end,
	.put_abort = m_put_abort,
	.get = m_get,
	.head = m_head,
	.list = m_list,
	.del = m_del,
	.close = m_close,
};

/* ---- the fixed segment (mode 1) and the checks ----------------------- */

static struct mtier fixed_t = { .t = { .ops = &mops } };
static struct hs_seg *fixed;

static void build_fixed(void)
{
	struct hs_seg_wopts o = { .block_size = 4096 };
	struct hs_seg_writer *w;
	uint8_t payload[300];
	uint64_t lsn = ((uint64_t)3 << 32) + 1;

	memset(payload, 'p', sizeof(payload));
	CHECK(hs_seg_writer_open(&fixed_t.t, "fz/seg", &o, &w) == 0);
	for (int i = 0; i < 40; i++, lsn++) {
		if (i % 9 == 8) {
			CHECK(hs_seg_add_gap(w, lsn, lsn + 2, 1 + i % 4) == 0);
			lsn += 2;
			continue;
		}
		CHECK(hs_seg_add_record(w, lsn, 1764151200000ull + i * 7, payload,
					(size_t)i * 37 % sizeof(payload)) == 0);
	}
	CHECK(hs_seg_finish(w, NULL) == 0);
	CHECK(hs_seg_open(&fixed_t.t, "fz/seg", NULL, &fixed) == 0);
	CHECK(hs_seg_info(fixed)->nblocks >= 2);
}

struct walk {
	const struct hs_seg_info *info;
	uint64_t prev;
};

static int entry_cb(void *arg, const struct hs_seg_entry *e)
{
	struct walk *w = arg;

	CHECK(e->lsn > w->prev && e->hi >= e->lsn);
	CHECK(e->lsn >= w->info->first_lsn && e->hi <= w->info->last_lsn);
	if (e->is_gap)
		CHECK(e->kind >= 1 && e->kind <= 4 && e->len == 0);
	else if (e->len)
		fz_touch(e->data, e->len);
	w->prev = e->hi;
	return 0;
}

/* Make the checksums of a candidate object right (see the header). */
static void fixup(uint8_t *o, size_t n)
{
	uint8_t *trl, *f, *idx;
	uint64_t ioff, ilen;
	uint32_t flen;

	if (n < 32 + 180 + 16)
		return;
	trl = o + n - 16;
	hs_put32(trl + 12, hs_crc32c(0, trl, 12));
	flen = hs_get32(trl + 8);
	if ((flen != 180 && flen != 252) || flen + 16 + 32 > n)
		return;
	f = trl - flen;
	ioff = hs_get64(f + 96);
	ilen = hs_get64(f + 104);
	if (ioff <= n && ilen <= n - ioff) {
		idx = o + ioff;
		for (uint64_t i = 0; i + 32 <= ilen; i += 32) {
			uint64_t boff = hs_get64(idx + i + 16);
			uint32_t blen = hs_get32(idx + i + 24), bno = (uint32_t)(i / 32);
			uint8_t b[4];
			uint32_t c;

			if (blen < 4 || boff > n || blen > n - boff)
				continue;
			hs_put32(b, bno);
			c = hs_crc32c(hs_crc32c(hs_crc32c(0, f + 16, 16), b, 4),
				      o + boff, blen - 4);
			hs_put32(o + boff + blen - 4, c);
		}
		crypto_generichash(f + 112, 32, idx, ilen, NULL, 0);
		crypto_generichash(f + 144, 32, o, ioff + ilen, NULL, 0);
	}
	hs_put32(f + flen - 4, hs_crc32c(0, f, flen - 4));
}

static void read_object(const uint8_t *p, size_t n)
{
	struct mtier mt = { .t = { .ops = &mops }, .have = 1 };
	struct hs_seg_ropts o = { 0 };
	struct hs_seg_info vi;
	struct hs_seg *s;
	int err;

	hs_buf_append(&mt.obj, p, n);
	fixup(mt.obj.data, mt.obj.len);
	for (int pass = 0; pass < 2; pass++) {
		o.size = pass ? n : 0;
		if (hs_seg_open(&mt.t, "fz/x", &o, &s))
			continue;
		{
			const struct hs_seg_info *in = hs_seg_info(s);
			struct walk w = { in, 0 };

			CHECK(in->size == n);
			for (uint32_t i = 0; i < in->nblocks; i++) {
				const struct hs_seg_block *b = hs_seg_block(s, i);

				CHECK(b && b->off + b->len <= n);
				w.prev = b->first_lsn - 1;
				err = hs_seg_read_block(s, i, entry_cb, &w);
				CHECK(err <= 0);
			}
			CHECK(hs_seg_block(s, in->nblocks) == NULL);
			err = hs_seg_find(s, in->first_lsn);
			CHECK(in->nblocks ? err == 0 : err == -HS_ENOENT);
			err = hs_seg_find(s, in->last_lsn);
			CHECK(in->nblocks ? err >= 0 && (uint32_t)err < in->nblocks
					  : err == -HS_ENOENT);
			err = hs_seg_find_time(s, in->last_ts);
			CHECK(in->nblocks ? err >= 0 && (uint32_t)err < in->nblocks
					  : err == -HS_ENOENT);
		}
		hs_seg_close(s);
	}
	hs_seg_verify(&mt.t, "fz/x", &vi);
	hs_buf_free(&mt.obj);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!fixed) {
		CHECK(sodium_init() >= 0);
		build_fixed();
	}
	if (size < 2)
		return 0;
	if (data[0] & 1) {
		const struct hs_seg_info *in = hs_seg_info(fixed);
		uint32_t i = data[1] % in->nblocks;
		struct walk w = { in, hs_seg_block(fixed, i)->first_lsn - 1 };
		/* exact size, so reading past the plaintext is caught */
		struct hs_buf plain = { fz_dup(data + 2, size - 2), size - 2, size - 2 };

		CHECK(hs_seg_parse_block(fixed, i, &plain, entry_cb, &w) <= 0);
		free(plain.data);
	} else {
		read_object(data + 1, size - 1);
	}
	return 0;
}
