/*
 * meta.h - the stream directory and the per-log records that hs-serve keeps
 * in the metadata registers (libpaxos/register.h, DESIGN.md §5).
 *
 * KEYS
 * ----
 *   "s/" | name            stream record (name: 1..255 bytes of
 *                          [A-Za-z0-9._-]; so the key is <= 257 bytes, and
 *                          names over 253 bytes are refused by hs-serve
 *                          since a register key is at most 255 bytes)
 *   "l/" | u64 log BE      log record (8 binary bytes, so keys sort by id)
 *   "u/" | name            subscription record (libpaxos/sub.h)
 *
 * VALUES (the caller's bytes inside the register envelope; little-endian)
 * -----------------------------------------------------------------------
 * stream record (version 2), 48 bytes:
 *   u8 version (2) | u8 flags (HS_SREC_DELETED 1) | u8 replication
 *   | u8 durability (proto_client.h enum: 1 sync, 2 async, 3 memory)
 *   | u32 0 | u64 log | u64 retention_ms | u64 offload_after_ms
 *   | u64 created_ms | u64 offload_size
 * offload_size: hs-offload's size trigger in payload bytes (0 = none;
 * proto_client.h attrs).  Version 1 records (the first 40 bytes, without
 * offload_size) decode with offload_size 0; every change writes version 2.
 * A deleted record keeps its log id (so the log can still be trimmed and
 * audited); creating the name again writes a new record with a new log id.
 *
 * log record (version 3), 24 + the epoch entries' bytes + 9 + addr_len:
 *   u8 version (3) | u8 0 | u16 0 | u32 epoch | u64 trim | u32 lce
 *   | u16 nepochs | u16 0 | nepochs * epoch entry, oldest epoch first
 *   | u64 owner | u8 addr_len | addr
 * owner, addr: the sequencer that activated `epoch` (the live epoch): its
 * serve id (nonzero; 0 = unknown) and the client address it advertises
 * (hs-serve --advertise; empty = none), so that another hs-serve asked
 * for the stream can send clients there instead of taking the stream
 * over (docs/replication.md §7).  Written by every activation; other
 * changes (recovery, trim) keep them.  Version 2 records (the same
 * without the owner section) decode with owner 0 and no address.
 * epoch: the last epoch a sequencer activated (0 = never).  A sequencer
 * activates by changing it to epoch + 1 in one register change (which
 * also appends that epoch's entry), so every incarnation of every
 * hs-serve gets a distinct, increasing epoch.  trim never decreases.
 * lce (last clean epoch): every epoch <= lce is recovered (or holds
 * nothing); it never decreases.
 *
 * epoch entry, 32 + 4 * nn bytes (docs/replication.md):
 *   u32 epoch | u8 r | u8 nn | u8 flags (HS_LEPOCH_CLEAN 1) | u8 0
 *   | u64 lng | u64 end | u32 ballot | u32 0 | nn * u32 node id
 * The epoch's replication factor r and nodeset (nn peer node ids, the
 * peers its copysets are drawn from), written when the epoch is
 * activated.  Once a recovery has finished it (flag CLEAN): end is its
 * last LSN (0: it holds no records; such entries are dropped), every
 * slot <= lng is fully replicated as the sequencer wrote it, and every
 * slot in (lng, end] has a copy written by the recovery with `ballot`
 * on r peers; a reader ignores other copies in (lng, end] (stale ones of
 * a peer that missed the recovery) and everything after end.  lng, end
 * and ballot are 0 while not clean.  Entries wholly below trim are
 * dropped, so the history stays small (at most HS_LREC_EPOCHS_MAX).
 * Version 1 records (16 bytes: version, 0, 0, epoch, trim) decode with
 * lce 0 and no entries.
 *
 * subscription record, 41 + stream_len bytes:
 *   u8 version (1) | u8 flags (HS_UREC_DELETED 1) | u16 0
 *   | u32 ack_timeout_ms | u32 max_unacked | u32 0 | u64 log
 *   | u64 checkpoint | u64 created_ms | u8 stream_len | stream
 * log: the stream's log id when the subscription was created (a stream
 * deleted and created again has a new log: the subscription is then
 * stale and its reads end with -HS_ENOSTREAM).  checkpoint: every LSN <
 * checkpoint is acknowledged (gaps count as acknowledged); it never
 * decreases.  A deleted record keeps its fields; creating the name again
 * writes a new one.
 *
 * The register envelope (register.h, "Exactly once": u8 format | u8 n |
 * ballot floor | n ballots) precedes the caller's bytes in what acceptors
 * store; hs_reg_unwrap() skips it for values read directly from acceptors
 * (REG_LIST), which bypass the proposer.
 */
#ifndef HS_META_H
#define HS_META_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define HS_SREC_LEN 48
#define HS_SREC_V1_LEN 40
#define HS_LREC_LEN 24           /* without the epoch entries */
#define HS_LEPOCH_LEN 32         /* an epoch entry without its node ids */
#define HS_NODESET_MAX 32
#define HS_LREC_EPOCHS_MAX 256
#define HS_LEPOCH_CLEAN 1
#define HS_SREC_DELETED 1
#define HS_UREC_LEN 40           /* without the stream name */
#define HS_UREC_DELETED 1
#define HS_META_NAME_MAX 253     /* "s/" + name within a register key */
#define HS_LREC_ADDR_MAX 255     /* owner address bytes */

struct hs_srec {
	uint8_t flags;           /* HS_SREC_* */
	uint8_t replication;
	uint8_t durability;      /* 1 sync, 2 async, 3 memory */
	uint64_t log;
	uint64_t retention_ms, offload_after_ms;
	uint64_t created_ms;
	uint64_t offload_size;   /* bytes; 0 = no size trigger */
};

/* One epoch of a log (see "epoch entry" above). */
struct hs_lepoch {
	uint32_t epoch;
	uint8_t r, nn, flags;         /* flags: HS_LEPOCH_* */
	uint64_t lng, end;
	uint32_t ballot;
	uint32_t nodes[HS_NODESET_MAX];
};

/* A log record.  epochs (nepochs entries, oldest first) is owned by the
 * struct: allocated by hs_lrec_dec() and the helpers below, released by
 * hs_lrec_free(). */
struct hs_lrec {
	uint32_t epoch;
	uint64_t trim;
	uint32_t lce;
	uint16_t nepochs;
	struct hs_lepoch *epochs;
	uint64_t owner;               /* serve id of the live epoch's sequencer, 0 none */
	char owner_addr[HS_LREC_ADDR_MAX + 1]; /* its client address, NUL-terminated */
};

struct hs_urec {
	uint8_t flags;           /* HS_UREC_* */
	uint32_t ack_timeout_ms, max_unacked;
	uint64_t log;
	uint64_t checkpoint;
	uint64_t created_ms;
	char stream[256];        /* NUL-terminated */
	uint8_t stream_len;
};

/* Key builders: write the key into k (room for 2 + 255 bytes) and return
 * its length. */
size_t hs_meta_skey(uint8_t *k, const char *name, size_t len);
size_t hs_meta_lkey(uint8_t *k, uint64_t log);
size_t hs_meta_ukey(uint8_t *k, const char *name, size_t len);

/* Append the encoded record to out. */
void hs_srec_enc(const struct hs_srec *r, struct hs_buf *out);
void hs_lrec_enc(const struct hs_lrec *r, struct hs_buf *out);
void hs_urec_enc(const struct hs_urec *r, struct hs_buf *out);

/* Decode p[0..len).  Return 1 (decoded), 0 (len 0: absent; *r zeroed) or
 * -HS_EDATA (not a record of this kind).  hs_lrec_dec() allocates
 * r->epochs (free with hs_lrec_free(), also after an error). */
int hs_srec_dec(const uint8_t *p, size_t len, struct hs_srec *r);
int hs_lrec_dec(const uint8_t *p, size_t len, struct hs_lrec *r);
int hs_urec_dec(const uint8_t *p, size_t len, struct hs_urec *r);

/* Release r->epochs (r itself is the caller's); r is left empty. */
void hs_lrec_free(struct hs_lrec *r);
/* Append a copy of *e to r's epochs (keeping them sorted by epoch; an
 * entry of the same epoch is replaced).  Returns 0, or -HS_ETOOBIG when r
 * already has HS_LREC_EPOCHS_MAX entries. */
int hs_lrec_put_epoch(struct hs_lrec *r, const struct hs_lepoch *e);
/* The entry of epoch e in r, or NULL; borrowed from r. */
struct hs_lepoch *hs_lrec_find_epoch(const struct hs_lrec *r, uint32_t e);
/* Drop entries that cannot matter to a reader any more (clean ones with
 * no records, end 0, and those whose every LSN is <= r->trim), then raise
 * r->lce to the largest x <= r->epoch such that every entry of an epoch
 * <= x is clean (an epoch without an entry holds nothing); never lowered. */
void hs_lrec_compact(struct hs_lrec *r);

#endif
