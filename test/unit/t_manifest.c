/*
 * t_manifest - the Tier2 manifest (libpaxos/manifest.h): register value and
 * manifest object codecs, the checked changes hs-serve applies (publish,
 * fold, expire: contiguity, idempotence, limits), keys and lookups.
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "manifest.h"
#include "proto.h"
#include "tap.h"
#include "wire.h"

static struct hs_man_entry ent(uint64_t first, uint64_t last, uint64_t attempt)
{
	struct hs_man_entry e = {
		.first_lsn = first, .last_lsn = last, .first_ts = 1000 + first,
		.last_ts = 1000 + last, .size = 4096, .records = last - first + 1,
		.created_ms = 1764151200000ull, .attempt = attempt,
	};

	memset(e.hash, (int)(attempt & 0xff), sizeof(e.hash));
	return e;
}

static int ent_eq(const struct hs_man_entry *a, const struct hs_man_entry *b)
{
	return !memcmp(a, b, sizeof(*a));
}

/* Encode m and decode it again into *d; 1 if equal. */
static int round_trip(const struct hs_man *m, struct hs_man *d)
{
	struct hs_buf b = HS_BUF_INIT;
	int good;

	hs_man_enc(m, &b);
	good = b.len == (size_t)HS_MAN_HDR_LEN + (size_t)m->nrefs * HS_MAN_REF_LEN +
			(size_t)m->nentries * HS_MAN_ENTRY_LEN &&
	       hs_man_dec(b.data, b.len, d) == 0 && d->offload == m->offload &&
	       d->expired == m->expired && d->gen == m->gen && d->nentries == m->nentries &&
	       d->nrefs == m->nrefs;
	for (uint16_t i = 0; good && i < m->nentries; i++)
		good = ent_eq(&m->entries[i], &d->entries[i]);
	for (uint16_t i = 0; good && i < m->nrefs; i++)
		good = !memcmp(&m->refs[i], &d->refs[i], sizeof(m->refs[i]));
	hs_buf_free(&b);
	return good;
}

static void test_keys(void)
{
	uint8_t k[16];
	char s[HS_MAN_KEY_MAX];
	struct hs_man_entry e = ent(HS_LSN(1, 1), HS_LSN(1, 9), 0xfeedfacecafebeefull);
	struct hs_man_ref r = { .first_lsn = HS_LSN(1, 1), .last_lsn = HS_LSN(2, 5),
				.created_ms = 0x19a, .attempt = 7 };

	is_int((int)hs_man_key(k, 0x0102030405060708ull), 10, "register key length");
	ok(k[0] == 't' && k[1] == '/' && k[2] == 1 && k[9] == 8, "register key t/ | log BE");
	hs_man_seg_key(s, 0xab, &e);
	is_str(s, "logs/00000000000000ab/seg/0000019abf9b0900-feedfacecafebeef",
	       "segment key: created and attempt");
	hs_man_obj_key(s, 0xab, &r);
	is_str(s, "logs/00000000000000ab/man/0000000100000001-0000000200000005-"
		  "000000000000019a-0000000000000007", "manifest object key: range, created, attempt");
	hs_man_log_prefix(s, 0xab);
	is_str(s, "logs/00000000000000ab/", "log prefix");
}

static void test_publish(void)
{
	struct hs_man m = { 0 }, d;
	struct hs_man_entry a = ent(1, HS_LSN(1, 100), 11);
	struct hs_man_entry b = ent(HS_LSN(1, 101), HS_LSN(1, 250), 12);
	struct hs_man_entry c;
	uint64_t limit = HS_LSN(1, 300);

	ok(hs_man_dec(NULL, 0, &d) == 0 && d.offload == 0 && !d.nentries, "empty value");
	hs_man_free(&d);
	is_int(hs_man_publish(&m, &a, 0, limit), 0, "first segment from LSN 1");
	ok(m.offload == HS_LSN(1, 100) && m.nentries == 1 && m.gen == 1, "offload raised");
	is_int(hs_man_publish(&m, &a, 0, limit), HS_MAN_SAME, "the same entry again: no-op");
	ok(m.nentries == 1 && m.gen == 1, "unchanged");
	c = ent(HS_LSN(1, 50), HS_LSN(1, 120), 13);
	is_int(hs_man_publish(&m, &c, 0, limit), -HS_EDATA, "overlap refused");
	c = ent(HS_LSN(1, 102), HS_LSN(1, 120), 13);
	is_int(hs_man_publish(&m, &c, 0, limit), -HS_EDATA, "a hole before it refused");
	is_int(hs_man_publish(&m, &c, HS_LSN(1, 101), limit), 0,
	       "after the Tier1 trim point: allowed (trimmed before offload)");
	hs_man_free(&m);
	memset(&m, 0, sizeof(m));
	hs_man_publish(&m, &a, 0, limit);
	c = ent(HS_LSN(1, 101), HS_LSN(1, 301), 14);
	is_int(hs_man_publish(&m, &c, 0, limit), -HS_ENOTRELEASED, "beyond the limit refused");
	c = ent(HS_LSN(1, 101), HS_LSN(1, 100), 14);
	is_int(hs_man_publish(&m, &c, 0, limit), -HS_EDATA, "last < first refused");
	is_int(hs_man_publish(&m, &b, 0, limit), 0, "second segment");
	ok(round_trip(&m, &d), "register value round trip");
	hs_man_free(&d);
	/* A retry of an older entry (already followed by another): refused,
	 * never appended twice. */
	is_int(hs_man_publish(&m, &a, 0, limit), -HS_EDATA, "an older entry again refused");
	hs_man_free(&m);
}

static void test_limits_fold_expire(void)
{
	struct hs_man m = { 0 }, d;
	struct hs_man_ref r = { 0 };
	struct hs_buf obj = HS_BUF_INIT;
	struct hs_man_obj o;
	const struct hs_man_entry *pe = NULL;
	const struct hs_man_ref *pr = NULL;
	uint64_t limit = HS_LSN(9, 1);
	int rc = 0;

	for (uint64_t i = 0; i < HS_MAN_ENTRIES_MAX && !rc; i++) {
		struct hs_man_entry e = ent(i ? HS_LSN(1, 10 * i + 1) : 1, HS_LSN(1, 10 * i + 10),
					    100 + i);

		rc = hs_man_publish(&m, &e, 0, limit);
	}
	is_int(rc, 0, "%d entries", HS_MAN_ENTRIES_MAX);
	{
		struct hs_man_entry e = ent(HS_LSN(1, 10 * HS_MAN_ENTRIES_MAX + 1),
					    HS_LSN(1, 10 * HS_MAN_ENTRIES_MAX + 10), 999);

		is_int(hs_man_publish(&m, &e, 0, limit), -HS_ETOOBIG, "one more: fold first");
	}
	/* Fold the first HS_MAN_FOLD_AT into an object. */
	hs_man_obj_enc(42, "orders", m.entries, HS_MAN_FOLD_AT, 1234, 77, &obj);
	ok(hs_man_obj_dec(obj.data, obj.len, &o) == 0 && o.log == 42 && o.nentries ==
	   HS_MAN_FOLD_AT && !strcmp(o.name, "orders") && o.created_ms == 1234 &&
	   o.attempt == 77 && o.first_lsn == 1 &&
	   o.last_lsn == HS_LSN(1, 10 * HS_MAN_FOLD_AT) && ent_eq(&o.entries[5], &m.entries[5]),
	   "manifest object round trip");
	pe = hs_man_obj_find(&o, HS_LSN(1, 55));
	ok(pe && pe->first_lsn == HS_LSN(1, 51), "object lookup");
	ok(!hs_man_obj_find(&o, HS_LSN(1, 10 * HS_MAN_FOLD_AT + 1)), "object lookup past its end");
	hs_man_obj_free(&o);
	obj.data[100] ^= 1;
	is_int(hs_man_obj_dec(obj.data, obj.len, &o), -HS_ECHECKSUM, "a flipped bit: checksum");
	hs_man_obj_free(&o);
	is_int(hs_man_obj_dec(obj.data, obj.len - 1, &o), -HS_EDATA, "truncated: malformed");
	hs_man_obj_free(&o);
	obj.data[100] ^= 1;

	r.first_lsn = 1;
	r.last_lsn = HS_LSN(1, 10 * HS_MAN_FOLD_AT);
	r.nentries = HS_MAN_FOLD_AT;
	r.size = obj.len;
	r.created_ms = 1234;
	r.attempt = 77;
	r.nentries = HS_MAN_FOLD_AT - 1;
	is_int(hs_man_fold(&m, &r), -HS_EDATA, "a fold that does not match refused");
	r.nentries = HS_MAN_FOLD_AT;
	is_int(hs_man_fold(&m, &r), 0, "fold");
	ok(m.nrefs == 1 && m.nentries == HS_MAN_ENTRIES_MAX - HS_MAN_FOLD_AT &&
	   m.entries[0].first_lsn == HS_LSN(1, 10 * HS_MAN_FOLD_AT + 1), "entries moved");
	is_int(hs_man_fold(&m, &r), HS_MAN_SAME, "the same fold again: no-op");
	ok(round_trip(&m, &d), "round trip with refs");
	hs_man_free(&d);

	is_int(hs_man_find(&m, HS_LSN(1, 5), &pe, &pr), 2, "find: in a ref");
	ok(pr == &m.refs[0], "the ref");
	is_int(hs_man_find(&m, HS_LSN(1, 10 * HS_MAN_FOLD_AT + 3), &pe, &pr), 1,
	       "find: in an entry");
	ok(pe == &m.entries[0], "the entry");
	is_int(hs_man_find(&m, m.offload + 1, &pe, &pr), 0, "find: past the offload point");

	is_int(hs_man_expire(&m, HS_LSN(1, 5)), -HS_EDATA, "expire inside a ref refused");
	is_int(hs_man_expire(&m, m.offload + 1), -HS_EDATA, "expire past offload refused");
	is_int(hs_man_expire(&m, HS_LSN(1, 10 * HS_MAN_FOLD_AT + 20)), 0,
	       "expire the ref and two entries");
	ok(m.nrefs == 0 && m.nentries == HS_MAN_ENTRIES_MAX - HS_MAN_FOLD_AT - 2 &&
	   m.expired == HS_LSN(1, 10 * HS_MAN_FOLD_AT + 20), "dropped from the front");
	is_int(hs_man_expire(&m, HS_LSN(1, 3)), HS_MAN_SAME, "an older expiry: no-op");
	is_int(hs_man_find(&m, HS_LSN(1, 5), &pe, &pr), 0, "find: expired");
	ok(round_trip(&m, &d), "round trip after expiry");
	hs_man_free(&d);
	hs_man_free(&m);
	hs_buf_free(&obj);
}

static void test_malformed(void)
{
	struct hs_man m = { 0 }, d;
	struct hs_man_entry a = ent(1, 10, 1), b = ent(11, 20, 2);
	struct hs_buf v = HS_BUF_INIT;

	hs_man_publish(&m, &a, 0, 100);
	hs_man_publish(&m, &b, 0, 100);
	hs_man_enc(&m, &v);
	is_int(hs_man_dec(v.data, v.len - 1, &d), -HS_EDATA, "truncated value");
	hs_man_free(&d);
	v.data[0] = 2;
	is_int(hs_man_dec(v.data, v.len, &d), -HS_EDATA, "unknown version");
	hs_man_free(&d);
	v.data[0] = 1;
	/* second entry's first_lsn := 5: overlaps the first */
	hs_put64(v.data + HS_MAN_HDR_LEN + HS_MAN_ENTRY_LEN, 5);
	is_int(hs_man_dec(v.data, v.len, &d), -HS_EDATA, "overlapping entries");
	hs_man_free(&d);
	hs_put64(v.data + HS_MAN_HDR_LEN + HS_MAN_ENTRY_LEN, 11);
	hs_put64(v.data + 8, 15); /* offload below the last entry */
	is_int(hs_man_dec(v.data, v.len, &d), -HS_EDATA, "offload below the entries");
	hs_man_free(&d);
	hs_man_free(&m);
	hs_buf_free(&v);
}

static void test_name_restore(void)
{
	struct hs_buf b = { 0 };
	struct hs_man_name n;
	struct hs_man m = { 0 }, w = { 0 }, d;
	struct hs_man_entry a = ent(1, HS_LSN(1, 100), 11);
	struct hs_man_entry c = ent(HS_LSN(1, 101), HS_LSN(1, 200), 12);
	char k[HS_MAN_KEY_MAX];

	hs_man_name_key(k, 0xab);
	is_str(k, "logs/00000000000000ab/name", "name object key");
	hs_man_name_enc(0xab, "orders", 6, 1234, &b);
	is_int((int)b.len, HS_MAN_NAME_HDR_LEN + 6 + 4, "name object length");
	ok(hs_man_name_dec(b.data, b.len, &n) == 0 && n.log == 0xab && n.created_ms == 1234 &&
	   n.nlen == 6 && !strcmp(n.name, "orders"), "name object round trip");
	b.data[HS_MAN_NAME_HDR_LEN] ^= 1;
	is_int(hs_man_name_dec(b.data, b.len, &n), -HS_ECHECKSUM, "name object crc");
	b.data[HS_MAN_NAME_HDR_LEN] ^= 1;
	is_int(hs_man_name_dec(b.data, b.len - 1, &n), -HS_EDATA, "name object truncated");
	b.data[0] = 'X';
	is_int(hs_man_name_dec(b.data, b.len, &n), -HS_EDATA, "name object magic");

	/* want: two segments; m: only the first, gen 7 */
	hs_man_publish(&w, &a, 0, HS_LSN(2, 0));
	hs_man_publish(&w, &c, 0, HS_LSN(2, 0));
	hs_man_publish(&m, &a, 0, HS_LSN(2, 0));
	m.gen = 7;
	is_int(hs_man_restore(&m, &w), 0, "restore over a register behind");
	ok(m.offload == HS_LSN(1, 200) && m.nentries == 2 && m.gen == 8 &&
	   ent_eq(&m.entries[1], &c) && round_trip(&m, &d), "restored value");
	hs_man_free(&d);
	is_int(hs_man_restore(&m, &w), HS_MAN_SAME, "restore again: no-op");
	w.offload = HS_LSN(1, 100);
	is_int(hs_man_restore(&m, &w), HS_MAN_SAME, "restore never lowers the offload point");
	ok(m.offload == HS_LSN(1, 200) && m.gen == 8, "unchanged after a refused restore");
	hs_man_free(&m);
	hs_man_free(&w);
	hs_buf_free(&b);
}

int main(void)
{
	test_name_restore();
	test_keys();
	test_publish();
	test_limits_fold_expire();
	test_malformed();
	return tap_done();
}
