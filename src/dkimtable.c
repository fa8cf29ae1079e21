/*
 * dkimtable.c - OpenDKIM's KeyTable and SigningTable files (see
 * dkimkey.h), for sites that migrate from OpenDKIM: parsing, loading,
 * '*' wildcard patterns and the signing-table walk.
 *
 * Formats, as opendkim(8) "DATA SETS" and opendkim.conf(5) describe them:
 * '#' starts a comment that runs to the end of the line; blank lines are
 * skipped; a line is a key, whitespace, and a value whose parts are
 * separated by ':'.  KeyTable: "NAME DOMAIN:SELECTOR:KEY", split at the
 * first two ':' (KEY is a file path or the key data and may hold ':';
 * key data that starts with "-----BEGIN" runs to the end of the line,
 * spaces included).  SigningTable: "PATTERN NAME[:SIGNER]", where SIGNER
 * is OpenDKIM's optional i= identity.  A '%' (OpenDKIM: the From domain)
 * is kept as written for the signer to substitute.  Lines hold at most
 * DKIMTAB_LINE_MAX bytes, no NUL or other control byte but tab and a
 * final CR (CRLF files are fine).  Errors name the file and the line;
 * they quote names and patterns, never key data.
 *
 * Lookup: OpenDKIM walks a refile: SigningTable in file order and the
 * first match wins (every match with MultipleSignatures); a file: table
 * it searches by exact keys, most specific first (user@host, host,
 * user@.parent..., .parent..., user@*, *).  portero always walks the
 * table in file order and applies '*' wildcards whatever the prefix, and
 * a pattern may match the address or the domain alone: so a file: table
 * must list specific lines before general ones ("*" last), and its
 * ".parent" keys are written "*.parent" here.
 *
 * Owns the tables it returns (freed by the *_free functions).
 * Thread-safe: no global state; a parsed table is read-only.
 */

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "dkimkey.h"
#include "util.h"

#define DKIMTAB_LINE_MAX	8192		/* bytes, without the newline */
#define DKIMTAB_ENTRIES_MAX	100000
#define DKIMTAB_FILE_MAX	(16UL * 1024 * 1024)
#define DKIMTAB_FIELDS		3		/* key, value, one too many */

/* Quoting at most SHOW_MAX bytes of a field in an error: "'%.*s%s'". */
#define SHOW_MAX	64
#define SHOW(s)		(int)((s).len > SHOW_MAX ? SHOW_MAX : (s).len), \
			(s).p, (s).len > SHOW_MAX ? "..." : ""

struct span {
	const char	*p;
	size_t		 len;
};

/* Walks table text line by line. */
struct cursor {
	const char	*path;		/* for errors */
	const char	*p, *end;	/* the rest of the text */
	unsigned long	 line;		/* of the last line returned, from 1 */
};

static int
line_fail(const struct cursor *c, struct err *e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
line_fail(const struct cursor *c, struct err *e, const char *fmt, ...)
{
	char	 why[ERR_MAX];
	va_list	 ap;

	va_start(ap, fmt);
	(void)vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	err_set(e, "%s:%lu: %s", c->path, c->line, why);
	return -1;
}

static int
is_blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

/*
 * The fields of the next line that has any: up to DKIMTAB_FIELDS spans,
 * *nf their count (DKIMTAB_FIELDS means at least that many); *rest the
 * line from the second field on, trimmed.  1 with a line, 0 at the end
 * of the text, -1 with e set on a bad line.
 */
static int
next_line(struct cursor *c, struct span *f, size_t *nf, struct span *rest,
    struct err *e)
{
	const char	*s, *end, *q;
	size_t		 i;

	while (c->p < c->end) {
		c->line++;
		s = c->p;
		q = memchr(s, '\n', (size_t)(c->end - s));
		end = q != NULL ? q : c->end;
		c->p = q != NULL ? q + 1 : c->end;
		if (end > s && end[-1] == '\r')
			end--;
		if ((size_t)(end - s) > DKIMTAB_LINE_MAX)
			return line_fail(c, e, "line longer than %d bytes",
			    DKIMTAB_LINE_MAX);
		if (memchr(s, '\0', (size_t)(end - s)) != NULL)
			return line_fail(c, e, "NUL byte");
		if ((q = memchr(s, '#', (size_t)(end - s))) != NULL)
			end = q;
		for (q = s; q < end; q++) {
			unsigned char ch = (unsigned char)*q;

			if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
				return line_fail(c, e, "control character "
				    "0x%02x", ch);
		}
		*nf = 0;
		rest->p = NULL;
		rest->len = 0;
		for (q = s; q < end && *nf < DKIMTAB_FIELDS; ) {
			while (q < end && is_blank(*q))
				q++;
			if (q == end)
				break;
			i = (*nf)++;
			f[i].p = q;
			while (q < end && !is_blank(*q))
				q++;
			f[i].len = (size_t)(q - f[i].p);
		}
		if (*nf == 0)
			continue;
		if (*nf > 1) {
			while (end > f[1].p && is_blank(end[-1]))
				end--;
			rest->p = f[1].p;
			rest->len = (size_t)(end - f[1].p);
		}
		return 1;
	}
	return 0;
}

/*
 * v with room for one more element (capacity *cap, n used): v itself,
 * or a larger copy; NULL when out of memory (v is then unchanged).
 */
static void *
grow(void *v, size_t *cap, size_t n, size_t size)
{
	size_t	 ncap;
	void	*nv;

	if (n < *cap)
		return v;
	ncap = *cap < 16 ? 16 : *cap * 2;
	if (ncap > DKIMTAB_ENTRIES_MAX)
		ncap = DKIMTAB_ENTRIES_MAX;
	if (ncap <= n || ncap > SIZE_MAX / size)
		return NULL;
	if ((nv = realloc(v, ncap * size)) == NULL)
		return NULL;
	*cap = ncap;
	return nv;
}

static char *
span_dup(const char *p, size_t len, int lower)
{
	char	*s = malloc(len + 1);

	if (s == NULL)
		return NULL;
	memcpy(s, p, len);
	s[len] = '\0';
	if (lower)
		str_lower(s);
	return s;
}

static void
kt_entry_free(struct dkim_kt_entry *k)
{
	free(k->name);
	free(k->domain);
	free(k->selector);
	if (k->key != NULL)
		explicit_bzero(k->key, strlen(k->key));	/* may be key data */
	free(k->key);
}

void
dkim_keytable_free(struct dkim_keytable *t)
{
	size_t	 i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++)
		kt_entry_free(&t->v[i]);
	free(t->v);
	t->v = NULL;
	t->n = 0;
}

void
dkim_signtable_free(struct dkim_signtable *t)
{
	size_t	 i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++) {
		free(t->v[i].pattern);
		free(t->v[i].keyname);
		free(t->v[i].signer);
	}
	free(t->v);
	t->v = NULL;
	t->n = 0;
}

/* A key name and the line it is on, to find duplicates by sorting. */
struct kt_name {
	const char	*name;
	unsigned long	 line;
};

static int
kt_name_cmp(const void *a, const void *b)
{
	const struct kt_name	*x = a, *y = b;
	int			 c = strcmp(x->name, y->name);

	if (c != 0)
		return c;
	return x->line < y->line ? -1 : x->line > y->line;
}

/*
 * Duplicate key names (exact compare, as OpenDKIM looks them up): the
 * one whose second line comes first is reported.
 */
static int
kt_check_dups(const char *path, const struct dkim_keytable *t,
    const unsigned long *lines, struct err *e)
{
	struct kt_name	*s;
	size_t		 i, bad = 0;
	int		 found = 0;

	if (t->n < 2)
		return 0;
	if ((s = calloc(t->n, sizeof(*s))) == NULL) {
		err_set(e, "out of memory");
		return -1;
	}
	for (i = 0; i < t->n; i++) {
		s[i].name = t->v[i].name;
		s[i].line = lines[i];
	}
	qsort(s, t->n, sizeof(*s), kt_name_cmp);
	for (i = 1; i < t->n; i++)
		if (strcmp(s[i].name, s[i - 1].name) == 0 &&
		    (!found || s[i].line < s[bad].line)) {
			bad = i;
			found = 1;
		}
	if (found) {
		for (i = bad; i > 0 && strcmp(s[i - 1].name, s[bad].name) == 0;
		    i--)
			;
		err_set(e, "%s:%lu: duplicate key name '%.*s%s' (first on "
		    "line %lu)", path, s[bad].line, SHOW_MAX, s[bad].name,
		    strlen(s[bad].name) > SHOW_MAX ? "..." : "", s[i].line);
	}
	free(s);
	return found ? -1 : 0;
}

/* One KeyTable line into *k (fields set, or all NULL). */
static int
kt_line(const struct cursor *c, const struct span *f, size_t nf,
    const struct span *rest, struct dkim_kt_entry *k, struct err *e)
{
	const char	*v, *vend, *c1, *c2;
	struct span	 key;

	if (nf < 2)
		return line_fail(c, e, "key name '%.*s%s' has no "
		    "DOMAIN:SELECTOR:KEY value", SHOW(f[0]));
	v = f[1].p;
	vend = v + f[1].len;
	c1 = memchr(v, ':', f[1].len);
	c2 = c1 != NULL ? memchr(c1 + 1, ':', (size_t)(vend - c1 - 1)) : NULL;
	if (c2 == NULL)
		return line_fail(c, e, "key name '%.*s%s': the value is not "
		    "DOMAIN:SELECTOR:KEY", SHOW(f[0]));
	key.p = c2 + 1;
	key.len = (size_t)(vend - key.p);
	if (nf > 2) {
		/* inline PEM, "-----BEGIN PRIVATE KEY-----...", has spaces */
		if (key.len < 10 || memcmp(key.p, "-----BEGIN", 10) != 0)
			return line_fail(c, e, "key name '%.*s%s': unexpected "
			    "'%.*s%s' after DOMAIN:SELECTOR:KEY", SHOW(f[0]),
			    SHOW(f[2]));
		key.len = (size_t)(rest->p + rest->len - key.p);
	}
	if (c1 == v)
		return line_fail(c, e, "key name '%.*s%s': empty domain",
		    SHOW(f[0]));
	if (c2 == c1 + 1)
		return line_fail(c, e, "key name '%.*s%s': empty selector",
		    SHOW(f[0]));
	if (key.len == 0)
		return line_fail(c, e, "key name '%.*s%s': empty key",
		    SHOW(f[0]));
	k->name = span_dup(f[0].p, f[0].len, 0);
	k->domain = span_dup(v, (size_t)(c1 - v), 1);
	k->selector = span_dup(c1 + 1, (size_t)(c2 - c1 - 1), 0);
	k->key = span_dup(key.p, key.len, 0);
	if (k->name == NULL || k->domain == NULL || k->selector == NULL ||
	    k->key == NULL) {
		kt_entry_free(k);
		memset(k, 0, sizeof(*k));
		err_set(e, "out of memory");
		return -1;
	}
	return 0;
}

int
dkim_keytable_parse(const char *path, const char *text, size_t len,
    struct dkim_keytable *t, struct err *e)
{
	struct cursor	 c = { path, text, text != NULL ? text + len : NULL,
			    0 };
	struct span	 f[DKIMTAB_FIELDS], rest;
	struct dkim_kt_entry *nv;
	unsigned long	*lines = NULL, *nl;
	size_t		 nf, cap = 0, lcap = 0;
	int		 r, rc = -1;

	t->v = NULL;
	t->n = 0;
	while ((r = next_line(&c, f, &nf, &rest, e)) == 1) {
		if (t->n == DKIMTAB_ENTRIES_MAX) {
			(void)line_fail(&c, e, "more than %d entries",
			    DKIMTAB_ENTRIES_MAX);
			goto out;
		}
		if ((nv = grow(t->v, &cap, t->n, sizeof(*t->v))) != NULL)
			t->v = nv;
		if ((nl = grow(lines, &lcap, t->n, sizeof(*lines))) != NULL)
			lines = nl;
		if (nv == NULL || nl == NULL) {
			err_set(e, "out of memory");
			goto out;
		}
		if (kt_line(&c, f, nf, &rest, &t->v[t->n], e) != 0)
			goto out;
		lines[t->n++] = c.line;
	}
	if (r == 0 && kt_check_dups(path, t, lines, e) == 0)
		rc = 0;
out:
	free(lines);
	if (rc != 0)
		dkim_keytable_free(t);
	return rc;
}

/* One SigningTable line into *s (fields set, or all NULL). */
static int
st_line(const struct cursor *c, const struct span *f, size_t nf,
    struct dkim_st_entry *s, struct err *e)
{
	const char	*colon;
	size_t		 nlen;

	if (nf < 2)
		return line_fail(c, e, "pattern '%.*s%s' has no key name",
		    SHOW(f[0]));
	if (nf > 2)
		return line_fail(c, e, "pattern '%.*s%s': unexpected '%.*s%s' "
		    "after the key name", SHOW(f[0]), SHOW(f[2]));
	colon = memchr(f[1].p, ':', f[1].len);
	nlen = colon != NULL ? (size_t)(colon - f[1].p) : f[1].len;
	if (nlen == 0)
		return line_fail(c, e, "pattern '%.*s%s': empty key name",
		    SHOW(f[0]));
	if (colon != NULL && colon + 1 == f[1].p + f[1].len)
		return line_fail(c, e, "pattern '%.*s%s': empty signer after "
		    "'%.*s:'", SHOW(f[0]), (int)(nlen > SHOW_MAX ? SHOW_MAX :
		    nlen), f[1].p);
	s->pattern = span_dup(f[0].p, f[0].len, 1);
	s->keyname = span_dup(f[1].p, nlen, 0);
	s->signer = colon != NULL ? span_dup(colon + 1,
	    (size_t)(f[1].p + f[1].len - colon - 1), 0) : NULL;
	if (s->pattern == NULL || s->keyname == NULL ||
	    (colon != NULL && s->signer == NULL)) {
		free(s->pattern);
		free(s->keyname);
		free(s->signer);
		memset(s, 0, sizeof(*s));
		err_set(e, "out of memory");
		return -1;
	}
	return 0;
}

int
dkim_signtable_parse(const char *path, const char *text, size_t len,
    struct dkim_signtable *t, struct err *e)
{
	struct cursor	 c = { path, text, text != NULL ? text + len : NULL,
			    0 };
	struct span	 f[DKIMTAB_FIELDS], rest;
	struct dkim_st_entry *nv;
	size_t		 nf, cap = 0;
	int		 r;

	t->v = NULL;
	t->n = 0;
	while ((r = next_line(&c, f, &nf, &rest, e)) == 1) {
		if (t->n == DKIMTAB_ENTRIES_MAX) {
			(void)line_fail(&c, e, "more than %d entries",
			    DKIMTAB_ENTRIES_MAX);
			goto fail;
		}
		if ((nv = grow(t->v, &cap, t->n, sizeof(*t->v))) == NULL) {
			err_set(e, "out of memory");
			goto fail;
		}
		t->v = nv;
		if (st_line(&c, f, nf, &t->v[t->n], e) != 0)
			goto fail;
		t->n++;
	}
	if (r == 0)
		return 0;
fail:
	dkim_signtable_free(t);
	return -1;
}

/*
 * The file name of a table spec: "file:PATH" and "refile:PATH" give PATH,
 * a spec without a "TYPE:" prefix itself; NULL with e set for any other
 * type (OpenDKIM's db:, dsn:, ldap:, csl:, ...).
 */
static const char *
table_file(const char *spec, struct err *e)
{
	size_t	 n;

	n = strspn(spec, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789_-");
	if (n == 0 || spec[n] != ':')
		return spec;
	if ((n == 4 && strncasecmp(spec, "file", n) == 0) ||
	    (n == 6 && strncasecmp(spec, "refile", n) == 0)) {
		if (spec[n + 1] == '\0') {
			err_set(e, "%s: no file name after '%.*s:'", spec,
			    (int)n, spec);
			return NULL;
		}
		return spec + n + 1;
	}
	err_set(e, "%s: table type '%.*s' is not supported (file: and "
	    "refile: are)", spec, (int)(n > SHOW_MAX ? SHOW_MAX : n), spec);
	return NULL;
}

int
dkim_keytable_load(const char *spec, struct dkim_keytable *t, struct err *e)
{
	const char	*path;
	struct buf	 b;
	int		 rc = -1;

	t->v = NULL;
	t->n = 0;
	if ((path = table_file(spec, e)) == NULL)
		return -1;
	buf_init(&b, DKIMTAB_FILE_MAX);
	if (file_read(path, &b, e) == 0)
		rc = dkim_keytable_parse(path, buf_str(&b), b.len, t, e);
	if (b.data != NULL)
		explicit_bzero(b.data, b.len);	/* may hold key data */
	buf_free(&b);
	return rc;
}

int
dkim_signtable_load(const char *spec, struct dkim_signtable *t,
    struct err *e)
{
	const char	*path;
	struct buf	 b;
	int		 rc = -1;

	t->v = NULL;
	t->n = 0;
	if ((path = table_file(spec, e)) == NULL)
		return -1;
	buf_init(&b, DKIMTAB_FILE_MAX);
	if (file_read(path, &b, e) == 0)
		rc = dkim_signtable_parse(path, buf_str(&b), b.len, t, e);
	buf_free(&b);
	return rc;
}

/*
 * A match subject made of up to three pieces, read as one string
 * ("local", "@", "domain"), so that lookups need no allocation.
 */
struct subject {
	const char	*p[3];
	size_t		 l[3];
	size_t		 len;
};

/* ASCII case folding: the same in every locale. */
static inline int
fold(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static inline int
subject_at(const struct subject *s, size_t i)
{
	if (i < s->l[0])
		return fold((unsigned char)s->p[0][i]);
	i -= s->l[0];
	if (i < s->l[1])
		return fold((unsigned char)s->p[1][i]);
	i -= s->l[1];
	return fold((unsigned char)s->p[2][i]);	/* i < len: in range */
}

/*
 * Glob match with '*' only: walk both strings; on a mismatch go back to
 * the last '*' and let it take one more byte.  Earlier stars never need
 * to be revisited (what lies between two stars can match anywhere later),
 * so this is O(pattern * subject) at worst, without recursion.
 */
static int
match(const char *pat, const struct subject *s)
{
	size_t	 plen = strlen(pat), pi = 0, si = 0;
	size_t	 star = SIZE_MAX, star_si = 0;

	while (si < s->len) {
		if (pi < plen && pat[pi] == '*') {
			star = pi++;
			star_si = si;
		} else if (pi < plen && fold((unsigned char)pat[pi]) ==
		    subject_at(s, si)) {
			pi++;
			si++;
		} else if (star != SIZE_MAX) {
			pi = star + 1;
			si = ++star_si;
		} else
			return 0;
	}
	while (pi < plen && pat[pi] == '*')
		pi++;
	return pi == plen;
}

static void
subject_set(struct subject *s, const char *a, const char *b, const char *c)
{
	s->p[0] = a;
	s->p[1] = b;
	s->p[2] = c;
	s->l[0] = strlen(a);
	s->l[1] = strlen(b);
	s->l[2] = strlen(c);
	s->len = s->l[0] + s->l[1] + s->l[2];
}

int
dkim_pattern_match(const char *pattern, const char *subject)
{
	struct subject	 s;

	if (pattern == NULL || subject == NULL)
		return 0;
	subject_set(&s, subject, "", "");
	return match(pattern, &s);
}

/*
 * local NULL: only the domain is tried; domain NULL counts as "".  Each
 * entry is reported once, even when it matches both.
 */
void
dkim_signtable_lookup(const struct dkim_signtable *t, const char *local,
    const char *domain, int (*fn)(const struct dkim_st_entry *, void *),
    void *arg)
{
	struct subject	 addr, dom;
	size_t		 i;

	if (t == NULL || fn == NULL)
		return;
	if (domain == NULL)
		domain = "";
	subject_set(&dom, domain, "", "");
	if (local != NULL)
		subject_set(&addr, local, "@", domain);
	for (i = 0; i < t->n; i++) {
		if (!(local != NULL && match(t->v[i].pattern, &addr)) &&
		    !match(t->v[i].pattern, &dom))
			continue;
		if (fn(&t->v[i], arg) != 0)
			return;
	}
}
