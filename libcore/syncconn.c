/* syncconn.c - see syncconn.h. */
#include "syncconn.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "err.h"
#include "net.h"
#include "wire.h"

#define READ_CHUNK (256u << 10)

int hs_sconn_open(struct hs_sconn *c, const char *addr, int timeout_ms)
{
	int fd;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->max_in = HS_FRAME_MAX_DEFAULT;
	c->max_out = HS_FRAME_MAX_MIN;
	c->timeout_ms = timeout_ms;
	fd = hs_net_connect_timeout(addr, timeout_ms < 0 ? 3600 * 1000 : timeout_ms);
	if (fd < 0)
		return fd;
	c->fd = fd;
	return 0;
}

/* Wait for events on the fd, bounded by the timeout.  1 ready, 0 timeout. */
static int wait_fd(int fd, short events, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int r;

	do
		r = poll(&pfd, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return r;
}

int hs_sconn_wait(struct hs_sconn *c, int timeout_ms)
{
	if (c->in.len > c->in_off)
		return 1;
	return wait_fd(c->fd, POLLIN, timeout_ms);
}

int hs_sconn_flush(struct hs_sconn *c)
{
	size_t off = 0;
	int r;

	while (off < c->out.len) {
		ssize_t n = send(c->fd, c->out.data + off, c->out.len - off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN) {
			r = -errno;
			goto out;
		}
		r = wait_fd(c->fd, POLLOUT, c->timeout_ms);
		if (r < 0)
			goto out;
		if (r == 0) {
			r = -HS_ETIMEOUT;
			goto out;
		}
	}
	r = 0;
out:
	hs_buf_consume(&c->out, off);
	return r;
}

int hs_sconn_recv(struct hs_sconn *c, struct hs_frame *f)
{
	int r;

	if (c->out.len) {
		r = hs_sconn_flush(c);
		if (r < 0)
			return r;
	}
	for (;;) {
		ssize_t n = hs_frame_parse(c->in.data + c->in_off, c->in.len - c->in_off,
					   c->max_in, f, &c->why);

		if (n > 0) {
			c->in_off += (size_t)n;
			return 1;
		}
		if (n < 0)
			return (int)n;
		/* Incomplete: move the tail to the front once, then read. */
		if (c->in_off) {
			memmove(c->in.data, c->in.data + c->in_off, c->in.len - c->in_off);
			c->in.len -= c->in_off;
			c->in_off = 0;
		}
		hs_buf_reserve(&c->in, READ_CHUNK);
		n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len, MSG_DONTWAIT);
		if (n > 0) {
			c->in.len += (size_t)n;
			continue;
		}
		if (n == 0) {
			if (c->in.len) {
				c->why = "connection closed in the middle of a frame";
				return -HS_EPROTO;
			}
			return 0;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		r = wait_fd(c->fd, POLLIN, c->timeout_ms);
		if (r < 0)
			return r;
		if (r == 0)
			return -HS_ETIMEOUT;
	}
}

int hs_sconn_hello(struct hs_sconn *c, uint16_t version, uint8_t role, uint32_t node_id,
		   char *msg, size_t msg_len)
{
	struct hs_hello h = { .version = version, .role = role, .node_id = node_id,
			      .max_frame = (uint32_t)c->max_in };
	struct hs_frame f;
	struct hs_result res;
	int r;

	if (msg && msg_len)
		msg[0] = 0;
	hs_msg_hello_enc(&c->out, 1, &h);
	r = hs_sconn_recv(c, &f);
	if (r == 0) {
		c->why = "connection closed before the HELLO answer";
		return -HS_EPROTO;
	}
	if (r < 0)
		return r;
	if (f.type == HS_MSG_RESULT && hs_msg_result_dec(f.body, f.body_len, &res) == 0) {
		if (msg && msg_len) {
			size_t n = res.msg_len < msg_len - 1 ? res.msg_len : msg_len - 1;

			memcpy(msg, res.msg, n);
			msg[n] = 0;
		}
		return res.status < 0 ? res.status : -HS_EPROTO;
	}
	if (f.type != HS_MSG_HELLO || hs_msg_hello_dec(f.body, f.body_len, &c->hello) < 0) {
		c->why = "the answer to HELLO is not a HELLO";
		return -HS_EPROTO;
	}
	c->hello.auth = NULL;
	c->hello.auth_len = 0;
	c->max_out = c->hello.max_frame < HS_FRAME_MAX_MIN ? HS_FRAME_MAX_MIN
							   : c->hello.max_frame;
	return 0;
}

void hs_sconn_close(struct hs_sconn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	hs_buf_free(&c->in);
	hs_buf_free(&c->out);
	c->in_off = 0;
}
