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
compile(const char **ex, unsigned *fl, unsigned *id, unsigned char *in,
    unsigned n)
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
		    !ru->pf_in[0])))
			t->pf_visit[i / 64] |= UINT64_C(1) << (i % 64);
	}
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
	free(t->pf_visit);
	t->pf_proto = NULL;
	t->pf_db = NULL;
	t->pf_visit = NULL;
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
	s->pfs = NULL;
	s->hits = NULL;
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
	s->pf_ok = hs_scan(t->pf_db, subj, (unsigned)len, 0, s->pfs, on_hit,
	    s) == HS_SUCCESS;
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

size_t
rt_prefilter_next(const struct ruletable *t, const struct rule_scratch *s,
    size_t i)
{
	(void)t;
	(void)s;
	return i;
}

#endif
