/*
 * store.c - the Tier1 log store on RocksDB.  See store.h for the API.
 *
 * DESIGN
 * ------
 * One RocksDB instance per store directory.  Column families:
 *
 *   "default"           unused (RocksDB requires it)
 *   "meta"              per-log metadata and the partition directory
 *   "p%016" PRIx64      one data column family per time partition, id >= 1,
 *                       zero-padded hex so that names sort like ids
 *
 * Time partitions (after LogDevice's LogsDB): every run is written to the
 * newest ("current") partition.  A new partition is started once the current
 * one has data and is older than partition_ms or holds more than
 * partition_bytes of runs (checked after each commit and in
 * hs_store_maintain).  Since logs are written in time order, old partitions
 * end up holding only old, trimmed data; a partition other than the newest in
 * which every log's highest LSN is <= that log's trim point is dropped whole
 * (rocksdb_drop_column_family: O(1), no per-record deletes).  Recovery may
 * write old LSNs into the current partition, so one (log, LSN) key can exist
 * in two partitions: the copy in the newer partition wins.
 *
 * Data keys (in every partition), big-endian so byte order is (log, LSN):
 *
 *   off size
 *   0   1    'd'
 *   1   8    log id          BE64
 *   9   8    first LSN       BE64 (epoch << 32 | esn)
 *
 * Data value: the run exactly as received (proto.h "RUNS", libcore/run.h),
 * which carries its own CRC32C; it is verified before staging and on every
 * read.  One run is one Put.
 *
 * Insertion order: appends spread over many logs stage runs in no key
 * order, each landing at a random place in a memtable skiplist holding
 * every log; the descents (cache misses, key comparisons) were most of
 * hs-peer's time.  So a batch reaches RocksDB sorted by key: runs go
 * straight into the WriteBatch while they arrive in key order (one busy
 * log: no extra copy); from the first run out of order on, they are copied
 * into a side buffer and put, sorted by (log, LSN, staging order), at
 * commit; the few dirty 'L' and 'P' records (see "Derived metadata"), are
 * put sorted by log.  Each memtable then takes a batch as one or two ascending sweeps,
 * and with a per-batch insert hint (set_options: unordered_write, the only
 * way a lone writer gets RocksDB's hinted insert) each insert starts from
 * the previous one's position instead of the top of the skiplist.  The
 * "meta" memtable is kept small for the same reason.  Measured with
 * bench/multiappend over 10,000 streams: 2.4x the records/s at 1 record
 * per stream per entry, 1.75x at 10.  (A hash memtable keyed by the log
 * prefix was rejected: it copies the whole memtable into one sorted list
 * for every total-order iterator and for each flush, and its iterators
 * lack SeekForPrev, which trims and reads use.)  Putting runs after range
 * deletions staged later changes nothing: a trim never deletes runs staged
 * in its own batch (see Trim).
 *
 * Meta keys and values (column family "meta"; values little-endian, each
 * ending in a CRC32C of the bytes before it):
 *
 *   'L' | log BE64                     (9 bytes) -> per-log metadata, 41 bytes:
 *       0 u8 version (1) | 1 u32 seal | 5 u32 soft_seal | 9 u32 lce
 *       | 13 u64 released | 21 u64 trim | 29 u64 max_lsn | 37 u32 crc32c
 *       Written when seal, soft_seal, lce or trim rise, or by a CLEAN;
 *       released and max_lsn only ride along (see "Derived metadata").
 *   'P' | part BE64 | log BE64         (17 bytes) -> 12 bytes:
 *       0 u64 highest LSN of that log in that partition | 8 u32 crc32c
 *       Written with the log's first run in the partition; while the
 *       partition is current the value may be low (a lower bound), once
 *       it is not, an upper bound (see "Derived metadata").  It lets
 *       readers skip partitions that hold nothing of a log, and decides
 *       partition drops.
 *   'Q' | part BE64                    (9 bytes) -> partition record, 21 bytes:
 *       0 u8 version (1) | 1 u64 created (ms since the epoch)
 *       | 9 u64 run bytes written | 17 u32 crc32c
 *   'C' | log BE64 | epoch BE32        (13 bytes) -> clean record, 25 bytes:
 *       0 u8 version (1) | 1 u32 ballot | 5 u64 lng | 13 u64 end
 *       | 21 u32 crc32c
 *       Written by hs_store_stage_clean() (CLEAN, proto.h): the recovery of
 *       ballot `ballot` finished that epoch with (lng, end]; see Clean.
 *   'R' | register key (2..256 bytes)  -> acceptor state of one metadata
 *       register (libpaxos/register.h), the bytes of hs_reg_acc_enc(),
 *       which carry their own format byte and CRC32C; opaque here.
 *       Written only by hs_store_stage_reg(); a commit carrying one is
 *       always fsynced (promises and accepts are durable before replies).
 *       Never touched by partition drops or repairs.
 *
 * Derived metadata: a run must not cost more than its own Put.  Appends
 * spread over many logs put about one run per log per commit, and every
 * memtable insert is a skiplist descent among all logs' keys (see
 * "Insertion order"), so per-log records written with each run (an 'L'
 * for max_lsn, an 'L' for each RELEASE, a 'P' for each new highest LSN)
 * tripled the cost.  What the protocol does not need durable at once is
 * therefore derived from the runs when a log is loaded into the cache:
 *
 *   max_lsn   = max('L' value, the 'P' values of the older partitions,
 *               the end of the log's data in the current partition, found
 *               by a seek-for-prev).  The runs are in the same batch as
 *               their metadata used to be, so this is what was stored.
 *               Deletions (TRIM, CLEAN) write the 'L' record, carrying
 *               the cached max_lsn, in their own batch.
 *   released  = max('L' value, the LNG of the log's last run).  Every run
 *               carries its sequencer's LNG (proto.h), which was released
 *               when it was sent.  RELEASE only changes the cache: the
 *               value goes out with the log's next 'L' write, or at a
 *               clean close.  After a crash the point may go back to the
 *               last run's LNG; the protocol allows that (hs-peer: a lost
 *               released point only holds readers back; hs-serve re-sends
 *               the release point of every active stream on HELLO).
 *   'P'       is written once per (log, partition), with the log's first
 *               run there; the current partition's end per log is kept
 *               in the cache (loaded by a seek).  Before a partition stops
 *               being current, every 'P' record of it is raised to the end
 *               of the log's data there, in one synced write before the
 *               new partition is created (part_finish); older partitions
 *               only lose data (trims, CLEAN cuts), so their 'P' values
 *               stay upper bounds, which is what reads, SEALED and drops
 *               need.  A crash before the new partition exists leaves the
 *               old one current, whose 'P' values are never trusted.
 *
 * What stays durable before the reply, as before: seals and soft seals
 * (the 'L' record, in the batch of the run or SEAL raising them), lce,
 * trim, clean records and register states; and the runs themselves, from
 * which the rest is derived.  The end of a log's data is found by walking
 * back from its last key within its epoch until a normal (non-RECOVERY)
 * run that parses (recovery runs may overlap longer ones), at most
 * SCAN_BACK runs, as straddler() does.
 *
 * On open every column family is listed and reopened; partitions are
 * matched with their 'Q' records.  A partition with no 'Q' record (a crash
 * between creating the column family and writing the record) gets a new one;
 * 'Q'/'P' records of a partition that no longer exists (a crash between a
 * drop and the deletion of its records) are deleted.
 *
 * Per-log metadata is cached in an open-addressed hash table (linear
 * probing, power-of-two size, never shrinks), loaded from 'L' and the data
 * on first use (see "Derived metadata").  Every change goes through the
 * cache, so once an entry is loaded it is authoritative; entries with a
 * change that must be written are listed as dirty and their 'L' (and 'P')
 * records are added to the batch at commit.
 *
 * Trim: the trim point is raised in the metadata, and in every partition
 * holding the log a DeleteRange [d|log|0, d|log|X) is staged, where X is the
 * first LSN of the lowest run holding trim + 1 (found by a seek-for-prev and
 * a short walk back, since recovery can leave overlapping runs: such a run
 * still holds untrimmed records and must survive) or trim + 1.  Runs of the log
 * staged in the same batch are not visible to that seek, so X is also capped
 * at the lowest first LSN staged for the log in this batch: a range deletion
 * is applied in batch order and would otherwise delete them.  What is not
 * deleted this way is skipped by iterators and goes with its partition.
 *
 * Clean (hs_store_stage_clean): the clean record is put and, in every
 * partition holding the log, the runs of the epoch are walked once and
 * those the recovery did not write are deleted by point deletes in the
 * same batch: first LSN in (lo, hi + 1] and not a RECOVERY run of the
 * ballot, or first LSN > hi + 1 (lo = max(lng, epoch << 32), hi = max(end,
 * epoch << 32)); a run starting at or below lo and reaching past it is
 * replaced, in its own partition (so "the newer partition wins" still
 * holds), by its slice ending at lo.  Each copy of a key is judged on its
 * own bytes, so a key present in two partitions is handled right.  Keys
 * at or above the lowest first LSN staged for the log in this batch are
 * left alone (a point delete would also hit the staged Put): at worst a
 * stale copy survives, which readers ignore by the log record's rules.
 *
 * Failure: any failed write (batch, WAL sync, column family create or drop)
 * makes the store permanently failed (see store.h).
 */
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "crc32c.h"
#include "err.h"
#include "log.h"
#include "proto.h"
#include "run.h"
#include "wire.h"

#define DEF_PART_MS (15 * 60 * 1000ull)
#define DEF_PART_BYTES (1ull << 30)
#define DEF_CACHE (64u << 20)
#define META_WBUF (4u << 20)

#define LMETA_LEN 41
#define PREC_LEN 12
#define QREC_LEN 21
#define DKEY_LEN 17
#define CREC_LEN 25
#define CKEY_LEN 13

struct part {
	uint64_t id;
	rocksdb_column_family_handle_t *cf;
	uint64_t created_ms;
	uint64_t bytes; /* run bytes committed to this partition */
	int refs;       /* 1 for the store's list + 1 per iterator child */
	int fresh;      /* created by this process */
};

/* A cached log: its metadata and the highest LSN it wrote in one partition. */
struct ent {
	uint64_t log;
	struct hs_log_meta m;
	uint64_t pm_part;  /* partition pm_max refers to (the current one) */
	uint64_t pm_max;   /* highest LSN of log in pm_part, staged included */
	uint64_t batch_lo; /* lowest first LSN staged in this batch */
	uint8_t used;
	uint8_t pm_rec;    /* 'P' | pm_part is written (or staged) */
	uint8_t dirty_m;   /* 'L' must be written at commit */
	uint8_t dirty_p;   /* 'P' | pm_part must be written at commit */
	uint8_t listed;    /* in s->dirty */
	uint8_t lazy;      /* m.released is ahead of the 'L' record */
};

/* A run staged out of key order, put into the batch at commit. */
struct srun {
	uint64_t log, lsn;
	size_t off, len; /* bytes in hs_store.sbuf; off grows with staging order */
};

struct hs_store {
	char *dir;
	enum hs_durability dur;
	uint64_t part_ms, part_bytes;

	rocksdb_t *db;
	rocksdb_options_t *opts;      /* the DB, "default" and the partitions */
	rocksdb_options_t *meta_opts; /* column family "meta" */
	rocksdb_cache_t *cache;
	rocksdb_block_based_table_options_t *bbto;
	rocksdb_writeoptions_t *wo;      /* commits, per durability */
	rocksdb_writeoptions_t *wo_nosync; /* commits that need no fsync */
	rocksdb_writeoptions_t *wo_meta; /* partition directory changes */
	rocksdb_writeoptions_t *wo_plain; /* as wo_nosync, without insert hints */
	rocksdb_readoptions_t *ro;       /* point reads */
	rocksdb_column_family_handle_t *cf_default, *cf_meta;

	struct part **parts; /* oldest first; parts[nparts - 1] is current */
	size_t nparts, parts_cap;

	rocksdb_writebatch_t *wb;
	struct srun *sr;   /* runs deferred to commit (see "Insertion order") */
	size_t nsr, sr_cap;
	struct hs_buf sbuf; /* their bytes */
	uint64_t last_log, last_lsn; /* key of the last run put into wb directly */
	int have_last;
	size_t nstaged;
	uint64_t staged_bytes;
	int reg_staged;   /* a register state is in the batch: sync it */
	int range_staged; /* a range deletion is in the batch: no insert hints */
	uint64_t unsynced; /* commits since the last WAL sync not synced */

	struct ent *tab;
	size_t tab_cap, tab_n;
	uint64_t *dirty;
	size_t ndirty, dirty_cap;

	char *failed;
	struct hs_store_stats st;
};

struct child {
	struct part *p;
	rocksdb_iterator_t *it;
	uint64_t key; /* first LSN at the iterator, valid if live */
	int live;
	int consumed; /* returned last: advance before the next pick */
};

struct hs_store_iter {
	struct hs_store *s;
	uint64_t log, trim, from;
	rocksdb_readoptions_t *ro;
	uint8_t lo[DKEY_LEN], hi[9];
	size_t hilen;
	int done;
	int n;
	struct child c[];
};

/* ---- small helpers ---------------------------------------------------- */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void dkey(uint8_t k[DKEY_LEN], uint64_t log, uint64_t lsn)
{
	k[0] = 'd';
	hs_put64be(k + 1, log);
	hs_put64be(k + 9, lsn);
}

/* The exclusive upper bound of log's data keys; returns its length. */
static size_t dkey_end(uint8_t k[9], uint64_t log)
{
	if (log == UINT64_MAX) {
		k[0] = 'e';
		return 1;
	}
	k[0] = 'd';
	hs_put64be(k + 1, log + 1);
	return 9;
}

static void mkey(uint8_t *k, char tag, uint64_t a)
{
	k[0] = (uint8_t)tag;
	hs_put64be(k + 1, a);
}

static void pkey(uint8_t k[17], uint64_t part, uint64_t log)
{
	k[0] = 'P';
	hs_put64be(k + 1, part);
	hs_put64be(k + 9, log);
}

/* Record count from a run's header without verifying it (for bounds only). */
static uint64_t run_last(uint64_t first, const uint8_t *v, size_t n)
{
	uint32_t cnt = n >= 8 ? hs_get32(v + 4) : 1;

	if (cnt == 0)
		cnt = 1;
	if (first > UINT64_MAX - (cnt - 1))
		return UINT64_MAX;
	return first + cnt - 1;
}

/*
 * Runs of one epoch may overlap when recovery rewrote slots with other run
 * boundaries, so the run just before an LSN is not always the only one that
 * contains it.  Walk back from the last key <= at, within need's epoch (a run
 * never crosses an epoch), over at most SCAN_BACK runs, and return 1 with
 * *first = the lowest first LSN of a run whose last LSN >= need, else 0.
 * The iterator is left anywhere.  The bound keeps a call cheap; only a run
 * overlapped by more than SCAN_BACK later runs could be missed.
 */
#define SCAN_BACK 64

static int straddler(rocksdb_iterator_t *it, uint64_t log, uint64_t at, uint64_t need,
		     uint64_t *first)
{
	uint8_t k[DKEY_LEN];
	int found = 0, n = 0;

	dkey(k, log, at);
	for (rocksdb_iter_seek_for_prev(it, (const char *)k, sizeof(k));
	     rocksdb_iter_valid(it) && n < SCAN_BACK; rocksdb_iter_prev(it), n++) {
		size_t kn, vn;
		const uint8_t *key = (const uint8_t *)rocksdb_iter_key(it, &kn);
		const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vn);
		uint64_t f;

		if (kn != DKEY_LEN)
			break;
		f = hs_get64be(key + 9);
		if (HS_LSN_EPOCH(f) != HS_LSN_EPOCH(need))
			break;
		if (run_last(f, v, vn) >= need) {
			*first = f;
			found = 1;
		}
	}
	return found;
}

static void part_name(char *buf, size_t n, uint64_t id)
{
	snprintf(buf, n, "p%016" PRIx64, id);
}

/* Parse "p" + 16 hex digits; 0 if name is not a partition. */
static uint64_t part_id(const char *name)
{
	uint64_t id = 0;

	if (name[0] != 'p' || strlen(name) != 17)
		return 0;
	for (int i = 1; i < 17; i++) {
		char c = name[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;

		if (d < 0)
			return 0;
		id = id << 4 | (uint64_t)d;
	}
	return id;
}

/* Enter the failed state (first failure wins); err is RocksDB's text (freed). */
static int fail(struct hs_store *s, const char *what, char *err)
{
	int code = err && strstr(err, "No space left on device") ? -HS_ENOSPC : -HS_ESTOREFAIL;

	if (!s->failed) {
		struct hs_buf b = HS_BUF_INIT;

		hs_buf_printf(&b, "%s: %s", what, err ? err : "unknown error");
		s->failed = (char *)b.data;
		hs_error("store '%s' failed: %s", s->dir, s->failed);
	}
	rocksdb_free(err);
	return code;
}

static void part_unref(struct part *p)
{
	if (--p->refs == 0) {
		rocksdb_column_family_handle_destroy(p->cf);
		free(p);
	}
}

static void parts_push(struct hs_store *s, struct part *p)
{
	if (s->nparts == s->parts_cap) {
		s->parts_cap = s->parts_cap ? 2 * s->parts_cap : 8;
		s->parts = hs_xrealloc(s->parts, s->parts_cap * sizeof(*s->parts));
	}
	s->parts[s->nparts++] = p;
}

static struct part *cur_part(struct hs_store *s)
{
	return s->parts[s->nparts - 1];
}

/* ---- meta records ------------------------------------------------------ */

static void enc_lmeta(uint8_t v[LMETA_LEN], const struct hs_log_meta *m)
{
	v[0] = 1;
	hs_put32(v + 1, m->seal);
	hs_put32(v + 5, m->soft_seal);
	hs_put32(v + 9, m->lce);
	hs_put64(v + 13, m->released);
	hs_put64(v + 21, m->trim);
	hs_put64(v + 29, m->max_lsn);
	hs_put32(v + 37, hs_crc32c(0, v, 37));
}

static int dec_lmeta(const uint8_t *v, size_t n, struct hs_log_meta *m)
{
	if (n != LMETA_LEN || v[0] != 1 || hs_get32(v + 37) != hs_crc32c(0, v, 37))
		return -HS_ECHECKSUM;
	m->seal = hs_get32(v + 1);
	m->soft_seal = hs_get32(v + 5);
	m->lce = hs_get32(v + 9);
	m->released = hs_get64(v + 13);
	m->trim = hs_get64(v + 21);
	m->max_lsn = hs_get64(v + 29);
	return 0;
}

static void enc_prec(uint8_t v[PREC_LEN], uint64_t max)
{
	hs_put64(v, max);
	hs_put32(v + 8, hs_crc32c(0, v, 8));
}

static int dec_prec(const uint8_t *v, size_t n, uint64_t *max)
{
	if (n != PREC_LEN || hs_get32(v + 8) != hs_crc32c(0, v, 8))
		return -HS_ECHECKSUM;
	*max = hs_get64(v);
	return 0;
}

static void enc_qrec(uint8_t v[QREC_LEN], const struct part *p)
{
	v[0] = 1;
	hs_put64(v + 1, p->created_ms);
	hs_put64(v + 9, p->bytes);
	hs_put32(v + 17, hs_crc32c(0, v, 17));
}

/* Point read in the meta CF: 1 found (value copied to v, *vn its length, cut
 * to cap), 0 not found, -HS_EIO. */
static int meta_get(struct hs_store *s, const uint8_t *k, size_t kn, uint8_t *v, size_t cap,
		    size_t *vn)
{
	char *err = NULL;
	rocksdb_pinnableslice_t *ps =
		rocksdb_get_pinned_cf(s->db, s->ro, s->cf_meta, (const char *)k, kn, &err);
	const char *val;
	size_t n;

	if (err) {
		hs_error("store '%s': meta read: %s", s->dir, err);
		rocksdb_free(err);
		return -HS_EIO;
	}
	if (!ps)
		return 0;
	val = rocksdb_pinnableslice_value(ps, &n);
	*vn = n;
	memcpy(v, val, n < cap ? n : cap);
	rocksdb_pinnableslice_destroy(ps);
	return 1;
}

/* Committed highest LSN of log in partition part: 1 (found), 0, or <0. */
static int prec_get(struct hs_store *s, uint64_t part, uint64_t log, uint64_t *max)
{
	uint8_t k[17], v[PREC_LEN];
	size_t vn = 0;
	int rc;

	pkey(k, part, log);
	rc = meta_get(s, k, sizeof(k), v, sizeof(v), &vn);
	if (rc <= 0)
		return rc;
	if (dec_prec(v, vn, max) < 0) {
		hs_error("store '%s': corrupt partition record p%016" PRIx64 " log %" PRIu64,
			 s->dir, part, log);
		return -HS_ECHECKSUM;
	}
	return 1;
}

/* ---- the log cache ----------------------------------------------------- */

static size_t slot_of(uint64_t log, size_t cap)
{
	return (size_t)((log * 0x9e3779b97f4a7c15ull) >> 17) & (cap - 1);
}

static struct ent *tab_find(struct hs_store *s, uint64_t log)
{
	if (!s->tab_cap)
		return NULL;
	for (size_t i = slot_of(log, s->tab_cap);; i = (i + 1) & (s->tab_cap - 1)) {
		if (!s->tab[i].used)
			return NULL;
		if (s->tab[i].log == log)
			return &s->tab[i];
	}
}

static struct ent *tab_insert(struct hs_store *s, uint64_t log)
{
	size_t i;

	if (2 * (s->tab_n + 1) > s->tab_cap) {
		size_t ocap = s->tab_cap, ncap = ocap ? 2 * ocap : 256;
		struct ent *old = s->tab;

		s->tab = hs_xcalloc(ncap, sizeof(*s->tab));
		s->tab_cap = ncap;
		for (size_t j = 0; j < ocap; j++) {
			if (!old[j].used)
				continue;
			for (i = slot_of(old[j].log, ncap); s->tab[i].used; i = (i + 1) & (ncap - 1))
				;
			s->tab[i] = old[j];
		}
		free(old);
	}
	for (i = slot_of(log, s->tab_cap); s->tab[i].used; i = (i + 1) & (s->tab_cap - 1))
		;
	memset(&s->tab[i], 0, sizeof(s->tab[i]));
	s->tab[i].used = 1;
	s->tab[i].log = log;
	s->tab[i].batch_lo = UINT64_MAX;
	s->tab_n++;
	return &s->tab[i];
}

/*
 * The end of log's committed data in partition p (see "Derived metadata"):
 * walking back from the log's last key within its epoch, *max = the highest
 * last LSN (from the run headers; a corrupt count is capped at the epoch's
 * end, an over-estimate is safe) and *lng = the highest LNG of a run that
 * passes its checksum.  The walk stops after the first normal (non-RECOVERY)
 * run that parses: runs of one epoch overlap only where a recovery rewrote
 * slots with other boundaries, and a sequencer's own runs never reach past
 * a later one; and after SCAN_BACK runs, as straddler().  Returns 1, 0 (no
 * run of log in p) or -HS_EIO.
 */
static int part_tail(struct hs_store *s, struct part *p, uint64_t log, uint64_t *max,
		     uint64_t *lng)
{
	uint8_t lo[DKEY_LEN], hi[9], k[DKEY_LEN];
	size_t hin = dkey_end(hi, log);
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	rocksdb_iterator_t *it;
	uint32_t epoch = 0;
	char *err = NULL;
	int found = 0, n = 0;

	*max = *lng = 0;
	dkey(lo, log, 0);
	dkey(k, log, UINT64_MAX);
	rocksdb_readoptions_set_iterate_lower_bound(ro, (const char *)lo, sizeof(lo));
	rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)hi, hin);
	it = rocksdb_create_iterator_cf(s->db, ro, p->cf);
	for (rocksdb_iter_seek_for_prev(it, (const char *)k, sizeof(k));
	     rocksdb_iter_valid(it) && n < SCAN_BACK; rocksdb_iter_prev(it), n++) {
		size_t kn, vn;
		const uint8_t *key = (const uint8_t *)rocksdb_iter_key(it, &kn);
		const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vn);
		uint64_t f, last;
		struct hs_run r;

		if (kn != DKEY_LEN)
			break;
		f = hs_get64be(key + 9);
		if (found && HS_LSN_EPOCH(f) != epoch)
			break;
		epoch = HS_LSN_EPOCH(f);
		found = 1;
		last = run_last(f, v, vn);
		if (HS_LSN_EPOCH(last) != epoch)
			last = HS_LSN(epoch, UINT32_MAX);
		if (last > *max)
			*max = last;
		if (hs_run_parse(v, vn, &r) < 0)
			continue;
		if (r.lng > *lng)
			*lng = r.lng;
		if (!(r.flags & HS_RUN_RECOVERY))
			break;
	}
	rocksdb_iter_get_error(it, &err);
	rocksdb_iter_destroy(it);
	rocksdb_readoptions_destroy(ro);
	if (err) {
		hs_error("store '%s': reading the end of log %" PRIu64 ": %s", s->dir, log, err);
		rocksdb_free(err);
		return -HS_EIO;
	}
	return found;
}

/* What the current partition p holds of log: *rec = has a 'P' record, *max
 * = the exact end of its committed data there (its 'P' value, written when
 * the log first wrote in p, is only a lower bound while p is current); *lng
 * as part_tail.  A partition this process created holds only what is staged
 * or cached.  0 or <0. */
static int cur_load(struct hs_store *s, struct part *p, uint64_t log, uint8_t *rec,
		    uint64_t *max, uint64_t *lng)
{
	uint64_t v;
	int rc;

	*rec = 0;
	*max = *lng = 0;
	if (p->fresh)
		return 0;
	rc = prec_get(s, p->id, log, &v);
	if (rc <= 0)
		return rc;
	*rec = 1;
	rc = part_tail(s, p, log, max, lng);
	return rc < 0 ? rc : 0;
}

/*
 * The cache entry of log, loaded if needed: the 'L' record, raised by what
 * the data shows (see "Derived metadata"): max_lsn to the highest LSN held
 * in any partition ('P' values of the older partitions, a seek in the
 * current one), released to the LNG of the log's last run.  The pointer is
 * valid until the next ent_get (the table may grow).
 */
static int ent_get(struct hs_store *s, uint64_t log, struct ent **out)
{
	struct ent *e = tab_find(s, log);
	struct hs_log_meta m = { 0 };
	struct part *cur = cur_part(s), *best = NULL;
	uint8_t k[9], v[LMETA_LEN], rec;
	uint64_t pmax, lng, top = 0;
	size_t vn = 0;
	int rc;

	if (e) {
		*out = e;
		return 0;
	}
	mkey(k, 'L', log);
	rc = meta_get(s, k, sizeof(k), v, sizeof(v), &vn);
	if (rc < 0)
		return rc;
	if (rc && dec_lmeta(v, vn, &m) < 0) {
		hs_error("store '%s': corrupt metadata record of log %" PRIu64, s->dir, log);
		return -HS_ECHECKSUM;
	}
	rc = cur_load(s, cur, log, &rec, &pmax, &lng);
	if (rc < 0)
		return rc;
	if (rec && pmax) {
		top = pmax;
		best = cur;
	}
	for (size_t i = 0; i + 1 < s->nparts; i++) {
		uint64_t x;

		rc = prec_get(s, s->parts[i]->id, log, &x);
		if (rc < 0)
			return rc;
		if (rc && x > top) {
			top = x;
			best = s->parts[i];
		}
	}
	if (best && best != cur) {
		uint64_t ignore;

		rc = part_tail(s, best, log, &ignore, &lng);
		if (rc < 0)
			return rc;
	}
	if (top > m.max_lsn)
		m.max_lsn = top;
	if (lng > m.released)
		m.released = lng;
	e = tab_insert(s, log);
	e->m = m;
	e->pm_part = cur->id;
	e->pm_rec = rec;
	e->pm_max = pmax;
	*out = e;
	return 0;
}

static void ent_dirty(struct hs_store *s, struct ent *e, int meta, int prec)
{
	e->dirty_m |= meta;
	e->dirty_p |= prec;
	if (e->listed)
		return;
	if (s->ndirty == s->dirty_cap) {
		s->dirty_cap = s->dirty_cap ? 2 * s->dirty_cap : 64;
		s->dirty = hs_xrealloc(s->dirty, s->dirty_cap * sizeof(*s->dirty));
	}
	s->dirty[s->ndirty++] = e->log;
	e->listed = 1;
}

/* Note that log wrote up to last in the current partition: its 'P' record
 * is staged on the log's first write there, later writes only raise the
 * cached end (see "Derived metadata"). */
static int note_part_write(struct hs_store *s, struct ent *e, uint64_t last)
{
	struct part *p = cur_part(s);

	if (e->pm_part != p->id) {
		uint64_t lng;
		int rc = cur_load(s, p, e->log, &e->pm_rec, &e->pm_max, &lng);

		if (rc < 0)
			return rc;
		e->pm_part = p->id;
	}
	if (!e->pm_rec) {
		/* Even if last is 0 (put_raw): the record says "log is here". */
		e->pm_rec = 1;
		e->pm_max = last;
		ent_dirty(s, e, 0, 1);
		return 0;
	}
	if (last > e->pm_max)
		e->pm_max = last;
	return 0;
}

/* ---- partitions -------------------------------------------------------- */

static int write_qrec(struct hs_store *s, const struct part *p)
{
	uint8_t k[9], v[QREC_LEN];
	char *err = NULL;

	mkey(k, 'Q', p->id);
	enc_qrec(v, p);
	rocksdb_put_cf(s->db, s->wo_meta, s->cf_meta, (const char *)k, sizeof(k),
		       (const char *)v, sizeof(v), &err);
	if (err)
		return fail(s, "writing a partition record", err);
	return 0;
}

static int part_create(struct hs_store *s, uint64_t now)
{
	uint64_t id = s->nparts ? cur_part(s)->id + 1 : 1;
	char name[32];
	char *err = NULL;
	rocksdb_column_family_handle_t *cf;
	struct part *p;

	part_name(name, sizeof(name), id);
	cf = rocksdb_create_column_family(s->db, s->opts, name, &err);
	if (err)
		return fail(s, "creating a partition", err);
	p = hs_xcalloc(1, sizeof(*p));
	p->id = id;
	p->cf = cf;
	p->created_ms = now;
	p->refs = 1;
	p->fresh = 1;
	parts_push(s, p);
	hs_debug("store '%s': new partition %s", s->dir, name);
	return write_qrec(s, p);
}

/*
 * Before p stops being current: raise every 'P' record of p to the end of
 * the log's data there (the cache's pm_max, or a seek for a log not loaded
 * since open), in one synced write, so that the 'P' values of every older
 * partition are upper bounds (see "Derived metadata").  A crash before the
 * new partition is created leaves p current, where 'P' values are not
 * trusted anyway.  0, -HS_EIO or a store failure.
 */
/* Call fn for each 'P' record of partition p (key kn bytes, value vn), in
 * log order, until it returns non-zero.  Returns that value, 0 when every
 * record was seen, or -HS_EIO when reading them failed. */
typedef int (*prec_fn)(struct hs_store *s, struct part *p, const uint8_t *k, size_t kn,
		       const uint8_t *v, size_t vn, void *arg);

static int part_precs(struct hs_store *s, struct part *p, prec_fn fn, void *arg)
{
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	rocksdb_iterator_t *it;
	uint8_t lo[9], hi[9];
	char *err = NULL;
	int rc = 0;

	mkey(lo, 'P', p->id);
	mkey(hi, 'P', p->id + 1);
	rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)hi, sizeof(hi));
	it = rocksdb_create_iterator_cf(s->db, ro, s->cf_meta);
	for (rocksdb_iter_seek(it, (const char *)lo, sizeof(lo)); !rc && rocksdb_iter_valid(it);
	     rocksdb_iter_next(it)) {
		size_t kn, vn;
		const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kn);
		const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vn);

		rc = fn(s, p, k, kn, v, vn, arg);
	}
	rocksdb_iter_get_error(it, &err);
	if (err) {
		hs_error("store '%s': reading partition records: %s", s->dir, err);
		rocksdb_free(err);
		rc = -HS_EIO;
	}
	rocksdb_iter_destroy(it);
	rocksdb_readoptions_destroy(ro);
	return rc;
}

/* part_finish's step: stage the raise of one 'P' record into wb. */
static int prec_finish(struct hs_store *s, struct part *p, const uint8_t *k, size_t kn,
		       const uint8_t *v, size_t vn, void *wb)
{
	uint64_t old = 0, end = 0, lng, log;
	struct ent *e;
	uint8_t nv[PREC_LEN];
	int rc;

	if (kn != 17)
		return 0;
	log = hs_get64be(k + 9);
	/* Left as it is if corrupt: never drop or skip on doubt. */
	if (dec_prec(v, vn, &old) < 0)
		return 0;
	e = tab_find(s, log);
	if (e && e->pm_part == p->id && e->pm_rec) {
		end = e->pm_max;
	} else {
		rc = part_tail(s, p, log, &end, &lng);
		if (rc < 0)
			return rc;
	}
	if (end <= old)
		return 0;
	enc_prec(nv, end);
	rocksdb_writebatch_put_cf(wb, s->cf_meta, (const char *)k, kn, (const char *)nv,
				  sizeof(nv));
	return 0;
}

static int part_finish(struct hs_store *s, struct part *p)
{
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	char *err = NULL;
	int rc = part_precs(s, p, prec_finish, wb);

	if (!rc && rocksdb_writebatch_count(wb)) {
		rocksdb_write(s->db, s->wo_meta, wb, &err);
		if (err)
			rc = fail(s, "finishing a partition's records", err);
	}
	rocksdb_writebatch_destroy(wb);
	return rc;
}

/* Start a new partition if the current one has data and is too old or big.
 * Only with an empty batch: staged runs belong to the current partition. */
static int roll_if_due(struct hs_store *s, uint64_t now)
{
	struct part *p = cur_part(s);
	int rc;

	if (!p->bytes || s->nstaged || rocksdb_writebatch_count(s->wb))
		return 0;
	if (p->bytes < s->part_bytes && (now < p->created_ms || now - p->created_ms < s->part_ms))
		return 0;
	rc = part_finish(s, p);
	if (rc < 0)
		return rc;
	return part_create(s, now);
}

/* ---- open / close ------------------------------------------------------ */

static int mkdir_p(const char *dir)
{
	char *p = hs_xstrdup(dir);
	int rc = 0;

	for (char *q = p + 1;; q++) {
		if (*q != '/' && *q)
			continue;
		char c = *q;

		*q = 0;
		if (mkdir(p, 0755) < 0 && errno != EEXIST) {
			rc = -errno;
			break;
		}
		*q = c;
		if (!c)
			break;
	}
	free(p);
	return rc;
}

static int open_err(const char *err, int fresh)
{
	if (strstr(err, "No space left on device"))
		return -HS_ENOSPC;
	if (strstr(err, "/LOCK"))
		return -HS_ELOCKED;
	if (strstr(err, "Corruption"))
		return -HS_EIO;
	if (strstr(err, "Permission denied") || strstr(err, "Read-only file system"))
		return -HS_ECREATE;
	if (strstr(err, "Invalid argument"))
		return fresh ? -HS_ECONFIG : -HS_EIO;
	return fresh ? -HS_ECREATE : -HS_EIO;
}

static void set_options(struct hs_store *s, const struct hs_store_opts *o)
{
	rocksdb_options_t *opts = rocksdb_options_create();

	rocksdb_options_set_create_if_missing(opts, 1);
	rocksdb_options_set_create_missing_column_families(opts, 1);
	rocksdb_options_set_paranoid_checks(opts, 1);
	/* Each partition gets its own memtable, but only the current one takes
	 * writes; the totals bound memory and WAL across all of them. */
	rocksdb_options_set_write_buffer_size(opts, 64u << 20);
	rocksdb_options_set_db_write_buffer_size(opts, 256u << 20);
	rocksdb_options_set_max_total_wal_size(opts, 512u << 20);
	rocksdb_options_set_max_background_jobs(opts, 2);
	rocksdb_options_set_compaction_style(opts, rocksdb_level_compaction);
	/* Payloads are user data of any kind; LZ4 is cheap when it does not
	 * help.  Debian's librocksdb links it. */
	rocksdb_options_set_compression(opts, rocksdb_lz4_compression);
	rocksdb_options_set_keep_log_file_num(opts, 4);
	/* Its info LOG shares the data directory, and Debian's librocksdb
	 * 7.8.3 is built with assertions: once an append to LOG failed (disk
	 * full), the next one aborts the process (WritableFileWriter::
	 * AssertFalseAndGetStatusForPrevError) instead of hs-peer reporting
	 * the failed commit and exiting 74.  Only FATAL (4) lines, which
	 * RocksDB writes when it is lost anyway, may go there; every error
	 * that matters reaches us as a Status and is logged by us. */
	rocksdb_options_set_info_log_level(opts, 4);
	/* Memtable inserts with a per-batch hint (see "Insertion order"):
	 * RocksDB only uses WriteOptions::memtable_insert_hint_per_batch on
	 * its concurrent insert path, which a lone writer takes only with
	 * unordered_write.  The store has a single writer thread, so what
	 * unordered_write gives up (snapshots of concurrent writers seeing
	 * each other's batches in part) cannot happen: Write() returns after
	 * its own memtable insert, and every read is made after it. */
	rocksdb_options_set_allow_concurrent_memtable_write(opts, 1);
	rocksdb_options_set_unordered_write(opts, 1);

	s->cache = rocksdb_cache_create_lru(o->cache_bytes ? o->cache_bytes : DEF_CACHE);
	s->bbto = rocksdb_block_based_options_create();
	rocksdb_block_based_options_set_block_cache(s->bbto, s->cache);
	/* Values are whole runs (kilobytes): bigger blocks, smaller index. */
	rocksdb_block_based_options_set_block_size(s->bbto, 32u << 10);
	rocksdb_options_set_block_based_table_factory(opts, s->bbto);
	s->opts = opts;
	/* "meta" takes bursts of 'L' and 'P' records over many logs (first
	 * writes, seals of a new epoch), each a new memtable entry (versions
	 * pile up until a flush keeps the newest), inserted like the runs
	 * (see "Insertion order").  A small memtable keeps that skiplist
	 * shallow; its flushes are cheap since few keys survive. */
	s->meta_opts = rocksdb_options_create_copy(opts);
	rocksdb_options_set_write_buffer_size(s->meta_opts, META_WBUF);

	s->wo = rocksdb_writeoptions_create();
	s->wo_meta = rocksdb_writeoptions_create();
	s->wo_nosync = rocksdb_writeoptions_create();
	s->wo_plain = rocksdb_writeoptions_create();
	/* Not wo_meta: RocksDB 7.8 keys the hints by memtable, shared by its
	 * point and range-deletion skiplists, so a batch holding both in one
	 * column family would follow one list's hint into the other (an
	 * assertion in Debian's build).  Batches with a range deletion are
	 * written with wo_meta or wo_plain. */
	rocksdb_writeoptions_set_memtable_insert_hint_per_batch(s->wo, 1);
	rocksdb_writeoptions_set_memtable_insert_hint_per_batch(s->wo_nosync, 1);
	if (s->dur == HS_DUR_MEMORY) {
		rocksdb_writeoptions_disable_WAL(s->wo, 1);
		rocksdb_writeoptions_disable_WAL(s->wo_meta, 1);
		rocksdb_writeoptions_disable_WAL(s->wo_nosync, 1);
		rocksdb_writeoptions_disable_WAL(s->wo_plain, 1);
	} else {
		rocksdb_writeoptions_set_sync(s->wo, s->dur == HS_DUR_SYNC);
		rocksdb_writeoptions_set_sync(s->wo_meta, 1);
		rocksdb_writeoptions_set_sync(s->wo_nosync, 0);
		rocksdb_writeoptions_set_sync(s->wo_plain, 0);
	}
	s->ro = rocksdb_readoptions_create();
}

/* Match partitions with their 'Q' records; repair what a crash left. */
static int load_parts(struct hs_store *s, uint64_t now)
{
	rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf_meta);
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	uint8_t k[17];
	char *err = NULL;
	int rc = 0;

	for (rocksdb_iter_seek(it, "Q", 1); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t kn, vn;
		const uint8_t *key = (const uint8_t *)rocksdb_iter_key(it, &kn);
		const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vn);
		uint64_t id;
		struct part *p = NULL;

		if (kn != 9 || key[0] != 'Q')
			break;
		id = hs_get64be(key + 1);
		for (size_t i = 0; i < s->nparts; i++)
			if (s->parts[i]->id == id)
				p = s->parts[i];
		if (!p) {
			/* Dropped, but its records survived a crash. */
			uint8_t e[9];

			rocksdb_writebatch_delete_cf(wb, s->cf_meta, (const char *)key, kn);
			pkey(k, id, 0);
			mkey(e, 'P', id + 1);
			rocksdb_writebatch_delete_range_cf(wb, s->cf_meta, (const char *)k, 9,
							   (const char *)e, 9);
			continue;
		}
		if (vn != QREC_LEN || v[0] != 1 || hs_get32(v + 17) != hs_crc32c(0, v, 17)) {
			hs_error("store '%s': corrupt partition record p%016" PRIx64, s->dir, id);
			rc = -HS_EIO;
			goto out;
		}
		p->created_ms = hs_get64(v + 1);
		p->bytes = hs_get64(v + 9);
		p->fresh = 2; /* seen: has a record */
	}
	rocksdb_iter_get_error(it, &err);
	if (err) {
		hs_error("store '%s': reading partition records: %s", s->dir, err);
		rocksdb_free(err);
		rc = -HS_EIO;
		goto out;
	}
	for (size_t i = 0; i < s->nparts; i++) {
		struct part *p = s->parts[i];
		uint8_t q[9], v[QREC_LEN];

		if (p->fresh == 2) {
			p->fresh = 0;
			continue;
		}
		p->created_ms = now;
		mkey(q, 'Q', p->id);
		enc_qrec(v, p);
		rocksdb_writebatch_put_cf(wb, s->cf_meta, (const char *)q, 9, (const char *)v,
					  sizeof(v));
	}
	if (rocksdb_writebatch_count(wb)) {
		rocksdb_write(s->db, s->wo_meta, wb, &err);
		if (err) {
			hs_error("store '%s': repairing partition records: %s", s->dir, err);
			rc = open_err(err, 0);
			rocksdb_free(err);
		}
	}
out:
	rocksdb_writebatch_destroy(wb);
	rocksdb_iter_destroy(it);
	return rc;
}

static int cmp_part(const void *a, const void *b)
{
	const struct part *x = *(struct part *const *)a, *y = *(struct part *const *)b;

	return x->id < y->id ? -1 : x->id > y->id;
}

int hs_store_open(const struct hs_store_opts *o, struct hs_store **out)
{
	struct hs_store *s;
	char **names = NULL, **list = NULL;
	size_t nlist = 0, n = 0;
	const rocksdb_options_t **cfopts = NULL;
	rocksdb_column_family_handle_t **handles = NULL;
	char *err = NULL, *cur = NULL;
	int fresh, rc;

	if (!o->dir || !*o->dir) {
		hs_error("store: no directory given");
		return -HS_ECONFIG;
	}
	rc = mkdir_p(o->dir);
	if (rc < 0) {
		hs_error("cannot create store directory '%s': %s", o->dir, strerror(-rc));
		return -HS_ECREATE;
	}
	if (access(o->dir, W_OK | X_OK) < 0) {
		hs_error("cannot write store directory '%s': %s", o->dir, strerror(errno));
		return -HS_ECREATE;
	}

	s = hs_xcalloc(1, sizeof(*s));
	s->dir = hs_xstrdup(o->dir);
	s->dur = o->durability ? o->durability : HS_DUR_SYNC;
	s->part_ms = o->partition_ms ? o->partition_ms : DEF_PART_MS;
	s->part_bytes = o->partition_bytes ? o->partition_bytes : DEF_PART_BYTES;
	set_options(s, o);
	s->wb = rocksdb_writebatch_create();

	if (asprintf(&cur, "%s/CURRENT", o->dir) < 0)
		hs_oom();
	fresh = access(cur, F_OK) < 0;
	free(cur);

	if (!fresh) {
		list = rocksdb_list_column_families(s->opts, o->dir, &nlist, &err);
		if (err) {
			hs_error("cannot open store '%s': %s", o->dir, err);
			rc = open_err(err, 0);
			rocksdb_free(err);
			goto out_free;
		}
	}
	names = hs_xcalloc(nlist + 2, sizeof(*names));
	for (size_t i = 0; i < nlist; i++)
		names[n++] = list[i];
	for (int want = 0; want < 2; want++) {
		const char *w = want ? "meta" : "default";
		size_t i;

		for (i = 0; i < n && strcmp(names[i], w); i++)
			;
		if (i == n)
			names[n++] = (char *)w;
	}
	cfopts = hs_xcalloc(n, sizeof(*cfopts));
	handles = hs_xcalloc(n, sizeof(*handles));
	for (size_t i = 0; i < n; i++)
		cfopts[i] = strcmp(names[i], "meta") ? s->opts : s->meta_opts;

	s->db = rocksdb_open_column_families(s->opts, o->dir, (int)n, (const char *const *)names,
					     cfopts, handles, &err);
	if (err) {
		hs_error("cannot open store '%s': %s", o->dir, err);
		rc = open_err(err, fresh);
		rocksdb_free(err);
		s->db = NULL;
		goto out_free;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t id = part_id(names[i]);

		if (!strcmp(names[i], "default")) {
			s->cf_default = handles[i];
		} else if (!strcmp(names[i], "meta")) {
			s->cf_meta = handles[i];
		} else if (id) {
			struct part *p = hs_xcalloc(1, sizeof(*p));

			p->id = id;
			p->cf = handles[i];
			p->refs = 1;
			parts_push(s, p);
		} else {
			hs_warn("store '%s': ignoring unknown column family '%s'", o->dir,
				names[i]);
			rocksdb_column_family_handle_destroy(handles[i]);
		}
	}
	if (s->nparts)
		qsort(s->parts, s->nparts, sizeof(*s->parts), cmp_part);
	rc = load_parts(s, now_ms());
	if (rc < 0)
		goto out_free;
	if (!s->nparts && part_create(s, now_ms()) < 0) {
		hs_error("cannot open store '%s': %s", o->dir, s->failed);
		rc = -HS_ECREATE;
		goto out_free;
	}
	s->st.partitions = s->nparts;
	*out = s;
	rc = 0;
	s = NULL;
out_free:
	free(handles);
	free(cfopts);
	free(names);
	if (list)
		rocksdb_list_column_families_destroy(list, nlist);
	if (s)
		hs_store_close(s);
	return rc;
}

/* On a clean close with nothing staged: write the 'L' records whose
 * released point only lives in the cache (see "Derived metadata"), so a
 * restart does not fall back to the runs' LNGs.  Best effort: a failure
 * only costs that. */
static void write_lazy(struct hs_store *s)
{
	rocksdb_writebatch_t *wb;
	char *err = NULL;

	if (!s->db || s->failed || s->ndirty || rocksdb_writebatch_count(s->wb))
		return;
	wb = rocksdb_writebatch_create();
	for (size_t i = 0; i < s->tab_cap; i++) {
		struct ent *e = &s->tab[i];
		uint8_t k[9], v[LMETA_LEN];

		if (!e->used || !e->lazy)
			continue;
		mkey(k, 'L', e->log);
		enc_lmeta(v, &e->m);
		rocksdb_writebatch_put_cf(wb, s->cf_meta, (const char *)k, sizeof(k),
					  (const char *)v, sizeof(v));
		e->lazy = 0;
	}
	if (rocksdb_writebatch_count(wb)) {
		rocksdb_write(s->db, s->wo_meta, wb, &err);
		if (err) {
			hs_warn("store '%s': writing released points at close: %s", s->dir, err);
			rocksdb_free(err);
		}
	}
	rocksdb_writebatch_destroy(wb);
}

void hs_store_close(struct hs_store *s)
{
	if (!s)
		return;
	write_lazy(s);
	for (size_t i = 0; i < s->nparts; i++)
		part_unref(s->parts[i]);
	if (s->cf_meta)
		rocksdb_column_family_handle_destroy(s->cf_meta);
	if (s->cf_default)
		rocksdb_column_family_handle_destroy(s->cf_default);
	if (s->db)
		rocksdb_close(s->db);
	rocksdb_writebatch_destroy(s->wb);
	free(s->sr);
	hs_buf_free(&s->sbuf);
	rocksdb_readoptions_destroy(s->ro);
	rocksdb_writeoptions_destroy(s->wo);
	rocksdb_writeoptions_destroy(s->wo_meta);
	rocksdb_writeoptions_destroy(s->wo_nosync);
	rocksdb_writeoptions_destroy(s->wo_plain);
	rocksdb_options_destroy(s->opts);
	rocksdb_options_destroy(s->meta_opts);
	rocksdb_block_based_options_destroy(s->bbto);
	rocksdb_cache_destroy(s->cache);
	free(s->parts);
	free(s->tab);
	free(s->dirty);
	free(s->failed);
	free(s->dir);
	free(s);
}

/* ---- staging ----------------------------------------------------------- */

int hs_store_meta(struct hs_store *s, uint64_t log, struct hs_log_meta *out)
{
	struct ent *e;
	int rc = ent_get(s, log, &e);

	if (rc < 0)
		return rc;
	*out = e->m;
	return 0;
}

/* Stage the Put of run bytes at (log, lsn) in the current partition: into
 * the batch at once while keys come in order, else deferred to commit. */
static void put_run(struct hs_store *s, uint64_t log, uint64_t lsn, const uint8_t *v,
		    size_t len)
{
	s->nstaged++;
	s->staged_bytes += len;
	/* Once a run is deferred, every later one is too: a later run at the
	 * same key must stay after it. */
	if (!s->nsr && (!s->have_last || log > s->last_log ||
			(log == s->last_log && lsn >= s->last_lsn))) {
		uint8_t k[DKEY_LEN];

		dkey(k, log, lsn);
		rocksdb_writebatch_put_cf(s->wb, cur_part(s)->cf, (const char *)k, sizeof(k),
					  (const char *)v, len);
		s->have_last = 1;
		s->last_log = log;
		s->last_lsn = lsn;
		return;
	}
	if (s->nsr == s->sr_cap) {
		s->sr_cap = s->sr_cap ? 2 * s->sr_cap : 1024;
		s->sr = hs_xrealloc(s->sr, s->sr_cap * sizeof(*s->sr));
	}
	s->sr[s->nsr++] = (struct srun){ log, lsn, s->sbuf.len, len };
	hs_buf_append(&s->sbuf, v, len);
}

int hs_store_stage_run(struct hs_store *s, uint64_t log, uint64_t first_lsn,
		       const uint8_t *run, size_t len)
{
	struct hs_run r;
	struct ent *e;
	uint32_t epoch = HS_LSN_EPOCH(first_lsn);
	uint64_t last;
	int rc;

	if (s->failed)
		return -HS_ESTOREFAIL;
	rc = hs_run_parse(run, len, &r);
	if (rc < 0)
		return rc;
	if (!epoch || !HS_LSN_ESN(first_lsn) || !hs_run_lsn_ok(first_lsn, r.nrecords))
		return -HS_EPROTO;
	last = first_lsn + r.nrecords - 1;
	rc = ent_get(s, log, &e);
	if (rc < 0)
		return rc;
	if (r.flags & HS_RUN_RECOVERY) {
		if (r.wave < e->m.seal)
			return -HS_ESEALED;
	} else if (epoch <= e->m.seal || epoch <= e->m.soft_seal) {
		return -HS_ESEALED;
	}
	rc = note_part_write(s, e, last);
	if (rc < 0)
		return rc;
	if ((r.flags & HS_RUN_RECOVERY) && r.wave > e->m.seal) {
		e->m.seal = r.wave;
		ent_dirty(s, e, 1, 0);
	} else if (!(r.flags & HS_RUN_RECOVERY) && epoch - 1 > e->m.soft_seal) {
		/* A sequencer of epoch E exists: soft-seal E - 1, so a
		 * sequencer of an older epoch is refused here from now on,
		 * before any recovery seals it (DESIGN §5). */
		e->m.soft_seal = epoch - 1;
		ent_dirty(s, e, 1, 0);
	}
	/* Derived from the data on load: no 'L' write for it. */
	if (last > e->m.max_lsn)
		e->m.max_lsn = last;
	if (first_lsn < e->batch_lo) {
		e->batch_lo = first_lsn;
		ent_dirty(s, e, 0, 0); /* listed, so batch_lo is reset at commit */
	}
	put_run(s, log, first_lsn, run, len);
	return 0;
}

int hs_store_put_raw(struct hs_store *s, uint64_t log, uint64_t lsn, const uint8_t *bytes,
		     size_t len)
{
	struct ent *e;
	int rc;

	if (s->failed)
		return -HS_ESTOREFAIL;
	rc = ent_get(s, log, &e);
	if (rc < 0)
		return rc;
	rc = note_part_write(s, e, lsn);
	if (rc < 0)
		return rc;
	if (lsn < e->batch_lo) {
		e->batch_lo = lsn;
		ent_dirty(s, e, 0, 0);
	}
	put_run(s, log, lsn, bytes, len);
	return 0;
}

/* Common prologue of the metadata stagings. */
static int meta_entry(struct hs_store *s, uint64_t log, struct ent **e)
{
	if (s->failed)
		return -HS_ESTOREFAIL;
	return ent_get(s, log, e);
}

int hs_store_stage_seal(struct hs_store *s, uint64_t log, uint32_t epoch, int soft)
{
	struct ent *e;
	int rc = meta_entry(s, log, &e);
	uint32_t *f;

	if (rc < 0)
		return rc;
	f = soft ? &e->m.soft_seal : &e->m.seal;
	if (epoch > *f) {
		*f = epoch;
		ent_dirty(s, e, 1, 0);
	}
	return 0;
}

int hs_store_stage_release(struct hs_store *s, uint64_t log, uint64_t lsn)
{
	struct ent *e;
	int rc = meta_entry(s, log, &e);

	if (rc < 0)
		return rc;
	/* Not written by itself (see "Derived metadata"): it goes out with
	 * the log's next 'L' record, or at close. */
	if (lsn > e->m.released) {
		e->m.released = lsn;
		e->lazy = 1;
	}
	return 0;
}

int hs_store_stage_lce(struct hs_store *s, uint64_t log, uint32_t lce)
{
	struct ent *e;
	int rc = meta_entry(s, log, &e);

	if (rc < 0)
		return rc;
	if (lce > e->m.lce) {
		e->m.lce = lce;
		ent_dirty(s, e, 1, 0);
	}
	return 0;
}

/* Does partition p hold data of log?  1 (with *max), 0, or <0. */
static int part_has(struct hs_store *s, struct part *p, uint64_t log, uint64_t *max)
{
	struct ent *e;
	int rc;

	if (p != cur_part(s))
		return prec_get(s, p->id, log, max);
	/* The current partition's 'P' value is a lower bound: use the cache. */
	rc = ent_get(s, log, &e);
	if (rc < 0)
		return rc;
	if (e->pm_part != p->id || !e->pm_rec)
		return 0;
	*max = e->pm_max;
	return 1;
}

/* Stage the range deletion of log's runs wholly <= trim in partition p:
 * [d|log|0, d|log|end) where end is the first LSN of the lowest run holding
 * trim + 1, else trim + 1, and at most the lowest first LSN staged for log in
 * this batch (batch_lo) when p is current. */
static int trim_part(struct hs_store *s, struct part *p, uint64_t log, uint64_t trim,
		     uint64_t batch_lo)
{
	uint8_t lo[DKEY_LEN], hi[9], k[DKEY_LEN];
	size_t hin = dkey_end(hi, log);
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	rocksdb_iterator_t *it;
	uint64_t end = 0, first; /* end: exclusive LSN bound; 0 = nothing */
	int whole = 0;           /* delete every key of the log */
	char *err = NULL;
	int rc = 0;

	dkey(lo, log, 0);
	rocksdb_readoptions_set_iterate_lower_bound(ro, (const char *)lo, sizeof(lo));
	rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)hi, hin);
	it = rocksdb_create_iterator_cf(s->db, ro, p->cf);
	if (trim == UINT64_MAX)
		whole = 1;
	else if (straddler(it, log, trim, trim + 1, &first))
		end = first;
	else
		end = trim + 1;
	rocksdb_iter_get_error(it, &err);
	if (err) {
		hs_error("store '%s': trim of log %" PRIu64 ": %s", s->dir, log, err);
		rocksdb_free(err);
		rc = -HS_EIO;
	}
	if (p == cur_part(s) && batch_lo <= trim && (whole || batch_lo < end)) {
		whole = 0;
		end = batch_lo;
	}
	if (!rc && (whole || end > 0)) {
		s->range_staged = 1;
		if (whole) {
			rocksdb_writebatch_delete_range_cf(s->wb, p->cf, (const char *)lo,
							   sizeof(lo), (const char *)hi, hin);
		} else {
			dkey(k, log, end);
			rocksdb_writebatch_delete_range_cf(s->wb, p->cf, (const char *)lo,
							   sizeof(lo), (const char *)k, sizeof(k));
		}
	}
	rocksdb_iter_destroy(it);
	rocksdb_readoptions_destroy(ro);
	return rc;
}

int hs_store_stage_trim(struct hs_store *s, uint64_t log, uint64_t trim)
{
	struct ent *e;
	uint64_t batch_lo, max;
	int rc = meta_entry(s, log, &e);

	if (rc < 0)
		return rc;
	if (trim <= e->m.trim)
		return 0;
	e->m.trim = trim;
	batch_lo = e->batch_lo;
	ent_dirty(s, e, 1, 0);
	for (size_t i = 0; i < s->nparts; i++) {
		struct part *p = s->parts[i];

		rc = part_has(s, p, log, &max);
		if (rc < 0)
			return rc;
		if (!rc)
			continue;
		rc = trim_part(s, p, log, trim, batch_lo);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* ---- clean records (CLEAN) -------------------------------------------- */

static void ckey(uint8_t k[CKEY_LEN], uint64_t log, uint32_t epoch)
{
	k[0] = 'C';
	hs_put64be(k + 1, log);
	k[9] = (uint8_t)(epoch >> 24);
	k[10] = (uint8_t)(epoch >> 16);
	k[11] = (uint8_t)(epoch >> 8);
	k[12] = (uint8_t)epoch;
}

int hs_store_clean_get(struct hs_store *s, uint64_t log, uint32_t epoch, uint32_t *ballot,
		       uint64_t *lng, uint64_t *end)
{
	uint8_t k[CKEY_LEN], v[CREC_LEN];
	size_t vn = 0;
	int rc;

	if (s->failed)
		return -HS_ESTOREFAIL;
	ckey(k, log, epoch);
	rc = meta_get(s, k, sizeof(k), v, sizeof(v), &vn);
	if (rc <= 0)
		return rc;
	if (vn != CREC_LEN || v[0] != 1 || hs_get32(v + 21) != hs_crc32c(0, v, 21)) {
		hs_error("store '%s': corrupt clean record of log %" PRIu64 " epoch %" PRIu32,
			 s->dir, log, epoch);
		return -HS_ECHECKSUM;
	}
	*ballot = hs_get32(v + 1);
	*lng = hs_get64(v + 5);
	*end = hs_get64(v + 13);
	return 1;
}

/* Purge epoch's runs of log in partition p that the recovery did not write
 * (see Clean above); *purged counts the deleted and cut runs. */
static int clean_part(struct hs_store *s, struct part *p, uint64_t log, uint32_t epoch,
		      uint32_t ballot, uint64_t lo, uint64_t hi, uint64_t batch_lo,
		      uint64_t *purged)
{
	uint8_t lk[DKEY_LEN], hk[DKEY_LEN];
	size_t hkn = sizeof(hk);
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	rocksdb_iterator_t *it;
	struct hs_buf cut = { 0 };
	char *err = NULL;
	int rc = 0;

	dkey(lk, log, HS_LSN(epoch, 0));
	if (epoch == UINT32_MAX)
		hkn = dkey_end(hk, log);
	else
		dkey(hk, log, HS_LSN(epoch + 1, 0));
	rocksdb_readoptions_set_iterate_lower_bound(ro, (const char *)lk, sizeof(lk));
	rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)hk, hkn);
	it = rocksdb_create_iterator_cf(s->db, ro, p->cf);
	for (rocksdb_iter_seek(it, (const char *)lk, sizeof(lk)); rocksdb_iter_valid(it);
	     rocksdb_iter_next(it)) {
		size_t kn, vn;
		const uint8_t *key = (const uint8_t *)rocksdb_iter_key(it, &kn);
		const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vn);
		uint64_t first;
		struct hs_run r;
		int ok;

		if (kn != DKEY_LEN)
			break;
		first = hs_get64be(key + 9);
		if (first >= batch_lo)
			break; /* keys are ascending: the rest may be staged too */
		ok = hs_run_parse(v, vn, &r) == 0;
		if (first <= lo) {
			/* A straddler keeps its slots <= lo (fully replicated);
			 * one failing its checksum is left for readers to report. */
			if (!ok || first + r.nrecords - 1 <= lo)
				continue;
			hs_buf_reset(&cut);
			if (hs_run_slice(&r, 0, (uint32_t)(lo - first + 1), &cut) < 0)
				continue;
			rocksdb_writebatch_put_cf(s->wb, p->cf, (const char *)key, kn,
						  (const char *)cut.data, cut.len);
			++*purged;
			continue;
		}
		if (ok && first <= hi + 1 && (r.flags & HS_RUN_RECOVERY) && r.wave == ballot)
			continue;
		rocksdb_writebatch_delete_cf(s->wb, p->cf, (const char *)key, kn);
		++*purged;
	}
	rocksdb_iter_get_error(it, &err);
	if (err) {
		hs_error("store '%s': clean of log %" PRIu64 " epoch %" PRIu32 ": %s", s->dir, log,
			 epoch, err);
		rocksdb_free(err);
		rc = -HS_EIO;
	}
	hs_buf_free(&cut);
	rocksdb_iter_destroy(it);
	rocksdb_readoptions_destroy(ro);
	return rc;
}

int hs_store_stage_clean(struct hs_store *s, uint64_t log, uint32_t epoch, uint32_t ballot,
			 uint64_t lng, uint64_t end, uint64_t *purged)
{
	uint8_t k[CKEY_LEN], v[CREC_LEN];
	uint64_t base = HS_LSN(epoch, 0), lo, hi, batch_lo, max, n = 0;
	uint64_t olng, oend;
	uint32_t oballot;
	struct ent *e;
	int rc;

	if (purged)
		*purged = 0;
	if (!epoch || end < lng || (lng && HS_LSN_EPOCH(lng) != epoch) ||
	    (end && HS_LSN_EPOCH(end) != epoch))
		return -HS_EPROTO;
	rc = meta_entry(s, log, &e);
	if (rc < 0)
		return rc;
	if (ballot < e->m.seal || ballot < e->m.soft_seal)
		return -HS_ESEALED;
	rc = hs_store_clean_get(s, log, epoch, &oballot, &olng, &oend);
	if (rc < 0)
		return rc;
	if (rc && ballot < oballot)
		return -HS_ESEALED;
	batch_lo = e->batch_lo;
	lo = lng > base ? lng : base;
	hi = end > base ? end : base;
	ckey(k, log, epoch);
	v[0] = 1;
	hs_put32(v + 1, ballot);
	hs_put64(v + 5, lng);
	hs_put64(v + 13, end);
	hs_put32(v + 21, hs_crc32c(0, v, 21));
	rocksdb_writebatch_put_cf(s->wb, s->cf_meta, (const char *)k, sizeof(k), (const char *)v,
				  sizeof(v));
	/* The runs deleted here may be those max_lsn and released would be
	 * derived from after a restart: write them down in the same batch. */
	ent_dirty(s, e, 1, 0);
	/* Point deletes and puts out of key order: no memtable insert hints. */
	s->range_staged = 1;
	for (size_t i = 0; i < s->nparts; i++) {
		struct part *p = s->parts[i];

		rc = part_has(s, p, log, &max);
		if (rc < 0)
			return rc;
		if (!rc || max <= lo)
			continue;
		rc = clean_part(s, p, log, epoch, ballot, lo, hi, batch_lo, &n);
		if (rc < 0)
			return rc;
	}
	if (purged)
		*purged = n;
	return 0;
}

/* ---- metadata registers ----------------------------------------------- */

#define RKEY_MAX (1 + 255)

int hs_store_reg_get(struct hs_store *s, const uint8_t *key, size_t klen, struct hs_buf *out)
{
	uint8_t k[RKEY_MAX];
	rocksdb_pinnableslice_t *ps;
	const char *val;
	char *err = NULL;
	size_t n;

	hs_buf_reset(out);
	if (!klen || klen > RKEY_MAX - 1)
		return -HS_EDATA;
	if (s->failed)
		return -HS_ESTOREFAIL;
	k[0] = 'R';
	memcpy(k + 1, key, klen);
	ps = rocksdb_get_pinned_cf(s->db, s->ro, s->cf_meta, (const char *)k, klen + 1, &err);
	if (err) {
		hs_error("store '%s': register read: %s", s->dir, err);
		rocksdb_free(err);
		return -HS_EIO;
	}
	if (!ps)
		return 0;
	val = rocksdb_pinnableslice_value(ps, &n);
	hs_buf_append(out, val, n);
	rocksdb_pinnableslice_destroy(ps);
	return 1;
}

int hs_store_stage_reg(struct hs_store *s, const uint8_t *key, size_t klen, const uint8_t *val,
		       size_t len)
{
	uint8_t k[RKEY_MAX];

	if (!klen || klen > RKEY_MAX - 1)
		return -HS_EDATA;
	if (s->failed)
		return -HS_ESTOREFAIL;
	k[0] = 'R';
	memcpy(k + 1, key, klen);
	rocksdb_writebatch_put_cf(s->wb, s->cf_meta, (const char *)k, klen + 1,
				  (const char *)val, len);
	s->reg_staged = 1;
	return 0;
}

size_t hs_store_staged(const struct hs_store *s)
{
	return s->nstaged;
}

/* ---- commit ------------------------------------------------------------ */

int hs_store_commit(struct hs_store *s)
{
	return hs_store_commit_opts(s, 1);
}

static int cmp_srun(const void *a, const void *b)
{
	const struct srun *x = a, *y = b;

	if (x->log != y->log)
		return x->log < y->log ? -1 : 1;
	if (x->lsn != y->lsn)
		return x->lsn < y->lsn ? -1 : 1;
	return x->off < y->off ? -1 : x->off > y->off;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Put the deferred runs into the batch in key order (see "Insertion order"). */
static void put_deferred(struct hs_store *s)
{
	rocksdb_column_family_handle_t *cf = cur_part(s)->cf;

	if (s->nsr > 1)
		qsort(s->sr, s->nsr, sizeof(*s->sr), cmp_srun);
	for (size_t i = 0; i < s->nsr; i++) {
		uint8_t k[DKEY_LEN];

		dkey(k, s->sr[i].log, s->sr[i].lsn);
		rocksdb_writebatch_put_cf(s->wb, cf, (const char *)k, sizeof(k),
					  (const char *)s->sbuf.data + s->sr[i].off, s->sr[i].len);
	}
	s->nsr = 0;
	hs_buf_reset(&s->sbuf);
	s->have_last = 0;
}

/* Put the dirty 'L' records, then the dirty 'P' records, each in log order,
 * and clear the dirty list. */
static void put_dirty(struct hs_store *s)
{
	if (s->ndirty > 1)
		qsort(s->dirty, s->ndirty, sizeof(*s->dirty), cmp_u64);
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < s->ndirty; i++) {
			struct ent *e = tab_find(s, s->dirty[i]);
			uint8_t k[17], v[LMETA_LEN];

			if (!pass && e->dirty_m) {
				e->lazy = 0;
				mkey(k, 'L', e->log);
				enc_lmeta(v, &e->m);
				rocksdb_writebatch_put_cf(s->wb, s->cf_meta, (const char *)k, 9,
							  (const char *)v, LMETA_LEN);
			}
			if (pass && e->dirty_p) {
				pkey(k, e->pm_part, e->log);
				enc_prec(v, e->pm_max);
				rocksdb_writebatch_put_cf(s->wb, s->cf_meta, (const char *)k, 17,
							  (const char *)v, PREC_LEN);
			}
			if (pass) {
				e->dirty_m = e->dirty_p = e->listed = 0;
				e->batch_lo = UINT64_MAX;
			}
		}
	}
	s->ndirty = 0;
}

int hs_store_commit_opts(struct hs_store *s, int sync)
{
	struct part *p = cur_part(s);
	rocksdb_writeoptions_t *wo;
	char *err = NULL;
	uint64_t runs = s->nstaged, bytes = s->staged_bytes;
	int synced;

	if (s->failed)
		return -HS_ESTOREFAIL;
	put_deferred(s);
	put_dirty(s);
	if (bytes) {
		uint8_t k[9], v[QREC_LEN];

		p->bytes += bytes;
		mkey(k, 'Q', p->id);
		enc_qrec(v, p);
		rocksdb_writebatch_put_cf(s->wb, s->cf_meta, (const char *)k, 9, (const char *)v,
					  QREC_LEN);
	}
	if (!rocksdb_writebatch_count(s->wb))
		return 0;
	/* wo_meta syncs unless HS_DUR_MEMORY: registers never wait for the
	 * background WAL sync of HS_DUR_ASYNC.  A range deletion needs write
	 * options without memtable insert hints (set_options): wo_meta when
	 * the commit is synced anyway, else wo_plain. */
	if (s->reg_staged) {
		wo = s->wo_meta;
		synced = s->dur != HS_DUR_MEMORY;
	} else if (sync) {
		wo = s->wo;
		synced = s->dur == HS_DUR_SYNC;
	} else {
		wo = s->wo_nosync;
		synced = 0;
	}
	if (s->range_staged && wo != s->wo_meta)
		wo = synced ? s->wo_meta : s->wo_plain;
	rocksdb_write(s->db, wo, s->wb, &err);
	rocksdb_writebatch_clear(s->wb);
	s->reg_staged = 0;
	s->range_staged = 0;
	s->nstaged = 0;
	s->staged_bytes = 0;
	if (err)
		return fail(s, "commit", err);
	s->st.commits++;
	/* A synced write syncs every WAL record before it as well. */
	if (synced) {
		s->st.commits_sync++;
		s->unsynced = 0;
	} else {
		s->st.commits_nosync++;
		if (s->dur != HS_DUR_MEMORY)
			s->unsynced++;
	}
	s->st.runs += runs;
	s->st.bytes += bytes;
	/* The commit is durable whatever happens here; a failed roll fails
	 * the store for the next call. */
	roll_if_due(s, now_ms());
	return 0;
}

int hs_store_sync_wal(struct hs_store *s)
{
	char *err = NULL;

	if (s->failed)
		return -HS_ESTOREFAIL;
	if (s->dur == HS_DUR_MEMORY || !s->unsynced)
		return 0;
	rocksdb_flush_wal(s->db, 1, &err);
	if (err)
		return fail(s, "WAL sync", err);
	s->unsynced = 0;
	s->st.wal_syncs++;
	return 0;
}

uint64_t hs_store_unsynced(const struct hs_store *s)
{
	return s->unsynced;
}

const char *hs_store_failed(const struct hs_store *s)
{
	return s->failed;
}

/* ---- reading ----------------------------------------------------------- */

static void child_load(struct child *c)
{
	size_t kn;
	const uint8_t *k;

	c->live = rocksdb_iter_valid(c->it);
	if (!c->live)
		return;
	k = (const uint8_t *)rocksdb_iter_key(c->it, &kn);
	if (kn != DKEY_LEN) {
		/* Not a data key of ours: stop this child rather than misread. */
		c->live = 0;
		return;
	}
	c->key = hs_get64be(k + 9);
}

int hs_store_iter_new(struct hs_store *s, uint64_t log, uint64_t from_lsn,
		      struct hs_store_iter **out)
{
	struct hs_store_iter *it;
	struct ent *e;
	uint8_t k[DKEY_LEN];
	int rc;

	if (s->failed)
		return -HS_ESTOREFAIL;
	rc = ent_get(s, log, &e);
	if (rc < 0)
		return rc;
	it = hs_xcalloc(1, sizeof(*it) + s->nparts * sizeof(it->c[0]));
	it->s = s;
	it->log = log;
	it->trim = e->m.trim;
	it->from = from_lsn;
	dkey(it->lo, log, 0);
	it->hilen = dkey_end(it->hi, log);
	it->ro = rocksdb_readoptions_create();
	rocksdb_readoptions_set_iterate_lower_bound(it->ro, (const char *)it->lo, sizeof(it->lo));
	rocksdb_readoptions_set_iterate_upper_bound(it->ro, (const char *)it->hi, it->hilen);
	for (size_t i = 0; i < s->nparts; i++) {
		struct part *p = s->parts[i];
		struct child *c;
		uint64_t max, first;

		rc = part_has(s, p, log, &max);
		if (rc < 0) {
			hs_store_iter_free(it);
			return rc;
		}
		if (!rc || max < from_lsn)
			continue;
		c = &it->c[it->n++];
		c->p = p;
		p->refs++;
		c->it = rocksdb_create_iterator_cf(s->db, it->ro, p->cf);
		/* Start at the lowest run containing from_lsn, if any. */
		if (from_lsn && straddler(c->it, log, from_lsn, from_lsn, &first))
			dkey(k, log, first);
		else
			dkey(k, log, from_lsn);
		rocksdb_iter_seek(c->it, (const char *)k, sizeof(k));
		child_load(c);
	}
	*out = it;
	return 0;
}

int hs_store_iter_next(struct hs_store_iter *it, uint64_t *first_lsn, const uint8_t **run,
		       size_t *len)
{
	for (;;) {
		struct child *best = NULL;
		struct hs_run r;
		const uint8_t *v;
		size_t vn;

		if (it->done)
			return 0;
		for (int i = 0; i < it->n; i++) {
			struct child *c = &it->c[i];

			if (c->consumed) {
				c->consumed = 0;
				rocksdb_iter_next(c->it);
				child_load(c);
			}
		}
		/* Children are in partition order: on equal keys the later
		 * (newer) one wins. */
		for (int i = 0; i < it->n; i++) {
			struct child *c = &it->c[i];

			if (c->live && (!best || c->key <= best->key))
				best = c;
		}
		if (!best) {
			for (int i = 0; i < it->n; i++) {
				char *err = NULL;

				rocksdb_iter_get_error(it->c[i].it, &err);
				if (err) {
					hs_error("store '%s': reading log %" PRIu64 ": %s",
						 it->s->dir, it->log, err);
					rocksdb_free(err);
					it->done = 1;
					return -HS_EIO;
				}
			}
			it->done = 1;
			return 0;
		}
		for (int i = 0; i < it->n; i++)
			if (it->c[i].live && it->c[i].key == best->key)
				it->c[i].consumed = 1;
		v = (const uint8_t *)rocksdb_iter_value(best->it, &vn);
		*first_lsn = best->key;
		*run = v;
		*len = vn;
		if (hs_run_parse(v, vn, &r) < 0) {
			hs_warn("store '%s': log %" PRIu64 " run at %" PRIu64
				" in partition p%016" PRIx64 " fails its checksum",
				it->s->dir, it->log, best->key, best->p->id);
			return -HS_ECHECKSUM;
		}
		/* Trimmed, or overlapped runs met on the way to from. */
		if (best->key + (r.nrecords - 1) <= it->trim ||
		    best->key + (r.nrecords - 1) < it->from)
			continue;
		return 1;
	}
}

void hs_store_iter_free(struct hs_store_iter *it)
{
	if (!it)
		return;
	for (int i = 0; i < it->n; i++) {
		rocksdb_iter_destroy(it->c[i].it);
		part_unref(it->c[i].p);
	}
	rocksdb_readoptions_destroy(it->ro);
	free(it);
}

int hs_store_epoch_info(struct hs_store *s, uint64_t log, uint32_t epoch, uint64_t *lng,
			uint64_t *max_lsn)
{
	uint8_t lo[DKEY_LEN], hi[DKEY_LEN], k[DKEY_LEN];
	size_t hin = sizeof(hi);
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	uint64_t best = 0, max;
	int found = 0, rc = 0;

	dkey(lo, log, HS_LSN(epoch, 0));
	if (epoch == UINT32_MAX)
		hin = dkey_end(hi, log);
	else
		dkey(hi, log, HS_LSN(epoch + 1, 0));
	dkey(k, log, HS_LSN(epoch, UINT32_MAX));
	rocksdb_readoptions_set_iterate_lower_bound(ro, (const char *)lo, sizeof(lo));
	rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)hi, hin);
	for (size_t i = 0; i < s->nparts && !rc; i++) {
		struct part *p = s->parts[i];
		rocksdb_iterator_t *it;
		char *err = NULL;

		rc = part_has(s, p, log, &max);
		if (rc <= 0)
			continue;
		rc = 0;
		if (max < HS_LSN(epoch, 0))
			continue;
		it = rocksdb_create_iterator_cf(s->db, ro, p->cf);
		for (rocksdb_iter_seek_for_prev(it, (const char *)k, sizeof(k));
		     rocksdb_iter_valid(it); rocksdb_iter_prev(it)) {
			size_t kn, vn;
			const uint8_t *key = (const uint8_t *)rocksdb_iter_key(it, &kn);
			const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vn);
			uint64_t first = kn == DKEY_LEN ? hs_get64be(key + 9) : 0;
			struct hs_run r;

			if (found && first < best)
				break;
			if (hs_run_parse(v, vn, &r) < 0) {
				hs_warn("store '%s': log %" PRIu64 " run at %" PRIu64
					" fails its checksum; not counted in epoch %" PRIu32,
					s->dir, log, first, epoch);
				continue;
			}
			/* >=: on equal keys the newer partition wins. */
			if (!found || first >= best) {
				best = first;
				*lng = r.lng;
				*max_lsn = first + r.nrecords - 1;
				found = 1;
			}
			break;
		}
		rocksdb_iter_get_error(it, &err);
		if (err) {
			hs_error("store '%s': epoch info of log %" PRIu64 ": %s", s->dir, log, err);
			rocksdb_free(err);
			rc = -HS_EIO;
		}
		rocksdb_iter_destroy(it);
	}
	rocksdb_readoptions_destroy(ro);
	return rc < 0 ? rc : found;
}

/* ---- maintenance ------------------------------------------------------- */

enum { PREC_KEEP = 1 }; /* part_trimmed: a log still has data in the partition */

/* part_trimmed's step: PREC_KEEP unless the record's log is trimmed past
 * its data there. */
static int prec_trimmed(struct hs_store *s, struct part *p, const uint8_t *k, size_t kn,
			const uint8_t *v, size_t vn, void *arg)
{
	uint64_t max;
	struct ent *e;
	int rc;

	/* Unreadable: keep the partition; never drop on doubt. */
	if (kn != 17 || dec_prec(v, vn, &max) < 0)
		return PREC_KEEP;
	rc = ent_get(s, hs_get64be(k + 9), &e);
	if (rc < 0)
		return rc;
	return max > e->m.trim ? PREC_KEEP : 0;
}

/* 1 if every log in partition p is trimmed past its data, 0, or <0. */
static int part_trimmed(struct hs_store *s, struct part *p)
{
	int rc = part_precs(s, p, prec_trimmed, NULL);

	return rc < 0 ? rc : rc == PREC_KEEP ? 0 : 1;
}

static int part_drop(struct hs_store *s, size_t idx)
{
	struct part *p = s->parts[idx];
	rocksdb_writebatch_t *wb;
	uint8_t q[9], lo[9], hi[9];
	char name[32], *err = NULL;

	part_name(name, sizeof(name), p->id);
	/* Drop first: records without a column family are cleaned up on open. */
	rocksdb_drop_column_family(s->db, p->cf, &err);
	if (err)
		return fail(s, "dropping a partition", err);
	memmove(s->parts + idx, s->parts + idx + 1, (s->nparts - idx - 1) * sizeof(*s->parts));
	s->nparts--;
	mkey(q, 'Q', p->id);
	mkey(lo, 'P', p->id);
	mkey(hi, 'P', p->id + 1);
	/* Iterators still reading it keep the data alive until they go. */
	part_unref(p);
	wb = rocksdb_writebatch_create();
	rocksdb_writebatch_delete_cf(wb, s->cf_meta, (const char *)q, sizeof(q));
	rocksdb_writebatch_delete_range_cf(wb, s->cf_meta, (const char *)lo, sizeof(lo),
					   (const char *)hi, sizeof(hi));
	rocksdb_write(s->db, s->wo_meta, wb, &err);
	rocksdb_writebatch_destroy(wb);
	if (err)
		return fail(s, "deleting partition records", err);
	hs_info("store '%s': dropped partition %s (trimmed)", s->dir, name);
	s->st.dropped++;
	return 0;
}

int hs_store_maintain(struct hs_store *s, uint64_t now_ms_)
{
	int dropped = 0, rc;

	if (s->failed)
		return -HS_ESTOREFAIL;
	if (s->nstaged || s->ndirty || rocksdb_writebatch_count(s->wb))
		return -HS_EAGAIN;
	rc = roll_if_due(s, now_ms_);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i + 1 < s->nparts;) {
		rc = part_trimmed(s, s->parts[i]);
		if (rc < 0)
			return rc;
		if (!rc) {
			i++;
			continue;
		}
		rc = part_drop(s, i);
		if (rc < 0)
			return rc;
		dropped++;
	}
	return dropped;
}

void hs_store_stats(const struct hs_store *s, struct hs_store_stats *st)
{
	*st = s->st;
	st->partitions = s->nparts;
}

int hs_store_partitions(const struct hs_store *s, char *buf, size_t n)
{
	size_t off = 0;

	buf[0] = 0;
	for (size_t i = 0; i < s->nparts; i++) {
		char name[32];
		int w;

		part_name(name, sizeof(name), s->parts[i]->id);
		w = snprintf(buf + off, n - off, "%s%s", i ? " " : "", name);
		if (w < 0 || (size_t)w >= n - off) {
			buf[off] = 0;
			break;
		}
		off += (size_t)w;
	}
	return (int)s->nparts;
}

int hs_store_reg_scan(struct hs_store *s, const uint8_t *prefix, size_t plen,
		      const uint8_t *after, size_t alen, size_t max,
		      int (*fn)(void *arg, const uint8_t *key, size_t klen, const uint8_t *val,
				size_t vlen),
		      void *arg)
{
	uint8_t k[RKEY_MAX + 1];
	rocksdb_iterator_t *it;
	char *err = NULL;
	size_t n = 0, kn, vn, start_len;
	int more = 0, rc = 0;

	if (plen > RKEY_MAX - 1 || alen > RKEY_MAX - 1)
		return -HS_EDATA;
	if (s->failed)
		return -HS_ESTOREFAIL;
	k[0] = 'R';
	/* Start at the larger of prefix and after; skip after itself. */
	if (alen && (alen > plen ? memcmp(after, prefix, plen) >= 0
				 : memcmp(after, prefix, alen) > 0)) {
		memcpy(k + 1, after, alen);
		start_len = alen + 1;
	} else {
		memcpy(k + 1, prefix, plen);
		start_len = plen + 1;
		alen = 0;
	}
	it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf_meta);
	for (rocksdb_iter_seek(it, (const char *)k, start_len); rocksdb_iter_valid(it);
	     rocksdb_iter_next(it)) {
		const uint8_t *key = (const uint8_t *)rocksdb_iter_key(it, &kn);
		const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vn);

		if (kn < 1 + plen || key[0] != 'R' || memcmp(key + 1, prefix, plen))
			break;
		if (alen && kn - 1 == alen && !memcmp(key + 1, after, alen))
			continue;
		if (n == max) {
			more = 1;
			break;
		}
		rc = fn(arg, key + 1, kn - 1, v, vn);
		if (rc < 0)
			break;
		n++;
	}
	rocksdb_iter_get_error(it, &err);
	rocksdb_iter_destroy(it);
	if (err) {
		hs_error("store '%s': register scan: %s", s->dir, err);
		rocksdb_free(err);
		return -HS_EIO;
	}
	return rc < 0 ? rc : more;
}

int hs_store_locate(struct hs_store *s, uint64_t log, uint64_t from, uint64_t until,
		    uint64_t time_ms, uint64_t *lsn)
{
	struct hs_store_iter *it;
	const uint8_t *run;
	uint64_t first;
	size_t len;
	int r;

	*lsn = 0;
	r = hs_store_iter_new(s, log, from, &it);
	if (r < 0)
		return r;
	while ((r = hs_store_iter_next(it, &first, &run, &len)) != 0) {
		struct hs_run rr;
		struct hs_run_iter ri;
		uint64_t ts, at = first;

		if (r == -HS_ECHECKSUM)
			continue;
		if (r < 0)
			break;
		if (first >= until)
			break;
		if (hs_run_parse_nocrc(run, len, &rr) < 0 || (rr.flags & (HS_RUN_HOLE | HS_RUN_BRIDGE)))
			continue;
		hs_run_iter_init(&ri, &rr);
		for (; hs_run_next(&ri, &ts, NULL, NULL); at++) {
			if (at < from)
				continue;
			if (at >= until)
				break;
			if (ts >= time_ms) {
				*lsn = at;
				hs_store_iter_free(it);
				return 0;
			}
		}
	}
	hs_store_iter_free(it);
	return r < 0 ? r : 0;
}
