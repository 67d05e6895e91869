/*
 * fuzz_pmsg.c - libFuzzer target for the serve<->peer message decoders
 * (proto.h): the fixed messages, the lists (STORE, STORED, SEALED, RELEASE,
 * RECORDS), LOCATE, CLEAN, and the metadata register family (REG_PREPARE ..
 * REG_LISTED).  Built by test/fuzz/run.
 *
 * Input: byte 0 picks the type from types[], the rest is the frame body.
 * A list that decodes must yield exactly its count of entries; runs inside
 * STORE and RECORDS are parsed and walked; register keys and values are
 * read to their full length.
 */
#include "fuzz.h"

#include "err.h"
#include "proto.h"
#include "run.h"

static const uint16_t types[] = {
	HS_MSG_HELLO, HS_MSG_RESULT, HS_MSG_STORE, HS_MSG_STORED, HS_MSG_SEAL,
	HS_MSG_SEALED, HS_MSG_RELEASE, HS_MSG_TRIM, HS_MSG_GETMETA, HS_MSG_META,
	HS_MSG_STATS, HS_MSG_STATSREPLY, HS_MSG_LOCATE, HS_MSG_LOCATED,
	HS_MSG_START, HS_MSG_RECORDS, HS_MSG_GAP, HS_MSG_WINDOW, HS_MSG_STOP,
	HS_MSG_END, HS_MSG_REG_PREPARE, HS_MSG_REG_PROMISE, HS_MSG_REG_ACCEPT,
	HS_MSG_REG_ACCEPTED, HS_MSG_REG_LIST, HS_MSG_REG_LISTED, HS_MSG_CLEAN,
};
#define NTYPES (sizeof(types) / sizeof(types[0]))

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
	for (int i = 0; i < r.ncopyset; i++)
		hs_run_copyset(&r, i);
	hs_run_iter_init(&it, &r);
	while (hs_run_next(&it, &ts, &q, &len))
		fz_touch(q, len);
	CHECK(it.p == r.end);
}

static void walk_entry(const struct hs_reg_entry *e)
{
	CHECK(e->key_len >= 1);
	fz_touch(e->key, e->key_len);
	CHECK(e->val.len <= HS_REG_VALUE_MAX);
	if (e->val.len)
		fz_touch(e->val.data, e->val.len);
}

static void decode(uint16_t type, const uint8_t *b, size_t n)
{
	union {
		struct hs_hello hello;
		struct hs_result result;
		struct hs_seal seal;
		struct hs_trim trim;
		struct hs_getmeta getmeta;
		struct hs_meta meta;
		struct hs_statsreply statsreply;
		struct hs_start start;
		struct hs_gap gap;
		struct hs_window window;
		struct hs_stop stop;
		struct hs_end end;
		struct hs_locate locate;
		struct hs_clean clean;
		struct hs_located located;
		struct hs_reg_list reg_list;
		struct hs_store_rd store;
		struct hs_stored_rd stored;
		struct hs_sealed sealed;
		struct hs_release_rd release;
		struct hs_records records;
		struct hs_reg_rd reg;
		struct hs_reg_listed listed;
	} m;
	struct hs_reg_entry e;
	uint64_t a, c;
	const uint8_t *p;
	size_t len;
	int32_t st;
	uint32_t u, got = 0;

	switch (type) {
	case HS_MSG_HELLO:
		if (!hs_msg_hello_dec(b, n, &m.hello) && m.hello.auth_len)
			fz_touch(m.hello.auth, m.hello.auth_len);
		break;
	case HS_MSG_RESULT:
		if (!hs_msg_result_dec(b, n, &m.result))
			fz_touch(m.result.msg, m.result.msg_len);
		break;
	case HS_MSG_SEAL: hs_msg_seal_dec(b, n, &m.seal); break;
	case HS_MSG_TRIM: hs_msg_trim_dec(b, n, &m.trim); break;
	case HS_MSG_GETMETA: hs_msg_getmeta_dec(b, n, &m.getmeta); break;
	case HS_MSG_META: hs_msg_meta_dec(b, n, &m.meta); break;
	case HS_MSG_STATS: hs_msg_stats_dec(b, n); break;
	case HS_MSG_STATSREPLY:
		if (!hs_msg_statsreply_dec(b, n, &m.statsreply))
			fz_touch(m.statsreply.text, m.statsreply.len);
		break;
	case HS_MSG_LOCATE: hs_msg_locate_dec(b, n, &m.locate); break;
	case HS_MSG_CLEAN: hs_msg_clean_dec(b, n, &m.clean); break;
	case HS_MSG_LOCATED: hs_msg_located_dec(b, n, &m.located); break;
	case HS_MSG_START: hs_msg_start_dec(b, n, &m.start); break;
	case HS_MSG_GAP: hs_msg_gap_dec(b, n, &m.gap); break;
	case HS_MSG_WINDOW: hs_msg_window_dec(b, n, &m.window); break;
	case HS_MSG_STOP: hs_msg_stop_dec(b, n, &m.stop); break;
	case HS_MSG_END: hs_msg_end_dec(b, n, &m.end); break;
	case HS_MSG_REG_LIST:
		if (!hs_msg_reg_list_dec(b, n, &m.reg_list)) {
			fz_touch(m.reg_list.prefix, m.reg_list.prefix_len);
			fz_touch(m.reg_list.after, m.reg_list.after_len);
			CHECK(m.reg_list.max >= 1 && m.reg_list.max <= HS_REG_LIST_MAX);
		}
		break;
	case HS_MSG_STORE:
		if (hs_msg_store_dec(b, n, &m.store))
			break;
		while (hs_store_next(&m.store, &a, &c, &p, &len)) {
			walk_run(p, len);
			got++;
		}
		CHECK(got == m.store.nruns);
		break;
	case HS_MSG_STORED:
		if (hs_msg_stored_dec(b, n, &m.stored))
			break;
		while (hs_stored_next(&m.stored, &st, &u))
			got++;
		CHECK(got == m.stored.nruns);
		break;
	case HS_MSG_SEALED:
		if (hs_msg_sealed_dec(b, n, &m.sealed))
			break;
		while (hs_sealed_next(&m.sealed, &u, &a, &c))
			got++;
		CHECK(got == m.sealed.nepochs);
		break;
	case HS_MSG_RELEASE:
		if (hs_msg_release_dec(b, n, &m.release))
			break;
		while (hs_release_next(&m.release, &a, &c))
			got++;
		CHECK(got == m.release.n);
		break;
	case HS_MSG_RECORDS:
		if (hs_msg_records_dec(b, n, &m.records))
			break;
		while (hs_records_next(&m.records, &a, &p, &len)) {
			walk_run(p, len);
			got++;
		}
		CHECK(got == m.records.nruns);
		break;
	case HS_MSG_REG_PREPARE:
	case HS_MSG_REG_PROMISE:
	case HS_MSG_REG_ACCEPT:
	case HS_MSG_REG_ACCEPTED:
		if (hs_msg_reg_dec(type, b, n, &m.reg))
			break;
		CHECK(m.reg.type == type);
		while (hs_reg_next(&m.reg, &e)) {
			walk_entry(&e);
			got++;
		}
		CHECK(got == m.reg.n);
		break;
	case HS_MSG_REG_LISTED:
		if (hs_msg_reg_listed_dec(b, n, &m.listed))
			break;
		while (hs_reg_listed_next(&m.listed, &e)) {
			walk_entry(&e);
			got++;
		}
		CHECK(got == m.listed.n);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *body;

	if (size < 1)
		return 0;
	body = fz_dup(data + 1, size - 1);
	decode(types[data[0] % NTYPES], body, size - 1);
	free(body);
	return 0;
}
