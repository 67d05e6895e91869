/* config.c - see config.h. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "err.h"
#include "log.h"
#include "parse.h"

static int is_space(char c)
{
	return c == ' ' || c == '\t';
}

static int is_key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
	       c == '.' || c == '-';
}

/*
 * Split one line, in place, into key and value.  Returns 1 with *key and
 * *value pointing into line, 0 for a blank or comment line, -1 with *why
 * set on a syntax error.  comments is 0 for -X, where '#' is plain text.
 */
static int parse_line(char *line, int comments, char **key, char **value,
		      const char **why)
{
	char *p = line, *k, *v, *w;

	while (is_space(*p))
		p++;
	if (!*p || (comments && *p == '#'))
		return 0;
	for (k = p; is_key_char(*p); p++)
		;
	if (p == k || (*p && !is_space(*p) && *p != '=')) {
		*why = "expected KEY = VALUE, with KEY made of [a-z0-9_.-]";
		return -1;
	}
	w = p;
	while (is_space(*p))
		p++;
	if (*p != '=') {
		*why = "expected '=' after the key";
		return -1;
	}
	*w = 0;
	p++;
	while (is_space(*p))
		p++;
	if (*p == '"') {
		/* Unescape in place: the output never outgrows the input. */
		for (v = w = ++p;; p++) {
			if (!*p) {
				*why = "unterminated quoted value";
				return -1;
			}
			if (*p == '"')
				break;
			if (*p == '\\') {
				p++;
				if (*p != '"' && *p != '\\') {
					*why = "unknown escape in quoted value "
					       "(only \\\" and \\\\)";
					return -1;
				}
			}
			*w++ = *p;
		}
		*w = 0;
		for (p++; is_space(*p); p++)
			;
		if (*p && !(comments && *p == '#')) {
			*why = "unexpected text after the closing quote";
			return -1;
		}
	} else {
		for (v = p; *p; p++)
			if (comments && *p == '#' && is_space(p[-1]))
				break;
		while (p > v && is_space(p[-1]))
			p--;
		*p = 0;
	}
	*key = k;
	*value = v;
	return 1;
}

/* Set key to value (both copied), remembering where it came from. */
static void put(struct hs_config *c, const char *key, const char *value,
		char *origin)
{
	struct hs_config_kv *kv = NULL;

	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->kv[i].key, key))
			kv = &c->kv[i];
	if (kv) {
		free(kv->value);
		free(kv->origin);
	} else {
		if (c->n == c->cap) {
			c->cap = c->cap ? 2 * c->cap : 16;
			c->kv = hs_xrealloc(c->kv, c->cap * sizeof(*c->kv));
		}
		kv = &c->kv[c->n++];
		kv->key = hs_xstrdup(key);
	}
	kv->value = hs_xstrdup(value);
	kv->origin = origin;
}

int hs_config_load(struct hs_config *c, const char *path, int must_exist)
{
	char *line = NULL, *key, *value, *origin;
	const char *why;
	size_t cap = 0, lineno = 0, olen;
	ssize_t len;
	FILE *f;
	int r = 0;

	f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT || errno == ENOTDIR)
			return must_exist ? -HS_ENOENT : 0;
		hs_error("cannot open config file '%s': %s", path,
			 strerror(errno));
		return -HS_ECONFIG;
	}
	while ((len = getline(&line, &cap, f)) >= 0) {
		lineno++;
		if (len && line[len - 1] == '\n')
			line[--len] = 0;
		if (len && line[len - 1] == '\r')
			line[--len] = 0;
		if (strlen(line) != (size_t)len) {
			hs_error("%s:%zu: NUL byte in line", path, lineno);
			r = -HS_ECONFIG;
			goto out_close;
		}
		switch (parse_line(line, 1, &key, &value, &why)) {
		case -1:
			hs_error("%s:%zu: %s", path, lineno, why);
			r = -HS_ECONFIG;
			goto out_close;
		case 1:
			olen = strlen(path) + 24;
			origin = hs_xmalloc(olen);
			snprintf(origin, olen, "%s:%zu", path, lineno);
			put(c, key, value, origin);
			break;
		}
	}
	if (ferror(f)) {
		hs_error("cannot read config file '%s': %s", path,
			 strerror(errno));
		r = -HS_ECONFIG;
	}
out_close:
	free(line);
	fclose(f);
	return r;
}

int hs_config_set(struct hs_config *c, const char *kv)
{
	char *copy, *key, *value;
	const char *why;
	int r = -HS_EUSAGE;

	if (!kv || !strchr(kv, '='))
		return -HS_EUSAGE;
	copy = hs_xstrdup(kv);
	if (parse_line(copy, 0, &key, &value, &why) == 1) {
		put(c, key, value, hs_xstrdup("-X"));
		r = 0;
	}
	free(copy);
	return r;
}

static const struct hs_config_kv *find(const struct hs_config *c,
				       const char *key)
{
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->kv[i].key, key))
			return &c->kv[i];
	return NULL;
}

const char *hs_config_get(const struct hs_config *c, const char *key)
{
	const struct hs_config_kv *kv = find(c, key);

	return kv ? kv->value : NULL;
}

/* The shape of every typed getter: default, parse, or a logged error. */
static int get_typed(const struct hs_config *c, const char *key, uint64_t def,
		     uint64_t *out, int (*parse)(const char *, uint64_t *),
		     const char *what, const char *syntax)
{
	const struct hs_config_kv *kv = find(c, key);
	uint64_t v;

	if (!kv) {
		*out = def;
		return 0;
	}
	if (parse(kv->value, &v) < 0) {
		hs_error("%s: invalid %s '%s' for key '%s' (use %s)",
			 kv->origin, what, kv->value, key, syntax);
		return -HS_ECONFIG;
	}
	*out = v;
	return 0;
}

int hs_config_get_u64(const struct hs_config *c, const char *key, uint64_t def,
		      uint64_t *out)
{
	return get_typed(c, key, def, out, hs_parse_u64, "number",
			 "a decimal number");
}

int hs_config_get_duration_ms(const struct hs_config *c, const char *key,
			      uint64_t def, uint64_t *out)
{
	return get_typed(c, key, def, out, hs_parse_duration_ms, "duration",
			 HS_DURATION_SYNTAX);
}

int hs_config_get_size(const struct hs_config *c, const char *key, uint64_t def,
		       uint64_t *out)
{
	return get_typed(c, key, def, out, hs_parse_size, "size",
			 HS_SIZE_SYNTAX);
}

static int parse_bool(const char *s, uint64_t *v)
{
	static const char *yes[] = {"1", "true", "yes", "on"};
	static const char *no[] = {"0", "false", "no", "off"};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcasecmp(s, yes[i]))
			return *v = 1, 0;
		if (!strcasecmp(s, no[i]))
			return *v = 0, 0;
	}
	return -HS_EUSAGE;
}

int hs_config_get_bool(const struct hs_config *c, const char *key, int def,
		       int *out)
{
	uint64_t v;
	int r = get_typed(c, key, def ? 1 : 0, &v, parse_bool, "boolean",
			  "true/false, yes/no, on/off or 1/0");

	if (!r)
		*out = (int)v;
	return r;
}

void hs_config_free(struct hs_config *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->kv[i].key);
		free(c->kv[i].value);
		free(c->kv[i].origin);
	}
	free(c->kv);
	c->kv = NULL;
	c->n = c->cap = 0;
}

const char *hs_config_default_path(char *buf, size_t n)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	int r;

	/* The XDG spec says a relative XDG_CONFIG_HOME is to be ignored. */
	if (xdg && xdg[0] == '/')
		r = snprintf(buf, n, "%s/hs/config", xdg);
	else if (home && *home)
		r = snprintf(buf, n, "%s/.config/hs/config", home);
	else
		return NULL;
	return r < 0 || (size_t)r >= n ? NULL : buf;
}
