/*
 * manifest.c - the Tier2 manifest: register value and manifest object
 * codecs and the checked changes hs-serve applies (format: manifest.h and
 * docs/tier2.md).  Pure codec: no I/O and no libsodium, so hs-serve can
 * link it without the offloader's libraries (and in libpaxos, below
 * libtier in the link order, for the same reason).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "err.h"
#include "manifest.h"
#include "wire.h"

static const char obj_magic[8] = { 'H', 'S', 'M', 'A', 'N', 'I', 'F', '1' };

size_t hs_man_key(uint8_t *k, uint64_t log)
{
	k[0] = 't';
	k[1] = '/';
	hs_put64be(k + 2, log);
	return 10;
}

void hs_man_log_prefix(char *k, uint64_t log)
{
	snprintf(k, HS_MAN_KEY_MAX, "logs/%016" PRIx64 "/", log);
}

static void obj_name(char *k, uint64_t log, const char *kind, uint64_t first, uint64_t last,
		     uint64_t created, uint64_t attempt)
{
	snprintf(k, HS_MAN_KEY_MAX,
		 "logs/%016" PRIx64 "/%s/%016" PRIx64 "-%016" PRIx64 "-%016" PRIx64 "-%016" PRIx64,
		 log, kind, first, last, created, attempt);
}

void hs_man_seg_key(char *k, uint64_t log, const struct hs_man_entry *e)
{
	/* Without the LSNs: the writer streams the segment before it knows
	 * where the read will stop. */
	snprintf(k, HS_MAN_KEY_MAX, "logs/%016" PRIx64 "/seg/%016" PRIx64 "-%016" PRIx64, log,
		 e->created_ms, e->attempt);
}

void hs_man_obj_key(char *k, uint64_t log, const struct hs_man_ref *r)
{
	obj_name(k, log, "man", r->first_lsn, r->last_lsn, r->created_ms, r->attempt);
}

void hs_man_name_key(char *k, uint64_t log)
{
	snprintf(k, HS_MAN_KEY_MAX, "logs/%016" PRIx64 "/name", log);
}

/* ---- name objects ------------------------------------------------------- */

static const char name_magic[8] = { 'H', 'S', 'L', 'N', 'A', 'M', 'E', '1' };

void hs_man_name_enc(uint64_t log, const char *name, size_t nlen, uint64_t created_ms,
		     struct hs_buf *out)
{
	size_t start = out->len;

	if (nlen > 255)
		nlen = 255;
	hs_wbytes(out, name_magic, 8);
	hs_w32(out, 1);
	hs_w32(out, 0);
	hs_w64(out, log);
	hs_w64(out, created_ms);
	hs_w8(out, (uint8_t)nlen);
	hs_wbytes(out, "\0\0\0\0\0\0\0", 7);
	hs_wbytes(out, name, nlen);
	hs_w32(out, hs_crc32c(0, out->data + start, out->len - start));
}

int hs_man_name_dec(const uint8_t *p, size_t len, struct hs_man_name *n)
{
	size_t nl;

	memset(n, 0, sizeof(*n));
	if (len < HS_MAN_NAME_HDR_LEN + 4 || memcmp(p, name_magic, 8) || hs_get32(p + 8) != 1)
		return -HS_EDATA;
	nl = p[32];
	if (!nl || len != HS_MAN_NAME_HDR_LEN + nl + 4)
		return -HS_EDATA;
	if (hs_crc32c(0, p, len - 4) != hs_get32(p + len - 4))
		return -HS_ECHECKSUM;
	n->log = hs_get64(p + 16);
	n->created_ms = hs_get64(p + 24);
	n->nlen = (uint8_t)nl;
	memcpy(n->name, p + HS_MAN_NAME_HDR_LEN, nl);
	n->name[nl] = 0;
	return 0;
}

/* ---- entries and refs --------------------------------------------------- */

void hs_man_entry_enc(const struct hs_man_entry *e, struct hs_buf *out)
{
	hs_w64(out, e->first_lsn);
	hs_w64(out, e->last_lsn);
	hs_w64(out, e->first_ts);
	hs_w64(out, e->last_ts);
	hs_w64(out, e->size);
	hs_w64(out, e->records);
	hs_w64(out, e->created_ms);
	hs_w64(out, e->attempt);
	hs_wbytes(out, e->hash, 32);
}

void hs_man_entry_dec(const uint8_t *p, struct hs_man_entry *e)
{
	e->first_lsn = hs_get64(p);
	e->last_lsn = hs_get64(p + 8);
	e->first_ts = hs_get64(p + 16);
	e->last_ts = hs_get64(p + 24);
	e->size = hs_get64(p + 32);
	e->records = hs_get64(p + 40);
	e->created_ms = hs_get64(p + 48);
	e->attempt = hs_get64(p + 56);
	memcpy(e->hash, p + 64, 32);
}

void hs_man_ref_enc(const struct hs_man_ref *r, struct hs_buf *out)
{
	hs_w64(out, r->first_lsn);
	hs_w64(out, r->last_lsn);
	hs_w64(out, r->size);
	hs_w64(out, r->created_ms);
	hs_w64(out, r->attempt);
	hs_w32(out, r->nentries);
	hs_w32(out, 0);
	hs_wbytes(out, r->hash, 32);
}

void hs_man_ref_dec(const uint8_t *p, struct hs_man_ref *r)
{
	r->first_lsn = hs_get64(p);
	r->last_lsn = hs_get64(p + 8);
	r->size = hs_get64(p + 16);
	r->created_ms = hs_get64(p + 24);
	r->attempt = hs_get64(p + 32);
	r->nentries = hs_get32(p + 40);
	memcpy(r->hash, p + 48, 32);
}

/* ---- the register value -------------------------------------------------- */

void hs_man_enc(const struct hs_man *m, struct hs_buf *out)
{
	hs_w8(out, 1);
	hs_w8(out, 0);
	hs_w16(out, m->nentries);
	hs_w16(out, m->nrefs);
	hs_w16(out, 0);
	hs_w64(out, m->offload);
	hs_w64(out, m->expired);
	hs_w64(out, m->gen);
	for (uint16_t i = 0; i < m->nrefs; i++)
		hs_man_ref_enc(&m->refs[i], out);
	for (uint16_t i = 0; i < m->nentries; i++)
		hs_man_entry_enc(&m->entries[i], out);
}

/* Check the order invariant: refs then entries, each first <= last, each
 * after the one before and after expired, the last at most offload. */
static int check(const struct hs_man *m)
{
	uint64_t prev = m->expired;

	if (m->expired > m->offload)
		return -HS_EDATA;
	for (uint16_t i = 0; i < m->nrefs; i++) {
		const struct hs_man_ref *r = &m->refs[i];

		if (r->first_lsn <= prev || r->last_lsn < r->first_lsn || !r->nentries)
			return -HS_EDATA;
		prev = r->last_lsn;
	}
	for (uint16_t i = 0; i < m->nentries; i++) {
		const struct hs_man_entry *e = &m->entries[i];

		if (e->first_lsn <= prev || e->last_lsn < e->first_lsn)
			return -HS_EDATA;
		prev = e->last_lsn;
	}
	return prev > m->offload ? -HS_EDATA : 0;
}

int hs_man_dec(const uint8_t *p, size_t len, struct hs_man *m)
{
	uint16_t ne, nr;

	memset(m, 0, sizeof(*m));
	if (len == 0)
		return 0;
	if (len < HS_MAN_HDR_LEN || p[0] != 1)
		return -HS_EDATA;
	ne = hs_get16(p + 2);
	nr = hs_get16(p + 4);
	if (len != HS_MAN_HDR_LEN + (size_t)nr * HS_MAN_REF_LEN + (size_t)ne * HS_MAN_ENTRY_LEN)
		return -HS_EDATA;
	m->offload = hs_get64(p + 8);
	m->expired = hs_get64(p + 16);
	m->gen = hs_get64(p + 24);
	p += HS_MAN_HDR_LEN;
	m->refs = hs_xcalloc(nr ? nr : 1, sizeof(*m->refs));
	m->entries = hs_xcalloc(ne ? ne : 1, sizeof(*m->entries));
	m->nrefs = nr;
	m->nentries = ne;
	for (uint16_t i = 0; i < nr; i++, p += HS_MAN_REF_LEN)
		hs_man_ref_dec(p, &m->refs[i]);
	for (uint16_t i = 0; i < ne; i++, p += HS_MAN_ENTRY_LEN)
		hs_man_entry_dec(p, &m->entries[i]);
	return check(m);
}

void hs_man_free(struct hs_man *m)
{
	free(m->refs);
	free(m->entries);
	memset(m, 0, sizeof(*m));
}

/* ---- changes --------------------------------------------------------------- */

int hs_man_publish(struct hs_man *m, const struct hs_man_entry *e, uint64_t tier1_trim,
		   uint64_t limit)
{
	/* The same entry again (a retry after a lost reply): done already.
	 * Only the newest entry can be retried: a later one would have needed
	 * this one's offload point first. */
	if (m->nentries) {
		const struct hs_man_entry *l = &m->entries[m->nentries - 1];

		if (l->attempt == e->attempt && l->first_lsn == e->first_lsn &&
		    l->last_lsn == e->last_lsn && !memcmp(l->hash, e->hash, 32))
			return HS_MAN_SAME;
	}
	if (e->first_lsn <= m->offload || e->last_lsn < e->first_lsn)
		return -HS_EDATA;
	/* Contiguous with the offload point, or the LSNs between were
	 * trimmed from Tier1 before anything offloaded them. */
	if (e->first_lsn != m->offload + 1 && e->first_lsn - 1 > tier1_trim)
		return -HS_EDATA;
	if (e->last_lsn > limit)
		return -HS_ENOTRELEASED;
	if (m->nentries >= HS_MAN_ENTRIES_MAX)
		return -HS_ETOOBIG;
	m->entries = hs_xrealloc(m->entries, (m->nentries + 1u) * sizeof(*m->entries));
	m->entries[m->nentries++] = *e;
	m->offload = e->last_lsn;
	m->gen++;
	return 0;
}

int hs_man_fold(struct hs_man *m, const struct hs_man_ref *r)
{
	const struct hs_man_entry *a, *b;

	if (m->nrefs) {
		const struct hs_man_ref *l = &m->refs[m->nrefs - 1];

		if (l->attempt == r->attempt && l->first_lsn == r->first_lsn &&
		    l->last_lsn == r->last_lsn)
			return HS_MAN_SAME;
	}
	if (!r->nentries || r->nentries > m->nentries)
		return -HS_EDATA;
	a = &m->entries[0];
	b = &m->entries[r->nentries - 1];
	if (a->first_lsn != r->first_lsn || b->last_lsn != r->last_lsn)
		return -HS_EDATA;
	if (m->nrefs >= HS_MAN_REFS_MAX)
		return -HS_ETOOBIG;
	m->refs = hs_xrealloc(m->refs, (m->nrefs + 1u) * sizeof(*m->refs));
	m->refs[m->nrefs++] = *r;
	memmove(m->entries, m->entries + r->nentries,
		(m->nentries - r->nentries) * sizeof(*m->entries));
	m->nentries -= r->nentries;
	m->gen++;
	return 0;
}

int hs_man_expire(struct hs_man *m, uint64_t lsn)
{
	uint16_t nr = 0, ne = 0;

	if (lsn <= m->expired)
		return HS_MAN_SAME;
	if (lsn > m->offload)
		return -HS_EDATA;
	while (nr < m->nrefs && m->refs[nr].last_lsn <= lsn)
		nr++;
	if (nr == m->nrefs)
		while (ne < m->nentries && m->entries[ne].last_lsn <= lsn)
			ne++;
	/* Only whole objects: lsn must end one, or fall where none is. */
	if (nr < m->nrefs && m->refs[nr].first_lsn <= lsn)
		return -HS_EDATA;
	if (nr == m->nrefs && ne < m->nentries && m->entries[ne].first_lsn <= lsn)
		return -HS_EDATA;
	memmove(m->refs, m->refs + nr, (m->nrefs - nr) * sizeof(*m->refs));
	m->nrefs -= nr;
	memmove(m->entries, m->entries + ne, (m->nentries - ne) * sizeof(*m->entries));
	m->nentries -= ne;
	m->expired = lsn;
	m->gen++;
	return 0;
}

/* ---- manifest objects ------------------------------------------------------ */

void hs_man_obj_enc(uint64_t log, const char *name, const struct hs_man_entry *entries,
		    uint32_t n, uint64_t created_ms, uint64_t attempt, struct hs_buf *out)
{
	size_t start = out->len, nl = strlen(name);

	if (nl > 255)
		nl = 255;
	hs_wbytes(out, obj_magic, 8);
	hs_w32(out, 1);
	hs_w32(out, n);
	hs_w64(out, log);
	hs_w64(out, n ? entries[0].first_lsn : 0);
	hs_w64(out, n ? entries[n - 1].last_lsn : 0);
	hs_w64(out, created_ms);
	hs_w64(out, attempt);
	hs_w8(out, (uint8_t)nl);
	hs_wbytes(out, "\0\0\0\0\0\0\0", 7);
	hs_wbytes(out, name, nl);
	for (uint32_t i = 0; i < n; i++)
		hs_man_entry_enc(&entries[i], out);
	hs_w32(out, hs_crc32c(0, out->data + start, out->len - start));
}

int hs_man_obj_dec(const uint8_t *p, size_t len, struct hs_man_obj *o)
{
	uint32_t n;
	size_t nl;
	uint64_t prev = 0;

	memset(o, 0, sizeof(*o));
	if (len < HS_MAN_OBJ_HDR_LEN + 4 || memcmp(p, obj_magic, 8) || hs_get32(p + 8) != 1)
		return -HS_EDATA;
	n = hs_get32(p + 12);
	nl = p[56];
	if ((len - HS_MAN_OBJ_HDR_LEN - 4 - nl) / HS_MAN_ENTRY_LEN != n ||
	    len != HS_MAN_OBJ_HDR_LEN + nl + (size_t)n * HS_MAN_ENTRY_LEN + 4)
		return -HS_EDATA;
	if (hs_crc32c(0, p, len - 4) != hs_get32(p + len - 4))
		return -HS_ECHECKSUM;
	o->log = hs_get64(p + 16);
	o->first_lsn = hs_get64(p + 24);
	o->last_lsn = hs_get64(p + 32);
	o->created_ms = hs_get64(p + 40);
	o->attempt = hs_get64(p + 48);
	memcpy(o->name, p + HS_MAN_OBJ_HDR_LEN, nl);
	o->name[nl] = 0;
	o->entries = hs_xcalloc(n ? n : 1, sizeof(*o->entries));
	o->nentries = n;
	p += HS_MAN_OBJ_HDR_LEN + nl;
	for (uint32_t i = 0; i < n; i++, p += HS_MAN_ENTRY_LEN) {
		struct hs_man_entry *e = &o->entries[i];

		hs_man_entry_dec(p, e);
		if (e->first_lsn <= prev || e->last_lsn < e->first_lsn)
			return -HS_EDATA;
		prev = e->last_lsn;
	}
	if (!n || o->entries[0].first_lsn != o->first_lsn || prev != o->last_lsn)
		return -HS_EDATA;
	return 0;
}

void hs_man_obj_free(struct hs_man_obj *o)
{
	free(o->entries);
	memset(o, 0, sizeof(*o));
}

/* ---- lookups --------------------------------------------------------------- */

int hs_man_find(const struct hs_man *m, uint64_t lsn, const struct hs_man_entry **e,
		const struct hs_man_ref **ref)
{
	size_t lo = 0, hi = m->nentries;

	/* Binary search: the last entry with first_lsn <= lsn. */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (m->entries[mid].first_lsn <= lsn)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo && m->entries[lo - 1].last_lsn >= lsn) {
		*e = &m->entries[lo - 1];
		return 1;
	}
	for (uint16_t i = 0; i < m->nrefs; i++)
		if (m->refs[i].first_lsn <= lsn && lsn <= m->refs[i].last_lsn) {
			*ref = &m->refs[i];
			return 2;
		}
	return 0;
}

const struct hs_man_entry *hs_man_obj_find(const struct hs_man_obj *o, uint64_t lsn)
{
	size_t lo = 0, hi = o->nentries;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (o->entries[mid].first_lsn <= lsn)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo && o->entries[lo - 1].last_lsn >= lsn)
		return &o->entries[lo - 1];
	return NULL;
}

int hs_man_restore(struct hs_man *m, const struct hs_man *want)
{
	uint64_t gen = (m->gen > want->gen ? m->gen : want->gen) + 1;

	if (want->offload <= m->offload)
		return HS_MAN_SAME;
	hs_man_free(m);
	m->offload = want->offload;
	m->expired = want->expired;
	m->gen = gen;
	m->nrefs = want->nrefs;
	m->nentries = want->nentries;
	m->refs = hs_xcalloc(want->nrefs ? want->nrefs : 1, sizeof(*m->refs));
	m->entries = hs_xcalloc(want->nentries ? want->nentries : 1, sizeof(*m->entries));
	memcpy(m->refs, want->refs, want->nrefs * sizeof(*m->refs));
	memcpy(m->entries, want->entries, want->nentries * sizeof(*m->entries));
	return 0;
}
