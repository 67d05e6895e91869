/*
 * segment.c - the Tier2 segment object format; see segment.h for the API.
 *
 * FORMAT, version 1 (all integers little-endian; also in
 * docs/segment-format.md, which must stay in step with this comment)
 *
 *   +--------+---------+---------+-----+---------+-------+--------+---------+
 *   | header | block 0 | block 1 | ... | block N-1 | index | footer | trailer |
 *   +--------+---------+---------+-----+---------+-------+--------+---------+
 *     32 B                                          32*N B  F B      16 B
 *
 * Header (32 bytes, at offset 0)
 *   0   8  magic "HSEG0001"
 *   8   4  flags: bit 0 = encrypted; other bits 0
 *   12  4  reserved, 0
 *   16  16 segment id: random bytes chosen by the writer
 *
 * Block body (plaintext; "about 1 MiB": the writer closes a block when the
 * next entry would take it past the target size; an entry never spans
 * blocks, so a block holding one large record can be larger)
 *   0   8  first_lsn: the LSN of the block's first entry (a gap's lo)
 *   8   8  first_ts: the timestamp of the block's first record; in a block
 *          without records, the last timestamp before it (0 if none)
 *   16  .. entries, each starting with a type byte:
 *     record  u8 1 | uvarint dlsn | svarint dts | uvarint len | len bytes
 *     gap     u8 2 | uvarint dlsn | uvarint hi - lo | u8 kind
 *   dlsn = LSN (a gap's lo) minus the previous entry's LSN (a gap's hi),
 *   starting from first_lsn - 1, so it is >= 1 and consecutive records cost
 *   one byte.  dts = the timestamp minus the previous record's timestamp in
 *   the block, starting from first_ts.  uvarint = LEB128 (7 bits a byte, low
 *   first, at most 10 bytes); svarint = uvarint of the zigzag encoding
 *   (n << 1) ^ (n >> 63).  Gap kinds: 1 HOLE, 2 BRIDGE, 3 TRIM, 4 DATALOSS.
 *   Records and gaps have LSNs >= 1, strictly increasing along the object.
 *
 * Stored block (what the index points at)
 *   plain:     body | u32 crc32c(segment id | u32 block number | body)
 *   encrypted: 24-byte nonce | XChaCha20-Poly1305-IETF(body) (body + 16 B
 *              tag) under the segment's data key, associated data =
 *              segment id | u32 block number; the nonce is random.
 *   Binding the segment id and the block number means a block copied from
 *   another segment or another position fails its check.
 *
 * Index (32 bytes per block, right after the last block)
 *   0   8  first_lsn   (as in the block body)
 *   8   8  first_ts    (as in the block body)
 *   16  8  offset of the stored block in the object
 *   24  4  stored length
 *   28  4  number of entries in the block
 *   Blocks are contiguous: block 0 starts at 32, each next one where the
 *   previous ends, and the last ends where the index starts.  The index is
 *   not encrypted: LSNs and timestamps are metadata the manifest also holds;
 *   payloads never appear outside blocks.
 *
 * Footer (F = 180 bytes plain, 252 encrypted)
 *   0   8  magic "HSEGFOOT"
 *   8   4  F
 *   12  4  flags (as in the header)
 *   16  16 segment id (as in the header)
 *   32  8  first_lsn   first entry's LSN, 0 if the segment is empty
 *   40  8  last_lsn    last record's LSN or last gap's hi, 0 if empty
 *   48  8  first_ts    first record's timestamp, 0 if no record
 *   56  8  last_ts     last record's timestamp, 0 if no record
 *   64  8  number of records
 *   72  8  number of gaps
 *   80  8  sum of payload lengths
 *   88  4  number of blocks N
 *   92  4  the writer's target block size
 *   96  8  index offset
 *   104 8  index length (32 * N)
 *   112 32 BLAKE2b-256 of the index
 *   144 32 BLAKE2b-256 of the object from offset 0 to the end of the index
 *   176    encrypted only: 24 B nonce | 48 B wrapped data key =
 *          XChaCha20-Poly1305-IETF(the 32 B data key) under the key-file
 *          key, associated data = footer bytes 0..176, so unwrapping also
 *          authenticates the footer, hence the index (by its hash), hence
 *          each block (by its tag): nothing is trusted unauthenticated.
 *   F-4 4  crc32c of footer bytes 0..F-4
 *
 * Trailer (16 bytes, the very end)
 *   0   8  magic "HSEGEND1"
 *   8   4  F
 *   12  4  crc32c of trailer bytes 0..12
 *
 * Reading: one ranged get of the last min(size, 16 KiB) bytes yields the
 * trailer, the footer and, for segments up to ~500 blocks, the index; a
 * larger index takes one more get.  A block is one more ranged get.  Suffix
 * ranges (bytes=-N) are never used: some S3 servers get them wrong, so the
 * size comes from the manifest or a HEAD.
 *
 * Checks: trailer and footer by CRC32C and by their fixed relations (the
 * index ends where the footer starts, F matches the flags); the index by its
 * BLAKE2b in the footer; a block by its CRC32C or AEAD tag, then its first
 * LSN, first timestamp and entry count against the index, every varint and
 * length against the block's end, and LSN order -- all before any entry is
 * handed out.  hs_seg_verify() also recomputes the whole-object BLAKE2b.
 */
#include "segment.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "crc32c.h"
#include "err.h"
#include "wire.h"

#define HDR_LEN 32
#define IDX_ENT 32
#define FOOT_PLAIN 180
#define FOOT_ENC 252
#define FOOT_AD 176 /* footer bytes covered by the key wrap */
#define TRAILER_LEN 16
#define TAIL_READ (16u << 10)
#define VERIFY_CHUNK (4u << 20)
#define BODY_HDR 16
#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES
#define FLAG_ENC 1u
#define ENT_RECORD 1
#define ENT_GAP 2

static const char hdr_magic[8] = "HSEG0001";
static const char foot_magic[8] = "HSEGFOOT";
static const char trl_magic[8] = "HSEGEND1";

/* Set "segment 'KEY': ..." as t's error text; returns err. */
static int segerr(struct hs_tier *t, const char *key, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int segerr(struct hs_tier *t, const char *key, int err, const char *fmt, ...)
{
	char msg[HS_TIER_ERRLEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return hs_tier_seterr(t, err, "segment '%s': %s", key, msg);
}

/* Prefix the backend's own text with the segment name. */
static int backerr(struct hs_tier *t, const char *key, int err)
{
	char msg[HS_TIER_ERRLEN];

	snprintf(msg, sizeof(msg), "%s", hs_tier_error(t)[0] ? hs_tier_error(t)
							       : hs_strerror(err));
	return segerr(t, key, err, "%s", msg);
}

static void put_uvar(struct hs_buf *b, uint64_t v)
{
	uint8_t *p = hs_buf_reserve(b, 10);
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)v | 0x80;
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	b->len += n;
}

/* Decode a uvarint from [*p, end); 0 on success, -1 if malformed. */
static int get_uvar(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
	const uint8_t *p = *pp;
	uint64_t r = 0;

	for (int shift = 0; shift < 64; shift += 7) {
		if (p == end)
			return -1;
		uint8_t c = *p++;

		if (shift == 63 && c > 1)
			return -1; /* over 64 bits */
		r |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			*pp = p;
			*v = r;
			return 0;
		}
	}
	return -1;
}

static uint64_t zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzigzag(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static uint32_t block_crc(const uint8_t segid[16], uint32_t bno,
			  const uint8_t *body, size_t n)
{
	uint8_t b[4];
	uint32_t c = hs_crc32c(0, segid, 16);

	hs_put32(b, bno);
	c = hs_crc32c(c, b, 4);
	return hs_crc32c(c, body, n);
}

static void block_ad(uint8_t ad[20], const uint8_t segid[16], uint32_t bno)
{
	memcpy(ad, segid, 16);
	hs_put32(ad + 16, bno);
}

int hs_seg_key_load(const char *path, uint8_t key[HS_SEG_KEYLEN])
{
	uint8_t buf[160];
	size_t bin = 0;
	ssize_t n;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -HS_ENOENT : errno == EACCES ? -HS_EPERM : -HS_EIO;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0)
		return -HS_EIO;
	if (n == HS_SEG_KEYLEN) {
		memcpy(key, buf, HS_SEG_KEYLEN);
		goto out;
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	if (n != 2 * HS_SEG_KEYLEN ||
	    sodium_hex2bin(key, HS_SEG_KEYLEN, (const char *)buf, n, NULL, &bin,
			   NULL) != 0 || bin != HS_SEG_KEYLEN)
		err = -HS_ECONFIG;
out:
	sodium_memzero(buf, sizeof(buf));
	return err;
}

/* --- writer ------------------------------------------------------------- */

struct hs_seg_writer {
	struct hs_tier *t;          /* borrowed */
	struct hs_tier_put *put;    /* owned until put_end/abort */
	char *key;                  /* owned */
	uint32_t block_size;
	int enc;
	uint8_t dek[32];            /* the segment's data key */
	uint8_t kek[32];            /* the key-file key */
	crypto_generichash_state hash;
	uint64_t off;               /* bytes written so far */
	struct hs_buf body;         /* the open block's plaintext */
	struct hs_buf sealed;       /* scratch for the stored block */
	struct hs_buf index;
	uint32_t bentries;          /* entries in the open block */
	int brecords;               /* the open block has a record */
	uint64_t bprev_ts;          /* previous record's ts in the block */
	uint64_t prev;              /* last LSN added (0 = none) */
	uint64_t carry_ts;          /* last record ts so far (0 = none) */
	struct hs_seg_info info;
	int err;                    /* sticky */
};

static int wwrite(struct hs_seg_writer *w, const void *p, size_t n)
{
	int err = hs_tier_put_write(w->put, p, n);

	if (err < 0)
		return backerr(w->t, w->key, err);
	crypto_generichash_update(&w->hash, p, n);
	w->off += n;
	return 0;
}

static int flush_block(struct hs_seg_writer *w)
{
	uint32_t bno = w->info.nblocks;
	uint8_t *p, ad[20];
	unsigned long long clen;
	size_t slen;
	int err;

	hs_buf_reset(&w->sealed);
	if (w->enc) {
		p = hs_buf_reserve(&w->sealed, NONCE_LEN + w->body.len + TAG_LEN);
		randombytes_buf(p, NONCE_LEN);
		block_ad(ad, w->info.segid, bno);
		crypto_aead_xchacha20poly1305_ietf_encrypt(p + NONCE_LEN, &clen,
			w->body.data, w->body.len, ad, sizeof(ad), NULL, p, w->dek);
		w->sealed.len = NONCE_LEN + clen;
	} else {
		hs_buf_append(&w->sealed, w->body.data, w->body.len);
		hs_w32(&w->sealed, block_crc(w->info.segid, bno, w->body.data,
					     w->body.len));
	}
	slen = w->sealed.len;
	if (slen > UINT32_MAX)
		return segerr(w->t, w->key, -HS_ETOOBIG, "block %u too large", bno);
	hs_w64(&w->index, hs_get64(w->body.data));
	hs_w64(&w->index, hs_get64(w->body.data + 8));
	hs_w64(&w->index, w->off);
	hs_w32(&w->index, (uint32_t)slen);
	hs_w32(&w->index, w->bentries);
	err = wwrite(w, w->sealed.data, slen);
	if (err < 0)
		return err;
	w->info.nblocks++;
	hs_buf_reset(&w->body);
	w->bentries = 0;
	w->brecords = 0;
	return 0;
}

/* Make room for an entry of about need bytes starting at lsn: close the
 * open block if the entry would take it past the target, open a new one. */
static int entry_begin(struct hs_seg_writer *w, uint64_t lsn, size_t need)
{
	int err;

	if (w->bentries && w->body.len + need > w->block_size) {
		err = flush_block(w);
		if (err < 0)
			return err;
	}
	if (!w->bentries) {
		hs_w64(&w->body, lsn);
		hs_w64(&w->body, w->carry_ts);
		w->bprev_ts = w->carry_ts;
	}
	return 0;
}

int hs_seg_writer_open(struct hs_tier *t, const char *key,
		       const struct hs_seg_wopts *o, struct hs_seg_writer **out)
{
	static const struct hs_seg_wopts defaults;
	struct hs_seg_writer *w;
	uint8_t hdr[HDR_LEN];
	int err;

	*out = NULL;
	if (!o)
		o = &defaults;
	if (sodium_init() < 0)
		return segerr(t, key, -HS_EINTERNAL, "libsodium failed to initialise");
	if (o->block_size && o->block_size < 4096)
		return segerr(t, key, -HS_EDATA, "block size %u below 4096",
			      o->block_size);
	w = hs_xcalloc(1, sizeof(*w));
	w->t = t;
	w->key = hs_xstrdup(key);
	w->block_size = o->block_size ? o->block_size : HS_SEG_BLOCK_DEFAULT;
	w->info.block_size = w->block_size;
	randombytes_buf(w->info.segid, sizeof(w->info.segid));
	if (o->key) {
		w->enc = 1;
		w->info.encrypted = 1;
		memcpy(w->kek, o->key, 32);
		crypto_aead_xchacha20poly1305_ietf_keygen(w->dek);
	}
	crypto_generichash_init(&w->hash, NULL, 0, 32);
	err = hs_tier_put_begin(t, key, o->put_flags, &w->put);
	if (err < 0) {
		err = backerr(t, key, err);
		goto out_free;
	}
	memcpy(hdr, hdr_magic, 8);
	hs_put32(hdr + 8, w->enc ? FLAG_ENC : 0);
	hs_put32(hdr + 12, 0);
	memcpy(hdr + 16, w->info.segid, 16);
	err = wwrite(w, hdr, sizeof(hdr));
	if (err < 0)
		goto out_free;
	*out = w;
	return 0;
out_free:
	hs_seg_abort(w);
	return err;
}

static int check_order(struct hs_seg_writer *w, uint64_t lsn)
{
	if (w->err)
		return segerr(w->t, w->key, w->err, "writer failed earlier: %s",
			      hs_strerror(w->err));
	if (lsn == 0 || lsn <= w->prev)
		return segerr(w->t, w->key, -HS_EDATA,
			      "LSN %llu not above the previous %llu",
			      (unsigned long long)lsn, (unsigned long long)w->prev);
	return 0;
}

int hs_seg_add_record(struct hs_seg_writer *w, uint64_t lsn, uint64_t ts,
		      const void *p, size_t n)
{
	int err = check_order(w, lsn);

	if (err < 0)
		return err;
	if (n > HS_SEG_RECORD_MAX)
		return segerr(w->t, w->key, -HS_ETOOBIG,
			      "record %llu: %zu bytes is over the limit",
			      (unsigned long long)lsn, n);
	err = entry_begin(w, lsn, 31 + n);
	if (err < 0)
		return w->err = err;
	if (!w->brecords) {
		/* The block's first record: its timestamp is the block's. */
		hs_put64(w->body.data + 8, ts);
		w->bprev_ts = ts;
		w->brecords = 1;
	}
	hs_w8(&w->body, ENT_RECORD);
	put_uvar(&w->body, w->bentries ? lsn - w->prev : 1);
	put_uvar(&w->body, zigzag((int64_t)(ts - w->bprev_ts)));
	put_uvar(&w->body, n);
	hs_buf_append(&w->body, p, n);
	w->bentries++;
	w->bprev_ts = ts;
	w->carry_ts = ts;
	w->prev = lsn;
	if (!w->info.first_lsn)
		w->info.first_lsn = lsn;
	if (!w->info.nrecords)
		w->info.first_ts = ts;
	w->info.last_ts = ts;
	w->info.last_lsn = lsn;
	w->info.nrecords++;
	w->info.bytes += n;
	return 0;
}

int hs_seg_add_gap(struct hs_seg_writer *w, uint64_t lo, uint64_t hi,
		   unsigned kind)
{
	int err = check_order(w, lo);

	if (err < 0)
		return err;
	if (hi < lo || kind < HS_SEG_HOLE || kind > HS_SEG_DATALOSS)
		return segerr(w->t, w->key, -HS_EDATA, "bad gap %llu..%llu kind %u",
			      (unsigned long long)lo, (unsigned long long)hi, kind);
	err = entry_begin(w, lo, 22);
	if (err < 0)
		return w->err = err;
	hs_w8(&w->body, ENT_GAP);
	put_uvar(&w->body, w->bentries ? lo - w->prev : 1);
	put_uvar(&w->body, hi - lo);
	hs_w8(&w->body, (uint8_t)kind);
	w->bentries++;
	w->prev = hi;
	if (!w->info.first_lsn)
		w->info.first_lsn = lo;
	w->info.last_lsn = hi;
	w->info.ngaps++;
	return 0;
}

static void footer_build(struct hs_buf *f, const struct hs_seg_info *in,
			 const uint8_t idx_hash[32])
{
	hs_wbytes(f, foot_magic, 8);
	hs_w32(f, in->encrypted ? FOOT_ENC : FOOT_PLAIN);
	hs_w32(f, in->encrypted ? FLAG_ENC : 0);
	hs_wbytes(f, in->segid, 16);
	hs_w64(f, in->first_lsn);
	hs_w64(f, in->last_lsn);
	hs_w64(f, in->first_ts);
	hs_w64(f, in->last_ts);
	hs_w64(f, in->nrecords);
	hs_w64(f, in->ngaps);
	hs_w64(f, in->bytes);
	hs_w32(f, in->nblocks);
	hs_w32(f, in->block_size);
	hs_w64(f, in->index_off);
	hs_w64(f, in->index_len);
	hs_wbytes(f, idx_hash, 32);
	hs_wbytes(f, in->hash, 32);
}

int hs_seg_finish(struct hs_seg_writer *w, struct hs_seg_info *info)
{
	struct hs_buf f = HS_BUF_INIT;
	uint8_t idx_hash[32], *p;
	unsigned long long clen;
	int err = w->err;

	if (err < 0) {
		err = segerr(w->t, w->key, err, "writer failed earlier: %s",
			     hs_strerror(err));
		goto out_abort;
	}
	if (w->bentries && (err = flush_block(w)) < 0)
		goto out_abort;
	w->info.index_off = w->off;
	w->info.index_len = w->index.len;
	crypto_generichash(idx_hash, 32, w->index.data, w->index.len, NULL, 0);
	if ((err = wwrite(w, w->index.data, w->index.len)) < 0)
		goto out_abort;
	crypto_generichash_final(&w->hash, w->info.hash, 32);
	footer_build(&f, &w->info, idx_hash);
	if (w->enc) {
		p = hs_buf_reserve(&f, NONCE_LEN + 32 + TAG_LEN);
		randombytes_buf(p, NONCE_LEN);
		crypto_aead_xchacha20poly1305_ietf_encrypt(p + NONCE_LEN, &clen,
			w->dek, 32, f.data, FOOT_AD, NULL, p, w->kek);
		f.len += NONCE_LEN + clen;
	}
	hs_w32(&f, hs_crc32c(0, f.data, f.len));
	/* trailer */
	hs_wbytes(&f, trl_magic, 8);
	hs_w32(&f, (uint32_t)(f.len - 8));
	hs_w32(&f, hs_crc32c(0, f.data + f.len - 12, 12));
	err = hs_tier_put_write(w->put, f.data, f.len);
	if (err < 0) {
		err = backerr(w->t, w->key, err);
		goto out_abort;
	}
	w->info.size = w->off + f.len;
	err = hs_tier_put_end(w->put);
	w->put = NULL;
	if (err < 0) {
		err = backerr(w->t, w->key, err);
		goto out_abort;
	}
	if (info)
		*info = w->info;
out_abort:
	hs_buf_free(&f);
	hs_seg_abort(w);
	return err;
}

void hs_seg_abort(struct hs_seg_writer *w)
{
	if (!w)
		return;
	hs_tier_put_abort(w->put);
	sodium_memzero(w->dek, sizeof(w->dek));
	sodium_memzero(w->kek, sizeof(w->kek));
	if (w->enc)
		sodium_memzero(w->body.data, w->body.cap);
	hs_buf_free(&w->body);
	hs_buf_free(&w->sealed);
	hs_buf_free(&w->index);
	free(w->key);
	free(w);
}

/* --- reader ------------------------------------------------------------- */

struct hs_seg {
	struct hs_tier *t;          /* borrowed */
	char *key;                  /* owned */
	struct hs_seg_info info;
	struct hs_seg_block *idx;   /* owned, info.nblocks entries */
	uint8_t dek[32];
	struct hs_buf raw, plain;   /* scratch */
};

/* What load_meta finds: the footer bytes and the raw index. */
struct meta {
	struct hs_seg_info info;
	uint8_t footer[FOOT_ENC];
	uint32_t flen;
	struct hs_buf index;        /* owned by the caller */
};

/* Fetch and check the trailer, footer and index of key. */
static int load_meta(struct hs_tier *t, const char *key, uint64_t size,
		     struct meta *m)
{
	struct hs_seg_info *in = &m->info;
	struct hs_buf tail = HS_BUF_INIT;
	uint8_t h[32];
	const uint8_t *trl, *f;
	uint64_t toff;
	struct hs_rd r;
	uint32_t flags;
	int err;

	memset(in, 0, sizeof(*in));
	if (!size) {
		err = hs_tier_head(t, key, &size);
		if (err < 0)
			return backerr(t, key, err);
	}
	in->size = size;
	if (size < HDR_LEN + FOOT_PLAIN + TRAILER_LEN)
		return segerr(t, key, -HS_EDATA,
			      "truncated or not a segment (%llu bytes)",
			      (unsigned long long)size);
	toff = size > TAIL_READ ? size - TAIL_READ : 0;
	err = hs_tier_get(t, key, toff, size - toff, &tail);
	if (err < 0) {
		err = backerr(t, key, err);
		goto out;
	}
	if (tail.len != size - toff) {
		err = segerr(t, key, -HS_EDATA, "truncated: %llu bytes, expected %llu",
			     (unsigned long long)(toff + tail.len),
			     (unsigned long long)size);
		goto out;
	}
	trl = tail.data + tail.len - TRAILER_LEN;
	if (memcmp(trl, trl_magic, 8) ||
	    hs_crc32c(0, trl, 12) != hs_get32(trl + 12)) {
		err = segerr(t, key, -HS_EDATA,
			     "bad trailer: truncated, damaged or not a segment");
		goto out;
	}
	m->flen = hs_get32(trl + 8);
	if ((m->flen != FOOT_PLAIN && m->flen != FOOT_ENC) ||
	    m->flen + TRAILER_LEN + HDR_LEN > size) {
		err = segerr(t, key, -HS_EDATA, "bad footer length %u", m->flen);
		goto out;
	}
	f = trl - m->flen;
	if (memcmp(f, foot_magic, 8) || hs_get32(f + 8) != m->flen ||
	    hs_crc32c(0, f, m->flen - 4) != hs_get32(f + m->flen - 4)) {
		err = segerr(t, key, -HS_ECHECKSUM, "footer checksum mismatch");
		goto out;
	}
	memcpy(m->footer, f, m->flen);
	hs_rd_init(&r, f + 12, m->flen - 12);
	flags = hs_r32(&r);
	memcpy(in->segid, hs_rd_take(&r, 16), 16);
	in->first_lsn = hs_r64(&r);
	in->last_lsn = hs_r64(&r);
	in->first_ts = hs_r64(&r);
	in->last_ts = hs_r64(&r);
	in->nrecords = hs_r64(&r);
	in->ngaps = hs_r64(&r);
	in->bytes = hs_r64(&r);
	in->nblocks = hs_r32(&r);
	in->block_size = hs_r32(&r);
	in->index_off = hs_r64(&r);
	in->index_len = hs_r64(&r);
	memcpy(h, hs_rd_take(&r, 32), 32);
	memcpy(in->hash, hs_rd_take(&r, 32), 32);
	in->encrypted = flags & FLAG_ENC;
	if ((flags & ~FLAG_ENC) ||
	    (m->flen == FOOT_ENC) != !!in->encrypted ||
	    in->index_len != (uint64_t)in->nblocks * IDX_ENT ||
	    in->index_off < HDR_LEN ||
	    /* index_off + index_len could wrap: compare without adding
	     * (the footer length was checked against size above) */
	    in->index_off > size - TRAILER_LEN - m->flen ||
	    in->index_len != size - TRAILER_LEN - m->flen - in->index_off ||
	    (in->nblocks == 0) != (in->first_lsn == 0) ||
	    in->first_lsn > in->last_lsn) {
		err = segerr(t, key, -HS_EDATA, "inconsistent footer");
		goto out;
	}
	hs_buf_reset(&m->index);
	if (in->index_off >= toff) {
		hs_buf_append(&m->index, tail.data + (in->index_off - toff),
			      in->index_len);
	} else if (in->index_len) {
		err = hs_tier_get(t, key, in->index_off, in->index_len, &m->index);
		if (err < 0) {
			err = backerr(t, key, err);
			goto out;
		}
		if (m->index.len != in->index_len) {
			err = segerr(t, key, -HS_EDATA, "truncated index");
			goto out;
		}
	}
	{
		uint8_t got[32];

		crypto_generichash(got, 32, m->index.data, m->index.len, NULL, 0);
		if (sodium_memcmp(got, h, 32)) {
			err = segerr(t, key, -HS_ECHECKSUM, "index checksum mismatch");
			goto out;
		}
	}
	err = 0;
out:
	hs_buf_free(&tail);
	return err;
}

int hs_seg_open(struct hs_tier *t, const char *key,
		const struct hs_seg_ropts *o, struct hs_seg **out)
{
	static const struct hs_seg_ropts defaults;
	struct meta m = { .index = HS_BUF_INIT };
	struct hs_seg *s;
	unsigned long long dlen;
	uint64_t next = HDR_LEN;
	const uint8_t *p;
	int err;

	*out = NULL;
	if (!o)
		o = &defaults;
	if (sodium_init() < 0)
		return segerr(t, key, -HS_EINTERNAL, "libsodium failed to initialise");
	err = load_meta(t, key, o->size, &m);
	if (err < 0)
		goto out_meta;
	s = hs_xcalloc(1, sizeof(*s));
	s->t = t;
	s->key = hs_xstrdup(key);
	s->info = m.info;
	if (m.info.encrypted) {
		if (!o->key) {
			err = segerr(t, key, -HS_EPERM,
				     "encrypted, and no key was given");
			goto out_free;
		}
		if (crypto_aead_xchacha20poly1305_ietf_decrypt(s->dek, &dlen, NULL,
				m.footer + FOOT_AD + NONCE_LEN, 32 + TAG_LEN,
				m.footer, FOOT_AD, m.footer + FOOT_AD, o->key) ||
		    dlen != 32) {
			err = segerr(t, key, -HS_EPERM,
				     "cannot unwrap the segment key: wrong key (or a tampered footer)");
			goto out_free;
		}
	}
	s->idx = hs_xcalloc(m.info.nblocks ? m.info.nblocks : 1, sizeof(*s->idx));
	for (uint32_t i = 0; i < m.info.nblocks; i++) {
		struct hs_seg_block *b = &s->idx[i];
		uint32_t min = m.info.encrypted ? NONCE_LEN + BODY_HDR + TAG_LEN
						: BODY_HDR + 4;

		p = m.index.data + (size_t)i * IDX_ENT;
		b->first_lsn = hs_get64(p);
		b->first_ts = hs_get64(p + 8);
		b->off = hs_get64(p + 16);
		b->len = hs_get32(p + 24);
		b->nentries = hs_get32(p + 28);
		if (b->off != next || b->len < min || b->nentries == 0 ||
		    b->first_lsn < m.info.first_lsn ||
		    b->first_lsn > m.info.last_lsn ||
		    (i == 0 && b->first_lsn != m.info.first_lsn) ||
		    (i > 0 && b->first_lsn <= s->idx[i - 1].first_lsn)) {
			err = segerr(t, key, -HS_EDATA, "index entry %u inconsistent", i);
			goto out_free;
		}
		next = b->off + b->len;
	}
	if (next != m.info.index_off) {
		err = segerr(t, key, -HS_EDATA, "index does not cover the blocks");
		goto out_free;
	}
	hs_buf_free(&m.index);
	*out = s;
	return 0;
out_free:
	hs_seg_close(s);
out_meta:
	hs_buf_free(&m.index);
	return err;
}

void hs_seg_close(struct hs_seg *s)
{
	if (!s)
		return;
	sodium_memzero(s->dek, sizeof(s->dek));
	if (s->info.encrypted && s->plain.data)
		sodium_memzero(s->plain.data, s->plain.cap);
	hs_buf_free(&s->raw);
	hs_buf_free(&s->plain);
	free(s->idx);
	free(s->key);
	free(s);
}

const struct hs_seg_info *hs_seg_info(const struct hs_seg *s)
{
	return &s->info;
}

const struct hs_seg_block *hs_seg_block(const struct hs_seg *s, uint32_t i)
{
	return i < s->info.nblocks ? &s->idx[i] : NULL;
}

int hs_seg_find(const struct hs_seg *s, uint64_t lsn)
{
	uint32_t lo = 0, hi = s->info.nblocks;

	if (!s->info.nblocks || lsn < s->info.first_lsn || lsn > s->info.last_lsn)
		return -HS_ENOENT;
	/* The last block with first_lsn <= lsn; block 0 qualifies. */
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (s->idx[mid].first_lsn <= lsn)
			lo = mid;
		else
			hi = mid;
	}
	return (int)lo;
}

int hs_seg_find_time(const struct hs_seg *s, uint64_t ts)
{
	uint32_t lo = 0, hi = s->info.nblocks;

	if (!s->info.nblocks)
		return -HS_ENOENT;
	/* The last block with first_ts < ts, else 0: a record with a
	 * timestamp >= ts can lie at the end of the block before the first
	 * block whose first_ts >= ts. */
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (s->idx[mid].first_ts < ts)
			lo = mid;
		else
			hi = mid;
	}
	return (int)lo;
}

/* Walk block i's plaintext, checking everything; cb NULL = check only. */
static int walk_block(struct hs_seg *s, uint32_t i, const uint8_t *p, size_t n,
		      hs_seg_entry_cb cb, void *arg)
{
	const struct hs_seg_block *b = &s->idx[i];
	const uint8_t *end = p + n;
	struct hs_seg_entry e;
	uint64_t prev, prev_ts, dl, v, cnt = 0;
	int rc;

	if (n < BODY_HDR || hs_get64(p) != b->first_lsn ||
	    hs_get64(p + 8) != b->first_ts)
		goto bad;
	prev = b->first_lsn - 1;
	prev_ts = b->first_ts;
	p += BODY_HDR;
	while (p < end) {
		memset(&e, 0, sizeof(e));
		uint8_t type = *p++;

		if (get_uvar(&p, end, &dl) || dl == 0 || prev + dl < prev)
			goto bad;
		e.lsn = prev + dl;
		if (cnt == 0 && e.lsn != b->first_lsn)
			goto bad;
		if (type == ENT_RECORD) {
			if (get_uvar(&p, end, &v))
				goto bad;
			e.ts = prev_ts + (uint64_t)unzigzag(v);
			if (get_uvar(&p, end, &v) || v > (uint64_t)(end - p))
				goto bad;
			e.hi = e.lsn;
			e.data = p;
			e.len = (uint32_t)v;
			p += v;
			prev_ts = e.ts;
		} else if (type == ENT_GAP) {
			if (get_uvar(&p, end, &v) || e.lsn + v < e.lsn || p == end ||
			    *p < HS_SEG_HOLE || *p > HS_SEG_DATALOSS)
				goto bad;
			e.is_gap = 1;
			e.hi = e.lsn + v;
			e.kind = *p++;
		} else {
			goto bad;
		}
		if (e.hi > s->info.last_lsn ||
		    (i + 1 < s->info.nblocks && e.hi >= s->idx[i + 1].first_lsn))
			goto bad;
		prev = e.hi;
		cnt++;
		if (cb && (rc = cb(arg, &e)) != 0)
			return rc;
	}
	if (cnt != b->nentries)
		goto bad;
	return 0;
bad:
	return segerr(s->t, s->key, -HS_EDATA, "block %u: malformed contents", i);
}

int hs_seg_fetch_block(struct hs_seg *s, uint32_t i, struct hs_buf *plain)
{
	const struct hs_seg_block *b;
	unsigned long long plen;
	uint8_t ad[20];
	int err;

	hs_buf_reset(plain);
	if (i >= s->info.nblocks)
		return segerr(s->t, s->key, -HS_EDATA, "no block %u (%u blocks)",
			      i, s->info.nblocks);
	b = &s->idx[i];
	err = hs_tier_get(s->t, s->key, b->off, b->len, &s->raw);
	if (err < 0)
		return backerr(s->t, s->key, err);
	if (s->raw.len != b->len)
		return segerr(s->t, s->key, -HS_EDATA,
			      "block %u: truncated (%zu of %u bytes)", i,
			      s->raw.len, b->len);
	if (s->info.encrypted) {
		block_ad(ad, s->info.segid, i);
		hs_buf_reserve(plain, b->len);
		if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain->data, &plen,
				NULL, s->raw.data + NONCE_LEN, b->len - NONCE_LEN,
				ad, sizeof(ad), s->raw.data, s->dek))
			return segerr(s->t, s->key, -HS_ECHECKSUM,
				      "block %u (bytes %llu+%u): authentication failed (damaged or tampered)",
				      i, (unsigned long long)b->off, b->len);
		plain->len = plen;
	} else {
		size_t n = b->len - 4;

		if (block_crc(s->info.segid, i, s->raw.data, n) !=
		    hs_get32(s->raw.data + n))
			return segerr(s->t, s->key, -HS_ECHECKSUM,
				      "block %u (bytes %llu+%u): checksum mismatch",
				      i, (unsigned long long)b->off, b->len);
		hs_buf_append(plain, s->raw.data, n);
	}
	err = walk_block(s, i, plain->data, plain->len, NULL, NULL);
	if (err < 0)
		hs_buf_reset(plain);
	return err;
}

int hs_seg_parse_block(struct hs_seg *s, uint32_t i, const struct hs_buf *plain,
		       hs_seg_entry_cb cb, void *arg)
{
	if (i >= s->info.nblocks)
		return segerr(s->t, s->key, -HS_EDATA, "no block %u", i);
	return walk_block(s, i, plain->data, plain->len, cb, arg);
}

int hs_seg_read_block(struct hs_seg *s, uint32_t i, hs_seg_entry_cb cb,
		      void *arg)
{
	int err = hs_seg_fetch_block(s, i, &s->plain);

	if (err < 0)
		return err;
	return walk_block(s, i, s->plain.data, s->plain.len, cb, arg);
}

int hs_seg_verify(struct hs_tier *t, const char *key, struct hs_seg_info *info)
{
	struct meta m = { .index = HS_BUF_INIT };
	struct hs_buf chunk = HS_BUF_INIT;
	crypto_generichash_state st;
	uint64_t off = 0, end, n;
	uint8_t got[32];
	int err;

	if (sodium_init() < 0)
		return segerr(t, key, -HS_EINTERNAL, "libsodium failed to initialise");
	err = load_meta(t, key, 0, &m);
	if (err < 0)
		goto out;
	end = m.info.index_off + m.info.index_len;
	crypto_generichash_init(&st, NULL, 0, 32);
	while (off < end) {
		n = end - off < VERIFY_CHUNK ? end - off : VERIFY_CHUNK;
		err = hs_tier_get(t, key, off, n, &chunk);
		if (err < 0) {
			err = backerr(t, key, err);
			goto out;
		}
		if (chunk.len != n) {
			err = segerr(t, key, -HS_EDATA, "truncated at %llu",
				     (unsigned long long)(off + chunk.len));
			goto out;
		}
		if (off == 0 && (memcmp(chunk.data, hdr_magic, 8) ||
				 memcmp(chunk.data + 16, m.info.segid, 16) ||
				 hs_get32(chunk.data + 8) != (m.info.encrypted ? FLAG_ENC : 0) ||
				 hs_get32(chunk.data + 12))) {
			err = segerr(t, key, -HS_ECHECKSUM,
				     "header does not match the footer");
			goto out;
		}
		crypto_generichash_update(&st, chunk.data, chunk.len);
		off += n;
	}
	crypto_generichash_final(&st, got, 32);
	if (sodium_memcmp(got, m.info.hash, 32)) {
		err = segerr(t, key, -HS_ECHECKSUM,
			     "BLAKE2b mismatch: the object is damaged");
		goto out;
	}
	if (info)
		*info = m.info;
out:
	hs_buf_free(&chunk);
	hs_buf_free(&m.index);
	return err;
}
