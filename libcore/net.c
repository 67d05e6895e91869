/* net.c - see net.h. */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "log.h"
#include "loop.h"

#define UNIX_PREFIX "unix:"

/* A parsed address: either a unix path or a host and a port string. */
struct addr {
	int is_unix;
	char host[256];
	char port[8];
	struct sockaddr_un un;
};

static int parse_addr(const char *s, struct addr *a)
{
	const char *colon, *host, *port;
	size_t hlen;
	char *end;
	unsigned long p;

	memset(a, 0, sizeof(*a));
	if (!strncmp(s, UNIX_PREFIX, strlen(UNIX_PREFIX))) {
		const char *path = s + strlen(UNIX_PREFIX);
		size_t n = strlen(path);

		if (!n)
			return -HS_EUSAGE;
		if (n >= sizeof(a->un.sun_path)) {
			hs_error("unix socket path too long (%zu bytes, the limit is %zu): '%s'", n,
				 sizeof(a->un.sun_path) - 1, path);
			return -ENAMETOOLONG;
		}
		a->is_unix = 1;
		a->un.sun_family = AF_UNIX;
		memcpy(a->un.sun_path, path, n + 1);
		return 0;
	}
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':')
			return -HS_EUSAGE;
		host = s + 1;
		hlen = (size_t)(rb - host);
		port = rb + 2;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -HS_EUSAGE;
		host = s;
		hlen = (size_t)(colon - s);
		/* An unbracketed v6 address would be ambiguous. */
		if (memchr(host, ':', hlen))
			return -HS_EUSAGE;
		port = colon + 1;
	}
	if (!hlen || hlen >= sizeof(a->host) || !*port || strlen(port) > 5 ||
	    strspn(port, "0123456789") != strlen(port))
		return -HS_EUSAGE;
	p = strtoul(port, &end, 10);
	if (p > 65535)
		return -HS_EUSAGE;
	memcpy(a->host, host, hlen);
	a->host[hlen] = 0;
	snprintf(a->port, sizeof(a->port), "%lu", p);
	return 0;
}

static int resolve(const struct addr *a, int passive, struct addrinfo **res)
{
	struct addrinfo hints;
	int r;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
	r = getaddrinfo(a->host, a->port, &hints, res);
	if (r == EAI_SYSTEM)
		return -errno;
	if (r == EAI_MEMORY)
		hs_oom();
	if (r) {
		hs_debug("cannot resolve '%s': %s", a->host, gai_strerror(r));
		return -HS_ERESOLVE;
	}
	return 0;
}

static void format_sa(const struct sockaddr *sa, char *out, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	if (!out || !len)
		return;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		snprintf(out, len, "%s:%u", ip, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		snprintf(out, len, "[%s]:%u", ip, ntohs(in6->sin6_port));
	} else {
		snprintf(out, len, "unix");
	}
}

static void set_nodelay(int fd)
{
	int one = 1;

	/* Fails harmlessly (EOPNOTSUPP) on unix sockets. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Is something accepting on the unix socket at un?  1 yes, 0 no (stale). */
static int unix_live(const struct sockaddr_un *un)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int r;

	if (fd < 0)
		return 1; /* cannot tell: do not remove anything */
	r = connect(fd, (const struct sockaddr *)un, sizeof(*un));
	/* EAGAIN: a listener whose backlog is full - alive. */
	r = r == 0 || errno == EAGAIN || errno == EINPROGRESS;
	close(fd);
	return r;
}

static int listen_unix(struct addr *a, char *actual, size_t actual_len)
{
	const char *path = a->un.sun_path;
	struct stat st;
	int fd, r;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* Linux creates the socket file with the socket inode's mode (less the
	 * umask), so this closes the window before the chmod below. */
	fchmod(fd, 0600);
	if (bind(fd, (struct sockaddr *)&a->un, sizeof(a->un)) < 0) {
		if (errno != EADDRINUSE) {
			r = -errno;
			goto out_close;
		}
		if (lstat(path, &st) < 0) {
			r = -EADDRINUSE;
			goto out_close;
		}
		if (!S_ISSOCK(st.st_mode)) {
			hs_error("'%s' exists and is not a socket", path);
			r = -EEXIST;
			goto out_close;
		}
		if (unix_live(&a->un)) {
			r = -EADDRINUSE;
			goto out_close;
		}
		hs_info("removing stale socket '%s'", path);
		if (unlink(path) < 0 && errno != ENOENT) {
			r = -errno;
			goto out_close;
		}
		if (bind(fd, (struct sockaddr *)&a->un, sizeof(a->un)) < 0) {
			r = -errno;
			goto out_close;
		}
	}
	if (chmod(path, 0600) < 0) {
		r = -errno;
		goto out_unlink;
	}
	if (listen(fd, SOMAXCONN) < 0) {
		r = -errno;
		goto out_unlink;
	}
	if (actual && actual_len)
		snprintf(actual, actual_len, UNIX_PREFIX "%s", path);
	return fd;

out_unlink:
	unlink(path);
out_close:
	close(fd);
	return r;
}

int hs_net_listen(const char *addr, char *actual, size_t actual_len)
{
	struct addrinfo *res, *ai;
	struct addr a;
	int fd = -1, r, one = 1;

	r = parse_addr(addr, &a);
	if (r < 0)
		return r;
	if (a.is_unix)
		return listen_unix(&a, actual, actual_len);
	r = resolve(&a, 1, &res);
	if (r < 0)
		return r;
	r = -EADDRNOTAVAIL;
	for (ai = res; ai; ai = ai->ai_next) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    ai->ai_protocol);
		if (fd < 0) {
			r = -errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, SOMAXCONN) < 0 ||
		    getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
			r = -errno;
			close(fd);
			fd = -1;
			continue;
		}
		set_nodelay(fd);
		format_sa((struct sockaddr *)&ss, actual, actual_len);
		r = fd;
		break;
	}
	freeaddrinfo(res);
	return r;
}

/* Start a connect to one resolved address: returns the fd (connected, or
 * in progress if nonblock), or -errno. */
static int connect_one(int family, const struct sockaddr *sa, socklen_t sl, int nonblock)
{
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
	int r;

	if (fd < 0)
		return -errno;
	if (family != AF_UNIX)
		set_nodelay(fd);
	while ((r = connect(fd, sa, sl)) < 0 && errno == EINTR && !nonblock)
		;
	if (r < 0 && !(nonblock && (errno == EINPROGRESS || errno == EINTR))) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int hs_net_connect(const char *addr, int nonblock)
{
	struct addrinfo *res, *ai;
	struct addr a;
	int r;

	r = parse_addr(addr, &a);
	if (r < 0)
		return r;
	if (a.is_unix)
		return connect_one(AF_UNIX, (struct sockaddr *)&a.un, sizeof(a.un), nonblock);
	r = resolve(&a, 0, &res);
	if (r < 0)
		return r;
	r = -ECONNREFUSED;
	for (ai = res; ai; ai = ai->ai_next) {
		r = connect_one(ai->ai_family, ai->ai_addr, ai->ai_addrlen, nonblock);
		if (r >= 0)
			break;
	}
	freeaddrinfo(res);
	return r;
}

/* Wait for a non-blocking connect on fd until deadline; 0 or negative. */
static int wait_connected(int fd, uint64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	socklen_t sl = sizeof(int);
	int r, soerr = 0;

	for (;;) {
		uint64_t now = hs_now_ms();

		if (now >= deadline)
			return -HS_ETIMEOUT;
		r = poll(&pfd, 1, (int)(deadline - now));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r > 0)
			break;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
		return -errno;
	return soerr ? -soerr : 0;
}

int hs_net_connect_timeout(const char *addr, int timeout_ms)
{
	uint64_t deadline = hs_now_ms() + (timeout_ms > 0 ? (uint64_t)timeout_ms : 0);
	struct addrinfo *res = NULL, *ai;
	struct addr a;
	int fd, r;

	r = parse_addr(addr, &a);
	if (r < 0)
		return r;
	if (!a.is_unix) {
		r = resolve(&a, 0, &res);
		if (r < 0)
			return r;
	}
	r = -ECONNREFUSED;
	for (ai = res; a.is_unix || ai; ai = ai ? ai->ai_next : NULL) {
		if (a.is_unix)
			fd = connect_one(AF_UNIX, (struct sockaddr *)&a.un, sizeof(a.un), 1);
		else
			fd = connect_one(ai->ai_family, ai->ai_addr, ai->ai_addrlen, 1);
		r = fd;
		if (fd >= 0) {
			r = wait_connected(fd, deadline);
			if (r == 0 && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0)
				r = -errno;
			if (r == 0) {
				r = fd;
				break;
			}
			close(fd);
		}
		if (a.is_unix || r == -HS_ETIMEOUT)
			break;
	}
	if (res)
		freeaddrinfo(res);
	return r;
}

int hs_net_accept(int lfd)
{
	int fd;

	for (;;) {
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0)
			break;
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
	set_nodelay(fd);
	return fd;
}

int hs_net_peer_name(int fd, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
		return -errno;
	format_sa((struct sockaddr *)&ss, out, len);
	return 0;
}

int hs_net_is_loopback(const char *addr)
{
	struct in6_addr in6;
	struct in_addr in;
	struct addr a;

	if (parse_addr(addr, &a) < 0)
		return 0;
	if (a.is_unix || !strcasecmp(a.host, "localhost"))
		return 1;
	if (inet_pton(AF_INET, a.host, &in) == 1)
		return (ntohl(in.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, a.host, &in6) == 1) {
		if (IN6_IS_ADDR_LOOPBACK(&in6))
			return 1;
		return IN6_IS_ADDR_V4MAPPED(&in6) && in6.s6_addr[12] == 127;
	}
	return 0;
}
