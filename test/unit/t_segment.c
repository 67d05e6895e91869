/* t_segment.c - the segment format through the file:// backend: round trips
 * of 0, 1 and 100,000 records with gaps, find by LSN and time, ranged block
 * reads (bytes counted by a wrapping backend), damage in every region,
 * truncation, encryption. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "backend.h"
#include "crc32c.h"
#include "err.h"
#include "segment.h"
#include "tap.h"
#include "wire.h"

static char root[256];

/* --- a backend wrapper that counts requests and bytes -------------------- */

struct ctier {
	struct hs_tier t;
	struct hs_tier *in;
	int gets, heads;
	uint64_t got;
};

static int fwd(struct ctier *c, int err)
{
	if (err < 0)
		hs_tier_seterr(&c->t, err, "%s", hs_tier_error(c->in));
	return err;
}

static int c_put_begin(struct hs_tier *t, const char *key, unsigned flags,
		       struct hs_tier_put **out)
{
	struct ctier *c = (struct ctier *)t;

	/* The inner handle dispatches to the inner backend by itself. */
	return fwd(c, hs_tier_put_begin(c->in, key, flags, out));
}

static int c_get(struct hs_tier *t, const char *key, uint64_t off, uint64_t len,
		 struct hs_buf *out)
{
	struct ctier *c = (struct ctier *)t;
	int err = hs_tier_get(c->in, key, off, len, out);

	c->gets++;
	c->got += out->len;
	return fwd(c, err);
}

static int c_head(struct hs_tier *t, const char *key, uint64_t *size)
{
	struct ctier *c = (struct ctier *)t;

	c->heads++;
	return fwd(c, hs_tier_head(c->in, key, size));
}

static int c_list(struct hs_tier *t, const char *prefix, hs_tier_list_cb cb,
		  void *arg)
{
	struct ctier *c = (struct ctier *)t;

	return fwd(c, hs_tier_list(c->in, prefix, cb, arg));
}

static int c_del(struct hs_tier *t, const char *key)
{
	struct ctier *c = (struct ctier *)t;

	return fwd(c, hs_tier_delete(c->in, key));
}

static void c_close(struct hs_tier *t)
{
	(void)t;
}

static const struct hs_tier_ops counting_ops = {
	.name = "counting",
	.put_begin = c_put_begin,
	.get = c_get,
	.head = c_head,
	.list = c_list,
	.del = c_del,
	.close = c_close,
};

static struct ctier ct;
static struct hs_tier *T; /* the counting wrapper */

static void count_reset(void)
{
	ct.gets = ct.heads = 0;
	ct.got = 0;
}

/* --- the expected log --------------------------------------------------- */

/* Entries of the big test: a record or a gap, kept without payloads; a
 * payload is a pure function of its LSN. */
struct exp {
	uint64_t lsn, hi, ts;
	uint32_t len;
	uint8_t kind; /* 0 = record */
};

static struct exp *E;
static size_t NE;

static uint32_t plen(uint64_t lsn)
{
	uint32_t h = (uint32_t)(lsn * 2654435761u);

	if (h % 17 == 0)
		return 0; /* empty records */
	return h % 300;
}

static void pfill(uint8_t *p, uint64_t lsn, uint32_t n)
{
	uint64_t x = lsn * 0x9e3779b97f4a7c15ull + 1;

	for (uint32_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x; /* every byte value, NULs included */
	}
}

static void make_log(size_t nrec)
{
	uint64_t lsn = (3ull << 32) | 1, ts = 1764151200000ull;
	size_t r = 0;

	free(E);
	E = calloc(nrec + nrec / 500 + 2, sizeof(*E));
	NE = 0;
	while (r < nrec) {
		if (r && r % 1000 == 0) {
			uint64_t span = r % 3000 == 0 ? 0 : r % 7;

			E[NE++] = (struct exp){ lsn, lsn + span, 0, 0,
					       (uint8_t)(1 + (r / 1000) % 4) };
			lsn += span + 1;
			if (r % 5000 == 0)
				lsn = ((lsn >> 32) + 1) << 32 | 1; /* next epoch */
		}
		E[NE++] = (struct exp){ lsn, lsn, ts, plen(lsn), 0 };
		lsn += 1 + (r % 97 == 0); /* a few LSN jumps without a gap entry */
		ts += r % 3 == 0;         /* equal timestamps too */
		r++;
	}
}

static int write_log(struct hs_tier *t, const char *key,
		     const struct hs_seg_wopts *o, struct hs_seg_info *info)
{
	struct hs_seg_writer *w;
	uint8_t buf[512];
	int err;

	err = hs_seg_writer_open(t, key, o, &w);
	if (err < 0)
		return err;
	for (size_t i = 0; i < NE; i++) {
		if (E[i].kind) {
			err = hs_seg_add_gap(w, E[i].lsn, E[i].hi, E[i].kind);
		} else {
			pfill(buf, E[i].lsn, E[i].len);
			err = hs_seg_add_record(w, E[i].lsn, E[i].ts, buf, E[i].len);
		}
		if (err < 0) {
			hs_seg_abort(w);
			return err;
		}
	}
	return hs_seg_finish(w, info);
}

/* Compare entries against E in order. */
struct cmp {
	size_t next;
	size_t bad;
	uint8_t buf[512];
};

static int cmp_cb(void *arg, const struct hs_seg_entry *e)
{
	struct cmp *c = arg;
	const struct exp *x = c->next < NE ? &E[c->next] : NULL;

	c->next++;
	if (!x || e->lsn != x->lsn || e->hi != x->hi ||
	    e->is_gap != (x->kind != 0) || e->kind != x->kind) {
		c->bad++;
		return 0;
	}
	if (!e->is_gap) {
		pfill(c->buf, x->lsn, x->len);
		if (e->ts != x->ts || e->len != x->len ||
		    (x->len && memcmp(e->data, c->buf, x->len)))
			c->bad++;
	}
	return 0;
}

/* Read the whole segment and compare it with E. */
static int read_all(struct hs_seg *s, size_t *bad)
{
	struct cmp c = { 0 };
	int err = 0;

	for (uint32_t i = 0; i < hs_seg_info(s)->nblocks && !err; i++)
		err = hs_seg_read_block(s, i, cmp_cb, &c);
	*bad = c.bad + (c.next != NE);
	return err;
}

/* Find the block holding lsn and check that it does (record or gap). */
struct findc {
	uint64_t lsn;
	int found;
};

static int find_cb(void *arg, const struct hs_seg_entry *e)
{
	struct findc *f = arg;

	if (e->lsn <= f->lsn && f->lsn <= e->hi)
		f->found = 1;
	return 0;
}

/* First record with ts >= want, from the block hs_seg_find_time gives. */
struct timec {
	uint64_t want;
	uint64_t lsn;
};

static int time_cb(void *arg, const struct hs_seg_entry *e)
{
	struct timec *tc = arg;

	if (!e->is_gap && e->ts >= tc->want) {
		tc->lsn = e->lsn;
		return 1;
	}
	return 0;
}

/* --- helpers on the object file ----------------------------------------- */

static void objpath(char *p, size_t n, const char *key)
{
	snprintf(p, n, "%s/%s", root, key);
}

static void flip(const char *key, uint64_t off)
{
	char p[512];
	uint8_t c;
	int fd;

	objpath(p, sizeof(p), key);
	fd = open(p, O_RDWR);
	if (pread(fd, &c, 1, off) != 1)
		abort();
	c ^= 0x40;
	if (pwrite(fd, &c, 1, off) != 1)
		abort();
	close(fd);
}

static void copy_obj(const char *from, const char *to)
{
	struct hs_buf b = HS_BUF_INIT;

	if (hs_tier_get(ct.in, from, 0, 0, &b) < 0 ||
	    hs_tier_put(ct.in, to, b.data, b.len, 0) < 0)
		abort();
	hs_buf_free(&b);
}

static uint64_t fsize(const char *key)
{
	uint64_t n = 0;

	hs_tier_head(ct.in, key, &n);
	return n;
}

/* --- tests --------------------------------------------------------------- */

static void test_empty_and_one(void)
{
	struct hs_seg_info wi, vi;
	struct hs_seg *s;
	struct hs_seg_writer *w;
	size_t bad;

	NE = 0;
	is_int(write_log(T, "seg/empty", NULL, &wi), 0, "0 records: written");
	is_int(wi.size, 32 + 180 + 16, "0 records: header + footer + trailer");
	is_int(hs_seg_open(T, "seg/empty", NULL, &s), 0, "0 records: open");
	is_int(hs_seg_info(s)->nblocks, 0, "0 records: no block");
	is_int(hs_seg_info(s)->nrecords, 0, "0 records: count 0");
	is_int(hs_seg_find(s, 1), -HS_ENOENT, "0 records: find -> ENOENT");
	is_int(hs_seg_find_time(s, 1), -HS_ENOENT, "0 records: find_time -> ENOENT");
	is_int(hs_seg_read_block(s, 0, cmp_cb, NULL), -HS_EDATA, "0 records: no block 0");
	hs_seg_close(s);
	is_int(hs_seg_verify(T, "seg/empty", &vi), 0, "0 records: verify");
	ok(!memcmp(vi.hash, wi.hash, 32), "0 records: verify reports the writer's hash");

	/* one empty record */
	is_int(hs_seg_writer_open(T, "seg/one", NULL, &w), 0, "1 record: open writer");
	is_int(hs_seg_add_record(w, 42, 7, NULL, 0), 0, "1 record: add an empty record");
	is_int(hs_seg_finish(w, &wi), 0, "1 record: finish");
	is_int(hs_seg_open(T, "seg/one", NULL, &s), 0, "1 record: open");
	ok(hs_seg_info(s)->first_lsn == 42 && hs_seg_info(s)->last_lsn == 42 &&
	   hs_seg_info(s)->nrecords == 1 && hs_seg_info(s)->first_ts == 7,
	   "1 record: footer fields");
	E = realloc(E, sizeof(*E));
	E[0] = (struct exp){ 42, 42, 7, 0, 0 };
	NE = 1;
	is_int(read_all(s, &bad), 0, "1 record: read");
	is_int(bad, 0, "1 record: identical");
	is_int(hs_seg_find(s, 42), 0, "1 record: find 42");
	is_int(hs_seg_find(s, 43), -HS_ENOENT, "1 record: find 43 -> ENOENT");
	is_int(hs_seg_find(s, 41), -HS_ENOENT, "1 record: find 41 -> ENOENT");
	hs_seg_close(s);
}

static void test_big(void)
{
	struct hs_seg_info wi, vi;
	struct hs_seg *s;
	struct hs_seg_ropts ro = { 0 };
	size_t bad, fails;
	uint32_t nb;

	make_log(100000);
	is_int(write_log(T, "seg/big", NULL, &wi), 0, "100k: written");
	is_int(wi.nrecords, 100000, "100k: record count");
	ok(wi.ngaps > 90 && wi.nblocks >= 10, "100k: %llu gaps, %u blocks",
	   (unsigned long long)wi.ngaps, wi.nblocks);
	is_int(wi.size, fsize("seg/big"), "100k: reported size = object size");
	count_reset();
	is_int(hs_seg_open(T, "seg/big", NULL, &s), 0, "100k: open");
	ok(ct.heads == 1 && ct.gets == 1 && ct.got <= 16384,
	   "100k: open = 1 HEAD + 1 ranged get of %llu bytes",
	   (unsigned long long)ct.got);
	nb = hs_seg_info(s)->nblocks;
	ok(hs_seg_info(s)->first_lsn == E[0].lsn &&
	   hs_seg_info(s)->last_lsn == E[NE - 1].hi &&
	   hs_seg_info(s)->ngaps == wi.ngaps && !memcmp(hs_seg_info(s)->hash, wi.hash, 32),
	   "100k: footer matches the writer's info");
	is_int(read_all(s, &bad), 0, "100k: read every block");
	is_int(bad, 0, "100k: every record and gap identical");

	/* Each block: exactly one ranged get of exactly its bytes. */
	fails = 0;
	for (uint32_t i = 0; i < nb; i++) {
		struct findc f = { hs_seg_block(s, i)->first_lsn, 0 };

		count_reset();
		if (hs_seg_read_block(s, i, find_cb, &f) ||
		    ct.gets != 1 || ct.got != hs_seg_block(s, i)->len || !f.found)
			fails++;
	}
	is_int(fails, 0, "100k: a block read is one get of its %u-ish bytes",
	       hs_seg_block(s, 0)->len);

	/* find by LSN, for every 37th entry and the LSNs inside gaps */
	fails = 0;
	for (size_t i = 0; i < NE; i += (E[i].kind ? 1 : 37)) {
		uint64_t l = E[i].kind ? E[i].hi : E[i].lsn;
		struct findc f = { l, 0 };
		int b = hs_seg_find(s, l);

		if (b < 0 || hs_seg_read_block(s, (uint32_t)b, find_cb, &f) || !f.found)
			fails++;
	}
	is_int(fails, 0, "100k: find(lsn) gives the block holding it");
	is_int(hs_seg_find(s, E[0].lsn - 1), -HS_ENOENT, "100k: find below -> ENOENT");
	is_int(hs_seg_find(s, E[NE - 1].hi + 1), -HS_ENOENT, "100k: find above -> ENOENT");

	/* find by time: scanning from the block finds the first record >= ts */
	fails = 0;
	for (size_t i = 0; i < NE; i += 211) {
		uint64_t want = E[i].kind ? E[i + 1].ts : E[i].ts;
		uint64_t first = 0;
		struct timec tc = { want, 0 };
		int b = hs_seg_find_time(s, want), rc = 0;

		for (size_t j = 0; j < NE; j++)
			if (!E[j].kind && E[j].ts >= want) {
				first = E[j].lsn;
				break;
			}
		for (uint32_t k = (uint32_t)b; b >= 0 && k < nb && !rc; k++)
			rc = hs_seg_read_block(s, k, time_cb, &tc);
		if (b < 0 || rc != 1 || tc.lsn != first)
			fails++;
	}
	is_int(fails, 0, "100k: find_time then scan gives the first record >= ts");
	is_int(hs_seg_find_time(s, 0), 0, "100k: find_time before all -> block 0");
	is_int(hs_seg_find_time(s, UINT64_MAX), nb - 1, "100k: find_time after all -> last block");
	hs_seg_close(s);

	/* with the size from a manifest: no HEAD */
	ro.size = wi.size;
	count_reset();
	is_int(hs_seg_open(T, "seg/big", &ro, &s), 0, "100k: open with a known size");
	is_int(ct.heads, 0, "100k: no HEAD when the size is known");
	hs_seg_close(s);
	is_int(hs_seg_verify(T, "seg/big", &vi), 0, "100k: verify");
	ok(!memcmp(vi.hash, wi.hash, 32), "100k: verify hash = writer's hash");
	{
		/* an independent BLAKE2b over the object before the footer */
		struct hs_buf b = HS_BUF_INIT;
		uint8_t h[32];

		hs_tier_get(ct.in, "seg/big", 0, wi.index_off + wi.index_len, &b);
		crypto_generichash(h, 32, b.data, b.len, NULL, 0);
		ok(!memcmp(h, wi.hash, 32), "100k: hash is BLAKE2b-256 of [0, footer)");
		hs_buf_free(&b);
	}
}

static struct {
	const uint8_t *big;
	size_t n;
	int same;
} bigrec;

static int bigrec_cb(void *arg, const struct hs_seg_entry *e)
{
	(void)arg;
	if (e->lsn == 11 && e->len == 3u << 20 && !memcmp(e->data, bigrec.big, e->len))
		bigrec.same = 1;
	bigrec.n++;
	return 0;
}

static void test_big_record_and_small_blocks(void)
{
	struct hs_seg_wopts wo = { .block_size = 4096 };
	struct hs_seg_info wi;
	struct hs_seg *s;
	struct hs_seg_writer *w;
	uint8_t *big = malloc(3 << 20);
	size_t bad;

	/* many small blocks, with the 2 MiB record alone in its block */
	make_log(3000);
	is_int(write_log(T, "seg/small", &wo, &wi), 0, "4 KiB blocks: written");
	ok(wi.nblocks > 50, "4 KiB blocks: %u blocks", wi.nblocks);
	is_int(hs_seg_open(T, "seg/small", NULL, &s), 0, "4 KiB blocks: open");
	is_int(read_all(s, &bad), 0, "4 KiB blocks: read");
	is_int(bad, 0, "4 KiB blocks: identical");
	hs_seg_close(s);

	/* an index larger than the tail read: one more get at open */
	make_log(30000);
	is_int(write_log(T, "seg/bigidx", &wo, &wi), 0, "large index: written");
	ok(wi.index_len > 16384, "large index: %llu bytes in %u blocks",
	   (unsigned long long)wi.index_len, wi.nblocks);
	count_reset();
	is_int(hs_seg_open(T, "seg/bigidx", NULL, &s), 0, "large index: open");
	ok(ct.gets == 2 && ct.got == 16384 + wi.index_len,
	   "large index: open = tail get + index get (%d gets, %llu bytes)", ct.gets,
	   (unsigned long long)ct.got);
	is_int(read_all(s, &bad), 0, "large index: read");
	is_int(bad, 0, "large index: identical");
	hs_seg_close(s);
	flip("seg/bigidx", wi.index_off + 7);
	is_int(hs_seg_open(T, "seg/bigidx", NULL, &s), -HS_ECHECKSUM,
	       "large index: damaged -> ECHECKSUM");

	pfill(big, 99, 3 << 20);
	is_int(hs_seg_writer_open(T, "seg/bigrec", &wo, &w), 0, "large record: writer");
	hs_seg_add_record(w, 10, 1, "a", 1);
	hs_seg_add_record(w, 11, 2, big, 3 << 20);
	hs_seg_add_record(w, 12, 3, "b", 1);
	is_int(hs_seg_finish(w, &wi), 0, "large record: finish");
	is_int(wi.nblocks, 3, "large record: a block of its own");
	is_int(hs_seg_open(T, "seg/bigrec", NULL, &s), 0, "large record: open");
	bigrec.big = big;
	is_int(hs_seg_read_block(s, hs_seg_find(s, 11), bigrec_cb, &bigrec), 0,
	       "large record: read");
	ok(bigrec.same && bigrec.n == 1, "large record: 3 MiB identical");
	hs_seg_close(s);
	free(big);
}

static void test_writer_errors(void)
{
	struct hs_seg_writer *w;
	uint64_t size;
	void *huge;

	is_int(hs_seg_writer_open(T, "seg/bad", NULL, &w), 0, "errors: writer");
	is_int(hs_seg_add_record(w, 0, 1, "x", 1), -HS_EDATA, "errors: LSN 0 refused");
	is_int(hs_seg_add_record(w, 5, 1, "x", 1), 0, "errors: LSN 5");
	is_int(hs_seg_add_record(w, 5, 1, "x", 1), -HS_EDATA, "errors: LSN 5 again refused");
	ok(strstr(hs_tier_error(T), "seg/bad") != NULL, "errors: text names the segment (%s)",
	   hs_tier_error(T));
	is_int(hs_seg_add_gap(w, 4, 9, HS_SEG_HOLE), -HS_EDATA, "errors: gap below refused");
	is_int(hs_seg_add_gap(w, 9, 8, HS_SEG_HOLE), -HS_EDATA, "errors: gap hi < lo refused");
	is_int(hs_seg_add_gap(w, 9, 9, 0), -HS_EDATA, "errors: gap kind 0 refused");
	is_int(hs_seg_add_gap(w, 9, 9, 5), -HS_EDATA, "errors: gap kind 5 refused");
	huge = calloc(1, HS_SEG_RECORD_MAX + 1);
	is_int(hs_seg_add_record(w, 20, 1, huge, HS_SEG_RECORD_MAX + 1), -HS_ETOOBIG,
	       "errors: record over the limit refused");
	free(huge);
	is_int(hs_seg_add_gap(w, 6, 9, HS_SEG_TRIM), 0, "errors: a good gap still goes in");
	hs_seg_abort(w);
	is_int(hs_tier_head(T, "seg/bad", &size), -HS_ENOENT, "errors: aborted segment invisible");

	/* exclusive create */
	struct hs_seg_wopts wo = { .put_flags = HS_TIER_EXCL };

	is_int(hs_seg_writer_open(T, "seg/one", &wo, &w), 0, "excl: writer over an existing key");
	hs_seg_add_record(w, 1, 1, "z", 1);
	is_int(hs_seg_finish(w, NULL), -HS_EEXIST, "excl: finish -> EEXIST");
	is_int(hs_seg_open(T, "seg/nope", NULL, (struct hs_seg **)&w), -HS_ENOENT,
	       "open a missing segment -> ENOENT");
}

/* Each region damaged in turn: a clear error naming the segment. */
static void test_damage(void)
{
	struct hs_seg_wopts wo = { .block_size = 4096 };
	struct hs_seg_info wi;
	struct hs_seg *s;
	struct hs_seg_ropts ro = { 0 };
	size_t bad;
	char p[512];
	int err;

	make_log(2000);
	is_int(write_log(T, "seg/dmg", &wo, &wi), 0, "damage: written");
	copy_obj("seg/dmg", "seg/orig");

	/* a block: open works, that block fails, the others still read */
	is_int(hs_seg_open(T, "seg/dmg", NULL, &s), 0, "damage: open before damage");
	flip("seg/dmg", hs_seg_block(s, 3)->off + 100);
	err = hs_seg_read_block(s, 3, cmp_cb, &(struct cmp){ 0 });
	is_int(err, -HS_ECHECKSUM, "damage: block 3 -> ECHECKSUM");
	ok(strstr(hs_tier_error(T), "seg/dmg") && strstr(hs_tier_error(T), "block 3"),
	   "damage: error names segment and block (%s)", hs_tier_error(T));
	{
		struct findc f = { hs_seg_block(s, 4)->first_lsn, 0 };

		is_int(hs_seg_read_block(s, 4, find_cb, &f), 0, "damage: block 4 still reads");
	}
	is_int(hs_seg_verify(T, "seg/dmg", NULL), -HS_ECHECKSUM, "damage: verify -> ECHECKSUM");
	flip("seg/dmg", hs_seg_block(s, 3)->off + 100);
	/* its stored CRC */
	flip("seg/dmg", hs_seg_block(s, 5)->off + hs_seg_block(s, 5)->len - 1);
	is_int(hs_seg_read_block(s, 5, cmp_cb, &(struct cmp){ 0 }), -HS_ECHECKSUM,
	       "damage: a block's CRC -> ECHECKSUM");
	flip("seg/dmg", hs_seg_block(s, 5)->off + hs_seg_block(s, 5)->len - 1);
	is_int(read_all(s, &bad), 0, "damage: undone, all reads again");
	hs_seg_close(s);

	/* index, footer (several fields), trailer: open fails */
	struct { const char *what; uint64_t off; int want; } r[] = {
		{ "index", wi.index_off + 5, -HS_ECHECKSUM },
		{ "index last byte", wi.index_off + wi.index_len - 1, -HS_ECHECKSUM },
		{ "footer magic", wi.size - 16 - 180, -HS_ECHECKSUM },
		{ "footer last_lsn", wi.size - 16 - 180 + 40, -HS_ECHECKSUM },
		{ "footer hash", wi.size - 16 - 180 + 150, -HS_ECHECKSUM },
		{ "footer crc", wi.size - 16 - 4, -HS_ECHECKSUM },
		{ "trailer magic", wi.size - 16, -HS_EDATA },
		{ "trailer length", wi.size - 8, -HS_EDATA },
		{ "trailer crc", wi.size - 1, -HS_EDATA },
	};
	for (size_t i = 0; i < sizeof(r) / sizeof(*r); i++) {
		flip("seg/dmg", r[i].off);
		s = NULL;
		is_int(hs_seg_open(T, "seg/dmg", NULL, &s), r[i].want, "damage: %s -> error",
		       r[i].what);
		ok(!s && strstr(hs_tier_error(T), "segment 'seg/dmg'"),
		   "damage: %s: %s", r[i].what, hs_tier_error(T));
		is_int(hs_seg_verify(T, "seg/dmg", NULL) < 0, 1, "damage: %s: verify fails",
		       r[i].what);
		flip("seg/dmg", r[i].off);
	}
	/* the header is only read by verify */
	flip("seg/dmg", 20);
	is_int(hs_seg_verify(T, "seg/dmg", NULL), -HS_ECHECKSUM, "damage: header -> verify fails");
	flip("seg/dmg", 20);
	is_int(hs_seg_verify(T, "seg/dmg", NULL), 0, "damage: all undone, verify passes");

	/* truncation */
	objpath(p, sizeof(p), "seg/dmg");
	if (truncate(p, wi.size - 1) < 0)
		abort();
	is_int(hs_seg_open(T, "seg/dmg", NULL, &s), -HS_EDATA, "truncated by 1 byte -> EDATA");
	ok(strstr(hs_tier_error(T), "seg/dmg") != NULL, "truncated: %s", hs_tier_error(T));
	ro.size = wi.size; /* a manifest still says the old size */
	is_int(hs_seg_open(T, "seg/dmg", &ro, &s), -HS_EDATA,
	       "truncated, size from a manifest -> EDATA");
	is_int(hs_seg_verify(T, "seg/dmg", NULL) < 0, 1, "truncated: verify fails");
	if (truncate(p, wi.size / 2) < 0)
		abort();
	is_int(hs_seg_open(T, "seg/dmg", NULL, &s), -HS_EDATA, "truncated by half -> EDATA");
	if (truncate(p, 10) < 0)
		abort();
	is_int(hs_seg_open(T, "seg/dmg", NULL, &s), -HS_EDATA, "truncated to 10 bytes -> EDATA");
	if (truncate(p, 0) < 0)
		abort();
	is_int(hs_seg_open(T, "seg/dmg", NULL, &s), -HS_EDATA, "empty object -> EDATA");

	/* a segment truncated after opening: a block read fails cleanly */
	copy_obj("seg/orig", "seg/dmg");
	is_int(hs_seg_open(T, "seg/dmg", NULL, &s), 0, "reopen the intact copy");
	if (truncate(p, hs_seg_block(s, 2)->off + 10) < 0)
		abort();
	is_int(hs_seg_read_block(s, 2, cmp_cb, &(struct cmp){ 0 }), -HS_EDATA,
	       "truncated under a reader: block read -> EDATA");
	hs_seg_close(s);
}

/* Recompute a footer's CRC and the trailer after editing the footer. */
static void refooter(const char *key, uint64_t size, uint32_t flen,
		     uint64_t off, uint8_t xor)
{
	struct hs_buf b = HS_BUF_INIT;
	uint8_t *f;

	hs_tier_get(ct.in, key, 0, 0, &b);
	f = b.data + size - 16 - flen;
	f[off] ^= xor;
	hs_put32(f + flen - 4, hs_crc32c(0, f, flen - 4));
	hs_tier_put(ct.in, key, b.data, b.len, 0);
	hs_buf_free(&b);
}

static int find_mem(const uint8_t *h, size_t hn, const uint8_t *n, size_t nn)
{
	return memmem(h, hn, n, nn) != NULL;
}

static void test_encryption(void)
{
	uint8_t key[32], wrong[32], k2[32];
	struct hs_seg_wopts wo = { .key = key, .block_size = 8192 };
	struct hs_seg_ropts ro = { .key = key }, rw = { .key = wrong };
	struct hs_seg_info wi;
	struct hs_seg *s = NULL;
	struct hs_seg_writer *w;
	struct hs_buf b = HS_BUF_INIT;
	char kp[512], hex[65];
	size_t bad;
	uint32_t mid;
	FILE *f;

	randombytes_buf(key, 32);
	memcpy(wrong, key, 32);
	wrong[31] ^= 1;
	make_log(5000);
	is_int(write_log(T, "seg/enc", &wo, &wi), 0, "enc: written");
	ok(wi.encrypted, "enc: info says encrypted");
	is_int(wi.size, fsize("seg/enc"), "enc: size");
	is_int(hs_seg_open(T, "seg/enc", NULL, &s), -HS_EPERM, "enc: open without a key -> EPERM");
	ok(strstr(hs_tier_error(T), "seg/enc") && strstr(hs_tier_error(T), "no key"),
	   "enc: %s", hs_tier_error(T));
	is_int(hs_seg_open(T, "seg/enc", &rw, &s), -HS_EPERM, "enc: wrong key -> EPERM");
	ok(strstr(hs_tier_error(T), "wrong key") != NULL, "enc: %s", hs_tier_error(T));
	is_int(hs_seg_open(T, "seg/enc", &ro, &s), 0, "enc: open with the key");
	is_int(read_all(s, &bad), 0, "enc: read all");
	is_int(bad, 0, "enc: identical");
	mid = hs_seg_info(s)->nblocks / 2;
	hs_seg_close(s);

	/* one block alone: reopen, read only the middle block */
	hs_seg_open(T, "seg/enc", &ro, &s);
	count_reset();
	{
		struct findc fc = { hs_seg_block(s, mid)->first_lsn, 0 };

		is_int(hs_seg_read_block(s, mid, find_cb, &fc), 0, "enc: block %u decrypts alone", mid);
		ok(fc.found && ct.gets == 1 && ct.got == hs_seg_block(s, mid)->len,
		   "enc: one get of that block's bytes only");
	}

	/* no plaintext in the object: look for a long payload's bytes */
	hs_tier_get(ct.in, "seg/enc", 0, 0, &b);
	{
		uint8_t pl[300];
		size_t i, found = 0, tried = 0;

		for (i = 0; i < NE && tried < 50; i++)
			if (!E[i].kind && E[i].len > 200) {
				pfill(pl, E[i].lsn, E[i].len);
				found += find_mem(b.data, b.len, pl, 32);
				tried++;
			}
		ok(tried == 50 && found == 0, "enc: none of 50 payloads appears in the object");
	}

	/* a flipped ciphertext byte: authentication fails, no data handed out */
	flip("seg/enc", hs_seg_block(s, mid)->off + 40);
	{
		struct cmp c = { 0 };

		is_int(hs_seg_read_block(s, mid, cmp_cb, &c), -HS_ECHECKSUM,
		       "enc: damaged block -> ECHECKSUM");
		is_int(c.next, 0, "enc: no entry handed out");
		ok(strstr(hs_tier_error(T), "authentication") != NULL, "enc: %s",
		   hs_tier_error(T));
	}
	flip("seg/enc", hs_seg_block(s, mid)->off + 40);
	/* a nonce byte */
	flip("seg/enc", hs_seg_block(s, mid)->off + 3);
	is_int(hs_seg_read_block(s, mid, find_cb, &(struct findc){ 0, 0 }), -HS_ECHECKSUM,
	       "enc: damaged nonce -> ECHECKSUM");
	flip("seg/enc", hs_seg_block(s, mid)->off + 3);
	hs_seg_close(s);

	/* a forged footer (CRC recomputed) fails to unwrap the key */
	refooter("seg/enc", wi.size, 252, 48, 1); /* first_ts */
	is_int(hs_seg_open(T, "seg/enc", &ro, &s), -HS_EPERM,
	       "enc: footer edited with a valid CRC -> refused");
	refooter("seg/enc", wi.size, 252, 48, 1);
	is_int(hs_seg_open(T, "seg/enc", &ro, &s), 0, "enc: restored footer opens");
	hs_seg_close(s);
	is_int(hs_seg_verify(T, "seg/enc", NULL), 0, "enc: verify needs no key");

	/* two blocks swapped in place: each fails (block number is bound) */
	{
		struct hs_seg_wopts wo2 = { .key = key, .block_size = 4096 };
		struct hs_buf o = HS_BUF_INIT;
		const struct hs_seg_block *b1, *b2;
		uint8_t tmp[8192];

		is_int(hs_seg_writer_open(T, "seg/swap", &wo2, &w), 0, "swap: writer");
		/* equal-sized blocks: each record fills one block */
		for (int i = 0; i < 4; i++) {
			memset(tmp, 'a' + i, 3000);
			hs_seg_add_record(w, 100 + i, 1, tmp, 3000);
		}
		hs_seg_finish(w, NULL);
		hs_seg_open(T, "seg/swap", &ro, &s);
		b1 = hs_seg_block(s, 1);
		b2 = hs_seg_block(s, 2);
		ok(b1->len == b2->len, "swap: blocks 1 and 2 the same size");
		hs_tier_get(ct.in, "seg/swap", 0, 0, &o);
		memcpy(tmp, o.data + b1->off, b1->len);
		memcpy(o.data + b1->off, o.data + b2->off, b1->len);
		memcpy(o.data + b2->off, tmp, b1->len);
		hs_tier_put(ct.in, "seg/swap", o.data, o.len, 0);
		is_int(hs_seg_read_block(s, 1, find_cb, &(struct findc){ 0, 0 }), -HS_ECHECKSUM,
		       "swap: block 2's bytes at block 1 refused");
		is_int(hs_seg_read_block(s, 0, find_cb, &(struct findc){ 0, 0 }), 0,
		       "swap: block 0 still reads");
		hs_seg_close(s);
		hs_buf_free(&o);
	}

	/* key files: raw 32 bytes or 64 hex digits */
	snprintf(kp, sizeof(kp), "%s/key.hex", root);
	sodium_bin2hex(hex, sizeof(hex), key, 32);
	f = fopen(kp, "w");
	fprintf(f, "%s\n", hex);
	fclose(f);
	is_int(hs_seg_key_load(kp, k2), 0, "key file: hex");
	ok(!memcmp(k2, key, 32), "key file: hex = the key");
	snprintf(kp, sizeof(kp), "%s/key.raw", root);
	f = fopen(kp, "w");
	fwrite(wrong, 1, 32, f);
	fclose(f);
	is_int(hs_seg_key_load(kp, k2), 0, "key file: raw");
	ok(!memcmp(k2, wrong, 32), "key file: raw = the bytes");
	f = fopen(kp, "w");
	fprintf(f, "not a key\n");
	fclose(f);
	is_int(hs_seg_key_load(kp, k2), -HS_ECONFIG, "key file: garbage -> ECONFIG");
	snprintf(kp, sizeof(kp), "%s/nokey", root);
	is_int(hs_seg_key_load(kp, k2), -HS_ENOENT, "key file: missing -> ENOENT");
	hs_buf_free(&b);
}

int main(void)
{
	char url[300], cmd[300];
	struct hs_tier *in;

	snprintf(root, sizeof(root), "%s/t_segment.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(url, sizeof(url), "file://%s", root);
	if (hs_tier_open(url, NULL, &in) < 0 || sodium_init() < 0) {
		printf("Bail out! cannot open %s\n", url);
		return 1;
	}
	ct.t.ops = &counting_ops;
	ct.in = in;
	T = &ct.t;

	test_empty_and_one();
	test_big();
	test_big_record_and_small_blocks();
	test_writer_errors();
	test_damage();
	test_encryption();

	hs_tier_close(in);
	free(E);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", root);
	return tap_done();
}
