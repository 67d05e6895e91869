/*
 * segment.h - Tier2 segment objects: a streaming writer and a ranged reader.
 *
 * A segment holds a range of a log: records {lsn, timestamp, payload} and
 * explicit gaps {lo, hi, kind}, in LSN order, packed in blocks of about
 * 1 MiB, then a sparse index (one entry per block), a footer and a fixed
 * 16-byte trailer at the very end.  A reader fetches the tail (trailer,
 * footer and usually the index) with one ranged get, finds a block by LSN
 * or time in the index, and fetches only that block with one more ranged
 * get.  Each block carries its own CRC32C or, when the segment is encrypted,
 * its own XChaCha20-Poly1305 tag, so a damaged block is detected when read.
 * The byte layout is documented at the top of segment.c and in
 * docs/segment-format.md.
 *
 * A damaged, truncated or tampered segment is always an error naming the
 * segment key (and the block), never wrong data.  Error text goes to the
 * tier's error buffer: read it with hs_tier_error(t) after any failure.
 *
 * Error codes: -HS_EDATA (bad arguments, e.g. an LSN out of order, or a
 * segment that is malformed or truncated), -HS_ECHECKSUM (a checksum, hash or
 * authentication tag does not match), -HS_EPERM (encrypted and no key, or the
 * wrong key), -HS_ETOOBIG (a record over HS_SEG_RECORD_MAX), and the
 * backend's errors (backend.h).
 *
 * Not thread-safe per object; separate readers of one segment are fine.
 */
#ifndef HS_TIER_SEGMENT_H
#define HS_TIER_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "buf.h"

#define HS_SEG_BLOCK_DEFAULT (1u << 20)
#define HS_SEG_RECORD_MAX (64u << 20) /* = the largest protocol frame */
#define HS_SEG_KEYLEN 32

/* Gap kinds (the u8 stored in gap entries). */
enum hs_seg_gap_kind {
	HS_SEG_HOLE = 1,     /* no record was ever written there */
	HS_SEG_BRIDGE = 2,   /* the end of an epoch */
	HS_SEG_TRIM = 3,     /* trimmed before offload */
	HS_SEG_DATALOSS = 4, /* records lost (>= R copies destroyed) */
};

/* What a finished or opened segment holds. */
struct hs_seg_info {
	uint64_t size;      /* the whole object in bytes */
	uint64_t first_lsn; /* first entry's LSN (a gap's lo); 0 if empty */
	uint64_t last_lsn;  /* last record's LSN or last gap's hi; 0 if empty */
	uint64_t first_ts;  /* first record's timestamp; 0 if no record */
	uint64_t last_ts;   /* last record's timestamp; 0 if no record */
	uint64_t nrecords, ngaps;
	uint64_t bytes;     /* sum of payload lengths */
	uint32_t nblocks;
	uint32_t block_size; /* the writer's target */
	uint64_t index_off, index_len;
	uint8_t hash[32];   /* BLAKE2b-256 of the object before the footer */
	uint8_t segid[16];  /* random, chosen by the writer */
	int encrypted;
};

/* Load a 32-byte key from a key file holding either exactly 32 raw bytes or
 * 64 hex digits (and an optional newline).  path borrowed; key written.
 * Returns 0, -HS_ENOENT, -HS_EPERM (unreadable) or -HS_ECONFIG (bad
 * contents). */
int hs_seg_key_load(const char *path, uint8_t key[HS_SEG_KEYLEN]);

/* --- writing ------------------------------------------------------------ */

struct hs_seg_wopts {
	const uint8_t *key;  /* HS_SEG_KEYLEN bytes: encrypt with a per-segment
			      * key wrapped by this one; NULL = plain.
			      * Borrowed until hs_seg_writer_open returns (it
			      * is copied). */
	uint32_t block_size; /* target plaintext block size; 0 = 1 MiB;
			      * at least 4096 */
	unsigned put_flags;  /* passed to hs_tier_put_begin (HS_TIER_EXCL) */
};

struct hs_seg_writer;

/* Start writing segment key on t through a streaming put; the object
 * becomes visible only when hs_seg_finish succeeds.  t and key are borrowed
 * (t until finish/abort); o may be NULL.  *out is owned by the caller until
 * hs_seg_finish or hs_seg_abort.  Memory: one block plus the index. */
int hs_seg_writer_open(struct hs_tier *t, const char *key,
		       const struct hs_seg_wopts *o, struct hs_seg_writer **out);

/* Append a record; p (n bytes, n may be 0) is borrowed for the call.  lsn
 * must be >= 1 and above every LSN added before (records and gap his).
 * Returns 0, -HS_EDATA (out of order), -HS_ETOOBIG, or a backend error
 * when a full block was flushed; after an error the writer is dead: every
 * later call fails and the caller must call hs_seg_abort. */
int hs_seg_add_record(struct hs_seg_writer *w, uint64_t lsn, uint64_t ts,
		      const void *p, size_t n);

/* Append a gap [lo, hi] (inclusive) of kind (enum hs_seg_gap_kind).
 * lo >= 1, lo <= hi, lo above every LSN added before.  Errors as above. */
int hs_seg_add_gap(struct hs_seg_writer *w, uint64_t lo, uint64_t hi,
		   unsigned kind);

/* Flush the last block, write index, footer and trailer, and publish the
 * object atomically.  Fills *info (may be NULL) on success.  Frees w in all
 * cases; on failure nothing is visible. */
int hs_seg_finish(struct hs_seg_writer *w, struct hs_seg_info *info);

/* Discard the segment (nothing becomes visible) and free w (NULL is fine). */
void hs_seg_abort(struct hs_seg_writer *w);

/* --- reading ------------------------------------------------------------ */

struct hs_seg_ropts {
	const uint8_t *key; /* HS_SEG_KEYLEN bytes, or NULL; copied */
	uint64_t size;      /* the object size if known (from a manifest):
			     * saves a HEAD; 0 = ask the backend */
};

/* One entry of a block, as passed to the callback. */
struct hs_seg_entry {
	int is_gap;
	uint64_t lsn;        /* the record's LSN, or the gap's lo */
	uint64_t hi;         /* the gap's hi; == lsn for a record */
	uint64_t ts;         /* the record's timestamp; 0 for a gap */
	unsigned kind;       /* the gap's enum hs_seg_gap_kind; 0 for a record */
	const uint8_t *data; /* the payload, borrowed until the callback
			      * returns; NULL-safe only when len > 0 */
	uint32_t len;
};

/* Return 0 to go on; any other value stops and is returned. */
typedef int (*hs_seg_entry_cb)(void *arg, const struct hs_seg_entry *e);

/* One index entry. */
struct hs_seg_block {
	uint64_t first_lsn;
	uint64_t first_ts;  /* first record's timestamp, or the timestamp
			     * carried from before when the block has none */
	uint64_t off;       /* the block's byte offset in the object */
	uint32_t len;       /* its stored length */
	uint32_t nentries;
};

struct hs_seg;

/* Open segment key on t: fetches trailer, footer and index (one ranged get
 * of the tail, plus one for the index if it is larger than the tail
 * read, plus a HEAD unless o->size is given) and checks them.  t and key
 * borrowed (t until hs_seg_close); o may be NULL.  *out owned by the caller.
 * Errors: -HS_ENOENT, -HS_EDATA (truncated or not a segment),
 * -HS_ECHECKSUM, -HS_EPERM (encrypted and no or a wrong key), backend
 * errors. */
int hs_seg_open(struct hs_tier *t, const char *key,
		const struct hs_seg_ropts *o, struct hs_seg **out);
void hs_seg_close(struct hs_seg *s);

/* Borrowed views, valid until hs_seg_close. */
const struct hs_seg_info *hs_seg_info(const struct hs_seg *s);
const struct hs_seg_block *hs_seg_block(const struct hs_seg *s, uint32_t i);

/* The block that holds lsn (the last block whose first LSN is <= lsn).
 * Returns the block number, or -HS_ENOENT if lsn is outside
 * [first_lsn, last_lsn]. */
int hs_seg_find(const struct hs_seg *s, uint64_t lsn);

/* The block where a scan for the first record with a timestamp >= ts must
 * start: the last block whose first timestamp is < ts, else block 0.  Exact
 * when timestamps do not decrease along the log, a good start otherwise.
 * Returns the block number or -HS_ENOENT for an empty segment. */
int hs_seg_find_time(const struct hs_seg *s, uint64_t ts);

/* Fetch block i with one ranged get, check its CRC32C or decrypt and
 * authenticate it, check it against the index, and leave its plaintext in
 * plain (reset first; caller-owned, e.g. a cache entry).  Returns 0,
 * -HS_EDATA (i out of range, malformed), -HS_ECHECKSUM, backend errors. */
int hs_seg_fetch_block(struct hs_seg *s, uint32_t i, struct hs_buf *plain);

/* Call cb for each entry of a block's plaintext (as hs_seg_fetch_block left
 * it; borrowed).  Checks every bound before use.  Returns 0, the callback's
 * non-zero value, or -HS_EDATA for malformed contents. */
int hs_seg_parse_block(struct hs_seg *s, uint32_t i, const struct hs_buf *plain,
		       hs_seg_entry_cb cb, void *arg);

/* hs_seg_fetch_block then hs_seg_parse_block, with an internal buffer. */
int hs_seg_read_block(struct hs_seg *s, uint32_t i, hs_seg_entry_cb cb,
		      void *arg);

/* Check the whole object: trailer, footer, index hash, and the BLAKE2b-256
 * of everything before the footer, reading it in 4 MiB ranged gets.  Needs
 * no key (the hash covers the stored, possibly encrypted bytes).  Fills
 * *info (may be NULL) on success.  Returns 0, -HS_ECHECKSUM, -HS_EDATA or a
 * backend error. */
int hs_seg_verify(struct hs_tier *t, const char *key, struct hs_seg_info *info);

#endif
