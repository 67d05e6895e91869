/*
 * proto_client.c - encoders and decoders of the client<->serve messages
 * specified in proto_client.h.
 *
 * Same rules as proto.c: every read goes through struct hs_rd, decoders
 * refuse leftover bytes, and list decoders validate every entry before
 * returning so the _next() functions can walk without checks.  Each list
 * type has one entry reader used both by the validating walk and by
 * _next(); a reader returns the first error (underflow or a value the
 * spec calls malformed).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "format.h"
#include "frame.h"
#include "proto_client.h"
#include "wire.h"

/* ---- names -------------------------------------------------------------- */

static int name_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

int hs_stream_prefix_valid(const char *p, size_t n)
{
	if (n > HS_NAME_MAX || (n && p[0] == '_'))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!name_char((unsigned char)p[i]))
			return 0;
	return 1;
}

int hs_stream_name_valid(const char *p, size_t n)
{
	return n >= 1 && hs_stream_prefix_valid(p, n);
}

const char *hs_msg_client_name(uint16_t type)
{
	switch (type) {
	case HS_MSG_APPEND: return "APPEND";
	case HS_MSG_APPENDED: return "APPENDED";
	case HS_MSG_STREAM_CREATE: return "STREAM_CREATE";
	case HS_MSG_STREAM_DELETE: return "STREAM_DELETE";
	case HS_MSG_STREAM_LIST: return "STREAM_LIST";
	case HS_MSG_STREAM_INFO: return "STREAM_INFO";
	case HS_MSG_STREAM_TRIM: return "STREAM_TRIM";
	case HS_MSG_STREAMS: return "STREAMS";
	case HS_MSG_STATUSES: return "STATUSES";
	case HS_MSG_READ: return "READ";
	case HS_MSG_DELIVER: return "DELIVER";
	case HS_MSG_READ_GAP: return "READ_GAP";
	case HS_MSG_READ_WINDOW: return "READ_WINDOW";
	case HS_MSG_READ_END: return "READ_END";
	case HS_MSG_READ_CANCEL: return "READ_CANCEL";
	case HS_MSG_SUB_CREATE: return "SUB_CREATE";
	case HS_MSG_SUB_DELETE: return "SUB_DELETE";
	case HS_MSG_SUB_LIST: return "SUB_LIST";
	case HS_MSG_SUB_INFO: return "SUB_INFO";
	case HS_MSG_SUBS: return "SUBS";
	case HS_MSG_SUBSCRIBE: return "SUBSCRIBE";
	case HS_MSG_ACK: return "ACK";
	case HS_MSG_ADMIN_STATS: return "ADMIN_STATS";
	case HS_MSG_ADMIN_STATSREPLY: return "ADMIN_STATSREPLY";
	case HS_MSG_CLUSTER_STATUS: return "CLUSTER_STATUS";
	case HS_MSG_CLUSTER_STATUSREPLY: return "CLUSTER_STATUSREPLY";
	case HS_MSG_TIER_INFO: return "TIER_INFO";
	case HS_MSG_TIER_INFOS: return "TIER_INFOS";
	case HS_MSG_TIER_PUBLISH: return "TIER_PUBLISH";
	case HS_MSG_STREAM_ALTER: return "STREAM_ALTER";
	}
	return "?";
}

int hs_append_run_check(const struct hs_run *r)
{
	return r->flags || r->ncopyset || r->lng || r->wave ? -HS_EPROTO : 0;
}

/* ---- field codecs ------------------------------------------------------- */

static void w_name(struct hs_buf *b, const char *p, uint8_t n)
{
	hs_w8(b, n);
	hs_wbytes(b, p, n);
}

/* A u8-length string; no validation. */
static void r_str(struct hs_rd *r, const char **p, uint8_t *n)
{
	*n = hs_r8(r);
	*p = (const char *)hs_rd_take(r, *n);
}

/* A name that must be valid (or, with empty_ok, empty). */
static int r_name(struct hs_rd *r, const char **p, uint8_t *n, int empty_ok)
{
	r_str(r, p, n);
	if (r->err)
		return r->err;
	if (!*n)
		return empty_ok ? 0 : -HS_EPROTO;
	return hs_stream_name_valid(*p, *n) ? 0 : -HS_EPROTO;
}

void hs_pos_wr(struct hs_buf *b, const struct hs_pos *p)
{
	uint64_t v = 0;

	switch ((int)p->kind) {
	case HS_POS_LSN: v = p->lsn; break;
	case HS_POS_HEAD:
	case HS_POS_TAIL: v = (uint64_t)p->offset; break;
	case HS_POS_TIME: v = (uint64_t)p->time_ms; break;
	}
	hs_w8(b, (uint8_t)p->kind);
	hs_w64(b, v);
}

int hs_pos_rd(struct hs_rd *r, struct hs_pos *p, bool none_ok)
{
	uint8_t k = hs_r8(r);
	uint64_t v = hs_r64(r);

	memset(p, 0, sizeof(*p));
	if (r->err)
		return r->err;
	p->kind = (enum hs_pos_kind)k;
	switch (k) {
	case HS_POS_NONE:
		return none_ok && !v ? 0 : -HS_EPROTO;
	case HS_POS_LSN:
		p->lsn = v;
		return HS_LSN_EPOCH(v) && HS_LSN_ESN(v) ? 0 : -HS_EPROTO;
	case HS_POS_HEAD:
		p->offset = (int64_t)v;
		return p->offset >= 0 ? 0 : -HS_EPROTO;
	case HS_POS_TAIL:
		p->offset = (int64_t)v;
		return p->offset <= 0 ? 0 : -HS_EPROTO;
	case HS_POS_TIME:
		p->time_ms = (int64_t)v;
		return 0;
	}
	return -HS_EPROTO;
}

static void w_attrs(struct hs_buf *b, const struct hs_stream_attrs *a)
{
	hs_w32(b, a->mask);
	hs_w8(b, a->replication);
	hs_w8(b, a->durability);
	hs_w16(b, 0);
	hs_w64(b, a->retention_ms);
	hs_w64(b, a->offload_after_ms);
	if (a->mask & HS_ATTR_OFFLOAD_SIZE)
		hs_w64(b, a->offload_size);
	if (a->mask & HS_ATTR_RESTORE) {
		hs_w64(b, a->restore_log);
		hs_w64(b, a->restore_lsn);
	}
}

static int r_attrs(struct hs_rd *r, struct hs_stream_attrs *a)
{
	a->mask = hs_r32(r);
	a->replication = hs_r8(r);
	a->durability = hs_r8(r);
	hs_r16(r);
	a->retention_ms = hs_r64(r);
	a->offload_after_ms = hs_r64(r);
	a->offload_size = a->mask & HS_ATTR_OFFLOAD_SIZE ? hs_r64(r) : 0;
	a->restore_log = a->mask & HS_ATTR_RESTORE ? hs_r64(r) : 0;
	a->restore_lsn = a->mask & HS_ATTR_RESTORE ? hs_r64(r) : 0;
	if (r->err)
		return r->err;
	if (a->mask & ~(uint32_t)(HS_ATTR_ALL | HS_ATTR_RESTORE))
		return -HS_EPROTO;
	if ((a->mask & HS_ATTR_RESTORE) && (!a->restore_log || a->restore_log >> 62))
		return -HS_EPROTO;
	if ((a->mask & HS_ATTR_REPLICATION) &&
	    (a->replication < 1 || a->replication > HS_RUN_COPYSET_MAX))
		return -HS_EPROTO;
	if ((a->mask & HS_ATTR_DURABILITY) &&
	    (a->durability < HS_DUR_SYNC || a->durability > HS_DUR_MEMORY))
		return -HS_EPROTO;
	return 0;
}

static void w_info(struct hs_buf *b, const struct hs_stream_info *i)
{
	hs_w64(b, i->log);
	w_attrs(b, &i->attrs);
	hs_w64(b, i->head);
	hs_w64(b, i->tail);
	hs_w64(b, i->trim);
	hs_w64(b, i->tier1_trim);
	hs_w64(b, i->offload);
	hs_w64(b, i->records);
	hs_w64(b, i->bytes);
	hs_w64(b, i->created_ms);
	hs_w64(b, i->released);
	hs_w64(b, i->tier2_expired);
	hs_w32(b, i->tier2_segments);
	hs_w32(b, i->epoch);
	hs_w32(b, i->lce);
	hs_w8(b, i->r);
	hs_w8(b, i->nn);
	hs_w16(b, 0);
	for (uint8_t k = 0; k < i->nn; k++)
		hs_w32(b, i->nodes[k]);
}

/* r, nn and the node ids of a nodeset (info, cstream). */
static int r_nodeset(struct hs_rd *r, uint8_t rr, uint8_t nn, uint32_t *nodes)
{
	if (nn > HS_INFO_NODESET_MAX || rr > nn)
		return r->err ? r->err : -HS_EPROTO;
	for (uint8_t k = 0; k < nn; k++)
		nodes[k] = hs_r32(r);
	return r->err;
}

static int r_info(struct hs_rd *r, struct hs_stream_info *i)
{
	int rc;

	i->log = hs_r64(r);
	rc = r_attrs(r, &i->attrs);
	i->head = hs_r64(r);
	i->tail = hs_r64(r);
	i->trim = hs_r64(r);
	i->tier1_trim = hs_r64(r);
	i->offload = hs_r64(r);
	i->records = hs_r64(r);
	i->bytes = hs_r64(r);
	i->created_ms = hs_r64(r);
	i->released = hs_r64(r);
	i->tier2_expired = hs_r64(r);
	i->tier2_segments = hs_r32(r);
	i->epoch = hs_r32(r);
	i->lce = hs_r32(r);
	i->r = hs_r8(r);
	i->nn = hs_r8(r);
	if (hs_r16(r) && !r->err)
		return -HS_EPROTO;
	if (r->err)
		return r->err;
	if (rc)
		return rc;
	return r_nodeset(r, i->r, i->nn, i->nodes);
}

static void w_subinfo(struct hs_buf *b, const struct hs_sub_info *i)
{
	w_name(b, i->stream, i->stream_len);
	hs_w32(b, i->ack_timeout_ms);
	hs_w32(b, i->max_unacked);
	hs_w64(b, i->checkpoint);
	hs_w64(b, i->delivered);
	hs_w32(b, i->unacked);
	hs_w32(b, i->consumers);
}

static int r_subinfo(struct hs_rd *r, struct hs_sub_info *i)
{
	int rc = r_name(r, &i->stream, &i->stream_len, 0);

	i->ack_timeout_ms = hs_r32(r);
	i->max_unacked = hs_r32(r);
	i->checkpoint = hs_r64(r);
	i->delivered = hs_r64(r);
	i->unacked = hs_r32(r);
	i->consumers = hs_r32(r);
	return r->err ? r->err : rc;
}

/* ---- single messages ---------------------------------------------------- */

void hs_msg_read_enc(struct hs_buf *b, uint64_t id, const struct hs_cread *m)
{
	size_t f = hs_frame_begin(b, HS_MSG_READ, 0, id);

	hs_w32(b, m->read_id);
	hs_w32(b, m->flags);
	hs_w32(b, m->win_records);
	hs_w32(b, m->win_bytes);
	hs_w64(b, m->limit);
	hs_pos_wr(b, &m->from);
	hs_pos_wr(b, &m->until);
	w_name(b, m->stream, m->stream_len);
	hs_frame_end(b, f);
}

int hs_msg_read_dec(const uint8_t *body, size_t len, struct hs_cread *m)
{
	struct hs_rd r;
	int rc;

	hs_rd_init(&r, body, len);
	m->read_id = hs_r32(&r);
	m->flags = hs_r32(&r);
	m->win_records = hs_r32(&r);
	m->win_bytes = hs_r32(&r);
	m->limit = hs_r64(&r);
	if ((rc = hs_pos_rd(&r, &m->from, false)) || (rc = hs_pos_rd(&r, &m->until, true)) ||
	    (rc = r_name(&r, &m->stream, &m->stream_len, 0)))
		return rc;
	if (m->flags & ~(uint32_t)(HS_CREAD_FOLLOW | HS_CREAD_GAPS))
		return -HS_EPROTO;
	return hs_rd_done(&r);
}

void hs_msg_read_window_enc(struct hs_buf *b, uint64_t id, const struct hs_read_window *m)
{
	size_t f = hs_frame_begin(b, HS_MSG_READ_WINDOW, 0, id);

	hs_w32(b, m->read_id);
	hs_w32(b, m->add_records);
	hs_w32(b, m->add_bytes);
	hs_frame_end(b, f);
}

int hs_msg_read_window_dec(const uint8_t *body, size_t len, struct hs_read_window *m)
{
	struct hs_rd r;

	hs_rd_init(&r, body, len);
	m->read_id = hs_r32(&r);
	m->add_records = hs_r32(&r);
	m->add_bytes = hs_r32(&r);
	return hs_rd_done(&r);
}

void hs_msg_read_end_enc(struct hs_buf *b, uint64_t id, const struct hs_read_end *m)
{
	size_t f = hs_frame_begin(b, HS_MSG_READ_END, 0, id);

	hs_w32(b, m->read_id);
	hs_w32(b, (uint32_t)m->status);
	hs_w64(b, m->next_lsn);
	hs_frame_end(b, f);
}

int hs_msg_read_end_dec(const uint8_t *body, size_t len, struct hs_read_end *m)
{
	struct hs_rd r;

	hs_rd_init(&r, body, len);
	m->read_id = hs_r32(&r);
	m->status = (int32_t)hs_r32(&r);
	m->next_lsn = hs_r64(&r);
	if (!r.err && m->status > 0)
		return -HS_EPROTO;
	return hs_rd_done(&r);
}

void hs_msg_read_cancel_enc(struct hs_buf *b, uint64_t id, const struct hs_read_cancel *m)
{
	size_t f = hs_frame_begin(b, HS_MSG_READ_CANCEL, 0, id);

	hs_w32(b, m->read_id);
	hs_frame_end(b, f);
}

int hs_msg_read_cancel_dec(const uint8_t *body, size_t len, struct hs_read_cancel *m)
{
	struct hs_rd r;

	hs_rd_init(&r, body, len);
	m->read_id = hs_r32(&r);
	return hs_rd_done(&r);
}

void hs_msg_subscribe_enc(struct hs_buf *b, uint64_t id, const struct hs_subscribe *m)
{
	size_t f = hs_frame_begin(b, HS_MSG_SUBSCRIBE, 0, id);

	hs_w32(b, m->read_id);
	hs_w32(b, m->flags);
	hs_w32(b, m->win_records);
	hs_w32(b, m->win_bytes);
	w_name(b, m->sub, m->sub_len);
	hs_frame_end(b, f);
}

int hs_msg_subscribe_dec(const uint8_t *body, size_t len, struct hs_subscribe *m)
{
	struct hs_rd r;
	int rc;

	hs_rd_init(&r, body, len);
	m->read_id = hs_r32(&r);
	m->flags = hs_r32(&r);
	m->win_records = hs_r32(&r);
	m->win_bytes = hs_r32(&r);
	if ((rc = r_name(&r, &m->sub, &m->sub_len, 0)))
		return rc;
	if (m->flags & ~(uint32_t)HS_CREAD_GAPS)
		return -HS_EPROTO;
	return hs_rd_done(&r);
}

static void list_req_enc(struct hs_buf *b, uint16_t type, uint64_t id,
			 const struct hs_list_req *m)
{
	size_t f = hs_frame_begin(b, type, 0, id);

	hs_w32(b, m->max);
	hs_w8(b, m->flags);
	w_name(b, m->filter, m->filter_len);
	w_name(b, m->cursor, m->cursor_len);
	hs_frame_end(b, f);
}

/* filter_prefix: the filter is a name prefix (STREAM_LIST), else an empty
 * or valid name (SUB_LIST's stream). */
static int list_req_dec(const uint8_t *body, size_t len, struct hs_list_req *m,
			int filter_prefix)
{
	struct hs_rd r;
	int rc;

	hs_rd_init(&r, body, len);
	m->max = hs_r32(&r);
	m->flags = hs_r8(&r);
	if (filter_prefix) {
		r_str(&r, &m->filter, &m->filter_len);
		if (!r.err && !hs_stream_prefix_valid(m->filter, m->filter_len))
			return -HS_EPROTO;
	} else if ((rc = r_name(&r, &m->filter, &m->filter_len, 1))) {
		return rc;
	}
	if ((rc = r_name(&r, &m->cursor, &m->cursor_len, 1)))
		return rc;
	if (m->flags & ~HS_LIST_INFO)
		return -HS_EPROTO;
	return hs_rd_done(&r);
}

void hs_msg_stream_list_enc(struct hs_buf *b, uint64_t id, const struct hs_list_req *m)
{
	list_req_enc(b, HS_MSG_STREAM_LIST, id, m);
}

int hs_msg_stream_list_dec(const uint8_t *body, size_t len, struct hs_list_req *m)
{
	return list_req_dec(body, len, m, 1);
}

void hs_msg_sub_list_enc(struct hs_buf *b, uint64_t id, const struct hs_list_req *m)
{
	list_req_enc(b, HS_MSG_SUB_LIST, id, m);
}

int hs_msg_sub_list_dec(const uint8_t *body, size_t len, struct hs_list_req *m)
{
	return list_req_dec(body, len, m, 0);
}

void hs_msg_admin_stats_enc(struct hs_buf *b, uint64_t id, const struct hs_admin_stats *m)
{
	size_t f = hs_frame_begin(b, HS_MSG_ADMIN_STATS, 0, id);

	hs_w8(b, m->scopes);
	w_name(b, m->prefix, m->prefix_len);
	hs_frame_end(b, f);
}

int hs_msg_admin_stats_dec(const uint8_t *body, size_t len, struct hs_admin_stats *m)
{
	struct hs_rd r;

	hs_rd_init(&r, body, len);
	m->scopes = hs_r8(&r);
	r_str(&r, &m->prefix, &m->prefix_len);
	if (r.err)
		return r.err;
	if ((m->scopes & ~(HS_STATS_SERVE | HS_STATS_STREAMS | HS_STATS_PEERS)) ||
	    !hs_stream_prefix_valid(m->prefix, m->prefix_len))
		return -HS_EPROTO;
	return hs_rd_done(&r);
}

void hs_msg_cluster_status_enc(struct hs_buf *b, uint64_t id)
{
	hs_frame_end(b, hs_frame_begin(b, HS_MSG_CLUSTER_STATUS, 0, id));
}

int hs_msg_cluster_status_dec(const uint8_t *body, size_t len)
{
	return len ? -HS_EPROTO : 0;
}

/* ---- list writers ------------------------------------------------------- */

static void wr_list(struct hs_msg_wr *w, struct hs_buf *b, uint16_t type, uint64_t id)
{
	hs_msg_wr_begin(w, b, type, id);
	hs_msg_wr_count(w);
}

void hs_msg_append_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id)
{
	wr_list(w, b, HS_MSG_APPEND, id);
}

void hs_msg_append_run_open(struct hs_msg_wr *w, const char *stream, uint8_t stream_len,
			    uint32_t flags)
{
	w_name(w->b, stream, stream_len);
	hs_w32(w->b, flags);
	w->run_off = w->b->len;
	hs_w32(w->b, 0);
	w->n++;
}

void hs_msg_append_run(struct hs_msg_wr *w, const char *stream, uint8_t stream_len,
		       uint32_t flags, const void *run, size_t len)
{
	hs_msg_append_run_open(w, stream, stream_len, flags);
	hs_wbytes(w->b, run, len);
	hs_msg_wr_run_close(w);
}

void hs_msg_appended_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id)
{
	wr_list(w, b, HS_MSG_APPENDED, id);
}

void hs_msg_appended_add(struct hs_msg_wr *w, const struct hs_appended_ent *e)
{
	hs_w32(w->b, (uint32_t)e->status);
	hs_w64(w->b, e->first_lsn);
	hs_w32(w->b, e->count);
	hs_w32(w->b, e->detail);
	hs_w16(w->b, e->text_len);
	hs_wbytes(w->b, e->text, e->text_len);
	w->n++;
}

void hs_msg_stream_delete_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id)
{
	wr_list(w, b, HS_MSG_STREAM_DELETE, id);
}

void hs_msg_stream_info_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id)
{
	wr_list(w, b, HS_MSG_STREAM_INFO, id);
}

void hs_msg_sub_delete_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id)
{
	wr_list(w, b, HS_MSG_SUB_DELETE, id);
}

void hs_msg_sub_info_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id)
{
	wr_list(w, b, HS_MSG_SUB_INFO, id);
}

void hs_msg_name_add(struct hs_msg_wr *w, const char *name, uint8_t name_len)
{
	w_name(w->b, name, name_len);
	w->n++;
}

void hs_msg_stream_create_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id)
{
	wr_list(w, b, HS_MSG_STREAM_CREATE, id);
}

void hs_msg_stream_create_add(struct hs_msg_wr *w, const char *stream, uint8_t stream_len,
			      const struct hs_stream_attrs *attrs)
{
	w_name(w->b, stream, stream_len);
	w_attrs(w->b, attrs);
	w->n++;
}

void hs_msg_stream_trim_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id)
{
	wr_list(w, b, HS_MSG_STREAM_TRIM, id);
}

void hs_msg_stream_trim_add(struct hs_msg_wr *w, const char *stream, uint8_t stream_len,
			    const struct hs_pos *before)
{
	w_name(w->b, stream, stream_len);
	hs_pos_wr(w->b, before);
	w->n++;
}

void hs_msg_streams_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id, uint8_t flags)
{
	hs_msg_wr_begin(w, b, HS_MSG_STREAMS, id);
	hs_w8(b, flags);
	hs_msg_wr_count(w);
}

void hs_msg_streams_add(struct hs_msg_wr *w, int32_t status, const char *stream,
			uint8_t stream_len, const struct hs_stream_info *info)
{
	hs_w32(w->b, (uint32_t)status);
	w_name(w->b, stream, stream_len);
	hs_w8(w->b, info != NULL);
	if (info)
		w_info(w->b, info);
	w->n++;
}

void hs_msg_statuses_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id)
{
	wr_list(w, b, HS_MSG_STATUSES, id);
}

void hs_msg_statuses_add(struct hs_msg_wr *w, int32_t status, uint64_t value)
{
	hs_w32(w->b, (uint32_t)status);
	hs_w64(w->b, value);
	w->n++;
}

void hs_msg_deliver_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id, uint32_t read_id)
{
	hs_msg_wr_begin(w, b, HS_MSG_DELIVER, id);
	hs_w32(b, read_id);
	hs_msg_wr_count(w);
}

void hs_msg_deliver_run_open(struct hs_msg_wr *w, uint64_t first_lsn)
{
	hs_w64(w->b, first_lsn);
	w->run_off = w->b->len;
	hs_w32(w->b, 0);
	w->n++;
}

void hs_msg_deliver_run(struct hs_msg_wr *w, uint64_t first_lsn, const void *run, size_t len)
{
	hs_msg_deliver_run_open(w, first_lsn);
	hs_wbytes(w->b, run, len);
	hs_msg_wr_run_close(w);
}

void hs_msg_read_gap_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id, uint32_t read_id)
{
	hs_msg_wr_begin(w, b, HS_MSG_READ_GAP, id);
	hs_w32(b, read_id);
	hs_msg_wr_count(w);
}

void hs_msg_read_gap_add(struct hs_msg_wr *w, uint64_t lo, uint64_t hi, uint8_t kind)
{
	hs_w64(w->b, lo);
	hs_w64(w->b, hi);
	hs_w8(w->b, kind);
	w->n++;
}

void hs_msg_sub_create_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id)
{
	wr_list(w, b, HS_MSG_SUB_CREATE, id);
}

void hs_msg_sub_create_add(struct hs_msg_wr *w, const struct hs_subcreate_ent *e)
{
	w_name(w->b, e->sub, e->sub_len);
	w_name(w->b, e->stream, e->stream_len);
	hs_pos_wr(w->b, &e->from);
	hs_w32(w->b, e->ack_timeout_ms);
	hs_w32(w->b, e->max_unacked);
	w->n++;
}

void hs_msg_subs_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id, uint8_t flags)
{
	hs_msg_wr_begin(w, b, HS_MSG_SUBS, id);
	hs_w8(b, flags);
	hs_msg_wr_count(w);
}

void hs_msg_subs_add(struct hs_msg_wr *w, int32_t status, const char *sub, uint8_t sub_len,
		     const struct hs_sub_info *info)
{
	hs_w32(w->b, (uint32_t)status);
	w_name(w->b, sub, sub_len);
	hs_w8(w->b, info != NULL);
	if (info)
		w_subinfo(w->b, info);
	w->n++;
}

void hs_msg_ack_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id, const char *sub,
		      uint8_t sub_len)
{
	hs_msg_wr_begin(w, b, HS_MSG_ACK, id);
	w_name(b, sub, sub_len);
	hs_msg_wr_count(w);
}

void hs_msg_ack_add(struct hs_msg_wr *w, uint64_t lo, uint64_t hi)
{
	hs_w64(w->b, lo);
	hs_w64(w->b, hi);
	w->n++;
}

void hs_msg_admin_statsreply_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id)
{
	wr_list(w, b, HS_MSG_ADMIN_STATSREPLY, id);
}

void hs_msg_kv_add(struct hs_msg_wr *w, const char *scope, const char *key, const char *val)
{
	size_t ls = strlen(scope), lk = strlen(key), lv = strlen(val);

	/* Cut rather than fail: stats are for humans and dashboards. */
	if (ls > UINT8_MAX)
		ls = UINT8_MAX;
	if (lk > UINT8_MAX)
		lk = UINT8_MAX;
	if (lv > UINT16_MAX)
		lv = UINT16_MAX;
	w_name(w->b, scope, (uint8_t)ls);
	w_name(w->b, key, (uint8_t)lk);
	hs_w16(w->b, (uint16_t)lv);
	hs_wbytes(w->b, val, lv);
	w->n++;
}

void hs_msg_kv_addu(struct hs_msg_wr *w, const char *scope, const char *key, uint64_t val)
{
	char s[24];

	snprintf(s, sizeof(s), "%" PRIu64, val);
	hs_msg_kv_add(w, scope, key, s);
}

void hs_msg_cluster_statusreply_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id,
				      uint64_t cluster_id, uint8_t healthy, uint8_t replication,
				      uint32_t streams_active)
{
	hs_msg_wr_begin(w, b, HS_MSG_CLUSTER_STATUSREPLY, id);
	hs_w64(b, cluster_id);
	hs_w8(b, healthy);
	hs_w8(b, replication);
	hs_w16(b, 0);
	hs_w32(b, streams_active);
	hs_msg_wr_count(w);
}

void hs_msg_peer_add(struct hs_msg_wr *w, const struct hs_peer_ent *e)
{
	hs_w32(w->b, e->node_id);
	hs_w8(w->b, e->state);
	hs_w8(w->b, e->flags);
	hs_w16(w->b, 0);
	hs_w64(w->b, e->pending_bytes);
	hs_w64(w->b, e->connects);
	hs_w64(w->b, e->losses);
	hs_w32(w->b, (uint32_t)e->last_error);
	hs_w64(w->b, e->last_error_ms);
	w_name(w->b, e->addr, e->addr_len);
	w->n++;
}

/* The peer count is final: patch it and start the cstream count, which
 * hs_msg_wr_end() patches. */
void hs_msg_cstreams_open(struct hs_msg_wr *w)
{
	hs_put32(w->b->data + w->count_off, w->n);
	hs_msg_wr_count(w);
	w->n = 0;
}

void hs_msg_cstream_add(struct hs_msg_wr *w, const struct hs_cstream_ent *e)
{
	w_name(w->b, e->stream, e->stream_len);
	hs_w8(w->b, e->state);
	hs_w8(w->b, e->r);
	hs_w8(w->b, e->nn);
	hs_w8(w->b, 0);
	hs_w32(w->b, e->epoch);
	hs_w32(w->b, e->lce);
	hs_w64(w->b, e->released);
	hs_w64(w->b, e->tail);
	hs_w64(w->b, e->trim);
	for (uint8_t k = 0; k < e->nn; k++)
		hs_w32(w->b, e->nodes[k]);
	w->n++;
}

/* ---- list entry readers ------------------------------------------------- */

static int rd_append(struct hs_rd *r, struct hs_append_ent *e)
{
	int rc = r_name(r, &e->stream, &e->stream_len, 0);

	e->flags = hs_r32(r);
	e->run_len = hs_r32(r);
	e->run = hs_rd_take(r, e->run_len);
	if (r->err || rc)
		return r->err ? r->err : rc;
	return e->flags & ~(uint32_t)HS_APPEND_CREATE ? -HS_EPROTO : 0;
}

static int rd_appended(struct hs_rd *r, struct hs_appended_ent *e)
{
	e->status = (int32_t)hs_r32(r);
	e->first_lsn = hs_r64(r);
	e->count = hs_r32(r);
	e->detail = hs_r32(r);
	e->text_len = hs_r16(r);
	e->text = (const char *)hs_rd_take(r, e->text_len);
	if (r->err)
		return r->err;
	return e->status > 0 ? -HS_EPROTO : 0;
}

static int rd_name(struct hs_rd *r, struct hs_name_ent *e)
{
	return r_name(r, &e->name, &e->name_len, 0);
}

static int rd_create(struct hs_rd *r, struct hs_create_ent *e)
{
	int rc = r_name(r, &e->stream, &e->stream_len, 0);

	return rc ? rc : r_attrs(r, &e->attrs);
}

static int rd_trim(struct hs_rd *r, struct hs_trim_ent *e)
{
	int rc = r_name(r, &e->stream, &e->stream_len, 0);

	return rc ? rc : hs_pos_rd(r, &e->before, false);
}

static int rd_streams(struct hs_rd *r, struct hs_streams_ent *e)
{
	int rc;

	e->status = (int32_t)hs_r32(r);
	if ((rc = r_name(r, &e->stream, &e->stream_len, 0)))
		return rc;
	e->has_info = hs_r8(r);
	memset(&e->info, 0, sizeof(e->info));
	if (e->has_info == 1 && (rc = r_info(r, &e->info)))
		return rc;
	if (r->err)
		return r->err;
	return e->status > 0 || e->has_info > 1 || (e->status && e->has_info) ? -HS_EPROTO : 0;
}

static int rd_status(struct hs_rd *r, struct hs_status_ent *e)
{
	e->status = (int32_t)hs_r32(r);
	e->value = hs_r64(r);
	if (r->err)
		return r->err;
	return e->status > 0 ? -HS_EPROTO : 0;
}

static int rd_deliver(struct hs_rd *r, struct hs_deliver_ent *e)
{
	e->first_lsn = hs_r64(r);
	e->run_len = hs_r32(r);
	e->run = hs_rd_take(r, e->run_len);
	return r->err;
}

static int rd_gap(struct hs_rd *r, struct hs_cgap_ent *e)
{
	e->lo = hs_r64(r);
	e->hi = hs_r64(r);
	e->kind = hs_r8(r);
	if (r->err)
		return r->err;
	return e->kind < HS_FMT_GAP_HOLE || e->kind > HS_FMT_GAP_DATALOSS || !e->lo ||
			       e->lo > e->hi
		       ? -HS_EPROTO
		       : 0;
}

static int rd_subcreate(struct hs_rd *r, struct hs_subcreate_ent *e)
{
	int rc;

	if ((rc = r_name(r, &e->sub, &e->sub_len, 0)) ||
	    (rc = r_name(r, &e->stream, &e->stream_len, 0)) ||
	    (rc = hs_pos_rd(r, &e->from, true)))
		return rc;
	e->ack_timeout_ms = hs_r32(r);
	e->max_unacked = hs_r32(r);
	return r->err;
}

static int rd_subs(struct hs_rd *r, struct hs_subs_ent *e)
{
	int rc;

	e->status = (int32_t)hs_r32(r);
	if ((rc = r_name(r, &e->sub, &e->sub_len, 0)))
		return rc;
	e->has_info = hs_r8(r);
	memset(&e->info, 0, sizeof(e->info));
	if (e->has_info == 1 && (rc = r_subinfo(r, &e->info)))
		return rc;
	if (r->err)
		return r->err;
	return e->status > 0 || e->has_info > 1 || (e->status && e->has_info) ? -HS_EPROTO : 0;
}

static int rd_range(struct hs_rd *r, struct hs_lsn_range *e)
{
	e->lo = hs_r64(r);
	e->hi = hs_r64(r);
	if (r->err)
		return r->err;
	return !e->lo || e->lo > e->hi ? -HS_EPROTO : 0;
}

static int rd_kv(struct hs_rd *r, struct hs_kv_ent *e)
{
	r_str(r, &e->scope, &e->scope_len);
	r_str(r, &e->key, &e->key_len);
	e->val_len = hs_r16(r);
	e->val = (const char *)hs_rd_take(r, e->val_len);
	if (r->err)
		return r->err;
	return e->scope_len && e->key_len ? 0 : -HS_EPROTO;
}

static int rd_peer(struct hs_rd *r, struct hs_peer_ent *e)
{
	uint16_t z;

	e->node_id = hs_r32(r);
	e->state = hs_r8(r);
	e->flags = hs_r8(r);
	z = hs_r16(r);
	e->pending_bytes = hs_r64(r);
	e->connects = hs_r64(r);
	e->losses = hs_r64(r);
	e->last_error = (int32_t)hs_r32(r);
	e->last_error_ms = hs_r64(r);
	r_str(r, &e->addr, &e->addr_len);
	if (r->err)
		return r->err;
	return e->state < HS_PEER_UP || e->state > HS_PEER_DRAINING ||
	       (e->flags & ~HS_PEERF_DATA) || z || e->last_error > 0 ? -HS_EPROTO : 0;
}

static int rd_cstream(struct hs_rd *r, struct hs_cstream_ent *e)
{
	int rc = r_name(r, &e->stream, &e->stream_len, 0);
	uint8_t z;

	if (rc)
		return rc;
	e->state = hs_r8(r);
	e->r = hs_r8(r);
	e->nn = hs_r8(r);
	z = hs_r8(r);
	e->epoch = hs_r32(r);
	e->lce = hs_r32(r);
	e->released = hs_r64(r);
	e->tail = hs_r64(r);
	e->trim = hs_r64(r);
	if (r->err)
		return r->err;
	if (z || e->state < HS_CSTREAM_ACTIVE || e->state > HS_CSTREAM_WAITING)
		return -HS_EPROTO;
	return r_nodeset(r, e->r, e->nn, e->nodes);
}

/* ---- Tier2 -------------------------------------------------------------- */

void hs_msg_tier_info_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id)
{
	wr_list(w, b, HS_MSG_TIER_INFO, id);
}

void hs_msg_tier_infos_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id)
{
	wr_list(w, b, HS_MSG_TIER_INFOS, id);
}

void hs_msg_tier_infos_add(struct hs_msg_wr *w, int32_t status, const char *stream,
			   uint8_t stream_len, const struct hs_tier_info *info)
{
	struct hs_buf *b = w->b;

	hs_w32(b, (uint32_t)status);
	w_name(b, stream, stream_len);
	hs_w8(b, info ? 1 : 0);
	if (info) {
		hs_w64(b, info->log);
		hs_w64(b, info->limit);
		hs_w64(b, info->released);
		hs_w64(b, info->tier1_trim);
		hs_w32(b, info->epoch);
		hs_w32(b, info->lce);
		hs_w32(b, info->man_len);
		hs_wbytes(b, info->man, info->man_len);
	}
	w->n++;
}

void hs_msg_tier_publish_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id)
{
	wr_list(w, b, HS_MSG_TIER_PUBLISH, id);
}

void hs_msg_tier_publish_add(struct hs_msg_wr *w, const struct hs_tier_pub_ent *e)
{
	struct hs_buf *b = w->b;

	w_name(b, e->stream, e->stream_len);
	hs_w64(b, e->log);
	hs_w8(b, e->op);
	hs_w8(b, 0);
	hs_w16(b, 0);
	if (e->op == HS_TIER_OP_RESTORE)
		hs_w32(b, e->body_len);
	hs_wbytes(b, e->body, e->body_len);
	w->n++;
}

void hs_msg_stream_alter_begin(struct hs_msg_wr *w, struct hs_buf *b, uint64_t id)
{
	wr_list(w, b, HS_MSG_STREAM_ALTER, id);
}

static int rd_tier_infos(struct hs_rd *r, struct hs_tier_infos_ent *e)
{
	int rc;

	e->status = (int32_t)hs_r32(r);
	if ((rc = r_name(r, &e->stream, &e->stream_len, 0)))
		return rc;
	e->has_info = hs_r8(r);
	memset(&e->info, 0, sizeof(e->info));
	if (e->has_info == 1) {
		e->info.log = hs_r64(r);
		e->info.limit = hs_r64(r);
		e->info.released = hs_r64(r);
		e->info.tier1_trim = hs_r64(r);
		e->info.epoch = hs_r32(r);
		e->info.lce = hs_r32(r);
		e->info.man_len = hs_r32(r);
		if (e->info.man_len > HS_REG_VALUE_MAX)
			return -HS_EPROTO;
		e->info.man = hs_rd_take(r, e->info.man_len);
	}
	if (r->err)
		return r->err;
	return e->status > 0 || e->has_info > 1 || (e->status && e->has_info) ? -HS_EPROTO : 0;
}

static int rd_tier_pub(struct hs_rd *r, struct hs_tier_pub_ent *e)
{
	int rc = r_name(r, &e->stream, &e->stream_len, 0);
	uint8_t z8;
	uint16_t z16;

	if (rc)
		return rc;
	e->log = hs_r64(r);
	e->op = hs_r8(r);
	z8 = hs_r8(r);
	z16 = hs_r16(r);
	switch (e->op) {
	case HS_TIER_OP_PUBLISH: e->body_len = HS_TIER_ENTRY_WIRE; break;
	case HS_TIER_OP_FOLD: e->body_len = HS_TIER_REF_WIRE; break;
	case HS_TIER_OP_EXPIRE: e->body_len = 8; break;
	case HS_TIER_OP_RESTORE:
		e->body_len = hs_r32(r);
		if (e->body_len > HS_REG_VALUE_MAX)
			return r->err ? r->err : -HS_EPROTO;
		break;
	default: return r->err ? r->err : -HS_EPROTO;
	}
	e->body = hs_rd_take(r, e->body_len);
	if (r->err)
		return r->err;
	return z8 || z16 ? -HS_EPROTO : 0;
}

/* ---- list decoding ------------------------------------------------------ */

union any_ent {
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
	struct hs_lsn_range range;
	struct hs_kv_ent kv;
	struct hs_peer_ent peer;
	struct hs_tier_infos_ent tinfos;
	struct hs_tier_pub_ent tpub;
};

/* Read one entry of a list of the given type; -HS_EPROTO for a non-list
 * type. */
static int rd_entry(uint16_t type, struct hs_rd *r, union any_ent *u)
{
	switch (type) {
	case HS_MSG_APPEND: return rd_append(r, &u->append);
	case HS_MSG_APPENDED: return rd_appended(r, &u->appended);
	case HS_MSG_STREAM_DELETE:
	case HS_MSG_STREAM_INFO:
	case HS_MSG_SUB_DELETE:
	case HS_MSG_SUB_INFO:
	case HS_MSG_TIER_INFO: return rd_name(r, &u->name);
	case HS_MSG_STREAM_CREATE:
	case HS_MSG_STREAM_ALTER: return rd_create(r, &u->create);
	case HS_MSG_TIER_INFOS: return rd_tier_infos(r, &u->tinfos);
	case HS_MSG_TIER_PUBLISH: return rd_tier_pub(r, &u->tpub);
	case HS_MSG_STREAM_TRIM: return rd_trim(r, &u->trim);
	case HS_MSG_STREAMS: return rd_streams(r, &u->streams);
	case HS_MSG_STATUSES: return rd_status(r, &u->status);
	case HS_MSG_DELIVER: return rd_deliver(r, &u->deliver);
	case HS_MSG_READ_GAP: return rd_gap(r, &u->gap);
	case HS_MSG_SUB_CREATE: return rd_subcreate(r, &u->subcreate);
	case HS_MSG_SUBS: return rd_subs(r, &u->subs);
	case HS_MSG_ACK: return rd_range(r, &u->range);
	case HS_MSG_ADMIN_STATSREPLY: return rd_kv(r, &u->kv);
	case HS_MSG_CLUSTER_STATUSREPLY: return rd_peer(r, &u->peer);
	}
	return -HS_EPROTO;
}

/* Smallest encoded entry per list type, so an absurd count is refused
 * before walking; 0 for a type that is not a list. */
static size_t min_entry(uint16_t type)
{
	switch (type) {
	case HS_MSG_APPEND: return 2 + 4 + 4;
	case HS_MSG_APPENDED: return 4 + 8 + 4 + 4 + 2;
	case HS_MSG_STREAM_CREATE:
	case HS_MSG_STREAM_ALTER: return 2 + 24;
	case HS_MSG_TIER_INFOS: return 4 + 2 + 1;
	case HS_MSG_TIER_PUBLISH: return 2 + 12 + 8;
	case HS_MSG_STREAM_TRIM: return 2 + HS_POS_WIRE;
	case HS_MSG_STREAMS:
	case HS_MSG_SUBS: return 4 + 2 + 1;
	case HS_MSG_STATUSES:
	case HS_MSG_DELIVER: return 12;
	case HS_MSG_READ_GAP: return 17;
	case HS_MSG_SUB_CREATE: return 2 + 2 + HS_POS_WIRE + 8;
	case HS_MSG_ACK: return 16;
	case HS_MSG_ADMIN_STATSREPLY: return 2 + 2 + 2;
	case HS_MSG_CLUSTER_STATUSREPLY: return 44 + 1;
	case HS_MSG_STREAM_DELETE:
	case HS_MSG_STREAM_INFO:
	case HS_MSG_SUB_DELETE:
	case HS_MSG_SUB_INFO:
	case HS_MSG_TIER_INFO: return 2;
	}
	return 0;
}

int hs_msg_clist_dec(uint16_t type, const uint8_t *body, size_t len, struct hs_clist *l)
{
	union any_ent u;
	struct hs_rd w;
	int rc;

	memset(l, 0, sizeof(*l));
	l->type = type;
	hs_rd_init(&l->rd, body, len);
	switch (type) {
	case HS_MSG_DELIVER:
	case HS_MSG_READ_GAP:
		l->read_id = hs_r32(&l->rd);
		break;
	case HS_MSG_STREAMS:
	case HS_MSG_SUBS:
		l->flags = hs_r8(&l->rd);
		if (l->flags & ~HS_LIST_MORE)
			return -HS_EPROTO;
		break;
	case HS_MSG_ACK:
		if ((rc = r_name(&l->rd, &l->sub, &l->sub_len, 0)))
			return rc;
		break;
	case HS_MSG_CLUSTER_STATUSREPLY:
		l->cluster_id = hs_r64(&l->rd);
		l->healthy = hs_r8(&l->rd);
		l->replication = hs_r8(&l->rd);
		if (hs_r16(&l->rd) || l->healthy > 1)
			return l->rd.err ? l->rd.err : -HS_EPROTO;
		l->streams_active = hs_r32(&l->rd);
		break;
	default:
		if (!min_entry(type))
			return -HS_EPROTO;
	}
	l->n = l->left = hs_r32(&l->rd);
	if (l->rd.err)
		return l->rd.err;
	if (l->n > hs_rd_left(&l->rd) / min_entry(type))
		return -HS_EPROTO;
	w = l->rd;
	for (uint32_t i = 0; i < l->n; i++)
		if ((rc = rd_entry(type, &w, &u)))
			return rc;
	if (type == HS_MSG_CLUSTER_STATUSREPLY) {
		struct hs_cstream_ent cs;

		/* The second list: a cstream is at least 2 + 36 bytes. */
		l->nstreams = l->sleft = hs_r32(&w);
		if (w.err)
			return w.err;
		if (l->nstreams > hs_rd_left(&w) / 38)
			return -HS_EPROTO;
		for (uint32_t i = 0; i < l->nstreams; i++)
			if ((rc = rd_cstream(&w, &cs)))
				return rc;
	}
	return hs_rd_done(&w);
}

/* Common part of the typed _next(): 1 if an entry of one of the types
 * t1/t2/t3/t4 (0 = unused) remains. */
static int take(struct hs_clist *l, uint16_t t1, uint16_t t2, uint16_t t3, uint16_t t4)
{
	if (!l->left || !l->type ||
	    (l->type != t1 && l->type != t2 && l->type != t3 && l->type != t4))
		return 0;
	l->left--;
	return 1;
}

#define NEXT1(fn, T, type, reader)                                             \
	int fn(struct hs_clist *l, T *e)                                       \
	{                                                                      \
		if (!take(l, type, 0, 0, 0))                                   \
			return 0;                                              \
		reader(&l->rd, e);                                             \
		return 1;                                                      \
	}

NEXT1(hs_append_next, struct hs_append_ent, HS_MSG_APPEND, rd_append)
NEXT1(hs_appended_next, struct hs_appended_ent, HS_MSG_APPENDED, rd_appended)
NEXT1(hs_tier_infos_next, struct hs_tier_infos_ent, HS_MSG_TIER_INFOS, rd_tier_infos)
NEXT1(hs_tier_pub_next, struct hs_tier_pub_ent, HS_MSG_TIER_PUBLISH, rd_tier_pub)

int hs_create_next(struct hs_clist *l, struct hs_create_ent *e)
{
	if (!take(l, HS_MSG_STREAM_CREATE, HS_MSG_STREAM_ALTER, 0, 0))
		return 0;
	rd_create(&l->rd, e);
	return 1;
}
NEXT1(hs_trim_next, struct hs_trim_ent, HS_MSG_STREAM_TRIM, rd_trim)
NEXT1(hs_streams_next, struct hs_streams_ent, HS_MSG_STREAMS, rd_streams)
NEXT1(hs_statuses_next, struct hs_status_ent, HS_MSG_STATUSES, rd_status)
NEXT1(hs_deliver_next, struct hs_deliver_ent, HS_MSG_DELIVER, rd_deliver)
NEXT1(hs_read_gap_next, struct hs_cgap_ent, HS_MSG_READ_GAP, rd_gap)
NEXT1(hs_sub_create_next, struct hs_subcreate_ent, HS_MSG_SUB_CREATE, rd_subcreate)
NEXT1(hs_subs_next, struct hs_subs_ent, HS_MSG_SUBS, rd_subs)
NEXT1(hs_ack_next, struct hs_lsn_range, HS_MSG_ACK, rd_range)
NEXT1(hs_kv_next, struct hs_kv_ent, HS_MSG_ADMIN_STATSREPLY, rd_kv)

int hs_peer_next(struct hs_clist *l, struct hs_peer_ent *e)
{
	if (l->in_streams || !take(l, HS_MSG_CLUSTER_STATUSREPLY, 0, 0, 0))
		return 0;
	rd_peer(&l->rd, e);
	return 1;
}

int hs_cstream_next(struct hs_clist *l, struct hs_cstream_ent *e)
{
	struct hs_peer_ent p;

	if (l->type != HS_MSG_CLUSTER_STATUSREPLY)
		return 0;
	if (!l->in_streams) {
		while (hs_peer_next(l, &p) == 1)
			;
		hs_r32(&l->rd); /* the cstream count, l->nstreams */
		l->in_streams = 1;
	}
	if (!l->sleft)
		return 0;
	l->sleft--;
	rd_cstream(&l->rd, e);
	return 1;
}

int hs_name_next(struct hs_clist *l, struct hs_name_ent *e)
{
	if (!take(l, HS_MSG_STREAM_DELETE, HS_MSG_STREAM_INFO, HS_MSG_SUB_DELETE,
		  HS_MSG_SUB_INFO) && !take(l, HS_MSG_TIER_INFO, 0, 0, 0))
		return 0;
	rd_name(&l->rd, e);
	return 1;
}
