/*
 * seeds.c - writes the starting corpus of every fuzz target: a few valid
 * inputs each, made with the real encoders, in the input layout each target
 * documents.  Run by hand after a format change:
 *   clang -g -std=gnu11 -D_GNU_SOURCE -Ilibcore -Ilibtier test/fuzz/seeds.c \
 *     libcore/{crc32c,buf,err,log,frame,run,proto,proto_client,pos,parse}.c \
 *     libtier/{segment,backend,file,s3,webhdfs,http}.c -lsodium -lcurl -lm \
 *     -o /tmp/seeds && /tmp/seeds test/fuzz/corpus
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "err.h"
#include "frame.h"
#include "proto.h"
#include "proto_client.h"
#include "run.h"
#include "segment.h"
#include "wire.h"

static const char *root;
static int nfile;

static void put(const char *target, const void *p, size_t n)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, target);
	mkdir(path, 0777);
	snprintf(path, sizeof(path), "%s/%s/seed-%03d", root, target, nfile++);
	f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f)) {
		perror(path);
		exit(1);
	}
}

/* Store frame b (one whole frame) as target input: prefix byte + body. */
static void put_frame(const char *target, uint8_t prefix, struct hs_buf *b)
{
	struct hs_frame f;
	const char *why;
	struct hs_buf o = HS_BUF_INIT;

	if (hs_frame_parse(b->data, b->len, 0, &f, &why) <= 0) {
		fprintf(stderr, "seeds: bad frame for %s: %s\n", target, why);
		exit(1);
	}
	hs_buf_appendc(&o, prefix);
	hs_buf_append(&o, f.body, f.body_len);
	put(target, o.data, o.len);
	if (!strcmp(target, "fuzz_pmsg"))
		put("fuzz_frame", b->data, b->len);
	hs_buf_free(&o);
	hs_buf_reset(b);
}

static void mkrun(struct hs_buf *b, int n, int empty_copyset)
{
	static const uint32_t cs[] = { 1, 2, 3 };
	struct hs_run_builder rb;
	char rec[32];

	hs_run_begin(&rb, b, 0, empty_copyset ? 0 : 7, empty_copyset ? 0 : 1,
		     empty_copyset ? NULL : cs, empty_copyset ? 0 : 3);
	for (int i = 0; i < n; i++) {
		int len = snprintf(rec, sizeof(rec), "record-%d", i);

		hs_run_add(&rb, 1764151200000ull + i, rec, i % 3 ? (uint32_t)len : 0);
	}
	hs_run_end(&rb);
}

static void cmsg(void)
{
	struct hs_buf b = HS_BUF_INIT, run = HS_BUF_INIT;
	struct hs_msg_wr w;
	struct hs_pos tail = { .kind = HS_POS_TAIL, .offset = -10 };
	struct hs_pos lsn = { .kind = HS_POS_LSN, .lsn = ((uint64_t)3 << 32) | 5 };
	struct hs_stream_attrs at = { .mask = HS_ATTR_ALL, .replication = 3,
				      .durability = HS_DUR_SYNC, .retention_ms = 1000 };
	struct hs_stream_info info = { .log = 9, .attrs = at, .head = 1, .tail = 2,
				       .released = 1, .epoch = 3, .lce = 2, .r = 2, .nn = 3,
				       .nodes = { 1, 2, 3 }, .tier2_segments = 1 };
	struct hs_peer_ent pe = { .node_id = 1, .state = HS_PEER_UP, .flags = HS_PEERF_DATA,
				  .pending_bytes = 10, .connects = 2, .losses = 1,
				  .last_error = -HS_EUNAVAIL, .last_error_ms = 1764151200000,
				  .addr = "unix:/p", .addr_len = 7 };
	struct hs_cstream_ent cs = { .stream = "s1", .stream_len = 2, .state = HS_CSTREAM_ACTIVE,
				     .r = 2, .nn = 3, .epoch = 3, .lce = 2, .released = 7,
				     .tail = 8, .nodes = { 1, 2, 3 } };
	struct hs_sub_info si = { .stream = "s1", .stream_len = 2, .checkpoint = 5 };
	struct hs_appended_ent ae = { -HS_EAGAIN, 0, 0, 10, "busy", 4 };
	struct hs_subcreate_ent sc = { "sub", "s1", 3, 2, lsn, 100, 10 };
	const char *T = "fuzz_cmsg";

	mkrun(&run, 3, 1);
	hs_msg_append_begin(&w, &b, 1);
	hs_msg_append_run(&w, "s1", 2, HS_APPEND_CREATE, run.data, run.len);
	hs_msg_append_run(&w, "other.stream", 12, 0, run.data, run.len);
	hs_msg_wr_end(&w);
	put_frame(T, HS_MSG_APPEND - 64, &b);
	hs_msg_appended_begin(&w, &b, 1);
	hs_msg_appended_add(&w, &ae);
	hs_msg_wr_end(&w);
	put_frame(T, HS_MSG_APPENDED - 64, &b);
	hs_msg_stream_create_begin(&w, &b, 1);
	hs_msg_stream_create_add(&w, "s1", 2, &at);
	hs_msg_wr_end(&w);
	put_frame(T, HS_MSG_STREAM_CREATE - 64, &b);
	hs_msg_stream_info_begin(&w, &b, 1);
	hs_msg_name_add(&w, "s1", 2);
	hs_msg_name_add(&w, "s-2", 3);
	hs_msg_wr_end(&w);
	put_frame(T, HS_MSG_STREAM_INFO - 64, &b);
	hs_msg_stream_trim_begin(&w, &b, 1);
	hs_msg_stream_trim_add(&w, "s1", 2, &tail);
	hs_msg_wr_end(&w);
	put_frame(T, HS_MSG_STREAM_TRIM - 64, &b);
	hs_msg_streams_begin(&w, &b, 1, HS_LIST_MORE);
	hs_msg_streams_add(&w, 0, "s1", 2, &info);
	hs_msg_streams_add(&w, -HS_ENOSTREAM, "s2", 2, NULL);
	hs_msg_wr_end(&w);
	put_frame(T, HS_MSG_STREAMS - 64, &b);
	hs_msg_statuses_begin(&w, &b, 1);
	hs_msg_statuses_add(&w, 0, 7);
	hs_msg_wr_end(&w);
	put_frame(T, HS_MSG_STATUSES - 64, &b);
	hs_msg_deliver_begin(&w, &b, 1, 4);
	hs_msg_deliver_run(&w, ((uint64_t)3 << 32) | 1, run.data, run.len);
	hs_msg_wr_end(&w);
	put_frame(T, HS_MSG_DELIVER - 64, &b);
	hs_msg_read_gap_begin(&w, &b, 1, 4);
	hs_msg_read_gap_add(&w, 5, 9, 1);
	hs_msg_wr_end(&w);
	put_frame(T, HS_MSG_READ_GAP - 64, &b);
	hs_msg_sub_create_begin(&w, &b, 1);
	hs_msg_sub_create_add(&w, &sc);
	hs_msg_wr_end(&w);
	put_frame(T, HS_MSG_SUB_CREATE - 64, &b);
	hs_msg_subs_begin(&w, &b, 1, 0);
	hs_msg_subs_add(&w, 0, "sub", 3, &si);
	hs_msg_wr_end(&w);
	put_frame(T, HS_MSG_SUBS - 64, &b);
	hs_msg_ack_begin(&w, &b, 1, "sub", 3);
	hs_msg_ack_add(&w, 1, 5);
	hs_msg_ack_add(&w, 9, 9);
	hs_msg_wr_end(&w);
	put_frame(T, HS_MSG_ACK - 64, &b);
	hs_msg_admin_statsreply_begin(&w, &b, 1);
	hs_msg_kv_add(&w, "serve", "conns", "3");
	hs_msg_wr_end(&w);
	put_frame(T, HS_MSG_ADMIN_STATSREPLY - 64, &b);
	hs_msg_cluster_statusreply_begin(&w, &b, 1, 77, 1, 3, 1);
	hs_msg_peer_add(&w, &pe);
	hs_msg_cstreams_open(&w);
	hs_msg_cstream_add(&w, &cs);
	hs_msg_wr_end(&w);
	put_frame(T, HS_MSG_CLUSTER_STATUSREPLY - 64, &b);
	{
		struct hs_cread r = { 1, HS_CREAD_FOLLOW, 10, 0, 0, lsn,
				      { .kind = HS_POS_NONE }, "s1", 2 };
		struct hs_subscribe s = { 2, HS_CREAD_GAPS, 5, 5, "sub", 3 };
		struct hs_list_req l = { 10, HS_LIST_INFO, "s", "s1", 1, 2 };
		struct hs_admin_stats a = { HS_STATS_SERVE, "s", 1 };
		struct hs_read_end e = { 1, 0, 99 };

		hs_msg_read_enc(&b, 1, &r);
		put_frame(T, HS_MSG_READ - 64, &b);
		hs_msg_subscribe_enc(&b, 1, &s);
		put_frame(T, HS_MSG_SUBSCRIBE - 64, &b);
		hs_msg_stream_list_enc(&b, 1, &l);
		put_frame(T, HS_MSG_STREAM_LIST - 64, &b);
		hs_msg_admin_stats_enc(&b, 1, &a);
		put_frame(T, HS_MSG_ADMIN_STATS - 64, &b);
		hs_msg_read_end_enc(&b, 1, &e);
		put_frame(T, HS_MSG_READ_END - 64, &b);
	}
	hs_buf_free(&b);
	hs_buf_free(&run);
}

/* Index of type in fuzz_pmsg.c's types[]. */
static uint8_t pidx(uint16_t type)
{
	static const uint16_t types[] = {
		1, 2, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27,
		32, 33, 34, 35, 36, 37, 96, 97, 98, 99, 100, 101, 28,
	};

	for (uint8_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (types[i] == type)
			return i;
	abort();
}

static void pmsg(void)
{
	struct hs_buf b = HS_BUF_INIT, run = HS_BUF_INIT;
	struct hs_msg_wr w;
	struct hs_reg_ballot bal = { 5, 1 };
	struct hs_reg_val val = { 2, { 4, 1 }, (const uint8_t *)"value", 5 };
	struct hs_reg_entry e = { .key = (const uint8_t *)"k1", .key_len = 2, .ballot = bal,
				  .promised = bal, .accepted = { 4, 1 }, .val = val };
	struct hs_sealed sd = { 0, 3, 3, 0, 0, { 0 }, 0 };
	struct hs_hello h = { 1, 1, 42, 1 << 20, 2, 4, (const uint8_t *)"auth" };
	struct hs_start st = { 1, 9, 5, UINT64_MAX, 10, 0, 0 };
	struct hs_gap g = { 1, 5, 9, 1 };
	struct hs_meta me = { 0, 3, 3, 2, 100, 0, 200 };
	struct hs_reg_list rl = { (const uint8_t *)"k", (const uint8_t *)"k1", 1, 2, 10 };
	const char *T = "fuzz_pmsg";

	mkrun(&run, 3, 0);
	hs_msg_hello_enc(&b, 1, &h);
	put_frame(T, pidx(HS_MSG_HELLO), &b);
	hs_msg_result_encf(&b, 1, -HS_EPROTO, "bad %s", "thing");
	put_frame(T, pidx(HS_MSG_RESULT), &b);
	hs_msg_start_enc(&b, 1, &st);
	put_frame(T, pidx(HS_MSG_START), &b);
	hs_msg_gap_enc(&b, 1, &g);
	put_frame(T, pidx(HS_MSG_GAP), &b);
	hs_msg_meta_enc(&b, 1, &me);
	put_frame(T, pidx(HS_MSG_META), &b);
	hs_msg_reg_list_enc(&b, 1, &rl);
	put_frame(T, pidx(HS_MSG_REG_LIST), &b);
	{
		struct hs_clean cl = { 9, 3, 4, ((uint64_t)3 << 32) | 2, ((uint64_t)3 << 32) | 7 };

		hs_msg_clean_enc(&b, 1, &cl);
		put_frame(T, pidx(HS_MSG_CLEAN), &b);
	}
	hs_msg_store_begin(&w, &b, 1);
	hs_msg_store_run(&w, 9, ((uint64_t)3 << 32) | 1, run.data, run.len);
	hs_msg_store_run(&w, 9, ((uint64_t)3 << 32) | 4, run.data, run.len);
	hs_msg_wr_end(&w);
	put_frame(T, pidx(HS_MSG_STORE), &b);
	hs_msg_records_begin(&w, &b, 1, 1, 9);
	hs_msg_records_run(&w, ((uint64_t)3 << 32) | 1, run.data, run.len);
	hs_msg_wr_end(&w);
	put_frame(T, pidx(HS_MSG_RECORDS), &b);
	hs_msg_stored_begin(&w, &b, 1);
	hs_msg_stored_add(&w, 0, 3);
	hs_msg_wr_end(&w);
	put_frame(T, pidx(HS_MSG_STORED), &b);
	hs_msg_sealed_begin(&w, &b, 1, &sd);
	hs_msg_sealed_add(&w, 2, 7, ((uint64_t)2 << 32) | 9);
	hs_msg_wr_end(&w);
	put_frame(T, pidx(HS_MSG_SEALED), &b);
	hs_msg_release_begin(&w, &b, 1);
	hs_msg_release_add(&w, 9, ((uint64_t)3 << 32) | 2);
	hs_msg_wr_end(&w);
	put_frame(T, pidx(HS_MSG_RELEASE), &b);
	hs_msg_reg_prepare_begin(&w, &b, 1);
	hs_msg_reg_prepare_add(&w, "k1", 2, &bal);
	hs_msg_wr_end(&w);
	put_frame(T, pidx(HS_MSG_REG_PREPARE), &b);
	hs_msg_reg_promise_begin(&w, &b, 1);
	hs_msg_reg_promise_add(&w, &e);
	hs_msg_wr_end(&w);
	put_frame(T, pidx(HS_MSG_REG_PROMISE), &b);
	hs_msg_reg_accept_begin(&w, &b, 1);
	hs_msg_reg_accept_add(&w, "k1", 2, &bal, &val);
	hs_msg_wr_end(&w);
	put_frame(T, pidx(HS_MSG_REG_ACCEPT), &b);
	hs_msg_reg_accepted_begin(&w, &b, 1);
	hs_msg_reg_accepted_add(&w, "k1", 2, &bal, 0, &bal);
	hs_msg_wr_end(&w);
	put_frame(T, pidx(HS_MSG_REG_ACCEPTED), &b);
	hs_msg_reg_listed_begin(&w, &b, 1, 0);
	hs_msg_reg_listed_add(&w, &e);
	hs_msg_reg_listed_more(&w, 1);
	hs_msg_wr_end(&w);
	put_frame(T, pidx(HS_MSG_REG_LISTED), &b);

	/* runs: slice selector bytes, then the run */
	for (int n = 1; n <= 4; n += 3) {
		hs_buf_reset(&b);
		hs_buf_appendc(&b, 1);
		hs_buf_appendc(&b, 2);
		mkrun(&b, n, n == 1);
		put("fuzz_run", b.data, b.len);
	}
	hs_buf_free(&b);
	hs_buf_free(&run);
}

static void text(void)
{
#define S(x) { x, sizeof(x) - 1 }
	static const struct { const char *p; size_t n; } fmt[] = {
		/* format, max, delim, chunk seed, input */
		S("\x00\x00\n\x07" "a\nbb\n\nccc"),
		S("\x00\x05\x00\x03" "short\0toolongrecord\0x"),
		S("\x01\x00\n\x01" "whole input\n"),
		S("\x02\x00\n\x05" "5:hello,0:,3:abc,"),
		S("\x02\x04\n\x09" "3:abc,10:0123456789,"),
		S("\x03\x00\n\x0b" "{\"stream\":\"s\",\"lsn\":\"e3n5\",\"ts\":1764151200000,\"data\":\"h\\u00e9\\n\"}\n"
		  "{\"data_b64\":\"AAEC\"}\n\n{\"gap\":\"HOLE\",\"lo\":\"e3n5\",\"hi\":\"e3n9\"}\n"),
		S("\x03\x08\n\x02" "{\"data\":\"\\ud83d\\ude00 x\",\"ts\":5}\n{\"data\":\"0123456789\"}\n"),
	};
#undef S
	static const char *pos[] = {
		"e3n1207", "12884903095", "head", "head+10", "tail", "tail-100",
		"@2026-11-26T10:00:00Z", "@2026-11-26t10:00:00.123+02:30",
		"@1764151200000", "@-1h", "@+0s", "e3n5..e3n9", "head..tail-1",
		"..", "e3n5..", "..@-30m", "@2026-02-29T00:00:00Z",
	};

	for (size_t i = 0; i < sizeof(fmt) / sizeof(fmt[0]); i++)
		put("fuzz_fmt", fmt[i].p, fmt[i].n);
	for (size_t i = 0; i < sizeof(pos) / sizeof(pos[0]); i++)
		put("fuzz_pos", pos[i], strlen(pos[i]));
}

/* A real segment through the file backend; mode 0 gets the object, mode 1
 * the plaintext of its blocks. */
static void seg(void)
{
	char dir[] = "/tmp/hs-seeds-XXXXXX", url[64], path[128];
	struct hs_seg_wopts o = { .block_size = 4096 };
	struct hs_tier *t;
	struct hs_seg_writer *w;
	struct hs_seg *s;
	struct hs_buf b = HS_BUF_INIT, plain = HS_BUF_INIT;
	uint8_t payload[300];
	uint64_t lsn = ((uint64_t)3 << 32) + 1;
	FILE *f;
	long n;

	memset(payload, 'p', sizeof(payload));
	if (!mkdtemp(dir))
		abort();
	snprintf(url, sizeof(url), "file://%s", dir);
	if (hs_tier_open(url, NULL, &t) || hs_seg_writer_open(t, "seg", &o, &w))
		abort();
	for (int i = 0; i < 40; i++, lsn++) {
		if (i % 9 == 8) {
			hs_seg_add_gap(w, lsn, lsn + 2, 1 + i % 4);
			lsn += 2;
			continue;
		}
		hs_seg_add_record(w, lsn, 1764151200000ull + i * 7, payload,
				  (size_t)i * 37 % sizeof(payload));
	}
	if (hs_seg_finish(w, NULL) || hs_seg_open(t, "seg", NULL, &s))
		abort();
	snprintf(path, sizeof(path), "%s/seg", dir);
	f = fopen(path, "rb");
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	hs_buf_appendc(&b, 0);
	if (fread(hs_buf_reserve(&b, n), 1, n, f) != (size_t)n)
		abort();
	b.len += n;
	fclose(f);
	put("fuzz_seg", b.data, b.len);
	for (uint32_t i = 0; i < 2; i++) {
		if (hs_seg_fetch_block(s, i, &plain))
			abort();
		hs_buf_reset(&b);
		hs_buf_appendc(&b, 1);
		hs_buf_appendc(&b, (uint8_t)i);
		hs_buf_append(&b, plain.data, plain.len);
		put("fuzz_seg", b.data, b.len);
	}
	hs_seg_close(s);
	hs_tier_delete(t, "seg");
	hs_tier_close(t);
	rmdir(dir);
	hs_buf_free(&b);
	hs_buf_free(&plain);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: seeds CORPUS-DIR\n");
		return 64;
	}
	root = argv[1];
	mkdir(root, 0777);
	cmsg();
	pmsg();
	text();
	seg();
	return 0;
}
