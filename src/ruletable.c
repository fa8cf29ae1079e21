/*
 * ruletable.c - Postfix regexp: and pcre: tables for header_checks and
 * body_checks (see ruletable.h), compiled with PCRE2.
 *
 * Table format, as Postfix's readlline(3), dict_regexp.c and dict_pcre.c
 * read it: a logical line starts with non-whitespace text; a line that
 * starts with whitespace continues it (joined as is); blank lines and
 * lines whose first non-blank byte is '#' are skipped and do not end a
 * logical line; trailing whitespace and a final CR are dropped.  Rules:
 * "[!]/pattern/flags action", "if [!]/pattern/flags", "endif"; any
 * non-alphanumeric, non-blank byte but '\' may delimit a pattern, and a
 * backslash escapes it (the backslash stays in the pattern, as in
 * Postfix).  A line that starts with '#' is a comment, so '#' delimits
 * only after '!' or "if".  regexp: also takes Postfix's
 * "/pattern1/!/pattern2/ action" (pattern1 matches, pattern2 does not).
 *
 * regexp: patterns are POSIX ERE (BRE with the x flag), converted by
 * pcre2_pattern_convert(); the GNU operators glibc's regcomp() accepts
 * (\w \W \s \S \b \B \< \> \` \' and back-references; \+ \? \| in BRE)
 * are kept, so tables written for Postfix on Linux match the same.
 * Default flags as Postfix: regexp: case-insensitive, '.' and [^x] match
 * a newline, '^' and '$' only at the ends; m toggles REG_NEWLINE
 * (PCRE2 multiline, '.' no longer matches a newline, [^x] still does).
 * pcre: PCRE2_CASELESS and PCRE2_DOTALL by default (Postfix >= 3.0);
 * i m s x A E U toggle as pcre_table(5) says; X is accepted and ignored.
 * PCRE2 finds the first match, not POSIX's longest: only $n of
 * alternations can differ.  UTF mode is refused: subjects are bytes.
 *
 * Where Postfix warns and skips a rule (bad pattern or flag, bad $n,
 * stray endif, text Postfix cannot parse), the load fails with
 * "NAME:LINE: why".  Warnings (ruletable_warnings): unsupported actions
 * (FILTER, REDIRECT, BCC, STRIP, PASS, unknown words: RA_UNSUPPORTED,
 * whose text is the whole result), text after "if /re/" or "endif", a
 * logical line that starts with whitespace (ignored).
 *
 * Owns the tables and scratches it returns.  Thread-safe: a table is
 * read-only after the load; each thread matches with its own scratch
 * (match data, match context, JIT stack).
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define PCRE2_CODE_UNIT_WIDTH	8
#include <pcre2.h>

#include "ruletable.h"

#define RT_FILE_MAX	(16UL * 1024 * 1024)	/* bytes */
#define RT_LINE_MAX	(64 * 1024)		/* bytes of a logical line */
#define RT_RULES_MAX	100000			/* rules, if and endif lines */
#define RT_NEST_MAX	256			/* if depth */
#define RT_SUB_MAX	99			/* largest $n */
#define RT_WARN_MAX	(64 * 1024)		/* bytes of warnings */
#define RT_SCORE_MAX	10000000L		/* hundredths: 100000.00 */
#define RT_JIT_START	(32 * 1024)		/* bytes */
#define RT_CPU_NS	(250ULL * 1000000)	/* CPU budget of a lookup */
#define RT_CPU_EVERY	16			/* callouts per clock read */
#define RT_SHORT	256	/* subjects up to this long match the
				 * unguarded code (see wrap()) */
#define SHOW_MAX	64

enum rule_op {
	OP_MATCH,
	OP_IF,
	OP_ENDIF
};

struct rule {
	enum rule_op	 op;
	unsigned	 line;
	int		 negate;	/* match when re does not */
	int		 negate2;
	pcre2_code	*re;		/* NULL for endif */
	pcre2_code	*re2;		/* regexp: /re/!/re2/ */
	pcre2_code	*gre, *gre2;	/* the same with the CPU budget
					 * callout (wrap()), or NULL */
	size_t		 endif;		/* OP_IF: index of its endif */
	enum rule_action action;
	int32_t		 score;
	char		 code[4];
	char		 dsn[8];
	char		*text;		/* with $n, $$ unexpanded */
	unsigned	 max_sub;	/* largest $n in text */
};

struct ruletable {
	char			*name;
	enum rule_syntax	 syntax;
	struct rule		*v;
	size_t			 n, cap;
	size_t			 nmatch;	/* pattern/action rules */
	unsigned		 max_sub;	/* over all rules */
	int			 jit;		/* some pattern is JIT code */
	struct rule_limits	 lim;
	pcre2_match_context	*mctx;		/* the limits; copied */
	struct buf		 warn;
	int			 warn_cut;
};

struct rule_scratch {
	const struct ruletable	*t;
	pcre2_match_data	*md;
	pcre2_match_context	*mctx;
	pcre2_jit_stack		*jit;
	uint64_t		 deadline;	/* thread CPU ns; 0: unset */
	unsigned		 calls;		/* callouts this lookup */
	uint64_t		 until_ms;	/* rule_scratch_deadline(); 0 */
};

/* A table being parsed. */
struct parser {
	struct ruletable	*t;
	const char		*p, *end;	/* text not read yet */
	unsigned		 lineno;	/* physical lines read */
	unsigned		 line;		/* first line of lb */
	struct buf		 lb;		/* the logical line */
	pcre2_compile_context	*cctx;
	size_t			 stack[RT_NEST_MAX];	/* open ifs */
	size_t			 depth;
	struct err		*e;
};

/* A pattern as written, with its flags as PCRE2 options. */
struct pat {
	const char	*re;
	size_t		 len;
	int		 negate;
	uint32_t	 opts;
	int		 basic;		/* regexp: POSIX BRE */
};

static const struct {
	const char		*name;
	enum rule_action	 action;
	int			 need_text;
} actions[] = {
	{ "REJECT", RA_REJECT, 0 },
	{ "DEFER", RA_DEFER, 0 },
	{ "DISCARD", RA_DISCARD, 0 },
	{ "HOLD", RA_HOLD, 0 },
	{ "WARN", RA_WARN, 0 },
	{ "INFO", RA_INFO, 0 },
	{ "IGNORE", RA_IGNORE, 0 },
	{ "DUNNO", RA_DUNNO, 0 },
	{ "OK", RA_OK, 0 },
	{ "SCORE", RA_SCORE, 0 },
	{ "PREPEND", RA_PREPEND, 1 },
	{ "REPLACE", RA_REPLACE, 1 },
};

void
rule_limits_default(struct rule_limits *l)
{
	l->match_limit = 100000;
	l->depth_limit = 10000;
	l->heap_limit = 8192;
	l->jit_stack = 512 * 1024;
}

const char *
rule_action_name(enum rule_action a)
{
	switch (a) {
	case RA_NONE:		return "none";
	case RA_REJECT:		return "reject";
	case RA_DEFER:		return "defer";
	case RA_CODE:		return "code";
	case RA_DISCARD:	return "discard";
	case RA_HOLD:		return "hold";
	case RA_WARN:		return "warn";
	case RA_INFO:		return "info";
	case RA_IGNORE:		return "ignore";
	case RA_DUNNO:		return "dunno";
	case RA_OK:		return "ok";
	case RA_SCORE:		return "score";
	case RA_PREPEND:	return "prepend";
	case RA_REPLACE:	return "replace";
	case RA_UNSUPPORTED:	return "unsupported";
	}
	return "unknown";
}

/* ASCII classes: the same in every locale. */
static int
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
	    c == '\r';
}

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int
is_alnum(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* At most SHOW_MAX bytes of s, non-printable bytes as '?', in out. */
static const char *
show(char *out, size_t size, const char *s, size_t len)
{
	size_t	 i, n = len < SHOW_MAX ? len : SHOW_MAX;

	if (n > size - 4)
		n = size - 4;
	for (i = 0; i < n; i++)
		out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	(void)snprintf(out + n, size - n, "%s", n < len ? "..." : "");
	return out;
}

static int
pfail(struct parser *ps, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
pfail(struct parser *ps, unsigned line, const char *fmt, ...)
{
	char	 why[ERR_MAX];
	va_list	 ap;

	va_start(ap, fmt);
	(void)vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	err_set(ps->e, "%s:%u: %s", ps->t->name, line, why);
	return -1;
}

static void
pwarn(struct parser *ps, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
pwarn(struct parser *ps, unsigned line, const char *fmt, ...)
{
	struct ruletable	*t = ps->t;
	char			 why[ERR_MAX];
	va_list			 ap;

	if (t->warn_cut)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (buf_printf(&t->warn, "%s:%u: %s\n", t->name, line, why) !=
	    RC_OK) {
		buf_mark_cut(&t->warn, "...more warnings\n");
		t->warn_cut = 1;
	}
}

/*
 * The next logical line into ps->lb, NUL-terminated, trailing blanks
 * dropped; ps->line its first physical line.  1 with a line, 0 at the
 * end of the text, -1 with the error set.
 */
static int
next_line(struct parser *ps)
{
	const char	*s, *nl, *end, *q;
	enum rc		 rc;

	for (;;) {
		buf_reset(&ps->lb);
		while (ps->p < ps->end) {
			s = ps->p;
			nl = memchr(s, '\n', (size_t)(ps->end - s));
			end = nl != NULL ? nl : ps->end;
			if (end > s && end[-1] == '\r')
				end--;
			for (q = s; q < end && is_space(*q); q++)
				;
			if (q < end && *q != '#' && !is_space(*s) &&
			    ps->lb.len > 0)
				break;		/* the next logical line */
			ps->p = nl != NULL ? nl + 1 : ps->end;
			ps->lineno++;
			if (q == end || *q == '#')
				continue;	/* blank or comment */
			if (ps->lb.len == 0)
				ps->line = ps->lineno;
			if (memchr(s, '\0', (size_t)(end - s)) != NULL)
				return pfail(ps, ps->lineno, "NUL byte");
			rc = buf_append(&ps->lb, s, (size_t)(end - s));
			if (rc == RC_NOMEM)
				return pfail(ps, ps->line, "out of memory");
			if (rc != RC_OK)
				return pfail(ps, ps->line, "logical line "
				    "longer than %d bytes", RT_LINE_MAX);
		}
		if (ps->lb.len == 0)
			return 0;
		while (is_space(ps->lb.data[ps->lb.len - 1]))
			ps->lb.len--;
		ps->lb.data[ps->lb.len] = '\0';
		if (!is_space(ps->lb.data[0]))
			return 1;
		pwarn(ps, ps->line, "ignoring a logical line that starts "
		    "with whitespace");
	}
}

/* "[!...]/re/flags" at *pp into pt; *pp moves past the flags. */
static int
get_pat(struct parser *ps, char **pp, struct pat *pt)
{
	char		*p = *pp, *start, delim, sh[8];
	int		 regexp = ps->t->syntax == RULE_REGEXP;
	int		 icase = 1, ext = 1, nl = 0;

	pt->negate = 0;
	for (;; p++) {
		if (*p == '!')
			pt->negate = !pt->negate;
		else if (!is_space(*p))
			break;
	}
	if (*p == '\0')
		return pfail(ps, ps->line, "no pattern");
	delim = *p;
	if (is_alnum(delim) || delim == '\\')
		return pfail(ps, ps->line, "'%s' cannot delimit a pattern",
		    show(sh, sizeof(sh), &delim, 1));
	start = ++p;
	while (*p != '\0' && *p != delim) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		p++;
	}
	if (*p == '\0')
		return pfail(ps, ps->line, "no closing '%s' after the pattern",
		    show(sh, sizeof(sh), &delim, 1));
	pt->re = start;
	pt->len = (size_t)(p - start);
	p++;
	pt->basic = 0;
	pt->opts = regexp ? 0 : PCRE2_CASELESS | PCRE2_DOTALL;
	for (; *p != '\0' && !is_space(*p) && !(regexp && *p == '!'); p++) {
		if (regexp && (*p == 'i' || *p == 'x' || *p == 'm')) {
			icase ^= *p == 'i';
			ext ^= *p == 'x';
			nl ^= *p == 'm';
			continue;
		}
		if (regexp)
			return pfail(ps, ps->line, "unknown regexp flag '%s'",
			    show(sh, sizeof(sh), p, 1));
		switch (*p) {
		case 'i': pt->opts ^= PCRE2_CASELESS; break;
		case 'm': pt->opts ^= PCRE2_MULTILINE; break;
		case 's': pt->opts ^= PCRE2_DOTALL; break;
		case 'x': pt->opts ^= PCRE2_EXTENDED; break;
		case 'A': pt->opts ^= PCRE2_ANCHORED; break;
		case 'E': pt->opts ^= PCRE2_DOLLAR_ENDONLY; break;
		case 'U': pt->opts ^= PCRE2_UNGREEDY; break;
		case 'X': break;	/* PCRE_EXTRA: gone in PCRE2 */
		default:
			return pfail(ps, ps->line, "unknown pcre flag '%s'",
			    show(sh, sizeof(sh), p, 1));
		}
	}
	if (regexp) {
		pt->opts = (icase ? PCRE2_CASELESS : 0) | (nl ?
		    PCRE2_MULTILINE : PCRE2_DOTALL | PCRE2_DOLLAR_ENDONLY);
		pt->basic = !ext;
	}
	*pp = p;
	return 0;
}

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
			(void)pfail(ps, ps->line, "out of memory");
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
		(void)pfail(ps, ps->line, "bad pattern: %s", (char *)msg);
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
		(void)pfail(ps, ps->line, "pattern too long");
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
		    is_digit(re[j]) || re[j] == '_' || re[j] == '='); j++)
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

/* Compiles pt (JIT when possible); NULL with the error set.  *guarded:
 * the version with the CPU budget callout, or NULL. */
static pcre2_code *
compile(struct parser *ps, const struct pat *pt, pcre2_code **guarded)
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
	buf_free(&conv);
	if (re == NULL) {
		if (pcre2_get_error_message(ec, msg, sizeof(msg)) < 0)
			(void)snprintf((char *)msg, sizeof(msg), "error %d",
			    ec);
		if (ps->t->syntax == RULE_PCRE)
			(void)pfail(ps, ps->line, "bad pattern: %s (at offset "
			    "%zu)", (char *)msg, (size_t)off);
		else
			(void)pfail(ps, ps->line, "bad pattern: %s",
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

/*
 * One piece of a result: literal text (*group 0) or a $n reference
 * (Postfix's mac_parse(): $$ is '$'; $name, ${name}, $(name) with name
 * all digits, 1..RT_SUB_MAX).  The position after it, or NULL on bad
 * syntax (at load only: templates are checked).
 */
static const char *
tok_next(const char *s, const char **lit, size_t *litlen, unsigned *group)
{
	const char	*n, *ne;
	char		 open, close;
	int		 level;
	unsigned	 v = 0;

	*group = 0;
	*lit = s;
	if (*s != '$') {
		*litlen = strcspn(s, "$");
		return s + *litlen;
	}
	if (s[1] == '$') {
		*litlen = 1;
		return s + 2;
	}
	if (s[1] == '{' || s[1] == '(') {
		open = s[1];
		close = open == '{' ? '}' : ')';
		n = s + 2;
		for (ne = n, level = 1; *ne != '\0'; ne++) {
			level += *ne == open;
			level -= *ne == close;
			if (level == 0)
				break;
		}
		if (*ne == '\0')
			return NULL;
		s = ne + 1;
	} else {
		n = s + 1;
		for (ne = n; is_alnum(*ne) || *ne == '_'; ne++)
			;
		s = ne;
	}
	if (ne == n)
		return NULL;
	for (; n < ne; n++) {
		if (!is_digit(*n) || v > RT_SUB_MAX)
			return NULL;
		v = v * 10 + (unsigned)(*n - '0');
	}
	if (v < 1 || v > RT_SUB_MAX)
		return NULL;
	*group = v;
	return s;
}

/* "SCORE n": n decimal, up to 2 decimals, in hundredths. */
static int
parse_score(const char *s, size_t len, int32_t *out)
{
	long	 v = 0;
	size_t	 i = 0, digits = 0, frac = 0;
	int	 neg = 0;

	if (i < len && (s[i] == '-' || s[i] == '+'))
		neg = s[i++] == '-';
	for (; i < len && is_digit(s[i]); i++, digits++) {
		v = v * 10 + (s[i] - '0');
		if (v > RT_SCORE_MAX)
			return -1;
	}
	v *= 100;
	if (digits > 0 && i < len && s[i] == '.') {
		for (i++; i < len && is_digit(s[i]) && frac < 2; i++, frac++)
			v += (s[i] - '0') * (frac == 0 ? 10 : 1);
		if (frac == 0)
			return -1;
	}
	if (digits == 0 || i != len || v > RT_SCORE_MAX)
		return -1;
	*out = (int32_t)(neg ? -v : v);
	return 0;
}

/* "D.D[DD].D[DD]" then a blank or the end: its length, else 0. */
static size_t
dsn_len(const char *s, size_t max)
{
	size_t	 i = 1, n;
	int	 part;

	if (s[0] != '2' && s[0] != '4' && s[0] != '5')
		return 0;
	for (part = 0; part < 2; part++) {
		if (s[i++] != '.')
			return 0;
		for (n = 0; is_digit(s[i]) && n < 4; i++, n++)
			;
		if (n == 0 || n > 3)
			return 0;
	}
	return (s[i] == '\0' || is_space(s[i])) && i < max ? i : 0;
}

/* The action at p (trailing blanks already dropped) into ru. */
static int
parse_action(struct parser *ps, char *p, struct rule *ru)
{
	const char	*w, *lit, *q, *nq;
	char		*text, sh[SHOW_MAX + 8];
	size_t		 wl, nl, i, litlen;
	unsigned	 g;

	for (q = p; *q != '\0'; q = nq) {
		if ((nq = tok_next(q, &lit, &litlen, &g)) == NULL)
			return pfail(ps, ps->line, "bad $ reference in '%s' "
			    "(use $1..$%d, ${1}, $$ for '$')", show(sh,
			    sizeof(sh), q, strlen(q)), RT_SUB_MAX);
		if (g > ru->max_sub)
			ru->max_sub = g;
	}
	w = p;
	wl = strcspn(w, " \t\n\v\f\r");
	for (text = p + wl; is_space(*text); text++)
		;
	ru->action = RA_UNSUPPORTED;
	for (i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
		if (strlen(actions[i].name) == wl &&
		    strncasecmp(w, actions[i].name, wl) == 0)
			ru->action = actions[i].action;
	if (wl == 3 && (w[0] == '4' || w[0] == '5') && is_digit(w[1]) &&
	    is_digit(w[2])) {
		ru->action = RA_CODE;
		memcpy(ru->code, w, 3);
		if ((nl = dsn_len(text, sizeof(ru->dsn))) > 0) {
			if (text[0] != w[0])
				return pfail(ps, ps->line, "enhanced status "
				    "code %.*s does not go with %s", (int)nl,
				    text, ru->code);
			memcpy(ru->dsn, text, nl);
			for (text += nl; is_space(*text); text++)
				;
		}
	}
	if (ru->action == RA_SCORE) {
		nl = strcspn(text, " \t\n\v\f\r");
		if (parse_score(text, nl, &ru->score) != 0)
			return pfail(ps, ps->line, "SCORE '%s': not a number "
			    "with at most 2 decimals in [-100000, 100000]",
			    show(sh, sizeof(sh), text, nl));
		for (text += nl; is_space(*text); text++)
			;
	}
	if (ru->action == RA_UNSUPPORTED) {
		pwarn(ps, ps->line, "action %s is not supported; the rule "
		    "acts as DUNNO", show(sh, sizeof(sh), w, wl));
		text = p;
	}
	for (i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
		if (actions[i].action == ru->action && actions[i].need_text &&
		    *text == '\0')
			return pfail(ps, ps->line, "%s needs text",
			    actions[i].name);
	if ((ru->text = strdup(text)) == NULL)
		return pfail(ps, ps->line, "out of memory");
	return 0;
}

/* Room for one more rule, zeroed; NULL with the error set. */
static struct rule *
add_rule(struct parser *ps, enum rule_op op)
{
	struct ruletable	*t = ps->t;
	struct rule		*nv;
	size_t			 ncap;

	if (t->n == RT_RULES_MAX) {
		(void)pfail(ps, ps->line, "more than %d rules", RT_RULES_MAX);
		return NULL;
	}
	if (t->n == t->cap) {
		ncap = t->cap < 16 ? 16 : t->cap * 2;
		if ((nv = realloc(t->v, ncap * sizeof(*nv))) == NULL) {
			(void)pfail(ps, ps->line, "out of memory");
			return NULL;
		}
		t->v = nv;
		t->cap = ncap;
	}
	nv = &t->v[t->n++];
	memset(nv, 0, sizeof(*nv));
	nv->op = op;
	nv->line = ps->line;
	return nv;
}

static int
parse_rule(struct parser *ps, char *p)
{
	struct pat	 pt, pt2;
	struct rule	*ru;
	uint32_t	 ncap;

	if (get_pat(ps, &p, &pt) != 0)
		return -1;
	pt2.re = NULL;
	if (*p == '!' && get_pat(ps, &p, &pt2) != 0)
		return -1;
	while (is_space(*p))
		p++;
	if (*p == '\0')
		return pfail(ps, ps->line, "no action after the pattern");
	if ((ru = add_rule(ps, OP_MATCH)) == NULL)
		return -1;
	ps->t->nmatch++;
	ru->negate = pt.negate;
	if (parse_action(ps, p, ru) != 0)
		return -1;
	if (ru->max_sub > 0 && ru->negate)
		return pfail(ps, ps->line, "$%u in the action of a negated "
		    "pattern", ru->max_sub);
	if ((ru->re = compile(ps, &pt, &ru->gre)) == NULL)
		return -1;
	if (pt2.re != NULL) {
		ru->negate2 = pt2.negate;
		if ((ru->re2 = compile(ps, &pt2, &ru->gre2)) == NULL)
			return -1;
	}
	if (pcre2_pattern_info(ru->re, PCRE2_INFO_CAPTURECOUNT, &ncap) != 0)
		ncap = 0;
	if (ru->max_sub > ncap)
		return pfail(ps, ps->line, "the action uses $%u but the "
		    "pattern has %u group%s", ru->max_sub, (unsigned)ncap,
		    ncap == 1 ? "" : "s");
	if (ru->max_sub > ps->t->max_sub)
		ps->t->max_sub = ru->max_sub;
	return 0;
}

/* One logical line (ps->lb). */
static int
parse_line(struct parser *ps)
{
	struct pat	 pt;
	struct rule	*ru;
	char		*p = ps->lb.data, sh[SHOW_MAX + 8];

	if (!is_alnum(*p))
		return parse_rule(ps, p);
	if (strncasecmp(p, "if", 2) == 0 && !is_alnum(p[2])) {
		for (p += 2; is_space(*p); p++)
			;
		if (get_pat(ps, &p, &pt) != 0)
			return -1;
		while (is_space(*p))
			p++;
		if (*p != '\0')
			pwarn(ps, ps->line, "ignoring text after the if "
			    "pattern: '%s' (do not indent rules inside if)",
			    show(sh, sizeof(sh), p, strlen(p)));
		if (ps->depth == RT_NEST_MAX)
			return pfail(ps, ps->line, "if nested more than %d "
			    "deep", RT_NEST_MAX);
		if ((ru = add_rule(ps, OP_IF)) == NULL)
			return -1;
		ru->negate = pt.negate;
		ps->stack[ps->depth++] = ps->t->n - 1;
		return (ru->re = compile(ps, &pt, &ru->gre)) == NULL ? -1 : 0;
	}
	if (strncasecmp(p, "endif", 5) == 0 && !is_alnum(p[5])) {
		if (ps->depth == 0)
			return pfail(ps, ps->line, "endif without if");
		for (p += 5; is_space(*p); p++)
			;
		if (*p != '\0')
			pwarn(ps, ps->line, "ignoring text after endif: '%s'",
			    show(sh, sizeof(sh), p, strlen(p)));
		if (add_rule(ps, OP_ENDIF) == NULL)
			return -1;
		ps->t->v[ps->stack[--ps->depth]].endif = ps->t->n - 1;
		return 0;
	}
	return pfail(ps, ps->line, "not a rule, if or endif: '%s'",
	    show(sh, sizeof(sh), p, strlen(p)));
}

struct ruletable *
ruletable_parse(const char *name, const char *text, size_t len,
    enum rule_syntax syntax, const struct rule_limits *lim, struct err *e)
{
	struct ruletable	*t;
	struct rule_limits	 def;
	struct parser		 ps;
	int			 r = -1;

	rule_limits_default(&def);
	if ((t = calloc(1, sizeof(*t))) == NULL ||
	    (t->name = strdup(name != NULL ? name : "-")) == NULL) {
		free(t);
		err_set(e, "%s: out of memory", name != NULL ? name : "-");
		return NULL;
	}
	t->syntax = syntax;
	t->lim = lim != NULL ? *lim : def;
	if (t->lim.match_limit == 0)
		t->lim.match_limit = def.match_limit;
	if (t->lim.depth_limit == 0)
		t->lim.depth_limit = def.depth_limit;
	if (t->lim.heap_limit == 0)
		t->lim.heap_limit = def.heap_limit;
	if (t->lim.jit_stack == 0)
		t->lim.jit_stack = def.jit_stack;
	buf_init(&t->warn, RT_WARN_MAX);
	memset(&ps, 0, sizeof(ps));
	ps.t = t;
	ps.p = text != NULL ? text : "";
	ps.end = ps.p + (text != NULL ? len : 0);
	ps.e = e;
	buf_init(&ps.lb, RT_LINE_MAX);
	if (syntax != RULE_REGEXP && syntax != RULE_PCRE) {
		err_set(e, "%s: unknown table syntax %d", t->name,
		    (int)syntax);
		goto out;
	}
	if (text != NULL && len > RT_FILE_MAX) {
		err_set(e, "%s: larger than %lu MB", t->name,
		    RT_FILE_MAX >> 20);
		goto out;
	}
	if ((ps.cctx = pcre2_compile_context_create(NULL)) == NULL ||
	    (t->mctx = pcre2_match_context_create(NULL)) == NULL) {
		err_set(e, "%s: out of memory", t->name);
		goto out;
	}
	(void)pcre2_set_newline(ps.cctx, PCRE2_NEWLINE_LF);
	(void)pcre2_set_match_limit(t->mctx, t->lim.match_limit);
	(void)pcre2_set_depth_limit(t->mctx, t->lim.depth_limit);
	(void)pcre2_set_heap_limit(t->mctx, t->lim.heap_limit);
	while ((r = next_line(&ps)) == 1)
		if ((r = parse_line(&ps)) != 0)
			break;
	if (r == 0 && ps.depth > 0)
		r = pfail(&ps, t->v[ps.stack[ps.depth - 1]].line,
		    "if without endif");
out:
	pcre2_compile_context_free(ps.cctx);
	buf_free(&ps.lb);
	if (r != 0) {
		ruletable_free(t);
		return NULL;
	}
	return t;
}

/* Reads a whole table file into b (at most RT_FILE_MAX bytes). */
static int
read_file(const char *path, struct buf *b, struct err *e)
{
	struct stat	 st;
	char		 chunk[16384];
	ssize_t		 r;
	enum rc		 rc;
	int		 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		err_set(e, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0) {
		err_set(e, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		err_set(e, "%s: not a regular file", path);
		goto fail;
	}
	for (;;) {
		r = read(fd, chunk, sizeof(chunk));
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			err_set(e, "%s: %s", path, strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		rc = buf_append(b, chunk, (size_t)r);
		if (rc == RC_NOMEM) {
			err_set(e, "%s: out of memory", path);
			goto fail;
		}
		if (rc != RC_OK) {
			err_set(e, "%s: larger than %lu MB", path,
			    RT_FILE_MAX >> 20);
			goto fail;
		}
	}
	(void)close(fd);
	return 0;
fail:
	(void)close(fd);
	return -1;
}

struct ruletable *
ruletable_load(const char *path, enum rule_syntax syntax,
    const struct rule_limits *lim, struct err *e)
{
	struct ruletable	*t = NULL;
	struct buf		 b;

	buf_init(&b, RT_FILE_MAX);
	if (read_file(path, &b, e) == 0)
		t = ruletable_parse(path, buf_str(&b), b.len, syntax, lim, e);
	buf_free(&b);
	return t;
}

void
ruletable_free(struct ruletable *t)
{
	size_t	 i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++) {
		pcre2_code_free(t->v[i].re);
		pcre2_code_free(t->v[i].re2);
		pcre2_code_free(t->v[i].gre);
		pcre2_code_free(t->v[i].gre2);
		free(t->v[i].text);
	}
	free(t->v);
	pcre2_match_context_free(t->mctx);
	buf_free(&t->warn);
	free(t->name);
	free(t);
}

size_t
ruletable_count(const struct ruletable *t)
{
	return t != NULL ? t->nmatch : 0;
}

const char *
ruletable_name(const struct ruletable *t)
{
	return t != NULL ? t->name : "";
}

const char *
ruletable_warnings(const struct ruletable *t)
{
	return t != NULL ? buf_str(&t->warn) : "";
}

/* A cheap clock for the scratch's deadline (a few ms of resolution). */
static uint64_t
mono_ms(void)
{
	struct timespec	 ts;

	if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) != 0 &&
	    clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void
rule_scratch_deadline(struct rule_scratch *s, unsigned ms)
{
	s->until_ms = ms == 0 ? 0 : mono_ms() + ms;
}

static uint64_t
cpu_ns(void)
{
	struct timespec	 ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
		return 1;
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* At each start of a match attempt: the lookup's CPU time budget. */
static int
budget(pcre2_callout_block *cb, void *arg)
{
	struct rule_scratch	*s = arg;
	uint64_t		 now;

	(void)cb;
	if (s->calls++ % RT_CPU_EVERY != 0)
		return 0;
	now = cpu_ns();
	if (s->deadline == 0)
		s->deadline = now + RT_CPU_NS;
	return now > s->deadline ? PCRE2_ERROR_CALLOUT : 0;
}

struct rule_scratch *
rule_scratch_new(const struct ruletable *t)
{
	struct rule_scratch	*s;
	size_t			 start;

	if (t == NULL || (s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->t = t;
	s->md = pcre2_match_data_create(t->max_sub + 1, NULL);
	s->mctx = pcre2_match_context_copy(t->mctx);
	if (s->md == NULL || s->mctx == NULL)
		goto fail;
	(void)pcre2_set_callout(s->mctx, budget, s);
	if (t->jit) {
		start = t->lim.jit_stack < RT_JIT_START ? t->lim.jit_stack :
		    RT_JIT_START;
		s->jit = pcre2_jit_stack_create(start, t->lim.jit_stack, NULL);
		if (s->jit == NULL)
			goto fail;
		pcre2_jit_stack_assign(s->mctx, NULL, s->jit);
	}
	return s;
fail:
	rule_scratch_free(s);
	return NULL;
}

void
rule_scratch_free(struct rule_scratch *s)
{
	if (s == NULL)
		return;
	pcre2_match_data_free(s->md);
	pcre2_match_context_free(s->mctx);
	pcre2_jit_stack_free(s->jit);
	free(s);
}

/*
 * 1 if re matches, 0 if not, -1 with e set (a limit, no memory...);
 * *mrc is pcre2_match()'s result.
 */
static int
try_match(const struct ruletable *t, struct rule_scratch *s,
    const pcre2_code *re, const pcre2_code *guarded, unsigned line,
    const char *subj, size_t len, int *mrc, struct err *e)
{
	PCRE2_UCHAR	 msg[128];
	const char	*which;
	int		 rc;

	if (len > RT_SHORT && guarded != NULL)
		re = guarded;
	rc = pcre2_match(re, (PCRE2_SPTR)subj, len, 0, 0, s->md, s->mctx);
	*mrc = rc;
	if (s->until_ms != 0 && mono_ms() > s->until_ms) {
		err_set(e, "%s:%u: time limit of the message's rule lookups "
		    "reached", t->name, line);
		return -1;
	}
	if (rc >= 0)
		return 1;
	switch (rc) {
	case PCRE2_ERROR_NOMATCH:
		return 0;
	case PCRE2_ERROR_MATCHLIMIT:
		which = "match limit";
		break;
	case PCRE2_ERROR_DEPTHLIMIT:
		which = "depth limit";
		break;
	case PCRE2_ERROR_HEAPLIMIT:
		which = "heap limit";
		break;
	case PCRE2_ERROR_JIT_STACKLIMIT:
		which = "JIT stack limit";
		break;
	case PCRE2_ERROR_CALLOUT:
		which = "CPU time limit of the lookup";
		break;
	case PCRE2_ERROR_NOMEMORY:
		err_set(e, "%s:%u: out of memory while matching", t->name,
		    line);
		return -1;
	default:
		if (pcre2_get_error_message(rc, msg, sizeof(msg)) < 0)
			(void)snprintf((char *)msg, sizeof(msg), "error %d",
			    rc);
		err_set(e, "%s:%u: pattern match failed: %s", t->name, line,
		    (char *)msg);
		return -1;
	}
	err_set(e, "%s:%u: pattern match limit reached (%s)", t->name, line,
	    which);
	return -1;
}

/*
 * n bytes at p into b, NUL bytes as '?' (the text is a C string), as
 * many as fit: RC_INVAL when some did not.
 */
static enum rc
put_bytes(struct buf *b, const char *p, size_t n)
{
	const char	*z;
	size_t		 room = b->max > b->len ? b->max - b->len : 0, k;
	enum rc		 rc = RC_OK, r;

	if (n > room) {
		n = room;
		rc = RC_INVAL;
	}
	while (n > 0) {
		z = memchr(p, '\0', n);
		k = z != NULL ? (size_t)(z - p) : n;
		if ((r = buf_append(b, p, k)) != RC_OK)
			return r;
		if (z != NULL && (r = buf_putc(b, '?')) != RC_OK)
			return r;
		k += z != NULL;
		p += k;
		n -= k;
	}
	return rc;
}

/*
 * The rule's text with $n from the last match of its pattern (mrc:
 * pcre2_match()'s result, 0 if the ovector was full), into tb.
 */
static int
expand(const struct ruletable *t, const struct rule *ru,
    struct rule_scratch *s, int mrc, const char *subj, size_t len,
    struct buf *tb, struct err *e)
{
	PCRE2_SIZE	*ov = pcre2_get_ovector_pointer(s->md);
	uint32_t	 nov = pcre2_get_ovector_count(s->md);
	const char	*p, *lit;
	size_t		 litlen;
	unsigned	 g;
	enum rc		 rc = RC_OK;

	if (mrc > 0 && (uint32_t)mrc < nov)
		nov = (uint32_t)mrc;	/* later groups did not take part */
	buf_reset(tb);
	for (p = ru->text; *p != '\0' && rc == RC_OK; ) {
		if ((p = tok_next(p, &lit, &litlen, &g)) == NULL)
			break;		/* checked at load: never */
		if (g == 0)
			rc = put_bytes(tb, lit, litlen);
		else if (g < nov && ov[2 * g] != PCRE2_UNSET &&
		    ov[2 * g] <= ov[2 * g + 1] && ov[2 * g + 1] <= len)
			rc = put_bytes(tb, subj + ov[2 * g],
			    ov[2 * g + 1] - ov[2 * g]);
	}
	if (rc == RC_NOMEM) {
		err_set(e, "%s:%u: out of memory", t->name, ru->line);
		return -1;
	}
	if (rc != RC_OK)
		buf_mark_cut(tb, "...");
	return 0;
}

int
ruletable_match(const struct ruletable *t, struct rule_scratch *s,
    const char *subj, size_t len, struct rule_result *r, struct buf *textbuf,
    struct err *e)
{
	const struct rule	*ru;
	size_t			 i;
	int			 m, mrc;

	memset(r, 0, sizeof(*r));
	r->action = RA_NONE;
	r->text = "";
	if (t == NULL || s == NULL || s->t != t) {
		err_set(e, "%s: no scratch for this table", ruletable_name(t));
		return -1;
	}
	if (subj == NULL) {
		subj = "";
		len = 0;
	}
	s->deadline = 0;
	s->calls = 0;
	for (i = 0; i < t->n; i++) {
		ru = &t->v[i];
		if (ru->op == OP_ENDIF)
			continue;
		if (ru->op == OP_IF) {
			if ((m = try_match(t, s, ru->re, ru->gre, ru->line,
			    subj, len, &mrc, e)) < 0)
				return -1;
			if (m == ru->negate)
				i = ru->endif;	/* skip the block */
			continue;
		}
		/* the second pattern first: the ovector is the first's */
		if (ru->re2 != NULL) {
			if ((m = try_match(t, s, ru->re2, ru->gre2, ru->line,
			    subj, len, &mrc, e)) < 0)
				return -1;
			if (m == ru->negate2)
				continue;
		}
		if ((m = try_match(t, s, ru->re, ru->gre, ru->line, subj,
		    len, &mrc, e)) < 0)
			return -1;
		if (m == ru->negate)
			continue;
		r->action = ru->action;
		r->score = ru->score;
		memcpy(r->code, ru->code, sizeof(r->code));
		memcpy(r->dsn, ru->dsn, sizeof(r->dsn));
		r->line = ru->line;
		if (textbuf != NULL) {
			if (expand(t, ru, s, mrc, subj, len, textbuf, e) != 0)
				return -1;
			r->text = buf_str(textbuf);
		}
		return 1;
	}
	return 0;
}
