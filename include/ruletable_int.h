/*
 * ruletable_int.h - internal to ruletable*.c: the compiled table, the
 * parser state and the scratch, shared by the parser (ruletable.c), the
 * pattern compiler (ruletable_compile.c) and the lookups
 * (ruletable_match.c).  Nothing else includes this; the interface is
 * ruletable.h.
 *
 * A struct ruletable is written only while ruletable.c loads it and
 * read-only afterwards; a struct parser belongs to one load, a struct
 * rule_scratch to one thread.
 */
#ifndef PORTERO_RULETABLE_INT_H
#define PORTERO_RULETABLE_INT_H

#define PCRE2_CODE_UNIT_WIDTH	8
#include <pcre2.h>

#include "ruletable.h"

#define RT_LINE_MAX	(64 * 1024)		/* bytes of a logical line */
#define RT_NEST_MAX	256			/* if depth */

enum rule_op {
	OP_MATCH,
	OP_IF,
	OP_ENDIF
};

/* A pattern's source as compiled, kept for the prefilter until the
 * table is loaded (ruletable_prefilter.c). */
struct pf_pat {
	char		*src;		/* NUL-terminated; NULL: none */
	uint32_t	 opts;		/* PCRE2 compile options */
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
	struct pf_pat	 pf[2];		/* re, re2: while loading */
	unsigned char	 pf_in[2];	/* re, re2 in the prefilter: when
					 * it reports no hit, no match */
	enum rule_action action;
	int32_t		 score;
	char		 code[4];
	char		 dsn[8];
	char		*text;		/* with $n, $$ unexpanded */
	unsigned	 max_sub;	/* largest $n in text */
};

struct ruletable {
	uint64_t		 id;		/* unique in the process */
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
	struct hs_database	*pf_db;		/* prefilter, or NULL */
	struct hs_scratch	*pf_proto;	/* cloned by scratches */
	size_t			 pf_n;		/* patterns in pf_db */
	size_t			 pf_words;	/* uint64_t per n bits */
	uint64_t		*pf_visit;	/* bit i: rule i is looked at
						 * even without a hit (if,
						 * negated, re left out) */
	int			 pf_visit_any;	/* some bit of pf_visit */
	struct hs_database	*pf_ldb;	/* the same patterns for a
						 * block of lines, or NULL */
	uint64_t		*pf_lout;	/* 2 * pf_words: hit bits set
						 * for every line, patterns
						 * of pf_db not in pf_ldb */
};

struct rule_scratch {
	const struct ruletable	*t;
	uint64_t		 tid;		/* t->id */
	pcre2_match_data	*md;
	pcre2_match_context	*mctx;
	pcre2_jit_stack		*jit;
	uint64_t		 deadline;	/* thread CPU ns; 0: unset */
	unsigned		 calls;		/* callouts this lookup */
	uint64_t		 until_ms;	/* rule_scratch_deadline(); 0 */
	struct hs_scratch	*pfs;		/* prefilter scratch, or NULL */
	uint64_t		*hits;		/* 2 * t->pf_words: RT_PF_BIT */
	int			 pf_ok;		/* this lookup's hits are valid */
	uint64_t		*lhits;		/* a batch's hits, 2 * pf_words
						 * a line */
	size_t			 lhits_n;	/* lines lhits can hold */
	unsigned long		 calls_re;	/* pcre2_match() calls */
	unsigned long		 scans;		/* prefilter scans */
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

/* The prefilter's hit bit of pattern k (0: re, 1: re2) of rule i (the
 * bits of the re patterns, then those of the re2 patterns). */
#define RT_PF_BIT(t, i, k)	((size_t)(k) * (t)->pf_words * 64 + (size_t)(i))

/* ruletable.c */
int		 rt_is_digit(char c);	/* ASCII, any locale */
/* "NAME:LINE: why" into ps->e; -1 */
int		 rt_fail(struct parser *ps, unsigned line, const char *fmt, ...)
		    __attribute__((format(printf, 3, 4)));
/*
 * One piece of a rule's text, literal or $n (checked at load, expanded
 * by ruletable_match.c).
 */
const char	*rt_tok_next(const char *s, const char **lit, size_t *litlen,
		    unsigned *group);

/*
 * ruletable_compile.c: pt compiled (JIT when possible); NULL with the
 * error set.  *guarded: the copy with the CPU budget callout, or NULL.
 */
pcre2_code	*rt_compile(struct parser *ps, const struct pat *pt,
		    pcre2_code **guarded, struct pf_pat *pf);

/*
 * ruletable_prefilter.c: one Hyperscan database of the table's patterns
 * in prefilter mode (a superset of each pattern's matches: no hit means
 * no match); patterns it cannot take are left out and always matched
 * with PCRE2.  Frees the kept sources.  Never fails the load: without
 * Hyperscan, memory or a platform it supports, there is no prefilter.
 */
void		 rt_prefilter_build(struct ruletable *t);
void		 rt_prefilter_free(struct ruletable *t);
int		 rt_prefilter_scratch(const struct ruletable *t,
		    struct rule_scratch *s);	/* -1: no memory */
void		 rt_prefilter_scratch_free(struct rule_scratch *s);
/* Hits of subj into s->hits, s->pf_ok set when they can be used. */
void		 rt_prefilter_scan(const struct ruletable *t,
		    struct rule_scratch *s, const char *subj, size_t len);
/*
 * Hits of the lines [a, b) of batch bt, 2 * t->pf_words words a line
 * into s->lhits, with one scan of their text (pf_ldb).  0, or -1 when
 * they must be scanned a line at a time (no such database, or a scan
 * that failed or was cut short).
 */
int		 rt_prefilter_lines(const struct ruletable *t,
		    struct rule_scratch *s, const struct rule_batch *bt,
		    size_t a, size_t b);
/* The first rule from i on that the lookup must look at (the others
 * cannot match), t->n if none: i itself without valid hits. */
size_t		 rt_prefilter_next(const struct ruletable *t,
		    const struct rule_scratch *s, size_t i);

#endif
