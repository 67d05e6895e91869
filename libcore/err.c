/* err.c - see err.h. */
#include "err.h"

#include <errno.h>
#include <string.h>
#include <sysexits.h>

struct entry {
	const char *text;
	int status;
};

static const struct entry table[HS_ELAST - HS_EBASE] = {
	[HS_EUSAGE - HS_EBASE] = { "bad usage", EX_USAGE },
	[HS_EDATA - HS_EBASE] = { "malformed input data", EX_DATAERR },
	[HS_ETOOBIG - HS_EBASE] = { "over the size limit", EX_DATAERR },
	[HS_ENOSTREAM - HS_EBASE] = { "no such stream", EX_NOINPUT },
	[HS_ENOENT - HS_EBASE] = { "not found", EX_NOINPUT },
	[HS_ERESOLVE - HS_EBASE] = { "cannot resolve address", EX_NOHOST },
	[HS_EUNAVAIL - HS_EBASE] = { "service unavailable", EX_UNAVAILABLE },
	[HS_EINTERNAL - HS_EBASE] = { "internal error", EX_SOFTWARE },
	[HS_ECREATE - HS_EBASE] = { "cannot create data directory", EX_CANTCREAT },
	[HS_EIO - HS_EBASE] = { "I/O error", EX_IOERR },
	[HS_ECHECKSUM - HS_EBASE] = { "checksum mismatch", EX_IOERR },
	[HS_ESTOREFAIL - HS_EBASE] = { "store in permanent error state", EX_IOERR },
	[HS_ENOSPC - HS_EBASE] = { "no space left on device", EX_IOERR },
	[HS_ETIMEOUT - HS_EBASE] = { "timed out", EX_TEMPFAIL },
	[HS_EAGAIN - HS_EBASE] = { "temporarily unavailable, try again", EX_TEMPFAIL },
	[HS_ESEALED - HS_EBASE] = { "sealed by a newer epoch", EX_TEMPFAIL },
	[HS_ENOTRELEASED - HS_EBASE] = { "not released yet", EX_TEMPFAIL },
	[HS_ELOCKED - HS_EBASE] = { "lock held by another process", EX_TEMPFAIL },
	[HS_EPROTO - HS_EBASE] = { "protocol error", EX_PROTOCOL },
	[HS_EVERSION - HS_EBASE] = { "protocol version mismatch", EX_PROTOCOL },
	[HS_EPERM - HS_EBASE] = { "permission denied", EX_NOPERM },
	[HS_ECONFIG - HS_EBASE] = { "bad configuration", EX_CONFIG },
	[HS_EEXIST - HS_EBASE] = { "already exists", EX_DATAERR },
	[HS_EREDIRECT - HS_EBASE] = { "sequenced by another hs-serve", EX_TEMPFAIL },
};

const char *hs_strerror(int err)
{
	int e = err < 0 ? -err : err;

	if (e > HS_EBASE && e < HS_ELAST && table[e - HS_EBASE].text)
		return table[e - HS_EBASE].text;
	if (e > 0 && e < HS_EBASE)
		return strerror(e);
	return "unknown error";
}

int hs_exit_status(int err)
{
	int e = -err;

	if (err >= 0)
		return 0;
	if (e > HS_EBASE && e < HS_ELAST && table[e - HS_EBASE].text)
		return table[e - HS_EBASE].status;
	switch (e) {
	case ENOENT:
		return EX_NOINPUT;
	case EACCES:
	case EPERM:
		return EX_NOPERM;
	case ECONNREFUSED:
	case ECONNRESET:
	case EPIPE:
	case EHOSTUNREACH:
	case ENETUNREACH:
		return EX_UNAVAILABLE;
	case ETIMEDOUT:
	case EAGAIN:
	case EINTR:
		return EX_TEMPFAIL;
	case EINVAL:
		return EX_USAGE;
	case ENOMEM:
		return EX_OSERR;
	case EIO:
	case ENOSPC:
	case EDQUOT:
	case EROFS:
		return EX_IOERR;
	default:
		return EX_SOFTWARE;
	}
}

int hs_errno(int e)
{
	if (e == ENOSPC || e == EDQUOT)
		return -HS_ENOSPC;
	return e > 0 ? -e : -EIO;
}
