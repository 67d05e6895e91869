/* client.c - see client.h. */
#include "client.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "err.h"
#include "proto.h"

static int connect_one(struct hs_sconn *c, const char *addr, uint64_t timeout_ms,
		       char *msg, size_t msg_len)
{
	char why[256] = "";
	int r;

	r = hs_sconn_open(c, addr, (int)timeout_ms);
	if (r < 0) {
		int code = r;

		if (r != -HS_ERESOLVE && r != -HS_EUSAGE)
			code = -HS_EUNAVAIL;
		snprintf(msg, msg_len, "cannot reach hs-serve at %s: %s%s", addr,
			 hs_strerror(r),
			 code == -HS_EUNAVAIL ? " (is hs-serve running?)" : "");
		hs_sconn_close(c);
		return code;
	}
	r = hs_sconn_hello(c, HS_PROTO_VERSION, HS_ROLE_CLIENT, 0, why, sizeof(why));
	if (r < 0) {
		snprintf(msg, msg_len, "hs-serve at %s refused the connection: %s%s%s", addr,
			 hs_strerror(r), why[0] ? ": " : "", why);
		hs_sconn_close(c);
		if (r == -HS_EVERSION || r == -HS_EPERM)
			return r;
		return -HS_EUNAVAIL;
	}
	return 0;
}

int hs_client_connect(struct hs_sconn *c, const char *addrs, uint64_t timeout_ms,
		      char *msg, size_t msg_len)
{
	char def[512], one[512];
	const char *p, *comma;
	int r = -HS_EUNAVAIL;

	if (!addrs || !*addrs) {
		addrs = hs_addr_default(def, sizeof(def));
		if (!addrs) {
			snprintf(msg, msg_len, "cannot work out the default hs-serve address");
			return -HS_EUNAVAIL;
		}
		r = hs_addr_dir_check(addrs);
		if (r == -HS_EPERM) {
			snprintf(msg, msg_len,
				 "refusing the socket directory of %s: not owned by this user "
				 "or writable by others", addrs);
			return r;
		}
		return connect_one(c, addrs, timeout_ms, msg, msg_len);
	}
	for (p = addrs; *p; p = comma + 1) {
		size_t n;

		comma = strchr(p, ',');
		if (!comma)
			comma = p + strlen(p);
		n = (size_t)(comma - p);
		if (n && n < sizeof(one)) {
			memcpy(one, p, n);
			one[n] = 0;
			r = connect_one(c, one, timeout_ms, msg, msg_len);
			if (r == 0 || r == -HS_EVERSION || r == -HS_EPERM)
				return r;
		}
		if (!*comma)
			break;
	}
	return r;
}

int hs_client_reconnect(struct hs_sconn *c, const char *addrs, uint64_t timeout_ms,
			char *msg, size_t msg_len)
{
	hs_sconn_close(c);
	return hs_client_connect(c, addrs, timeout_ms, msg, msg_len);
}

int hs_client_multi(const char *addrs)
{
	const char *comma = addrs ? strchr(addrs, ',') : NULL;

	/* "A," is one address; "A,B" two. */
	return comma && comma != addrs && comma[1] != 0;
}

uint64_t hs_client_next_id(void)
{
	static uint64_t id;

	return ++id;
}

int hs_client_call(struct hs_sconn *c, uint64_t id, struct hs_frame *reply)
{
	int r = hs_sconn_recv(c, reply);

	if (r == 0 || r == -ECONNRESET || r == -EPIPE)
		return -HS_EUNAVAIL;
	if (r < 0)
		return r;
	if (reply->id != id)
		return -HS_EPROTO;
	return 1;
}

int hs_client_result(const struct hs_frame *f, char *msg, size_t msg_len)
{
	struct hs_result res;

	if (f->type != HS_MSG_RESULT)
		return 1;
	if (hs_msg_result_dec(f->body, f->body_len, &res) < 0)
		return -HS_EPROTO;
	if (msg && msg_len) {
		size_t n = res.msg_len < msg_len - 1 ? res.msg_len : msg_len - 1;

		memcpy(msg, res.msg, n);
		msg[n] = 0;
	}
	return res.status > 0 ? -HS_EPROTO : res.status;
}
