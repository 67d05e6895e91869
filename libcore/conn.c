/* conn.c - see conn.h for the read path, write path and lifetime rules. */
#include "conn.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "net.h"
#include "proto.h"
#include "wire.h"

/* Bytes read per read(2); a frame known to be larger gets room for all of it. */
#define READ_CHUNK (64u << 10)
/* Reads per readiness event, so one busy peer cannot hog a turn forever but
 * a fast one still fills a group commit. */
#define READS_PER_EVENT 4
/* An idle input buffer larger than this is freed (after a big frame). */
#define IN_KEEP (4 * READ_CHUNK)

struct hs_conn {
	struct hs_loop *loop;
	int fd;
	const struct hs_conn_ops *ops;
	void *arg;

	struct hs_buf in;   /* unparsed input starts at offset 0 between reads */
	struct hs_buf out;
	size_t out_off;     /* first unsent byte of out */
	size_t max_frame;
	size_t low, high;

	uint32_t events;    /* registered with the loop */
	unsigned busy;      /* depth of our own callbacks running */
	int paused;         /* reading stopped for back-pressure */
	int held;           /* reading stopped by the owner (hs_conn_hold_read) */
	int blocked;        /* last send hit EAGAIN: waiting for EPOLLOUT */
	int closing;
	int err;            /* closing cause */
	struct hs_defer task; /* flush, or finish closing */
	int peer_known;
	char peer[64];
};

static void finish(struct hs_conn *c);

static const char *peer_name(struct hs_conn *c)
{
	/* ENOTCONN while a connect is in progress: try again later. */
	if (!c->peer_known && c->fd >= 0 && hs_net_peer_name(c->fd, c->peer, sizeof(c->peer)) == 0)
		c->peer_known = 1;
	return c->peer;
}

const char *hs_conn_peer_name(struct hs_conn *c)
{
	return peer_name(c);
}

size_t hs_conn_out_pending(const struct hs_conn *c)
{
	return c->out.len - c->out_off;
}

/* Register the events our state asks for. */
static void update_events(struct hs_conn *c)
{
	size_t pending = hs_conn_out_pending(c);
	uint32_t ev;

	if (c->closing)
		return;
	if (pending > c->high)
		c->paused = 1;
	else if (pending < c->low)
		c->paused = 0;
	ev = (c->paused || c->held ? 0 : HS_EV_READ) | (pending && c->blocked ? HS_EV_WRITE : 0);
	if (ev != c->events && hs_loop_mod_fd(c->loop, c->fd, ev) == 0)
		c->events = ev;
}

/* Start closing: no more I/O or callbacks except closed.  The final
 * finish() is left to the caller. */
static void start_close(struct hs_conn *c, int err, int last_send)
{
	if (c->closing)
		return;
	c->closing = 1;
	c->err = err;
	peer_name(c);
	if (last_send && hs_conn_out_pending(c))
		(void)!send(c->fd, c->out.data + c->out_off, hs_conn_out_pending(c),
			    MSG_NOSIGNAL | MSG_DONTWAIT);
	hs_loop_del_fd(c->loop, c->fd);
	close(c->fd);
	c->fd = -1;
}

/* Close from a context that must not free c: finish at the end of the
 * running callback, or of the loop turn. */
static void fail(struct hs_conn *c, int err)
{
	start_close(c, err, 0);
	if (!c->busy)
		hs_loop_defer(c->loop, &c->task);
}

static void flush(struct hs_conn *c)
{
	size_t before = hs_conn_out_pending(c);

	if (c->closing)
		return;
	while (hs_conn_out_pending(c)) {
		ssize_t n = send(c->fd, c->out.data + c->out_off, hs_conn_out_pending(c),
				 MSG_NOSIGNAL);

		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			c->blocked = 1;
			break;
		}
		fail(c, n < 0 ? -errno : -EPIPE);
		return;
	}
	if (!hs_conn_out_pending(c)) {
		c->out.len = c->out_off = 0;
		c->blocked = 0;
	} else if (c->out_off >= hs_conn_out_pending(c)) {
		/* Moving fewer bytes than were sent keeps this amortised O(1). */
		hs_buf_consume(&c->out, c->out_off);
		c->out_off = 0;
	}
	if (before >= c->low && hs_conn_out_pending(c) < c->low && c->ops->writable) {
		c->busy++;
		c->ops->writable(c, c->arg);
		c->busy--;
		if (c->closing && !c->busy)
			hs_loop_defer(c->loop, &c->task);
	}
	update_events(c);
}

void hs_conn_flush(struct hs_conn *c)
{
	flush(c);
}

/* Parse and dispatch every complete frame in c->in; compact the rest once.
 * A malformed frame starts closing c. */
static void parse_frames(struct hs_conn *c)
{
	size_t off = 0;

	while (!c->closing && off < c->in.len) {
		struct hs_frame f;
		const char *why = NULL;
		ssize_t r = hs_frame_parse(c->in.data + off, c->in.len - off, c->max_frame, &f, &why);

		if (r == 0)
			break;
		if (r < 0) {
			hs_warn("closing connection from %s: %s", peer_name(c),
				why ? why : hs_strerror((int)r));
			start_close(c, (int)r, 1);
			return;
		}
		off += (size_t)r;
		c->ops->frame(c, &f, c->arg);
	}
	if (c->closing)
		return;
	if (off == c->in.len) {
		c->in.len = 0;
		if (c->in.cap > IN_KEEP)
			hs_buf_free(&c->in);
	} else if (off) {
		memmove(c->in.data, c->in.data + off, c->in.len - off);
		c->in.len -= off;
	}
}

/* force: read once even while paused - after ERR/HUP, which epoll reports
 * whatever we asked for, so not reading would spin until the backlog drains. */
static void read_some(struct hs_conn *c, int force)
{
	for (int i = 0; i < READS_PER_EVENT && !c->closing && ((!c->paused && !c->held) || (force && !i)); i++) {
		size_t want = READ_CHUNK, space;
		ssize_t n;

		/* Room for the whole pending frame, so it arrives in few reads. */
		if (c->in.len >= 4) {
			size_t flen = hs_get32(c->in.data);

			if (flen > c->in.len && flen <= c->max_frame && flen - c->in.len > want)
				want = flen - c->in.len;
		}
		hs_buf_reserve(&c->in, want);
		space = c->in.cap - c->in.len;
		n = read(c->fd, c->in.data + c->in.len, space);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return;
			start_close(c, -errno, 0);
			return;
		}
		if (n == 0) {
			if (c->in.len) {
				hs_warn("closing connection from %s: truncated frame at end of stream",
					peer_name(c));
				start_close(c, -HS_EPROTO, 0);
			} else {
				start_close(c, 0, 1);
			}
			return;
		}
		c->in.len += (size_t)n;
		parse_frames(c);
		if ((size_t)n < space)
			return;
		update_events(c);
	}
}

static void conn_io(struct hs_loop *l, int fd, uint32_t revents, void *arg)
{
	struct hs_conn *c = arg;

	c->busy++;
	if (revents & HS_EV_WRITE)
		flush(c);
	/* ERR/HUP: the read returns the error or the EOF. */
	if (!c->closing && (revents & (HS_EV_READ | HS_EV_ERR | HS_EV_HUP)))
		read_some(c, !!(revents & (HS_EV_ERR | HS_EV_HUP)));
	c->busy--;
	if (c->closing) {
		if (!c->busy)
			finish(c);
		return;
	}
	update_events(c);
}

static void conn_task(struct hs_loop *l, struct hs_defer *d)
{
	struct hs_conn *c = (struct hs_conn *)((char *)d - offsetof(struct hs_conn, task));

	if (c->closing) {
		if (!c->busy)
			finish(c);
		return;
	}
	flush(c);
}

/* The end: closed fires, c is freed. */
static void finish(struct hs_conn *c)
{
	hs_loop_defer_cancel(c->loop, &c->task);
	c->ops->closed(c, c->err, c->arg);
	hs_buf_free(&c->in);
	hs_buf_free(&c->out);
	free(c);
}

struct hs_conn *hs_conn_new(struct hs_loop *l, int fd, const struct hs_conn_ops *ops, void *arg)
{
	struct hs_conn *c;
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0))
		goto out_close;
	c = hs_xcalloc(1, sizeof(*c));
	c->loop = l;
	c->fd = fd;
	c->ops = ops;
	c->arg = arg;
	c->max_frame = HS_FRAME_MAX_DEFAULT;
	c->low = HS_CONN_LOW_WATER;
	c->high = HS_CONN_HIGH_WATER;
	c->task.fn = conn_task;
	c->events = HS_EV_READ;
	snprintf(c->peer, sizeof(c->peer), "unknown");
	if (hs_loop_add_fd(l, fd, c->events, conn_io, c) < 0) {
		free(c);
		goto out_close;
	}
	peer_name(c);
	return c;

out_close:
	close(fd);
	return NULL;
}

void hs_conn_set_max_frame(struct hs_conn *c, size_t max)
{
	c->max_frame = max;
}

void hs_conn_set_water(struct hs_conn *c, size_t low, size_t high)
{
	c->low = low;
	c->high = high < low ? low : high;
	update_events(c);
}

struct hs_buf *hs_conn_out(struct hs_conn *c)
{
	if (!c->closing)
		hs_loop_defer(c->loop, &c->task);
	return &c->out;
}

void hs_conn_close(struct hs_conn *c, int err)
{
	/* A connection already closing (a failed send, EOF) waits for a
	 * deferred task that may never run if the loop has stopped: finishing
	 * it here, when no callback of its own is running, keeps "close every
	 * connection" loops at shutdown finite. */
	start_close(c, err, 1);
	if (!c->busy)
		finish(c);
}

int hs_conn_closing(const struct hs_conn *c)
{
	return c->closing;
}

void *hs_conn_arg(const struct hs_conn *c)
{
	return c->arg;
}

void hs_conn_set_arg(struct hs_conn *c, void *arg)
{
	c->arg = arg;
}

struct hs_loop *hs_conn_loop(const struct hs_conn *c)
{
	return c->loop;
}

void hs_conn_hold_read(struct hs_conn *c, int hold)
{
	if (c->closing || c->held == !!hold)
		return;
	c->held = !!hold;
	update_events(c);
}
