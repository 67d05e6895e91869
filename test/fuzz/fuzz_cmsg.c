/*
 * fuzz_cmsg.c - libFuzzer target for the client<->serve message decoders
 * (proto_client.h): hs_msg_clist_dec() with every typed iterator, and the
 * single-message decoders.  Built by test/fuzz/run.
 *
 * Input: byte 0 picks the type (64 + b % 26), the rest is the frame body.
 * A list that decodes must yield exactly n entries, each with valid names
 * and in-range fields; every borrowed pointer is read to its full length.
 */
#include "fuzz.h"

#include "err.h"
#include "proto_client.h"
#include "run.h"

static void walk_run(const uint8_t *p, size_t n)
{
	struct hs_run r;
	struct hs_run_iter it;
	const uint8_t *q;
	uint64_t ts;
	uint32_t len;

	fz_touch(p, n);
	if (hs_run_parse_nocrc(p, n, &r))
		return;
	hs_append_run_check(&r);
	hs_run_iter_init(&it, &r);
	while (hs_run_next(&it, &ts, &q, &len))
		fz_touch(q, len);
	CHECK(it.p == r.end);
}

static void name_ok(const char *p, size_t n)
{
	CHECK(hs_stream_name_valid(p, n));
}

static void pos_ok(const struct hs_pos *p, int none_ok)
{
	CHECK((none_ok && p->kind == HS_POS_NONE) ||
	      (p->kind >= HS_POS_LSN && p->kind <= HS_POS_TIME));
}

static void lists(uint16_t type, const uint8_t *b, size_t n)
{
	struct hs_clist l;
	union {
		struct hs_append_ent append;
		struct hs_appended_ent appended;
		struct hs_name_ent name;
		struct hs_create_ent create;
		struct hs_trim_ent trim;
		struct hs_streams_ent streams;
		struct hs_status_ent status;
		struct hs_deliver_ent deliver;
		struct hs_cgap_ent gap;
		struct hs_subcreate_ent subcreate;
		struct hs_subs_ent subs;
		struct hs_lsn_range ack;
		struct hs_kv_ent kv;
		struct hs_peer_ent peer;
		struct hs_cstream_ent cstream;
	} e;
	uint32_t got = 0;

	if (hs_msg_clist_dec(type, b, n, &l))
		return;
	CHECK(l.type == type);
	if (type == HS_MSG_ACK)
		name_ok(l.sub, l.sub_len);
	for (;;) {
		int more = 0;

		switch (type) {
		case HS_MSG_APPEND:
			if ((more = hs_append_next(&l, &e.append))) {
				name_ok(e.append.stream, e.append.stream_len);
				walk_run(e.append.run, e.append.run_len);
			}
			break;
		case HS_MSG_APPENDED:
			if ((more = hs_appended_next(&l, &e.appended))) {
				CHECK(e.appended.status <= 0);
				fz_touch(e.appended.text, e.appended.text_len);
			}
			break;
		case HS_MSG_STREAM_DELETE:
		case HS_MSG_STREAM_INFO:
		case HS_MSG_SUB_DELETE:
		case HS_MSG_SUB_INFO:
			if ((more = hs_name_next(&l, &e.name)))
				name_ok(e.name.name, e.name.name_len);
			break;
		case HS_MSG_STREAM_CREATE:
			if ((more = hs_create_next(&l, &e.create))) {
				name_ok(e.create.stream, e.create.stream_len);
				CHECK(!(e.create.attrs.mask &
					~(uint32_t)(HS_ATTR_ALL | HS_ATTR_RESTORE)));
				CHECK(!(e.create.attrs.mask & HS_ATTR_RESTORE) ||
				      (e.create.attrs.restore_log &&
				       e.create.attrs.restore_log < (1ull << 62)));
			}
			break;
		case HS_MSG_STREAM_TRIM:
			if ((more = hs_trim_next(&l, &e.trim))) {
				name_ok(e.trim.stream, e.trim.stream_len);
				pos_ok(&e.trim.before, 0);
			}
			break;
		case HS_MSG_STREAMS:
			if ((more = hs_streams_next(&l, &e.streams))) {
				CHECK(e.streams.status <= 0);
				CHECK(e.streams.has_info <= 1);
				fz_touch(e.streams.stream, e.streams.stream_len);
			}
			break;
		case HS_MSG_STATUSES:
			if ((more = hs_statuses_next(&l, &e.status)))
				CHECK(e.status.status <= 0);
			break;
		case HS_MSG_DELIVER:
			if ((more = hs_deliver_next(&l, &e.deliver)))
				walk_run(e.deliver.run, e.deliver.run_len);
			break;
		case HS_MSG_READ_GAP:
			if ((more = hs_read_gap_next(&l, &e.gap)))
				CHECK(e.gap.lo > 0 && e.gap.lo <= e.gap.hi &&
				      e.gap.kind >= 1 && e.gap.kind <= 4);
			break;
		case HS_MSG_SUB_CREATE:
			if ((more = hs_sub_create_next(&l, &e.subcreate))) {
				name_ok(e.subcreate.sub, e.subcreate.sub_len);
				name_ok(e.subcreate.stream, e.subcreate.stream_len);
				pos_ok(&e.subcreate.from, 1);
			}
			break;
		case HS_MSG_SUBS:
			if ((more = hs_subs_next(&l, &e.subs))) {
				CHECK(e.subs.status <= 0);
				fz_touch(e.subs.sub, e.subs.sub_len);
				if (e.subs.has_info)
					fz_touch(e.subs.info.stream,
						 e.subs.info.stream_len);
			}
			break;
		case HS_MSG_ACK:
			if ((more = hs_ack_next(&l, &e.ack)))
				CHECK(e.ack.lo > 0 && e.ack.lo <= e.ack.hi);
			break;
		case HS_MSG_ADMIN_STATSREPLY:
			if ((more = hs_kv_next(&l, &e.kv))) {
				fz_touch(e.kv.scope, e.kv.scope_len);
				fz_touch(e.kv.key, e.kv.key_len);
				fz_touch(e.kv.val, e.kv.val_len);
			}
			break;
		case HS_MSG_CLUSTER_STATUSREPLY:
			if ((more = hs_peer_next(&l, &e.peer)))
				fz_touch(e.peer.addr, e.peer.addr_len);
			break;
		default:
			CHECK(!"clist_dec accepted a type that is not a list");
		}
		if (!more)
			break;
		got++;
		CHECK(got <= l.n);
	}
	CHECK(got == l.n);
	if (type == HS_MSG_CLUSTER_STATUSREPLY) {
		/* The second list: streams, each a valid name and nodeset. */
		for (got = 0; hs_cstream_next(&l, &e.cstream) == 1; got++) {
			name_ok(e.cstream.stream, e.cstream.stream_len);
			CHECK(e.cstream.nn <= HS_INFO_NODESET_MAX && e.cstream.r <= e.cstream.nn);
		}
		CHECK(got == l.nstreams);
	}
	/* An iterator of another type must refuse the list. */
	if (type != HS_MSG_STATUSES)
		CHECK(!hs_statuses_next(&l, &e.status));
}

static void singles(uint16_t type, const uint8_t *b, size_t n)
{
	union {
		struct hs_cread read;
		struct hs_read_window window;
		struct hs_read_end end;
		struct hs_read_cancel cancel;
		struct hs_subscribe subscribe;
		struct hs_list_req list;
		struct hs_admin_stats stats;
	} m;

	switch (type) {
	case HS_MSG_READ:
		if (!hs_msg_read_dec(b, n, &m.read)) {
			name_ok(m.read.stream, m.read.stream_len);
			pos_ok(&m.read.from, 0);
			pos_ok(&m.read.until, 1);
		}
		break;
	case HS_MSG_READ_WINDOW:
		hs_msg_read_window_dec(b, n, &m.window);
		break;
	case HS_MSG_READ_END:
		hs_msg_read_end_dec(b, n, &m.end);
		break;
	case HS_MSG_READ_CANCEL:
		hs_msg_read_cancel_dec(b, n, &m.cancel);
		break;
	case HS_MSG_SUBSCRIBE:
		if (!hs_msg_subscribe_dec(b, n, &m.subscribe))
			name_ok(m.subscribe.sub, m.subscribe.sub_len);
		break;
	case HS_MSG_STREAM_LIST:
	case HS_MSG_SUB_LIST:
		if (!(type == HS_MSG_STREAM_LIST ? hs_msg_stream_list_dec(b, n, &m.list)
						  : hs_msg_sub_list_dec(b, n, &m.list))) {
			fz_touch(m.list.filter, m.list.filter_len);
			fz_touch(m.list.cursor, m.list.cursor_len);
		}
		break;
	case HS_MSG_ADMIN_STATS:
		if (!hs_msg_admin_stats_dec(b, n, &m.stats))
			fz_touch(m.stats.prefix, m.stats.prefix_len);
		break;
	case HS_MSG_CLUSTER_STATUS:
		hs_msg_cluster_status_dec(b, n);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint16_t type;
	uint8_t *body;

	if (size < 1)
		return 0;
	type = 64 + data[0] % 26;
	body = fz_dup(data + 1, size - 1);
	lists(type, body, size - 1);
	singles(type, body, size - 1);
	free(body);
	return 0;
}
