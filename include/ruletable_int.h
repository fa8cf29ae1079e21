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
		    pcre2_code **guarded);

#endif
