/* peers.c - hs-serve's peer links (peers.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "err.h"
#include "log.h"
#include "net.h"
#include "peers.h"
#include "proto.h"

#define BACKOFF_MIN_MS 25
#define BACKOFF_MAX_MS 1000
#define MAX_LINKS 64

struct req {
	struct req *next;
	uint64_t id;
	hs_peers_reply_fn *fn;
	void *arg;
	int multi;
};

struct link {
	struct hs_peers *ps;
	int idx;
	char addr[HS_NET_ADDR_MAX];
	struct hs_conn *c;        /* NULL while down */
	int up;
	uint32_t node_id;
	size_t max_out;
	uint64_t hello_id;
	uint64_t retry;           /* timer id, 0 = none */
	uint64_t backoff;
	int warned;
	struct req **tab;         /* hash by id: nb buckets (power of 2) */
	size_t nb, nreq;
	uint64_t connects, losses;
	int last_err;             /* last failure (<= 0) and its wall ms */
	uint64_t last_err_ms;
};

struct hs_peers {
	struct hs_loop *loop;
	struct hs_peers_ops ops;
	void *arg;
	size_t max_frame;
	uint64_t next_id;
	int quiet;                /* hs_peers_quiet: losses are expected */
	int n;
	struct link links[];
};

static void link_connect(struct link *k);

static size_t slot(const struct link *k, uint64_t id)
{
	return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 32) & (k->nb - 1);
}

static struct req *req_take(struct link *k, uint64_t id, int remove)
{
	struct req **pp, *r;

	if (!k->nb)
		return NULL;
	for (pp = &k->tab[slot(k, id)]; (r = *pp); pp = &r->next) {
		if (r->id != id)
			continue;
		if (remove) {
			*pp = r->next;
			k->nreq--;
		}
		return r;
	}
	return NULL;
}

static void req_put(struct link *k, struct req *r)
{
	size_t i;

	if (k->nreq + 1 > k->nb * 2) {
		size_t nb = k->nb ? k->nb * 2 : 64;
		struct req **t = hs_xcalloc(nb, sizeof(*t));

		for (i = 0; i < k->nb; i++) {
			struct req *x, *nx;

			for (x = k->tab[i]; x; x = nx) {
				size_t j = (size_t)((x->id * 0x9E3779B97F4A7C15ull) >> 32) & (nb - 1);

				nx = x->next;
				x->next = t[j];
				t[j] = x;
			}
		}
		free(k->tab);
		k->tab = t;
		k->nb = nb;
	}
	i = slot(k, r->id);
	r->next = k->tab[i];
	k->tab[i] = r;
	k->nreq++;
}

static void on_retry(struct hs_loop *l, void *arg)
{
	struct link *k = arg;

	k->retry = 0;
	link_connect(k);
}

static void schedule(struct link *k)
{
	if (k->retry)
		return;
	k->retry = hs_loop_timer(k->ps->loop, k->backoff, on_retry, k);
	k->backoff = k->backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : k->backoff * 2;
}

static void on_frame(struct hs_conn *c, const struct hs_frame *f, void *arg)
{
	struct link *k = arg;
	struct hs_peers *ps;
	struct req *r;

	if (!k)
		return; /* hs_peers_free() detached it */
	ps = k->ps;

	if (!k->up) {
		struct hs_hello h;
		struct hs_result res;

		if (f->type == HS_MSG_HELLO && hs_msg_hello_dec(f->body, f->body_len, &h) == 0 &&
		    h.version == HS_PROTO_VERSION) {
			k->up = 1;
			k->warned = 0;
			k->backoff = BACKOFF_MIN_MS;
			k->node_id = h.node_id;
			k->max_out = h.max_frame < HS_FRAME_MAX_MIN ? HS_FRAME_MAX_MIN : h.max_frame;
			hs_info("peer %s (node %u) is up", k->addr, h.node_id);
			if (ps->ops.up)
				ps->ops.up(ps->arg, k->idx, h.node_id);
			return;
		}
		if (f->type == HS_MSG_RESULT && hs_msg_result_dec(f->body, f->body_len, &res) == 0)
			hs_warn("peer %s refused us: %.*s", k->addr, (int)res.msg_len, res.msg);
		else
			hs_warn("peer %s: unexpected %s before HELLO", k->addr, hs_msg_name(f->type));
		hs_conn_close(c, -HS_EPROTO);
		return;
	}
	r = req_take(k, f->id, 0);
	if (!r) {
		if (ps->ops.frame)
			ps->ops.frame(ps->arg, k->idx, f);
		return;
	}
	if (!r->multi) {
		req_take(k, f->id, 1);
		r->fn(r->arg, k->idx, f);
		free(r);
		return;
	}
	r->fn(r->arg, k->idx, f);
}

static void on_closed(struct hs_conn *c, int err, void *arg)
{
	struct link *k = arg;
	struct hs_peers *ps;
	int was_up;

	if (!k)
		return; /* hs_peers_free() detached it */
	ps = k->ps;
	was_up = k->up;

	k->c = NULL;
	k->up = 0;
	k->losses += was_up;
	/* A close without a code is the peer going away (EOF). */
	k->last_err = err ? err : -ECONNRESET;
	k->last_err_ms = hs_wall_ms();
	if ((was_up || !k->warned) && !ps->quiet)
		hs_warn("peer %s: %s; reconnecting", k->addr,
			was_up ? (err ? hs_strerror(err) : "connection closed")
			       : (err ? hs_strerror(err) : "closed before HELLO"));
	else if (was_up)
		hs_info("peer %s: %s", k->addr, err ? hs_strerror(err) : "connection closed");
	k->warned = 1;
	/* Complete every waiting request; callbacks may register new ones
	 * (they cannot, while we are down, but be robust): drain by bucket. */
	for (size_t i = 0; i < k->nb; i++) {
		struct req *r;

		while ((r = k->tab[i])) {
			k->tab[i] = r->next;
			k->nreq--;
			r->fn(r->arg, k->idx, NULL);
			free(r);
		}
	}
	if (was_up && ps->ops.down)
		ps->ops.down(ps->arg, k->idx);
	schedule(k);
}

static const struct hs_conn_ops link_ops = {
	.frame = on_frame,
	.closed = on_closed,
};

static void link_connect(struct link *k)
{
	struct hs_hello h = { .version = HS_PROTO_VERSION, .role = HS_ROLE_SERVE };
	int fd;

	if (k->c)
		return;
	k->connects++;
	fd = hs_net_connect(k->addr, 1);
	if (fd < 0) {
		k->last_err = fd;
		k->last_err_ms = hs_wall_ms();
		if (!k->warned)
			hs_info("peer %s: cannot connect (%s); retrying", k->addr, hs_strerror(fd));
		k->warned = 1;
		schedule(k);
		return;
	}
	k->c = hs_conn_new(k->ps->loop, fd, &link_ops, k);
	if (!k->c) {
		schedule(k);
		return;
	}
	hs_conn_set_max_frame(k->c, k->ps->max_frame);
	h.max_frame = (uint32_t)k->ps->max_frame;
	k->hello_id = hs_peers_next_id(k->ps);
	hs_msg_hello_enc(hs_conn_out(k->c), k->hello_id, &h);
}

int hs_peers_new(struct hs_loop *l, const char *const *addrs, int n, size_t max_frame,
		 const struct hs_peers_ops *ops, void *arg, struct hs_peers **out)
{
	struct hs_peers *ps;

	if (n < 1 || n > MAX_LINKS)
		return -HS_ECONFIG;
	ps = hs_xcalloc(1, sizeof(*ps) + (size_t)n * sizeof(struct link));
	ps->loop = l;
	ps->ops = *ops;
	ps->arg = arg;
	ps->max_frame = max_frame ? max_frame : HS_FRAME_MAX_DEFAULT;
	ps->n = n;
	for (int i = 0; i < n; i++) {
		struct link *k = &ps->links[i];

		k->ps = ps;
		k->idx = i;
		k->backoff = BACKOFF_MIN_MS;
		k->max_out = HS_FRAME_MAX_MIN;
		strncpy(k->addr, addrs[i], sizeof(k->addr) - 1);
	}
	for (int i = 0; i < n; i++)
		link_connect(&ps->links[i]);
	*out = ps;
	return 0;
}

void hs_peers_quiet(struct hs_peers *ps)
{
	ps->quiet = 1;
}

void hs_peers_free(struct hs_peers *ps)
{
	if (!ps)
		return;
	for (int i = 0; i < ps->n; i++) {
		struct link *k = &ps->links[i];

		hs_loop_timer_cancel(ps->loop, k->retry);
		k->retry = 0;
		if (k->c) {
			struct hs_conn *c = k->c;

			/* No callbacks from here on: closed would reschedule. */
			hs_conn_set_arg(c, NULL);
			k->c = NULL;
			hs_conn_close(c, 0);
		}
		for (size_t j = 0; j < k->nb; j++) {
			struct req *r, *nx;

			for (r = k->tab[j]; r; r = nx) {
				nx = r->next;
				free(r);
			}
		}
		free(k->tab);
	}
	free(ps);
}

int hs_peers_count(const struct hs_peers *ps)
{
	return ps->n;
}

int hs_peers_is_up(const struct hs_peers *ps, int idx)
{
	return ps->links[idx].up;
}

uint32_t hs_peers_node_id(const struct hs_peers *ps, int idx)
{
	return ps->links[idx].node_id;
}

const char *hs_peers_addr(const struct hs_peers *ps, int idx)
{
	return ps->links[idx].addr;
}

size_t hs_peers_max_frame(const struct hs_peers *ps, int idx)
{
	return ps->links[idx].max_out;
}

size_t hs_peers_pending(const struct hs_peers *ps, int idx)
{
	const struct link *k = &ps->links[idx];

	return k->up && k->c ? hs_conn_out_pending(k->c) : 0;
}

struct hs_buf *hs_peers_out(struct hs_peers *ps, int idx)
{
	struct link *k = &ps->links[idx];

	if (!k->up || !k->c || hs_conn_closing(k->c))
		return NULL;
	return hs_conn_out(k->c);
}

uint64_t hs_peers_next_id(struct hs_peers *ps)
{
	return ++ps->next_id;
}

void hs_peers_expect(struct hs_peers *ps, int idx, uint64_t id, hs_peers_reply_fn *fn, void *arg,
		     int multi)
{
	struct req *r = hs_xmalloc(sizeof(*r));

	r->id = id;
	r->fn = fn;
	r->arg = arg;
	r->multi = multi;
	req_put(&ps->links[idx], r);
}

void hs_peers_forget(struct hs_peers *ps, int idx, uint64_t id)
{
	free(req_take(&ps->links[idx], id, 1));
}

void hs_peers_kick(struct hs_peers *ps, int idx)
{
	struct link *k = &ps->links[idx];

	if (k->c)
		return;
	hs_loop_timer_cancel(ps->loop, k->retry);
	k->retry = 0;
	k->backoff = BACKOFF_MIN_MS;
	link_connect(k);
}

int hs_peers_last_error(const struct hs_peers *ps, int idx, uint64_t *when_ms)
{
	*when_ms = ps->links[idx].last_err_ms;
	return ps->links[idx].last_err;
}

void hs_peers_note_error(struct hs_peers *ps, int idx, int err)
{
	ps->links[idx].last_err = err;
	ps->links[idx].last_err_ms = hs_wall_ms();
}

void hs_peers_counters(const struct hs_peers *ps, int idx, uint64_t *connects, uint64_t *losses)
{
	*connects = ps->links[idx].connects;
	*losses = ps->links[idx].losses;
}
