/*
 * run.h - the run codec.  A run is a batch of records of one log at
 * consecutive LSNs sharing one copyset; the same bytes are the RocksDB value
 * and the payload of STORE and RECORDS.  The layout is specified in proto.h
 * ("RUNS"); in short, little-endian:
 *
 *   u8 version 1 | u8 flags | u16 C | u32 N | u64 lng | u32 wave | u32 0
 *   | C * u32 copyset | N * { u64 ts_ms | u32 len | len bytes } | u32 crc32c
 *
 * The builder writes a run straight into the caller's buffer (no allocation
 * per record: the count is patched and the CRC appended at the end).  The
 * parser validates the whole structure once, so iteration afterwards is
 * plain pointer walking that cannot go out of bounds.
 */
#ifndef HS_RUN_H
#define HS_RUN_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define HS_RUN_VERSION 1
#define HS_RUN_HDR 24         /* fixed header before the copyset */
#define HS_RUN_REC_HDR 12     /* u64 ts_ms | u32 len */
#define HS_RUN_MIN (HS_RUN_HDR + HS_RUN_REC_HDR + 4) /* one empty record */
#define HS_RUN_COPYSET_MAX 127
#define HS_RUN_FLAGS_ALL 7    /* HOLE | BRIDGE | RECOVERY */

struct hs_run_builder {
	struct hs_buf *out; /* borrowed until hs_run_end() */
	size_t start;       /* offset of the run's first byte in out */
	uint32_t n;         /* records added so far */
};

/*
 * Begin a run at the end of out: writes the header and copyset (ncopyset <=
 * HS_RUN_COPYSET_MAX ids; copyset borrowed for the call only, may be NULL if
 * ncopyset is 0).  flags are HS_RUN_*; wave is the wave, or the recovery
 * ballot when flags has HS_RUN_RECOVERY.  out must not be modified by
 * anyone else until hs_run_end().
 */
void hs_run_begin(struct hs_run_builder *rb, struct hs_buf *out, uint8_t flags, uint64_t lng,
		  uint32_t wave, const uint32_t *copyset, uint16_t ncopyset);

/* Append one record (p borrowed for the call; may be NULL when len is 0).
 * HOLE and BRIDGE runs take only empty records. */
void hs_run_add(struct hs_run_builder *rb, uint64_t ts_ms, const void *p, uint32_t len);

/*
 * Finish the run: patch the record count and append the CRC.  Returns the
 * run's length in bytes (it occupies out->data[rb->start ..]).  A run with no
 * records is invalid: it is removed from out again and 0 is returned.
 */
size_t hs_run_end(struct hs_run_builder *rb);

/* A parsed run: every pointer borrows the parsed bytes. */
struct hs_run {
	uint8_t flags;
	uint16_t ncopyset;
	uint32_t nrecords;
	uint64_t lng;
	uint32_t wave;            /* or recovery ballot if HS_RUN_RECOVERY */
	const uint8_t *copyset;   /* ncopyset * u32 LE: use hs_run_copyset() */
	const uint8_t *records;   /* first record */
	const uint8_t *end;       /* one past the last record (the CRC) */
	const uint8_t *base;      /* the whole run: base[0 .. len) */
	size_t len;
};

/*
 * Parse and validate the run p[0..n) (n must be its exact length): version,
 * known flags, copyset size, N >= 1, every record length within the run,
 * records ending exactly at the CRC, empty records in HOLE/BRIDGE runs, and
 * the CRC.  Returns 0 with *r filled, -HS_EPROTO if malformed, or
 * -HS_ECHECKSUM if only the CRC is wrong (the structure is checked first,
 * so a corrupted length usually reports -HS_EPROTO).
 */
int hs_run_parse(const uint8_t *p, size_t n, struct hs_run *r);

/* The same without the CRC check, for bytes already verified. */
int hs_run_parse_nocrc(const uint8_t *p, size_t n, struct hs_run *r);

/* Copyset member i (0 <= i < r->ncopyset). */
uint32_t hs_run_copyset(const struct hs_run *r, int i);

/* True if a run of nrecords starting at first_lsn stays inside one epoch
 * (and nrecords >= 1). */
int hs_run_lsn_ok(uint64_t first_lsn, uint32_t nrecords);

/* Iteration over a parsed run's records, in order. */
struct hs_run_iter {
	const uint8_t *p;   /* next record */
	uint32_t left;      /* records not yet returned */
};

void hs_run_iter_init(struct hs_run_iter *it, const struct hs_run *r);

/* Next record: returns 1 with *ts, *p (borrows the run) and *len set, or 0
 * at the end.  Any of the out pointers may be NULL. */
int hs_run_next(struct hs_run_iter *it, uint64_t *ts, const uint8_t **p, uint32_t *len);

/*
 * Append to out a new run holding records [from_idx, from_idx + n) of r,
 * with r's flags, lng, wave and copyset and its own CRC (the records are
 * copied in one piece).  Returns 0, or -EINVAL if n is 0 or the range is
 * not inside r (out unchanged).  r must not point into out.
 */
int hs_run_slice(const struct hs_run *r, uint32_t from_idx, uint32_t n, struct hs_buf *out);

#endif
