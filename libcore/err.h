/*
 * err.h - error codes, their text, and the one code -> exit status table.
 *
 * Library functions return 0 (or a count) on success and a negative code on
 * failure: either -errno or -HS_E*.  HS_E* values start above every errno so
 * the two never collide.  The values travel in protocol status fields as
negative i32s, so the enum is append-only: never reorder or reuse a value.  Only cmd/ turns a code into an exit status, through
 * hs_exit_status(); the table is the one in CLI.md "Exit statuses".
 */
#ifndef HS_ERR_H
#define HS_ERR_H

enum hs_err {
	HS_EBASE = 4096,
	HS_EUSAGE,     /* bad command-line usage                      -> 64 */
	HS_EDATA,      /* malformed input data                        -> 65 */
	HS_ETOOBIG,    /* record or frame over the size limit          -> 65 */
	HS_ENOSTREAM,  /* no such stream                               -> 66 */
	HS_ENOENT,     /* no such file, log or object                  -> 66 */
	HS_ERESOLVE,   /* cannot resolve an address                    -> 68 */
	HS_EUNAVAIL,   /* server unreachable, no quorum                -> 69 */
	HS_EINTERNAL,  /* a bug or an impossible state                 -> 70 */
	HS_ECREATE,    /* cannot create a data directory               -> 73 */
	HS_EIO,        /* I/O error (disk, store)                      -> 74 */
	HS_ECHECKSUM,  /* stored or received data failed its checksum  -> 74 */
	HS_ESTOREFAIL, /* the store is in a permanent error state      -> 74 */
	HS_ENOSPC,     /* disk full                                    -> 74 */
	HS_ETIMEOUT,   /* timed out                                    -> 75 */
	HS_EAGAIN,     /* temporary: retry later (window full, busy)   -> 75 */
	HS_ESEALED,    /* refused: the log is sealed at this epoch     -> 75 */
	HS_ENOTRELEASED, /* position beyond the released point         -> 75 */
	HS_ELOCKED,    /* a lock is held by another process            -> 75 */
	HS_EPROTO,     /* malformed frame or message                   -> 76 */
	HS_EVERSION,   /* protocol version mismatch                    -> 76 */
	HS_EPERM,      /* permission denied                            -> 77 */
	HS_ECONFIG,    /* bad configuration                            -> 78 */
	HS_EEXIST,     /* already exists                               -> 65 */
	HS_EREDIRECT,  /* another server sequences the stream: retry at
			* the address given with it                   -> 75 */
	HS_ELAST
};

/* Text for a negative code (-errno or -HS_E*).  Never NULL; static storage. */
const char *hs_strerror(int err);

/* The process exit status for a negative code (CLI.md); 0 for err >= 0. */
int hs_exit_status(int err);

/* Map a positive errno from the OS to our code space: returns -e, except
 * ENOSPC/EDQUOT -> -HS_ENOSPC. */
int hs_errno(int e);

#endif
