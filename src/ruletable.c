/*
 * ruletable.c - Postfix regexp: and pcre: tables for header_checks and
 * body_checks (see ruletable.h), compiled with PCRE2: loading and
 * parsing.  Each pattern is compiled by ruletable_compile.c (POSIX
 * conversion, JIT, the guarded copy); lookups (scratches, the CPU budget
 * and the deadline, pcre2_match(), $n in results) are in
 * ruletable_match.c; the structures they share are in ruletable_int.h.
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
 * Owns the tables it returns.  Thread-safe: a table is read-only after
 * the load (ruletable_parse() and ruletable_load() use only their own
 * parser state); lookups are ruletable_match.c's.
 */

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ruletable_int.h"
#include "util.h"

#define RT_FILE_MAX	(16UL * 1024 * 1024)	/* bytes */
#define RT_RULES_MAX	100000			/* rules, if and endif lines */
#define RT_SUB_MAX	99			/* largest $n */
#define RT_WARN_MAX	(64 * 1024)		/* bytes of warnings */
#define RT_SCORE_MAX	10000000L		/* hundredths: 100000.00 */
#define SHOW_MAX	64

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
	memset(l, 0, sizeof(*l));
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

int
rt_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int
is_alnum(char c)
{
	return rt_is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
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

int
rt_fail(struct parser *ps, unsigned line, const char *fmt, ...)
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
				return rt_fail(ps, ps->lineno, "NUL byte");
			rc = buf_append(&ps->lb, s, (size_t)(end - s));
			if (rc == RC_NOMEM)
				return rt_fail(ps, ps->line, "out of memory");
			if (rc != RC_OK)
				return rt_fail(ps, ps->line, "logical line "
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
		return rt_fail(ps, ps->line, "no pattern");
	delim = *p;
	if (is_alnum(delim) || delim == '\\')
		return rt_fail(ps, ps->line, "'%s' cannot delimit a pattern",
		    show(sh, sizeof(sh), &delim, 1));
	start = ++p;
	while (*p != '\0' && *p != delim) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		p++;
	}
	if (*p == '\0')
		return rt_fail(ps, ps->line, "no closing '%s' after the pattern",
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
			return rt_fail(ps, ps->line, "unknown regexp flag '%s'",
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
			return rt_fail(ps, ps->line, "unknown pcre flag '%s'",
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

/*
 * One piece of a result: literal text (*group 0) or a $n reference
 * (Postfix's mac_parse(): $$ is '$'; $name, ${name}, $(name) with name
 * all digits, 1..RT_SUB_MAX).  The position after it, or NULL on bad
 * syntax (at load only: templates are checked).
 */
const char *
rt_tok_next(const char *s, const char **lit, size_t *litlen, unsigned *group)
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
		if (!rt_is_digit(*n) || v > RT_SUB_MAX)
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
	for (; i < len && rt_is_digit(s[i]); i++, digits++) {
		v = v * 10 + (s[i] - '0');
		if (v > RT_SCORE_MAX)
			return -1;
	}
	v *= 100;
	if (digits > 0 && i < len && s[i] == '.') {
		for (i++; i < len && rt_is_digit(s[i]) && frac < 2; i++, frac++)
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
		for (n = 0; rt_is_digit(s[i]) && n < 4; i++, n++)
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
		if ((nq = rt_tok_next(q, &lit, &litlen, &g)) == NULL)
			return rt_fail(ps, ps->line, "bad $ reference in '%s' "
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
	if (wl == 3 && (w[0] == '4' || w[0] == '5') && rt_is_digit(w[1]) &&
	    rt_is_digit(w[2])) {
		ru->action = RA_CODE;
		memcpy(ru->code, w, 3);
		if ((nl = dsn_len(text, sizeof(ru->dsn))) > 0) {
			if (text[0] != w[0])
				return rt_fail(ps, ps->line, "enhanced status "
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
			return rt_fail(ps, ps->line, "SCORE '%s': not a number "
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
			return rt_fail(ps, ps->line, "%s needs text",
			    actions[i].name);
	if ((ru->text = strdup(text)) == NULL)
		return rt_fail(ps, ps->line, "out of memory");
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
		(void)rt_fail(ps, ps->line, "more than %d rules", RT_RULES_MAX);
		return NULL;
	}
	if (t->n == t->cap) {
		ncap = t->cap < 16 ? 16 : t->cap * 2;
		if ((nv = realloc(t->v, ncap * sizeof(*nv))) == NULL) {
			(void)rt_fail(ps, ps->line, "out of memory");
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
		return rt_fail(ps, ps->line, "no action after the pattern");
	if ((ru = add_rule(ps, OP_MATCH)) == NULL)
		return -1;
	ps->t->nmatch++;
	ru->negate = pt.negate;
	if (parse_action(ps, p, ru) != 0)
		return -1;
	if (ru->max_sub > 0 && ru->negate)
		return rt_fail(ps, ps->line, "$%u in the action of a negated "
		    "pattern", ru->max_sub);
	if ((ru->re = rt_compile(ps, &pt, &ru->gre, &ru->pf[0])) == NULL)
		return -1;
	if (pt2.re != NULL) {
		ru->negate2 = pt2.negate;
		if ((ru->re2 = rt_compile(ps, &pt2, &ru->gre2,
		    &ru->pf[1])) == NULL)
			return -1;
	}
	if (pcre2_pattern_info(ru->re, PCRE2_INFO_CAPTURECOUNT, &ncap) != 0)
		ncap = 0;
	if (ru->max_sub > ncap)
		return rt_fail(ps, ps->line, "the action uses $%u but the "
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
			return rt_fail(ps, ps->line, "if nested more than %d "
			    "deep", RT_NEST_MAX);
		if ((ru = add_rule(ps, OP_IF)) == NULL)
			return -1;
		ru->negate = pt.negate;
		ps->stack[ps->depth++] = ps->t->n - 1;
		return (ru->re = rt_compile(ps, &pt, &ru->gre, &ru->pf[0])) ==
		    NULL ? -1 : 0;
	}
	if (strncasecmp(p, "endif", 5) == 0 && !is_alnum(p[5])) {
		if (ps->depth == 0)
			return rt_fail(ps, ps->line, "endif without if");
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
	return rt_fail(ps, ps->line, "not a rule, if or endif: '%s'",
	    show(sh, sizeof(sh), p, strlen(p)));
}

/* Table ids: a thread's cached scratch is for the table with its id,
 * never for a later table at the same address (rule_scratch_take()). */
static _Atomic uint64_t next_id = 1;

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
	t->id = atomic_fetch_add(&next_id, 1);
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
		r = rt_fail(&ps, t->v[ps.stack[ps.depth - 1]].line,
		    "if without endif");
	if (r == 0)
		rt_prefilter_build(t);
out:
	pcre2_compile_context_free(ps.cctx);
	buf_free(&ps.lb);
	if (r != 0) {
		ruletable_free(t);
		return NULL;
	}
	return t;
}

struct ruletable *
ruletable_load(const char *path, enum rule_syntax syntax,
    const struct rule_limits *lim, struct err *e)
{
	struct ruletable	*t = NULL;
	struct buf		 b;

	buf_init(&b, RT_FILE_MAX);
	if (file_read(path, &b, e) == 0)
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
		free(t->v[i].pf[0].src);
		free(t->v[i].pf[1].src);
	}
	rt_prefilter_free(t);
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

size_t
ruletable_prefiltered(const struct ruletable *t)
{
	return t != NULL ? t->pf_n : 0;
}

const char *
ruletable_warnings(const struct ruletable *t)
{
	return t != NULL ? buf_str(&t->warn) : "";
}
