/*
 * config.h - the `key = value` configuration file and -X overrides.
 *
 * Syntax, one setting per line:
 *
 *   # a comment line; blank lines are ignored
 *   timeout = 5s
 *   hs-peer.min-free = 1G     # a comment after an unquoted value
 *   hs-offload.to = "file:///srv/a \"b\" # not a comment"
 *
 * Keys are [a-z0-9_.-]+.  Whitespace around the key and the value is
 * trimmed.  An unquoted value runs to the end of the line or to a '#' that
 * follows whitespace.  A quoted value is "...", with \" and \\ as its only
 * escapes; only whitespace or a comment may follow the closing quote.  A key
 * given twice keeps the last value; -X overrides applied after loading win.
 * Keys nobody reads are kept, not refused, so that one file can serve every
 * tool; values are validated when read, by the typed getters.  What the
 * keys mean (long options of each program) is cli.h's "CONFIGURATION".
 *
 * The file is $HS_CONFIG or --config, else $XDG_CONFIG_HOME/hs/config, else
 * ~/.config/hs/config (the caller picks: see hs_config_default_path()).
 */
#ifndef HS_CONFIG_H
#define HS_CONFIG_H

#include <stddef.h>
#include <stdint.h>

struct hs_config_kv {
	char *key;    /* owned */
	char *value;  /* owned; NUL-terminated, may be empty */
	char *origin; /* owned; "FILE:LINE" or "-X", for messages */
};

/* A zeroed struct is an empty configuration (HS_CONFIG_INIT). */
struct hs_config {
	struct hs_config_kv *kv; /* owned array of n entries, first-set order */
	size_t n, cap;
};

#define HS_CONFIG_INIT                                                         \
	{                                                                      \
		NULL, 0, 0                                                     \
	}

/* Read the file at path (borrowed) into c, on top of what c holds.
 * Returns 0; 0 too when the file does not exist and must_exist is 0 (the
 * default file is optional); -HS_ENOENT when it does not exist and must_exist
 * is 1 (not logged: the caller says which flag named it); -HS_ECONFIG on a
 * syntax error, logged as "FILE:LINE: reason", or when the file cannot be
 * read (logged).  On error c keeps the lines read before the bad one. */
int hs_config_load(struct hs_config *c, const char *path, int must_exist);

/* Apply one -X override "key=value" (borrowed; same trimming and quoting
 * as a file line, but '#' is not a comment).  Returns 0 or -HS_EUSAGE
 * (no '=', bad key, bad quoting); not logged: the caller prints the usage. */
int hs_config_set(struct hs_config *c, const char *kv);

/* The value of key, or NULL when unset.  Borrowed: valid until the next
 * load/set/free on c. */
const char *hs_config_get(const struct hs_config *c, const char *key);

/* Typed getters: *out = def when key is unset, else the parsed value.
 * Return 0, or -HS_ECONFIG with a logged line naming the key, its origin
 * and the expected syntax when the value does not parse (*out untouched).
 * Bool accepts 1/0, true/false, yes/no, on/off (any case). */
int hs_config_get_u64(const struct hs_config *c, const char *key, uint64_t def,
		      uint64_t *out);
int hs_config_get_duration_ms(const struct hs_config *c, const char *key,
			      uint64_t def, uint64_t *out);
int hs_config_get_size(const struct hs_config *c, const char *key, uint64_t def,
		       uint64_t *out);
int hs_config_get_bool(const struct hs_config *c, const char *key, int def,
		       int *out);

/* Free everything c owns and leave it empty (reusable). */
void hs_config_free(struct hs_config *c);

/* Write the default config path into buf: $XDG_CONFIG_HOME/hs/config when
 * that is an absolute path, else $HOME/.config/hs/config.  Returns buf, or
 * NULL when neither variable helps or the path does not fit in n bytes. */
const char *hs_config_default_path(char *buf, size_t n);

#endif
