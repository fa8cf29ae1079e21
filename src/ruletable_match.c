/*
 * ruletable_match.c - lookups in a rule table (see ruletable.h; the
 * tables are parsed by ruletable.c and their patterns compiled by
 * ruletable_compile.c, their structures are in ruletable_int.h):
 * per-thread scratches, the CPU budget of a lookup (the callout of the
 * guarded patterns, see wrap() in ruletable_compile.c) and the
 * message's deadline, pcre2_match() with its limits, and the result's
 * text with $n from the match.
 *
 * A limit hit while matching is an error (-1), never a silent "no match".
 *
 * Owns the scratches it returns.  Thread-safe: the table is read-only;
 * each thread matches with its own scratch (match data, match context,
 * JIT stack), which holds the lookup's budget and deadline.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ruletable_int.h"

#define RT_JIT_START	(32 * 1024)		/* bytes */
#define RT_CPU_NS	(250ULL * 1000000)	/* CPU budget of a lookup */
#define RT_CPU_EVERY	16			/* callouts per clock read */
#define RT_SHORT	256	/* subjects up to this long match the
				 * unguarded code (see wrap() in
				 * ruletable_compile.c) */

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
	s->tid = t->id;
	s->md = pcre2_match_data_create(t->max_sub + 1, NULL);
	s->mctx = pcre2_match_context_copy(t->mctx);
	if (s->md == NULL || s->mctx == NULL)
		goto fail;
	(void)pcre2_set_callout(s->mctx, budget, s);
	if (rt_prefilter_scratch(t, s) != 0)
		goto fail;
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
	rt_prefilter_scratch_free(s);
	free(s);
}

/*
 * Each thread keeps the scratches given back to it (RT_CACHE at most,
 * the oldest freed first), so that a message does not pay for the
 * allocation of match data, JIT stack and prefilter scratch (the JIT
 * stack is mapped and unmapped, and an unmap stops every CPU running
 * the process).  A scratch is for the table with its id: one of a
 * table freed by a reload is never handed out again, only freed.
 */
#define RT_CACHE	8

struct scratch_cache {
	struct rule_scratch	*v[RT_CACHE];	/* [0] the oldest */
	size_t			 n;
};

static pthread_key_t	 cache_key;
static pthread_once_t	 cache_once = PTHREAD_ONCE_INIT;
static int		 cache_ok;

static void
cache_free(void *arg)
{
	struct scratch_cache	*c = arg;
	size_t			 i;

	for (i = 0; i < c->n; i++)
		rule_scratch_free(c->v[i]);
	free(c);
}

static void
cache_init(void)
{
	cache_ok = pthread_key_create(&cache_key, cache_free) == 0;
}

static struct scratch_cache *
cache_get(int create)
{
	struct scratch_cache	*c;

	(void)pthread_once(&cache_once, cache_init);
	if (!cache_ok)
		return NULL;
	c = pthread_getspecific(cache_key);
	if (c == NULL && create && (c = calloc(1, sizeof(*c))) != NULL &&
	    pthread_setspecific(cache_key, c) != 0) {
		free(c);
		c = NULL;
	}
	return c;
}

struct rule_scratch *
rule_scratch_take(const struct ruletable *t)
{
	struct scratch_cache	*c;
	struct rule_scratch	*s;
	size_t			 i;

	if (t == NULL)
		return NULL;
	if ((c = cache_get(0)) != NULL)
		for (i = c->n; i-- > 0; )
			if (c->v[i]->tid == t->id) {
				s = c->v[i];
				memmove(&c->v[i], &c->v[i + 1],
				    (c->n - i - 1) * sizeof(c->v[0]));
				c->n--;
				s->until_ms = 0;
				return s;
			}
	return rule_scratch_new(t);
}

void
rule_scratch_give(struct rule_scratch *s)
{
	struct scratch_cache	*c;

	if (s == NULL)
		return;
	if ((c = cache_get(1)) == NULL) {
		rule_scratch_free(s);
		return;
	}
	if (c->n == RT_CACHE) {
		rule_scratch_free(c->v[0]);
		memmove(&c->v[0], &c->v[1], (RT_CACHE - 1) * sizeof(c->v[0]));
		c->n--;
	}
	c->v[c->n++] = s;
}

unsigned long
rule_scratch_pcre_calls(const struct rule_scratch *s)
{
	return s != NULL ? s->calls_re : 0;
}

unsigned long
rule_scratch_scans(const struct rule_scratch *s)
{
	return s != NULL ? s->scans : 0;
}

/*
 * 1 if pattern k (0: re, 1: re2) of rule i matches, 0 if not, -1 with e
 * set (a limit, no memory...); *mrc is pcre2_match()'s result.  A
 * pattern the prefilter did not hit does not match (no PCRE2 call).
 */
static int
try_match(const struct ruletable *t, struct rule_scratch *s, size_t i,
    int k, const char *subj, size_t len, int *mrc, struct err *e)
{
	const struct rule	*ru = &t->v[i];
	const pcre2_code	*re = k == 0 ? ru->re : ru->re2;
	const pcre2_code	*guarded = k == 0 ? ru->gre : ru->gre2;
	unsigned		 line = ru->line;
	PCRE2_UCHAR		 msg[128];
	const char		*which;
	size_t			 bit = RT_PF_BIT(t, i, k);
	int			 rc;

	if (s->pf_ok && ru->pf_in[k] &&
	    (s->hits[bit / 64] & (UINT64_C(1) << (bit % 64))) == 0) {
		*mrc = PCRE2_ERROR_NOMATCH;
		return 0;
	}
	if (len > RT_SHORT && guarded != NULL)
		re = guarded;
	s->calls_re++;
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
		if ((p = rt_tok_next(p, &lit, &litlen, &g)) == NULL)
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

/* The lookup of subj with the prefilter's hits in s already set. */
static int
lookup(const struct ruletable *t, struct rule_scratch *s, const char *subj,
    size_t len, struct rule_result *r, struct buf *textbuf, struct err *e)
{
	const struct rule	*ru;
	size_t			 i;
	int			 m, mrc;

	memset(r, 0, sizeof(*r));
	r->action = RA_NONE;
	r->text = "";
	s->deadline = 0;
	s->calls = 0;
	for (i = 0; (i = rt_prefilter_next(t, s, i)) < t->n; i++) {
		ru = &t->v[i];
		if (ru->op == OP_ENDIF)
			continue;
		if (ru->op == OP_IF) {
			if ((m = try_match(t, s, i, 0, subj, len, &mrc, e)) < 0)
				return -1;
			if (m == ru->negate)
				i = ru->endif;	/* skip the block */
			continue;
		}
		/* the second pattern first: the ovector is the first's */
		if (ru->re2 != NULL) {
			if ((m = try_match(t, s, i, 1, subj, len, &mrc, e)) < 0)
				return -1;
			if (m == ru->negate2)
				continue;
		}
		if ((m = try_match(t, s, i, 0, subj, len, &mrc, e)) < 0)
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

static int
scratch_ok(const struct ruletable *t, const struct rule_scratch *s,
    struct err *e)
{
	if (t == NULL || s == NULL || s->t != t || s->tid != t->id) {
		err_set(e, "%s: no scratch for this table", ruletable_name(t));
		return 0;
	}
	return 1;
}

int
ruletable_match(const struct ruletable *t, struct rule_scratch *s,
    const char *subj, size_t len, struct rule_result *r, struct buf *textbuf,
    struct err *e)
{
	if (!scratch_ok(t, s, e)) {
		memset(r, 0, sizeof(*r));
		r->action = RA_NONE;
		r->text = "";
		return -1;
	}
	if (subj == NULL) {
		subj = "";
		len = 0;
	}
	rt_prefilter_scan(t, s, subj, len);
	return lookup(t, s, subj, len, r, textbuf, e);
}

void
rule_batch_init(struct rule_batch *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	buf_init(&b->text, max);
}

void
rule_batch_reset(struct rule_batch *b)
{
	buf_reset(&b->text);
	b->n = 0;
}

void
rule_batch_free(struct rule_batch *b)
{
	buf_free(&b->text);
	free(b->off);
	memset(b, 0, sizeof(*b));
}

enum rc
rule_batch_add(struct rule_batch *b, const char *s, size_t len)
{
	size_t	*no, ncap;

	if (len >= b->text.max || b->text.len > b->text.max - len - 1)
		return RC_INVAL;
	if (b->n == b->cap) {
		ncap = b->cap == 0 ? 256 : 2 * b->cap;
		if ((no = realloc(b->off, ncap * sizeof(*no))) == NULL)
			return RC_NOMEM;
		b->off = no;
		b->cap = ncap;
	}
	b->off[b->n] = b->text.len;
	if (buf_append(&b->text, s, len) != RC_OK ||
	    buf_putc(&b->text, '\n') != RC_OK) {
		b->text.len = b->off[b->n];
		return RC_NOMEM;
	}
	b->n++;
	return RC_OK;
}

/* Lines of one scan of a batch: their hits (2 * pf_words words each)
 * in at most RT_BATCH_WORDS words, their text in RT_BATCH_TEXT bytes
 * (a line alone may be longer). */
#define RT_BATCH_WORDS	(64 * 1024)
#define RT_BATCH_TEXT	(1024 * 1024)

/* End of subject i of b: the offset of its '\n'. */
static size_t
subject_end(const struct rule_batch *b, size_t i)
{
	return (i + 1 < b->n ? b->off[i + 1] : b->text.len) - 1;
}

static int
any_bit(const uint64_t *v, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (v[i] != 0)
			return 1;
	return 0;
}

int
ruletable_match_batch(const struct ruletable *t, struct rule_scratch *s,
    const struct rule_batch *bt, struct buf *textbuf, rule_batch_fn fn,
    void *arg, struct err *e)
{
	struct rule_result	 r;
	const char		*subj;
	size_t			 a, b, i, len, words, per;
	int			 rc, all;

	if (!scratch_ok(t, s, e))
		return -1;
	words = 2 * t->pf_words;
	per = words == 0 ? bt->n : RT_BATCH_WORDS / words;
	if (per == 0)
		per = 1;
	for (a = 0; a < bt->n; a = b) {
		for (b = a + 1; b < bt->n && b - a < per &&
		    subject_end(bt, b) - bt->off[a] < RT_BATCH_TEXT; b++)
			;
		all = rt_prefilter_lines(t, s, bt, a, b) == 0;
		for (i = a; i < b; i++) {
			subj = bt->text.data + bt->off[i];
			len = subject_end(bt, i) - bt->off[i];
			if (!all)
				rt_prefilter_scan(t, s, subj, len);
			else {
				memcpy(s->hits, s->lhits + (i - a) * words,
				    words * sizeof(*s->hits));
				s->pf_ok = 1;
				if (!t->pf_visit_any &&
				    !any_bit(s->hits, words))
					continue;	/* no rule can match */
			}
			if ((rc = lookup(t, s, subj, len, &r, textbuf, e)) < 0)
				return -1;
			if (rc > 0 && fn(arg, i, subj, len, &r) != 0)
				return 1;
		}
	}
	return 0;
}
