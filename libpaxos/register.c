/*
 * register.c - CASPaxos registers: acceptor rules, the persisted acceptor
 * state, and the event-driven proposer.  The algorithm and the exactly-once
 * argument are in register.h.
 *
 * Proposer layout: one struct slot per key (hash table), holding the queue
 * of changes and the round in flight.  A slot is on the active list while
 * it has a round, a backoff or queued changes, else on the idle list (LRU,
 * capped), where it keeps the last committed value and ballot for the
 * one-round-trip path.  Slots with work to start wait on the ready FIFO
 * until hs_reg_proposer_flush(), so changes queued in one event-loop turn
 * share one round and entries for many keys share one frame per acceptor.
 * One timer serves the proposer: it is armed at the earliest deadline known
 * and on firing the active list is scanned (deadlines moved later only cost
 * a spurious wakeup).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "err.h"
#include "register.h"
#include "wire.h"

int hs_reg_ballot_cmp(const struct hs_reg_ballot *a, const struct hs_reg_ballot *b)
{
	if (a->counter != b->counter)
		return a->counter < b->counter ? -1 : 1;
	if (a->proposer != b->proposer)
		return a->proposer < b->proposer ? -1 : 1;
	return 0;
}

static struct hs_reg_ballot next_ballot(const struct hs_reg_ballot *b)
{
	return (struct hs_reg_ballot){ b->counter + 1, b->proposer };
}

/* ---- acceptor ----------------------------------------------------------- */

void hs_reg_acc_free(struct hs_reg_acc *a)
{
	hs_buf_free(&a->value);
}

int hs_reg_acc_prepare(struct hs_reg_acc *a, const struct hs_reg_ballot *b)
{
	int c = hs_reg_ballot_cmp(b, &a->promised);

	if (!b->counter)
		return -HS_EPROTO;
	if (c < 0)
		return -HS_ESEALED;
	if (c == 0)
		return 0;
	a->promised = *b;
	return 1;
}

int hs_reg_acc_accept(struct hs_reg_acc *a, const struct hs_reg_ballot *b,
		      const struct hs_reg_val *v)
{
	if (!b->counter || v->len > HS_REG_VALUE_MAX)
		return -HS_EPROTO;
	if (!hs_reg_ballot_cmp(b, &a->accepted))
		return 0;
	if (hs_reg_ballot_cmp(b, &a->promised) < 0)
		return -HS_ESEALED;
	a->accepted = *b;
	a->promised = next_ballot(b);
	a->version = v->version;
	a->tag = v->tag;
	hs_buf_reset(&a->value);
	hs_buf_append(&a->value, v->data, v->len);
	return 1;
}

void hs_reg_acc_promise_entry(const struct hs_reg_acc *a, const uint8_t *key, uint8_t key_len,
			      const struct hs_reg_ballot *b, int status, struct hs_reg_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->key = key;
	e->key_len = key_len;
	e->ballot = *b;
	e->status = status;
	e->promised = a->promised;
	if (status)
		return;
	e->accepted = a->accepted;
	e->val.version = a->version;
	e->val.tag = a->tag;
	e->val.data = a->value.data;
	e->val.len = (uint32_t)a->value.len;
}

#define ACC_FORMAT 1
#define ACC_FIXED (1 + 12 + 12 + 8 + 12 + 4)

static void put_ballot(struct hs_buf *b, const struct hs_reg_ballot *x)
{
	hs_w64(b, x->counter);
	hs_w32(b, x->proposer);
}

static void get_ballot(struct hs_rd *r, struct hs_reg_ballot *x)
{
	x->counter = hs_r64(r);
	x->proposer = hs_r32(r);
}

void hs_reg_acc_enc(const struct hs_reg_acc *a, struct hs_buf *out)
{
	size_t start = out->len;

	hs_w8(out, ACC_FORMAT);
	put_ballot(out, &a->promised);
	put_ballot(out, &a->accepted);
	hs_w64(out, a->version);
	put_ballot(out, &a->tag);
	hs_w32(out, (uint32_t)a->value.len);
	hs_wbytes(out, a->value.data, a->value.len);
	hs_w32(out, hs_crc32c(0, out->data + start, out->len - start));
}

int hs_reg_acc_dec(const uint8_t *p, size_t len, struct hs_reg_acc *a)
{
	struct hs_reg_acc t;
	struct hs_rd r;
	uint32_t vlen;

	if (len < ACC_FIXED + 4)
		return -HS_EDATA;
	if (hs_crc32c(0, p, len - 4) != hs_get32(p + len - 4))
		return -HS_ECHECKSUM;
	hs_rd_init(&r, p, len - 4);
	if (hs_r8(&r) != ACC_FORMAT)
		return -HS_EDATA;
	get_ballot(&r, &t.promised);
	get_ballot(&r, &t.accepted);
	t.version = hs_r64(&r);
	get_ballot(&r, &t.tag);
	vlen = hs_r32(&r);
	if (vlen > HS_REG_VALUE_MAX || hs_rd_left(&r) != vlen)
		return -HS_EDATA;
	a->promised = t.promised;
	a->accepted = t.accepted;
	a->version = t.version;
	a->tag = t.tag;
	hs_buf_reset(&a->value);
	hs_buf_append(&a->value, r.p, vlen);
	return 0;
}

/* ---- proposer ----------------------------------------------------------- */

enum { IDLE, PHASE1, PHASE2, BACKOFF };

struct change {
	struct change *next;
	hs_reg_fn fn;
	hs_reg_done_fn done;
	void *arg;
	int rc;            /* outcome of the latest evaluation */
	bool in_round;     /* evaluated for the round in flight */
	bool modified;     /* fn changed the value in that evaluation */
	bool holds;        /* the base value of that evaluation held it */
	bool full;         /* a round holding it went unrecorded: never re-apply */
	int nr;            /* rounds that sent a value holding the change: */
	uint64_t r_counter[HS_REG_MAX_ATTEMPTS];  /* their ballot counters (A) */
};

struct slist {
	struct slot *head, *tail;
	size_t n;
};

struct slot {
	struct slot *hnext;             /* hash chain */
	struct slot *lprev, *lnext;     /* active or idle list */
	struct slist *list;
	struct slot *rnext;             /* ready FIFO */
	bool queued;                    /* on the ready FIFO */
	int state;
	struct change *changes, **ctail;
	struct hs_reg_ballot ballot;    /* of the round in flight / last committed */
	uint64_t max_seen;              /* highest ballot counter seen for the key */
	int attempts;
	uint64_t deadline;              /* 0 = none */
	uint32_t acked, nacked;         /* acceptor bitmaps for the current phase */
	bool fast;                      /* val/ver/tag committed at ballot */
	/* phase 1: highest accepted so far */
	bool best_set;
	struct hs_reg_ballot best;
	uint64_t best_ver;
	struct hs_reg_ballot best_tag;
	struct hs_buf best_val;
	/* proposal, or after a commit the committed value (val: envelope and
	 * caller's bytes, these from uoff on) */
	uint64_t ver;
	struct hs_reg_ballot tag;
	struct hs_buf val;
	size_t uoff;
	uint8_t key_len;
	uint8_t key[HS_REG_KEY_MAX];
};

struct out {
	struct hs_buf pb, ab;
	struct hs_msg_wr pw, aw;
	bool pon, aon;
};

struct hs_reg_proposer {
	struct hs_reg_cfg cfg;
	struct hs_reg_ops ops;
	void *arg;
	struct slot **tab;
	size_t nb, nslots;
	struct slist active, idle;
	struct slot *ready, *ready_tail;
	uint64_t armed;                 /* timer requested for; 0 = none */
	bool timer_dirty;
	uint64_t next_id;
	/* Highest ballot counter used for any key.  A slot created for a key
	 * (again, after eviction) starts above it: its old ballots must never
	 * be reused, since acceptors grant an equal ballot again (for
	 * duplicated PREPAREs) and one ballot must carry one value only. */
	uint64_t max_counter;
	struct hs_buf tmp, cur;         /* fn output, the value being built */
	struct out *out;                /* [nacc] */
};

static int popcount(uint32_t x)
{
	return __builtin_popcount(x);
}

static void list_del(struct slot *s)
{
	struct slist *l = s->list;

	if (!l)
		return;
	if (s->lprev)
		s->lprev->lnext = s->lnext;
	else
		l->head = s->lnext;
	if (s->lnext)
		s->lnext->lprev = s->lprev;
	else
		l->tail = s->lprev;
	l->n--;
	s->list = NULL;
	s->lprev = s->lnext = NULL;
}

static void list_add(struct slist *l, struct slot *s)
{
	list_del(s);
	s->list = l;
	s->lprev = l->tail;
	s->lnext = NULL;
	if (l->tail)
		l->tail->lnext = s;
	else
		l->head = s;
	l->tail = s;
	l->n++;
}

/* Put s on the list matching its state; queue it if it has work. */
static void settle(struct hs_reg_proposer *p, struct slot *s)
{
	if (s->state == IDLE && s->changes && !s->queued) {
		s->queued = true;
		s->rnext = NULL;
		if (p->ready_tail)
			p->ready_tail->rnext = s;
		else
			p->ready = s;
		p->ready_tail = s;
	}
	if (s->state == IDLE && !s->changes && !s->queued) {
		if (s->list != &p->idle)
			list_add(&p->idle, s);
	} else if (s->list != &p->active) {
		list_add(&p->active, s);
	}
}

static void arm_at(struct hs_reg_proposer *p, uint64_t at)
{
	if (!p->armed || at < p->armed) {
		p->armed = at;
		p->timer_dirty = true;
	}
}

static void arm(struct hs_reg_proposer *p, struct slot *s, uint64_t at)
{
	s->deadline = at;
	arm_at(p, at);
}

static size_t bucket(const struct hs_reg_proposer *p, const uint8_t *key, size_t len)
{
	return hs_crc32c(0, key, len) & (p->nb - 1);
}

static struct slot *lookup(struct hs_reg_proposer *p, const uint8_t *key, size_t len)
{
	struct slot *s = p->tab[bucket(p, key, len)];

	while (s && (s->key_len != len || memcmp(s->key, key, len)))
		s = s->hnext;
	return s;
}

static void grow(struct hs_reg_proposer *p)
{
	size_t onb = p->nb;
	struct slot **old = p->tab;

	p->nb *= 2;
	p->tab = hs_xcalloc(p->nb, sizeof(*p->tab));
	for (size_t i = 0; i < onb; i++) {
		struct slot *s = old[i], *n;

		for (; s; s = n) {
			size_t h = bucket(p, s->key, s->key_len);

			n = s->hnext;
			s->hnext = p->tab[h];
			p->tab[h] = s;
		}
	}
	free(old);
}

static struct slot *slot_get(struct hs_reg_proposer *p, const uint8_t *key, size_t len)
{
	struct slot *s = lookup(p, key, len);
	size_t h;

	if (s)
		return s;
	if (p->nslots >= p->nb)
		grow(p);
	s = hs_xcalloc(1, sizeof(*s));
	s->key_len = (uint8_t)len;
	memcpy(s->key, key, len);
	s->ctail = &s->changes;
	s->max_seen = p->max_counter;
	h = bucket(p, key, len);
	s->hnext = p->tab[h];
	p->tab[h] = s;
	p->nslots++;
	return s;
}

static void slot_free(struct hs_reg_proposer *p, struct slot *s)
{
	struct slot **pp = &p->tab[bucket(p, s->key, s->key_len)];

	while (*pp != s)
		pp = &(*pp)->hnext;
	*pp = s->hnext;
	p->nslots--;
	list_del(s);
	hs_buf_free(&s->val);
	hs_buf_free(&s->best_val);
	free(s);
}

/* Call done for every change of list (detached from any slot), freeing it. */
static void complete(struct change *list, int status, const struct slot *s)
{
	struct change *c, *n;

	for (c = list; c; c = n) {
		int st = status ? status : c->rc;

		n = c->next;
		if (st)
			c->done(c->arg, st, NULL, 0, 0);
		else
			c->done(c->arg, 0, s->val.data + s->uoff, s->val.len - s->uoff, s->ver);
		free(c);
	}
}

/* Detach the changes of s that match in_round (all if all). */
static struct change *detach(struct slot *s, bool all)
{
	struct change *got = NULL, **gt = &got, **pp = &s->changes, *c;

	while ((c = *pp)) {
		if (all || c->in_round) {
			*pp = c->next;
			c->next = NULL;
			*gt = c;
			gt = &c->next;
		} else {
			pp = &c->next;
		}
	}
	s->ctail = pp;
	return got;
}

/* ---- frames ---- */

static void out_flush(struct hs_reg_proposer *p, int i, bool accept)
{
	struct out *o = &p->out[i];
	struct hs_msg_wr *w = accept ? &o->aw : &o->pw;
	struct hs_buf *b = accept ? &o->ab : &o->pb;
	bool *on = accept ? &o->aon : &o->pon;

	if (!*on)
		return;
	hs_msg_wr_end(w);
	p->ops.send(p->arg, i, b->data, b->len);
	hs_buf_reset(b);
	*on = false;
}

/* Open (or, if need more bytes would overflow max_frame, restart) acceptor
 * i's PREPARE or ACCEPT frame. */
static struct hs_msg_wr *out_wr(struct hs_reg_proposer *p, int i, bool accept, size_t need)
{
	struct out *o = &p->out[i];
	struct hs_msg_wr *w = accept ? &o->aw : &o->pw;
	bool *on = accept ? &o->aon : &o->pon;

	if (*on && w->n && hs_msg_wr_size(w) + need > p->cfg.max_frame)
		out_flush(p, i, accept);
	if (!*on) {
		if (accept)
			hs_msg_reg_accept_begin(w, &o->ab, ++p->next_id);
		else
			hs_msg_reg_prepare_begin(w, &o->pb, ++p->next_id);
		*on = true;
	}
	return w;
}

/* ---- rounds ---- */

static void fail_round(struct hs_reg_proposer *p, struct slot *s);

static void send_prepare(struct hs_reg_proposer *p, struct slot *s)
{
	if (s->ballot.counter < s->max_seen)
		s->ballot.counter = s->max_seen;
	s->ballot.counter++;
	s->ballot.proposer = p->cfg.proposer_id;
	if (s->ballot.counter > p->max_counter)
		p->max_counter = s->ballot.counter;
	s->state = PHASE1;
	s->acked = s->nacked = 0;
	s->best_set = false;
	for (int i = 0; i < p->cfg.nacc; i++)
		hs_msg_reg_prepare_add(out_wr(p, i, false, 1 + s->key_len + 12), s->key, s->key_len,
				       &s->ballot);
	arm(p, s, p->ops.now(p->arg) + p->cfg.timeout_ms);
}

/*
 * The envelope around the caller's bytes (register.h, "Exactly once"):
 *   u8 format (1) | u8 n (1..HS_REG_TRACK) | ballot floor | n * ballot
 * (ballots as on the wire), then the caller's bytes.  A never written
 * register has no envelope (len 0).
 */
#define ENV_FORMAT 1

struct env {
	int n;
	struct hs_reg_ballot floor;
	struct hs_reg_ballot e[HS_REG_TRACK];  /* per proposer, its latest round */
	size_t len;                            /* bytes of the envelope */
};

static int env_parse(const uint8_t *d, size_t len, struct env *v)
{
	memset(v, 0, sizeof(*v));
	if (!len)
		return 0;
	if (len < 14 || d[0] != ENV_FORMAT || !d[1] || d[1] > HS_REG_TRACK ||
	    len < 14 + 12 * (size_t)d[1])
		return -HS_EDATA;
	v->n = d[1];
	v->floor.counter = hs_get64(d + 2);
	v->floor.proposer = hs_get32(d + 10);
	for (int i = 0; i < v->n; i++) {
		v->e[i].counter = hs_get64(d + 14 + 12 * i);
		v->e[i].proposer = hs_get32(d + 22 + 12 * i);
	}
	v->len = 14 + 12 * (size_t)v->n;
	return 0;
}

int hs_reg_unwrap(const uint8_t *p, size_t len, const uint8_t **data, size_t *dlen)
{
	struct env v;
	int r = env_parse(p, len, &v);

	*data = p;
	*dlen = 0;
	if (r < 0)
		return r;
	*data = p + v.len;
	*dlen = len - v.len;
	return 0;
}

static void env_put(struct hs_buf *out, const struct env *v)
{
	hs_w8(out, ENV_FORMAT);
	hs_w8(out, (uint8_t)v->n);
	put_ballot(out, &v->floor);
	for (int i = 0; i < v->n; i++)
		put_ballot(out, &v->e[i]);
}

static const struct hs_reg_ballot *env_find(const struct env *v, uint32_t proposer)
{
	for (int i = 0; i < v->n; i++)
		if (v->e[i].proposer == proposer)
			return &v->e[i];
	return NULL;
}

/* Record round b as its proposer's latest; a full list evicts its lowest
 * ballot into floor. */
static void env_set(struct env *v, const struct hs_reg_ballot *b)
{
	int lo = 0;

	for (int i = 0; i < v->n; i++) {
		if (v->e[i].proposer == b->proposer) {
			v->e[i] = *b;
			return;
		}
		if (hs_reg_ballot_cmp(&v->e[i], &v->e[lo]) < 0)
			lo = i;
	}
	if (v->n < HS_REG_TRACK) {
		v->e[v->n++] = *b;
		return;
	}
	if (hs_reg_ballot_cmp(&v->e[lo], &v->floor) > 0)
		v->floor = v->e[lo];
	v->e[lo] = *b;
}

/* Is round counter x (ours) in c's A? */
static bool holds(const struct change *c, uint64_t x)
{
	for (int i = 0; i < c->nr; i++)
		if (c->r_counter[i] == x)
			return true;
	return false;
}

/* May c be (re-)applied to a value with envelope v, our entry mine
 * (register.h: E not in A, checked by the caller, and then E present, or
 * floor below min(A), or A empty)? */
static bool may_apply(const struct hs_reg_proposer *p, const struct change *c,
		      const struct env *v, const struct hs_reg_ballot *mine)
{
	struct hs_reg_ballot first;

	if (!c->nr)
		return true;
	if (c->full)
		return false;
	if (mine)
		return true;
	/* Our ballots grow: r_counter[0] is min(A). */
	first.counter = c->r_counter[0];
	first.proposer = p->cfg.proposer_id;
	return hs_reg_ballot_cmp(&v->floor, &first) < 0;
}

/*
 * Apply the queued changes of s to the base value already in s->val (at
 * s->ver, s->tag) for the round at s->ballot, and send the ACCEPTs.
 * Changes whose outcome is unknown (register.h) are moved to *unknown.
 */
static void evaluate(struct hs_reg_proposer *p, struct slot *s, struct change ***unknown)
{
	uint64_t w = s->ver;
	struct change **pp = &s->changes, *c;
	bool changed = false, any = false, bad;
	const struct hs_reg_ballot *mine = NULL;
	const uint8_t *cd;
	size_t cl;
	struct env env;
	struct hs_reg_val v;

	/* An unreadable envelope is not ours to interpret or overwrite: its
	 * changes fail -HS_EDATA, the round writes it back unchanged. */
	bad = env_parse(s->val.data, s->val.len, &env) < 0;
	s->uoff = bad ? s->val.len : env.len;
	if (!bad)
		mine = env_find(&env, p->cfg.proposer_id);
	cd = s->val.data + s->uoff;
	cl = s->val.len - s->uoff;
	while ((c = *pp)) {
		int rc;

		c->in_round = true;
		c->modified = c->holds = false;
		if (bad) {
			c->rc = -HS_EDATA;
			goto next;
		}
		if (mine && holds(c, mine->counter)) {
			c->rc = 0;
			c->holds = true;
			goto next;
		}
		if (!may_apply(p, c, &env, mine)) {
			*pp = c->next;
			c->next = NULL;
			**unknown = c;
			*unknown = &c->next;
			continue;
		}
		hs_buf_reset(&p->tmp);
		rc = c->fn(c->arg, cd, cl, changed ? w + 1 : w, &p->tmp);
		if (rc == 0 && p->tmp.len > HS_REG_DATA_MAX) {
			rc = -HS_ETOOBIG;
		} else if (rc == 0) {
			struct hs_buf x = p->cur;

			p->cur = p->tmp;
			p->tmp = x;
			cd = p->cur.data;
			cl = p->cur.len;
			changed = c->modified = true;
		} else if (rc == HS_REG_SAME) {
			rc = 0;
		} else if (rc > 0) {
			rc = -HS_EINTERNAL;
		}
		c->rc = rc;
next:
		any = true;
		pp = &c->next;
	}
	s->ctail = pp;
	if (!any) {
		/* Everything left was of unknown outcome: nothing to write. */
		s->state = IDLE;
		s->fast = false;
		s->deadline = 0;
		return;
	}
	if (changed) {
		s->ver = w + 1;
		s->tag = s->ballot;
		env_set(&env, &s->ballot);
		hs_buf_reset(&s->val);
		env_put(&s->val, &env);
		s->uoff = s->val.len;
		hs_buf_append(&s->val, p->cur.data, p->cur.len);
		/* This round's value holds these changes: A grows, or if it
		 * cannot, the change may never be re-applied. */
		for (c = s->changes; c; c = c->next) {
			if (!c->modified && !c->holds)
				continue;
			if (c->nr < HS_REG_MAX_ATTEMPTS)
				c->r_counter[c->nr++] = s->ballot.counter;
			else
				c->full = true;
		}
	}
	s->state = PHASE2;
	s->acked = s->nacked = 0;
	s->fast = false;
	v.version = s->ver;
	v.tag = s->tag;
	v.data = s->val.data;
	v.len = (uint32_t)s->val.len;
	for (int i = 0; i < p->cfg.nacc; i++)
		hs_msg_reg_accept_add(out_wr(p, i, true, 1 + s->key_len + 40 + v.len), s->key,
				      s->key_len, &s->ballot, &v);
	arm(p, s, p->ops.now(p->arg) + p->cfg.timeout_ms);
}

/* Run evaluate() and complete the unknown-outcome changes afterwards (their
 * callbacks may queue changes on s). */
static void evaluate_and_send(struct hs_reg_proposer *p, struct slot *s)
{
	struct change *unknown = NULL, **ut = &unknown;

	for (struct change *c = s->changes; c; c = c->next)
		c->in_round = false;
	evaluate(p, s, &ut);
	complete(unknown, -HS_ETIMEOUT, s);
	settle(p, s);
}

static void start_round(struct hs_reg_proposer *p, struct slot *s)
{
	if (!s->changes) {
		settle(p, s);
		return;
	}
	if (s->fast && popcount(s->acked) >= p->cfg.q1 && s->max_seen <= s->ballot.counter) {
		/* The acks for ballot promised next(ballot) (register.h). */
		s->ballot = next_ballot(&s->ballot);
		if (s->ballot.counter > p->max_counter)
			p->max_counter = s->ballot.counter;
		evaluate_and_send(p, s);
		return;
	}
	s->fast = false;
	send_prepare(p, s);
	settle(p, s);
}

static void commit(struct hs_reg_proposer *p, struct slot *s)
{
	struct change *done;

	s->state = IDLE;
	s->deadline = 0;
	s->attempts = 0;
	s->fast = true;       /* keep counting acks for the fast path */
	done = detach(s, false);
	complete(done, 0, s);
	settle(p, s);
}

static void fail_round(struct hs_reg_proposer *p, struct slot *s)
{
	uint32_t span;
	int shift;

	s->fast = false;
	s->deadline = 0;
	if (++s->attempts >= p->cfg.max_attempts) {
		struct change *all, *c, *unknown = NULL, **ut = &unknown;

		s->state = IDLE;
		s->attempts = 0;
		all = detach(s, true);
		/* Changes carried by a sent ACCEPT may have been applied. */
		for (struct change **pp = &all; (c = *pp);) {
			if (c->nr) {
				*pp = c->next;
				c->next = NULL;
				*ut = c;
				ut = &c->next;
			} else {
				pp = &c->next;
			}
		}
		complete(unknown, -HS_ETIMEOUT, s);
		complete(all, -HS_EUNAVAIL, s);
		settle(p, s);
		return;
	}
	s->state = BACKOFF;
	shift = s->attempts - 1 < 6 ? s->attempts - 1 : 6;
	span = p->cfg.backoff_ms << shift;
	arm(p, s, p->ops.now(p->arg) + 1 + p->ops.rand(p->arg) % span);
	settle(p, s);
}

static void on_promise(struct hs_reg_proposer *p, struct slot *s, int idx,
		       const struct hs_reg_entry *e)
{
	uint32_t bit = 1u << idx;

	if (s->state != PHASE1 || hs_reg_ballot_cmp(&e->ballot, &s->ballot) ||
	    ((s->acked | s->nacked) & bit))
		return;
	/* Only a refusal reveals a foreign ballot (an ACCEPTED ok carries our
	 * own next(b)). */
	if (e->status && e->promised.counter > s->max_seen)
		s->max_seen = e->promised.counter;
	if (e->status) {
		s->nacked |= bit;
		if (popcount(s->nacked) > p->cfg.nacc - p->cfg.q1)
			fail_round(p, s);
		return;
	}
	s->acked |= bit;
	if (!s->best_set || hs_reg_ballot_cmp(&e->accepted, &s->best) > 0) {
		s->best_set = true;
		s->best = e->accepted;
		s->best_ver = e->val.version;
		s->best_tag = e->val.tag;
		hs_buf_reset(&s->best_val);
		hs_buf_append(&s->best_val, e->val.data, e->val.len);
	}
	if (popcount(s->acked) >= p->cfg.q1) {
		struct hs_buf x = s->val;

		s->val = s->best_val;
		s->best_val = x;
		s->ver = s->best_ver;
		s->tag = s->best_tag;
		evaluate_and_send(p, s);
	}
}

static void on_accepted(struct hs_reg_proposer *p, struct slot *s, int idx,
			const struct hs_reg_entry *e)
{
	uint32_t bit = 1u << idx;

	if (hs_reg_ballot_cmp(&e->ballot, &s->ballot) || ((s->acked | s->nacked) & bit))
		return;
	/* Only a refusal reveals a foreign ballot (an ACCEPTED ok carries our
	 * own next(b)). */
	if (e->status && e->promised.counter > s->max_seen)
		s->max_seen = e->promised.counter;
	if (s->state == PHASE2) {
		if (e->status) {
			s->nacked |= bit;
			if (popcount(s->nacked) > p->cfg.nacc - p->cfg.q2)
				fail_round(p, s);
			return;
		}
		s->acked |= bit;
		if (popcount(s->acked) >= p->cfg.q2)
			commit(p, s);
	} else if (s->fast) {
		/* Late acks of a committed round: count them for the fast path. */
		if (e->status)
			s->fast = false;
		else
			s->acked |= bit;
	}
}

/* ---- public ---- */

int hs_reg_proposer_new(const struct hs_reg_cfg *cfg, const struct hs_reg_ops *ops, void *arg,
			struct hs_reg_proposer **out)
{
	struct hs_reg_proposer *p;
	struct hs_reg_cfg c = *cfg;

	if (c.nacc < 1 || c.nacc > HS_REG_MAX_ACCEPTORS || !c.proposer_id || !ops->send ||
	    !ops->now || !ops->rand || !ops->timer)
		return -HS_ECONFIG;
	if (!c.q1)
		c.q1 = c.nacc / 2 + 1;
	if (!c.q2)
		c.q2 = c.nacc / 2 + 1;
	if (c.q1 < 1 || c.q2 < 1 || c.q1 > c.nacc || c.q2 > c.nacc)
		return -HS_ECONFIG;
	if (c.q1 + c.q2 <= c.nacc && !c.unsafe_quorums)
		return -HS_ECONFIG;
	if (!c.timeout_ms)
		c.timeout_ms = 1000;
	if (!c.backoff_ms)
		c.backoff_ms = 20;
	if (!c.max_attempts)
		c.max_attempts = 8;
	if (c.max_attempts < 1 || c.max_attempts > HS_REG_MAX_ATTEMPTS)
		return -HS_ECONFIG;
	if (!c.max_frame)
		c.max_frame = 1u << 20;
	if (c.max_frame < HS_REG_VALUE_MAX + 1024)
		return -HS_ECONFIG;
	if (!c.max_idle)
		c.max_idle = 4096;
	p = hs_xcalloc(1, sizeof(*p));
	p->cfg = c;
	p->next_id = c.id_base;
	p->ops = *ops;
	p->arg = arg;
	p->nb = 64;
	p->tab = hs_xcalloc(p->nb, sizeof(*p->tab));
	p->out = hs_xcalloc((size_t)c.nacc, sizeof(*p->out));
	*out = p;
	return 0;
}

void hs_reg_proposer_free(struct hs_reg_proposer *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nb; i++) {
		while (p->tab[i]) {
			struct slot *s = p->tab[i];

			complete(detach(s, true), -ECANCELED, s);
			slot_free(p, s);
		}
	}
	for (int i = 0; i < p->cfg.nacc; i++) {
		hs_buf_free(&p->out[i].pb);
		hs_buf_free(&p->out[i].ab);
	}
	hs_buf_free(&p->tmp);
	hs_buf_free(&p->cur);
	free(p->out);
	free(p->tab);
	free(p);
}

int hs_reg_change(struct hs_reg_proposer *p, const void *key, size_t key_len, hs_reg_fn fn,
		  hs_reg_done_fn done, void *arg)
{
	struct change *c;
	struct slot *s;

	if (!key_len || key_len > HS_REG_KEY_MAX)
		return -HS_EDATA;
	s = slot_get(p, key, key_len);
	c = hs_xcalloc(1, sizeof(*c));
	c->fn = fn;
	c->done = done;
	c->arg = arg;
	*s->ctail = c;
	s->ctail = &c->next;
	settle(p, s);
	return 0;
}

static int identity(void *arg, const uint8_t *cur, size_t len, uint64_t version,
		    struct hs_buf *out)
{
	return HS_REG_SAME;
}

int hs_reg_read(struct hs_reg_proposer *p, const void *key, size_t key_len, hs_reg_done_fn done,
		void *arg)
{
	return hs_reg_change(p, key, key_len, identity, done, arg);
}

int hs_reg_proposer_on_reply(struct hs_reg_proposer *p, int idx, uint16_t type,
			     const uint8_t *body, size_t len)
{
	struct hs_reg_entry e;
	struct hs_reg_rd rd;
	int rc;

	if (idx < 0 || idx >= p->cfg.nacc ||
	    (type != HS_MSG_REG_PROMISE && type != HS_MSG_REG_ACCEPTED))
		return -HS_EPROTO;
	rc = hs_msg_reg_dec(type, body, len, &rd);
	if (rc)
		return rc;
	while (hs_reg_next(&rd, &e)) {
		struct slot *s = lookup(p, e.key, e.key_len);

		if (!s)
			continue;
		if (type == HS_MSG_REG_PROMISE)
			on_promise(p, s, idx, &e);
		else
			on_accepted(p, s, idx, &e);
	}
	return 0;
}

void hs_reg_proposer_on_timer(struct hs_reg_proposer *p)
{
	uint64_t now = p->ops.now(p->arg), min = 0;
	struct slot *due = NULL, *s, *n;

	p->armed = 0;
	for (s = p->active.head; s; s = s->lnext) {
		if (!s->deadline)
			continue;
		if (s->deadline <= now) {
			/* rnext is free: a slot with a deadline is not queued. */
			s->rnext = due;
			due = s;
		} else if (!min || s->deadline < min) {
			min = s->deadline;
		}
	}
	for (s = due; s; s = n) {
		n = s->rnext;
		s->rnext = NULL;
		if (s->state == BACKOFF) {
			s->state = IDLE;
			s->deadline = 0;
			settle(p, s);
		} else {
			fail_round(p, s);
		}
	}
	if (min)
		arm_at(p, min);
}

void hs_reg_proposer_flush(struct hs_reg_proposer *p)
{
	struct slot *s;

	while ((s = p->ready)) {
		p->ready = s->rnext;
		if (!p->ready)
			p->ready_tail = NULL;
		s->rnext = NULL;
		s->queued = false;
		if (s->state == IDLE)
			start_round(p, s);
		else
			settle(p, s);
	}
	for (int i = 0; i < p->cfg.nacc; i++) {
		out_flush(p, i, false);
		out_flush(p, i, true);
	}
	while (p->idle.n > p->cfg.max_idle)
		slot_free(p, p->idle.head);
	if (p->timer_dirty && p->armed) {
		p->timer_dirty = false;
		p->ops.timer(p->arg, p->armed);
	}
}

size_t hs_reg_proposer_busy(const struct hs_reg_proposer *p)
{
	return p->active.n;
}
