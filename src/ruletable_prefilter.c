/*
 * ruletable_prefilter.c - the prefilter of a rule table (ruletable.h;
 * structures in ruletable_int.h): all patterns of the table in one
 * Hyperscan database compiled in prefilter mode, scanned once per lookup.
 *
 * Prefilter mode matches a superset of what each pattern matches (what
 * Hyperscan cannot do exactly, back references and lookarounds, it
 * widens), so a pattern with no hit cannot match and its PCRE2 match is
 * skipped; a pattern with a hit is still decided by PCRE2, with its
 * limits.  The table's result is therefore PCRE2's: the prefilter only
 * saves the calls of the patterns that cannot match, which for
 * body_checks (each line against every rule) is nearly all of them.
 *
 * A table loaded for batches (rule_limits.batch: body_checks) has a
 * second database of the same patterns, compiled multi-line and
 * reporting every match, for a block of lines joined with '\n': a
 * pattern's match in a line alone is a match there too, ending in the
 * same line, so one scan gives every line's hits (line_safe() says which
 * patterns keep that property; the others get a hit on every line).  A
 * scan that reports too many hits gives up: the lines are then scanned
 * one at a time.
 *
 * Left out of the database, and so always matched with PCRE2: patterns
 * Hyperscan does not parse (callouts, verbs, \K, ...), patterns compiled
 * with the U (ungreedy) flag, and any pattern it refuses to compile.
 * Options are mapped to Hyperscan's flags or dropped where dropping only
 * widens the match (A: anchored, E: dollar at the very end only).  Both
 * libraries work on bytes here (PCRE2_NEVER_UTF; ASCII case folding).
 *
 * Without Hyperscan (built without it, or a CPU it does not support)
 * there is no prefilter and every pattern goes through PCRE2.
 *
 * Owns the database and the prototype scratch in the table, and each
 * scratch's clone and hit bits.  Thread-safe as the table: the database
 * is read-only, each thread scans with its own scratch.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "ruletable_int.h"

#ifdef HAVE_HYPERSCAN

#include <hs.h>

#define PF_RETRY	16	/* patterns dropped one by one before giving up */

/* Hyperscan flags for PCRE2 options o; -1 if the pattern stays out. */
static int
hs_flags(uint32_t o, int *extended)
{
	unsigned	 f = HS_FLAG_PREFILTER | HS_FLAG_SINGLEMATCH |
			    HS_FLAG_ALLOWEMPTY;

	if (o & PCRE2_UNGREEDY)
		return -1;
	if (o & PCRE2_CASELESS)
		f |= HS_FLAG_CASELESS;
	if (o & PCRE2_MULTILINE)
		f |= HS_FLAG_MULTILINE;
	if (o & PCRE2_DOTALL)
		f |= HS_FLAG_DOTALL;
	*extended = (o & PCRE2_EXTENDED) != 0;
	return (int)f;
}

/* Compiles n expressions; the ones it refuses are dropped (in[j] = 0)
 * and the rest tried again.  NULL when none is left or it gave up. */
static hs_database_t *
compile(const char **ex, const unsigned *fl, const unsigned *id,
    unsigned char *in, unsigned n)
{
	hs_database_t		*db = NULL;
	hs_compile_error_t	*ce = NULL;
	const char		**kex;
	unsigned		*kfl, *kid, *map, k, j, tries;

	kex = calloc(n, sizeof(*kex));
	kfl = calloc(n, sizeof(*kfl));
	kid = calloc(n, sizeof(*kid));
	map = calloc(n, sizeof(*map));
	for (tries = 0; kex != NULL && kfl != NULL && kid != NULL &&
	    map != NULL && tries < PF_RETRY; tries++) {
		for (j = 0, k = 0; j < n; j++)
			if (in[j]) {
				kex[k] = ex[j];
				kfl[k] = fl[j];
				kid[k] = id[j];
				map[k++] = j;
			}
		if (k == 0)
			break;
		if (hs_compile_multi(kex, kfl, kid, k, HS_MODE_BLOCK, NULL,
		    &db, &ce) == HS_SUCCESS)
			break;
		db = NULL;
		j = ce != NULL && ce->expression >= 0 &&
		    (unsigned)ce->expression < k ? map[ce->expression] : n;
		(void)hs_free_compile_error(ce);
		ce = NULL;
		if (j == n)
			break;		/* not one pattern's fault */
		in[j] = 0;
	}
	free(kex);
	free(kfl);
	free(kid);
	free(map);
	return db;
}

/*
 * 1 if pattern re, as a prefilter, finds in a block of lines ('\n'
 * between them, multi-line mode) every line it finds alone: its
 * matches in a line are matches there too.  Not so for what refers to
 * the subject's ends (\A, \z, \Z, \G, an option group that may turn
 * multi-line mode off) or may fail on the '\n' next to a line
 * (negative lookarounds); verbs are left out as well.  Conservative:
 * such text anywhere (in a class, a comment, \Q...\E) leaves the
 * pattern out, which only costs its lookups.
 */
static int
line_safe(const char *re)
{
	const char	*p, *q;

	for (p = re; *p != '\0'; p++) {
		if (*p == '\\') {
			if (p[1] == '\0')
				break;
			if (strchr("AzZG", p[1]) != NULL)
				return 0;
			p++;
			continue;
		}
		if (*p != '(' || (p[1] != '?' && p[1] != '*'))
			continue;
		if (p[1] == '*' || p[2] == '!' || (p[2] == '<' && p[3] == '!'))
			return 0;
		for (q = p + 2; (*q >= 'a' && *q <= 'z') ||
		    (*q >= 'A' && *q <= 'Z') || *q == '-' || *q == '^'; q++)
			if (*q == '-' || *q == '^')
				return 0;
	}
	return 1;
}

/*
 * The database of rt_prefilter_lines(): the patterns of pf_db (ex, fl,
 * id, those with in[j]) that are line_safe(), multi-line and reporting
 * every match (a line's hit may come after another line's).  Those
 * left out get their hit bit on every line (pf_lout).  No database
 * when none is line-safe or memory runs out: lines are then scanned one
 * at a time.
 */
static void
build_lines(struct ruletable *t, const char **ex, const unsigned *fl,
    const unsigned *id, const unsigned char *in, unsigned n)
{
	unsigned	*lfl, j;
	unsigned char	*lin;
	size_t		 nl = 0;

	lfl = calloc(n, sizeof(*lfl));
	lin = calloc(n, sizeof(*lin));
	if (lfl == NULL || lin == NULL)
		goto out;
	for (j = 0; j < n; j++) {
		lfl[j] = (fl[j] & ~(unsigned)HS_FLAG_SINGLEMATCH) |
		    HS_FLAG_MULTILINE;
		lin[j] = in[j] && line_safe(ex[j]);
		nl += lin[j];
	}
	if (nl == 0 || (t->pf_lout = calloc(2 * t->pf_words,
	    sizeof(uint64_t))) == NULL)
		goto out;
	if ((t->pf_ldb = compile(ex, lfl, id, lin, n)) == NULL ||
	    hs_alloc_scratch(t->pf_ldb, &t->pf_proto) != HS_SUCCESS) {
		if (t->pf_proto == NULL)	/* lost in a failed resize */
			rt_prefilter_free(t);
		(void)hs_free_database(t->pf_ldb);
		t->pf_ldb = NULL;
		free(t->pf_lout);
		t->pf_lout = NULL;
		goto out;
	}
	for (j = 0; j < n; j++)
		if (in[j] && !lin[j])
			t->pf_lout[id[j] / 64] |= UINT64_C(1) << (id[j] % 64);
out:
	free(lfl);
	free(lin);
}

void
rt_prefilter_build(struct ruletable *t)
{
	hs_compile_error_t	*ce;
	hs_expr_info_t		*info;
	const char		**ex = NULL;
	unsigned		*fl = NULL, *id = NULL, n = 0, j;
	unsigned char		*in = NULL;
	struct buf		*xs = NULL;	/* "(?x)" sources */
	struct rule		*ru;
	size_t			 i, k, nx = 0;
	int			 f, x;

	if (t->lim.no_prefilter || hs_valid_platform() != HS_SUCCESS ||
	    t->n > UINT_MAX / 4)
		goto out;
	t->pf_words = (t->n + 63) / 64;
	ex = calloc(2 * t->n + 1, sizeof(*ex));
	fl = calloc(2 * t->n + 1, sizeof(*fl));
	id = calloc(2 * t->n + 1, sizeof(*id));
	in = calloc(2 * t->n + 1, sizeof(*in));
	xs = calloc(2 * t->n + 1, sizeof(*xs));
	if (ex == NULL || fl == NULL || id == NULL || in == NULL || xs == NULL)
		goto out;
	for (i = 0; i < t->n; i++)
		for (k = 0; k < 2; k++) {
			ru = &t->v[i];
			if (ru->pf[k].src == NULL ||
			    (f = hs_flags(ru->pf[k].opts, &x)) < 0)
				continue;
			ex[n] = ru->pf[k].src;
			if (x) {
				buf_init(&xs[nx], strlen(ex[n]) + 8);
				if (buf_puts(&xs[nx], "(?x)") != RC_OK ||
				    buf_puts(&xs[nx], ex[n]) != RC_OK) {
					nx++;
					continue;
				}
				ex[n] = buf_str(&xs[nx++]);
			}
			info = NULL;
			ce = NULL;
			if (hs_expression_info(ex[n], (unsigned)f, &info, &ce) !=
			    HS_SUCCESS) {
				(void)hs_free_compile_error(ce);
				continue;
			}
			free(info);	/* allocated with malloc() by default */
			fl[n] = (unsigned)f;
			id[n] = (unsigned)RT_PF_BIT(t, i, k);
			in[n++] = 1;
		}
	if (n == 0 || (t->pf_db = compile(ex, fl, id, in, n)) == NULL)
		goto out;
	if (hs_alloc_scratch(t->pf_db, &t->pf_proto) != HS_SUCCESS ||
	    (t->pf_visit = calloc(t->pf_words, sizeof(uint64_t))) == NULL) {
		rt_prefilter_free(t);
		goto out;
	}
	for (j = 0; j < n; j++)
		if (in[j]) {
			i = id[j] % (t->pf_words * 64);
			t->v[i].pf_in[id[j] / (t->pf_words * 64)] = 1;
			t->pf_n++;
		}
	for (i = 0; i < t->n; i++) {
		ru = &t->v[i];
		if (ru->op == OP_IF || (ru->op == OP_MATCH && (ru->negate ||
		    !ru->pf_in[0]))) {
			t->pf_visit[i / 64] |= UINT64_C(1) << (i % 64);
			t->pf_visit_any = 1;
		}
	}
	if (t->lim.batch)
		build_lines(t, ex, fl, id, in, n);
out:
	for (i = 0; xs != NULL && i < nx; i++)
		buf_free(&xs[i]);
	free(xs);
	free(ex);
	free(fl);
	free(id);
	free(in);
	for (i = 0; i < t->n; i++)
		for (k = 0; k < 2; k++) {
			free(t->v[i].pf[k].src);
			t->v[i].pf[k].src = NULL;
		}
}

void
rt_prefilter_free(struct ruletable *t)
{
	(void)hs_free_scratch(t->pf_proto);
	(void)hs_free_database(t->pf_db);
	(void)hs_free_database(t->pf_ldb);
	free(t->pf_visit);
	free(t->pf_lout);
	t->pf_proto = NULL;
	t->pf_db = NULL;
	t->pf_ldb = NULL;
	t->pf_visit = NULL;
	t->pf_lout = NULL;
	t->pf_visit_any = 0;
	t->pf_n = 0;
}

int
rt_prefilter_scratch(const struct ruletable *t, struct rule_scratch *s)
{
	if (t->pf_db == NULL)
		return 0;
	if (hs_clone_scratch(t->pf_proto, &s->pfs) != HS_SUCCESS) {
		s->pfs = NULL;
		return -1;
	}
	if ((s->hits = calloc(2 * t->pf_words, sizeof(*s->hits))) == NULL)
		return -1;
	return 0;
}

void
rt_prefilter_scratch_free(struct rule_scratch *s)
{
	(void)hs_free_scratch(s->pfs);
	free(s->hits);
	free(s->lhits);
	s->pfs = NULL;
	s->hits = NULL;
	s->lhits = NULL;
	s->lhits_n = 0;
}

static int
on_hit(unsigned int id, unsigned long long from, unsigned long long to,
    unsigned int flags, void *arg)
{
	struct rule_scratch	*s = arg;

	(void)from;
	(void)to;
	(void)flags;
	s->hits[id / 64] |= UINT64_C(1) << (id % 64);
	return 0;
}

void
rt_prefilter_scan(const struct ruletable *t, struct rule_scratch *s,
    const char *subj, size_t len)
{
	s->pf_ok = 0;
	if (t->pf_db == NULL || s->pfs == NULL || len > UINT_MAX)
		return;
	memset(s->hits, 0, 2 * t->pf_words * sizeof(*s->hits));
	s->scans++;
	s->pf_ok = hs_scan(t->pf_db, subj, (unsigned)len, 0, s->pfs, on_hit,
	    s) == HS_SUCCESS;
}

/* A scan of lines [a, b) of a batch: where each line starts. */
struct lscan {
	const size_t	*off;		/* the batch's, absolute */
	size_t		 a, b;		/* lines */
	size_t		 base;		/* off[a]: offset 0 of the scan */
	size_t		 cur;		/* line of the last hit */
	size_t		 words;		/* a line's hit words */
	uint64_t	*bits;
	uint64_t	 left;		/* hits allowed before giving up */
};

/* The line whose text or following '\n' is at absolute offset x (the
 * last line for the end of the scan). */
static size_t
line_at(const struct lscan *ls, size_t x)
{
	size_t	 lo = ls->a, hi = ls->b - 1, mid;

	while (lo < hi) {	/* the last line starting at or before x */
		mid = lo + (hi - lo + 1) / 2;
		if (ls->off[mid] <= x)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

/*
 * A hit ending at offset to: the line it ends in (a match of the line
 * alone ends in it, at its end at the latest, which is the offset of
 * the '\n' after it).  Hits come mostly in order: the last line, then
 * the next, are tried first.
 */
static int
on_line_hit(unsigned int id, unsigned long long from, unsigned long long to,
    unsigned int flags, void *arg)
{
	struct lscan	*ls = arg;
	size_t		 x = ls->base + (size_t)to, c = ls->cur;

	(void)from;
	(void)flags;
	if (ls->left-- == 0)
		return 1;	/* too many: lines one at a time */
	if (x < ls->off[c] || (c + 1 < ls->b && x >= ls->off[c + 1])) {
		if (c + 1 < ls->b && x >= ls->off[c + 1] &&
		    (c + 2 == ls->b || x < ls->off[c + 2]))
			c++;
		else
			c = line_at(ls, x);
		ls->cur = c;
	}
	ls->bits[(c - ls->a) * ls->words + id / 64] |=
	    UINT64_C(1) << (id % 64);
	return 0;
}

int
rt_prefilter_lines(const struct ruletable *t, struct rule_scratch *s,
    const struct rule_batch *bt, size_t a, size_t b)
{
	struct lscan	 ls;
	uint64_t	*nb;
	size_t		 i, words = 2 * t->pf_words, len;

	if (t->pf_ldb == NULL || s->pfs == NULL || a >= b)
		return -1;
	/* with the last line's '\n': every line alike (an empty last line
	 * is then a line, not the end of the data) */
	len = (b < bt->n ? bt->off[b] : bt->text.len) - bt->off[a];
	if (len > UINT_MAX)
		return -1;
	if (b - a > s->lhits_n) {
		if (b - a > SIZE_MAX / sizeof(*nb) / words ||
		    (nb = realloc(s->lhits, (b - a) * words *
		    sizeof(*nb))) == NULL)
			return -1;
		s->lhits = nb;
		s->lhits_n = b - a;
	}
	for (i = 0; i < b - a; i++)
		memcpy(s->lhits + i * words, t->pf_lout,
		    words * sizeof(*s->lhits));
	ls.off = bt->off;
	ls.a = a;
	ls.b = b;
	ls.base = bt->off[a];
	ls.cur = a;
	ls.words = words;
	ls.bits = s->lhits;
	ls.left = 64 * (uint64_t)(b - a) + 4096;
	s->scans++;
	return hs_scan(t->pf_ldb, bt->text.data + bt->off[a], (unsigned)len,
	    0, s->pfs, on_line_hit, &ls) == HS_SUCCESS ? 0 : -1;
}

size_t
rt_prefilter_next(const struct ruletable *t, const struct rule_scratch *s,
    size_t i)
{
	size_t		 w = i / 64;
	uint64_t	 m;

	if (!s->pf_ok || i >= t->n)
		return i;
	m = (t->pf_visit[w] | s->hits[w]) & (~UINT64_C(0) << (i % 64));
	while (m == 0) {
		if (++w == t->pf_words)
			return t->n;
		m = t->pf_visit[w] | s->hits[w];
	}
	i = w * 64 + (size_t)__builtin_ctzll(m);
	return i < t->n ? i : t->n;
}

#else	/* !HAVE_HYPERSCAN */

void
rt_prefilter_build(struct ruletable *t)
{
	size_t	 i;

	for (i = 0; i < t->n; i++) {
		free(t->v[i].pf[0].src);
		free(t->v[i].pf[1].src);
		t->v[i].pf[0].src = t->v[i].pf[1].src = NULL;
	}
}

void
rt_prefilter_free(struct ruletable *t)
{
	(void)t;
}

int
rt_prefilter_scratch(const struct ruletable *t, struct rule_scratch *s)
{
	(void)t;
	(void)s;
	return 0;
}

void
rt_prefilter_scratch_free(struct rule_scratch *s)
{
	(void)s;
}

void
rt_prefilter_scan(const struct ruletable *t, struct rule_scratch *s,
    const char *subj, size_t len)
{
	(void)t;
	(void)subj;
	(void)len;
	s->pf_ok = 0;
}

int
rt_prefilter_lines(const struct ruletable *t, struct rule_scratch *s,
    const struct rule_batch *bt, size_t a, size_t b)
{
	(void)t;
	(void)s;
	(void)bt;
	(void)a;
	(void)b;
	return -1;
}

size_t
rt_prefilter_next(const struct ruletable *t, const struct rule_scratch *s,
    size_t i)
{
	(void)t;
	(void)s;
	return i;
}

#endif
