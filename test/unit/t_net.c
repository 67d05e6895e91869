/* t_net.c - addresses, listen/connect/accept, hs_conn framing, daemon files. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conn.h"
#include "daemon.h"
#include "err.h"
#include "frame.h"
#include "log.h"
#include "loop.h"
#include "net.h"
#include "proto.h"
#include "tap.h"

static struct hs_loop *loop;

/* --- the echo server ----------------------------------------------------- */

#define FL_CLOSE_ME 1 /* the server closes the conn from inside its callback */

struct srv {
	int closed_calls;
	int err;
	int frames;
	int arg_ok; /* state still valid after closing inside the callback */
	struct hs_conn *c;
};

static struct srv srvs[16];
static int nsrv, srv_closes;

static void srv_frame(struct hs_conn *c, const struct hs_frame *f, void *arg)
{
	struct srv *s = arg;

	s->frames++;
	if (f->flags & FL_CLOSE_ME) {
		hs_conn_close(c, 0);
		s->arg_ok = hs_conn_arg(c) == s && hs_conn_closing(c) &&
			    hs_conn_peer_name(c)[0] != 0;
		/* Appending to a closing conn is harmless. */
		hs_frame_write(hs_conn_out(c), HS_MSG_RESULT, 0, f->id, NULL, 0);
		return;
	}
	hs_frame_write(hs_conn_out(c), HS_MSG_STATSREPLY, 0, f->id, f->body, f->body_len);
}

static void srv_closed(struct hs_conn *c, int err, void *arg)
{
	struct srv *s = arg;

	s->closed_calls++;
	s->err = err;
	s->c = NULL;
	srv_closes++;
}

static const struct hs_conn_ops srv_ops = { srv_frame, srv_closed, NULL };

static void on_accept(struct hs_loop *l, int lfd, uint32_t revents, void *arg)
{
	int fd;

	while ((fd = hs_net_accept(lfd)) >= 0) {
		struct srv *s = &srvs[nsrv++ % 16];

		memset(s, 0, sizeof(*s));
		s->c = hs_conn_new(l, fd, &srv_ops, s);
	}
}

/* --- the client ---------------------------------------------------------- */

struct cli {
	int replies;
	int want;
	int bad; /* replies with a wrong id or body */
	uint64_t next_id;
	int closed_calls;
	int err;
	int writable;
	size_t body_len;
};

static void cli_frame(struct hs_conn *c, const struct hs_frame *f, void *arg)
{
	struct cli *k = arg;
	int good = f->type == HS_MSG_STATSREPLY && f->id == k->next_id &&
		   f->body_len == k->body_len;

	for (size_t i = 0; good && i < f->body_len; i++)
		good = f->body[i] == (uint8_t)(f->id + i);
	k->bad += !good;
	k->next_id++;
	if (++k->replies == k->want)
		hs_loop_stop(hs_conn_loop(c));
}

static void cli_closed(struct hs_conn *c, int err, void *arg)
{
	struct cli *k = arg;

	k->closed_calls++;
	k->err = err;
	hs_loop_stop(hs_conn_loop(c));
}

static void cli_writable(struct hs_conn *c, void *arg)
{
	((struct cli *)arg)->writable++;
}

static const struct hs_conn_ops cli_ops = { cli_frame, cli_closed, cli_writable };

/* Append n STATS frames with ids from *id and bodies of len bytes. */
static void send_frames(struct hs_conn *c, struct cli *k, int n, size_t len, uint64_t *id)
{
	static struct hs_buf body;

	hs_buf_reset(&body);
	k->body_len = len;
	if (k->replies == k->want)
		k->next_id = *id; /* nothing in flight: replies start here */
	k->want = k->replies + n;
	for (int i = 0; i < n; i++, (*id)++) {
		hs_buf_reset(&body);
		for (size_t j = 0; j < len; j++)
			hs_buf_appendc(&body, (uint8_t)(*id + j));
		hs_frame_write(hs_conn_out(c), HS_MSG_STATS, 0, *id, body.data, len);
	}
}

static int timed_out;

static void deadline(struct hs_loop *l, void *arg)
{
	timed_out = 1;
	hs_loop_stop(l);
}

/* Run the loop until a callback stops it, at most 5 s. */
static void run(void)
{
	uint64_t t = hs_loop_timer(loop, 5000, deadline, NULL);

	hs_loop_run(loop);
	hs_loop_timer_cancel(loop, t);
}

static void stop_cb(struct hs_loop *l, void *arg)
{
	hs_loop_stop(l);
}

/* Run the loop for about ms milliseconds. */
static void turn(int ms)
{
	hs_loop_timer(loop, (uint64_t)ms, stop_cb, NULL);
	hs_loop_run(loop);
}

/* --- tests --------------------------------------------------------------- */

static void test_addresses(void)
{
	char path[300];

	is_int(hs_net_listen("nocolon", NULL, 0), -HS_EUSAGE, "address without a port");
	is_int(hs_net_listen("127.0.0.1:70000", NULL, 0), -HS_EUSAGE, "port out of range");
	is_int(hs_net_listen("127.0.0.1:8x", NULL, 0), -HS_EUSAGE, "port not a number");
	is_int(hs_net_listen("[::1", NULL, 0), -HS_EUSAGE, "unclosed v6 bracket");
	is_int(hs_net_listen("::1:80", NULL, 0), -HS_EUSAGE, "unbracketed v6 address");
	is_int(hs_net_listen("unix:", NULL, 0), -HS_EUSAGE, "empty unix path");
	memset(path, 0, sizeof(path));
	memcpy(path, "unix:/tmp/", 10);
	memset(path + 10, 'a', 190);
	is_int(hs_net_listen(path, NULL, 0), -ENAMETOOLONG, "a 200-char unix path is refused");
	is_int(hs_net_connect(path, 0), -ENAMETOOLONG, "and so is connecting to one");

	ok(hs_net_is_loopback("unix:/x"), "unix: is loopback");
	ok(hs_net_is_loopback("127.0.0.1:1"), "127.0.0.1 is loopback");
	ok(hs_net_is_loopback("127.9.8.7:1"), "127/8 is loopback");
	ok(hs_net_is_loopback("[::1]:1"), "::1 is loopback");
	ok(hs_net_is_loopback("localhost:80"), "localhost is loopback");
	ok(!hs_net_is_loopback("10.1.2.3:80"), "10.1.2.3 is not");
	ok(!hs_net_is_loopback("example.com:80"), "a host name is not");
	ok(!hs_net_is_loopback("garbage"), "a malformed address is not");
}

/* A client that writes but does not read: the server must stop reading
 * once its replies back up, and catch up when the client reads again. */
static void test_backpressure(void)
{
	enum { N = 3000, BODY = 1000 };
	struct hs_buf in = HS_BUF_INIT, body = HS_BUF_INIT;
	size_t off = 0, got = 0, want = (size_t)N * (BODY + HS_FRAME_OVERHEAD);
	int fd, lfd, snd = 8192, idx = nsrv, paused = 0, stuck;
	char rb[65536], addr[HS_NET_ADDR_MAX];
	struct srv *s;

	/* A small kernel send buffer (accepted sockets inherit it) so the
	 * backlog builds up in the conn rather than in the kernel. */
	lfd = hs_net_listen("127.0.0.1:0", addr, sizeof(addr));
	setsockopt(lfd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof(snd));
	hs_loop_add_fd(loop, lfd, HS_EV_READ, on_accept, NULL);
	fd = hs_net_connect(addr, 0);
	ok(fd >= 0, "raw client connected");
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	for (int i = 0; i < 100 && nsrv == idx; i++)
		turn(1);
	s = &srvs[idx % 16];
	if (!ok(nsrv == idx + 1 && s->c, "server accepted it"))
		return;
	hs_conn_set_water(s->c, 1024, 4096);
	hs_buf_reserve(&body, BODY);
	memset(body.data, 'b', BODY);
	for (int i = 0; i < N; i++)
		hs_frame_write(&in, HS_MSG_STATS, 0, (uint64_t)i, body.data, BODY);
	for (int i = 0; i < 500 && !paused; i++) {
		ssize_t w = write(fd, in.data + off, in.len - off);

		off += w > 0 ? (size_t)w : 0;
		turn(2);
		paused = hs_conn_out_pending(s->c) > 4096;
	}
	ok(paused, "server backlog above the high-water mark (%zu bytes)",
	   hs_conn_out_pending(s->c));
	stuck = s->frames;
	turn(20);
	ok(stuck < N && s->frames == stuck, "the server stopped reading (%d of %d frames)", stuck, N);
	for (int i = 0; i < 5000 && got < want; i++) {
		ssize_t w = off < in.len ? write(fd, in.data + off, in.len - off) : 0;
		ssize_t r;

		off += w > 0 ? (size_t)w : 0;
		while ((r = read(fd, rb, sizeof(rb))) > 0)
			got += (size_t)r;
		turn(1);
	}
	is_int(got, want, "all replies arrive once the client reads");
	is_int(s->frames, N, "the server read every frame in the end");
	close(fd);
	hs_loop_del_fd(loop, lfd);
	close(lfd);
	hs_buf_free(&in);
	hs_buf_free(&body);
}

static void test_tcp(void)
{
	char actual[HS_NET_ADDR_MAX], want[HS_NET_ADDR_MAX];
	struct cli k = { 0 };
	struct hs_conn *c;
	uint64_t id = 1;
	int lfd, fd, port = 0, before;
	char junk[64];

	lfd = hs_net_listen("127.0.0.1:0", actual, sizeof(actual));
	ok(lfd >= 0, "listen on 127.0.0.1:0 (%d)", lfd);
	ok(sscanf(actual, "127.0.0.1:%d", &port) == 1 && port > 0,
	   "actual address has the real port (%s)", actual);
	ok(fcntl(lfd, F_GETFD) & FD_CLOEXEC, "listening fd is CLOEXEC");
	ok(fcntl(lfd, F_GETFL) & O_NONBLOCK, "and non-blocking");
	is_int(hs_net_accept(lfd), -EAGAIN, "accept with nobody waiting gives -EAGAIN");
	hs_loop_add_fd(loop, lfd, HS_EV_READ, on_accept, NULL);

	fd = hs_net_connect(actual, 1);
	ok(fd >= 0, "non-blocking connect");
	c = hs_conn_new(loop, fd, &cli_ops, &k);
	ok(c != NULL, "client conn");

	/* 100 pipelined frames appended in one turn go out together. */
	send_frames(c, &k, 100, 40, &id);
	is_int(hs_conn_out_pending(c), 100 * (40 + HS_FRAME_OVERHEAD),
	       "appended frames wait for the end of the turn");
	run();
	is_int(k.replies, 100, "100 replies through the echo server");
	is_int(k.bad, 0, "each with the right id and body");
	is_int(hs_conn_out_pending(c), 0, "output drained");
	ok(!timed_out, "no timeout");
	is_str(hs_conn_peer_name(c), actual, "client's peer name is the server address");
	snprintf(want, sizeof(want), "127.0.0.1:");
	ok(srvs[0].c && !strncmp(hs_conn_peer_name(srvs[0].c), want, strlen(want)),
	   "server's peer name is ip:port (%s)", srvs[0].c ? hs_conn_peer_name(srvs[0].c) : "-");

	/* A garbage-sending connection is closed; the good one goes on. */
	fd = hs_net_connect(actual, 0);
	ok(fd >= 0, "blocking connect");
	memset(junk, 0, sizeof(junk));
	junk[0] = 40; /* length 40, type 0: unknown type / bad CRC */
	ok(write(fd, junk, sizeof(junk)) == sizeof(junk), "send garbage");
	before = srv_closes;
	while (srv_closes == before && !timed_out) {
		hs_loop_timer(loop, 10, deadline, NULL);
		run();
		timed_out = 0;
	}
	is_int(srv_closes, before + 1, "the server closed the garbage connection");
	ok(srvs[1].err < 0, "its closed callback got an error (%s)", hs_strerror(srvs[1].err));
	is_int(srvs[1].closed_calls, 1, "exactly once");
	ok(read(fd, junk, sizeof(junk)) <= 0, "the garbage sender sees the close");
	close(fd);
	send_frames(c, &k, 3, 7, &id);
	run();
	is_int(k.replies, 103, "the good connection still works");
	is_int(k.closed_calls, 0, "and was not closed");

	/* A 6 MB frame: partial sends, EPOLLOUT, back-pressure, writable. */
	send_frames(c, &k, 1, 6u << 20, &id);
	hs_conn_flush(c);
	ok(hs_conn_out_pending(c) > 0, "a 6 MB frame does not fit one send");
	run();
	is_int(k.replies, 104, "a 6 MB frame round-trips");
	is_int(k.bad, 0, "intact");
	ok(k.writable >= 1, "writable fired when the backlog drained (%d)", k.writable);

	/* Closing from inside the server's own frame callback. */
	before = srv_closes;
	hs_frame_write(hs_conn_out(c), HS_MSG_STATS, FL_CLOSE_ME, id++, NULL, 0);
	run();
	is_int(k.closed_calls, 1, "client sees the server close");
	is_int(k.err, 0, "as an orderly EOF");
	is_int(srv_closes, before + 1, "server closed callback fired");
	is_int(srvs[0].closed_calls, 1, "exactly once");
	is_int(srvs[0].err, 0, "with err 0");
	ok(srvs[0].arg_ok, "conn state stayed valid inside the closing callback");

	hs_loop_del_fd(loop, lfd);
	close(lfd);

	/* Refused connections. */
	is_int(hs_net_connect(actual, 0), -ECONNREFUSED, "blocking connect: -ECONNREFUSED");
	is_int(hs_net_connect_timeout(actual, 1000), -ECONNREFUSED, "connect_timeout too");
	memset(&k, 0, sizeof(k));
	fd = hs_net_connect(actual, 1);
	c = fd >= 0 ? hs_conn_new(loop, fd, &cli_ops, &k) : NULL;
	if (fd == -ECONNREFUSED) {
		ok(1, "non-blocking connect refused at once");
	} else {
		run();
		is_int(k.err, -ECONNREFUSED, "non-blocking connect: closed with -ECONNREFUSED");
	}
	(void)c;
}

static void test_unix(const char *dir)
{
	char addr[HS_NET_ADDR_MAX], actual[HS_NET_ADDR_MAX];
	struct cli k = { 0 };
	struct hs_conn *c;
	struct stat st;
	uint64_t id = 1000;
	int lfd, lfd2, fd, before;

	snprintf(addr, sizeof(addr), "unix:%s/s.sock", dir);
	lfd = hs_net_listen(addr, actual, sizeof(actual));
	ok(lfd >= 0, "listen on %s", addr);
	is_str(actual, addr, "actual unix address");
	ok(stat(addr + 5, &st) == 0 && (st.st_mode & 0777) == 0600, "socket file mode 0600");
	is_int(hs_net_listen(addr, NULL, 0), -EADDRINUSE, "a live socket gives -EADDRINUSE");
	ok(hs_net_is_loopback(addr), "unix address is loopback");

	hs_loop_add_fd(loop, lfd, HS_EV_READ, on_accept, NULL);
	fd = hs_net_connect(addr, 1);
	ok(fd >= 0, "connect over unix");
	c = hs_conn_new(loop, fd, &cli_ops, &k);
	send_frames(c, &k, 10, 100, &id);
	run();
	is_int(k.replies, 10, "frames over unix");
	is_int(k.bad, 0, "intact");
	is_str(hs_conn_peer_name(c), "unix", "peer name 'unix'");
	before = srv_closes;
	hs_conn_close(c, 0);
	is_int(k.closed_calls, 1, "closing outside a callback fires closed at once");
	while (srv_closes == before && !timed_out) {
		hs_loop_timer(loop, 10, deadline, NULL);
		run();
	}
	timed_out = 0;
	is_int(srv_closes, before + 1, "server side saw EOF");
	hs_loop_del_fd(loop, lfd);
	close(lfd); /* leaves the socket file behind: stale */

	ok(stat(addr + 5, &st) == 0, "stale socket file left");
	lfd2 = hs_net_listen(addr, NULL, 0);
	ok(lfd2 >= 0, "a stale socket file is replaced (%d)", lfd2);
	close(lfd2);
	unlink(addr + 5);
	fd = open(addr + 5, O_CREAT | O_WRONLY, 0644);
	close(fd);
	is_int(hs_net_listen(addr, NULL, 0), -EEXIST, "a regular file is not removed");
	ok(stat(addr + 5, &st) == 0 && S_ISREG(st.st_mode), "and is still there");
	unlink(addr + 5);
	is_int(hs_net_connect_timeout(addr, 100), -ENOENT, "connect to a missing socket");
}

static void test_v6(void)
{
	char actual[HS_NET_ADDR_MAX];
	int lfd = hs_net_listen("[::1]:0", actual, sizeof(actual)), fd;

	if (lfd < 0) {
		ok(1, "# skip no IPv6 loopback (%s)", hs_strerror(lfd));
		return;
	}
	ok(!strncmp(actual, "[::1]:", 6), "v6 actual address (%s)", actual);
	fd = hs_net_connect_timeout(actual, 1000);
	ok(fd >= 0, "connect_timeout over v6");
	ok(fd >= 0 && !(fcntl(fd, F_GETFL) & O_NONBLOCK), "returns a blocking fd");
	close(fd);
	close(lfd);
}

static void test_daemon(const char *dir)
{
	char path[512], buf[64];
	struct stat st;
	FILE *f;
	int n;

	snprintf(path, sizeof(path), "%s/ready", dir);
	is_int(hs_daemon_ready_file(path, "unix:/x/y"), 0, "write a ready file");
	f = fopen(path, "r");
	n = f ? (int)fread(buf, 1, sizeof(buf) - 1, f) : 0;
	buf[n] = 0;
	if (f)
		fclose(f);
	is_str(buf, "unix:/x/y\n", "ready file holds the text and a newline");
	snprintf(path, sizeof(path), "%s/pid", dir);
	is_int(hs_daemon_pidfile(path), 0, "write a pid file");
	f = fopen(path, "r");
	n = f ? (int)fread(buf, 1, sizeof(buf) - 1, f) : 0;
	buf[n] = 0;
	if (f)
		fclose(f);
	is_int(atoi(buf), getpid(), "pid file holds our pid");
	is_int(hs_daemon_pidfile_remove(path), 0, "remove it");
	is_int(hs_daemon_pidfile_remove(path), 0, "removing a missing pid file is fine");
	snprintf(path, sizeof(path), "%s/a/b//c/", dir);
	is_int(hs_daemon_mkdirs(path, 0700), 0, "mkdir -p");
	snprintf(path, sizeof(path), "%s/a/b/c", dir);
	ok(stat(path, &st) == 0 && S_ISDIR(st.st_mode), "nested directory exists");
	is_int(hs_daemon_mkdirs(path, 0700), 0, "mkdir -p on an existing directory");
	snprintf(path, sizeof(path), "%s/ready/sub", dir);
	is_int(hs_daemon_mkdirs(path, 0700), -HS_ECREATE, "under a regular file: -HS_ECREATE");
}

int main(void)
{
	char dir[] = "/tmp/t_net.XXXXXX", cmd[64];

	signal(SIGPIPE, SIG_IGN);
	hs_log_init("t_net", HS_LOG_WARN);
	loop = hs_loop_new();
	if (!mkdtemp(dir) || !loop)
		return 1;
	test_addresses();
	test_tcp();
	test_backpressure();
	test_unix(dir);
	test_v6();
	test_daemon(dir);
	hs_loop_free(loop);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	return tap_done();
}
