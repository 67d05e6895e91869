/* t_run.c - run building, parsing, iteration, slicing and corruption. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "crc32c.h"
#include "err.h"
#include "proto.h"
#include "run.h"
#include "tap.h"
#include "wire.h"

/* Record i of the test runs: i bytes (mod 50) of a pattern with NULs. */
static uint32_t rec_len(uint32_t i) { return i % 50; }
static uint8_t rec_byte(uint32_t i, uint32_t k) { return (uint8_t)(i * 7 + k * 13); }

static size_t build(struct hs_buf *out, uint32_t n, uint8_t flags)
{
	static const uint32_t cs[3] = { 11, 22, 0xfffffff3 };
	struct hs_run_builder rb;
	uint8_t p[64];

	hs_run_begin(&rb, out, flags, 0x0000000500000007ull, 42, cs, 3);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t len = flags & (HS_RUN_HOLE | HS_RUN_BRIDGE) ? 0 : rec_len(i);

		for (uint32_t k = 0; k < len; k++)
			p[k] = rec_byte(i, k);
		hs_run_add(&rb, 1000 + i, p, len);
	}
	return hs_run_end(&rb);
}

/* Check that r holds records [from, from + n) of build()'s pattern. */
static int check_records(const struct hs_run *r, uint32_t from, uint32_t n)
{
	struct hs_run_iter it;
	const uint8_t *p;
	uint64_t ts;
	uint32_t len, i = 0;

	if (r->nrecords != n)
		return 0;
	hs_run_iter_init(&it, r);
	while (hs_run_next(&it, &ts, &p, &len)) {
		uint32_t idx = from + i++;

		if (ts != 1000 + idx || len != rec_len(idx))
			return 0;
		for (uint32_t k = 0; k < len; k++)
			if (p[k] != rec_byte(idx, k))
				return 0;
	}
	return i == n && it.p == r->end;
}

int main(void)
{
	struct hs_buf b = HS_BUF_INIT, s = HS_BUF_INIT;
	struct hs_run_builder rb;
	struct hs_run r, r2;
	size_t len;

	/* One empty record, no copyset: the smallest run. */
	hs_run_begin(&rb, &b, 0, 0, 0, NULL, 0);
	hs_run_add(&rb, 5, NULL, 0);
	len = hs_run_end(&rb);
	is_int(len, HS_RUN_MIN, "smallest run is %d bytes", HS_RUN_MIN);
	is_int(hs_run_parse(b.data, len, &r), 0, "smallest run parses");
	ok(r.nrecords == 1 && r.ncopyset == 0 && r.records + 12 == r.end, "smallest run fields");

	/* Empty builder leaves nothing behind. */
	hs_buf_reset(&b);
	hs_w8(&b, 0xaa);
	hs_run_begin(&rb, &b, 0, 0, 0, NULL, 0);
	is_int(hs_run_end(&rb), 0, "run with no records returns 0");
	is_int(b.len, 1, "and is removed from the buffer");

	/* 1000 records, binary payloads with NULs, 0-length ones, copyset. */
	hs_buf_reset(&b);
	hs_w32(&b, 0xdeadbeef); /* the run need not start at offset 0 */
	len = build(&b, 1000, 0);
	is_int(len, b.len - 4, "hs_run_end returns the run length");
	is_int(hs_run_parse(b.data + 4, len, &r), 0, "1000-record run parses");
	ok(r.flags == 0 && r.ncopyset == 3 && r.nrecords == 1000 &&
	   r.lng == 0x0000000500000007ull && r.wave == 42, "header fields");
	ok(hs_run_copyset(&r, 0) == 11 && hs_run_copyset(&r, 1) == 22 &&
	   hs_run_copyset(&r, 2) == 0xfffffff3, "copyset");
	ok(r.base == b.data + 4 && r.len == len, "base and len");
	ok(check_records(&r, 0, 1000), "all 1000 records round trip");
	is_int(hs_get32(b.data + 4 + len - 4), hs_crc32c(0, b.data + 4, len - 4), "crc at the end");

	/* Iteration with NULL out pointers. */
	{
		struct hs_run_iter it;
		int n = 0;

		hs_run_iter_init(&it, &r);
		while (hs_run_next(&it, NULL, NULL, NULL))
			n++;
		is_int(n, 1000, "iteration with NULL outputs");
		is_int(hs_run_next(&it, NULL, NULL, NULL), 0, "next after the end stays 0");
	}

	/* Slicing. */
	is_int(hs_run_slice(&r, 0, 1000, &s), 0, "slice whole run");
	ok(s.len == len && !memcmp(s.data, b.data + 4, len), "whole slice is byte-identical");
	hs_buf_reset(&s);
	hs_w8(&s, 1);
	is_int(hs_run_slice(&r, 137, 500, &s), 0, "slice [137, 637)");
	is_int(hs_run_parse(s.data + 1, s.len - 1, &r2), 0, "slice parses with its own crc");
	ok(r2.flags == r.flags && r2.lng == r.lng && r2.wave == r.wave && r2.ncopyset == 3 &&
	   hs_run_copyset(&r2, 2) == 0xfffffff3, "slice keeps flags, lng, wave, copyset");
	ok(check_records(&r2, 137, 500), "slice holds the right records");
	hs_buf_reset(&s);
	is_int(hs_run_slice(&r, 999, 1, &s), 0, "slice last record");
	ok(!hs_run_parse(s.data, s.len, &r2) && check_records(&r2, 999, 1), "last-record slice");
	is_int(hs_run_slice(&r, 0, 0, &s), -EINVAL, "empty slice refused");
	is_int(hs_run_slice(&r, 1000, 1, &s), -EINVAL, "slice past the end refused");
	is_int(hs_run_slice(&r, 999, 2, &s), -EINVAL, "slice overrunning the end refused");
	is_int(hs_run_slice(&r, 1, UINT32_MAX, &s), -EINVAL, "slice with huge n refused");

	/* Hole run: empty records only. */
	hs_buf_reset(&s);
	len = build(&s, 10, HS_RUN_HOLE);
	is_int(hs_run_parse(s.data, len, &r2), 0, "hole run parses");
	ok(r2.flags == HS_RUN_HOLE && r2.nrecords == 10, "hole run fields");

	/* Every single-byte flip of a small run is detected. */
	hs_buf_reset(&s);
	len = build(&s, 20, 0);
	{
		int wrong = 0, proto = 0, csum = 0;

		for (size_t i = 0; i < len; i++) {
			for (int bit = 0; bit < 8; bit++) {
				int e;

				s.data[i] ^= (uint8_t)(1 << bit);
				e = hs_run_parse(s.data, len, &r2);
				wrong += e == 0;
				proto += e == -HS_EPROTO;
				csum += e == -HS_ECHECKSUM;
				s.data[i] ^= (uint8_t)(1 << bit);
			}
		}
		is_int(wrong, 0, "no flipped bit of a %zu-byte run is accepted", len);
		ok(proto > 0 && csum > 0 && proto + csum == (int)len * 8,
		   "flips report EPROTO (%d) or ECHECKSUM (%d)", proto, csum);
	}
	is_int(hs_run_parse(s.data, len, &r2), 0, "restored run parses");
	s.data[len - 1] ^= 0x80;
	is_int(hs_run_parse(s.data, len, &r2), -HS_ECHECKSUM, "bad crc -> ECHECKSUM");
	is_int(hs_run_parse_nocrc(s.data, len, &r2), 0, "nocrc ignores the crc");
	s.data[len - 1] ^= 0x80;

	/* Every truncation and an extension are malformed. */
	{
		int bad = 0;

		for (size_t n = 0; n < len; n++)
			bad += hs_run_parse_nocrc(s.data, n, &r2) != -HS_EPROTO;
		is_int(bad, 0, "every truncation is EPROTO");
		hs_w8(&s, 0);
		is_int(hs_run_parse_nocrc(s.data, len + 1, &r2), -HS_EPROTO, "a trailing byte is EPROTO");
		s.len--;
	}

	/* Malformed fields (checked without the crc, so the structure check
	 * itself is tested). */
#define MAL(off, put, val, name)                                                       \
	do {                                                                           \
		struct hs_buf m_ = HS_BUF_INIT;                                         \
		hs_buf_append(&m_, s.data, len);                                       \
		put(m_.data + (off), val);                                             \
		is_int(hs_run_parse_nocrc(m_.data, len, &r2), -HS_EPROTO, name);       \
		hs_buf_free(&m_);                                                      \
	} while (0)
#define PUT8(p, v) (*(p) = (v))
	MAL(0, PUT8, 2, "version 2");
	MAL(0, PUT8, 0, "version 0");
	MAL(1, PUT8, 8, "unknown flag");
	MAL(1, PUT8, HS_RUN_HOLE, "hole run with payloads");
	MAL(2, hs_put16, 128, "copyset 128");
	MAL(2, hs_put16, 4, "copyset larger than stored");
	MAL(2, hs_put16, 0xffff, "copyset 0xffff");
	MAL(4, hs_put32, 0, "zero records");
	MAL(4, hs_put32, 19, "fewer records than stored");
	MAL(4, hs_put32, 21, "more records than stored");
	MAL(4, hs_put32, UINT32_MAX, "record count 0xffffffff");
	MAL(24 + 12 + 8, hs_put32, 1, "first record length too small");
	MAL(24 + 12 + 8, hs_put32, 100000, "first record length beyond the run");
	MAL(24 + 12 + 8, hs_put32, UINT32_MAX, "first record length 0xffffffff");

	/* Epoch-crossing check. */
	ok(hs_run_lsn_ok(HS_LSN(3, 1), 10), "run inside an epoch");
	ok(hs_run_lsn_ok(HS_LSN(3, 0xfffffff0), 16), "run ending at the last esn");
	ok(!hs_run_lsn_ok(HS_LSN(3, 0xfffffff0), 17), "run crossing an epoch");
	ok(!hs_run_lsn_ok(HS_LSN(3, 1), 0), "empty run");

	/* A big record (1 MiB) round trips. */
	{
		struct hs_buf big = HS_BUF_INIT;
		static uint8_t payload[1 << 20];
		struct hs_run_iter it;
		const uint8_t *p;
		uint32_t l;

		payload[0] = 1;
		payload[sizeof(payload) - 1] = 2;
		hs_run_begin(&rb, &big, HS_RUN_RECOVERY, 1, 9, NULL, 0);
		hs_run_add(&rb, 1, payload, sizeof(payload));
		hs_run_add(&rb, 2, "", 0);
		len = hs_run_end(&rb);
		is_int(hs_run_parse(big.data, len, &r2), 0, "1 MiB record run parses");
		hs_run_iter_init(&it, &r2);
		ok(hs_run_next(&it, NULL, &p, &l) && l == sizeof(payload) &&
		   !memcmp(p, payload, l), "1 MiB record content");
		ok(hs_run_next(&it, NULL, &p, &l) && l == 0 && !hs_run_next(&it, NULL, &p, &l),
		   "then the empty record, then the end");
		hs_buf_free(&big);
	}

	hs_buf_free(&b);
	hs_buf_free(&s);
	return tap_done();
}
