/*
 * spf_record.c - SPF records (RFC 7208 sections 4.5, 4.6 and 12): which
 * TXT record is the SPF record, and whether it is valid, term by term,
 * before any of it is evaluated ("if there are any syntax errors anywhere
 * in the record, check_host() returns permerror").  Stricter than the
 * ABNF only where a record could not be evaluated sensibly: a literal
 * domain-spec must be a possible DNS name (no empty label, labels of at
 * most 63 bytes).  Allocates from the caller's arena; no state:
 * thread-safe.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "spf.h"

#define LABEL_MAX	63

static const struct {
	const char	*name;
	enum spf_mech	 mech;
} mechs[] = {
	{ "all", SPF_M_ALL }, { "include", SPF_M_INCLUDE }, { "a", SPF_M_A },
	{ "mx", SPF_M_MX }, { "ptr", SPF_M_PTR }, { "ip4", SPF_M_IP4 },
	{ "ip6", SPF_M_IP6 }, { "exists", SPF_M_EXISTS },
};

const char *
spf_result_name(enum spf_result r)
{
	switch (r) {
	case SPF_NONE:
		return "none";
	case SPF_NEUTRAL:
		return "neutral";
	case SPF_PASS:
		return "pass";
	case SPF_FAIL:
		return "fail";
	case SPF_SOFTFAIL:
		return "softfail";
	case SPF_TEMPERROR:
		return "temperror";
	case SPF_PERMERROR:
		return "permerror";
	}
	return "permerror";
}

static int
is_spf1(const char *s, size_t n)
{
	return n >= 6 && strncasecmp(s, "v=spf1", 6) == 0 &&
	    (n == 6 || s[6] == ' ');
}

int
spf_select(const char *const *recs, const size_t *lens, size_t n,
    size_t *which)
{
	size_t	 i, found = 0;

	for (i = 0; i < n; i++) {
		if (recs[i] == NULL || !is_spf1(recs[i], lens[i]))
			continue;
		if (found++ == 0)
			*which = i;
	}
	return found == 0 ? 0 : found == 1 ? 1 : 2;
}

char *
spf_txt_join(struct arena *ar, const uint8_t *p, size_t n, size_t *len,
    int *nomem)
{
	size_t	 i = 0, o = 0;
	char	*s;

	*nomem = 0;
	s = arena_alloc(ar, n + 1);
	if (s == NULL) {
		*nomem = 1;
		return NULL;
	}
	while (i < n) {
		size_t l = p[i++];

		if (l > n - i)
			return NULL;	/* a string runs past the rdata */
		memcpy(s + o, p + i, l);
		o += l;
		i += l;
	}
	s[o] = '\0';
	*len = o;
	return s;
}

/* A macro-string (7.1).  In a domain-spec, c, r and t are refused (they
 * are for explanation text only).  *ends_macro: the last token was a
 * macro-expand. */
static int
macro_valid(const char *s, size_t n, int domain, int *ends_macro,
    const char **why)
{
	size_t	 i = 0;

	*ends_macro = 0;
	while (i < n) {
		int	 c = (unsigned char)s[i];

		if (c != '%') {
			*ends_macro = 0;
			i++;
			continue;
		}
		if (i + 1 >= n) {
			*why = "'%' at the end of a macro-string";
			return 0;
		}
		c = (unsigned char)s[i + 1];
		*ends_macro = 1;
		if (c == '%' || c == '_' || c == '-') {
			i += 2;
			continue;
		}
		if (c != '{') {
			*why = "'%' not followed by '{', '%', '_' or '-'";
			return 0;
		}
		i += 2;
		c = i < n ? tolower((unsigned char)s[i]) : 0;
		if (c == 0 || strchr("slodiphcrtv", c) == NULL) {
			*why = "unknown macro letter";
			return 0;
		}
		if (domain && strchr("crt", c) != NULL) {
			*why = "macro letter c, r or t outside explanation text";
			return 0;
		}
		i++;
		if (i < n && isdigit((unsigned char)s[i])) {
			int	 nonzero = 0;

			while (i < n && isdigit((unsigned char)s[i]))
				nonzero |= s[i++] != '0';
			if (!nonzero) {
				*why = "macro transformer with a zero count";
				return 0;
			}
		}
		if (i < n && (s[i] == 'r' || s[i] == 'R'))
			i++;
		while (i < n && s[i] != '\0' && strchr(".-+,/_=", s[i]) != NULL)
			i++;
		if (i >= n || s[i] != '}') {
			*why = "unterminated or malformed macro";
			return 0;
		}
		i++;
	}
	return 1;
}

/* toplabel = ( *alphanum ALPHA *alphanum ) /
 *            ( 1*alphanum "-" *( alphanum / "-" ) alphanum ) */
static int
toplabel_valid(const char *s, size_t n)
{
	size_t	 i;
	int	 alpha = 0, dash = 0;

	if (n == 0 || n > LABEL_MAX || !isalnum((unsigned char)s[0]) ||
	    !isalnum((unsigned char)s[n - 1]))
		return 0;
	for (i = 0; i < n; i++) {
		if (isalpha((unsigned char)s[i]))
			alpha = 1;
		else if (s[i] == '-')
			dash = 1;
		else if (!isdigit((unsigned char)s[i]))
			return 0;
	}
	return alpha || dash;
}

/*
 * domain-spec = macro-string domain-end; domain-end = ( "." toplabel
 * [ "." ] ) / macro-expand.  Literal text must also make DNS labels:
 * no leading dot, no empty label, none longer than 63 bytes.
 */
static int
domain_spec_valid(const char *s, size_t n, const char **why)
{
	size_t		 i = 0, label = 0, lit_from = 0, end, dot;
	int		 ends_macro, macro_in_label = 0;
	const char	*close;

	if (n == 0) {
		*why = "empty domain-spec";
		return 0;
	}
	if (!macro_valid(s, n, 1, &ends_macro, why))
		return 0;
	while (i < n) {
		if (s[i] == '%') {
			/* part of the label, of unknown length */
			macro_in_label = 1;
			if (s[i + 1] == '{') {
				close = memchr(s + i, '}', n - i);
				i = (size_t)(close - s) + 1;
			} else
				i += 2;
			lit_from = i;
			continue;
		}
		if (s[i] == '.') {
			if (label == 0 && !macro_in_label) {
				*why = "empty label in domain-spec";
				return 0;
			}
			label = 0;
			macro_in_label = 0;
		} else if (++label > LABEL_MAX) {
			*why = "label longer than 63 bytes in domain-spec";
			return 0;
		}
		i++;
	}
	if (ends_macro)
		return 1;
	/* "." toplabel [ "." ], all literal */
	end = n;
	if (s[end - 1] == '.')
		end--;
	for (dot = end; dot > lit_from && s[dot - 1] != '.'; dot--)
		;
	if (dot == lit_from || !toplabel_valid(s + dot, end - dot)) {
		*why = "domain-spec does not end in a top-level label or macro";
		return 0;
	}
	if (memchr(s, '%', n) == NULL && end > SPF_DOMAIN_MAX) {
		*why = "domain-spec longer than 253 bytes";
		return 0;
	}
	return 1;
}

/* "/" ( "0" / %x31-39 0*N DIGIT ) with value <= max, at the end of
 * s[0..*n): strips it and sets *plen; 0 if there is none; -1 if bad. */
static int
strip_cidr(const char *s, size_t *n, unsigned max, unsigned *plen,
    int dual)
{
	size_t		 j = *n, d;
	unsigned	 v = 0;

	while (j > 0 && isdigit((unsigned char)s[j - 1]))
		j--;
	if (j == *n || j == 0 || s[j - 1] != '/')
		return 0;
	if (dual && (j < 2 || s[j - 2] != '/'))
		return 0;
	d = *n - j;
	if (d > 3 || (d > 1 && s[j] == '0'))
		return -1;
	for (; j < *n; j++)
		v = v * 10 + (unsigned)(s[j] - '0');
	if (v > max)
		return -1;
	*plen = v;
	*n -= d + (dual ? 2 : 1);
	return 1;
}

/* ip4-network: four qnum, no leading zeros. */
static int
ip4_parse(const char *s, size_t n, struct ipaddr *out)
{
	size_t		 i = 0;
	unsigned	 part, parts = 0;

	memset(out, 0, sizeof(*out));
	out->v4 = 1;
	out->b[10] = out->b[11] = 0xff;
	while (parts < 4) {
		size_t	 d = i;

		part = 0;
		while (i < n && isdigit((unsigned char)s[i]) && i - d < 3)
			part = part * 10 + (unsigned)(s[i++] - '0');
		if (i == d || part > 255 || (i - d > 1 && s[d] == '0'))
			return 0;
		out->b[12 + parts++] = (uint8_t)part;
		if (parts < 4) {
			if (i >= n || s[i] != '.')
				return 0;
			i++;
		}
	}
	return i == n;
}

static int
ip6_parse(const char *s, size_t n, struct ipaddr *out)
{
	char	 buf[INET6_ADDRSTRLEN + 1];
	size_t	 i;

	if (n == 0 || n >= sizeof(buf))
		return 0;
	for (i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]) && s[i] != ':' &&
		    s[i] != '.')
			return 0;
	memcpy(buf, s, n);
	buf[n] = '\0';
	memset(out, 0, sizeof(*out));
	return inet_pton(AF_INET6, buf, out->b) == 1;
}

static enum rc
modifier(struct arena *ar, const char *s, size_t nlen, size_t n,
    struct spf_record *r, const char **why)
{
	const char	*v = s + nlen + 1;
	size_t		 vn = n - nlen - 1;
	const char	**slot = NULL;
	int		 ends_macro;

	if (nlen == 8 && strncasecmp(s, "redirect", 8) == 0)
		slot = &r->redirect;
	else if (nlen == 3 && strncasecmp(s, "exp", 3) == 0)
		slot = &r->exp;
	if (slot == NULL)	/* unknown modifier: ignored if well formed */
		return macro_valid(v, vn, 0, &ends_macro, why) ? RC_OK :
		    RC_PERM;
	if (*slot != NULL) {
		*why = slot == &r->redirect ? "more than one redirect "
		    "modifier" : "more than one exp modifier";
		return RC_PERM;
	}
	if (!domain_spec_valid(v, vn, why))
		return RC_PERM;
	*slot = arena_strndup(ar, v, vn);
	return *slot != NULL ? RC_OK : RC_NOMEM;
}

/* The part after a mechanism's name: [ ":" domain-spec ] [ cidr ]. */
static enum rc
mech_args(struct arena *ar, struct spf_term *t, const char *s, size_t n,
    const char **why)
{
	int	 c4 = 0, c6 = 0;

	t->plen4 = 32;
	t->plen6 = 128;
	switch (t->mech) {
	case SPF_M_ALL:
		if (n == 0)
			return RC_OK;
		*why = "'all' takes no argument";
		return RC_PERM;
	case SPF_M_IP4:
		c4 = strip_cidr(s, &n, 32, &t->plen4, 0);
		if (c4 >= 0 && n > 1 && s[0] == ':' && ip4_parse(s + 1, n - 1,
		    &t->net))
			return RC_OK;
		*why = "malformed ip4 mechanism";
		return RC_PERM;
	case SPF_M_IP6:
		c6 = strip_cidr(s, &n, 128, &t->plen6, 0);
		if (c6 >= 0 && n > 1 && s[0] == ':' && ip6_parse(s + 1, n - 1,
		    &t->net))
			return RC_OK;
		*why = "malformed ip6 mechanism";
		return RC_PERM;
	case SPF_M_A:
	case SPF_M_MX:
		c6 = strip_cidr(s, &n, 128, &t->plen6, 1);
		if (c6 >= 0)
			c4 = strip_cidr(s, &n, 32, &t->plen4, 0);
		if (c4 < 0 || c6 < 0) {
			*why = "invalid CIDR length";
			return RC_PERM;
		}
		break;
	case SPF_M_PTR:
	case SPF_M_INCLUDE:
	case SPF_M_EXISTS:
		break;
	}
	if (n == 0) {
		if (t->mech != SPF_M_INCLUDE && t->mech != SPF_M_EXISTS)
			return RC_OK;
		*why = "mechanism needs a domain-spec";
		return RC_PERM;
	}
	if (s[0] != ':') {
		*why = "invalid character after a mechanism";
		return RC_PERM;
	}
	if (!domain_spec_valid(s + 1, n - 1, why))
		return RC_PERM;
	t->domain = arena_strndup(ar, s + 1, n - 1);
	return t->domain != NULL ? RC_OK : RC_NOMEM;
}

static enum rc
term(struct arena *ar, const char *s, size_t n, struct spf_record *r,
    const char **why)
{
	struct spf_term	*t = &r->terms[r->nterms];
	size_t		 i = 0, j, k;

	/* modifier: name "=" ..., name = ALPHA *( ALPHA / DIGIT / - _ . ) */
	if (isalpha((unsigned char)s[0])) {
		for (i = 1; i < n && (isalnum((unsigned char)s[i]) ||
		    s[i] == '-' || s[i] == '_' || s[i] == '.'); i++)
			;
		if (i < n && s[i] == '=')
			return modifier(ar, s, i, n, r, why);
	}
	i = 0;
	t->result = SPF_PASS;
	switch (s[0]) {
	case '+':
		i++;
		break;
	case '-':
		t->result = SPF_FAIL;
		i++;
		break;
	case '~':
		t->result = SPF_SOFTFAIL;
		i++;
		break;
	case '?':
		t->result = SPF_NEUTRAL;
		i++;
		break;
	}
	for (j = i; j < n && isalnum((unsigned char)s[j]); j++)
		;
	for (k = 0; k < sizeof(mechs) / sizeof(mechs[0]); k++) {
		if (strlen(mechs[k].name) != j - i ||
		    strncasecmp(s + i, mechs[k].name, j - i) != 0)
			continue;
		t->mech = mechs[k].mech;
		if (t->mech == SPF_M_ALL)
			r->has_all = 1;
		r->nterms++;
		return mech_args(ar, t, s + j, n - j, why);
	}
	*why = "unknown mechanism or malformed term";
	return RC_PERM;
}

enum rc
spf_record_parse(struct arena *ar, const char *rec, size_t len,
    struct spf_record *r, const char **why)
{
	size_t	 i, start, max = 1;
	enum rc	 rc;

	memset(r, 0, sizeof(*r));
	*why = NULL;
	if (!is_spf1(rec, len)) {
		*why = "not a v=spf1 record";
		return RC_PERM;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)rec[i];

		if (c < 0x20 || c > 0x7e) {
			*why = "control, NUL or non-ASCII byte in the record";
			return RC_PERM;
		}
		max += c == ' ';
	}
	r->terms = arena_calloc(ar, max, sizeof(*r->terms));
	if (r->terms == NULL)
		return RC_NOMEM;
	for (i = 6; i < len; ) {
		while (i < len && rec[i] == ' ')
			i++;
		if (i == len)
			break;
		start = i;
		while (i < len && rec[i] != ' ')
			i++;
		rc = term(ar, rec + start, i - start, r, why);
		if (rc != RC_OK)
			return rc;
	}
	return RC_OK;
}
