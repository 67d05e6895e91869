/*
 * proto.h - the HStore wire protocol: frames, HELLO, and the serve<->peer
 * data messages.  This header is the protocol's specification.
 *
 * FRAMES
 * ------
 * Every message travels in one frame.  All integers are little-endian.
 *
 *   off  size  field
 *   0    4     length   whole frame in bytes, this field and the CRC included
 *   4    2     type     enum hs_msg
 *   6    2     flags    per type; 0 unless stated
 *   8    8     id       request id; a reply carries its request's id
 *   16   n     body     length - 20 bytes, layout per type below
 *   16+n 4     crc32c   CRC32C (Castagnoli) of bytes [0, 16+n)
 *
 * A frame shorter than 20 bytes, longer than the negotiated maximum, with a
 * bad CRC, an unknown type, or a body its decoder finds truncated or
 * inconsistent is malformed: the receiver logs the reason and closes that
 * connection; nothing else happens.
 *
 * Requests are pipelined: a client may send many before reading replies;
 * replies are matched by id, not by order (a peer does reply to STOREs in
 * order, but callers must not rely on it).
 *
 * HELLO (type 1) - the first frame each way.  The connecting side sends it;
 * the accepting side answers with its own HELLO (same id), or with RESULT
 * (-HS_EVERSION) and closes if the versions differ.
 *   u16 version (HS_PROTO_VERSION) | u8 role (enum hs_role) | u8 reserved 0
 *   | u64 cluster_id (0 = any) | u32 max_frame (largest frame the sender
 *   accepts) | u32 node_id (peer id, 0 for clients) | u16 auth_len | auth
 * Each side then sends frames no larger than the other's max_frame.
 *
 * RESULT (type 2) - generic reply: i32 status (0, -HS_E... or -errno)
 *   | u16 msg_len | msg (UTF-8 text, no NUL).  Answers RELEASE, TRIM, STOP,
 *   and any request that failed as a whole.
 *
 * RUNS
 * ----
 * A run is a batch of records of one log at consecutive LSNs, sharing one
 * copyset.  The same bytes are the RocksDB value (keyed by the run's first
 * LSN) and the payload of STORE and RECORDS, so a peer stores what it
 * receives without re-encoding.  The first LSN is not inside the run: it is
 * the key, or the field before the run in a message.  Layout (libcore/run.h):
 *
 *   0   u8   version (1)
 *   1   u8   flags: HS_RUN_HOLE 1, HS_RUN_BRIDGE 2, HS_RUN_RECOVERY 4
 *   2   u16  C, copyset size (0..127)
 *   4   u32  N, record count (>= 1); record i has LSN first_lsn + i
 *   8   u64  lng: the sequencer's last known good LSN when it sent the run
 *   16  u32  wave (sequencer stores) or recovery ballot (epoch) if RECOVERY
 *   20  u32  reserved, 0
 *   24  C * u32  copyset (peer node ids)
 *   ..  N * { u64 timestamp_ms | u32 len | len bytes }
 *   ..  u32 crc32c of every byte above
 * HOLE and BRIDGE runs carry N empty records.  LSN = epoch << 32 | esn; the
 * run must not cross an epoch (esn of first_lsn + N - 1 <= 0xffffffff).
 *
 * SERVE <-> PEER DATA MESSAGES
 * ----------------------------
 * STORE (16): u32 nruns | nruns * { u64 log | u64 first_lsn | u32 run_len | run }
 *   Runs of many logs in one frame.  A peer stages every run of every STORE
 *   that arrives in one event-loop turn into one RocksDB WriteBatch, syncs
 *   once (per its durability), then replies.
 *   flags: HS_STORE_NOSYNC 1 - these runs need not be synced before STORED
 *   (streams of durability async or memory).  A turn whose STOREs all carry
 *   it (and that stages no hard SEAL, TRIM, CLEAN, GETMETA or register
 *   write) is committed with the WAL written but not fsynced; the peer
 *   fsyncs it within ~100 ms.  Otherwise the turn's one fsync covers NOSYNC
 *   runs too.  A sender sets it in the header (hs_put16(frame + 6, ...))
 *   before hs_msg_wr_end(), which computes the CRC.
 *   A run is refused with -HS_ESEALED when epoch(first_lsn) <= the log's seal
 *   (or soft seal), except a RECOVERY run whose ballot >= the seal, which is
 *   accepted and raises the seal to its ballot.  An accepted normal run of
 *   epoch E raises the soft seal to E - 1: a newer sequencer's first STORE
 *   fences every older one on that peer.  While the peer's disk is below
 *   its --min-free, an ordinary run (no HS_RUN_RECOVERY flag) that
 *   the seal does not refuse is refused with -HS_ENOSPC and nothing is
 *   written (hs-peer.c "NEARLY FULL DISK"; hs-serve then leaves that peer
 *   out of its copysets for a while, libpaxos/seq.c "FULL PEERS").
 * STORED (17): u32 nruns | nruns * { i32 status | u32 seal } in STORE order;
 *   seal is the log's seal epoch (meaningful with -HS_ESEALED).
 *
 * SEAL (18): u64 log | u32 epoch | u8 soft | u32 lce
 *   Raise the seal (or the soft seal if soft) to max(current, epoch), durably
 *   for a hard seal, before replying.  lce is the caller's last clean epoch:
 *   SEALED reports the epochs after it.
 * SEALED (19): i32 status | u32 seal | u32 soft_seal | u64 trim
 *   | u32 nepochs | nepochs * { u32 epoch | u64 lng | u64 max_lsn }
 *   one entry per epoch in (lce, seal] for which the peer holds records:
 *   the highest LNG seen in that epoch's runs and the highest LSN stored.
 *
 * RELEASE (20): u32 n | n * { u64 log | u64 lsn }  -> RESULT
 *   Raise each log's last released LSN (never lowers it).  Readers are never
 *   sent records beyond it.  Persisted with the next commit.
 *
 * TRIM (21): u64 log | u64 trim  -> RESULT
 *   Every LSN <= trim is trimmed: reads report it as a TRIM gap; the space is
 *   reclaimed by range deletion and by dropping whole time partitions that
 *   lie behind every log's trim point.
 *
 * GETMETA (22): u64 log  -> META (23):
 *   i32 status | u32 seal | u32 soft_seal | u32 lce | u64 released
 *   | u64 trim | u64 max_lsn
 *
 * STATS (24): empty -> STATSREPLY (25): text, "key value\n" lines
 *   (partitions, partition_names, commits, runs_stored, ...).
 *
 * READ STREAMS
 * ------------
 * START (32): u32 stream | u64 log | u64 from | u64 until | u32 win_records
 *   | u32 win_bytes | u32 flags
 *   Open read stream `stream` (chosen by the reader, unique per connection)
 *   over LSNs [from, until] (until inclusive; UINT64_MAX = no end).  The peer
 *   sends RECORDS and GAP frames carrying START's id, in LSN order, never
 *   beyond the log's last released LSN (flag HS_READ_IGNORE_RELEASED = 1
 *   lifts that, for recovery digests), and never more than the window
 *   allows; when it has caught up it waits for RELEASE and goes on.  When it
 *   has passed `until` it sends END.
 * RECORDS (33): u32 stream | u64 log | u32 nruns
 *   | nruns * { u64 first_lsn | u32 run_len | run }
 *   A stored run may be sliced so that only LSNs in [from, until] and
 *   <= released are sent (a slice is re-encoded with its own CRC).
 * GAP (34): u32 stream | u64 lo | u64 hi | u8 reason
 *   reasons: HS_GAP_TRIM 1 (lo..hi below the trim point),
 *   HS_GAP_NORECORDS 2 (this peer holds nothing in lo..hi; sent when it
 *   catches up to the released point, so a merger can advance),
 *   HS_GAP_CHECKSUM 3 (the run at lo..hi failed its checksum; not served).
 * WINDOW (35): u32 stream | u32 add_records | u32 add_bytes
 *   Grant more credit.  Records/bytes in flight = sent - granted.
 * STOP (36): u32 stream  -> RESULT.  Closes the stream.
 * END (37): u32 stream | i32 status  - the stream is finished (until passed,
 *   or an error such as -HS_ESTOREFAIL).
 *
 * METADATA REGISTERS (serve -> peer; libpaxos/register.h)
 * --------------------------------------------------------
 * CASPaxos registers: a key (1..255 bytes, binary-safe) names a value of at
 * most HS_REG_VALUE_MAX bytes.  Every message carries a list of entries, one
 * per key, so one frame can prepare or accept thousands of keys; a reply
 * has one entry per request entry, in the same order, and repeats the key
 * and the proposal ballot so the proposer can match it without the id.
 *
 *   ballot = u64 counter | u32 proposer     (12 bytes; ordered by counter,
 *            then proposer; all zero = none)
 *   value  = u64 version | ballot tag | u32 len | len bytes
 *            version counts the changes that produced the value (0 =
 *            absent, len 0); tag is the ballot of the round that last
 *            changed it.  The bytes are opaque to acceptors; the
 *            proposer keeps inside them the record of recent rounds that
 *            tells whether its own unconfirmed attempt is in the value
 *            (libpaxos/register.h, "Exactly once").
 *
 * REG_PREPARE (96): u32 n | n * { u8 key_len | key | ballot }
 *   Phase 1.  The peer promises iff ballot >= its promise for the key,
 *   persists the promise (fsync) and only then replies.
 * REG_PROMISE (97): u32 n | n * { u8 key_len | key | ballot | i32 status
 *   | ballot promised | ballot accepted | value }
 *   status 0: promised; accepted and value are the last accepted (zero
 *   and an empty version-0 value if none).  -HS_ESEALED: refused,
 *   promised is the higher promise (accepted and value are then zero and
 *   empty).  Other negative statuses (-HS_EIO...): the peer cannot serve.
 * REG_ACCEPT (98): u32 n | n * { u8 key_len | key | ballot | value }
 *   Phase 2.  The peer accepts iff ballot >= its promise (or ballot equals
 *   its accepted ballot: a duplicate), sets accepted = ballot and the value
 *   and promises the next ballot (counter + 1, same proposer), persists,
 *   then replies.  That implied promise lets a proposer with |Q1| such
 *   acks skip REG_PREPARE for its next change of the key.
 * REG_ACCEPTED (99): u32 n | n * { u8 key_len | key | ballot | i32 status
 *   | ballot promised }
 *   status 0 or -HS_ESEALED (promised is then the higher promise), or
 *   another negative status as for REG_PROMISE.
 * A key_len of 0 or a value len over HS_REG_VALUE_MAX is malformed.
 *
 * LOOKUPS FOR HS-SERVE (serve -> peer)
 * ------------------------------------
 * LOCATE (26): u64 log | u64 from | u64 until | u64 time_ms  -> LOCATED
 *   The first LSN in [from, until) (until exclusive; UINT64_MAX = no end)
 *   whose record has timestamp >= time_ms, scanning committed runs in LSN
 *   order (timestamps need not be monotonic: the first match in LSN order
 *   wins).  Trimmed records are skipped.  Used to resolve @time positions.
 * LOCATED (27): i32 status | u64 lsn   lsn 0 = no such record in range.
 *
 * RECOVERY RESULTS (serve -> peer; docs/replication.md §5)
 * --------------------------------------------------------
 * CLEAN (28): u64 log | u32 epoch | u32 ballot | u64 lng | u64 end  -> RESULT
 *   A recovery with ballot `ballot` finished epoch `epoch` of log: every
 *   slot <= lng is as the sequencer wrote it, every slot in (lng, end] has
 *   a RECOVERY copy of that ballot on r peers, and the epoch ends with a
 *   BRIDGE at end + 1 (end = lng = 0: the epoch holds nothing).  The peer
 *   durably records (epoch, ballot, lng, end) as the log's clean record of
 *   that epoch and deletes, in the same commit, its copies the recovery did
 *   not write: runs of the epoch with first LSN > lng that are not RECOVERY
 *   runs of `ballot` (the BRIDGE included), and every run after end + 1; a
 *   run starting at or below lng that reaches past it is cut to end at lng.
 *   So the peer never ships a stale tail of a recovered epoch.  Refused with
 *   -HS_ESEALED if ballot < the log's seal (a newer recovery or sequencer
 *   owns the log: its CLEAN will do) or < the ballot of a clean record the
 *   peer already holds for that epoch (a repeat with the same ballot is
 *   applied again, harmlessly).  A peer holding nothing of the epoch just
 *   records it.  Runs staged in the same turn are left alone.
 *
 * REG_LIST (100): u8 prefix_len | prefix | u8 after_len | after | u32 max
 *   The acceptor states whose key starts with prefix and is > after (byte
 *   order; after may be empty), at most max (1..65536) of them, in key
 *   order, from what is committed.  hs-serve lists the stream directory
 *   this way (keys "s/<name>", libpaxos/meta.h), asking every peer and
 *   keeping per key the value with the highest accepted ballot.
 * REG_LISTED (101): i32 status | u8 more | u32 n | n * { u8 key_len | key
 *   | ballot accepted | value }   (ballot and value as in REG_PROMISE;
 *   the value includes the proposer's envelope).  more 1: keys may follow
 *   the last one returned.
 *
 * CLIENT <-> SERVE MESSAGES (64..95) are specified in proto_client.h.
 */
#ifndef HS_PROTO_H
#define HS_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "wire.h"

#define HS_PROTO_VERSION 1
#define HS_FRAME_HDR 16          /* length .. id */
#define HS_FRAME_OVERHEAD 20     /* header + crc */
#define HS_FRAME_MAX_DEFAULT (64u << 20)
#define HS_FRAME_MAX_MIN 4096u

enum hs_msg {
	HS_MSG_HELLO = 1,
	HS_MSG_RESULT = 2,
	HS_MSG_STORE = 16,
	HS_MSG_STORED = 17,
	HS_MSG_SEAL = 18,
	HS_MSG_SEALED = 19,
	HS_MSG_RELEASE = 20,
	HS_MSG_TRIM = 21,
	HS_MSG_GETMETA = 22,
	HS_MSG_META = 23,
	HS_MSG_STATS = 24,
	HS_MSG_STATSREPLY = 25,
	HS_MSG_LOCATE = 26,
	HS_MSG_LOCATED = 27,
	HS_MSG_CLEAN = 28,
	HS_MSG_START = 32,
	HS_MSG_RECORDS = 33,
	HS_MSG_GAP = 34,
	HS_MSG_WINDOW = 35,
	HS_MSG_STOP = 36,
	HS_MSG_END = 37,
	HS_MSG_REG_PREPARE = 96,
	HS_MSG_REG_PROMISE = 97,
	HS_MSG_REG_ACCEPT = 98,
	HS_MSG_REG_ACCEPTED = 99,
	HS_MSG_REG_LIST = 100,
	HS_MSG_REG_LISTED = 101,
};

enum hs_role { HS_ROLE_CLIENT = 1, HS_ROLE_SERVE = 2, HS_ROLE_PEER = 3, HS_ROLE_TOOL = 4 };

enum { HS_RUN_HOLE = 1, HS_RUN_BRIDGE = 2, HS_RUN_RECOVERY = 4 };
enum { HS_STORE_NOSYNC = 1 };   /* STORE frame flags */
enum { HS_GAP_TRIM = 1, HS_GAP_NORECORDS = 2, HS_GAP_CHECKSUM = 3 };
enum { HS_READ_IGNORE_RELEASED = 1 };

#define HS_LSN(epoch, esn) ((uint64_t)(epoch) << 32 | (uint32_t)(esn))
#define HS_LSN_EPOCH(lsn) ((uint32_t)((lsn) >> 32))
#define HS_LSN_ESN(lsn) ((uint32_t)(lsn))

/*
 * MESSAGE CODECS (proto.c)
 * ------------------------
 * For every type: an encoder hs_msg_<type>_enc() that appends one whole
 * frame (flags 0) to a struct hs_buf, and a decoder hs_msg_<type>_dec() that
 * takes a frame's body and fills a plain struct.  Decoders check every
 * length and count against the body and return 0 or -HS_EPROTO (never
 * reading outside body[0..len)); a body with bytes left over is malformed,
 * except HELLO, which later versions may extend.  Decoded pointers borrow
 * the body.
 *
 * Messages carrying a list (STORE, STORED, SEALED, RELEASE, RECORDS) are
 * encoded with a struct hs_msg_wr: <type>_begin, one add per entry, and
 * hs_msg_wr_end() which patches the count and the frame; a STORE or RECORDS
 * run can also be built in place (..._run_open, hs_run_begin/add/end on
 * w->b, hs_msg_wr_run_close) so it is never copied.  Their decoders validate
 * the whole list up front, then <type>_next() returns one entry per call
 * (1, or 0 at the end) without further checks.  The runs inside STORE and
 * RECORDS are only delimited here; the receiver validates each with
 * hs_run_parse() (run.h).
 */

/* HELLO: version, role, cluster, max frame, node id, opaque auth. */
struct hs_hello {
	uint16_t version;
	uint8_t role;          /* enum hs_role */
	uint64_t cluster_id;   /* 0 = any */
	uint32_t max_frame;    /* largest frame the sender accepts */
	uint32_t node_id;      /* 0 for clients */
	uint16_t auth_len;
	const uint8_t *auth;   /* borrowed; may be NULL when auth_len is 0 */
};
/* RESULT: status and optional text (msg not NUL-terminated when decoded). */
struct hs_result {
	int32_t status;
	uint16_t msg_len;
	const char *msg;       /* borrowed */
};
struct hs_seal {
	uint64_t log;
	uint32_t epoch;
	uint8_t soft;          /* 0 or 1 */
	uint32_t lce;
};
struct hs_trim {
	uint64_t log;
	uint64_t trim;
};
struct hs_getmeta {
	uint64_t log;
};
struct hs_meta {
	int32_t status;
	uint32_t seal, soft_seal, lce;
	uint64_t released, trim, max_lsn;
};
/* STATSREPLY: the body is the text ("key value\n" lines). */
struct hs_statsreply {
	const char *text;      /* borrowed, not NUL-terminated */
	size_t len;
};
struct hs_start {
	uint32_t stream;
	uint64_t log;
	uint64_t from, until;  /* inclusive; until UINT64_MAX = no end */
	uint32_t win_records, win_bytes;
	uint32_t flags;        /* HS_READ_* */
};
struct hs_gap {
	uint32_t stream;
	uint64_t lo, hi;
	uint8_t reason;        /* HS_GAP_*; others are malformed */
};
struct hs_window {
	uint32_t stream;
	uint32_t add_records, add_bytes;
};
struct hs_stop {
	uint32_t stream;
};
struct hs_end {
	uint32_t stream;
	int32_t status;
};

void hs_msg_hello_enc(struct hs_buf *b, uint64_t id, const struct hs_hello *m);
int hs_msg_hello_dec(const uint8_t *body, size_t len, struct hs_hello *m);
void hs_msg_result_enc(struct hs_buf *b, uint64_t id, const struct hs_result *m);
/* Convenience: RESULT with status and printf text (cut at 65535 bytes). */
void hs_msg_result_encf(struct hs_buf *b, uint64_t id, int32_t status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
int hs_msg_result_dec(const uint8_t *body, size_t len, struct hs_result *m);
void hs_msg_seal_enc(struct hs_buf *b, uint64_t id, const struct hs_seal *m);
int hs_msg_seal_dec(const uint8_t *body, size_t len, struct hs_seal *m);
void hs_msg_trim_enc(struct hs_buf *b, uint64_t id, const struct hs_trim *m);
int hs_msg_trim_dec(const uint8_t *body, size_t len, struct hs_trim *m);
void hs_msg_getmeta_enc(struct hs_buf *b, uint64_t id, const struct hs_getmeta *m);
int hs_msg_getmeta_dec(const uint8_t *body, size_t len, struct hs_getmeta *m);
void hs_msg_meta_enc(struct hs_buf *b, uint64_t id, const struct hs_meta *m);
int hs_msg_meta_dec(const uint8_t *body, size_t len, struct hs_meta *m);
void hs_msg_stats_enc(struct hs_buf *b, uint64_t id);
int hs_msg_stats_dec(const uint8_t *body, size_t len);
/* text borrowed for the call. */
void hs_msg_statsreply_enc(struct hs_buf *b, uint64_t id, const char *text, size_t len);
int hs_msg_statsreply_dec(const uint8_t *body, size_t len, struct hs_statsreply *m);
void hs_msg_start_enc(struct hs_buf *b, uint64_t id, const struct hs_start *m);
int hs_msg_start_dec(const uint8_t *body, size_t len, struct hs_start *m);
void hs_msg_gap_enc(struct hs_buf *b, uint64_t id, const struct hs_gap *m);
int hs_msg_gap_dec(const uint8_t *body, size_t len, struct hs_gap *m);
void hs_msg_window_enc(struct hs_buf *b, uint64_t id, const struct hs_window *m);
int hs_msg_window_dec(const uint8_t *body, size_t len, struct hs_window *m);
void hs_msg_stop_enc(struct hs_buf *b, uint64_t id, const struct hs_stop *m);
int hs_msg_stop_dec(const uint8_t *body, size_t len, struct hs_stop *m);
void hs_msg_end_enc(struct hs_buf *b, uint64_t id, const struct hs_end *m);
int hs_msg_end_dec(const uint8_t *body, size_t len, struct hs_end *m);

/*
 * List writer (STORE, STORED, SEALED, RELEASE, RECORDS).  b is borrowed
 * until hs_msg_wr_end(); nobody else may append to it meanwhile.
 */
struct hs_msg_wr {
	struct hs_buf *b;      /* borrowed */
	size_t start;          /* offset of the frame in b */
	size_t count_off;      /* offset of the u32 entry count */
	size_t run_off;        /* offset of the open run's u32 run_len */
	uint32_t n;            /* entries added */
};

/* For the codecs of each message family: start a list frame of `type` in b
 * (the caller then writes any fixed header fields), and place the u32 entry
 * count where the list begins. */
void hs_msg_wr_begin(struct hs_msg_wr *w, struct hs_buf *b, uint16_t type, uint64_t id);
void hs_msg_wr_count(struct hs_msg_wr *w);
/* Size the frame would have if ended now (compare with the peer's
 * max_frame before adding more). */
size_t hs_msg_wr_size(const struct hs_msg_wr *w);
/* Patch the count, finish the frame.  Returns the frame's length.  A list
 * may be empty (count 0). */
size_t hs_msg_wr_end(struct hs_msg_wr *w);

/* STORE: u32 nruns | { u64 log | u64 first_lsn | u32 run_len | run }.
 * _run copies run[0..len) (borrowed for the call); _run_open writes the
 * entry header, after which the caller appends exactly one run to w->b
 * (e.g. hs_run_begin(&rb, w->b, ...)) and calls hs_msg_wr_run_close(). */
void hs_msg_store_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id);
void hs_msg_store_run(struct hs_msg_wr *w, uint64_t log, uint64_t first_lsn, const void *run,
		      size_t len);
void hs_msg_store_run_open(struct hs_msg_wr *w, uint64_t log, uint64_t first_lsn);
/* Patch the run_len of the run opened last (STORE or RECORDS). */
void hs_msg_wr_run_close(struct hs_msg_wr *w);

/* STORED: u32 nruns | { i32 status | u32 seal }. */
void hs_msg_stored_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id);
void hs_msg_stored_add(struct hs_msg_wr *w, int32_t status, uint32_t seal);

/* SEALED: fixed fields, then { u32 epoch | u64 lng | u64 max_lsn } entries. */
struct hs_sealed {
	int32_t status;
	uint32_t seal, soft_seal;
	uint64_t trim;
	uint32_t nepochs;      /* filled by the decoder; ignored by begin */
	struct hs_rd rd;       /* decoder's position (private) */
	uint32_t left;         /* entries not yet returned (private) */
};
void hs_msg_sealed_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id,
			 const struct hs_sealed *m);
void hs_msg_sealed_add(struct hs_msg_wr *w, uint32_t epoch, uint64_t lng, uint64_t max_lsn);

/* RELEASE: u32 n | { u64 log | u64 lsn }. */
void hs_msg_release_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id);
void hs_msg_release_add(struct hs_msg_wr *w, uint64_t log, uint64_t lsn);

/* RECORDS: u32 stream | u64 log | u32 nruns | { u64 first_lsn | u32 run_len
 * | run }.  Runs as for STORE. */
void hs_msg_records_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id, uint32_t stream,
			  uint64_t log);
void hs_msg_records_run(struct hs_msg_wr *w, uint64_t first_lsn, const void *run, size_t len);
void hs_msg_records_run_open(struct hs_msg_wr *w, uint64_t first_lsn);

/* Decoded lists.  Each reader borrows the body; fields other than the
 * documented ones are private. */
struct hs_store_rd {
	uint32_t nruns;
	struct hs_rd rd;
	uint32_t left;
};
struct hs_stored_rd {
	uint32_t nruns;
	struct hs_rd rd;
	uint32_t left;
};
struct hs_release_rd {
	uint32_t n;
	struct hs_rd rd;
	uint32_t left;
};
struct hs_records {
	uint32_t stream;
	uint64_t log;
	uint32_t nruns;
	struct hs_rd rd;
	uint32_t left;
};

int hs_msg_store_dec(const uint8_t *body, size_t len, struct hs_store_rd *rd);
/* *run borrows the body; run_len may be any value the frame could hold. */
int hs_store_next(struct hs_store_rd *rd, uint64_t *log, uint64_t *first_lsn,
		  const uint8_t **run, size_t *len);
int hs_msg_stored_dec(const uint8_t *body, size_t len, struct hs_stored_rd *rd);
int hs_stored_next(struct hs_stored_rd *rd, int32_t *status, uint32_t *seal);
int hs_msg_sealed_dec(const uint8_t *body, size_t len, struct hs_sealed *m);
int hs_sealed_next(struct hs_sealed *m, uint32_t *epoch, uint64_t *lng, uint64_t *max_lsn);
int hs_msg_release_dec(const uint8_t *body, size_t len, struct hs_release_rd *rd);
int hs_release_next(struct hs_release_rd *rd, uint64_t *log, uint64_t *lsn);
int hs_msg_records_dec(const uint8_t *body, size_t len, struct hs_records *m);
int hs_records_next(struct hs_records *m, uint64_t *first_lsn, const uint8_t **run, size_t *len);

/* Name of a message type ("HELLO", "STORE", ...), or "?" if unknown;
 * static storage. */
const char *hs_msg_name(uint16_t type);
/* True if type is one of enum hs_msg. */
bool hs_msg_known(uint16_t type);

/* CLEAN (28): the result of an epoch's recovery (see the spec above). */
struct hs_clean {
	uint64_t log;
	uint32_t epoch;        /* the recovered epoch, >= 1 */
	uint32_t ballot;       /* the recovery's ballot */
	uint64_t lng, end;     /* as in the log record's CLEAN entry */
};
void hs_msg_clean_enc(struct hs_buf *b, uint64_t id, const struct hs_clean *m);
/* -HS_EPROTO also for epoch 0, or lng or end nonzero and not in epoch
 * (lng may also be epoch << 32 | 0), or end < lng. */
int hs_msg_clean_dec(const uint8_t *body, size_t len, struct hs_clean *m);

/* LSN text ("e<epoch>n<esn>"): hs_lsn_fmt() and hs_lsn_parse() are in pos.h. */

/* ---- metadata registers (96..99) ---------------------------------------- */

#define HS_REG_KEY_MAX 255
#define HS_REG_VALUE_MAX (64u << 10)

struct hs_reg_ballot {
	uint64_t counter;
	uint32_t proposer;
};
/* A register value as carried on the wire; data borrowed. */
struct hs_reg_val {
	uint64_t version;        /* 0 = absent */
	struct hs_reg_ballot tag;
	const uint8_t *data;     /* may be NULL when len is 0 */
	uint32_t len;            /* <= HS_REG_VALUE_MAX */
};
/* One decoded entry of any of the four messages; fields not carried by the
 * message are zeroed.  Pointers borrow the body. */
struct hs_reg_entry {
	const uint8_t *key;
	uint8_t key_len;               /* >= 1 */
	struct hs_reg_ballot ballot;   /* the proposal's */
	int32_t status;                /* PROMISE, ACCEPTED */
	struct hs_reg_ballot promised; /* PROMISE, ACCEPTED */
	struct hs_reg_ballot accepted; /* PROMISE */
	struct hs_reg_val val;         /* PROMISE (accepted), ACCEPT (proposed) */
};
struct hs_reg_rd {
	uint16_t type;                 /* HS_MSG_REG_* */
	uint32_t n;
	struct hs_rd rd;
	uint32_t left;
};

/* Writers: _begin, then one _add per entry, then hs_msg_wr_end().  key
 * (1..255 bytes) and values are copied (borrowed for the call). */
void hs_msg_reg_prepare_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id);
void hs_msg_reg_prepare_add(struct hs_msg_wr *w, const void *key, uint8_t key_len,
			    const struct hs_reg_ballot *ballot);
void hs_msg_reg_promise_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id);
/* Uses key, key_len, ballot, status, promised, accepted and val. */
void hs_msg_reg_promise_add(struct hs_msg_wr *w, const struct hs_reg_entry *e);
void hs_msg_reg_accept_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id);
void hs_msg_reg_accept_add(struct hs_msg_wr *w, const void *key, uint8_t key_len,
			   const struct hs_reg_ballot *ballot, const struct hs_reg_val *val);
void hs_msg_reg_accepted_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id);
void hs_msg_reg_accepted_add(struct hs_msg_wr *w, const void *key, uint8_t key_len,
			     const struct hs_reg_ballot *ballot, int32_t status,
			     const struct hs_reg_ballot *promised);

/* Decoders: validate the whole list (0 or -HS_EPROTO); then hs_reg_next()
 * returns one entry per call (1, or 0 at the end). */
int hs_msg_reg_prepare_dec(const uint8_t *body, size_t len, struct hs_reg_rd *rd);
int hs_msg_reg_promise_dec(const uint8_t *body, size_t len, struct hs_reg_rd *rd);
int hs_msg_reg_accept_dec(const uint8_t *body, size_t len, struct hs_reg_rd *rd);
int hs_msg_reg_accepted_dec(const uint8_t *body, size_t len, struct hs_reg_rd *rd);
/* Any of the four by type; -HS_EPROTO for another type. */
int hs_msg_reg_dec(uint16_t type, const uint8_t *body, size_t len, struct hs_reg_rd *rd);
int hs_reg_next(struct hs_reg_rd *rd, struct hs_reg_entry *e);

/* ---- LOCATE (26, 27) and REG_LIST (100, 101) ------------------------------ */

struct hs_locate {
	uint64_t log;
	uint64_t from, until;   /* [from, until) */
	uint64_t time_ms;
};
struct hs_located {
	int32_t status;
	uint64_t lsn;           /* 0 = none */
};
void hs_msg_locate_enc(struct hs_buf *b, uint64_t id, const struct hs_locate *m);
int hs_msg_locate_dec(const uint8_t *body, size_t len, struct hs_locate *m);
void hs_msg_located_enc(struct hs_buf *b, uint64_t id, const struct hs_located *m);
int hs_msg_located_dec(const uint8_t *body, size_t len, struct hs_located *m);

#define HS_REG_LIST_MAX 65536u
struct hs_reg_list {
	const uint8_t *prefix, *after;  /* borrowed */
	uint8_t prefix_len, after_len;
	uint32_t max;                   /* 1..HS_REG_LIST_MAX */
};
void hs_msg_reg_list_enc(struct hs_buf *b, uint64_t id, const struct hs_reg_list *m);
int hs_msg_reg_list_dec(const uint8_t *body, size_t len, struct hs_reg_list *m);

/* REG_LISTED: _begin, one _add per entry (uses key, key_len, accepted and
 * val of e), hs_msg_wr_end(); then patch more with hs_msg_reg_listed_more()
 * before or after the entries. */
struct hs_reg_listed {
	int32_t status;
	uint8_t more;
	uint32_t n;
	struct hs_rd rd;        /* private */
	uint32_t left;
};
void hs_msg_reg_listed_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id, int32_t status);
void hs_msg_reg_listed_more(struct hs_msg_wr *w, uint8_t more);
void hs_msg_reg_listed_add(struct hs_msg_wr *w, const struct hs_reg_entry *e);
int hs_msg_reg_listed_dec(const uint8_t *body, size_t len, struct hs_reg_listed *m);
/* Fills key, key_len, accepted and val of e (borrowing the body). */
int hs_reg_listed_next(struct hs_reg_listed *m, struct hs_reg_entry *e);

#endif
