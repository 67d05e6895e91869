/*
 * proto_client.h - the client<->serve message family (types 64..95) of the
 * HStore wire protocol.  Frames, HELLO, RESULT and runs are specified in
 * proto.h; this header is the specification of everything a client
 * (hs-append, hs-cat, hs-tail, hs-admin, hs-offload, libraries) says to
 * hs-serve.  docs/protocol.md gives the overview.
 *
 * CONVENTIONS
 * -----------
 * All integers are little-endian.  "name" is u8 len | len bytes, a stream
 * or subscription name: 1..255 bytes of [A-Za-z0-9._-], not starting with
 * '_' (hs_stream_name_valid()).  A decoder refuses an invalid name as
 * malformed, so clients validate names first (a usage error, exit 64)
 * instead of letting the server close the connection.
 *
 * Every status field is 0 or a negative code (err.h); a positive status
 * is malformed.
 *
 * A position (POS, pos.h) travels unresolved, so the server resolves head,
 * tail and times when the request runs.  9 bytes:
 *   u8 kind | u64 v
 *   kind 0 HS_POS_NONE (v 0; only where "or none" is said), 1 LSN (v = lsn,
 *   epoch and esn nonzero), 2 HEAD (v = offset >= 0, as i64), 3 TAIL (v =
 *   offset <= 0, as i64: tail-100 is -100), 4 TIME (v = unix ms, as i64).
 *   Anything else is malformed.
 *
 * Admin mutations (STREAM_CREATE, STREAM_DELETE, STREAM_TRIM, SUB_CREATE,
 * SUB_DELETE) are lists: one frame carries many entries, each done on its
 * own (not atomically together), answered by one STATUSES with one entry
 * per request entry, in order.  Lookups (STREAM_INFO, STREAM_LIST,
 * SUB_INFO, SUB_LIST) are answered by STREAMS or SUBS.  A request that
 * fails as a whole (permission, server shutting down) is answered by
 * RESULT (type 2) instead.  Every request may be pipelined.
 *
 * APPEND
 * ------
 * APPEND (64): u32 n | n * { name stream | u32 flags | u32 run_len | run }
 *   Each entry appends the records of one run (proto.h "RUNS") to one
 *   stream, atomically: all of them get consecutive LSNs, or none is
 *   appended.  The run must have flags 0, an empty copyset, lng 0 and wave
 *   0 (hs_append_run_check()); a record timestamp of 0 asks the server to
 *   stamp it with its clock on receipt.  hs-serve forwards the records
 *   section unchanged: it begins a STORE run with the real copyset, lng and
 *   wave (hs_run_begin), appends bytes [r.records, r.end) of the parsed
 *   APPEND run, sets rb.n = r.nrecords and calls hs_run_end() - one memcpy,
 *   a new header and CRC, no per-record work.
 *   flags: HS_APPEND_CREATE 1: create the stream with default attributes
 *   if it does not exist (else -HS_ENOSTREAM).  Other bits are malformed.
 *   The decoder only delimits the runs; the server validates each with
 *   hs_run_parse() and hs_append_run_check() and answers a bad run with
 *   status -HS_EPROTO for that entry.
 *   Entries for one stream within one connection are appended in the order
 *   sent (frame order, then entry order); many APPENDs may be in flight.
 * APPENDED (65): u32 n | n * { i32 status | u64 first_lsn | u32 count
 *   | u32 detail | u16 text_len | text }
 *   Sent once every entry of the APPEND is settled: status 0 means all
 *   `count` records are durable (acked by all R copies, per the stream's
 *   durability) at LSNs first_lsn .. first_lsn + count - 1.  Otherwise
 *   first_lsn and count are 0, text is a human reason (UTF-8, may be
 *   empty), and detail depends on status:
 *     -HS_ENOSTREAM   no such stream (and no HS_APPEND_CREATE); detail 0
 *     -HS_ETOOBIG     detail = index in the run of the first record over
 *                     the server's record limit; nothing appended
 *     -HS_EAGAIN      back-pressure: detail = suggested retry delay in ms;
 *                     nothing appended
 *     -HS_ESEALED     this server's sequencer lost its epoch to another
 *                     one; text = the address ("unix:/p", "host:port") of
 *                     the current sequencer, empty if unknown; retry there
 *     -HS_EREDIRECT   another hs-serve sequences the stream; text = its
 *                     address; nothing appended (docs/replication.md §7)
 *     -HS_ETIMEOUT, -HS_EUNAVAIL  not enough peers in time
 *     -HS_EPROTO      the run was malformed
 *   After -HS_ESEALED, -HS_ETIMEOUT or -HS_EUNAVAIL the records may still
 *   appear later (the new sequencer's recovery can complete them), so a
 *   retry may duplicate; after the other errors nothing was appended.
 *
 * STREAM ADMIN
 * ------------
 * attrs (24 or 32 bytes): u32 mask | u8 replication | u8 durability
 *   | u16 0 | u64 retention_ms | u64 offload_after_ms
 *   | u64 offload_size   (only when mask has HS_ATTR_OFFLOAD_SIZE)
 *   | u64 restore_log | u64 restore_lsn  (only with HS_ATTR_RESTORE)
 *   mask says which fields are set (HS_ATTR_*); unset ones take the
 *   server's defaults.  replication 1..127; durability HS_DUR_SYNC 1,
 *   HS_DUR_ASYNC 2, HS_DUR_MEMORY 3 (DESIGN §6); retention_ms 0 = keep
 *   forever; offload_after_ms 0 = never offload by age; offload_size:
 *   offload once at least this many payload bytes are released and not
 *   offloaded, whatever their age (0 = no size trigger; absent = 0).  The
 *   trailing field exists only with its bit so that attrs without it are
 *   byte for byte the 24-byte form older peers know.  Unknown mask bits or
 *   an out-of-range set field are malformed.  HS_ATTR_RESTORE (32, not in
 *   HS_ATTR_ALL, never in an info) is for STREAM_CREATE only, sent by
 *   hs-offload --rebuild: see STREAM_CREATE.
 * info (128 + 4 * nn bytes, + 8 with a size policy): u64 log | attrs
 *   (effective: mask = HS_ATTR_ALL, without HS_ATTR_OFFLOAD_SIZE when the
 *   stream's offload_size is 0, so such an info is unchanged for old
 *   clients)
 *   | u64 head | u64 tail | u64 trim | u64 tier1_trim | u64 offload
 *   | u64 records | u64 bytes | u64 created_ms
 *   | u64 released | u64 tier2_expired | u32 tier2_segments
 *   | u32 epoch | u32 lce | u8 r | u8 nn | u16 0 | nn * u32 node_id
 *   head: oldest retained LSN, in either tier (== tail when empty); tail:
 *   the next LSN to be written; trim: the stream's head trim point: every
 *   LSN <= trim is gone from both tiers (0 = none) - with Tier2 segments
 *   it is the point below the first segment (the manifest's expiry point,
 *   or more where a range was trimmed before it was offloaded), else the
 *   Tier1 trim point; tier1_trim: LSNs <= it are no longer in Tier1;
 *   offload: LSNs in (trim, offload] are in Tier2 (0 = nothing
 *   offloaded).  So Tier2 serves (trim, offload] and Tier1 (tier1_trim,
 *   tail); LSNs in (offload, tier1_trim], if any, were trimmed before being
 *   offloaded.  records, bytes: counts of retained records and payload
 *   bytes, UINT64_MAX if unknown.
 *   The replication state, from the sequencer of the server that answers
 *   (epoch 0: the stream is not active there, and released, r, nn are 0):
 *   released: the last released LSN, which is also the live epoch's LNG
 *   (last known good: every LSN <= it is acknowledged on R copies; the
 *   sequencer releases exactly up to its LNG); epoch: the live epoch; lce:
 *   the log's last clean epoch (every epoch <= lce is recovered or ended
 *   cleanly); r: the live epoch's replication factor; nn <=
 *   HS_INFO_NODESET_MAX node ids: its nodeset, in the log record's order.
 *   tier2_expired: the manifest's expiry point (every LSN <= it was
 *   deleted from Tier2 by retention; 0 none); tier2_segments: segments in
 *   the manifest (register entries plus folded ones).  r > nn, or nn >
 *   HS_INFO_NODESET_MAX, is malformed.  STREAM_LIST's infos leave the
 *   Tier2 fields 0 and trim = tier1_trim (a manifest read per listed
 *   stream would make a page cost a register round trip per name), and
 *   epoch 0 for the streams the answering server does not sequence;
 *   STREAM_INFO has everything (it activates the stream).
 *
 * STREAM_CREATE (66): u32 n | n * { name | attrs }  -> STATUSES
 *   per entry: 0 (value = the new log id), -HS_EEXIST (value = the
 *   existing stream's log id), or another error.
 *   With HS_ATTR_RESTORE (a rebuild from a Tier2 bucket, docs/tier2.md):
 *   the stream gets log id restore_log (nonzero, < 2^62) instead of a
 *   random one, and Tier1 starts after restore_lsn (the rebuilt offload
 *   point; 0 = none): first the log record "l/<restore_log>" (meta.h),
 *   which must be absent or empty, is written with trim = restore_lsn and
 *   epoch = lce = HS_LSN_EPOCH(restore_lsn) (so the first activation takes
 *   a higher epoch and new LSNs follow the restored ones), or is already
 *   exactly that (a retry: nothing was activated on it since); any other
 * log record means the log id is in use (-HS_EDATA, value 0).  Then
 *   the stream record as without the bit: -HS_EEXIST with the existing
 *   log id if the name is taken (the caller compares it with restore_log).
 * STREAM_DELETE (67): u32 n | n * { name }  -> STATUSES (0 or -HS_ENOSTREAM)
 * STREAM_LIST (68): u32 max | u8 flags | name-or-empty prefix
 *   | name-or-empty cursor  -> STREAMS
 *   Names > cursor that start with prefix, in byte order, at most max (0 =
 *   server's page size; the server may return fewer).  flags HS_LIST_INFO
 *   1: include info.  prefix and cursor are u8 len | bytes, len may be 0;
 *   a nonempty cursor is a valid name, a nonempty prefix a valid prefix
 *   (valid characters, not starting with '_').
 * STREAM_INFO (69): u32 n | n * { name }  -> STREAMS (status 0 with info,
 *   or -HS_ENOSTREAM), one entry per name, in order.
 * STREAM_TRIM (70): u32 n | n * { name | pos before }  -> STATUSES
 *   Trim every record before `before` (resolved now; NONE is malformed).
 *   value = the stream's trim point afterwards (every LSN <= it is
 *   trimmed); trimming never moves it back.
 * REDIRECTS: STREAM_INFO, STREAM_TRIM and SUB_CREATE activate the stream,
 *   so an entry whose stream another hs-serve sequences fails with
 *   -HS_EREDIRECT (docs/replication.md §7).  STREAMS and STATUSES entries
 *   have no text, so the reply is then preceded by a RESULT with the
 *   request's id, status -HS_EREDIRECT and message = the sequencer's
 *   address: one per address, in entry order.  A client sends the refused
 *   entries again there; a client that does not expect it sees a RESULT
 *   for its request id before the reply.
 * STREAMS (71): u8 flags | u32 n | n * { i32 status | name | u8 has_info
 *   | info if has_info }
 *   flags HS_LIST_MORE 1 (STREAM_LIST only): more names may follow; send
 *   STREAM_LIST again with cursor = the last name.  has_info is 0 or 1,
 *   and 0 when status != 0.
 * STATUSES (72): u32 n | n * { i32 status | u64 value }   status <= 0.
 *
 * READS
 * -----
 * READ (73): u32 read_id | u32 flags | u32 win_records | u32 win_bytes
 *   | u64 limit | pos from | pos until | name stream
 *   Start read `read_id` (chosen by the client, unique among its open reads
 *   on this connection) of [from, until).  Every position is resolved once,
 *   when the read starts: `tail` is pinned then.  until NONE: without
 *   HS_CREAD_FOLLOW, the tail pinned at the start (hs-cat); with it, no end
 *   (hs-tail).  flags:
 *     HS_CREAD_FOLLOW 1  when caught up, wait for new records instead of
 *                        ending (until is then still honoured)
 *     HS_CREAD_GAPS   2  also report HOLE and BRIDGE gaps; TRIM and
 *                        DATALOSS gaps are reported always, since skipping
 *                        them silently would hide lost data
 *   Other bits are malformed.  (A "pin tail" flag is not needed: a `tail`
 *   position is always pinned when the read starts.)  limit: end after this
 *   many records (0 = none; hs-cat -c N).  win_records, win_bytes: initial
 *   credit (0 = that dimension unlimited); the server never has more
 *   records or payload bytes outstanding than granted (a single run larger
 *   than the byte window is still sent when nothing is outstanding, so a
 *   read cannot stall).  The server answers with DELIVER and READ_GAP
 *   frames carrying READ's request id, in LSN order, never beyond the
 *   released point, and finally READ_END.  An error at start (-HS_ENOSTREAM,
 *   a bad position) is a READ_END at once.
 * DELIVER (74): u32 read_id | u32 nruns | nruns * { u64 first_lsn
 *   | u32 run_len | run }
 *   Runs as RECORDS (proto.h) sends them: clients parse each with
 *   hs_run_parse() and ignore copyset, lng and wave.  HOLE and BRIDGE runs
 *   are never delivered: they become READ_GAP entries.
 * READ_GAP (75): u32 read_id | u32 n | n * { u64 lo | u64 hi | u8 kind }
 *   [lo, hi] inclusive, 0 < lo <= hi; kind is enum hs_fmt_gap_kind
 *   (format.h) with the same values: HOLE 1 (never acknowledged), BRIDGE 2
 *   (the rest of an epoch), TRIM 3 (trimmed), DATALOSS 4 (every copy lost,
 *   proved by an f-majority).  Other kinds are malformed.
 * READ_WINDOW (76): u32 read_id | u32 add_records | u32 add_bytes
 *   Client -> serve, no reply: grant more credit.  Credit for an unknown or
 *   ended read is ignored.
 * READ_END (77): u32 read_id | i32 status | u64 next_lsn
 *   The read is over; no more frames for read_id follow and the id may be
 *   reused.  status 0: until, limit or the pinned tail was reached;
 *   -ECANCELED after READ_CANCEL; else the error (-HS_ENOSTREAM stream
 *   deleted, -HS_EUNAVAIL, -HS_ELOCKED subscription in use, ...).
 *   A READ/SUBSCRIBE refused with -HS_EREDIRECT (another hs-serve
 *   sequences the stream) gets a RESULT (the READ's request id, status
 *   -HS_EREDIRECT, message = the sequencer's address) just before READ_END
 *   -HS_EREDIRECT; the client reads again there.
 *   next_lsn: the LSN after the last record or gap sent, where a new read
 *   would resume (0 if nothing was sent and the start was not resolved).
 * READ_CANCEL (78): u32 read_id  - client -> serve; answered by READ_END.
 *
 * SUBSCRIPTIONS (DESIGN §7)
 * -------------
 * sub info (variable): name stream | u32 ack_timeout_ms | u32 max_unacked
 *   | u64 checkpoint | u64 delivered | u32 unacked | u32 consumers
 *   checkpoint: every LSN < checkpoint is acknowledged (gaps count as
 *   acked); delivered: highest LSN delivered (0 none); unacked: records
 *   delivered and not acked; consumers: attached SUBSCRIBE sessions (0/1).
 * SUB_CREATE (79): u32 n | n * { name sub | name stream | pos from
 *   | u32 ack_timeout_ms | u32 max_unacked }  -> STATUSES
 *   0 (value = the resolved checkpoint LSN), -HS_EEXIST, -HS_ENOSTREAM.
 *   ack_timeout_ms, max_unacked 0 = server default.  from NONE = tail.
 * SUB_DELETE (80): u32 n | n * { name sub }  -> STATUSES (0 or -HS_ENOENT)
 * SUB_LIST (81): u32 max | u8 flags | name-or-empty stream
 *   | name-or-empty cursor  -> SUBS
 *   As STREAM_LIST over subscription names; a nonempty stream lists only
 *   that stream's subscriptions.  flags HS_LIST_INFO.
 * SUB_INFO (82): u32 n | n * { name sub }  -> SUBS (0 or -HS_ENOENT)
 * SUBS (83): u8 flags | u32 n | n * { i32 status | name sub | u8 has_info
 *   | sub info if has_info }   As STREAMS.
 * SUBSCRIBE (84): u32 read_id | u32 flags | u32 win_records
 *   | u32 win_bytes | name sub
 *   Push the subscription's records from its checkpoint as DELIVER and
 *   READ_GAP frames with READ's semantics for read_id, credit, READ_WINDOW
 *   and READ_CANCEL; flags HS_CREAD_GAPS only.  Never ends by itself.
 *   Records not acked within ack_timeout_ms are delivered again (such a
 *   run may have lower LSNs than runs sent before it); nothing new is sent
 *   while max_unacked records are unacked.  One session at a time: a second
 *   SUBSCRIBE gets READ_END -HS_ELOCKED.
 * ACK (85): name sub | u32 n | n * { u64 lo | u64 hi }  -> RESULT
 *   Acknowledge the inclusive LSN ranges (0 < lo <= hi), from any
 *   connection.  The checkpoint advances over contiguous acked ranges and
 *   is persisted by the server (checkpoints survive restarts).  Acks of
 *   LSNs not delivered are ignored.  RESULT 0, or -HS_ENOENT.
 *
 * ADMIN
 * -----
 * ADMIN_STATS (86): u8 scopes | name-or-empty prefix  -> ADMIN_STATSREPLY
 *   scopes: HS_STATS_SERVE 1, HS_STATS_STREAMS 2, HS_STATS_PEERS 4 (0 =
 *   all); prefix restricts stream scopes to names with that prefix.
 * ADMIN_STATSREPLY (87): u32 n | n * { u8 scope_len | scope | u8 key_len
 *   | key | u16 val_len | val }
 *   scope "serve", "stream/<name>" or "peer/<node id>"; key lowercase
 *   [a-z0-9_]; val text (counters in decimal).  scope and key nonempty.
 *   hs-admin prints "scope key val" lines or JSON.
 * CLUSTER_STATUS (88): empty  -> CLUSTER_STATUSREPLY
 * CLUSTER_STATUSREPLY (89): u64 cluster_id | u8 healthy | u8 replication
 *   | u16 0 | u32 streams_active | u32 n | n * peer | u32 m | m * cstream
 *   healthy 1: the metadata registers and the default replication have a
 *   quorum of UP peers (hs-admin cluster status --wait-healthy polls it).
 *   streams_active: the streams this server sequences (in memory and
 *   activating, recovering or active); the m <= HS_STATUS_STREAMS_MAX of
 *   them listed are the most recently used first.
 *   peer: u32 node_id | u8 state | u8 flags | u16 0 | u64 pending_bytes
 *     | u64 connects | u64 losses | i32 last_error | u64 last_error_ms
 *     | u8 addr_len | addr
 *     state HS_PEER_UP 1, DOWN 2, STARTING 3 (a local peer being
 *     (re)started), DRAINING 4; flags HS_PEERF_DATA 1: its node id is
 *     usable for data (nonzero and unique among the links); node_id 0:
 *     not known yet (no HELLO); pending_bytes: queued to it and not yet
 *     sent; connects, losses: connection attempts, lost links;
 *     last_error: the code (err.h, <= 0) of the link's last failure,
 *     0 none, and last_error_ms its wall-clock time in unix ms (0 none);
 *     both stay after the link comes back.  Other states or flags are
 *     malformed.
 *   cstream: name | u8 state | u8 r | u8 nn | u8 0 | u32 epoch | u32 lce
 *     | u64 released | u64 tail | u64 trim | nn * u32 node_id
 *     state HS_CSTREAM_ACTIVE 1, RECOVERING 2 (its epoch is taken and
 *     older epochs are being sealed and recovered), WAITING 3 (for R
 *     peers of a nodeset, or for the epoch register); epoch, lce, r, nn,
 *     node ids, released (= LNG): as in info above; tail: the next LSN;
 *     trim: the Tier1 trim point.  Fields not known yet in a state are 0.
 *     Other states, r > nn or nn > HS_INFO_NODESET_MAX are malformed.
 *
 * TIER2 (DESIGN §8; the manifest format is libpaxos/manifest.h)
 * -----
 * tier info (variable): u64 log | u64 limit | u64 released
 *   | u64 tier1_trim | u32 epoch | u32 lce | u32 man_len | man
 *   released: the stream's last released LSN (0 none).  limit: the last
 *   LSN that may be offloaded: released, and in an epoch that is clean
 *   (<= lce) or the active sequencer's current one (whose released prefix
 *   is final); an older epoch still being recovered stops it.  tier1_trim:
 *   the log's trim point (LSNs <= it are gone from Tier1).  epoch: the
 *   active epoch; lce: the log's last clean epoch.  man: the register
 *   value "t/<log>" as stored (manifest.h; man_len 0 = nothing offloaded),
 *   at most HS_REG_VALUE_MAX bytes.
 * TIER_INFO (90): u32 n | n * { name }  -> TIER_INFOS
 * TIER_INFOS (91): u32 n | n * { i32 status | name | u8 has_info
 *   | tier info if has_info }   One per name, in order; status 0,
 *   -HS_ENOSTREAM or -HS_EREDIRECT (below); has_info 0 when status != 0.
 * REDIRECTS: TIER_INFO and TIER_PUBLISH activate the stream as
 *   STREAM_INFO does: an entry whose stream another hs-serve sequences
 *   fails with -HS_EREDIRECT and the reply is preceded by a RESULT
 *   -HS_EREDIRECT naming the sequencer (as in STREAM ADMIN above).
 *   STREAM_ALTER changes the stream record only and is never redirected.
 * TIER_PUBLISH (92): u32 n | n * { name | u64 log | u8 op | u8 0 | u16 0
 *   | op body }  -> STATUSES (value = the offload point afterwards)
 *   One checked change of the manifest register "t/<log>" each
 *   (libpaxos/manifest.h hs_man_publish/fold/expire), idempotent:
 *     op 1 PUBLISH, body = one entry (96 bytes): a verified segment;
 *       raises the offload point to its last LSN.  -HS_EDATA if it is not
 *       contiguous with the offload point (or the Tier1 trim point),
 *       -HS_ENOTRELEASED if it ends beyond the tier info's limit.
 *     op 2 FOLD, body = one ref (80 bytes): the first ref.nentries
 *       entries now live in that manifest object.
 *     op 3 EXPIRE, body = u64 lsn: retention dropped every segment wholly
 *       <= lsn (lsn must end a segment or folded object).
 *     op 4 RESTORE, body = u32 len | len bytes: a whole register value
 *       (len <= HS_REG_VALUE_MAX) rebuilt from the bucket by hs-offload
 *       --rebuild; it replaces the register only when the register is
 *       empty or its offload point is lower (hs_man_restore), else no-op.
 *       -HS_EDATA if the value does not decode.
 *   log must be the stream's current log id (else -HS_ENOSTREAM, so a
 *   stream deleted and created again is never published into).  Other op
 *   values or body sizes are malformed.
 * STREAM_ALTER (93): u32 n | n * { name | attrs }  -> STATUSES
 *   Change the masked attributes of an existing stream (value = its log
 *   id).  Only HS_ATTR_RETENTION, HS_ATTR_OFFLOAD and HS_ATTR_OFFLOAD_SIZE
 *   can change (-HS_EUSAGE for others); -HS_ENOSTREAM if it does not
 *   exist.
 *
 * 94..95 are free.
 */
#ifndef HS_PROTO_CLIENT_H
#define HS_PROTO_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "parse.h" /* enum hs_durability */
#include "pos.h"
#include "proto.h"
#include "run.h"
#include "wire.h"

enum hs_cmsg {
	HS_MSG_APPEND = 64,
	HS_MSG_APPENDED = 65,
	HS_MSG_STREAM_CREATE = 66,
	HS_MSG_STREAM_DELETE = 67,
	HS_MSG_STREAM_LIST = 68,
	HS_MSG_STREAM_INFO = 69,
	HS_MSG_STREAM_TRIM = 70,
	HS_MSG_STREAMS = 71,
	HS_MSG_STATUSES = 72,
	HS_MSG_READ = 73,
	HS_MSG_DELIVER = 74,
	HS_MSG_READ_GAP = 75,
	HS_MSG_READ_WINDOW = 76,
	HS_MSG_READ_END = 77,
	HS_MSG_READ_CANCEL = 78,
	HS_MSG_SUB_CREATE = 79,
	HS_MSG_SUB_DELETE = 80,
	HS_MSG_SUB_LIST = 81,
	HS_MSG_SUB_INFO = 82,
	HS_MSG_SUBS = 83,
	HS_MSG_SUBSCRIBE = 84,
	HS_MSG_ACK = 85,
	HS_MSG_ADMIN_STATS = 86,
	HS_MSG_ADMIN_STATSREPLY = 87,
	HS_MSG_CLUSTER_STATUS = 88,
	HS_MSG_CLUSTER_STATUSREPLY = 89,
	HS_MSG_TIER_INFO = 90,
	HS_MSG_TIER_INFOS = 91,
	HS_MSG_TIER_PUBLISH = 92,
	HS_MSG_STREAM_ALTER = 93,
};

/* Wire-only position kind: "no position" (struct hs_pos.kind == 0). */
#define HS_POS_NONE 0
#define HS_POS_WIRE 9                 /* bytes of an encoded position */
#define HS_NAME_MAX 255
/* Suggested server default for the largest record payload. */
#define HS_RECORD_MAX_DEFAULT (1u << 20)

enum { HS_APPEND_CREATE = 1 };
enum { HS_ATTR_REPLICATION = 1, HS_ATTR_RETENTION = 2, HS_ATTR_OFFLOAD = 4,
       HS_ATTR_DURABILITY = 8, HS_ATTR_OFFLOAD_SIZE = 16, HS_ATTR_ALL = 31,
       HS_ATTR_RESTORE = 32 /* STREAM_CREATE only: not in HS_ATTR_ALL */ };
enum { HS_LIST_INFO = 1 };            /* STREAM_LIST, SUB_LIST flags */
enum { HS_LIST_MORE = 1 };            /* STREAMS, SUBS flags */
enum { HS_CREAD_FOLLOW = 1, HS_CREAD_GAPS = 2 };
enum { HS_STATS_SERVE = 1, HS_STATS_STREAMS = 2, HS_STATS_PEERS = 4 };
enum hs_peer_state { HS_PEER_UP = 1, HS_PEER_DOWN, HS_PEER_STARTING, HS_PEER_DRAINING };
enum { HS_PEERF_DATA = 1 };           /* CLUSTER_STATUSREPLY peer flags */
enum hs_cstream_state { HS_CSTREAM_ACTIVE = 1, HS_CSTREAM_RECOVERING, HS_CSTREAM_WAITING };
#define HS_INFO_NODESET_MAX 32        /* = HS_NODESET_MAX (libpaxos/meta.h) */
#define HS_STATUS_STREAMS_MAX 1000    /* cstreams in one CLUSTER_STATUSREPLY */
enum { HS_TIER_OP_PUBLISH = 1, HS_TIER_OP_FOLD = 2, HS_TIER_OP_EXPIRE = 3,
       HS_TIER_OP_RESTORE = 4 };
#define HS_TIER_ENTRY_WIRE 96         /* = HS_MAN_ENTRY_LEN (manifest.h) */
#define HS_TIER_REF_WIRE 80           /* = HS_MAN_REF_LEN */

/*
 * 1 if p[0..n) is a valid stream or subscription name: 1..255 bytes of
 * [A-Za-z0-9._-], not starting with '_'; else 0.  p may be NULL if n is 0.
 */
int hs_stream_name_valid(const char *p, size_t n);
/* The same rule for a prefix: may also be empty (n == 0). */
int hs_stream_prefix_valid(const char *p, size_t n);

/* Name of a type in 64..95 ("APPEND", ...), or "?"; static storage.
 * hs_msg_name() (proto.h) defers to it. */
const char *hs_msg_client_name(uint16_t type);

/* 0 if parsed run r fits APPEND (flags 0, empty copyset, lng 0, wave 0),
 * else -HS_EPROTO. */
int hs_append_run_check(const struct hs_run *r);

/* ---- shared pieces ---------------------------------------------------- */

struct hs_stream_attrs {
	uint32_t mask;             /* HS_ATTR_*: which fields are set */
	uint8_t replication;       /* 1..HS_RUN_COPYSET_MAX */
	uint8_t durability;        /* enum hs_durability */
	uint64_t retention_ms;     /* 0 = forever */
	uint64_t offload_after_ms; /* 0 = never */
	uint64_t offload_size;     /* bytes; 0 = no size trigger */
	uint64_t restore_log;      /* HS_ATTR_RESTORE: the log id to take */
	uint64_t restore_lsn;      /* HS_ATTR_RESTORE: Tier1 starts after it */
};

struct hs_stream_info {
	uint64_t log;
	struct hs_stream_attrs attrs;
	uint64_t head, tail, trim, tier1_trim, offload;
	uint64_t records, bytes;   /* UINT64_MAX = unknown */
	uint64_t created_ms;
	/* replication (0 when the stream is not active on that server) */
	uint64_t released;         /* last released LSN = the live epoch's LNG */
	uint32_t epoch, lce;
	uint8_t r, nn;             /* live epoch's R; nodeset size */
	uint32_t nodes[HS_INFO_NODESET_MAX]; /* nodeset node ids, nn used */
	/* Tier2 */
	uint64_t tier2_expired;
	uint32_t tier2_segments;
};

struct hs_sub_info {
	const char *stream;        /* borrowed */
	uint8_t stream_len;
	uint32_t ack_timeout_ms, max_unacked;
	uint64_t checkpoint, delivered;
	uint32_t unacked, consumers;
};

/* Append the 9-byte wire form of p (kind HS_POS_NONE allowed). */
void hs_pos_wr(struct hs_buf *b, const struct hs_pos *p);
/* Read a position; -HS_EPROTO for a bad one, or NONE when !none_ok.
 * Sets r->err on underflow (and returns it). */
int hs_pos_rd(struct hs_rd *r, struct hs_pos *p, bool none_ok);

/* ---- single messages ---------------------------------------------------
 * enc appends one whole frame to b (strings borrowed for the call; names
 * must be valid - the encoder does not check); dec fills the struct from a
 * frame body (pointers borrow the body) and returns 0 or -HS_EPROTO,
 * refusing truncation and trailing bytes. */

struct hs_cread {                  /* READ */
	uint32_t read_id, flags, win_records, win_bytes;
	uint64_t limit;
	struct hs_pos from, until; /* until may be HS_POS_NONE */
	const char *stream;
	uint8_t stream_len;
};
struct hs_read_window {            /* READ_WINDOW */
	uint32_t read_id, add_records, add_bytes;
};
struct hs_read_end {               /* READ_END */
	uint32_t read_id;
	int32_t status;
	uint64_t next_lsn;
};
struct hs_read_cancel {            /* READ_CANCEL */
	uint32_t read_id;
};
struct hs_subscribe {              /* SUBSCRIBE */
	uint32_t read_id, flags, win_records, win_bytes;
	const char *sub;
	uint8_t sub_len;
};
/* STREAM_LIST and SUB_LIST; filter is the prefix (STREAM_LIST) or the
 * stream (SUB_LIST); filter and cursor may be empty. */
struct hs_list_req {
	uint32_t max;
	uint8_t flags;             /* HS_LIST_INFO */
	const char *filter, *cursor;
	uint8_t filter_len, cursor_len;
};
struct hs_admin_stats {            /* ADMIN_STATS */
	uint8_t scopes;            /* HS_STATS_*, 0 = all */
	const char *prefix;
	uint8_t prefix_len;
};

void hs_msg_read_enc(struct hs_buf *b, uint64_t id, const struct hs_cread *m);
int hs_msg_read_dec(const uint8_t *body, size_t len, struct hs_cread *m);
void hs_msg_read_window_enc(struct hs_buf *b, uint64_t id, const struct hs_read_window *m);
int hs_msg_read_window_dec(const uint8_t *body, size_t len, struct hs_read_window *m);
void hs_msg_read_end_enc(struct hs_buf *b, uint64_t id, const struct hs_read_end *m);
int hs_msg_read_end_dec(const uint8_t *body, size_t len, struct hs_read_end *m);
void hs_msg_read_cancel_enc(struct hs_buf *b, uint64_t id, const struct hs_read_cancel *m);
int hs_msg_read_cancel_dec(const uint8_t *body, size_t len, struct hs_read_cancel *m);
void hs_msg_subscribe_enc(struct hs_buf *b, uint64_t id, const struct hs_subscribe *m);
int hs_msg_subscribe_dec(const uint8_t *body, size_t len, struct hs_subscribe *m);
void hs_msg_stream_list_enc(struct hs_buf *b, uint64_t id, const struct hs_list_req *m);
int hs_msg_stream_list_dec(const uint8_t *body, size_t len, struct hs_list_req *m);
void hs_msg_sub_list_enc(struct hs_buf *b, uint64_t id, const struct hs_list_req *m);
int hs_msg_sub_list_dec(const uint8_t *body, size_t len, struct hs_list_req *m);
void hs_msg_admin_stats_enc(struct hs_buf *b, uint64_t id, const struct hs_admin_stats *m);
int hs_msg_admin_stats_dec(const uint8_t *body, size_t len, struct hs_admin_stats *m);
void hs_msg_cluster_status_enc(struct hs_buf *b, uint64_t id);
int hs_msg_cluster_status_dec(const uint8_t *body, size_t len);

/* ---- list messages -----------------------------------------------------
 * Written with struct hs_msg_wr (proto.h): <type>_begin, one add per entry,
 * hs_msg_wr_end().  Read with hs_msg_clist_dec(), which validates the whole
 * body (header, every entry, no trailing bytes) and returns 0 or
 * -HS_EPROTO; then the typed _next() returns one entry per call (1, or 0
 * at the end) without further checks.  A _next() must match the list's
 * type (it returns 0 otherwise).  Entry pointers borrow the body. */

struct hs_clist {
	uint16_t type;             /* HS_MSG_* */
	uint32_t n;                /* entries */
	/* Header fields, by type: */
	uint32_t read_id;          /* DELIVER, READ_GAP */
	uint8_t flags;             /* STREAMS, SUBS: HS_LIST_MORE */
	const char *sub;           /* ACK */
	uint8_t sub_len;
	uint64_t cluster_id;       /* CLUSTER_STATUSREPLY ... */
	uint8_t healthy, replication;
	uint32_t streams_active;
	uint32_t nstreams;         /* ... its cstream entries (after the peers) */
	/* private */
	struct hs_rd rd;
	uint32_t left, sleft;
	int in_streams;
};

/* Decode a body of a list type (APPEND, APPENDED, STREAM_CREATE,
 * STREAM_DELETE, STREAM_INFO, STREAM_TRIM, STREAMS, STATUSES, DELIVER,
 * READ_GAP, SUB_CREATE, SUB_DELETE, SUB_INFO, SUBS, ACK, ADMIN_STATSREPLY,
 * CLUSTER_STATUSREPLY, TIER_INFO, TIER_INFOS, TIER_PUBLISH, STREAM_ALTER);
 * -HS_EPROTO for another type. */
int hs_msg_clist_dec(uint16_t type, const uint8_t *body, size_t len, struct hs_clist *l);

/* APPEND */
struct hs_append_ent {
	const char *stream;
	uint8_t stream_len;
	uint32_t flags;            /* HS_APPEND_* */
	const uint8_t *run;        /* run_len bytes; validate with hs_run_parse */
	uint32_t run_len;
};
void hs_msg_append_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id);
/* Entry header; then build exactly one run on w->b (hs_run_begin(&rb,
 * w->b, 0, 0, 0, NULL, 0), hs_run_add..., hs_run_end) and call
 * hs_msg_wr_run_close(w). */
void hs_msg_append_run_open(struct hs_msg_wr *w, const char *stream, uint8_t stream_len,
			    uint32_t flags);
/* Whole entry, copying run[0..len). */
void hs_msg_append_run(struct hs_msg_wr *w, const char *stream, uint8_t stream_len,
		       uint32_t flags, const void *run, size_t len);
int hs_append_next(struct hs_clist *l, struct hs_append_ent *e);

/* APPENDED */
struct hs_appended_ent {
	int32_t status;
	uint64_t first_lsn;
	uint32_t count, detail;
	const char *text;          /* not NUL-terminated */
	uint16_t text_len;
};
void hs_msg_appended_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id);
void hs_msg_appended_add(struct hs_msg_wr *w, const struct hs_appended_ent *e);
int hs_appended_next(struct hs_clist *l, struct hs_appended_ent *e);

/* STREAM_DELETE, STREAM_INFO, SUB_DELETE, SUB_INFO: lists of names. */
struct hs_name_ent {
	const char *name;
	uint8_t name_len;
};
void hs_msg_stream_delete_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id);
void hs_msg_stream_info_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id);
void hs_msg_sub_delete_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id);
void hs_msg_sub_info_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id);
void hs_msg_name_add(struct hs_msg_wr *w, const char *name, uint8_t name_len);
int hs_name_next(struct hs_clist *l, struct hs_name_ent *e);

/* STREAM_CREATE (and STREAM_ALTER) */
struct hs_create_ent {
	const char *stream;
	uint8_t stream_len;
	struct hs_stream_attrs attrs;
};
void hs_msg_stream_create_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id);
void hs_msg_stream_create_add(struct hs_msg_wr *w, const char *stream, uint8_t stream_len,
			      const struct hs_stream_attrs *attrs);
int hs_create_next(struct hs_clist *l, struct hs_create_ent *e);

/* STREAM_TRIM */
struct hs_trim_ent {
	const char *stream;
	uint8_t stream_len;
	struct hs_pos before;
};
void hs_msg_stream_trim_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id);
void hs_msg_stream_trim_add(struct hs_msg_wr *w, const char *stream, uint8_t stream_len,
			    const struct hs_pos *before);
int hs_trim_next(struct hs_clist *l, struct hs_trim_ent *e);

/* STREAMS (info NULL = has_info 0) */
struct hs_streams_ent {
	int32_t status;
	const char *stream;
	uint8_t stream_len;
	uint8_t has_info;
	struct hs_stream_info info; /* zero unless has_info */
};
void hs_msg_streams_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id, uint8_t flags);
void hs_msg_streams_add(struct hs_msg_wr *w, int32_t status, const char *stream,
			uint8_t stream_len, const struct hs_stream_info *info);
int hs_streams_next(struct hs_clist *l, struct hs_streams_ent *e);

/* STATUSES */
struct hs_status_ent {
	int32_t status;
	uint64_t value;
};
void hs_msg_statuses_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id);
void hs_msg_statuses_add(struct hs_msg_wr *w, int32_t status, uint64_t value);
int hs_statuses_next(struct hs_clist *l, struct hs_status_ent *e);

/* DELIVER: runs as RECORDS (proto.h); _run_open then build the run on w->b
 * and hs_msg_wr_run_close(w), or _run to copy one. */
struct hs_deliver_ent {
	uint64_t first_lsn;
	const uint8_t *run;
	uint32_t run_len;
};
void hs_msg_deliver_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id, uint32_t read_id);
void hs_msg_deliver_run_open(struct hs_msg_wr *w, uint64_t first_lsn);
void hs_msg_deliver_run(struct hs_msg_wr *w, uint64_t first_lsn, const void *run, size_t len);
int hs_deliver_next(struct hs_clist *l, struct hs_deliver_ent *e);

/* READ_GAP (kind: enum hs_fmt_gap_kind values) */
struct hs_cgap_ent {
	uint64_t lo, hi;
	uint8_t kind;
};
void hs_msg_read_gap_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id, uint32_t read_id);
void hs_msg_read_gap_add(struct hs_msg_wr *w, uint64_t lo, uint64_t hi, uint8_t kind);
int hs_read_gap_next(struct hs_clist *l, struct hs_cgap_ent *e);

/* SUB_CREATE */
struct hs_subcreate_ent {
	const char *sub, *stream;
	uint8_t sub_len, stream_len;
	struct hs_pos from;        /* may be HS_POS_NONE (= tail) */
	uint32_t ack_timeout_ms, max_unacked;
};
void hs_msg_sub_create_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id);
void hs_msg_sub_create_add(struct hs_msg_wr *w, const struct hs_subcreate_ent *e);
int hs_sub_create_next(struct hs_clist *l, struct hs_subcreate_ent *e);

/* SUBS (info NULL = has_info 0) */
struct hs_subs_ent {
	int32_t status;
	const char *sub;
	uint8_t sub_len;
	uint8_t has_info;
	struct hs_sub_info info;   /* zero unless has_info */
};
void hs_msg_subs_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id, uint8_t flags);
void hs_msg_subs_add(struct hs_msg_wr *w, int32_t status, const char *sub, uint8_t sub_len,
		     const struct hs_sub_info *info);
int hs_subs_next(struct hs_clist *l, struct hs_subs_ent *e);

/* ACK: header is the subscription (l->sub); entries are ranges. */
struct hs_lsn_range {
	uint64_t lo, hi;           /* inclusive */
};
void hs_msg_ack_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id, const char *sub,
		      uint8_t sub_len);
void hs_msg_ack_add(struct hs_msg_wr *w, uint64_t lo, uint64_t hi);
int hs_ack_next(struct hs_clist *l, struct hs_lsn_range *e);

/* ADMIN_STATSREPLY: scope and key are NUL-terminated (<= 255 bytes, cut
 * otherwise), val too (<= 65535). */
struct hs_kv_ent {
	const char *scope, *key, *val; /* not NUL-terminated when decoded */
	uint8_t scope_len, key_len;
	uint16_t val_len;
};
void hs_msg_admin_statsreply_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id);
void hs_msg_kv_add(struct hs_msg_wr *w, const char *scope, const char *key, const char *val);
/* val in decimal. */
void hs_msg_kv_addu(struct hs_msg_wr *w, const char *scope, const char *key, uint64_t val);
int hs_kv_next(struct hs_clist *l, struct hs_kv_ent *e);

/* CLUSTER_STATUSREPLY: begin, hs_msg_peer_add() per peer, then
 * hs_msg_cstreams_open() once (always, even with no stream), then
 * hs_msg_cstream_add() per stream, then hs_msg_wr_end().  Reading:
 * hs_peer_next() gives the peers (l->n of them), hs_cstream_next() the
 * streams (l->nstreams); calling it first skips the peers. */
struct hs_peer_ent {
	uint32_t node_id;
	uint8_t state;             /* enum hs_peer_state */
	uint8_t flags;             /* HS_PEERF_* */
	uint64_t pending_bytes, connects, losses;
	int32_t last_error;        /* 0 none */
	uint64_t last_error_ms;    /* unix ms, 0 none */
	const char *addr;
	uint8_t addr_len;
};
struct hs_cstream_ent {
	const char *stream;
	uint8_t stream_len;
	uint8_t state;             /* enum hs_cstream_state */
	uint8_t r, nn;
	uint32_t epoch, lce;
	uint64_t released, tail, trim;
	uint32_t nodes[HS_INFO_NODESET_MAX];
};
void hs_msg_cluster_statusreply_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id,
				      uint64_t cluster_id, uint8_t healthy, uint8_t replication,
				      uint32_t streams_active);
void hs_msg_peer_add(struct hs_msg_wr *w, const struct hs_peer_ent *e);
void hs_msg_cstreams_open(struct hs_msg_wr *w);
void hs_msg_cstream_add(struct hs_msg_wr *w, const struct hs_cstream_ent *e);
int hs_peer_next(struct hs_clist *l, struct hs_peer_ent *e);
int hs_cstream_next(struct hs_clist *l, struct hs_cstream_ent *e);

/* TIER_INFO: a list of names (hs_msg_name_add, hs_name_next). */
void hs_msg_tier_info_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id);

/* TIER_INFOS (info NULL = has_info 0) */
struct hs_tier_info {
	uint64_t log, limit, released, tier1_trim;
	uint32_t epoch, lce;
	const uint8_t *man;        /* man_len bytes (borrowed); manifest.h */
	uint32_t man_len;
};
struct hs_tier_infos_ent {
	int32_t status;
	const char *stream;
	uint8_t stream_len;
	uint8_t has_info;
	struct hs_tier_info info;  /* zero unless has_info */
};
void hs_msg_tier_infos_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id);
void hs_msg_tier_infos_add(struct hs_msg_wr *w, int32_t status, const char *stream,
			   uint8_t stream_len, const struct hs_tier_info *info);
int hs_tier_infos_next(struct hs_clist *l, struct hs_tier_infos_ent *e);

/* TIER_PUBLISH: body is the op's body (an entry, a ref or a u64 lsn as
 * encoded by libpaxos/manifest.h; borrowed), checked for its size; for
 * RESTORE it is the register value (the u32 length before it on the wire
 * is written and read by the codec). */
struct hs_tier_pub_ent {
	const char *stream;
	uint8_t stream_len;
	uint64_t log;
	uint8_t op;                /* HS_TIER_OP_* */
	const uint8_t *body;
	uint32_t body_len;
};
void hs_msg_tier_publish_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id);
void hs_msg_tier_publish_add(struct hs_msg_wr *w, const struct hs_tier_pub_ent *e);
int hs_tier_pub_next(struct hs_clist *l, struct hs_tier_pub_ent *e);

/* STREAM_ALTER: entries as STREAM_CREATE: add them with
 * hs_msg_stream_create_add(), read them with hs_create_next(). */
void hs_msg_stream_alter_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id);

#endif
