/*
 * admin.c - the admin requests of hs-serve (serve.h): streams,
 * subscriptions, stats and cluster status.
 *
 * STREAMS.  A create is one register change of "s/<name>" (meta.h; the
 * proposer sends all keys changed in a turn in one frame per acceptor, so
 * 1000 creates cost one or two round trips); log ids are random below
 * 2^62.  A stream's log record "l/<id>" is created by its first activation
 * (seq.c), except for a create with HS_ATTR_RESTORE (a rebuild from a
 * Tier2 bucket, proto_client.h STREAM_CREATE): that one takes the log id
 * it is given and first writes "l/<id>" with trim = the restored offload
 * point and epoch = lce = that point's epoch, refusing (-HS_EDATA) a log
 * record that exists in another form: the id is in use here.  Listing
 * asks every peer (REG_LIST, proto.h) and merges by highest accepted
 * ballot; it is not linearizable against concurrent creates (a create
 * racing a list may or may not appear).
 *
 * SUBSCRIPTIONS.  SUB_CREATE resolves its position on the active stream
 * and creates the register "u/<name>"; SUB_DELETE removes it; SUB_INFO
 * reads it (and the session in memory, read.c); SUB_LIST is a list of the
 * "u/" keys.
 *
 * POSITIONS.  SUB_CREATE's start and STREAM_TRIM's `before` are resolved
 * as a READ's start is, by the same code (hs_serve_resolve_async, read.c
 * READ PATH): head+N and tail-N count Tier2's slots and Tier1's, @time is
 * the first record at or after the time, in Tier2 or by LOCATE to the
 * peers, the tail when there is none.  That may wait for the peers and
 * for Tier2's manifest and indexes; if the stream died meanwhile (deleted,
 * or another sequencer took it), the entry waits for the stream again
 * (which answers for what it is now: -HS_ENOSTREAM, -HS_EREDIRECT, or
 * active again), at most ADM_REWAITS times, then fails with -HS_EUNAVAIL.
 * A subscription's checkpoint is the resolved LSN; a trim removes every
 * slot below it, never at or above the tail (what was written).
 *
 * STATUS.  STREAM_INFO activates each stream (hs_serve_stream_wait), so
 * its replication figures (epoch, R, nodeset, released = LNG, lce) are the
 * live sequencer's, then reads the manifest register "t/<log>"
 * (manifest.h) for Tier2: the offload point, the expiry point, the segment
 * count, and the stream's head trim (below its first segment, never above
 * the Tier1 trim).  STREAM_LIST's infos skip that read (a register round
 * trip per listed name) and give epoch 0 for streams not active here.
 * CLUSTER_STATUS answers from memory at once: every peer link (node id,
 * state, queued bytes, counters, last error: peers.h) and the streams in
 * memory, most recently used first, at most HS_STATUS_STREAMS_MAX.
 *
 * REDIRECTS (docs/replication.md §7).  STREAM_INFO, STREAM_TRIM and
 * SUB_CREATE wait for the stream's activation here, so an entry whose
 * stream another hs-serve sequences fails with -HS_EREDIRECT.  STREAMS and
 * STATUSES entries have no text: the reply is preceded by a RESULT with
 * the request's id, status -HS_EREDIRECT and the sequencer's address as
 * message, one per address in entry order (hs-admin reconnects there and
 * repeats the refused entries once).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "manifest.h"
#include "serve.h"

#define LIST_PAGE 1000
#define ADM_REWAITS 3             /* stream waits again after it died */

/* ---- per-name entries of a list request --------------------------------- */

/* What every per-name entry of a STATUSES request carries; first in struct
 * adm and struct subadm, so one pointer is both and free() frees either. */
struct ent {
	struct serve *sv;
	struct creq *rq;
	uint32_t idx;
	char name[HS_NAME_MAX + 1];
	uint8_t nlen;
};

typedef size_t (*key_fn)(uint8_t *key, const char *name, size_t n);

static void ent_init(struct ent *e, struct serve *sv, struct creq *rq, uint32_t idx,
		     const char *name, size_t nlen)
{
	e->sv = sv;
	e->rq = rq;
	e->idx = idx;
	memcpy(e->name, name, nlen);
	e->nlen = (uint8_t)nlen;
}

/* A zeroed entry of size bytes (struct ent first); the caller owns it. */
static void *ent_new(struct serve *sv, struct creq *rq, uint32_t idx, const char *name,
		     size_t nlen, size_t size)
{
	struct ent *e = hs_xcalloc(1, size);

	ent_init(e, sv, rq, idx, name, nlen);
	return e;
}

/* Settle e's entry with status (and first when it succeeded) and free e. */
static void ent_settle(struct ent *e, int status, uint64_t first)
{
	hs_serve_creq_settle(e->sv, e->rq, e->idx, status, first, 0, 0, "");
	free(e);
}

/* Settle e's entry with the failed stream wait's status and free e; a
 * redirect carries the sequencer's address (the reply's RESULT, seq.c
 * hs_serve_creq_reply). */
static void ent_settle_wait(struct ent *e, struct sstream *s, int status)
{
	hs_serve_creq_settle(e->sv, e->rq, e->idx, status, 0, 0, 0,
			     status == -HS_EREDIRECT ? hs_serve_redirect_addr(s) : "");
	free(e);
}

/* Done callbacks: a cancelled change (the server is closing) settles
 * nothing; free e and return 1. */
static int ent_cancelled(struct ent *e, int status)
{
	if (status != -ECANCELED)
		return 0;
	free(e);
	return 1;
}

/* Change the register key(e->name) with fn, then done(e).  On failure
 * e is settled with fail and freed; returns -1 then, else 0. */
static int ent_change(struct ent *e, key_fn key, hs_reg_fn fn, hs_reg_done_fn done, int fail)
{
	uint8_t k[HS_REG_KEY_MAX + 2];

	if (hs_serve_reg_change(e->sv, k, key(k, e->name, e->nlen), fn, done, e) < 0) {
		ent_settle(e, fail, 0);
		return -1;
	}
	return 0;
}

struct creq *hs_serve_list_begin(struct serve *sv, struct cconn *cc, const struct hs_frame *f,
				 uint16_t type, const char *malformed, struct hs_clist *l)
{
	struct creq *rq;

	if (hs_msg_clist_dec(type, f->body, f->body_len, l) < 0) {
		hs_serve_proto_close(cc, malformed);
		return NULL;
	}
	rq = hs_serve_creq_new(sv, cc, f->id, type, l->n);
	if (!l->n) {
		hs_serve_creq_reply(sv, rq);
		return NULL;
	}
	rq->left++;
	return rq;
}

void hs_serve_list_end(struct serve *sv, struct creq *rq)
{
	if (--rq->left == 0)
		hs_serve_creq_reply(sv, rq);
}

/*
 * STREAM_INFO and SUB_INFO build their one reply (STREAMS, SUBS) once every
 * entry is settled: a gather holds the request and its n entries (esize
 * bytes each, zeroed), on one of the connection's lists (list) until it
 * replies; hs_serve_admin_detach() sets cc to NULL when the connection
 * closes first, and the reply is dropped.
 */
struct gather;
typedef void (*reply_fn)(struct serve *sv, struct gather *g, struct hs_buf *out);

struct gather {
	struct serve *sv;
	struct cconn *cc;
	uint64_t id;
	uint32_t n, left;
	void *e;
	reply_fn reply;
	LIST_ENTRY(gather) link;
};

/* Decode f, a list request of type, and start its gather, held once more
 * until the caller's gather_settle() as hs_serve_list_begin() is; *l
 * borrows f's body.  NULL when malformed (cc is closed with malformed). */
static struct gather *gather_new(struct serve *sv, struct cconn *cc, struct gathers *list,
				 const struct hs_frame *f, uint16_t type, const char *malformed,
				 size_t esize, reply_fn reply, struct hs_clist *l)
{
	struct gather *g;

	if (hs_msg_clist_dec(type, f->body, f->body_len, l) < 0) {
		hs_serve_proto_close(cc, malformed);
		return NULL;
	}
	g = hs_xcalloc(1, sizeof(*g));
	g->sv = sv;
	g->cc = cc;
	g->id = f->id;
	g->n = l->n;
	g->left = l->n + 1;
	g->e = hs_xcalloc(l->n ? l->n : 1, esize);
	g->reply = reply;
	LIST_INSERT_HEAD(list, g, link);
	return g;
}

/* An entry of g (or the caller's hold) is settled: after the last, reply
 * (unless the connection is gone) and free g. */
static void gather_settle(struct gather *g)
{
	if (--g->left)
		return;
	if (g->cc)
		LIST_REMOVE(g, link);
	if (g->cc && !hs_conn_closing(g->cc->c))
		g->reply(g->sv, g, hs_conn_out(g->cc->c));
	free(g->e);
	free(g);
}

void hs_serve_redirect_note(struct hs_redirects *r, int status, const char *addr)
{
	if (status != -HS_EREDIRECT || !addr || !addr[0] || !strcmp(addr, r->last))
		return;
	hs_msg_result_encf(r->out, r->id, -HS_EREDIRECT, "%s", addr);
	r->last = addr;
}

/* A list of names, each one register change: names too long for a key
 * settle with too_long; every other gets a zeroed context of ctx_size
 * (struct ent first) and the change of key(name) with fn and done. */
static void for_each_name(struct serve *sv, struct cconn *cc, const struct hs_frame *f,
			  uint16_t type, const char *malformed, int too_long, key_fn key,
			  hs_reg_fn fn, hs_reg_done_fn done, size_t ctx_size)
{
	struct hs_clist l;
	struct hs_name_ent e;
	struct creq *rq = hs_serve_list_begin(sv, cc, f, type, malformed, &l);

	if (!rq)
		return;
	for (uint32_t i = 0; hs_name_next(&l, &e) == 1; i++) {
		if (e.name_len > HS_META_NAME_MAX) {
			hs_serve_creq_settle(sv, rq, i, too_long, 0, 0, 0, "");
			continue;
		}
		ent_change(ent_new(sv, rq, i, e.name, e.name_len, ctx_size), key, fn, done,
			   -HS_EDATA);
	}
	hs_serve_list_end(sv, rq);
}

/* ---- stream admin ------------------------------------------------------- */

int hs_serve_srec_live(const uint8_t *p, size_t len, struct hs_srec *r)
{
	int rc = hs_srec_dec(p, len, r);

	return rc == 1 && (r->flags & HS_SREC_DELETED) ? 0 : rc;
}

int hs_serve_urec_live(const uint8_t *p, size_t len, struct hs_urec *r)
{
	int rc = hs_urec_dec(p, len, r);

	return rc == 1 && (r->flags & HS_UREC_DELETED) ? 0 : rc;
}

/*
 * STREAM_TRIM and SUB_CREATE resolve a position on their stream once it is
 * active here (POSITIONS): wait for the stream, resolve pos on it, then
 * done(sv, e, s, lsn) with the stream (active, held during the call).  A
 * stream that died meanwhile is waited for again, at most ADM_REWAITS
 * times.  A failure settles the entry e (which holds the struct resolve).
 */
typedef void (*resolved_fn)(struct serve *sv, struct ent *e, struct sstream *s, uint64_t lsn);

struct resolve {
	struct ent *e;
	struct wait w;
	struct hs_pos pos;
	const char *stream;       /* the stream's name, in e's allocation */
	uint8_t slen;
	struct sstream *s;        /* the stream pos is resolved on */
	int rewaits;
	resolved_fn done;
};

static void resolved(struct serve *sv, void *arg, int status, uint64_t lsn)
{
	struct resolve *r = arg;

	if (status < 0)
		ent_settle(r->e, status, 0);
	else if (r->s->state == S_ACTIVE)
		r->done(sv, r->e, r->s, lsn);
	else if (r->rewaits++ >= ADM_REWAITS)
		ent_settle(r->e, -HS_EUNAVAIL, 0);
	else /* died meanwhile: it answers for what it is now */
		hs_serve_stream_wait(sv, r->stream, r->slen, 0, NULL, &r->w);
}

static void resolve_ready(struct serve *sv, struct sstream *s, struct wait *w, int status)
{
	struct resolve *r = (struct resolve *)((char *)w - offsetof(struct resolve, w));

	if (status < 0) {
		ent_settle_wait(r->e, s, status);
		return;
	}
	r->s = s;
	hs_serve_resolve_async(sv, s, &r->pos, resolved, r);
}

/* Start r (in e's allocation) for the stream named stream[0..slen), also
 * in e's allocation. */
static void resolve_start(struct serve *sv, struct ent *e, struct resolve *r, const char *stream,
			  size_t slen, const struct hs_pos *pos, resolved_fn done)
{
	r->e = e;
	r->stream = stream;
	r->slen = (uint8_t)slen;
	r->pos = *pos;
	r->done = done;
	r->w.fn = resolve_ready;
	hs_serve_stream_wait(sv, stream, slen, 0, NULL, &r->w);
}

struct adm {
	struct ent e;             /* first (struct ent) */
	uint64_t log;             /* new or existing log id */
	struct hs_stream_attrs attrs;
	struct wait w;            /* info */
	struct resolve r;         /* trim */
};

static int fn_create(void *arg, const uint8_t *cur, size_t len, uint64_t version,
		     struct hs_buf *out)
{
	struct adm *a = arg;
	struct hs_srec r;
	int rc = hs_serve_srec_live(cur, len, &r);

	if (rc < 0)
		return rc;
	if (rc) {
		a->log = r.log;
		return -HS_EEXIST;
	}
	hs_serve_srec_from_attrs(a->e.sv, &a->attrs, a->log, &r);
	hs_srec_enc(&r, out);
	return 0;
}

static void create_done(void *arg, int status, const uint8_t *val, size_t len, uint64_t version)
{
	struct adm *a = arg;

	if (!ent_cancelled(&a->e, status))
		ent_settle(&a->e, status, status == 0 || status == -HS_EEXIST ? a->log : 0);
}

/* A create with HS_ATTR_RESTORE (hs-offload --rebuild): the log record
 * that makes Tier1 start after the restored offload point, written before
 * the stream record exists, so the log id is claimed first.  Only an
 * absent record, or one exactly as a restore writes it (a retry), will
 * do: any other means the log id is in use here. */
static int fn_restore_lrec(void *arg, const uint8_t *cur, size_t len, uint64_t version,
			   struct hs_buf *out)
{
	struct adm *a = arg;
	uint64_t lsn = a->attrs.restore_lsn;
	uint32_t epoch = (uint32_t)HS_LSN_EPOCH(lsn);
	struct hs_lrec r;
	int rc = hs_lrec_dec(cur, len, &r);

	if (rc == 1) {
		rc = r.trim == lsn && r.epoch == epoch && r.lce == epoch && !r.nepochs && !r.owner
			     ? HS_REG_SAME
			     : -HS_EDATA;
	} else if (rc == 0) {
		/* No epoch entries: every epoch <= epoch is clean and empty,
		 * so the first activation takes epoch + 1 and recovers
		 * nothing; its LSNs follow every restored one. */
		r.epoch = epoch;
		r.lce = epoch;
		r.trim = lsn;
		hs_lrec_enc(&r, out);
	}
	hs_lrec_free(&r);
	return rc;
}

static void restore_lrec_done(void *arg, int status, const uint8_t *val, size_t len,
			      uint64_t version)
{
	struct adm *a = arg;

	if (ent_cancelled(&a->e, status))
		return;
	if (status < 0) {
		hs_warn("stream '%s': cannot restore log %llu: %s", a->e.name,
			(unsigned long long)a->log,
			status == -HS_EDATA ? "the log id is in use" : hs_strerror(status));
		ent_settle(&a->e, status, 0);
		return;
	}
	if (ent_change(&a->e, hs_meta_skey, fn_create, create_done, -HS_EDATA) == 0)
		a->e.sv->creates++;
}

void hs_serve_on_create(struct serve *sv, struct cconn *cc, const struct hs_frame *f)
{
	struct hs_clist l;
	struct hs_create_ent e;
	struct creq *rq =
	    hs_serve_list_begin(sv, cc, f, HS_MSG_STREAM_CREATE,
				"malformed STREAM_CREATE body", &l);

	if (!rq)
		return;
	for (uint32_t i = 0; hs_create_next(&l, &e) == 1; i++) {
		struct adm *a;

		if (e.stream_len > HS_META_NAME_MAX) {
			hs_serve_creq_settle(sv, rq, i, -HS_EDATA, 0, 0, 0, "");
			continue;
		}
		if ((e.attrs.mask & HS_ATTR_REPLICATION) &&
		    (e.attrs.replication < 1 || e.attrs.replication > sv->npeers ||
		     e.attrs.replication > HS_NODESET_MAX)) {
			/* R copies need R distinct peers. */
			hs_serve_creq_settle(sv, rq, i, -HS_ECONFIG, 0, 0, 0, "");
			continue;
		}
		a = ent_new(sv, rq, i, e.stream, e.stream_len, sizeof(*a));
		a->attrs = e.attrs;
		if (e.attrs.mask & HS_ATTR_RESTORE) {
			uint8_t k[16];

			a->log = e.attrs.restore_log;
			if (hs_serve_reg_change(sv, k, hs_meta_lkey(k, a->log), fn_restore_lrec,
						restore_lrec_done, a) < 0)
				ent_settle(&a->e, -HS_EINTERNAL, 0);
			continue;
		}
		a->log = hs_serve_new_log_id();
		if (ent_change(&a->e, hs_meta_skey, fn_create, create_done, -HS_EDATA) == 0)
			sv->creates++;
	}
	hs_serve_list_end(sv, rq);
}

static int fn_delete(void *arg, const uint8_t *cur, size_t len, uint64_t version,
		     struct hs_buf *out)
{
	struct adm *a = arg;
	struct hs_srec r;
	int rc = hs_serve_srec_live(cur, len, &r);

	if (rc <= 0)
		return rc ? rc : -HS_ENOSTREAM;
	a->log = r.log;
	r.flags |= HS_SREC_DELETED;
	hs_srec_enc(&r, out);
	return 0;
}

/* TRIM to every UP peer: any of them may hold copies of the log. */
static void trim_peer(struct serve *sv, uint64_t log, uint64_t trim)
{
	struct hs_trim m = { .log = log, .trim = trim };

	/* With a link down its trim is lost: the register keeps the deleted
	 * flag and the trim point, so nothing reads below it again. */
	for (int i = 0; i < sv->npeers; i++) {
		struct hs_buf *out = hs_peers_out(sv->peers, i);

		if (out)
			hs_msg_trim_enc(out, hs_peers_next_id(sv->peers), &m);
	}
}

static void delete_done(void *arg, int status, const uint8_t *val, size_t len, uint64_t version)
{
	struct adm *a = arg;
	struct serve *sv = a->e.sv;

	if (ent_cancelled(&a->e, status))
		return;
	if (status == 0) {
		struct sstream *s = hs_serve_stream_find(sv, a->e.name, a->e.nlen);

		trim_peer(sv, a->log, UINT64_MAX - 1);
		if (s && s->state != S_LOOKUP)
			hs_serve_stream_kill(sv, s, -HS_ENOSTREAM);
		sv->deletes++;
	}
	ent_settle(&a->e, status, 0);
}

void hs_serve_on_delete(struct serve *sv, struct cconn *cc, const struct hs_frame *f)
{
	for_each_name(sv, cc, f, HS_MSG_STREAM_DELETE, "malformed STREAM_DELETE body",
		      -HS_ENOSTREAM, hs_meta_skey, fn_delete, delete_done, sizeof(struct adm));
}

/* ---- stream info and trim ------------------------------------------------ */

/* The replication figures of s into in (epoch 0 when s is not active). */
static void fill_repl(const struct sstream *s, struct hs_stream_info *in)
{
	in->lce = s->lr.lce;
	if (s->state != S_ACTIVE)
		return;
	in->epoch = s->epoch;
	in->released = s->released;
	in->r = s->r;
	in->nn = s->nn > HS_INFO_NODESET_MAX ? HS_INFO_NODESET_MAX : s->nn;
	in->r = in->r > in->nn ? in->nn : in->r;
	memcpy(in->nodes, s->ns, in->nn * sizeof(in->nodes[0]));
}

/* What s in memory knows; Tier2 is added by tier_fill (STREAM_INFO). */
static void fill_info(const struct sstream *s, struct hs_stream_info *in)
{
	memset(in, 0, sizeof(*in));
	in->log = s->rec.log;
	/* Without a size policy the info is the one old clients know. */
	in->attrs.mask = HS_ATTR_ALL & ~(s->rec.offload_size ? 0u : HS_ATTR_OFFLOAD_SIZE);
	in->attrs.replication = s->rec.replication ? s->rec.replication : 1;
	in->attrs.durability = s->rec.durability ? s->rec.durability : HS_DUR_SYNC;
	in->attrs.retention_ms = s->rec.retention_ms;
	in->attrs.offload_after_ms = s->rec.offload_after_ms;
	in->attrs.offload_size = s->rec.offload_size;
	in->head = hs_serve_stream_head(s);
	in->tail = hs_serve_stream_tail(s);
	in->trim = s->trim;
	in->tier1_trim = s->trim;
	in->offload = 0;
	in->records = hs_serve_stream_count(s);
	in->bytes = UINT64_MAX;
	in->created_ms = s->rec.created_ms;
	fill_repl(s, in);
}

/* Add the manifest register's value (val[0..len), manifest.h) to in: the
 * offload point, Tier2's expiry point and segment count, and the stream's
 * head trim, which is below its first segment when it has any.  A value
 * that does not decode leaves in as Tier1 alone. */
static void tier_fill(struct hs_stream_info *in, const uint8_t *val, size_t len)
{
	struct hs_man m;
	uint64_t first = 0, t2records = 0;
	int all_counted = 1;

	if (hs_man_dec(val, len, &m) < 0)
		goto out;
	in->offload = m.offload;
	in->tier2_expired = m.expired;
	in->tier2_segments = m.nentries;
	for (uint16_t k = 0; k < m.nrefs; k++)
		in->tier2_segments += m.refs[k].nentries;
	/* A folded object records no record counts, only its entries. */
	all_counted = !m.nrefs;
	for (uint16_t k = 0; k < m.nentries; k++)
		t2records += m.entries[k].records;
	if (m.nrefs)
		first = m.refs[0].first_lsn;
	else if (m.nentries)
		first = m.entries[0].first_lsn;
	if (first) {
		/* Everything below the first segment is gone from both tiers
		 * (expired, or trimmed from Tier1 before being offloaded). */
		in->trim = first - 1 > m.expired ? first - 1 : m.expired;
		if (in->trim > in->tier1_trim)
			in->trim = in->tier1_trim; /* never claim more than Tier1 lost */
		if (in->head > first)
			in->head = first;
		if (in->records != UINT64_MAX)
			in->records = all_counted ? in->records + t2records : UINT64_MAX;
	}
	/* No segment: Tier1 alone says what is gone (an expiry beyond the
	 * Tier1 trim, after an offloader died before trimming, leaves those
	 * LSNs readable in Tier1). */
out:
	hs_man_free(&m);
}

/* STREAM_INFO: one STREAMS reply for the whole request (a gather). */
struct infoent {
	struct adm a;             /* a.e.rq: the gather */
	int32_t status;
	const char *redirect;     /* -HS_EREDIRECT: the address (sv->owners) */
	struct hs_stream_info info;
};

static void info_reply(struct serve *sv, struct gather *g, struct hs_buf *out)
{
	struct infoent *e = g->e;
	struct hs_redirects rd = { out, g->id, "" };
	struct hs_msg_wr w;

	for (uint32_t i = 0; i < g->n; i++)
		hs_serve_redirect_note(&rd, e[i].status, e[i].redirect);
	hs_msg_streams_begin(&w, out, g->id, 0);
	for (uint32_t i = 0; i < g->n; i++)
		hs_msg_streams_add(&w, e[i].status, e[i].a.e.name, e[i].a.e.nlen,
				   e[i].status ? NULL : &e[i].info);
	hs_msg_wr_end(&w);
}

static void infoent_settle(struct infoent *ie, int status)
{
	ie->status = status;
	gather_settle((struct gather *)ie->a.e.rq);
}

static int fn_man_read(void *arg, const uint8_t *cur, size_t len, uint64_t version,
		       struct hs_buf *out)
{
	return HS_REG_SAME;
}

static void info_man_done(void *arg, int status, const uint8_t *val, size_t len,
			  uint64_t version)
{
	struct infoent *ie = arg;

	if (status == -ECANCELED)
		return; /* the server is closing: nothing is sent */
	if (status == 0)
		tier_fill(&ie->info, val, len);
	infoent_settle(ie, status);
}

/* Active: the figures in memory, then the manifest register "t/<log>"
 * for Tier2 (one register read; an absent register is the empty
 * manifest). */
static void info_ready(struct serve *sv, struct sstream *s, struct wait *w, int status)
{
	struct adm *a = (struct adm *)((char *)w - offsetof(struct adm, w));
	struct infoent *ie = (struct infoent *)a;
	uint8_t key[16];

	if (status < 0) {
		if (status == -HS_EREDIRECT)
			ie->redirect = hs_serve_redirect_addr(s);
		infoent_settle(ie, status);
		return;
	}
	fill_info(s, &ie->info);
	if (hs_serve_reg_change(sv, key, hs_man_key(key, s->rec.log), fn_man_read, info_man_done,
				ie) < 0)
		infoent_settle(ie, -HS_EINTERNAL);
}

void hs_serve_on_info(struct serve *sv, struct cconn *cc, const struct hs_frame *f)
{
	struct hs_clist l;
	struct hs_name_ent e;
	struct gather *g = gather_new(sv, cc, &cc->infos, f, HS_MSG_STREAM_INFO,
				      "malformed STREAM_INFO body", sizeof(struct infoent),
				      info_reply, &l);
	struct infoent *ie;

	if (!g)
		return;
	ie = g->e;
	for (uint32_t i = 0; hs_name_next(&l, &e) == 1; i++) {
		struct adm *a = &ie[i].a;

		ent_init(&a->e, sv, (struct creq *)g, i, e.name, e.name_len);
		a->w.fn = info_ready;
		if (e.name_len > HS_META_NAME_MAX) {
			infoent_settle(&ie[i], -HS_ENOSTREAM);
			continue;
		}
		hs_serve_stream_wait(sv, e.name, e.name_len, 0, NULL, &a->w);
	}
	gather_settle(g);
}

static int fn_trim(void *arg, const uint8_t *cur, size_t len, uint64_t version,
		   struct hs_buf *out)
{
	struct adm *a = arg;
	struct hs_lrec r;
	int rc = hs_lrec_dec(cur, len, &r);

	if (rc < 0)
		return rc;
	if (r.trim >= a->log) {
		hs_lrec_free(&r);
		return HS_REG_SAME;
	}
	r.trim = a->log;
	hs_lrec_compact(&r);
	hs_lrec_enc(&r, out);
	hs_lrec_free(&r);
	return 0;
}

static void trim_done(void *arg, int status, const uint8_t *val, size_t len, uint64_t version)
{
	struct adm *a = arg;
	struct hs_lrec r;

	if (ent_cancelled(&a->e, status))
		return;
	if (status == 0 && hs_lrec_dec(val, len, &r) == 1) {
		struct sstream *s = hs_serve_stream_find(a->e.sv, a->e.name, a->e.nlen);

		if (s && r.trim > s->trim) {
			s->trim = r.trim;
			hs_serve_mem_mark(a->e.sv, s); /* trimmed followers go to the peer */
		}
		trim_peer(a->e.sv, a->attrs.retention_ms /* the log id */, r.trim);
		ent_settle(&a->e, 0, r.trim);
		hs_lrec_free(&r);
	} else {
		ent_settle(&a->e, status ? status : -HS_EDATA, 0);
	}
}

/* The trim position is resolved (struct resolve): trim below it. */
static void trim_resolved(struct serve *sv, struct ent *e, struct sstream *s, uint64_t before)
{
	struct adm *a = (struct adm *)e;
	uint8_t key[16];
	uint64_t t = before ? before - 1 : 0;

	/* Never past what was written: the tail is the limit. */
	if (t >= hs_serve_stream_tail(s))
		t = hs_serve_stream_tail(s) - 1;
	if (t <= s->trim) {
		ent_settle(&a->e, 0, s->trim);
		return;
	}
	a->log = t;                        /* the new trim point, for fn_trim */
	a->attrs.retention_ms = s->rec.log; /* the log id, for trim_done */
	if (hs_serve_reg_change(sv, key, hs_meta_lkey(key, s->rec.log), fn_trim, trim_done, a) <
	    0)
		ent_settle(&a->e, -HS_EINTERNAL, 0);
}

void hs_serve_on_trim(struct serve *sv, struct cconn *cc, const struct hs_frame *f)
{
	struct hs_clist l;
	struct hs_trim_ent e;
	struct creq *rq = hs_serve_list_begin(sv, cc, f, HS_MSG_STREAM_TRIM,
					      "malformed STREAM_TRIM body", &l);

	if (!rq)
		return;
	for (uint32_t i = 0; hs_trim_next(&l, &e) == 1; i++) {
		struct adm *a;

		if (e.stream_len > HS_META_NAME_MAX) {
			hs_serve_creq_settle(sv, rq, i, -HS_ENOSTREAM, 0, 0, 0, "");
			continue;
		}
		a = ent_new(sv, rq, i, e.stream, e.stream_len, sizeof(*a));
		resolve_start(sv, &a->e, &a->r, a->e.name, a->e.nlen, &e.before, trim_resolved);
	}
	hs_serve_list_end(sv, rq);
}

struct subadm {
	struct ent e;             /* first (struct ent) */
	struct resolve r;         /* create: the start on the stream */
	struct hs_urec rec;       /* what to write */
};

static int fn_sub_create(void *arg, const uint8_t *cur, size_t len, uint64_t version,
			 struct hs_buf *out)
{
	struct subadm *a = arg;
	struct hs_urec r;
	int rc = hs_serve_urec_live(cur, len, &r);

	if (rc < 0)
		return rc;
	if (rc)
		return -HS_EEXIST;
	hs_urec_enc(&a->rec, out);
	return 0;
}

static void subcreate_done(void *arg, int status, const uint8_t *val, size_t len,
			   uint64_t version)
{
	struct subadm *a = arg;

	if (!ent_cancelled(&a->e, status))
		ent_settle(&a->e, status, status ? 0 : a->rec.checkpoint);
}

/* The start is resolved (struct resolve): create u/<sub> there. */
static void subcreate_resolved(struct serve *sv, struct ent *e, struct sstream *s, uint64_t lsn)
{
	struct subadm *a = (struct subadm *)e;

	a->rec.log = s->rec.log;
	a->rec.checkpoint = lsn;
	if (a->rec.checkpoint < HS_LSN(1, 1))
		a->rec.checkpoint = HS_LSN(1, 1);
	a->rec.created_ms = hs_wall_ms();
	ent_change(&a->e, hs_serve_sub_key, fn_sub_create, subcreate_done, -HS_EINTERNAL);
}

void hs_serve_on_sub_create(struct serve *sv, struct cconn *cc, const struct hs_frame *f)
{
	struct hs_clist l;
	struct hs_subcreate_ent e;
	struct creq *rq = hs_serve_list_begin(sv, cc, f, HS_MSG_SUB_CREATE,
					      "malformed SUB_CREATE body", &l);

	if (!rq)
		return;
	for (uint32_t i = 0; hs_sub_create_next(&l, &e) == 1; i++) {
		struct subadm *a;

		if (e.sub_len > HS_META_NAME_MAX || e.stream_len > HS_META_NAME_MAX) {
			int st = e.sub_len > HS_META_NAME_MAX ? -HS_EDATA : -HS_ENOSTREAM;

			hs_serve_creq_settle(sv, rq, i, st, 0, 0, 0, "");
			continue;
		}
		a = ent_new(sv, rq, i, e.sub, e.sub_len, sizeof(*a));
		a->rec.ack_timeout_ms = e.ack_timeout_ms ? e.ack_timeout_ms : HS_SUB_ACK_TIMEOUT_DEFAULT;
		a->rec.max_unacked = e.max_unacked ? e.max_unacked : HS_SUB_MAX_UNACKED_DEFAULT;
		memcpy(a->rec.stream, e.stream, e.stream_len);
		a->rec.stream_len = e.stream_len;
		/* HS_POS_NONE (no --from) is the tail. */
		resolve_start(sv, &a->e, &a->r, a->rec.stream, a->rec.stream_len, &e.from,
			      subcreate_resolved);
	}
	hs_serve_list_end(sv, rq);
}

static int fn_sub_delete(void *arg, const uint8_t *cur, size_t len, uint64_t version,
			 struct hs_buf *out)
{
	struct hs_urec r;
	int rc = hs_serve_urec_live(cur, len, &r);

	if (rc <= 0)
		return rc ? rc : -HS_ENOENT;
	r.flags |= HS_UREC_DELETED;
	hs_urec_enc(&r, out);
	return 0;
}

static void subdelete_done(void *arg, int status, const uint8_t *val, size_t len,
			   uint64_t version)
{
	struct subadm *a = arg;
	struct serve *sv = a->e.sv;

	if (ent_cancelled(&a->e, status))
		return;
	if (status == 0) {
		struct ssub *u = hs_serve_ssub_find(sv, a->e.name, a->e.nlen);

		if (u) {
			/* Nothing more to persist for it. */
			u->want = u->rec.checkpoint;
			if (u->sess)
				hs_serve_read_end(sv, u->sess, -HS_ENOENT);
		}
	}
	ent_settle(&a->e, status, 0);
}

void hs_serve_on_sub_delete(struct serve *sv, struct cconn *cc, const struct hs_frame *f)
{
	for_each_name(sv, cc, f, HS_MSG_SUB_DELETE, "malformed SUB_DELETE body", -HS_ENOENT,
		      hs_serve_sub_key, fn_sub_delete, subdelete_done, sizeof(struct subadm));
}

/* The info of a subscription: the register, with the session's figures
 * when one runs here. */
static void sub_fill_info(struct serve *sv, const char *name, size_t n, const struct hs_urec *rec,
			  struct hs_sub_info *in)
{
	struct ssub *u = hs_serve_ssub_find(sv, name, n);

	memset(in, 0, sizeof(*in));
	in->stream = rec->stream;
	in->stream_len = rec->stream_len;
	in->ack_timeout_ms = rec->ack_timeout_ms;
	in->max_unacked = rec->max_unacked;
	in->checkpoint = rec->checkpoint;
	if (!u || u->rec.created_ms != rec->created_ms)
		return;
	if (u->want > in->checkpoint)
		in->checkpoint = u->want;
	if (u->live) {
		uint64_t c = hs_subwin_checkpoint(&u->win);

		if (c > in->checkpoint)
			in->checkpoint = c;
		in->delivered = u->win.delivered;
		in->unacked = u->win.unacked > UINT32_MAX ? UINT32_MAX : (uint32_t)u->win.unacked;
	}
	in->consumers = u->sess ? 1 : 0;
}

/* SUB_INFO: one SUBS reply once every lookup is back (a gather). */
struct subent {
	struct gather *q;
	int32_t status;
	struct hs_urec rec;
	char name[HS_NAME_MAX + 1];
	uint8_t nlen;
};

static void subinfo_reply(struct serve *sv, struct gather *g, struct hs_buf *out)
{
	struct subent *e = g->e;
	struct hs_msg_wr w;

	hs_msg_subs_begin(&w, out, g->id, 0);
	for (uint32_t i = 0; i < g->n; i++) {
		struct hs_sub_info in;

		if (!e[i].status)
			sub_fill_info(sv, e[i].name, e[i].nlen, &e[i].rec, &in);
		hs_msg_subs_add(&w, e[i].status, e[i].name, e[i].nlen, e[i].status ? NULL : &in);
	}
	hs_msg_wr_end(&w);
}

static void subinfo_done(void *arg, int status, const uint8_t *val, size_t len, uint64_t version)
{
	struct subent *e = arg;

	if (status == -ECANCELED)
		return;
	if (status == 0 && hs_urec_dec(val, len, &e->rec) != 1)
		status = -HS_EDATA;
	e->status = status;
	gather_settle(e->q);
}

void hs_serve_on_sub_info(struct serve *sv, struct cconn *cc, const struct hs_frame *f)
{
	struct hs_clist l;
	struct hs_name_ent ne;
	struct gather *g = gather_new(sv, cc, &cc->subreqs, f, HS_MSG_SUB_INFO,
				      "malformed SUB_INFO body", sizeof(struct subent),
				      subinfo_reply, &l);
	struct subent *se;

	if (!g)
		return;
	se = g->e;
	for (uint32_t i = 0; hs_name_next(&l, &ne) == 1; i++) {
		struct subent *e = &se[i];
		uint8_t key[HS_REG_KEY_MAX + 2];

		e->q = g;
		memcpy(e->name, ne.name, ne.name_len);
		e->nlen = ne.name_len;
		if (ne.name_len > HS_META_NAME_MAX ||
		    hs_serve_reg_change(sv, key, hs_serve_sub_key(key, ne.name, ne.name_len),
					hs_serve_fn_sub_exists, subinfo_done, e) < 0) {
			e->status = -HS_ENOENT;
			gather_settle(g);
		}
	}
	gather_settle(g);
}

/* ---- stream list (REG_LIST to every peer, merged) --------------------- */

struct lent {
	uint8_t key[HS_REG_KEY_MAX];
	uint8_t klen;
	struct hs_reg_ballot b;
	struct hs_srec rec;
	struct hs_urec urec;      /* SUB_LIST */
	int ok;                   /* decoded and not deleted */
};

struct listreq {
	struct serve *sv;
	struct cconn *cc;
	uint64_t id;
	uint32_t max;
	uint8_t flags;
	uint16_t type;            /* STREAM_LIST or SUB_LIST */
	char filter[HS_NAME_MAX + 1]; /* SUB_LIST: only this stream's */
	uint8_t filter_len;
	int waiting, replies, failed;
	struct lent *e;
	size_t n, cap;
	int cut_set;              /* some peer had more: only keys <= cut */
	uint8_t cut[HS_REG_KEY_MAX];
	uint8_t cutlen;
	LIST_ENTRY(listreq) link;
};

static int keycmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);

	return c ? c : (an > bn) - (an < bn);
}

static int lent_cmp(const void *x, const void *y)
{
	const struct lent *a = x, *b = y;
	int c = keycmp(a->key, a->klen, b->key, b->klen);

	return c ? c : -hs_reg_ballot_cmp(&a->b, &b->b); /* highest ballot first */
}

static void list_finish(struct serve *sv, struct listreq *q)
{
	int quorum = sv->npeers / 2 + 1;
	struct hs_msg_wr w;
	uint32_t sent = 0;
	int more = 0;

	if (q->cc)
		LIST_REMOVE(q, link);
	if (!q->cc || hs_conn_closing(q->cc->c))
		goto out;
	if (q->replies < quorum) {
		hs_msg_result_encf(hs_conn_out(q->cc->c), q->id, -HS_EUNAVAIL,
				   "no quorum of peers answered (%d of %d)", q->replies, sv->npeers);
		goto out;
	}
	qsort(q->e, q->n, sizeof(*q->e), lent_cmp);
	if (q->type == HS_MSG_SUB_LIST)
		hs_msg_subs_begin(&w, hs_conn_out(q->cc->c), q->id, 0);
	else
		hs_msg_streams_begin(&w, hs_conn_out(q->cc->c), q->id, 0);
	for (size_t i = 0; i < q->n; i++) {
		struct lent *e = &q->e[i];
		struct hs_stream_info in, *inp = NULL;

		if (i && e->klen == q->e[i - 1].klen && !memcmp(e->key, q->e[i - 1].key, e->klen))
			continue; /* a lower ballot of the same key */
		if (q->cut_set && keycmp(e->key, e->klen, q->cut, q->cutlen) > 0) {
			more = 1;
			break;
		}
		if (!e->ok)
			continue;
		if (sent == q->max) {
			more = 1;
			break;
		}
		if (q->type == HS_MSG_SUB_LIST) {
			struct hs_sub_info si;

			if (q->filter_len && (e->urec.stream_len != q->filter_len ||
					      memcmp(e->urec.stream, q->filter, q->filter_len)))
				continue;
			if (q->flags & HS_LIST_INFO)
				sub_fill_info(sv, (const char *)e->key + 2, e->klen - 2u, &e->urec, &si);
			hs_msg_subs_add(&w, 0, (const char *)e->key + 2, e->klen - 2u,
					q->flags & HS_LIST_INFO ? &si : NULL);
			sent++;
			continue;
		}
		if (q->flags & HS_LIST_INFO) {
			struct sstream *s =
			    hs_serve_stream_find(sv, (const char *)e->key + 2, e->klen - 2u);

			if (s && s->state == S_ACTIVE && s->rec.log == e->rec.log) {
				fill_info(s, &in);
			} else {
				/* Not active here: what the record says; positions unknown. */
				memset(&in, 0, sizeof(in));
				in.log = e->rec.log;
				in.attrs.replication = e->rec.replication;
				in.attrs.durability = e->rec.durability;
				in.records = in.bytes = UINT64_MAX;
				in.created_ms = e->rec.created_ms;
			}
			/* Policies from the record just read: s->rec misses a
			 * STREAM_ALTER made through another hs-serve, and
			 * hs-offload takes its policies from this list. */
			in.attrs.mask = HS_ATTR_ALL & ~(e->rec.offload_size ? 0u
							    : HS_ATTR_OFFLOAD_SIZE);
			in.attrs.retention_ms = e->rec.retention_ms;
			in.attrs.offload_after_ms = e->rec.offload_after_ms;
			in.attrs.offload_size = e->rec.offload_size;
			inp = &in;
		}
		hs_msg_streams_add(&w, 0, (const char *)e->key + 2, e->klen - 2u, inp);
		sent++;
	}
	if (more)
		w.b->data[w.start + HS_FRAME_HDR] = HS_LIST_MORE;
	hs_msg_wr_end(&w);
out:
	free(q->e);
	free(q);
}

static void on_listed(void *arg, int idx, const struct hs_frame *f)
{
	struct listreq *q = arg;
	struct hs_reg_listed m;
	struct hs_reg_entry e;
	const uint8_t *last = NULL;
	uint8_t lastlen = 0;

	if (f && f->type == HS_MSG_REG_LISTED && hs_msg_reg_listed_dec(f->body, f->body_len, &m) == 0 &&
	    m.status == 0) {
		q->replies++;
		while (hs_reg_listed_next(&m, &e) == 1) {
			struct lent *x;
			const uint8_t *d;
			size_t dl;

			hs_serve_grow((void **)&q->e, &q->cap, q->n + 1, sizeof(*q->e));
			x = &q->e[q->n++];
			memcpy(x->key, e.key, e.key_len);
			x->klen = e.key_len;
			x->b = e.accepted;
			x->ok = e.key_len > 2 && hs_reg_unwrap(e.val.data, e.val.len, &d, &dl) == 0 &&
				(q->type == HS_MSG_SUB_LIST ? hs_serve_urec_live(d, dl, &x->urec)
							    : hs_serve_srec_live(d, dl, &x->rec)) == 1;
			last = e.key;
			lastlen = e.key_len;
		}
		if (m.more && last &&
		    (!q->cut_set || keycmp(last, lastlen, q->cut, q->cutlen) < 0)) {
			q->cut_set = 1;
			memcpy(q->cut, last, lastlen);
			q->cutlen = lastlen;
		}
	} else {
		q->failed++;
	}
	if (--q->waiting == 0)
		list_finish(q->sv, q);
}

void hs_serve_on_list(struct serve *sv, struct cconn *cc, const struct hs_frame *f)
{
	struct hs_list_req m;
	struct listreq *q;
	struct hs_reg_list rl = { 0 };
	uint8_t prefix[HS_REG_KEY_MAX + 2], after[HS_REG_KEY_MAX + 2];

	if ((f->type == HS_MSG_SUB_LIST ? hs_msg_sub_list_dec(f->body, f->body_len, &m)
					 : hs_msg_stream_list_dec(f->body, f->body_len, &m)) < 0) {
		hs_serve_proto_close(cc, f->type == HS_MSG_SUB_LIST ? "malformed SUB_LIST body"
								    : "malformed STREAM_LIST body");
		return;
	}
	q = hs_xcalloc(1, sizeof(*q));
	q->sv = sv;
	q->cc = cc;
	q->id = f->id;
	q->max = m.max && m.max < LIST_PAGE ? m.max : LIST_PAGE;
	q->flags = m.flags;
	q->type = f->type;
	LIST_INSERT_HEAD(&cc->lists, q, link);
	rl.prefix = prefix;
	rl.after = after;
	if (f->type == HS_MSG_SUB_LIST) {
		/* The filter is a stream name, checked per entry. */
		memcpy(q->filter, m.filter, m.filter_len);
		q->filter_len = m.filter_len;
		rl.prefix_len = (uint8_t)hs_meta_ukey(prefix, "", 0);
		rl.after_len = (uint8_t)hs_meta_ukey(after, m.cursor, m.cursor_len > HS_META_NAME_MAX ? HS_META_NAME_MAX : m.cursor_len);
	} else {
		rl.prefix_len = (uint8_t)hs_meta_skey(prefix, m.filter, m.filter_len > HS_META_NAME_MAX ? HS_META_NAME_MAX : m.filter_len);
		rl.after_len = (uint8_t)hs_meta_skey(after, m.cursor, m.cursor_len > HS_META_NAME_MAX ? HS_META_NAME_MAX : m.cursor_len);
	}
	/* One more than the page, so a full page knows whether more follow. */
	rl.max = q->max + 1;
	q->waiting = 1;
	for (int i = 0; i < sv->npeers; i++) {
		struct hs_buf *out = hs_peers_out(sv->peers, i);
		uint64_t id;

		if (!out)
			continue;
		id = hs_peers_next_id(sv->peers);
		q->waiting++;
		hs_peers_expect(sv->peers, i, id, on_listed, q, 0);
		hs_msg_reg_list_enc(out, id, &rl);
	}
	if (--q->waiting == 0)
		list_finish(sv, q);
}

/* ---- stats and status ---------------------------------------------------- */

/* s's live nodeset as "1,2,3". */
static void nodeset_text(const struct sstream *s, char *t, size_t cap)
{
	size_t n = 0;

	t[0] = 0;
	for (int i = 0; i < s->nn && n < cap; i++)
		n += (size_t)snprintf(t + n, cap - n, "%s%u", i ? "," : "", s->ns[i]);
}

static uint64_t stalled_count(const struct serve *sv)
{
	const struct pent *pe;
	uint64_t n = 0;

	TAILQ_FOREACH(pe, &sv->stalled, slink)
		n++;
	return n;
}

void hs_serve_on_admin_stats(struct serve *sv, struct cconn *cc, const struct hs_frame *f)
{
	struct hs_admin_stats m;
	struct hs_msg_wr w;
	struct sstream *s;
	char scope[300], text[HS_NODESET_MAX * 11 + 1];

	if (hs_msg_admin_stats_dec(f->body, f->body_len, &m) < 0) {
		hs_serve_proto_close(cc, "malformed ADMIN_STATS body");
		return;
	}
	if (!m.scopes)
		m.scopes = HS_STATS_SERVE | HS_STATS_STREAMS | HS_STATS_PEERS;
	hs_msg_admin_statsreply_begin(&w, hs_conn_out(cc->c), f->id);
	if (m.scopes & HS_STATS_SERVE) {
		uint64_t nconns = 0;
		struct cconn *x;

		LIST_FOREACH(x, &sv->conns, link)
			nconns++;
		hs_msg_kv_addu(&w, "serve", "connections", nconns);
		hs_msg_kv_addu(&w, "serve", "connections_total", sv->conns_total);
		hs_msg_kv_addu(&w, "serve", "active_streams", sv->nstreams);
		hs_msg_kv_addu(&w, "serve", "append_frames", sv->appends);
		hs_msg_kv_addu(&w, "serve", "append_records", sv->append_records);
		hs_msg_kv_addu(&w, "serve", "append_bytes", sv->append_bytes);
		hs_msg_kv_addu(&w, "serve", "store_frames", sv->stores_sent);
		hs_msg_kv_addu(&w, "serve", "store_frames_unacked", sv->unacked_n);
		hs_msg_kv_addu(&w, "serve", "store_waves", sv->waves);
		hs_msg_kv_addu(&w, "serve", "store_timeouts", sv->store_timeouts);
		hs_msg_kv_addu(&w, "serve", "runs_stalled", stalled_count(sv));
		hs_msg_kv_addu(&w, "serve", "streams_fenced", sv->fenced);
		hs_msg_kv_addu(&w, "serve", "replication", sv->replication);
		hs_msg_kv_addu(&w, "serve", "creates", sv->creates);
		hs_msg_kv_addu(&w, "serve", "deletes", sv->deletes);
		hs_msg_kv_addu(&w, "serve", "reads", sv->reads);
		hs_msg_kv_addu(&w, "serve", "records_delivered", sv->records_delivered);
		hs_msg_kv_addu(&w, "serve", "activations", sv->activations);
		hs_msg_kv_addu(&w, "serve", "redirects", sv->redirects);
		hs_msg_kv_addu(&w, "serve", "takeovers", sv->takeovers);
		hs_msg_kv_addu(&w, "serve", "owner_probes", sv->owner_probes);
		hs_msg_kv_addu(&w, "serve", "sub_sessions", sv->sub_sessions);
		hs_msg_kv_addu(&w, "serve", "sub_redelivered", sv->sub_redelivered);
		hs_msg_kv_addu(&w, "serve", "sub_dropped", sv->sub_dropped);
		hs_msg_kv_addu(&w, "serve", "sub_checkpoint_writes", sv->sub_ckpt_writes);
		hs_msg_kv_addu(&w, "serve", "follow_mem_delivered", sv->follow_mem_delivered);
		hs_msg_kv_addu(&w, "serve", "follow_mem_frames", sv->follow_mem_frames);
		hs_msg_kv_addu(&w, "serve", "follow_mem_switches", sv->follow_mem_switches);
		hs_msg_kv_addu(&w, "serve", "follow_peer_fallbacks", sv->follow_peer_fallbacks);
		hs_msg_kv_addu(&w, "serve", "follow_window_bytes", sv->win_bytes);
		hs_msg_kv_addu(&w, "serve", "follow_window_evicted", sv->follow_win_evicted);
		hs_msg_kv_addu(&w, "serve", "follow_window_resets", sv->follow_win_resets);
		hs_msg_kv_addu(&w, "serve", "proposer_id", sv->proposer_id);
		hs_msg_kv_addu(&w, "serve", "register_busy_keys", hs_reg_proposer_busy(sv->prop));
	}
	if (m.scopes & HS_STATS_STREAMS) {
		TAILQ_FOREACH(s, &sv->lru, lru) {
			if (s->state != S_ACTIVE)
				continue;
			if (m.prefix_len && (s->nlen < m.prefix_len || memcmp(s->name, m.prefix, m.prefix_len)))
				continue;
			snprintf(scope, sizeof(scope), "stream/%s", s->name);
			hs_msg_kv_addu(&w, scope, "log", s->rec.log);
			hs_msg_kv_addu(&w, scope, "epoch", s->epoch);
			hs_msg_kv_addu(&w, scope, "replication", s->r);
			nodeset_text(s, text, sizeof(text));
			hs_msg_kv_add(&w, scope, "nodeset", text);
			hs_msg_kv_addu(&w, scope, "last_clean_epoch", s->lr.lce);
			hs_msg_kv_addu(&w, scope, "next_lsn", HS_LSN(s->epoch, s->next_esn));
			hs_msg_kv_addu(&w, scope, "lng", s->released);
			hs_msg_kv_addu(&w, scope, "last_released", s->released);
			hs_msg_kv_addu(&w, scope, "trim", s->trim);
			hs_msg_kv_addu(&w, scope, "appends", s->appends);
			hs_msg_kv_addu(&w, scope, "records", s->records);
			hs_msg_kv_addu(&w, scope, "bytes", s->bytes);
			hs_msg_kv_addu(&w, scope, "inflight_bytes", s->inflight_bytes);
			hs_msg_kv_addu(&w, scope, "followers", (uint64_t)s->nfollow);
			hs_msg_kv_addu(&w, scope, "follow_window_bytes", s->win_bytes);
		}
	}
	if (m.scopes & HS_STATS_PEERS) {
		for (int i = 0; i < sv->npeers; i++) {
			uint64_t connects, losses;

			hs_peers_counters(sv->peers, i, &connects, &losses);
			snprintf(scope, sizeof(scope), "peer/%u", hs_peers_node_id(sv->peers, i));
			hs_msg_kv_add(&w, scope, "address", hs_peers_addr(sv->peers, i));
			hs_msg_kv_addu(&w, scope, "connected", hs_peers_is_up(sv->peers, i));
			hs_msg_kv_addu(&w, scope, "node_id", hs_peers_node_id(sv->peers, i));
			hs_msg_kv_addu(&w, scope, "connects", connects);
			hs_msg_kv_addu(&w, scope, "losses", losses);
			hs_msg_kv_addu(&w, scope, "queued_bytes", hs_peers_pending(sv->peers, i));
			hs_msg_kv_addu(&w, scope, "pending_bytes", hs_peers_pending(sv->peers, i));
			hs_msg_kv_addu(&w, scope, "data", sv->sp[i].node != 0);
			/* Refused a run for want of disk space: out of copysets. */
			hs_msg_kv_addu(&w, scope, "full", sv->sp[i].full_until > hs_now_ms());
			if (i < sv->nchildren) {
				hs_msg_kv_addu(&w, scope, "pid", (uint64_t)sv->children[i].pid);
				hs_msg_kv_addu(&w, scope, "restarts", (uint64_t)sv->children[i].restarts);
			}
		}
	}
	hs_msg_wr_end(&w);
}

static uint8_t cstream_state(const struct sstream *s)
{
	switch (s->state) {
	case S_ACTIVE:
		return HS_CSTREAM_ACTIVE;
	case S_RECOVERING:
		return HS_CSTREAM_RECOVERING;
	}
	return HS_CSTREAM_WAITING;
}

void hs_serve_on_cluster_status(struct serve *sv, struct cconn *cc, const struct hs_frame *f)
{
	struct hs_msg_wr w;
	struct sstream *s;
	uint32_t nact = 0, sent = 0;
	int up = 0, dup = 0;

	if (hs_msg_cluster_status_dec(f->body, f->body_len) < 0) {
		hs_serve_proto_close(cc, "malformed CLUSTER_STATUS body");
		return;
	}
	for (int i = 0; i < sv->npeers; i++)
		up += hs_peers_is_up(sv->peers, i);
	/* Healthy: a register quorum, and R peers with node ids up for new
	 * epochs of the default replication. */
	for (int i = 0; i < sv->npeers; i++)
		dup += sv->sp[i].node && hs_peers_is_up(sv->peers, i);
	TAILQ_FOREACH(s, &sv->lru, lru)
		nact += s->state != S_LOOKUP && s->state != S_DEAD;
	hs_msg_cluster_statusreply_begin(&w, hs_conn_out(cc->c), f->id, 0,
					 up >= sv->npeers / 2 + 1 && dup >= sv->replication,
					 sv->replication, nact);
	for (int i = 0; i < sv->npeers; i++) {
		struct hs_peer_ent p = { 0 };
		size_t al;

		p.node_id = hs_peers_node_id(sv->peers, i);
		p.state = hs_peers_is_up(sv->peers, i) ? HS_PEER_UP
			  : (i < sv->nchildren ? HS_PEER_STARTING : HS_PEER_DOWN);
		p.flags = sv->sp[i].node ? HS_PEERF_DATA : 0;
		p.pending_bytes = hs_peers_pending(sv->peers, i);
		hs_peers_counters(sv->peers, i, &p.connects, &p.losses);
		p.last_error = hs_peers_last_error(sv->peers, i, &p.last_error_ms);
		p.addr = hs_peers_addr(sv->peers, i);
		al = strlen(p.addr);
		p.addr_len = (uint8_t)(al > 255 ? 255 : al);
		hs_msg_peer_add(&w, &p);
	}
	hs_msg_cstreams_open(&w);
	/* Most recently used first (the LRU's head). */
	TAILQ_FOREACH(s, &sv->lru, lru) {
		struct hs_cstream_ent e = { 0 };

		if (s->state == S_LOOKUP || s->state == S_DEAD)
			continue;
		if (sent == HS_STATUS_STREAMS_MAX)
			break;
		e.stream = s->name;
		e.stream_len = s->nlen;
		e.state = cstream_state(s);
		e.lce = s->lr.lce;
		e.trim = s->trim;
		if (s->state == S_ACTIVE || s->state == S_RECOVERING) {
			/* The epoch and nodeset are set once it is activated. */
			e.epoch = s->epoch;
			e.r = s->r;
			e.nn = s->nn > HS_INFO_NODESET_MAX ? HS_INFO_NODESET_MAX : s->nn;
			if (e.r > e.nn)
				e.r = e.nn;
			memcpy(e.nodes, s->ns, e.nn * sizeof(e.nodes[0]));
		}
		if (s->state == S_ACTIVE) {
			e.released = s->released;
			e.tail = hs_serve_stream_tail(s);
		}
		hs_msg_cstream_add(&w, &e);
		sent++;
	}
	hs_msg_wr_end(&w);
}

/* ---- connections ------------------------------------------------------- */

void hs_serve_admin_detach(struct cconn *cc)
{
	struct gather *g;
	struct listreq *lq;

	while ((g = LIST_FIRST(&cc->subreqs)) || (g = LIST_FIRST(&cc->infos))) {
		LIST_REMOVE(g, link);
		g->cc = NULL;
	}
	while ((lq = LIST_FIRST(&cc->lists))) {
		LIST_REMOVE(lq, link);
		lq->cc = NULL;
	}
}
