/*
 * store.h - the Tier1 log store on RocksDB (DESIGN.md §6), owned by hs-peer.
 *
 * A store is one RocksDB directory holding runs (libcore/run.h, the RUNS
 * layout in proto.h) keyed by (log, first LSN), cut into time partitions
 * (one column family each) so whole partitions behind every log's trim point
 * can be dropped in O(1), plus per-log metadata (seal, soft seal, last clean
 * epoch, released, trim, max LSN) and the acceptor states of the metadata
 * registers.  The byte-level format is described at the
 * top of store.c.
 *
 * Usage from a single-threaded event loop (the store is not thread-safe):
 * every STORE/SEAL/RELEASE/TRIM of one loop turn is *staged* (hs_store_stage_*)
 * into one RocksDB WriteBatch; hs_store_commit() writes it with one WAL sync;
 * then the caller replies.  Staged effects on the per-log metadata are
 * visible at once to later staging calls and to hs_store_meta(), but are
 * durable only after hs_store_commit() returns 0 - except the released
 * point, which a commit does not write by itself (see struct hs_log_meta).
 * Reads (iterators, hs_store_epoch_info) see committed data only.
 *
 * Failure model: a failed write (an fsync error puts RocksDB into its
 * background-error state) makes the store permanently failed: that commit and
 * every later staging or commit call return -HS_ESTOREFAIL (the failing
 * commit itself returns -HS_ENOSPC when the disk is full), and
 * hs_store_failed() gives the text.  The in-memory metadata may then be
 * ahead of the disk, so the caller must stop acknowledging and exit.
 */
#ifndef HS_STORE_H
#define HS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "parse.h" /* enum hs_durability; 0 in the options means sync */

struct hs_store_opts {
	const char *dir;             /* borrowed during open; created if missing */
	enum hs_durability durability;
	uint64_t partition_ms;       /* roll partitions after this age; 0 = 15 min */
	uint64_t partition_bytes;    /* ... or after this many bytes; 0 = 1 GiB */
	size_t cache_bytes;          /* shared block cache; 0 = 64 MiB */
};

struct hs_store;
struct hs_store_iter;

/*
 * Per-log metadata.  seal, soft_seal, lce and trim are durable with the
 * commit that raised them.  max_lsn is durable with the runs: after a
 * restart it is found again from the stored runs (it may then be lower
 * only if runs above it were deleted by CLEAN or TRIM - which write it
 * down).  released is kept in memory: it is written with the log's next
 * seal/lce/trim/CLEAN change and at hs_store_close(); after a crash it
 * is the larger of its last written value and the LNG carried by the
 * log's last stored run (proto.h): it may go back, never below a point
 * that was really released.
 */
struct hs_log_meta {
	uint32_t seal;      /* hard seal epoch: runs of epoch <= seal refused */
	uint32_t soft_seal; /* soft seal epoch: same refusal, set without fsync need */
	uint32_t lce;       /* last clean epoch */
	uint64_t released;  /* last released LSN (see above) */
	uint64_t trim;      /* every LSN <= trim is trimmed */
	uint64_t max_lsn;   /* highest LSN stored (see above) */
};

/* Open (creating if needed, with parent directories) the store in o->dir.
 * On success *out is an owned handle (free with hs_store_close) and 0 is
 * returned.  Errors (each logged with RocksDB's text): -HS_ECREATE when the
 * directory cannot be created or written, -HS_ELOCKED when another process
 * has it open, -HS_EIO for a corrupt database or another I/O error,
 * -HS_ENOSPC, -HS_ECONFIG for bad options. */
int hs_store_open(const struct hs_store_opts *o, struct hs_store **out);

/* Close the store.  Staged, uncommitted changes are discarded; when nothing
 * is staged, the released points held only in memory are written first
 * (synced; a failure is logged and ignored).  Every iterator must have been
 * freed before.  NULL is a no-op. */
void hs_store_close(struct hs_store *s);

/* Copy log's metadata (staged changes included) into *out; all zeroes for a
 * log never seen.  The first call for a log since open reads its 'L' record
 * and the end of its runs (a few point reads and seeks).  Returns 0,
 * -HS_EIO (read error) or -HS_ECHECKSUM (a stored metadata record is
 * corrupt). */
int hs_store_meta(struct hs_store *s, uint64_t log, struct hs_log_meta *out);

/* Stage one run (len bytes at run, copied into the batch; the caller keeps
 * ownership) of log at first_lsn in the current partition.  The run is
 * verified (hs_run_parse).  Refusals, which stage nothing:
 *   -HS_EPROTO / -HS_ECHECKSUM  malformed run; epoch or esn of first_lsn is 0;
 *                               or the run crosses an epoch boundary;
 *   -HS_ESEALED                 a normal run with epoch(first_lsn) <=
 *                               max(seal, soft_seal), or a RECOVERY run whose
 *                               ballot (wave field) < seal.
 * An accepted RECOVERY run raises the seal to its ballot, an accepted normal
 * run of epoch E the soft seal to E - 1.  max_lsn grows to
 * the run's last LSN.  A run at the same (log, first_lsn) as a stored one
 * replaces it.  -HS_ESTOREFAIL when the store has failed.  0 on success. */
int hs_store_stage_run(struct hs_store *s, uint64_t log, uint64_t first_lsn,
		       const uint8_t *run, size_t len);

/* Raise the seal (soft != 0: the soft seal) of log to epoch; never lowers.
 * Returns 0, -HS_ESTOREFAIL, or a meta read error (see hs_store_meta). */
int hs_store_stage_seal(struct hs_store *s, uint64_t log, uint32_t epoch, int soft);

/* Raise the last released LSN; never lowers.  Writes nothing by itself
 * (struct hs_log_meta): a commit of only RELEASEs writes no batch.  Errors
 * as stage_seal. */
int hs_store_stage_release(struct hs_store *s, uint64_t log, uint64_t lsn);

/* Raise the last clean epoch; never lowers.  Errors as stage_seal. */
int hs_store_stage_lce(struct hs_store *s, uint64_t log, uint32_t lce);

/* Raise the trim point (never lowers) and stage range deletions of the runs
 * of log that lie wholly at or below trim in every partition.  A run that
 * starts at or below trim but extends past it is kept: readers skip its
 * trimmed records.  Errors as stage_seal, plus -HS_EIO if a partition cannot
 * be read. */
int hs_store_stage_trim(struct hs_store *s, uint64_t log, uint64_t trim);

/*
 * CLEAN (proto.h, docs/replication.md §5): the recovery of ballot `ballot`
 * finished epoch `epoch` of log with (lng, end] (both 0 for an empty epoch,
 * else LSNs of that epoch, lng <= end).  Stages the log's clean record of
 * that epoch (meta column family, 'C' | log | epoch) and the deletion of
 * the epoch's runs the recovery did not write: runs with first LSN > lng
 * that are not RECOVERY runs of ballot, and every run after end + 1 (the
 * BRIDGE at end + 1 stays); a run starting at or below lng that reaches
 * past it is cut to end at lng.  Runs staged in the current batch are
 * never touched.  A log holding nothing of the epoch just gets the record.
 * *purged (may be NULL) = runs deleted or cut.  Returns 0; -HS_EPROTO for
 * inconsistent arguments; -HS_ESEALED (nothing staged) if ballot < the
 * log's seal or soft seal, or < the ballot of the committed clean record
 * of that epoch (the same ballot again is applied again); -HS_EIO,
 * -HS_ECHECKSUM, -HS_ESTOREFAIL.  The commit carrying it should be synced
 * (the caller's choice, as for a hard seal).
 *
 * hs_store_clean_get: the COMMITTED clean record of (log, epoch): 1 with
 * *ballot, *lng, *end; 0 if none; -HS_EIO, -HS_ECHECKSUM, -HS_ESTOREFAIL.
 */
int hs_store_stage_clean(struct hs_store *s, uint64_t log, uint32_t epoch, uint32_t ballot,
			 uint64_t lng, uint64_t end, uint64_t *purged);
int hs_store_clean_get(struct hs_store *s, uint64_t log, uint32_t epoch, uint32_t *ballot,
		       uint64_t *lng, uint64_t *end);

/*
 * Metadata registers (libpaxos/register.h): hs-peer is an acceptor and keeps
 * each register's persisted acceptor state (hs_reg_acc_enc bytes, opaque
 * here) in the meta column family under 'R' | key.
 *
 * hs_store_reg_get: copy the COMMITTED state of key[0..klen) (1..255 bytes,
 * borrowed) into out (reset first; owned by the caller).  States staged but
 * not yet committed are not seen: a caller that changes a key several times
 * in one batch keeps the latest state itself.  Returns 1 (found), 0 (absent:
 * out is empty), -HS_EDATA (bad klen), -HS_EIO or -HS_ESTOREFAIL.
 *
 * hs_store_stage_reg: stage val[0..len) (copied) as the state of key into
 * the current batch; the last staging of a key in a batch wins.  A commit
 * that carries a register state is fsynced even with HS_DUR_ASYNC
 * (promises and accepts must be durable before the reply; HS_DUR_MEMORY
 * stays unsafe).  Returns 0, -HS_EDATA (bad klen) or -HS_ESTOREFAIL.
 */
int hs_store_reg_get(struct hs_store *s, const uint8_t *key, size_t klen, struct hs_buf *out);
int hs_store_stage_reg(struct hs_store *s, const uint8_t *key, size_t klen, const uint8_t *val,
		       size_t len);

/*
 * hs_store_reg_scan: call fn(arg, key, klen, val, vlen) (all borrowed for
 * the call) for each COMMITTED register state whose key starts with
 * prefix[0..plen) and is greater than after[0..alen) (alen may be 0), in
 * key order, at most max times.  A negative return from fn stops the scan
 * and is returned.  Returns 1 if more keys follow, 0 if not, -HS_EDATA
 * (a bound over 255 bytes), -HS_EIO or -HS_ESTOREFAIL.
 */
int hs_store_reg_scan(struct hs_store *s, const uint8_t *prefix, size_t plen,
		      const uint8_t *after, size_t alen, size_t max,
		      int (*fn)(void *arg, const uint8_t *key, size_t klen, const uint8_t *val,
				size_t vlen),
		      void *arg);

/* For LOCATE: the first LSN in [from, until) of log whose record has a
 * timestamp >= time_ms, in LSN order over committed runs (HOLE/BRIDGE runs
 * and runs failing their checksum are skipped).  *lsn = 0 if none.
 * Returns 0, -HS_EIO or -HS_ESTOREFAIL.  Linear in the records scanned. */
int hs_store_locate(struct hs_store *s, uint64_t log, uint64_t from, uint64_t until,
		    uint64_t time_ms, uint64_t *lsn);

/* Number of runs staged since the last commit (0 = nothing to commit, though
 * metadata changes may be staged: commit anyway when unsure, it is cheap). */
size_t hs_store_staged(const struct hs_store *s);

/* Write everything staged in one batch (nothing is written if nothing is
 * staged), synced per the durability.  Returns 0; -HS_ENOSPC (disk full) or
 * -HS_ESTOREFAIL (any other write error, or failed earlier): the store is
 * then failed for good.  Also rolls to a new partition when one is due. */
int hs_store_commit(struct hs_store *s);

/* As hs_store_commit(), but sync = 0 writes the WAL without fsyncing it
 * whatever the durability (for runs of async streams; hs_store_sync_wal()
 * makes them durable later).  sync = 1 is hs_store_commit().  A commit
 * carrying a register state is fsynced regardless (unless HS_DUR_MEMORY).
 * Returns as hs_store_commit(). */
int hs_store_commit_opts(struct hs_store *s, int sync);

/* Number of commits written but not yet fsynced (0 when every commit since
 * the last sync was synced, and always 0 with HS_DUR_MEMORY). */
uint64_t hs_store_unsynced(const struct hs_store *s);

/* fsync the WAL if a commit since the last sync was not synced
 * (HS_DUR_ASYNC, or hs_store_commit_opts(s, 0)); call from a timer.
 * 0 or -HS_ESTOREFAIL. */
int hs_store_sync_wal(struct hs_store *s);

/* NULL while healthy; otherwise the error text of the failure (owned by the
 * store, valid until hs_store_close). */
const char *hs_store_failed(const struct hs_store *s);

/* Open an iterator over log's committed runs from from_lsn on: the first run
 * returned is the one containing from_lsn if any, else the next one.  Runs
 * wholly at or below the log's trim point are skipped (a run straddling it
 * is returned whole).  The iterator sees the data committed before this
 * call; create a new one to see newer data.  *out is owned (free with
 * hs_store_iter_free).  Returns 0, -HS_EIO or -HS_ESTOREFAIL. */
int hs_store_iter_new(struct hs_store *s, uint64_t log, uint64_t from_lsn,
		      struct hs_store_iter **out);

/* Next run in LSN order across all partitions (where the same first LSN is in
 * two partitions, the newer partition's copy is returned, once).  Returns 1
 * with *first_lsn, *run (borrowed until the next call or free) and *len set;
 * 0 at the end of the log's data; -HS_ECHECKSUM when the run fails its
 * checksum or does not parse: *first_lsn, *run and *len are still set so the
 * caller can report a CHECKSUM gap, and the next call goes on with the next
 * run; -HS_EIO on a read error (the iterator is then finished). */
int hs_store_iter_next(struct hs_store_iter *it, uint64_t *first_lsn,
		       const uint8_t **run, size_t *len);

/* Free an iterator; NULL is a no-op. */
void hs_store_iter_free(struct hs_store_iter *it);

/* For SEALED: does the store hold a committed run of log in epoch?  Returns
 * 1 and sets *max_lsn (last LSN of the epoch's last run) and *lng (that run's
 * LNG); 0 if it holds none (a run that fails its checksum counts as not
 * held, with a warning); -HS_EIO on a read error. */
int hs_store_epoch_info(struct hs_store *s, uint64_t log, uint32_t epoch,
			uint64_t *lng, uint64_t *max_lsn);

/* Periodic upkeep (and after a TRIM commit): roll to a new partition when the
 * current one is older than partition_ms or over partition_bytes (and not
 * empty), then drop every partition but the newest in which every log's
 * highest LSN is <= that log's trim point.  Must be called with nothing
 * staged.  Returns the number of partitions dropped, -HS_EAGAIN if something
 * is staged, -HS_ESTOREFAIL, or -HS_EIO. */
int hs_store_maintain(struct hs_store *s, uint64_t now_ms);

struct hs_store_stats {
	uint64_t partitions; /* live time partitions */
	uint64_t commits;    /* successful commits that wrote something */
	uint64_t commits_sync;   /* ... of which fsynced the WAL before returning */
	uint64_t commits_nosync; /* ... of which did not (async, nosync, memory) */
	uint64_t wal_syncs;  /* WAL fsyncs by hs_store_sync_wal() */
	uint64_t runs;       /* runs committed */
	uint64_t bytes;      /* run bytes committed */
	uint64_t dropped;    /* partitions dropped */
};

/* Counters since open. */
void hs_store_stats(const struct hs_store *s, struct hs_store_stats *st);

/* Write the partition (column family) names, oldest first, separated by
 * single spaces, NUL-terminated and cut to fit into buf[n] (n > 0).
 * Returns the number of partitions. */
int hs_store_partitions(const struct hs_store *s, char *buf, size_t n);

/* TEST ONLY: stage bytes as the value of (log, lsn) in the current partition
 * without any check or metadata change (except that the partition is marked
 * as holding log), so tests can plant corrupt runs.  0 or -HS_ESTOREFAIL. */
int hs_store_put_raw(struct hs_store *s, uint64_t log, uint64_t lsn,
		     const uint8_t *bytes, size_t len);

#endif
