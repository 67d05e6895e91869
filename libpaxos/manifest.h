/*
 * manifest.h - the Tier2 manifest of a log: which segments hold which
 * LSNs, where they are, and how far the log was offloaded (DESIGN.md §8).
 *
 * The manifest lives in two places:
 *
 *   - the register "t/" | u64 log BE (the metadata registers, meta.h):
 *     the offload point, the Tier2 expiry point, the recent segments
 *     ("entries") and references to older entries folded into immutable
 *     manifest objects ("refs").  hs-serve changes it (TIER_PUBLISH,
 *     proto_client.h) with the checks that make a publish safe; it is what
 *     every reader trusts.
 *   - immutable manifest objects in the backend, each holding a run of
 *     consecutive entries, so the register stays far below its 64 KiB
 *     limit and a cluster can be rebuilt from the bucket alone.
 *
 * OBJECT KEYS (relative to the backend URL's root; hex is lowercase, 16
 * digits, zero-padded)
 *   segment   logs/<log>/seg/<created_ms>-<attempt>
 *   manifest  logs/<log>/man/<first_lsn>-<last_lsn>-<created_ms>-<attempt>
 * Both are derived from the entry or ref (never stored as text), so the
 * register stays fixed-size per entry; the creation time in the key lets a
 * sweep age orphans without a per-object timestamp from the backend.  A
 * segment's key holds no LSNs because it is streamed to the store before
 * the read that fills it knows where it will stop (its footer has them).
 *
 * REGISTER VALUE (little-endian), 32 + 80 * nrefs + 96 * nentries bytes
 *   u8 version (1) | u8 0 | u16 nentries | u16 nrefs | u16 0
 *   | u64 offload | u64 expired | u64 gen
 *   | nrefs * ref | nentries * entry
 *   offload: every LSN <= offload is in Tier2 (0: nothing offloaded); it
 *   never decreases.  expired: every LSN <= expired was deleted from Tier2
 *   by retention (0: none); expired <= offload.  gen: +1 per change.
 *   Refs, then entries, cover (expired, offload] in LSN order without
 *   overlap; a run between two of them that no segment covers was trimmed
 *   from Tier1 before it was offloaded.
 *
 * entry (a segment), 96 bytes:
 *   u64 first_lsn | u64 last_lsn | u64 first_ts | u64 last_ts | u64 size
 *   | u64 records | u64 created_ms | u64 attempt | u8 hash[32]
 *   first/last_lsn: the LSNs the segment covers: every LSN in between is
 *   in it (a record or a gap) or does not exist (LSNs skip from one epoch
 *   to the next); first_lsn is where the offloader's read started (the
 *   offload point + 1), so it may be below the segment footer's first
 *   entry, and last_lsn is the footer's last LSN;
 *   first/last_ts: its first and last record's timestamps (0: none);
 *   size: the object's bytes; records: how many it holds; created_ms and
 *   attempt: name the object (attempt: 64 random bits per upload, so two
 *   runs never write the same key); hash: the segment footer's BLAKE2b-256
 *   (segment.h struct hs_seg_info.hash), checked after the upload and by
 *   every reader that opens it.
 *
 * ref (a manifest object), 80 bytes:
 *   u64 first_lsn | u64 last_lsn | u64 size | u64 created_ms | u64 attempt
 *   | u32 nentries | u32 0 | u8 hash[32]
 *   hash: BLAKE2b-256 of the whole object (computed by its writer, which
 *   links libsodium; this module does not).
 *
 * MANIFEST OBJECT (little-endian), 64 + name_len + 96 * nentries + 4 bytes
 *   "HSMANIF1" | u32 version (1) | u32 nentries | u64 log | u64 first_lsn
 *   | u64 last_lsn | u64 created_ms | u64 attempt | u8 name_len | u8 0[7]
 *   | name | nentries * entry | u32 crc32c of every byte before it
 *   name: the stream's name when the object was written (for a rebuild;
 *   the log id is what counts).  The entries are consecutive, LSN order.
 *
 * FOLDING.  When a register holds HS_MAN_FOLD_AT entries, the offloader
 * writes its first HS_MAN_FOLD_AT entries as a manifest object (put with
 * HS_TIER_EXCL, then verified) and publishes a FOLD that replaces exactly
 * those entries by one ref (hs_man_apply checks that they match).  A crash
 * before the FOLD leaves an unreferenced object, swept later.  At most
 * HS_MAN_REFS_MAX refs: 512 * 64 segments of up to 256 MiB is 8 PiB per log;
 * retention drops refs from the front.
 *
 * NAME OBJECT (little-endian), logs/<log>/name, 44 + name_len bytes
 *   "HSLNAME1" | u32 version (1) | u32 0 | u64 log | u64 created_ms
 *   | u8 name_len | u8 0[7] | name | u32 crc32c of every byte before it
 *   Segments hold no stream name and manifest objects exist only after a
 *   fold, so the offloader writes this small immutable object (put with
 *   HS_TIER_EXCL; an existing one is left alone) before it publishes the
 *   first segment of a log: it is what maps a log id back to its stream
 *   name in a rebuild.  The sweep keeps it while the log's stream exists.
 *
 * REBUILD FROM THE BUCKET (hs-offload --rebuild).  Read logs/<log>/name;
 * list logs/<log>/man/ and read every object (crc32c, then contiguity: the
 * chain of consecutive ranges from the lowest, preferring for each start
 * the object reaching furthest), then list logs/<log>/seg/, open each
 * segment (footer: its LSN range and hash) and keep those after the last
 * folded LSN, chained the same way: several objects for the same range are
 * the same records uploaded by different attempts (all but one are
 * orphans); pick any that verifies.  The register value built from them
 * (hs_man_restore) goes to a stream created with the same log id (STREAM_CREATE
 * with HS_ATTR_RESTORE, proto_client.h), whose log record then starts
 * Tier1 after the offload point.
 *
 * Not thread-safe; no I/O here (no libsodium either, so hs-serve links it).
 * It lives in libpaxos although it describes Tier2 objects because hs-serve
 * (libpaxos/tier.c) applies the changes and the link order is libtier,
 * libpaxos, libcore: libpaxos may not call into libtier, the reverse is fine.
 */
#ifndef HS_TIER_MANIFEST_H
#define HS_TIER_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define HS_MAN_HDR_LEN 32
#define HS_MAN_ENTRY_LEN 96
#define HS_MAN_REF_LEN 80
#define HS_MAN_FOLD_AT 64       /* entries in the register before a fold */
#define HS_MAN_ENTRIES_MAX 128  /* hard limit: publishes beyond fail */
#define HS_MAN_REFS_MAX 512
#define HS_MAN_OBJ_HDR_LEN 64
#define HS_MAN_KEY_MAX 128      /* room for any key built here, NUL incl. */
#define HS_MAN_NAME_HDR_LEN 40  /* name object without name and crc */

struct hs_man_entry {
	uint64_t first_lsn, last_lsn;
	uint64_t first_ts, last_ts;
	uint64_t size, records;
	uint64_t created_ms, attempt;
	uint8_t hash[32];
};

struct hs_man_ref {
	uint64_t first_lsn, last_lsn;
	uint64_t size, created_ms, attempt;
	uint32_t nentries;
	uint8_t hash[32];
};

/* A decoded register value; refs and entries are owned (hs_man_free). */
struct hs_man {
	uint64_t offload, expired, gen;
	struct hs_man_ref *refs;
	uint16_t nrefs;
	struct hs_man_entry *entries;
	uint16_t nentries;
};

/* A decoded manifest object; entries owned (hs_man_obj_free), name
 * NUL-terminated. */
struct hs_man_obj {
	uint64_t log, first_lsn, last_lsn, created_ms, attempt;
	char name[256];
	struct hs_man_entry *entries;
	uint32_t nentries;
};

/* A decoded name object (see NAME OBJECT above). */
struct hs_man_name {
	uint64_t log, created_ms;
	char name[256];           /* NUL-terminated */
	uint8_t nlen;
};

/* Register key "t/" | u64 log BE into k (10 bytes); returns 10. */
size_t hs_man_key(uint8_t *k, uint64_t log);

/* Object keys (see above) into k (HS_MAN_KEY_MAX bytes). */
void hs_man_seg_key(char *k, uint64_t log, const struct hs_man_entry *e);
void hs_man_obj_key(char *k, uint64_t log, const struct hs_man_ref *r);
/* The prefix "logs/<log>/" of every object of log into k. */
void hs_man_log_prefix(char *k, uint64_t log);
/* The name object's key "logs/<log>/name" into k (HS_MAN_KEY_MAX bytes). */
void hs_man_name_key(char *k, uint64_t log);

/* Name objects: append the object naming log's stream (name borrowed,
 * nlen 1..255 bytes) to out. */
void hs_man_name_enc(uint64_t log, const char *name, size_t nlen, uint64_t created_ms,
		     struct hs_buf *out);
/* Decode p[0..len) into *n: checks magic, version, length and crc32c.
 * Returns 0, -HS_EDATA or -HS_ECHECKSUM. */
int hs_man_name_dec(const uint8_t *p, size_t len, struct hs_man_name *n);

/* Append the encoded register value of m to out. */
void hs_man_enc(const struct hs_man *m, struct hs_buf *out);
/* Decode p[0..len) into *m (len 0: the empty manifest).  Returns 0 or
 * -HS_EDATA (malformed, or refs/entries out of order or overlapping); m
 * must be freed with hs_man_free in both cases. */
int hs_man_dec(const uint8_t *p, size_t len, struct hs_man *m);
void hs_man_free(struct hs_man *m);

/* Changes, as TIER_PUBLISH carries them (proto_client.h). */
enum hs_man_op {
	HS_MAN_PUBLISH = 1, /* append one entry, raise offload to its last */
	HS_MAN_FOLD = 2,    /* replace the first ref.nentries entries by ref */
	HS_MAN_EXPIRE = 3,  /* drop refs and entries wholly <= lsn */
	HS_MAN_RESTORE = 4, /* a rebuilt value replaces one further behind */
};

/*
 * Apply one change to m.  PUBLISH: e must start after m->offload and
 * either right after it (first_lsn == offload + 1) or at most one past
 * tier1_trim (the LSNs between were trimmed from Tier1 before being
 * offloaded); first_lsn <= last_lsn <= limit (the last LSN that may be
 * offloaded: released and of clean epochs).  FOLD: ref must cover exactly
 * the first ref->nentries entries (same first and last LSN).  EXPIRE: lsn
 * must be the last LSN of a ref or entry (or <= expired).  Each is
 * idempotent: the same entry or ref again (same attempt and range), or an
 * expiry at or below m->expired, returns HS_MAN_SAME and leaves m as is.
 * Returns 0 (m changed, gen raised), HS_MAN_SAME, or -HS_EDATA (malformed or inconsistent: overlap, not contiguous, a fold
 * that does not match), -HS_ENOTRELEASED (last_lsn > limit), -HS_ETOOBIG
 * (entries or refs full: fold or expire first).
 */
#define HS_MAN_SAME 1
int hs_man_publish(struct hs_man *m, const struct hs_man_entry *e, uint64_t tier1_trim,
		   uint64_t limit);
int hs_man_fold(struct hs_man *m, const struct hs_man_ref *r);
int hs_man_expire(struct hs_man *m, uint64_t lsn);
/*
 * RESTORE (a rebuild from the bucket): replace m by a copy of want (a
 * value that decoded, so it is consistent) when want->offload is above
 * m->offload (an empty register has offload 0); gen becomes one more than
 * the larger of both.  Never lowers the offload point: want at or below
 * it returns HS_MAN_SAME and leaves m as is.  Returns 0 or HS_MAN_SAME.
 */
int hs_man_restore(struct hs_man *m, const struct hs_man *want);

/* Entry codecs (96 bytes) and ref codecs (80 bytes), for the protocol. */
void hs_man_entry_enc(const struct hs_man_entry *e, struct hs_buf *out);
void hs_man_entry_dec(const uint8_t *p, struct hs_man_entry *e);
void hs_man_ref_enc(const struct hs_man_ref *r, struct hs_buf *out);
void hs_man_ref_dec(const uint8_t *p, struct hs_man_ref *r);

/* Manifest objects: append the object holding entries[0..n) of log (name
 * borrowed, <= 255 bytes) to out, with created_ms and attempt as given.
 * The caller hashes the result (BLAKE2b-256) for the ref. */
void hs_man_obj_enc(uint64_t log, const char *name, const struct hs_man_entry *entries,
		    uint32_t n, uint64_t created_ms, uint64_t attempt, struct hs_buf *out);
/* Decode p[0..len): checks magic, version, length, crc32c and that the
 * entries are consecutive and match the header.  Returns 0, -HS_EDATA or
 * -HS_ECHECKSUM; o must be freed with hs_man_obj_free in all cases. */
int hs_man_obj_dec(const uint8_t *p, size_t len, struct hs_man_obj *o);
void hs_man_obj_free(struct hs_man_obj *o);

/*
 * For the read path: the segment holding lsn.  Looks at the register's
 * entries first; if lsn falls in a ref, returns 2 with *ref set (the caller
 * fetches that object, decodes it and calls hs_man_obj_find); returns 1
 * with *e set (borrowed from m) when an entry covers lsn, 0 when nothing
 * covers it (expired, trimmed before offload, or above offload).
 */
int hs_man_find(const struct hs_man *m, uint64_t lsn, const struct hs_man_entry **e,
		const struct hs_man_ref **ref);
/* The entry of o covering lsn (borrowed from o), or NULL. */
const struct hs_man_entry *hs_man_obj_find(const struct hs_man_obj *o, uint64_t lsn);

#endif
