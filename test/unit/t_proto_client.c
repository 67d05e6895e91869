/* t_proto_client.c - client<->serve messages: round trips, every
 * truncation, trailing bytes, and each value the spec calls malformed. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "format.h"
#include "frame.h"
#include "proto.h"
#include "proto_client.h"
#include "run.h"
#include "tap.h"
#include "msgtest.h"
#include "wire.h"

static uint16_t list_type; /* for dec_list */

DEC(read, struct hs_cread)
DEC(read_window, struct hs_read_window)
DEC(read_end, struct hs_read_end)
DEC(read_cancel, struct hs_read_cancel)
DEC(subscribe, struct hs_subscribe)
DEC(stream_list, struct hs_list_req)
DEC(sub_list, struct hs_list_req)
DEC(admin_stats, struct hs_admin_stats)

static int dec_cluster_status(const uint8_t *p, size_t n)
{
	return hs_msg_cluster_status_dec(p, n);
}

static int dec_list(const uint8_t *p, size_t n)
{
	struct hs_clist l;

	return hs_msg_clist_dec(list_type, p, n, &l);
}

/* The body of f with byte off set to v must be refused. */
static void check_bad(dec_fn dec, size_t off, uint8_t v, const char *what)
{
	uint8_t *p = hs_xmalloc(f.body_len);

	memcpy(p, f.body, f.body_len);
	p[off] = v;
	is_int(dec(p, f.body_len), -HS_EPROTO, "refused: %s", what);
	free(p);
}

static const struct hs_pos P_NONE = { 0 };
static const struct hs_pos P_LSN = { HS_POS_LSN, 0, HS_LSN(3, 1207), 0 };
static const struct hs_pos P_HEAD = { HS_POS_HEAD, 10, 0, 0 };
static const struct hs_pos P_TAIL = { HS_POS_TAIL, -100, 0, 0 };
static const struct hs_pos P_TIME = { HS_POS_TIME, 0, 0, 1764151200000 };

static int pos_eq(const struct hs_pos *a, const struct hs_pos *c)
{
	return a->kind == c->kind && a->offset == c->offset && a->lsn == c->lsn &&
	       a->time_ms == c->time_ms;
}

static int name_is(const char *p, size_t n, const char *want)
{
	return n == strlen(want) && !memcmp(p, want, n);
}

static void test_names(void)
{
	static const struct {
		const char *s;
		int ok;
	} t[] = {
		{ "a", 1 },         { "orders", 1 },  { "A.b-c_d.9", 1 }, { "-x", 1 },
		{ ".", 1 },         { "0", 1 },       { "", 0 },          { "_x", 0 },
		{ "_", 0 },         { "a b", 0 },     { "a/b", 0 },       { "é", 0 },
		{ "a:b", 0 },       { "a\nb", 0 },    { "x*", 0 },
	};
	char big[300];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		is_int(hs_stream_name_valid(t[i].s, strlen(t[i].s)), t[i].ok, "name '%s' %s",
		       t[i].s, t[i].ok ? "valid" : "invalid");
	is_int(hs_stream_name_valid("a\0b", 3), 0, "name with NUL invalid");
	memset(big, 'x', sizeof(big));
	is_int(hs_stream_name_valid(big, 255), 1, "255-byte name valid");
	is_int(hs_stream_name_valid(big, 256), 0, "256-byte name invalid");
	is_int(hs_stream_name_valid(NULL, 0), 0, "NULL empty name invalid");
	is_int(hs_stream_prefix_valid(NULL, 0), 1, "empty prefix valid");
	is_int(hs_stream_prefix_valid("ord", 3), 1, "prefix valid");
	is_int(hs_stream_prefix_valid("_o", 2), 0, "prefix with '_' first invalid");
}

static void test_types(void)
{
	int bad = 0;

	for (unsigned t = 64; t <= 93; t++) {
		bad += !hs_msg_known((uint16_t)t) || !strcmp(hs_msg_name((uint16_t)t), "?") ||
		       strcmp(hs_msg_name((uint16_t)t), hs_msg_client_name((uint16_t)t));
	}
	is_int(bad, 0, "types 64..93 known and named through hs_msg_name");
	for (unsigned t = 94; t <= 95; t++)
		bad += hs_msg_known((uint16_t)t);
	is_int(bad, 0, "types 94..95 free");
	is_str(hs_msg_name(HS_MSG_APPEND), "APPEND", "APPEND name");
	is_str(hs_msg_name(HS_MSG_CLUSTER_STATUSREPLY), "CLUSTER_STATUSREPLY", "name 89");
	is_str(hs_msg_name(HS_MSG_STREAM_ALTER), "STREAM_ALTER", "last name");
	is_str(hs_msg_name(HS_MSG_STORE), "STORE", "peer names unchanged");
}

static void test_pos(void)
{
	const struct hs_pos *all[] = { &P_NONE, &P_LSN, &P_HEAD, &P_TAIL, &P_TIME };
	struct hs_pos d;
	struct hs_rd r;
	struct hs_buf pb = { 0 };

	for (size_t i = 0; i < 5; i++) {
		hs_buf_reset(&pb);
		hs_pos_wr(&pb, all[i]);
		hs_rd_init(&r, pb.data, pb.len);
		ok(pb.len == HS_POS_WIRE && !hs_pos_rd(&r, &d, true) && pos_eq(&d, all[i]) &&
		   !hs_rd_left(&r), "position kind %d round trip", (int)all[i]->kind);
	}
	hs_buf_reset(&pb);
	hs_pos_wr(&pb, &P_NONE);
	hs_rd_init(&r, pb.data, pb.len);
	is_int(hs_pos_rd(&r, &d, false), -HS_EPROTO, "NONE refused where required");
	{
		static const struct {
			uint8_t kind;
			uint64_t v;
			const char *what;
		} bad[] = {
			{ 5, 0, "kind 5" },
			{ 0, 1, "NONE with a value" },
			{ 1, 0, "LSN 0" },
			{ 1, 5, "LSN epoch 0" },
			{ 1, HS_LSN(5, 0), "LSN esn 0" },
			{ 2, (uint64_t)-1, "head-1" },
			{ 3, 1, "tail+1" },
		};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			hs_buf_reset(&pb);
			hs_w8(&pb, bad[i].kind);
			hs_w64(&pb, bad[i].v);
			hs_rd_init(&r, pb.data, pb.len);
			is_int(hs_pos_rd(&r, &d, true), -HS_EPROTO, "position refused: %s",
			       bad[i].what);
		}
	}
	hs_rd_init(&r, pb.data, 5);
	is_int(hs_pos_rd(&r, &d, true), -HS_EPROTO, "truncated position refused");
	hs_buf_free(&pb);
}

static void test_single(void)
{
	/* READ */
	{
		struct hs_cread m = { 9, HS_CREAD_FOLLOW | HS_CREAD_GAPS, 1000, 1 << 20, 5,
				      P_TAIL, P_NONE, "orders", 6 }, d;

		hs_buf_reset(&b);
		hs_msg_read_enc(&b, 77, &m);
		ok(parse_one(HS_MSG_READ) && !hs_msg_read_dec(f.body, f.body_len, &d) &&
		   d.read_id == 9 && d.flags == 3 && d.win_records == 1000 &&
		   d.win_bytes == 1 << 20 && d.limit == 5 && pos_eq(&d.from, &P_TAIL) &&
		   pos_eq(&d.until, &P_NONE) && name_is(d.stream, d.stream_len, "orders"),
		   "READ round trip");
		check_body(dec_read, "READ", 0);
		check_bad(dec_read, 4, 4, "READ unknown flag");
		check_bad(dec_read, 24, 0, "READ from NONE");
		check_bad(dec_read, 43, '_', "READ name starting with '_'");
		m.from = P_LSN;
		m.until = P_TIME;
		hs_buf_reset(&b);
		hs_msg_read_enc(&b, 77, &m);
		ok(parse_one(HS_MSG_READ) && !hs_msg_read_dec(f.body, f.body_len, &d) &&
		   pos_eq(&d.from, &P_LSN) && pos_eq(&d.until, &P_TIME), "READ LSN..time");
	}
	/* READ_WINDOW, READ_END, READ_CANCEL */
	{
		struct hs_read_window w = { 9, 100, 4096 }, wd;
		struct hs_read_end e = { 9, -ECANCELED, HS_LSN(2, 8) }, ed;
		struct hs_read_cancel c = { 9 }, cd;

		hs_buf_reset(&b);
		hs_msg_read_window_enc(&b, 77, &w);
		ok(parse_one(HS_MSG_READ_WINDOW) &&
		   !hs_msg_read_window_dec(f.body, f.body_len, &wd) && wd.read_id == 9 &&
		   wd.add_records == 100 && wd.add_bytes == 4096, "READ_WINDOW round trip");
		check_body(dec_read_window, "READ_WINDOW", 0);
		hs_buf_reset(&b);
		hs_msg_read_end_enc(&b, 77, &e);
		ok(parse_one(HS_MSG_READ_END) && !hs_msg_read_end_dec(f.body, f.body_len, &ed) &&
		   ed.read_id == 9 && ed.status == -ECANCELED && ed.next_lsn == HS_LSN(2, 8),
		   "READ_END round trip");
		check_body(dec_read_end, "READ_END", 0);
		check_bad(dec_read_end, 7, 0, "READ_END positive status");
		hs_buf_reset(&b);
		hs_msg_read_cancel_enc(&b, 77, &c);
		ok(parse_one(HS_MSG_READ_CANCEL) &&
		   !hs_msg_read_cancel_dec(f.body, f.body_len, &cd) && cd.read_id == 9,
		   "READ_CANCEL round trip");
		check_body(dec_read_cancel, "READ_CANCEL", 0);
	}
	/* SUBSCRIBE */
	{
		struct hs_subscribe m = { 4, HS_CREAD_GAPS, 10, 0, "billing", 7 }, d;

		hs_buf_reset(&b);
		hs_msg_subscribe_enc(&b, 77, &m);
		ok(parse_one(HS_MSG_SUBSCRIBE) && !hs_msg_subscribe_dec(f.body, f.body_len, &d) &&
		   d.read_id == 4 && d.flags == HS_CREAD_GAPS && d.win_records == 10 &&
		   d.win_bytes == 0 && name_is(d.sub, d.sub_len, "billing"),
		   "SUBSCRIBE round trip");
		check_body(dec_subscribe, "SUBSCRIBE", 0);
		check_bad(dec_subscribe, 4, HS_CREAD_FOLLOW, "SUBSCRIBE with FOLLOW");
		check_bad(dec_subscribe, 16, 0, "SUBSCRIBE empty name");
	}
	/* STREAM_LIST, SUB_LIST */
	{
		struct hs_list_req m = { 50, HS_LIST_INFO, "ord", "orders.2", 3, 8 }, d;

		hs_buf_reset(&b);
		hs_msg_stream_list_enc(&b, 77, &m);
		ok(parse_one(HS_MSG_STREAM_LIST) &&
		   !hs_msg_stream_list_dec(f.body, f.body_len, &d) && d.max == 50 &&
		   d.flags == HS_LIST_INFO && name_is(d.filter, d.filter_len, "ord") &&
		   name_is(d.cursor, d.cursor_len, "orders.2"), "STREAM_LIST round trip");
		check_body(dec_stream_list, "STREAM_LIST", 0);
		check_bad(dec_stream_list, 4, 2, "STREAM_LIST unknown flag");
		check_bad(dec_stream_list, 6, '_', "STREAM_LIST prefix starting with '_'");
		check_bad(dec_stream_list, 10, '/', "STREAM_LIST bad cursor");
		m.filter_len = m.cursor_len = 0;
		m.filter = m.cursor = NULL;
		hs_buf_reset(&b);
		hs_msg_stream_list_enc(&b, 77, &m);
		ok(parse_one(HS_MSG_STREAM_LIST) &&
		   !hs_msg_stream_list_dec(f.body, f.body_len, &d) && !d.filter_len &&
		   !d.cursor_len, "STREAM_LIST from the start, no prefix");
		check_body(dec_stream_list, "STREAM_LIST empty", 0);
		m.filter = "orders";
		m.filter_len = 6;
		hs_buf_reset(&b);
		hs_msg_sub_list_enc(&b, 77, &m);
		ok(parse_one(HS_MSG_SUB_LIST) && !hs_msg_sub_list_dec(f.body, f.body_len, &d) &&
		   name_is(d.filter, d.filter_len, "orders") && !d.cursor_len,
		   "SUB_LIST round trip");
		check_body(dec_sub_list, "SUB_LIST", 0);
	}
	/* ADMIN_STATS, CLUSTER_STATUS */
	{
		struct hs_admin_stats m = { HS_STATS_STREAMS | HS_STATS_PEERS, "o", 1 }, d;

		hs_buf_reset(&b);
		hs_msg_admin_stats_enc(&b, 77, &m);
		ok(parse_one(HS_MSG_ADMIN_STATS) &&
		   !hs_msg_admin_stats_dec(f.body, f.body_len, &d) && d.scopes == 6 &&
		   name_is(d.prefix, d.prefix_len, "o"), "ADMIN_STATS round trip");
		check_body(dec_admin_stats, "ADMIN_STATS", 0);
		check_bad(dec_admin_stats, 0, 8, "ADMIN_STATS unknown scope");
		hs_buf_reset(&b);
		hs_msg_cluster_status_enc(&b, 77);
		ok(parse_one(HS_MSG_CLUSTER_STATUS) && f.body_len == 0, "CLUSTER_STATUS empty");
		check_body(dec_cluster_status, "CLUSTER_STATUS", 0);
	}
}

/* Decode f as a list of type t into *l (after the full checks). */
static int list_of(uint16_t t, struct hs_clist *l, const char *name)
{
	int good = parse_one(t);

	list_type = t;
	check_body(dec_list, name, 0);
	return good && !hs_msg_clist_dec(t, f.body, f.body_len, l);
}

static void test_append(void)
{
	struct hs_msg_wr w;
	struct hs_run_builder rb;
	struct hs_clist l;
	struct hs_append_ent e;
	struct hs_run r, r2;
	struct hs_buf other = { 0 }, fwd = { 0 };
	size_t first_run_off;
	const uint32_t cs[3] = { 1, 2, 3 };

	/* A run built in place, one copied from elsewhere. */
	hs_buf_reset(&b);
	hs_msg_append_begin(&w, &b, 77);
	hs_msg_append_run_open(&w, "orders", 6, HS_APPEND_CREATE);
	first_run_off = b.len;
	hs_run_begin(&rb, w.b, 0, 0, 0, NULL, 0);
	hs_run_add(&rb, 0, "one", 3);
	hs_run_add(&rb, 1764151200000, "", 0);
	hs_run_add(&rb, 0, "three", 5);
	hs_run_end(&rb);
	hs_msg_wr_run_close(&w);
	hs_run_begin(&rb, &other, 0, 0, 0, NULL, 0);
	hs_run_add(&rb, 0, "x", 1);
	hs_msg_append_run(&w, "b", 1, 0, other.data, hs_run_end(&rb));
	hs_msg_wr_end(&w);
	ok(parse_one(HS_MSG_APPEND), "APPEND frame");
	ok(list_of(HS_MSG_APPEND, &l, "APPEND") && l.n == 2, "APPEND decodes 2 entries");
	ok(hs_append_next(&l, &e) == 1 && name_is(e.stream, e.stream_len, "orders") &&
	   e.flags == HS_APPEND_CREATE && e.run == b.data + first_run_off &&
	   !hs_run_parse(e.run, e.run_len, &r) && r.nrecords == 3 && !hs_append_run_check(&r),
	   "APPEND entry 1: in-place run, borrowed, APPEND-shaped");
	/* What hs-serve does: one memcpy of the records under a new header. */
	hs_run_begin(&rb, &fwd, 0, HS_LSN(2, 5), 7, cs, 3);
	hs_buf_append(&fwd, r.records, (size_t)(r.end - r.records));
	rb.n = r.nrecords;
	{
		size_t n = hs_run_end(&rb);
		struct hs_run_iter a, c;
		const uint8_t *pa, *pc;
		uint32_t la, lc;
		uint64_t ta, tc;
		int same = 1;

		ok(n && !hs_run_parse(fwd.data, n, &r2) && r2.nrecords == 3 && r2.ncopyset == 3 &&
		   r2.lng == HS_LSN(2, 5) && r2.wave == 7, "forwarded run valid with copyset");
		hs_run_iter_init(&a, &r);
		hs_run_iter_init(&c, &r2);
		while (hs_run_next(&a, &ta, &pa, &la)) {
			same &= hs_run_next(&c, &tc, &pc, &lc) && ta == tc && la == lc &&
				!memcmp(pa, pc, la);
		}
		ok(same && !hs_run_next(&c, NULL, NULL, NULL), "forwarded records identical");
		is_int(hs_append_run_check(&r2), -HS_EPROTO, "a run with a copyset is not APPEND-shaped");
	}
	ok(hs_append_next(&l, &e) == 1 && name_is(e.stream, e.stream_len, "b") && !e.flags &&
	   e.run_len == other.len && !memcmp(e.run, other.data, other.len),
	   "APPEND entry 2: copied run");
	is_int(hs_append_next(&l, &e), 0, "APPEND end of list");
	{
		struct hs_appended_ent x;

		is_int(hs_appended_next(&l, &x), 0, "a _next of another type returns 0");
	}
	check_bad(dec_list, 4 + 1 + 6 + 1, 2, "APPEND unknown flag");
	check_bad(dec_list, 4 + 1, '_', "APPEND bad name");
	check_bad(dec_list, 4, 0, "APPEND empty name");
	check_bad(dec_list, 3, 0x10, "APPEND huge count");
	hs_buf_free(&other);
	hs_buf_free(&fwd);

	/* APPENDED */
	{
		struct hs_appended_ent in[4] = {
			{ 0, HS_LSN(3, 1), 500, 0, "", 0 },
			{ -HS_ETOOBIG, 0, 0, 7, "record 7 too big", 16 },
			{ -HS_ESEALED, 0, 0, 0, "unix:/run/hs/serve.sock", 23 },
			{ -HS_EAGAIN, 0, 0, 250, NULL, 0 },
		}, d;
		int good = 1;

		hs_buf_reset(&b);
		hs_msg_appended_begin(&w, &b, 77);
		for (int i = 0; i < 4; i++)
			hs_msg_appended_add(&w, &in[i]);
		hs_msg_wr_end(&w);
		ok(list_of(HS_MSG_APPENDED, &l, "APPENDED") && l.n == 4, "APPENDED decodes");
		for (int i = 0; i < 4; i++)
			good &= hs_appended_next(&l, &d) == 1 && d.status == in[i].status &&
				d.first_lsn == in[i].first_lsn && d.count == in[i].count &&
				d.detail == in[i].detail && d.text_len == in[i].text_len &&
				!memcmp(d.text, in[i].text ? in[i].text : "", d.text_len);
		ok(good && !hs_appended_next(&l, &d), "APPENDED entries round trip");
		check_bad(dec_list, 4, 1, "APPENDED positive status");
	}
}

static void test_admin(void)
{
	struct hs_msg_wr w;
	struct hs_clist l;
	/* Without HS_ATTR_OFFLOAD_SIZE: the 24-byte attrs of old peers. */
	struct hs_stream_attrs a = { HS_ATTR_ALL & ~HS_ATTR_OFFLOAD_SIZE, 3, HS_DUR_ASYNC,
				     86400000, 3600000, 0, 0, 0 },
			       a0 = { 0 };
	struct hs_stream_info info = { 42, a, HS_LSN(1, 1), HS_LSN(4, 9), HS_LSN(1, 0), 7, 8,
				       1000, UINT64_MAX, 1764151200000, HS_LSN(4, 8), 4, 3, 2,
				       3, { 5, 1, 9 }, HS_LSN(1, 0), 2 };

	/* STREAM_CREATE */
	{
		struct hs_create_ent e;

		hs_buf_reset(&b);
		hs_msg_stream_create_begin(&w, &b, 77);
		hs_msg_stream_create_add(&w, "orders", 6, &a);
		hs_msg_stream_create_add(&w, "x", 1, &a0);
		hs_msg_wr_end(&w);
		ok(list_of(HS_MSG_STREAM_CREATE, &l, "STREAM_CREATE") && l.n == 2 &&
		   hs_create_next(&l, &e) && name_is(e.stream, e.stream_len, "orders") &&
		   !memcmp(&e.attrs, &a, sizeof(a)) && hs_create_next(&l, &e) &&
		   name_is(e.stream, e.stream_len, "x") && !e.attrs.mask && !hs_create_next(&l, &e),
		   "STREAM_CREATE round trip");
		check_bad(dec_list, 4 + 7, 64, "STREAM_CREATE unknown attribute");
		/* u32 n | name(7) | attrs(24) | name(2) | attrs(24) */
		is_int((int)f.body_len, 4 + 7 + 24 + 2 + 24, "STREAM_CREATE attrs are 24 bytes");
	}
	/* The size policy: 8 more bytes only when its mask bit is set. */
	{
		struct hs_stream_attrs s = a;
		struct hs_stream_info si = info;
		struct hs_create_ent e;
		struct hs_streams_ent se;

		s.mask |= HS_ATTR_OFFLOAD_SIZE;
		s.offload_size = 64ull << 20;
		hs_buf_reset(&b);
		hs_msg_stream_create_begin(&w, &b, 77);
		hs_msg_stream_create_add(&w, "orders", 6, &s);
		hs_msg_wr_end(&w);
		ok(list_of(HS_MSG_STREAM_CREATE, &l, "STREAM_CREATE offload_size") &&
		   hs_create_next(&l, &e) && e.attrs.mask == (uint32_t)HS_ATTR_ALL &&
		   e.attrs.offload_size == 64ull << 20 && e.attrs.offload_after_ms == 3600000,
		   "STREAM_CREATE offload_size round trip");
		is_int((int)f.body_len, 4 + 7 + 32, "attrs with offload_size are 32 bytes");
		is_int(hs_msg_clist_dec(HS_MSG_STREAM_CREATE, f.body, f.body_len - 1, &l),
		       -HS_EPROTO, "refused: offload_size truncated");
		/* The same bytes without the bit: a trailing field too many. */
		check_bad(dec_list, 4 + 7, (uint8_t)(HS_ATTR_ALL & ~HS_ATTR_OFFLOAD_SIZE),
			  "offload_size without its mask bit");
		si.attrs = s;
		hs_buf_reset(&b);
		hs_msg_streams_begin(&w, &b, 77, 0);
		hs_msg_streams_add(&w, 0, "orders", 6, &si);
		hs_msg_wr_end(&w);
		ok(list_of(HS_MSG_STREAMS, &l, "STREAMS offload_size") && hs_streams_next(&l, &se) &&
		   se.has_info && se.info.attrs.offload_size == 64ull << 20 &&
		   se.info.tier2_segments == info.tier2_segments && se.info.nn == info.nn &&
		   se.info.nodes[2] == info.nodes[2],
		   "STREAMS info with offload_size round trip");
		is_int((int)(f.body_len - 17), (int)(136 + 4 * info.nn),
		       "STREAMS info with offload_size is 136 + 4 * nn bytes");
		check_bad(dec_list, 4 + 7 + 4, 0, "STREAM_CREATE replication 0");
		check_bad(dec_list, 4 + 7 + 4, 128, "STREAM_CREATE replication 128");
		check_bad(dec_list, 4 + 7 + 5, 4, "STREAM_CREATE durability 4");
	}
	/* Name lists */
	{
		static const uint16_t types[] = { HS_MSG_STREAM_DELETE, HS_MSG_STREAM_INFO,
						  HS_MSG_SUB_DELETE, HS_MSG_SUB_INFO };
		void (*begin[])(struct hs_msg_wr *, struct hs_buf *, uint64_t) = {
			hs_msg_stream_delete_begin, hs_msg_stream_info_begin,
			hs_msg_sub_delete_begin, hs_msg_sub_info_begin
		};
		struct hs_name_ent e;

		for (int i = 0; i < 4; i++) {
			hs_buf_reset(&b);
			begin[i](&w, &b, 77);
			hs_msg_name_add(&w, "a", 1);
			hs_msg_name_add(&w, "bb", 2);
			hs_msg_wr_end(&w);
			ok(list_of(types[i], &l, hs_msg_name(types[i])) && l.n == 2 &&
			   hs_name_next(&l, &e) && name_is(e.name, e.name_len, "a") &&
			   hs_name_next(&l, &e) && name_is(e.name, e.name_len, "bb") &&
			   !hs_name_next(&l, &e), "%s round trip", hs_msg_name(types[i]));
			check_bad(dec_list, 5, '_', "name list entry starting with '_'");
		}
		hs_buf_reset(&b);
		hs_msg_stream_delete_begin(&w, &b, 77);
		hs_msg_wr_end(&w);
		ok(list_of(HS_MSG_STREAM_DELETE, &l, "empty STREAM_DELETE") && l.n == 0 &&
		   !hs_name_next(&l, &e), "empty list");
	}
	/* STREAM_TRIM */
	{
		struct hs_trim_ent e;

		hs_buf_reset(&b);
		hs_msg_stream_trim_begin(&w, &b, 77);
		hs_msg_stream_trim_add(&w, "orders", 6, &P_TIME);
		hs_msg_stream_trim_add(&w, "o2", 2, &P_LSN);
		hs_msg_wr_end(&w);
		ok(list_of(HS_MSG_STREAM_TRIM, &l, "STREAM_TRIM") && hs_trim_next(&l, &e) &&
		   name_is(e.stream, e.stream_len, "orders") && pos_eq(&e.before, &P_TIME) &&
		   hs_trim_next(&l, &e) && pos_eq(&e.before, &P_LSN) && !hs_trim_next(&l, &e),
		   "STREAM_TRIM round trip");
		check_bad(dec_list, 4 + 7, 0, "STREAM_TRIM position NONE");
	}
	/* STREAMS */
	{
		struct hs_streams_ent e;

		hs_buf_reset(&b);
		hs_msg_streams_begin(&w, &b, 77, HS_LIST_MORE);
		hs_msg_streams_add(&w, 0, "orders", 6, &info);
		hs_msg_streams_add(&w, -HS_ENOSTREAM, "gone", 4, NULL);
		hs_msg_streams_add(&w, 0, "bare", 4, NULL);
		hs_msg_wr_end(&w);
		ok(list_of(HS_MSG_STREAMS, &l, "STREAMS") && l.flags == HS_LIST_MORE && l.n == 3,
		   "STREAMS header");
		ok(hs_streams_next(&l, &e) && !e.status && e.has_info &&
		   name_is(e.stream, e.stream_len, "orders") && !memcmp(&e.info, &info, sizeof(info)),
		   "STREAMS entry with info");
		ok(hs_streams_next(&l, &e) && e.status == -HS_ENOSTREAM && !e.has_info &&
		   !e.info.log, "STREAMS error entry");
		ok(hs_streams_next(&l, &e) && !e.status && !e.has_info &&
		   name_is(e.stream, e.stream_len, "bare") && !hs_streams_next(&l, &e),
		   "STREAMS names-only entry");
		check_bad(dec_list, 0, 2, "STREAMS unknown flag");
		check_bad(dec_list, 5 + 4 + 7, 2, "STREAMS has_info 2");
		check_bad(dec_list, 5 + 4 + 7 + 1 + 8 + 4, 0, "STREAMS info replication 0");
		/* info at 17: r at 17 + 124, nn at 17 + 125, the u16 at 17 + 126 */
		check_bad(dec_list, 17 + 124, 4, "STREAMS info r > nn");
		check_bad(dec_list, 17 + 125, 33, "STREAMS info nn > 32");
		check_bad(dec_list, 17 + 126, 1, "STREAMS info reserved u16");
		is_int((int)(f.body_len - 17), (int)(128 + 4 * 3 + 4 + 5 + 1 + 4 + 5 + 1),
		       "STREAMS info is 128 + 4 * nn bytes");
		check_bad(dec_list, f.body_len - 10, 1, "STREAMS positive status");
		hs_buf_reset(&b);
		hs_msg_streams_begin(&w, &b, 77, 0);
		hs_msg_streams_add(&w, -HS_ENOSTREAM, "x", 1, &info);
		hs_msg_wr_end(&w);
		ok(parse_one(HS_MSG_STREAMS), "STREAMS error with info frame");
		is_int(hs_msg_clist_dec(HS_MSG_STREAMS, f.body, f.body_len, &l), -HS_EPROTO,
		       "refused: STREAMS info on an error entry");
	}
	/* STATUSES */
	{
		struct hs_status_ent e;

		hs_buf_reset(&b);
		hs_msg_statuses_begin(&w, &b, 77);
		hs_msg_statuses_add(&w, 0, 42);
		hs_msg_statuses_add(&w, -HS_EEXIST, 17);
		hs_msg_wr_end(&w);
		ok(list_of(HS_MSG_STATUSES, &l, "STATUSES") && hs_statuses_next(&l, &e) &&
		   !e.status && e.value == 42 && hs_statuses_next(&l, &e) &&
		   e.status == -HS_EEXIST && e.value == 17 && !hs_statuses_next(&l, &e),
		   "STATUSES round trip");
		check_bad(dec_list, 4, 1, "STATUSES positive status");
	}
}

static void test_read(void)
{
	struct hs_msg_wr w;
	struct hs_clist l;
	struct hs_run_builder rb;
	struct hs_buf run = { 0 };
	size_t rl;

	/* DELIVER */
	{
		struct hs_deliver_ent e;
		struct hs_run r;

		hs_run_begin(&rb, &run, 0, 3, 1, (const uint32_t[]){ 1, 2 }, 2);
		hs_run_add(&rb, 5, "abc", 3);
		rl = hs_run_end(&rb);
		hs_buf_reset(&b);
		hs_msg_deliver_begin(&w, &b, 77, 12);
		hs_msg_deliver_run(&w, HS_LSN(1, 1), run.data, rl);
		hs_msg_deliver_run_open(&w, HS_LSN(1, 2));
		hs_run_begin(&rb, w.b, 0, 0, 0, NULL, 0);
		hs_run_add(&rb, 6, "de", 2);
		hs_run_add(&rb, 7, "f", 1);
		hs_run_end(&rb);
		hs_msg_wr_run_close(&w);
		hs_msg_wr_end(&w);
		ok(list_of(HS_MSG_DELIVER, &l, "DELIVER") && l.read_id == 12 && l.n == 2,
		   "DELIVER header");
		ok(hs_deliver_next(&l, &e) && e.first_lsn == HS_LSN(1, 1) && e.run_len == rl &&
		   !memcmp(e.run, run.data, rl), "DELIVER copied run");
		ok(hs_deliver_next(&l, &e) && e.first_lsn == HS_LSN(1, 2) &&
		   !hs_run_parse(e.run, e.run_len, &r) && r.nrecords == 2 && !hs_deliver_next(&l, &e),
		   "DELIVER in-place run");
		check_bad(dec_list, 4 + 3, 0x7f, "DELIVER huge count");
		check_bad(dec_list, 4 + 4 + 8 + 3, 0x7f, "DELIVER run past the end");
	}
	/* READ_GAP */
	{
		struct hs_cgap_ent e;
		int good = 1;

		hs_buf_reset(&b);
		hs_msg_read_gap_begin(&w, &b, 77, 12);
		for (int k = HS_FMT_GAP_HOLE; k <= HS_FMT_GAP_DATALOSS; k++)
			hs_msg_read_gap_add(&w, HS_LSN(k, 1), HS_LSN(k, 9), (uint8_t)k);
		hs_msg_wr_end(&w);
		ok(list_of(HS_MSG_READ_GAP, &l, "READ_GAP") && l.read_id == 12 && l.n == 4,
		   "READ_GAP header");
		for (int k = HS_FMT_GAP_HOLE; k <= HS_FMT_GAP_DATALOSS; k++)
			good &= hs_read_gap_next(&l, &e) && e.lo == HS_LSN(k, 1) &&
				e.hi == HS_LSN(k, 9) && e.kind == k;
		ok(good && !hs_read_gap_next(&l, &e), "READ_GAP kinds = hs_fmt_gap_kind");
		check_bad(dec_list, 8 + 16, 0, "READ_GAP kind 0");
		check_bad(dec_list, 8 + 16, 5, "READ_GAP kind 5");
		check_bad(dec_list, 8 + 8, 0, "READ_GAP hi < lo");
		hs_buf_reset(&b);
		hs_msg_read_gap_begin(&w, &b, 77, 12);
		hs_msg_read_gap_add(&w, 0, 5, HS_FMT_GAP_TRIM);
		hs_msg_wr_end(&w);
		ok(parse_one(HS_MSG_READ_GAP), "READ_GAP lo 0 frame");
		is_int(hs_msg_clist_dec(HS_MSG_READ_GAP, f.body, f.body_len, &l), -HS_EPROTO,
		       "refused: READ_GAP lo 0");
	}
	hs_buf_free(&run);
}

static void test_subs(void)
{
	struct hs_msg_wr w;
	struct hs_clist l;

	/* SUB_CREATE */
	{
		struct hs_subcreate_ent in = { "billing", "orders", 7, 6, P_HEAD, 30000, 1000 },
					in2 = { "b2", "o", 2, 1, P_NONE, 0, 0 }, e;

		hs_buf_reset(&b);
		hs_msg_sub_create_begin(&w, &b, 77);
		hs_msg_sub_create_add(&w, &in);
		hs_msg_sub_create_add(&w, &in2);
		hs_msg_wr_end(&w);
		ok(list_of(HS_MSG_SUB_CREATE, &l, "SUB_CREATE") && hs_sub_create_next(&l, &e) &&
		   name_is(e.sub, e.sub_len, "billing") && name_is(e.stream, e.stream_len, "orders") &&
		   pos_eq(&e.from, &P_HEAD) && e.ack_timeout_ms == 30000 && e.max_unacked == 1000 &&
		   hs_sub_create_next(&l, &e) && pos_eq(&e.from, &P_NONE) && !e.ack_timeout_ms &&
		   !hs_sub_create_next(&l, &e), "SUB_CREATE round trip");
		check_bad(dec_list, 4 + 8, 0, "SUB_CREATE empty stream");
		check_bad(dec_list, 4 + 8 + 7, 9, "SUB_CREATE position kind 9");
	}
	/* SUBS */
	{
		struct hs_sub_info si = { "orders", 6, 30000, 1000, HS_LSN(2, 10), HS_LSN(2, 20),
					  11, 1 };
		struct hs_subs_ent e;

		hs_buf_reset(&b);
		hs_msg_subs_begin(&w, &b, 77, 0);
		hs_msg_subs_add(&w, 0, "billing", 7, &si);
		hs_msg_subs_add(&w, -HS_ENOENT, "nope", 4, NULL);
		hs_msg_wr_end(&w);
		ok(list_of(HS_MSG_SUBS, &l, "SUBS") && !l.flags && hs_subs_next(&l, &e) &&
		   !e.status && e.has_info && name_is(e.sub, e.sub_len, "billing") &&
		   name_is(e.info.stream, e.info.stream_len, "orders") &&
		   e.info.ack_timeout_ms == 30000 && e.info.max_unacked == 1000 &&
		   e.info.checkpoint == HS_LSN(2, 10) && e.info.delivered == HS_LSN(2, 20) &&
		   e.info.unacked == 11 && e.info.consumers == 1, "SUBS entry with info");
		ok(hs_subs_next(&l, &e) && e.status == -HS_ENOENT && !e.has_info &&
		   !hs_subs_next(&l, &e), "SUBS error entry");
		check_bad(dec_list, 5 + 4 + 8 + 1 + 1, '_', "SUBS info stream starting with '_'");
	}
	/* ACK */
	{
		struct hs_lsn_range e;

		hs_buf_reset(&b);
		hs_msg_ack_begin(&w, &b, 77, "billing", 7);
		hs_msg_ack_add(&w, HS_LSN(2, 1), HS_LSN(2, 5));
		hs_msg_ack_add(&w, HS_LSN(2, 9), HS_LSN(2, 9));
		hs_msg_wr_end(&w);
		ok(list_of(HS_MSG_ACK, &l, "ACK") && name_is(l.sub, l.sub_len, "billing") &&
		   l.n == 2 && hs_ack_next(&l, &e) && e.lo == HS_LSN(2, 1) &&
		   e.hi == HS_LSN(2, 5) && hs_ack_next(&l, &e) && e.lo == e.hi &&
		   !hs_ack_next(&l, &e), "ACK round trip");
		check_bad(dec_list, 0, 0, "ACK empty subscription");
		check_bad(dec_list, 12 + 8 + 4, 1, "ACK hi < lo");
	}
}

static void test_stats(void)
{
	struct hs_msg_wr w;
	struct hs_clist l;

	{
		struct hs_kv_ent e;

		hs_buf_reset(&b);
		hs_msg_admin_statsreply_begin(&w, &b, 77);
		hs_msg_kv_add(&w, "serve", "version", "0.1");
		hs_msg_kv_addu(&w, "stream/orders", "records", 18446744073709551615ull);
		hs_msg_kv_add(&w, "peer/3", "state", "");
		hs_msg_wr_end(&w);
		ok(list_of(HS_MSG_ADMIN_STATSREPLY, &l, "ADMIN_STATSREPLY") && l.n == 3 &&
		   hs_kv_next(&l, &e) && name_is(e.scope, e.scope_len, "serve") &&
		   name_is(e.key, e.key_len, "version") && name_is(e.val, e.val_len, "0.1") &&
		   hs_kv_next(&l, &e) && name_is(e.val, e.val_len, "18446744073709551615") &&
		   hs_kv_next(&l, &e) && name_is(e.scope, e.scope_len, "peer/3") && !e.val_len &&
		   !hs_kv_next(&l, &e), "ADMIN_STATSREPLY round trip");
	}
	{
		struct hs_peer_ent e, p1 = { 1, HS_PEER_UP, HS_PEERF_DATA, 10, 2, 1, -HS_EUNAVAIL,
					     1764151200000, "unix:/tmp/p1", 12 },
				      p2 = { 2, HS_PEER_DRAINING, 0, 0, 0, 0, 0, 0, "10.0.0.2:4000", 13 };
		struct hs_cstream_ent c, c1 = { "orders", 6, HS_CSTREAM_ACTIVE, 2, 3, 7, 6,
						HS_LSN(7, 4), HS_LSN(7, 5), HS_LSN(2, 0), { 1, 2, 3 } },
				      c2 = { "new", 3, HS_CSTREAM_WAITING, 0, 0, 0, 0, 0, 0, 0, { 0 } };
		struct hs_clist l3;

		hs_buf_reset(&b);
		hs_msg_cluster_statusreply_begin(&w, &b, 77, 0xabcdef, 1, 3, 5);
		hs_msg_peer_add(&w, &p1);
		hs_msg_peer_add(&w, &p2);
		hs_msg_cstreams_open(&w);
		hs_msg_cstream_add(&w, &c1);
		hs_msg_cstream_add(&w, &c2);
		hs_msg_wr_end(&w);
		ok(list_of(HS_MSG_CLUSTER_STATUSREPLY, &l, "CLUSTER_STATUSREPLY") &&
		   l.cluster_id == 0xabcdef && l.healthy == 1 && l.replication == 3 && l.n == 2 &&
		   l.streams_active == 5 && l.nstreams == 2, "CLUSTER_STATUSREPLY header");
		l3 = l;
		ok(hs_peer_next(&l, &e) && e.node_id == 1 && e.state == HS_PEER_UP &&
		   e.flags == HS_PEERF_DATA && e.pending_bytes == 10 && e.connects == 2 &&
		   e.losses == 1 && e.last_error == -HS_EUNAVAIL &&
		   e.last_error_ms == 1764151200000 &&
		   name_is(e.addr, e.addr_len, "unix:/tmp/p1") && hs_peer_next(&l, &e) &&
		   e.state == HS_PEER_DRAINING && !e.flags && !e.last_error &&
		   !hs_peer_next(&l, &e), "CLUSTER_STATUSREPLY peers");
		ok(hs_cstream_next(&l, &c) && name_is(c.stream, c.stream_len, "orders") &&
		   c.state == HS_CSTREAM_ACTIVE && c.r == 2 && c.nn == 3 && c.epoch == 7 &&
		   c.lce == 6 && c.released == HS_LSN(7, 4) && c.tail == HS_LSN(7, 5) &&
		   c.trim == HS_LSN(2, 0) && c.nodes[0] == 1 && c.nodes[2] == 3 &&
		   hs_cstream_next(&l, &c) && name_is(c.stream, c.stream_len, "new") &&
		   c.state == HS_CSTREAM_WAITING && !c.nn && !hs_cstream_next(&l, &c) &&
		   !hs_peer_next(&l, &e), "CLUSTER_STATUSREPLY streams");
		ok(hs_cstream_next(&l3, &c) && name_is(c.stream, c.stream_len, "orders"),
		   "CLUSTER_STATUSREPLY streams first: the peers are skipped");
		check_bad(dec_list, 8, 2, "CLUSTER_STATUSREPLY healthy 2");
		check_bad(dec_list, 10, 1, "CLUSTER_STATUSREPLY reserved u16");
		/* first peer at 20: state 24, flags 25, last_error 52..55 */
		check_bad(dec_list, 24, 0, "CLUSTER_STATUSREPLY peer state 0");
		check_bad(dec_list, 24, 5, "CLUSTER_STATUSREPLY peer state 5");
		check_bad(dec_list, 25, 2, "CLUSTER_STATUSREPLY peer flag 2");
		check_bad(dec_list, 55, 0x7f, "CLUSTER_STATUSREPLY peer positive last_error");
		{
			/* the streams list: after 2 peers (45 + 12, 45 + 13) and its count */
			size_t cs = 20 + 57 + 58 + 4;

			check_bad(dec_list, cs + 7, 0, "CLUSTER_STATUSREPLY stream state 0");
			check_bad(dec_list, cs + 7, 4, "CLUSTER_STATUSREPLY stream state 4");
			check_bad(dec_list, cs + 8, 4, "CLUSTER_STATUSREPLY stream r > nn");
			check_bad(dec_list, cs + 9, 33, "CLUSTER_STATUSREPLY stream nn 33");
			check_bad(dec_list, cs + 10, 1, "CLUSTER_STATUSREPLY stream reserved");
			check_bad(dec_list, cs, '_', "CLUSTER_STATUSREPLY stream bad name");
			check_bad(dec_list, 20 + 57 + 58, 3, "CLUSTER_STATUSREPLY stream count 3");
		}
		hs_buf_reset(&b);
		hs_msg_cluster_statusreply_begin(&w, &b, 77, 1, 0, 1, 0);
		hs_msg_cstreams_open(&w);
		hs_msg_wr_end(&w);
		ok(list_of(HS_MSG_CLUSTER_STATUSREPLY, &l, "CLUSTER_STATUSREPLY empty") && !l.n &&
		   !l.nstreams && !hs_peer_next(&l, &e) && !hs_cstream_next(&l, &c),
		   "CLUSTER_STATUSREPLY with no peer and no stream");
	}
	{
		struct hs_clist l2;

		is_int(hs_msg_clist_dec(HS_MSG_READ, f.body, f.body_len, &l2), -HS_EPROTO,
		       "clist_dec refuses a non-list type");
		is_int(hs_msg_clist_dec(HS_MSG_STORE, f.body, f.body_len, &l2), -HS_EPROTO,
		       "clist_dec refuses a peer type");
	}
}

static void test_tier(void)
{
	struct hs_msg_wr w;
	struct hs_clist l;
	uint8_t entry[HS_TIER_ENTRY_WIRE], ref[HS_TIER_REF_WIRE], lsn[8], man[40];

	for (size_t i = 0; i < sizeof(entry); i++)
		entry[i] = (uint8_t)i;
	memset(ref, 0xab, sizeof(ref));
	hs_put64(lsn, HS_LSN(2, 7));
	memset(man, 0x5a, sizeof(man));
	/* TIER_INFO: a list of names */
	{
		struct hs_name_ent e;

		hs_buf_reset(&b);
		hs_msg_tier_info_begin(&w, &b, 77);
		hs_msg_name_add(&w, "orders", 6);
		hs_msg_wr_end(&w);
		ok(list_of(HS_MSG_TIER_INFO, &l, "TIER_INFO") && hs_name_next(&l, &e) &&
		   name_is(e.name, e.name_len, "orders") && !hs_name_next(&l, &e),
		   "TIER_INFO round trip");
	}
	/* TIER_INFOS */
	{
		struct hs_tier_infos_ent e;
		struct hs_tier_info in = {
			.log = 0x1122334455667788ull, .limit = HS_LSN(3, 9), .released = HS_LSN(3, 10),
			.tier1_trim = HS_LSN(3, 1), .epoch = 3, .lce = 2, .man = man,
			.man_len = sizeof(man),
		};

		hs_buf_reset(&b);
		hs_msg_tier_infos_begin(&w, &b, 77);
		hs_msg_tier_infos_add(&w, 0, "orders", 6, &in);
		hs_msg_tier_infos_add(&w, -HS_ENOSTREAM, "gone", 4, NULL);
		hs_msg_wr_end(&w);
		ok(list_of(HS_MSG_TIER_INFOS, &l, "TIER_INFOS") && hs_tier_infos_next(&l, &e) &&
		   !e.status && e.has_info && name_is(e.stream, e.stream_len, "orders") &&
		   e.info.log == in.log && e.info.limit == in.limit &&
		   e.info.released == in.released && e.info.tier1_trim == in.tier1_trim &&
		   e.info.epoch == 3 && e.info.lce == 2 && e.info.man_len == sizeof(man) &&
		   !memcmp(e.info.man, man, sizeof(man)) && hs_tier_infos_next(&l, &e) &&
		   e.status == -HS_ENOSTREAM && !e.has_info && !hs_tier_infos_next(&l, &e),
		   "TIER_INFOS round trip");
		/* u32 n | i32 status | name(7) | has_info */
		check_bad(dec_list, 4 + 4 + 7, 2, "TIER_INFOS has_info 2");
		check_bad(dec_list, 4, 1, "TIER_INFOS positive status");
	}
	/* TIER_PUBLISH */
	{
		struct hs_tier_pub_ent e;
		struct hs_tier_pub_ent in[3] = {
			{ "orders", 6, 42, HS_TIER_OP_PUBLISH, entry, sizeof(entry) },
			{ "orders", 6, 42, HS_TIER_OP_FOLD, ref, sizeof(ref) },
			{ "o2", 2, 43, HS_TIER_OP_EXPIRE, lsn, sizeof(lsn) },
		};

		hs_buf_reset(&b);
		hs_msg_tier_publish_begin(&w, &b, 77);
		for (int i = 0; i < 3; i++)
			hs_msg_tier_publish_add(&w, &in[i]);
		hs_msg_wr_end(&w);
		ok(list_of(HS_MSG_TIER_PUBLISH, &l, "TIER_PUBLISH") && hs_tier_pub_next(&l, &e) &&
		   e.op == HS_TIER_OP_PUBLISH && e.log == 42 && e.body_len == sizeof(entry) &&
		   !memcmp(e.body, entry, sizeof(entry)) && hs_tier_pub_next(&l, &e) &&
		   e.op == HS_TIER_OP_FOLD && !memcmp(e.body, ref, sizeof(ref)) &&
		   hs_tier_pub_next(&l, &e) && e.op == HS_TIER_OP_EXPIRE && e.log == 43 &&
		   hs_get64(e.body) == HS_LSN(2, 7) && name_is(e.stream, e.stream_len, "o2") &&
		   !hs_tier_pub_next(&l, &e), "TIER_PUBLISH round trip");
		/* u32 n | name(7) | u64 log | u8 op | u8 0 | u16 0 */
		check_bad(dec_list, 4 + 7 + 8, 5, "TIER_PUBLISH op 5");
		check_bad(dec_list, 4 + 7 + 8, 0, "TIER_PUBLISH op 0");
		check_bad(dec_list, 4 + 7 + 8 + 1, 1, "TIER_PUBLISH reserved byte");
		check_bad(dec_list, 4 + 7 + 8, HS_TIER_OP_EXPIRE, "TIER_PUBLISH body size");
	}
	/* TIER_PUBLISH RESTORE: a length-prefixed register value */
	{
		struct hs_tier_pub_ent e;
		uint8_t val[40] = { 1 };
		struct hs_tier_pub_ent in = { "orders", 6, 42, HS_TIER_OP_RESTORE, val,
					      sizeof(val) };

		hs_buf_reset(&b);
		hs_msg_tier_publish_begin(&w, &b, 77);
		hs_msg_tier_publish_add(&w, &in);
		hs_msg_wr_end(&w);
		ok(list_of(HS_MSG_TIER_PUBLISH, &l, "TIER_PUBLISH RESTORE") &&
		   hs_tier_pub_next(&l, &e) && e.op == HS_TIER_OP_RESTORE && e.log == 42 &&
		   e.body_len == sizeof(val) && !memcmp(e.body, val, sizeof(val)) &&
		   !hs_tier_pub_next(&l, &e), "TIER_PUBLISH RESTORE round trip");
		/* u32 n | name(7) | log(8) | op | 0 | 0(2) | u32 len | value */
		is_int((int)f.body_len, 4 + 7 + 8 + 4 + 4 + 40, "RESTORE body size");
		is_int(hs_msg_clist_dec(HS_MSG_TIER_PUBLISH, f.body, f.body_len - 1, &l),
		       -HS_EPROTO, "RESTORE value truncated");
		check_bad(dec_list, 4 + 7 + 8 + 4 + 2, 0x10, "RESTORE length over the limit");
	}
	/* STREAM_CREATE with HS_ATTR_RESTORE: 16 more bytes */
	{
		struct hs_stream_attrs r = { .mask = HS_ATTR_RESTORE | HS_ATTR_REPLICATION,
					     .replication = 2, .restore_log = 0x1234,
					     .restore_lsn = HS_LSN(3, 17) };
		struct hs_create_ent e;

		hs_buf_reset(&b);
		hs_msg_stream_create_begin(&w, &b, 77);
		hs_msg_stream_create_add(&w, "orders", 6, &r);
		hs_msg_wr_end(&w);
		ok(list_of(HS_MSG_STREAM_CREATE, &l, "STREAM_CREATE restore") &&
		   hs_create_next(&l, &e) && e.attrs.mask == r.mask && e.attrs.replication == 2 &&
		   e.attrs.restore_log == 0x1234 && e.attrs.restore_lsn == HS_LSN(3, 17),
		   "STREAM_CREATE restore round trip");
		is_int((int)f.body_len, 4 + 7 + 24 + 16, "attrs with restore are 40 bytes");
		/* restore_log 0 is malformed */
		hs_buf_reset(&b);
		r.restore_log = 0;
		hs_msg_stream_create_begin(&w, &b, 77);
		hs_msg_stream_create_add(&w, "orders", 6, &r);
		hs_msg_wr_end(&w);
		parse_one(HS_MSG_STREAM_CREATE);
		is_int(hs_msg_clist_dec(HS_MSG_STREAM_CREATE, f.body, f.body_len, &l), -HS_EPROTO,
		       "restore log id 0 refused");
		hs_buf_reset(&b);
		r.restore_log = 1ull << 62;
		hs_msg_stream_create_begin(&w, &b, 77);
		hs_msg_stream_create_add(&w, "orders", 6, &r);
		hs_msg_wr_end(&w);
		parse_one(HS_MSG_STREAM_CREATE);
		is_int(hs_msg_clist_dec(HS_MSG_STREAM_CREATE, f.body, f.body_len, &l), -HS_EPROTO,
		       "restore log id >= 2^62 refused");
	}
	/* STREAM_ALTER: entries as STREAM_CREATE */
	{
		struct hs_create_ent e;
		struct hs_stream_attrs a = { .mask = HS_ATTR_RETENTION | HS_ATTR_OFFLOAD |
						     HS_ATTR_OFFLOAD_SIZE,
					     .retention_ms = 86400000, .offload_after_ms = 3600000,
					     .offload_size = 1ull << 30 };

		hs_buf_reset(&b);
		hs_msg_stream_alter_begin(&w, &b, 77);
		hs_msg_stream_create_add(&w, "orders", 6, &a);
		hs_msg_wr_end(&w);
		ok(list_of(HS_MSG_STREAM_ALTER, &l, "STREAM_ALTER") && hs_create_next(&l, &e) &&
		   name_is(e.stream, e.stream_len, "orders") && e.attrs.mask == a.mask &&
		   e.attrs.retention_ms == 86400000 && e.attrs.offload_after_ms == 3600000 &&
		   e.attrs.offload_size == 1ull << 30 && !hs_create_next(&l, &e),
		   "STREAM_ALTER round trip");
	}
}

int main(void)
{
	test_names();
	test_types();
	test_pos();
	test_single();
	test_append();
	test_admin();
	test_read();
	test_subs();
	test_stats();
	test_tier();
	hs_buf_free(&b);
	return tap_done();
}
