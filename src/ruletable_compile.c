/*
 * ruletable_compile.c - a rule's pattern compiled with PCRE2 for the
 * parser (ruletable.c; the structures are in ruletable_int.h): regexp:
 * patterns converted from POSIX ERE or BRE with the GNU operators kept,
 * pcre: patterns as written, JIT when possible, and the guarded copy of
 * each pattern whose callout checks a lookup's CPU budget (wrap(); the
 * callout is in ruletable_match.c).  Errors go through the parser as
 * "NAME:LINE: why".
 *
 * Owns nothing past a call: the compiled code goes to the caller's rule.
 * Thread-safe: uses only the parser state it is given.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ruletable_int.h"

/* Index just past the POSIX bracket expression that starts at re[i]. */
static size_t
bracket_end(const char *re, size_t len, size_t i)
{
	const char	*q;

	i++;
	if (i < len && re[i] == '^')
		i++;
	if (i < len && re[i] == ']')
		i++;
	while (i < len && re[i] != ']') {
		if (re[i] == '[' && i + 1 < len && (re[i + 1] == ':' ||
		    re[i + 1] == '.' || re[i + 1] == '=')) {
			q = memchr(re + i + 2, ']', len - i - 2);
			while (q != NULL && q[-1] != re[i + 1])
				q = memchr(q + 1, ']',
				    len - (size_t)(q + 1 - re));
			if (q != NULL) {
				i = (size_t)(q - re) + 1;
				continue;
			}
		}
		i++;
	}
	return i < len ? i + 1 : len;
}

/* PCRE2 text for the GNU regex operator \c, or NULL if c is none. */
static const char *
gnu_op(char c, int basic)
{
	switch (c) {
	case 'w': return "\\w";
	case 'W': return "\\W";
	case 's': return "\\s";
	case 'S': return "\\S";
	case 'b': return "\\b";
	case 'B': return "\\B";
	case '<': return "\\b(?=\\w)";
	case '>': return "\\b(?<=\\w)";
	case '`': return "\\A";
	case '\'': return "\\z";
	case '+': return basic ? "+" : NULL;
	case '?': return basic ? "?" : NULL;
	case '|': return basic ? "|" : NULL;
	default:
		break;
	}
	if (c >= '1' && c <= '9' && !basic)
		return "";		/* \g{N}, written by the caller */
	return NULL;
}

/*
 * The POSIX pattern pt as PCRE2 source, into out.  GNU operators
 * outside brackets become a control byte absent from the pattern
 * (which pcre2_pattern_convert() copies as is) and the operator byte,
 * replaced by their PCRE2 form in the converted text.
 */
static int
posix_convert(struct parser *ps, const struct pat *pt, struct buf *out)
{
	PCRE2_UCHAR	*conv = NULL, msg[128];
	PCRE2_SIZE	 clen;
	struct buf	 pre;
	const char	*c, *op;
	size_t		 i, j;
	char		 mark = '\0', cand;
	int		 rc, ret = -1;

	for (cand = 1; cand < 0x20 && mark == '\0'; cand++)
		if ((cand < '\t' || cand > '\r') &&
		    memchr(pt->re, cand, pt->len) == NULL)
			mark = cand;
	buf_init(&pre, 2 * (size_t)RT_LINE_MAX);
	for (i = 0; i < pt->len; i = j) {
		j = i + 1;
		if (pt->re[i] == '[') {
			j = bracket_end(pt->re, pt->len, i);
			rc = buf_append(&pre, pt->re + i, j - i);
		} else if (pt->re[i] == '\\' && j < pt->len && mark != '\0' &&
		    gnu_op(pt->re[j], pt->basic) != NULL) {
			rc = buf_putc(&pre, mark);
			if (rc == RC_OK)
				rc = buf_putc(&pre, pt->re[j]);
			j++;
		} else if (pt->re[i] == '\\' && j < pt->len) {
			rc = buf_append(&pre, pt->re + i, 2);
			j++;
		} else
			rc = buf_putc(&pre, pt->re[i]);
		if (rc != RC_OK) {
			(void)rt_fail(ps, ps->line, "out of memory");
			goto out;
		}
	}
	rc = pcre2_pattern_convert((PCRE2_SPTR)buf_str(&pre), pre.len,
	    pt->basic ? PCRE2_CONVERT_POSIX_BASIC :
	    PCRE2_CONVERT_POSIX_EXTENDED, &conv, &clen, NULL);
	if (rc != 0) {
		if (pcre2_get_error_message(rc, msg, sizeof(msg)) < 0)
			(void)snprintf((char *)msg, sizeof(msg), "error %d",
			    rc);
		(void)rt_fail(ps, ps->line, "bad pattern: %s", (char *)msg);
		goto out;
	}
	c = (const char *)conv;
	if (clen >= 6 && memcmp(c, "(*NUL)", 6) == 0) {
		c += 6;		/* newlines are LF, as with regcomp() */
		clen -= 6;
	}
	buf_reset(out);
	for (i = 0, rc = RC_OK; i < clen && rc == RC_OK; i++) {
		if (mark == '\0' || c[i] != mark || i + 1 == clen) {
			rc = buf_putc(out, c[i]);
			continue;
		}
		i++;
		if (c[i] == '\\' && i + 1 < clen)
			i++;		/* BRE '+' '?' '|' come escaped */
		if ((op = gnu_op(c[i], pt->basic)) == NULL)
			rc = buf_putc(out, c[i]);
		else if (*op == '\0')
			rc = buf_printf(out, "\\g{%c}", c[i]);
		else
			rc = buf_puts(out, op);
	}
	if (rc != RC_OK) {
		(void)rt_fail(ps, ps->line, "pattern too long");
		goto out;
	}
	ret = 0;
out:
	pcre2_converted_pattern_free(conv);
	buf_free(&pre);
	return ret;
}

/*
 * Length of the (*OPTION) items that open a pcre pattern: they must stay
 * first.  Verbs without an argument, which match, are not options.
 */
static size_t
lead_opts(const char *re, size_t len)
{
	static const char *const verbs[] = { "ACCEPT", "FAIL", "F", "COMMIT",
	    "PRUNE", "SKIP", "THEN" };
	size_t	 i = 0, j, k;

	while (i + 2 < len && re[i] == '(' && re[i + 1] == '*') {
		for (j = i + 2; j < len && ((re[j] >= 'A' && re[j] <= 'Z') ||
		    rt_is_digit(re[j]) || re[j] == '_' || re[j] == '='); j++)
			;
		if (j == len || re[j] != ')' || j == i + 2)
			break;
		for (k = 0; k < sizeof(verbs) / sizeof(verbs[0]); k++)
			if (strlen(verbs[k]) == j - i - 2 &&
			    memcmp(re + i + 2, verbs[k], j - i - 2) == 0)
				return i;
		i = j + 1;
	}
	return i;
}

/*
 * re as "(?:(?C255)re\E)" after its leading options: PCRE2 counts its
 * match limit per start position, so a long subject can cost the limit
 * times its length; the callout at each start checks the lookup's CPU
 * time.  The callout costs about as much as the rest of a failing match,
 * so subjects up to RT_SHORT bytes (body lines are mostly under 80) use
 * the plain code, whose worst case is bounded by the match limit times
 * RT_SHORT starts, and the scratch's deadline bounds the message.  The group keeps alternatives and option scopes, \E ends an
 * open \Q.  re itself if the wrapped pattern does not compile to the
 * same groups (a '#' comment to the end in x mode).
 */
static pcre2_code *
wrap(struct parser *ps, pcre2_code *re, const char *src, size_t len,
    uint32_t opts)
{
	pcre2_code	*w;
	struct buf	 b;
	uint32_t	 n0, n1;
	size_t		 lo = lead_opts(src, len);
	PCRE2_SIZE	 off;
	int		 ec;

	buf_init(&b, len + 32);
	if (buf_append(&b, src, lo) != RC_OK ||
	    buf_puts(&b, "(?:(?C255)") != RC_OK ||
	    buf_append(&b, src + lo, len - lo) != RC_OK ||
	    buf_puts(&b, "\\E)") != RC_OK) {
		buf_free(&b);
		return NULL;
	}
	w = pcre2_compile((PCRE2_SPTR)buf_str(&b), b.len, opts, &ec, &off,
	    ps->cctx);
	buf_free(&b);
	if (w == NULL)
		return NULL;
	if (pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &n0) != 0 ||
	    pcre2_pattern_info(w, PCRE2_INFO_CAPTURECOUNT, &n1) != 0 ||
	    n0 != n1) {
		pcre2_code_free(w);
		return NULL;
	}
	return w;
}

/* The source for the prefilter: a NUL-terminated copy, or none (NULL)
 * when there is no prefilter (off, or built without Hyperscan), the
 * pattern holds a NUL byte or memory ran out (then PCRE2 always decides
 * it). */
static void
keep_source(const struct parser *ps, const char *src, size_t len,
    uint32_t opts, struct pf_pat *pf)
{
	pf->src = NULL;
	pf->opts = opts;
#ifndef HAVE_HYPERSCAN
	(void)ps;
	(void)src;
	(void)len;
	return;
#else
	if (ps->t->lim.no_prefilter || memchr(src, '\0', len) != NULL)
		return;
	if ((pf->src = malloc(len + 1)) != NULL) {
		memcpy(pf->src, src, len);
		pf->src[len] = '\0';
	}
#endif
}

/* Compiles pt (JIT when possible); NULL with the error set.  *guarded:
 * the version with the CPU budget callout, or NULL.  *pf: the source
 * for the prefilter (see keep_source()). */
pcre2_code *
rt_compile(struct parser *ps, const struct pat *pt, pcre2_code **guarded,
    struct pf_pat *pf)
{
	pcre2_code	*re;
	PCRE2_UCHAR	 msg[128];
	PCRE2_SIZE	 off;
	struct buf	 conv;
	const char	*src = pt->re;
	size_t		 len = pt->len;
	int		 ec;

	buf_init(&conv, 16 * (size_t)RT_LINE_MAX);
	if (ps->t->syntax == RULE_REGEXP) {
		if (posix_convert(ps, pt, &conv) != 0) {
			buf_free(&conv);
			return NULL;
		}
		src = buf_str(&conv);
		len = conv.len;
	}
	re = pcre2_compile((PCRE2_SPTR)src, len, pt->opts | PCRE2_NEVER_UTF,
	    &ec, &off, ps->cctx);
	*guarded = re != NULL ? wrap(ps, re, src, len, pt->opts |
	    PCRE2_NEVER_UTF) : NULL;
	if (re != NULL)
		keep_source(ps, src, len, pt->opts, pf);
	buf_free(&conv);
	if (re == NULL) {
		if (pcre2_get_error_message(ec, msg, sizeof(msg)) < 0)
			(void)snprintf((char *)msg, sizeof(msg), "error %d",
			    ec);
		if (ps->t->syntax == RULE_PCRE)
			(void)rt_fail(ps, ps->line, "bad pattern: %s (at offset "
			    "%zu)", (char *)msg, (size_t)off);
		else
			(void)rt_fail(ps, ps->line, "bad pattern: %s",
			    (char *)msg);
		return NULL;
	}
	/* without JIT (none built in, no executable memory) interpret */
	if (pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) == 0)
		ps->t->jit = 1;
	if (*guarded != NULL &&
	    pcre2_jit_compile(*guarded, PCRE2_JIT_COMPLETE) == 0)
		ps->t->jit = 1;
	return re;
}
