/*
 * fuzz_frame.c - libFuzzer target for the frame, message and run decoders.
 *
 * Built and run by test/fuzz/run (which lists the sources it needs);
 * reproduce a crash with BUILD/fuzz/fuzz_frame CRASH-FILE, fuzz longer with
 * FUZZ_SECONDS=600 test/fuzz/run BUILD.
 *
 * The input is split into frames; because a random CRC never matches, the
 * body of each frame is also decoded directly (the frame CRC is patched in
 * first), and the whole input is parsed as a run.  Anything decoded is
 * walked completely so a decoder that accepted a bad length would read out
 * of bounds under ASan.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "frame.h"
#include "proto.h"
#include "run.h"
#include "wire.h"

static void walk_run(const uint8_t *p, size_t n)
{
	struct hs_run r;
	struct hs_run_iter it;
	const uint8_t *q;
	uint64_t ts;
	uint32_t len, sum = 0;
	struct hs_buf s = HS_BUF_INIT;

	if (hs_run_parse_nocrc(p, n, &r))
		return;
	for (int i = 0; i < r.ncopyset; i++)
		sum += hs_run_copyset(&r, i);
	hs_run_iter_init(&it, &r);
	while (hs_run_next(&it, &ts, &q, &len))
		for (uint32_t k = 0; k < len; k++)
			sum += q[k];
	if (it.p != r.end)
		abort();
	if (r.nrecords > 1 && hs_run_slice(&r, 1, r.nrecords - 1, &s) == 0) {
		struct hs_run r2;

		if (hs_run_parse(s.data, s.len, &r2) || r2.nrecords != r.nrecords - 1)
			abort();
	}
	hs_buf_free(&s);
	(void)sum;
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
		struct hs_store_rd store;
		struct hs_stored_rd stored;
		struct hs_sealed sealed;
		struct hs_release_rd release;
		struct hs_records records;
	} m;
	uint64_t a, c;
	const uint8_t *p;
	size_t len;
	int32_t st;
	uint32_t u;

	switch (type) {
	case HS_MSG_HELLO: hs_msg_hello_dec(b, n, &m.hello); break;
	case HS_MSG_RESULT: hs_msg_result_dec(b, n, &m.result); break;
	case HS_MSG_SEAL: hs_msg_seal_dec(b, n, &m.seal); break;
	case HS_MSG_TRIM: hs_msg_trim_dec(b, n, &m.trim); break;
	case HS_MSG_GETMETA: hs_msg_getmeta_dec(b, n, &m.getmeta); break;
	case HS_MSG_META: hs_msg_meta_dec(b, n, &m.meta); break;
	case HS_MSG_STATS: hs_msg_stats_dec(b, n); break;
	case HS_MSG_STATSREPLY: hs_msg_statsreply_dec(b, n, &m.statsreply); break;
	case HS_MSG_START: hs_msg_start_dec(b, n, &m.start); break;
	case HS_MSG_GAP: hs_msg_gap_dec(b, n, &m.gap); break;
	case HS_MSG_WINDOW: hs_msg_window_dec(b, n, &m.window); break;
	case HS_MSG_STOP: hs_msg_stop_dec(b, n, &m.stop); break;
	case HS_MSG_END: hs_msg_end_dec(b, n, &m.end); break;
	case HS_MSG_STORE:
		if (!hs_msg_store_dec(b, n, &m.store))
			while (hs_store_next(&m.store, &a, &c, &p, &len))
				walk_run(p, len);
		break;
	case HS_MSG_STORED:
		if (!hs_msg_stored_dec(b, n, &m.stored))
			while (hs_stored_next(&m.stored, &st, &u))
				;
		break;
	case HS_MSG_SEALED:
		if (!hs_msg_sealed_dec(b, n, &m.sealed))
			while (hs_sealed_next(&m.sealed, &u, &a, &c))
				;
		break;
	case HS_MSG_RELEASE:
		if (!hs_msg_release_dec(b, n, &m.release))
			while (hs_release_next(&m.release, &a, &c))
				;
		break;
	case HS_MSG_RECORDS:
		if (!hs_msg_records_dec(b, n, &m.records))
			while (hs_records_next(&m.records, &a, &p, &len))
				walk_run(p, len);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hs_frame f;
	const char *why;
	size_t off = 0;
	ssize_t r;
	uint8_t *copy;

	while ((r = hs_frame_parse(data + off, size - off, 1 << 20, &f, &why)) > 0) {
		decode(f.type, f.body, f.body_len);
		off += (size_t)r;
	}
	walk_run(data, size);

	/* Decode the body of the first "frame" as every type, CRC or not:
	 * an exact-size heap copy so any over-read is caught. */
	if (size >= 2) {
		copy = malloc(size - 2);
		if (!copy)
			return 0;
		memcpy(copy, data + 2, size - 2);
		decode(hs_get16(data) % 40, copy, size - 2);
		free(copy);
	}
	return 0;
}
