/*
 * proto.c - encoders and decoders of the message bodies specified in
 * proto.h.
 *
 * Decoders read through struct hs_rd, which turns any underflow into
 * -HS_EPROTO, and finish with done(), which also refuses leftover bytes: a
 * body of the wrong size means the two sides disagree about the format, and
 * silently ignoring the excess would hide that.  List decoders walk the
 * whole list once before returning so a count that the body cannot hold is
 * refused up front, and the _next() functions need no checks.
 */
#include <stdarg.h>
#include <stdio.h>

#include "err.h"
#include "frame.h"
#include "proto.h"
#include "proto_client.h"
#include "wire.h"

/* ---- fixed-layout messages ---------------------------------------------- */

void hs_msg_hello_enc(struct hs_buf *b, uint64_t id, const struct hs_hello *m)
{
	size_t f = hs_frame_begin(b, HS_MSG_HELLO, 0, id);

	hs_w16(b, m->version);
	hs_w8(b, m->role);
	hs_w8(b, 0);
	hs_w64(b, m->cluster_id);
	hs_w32(b, m->max_frame);
	hs_w32(b, m->node_id);
	hs_w16(b, m->auth_len);
	hs_wbytes(b, m->auth, m->auth_len);
	hs_frame_end(b, f);
}

int hs_msg_hello_dec(const uint8_t *body, size_t len, struct hs_hello *m)
{
	struct hs_rd r;

	hs_rd_init(&r, body, len);
	m->version = hs_r16(&r);
	m->role = hs_r8(&r);
	hs_r8(&r);
	m->cluster_id = hs_r64(&r);
	m->max_frame = hs_r32(&r);
	m->node_id = hs_r32(&r);
	m->auth_len = hs_r16(&r);
	m->auth = hs_rd_take(&r, m->auth_len);
	/* Trailing bytes are allowed: a later version may extend HELLO, and
	 * the version check must still get to see its version. */
	return r.err;
}

void hs_msg_result_enc(struct hs_buf *b, uint64_t id, const struct hs_result *m)
{
	size_t f = hs_frame_begin(b, HS_MSG_RESULT, 0, id);

	hs_w32(b, (uint32_t)m->status);
	hs_w16(b, m->msg_len);
	hs_wbytes(b, m->msg, m->msg_len);
	hs_frame_end(b, f);
}

void hs_msg_result_encf(struct hs_buf *b, uint64_t id, int32_t status, const char *fmt, ...)
{
	size_t f = hs_frame_begin(b, HS_MSG_RESULT, 0, id), at;
	va_list ap;
	int n;

	hs_w32(b, (uint32_t)status);
	at = b->len;
	hs_w16(b, 0);
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if (n > UINT16_MAX)
		n = UINT16_MAX;
	/* vsnprintf writes a NUL after the text: reserve it, then drop it. */
	hs_buf_reserve(b, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	hs_put16(b->data + at, (uint16_t)n);
	hs_frame_end(b, f);
}

int hs_msg_result_dec(const uint8_t *body, size_t len, struct hs_result *m)
{
	struct hs_rd r;

	hs_rd_init(&r, body, len);
	m->status = (int32_t)hs_r32(&r);
	m->msg_len = hs_r16(&r);
	m->msg = (const char *)hs_rd_take(&r, m->msg_len);
	return hs_rd_done(&r);
}

void hs_msg_seal_enc(struct hs_buf *b, uint64_t id, const struct hs_seal *m)
{
	size_t f = hs_frame_begin(b, HS_MSG_SEAL, 0, id);

	hs_w64(b, m->log);
	hs_w32(b, m->epoch);
	hs_w8(b, m->soft);
	hs_w32(b, m->lce);
	hs_frame_end(b, f);
}

int hs_msg_seal_dec(const uint8_t *body, size_t len, struct hs_seal *m)
{
	struct hs_rd r;

	hs_rd_init(&r, body, len);
	m->log = hs_r64(&r);
	m->epoch = hs_r32(&r);
	m->soft = hs_r8(&r);
	m->lce = hs_r32(&r);
	if (m->soft > 1)
		return -HS_EPROTO;
	return hs_rd_done(&r);
}

void hs_msg_clean_enc(struct hs_buf *b, uint64_t id, const struct hs_clean *m)
{
	size_t f = hs_frame_begin(b, HS_MSG_CLEAN, 0, id);

	hs_w64(b, m->log);
	hs_w32(b, m->epoch);
	hs_w32(b, m->ballot);
	hs_w64(b, m->lng);
	hs_w64(b, m->end);
	hs_frame_end(b, f);
}

int hs_msg_clean_dec(const uint8_t *body, size_t len, struct hs_clean *m)
{
	struct hs_rd r;
	int rc;

	hs_rd_init(&r, body, len);
	m->log = hs_r64(&r);
	m->epoch = hs_r32(&r);
	m->ballot = hs_r32(&r);
	m->lng = hs_r64(&r);
	m->end = hs_r64(&r);
	rc = hs_rd_done(&r);
	if (rc)
		return rc;
	if (!m->epoch || m->end < m->lng ||
	    (m->lng && HS_LSN_EPOCH(m->lng) != m->epoch) ||
	    (m->end && HS_LSN_EPOCH(m->end) != m->epoch))
		return -HS_EPROTO;
	return 0;
}

void hs_msg_trim_enc(struct hs_buf *b, uint64_t id, const struct hs_trim *m)
{
	size_t f = hs_frame_begin(b, HS_MSG_TRIM, 0, id);

	hs_w64(b, m->log);
	hs_w64(b, m->trim);
	hs_frame_end(b, f);
}

int hs_msg_trim_dec(const uint8_t *body, size_t len, struct hs_trim *m)
{
	struct hs_rd r;

	hs_rd_init(&r, body, len);
	m->log = hs_r64(&r);
	m->trim = hs_r64(&r);
	return hs_rd_done(&r);
}

void hs_msg_getmeta_enc(struct hs_buf *b, uint64_t id, const struct hs_getmeta *m)
{
	size_t f = hs_frame_begin(b, HS_MSG_GETMETA, 0, id);

	hs_w64(b, m->log);
	hs_frame_end(b, f);
}

int hs_msg_getmeta_dec(const uint8_t *body, size_t len, struct hs_getmeta *m)
{
	struct hs_rd r;

	hs_rd_init(&r, body, len);
	m->log = hs_r64(&r);
	return hs_rd_done(&r);
}

void hs_msg_meta_enc(struct hs_buf *b, uint64_t id, const struct hs_meta *m)
{
	size_t f = hs_frame_begin(b, HS_MSG_META, 0, id);

	hs_w32(b, (uint32_t)m->status);
	hs_w32(b, m->seal);
	hs_w32(b, m->soft_seal);
	hs_w32(b, m->lce);
	hs_w64(b, m->released);
	hs_w64(b, m->trim);
	hs_w64(b, m->max_lsn);
	hs_frame_end(b, f);
}

int hs_msg_meta_dec(const uint8_t *body, size_t len, struct hs_meta *m)
{
	struct hs_rd r;

	hs_rd_init(&r, body, len);
	m->status = (int32_t)hs_r32(&r);
	m->seal = hs_r32(&r);
	m->soft_seal = hs_r32(&r);
	m->lce = hs_r32(&r);
	m->released = hs_r64(&r);
	m->trim = hs_r64(&r);
	m->max_lsn = hs_r64(&r);
	return hs_rd_done(&r);
}

void hs_msg_stats_enc(struct hs_buf *b, uint64_t id)
{
	hs_frame_end(b, hs_frame_begin(b, HS_MSG_STATS, 0, id));
}

int hs_msg_stats_dec(const uint8_t *body, size_t len)
{
	return len ? -HS_EPROTO : 0;
}

void hs_msg_statsreply_enc(struct hs_buf *b, uint64_t id, const char *text, size_t len)
{
	size_t f = hs_frame_begin(b, HS_MSG_STATSREPLY, 0, id);

	hs_wbytes(b, text, len);
	hs_frame_end(b, f);
}

int hs_msg_statsreply_dec(const uint8_t *body, size_t len, struct hs_statsreply *m)
{
	m->text = (const char *)body;
	m->len = len;
	return 0;
}

void hs_msg_start_enc(struct hs_buf *b, uint64_t id, const struct hs_start *m)
{
	size_t f = hs_frame_begin(b, HS_MSG_START, 0, id);

	hs_w32(b, m->stream);
	hs_w64(b, m->log);
	hs_w64(b, m->from);
	hs_w64(b, m->until);
	hs_w32(b, m->win_records);
	hs_w32(b, m->win_bytes);
	hs_w32(b, m->flags);
	hs_frame_end(b, f);
}

int hs_msg_start_dec(const uint8_t *body, size_t len, struct hs_start *m)
{
	struct hs_rd r;

	hs_rd_init(&r, body, len);
	m->stream = hs_r32(&r);
	m->log = hs_r64(&r);
	m->from = hs_r64(&r);
	m->until = hs_r64(&r);
	m->win_records = hs_r32(&r);
	m->win_bytes = hs_r32(&r);
	m->flags = hs_r32(&r);
	return hs_rd_done(&r);
}

void hs_msg_gap_enc(struct hs_buf *b, uint64_t id, const struct hs_gap *m)
{
	size_t f = hs_frame_begin(b, HS_MSG_GAP, 0, id);

	hs_w32(b, m->stream);
	hs_w64(b, m->lo);
	hs_w64(b, m->hi);
	hs_w8(b, m->reason);
	hs_frame_end(b, f);
}

int hs_msg_gap_dec(const uint8_t *body, size_t len, struct hs_gap *m)
{
	struct hs_rd r;

	hs_rd_init(&r, body, len);
	m->stream = hs_r32(&r);
	m->lo = hs_r64(&r);
	m->hi = hs_r64(&r);
	m->reason = hs_r8(&r);
	if (!r.err && (m->reason < HS_GAP_TRIM || m->reason > HS_GAP_CHECKSUM || m->lo > m->hi))
		return -HS_EPROTO;
	return hs_rd_done(&r);
}

void hs_msg_window_enc(struct hs_buf *b, uint64_t id, const struct hs_window *m)
{
	size_t f = hs_frame_begin(b, HS_MSG_WINDOW, 0, id);

	hs_w32(b, m->stream);
	hs_w32(b, m->add_records);
	hs_w32(b, m->add_bytes);
	hs_frame_end(b, f);
}

int hs_msg_window_dec(const uint8_t *body, size_t len, struct hs_window *m)
{
	struct hs_rd r;

	hs_rd_init(&r, body, len);
	m->stream = hs_r32(&r);
	m->add_records = hs_r32(&r);
	m->add_bytes = hs_r32(&r);
	return hs_rd_done(&r);
}

void hs_msg_stop_enc(struct hs_buf *b, uint64_t id, const struct hs_stop *m)
{
	size_t f = hs_frame_begin(b, HS_MSG_STOP, 0, id);

	hs_w32(b, m->stream);
	hs_frame_end(b, f);
}

int hs_msg_stop_dec(const uint8_t *body, size_t len, struct hs_stop *m)
{
	struct hs_rd r;

	hs_rd_init(&r, body, len);
	m->stream = hs_r32(&r);
	return hs_rd_done(&r);
}

void hs_msg_end_enc(struct hs_buf *b, uint64_t id, const struct hs_end *m)
{
	size_t f = hs_frame_begin(b, HS_MSG_END, 0, id);

	hs_w32(b, m->stream);
	hs_w32(b, (uint32_t)m->status);
	hs_frame_end(b, f);
}

int hs_msg_end_dec(const uint8_t *body, size_t len, struct hs_end *m)
{
	struct hs_rd r;

	hs_rd_init(&r, body, len);
	m->stream = hs_r32(&r);
	m->status = (int32_t)hs_r32(&r);
	return hs_rd_done(&r);
}

/* ---- list writer ------------------------------------------------------- */

void hs_msg_wr_begin(struct hs_msg_wr *w, struct hs_buf *b, uint16_t type, uint64_t id)
{
	w->b = b;
	w->start = hs_frame_begin(b, type, 0, id);
	w->count_off = 0;
	w->run_off = 0;
	w->n = 0;
}

/* The count goes where the list starts, after any fixed fields. */
void hs_msg_wr_count(struct hs_msg_wr *w)
{
	w->count_off = w->b->len;
	hs_w32(w->b, 0);
}

size_t hs_msg_wr_size(const struct hs_msg_wr *w)
{
	return w->b->len - w->start + 4;
}

size_t hs_msg_wr_end(struct hs_msg_wr *w)
{
	hs_put32(w->b->data + w->count_off, w->n);
	hs_frame_end(w->b, w->start);
	return w->b->len - w->start;
}

void hs_msg_wr_run_close(struct hs_msg_wr *w)
{
	size_t len = w->b->len - w->run_off - 4;

	hs_put32(w->b->data + w->run_off, (uint32_t)len);
}

void hs_msg_store_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id)
{
	hs_msg_wr_begin(w, b, HS_MSG_STORE, id);
	hs_msg_wr_count(w);
}

void hs_msg_store_run_open(struct hs_msg_wr *w, uint64_t log, uint64_t first_lsn)
{
	hs_w64(w->b, log);
	hs_w64(w->b, first_lsn);
	w->run_off = w->b->len;
	hs_w32(w->b, 0);
	w->n++;
}

void hs_msg_store_run(struct hs_msg_wr *w, uint64_t log, uint64_t first_lsn, const void *run,
		      size_t len)
{
	hs_msg_store_run_open(w, log, first_lsn);
	hs_wbytes(w->b, run, len);
	hs_msg_wr_run_close(w);
}

void hs_msg_stored_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id)
{
	hs_msg_wr_begin(w, b, HS_MSG_STORED, id);
	hs_msg_wr_count(w);
}

void hs_msg_stored_add(struct hs_msg_wr *w, int32_t status, uint32_t seal)
{
	hs_w32(w->b, (uint32_t)status);
	hs_w32(w->b, seal);
	w->n++;
}

void hs_msg_sealed_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id,
			 const struct hs_sealed *m)
{
	hs_msg_wr_begin(w, b, HS_MSG_SEALED, id);
	hs_w32(b, (uint32_t)m->status);
	hs_w32(b, m->seal);
	hs_w32(b, m->soft_seal);
	hs_w64(b, m->trim);
	hs_msg_wr_count(w);
}

void hs_msg_sealed_add(struct hs_msg_wr *w, uint32_t epoch, uint64_t lng, uint64_t max_lsn)
{
	hs_w32(w->b, epoch);
	hs_w64(w->b, lng);
	hs_w64(w->b, max_lsn);
	w->n++;
}

void hs_msg_release_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id)
{
	hs_msg_wr_begin(w, b, HS_MSG_RELEASE, id);
	hs_msg_wr_count(w);
}

void hs_msg_release_add(struct hs_msg_wr *w, uint64_t log, uint64_t lsn)
{
	hs_w64(w->b, log);
	hs_w64(w->b, lsn);
	w->n++;
}

void hs_msg_records_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id, uint32_t stream,
			  uint64_t log)
{
	hs_msg_wr_begin(w, b, HS_MSG_RECORDS, id);
	hs_w32(b, stream);
	hs_w64(b, log);
	hs_msg_wr_count(w);
}

void hs_msg_records_run_open(struct hs_msg_wr *w, uint64_t first_lsn)
{
	hs_w64(w->b, first_lsn);
	w->run_off = w->b->len;
	hs_w32(w->b, 0);
	w->n++;
}

void hs_msg_records_run(struct hs_msg_wr *w, uint64_t first_lsn, const void *run, size_t len)
{
	hs_msg_records_run_open(w, first_lsn);
	hs_wbytes(w->b, run, len);
	hs_msg_wr_run_close(w);
}

/* ---- list decoders ----------------------------------------------------- */

/*
 * Check that the n entries at r's position fill the rest of the body
 * exactly.  Each entry is fixed bytes followed, if with_run, by a u32 length
 * and that many bytes.  r itself is not moved.
 */
static int walk(const struct hs_rd *r, uint32_t n, size_t fixed, int with_run)
{
	struct hs_rd w = *r;

	if (w.err)
		return w.err;
	/* Cheap bound first, so a huge count costs nothing. */
	if (n > hs_rd_left(&w) / (fixed + (with_run ? 4 : 0)))
		return -HS_EPROTO;
	for (uint32_t i = 0; i < n; i++) {
		hs_rd_take(&w, fixed);
		if (with_run)
			hs_rd_take(&w, hs_r32(&w));
		if (w.err)
			return w.err;
	}
	return hs_rd_done(&w);
}

int hs_msg_store_dec(const uint8_t *body, size_t len, struct hs_store_rd *rd)
{
	hs_rd_init(&rd->rd, body, len);
	rd->nruns = rd->left = hs_r32(&rd->rd);
	return walk(&rd->rd, rd->nruns, 16, 1);
}

int hs_store_next(struct hs_store_rd *rd, uint64_t *log, uint64_t *first_lsn,
		  const uint8_t **run, size_t *len)
{
	uint32_t l;

	if (!rd->left)
		return 0;
	rd->left--;
	*log = hs_r64(&rd->rd);
	*first_lsn = hs_r64(&rd->rd);
	l = hs_r32(&rd->rd);
	*run = hs_rd_take(&rd->rd, l);
	*len = l;
	return 1;
}

int hs_msg_stored_dec(const uint8_t *body, size_t len, struct hs_stored_rd *rd)
{
	hs_rd_init(&rd->rd, body, len);
	rd->nruns = rd->left = hs_r32(&rd->rd);
	return walk(&rd->rd, rd->nruns, 8, 0);
}

int hs_stored_next(struct hs_stored_rd *rd, int32_t *status, uint32_t *seal)
{
	if (!rd->left)
		return 0;
	rd->left--;
	*status = (int32_t)hs_r32(&rd->rd);
	*seal = hs_r32(&rd->rd);
	return 1;
}

int hs_msg_sealed_dec(const uint8_t *body, size_t len, struct hs_sealed *m)
{
	hs_rd_init(&m->rd, body, len);
	m->status = (int32_t)hs_r32(&m->rd);
	m->seal = hs_r32(&m->rd);
	m->soft_seal = hs_r32(&m->rd);
	m->trim = hs_r64(&m->rd);
	m->nepochs = m->left = hs_r32(&m->rd);
	return walk(&m->rd, m->nepochs, 20, 0);
}

int hs_sealed_next(struct hs_sealed *m, uint32_t *epoch, uint64_t *lng, uint64_t *max_lsn)
{
	if (!m->left)
		return 0;
	m->left--;
	*epoch = hs_r32(&m->rd);
	*lng = hs_r64(&m->rd);
	*max_lsn = hs_r64(&m->rd);
	return 1;
}

int hs_msg_release_dec(const uint8_t *body, size_t len, struct hs_release_rd *rd)
{
	hs_rd_init(&rd->rd, body, len);
	rd->n = rd->left = hs_r32(&rd->rd);
	return walk(&rd->rd, rd->n, 16, 0);
}

int hs_release_next(struct hs_release_rd *rd, uint64_t *log, uint64_t *lsn)
{
	if (!rd->left)
		return 0;
	rd->left--;
	*log = hs_r64(&rd->rd);
	*lsn = hs_r64(&rd->rd);
	return 1;
}

int hs_msg_records_dec(const uint8_t *body, size_t len, struct hs_records *m)
{
	hs_rd_init(&m->rd, body, len);
	m->stream = hs_r32(&m->rd);
	m->log = hs_r64(&m->rd);
	m->nruns = m->left = hs_r32(&m->rd);
	return walk(&m->rd, m->nruns, 8, 1);
}

int hs_records_next(struct hs_records *m, uint64_t *first_lsn, const uint8_t **run, size_t *len)
{
	uint32_t l;

	if (!m->left)
		return 0;
	m->left--;
	*first_lsn = hs_r64(&m->rd);
	l = hs_r32(&m->rd);
	*run = hs_rd_take(&m->rd, l);
	*len = l;
	return 1;
}

/* ---- names ------------------------------------------------------------- */

const char *hs_msg_name(uint16_t type)
{
	switch (type) {
	case HS_MSG_HELLO: return "HELLO";
	case HS_MSG_RESULT: return "RESULT";
	case HS_MSG_STORE: return "STORE";
	case HS_MSG_STORED: return "STORED";
	case HS_MSG_SEAL: return "SEAL";
	case HS_MSG_SEALED: return "SEALED";
	case HS_MSG_RELEASE: return "RELEASE";
	case HS_MSG_TRIM: return "TRIM";
	case HS_MSG_GETMETA: return "GETMETA";
	case HS_MSG_META: return "META";
	case HS_MSG_STATS: return "STATS";
	case HS_MSG_STATSREPLY: return "STATSREPLY";
	case HS_MSG_START: return "START";
	case HS_MSG_RECORDS: return "RECORDS";
	case HS_MSG_GAP: return "GAP";
	case HS_MSG_WINDOW: return "WINDOW";
	case HS_MSG_STOP: return "STOP";
	case HS_MSG_END: return "END";
	case HS_MSG_REG_PREPARE: return "REG_PREPARE";
	case HS_MSG_REG_PROMISE: return "REG_PROMISE";
	case HS_MSG_REG_ACCEPT: return "REG_ACCEPT";
	case HS_MSG_REG_ACCEPTED: return "REG_ACCEPTED";
	case HS_MSG_LOCATE: return "LOCATE";
	case HS_MSG_LOCATED: return "LOCATED";
	case HS_MSG_CLEAN: return "CLEAN";
	case HS_MSG_REG_LIST: return "REG_LIST";
	case HS_MSG_REG_LISTED: return "REG_LISTED";
	}
	return hs_msg_client_name(type); /* 64..95, proto_client.h */
}

bool hs_msg_known(uint16_t type)
{
	return hs_msg_name(type)[0] != '?';
}

/* ---- metadata registers ------------------------------------------------ */

static void w_ballot(struct hs_buf *b, const struct hs_reg_ballot *x)
{
	hs_w64(b, x->counter);
	hs_w32(b, x->proposer);
}

static void r_ballot(struct hs_rd *r, struct hs_reg_ballot *x)
{
	x->counter = hs_r64(r);
	x->proposer = hs_r32(r);
}

static void w_key(struct hs_buf *b, const void *key, uint8_t key_len)
{
	hs_w8(b, key_len);
	hs_wbytes(b, key, key_len);
}

static void w_val(struct hs_buf *b, const struct hs_reg_val *v)
{
	hs_w64(b, v->version);
	w_ballot(b, &v->tag);
	hs_w32(b, v->len);
	hs_wbytes(b, v->data, v->len);
}

void hs_msg_reg_prepare_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id)
{
	hs_msg_wr_begin(w, b, HS_MSG_REG_PREPARE, id);
	hs_msg_wr_count(w);
}

void hs_msg_reg_prepare_add(struct hs_msg_wr *w, const void *key, uint8_t key_len,
			    const struct hs_reg_ballot *ballot)
{
	w_key(w->b, key, key_len);
	w_ballot(w->b, ballot);
	w->n++;
}

void hs_msg_reg_promise_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id)
{
	hs_msg_wr_begin(w, b, HS_MSG_REG_PROMISE, id);
	hs_msg_wr_count(w);
}

void hs_msg_reg_promise_add(struct hs_msg_wr *w, const struct hs_reg_entry *e)
{
	w_key(w->b, e->key, e->key_len);
	w_ballot(w->b, &e->ballot);
	hs_w32(w->b, (uint32_t)e->status);
	w_ballot(w->b, &e->promised);
	w_ballot(w->b, &e->accepted);
	w_val(w->b, &e->val);
	w->n++;
}

void hs_msg_reg_accept_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id)
{
	hs_msg_wr_begin(w, b, HS_MSG_REG_ACCEPT, id);
	hs_msg_wr_count(w);
}

void hs_msg_reg_accept_add(struct hs_msg_wr *w, const void *key, uint8_t key_len,
			   const struct hs_reg_ballot *ballot, const struct hs_reg_val *val)
{
	w_key(w->b, key, key_len);
	w_ballot(w->b, ballot);
	w_val(w->b, val);
	w->n++;
}

void hs_msg_reg_accepted_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id)
{
	hs_msg_wr_begin(w, b, HS_MSG_REG_ACCEPTED, id);
	hs_msg_wr_count(w);
}

void hs_msg_reg_accepted_add(struct hs_msg_wr *w, const void *key, uint8_t key_len,
			     const struct hs_reg_ballot *ballot, int32_t status,
			     const struct hs_reg_ballot *promised)
{
	w_key(w->b, key, key_len);
	w_ballot(w->b, ballot);
	hs_w32(w->b, (uint32_t)status);
	w_ballot(w->b, promised);
	w->n++;
}

/* Read one entry of rd's type at r (fields the type lacks are zeroed).
 * Returns r->err, or -HS_EPROTO for an empty key, a zero proposal ballot or
 * a value over HS_REG_VALUE_MAX. */
static int reg_entry(struct hs_rd *r, uint16_t type, struct hs_reg_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->key_len = hs_r8(r);
	e->key = hs_rd_take(r, e->key_len);
	r_ballot(r, &e->ballot);
	if (type == HS_MSG_REG_PROMISE || type == HS_MSG_REG_ACCEPTED) {
		e->status = (int32_t)hs_r32(r);
		r_ballot(r, &e->promised);
	}
	if (type == HS_MSG_REG_PROMISE)
		r_ballot(r, &e->accepted);
	if (type == HS_MSG_REG_PROMISE || type == HS_MSG_REG_ACCEPT) {
		e->val.version = hs_r64(r);
		r_ballot(r, &e->val.tag);
		e->val.len = hs_r32(r);
		if (e->val.len > HS_REG_VALUE_MAX)
			return -HS_EPROTO;
		e->val.data = hs_rd_take(r, e->val.len);
	}
	if (r->err)
		return r->err;
	return e->key_len && e->ballot.counter ? 0 : -HS_EPROTO;
}

int hs_msg_reg_dec(uint16_t type, const uint8_t *body, size_t len, struct hs_reg_rd *rd)
{
	/* Smallest entry: key_len, one key byte, a ballot. */
	static const size_t min_entry = 1 + 1 + 12;
	struct hs_reg_entry e;
	struct hs_rd w;

	if (type < HS_MSG_REG_PREPARE || type > HS_MSG_REG_ACCEPTED)
		return -HS_EPROTO;
	rd->type = type;
	hs_rd_init(&rd->rd, body, len);
	rd->n = rd->left = hs_r32(&rd->rd);
	if (rd->rd.err || rd->n > hs_rd_left(&rd->rd) / min_entry)
		return -HS_EPROTO;
	w = rd->rd;
	for (uint32_t i = 0; i < rd->n; i++) {
		int rc = reg_entry(&w, type, &e);

		if (rc)
			return rc;
	}
	return hs_rd_done(&w);
}

int hs_msg_reg_prepare_dec(const uint8_t *body, size_t len, struct hs_reg_rd *rd)
{
	return hs_msg_reg_dec(HS_MSG_REG_PREPARE, body, len, rd);
}

int hs_msg_reg_promise_dec(const uint8_t *body, size_t len, struct hs_reg_rd *rd)
{
	return hs_msg_reg_dec(HS_MSG_REG_PROMISE, body, len, rd);
}

int hs_msg_reg_accept_dec(const uint8_t *body, size_t len, struct hs_reg_rd *rd)
{
	return hs_msg_reg_dec(HS_MSG_REG_ACCEPT, body, len, rd);
}

int hs_msg_reg_accepted_dec(const uint8_t *body, size_t len, struct hs_reg_rd *rd)
{
	return hs_msg_reg_dec(HS_MSG_REG_ACCEPTED, body, len, rd);
}

int hs_reg_next(struct hs_reg_rd *rd, struct hs_reg_entry *e)
{
	if (!rd->left)
		return 0;
	rd->left--;
	reg_entry(&rd->rd, rd->type, e);
	return 1;
}

/* ---- LOCATE and REG_LIST ------------------------------------------------- */

void hs_msg_locate_enc(struct hs_buf *b, uint64_t id, const struct hs_locate *m)
{
	size_t st = hs_frame_begin(b, HS_MSG_LOCATE, 0, id);

	hs_w64(b, m->log);
	hs_w64(b, m->from);
	hs_w64(b, m->until);
	hs_w64(b, m->time_ms);
	hs_frame_end(b, st);
}

int hs_msg_locate_dec(const uint8_t *body, size_t len, struct hs_locate *m)
{
	struct hs_rd r;

	hs_rd_init(&r, body, len);
	m->log = hs_r64(&r);
	m->from = hs_r64(&r);
	m->until = hs_r64(&r);
	m->time_ms = hs_r64(&r);
	return hs_rd_done(&r);
}

void hs_msg_located_enc(struct hs_buf *b, uint64_t id, const struct hs_located *m)
{
	size_t st = hs_frame_begin(b, HS_MSG_LOCATED, 0, id);

	hs_w32(b, (uint32_t)m->status);
	hs_w64(b, m->lsn);
	hs_frame_end(b, st);
}

int hs_msg_located_dec(const uint8_t *body, size_t len, struct hs_located *m)
{
	struct hs_rd r;

	hs_rd_init(&r, body, len);
	m->status = (int32_t)hs_r32(&r);
	m->lsn = hs_r64(&r);
	if (!r.err && m->status > 0)
		return -HS_EPROTO;
	return hs_rd_done(&r);
}

void hs_msg_reg_list_enc(struct hs_buf *b, uint64_t id, const struct hs_reg_list *m)
{
	size_t st = hs_frame_begin(b, HS_MSG_REG_LIST, 0, id);

	hs_w8(b, m->prefix_len);
	hs_wbytes(b, m->prefix, m->prefix_len);
	hs_w8(b, m->after_len);
	hs_wbytes(b, m->after, m->after_len);
	hs_w32(b, m->max);
	hs_frame_end(b, st);
}

int hs_msg_reg_list_dec(const uint8_t *body, size_t len, struct hs_reg_list *m)
{
	struct hs_rd r;

	hs_rd_init(&r, body, len);
	m->prefix_len = hs_r8(&r);
	m->prefix = hs_rd_take(&r, m->prefix_len);
	m->after_len = hs_r8(&r);
	m->after = hs_rd_take(&r, m->after_len);
	m->max = hs_r32(&r);
	if (!r.err && (!m->max || m->max > HS_REG_LIST_MAX))
		return -HS_EPROTO;
	return hs_rd_done(&r);
}

void hs_msg_reg_listed_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id, int32_t status)
{
	hs_msg_wr_begin(w, b, HS_MSG_REG_LISTED, id);
	hs_w32(b, (uint32_t)status);
	hs_w8(b, 0);
	hs_msg_wr_count(w);
}

void hs_msg_reg_listed_more(struct hs_msg_wr *w, uint8_t more)
{
	/* The byte right before the u32 count. */
	w->b->data[w->count_off - 1] = more ? 1 : 0;
}

void hs_msg_reg_listed_add(struct hs_msg_wr *w, const struct hs_reg_entry *e)
{
	w_key(w->b, e->key, e->key_len);
	w_ballot(w->b, &e->accepted);
	w_val(w->b, &e->val);
	w->n++;
}

int hs_msg_reg_listed_dec(const uint8_t *body, size_t len, struct hs_reg_listed *m)
{
	struct hs_rd chk;

	hs_rd_init(&m->rd, body, len);
	m->status = (int32_t)hs_r32(&m->rd);
	m->more = hs_r8(&m->rd);
	m->n = m->left = hs_r32(&m->rd);
	if (m->rd.err || m->status > 0 || m->more > 1)
		return -HS_EPROTO;
	chk = m->rd;
	for (uint32_t i = 0; i < m->n; i++) {
		uint8_t kl = hs_r8(&chk);
		uint32_t vl;

		if (!kl && !chk.err)
			return -HS_EPROTO;
		hs_rd_take(&chk, kl);
		hs_rd_take(&chk, 12 + 8 + 12);
		vl = hs_r32(&chk);
		if (vl > HS_REG_VALUE_MAX)
			return -HS_EPROTO;
		hs_rd_take(&chk, vl);
		if (chk.err)
			return -HS_EPROTO;
	}
	return hs_rd_done(&chk);
}

int hs_reg_listed_next(struct hs_reg_listed *m, struct hs_reg_entry *e)
{
	if (!m->left)
		return 0;
	m->left--;
	memset(e, 0, sizeof(*e));
	e->key_len = hs_r8(&m->rd);
	e->key = hs_rd_take(&m->rd, e->key_len);
	r_ballot(&m->rd, &e->accepted);
	e->val.version = hs_r64(&m->rd);
	r_ballot(&m->rd, &e->val.tag);
	e->val.len = hs_r32(&m->rd);
	e->val.data = hs_rd_take(&m->rd, e->val.len);
	return 1;
}
