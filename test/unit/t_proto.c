/* t_proto.c - message encoders/decoders: round trips, every truncation,
 * trailing bytes and inconsistent counts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "frame.h"
#include "proto.h"
#include "run.h"
#include "tap.h"
#include "msgtest.h"
#include "wire.h"

DEC(hello, struct hs_hello)
DEC(result, struct hs_result)
DEC(seal, struct hs_seal)
DEC(clean, struct hs_clean)
DEC(trim, struct hs_trim)
DEC(getmeta, struct hs_getmeta)
DEC(meta, struct hs_meta)
DEC(start, struct hs_start)
DEC(gap, struct hs_gap)
DEC(window, struct hs_window)
DEC(stop, struct hs_stop)
DEC(end, struct hs_end)
DEC(store, struct hs_store_rd)
DEC(stored, struct hs_stored_rd)
DEC(sealed, struct hs_sealed)
DEC(release, struct hs_release_rd)
DEC(records, struct hs_records)

static size_t make_run(struct hs_buf *out, uint32_t n)
{
	static const uint32_t cs[2] = { 1, 2 };
	struct hs_run_builder rb;

	hs_run_begin(&rb, out, 0, 9, 1, cs, 2);
	for (uint32_t i = 0; i < n; i++)
		hs_run_add(&rb, i, "a\0b", 3);
	return hs_run_end(&rb);
}

int main(void)
{
	/* HELLO */
	{
		struct hs_hello h = { HS_PROTO_VERSION, HS_ROLE_PEER, 0x1122334455667788ull,
				      1 << 20, 3, 5, (const uint8_t *)"s\0crt" }, d;

		hs_msg_hello_enc(&b, 77, &h);
		ok(parse_one(HS_MSG_HELLO), "HELLO frame");
		is_int(hs_msg_hello_dec(f.body, f.body_len, &d), 0, "HELLO decodes");
		ok(d.version == 1 && d.role == HS_ROLE_PEER && d.cluster_id == h.cluster_id &&
		   d.max_frame == 1 << 20 && d.node_id == 3 && d.auth_len == 5 &&
		   !memcmp(d.auth, "s\0crt", 5), "HELLO fields");
		check_body(dec_hello, "HELLO", 1);
		hs_buf_reset(&b);
		h.auth_len = 0;
		h.auth = NULL;
		hs_msg_hello_enc(&b, 77, &h);
		ok(parse_one(HS_MSG_HELLO) && f.body_len == 22, "HELLO without auth is 22 bytes");
		check_body(dec_hello, "HELLO no auth", 1);
	}
	/* RESULT */
	{
		struct hs_result r = { -HS_ESEALED, 6, "sealed" }, d;

		hs_buf_reset(&b);
		hs_msg_result_enc(&b, 77, &r);
		ok(parse_one(HS_MSG_RESULT), "RESULT frame");
		is_int(hs_msg_result_dec(f.body, f.body_len, &d), 0, "RESULT decodes");
		ok(d.status == -HS_ESEALED && d.msg_len == 6 && !memcmp(d.msg, "sealed", 6),
		   "RESULT fields");
		check_body(dec_result, "RESULT", 0);
		hs_buf_reset(&b);
		hs_msg_result_encf(&b, 77, -HS_EIO, "log %d: %s", 12, "bad");
		ok(parse_one(HS_MSG_RESULT) && !hs_msg_result_dec(f.body, f.body_len, &d) &&
		   d.status == -HS_EIO && d.msg_len == 11 && !memcmp(d.msg, "log 12: bad", 11),
		   "RESULT printf form");
		hs_buf_reset(&b);
		hs_msg_result_encf(&b, 77, 0, "%s", "");
		ok(parse_one(HS_MSG_RESULT) && !hs_msg_result_dec(f.body, f.body_len, &d) &&
		   d.status == 0 && d.msg_len == 0, "RESULT empty text");
		{
			static char big[70000];

			memset(big, 'x', sizeof(big) - 1);
			hs_buf_reset(&b);
			hs_msg_result_encf(&b, 77, 1, "%s", big);
			ok(parse_one(HS_MSG_RESULT) && !hs_msg_result_dec(f.body, f.body_len, &d) &&
			   d.msg_len == 65535, "RESULT text cut at 65535");
		}
	}
	/* SEAL */
	{
		struct hs_seal s = { 0xabcdef, 7, 1, 5 }, d;

		hs_buf_reset(&b);
		hs_msg_seal_enc(&b, 77, &s);
		ok(parse_one(HS_MSG_SEAL) && f.body_len == 17, "SEAL frame, 17-byte body");
		ok(!hs_msg_seal_dec(f.body, f.body_len, &d) && d.log == 0xabcdef && d.epoch == 7 &&
		   d.soft == 1 && d.lce == 5, "SEAL round trip");
		check_body(dec_seal, "SEAL", 0);
		{
			uint8_t tmp[17];

			memcpy(tmp, f.body, 17);
			tmp[12] = 2;
			is_int(hs_msg_seal_dec(tmp, 17, &d), -HS_EPROTO, "SEAL soft=2 refused");
		}
	}
	/* CLEAN */
	{
		struct hs_clean c = { 0xabcdef, 7, 9, HS_LSN(7, 3), HS_LSN(7, 12) }, d;
		uint8_t tmp[32];

		hs_buf_reset(&b);
		hs_msg_clean_enc(&b, 77, &c);
		ok(parse_one(HS_MSG_CLEAN) && f.body_len == 32, "CLEAN frame, 32-byte body");
		ok(!hs_msg_clean_dec(f.body, f.body_len, &d) && d.log == 0xabcdef && d.epoch == 7 &&
		   d.ballot == 9 && d.lng == HS_LSN(7, 3) && d.end == HS_LSN(7, 12),
		   "CLEAN round trip");
		check_body(dec_clean, "CLEAN", 0);
		is_str(hs_msg_name(HS_MSG_CLEAN), "CLEAN", "CLEAN has a name");
		memcpy(tmp, f.body, 32);
		hs_put64(tmp + 24, HS_LSN(7, 2));
		is_int(hs_msg_clean_dec(tmp, 32, &d), -HS_EPROTO, "CLEAN end < lng refused");
		hs_put64(tmp + 24, HS_LSN(8, 2));
		is_int(hs_msg_clean_dec(tmp, 32, &d), -HS_EPROTO, "CLEAN end in another epoch refused");
		hs_put32(tmp + 8, 0);
		is_int(hs_msg_clean_dec(tmp, 32, &d), -HS_EPROTO, "CLEAN epoch 0 refused");
		c.lng = c.end = 0;
		hs_buf_reset(&b);
		hs_msg_clean_enc(&b, 77, &c);
		ok(parse_one(HS_MSG_CLEAN) && !hs_msg_clean_dec(f.body, f.body_len, &d) &&
		   !d.lng && !d.end, "CLEAN of an empty epoch");
		c.lng = c.end = HS_LSN(7, 0);
		hs_buf_reset(&b);
		hs_msg_clean_enc(&b, 77, &c);
		ok(parse_one(HS_MSG_CLEAN) && !hs_msg_clean_dec(f.body, f.body_len, &d),
		   "CLEAN with lng = end = epoch << 32");
	}
	/* TRIM, GETMETA */
	{
		struct hs_trim t = { 4, HS_LSN(2, 9) }, d;
		struct hs_getmeta g = { 123 }, gd;

		hs_buf_reset(&b);
		hs_msg_trim_enc(&b, 77, &t);
		ok(parse_one(HS_MSG_TRIM) && !hs_msg_trim_dec(f.body, f.body_len, &d) &&
		   d.log == 4 && d.trim == HS_LSN(2, 9), "TRIM round trip");
		check_body(dec_trim, "TRIM", 0);
		hs_buf_reset(&b);
		hs_msg_getmeta_enc(&b, 77, &g);
		ok(parse_one(HS_MSG_GETMETA) && !hs_msg_getmeta_dec(f.body, f.body_len, &gd) &&
		   gd.log == 123, "GETMETA round trip");
		check_body(dec_getmeta, "GETMETA", 0);
	}
	/* META */
	{
		struct hs_meta m = { -HS_ESTOREFAIL, 8, 9, 6, HS_LSN(8, 100), HS_LSN(1, 1),
				     HS_LSN(8, 120) }, d;

		hs_buf_reset(&b);
		hs_msg_meta_enc(&b, 77, &m);
		ok(parse_one(HS_MSG_META) && !hs_msg_meta_dec(f.body, f.body_len, &d) &&
		   !memcmp(&m, &d, sizeof(m)), "META round trip");
		check_body(dec_meta, "META", 0);
	}
	/* STATS, STATSREPLY */
	{
		struct hs_statsreply d;

		hs_buf_reset(&b);
		hs_msg_stats_enc(&b, 77);
		ok(parse_one(HS_MSG_STATS) && f.body_len == 0 &&
		   !hs_msg_stats_dec(f.body, f.body_len), "STATS round trip");
		is_int(hs_msg_stats_dec((const uint8_t *)"x", 1), -HS_EPROTO, "STATS with a body refused");
		hs_buf_reset(&b);
		hs_msg_statsreply_enc(&b, 77, "commits 3\nruns_stored 9\n", 24);
		ok(parse_one(HS_MSG_STATSREPLY) && !hs_msg_statsreply_dec(f.body, f.body_len, &d) &&
		   d.len == 24 && !memcmp(d.text, "commits 3\nruns_stored 9\n", 24),
		   "STATSREPLY round trip");
	}
	/* START, GAP, WINDOW, STOP, END */
	{
		struct hs_start s = { 3, 44, HS_LSN(1, 0), UINT64_MAX, 1000, 1 << 20,
				      HS_READ_IGNORE_RELEASED }, sd;
		struct hs_gap g = { 3, HS_LSN(1, 5), HS_LSN(1, 9), HS_GAP_NORECORDS }, gd;
		struct hs_window w = { 3, 10, 4096 }, wd;
		struct hs_stop st = { 3 }, std;
		struct hs_end e = { 3, -HS_ESTOREFAIL }, ed;

		hs_buf_reset(&b);
		hs_msg_start_enc(&b, 77, &s);
		ok(parse_one(HS_MSG_START) && !hs_msg_start_dec(f.body, f.body_len, &sd) &&
		   sd.stream == 3 && sd.log == 44 && sd.from == s.from && sd.until == UINT64_MAX &&
		   sd.win_records == 1000 && sd.win_bytes == 1 << 20 && sd.flags == 1,
		   "START round trip");
		check_body(dec_start, "START", 0);

		hs_buf_reset(&b);
		hs_msg_gap_enc(&b, 77, &g);
		ok(parse_one(HS_MSG_GAP) && !hs_msg_gap_dec(f.body, f.body_len, &gd) &&
		   gd.stream == 3 && gd.lo == g.lo && gd.hi == g.hi && gd.reason == 2,
		   "GAP round trip");
		check_body(dec_gap, "GAP", 0);
		{
			uint8_t tmp[21];

			memcpy(tmp, f.body, 21);
			tmp[20] = 4;
			is_int(hs_msg_gap_dec(tmp, 21, &gd), -HS_EPROTO, "GAP reason 4 refused");
			tmp[20] = 0;
			is_int(hs_msg_gap_dec(tmp, 21, &gd), -HS_EPROTO, "GAP reason 0 refused");
			tmp[20] = 1;
			hs_put64(tmp + 4, HS_LSN(1, 10));
			is_int(hs_msg_gap_dec(tmp, 21, &gd), -HS_EPROTO, "GAP lo > hi refused");
		}

		hs_buf_reset(&b);
		hs_msg_window_enc(&b, 77, &w);
		ok(parse_one(HS_MSG_WINDOW) && !hs_msg_window_dec(f.body, f.body_len, &wd) &&
		   wd.stream == 3 && wd.add_records == 10 && wd.add_bytes == 4096,
		   "WINDOW round trip");
		check_body(dec_window, "WINDOW", 0);

		hs_buf_reset(&b);
		hs_msg_stop_enc(&b, 77, &st);
		ok(parse_one(HS_MSG_STOP) && !hs_msg_stop_dec(f.body, f.body_len, &std) &&
		   std.stream == 3, "STOP round trip");
		check_body(dec_stop, "STOP", 0);

		hs_buf_reset(&b);
		hs_msg_end_enc(&b, 77, &e);
		ok(parse_one(HS_MSG_END) && !hs_msg_end_dec(f.body, f.body_len, &ed) &&
		   ed.stream == 3 && ed.status == -HS_ESTOREFAIL, "END round trip");
		check_body(dec_end, "END", 0);
	}
	/* STORE: copied run, in-place run, and a run of another log. */
	{
		struct hs_buf run = HS_BUF_INIT;
		struct hs_msg_wr w;
		struct hs_store_rd rd;
		struct hs_run_builder rb;
		struct hs_run r;
		uint64_t log, lsn;
		const uint8_t *p;
		size_t len, rlen = make_run(&run, 3), fl;

		hs_buf_reset(&b);
		hs_msg_store_begin(&w, &b, 77);
		is_int(hs_msg_wr_size(&w), 24, "empty STORE would be 24 bytes");
		hs_msg_store_run(&w, 1, HS_LSN(2, 1), run.data, rlen);
		hs_msg_store_run_open(&w, 2, HS_LSN(2, 4));
		hs_run_begin(&rb, w.b, HS_RUN_HOLE, 0, 0, NULL, 0);
		hs_run_add(&rb, 0, NULL, 0);
		hs_run_add(&rb, 0, NULL, 0);
		hs_run_end(&rb);
		hs_msg_wr_run_close(&w);
		hs_msg_store_run(&w, 1, HS_LSN(2, 7), run.data, rlen);
		fl = hs_msg_wr_size(&w);
		is_int(hs_msg_wr_end(&w), fl, "wr_end returns the predicted frame length");
		ok(parse_one(HS_MSG_STORE), "STORE frame");
		is_int(hs_msg_store_dec(f.body, f.body_len, &rd), 0, "STORE decodes");
		is_int(rd.nruns, 3, "STORE nruns");
		ok(hs_store_next(&rd, &log, &lsn, &p, &len) && log == 1 && lsn == HS_LSN(2, 1) &&
		   len == rlen && !memcmp(p, run.data, rlen) && !hs_run_parse(p, len, &r) &&
		   r.nrecords == 3, "STORE run 1");
		ok(hs_store_next(&rd, &log, &lsn, &p, &len) && log == 2 && lsn == HS_LSN(2, 4) &&
		   !hs_run_parse(p, len, &r) && r.nrecords == 2 && r.flags == HS_RUN_HOLE,
		   "STORE run 2 (built in place)");
		ok(hs_store_next(&rd, &log, &lsn, &p, &len) && log == 1 && lsn == HS_LSN(2, 7) &&
		   !hs_run_parse(p, len, &r), "STORE run 3");
		is_int(hs_store_next(&rd, &log, &lsn, &p, &len), 0, "STORE end");
		check_body(dec_store, "STORE", 0);
		{
			uint8_t *tmp = hs_xmalloc(f.body_len);

			memcpy(tmp, f.body, f.body_len);
			hs_put32(tmp, 4);
			is_int(hs_msg_store_dec(tmp, f.body_len, &rd), -HS_EPROTO,
			       "STORE nruns larger than the data refused");
			hs_put32(tmp, UINT32_MAX);
			is_int(hs_msg_store_dec(tmp, f.body_len, &rd), -HS_EPROTO,
			       "STORE nruns 0xffffffff refused");
			hs_put32(tmp, 2);
			is_int(hs_msg_store_dec(tmp, f.body_len, &rd), -HS_EPROTO,
			       "STORE nruns smaller than the data refused");
			hs_put32(tmp, 3);
			hs_put32(tmp + 4 + 16, (uint32_t)rlen + 1);
			is_int(hs_msg_store_dec(tmp, f.body_len, &rd), -HS_EPROTO,
			       "STORE run_len off by one refused");
			hs_put32(tmp + 4 + 16, UINT32_MAX);
			is_int(hs_msg_store_dec(tmp, f.body_len, &rd), -HS_EPROTO,
			       "STORE run_len 0xffffffff refused");
			free(tmp);
		}
		hs_buf_reset(&b);
		hs_msg_store_begin(&w, &b, 77);
		hs_msg_wr_end(&w);
		ok(parse_one(HS_MSG_STORE) && !hs_msg_store_dec(f.body, f.body_len, &rd) &&
		   rd.nruns == 0 && !hs_store_next(&rd, &log, &lsn, &p, &len), "empty STORE");
		hs_buf_free(&run);
	}
	/* STORED */
	{
		struct hs_msg_wr w;
		struct hs_stored_rd rd;
		int32_t st;
		uint32_t seal;

		hs_buf_reset(&b);
		hs_msg_stored_begin(&w, &b, 77);
		hs_msg_stored_add(&w, 0, 1);
		hs_msg_stored_add(&w, -HS_ESEALED, 9);
		hs_msg_wr_end(&w);
		ok(parse_one(HS_MSG_STORED) && !hs_msg_stored_dec(f.body, f.body_len, &rd) &&
		   rd.nruns == 2, "STORED decodes");
		ok(hs_stored_next(&rd, &st, &seal) && st == 0 && seal == 1 &&
		   hs_stored_next(&rd, &st, &seal) && st == -HS_ESEALED && seal == 9 &&
		   !hs_stored_next(&rd, &st, &seal), "STORED entries");
		check_body(dec_stored, "STORED", 0);
		{
			uint8_t tmp[20];

			memcpy(tmp, f.body, 20);
			hs_put32(tmp, 3);
			is_int(hs_msg_stored_dec(tmp, 20, &rd), -HS_EPROTO, "STORED count too big");
		}
	}
	/* SEALED */
	{
		struct hs_sealed s = { .status = 0, .seal = 8, .soft_seal = 9, .trim = HS_LSN(3, 3) }, d;
		struct hs_msg_wr w;
		uint32_t ep;
		uint64_t lng, mx;

		hs_buf_reset(&b);
		hs_msg_sealed_begin(&w, &b, 77, &s);
		hs_msg_sealed_add(&w, 6, HS_LSN(6, 10), HS_LSN(6, 12));
		hs_msg_sealed_add(&w, 8, HS_LSN(8, 1), HS_LSN(8, 1));
		hs_msg_wr_end(&w);
		ok(parse_one(HS_MSG_SEALED) && !hs_msg_sealed_dec(f.body, f.body_len, &d) &&
		   d.status == 0 && d.seal == 8 && d.soft_seal == 9 && d.trim == HS_LSN(3, 3) &&
		   d.nepochs == 2, "SEALED fixed fields");
		ok(hs_sealed_next(&d, &ep, &lng, &mx) && ep == 6 && lng == HS_LSN(6, 10) &&
		   mx == HS_LSN(6, 12) && hs_sealed_next(&d, &ep, &lng, &mx) && ep == 8 &&
		   !hs_sealed_next(&d, &ep, &lng, &mx), "SEALED epochs");
		check_body(dec_sealed, "SEALED", 0);
		hs_buf_reset(&b);
		hs_msg_sealed_begin(&w, &b, 77, &s);
		hs_msg_wr_end(&w);
		ok(parse_one(HS_MSG_SEALED) && !hs_msg_sealed_dec(f.body, f.body_len, &d) &&
		   d.nepochs == 0 && !hs_sealed_next(&d, &ep, &lng, &mx), "SEALED no epochs");
		check_body(dec_sealed, "SEALED empty", 0);
	}
	/* RELEASE */
	{
		struct hs_msg_wr w;
		struct hs_release_rd rd;
		uint64_t log, lsn;
		int n = 0, good = 1;

		hs_buf_reset(&b);
		hs_msg_release_begin(&w, &b, 77);
		for (uint64_t i = 0; i < 100; i++)
			hs_msg_release_add(&w, i, HS_LSN(1, i * 2));
		hs_msg_wr_end(&w);
		ok(parse_one(HS_MSG_RELEASE) && !hs_msg_release_dec(f.body, f.body_len, &rd) &&
		   rd.n == 100, "RELEASE decodes");
		while (hs_release_next(&rd, &log, &lsn)) {
			good &= log == (uint64_t)n && lsn == HS_LSN(1, n * 2);
			n++;
		}
		ok(good && n == 100, "RELEASE pairs");
		check_body(dec_release, "RELEASE", 0);
	}
	/* RECORDS: runs including a slice */
	{
		struct hs_buf run = HS_BUF_INIT, sl = HS_BUF_INIT;
		struct hs_msg_wr w;
		struct hs_records d;
		struct hs_run r;
		uint64_t lsn;
		const uint8_t *p;
		size_t len, rlen = make_run(&run, 10);

		hs_run_parse(run.data, rlen, &r);
		hs_run_slice(&r, 4, 3, &sl);
		hs_buf_reset(&b);
		hs_msg_records_begin(&w, &b, 77, 5, 42);
		hs_msg_records_run(&w, HS_LSN(1, 0), run.data, rlen);
		hs_msg_records_run_open(&w, HS_LSN(1, 14));
		hs_wbytes(w.b, sl.data, sl.len);
		hs_msg_wr_run_close(&w);
		hs_msg_wr_end(&w);
		ok(parse_one(HS_MSG_RECORDS) && !hs_msg_records_dec(f.body, f.body_len, &d) &&
		   d.stream == 5 && d.log == 42 && d.nruns == 2, "RECORDS decodes");
		ok(hs_records_next(&d, &lsn, &p, &len) && lsn == HS_LSN(1, 0) && len == rlen &&
		   !hs_run_parse(p, len, &r) && r.nrecords == 10, "RECORDS run 1");
		ok(hs_records_next(&d, &lsn, &p, &len) && lsn == HS_LSN(1, 14) && len == sl.len &&
		   !hs_run_parse(p, len, &r) && r.nrecords == 3, "RECORDS run 2 (slice)");
		is_int(hs_records_next(&d, &lsn, &p, &len), 0, "RECORDS end");
		check_body(dec_records, "RECORDS", 0);
		{
			uint8_t *tmp = hs_xmalloc(f.body_len);

			memcpy(tmp, f.body, f.body_len);
			hs_put32(tmp + 12, 3);
			is_int(hs_msg_records_dec(tmp, f.body_len, &d), -HS_EPROTO,
			       "RECORDS nruns larger than the data refused");
			free(tmp);
		}
		hs_buf_free(&run);
		hs_buf_free(&sl);
	}
	/* Names. */
	is_str(hs_msg_name(HS_MSG_STATSREPLY), "STATSREPLY", "name of STATSREPLY");
	is_str(hs_msg_name(1000), "?", "name of unknown");
	hs_buf_free(&b);
	return tap_done();
}
