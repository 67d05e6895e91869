/*
 * tier.c - hs-serve's Tier2 requests (tier.h): TIER_INFO, TIER_PUBLISH and
 * STREAM_ALTER.
 *
 * DESIGN.  The offloader (cmd/hs-offload.c) does all the I/O with the
 * object store; hs-serve only keeps the truth about what is offloaded: the
 * manifest register "t/<log>" (libpaxos/manifest.h).  Every change of it is
 * one register change whose function re-checks the change against the
 * value current in that round (hs_man_publish/fold/expire), so two
 * offloaders racing, a retry after a lost reply, or a publish of a range
 * that is not released yet can never make the manifest lie: the first
 * wins, the same change again is a no-op (HS_REG_SAME), anything else is
 * refused.  The Tier1 trim that follows a publish is an ordinary
 * STREAM_TRIM from the offloader, sent only after the publish succeeded.
 *
 * OFFLOAD LIMIT.  Only LSNs whose content can never change may be
 * offloaded: at most the released point of the active stream (everything
 * up to it is acknowledged and final, also in the active epoch: a later
 * recovery keeps every slot <= its lng), and nothing in an older epoch the
 * log record still has as not clean (its content is decided by a recovery).
 * While the sequencer does not keep epoch entries in s->lr (v1 records),
 * every epoch older than the active one was sealed before activation and
 * is final, so the released point is the limit.
 *
 * RESTORE.  hs-offload --rebuild sends a whole register value rebuilt
 * from the bucket (TIER_PUBLISH op RESTORE); hs_man_restore() takes it
 * only over an empty register or one whose offload point is lower, so a
 * rebuild never undoes an offload made since, and running it twice is a
 * no-op.
 *
 * REDIRECTS.  TIER_INFO and TIER_PUBLISH wait for the stream, so with
 * several hs-serve an entry whose stream another one sequences fails with
 * -HS_EREDIRECT; as for STREAM_INFO (admin.c) the reply is preceded by one
 * RESULT -HS_EREDIRECT per sequencer address, which hs-offload follows.
 * STREAM_ALTER is a register change any hs-serve can make: no redirect.
 *
 * LIFETIME.  Each request is a struct creq (serve.h), which survives its
 * connection closing (cc set to NULL).  TIER_INFO builds its own reply, so
 * it takes the creq off the connection's list itself before letting
 * hs_serve_creq_reply() free it without a reply.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "manifest.h"
#include "t2read.h"
#include "tier.h"

uint64_t hs_serve_tier_limit(const struct sstream *s)
{
	uint64_t limit = s->released;

	for (uint16_t i = 0; i < s->lr.nepochs; i++) {
		const struct hs_lepoch *e = &s->lr.epochs[i];

		if (e->epoch >= s->epoch)
			break;
		if (!(e->flags & HS_LEPOCH_CLEAN)) {
			uint64_t cap = HS_LSN(e->epoch, 0);

			if (cap < limit + 1)
				limit = cap ? cap - 1 : 0;
			break;
		}
	}
	return limit;
}

/* ---- TIER_INFO ------------------------------------------------------------ */

struct tinfo;

struct tent {
	struct tinfo *q;
	struct wait w;
	char name[HS_NAME_MAX + 1];
	uint8_t nlen;
	int32_t status;
	struct hs_tier_info info;
	uint8_t *man;             /* owned copy of the register value */
	char redirect[HS_LREC_ADDR_MAX + 1]; /* -HS_EREDIRECT: the sequencer */
};

struct tinfo {
	struct serve *sv;
	struct creq *rq;          /* for its cc (NULL once closed) */
	uint32_t n, left;
	struct tent *e;
};

static void tinfo_done(struct tinfo *q)
{
	struct creq *rq = q->rq;
	struct serve *sv = q->sv;

	if (rq->cc && !hs_conn_closing(rq->cc->c)) {
		struct hs_redirects rd = { hs_conn_out(rq->cc->c), rq->id, "" };
		struct hs_msg_wr w;

		for (uint32_t i = 0; i < q->n; i++)
			hs_serve_redirect_note(&rd, q->e[i].status, q->e[i].redirect);
		hs_msg_tier_infos_begin(&w, hs_conn_out(rq->cc->c), rq->id);
		for (uint32_t i = 0; i < q->n; i++) {
			struct tent *t = &q->e[i];

			t->info.man = t->man;
			hs_msg_tier_infos_add(&w, t->status, t->name, t->nlen,
					      t->status ? NULL : &t->info);
		}
		hs_msg_wr_end(&w);
	}
	/* Replied (or dropped): free the creq without its STATUSES reply. */
	if (rq->cc) {
		LIST_REMOVE(rq, link);
		rq->cc = NULL;
	}
	hs_serve_creq_reply(sv, rq);
	for (uint32_t i = 0; i < q->n; i++)
		free(q->e[i].man);
	free(q->e);
	free(q);
}

static void tent_settle(struct tent *t, int status)
{
	t->status = status;
	if (--t->q->left == 0)
		tinfo_done(t->q);
}

static int fn_read(void *arg, const uint8_t *cur, size_t len, uint64_t version,
		   struct hs_buf *out)
{
	return HS_REG_SAME;
}

static void tinfo_read_done(void *arg, int status, const uint8_t *val, size_t len,
			    uint64_t version)
{
	struct tent *t = arg;

	if (status == -ECANCELED) {
		/* The proposer is going away with the server: nothing to send. */
		return;
	}
	if (status == 0) {
		t->man = hs_xmalloc(len ? len : 1);
		memcpy(t->man, val, len);
		t->info.man_len = (uint32_t)len;
	}
	tent_settle(t, status);
}

static void tinfo_ready(struct serve *sv, struct sstream *s, struct wait *w, int status)
{
	struct tent *t = (struct tent *)((char *)w - offsetof(struct tent, w));
	uint8_t key[16];

	if (status < 0) {
		if (status == -HS_EREDIRECT)
			snprintf(t->redirect, sizeof(t->redirect), "%s", hs_serve_redirect_addr(s));
		tent_settle(t, status);
		return;
	}
	t->info.log = s->rec.log;
	t->info.released = s->released;
	t->info.limit = hs_serve_tier_limit(s);
	t->info.tier1_trim = s->trim;
	t->info.epoch = s->epoch;
	t->info.lce = s->lr.lce;
	if (hs_serve_reg_change(sv, key, hs_man_key(key, s->rec.log), fn_read, tinfo_read_done,
				t) < 0)
		tent_settle(t, -HS_EINTERNAL);
}

void hs_serve_on_tier_info(struct serve *sv, struct cconn *cc, const struct hs_frame *f)
{
	struct hs_clist l;
	struct hs_name_ent e;
	struct tinfo *q;
	uint32_t i = 0;

	if (hs_msg_clist_dec(HS_MSG_TIER_INFO, f->body, f->body_len, &l) < 0) {
		hs_serve_proto_close(cc, "malformed TIER_INFO body");
		return;
	}
	q = hs_xcalloc(1, sizeof(*q));
	q->sv = sv;
	q->rq = hs_serve_creq_new(sv, cc, f->id, HS_MSG_TIER_INFO, 0);
	q->n = l.n;
	q->left = l.n + 1; /* held until every entry started */
	q->e = hs_xcalloc(l.n ? l.n : 1, sizeof(*q->e));
	for (; hs_name_next(&l, &e) == 1; i++) {
		struct tent *t = &q->e[i];

		t->q = q;
		memcpy(t->name, e.name, e.name_len);
		t->nlen = e.name_len;
		t->w.fn = tinfo_ready;
		if (e.name_len > HS_META_NAME_MAX) {
			tent_settle(t, -HS_ENOSTREAM);
			continue;
		}
		hs_serve_stream_wait(sv, e.name, e.name_len, 0, NULL, &t->w);
	}
	if (--q->left == 0)
		tinfo_done(q);
}

/* ---- TIER_PUBLISH and STREAM_ALTER: one register change per entry ---------- */

struct tpub {
	struct serve *sv;
	struct creq *rq;
	uint32_t idx;
	struct wait w;
	char name[HS_NAME_MAX + 1];
	uint8_t nlen;
	uint64_t log;
	uint8_t op;
	struct hs_man_entry ent;  /* PUBLISH */
	struct hs_man_ref ref;    /* FOLD */
	uint64_t lsn;             /* EXPIRE */
	struct hs_man restore;    /* RESTORE: the rebuilt value (owned) */
	uint64_t tier1_trim, limit;
	struct hs_stream_attrs attrs; /* STREAM_ALTER */
};

static void tpub_free(struct tpub *p)
{
	hs_man_free(&p->restore);
	free(p);
}

static void tpub_settle(struct tpub *p, int status, uint64_t value)
{
	hs_serve_creq_settle(p->sv, p->rq, p->idx, status, value, 0, 0, "");
	tpub_free(p);
}

/* Settle p with a failed stream wait's status: a redirect names the
 * sequencer (the reply's RESULT, seq.c hs_serve_creq_reply). */
static void tpub_settle_wait(struct tpub *p, struct sstream *s, int status)
{
	hs_serve_creq_settle(p->sv, p->rq, p->idx, status, 0, 0, 0,
			     status == -HS_EREDIRECT ? hs_serve_redirect_addr(s) : "");
	tpub_free(p);
}

static int fn_publish(void *arg, const uint8_t *cur, size_t len, uint64_t version,
		      struct hs_buf *out)
{
	struct tpub *p = arg;
	struct hs_man m;
	int rc = hs_man_dec(cur, len, &m);

	if (rc == 0) {
		switch (p->op) {
		case HS_TIER_OP_PUBLISH:
			rc = hs_man_publish(&m, &p->ent, p->tier1_trim, p->limit);
			break;
		case HS_TIER_OP_FOLD:
			rc = hs_man_fold(&m, &p->ref);
			break;
		case HS_TIER_OP_RESTORE:
			rc = hs_man_restore(&m, &p->restore);
			break;
		default:
			rc = hs_man_expire(&m, p->lsn);
		}
		if (rc == 0)
			hs_man_enc(&m, out);
	}
	hs_man_free(&m);
	return rc == HS_MAN_SAME ? HS_REG_SAME : rc;
}

static void publish_done(void *arg, int status, const uint8_t *val, size_t len,
			 uint64_t version)
{
	struct tpub *p = arg;
	struct hs_man m;

	if (status == -ECANCELED) {
		tpub_free(p);
		return;
	}
	hs_t2_man_changed(p->sv, p->log); /* Tier2 reads: read it again */
	if (status == 0 && hs_man_dec(val, len, &m) == 0) {
		hs_debug("stream '%s': Tier2 manifest gen %llu, offload point %llu", p->name,
			 (unsigned long long)m.gen, (unsigned long long)m.offload);
		tpub_settle(p, 0, m.offload);
		hs_man_free(&m);
		return;
	}
	if (status == 0) {
		hs_man_free(&m);
		status = -HS_EDATA;
	}
	tpub_settle(p, status, 0);
}

static void publish_ready(struct serve *sv, struct sstream *s, struct wait *w, int status)
{
	struct tpub *p = (struct tpub *)((char *)w - offsetof(struct tpub, w));
	uint8_t key[16];

	if (status < 0) {
		tpub_settle_wait(p, s, status);
		return;
	}
	if (s->rec.log != p->log) {
		/* Deleted and created again since the offloader looked. */
		tpub_settle(p, -HS_ENOSTREAM, 0);
		return;
	}
	p->tier1_trim = s->trim;
	p->limit = hs_serve_tier_limit(s);
	if (hs_serve_reg_change(sv, key, hs_man_key(key, p->log), fn_publish, publish_done, p) <
	    0)
		tpub_settle(p, -HS_EINTERNAL, 0);
}

static struct tpub *tpub_new(struct serve *sv, struct creq *rq, uint32_t idx, const char *name,
			     uint8_t nlen)
{
	struct tpub *p = hs_xcalloc(1, sizeof(*p));

	p->sv = sv;
	p->rq = rq;
	p->idx = idx;
	memcpy(p->name, name, nlen);
	p->nlen = nlen;
	return p;
}

void hs_serve_on_tier_publish(struct serve *sv, struct cconn *cc, const struct hs_frame *f)
{
	struct hs_clist l;
	struct hs_tier_pub_ent e;
	struct creq *rq = hs_serve_list_begin(
	    sv, cc, f, HS_MSG_TIER_PUBLISH, "malformed TIER_PUBLISH body", &l);

	if (!rq)
		return;
	for (uint32_t i = 0; hs_tier_pub_next(&l, &e) == 1; i++) {
		struct tpub *p;

		if (e.stream_len > HS_META_NAME_MAX) {
			hs_serve_creq_settle(sv, rq, i, -HS_ENOSTREAM, 0, 0, 0, "");
			continue;
		}
		p = tpub_new(sv, rq, i, e.stream, e.stream_len);
		p->log = e.log;
		p->op = e.op;
		if (e.op == HS_TIER_OP_PUBLISH)
			hs_man_entry_dec(e.body, &p->ent);
		else if (e.op == HS_TIER_OP_FOLD)
			hs_man_ref_dec(e.body, &p->ref);
		else if (e.op == HS_TIER_OP_EXPIRE)
			p->lsn = hs_get64(e.body);
		else if (hs_man_dec(e.body, e.body_len, &p->restore) < 0 || !p->restore.offload) {
			/* RESTORE: a value that does not decode (or restores
			 * nothing) is refused before any register work. */
			tpub_settle(p, -HS_EDATA, 0);
			continue;
		}
		p->w.fn = publish_ready;
		hs_serve_stream_wait(sv, e.stream, e.stream_len, 0, NULL, &p->w);
	}
	hs_serve_list_end(sv, rq);
}

static int fn_alter(void *arg, const uint8_t *cur, size_t len, uint64_t version,
		    struct hs_buf *out)
{
	struct tpub *p = arg;
	struct hs_srec r;
	int rc = hs_serve_srec_live(cur, len, &r);

	if (rc <= 0)
		return rc ? rc : -HS_ENOSTREAM;
	p->log = r.log;
	if (p->attrs.mask & HS_ATTR_RETENTION)
		r.retention_ms = p->attrs.retention_ms;
	if (p->attrs.mask & HS_ATTR_OFFLOAD)
		r.offload_after_ms = p->attrs.offload_after_ms;
	if (p->attrs.mask & HS_ATTR_OFFLOAD_SIZE)
		r.offload_size = p->attrs.offload_size;
	hs_srec_enc(&r, out);
	return 0;
}

static void alter_done(void *arg, int status, const uint8_t *val, size_t len, uint64_t version)
{
	struct tpub *p = arg;
	struct hs_srec r;

	if (status == -ECANCELED) {
		free(p);
		return;
	}
	if (status == 0 && hs_srec_dec(val, len, &r) == 1) {
		struct sstream *s = hs_serve_stream_find(p->sv, p->name, p->nlen);

		/* The stream in memory answers STREAM_INFO: keep it current. */
		if (s && s->rec.log == r.log) {
			s->rec.retention_ms = r.retention_ms;
			s->rec.offload_after_ms = r.offload_after_ms;
			s->rec.offload_size = r.offload_size;
		}
	}
	tpub_settle(p, status, status ? 0 : p->log);
}

void hs_serve_on_stream_alter(struct serve *sv, struct cconn *cc, const struct hs_frame *f)
{
	struct hs_clist l;
	struct hs_create_ent e;
	struct creq *rq = hs_serve_list_begin(
	    sv, cc, f, HS_MSG_STREAM_ALTER, "malformed STREAM_ALTER body", &l);

	if (!rq)
		return;
	for (uint32_t i = 0; hs_create_next(&l, &e) == 1; i++) {
		struct tpub *p;
		uint8_t key[HS_REG_KEY_MAX + 2];

		if (e.stream_len > HS_META_NAME_MAX) {
			hs_serve_creq_settle(sv, rq, i, -HS_ENOSTREAM, 0, 0, 0, "");
			continue;
		}
		if (e.attrs.mask &
		    ~(uint32_t)(HS_ATTR_RETENTION | HS_ATTR_OFFLOAD | HS_ATTR_OFFLOAD_SIZE)) {
			hs_serve_creq_settle(sv, rq, i, -HS_EUSAGE, 0, 0, 0, "");
			continue;
		}
		p = tpub_new(sv, rq, i, e.stream, e.stream_len);
		p->attrs = e.attrs;
		if (hs_serve_reg_change(sv, key, hs_meta_skey(key, e.stream, e.stream_len), fn_alter,
					alter_done, p) < 0)
			tpub_settle(p, -HS_EINTERNAL, 0);
	}
	hs_serve_list_end(sv, rq);
}
