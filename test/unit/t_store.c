/* t_store.c - the Tier1 store (libcore/store.c) on real RocksDB directories. */
#include <ftw.h>
#include <rocksdb/c.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "log.h"
#include "proto.h"
#include "run.h"
#include "store.h"
#include "tap.h"
#include "wire.h"

#define E(e, n) HS_LSN(e, n)

static struct hs_buf rb; /* scratch for built runs */

/* Build a run of n records whose payloads depend on seed; returns its bytes
 * in rb (valid until the next mkrun). */
static const uint8_t *mkrun(size_t *len, uint8_t flags, uint64_t lng, uint32_t wave, uint32_t n,
			    uint32_t seed, uint32_t paylen)
{
	static const uint32_t cs[2] = { 1, 2 };
	struct hs_run_builder b;
	uint8_t pay[256];

	hs_buf_reset(&rb);
	hs_run_begin(&b, &rb, flags, lng, wave, cs, 2);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t pl = (flags & (HS_RUN_HOLE | HS_RUN_BRIDGE)) ? 0 : paylen;

		for (uint32_t j = 0; j < pl; j++)
			pay[j] = (uint8_t)(seed * 31 + i * 7 + j);
		hs_run_add(&b, 1000 + i, pay, pl);
	}
	*len = hs_run_end(&b);
	return rb.data;
}

static int stage(struct hs_store *s, uint64_t log, uint64_t lsn, uint8_t flags, uint32_t wave,
		 uint32_t n, uint32_t seed)
{
	size_t len;
	const uint8_t *r = mkrun(&len, flags, 0, wave, n, seed, 16);

	return hs_store_stage_run(s, log, lsn, r, len);
}

/* Read the whole of log from `from`: the first LSNs in order into firsts
 * (up to max), each run checked against a rebuilt copy when seeds != NULL.
 * Returns the number of runs, or -1 on an unexpected error. */
static int readall(struct hs_store *s, uint64_t log, uint64_t from, uint64_t *firsts, int max)
{
	struct hs_store_iter *it;
	uint64_t f;
	const uint8_t *p;
	size_t n;
	int k = 0, rc;

	if (hs_store_iter_new(s, log, from, &it) < 0)
		return -1;
	while ((rc = hs_store_iter_next(it, &f, &p, &n)) == 1) {
		if (k < max)
			firsts[k] = f;
		k++;
	}
	hs_store_iter_free(it);
	return rc < 0 ? -1 : k;
}

/* The run at log/first read back equals a rebuilt run (n records, seed). */
static int same_run(struct hs_store *s, uint64_t log, uint64_t first, uint8_t flags,
		    uint32_t wave, uint32_t n, uint32_t seed)
{
	struct hs_store_iter *it;
	uint64_t f;
	const uint8_t *p, *want;
	size_t len, wlen;
	int ok = 0;

	if (hs_store_iter_new(s, log, first, &it) < 0)
		return 0;
	if (hs_store_iter_next(it, &f, &p, &len) == 1 && f == first) {
		want = mkrun(&wlen, flags, 0, wave, n, seed, 16);
		ok = wlen == len && !memcmp(want, p, len);
	}
	hs_store_iter_free(it);
	return ok;
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static char *mktmp(void)
{
	const char *t = getenv("TMPDIR");
	char *d;

	if (asprintf(&d, "%s/t_store.XXXXXX", t && *t ? t : "/tmp") < 0 || !mkdtemp(d))
		abort();
	return d;
}

static void rmtree(char *d)
{
	nftw(d, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(d);
}

static struct hs_store *open_at(const char *dir, uint64_t part_bytes, enum hs_durability dur)
{
	struct hs_store_opts o = { .dir = dir, .durability = dur, .partition_bytes = part_bytes };
	struct hs_store *s = NULL;
	int rc = hs_store_open(&o, &s);

	if (rc < 0) {
		printf("# open %s: %s\n", dir, hs_strerror(rc));
		return NULL;
	}
	return s;
}

/* Count the data keys of log in every partition, straight from RocksDB. */
static int raw_count(const char *dir, uint64_t log, char *cfs, size_t cfs_n)
{
	rocksdb_options_t *o = rocksdb_options_create();
	size_t n = 0, off = 0;
	char *err = NULL, **names = rocksdb_list_column_families(o, dir, &n, &err);
	const rocksdb_options_t **oo;
	rocksdb_column_family_handle_t **h;
	rocksdb_t *db;
	int count = 0;

	cfs[0] = 0;
	if (err) {
		printf("# list: %s\n", err);
		return -1;
	}
	oo = calloc(n, sizeof(*oo));
	h = calloc(n, sizeof(*h));
	for (size_t i = 0; i < n; i++) {
		oo[i] = o;
		off += (size_t)snprintf(cfs + off, cfs_n - off, "%s%s", i ? " " : "", names[i]);
	}
	db = rocksdb_open_for_read_only_column_families(o, dir, (int)n, (const char *const *)names,
							oo, h, 0, &err);
	if (err) {
		printf("# open ro: %s\n", err);
		count = -1;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
		rocksdb_iterator_t *it;
		uint8_t k[9];

		if (names[i][0] != 'p')
			goto next;
		it = rocksdb_create_iterator_cf(db, ro, h[i]);
		k[0] = 'd';
		hs_put64be(k + 1, log);
		for (rocksdb_iter_seek(it, (const char *)k, 9); rocksdb_iter_valid(it);
		     rocksdb_iter_next(it)) {
			size_t kn;
			const char *key = rocksdb_iter_key(it, &kn);

			if (kn < 9 || memcmp(key, k, 9))
				break;
			count++;
		}
		rocksdb_iter_destroy(it);
next:
		rocksdb_readoptions_destroy(ro);
	}
	for (size_t i = 0; i < n; i++)
		rocksdb_column_family_handle_destroy(h[i]);
	rocksdb_close(db);
out:
	free(oo);
	free(h);
	rocksdb_list_column_families_destroy(names, n);
	rocksdb_options_destroy(o);
	return count;
}

static void t_basic(void)
{
	char *dir = mktmp();
	struct hs_store *s = open_at(dir, 0, HS_DUR_SYNC);
	struct hs_log_meta m;
	uint64_t f[8];

	ok(s != NULL, "open a fresh store");
	if (!s)
		return;
	is_int(stage(s, 1, E(1, 1), 0, 1, 10, 1), 0, "stage log 1 run 1");
	is_int(stage(s, 1, E(1, 11), 0, 1, 10, 2), 0, "stage log 1 run 2");
	is_int(stage(s, 2, E(1, 1), 0, 1, 5, 3), 0, "stage log 2 run");
	is_int(hs_store_staged(s), 3, "three runs staged");
	hs_store_meta(s, 1, &m);
	is_int(m.max_lsn, E(1, 20), "staged max_lsn visible before commit");
	is_int(readall(s, 1, 0, f, 8), 0, "iterators do not see staged runs");
	is_int(hs_store_commit(s), 0, "commit");
	is_int(hs_store_staged(s), 0, "nothing staged after commit");
	is_int(readall(s, 1, 0, f, 8), 2, "log 1 has two runs");
	ok(f[0] == E(1, 1) && f[1] == E(1, 11), "in LSN order");
	ok(same_run(s, 1, E(1, 1), 0, 1, 10, 1) && same_run(s, 1, E(1, 11), 0, 1, 10, 2),
	   "log 1 runs read back identical");
	ok(same_run(s, 2, E(1, 1), 0, 1, 5, 3), "log 2 run read back identical");
	is_int(readall(s, 1, E(1, 15), f, 8), 1, "from inside run 2: one run");
	is_int(f[0], E(1, 11), "the run containing from is returned");
	is_int(readall(s, 1, E(1, 10), f, 8), 2, "from the last LSN of run 1: both");
	is_int(readall(s, 1, E(1, 21), f, 8), 0, "from past the end: none");
	is_int(readall(s, 3, 0, f, 8), 0, "unknown log: none");
	hs_store_meta(s, 3, &m);
	ok(!m.seal && !m.max_lsn && !m.trim, "unknown log meta is zero");
	is_int(stage(s, 1, E(1, 30), 0, 1, 1, 9), 0, "a staged run ...");
	is_int(hs_store_stage_release(s, 1, E(1, 20)), 0, "... and a release ...");
	hs_store_close(s);

	s = open_at(dir, 0, HS_DUR_SYNC);
	ok(s != NULL, "reopen");
	if (!s)
		goto out;
	ok(same_run(s, 1, E(1, 1), 0, 1, 10, 1) && same_run(s, 1, E(1, 11), 0, 1, 10, 2) &&
		   same_run(s, 2, E(1, 1), 0, 1, 5, 3),
	   "committed runs survive close/open");
	is_int(readall(s, 1, 0, f, 8), 2, "... uncommitted run discarded by close");
	hs_store_meta(s, 1, &m);
	is_int(m.max_lsn, E(1, 20), "max_lsn persisted");
	is_int(m.released, 0, "uncommitted release discarded");
	{
		uint64_t lng = 0, max = 0;

		is_int(hs_store_epoch_info(s, 1, 1, &lng, &max), 1, "epoch_info: epoch 1 held");
		is_int(max, E(1, 20), "epoch_info: max LSN of epoch 1");
		is_int(hs_store_epoch_info(s, 1, 2, &lng, &max), 0, "epoch_info: epoch 2 not held");
	}
	hs_store_close(s);
out:
	rmtree(dir);
}

static void t_seal(void)
{
	char *dir = mktmp();
	struct hs_store *s = open_at(dir, 0, HS_DUR_SYNC);
	struct hs_log_meta m;
	uint64_t f[8];
	size_t len;
	const uint8_t *r;

	if (!ok(s != NULL, "open"))
		return;
	is_int(stage(s, 1, E(1, 1), 0, 1, 3, 1), 0, "epoch 1 run accepted");
	is_int(hs_store_stage_seal(s, 1, 3, 0), 0, "seal at 3");
	is_int(stage(s, 1, E(1, 4), 0, 1, 3, 1), -HS_ESEALED, "epoch 1 run refused after seal 3");
	is_int(stage(s, 1, E(3, 1), 0, 1, 3, 1), -HS_ESEALED, "epoch 3 run refused (<= seal)");
	is_int(stage(s, 1, E(4, 1), 0, 1, 3, 1), 0, "epoch 4 run accepted");
	is_int(stage(s, 1, E(1, 4), HS_RUN_RECOVERY, 2, 2, 5), -HS_ESEALED,
	       "recovery run with ballot 2 < seal 3 refused");
	is_int(stage(s, 1, E(1, 4), HS_RUN_RECOVERY, 3, 2, 5), 0,
	       "recovery run with ballot 3 == seal accepted");
	is_int(stage(s, 1, E(1, 6), HS_RUN_HOLE | HS_RUN_RECOVERY, 5, 2, 0), 0,
	       "recovery hole with ballot 5 accepted");
	hs_store_meta(s, 1, &m);
	is_int(m.seal, 5, "accepted recovery run raised the seal to its ballot");
	is_int(stage(s, 1, E(5, 1), 0, 1, 1, 1), -HS_ESEALED, "epoch 5 now refused");
	is_int(hs_store_stage_seal(s, 1, 2, 0), 0, "seal at 2 ...");
	hs_store_meta(s, 1, &m);
	is_int(m.seal, 5, "... never lowers");
	/* Soft seal. */
	is_int(hs_store_stage_seal(s, 2, 2, 1), 0, "soft seal log 2 at 2");
	is_int(stage(s, 2, E(2, 1), 0, 1, 1, 1), -HS_ESEALED, "epoch 2 refused by soft seal");
	is_int(stage(s, 2, E(3, 1), 0, 1, 1, 1), 0, "epoch 3 accepted");
	hs_store_stage_seal(s, 2, 1, 1);
	hs_store_meta(s, 2, &m);
	ok(m.soft_seal == 2 && m.seal == 0, "soft seal never lowers, hard seal untouched");
	/* Malformed runs. */
	r = mkrun(&len, 0, 0, 1, 3, 1, 16);
	rb.data[len - 1] ^= 1;
	is_int(hs_store_stage_run(s, 1, E(9, 1), r, len), -HS_ECHECKSUM, "bad CRC refused");
	is_int(hs_store_stage_run(s, 1, E(9, 1), r, 10), -HS_EPROTO, "truncated run refused");
	is_int(stage(s, 1, HS_LSN(9, 0xfffffffe), 0, 1, 3, 1), -HS_EPROTO,
	       "run crossing an epoch refused");
	is_int(stage(s, 1, HS_LSN(9, 0), 0, 1, 1, 1), -HS_EPROTO, "esn 0 refused");
	is_int(hs_store_commit(s), 0, "commit");
	/* release / lce / trim never lower. */
	hs_store_stage_release(s, 1, E(4, 2));
	hs_store_stage_release(s, 1, E(4, 1));
	hs_store_stage_lce(s, 1, 3);
	hs_store_stage_lce(s, 1, 2);
	hs_store_stage_trim(s, 1, E(1, 2));
	hs_store_stage_trim(s, 1, E(1, 1));
	is_int(hs_store_commit(s), 0, "commit metadata only");
	hs_store_close(s);
	s = open_at(dir, 0, HS_DUR_SYNC);
	if (!ok(s != NULL, "reopen"))
		goto out;
	hs_store_meta(s, 1, &m);
	ok(m.seal == 5 && m.released == E(4, 2) && m.lce == 3 && m.trim == E(1, 2) &&
		   m.max_lsn == E(4, 3),
	   "seal/release/lce/trim/max_lsn persisted and never lowered");
	hs_store_meta(s, 2, &m);
	is_int(m.soft_seal, 2, "soft seal persisted");
	is_int(readall(s, 1, 0, f, 8), 4, "log 1: runs e1n1 (trimmed partly), e1n4, e1n6, e4n1");
	ok(f[0] == E(1, 1) && f[1] == E(1, 4) && f[2] == E(1, 6) && f[3] == E(4, 1),
	   "recovery runs stored in order");
	hs_store_close(s);
out:
	rmtree(dir);
}

static void t_trim(void)
{
	char *dir = mktmp();
	struct hs_store *s = open_at(dir, 0, HS_DUR_SYNC);
	uint64_t f[8];
	char cfs[512];

	if (!ok(s != NULL, "open"))
		return;
	for (int i = 0; i < 4; i++)
		stage(s, 7, E(1, 1 + 10 * i), 0, 1, 10, i);
	stage(s, 8, E(1, 1), 0, 1, 10, 1);
	is_int(hs_store_commit(s), 0, "commit 4 runs of log 7");
	is_int(hs_store_stage_trim(s, 7, E(1, 15)), 0, "trim log 7 at e1n15");
	/* A run staged in the same batch that straddles the trim survives. */
	is_int(stage(s, 7, E(1, 41), 0, 1, 10, 4), 0, "stage e1n41..50");
	is_int(hs_store_stage_trim(s, 7, E(1, 45)), 0, "trim at e1n45 in the same batch");
	is_int(hs_store_commit(s), 0, "commit");
	is_int(readall(s, 7, 0, f, 8), 1, "after trim, one run left from 0");
	is_int(f[0], E(1, 41), "the first run returned contains trim + 1");
	ok(same_run(s, 7, E(1, 41), 0, 1, 10, 4), "straddling run intact");
	is_int(readall(s, 8, 0, f, 8), 1, "log 8 untouched");
	hs_store_close(s);
	is_int(raw_count(dir, 7, cfs, sizeof(cfs)), 1, "trimmed runs deleted from RocksDB");

	s = open_at(dir, 0, HS_DUR_SYNC);
	if (!ok(s != NULL, "reopen"))
		goto out;
	is_int(hs_store_stage_trim(s, 7, E(1, 43)), 0, "a lower trim ...");
	{
		struct hs_log_meta m;

		hs_store_meta(s, 7, &m);
		is_int(m.trim, E(1, 45), "... does not lower it");
	}
	is_int(hs_store_stage_trim(s, 7, E(1, 50)), 0, "trim everything");
	is_int(hs_store_commit(s), 0, "commit");
	is_int(readall(s, 7, 0, f, 8), 0, "nothing left");
	hs_store_close(s);
	is_int(raw_count(dir, 7, cfs, sizeof(cfs)), 0, "all deleted");
out:
	rmtree(dir);
}

static void t_partitions(void)
{
	char *dir = mktmp();
	struct hs_store *s = open_at(dir, 1, HS_DUR_SYNC); /* roll after every commit */
	struct hs_store_stats st;
	uint64_t f[16];
	char names[512], cfs[512];
	int n;

	if (!ok(s != NULL, "open with partition_bytes 1"))
		return;
	stage(s, 1, E(1, 1), 0, 1, 5, 1);
	stage(s, 2, E(1, 1), 0, 1, 5, 1);
	hs_store_commit(s);
	stage(s, 1, E(1, 6), 0, 1, 5, 2);
	hs_store_commit(s);
	stage(s, 1, E(1, 11), 0, 1, 5, 3);
	stage(s, 2, E(1, 6), 0, 1, 5, 3);
	hs_store_commit(s);
	n = hs_store_partitions(s, names, sizeof(names));
	ok(n >= 3, "several partitions: %s", names);
	is_int(readall(s, 1, 0, f, 16), 3, "log 1: three runs across partitions");
	ok(f[0] == E(1, 1) && f[1] == E(1, 6) && f[2] == E(1, 11), "merged in LSN order");
	ok(same_run(s, 1, E(1, 6), 0, 1, 5, 2), "run in partition 2 intact");
	/* Recovery rewrites e1n6 in a newer partition: the newer copy wins once. */
	is_int(stage(s, 1, E(1, 6), HS_RUN_RECOVERY, 2, 5, 77), 0, "recovery rewrite of e1n6");
	hs_store_commit(s);
	is_int(readall(s, 1, 0, f, 16), 3, "still three runs (no duplicate)");
	ok(same_run(s, 1, E(1, 6), HS_RUN_RECOVERY, 2, 5, 77), "newer partition's copy wins");
	{
		uint64_t lng, max;

		is_int(hs_store_epoch_info(s, 1, 1, &lng, &max), 1, "epoch info over partitions");
		is_int(max, E(1, 15), "max LSN from the newest run");
	}
	/* Trim every log past partition 1 (log 1 up to e1n5, log 2 to e1n5). */
	hs_store_stage_trim(s, 1, E(1, 5));
	hs_store_stage_trim(s, 2, E(1, 5));
	is_int(hs_store_commit(s), 0, "commit trims");
	n = hs_store_maintain(s, 0);
	is_int(n, 1, "maintain drops the first partition only");
	hs_store_partitions(s, names, sizeof(names));
	ok(!strstr(names, "p0000000000000001"), "p1 gone from the list: %s", names);
	is_int(readall(s, 1, 0, f, 16), 2, "log 1 still reads the rest");
	is_int(hs_store_maintain(s, 0), 0, "nothing more to drop");
	hs_store_stats(s, &st);
	ok(st.commits >= 5 && st.runs == 6 && st.dropped == 1, "stats: commits %llu runs %llu",
	   (unsigned long long)st.commits, (unsigned long long)st.runs);
	hs_store_close(s);
	raw_count(dir, 1, cfs, sizeof(cfs));
	ok(strstr(cfs, "p0000000000000002") && !strstr(cfs, "p0000000000000001"),
	   "column family dropped on disk: %s", cfs);
	s = open_at(dir, 1, HS_DUR_SYNC);
	if (ok(s != NULL, "reopen with partitions")) {
		is_int(readall(s, 1, 0, f, 16), 2, "reads merge after reopen");
		is_int(readall(s, 2, 0, f, 16), 1, "log 2 after reopen");
		hs_store_close(s);
	}
	rmtree(dir);
}

static void t_time_roll(void)
{
	char *dir = mktmp();
	struct hs_store_opts o = { .dir = dir, .partition_ms = 1 };
	struct hs_store *s = NULL;
	struct timespec ts = { 0, 3000000 };
	char names[256];
	uint64_t f[8];

	is_int(hs_store_open(&o, &s), 0, "open with partition_ms 1");
	if (!s)
		return;
	for (int i = 0; i < 3; i++) {
		stage(s, 1, E(1, 1 + i), 0, 1, 1, i);
		hs_store_commit(s);
		nanosleep(&ts, NULL);
		hs_store_maintain(s, (uint64_t)time(NULL) * 1000 + 1000);
	}
	ok(hs_store_partitions(s, names, sizeof(names)) >= 3, "time rolls: %s", names);
	is_int(readall(s, 1, 0, f, 8), 3, "reads merge");
	hs_store_close(s);
	rmtree(dir);
}

static void t_corrupt(void)
{
	char *dir = mktmp();
	struct hs_store *s = open_at(dir, 0, HS_DUR_SYNC);
	struct hs_store_iter *it;
	uint64_t f;
	const uint8_t *p;
	size_t len, n;
	const uint8_t *r;
	uint8_t bad[512];

	if (!ok(s != NULL, "open"))
		return;
	stage(s, 1, E(1, 1), 0, 1, 3, 1);
	stage(s, 1, E(1, 7), 0, 1, 3, 3);
	r = mkrun(&len, 0, 0, 1, 3, 2, 16);
	memcpy(bad, r, len);
	bad[40] ^= 0x10;
	is_int(hs_store_put_raw(s, 1, E(1, 4), bad, len), 0, "plant a corrupt run");
	hs_store_commit(s);
	hs_store_iter_new(s, 1, 0, &it);
	is_int(hs_store_iter_next(it, &f, &p, &n), 1, "good run");
	is_int(hs_store_iter_next(it, &f, &p, &n), -HS_ECHECKSUM, "corrupt run reported");
	ok(f == E(1, 4) && n == len, "... with its LSN and length");
	is_int(hs_store_iter_next(it, &f, &p, &n), 1, "iteration continues");
	is_int(f, E(1, 7), "with the next run");
	is_int(hs_store_iter_next(it, &f, &p, &n), 0, "end");
	hs_store_iter_free(it);
	hs_store_close(s);
	rmtree(dir);
}

/* Recovery can leave overlapping runs: an original e1n1..10 and a recovery
 * run e1n5..6.  The original still holds e1n7..10. */
static void t_overlap(void)
{
	char *dir = mktmp();
	struct hs_store *s = open_at(dir, 0, HS_DUR_SYNC);
	uint64_t f[8];

	if (!ok(s != NULL, "open"))
		return;
	stage(s, 1, E(1, 1), 0, 1, 10, 1);
	stage(s, 1, E(1, 5), HS_RUN_RECOVERY, 2, 2, 2);
	hs_store_commit(s);
	is_int(readall(s, 1, E(1, 7), f, 8), 1, "from e1n7: only the run holding it");
	is_int(f[0], E(1, 1), "the original run, found behind the overlapping one");
	hs_store_stage_trim(s, 1, E(1, 7));
	hs_store_commit(s);
	ok(same_run(s, 1, E(1, 1), 0, 1, 10, 1), "trim keeps the straddling original run");
	hs_store_close(s);
	rmtree(dir);
}

static void t_memory(void)
{
	char *dir = mktmp();
	struct hs_store *s = open_at(dir, 0, HS_DUR_MEMORY);
	uint64_t f[4];

	if (!ok(s != NULL, "open memory mode"))
		return;
	stage(s, 1, E(1, 1), 0, 1, 3, 1);
	is_int(hs_store_commit(s), 0, "commit without WAL");
	is_int(hs_store_sync_wal(s), 0, "sync_wal is a no-op");
	hs_store_close(s);
	s = open_at(dir, 0, HS_DUR_ASYNC);
	if (ok(s != NULL, "reopen async")) {
		is_int(readall(s, 1, 0, f, 4), 1, "memtables flushed by a clean close");
		stage(s, 1, E(1, 4), 0, 1, 3, 1);
		is_int(hs_store_commit(s), 0, "async commit");
		is_int(hs_store_sync_wal(s), 0, "WAL sync");
		hs_store_close(s);
	}
	rmtree(dir);
}

/* Per-commit sync choice (per-stream durability): nosync commits are
 * counted, left for hs_store_sync_wal(), and covered by a later synced one. */
static void t_nosync(void)
{
	char *dir = mktmp();
	struct hs_store *s = open_at(dir, 0, HS_DUR_SYNC);
	struct hs_store_stats st;
	uint64_t f[4];

	if (!ok(s != NULL, "open sync mode"))
		return;
	stage(s, 1, E(1, 1), 0, 1, 3, 1);
	is_int(hs_store_commit_opts(s, 0), 0, "nosync commit");
	hs_store_stats(s, &st);
	ok(st.commits_nosync == 1 && st.commits_sync == 0, "counted as nosync");
	ok(hs_store_unsynced(s) == 1, "one unsynced commit");
	is_int(hs_store_sync_wal(s), 0, "WAL sync");
	hs_store_stats(s, &st);
	ok(hs_store_unsynced(s) == 0 && st.wal_syncs == 1, "synced by sync_wal");
	is_int(hs_store_sync_wal(s), 0, "idle sync_wal");
	hs_store_stats(s, &st);
	ok(st.wal_syncs == 1, "idle sync_wal does not fsync");
	stage(s, 1, E(1, 4), 0, 1, 3, 1);
	hs_store_commit_opts(s, 0);
	stage(s, 1, E(1, 7), 0, 1, 3, 1);
	is_int(hs_store_commit(s), 0, "synced commit");
	hs_store_stats(s, &st);
	ok(st.commits_sync == 1 && st.commits_nosync == 2 && hs_store_unsynced(s) == 0,
	   "a synced commit covers the unsynced ones");
	hs_store_stage_reg(s, (const uint8_t *)"k", 1, (const uint8_t *)"v", 1);
	is_int(hs_store_commit_opts(s, 0), 0, "nosync commit with a register state");
	hs_store_stats(s, &st);
	ok(st.commits_sync == 2, "register states are always synced");
	is_int(readall(s, 1, 0, f, 4), 3, "every run readable");
	hs_store_close(s);
	rmtree(dir);
}

static void t_errors(void)
{
	struct hs_store_opts o = { .dir = "/proc/hs-nope/store" };
	struct hs_store *s = NULL, *s2 = NULL;
	char *dir = mktmp();

	is_int(hs_store_open(&o, &s), -HS_ECREATE, "uncreatable directory: ECREATE");
	o.dir = dir;
	is_int(hs_store_open(&o, &s), 0, "open");
	is_int(hs_store_open(&o, &s2), -HS_ELOCKED, "second open of the same dir: ELOCKED");
	ok(hs_store_failed(s) == NULL, "not failed");
	hs_store_close(s);
	rmtree(dir);
}

/* Runs staged out of key order are put sorted at commit: every one lands,
 * and of two at the same key the later staged wins. */
static void t_unordered(void)
{
	char *dir = mktmp();
	struct hs_store *s = open_at(dir, 0, HS_DUR_SYNC);
	struct hs_log_meta m;
	uint64_t f[4];
	int bad = 0;

	if (!s)
		return;
	bad |= stage(s, 3, E(1, 11), 0, 0, 10, 1); /* in order: straight into the batch */
	bad |= stage(s, 1, E(1, 1), 0, 0, 10, 2);  /* out of order from here on */
	bad |= stage(s, 2, E(1, 1), 0, 0, 10, 3);
	bad |= stage(s, 1, E(1, 1), 0, 0, 10, 4);  /* replaces seed 2 */
	bad |= stage(s, 1, E(1, 11), 0, 0, 10, 5);
	bad |= stage(s, 3, E(1, 1), 0, 0, 10, 6);
	bad |= hs_store_stage_trim(s, 2, E(1, 5));
	ok(!bad && hs_store_staged(s) == 6, "6 runs of 3 logs staged out of order, and a trim");
	is_int(hs_store_commit(s), 0, "commit");
	for (int pass = 0; pass < 2; pass++) {
		const char *when = pass ? " (after reopen)" : "";
		int n1 = readall(s, 1, 0, f, 4);

		ok(n1 == 2 && f[0] == E(1, 1) && f[1] == E(1, 11), "log 1: both runs%s", when);
		ok(same_run(s, 1, E(1, 1), 0, 0, 10, 4) && same_run(s, 1, E(1, 11), 0, 0, 10, 5),
		   "log 1: the later of two runs at one key wins%s", when);
		ok(readall(s, 2, 0, f, 4) == 1 && same_run(s, 2, E(1, 1), 0, 0, 10, 3),
		   "log 2: the run straddling the trim point kept%s", when);
		ok(readall(s, 3, 0, f, 4) == 2 && same_run(s, 3, E(1, 1), 0, 0, 10, 6) &&
			   same_run(s, 3, E(1, 11), 0, 0, 10, 1),
		   "log 3: both runs%s", when);
		ok(hs_store_meta(s, 1, &m) == 0 && m.max_lsn == E(1, 20) &&
			   hs_store_meta(s, 2, &m) == 0 && m.trim == E(1, 5) && m.max_lsn == E(1, 10),
		   "metadata of every log%s", when);
		if (!pass) {
			hs_store_close(s);
			s = open_at(dir, 0, HS_DUR_SYNC);
			if (!s)
				break;
		}
	}
	if (s) {
		/* An unsynced commit carrying runs and a range deletion. */
		bad = stage(s, 2, E(1, 21), 0, 0, 10, 7);
		bad |= stage(s, 1, E(1, 21), 0, 0, 10, 8);
		bad |= hs_store_stage_trim(s, 1, E(1, 10));
		is_int(bad | hs_store_commit_opts(s, 0), 0, "runs and a trim, unsynced commit");
		ok(readall(s, 1, 0, f, 4) == 2 && f[0] == E(1, 11) && f[1] == E(1, 21) &&
			   readall(s, 2, 0, f, 4) == 2,
		   "trimmed run gone, new runs readable");
	}
	hs_store_close(s);
	rmtree(dir);
}

static void t_throughput(void)
{
	char *dir = mktmp();
	struct hs_store *s = open_at(dir, 0, HS_DUR_SYNC);
	struct timespec a, b;
	size_t len;
	const uint8_t *r;
	double secs;
	int bad = 0;

	if (!s)
		return;
	r = mkrun(&len, 0, 0, 1, 1000, 1, 100);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (uint32_t i = 0; i < 1000; i++) {
		bad |= hs_store_stage_run(s, 1, E(1, 1 + 1000 * i), r, len);
		bad |= hs_store_commit(s);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	ok(!bad, "1,000,000 records of 100 B in 1000 synced commits");
	printf("# sync: %.0f records/s, %.0f commits/s (%.2f s)\n", 1e6 / secs, 1000 / secs, secs);
	hs_store_close(s);
	rmtree(dir);
}

/* The run of log starting at first, as an iterator returns it: 1 with its
 * record count, flags and wave, 0 if absent, -1 on error. */
static int run_at(struct hs_store *s, uint64_t log, uint64_t first, uint32_t *n, uint8_t *flags,
		  uint32_t *wave)
{
	struct hs_store_iter *it;
	struct hs_run r;
	uint64_t f;
	const uint8_t *p;
	size_t len;
	int rc, found = 0;

	if (hs_store_iter_new(s, log, first, &it) < 0)
		return -1;
	while ((rc = hs_store_iter_next(it, &f, &p, &len)) == 1) {
		if (f < first)
			continue;
		if (f == first && hs_run_parse(p, len, &r) == 0) {
			*n = r.nrecords;
			*flags = r.flags;
			*wave = r.wave;
			found = 1;
		}
		break;
	}
	hs_store_iter_free(it);
	return rc < 0 ? -1 : found;
}

/* CLEAN: the clean record and the purge of copies the recovery did not
 * write (docs/replication.md §5). */
static void t_clean(void)
{
	char *dir = mktmp();
	struct hs_store *s = open_at(dir, 0, HS_DUR_SYNC);
	uint64_t f[16], purged = 99, lng, end;
	uint32_t ballot, n, wave;
	uint8_t fl;

	if (!ok(s != NULL, "open"))
		return;
	/* Log 7, epoch 2 as a dead sequencer left it, plus an earlier
	 * unfinished recovery (ballot 2) and the finished one (ballot 3). */
	is_int(stage(s, 7, E(1, 1), 0, 1, 2, 1), 0, "epoch 1 run");
	is_int(stage(s, 7, E(2, 1), 0, 1, 5, 2), 0, "e2 1..5 (straddles lng 3)");
	is_int(stage(s, 7, E(2, 6), 0, 1, 3, 3), 0, "e2 6..8 (sequencer copy)");
	is_int(stage(s, 7, E(2, 9), 0, 1, 2, 4), 0, "e2 9..10 (stale tail)");
	is_int(stage(s, 7, E(2, 5), HS_RUN_RECOVERY, 2, 1, 5), 0, "e2 5 (ballot 2)");
	is_int(stage(s, 7, E(2, 4), HS_RUN_RECOVERY, 3, 4, 6), 0, "e2 4..7 (ballot 3)");
	is_int(stage(s, 7, E(2, 8), HS_RUN_RECOVERY | HS_RUN_BRIDGE, 3, 1, 0), 0,
	       "e2 8 BRIDGE (ballot 3)");
	/* Epoch 4 (the recovering sequencer's) soft-seals 3 = the ballot. */
	is_int(stage(s, 7, E(4, 1), 0, 1, 1, 7), 0, "epoch 4 run");
	is_int(hs_store_commit(s), 0, "commit");
	is_int(hs_store_clean_get(s, 7, 2, &ballot, &lng, &end), 0, "no clean record yet");
	is_int(hs_store_stage_clean(s, 7, 2, 2, E(2, 3), E(2, 7), NULL), -HS_ESEALED,
	       "CLEAN with ballot 2 < seal 3 refused");
	is_int(hs_store_stage_clean(s, 7, 2, 3, E(2, 3), E(3, 7), NULL), -HS_EPROTO,
	       "CLEAN with end in another epoch refused");
	is_int(hs_store_stage_clean(s, 7, 2, 3, E(2, 3), E(2, 7), &purged), 0, "CLEAN staged");
	is_int(purged, 4, "4 runs purged or cut");
	is_int(hs_store_commit(s), 0, "commit");
	is_int(readall(s, 7, 0, f, 16), 5, "5 runs left");
	ok(f[0] == E(1, 1) && f[1] == E(2, 1) && f[2] == E(2, 4) && f[3] == E(2, 8) &&
		   f[4] == E(4, 1),
	   "left: e1n1, e2n1 (cut), e2n4 and the BRIDGE (ballot 3), e4n1");
	ok(run_at(s, 7, E(2, 1), &n, &fl, &wave) == 1 && n == 3 && fl == 0,
	   "the straddler now ends at lng");
	ok(run_at(s, 7, E(2, 4), &n, &fl, &wave) == 1 && n == 4 && wave == 3 &&
		   fl == HS_RUN_RECOVERY,
	   "the recovery's copy is intact");
	ok(hs_store_clean_get(s, 7, 2, &ballot, &lng, &end) == 1 && ballot == 3 &&
		   lng == E(2, 3) && end == E(2, 7),
	   "clean record committed");
	is_int(hs_store_stage_clean(s, 7, 2, 3, E(2, 3), E(2, 7), &purged), 0,
	       "the same CLEAN again is accepted");
	is_int(purged, 0, "and purges nothing more");
	hs_store_stage_seal(s, 7, 4, 0);
	is_int(hs_store_stage_clean(s, 7, 2, 3, E(2, 3), E(2, 7), NULL), -HS_ESEALED,
	       "CLEAN refused once a newer seal exists");
	/* A log holding nothing of the epoch just records it. */
	is_int(hs_store_stage_clean(s, 8, 4, 6, E(4, 2), E(4, 9), &purged), 0,
	       "CLEAN of an epoch not held");
	is_int(purged, 0, "nothing purged");
	/* An empty epoch: every copy goes. */
	is_int(stage(s, 9, E(1, 1), 0, 1, 2, 8), 0, "log 9 e1 1..2 (never acked)");
	is_int(hs_store_commit(s), 0, "commit");
	is_int(hs_store_stage_clean(s, 9, 1, 1, 0, 0, &purged), 0, "CLEAN of an empty epoch");
	is_int(purged, 1, "its run purged");
	/* Runs staged in the same batch are left alone. */
	is_int(stage(s, 10, E(1, 2), 0, 1, 1, 9), 0, "log 10 e1n2");
	is_int(stage(s, 10, E(1, 5), 0, 1, 1, 9), 0, "log 10 e1n5");
	is_int(hs_store_commit(s), 0, "commit");
	is_int(stage(s, 10, E(1, 5), HS_RUN_RECOVERY, 1, 1, 9), 0,
	       "recovery copy of e1n5 staged (ballot 1)");
	is_int(hs_store_stage_clean(s, 10, 1, 1, 0, E(1, 5), &purged), 0,
	       "CLEAN in the same batch");
	is_int(purged, 1, "only the committed e1n2 purged");
	is_int(hs_store_commit(s), 0, "commit");
	ok(readall(s, 10, 0, f, 16) == 1 && f[0] == E(1, 5) &&
		   run_at(s, 10, E(1, 5), &n, &fl, &wave) == 1 && fl == HS_RUN_RECOVERY,
	   "the staged recovery copy survived");
	hs_store_close(s);
	s = open_at(dir, 0, HS_DUR_SYNC);
	if (!ok(s != NULL, "reopen"))
		goto out;
	ok(hs_store_clean_get(s, 8, 4, &ballot, &lng, &end) == 1 && ballot == 6 &&
		   lng == E(4, 2) && end == E(4, 9),
	   "clean record persisted");
	is_int(readall(s, 9, 0, f, 16), 0, "log 9 holds nothing");
	is_int(readall(s, 7, 0, f, 16), 5, "log 7 purge persisted");
	hs_store_close(s);
out:
	rmtree(dir);
}

/* CLEAN over several partitions: each copy of a key is judged on its own
 * bytes (the sequencer's copy in an old partition goes, the recovery's in
 * a newer one stays), a straddler is cut in its own partition. */
static void t_clean_parts(void)
{
	char *dir = mktmp();
	struct hs_store *s = open_at(dir, 1, HS_DUR_SYNC); /* roll after every commit */
	uint64_t f[16], purged = 0;
	uint32_t n, wave;
	uint8_t fl;
	char cfs[512];

	if (!ok(s != NULL, "open with partition_bytes 1"))
		return;
	stage(s, 3, E(1, 1), 0, 1, 6, 1);  /* e1n1..6, straddles lng 4 */
	hs_store_commit(s);
	stage(s, 3, E(1, 7), 0, 1, 4, 2);  /* e1n7..10 */
	hs_store_commit(s);
	stage(s, 3, E(1, 7), HS_RUN_RECOVERY, 2, 2, 3); /* e1n7..8, newer partition */
	stage(s, 3, E(1, 5), HS_RUN_RECOVERY, 2, 2, 4); /* e1n5..6 */
	hs_store_commit(s);
	stage(s, 3, E(1, 9), HS_RUN_RECOVERY | HS_RUN_BRIDGE, 2, 1, 0);
	hs_store_commit(s);
	is_int(raw_count(dir, 3, cfs, sizeof(cfs)), 5, "setup: 5 keys across partitions");
	is_int(hs_store_stage_clean(s, 3, 1, 2, E(1, 4), E(1, 8), &purged), 0, "CLEAN");
	is_int(purged, 2, "the old e1n7 copy deleted, the straddler cut");
	is_int(hs_store_commit(s), 0, "commit");
	is_int(readall(s, 3, 0, f, 16), 4, "4 runs: e1n1 (cut), e1n5, e1n7, the BRIDGE");
	ok(f[0] == E(1, 1) && f[1] == E(1, 5) && f[2] == E(1, 7) && f[3] == E(1, 9), "in order");
	ok(run_at(s, 3, E(1, 1), &n, &fl, &wave) == 1 && n == 4 && fl == 0,
	   "straddler cut to e1n1..4");
	ok(run_at(s, 3, E(1, 7), &n, &fl, &wave) == 1 && n == 2 && fl == HS_RUN_RECOVERY,
	   "the recovery's e1n7 (newer partition) stays");
	hs_store_close(s);
	is_int(raw_count(dir, 3, cfs, sizeof(cfs)), 4, "4 keys left in RocksDB");
	rmtree(dir);
}

/* Stage a run of n records of log at lsn carrying LNG lng; commit it. */
static int put_lng(struct hs_store *s, uint64_t log, uint64_t lsn, uint32_t n, uint64_t lng)
{
	size_t len;
	const uint8_t *r = mkrun(&len, 0, lng, 1, n, (uint32_t)lsn, 16);
	int rc = hs_store_stage_run(s, log, lsn, r, len);

	return rc < 0 ? rc : hs_store_commit(s);
}

/* Run fn on the store in dir in a child process that then dies without
 * closing it (a crash after the last commit returned): 1 if fn returned 0. */
static int crash_after(const char *dir, uint64_t part_bytes, int (*fn)(struct hs_store *))
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		struct hs_store *s = open_at(dir, part_bytes, HS_DUR_SYNC);

		_exit(s && fn(s) == 0 ? 0 : 1);
	}
	return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && !WEXITSTATUS(st);
}

static int derived_a(struct hs_store *s)
{
	int rc = put_lng(s, 7, E(1, 1), 10, 0);

	if (!rc)
		rc = put_lng(s, 7, E(1, 11), 10, E(1, 10));
	if (!rc)
		rc = hs_store_stage_release(s, 7, E(1, 20));
	return rc ? rc : hs_store_commit(s);
}

/* Two commits per log in one partition: its 'P' record holds the first. */
static int derived_b1(struct hs_store *s)
{
	int rc = 0;

	for (uint64_t log = 9; log <= 10 && !rc; log++) {
		rc = put_lng(s, log, E(1, 1), 10, 0);
		if (!rc)
			rc = put_lng(s, log, E(1, 11), 10, E(1, 10));
	}
	return rc;
}

/* Reopened: log 9 is loaded, log 10 is not; a write of log 11 rolls. */
static int derived_b2(struct hs_store *s)
{
	struct hs_log_meta m;
	int rc = hs_store_meta(s, 9, &m);

	if (!rc && m.max_lsn != E(1, 20))
		return -1;
	return rc ? rc : put_lng(s, 11, E(1, 1), 1, 0);
}

/* What is no longer written per run (max_lsn, released, the 'P' record's
 * growth) is derived again after a crash and a reopen. */
static void t_derived(void)
{
	char *dir = mktmp();
	struct hs_store *s;
	struct hs_log_meta m;
	uint64_t f[8], lng = 0, max = 0;
	char cfs[512];

	ok(crash_after(dir, 0, derived_a), "crash after three commits");
	s = open_at(dir, 0, HS_DUR_SYNC);
	if (!ok(s != NULL, "reopen after the crash"))
		return;
	ok(hs_store_meta(s, 7, &m) == 0, "meta");
	is_int(m.max_lsn, E(1, 20), "max_lsn derived from the data");
	is_int(m.released, E(1, 10), "released falls back to the last run's LNG");
	is_int(hs_store_epoch_info(s, 7, 1, &lng, &max), 1, "epoch 1 held");
	ok(lng == E(1, 10) && max == E(1, 20), "its LNG and last LSN");
	is_int(hs_store_stage_release(s, 7, E(1, 20)), 0, "release again");
	is_int(hs_store_commit(s), 0, "commit");
	hs_store_close(s);
	s = open_at(dir, 0, HS_DUR_SYNC);
	ok(s && hs_store_meta(s, 7, &m) == 0 && m.released == E(1, 20) && m.max_lsn == E(1, 20),
	   "a clean close writes the released point");
	hs_store_close(s);
	rmtree(dir);

	dir = mktmp();
	ok(crash_after(dir, 0, derived_b1), "two commits per log, crash");
	ok(crash_after(dir, 1, derived_b2), "reopen, load log 9, roll, crash");
	s = open_at(dir, 0, HS_DUR_SYNC);
	if (!ok(s != NULL, "reopen"))
		return;
	is_int(hs_store_partitions(s, cfs, sizeof(cfs)), 2, "two partitions");
	for (uint64_t log = 9; log <= 10; log++) {
		ok(hs_store_meta(s, log, &m) == 0 && m.max_lsn == E(1, 20) &&
			   m.released == E(1, 10),
		   "log %d: max_lsn and released derived from the older partition", (int)log);
		is_int(readall(s, log, E(1, 15), f, 8), 1, "log %d: read from e1n15 finds its run",
		       (int)log);
		is_int(f[0], E(1, 11), "log %d: the run at e1n11", (int)log);
		ok(hs_store_epoch_info(s, log, 1, &lng, &max) == 1 && max == E(1, 20),
		   "log %d: SEALED sees epoch 1 up to e1n20", (int)log);
	}
	/* The older partition's records were raised at the roll: dropping it
	 * waits for a trim past the whole of its data. */
	is_int(hs_store_stage_trim(s, 9, E(1, 15)), 0, "trim log 9 to e1n15");
	is_int(hs_store_stage_trim(s, 10, E(1, 20)), 0, "trim log 10 past its data");
	is_int(hs_store_commit(s), 0, "commit");
	is_int(hs_store_maintain(s, 0), 0, "partition kept: log 9 has e1n16..20 there");
	is_int(hs_store_stage_trim(s, 9, E(1, 20)), 0, "trim log 9 past its data");
	is_int(hs_store_stage_trim(s, 11, E(1, 1)), 0, "and log 11 (its run rolled p1)");
	is_int(hs_store_commit(s), 0, "commit");
	is_int(hs_store_maintain(s, 0), 1, "now it is dropped");
	hs_store_close(s);
	rmtree(dir);
}

int main(void)
{
	hs_log_init("t_store", HS_LOG_ERROR);
	t_basic();
	t_seal();
	t_clean();
	t_clean_parts();
	t_derived();
	t_trim();
	t_partitions();
	t_time_roll();
	t_corrupt();
	t_overlap();
	t_memory();
	t_nosync();
	t_errors();
	t_unordered();
	t_throughput();
	hs_buf_free(&rb);
	return tap_done();
}
