/*
 * t_register.c - CASPaxos registers: the REG_* codecs, the acceptor rules
 * and its persisted form, and a deterministic simulated network (seeded
 * PRNG: drop, duplication, reordering, delay, acceptor crash/restart) in
 * which several proposers increment a counter, read it and CAS another
 * register; a checker verifies exactly-once application and read
 * linearizability.  HS_SEED=<n> overrides the base seed.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "err.h"
#include "frame.h"
#include "proto.h"
#include "register.h"
#include "tap.h"
#include "msgtest.h"
#include "wire.h"

/* ---- codecs ------------------------------------------------------------- */

/* The REG family decodes through one function keyed by type. */
static uint16_t reg_type;

static int dec_reg(const uint8_t *p, size_t n)
{
	struct hs_reg_rd rd;

	return hs_msg_reg_dec(reg_type, p, n, &rd);
}

static void check_reg_body(uint16_t type, const char *name)
{
	reg_type = type;
	check_body(dec_reg, name, 0);
}

static int beq(const struct hs_reg_ballot *a, uint64_t c, uint32_t p)
{
	return a->counter == c && a->proposer == p;
}

static void test_codecs(void)
{
	struct hs_reg_ballot b1 = { 7, 3 }, b2 = { 9, 1 }, b0 = { 0, 0 };
	struct hs_reg_val v = { 5, { 6, 3 }, (const uint8_t *)"hello", 5 }, ve = { 0 };
	struct hs_reg_entry e, pe;
	struct hs_reg_rd rd;
	struct hs_msg_wr w;
	uint8_t key2[255];

	memset(key2, 0xab, sizeof(key2));
	/* PREPARE with a 1-byte and a 255-byte binary key */
	hs_buf_reset(&b);
	hs_msg_reg_prepare_begin(&w, &b, 77);
	hs_msg_reg_prepare_add(&w, "\0", 1, &b1);
	hs_msg_reg_prepare_add(&w, key2, 255, &b2);
	hs_msg_wr_end(&w);
	ok(parse_one(HS_MSG_REG_PREPARE), "prepare: frame parses (type known)");
	is_str(hs_msg_name(HS_MSG_REG_PREPARE), "REG_PREPARE", "prepare: name");
	is_int(hs_msg_reg_prepare_dec(f.body, f.body_len, &rd), 0, "prepare: decodes");
	ok(hs_reg_next(&rd, &e) && e.key_len == 1 && e.key[0] == 0 && beq(&e.ballot, 7, 3),
	   "prepare: entry 1");
	ok(hs_reg_next(&rd, &e) && e.key_len == 255 && !memcmp(e.key, key2, 255) &&
	   beq(&e.ballot, 9, 1), "prepare: entry 2");
	ok(!hs_reg_next(&rd, &e), "prepare: end");
	check_reg_body(HS_MSG_REG_PREPARE, "prepare");
	is_int(hs_msg_reg_promise_dec(f.body, f.body_len, &rd), -HS_EPROTO,
	       "prepare body is not a promise body");

	/* PROMISE: one granted with a value, one NACK */
	hs_buf_reset(&b);
	hs_msg_reg_promise_begin(&w, &b, 77);
	memset(&pe, 0, sizeof(pe));
	pe.key = (const uint8_t *)"k";
	pe.key_len = 1;
	pe.ballot = b1;
	pe.promised = b1;
	pe.accepted = (struct hs_reg_ballot){ 6, 3 };
	pe.val = v;
	hs_msg_reg_promise_add(&w, &pe);
	pe.status = -HS_ESEALED;
	pe.promised = b2;
	pe.accepted = b0;
	pe.val = ve;
	hs_msg_reg_promise_add(&w, &pe);
	hs_msg_wr_end(&w);
	ok(parse_one(HS_MSG_REG_PROMISE), "promise: frame parses");
	is_int(hs_msg_reg_promise_dec(f.body, f.body_len, &rd), 0, "promise: decodes");
	ok(hs_reg_next(&rd, &e) && e.status == 0 && beq(&e.accepted, 6, 3) &&
	   e.val.version == 5 && beq(&e.val.tag, 6, 3) && e.val.len == 5 &&
	   !memcmp(e.val.data, "hello", 5), "promise: granted entry");
	ok(hs_reg_next(&rd, &e) && e.status == -HS_ESEALED && beq(&e.promised, 9, 1) &&
	   e.val.len == 0, "promise: nack entry");
	check_reg_body(HS_MSG_REG_PROMISE, "promise");

	/* ACCEPT */
	hs_buf_reset(&b);
	hs_msg_reg_accept_begin(&w, &b, 77);
	hs_msg_reg_accept_add(&w, "key", 3, &b1, &v);
	hs_msg_reg_accept_add(&w, "k2", 2, &b2, &ve);
	hs_msg_wr_end(&w);
	ok(parse_one(HS_MSG_REG_ACCEPT), "accept: frame parses");
	is_int(hs_msg_reg_accept_dec(f.body, f.body_len, &rd), 0, "accept: decodes");
	ok(hs_reg_next(&rd, &e) && e.key_len == 3 && !memcmp(e.key, "key", 3) &&
	   beq(&e.ballot, 7, 3) && e.val.version == 5 && e.val.len == 5, "accept: entry 1");
	ok(hs_reg_next(&rd, &e) && e.val.len == 0 && e.val.version == 0, "accept: entry 2");
	check_reg_body(HS_MSG_REG_ACCEPT, "accept");

	/* ACCEPTED */
	hs_buf_reset(&b);
	hs_msg_reg_accepted_begin(&w, &b, 77);
	hs_msg_reg_accepted_add(&w, "key", 3, &b1, 0, &b1);
	hs_msg_reg_accepted_add(&w, "key", 3, &b1, -HS_ESEALED, &b2);
	hs_msg_wr_end(&w);
	ok(parse_one(HS_MSG_REG_ACCEPTED), "accepted: frame parses");
	is_int(hs_msg_reg_accepted_dec(f.body, f.body_len, &rd), 0, "accepted: decodes");
	ok(hs_reg_next(&rd, &e) && e.status == 0 && beq(&e.promised, 7, 3), "accepted: entry 1");
	ok(hs_reg_next(&rd, &e) && e.status == -HS_ESEALED && beq(&e.promised, 9, 1),
	   "accepted: entry 2");
	check_reg_body(HS_MSG_REG_ACCEPTED, "accepted");

	/* inconsistent contents */
	hs_buf_reset(&b);
	hs_msg_reg_prepare_begin(&w, &b, 77);
	hs_msg_reg_prepare_add(&w, "", 0, &b1);
	hs_msg_wr_end(&w);
	parse_one(HS_MSG_REG_PREPARE);
	is_int(hs_msg_reg_prepare_dec(f.body, f.body_len, &rd), -HS_EPROTO, "empty key refused");
	hs_buf_reset(&b);
	hs_msg_reg_prepare_begin(&w, &b, 77);
	hs_msg_reg_prepare_add(&w, "k", 1, &b0);
	hs_msg_wr_end(&w);
	parse_one(HS_MSG_REG_PREPARE);
	is_int(hs_msg_reg_prepare_dec(f.body, f.body_len, &rd), -HS_EPROTO, "zero ballot refused");
	{
		uint8_t *big = hs_xcalloc(1, HS_REG_VALUE_MAX + 1);
		struct hs_reg_val vb = { 1, { 1, 1 }, big, HS_REG_VALUE_MAX + 1 };

		hs_buf_reset(&b);
		hs_msg_reg_accept_begin(&w, &b, 77);
		hs_msg_reg_accept_add(&w, "k", 1, &b1, &vb);
		hs_msg_wr_end(&w);
		parse_one(HS_MSG_REG_ACCEPT);
		is_int(hs_msg_reg_accept_dec(f.body, f.body_len, &rd), -HS_EPROTO,
		       "value over HS_REG_VALUE_MAX refused");
		free(big);
	}
	{
		uint8_t body[8];

		hs_put32(body, 0xffffffffu);
		hs_put32(body + 4, 0);
		is_int(hs_msg_reg_prepare_dec(body, 8, &rd), -HS_EPROTO, "huge count refused");
		hs_put32(body, 0);
		is_int(hs_msg_reg_accepted_dec(body, 4, &rd), 0, "empty list decodes");
		ok(!hs_reg_next(&rd, &e), "empty list has no entry");
		is_int(hs_msg_reg_dec(HS_MSG_STORE, body, 4, &rd), -HS_EPROTO, "other type refused");
	}
}

/* ---- acceptor ----------------------------------------------------------- */

static void test_acceptor(void)
{
	struct hs_reg_acc a = HS_REG_ACC_INIT, c = HS_REG_ACC_INIT;
	struct hs_reg_ballot b5 = { 5, 1 }, b5h = { 5, 2 }, b4 = { 4, 9 }, b6 = { 6, 1 };
	struct hs_reg_val v = { 1, { 5, 1 }, (const uint8_t *)"v1", 2 };
	struct hs_reg_val v2 = { 2, { 6, 2 }, (const uint8_t *)"v22", 3 };
	struct hs_reg_entry e;
	struct hs_buf d = HS_BUF_INIT;
	int bad = 0;

	is_int(hs_reg_acc_prepare(&a, &b5), 1, "prepare on fresh state promises (persist)");
	is_int(hs_reg_acc_prepare(&a, &b5), 0, "same ballot again: promised, unchanged");
	is_int(hs_reg_acc_prepare(&a, &b4), -HS_ESEALED, "lower ballot refused");
	ok(beq(&a.promised, 5, 1), "refusal leaves the promise");
	hs_reg_acc_promise_entry(&a, (const uint8_t *)"k", 1, &b4, -HS_ESEALED, &e);
	ok(e.status == -HS_ESEALED && beq(&e.promised, 5, 1) && e.val.len == 0,
	   "nack entry carries the higher promise");
	is_int(hs_reg_acc_accept(&a, &b4, &v), -HS_ESEALED, "accept below the promise refused");
	is_int(hs_reg_acc_accept(&a, &b5, &v), 1, "accept at the promise");
	ok(beq(&a.accepted, 5, 1) && beq(&a.promised, 6, 1) && a.value.len == 2,
	   "accept sets accepted and promises next(b)");
	is_int(hs_reg_acc_accept(&a, &b5, &v), 0, "duplicate accept acked, unchanged");
	is_int(hs_reg_acc_prepare(&a, &b5h), -HS_ESEALED,
	       "prepare between b and next(b) refused (implied promise)");
	is_int(hs_reg_acc_accept(&a, &b6, &v2), 1, "accept next(b) without prepare");
	hs_reg_acc_promise_entry(&a, (const uint8_t *)"k", 1, &b6, 0, &e);
	ok(e.status == 0 && beq(&e.accepted, 6, 1) && e.val.version == 2 &&
	   e.val.len == 3 && !memcmp(e.val.data, "v22", 3), "promise entry carries the value");
	is_int(hs_reg_acc_prepare(&a, &(struct hs_reg_ballot){ 0, 0 }), -HS_EPROTO,
	       "zero ballot refused");

	hs_reg_acc_enc(&a, &d);
	is_int(hs_reg_acc_dec(d.data, d.len, &c), 0, "state round trip");
	ok(beq(&c.promised, 7, 1) && beq(&c.accepted, 6, 1) && c.version == 2 &&
	   beq(&c.tag, 6, 2) && c.value.len == 3 && !memcmp(c.value.data, "v22", 3),
	   "decoded state equals the original");
	for (size_t k = 0; k < d.len; k++)
		bad += hs_reg_acc_dec(d.data, k, &c) == 0;
	is_int(bad, 0, "every truncated state refused");
	d.data[3] ^= 1;
	is_int(hs_reg_acc_dec(d.data, d.len, &c), -HS_ECHECKSUM, "corrupt state: checksum error");
	ok(c.version == 2, "failed decode leaves the state");
	hs_buf_free(&d);
	hs_reg_acc_free(&a);
	hs_reg_acc_free(&c);
}

/* ---- simulation --------------------------------------------------------- */

#define MAXOPS 4096
#define MAXKEYS 4096
#define NPROP_MAX 4
#define BITMAP (MAXOPS / 8)

static uint64_t rng;

static uint32_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (uint32_t)((rng * 0x2545f4914f6cdd1dull) >> 32);
}

static int chance(double p)
{
	return rnd() < p * 4294967296.0;
}

enum { EV_TO_ACC, EV_TO_PROP, EV_CRASH, EV_RESTART };

struct ev {
	uint64_t at, seq;
	int kind, acc, prop;
	struct hs_buf frame;
};

struct akey {
	uint8_t key[HS_REG_KEY_MAX];
	uint8_t klen;
	struct hs_buf disk;        /* persisted hs_reg_acc_enc() */
	struct hs_reg_acc mem;
	bool loaded;
};

struct acc {
	struct akey *keys;
	int nkeys;
	bool down;
};

enum { OP_INC, OP_READ, OP_CAS, OP_CASREAD, OP_CREATE };

struct op {
	int id, kind, prop, status;
	bool finished;
	uint64_t start, end;
	uint64_t expected, next;   /* CAS */
	uint8_t *seen;             /* READ: bitmap read */
};

struct sprop {
	struct sim *S;
	int idx;
	struct hs_reg_proposer *p;
	uint64_t timer_at;
	int left;                  /* ops still to issue */
	uint64_t cas_seen;         /* last value of "cas" this proposer saw */
};

struct simcfg {
	uint64_t seed;
	int nacc, q1, q2;
	bool unsafe;
	int nprop, ops, conc;
	double drop, dup;
	int maxdelay;
	bool crashes;
	int maxdown;
	int perm_down;             /* acceptor down all along, or -1 */
	size_t max_idle;           /* proposer's idle key cache; 0 = default */
	bool inc_only;             /* every op increments "ctr" */
	int max_attempts;          /* 0 = 8 */
};

struct sim {
	const struct simcfg *c;
	uint64_t now, seq;
	struct ev *evs;
	size_t nev, cap;
	struct acc acc[8];
	int ndown;
	struct sprop prop[NPROP_MAX];
	struct op ops[MAXOPS];
	int nops, nfinished;
	int violations;
	uint64_t sends, prepares;
	bool faults;
	/* counted outcomes */
	int n_ok, n_unknown, n_unavail, n_refused;
};

static void push(struct sim *S, uint64_t at, int kind, int acc, int prop, const uint8_t *fr,
		 size_t n)
{
	struct ev *e;

	if (S->nev == S->cap) {
		S->cap = S->cap ? S->cap * 2 : 256;
		S->evs = hs_xrealloc(S->evs, S->cap * sizeof(*S->evs));
	}
	e = &S->evs[S->nev++];
	memset(e, 0, sizeof(*e));
	e->at = at;
	e->seq = S->seq++;
	e->kind = kind;
	e->acc = acc;
	e->prop = prop;
	if (fr)
		hs_buf_append(&e->frame, fr, n);
}

/* Network send: maybe dropped, maybe duplicated, random delay (reorders). */
static void net(struct sim *S, int kind, int acc, int prop, const uint8_t *fr, size_t n)
{
	int copies = 1;

	if (S->faults && chance(S->c->drop))
		return;
	if (S->faults && chance(S->c->dup))
		copies = 2;
	while (copies--)
		push(S, S->now + 1 + rnd() % (unsigned)S->c->maxdelay, kind, acc, prop, fr, n);
}

static void op_send(void *arg, int idx, const uint8_t *frame, size_t len)
{
	struct sprop *sp = arg;

	sp->S->sends++;
	if (hs_get16(frame + 4) == HS_MSG_REG_PREPARE)
		sp->S->prepares++;
	net(sp->S, EV_TO_ACC, idx, sp->idx, frame, len);
}

static uint64_t op_now(void *arg)
{
	return ((struct sprop *)arg)->S->now;
}

static uint32_t op_rand(void *arg)
{
	return rnd();
}

static void op_timer(void *arg, uint64_t at)
{
	((struct sprop *)arg)->timer_at = at;
}

static const struct hs_reg_ops sim_ops = { op_send, op_now, op_rand, op_timer };

static struct hs_reg_acc *acc_state(struct acc *A, const uint8_t *key, uint8_t klen,
				    struct akey **out)
{
	struct akey *k = NULL;

	for (int i = 0; i < A->nkeys; i++)
		if (A->keys[i].klen == klen && !memcmp(A->keys[i].key, key, klen))
			k = &A->keys[i];
	if (!k) {
		A->keys = hs_xrealloc(A->keys, (size_t)(A->nkeys + 1) * sizeof(*A->keys));
		k = &A->keys[A->nkeys++];
		memset(k, 0, sizeof(*k));
		memcpy(k->key, key, klen);
		k->klen = klen;
		k->loaded = true;
	}
	if (!k->loaded) {
		/* After a restart: only what was persisted survives. */
		struct hs_reg_acc z = HS_REG_ACC_INIT;

		hs_reg_acc_free(&k->mem);
		k->mem = z;
		if (k->disk.len && hs_reg_acc_dec(k->disk.data, k->disk.len, &k->mem))
			abort();
		k->loaded = true;
	}
	*out = k;
	return &k->mem;
}

static void acc_handle(struct sim *S, int ai, int from, const uint8_t *fr, size_t n)
{
	struct acc *A = &S->acc[ai];
	struct hs_buf out = HS_BUF_INIT;
	struct hs_reg_entry e, r;
	struct hs_reg_rd rd;
	struct hs_msg_wr w;
	struct hs_frame fp;
	const char *why;
	bool prep;

	if (hs_frame_parse(fr, n, 0, &fp, &why) != (ssize_t)n ||
	    hs_msg_reg_dec(fp.type, fp.body, fp.body_len, &rd) ||
	    (fp.type != HS_MSG_REG_PREPARE && fp.type != HS_MSG_REG_ACCEPT)) {
		S->violations++;
		return;
	}
	prep = fp.type == HS_MSG_REG_PREPARE;
	if (prep)
		hs_msg_reg_promise_begin(&w, &out, fp.id);
	else
		hs_msg_reg_accepted_begin(&w, &out, fp.id);
	while (hs_reg_next(&rd, &e)) {
		struct akey *k;
		struct hs_reg_acc *st = acc_state(A, e.key, e.key_len, &k);
		int rc = prep ? hs_reg_acc_prepare(st, &e.ballot)
			      : hs_reg_acc_accept(st, &e.ballot, &e.val);

		if (rc == 1) {
			hs_buf_reset(&k->disk);
			hs_reg_acc_enc(st, &k->disk);
		}
		if (prep) {
			hs_reg_acc_promise_entry(st, e.key, e.key_len, &e.ballot, rc < 0 ? rc : 0, &r);
			hs_msg_reg_promise_add(&w, &r);
		} else {
			hs_msg_reg_accepted_add(&w, e.key, e.key_len, &e.ballot, rc < 0 ? rc : 0,
						&st->promised);
		}
	}
	hs_msg_wr_end(&w);
	net(S, EV_TO_PROP, ai, from, out.data, out.len);
	hs_buf_free(&out);
}

/* Counter value: u32 count | bitmap of the increment op ids applied. */
static int inc_fn(void *arg, const uint8_t *cur, size_t len, uint64_t version,
		  struct hs_buf *out)
{
	struct op *o = arg;
	uint8_t v[4 + BITMAP] = { 0 };
	uint32_t cnt, pc = 0;

	if (len && len != sizeof(v))
		return -HS_EINTERNAL;
	if (len)
		memcpy(v, cur, sizeof(v));
	cnt = hs_get32(v);
	for (int i = 0; i < BITMAP; i++)
		pc += (uint32_t)__builtin_popcount(v[4 + i]);
	if (pc != cnt || (v[4 + o->id / 8] & (1 << (o->id % 8))))
		return -HS_EINTERNAL;      /* applied twice: reported below */
	v[4 + o->id / 8] |= (uint8_t)(1 << (o->id % 8));
	hs_put32(v, cnt + 1);
	hs_buf_append(out, v, sizeof(v));
	return 0;
}

static int cas_fn(void *arg, const uint8_t *cur, size_t len, uint64_t version,
		  struct hs_buf *out)
{
	struct op *o = arg;
	uint64_t c = len == 8 ? hs_get64(cur) : 0;

	if (c != o->expected)
		return -HS_EEXIST;
	hs_w64(out, o->next);
	return 0;
}

static int create_fn(void *arg, const uint8_t *cur, size_t len, uint64_t version,
		     struct hs_buf *out)
{
	struct op *o = arg;

	if (len)
		return -HS_EEXIST;
	hs_w32(out, (uint32_t)o->id);
	return 0;
}

static struct sim *cur_sim;
static void issue(struct sprop *sp);

static void op_done(void *arg, int status, const uint8_t *value, size_t len, uint64_t version)
{
	struct op *o = arg;
	struct sim *S = cur_sim;
	struct sprop *sp = &S->prop[o->prop];

	o->status = status;
	o->end = S->now;
	o->finished = true;
	S->nfinished++;
	if (status == -HS_EINTERNAL)
		S->violations++;
	if (status == 0)
		S->n_ok++;
	else if (status == -HS_ETIMEOUT)
		S->n_unknown++;
	else if (status == -HS_EUNAVAIL)
		S->n_unavail++;
	else
		S->n_refused++;
	if (status == 0 && o->kind == OP_READ) {
		o->seen = hs_xcalloc(1, 4 + BITMAP);
		if (len)
			memcpy(o->seen, value, 4 + BITMAP);
	}
	if (status == 0 && (o->kind == OP_CAS || o->kind == OP_CASREAD))
		sp->cas_seen = len == 8 ? hs_get64(value) : 0;
	if (sp->left)
		issue(sp);
}

static void issue(struct sprop *sp)
{
	struct sim *S = sp->S;
	struct op *o = &S->ops[S->nops];
	uint32_t r = rnd() % 100;
	int rc;

	o->id = S->nops++;
	o->prop = sp->idx;
	o->start = S->now;
	sp->left--;
	if (r < 50 || S->c->inc_only) {
		o->kind = OP_INC;
		rc = hs_reg_change(sp->p, "ctr", 3, inc_fn, op_done, o);
	} else if (r < 65) {
		o->kind = OP_READ;
		rc = hs_reg_read(sp->p, "ctr", 3, op_done, o);
	} else if (r < 80) {
		o->kind = OP_CASREAD;
		rc = hs_reg_read(sp->p, "cas", 3, op_done, o);
	} else {
		o->kind = OP_CAS;
		o->expected = sp->cas_seen;
		o->next = (uint64_t)(sp->idx + 1) << 32 | (uint32_t)o->id;
		rc = hs_reg_change(sp->p, "cas", 3, cas_fn, op_done, o);
	}
	if (rc)
		abort();
}

static void crash_schedule(struct sim *S)
{
	push(S, S->now + 20 + rnd() % 200, EV_CRASH, (int)(rnd() % (unsigned)S->c->nacc), -1,
	     NULL, 0);
}

/* Run events until wait->len != 0, or if wait is NULL until every op
 * finished; returns 0, or -1 if stuck. */
static int run(struct sim *S, const struct hs_buf *wait)
{
	for (uint64_t steps = 0; steps < 5000000; steps++) {
		size_t best = SIZE_MAX;
		int tp = -1;
		uint64_t at = UINT64_MAX;
		struct ev e;

		if (wait && wait->len)
			return 0;
		if (!wait && S->nfinished == S->nops) {
			int left = 0;

			for (int i = 0; i < S->c->nprop; i++)
				left += S->prop[i].left;
			if (!left)
				return 0;
		}
		for (size_t i = 0; i < S->nev; i++)
			if (S->evs[i].at < at || (S->evs[i].at == at && S->evs[i].seq < S->evs[best].seq)) {
				at = S->evs[i].at;
				best = i;
			}
		for (int i = 0; i < S->c->nprop; i++)
			if (S->prop[i].timer_at && S->prop[i].timer_at < at) {
				at = S->prop[i].timer_at;
				tp = i;
			}
		if (at == UINT64_MAX)
			return -1;
		if (at > S->now)
			S->now = at;
		if (tp >= 0) {
			struct sprop *sp = &S->prop[tp];

			sp->timer_at = 0;
			hs_reg_proposer_on_timer(sp->p);
			hs_reg_proposer_flush(sp->p);
			continue;
		}
		e = S->evs[best];
		S->evs[best] = S->evs[--S->nev];
		switch (e.kind) {
		case EV_TO_ACC:
			if (!S->acc[e.acc].down)
				acc_handle(S, e.acc, e.prop, e.frame.data, e.frame.len);
			break;
		case EV_TO_PROP: {
			/* Replies sent before a crash still arrive. */
			struct hs_frame fp;
			const char *why;
			struct sprop *sp = &S->prop[e.prop];

			if (hs_frame_parse(e.frame.data, e.frame.len, 0, &fp, &why) <= 0 ||
			    hs_reg_proposer_on_reply(sp->p, e.acc, fp.type, fp.body, fp.body_len))
				S->violations++;
			hs_reg_proposer_flush(sp->p);
			break;
		}
		case EV_CRASH:
			if (S->faults) {
				struct acc *A = &S->acc[e.acc];

				if (!A->down && S->ndown < S->c->maxdown) {
					A->down = true;
					S->ndown++;
					for (int i = 0; i < A->nkeys; i++)
						A->keys[i].loaded = false;
					push(S, S->now + 10 + rnd() % 300, EV_RESTART, e.acc, -1,
					     NULL, 0);
				}
				crash_schedule(S);
			}
			break;
		case EV_RESTART:
			S->acc[e.acc].down = false;
			S->ndown--;
			break;
		}
		hs_buf_free(&e.frame);
	}
	return -1;
}

static bool bit(const uint8_t *v, int id)
{
	return v[4 + id / 8] & (1 << (id % 8));
}

static void read_done(void *arg, int status, const uint8_t *value, size_t len, uint64_t version)
{
	struct hs_buf *out = arg;

	hs_buf_reset(out);
	hs_w32(out, (uint32_t)status);
	hs_wbytes(out, value, len);
}

/* Final read without faults (crashed acceptors come back meanwhile);
 * out gets i32 status | value.  Returns 0 or -1. */
static int final_read(struct sim *S, const char *key, struct hs_buf *out)
{
	S->faults = false;
	for (int tries = 0; tries < 10; tries++) {
		hs_buf_reset(out);
		if (hs_reg_read(S->prop[0].p, key, strlen(key), read_done, out))
			return -1;
		hs_reg_proposer_flush(S->prop[0].p);
		if (run(S, out))
			return -1;
		if (!hs_get32(out->data))
			return 0;
	}
	return -1;
}

static void sim_free(struct sim *S)
{
	for (int i = 0; i < S->c->nprop; i++)
		hs_reg_proposer_free(S->prop[i].p);
	for (int a = 0; a < S->c->nacc; a++) {
		for (int i = 0; i < S->acc[a].nkeys; i++) {
			hs_buf_free(&S->acc[a].keys[i].disk);
			hs_reg_acc_free(&S->acc[a].keys[i].mem);
		}
		free(S->acc[a].keys);
	}
	for (size_t i = 0; i < S->nev; i++)
		hs_buf_free(&S->evs[i].frame);
	free(S->evs);
	for (int i = 0; i < S->nops; i++)
		free(S->ops[i].seen);
	free(S);
}

/* Outcomes of one simulation. */
struct simres {
	int nops, ok, unknown, unavail, counter;
};

/*
 * Run one simulation; returns the number of violations found (and -1 if
 * it did not terminate), *res its outcomes.  Prints a summary as a TAP
 * comment.
 */
static int simulate(const struct simcfg *c, const char *name, struct simres *res)
{
	struct sim *S = hs_xcalloc(1, sizeof(*S));
	struct hs_buf fv = HS_BUF_INIT, fc = HS_BUF_INIT;
	int viol = 0, stuck = 0, rc;
	uint64_t final_cas = 0;

	cur_sim = S;
	S->c = c;
	rng = c->seed * 0x9e3779b97f4a7c15ull + 1;
	S->faults = true;
	for (int i = 0; i < c->nprop; i++) {
		struct hs_reg_cfg rc2 = { .proposer_id = (uint32_t)(i + 1) << 16 | 1,
					  .nacc = c->nacc, .q1 = c->q1, .q2 = c->q2,
					  .timeout_ms = 60, .backoff_ms = 10,
					  .max_attempts = c->max_attempts ? c->max_attempts : 8,
					  .unsafe_quorums = c->unsafe, .max_idle = c->max_idle };

		S->prop[i].S = S;
		S->prop[i].idx = i;
		S->prop[i].left = c->ops;
		if (hs_reg_proposer_new(&rc2, &sim_ops, &S->prop[i], &S->prop[i].p))
			abort();
	}
	if (c->perm_down >= 0) {
		S->acc[c->perm_down].down = true;
		S->ndown = 1;
	}
	if (c->crashes)
		crash_schedule(S);
	for (int i = 0; i < c->nprop; i++) {
		for (int k = 0; k < c->conc && S->prop[i].left; k++)
			issue(&S->prop[i]);
		hs_reg_proposer_flush(S->prop[i].p);
	}
	if (run(S, NULL))
		stuck = 1;
	if (!stuck && (final_read(S, "ctr", &fv) || final_read(S, "cas", &fc)))
		stuck = 1;
	if (stuck) {
		printf("# %s: seed %llu did not terminate\n", name, (unsigned long long)c->seed);
		viol = -1;
		goto out;
	}
	viol = S->violations;
	{
		uint8_t fin[4 + BITMAP] = { 0 };

		if (fv.len == 4 + 4 + BITMAP)
			memcpy(fin, fv.data + 4, sizeof(fin));
		if (fc.len == 4 + 8)
			final_cas = hs_get64(fc.data + 4);
		for (int i = 0; i < S->nops; i++) {
			struct op *o = &S->ops[i];

			if (o->kind == OP_INC) {
				/* (a) completed -> present; present -> completed or unknown */
				if (o->status == 0 && !bit(fin, i))
					viol++;
				if (bit(fin, i) && o->status != 0 && o->status != -HS_ETIMEOUT)
					viol++;
			}
			if (o->kind != OP_READ || o->status)
				continue;
			/* (b) a read sees every increment completed before it began,
			 * nothing absent from the final value, and every read that
			 * completed before it began. */
			for (int j = 0; j < S->nops; j++) {
				struct op *q = &S->ops[j];

				if (q->kind == OP_INC && q->status == 0 && q->end < o->start &&
				    !bit(o->seen, j))
					viol++;
				if (q->kind == OP_INC && bit(o->seen, j) && !bit(fin, j))
					viol++;
				if (q->kind == OP_READ && q->status == 0 && q->end < o->start &&
				    hs_get32(q->seen) > hs_get32(o->seen))
					viol++;
			}
		}
		/* CAS: two successes from the same expected value are a lost
		 * update; every expected value and the final one must have been
		 * written by a success or an unknown. */
		for (int i = 0; i < S->nops; i++) {
			struct op *o = &S->ops[i];
			bool from = o->expected == 0;

			if (o->kind != OP_CAS || o->status)
				continue;
			for (int j = 0; j < S->nops; j++) {
				struct op *q = &S->ops[j];

				if (q->kind != OP_CAS)
					continue;
				if (j != i && q->status == 0 && q->expected == o->expected)
					viol++;
				if ((q->status == 0 || q->status == -HS_ETIMEOUT) &&
				    q->next == o->expected)
					from = true;
			}
			viol += !from;
		}
		if (final_cas) {
			bool found = false;

			for (int j = 0; j < S->nops; j++)
				if (S->ops[j].kind == OP_CAS && S->ops[j].next == final_cas &&
				    (S->ops[j].status == 0 || S->ops[j].status == -HS_ETIMEOUT))
					found = true;
			viol += !found;
		}
		res->counter = (int)hs_get32(fin);
		printf("# %s: seed %llu: %d ops: %d ok, %d unknown, %d unavailable, %d refused "
		       "by fn; counter %u; %llu frames; t=%llums; %d violations\n",
		       name, (unsigned long long)c->seed, S->nops, S->n_ok, S->n_unknown,
		       S->n_unavail, S->n_refused, hs_get32(fin), (unsigned long long)S->sends,
		       (unsigned long long)S->now, viol);
	}
out:
	hs_buf_free(&fv);
	hs_buf_free(&fc);
	rc = viol;
	res->nops = S->nops;
	res->ok = S->n_ok;
	res->unknown = S->n_unknown;
	res->unavail = S->n_unavail;
	sim_free(S);
	return rc;
}

static void test_config(void)
{
	struct hs_reg_proposer *p = NULL;
	struct sprop sp = { 0 };
	struct hs_reg_cfg c = { .proposer_id = 1, .nacc = 4, .q1 = 2, .q2 = 2 };

	is_int(hs_reg_proposer_new(&c, &sim_ops, &sp, &p), -HS_ECONFIG,
	       "M=4 Q1=2 Q2=2 refused (quorums may not intersect)");
	c.q1 = 3;
	is_int(hs_reg_proposer_new(&c, &sim_ops, &sp, &p), 0, "M=4 Q1=3 Q2=2 accepted");
	hs_reg_proposer_free(p);
	c.q1 = 5;
	is_int(hs_reg_proposer_new(&c, &sim_ops, &sp, &p), -HS_ECONFIG, "Q1 > M refused");
	c.q1 = c.q2 = 0;
	c.nacc = 3;
	is_int(hs_reg_proposer_new(&c, &sim_ops, &sp, &p), 0, "M=3 majority default accepted");
	is_int(hs_reg_change(p, "", 0, cas_fn, op_done, NULL), -HS_EDATA, "empty key refused");
	hs_reg_proposer_free(p);
	c.proposer_id = 0;
	is_int(hs_reg_proposer_new(&c, &sim_ops, &sp, &p), -HS_ECONFIG, "proposer id 0 refused");
}

/* No faults: batching of many keys into few frames, and the fast path. */
static void test_batching(uint64_t seed)
{
	struct simcfg c = { .seed = seed, .nacc = 3, .nprop = 1, .maxdelay = 5, .perm_down = -1 };
	struct sim *S = hs_xcalloc(1, sizeof(*S));
	struct hs_reg_cfg rc = { .proposer_id = 9, .nacc = 3 };
	struct sprop *sp = &S->prop[0];
	int created = 0, exist = 0;
	uint64_t prep0, sends0;

	cur_sim = S;
	S->c = &c;
	rng = seed;
	sp->S = S;
	if (hs_reg_proposer_new(&rc, &sim_ops, sp, &sp->p))
		abort();
	/* 2000 creations, 1000 distinct keys each created twice. */
	for (int i = 0; i < 2000; i++) {
		char key[16];
		struct op *o = &S->ops[S->nops];

		o->id = S->nops++;
		o->kind = OP_CREATE;
		snprintf(key, sizeof(key), "s/%d", i % 1000);
		hs_reg_change(sp->p, key, strlen(key), create_fn, op_done, o);
	}
	hs_reg_proposer_flush(sp->p);
	ok(!run(S, NULL), "batching: all creations complete");
	for (int i = 0; i < S->nops; i++) {
		created += S->ops[i].status == 0;
		exist += S->ops[i].status == -HS_EEXIST;
	}
	ok(created == 1000 && exist == 1000, "batching: each key created once (%d, %d)", created,
	   exist);
	ok(S->sends <= 6, "batching: 2000 changes in %llu frames", (unsigned long long)S->sends);
	is_int(hs_reg_proposer_busy(sp->p), 0, "batching: nothing busy");

	/* Sequential increments of one key: only the first does phase 1. */
	prep0 = S->prepares;
	sends0 = S->sends;
	for (int i = 0; i < 10; i++) {
		struct op *o = &S->ops[S->nops];

		o->id = S->nops++;
		o->kind = OP_INC;
		o->prop = 0;
		hs_reg_change(sp->p, "ctr", 3, inc_fn, op_done, o);
		hs_reg_proposer_flush(sp->p);
		run(S, NULL);
	}
	is_int(S->prepares - prep0, 3, "fast path: one PREPARE round for 10 changes");
	is_int(S->sends - sends0, 3 + 10 * 3, "fast path: 11 rounds of 3 frames");
	ok(S->n_ok == 1000 + 10, "fast path: all increments ok");
	sim_free(S);
}

/*
 * No loss, no crash, 2 proposers hammering one counter: every increment
 * must complete, none with an unknown outcome (however many versions the
 * other adds while one backs off), and the counter is exactly their number.
 * (With 3, one proposer can still starve through max_attempts rounds and
 * give up: a liveness matter of the backoff, not of exactly-once.)
 */
static void test_contention(uint64_t base)
{
	int bad = 0, unknown = 0, notok = 0, wrong = 0, runs = 12;

	for (int r = 0; r < runs; r++) {
		struct simcfg c = { .seed = base + 2000 + (uint64_t)r, .nacc = r % 4 == 3 ? 5 : 3,
				    .nprop = 2, .ops = 200, .conc = 1 + r % 3,
				    .maxdelay = 2 + (int)(r % 3) * 9, .perm_down = -1,
				    .inc_only = true, .max_attempts = 16 };
		struct simres res = { 0 };

		bad += simulate(&c, "contention", &res) != 0;
		unknown += res.unknown;
		notok += res.nops - res.ok;
		wrong += res.counter != res.ok;
	}
	is_int(bad, 0, "contention: %d seeded runs, no violation", runs);
	is_int(unknown, 0, "contention: no increment with an unknown outcome");
	is_int(notok, 0, "contention: every increment applied");
	is_int(wrong, 0, "contention: each counter is the number of increments");
}

int main(void)
{
	const char *env = getenv("HS_SEED");
	uint64_t base = env ? strtoull(env, NULL, 0) : 20240601;
	static const struct {
		const char *name;
		int nacc, q1, q2, nprop, maxdown, perm_down;
		size_t max_idle;
	} cases[] = {
		{ "M=3", 3, 0, 0, 3, 1, -1, 0 },
		{ "M=5", 5, 0, 0, 3, 2, -1, 0 },
		{ "M=4 Q1=3 Q2=2", 4, 3, 2, 3, 1, -1, 0 },
		{ "M=4 Q1=3 Q2=2, acceptor 3 lost", 4, 3, 2, 2, 0, 3, 0 },
		{ "M=3, 1 idle key cached (evictions)", 3, 0, 0, 3, 1, -1, 1 },
	};

	printf("# base seed %llu (HS_SEED to override)\n", (unsigned long long)base);
	test_codecs();
	test_acceptor();
	test_config();
	test_batching(base);

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		int bad = 0, runs = 6, slow = 0;

		for (int r = 0; r < runs; r++) {
			struct simcfg c = { .seed = base + k * 100 + (uint64_t)r, .nacc = cases[k].nacc,
					    .q1 = cases[k].q1, .q2 = cases[k].q2,
					    .nprop = cases[k].nprop, .ops = 250, .conc = 3,
					    .drop = 0.05, .dup = 0.05, .maxdelay = 20,
					    .crashes = cases[k].maxdown > 0,
					    .maxdown = cases[k].maxdown,
					    .perm_down = cases[k].perm_down,
					    .max_idle = cases[k].max_idle };
			struct simres res = { 0 };

			bad += simulate(&c, cases[k].name, &res) != 0;
			slow += res.ok < c.nprop * c.ops / 2;
		}
		is_int(bad, 0, "%s: %d seeded runs, no violation", cases[k].name, runs);
		is_int(slow, 0, "%s: over half the changes complete in every run", cases[k].name);
	}

	test_contention(base);

	/* Unsafe quorums (Q1 + Q2 <= M, init check bypassed): some seed must
	 * expose a violation, or the checker is too weak. */
	{
		int found = -1;

		for (int r = 0; r < 20 && found < 0; r++) {
			struct simcfg c = { .seed = base + 1000 + (uint64_t)r, .nacc = 3, .q1 = 1,
					    .q2 = 1, .unsafe = true, .nprop = 3, .ops = 150,
					    .conc = 3, .drop = 0.05, .dup = 0.05, .maxdelay = 20,
					    .perm_down = -1 };

			struct simres res = { 0 };

			if (simulate(&c, "unsafe M=3 Q1=1 Q2=1", &res) > 0)
				found = r;
		}
		ok(found >= 0, "unsafe quorums: violation found (seed %llu)",
		   (unsigned long long)(base + 1000 + (uint64_t)(found < 0 ? 0 : found)));
	}
	hs_buf_free(&b);
	return tap_done();
}
