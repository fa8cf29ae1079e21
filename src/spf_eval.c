/*
 * spf_eval.c - check_host() of RFC 7208 (sections 4 to 7) over a lookup
 * function the caller supplies (check_spf.c: portero's DNS layer; the
 * unit tests: a table).
 *
 * One evaluation counts, across include and redirect, the terms that ask
 * the DNS (include, a, mx, ptr, exists, redirect, and the %{p} macro's
 * PTR query): the eleventh is a permerror.  A term whose query finds no
 * name or no record is a void lookup: the third is a permerror.  A DNS
 * error (SERVFAIL, timeout) ends the evaluation with temperror, except
 * inside ptr and %{p}, where RFC 7208 5.5 says to skip the name.  An mx
 * mechanism with more than 10 MX records is a permerror; only the first
 * 10 PTR names are looked at.  Names the macros produce are cut to 253
 * bytes from the left; a name that is still not a DNS name is not asked
 * and counts as not found.  Everything is allocated from ev->arena; no
 * global state: thread-safe, one struct spf_eval per evaluation.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "spf.h"
#include "util.h"

#define NAME_MAX_LEN	256	/* a DNS name in text form, with NUL */
#define EXPAND_MAX	2048	/* bytes of one expanded domain-spec */

static void
why(struct spf_eval *ev, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
why(struct spf_eval *ev, const char *fmt, ...)
{
	va_list	 ap;

	if (ev->why[0] != '\0')
		return;		/* the innermost cause says most */
	va_start(ap, fmt);
	(void)vsnprintf(ev->why, sizeof(ev->why), fmt, ap);
	va_end(ap);
}

/* Text the DNS layer can ask: labels of 1..63 printable bytes, no
 * backslash (presentation-format escapes). */
static int
name_ok(const char *s)
{
	size_t	 label = 0, total = 0;

	for (; *s != '\0'; s++, total++) {
		unsigned char c = (unsigned char)*s;

		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if (c < 0x21 || c > 0x7e || c == '\\' ||
		    ++label > 63)
			return 0;
	}
	return total > 0 && total <= SPF_DOMAIN_MAX + 1;
}

static void
ask(struct spf_eval *ev, const char *name, int rrtype, struct spf_answer *a)
{
	if (!name_ok(name)) {
		memset(a, 0, sizeof(*a));
		a->status = DNS_NXDOMAIN;
		return;
	}
	ev->lookup(ev->lookup_arg, name, rrtype, a);
	if (a->status != DNS_OK)
		a->n = 0;
}

static int
is_void(const struct spf_answer *a)
{
	return a->status == DNS_NXDOMAIN || a->status == DNS_NODATA ||
	    (a->status == DNS_OK && a->n == 0);
}

static int
is_error(const struct spf_answer *a)
{
	return a->status != DNS_OK && !is_void(a);
}

/* A term that asks the DNS; 0 past the limit (permerror). */
static int
count_lookup(struct spf_eval *ev)
{
	if (++ev->lookups <= SPF_LOOKUP_MAX)
		return 1;
	why(ev, "more than %d DNS-querying terms", SPF_LOOKUP_MAX);
	return 0;
}

static int
count_void(struct spf_eval *ev, const char *name)
{
	if (++ev->voids <= SPF_VOID_MAX)
		return 1;
	why(ev, "more than %d void lookups (last: %s)", SPF_VOID_MAX, name);
	return 0;
}

/* The client address as an A or AAAA rdata matches net/plen. */
static int
prefix_match(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned	 whole = bits / 8, rest = bits % 8;
	uint8_t		 mask;

	if (memcmp(a, b, whole) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (uint8_t)(0xff << (8 - rest));
	return (a[whole] & mask) == (b[whole] & mask);
}

static int
addr_match(const struct spf_eval *ev, const uint8_t *rd, size_t len,
    unsigned plen4, unsigned plen6)
{
	if (ev->ip.v4)
		return len == 4 && prefix_match(ev->ip.b + 12, rd, plen4);
	return len == 16 && prefix_match(ev->ip.b, rd, plen6);
}

static int
any_addr_match(const struct spf_eval *ev, const struct spf_answer *a,
    unsigned plen4, unsigned plen6)
{
	size_t	 i;

	for (i = 0; i < a->n; i++)
		if (addr_match(ev, a->rr[i], a->len[i], plen4, plen6))
			return 1;
	return 0;
}

static int
client_type(const struct spf_eval *ev)
{
	return ev->ip.v4 ? DNS_T_A : DNS_T_AAAA;
}

/*
 * 5.5: the client's validated names, once per evaluation: the names of
 * its PTR records (the first 10) that resolve back to it.  DNS errors
 * skip a name (or all of them); *void_ptr says the PTR query was void.
 */
static void
validate_ptr(struct spf_eval *ev, int *void_ptr)
{
	struct spf_answer	 a;
	char			 rev[128], names[SPF_PTR_MAX][NAME_MAX_LEN];
	size_t			 i, n = 0;

	*void_ptr = 0;
	if (ev->ptr_done) {
		*void_ptr = ev->ptr_void;
		return;
	}
	ev->ptr_done = 1;
	if (dns_reverse_name(&ev->ip, ev->ip.v4 ? "in-addr.arpa" : "ip6.arpa",
	    rev, sizeof(rev)) != 0)
		return;
	ask(ev, rev, DNS_T_PTR, &a);
	ev->ptr_void = *void_ptr = is_void(&a);
	for (i = 0; i < a.n && n < SPF_PTR_MAX; i++)
		if (dns_name_from_wire(a.rr[i], a.len[i], names[n],
		    sizeof(names[n])) == 0 && names[n][0] != '\0')
			n++;
	for (i = 0; i < n; i++) {
		ask(ev, names[i], client_type(ev), &a);
		if (!any_addr_match(ev, &a, 32, 128))
			continue;
		ev->ptr_names[ev->nptr] = arena_strdup(ev->arena, names[i]);
		if (ev->ptr_names[ev->nptr] == NULL)
			ev->nomem = 1;
		else
			ev->nptr++;
	}
}

/* name is domain or a name below it (case-insensitive). */
static int
in_domain(const char *name, const char *domain)
{
	size_t	 n = strlen(name), d = strlen(domain);

	if (d > 0 && domain[d - 1] == '.')
		d--;
	if (n > 0 && name[n - 1] == '.')
		n--;
	if (n == d)
		return strncasecmp(name, domain, n) == 0;
	return n > d && name[n - d - 1] == '.' &&
	    strncasecmp(name + n - d, domain, d) == 0;
}

/* 7.3: the p macro's value; NULL past the lookup limit. */
static const char *
macro_p(struct spf_eval *ev, const char *domain)
{
	size_t	 i;
	int	 void_ptr;

	if (!ev->ptr_done && !count_lookup(ev))
		return NULL;
	validate_ptr(ev, &void_ptr);
	for (i = 0; i < ev->nptr; i++)
		if (strcasecmp(ev->ptr_names[i], domain) == 0)
			return ev->ptr_names[i];
	for (i = 0; i < ev->nptr; i++)
		if (in_domain(ev->ptr_names[i], domain))
			return ev->ptr_names[i];
	return ev->nptr > 0 ? ev->ptr_names[0] : "unknown";
}

static const char *
macro_value(struct spf_eval *ev, int letter, const char *domain, char *tmp,
    size_t tlen)
{
	const char	*at = strrchr(ev->sender, '@');
	char		*v;
	size_t		 i, o = 0;

	switch (letter) {
	case 's':
		return ev->sender;
	case 'l':
		if (at == NULL || at == ev->sender)
			return "postmaster";
		v = arena_strndup(ev->arena, ev->sender,
		    (size_t)(at - ev->sender));
		if (v == NULL)
			ev->nomem = 1;
		return v;
	case 'o':
		return at != NULL ? at + 1 : ev->sender;
	case 'd':
		return domain;
	case 'h':
		return ev->helo;
	case 'v':
		return ev->ip.v4 ? "in-addr" : "ip6";
	case 'i':
		if (ev->ip.v4) {
			(void)snprintf(tmp, tlen, "%u.%u.%u.%u", ev->ip.b[12],
			    ev->ip.b[13], ev->ip.b[14], ev->ip.b[15]);
			return tmp;
		}
		for (i = 0; i < 16 && o + 4 < tlen; i++) {
			static const char hex[] = "0123456789abcdef";

			tmp[o++] = hex[ev->ip.b[i] >> 4];
			tmp[o++] = '.';
			tmp[o++] = hex[ev->ip.b[i] & 15];
			tmp[o++] = '.';
		}
		tmp[o > 0 ? o - 1 : 0] = '\0';
		return tmp;
	case 'p':
		return macro_p(ev, domain);
	}
	return NULL;	/* c, r, t: refused in domain-specs by the parser */
}

struct out {
	char	*buf;
	size_t	 len, o;
	int	 full;
};

static void
put(struct out *w, const char *s, size_t n)
{
	if (w->full || n >= w->len - w->o) {
		w->full = 1;
		return;
	}
	memcpy(w->buf + w->o, s, n);
	w->o += n;
}

static void
put_url(struct out *w, const char *s, size_t n, int url)
{
	static const char	 hex[] = "0123456789ABCDEF";
	size_t			 i;

	if (!url) {
		put(w, s, n);
		return;
	}
	for (i = 0; i < n; i++) {
		unsigned char	 c = (unsigned char)s[i];
		char		 e[3] = { '%', hex[c >> 4], hex[c & 15] };

		if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~')
			put(w, s + i, 1);
		else
			put(w, e, 3);
	}
}

/* One "%{...}" at *pp (after "%{"); advances past the "}". */
static enum rc
expand_macro(struct spf_eval *ev, const char **pp, const char *domain,
    struct out *w)
{
	const char	*p = *pp, *v;
	char		 tmp[NAME_MAX_LEN], delims[8];
	size_t		 keep = 0, nd = 0, nparts = 0, i, vlen, *start;
	int		 letter = (unsigned char)*p, url, rev = 0;

	if (letter == '\0')
		return RC_PERM;
	p++;
	url = isupper(letter);
	letter = tolower(letter);
	while (isdigit((unsigned char)*p)) {
		if (keep < 1000)
			keep = keep * 10 + (size_t)(*p - '0');
		p++;
	}
	if (*p == 'r' || *p == 'R') {
		rev = 1;
		p++;
	}
	for (; *p != '}'; p++) {
		if (*p == '\0' || strchr(".-+,/_=", *p) == NULL)
			return RC_PERM;	/* the parser let no such macro by */
		if (memchr(delims, *p, nd) == NULL)
			delims[nd++] = *p;	/* at most the 7 kinds */
	}
	delims[nd] = '\0';
	*pp = p + 1;
	v = macro_value(ev, letter, domain, tmp, sizeof(tmp));
	if (v == NULL)
		return ev->nomem ? RC_NOMEM : RC_PERM;
	if (nd == 0)
		(void)str_copy(delims, ".", sizeof(delims));
	/* split on the delimiters: part k is v[start[k], start[k+1] - 1) */
	vlen = strlen(v);
	start = arena_calloc(ev->arena, vlen + 2, sizeof(*start));
	if (start == NULL) {
		ev->nomem = 1;
		return RC_NOMEM;
	}
	start[nparts++] = 0;
	for (i = 0; i < vlen; i++)
		if (strchr(delims, v[i]) != NULL)
			start[nparts++] = i + 1;
	start[nparts] = vlen + 1;
	/* reverse if asked, keep the rightmost parts, join with dots */
	if (keep == 0 || keep > nparts)
		keep = nparts;
	for (i = nparts - keep; i < nparts; i++) {
		size_t k = rev ? nparts - 1 - i : i;

		if (i > nparts - keep)
			put(w, ".", 1);
		put_url(w, v + start[k], start[k + 1] - 1 - start[k], url);
	}
	return RC_OK;
}

enum rc
spf_expand(struct spf_eval *ev, const char *spec, const char *domain,
    char *buf, size_t len)
{
	struct out	 w = { buf, len, 0, 0 };
	const char	*p = spec, *dot;
	enum rc		 rc;
	size_t		 n;

	if (len == 0)
		return RC_NOMEM;
	while (*p != '\0') {
		if (*p != '%') {
			put(&w, p++, 1);
			continue;
		}
		switch (p[1]) {
		case '%':
			put(&w, "%", 1);
			p += 2;
			break;
		case '_':
			put(&w, " ", 1);
			p += 2;
			break;
		case '-':
			put(&w, "%20", 3);
			p += 2;
			break;
		case '{':
			p += 2;
			rc = expand_macro(ev, &p, domain, &w);
			if (rc != RC_OK)
				return rc;
			break;
		default:
			return RC_PERM;
		}
	}
	if (w.full)
		return RC_NOMEM;
	buf[w.o] = '\0';
	/* 7.3: cut from the left, a label at a time, to 253 bytes */
	n = w.o;
	if (n > 0 && buf[n - 1] == '.')
		n--;
	p = buf;
	while (n - (size_t)(p - buf) > SPF_DOMAIN_MAX &&
	    (dot = strchr(p, '.')) != NULL)
		p = dot + 1;
	if (p != buf)
		memmove(buf, p, strlen(p) + 1);
	return RC_OK;
}

static enum spf_result check_host(struct spf_eval *, const char *, int);

static int
multi_label(const char *s)
{
	const char	*dot = strchr(s, '.');

	return name_ok(s) && dot != NULL && dot[1] != '\0';
}

/* The target of a term: its domain-spec expanded, or the domain. */
static int
target(struct spf_eval *ev, const char *spec, const char *domain, char *buf,
    size_t len)
{
	enum rc	 rc;

	if (spec == NULL)
		return str_copy(buf, domain, len) == 0;
	rc = spf_expand(ev, spec, domain, buf, len);
	if (rc == RC_OK)
		return 1;
	if (rc == RC_NOMEM && !ev->nomem)
		why(ev, "macro expansion of '%s' too long", spec);
	else if (rc == RC_PERM)
		why(ev, "macro error in '%s'", spec);
	return 0;
}

enum match {
	M_NO,
	M_YES,
	M_TEMPERROR,
	M_PERMERROR
};

static enum match
mech_mx(struct spf_eval *ev, const struct spf_term *t, const char *name)
{
	struct spf_answer	 a;
	char			 hosts[SPF_MX_MAX][NAME_MAX_LEN];
	size_t			 i, n = 0;

	ask(ev, name, SPF_T_MX, &a);
	if (is_error(&a)) {
		why(ev, "DNS %s for %s MX", dns_status_name(a.status), name);
		return M_TEMPERROR;
	}
	if (is_void(&a))
		return count_void(ev, name) ? M_NO : M_PERMERROR;
	if (a.n > SPF_MX_MAX) {
		why(ev, "more than %d MX records for %s", SPF_MX_MAX, name);
		return M_PERMERROR;
	}
	for (i = 0; i < a.n; i++)
		if (a.len[i] > 2 && dns_name_from_wire(a.rr[i] + 2,
		    a.len[i] - 2, hosts[n], sizeof(hosts[n])) == 0 &&
		    hosts[n][0] != '\0')
			n++;	/* "." (null MX, RFC 7505) names no host */
	for (i = 0; i < n; i++) {
		ask(ev, hosts[i], client_type(ev), &a);
		if (is_error(&a)) {
			why(ev, "DNS %s for %s", dns_status_name(a.status),
			    hosts[i]);
			return M_TEMPERROR;
		}
		if (any_addr_match(ev, &a, t->plen4, t->plen6))
			return M_YES;
	}
	return M_NO;
}

static enum match
mechanism(struct spf_eval *ev, const struct spf_term *t, const char *domain,
    int depth)
{
	struct spf_answer	 a;
	char			 name[EXPAND_MAX];
	size_t			 i;
	int			 void_ptr;

	switch (t->mech) {
	case SPF_M_ALL:
		return M_YES;
	case SPF_M_IP4:
		return ev->ip.v4 && prefix_match(ev->ip.b + 12, t->net.b + 12,
		    t->plen4) ? M_YES : M_NO;
	case SPF_M_IP6:
		return !ev->ip.v4 && prefix_match(ev->ip.b, t->net.b,
		    t->plen6) ? M_YES : M_NO;
	case SPF_M_A:
	case SPF_M_MX:
	case SPF_M_PTR:
	case SPF_M_EXISTS:
	case SPF_M_INCLUDE:
		break;
	}
	if (!count_lookup(ev))
		return M_PERMERROR;
	if (!target(ev, t->domain, domain, name, sizeof(name)))
		return ev->nomem ? M_TEMPERROR : M_PERMERROR;
	switch (t->mech) {
	case SPF_M_A:
	case SPF_M_EXISTS:
		ask(ev, name, t->mech == SPF_M_A ? client_type(ev) : DNS_T_A,
		    &a);
		if (is_error(&a)) {
			why(ev, "DNS %s for %s", dns_status_name(a.status),
			    name);
			return M_TEMPERROR;
		}
		if (is_void(&a))
			return count_void(ev, name) ? M_NO : M_PERMERROR;
		if (t->mech == SPF_M_EXISTS)
			return M_YES;
		return any_addr_match(ev, &a, t->plen4, t->plen6) ? M_YES :
		    M_NO;
	case SPF_M_MX:
		return mech_mx(ev, t, name);
	case SPF_M_PTR:
		validate_ptr(ev, &void_ptr);
		if (void_ptr && !count_void(ev, "PTR"))
			return M_PERMERROR;
		for (i = 0; i < ev->nptr; i++)
			if (in_domain(ev->ptr_names[i], name))
				return M_YES;
		return M_NO;
	case SPF_M_INCLUDE:
		switch (check_host(ev, name, depth + 1)) {
		case SPF_PASS:
			return M_YES;
		case SPF_FAIL:
		case SPF_SOFTFAIL:
		case SPF_NEUTRAL:
			return M_NO;
		case SPF_TEMPERROR:
			return M_TEMPERROR;
		case SPF_NONE:
			why(ev, "include:%s has no SPF record", name);
			return M_PERMERROR;
		case SPF_PERMERROR:
			return M_PERMERROR;
		}
		return M_PERMERROR;
	case SPF_M_ALL:
	case SPF_M_IP4:
	case SPF_M_IP6:
		break;
	}
	return M_PERMERROR;
}

/* 4.4 and 4.5: the domain's SPF record. */
static enum spf_result
fetch(struct spf_eval *ev, const char *domain, struct spf_record *rec)
{
	struct spf_answer	 a;
	const char		**recs;
	size_t			*lens, i, which = 0;
	const char		*err;
	int			 nomem;

	ask(ev, domain, DNS_T_TXT, &a);
	if (is_error(&a)) {
		why(ev, "DNS %s for %s TXT", dns_status_name(a.status),
		    domain);
		return SPF_TEMPERROR;
	}
	if (a.n == 0)
		return SPF_NONE;
	recs = arena_calloc(ev->arena, a.n, sizeof(*recs));
	lens = arena_calloc(ev->arena, a.n, sizeof(*lens));
	if (recs == NULL || lens == NULL) {
		ev->nomem = 1;
		return SPF_TEMPERROR;
	}
	for (i = 0; i < a.n; i++) {
		recs[i] = spf_txt_join(ev->arena, a.rr[i], a.len[i], &lens[i],
		    &nomem);
		if (nomem) {
			ev->nomem = 1;
			return SPF_TEMPERROR;
		}
	}
	switch (spf_select(recs, lens, a.n, &which)) {
	case 0:
		return SPF_NONE;
	case 1:
		break;
	default:
		why(ev, "more than one SPF record for %s", domain);
		return SPF_PERMERROR;
	}
	switch (spf_record_parse(ev->arena, recs[which], lens[which], rec,
	    &err)) {
	case RC_OK:
		return SPF_PASS;	/* a record to evaluate */
	case RC_NOMEM:
		ev->nomem = 1;
		return SPF_TEMPERROR;
	default:
		why(ev, "SPF record of %s: %s", domain, err != NULL ? err :
		    "syntax error");
		return SPF_PERMERROR;
	}
}

static enum spf_result
check_host(struct spf_eval *ev, const char *domain, int depth)
{
	struct spf_record	 rec;
	enum spf_result		 r;
	char			 name[EXPAND_MAX];
	size_t			 i;

	/* 4.3: a malformed or single-label domain has no SPF record */
	if (!multi_label(domain))
		return SPF_NONE;
	r = fetch(ev, domain, &rec);
	if (r != SPF_PASS)
		return r;
	for (i = 0; i < rec.nterms; i++) {
		switch (mechanism(ev, &rec.terms[i], domain, depth)) {
		case M_NO:
			continue;
		case M_YES:
			return rec.terms[i].result;
		case M_TEMPERROR:
			return SPF_TEMPERROR;
		case M_PERMERROR:
			return SPF_PERMERROR;
		}
	}
	if (rec.redirect == NULL || rec.has_all)
		return SPF_NEUTRAL;
	/* 6.1 */
	if (!count_lookup(ev))
		return SPF_PERMERROR;
	if (!target(ev, rec.redirect, domain, name, sizeof(name)))
		return ev->nomem ? SPF_TEMPERROR : SPF_PERMERROR;
	r = check_host(ev, name, depth + 1);
	if (r == SPF_NONE) {
		why(ev, "redirect=%s has no SPF record", name);
		return SPF_PERMERROR;
	}
	return r;
}

enum spf_result
spf_check_host(struct spf_eval *ev, const char *domain)
{
	ev->lookups = 0;
	ev->voids = 0;
	ev->why[0] = '\0';
	ev->nomem = 0;
	if (ev->sender == NULL)
		ev->sender = "";
	if (ev->helo == NULL)
		ev->helo = "";
	return check_host(ev, domain, 0);
}
