/*
 * net.h - listening, connecting and accepting on unix and TCP sockets.
 *
 * Addresses are strings (CLI.md, DESIGN.md §2):
 *   unix:/path        a unix stream socket; the path must be < 108 bytes
 *   HOST:PORT         an IPv4 address or a host name, port 0..65535
 *   [V6ADDR]:PORT     an IPv6 address
 * Port 0 in a listen address lets the kernel pick; the actual address is
 * reported back so a daemon can publish it in its ready file.
 *
 * Every fd returned is CLOEXEC; TCP sockets have TCP_NODELAY set (frames are
 * batched by the caller, Nagle would only add latency).  Callers send with
 * MSG_NOSIGNAL so a closed peer is an EPIPE, never a SIGPIPE.
 *
 * Errors: -HS_EUSAGE for a malformed address, -HS_ERESOLVE for a host name
 * that does not resolve, -ENAMETOOLONG for a unix path of 108 bytes or
 * more, -errno from the socket calls otherwise (-ECONNREFUSED, -EADDRINUSE..).
 */
#ifndef HS_NET_H
#define HS_NET_H

#include <stddef.h>

/* Longest address string hs_net_listen() writes to actual, NUL included. */
#define HS_NET_ADDR_MAX 128

/*
 * Listen on addr (borrowed).  Returns a non-blocking listening fd (owned by
 * the caller) or a negative code.  If actual is not NULL, the real address
 * ("127.0.0.1:41234", "[::1]:5000", "unix:/path") is written there, cut to
 * actual_len bytes (HS_NET_ADDR_MAX is always enough).
 * Unix sockets: an existing socket file is removed only if nothing accepts
 * on it (a connect is tried first; if it succeeds: -EADDRINUSE); a path that
 * exists but is not a socket gives -EEXIST; the socket file gets mode 0600.
 */
int hs_net_listen(const char *addr, char *actual, size_t actual_len);

/*
 * Connect to addr.  Returns a connected fd (owned by the caller) or a
 * negative code.  With nonblock the fd is non-blocking and a TCP connect may
 * still be in progress: wait for writability, a failure then shows as
 * HS_EV_ERR and the first read/write returns it.  Without nonblock the fd is
 * blocking and the connect has completed.
 */
int hs_net_connect(const char *addr, int nonblock);

/* Blocking connect that gives up after timeout_ms (-HS_ETIMEOUT).  Returns a
 * blocking connected fd or a negative code. */
int hs_net_connect_timeout(const char *addr, int timeout_ms);

/* Accept one connection on listening fd lfd: a non-blocking CLOEXEC fd
 * (owned by the caller), -EAGAIN if none is waiting, or -errno.  Errors that
 * belong to the aborted connection (ECONNABORTED, EINTR) are retried. */
int hs_net_accept(int lfd);

/* Write the remote address of connected socket fd to out (cut to len):
 * "ip:port", "[v6]:port", or "unix".  0, or -errno (-ENOTCONN while a
 * connect is in progress). */
int hs_net_peer_name(int fd, char *out, size_t len);

/* 1 if addr names this machine (unix:, 127.0.0.0/8, ::1, ::ffff:127.x,
 * "localhost"), else 0 (malformed addresses included). */
int hs_net_is_loopback(const char *addr);

#endif
